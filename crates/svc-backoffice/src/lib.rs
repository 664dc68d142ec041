//! The back-office service (credit analysts): the queue of cases awaiting the
//! second vote, the independent second vote, and returning a case to market
//! for rework; groups of connected clients (a move is a four-eyes proposal
//! another analyst decides), related parties and the back office's
//! decision on limit versions (R8). No market route exists in this router
//! (S1).

mod collateral;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use creditops_commands::{cases, groups, inputs, limits};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::InputChange;
use creditops_domain::{BorrowerId, CaseId, CaseStatus, Role, StaffId, UnitId, VoteStage};
use creditops_http::documents;
use creditops_http::granting;
use creditops_http::monitoring;
use creditops_http::paging::next_cursor;
use creditops_http::proposals::{self as four_eyes, ProposalQuery, ProposalView, Proposals};
use creditops_http::views::{
    CaseSummaryView, CaseView, LIMIT_VERSION_PAGE, LimitDecision, LimitVersions, VoteRequest,
    case_json,
};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext,
    openapi, routes, run_command,
};
use creditops_risk::{LimitKind, LimitStatus};
use creditops_store::{BorrowerGroup, RelatedParty};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const SERVICE: &str = "backoffice";

const MAX_PAGE: u32 = 200;

/// The proposals decided here: group membership (V4).
const DESK: Role = Role::CreditAnalyst;

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(routes!(list_cases))
        .routes(routes!(read_case))
        .routes(routes!(second_vote))
        .routes(routes!(return_case))
        .routes(routes!(board_resolution))
        .routes(routes!(confirm_board_resolution))
        .routes(routes!(create_group))
        .routes(routes!(set_group))
        .routes(routes!(list_proposals))
        .routes(routes!(read_proposal))
        .routes(routes!(approve_proposal))
        .routes(routes!(reject_proposal))
        .routes(routes!(record_related_party))
        .routes(routes!(limit_proposals))
        .routes(routes!(approve_limit))
        .routes(routes!(reject_limit))
        .routes(routes!(collateral::borrower_collateral))
        .routes(routes!(collateral::value_collateral))
        .routes(routes!(collateral::confirm_valuation))
        .routes(routes!(collateral::legal_check))
        .routes(routes!(collateral::revaluations_due))
        .routes(routes!(granting::set_rating))
        .routes(routes!(granting::rating_history))
        .routes(routes!(granting::borrower_credits))
        .routes(routes!(granting::read_credit))
        .routes(routes!(granting::sign_off_condition))
        .routes(routes!(monitoring::watch_list))
        .routes(routes!(monitoring::due_reviews))
        .routes(routes!(monitoring::borrower_reviews))
        .routes(routes!(monitoring::assign_review))
        .routes(routes!(monitoring::complete_review))
        .routes(routes!(monitoring::raise_flag, monitoring::borrower_flags))
        .routes(routes!(monitoring::clear_flag))
        .routes(routes!(
            monitoring::borrower_stage,
            monitoring::transfer_stage
        ))
        .routes(routes!(monitoring::update_milestone))
        .routes(routes!(
            monitoring::propose_provision,
            monitoring::list_provisions
        ))
        .routes(routes!(monitoring::approve_provision))
        .routes(routes!(monitoring::reject_provision))
        .routes(routes!(monitoring::monitoring_alerts))
        .routes(routes!(
            documents::add_borrower_document,
            documents::list_borrower_documents
        ))
        .routes(routes!(documents::list_case_documents))
        .routes(routes!(documents::document_content))
        .routes(routes!(
            documents::record_financials,
            documents::list_financials
        ))
}

/// This service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(SERVICE, api())
}

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    openapi::service_router(ctx.clone(), api(), ctx)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Case status; default `awaiting_second_vote`.
    #[param(value_type = Option<CaseStatus>, inline)]
    status: Option<String>,
    /// The `next` of the previous page.
    #[param(value_type = Option<CaseId>, inline)]
    after: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// One page of cases.
#[derive(Debug, Serialize, ToSchema)]
struct CasePage {
    items: Vec<CaseSummaryView>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<CaseId>,
}

