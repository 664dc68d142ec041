//! Routes for the credit after it is granted (L6-L10), shared by the
//! services that serve them: the watch list, reviews, flags, stages with
//! their plans, provisions, monitoring alerts and the monitoring report.
//! Which service serves which route (and so who may call it) is the
//! service's router and its casbin policy; the commands check the side of
//! the person again.

use crate::reports::{csv_field, csv_response, wants_csv};
use crate::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext,
    run_command,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use creditops_commands::monitoring::{self, Assessment, Covenants, ProvisionInput, ReviewFilter};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::monitoring::{Milestone, MilestoneStatus};
use creditops_domain::{
    BorrowerId, CreditId, Money, Provision, ProvisionId, ProvisionStatus, ReviewId, StaffId, Stage,
};
use creditops_store::{
    BorrowerFlag, FlagKind, MonitoringAlert, Review, StageTransfer, StoredMilestone, WatchEntry,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

fn path_uuid<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::not_found(format!("no {what} with that id")))
}

// ---------------------------------------------------------------------------
// Watch list (L7)

/// The borrowers on the watch list, one entry per indicator that hit.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchList {
    pub items: Vec<WatchEntry>,
}

/// The watch list (L7): every borrower an indicator of the early-warning
/// catalogue put there, with the indicator, its value, the catalogue
/// version and the back-office task it opened.
#[utoipa::path(
    get,
    path = "/v1/watch-list",
    tag = "monitoring",
    responses((status = 200, description = "The watch list, newest hit first", body = WatchList)),
)]
pub async fn watch_list(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<WatchList>, ApiError> {
    let items = monitoring::watch_list(&ctx.commands()).await?;
    Ok(axum::Json(WatchList { items }))
}

// ---------------------------------------------------------------------------
// Reviews (L6)

/// Which open reviews to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Only those assigned to this analyst (the due list per analyst).
    #[param(value_type = Option<String>)]
    pub assignee: Option<String>,
    /// Only this borrower's.
    #[param(value_type = Option<String>, format = Uuid)]
    pub borrower_id: Option<String>,
    /// Only those due at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub due_by: Option<String>,
}

/// Reviews, open ones by due date.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewList {
    pub items: Vec<Review>,
}

/// The due list (L6): open reviews by due date, in total or per analyst.
#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "monitoring",
    params(Query<ReviewQuery>),
    responses((status = 200, description = "Open reviews, by due date", body = ReviewList)),
)]
pub async fn due_reviews(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<ReviewQuery>,
) -> Result<axum::Json<ReviewList>, ApiError> {
    let filter = ReviewFilter {
        assignee: query
            .assignee
            .as_deref()
            .map(|id| {
                StaffId::parse(id).map_err(|_| ApiError::validation("assignee is not a staff id"))
            })
            .transpose()?,
        borrower: query
            .borrower_id
            .as_deref()
            .map(|id| {
                id.parse::<BorrowerId>()
                    .map_err(|_| ApiError::validation("borrower_id is not a borrower id"))
            })
            .transpose()?,
        due_by: query
            .due_by
            .as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ApiError::validation("due_by must be an RFC 3339 time"))
            })
            .transpose()?,
    };
    let items = monitoring::due_reviews(&ctx.commands(), &filter).await?;
    Ok(axum::Json(ReviewList { items }))
}

/// A borrower's reviews, open and done, newest first (L6).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/reviews",
    tag = "monitoring",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower's reviews", body = ReviewList)),
)]
pub async fn borrower_reviews(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<ReviewList>, ApiError> {
    let items = monitoring::reviews_of(&ctx.commands(), id).await?;
    Ok(axum::Json(ReviewList { items }))
}

/// Whom an open review is assigned to.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// A back-office analyst.
    #[schema(example = "ba-2", max_length = 64)]
    pub assignee: String,
}

