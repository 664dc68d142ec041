//! The user administrators' desk on the admin service: the staff directory
//! with every person's dated units, roles and competence levels (S4), a
//! person's page with their pending changes, the four-eyes inbox (approve
//! or reject another administrator's proposal, never one's own, S9), the
//! proposal of a role assignment or a competence grant (checked against the
//! SoD matrix when proposed and again when approved, S3), and the
//! entitlement report as CSV. Each page is allowed exactly when the API
//! route it stands for is, and runs the API's command.

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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use creditops_commands::proposals;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{Change, ChangeProposal, ProposalKind, ProposalStatus};
use creditops_domain::rules::in_force;
use creditops_domain::{
    CompetenceOrder, DivergencePolicy, Role, RuleParameters, Side, StaffId, StaffMember,
    StaffStatus, Timestamp,
};
use creditops_http::proposals as four_eyes;
use creditops_http::reports::{FormatQuery, entitlement_report};
use creditops_http::{ApiError, IdempotencyKey, Principal, run_command};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

/// The proposals this desk decides: the directory and the rules (S9).
const DESK: Role = Role::UserAdmin;

/// People on one page of the directory; proposals on one page of the inbox.
const PAGE: u32 = 50;

/// How many pending proposals the directory and a person's page look
/// through for the pending changes of a person (the API's largest page).
const PENDING_SCAN: u32 = 1000;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "admin" {
        return Router::new();
    }
    Router::new()
        .route("/console/staff", get(directory))
        .route("/console/staff/{id}", get(person))
        .route("/console/proposals", get(inbox).post(propose))
        .route("/console/proposals/new", get(new_proposal))
        .route("/console/proposals/{id}/approve", post(approve))
        .route("/console/proposals/{id}/reject", post(reject))
        .route("/console/reports/entitlements.csv", get(entitlements_csv))
        .route("/console/rules", get(rules_page).post(propose_rules))
}

/// The admin desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let t = texts(lang);
    vec![
        NavLink::to("/console/staff", t.directory),
        NavLink::to("/console/proposals", t.inbox),
        NavLink::to("/console/proposals/new", t.propose),
        NavLink::to("/console/rules", t.rules),
    ]
}

/// This desk's texts in one language.
pub(crate) struct Texts {
    directory: &'static str,
    directory_intro: &'static str,
    inbox: &'static str,
    inbox_intro: &'static str,
    propose: &'static str,
    propose_intro: &'static str,
    person: &'static str,
    status: &'static str,
    active: &'static str,
    suspended: &'static str,
    units: &'static str,
    roles: &'static str,
    competences: &'static str,
    unit: &'static str,
    role: &'static str,
    side: &'static str,
    level: &'static str,
    valid_from: &'static str,
    valid_to: &'static str,
    open_ended: &'static str,
    since: &'static str,
    state: &'static str,
    current: &'static str,
    ended: &'static str,
    future: &'static str,
    none: &'static str,
    pending_changes: &'static str,
    waiting_second_admin: &'static str,
    no_pending_for_person: &'static str,
    change: &'static str,
    proposed_by: &'static str,
    proposed_at: &'static str,
    decided_by: &'static str,
    no_proposals: &'static str,
    approve: &'static str,
    reject: &'static str,
    own_proposal: &'static str,
    approved: &'static str,
    rejected: &'static str,
    proposed: &'static str,
    tab_pending: &'static str,
    tab_approved: &'static str,
    tab_rejected: &'static str,
    staff_id: &'static str,
    role_heading: &'static str,
    competence_heading: &'static str,
    submit_role: &'static str,
    submit_competence: &'static str,
    date_hint: &'static str,
    optional: &'static str,
    propose_for: &'static str,
    entitlements: &'static str,
    entitlements_note: &'static str,
    bad_staff_id: &'static str,
    rules: &'static str,
    rules_intro: &'static str,
    version: &'static str,
    in_force: &'static str,
    superseded: &'static str,
    competence_order: &'static str,
    cooling_off: &'static str,
    months: &'static str,
    divergence: &'static str,
    divergence_escalate: &'static str,
    divergence_decline: &'static str,
    single_vote: &'static str,
    lane_closed: &'static str,
    reservation: &'static str,
    days: &'static str,
    up_to: &'static str,
    unbounded: &'static str,
    propose_rules: &'static str,
    propose_rules_intro: &'static str,
    submit_rules: &'static str,
    rules_date_hint: &'static str,
    lane_hint: &'static str,
    pending_rules: &'static str,
    no_pending_rules: &'static str,
    bad_amount: &'static str,
    bad_number: &'static str,
    bad_date: &'static str,
    bad_level: &'static str,
    bad_choice: &'static str,
    check_fields: &'static str,
    not_found: &'static str,
}

