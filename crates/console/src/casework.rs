//! What every desk's pages share: whether the session's person may do what
//! an API route does (the service's casbin policy), the refusal page and a
//! command's refusal in plain language with its rule, audited as the API's
//! middleware audits refusals.

use crate::Console;
use crate::i18n::{Lang, rule_explanation};
use crate::pages::{audit_refusal, message, unavailable};
use crate::session::LiveSession;
use axum::http::StatusCode;
use axum::response::Response;
use creditops_domain::{CaseId, CaseStatus, CreditCase, RuleId, VoteDecision, VoteStage};
use creditops_http::ApiError;

/// Whether the session's person may do what API `method route` does.
pub(crate) fn permitted(console: &Console, live: &LiveSession, route: &str, method: &str) -> bool {
    live.actor
        .roles
        .iter()
        .any(|role| console.ctx.authorizer.allows(role.as_str(), route, method))
}

/// The refusal page for a page the person's roles do not allow (S8).
pub(crate) async fn forbidden(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    route: &str,
) -> Response {
    if let Err(e) = audit_refusal(
        console,
        Some(live.actor.id()),
        route,
        StatusCode::FORBIDDEN,
        Some(RuleId::S8),
        "forbidden",
        None,
    )
    .await
    {
        return unavailable(console, lang, &e);
    }
    message(
        console,
        lang,
        Some(live),
        StatusCode::FORBIDDEN,
        lang.messages().forbidden_page,
        Some(RuleId::S8),
    )
}

/// A command's refusal as the person reads it: the rule's plain-language
/// explanation if there is one, else the command's own words.
pub(crate) struct Refusal {
    pub text: String,
    pub rule: Option<String>,
}

impl Refusal {
    pub fn of(lang: Lang, error: &ApiError) -> Refusal {
        let rule = error.rule.map(|r| r.to_string());
        let text = rule
            .as_deref()
            .and_then(|r| rule_explanation(lang, r))
            .map_or_else(
                || error.detail.clone(),
                |plain| format!("{plain} ({})", error.detail),
            );
        Refusal { text, rule }
    }
}

/// Audits a command's client-error refusal as the API's middleware would.
pub(crate) async fn audit_command_refusal(
    console: &Console,
    live: &LiveSession,
    route: &str,
    error: &ApiError,
    case_id: Option<CaseId>,
) -> Result<(), ApiError> {
    if !error.status().is_client_error() {
        return Ok(());
    }
    audit_refusal(
        console,
        Some(live.actor.id()),
        route,
        error.status(),
        error.rule,
        error.kind.slug(),
        case_id,
    )
    .await
}

/// The first eight characters of a case id, as pages show it.
pub(crate) fn short(id: CaseId) -> String {
    id.to_string().chars().take(8).collect()
}

pub(crate) struct VoteLine {
    pub stage: &'static str,
    pub voter: String,
    pub decision: &'static str,
    pub version: i64,
    pub rationale: String,
}

pub(crate) struct Event {
    pub when: String,
    pub what: String,
}

/// A case as every desk's case page shows it.
pub(crate) struct CaseSheet {
    pub id: String,
    pub short_id: String,
    pub state: &'static str,
    pub version: i64,
    pub borrower: String,
    pub amount: String,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
    pub originator: String,
    pub editors: String,
    pub opened_on: String,
    pub return_reason: Option<String>,
    pub votes: Vec<VoteLine>,
    pub history: Vec<Event>,
    pub can_vote: bool,
}

/// The sheet of `case`; `may_vote` says whether the person may cast the
/// first vote (the case must be with market, or escalated, for it too).
pub(crate) fn sheet(lang: Lang, case: &CreditCase, borrower: String, may_vote: bool) -> CaseSheet {
    let m = lang.messages();
    let stage = |s: VoteStage| match s {
        VoteStage::First => m.stage_first,
        VoteStage::Second => m.stage_second,
    };
    let decision = |d: VoteDecision| match d {
        VoteDecision::Approve => m.approve,
        VoteDecision::Decline => m.decline,
    };
    let mut history = vec![(
        case.created_at,
        format!("{}: {}", m.event_opened, case.originator),
    )];
    for vote in &case.votes {
        history.push((
            vote.cast_at,
            format!(
                "{} · {} · {} ({} {})",
                stage(vote.stage),
                vote.voter.staff_id,
                decision(vote.decision),
                m.version,
                vote.file_version
            ),
        ));
    }
    if let Some(d) = &case.decision {
        history.push((
            d.decided_at,
            format!("{}: {}", m.event_decision, m.state(case.status)),
        ));
    }
    if let Some(reason) = &case.return_reason {
        history.push((case.updated_at, format!("{}: {reason}", m.event_returned)));
    }
    history.sort_by_key(|(at, _)| *at);
    CaseSheet {
        id: case.id.to_string(),
        short_id: short(case.id),
        state: m.state(case.status),
        version: case.version,
        borrower,
        amount: lang.money(case.file.amount.amount(), case.file.amount.currency_code()),
        product: case.file.product.clone(),
        term_months: case.file.term_months,
        purpose: case.file.purpose.clone(),
        originator: case.originator.to_string(),
        editors: case
            .editors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        opened_on: lang.date(case.created_at),
        return_reason: case.return_reason.clone(),
        votes: case
            .votes
            .iter()
            .map(|v| VoteLine {
                stage: stage(v.stage),
                voter: v.voter.staff_id.to_string(),
                decision: decision(v.decision),
                version: v.file_version,
                rationale: v.rationale.clone(),
            })
            .collect(),
        history: history
            .into_iter()
            .map(|(at, what)| Event {
                when: lang.date_time(at),
                what,
            })
            .collect(),
        can_vote: may_vote
            && (case.status.is_with_market() || case.status == CaseStatus::Escalated),
    }
}

