//! Internal audit's read access beside the trail (A7, AT 4.4.3): the staff
//! directory with its dated history, change proposals, rule sets,
//! borrowers, groups of connected clients with their memberships, related
//! parties, every limit version and case lists. Read-only; every read is
//! audited (see `creditops_commands::audit_reads`). Every list is
//! cursor-paged as the events are: `after` (the `next` of the previous
//! page) and `limit`, 1-1000 (default 100); a larger page is refused (422).

use crate::AppState;
use axum::Json;
use axum::extract::State;
use creditops_commands::audit_reads::{self, GroupRecord};
use creditops_domain::{BorrowerId, CaseId, CaseStatus, StaffId, StaffMember, UnitId};
use creditops_http::granting::{CreditView, RatingHistory};
use creditops_http::paging::{CaseListParams, CasePage, PageSize, next_cursor, parse_param};
use creditops_http::proposals::ProposalQuery;
use creditops_http::views::{CaseSummaryView, ProposalView, RuleSetView};
use creditops_http::{ApiError, PathId, Principal, Query};
use creditops_risk::{LimitKind, LimitStatus, LimitVersion};
use creditops_store::{Borrower, BorrowerGroup, GroupMembership, RelatedParty};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Page sizes of every list here, as of the events (A4).
const PAGE: PageSize = PageSize {
    default: 100,
    max: crate::MAX_PAGE,
};

/// The routes of this module.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_staff))
        .routes(routes!(read_staff))
        .routes(routes!(list_proposals))
        .routes(routes!(read_proposal))
        .routes(routes!(list_rules))
        .routes(routes!(list_borrowers))
        .routes(routes!(read_borrower))
        .routes(routes!(list_groups))
        .routes(routes!(read_group))
        .routes(routes!(list_related_parties))
        .routes(routes!(list_limits))
        .routes(routes!(list_cases))
        .routes(routes!(read_credit))
        .routes(routes!(borrower_ratings))
}

/// A page of a list with a text cursor.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of staff.
#[derive(Debug, Serialize, ToSchema)]
struct StaffPage {
    items: Vec<StaffMember>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<StaffId>,
}

/// Staff with their dated units, roles and competence grants (S4), by id;
/// the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/staff",
    tag = "directory",
    params(Query<PageQuery>),
    responses((status = 200, description = "One page of staff", body = StaffPage)),
)]
async fn list_staff(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<StaffPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let after: Option<StaffId> = parse_param("after", q.after.as_deref())?;
    let items = audit_reads::staff_page(&ctx.commands(), &principal, after.as_ref(), limit).await?;
    Ok(Json(StaffPage {
        next: next_cursor(&items, limit, |m| m.id.clone()),
        items,
    }))
}

/// One person with their dated history (S4); the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/staff/{id}",
    tag = "directory",
    params(PathId<StaffId>),
    responses((status = 200, description = "The person", body = StaffMember)),
)]
async fn read_staff(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<StaffId>,
) -> Result<Json<StaffMember>, ApiError> {
    Ok(Json(
        audit_reads::staff_member(&ctx.commands(), &principal, &id).await?,
    ))
}

/// One page of change proposals, read-only (the decision links are the
/// desks').
#[derive(Debug, Serialize, ToSchema)]
struct ProposalPage {
    items: Vec<ProposalView>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<Uuid>,
}

/// Change proposals of every kind (S9) with their decisions, oldest first;
/// the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/proposals",
    tag = "directory",
    params(Query<ProposalQuery>),
    responses((status = 200, description = "One page of proposals", body = ProposalPage)),
)]
async fn list_proposals(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<ProposalQuery>,
) -> Result<Json<ProposalPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let proposals =
        audit_reads::proposals_page(&ctx.commands(), &principal, q.status, q.after, limit).await?;
    Ok(Json(ProposalPage {
        next: next_cursor(&proposals, limit, |p| p.id),
        items: proposals.iter().map(ProposalView::new).collect(),
    }))
}