static DE: Texts = Texts {
    directory: "Mitarbeiterverzeichnis",
    directory_intro: "Alle Personen mit Status, Organisationseinheiten, Rollen und Kompetenzstufen, jeweils mit Gültigkeit (S4).",
    inbox: "Vier-Augen-Anträge",
    inbox_intro: "Änderungen am Verzeichnis und an den Regeln wirken erst, wenn eine zweite Administratorin oder ein zweiter Administrator sie genehmigt (S9).",
    propose: "Änderung beantragen",
    propose_intro: "Der Antrag wird sofort gegen die Funktionstrennung geprüft (S3) und wirkt erst nach der Genehmigung durch eine zweite Administratorin oder einen zweiten Administrator (S9).",
    person: "Person",
    status: "Status",
    active: "aktiv",
    suspended: "gesperrt",
    units: "Organisationseinheiten",
    roles: "Rollen",
    competences: "Kompetenzstufen",
    unit: "Einheit",
    role: "Rolle",
    side: "Seite",
    level: "Stufe",
    valid_from: "Gültig ab",
    valid_to: "Gültig bis",
    open_ended: "offen",
    since: "seit",
    state: "Stand",
    current: "gültig",
    ended: "beendet",
    future: "künftig",
    none: "keine",
    pending_changes: "Offene Änderungen",
    waiting_second_admin: "Wartet auf die Genehmigung durch eine zweite Administratorin oder einen zweiten Administrator.",
    no_pending_for_person: "Für diese Person wartet keine Änderung auf eine Genehmigung.",
    change: "Änderung",
    proposed_by: "Beantragt von",
    proposed_at: "Beantragt am",
    decided_by: "Entschieden von",
    no_proposals: "Keine Anträge in dieser Ansicht.",
    approve: "Genehmigen",
    reject: "Ablehnen",
    own_proposal: "Ihr eigener Antrag: eine zweite Person entscheidet (S9).",
    approved: "Der Antrag ist genehmigt; die Änderung ist wirksam.",
    rejected: "Der Antrag ist abgelehnt; es wurde nichts geändert.",
    proposed: "Der Antrag ist gestellt und wartet auf die Genehmigung durch eine zweite Administratorin oder einen zweiten Administrator.",
    tab_pending: "Offen",
    tab_approved: "Genehmigt",
    tab_rejected: "Abgelehnt",
    staff_id: "Mitarbeiter-ID",
    role_heading: "Rolle zuweisen",
    competence_heading: "Kompetenzstufe vergeben",
    submit_role: "Rollenzuweisung beantragen",
    submit_competence: "Kompetenzstufe beantragen",
    date_hint: "Datum, z. B. 2026-12-06 oder 06.12.2026; heute heißt: ab der Genehmigung.",
    optional: "optional",
    propose_for: "Änderung für diese Person beantragen",
    entitlements: "Berechtigungsbericht (CSV)",
    entitlements_note: "Wer welche Rolle und Kompetenzstufe hält, seit wann und aufgrund welches genehmigten Antrags (AT 4.3.1); der Abruf wird protokolliert.",
    bad_staff_id: "Bitte die ID einer Person aus dem Verzeichnis angeben, z. B. lo-1.",
    rules: "Regelsätze",
    rules_intro: "Kompetenzordnung, Abkühlungsfrist, Umgang mit abweichenden Voten, Einzelvotum-Spur und Reservierungsdauer: jede Version gilt ab ihrem Datum; Entscheidungen werden nach dem Regelsatz ihrer Zeit geprüft (S9).",
    version: "Version",
    in_force: "in Kraft",
    superseded: "abgelöst",
    competence_order: "Kompetenzordnung",
    cooling_off: "Abkühlungsfrist (S5)",
    months: "Monate",
    divergence: "Abweichende Voten (V5)",
    divergence_escalate: "eskalieren",
    divergence_decline: "ablehnen",
    single_vote: "Einzelvotum unter (V8)",
    lane_closed: "geschlossen",
    reservation: "Reservierung (R5)",
    days: "Tage",
    up_to: "bis",
    unbounded: "unbegrenzt",
    propose_rules: "Neuen Regelsatz beantragen",
    propose_rules_intro: "Vorbelegt mit dem Regelsatz in Kraft. Er gilt ab dem gewählten Tag (00:00 UTC), frühestens morgen, und erst nach der Genehmigung durch eine zweite Administratorin oder einen zweiten Administrator.",
    submit_rules: "Regelsatz beantragen",
    rules_date_hint: "Ein künftiger Tag, z. B. 07.12.2026.",
    lane_hint: "Leer lassen: jede Entscheidung braucht beide Voten.",
    pending_rules: "Beantragte Regelsätze",
    no_pending_rules: "Kein Regelsatz wartet auf eine Genehmigung.",
    bad_amount: "Bitte einen Betrag angeben, z. B. 250.000,00.",
    bad_number: "Bitte eine ganze Zahl angeben.",
    bad_date: "Bitte ein Datum angeben, z. B. 2026-12-06 oder 06.12.2026.",
    bad_level: "Bitte eine Stufe von 1 bis 9 wählen.",
    bad_choice: "Bitte einen Eintrag aus der Liste wählen.",
    check_fields: "Bitte prüfen Sie die markierten Felder.",
    not_found: "Diese Person oder dieser Antrag ist nicht im Verzeichnis.",
};

static EN: Texts = Texts {
    directory: "Staff directory",
    directory_intro: "Everyone with their status, org units, roles and competence levels, each with its validity (S4).",
    inbox: "Four-eyes proposals",
    inbox_intro: "Changes to the directory and the rules take effect only when a second administrator approves them (S9).",
    propose: "Propose a change",
    propose_intro: "A proposal is checked against the segregation of duties at once (S3) and takes effect only when a second administrator approves it (S9).",
    person: "Person",
    status: "Status",
    active: "active",
    suspended: "suspended",
    units: "Org units",
    roles: "Roles",
    competences: "Competence levels",
    unit: "Unit",
    role: "Role",
    side: "Side",
    level: "Level",
    valid_from: "Valid from",
    valid_to: "Valid to",
    open_ended: "open",
    since: "since",
    state: "State",
    current: "current",
    ended: "ended",
    future: "future",
    none: "none",
    pending_changes: "Pending changes",
    waiting_second_admin: "Waiting for approval by a second administrator.",
    no_pending_for_person: "No change for this person is waiting for approval.",
    change: "Change",
    proposed_by: "Proposed by",
    proposed_at: "Proposed on",
    decided_by: "Decided by",
    no_proposals: "No proposals in this view.",
    approve: "Approve",
    reject: "Reject",
    own_proposal: "Your own proposal: a second person decides it (S9).",
    approved: "The proposal is approved; the change is in force.",
    rejected: "The proposal is rejected; nothing was changed.",
    proposed: "The proposal is made and is waiting for approval by a second administrator.",
    tab_pending: "Pending",
    tab_approved: "Approved",
    tab_rejected: "Rejected",
    staff_id: "Staff id",
    role_heading: "Assign a role",
    competence_heading: "Grant a competence level",
    submit_role: "Propose the role assignment",
    submit_competence: "Propose the competence level",
    date_hint: "A date, e.g. 2026-12-06; today means from the approval on.",
    optional: "optional",
    propose_for: "Propose a change for this person",
    entitlements: "Entitlement report (CSV)",
    entitlements_note: "Who holds which role and competence level, since when, and under which approved proposal (AT 4.3.1); the download is audited.",
    bad_staff_id: "Enter the id of a person in the directory, e.g. lo-1.",
    rules: "Rule sets",
    rules_intro: "The competence order, the cooling-off period, divergent votes, the single-vote lane and how long reservations are held: each version is in force from its date; a decision is checked under the rule set of its time (S9).",
    version: "Version",
    in_force: "in force",
    superseded: "superseded",
    competence_order: "Competence order",
    cooling_off: "Cooling-off (S5)",
    months: "months",
    divergence: "Divergent votes (V5)",
    divergence_escalate: "escalate",
    divergence_decline: "decline",
    single_vote: "Single vote below (V8)",
    lane_closed: "closed",
    reservation: "Reservation (R5)",
    days: "days",
    up_to: "up to",
    unbounded: "unbounded",
    propose_rules: "Propose a new rule set",
    propose_rules_intro: "Prefilled with the rule set in force. It takes effect from the chosen day (00:00 UTC), tomorrow at the earliest, and only once a second administrator approves it.",
    submit_rules: "Propose the rule set",
    rules_date_hint: "A later day, e.g. 2026-12-07.",
    lane_hint: "Leave empty: every decision needs both votes.",
    pending_rules: "Proposed rule sets",
    no_pending_rules: "No rule set is waiting for approval.",
    bad_amount: "Enter an amount, e.g. 250,000.00.",
    bad_number: "Enter a whole number.",
    bad_date: "Enter a date, e.g. 2026-12-06.",
    bad_level: "Choose a level from 1 to 9.",
    bad_choice: "Choose an entry of the list.",
    check_fields: "Please check the marked fields.",
    not_found: "There is no such person or proposal in the directory.",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

fn role_label(lang: Lang, role: Role) -> &'static str {
    match (lang, role) {
        (Lang::De, Role::LoanOfficer) => "Kreditberatung Markt",
        (Lang::De, Role::CreditAnalyst) => "Kreditanalyse Marktfolge",
        (Lang::De, Role::RiskController) => "Risikocontrolling",
        (Lang::De, Role::InternalAuditor) => "Interne Revision",
        (Lang::De, Role::UserAdmin) => "Benutzeradministration",
        (Lang::En, Role::LoanOfficer) => "Loan officer",
        (Lang::En, Role::CreditAnalyst) => "Credit analyst",
        (Lang::En, Role::RiskController) => "Risk controller",
        (Lang::En, Role::InternalAuditor) => "Internal auditor",
        (Lang::En, Role::UserAdmin) => "User administrator",
    }
}

