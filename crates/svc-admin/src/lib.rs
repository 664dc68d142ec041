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
use chrono::{DateTime, Utc};
use creditops_commands::proposals;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{Change, ChangeProposal, ProposalKind, ProposalStatus};
use creditops_domain::rules::{CompetenceOrder, DivergencePolicy};
use creditops_domain::{RuleParameters, RuleSet, StaffId, StaffMember};
use creditops_http::reports::{EntitlementReport, FormatQuery, entitlement_report};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext,
    openapi, run_command,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
        .routes(routes!(entitlements))
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

/// A change proposal and its decision.
#[derive(Debug, Serialize, ToSchema)]
struct ProposalView {
    id: Uuid,
    kind: ProposalKind,
    /// The change as proposed.
    #[schema(value_type = Change)]
    change: Value,
    status: ProposalStatus,
    proposed_by: StaffId,
    proposed_at: DateTime<Utc>,
    decided_by: Option<StaffId>,
    decided_at: Option<DateTime<Utc>>,
    /// Where another administrator decides it (paths on this service).
    links: ProposalLinks,
}

/// The decision paths of a proposal.
#[derive(Debug, Serialize, ToSchema)]
struct ProposalLinks {
    approve: String,
    reject: String,
}

impl ProposalView {
    fn new(p: &ChangeProposal) -> Self {
        Self {
            id: p.id,
            kind: p.kind,
            change: p.payload.clone(),
            status: p.status,
            proposed_by: p.proposed_by.clone(),
            proposed_at: p.proposed_at,
            decided_by: p.decided_by.clone(),
            decided_at: p.decided_at,
            links: ProposalLinks {
                approve: format!("/v1/proposals/{}/approve", p.id),
                reject: format!("/v1/proposals/{}/reject", p.id),
            },
        }
    }
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
        (status = 201, description = "The change is proposed", body = ProposalView),
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

/// A rule-set version in force from `valid_from`, its parameters inline.
/// (Spelled out rather than flattened: the parameters' schema is closed,
/// `additionalProperties: false`, which an `allOf` with the version fields
/// could never satisfy.)
#[derive(Debug, Serialize, ToSchema)]
struct RuleSetView {
    version: i64,
    valid_from: DateTime<Utc>,
    competence_order: CompetenceOrder,
    /// S5: months after leaving a market unit before a back-office vote.
    cooling_off_months: u32,
    divergence: DivergencePolicy,
    /// V8: below this aggregated exposure one market vote suffices; null
    /// keeps the lane closed. Decimal string.
    single_vote_below: Option<Decimal>,
    /// R5: days an approval's reserved headroom is held for disbursement.
    reservation_days: u32,
}

impl RuleSetView {
    fn new(rules: RuleSet) -> Self {
        let RuleParameters {
            competence_order,
            cooling_off_months,
            divergence,
            single_vote_below,
            reservation_days,
        } = rules.parameters;
        Self {
            version: rules.version,
            valid_from: rules.valid_from,
            competence_order,
            cooling_off_months,
            divergence,
            single_vote_below,
            reservation_days,
        }
    }
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
