//! The web console (issue 19): server-rendered HTML desks, one per service
//! and served by that service, for the people who do not use curl.
//!
//! A desk runs the same commands of `creditops-commands`, under the same
//! casbin check of the service's policy (the API route a page stands for),
//! as the JSON API does; it never widens anyone's rights. Pages come from
//! compile-time templates; the one stylesheet is embedded in the binary;
//! there is no script. Every answer carries a strict Content-Security-Policy;
//! every form carries the session's CSRF token and its Origin is checked;
//! a form without them is refused 403 and audited.
//!
//! Sessions are server-side rows ([`session`]), valid only at the service
//! that issued them. A person signs in through the bank's identity provider
//! (OpenID Connect with PKCE, [`oidc`]) or, in development, with a staff id
//! alone ([`ConsoleSettings::dev_login`]).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod audit;
mod backoffice;
mod borrowers;
mod casework;
mod credit_pages;
mod desk;
mod disbursement;
mod drafts;
mod granting;
mod groups;
pub mod i18n;
mod market;
mod monitoring;
pub mod oidc;
mod pages;
mod riskdesk;
pub mod session;
mod sso;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::from_fn;
use axum::response::Response;
use creditops_http::ServiceContext;
use std::sync::Arc;

pub use audit::AuditKeys;
pub use desk::Desk;

/// How a service serves its console.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub desk: &'static Desk,
    /// Served over TLS: cookies are `Secure` and `__Host-` prefixed.
    pub secure_cookies: bool,
    /// The development login (staff id only). Off, the desk has no login.
    pub dev_login: bool,
    /// A session unused this long has ended.
    pub idle_timeout: chrono::Duration,
    /// A session older than this has ended, used or not.
    pub absolute_timeout: chrono::Duration,
    /// The audit log's origin and checkpoint keys (the audit desk's
    /// checkpoint, proofs and exports); none elsewhere.
    pub audit_keys: Option<AuditKeys>,
    /// Sign-in through the bank's identity provider (OpenID Connect).
    pub oidc: Option<Arc<oidc::OidcClient>>,
}

impl ConsoleSettings {
    /// The development settings for `service`'s desk, if it has one yet.
    pub fn dev(service: &str) -> Option<ConsoleSettings> {
        Some(ConsoleSettings {
            desk: Desk::of(service)?,
            secure_cookies: false,
            dev_login: true,
            idle_timeout: chrono::Duration::minutes(30),
            absolute_timeout: chrono::Duration::hours(10),
            audit_keys: None,
            oidc: None,
        })
    }

    /// The settings for `service`'s desk signing in through the bank's
    /// identity provider; cookies are `Secure` and `__Host-` prefixed when
    /// the desk is served over TLS (`secure_cookies`).
    pub fn single_sign_on(
        service: &str,
        client: oidc::OidcClient,
        secure_cookies: bool,
    ) -> Option<ConsoleSettings> {
        Some(ConsoleSettings {
            dev_login: false,
            secure_cookies,
            oidc: Some(Arc::new(client)),
            ..ConsoleSettings::dev(service)?
        })
    }

    /// These settings with the audit log's origin and checkpoint keys.
    pub fn with_audit_keys(self, audit_keys: AuditKeys) -> ConsoleSettings {
        ConsoleSettings {
            audit_keys: Some(audit_keys),
            ..self
        }
    }
}

/// The state of every console handler.
#[derive(Clone)]
pub(crate) struct Console {
    pub ctx: Arc<ServiceContext>,
    pub settings: Arc<ConsoleSettings>,
}

/// The path of a desk's login page (what `serve --dev` prints).
pub const LOGIN_PATH: &str = "/login";

/// The console routes of `ctx.service`'s desk, to merge into the service's
/// router (they carry their own security headers and need no token).
pub fn router(ctx: Arc<ServiceContext>, settings: ConsoleSettings) -> Router {
    // The same bound on a posted form as on an API body.
    let body_limit = axum::extract::DefaultBodyLimit::max(ctx.limits.body_bytes);
    let console = Console {
        ctx,
        settings: Arc::new(settings),
    };
    pages::routes(&console)
        .merge(sso::routes())
        .merge(market::routes(&console))
        .merge(backoffice::routes(&console))
        .merge(groups::routes(&console))
        .merge(riskdesk::routes(&console))
        .merge(monitoring::routes(&console))
        .merge(audit::routes(&console))
        .merge(admin::routes(&console))
        .with_state(console)
        .layer(body_limit)
        .layer(from_fn(security_headers))
}

/// The policy every console answer is served under: nothing but this
/// origin's own stylesheet, images and form targets; no script at all, no
/// inline style, never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
     style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
     object-src 'none'; frame-ancestors 'none'";

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: under it a browser posts forms with `Origin: null`,
    // and the Origin check would refuse the console's own forms.
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
