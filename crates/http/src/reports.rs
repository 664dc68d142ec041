//! Reports as JSON or CSV: content negotiation (`?format=csv|json`, else
//! `Accept: text/csv`), the CSV response, and the entitlement report that
//! the admin and the audit service both serve (AT 4.3.1).

use crate::{ApiError, Principal, ServiceContext};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use creditops_commands::{audit_reads, proposals};
use creditops_domain::deviating::{DeviatingDecision, ReportVote, flag_name};
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

/// The period and format of the deviating-decisions report (L11).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviatingQuery {
    /// Decisions at or after: RFC 3339 or a date (`2026-01-01`, midnight
    /// UTC); default 90 days before `to`.
    pub from: Option<String>,
    /// Decisions before: RFC 3339 or a date; default now. At most 366 days
    /// after `from`.
    pub to: Option<String>,
    /// `json` or `csv`; without it, `Accept: text/csv` selects CSV.
    #[param(value_type = Option<ReportFormat>, inline)]
    pub format: Option<String>,
}

/// The deviating decisions of a period (L11).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviatingReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub items: Vec<DeviatingDecision>,
}

/// A bound of a period: RFC 3339, or a date meaning its midnight UTC.
fn period_bound(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "{name} must be an RFC 3339 time or a date like 2026-11-23"
            ))
        })
}

/// The period a query names, with the defaults: to = now, from = 90 days
/// before `to`.
pub fn deviating_period(
    query: &DeviatingQuery,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = match &query.to {
        Some(text) => period_bound("to", text)?,
        None => Utc::now(),
    };
    let from = match &query.from {
        Some(text) => period_bound("from", text)?,
        None => to - chrono::Duration::days(90),
    };
    Ok((from, to))
}

/// The deviating-decisions report as CSV, one row per decision with the
/// first and second vote of its last round; amounts as plain decimals.
pub fn deviating_report_csv(items: &[DeviatingDecision]) -> String {
    let mut csv = String::from(
        "case_id,decided_at,borrower_id,kind,amount,currency,outcome,level,level_name,flags,\
         rules_version,rounds,first_voter,first_decision,first_level,first_rationale,\
         second_voter,second_decision,second_level,second_rationale\r\n",
    );
    for item in items {
        let (first, second) = item.last_round();
        let vote = |v: Option<&ReportVote>| match v {
            Some(v) => format!(
                "{},{},{},{}",
                csv_field(v.voter.as_str()),
                v.decision.as_str(),
                v.level,
                csv_field(&v.rationale)
            ),
            None => ",,,".to_owned(),
        };
        let flags: Vec<&str> = item.flags.iter().map(|f| flag_name(*f)).collect();
        let rounds = item.votes.iter().map(|v| v.round + 1).max().unwrap_or(0);
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            item.case_id,
            item.decided_at.to_rfc3339(),
            item.borrower_id,
            item.kind.as_str(),
            item.amount,
            item.currency,
            item.outcome.as_str(),
            item.level,
            csv_field(&item.level_name),
            csv_field(&flags.join(";")),
            item.rules_version,
            rounds,
            vote(first),
            vote(second),
        ));
    }
    csv
}

/// The deviating-decisions report as JSON or CSV; with `audited` (the
/// audit service) the read is audited (A7).
pub async fn deviating_report(
    ctx: &ServiceContext,
    principal: &Principal,
    headers: &HeaderMap,
    query: &DeviatingQuery,
    audited: bool,
) -> Result<Response, ApiError> {
    let csv = wants_csv(query.format.as_deref(), headers)?;
    let (from, to) = deviating_period(query)?;
    let commands = ctx.commands();
    let items = if audited {
        audit_reads::deviating_decisions(&commands, principal, from, to).await?
    } else {
        creditops_commands::reports::deviating_decisions(&commands, from, to).await?
    };
    if csv {
        return Ok(csv_response(deviating_report_csv(&items)));
    }
    Ok(axum::Json(DeviatingReport { from, to, items }).into_response())
}
