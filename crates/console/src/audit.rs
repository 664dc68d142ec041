//! The internal auditors' desk on the audit service: the event search, a
//! case's story with every event proven included in the signed checkpoint,
//! the checkpoint with its published key, the chain's verification and
//! reconciliation, and the regulator export. Each page is allowed exactly
//! when the API route it stands for is (the service's casbin policy) and
//! runs the API's command, audited as the API audits it (A7).

use crate::Console;
use crate::casework::{Refusal, audit_command_refusal, forbidden, permitted, short};
use crate::i18n::Lang;
use crate::pages::{Frame, NavLink, guard_form, html, lang_of, message, signed_in, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use creditops_audit::merkle::verify_inclusion;
use creditops_audit::{
    AuditAction, SigningKey, VerifierKey, hash_from_slice, leaf_hash, parse_and_verify,
};
use creditops_commands::audit_bundle::{ExportKeys, Selection};
use creditops_commands::audit_trail::{self, ChainCheck, StoredTree, VerifyMode};
use creditops_commands::{CommandError, Context};
use creditops_domain::{BorrowerId, CaseId, CreditCase, VoteDecision, VoteStage};
use creditops_http::ApiError;
use creditops_store::{AuditFilter, StoredAuditEvent, StoredCheckpoint};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The audit log's origin line and the checkpoint signing key (kept outside
/// the database), with the verifier keys of keys retired by a rotation: what
/// the audit service's API signs checkpoints, proofs and exports with.
#[derive(Debug, Clone)]
pub struct AuditKeys {
    pub origin: String,
    pub signing_key: Option<Arc<SigningKey>>,
    pub retired_keys: Vec<VerifierKey>,
}

/// Events on one page of the search.
const PAGE: u32 = 50;
/// A case's story reads its events in pages of this size.
const STORY_PAGE: u32 = 1000;
/// At most this many missing rows are listed (as the API does).
const RECONCILE_LIMIT: u32 = 1000;
/// A bundle built for download is held this long, for the session that
/// asked for it only.
const BUNDLE_MINUTES: i64 = 30;
/// At most this many bundles are held at once (the oldest goes first).
const BUNDLES_HELD: usize = 8;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "audit" {
        return Router::new();
    }
    Router::new()
        .route("/console/events", get(event_search))
        .route("/console/cases/{id}", get(case_story))
        .route("/console/checkpoint", get(checkpoint_page))
        .route("/console/verify", post(verify_chain))
        .route("/console/reconcile", get(reconcile))
        .route("/console/exports", get(export_form).post(start_export))
        .route("/console/exports/{id}", get(download))
}

/// The audit desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let t = texts(lang);
    vec![
        NavLink::to("/console/events", t.events),
        NavLink::to("/console/checkpoint", t.checkpoint),
        NavLink::to("/console/exports", t.export),
    ]
}

/// Every text of the audit desk in one language (a missing text is a
/// compile error).
#[derive(Debug)]
pub(crate) struct AuditTexts {
    pub events: &'static str,
    pub checkpoint: &'static str,
    pub export: &'static str,
    pub search: &'static str,
    pub filters: &'static str,
    pub case_id: &'static str,
    pub borrower_id: &'static str,
    pub actor: &'static str,
    pub action: &'static str,
    pub action_hint: &'static str,
    pub outcome: &'static str,
    pub any: &'static str,
    pub outcome_ok: &'static str,
    pub outcome_denied: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub time_hint: &'static str,
    pub time: &'static str,
    pub seq: &'static str,
    pub rule: &'static str,
    pub case: &'static str,
    pub no_events: &'static str,
    pub next_page: &'static str,
    pub oldest_first: &'static str,
    pub bad_case_id: &'static str,
    pub bad_borrower_id: &'static str,
    pub bad_text: &'static str,
    pub bad_time: &'static str,
    pub bad_after: &'static str,
    pub story: &'static str,
    pub current_state: &'static str,
    pub status: &'static str,
    pub amount: &'static str,
    pub file_version: &'static str,
    pub originator: &'static str,
    pub opened_on: &'static str,
    pub return_reason: &'static str,
    pub votes: &'static str,
    pub no_votes: &'static str,
    pub stage: &'static str,
    pub stage_first: &'static str,
    pub stage_second: &'static str,
    pub voter: &'static str,
    pub decision: &'static str,
    pub approve: &'static str,
    pub decline: &'static str,
    pub rationale: &'static str,
    pub decision_record: &'static str,
    pub no_decision: &'static str,
    pub decided_at: &'static str,
    pub level: &'static str,
    pub rules_version: &'static str,
    pub content_hash: &'static str,
    pub timeline: &'static str,
    pub details: &'static str,
    pub proof: &'static str,
    pub verified: &'static str,
    pub not_verified: &'static str,
    pub all_verified: &'static str,
    pub some_not_verified: &'static str,
    pub proven_against: &'static str,
    pub body_changed: &'static str,
    pub not_in_tree: &'static str,
    pub checkpoint_bad: &'static str,
    pub tree_head: &'static str,
    pub origin: &'static str,
    pub size: &'static str,
    pub root: &'static str,
    pub signed_at: &'static str,
    pub signature: &'static str,
    pub note: &'static str,
    pub published_key: &'static str,
    pub key_name: &'static str,
    pub key_id: &'static str,
    pub verifier_key: &'static str,
    pub public_key_pem: &'static str,
    pub retired_keys: &'static str,
    pub checks: &'static str,
    pub verify_intro: &'static str,
    pub verify_button: &'static str,
    pub verify_full_button: &'static str,
    pub checked_from: &'static str,
    pub from_first: &'static str,
    pub since_head: &'static str,
    pub reconcile_intro: &'static str,
    pub reconcile_link: &'static str,
    pub chain_intact: &'static str,
    pub chain_broken: &'static str,
    pub events_checked: &'static str,
    pub last_seq: &'static str,
    pub head: &'static str,
    pub first_bad_seq: &'static str,
    pub reason: &'static str,
    pub reconcile_title: &'static str,
    pub reconcile_ok: &'static str,
    pub reconcile_missing: &'static str,
    pub reconcile_truncated: &'static str,
    pub table: &'static str,
    pub key: &'static str,
    pub event_id: &'static str,
    pub back_to_checkpoint: &'static str,
    pub export_intro: &'static str,
    pub export_button: &'static str,
    pub export_ready: &'static str,
    pub export_range: &'static str,
    pub download: &'static str,
    pub download_gone: &'static str,
    pub verify_with: &'static str,
    pub previous_size: &'static str,
    pub no_key: &'static str,
    pub not_found: &'static str,
}

