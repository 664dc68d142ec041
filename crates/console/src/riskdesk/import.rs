//! The import of outstanding balances from core banking (R2) on the risk
//! desk: the file's text pasted into a form, read and checked row by row
//! under the API's rules (`POST /v1/exposures/import`: JSON lines or CSV
//! with `source_id,borrower_id,amount,as_of`, all or nothing), every bad
//! row shown with its number, field and problem; then the API's command.

use super::{Texts, money, texts};
use crate::Console;
use crate::casework::{audit_command_refusal, form_access, page_access};
use crate::i18n::Lang;
use crate::pages::{Frame, html, lang_of, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use creditops_commands::positions;
use creditops_domain::BorrowerId;
use creditops_http::{CommandOutcome, IdempotencyKey, Principal, run_command};
use creditops_risk::ImportedBalance;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashSet;

/// Rows per import, as the API bounds them.
const MAX_ROWS: usize = 100_000;
/// Largest amount accepted, in major units (as the API accepts).
const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonLines,
    Csv,
}

/// One balance as sent, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    source_id: String,
    borrower_id: String,
    amount: String,
    as_of: String,
}

/// A bad row: its number (0 for the CSV header), the field, the problem.
pub(crate) struct RowProblem {
    row: usize,
    field: String,
    detail: String,
}

fn problem(row: usize, field: Option<&str>, detail: impl Into<String>) -> RowProblem {
    RowProblem {
        row,
        field: field.unwrap_or_default().to_owned(),
        detail: detail.into(),
    }
}

/// The raw rows with their numbers (the line in JSON lines; the record
/// after the header in CSV), or the rows that could not be read.
fn read_rows(format: Format, body: &[u8]) -> (Vec<(usize, RawRow)>, Vec<RowProblem>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    match format {
        Format::JsonLines => {
            for (index, line) in body.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<RawRow>(line) {
                    Ok(row) => rows.push((index + 1, row)),
                    Err(e) => problems.push(problem(
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
                    problems.push(problem(
                        0,
                        None,
                        "the header must be exactly source_id,borrower_id,amount,as_of",
                    ));
                    return (rows, problems);
                }
            }
            for (index, record) in reader.deserialize::<RawRow>().enumerate() {
                match record {
                    Ok(row) => rows.push((index + 1, row)),
                    Err(e) => problems.push(problem(index + 1, None, format!("unreadable: {e}"))),
                }
            }
        }
    }
    (rows, problems)
}

/// A non-negative amount, at most 2 decimals: the API's words for its
/// problems.
fn parse_amount(field: &str, text: &str) -> Result<Decimal, String> {
    let plain = !text.is_empty()
        && text.len() <= 40
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    if !plain {
        return Err(format!(
            "{field} must be a non-negative decimal string such as \"1000000.00\", got {text:?}"
        ));
    }
    let value =
        Decimal::from_str_exact(text).map_err(|_| format!("{field} {text:?} is out of range"))?;
    if value.normalize().scale() > 2 {
        return Err(format!("{field} {text:?} has more than 2 decimal places"));
    }
    if value > Decimal::from(MAX_AMOUNT) {
        return Err(format!("{field} must not exceed {MAX_AMOUNT}"));
    }
    Ok(value.normalize())
}

fn validate(row: usize, raw: &RawRow, now: DateTime<Utc>) -> Result<ImportedBalance, RowProblem> {
    let source_ok = !raw.source_id.is_empty()
        && raw.source_id.len() <= 128
        && raw.source_id.bytes().all(|b| b.is_ascii_graphic());
    if !source_ok {
        return Err(problem(
            row,
            Some("source_id"),
            "must be 1-128 printable ASCII characters without spaces",
        ));
    }
    let borrower = raw
        .borrower_id
        .parse::<BorrowerId>()
        .map_err(|_| problem(row, Some("borrower_id"), "is not a borrower id"))?;
    let amount =
        parse_amount("amount", &raw.amount).map_err(|e| problem(row, Some("amount"), e))?;
    let as_of = DateTime::parse_from_rfc3339(&raw.as_of)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| problem(row, Some("as_of"), "must be an RFC 3339 timestamp"))?;
    if as_of > now + chrono::Duration::minutes(5) {
        return Err(problem(row, Some("as_of"), "lies in the future"));
    }
    Ok(ImportedBalance {
        source_id: raw.source_id.clone(),
        borrower,
        amount,
        as_of,
    })
}

