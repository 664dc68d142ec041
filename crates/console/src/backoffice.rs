//! The credit analysts' desk on the back-office service: the second-vote
//! queue (oldest first), a case with the first vote, the file version and
//! the risk gate's verdict side by side, the second vote on the version
//! shown, and the return to market with a reason. Each page is allowed
//! exactly when the API route it stands for is, and runs the API's command.

use crate::Console;
use crate::casework::{
    CaseSheet, Refusal, audit_command_refusal, forbidden, form_access, not_found, page_access,
    permitted, sheet, short,
};
use crate::i18n::{Lang, Messages};
use crate::pages::{Frame, NavLink, guard_form, html, lang_of, message, signed_in, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use creditops_commands::{cases, limits, market, risk};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::{
    CaseId, CaseStatus, CreditCase, RiskVerdict, Severity, VoteDecision, VoteStage,
};
use creditops_http::views::case_json;
use creditops_http::{ApiError, CommandOutcome, IdempotencyKey, Principal, routes, run_command};
use creditops_risk::{LimitKind, LimitStatus, LimitSubject};
use rust_decimal::Decimal;
use serde::Deserialize;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "backoffice" {
        return Router::new();
    }
    Router::new()
        .route("/console/queue", get(queue))
        .route("/console/cases/{id}", get(case_page))
        .route("/console/cases/{id}/second-vote", post(second_vote))
        .route("/console/cases/{id}/return", post(return_case))
        .route(
            "/console/cases/{id}/board-resolution",
            post(record_resolution),
        )
        .route(
            "/console/cases/{id}/board-resolution/confirmation",
            post(confirm_resolution),
        )
        .route(
            "/console/borrowers/{id}/rating",
            post(crate::granting::set_rating),
        )
        .route(
            "/console/cases/{id}/conditions/{condition_id}/sign-off",
            post(crate::granting::sign_off),
        )
        .route(
            "/console/borrowers/{id}/documents",
            post(crate::credit_pages::borrower_document)
                .layer(crate::credit_pages::upload_limit(console)),
        )
        .route(
            "/console/collateral/{id}/valuations",
            post(crate::credit_pages::value),
        )
        .route(
            "/console/documents/{id}/content",
            get(crate::credit_pages::content),
        )
        .route(
            "/console/collateral/{id}/legal-check",
            post(crate::credit_pages::legal_check),
        )
        .route("/console/collateral/due", get(crate::credit_pages::due))
        .route("/console/limits", get(limit_inbox))
        .route("/console/limits/{id}/approve", post(approve_limit))
        .route("/console/limits/{id}/reject", post(reject_limit))
}

/// The back-office desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let t = texts(lang);
    vec![
        NavLink::to("/console/queue", t.queue),
        NavLink::to("/console/queue?state=escalated", t.escalated_tab),
        NavLink::to("/console/queue?state=draft", t.drafts_tab),
        NavLink::to("/console/limits", t.limits),
        NavLink::to(
            "/console/collateral/due",
            crate::credit_pages::texts(lang).due_heading,
        )
        .needing("/v1/collateral/revaluations-due", "GET"),
        crate::monitoring::nav(lang),
    ]
    .into_iter()
    .chain(crate::groups::nav(lang))
    .collect()
}

/// This desk's texts in one language.
struct Texts {
    queue: &'static str,
    escalated_tab: &'static str,
    drafts_tab: &'static str,
    drafts_intro: &'static str,
    conditions_help: &'static str,
    queue_intro: &'static str,
    escalated_intro: &'static str,
    waiting: &'static str,
    days: &'static str,
    amount_from: &'static str,
    amount_to: &'static str,
    filter: &'static str,
    amount_filter_invalid: &'static str,
    first_vote: &'static str,
    cast_at: &'static str,
    no_first_vote: &'static str,
    binds_to_shown: &'static str,
    binds_to_other: &'static str,
    gate: &'static str,
    gate_note: &'static str,
    gate_within: &'static str,
    gate_soft: &'static str,
    gate_hard: &'static str,
    gate_unavailable: &'static str,
    large_exposure: &'static str,
    limit: &'static str,
    usage: &'static str,
    headroom: &'static str,
    cast_second_vote: &'static str,
    second_vote_intro: &'static str,
    return_heading: &'static str,
    return_intro: &'static str,
    return_submit: &'static str,
    returned: &'static str,
    decided: &'static str,
    limits: &'static str,
    limits_intro: &'static str,
    no_limits: &'static str,
    subject: &'static str,
    tolerance: &'static str,
    reason: &'static str,
    proposed_by: &'static str,
    approve_limit: &'static str,
    reject_limit: &'static str,
    limit_approved: &'static str,
    limit_rejected: &'static str,
    board: &'static str,
    board_intro: &'static str,
    board_reference: &'static str,
    board_recorded_by: &'static str,
    board_waiting: &'static str,
    board_confirmed_by: &'static str,
    board_stale: &'static str,
    board_record: &'static str,
    board_confirm: &'static str,
    board_recorded: &'static str,
    board_confirmed: &'static str,
    board_own: &'static str,
}

