//! What every desk has: the frame of a page, the login and logout, the
//! stylesheet, the form guard (CSRF token and Origin) and the audit of a
//! refused console request.

use crate::i18n::{Lang, Messages};
use crate::session::{self, LiveSession, NoSession};
use crate::{Console, LOGIN_PATH};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use creditops_audit::{AuditAction, Outcome};
use creditops_domain::{CaseId, RuleId, StaffId};
use serde::Deserialize;

const STYLESHEET: &str = include_str!("../assets/console.css");

pub(crate) fn routes(_console: &Console) -> Router<Console> {
    Router::new()
        .route(LOGIN_PATH, get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/console", get(home))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/lang/{code}", get(switch_language))
}

/// What the frame of every page shows.
pub(crate) struct Frame {
    pub m: &'static Messages,
    pub lang: &'static str,
    pub desk: &'static str,
    /// The desk's navigation (empty when nobody is signed in).
    pub nav: Vec<NavLink>,
    pub user: Option<String>,
    pub csrf: String,
    /// The other language: its code and its name in itself.
    pub other_lang: (&'static str, &'static str),
}

impl Frame {
    pub fn new(console: &Console, lang: Lang, session: Option<&LiveSession>) -> Frame {
        Frame {
            m: lang.messages(),
            lang: lang.code(),
            desk: console.settings.desk.title(lang),
            nav: match session {
                Some(live) => nav(console.settings.desk.service, lang)
                    .into_iter()
                    .filter(|link| {
                        link.needs.is_none_or(|(route, method)| {
                            crate::casework::permitted(console, live, route, method)
                        })
                    })
                    .collect(),
                None => Vec::new(),
            },
            user: session.map(|s| s.actor.id().to_string()),
            csrf: session
                .map(|s| s.session.csrf_token.clone())
                .unwrap_or_default(),
            other_lang: match lang {
                Lang::De => ("en", "English"),
                Lang::En => ("de", "Deutsch"),
            },
        }
    }
}

/// One link of a desk's navigation.
pub(crate) struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    /// The API `(route, method)` the linked page needs; a person whose
    /// roles do not allow it is not offered the link.
    pub needs: Option<(&'static str, &'static str)>,
}

impl NavLink {
    pub fn to(href: &'static str, label: &'static str) -> NavLink {
        NavLink {
            href,
            label,
            needs: None,
        }
    }

    /// The link, offered only to whom `method route` is allowed.
    pub fn needing(self, route: &'static str, method: &'static str) -> NavLink {
        NavLink {
            needs: Some((route, method)),
            ..self
        }
    }
}

/// The navigation of `service`'s desk: each desk module says its own.
fn nav(service: &str, lang: Lang) -> Vec<NavLink> {
    match service {
        "market" => crate::market::nav(lang),
        "backoffice" => crate::backoffice::nav(lang),
        "risk" => crate::riskdesk::nav(lang),
        "admin" => crate::admin::nav(lang),
        "audit" => crate::audit::nav(lang),
        _ => Vec::new(),
    }
}

/// The cookie that keeps a language chosen on a page (over the browser's).
const LANG_COOKIE: &str = "creditops-lang";

/// The language of the answer: the one chosen on a page, else the first
/// supported one the browser asks for.
pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    match session::cookie(headers, LANG_COOKIE) {
        Some("de") => Lang::De,
        Some("en") => Lang::En,
        _ => Lang::from_accept_language(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ),
    }
}

