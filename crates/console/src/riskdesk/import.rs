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
use chrono::Utc;
use creditops_commands::balance_rows::{self, Format, Refused};
use creditops_commands::positions;
use creditops_http::{CommandOutcome, IdempotencyKey, Principal, run_command};
use creditops_risk::ImportedBalance;
use rust_decimal::Decimal;
use serde::Deserialize;

/// A bad row as the page lists it: its number (0 for the CSV header), the
/// field, the problem in the API's words.
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

/// The balances of `body`, each with its row number, or every bad row,
/// read by the same code as the API's import.
fn checked(format: Format, body: &[u8]) -> Result<Vec<(usize, ImportedBalance)>, Vec<RowProblem>> {
    balance_rows::parse(format, body, Utc::now()).map_err(|refused| match refused {
        Refused::TooManyRows => vec![problem(
            0,
            None,
            format!("at most {} rows per import", balance_rows::MAX_ROWS),
        )],
        Refused::NoRows => vec![problem(0, None, "the import holds no rows")],
        Refused::Rows(rows) => rows
            .into_iter()
            .map(|p| problem(p.row, p.field.as_deref(), p.detail))
            .collect(),
    })
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
