//! Votes on a credit case (V1-V8, S5, S6, R4-R7): the first (market) and
//! second (back-office) vote, with the liquidity claim an approval that may
//! decide takes before its transaction, the risk gate it passes inside it,
//! and the reservation an approval holds until disbursement.

use crate::cases::{
    CaseAction, MarketUse, case_audit_data, load_case, load_market_case, save_case,
};
use crate::facts::{no_rules_in_force, rules_in_force, vote_facts, vote_facts_of_group};
use crate::risk::{Reserved, gate_verdict, lock_approval, reserve, watch_approval};
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::rules::in_force;
use creditops_domain::{
    CaseId, CaseStatus, Credit, CreditCase, DomainError, NewCondition, RiskVerdict, RuleId,
    RuleSet, Timestamp, Vote, VoteDecision, VoteStage,
};
use creditops_risk::REPORTING_CURRENCY;
use creditops_store::{LiquidityClaim, StoreError, StoreExt, Tx};
use serde_json::{Value, json};

/// A vote as cast: decision, rationale and the file version it is cast on (V3).
#[derive(Debug, Clone)]
pub struct CastVote {
    pub decision: VoteDecision,
    /// Why; recorded with the vote (V9).
    pub rationale: String,
    /// The file version the vote is cast on; a stale one is refused.
    pub version: i64,
    /// Conditions precedent an approving second vote attaches (L5).
    pub conditions: Vec<NewCondition>,
}

/// Withdraws a claim the vote did not settle (a refusal, a vote that did
/// not decide, a replay); a settled one is gone already. A failure is only
/// logged: the claim lapses by itself, and the vote's answer stands.
pub async fn release_liquidity_claim(ctx: &Context, claim: Option<LiquidityClaim>) {
    if let Some(claim) = claim
        && let Err(e) = ctx.store.release_liquidity_claim(&claim).await
    {
        tracing::warn!(error = %e, claim = %claim.id, "a liquidity claim is left to lapse");
    }
}

/// What a vote reads and takes before its transaction begins (see
/// [`claim_for_vote`]).
#[derive(Debug, Clone, Default)]
pub struct BeforeVote {
    /// The liquidity claim an approval that may decide holds (R5, R6).
    pub claim: Option<LiquidityClaim>,
    /// The rule sets read to tell whether a first vote may decide (V8); the
    /// vote's transaction uses this read instead of reading them again, so
    /// the lane the claim was taken for is the lane the vote is cast in.
    pub rule_sets: Option<Vec<RuleSet>>,
}

/// Claims the liquidity headroom a vote may spend (R5, R6), before its
/// transaction begins (see [`creditops_store::LiquidityClaims::claim_liquidity`]):
/// only approvals that may decide take one, and only where the backend
/// needs claims. Whatever the vote's outcome, pass the claim to
/// [`release_liquidity_claim`] afterwards.
pub async fn claim_for_vote(
    ctx: &Context,
    actor: &Actor,
    id: CaseId,
    decision: VoteDecision,
    stage: VoteStage,
) -> CommandResult<BeforeVote> {
    // Where writers are serial there are no claims (nor rules to read for one).
    if ctx.store.liquidity_claims().is_none() || decision != VoteDecision::Approve {
        return Ok(BeforeVote::default());
    }
    let rule_sets = match stage {
        VoteStage::First => {
            let sets = match &actor.rule_sets {
                Some(known) => known.to_vec(),
                None => ctx.store.rule_sets().await?,
            };
            if !single_vote_lane_open(&sets)? {
                return Ok(BeforeVote {
                    claim: None,
                    rule_sets: Some(sets),
                });
            }
            Some(sets)
        }
        VoteStage::Second => None,
    };
    let claim = ctx
        .store
        .claim_liquidity(id, REPORTING_CURRENCY, ctx.claim_timeout)
        .await?;
    Ok(BeforeVote { claim, rule_sets })
}

/// Whether a first vote may decide alone now under `sets` (V8): only then
/// does an approving first vote need a liquidity claim.
fn single_vote_lane_open(sets: &[RuleSet]) -> CommandResult<bool> {
    let rules = in_force(sets, action_time()).ok_or_else(no_rules_in_force)?;
    Ok(rules.parameters.single_vote_below.is_some())
}

