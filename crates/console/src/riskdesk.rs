//! The risk controllers' desk on the risk-control service (internal audit
//! may read it, as the service's policy allows): the limits in force with
//! their usage and headroom, the pending limit proposals, the proposal of a
//! limit, Tier 1 capital and the liquidity position with the LCR against
//! its floor, and the four-eyes proposals of both figures, which a second
//! risk controller decides from the page. Each page is allowed exactly when
//! the API route it stands for is, and runs the API's command.

use crate::Console;
use crate::casework::{
    Refusal, audit_command_refusal, forbidden, form_access, page_access, permitted,
};
use crate::i18n::Lang;
use crate::pages::{Frame, NavLink, guard_form, html, lang_of, message, signed_in, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use creditops_commands::{inputs, limits, proposals, reports};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{ChangeProposal, InputChange, ProposalStatus};
use creditops_domain::{Role, Severity};
use creditops_http::{ApiError, CommandOutcome, IdempotencyKey, Principal, run_command};
use creditops_risk::{LimitKind, LimitStatus, LimitSubject, REPORTING_CURRENCY};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

mod import;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "risk" {
        return Router::new();
    }
    Router::new()
        .route("/console/limits", get(limits_page).post(propose_limit))
        .route("/console/limits/new", get(new_limit_page))
        .route("/console/liquidity", get(liquidity_page))
        .route("/console/capital", post(propose_capital))
        .route("/console/liquidity/propose", post(propose_liquidity))
        .route("/console/proposals/{id}/approve", post(approve))
        .route("/console/proposals/{id}/reject", post(reject))
        .route(
            "/console/import",
            get(import::import_form).post(import::import),
        )
        .route(
            "/console/import/file",
            axum::routing::post(import::import_file),
        )
        .route("/console/exposure", get(exposure_page))
        .route("/console/alerts", get(alerts_page))
        .route("/console/reports/breaches", get(breach_report))
        .route("/console/reports/{id}", get(exposure_report))
}

/// The risk desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let t = texts(lang);
    vec![
        NavLink::to("/console/limits", t.limits),
        NavLink::to("/console/limits/new", t.propose_limit).needing("/v1/limits", "POST"),
        NavLink::to("/console/liquidity", t.liquidity_nav),
        NavLink::to("/console/exposure", t.exposure),
        NavLink::to("/console/alerts", t.alerts),
        NavLink::to("/console/import", t.import).needing("/v1/exposures/import", "POST"),
        crate::monitoring::nav(lang),
    ]
}

/// This desk's texts in one language.
pub(crate) struct Texts {
    limits: &'static str,
    limits_intro: &'static str,
    no_limits: &'static str,
    kind: &'static str,
    key: &'static str,
    limit: &'static str,
    usage: &'static str,
    headroom: &'static str,
    utilisation: &'static str,
    state: &'static str,
    within: &'static str,
    soft: &'static str,
    hard: &'static str,
    no_usage: &'static str,
    pending_limits: &'static str,
    no_pending_limits: &'static str,
    proposed_by: &'static str,
    proposed_at: &'static str,
    reason: &'static str,
    waiting_back_office: &'static str,
    propose_limit: &'static str,
    propose_limit_intro: &'static str,
    amount: &'static str,
    amount_hint: &'static str,
    tolerance: &'static str,
    tolerance_hint: &'static str,
    submit_limit: &'static str,
    kind_borrower: &'static str,
    kind_group: &'static str,
    kind_sector: &'static str,
    kind_country: &'static str,
    key_hint: &'static str,
    limit_proposed: &'static str,
    form_has_errors: &'static str,
    rule: &'static str,
    err_kind: &'static str,
    err_key_borrower: &'static str,
    err_key_group: &'static str,
    err_key_sector: &'static str,
    err_key_country: &'static str,
    err_amount: &'static str,
    err_amount_empty: &'static str,
    err_reason: &'static str,
    err_percent: &'static str,
    err_tolerance: &'static str,
    err_floor: &'static str,
    err_positive: &'static str,
    liquidity_nav: &'static str,
    liquidity_title: &'static str,
    capital: &'static str,
    tier1: &'static str,
    no_capital: &'static str,
    version: &'static str,
    recorded: &'static str,
    liquidity: &'static str,
    no_liquidity: &'static str,
    hqla: &'static str,
    outflows: &'static str,
    inflows: &'static str,
    committed: &'static str,
    lcr: &'static str,
    floor: &'static str,
    floor_short: &'static str,
    meets_floor: &'static str,
    below_floor: &'static str,
    lcr_undefined: &'static str,
    propose_capital: &'static str,
    propose_liquidity: &'static str,
    four_eyes_note: &'static str,
    pending_figures: &'static str,
    no_pending_figures: &'static str,
    proposed_change: &'static str,
    decision: &'static str,
    own_proposal: &'static str,
    approve: &'static str,
    reject: &'static str,
    capital_proposed: &'static str,
    liquidity_proposed: &'static str,
    approved: &'static str,
    rejected: &'static str,
    own_refused: &'static str,
    read_only: &'static str,
    exposure: &'static str,
    exposure_intro: &'static str,
    by_sector: &'static str,
    by_country: &'static str,
    sector: &'static str,
    country: &'static str,
    exposure_total: &'static str,
    share: &'static str,
    no_exposure: &'static str,
    alerts: &'static str,
    alerts_intro: &'static str,
    no_alerts: &'static str,
    detected: &'static str,
    check: &'static str,
    over_by: &'static str,
    severity: &'static str,
    cause: &'static str,
    owner: &'static str,
    next_page: &'static str,
    reports: &'static str,
    breach_report: &'static str,
    breach_report_date: &'static str,
    download_csv: &'static str,
    large_exposures: &'static str,
    million_loans: &'static str,
    section_18: &'static str,
    err_date: &'static str,
    import: &'static str,
    import_intro: &'static str,
    import_format: &'static str,
    upload_heading: &'static str,
    upload_file: &'static str,
    upload_submit: &'static str,
    upload_unreadable: &'static str,
    format_csv: &'static str,
    format_jsonl: &'static str,
    balances: &'static str,
    import_submit: &'static str,
    import_problems: &'static str,
    row: &'static str,
    field: &'static str,
    problem: &'static str,
    header_row: &'static str,
    imported: &'static str,
    rows: &'static str,
    inserted: &'static str,
    updated: &'static str,
    unchanged: &'static str,
    new_breaches: &'static str,
}

