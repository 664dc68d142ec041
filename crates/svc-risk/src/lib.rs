//! The risk-control service (R1-R9; risk controllers, read-only for internal
//! audit): exposures and their import from core banking, limit proposals,
//! Tier 1 capital and the liquidity position (each a four-eyes proposal a
//! second risk controller decides), breach alerts (also as a
//! server-sent event stream) and the regulatory reports. Risk controllers
//! read everything and can neither vote nor change a case (R8): no such
//! route exists here.

mod collateral;
mod import;
mod input;
pub mod watcher;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use creditops_commands::reports::{self, ExposureFilter};
use creditops_commands::{inputs, limits};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::InputChange;
use creditops_domain::{BorrowerId, Country, Role, Sector, Severity};
use creditops_http::monitoring;
use creditops_http::paging::{PageSize, next_cursor};
use creditops_http::proposals::{self as four_eyes, ProposalQuery, ProposalView, Proposals};
use creditops_http::reports::{csv_response, wants_csv};
use creditops_http::streams::{STREAMS_IN_TOTAL, STREAMS_PER_PERSON, StreamSlot, TokenExpiry};
use creditops_http::views::{LIMIT_VERSION_PAGE, LimitVersions};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext,
    openapi, run_command,
};
use creditops_risk::reports::{ReportKind, ReportLine, to_csv};
use creditops_risk::{
    BorrowerExposure, Breach, Capital, LimitKind, LimitStatus, LimitSubject, LimitVersion,
    LiquidityPosition,
};
use creditops_store::{BreachFilter, BreachPage};
use input::{parse_amount, parse_percent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const SERVICE: &str = "risk";

/// The proposals decided here: Tier 1 capital and liquidity (R3, R6).
const DESK: Role = Role::RiskController;

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(routes!(list_exposures))
        .routes(routes!(import::import_balances))
        .routes(routes!(list_limits, propose_limit))
        .routes(routes!(list_limit_versions))
        .routes(routes!(read_capital, set_capital))
        .routes(routes!(read_liquidity, set_liquidity))
        .routes(routes!(list_proposals))
        .routes(routes!(read_proposal))
        .routes(routes!(approve_proposal))
        .routes(routes!(reject_proposal))
        .routes(routes!(collateral::revaluations_due))
        .routes(routes!(list_alerts))
        .routes(routes!(alert_stream))
        .routes(routes!(breach_report))
        .routes(routes!(exposure_report))
        .routes(routes!(deviating_decisions))
        .routes(routes!(monitoring::watch_list))
        .routes(routes!(monitoring::due_reviews))
        .routes(routes!(monitoring::borrower_reviews))
        .routes(routes!(monitoring::raise_flag, monitoring::borrower_flags))
        .routes(routes!(monitoring::borrower_stage))
        .routes(routes!(monitoring::list_provisions))
        .routes(routes!(monitoring::monitoring_alerts))
        .routes(routes!(monitoring_report))
}

/// This service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(SERVICE, api())
}

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    openapi::service_router(ctx.clone(), api(), ctx)
}

/// At most one filter; none lists every borrower.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ExposureQuery {
    #[param(inline)]
    borrower_id: Option<BorrowerId>,
    /// The members of this group of connected clients.
    group_id: Option<String>,
    /// The borrowers of this NACE Rev. 2 code; a section includes its
    /// divisions.
    #[param(value_type = Option<Sector>)]
    sector: Option<String>,
    /// The borrowers of this ISO 3166-1 alpha-2 country.
    #[param(value_type = Option<Country>)]
    country: Option<String>,
}

/// Exposure per borrower and in total, in the reporting currency.
#[derive(Debug, Serialize, ToSchema)]
struct Exposures {
    currency: String,
    as_of: chrono::DateTime<Utc>,
    /// Decimal string.
    total: String,
    items: Vec<ExposureRow>,
}

