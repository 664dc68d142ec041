//! Four-eyes changes to the staff directory and the rules (S3, S4, S7, S9):
//! role assignments, competence levels, rule sets, and a person's place in
//! the bank (onboarding, unit move, end of a role, suspension, leaver). A
//! change is proposed by one administrator and takes effect only when a
//! different administrator approves it; it is checked when proposed and
//! again when approved, since the directory may have changed in between.
//!
//! Every proposal kind has its desk, the role that decides it
//! ([`ProposalKind::decider_role`]): a service lists, shows and decides
//! only the kinds of its own desk; the others do not exist for it (404).

use crate::inputs::apply_input;
use crate::{Actor, CommandError, CommandResult, Context, action_time, page_of};
use creditops_audit::AuditAction;
use creditops_domain::entitlement::Entitlement;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{
    Change, ChangeProposal, ChangeRefusal, ProposalKind, ProposalStatus, check_admins_remain,
    check_lifecycle, check_onboarding, check_role_assignment, removes_user_admin,
};
use creditops_domain::{
    CompetenceGrant, History, Role, RoleAssignment, RuleId, RuleSet, StaffId, StaffMember,
    StaffStatus, Timestamp, UnitAssignment,
};
use creditops_store::{ProposalFilter, Tx};
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
        Change::StaffOnboarding { .. } => {
            check_onboarding(&ctx.sod, &newcomer(tx, change).await?)?;
        }
        Change::UnitMove {
            staff_id, unit_id, ..
        } => {
            let member = named_member(tx, staff_id).await?;
            let side = tx.unit_side(unit_id).await?;
            check_lifecycle(&ctx.sod, &member, change, side, now)?;
        }
        Change::RoleEnd { staff_id, .. }
        | Change::Suspension { staff_id, .. }
        | Change::Leaver { staff_id } => {
            let member = named_member(tx, staff_id).await?;
            check_lifecycle(&ctx.sod, &member, change, None, now)?;
            if removes_user_admin(&member, change, now) {
                let others = other_user_admins(tx, staff_id, now).await?;
                check_admins_remain(&member, change, others, now)?;
            }
        }
    }
    Ok(())
}

/// How many people besides `except` hold the user administration at `at`.
async fn other_user_admins(
    tx: &mut dyn Tx,
    except: &StaffId,
    at: Timestamp,
) -> CommandResult<usize> {
    let mut admins = 0;
    for id in tx.staff_ids().await? {
        if &id == except {
            continue;
        }
        if let Some(member) = tx.staff_member(&id).await?
            && member.roles_at(at).contains(&Role::UserAdmin)
        {
            admins += 1;
        }
    }
    Ok(admins)
}

/// The person a staff onboarding brings in, with the sides of their units;
/// refused if the id is taken or a unit does not exist.
async fn newcomer(tx: &mut dyn Tx, change: &Change) -> CommandResult<StaffMember> {
    let Change::StaffOnboarding {
        staff_id,
        units,
        roles,
        competences,
    } = change
    else {
        return Err(CommandError::Internal("not a staff onboarding".into()));
    };
    if tx.staff_member(staff_id).await?.is_some() {
        return Err(CommandError::conflict(format!(
            "staff member {staff_id} exists already: a person is onboarded once"
        )));
    }
    let mut assignments = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let side = tx.unit_side(&unit.unit_id).await?.ok_or_else(|| {
            CommandError::invalid(format!("units[{i}].unit_id: no unit {}", unit.unit_id))
        })?;
        assignments.push(UnitAssignment {
            unit_id: unit.unit_id.clone(),
            side,
            valid_from: unit.valid_from,
            valid_to: unit.valid_to,
        });
    }
    Ok(StaffMember {
        id: staff_id.clone(),
        status: StaffStatus::Active,
        units: assignments,
        roles: roles.clone(),
        competences: competences.clone(),
    })
}

/// Ends, at `at`, the entries of `history` of `member` that `ends` selects
/// and that still hold then or start later; returns how many ended.
async fn end_history(
    tx: &mut dyn Tx,
    member: &StaffMember,
    history: History,
    at: Timestamp,
    ends: impl Fn(usize) -> bool,
) -> CommandResult<usize> {
    let cuts: Vec<_> = member
        .cuts_at(history, at)
        .into_iter()
        .filter(|cut| ends(cut.position))
        .collect();
    for cut in &cuts {
        tx.cut_history(&member.id, cut).await?;
    }
    Ok(cuts.len())
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
    after: Option<Uuid>,
    limit: u32,
) -> CommandResult<Vec<ChangeProposal>> {
    let mut tx = ctx.store.begin_read().await?;
    let filter = ProposalFilter {
        status,
        kinds: ProposalKind::decided_by(desk),
        newest_first: true,
        after,
        limit,
    };
    Ok(tx.proposals(&filter).await?)
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

/// Applies an approved change to the directory or the rules; the
/// lifecycle kinds take effect at `at`, the approval. Each row names the
/// proposal it applies (on PostgreSQL the database refuses a service
/// role's row without one approved in the same transaction, S9).
async fn apply(
    tx: &mut dyn Tx,
    change: &Change,
    at: Timestamp,
    proposal: Uuid,
) -> CommandResult<Value> {
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
                parameters: (**parameters).clone(),
            };
            tx.insert_rule_set(&rules, Some(proposal)).await?;
            Ok(json!({"rules_version": version, "valid_from": valid_from}))
        }
        lifecycle => apply_lifecycle(tx, lifecycle, at, proposal).await,
    }
}