pub(crate) static EN: AuditTexts = AuditTexts {
    events: "Events",
    checkpoint: "Checkpoint",
    export: "Export",
    search: "Search",
    filters: "Filters",
    case_id: "Case id",
    borrower_id: "Borrower id",
    actor: "Actor (staff id)",
    action: "Action",
    action_hint: "e.g. case.second_vote",
    outcome: "Outcome",
    any: "Any",
    outcome_ok: "Carried out",
    outcome_denied: "Refused",
    from: "From",
    to: "Before",
    time_hint: "UTC, e.g. 2026-12-06T09:30",
    time: "Time",
    seq: "No.",
    rule: "Rule",
    case: "Case",
    no_events: "No event matches these filters.",
    next_page: "Next page",
    oldest_first: "Oldest first, as the audit API lists them.",
    bad_case_id: "The case id is not a case id.",
    bad_borrower_id: "The borrower id is not a borrower id.",
    bad_text: "Actor and action take 1 to 128 characters.",
    bad_time: "Times are dates (2026-12-06) or date and time in UTC (2026-12-06T09:30).",
    bad_after: "The page link is broken; start the search again.",
    story: "The case's story",
    current_state: "Current state",
    status: "State",
    amount: "Amount",
    file_version: "File version",
    originator: "Opened by",
    opened_on: "Opened on",
    return_reason: "Reason for return",
    votes: "Votes",
    no_votes: "No votes yet.",
    stage: "Vote",
    stage_first: "First vote (market)",
    stage_second: "Second vote (back office)",
    voter: "Voter",
    decision: "Decision",
    approve: "Approve",
    decline: "Decline",
    rationale: "Rationale",
    decision_record: "Decision record",
    no_decision: "Not decided yet.",
    decided_at: "Decided at",
    level: "Competence level",
    rules_version: "Rule-set version",
    content_hash: "Content hash",
    timeline: "Every event of the case",
    details: "Details",
    proof: "Proof",
    verified: "verified",
    not_verified: "NOT verified",
    all_verified: "Every event of this case is intact: its body matches its leaf hash, and its inclusion proof leads to the root of the signed checkpoint.",
    some_not_verified: "At least one event of this case could not be verified; see the marked rows and run the chain verification.",
    proven_against: "Proven against the signed checkpoint",
    body_changed: "the body no longer matches its leaf hash",
    not_in_tree: "the inclusion proof does not lead to the signed root",
    checkpoint_bad: "the checkpoint's signature does not verify with the published key",
    tree_head: "Signed tree head",
    origin: "Origin",
    size: "Size (events)",
    root: "Root (SHA-256)",
    signed_at: "Signed at",
    signature: "Signature",
    note: "Signed note",
    published_key: "Published key",
    key_name: "Key name",
    key_id: "Key id",
    verifier_key: "Verifier key",
    public_key_pem: "Public key (PEM)",
    retired_keys: "Keys retired by a rotation",
    checks: "Checks",
    verify_intro: "Check what was added since the last verification (each event's body, sequence and chain value, and the Merkle tree's nodes, from the last verified, signed head) and name the first position that does not verify (A2). The full check recomputes everything from the first event.",
    verify_button: "Verify the chain",
    verify_full_button: "Verify everything from the first event",
    checked_from: "Checked from",
    from_first: "the first event",
    since_head: "after the last verified, signed head: event",
    reconcile_intro: "List borrowers, cases, votes and decisions whose audit event is missing (A1).",
    reconcile_link: "Reconcile",
    chain_intact: "The chain is intact.",
    chain_broken: "The chain is broken.",
    events_checked: "Events checked",
    last_seq: "Last event",
    head: "Chain head",
    first_bad_seq: "First bad event",
    reason: "Reason",
    reconcile_title: "Reconciliation",
    reconcile_ok: "Every business row has its audit event.",
    reconcile_missing: "These business rows have no audit event:",
    reconcile_truncated: "More rows are missing their event than listed.",
    table: "Table",
    key: "Key",
    event_id: "Audit event id",
    back_to_checkpoint: "Back to the checkpoint",
    export_intro: "Export the audit trail for a time range as the bundle of audit/SPEC.md (A5). The bundle covers every event from the first to the last one recorded in the range; leave both empty for the whole log. The export is itself an audit event.",
    export_button: "Start the export",
    export_ready: "The bundle is ready.",
    export_range: "Events",
    download: "Download the bundle",
    download_gone: "This bundle is no longer held; start the export again.",
    verify_with: "Verify it offline with",
    previous_size: "Consistent with the checkpoint handed out at size",
    no_key: "No checkpoint signing key is configured; checkpoints, proofs and exports are not available.",
    not_found: "There is no such case.",
};