/// Whether the vote that produced `case` spent its liquidity claim: an
/// approval that adds exposure settles the claim with its reservation, in
/// its transaction (see [`hold_approval`]). Once that transaction committed,
/// there is nothing left to release.
pub fn settled_claim(case: &CreditCase) -> bool {
    case.status == CaseStatus::Approved && !case.file.added_exposure().is_zero()
}

/// Loads the case and the facts at vote time, casts the vote (all rules in
/// the domain), persists it with optimistic concurrency and audits it, all
/// in `tx`. An approval that decides spends the liquidity claim taken for
/// it, and the vote uses the rule sets read then (see [`claim_for_vote`]).
pub async fn cast_vote(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    vote: &CastVote,
    stage: VoteStage,
    before: &BeforeVote,
) -> CommandResult<CreditCase> {
    let now = action_time();
    if let Some(sets) = &before.rule_sets {
        tx.use_rule_sets(sets.clone());
    }
    let claim = before.claim.as_ref();
    let mut case = match stage {
        // Market votes on the cases of its unit, and on those it must vote
        // on as a board-level or escalation voter (hardening finding 9).
        VoteStage::First => load_market_case(tx, actor, id, MarketUse::Vote, now).await?,
        VoteStage::Second => load_case(tx, id).await?,
    };
    let expected_revision = case.revision;
    let voter = actor.voter_at(now);
    let rules = rules_in_force(tx, now).await?;
    // A first vote decides only in the single-vote lane (V8).
    let may_decide = match stage {
        VoteStage::Second => true,
        VoteStage::First => rules.parameters.single_vote_below.is_some(),
    };
    // An approval may complete a decision: the group aggregation (V4) and
    // the headroom (R4, R5) it is checked against must not move under it.
    let approval = if vote.decision == VoteDecision::Approve && may_decide {
        Some(lock_approval(tx, case.file.borrower_id, now).await?)
    } else {
        None
    };
    let mut facts = match &approval {
        Some(scope) => {
            vote_facts(tx, &case, rules, scope.membership(), &ctx.policy_hash, now).await?
        }
        // Nothing locked: the group is read with the facts.
        None => vote_facts_of_group(tx, &case, rules, &ctx.policy_hash, now).await?,
    };
    // The risk gate runs now, in this transaction (R4).
    if let Some(scope) = &approval {
        facts.risk = Some(gate_verdict(tx, &case, scope, claim, now).await?);
    }
    let (decision, rationale, version) = (vote.decision, &vote.rationale, vote.version);
    let cast = match stage {
        VoteStage::First => {
            case.cast_first_vote(voter.as_ref(), decision, rationale, version, &facts, now)?
        }
        VoteStage::Second => {
            case.cast_second_vote(voter.as_ref(), decision, rationale, version, &facts, now)?
        }
    }
    .clone();
    // The checklist of the product names the documents the file needs
    // before the first vote (L2); checked once the vote itself passed.
    if stage == VoteStage::First {
        crate::credit_file::check_first_vote_documents(tx, &case, &facts.rules).await?;
    }
    if !vote.conditions.is_empty() {
        if stage == VoteStage::First {
            return Err(CommandError::invalid(
                "conditions precedent come with the approving second vote of back office",
            ));
        }
        case.attach_conditions(&cast.voter, &vote.conditions, now)?;
    }
    let action = CaseAction::new(match stage {
        VoteStage::First => AuditAction::CaseFirstVote,
        VoteStage::Second => AuditAction::CaseSecondVote,
    });
    let data = vote_audit_data(&case, &cast);
    save_case(ctx, tx, actor, &case, expected_revision, action, data).await?;
    if case.status == CaseStatus::Approved {
        record_credit(ctx, tx, actor, &case, now).await?;
        // The domain approves only with the gate's verdict (R4).
        let verdict = facts.risk.as_ref().ok_or_else(|| {
            DomainError::rule(RuleId::R4, "an approval without the risk gate's verdict")
        })?;
        let days = facts.rules.parameters.reservation_days;
        hold_approval(ctx, tx, actor, &case, verdict, claim, days, now).await?;
    }
    Ok(case)
}