/// One change proposal; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/proposals/{id}",
    tag = "directory",
    params(("id" = Uuid, Path, description = "The proposal id")),
    responses((status = 200, description = "The proposal", body = ProposalView)),
)]
async fn read_proposal(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<Uuid>,
) -> Result<Json<ProposalView>, ApiError> {
    let proposal = audit_reads::proposal(&ctx.commands(), &principal, id).await?;
    Ok(Json(ProposalView::new(&proposal)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct RuleQuery {
    /// The `next` of the previous page (a rule-set version).
    after: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of rule-set versions.
#[derive(Debug, Serialize, ToSchema)]
struct RuleSetPage {
    items: Vec<RuleSetView>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<i64>,
}

/// Every rule-set version (competence order, cooling-off, divergence,
/// lane), by version; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/rules",
    tag = "directory",
    params(Query<RuleQuery>),
    responses((status = 200, description = "One page of rule sets", body = RuleSetPage)),
)]
async fn list_rules(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<RuleQuery>,
) -> Result<Json<RuleSetPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let sets = audit_reads::rule_sets_page(&ctx.commands(), &principal, q.after, limit).await?;
    Ok(Json(RuleSetPage {
        next: next_cursor(&sets, limit, |r| r.version),
        items: sets.into_iter().map(RuleSetView::new).collect(),
    }))
}

/// One page of borrowers.
#[derive(Debug, Serialize, ToSchema)]
struct BorrowerPage {
    items: Vec<Borrower>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<BorrowerId>,
}

/// Borrowers, by id; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/borrowers",
    tag = "credit files",
    params(Query<PageQuery>),
    responses((status = 200, description = "One page of borrowers", body = BorrowerPage)),
)]
async fn list_borrowers(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<BorrowerPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let after: Option<BorrowerId> = parse_param("after", q.after.as_deref())?;
    let items = audit_reads::borrowers_page(&ctx.commands(), &principal, after, limit).await?;
    Ok(Json(BorrowerPage {
        next: next_cursor(&items, limit, |b| b.id),
        items,
    }))
}

/// One borrower; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}",
    tag = "credit files",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower", body = Borrower)),
)]
async fn read_borrower(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<Json<Borrower>, ApiError> {
    Ok(Json(
        audit_reads::borrower(&ctx.commands(), &principal, id).await?,
    ))
}

/// A group of connected clients with every membership it ever had.
#[derive(Debug, Serialize, ToSchema)]
struct GroupView {
    #[serde(flatten)]
    group: BorrowerGroup,
    /// Dated memberships, ended ones included, oldest first.
    memberships: Vec<GroupMembership>,
}

impl GroupView {
    fn new(record: GroupRecord) -> Self {
        Self {
            group: record.group,
            memberships: record.memberships,
        }
    }
}

/// One page of groups.
#[derive(Debug, Serialize, ToSchema)]
struct GroupPage {
    items: Vec<GroupView>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<String>,
}

/// Groups of connected clients with their dated memberships (R2), by id;
/// the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/groups",
    tag = "credit files",
    params(Query<PageQuery>),
    responses((status = 200, description = "One page of groups", body = GroupPage)),
)]
async fn list_groups(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<GroupPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let after: Option<UnitId> = parse_param("after", q.after.as_deref())?;
    let groups =
        audit_reads::groups_page(&ctx.commands(), &principal, after.as_ref(), limit).await?;
    Ok(Json(GroupPage {
        next: next_cursor(&groups, limit, |g| g.group.id.to_string()),
        items: groups.into_iter().map(GroupView::new).collect(),
    }))
}