/// Back office assigns an open review to one of its analysts (L6).
#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/assignee",
    tag = "monitoring",
    params(PathId<ReviewId>, IdempotencyKey),
    request_body = AssignRequest,
    responses(
        (status = 200, description = "The review, assigned", body = Review),
        (status = 409, description = "The review is completed, or a concurrent request won"),
    ),
)]
pub async fn assign_review(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<ReviewId>,
    Json(req): Json<AssignRequest>,
) -> Result<Response, ApiError> {
    let assignee = StaffId::parse(&req.assignee)
        .map_err(|_| ApiError::validation("assignee is not a staff id"))?;
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/reviews/{id}/assignee",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let review =
                    monitoring::assign_review(&commands, tx, &actor, id, &assignee).await?;
                CommandOutcome::view(StatusCode::OK, &review)
            })
        },
    )
    .await
}

/// The risk assessment back office records when it completes a review.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// The assessment: the borrower's situation, the outlook, the decision.
    #[schema(min_length = 1, max_length = 8000)]
    pub summary: String,
    /// `met`, `breached` (recorded as a covenant breach, L7) or `none`.
    #[schema(value_type = String, example = "met")]
    pub covenants: Covenants,
    /// The use of funds was checked.
    pub use_of_funds_checked: bool,
    /// The collateral and its revaluations were checked.
    pub collateral_checked: bool,
}

/// Back office completes a review (L6): the rating must have been renewed
/// lately; a breached covenant becomes an early-warning flag; the next
/// regular review falls due one interval later.
#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/completion",
    tag = "monitoring",
    params(PathId<ReviewId>, IdempotencyKey),
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The completed review", body = Review),
        (status = 409, description = "The review is completed already, or a concurrent request won"),
    ),
)]
pub async fn complete_review(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<ReviewId>,
    Json(req): Json<CompletionRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let assessment = Assessment {
        summary: req.summary,
        covenants: req.covenants,
        use_of_funds_checked: req.use_of_funds_checked,
        collateral_checked: req.collateral_checked,
    };
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/reviews/{id}/completion",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let review =
                    monitoring::complete_review(&commands, tx, &actor, id, &assessment).await?;
                CommandOutcome::view(StatusCode::OK, &review)
            })
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// Flags (L7)

/// A flag raised on a borrower.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagRequest {
    /// `negative_information` (any staff member of market, back office or
    /// risk control) or `covenant_breach` (back office).
    pub kind: FlagKind,
    /// What is known, and from where.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
}

/// A borrower's flags, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagList {
    pub items: Vec<BorrowerFlag>,
}

/// Raises negative information or a covenant breach on a borrower (L7);
/// the early-warning catalogue is evaluated at once.
#[utoipa::path(
    post,
    path = "/v1/borrowers/{id}/flags",
    tag = "monitoring",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = FlagRequest,
    responses(
        (status = 201, description = "The flag, on record", body = BorrowerFlag),
        (status = 409, description = "A concurrent request with the same idempotency key won"),
    ),
)]
pub async fn raise_flag(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Json(req): Json<FlagRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/borrowers/{id}/flags",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let flag = monitoring::raise_flag(&commands, tx, &actor, id, req.kind, &req.reason)
                    .await?;
                CommandOutcome::view(StatusCode::CREATED, &flag)
            })
        },
    )
    .await
}

/// A borrower's flags, open and cleared, newest first (L7).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/flags",
    tag = "monitoring",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower's flags", body = FlagList)),
)]
pub async fn borrower_flags(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<FlagList>, ApiError> {
    let items = monitoring::flags_of(&ctx.commands(), id).await?;
    Ok(axum::Json(FlagList { items }))
}

/// Why a flag is cleared.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearanceRequest {
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
}

/// Back office clears a flag (L7); the catalogue is evaluated again.
#[utoipa::path(
    post,
    path = "/v1/flags/{id}/clearance",
    tag = "monitoring",
    params(("id" = Uuid, Path, description = "The flag"), IdempotencyKey),
    request_body = ClearanceRequest,
    responses(
        (status = 200, description = "The cleared flag", body = BorrowerFlag),
        (status = 409, description = "The flag is cleared already, or a concurrent request won"),
    ),
)]
pub async fn clear_flag(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    axum::extract::Path(id): axum::extract::Path<String>,
    Json(req): Json<ClearanceRequest>,
) -> Result<Response, ApiError> {
    let id: Uuid = path_uuid(&id, "flag")?;
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/flags/{id}/clearance",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let flag = monitoring::clear_flag(&commands, tx, &actor, id, &req.reason).await?;
                CommandOutcome::view(StatusCode::OK, &flag)
            })
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// Stages and plans (L8, L9)

