//! The credit analysts' groups of connected clients and related parties on
//! the back-office service (V4, V11, S6, R2): the groups with their members
//! now, forming a group, proposing a borrower's move into or out of a group
//! (a four-eyes proposal another analyst decides), the inbox of those
//! proposals, and the related parties with the form to record one. Each
//! page is allowed exactly when the API route it stands for is, and runs
//! the API's command.

use crate::Console;
use crate::casework::{Refusal, audit_command_refusal, form_access, page_access, permitted};
use crate::i18n::Lang;
use crate::pages::{CsrfOnly, Frame, NavLink, html, message, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use creditops_commands::{groups, inputs, proposals};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{ChangeProposal, InputChange, ProposalStatus};
use creditops_domain::{BorrowerId, Role, StaffId, UnitId};
use creditops_http::{ApiError, CommandOutcome, IdempotencyKey, Principal, run_command};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The desk whose proposals these are: group membership (V4).
const DESK: Role = Role::CreditAnalyst;
/// Rows of a page.
const PAGE: u32 = 100;
/// Groups offered in a move form (and named in the tables).
const GROUP_LIST: u32 = 500;
/// Pending proposals read for the pages.
const PENDING: u32 = 1000;
/// Decided proposals the inbox shows.
const DECIDED: u32 = 20;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "backoffice" {
        return Router::new();
    }
    Router::new()
        .route("/console/groups", get(groups_page).post(create_group))
        .route("/console/groups/borrowers/{id}", post(propose_move))
        .route("/console/groups/proposals", get(inbox))
        .route("/console/groups/proposals/{id}/approve", post(approve))
        .route("/console/groups/proposals/{id}/reject", post(reject))
        .route(
            "/console/related-parties",
            get(related_page).post(record_related),
        )
}

/// The two links of these pages in the back-office desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let t = texts(lang);
    vec![
        NavLink::to("/console/groups", t.nav_groups),
        NavLink::to("/console/related-parties", t.related),
    ]
}

/// These pages' texts in one language.
struct Texts {
    groups: &'static str,
    nav_groups: &'static str,
    groups_intro: &'static str,
    no_groups: &'static str,
    group_id: &'static str,
    group_id_hint: &'static str,
    group_name: &'static str,
    members: &'static str,
    no_members: &'static str,
    created: &'static str,
    new_group: &'static str,
    create_group: &'static str,
    group_created: &'static str,
    borrowers: &'static str,
    borrowers_intro: &'static str,
    no_borrowers: &'static str,
    borrower: &'static str,
    current_group: &'static str,
    no_group: &'static str,
    leave_group: &'static str,
    move_to: &'static str,
    propose_move: &'static str,
    move_proposed: &'static str,
    waiting: &'static str,
    inbox: &'static str,
    inbox_intro: &'static str,
    no_proposals: &'static str,
    from_group: &'static str,
    to_group: &'static str,
    proposed_by: &'static str,
    approve: &'static str,
    reject: &'static str,
    own_proposal: &'static str,
    approved: &'static str,
    rejected: &'static str,
    own_refusal: &'static str,
    decided_heading: &'static str,
    decided: &'static str,
    status_approved: &'static str,
    status_rejected: &'static str,
    sent_back: &'static str,
    breaches: &'static str,
    related: &'static str,
    related_intro: &'static str,
    no_related: &'static str,
    staff_id: &'static str,
    relation: &'static str,
    recorded: &'static str,
    record_heading: &'static str,
    record: &'static str,
    recorded_done: &'static str,
    choose: &'static str,
    next_page: &'static str,
}

