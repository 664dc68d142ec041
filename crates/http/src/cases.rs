//! Commands on a credit case, shared by the market and back-office services
//! so every change is loaded, persisted with optimistic concurrency (V10),
//! audited in the same transaction (A1) and answered the same way. Which
//! commands a service offers is fixed by its router (S1).

use crate::facts::{group_members_of, no_rules_in_force, rules_in_force, vote_facts};
use crate::risk::{Reserved, gate_verdict, lock_approval, reserve, watch_approval};
use crate::views::{CaseView, case_audit_data, case_json};
use crate::{ApiError, CommandOutcome, IdempotencyKey, Principal, ServiceContext, run_command};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{SubsecRound, Utc};
use creditops_audit::AuditAction;
use creditops_domain::RuleId;
use creditops_domain::rules::in_force;
use creditops_domain::{
    CaseId, CaseStatus, CreditCase, DomainError, Timestamp, VoteDecision, VoteStage,
};
use creditops_risk::REPORTING_CURRENCY;
use creditops_store::{LiquidityClaim, StoreExt, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The time of an action, at the precision both stores keep (microseconds):
/// the answer to a command then shows the same times (votes, decisions,
/// limit decisions, proposals, ...) as every later read of the stored
/// record (V9, V10). Every command that stores a time takes it from here.
pub fn action_time() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// The case, or 404.
pub async fn load_case(tx: &mut dyn Tx, id: CaseId) -> Result<CreditCase, ApiError> {
    tx.case(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no case with that id"))
}

/// Reads a case for display (both sides see the same view, V9).
pub async fn read_case(ctx: &ServiceContext, id: CaseId) -> Result<CaseView, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(CaseView::new(&load_case(tx.as_mut(), id).await?))
}

/// What a case command records in the audit trail: the action and, where a
/// single rule is the reason for the command, that rule's id.
#[derive(Debug, Clone, Copy)]
pub struct CaseAction {
    pub action: AuditAction,
    pub rule: Option<RuleId>,
}

impl CaseAction {
    pub const fn new(action: AuditAction) -> Self {
        Self { action, rule: None }
    }

    pub const fn under_rule(action: AuditAction, rule: RuleId) -> Self {
        Self {
            action,
            rule: Some(rule),
        }
    }
}

/// Stores a changed case (Conflict if somebody else changed it since
/// `expected_revision`) and its audit event with `data`, in `tx`.
async fn save_case(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    actor: &Principal,
    case: &CreditCase,
    expected_revision: i64,
    action: CaseAction,
    data: Value,
) -> Result<CommandOutcome, ApiError> {
    tx.update_case(case, expected_revision).await?;
    let mut record = actor.record(ctx, action.action);
    record.rule = action.rule;
    record.case_id = Some(case.id);
    record.borrower_id = Some(case.file.borrower_id);
    record.data = data;
    ctx.audit(tx, &record).await?;
    Ok(CommandOutcome::new(StatusCode::OK, case_json(case)))
}

/// Loads case `id`, applies `change` (a pure domain command, given the time
/// of the action) and saves and audits the result as `action`.
pub async fn change_case(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    actor: &Principal,
    id: CaseId,
    action: CaseAction,
    change: impl FnOnce(&mut CreditCase, Timestamp) -> Result<(), DomainError>,
) -> Result<CommandOutcome, ApiError> {
    let mut case = load_case(tx, id).await?;
    let expected_revision = case.revision;
    change(&mut case, action_time())?;
    let data = case_audit_data(&case);
    save_case(ctx, tx, actor, &case, expected_revision, action, data).await
}

/// A vote: decision, rationale and the file version it is cast on (V3).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    pub decision: VoteDecision,
    /// Why; recorded with the vote (V9).
    #[schema(
        example = "cash flow covers debt service",
        min_length = 1,
        max_length = 4000
    )]
    pub rationale: String,
    /// The file version the vote is cast on; a stale one is refused (409).
    #[schema(example = 1)]
    pub version: i64,
}

/// Withdraws a claim the vote did not settle (a refusal, a vote that did
/// not decide, a replay); a settled one is gone already. A failure is only
/// logged: the claim lapses by itself, and the vote's answer stands.
pub async fn release_liquidity_claim(ctx: &ServiceContext, claim: Option<LiquidityClaim>) {
    if let Some(claim) = claim
        && let Err(e) = ctx.store.release_liquidity_claim(&claim).await
    {
        tracing::warn!(error = %e, claim = %claim.id, "a liquidity claim is left to lapse");
    }
}

/// A vote command, as the market (first) and back-office (second) routes
/// run it: an approval that may decide is claimed for first (R5, R6), the
/// vote runs as one idempotent transaction, and a claim it did not spend is
/// released.
pub async fn vote_command(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: CaseId,
    req: VoteRequest,
    stage: VoteStage,
) -> Result<Response, ApiError> {
    let operation = match stage {
        VoteStage::First => "POST /v1/cases/{id}/first-vote",
        VoteStage::Second => "POST /v1/cases/{id}/second-vote",
    };
    let claim = claim_for_vote(&ctx, id, req.decision, stage).await?;
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (vote_ctx, vote_claim, actor) = (ctx.clone(), claim.clone(), principal.clone());
    let answer = run_command(&ctx, &principal, key, operation, &fingerprint, move |tx| {
        Box::pin(async move {
            cast_vote(&vote_ctx, tx, &actor, id, &req, stage, vote_claim.as_ref()).await
        })
    })
    .await;
    release_liquidity_claim(&ctx, claim).await;
    answer
}

