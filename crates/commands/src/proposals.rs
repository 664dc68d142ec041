//! Four-eyes changes to the staff directory and the rules (S3, S7, S9): a
//! change is proposed by one administrator and takes effect only when a
//! different administrator approves it; it is checked when proposed and
//! again when approved, since the directory may have changed in between.
//!
//! Every proposal kind has its desk, the role that decides it
//! ([`ProposalKind::decider_role`]): a service lists, shows and decides
//! only the kinds of its own desk; the others do not exist for it (404).

use crate::inputs::apply_input;
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{
    Change, ChangeProposal, ChangeRefusal, ProposalStatus, check_role_assignment,
};
use creditops_domain::{
    CompetenceGrant, Role, RoleAssignment, RuleId, RuleSet, StaffId, StaffMember, Timestamp,
};
use creditops_store::Tx;
use serde_json::{Value, json};
use uuid::Uuid;

impl From<ChangeRefusal> for CommandError {
    fn from(refusal: ChangeRefusal) -> Self {
        match refusal {
            ChangeRefusal::Rule(e) => CommandError::Domain(e),
            ChangeRefusal::RuleSetInThePast => {
                CommandError::conflict_under(RuleId::S9, refusal.to_string())
            }
            ChangeRefusal::NoHomeSide => CommandError::Unavailable(refusal.to_string()),
        }
    }
}

/// The person a change names, who must exist.
async fn named_member(tx: &mut dyn Tx, id: &StaffId) -> CommandResult<StaffMember> {
    tx.staff_member(id)
        .await?
        .ok_or_else(|| CommandError::invalid("staff_id names no staff member"))
}

/// Checks a change against the pure rules and the directory now.
async fn validate_change(
    ctx: &Context,
    tx: &mut dyn Tx,
    change: &Change,
    actor: &StaffId,
    now: Timestamp,
) -> CommandResult<()> {
    change.check(actor, now)?;
    match change {
        Change::RoleAssignment {
            staff_id,
            role,
            valid_from,
            valid_to,
        } => {
            let member = named_member(tx, staff_id).await?;
            let new = RoleAssignment {
                role: *role,
                valid_from: *valid_from,
                valid_to: *valid_to,
            };
            check_role_assignment(&ctx.sod, &member, &new)?;
        }
        Change::CompetenceGrant { staff_id, .. } => {
            named_member(tx, staff_id).await?;
        }
        Change::RuleSet { .. } => {}
    }
    Ok(())
}

/// Proposes a role assignment, competence grant or rule set; it takes
/// effect when another administrator approves it (S3, S9).
pub async fn propose_change(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    change: &Change,
) -> CommandResult<ChangeProposal> {
    let now = action_time();
    // Stored as it would take effect now: never back-dated (S4).
    change.check_not_back_dated(now)?;
    let change = &change.effective_at(now)?;
    validate_change(ctx, tx, change, actor.id(), now).await?;
    let payload = serde_json::to_value(change)
        .map_err(|_| CommandError::Internal("the change could not be recorded".into()))?;
    let proposal = ChangeProposal {
        id: Uuid::now_v7(),
        kind: change.kind(),
        payload: payload.clone(),
        proposed_by: actor.id().clone(),
        proposed_at: now,
        status: ProposalStatus::Pending,
        decided_by: None,
        decided_at: None,
    };
    tx.insert_proposal(&proposal).await?;
    let mut record = ctx.actor_record(actor, AuditAction::ChangeProposed);
    record.rule = Some(RuleId::S9);
    record.data = json!({"proposal_id": proposal.id, "change": payload});
    ctx.audit(tx, &record).await?;
    Ok(proposal)
}

/// Change proposals decided at `desk`, optionally by status.
pub async fn proposals(
    ctx: &Context,
    status: Option<ProposalStatus>,
    desk: Role,
) -> CommandResult<Vec<ChangeProposal>> {
    let mut tx = ctx.store.begin_read().await?;
    let mut all = tx.proposals(status).await?;
    all.retain(|p| p.kind.decider_role() == desk);
    Ok(all)
}

/// One change proposal decided at `desk`.
pub async fn proposal(ctx: &Context, id: Uuid, desk: Role) -> CommandResult<ChangeProposal> {
    let mut tx = ctx.store.begin_read().await?;
    at_desk(tx.proposal(id).await?, desk)
}