static DE: Texts = Texts {
    groups: "Kreditnehmereinheiten",
    nav_groups: "Kreditnehmereinheiten",
    groups_intro: "Gruppen verbundener Kunden (Art. 4 Abs. 1 Nr. 39 CRR) mit ihren heutigen Mitgliedern; ihr zusammengefasstes Obligo bestimmt die Kompetenzstufe (V4).",
    no_groups: "Es sind noch keine Kreditnehmereinheiten gebildet.",
    group_id: "Kennung der Einheit",
    group_id_hint: "Kleinbuchstaben, Ziffern und Bindestriche, z. B. gcc-muster.",
    group_name: "Name",
    members: "Mitglieder",
    no_members: "keine Mitglieder",
    created: "Gebildet",
    new_group: "Kreditnehmereinheit bilden",
    create_group: "Einheit bilden",
    group_created: "Die Kreditnehmereinheit ist gebildet.",
    borrowers: "Kreditnehmer und ihre Einheit",
    borrowers_intro: "Eine Zuordnung wird vorgeschlagen und gilt erst, wenn eine zweite Person der Marktfolge sie genehmigt; offene Fälle der Betroffenen werden dann neu bewertet (V4, R2).",
    no_borrowers: "Es sind noch keine Kreditnehmer erfasst.",
    borrower: "Kreditnehmer",
    current_group: "Einheit heute",
    no_group: "keine",
    leave_group: "keine Einheit (austreten)",
    move_to: "Neue Einheit für",
    propose_move: "Zuordnung vorschlagen",
    move_proposed: "Die Zuordnung ist vorgeschlagen und wartet auf die Genehmigung durch eine zweite Person der Marktfolge.",
    waiting: "wartet auf die Genehmigung durch eine zweite Person der Marktfolge",
    inbox: "Zuordnungsvorschläge",
    inbox_intro: "Vorschläge anderer Personen der Marktfolge; eigene Vorschläge entscheidet eine andere Person (Vier-Augen-Prinzip).",
    no_proposals: "Es warten keine Zuordnungsvorschläge.",
    from_group: "Bisher",
    to_group: "Neu",
    proposed_by: "Vorgeschlagen von",
    approve: "Genehmigen",
    reject: "Ablehnen",
    own_proposal: "Ihr Vorschlag: eine andere Person entscheidet",
    approved: "Der Vorschlag ist genehmigt; die Zuordnung gilt ab jetzt.",
    rejected: "Der Vorschlag ist abgelehnt.",
    own_refusal: "Sie haben diese Zuordnung vorgeschlagen; eine andere Person der Marktfolge muss sie genehmigen oder ablehnen.",
    decided_heading: "Zuletzt entschieden",
    decided: "Entscheidung",
    status_approved: "genehmigt",
    status_rejected: "abgelehnt",
    sent_back: "Offene Fälle zurück in die Abstimmung (V4)",
    breaches: "Neue Limitüberschreitungen (R7)",
    related: "Organkredite",
    related_intro: "Mitarbeitende, die einem Kreditnehmer nahestehen (§ 15 KWG): sie dürfen über seine Fälle nicht abstimmen (S6), seine Kredite brauchen einen einstimmigen Vorstandsbeschluss vor der Auszahlung (V11).",
    no_related: "Es sind keine nahestehenden Personen erfasst.",
    staff_id: "Mitarbeiterkennung",
    relation: "Beziehung",
    recorded: "Erfasst",
    record_heading: "Nahestehende Person erfassen",
    record: "Erfassen",
    recorded_done: "Die nahestehende Person ist erfasst.",
    choose: "Bitte wählen",
    next_page: "Nächste Seite",
};

static EN: Texts = Texts {
    groups: "Groups of connected clients",
    nav_groups: "Groups",
    groups_intro: "Groups of connected clients (CRR Art. 4(1)(39)) with their members today; their aggregated exposure decides the competence level (V4).",
    no_groups: "No groups of connected clients have been formed yet.",
    group_id: "Group id",
    group_id_hint: "Lower-case letters, digits and hyphens, e.g. gcc-muster.",
    group_name: "Name",
    members: "Members",
    no_members: "no members",
    created: "Formed",
    new_group: "Form a group of connected clients",
    create_group: "Form the group",
    group_created: "The group of connected clients is formed.",
    borrowers: "Borrowers and their group",
    borrowers_intro: "A move is proposed and takes effect only when a second credit analyst approves it; the open cases of everybody affected are then re-evaluated (V4, R2).",
    no_borrowers: "No borrowers are recorded yet.",
    borrower: "Borrower",
    current_group: "Group today",
    no_group: "none",
    leave_group: "no group (leave)",
    move_to: "New group for",
    propose_move: "Propose the move",
    move_proposed: "The move is proposed and is waiting for approval by a second analyst.",
    waiting: "waiting for approval by a second analyst",
    inbox: "Group move proposals",
    inbox_intro: "Other analysts' proposals; your own are decided by somebody else (four eyes).",
    no_proposals: "No group move proposals are waiting.",
    from_group: "From",
    to_group: "To",
    proposed_by: "Proposed by",
    approve: "Approve",
    reject: "Reject",
    own_proposal: "Your proposal: another analyst decides it",
    approved: "The proposal is approved; the move takes effect now.",
    rejected: "The proposal is rejected.",
    own_refusal: "You proposed this move, so another credit analyst must approve or reject it.",
    decided_heading: "Recently decided",
    decided: "Decision",
    status_approved: "approved",
    status_rejected: "rejected",
    sent_back: "Open cases sent back to voting (V4)",
    breaches: "New limit breaches (R7)",
    related: "Related parties",
    related_intro: "Staff related to a borrower (KWG section 15): they may not vote on its cases (S6), and its credits need a unanimous board resolution before disbursement (V11).",
    no_related: "No related parties are recorded.",
    staff_id: "Staff id",
    relation: "Relation",
    recorded: "Recorded",
    record_heading: "Record a related party",
    record: "Record",
    recorded_done: "The related party is recorded.",
    choose: "Please choose",
    next_page: "Next page",
};

fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// A decision's refusal in plain language; the refusal of a decision on
/// one's own proposal says what it means for the analyst.
fn refusal_of(lang: Lang, error: &ApiError) -> Refusal {
    if error.status() == StatusCode::FORBIDDEN && error.rule.is_some() {
        return Refusal {
            text: format!("{} ({})", texts(lang).own_refusal, error.detail),
            rule: error.rule.map(|r| r.to_string()),
        };
    }
    // The competence explanation of V4 is about votes; a decision's other
    // refusals under V4 say best in the command's own words.
    if error.rule == Some(creditops_domain::RuleId::V4) {
        return Refusal {
            text: error.detail.clone(),
            rule: error.rule.map(|r| r.to_string()),
        };
    }
    Refusal::of(lang, error)
}

/// A group move waiting for a second analyst.
struct PendingMove {
    id: String,
    borrower_id: Option<BorrowerId>,
    borrower: String,
    from: String,
    to: String,
    proposed_by: String,
    proposed_at: String,
    own: bool,
    /// Who decided it, how and when; empty while it is pending.
    decision: String,
    decided_at: Option<creditops_domain::Timestamp>,
}

/// The names of the groups, by id.
type GroupNames = BTreeMap<UnitId, String>;

fn group_label(t: &Texts, names: &GroupNames, group: Option<&UnitId>) -> String {
    match group {
        Some(id) => names
            .get(id)
            .map_or_else(|| id.to_string(), |name| format!("{name} ({id})")),
        None => t.no_group.to_owned(),
    }
}

/// The pending group moves, newest first, with the borrowers named.
async fn pending_moves(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    names: &GroupNames,
) -> Result<Vec<PendingMove>, ApiError> {
    moves_of(console, lang, live, names, ProposalStatus::Pending, PENDING).await
}

/// The group moves of `status`, newest first, with the borrowers named.
async fn moves_of(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    names: &GroupNames,
    status: ProposalStatus,
    limit: u32,
) -> Result<Vec<PendingMove>, ApiError> {
    let t = texts(lang);
    let commands = console.ctx.commands();
    let pending = proposals::proposals(&commands, Some(status), DESK, None, limit)
        .await
        .map_err(ApiError::from)?;
    let mut moves = Vec::with_capacity(pending.len());
    for p in &pending {
        moves.push(pending_move(console, lang, t, live, names, p).await);
    }
    Ok(moves)
}

async fn pending_move(
    console: &Console,
    lang: Lang,
    t: &Texts,
    live: &LiveSession,
    names: &GroupNames,
    p: &ChangeProposal,
) -> PendingMove {
    let change = serde_json::from_value::<InputChange>(p.payload.clone()).ok();
    let (borrower_id, from, to) = match change {
        Some(InputChange::GroupMembership {
            borrower_id,
            group_id,
            from_group,
        }) => (
            Some(borrower_id),
            group_label(t, names, from_group.as_ref()),
            group_label(t, names, group_id.as_ref()),
        ),
        _ => (None, String::new(), String::new()),
    };
    let borrower = match borrower_id {
        Some(id) => match creditops_commands::market::borrower(&console.ctx.commands(), id).await {
            Ok(b) => format!("{} ({}, {})", b.name, b.country, b.sector),
            Err(_) => id.to_string(),
        },
        None => String::new(),
    };
    PendingMove {
        id: p.id.to_string(),
        borrower_id,
        borrower,
        from,
        to,
        proposed_by: p.proposed_by.to_string(),
        proposed_at: lang.date_time(p.proposed_at),
        own: &p.proposed_by == live.actor.id(),
        decision: match (&p.decided_by, p.decided_at) {
            (Some(by), Some(at)) => {
                let how = match p.status {
                    ProposalStatus::Approved => t.status_approved,
                    _ => t.status_rejected,
                };
                format!("{how}: {by}, {}", lang.date_time(at))
            }
            _ => String::new(),
        },
        decided_at: p.decided_at,
    }
}