/// One borrower's exposure: reserved (approved, not disbursed) and outstanding.
#[derive(Debug, Serialize, ToSchema)]
struct ExposureRow {
    #[serde(flatten)]
    exposure: BorrowerExposure,
    /// `reserved + outstanding`, decimal string.
    total: String,
    /// The borrower's stage of care (L8, L9).
    stage: creditops_domain::Stage,
    /// Approved loan-loss provisions (L10), decimal string.
    provisions: String,
}

/// Exposure per borrower (reserved, outstanding) and the total, filtered by
/// borrower, group, sector or country (R2, R8).
#[utoipa::path(
    get,
    path = "/v1/exposures",
    tag = "exposures",
    params(Query<ExposureQuery>),
    responses(
        (status = 200, description = "The exposures", body = Exposures),
        (status = 404, description = "No group with that id"),
    ),
)]
async fn list_exposures(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<ExposureQuery>,
) -> Result<axum::Json<Exposures>, ApiError> {
    let now = Utc::now();
    let filter = match (
        query.borrower_id,
        query.group_id,
        query.sector,
        query.country,
    ) {
        (Some(id), None, None, None) => ExposureFilter::Borrower(id),
        (None, Some(group), None, None) => ExposureFilter::Group(
            creditops_domain::UnitId::parse(&group)
                .map_err(|e| ApiError::validation(format!("group_id: {e}")))?,
        ),
        (None, None, Some(sector), None) => ExposureFilter::Sector(
            sector
                .parse()
                .map_err(|e| ApiError::invalid_field("sector", e))?,
        ),
        (None, None, None, Some(country)) => ExposureFilter::Country(
            country
                .parse()
                .map_err(|e| ApiError::invalid_field("country", e))?,
        ),
        (None, None, None, None) => ExposureFilter::All,
        _ => {
            return Err(ApiError::validation(
                "filter by at most one of borrower_id, group_id, sector, country",
            ));
        }
    };
    let rows = reports::exposures(&ctx.commands(), filter, now).await?;
    let notes = creditops_commands::monitoring::exposure_notes(&ctx.commands()).await?;
    let total: Decimal = rows.iter().map(|row| row.total()).sum();
    Ok(axum::Json(Exposures {
        currency: creditops_risk::REPORTING_CURRENCY.to_owned(),
        as_of: now,
        total: total.to_string(),
        items: rows
            .into_iter()
            .map(|exposure| {
                let note = notes.get(&exposure.borrower).cloned().unwrap_or_default();
                ExposureRow {
                    total: exposure.total().to_string(),
                    stage: note.stage,
                    provisions: note.provisions.to_string(),
                    exposure,
                }
            })
            .collect(),
    }))
}

/// Limits in force with their usage.
#[derive(Debug, Serialize, ToSchema)]
struct LimitsInForce {
    currency: String,
    items: Vec<LimitInForce>,
}

/// A limit in force and its usage now.
#[derive(Debug, Serialize, ToSchema)]
struct LimitInForce {
    id: uuid::Uuid,
    subject: LimitSubject,
    version: i64,
    /// Decimal string.
    amount: String,
    /// Decimal string.
    tolerance_percent: String,
    /// Decimal string.
    usage: Option<String>,
    /// `amount - usage`, negative when over; decimal string.
    headroom: Option<String>,
    severity: Severity,
}