static DE: Texts = Texts {
    queue: "Zweitvoten",
    escalated_tab: "Eskaliert",
    drafts_tab: "Entwürfe",
    drafts_intro: "Entwürfe des Markts: vor dem Erstvotum setzt die Marktfolge das Rating des Kreditnehmers fest (L4).",
    conditions_help: "Nur bei Zustimmung: eine Auszahlungsvoraussetzung je Zeile; ein Datum am Zeilenende nach „|“ ist die Frist (z. B. „Grundschuld eingetragen | 2027-03-31“).",
    queue_intro: "Fälle, die auf das Zweitvotum der Marktfolge warten, die ältesten zuerst.",
    escalated_intro: "Eskalierte Fälle warten auf ein neues Erstvotum auf höherer Kompetenzstufe; die Marktfolge kann sie zurückgeben.",
    waiting: "Wartet seit",
    days: "Tage",
    amount_from: "Betrag ab (EUR)",
    amount_to: "Betrag bis (EUR)",
    filter: "Filtern",
    amount_filter_invalid: "Bitte Beträge als Zahl angeben, z. B. 250.000,00.",
    first_vote: "Erstvotum (Markt)",
    cast_at: "Abgegeben am",
    no_first_vote: "In dieser Runde liegt noch kein Erstvotum vor.",
    binds_to_shown: "bezieht sich auf die gezeigte Version",
    binds_to_other: "bezieht sich auf eine andere Version",
    gate: "Risikoprüfung (R4)",
    gate_note: "Vorschau aus den aktuellen Zahlen; bei der Zustimmung prüft die Plattform unter Sperren erneut.",
    gate_within: "Alle Limite und die Liquidität sind eingehalten.",
    gate_soft: "Eine Überschreitung liegt innerhalb der Toleranz: die Zustimmung führt zur Eskalation.",
    gate_hard: "Harte Überschreitung oder nicht prüfbar: eine Zustimmung wird abgelehnt.",
    gate_unavailable: "Die Risikoprüfung konnte nicht ausgewertet werden; eine Zustimmung würde abgelehnt.",
    large_exposure: "Großkredit (ab 10 % des Kernkapitals): ein bestätigter Vorstandsbeschluss ist nötig (V11).",
    limit: "Limit",
    usage: "Auslastung",
    headroom: "Freiraum",
    cast_second_vote: "Zweitvotum (Marktfolge) abgeben",
    second_vote_intro: "Ihr Votum gilt für die gezeigte Version der Akte.",
    return_heading: "An den Markt zurückgeben",
    return_intro: "Die Voten dieser Runde werden ungültig; der Markt sieht Ihren Grund.",
    return_submit: "Zurückgeben",
    returned: "Der Fall ist an den Markt zurückgegeben.",
    decided: "Ihr Votum ist erfasst.",
    limits: "Limitanträge",
    limits_intro: "Vom Risikocontrolling beantragte Limite warten auf die Entscheidung der Marktfolge (R8); entscheiden darf nur, wer unabhängig ist.",
    no_limits: "Keine Limitanträge warten auf eine Entscheidung.",
    subject: "Gegenstand",
    tolerance: "Toleranz",
    reason: "Begründung",
    proposed_by: "Beantragt von",
    approve_limit: "Genehmigen",
    reject_limit: "Ablehnen",
    limit_approved: "Das Limit ist genehmigt und gilt ab sofort.",
    limit_rejected: "Der Limitantrag ist abgelehnt.",
    board: "Vorstandsbeschluss (V11)",
    board_intro: "Ein Organkredit oder ein Großkredit braucht vor der Zustimmung einen Vorstandsbeschluss zu dieser Version der Akte, bestätigt von einem Vorstandsmitglied der Marktfolge.",
    board_reference: "Aktenzeichen des Beschlusses",
    board_recorded_by: "Erfasst von",
    board_waiting: "Wartet auf die Bestätigung durch ein Vorstandsmitglied der Marktfolge.",
    board_confirmed_by: "Bestätigt von",
    board_stale: "Der erfasste Beschluss gilt für eine frühere Version der Akte; bitte den Beschluss zu dieser Version erfassen.",
    board_record: "Beschluss erfassen",
    board_confirm: "Beschluss bestätigen",
    board_recorded: "Der Beschluss ist erfasst und wartet auf die Bestätigung.",
    board_confirmed: "Der Beschluss ist bestätigt.",
    board_own: "Sie haben den Beschluss erfasst; bestätigen muss ein anderes Vorstandsmitglied.",
};