struct GroupRow {
    id: String,
    name: String,
    members: Vec<String>,
    created_by: String,
    created_on: String,
}

struct BorrowerRow {
    id: String,
    name: String,
    group: String,
    /// The option values of the move form, with the current one selected.
    current: String,
    waiting: Vec<String>,
}

struct GroupOption {
    id: String,
    label: String,
}

#[derive(Template)]
#[template(path = "groups_list.html")]
struct GroupsPage {
    f: Frame,
    t: &'static Texts,
    groups: Vec<GroupRow>,
    options: Vec<GroupOption>,
    borrowers: Vec<BorrowerRow>,
    next: Option<String>,
    can_create: bool,
    can_propose: bool,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    new_id: String,
    new_name: String,
}

#[derive(Deserialize)]
struct ListQuery {
    done: Option<String>,
    after: Option<BorrowerId>,
}

async fn groups_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    // Back office reads group membership as it reads its proposals.
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/proposals", "GET"),
        "/console/groups",
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let notice = match query.done.as_deref() {
        Some("created") => Some(t.group_created),
        Some("proposed") => Some(t.move_proposed),
        _ => None,
    };
    render_groups(
        &console,
        lang,
        &live,
        StatusCode::OK,
        Shown {
            notice,
            after: query.after,
            ..Shown::default()
        },
    )
    .await
}

#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    after: Option<BorrowerId>,
    new_id: String,
    new_name: String,
}

async fn render_groups(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    shown: Shown,
) -> Response {
    let t = texts(lang);
    let commands = console.ctx.commands();
    let groups = match groups::groups_now(&commands, None, GROUP_LIST).await {
        Ok(groups) => groups,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let borrowers = match groups::borrowers_with_group(&commands, shown.after, PAGE).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let names: GroupNames = groups
        .iter()
        .map(|g| (g.group.id.clone(), g.group.name.clone()))
        .collect();
    let moves = match pending_moves(console, lang, live, &names).await {
        Ok(moves) => moves,
        Err(e) => return unavailable(console, lang, &e.detail),
    };
    let next = (borrowers.len() == PAGE as usize)
        .then(|| {
            borrowers
                .last()
                .map(|(b, _)| format!("/console/groups?after={}", b.id))
        })
        .flatten();
    let borrowers = borrowers
        .iter()
        .map(|(b, group)| BorrowerRow {
            id: b.id.to_string(),
            name: format!("{} ({}, {})", b.name, b.country, b.sector),
            group: group_label(t, &names, group.as_ref()),
            current: group.as_ref().map(ToString::to_string).unwrap_or_default(),
            waiting: moves
                .iter()
                .filter(|m| m.borrower_id == Some(b.id))
                .map(|m| {
                    format!(
                        "{} → {}: {} ({} {}, {})",
                        m.from, m.to, t.waiting, t.proposed_by, m.proposed_by, m.proposed_at
                    )
                })
                .collect(),
        })
        .collect();
    let rows = groups
        .iter()
        .map(|g| GroupRow {
            id: g.group.id.to_string(),
            name: g.group.name.clone(),
            members: g
                .members
                .iter()
                .map(|b| format!("{} ({}, {})", b.name, b.country, b.sector))
                .collect(),
            created_by: g.group.created_by.to_string(),
            created_on: lang.date(g.group.created_at),
        })
        .collect();
    let options = groups
        .iter()
        .map(|g| GroupOption {
            id: g.group.id.to_string(),
            label: format!("{} ({})", g.group.name, g.group.id),
        })
        .collect();
    html(
        status,
        &GroupsPage {
            f: Frame::new(console, lang, Some(live)),
            t,
            groups: rows,
            options,
            borrowers,
            next,
            can_create: permitted(console, live, "/v1/groups", "POST"),
            can_propose: permitted(console, live, "/v1/borrowers/{id}/group", "PUT"),
            notice: shown.notice,
            refusal: shown.refusal,
            new_id: shown.new_id,
            new_name: shown.new_name,
        },
    )
}

#[derive(Deserialize)]
struct NewGroupForm {
    csrf: Option<String>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

async fn create_group(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<NewGroupForm>,
) -> Response {
    const ROUTE: &str = "/console/groups";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/groups", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let answer = create_group_command(&console, &live, &form).await;
    match answer {
        Ok(()) => Redirect::to("/console/groups?done=created").into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            render_groups(
                &console,
                lang,
                &live,
                e.status(),
                Shown {
                    refusal: Some(Refusal::of(lang, &e)),
                    new_id: form.id,
                    new_name: form.name,
                    ..Shown::default()
                },
            )
            .await
        }
    }
}

/// `POST /v1/groups` as the API runs it.
async fn create_group_command(
    console: &Console,
    live: &LiveSession,
    form: &NewGroupForm,
) -> Result<(), ApiError> {
    let id = UnitId::parse(form.id.trim()).map_err(|e| ApiError::validation(format!("id: {e}")))?;
    let name = creditops_domain::case::required_text("name", &form.name, 200)?;
    let fingerprint = serde_json::to_vec(&(id.to_string(), &name)).unwrap_or_default();
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/groups",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let group = groups::create_group(&commands, tx, &actor, id, name).await?;
                CommandOutcome::view(StatusCode::CREATED, &group)
            })
        },
    )
    .await
    .map(|_| ())
}