pub(crate) static DE: AuditTexts = AuditTexts {
    events: "Ereignisse",
    checkpoint: "Prüfpunkt",
    export: "Export",
    search: "Suchen",
    filters: "Filter",
    case_id: "Fall-ID",
    borrower_id: "Kreditnehmer-ID",
    actor: "Handelnde Person (Personal-ID)",
    action: "Aktion",
    action_hint: "z. B. case.second_vote",
    outcome: "Ergebnis",
    any: "Alle",
    outcome_ok: "Ausgeführt",
    outcome_denied: "Abgelehnt",
    from: "Von",
    to: "Vor",
    time_hint: "UTC, z. B. 2026-12-06T09:30",
    time: "Zeit",
    seq: "Nr.",
    rule: "Regel",
    case: "Fall",
    no_events: "Kein Ereignis passt zu diesen Filtern.",
    next_page: "Nächste Seite",
    oldest_first: "Älteste zuerst, wie die Audit-Schnittstelle sie liefert.",
    bad_case_id: "Die Fall-ID ist keine Fall-ID.",
    bad_borrower_id: "Die Kreditnehmer-ID ist keine Kreditnehmer-ID.",
    bad_text: "Handelnde Person und Aktion haben 1 bis 128 Zeichen.",
    bad_time: "Zeiten sind Daten (2026-12-06) oder Datum und Uhrzeit in UTC (2026-12-06T09:30).",
    bad_after: "Der Seitenlink ist ungültig; bitte die Suche neu beginnen.",
    story: "Die Geschichte des Falls",
    current_state: "Aktueller Stand",
    status: "Status",
    amount: "Betrag",
    file_version: "Aktenversion",
    originator: "Eröffnet von",
    opened_on: "Eröffnet am",
    return_reason: "Grund der Rückgabe",
    votes: "Voten",
    no_votes: "Noch keine Voten.",
    stage: "Votum",
    stage_first: "Erstvotum (Markt)",
    stage_second: "Zweitvotum (Marktfolge)",
    voter: "Votierende Person",
    decision: "Entscheidung",
    approve: "Zustimmen",
    decline: "Ablehnen",
    rationale: "Begründung",
    decision_record: "Entscheidungsprotokoll",
    no_decision: "Noch nicht entschieden.",
    decided_at: "Entschieden am",
    level: "Kompetenzstufe",
    rules_version: "Version des Regelwerks",
    content_hash: "Inhalts-Hash",
    timeline: "Alle Ereignisse des Falls",
    details: "Einzelheiten",
    proof: "Nachweis",
    verified: "geprüft",
    not_verified: "NICHT geprüft",
    all_verified: "Jedes Ereignis dieses Falls ist unverändert: sein Inhalt passt zu seinem Blatt-Hash, und sein Inklusionsnachweis führt zur Wurzel des signierten Prüfpunkts.",
    some_not_verified: "Mindestens ein Ereignis dieses Falls konnte nicht geprüft werden; siehe die markierten Zeilen und prüfen Sie die Kette.",
    proven_against: "Geprüft gegen den signierten Prüfpunkt",
    body_changed: "der Inhalt passt nicht mehr zu seinem Blatt-Hash",
    not_in_tree: "der Inklusionsnachweis führt nicht zur signierten Wurzel",
    checkpoint_bad: "die Signatur des Prüfpunkts passt nicht zum veröffentlichten Schlüssel",
    tree_head: "Signierter Baumkopf",
    origin: "Herkunft",
    size: "Größe (Ereignisse)",
    root: "Wurzel (SHA-256)",
    signed_at: "Signiert am",
    signature: "Signatur",
    note: "Signierte Notiz",
    published_key: "Veröffentlichter Schlüssel",
    key_name: "Schlüsselname",
    key_id: "Schlüssel-ID",
    verifier_key: "Prüfschlüssel",
    public_key_pem: "Öffentlicher Schlüssel (PEM)",
    retired_keys: "Durch Schlüsselwechsel abgelöste Schlüssel",
    checks: "Prüfungen",
    verify_intro: "Prüfen, was seit der letzten Prüfung hinzukam (Inhalt, Reihenfolge und Kettenwert jedes Ereignisses und die Knoten des Merkle-Baums, ab dem zuletzt geprüften, signierten Stand), und die erste Stelle nennen, die nicht stimmt (A2). Die vollständige Prüfung rechnet alles ab dem ersten Ereignis neu.",
    verify_button: "Kette prüfen",
    verify_full_button: "Alles ab dem ersten Ereignis prüfen",
    checked_from: "Geprüft ab",
    from_first: "dem ersten Ereignis",
    since_head: "nach dem zuletzt geprüften, signierten Stand: Ereignis",
    reconcile_intro: "Kreditnehmer, Fälle, Voten und Entscheidungen ohne Audit-Ereignis auflisten (A1).",
    reconcile_link: "Abgleich",
    chain_intact: "Die Kette ist unversehrt.",
    chain_broken: "Die Kette ist gebrochen.",
    events_checked: "Geprüfte Ereignisse",
    last_seq: "Letztes Ereignis",
    head: "Kettenkopf",
    first_bad_seq: "Erstes fehlerhaftes Ereignis",
    reason: "Grund",
    reconcile_title: "Abgleich",
    reconcile_ok: "Jede fachliche Zeile hat ihr Audit-Ereignis.",
    reconcile_missing: "Diese fachlichen Zeilen haben kein Audit-Ereignis:",
    reconcile_truncated: "Es fehlen mehr Ereignisse als aufgeführt.",
    table: "Tabelle",
    key: "Schlüssel",
    event_id: "ID des Audit-Ereignisses",
    back_to_checkpoint: "Zurück zum Prüfpunkt",
    export_intro: "Den Audit-Trail eines Zeitraums als Paket nach audit/SPEC.md exportieren (A5). Das Paket umfasst alle Ereignisse vom ersten bis zum letzten im Zeitraum erfassten; beide Felder leer exportiert das ganze Protokoll. Der Export ist selbst ein Audit-Ereignis.",
    export_button: "Export starten",
    export_ready: "Das Paket ist bereit.",
    export_range: "Ereignisse",
    download: "Paket herunterladen",
    download_gone: "Dieses Paket wird nicht mehr bereitgehalten; bitte den Export neu starten.",
    verify_with: "Offline prüfen mit",
    previous_size: "Konsistent mit dem ausgegebenen Prüfpunkt der Größe",
    no_key: "Es ist kein Signaturschlüssel für Prüfpunkte eingerichtet; Prüfpunkte, Nachweise und Exporte sind nicht verfügbar.",
    not_found: "Diesen Fall gibt es nicht.",
};

pub(crate) fn texts(lang: Lang) -> &'static AuditTexts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// Whether every API route a page stands for is allowed to the person.
fn allowed(console: &Console, live: &LiveSession, stands_for: &[(&str, &str)]) -> bool {
    stands_for
        .iter()
        .all(|(api, method)| permitted(console, live, api, method))
}

/// What every handler starts with: the session, the language, and whether
/// the API routes the page stands for are all allowed.
async fn open(
    console: &Console,
    headers: &HeaderMap,
    route: &str,
    stands_for: &[(&str, &str)],
) -> Result<(LiveSession, Lang), Response> {
    let live = signed_in(console, headers).await?;
    let lang = lang_of(headers);
    if !allowed(console, &live, stands_for) {
        return Err(forbidden(console, lang, &live, route).await);
    }
    Ok((live, lang))
}

/// What every form handler starts with: the session, the form's CSRF token
/// and Origin (refused 403 and audited without them), and the permission.
async fn posted(
    console: &Console,
    headers: &HeaderMap,
    csrf: Option<&str>,
    route: &str,
    stands_for: &[(&str, &str)],
) -> Result<(LiveSession, Lang), Response> {
    let live = signed_in(console, headers).await?;
    guard_form(
        console,
        headers,
        Some(&live.session.csrf_token),
        csrf,
        Some(live.actor.id()),
        route,
        None,
    )
    .await?;
    let lang = lang_of(headers);
    if !allowed(console, &live, stands_for) {
        return Err(forbidden(console, lang, &live, route).await);
    }
    Ok((live, lang))
}