static EN: Texts = Texts {
    queue: "Second votes",
    escalated_tab: "Escalated",
    drafts_tab: "Drafts",
    drafts_intro: "Market's drafts: before the first vote, back office sets the borrower's rating (L4).",
    conditions_help: "Approvals only: one condition precedent per line; a date after \"|\" at the end of a line is its due date (e.g. \"land charge registered | 2027-03-31\").",
    queue_intro: "Cases awaiting the back office's second vote, oldest first.",
    escalated_intro: "Escalated cases await a new first vote at a higher competence level; back office may return them.",
    waiting: "Waiting since",
    days: "days",
    amount_from: "Amount from (EUR)",
    amount_to: "Amount to (EUR)",
    filter: "Filter",
    amount_filter_invalid: "Enter amounts as numbers, e.g. 250,000.00.",
    first_vote: "First vote (market)",
    cast_at: "Cast on",
    no_first_vote: "No first vote in this round yet.",
    binds_to_shown: "binds to the version shown",
    binds_to_other: "binds to another version",
    gate: "Risk gate (R4)",
    gate_note: "A preview from today's figures; an approval is checked again under locks.",
    gate_within: "Every limit and the liquidity floor are kept.",
    gate_soft: "A breach within tolerance: an approval escalates the case.",
    gate_hard: "A hard breach, or a check that cannot be evaluated: an approval is refused.",
    gate_unavailable: "The risk gate could not be evaluated; an approval would be refused.",
    large_exposure: "Large exposure (10 % of Tier 1 or more): a confirmed board resolution is required (V11).",
    limit: "Limit",
    usage: "Usage",
    headroom: "Headroom",
    cast_second_vote: "Cast the second (back-office) vote",
    second_vote_intro: "Your vote is for the version of the file shown.",
    return_heading: "Return to market",
    return_intro: "This round's votes become void; market sees your reason.",
    return_submit: "Return the case",
    returned: "The case is back with market.",
    decided: "Your vote is recorded.",
    limits: "Limit proposals",
    limits_intro: "Limits proposed by risk control await the back office's decision (R8); only an independent person may decide.",
    no_limits: "No limit proposals await a decision.",
    subject: "Subject",
    tolerance: "Tolerance",
    reason: "Reason",
    proposed_by: "Proposed by",
    approve_limit: "Approve",
    reject_limit: "Reject",
    limit_approved: "The limit is approved and in force now.",
    limit_rejected: "The limit proposal is rejected.",
    board: "Board resolution (V11)",
    board_intro: "A related-party credit or a large exposure needs a board resolution on this version of the file before approval, confirmed by a board-level member of back office.",
    board_reference: "Reference of the resolution",
    board_recorded_by: "Recorded by",
    board_waiting: "Waiting for confirmation by a board-level member of back office.",
    board_confirmed_by: "Confirmed by",
    board_stale: "The recorded resolution covers an earlier version of the file; record the resolution on this version.",
    board_record: "Record the resolution",
    board_confirm: "Confirm the resolution",
    board_recorded: "The resolution is recorded and waits for confirmation.",
    board_confirmed: "The resolution is confirmed.",
    board_own: "You recorded the resolution; another board-level member confirms it.",
};

fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// Cases on one page of the queue.
const PAGE: u32 = 50;

struct QueueRow {
    id: String,
    short_id: String,
    amount: String,
    version: i64,
    waiting_since: String,
    age_days: i64,
    /// Width of the age bar, 0-100, relative to the oldest on the page.
    age_width: i64,
}

#[derive(Template)]
#[template(path = "backoffice_queue.html")]
struct QueuePage {
    f: Frame,
    t: &'static Texts,
    escalated: bool,
    heading: &'static str,
    intro: &'static str,
    rows: Vec<QueueRow>,
    min: String,
    max: String,
    filter_error: Option<&'static str>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct QueueQuery {
    state: Option<String>,
    min: Option<String>,
    max: Option<String>,
    after: Option<String>,
}

/// An amount bound of the filter as typed (`250000`, `250.000,00`).
fn amount_bound(lang: Lang, text: Option<&str>) -> Result<Option<Decimal>, ()> {
    let text = text.unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(None);
    }
    lang.plain_number(text)
        .and_then(|plain| plain.parse::<Decimal>().ok())
        .map(Some)
        .ok_or(())
}

async fn queue(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let (live, lang) =
        match page_access(&console, &headers, ("/v1/cases", "GET"), "/console/queue").await {
            Ok(access) => access,
            Err(answer) => return answer,
        };
    let t = texts(lang);
    let escalated = query.state.as_deref() == Some("escalated");
    let drafts = query.state.as_deref() == Some("draft");
    let status = if escalated {
        CaseStatus::Escalated
    } else if drafts {
        CaseStatus::Draft
    } else {
        CaseStatus::AwaitingSecondVote
    };
    let bounds = (
        amount_bound(lang, query.min.as_deref()),
        amount_bound(lang, query.max.as_deref()),
    );
    let (min, max, filter_error) = match bounds {
        (Ok(min), Ok(max)) => (min, max, None),
        _ => (None, None, Some(t.amount_filter_invalid)),
    };
    let after = query
        .after
        .as_deref()
        .and_then(|a| a.parse::<CaseId>().ok());
    // Case ids are time-ordered (UUIDv7): by id is oldest first. The amount
    // filter narrows a page; the next page continues after its last case.
    let (cases, next) = match cases::cases_page(&console.ctx.commands(), status, after, PAGE).await
    {
        Ok(page) => page,
        Err(e) => return unavailable(&console, lang, &ApiError::from(e).detail),
    };
    let now = Utc::now();
    let shown: Vec<_> = cases
        .iter()
        .filter(|c| min.is_none_or(|min| c.amount.amount() >= min))
        .filter(|c| max.is_none_or(|max| c.amount.amount() <= max))
        .collect();
    let oldest = shown
        .iter()
        .map(|c| (now - c.updated_at).num_days())
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = shown
        .iter()
        .map(|c| {
            let age_days = (now - c.updated_at).num_days().max(0);
            QueueRow {
                id: c.id.to_string(),
                short_id: short(c.id),
                amount: lang.money(c.amount.amount(), c.amount.currency_code()),
                version: c.version,
                waiting_since: lang.date_time(c.updated_at),
                age_days,
                age_width: (age_days * 100 / oldest).clamp(2, 100),
            }
        })
        .collect();
    let keep = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("&{name}={}", urlencoding(v)))
            .unwrap_or_default()
    };
    let next = next.map(|after| {
        format!(
            "/console/queue?state={status}&after={after}{}{}",
            keep("min", &query.min),
            keep("max", &query.max)
        )
    });
    html(
        if filter_error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        &QueuePage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            escalated,
            heading: if escalated {
                t.escalated_tab
            } else if drafts {
                t.drafts_tab
            } else {
                t.queue
            },
            intro: if escalated {
                t.escalated_intro
            } else if drafts {
                t.drafts_intro
            } else {
                t.queue_intro
            },
            rows,
            min: query.min.unwrap_or_default(),
            max: query.max.unwrap_or_default(),
            filter_error,
            next,
        },
    )
}

/// A filter value in a link (only digits, separators and letters pass).
fn urlencoding(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ','))
        .collect()
}

