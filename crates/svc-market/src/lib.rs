//! The market service (loan officers): borrowers, credit cases, edits of a
//! draft and the first vote. No back-office route exists in this router (S1).

mod collateral;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use creditops_commands::credit_file::DocumentOwner;
use creditops_commands::{action_time, cases, market};
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseKind, CollateralId, Country, CreditId, Money, Sector,
    StaffId, VoteStage,
};
use creditops_http::documents::{self, UploadParams};
use creditops_http::granting;
use creditops_http::monitoring;
use creditops_http::paging::{CaseListParams, CasePage, PageSize};
use creditops_http::views::CaseSummaryView;
use creditops_http::views::{CaseView, VoteRequest, case_json};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext,
    openapi, routes, run_command,
};
use creditops_risk::Reservation;
use creditops_store::{Borrower, StoredDocument};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const SERVICE: &str = "market";

/// The case list's page sizes (as the back office's queue).
const CASE_PAGE: PageSize = PageSize {
    default: 50,
    max: 200,
};

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(routes!(create_borrower))
        .routes(routes!(read_borrower))
        .routes(routes!(create_case, list_cases))
        .routes(routes!(read_case, edit_case))
        .routes(routes!(first_vote))
        .routes(routes!(disburse))
        .routes(routes!(
            collateral::register_collateral,
            collateral::borrower_collateral
        ))
        .routes(routes!(collateral::value_collateral))
        .routes(routes!(granting::propose_rating))
        .routes(routes!(granting::rating_history))
        .routes(routes!(granting::borrower_credits))
        .routes(routes!(granting::read_credit))
        .routes(routes!(monitoring::raise_flag, monitoring::borrower_flags))
        .routes(routes!(monitoring::borrower_stage))
        .routes(routes!(add_case_document, documents::list_case_documents))
        .routes(routes!(
            documents::add_borrower_document,
            documents::list_borrower_documents
        ))
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

/// A borrower to register.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBorrower {
    /// Personal data: kept in the business table, never in audit bodies (A6).
    #[schema(example = "Muster GmbH", min_length = 1, max_length = 200)]
    name: String,
    /// An assigned ISO 3166-1 alpha-2 code in capitals; anything else
    /// (`de`, `XX`, a name) is refused.
    #[schema(value_type = Country)]
    country: String,
    /// A NACE Rev. 2 section (`C`) or division (`C25`) in its canonical
    /// spelling; anything else (`c`, `C25 `, a name) is refused. A limit on
    /// a section covers its divisions.
    #[schema(value_type = Sector)]
    sector: String,
    /// The market person who looks after the borrower; defaults to the
    /// creator. They may not vote on the borrower's cases (S6).
    #[serde(default)]
    #[schema(value_type = Option<StaffId>)]
    relationship_manager: Option<String>,
    /// A credit institution (its large-exposure cap differs, CRR Art. 395).
    #[serde(default)]
    institution: bool,
}

/// Registers a borrower; the creator is its relationship manager unless
/// another market person is named (S6).
#[utoipa::path(
    post,
    path = "/v1/borrowers",
    tag = "borrowers",
    params(IdempotencyKey),
    request_body = NewBorrower,
    responses((status = 201, description = "The borrower is registered", body = Borrower)),
)]
async fn create_borrower(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<NewBorrower>,
) -> Result<Response, ApiError> {
    let name = creditops_domain::case::required_text("name", &req.name, 200)?;
    // Canonical codes only, never normalised: a limit on `C` must see every
    // borrower it covers (hardening finding 1).
    let sector: Sector = req
        .sector
        .parse()
        .map_err(|e| ApiError::invalid_field("sector", e))?;
    let country: Country = req
        .country
        .parse()
        .map_err(|e| ApiError::invalid_field("country", e))?;
    let relationship_manager = match &req.relationship_manager {
        Some(id) => StaffId::parse(id)
            .map_err(|e| ApiError::validation(format!("relationship_manager: {e}")))?,
        None => principal.id().clone(),
    };
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let borrower = Borrower {
        id: BorrowerId::generate(),
        name,
        country,
        sector,
        institution: req.institution,
        relationship_manager: Some(relationship_manager),
        created_by: principal.id().clone(),
        created_at: action_time(),
    };
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/borrowers",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                market::register_borrower(&commands, tx, &actor, &borrower).await?;
                CommandOutcome::view(StatusCode::CREATED, &borrower)
            })
        },
    )
    .await
}