/// The balances of `body`, each with its row number, or every bad row.
fn checked(format: Format, body: &[u8]) -> Result<Vec<(usize, ImportedBalance)>, Vec<RowProblem>> {
    let now = Utc::now();
    let (raw_rows, mut problems) = read_rows(format, body);
    if raw_rows.len() + problems.len() > MAX_ROWS {
        return Err(vec![problem(
            0,
            None,
            format!("at most {MAX_ROWS} rows per import"),
        )]);
    }
    let mut balances = Vec::with_capacity(raw_rows.len());
    let mut source_ids = HashSet::new();
    for (row, raw) in &raw_rows {
        match validate(*row, raw, now) {
            Ok(balance) if !source_ids.insert(balance.source_id.clone()) => problems.push(problem(
                *row,
                Some("source_id"),
                "appears twice in this import",
            )),
            Ok(balance) => balances.push((*row, balance)),
            Err(error) => problems.push(error),
        }
    }
    if balances.is_empty() && problems.is_empty() {
        return Err(vec![problem(0, None, "the import holds no rows")]);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.row);
        return Err(problems);
    }
    Ok(balances)
}

/// What an applied import did.
pub(crate) struct Done {
    rows: usize,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    breaches: Vec<String>,
}

#[derive(Template)]
#[template(path = "risk_import.html")]
struct ImportPage {
    f: Frame,
    t: &'static Texts,
    csv: bool,
    balances: String,
    problems: Vec<RowProblem>,
    refusal: Option<String>,
    done: Option<Done>,
}

#[derive(Deserialize, Default)]
pub(crate) struct ImportForm {
    csrf: Option<String>,
    #[serde(default)]
    format: String,
    #[serde(default)]
    balances: String,
}

#[allow(clippy::too_many_arguments)]
fn page(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    form: &ImportForm,
    problems: Vec<RowProblem>,
    refusal: Option<String>,
    done: Option<Done>,
) -> Response {
    html(
        status,
        &ImportPage {
            f: Frame::new(console, lang, Some(live)),
            t: texts(lang),
            csv: form.format != "jsonl",
            balances: if done.is_some() {
                String::new()
            } else {
                form.balances.clone()
            },
            problems,
            refusal,
            done,
        },
    )
}

pub(crate) async fn import_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/exposures/import", "POST"),
        "/console/import",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    page(
        &console,
        lang,
        &live,
        StatusCode::OK,
        &ImportForm::default(),
        Vec::new(),
        None,
        None,
    )
}

pub(crate) async fn import(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ImportForm>,
) -> Response {
    run_import(console, headers, form).await
}

/// The same import from an uploaded file (`multipart/form-data` with the
/// fields `csrf`, `format` and `file`), within the same size bound.
pub(crate) async fn import_file(
    State(console): State<Console>,
    headers: HeaderMap,
    mut upload: axum::extract::Multipart,
) -> Response {
    let lang = lang_of(&headers);
    let unreadable = |console: &Console| {
        crate::pages::message(
            console,
            lang,
            None,
            StatusCode::BAD_REQUEST,
            texts(lang).upload_unreadable,
            None,
        )
    };
    let mut form = ImportForm::default();
    let mut file = None;
    loop {
        match upload.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return unreadable(&console);
                };
                match name.as_str() {
                    "csrf" => form.csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
                    "format" => form.format = String::from_utf8_lossy(&bytes).into_owned(),
                    "file" => file = Some(bytes),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return unreadable(&console),
        }
    }
    // A file that is no text is refused like a row that cannot be read.
    form.balances = match file.map(|bytes| String::from_utf8(bytes.to_vec())) {
        Some(Ok(text)) => text,
        Some(Err(_)) | None => return unreadable(&console),
    };
    run_import(console, headers, form).await
}