/// The checks of a page that stands for API `method route`: a live session
/// (else the sign-in) and the permission (else the refusal page, audited
/// under `page`); the person and the language.
pub(crate) async fn page_access(
    console: &Console,
    headers: &axum::http::HeaderMap,
    (route, method): (&str, &str),
    page: &str,
) -> Result<(LiveSession, Lang), Response> {
    let live = crate::pages::signed_in(console, headers).await?;
    let lang = crate::pages::lang_of(headers);
    if !permitted(console, &live, route, method) {
        return Err(forbidden(console, lang, &live, page).await);
    }
    Ok((live, lang))
}

/// The checks every posted form passes, in this order: a live session, the
/// session's CSRF token from this console's own origin (else refused and
/// audited, nothing applied), the permission of the API route it stands for
/// (else refused and audited under `page`).
pub(crate) async fn form_access(
    console: &Console,
    headers: &axum::http::HeaderMap,
    csrf: Option<&str>,
    (route, method): (&str, &str),
    page: &str,
    case_id: Option<CaseId>,
) -> Result<(LiveSession, Lang), Response> {
    let live = crate::pages::signed_in(console, headers).await?;
    let lang = crate::pages::lang_of(headers);
    crate::pages::guard_form(
        console,
        headers,
        Some(&live.session.csrf_token),
        csrf,
        Some(live.actor.id()),
        page,
        case_id,
    )
    .await?;
    if !permitted(console, &live, route, method) {
        return Err(forbidden(console, lang, &live, page).await);
    }
    Ok((live, lang))
}

/// A vote as a case page posts it (first or second).
#[derive(serde::Deserialize)]
pub(crate) struct VoteForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub rationale: String,
    /// Conditions precedent of an approving second vote (L5), one per
    /// line, a due date after `|` at the end of a line.
    #[serde(default)]
    pub conditions: String,
}

impl VoteForm {
    /// The vote as the API takes it. No default decision: a vote is what
    /// the person chose on the version shown, or it is refused (422).
    pub fn request(&self) -> Result<creditops_http::views::VoteRequest, ApiError> {
        let decision = match self.decision.as_str() {
            "approve" => Some(VoteDecision::Approve),
            "decline" => Some(VoteDecision::Decline),
            _ => None,
        };
        match (decision, self.version.trim().parse::<i64>().ok()) {
            (Some(decision), Some(version)) => Ok(creditops_http::views::VoteRequest {
                decision,
                rationale: self.rationale.clone(),
                version,
                conditions: self.conditions()?,
            }),
            _ => Err(ApiError::validation(
                "choose approve or decline on the version shown",
            )),
        }
    }

    /// The conditions typed, one per non-empty line (L5).
    fn conditions(&self) -> Result<Vec<creditops_http::views::ConditionRequest>, ApiError> {
        Ok(dated_lines(&self.conditions, "condition")?
            .into_iter()
            .map(|(text, due)| creditops_http::views::ConditionRequest { text, due })
            .collect())
    }
}

/// The items of a text area, one per non-empty line, each with the date
/// written after a last `|` (`land charge registered | 2027-03-31`); `what`
/// names an item in the refusal of a bad date.
pub(crate) fn dated_lines(
    text: &str,
    what: &str,
) -> Result<Vec<(String, Option<chrono::NaiveDate>)>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.rsplit_once('|') {
            Some((text, due)) => {
                let due = due.trim().parse::<chrono::NaiveDate>().map_err(|_| {
                    ApiError::validation(format!(
                        "the date of {what} {:?} is not a date like 2027-03-31",
                        text.trim()
                    ))
                })?;
                Ok((text.trim().to_owned(), Some(due)))
            }
            None => Ok((line.to_owned(), None)),
        })
        .collect()
}

/// A form's refusal on a page of its own: audited as the API's middleware
/// audits refusals, then shown in plain language with its rule (the forms
/// of the granting panels, the credit file and the collateral, whose case
/// page is served by another desk's module).
pub(crate) async fn refusal_page(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    route: &str,
    error: &ApiError,
    case: Option<CaseId>,
) -> Response {
    if let Err(audit) = audit_command_refusal(console, live, route, error, case).await {
        return unavailable(console, lang, &audit.detail);
    }
    let shown = Refusal::of(lang, error);
    message(
        console,
        lang,
        Some(live),
        error.status(),
        &shown.text,
        error.rule,
    )
}

/// The desk's answer to an id that names nothing the person may see.
pub(crate) fn not_found(console: &Console, lang: Lang, live: &LiveSession) -> Response {
    message(
        console,
        lang,
        Some(live),
        StatusCode::NOT_FOUND,
        lang.messages().not_found,
        None,
    )
}
