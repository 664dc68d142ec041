//! The risk-control service (R1-R9; risk controllers, read-only for internal
//! audit): exposures and their import from core banking, limit proposals,
//! Tier 1 capital, the liquidity position, breach alerts (also as a
//! server-sent event stream) and the regulatory reports. Risk controllers
//! read everything and can neither vote nor change a case (R8): no such
//! route exists here.

mod import;
mod input;
pub mod watcher;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use creditops_domain::{BorrowerId, Severity};
use creditops_http::risk::{decide_limit, liquidity_view, watch_all, watch_borrowers};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, Operation, PathId, Principal, Query,
    ServiceContext, health_routes, run_command, secure,
};
use creditops_risk::reports::{ReportKind, report, to_csv};
use creditops_risk::{
    Aggregates, Breach, Capital, LimitKind, LimitStatus, LimitSubject, LimitVersion,
    LiquidityPosition,
};
use creditops_store::{BreachFilter, ExposureScope};
use input::{parse_amount, parse_percent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = "risk";

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        path: "/v1/exposures",
        summary: "Exposure per borrower (reserved, outstanding), filtered",
    },
    Operation {
        method: "POST",
        path: "/v1/exposures/import",
        summary: "Import outstanding balances (JSON lines or CSV), all or nothing",
    },
    Operation {
        method: "GET",
        path: "/v1/limits",
        summary: "Limits in force with their usage and headroom",
    },
    Operation {
        method: "POST",
        path: "/v1/limits",
        summary: "Propose a limit version (four-eyes)",
    },
    Operation {
        method: "GET",
        path: "/v1/limits/proposals",
        summary: "Limit versions by status",
    },
    Operation {
        method: "POST",
        path: "/v1/limits/{id}/approve",
        summary: "Approve a sector or country limit (another risk controller)",
    },
    Operation {
        method: "POST",
        path: "/v1/limits/{id}/reject",
        summary: "Reject a sector or country limit (another risk controller)",
    },
    Operation {
        method: "GET",
        path: "/v1/capital",
        summary: "Tier 1 capital in force",
    },
    Operation {
        method: "PUT",
        path: "/v1/capital",
        summary: "Record Tier 1 capital (new version; re-evaluates all limits)",
    },
    Operation {
        method: "GET",
        path: "/v1/liquidity",
        summary: "Liquidity position, committed outflows and LCR",
    },
    Operation {
        method: "PUT",
        path: "/v1/liquidity",
        summary: "Record the liquidity position and LCR floor (new version)",
    },
    Operation {
        method: "GET",
        path: "/v1/alerts",
        summary: "Limit breaches (open by default)",
    },
    Operation {
        method: "GET",
        path: "/v1/alerts/stream",
        summary: "New limit breaches as server-sent events",
    },
    Operation {
        method: "GET",
        path: "/v1/reports/breaches",
        summary: "Daily breach report (JSON or CSV)",
    },
    Operation {
        method: "GET",
        path: "/v1/reports/{id}",
        summary: "large-exposures, million-loans or section-18 (JSON or CSV)",
    },
];

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    let business = Router::new()
        .route("/v1/exposures", get(list_exposures))
        .route("/v1/exposures/import", post(import::import_balances))
        .route("/v1/limits", get(list_limits).post(propose_limit))
        .route("/v1/limits/proposals", get(list_limit_versions))
        .route("/v1/limits/{id}/approve", post(approve_limit))
        .route("/v1/limits/{id}/reject", post(reject_limit))
        .route("/v1/capital", get(read_capital).put(set_capital))
        .route("/v1/liquidity", get(read_liquidity).put(set_liquidity))
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/alerts/stream", get(alert_stream))
        .route("/v1/reports/breaches", get(breach_report))
        .route("/v1/reports/{id}", get(exposure_report))
        .with_state(ctx.clone());
    secure(business, ctx.clone()).merge(health_routes(ctx, OPERATIONS))
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExposureQuery {
    borrower_id: Option<BorrowerId>,
    group_id: Option<String>,
    sector: Option<String>,
    country: Option<String>,
}