/// A borrower's stage, the transfer that set it and its plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    pub stage: Stage,
    /// The transfer into the stage (none while the borrower never left
    /// `normal`).
    pub transfer: Option<StageTransfer>,
    /// The milestones of the restructuring or workout plan.
    pub plan: Vec<StoredMilestone>,
    /// The watch-list entries that are criteria of the rule set for a
    /// transfer into intensive care (L8); back office decides.
    pub criteria_met: Vec<WatchEntry>,
}

impl From<monitoring::StageView> for StageView {
    fn from(view: monitoring::StageView) -> Self {
        Self {
            stage: view.stage,
            transfer: view.transfer,
            plan: view.plan,
            criteria_met: view.criteria_met,
        }
    }
}

/// The borrower's stage of care (L8, L9): market reads it, back office
/// decides it.
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/stage",
    tag = "monitoring",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The stage with its plan", body = StageView)),
)]
pub async fn borrower_stage(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<StageView>, ApiError> {
    Ok(axum::Json(
        monitoring::stage(&ctx.commands(), id).await?.into(),
    ))
}

/// One milestone of a new plan.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestoneRequest {
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "new equity of EUR 2m paid in"
    )]
    pub title: String,
    #[schema(value_type = String, format = Date, example = "2027-03-31")]
    pub due_on: NaiveDate,
}

/// A transfer to another stage.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub stage: Stage,
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// Into restructuring or workout: the plan's milestones (1-50).
    #[serde(default)]
    pub plan: Vec<MilestoneRequest>,
}

/// Back office moves a borrower to another stage (L8, L9), with a reason
/// and, into restructuring or workout, a plan.
#[utoipa::path(
    put,
    path = "/v1/borrowers/{id}/stage",
    tag = "monitoring",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "The new stage with its plan", body = StageView),
        (status = 409, description = "The stage changed meanwhile, or a concurrent request won"),
    ),
)]
pub async fn transfer_stage(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Json(req): Json<TransferRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let plan: Vec<Milestone> = req
        .plan
        .iter()
        .map(|m| Milestone {
            title: m.title.clone(),
            due_on: m.due_on,
            status: MilestoneStatus::Open,
        })
        .collect();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "PUT /v1/borrowers/{id}/stage",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let view = monitoring::transfer_stage(
                    &commands,
                    tx,
                    &actor,
                    id,
                    req.stage,
                    &req.reason,
                    &plan,
                )
                .await?;
                CommandOutcome::view(StatusCode::OK, &StageView::from(view))
            })
        },
    )
    .await
}

/// The outcome of a milestone.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestoneUpdate {
    /// `met` or `missed`.
    pub status: MilestoneStatus,
}

