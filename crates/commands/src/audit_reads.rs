//! Internal audit's reads of everything beside the trail (A7): the staff
//! directory with its dated history, change proposals, rule sets,
//! borrowers, groups of connected clients with their memberships, related
//! parties, limits with every version, and case lists. Each read is audited
//! in the transaction that reads (as the trail's own queries are, see
//! [`crate::audit_trail::events`]): if the audit event cannot be written,
//! nothing is handed out. The hashed body names what was read, the filters
//! and how many records came back: ids and counts, never the personal data
//! read (names, relation texts; A6).

use crate::{Actor, CommandError, CommandResult, Context, page_of};
use creditops_audit::AuditAction;
use creditops_domain::deviating::DeviatingDecision;
use creditops_domain::proposal::{ChangeProposal, ProposalStatus};
use creditops_domain::{BorrowerId, CaseId, RuleSet, StaffId, StaffMember, Timestamp, UnitId};
use creditops_risk::{LimitKind, LimitStatus, LimitVersion};
use creditops_store::{
    Borrower, BorrowerGroup, CaseFilter, CaseSummary, GroupMembership, ProposalFilter,
    RelatedParty, Tx,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// What an auditor's read selected, as its audit event records it.
struct ReadRecord {
    /// The kind of record read, e.g. `staff`.
    resource: &'static str,
    /// The filters and the cursor, ids only.
    selection: Value,
    returned: usize,
    case_id: Option<CaseId>,
    borrower_id: Option<BorrowerId>,
}

impl ReadRecord {
    fn new(resource: &'static str, selection: Value, returned: usize) -> Self {
        Self {
            resource,
            selection,
            returned,
            case_id: None,
            borrower_id: None,
        }
    }
}

/// Audits the read in `tx` and commits it with the read (A7).
async fn commit_read(
    ctx: &Context,
    mut tx: Box<dyn Tx>,
    actor: &Actor,
    read: ReadRecord,
) -> CommandResult<()> {
    let mut record = ctx.actor_record(actor, AuditAction::AuditRecordsRead);
    record.case_id = read.case_id;
    record.borrower_id = read.borrower_id;
    record.data = json!({
        "resource": read.resource,
        "selection": read.selection,
        "returned": read.returned,
    });
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(())
}

/// Staff with their dated units, roles and competence grants (S4), by id.
pub async fn staff_page(
    ctx: &Context,
    actor: &Actor,
    after: Option<&StaffId>,
    limit: u32,
) -> CommandResult<Vec<StaffMember>> {
    let mut tx = ctx.store.begin().await?;
    let ids = page_of(tx.staff_ids().await?, Clone::clone, after, limit);
    let mut staff = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(member) = tx.staff_member(id).await? {
            staff.push(member);
        }
    }
    let selection = json!({"after": after, "limit": limit});
    commit_read(
        ctx,
        tx,
        actor,
        ReadRecord::new("staff", selection, staff.len()),
    )
    .await?;
    Ok(staff)
}

