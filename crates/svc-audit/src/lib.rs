//! The audit service (internal audit): read-only access to the audit trail,
//! filtered and paged, and a full recomputation of the hash chain. The
//! auditors' own queries are audited too (A7).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use creditops_audit::ChainVerifier;
use creditops_domain::{BorrowerId, CaseId};
use creditops_http::{
    ApiError, Operation, Principal, Query, ServiceContext, health_routes, secure,
};
use creditops_store::{AuditFilter, StoredAuditEvent, Tx};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub const SERVICE: &str = "audit";

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        path: "/v1/events",
        summary: "Audit events filtered by case, borrower, actor, action, outcome and time, cursor-paged",
    },
    Operation {
        method: "POST",
        path: "/v1/verify",
        summary: "Recompute the whole hash chain; names the first bad position",
    },
];

const MAX_PAGE: u32 = 1000;
const VERIFY_BATCH: u32 = 5000;

/// Everything a service needs to verify its chain: the log's origin line.
pub struct AuditSettings {
    pub origin: String,
}

pub fn router(ctx: Arc<ServiceContext>, settings: AuditSettings) -> Router {
    let state = (ctx.clone(), Arc::new(settings));
    let business = Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/verify", post(verify))
        .with_state(state);
    secure(business, ctx.clone()).merge(health_routes(ctx, OPERATIONS))
}

type AppState = (Arc<ServiceContext>, Arc<AuditSettings>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    case_id: Option<String>,
    borrower_id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::validation(format!("{name} must be an RFC 3339 timestamp")))
        })
        .transpose()
}

fn bounded(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > 128 => Err(ApiError::validation(format!(
            "{name} must be 1-128 characters"
        ))),
        other => Ok(other),
    }
}

impl EventQuery {
    fn into_filter(self) -> Result<AuditFilter, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::validation(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        if let Some(outcome) = &self.outcome
            && !matches!(outcome.as_str(), "ok" | "denied")
        {
            return Err(ApiError::validation("outcome must be \"ok\" or \"denied\""));
        }
        Ok(AuditFilter {
            case_id: self
                .case_id
                .as_deref()
                .map(str::parse::<CaseId>)
                .transpose()
                .map_err(|_| ApiError::validation("case_id must be a case id"))?,
            borrower_id: self
                .borrower_id
                .as_deref()
                .map(str::parse::<BorrowerId>)
                .transpose()
                .map_err(|_| ApiError::validation("borrower_id must be a borrower id"))?,
            actor: bounded("actor", self.actor)?,
            action: bounded("action", self.action)?,
            outcome: self.outcome,
            from: parse_time("from", self.from.as_deref())?,
            to: parse_time("to", self.to.as_deref())?,
            after_seq: self.after,
            limit,
        })
    }
}

fn event_json(e: &StoredAuditEvent) -> Value {
    // The body is returned as stored (its exact bytes are what the chain hashes).
    let body: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
    json!({
        "seq": e.seq,
        "event_id": e.event_id,
        "recorded_at": e.recorded_at,
        "body": body,
        "body_text": String::from_utf8_lossy(&e.body),
        "leaf_hash": hex_string(&e.leaf_hash),
        "chain_hash": hex_string(&e.chain_hash),
    })
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn list_events(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = q.into_filter()?;
    let mut tx = ctx.store.begin().await?;
    let events = tx.audit_events(&filter).await?;
    let mut record = principal.record(&ctx, "audit.query");
    record.data = json!({
        "case_id": filter.case_id.map(|c| c.to_string()),
        "borrower_id": filter.borrower_id.map(|b| b.to_string()),
        "actor": filter.actor,
        "action": filter.action,
        "outcome": filter.outcome,
        "after": filter.after_seq,
        "limit": filter.limit,
        "returned": events.len(),
    });
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    let next = (events.len() == filter.limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({
        "items": events.iter().map(event_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

async fn verify(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let result = {
        let mut tx = ctx.store.begin_read().await?;
        verify_chain(tx.as_mut(), &settings.origin).await?
    };
    let mut tx = ctx.store.begin().await?;
    let mut record = principal.record(&ctx, "audit.verify");
    record.data = result.clone();
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(Json(result))
}

/// Recomputes the chain over every stored event, in batches.
pub async fn verify_chain(tx: &mut dyn Tx, origin: &str) -> Result<Value, ApiError> {
    let mut verifier = ChainVerifier::new(origin, 1);
    let mut after = None;
    loop {
        let filter = AuditFilter {
            after_seq: after,
            limit: VERIFY_BATCH,
            ..AuditFilter::default()
        };
        let batch = tx.audit_events(&filter).await?;
        for e in &batch {
            if let Err(failure) = verifier.push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash) {
                return Ok(json!({
                    "ok": false,
                    "first_bad_seq": failure.seq,
                    "reason": failure.reason,
                }));
            }
        }
        match batch.last() {
            Some(last) if batch.len() == VERIFY_BATCH as usize => after = Some(last.seq),
            _ => break,
        }
    }
    let report = verifier.finish();
    Ok(
        json!({"ok": true, "events": report.events, "last_seq": report.last_seq, "head": report.head}),
    )
}