static DE: Texts = Texts {
    limits: "Limite",
    limits_intro: "Alle Limite in Kraft mit ihrer Auslastung heute und dem freien Betrag.",
    no_limits: "Es ist noch kein Limit in Kraft.",
    kind: "Art",
    key: "Schlüssel",
    limit: "Limit",
    usage: "Auslastung",
    headroom: "Frei",
    utilisation: "Auslastung in Prozent",
    state: "Stand",
    within: "im Limit",
    soft: "in der Toleranz überschritten",
    hard: "überschritten",
    no_usage: "keine",
    pending_limits: "Vorgeschlagene Limite",
    no_pending_limits: "Kein Limitvorschlag wartet.",
    proposed_by: "Vorgeschlagen von",
    proposed_at: "Vorgeschlagen am",
    reason: "Begründung",
    waiting_back_office: "wartet auf die Genehmigung durch die Marktfolge",
    propose_limit: "Limit vorschlagen",
    propose_limit_intro: "Ein Limit gilt erst, wenn die Marktfolge es genehmigt (Vier-Augen-Prinzip, R8).",
    amount: "Betrag (EUR)",
    amount_hint: "z. B. 1.000.000,00",
    tolerance: "Toleranz (%, freiwillig)",
    tolerance_hint: "Überschreitungen bis zu diesem Prozentsatz über dem Limit sind weich (Eskalation, R4); ohne Angabe 0.",
    submit_limit: "Limit vorschlagen",
    kind_borrower: "Kreditnehmer",
    kind_group: "Gruppe verbundener Kunden",
    kind_sector: "Branche (NACE)",
    kind_country: "Land",
    key_hint: "Kreditnehmer-ID, Gruppen-ID, NACE-Code (z. B. C oder C25) oder Ländercode (z. B. DE).",
    limit_proposed: "Das Limit ist vorgeschlagen und wartet auf die Genehmigung durch die Marktfolge.",
    form_has_errors: "Bitte prüfen Sie die markierten Felder.",
    rule: "Regel",
    err_kind: "Bitte eine Art wählen: Kreditnehmer, Gruppe, Branche oder Land.",
    err_key_borrower: "Bitte die ID eines registrierten Kreditnehmers angeben.",
    err_key_group: "Bitte die ID einer Gruppe verbundener Kunden angeben.",
    err_key_sector: "Bitte einen NACE-Code angeben, z. B. C oder C25.",
    err_key_country: "Bitte einen Ländercode nach ISO 3166-1 angeben, z. B. DE.",
    err_amount: "Bitte einen Betrag in EUR mit höchstens zwei Nachkommastellen angeben, z. B. 1.000.000,00.",
    err_amount_empty: "Bitte einen Betrag angeben, z. B. 1.000.000,00.",
    err_reason: "Bitte eine Begründung angeben (höchstens 1000 Zeichen).",
    err_tolerance: "Bitte einen Prozentwert zwischen 0 und 100 mit höchstens vier Nachkommastellen angeben, z. B. 10.",
    err_percent: "Bitte einen Prozentwert mit höchstens vier Nachkommastellen angeben, z. B. 110.",
    err_floor: "Die Untergrenze darf nicht unter dem aufsichtlichen Minimum von 100 % und nicht über 1000 % liegen.",
    err_positive: "Der Betrag muss größer als null sein.",
    liquidity_nav: "Liquidität und Kapital",
    liquidity_title: "Liquidität und Kernkapital",
    capital: "Kernkapital (Tier 1)",
    tier1: "Kernkapital (EUR)",
    no_capital: "Es ist kein Kernkapital erfasst.",
    version: "Version",
    recorded: "Erfasst",
    liquidity: "Liquidität",
    no_liquidity: "Es ist keine Liquiditätsposition erfasst.",
    hqla: "Liquide Aktiva (HQLA, EUR)",
    outflows: "Abflüsse in 30 Tagen (EUR)",
    inflows: "Zuflüsse in 30 Tagen (EUR)",
    committed: "Seither zugesagt oder ausgezahlt",
    lcr: "LCR",
    floor: "Untergrenze (%)",
    floor_short: "Untergrenze",
    meets_floor: "hält die Untergrenze ein",
    below_floor: "unter der Untergrenze",
    lcr_undefined: "ohne Nettoabflüsse nicht definiert",
    propose_capital: "Kernkapital vorschlagen",
    propose_liquidity: "Liquiditätsposition vorschlagen",
    four_eyes_note: "Eine zweite Person aus dem Risikocontrolling genehmigt oder verwirft den Vorschlag; erst dann gilt die Zahl.",
    pending_figures: "Vorschläge, die auf eine zweite Person warten",
    no_pending_figures: "Kein Vorschlag wartet.",
    proposed_change: "Vorschlag",
    decision: "Entscheidung",
    own_proposal: "Ihr Vorschlag: eine andere Person aus dem Risikocontrolling entscheidet",
    approve: "Genehmigen",
    reject: "Verwerfen",
    capital_proposed: "Das Kernkapital ist vorgeschlagen und wartet auf eine zweite Person aus dem Risikocontrolling.",
    liquidity_proposed: "Die Liquiditätsposition ist vorgeschlagen und wartet auf eine zweite Person aus dem Risikocontrolling.",
    approved: "Der Vorschlag ist genehmigt und gilt jetzt; alle Limite wurden neu bewertet.",
    rejected: "Der Vorschlag ist verworfen.",
    own_refused: "Sie haben diesen Vorschlag selbst gemacht; eine andere Person aus dem Risikocontrolling muss ihn entscheiden.",
    read_only: "Sie können hier lesen; Vorschläge machen und entscheiden nur Risikocontroller.",
    exposure: "Engagement",
    exposure_intro: "Das Engagement (zugesagt und ausstehend) nach Branche und nach Land, heute.",
    by_sector: "Nach Branche (NACE-Abschnitt)",
    by_country: "Nach Land",
    sector: "Branche",
    country: "Land",
    exposure_total: "Engagement",
    share: "Anteil",
    no_exposure: "Es besteht noch kein Engagement.",
    alerts: "Warnungen und Berichte",
    alerts_intro: "Offene Limitüberschreitungen, in der Reihenfolge ihrer Erkennung (R7).",
    no_alerts: "Keine offene Limitüberschreitung.",
    detected: "Erkannt",
    check: "Prüfung",
    over_by: "Überschreitung",
    severity: "Schwere",
    cause: "Auslöser",
    owner: "Zuständig",
    next_page: "Nächste Seite",
    reports: "Berichte als CSV",
    breach_report: "Tagesbericht der Limitüberschreitungen",
    breach_report_date: "Tag (JJJJ-MM-TT, UTC)",
    download_csv: "CSV herunterladen",
    large_exposures: "Großkredite (Art. 392 CRR)",
    million_loans: "Millionenkredite (§ 14 KWG)",
    section_18: "Offenlegung nach § 18 KWG",
    err_date: "Bitte einen Tag wie 2026-11-23 angeben.",
    import: "Import",
    import_intro: "Ausstehende Salden aus dem Kernbankensystem (R2): CSV mit der Kopfzeile source_id,borrower_id,amount,as_of oder JSON-Zeilen. Alles oder nichts: bei einer fehlerhaften Zeile wird nichts übernommen; ein erneuter Import derselben source_id aktualisiert den Saldo.",
    import_format: "Format",
    upload_heading: "Oder eine Datei hochladen",
    upload_file: "Datei (CSV oder JSON Lines, höchstens so groß wie eine API-Anfrage)",
    upload_submit: "Datei importieren",
    upload_unreadable: "Die hochgeladene Datei konnte nicht gelesen werden (keine Textdatei oder keine Datei gewählt); es wurde nichts importiert.",
    format_csv: "CSV",
    format_jsonl: "JSON-Zeilen",
    balances: "Salden (Inhalt der Datei)",
    import_submit: "Importieren",
    import_problems: "Nichts wurde importiert. Diese Zeilen sind fehlerhaft:",
    row: "Zeile",
    field: "Feld",
    problem: "Problem",
    header_row: "Kopfzeile",
    imported: "Der Import ist übernommen.",
    rows: "Zeilen",
    inserted: "neu",
    updated: "aktualisiert",
    unchanged: "unverändert",
    new_breaches: "Dadurch erkannte Limitüberschreitungen",
};