/// Cases by status (default: awaiting the second vote), paged.
#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "cases",
    params(Query<ListQuery>),
    responses((status = 200, description = "One page of cases", body = CasePage)),
)]
async fn list_cases(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<CasePage>, ApiError> {
    let status: CaseStatus = q
        .status
        .as_deref()
        .unwrap_or("awaiting_second_vote")
        .parse()
        .map_err(ApiError::validation)?;
    let after = q
        .after
        .as_deref()
        .map(str::parse::<CaseId>)
        .transpose()
        .map_err(|_| ApiError::validation("after must be a case id from a previous page"))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let (cases, next) = cases::cases_page(&ctx.commands(), status, after, limit).await?;
    Ok(axum::Json(CasePage {
        items: cases.iter().map(CaseSummaryView::new).collect(),
        next,
    }))
}

/// Reads a credit case with its votes and decision record.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "cases",
    params(PathId<CaseId>),
    responses((status = 200, description = "The case", body = CaseView)),
)]
async fn read_case(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<axum::Json<CaseView>, ApiError> {
    let case = cases::read_case(&ctx.commands(), id).await?;
    Ok(axum::Json(CaseView::new(&case)))
}

/// Casts the independent back-office second vote (V1-V5, S5, S6); an
/// approval runs the risk gate and reserves the headroom (R4, R5).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/second-vote",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    request_body = VoteRequest,
    responses(
        (status = 200, description = "The vote is recorded (with the decision record if it decided)", body = CaseView),
        (status = 409, description = "The version is stale, the case awaits no second vote, or a concurrent request won"),
    ),
)]
async fn second_vote(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<VoteRequest>,
) -> Result<Response, ApiError> {
    routes::vote(ctx, principal, key, id, req, VoteStage::Second).await
}

/// Why the case goes back to market.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReturnRequest {
    #[schema(
        example = "collateral valuation missing",
        min_length = 1,
        max_length = 4000
    )]
    reason: String,
}

/// Returns a case to market for rework (V6); the votes are void.
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/return",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    request_body = ReturnRequest,
    responses(
        (status = 200, description = "The case is back with market", body = CaseView),
        (status = 409, description = "The case awaits no second vote, or a concurrent request won"),
    ),
)]
async fn return_case(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<ReturnRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/cases/{id}/return",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::return_case(&commands, tx, &actor, id, &req.reason).await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await
}

/// A board resolution, bound to the file version it covers (V11).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolutionRequest {
    #[schema(example = "BR-2026-117", min_length = 1, max_length = 200)]
    reference: String,
    #[schema(example = 1)]
    version: i64,
}

/// Records the board resolution a related-party credit or a large exposure
/// needs before approval (V11).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/board-resolution",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    request_body = ResolutionRequest,
    responses(
        (status = 200, description = "The resolution is recorded on the case", body = CaseView),
        (status = 409, description = "The version is stale, the case is decided already, or a concurrent request won"),
    ),
)]
async fn board_resolution(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<ResolutionRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/cases/{id}/board-resolution",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let (reference, version) = (&req.reference, req.version);
                let case =
                    cases::record_board_resolution(&commands, tx, &actor, id, reference, version)
                        .await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await
}

/// The file version the confirmed resolution covers.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmationRequest {
    #[schema(example = 1)]
    version: i64,
}

/// Confirms the recorded board resolution: only a board-level member of the
/// back office other than the person who recorded it may (V11). An approval
/// rests only on a confirmed resolution, and never on a vote of its recorder.
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/board-resolution/confirmation",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    request_body = ConfirmationRequest,
    responses(
        (status = 200, description = "The resolution is confirmed", body = CaseView),
        (status = 409, description = "The version is stale, there is no unconfirmed resolution for it, the case is decided already, or a concurrent request won"),
    ),
)]
async fn confirm_board_resolution(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<ConfirmationRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/cases/{id}/board-resolution/confirmation",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case =
                    cases::confirm_board_resolution(&commands, tx, &actor, id, req.version).await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await
}

/// A group of connected clients (CRR Art. 4(1)(39)).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    #[schema(example = "gcc-muster", value_type = UnitId)]
    id: String,
    #[schema(example = "Muster group", min_length = 1, max_length = 200)]
    name: String,
}