/// The first vote of the current round, as the second voter sees it.
struct FirstVote {
    voter: String,
    decision: &'static str,
    version: i64,
    same_version: bool,
    rationale: String,
    cast_at: String,
}

struct FindingRow {
    rule: String,
    check: String,
    subject: String,
    severity: &'static str,
    limit: String,
    usage: String,
    headroom: String,
    /// Usage in percent of the limit, 0-100, for the bar (none for the
    /// liquidity floor, where more is better).
    used_percent: Option<i64>,
    over: bool,
}

struct Gate {
    outcome: &'static str,
    outcome_class: &'static str,
    large_exposure: bool,
    findings: Vec<FindingRow>,
}

/// The board resolution part of a case page (V11).
struct Board {
    reference: Option<String>,
    recorded: Option<String>,
    confirmed: Option<String>,
    stale: bool,
    can_record: bool,
    can_confirm: bool,
    own: bool,
}

fn board_of(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    case: &CreditCase,
    needed: bool,
) -> Option<Board> {
    if case.status.is_final() || !(needed || case.related_party || case.board_resolution.is_some())
    {
        return None;
    }
    let resolution = case.board_resolution.as_ref();
    let stale = resolution.is_some_and(|r| r.file_version != case.version);
    let unconfirmed = resolution.is_some_and(|r| r.confirmed_by.is_none()) && !stale;
    let own = resolution.is_some_and(|r| &r.recorded_by == live.actor.id());
    Some(Board {
        reference: resolution.map(|r| r.reference.clone()),
        recorded: resolution.map(|r| {
            format!(
                "{}, {} ({} {})",
                r.recorded_by,
                lang.date_time(r.recorded_at),
                lang.messages().version,
                r.file_version
            )
        }),
        confirmed: resolution.and_then(|r| {
            Some(format!(
                "{}, {}",
                r.confirmed_by.as_ref()?,
                lang.date_time(r.confirmed_at?)
            ))
        }),
        stale,
        can_record: (resolution.is_none() || stale)
            && permitted(console, live, "/v1/cases/{id}/board-resolution", "POST"),
        can_confirm: unconfirmed
            && !own
            && permitted(
                console,
                live,
                "/v1/cases/{id}/board-resolution/confirmation",
                "POST",
            ),
        own: unconfirmed && own,
    })
}

#[derive(Template)]
#[template(path = "backoffice_case.html")]
struct CasePage {
    board: Option<Board>,
    f: Frame,
    t: &'static Texts,
    c: CaseSheet,
    first: Option<FirstVote>,
    gate: Option<Gate>,
    can_second_vote: bool,
    can_return: bool,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    rationale: String,
    reason: String,
    /// Kind, credit, rating and conditions (L1, L4, L5).
    g: crate::granting::Panels,
    /// Documents and collateral (L2, L3).
    k: crate::credit_pages::Cards,
}

fn first_vote_of(lang: Lang, case: &CreditCase) -> Option<FirstVote> {
    let m: &Messages = lang.messages();
    case.current_votes()
        .find(|v| v.stage == VoteStage::First)
        .map(|v| FirstVote {
            voter: v.voter.staff_id.to_string(),
            decision: match v.decision {
                VoteDecision::Approve => m.approve,
                VoteDecision::Decline => m.decline,
            },
            version: v.file_version,
            same_version: v.file_version == case.version,
            rationale: v.rationale.clone(),
            cast_at: lang.date_time(v.cast_at),
        })
}

/// The gate's liquidity check: its figures are the LCR and its floor in
/// percent, not amounts.
const LIQUIDITY_CHECK: &str = "liquidity_floor";

