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
use creditops_domain::{CaseId, RuleId};
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
