//! Groups of connected clients and related parties (V4, V11, S6, R2): the
//! facts outside a case that its votes are checked against. A change to
//! them re-evaluates the open cases and the limits of everybody affected.

use crate::cases::reevaluate_open_cases;
use crate::facts::group_members_of;
use crate::risk::watch_borrowers;
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::proposal::ChangeProposal;
use creditops_domain::{BorrowerId, CaseId, RuleId, StaffId, Timestamp, UnitId};
use creditops_risk::Breach;
use creditops_store::{BorrowerGroup, RelatedParty, Tx};
use serde_json::json;

/// Forms a group of connected clients (CRR Art. 4(1)(39)).
pub async fn create_group(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: UnitId,
    name: String,
) -> CommandResult<BorrowerGroup> {
    let group = BorrowerGroup {
        id,
        name,
        created_by: actor.id().clone(),
        created_at: action_time(),
    };
    tx.insert_group(&group).await?;
    let mut record = ctx.actor_record(actor, AuditAction::GroupCreated);
    record.data = json!({"group_id": group.id});
    ctx.audit(tx, &record).await?;
    Ok(group)
}

/// What a group move did.
#[derive(Debug, Clone)]
pub struct GroupMove {
    pub valid_from: Timestamp,
    /// Open cases whose first vote became void and that went back to market (V4).
    pub cases_sent_back: Vec<CaseId>,
    /// Limit breaches the move caused (R7).
    pub breaches: Vec<Breach>,
}

/// The group `borrower` belongs to now, after checking that the borrower
/// and the group it is to join (if any) exist.
pub async fn current_group(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    joining: Option<&UnitId>,
) -> CommandResult<Option<UnitId>> {
    if tx.borrower(borrower).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    if let Some(group) = joining
        && tx.group(group).await?.is_none()
    {
        return Err(CommandError::invalid("group_id names no group"));
    }
    Ok(tx.group_of(borrower, action_time()).await?)
}

/// Moves a borrower into a group of connected clients (or out of it, with
/// no group) under the approved `proposal`, and re-evaluates the open cases
/// of everybody affected (V4, R2). `actor` approved the proposal.
pub(crate) async fn move_borrower(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower: BorrowerId,
    group: Option<&UnitId>,
    proposal: &ChangeProposal,
) -> CommandResult<GroupMove> {
    // Serialised with approvals, which aggregate over groups.
    tx.lock_risk().await?;
    let now = action_time();
    // Everybody whose aggregated exposure changes: the old group and the
    // new one.
    let (_, mut affected) = group_members_of(tx, borrower, now).await?;
    // One member of the old group stands for it in the watcher; the moved
    // borrower for its new group (R2, R7).
    let mut watched = vec![borrower];
    watched.extend(affected.iter().copied().find(|b| *b != borrower));
    tx.set_group_membership(borrower, group, now).await?;
    let (_, joined) = group_members_of(tx, borrower, now).await?;
    affected.extend(joined);
    affected.sort();
    affected.dedup();
    let mut record = ctx.actor_record(actor, AuditAction::BorrowerGroupChanged);
    record.borrower_id = Some(borrower);
    record.data = json!({
        "group_id": group,
        "proposal_id": proposal.id,
        "proposed_by": proposal.proposed_by,
    });
    ctx.audit(tx, &record).await?;
    let cases_sent_back = reevaluate_open_cases(ctx, tx, actor, &affected).await?;
    let cause = format!("borrower {borrower} changed group");
    let breaches = watch_borrowers(ctx, tx, &watched, &cause, now).await?;
    Ok(GroupMove {
        valid_from: now,
        cases_sent_back,
        breaches,
    })
}

/// A staff member related to a borrower (KWG section 15).
#[derive(Debug, Clone)]
pub struct NewRelatedParty {
    pub borrower_id: BorrowerId,
    pub staff_id: StaffId,
    pub relation: String,
}

/// Records a staff member as related to a borrower: they may not vote on its
/// cases, and its credits need a board resolution (S6, V11).
pub async fn record_related_party(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    party: NewRelatedParty,
) -> CommandResult<RelatedParty> {
    if tx.borrower(party.borrower_id).await?.is_none() {
        return Err(CommandError::invalid("borrower_id names no borrower"));
    }
    if tx.staff_member(&party.staff_id).await?.is_none() {
        return Err(CommandError::invalid("staff_id names no staff member"));
    }
    let party = RelatedParty {
        borrower_id: party.borrower_id,
        staff_id: party.staff_id,
        relation: party.relation,
        recorded_by: actor.id().clone(),
        recorded_at: action_time(),
    };
    tx.insert_related_party(&party).await?;
    let mut record = ctx.actor_record(actor, AuditAction::RelatedPartyRecorded);
    record.borrower_id = Some(party.borrower_id);
    record.rule = Some(RuleId::V11);
    // The relation text may describe family ties: personal data stays out
    // of the hashed body (A6).
    record.data = json!({"staff_id": party.staff_id});
    ctx.audit(tx, &record).await?;
    Ok(party)
}

/// A group of connected clients with the borrowers that belong to it now.
#[derive(Debug, Clone)]
pub struct GroupNow {
    pub group: creditops_store::BorrowerGroup,
    pub members: Vec<creditops_store::Borrower>,
}

/// Groups of connected clients by id, each with its members now: back
/// office's own read of the facts it keeps (internal audit's read of the
/// same facts, with every dated membership, is audited as a read).
pub async fn groups_now(
    ctx: &Context,
    after: Option<&UnitId>,
    limit: u32,
) -> CommandResult<Vec<GroupNow>> {
    let mut tx = ctx.store.begin_read().await?;
    let now = action_time();
    let groups = tx.groups_page(after, limit).await?;
    let mut records = Vec::with_capacity(groups.len());
    for group in groups {
        let mut members = Vec::new();
        for id in tx.group_members(&group.id, now).await? {
            members.extend(tx.borrower(id).await?);
        }
        records.push(GroupNow { group, members });
    }
    Ok(records)
}

/// Borrowers by id after `after`, at most `limit`, each with the group it
/// belongs to now.
pub async fn borrowers_with_group(
    ctx: &Context,
    after: Option<BorrowerId>,
    limit: u32,
) -> CommandResult<Vec<(creditops_store::Borrower, Option<UnitId>)>> {
    let mut tx = ctx.store.begin_read().await?;
    let now = action_time();
    let borrowers = tx.borrowers_page(after, limit).await?;
    let mut rows = Vec::with_capacity(borrowers.len());
    for borrower in borrowers {
        let group = tx.group_of(borrower.id, now).await?;
        rows.push((borrower, group));
    }
    Ok(rows)
}

/// Related parties by borrower and staff id after `after`, at most `limit`:
/// back office's own read of what it records (S6, V11).
pub async fn related_parties(
    ctx: &Context,
    after: Option<(BorrowerId, StaffId)>,
    limit: u32,
) -> CommandResult<Vec<RelatedParty>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.related_parties_page(None, after, limit).await?)
}