static EN: Texts = Texts {
    limits: "Limits",
    limits_intro: "Every limit in force with its usage today and its headroom.",
    no_limits: "No limit is in force yet.",
    kind: "Kind",
    key: "Key",
    limit: "Limit",
    usage: "Usage",
    headroom: "Headroom",
    utilisation: "Usage in percent",
    state: "State",
    within: "within",
    soft: "over, within tolerance",
    hard: "over the limit",
    no_usage: "none",
    pending_limits: "Proposed limits",
    no_pending_limits: "No limit proposal is waiting.",
    proposed_by: "Proposed by",
    proposed_at: "Proposed on",
    reason: "Reason",
    waiting_back_office: "waiting for approval by back office",
    propose_limit: "Propose a limit",
    propose_limit_intro: "A limit takes effect only when back office approves it (four eyes, R8).",
    amount: "Amount (EUR)",
    amount_hint: "e.g. 1,000,000.00",
    tolerance: "Tolerance (%, optional)",
    tolerance_hint: "Usage up to this percentage above the limit is a soft breach (escalation, R4); 0 when left empty.",
    submit_limit: "Propose the limit",
    kind_borrower: "Borrower",
    kind_group: "Group of connected clients",
    kind_sector: "Sector (NACE)",
    kind_country: "Country",
    key_hint: "Borrower id, group id, NACE code (e.g. C or C25) or country code (e.g. DE).",
    limit_proposed: "The limit is proposed and is waiting for approval by back office.",
    form_has_errors: "Please check the marked fields.",
    rule: "rule",
    err_kind: "Choose a kind: borrower, group, sector or country.",
    err_key_borrower: "Enter the id of a registered borrower.",
    err_key_group: "Enter the id of a group of connected clients.",
    err_key_sector: "Enter a NACE code, e.g. C or C25.",
    err_key_country: "Enter an ISO 3166-1 country code, e.g. DE.",
    err_amount: "Enter an amount in EUR with at most two decimals, e.g. 1,000,000.00.",
    err_amount_empty: "Enter an amount, e.g. 1,000,000.00.",
    err_reason: "Enter a reason (at most 1000 characters).",
    err_tolerance: "Enter a percentage between 0 and 100 with at most four decimals, e.g. 10.",
    err_percent: "Enter a percentage with at most four decimals, e.g. 110.",
    err_floor: "The floor may not be below the regulatory minimum of 100 % nor above 1000 %.",
    err_positive: "The amount must be greater than zero.",
    liquidity_nav: "Liquidity and capital",
    liquidity_title: "Liquidity and Tier 1 capital",
    capital: "Tier 1 capital",
    tier1: "Tier 1 capital (EUR)",
    no_capital: "No Tier 1 capital is on record.",
    version: "Version",
    recorded: "Recorded",
    liquidity: "Liquidity",
    no_liquidity: "No liquidity position is on record.",
    hqla: "High-quality liquid assets (EUR)",
    outflows: "Outflows over 30 days (EUR)",
    inflows: "Inflows over 30 days (EUR)",
    committed: "Committed or paid out since",
    lcr: "LCR",
    floor: "Floor (%)",
    floor_short: "floor",
    meets_floor: "meets the floor",
    below_floor: "below the floor",
    lcr_undefined: "undefined without net outflows",
    propose_capital: "Propose Tier 1 capital",
    propose_liquidity: "Propose a liquidity position",
    four_eyes_note: "A second risk controller approves or rejects the proposal; only then does the figure apply.",
    pending_figures: "Proposals waiting for a second person",
    no_pending_figures: "No proposal is waiting.",
    proposed_change: "Proposal",
    decision: "Decision",
    own_proposal: "Your proposal: another risk controller decides it",
    approve: "Approve",
    reject: "Reject",
    capital_proposed: "Tier 1 capital is proposed and is waiting for a second risk controller.",
    liquidity_proposed: "The liquidity position is proposed and is waiting for a second risk controller.",
    approved: "The proposal is approved and applies now; every limit was evaluated again.",
    rejected: "The proposal is rejected.",
    own_refused: "You made this proposal yourself, so another risk controller must decide it.",
    read_only: "You may read here; only risk controllers propose and decide.",
    exposure: "Exposure",
    exposure_intro: "Exposure (reserved and outstanding) by sector and by country, today.",
    by_sector: "By sector (NACE section)",
    by_country: "By country",
    sector: "Sector",
    country: "Country",
    exposure_total: "Exposure",
    share: "Share",
    no_exposure: "There is no exposure yet.",
    alerts: "Alerts and reports",
    alerts_intro: "Open limit breaches in the order they were detected (R7).",
    no_alerts: "No limit breach is open.",
    detected: "Detected",
    check: "Check",
    over_by: "Over by",
    severity: "Severity",
    cause: "Cause",
    owner: "Owner",
    next_page: "Next page",
    reports: "Reports as CSV",
    breach_report: "Daily breach report",
    breach_report_date: "Day (YYYY-MM-DD, UTC)",
    download_csv: "Download CSV",
    large_exposures: "Large exposures (CRR Art. 392)",
    million_loans: "Million loans (KWG section 14)",
    section_18: "KWG section 18 disclosure",
    err_date: "Enter a day such as 2026-11-23.",
    import: "Import",
    import_intro: "Outstanding balances from core banking (R2): CSV with the header source_id,borrower_id,amount,as_of, or JSON lines. All or nothing: with one bad row nothing is applied; importing a source_id again updates its balance.",
    import_format: "Format",
    upload_heading: "Or upload a file",
    upload_file: "File (CSV or JSON lines, at most the size of an API request)",
    upload_submit: "Import the file",
    upload_unreadable: "The uploaded file could not be read (not a text file, or no file chosen); nothing was imported.",
    format_csv: "CSV",
    format_jsonl: "JSON lines",
    balances: "Balances (the file's content)",
    import_submit: "Import",
    import_problems: "Nothing was imported. These rows are wrong:",
    row: "Row",
    field: "Field",
    problem: "Problem",
    header_row: "header",
    imported: "The import is applied.",
    rows: "Rows",
    inserted: "new",
    updated: "updated",
    unchanged: "unchanged",
    new_breaches: "Limit breaches it caused",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// A percentage as the language writes it: `200,00 %` or `200.00 %`.
fn percent(lang: Lang, value: Decimal) -> String {
    let text = format!("{:.2}", value.round_dp(2));
    match lang {
        Lang::De => format!("{} %", text.replace('.', ",")),
        Lang::En => format!("{text} %"),
    }
}

pub(crate) fn money(lang: Lang, amount: Decimal) -> String {
    lang.money(amount, REPORTING_CURRENCY)
}

use creditops_commands::balance_rows::MAX_AMOUNT;

/// An amount in the reporting currency as typed: non-negative, at most two
/// decimals, bounded as the API bounds it.
fn typed_amount(lang: Lang, typed: &str) -> Option<Decimal> {
    let plain = lang.plain_number(typed)?;
    let value = Decimal::from_str_exact(&plain).ok()?.normalize();
    (value.scale() <= 2 && value <= Decimal::from(MAX_AMOUNT)).then_some(value)
}

/// A percentage as typed, between 0 and `max`, at most four decimals.
fn typed_percent(lang: Lang, typed: &str, max: Decimal) -> Option<Decimal> {
    let plain = lang.plain_number(typed.trim().trim_end_matches('%'))?;
    let value = Decimal::from_str_exact(&plain).ok()?.normalize();
    (value.scale() <= 4 && value <= max).then_some(value)
}

/// A form field with its value and its problem, if any.
pub(crate) struct Field {
    name: &'static str,
    label: &'static str,
    value: String,
    error: Option<String>,
}

fn field(
    name: &'static str,
    label: &'static str,
    value: &str,
    errors: &[(&'static str, String)],
) -> Field {
    Field {
        name,
        label,
        value: value.to_owned(),
        error: errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.clone()),
    }
}

/// A command's refusal with its rule, as a line the person reads.
pub(crate) fn refusal_text(lang: Lang, error: &ApiError) -> String {
    let t = texts(lang);
    let refusal = Refusal::of(lang, error);
    let text = if error.status() == StatusCode::FORBIDDEN
        && error.detail.contains("proposer cannot decide")
    {
        format!("{} ({})", t.own_refused, error.detail)
    } else {
        refusal.text
    };
    match refusal.rule {
        Some(rule) => format!("{text} ({} {rule})", t.rule),
        None => text,
    }
}

/// Audits a command's refusal, then renders what `page` makes of it.
async fn refused(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    route: &str,
    error: &ApiError,
) -> Result<String, Response> {
    if let Err(audit) = audit_command_refusal(console, live, route, error, None).await {
        return Err(unavailable(console, lang, &audit.detail));
    }
    if error.status().is_server_error() {
        return Err(unavailable(console, lang, &error.detail));
    }
    Ok(refusal_text(lang, error))
}

// ---------------------------------------------------------------- limits

struct LimitRow {
    kind: &'static str,
    key: String,
    amount: String,
    usage: String,
    headroom: String,
    /// Usage as a share of the limit, 0-100, for the bar.
    bar: String,
    /// The share as text (may exceed 100).
    share: String,
    state: &'static str,
    class: &'static str,
}

struct PendingLimit {
    kind: &'static str,
    key: String,
    amount: String,
    proposed_by: String,
    proposed_at: String,
    reason: String,
}

pub(crate) struct KindOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "risk_limits.html")]
struct LimitsPage {
    f: Frame,
    t: &'static Texts,
    notice: Option<&'static str>,
    rows: Vec<LimitRow>,
    pending: Vec<PendingLimit>,
    may_read_pending: bool,
    may_propose: bool,
    kinds: Vec<KindOption>,
    fields: Vec<Field>,
    errors: bool,
    refusal: Option<String>,
}

