//! The sign-in pages of a desk that signs in through the bank's identity
//! provider ([`crate::oidc`]): `/login` offers the way there, `/login/start`
//! sends the browser to the provider, `/login/callback` takes it back,
//! checks what the provider says and starts the session.

use crate::Console;
use crate::i18n::Lang;
use crate::oidc::{CALLBACK_PATH, OidcClient, OidcError, PendingLogin};
use crate::pages::{Frame, audit_refusal, expected_origin, html, lang_of, message, unavailable};
use crate::session;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;

pub(crate) const START_PATH: &str = "/login/start";
/// How long a browser may take at the provider.
const PENDING_SECONDS: i64 = 600;

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route(START_PATH, get(start))
        .route(CALLBACK_PATH, get(callback))
}

/// This part's texts in one language.
pub(crate) struct Texts {
    pub intro: &'static str,
    pub button: &'static str,
    pub provider_down: &'static str,
    pub refused: &'static str,
    pub no_role: &'static str,
    pub continue_to: &'static str,
    pub signed_in: &'static str,
}

static DE: Texts = Texts {
    intro: "Melden Sie sich über die Anmeldung der Bank an (Single Sign-on).",
    button: "Mit der Bank-Anmeldung fortfahren",
    provider_down: "Die Anmeldung der Bank ist gerade nicht erreichbar; bitte versuchen Sie es später noch einmal.",
    refused: "Die Anmeldung wurde abgelehnt. Bitte melden Sie sich erneut an.",
    no_role: "Sie haben heute keine Rolle an diesem Arbeitsplatz.",
    continue_to: "Weiter zum Arbeitsplatz",
    signed_in: "Sie sind angemeldet.",
};

static EN: Texts = Texts {
    intro: "Sign in through the bank's single sign-on.",
    button: "Continue to the bank's sign-in",
    provider_down: "The bank's sign-in cannot be reached right now; please try again later.",
    refused: "The sign-in was refused. Please sign in again.",
    no_role: "You hold no role at this desk today.",
    continue_to: "Continue to the desk",
    signed_in: "You are signed in.",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

fn client(console: &Console) -> Option<Arc<OidcClient>> {
    console.settings.oidc.clone()
}

/// The cookie that carries a pending sign-in to the callback. `Lax`, not
/// `Strict`: the callback is a navigation that starts at the provider.
fn pending_cookie_name(console: &Console) -> String {
    let service = console.ctx.service;
    if console.settings.secure_cookies {
        format!("__Host-creditops-{service}-signin")
    } else {
        format!("creditops-{service}-signin")
    }
}

/// The pending cookie's value after a sign-out: the next sign-in in this
/// browser authenticates at the provider again.
const SIGNED_OUT: &str = "signed-out";

/// The cookie a sign-out leaves (see [`SIGNED_OUT`]).
pub(crate) fn signed_out_cookie(console: &Console) -> Option<String> {
    console
        .settings
        .oidc
        .is_some()
        .then(|| pending_cookie(console, SIGNED_OUT, PENDING_SECONDS))
}

fn pending_cookie(console: &Console, value: &str, max_age: i64) -> String {
    let secure = if console.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        pending_cookie_name(console)
    )
}

fn redirect_uri(console: &Console, oidc: &OidcClient, headers: &HeaderMap) -> Option<String> {
    match &oidc.config().redirect_uri {
        Some(uri) => Some(uri.clone()),
        None => expected_origin(console, headers).map(|origin| format!("{origin}{CALLBACK_PATH}")),
    }
}

#[derive(Template)]
#[template(path = "sso_login.html")]
struct SsoPage {
    f: Frame,
    t: &'static Texts,
    error: Option<&'static str>,
}

/// The sign-in page of a desk with single sign-on.
pub(crate) fn login_page(
    console: &Console,
    lang: Lang,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    html(
        status,
        &SsoPage {
            f: Frame::new(console, lang, None),
            t: texts(lang),
            error,
        },
    )
}