fn side_label(lang: Lang, side: Side) -> &'static str {
    match (lang, side) {
        (Lang::De, Side::Market) => "Markt",
        (Lang::De, Side::Backoffice) => "Marktfolge",
        (Lang::De, Side::Risk) => "Risikocontrolling",
        (Lang::De, Side::Audit) => "Revision",
        (Lang::De, Side::Admin) => "Benutzerverwaltung",
        (Lang::En, Side::Market) => "market",
        (Lang::En, Side::Backoffice) => "back office",
        (Lang::En, Side::Risk) => "risk control",
        (Lang::En, Side::Audit) => "audit",
        (Lang::En, Side::Admin) => "administration",
    }
}

/// What a refusal under an administration rule means and what to do next;
/// `own` says the refusal is of the person's own proposal (S9, 403).
fn explanation(lang: Lang, rule: &str, own: bool) -> Option<&'static str> {
    Some(match (lang, rule) {
        (Lang::De, "S3") => {
            "Diese Rolle ist mit einer Rolle der Person unvereinbar oder gehört zu einer anderen Seite als ihre Einheit (Funktionstrennung). Beenden Sie zuerst die unvereinbare Rolle oder beantragen Sie einen Wechsel der Einheit."
        }
        (Lang::En, "S3") => {
            "This role cannot be combined with a role the person holds, or belongs to another side than their unit (segregation of duties). End the incompatible role first, or propose a move to a unit of the role's side."
        }
        (Lang::De, "S4") => {
            "Die Historie wird nie rückwirkend geändert: Rollen und Kompetenzen beginnen heute oder später. Wählen Sie als Beginn heute oder ein späteres Datum."
        }
        (Lang::En, "S4") => {
            "The dated history is never rewritten: roles and competences start today or later. Choose today or a later date as the start."
        }
        (Lang::De, "S5") => {
            "Die Abkühlungsfrist nach dem Wechsel aus dem Markt ist noch nicht abgelaufen. Wählen Sie einen späteren Beginn."
        }
        (Lang::En, "S5") => {
            "The cooling-off period after leaving market has not passed yet. Choose a later start."
        }
        (Lang::De, "S7") => {
            "Niemand ändert die eigenen Rollen, Kompetenzen, Einheiten oder den eigenen Status. Eine andere Administratorin oder ein anderer Administrator muss die Änderung beantragen."
        }
        (Lang::En, "S7") => {
            "Nobody changes their own roles, competences, unit or status. Another administrator must propose this change."
        }
        (Lang::De, "S9") if own => {
            "Vier-Augen-Prinzip: Sie haben diese Änderung selbst beantragt, und wer beantragt, entscheidet nicht. Eine zweite Administratorin oder ein zweiter Administrator muss entscheiden."
        }
        (Lang::En, "S9") if own => {
            "Four eyes: you proposed this change yourself, and whoever proposes a change does not decide it. A second administrator must decide it."
        }
        (Lang::De, "S9") => {
            "Änderungen an Rollen, Kompetenzen und Regeln sind Vier-Augen-Änderungen, die ab ihrer Genehmigung gelten, nie rückwirkend; mindestens zwei Benutzeradministratoren bleiben immer. Prüfen Sie das Datum oder nehmen Sie zuerst eine weitere Administratorin oder einen weiteren Administrator auf."
        }
        (Lang::En, "S9") => {
            "Changes to roles, competence levels and the rules are four-eyes changes that take effect from their approval on, never in the past, and at least two user administrators always remain. Check the date, or onboard another administrator first."
        }
        (Lang::De, "S8") => "Ihre Rollen erlauben diese Aktion an diesem Arbeitsplatz nicht.",
        (Lang::En, "S8") => "Your roles do not allow this action at this desk.",
        _ => return None,
    })
}

/// A command's refusal in plain language with its rule and what to do.
fn refusal_of(lang: Lang, error: &ApiError) -> Refusal {
    let rule = error.rule.map(|r| r.to_string());
    let own = error.status() == StatusCode::FORBIDDEN;
    match rule.as_deref().and_then(|r| explanation(lang, r, own)) {
        Some(plain) => Refusal {
            text: format!("{plain} ({})", error.detail),
            rule,
        },
        None => Refusal::of(lang, error),
    }
}

/// One dated entry of a person's history.
struct Dated {
    what: String,
    side: String,
    from: String,
    to: String,
    /// current, ended or future, as text.
    state: &'static str,
    /// current, ended or future, as a style class.
    class: &'static str,
    /// A short line for the directory: "what (since ...)".
    line: String,
}

fn dated(
    lang: Lang,
    t: &Texts,
    now: Timestamp,
    what: String,
    side: String,
    from: Timestamp,
    to: Option<Timestamp>,
) -> Dated {
    let (state, class) = if from > now {
        (t.future, "future")
    } else if to.is_some_and(|to| to <= now) {
        (t.ended, "ended")
    } else {
        (t.current, "current")
    };
    let line = match to {
        Some(to) => format!("{what} ({} – {})", lang.date(from), lang.date(to)),
        None => format!("{what} ({} {})", t.since, lang.date(from)),
    };
    Dated {
        what,
        side,
        from: lang.date(from),
        to: to.map_or_else(|| t.open_ended.to_owned(), |to| lang.date(to)),
        state,
        class,
        line,
    }
}

/// A person as the directory shows them.
struct PersonSheet {
    id: String,
    status: &'static str,
    suspended: bool,
    units: Vec<Dated>,
    roles: Vec<Dated>,
    competences: Vec<Dated>,
}