#[derive(Template)]
#[template(path = "risk_limit_new.html")]
struct NewLimitPage {
    f: Frame,
    t: &'static Texts,
    kinds: Vec<KindOption>,
    fields: Vec<Field>,
    errors: bool,
    refusal: Option<String>,
}

fn kind_label(t: &Texts, kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::Borrower => t.kind_borrower,
        LimitKind::Group => t.kind_group,
        LimitKind::Sector => t.kind_sector,
        LimitKind::Country => t.kind_country,
    }
}

const KINDS: [LimitKind; 4] = [
    LimitKind::Borrower,
    LimitKind::Group,
    LimitKind::Sector,
    LimitKind::Country,
];

fn kind_options(t: &Texts, chosen: &str) -> Vec<KindOption> {
    KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| KindOption {
            value: k.as_str(),
            label: kind_label(t, *k),
            selected: k.as_str() == chosen
                || (i == 0 && KINDS.iter().all(|k| k.as_str() != chosen)),
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct LimitForm {
    csrf: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    tolerance_percent: String,
    #[serde(default)]
    reason: String,
}

fn limit_fields(t: &Texts, form: &LimitForm, errors: &[(&'static str, String)]) -> Vec<Field> {
    vec![
        field("kind", t.kind, &form.kind, errors),
        field("key", t.key, &form.key, errors),
        field("amount", t.amount, &form.amount, errors),
        field(
            "tolerance_percent",
            t.tolerance,
            &form.tolerance_percent,
            errors,
        ),
        field("reason", t.reason, &form.reason, errors),
    ]
}

/// The limit proposal of the form, or each field's problem.
fn checked_limit(
    lang: Lang,
    form: &LimitForm,
) -> Result<limits::LimitProposal, Vec<(&'static str, String)>> {
    let t = texts(lang);
    let mut errors = Vec::new();
    let kind = form.kind.trim().parse::<LimitKind>().ok();
    let subject = match kind {
        None => {
            errors.push(("kind", t.err_kind.to_owned()));
            None
        }
        Some(kind) => match LimitSubject::parse(kind, form.key.trim()) {
            Ok(subject) => Some(subject),
            Err(_) => {
                let text = match kind {
                    LimitKind::Borrower => t.err_key_borrower,
                    LimitKind::Group => t.err_key_group,
                    LimitKind::Sector => t.err_key_sector,
                    LimitKind::Country => t.err_key_country,
                };
                errors.push(("key", text.to_owned()));
                None
            }
        },
    };
    let amount = if form.amount.trim().is_empty() {
        errors.push(("amount", t.err_amount_empty.to_owned()));
        None
    } else {
        let amount = typed_amount(lang, &form.amount);
        if amount.is_none() {
            errors.push(("amount", t.err_amount.to_owned()));
        }
        amount
    };
    let tolerance = if form.tolerance_percent.trim().is_empty() {
        Some(Decimal::ZERO)
    } else {
        let tolerance = typed_percent(lang, &form.tolerance_percent, Decimal::ONE_HUNDRED);
        if tolerance.is_none() {
            errors.push(("tolerance_percent", t.err_tolerance.to_owned()));
        }
        tolerance
    };
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        errors.push(("reason", t.err_reason.to_owned()));
    }
    match (subject, amount, tolerance) {
        (Some(subject), Some(amount), Some(tolerance)) if errors.is_empty() => {
            Ok(limits::LimitProposal {
                subject,
                amount,
                tolerance_percent: tolerance,
                reason: reason.to_owned(),
            })
        }
        _ => Err(errors),
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn limits_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(done): Query<DoneQuery>,
) -> Response {
    let (live, lang) =
        match page_access(&console, &headers, ("/v1/limits", "GET"), "/console/limits").await {
            Ok(access) => access,
            Err(answer) => return answer,
        };
    let notice = match done.done.as_deref() {
        Some("proposed") => Some(texts(lang).limit_proposed),
        _ => None,
    };
    render_limits(
        &console,
        lang,
        &live,
        StatusCode::OK,
        notice,
        &LimitForm::default(),
        &[],
        None,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_limits(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    notice: Option<&'static str>,
    form: &LimitForm,
    errors: &[(&'static str, String)],
    refusal: Option<String>,
) -> Response {
    let t = texts(lang);
    let commands = console.ctx.commands();
    let in_force = match reports::limits_in_force(&commands, Utc::now()).await {
        Ok(limits) => limits,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let rows = in_force
        .iter()
        .map(|(limit, usage)| {
            let used = usage.usage.unwrap_or(Decimal::ZERO);
            let share = if limit.amount.is_zero() {
                if used.is_zero() {
                    Decimal::ZERO
                } else {
                    Decimal::ONE_HUNDRED
                }
            } else {
                (used * Decimal::ONE_HUNDRED / limit.amount).round_dp(1)
            };
            let bar = share.clamp(Decimal::ZERO, Decimal::ONE_HUNDRED);
            let (state, class) = match usage.severity {
                Severity::Within => (t.within, "within"),
                Severity::Soft => (t.soft, "soft"),
                Severity::Hard => (t.hard, "over"),
            };
            LimitRow {
                kind: kind_label(t, limit.subject.kind()),
                key: limit.subject.key(),
                amount: money(lang, limit.amount),
                usage: usage
                    .usage
                    .map_or_else(|| t.no_usage.to_owned(), |u| money(lang, u)),
                headroom: money(lang, usage.headroom.unwrap_or(limit.amount - used)),
                bar: bar.normalize().to_string(),
                share: percent(lang, share),
                state,
                class,
            }
        })
        .collect();
    let may_read_pending = permitted(console, live, "/v1/limits/proposals", "GET");
    let pending = if may_read_pending {
        match limits::limit_versions(&commands, Some(LimitStatus::Pending), None, None, 100).await {
            Ok(versions) => versions
                .into_iter()
                .map(|v| PendingLimit {
                    kind: kind_label(t, v.subject.kind()),
                    key: v.subject.key(),
                    amount: money(lang, v.amount),
                    proposed_by: v.proposed_by.to_string(),
                    proposed_at: lang.date_time(v.proposed_at),
                    reason: v.reason,
                })
                .collect(),
            Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
        }
    } else {
        Vec::new()
    };
    html(
        status,
        &LimitsPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            notice,
            rows,
            pending,
            may_read_pending,
            may_propose: permitted(console, live, "/v1/limits", "POST"),
            kinds: kind_options(t, &form.kind),
            fields: limit_fields(t, form, errors),
            errors: !errors.is_empty() || refusal.is_some(),
            refusal,
        },
    )
}

fn render_new_limit(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    form: &LimitForm,
    errors: &[(&'static str, String)],
    refusal: Option<String>,
) -> Response {
    let t = texts(lang);
    html(
        status,
        &NewLimitPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            kinds: kind_options(t, &form.kind),
            fields: limit_fields(t, form, errors),
            errors: !errors.is_empty() || refusal.is_some(),
            refusal,
        },
    )
}

async fn new_limit_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/limits", "POST"),
        "/console/limits/new",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    render_new_limit(
        &console,
        lang,
        &live,
        StatusCode::OK,
        &LimitForm::default(),
        &[],
        None,
    )
}

async fn propose_limit(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LimitForm>,
) -> Response {
    const ROUTE: &str = "/console/limits";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/limits", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let proposal = match checked_limit(lang, &form) {
        Ok(proposal) => proposal,
        Err(errors) => {
            return render_new_limit(
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
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/limits",
        &[],
        move |tx| {
            Box::pin(async move {
                let limit = limits::propose_limit(&commands, tx, &actor, proposal).await?;
                CommandOutcome::view(StatusCode::CREATED, &limit)
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to("/console/limits?done=proposed").into_response(),
        Err(e) => {
            let text = match refused(&console, lang, &live, ROUTE, &e).await {
                Ok(text) => text,
                Err(answer) => return answer,
            };
            // A key that names nothing on record is the key field's problem.
            if e.status() == StatusCode::UNPROCESSABLE_ENTITY && e.detail.starts_with("key") {
                let t = texts(lang);
                let problem = if e.detail.contains("group") {
                    t.err_key_group
                } else {
                    t.err_key_borrower
                };
                return render_new_limit(
                    &console,
                    lang,
                    &live,
                    e.status(),
                    &form,
                    &[("key", problem.to_owned())],
                    None,
                );
            }
            render_new_limit(&console, lang, &live, e.status(), &form, &[], Some(text))
        }
    }
}

// ------------------------------------------------- capital and liquidity

struct CapitalView {
    tier1: String,
    version: i64,
    recorded_by: String,
    recorded_at: String,
}

struct LiquidityLine {
    version: i64,
    hqla: String,
    outflows: String,
    inflows: String,
    committed: String,
    recorded_by: String,
    recorded_at: String,
    lcr: Option<String>,
    floor: String,
    meets_floor: bool,
    gauge: Gauge,
}

/// The LCR against its floor on a scale of 0 to `GAUGE_WIDTH` units.
struct Gauge {
    fill: String,
    floor_x: String,
    class: &'static str,
}

const GAUGE_WIDTH: i64 = 300;

fn gauge(lcr: Option<Decimal>, floor: Decimal, meets: bool) -> Gauge {
    let top = lcr.unwrap_or(floor).max(floor) * Decimal::new(125, 2);
    let scale = |value: Decimal| {
        if top.is_zero() {
            Decimal::ZERO
        } else {
            (value * Decimal::from(GAUGE_WIDTH) / top)
                .round_dp(1)
                .clamp(Decimal::ZERO, Decimal::from(GAUGE_WIDTH))
                .normalize()
        }
    };
    Gauge {
        fill: scale(lcr.unwrap_or(Decimal::ZERO)).to_string(),
        floor_x: scale(floor).to_string(),
        class: if meets { "within" } else { "over" },
    }
}

struct PendingFigure {
    id: String,
    what: String,
    proposed_by: String,
    proposed_at: String,
    own: bool,
}

#[derive(Template)]
#[template(path = "risk_liquidity.html")]
struct LiquidityPage {
    f: Frame,
    t: &'static Texts,
    notice: Option<&'static str>,
    refusal: Option<String>,
    capital: Option<CapitalView>,
    liquidity: Option<LiquidityLine>,
    pending: Vec<PendingFigure>,
    may_propose_capital: bool,
    may_propose_liquidity: bool,
    may_decide: bool,
    capital_fields: Vec<Field>,
    liquidity_fields: Vec<Field>,
    errors: bool,
}

/// Nothing on record is no figure to show; any other failure is an outage.
fn missing<T>(e: creditops_commands::CommandError) -> Result<Option<T>, ApiError> {
    let e = ApiError::from(e);
    if e.status() == StatusCode::NOT_FOUND {
        Ok(None)
    } else {
        Err(e)
    }
}

/// What a figure proposal proposes, in the person's words.
fn proposed_figure(lang: Lang, t: &Texts, proposal: &ChangeProposal) -> String {
    match serde_json::from_value::<InputChange>(proposal.payload.clone()) {
        Ok(InputChange::Tier1Capital { tier1 }) => {
            format!("{}: {}", t.capital, money(lang, tier1))
        }
        Ok(InputChange::LiquidityPosition {
            hqla,
            outflows_30d,
            inflows_30d,
            floor_percent,
        }) => format!(
            "{}: HQLA {}; {} {}; {} {}; {} {}",
            t.liquidity,
            money(lang, hqla),
            t.outflows,
            money(lang, outflows_30d),
            t.inflows,
            money(lang, inflows_30d),
            t.floor_short,
            percent(lang, floor_percent),
        ),
        _ => proposal.payload.to_string(),
    }
}

#[derive(Deserialize, Default)]
struct CapitalForm {
    csrf: Option<String>,
    #[serde(default)]
    tier1: String,
}

#[derive(Deserialize, Default)]
struct LiquidityForm {
    csrf: Option<String>,
    #[serde(default)]
    hqla: String,
    #[serde(default)]
    outflows_30d: String,
    #[serde(default)]
    inflows_30d: String,
    #[serde(default)]
    floor_percent: String,
}

/// What the liquidity page shows besides the figures.
#[derive(Default)]
struct Shown<'a> {
    notice: Option<&'static str>,
    refusal: Option<String>,
    capital: Option<&'a CapitalForm>,
    liquidity: Option<&'a LiquidityForm>,
    errors: Vec<(&'static str, String)>,
}

async fn render_liquidity(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    shown: Shown<'_>,
) -> Response {
    let t = texts(lang);
    let commands = console.ctx.commands();
    let capital = match reports::capital(&commands).await.map(Some).or_else(missing) {
        Ok(capital) => capital.map(|c| CapitalView {
            tier1: money(lang, c.tier1),
            version: c.version,
            recorded_by: c.recorded_by.to_string(),
            recorded_at: lang.date_time(c.recorded_at),
        }),
        Err(e) => return unavailable(console, lang, &e.detail),
    };
    let liquidity = match reports::liquidity(&commands, Utc::now())
        .await
        .map(Some)
        .or_else(missing)
    {
        Ok(found) => found.map(|(position, view)| {
            let lcr = view.projected_lcr_percent(Decimal::ZERO);
            let finding = creditops_risk::gate::liquidity_finding(&view, Decimal::ZERO);
            let meets = finding.severity == Severity::Within;
            LiquidityLine {
                version: position.version,
                hqla: money(lang, position.hqla),
                outflows: money(lang, position.outflows_30d),
                inflows: money(lang, position.inflows_30d),
                committed: money(lang, view.committed),
                recorded_by: position.recorded_by.to_string(),
                recorded_at: lang.date_time(position.recorded_at),
                lcr: lcr.map(|l| percent(lang, l)),
                floor: percent(lang, position.floor_percent),
                meets_floor: meets,
                gauge: gauge(lcr, position.floor_percent, meets),
            }
        }),
        Err(e) => return unavailable(console, lang, &e.detail),
    };
    let pending = if permitted(console, live, "/v1/proposals", "GET") {
        match proposals::proposals(
            &commands,
            Some(ProposalStatus::Pending),
            Role::RiskController,
            None,
            100,
        )
        .await
        {
            Ok(found) => found
                .iter()
                .map(|p| PendingFigure {
                    id: p.id.to_string(),
                    what: proposed_figure(lang, t, p),
                    proposed_by: p.proposed_by.to_string(),
                    proposed_at: lang.date_time(p.proposed_at),
                    own: &p.proposed_by == live.actor.id(),
                })
                .collect(),
            Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
        }
    } else {
        Vec::new()
    };
    let empty_capital = CapitalForm::default();
    let empty_liquidity = LiquidityForm {
        floor_percent: "110".to_owned(),
        ..LiquidityForm::default()
    };
    let capital_form = shown.capital.unwrap_or(&empty_capital);
    let liquidity_form = shown.liquidity.unwrap_or(&empty_liquidity);
    let errors = &shown.errors;
    html(
        status,
        &LiquidityPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            notice: shown.notice,
            errors: !errors.is_empty() || shown.refusal.is_some(),
            refusal: shown.refusal,
            capital,
            liquidity,
            pending,
            may_propose_capital: permitted(console, live, "/v1/capital", "PUT"),
            may_propose_liquidity: permitted(console, live, "/v1/liquidity", "PUT"),
            may_decide: permitted(console, live, "/v1/proposals/{id}/approve", "POST"),
            capital_fields: vec![field("tier1", t.tier1, &capital_form.tier1, errors)],
            liquidity_fields: vec![
                field("hqla", t.hqla, &liquidity_form.hqla, errors),
                field(
                    "outflows_30d",
                    t.outflows,
                    &liquidity_form.outflows_30d,
                    errors,
                ),
                field(
                    "inflows_30d",
                    t.inflows,
                    &liquidity_form.inflows_30d,
                    errors,
                ),
                field(
                    "floor_percent",
                    t.floor,
                    &liquidity_form.floor_percent,
                    errors,
                ),
            ],
        },
    )
}

async fn liquidity_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(done): Query<DoneQuery>,
) -> Response {
    let live = match signed_in(&console, &headers).await {
        Ok(live) => live,
        Err(answer) => return answer,
    };
    let lang = lang_of(&headers);
    if !permitted(&console, &live, "/v1/liquidity", "GET")
        || !permitted(&console, &live, "/v1/capital", "GET")
    {
        return forbidden(&console, lang, &live, "/console/liquidity").await;
    }
    let t = texts(lang);
    let notice = match done.done.as_deref() {
        Some("capital") => Some(t.capital_proposed),
        Some("liquidity") => Some(t.liquidity_proposed),
        Some("approved") => Some(t.approved),
        Some("rejected") => Some(t.rejected),
        _ => None,
    };
    render_liquidity(
        &console,
        lang,
        &live,
        StatusCode::OK,
        Shown {
            notice,
            ..Shown::default()
        },
    )
    .await
}

/// Proposes a bank-wide figure as the API's `operation` does: `202` there,
/// a redirect to the page with `done` here.
async fn propose_figure(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    route: &str,
    operation: &'static str,
    change: InputChange,
    done: &str,
) -> Result<Response, String> {
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        operation,
        &[],
        move |tx| {
            Box::pin(async move {
                let proposal = inputs::propose_input(&commands, tx, &actor, change).await?;
                creditops_http::proposals::accepted(&proposal)
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("/console/liquidity?done={done}")).into_response()),
        Err(e) => match refused(console, lang, live, route, &e).await {
            Ok(text) => Err(text),
            Err(answer) => Ok(answer),
        },
    }
}

async fn propose_capital(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CapitalForm>,
) -> Response {
    const ROUTE: &str = "/console/capital";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/capital", "PUT"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let problem = if form.tier1.trim().is_empty() {
        Err(t.err_amount_empty)
    } else {
        match typed_amount(lang, &form.tier1) {
            None => Err(t.err_amount),
            Some(tier1) if tier1 <= Decimal::ZERO => Err(t.err_positive),
            Some(tier1) => Ok(tier1),
        }
    };
    let tier1 = match problem {
        Ok(tier1) => tier1,
        Err(text) => {
            return render_liquidity(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                Shown {
                    capital: Some(&form),
                    errors: vec![("tier1", text.to_owned())],
                    ..Shown::default()
                },
            )
            .await;
        }
    };
    let change = InputChange::Tier1Capital { tier1 };
    match propose_figure(
        &console,
        lang,
        &live,
        ROUTE,
        "PUT /v1/capital",
        change,
        "capital",
    )
    .await
    {
        Ok(answer) => answer,
        Err(text) => {
            render_liquidity(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                Shown {
                    capital: Some(&form),
                    refusal: Some(text),
                    ..Shown::default()
                },
            )
            .await
        }
    }
}

/// The liquidity position of the form, or each field's problem (the API's
/// checks: amounts, the floor between 100 and 1000, outflows above zero).
fn checked_liquidity(
    lang: Lang,
    form: &LiquidityForm,
) -> Result<InputChange, Vec<(&'static str, String)>> {
    let t = texts(lang);
    let mut errors = Vec::new();
    let mut amount = |name: &'static str, text: &str| {
        if text.trim().is_empty() {
            errors.push((name, t.err_amount_empty.to_owned()));
            return None;
        }
        let value = typed_amount(lang, text);
        if value.is_none() {
            errors.push((name, t.err_amount.to_owned()));
        }
        value
    };
    let hqla = amount("hqla", &form.hqla);
    let outflows = amount("outflows_30d", &form.outflows_30d);
    let inflows = amount("inflows_30d", &form.inflows_30d);
    if outflows.is_some_and(|o| o.is_zero()) {
        errors.push(("outflows_30d", t.err_positive.to_owned()));
    }
    let floor = if form.floor_percent.trim().is_empty() {
        Some(Decimal::from(110))
    } else {
        match typed_percent(lang, &form.floor_percent, Decimal::from(1000)) {
            None => {
                errors.push(("floor_percent", t.err_percent.to_owned()));
                None
            }
            Some(floor) if floor < creditops_risk::lcr::REGULATORY_FLOOR_PERCENT => {
                errors.push(("floor_percent", t.err_floor.to_owned()));
                None
            }
            Some(floor) => Some(floor),
        }
    };
    match (hqla, outflows, inflows, floor) {
        (Some(hqla), Some(outflows_30d), Some(inflows_30d), Some(floor_percent))
            if errors.is_empty() =>
        {
            Ok(InputChange::LiquidityPosition {
                hqla,
                outflows_30d,
                inflows_30d,
                floor_percent,
            })
        }
        _ => Err(errors),
    }
}

async fn propose_liquidity(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LiquidityForm>,
) -> Response {
    const ROUTE: &str = "/console/liquidity/propose";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/liquidity", "PUT"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let change = match checked_liquidity(lang, &form) {
        Ok(change) => change,
        Err(errors) => {
            return render_liquidity(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                Shown {
                    liquidity: Some(&form),
                    errors,
                    ..Shown::default()
                },
            )
            .await;
        }
    };
    match propose_figure(
        &console,
        lang,
        &live,
        ROUTE,
        "PUT /v1/liquidity",
        change,
        "liquidity",
    )
    .await
    {
        Ok(answer) => answer,
        Err(text) => {
            render_liquidity(
                &console,
                lang,
                &live,
                StatusCode::UNPROCESSABLE_ENTITY,
                Shown {
                    liquidity: Some(&form),
                    refusal: Some(text),
                    ..Shown::default()
                },
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn approve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    decide(console, headers, id, form, Verdict::Approve).await
}

async fn reject(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    decide(console, headers, id, form, Verdict::Reject).await
}

/// Approves or rejects another risk controller's proposal through the
/// function the API's route calls (never one's own: R3, R6).
async fn decide(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: CsrfForm,
    verdict: Verdict,
) -> Response {
    let (route, api_route, done) = match verdict {
        Verdict::Approve => (
            "/console/proposals/{id}/approve",
            "/v1/proposals/{id}/approve",
            "approved",
        ),
        Verdict::Reject => (
            "/console/proposals/{id}/reject",
            "/v1/proposals/{id}/reject",
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
    let Ok(id) = id.parse::<Uuid>() else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        );
    };
    let principal = Principal(live.actor.clone());
    match creditops_http::proposals::decide(
        console.ctx.clone(),
        principal,
        IdempotencyKey(None),
        id,
        verdict,
        Role::RiskController,
    )
    .await
    {
        Ok(response) if response.status().is_success() => {
            Redirect::to(&format!("/console/liquidity?done={done}")).into_response()
        }
        Ok(response) => {
            let status = response.status();
            render_liquidity(&console, lang, &live, status, Shown::default()).await
        }
        Err(e) => {
            let text = match refused(&console, lang, &live, route, &e).await {
                Ok(text) => text,
                Err(answer) => return answer,
            };
            render_liquidity(
                &console,
                lang,
                &live,
                e.status(),
                Shown {
                    refusal: Some(text),
                    ..Shown::default()
                },
            )
            .await
        }
    }
}

// ------------------------------------------- exposure, alerts and reports

/// One bar of an exposure chart.
struct ExposureBar {
    code: String,
    name: &'static str,
    amount: String,
    share: String,
    /// Width of the bar, 0-100.
    width: String,
}

#[derive(Template)]
#[template(path = "risk_exposure.html")]
struct ExposurePage {
    f: Frame,
    t: &'static Texts,
    total: String,
    charts: Vec<Chart>,
}

/// One chart of the exposure page.
struct Chart {
    heading: &'static str,
    label: &'static str,
    bars: Vec<ExposureBar>,
}

/// Bars of `totals`, largest first, each scaled to the largest.
fn bars(
    lang: Lang,
    totals: Vec<(String, &'static str, Decimal)>,
    all: Decimal,
) -> Vec<ExposureBar> {
    let mut totals = totals;
    totals.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let top = totals.first().map_or(Decimal::ZERO, |t| t.2);
    totals
        .into_iter()
        .map(|(code, name, amount)| {
            let scale = |of: Decimal| {
                if of.is_zero() {
                    Decimal::ZERO
                } else {
                    (amount * Decimal::ONE_HUNDRED / of).round_dp(1)
                }
            };
            ExposureBar {
                code,
                name,
                amount: money(lang, amount),
                share: percent(lang, scale(all)),
                width: scale(top)
                    .clamp(Decimal::ZERO, Decimal::ONE_HUNDRED)
                    .normalize()
                    .to_string(),
            }
        })
        .collect()
}

async fn exposure_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/exposures", "GET"),
        "/console/exposure",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let rows = match reports::exposures(
        &console.ctx.commands(),
        reports::ExposureFilter::All,
        Utc::now(),
    )
    .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(&console, lang, &ApiError::from(e).detail),
    };
    let mut sectors = std::collections::BTreeMap::new();
    let mut countries = std::collections::BTreeMap::new();
    let mut all = Decimal::ZERO;
    for row in &rows {
        let total = row.total();
        if total.is_zero() {
            continue;
        }
        all += total;
        *sectors.entry(row.sector.section()).or_insert(Decimal::ZERO) += total;
        *countries.entry(row.country).or_insert(Decimal::ZERO) += total;
    }
    let sectors = sectors
        .into_iter()
        .map(|(s, amount)| (s.to_string(), s.name(), amount))
        .collect();
    let countries = countries
        .into_iter()
        .map(|(c, amount)| (c.to_string(), c.name(), amount))
        .collect();
    let t = texts(lang);
    html(
        StatusCode::OK,
        &ExposurePage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            total: money(lang, all),
            charts: if rows.is_empty() || all.is_zero() {
                Vec::new()
            } else {
                vec![
                    Chart {
                        heading: t.by_sector,
                        label: t.sector,
                        bars: bars(lang, sectors, all),
                    },
                    Chart {
                        heading: t.by_country,
                        label: t.country,
                        bars: bars(lang, countries, all),
                    },
                ]
            },
        },
    )
}

struct AlertRow {
    detected: String,
    subject: String,
    rule: String,
    check: String,
    limit: String,
    usage: String,
    over_by: String,
    severity: &'static str,
    class: &'static str,
    cause: String,
    owner: String,
}

struct ReportLink {
    href: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "risk_alerts.html")]
struct AlertsPage {
    f: Frame,
    t: &'static Texts,
    rows: Vec<AlertRow>,
    next: Option<String>,
    may_read_breach_report: bool,
    today: String,
    reports: Vec<ReportLink>,
}

#[derive(Deserialize)]
struct AfterQuery {
    after: Option<Uuid>,
}

/// Alerts on one page.
const ALERT_PAGE: u32 = 100;

async fn alerts_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<AfterQuery>,
) -> Response {
    let (live, lang) =
        match page_access(&console, &headers, ("/v1/alerts", "GET"), "/console/alerts").await {
            Ok(access) => access,
            Err(answer) => return answer,
        };
    let t = texts(lang);
    let page = creditops_store::BreachPage {
        open_only: true,
        after: query.after,
        limit: ALERT_PAGE,
    };
    let breaches = match reports::breach_page(&console.ctx.commands(), &page).await {
        Ok(breaches) => breaches,
        Err(e) => return unavailable(&console, lang, &ApiError::from(e).detail),
    };
    let next = (breaches.len() >= ALERT_PAGE as usize)
        .then(|| {
            breaches
                .last()
                .map(|b| format!("/console/alerts?after={}", b.id))
        })
        .flatten();
    let rows = breaches
        .iter()
        .map(|b| {
            // A liquidity breach is in percent (LCR against its floor).
            let figure = |d: Decimal| {
                if b.subject.starts_with("liquidity") {
                    percent(lang, d)
                } else {
                    money(lang, d)
                }
            };
            let (severity, class) = match b.severity {
                Severity::Within => (t.within, "within"),
                Severity::Soft => (t.soft, "soft"),
                Severity::Hard => (t.hard, "over"),
            };
            AlertRow {
                detected: lang.date_time(b.detected_at),
                subject: b.subject.clone(),
                rule: b.rule.to_string(),
                check: b.check.clone(),
                limit: figure(b.limit),
                usage: figure(b.usage),
                over_by: figure(b.amount_over),
                severity,
                class,
                cause: b.cause.clone(),
                owner: b.owner.clone(),
            }
        })
        .collect();
    let reports = if permitted(&console, &live, "/v1/reports/{id}", "GET") {
        vec![
            ReportLink {
                href: "/console/reports/large-exposures",
                label: t.large_exposures,
            },
            ReportLink {
                href: "/console/reports/million-loans",
                label: t.million_loans,
            },
            ReportLink {
                href: "/console/reports/section-18",
                label: t.section_18,
            },
        ]
    } else {
        Vec::new()
    };
    html(
        StatusCode::OK,
        &AlertsPage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            rows,
            next,
            may_read_breach_report: permitted(&console, &live, "/v1/reports/breaches", "GET"),
            today: Utc::now().date_naive().to_string(),
            reports,
        },
    )
}

/// A CSV download named `filename`.
fn csv_download(body: String, filename: &str) -> Response {
    let mut response = creditops_http::reports::csv_response(body);
    if let Ok(value) =
        axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, value);
    }
    response
}

#[derive(Deserialize)]
struct DateQuery {
    date: Option<String>,
}

async fn breach_report(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<DateQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/reports/breaches", "GET"),
        "/console/reports/breaches",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let date = match query
        .date
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => Utc::now().date_naive(),
        Some(text) => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => date,
            Err(_) => {
                return message(
                    &console,
                    lang,
                    Some(&live),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    texts(lang).err_date,
                    None,
                );
            }
        },
    };
    let Some(from) = date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::UNPROCESSABLE_ENTITY,
            texts(lang).err_date,
            None,
        );
    };
    let filter = creditops_store::BreachFilter {
        from,
        to: from + chrono::Duration::days(1),
        limit: 100_000,
    };
    match reports::breaches(&console.ctx.commands(), &filter).await {
        Ok(breaches) => csv_download(
            creditops_http::reports::breach_report_csv(&breaches),
            &format!("breaches-{date}.csv"),
        ),
        Err(e) => unavailable(&console, lang, &ApiError::from(e).detail),
    }
}

