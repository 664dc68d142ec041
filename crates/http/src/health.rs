//! `GET /healthz` (the process runs), `GET /readyz` (it can serve: the
//! database answers and the audit sequencer keeps up) and `GET
//! /openapi.json`, outside authentication.

use crate::{ApiError, ServiceContext, problem::ProblemKind};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// Readiness fails while the oldest committed audit event waits longer than
/// this to be linked: the trail would not show what the service just did.
pub const AUDIT_LAG_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// Age of the oldest committed audit event not linked yet (zero if none).
pub async fn audit_lag(ctx: &ServiceContext) -> Result<std::time::Duration, ApiError> {
    let oldest =
        ctx.store.oldest_unsequenced_audit().await.map_err(|_| {
            ApiError::new(ProblemKind::Unavailable, "the database is not reachable")
        })?;
    Ok(oldest
        .and_then(|at| (chrono::Utc::now() - at).to_std().ok())
        .unwrap_or_default())
}

/// One documented operation of a service.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
}

pub fn health_routes(ctx: Arc<ServiceContext>, operations: &[Operation]) -> Router {
    let service = ctx.service;
    let document = Arc::new(openapi_document(service, operations));
    let ctx_for_metrics = ctx.clone();
    Router::new()
        .route(
            "/healthz",
            get(move || async move { Json(serde_json::json!({"status": "ok", "service": service})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let ctx = ctx.clone();
                async move {
                    ctx.store.ping().await.map_err(|_| {
                        ApiError::new(ProblemKind::Unavailable, "the database is not reachable")
                    })?;
                    let lag = audit_lag(&ctx).await?;
                    if lag > AUDIT_LAG_BOUND {
                        return Err(ApiError::new(
                            ProblemKind::Unavailable,
                            format!(
                                "the audit sequencer lags {} ms behind (bound {} ms)",
                                lag.as_millis(),
                                AUDIT_LAG_BOUND.as_millis()
                            ),
                        ));
                    }
                    Ok::<_, ApiError>(Json(serde_json::json!({
                        "status": "ready",
                        "service": service,
                        "audit_lag_ms": u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
                    })))
                }
            }),
        )
        .route("/metrics", {
            let ctx = ctx_for_metrics;
            get(move || {
                let ctx = ctx.clone();
                async move { crate::metrics::render(&ctx).await }
            })
        })
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json((*document).clone()) }
            }),
        )
}

/// An OpenAPI 3.1 document listing the service's operations, their bearer
/// security and the problem+json error shape.
fn openapi_document(service: &str, operations: &[Operation]) -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for op in operations {
        let entry = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| serde_json::json!({}));
        let parameters: Vec<serde_json::Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        entry[op.method.to_ascii_lowercase()] = serde_json::json!({
            "summary": op.summary,
            "security": [{"bearer": []}],
            "parameters": parameters,
            "responses": {
                "200": {"description": "success"},
                "4XX": {"description": "refused", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        });
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": format!("creditops {service} service"), "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Problem": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "rule": {"type": "string"}
                }
            }}
        }
    })
}
