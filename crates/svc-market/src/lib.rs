//! The market service (loan officers): borrowers, credit cases, edits of a
//! draft and the first vote. No back-office route exists in this router (S1).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseStatus, CreditCase, Money, Severity, Side, StaffId, VoteStage,
};
use creditops_http::ProblemKind;
use creditops_http::cases::{self, CaseAction, VoteRequest, cast_vote, change_case};
use creditops_http::risk::{liquidity_view, watch_borrowers};
use creditops_http::views::{case_audit_data, case_json};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, Operation, PathId, Principal, ServiceContext,
    health_routes, run_command, secure,
};
use creditops_risk::{Reservation, ReservationStatus};
use creditops_store::Borrower;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

pub const SERVICE: &str = "market";

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "POST",
        path: "/v1/borrowers",
        summary: "Register a borrower",
    },
    Operation {
        method: "GET",
        path: "/v1/borrowers/{id}",
        summary: "Read a borrower",
    },
    Operation {
        method: "POST",
        path: "/v1/cases",
        summary: "Open a credit case (draft)",
    },
    Operation {
        method: "GET",
        path: "/v1/cases/{id}",
        summary: "Read a credit case with its votes",
    },
    Operation {
        method: "PATCH",
        path: "/v1/cases/{id}",
        summary: "Edit a draft (new file version; voids votes)",
    },
    Operation {
        method: "POST",
        path: "/v1/cases/{id}/first-vote",
        summary: "Cast the market first vote",
    },
    Operation {
        method: "POST",
        path: "/v1/cases/{id}/disburse",
        summary: "Disburse an approved case (consumes its reservation, re-checks liquidity)",
    },
];

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    let business = Router::new()
        .route("/v1/borrowers", post(create_borrower))
        .route("/v1/borrowers/{id}", get(read_borrower))
        .route("/v1/cases", post(create_case))
        .route("/v1/cases/{id}", get(read_case).patch(edit_case))
        .route("/v1/cases/{id}/first-vote", post(first_vote))
        .route("/v1/cases/{id}/disburse", post(disburse))
        .with_state(ctx.clone());
    secure(business, ctx.clone()).merge(health_routes(ctx, OPERATIONS))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewBorrower {
    name: String,
    country: String,
    sector: String,
    /// The market person who looks after the borrower; defaults to the
    /// creator. They may not vote on the borrower's cases (S6).
    #[serde(default)]
    relationship_manager: Option<String>,
    /// A credit institution (its large-exposure cap differs, CRR Art. 395).
    #[serde(default)]
    institution: bool,
}

fn borrower_json(b: &Borrower) -> serde_json::Value {
    json!({
        "id": b.id,
        "name": b.name,
        "country": b.country,
        "sector": b.sector,
        "institution": b.institution,
        "relationship_manager": b.relationship_manager,
        "created_by": b.created_by,
        "created_at": b.created_at,
    })
}

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
        created_at: Utc::now(),
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
                let mut record = actor.record(&ctx, "borrower.created");
                record.borrower_id = Some(borrower.id.to_string());
                // The name is personal data and stays out of the hashed body (A6).
                record.data = json!({
                    "country": borrower.country,
                    "relationship_manager": borrower.relationship_manager,
                });
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(
                    StatusCode::CREATED,
                    borrower_json(&borrower),
                ))
            })
        },
    )
    .await
}

async fn read_borrower(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    let borrower = tx
        .borrower(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no borrower with that id"))?;
    Ok(axum::Json(borrower_json(&borrower)))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewCase {
    borrower_id: BorrowerId,
    amount: String,
    currency: String,
    product: String,
    term_months: i64,
    purpose: String,
}

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
                let case =
                    CreditCase::open(CaseId::generate(), file, actor.id().clone(), Utc::now());
                tx.insert_case(&case).await?;
                let mut record = actor.record(&ctx, "case.created");
                record.case_id = Some(case.id.to_string());
                record.borrower_id = Some(case.file.borrower_id.to_string());
                record.data = case_audit_data(&case);
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(StatusCode::CREATED, case_json(&case)))
            })
        },
    )
    .await
}

async fn read_case(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(cases::read_case(&ctx, id).await?))
}

/// A partial edit of the file; `version` is the file version it applies to.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CaseEdit {
    version: i64,
    amount: Option<String>,
    currency: Option<String>,
    product: Option<String>,
    term_months: Option<i64>,
    purpose: Option<String>,
}

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
                let action = CaseAction::new("case.edited");
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

async fn first_vote(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<VoteRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/cases/{id}/first-vote",
        &fingerprint,
        move |tx| {
            Box::pin(async move { cast_vote(&ctx, tx, &actor, id, &req, VoteStage::First).await })
        },
    )
    .await
}

/// Disburses an approved case (R5, R6): consumes its reservation once, after
/// re-checking the liquidity floor. A second disbursement is refused (or,
/// with the same Idempotency-Key, answered with the first result).
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
                let now = Utc::now();
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
                    .with_rule("S1"));
                }
                let reservation = tx.reservation(id).await?.ok_or_else(|| {
                    ApiError::new(
                        ProblemKind::Conflict,
                        "the case holds no reservation, so nothing can be disbursed",
                    )
                    .with_rule("R5")
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
                        .with_rule("R5"));
                    }
                    ReservationStatus::Consumed => {
                        return Err(ApiError::new(
                            ProblemKind::Conflict,
                            "the case was disbursed already",
                        )
                        .with_rule("R5"));
                    }
                }
                // The reservation already counts as committed cash: the LCR
                // with it must still meet the floor now (R6).
                let view = liquidity_view(tx, now).await?.ok_or_else(|| {
                    ApiError::new(
                        ProblemKind::RuleViolation,
                        "no liquidity position is on record, so the LCR floor cannot be checked",
                    )
                    .with_rule("R6")
                })?;
                let finding = creditops_risk::gate::liquidity_finding(&view, Decimal::ZERO);
                if finding.severity != Severity::Within {
                    return Err(ApiError::new(
                        ProblemKind::RuleViolation,
                        format!("disbursement refused: {}", finding.detail),
                    )
                    .with_rule("R6"));
                }
                let consumed = Reservation {
                    status: ReservationStatus::Consumed,
                    closed_at: Some(now),
                    closed_by: Some(actor.id().clone()),
                    ..reservation
                };
                tx.close_reservation(&consumed).await?;
                let mut record = actor.record(&ctx, "case.disbursed");
                record.case_id = Some(case.id.to_string());
                record.borrower_id = Some(case.file.borrower_id.to_string());
                record.rule = Some("R5".into());
                record.data = json!({
                    "amount": consumed.amount.to_string(),
                    "lcr_percent": finding.usage.map(|l| l.to_string()),
                });
                ctx.audit(tx, &record).await?;
                watch_borrowers(&ctx, tx, &[case.file.borrower_id], "disbursement", now).await?;
                Ok(CommandOutcome::new(
                    StatusCode::OK,
                    json!({
                        "case_id": case.id,
                        "reservation": serde_json::to_value(&consumed).unwrap_or_default(),
                        "lcr_percent": finding.usage.map(|l| l.to_string()),
                    }),
                ))
            })
        },
    )
    .await
}