/// Applies an approved change of a person's place in the bank, at `at`,
/// under `proposal`.
async fn apply_lifecycle(
    tx: &mut dyn Tx,
    change: &Change,
    at: Timestamp,
    proposal: Uuid,
) -> CommandResult<Value> {
    match change {
        Change::StaffOnboarding { staff_id, .. } => {
            let member = newcomer(tx, change).await?;
            tx.onboard_staff(&member, Some(proposal)).await?;
            Ok(json!({
                "staff_id": staff_id,
                "units": member.units,
                "roles": member.roles,
                "competences": member.competences,
            }))
        }
        Change::UnitMove { staff_id, unit_id } => {
            let member = named_member(tx, staff_id).await?;
            let side = tx
                .unit_side(unit_id)
                .await?
                .ok_or_else(|| CommandError::invalid(format!("unit_id: no unit {unit_id}")))?;
            let ended = end_history(tx, &member, History::Units, at, |_| true).await?;
            let unit = UnitAssignment {
                unit_id: unit_id.clone(),
                side,
                valid_from: at,
                valid_to: None,
            };
            tx.add_unit_assignment(staff_id, &unit).await?;
            Ok(json!({
                "staff_id": staff_id,
                "unit_id": unit_id,
                "side": side,
                "from": at,
                "units_ended": ended,
            }))
        }
        Change::RoleEnd { staff_id, role } => {
            let member = named_member(tx, staff_id).await?;
            let ended = end_history(tx, &member, History::Roles, at, |i| {
                member.roles.get(i).is_some_and(|r| r.role == *role)
            })
            .await?;
            Ok(json!({"staff_id": staff_id, "role": role, "to": at, "roles_ended": ended}))
        }
        Change::Suspension { staff_id, lifted } => {
            let status = if *lifted {
                StaffStatus::Active
            } else {
                StaffStatus::Suspended
            };
            tx.set_staff_status(staff_id, status).await?;
            Ok(json!({"staff_id": staff_id, "status": status, "from": at}))
        }
        Change::Leaver { staff_id } => {
            let member = named_member(tx, staff_id).await?;
            let mut ended = serde_json::Map::new();
            for (name, history) in [
                ("units_ended", History::Units),
                ("roles_ended", History::Roles),
                ("competences_ended", History::Competences),
            ] {
                let count = end_history(tx, &member, history, at, |_| true).await?;
                ended.insert(name.into(), json!(count));
            }
            ended.insert("staff_id".into(), json!(staff_id));
            ended.insert("left_at".into(), json!(at));
            Ok(Value::Object(ended))
        }
        Change::RoleAssignment { .. } | Change::CompetenceGrant { .. } | Change::RuleSet { .. } => {
            Err(CommandError::Internal("not a lifecycle change".into()))
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
            Some(apply(tx, &change, now, proposal.id).await?)
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

/// One page of the staff ids in the directory, in order.
pub async fn staff_ids(
    ctx: &Context,
    after: Option<&StaffId>,
    limit: u32,
) -> CommandResult<Vec<StaffId>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(page_of(tx.staff_ids().await?, Clone::clone, after, limit))
}

/// One page of the directory's people, in order, read in one transaction.
pub async fn staff_members_page(
    ctx: &Context,
    after: Option<&StaffId>,
    limit: u32,
) -> CommandResult<Vec<StaffMember>> {
    let mut tx = ctx.store.begin_read().await?;
    let ids = page_of(tx.staff_ids().await?, Clone::clone, after, limit);
    let mut members = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(member) = tx.staff_member(id).await? {
            members.push(member);
        }
    }
    Ok(members)
}

/// A person with dated units, roles and competence levels (S4).
pub async fn staff_member(ctx: &Context, id: &StaffId) -> CommandResult<StaffMember> {
    let mut tx = ctx.store.begin_read().await?;
    tx.staff_member(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no staff member with that id"))
}

/// Every role and competence level held now or from a later start, with
/// the approved proposal that granted each (AT 4.3.1); the read is audited.
pub async fn entitlements(ctx: &Context, actor: &Actor) -> CommandResult<Vec<Entitlement>> {
    let now = action_time();
    let (members, approved) = {
        let mut tx = ctx.store.begin_read().await?;
        let mut members = Vec::new();
        for id in tx.staff_ids().await? {
            members.extend(tx.staff_member(&id).await?);
        }
        let admin_kinds = ProposalKind::decided_by(Role::UserAdmin);
        let approved = ProposalFilter::all(Some(ProposalStatus::Approved), admin_kinds);
        (members, tx.proposals(&approved).await?)
    };
    let rows = creditops_domain::entitlement::entitlements(&members, &approved, now);
    let mut tx = ctx.store.begin().await?;
    let mut record = ctx.actor_record(actor, AuditAction::EntitlementsReported);
    record.data = json!({"as_of": now, "people": members.len(), "entitlements": rows.len()});
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Every rule-set version.
pub async fn rule_sets(ctx: &Context) -> CommandResult<Vec<RuleSet>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.rule_sets().await?)
}