/// One person with their dated history (S4).
pub async fn staff_member(
    ctx: &Context,
    actor: &Actor,
    id: &StaffId,
) -> CommandResult<StaffMember> {
    let mut tx = ctx.store.begin().await?;
    let member = tx
        .staff_member(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no staff member with that id"))?;
    let selection = json!({"staff_id": id});
    commit_read(ctx, tx, actor, ReadRecord::new("staff", selection, 1)).await?;
    Ok(member)
}

/// Change proposals (S9), optionally by status, oldest first.
pub async fn proposals_page(
    ctx: &Context,
    actor: &Actor,
    status: Option<ProposalStatus>,
    after: Option<Uuid>,
    limit: u32,
) -> CommandResult<Vec<ChangeProposal>> {
    let mut tx = ctx.store.begin().await?;
    let filter = ProposalFilter {
        status,
        kinds: Vec::new(),
        newest_first: false,
        after,
        limit,
    };
    let proposals = tx.proposals(&filter).await?;
    let selection = json!({"status": status.map(|s| s.as_str()), "after": after, "limit": limit});
    let read = ReadRecord::new("proposals", selection, proposals.len());
    commit_read(ctx, tx, actor, read).await?;
    Ok(proposals)
}

/// One change proposal.
pub async fn proposal(ctx: &Context, actor: &Actor, id: Uuid) -> CommandResult<ChangeProposal> {
    let mut tx = ctx.store.begin().await?;
    let proposal = tx
        .proposal(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no proposal with that id"))?;
    let read = ReadRecord::new("proposals", json!({"proposal_id": id}), 1);
    commit_read(ctx, tx, actor, read).await?;
    Ok(proposal)
}

/// Rule-set versions (competence order, cooling-off, divergence, lane), by
/// version.
pub async fn rule_sets_page(
    ctx: &Context,
    actor: &Actor,
    after: Option<i64>,
    limit: u32,
) -> CommandResult<Vec<RuleSet>> {
    let mut tx = ctx.store.begin().await?;
    let sets = page_of(tx.rule_sets().await?, |r| r.version, after.as_ref(), limit);
    let selection = json!({"after": after, "limit": limit});
    commit_read(
        ctx,
        tx,
        actor,
        ReadRecord::new("rule_sets", selection, sets.len()),
    )
    .await?;
    Ok(sets)
}

/// Borrowers, by id.
pub async fn borrowers_page(
    ctx: &Context,
    actor: &Actor,
    after: Option<BorrowerId>,
    limit: u32,
) -> CommandResult<Vec<Borrower>> {
    let mut tx = ctx.store.begin().await?;
    let borrowers = tx.borrowers_page(after, limit).await?;
    let selection = json!({"after": after, "limit": limit});
    let read = ReadRecord::new("borrowers", selection, borrowers.len());
    commit_read(ctx, tx, actor, read).await?;
    Ok(borrowers)
}

/// One borrower.
pub async fn borrower(ctx: &Context, actor: &Actor, id: BorrowerId) -> CommandResult<Borrower> {
    let mut tx = ctx.store.begin().await?;
    let borrower = tx
        .borrower(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no borrower with that id"))?;
    let mut read = ReadRecord::new("borrowers", json!({}), 1);
    read.borrower_id = Some(id);
    commit_read(ctx, tx, actor, read).await?;
    Ok(borrower)
}

/// An approved credit with every version (L1, L12).
pub async fn credit(
    ctx: &Context,
    actor: &Actor,
    id: creditops_domain::CreditId,
) -> CommandResult<(creditops_domain::Credit, Vec<creditops_domain::Credit>)> {
    let mut tx = ctx.store.begin().await?;
    let credit = tx
        .credit(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no credit with that id"))?;
    let versions = tx.credit_versions(id).await?;
    let mut read = ReadRecord::new("credits", json!({ "credit_id": id }), versions.len());
    read.borrower_id = Some(credit.borrower_id);
    commit_read(ctx, tx, actor, read).await?;
    Ok((credit, versions))
}

/// A borrower's ratings, set and proposed, newest first (L4, L12).
pub async fn ratings(
    ctx: &Context,
    actor: &Actor,
    borrower: BorrowerId,
) -> CommandResult<Vec<creditops_domain::Rating>> {
    let mut tx = ctx.store.begin().await?;
    if tx.borrower(borrower).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    let ratings = tx
        .ratings(borrower, crate::granting::RATING_HISTORY)
        .await?;
    let mut read = ReadRecord::new("ratings", json!({}), ratings.len());
    read.borrower_id = Some(borrower);
    commit_read(ctx, tx, actor, read).await?;
    Ok(ratings)
}

/// A group of connected clients with every membership it ever had.
#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub group: BorrowerGroup,
    pub memberships: Vec<GroupMembership>,
}

/// Groups of connected clients with their dated memberships, by id.
pub async fn groups_page(
    ctx: &Context,
    actor: &Actor,
    after: Option<&UnitId>,
    limit: u32,
) -> CommandResult<Vec<GroupRecord>> {
    let mut tx = ctx.store.begin().await?;
    let groups = tx.groups_page(after, limit).await?;
    let mut records = Vec::with_capacity(groups.len());
    for group in groups {
        let memberships = tx.group_history(&group.id).await?;
        records.push(GroupRecord { group, memberships });
    }
    let selection = json!({"after": after, "limit": limit});
    commit_read(
        ctx,
        tx,
        actor,
        ReadRecord::new("groups", selection, records.len()),
    )
    .await?;
    Ok(records)
}

/// One group of connected clients with its dated memberships.
pub async fn group(ctx: &Context, actor: &Actor, id: &UnitId) -> CommandResult<GroupRecord> {
    let mut tx = ctx.store.begin().await?;
    let group = tx
        .group(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no group with that id"))?;
    let memberships = tx.group_history(id).await?;
    let read = ReadRecord::new("groups", json!({"group_id": id}), 1);
    commit_read(ctx, tx, actor, read).await?;
    Ok(GroupRecord { group, memberships })
}

/// Related parties (KWG section 15), of one borrower or of all, by borrower
/// and staff id. The relation text is handed to the auditor, and stays out
/// of the audit event (A6).
pub async fn related_parties_page(
    ctx: &Context,
    actor: &Actor,
    borrower: Option<BorrowerId>,
    after: Option<(BorrowerId, StaffId)>,
    limit: u32,
) -> CommandResult<Vec<RelatedParty>> {
    let mut tx = ctx.store.begin().await?;
    let selection = json!({
        "after": after.as_ref().map(|(b, s)| json!({"borrower_id": b, "staff_id": s})),
        "limit": limit,
    });
    let parties = tx.related_parties_page(borrower, after, limit).await?;
    let mut read = ReadRecord::new("related_parties", selection, parties.len());
    read.borrower_id = borrower;
    commit_read(ctx, tx, actor, read).await?;
    Ok(parties)
}

/// Every version of every limit (R1, R8), optionally by status and kind,
/// oldest proposal first.
pub async fn limit_versions_page(
    ctx: &Context,
    actor: &Actor,
    status: Option<LimitStatus>,
    kind: Option<LimitKind>,
    after: Option<Uuid>,
    limit: u32,
) -> CommandResult<Vec<LimitVersion>> {
    let mut tx = ctx.store.begin().await?;
    let versions: Vec<LimitVersion> = tx
        .limit_versions(status, None)
        .await?
        .into_iter()
        .filter(|v| kind.is_none_or(|kind| v.subject.kind() == kind))
        .collect();
    // Limit version ids are UUIDv7: their order is the order of proposal.
    let versions = page_of(versions, |v| v.id, after.as_ref(), limit);
    let selection = json!({
        "status": status.map(|s| s.as_str()),
        "kind": kind.map(|k| k.as_str()),
        "after": after,
        "limit": limit,
    });
    let read = ReadRecord::new("limit_versions", selection, versions.len());
    commit_read(ctx, tx, actor, read).await?;
    Ok(versions)
}

/// Cases by status, borrower and opening time, by id.
pub async fn cases_page(
    ctx: &Context,
    actor: &Actor,
    filter: &CaseFilter,
) -> CommandResult<Vec<CaseSummary>> {
    let mut tx = ctx.store.begin().await?;
    let cases = tx.cases_page(filter).await?;
    let selection = json!({
        "status": filter.status.map(|s| s.as_str()),
        "from": filter.opened_from,
        "to": filter.opened_before,
        "after": filter.after,
        "limit": filter.limit,
    });
    let mut read = ReadRecord::new("cases", selection, cases.len());
    read.borrower_id = filter.borrower_id;
    commit_read(ctx, tx, actor, read).await?;
    Ok(cases)
}

/// The deviating decisions of [`from`, `to`) (L11); the read is audited.
pub async fn deviating_decisions(
    ctx: &Context,
    actor: &Actor,
    from: Timestamp,
    to: Timestamp,
) -> CommandResult<Vec<DeviatingDecision>> {
    let mut tx = ctx.store.begin().await?;
    let items = crate::reports::deviating_in(tx.as_mut(), from, to).await?;
    let selection = json!({ "from": from, "to": to });
    let read = ReadRecord::new("deviating_decisions", selection, items.len());
    commit_read(ctx, tx, actor, read).await?;
    Ok(items)
}

/// The monitoring report (L6-L10) for internal audit; the read is audited.
pub async fn monitoring_report(
    ctx: &Context,
    actor: &Actor,
) -> CommandResult<crate::monitoring::Report> {
    let mut tx = ctx.store.begin().await?;
    let report = crate::monitoring::report_in(tx.as_mut()).await?;
    let read = ReadRecord::new("monitoring_report", json!({}), report.rows());
    commit_read(ctx, tx, actor, read).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::page_of;

    #[test]
    fn pages_follow_the_key_after_the_cursor() {
        let items = vec![5, 1, 4, 2, 3];
        assert_eq!(page_of(items.clone(), |x| *x, None, 2), vec![1, 2]);
        assert_eq!(page_of(items.clone(), |x| *x, Some(&2), 2), vec![3, 4]);
        assert_eq!(page_of(items, |x| *x, Some(&5), 2), Vec::<i32>::new());
    }
}