fn person_sheet(lang: Lang, member: &StaffMember, now: Timestamp) -> PersonSheet {
    let t = texts(lang);
    PersonSheet {
        id: member.id.to_string(),
        status: match member.status {
            StaffStatus::Active => t.active,
            StaffStatus::Suspended => t.suspended,
        },
        suspended: member.status == StaffStatus::Suspended,
        units: member
            .units
            .iter()
            .map(|u| {
                dated(
                    lang,
                    t,
                    now,
                    u.unit_id.to_string(),
                    side_label(lang, u.side).to_owned(),
                    u.valid_from,
                    u.valid_to,
                )
            })
            .collect(),
        roles: member
            .roles
            .iter()
            .map(|r| {
                dated(
                    lang,
                    t,
                    now,
                    role_label(lang, r.role).to_owned(),
                    String::new(),
                    r.valid_from,
                    r.valid_to,
                )
            })
            .collect(),
        competences: member
            .competences
            .iter()
            .map(|c| {
                dated(
                    lang,
                    t,
                    now,
                    format!("{} {}", t.level, c.level),
                    side_label(lang, c.side).to_owned(),
                    c.valid_from,
                    c.valid_to,
                )
            })
            .collect(),
    }
}

/// What a proposal changes, as a sentence (never raw JSON).
fn describe(lang: Lang, proposal: &ChangeProposal) -> String {
    let Ok(change) = serde_json::from_value::<Change>(proposal.payload.clone()) else {
        return proposal.kind.as_str().replace('_', " ");
    };
    describe_change(lang, &change)
}

fn describe_change(lang: Lang, change: &Change) -> String {
    let de = lang == Lang::De;
    let period = |from: &Timestamp, to: &Option<Timestamp>| match (de, to) {
        (true, Some(to)) => format!("vom {} bis {}", lang.date(*from), lang.date(*to)),
        (true, None) => format!("ab {}", lang.date(*from)),
        (false, Some(to)) => format!("from {} to {}", lang.date(*from), lang.date(*to)),
        (false, None) => format!("from {}", lang.date(*from)),
    };
    match change {
        Change::RoleAssignment {
            staff_id,
            role,
            valid_from,
            valid_to,
        } => {
            let role = role_label(lang, *role);
            let when = period(valid_from, valid_to);
            if de {
                format!("Rolle {role} für {staff_id} {when}")
            } else {
                format!("Role {role} for {staff_id} {when}")
            }
        }
        Change::CompetenceGrant {
            staff_id,
            side,
            level,
            valid_from,
            valid_to,
        } => {
            let side = side_label(lang, *side);
            let when = period(valid_from, valid_to);
            if de {
                format!("Kompetenzstufe {level} ({side}) für {staff_id} {when}")
            } else {
                format!("Competence level {level} on the {side} side for {staff_id} {when}")
            }
        }
        Change::RuleSet {
            valid_from,
            parameters,
        } => {
            let summary = rules_summary(lang, parameters);
            if de {
                format!(
                    "Neuer Regelsatz ab {}: {summary}",
                    lang.date_time(*valid_from)
                )
            } else {
                format!(
                    "A new rule set from {}: {summary}",
                    lang.date_time(*valid_from)
                )
            }
        }
        Change::StaffOnboarding {
            staff_id,
            units,
            roles,
            ..
        } => {
            let units = units
                .iter()
                .map(|u| u.unit_id.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let roles = roles
                .iter()
                .map(|r| role_label(lang, r.role))
                .collect::<Vec<_>>()
                .join(", ");
            if de {
                format!("Neue Person {staff_id} in {units}; Rollen: {roles}")
            } else {
                format!("New person {staff_id} in {units}; roles: {roles}")
            }
        }
        Change::UnitMove { staff_id, unit_id } => {
            if de {
                format!("{staff_id} wechselt in die Einheit {unit_id}")
            } else {
                format!("{staff_id} moves to unit {unit_id}")
            }
        }
        Change::RoleEnd { staff_id, role } => {
            let role = role_label(lang, *role);
            if de {
                format!("Rolle {role} von {staff_id} endet")
            } else {
                format!("Role {role} of {staff_id} ends")
            }
        }
        Change::Suspension { staff_id, lifted } => match (de, lifted) {
            (true, false) => format!("{staff_id} wird gesperrt"),
            (true, true) => format!("Die Sperre von {staff_id} wird aufgehoben"),
            (false, false) => format!("{staff_id} is suspended"),
            (false, true) => format!("The suspension of {staff_id} is lifted"),
        },
        Change::Leaver { staff_id } => {
            if de {
                format!("{staff_id} verlässt die Bank")
            } else {
                format!("{staff_id} leaves the bank")
            }
        }
    }
}

/// The person a proposal changes, if any.
fn target_of(proposal: &ChangeProposal) -> Option<StaffId> {
    serde_json::from_value::<Change>(proposal.payload.clone())
        .ok()
        .and_then(|change| change.target().cloned())
}

/// A proposal as the inbox and a person's page show it.
struct ProposalRow {
    id: String,
    text: String,
    proposed_by: String,
    proposed_at: String,
    decided: Option<String>,
    own: bool,
}

fn proposal_row(lang: Lang, live: &LiveSession, p: &ChangeProposal) -> ProposalRow {
    ProposalRow {
        id: p.id.to_string(),
        text: describe(lang, p),
        proposed_by: p.proposed_by.to_string(),
        proposed_at: lang.date_time(p.proposed_at),
        decided: p.decided_by.as_ref().map(|by| match p.decided_at {
            Some(at) => format!("{by}, {}", lang.date_time(at)),
            None => by.to_string(),
        }),
        own: &p.proposed_by == live.actor.id(),
    }
}

/// The pending proposals of this desk (up to [`PENDING_SCAN`]).
async fn pending(console: &Console) -> Result<Vec<ChangeProposal>, ApiError> {
    proposals::proposals(
        &console.ctx.commands(),
        Some(ProposalStatus::Pending),
        DESK,
        None,
        PENDING_SCAN,
    )
    .await
    .map_err(ApiError::from)
}

fn not_found(console: &Console, lang: Lang, live: &LiveSession) -> Response {
    message(
        console,
        lang,
        Some(live),
        StatusCode::NOT_FOUND,
        texts(lang).not_found,
        None,
    )
}

// ---------------------------------------------------------------- directory

struct DirectoryRow {
    p: PersonSheet,
    pending: usize,
}

#[derive(Template)]
#[template(path = "admin_staff.html")]
struct DirectoryPage {
    f: Frame,
    t: &'static Texts,
    rows: Vec<DirectoryRow>,
    next: Option<String>,
    can_report: bool,
}

#[derive(Deserialize)]
struct AfterQuery {
    after: Option<String>,
}

async fn directory(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<AfterQuery>,
) -> Response {
    let (live, lang) =
        match page_access(&console, &headers, ("/v1/staff", "GET"), "/console/staff").await {
            Ok(access) => access,
            Err(answer) => return answer,
        };
    let commands = console.ctx.commands();
    let after = query.after.as_deref().and_then(|a| StaffId::parse(a).ok());
    let members = match proposals::staff_members_page(&commands, after.as_ref(), PAGE).await {
        Ok(members) => members,
        Err(e) => return unavailable(&console, lang, &ApiError::from(e).detail),
    };
    let waiting = match pending(&console).await {
        Ok(waiting) => waiting,
        Err(e) => return unavailable(&console, lang, &e.detail),
    };
    let now = Utc::now();
    let rows: Vec<DirectoryRow> = members
        .iter()
        .map(|member| DirectoryRow {
            p: person_sheet(lang, member, now),
            pending: waiting
                .iter()
                .filter(|p| target_of(p).as_ref() == Some(&member.id))
                .count(),
        })
        .collect();
    let ids: Vec<&StaffId> = members.iter().map(|m| &m.id).collect();
    let next = (ids.len() == PAGE as usize)
        .then(|| ids.last().map(|id| format!("/console/staff?after={id}")))
        .flatten();
    html(
        StatusCode::OK,
        &DirectoryPage {
            f: Frame::new(&console, lang, Some(&live)),
            t: texts(lang),
            rows,
            next,
            can_report: permitted(&console, &live, "/v1/reports/entitlements", "GET"),
        },
    )
}

// ---------------------------------------------------------------- a person

#[derive(Template)]
#[template(path = "admin_person.html")]
struct PersonPage {
    f: Frame,
    t: &'static Texts,
    p: PersonSheet,
    pending: Vec<ProposalRow>,
    notice: Option<&'static str>,
    can_decide: bool,
    can_propose: bool,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn person(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/staff/{id}", "GET"),
        "/console/staff/{id}",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = StaffId::parse(&id) else {
        return not_found(&console, lang, &live);
    };
    let member = match proposals::staff_member(&console.ctx.commands(), &id).await {
        Ok(member) => member,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status() == StatusCode::NOT_FOUND {
                return not_found(&console, lang, &live);
            }
            return unavailable(&console, lang, &e.detail);
        }
    };
    let waiting = match pending(&console).await {
        Ok(waiting) => waiting,
        Err(e) => return unavailable(&console, lang, &e.detail),
    };
    let t = texts(lang);
    html(
        StatusCode::OK,
        &PersonPage {
            f: Frame::new(&console, lang, Some(&live)),
            t,
            p: person_sheet(lang, &member, Utc::now()),
            pending: waiting
                .iter()
                .filter(|p| target_of(p).as_ref() == Some(&id))
                .map(|p| proposal_row(lang, &live, p))
                .collect(),
            notice: (done.done.as_deref() == Some("proposed")).then_some(t.proposed),
            can_decide: permitted(&console, &live, "/v1/proposals/{id}/approve", "POST"),
            can_propose: permitted(&console, &live, "/v1/proposals", "POST"),
        },
    )
}

// ---------------------------------------------------------------- the inbox

struct Tab {
    slug: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "admin_proposals.html")]
