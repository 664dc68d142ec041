//! Import of outstanding balances from the core banking system (R2): JSON
//! lines or CSV, idempotent by the source record id, all or nothing. Every
//! bad row is reported with its row number; then nothing is applied.

use crate::input::parse_amount;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use creditops_commands::positions;
use creditops_domain::BorrowerId;
use creditops_http::{
    ApiError, CommandOutcome, FieldError, IdempotencyKey, Principal, ProblemKind, ServiceContext,
    run_command,
};
use creditops_risk::{Breach, ImportedBalance};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use utoipa::ToSchema;

/// Rows per import; larger files are split by the sender.
const MAX_ROWS: usize = 100_000;

/// One balance as sent (a JSON line, or a CSV record under the header
/// `source_id,borrower_id,amount,as_of`), before validation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportRow)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonLines,
    Csv,
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

fn row_error(row: usize, field: Option<&str>, detail: impl Into<String>) -> FieldError {
    FieldError {
        row: Some(row),
        field: field.map(str::to_owned),
        detail: detail.into(),
    }
}

/// The raw rows with their row numbers (the line in JSON lines; the record
/// number after the header in CSV), or the rows that could not be read.
fn read_rows(format: Format, body: &[u8]) -> (Vec<(usize, RawRow)>, Vec<FieldError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    match format {
        Format::JsonLines => {
            for (index, line) in body.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<RawRow>(line) {
                    Ok(row) => rows.push((index + 1, row)),
                    Err(e) => errors.push(row_error(
                        index + 1,
                        None,
                        format!("not a balance object: {e}"),
                    )),
                }
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .trim(csv::Trim::None)
                .from_reader(body);
            let expected = ["source_id", "borrower_id", "amount", "as_of"];
            match reader.headers() {
                Ok(found) if found.iter().eq(expected) => {}
                _ => {
                    errors.push(row_error(
                        0,
                        None,
                        "the header must be exactly source_id,borrower_id,amount,as_of",
                    ));
                    return (rows, errors);
                }
            }
            for (index, record) in reader.deserialize::<RawRow>().enumerate() {
                match record {
                    Ok(row) => rows.push((index + 1, row)),
                    Err(e) => errors.push(row_error(index + 1, None, format!("unreadable: {e}"))),
                }
            }
        }
    }
    (rows, errors)
}

fn validate(row: usize, raw: &RawRow, now: DateTime<Utc>) -> Result<ImportedBalance, FieldError> {
    let source_ok = !raw.source_id.is_empty()
        && raw.source_id.len() <= 128
        && raw.source_id.bytes().all(|b| b.is_ascii_graphic());
    if !source_ok {
        return Err(row_error(
            row,
            Some("source_id"),
            "must be 1-128 printable ASCII characters without spaces",
        ));
    }
    let borrower = raw
        .borrower_id
        .parse::<BorrowerId>()
        .map_err(|_| row_error(row, Some("borrower_id"), "is not a borrower id"))?;
    let amount = parse_amount("amount", &raw.amount)
        .map_err(|e| row_error(row, Some("amount"), e.detail))?;
    let as_of = DateTime::parse_from_rfc3339(&raw.as_of)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| row_error(row, Some("as_of"), "must be an RFC 3339 timestamp"))?;
    if as_of > now + chrono::Duration::minutes(5) {
        return Err(row_error(row, Some("as_of"), "lies in the future"));
    }
    Ok(ImportedBalance {
        source_id: raw.source_id.clone(),
        borrower,
        amount,
        as_of,
    })
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
    let now = Utc::now();
    let (raw_rows, mut errors) = read_rows(format, &body);
    if raw_rows.len() + errors.len() > MAX_ROWS {
        return Err(ApiError::validation(format!(
            "at most {MAX_ROWS} rows per import"
        )));
    }
    let mut balances = Vec::with_capacity(raw_rows.len());
    let mut source_ids = HashSet::new();
    for (row, raw) in &raw_rows {
        match validate(*row, raw, now) {
            Ok(balance) if !source_ids.insert(balance.source_id.clone()) => errors.push(row_error(
                *row,
                Some("source_id"),
                "appears twice in this import",
            )),
            Ok(balance) => balances.push((*row, balance)),
            Err(error) => errors.push(error),
        }
    }
    if balances.is_empty() && errors.is_empty() {
        return Err(ApiError::validation("the import holds no rows"));
    }
    if !errors.is_empty() {
        return Err(rejected(errors));
    }
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

fn rejected(mut errors: Vec<FieldError>) -> ApiError {
    errors.sort_by_key(|e| e.row);
    ApiError::validation(format!(
        "{} row(s) of the import are invalid; nothing was imported",
        errors.len()
    ))
    .with_errors(errors)
}