async fn exposure_report(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/reports/{id}", "GET"),
        "/console/reports/{id}",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(kind) = id.parse::<creditops_risk::reports::ReportKind>() else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        );
    };
    match reports::exposure_report(&console.ctx.commands(), kind, Utc::now()).await {
        Ok((lines, _)) => csv_download(
            creditops_risk::reports::to_csv(&lines),
            &format!("{id}.csv"),
        ),
        Err(e) => unavailable(&console, lang, &ApiError::from(e).detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_in_both_spellings() {
        let d = |s: &str| Decimal::from_str_exact(s).ok();
        for (lang, typed, value) in [
            (Lang::De, "1.000.000,00", "1000000"),
            (Lang::De, "250000,5", "250000.5"),
            (Lang::De, "1.000", "1000"),
            (Lang::De, "1000000.00", "1000000"),
            (Lang::En, "1,000,000.00", "1000000"),
            (Lang::En, "1,000", "1000"),
            (Lang::En, "1000000.5", "1000000.5"),
            (Lang::En, " 500 000 ", "500000"),
        ] {
            assert_eq!(typed_amount(lang, typed), d(value), "{typed}");
        }
        for bad in [
            "",
            "-1",
            "1e6",
            "1.001,5,5",
            "1,00,0.00",
            "0.001",
            "abc",
            "1.2.3,4",
        ] {
            assert_eq!(typed_amount(Lang::En, bad), None, "{bad}");
        }
        assert_eq!(typed_amount(Lang::En, "10000000000000000"), None);
    }

    #[test]
    fn percentages_and_the_gauge() {
        assert_eq!(
            typed_percent(Lang::De, "110,5 %", Decimal::from(1000)),
            Decimal::from_str_exact("110.5").ok()
        );
        assert_eq!(percent(Lang::De, Decimal::from(200)), "200,00 %");
        assert_eq!(percent(Lang::En, Decimal::from(200)), "200.00 %");
        let g = gauge(Some(Decimal::from(200)), Decimal::from(110), true);
        assert_eq!(g.fill, "240");
        assert_eq!(g.floor_x, "132");
        assert_eq!(g.class, "within");
    }
}