/// A command's refusal on a page: a client error is audited as the API's
/// middleware would and shown with its rule; anything else is an outage.
async fn refused(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    route: &str,
    error: ApiError,
    case_id: Option<CaseId>,
) -> Response {
    if !error.status().is_client_error() {
        return unavailable(console, lang, &error.detail);
    }
    if let Err(audit) = audit_command_refusal(console, live, route, &error, case_id).await {
        return unavailable(console, lang, &audit.detail);
    }
    let refusal = Refusal::of(lang, &error);
    message(
        console,
        lang,
        Some(live),
        error.status(),
        &refusal.text,
        error.rule,
    )
}

/// The configured keys with the signing key (without, the pages say so
/// with 503, as the API answers).
fn signing(console: &Console) -> Option<(&AuditKeys, &SigningKey)> {
    let keys = console.settings.audit_keys.as_ref()?;
    Some((keys, keys.signing_key.as_deref()?))
}

fn no_key(console: &Console, lang: Lang, live: &LiveSession) -> Response {
    message(
        console,
        lang,
        Some(live),
        StatusCode::SERVICE_UNAVAILABLE,
        texts(lang).no_key,
        None,
    )
}

fn hex_string(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// A query string value, percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A time as typed: RFC 3339, a `datetime-local` value or a date (UTC).
fn typed_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

/// A filled-in field, or none for an empty one.
fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------- events

/// One event as a row of the search or the story.
struct EventRow {
    seq: i64,
    when: String,
    action: String,
    actor: String,
    outcome: &'static str,
    denied: bool,
    rule: String,
    case_id: Option<String>,
    case_short: String,
    details: String,
    /// The action in plain words, where the desk has them.
    label: &'static str,
}

/// What a case's events mean, in plain words; empty for the others (the
/// dotted name is shown always).
fn action_label(lang: Lang, action: &str) -> &'static str {
    let (de, en) = match action {
        "case.created" => ("Fall eröffnet", "Case opened"),
        "case.edited" => ("Akte geändert", "File edited"),
        "case.first_vote" => ("Erstvotum abgegeben", "First vote cast"),
        "case.second_vote" => ("Zweitvotum abgegeben", "Second vote cast"),
        "case.returned" => ("An den Markt zurückgegeben", "Returned to market"),
        "case.board_resolution" => ("Vorstandsbeschluss erfasst", "Board resolution recorded"),
        "case.board_resolution_confirmed" => {
            ("Vorstandsbeschluss bestätigt", "Board resolution confirmed")
        }
        "case.reevaluated" => ("Neu bewertet", "Re-evaluated"),
        "case.disbursed" => ("Ausgezahlt", "Disbursed"),
        "risk.reserved" => ("Limit reserviert", "Headroom reserved"),
        "request.refused" => ("Anfrage abgelehnt", "Request refused"),
        "audit.case_read" => ("Von der Revision gelesen", "Read by internal audit"),
        _ => return "",
    };
    match lang {
        Lang::De => de,
        Lang::En => en,
    }
}

/// The event's scalar facts, `key: value`, long values cut.
fn details_of(data: &Value) -> String {
    let Some(map) = data.as_object() else {
        return String::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            let text = if text.chars().count() > 24 {
                format!("{}…", text.chars().take(16).collect::<String>())
            } else {
                text
            };
            Some(format!("{k}: {text}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn event_row(lang: Lang, t: &AuditTexts, event: &StoredAuditEvent) -> EventRow {
    let body: Value = serde_json::from_slice(&event.body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let when = DateTime::parse_from_rfc3339(text("ts"))
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or(event.recorded_at);
    let denied = text("outcome") == "denied";
    let case_id = body
        .get("case_id")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<CaseId>().ok());
    EventRow {
        seq: event.seq,
        when: lang.date_time(when),
        action: text("action").to_owned(),
        actor: text("actor").to_owned(),
        outcome: if denied {
            t.outcome_denied
        } else {
            t.outcome_ok
        },
        denied,
        rule: text("rule").to_owned(),
        case_id: case_id.map(|c| c.to_string()),
        case_short: case_id.map(short).unwrap_or_default(),
        details: details_of(body.get("data").unwrap_or(&Value::Null)),
        label: action_label(lang, text("action")),
    }
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    case_id: Option<String>,
    borrower_id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

impl SearchQuery {
    /// The API's filter from the form; the problems in plain words.
    fn filter(&self, t: &AuditTexts) -> Result<AuditFilter, Vec<&'static str>> {
        let mut problems = Vec::new();
        let case_id = match filled(&self.case_id) {
            Some(text) => text.parse::<CaseId>().map(Some).unwrap_or_else(|_| {
                problems.push(t.bad_case_id);
                None
            }),
            None => None,
        };
        let borrower_id = match filled(&self.borrower_id) {
            Some(text) => text.parse::<BorrowerId>().map(Some).unwrap_or_else(|_| {
                problems.push(t.bad_borrower_id);
                None
            }),
            None => None,
        };
        let bounded = |value: &Option<String>, problems: &mut Vec<&'static str>| {
            let text = filled(value)?;
            if text.len() > 128 {
                if !problems.contains(&t.bad_text) {
                    problems.push(t.bad_text);
                }
                return None;
            }
            Some(text.to_owned())
        };
        let actor = bounded(&self.actor, &mut problems);
        let action = bounded(&self.action, &mut problems);
        let outcome = filled(&self.outcome)
            .filter(|o| matches!(*o, "ok" | "denied"))
            .map(str::to_owned);
        let mut time = |value: &Option<String>| match filled(value) {
            Some(text) => typed_time(text).or_else(|| {
                if !problems.contains(&t.bad_time) {
                    problems.push(t.bad_time);
                }
                None
            }),
            None => None,
        };
        let from = time(&self.from);
        let to = time(&self.to);
        let after = match filled(&self.after) {
            Some(text) => text.parse::<i64>().map(Some).unwrap_or_else(|_| {
                problems.push(t.bad_after);
                None
            }),
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AuditFilter {
            case_id,
            borrower_id,
            actor,
            action,
            outcome,
            from,
            to,
            after_seq: after,
            limit: PAGE,
        })
    }

    /// The search's query string with `after` as the cursor.
    fn next_link(&self, after: i64) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("case_id", &self.case_id),
            ("borrower_id", &self.borrower_id),
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = filled(value) {
                parts.push(format!("{name}={}", encode(v)));
            }
        }
        parts.push(format!("after={after}"));
        format!("/console/events?{}", parts.join("&"))
    }
}