async fn list_exposures(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<ExposureQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let now = Utc::now();
    let mut tx = ctx.store.begin_read().await?;
    let scope = match (
        query.borrower_id,
        query.group_id,
        query.sector,
        query.country,
    ) {
        (Some(id), None, None, None) => ExposureScope::Borrowers(vec![id]),
        (None, Some(group), None, None) => {
            let group = creditops_domain::UnitId::parse(&group)
                .map_err(|e| ApiError::validation(format!("group_id: {e}")))?;
            if tx.group(&group).await?.is_none() {
                return Err(ApiError::not_found("no group with that id"));
            }
            ExposureScope::Borrowers(tx.group_members(&group, now).await?)
        }
        (None, None, Some(sector), None) => ExposureScope::Sector(sector),
        (None, None, None, Some(country)) => ExposureScope::Country(country),
        (None, None, None, None) => ExposureScope::All,
        _ => {
            return Err(ApiError::validation(
                "filter by at most one of borrower_id, group_id, sector, country",
            ));
        }
    };
    let rows = tx.exposures(&scope, now).await?;
    let total: Decimal = rows.iter().map(|row| row.total()).sum();
    Ok(axum::Json(json!({
        "currency": creditops_risk::REPORTING_CURRENCY,
        "as_of": now,
        "total": total.to_string(),
        "items": rows.iter().map(|row| {
            let mut value = to_json(row);
            value["total"] = json!(row.total().to_string());
            value
        }).collect::<Vec<_>>(),
    })))
}

async fn list_limits(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let now = Utc::now();
    let mut tx = ctx.store.begin_read().await?;
    let limits = tx.limits_in_force(None).await?;
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let aggregates = Aggregates::build(&exposures);
    let usages = creditops_risk::watch::limit_usages(&limits, &aggregates);
    let items: Vec<Value> = limits
        .iter()
        .zip(&usages)
        .map(|(limit, usage)| {
            json!({
                "id": limit.id,
                "subject": limit.subject,
                "version": limit.version,
                "amount": limit.amount.to_string(),
                "tolerance_percent": limit.tolerance_percent.to_string(),
                "usage": usage.usage.map(|u| u.to_string()),
                "headroom": usage.headroom.map(|h| h.to_string()),
                "severity": usage.severity,
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "currency": creditops_risk::REPORTING_CURRENCY,
        "items": items,
    })))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LimitProposal {
    kind: String,
    key: String,
    amount: String,
    #[serde(default)]
    tolerance_percent: Option<String>,
    reason: String,
}

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
    let subject = LimitSubject::parse(kind, &req.key)
        .map_err(|e| ApiError::validation(format!("key: {e}")))?;
    let amount = parse_amount("amount", &req.amount)?;
    let tolerance = match &req.tolerance_percent {
        Some(text) => parse_percent("tolerance_percent", text, Decimal::ONE_HUNDRED)?,
        None => Decimal::ZERO,
    };
    let reason = creditops_domain::case::required_text("reason", &req.reason, 1000)?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/limits",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                if let LimitSubject::Borrower(id) = &subject
                    && tx.borrower(*id).await?.is_none()
                {
                    return Err(ApiError::validation("key names no registered borrower"));
                }
                if let LimitSubject::Group(id) = &subject {
                    let group = creditops_domain::UnitId::parse(id)
                        .map_err(|e| ApiError::validation(format!("key: {e}")))?;
                    if tx.group(&group).await?.is_none() {
                        return Err(ApiError::validation(
                            "key names no group of connected clients",
                        ));
                    }
                }
                let version = tx.latest_limit_version(&subject).await? + 1;
                let proposal = LimitVersion {
                    id: uuid::Uuid::now_v7(),
                    subject,
                    version,
                    amount,
                    tolerance_percent: tolerance,
                    reason,
                    proposed_by: actor.id().clone(),
                    proposed_at: Utc::now(),
                    status: LimitStatus::Pending,
                    decided_by: None,
                    decided_at: None,
                };
                tx.insert_limit_version(&proposal).await?;
                let mut record = actor.record(&ctx, "limit.proposed");
                record.rule = Some("R8".into());
                record.data = json!({
                    "limit_id": proposal.id,
                    "subject": proposal.subject.to_string(),
                    "version": proposal.version,
                    "amount": proposal.amount.to_string(),
                    "tolerance_percent": proposal.tolerance_percent.to_string(),
                });
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(StatusCode::CREATED, to_json(&proposal)))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitVersionQuery {
    status: Option<String>,
}

