//! The loan officers' desk on the market service: the cases by state, a
//! case with its file, votes and history, a new case, and the first vote on
//! the version shown. Each page is allowed exactly when the API route it
//! stands for is (the service's casbin policy) and runs the API's command.

use crate::Console;
use crate::casework::{
    CaseSheet, Refusal, audit_command_refusal, form_access, page_access, permitted, sheet, short,
};
use crate::disbursement;
use crate::i18n::Lang;
use crate::pages::{Frame, NavLink, html, message, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use creditops_commands::{cases, market};
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseKind, CaseStatus, CollateralId, CreditId, Money, VoteStage,
};
use creditops_http::{ApiError, CommandOutcome, IdempotencyKey, Principal, routes, run_command};
use creditops_store::CaseFilter;
use serde::Deserialize;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "market" {
        return Router::new();
    }
    Router::new()
        .route("/console/cases", get(case_list).post(create_case))
        .route("/console/cases/new", get(new_case_form))
        .route("/console/borrowers/new", get(crate::borrowers::form))
        .route("/console/borrowers", post(crate::borrowers::register))
        .route("/console/cases/{id}", get(case_page))
        .route(
            "/console/borrowers/{id}/rating-proposals",
            post(crate::granting::propose_rating),
        )
        .route(
            "/console/cases/{id}/documents",
            post(crate::credit_pages::case_document)
                .layer(crate::credit_pages::upload_limit(console)),
        )
        .route(
            "/console/borrowers/{id}/collateral",
            post(crate::credit_pages::register),
        )
        .route(
            "/console/collateral/{id}/valuations",
            post(crate::credit_pages::value),
        )
        .route(
            "/console/documents/{id}/content",
            get(crate::credit_pages::content),
        )
        .route("/console/cases/{id}/first-vote", post(first_vote))
        .route(
            "/console/cases/{id}/edit",
            get(crate::drafts::form).post(crate::drafts::save),
        )
        .route(
            "/console/cases/{id}/disburse",
            post(crate::disbursement::disburse),
        )
}

/// The market desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let m = lang.messages();
    vec![
        NavLink::to("/console/cases", m.my_cases),
        NavLink::to("/console/cases/new", m.new_case),
        NavLink::to(
            "/console/borrowers/new",
            crate::borrowers::texts(lang).heading,
        )
        .needing("/v1/borrowers", "POST"),
    ]
}

struct Tab {
    slug: &'static str,
    label: &'static str,
    current: bool,
}

struct CaseRow {
    id: String,
    short_id: String,
    amount: String,
    version: i64,
    updated: String,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct CaseListPage {
    f: Frame,
    tabs: Vec<Tab>,
    state_label: &'static str,
    rows: Vec<CaseRow>,
    /// The link to the next page, if there is one.
    next: Option<String>,
}

#[derive(Deserialize)]
struct StateQuery {
    state: Option<String>,
    /// The last case of the previous page.
    after: Option<String>,
}

/// Cases on one page of a list.
const PAGE: u32 = 50;

async fn case_list(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<StateQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/cases/{id}", "GET"),
        "/console/cases",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let status = query
        .state
        .and_then(|s| s.parse::<CaseStatus>().ok())
        .unwrap_or(CaseStatus::Draft);
    let m = lang.messages();
    // The cases of the person's own market unit only, as the API lists them
    // (hardening finding 9): the console never widens what one may see.
    let filter = CaseFilter {
        status: Some(status),
        after: query.after.as_deref().and_then(|a| a.parse().ok()),
        limit: PAGE,
        ..CaseFilter::default()
    };
    let (cases, next) =
        match cases::market_cases_page(&console.ctx.commands(), &live.actor, filter).await {
            Ok(page) => page,
            Err(e) => return unavailable(&console, lang, &ApiError::from(e).detail),
        };
    let rows = cases
        .iter()
        .map(|c| CaseRow {
            id: c.id.to_string(),
            short_id: short(c.id),
            amount: lang.money(c.amount.amount(), c.amount.currency_code()),
            version: c.version,
            updated: lang.date(c.updated_at),
        })
        .collect();
    let tabs = CaseStatus::ALL
        .iter()
        .map(|s| Tab {
            slug: s.as_str(),
            label: m.state(*s),
            current: *s == status,
        })
        .collect();
    html(
        StatusCode::OK,
        &CaseListPage {
            f: Frame::new(&console, lang, Some(&live)),
            tabs,
            state_label: m.state(status),
            rows,
            next: next.map(|after| format!("/console/cases?state={status}&after={after}")),
        },
    )
}

struct Field {
    name: &'static str,
    label: &'static str,
    value: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "new_case.html")]