/// Back office marks a milestone of the current plan met or missed (L9).
#[utoipa::path(
    put,
    path = "/v1/borrowers/{id}/milestones/{milestone_id}/status",
    tag = "monitoring",
    params(
        ("id" = BorrowerId, Path, description = "The borrower"),
        ("milestone_id" = Uuid, Path, description = "The milestone"),
        IdempotencyKey,
    ),
    request_body = MilestoneUpdate,
    responses(
        (status = 200, description = "The milestone", body = StoredMilestone),
        (status = 409, description = "The milestone is not open any more, or a concurrent request won"),
    ),
)]
pub async fn update_milestone(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    axum::extract::Path((id, milestone)): axum::extract::Path<(String, String)>,
    Json(req): Json<MilestoneUpdate>,
) -> Result<Response, ApiError> {
    let id: BorrowerId = path_uuid(&id, "borrower")?;
    let milestone: Uuid = path_uuid(&milestone, "milestone")?;
    let fingerprint = serde_json::to_vec(&(id, milestone, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "PUT /v1/borrowers/{id}/milestones/{milestone_id}/status",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let updated =
                    monitoring::update_milestone(&commands, tx, &actor, id, milestone, req.status)
                        .await?;
                CommandOutcome::view(StatusCode::OK, &updated)
            })
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// Provisions (L10)

/// A loan-loss provision. Amounts are decimal strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ProvisionId,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub credit_id: Option<CreditId>,
    #[schema(example = "250000.00")]
    pub amount: String,
    pub currency: String,
    pub reason: String,
    pub method: String,
    #[schema(value_type = String, example = "proposed")]
    pub status: ProvisionStatus,
    pub proposed_by: String,
    pub proposed_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Above the rule set's threshold: reported to the board on approval.
    pub board_alert: bool,
}

impl From<&Provision> for ProvisionView {
    fn from(p: &Provision) -> Self {
        Self {
            id: p.id,
            borrower_id: p.borrower_id,
            credit_id: p.credit_id,
            amount: format!("{:.2}", p.amount.amount()),
            currency: p.amount.currency_code().to_owned(),
            reason: p.reason.clone(),
            method: p.method.clone(),
            status: p.status,
            proposed_by: p.proposed_by.to_string(),
            proposed_at: p.proposed_at,
            decided_by: p.decided_by.as_ref().map(ToString::to_string),
            decided_at: p.decided_at,
            board_alert: p.board_alert,
        }
    }
}

/// A provision back office proposes.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    /// One credit of the borrower, or none for the borrower as a whole.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub credit_id: Option<CreditId>,
    /// A positive decimal string with at most 2 decimals.
    #[schema(example = "250000.00", pattern = "^[0-9]{1,15}(\\.[0-9]{1,2})?$")]
    pub amount: String,
    /// Default: the competence order's currency (EUR).
    #[serde(default)]
    #[schema(example = "EUR", min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// How the amount was derived (discounted cash flows, collateral
    /// shortfall, ...).
    #[schema(min_length = 1, max_length = 100, example = "discounted cash flows")]
    pub method: String,
}

/// Back office proposes a loan-loss provision (L10); a second person of
/// back office decides it.
#[utoipa::path(
    post,
    path = "/v1/provisions",
    tag = "provisions",
    params(IdempotencyKey),
    request_body = ProvisionRequest,
    responses(
        (status = 201, description = "The proposed provision", body = ProvisionView),
        (status = 409, description = "A concurrent request with the same idempotency key won"),
    ),
)]
pub async fn propose_provision(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<ProvisionRequest>,
) -> Result<Response, ApiError> {
    let amount = Money::parse(&req.amount, req.currency.as_deref().unwrap_or("EUR"))
        .map_err(|e| ApiError::invalid_field("amount", e))?;
    let input = ProvisionInput {
        borrower: req.borrower_id,
        credit: req.credit_id,
        amount,
        reason: req.reason.clone(),
        method: req.method.clone(),
    };
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/provisions",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let provision =
                    monitoring::propose_provision(&commands, tx, &actor, &input).await?;
                CommandOutcome::view(StatusCode::CREATED, &ProvisionView::from(&provision))
            })
        },
    )
    .await
}

/// Decides a proposed provision as the approve and reject routes do (the
/// console runs it too).
pub async fn decide_provision(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: ProvisionId,
    verdict: Verdict,
) -> Result<Response, ApiError> {
    let operation = match verdict {
        Verdict::Approve => "POST /v1/provisions/{id}/approve",
        Verdict::Reject => "POST /v1/provisions/{id}/reject",
    };
    let fingerprint = serde_json::to_vec(&id).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(&ctx, &principal, key, operation, &fingerprint, move |tx| {
        Box::pin(async move {
            let provision =
                monitoring::decide_provision(&commands, tx, &actor, id, verdict).await?;
            CommandOutcome::view(StatusCode::OK, &ProvisionView::from(&provision))
        })
    })
    .await
}