/// Reads a borrower.
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}",
    tag = "borrowers",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower", body = Borrower)),
)]
async fn read_borrower(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<Borrower>, ApiError> {
    Ok(axum::Json(market::borrower(&ctx.commands(), id).await?))
}

/// A credit request: opens a case as a draft.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCase {
    borrower_id: BorrowerId,
    /// Decimal string, greater than zero, with at most the currency's scale.
    #[schema(example = "250000.00", pattern = "^[0-9]{1,13}(\\.[0-9]{1,4})?$")]
    amount: String,
    /// ISO 4217 code.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    currency: String,
    #[schema(example = "term_loan", min_length = 1, max_length = 100)]
    product: String,
    #[schema(example = 60, minimum = 1, maximum = 600)]
    term_months: i64,
    #[schema(example = "machinery", min_length = 1, max_length = 4000)]
    purpose: String,
    /// What the decision decides (L1); default `new`. Every other kind
    /// names the approved credit it changes, and its amount and term are
    /// the credit's after the change.
    #[serde(default)]
    kind: CaseKind,
    /// The approved credit an `increase`, `prolongation`,
    /// `change_of_terms`, `collateral_release` or `overdraft` changes.
    #[serde(default)]
    credit_id: Option<CreditId>,
    /// The collateral a `collateral_release` releases (an active item of
    /// the borrower); only that kind names it.
    #[serde(default)]
    collateral_id: Option<CollateralId>,
}

/// Opens a credit case (draft) for a registered borrower.
#[utoipa::path(
    post,
    path = "/v1/cases",
    tag = "cases",
    params(IdempotencyKey),
    request_body = NewCase,
    responses((status = 201, description = "The case is open as a draft", body = CaseView)),
)]
async fn create_case(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<NewCase>,
) -> Result<Response, ApiError> {
    let amount = Money::parse(&req.amount, &req.currency).map_err(|e| ApiError::validation(e.0))?;
    let file = CaseFile::new(
        req.borrower_id,
        amount,
        &req.product,
        req.term_months,
        &req.purpose,
    )?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/cases",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::open_case(
                    &commands,
                    tx,
                    &actor,
                    file,
                    req.kind,
                    req.credit_id,
                    req.collateral_id,
                )
                .await?;
                Ok(CommandOutcome::new(StatusCode::CREATED, case_json(&case)))
            })
        },
    )
    .await
}

/// Filters of the case list; they combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct CaseListQuery {
    /// Case status; every status when absent.
    #[param(value_type = Option<creditops_domain::CaseStatus>, inline)]
    status: Option<String>,
    #[param(value_type = Option<BorrowerId>, inline)]
    borrower_id: Option<String>,
    /// The `next` of the previous page.
    #[param(value_type = Option<CaseId>, inline)]
    after: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The cases the caller may see, paged: those of their own market unit at
/// the time of the request, and, for a board-level or escalation voter,
/// those they must vote on (hardening finding 9).
#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "cases",
    params(Query<CaseListQuery>),
    responses((status = 200, description = "One page of cases", body = CasePage)),
)]
async fn list_cases(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    Query(q): Query<CaseListQuery>,
) -> Result<axum::Json<CasePage>, ApiError> {
    let filter = CaseListParams {
        status: q.status.as_deref(),
        borrower_id: q.borrower_id.as_deref(),
        after: q.after.as_deref(),
        limit: q.limit,
        ..CaseListParams::default()
    }
    .into_filter(CASE_PAGE)?;
    let (items, next) = cases::market_cases_page(&ctx.commands(), &principal, filter).await?;
    Ok(axum::Json(CasePage {
        items: items.iter().map(CaseSummaryView::new).collect(),
        next,
    }))
}