/// The value of a search field as the form shows it again.
fn shown(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

struct OutcomeChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "audit_events.html")]
struct EventsPage {
    f: Frame,
    t: &'static AuditTexts,
    case_id: String,
    borrower_id: String,
    actor: String,
    action: String,
    outcomes: Vec<OutcomeChoice>,
    from: String,
    to: String,
    problems: Vec<&'static str>,
    rows: Vec<EventRow>,
    next: Option<String>,
}

async fn event_search(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    const ROUTE: &str = "/console/events";
    let (live, lang) = match open(&console, &headers, ROUTE, &[("/v1/events", "GET")]).await {
        Ok(open) => open,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let chosen = filled(&query.outcome).unwrap_or_default();
    let outcomes = [
        ("", t.any),
        ("ok", t.outcome_ok),
        ("denied", t.outcome_denied),
    ]
    .into_iter()
    .map(|(value, label)| OutcomeChoice {
        value,
        label,
        selected: value == chosen,
    })
    .collect();
    let mut page = EventsPage {
        f: Frame::new(&console, lang, Some(&live)),
        t,
        case_id: shown(&query.case_id),
        borrower_id: shown(&query.borrower_id),
        actor: shown(&query.actor),
        action: shown(&query.action),
        outcomes,
        from: shown(&query.from),
        to: shown(&query.to),
        problems: Vec::new(),
        rows: Vec::new(),
        next: None,
    };
    let filter = match query.filter(t) {
        Ok(filter) => filter,
        Err(problems) => {
            page.problems = problems;
            return html(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let events = match audit_trail::events(&console.ctx.commands(), &live.actor, &filter).await {
        Ok(events) => events,
        Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), None).await,
    };
    page.next = (events.len() == filter.limit as usize)
        .then(|| events.last().map(|e| query.next_link(e.seq)))
        .flatten();
    page.rows = events.iter().map(|e| event_row(lang, t, e)).collect();
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- story

struct StoryEvent {
    row: EventRow,
    verified: bool,
    problem: &'static str,
}

struct VoteLine {
    stage: &'static str,
    voter: String,
    decision: &'static str,
    version: i64,
    when: String,
    rationale: String,
}

struct DecisionLine {
    outcome: &'static str,
    decided_at: String,
    level: String,
    file_version: i64,
    rules_version: i64,
    content_hash: String,
}

struct CaseState {
    id: String,
    short_id: String,
    state: &'static str,
    borrower_id: String,
    amount: String,
    version: i64,
    originator: String,
    opened_on: String,
    return_reason: Option<String>,
    votes: Vec<VoteLine>,
    decision: Option<DecisionLine>,
}

struct ProofHead {
    size: u64,
    root: String,
    signed_at: String,
}

#[derive(Template)]
#[template(path = "audit_case.html")]
struct StoryPage {
    f: Frame,
    t: &'static AuditTexts,
    c: CaseState,
    head: ProofHead,
    all_verified: bool,
    events: Vec<StoryEvent>,
}

fn case_state(lang: Lang, t: &AuditTexts, case: &CreditCase) -> CaseState {
    let m = lang.messages();
    CaseState {
        id: case.id.to_string(),
        short_id: short(case.id),
        state: m.state(case.status),
        borrower_id: case.file.borrower_id.to_string(),
        amount: lang.money(case.file.amount.amount(), case.file.amount.currency_code()),
        version: case.version,
        originator: case.originator.to_string(),
        opened_on: lang.date_time(case.created_at),
        return_reason: case.return_reason.clone(),
        votes: case
            .votes
            .iter()
            .map(|v| VoteLine {
                stage: match v.stage {
                    VoteStage::First => t.stage_first,
                    VoteStage::Second => t.stage_second,
                },
                voter: v.voter.staff_id.to_string(),
                decision: match v.decision {
                    VoteDecision::Approve => t.approve,
                    VoteDecision::Decline => t.decline,
                },
                version: v.file_version,
                when: lang.date_time(v.cast_at),
                rationale: v.rationale.clone(),
            })
            .collect(),
        decision: case.decision.as_ref().map(|d| DecisionLine {
            outcome: m.state(case.status),
            decided_at: lang.date_time(d.decided_at),
            level: if d.level_name.is_empty() {
                d.level.to_string()
            } else {
                format!("{} ({})", d.level, d.level_name)
            },
            file_version: d.file_version,
            rules_version: d.rules_version,
            content_hash: d.content_hash.clone(),
        }),
    }
}

/// Whether `event` is intact against the signed tree head `size`, `root`:
/// its body hashes to its stored leaf and the leaf's inclusion proof (the
/// proof `GET /v1/events/{id}/proof` hands out) leads to the signed root.
fn prove(
    t: &AuditTexts,
    path: Option<&[creditops_audit::Hash]>,
    size: u64,
    root: &creditops_audit::Hash,
    event: &StoredAuditEvent,
) -> Result<(), &'static str> {
    let leaf = leaf_hash(&event.body);
    if hash_from_slice(&event.leaf_hash) != Some(leaf) {
        return Err(t.body_changed);
    }
    let index = u64::try_from(event.seq - 1).map_err(|_| t.not_in_tree)?;
    let path = path.ok_or(t.not_in_tree)?;
    verify_inclusion(&leaf, index, size, path, root).map_err(|_| t.not_in_tree)
}

/// Every event of case `id`, page by page as the API hands them out (each
/// query audited, A7).
async fn case_events(
    commands: &Context,
    live: &LiveSession,
    id: CaseId,
) -> Result<Vec<StoredAuditEvent>, CommandError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let filter = AuditFilter {
            case_id: Some(id),
            after_seq: after,
            limit: STORY_PAGE,
            ..AuditFilter::default()
        };
        let page = audit_trail::events(commands, &live.actor, &filter).await?;
        let full = page.len() == STORY_PAGE as usize;
        after = page.last().map(|e| e.seq);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

async fn case_story(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}";
    let stands_for = [
        ("/v1/cases/{id}", "GET"),
        ("/v1/events", "GET"),
        ("/v1/events/{id}/proof", "GET"),
    ];
    let (live, lang) = match open(&console, &headers, ROUTE, &stands_for).await {
        Ok(open) => open,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let Ok(id) = id.parse::<CaseId>() else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            t.not_found,
            None,
        );
    };
    let Some((keys, key)) = signing(&console) else {
        return no_key(&console, lang, &live);
    };
    let commands = console.ctx.commands();
    let case = match audit_trail::read_case(&commands, &live.actor, id).await {
        Ok(case) => case,
        Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), Some(id)).await,
    };
    let events = match case_events(&commands, &live, id).await {
        Ok(events) => events,
        Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), Some(id)).await,
    };
    // A freshly signed checkpoint over the whole log, as the proof route
    // signs one, handed out (and recorded) once for the page's proofs.
    let proven = async {
        let mut tree = StoredTree::open(&commands).await?;
        let head = tree.head();
        // Events linked after the tree was read are not in it (yet).
        let indices: Vec<u64> = events
            .iter()
            .filter_map(|e| u64::try_from(e.seq - 1).ok())
            .filter(|index| *index < head.size)
            .collect();
        let paths = tree.inclusion_proofs(&indices).await?;
        let paths: HashMap<u64, Vec<creditops_audit::Hash>> = indices
            .into_iter()
            .zip(paths)
            .map(|(index, (_, path))| (index, path))
            .collect();
        Ok::<_, CommandError>((tree, head, paths))
    };
    let (stored, tree, paths) = match proven.await {
        Ok(proven) => proven,
        Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), Some(id)).await,
    };
    let Ok(note) = key.sign_checkpoint(&keys.origin, tree.size, &tree.root) else {
        return unavailable(&console, lang, &"the checkpoint could not be signed");
    };
    let signed_at = Utc::now();
    let handed = StoredCheckpoint {
        tree_size: tree.size,
        root: tree.root,
        note: note.clone(),
        signed_at,
    };
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    if let Err(e) = stored
        .record_read(
            &commands,
            &live.actor,
            AuditAction::AuditProof,
            json!({"case_id": id, "seqs": seqs, "size": tree.size, "console": true}),
            Some(&handed),
        )
        .await
    {
        return refused(&console, lang, &live, ROUTE, e.into(), Some(id)).await;
    }
    // The tree head the proofs are checked against is the one the signed
    // note carries, once its signature verifies with the published key.
    let signed = parse_and_verify(&note, &[key.verifier_key()])
        .ok()
        .filter(|c| c.origin == keys.origin);
    let events: Vec<StoryEvent> = events
        .iter()
        .map(|event| {
            let result = match &signed {
                Some(head) => {
                    let path = u64::try_from(event.seq - 1)
                        .ok()
                        .and_then(|index| paths.get(&index));
                    prove(t, path.map(Vec::as_slice), head.size, &head.root, event)
                }
                None => Err(t.checkpoint_bad),
            };
            StoryEvent {
                row: event_row(lang, t, event),
                verified: result.is_ok(),
                problem: result.err().unwrap_or_default(),
            }
        })
        .collect();
    let all_verified = events.iter().all(|e| e.verified);
    html(
        StatusCode::OK,
        &StoryPage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            c: case_state(lang, t, &case),
            head: ProofHead {
                size: tree.size,
                root: hex_string(&tree.root),
                signed_at: lang.date_time(signed_at),
            },
            all_verified,
            events,
        },
    )
}