/// Limits in force with their usage and headroom (R7).
#[utoipa::path(
    get,
    path = "/v1/limits",
    tag = "limits",
    responses((status = 200, description = "The limits in force", body = LimitsInForce)),
)]
async fn list_limits(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<LimitsInForce>, ApiError> {
    let limits = reports::limits_in_force(&ctx.commands(), Utc::now()).await?;
    let items = limits
        .iter()
        .map(|(limit, usage)| LimitInForce {
            id: limit.id,
            subject: limit.subject.clone(),
            version: limit.version,
            amount: limit.amount.to_string(),
            tolerance_percent: limit.tolerance_percent.to_string(),
            usage: usage.usage.map(|u| u.to_string()),
            headroom: usage.headroom.map(|h| h.to_string()),
            severity: usage.severity,
        })
        .collect();
    Ok(axum::Json(LimitsInForce {
        currency: creditops_risk::REPORTING_CURRENCY.to_owned(),
        items,
    }))
}

/// A limit version to propose (four-eyes, R8).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LimitProposal {
    #[schema(value_type = LimitKind)]
    kind: String,
    /// Borrower id, group id, NACE Rev. 2 code (a section letter such as `C`,
    /// covering its divisions, or a division such as `C25`), or ISO 3166-1
    /// alpha-2 country code (`DE`); codes in their canonical spelling only.
    key: String,
    /// Decimal string, at most 2 decimals.
    #[schema(example = "1000000.00", pattern = "^[0-9]{1,16}(\\.[0-9]{1,2})?$")]
    amount: String,
    /// Soft-breach tolerance in percent, 0-100 (decimal string, default 0).
    #[serde(default)]
    #[schema(example = "10", pattern = "^[0-9]{1,3}(\\.[0-9]{1,4})?$")]
    tolerance_percent: Option<String>,
    #[schema(example = "new client", min_length = 1, max_length = 1000)]
    reason: String,
}

/// Proposes a limit version; the back office decides it (R1, R8).
#[utoipa::path(
    post,
    path = "/v1/limits",
    tag = "limits",
    params(IdempotencyKey),
    request_body = LimitProposal,
    responses(
        (status = 201, description = "The version is proposed", body = LimitVersion),
        (status = 409, description = "A concurrent request won"),
    ),
)]
async fn propose_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<LimitProposal>,
) -> Result<Response, ApiError> {
    let kind: LimitKind = req
        .kind
        .parse()
        .map_err(|e: String| ApiError::validation(format!("kind: {e}")))?;
    let subject =
        LimitSubject::parse(kind, &req.key).map_err(|e| ApiError::invalid_field("key", e))?;
    let amount = parse_amount("amount", &req.amount)?;
    let tolerance = match &req.tolerance_percent {
        Some(text) => parse_percent("tolerance_percent", text, Decimal::ONE_HUNDRED)?,
        None => Decimal::ZERO,
    };
    let reason = creditops_domain::case::required_text("reason", &req.reason, 1000)?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/limits",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let proposal = limits::LimitProposal {
                    subject,
                    amount,
                    tolerance_percent: tolerance,
                    reason,
                };
                let limit = limits::propose_limit(&commands, tx, &actor, proposal).await?;
                CommandOutcome::view(StatusCode::CREATED, &limit)
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LimitVersionQuery {
    /// Every status when absent.
    #[param(value_type = Option<LimitStatus>, inline)]
    status: Option<String>,
    /// The `next` of the previous page.
    after: Option<Uuid>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Limit versions of every kind, by status.
#[utoipa::path(
    get,
    path = "/v1/limits/proposals",
    tag = "limits",
    params(Query<LimitVersionQuery>),
    responses((status = 200, description = "The limit versions", body = LimitVersions)),
)]
async fn list_limit_versions(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<LimitVersionQuery>,
) -> Result<axum::Json<LimitVersions>, ApiError> {
    let status = query
        .status
        .map(|s| s.parse::<LimitStatus>())
        .transpose()
        .map_err(|e| ApiError::validation(format!("status: {e}")))?;
    let limit = LIMIT_VERSION_PAGE.limit(query.limit)?;
    let items = limits::limit_versions(&ctx.commands(), status, None, query.after, limit).await?;
    Ok(axum::Json(LimitVersions {
        next: next_cursor(&items, limit, |v| v.id),
        items,
    }))
}

/// Tier 1 capital in force (R3).
#[utoipa::path(
    get,
    path = "/v1/capital",
    tag = "capital and liquidity",
    responses(
        (status = 200, description = "The Tier 1 capital in force", body = Capital),
        (status = 404, description = "No Tier 1 capital is on record"),
    ),
)]
async fn read_capital(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<Capital>, ApiError> {
    Ok(axum::Json(reports::capital(&ctx.commands()).await?))
}

/// Tier 1 capital to record.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CapitalRequest {
    /// Decimal string, greater than zero, at most 2 decimals.
    #[schema(example = "500000000.00", pattern = "^[0-9]{1,16}(\\.[0-9]{1,2})?$")]
    tier1: String,
}

