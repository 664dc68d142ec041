//! Import of outstanding balances from the core banking system (R2): JSON
//! lines or CSV, idempotent by the source record id, all or nothing. Every
//! bad row is reported with its row number; then nothing is applied.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use creditops_commands::balance_rows::{self, Format, Refused, RowProblem};
use creditops_commands::positions;
use creditops_http::{
    ApiError, CommandOutcome, FieldError, IdempotencyKey, Principal, ProblemKind, ServiceContext,
    run_command,
};
use creditops_risk::Breach;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

// The schema of the OpenAPI document only: the rows themselves are read by
// `creditops_commands::balance_rows`, as the console reads them.
/// One balance as sent (a JSON line, or a CSV record under the header
/// `source_id,borrower_id,amount,as_of`), before validation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportRow)]
#[allow(dead_code)]
struct RawRow {
    /// The core banking record id: importing it again updates the balance.
    #[schema(example = "cb-1")]
    source_id: String,
    #[schema(format = Uuid)]
    borrower_id: String,
    /// Outstanding amount in EUR, decimal string.
    #[schema(example = "1000.00")]
    amount: String,
    /// RFC 3339 time of the balance; not in the future.
    #[schema(format = DateTime)]
    as_of: String,
}

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Ok(Format::JsonLines)
        }
        "text/csv" => Ok(Format::Csv),
        _ => Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send balances as JSON lines (content-type application/x-ndjson) or CSV \
             (content-type text/csv with the header source_id,borrower_id,amount,as_of)",
        )),
    }
}

/// What an import answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportResult {
    rows: usize,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    /// Limit breaches the new balances caused (R7).
    breaches: Vec<Breach>,
}

/// Imports outstanding balances from core banking (R2): JSON lines or CSV
/// with `source_id, borrower_id, amount, as_of`, idempotent by `source_id`,
/// all or nothing (every bad row is named in `errors`).
#[utoipa::path(
    post,
    path = "/v1/exposures/import",
    tag = "exposures",
    params(IdempotencyKey),
    request_body(
        description = "The balances, one per line: JSON lines, or CSV with a header line",
        content(
            (Vec<RawRow> = "application/x-ndjson"),
            (Vec<RawRow> = "text/csv"),
        ),
    ),
    responses(
        (status = 200, description = "Every row is applied", body = ImportResult),
        (status = 409, description = "A concurrent request won"),
    ),
)]
pub async fn import_balances(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let format = format_of(&headers)?;
    let body = body.map_err(|e| creditops_http::body_rejection(&e))?;
    let balances = match balance_rows::parse(format, &body, Utc::now()) {
        Ok(balances) => balances,
        Err(Refused::TooManyRows) => {
            return Err(ApiError::validation(format!(
                "at most {} rows per import",
                balance_rows::MAX_ROWS
            )));
        }
        Err(Refused::NoRows) => return Err(ApiError::validation("the import holds no rows")),
        Err(Refused::Rows(problems)) => return Err(rejected(problems)),
    };
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &body));
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/exposures/import",
        &body,
        move |tx| {
            Box::pin(async move {
                let done =
                    positions::import_balances(&commands, tx, &actor, &balances, &digest).await?;
                CommandOutcome::view(
                    StatusCode::OK,
                    &ImportResult {
                        rows: done.rows,
                        inserted: done.inserted,
                        updated: done.updated,
                        unchanged: done.unchanged,
                        breaches: done.breaches,
                    },
                )
            })
        },
    )
    .await
}

fn rejected(problems: Vec<RowProblem>) -> ApiError {
    let errors: Vec<FieldError> = problems
        .into_iter()
        .map(|p| FieldError {
            row: Some(p.row),
            field: p.field,
            detail: p.detail,
        })
        .collect();
    ApiError::validation(format!(
        "{} row(s) of the import are invalid; nothing was imported",
        errors.len()
    ))
    .with_errors(errors)
}