#[derive(Deserialize)]
struct MoveForm {
    csrf: Option<String>,
    #[serde(default)]
    group_id: String,
}

async fn propose_move(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<MoveForm>,
) -> Response {
    const ROUTE: &str = "/console/groups/borrowers/{id}";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/borrowers/{id}/group", "PUT"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let answer = propose_move_command(&console, &live, &id, &form).await;
    match answer {
        Ok(()) => Redirect::to("/console/groups?done=proposed").into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            render_groups(
                &console,
                lang,
                &live,
                e.status(),
                Shown {
                    refusal: Some(Refusal::of(lang, &e)),
                    ..Shown::default()
                },
            )
            .await
        }
    }
}

/// `PUT /v1/borrowers/{id}/group` as the API runs it: a proposal.
async fn propose_move_command(
    console: &Console,
    live: &LiveSession,
    id: &str,
    form: &MoveForm,
) -> Result<(), ApiError> {
    let borrower = id
        .parse::<BorrowerId>()
        .map_err(|_| ApiError::validation("no borrower with that id"))?;
    let wanted = form.group_id.trim();
    let group = if wanted.is_empty() {
        None
    } else {
        Some(UnitId::parse(wanted).map_err(|e| ApiError::validation(format!("group_id: {e}")))?)
    };
    let fingerprint = serde_json::to_vec(&(borrower, wanted)).unwrap_or_default();
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "PUT /v1/borrowers/{id}/group",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let change = InputChange::GroupMembership {
                    borrower_id: borrower,
                    group_id: group,
                    from_group: None,
                };
                let proposal = inputs::propose_input(&commands, tx, &actor, change).await?;
                creditops_http::proposals::accepted(&proposal)
            })
        },
    )
    .await
    .map(|_| ())
}

#[derive(Template)]
#[template(path = "groups_proposals.html")]
struct InboxPage {
    f: Frame,
    t: &'static Texts,
    moves: Vec<PendingMove>,
    decided: Vec<PendingMove>,
    can_decide: bool,
    notice: Option<String>,
    refusal: Option<Refusal>,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
    /// What an approval did: open cases sent back to voting (V4) and limit
    /// breaches the move caused (R7).
    sent_back: Option<usize>,
    breaches: Option<usize>,
}

async fn inbox(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<DoneQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/proposals", "GET"),
        "/console/groups/proposals",
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let notice = match query.done.as_deref() {
        Some("approved") => Some(format!(
            "{} {}: {}. {}: {}.",
            t.approved,
            t.sent_back,
            query.sent_back.unwrap_or(0),
            t.breaches,
            query.breaches.unwrap_or(0)
        )),
        Some("rejected") => Some(t.rejected.to_owned()),
        _ => None,
    };
    render_inbox(&console, lang, &live, StatusCode::OK, notice, None).await
}