async fn list_limit_versions(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<LimitVersionQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let status = query
        .status
        .map(|s| s.parse::<LimitStatus>())
        .transpose()
        .map_err(|e| ApiError::validation(format!("status: {e}")))?;
    let mut tx = ctx.store.begin_read().await?;
    let versions = tx.limit_versions(status, None).await?;
    Ok(axum::Json(json!({ "items": to_json(&versions) })))
}

/// Sector and country limits are decided by a second risk controller;
/// borrower and group limits only by back office (R8).
const RISK_DECIDES: &[LimitKind] = &[LimitKind::Sector, LimitKind::Country];

async fn approve_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<uuid::Uuid>,
) -> Result<Response, ApiError> {
    decide_limit(ctx, principal, key, id, true, RISK_DECIDES).await
}

async fn reject_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<uuid::Uuid>,
) -> Result<Response, ApiError> {
    decide_limit(ctx, principal, key, id, false, RISK_DECIDES).await
}

async fn read_capital(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    let capital = tx
        .latest_capital()
        .await?
        .ok_or_else(|| ApiError::not_found("no Tier 1 capital is on record"))?;
    Ok(axum::Json(to_json(&capital)))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CapitalRequest {
    tier1: String,
}

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
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "PUT /v1/capital",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let now = Utc::now();
                let version = tx.latest_capital().await?.map_or(0, |c| c.version) + 1;
                let capital = Capital {
                    version,
                    tier1,
                    recorded_by: actor.id().clone(),
                    recorded_at: now,
                };
                tx.insert_capital(&capital).await?;
                let mut record = actor.record(&ctx, "risk.capital_recorded");
                record.rule = Some("R3".into());
                record.data = json!({"version": version, "tier1": tier1.to_string()});
                ctx.audit(tx, &record).await?;
                let breaches =
                    watch_all(&ctx, tx, &format!("Tier 1 capital version {version}"), now).await?;
                let mut body = to_json(&capital);
                body["breaches"] = to_json(&breaches);
                Ok(CommandOutcome::new(StatusCode::OK, body))
            })
        },
    )
    .await
}