/// Reads a credit case with its votes and decision record: a case of the
/// caller's own market unit, or one they must vote on as a board-level or
/// escalation voter; any other case is answered as unknown (404).
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "cases",
    params(PathId<CaseId>),
    responses((status = 200, description = "The case", body = CaseView)),
)]
async fn read_case(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<axum::Json<CaseView>, ApiError> {
    let case = cases::read_market_case(&ctx.commands(), &principal, id).await?;
    Ok(axum::Json(CaseView::new(&case)))
}

/// A partial edit of the file; `version` is the file version it applies to.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CaseEdit {
    #[schema(example = 1)]
    version: i64,
    #[schema(pattern = "^[0-9]{1,13}(\\.[0-9]{1,4})?$")]
    amount: Option<String>,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    product: Option<String>,
    #[schema(minimum = 1, maximum = 600)]
    term_months: Option<i64>,
    #[schema(min_length = 1, max_length = 4000)]
    purpose: Option<String>,
}

/// Edits a draft (or returned) file: a new file version that voids the
/// votes cast so far (V3).
#[utoipa::path(
    patch,
    path = "/v1/cases/{id}",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    request_body = CaseEdit,
    responses(
        (status = 200, description = "The edited case", body = CaseView),
        (status = 409, description = "The version is stale, the case is not with market, or a concurrent request won"),
    ),
)]
async fn edit_case(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<CaseEdit>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let edit = cases::CaseEdit {
        version: req.version,
        amount: req.amount,
        currency: req.currency,
        product: req.product,
        term_months: req.term_months,
        purpose: req.purpose,
    };
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "PATCH /v1/cases/{id}",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::edit_case(&commands, tx, &actor, id, edit).await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await
}

/// Casts the market first vote on the current file version (V1-V4, S6).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/first-vote",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    request_body = VoteRequest,
    responses(
        (status = 200, description = "The vote is recorded", body = CaseView),
        (status = 409, description = "The version is stale, the case is not with market, or a concurrent request won"),
    ),
)]
async fn first_vote(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<VoteRequest>,
) -> Result<Response, ApiError> {
    routes::vote(ctx, principal, key, id, req, VoteStage::First).await
}

/// What a disbursement answers: the consumed reservation and the LCR with it.
#[derive(Debug, Serialize, ToSchema)]
struct Disbursement {
    case_id: CaseId,
    reservation: Reservation,
    /// Projected LCR in percent (decimal string), if computable.
    lcr_percent: Option<String>,
}

/// Disburses an approved case (R5, R6): consumes its reservation once, after
/// re-checking the liquidity floor. A second disbursement is refused (or,
/// with the same Idempotency-Key, answered with the first result).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/disburse",
    tag = "cases",
    params(PathId<CaseId>, IdempotencyKey),
    responses(
        (status = 200, description = "The reservation is consumed", body = Disbursement),
        (status = 409, description = "The case is not approved, holds no active reservation, or was disbursed already (R5)"),
    ),
)]
async fn disburse(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
) -> Result<Response, ApiError> {
    let fingerprint = id.to_string().into_bytes();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/cases/{id}/disburse",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let done = market::disburse(&commands, tx, &actor, id).await?;
                CommandOutcome::view(
                    StatusCode::OK,
                    &Disbursement {
                        case_id: done.case_id,
                        reservation: done.reservation,
                        lcr_percent: done.lcr_percent.map(|l| l.to_string()),
                    },
                )
            })
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// The credit file (L2)
// ---------------------------------------------------------------------------

/// Adds a document to the credit file of a case of the actor's market unit
/// (L2). The body is the raw file, `Content-Type` its media type (PDF, PNG,
/// JPEG, CSV or plain text, checked against the content). The case gets a
/// new file version: the votes cast so far are void (V3). A decided case
/// takes no document (409).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/documents",
    tag = "credit file",
    params(PathId<CaseId>, Query<UploadParams>, IdempotencyKey),
    request_body(
        description = "The document's bytes, of one of the media types a credit file takes",
        content(
            (Vec<u8> = "application/pdf"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "image/jpeg"),
            (String = "text/csv"),
            (String = "text/plain"),
        )
    ),
    responses(
        (status = 201, description = "The document is added", body = StoredDocument),
        (status = 409, description = "The case is decided, the replaced document is superseded already, or a concurrent request won"),
        (status = 413, description = "The document is larger than the configured bound"),
        (status = 415, description = "The media type is not accepted or the content is not of it"),
        (status = 422, description = "The document type is not in the catalogue in force"),
    ),
)]
async fn add_case_document(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    documents::upload(
        ctx,
        principal,
        key,
        "POST /v1/cases/{id}/documents",
        DocumentOwner::Case(id),
        params,
        &headers,
        body,
    )
    .await
}
