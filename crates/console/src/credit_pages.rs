//! The credit file and the collateral on the desks' case pages (L2, L3):
//! the documents of the case and its borrower, uploaded from the case page
//! (market to its case, back office to the borrower); the borrower's
//! collateral with values after haircuts, registered and valued as
//! proposals by market, valued and checked for legal validity by back
//! office.

use crate::Console;
use crate::casework::{form_access, not_found, permitted, refusal_page};
use crate::i18n::Lang;
use crate::pages::{lang_of, message};
use crate::session::LiveSession;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use creditops_commands::collateral::{self, NewCollateral, NewValuation};
use creditops_commands::credit_file::{self, DocumentOwner, NewDocument};
use creditops_domain::collateral::{CollateralKind, LegalResult, ValuationRequest};
use creditops_domain::credit_file::MediaType;
use creditops_domain::{BorrowerId, CaseId, CollateralId, CreditCase, Money};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Principal, ProblemKind, run_command,
};
use serde::Deserialize;

pub(crate) struct Texts {
    pub documents: &'static str,
    pub no_documents: &'static str,
    pub of_case: &'static str,
    pub of_borrower: &'static str,
    pub doc_type: &'static str,
    pub file: &'static str,
    pub upload: &'static str,
    pub upload_intro: &'static str,
    pub collateral: &'static str,
    pub no_collateral: &'static str,
    pub secured: &'static str,
    pub nominal: &'static str,
    pub value: &'static str,
    pub haircut: &'static str,
    pub after_haircut: &'static str,
    pub legal: &'static str,
    pub revaluation: &'static str,
    pub due_now: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
    pub register: &'static str,
    pub valuation_date: &'static str,
    pub valuer: &'static str,
    pub method: &'static str,
    pub propose_value: &'static str,
    pub record_value: &'static str,
    pub valid: &'static str,
    pub invalid: &'static str,
    pub note: &'static str,
    pub check_legal: &'static str,
    pub proposed: &'static str,
    pub done: &'static str,
    pub due_heading: &'static str,
    pub due_intro: &'static str,
    pub none_due: &'static str,
    pub borrower: &'static str,
}

const DE: Texts = Texts {
    documents: "Kreditakte (Dokumente)",
    no_documents: "Noch keine Dokumente.",
    of_case: "zum Fall",
    of_borrower: "zum Kreditnehmer",
    doc_type: "Dokumentart",
    file: "Datei (PDF, PNG, JPEG, CSV oder Text)",
    upload: "Dokument hinzufügen",
    upload_intro: "Ein neues Dokument ändert die Kreditakte: bereits abgegebene Voten gelten nicht mehr (V3, L2).",
    collateral: "Sicherheiten",
    no_collateral: "Keine Sicherheiten erfasst.",
    secured: "Besichert (nach Abschlägen)",
    nominal: "Nominal",
    value: "Wert",
    haircut: "Abschlag",
    after_haircut: "nach Abschlag",
    legal: "Rechtsbestand",
    revaluation: "nächste Bewertung",
    due_now: "fällig",
    kind: "Art",
    description: "Beschreibung",
    register: "Sicherheit erfassen",
    valuation_date: "Bewertungsstichtag (JJJJ-MM-TT)",
    valuer: "Gutachter",
    method: "Verfahren",
    propose_value: "Wert vorschlagen",
    record_value: "Wert festsetzen",
    valid: "rechtswirksam",
    invalid: "nicht rechtswirksam",
    note: "Vermerk",
    check_legal: "Rechtsbestand prüfen",
    proposed: "vorgeschlagen",
    done: "Gespeichert.",
    due_heading: "Neubewertungen",
    due_intro: "Sicherheiten, deren (Neu-)Bewertung fällig ist: nie wirksam bewertet oder länger her als der Turnus ihrer Art (L3). Die längsten Rückstände zuerst.",
    none_due: "Keine Bewertung fällig.",
    borrower: "Kreditnehmer",
};

