//! Routes both desks share for the credit after its first decision: the
//! approved credits (L1) and borrowers' ratings (L4). Market proposes a
//! rating, back office sets it; both read the history.

use crate::views::case_json;
use crate::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, ServiceContext, run_command,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use creditops_commands::{cases, granting};
use creditops_domain::{
    BorrowerId, CaseId, CaseKind, Credit, CreditId, Rating, RatingInput, RatingStatus,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A rating as back office sets it or market proposes it (L4).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// A class of the master scale in force (default 1-18).
    #[schema(example = 6, minimum = 1, maximum = 30)]
    pub class: u8,
    /// Probability of default as a fraction, a decimal string within the
    /// class's range (0.0015 is 0.15 %).
    #[schema(example = "0.0020", pattern = "^[0-9]{1,2}(\\.[0-9]{1,10})?$")]
    pub pd: String,
    /// Why this class: the accounts, the scorecard, the override.
    #[schema(
        example = "annual accounts 2025, scorecard",
        min_length = 1,
        max_length = 4000
    )]
    pub reason: String,
    /// The rating method (scorecard, expert, external); default `internal`.
    #[serde(default)]
    #[schema(example = "corporate scorecard", max_length = 100)]
    pub method: Option<String>,
}

impl RatingRequest {
    fn input(&self) -> Result<RatingInput, ApiError> {
        let plain = !self.pd.is_empty()
            && self.pd.len() <= 20
            && self.pd.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let pd = plain
            .then(|| rust_decimal::Decimal::from_str_exact(&self.pd).ok())
            .flatten()
            .ok_or_else(|| ApiError::validation("pd must be a decimal fraction such as 0.0020"))?;
        Ok(RatingInput {
            class: self.class,
            pd,
            method: self.method.clone().unwrap_or_else(|| "internal".into()),
            reason: self.reason.clone(),
        })
    }
}

/// A borrower's ratings, newest first (at most 200).
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingHistory {
    pub items: Vec<Rating>,
}

async fn rate(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    borrower: BorrowerId,
    req: RatingRequest,
    status: RatingStatus,
) -> Result<Response, ApiError> {
    let input = req.input()?;
    let operation = match status {
        RatingStatus::Set => "PUT /v1/borrowers/{id}/rating",
        RatingStatus::Proposed => "POST /v1/borrowers/{id}/rating-proposals",
    };
    let fingerprint = serde_json::to_vec(&(borrower, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(&ctx, &principal, key, operation, &fingerprint, move |tx| {
        Box::pin(async move {
            let rating =
                granting::rate_borrower(&commands, tx, &actor, borrower, &input, status).await?;
            CommandOutcome::view(StatusCode::CREATED, &rating)
        })
    })
    .await
}

/// Back office sets the borrower's rating (L4): dated, audited, the one a
/// first vote needs. Open cases are re-evaluated against its band.
#[utoipa::path(
    put,
    path = "/v1/borrowers/{id}/rating",
    tag = "ratings",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = RatingRequest,
    responses(
        (status = 201, description = "The rating in force from now", body = Rating),
        (status = 409, description = "An open case it re-evaluates changed meanwhile, or a concurrent request won"),
    ),
)]
pub async fn set_rating(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Json(req): Json<RatingRequest>,
) -> Result<Response, ApiError> {
    rate(ctx, principal, key, id, req, RatingStatus::Set).await
}

/// Market proposes a rating (L4); it decides nothing until back office
/// sets one.
#[utoipa::path(
    post,
    path = "/v1/borrowers/{id}/rating-proposals",
    tag = "ratings",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = RatingRequest,
    responses(
        (status = 201, description = "The proposal, on record", body = Rating),
        (status = 409, description = "A concurrent request with the same idempotency key won"),
    ),
)]
pub async fn propose_rating(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Json(req): Json<RatingRequest>,
) -> Result<Response, ApiError> {
    rate(ctx, principal, key, id, req, RatingStatus::Proposed).await
}