/// Claims the liquidity headroom a vote may spend (R5, R6), before its
/// transaction begins (see [`creditops_store::LiquidityClaims::claim_liquidity`]):
/// only approvals that may decide take one, and only where the backend
/// needs claims. Whatever the vote's outcome, pass the claim to
/// [`release_liquidity_claim`] afterwards.
pub async fn claim_for_vote(
    ctx: &ServiceContext,
    id: CaseId,
    decision: VoteDecision,
    stage: VoteStage,
) -> Result<Option<LiquidityClaim>, ApiError> {
    let may_decide = decision == VoteDecision::Approve
        && match stage {
            VoteStage::First => single_vote_lane_open(ctx).await?,
            VoteStage::Second => true,
        };
    if !may_decide {
        return Ok(None);
    }
    Ok(ctx
        .store
        .claim_liquidity(id, REPORTING_CURRENCY, ctx.limits.timeout)
        .await?)
}

/// Whether a first vote may decide alone now (V8): only then does an
/// approving first vote need a liquidity claim. Should the rules change
/// before the vote's transaction reads them, the unclaimed approval is
/// refused there (409) rather than spend headroom nobody counted.
async fn single_vote_lane_open(ctx: &ServiceContext) -> Result<bool, ApiError> {
    let sets = ctx.store.rule_sets().await?;
    let rules = in_force(&sets, action_time()).ok_or_else(no_rules_in_force)?;
    Ok(rules.parameters.single_vote_below.is_some())
}

/// Loads the case and the facts at vote time, casts the vote (all rules in
/// the domain), persists it with optimistic concurrency and audits it, all
/// in `tx`. An approval that decides spends the liquidity `claim` taken for
/// it (see [`claim_for_vote`]).
pub async fn cast_vote(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    actor: &Principal,
    id: CaseId,
    req: &VoteRequest,
    stage: VoteStage,
    claim: Option<&LiquidityClaim>,
) -> Result<CommandOutcome, ApiError> {
    let mut case = load_case(tx, id).await?;
    let expected_revision = case.revision;
    let now = action_time();
    let voter = actor.voter_at(now);
    let rules = rules_in_force(tx, now).await?;
    // A first vote decides only in the single-vote lane (V8).
    let may_decide = match stage {
        VoteStage::Second => true,
        VoteStage::First => rules.parameters.single_vote_below.is_some(),
    };
    // An approval may complete a decision: the group aggregation (V4) and
    // the headroom (R4, R5) it is checked against must not move under it.
    let approval = if req.decision == VoteDecision::Approve && may_decide {
        Some(lock_approval(tx, case.file.borrower_id, now).await?)
    } else {
        None
    };
    let membership = match &approval {
        Some(scope) => scope.membership(),
        None => group_members_of(tx, case.file.borrower_id, now).await?,
    };
    let mut facts = vote_facts(tx, &case, rules, membership, &ctx.policy_hash).await?;
    // The risk gate runs now, in this transaction (R4).
    if let Some(scope) = &approval {
        facts.risk = Some(gate_verdict(tx, &case, scope, claim, now).await?);
    }
    let vote = match stage {
        VoteStage::First => case.cast_first_vote(
            voter.as_ref(),
            req.decision,
            &req.rationale,
            req.version,
            &facts,
            now,
        )?,
        VoteStage::Second => case.cast_second_vote(
            voter.as_ref(),
            req.decision,
            &req.rationale,
            req.version,
            &facts,
            now,
        )?,
    }
    .clone();
    let action = CaseAction::new(match stage {
        VoteStage::First => AuditAction::CaseFirstVote,
        VoteStage::Second => AuditAction::CaseSecondVote,
    });
    let mut data = case_audit_data(&case);
    data["decision"] = json!(vote.decision.as_str());
    data["unit"] = json!(vote.voter.unit_id);
    data["competence_level"] = json!(vote.voter.competence_level);
    data["required_level"] = json!(vote.required_level);
    data["checks"] = json!(vote.checks.iter().map(|c| &c.rule).collect::<Vec<_>>());
    if let Some(decision) = &case.decision {
        data["outcome"] = json!(decision.outcome.as_str());
        data["level"] = json!(decision.level);
        data["rules_version"] = json!(decision.rules_version);
        data["policy_hash"] = json!(decision.policy_hash);
        data["flags"] = json!(decision.flags);
        if let Some(verdict) = &decision.risk {
            data["risk_outcome"] = json!(verdict.outcome.as_str());
        }
    }
    let outcome = save_case(ctx, tx, actor, &case, expected_revision, action, data).await?;
    if case.status == CaseStatus::Approved {
        // The domain approves only with the gate's verdict (R4).
        let verdict = facts.risk.as_ref().ok_or_else(|| {
            DomainError::rule(RuleId::R4, "an approval without the risk gate's verdict")
        })?;
        // The watcher sees the new usage at once (R7), and the approval
        // holds its headroom until disbursement (R5).
        watch_approval(ctx, tx, verdict, &format!("case {} approved", case.id), now).await?;
        let Reserved {
            reservation,
            liquidity,
        } = reserve(
            tx,
            &case,
            verdict,
            claim,
            facts.rules.parameters.reservation_days,
            now,
        )
        .await?;
        let mut record = actor.record(ctx, AuditAction::RiskReserved);
        record.case_id = Some(case.id);
        record.borrower_id = Some(case.file.borrower_id);
        record.rule = Some(RuleId::R5);
        record.data = json!({
            "amount": reservation.amount.to_string(),
            "expires_at": reservation.expires_at,
            // The liquidity left, as the gate checked it (approvals in
            // flight counted).
            "liquidity": {
                "lcr_percent": liquidity.usage.map(|lcr| lcr.to_string()),
                "floor_percent": liquidity.limit.map(|floor| floor.to_string()),
            },
        });
        ctx.audit(tx, &record).await?;
    }
    Ok(outcome)
}