struct NewCasePage {
    f: Frame,
    fields: Vec<Field>,
    errors: Vec<String>,
    refusal: Option<String>,
    notice: Option<&'static str>,
    /// A change of an approved credit (L1): the kind and credit as hidden
    /// fields, and what the page says about them.
    kind: String,
    credit_id: String,
    change: Option<String>,
}

#[derive(Deserialize, Default)]
struct NewCaseForm {
    csrf: Option<String>,
    #[serde(default)]
    borrower_id: String,
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
    /// The decision kind (L1); empty for a new credit.
    #[serde(default)]
    kind: String,
    /// The approved credit a change case changes.
    #[serde(default)]
    credit_id: String,
    /// The collateral a collateral release releases.
    #[serde(default)]
    collateral_id: String,
}

fn new_case_fields(
    lang: Lang,
    form: &NewCaseForm,
    errors: &[(&'static str, String)],
) -> Vec<Field> {
    let field = |name: &'static str, label: &'static str, value: &str| Field {
        name,
        label,
        value: value.to_owned(),
        error: errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.clone()),
    };
    let m = lang.messages();
    let mut fields = vec![
        field("borrower_id", m.borrower_id, &form.borrower_id),
        field("amount", m.amount, &form.amount),
        field("currency", m.currency, &form.currency),
        field("product", m.product, &form.product),
        field("term_months", m.term_months, &form.term_months),
        field("purpose", m.purpose, &form.purpose),
    ];
    // A collateral release names the item it releases (L1, L3).
    if form.kind == CaseKind::CollateralRelease.as_str() {
        fields.push(field(
            "collateral_id",
            crate::granting::texts(lang).collateral_id,
            &form.collateral_id,
        ));
    }
    fields
}

fn new_case_view(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    form: &NewCaseForm,
    errors: &[(&'static str, String)],
    refusal: Option<String>,
) -> NewCasePage {
    let mut shown: Vec<String> = errors.iter().map(|(_, e)| e.clone()).collect();
    if let Some(r) = &refusal {
        shown.push(r.clone());
    }
    let kind = form.kind.parse::<CaseKind>().unwrap_or_default();
    let change = kind.changes_a_credit().then(|| {
        let credit: String = form.credit_id.chars().take(8).collect();
        let what = match lang {
            Lang::De => "des Kredits",
            Lang::En => "of credit",
        };
        format!(
            "{} {what} {credit}: {}",
            crate::granting::kind_label(lang, kind),
            crate::granting::texts(lang).change_intro
        )
    });
    NewCasePage {
        f: Frame::new(console, lang, Some(live)),
        fields: new_case_fields(lang, form, errors),
        errors: shown,
        refusal,
        notice: None,
        kind: form.kind.clone(),
        credit_id: form.credit_id.clone(),
        change,
    }
}

fn new_case_page(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    form: &NewCaseForm,
    errors: &[(&'static str, String)],
    refusal: Option<String>,
) -> Response {
    html(
        status,
        &new_case_view(console, lang, live, form, errors, refusal),
    )
}

#[derive(Deserialize)]
struct NewCaseQuery {
    borrower_id: Option<String>,
    done: Option<String>,
    /// A change of an approved credit (L1): its kind and the credit.
    kind: Option<String>,
    credit_id: Option<String>,
}

async fn new_case_form(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<NewCaseQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/cases", "POST"),
        "/console/cases/new",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    // A borrower just registered comes prefilled (only a well-formed id).
    let borrower_id = query
        .borrower_id
        .filter(|id| id.parse::<BorrowerId>().is_ok())
        .unwrap_or_default();
    let mut form = NewCaseForm {
        currency: "EUR".to_owned(),
        borrower_id,
        ..NewCaseForm::default()
    };
    // A change of an approved credit starts from the credit's terms (L1).
    let change = query
        .kind
        .as_deref()
        .and_then(|k| k.parse::<CaseKind>().ok())
        .filter(|k| k.changes_a_credit())
        .zip(
            query
                .credit_id
                .as_deref()
                .and_then(|c| c.parse::<CreditId>().ok()),
        );
    if let Some((kind, credit_id)) = change {
        match creditops_commands::granting::credit(&console.ctx.commands(), credit_id).await {
            Ok((credit, _)) => {
                form = NewCaseForm {
                    borrower_id: credit.borrower_id.to_string(),
                    amount: lang.money(credit.amount.amount(), "").trim().to_owned(),
                    currency: credit.amount.currency_code().to_owned(),
                    product: credit.product.clone(),
                    term_months: credit.term_months.to_string(),
                    purpose: credit.purpose.clone(),
                    kind: kind.as_str().to_owned(),
                    credit_id: credit_id.to_string(),
                    collateral_id: String::new(),
                    csrf: None,
                };
            }
            Err(e) => {
                let e = ApiError::from(e);
                return message(&console, lang, Some(&live), e.status(), &e.detail, None);
            }
        }
    }
    let notice = (query.done.as_deref() == Some("borrower"))
        .then(|| crate::borrowers::texts(lang).registered);
    let mut page = new_case_view(&console, lang, &live, &form, &[], None);
    page.notice = notice;
    html(StatusCode::OK, &page)
}

/// An amount as typed, in the API's plain spelling for `Money::parse`:
/// `250000.50`, German `250.000,50`, English `250,000.50`; what cannot be
/// read is passed on as typed, so the parser's message names the problem.
pub(crate) fn typed_amount(lang: Lang, text: &str) -> String {
    lang.plain_number(text)
        .unwrap_or_else(|| text.trim().to_owned())
}

/// The form's fields checked one by one, so every field's problem shows
/// beside it at once; the file when all are good.
fn checked_file(lang: Lang, form: &NewCaseForm) -> Result<CaseFile, Vec<(&'static str, String)>> {
    let de = lang == Lang::De;
    let mut errors = Vec::new();
    let borrower = form.borrower_id.trim().parse::<BorrowerId>().ok();
    if borrower.is_none() {
        errors.push((
            "borrower_id",
            if de {
                "Bitte die ID eines registrierten Kreditnehmers angeben."
            } else {
                "Enter the id of a registered borrower."
            }
            .to_owned(),
        ));
    }
    let amount = Money::parse(&typed_amount(lang, &form.amount), form.currency.trim());
    if form.amount.trim().is_empty() {
        errors.push((
            "amount",
            if de {
                "Bitte einen Betrag angeben, z. B. 250.000,00."
            } else {
                "Enter an amount, e.g. 250,000.00."
            }
            .to_owned(),
        ));
    } else if let Err(e) = &amount {
        let field = if form.currency.trim().len() == 3 {
            "amount"
        } else {
            "currency"
        };
        errors.push((field, e.0.clone()));
    }
    let term = form
        .term_months
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| (1..=600).contains(t));
    if term.is_none() {
        errors.push((
            "term_months",
            if de {
                "Laufzeit in Monaten, 1 bis 600."
            } else {
                "Term in months, 1 to 600."
            }
            .to_owned(),
        ));
    }
    for (name, value) in [("product", &form.product), ("purpose", &form.purpose)] {
        if value.trim().is_empty() {
            errors.push((
                name,
                if de {
                    "Bitte ausfüllen."
                } else {
                    "Please fill this in."
                }
                .to_owned(),
            ));
        }
    }
    match (borrower, amount, term) {
        (Some(borrower), Ok(amount), Some(term)) if errors.is_empty() => CaseFile::new(
            borrower,
            amount,
            form.product.trim(),
            term,
            form.purpose.trim(),
        )
        .map_err(|e| vec![("purpose", ApiError::from(e).detail)]),
        _ => Err(errors),
    }
}

async fn create_case(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<NewCaseForm>,
) -> Response {
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/cases", "POST"),
        "/console/cases",
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let file = match checked_file(lang, &form) {
        Ok(file) => file,
        Err(errors) => {
            return new_case_page(
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
    let kind = if form.kind.trim().is_empty() {
        Ok(CaseKind::New)
    } else {
        form.kind.trim().parse::<CaseKind>()
    };
    let credit_id = match form.credit_id.trim() {
        "" => Ok(None),
        id => id.parse::<CreditId>().map(Some).map_err(|e| e.to_string()),
    };
    let collateral = match form.collateral_id.trim() {
        "" => Ok(None),
        id => id
            .parse::<CollateralId>()
            .map(Some)
            .map_err(|e| e.to_string()),
    };
    let (kind, credit_id, collateral) = match (kind, credit_id, collateral) {
        (Ok(kind), Ok(credit_id), Ok(collateral)) => (kind, credit_id, collateral),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return new_case_page(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &[],
                Some(e),
            );
        }
    };
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/cases",
        &[],
        move |tx| {
            Box::pin(async move {
                let case =
                    cases::open_case(&commands, tx, &actor, file, kind, credit_id, collateral)
                        .await?;
                Ok(CommandOutcome::new(
                    StatusCode::CREATED,
                    serde_json::json!({ "id": case.id }),
                ))
            })
        },
    )
    .await;
    match answer {
        Ok(response) => {
            let id = created_id(response).await;
            Redirect::to(&format!(
                "/console/cases/{}?done=opened",
                id.unwrap_or_default()
            ))
            .into_response()
        }
        Err(e) => {
            if let Err(audit) =
                audit_command_refusal(&console, &live, "/console/cases", &e, None).await
            {
                return unavailable(&console, lang, &audit.detail);
            }
            let refusal = Refusal::of(lang, &e);
            let text = match refusal.rule {
                Some(rule) => format!("{} ({} {rule})", refusal.text, lang.messages().rule),
                None => refusal.text,
            };
            new_case_page(&console, lang, &live, e.status(), &form, &[], Some(text))
        }
    }
}

/// The id in a command's JSON answer.
async fn created_id(response: Response) -> Option<String> {
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    f: Frame,
    c: CaseSheet,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    rationale: String,
    /// An approved case's reservation and liquidity check.
    payout: Option<disbursement::Card>,
    /// The link to edit the file, while it is with market.
    edit: Option<&'static str>,
    /// Kind, credit, rating and conditions (L1, L4, L5).
    g: crate::granting::Panels,
    /// Documents and collateral (L2, L3).
    k: crate::credit_pages::Cards,
}

/// What a case page shows besides the case: a notice, a refusal, and the
/// rationale typed before a refusal (so it is not lost).
#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    rationale: String,
}

async fn render_case(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    id: CaseId,
    status: StatusCode,
    shown: Shown,
) -> Response {
    let commands = console.ctx.commands();
    let case = match cases::read_market_case(&commands, &live.actor, id).await {
        Ok(case) => case,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status() == StatusCode::NOT_FOUND {
                return message(
                    console,
                    lang,
                    Some(live),
                    StatusCode::NOT_FOUND,
                    lang.messages().not_found,
                    None,
                );
            }
            return unavailable(console, lang, &e.detail);
        }
    };
    let borrower = match market::borrower(&commands, case.file.borrower_id).await {
        Ok(b) => format!("{} ({}, {})", b.name, b.country, b.sector),
        Err(_) => case.file.borrower_id.to_string(),
    };
    let may_vote = permitted(console, live, "/v1/cases/{id}/first-vote", "POST");
    let payout = if case.status == CaseStatus::Approved {
        match market::disbursement_preview(&commands, &live.actor, id).await {
            Ok(preview) => Some(disbursement::card(
                lang,
                &preview,
                permitted(console, live, "/v1/cases/{id}/disburse", "POST"),
                &case,
            )),
            Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
        }
    } else {
        None
    };
    let g = crate::granting::panels(console, lang, live, &case, chrono::Utc::now()).await;
    let k = crate::credit_pages::cards(console, lang, live, &case).await;
    html(
        status,
        &CasePage {
            g,
            k,
            f: Frame::new(console, lang, Some(live)),
            c: sheet(lang, &case, borrower, may_vote),
            notice: shown.notice,
            refusal: shown.refusal,
            rationale: shown.rationale,
            payout,
            edit: (case.status.is_with_market()
                && permitted(console, live, "/v1/cases/{id}", "PATCH"))
            .then(|| crate::drafts::texts(lang).edit),
        },
    )
}

/// Case `id` again with a command's refusal (already audited).
pub(crate) async fn case_with_refusal(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    id: CaseId,
    refusal: Refusal,
    status: StatusCode,
) -> Response {
    render_case(
        console,
        lang,
        live,
        id,
        status,
        Shown {
            refusal: Some(refusal),
            ..Shown::default()
        },
    )
    .await
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn case_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/cases/{id}", "GET"),
        "/console/cases/{id}",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<CaseId>() else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        );
    };
    let m = lang.messages();
    let notice = match done.done.as_deref() {
        Some("vote") => Some(m.vote_recorded),
        Some("opened") => Some(m.case_opened),
        Some("disbursed") => Some(disbursement::texts(lang).done),
        Some("edited") => Some(crate::drafts::texts(lang).saved),
        Some("rated") => Some(crate::granting::texts(lang).rating_done),
        Some("saved") => Some(crate::credit_pages::texts(lang).done),
        _ => None,
    };
    render_case(
        &console,
        lang,
        &live,
        id,
        StatusCode::OK,
        Shown {
            notice,
            ..Shown::default()
        },
    )
    .await
}

async fn first_vote(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<crate::casework::VoteForm>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}/first-vote";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/cases/{id}/first-vote", "POST"),
        ROUTE,
        id.parse().ok(),
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<CaseId>() else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        );
    };
    let answer = match form.request() {
        Ok(request) => {
            let principal = Principal(live.actor.clone());
            routes::vote(
                console.ctx.clone(),
                principal,
                IdempotencyKey(None),
                id,
                request,
                VoteStage::First,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(response) if response.status().is_success() => {
            Redirect::to(&format!("/console/cases/{id}?done=vote")).into_response()
        }
        Ok(response) => {
            let status = response.status();
            render_case(
                &console,
                lang,
                &live,
                id,
                status,
                Shown {
                    rationale: form.rationale,
                    ..Shown::default()
                },
            )
            .await
        }
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, Some(id)).await {
                return unavailable(&console, lang, &audit.detail);
            }
            render_case(
                &console,
                lang,
                &live,
                id,
                e.status(),
                Shown {
                    refusal: Some(Refusal::of(lang, &e)),
                    rationale: form.rationale,
                    ..Shown::default()
                },
            )
            .await
        }
    }
}