/// One group of connected clients with its dated memberships; the read is
/// audited (A7).
#[utoipa::path(
    get,
    path = "/v1/groups/{id}",
    tag = "credit files",
    params(("id" = String, Path, description = "The group id")),
    responses((status = 200, description = "The group", body = GroupView)),
)]
async fn read_group(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<UnitId>,
) -> Result<Json<GroupView>, ApiError> {
    let group = audit_reads::group(&ctx.commands(), &principal, &id).await?;
    Ok(Json(GroupView::new(group)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct RelatedPartyQuery {
    /// Only the related parties of this borrower.
    #[param(value_type = Option<BorrowerId>, inline)]
    borrower_id: Option<String>,
    /// The `next` of the previous page (`borrower_id:staff_id`).
    after: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of related parties.
#[derive(Debug, Serialize, ToSchema)]
struct RelatedPartyPage {
    items: Vec<RelatedParty>,
    /// Pass as `after` for the next page (`borrower_id:staff_id`); null on
    /// the last page.
    next: Option<String>,
}

/// The cursor `borrower_id:staff_id` of a related-party page.
fn related_party_cursor(value: Option<&str>) -> Result<Option<(BorrowerId, StaffId)>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || ApiError::validation("after must be the next of a previous page");
    let (borrower, staff) = value.split_once(':').ok_or_else(invalid)?;
    let borrower = borrower.parse().map_err(|_| invalid())?;
    let staff = staff.parse().map_err(|_| invalid())?;
    Ok(Some((borrower, staff)))
}

/// Staff recorded as related parties of borrowers (KWG section 15, V11),
/// with the relation as recorded; the read is audited (A7), the relation
/// text stays out of the audit event (A6).
#[utoipa::path(
    get,
    path = "/v1/related-parties",
    tag = "credit files",
    params(Query<RelatedPartyQuery>),
    responses((status = 200, description = "One page of related parties", body = RelatedPartyPage)),
)]
async fn list_related_parties(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<RelatedPartyQuery>,
) -> Result<Json<RelatedPartyPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let borrower: Option<BorrowerId> = parse_param("borrower_id", q.borrower_id.as_deref())?;
    let after = related_party_cursor(q.after.as_deref())?;
    let items =
        audit_reads::related_parties_page(&ctx.commands(), &principal, borrower, after, limit)
            .await?;
    Ok(Json(RelatedPartyPage {
        next: next_cursor(&items, limit, |r| {
            format!("{}:{}", r.borrower_id, r.staff_id)
        }),
        items,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    /// Every status when absent.
    #[param(value_type = Option<LimitStatus>, inline)]
    status: Option<String>,
    /// Every kind when absent.
    #[param(value_type = Option<LimitKind>, inline)]
    kind: Option<String>,
    /// The `next` of the previous page.
    after: Option<Uuid>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of limit versions.
#[derive(Debug, Serialize, ToSchema)]
struct LimitVersionPage {
    items: Vec<LimitVersion>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<Uuid>,
}

/// Every version of every limit (R1, R3, R8) with who proposed and decided
/// it, oldest proposal first; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/limits",
    tag = "credit files",
    params(Query<LimitQuery>),
    responses((status = 200, description = "One page of limit versions", body = LimitVersionPage)),
)]
async fn list_limits(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<LimitQuery>,
) -> Result<Json<LimitVersionPage>, ApiError> {
    let limit = PAGE.limit(q.limit)?;
    let status: Option<LimitStatus> = parse_param("status", q.status.as_deref())?;
    let kind: Option<LimitKind> = parse_param("kind", q.kind.as_deref())?;
    let items =
        audit_reads::limit_versions_page(&ctx.commands(), &principal, status, kind, q.after, limit)
            .await?;
    Ok(Json(LimitVersionPage {
        next: next_cursor(&items, limit, |v| v.id),
        items,
    }))
}

/// Filters of the case list; they combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct CaseQuery {
    /// Every status when absent.
    #[param(value_type = Option<CaseStatus>, inline)]
    status: Option<String>,
    #[param(value_type = Option<BorrowerId>, inline)]
    borrower_id: Option<String>,
    /// RFC 3339; cases opened at or after.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; cases opened before.
    #[param(format = DateTime)]
    to: Option<String>,
    /// The `next` of the previous page.
    #[param(value_type = Option<CaseId>, inline)]
    after: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Cases of every unit by status, borrower and opening time, by id; the
/// read is audited (A7). `GET /v1/cases/{id}` shows one with its votes.
#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "cases",
    params(Query<CaseQuery>),
    responses((status = 200, description = "One page of cases", body = CasePage)),
)]
async fn list_cases(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<CaseQuery>,
) -> Result<Json<CasePage>, ApiError> {
    let filter = CaseListParams {
        status: q.status.as_deref(),
        borrower_id: q.borrower_id.as_deref(),
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        after: q.after.as_deref(),
        limit: q.limit,
    }
    .into_filter(PAGE)?;
    let cases = audit_reads::cases_page(&ctx.commands(), &principal, &filter).await?;
    Ok(Json(CasePage {
        next: next_cursor(&cases, filter.limit, |c| c.id),
        items: cases.iter().map(CaseSummaryView::new).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_party_cursors_name_a_borrower_and_a_person() {
        let borrower = BorrowerId::generate();
        let cursor = format!("{borrower}:lo-1");
        let parsed = related_party_cursor(Some(&cursor)).unwrap();
        assert_eq!(parsed, Some((borrower, StaffId::parse("lo-1").unwrap())));
        assert!(related_party_cursor(Some("lo-1")).is_err());
        assert!(related_party_cursor(Some("x:lo-1")).is_err());
        assert_eq!(related_party_cursor(None).unwrap(), None);
    }
}

/// An approved credit with every version and the case that decided each
/// (L1); the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/credits/{id}",
    tag = "credit files",
    params(PathId<creditops_domain::CreditId>),
    responses((status = 200, description = "The credit", body = CreditView)),
)]
async fn read_credit(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<creditops_domain::CreditId>,
) -> Result<Json<CreditView>, ApiError> {
    let (credit, versions) = audit_reads::credit(&ctx.commands(), &principal, id).await?;
    Ok(Json(CreditView::new(&credit, &versions)))
}

/// A borrower's ratings, set by back office and proposed by market, newest
/// first (L4); the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/ratings",
    tag = "credit files",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The rating history", body = RatingHistory)),
)]
async fn borrower_ratings(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<Json<RatingHistory>, ApiError> {
    let items = audit_reads::ratings(&ctx.commands(), &principal, id).await?;
    Ok(Json(RatingHistory { items }))
}
