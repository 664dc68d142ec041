//! The admin service (user administrators): the staff directory and every
//! four-eyes change to it and to the rules (S3, S9). A change is proposed by
//! one administrator and takes effect only when a different administrator
//! approves it; role assignments are checked against the SoD matrix when
//! proposed and again when approved. Administrators hold no business role and
//! no route here touches a credit case (S7).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use creditops_commands::proposals;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::Change;
use creditops_domain::{Role, StaffId, StaffMember};
use creditops_http::paging::{PageSize, next_cursor, parse_param};
use creditops_http::proposals::{self as four_eyes, ProposalQuery, ProposalView, Proposals};
use creditops_http::reports::{EntitlementReport, FormatQuery, entitlement_report};
use creditops_http::views::RuleSetView;
use creditops_http::{
    ApiError, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext, openapi, run_command,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const SERVICE: &str = "admin";

/// The proposals decided here: the directory and the rules (S9).
const DESK: Role = Role::UserAdmin;

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(routes!(list_staff))
        .routes(routes!(read_staff))
        .routes(routes!(propose, list_proposals))
        .routes(routes!(read_proposal))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(list_rules))
        .routes(routes!(entitlements))
}

/// This service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(SERVICE, api())
}

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    openapi::service_router(ctx.clone(), api(), ctx)
}

/// One page of staff ids.
#[derive(Debug, Serialize, ToSchema)]
struct StaffIds {
    items: Vec<StaffId>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<StaffId>,
}

/// A page of the staff list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StaffQuery {
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Page sizes of the staff list.
const STAFF_PAGE: PageSize = PageSize {
    default: 100,
    max: 1000,
};

/// Staff ids in the directory, in order.
#[utoipa::path(
    get,
    path = "/v1/staff",
    tag = "staff",
    params(Query<StaffQuery>),
    responses((status = 200, description = "One page of staff ids", body = StaffIds)),
)]
async fn list_staff(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<StaffQuery>,
) -> Result<axum::Json<StaffIds>, ApiError> {
    let limit = STAFF_PAGE.limit(query.limit)?;
    let after: Option<StaffId> = parse_param("after", query.after.as_deref())?;
    let items = proposals::staff_ids(&ctx.commands(), after.as_ref(), limit).await?;
    Ok(axum::Json(StaffIds {
        next: next_cursor(&items, limit, Clone::clone),
        items,
    }))
}

/// A person with dated units, roles and competence levels (S4).
#[utoipa::path(
    get,
    path = "/v1/staff/{id}",
    tag = "staff",
    params(PathId<StaffId>),
    responses((status = 200, description = "The person", body = StaffMember)),
)]
async fn read_staff(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<StaffId>,
) -> Result<axum::Json<StaffMember>, ApiError> {
    Ok(axum::Json(
        proposals::staff_member(&ctx.commands(), &id).await?,
    ))
}

/// Proposes a change to the directory or the rules: a role assignment, a
/// competence grant, a rule set, a new person (`staff_onboarding`), a unit
/// move, the end of a role, a suspension (or its lifting) or a leaver. It
/// takes effect when another administrator approves it (S3, S4, S9); the
/// lifecycle kinds count from the approval, and a suspended person or a
/// leaver is refused from their next request on. Nobody changes their own
/// roles, competences, unit or status (S7).
#[utoipa::path(
    post,
    path = "/v1/proposals",
    tag = "proposals",
    params(IdempotencyKey),
    request_body = Change,
    responses(
        (status = 202, description = "The change is proposed; another administrator decides it at `links`", body = ProposalView),
        (status = 403, description = "Refused by a rule (S3, S4, S7), named in the problem"),
        (status = 409, description = "The directory does not allow the change now (the person exists, is suspended already, has left, holds no such role), a rule set may not take effect in the past, or a concurrent request won"),
    ),
)]
async fn propose(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(change): Json<Change>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&change).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/proposals",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let proposal = proposals::propose_change(&commands, tx, &actor, &change).await?;
                four_eyes::accepted(&proposal)
            })
        },
    )
    .await
}

/// Change proposals of the directory and the rules, optionally by status.
#[utoipa::path(
    get,
    path = "/v1/proposals",
    tag = "proposals",
    params(Query<ProposalQuery>),
    responses((status = 200, description = "The proposals", body = Proposals)),
)]
async fn list_proposals(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<ProposalQuery>,
) -> Result<axum::Json<Proposals>, ApiError> {
    Ok(axum::Json(four_eyes::list(&ctx, query, DESK).await?))
}

/// One change proposal.
#[utoipa::path(
    get,
    path = "/v1/proposals/{id}",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id")),
    responses((status = 200, description = "The proposal", body = ProposalView)),
)]
async fn read_proposal(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<Uuid>,
) -> Result<axum::Json<ProposalView>, ApiError> {
    Ok(axum::Json(four_eyes::read(&ctx, id, DESK).await?))
}

/// Approves a proposal of another administrator; it takes effect (S9).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/approve",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is approved and applied", body = ProposalView),
        (status = 403, description = "The proposer cannot decide their own proposal (S9)"),
        (status = 409, description = "The proposal is decided already, its rule set would take effect in the past, or a concurrent request won"),
        (status = 422, description = "The change is no longer valid against the directory"),
    ),
)]
async fn approve(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    four_eyes::decide(ctx, principal, key, id, Verdict::Approve, DESK).await
}

/// Rejects a proposal of another administrator (S9).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/reject",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is rejected", body = ProposalView),
        (status = 403, description = "The proposer cannot decide their own proposal (S9)"),
        (status = 409, description = "The proposal is decided already, or a concurrent request won"),
    ),
)]
async fn reject(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    four_eyes::decide(ctx, principal, key, id, Verdict::Reject, DESK).await
}

/// Rule-set versions.
#[derive(Debug, Serialize, ToSchema)]
struct RuleSets {
    items: Vec<RuleSetView>,
}

/// Every rule-set version (competence order, cooling-off, divergence, lane).
#[utoipa::path(
    get,
    path = "/v1/rules",
    tag = "rules",
    responses((status = 200, description = "The rule sets", body = RuleSets)),
)]
async fn list_rules(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<RuleSets>, ApiError> {
    Ok(axum::Json(RuleSets {
        items: proposals::rule_sets(&ctx.commands())
            .await?
            .into_iter()
            .map(RuleSetView::new)
            .collect(),
    }))
}

/// Who holds which role and competence level, since when, and which
/// approved proposal granted it (proposer, approver, approval time); an
/// entry loaded by the bootstrap import says so. For the periodic review of
/// entitlements (AT 4.3.1); the read is audited.
#[utoipa::path(
    get,
    path = "/v1/reports/entitlements",
    tag = "reports",
    params(Query<FormatQuery>),
    responses((
        status = 200,
        description = "The report as JSON or CSV",
        content(
            (EntitlementReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn entitlements(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    headers: axum::http::HeaderMap,
    Query(query): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    entitlement_report(&ctx, &principal, &headers, &query).await
}