/// Proposes Tier 1 capital (R3). A second risk controller approves it at
/// `links.approve`; then it is recorded as a new version and every limit is
/// re-evaluated (R7).
#[utoipa::path(
    put,
    path = "/v1/capital",
    tag = "capital and liquidity",
    params(IdempotencyKey),
    request_body = CapitalRequest,
    responses(
        (status = 202, description = "The figure is proposed; another risk controller decides it at `links`", body = ProposalView),
        (status = 409, description = "A concurrent request won"),
    ),
)]
async fn set_capital(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<CapitalRequest>,
) -> Result<Response, ApiError> {
    let tier1 = parse_amount("tier1", &req.tier1)?;
    if tier1 <= Decimal::ZERO {
        return Err(ApiError::validation("tier1 must be greater than zero"));
    }
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    propose_figure(ctx, principal, key, "PUT /v1/capital", fingerprint, {
        InputChange::Tier1Capital { tier1 }
    })
    .await
}

/// Runs the proposal of a bank-wide figure idempotently: `202 Accepted`.
async fn propose_figure(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    operation: &'static str,
    fingerprint: Vec<u8>,
    change: InputChange,
) -> Result<Response, ApiError> {
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(&ctx, &principal, key, operation, &fingerprint, move |tx| {
        Box::pin(async move {
            let proposal = inputs::propose_input(&commands, tx, &actor, change).await?;
            four_eyes::accepted(&proposal)
        })
    })
    .await
}

/// The liquidity position in force, what was committed since, and the LCR.
#[derive(Debug, Serialize, ToSchema)]
struct Liquidity {
    #[serde(flatten)]
    position: LiquidityPosition,
    /// Reservations and disbursements since the position (decimal string).
    committed_since: String,
    /// Projected LCR in percent (decimal string); null without net outflows.
    lcr_percent: Option<String>,
    meets_floor: bool,
}

/// The liquidity position, committed outflows and the LCR (R6).
#[utoipa::path(
    get,
    path = "/v1/liquidity",
    tag = "capital and liquidity",
    responses(
        (status = 200, description = "The liquidity position", body = Liquidity),
        (status = 404, description = "No liquidity position is on record"),
    ),
)]
async fn read_liquidity(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<Liquidity>, ApiError> {
    let (position, view) = reports::liquidity(&ctx.commands(), Utc::now()).await?;
    let finding = creditops_risk::gate::liquidity_finding(&view, Decimal::ZERO);
    Ok(axum::Json(Liquidity {
        position,
        committed_since: view.committed.to_string(),
        lcr_percent: view
            .projected_lcr_percent(Decimal::ZERO)
            .map(|l| l.to_string()),
        meets_floor: finding.severity == Severity::Within,
    }))
}

/// A liquidity position to record; amounts are decimal strings.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LiquidityRequest {
    /// High-quality liquid assets.
    #[schema(example = "2000000000.00", pattern = "^[0-9]{1,16}(\\.[0-9]{1,2})?$")]
    hqla: String,
    #[schema(example = "1000000000.00", pattern = "^[0-9]{1,16}(\\.[0-9]{1,2})?$")]
    outflows_30d: String,
    #[schema(example = "0.00", pattern = "^[0-9]{1,16}(\\.[0-9]{1,2})?$")]
    inflows_30d: String,
    /// The internal LCR floor in percent, 100-1000 (default 110).
    #[serde(default)]
    #[schema(example = "110", pattern = "^[0-9]{1,4}(\\.[0-9]{1,4})?$")]
    floor_percent: Option<String>,
}

/// The internal LCR floor when none is given (R6).
const DEFAULT_FLOOR_PERCENT: Decimal = Decimal::from_parts(110, 0, 0, false, 0);