/// A second person of back office approves a provision (L10); above the
/// threshold the board is alerted at once.
#[utoipa::path(
    post,
    path = "/v1/provisions/{id}/approve",
    tag = "provisions",
    params(PathId<ProvisionId>, IdempotencyKey),
    responses(
        (status = 200, description = "The approved provision", body = ProvisionView),
        (status = 409, description = "The provision is decided already, or a concurrent request won"),
    ),
)]
pub async fn approve_provision(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<ProvisionId>,
) -> Result<Response, ApiError> {
    decide_provision(ctx, principal, key, id, Verdict::Approve).await
}

/// A second person of back office rejects a provision (L10).
#[utoipa::path(
    post,
    path = "/v1/provisions/{id}/reject",
    tag = "provisions",
    params(PathId<ProvisionId>, IdempotencyKey),
    responses(
        (status = 200, description = "The rejected provision", body = ProvisionView),
        (status = 409, description = "The provision is decided already, or a concurrent request won"),
    ),
)]
pub async fn reject_provision(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<ProvisionId>,
) -> Result<Response, ApiError> {
    decide_provision(ctx, principal, key, id, Verdict::Reject).await
}

/// Which provisions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProvisionQuery {
    #[param(value_type = Option<String>, format = Uuid)]
    pub borrower_id: Option<String>,
}

/// Provisions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionList {
    pub items: Vec<ProvisionView>,
}

/// Provisions, of one borrower or all, newest first (L10).
#[utoipa::path(
    get,
    path = "/v1/provisions",
    tag = "provisions",
    params(Query<ProvisionQuery>),
    responses((status = 200, description = "Provisions, newest first", body = ProvisionList)),
)]
pub async fn list_provisions(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<ProvisionQuery>,
) -> Result<axum::Json<ProvisionList>, ApiError> {
    let borrower = query
        .borrower_id
        .as_deref()
        .map(|id| {
            id.parse::<BorrowerId>()
                .map_err(|_| ApiError::validation("borrower_id is not a borrower id"))
        })
        .transpose()?;
    let items = monitoring::provisions(&ctx.commands(), borrower).await?;
    Ok(axum::Json(ProvisionList {
        items: items.iter().map(ProvisionView::from).collect(),
    }))
}

// ---------------------------------------------------------------------------
// Alerts and the report (L6, L10, reports)

/// Alerts monitoring raised, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitoringAlertList {
    pub items: Vec<MonitoringAlert>,
}

/// Overdue reviews (to back office) and large provisions (to the board),
/// newest first.
#[utoipa::path(
    get,
    path = "/v1/monitoring/alerts",
    tag = "monitoring",
    responses((status = 200, description = "Monitoring alerts", body = MonitoringAlertList)),
)]
pub async fn monitoring_alerts(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<MonitoringAlertList>, ApiError> {
    let items = monitoring::alerts(&ctx.commands()).await?;
    Ok(axum::Json(MonitoringAlertList { items }))
}

/// The monitoring report: open reviews, the watch list, borrowers by
/// stage, the milestones of current plans and provisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitoringReport {
    pub as_of: DateTime<Utc>,
    pub reviews: Vec<Review>,
    pub watch_list: Vec<WatchEntry>,
    pub stages: Vec<StageTransfer>,
    pub milestones: Vec<StoredMilestone>,
    pub provisions: Vec<ProvisionView>,
}

/// Which part of the report a CSV answer holds.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportSection {
    Reviews,
    WatchList,
    Stages,
    Milestones,
    Provisions,
}

/// The format and, for CSV, the section of the monitoring report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MonitoringReportQuery {
    /// The table a CSV answer holds (required for CSV; JSON holds all).
    #[param(value_type = Option<ReportSection>, inline)]
    pub section: Option<ReportSection>,
    /// `json` or `csv`; without it, `Accept: text/csv` selects CSV.
    #[param(value_type = Option<crate::reports::ReportFormat>, inline)]
    pub format: Option<String>,
}

