//! The market desk's borrower registration: the same checks and command as
//! `POST /v1/borrowers` (canonical NACE and ISO codes, hardening finding 1;
//! the relationship manager a market person, S6), each field's problem
//! shown beside it; a registered borrower goes straight into a new case.

use crate::Console;
use crate::casework::{Refusal, audit_command_refusal, form_access, page_access};
use crate::i18n::Lang;
use crate::pages::{Frame, html, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use creditops_commands::{action_time, market};
use creditops_domain::case::required_text;
use creditops_domain::{BorrowerId, Country, Sector, StaffId};
use creditops_http::{CommandOutcome, IdempotencyKey, Principal, run_command};
use creditops_store::Borrower;
use serde::Deserialize;

/// This page's texts in one language.
pub(crate) struct Texts {
    pub heading: &'static str,
    pub name: &'static str,
    pub country: &'static str,
    pub country_hint: &'static str,
    pub sector: &'static str,
    pub sector_hint: &'static str,
    pub manager: &'static str,
    pub manager_hint: &'static str,
    pub institution: &'static str,
    pub submit: &'static str,
    pub registered: &'static str,
    pub name_missing: &'static str,
    pub has_errors: &'static str,
}

static DE: Texts = Texts {
    heading: "Neuer Kreditnehmer",
    name: "Name",
    country: "Land",
    country_hint: "ISO-3166-1-Code in Großbuchstaben, z. B. DE.",
    sector: "Branche",
    sector_hint: "NACE-Rev.-2-Abschnitt oder -Abteilung, z. B. C oder C25.",
    manager: "Betreuer (optional)",
    manager_hint: "Die Person im Markt, die den Kreditnehmer betreut; ohne Angabe Sie selbst. Sie votiert nicht über seine Fälle (S6).",
    institution: "Kreditinstitut (CRR Art. 395)",
    submit: "Kreditnehmer anlegen",
    registered: "Der Kreditnehmer ist angelegt; Sie können jetzt den Fall eröffnen.",
    name_missing: "Bitte den Namen angeben.",
    has_errors: "Bitte prüfen Sie die markierten Felder.",
};

static EN: Texts = Texts {
    heading: "New borrower",
    name: "Name",
    country: "Country",
    country_hint: "ISO 3166-1 code in capitals, e.g. DE.",
    sector: "Sector",
    sector_hint: "NACE Rev. 2 section or division, e.g. C or C25.",
    manager: "Relationship manager (optional)",
    manager_hint: "The market person who looks after the borrower; you if left empty. They do not vote on the borrower's cases (S6).",
    institution: "Credit institution (CRR Art. 395)",
    submit: "Register borrower",
    registered: "The borrower is registered; you can open the case now.",
    name_missing: "Enter the name.",
    has_errors: "Please check the marked fields.",
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
    pub hint: Option<&'static str>,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "new_borrower.html")]
struct NewBorrowerPage {
    f: Frame,
    t: &'static Texts,
    fields: Vec<Field>,
    institution: bool,
    problem: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct BorrowerForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    sector: String,
    #[serde(default)]
    relationship_manager: String,
    institution: Option<String>,
}

fn page(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    form: &BorrowerForm,
    errors: &[(&'static str, String)],
    refusal: Option<Refusal>,
) -> Response {
    let t = texts(lang);
    let field = |name: &'static str, label, hint, value: &str| Field {
        name,
        label,
        hint,
        value: value.to_owned(),
        error: errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.clone()),
    };
    let problem = match refusal {
        Some(r) => Some(match r.rule {
            Some(rule) => format!("{} ({} {rule})", r.text, lang.messages().rule),
            None => r.text,
        }),
        None => (!errors.is_empty()).then(|| t.has_errors.to_owned()),
    };
    html(
        status,
        &NewBorrowerPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            fields: vec![
                field("name", t.name, None, &form.name),
                field("country", t.country, Some(t.country_hint), &form.country),
                field("sector", t.sector, Some(t.sector_hint), &form.sector),
                field(
                    "relationship_manager",
                    t.manager,
                    Some(t.manager_hint),
                    &form.relationship_manager,
                ),
            ],
            institution: form.institution.is_some(),
            problem,
        },
    )
}

pub(crate) async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/borrowers", "POST"),
        "/console/borrowers/new",
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
        &BorrowerForm::default(),
        &[],
        None,
    )
}

/// The form's fields checked one by one; the borrower when all are good.
fn checked(
    lang: Lang,
    form: &BorrowerForm,
    by: &StaffId,
) -> Result<Borrower, Vec<(&'static str, String)>> {
    let t = texts(lang);
    let mut errors = Vec::new();
    let name = required_text("name", &form.name, 200)
        .map_err(|_| errors.push(("name", t.name_missing.to_owned())))
        .ok();
    let country = form
        .country
        .parse::<Country>()
        .map_err(|e| errors.push(("country", e.to_string())))
        .ok();
    let sector = form
        .sector
        .parse::<Sector>()
        .map_err(|e| errors.push(("sector", e.to_string())))
        .ok();
    let manager = match form.relationship_manager.trim() {
        "" => Some(by.clone()),
        id => StaffId::parse(id)
            .map_err(|e| errors.push(("relationship_manager", e.to_string())))
            .ok(),
    };
    match (name, country, sector, manager) {
        (Some(name), Some(country), Some(sector), Some(manager)) if errors.is_empty() => {
            Ok(Borrower {
                id: BorrowerId::generate(),
                name,
                country,
                sector,
                institution: form.institution.is_some(),
                relationship_manager: Some(manager),
                created_by: by.clone(),
                created_at: action_time(),
            })
        }
        _ => Err(errors),
    }
}

pub(crate) async fn register(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BorrowerForm>,
) -> Response {
    const ROUTE: &str = "/console/borrowers";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/borrowers", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let borrower = match checked(lang, &form, live.actor.id()) {
        Ok(borrower) => borrower,
        Err(errors) => {
            return page(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                None,
            );
        }
    };
    let id = borrower.id;
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/borrowers",
        id.to_string().as_bytes(),
        move |tx| {
            Box::pin(async move {
                market::register_borrower(&commands, tx, &actor, &borrower).await?;
                Ok(CommandOutcome::new(
                    StatusCode::CREATED,
                    serde_json::json!({ "id": id }),
                ))
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!(
            "/console/cases/new?borrower_id={id}&done=borrower"
        ))
        .into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            let refusal = Refusal::of(lang, &e);
            page(&console, lang, &live, e.status(), &form, &[], Some(refusal))
        }
    }
}
