//! The market desk's edit of a draft or returned case: the same command as
//! `PATCH /v1/cases/{id}` on the version shown. Saving makes a new version
//! of the file, and every vote cast so far becomes void (V3): the page says
//! so, naming the votes, before anything is saved.

use crate::Console;
use crate::casework::{Refusal, audit_command_refusal, form_access, page_access, short};
use crate::i18n::Lang;
use crate::pages::{Frame, html, message, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use creditops_commands::cases::{self, CaseEdit};
use creditops_domain::{CaseId, CreditCase, Money, VoteStage};
use creditops_http::{ApiError, CommandOutcome, IdempotencyKey, Principal, run_command};
use serde::Deserialize;

/// This page's texts in one language.
pub(crate) struct Texts {
    pub edit: &'static str,
    pub heading: &'static str,
    pub voids: &'static str,
    pub void_vote: &'static str,
    pub no_votes: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub has_errors: &'static str,
    pub amount_invalid: &'static str,
    pub term_invalid: &'static str,
    pub required: &'static str,
}

static DE: Texts = Texts {
    edit: "Entwurf bearbeiten",
    heading: "Kreditakte bearbeiten",
    voids: "Speichern legt eine neue Version der Akte an. Ein Votum gilt nur für die Version, auf die es abgegeben wurde (V3); keines der bisherigen zählt für die neue:",
    void_vote: "zählt nicht für die neue Version",
    no_votes: "Es liegen noch keine Voten vor.",
    save: "Neue Version speichern",
    saved: "Die Akte ist als neue Version gespeichert; bisherige Voten sind ungültig.",
    has_errors: "Bitte prüfen Sie die markierten Felder.",
    amount_invalid: "Bitte einen Betrag angeben, z. B. 250.000,00.",
    term_invalid: "Laufzeit in Monaten, 1 bis 600.",
    required: "Bitte ausfüllen.",
};

static EN: Texts = Texts {
    edit: "Edit the draft",
    heading: "Edit the credit file",
    voids: "Saving makes a new version of the file. A vote counts only for the version it was cast on (V3); none cast so far counts for the new one:",
    void_vote: "does not count for the new version",
    no_votes: "No votes have been cast yet.",
    save: "Save a new version",
    saved: "The file is saved as a new version; earlier votes are void.",
    has_errors: "Please check the marked fields.",
    amount_invalid: "Enter an amount, e.g. 250,000.00.",
    term_invalid: "Term in months, 1 to 600.",
    required: "Please fill this in.",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "edit_case.html")]