// ---------------------------------------------------------------- checkpoint

struct KeyLine {
    key_id: String,
    verifier_key: String,
    public_key_pem: String,
}

#[derive(Template)]
#[template(path = "audit_checkpoint.html")]
struct CheckpointPage {
    f: Frame,
    t: &'static AuditTexts,
    origin: String,
    size: u64,
    root: String,
    signed_at: String,
    signatures: Vec<String>,
    note: String,
    key_name: String,
    key: KeyLine,
    retired: Vec<KeyLine>,
}

fn key_line(key: &VerifierKey) -> KeyLine {
    KeyLine {
        key_id: hex_string(&key.key_id()),
        verifier_key: key.to_string(),
        public_key_pem: key.public_key_pem(),
    }
}

async fn checkpoint_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    const ROUTE: &str = "/console/checkpoint";
    let stands_for = [("/v1/checkpoint", "GET"), ("/v1/checkpoint/key", "GET")];
    let (live, lang) = match open(&console, &headers, ROUTE, &stands_for).await {
        Ok(open) => open,
        Err(answer) => return answer,
    };
    let Some((keys, key)) = signing(&console) else {
        return no_key(&console, lang, &live);
    };
    let commands = console.ctx.commands();
    let stored = match StoredTree::open(&commands).await {
        Ok(stored) => stored,
        Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), None).await,
    };
    let tree = stored.head();
    let Ok(note) = key.sign_checkpoint(&keys.origin, tree.size, &tree.root) else {
        return unavailable(&console, lang, &"the checkpoint could not be signed");
    };
    let signed_at = Utc::now();
    let handed = StoredCheckpoint {
        tree_size: tree.size,
        root: tree.root,
        note: note.clone(),
        signed_at,
    };
    if let Err(e) = stored
        .record_read(
            &commands,
            &live.actor,
            AuditAction::AuditCheckpoint,
            json!({"size": tree.size}),
            Some(&handed),
        )
        .await
    {
        return refused(&console, lang, &live, ROUTE, e.into(), None).await;
    }
    // The signature lines of the note (after the blank line).
    let signatures = note
        .split_once("\n\n")
        .map(|(_, sigs)| sigs.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    html(
        StatusCode::OK,
        &CheckpointPage {
            f: Frame::new(&console, lang, Some(&live)),
            t: texts(lang),
            origin: keys.origin.clone(),
            size: tree.size,
            root: hex_string(&tree.root),
            signed_at: lang.date_time(signed_at),
            signatures,
            note,
            key_name: key.name().to_owned(),
            key: key_line(&key.verifier_key()),
            retired: keys.retired_keys.iter().map(key_line).collect(),
        },
    )
}

struct ResultLine {
    label: &'static str,
    value: String,
}

struct MissingRow {
    table: String,
    key: String,
    event_id: String,
}

#[derive(Template)]
#[template(path = "audit_result.html")]
struct ResultPage {
    f: Frame,
    t: &'static AuditTexts,
    heading: &'static str,
    ok: bool,
    verdict: &'static str,
    lines: Vec<ResultLine>,
    missing: Vec<MissingRow>,
}

/// The verification form: which of its two buttons was pressed.
#[derive(Deserialize)]
struct VerifyForm {
    csrf: Option<String>,
    /// `true`: from the first event (`POST /v1/verify?full=true`).
    full: Option<String>,
}