fn gate_of(lang: Lang, t: &Texts, verdict: &RiskVerdict) -> Gate {
    let amount = |value: Option<Decimal>, check: &str| match value {
        // Liquidity is a ratio in percent, every other figure an amount.
        Some(v) if check == LIQUIDITY_CHECK => {
            format!("{} %", lang.money(v, "").trim_end())
        }
        Some(v) => lang.money(v, &verdict.currency),
        None => "–".to_owned(),
    };
    let findings = verdict
        .findings
        .iter()
        .map(|f| {
            let used_percent = match (f.limit, f.usage) {
                (Some(limit), Some(usage))
                    if limit > Decimal::ZERO && f.check != LIQUIDITY_CHECK =>
                {
                    let percent = (usage * Decimal::from(100) / limit).round();
                    Some(i64::try_from(percent).unwrap_or(100).clamp(0, 100))
                }
                _ => None,
            };
            FindingRow {
                rule: f.rule.to_string(),
                check: f.check.clone(),
                subject: f.subject.clone(),
                severity: f.severity.as_str(),
                limit: amount(f.limit, &f.check),
                usage: amount(f.usage, &f.check),
                headroom: amount(f.headroom, &f.check),
                used_percent,
                over: f.severity != Severity::Within,
            }
        })
        .collect();
    let (outcome, outcome_class) = match verdict.outcome {
        Severity::Within => (t.gate_within, "ok"),
        Severity::Soft => (t.gate_soft, "warn"),
        Severity::Hard => (t.gate_hard, "bad"),
    };
    Gate {
        outcome,
        outcome_class,
        large_exposure: verdict.large_exposure,
        findings,
    }
}

/// What a case page shows besides the case.
#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    rationale: String,
    reason: String,
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
    let case = match cases::read_case(&commands, id).await {
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
    let t = texts(lang);
    let open = matches!(
        case.status,
        CaseStatus::AwaitingSecondVote | CaseStatus::Escalated
    );
    // The gate matters while an approval can still come; a failure to
    // evaluate it is shown as what it means: an approval would be refused.
    let gate = if case.status == CaseStatus::AwaitingSecondVote {
        match risk::gate_preview(&commands, &case).await {
            Ok(verdict) => Some(gate_of(lang, t, &verdict)),
            Err(e) => {
                tracing::warn!(error = %e, case = %id, "the gate preview could not be evaluated");
                Some(Gate {
                    outcome: t.gate_unavailable,
                    outcome_class: "bad",
                    large_exposure: false,
                    findings: Vec::new(),
                })
            }
        }
    } else {
        None
    };
    let can_second_vote = case.status == CaseStatus::AwaitingSecondVote
        && permitted(console, live, "/v1/cases/{id}/second-vote", "POST");
    let can_return = open && permitted(console, live, "/v1/cases/{id}/return", "POST");
    let large_exposure = gate.as_ref().is_some_and(|g| g.large_exposure);
    let board = board_of(console, lang, live, &case, large_exposure);
    let g = crate::granting::panels(console, lang, live, &case, Utc::now()).await;
    let k = crate::credit_pages::cards(console, lang, live, &case).await;
    html(
        status,
        &CasePage {
            g,
            k,
            f: Frame::new(console, lang, Some(live)),
            t,
            board,
            first: first_vote_of(lang, &case),
            c: sheet(lang, &case, borrower, false),
            gate,
            can_second_vote,
            can_return,
            notice: shown.notice,
            refusal: shown.refusal,
            rationale: shown.rationale,
            reason: shown.reason,
        },
    )
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
        return not_found(&console, lang, &live);
    };
    let t = texts(lang);
    let notice = match done.done.as_deref() {
        Some("vote") => Some(t.decided),
        Some("returned") => Some(t.returned),
        Some("resolution") => Some(t.board_recorded),
        Some("confirmed") => Some(t.board_confirmed),
        Some("rated") => Some(crate::granting::texts(lang).rating_done),
        Some("signed_off") => Some(crate::granting::texts(lang).signed_off_done),
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

/// The checks every posted form of a case passes: a live session, the CSRF
/// token and Origin, the permission of the API route, a well-formed id.
async fn case_form(
    console: &Console,
    headers: &HeaderMap,
    id: &str,
    csrf: Option<&str>,
    api_route: &str,
    route: &str,
) -> Result<(LiveSession, Lang, CaseId), Response> {
    let (live, lang) = form_access(
        console,
        headers,
        csrf,
        (api_route, "POST"),
        route,
        id.parse().ok(),
    )
    .await?;
    let Ok(id) = id.parse::<CaseId>() else {
        return Err(not_found(console, lang, &live));
    };
    Ok((live, lang, id))
}

async fn second_vote(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<crate::casework::VoteForm>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}/second-vote";
    let (live, lang, id) = match case_form(
        &console,
        &headers,
        &id,
        form.csrf.as_deref(),
        "/v1/cases/{id}/second-vote",
        ROUTE,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
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
                VoteStage::Second,
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
            render_case(
                &console,
                lang,
                &live,
                id,
                response.status(),
                Shown {
                    rationale: form.rationale,
                    ..Shown::default()
                },
            )
            .await
        }
        Err(e) => {
            refused(
                &console,
                lang,
                &live,
                ROUTE,
                id,
                &e,
                form.rationale,
                String::new(),
            )
            .await
        }
    }
}