async fn render_inbox(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    notice: Option<String>,
    refusal: Option<Refusal>,
) -> Response {
    let names: GroupNames =
        match groups::groups_now(&console.ctx.commands(), None, GROUP_LIST).await {
            Ok(groups) => groups
                .into_iter()
                .map(|g| (g.group.id, g.group.name))
                .collect(),
            Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
        };
    let moves = match pending_moves(console, lang, live, &names).await {
        Ok(moves) => moves,
        Err(e) => return unavailable(console, lang, &e.detail),
    };
    // Decisions stay on the record, rejections too.
    let mut decided = Vec::new();
    for status in [ProposalStatus::Approved, ProposalStatus::Rejected] {
        match moves_of(console, lang, live, &names, status, DECIDED).await {
            Ok(moves) => decided.extend(moves),
            Err(e) => return unavailable(console, lang, &e.detail),
        }
    }
    decided.sort_by_key(|m| std::cmp::Reverse(m.decided_at));
    decided.truncate(DECIDED as usize);
    html(
        status,
        &InboxPage {
            f: Frame::new(console, lang, Some(live)),
            t: texts(lang),
            moves,
            decided,
            can_decide: permitted(console, live, "/v1/proposals/{id}/approve", "POST"),
            notice,
            refusal,
        },
    )
}

async fn approve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    decide(console, headers, id, form, Verdict::Approve).await
}

async fn reject(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    decide(console, headers, id, form, Verdict::Reject).await
}

async fn decide(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: CsrfOnly,
    verdict: Verdict,
) -> Response {
    let (api_route, route, done) = match verdict {
        Verdict::Approve => (
            "/v1/proposals/{id}/approve",
            "/console/groups/proposals/{id}/approve",
            "approved",
        ),
        Verdict::Reject => (
            "/v1/proposals/{id}/reject",
            "/console/groups/proposals/{id}/reject",
            "rejected",
        ),
    };
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        (api_route, "POST"),
        route,
        None,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<uuid::Uuid>() else {
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
        DESK,
    )
    .await
    {
        Ok(answer) => {
            let (sent_back, breaches) = effects(answer).await;
            Redirect::to(&format!(
                "/console/groups/proposals?done={done}&sent_back={sent_back}&breaches={breaches}"
            ))
            .into_response()
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
                None,
                Some(refusal_of(lang, &e)),
            )
            .await
        }
    }
}

/// How many open cases an approved move sent back to voting and how many
/// limit breaches it caused, read from the API's answer (`applied`).
async fn effects(answer: Response) -> (usize, usize) {
    let Ok(body) = axum::body::to_bytes(answer.into_body(), 1 << 20).await else {
        return (0, 0);
    };
    let view: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let count = |name: &str| {
        view["applied"][name]
            .as_array()
            .map_or(0, std::vec::Vec::len)
    };
    (count("cases_sent_back"), count("breaches"))
}

struct PartyRow {
    borrower: String,
    staff_id: String,
    relation: String,
    recorded_by: String,
    recorded_at: String,
}

struct BorrowerOption {
    id: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "groups_related.html")]
struct RelatedPage {
    f: Frame,
    t: &'static Texts,
    parties: Vec<PartyRow>,
    borrowers: Vec<BorrowerOption>,
    next: Option<String>,
    can_record: bool,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    staff_id: String,
    relation: String,
}

#[derive(Deserialize)]
struct RelatedQuery {
    done: Option<String>,
    after_borrower: Option<BorrowerId>,
    after_staff: Option<String>,
}

/// What the related-parties page shows besides the list.
#[derive(Default)]
struct RelatedShown {
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    after: Option<(BorrowerId, StaffId)>,
    borrower_id: String,
    staff_id: String,
    relation: String,
}

async fn related_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<RelatedQuery>,
) -> Response {
    // Back office has no read route of its own for related parties: the
    // people who may record them see them.
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/related-parties", "POST"),
        "/console/related-parties",
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let after = match (query.after_borrower, query.after_staff.as_deref()) {
        (Some(b), Some(s)) => StaffId::parse(s).ok().map(|s| (b, s)),
        _ => None,
    };
    let notice = match query.done.as_deref() {
        Some("recorded") => Some(texts(lang).recorded_done),
        _ => None,
    };
    render_related(
        &console,
        lang,
        &live,
        StatusCode::OK,
        RelatedShown {
            notice,
            after,
            ..RelatedShown::default()
        },
    )
    .await
}