async fn run_import(console: Console, headers: HeaderMap, form: ImportForm) -> Response {
    const ROUTE: &str = "/console/import";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/exposures/import", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let format = if form.format == "jsonl" {
        Format::JsonLines
    } else {
        Format::Csv
    };
    // A browser sends a textarea's line breaks as CRLF; both formats read them.
    let body = form.balances.as_bytes().to_vec();
    let balances = match checked(format, &body) {
        Ok(balances) => balances,
        Err(problems) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return page(&console, lang, &live, status, &form, problems, None, None);
        }
    };
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &body));
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/exposures/import",
        &[],
        move |tx| {
            Box::pin(async move {
                let done =
                    positions::import_balances(&commands, tx, &actor, &balances, &digest).await?;
                CommandOutcome::view(
                    StatusCode::OK,
                    &serde_json::json!({
                        "rows": done.rows,
                        "inserted": done.inserted,
                        "updated": done.updated,
                        "unchanged": done.unchanged,
                        "breaches": done.breaches,
                    }),
                )
            })
        },
    )
    .await;
    match answer {
        Ok(response) => {
            let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let count = |name: &str| value[name].as_u64().unwrap_or_default();
            let breaches = value["breaches"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|b| {
                            let over = b["amount_over"]
                                .as_str()
                                .and_then(|a| Decimal::from_str_exact(a).ok())
                                .map(|a| money(lang, a))
                                .unwrap_or_default();
                            format!(
                                "{} ({}): {}",
                                b["subject"].as_str().unwrap_or_default(),
                                b["rule"].as_str().unwrap_or_default(),
                                over
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let done = Done {
                rows: usize::try_from(count("rows")).unwrap_or_default(),
                inserted: count("inserted"),
                updated: count("updated"),
                unchanged: count("unchanged"),
                breaches,
            };
            page(
                &console,
                lang,
                &live,
                StatusCode::OK,
                &form,
                Vec::new(),
                None,
                Some(done),
            )
        }
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            if e.status().is_server_error() {
                return unavailable(&console, lang, &e.detail);
            }
            let problems: Vec<RowProblem> = e
                .errors
                .iter()
                .map(|p| problem(p.row.unwrap_or_default(), p.field.as_deref(), &p.detail))
                .collect();
            let refusal = problems.is_empty().then(|| super::refusal_text(lang, &e));
            page(
                &console,
                lang,
                &live,
                e.status(),
                &form,
                problems,
                refusal,
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_as_the_api_checks_them() {
        let id = "0192a0c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
        let csv = format!(
            "source_id,borrower_id,amount,as_of\r\nl-1,{id},100.00,2026-01-01T00:00:00Z\r\nl-2,nobody,1,2026-01-01T00:00:00Z\r\nl-3,{id},1.001,2026-01-01T00:00:00Z\r\nl-1,{id},5,2026-01-01T00:00:00Z\r\n"
        );
        let Err(problems) = checked(Format::Csv, csv.as_bytes()) else {
            panic!("bad rows pass");
        };
        let seen: Vec<(usize, &str)> = problems.iter().map(|p| (p.row, p.field.as_str())).collect();
        assert_eq!(seen, [(2, "borrower_id"), (3, "amount"), (4, "source_id")]);
        let good = format!(
            "{{\"source_id\":\"l-1\",\"borrower_id\":\"{id}\",\"amount\":\"5\",\"as_of\":\"2026-01-01T00:00:00Z\"}}\r\n\r\n"
        );
        assert_eq!(
            checked(Format::JsonLines, good.as_bytes())
                .map(|b| b.len())
                .ok(),
            Some(1)
        );
        assert!(checked(Format::Csv, b"a,b\r\n").is_err());
        assert!(checked(Format::JsonLines, b"\r\n").is_err());
    }
}