/// The case page again with a command's refusal, audited, and what the
/// person typed kept.
#[allow(clippy::too_many_arguments)]
async fn refused(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    route: &str,
    id: CaseId,
    error: &ApiError,
    rationale: String,
    reason: String,
) -> Response {
    if let Err(audit) = audit_command_refusal(console, live, route, error, Some(id)).await {
        return unavailable(console, lang, &audit.detail);
    }
    render_case(
        console,
        lang,
        live,
        id,
        error.status(),
        Shown {
            refusal: Some(Refusal::of(lang, error)),
            rationale,
            reason,
            ..Shown::default()
        },
    )
    .await
}

#[derive(Deserialize)]
struct ReturnForm {
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
}

async fn return_case(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReturnForm>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}/return";
    let (live, lang, id) = match case_form(
        &console,
        &headers,
        &id,
        form.csrf.as_deref(),
        "/v1/cases/{id}/return",
        ROUTE,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let principal = Principal(live.actor.clone());
    let (commands, actor, reason) = (
        console.ctx.commands(),
        live.actor.clone(),
        form.reason.clone(),
    );
    let fingerprint = serde_json::to_vec(&(id, &form.reason)).unwrap_or_default();
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/cases/{id}/return",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::return_case(&commands, tx, &actor, id, &reason).await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{id}?done=returned")).into_response(),
        Err(e) => {
            refused(
                &console,
                lang,
                &live,
                ROUTE,
                id,
                &e,
                String::new(),
                form.reason,
            )
            .await
        }
    }
}

/// Every kind of limit is decided by back office (R1, R8), as the API's
/// limit routes of this service decide them.
const LIMIT_KINDS: &[LimitKind] = &[
    LimitKind::Borrower,
    LimitKind::Group,
    LimitKind::Sector,
    LimitKind::Country,
];

struct LimitRow {
    id: String,
    subject: String,
    amount: String,
    tolerance: String,
    reason: String,
    proposed_by: String,
    proposed_at: String,
}

#[derive(Template)]
#[template(path = "backoffice_limits.html")]
struct LimitInbox {
    f: Frame,
    t: &'static Texts,
    rows: Vec<LimitRow>,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    can_decide: bool,
    next: Option<String>,
}

#[derive(Deserialize)]
struct InboxQuery {
    done: Option<String>,
    after: Option<uuid::Uuid>,
}

async fn limit_inbox(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/limits/proposals", "GET"),
        "/console/limits",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let notice = match query.done.as_deref() {
        Some("approved") => Some(t.limit_approved),
        Some("rejected") => Some(t.limit_rejected),
        _ => None,
    };
    render_inbox(
        &console,
        lang,
        &live,
        StatusCode::OK,
        notice,
        None,
        query.after,
    )
    .await
}