/// Proposes the liquidity position and LCR floor (R6). A second risk
/// controller approves it at `links.approve`; then it is recorded as a new
/// version and every limit is re-evaluated (R7).
#[utoipa::path(
    put,
    path = "/v1/liquidity",
    tag = "capital and liquidity",
    params(IdempotencyKey),
    request_body = LiquidityRequest,
    responses(
        (status = 202, description = "The position is proposed; another risk controller decides it at `links`", body = ProposalView),
        (status = 409, description = "A concurrent request won"),
    ),
)]
async fn set_liquidity(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<LiquidityRequest>,
) -> Result<Response, ApiError> {
    let hqla = parse_amount("hqla", &req.hqla)?;
    let outflows = parse_amount("outflows_30d", &req.outflows_30d)?;
    let inflows = parse_amount("inflows_30d", &req.inflows_30d)?;
    let floor = match &req.floor_percent {
        Some(text) => parse_percent("floor_percent", text, Decimal::from(1000))?,
        None => DEFAULT_FLOOR_PERCENT,
    };
    if floor < creditops_risk::lcr::REGULATORY_FLOOR_PERCENT {
        return Err(ApiError::validation(
            "floor_percent must not be below the regulatory minimum of 100",
        ));
    }
    if outflows.is_zero() {
        return Err(ApiError::validation(
            "outflows_30d must be greater than zero: without outflows the LCR is undefined \
             and its floor could not be checked",
        ));
    }
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let change = InputChange::LiquidityPosition {
        hqla,
        outflows_30d: outflows,
        inflows_30d: inflows,
        floor_percent: floor,
    };
    propose_figure(
        ctx,
        principal,
        key,
        "PUT /v1/liquidity",
        fingerprint,
        change,
    )
    .await
}

/// Tier 1 and liquidity proposals, optionally by status.
#[utoipa::path(
    get,
    path = "/v1/proposals",
    tag = "capital and liquidity",
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

/// One Tier 1 or liquidity proposal.
#[utoipa::path(
    get,
    path = "/v1/proposals/{id}",
    tag = "capital and liquidity",
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

/// Approves another risk controller's proposal: the figure is recorded
/// and every limit re-evaluated (R3, R6, R7).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/approve",
    tag = "capital and liquidity",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The figure took effect; `applied` holds the new version and the breaches", body = ProposalView),
        (status = 403, description = "The proposer cannot decide their own proposal (R3, R6)"),
        (status = 409, description = "The proposal is decided already, or a concurrent request won"),
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

/// Rejects another risk controller's proposal.
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/reject",
    tag = "capital and liquidity",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is rejected", body = ProposalView),
        (status = 403, description = "The proposer cannot decide their own proposal (R3, R6)"),
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    /// `open` (default) or `all`.
    #[param(value_type = Option<AlertStatus>, inline)]
    status: Option<String>,
    /// The `next` of the previous page.
    after: Option<Uuid>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Which alerts to list.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the accepted values of a query parameter
enum AlertStatus {
    Open,
    All,
}

/// Page sizes of the alert list.
const ALERT_PAGE: PageSize = PageSize {
    default: 100,
    max: 1000,
};

/// One page of limit breaches.
#[derive(Debug, Serialize, ToSchema)]
struct Breaches {
    items: Vec<Breach>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<Uuid>,
}

/// Limit breaches (R7) in order of detection: open ones by default.
#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "alerts",
    params(Query<AlertQuery>),
    responses((status = 200, description = "One page of breaches", body = Breaches)),
)]
async fn list_alerts(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<AlertQuery>,
) -> Result<axum::Json<Breaches>, ApiError> {
    let open_only = match query.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "status {other:?} is not open or all"
            )));
        }
    };
    let limit = ALERT_PAGE.limit(query.limit)?;
    let page = BreachPage {
        open_only,
        after: query.after,
        limit,
    };
    let items = reports::breach_page(&ctx.commands(), &page).await?;
    Ok(axum::Json(Breaches {
        next: next_cursor(&items, limit, |b| b.id),
        items,
    }))
}

