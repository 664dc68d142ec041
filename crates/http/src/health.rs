//! `GET /healthz` (the process runs) and `GET /readyz` (it can serve: the
//! database answers and the audit sequencer keeps up), outside
//! authentication (the router is in [`crate::openapi`]). `GET /metrics` is
//! in [`crate::metrics`], which reads the audit lag measured here.

use crate::{ApiError, ServiceContext, problem::ProblemKind};
use axum::Json;
use axum::extract::State;
use creditops_store::StoreExt;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

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

/// The process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process runs", body = Health)),
)]
pub(crate) async fn healthz(State(ctx): State<Arc<ServiceContext>>) -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        service: ctx.service.to_owned(),
    })
}

/// What `GET /healthz` answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: String,
    service: String,
}

/// What `GET /readyz` answers while the service can serve.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Always `ready`.
    status: String,
    service: String,
    /// Age of the oldest committed audit event not linked into the chain yet.
    audit_lag_ms: u64,
}

/// The service can serve: the database answers and the audit sequencer
/// keeps up.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers and the audit sequencer keeps up", body = Readiness),
        (status = 503, description = "The database is unreachable or the audit sequencer lags more than 5 s"),
    ),
)]
pub(crate) async fn readyz(
    State(ctx): State<Arc<ServiceContext>>,
) -> Result<Json<Readiness>, ApiError> {
    ctx.store
        .ping()
        .await
        .map_err(|_| ApiError::new(ProblemKind::Unavailable, "the database is not reachable"))?;
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
    Ok(Json(Readiness {
        status: "ready".to_owned(),
        service: ctx.service.to_owned(),
        audit_lag_ms: u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
    }))
}