/// The borrower's ratings, set and proposed, newest first (L4).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/ratings",
    tag = "ratings",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The rating history", body = RatingHistory)),
)]
pub async fn rating_history(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<RatingHistory>, ApiError> {
    let items = granting::ratings(&ctx.commands(), id).await?;
    Ok(axum::Json(RatingHistory { items }))
}

/// A version of an approved credit (L1). Amounts are decimal strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditVersionView {
    pub version: i64,
    #[schema(example = "250000.00")]
    pub amount: String,
    pub currency: String,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
    /// The case whose approval made this version.
    pub case_id: CaseId,
    pub kind: CaseKind,
    pub decided_at: DateTime<Utc>,
}

impl CreditVersionView {
    fn new(credit: &Credit) -> Self {
        Self {
            version: credit.version,
            amount: credit.amount.amount().to_string(),
            currency: credit.amount.currency_code().to_owned(),
            product: credit.product.clone(),
            term_months: credit.term_months,
            purpose: credit.purpose.clone(),
            case_id: credit.case_id,
            kind: credit.kind,
            decided_at: credit.updated_at,
        }
    }
}

/// An approved credit: its terms in force and, on a single read, every
/// version with the decision that made it (L1).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditView {
    pub id: CreditId,
    pub borrower_id: BorrowerId,
    pub created_at: DateTime<Utc>,
    /// The version in force.
    pub current: CreditVersionView,
    /// Every version, oldest first (empty in lists).
    pub versions: Vec<CreditVersionView>,
}

impl CreditView {
    pub fn new(credit: &Credit, versions: &[Credit]) -> Self {
        Self {
            id: credit.id,
            borrower_id: credit.borrower_id,
            created_at: credit.created_at,
            current: CreditVersionView::new(credit),
            versions: versions.iter().map(CreditVersionView::new).collect(),
        }
    }
}

/// A borrower's approved credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditList {
    pub items: Vec<CreditView>,
}

/// An approved credit with its versions (L1).
#[utoipa::path(
    get,
    path = "/v1/credits/{id}",
    tag = "credits",
    params(PathId<CreditId>),
    responses((status = 200, description = "The credit", body = CreditView)),
)]
pub async fn read_credit(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<CreditId>,
) -> Result<axum::Json<CreditView>, ApiError> {
    let (credit, versions) = granting::credit(&ctx.commands(), id).await?;
    Ok(axum::Json(CreditView::new(&credit, &versions)))
}

/// A borrower's approved credits, oldest first (L1).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/credits",
    tag = "credits",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower's credits", body = CreditList)),
)]
pub async fn borrower_credits(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<CreditList>, ApiError> {
    let credits = granting::credits_of(&ctx.commands(), id).await?;
    Ok(axum::Json(CreditList {
        items: credits.iter().map(|c| CreditView::new(c, &[])).collect(),
    }))
}

/// Back office's sign-off of a condition precedent (L5).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOffRequest {
    /// What the condition was checked against: a document id or reference.
    #[schema(
        example = "land register extract of 2026-12-01",
        min_length = 1,
        max_length = 4000
    )]
    pub evidence: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub note: Option<String>,
}

/// Back office signs off one condition precedent of an approved case (L5);
/// disbursement waits until every one is signed off.
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/conditions/{condition_id}/sign-off",
    tag = "cases",
    params(
        ("id" = CaseId, Path, description = "The case"),
        ("condition_id" = u32, Path, description = "The condition's number on the case"),
        IdempotencyKey,
    ),
    request_body = SignOffRequest,
    responses(
        (status = 200, description = "The case with the condition signed off", body = crate::views::CaseView),
        (status = 409, description = "The case is not approved, the condition is signed off already, or a concurrent request won"),
    ),
)]
pub async fn sign_off_condition(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    axum::extract::Path((id, condition)): axum::extract::Path<(String, String)>,
    Json(req): Json<SignOffRequest>,
) -> Result<Response, ApiError> {
    let id: CaseId = id
        .parse()
        .map_err(|_| ApiError::not_found("no resource with that id"))?;
    let condition: u32 = condition
        .parse()
        .map_err(|_| ApiError::not_found("no condition with that number"))?;
    let fingerprint = serde_json::to_vec(&(id, condition, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/cases/{id}/conditions/{condition_id}/sign-off",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::sign_off_condition(
                    &commands,
                    tx,
                    &actor,
                    id,
                    condition,
                    &req.evidence,
                    req.note.as_deref(),
                )
                .await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await
}
