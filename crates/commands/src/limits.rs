//! Limit versions (R1, R8): proposed by risk control, decided under
//! four-eyes by the side that decides their kind; an approval is in force
//! at once and re-evaluated by the watcher (R7).

use crate::facts::{members_in, rules_in_force};
use crate::risk::{lock_limit_subject, watch_all, watch_borrower_limit};
use crate::{Actor, CommandError, CommandResult, Context, action_time, page_of};
use creditops_audit::AuditAction;
use creditops_domain::UnitId;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::{RuleId, Timestamp};
use creditops_risk::decision::{LimitRefusal, check_limit_approver};
use creditops_risk::{Breach, LimitKind, LimitStatus, LimitSubject, LimitVersion};
use creditops_store::{Tx, VoteContext};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

impl From<LimitRefusal> for CommandError {
    fn from(refusal: LimitRefusal) -> Self {
        match refusal {
            LimitRefusal::Rule(e) => CommandError::Domain(e),
            other @ LimitRefusal::OtherSide { .. } => {
                CommandError::forbidden_under(RuleId::R8, other.to_string())
            }
        }
    }
}

/// A new limit version to propose.
#[derive(Debug, Clone)]
pub struct LimitProposal {
    pub subject: LimitSubject,
    pub amount: Decimal,
    pub tolerance_percent: Decimal,
    pub reason: String,
}

/// Proposes a new version of a limit (R1); it takes effect once decided by
/// somebody else (R8).
pub async fn propose_limit(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    proposal: LimitProposal,
) -> CommandResult<LimitVersion> {
    let subject = proposal.subject;
    if let LimitSubject::Group(id) = &subject {
        UnitId::parse(id).map_err(|e| CommandError::invalid(format!("key: {e}")))?;
    }
    let mut limit = LimitVersion {
        id: uuid::Uuid::now_v7(),
        subject,
        // The store numbers it: the subject's next version.
        version: 0,
        amount: proposal.amount,
        tolerance_percent: proposal.tolerance_percent,
        reason: proposal.reason,
        proposed_by: actor.id().clone(),
        proposed_at: action_time(),
        status: LimitStatus::Pending,
        decided_by: None,
        decided_at: None,
    };
    // Stored only if its borrower or group exists (one statement).
    limit.version = tx.insert_next_limit_version(&limit).await?.ok_or_else(|| {
        CommandError::invalid(match limit.subject {
            LimitSubject::Group(_) => "key names no group of connected clients",
            _ => "key names no registered borrower",
        })
    })?;
    let mut record = ctx.actor_record(actor, AuditAction::LimitProposed);
    record.rule = Some(RuleId::R8);
    record.data = json!({
        "limit_id": limit.id,
        "subject": limit.subject.to_string(),
        "version": limit.version,
        "amount": limit.amount.to_string(),
        "tolerance_percent": limit.tolerance_percent.to_string(),
    });
    ctx.audit(tx, &record).await?;
    Ok(limit)
}

/// One page of the limit versions with `status` (every status when none)
/// of the kinds `kinds` (every kind when none), oldest proposal first.
pub async fn limit_versions(
    ctx: &Context,
    status: Option<LimitStatus>,
    kinds: Option<&[LimitKind]>,
    after: Option<Uuid>,
    limit: u32,
) -> CommandResult<Vec<LimitVersion>> {
    let mut tx = ctx.store.begin_read().await?;
    let versions: Vec<LimitVersion> = tx
        .limit_versions(status, None)
        .await?
        .into_iter()
        .filter(|v| kinds.is_none_or(|kinds| kinds.contains(&v.subject.kind())))
        .collect();
    // Limit version ids are UUIDv7: their order is the order of proposal.
    Ok(page_of(versions, |v| v.id, after.as_ref(), limit))
}

/// R8 with S5 and S6: the approver is out of the market cooling-off and
/// neither relationship manager nor related party of the borrower or any
/// member of its group, at the time of the decision.
async fn check_approver(
    tx: &mut dyn Tx,
    actor: &Actor,
    (subject, group): (&LimitSubject, Option<UnitId>),
    now: Timestamp,
) -> CommandResult<()> {
    let rules = rules_in_force(tx, now).await?;
    let members = match subject {
        LimitSubject::Borrower(borrower) => members_in(tx, *borrower, group, now).await?.1,
        LimitSubject::Group(group) => match UnitId::parse(group) {
            Ok(group) => tx.group_members(&group, now).await?,
            // No group can have this id, so it has no members.
            Err(_) => Vec::new(),
        },
        LimitSubject::Sector(_) | LimitSubject::Country(_) => Vec::new(),
    };
    let context = if members.is_empty() {
        VoteContext::default()
    } else {
        tx.vote_context(&members).await?
    };
    check_limit_approver(
        actor.voter_at(now).as_ref(),
        rules.cooling_off_start(now),
        &context.relationship_managers,
        &context.related_parties,
    )?;
    Ok(())
}

/// Approves or rejects a pending limit version (R8, four-eyes): never by its
/// proposer, only for the kinds the deciding side `decides`. On approval the
/// new version is in force at once and the watcher re-evaluates; the
/// breaches it found are returned with the version.
pub async fn decide_limit(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: uuid::Uuid,
    verdict: Verdict,
    decides: &[LimitKind],
) -> CommandResult<(LimitVersion, Vec<Breach>)> {
    let mut limit = tx
        .limit_version(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no limit version with that id"))?;
    let now = action_time();
    limit.decide(verdict, actor.id(), decides, now)?;
    let approve = verdict == Verdict::Approve;
    // An approval changes the headroom every approval of the subject
    // reads; a rejection changes nothing in force. The approver is checked
    // under the lock, against the borrower's group as the lock read it.
    if approve {
        let group = lock_limit_subject(tx, &limit.subject, now).await?;
        check_approver(tx, actor, (&limit.subject, group), now).await?;
    }
    tx.decide_limit_version(&limit).await?;
    let action = if approve {
        AuditAction::LimitApproved
    } else {
        AuditAction::LimitRejected
    };
    let mut record = ctx.actor_record(actor, action);
    record.rule = Some(RuleId::R8);
    record.data = json!({
        "limit_id": limit.id,
        "subject": limit.subject.to_string(),
        "version": limit.version,
        "amount": limit.amount.to_string(),
        "proposed_by": limit.proposed_by,
    });
    if let LimitSubject::Borrower(borrower) = &limit.subject {
        record.borrower_id = Some(*borrower);
    }
    ctx.audit(tx, &record).await?;
    if !approve {
        return Ok((limit, Vec::new()));
    }
    let cause = format!("limit {} version {}", limit.subject, limit.version);
    let breaches = match &limit.subject {
        LimitSubject::Borrower(borrower) => {
            watch_borrower_limit(ctx, tx, *borrower, &cause, now).await?
        }
        _ => watch_all(ctx, tx, &cause, now).await?,
    };
    Ok((limit, breaches))
}