async fn verify_chain(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<VerifyForm>,
) -> Response {
    const ROUTE: &str = "/console/verify";
    let stands_for = [("/v1/verify", "POST")];
    let (live, lang) =
        match posted(&console, &headers, form.csrf.as_deref(), ROUTE, &stands_for).await {
            Ok(open) => open,
            Err(answer) => return answer,
        };
    let t = texts(lang);
    let origin = console
        .settings
        .audit_keys
        .as_ref()
        .map(|k| k.origin.clone())
        .unwrap_or_default();
    let keys = console
        .settings
        .audit_keys
        .as_ref()
        .and_then(|k| Some((k, k.signing_key.as_deref()?)))
        .map(|(k, signing)| ExportKeys {
            signing,
            retired: &k.retired_keys,
        });
    let commands = console.ctx.commands();
    let full = form.full.as_deref() == Some("true");
    let verified = audit_trail::verify(&commands, &live.actor, &origin, keys, full);
    let check = match verified.await {
        Ok(check) => check,
        Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), None).await,
    };
    let (ok, verdict, lines) = match check {
        ChainCheck::Intact {
            events,
            last_seq,
            head,
            mode,
            from_size,
            ..
        } => (
            true,
            t.chain_intact,
            vec![
                ResultLine {
                    label: t.checked_from,
                    value: match mode {
                        VerifyMode::Full => t.from_first.to_owned(),
                        VerifyMode::Incremental => format!("{} {}", t.since_head, from_size + 1),
                    },
                },
                ResultLine {
                    label: t.events_checked,
                    value: events.to_string(),
                },
                ResultLine {
                    label: t.last_seq,
                    value: last_seq.map(|s| s.to_string()).unwrap_or_default(),
                },
                ResultLine {
                    label: t.head,
                    value: head,
                },
            ],
        ),
        ChainCheck::Broken {
            first_bad_seq,
            reason,
            ..
        } => (
            false,
            t.chain_broken,
            vec![
                ResultLine {
                    label: t.first_bad_seq,
                    value: first_bad_seq.to_string(),
                },
                ResultLine {
                    label: t.reason,
                    value: reason,
                },
            ],
        ),
    };
    html(
        StatusCode::OK,
        &ResultPage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            heading: t.verify_button,
            ok,
            verdict,
            lines,
            missing: Vec::new(),
        },
    )
}

async fn reconcile(State(console): State<Console>, headers: HeaderMap) -> Response {
    const ROUTE: &str = "/console/reconcile";
    let (live, lang) = match open(&console, &headers, ROUTE, &[("/v1/reconcile", "GET")]).await {
        Ok(open) => open,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let commands = console.ctx.commands();
    let rows =
        match audit_trail::unaudited_rows(console.ctx.store.as_ref(), RECONCILE_LIMIT + 1).await {
            Ok(rows) => rows,
            Err(e) => return refused(&console, lang, &live, ROUTE, e.into(), None).await,
        };
    let truncated = rows.len() > RECONCILE_LIMIT as usize;
    let missing: Vec<MissingRow> = rows
        .iter()
        .take(RECONCILE_LIMIT as usize)
        .map(|row| MissingRow {
            table: row.table.clone(),
            key: row.key.clone(),
            event_id: row
                .audit_event_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        })
        .collect();
    if let Err(e) = audit_trail::record_read(
        &commands,
        &live.actor,
        AuditAction::AuditReconcile,
        json!({"missing": missing.len(), "truncated": truncated}),
        None,
    )
    .await
    {
        return refused(&console, lang, &live, ROUTE, e.into(), None).await;
    }
    let ok = missing.is_empty();
    let mut lines = Vec::new();
    if truncated {
        lines.push(ResultLine {
            label: t.reconcile_title,
            value: t.reconcile_truncated.to_owned(),
        });
    }
    html(
        StatusCode::OK,
        &ResultPage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            heading: t.reconcile_title,
            ok,
            verdict: if ok {
                t.reconcile_ok
            } else {
                t.reconcile_missing
            },
            lines,
            missing,
        },
    )
}

// ---------------------------------------------------------------- export

/// A bundle built for one session, held for its download.
struct HeldBundle {
    id: String,
    session: String,
    file_name: String,
    /// The archive in an unnamed temporary file: gone once dropped here and
    /// no download reads it any more.
    file: Arc<std::fs::File>,
    len: u64,
    built_at: DateTime<Utc>,
}

/// The bundles waiting for their download (in this process).
static BUNDLES: Mutex<Vec<HeldBundle>> = Mutex::new(Vec::new());

fn hold(bundle: HeldBundle) {
    let mut held = BUNDLES.lock().unwrap_or_else(|p| p.into_inner());
    let cutoff = Utc::now() - chrono::Duration::minutes(BUNDLE_MINUTES);
    held.retain(|b| b.built_at > cutoff);
    while held.len() >= BUNDLES_HELD {
        held.remove(0);
    }
    held.push(bundle);
}

fn held(id: &str, session: &str) -> Option<(String, Arc<std::fs::File>, u64)> {
    let held = BUNDLES.lock().unwrap_or_else(|p| p.into_inner());
    let cutoff = Utc::now() - chrono::Duration::minutes(BUNDLE_MINUTES);
    held.iter()
        .find(|b| {
            b.id == id && crate::session::same_secret(&b.session, session) && b.built_at > cutoff
        })
        .map(|b| (b.file_name.clone(), b.file.clone(), b.len))
}

struct Ready {
    href: String,
    first_seq: i64,
    last_seq: i64,
    size: u64,
    root: String,
    key: String,
    previous_size: Option<u64>,
}

#[derive(Template)]
#[template(path = "audit_export.html")]
struct ExportPage {
    f: Frame,
    t: &'static AuditTexts,
    from: String,
    to: String,
    problem: Option<String>,
    rule: Option<String>,
    ready: Option<Ready>,
}

fn export_page(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    form: &ExportForm,
    problem: Option<(String, Option<String>)>,
    ready: Option<Ready>,
) -> Response {
    let (problem, rule) = match problem {
        Some((text, rule)) => (Some(text), rule),
        None => (None, None),
    };
    html(
        status,
        &ExportPage {
            f: Frame::new(console, lang, Some(live)),
            t: texts(lang),
            from: form.from.clone(),
            to: form.to.clone(),
            problem,
            rule,
            ready,
        },
    )
}

async fn export_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match open(
        &console,
        &headers,
        "/console/exports",
        &[("/v1/exports", "POST")],
    )
    .await
    {
        Ok(open) => open,
        Err(answer) => return answer,
    };
    export_page(
        &console,
        lang,
        &live,
        StatusCode::OK,
        &ExportForm::default(),
        None,
        None,
    )
}