/// Switches the language and goes back to the page it was chosen on (the
/// same-origin `Referer`: a page of this console, never another site).
async fn switch_language(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Response {
    let code = match code.as_str() {
        "de" | "en" => code,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let back = expected_origin(&console, &headers)
        .and_then(|origin| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let path = referer.strip_prefix(&origin)?;
            ((path.starts_with("/console") || path.starts_with(LOGIN_PATH))
                && !path.contains("//")
                && !path.contains('\\'))
            .then(|| path.to_owned())
        })
        .unwrap_or_else(|| "/console".to_owned());
    let mut response = Redirect::to(&back).into_response();
    let cookie = format!("{LANG_COOKIE}={code}; Path=/; SameSite=Strict; Max-Age=31536000");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Renders `page` with `status`.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub f: Frame,
    pub heading: &'a str,
    pub text: &'a str,
    pub rule: Option<String>,
}

/// A page that only says something (a refusal, an outage).
pub(crate) fn message(
    console: &Console,
    lang: Lang,
    session: Option<&LiveSession>,
    status: StatusCode,
    text: &str,
    rule: Option<RuleId>,
) -> Response {
    let f = Frame::new(console, lang, session);
    let heading = if status.is_server_error() {
        f.m.product_name
    } else {
        f.m.refused
    };
    html(
        status,
        &MessagePage {
            heading,
            text,
            rule: rule.map(|r| r.to_string()),
            f,
        },
    )
}

/// The answer when the store cannot be reached: nothing was applied.
pub(crate) fn unavailable(
    console: &Console,
    lang: Lang,
    error: &impl std::fmt::Display,
) -> Response {
    tracing::error!(error = %error, "the console could not reach the store");
    let text = match lang {
        Lang::De => {
            "Die Plattform ist gerade nicht erreichbar; es wurde nichts geändert. Bitte versuchen Sie es später noch einmal."
        }
        Lang::En => {
            "The platform cannot be reached right now; nothing was changed. Please try again later."
        }
    };
    message(
        console,
        lang,
        None,
        StatusCode::SERVICE_UNAVAILABLE,
        text,
        None,
    )
}

/// The request's live session, or the answer to give instead (to the login
/// page when there is none).
pub(crate) async fn signed_in(
    console: &Console,
    headers: &HeaderMap,
) -> Result<LiveSession, Response> {
    match session::current(&console.ctx, &console.settings, headers).await {
        Ok(Ok(live)) => Ok(live),
        Ok(Err(NoSession::Missing | NoSession::Ended | NoSession::NotAllowed)) => {
            Err(Redirect::to(LOGIN_PATH).into_response())
        }
        Err(e) => Err(unavailable(console, lang_of(headers), &e)),
    }
}

/// The origin a form of this console is posted from.
pub(crate) fn expected_origin(console: &Console, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if console.settings.secure_cookies {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// A posted form is accepted only with the expected CSRF token and from
/// this console's own origin; otherwise it is refused 403 and the refusal
/// audited (as the API audits its refusals, S8).
pub(crate) async fn guard_form(
    console: &Console,
    headers: &HeaderMap,
    expected_token: Option<&str>,
    sent_token: Option<&str>,
    actor: Option<&StaffId>,
    route: &str,
    case_id: Option<CaseId>,
) -> Result<(), Response> {
    let origin_ok = match (
        headers.get(header::ORIGIN),
        expected_origin(console, headers),
    ) {
        (Some(origin), Some(expected)) => origin.as_bytes() == expected.as_bytes(),
        _ => false,
    };
    let token_ok = match (expected_token, sent_token) {
        (Some(expected), Some(sent)) => {
            !expected.is_empty() && session::same_secret(expected, sent)
        }
        _ => false,
    };
    if origin_ok && token_ok {
        return Ok(());
    }
    let lang = lang_of(headers);
    if let Err(e) = audit_refusal(
        console,
        actor,
        route,
        StatusCode::FORBIDDEN,
        None,
        "csrf",
        case_id,
    )
    .await
    {
        return Err(unavailable(console, lang, &e));
    }
    Err(message(
        console,
        lang,
        None,
        StatusCode::FORBIDDEN,
        lang.messages().csrf_refused,
        None,
    ))
}

/// Records a refused console request in its own transaction; no free text
/// of the request goes into the hashed body (A6).
pub(crate) async fn audit_refusal(
    console: &Console,
    actor: Option<&StaffId>,
    route: &str,
    status: StatusCode,
    rule: Option<RuleId>,
    problem: &str,
    case_id: Option<CaseId>,
) -> Result<(), creditops_http::ApiError> {
    let ctx = &console.ctx;
    let mut record = ctx.record(AuditAction::RequestRefused, Outcome::Denied, Utc::now());
    record.actor = actor.map(ToString::to_string);
    record.rule = rule;
    record.case_id = case_id;
    record.data = serde_json::json!({
        "method": "POST",
        "route": route,
        "status": status.as_u16(),
        "problem": problem,
        "console": true,
    });
    ctx.audit_refusal(record).await
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    f: Frame,
    error: Option<&'a str>,
    login_csrf: String,
    user: String,
}

fn login_form(
    console: &Console,
    lang: Lang,
    status: StatusCode,
    error: Option<&str>,
    user: &str,
) -> Response {
    let token = match session::random_token() {
        Ok(token) => token,
        Err(e) => return unavailable(console, lang, &e),
    };
    let secure = console.settings.secure_cookies;
    let cookie = session::set_cookie(
        &session::login_cookie_name(console.ctx.service, secure),
        &token,
        secure,
        3600,
    );
    let mut response = html(
        status,
        &LoginPage {
            f: Frame::new(console, lang, None),
            error,
            login_csrf: token,
            user: user.to_owned(),
        },
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn login_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    if console.settings.oidc.is_some() {
        return crate::sso::login_page(&console, lang, StatusCode::OK, None);
    }
    if !console.settings.dev_login {
        return message(
            &console,
            lang,
            None,
            StatusCode::NOT_FOUND,
            lang.messages().login_refused,
            None,
        );
    }
    login_form(&console, lang, StatusCode::OK, None, "")
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    user: String,
    csrf: Option<String>,
}

async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let m = lang.messages();
    if !console.settings.dev_login {
        return message(
            &console,
            lang,
            None,
            StatusCode::NOT_FOUND,
            m.login_refused,
            None,
        );
    }
    let secure = console.settings.secure_cookies;
    let expected = session::cookie(
        &headers,
        &session::login_cookie_name(console.ctx.service, secure),
    );
    if let Err(refused) = guard_form(
        &console,
        &headers,
        expected,
        form.csrf.as_deref(),
        None,
        LOGIN_PATH,
        None,
    )
    .await
    {
        return refused;
    }
    let user = form.user.trim();
    let Ok(id) = StaffId::parse(user) else {
        return login_form(
            &console,
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(m.login_unknown),
            user,
        );
    };
    let actor = match session::desk_actor(&console.ctx, &console.settings, &id).await {
        Ok(actor) => actor,
        Err(e) => return unavailable(&console, lang, &e),
    };
    if actor.is_none() {
        let active = matches!(
            console.ctx.store.staff_member(&id).await,
            Ok(Some(member)) if member.status == creditops_domain::StaffStatus::Active
        );
        let text = if active {
            m.login_refused
        } else {
            m.login_unknown
        };
        return login_form(&console, lang, StatusCode::FORBIDDEN, Some(text), user);
    }
    let token = match session::start(&console.ctx, &id, "development").await {
        Ok(token) => token,
        Err(e) => return unavailable(&console, lang, &e),
    };
    let mut response = Redirect::to("/console").into_response();
    let cookies = [
        session::set_cookie(
            &session::cookie_name(console.ctx.service, secure),
            &token,
            secure,
            console.settings.absolute_timeout.num_seconds(),
        ),
        session::set_cookie(
            &session::login_cookie_name(console.ctx.service, secure),
            "",
            secure,
            0,
        ),
    ];
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    pub csrf: Option<String>,
}

async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    let live = match signed_in(&console, &headers).await {
        Ok(live) => live,
        Err(answer) => return answer,
    };
    if let Err(refused) = guard_form(
        &console,
        &headers,
        Some(&live.session.csrf_token),
        form.csrf.as_deref(),
        Some(live.actor.id()),
        "/logout",
        None,
    )
    .await
    {
        return refused;
    }
    let secure = console.settings.secure_cookies;
    let name = session::cookie_name(console.ctx.service, secure);
    if let Some(token) = session::cookie(&headers, &name)
        && let Err(e) = session::end(&console.ctx, token, live.actor.id()).await
    {
        return unavailable(&console, lang_of(&headers), &e);
    }
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    let cookies = std::iter::once(session::set_cookie(&name, "", secure, 0))
        .chain(crate::sso::signed_out_cookie(&console));
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    f: Frame,
}

async fn home(State(console): State<Console>, headers: HeaderMap) -> Response {
    let live = match signed_in(&console, &headers).await {
        Ok(live) => live,
        Err(answer) => return answer,
    };
    if let Some(first_page) = console.settings.desk.home {
        return Redirect::to(first_page).into_response();
    }
    html(
        StatusCode::OK,
        &HomePage {
            f: Frame::new(&console, lang_of(&headers), Some(&live)),
        },
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