/// How often the stream looks for new breaches, and how far back it looks
/// again so breaches committed late by another instance are not missed.
const STREAM_POLL: Duration = Duration::from_millis(500);
const STREAM_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// New breaches as server-sent events (R7). Polls the store, so breaches
/// found by any service instance reach every subscriber.
#[utoipa::path(
    get,
    path = "/v1/alerts/stream",
    tag = "alerts",
    responses((
        status = 200,
        description = "A stream of `breach` events, each with a Breach as JSON data; it ends when the token that opened it expires. At most 3 open streams per person (429 beyond)",
        content_type = "text/event-stream",
        body = String,
    )),
)]
async fn alert_stream(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    TokenExpiry(expires_at): TokenExpiry,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    struct Cursor {
        ctx: Arc<ServiceContext>,
        since: chrono::DateTime<Utc>,
        seen: HashSet<uuid::Uuid>,
        pending: std::collections::VecDeque<Breach>,
        expires_at: chrono::DateTime<Utc>,
        person: creditops_domain::StaffId,
        // Held while the stream lives; dropped with it.
        _slot: StreamSlot,
    }
    let slot = ctx.streams.acquire(principal.id()).ok_or_else(|| {
        ApiError::too_many_requests(
            format!(
                "at most {STREAMS_PER_PERSON} alert streams per person (and {STREAMS_IN_TOTAL} in \
                 all) may be open; close one first"
            ),
            10,
        )
    })?;
    let cursor = Cursor {
        ctx,
        since: Utc::now(),
        seen: HashSet::new(),
        pending: std::collections::VecDeque::new(),
        expires_at,
        person: principal.id().clone(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(breach) = cursor.pending.pop_front() {
                let event = Event::default()
                    .event("breach")
                    .id(breach.id.to_string())
                    .json_data(&breach)
                    .unwrap_or_else(|_| Event::default().event("breach"));
                return Some((Ok(event), cursor));
            }
            // The stream ends with the token that opened it.
            let left = (cursor.expires_at - Utc::now())
                .to_std()
                .unwrap_or_default();
            if left.is_zero() {
                return None;
            }
            let mut stopping = cursor.ctx.stopping.clone();
            tokio::select! {
                () = tokio::time::sleep(STREAM_POLL.min(left)) => {}
                // The process is shutting down: end the stream so the
                // connection closes and the shutdown can complete.
                _ = stopping.wait_for(|stop| *stop) => return None,
            }
            // A suspension, a leaver or the end of the role ends the
            // stream too, as it refuses the person's next request (S4).
            if !creditops_http::still_admitted(&cursor.ctx, &cursor.person).await {
                return None;
            }
            let now = Utc::now();
            let filter = BreachFilter {
                from: cursor.since - STREAM_OVERLAP,
                to: now + chrono::Duration::seconds(1),
                limit: 1000,
            };
            let found = reports::breaches(&cursor.ctx.commands(), &filter)
                .await
                .unwrap_or_default();
            for breach in found {
                if breach.detected_at >= cursor.since - STREAM_OVERLAP
                    && cursor.seen.insert(breach.id)
                    && breach.detected_at >= cursor.since
                {
                    cursor.pending.push_back(breach);
                }
            }
            // Forget ids that fell out of the overlap window.
            if cursor.seen.len() > 10_000 {
                cursor.seen.clear();
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Decisions of a period with divergent votes, escalations, soft limit
/// breaches, at board level or in the single-vote lane, each with its votes
/// (L11), for the risk report to the board.
#[utoipa::path(
    get,
    path = "/v1/reports/deviating-decisions",
    tag = "reports",
    params(Query<creditops_http::reports::DeviatingQuery>),
    responses((
        status = 200,
        description = "The report as JSON or CSV",
        content(
            (creditops_http::reports::DeviatingReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn deviating_decisions(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    headers: HeaderMap,
    Query(query): Query<creditops_http::reports::DeviatingQuery>,
) -> Result<Response, ApiError> {
    creditops_http::reports::deviating_report(&ctx, &principal, &headers, &query, false).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// The UTC day of the breach report (default today); not for the other reports.
    #[param(format = Date)]
    date: Option<String>,
    /// `json` or `csv`; without it, `Accept: text/csv` selects CSV.
    #[param(value_type = Option<creditops_http::reports::ReportFormat>, inline)]
    format: Option<String>,
}

/// The breaches detected on one UTC day.
#[derive(Debug, Serialize, ToSchema)]
struct BreachReport {
    #[schema(format = Date)]
    date: String,
    items: Vec<Breach>,
}

/// Breaches detected on one UTC day (R7 daily report).
#[utoipa::path(
    get,
    path = "/v1/reports/breaches",
    tag = "reports",
    params(Query<ReportQuery>),
    responses((
        status = 200,
        description = "The report as JSON or CSV",
        content(
            (BreachReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn breach_report(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    headers: HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let date = match &query.date {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| ApiError::validation("date must be a calendar date like 2026-11-23"))?,
        None => Utc::now().date_naive(),
    };
    let from = date
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| ApiError::validation("date is out of range"))?;
    let to = from + chrono::Duration::days(1);
    let filter = BreachFilter {
        from,
        to,
        limit: 100_000,
    };
    let breaches = reports::breaches(&ctx.commands(), &filter).await?;
    if wants_csv(query.format.as_deref(), &headers)? {
        let csv = creditops_http::reports::breach_report_csv(&breaches);
        return Ok(csv_response(csv));
    }
    Ok(axum::Json(BreachReport {
        date: date.to_string(),
        items: breaches,
    })
    .into_response())
}

/// A regulatory report of borrower units (R9).
#[derive(Debug, Serialize, ToSchema)]
struct ExposureReport {
    report: ReportKind,
    as_of: chrono::DateTime<Utc>,
    currency: String,
    /// Tier 1 capital in force (decimal string), if on record.
    tier1: Option<String>,
    items: Vec<ReportLine>,
}

/// The report's name in the path.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)] // documents the accepted values of a path parameter
enum ReportName {
    LargeExposures,
    MillionLoans,
    #[schema(rename = "section-18")]
    Section18,
}

/// Large exposures (>= 10 % of Tier 1 or >= EUR 300m), Millionenkredite
/// (>= EUR 1m) or KWG section 18 candidates (> EUR 750k), per borrower unit (R9).
#[utoipa::path(
    get,
    path = "/v1/reports/{id}",
    tag = "reports",
    params(PathId<ReportName>, Query<ReportQuery>),
    responses((
        status = 200,
        description = "The report as JSON or CSV",
        content(
            (ExposureReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn exposure_report(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    headers: HeaderMap,
    PathId(kind): PathId<ReportKind>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    if query.date.is_some() {
        return Err(ApiError::validation(
            "this report is as of now; date applies to the breach report",
        ));
    }
    let now = Utc::now();
    let (lines, tier1) = reports::exposure_report(&ctx.commands(), kind, now).await?;
    if wants_csv(query.format.as_deref(), &headers)? {
        return Ok(csv_response(to_csv(&lines)));
    }
    Ok(axum::Json(ExposureReport {
        report: kind,
        as_of: now,
        currency: creditops_risk::REPORTING_CURRENCY.to_owned(),
        tier1: tier1.map(|t| t.to_string()),
        items: lines,
    })
    .into_response())
}

/// The monitoring report (L6-L10): open reviews, the watch list, borrowers
/// by stage, the milestones of current plans and provisions, as risk control reads it.
#[utoipa::path(
    get,
    path = "/v1/reports/monitoring",
    tag = "reports",
    params(creditops_http::Query<monitoring::MonitoringReportQuery>),
    responses((
        status = 200,
        description = "The report as JSON, or one section as CSV",
        content(
            (monitoring::MonitoringReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn monitoring_report(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    headers: axum::http::HeaderMap,
    creditops_http::Query(query): creditops_http::Query<monitoring::MonitoringReportQuery>,
) -> Result<axum::response::Response, ApiError> {
    monitoring::monitoring_report(&ctx, &principal, &headers, &query, false).await
}
