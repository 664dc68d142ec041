//! The monitoring page of the back-office and risk desks (L6-L10): the
//! watch list, the due reviews, borrowers outside `normal`, the alerts, and
//! the provisions awaiting their second person, whom back office decides
//! here. The page is allowed exactly when `GET /v1/watch-list` is; each
//! decision when its API route is, and runs the API's command.

use crate::Console;
use crate::casework::{
    Refusal, audit_command_refusal, form_access, not_found, page_access, permitted,
};
use crate::i18n::Lang;
use crate::pages::{Frame, NavLink, html, unavailable};
use crate::session::LiveSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use creditops_commands::monitoring;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::monitoring::{Milestone, MilestoneStatus};
use creditops_domain::{BorrowerId, Money, ProvisionId, ProvisionStatus, Stage};
use creditops_http::{ApiError, IdempotencyKey, Principal};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Rows per table on the page.
const ROWS: usize = 200;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    match console.settings.desk.service {
        "backoffice" => Router::new()
            .route("/console/monitoring", get(page))
            .route("/console/reviews/{id}/completion", post(complete_review))
            .route("/console/borrowers/{id}/stage", post(transfer_stage))
            .route("/console/provisions", post(propose_provision))
            .route("/console/provisions/{id}/approve", post(approve))
            .route("/console/provisions/{id}/reject", post(reject)),
        "risk" => Router::new().route("/console/monitoring", get(page)),
        _ => Router::new(),
    }
}

/// The desk's link to the page.
pub(crate) fn nav(lang: Lang) -> NavLink {
    NavLink::to("/console/monitoring", texts(lang).heading).needing("/v1/watch-list", "GET")
}

struct Texts {
    heading: &'static str,
    intro: &'static str,
    watch_list: &'static str,
    none_watched: &'static str,
    borrower: &'static str,
    indicator: &'static str,
    value: &'static str,
    catalogue: &'static str,
    since: &'static str,
    reviews: &'static str,
    none_due: &'static str,
    kind: &'static str,
    reason: &'static str,
    due: &'static str,
    assignee: &'static str,
    overdue: &'static str,
    stages: &'static str,
    none_staged: &'static str,
    stage: &'static str,
    decided_by: &'static str,
    provisions: &'static str,
    none_pending: &'static str,
    amount: &'static str,
    proposed_by: &'static str,
    approve: &'static str,
    reject: &'static str,
    board: &'static str,
    alerts: &'static str,
    none_alerts: &'static str,
    audience: &'static str,
    approved: &'static str,
    rejected: &'static str,
    complete: &'static str,
    summary: &'static str,
    covenants: &'static str,
    covenants_met: &'static str,
    covenants_breached: &'static str,
    covenants_none: &'static str,
    use_of_funds: &'static str,
    collateral_checked: &'static str,
    reviewed: &'static str,
    act: &'static str,
    act_intro: &'static str,
    move_stage: &'static str,
    plan: &'static str,
    plan_help: &'static str,
    moved: &'static str,
    propose: &'static str,
    method: &'static str,
    proposed: &'static str,
}

const EN: Texts = Texts {
    heading: "Monitoring",
    intro: "The credit after it is granted: the early-warning watch list, reviews due, borrowers in intensive care or problem-loan handling, and provisions awaiting their second person.",
    watch_list: "Watch list",
    none_watched: "No borrower is on the watch list.",
    borrower: "Borrower",
    indicator: "Indicator",
    value: "Value",
    catalogue: "Catalogue version",
    since: "Since",
    reviews: "Reviews due",
    none_due: "No review is open.",
    kind: "Kind",
    reason: "Reason",
    due: "Due",
    assignee: "Assigned to",
    overdue: "overdue",
    stages: "Intensive care and problem loans",
    none_staged: "Every borrower is in normal care.",
    stage: "Stage",
    decided_by: "Decided by",
    provisions: "Provisions awaiting a decision",
    none_pending: "No provision awaits a decision.",
    amount: "Amount",
    proposed_by: "Proposed by",
    approve: "Approve provision",
    reject: "Reject provision",
    board: "above the board threshold",
    alerts: "Alerts",
    none_alerts: "No alert.",
    audience: "For",
    approved: "The provision is approved.",
    rejected: "The provision is rejected.",
    complete: "Complete the review",
    summary: "Assessment",
    covenants: "Covenants",
    covenants_met: "met",
    covenants_breached: "breached (recorded as an early-warning flag)",
    covenants_none: "none agreed",
    use_of_funds: "The use of funds is checked",
    collateral_checked: "The collateral and its revaluations are checked",
    reviewed: "The review is completed.",
    act: "Act on a borrower",
    act_intro: "Borrowers on the watch list or outside normal care: move one to another stage, or propose a loan-loss provision for a second person of back office to decide.",
    move_stage: "Move to stage",
    plan: "Plan (restructuring and workout)",
    plan_help: "One milestone per line, its due date after \"|\" (e.g. \"new equity paid in | 2027-03-31\").",
    moved: "The borrower's stage is changed.",
    propose: "Propose a provision",
    method: "Method",
    proposed: "The provision is proposed; a second person of back office decides it.",
};