async fn start(State(console): State<Console>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    let Some(oidc) = client(&console) else {
        return not_here(&console, lang);
    };
    let Some(redirect) = redirect_uri(&console, &oidc, &headers) else {
        return login_page(
            &console,
            lang,
            StatusCode::BAD_REQUEST,
            Some(texts(lang).refused),
        );
    };
    let login = match PendingLogin::new() {
        Ok(login) => login,
        Err(e) => return unavailable(&console, lang, &e),
    };
    let after_sign_out =
        session::cookie(&headers, &pending_cookie_name(&console)) == Some(SIGNED_OUT);
    let url = match oidc
        .authorization_url(&redirect, &login, after_sign_out)
        .await
    {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(error = %e, "single sign-on: the identity provider cannot be used");
            let t = texts(lang);
            return login_page(
                &console,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(t.provider_down),
            );
        }
    };
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Ok(value) = HeaderValue::from_str(&pending_cookie(
        &console,
        &login.cookie_value(),
        PENDING_SECONDS,
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn not_here(console: &Console, lang: Lang) -> Response {
    message(
        console,
        lang,
        None,
        StatusCode::NOT_FOUND,
        lang.messages().login_refused,
        None,
    )
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "sso_done.html")]
struct DonePage {
    f: Frame,
    t: &'static Texts,
}

async fn callback(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let lang = lang_of(&headers);
    let t = texts(lang);
    let Some(oidc) = client(&console) else {
        return not_here(&console, lang);
    };
    // The pending sign-in is spent whatever happens next.
    let clear = pending_cookie(&console, "", 0);
    let refuse = |status: StatusCode, text: &'static str, problem: &'static str| {
        let console = console.clone();
        let clear = clear.clone();
        async move {
            if let Err(e) =
                audit_refusal(&console, None, CALLBACK_PATH, status, None, problem, None).await
            {
                return unavailable(&console, lang, &e);
            }
            let mut response = login_page(&console, lang, status, Some(text));
            if let Ok(value) = HeaderValue::from_str(&clear) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
    };
    let pending = session::cookie(&headers, &pending_cookie_name(&console))
        .and_then(PendingLogin::from_cookie);
    let (Some(pending), Some(state)) = (pending, query.state.as_deref()) else {
        return refuse(StatusCode::BAD_REQUEST, t.refused, "sso_no_pending_sign_in").await;
    };
    if !session::same_secret(&pending.state, state) {
        return refuse(StatusCode::BAD_REQUEST, t.refused, "sso_state").await;
    }
    if query.error.is_some() {
        return refuse(StatusCode::UNAUTHORIZED, t.refused, "sso_provider_refused").await;
    }
    let (Some(code), Some(redirect)) = (
        query.code.as_deref(),
        redirect_uri(&console, &oidc, &headers),
    ) else {
        return refuse(StatusCode::BAD_REQUEST, t.refused, "sso_no_code").await;
    };
    let staff_id = match oidc.sign_in(code, &redirect, &pending).await {
        Ok(id) => id,
        Err(OidcError::Refused(reason)) => {
            tracing::warn!(%reason, "single sign-on: the provider's answer is refused");
            return refuse(StatusCode::UNAUTHORIZED, t.refused, "sso_token").await;
        }
        Err(e @ OidcError::Provider(_)) => {
            tracing::error!(error = %e, "single sign-on: the identity provider cannot be used");
            return login_page(
                &console,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(t.provider_down),
            );
        }
    };
    match session::desk_actor(&console.ctx, &console.settings, &staff_id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            if let Err(e) = audit_refusal(
                &console,
                Some(&staff_id),
                CALLBACK_PATH,
                StatusCode::FORBIDDEN,
                Some(creditops_domain::RuleId::S8),
                "sso_no_role",
                None,
            )
            .await
            {
                return unavailable(&console, lang, &e);
            }
            return login_page(&console, lang, StatusCode::FORBIDDEN, Some(t.no_role));
        }
        Err(e) => return unavailable(&console, lang, &e),
    }
    let token = match session::start(&console.ctx, &staff_id, "single_sign_on").await {
        Ok(token) => token,
        Err(e) => return unavailable(&console, lang, &e),
    };
    // A page, not a redirect: the session cookie is `SameSite=Strict`, and
    // a browser withholds it from a redirect chain that began at the
    // provider; the page's own navigation to the desk carries it.
    let mut response = html(
        StatusCode::OK,
        &DonePage {
            f: Frame::new(&console, lang, None),
            t,
        },
    );
    let secure = console.settings.secure_cookies;
    for cookie in [
        session::set_cookie(
            &session::cookie_name(console.ctx.service, secure),
            &token,
            secure,
            console.settings.absolute_timeout.num_seconds(),
        ),
        clear,
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
