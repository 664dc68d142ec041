//! The market service (loan officers): borrowers, credit cases, edits of a
//! draft and the first vote. No back-office route exists in this router (S1).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use creditops_audit::AuditAction;
use creditops_domain::RuleId;
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseStatus, CreditCase, Money, Severity, Side, StaffId, VoteStage,
};
use creditops_http::ProblemKind;
use creditops_http::cases::{self, CaseAction, VoteRequest, change_case, vote_command};
use creditops_http::risk::{liquidity_view, watch_borrowers};
use creditops_http::views::{CaseView, case_audit_data, case_json};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, ServiceContext, openapi,
    run_command,
};
use creditops_risk::{Reservation, ReservationStatus};
use creditops_store::Borrower;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const SERVICE: &str = "market";

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(routes!(create_borrower))
        .routes(routes!(read_borrower))
        .routes(routes!(create_case))
        .routes(routes!(read_case, edit_case))
        .routes(routes!(first_vote))
        .routes(routes!(disburse))
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
    /// ISO 3166-1 alpha-2 code.
    #[schema(example = "DE", pattern = "^[A-Z]{2}$")]
    country: String,
    #[schema(example = "manufacturing", min_length = 1, max_length = 100)]
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
    let sector = creditops_domain::case::required_text("sector", &req.sector, 100)?;
    if !(req.country.len() == 2 && req.country.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(ApiError::validation(
            "country must be an ISO 3166-1 alpha-2 code such as \"DE\"",
        ));
    }
    let relationship_manager = match &req.relationship_manager {
        Some(id) => StaffId::parse(id)
            .map_err(|e| ApiError::validation(format!("relationship_manager: {e}")))?,
        None => principal.id().clone(),
    };
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let borrower = Borrower {
        id: BorrowerId::generate(),
        name,
        country: req.country,
        sector,
        institution: req.institution,
        relationship_manager: Some(relationship_manager),
        created_by: principal.id().clone(),
        created_at: cases::action_time(),
    };
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/borrowers",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                if let Some(manager) = &borrower.relationship_manager {
                    let on_market = tx
                        .staff_member(manager)
                        .await?
                        .and_then(|m| m.voter_at(borrower.created_at))
                        .is_some_and(|v| v.side == Side::Market);
                    if !on_market {
                        return Err(ApiError::validation(
                            "relationship_manager must be a staff member of a market unit",
                        ));
                    }
                }
                tx.insert_borrower(&borrower).await?;
                let mut record = actor.record(&ctx, AuditAction::BorrowerCreated);
                record.borrower_id = Some(borrower.id);
                // The name is personal data and stays out of the hashed body (A6).
                record.data = json!({
                    "country": borrower.country,
                    "relationship_manager": borrower.relationship_manager,
                });
                ctx.audit(tx, &record).await?;
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
    let mut tx = ctx.store.begin_read().await?;
    let borrower = tx
        .borrower(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no borrower with that id"))?;
    Ok(axum::Json(borrower))
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
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/cases",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                if tx.borrower(file.borrower_id).await?.is_none() {
                    return Err(ApiError::validation(
                        "borrower_id names no registered borrower",
                    ));
                }
                let case = CreditCase::open(
                    CaseId::generate(),
                    file,
                    actor.id().clone(),
                    cases::action_time(),
                );
                tx.insert_case(&case).await?;
                let mut record = actor.record(&ctx, AuditAction::CaseCreated);
                record.case_id = Some(case.id);
                record.borrower_id = Some(case.file.borrower_id);
                record.data = case_audit_data(&case);
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(StatusCode::CREATED, case_json(&case)))
            })
        },
    )
    .await
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
    Ok(axum::Json(cases::read_case(&ctx, id).await?))
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
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "PATCH /v1/cases/{id}",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let action = CaseAction::new(AuditAction::CaseEdited);
                change_case(&ctx, tx, &actor, id, action, |case, now| {
                    let old = &case.file;
                    let amount_text = req
                        .amount
                        .unwrap_or_else(|| old.amount.amount().to_string());
                    let currency = req
                        .currency
                        .unwrap_or_else(|| old.amount.currency_code().to_owned());
                    let amount = Money::parse(&amount_text, &currency)
                        .map_err(|e| creditops_domain::DomainError::Invalid(e.0))?;
                    let file = CaseFile::new(
                        old.borrower_id,
                        amount,
                        req.product.as_deref().unwrap_or(&old.product),
                        req.term_months.unwrap_or(i64::from(old.term_months)),
                        req.purpose.as_deref().unwrap_or(&old.purpose),
                    )?;
                    case.edit(actor.voter_at(now).as_ref(), file, req.version, now)
                })
                .await
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
    vote_command(ctx, principal, key, id, req, VoteStage::First).await
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
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/cases/{id}/disburse",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let now = cases::action_time();
                tx.lock_risk().await?;
                let case = cases::load_case(tx, id).await?;
                if case.status != CaseStatus::Approved {
                    return Err(ApiError::new(
                        ProblemKind::Conflict,
                        format!(
                            "only an approved case can be disbursed; it is {}",
                            case.status
                        ),
                    ));
                }
                if actor.voter_at(now).is_none_or(|v| v.side != Side::Market) {
                    return Err(ApiError::new(
                        ProblemKind::Forbidden,
                        "only market staff disburse",
                    )
                    .with_rule(RuleId::S1));
                }
                let reservation = tx.reservation(id).await?.ok_or_else(|| {
                    ApiError::new(
                        ProblemKind::Conflict,
                        "the case holds no reservation, so nothing can be disbursed",
                    )
                    .with_rule(RuleId::R5)
                })?;
                match reservation.status {
                    ReservationStatus::Active if reservation.expires_at > now => {}
                    ReservationStatus::Active | ReservationStatus::Expired => {
                        return Err(ApiError::new(
                            ProblemKind::Conflict,
                            format!(
                                "the reservation expired at {}; the headroom was released and \
                                 the case must be decided again",
                                reservation.expires_at
                            ),
                        )
                        .with_rule(RuleId::R5));
                    }
                    ReservationStatus::Consumed => {
                        return Err(ApiError::new(
                            ProblemKind::Conflict,
                            "the case was disbursed already",
                        )
                        .with_rule(RuleId::R5));
                    }
                }
                // The reservation already counts as committed cash: the LCR
                // with it must still meet the floor now (R6).
                let view = liquidity_view(tx, now).await?.ok_or_else(|| {
                    ApiError::new(
                        ProblemKind::RuleViolation,
                        "no liquidity position is on record, so the LCR floor cannot be checked",
                    )
                    .with_rule(RuleId::R6)
                })?;
                let finding = creditops_risk::gate::liquidity_finding(&view, Decimal::ZERO);
                if finding.severity != Severity::Within {
                    return Err(ApiError::new(
                        ProblemKind::RuleViolation,
                        format!("disbursement refused: {}", finding.detail),
                    )
                    .with_rule(RuleId::R6));
                }
                let consumed = Reservation {
                    status: ReservationStatus::Consumed,
                    closed_at: Some(now),
                    closed_by: Some(actor.id().clone()),
                    ..reservation
                };
                tx.close_reservation(&consumed).await?;
                let mut record = actor.record(&ctx, AuditAction::CaseDisbursed);
                record.case_id = Some(case.id);
                record.borrower_id = Some(case.file.borrower_id);
                record.rule = Some(RuleId::R5);
                record.data = json!({
                    "amount": consumed.amount.to_string(),
                    "lcr_percent": finding.usage.map(|l| l.to_string()),
                });
                ctx.audit(tx, &record).await?;
                watch_borrowers(&ctx, tx, &[case.file.borrower_id], "disbursement", now).await?;
                CommandOutcome::view(
                    StatusCode::OK,
                    &Disbursement {
                        case_id: case.id,
                        reservation: consumed,
                        lcr_percent: finding.usage.map(|l| l.to_string()),
                    },
                )
            })
        },
    )
    .await
}