#[derive(Deserialize, Default)]
struct ExportForm {
    csrf: Option<String>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

async fn start_export(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ExportForm>,
) -> Response {
    const ROUTE: &str = "/console/exports";
    let stands_for = [("/v1/exports", "POST")];
    let (live, lang) =
        match posted(&console, &headers, form.csrf.as_deref(), ROUTE, &stands_for).await {
            Ok(open) => open,
            Err(answer) => return answer,
        };
    let t = texts(lang);
    let Some((keys, key)) = signing(&console) else {
        return no_key(&console, lang, &live);
    };
    let time = |text: &str| {
        let text = text.trim();
        if text.is_empty() {
            Ok(None)
        } else {
            typed_time(text).map(Some).ok_or(())
        }
    };
    let (Ok(from), Ok(to)) = (time(&form.from), time(&form.to)) else {
        return export_page(
            &console,
            lang,
            &live,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            Some((t.bad_time.to_owned(), None)),
            None,
        );
    };
    let export_keys = ExportKeys {
        signing: key,
        retired: &keys.retired_keys,
    };
    match build_export(
        &console,
        &live,
        keys,
        export_keys,
        Selection::Time(from, to),
    )
    .await
    {
        Ok(archive) => {
            let prepared = archive.prepared;
            // Not a secret: only the session that started the export gets it.
            let id = uuid::Uuid::new_v4().to_string();
            hold(HeldBundle {
                id: id.clone(),
                session: live.session.token_hash.clone(),
                file_name: format!("{}.tar", prepared.dir_name()),
                file: Arc::new(archive.file),
                len: archive.len,
                built_at: Utc::now(),
            });
            let ready = Ready {
                href: format!("/console/exports/{id}"),
                first_seq: prepared.first_seq,
                last_seq: prepared.last_seq,
                size: prepared.tree_size,
                root: hex_string(&prepared.root),
                key: prepared.key.clone(),
                previous_size: prepared.previous_size,
            };
            export_page(
                &console,
                lang,
                &live,
                StatusCode::OK,
                &form,
                None,
                Some(ready),
            )
        }
        Err(e) => {
            if !e.status().is_client_error() {
                return unavailable(&console, lang, &e.detail);
            }
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            let refusal = Refusal::of(lang, &e);
            export_page(
                &console,
                lang,
                &live,
                e.status(),
                &form,
                Some((refusal.text, refusal.rule)),
                None,
            )
        }
    }
}

/// The export as `POST /v1/exports` builds it: the bundle with a fresh
/// checkpoint as a tar archive, and the export's audit event (committed
/// before the archive is handed out).
async fn build_export(
    console: &Console,
    live: &LiveSession,
    keys: &AuditKeys,
    export_keys: ExportKeys<'_>,
    selection: Selection,
) -> Result<audit_trail::ExportArchive, ApiError> {
    let commands = console.ctx.commands();
    let archive =
        audit_trail::export_archive(&commands, &keys.origin, export_keys, selection, Utc::now())
            .await?;
    let prepared = &archive.prepared;
    audit_trail::record_read(
        &commands,
        &live.actor,
        AuditAction::AuditExported,
        prepared.audit_data(),
        Some(&prepared.checkpoint),
    )
    .await?;
    Ok(archive)
}

async fn download(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (live, lang) = match open(
        &console,
        &headers,
        "/console/exports/{id}",
        &[("/v1/exports", "POST")],
    )
    .await
    {
        Ok(open) => open,
        Err(answer) => return answer,
    };
    let Some((file_name, file, len)) = held(&id, &live.session.token_hash) else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            texts(lang).download_gone,
            None,
        );
    };
    creditops_http::download::tar_attachment(file, len, &file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, body: &[u8]) -> StoredAuditEvent {
        StoredAuditEvent {
            seq,
            event_id: uuid::Uuid::nil(),
            body: body.to_vec(),
            leaf_hash: leaf_hash(body).to_vec(),
            chain_hash: vec![0; 32],
            recorded_at: Utc::now(),
            actor: None,
            action: "case.created".to_owned(),
            outcome: "ok".to_owned(),
            case_id: None,
            borrower_id: None,
        }
    }

    #[test]
    fn an_event_is_verified_only_with_its_own_body_under_the_signed_root() {
        let events: Vec<StoredAuditEvent> = (1..=5)
            .map(|seq| event(seq, format!("{{\"n\":{seq}}}").as_bytes()))
            .collect();
        let leaves = events.iter().map(|e| leaf_hash(&e.body)).collect();
        let tree = creditops_audit::MerkleTree::from_leaves(leaves);
        let root = tree.root();
        let path = |e: &StoredAuditEvent| tree.inclusion_proof(e.seq as u64 - 1, 5).unwrap();
        for e in &events {
            assert_eq!(prove(&EN, Some(&path(e)), 5, &root, e), Ok(()));
        }
        // A body changed after the fact no longer matches its leaf.
        let mut changed = event(3, b"{\"n\":3}");
        changed.body = b"{\"n\":33}".to_vec();
        assert_eq!(
            prove(&EN, Some(&path(&changed)), 5, &root, &changed),
            Err(EN.body_changed)
        );
        // A root other than the signed one is not reached.
        let other = creditops_audit::MerkleTree::from_leaves(vec![leaf_hash(b"x"); 5]).root();
        assert_eq!(
            prove(&EN, Some(&path(&events[1])), 5, &other, &events[1]),
            Err(EN.not_in_tree)
        );
        // A leaf moved to another position is not proven there.
        let mut moved = event(2, b"{\"n\":4}");
        moved.seq = 2;
        assert_eq!(
            prove(&DE, Some(&path(&moved)), 5, &root, &moved),
            Err(DE.not_in_tree)
        );
        // An event the tree does not reach (linked after it was read) is
        // not proven.
        assert_eq!(prove(&EN, None, 5, &root, &events[0]), Err(EN.not_in_tree));
    }

    #[test]
    fn typed_times_are_utc() {
        let at = |s: &str| typed_time(s).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2026-12-06T09:30").as_deref(),
            Some("2026-12-06T09:30:00+00:00")
        );
        assert_eq!(
            at("2026-12-06").as_deref(),
            Some("2026-12-06T00:00:00+00:00")
        );
        assert_eq!(
            at("2026-12-06T10:30:00+01:00").as_deref(),
            Some("2026-12-06T09:30:00+00:00")
        );
        assert_eq!(at("gestern"), None);
    }

    #[test]
    fn the_next_page_keeps_the_filters() {
        let query = SearchQuery {
            actor: Some("lo-1".to_owned()),
            action: Some("case.first_vote".to_owned()),
            from: Some("2026-12-06T09:30".to_owned()),
            case_id: Some(String::new()),
            ..SearchQuery::default()
        };
        assert_eq!(
            query.next_link(50),
            "/console/events?actor=lo-1&action=case.first_vote&from=2026-12-06T09%3A30&after=50"
        );
    }
}