const DE: Texts = Texts {
    heading: "Überwachung",
    intro: "Der Kredit nach der Vergabe: Frühwarnliste, fällige Überprüfungen, Kreditnehmer in Intensivbetreuung oder Problemkreditbearbeitung und Risikovorsorgen, die auf die zweite Person warten.",
    watch_list: "Frühwarnliste",
    none_watched: "Kein Kreditnehmer steht auf der Frühwarnliste.",
    borrower: "Kreditnehmer",
    indicator: "Indikator",
    value: "Wert",
    catalogue: "Katalogversion",
    since: "Seit",
    reviews: "Fällige Überprüfungen",
    none_due: "Keine Überprüfung ist offen.",
    kind: "Art",
    reason: "Anlass",
    due: "Fällig",
    assignee: "Zugewiesen an",
    overdue: "überfällig",
    stages: "Intensivbetreuung und Problemkredite",
    none_staged: "Alle Kreditnehmer sind in Normalbetreuung.",
    stage: "Stufe",
    decided_by: "Entschieden von",
    provisions: "Risikovorsorgen zur Entscheidung",
    none_pending: "Keine Risikovorsorge wartet auf eine Entscheidung.",
    amount: "Betrag",
    proposed_by: "Vorgeschlagen von",
    approve: "Risikovorsorge genehmigen",
    reject: "Risikovorsorge ablehnen",
    board: "über der Meldeschwelle der Geschäftsleitung",
    alerts: "Meldungen",
    none_alerts: "Keine Meldung.",
    audience: "Für",
    approved: "Die Risikovorsorge ist genehmigt.",
    rejected: "Die Risikovorsorge ist abgelehnt.",
    complete: "Überprüfung abschließen",
    summary: "Beurteilung",
    covenants: "Covenants",
    covenants_met: "eingehalten",
    covenants_breached: "verletzt (als Frühwarnhinweis erfasst)",
    covenants_none: "keine vereinbart",
    use_of_funds: "Die Mittelverwendung ist geprüft",
    collateral_checked: "Die Sicherheiten und ihre Neubewertungen sind geprüft",
    reviewed: "Die Überprüfung ist abgeschlossen.",
    act: "Maßnahmen zu einem Kreditnehmer",
    act_intro: "Kreditnehmer auf der Frühwarnliste oder außerhalb der Normalbetreuung: in eine andere Stufe übergeben oder eine Risikovorsorge vorschlagen, über die eine zweite Person der Marktfolge entscheidet.",
    move_stage: "Übergeben in Stufe",
    plan: "Plan (Sanierung und Abwicklung)",
    plan_help: "Ein Meilenstein je Zeile, seine Frist nach „|“ (z. B. „Kapitalerhöhung eingezahlt | 2027-03-31“).",
    moved: "Die Stufe des Kreditnehmers ist geändert.",
    propose: "Risikovorsorge vorschlagen",
    method: "Methode",
    proposed: "Die Risikovorsorge ist vorgeschlagen; eine zweite Person der Marktfolge entscheidet.",
};

fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

struct WatchRow {
    borrower: String,
    indicator: String,
    value: String,
    catalogue: i64,
    since: String,
}

struct ReviewRow {
    id: String,
    borrower: String,
    kind: &'static str,
    reason: String,
    due: String,
    assignee: String,
    overdue: bool,
}