/// Forms a group of connected clients.
#[utoipa::path(
    post,
    path = "/v1/groups",
    tag = "groups",
    params(IdempotencyKey),
    request_body = NewGroup,
    responses(
        (status = 201, description = "The group is formed", body = BorrowerGroup),
        (status = 409, description = "A group with that id exists"),
    ),
)]
async fn create_group(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<NewGroup>,
) -> Result<Response, ApiError> {
    let id = UnitId::parse(&req.id).map_err(|e| ApiError::validation(format!("id: {e}")))?;
    let name = creditops_domain::case::required_text("name", &req.name, 200)?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/groups",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let group = groups::create_group(&commands, tx, &actor, id, name).await?;
                CommandOutcome::view(StatusCode::CREATED, &group)
            })
        },
    )
    .await
}

/// The group a borrower belongs to from now on; null takes it out.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GroupMembership {
    #[schema(value_type = Option<UnitId>)]
    group_id: Option<String>,
}

/// Proposes to move a borrower into a group of connected clients (or out
/// of it). A second credit analyst approves it at `links.approve`; then it
/// takes effect and the open cases of everybody affected are re-evaluated
/// (V4, R2). Proposer and approver do not vote on those cases (S6).
#[utoipa::path(
    put,
    path = "/v1/borrowers/{id}/group",
    tag = "groups",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = GroupMembership,
    responses(
        (status = 202, description = "The move is proposed; another credit analyst decides it at `links`", body = ProposalView),
        (status = 404, description = "No borrower with that id"),
        (status = 409, description = "The borrower is in that group already, or a concurrent request won"),
        (status = 422, description = "group_id names no group"),
    ),
)]
async fn set_group(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(borrower): PathId<BorrowerId>,
    Json(req): Json<GroupMembership>,
) -> Result<Response, ApiError> {
    let group = req
        .group_id
        .as_deref()
        .map(UnitId::parse)
        .transpose()
        .map_err(|e| ApiError::validation(format!("group_id: {e}")))?;
    let fingerprint = serde_json::to_vec(&(borrower, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "PUT /v1/borrowers/{id}/group",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let change = InputChange::GroupMembership {
                    borrower_id: borrower,
                    group_id: group,
                    from_group: None,
                };
                let proposal = inputs::propose_input(&commands, tx, &actor, change).await?;
                four_eyes::accepted(&proposal)
            })
        },
    )
    .await
}

/// Group membership proposals, optionally by status.
#[utoipa::path(
    get,
    path = "/v1/proposals",
    tag = "groups",
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

/// One group membership proposal.
#[utoipa::path(
    get,
    path = "/v1/proposals/{id}",
    tag = "groups",
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

/// Approves another analyst's group membership proposal: the move takes
/// effect and the open cases of everybody affected are re-evaluated (V4).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/approve",
    tag = "groups",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The move took effect; `applied` lists the cases sent back and the breaches", body = ProposalView),
        (status = 403, description = "The proposer cannot decide their own proposal (V4)"),
        (status = 409, description = "The proposal is decided already, the borrower's group changed since, or a concurrent request won"),
    ),
)]
async fn approve_proposal(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    four_eyes::decide(ctx, principal, key, id, Verdict::Approve, DESK).await
}

/// Rejects another analyst's group membership proposal.
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/reject",
    tag = "groups",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is rejected", body = ProposalView),
        (status = 403, description = "The proposer cannot decide their own proposal (V4)"),
        (status = 409, description = "The proposal is decided already, or a concurrent request won"),
    ),
)]
async fn reject_proposal(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    four_eyes::decide(ctx, principal, key, id, Verdict::Reject, DESK).await
}

/// A staff member related to a borrower (KWG section 15).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRelatedParty {
    borrower_id: BorrowerId,
    #[schema(example = "lo-3", value_type = StaffId)]
    staff_id: String,
    #[schema(
        example = "spouse of the managing director",
        min_length = 1,
        max_length = 200
    )]
    relation: String,
}