struct EditPage {
    f: Frame,
    t: &'static Texts,
    id: String,
    short_id: String,
    version: i64,
    voided: Vec<String>,
    fields: Vec<Field>,
    problem: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct EditForm {
    csrf: Option<String>,
    #[serde(default)]
    version: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    term_months: String,
    #[serde(default)]
    purpose: String,
}

impl EditForm {
    fn of(case: &CreditCase) -> EditForm {
        EditForm {
            csrf: None,
            version: case.version.to_string(),
            amount: case.file.amount.amount().to_string(),
            currency: case.file.amount.currency_code().to_owned(),
            product: case.file.product.clone(),
            term_months: case.file.term_months.to_string(),
            purpose: case.file.purpose.clone(),
        }
    }
}

#[allow(clippy::too_many_arguments)] // the page's parts, each needed
fn page(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    case: &CreditCase,
    form: &EditForm,
    errors: &[(&'static str, String)],
    refusal: Option<Refusal>,
) -> Response {
    let t = texts(lang);
    let m = lang.messages();
    let field = |name: &'static str, label: &'static str, value: &str| Field {
        name,
        label,
        value: value.to_owned(),
        error: errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.clone()),
    };
    let voided = case
        .votes
        .iter()
        .map(|v| {
            let stage = match v.stage {
                VoteStage::First => m.stage_first,
                VoteStage::Second => m.stage_second,
            };
            format!(
                "{stage}: {} ({} {}) {}",
                v.voter.staff_id, m.version, v.file_version, t.void_vote
            )
        })
        .collect();
    let problem = match refusal {
        Some(r) => Some(match r.rule {
            Some(rule) => format!("{} ({} {rule})", r.text, m.rule),
            None => r.text,
        }),
        None => (!errors.is_empty()).then(|| t.has_errors.to_owned()),
    };
    html(
        status,
        &EditPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            id: case.id.to_string(),
            short_id: short(case.id),
            version: case.version,
            voided,
            fields: vec![
                field("amount", m.amount, &form.amount),
                field("currency", m.currency, &form.currency),
                field("product", m.product, &form.product),
                field("term_months", m.term_months, &form.term_months),
                field("purpose", m.purpose, &form.purpose),
            ],
            problem,
        },
    )
}

/// The case as the person's market unit may change it, or the answer.
async fn changeable(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    id: &str,
) -> Result<CreditCase, Response> {
    let not_found = || {
        message(
            console,
            lang,
            Some(live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        )
    };
    let Ok(id) = id.parse::<CaseId>() else {
        return Err(not_found());
    };
    match cases::read_market_case(&console.ctx.commands(), &live.actor, id).await {
        Ok(case) => Ok(case),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status() == StatusCode::NOT_FOUND {
                Err(not_found())
            } else {
                Err(unavailable(console, lang, &e.detail))
            }
        }
    }
}

pub(crate) async fn form(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/cases/{id}", "PATCH"),
        "/console/cases/{id}/edit",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let case = match changeable(&console, lang, &live, &id).await {
        Ok(case) => case,
        Err(answer) => return answer,
    };
    page(
        &console,
        lang,
        &live,
        StatusCode::OK,
        &case,
        &EditForm::of(&case),
        &[],
        None,
    )
}

/// The form's fields checked one by one; the edit when all are good.
fn checked(lang: Lang, form: &EditForm) -> Result<CaseEdit, Vec<(&'static str, String)>> {
    let t = texts(lang);
    let mut errors = Vec::new();
    let amount = crate::market::typed_amount(lang, &form.amount);
    if let Err(e) = Money::parse(&amount, form.currency.trim()) {
        let field = if form.currency.trim().len() == 3 {
            "amount"
        } else {
            "currency"
        };
        let text = if field == "amount" && form.amount.trim().is_empty() {
            t.amount_invalid.to_owned()
        } else {
            e.0
        };
        errors.push((field, text));
    }
    let term = form
        .term_months
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| (1..=600).contains(t));
    if term.is_none() {
        errors.push(("term_months", t.term_invalid.to_owned()));
    }
    for (name, value) in [("product", &form.product), ("purpose", &form.purpose)] {
        if value.trim().is_empty() {
            errors.push((name, t.required.to_owned()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CaseEdit {
        version: form.version.trim().parse().unwrap_or(0),
        amount: Some(amount),
        currency: Some(form.currency.trim().to_owned()),
        product: Some(form.product.trim().to_owned()),
        term_months: term,
        purpose: Some(form.purpose.trim().to_owned()),
    })
}

pub(crate) async fn save(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<EditForm>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}/edit";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/cases/{id}", "PATCH"),
        ROUTE,
        id.parse().ok(),
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let case = match changeable(&console, lang, &live, &id).await {
        Ok(case) => case,
        Err(answer) => return answer,
    };
    let edit = match checked(lang, &form) {
        Ok(edit) => edit,
        Err(errors) => {
            return page(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                &case,
                &form,
                &errors,
                None,
            );
        }
    };
    let id = case.id;
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let fingerprint = format!("{id}:{edit:?}").into_bytes();
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "PATCH /v1/cases/{id}",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::edit_case(&commands, tx, &actor, id, edit).await?;
                Ok(CommandOutcome::new(
                    StatusCode::OK,
                    serde_json::json!({ "id": case.id }),
                ))
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{id}?done=edited")).into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, Some(id)).await {
                return unavailable(&console, lang, &audit.detail);
            }
            page(
                &console,
                lang,
                &live,
                e.status(),
                &case,
                &form,
                &[],
                Some(Refusal::of(lang, &e)),
            )
        }
    }
}