/// What a vote records in the hashed audit body: the case facts, the vote
/// and, if it decided, the decision.
fn vote_audit_data(case: &CreditCase, vote: &Vote) -> Value {
    let mut data = case_audit_data(case);
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
        if let Some(rating) = &decision.rating {
            data["rating"] = json!({"class": rating.class, "pd": rating.pd.to_string()});
        }
        if let Some(after) = &decision.credit_after {
            data["credit_after"] = json!({"id": after.credit_id, "version": after.version});
        }
    }
    if !case.conditions.is_empty() {
        // The conditions' count and due dates; their text is free text (A6).
        data["conditions"] = json!(
            case.conditions
                .iter()
                .map(|c| json!({"id": c.id, "due": c.due}))
                .collect::<Vec<_>>()
        );
    }
    data
}

/// An approval makes the credit or its next version (L1), audited. The
/// version the case was opened on must still be the credit's: a credit
/// changed by another decision meanwhile refuses this one (409).
async fn record_credit(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    case: &CreditCase,
    now: Timestamp,
) -> CommandResult<()> {
    let after = case.credit_after();
    let credit = match &case.file.base {
        None => {
            let credit = Credit::approved(after.credit_id, case.id, &case.file, now);
            tx.insert_credit(&credit).await?;
            credit
        }
        Some(base) => {
            let current = tx.credit(base.credit_id).await?.ok_or_else(|| {
                CommandError::Internal("a change case names a credit that is not stored".into())
            })?;
            let next = current
                .changed_by(case.id, &case.file, now)
                .map_err(|e| CommandError::conflict_under(RuleId::L1, e.to_string()))?;
            // Another approval may have changed the credit since it was read.
            tx.update_credit(&next).await.map_err(|e| match e {
                StoreError::Conflict(detail) => CommandError::conflict_under(RuleId::L1, detail),
                e => e.into(),
            })?;
            next
        }
    };
    if let Some(released) = case.file.released {
        // The approval releases the collateral (L1, L3).
        tx.release_collateral(released, actor.id(), now).await?;
        let mut record = ctx.actor_record(actor, AuditAction::CollateralReleased);
        record.case_id = Some(case.id);
        record.borrower_id = Some(case.file.borrower_id);
        record.rule = Some(RuleId::L1);
        record.data = json!({ "collateral_id": released });
        ctx.audit(tx, &record).await?;
    }
    let mut record = ctx.actor_record(actor, AuditAction::CreditVersioned);
    record.case_id = Some(case.id);
    record.borrower_id = Some(case.file.borrower_id);
    record.rule = Some(RuleId::L1);
    record.data = json!({
        "credit_id": credit.id,
        "version": credit.version,
        "kind": credit.kind.as_str(),
        "amount": credit.amount.amount().to_string(),
        "currency": credit.amount.currency_code(),
        "term_months": credit.term_months,
    });
    ctx.audit(tx, &record).await
}

/// After an approval: the watcher sees the new usage at once (R7), and the
/// approval holds its headroom until disbursement (R5), audited.
#[allow(clippy::too_many_arguments)]
async fn hold_approval(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    case: &CreditCase,
    verdict: &RiskVerdict,
    claim: Option<&LiquidityClaim>,
    reservation_days: u32,
    now: Timestamp,
) -> CommandResult<()> {
    watch_approval(ctx, tx, verdict, &format!("case {} approved", case.id), now).await?;
    if case.file.added_exposure().is_zero() {
        // A prolongation, change of terms or collateral release adds no
        // exposure: nothing to reserve or disburse (L1).
        return Ok(());
    }
    let Reserved {
        reservation,
        liquidity,
    } = reserve(tx, case, verdict, claim, reservation_days, now).await?;
    let mut record = ctx.actor_record(actor, AuditAction::RiskReserved);
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
    ctx.audit(tx, &record).await
}