/// The proposal if it is decided at `desk`; otherwise it does not exist here.
fn at_desk(found: Option<ChangeProposal>, desk: Role) -> CommandResult<ChangeProposal> {
    found
        .filter(|p| p.kind.decider_role() == desk)
        .ok_or_else(|| CommandError::not_found("no proposal with that id"))
}

/// Loads a pending proposal of `desk` that `actor` may decide: somebody
/// else's (S9).
async fn decidable(
    tx: &mut dyn Tx,
    id: Uuid,
    actor: &StaffId,
    desk: Role,
) -> CommandResult<ChangeProposal> {
    let proposal = at_desk(tx.proposal(id).await?, desk)?;
    proposal.check_decider(actor)?;
    Ok(proposal)
}

/// Applies an approved change to the directory or the rules.
async fn apply(tx: &mut dyn Tx, change: &Change) -> CommandResult<Value> {
    match change {
        Change::RoleAssignment {
            staff_id,
            role,
            valid_from,
            valid_to,
        } => {
            let assignment = RoleAssignment {
                role: *role,
                valid_from: *valid_from,
                valid_to: *valid_to,
            };
            tx.add_role_assignment(staff_id, &assignment).await?;
            Ok(json!({"staff_id": staff_id, "role": role, "valid_from": valid_from}))
        }
        Change::CompetenceGrant {
            staff_id,
            side,
            level,
            valid_from,
            valid_to,
        } => {
            let grant = CompetenceGrant {
                side: *side,
                level: *level,
                valid_from: *valid_from,
                valid_to: *valid_to,
            };
            tx.add_competence_grant(staff_id, &grant).await?;
            Ok(
                json!({"staff_id": staff_id, "side": side, "level": level, "valid_from": valid_from}),
            )
        }
        Change::RuleSet {
            valid_from,
            parameters,
        } => {
            let version = tx
                .rule_sets()
                .await?
                .iter()
                .map(|r| r.version)
                .max()
                .unwrap_or(0)
                + 1;
            tx.insert_rule_set(&RuleSet {
                version,
                valid_from: *valid_from,
                parameters: parameters.clone(),
            })
            .await?;
            Ok(json!({"rules_version": version, "valid_from": valid_from}))
        }
    }
}

/// A decided proposal and, if it was approved, what applying it did.
#[derive(Debug, Clone)]
pub struct Decided {
    pub proposal: ChangeProposal,
    pub applied: Option<Value>,
}

/// Approves (the change takes effect, checked again first) or rejects a
/// proposal of `desk` made by somebody else (S9).
pub async fn decide_proposal(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    verdict: Verdict,
    desk: Role,
) -> CommandResult<Decided> {
    let mut proposal = decidable(tx, id, actor.id(), desk).await?;
    let now = action_time();
    let applied = match verdict {
        Verdict::Approve if desk == Role::UserAdmin => {
            let change: Change = serde_json::from_value(proposal.payload.clone())
                .map_err(|_| CommandError::Internal("a stored proposal is not valid".into()))?;
            // A four-eyes change takes effect when it is approved, not before.
            let change = change.effective_at(now)?;
            validate_change(ctx, tx, &change, actor.id(), now).await?;
            Some(apply(tx, &change).await?)
        }
        Verdict::Approve => Some(apply_input(ctx, tx, actor, &proposal).await?),
        Verdict::Reject => None,
    };
    let (action, data) = match &applied {
        Some(applied) => (
            AuditAction::ChangeApproved,
            json!({
                "proposal_id": proposal.id,
                "proposed_by": proposal.proposed_by,
                "applied": applied,
            }),
        ),
        None => (
            AuditAction::ChangeRejected,
            json!({"proposal_id": proposal.id}),
        ),
    };
    proposal.decide(verdict, actor.id(), now);
    tx.decide_proposal(&proposal).await?;
    let mut record = ctx.actor_record(actor, action);
    record.rule = Some(proposal.kind.rule());
    record.data = data;
    ctx.audit(tx, &record).await?;
    Ok(Decided { proposal, applied })
}

/// Staff ids in the directory.
pub async fn staff_ids(ctx: &Context) -> CommandResult<Vec<StaffId>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.staff_ids().await?)
}

/// A person with dated units, roles and competence levels (S4).
pub async fn staff_member(ctx: &Context, id: &StaffId) -> CommandResult<StaffMember> {
    let mut tx = ctx.store.begin_read().await?;
    tx.staff_member(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no staff member with that id"))
}

/// Every rule-set version.
pub async fn rule_sets(ctx: &Context) -> CommandResult<Vec<RuleSet>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.rule_sets().await?)
}