async fn read_liquidity(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<Value>, ApiError> {
    let now = Utc::now();
    let mut tx = ctx.store.begin_read().await?;
    let position = tx
        .latest_liquidity()
        .await?
        .ok_or_else(|| ApiError::not_found("no liquidity position is on record"))?;
    let view = liquidity_view(tx.as_mut(), now)
        .await?
        .ok_or_else(|| ApiError::not_found("no liquidity position is on record"))?;
    let finding = creditops_risk::gate::liquidity_finding(&view, Decimal::ZERO);
    let mut body = to_json(&position);
    body["committed_since"] = json!(view.committed.to_string());
    body["lcr_percent"] = json!(
        view.projected_lcr_percent(Decimal::ZERO)
            .map(|l| l.to_string())
    );
    body["meets_floor"] = json!(finding.severity == Severity::Within);
    Ok(axum::Json(body))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LiquidityRequest {
    hqla: String,
    outflows_30d: String,
    inflows_30d: String,
    #[serde(default)]
    floor_percent: Option<String>,
}

/// The internal LCR floor when none is given (R6).
const DEFAULT_FLOOR_PERCENT: Decimal = Decimal::from_parts(110, 0, 0, false, 0);

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
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "PUT /v1/liquidity",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let now = Utc::now();
                let version = tx.latest_liquidity().await?.map_or(0, |p| p.version) + 1;
                let position = LiquidityPosition {
                    version,
                    hqla,
                    outflows_30d: outflows,
                    inflows_30d: inflows,
                    floor_percent: floor,
                    recorded_by: actor.id().clone(),
                    recorded_at: now,
                };
                tx.insert_liquidity(&position).await?;
                let mut record = actor.record(&ctx, "risk.liquidity_recorded");
                record.rule = Some("R6".into());
                record.data = json!({
                    "version": version,
                    "hqla": hqla.to_string(),
                    "outflows_30d": outflows.to_string(),
                    "inflows_30d": inflows.to_string(),
                    "floor_percent": floor.to_string(),
                });
                ctx.audit(tx, &record).await?;
                let breaches = watch_all(
                    &ctx,
                    tx,
                    &format!("liquidity position version {version}"),
                    now,
                )
                .await?;
                let mut body = to_json(&position);
                body["breaches"] = to_json(&breaches);
                Ok(CommandOutcome::new(StatusCode::OK, body))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    /// `open` (default) or `all` (the last 30 days).
    status: Option<String>,
}

async fn list_alerts(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<AlertQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    let breaches = match query.status.as_deref() {
        None | Some("open") => tx.open_breaches().await?,
        Some("all") => {
            let now = Utc::now();
            tx.breaches(&BreachFilter {
                from: now - chrono::Duration::days(30),
                to: now + chrono::Duration::seconds(1),
                limit: 10_000,
            })
            .await?
        }
        Some(other) => {
            return Err(ApiError::validation(format!(
                "status {other:?} is not open or all"
            )));
        }
    };
    Ok(axum::Json(json!({ "items": to_json(&breaches) })))
}

/// How often the stream looks for new breaches, and how far back it looks
/// again so breaches committed late by another instance are not missed.
const STREAM_POLL: Duration = Duration::from_millis(500);
const STREAM_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// New breaches as server-sent events (R7). Polls the store, so breaches
/// found by any service instance reach every subscriber.
async fn alert_stream(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    struct Cursor {
        ctx: Arc<ServiceContext>,
        since: chrono::DateTime<Utc>,
        seen: HashSet<uuid::Uuid>,
        pending: std::collections::VecDeque<Breach>,
    }
    let cursor = Cursor {
        ctx,
        since: Utc::now(),
        seen: HashSet::new(),
        pending: std::collections::VecDeque::new(),
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
            let mut stopping = cursor.ctx.stopping.clone();
            tokio::select! {
                () = tokio::time::sleep(STREAM_POLL) => {}
                // The process is shutting down: end the stream so the
                // connection closes and the shutdown can complete.
                _ = stopping.wait_for(|stop| *stop) => return None,
            }
            let now = Utc::now();
            let filter = BreachFilter {
                from: cursor.since - STREAM_OVERLAP,
                to: now + chrono::Duration::seconds(1),
                limit: 1000,
            };
            let found = match cursor.ctx.store.begin_read().await {
                Ok(mut tx) => tx.breaches(&filter).await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
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
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    date: Option<String>,
    format: Option<String>,
}

fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::validation(format!(
            "format {other:?} is not json or csv"
        ))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"))),
    }
}

fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// Breaches detected on one UTC day (R7 daily report).
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
    let mut tx = ctx.store.begin_read().await?;
    let breaches = tx
        .breaches(&BreachFilter {
            from,
            to,
            limit: 100_000,
        })
        .await?;
    if wants_csv(query.format.as_deref(), &headers)? {
        let mut csv = String::from(
            "id,detected_at,subject,rule,check,limit,usage,amount_over,severity,cause,owner,resolved_at\r\n",
        );
        for b in &breaches {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                b.id,
                b.detected_at.to_rfc3339(),
                b.subject,
                b.rule,
                b.check,
                b.limit,
                b.usage,
                b.amount_over,
                b.severity.as_str(),
                csv_field(&b.cause),
                b.owner,
                b.resolved_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            ));
        }
        return Ok(csv_response(csv));
    }
    Ok(
        axum::Json(json!({ "date": date.to_string(), "items": to_json(&breaches) }))
            .into_response(),
    )
}

/// A CSV field, quoted when it could break the row (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

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
    let mut tx = ctx.store.begin_read().await?;
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let tier1 = tx.latest_capital().await?.map(|c| c.tier1);
    let lines = report(kind, &Aggregates::build(&exposures), tier1);
    if wants_csv(query.format.as_deref(), &headers)? {
        return Ok(csv_response(to_csv(&lines)));
    }
    Ok(axum::Json(json!({
        "report": kind,
        "as_of": now,
        "currency": creditops_risk::REPORTING_CURRENCY,
        "tier1": tier1.map(|t| t.to_string()),
        "items": to_json(&lines),
    }))
    .into_response())
}

/// Re-exported for the import module.
pub(crate) async fn watch_imported(
    ctx: &ServiceContext,
    tx: &mut dyn creditops_store::Tx,
    borrowers: &[BorrowerId],
    now: chrono::DateTime<Utc>,
) -> Result<Vec<Breach>, ApiError> {
    watch_borrowers(ctx, tx, borrowers, "core banking import", now).await
}
