//! The admin service (user administrators): the staff directory and every
//! four-eyes change to it and to the rules (S3, S9). A change is proposed by
//! one administrator and takes effect only when a different administrator
//! approves it; role assignments are checked against the SoD matrix when
//! proposed and again when approved. Administrators hold no business role and
//! no route here touches a credit case (S7).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use creditops_commands::proposals;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{Change, ProposalStatus};
use creditops_domain::{StaffId, StaffMember};
use creditops_http::views::{ProposalView, RuleSetView};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext,
    openapi, run_command,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const SERVICE: &str = "admin";

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
}

/// This service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(SERVICE, api())
}

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    openapi::service_router(ctx.clone(), api(), ctx)
}

/// Staff ids.
#[derive(Debug, Serialize, ToSchema)]
struct StaffIds {
    items: Vec<StaffId>,
}

/// Staff ids in the directory.
#[utoipa::path(
    get,
    path = "/v1/staff",
    tag = "staff",
    responses((status = 200, description = "Every staff id", body = StaffIds)),
)]
async fn list_staff(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<StaffIds>, ApiError> {
    Ok(axum::Json(StaffIds {
        items: proposals::staff_ids(&ctx.commands()).await?,
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

/// Proposes a role assignment, competence grant or rule set; it takes
/// effect when another administrator approves it (S3, S9).
#[utoipa::path(
    post,
    path = "/v1/proposals",
    tag = "proposals",
    params(IdempotencyKey),
    request_body = Change,
    responses(
        (status = 201, description = "The change is proposed", body = ProposalView),
        (status = 409, description = "A rule set may not take effect in the past, or a concurrent request won"),
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
                CommandOutcome::view(StatusCode::CREATED, &ProposalView::new(&proposal))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ProposalQuery {
    /// Every status when absent.
    #[param(inline)]
    status: Option<ProposalStatus>,
}

/// Change proposals.
#[derive(Debug, Serialize, ToSchema)]
struct Proposals {
    items: Vec<ProposalView>,
}

/// Change proposals, optionally by status.
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
    let items = proposals::proposals(&ctx.commands(), query.status)
        .await?
        .iter()
        .map(ProposalView::new)
        .collect();
    Ok(axum::Json(Proposals { items }))
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
    let proposal = proposals::proposal(&ctx.commands(), id).await?;
    Ok(axum::Json(ProposalView::new(&proposal)))
}

/// Approves a proposal of another administrator; it takes effect (S9).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/approve",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is approved and applied", body = ProposalView),
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
    let fingerprint = id.as_bytes().to_vec();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/proposals/{id}/approve",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let verdict = Verdict::Approve;
                let proposal =
                    proposals::decide_proposal(&commands, tx, &actor, id, verdict).await?;
                CommandOutcome::view(StatusCode::OK, &ProposalView::new(&proposal))
            })
        },
    )
    .await
}

/// Rejects a proposal of another administrator (S9).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/reject",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is rejected", body = ProposalView),
        (status = 409, description = "The proposal is decided already, or a concurrent request won"),
    ),
)]
async fn reject(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    let fingerprint = id.as_bytes().to_vec();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/proposals/{id}/reject",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let verdict = Verdict::Reject;
                let proposal =
                    proposals::decide_proposal(&commands, tx, &actor, id, verdict).await?;
                CommandOutcome::view(StatusCode::OK, &ProposalView::new(&proposal))
            })
        },
    )
    .await
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