const EN: Texts = Texts {
    documents: "Credit file (documents)",
    no_documents: "No documents yet.",
    of_case: "of the case",
    of_borrower: "of the borrower",
    doc_type: "Document type",
    file: "File (PDF, PNG, JPEG, CSV or text)",
    upload: "Add the document",
    upload_intro: "A new document changes the credit file: votes cast so far no longer count (V3, L2).",
    collateral: "Collateral",
    no_collateral: "No collateral registered.",
    secured: "Secured (after haircuts)",
    nominal: "Nominal",
    value: "Value",
    haircut: "Haircut",
    after_haircut: "after haircut",
    legal: "Legal validity",
    revaluation: "next valuation",
    due_now: "due",
    kind: "Kind",
    description: "Description",
    register: "Register collateral",
    valuation_date: "Valuation date (YYYY-MM-DD)",
    valuer: "Valuer",
    method: "Method",
    propose_value: "Propose the value",
    record_value: "Record the value",
    valid: "valid",
    invalid: "not valid",
    note: "Note",
    check_legal: "Check legal validity",
    proposed: "proposed",
    done: "Saved.",
    due_heading: "Revaluations",
    due_intro: "Collateral whose (re)valuation is due: never validly valued, or valued longer ago than its kind's interval (L3). The longest overdue first.",
    none_due: "No valuation is due.",
    borrower: "Borrower",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

pub(crate) struct DocumentLine {
    pub id: String,
    pub doc_type: String,
    pub owner: &'static str,
    pub media: &'static str,
    pub size: String,
    pub sha256: String,
    pub added: String,
}

pub(crate) struct CollateralLine {
    pub id: String,
    pub kind: &'static str,
    pub description: String,
    pub nominal: String,
    pub value: Option<String>,
    pub proposed: Option<String>,
    pub haircut: String,
    pub after_haircut: String,
    pub legal: Option<String>,
    pub revaluation: Option<String>,
    pub due: bool,
}

/// The credit-file and collateral cards of a case page.
pub(crate) struct Cards {
    pub t: &'static Texts,
    pub case_id: String,
    pub borrower_id: String,
    pub documents: Vec<DocumentLine>,
    pub doc_types: Vec<(String, String)>,
    /// Where this desk uploads to, if it may: the case (market) or the
    /// borrower (back office).
    pub upload_to: Option<String>,
    pub collateral: Vec<CollateralLine>,
    pub secured: String,
    pub kinds: Vec<&'static str>,
    pub can_register: bool,
    /// Market proposes values; back office records them.
    pub can_propose: bool,
    pub can_value: bool,
    pub can_check: bool,
}

fn day(lang: Lang, date: chrono::NaiveDate) -> String {
    match lang {
        Lang::De => date.format("%d.%m.%Y").to_string(),
        Lang::En => date.format("%Y-%m-%d").to_string(),
    }
}

/// The cards of `case` for the session's person.
pub(crate) async fn cards(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    case: &CreditCase,
) -> Cards {
    let t = texts(lang);
    let commands = console.ctx.commands();
    let market = console.settings.desk.service == "market";
    let borrower = case.file.borrower_id;
    let case_docs = credit_file::case_documents(&commands, &live.actor, case.id, market)
        .await
        .unwrap_or_default();
    let borrower_docs = credit_file::borrower_documents(&commands, borrower)
        .await
        .unwrap_or_default();
    let documents = case_docs
        .iter()
        .map(|d| (d, t.of_case))
        .chain(borrower_docs.iter().map(|d| (d, t.of_borrower)))
        .filter(|(d, _)| d.superseded_by.is_none())
        .map(|(d, owner)| DocumentLine {
            id: d.id.to_string(),
            doc_type: d.doc_type.clone(),
            owner,
            media: d.media_type.as_str(),
            size: format!("{} kB", (d.size + 1023) / 1024),
            sha256: d.sha256.chars().take(16).collect(),
            added: format!("{} · {}", lang.date_time(d.added_at), d.added_by),
        })
        .collect();
    let rules = creditops_commands::granting::rule_parameters(&commands)
        .await
        .ok();
    let doc_types = rules
        .as_ref()
        .map(|p| {
            p.credit_file
                .document_types
                .iter()
                .map(|d| (d.code.clone(), d.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let open = !case.status.is_final();
    let upload_to = if market {
        (open && permitted(console, live, "/v1/cases/{id}/documents", "POST"))
            .then(|| format!("/console/cases/{}/documents", case.id))
    } else {
        permitted(console, live, "/v1/borrowers/{id}/documents", "POST")
            .then(|| format!("/console/borrowers/{borrower}/documents?case={}", case.id))
    };
    let (collateral, secured) = match collateral::borrower_collateral(&commands, borrower).await {
        Ok(held) => (
            held.items
                .iter()
                .map(|line| {
                    let item = &line.position.collateral;
                    CollateralLine {
                        id: item.id.to_string(),
                        kind: item.kind.as_str(),
                        description: item.description.clone(),
                        nominal: lang.money(item.nominal.amount(), item.nominal.currency_code()),
                        value: line.position.effective.as_ref().map(|v| {
                            format!(
                                "{} ({}, {})",
                                lang.money(v.value.amount(), v.value.currency_code()),
                                day(lang, v.valuation_date),
                                v.valuer
                            )
                        }),
                        proposed: line
                            .position
                            .proposed
                            .as_ref()
                            .map(|v| lang.money(v.value.amount(), v.value.currency_code())),
                        haircut: format!("{} %", line.haircut.normalize()),
                        after_haircut: lang.money(line.value_after_haircut, &held.currency),
                        legal: line.position.legal_check.as_ref().map(|c| {
                            format!(
                                "{} ({}, {})",
                                match c.result {
                                    LegalResult::Valid => t.valid,
                                    LegalResult::Invalid => t.invalid,
                                },
                                lang.date(c.checked_at),
                                c.checked_by
                            )
                        }),
                        revaluation: line.next_revaluation.map(|d| day(lang, d)),
                        due: line.revaluation_due,
                    }
                })
                .collect(),
            lang.money(held.secured_value, &held.currency),
        ),
        Err(_) => (Vec::new(), String::new()),
    };
    Cards {
        t,
        case_id: case.id.to_string(),
        borrower_id: borrower.to_string(),
        documents,
        doc_types,
        upload_to,
        collateral,
        secured,
        kinds: CollateralKind::ALL.iter().map(|k| k.as_str()).collect(),
        can_register: permitted(console, live, "/v1/borrowers/{id}/collateral", "POST"),
        can_propose: market && permitted(console, live, "/v1/collateral/{id}/valuations", "POST"),
        can_value: !market && permitted(console, live, "/v1/collateral/{id}/valuations", "POST"),
        can_check: permitted(console, live, "/v1/collateral/{id}/legal-check", "POST"),
    }
}

/// The fields of an upload: `csrf`, `type`, `file` (with its media type).
#[derive(Default)]
struct Upload {
    csrf: Option<String>,
    doc_type: String,
    media: Option<String>,
    bytes: Vec<u8>,
}

async fn read_upload(mut form: Multipart) -> Option<Upload> {
    let mut upload = Upload::default();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        // A browser names the type from the file's extension; where it
        // cannot (`application/octet-stream`), the extension is read here.
        let media = field
            .content_type()
            .filter(|t| !t.starts_with("application/octet-stream"))
            .map(str::to_owned)
            .or_else(|| field.file_name().and_then(media_of_name));
        let bytes = field.bytes().await.ok()?;
        match name.as_str() {
            "csrf" => upload.csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "type" => upload.doc_type = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => {
                upload.media = media;
                upload.bytes = bytes.to_vec();
            }
            _ => {}
        }
    }
    Some(upload)
}

/// The bound on an uploaded document's form: the API's document bound and
/// room for the form's other fields (L2).
pub(crate) fn upload_limit(console: &Console) -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(
        console.ctx.limits.document_bytes.saturating_add(64 * 1024),
    )
}

/// The media type a file name's extension stands for.
fn media_of_name(name: &str) -> Option<String> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    let media = match extension.as_str() {
        "pdf" => MediaType::Pdf,
        "png" => MediaType::Png,
        "jpg" | "jpeg" => MediaType::Jpeg,
        "csv" => MediaType::Csv,
        "txt" => MediaType::Text,
        _ => return None,
    };
    Some(media.as_str().to_owned())
}

/// Adds a document from a case page (L2): market to its case, back office
/// to the borrower (`?case=` names the page to return to).
async fn add_document(
    console: Console,
    headers: HeaderMap,
    owner: DocumentOwner,
    back_to: Option<CaseId>,
    form: Multipart,
) -> Response {
    let (api_route, route) = match owner {
        DocumentOwner::Case(_) => ("/v1/cases/{id}/documents", "/console/cases/{id}/documents"),
        DocumentOwner::Borrower(_) => (
            "/v1/borrowers/{id}/documents",
            "/console/borrowers/{id}/documents",
        ),
    };
    let lang = lang_of(&headers);
    let Some(upload) = read_upload(form).await else {
        return message(
            &console,
            lang,
            None,
            StatusCode::BAD_REQUEST,
            texts(lang).file,
            None,
        );
    };
    let (live, lang) = match form_access(
        &console,
        &headers,
        upload.csrf.as_deref(),
        (api_route, "POST"),
        route,
        back_to,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Some(back_to) = back_to else {
        return not_found(&console, lang, &live);
    };
    let media = upload
        .media
        .as_deref()
        .map(MediaType::from_content_type)
        .transpose()
        .map_err(|e| ApiError::new(ProblemKind::UnsupportedMediaType, e.to_string()))
        .and_then(|media| media.ok_or_else(|| ApiError::validation("choose a file to upload")))
        .and_then(|media| {
            media
                .check(&upload.bytes)
                .map(|()| media)
                .map_err(|e| ApiError::new(ProblemKind::UnsupportedMediaType, e.to_string()))
        });
    let media = match media {
        Ok(media) => media,
        Err(e) => return refusal_page(&console, lang, &live, route, &e, Some(back_to)).await,
    };
    let input = NewDocument {
        owner,
        doc_type: upload.doc_type.trim().to_owned(),
        media_type: media,
        content: upload.bytes,
        replaces: None,
    };
    let digest = creditops_domain::credit_file::sha256_hex(&input.content);
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let fingerprint = serde_json::to_vec(&(route, &input.doc_type, &digest)).unwrap_or_default();
    let operation = format!("POST {api_route}");
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        &operation,
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let stored = credit_file::add_document(&commands, tx, &actor, input).await?;
                CommandOutcome::view(StatusCode::CREATED, &stored)
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{back_to}?done=saved")).into_response(),
        Err(e) => refusal_page(&console, lang, &live, route, &e, Some(back_to)).await,
    }
}

pub(crate) async fn case_document(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Multipart,
) -> Response {
    let case = id.parse::<CaseId>().ok();
    match case {
        Some(case) => {
            add_document(
                console,
                headers,
                DocumentOwner::Case(case),
                Some(case),
                form,
            )
            .await
        }
        None => {
            let lang = lang_of(&headers);
            message(
                &console,
                lang,
                None,
                StatusCode::NOT_FOUND,
                lang.messages().not_found,
                None,
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct BackTo {
    case: Option<String>,
}

pub(crate) async fn borrower_document(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(back): axum::extract::Query<BackTo>,
    form: Multipart,
) -> Response {
    let back_to = back.case.and_then(|c| c.parse::<CaseId>().ok());
    match id.parse::<BorrowerId>() {
        Ok(borrower) => {
            add_document(
                console,
                headers,
                DocumentOwner::Borrower(borrower),
                back_to,
                form,
            )
            .await
        }
        Err(_) => {
            let lang = lang_of(&headers);
            message(
                &console,
                lang,
                None,
                StatusCode::NOT_FOUND,
                lang.messages().not_found,
                None,
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CollateralForm {
    csrf: Option<String>,
    #[serde(default)]
    case: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    nominal: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    valuation_date: String,
    #[serde(default)]
    valuer: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    note: String,
}

fn money(lang: Lang, typed: &str) -> Result<Money, ApiError> {
    let plain = lang
        .plain_number(typed)
        .ok_or_else(|| ApiError::validation("enter the amount as a number, e.g. 250,000.00"))?;
    Money::parse(&plain, "EUR").map_err(|e| ApiError::validation(e.0))
}

fn valuation(lang: Lang, form: &CollateralForm) -> Result<NewValuation, ApiError> {
    Ok(NewValuation {
        value: money(lang, &form.value)?,
        valuation_date: form
            .valuation_date
            .trim()
            .parse()
            .map_err(|_| ApiError::validation("the valuation date is a date like 2026-12-01"))?,
        valuer: form.valuer.clone(),
        method: form.method.clone(),
    })
}

/// What a collateral form does.
enum CollateralAction {
    Register(BorrowerId),
    Value(CollateralId, ValuationRequest),
    Legal(CollateralId),
}

async fn collateral_form(
    console: Console,
    headers: HeaderMap,
    action: CollateralAction,
    form: CollateralForm,
) -> Response {
    let (api_route, route) = match action {
        CollateralAction::Register(_) => (
            "/v1/borrowers/{id}/collateral",
            "/console/borrowers/{id}/collateral",
        ),
        CollateralAction::Value(..) => (
            "/v1/collateral/{id}/valuations",
            "/console/collateral/{id}/valuations",
        ),
        CollateralAction::Legal(_) => (
            "/v1/collateral/{id}/legal-check",
            "/console/collateral/{id}/legal-check",
        ),
    };
    let back_to = form.case.parse::<CaseId>().ok();
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        (api_route, "POST"),
        route,
        back_to,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Some(back_to) = back_to else {
        return not_found(&console, lang, &live);
    };
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let operation = format!("POST {api_route}");
    let answer = match action {
        CollateralAction::Register(borrower) => {
            let kind = match form.kind.parse::<CollateralKind>() {
                Ok(kind) => kind,
                Err(e) => {
                    let e = ApiError::validation(e);
                    return refusal_page(&console, lang, &live, route, &e, Some(back_to)).await;
                }
            };
            let nominal = match money(lang, &form.nominal) {
                Ok(nominal) => nominal,
                Err(e) => {
                    return refusal_page(&console, lang, &live, route, &e, Some(back_to)).await;
                }
            };
            let input = NewCollateral {
                borrower_id: borrower,
                kind,
                nominal,
                description: form.description.clone(),
                proposed_valuation: None,
            };
            let fingerprint =
                serde_json::to_vec(&(borrower, &form.kind, &form.nominal, &form.description))
                    .unwrap_or_default();
            run_command(
                &console.ctx,
                &principal,
                IdempotencyKey(None),
                &operation,
                &fingerprint,
                move |tx| {
                    Box::pin(async move {
                        collateral::register_collateral(&commands, tx, &actor, input).await?;
                        Ok(CommandOutcome::new(
                            StatusCode::CREATED,
                            serde_json::json!({}),
                        ))
                    })
                },
            )
            .await
        }
        CollateralAction::Value(id, request) => {
            let input = match valuation(lang, &form) {
                Ok(input) => input,
                Err(e) => {
                    return refusal_page(&console, lang, &live, route, &e, Some(back_to)).await;
                }
            };
            let fingerprint =
                serde_json::to_vec(&(id, &form.value, &form.valuation_date, &form.valuer))
                    .unwrap_or_default();
            run_command(
                &console.ctx,
                &principal,
                IdempotencyKey(None),
                &operation,
                &fingerprint,
                move |tx| {
                    Box::pin(async move {
                        collateral::record_valuation(&commands, tx, &actor, id, input, request)
                            .await?;
                        Ok(CommandOutcome::new(
                            StatusCode::CREATED,
                            serde_json::json!({}),
                        ))
                    })
                },
            )
            .await
        }
        CollateralAction::Legal(id) => {
            let result = match form.result.as_str() {
                "valid" => LegalResult::Valid,
                "invalid" => LegalResult::Invalid,
                _ => {
                    let e = ApiError::validation("choose valid or not valid");
                    return refusal_page(&console, lang, &live, route, &e, Some(back_to)).await;
                }
            };
            let note = form.note.clone();
            let fingerprint =
                serde_json::to_vec(&(id, &form.result, &form.note)).unwrap_or_default();
            run_command(
                &console.ctx,
                &principal,
                IdempotencyKey(None),
                &operation,
                &fingerprint,
                move |tx| {
                    Box::pin(async move {
                        collateral::record_legal_check(&commands, tx, &actor, id, result, &note)
                            .await?;
                        Ok(CommandOutcome::new(
                            StatusCode::CREATED,
                            serde_json::json!({}),
                        ))
                    })
                },
            )
            .await
        }
    };
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{back_to}?done=saved")).into_response(),
        Err(e) => refusal_page(&console, lang, &live, route, &e, Some(back_to)).await,
    }
}

/// The answer to a form posted for an id that is not one (before the
/// session is checked: it names nothing, so nothing is revealed).
fn unknown_id(console: &Console, headers: &HeaderMap) -> Response {
    let lang = lang_of(headers);
    message(
        console,
        lang,
        None,
        StatusCode::NOT_FOUND,
        lang.messages().not_found,
        None,
    )
}

pub(crate) async fn register(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CollateralForm>,
) -> Response {
    let Ok(borrower) = id.parse::<BorrowerId>() else {
        return unknown_id(&console, &headers);
    };
    collateral_form(console, headers, CollateralAction::Register(borrower), form).await
}

pub(crate) async fn value(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CollateralForm>,
) -> Response {
    let Ok(item) = id.parse::<CollateralId>() else {
        return unknown_id(&console, &headers);
    };
    // Market proposes values; back office records them (L3).
    let request = if console.settings.desk.service == "market" {
        ValuationRequest::Propose
    } else {
        ValuationRequest::Effective
    };
    collateral_form(
        console,
        headers,
        CollateralAction::Value(item, request),
        form,
    )
    .await
}

pub(crate) async fn legal_check(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CollateralForm>,
) -> Response {
    let Ok(item) = id.parse::<CollateralId>() else {
        return unknown_id(&console, &headers);
    };
    collateral_form(console, headers, CollateralAction::Legal(item), form).await
}

/// A document's content, as the API serves it: an attachment, its SHA-256
/// checked again, market only for the cases it may read (L2).
pub(crate) async fn content(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (live, lang) = match crate::casework::page_access(
        &console,
        &headers,
        ("/v1/documents/{id}/content", "GET"),
        "/console/documents/{id}/content",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<creditops_domain::DocumentId>() else {
        return not_found(&console, lang, &live);
    };
    let market = console.settings.desk.service == "market";
    let principal = Principal(live.actor.clone());
    match creditops_http::documents::content(&console.ctx, &principal, id, market).await {
        Ok(response) => response,
        Err(e) if e.status() == StatusCode::NOT_FOUND => not_found(&console, lang, &live),
        Err(e) => crate::pages::unavailable(&console, lang, &e.detail),
    }
}

#[derive(askama::Template)]
#[template(path = "collateral_due.html")]
struct DuePage {
    f: crate::pages::Frame,
    k: &'static Texts,
    as_of: String,
    rows: Vec<(String, CollateralLine)>,
}

/// The revaluation due list (L3): back office's work list.
pub(crate) async fn due(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match crate::casework::page_access(
        &console,
        &headers,
        ("/v1/collateral/revaluations-due", "GET"),
        "/console/collateral/due",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let (as_of, lines) =
        match collateral::revaluations_due(&console.ctx.commands(), None, 200).await {
            Ok(found) => found,
            Err(e) => return crate::pages::unavailable(&console, lang, &ApiError::from(e).detail),
        };
    let rows = lines
        .into_iter()
        .map(|line| {
            let item = &line.position.collateral;
            let row = CollateralLine {
                id: item.id.to_string(),
                kind: item.kind.as_str(),
                description: item.description.clone(),
                nominal: lang.money(item.nominal.amount(), item.nominal.currency_code()),
                value: line.position.effective.as_ref().map(|v| {
                    format!(
                        "{} ({})",
                        lang.money(v.value.amount(), v.value.currency_code()),
                        day(lang, v.valuation_date)
                    )
                }),
                proposed: None,
                haircut: format!("{} %", line.haircut.normalize()),
                after_haircut: String::new(),
                legal: None,
                revaluation: line.next_revaluation.map(|d| day(lang, d)),
                due: true,
            };
            (item.borrower_id.to_string(), row)
        })
        .collect();
    crate::pages::html(
        StatusCode::OK,
        &DuePage {
            f: crate::pages::Frame::new(&console, lang, Some(&live)),
            k: t,
            as_of: day(lang, as_of),
            rows,
        },
    )
}