struct InboxPage {
    f: Frame,
    t: &'static Texts,
    tabs: Vec<Tab>,
    pending_view: bool,
    rows: Vec<ProposalRow>,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    can_decide: bool,
    next: Option<String>,
}

#[derive(Deserialize)]
struct InboxQuery {
    status: Option<String>,
    done: Option<String>,
    after: Option<Uuid>,
}

async fn inbox(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/proposals", "GET"),
        "/console/proposals",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let status = query
        .status
        .and_then(|s| s.parse::<ProposalStatus>().ok())
        .unwrap_or(ProposalStatus::Pending);
    let notice = match query.done.as_deref() {
        Some("approved") => Some(t.approved),
        Some("rejected") => Some(t.rejected),
        _ => None,
    };
    render_inbox(
        &console,
        lang,
        &live,
        StatusCode::OK,
        status,
        query.after,
        notice,
        None,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_inbox(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    code: StatusCode,
    status: ProposalStatus,
    after: Option<Uuid>,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
) -> Response {
    let t = texts(lang);
    let page = match proposals::proposals(&console.ctx.commands(), Some(status), DESK, after, PAGE)
        .await
    {
        Ok(page) => page,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let next = (page.len() == PAGE as usize)
        .then(|| {
            page.last().map(|p| {
                format!(
                    "/console/proposals?status={}&after={}",
                    status.as_str(),
                    p.id
                )
            })
        })
        .flatten();
    let tabs = [
        (ProposalStatus::Pending, t.tab_pending),
        (ProposalStatus::Approved, t.tab_approved),
        (ProposalStatus::Rejected, t.tab_rejected),
    ]
    .into_iter()
    .map(|(s, label)| Tab {
        slug: s.as_str(),
        label,
        current: s == status,
    })
    .collect();
    html(
        code,
        &InboxPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            tabs,
            pending_view: status == ProposalStatus::Pending,
            rows: page.iter().map(|p| proposal_row(lang, live, p)).collect(),
            notice,
            refusal,
            can_decide: permitted(console, live, "/v1/proposals/{id}/approve", "POST"),
            next,
        },
    )
}

async fn approve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<crate::pages::CsrfOnly>,
) -> Response {
    decide(console, headers, id, form, Verdict::Approve).await
}

async fn reject(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<crate::pages::CsrfOnly>,
) -> Response {
    decide(console, headers, id, form, Verdict::Reject).await
}

/// Approves or rejects a proposal through the API's own route body.
async fn decide(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: crate::pages::CsrfOnly,
    verdict: Verdict,
) -> Response {
    let (api_route, route, done) = match verdict {
        Verdict::Approve => (
            "/v1/proposals/{id}/approve",
            "/console/proposals/{id}/approve",
            "approved",
        ),
        Verdict::Reject => (
            "/v1/proposals/{id}/reject",
            "/console/proposals/{id}/reject",
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
        return not_found(&console, lang, &live);
    };
    let principal = Principal(live.actor.clone());
    let answer = four_eyes::decide(
        console.ctx.clone(),
        principal,
        IdempotencyKey(None),
        id,
        verdict,
        DESK,
    )
    .await;
    match answer {
        Ok(response) if response.status().is_success() => {
            Redirect::to(&format!("/console/proposals?done={done}")).into_response()
        }
        Ok(response) => {
            render_inbox(
                &console,
                lang,
                &live,
                response.status(),
                ProposalStatus::Pending,
                None,
                None,
                None,
            )
            .await
        }
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, route, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            render_inbox(
                &console,
                lang,
                &live,
                e.status(),
                ProposalStatus::Pending,
                None,
                None,
                Some(refusal_of(lang, &e)),
            )
            .await
        }
    }
}

// ---------------------------------------------------------------- proposing

/// One field of a proposal form.
struct Field {
    label: String,
    value: String,
    error: Option<&'static str>,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "admin_propose.html")]
struct ProposePage {
    f: Frame,
    t: &'static Texts,
    /// Which form the errors and the refusal belong to.
    kind: &'static str,
    staff_id: Field,
    roles: Vec<Choice>,
    sides: Vec<Choice>,
    levels: Vec<Choice>,
    valid_from: Field,
    valid_to: Field,
    has_errors: bool,
    refusal: Option<Refusal>,
}

#[derive(Deserialize, Default)]
struct ProposeForm {
    csrf: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    staff_id: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    side: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
}

/// The problems of a form, by field name.
type Problems = Vec<(&'static str, &'static str)>;

fn propose_view(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    form: &ProposeForm,
    problems: &Problems,
    refusal: Option<Refusal>,
) -> ProposePage {
    let t = texts(lang);
    let problem = |name: &str| problems.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
    let field = |name: &'static str, label: String, value: &str| Field {
        label,
        value: value.to_owned(),
        error: problem(name),
    };
    let roles = Role::ALL
        .into_iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: role_label(lang, r).to_owned(),
            selected: form.role == r.as_str(),
        })
        .collect();
    let sides = [Side::Market, Side::Backoffice]
        .into_iter()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: side_label(lang, s).to_owned(),
            selected: form.side == s.as_str(),
        })
        .collect();
    let levels = (1..=creditops_domain::rules::MAX_LEVEL)
        .map(|l| Choice {
            value: l.to_string(),
            label: l.to_string(),
            selected: form.level == l.to_string(),
        })
        .collect();
    ProposePage {
        f: Frame::new(console, lang, Some(live)),
        t,
        kind: if form.kind == "competence_grant" {
            "competence_grant"
        } else {
            "role_assignment"
        },
        staff_id: field("staff_id", t.staff_id.to_owned(), &form.staff_id),
        roles,
        sides,
        levels,
        valid_from: field("valid_from", t.valid_from.to_owned(), &form.valid_from),
        valid_to: field(
            "valid_to",
            format!("{} ({})", t.valid_to, t.optional),
            &form.valid_to,
        ),
        has_errors: !problems.is_empty(),
        refusal,
    }
}