impl MonitoringReport {
    fn new(report: monitoring::Report) -> Self {
        Self {
            as_of: report.as_of,
            reviews: report.reviews,
            watch_list: report.watch_list,
            stages: report.stages,
            milestones: report.milestones,
            provisions: report.provisions.iter().map(ProvisionView::from).collect(),
        }
    }

    fn csv(&self, section: ReportSection) -> String {
        let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        let mut csv = String::new();
        match section {
            ReportSection::Reviews => {
                csv.push_str(
                    "review_id,borrower_id,kind,reason,due_at,opened_at,assignee,overdue_at\r\n",
                );
                for r in &self.reviews {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{},{},{}\r\n",
                        r.id,
                        r.borrower_id,
                        r.kind.as_str(),
                        csv_field(&r.reason),
                        r.due_at.to_rfc3339(),
                        r.opened_at.to_rfc3339(),
                        r.assignee
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        time(r.overdue_at),
                    ));
                }
            }
            ReportSection::WatchList => {
                csv.push_str("borrower_id,indicator,value,catalogue_version,hit_at,review_id\r\n");
                for w in &self.watch_list {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{}\r\n",
                        w.borrower_id,
                        w.indicator,
                        csv_field(&w.value),
                        w.rules_version,
                        w.hit_at.to_rfc3339(),
                        w.review_id.map(|id| id.to_string()).unwrap_or_default(),
                    ));
                }
            }
            ReportSection::Stages => {
                csv.push_str("borrower_id,stage,since,from_stage,decided_by,reason\r\n");
                for s in &self.stages {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{}\r\n",
                        s.borrower_id,
                        s.to_stage,
                        s.decided_at.to_rfc3339(),
                        s.from_stage,
                        s.decided_by,
                        csv_field(&s.reason),
                    ));
                }
            }
            ReportSection::Milestones => {
                csv.push_str("borrower_id,milestone_id,ordinal,title,due_on,status,updated_by,updated_at\r\n");
                for m in &self.milestones {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{},{},{}\r\n",
                        m.borrower_id,
                        m.id,
                        m.ordinal,
                        csv_field(&m.milestone.title),
                        m.milestone.due_on,
                        m.milestone.status.as_str(),
                        m.updated_by,
                        m.updated_at.to_rfc3339(),
                    ));
                }
            }
            ReportSection::Provisions => {
                csv.push_str("provision_id,borrower_id,credit_id,amount,currency,status,method,proposed_by,proposed_at,decided_by,decided_at,board_alert\r\n");
                for p in &self.provisions {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                        p.id,
                        p.borrower_id,
                        p.credit_id.map(|id| id.to_string()).unwrap_or_default(),
                        p.amount,
                        p.currency,
                        p.status.as_str(),
                        csv_field(&p.method),
                        p.proposed_by,
                        p.proposed_at.to_rfc3339(),
                        p.decided_by.clone().unwrap_or_default(),
                        time(p.decided_at),
                        p.board_alert,
                    ));
                }
            }
        }
        csv
    }
}

/// The monitoring report as JSON or, one section, as CSV; with `audited`
/// (the audit service) the read is audited (A7).
pub async fn monitoring_report(
    ctx: &ServiceContext,
    principal: &Principal,
    headers: &HeaderMap,
    query: &MonitoringReportQuery,
    audited: bool,
) -> Result<Response, ApiError> {
    let csv = wants_csv(query.format.as_deref(), headers)?;
    if csv && query.section.is_none() {
        return Err(ApiError::validation(
            "a CSV answer holds one section: reviews, watch_list, stages, milestones or provisions",
        ));
    }
    let commands = ctx.commands();
    let report = if audited {
        creditops_commands::audit_reads::monitoring_report(&commands, principal).await?
    } else {
        monitoring::report(&commands).await?
    };
    let report = MonitoringReport::new(report);
    match query.section.filter(|_| csv) {
        Some(section) => Ok(csv_response(report.csv(section))),
        None => Ok(axum::Json(report).into_response()),
    }
}
