//! Reports as JSON or CSV: content negotiation (`?format=csv|json`, else
//! `Accept: text/csv`), the CSV response, and the entitlement report that
//! the admin and the audit service both serve (AT 4.3.1).

use crate::{ApiError, Principal, ServiceContext};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use creditops_commands::proposals;
use creditops_domain::entitlement::{Entitlement, to_csv};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Whether the client asked for CSV: `format` decides, else the `Accept`
/// header; JSON by default.
pub fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
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

/// A CSV body with its content type.
pub fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// A CSV field, quoted when it could break the row (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The format of a report.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the accepted values of a query parameter
pub enum ReportFormat {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` or `csv`; without it, `Accept: text/csv` selects CSV.
    #[param(value_type = Option<ReportFormat>, inline)]
    pub format: Option<String>,
}

/// Who holds which role and competence level, since when, granted by whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementReport {
    pub as_of: DateTime<Utc>,
    pub items: Vec<Entitlement>,
}

/// The entitlement report for the periodic review, as JSON or CSV; the
/// read is audited.
pub async fn entitlement_report(
    ctx: &ServiceContext,
    principal: &Principal,
    headers: &HeaderMap,
    query: &FormatQuery,
) -> Result<Response, ApiError> {
    let csv = wants_csv(query.format.as_deref(), headers)?;
    let as_of = Utc::now();
    let items = proposals::entitlements(&ctx.commands(), principal).await?;
    if csv {
        return Ok(csv_response(to_csv(&items)));
    }
    Ok(axum::Json(EntitlementReport { as_of, items }).into_response())
}

/// The daily breach report (R7) as CSV, one line per breach: what
/// `GET /v1/reports/breaches?format=csv` answers and the risk desk
/// downloads.
pub fn breach_report_csv(breaches: &[creditops_risk::Breach]) -> String {
    let mut csv = String::from(
        "id,detected_at,subject,rule,check,limit,usage,amount_over,severity,cause,owner,resolved_at\r\n",
    );
    for b in breaches {
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
    csv
}
