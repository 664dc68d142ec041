//! Prometheus metrics of one service (`GET /metrics`, OpenMetrics text):
//! requests and latency per route and status, refusals per rule, and, read
//! at scrape time, database liveness, connection pool usage, the audit
//! sequencer's lag and (risk service) open limit breaches.
//!
//! Labels are bounded: routes are the router's templates (`/v1/cases/{id}`,
//! never a raw path), unmatched requests share one label, rules come from the
//! fixed rulebook.

use crate::ServiceContext;
use crate::health::audit_lag;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use creditops_domain::RuleId;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The route label of requests no route matched (a bounded label set even
/// under a scan of random paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The method as a metrics label: one of the standard methods (RFC 9110,
/// and PATCH) or `other`, so invented methods cannot grow the label set
/// (hardening finding 7).
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .into_iter()
        .find(|standard| *standard == method)
        .unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    rule: String,
    problem: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// The metrics of one service; cheap to update from many tasks.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    denials: Family<DenialLabels, Counter>,
    database_up: Gauge,
    audit_lag: Gauge<f64, AtomicU64>,
    pool: Family<PoolLabels, Gauge>,
    open_breaches: Gauge,
}

impl Metrics {
    pub fn new(service: &'static str) -> Self {
        let mut registry = Registry::with_labels(std::iter::once((
            Cow::Borrowed("service"),
            Cow::Borrowed(service),
        )));
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "creditops_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        // 0.5 ms .. ~4 s: a cached-token read is sub-millisecond, a vote
        // waiting on the risk lock may take a second.
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register(
            "creditops_http_request_duration_seconds",
            "Time from receiving a request to the response, by method, route template and status",
            latency.clone(),
        );
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register(
            "creditops_denials",
            "Refused requests (4xx, each audited), by the rule that refused them and the problem type",
            denials.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "creditops_database_up",
            "Whether the database answered at the last scrape (1) or not (0)",
            database_up.clone(),
        );
        let audit_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "creditops_audit_unsequenced_age_seconds",
            "Age of the oldest committed audit event not linked into the chain yet",
            audit_lag.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "creditops_db_pool_connections",
            "Database connections of this service's pool: in use, idle, and the maximum",
            pool.clone(),
        );
        let open_breaches = Gauge::default();
        if service == "risk" {
            registry.register(
                "creditops_risk_open_breaches",
                "Limit breaches (risk alerts) not resolved yet",
                open_breaches.clone(),
            );
        }
        Self {
            registry,
            requests,
            latency,
            denials,
            database_up,
            audit_lag,
            pool,
            open_breaches,
        }
    }

    /// Counts one answered request.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method_label(method).to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one refused request under the rule that refused it (or
    /// `none` for plain input errors) and its problem type.
    pub fn record_denial(&self, rule: Option<RuleId>, problem: &str) {
        self.denials
            .get_or_create(&DenialLabels {
                rule: rule.map_or("none", RuleId::as_str).to_owned(),
                problem: problem.to_owned(),
            })
            .inc();
    }
}

/// Prometheus metrics of this service.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "OpenMetrics text exposition (see crate::metrics for the series)", content_type = "application/openmetrics-text", body = String)),
)]
pub(crate) async fn metrics_route(State(ctx): State<Arc<ServiceContext>>) -> Response {
    render(&ctx).await
}

/// `GET /metrics`: reads the gauges that live in the database, then encodes.
pub async fn render(ctx: &ServiceContext) -> Response {
    let metrics = &ctx.metrics;
    match audit_lag(ctx).await {
        Ok(lag) => {
            metrics.database_up.set(1);
            metrics.audit_lag.set(lag.as_secs_f64());
        }
        Err(_) => {
            metrics.database_up.set(0);
        }
    }
    if let Some(usage) = ctx.store.pool_usage() {
        let in_use = usage.size.saturating_sub(usage.idle);
        metrics
            .pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(in_use));
        metrics
            .pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(usage.idle));
        metrics
            .pool
            .get_or_create(&PoolLabels { state: "max" })
            .set(i64::from(usage.max));
    }
    if ctx.service == "risk" {
        let open = creditops_commands::reports::open_breaches(&ctx.commands()).await;
        if let Ok(open) = open {
            metrics
                .open_breaches
                .set(i64::try_from(open.len()).unwrap_or(i64::MAX));
        }
    }
    let mut body = String::new();
    if encode(&mut body, &metrics.registry).is_err() {
        return crate::ApiError::new(
            crate::problem::ProblemKind::Internal,
            "the metrics could not be encoded",
        )
        .into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