#[derive(Deserialize)]
struct NewQuery {
    staff_id: Option<String>,
}

async fn new_proposal(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<NewQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/proposals", "POST"),
        "/console/proposals/new",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let form = ProposeForm {
        staff_id: query
            .staff_id
            .filter(|id| StaffId::parse(id).is_ok())
            .unwrap_or_default(),
        valid_from: Utc::now().date_naive().format("%Y-%m-%d").to_string(),
        ..ProposeForm::default()
    };
    html(
        StatusCode::OK,
        &propose_view(&console, lang, &live, &form, &Vec::new(), None),
    )
}

/// A date as typed (`2026-12-06` or `06.12.2026`).
fn typed_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d.%m.%Y"))
        .ok()
}

/// The start a date stands for: today is now (the change counts from its
/// approval), another day its midnight UTC (a past day is refused by the
/// command under S4, as the API refuses it).
fn start_of(date: NaiveDate, now: DateTime<Utc>) -> DateTime<Utc> {
    if date == now.date_naive() {
        now
    } else {
        date.and_time(chrono::NaiveTime::MIN).and_utc()
    }
}

/// The change the form describes, or its problems field by field.
fn checked_change(t: &Texts, form: &ProposeForm) -> Result<Change, Problems> {
    let mut problems: Problems = Vec::new();
    let staff_id = StaffId::parse(form.staff_id.trim()).ok();
    if staff_id.is_none() {
        problems.push(("staff_id", t.bad_staff_id));
    }
    let now = Utc::now();
    let valid_from = typed_date(&form.valid_from).map(|d| start_of(d, now));
    if valid_from.is_none() {
        problems.push(("valid_from", t.bad_date));
    }
    let valid_to = if form.valid_to.trim().is_empty() {
        Some(None)
    } else {
        typed_date(&form.valid_to).map(|d| Some(start_of(d, now)))
    };
    if valid_to.is_none() {
        problems.push(("valid_to", t.bad_date));
    }
    let change = match form.kind.as_str() {
        "competence_grant" => {
            let side = form.side.parse::<Side>().ok();
            if side.is_none() {
                problems.push(("side", t.bad_choice));
            }
            let level = form.level.trim().parse::<u8>().ok();
            if level.is_none() {
                problems.push(("level", t.bad_level));
            }
            match (staff_id, side, level, valid_from, valid_to) {
                (Some(staff_id), Some(side), Some(level), Some(valid_from), Some(valid_to)) => {
                    Some(Change::CompetenceGrant {
                        staff_id,
                        side,
                        level,
                        valid_from,
                        valid_to,
                    })
                }
                _ => None,
            }
        }
        _ => {
            let role = form.role.parse::<Role>().ok();
            if role.is_none() {
                problems.push(("role", t.bad_choice));
            }
            match (staff_id, role, valid_from, valid_to) {
                (Some(staff_id), Some(role), Some(valid_from), Some(valid_to)) => {
                    Some(Change::RoleAssignment {
                        staff_id,
                        role,
                        valid_from,
                        valid_to,
                    })
                }
                _ => None,
            }
        }
    };
    match change {
        Some(change) if problems.is_empty() => Ok(change),
        _ => Err(problems),
    }
}

/// Runs the command of `POST /v1/proposals` for `change`, as the API's
/// route does (one transaction, the proposal audited in it).
async fn run_proposal(
    console: &Console,
    live: &LiveSession,
    change: Change,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&change).unwrap_or_default();
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/proposals",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let proposal = proposals::propose_change(&commands, tx, &actor, &change).await?;
                four_eyes::accepted(&proposal)
            })
        },
    )
    .await
}

/// Proposes the change through the command of `POST /v1/proposals`.
async fn propose(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ProposeForm>,
) -> Response {
    const ROUTE: &str = "/console/proposals";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/proposals", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let change = match checked_change(t, &form) {
        Ok(change) => change,
        Err(problems) => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &propose_view(&console, lang, &live, &form, &problems, None),
            );
        }
    };
    let target = change.target().cloned();
    match run_proposal(&console, &live, change).await {
        Ok(response) if response.status().is_success() => match target {
            Some(id) => Redirect::to(&format!("/console/staff/{id}?done=proposed")).into_response(),
            None => Redirect::to("/console/proposals").into_response(),
        },
        Ok(response) => html(
            response.status(),
            &propose_view(&console, lang, &live, &form, &Vec::new(), None),
        ),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            html(
                e.status(),
                &propose_view(
                    &console,
                    lang,
                    &live,
                    &form,
                    &Vec::new(),
                    Some(refusal_of(lang, &e)),
                ),
            )
        }
    }
}

// ---------------------------------------------------------------- the report