struct StageRow {
    borrower: String,
    stage: String,
    since: String,
    decided_by: String,
    reason: String,
}

struct ProvisionRow {
    id: String,
    borrower: String,
    amount: String,
    reason: String,
    method: String,
    proposed_by: String,
    proposed_at: String,
    board: bool,
}

/// A borrower the desk may act on: on the watch list or outside `normal`.
struct ActRow {
    id: String,
    borrower: String,
    stage: &'static str,
}

struct AlertRow {
    borrower: String,
    detail: String,
    audience: String,
    raised_at: String,
}

#[derive(Template)]
#[template(path = "monitoring.html")]
struct MonitoringPage {
    f: Frame,
    t: &'static Texts,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
    watch: Vec<WatchRow>,
    reviews: Vec<ReviewRow>,
    stages: Vec<StageRow>,
    provisions: Vec<ProvisionRow>,
    alerts: Vec<AlertRow>,
    can_decide: bool,
    can_complete: bool,
    act: Vec<ActRow>,
    can_move: bool,
    can_propose: bool,
    stages_all: [&'static str; 4],
}

#[derive(Deserialize)]
struct PageQuery {
    done: Option<String>,
}

async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let (live, lang) = match page_access(
        &console,
        &headers,
        ("/v1/watch-list", "GET"),
        "/console/monitoring",
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let t = texts(lang);
    let notice = match query.done.as_deref() {
        Some("approved") => Some(t.approved),
        Some("rejected") => Some(t.rejected),
        Some("reviewed") => Some(t.reviewed),
        Some("moved") => Some(t.moved),
        Some("proposed") => Some(t.proposed),
        _ => None,
    };
    render(&console, lang, &live, StatusCode::OK, notice, None).await
}

async fn render(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    status: StatusCode,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
) -> Response {
    let (report, alerts, names) = match monitoring::desk_view(&console.ctx.commands()).await {
        Ok(found) => found,
        Err(e) => return unavailable(console, lang, &ApiError::from(e).detail),
    };
    let pending: Vec<_> = report
        .provisions
        .iter()
        .filter(|p| p.status == ProvisionStatus::Proposed)
        .take(ROWS)
        .collect();
    let name = |id: &BorrowerId| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let now = chrono::Utc::now();
    let page = MonitoringPage {
        f: Frame::new(console, lang, Some(live)),
        t: texts(lang),
        notice,
        refusal,
        watch: report
            .watch_list
            .iter()
            .take(ROWS)
            .map(|w| WatchRow {
                borrower: name(&w.borrower_id),
                indicator: w.indicator.clone(),
                value: w.value.clone(),
                catalogue: w.rules_version,
                since: lang.date_time(w.hit_at),
            })
            .collect(),
        reviews: report
            .reviews
            .iter()
            .take(ROWS)
            .map(|r| ReviewRow {
                id: r.id.to_string(),
                borrower: name(&r.borrower_id),
                kind: r.kind.as_str(),
                reason: r.reason.clone(),
                due: lang.date(r.due_at),
                assignee: r
                    .assignee
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                overdue: r.due_at <= now,
            })
            .collect(),
        stages: report
            .stages
            .iter()
            .take(ROWS)
            .map(|s| StageRow {
                borrower: name(&s.borrower_id),
                stage: s.to_stage.to_string(),
                since: lang.date(s.decided_at),
                decided_by: s.decided_by.to_string(),
                reason: s.reason.clone(),
            })
            .collect(),
        provisions: pending
            .iter()
            .map(|p| ProvisionRow {
                id: p.id.to_string(),
                borrower: name(&p.borrower_id),
                amount: lang.money(p.amount.amount(), p.amount.currency_code()),
                reason: p.reason.clone(),
                method: p.method.clone(),
                proposed_by: p.proposed_by.to_string(),
                proposed_at: lang.date_time(p.proposed_at),
                board: p.board_alert,
            })
            .collect(),
        alerts: alerts
            .iter()
            .take(ROWS)
            .map(|a| AlertRow {
                borrower: name(&a.borrower_id),
                detail: a.detail.clone(),
                audience: a.audience.clone(),
                raised_at: lang.date_time(a.raised_at),
            })
            .collect(),
        can_decide: permitted(console, live, "/v1/provisions/{id}/approve", "POST"),
        can_complete: permitted(console, live, "/v1/reviews/{id}/completion", "POST"),
        act: {
            let staged: BTreeMap<BorrowerId, Stage> = report
                .stages
                .iter()
                .map(|s| (s.borrower_id, s.to_stage))
                .collect();
            let ids: std::collections::BTreeSet<BorrowerId> = report
                .watch_list
                .iter()
                .map(|w| w.borrower_id)
                .chain(staged.keys().copied())
                .collect();
            ids.into_iter()
                .take(ROWS)
                .map(|id| ActRow {
                    id: id.to_string(),
                    borrower: name(&id),
                    stage: staged.get(&id).copied().unwrap_or_default().as_str(),
                })
                .collect()
        },
        can_move: permitted(console, live, "/v1/borrowers/{id}/stage", "PUT"),
        can_propose: permitted(console, live, "/v1/provisions", "POST"),
        stages_all: Stage::ALL.map(Stage::as_str),
    };
    html(status, &page)
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

async fn decide(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: crate::pages::CsrfOnly,
    verdict: Verdict,
) -> Response {
    let (api_route, route, done) = match verdict {
        Verdict::Approve => (
            "/v1/provisions/{id}/approve",
            "/console/provisions/{id}/approve",
            "approved",
        ),
        Verdict::Reject => (
            "/v1/provisions/{id}/reject",
            "/console/provisions/{id}/reject",
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
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<ProvisionId>() else {
        return not_found(&console, lang, &live);
    };
    let principal = Principal(live.actor.clone());
    let outcome = creditops_http::monitoring::decide_provision(
        console.ctx.clone(),
        principal,
        IdempotencyKey(None),
        id,
        verdict,
    )
    .await;
    after_command(&console, &live, lang, route, outcome, done).await
}

/// A review's completion as the page posts it.
#[derive(Deserialize)]
struct CompletionForm {
    csrf: Option<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    covenants: String,
    /// A checkbox: present ("on") when ticked.
    use_of_funds_checked: Option<String>,
    collateral_checked: Option<String>,
}

/// Back office completes a review from the page (L6), through the API's
/// command.
async fn complete_review(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CompletionForm>,
) -> Response {
    const ROUTE: &str = "/console/reviews/{id}/completion";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/reviews/{id}/completion", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<creditops_domain::ReviewId>() else {
        return not_found(&console, lang, &live);
    };
    let covenants = match form.covenants.as_str() {
        "met" => Some(monitoring::Covenants::Met),
        "breached" => Some(monitoring::Covenants::Breached),
        "none" => Some(monitoring::Covenants::None),
        _ => None,
    };
    let outcome = match covenants {
        None => Err(ApiError::validation("choose whether the covenants are met")),
        Some(covenants) => {
            let assessment = monitoring::Assessment {
                summary: form.summary.clone(),
                covenants,
                use_of_funds_checked: form.use_of_funds_checked.is_some(),
                collateral_checked: form.collateral_checked.is_some(),
            };
            let principal = Principal(live.actor.clone());
            let (commands, actor) = (console.ctx.commands(), live.actor.clone());
            let fingerprint =
                serde_json::to_vec(&(id, &form.summary, &form.covenants)).unwrap_or_default();
            creditops_http::run_command(
                &console.ctx,
                &principal,
                IdempotencyKey(None),
                "POST /v1/reviews/{id}/completion",
                &fingerprint,
                move |tx| {
                    Box::pin(async move {
                        let review =
                            monitoring::complete_review(&commands, tx, &actor, id, &assessment)
                                .await?;
                        creditops_http::CommandOutcome::view(StatusCode::OK, &review)
                    })
                },
            )
            .await
        }
    };
    after_command(&console, &live, lang, ROUTE, outcome, "reviewed").await
}

/// What a form's command answered: the page again with the notice, or with
/// the refusal (audited as the API audits it).
async fn after_command(
    console: &Console,
    live: &LiveSession,
    lang: Lang,
    route: &str,
    outcome: Result<Response, ApiError>,
    done: &str,
) -> Response {
    match outcome {
        Ok(_) => Redirect::to(&format!("/console/monitoring?done={done}")).into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(console, live, route, &e, None).await {
                return unavailable(console, lang, &audit.detail);
            }
            render(
                console,
                lang,
                live,
                e.status(),
                None,
                Some(Refusal::of(lang, &e)),
            )
            .await
        }
    }
}

/// A transfer as the page posts it.
#[derive(Deserialize)]
struct StageForm {
    csrf: Option<String>,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    reason: String,
    /// Milestones, one per line: `title | YYYY-MM-DD`.
    #[serde(default)]
    plan: String,
}

/// Back office moves a borrower to another stage from the page (L8, L9).
async fn transfer_stage(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<StageForm>,
) -> Response {
    const ROUTE: &str = "/console/borrowers/{id}/stage";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/borrowers/{id}/stage", "PUT"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(borrower) = id.parse::<BorrowerId>() else {
        return not_found(&console, lang, &live);
    };
    let parsed = form
        .stage
        .parse::<Stage>()
        .map_err(ApiError::validation)
        .and_then(|stage| {
            let plan = crate::casework::dated_lines(&form.plan, "milestone")?
                .into_iter()
                .map(|(title, due)| {
                    due.map(|due_on| Milestone {
                        title: title.clone(),
                        due_on,
                        status: MilestoneStatus::Open,
                    })
                    .ok_or_else(|| {
                        ApiError::validation(format!(
                            "the milestone {title:?} needs a due date after \"|\""
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((stage, plan))
        });
    let outcome = match parsed {
        Err(e) => Err(e),
        Ok((stage, plan)) => {
            let principal = Principal(live.actor.clone());
            let (commands, actor, reason) = (
                console.ctx.commands(),
                live.actor.clone(),
                form.reason.clone(),
            );
            let fingerprint =
                serde_json::to_vec(&(borrower, &form.stage, &form.reason, &form.plan))
                    .unwrap_or_default();
            creditops_http::run_command(
                &console.ctx,
                &principal,
                IdempotencyKey(None),
                "PUT /v1/borrowers/{id}/stage",
                &fingerprint,
                move |tx| {
                    Box::pin(async move {
                        monitoring::transfer_stage(
                            &commands, tx, &actor, borrower, stage, &reason, &plan,
                        )
                        .await?;
                        Ok(creditops_http::CommandOutcome::new(
                            StatusCode::OK,
                            serde_json::json!({"borrower_id": borrower, "stage": stage}),
                        ))
                    })
                },
            )
            .await
        }
    };
    after_command(&console, &live, lang, ROUTE, outcome, "moved").await
}

/// A provision as the page proposes it.
#[derive(Deserialize)]
struct ProvisionForm {
    csrf: Option<String>,
    #[serde(default)]
    borrower_id: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    method: String,
}

/// Back office proposes a provision from the page (L10); a second person
/// decides it.
async fn propose_provision(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ProvisionForm>,
) -> Response {
    const ROUTE: &str = "/console/provisions";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/provisions", "POST"),
        ROUTE,
        None,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let parsed = form
        .borrower_id
        .parse::<BorrowerId>()
        .map_err(|_| ApiError::validation("choose a borrower"))
        .and_then(|borrower| {
            let amount = Money::parse(form.amount.trim(), "EUR")
                .map_err(|e| ApiError::invalid_field("amount", e))?;
            Ok(monitoring::ProvisionInput {
                borrower,
                credit: None,
                amount,
                reason: form.reason.clone(),
                method: form.method.clone(),
            })
        });
    let outcome = match parsed {
        Err(e) => Err(e),
        Ok(input) => {
            let principal = Principal(live.actor.clone());
            let (commands, actor) = (console.ctx.commands(), live.actor.clone());
            let fingerprint =
                serde_json::to_vec(&(&form.borrower_id, &form.amount, &form.reason, &form.method))
                    .unwrap_or_default();
            creditops_http::run_command(
                &console.ctx,
                &principal,
                IdempotencyKey(None),
                "POST /v1/provisions",
                &fingerprint,
                move |tx| {
                    Box::pin(async move {
                        let provision =
                            monitoring::propose_provision(&commands, tx, &actor, &input).await?;
                        Ok(creditops_http::CommandOutcome::new(
                            StatusCode::CREATED,
                            serde_json::json!({"id": provision.id}),
                        ))
                    })
                },
            )
            .await
        }
    };
    after_command(&console, &live, lang, ROUTE, outcome, "proposed").await
}