/// Records a staff member as related to a borrower: they may not vote on its
/// cases, and its credits need a board resolution (S6, V11).
#[utoipa::path(
    post,
    path = "/v1/related-parties",
    tag = "groups",
    params(IdempotencyKey),
    request_body = NewRelatedParty,
    responses(
        (status = 201, description = "The relation is recorded", body = RelatedParty),
        (status = 409, description = "The relation is recorded already"),
    ),
)]
async fn record_related_party(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<NewRelatedParty>,
) -> Result<Response, ApiError> {
    let staff_id = StaffId::parse(&req.staff_id)
        .map_err(|e| ApiError::validation(format!("staff_id: {e}")))?;
    let relation = creditops_domain::case::required_text("relation", &req.relation, 200)?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/related-parties",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let party = groups::NewRelatedParty {
                    borrower_id: req.borrower_id,
                    staff_id,
                    relation,
                };
                let party = groups::record_related_party(&commands, tx, &actor, party).await?;
                CommandOutcome::view(StatusCode::CREATED, &party)
            })
        },
    )
    .await
}

/// Every limit, borrower, group, sector and country, is approved by back
/// office (R1, R8): risk control proposes, a second, independent function
/// decides.
const BACKOFFICE_DECIDES: &[LimitKind] = &[
    LimitKind::Borrower,
    LimitKind::Group,
    LimitKind::Sector,
    LimitKind::Country,
];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LimitProposalQuery {
    /// Default `pending`.
    #[param(value_type = Option<LimitStatus>, inline)]
    status: Option<String>,
    /// The `next` of the previous page.
    after: Option<Uuid>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Limit versions by status (default: awaiting a decision); back office
/// decides them (R1, R8).
#[utoipa::path(
    get,
    path = "/v1/limits/proposals",
    tag = "limits",
    params(Query<LimitProposalQuery>),
    responses((status = 200, description = "The limit versions", body = LimitVersions)),
)]
async fn limit_proposals(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<LimitProposalQuery>,
) -> Result<axum::Json<LimitVersions>, ApiError> {
    let status = query
        .status
        .as_deref()
        .unwrap_or("pending")
        .parse::<LimitStatus>()
        .map_err(|e| ApiError::validation(format!("status: {e}")))?;
    let commands = ctx.commands();
    let limit = LIMIT_VERSION_PAGE.limit(query.limit)?;
    let decides = Some(BACKOFFICE_DECIDES);
    let items =
        limits::limit_versions(&commands, Some(status), decides, query.after, limit).await?;
    Ok(axum::Json(LimitVersions {
        next: next_cursor(&items, limit, |v| v.id),
        items,
    }))
}

/// Approves a borrower or group limit proposed by risk control; not by the
/// proposer (R8). The limit is in force at once and re-evaluated (R7).
#[utoipa::path(
    post,
    path = "/v1/limits/{id}/approve",
    tag = "limits",
    params(("id" = uuid::Uuid, Path, description = "The limit version id"), IdempotencyKey),
    responses(
        (status = 200, description = "The limit version is approved", body = LimitDecision),
        (status = 409, description = "The limit version is decided already, or a concurrent request won"),
    ),
)]
async fn approve_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<uuid::Uuid>,
) -> Result<Response, ApiError> {
    routes::decide_limit_version(
        ctx,
        principal,
        key,
        id,
        Verdict::Approve,
        BACKOFFICE_DECIDES,
    )
    .await
}

/// Rejects a borrower or group limit proposed by risk control (R8).
#[utoipa::path(
    post,
    path = "/v1/limits/{id}/reject",
    tag = "limits",
    params(("id" = uuid::Uuid, Path, description = "The limit version id"), IdempotencyKey),
    responses(
        (status = 200, description = "The limit version is rejected", body = LimitDecision),
        (status = 409, description = "The limit version is decided already, or a concurrent request won"),
    ),
)]
async fn reject_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<uuid::Uuid>,
) -> Result<Response, ApiError> {
    routes::decide_limit_version(ctx, principal, key, id, Verdict::Reject, BACKOFFICE_DECIDES).await
}

// ---------------------------------------------------------------------------
// The credit file (L2)
// ---------------------------------------------------------------------------