/// The entitlement report as the API's CSV (the same bytes, the same audit
/// of the read), as a download.
async fn entitlements_csv(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/reports/entitlements", "GET"),
        "/console/reports/entitlements.csv",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let principal = Principal(live.actor.clone());
    let query = FormatQuery {
        format: Some("csv".to_owned()),
    };
    match entitlement_report(&console.ctx, &principal, &headers, &query).await {
        Ok(mut response) => {
            let name = format!(
                "attachment; filename=\"entitlements-{}.csv\"",
                Utc::now().format("%Y-%m-%d")
            );
            if let Ok(value) = HeaderValue::from_str(&name) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => unavailable(&console, lang, &e.detail),
    }
}

// ---------------------------------------------------------------- rule sets

/// An amount in the language's format without currency (for a form field).
fn plain_amount(lang: Lang, amount: Decimal) -> String {
    lang.money(amount, "").trim().to_owned()
}

/// An amount as typed in the language's format (`250.000,00` or
/// `250,000.00`; plain `250000` in either).
fn typed_amount(lang: Lang, text: &str) -> Option<Decimal> {
    lang.plain_number(text)?.parse::<Decimal>().ok()
}

fn divergence_label(t: &Texts, policy: DivergencePolicy) -> &'static str {
    match policy {
        DivergencePolicy::Escalate => t.divergence_escalate,
        DivergencePolicy::Decline => t.divergence_decline,
    }
}

/// The competence order as lines: "Level 1 (level-1) up to 250,000.00 EUR".
fn level_lines(lang: Lang, order: &CompetenceOrder) -> Vec<String> {
    let t = texts(lang);
    order
        .levels
        .iter()
        .map(|l| match l.up_to {
            Some(up_to) => format!(
                "{} {} ({}) {} {}",
                t.level,
                l.level,
                l.name,
                t.up_to,
                lang.money(up_to, &order.currency)
            ),
            None => format!("{} {} ({}) {}", t.level, l.level, l.name, t.unbounded),
        })
        .collect()
}

/// A rule set's parameters in one line (for the inbox).
fn rules_summary(lang: Lang, p: &RuleParameters) -> String {
    let t = texts(lang);
    let lane = p.single_vote_below.map_or_else(
        || t.lane_closed.to_owned(),
        |below| lang.money(below, &p.competence_order.currency),
    );
    format!(
        "{} {}; {} {} {}; {} {}; {} {}; {} {} {}",
        t.competence_order,
        level_lines(lang, &p.competence_order).join(" / "),
        t.cooling_off,
        p.cooling_off_months,
        t.months,
        t.divergence,
        divergence_label(t, p.divergence),
        t.single_vote,
        lane,
        t.reservation,
        p.reservation_days,
        t.days,
    )
}

struct RuleRow {
    version: i64,
    valid_from: String,
    levels: Vec<String>,
    cooling_off: String,
    divergence: &'static str,
    lane: String,
    reservation: String,
    state: &'static str,
    class: &'static str,
}

/// One field of the rule-set form, named as posted.
struct NamedField {
    name: String,
    label: String,
    value: String,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin_rules.html")]
struct RulesPage {
    f: Frame,
    t: &'static Texts,
    rows: Vec<RuleRow>,
    pending: Vec<ProposalRow>,
    can_decide: bool,
    can_propose: bool,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    has_errors: bool,
    fields: Vec<NamedField>,
    divergence: Vec<Choice>,
}

/// The rule-set form as posted: `(name, value)` pairs.
struct RulesForm(Vec<(String, String)>);

impl RulesForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The form prefilled from the rule set in force; `valid_from` tomorrow.
    fn prefilled(lang: Lang, current: &RuleParameters) -> RulesForm {
        let tomorrow = Utc::now().date_naive() + chrono::Days::new(1);
        let mut pairs = vec![(
            "valid_from".to_owned(),
            match lang {
                Lang::De => tomorrow.format("%d.%m.%Y").to_string(),
                Lang::En => tomorrow.format("%Y-%m-%d").to_string(),
            },
        )];
        for level in &current.competence_order.levels {
            if let Some(up_to) = level.up_to {
                pairs.push((format!("up_to_{}", level.level), plain_amount(lang, up_to)));
            }
        }
        pairs.push((
            "cooling_off_months".to_owned(),
            current.cooling_off_months.to_string(),
        ));
        pairs.push(("divergence".to_owned(), current.divergence.to_string()));
        pairs.push((
            "single_vote_below".to_owned(),
            current
                .single_vote_below
                .map(|below| plain_amount(lang, below))
                .unwrap_or_default(),
        ));
        pairs.push((
            "reservation_days".to_owned(),
            current.reservation_days.to_string(),
        ));
        RulesForm(pairs)
    }
}