async fn render_related(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    shown: RelatedShown,
) -> Response {
    let commands = console.ctx.commands();
    let parties = match groups::related_parties(&commands, shown.after, PAGE).await {
        Ok(parties) => parties,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let borrowers = match groups::borrowers_with_group(&commands, None, GROUP_LIST).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let names: BTreeMap<BorrowerId, String> = borrowers
        .iter()
        .map(|(b, _)| (b.id, format!("{} ({}, {})", b.name, b.country, b.sector)))
        .collect();
    let mut rows = Vec::with_capacity(parties.len());
    for p in &parties {
        let borrower = match names.get(&p.borrower_id) {
            Some(name) => name.clone(),
            None => match creditops_commands::market::borrower(&commands, p.borrower_id).await {
                Ok(b) => format!("{} ({}, {})", b.name, b.country, b.sector),
                Err(_) => p.borrower_id.to_string(),
            },
        };
        rows.push(PartyRow {
            borrower,
            staff_id: p.staff_id.to_string(),
            relation: p.relation.clone(),
            recorded_by: p.recorded_by.to_string(),
            recorded_at: lang.date_time(p.recorded_at),
        });
    }
    let next = (parties.len() == PAGE as usize)
        .then(|| {
            parties.last().map(|p| {
                format!(
                    "/console/related-parties?after_borrower={}&after_staff={}",
                    p.borrower_id, p.staff_id
                )
            })
        })
        .flatten();
    let options = borrowers
        .iter()
        .map(|(b, _)| BorrowerOption {
            id: b.id.to_string(),
            label: format!("{} ({}, {})", b.name, b.country, b.sector),
            selected: b.id.to_string() == shown.borrower_id,
        })
        .collect();
    html(
        status,
        &RelatedPage {
            f: Frame::new(console, lang, Some(live)),
            t: texts(lang),
            parties: rows,
            borrowers: options,
            next,
            can_record: permitted(console, live, "/v1/related-parties", "POST"),
            notice: shown.notice,
            refusal: shown.refusal,
            staff_id: shown.staff_id,
            relation: shown.relation,
        },
    )
}

#[derive(Deserialize)]
struct RelatedForm {
    csrf: Option<String>,
    #[serde(default)]
    borrower_id: String,
    #[serde(default)]
    staff_id: String,
    #[serde(default)]
    relation: String,
}

async fn record_related(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RelatedForm>,
) -> Response {
    const ROUTE: &str = "/console/related-parties";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/related-parties", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    match record_related_command(&console, &live, &form).await {
        Ok(()) => Redirect::to("/console/related-parties?done=recorded").into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, None).await {
                return unavailable(&console, lang, &audit.detail);
            }
            render_related(
                &console,
                lang,
                &live,
                e.status(),
                RelatedShown {
                    refusal: Some(Refusal::of(lang, &e)),
                    borrower_id: form.borrower_id,
                    staff_id: form.staff_id,
                    relation: form.relation,
                    ..RelatedShown::default()
                },
            )
            .await
        }
    }
}

/// `POST /v1/related-parties` as the API runs it (S6, V11).
async fn record_related_command(
    console: &Console,
    live: &LiveSession,
    form: &RelatedForm,
) -> Result<(), ApiError> {
    let borrower_id = form
        .borrower_id
        .trim()
        .parse::<BorrowerId>()
        .map_err(|_| ApiError::validation("borrower_id: choose a borrower"))?;
    let staff_id = StaffId::parse(form.staff_id.trim())
        .map_err(|e| ApiError::validation(format!("staff_id: {e}")))?;
    let relation = creditops_domain::case::required_text("relation", &form.relation, 200)?;
    let fingerprint =
        serde_json::to_vec(&(borrower_id, staff_id.to_string(), &relation)).unwrap_or_default();
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/related-parties",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let party = groups::NewRelatedParty {
                    borrower_id,
                    staff_id,
                    relation,
                };
                let party = groups::record_related_party(&commands, tx, &actor, party).await?;
                CommandOutcome::view(StatusCode::CREATED, &party)
            })
        },
    )
    .await
    .map(|_| ())
}