async fn render_inbox(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    after: Option<uuid::Uuid>,
) -> Response {
    let commands = console.ctx.commands();
    let versions = match limits::limit_versions(
        &commands,
        Some(LimitStatus::Pending),
        Some(LIMIT_KINDS),
        after,
        PAGE,
    )
    .await
    {
        Ok(versions) => versions,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let next = (versions.len() == PAGE as usize)
        .then(|| {
            versions
                .last()
                .map(|v| format!("/console/limits?after={}", v.id))
        })
        .flatten();
    let mut rows = Vec::with_capacity(versions.len());
    for v in &versions {
        // A borrower is named, not only numbered: who is the limit for?
        let subject = match &v.subject {
            LimitSubject::Borrower(id) => match market::borrower(&commands, *id).await {
                Ok(b) => format!(
                    "{} · {} ({}, {})",
                    v.subject.kind().as_str(),
                    b.name,
                    b.country,
                    b.sector
                ),
                Err(_) => v.subject.to_string(),
            },
            other => other.to_string(),
        };
        rows.push(LimitRow {
            id: v.id.to_string(),
            subject,
            amount: lang.money(v.amount, creditops_risk::REPORTING_CURRENCY),
            tolerance: format!("{} %", v.tolerance_percent.normalize()),
            reason: v.reason.clone(),
            proposed_by: v.proposed_by.to_string(),
            proposed_at: lang.date_time(v.proposed_at),
        });
    }
    html(
        status,
        &LimitInbox {
            f: Frame::new(console, lang, Some(live)),
            t: texts(lang),
            rows,
            notice,
            refusal,
            can_decide: permitted(console, live, "/v1/limits/{id}/approve", "POST"),
            next,
        },
    )
}

async fn approve_limit(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<crate::pages::CsrfOnly>,
) -> Response {
    decide_limit(console, headers, id, form, Verdict::Approve).await
}

async fn reject_limit(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<crate::pages::CsrfOnly>,
) -> Response {
    decide_limit(console, headers, id, form, Verdict::Reject).await
}

async fn decide_limit(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: crate::pages::CsrfOnly,
    verdict: Verdict,
) -> Response {
    let (api_route, route, done) = match verdict {
        Verdict::Approve => (
            "/v1/limits/{id}/approve",
            "/console/limits/{id}/approve",
            "approved",
        ),
        Verdict::Reject => (
            "/v1/limits/{id}/reject",
            "/console/limits/{id}/reject",
            "rejected",
        ),
    };
    let live = match signed_in(&console, &headers).await {
        Ok(live) => live,
        Err(answer) => return answer,
    };
    let lang = lang_of(&headers);
    if let Err(refused) = guard_form(
        &console,
        &headers,
        Some(&live.session.csrf_token),
        form.csrf.as_deref(),
        Some(live.actor.id()),
        route,
        None,
    )
    .await
    {
        return refused;
    }
    if !permitted(&console, &live, api_route, "POST") {
        return forbidden(&console, lang, &live, route).await;
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return not_found(&console, lang, &live);
    };
    let principal = Principal(live.actor.clone());
    match routes::decide_limit_version(
        console.ctx.clone(),
        principal,
        IdempotencyKey(None),
        id,
        verdict,
        LIMIT_KINDS,
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/console/limits?done={done}")).into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, route, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            render_inbox(
                &console,
                lang,
                &live,
                e.status(),
                None,
                Some(Refusal::of(lang, &e)),
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct ResolutionForm {
    csrf: Option<String>,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    version: String,
}

async fn record_resolution(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResolutionForm>,
) -> Response {
    resolution(console, headers, id, form, false).await
}

async fn confirm_resolution(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResolutionForm>,
) -> Response {
    resolution(console, headers, id, form, true).await
}

/// Records (or, `confirm`, confirms) the board resolution on the version
/// shown, as the API's routes do (V11).
async fn resolution(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: ResolutionForm,
    confirm: bool,
) -> Response {
    let (api_route, route, operation, done) = if confirm {
        (
            "/v1/cases/{id}/board-resolution/confirmation",
            "/console/cases/{id}/board-resolution/confirmation",
            "POST /v1/cases/{id}/board-resolution/confirmation",
            "confirmed",
        )
    } else {
        (
            "/v1/cases/{id}/board-resolution",
            "/console/cases/{id}/board-resolution",
            "POST /v1/cases/{id}/board-resolution",
            "resolution",
        )
    };
    let (live, lang, id) = match case_form(
        &console,
        &headers,
        &id,
        form.csrf.as_deref(),
        api_route,
        route,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let version = form.version.trim().parse::<i64>().unwrap_or(0);
    let reference = form.reference.clone();
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let fingerprint = serde_json::to_vec(&(id, &reference, version)).unwrap_or_default();
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        operation,
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = if confirm {
                    cases::confirm_board_resolution(&commands, tx, &actor, id, version).await?
                } else {
                    cases::record_board_resolution(&commands, tx, &actor, id, &reference, version)
                        .await?
                };
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{id}?done={done}")).into_response(),
        Err(e) => {
            refused(
                &console,
                lang,
                &live,
                route,
                id,
                &e,
                String::new(),
                String::new(),
            )
            .await
        }
    }
}