/// The fields of the rule-set form with `form`'s values and `problems`.
fn rules_fields(
    lang: Lang,
    current: &RuleParameters,
    form: &RulesForm,
    problems: &[(String, &'static str)],
) -> (Vec<NamedField>, Vec<Choice>) {
    let t = texts(lang);
    let field = |name: String, label: String| NamedField {
        value: form.get(&name).unwrap_or_default().to_owned(),
        error: problems.iter().find(|(n, _)| *n == name).map(|(_, e)| *e),
        name,
        label,
    };
    let mut fields = vec![field("valid_from".to_owned(), t.valid_from.to_owned())];
    let order = &current.competence_order;
    for level in order.levels.iter().filter(|l| l.up_to.is_some()) {
        fields.push(field(
            format!("up_to_{}", level.level),
            format!(
                "{} {} ({}) {} ({})",
                t.level, level.level, level.name, t.up_to, order.currency
            ),
        ));
    }
    fields.push(field(
        "cooling_off_months".to_owned(),
        format!("{} ({})", t.cooling_off, t.months),
    ));
    fields.push(field(
        "single_vote_below".to_owned(),
        format!("{} ({}, {})", t.single_vote, order.currency, t.optional),
    ));
    fields.push(field(
        "reservation_days".to_owned(),
        format!("{} ({})", t.reservation, t.days),
    ));
    let chosen = form.get("divergence").unwrap_or_default();
    let divergence = [DivergencePolicy::Escalate, DivergencePolicy::Decline]
        .into_iter()
        .map(|d| Choice {
            value: d.to_string(),
            label: divergence_label(t, d).to_owned(),
            selected: chosen == d.to_string(),
        })
        .collect();
    (fields, divergence)
}

/// The change the rule-set form describes (the competence order keeps its
/// levels, names and currency; their limits are as typed), or its problems.
fn checked_rules(
    lang: Lang,
    current: &RuleParameters,
    form: &RulesForm,
) -> Result<Change, Vec<(String, &'static str)>> {
    let t = texts(lang);
    let mut problems = Vec::new();
    let valid_from = form
        .get("valid_from")
        .and_then(typed_date)
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
    if valid_from.is_none() {
        problems.push(("valid_from".to_owned(), t.bad_date));
    }
    let mut order = current.competence_order.clone();
    for level in order.levels.iter_mut().filter(|l| l.up_to.is_some()) {
        let name = format!("up_to_{}", level.level);
        match form.get(&name).and_then(|v| typed_amount(lang, v)) {
            Some(amount) => level.up_to = Some(amount),
            None => problems.push((name, t.bad_amount)),
        }
    }
    let number = |name: &str, problems: &mut Vec<(String, &'static str)>| {
        let value = form.get(name).and_then(|v| v.trim().parse::<u32>().ok());
        if value.is_none() {
            problems.push((name.to_owned(), t.bad_number));
        }
        value
    };
    let cooling_off_months = number("cooling_off_months", &mut problems);
    let reservation_days = number("reservation_days", &mut problems);
    let divergence = match form.get("divergence") {
        Some("decline") => DivergencePolicy::Decline,
        _ => DivergencePolicy::Escalate,
    };
    let lane = form.get("single_vote_below").unwrap_or_default().trim();
    let single_vote_below = if lane.is_empty() {
        Some(None)
    } else {
        typed_amount(lang, lane).map(Some)
    };
    if single_vote_below.is_none() {
        problems.push(("single_vote_below".to_owned(), t.bad_amount));
    }
    match (
        valid_from,
        cooling_off_months,
        reservation_days,
        single_vote_below,
    ) {
        (Some(valid_from), Some(cooling_off_months), Some(reservation_days), Some(lane))
            if problems.is_empty() =>
        {
            Ok(Change::RuleSet {
                valid_from,
                parameters: Box::new(RuleParameters {
                    competence_order: order,
                    cooling_off_months,
                    divergence,
                    single_vote_below: lane,
                    reservation_days,
                    // What the form does not show stays as it is in force.
                    ..current.clone()
                }),
            })
        }
        _ => Err(problems),
    }
}

/// What the rules page shows besides the versions.
struct RulesShown {
    status: StatusCode,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    form: Option<RulesForm>,
    problems: Vec<(String, &'static str)>,
}

async fn render_rules(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    shown: RulesShown,
) -> Response {
    let t = texts(lang);
    let sets = match proposals::rule_sets(&console.ctx.commands()).await {
        Ok(sets) => sets,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let waiting = match pending(console).await {
        Ok(waiting) => waiting,
        Err(e) => return unavailable(console, lang, &e.detail),
    };
    let now = Utc::now();
    let current = in_force(&sets, now)
        .map(|set| set.parameters.clone())
        .unwrap_or_else(RuleParameters::defaults);
    let in_force_version = in_force(&sets, now).map(|set| set.version);
    let mut rows: Vec<RuleRow> = sets
        .iter()
        .map(|set| {
            let p = &set.parameters;
            let (state, class) = if set.valid_from > now {
                (t.future, "future")
            } else if Some(set.version) == in_force_version {
                (t.in_force, "current")
            } else {
                (t.superseded, "ended")
            };
            RuleRow {
                version: set.version,
                valid_from: lang.date_time(set.valid_from),
                levels: level_lines(lang, &p.competence_order),
                cooling_off: format!("{} {}", p.cooling_off_months, t.months),
                divergence: divergence_label(t, p.divergence),
                lane: p.single_vote_below.map_or_else(
                    || t.lane_closed.to_owned(),
                    |below| lang.money(below, &p.competence_order.currency),
                ),
                reservation: format!("{} {}", p.reservation_days, t.days),
                state,
                class,
            }
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.version));
    let form = shown
        .form
        .unwrap_or_else(|| RulesForm::prefilled(lang, &current));
    let (fields, divergence) = rules_fields(lang, &current, &form, &shown.problems);
    html(
        shown.status,
        &RulesPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            rows,
            pending: waiting
                .iter()
                .filter(|p| p.kind == ProposalKind::RuleSet)
                .map(|p| proposal_row(lang, live, p))
                .collect(),
            can_decide: permitted(console, live, "/v1/proposals/{id}/approve", "POST"),
            can_propose: permitted(console, live, "/v1/proposals", "POST"),
            notice: shown.notice,
            refusal: shown.refusal,
            has_errors: !shown.problems.is_empty(),
            fields,
            divergence,
        },
    )
}

async fn rules_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(done): Query<DoneQuery>,
) -> Response {
    let (live, lang) =
        match page_access(&console, &headers, ("/v1/rules", "GET"), "/console/rules").await {
            Ok(access) => access,
            Err(answer) => return answer,
        };
    let notice = (done.done.as_deref() == Some("proposed")).then_some(texts(lang).proposed);
    render_rules(
        &console,
        lang,
        &live,
        RulesShown {
            status: StatusCode::OK,
            notice,
            refusal: None,
            form: None,
            problems: Vec::new(),
        },
    )
    .await
}

/// Proposes a rule set through the command of `POST /v1/proposals`.
async fn propose_rules(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    const ROUTE: &str = "/console/rules";
    let live = match signed_in(&console, &headers).await {
        Ok(live) => live,
        Err(answer) => return answer,
    };
    let lang = lang_of(&headers);
    let form = RulesForm(pairs);
    if let Err(refused) = guard_form(
        &console,
        &headers,
        Some(&live.session.csrf_token),
        form.get("csrf"),
        Some(live.actor.id()),
        ROUTE,
        None,
    )
    .await
    {
        return refused;
    }
    if !permitted(&console, &live, "/v1/proposals", "POST") {
        return forbidden(&console, lang, &live, ROUTE).await;
    }
    let sets = match proposals::rule_sets(&console.ctx.commands()).await {
        Ok(sets) => sets,
        Err(e) => return unavailable(&console, lang, &ApiError::from(e).detail),
    };
    let current = in_force(&sets, Utc::now())
        .map(|set| set.parameters.clone())
        .unwrap_or_else(RuleParameters::defaults);
    let change = match checked_rules(lang, &current, &form) {
        Ok(change) => change,
        Err(problems) => {
            return render_rules(
                &console,
                lang,
                &live,
                RulesShown {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    notice: None,
                    refusal: None,
                    form: Some(form),
                    problems,
                },
            )
            .await;
        }
    };
    let (status, refusal) = match run_proposal(&console, &live, change).await {
        Ok(response) if response.status().is_success() => {
            return Redirect::to("/console/rules?done=proposed").into_response();
        }
        Ok(response) => (response.status(), None),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            (e.status(), Some(refusal_of(lang, &e)))
        }
    };
    render_rules(
        &console,
        lang,
        &live,
        RulesShown {
            status,
            notice: None,
            refusal,
            form: Some(form),
            problems: Vec::new(),
        },
    )
    .await
}
