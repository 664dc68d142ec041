//! Console sessions: a random token in an `HttpOnly`, `SameSite=Strict`
//! cookie named after the service, its SHA-256 in a server-side row bound
//! to that service, idle and absolute timeouts, and the CSRF token every
//! form of the session carries.

use crate::ConsoleSettings;
use axum::http::{HeaderMap, header};
use base64::Engine;
use chrono::Utc;
use creditops_audit::{AuditAction, Outcome};
use creditops_commands::Actor;
use creditops_domain::{StaffId, StaffStatus, Timestamp};
use creditops_http::{ApiError, ServiceContext};
use creditops_store::{ConsoleSession, StoreError};
use ring::rand::{SecureRandom, SystemRandom};

/// 32 random bytes, URL-safe base64 without padding.
pub fn random_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| {
        StoreError::Database(Box::new(std::io::Error::other(
            "the system random source failed",
        )))
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session cookie's name at `service`: one per service, because a
/// browser sends a host's cookies to every port of it; `__Host-` when the
/// cookie is `Secure` (the browser then refuses it from plain HTTP and
/// pins it to this host and path `/`).
pub fn cookie_name(service: &str, secure: bool) -> String {
    if secure {
        format!("__Host-creditops-{service}-session")
    } else {
        format!("creditops-{service}-session")
    }
}

/// The cookie that carries the login form's CSRF token before a session
/// exists (double submit: the form field must equal it).
pub fn login_cookie_name(service: &str, secure: bool) -> String {
    if secure {
        format!("__Host-creditops-{service}-login")
    } else {
        format!("creditops-{service}-login")
    }
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: i64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The value of cookie `name` in the request, if sent once.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Why a request has no valid session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, an unknown token, or a session of another service.
    Missing,
    /// Logged out, idle too long or past its absolute lifetime.
    Ended,
    /// The person is no longer active or holds no role of this desk today.
    NotAllowed,
}

/// A live session and the person behind it, as the directory knows them now.
pub struct LiveSession {
    pub session: ConsoleSession,
    pub actor: Actor,
}

/// Whether `session` is still within its timeouts at `at`.
pub fn within_timeouts(
    session: &ConsoleSession,
    settings: &ConsoleSettings,
    at: Timestamp,
) -> bool {
    session.ended_at.is_none()
        && at - session.last_seen_at < settings.idle_timeout
        && at - session.created_at < settings.absolute_timeout
}

/// The session the request's cookie names, checked against this service,
/// its timeouts and the staff directory; its last use is moved to now.
pub async fn current(
    ctx: &ServiceContext,
    settings: &ConsoleSettings,
    headers: &HeaderMap,
) -> Result<Result<LiveSession, NoSession>, StoreError> {
    let Some(token) = cookie(headers, &cookie_name(ctx.service, settings.secure_cookies)) else {
        return Ok(Err(NoSession::Missing));
    };
    let hash = token_hash(token);
    let at = Utc::now();
    // Read without the write lock: most pages only look the session up.
    let session = {
        let mut read = ctx.store.begin_read().await?;
        read.console_session(&hash).await?
    };
    let Some(session) = session else {
        return Ok(Err(NoSession::Missing));
    };
    // A session of another service is as good as none here.
    if session.service != ctx.service {
        return Ok(Err(NoSession::Missing));
    }
    if !within_timeouts(&session, settings, at) {
        return Ok(Err(NoSession::Ended));
    }
    let Some(actor) = desk_actor(ctx, settings, &session.staff_id).await? else {
        let mut tx = ctx.store.begin().await?;
        tx.end_console_session(&hash, at).await?;
        tx.commit().await?;
        return Ok(Err(NoSession::NotAllowed));
    };
    // One write a minute at most per session, not one per page.
    if at - session.last_seen_at > chrono::Duration::seconds(60) {
        let mut tx = ctx.store.begin().await?;
        tx.touch_console_session(&hash, at).await?;
        tx.commit().await?;
    }
    Ok(Ok(LiveSession { session, actor }))
}

/// The person `id` as an actor of this desk now: active in the directory
/// and holding a role the service's policy allows the desk's entry route
/// for (the lookup and the casbin check the API's authentication does).
pub async fn desk_actor(
    ctx: &ServiceContext,
    settings: &ConsoleSettings,
    id: &StaffId,
) -> Result<Option<Actor>, StoreError> {
    let Some(member) = ctx.store.staff_member(id).await? else {
        return Ok(None);
    };
    if member.status != StaffStatus::Active {
        return Ok(None);
    }
    let at = Utc::now();
    let roles = member.roles_at(at);
    let (route, method) = settings.desk.entry;
    if !roles
        .iter()
        .any(|role| ctx.authorizer.allows(role.as_str(), route, method))
    {
        return Ok(None);
    }
    Ok(Some(Actor {
        member,
        roles,
        at,
        request_id: uuid::Uuid::now_v7().to_string(),
        rule_sets: None,
        authority: None,
    }))
}

/// Starts a session for `staff_id` at this service; the cookie's token.
pub async fn start(
    ctx: &ServiceContext,
    staff_id: &StaffId,
    method: &str,
) -> Result<String, ApiError> {
    let token = random_token()?;
    let at = Utc::now();
    let session = ConsoleSession {
        token_hash: token_hash(&token),
        service: ctx.service.to_owned(),
        staff_id: staff_id.clone(),
        csrf_token: random_token()?,
        created_at: at,
        last_seen_at: at,
        ended_at: None,
    };
    // The sign-in and its audit event commit together, or neither does.
    let mut record = ctx.record(AuditAction::ConsoleSignedIn, Outcome::Ok, at);
    record.actor = Some(staff_id.to_string());
    record.data = serde_json::json!({ "method": method });
    let mut tx = ctx.store.begin().await?;
    tx.insert_console_session(&session).await?;
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(token)
}

/// Ends the session `token` names (logout) of `staff_id`, audited.
pub async fn end(ctx: &ServiceContext, token: &str, staff_id: &StaffId) -> Result<(), ApiError> {
    let at = Utc::now();
    let mut record = ctx.record(AuditAction::ConsoleSignedOut, Outcome::Ok, at);
    record.actor = Some(staff_id.to_string());
    let mut tx = ctx.store.begin().await?;
    tx.end_console_session(&token_hash(token), at).await?;
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "creditops-backoffice-session=b; creditops-market-session=m"
                .parse()
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("")),
        );
        assert_eq!(cookie(&headers, "creditops-market-session"), Some("m"));
        assert_eq!(cookie(&headers, "market-session"), None);
    }

    #[test]
    fn secure_cookies_are_host_prefixed() {
        assert_eq!(
            cookie_name("market", true),
            "__Host-creditops-market-session"
        );
        let set = set_cookie("__Host-creditops-market-session", "t", true, 60);
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.ends_with("; Secure")
        );
        assert!(!set_cookie("creditops-market-session", "t", false, 60).contains("Secure"));
    }

    #[test]
    fn sessions_end_after_their_idle_and_absolute_timeouts() {
        let settings = ConsoleSettings::dev("market").unwrap_or_else(|| unreachable!());
        let start = Utc::now();
        let session = ConsoleSession {
            token_hash: token_hash("t"),
            service: "market".to_owned(),
            staff_id: StaffId::parse("lo-2").unwrap_or_else(|_| unreachable!()),
            csrf_token: "c".to_owned(),
            created_at: start,
            last_seen_at: start,
            ended_at: None,
        };
        let minutes = chrono::Duration::minutes;
        assert!(within_timeouts(&session, &settings, start + minutes(29)));
        assert!(
            !within_timeouts(&session, &settings, start + minutes(31)),
            "idle"
        );
        let busy = ConsoleSession {
            last_seen_at: start + chrono::Duration::hours(10),
            ..session.clone()
        };
        assert!(
            !within_timeouts(
                &busy,
                &settings,
                start + chrono::Duration::hours(10) + minutes(1)
            ),
            "absolute"
        );
        let ended = ConsoleSession {
            ended_at: Some(start),
            ..session
        };
        assert!(
            !within_timeouts(&ended, &settings, start + minutes(1)),
            "logged out"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
