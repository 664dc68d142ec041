//! Four-eyes changes to the staff directory and the rules (S3, S7, S9): a
//! change is proposed by one administrator and takes effect only when a
//! different administrator approves it; it is checked when proposed and
//! again when approved, since the directory may have changed in between.

use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{
    Change, ChangeProposal, ChangeRefusal, ProposalStatus, check_role_assignment,
};
use creditops_domain::{
    CompetenceGrant, RoleAssignment, RuleId, RuleSet, StaffId, StaffMember, Timestamp,
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

/// Change proposals, optionally by status.
pub async fn proposals(
    ctx: &Context,
    status: Option<ProposalStatus>,
) -> CommandResult<Vec<ChangeProposal>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.proposals(status).await?)
}

/// One change proposal.
pub async fn proposal(ctx: &Context, id: Uuid) -> CommandResult<ChangeProposal> {
    let mut tx = ctx.store.begin_read().await?;
    tx.proposal(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no proposal with that id"))
}

/// Loads a pending proposal that `actor` may decide: somebody else's (S9).
async fn decidable(tx: &mut dyn Tx, id: Uuid, actor: &StaffId) -> CommandResult<ChangeProposal> {
    let proposal = tx
        .proposal(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no proposal with that id"))?;
    proposal.check_decider(actor)?;
    Ok(proposal)
}

/// Applies an approved change to the directory or the rules; each row
/// names the proposal it applies (on PostgreSQL the database refuses a
/// service role's row without one approved in the same transaction, S9).
async fn apply(tx: &mut dyn Tx, change: &Change, proposal: Uuid) -> CommandResult<Value> {
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
            tx.add_role_assignment(staff_id, &assignment, Some(proposal))
                .await?;
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
            tx.add_competence_grant(staff_id, &grant, Some(proposal))
                .await?;
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
            let rules = RuleSet {
                version,
                valid_from: *valid_from,
                parameters: parameters.clone(),
            };
            tx.insert_rule_set(&rules, Some(proposal)).await?;
            Ok(json!({"rules_version": version, "valid_from": valid_from}))
        }
    }
}

/// Approves (the change takes effect, checked again first) or rejects a
/// proposal of another administrator (S9).
pub async fn decide_proposal(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    verdict: Verdict,
) -> CommandResult<ChangeProposal> {
    let mut proposal = decidable(tx, id, actor.id()).await?;
    let now = action_time();
    let (action, data) = match verdict {
        Verdict::Approve => {
            let change: Change = serde_json::from_value(proposal.payload.clone())
                .map_err(|_| CommandError::Internal("a stored proposal is not valid".into()))?;
            // A four-eyes change takes effect when it is approved, not before.
            let change = change.effective_at(now)?;
            validate_change(ctx, tx, &change, actor.id(), now).await?;
            let applied = apply(tx, &change, proposal.id).await?;
            let data = json!({
                "proposal_id": proposal.id,
                "proposed_by": proposal.proposed_by,
                "applied": applied,
            });
            (AuditAction::ChangeApproved, data)
        }
        Verdict::Reject => (
            AuditAction::ChangeRejected,
            json!({"proposal_id": proposal.id}),
        ),
    };
    proposal.decide(verdict, actor.id(), now);
    tx.decide_proposal(&proposal).await?;
    let mut record = ctx.actor_record(actor, action);
    record.rule = Some(RuleId::S9);
    record.data = data;
    ctx.audit(tx, &record).await?;
    Ok(proposal)
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
