//! Request ids, authentication + authorization, and the audit of every
//! refused request (S8).

use crate::problem::{ProblemKind, RefusalInfo};
use crate::{ApiError, Principal, ServiceContext};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use creditops_audit::{AuditAction, Outcome};
use creditops_domain::{CaseId, RuleId, StaffId, StaffStatus};
use creditops_store::StaffLookup;
use std::sync::Arc;

const REQUEST_ID_HEADER: &str = "x-request-id";
/// Request bodies above this size are refused with 413.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The request id the server gave the request (a UUIDv7). A client's own
/// `x-request-id` is logged beside it but never used in its place: the id
/// goes into hashed audit bodies, where client text must not (A6).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who made a request, once authentication established it; copied into the
/// response so the refusal audit can name the actor.
#[derive(Debug, Clone)]
struct Actor(StaffId);

/// Wraps a service's business routes: every route requires a valid token for
/// this service's audience and a role the service's policy allows; every 4xx
/// answer is audited; unknown routes and methods answer problem+json.
pub fn secure(routes: Router, ctx: Arc<ServiceContext>) -> Router {
    // A service whose business routes have not landed yet has nothing to guard.
    let routes = if routes.has_routes() {
        routes
            .route_layer(from_fn_with_state(ctx.clone(), authenticate))
            .route_layer(from_fn_with_state(ctx.clone(), audit_refusals))
            // Inside `note_route`, so a timed-out request keeps its route label.
            .route_layer(from_fn_with_state(ctx.clone(), time_limit))
            .route_layer(from_fn(note_route))
    } else {
        routes
    };
    routes
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ProblemKind::MethodNotAllowed,
                "this route does not allow that method",
            )
        })
        .layer(DefaultBodyLimit::max(ctx.limits.body_bytes))
        .layer(from_fn_with_state(ctx, track))
        .layer(from_fn(request_id))
}

/// Answers 503 problem+json when the handler does not finish in time. The
/// handler's future is dropped, which rolls its open transaction back: a
/// timed-out command leaves nothing behind.
async fn time_limit(
    State(ctx): State<Arc<ServiceContext>>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(ctx.limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_ms = %ctx.limits.timeout.as_millis(), "request timed out");
            ApiError::new(
                ProblemKind::Unavailable,
                format!(
                    "the request was not answered within {} ms and was abandoned; nothing of it was applied",
                    ctx.limits.timeout.as_millis()
                ),
            )
            .into_response()
        }
    }
}

/// The route template a request matched, handed from inside the router to
/// the outer [`track`] layer (which runs before routing).
#[derive(Debug, Clone)]
struct MatchedRoute(String);

async fn note_route(request: Request, next: Next) -> Response {
    let route = route_of(&request);
    tracing::Span::current().record("route", route.as_str());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(MatchedRoute(route));
    response
}

/// Counts and times every answered request by route template and status,
/// and each refusal by the rule that refused it; logs one line per request.
async fn track(State(ctx): State<Arc<ServiceContext>>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = response
        .extensions()
        .get::<MatchedRoute>()
        .map_or(crate::metrics::UNMATCHED_ROUTE, |r| r.0.as_str());
    let status = response.status().as_u16();
    ctx.metrics
        .record_request(method.as_str(), route, status, elapsed);
    if response.status().is_client_error() {
        let refusal = response.extensions().get::<RefusalInfo>();
        ctx.metrics.record_denial(
            refusal.and_then(|r| r.rule),
            refusal.map_or("unknown", |r| r.kind.slug()),
        );
    }
    tracing::info!(
        status,
        latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request answered"
    );
    response
}

fn valid_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7().to_string();
    let client_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    // Every log line of the request carries these; route and actor are
    // filled in once routing and authentication know them. The client's id
    // (well-formed ones only: no log injection) lets a caller's trace be
    // found in the log.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client_request_id = client_id.as_deref().unwrap_or(""),
        method = %request.method(),
        path = %request.uri().path(),
        route = tracing::field::Empty,
        actor = tracing::field::Empty,
    );
    let mut response = tracing::Instrument::instrument(next.run(request), span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("a bearer token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the authorization header is malformed"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthenticated(
            "the authorization header must be 'Bearer <token>'",
        )),
    }
}

fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

async fn authenticate(
    State(ctx): State<Arc<ServiceContext>>,
    mut request: Request,
    next: Next,
) -> Response {
    let at = Utc::now();
    let address = crate::abuse::client_address(&request);
    if let Some(seconds) = ctx.unauthenticated.retry_after(address, at) {
        return ApiError::too_many_requests(
            format!("too many failed logins from this address; try again in {seconds} s"),
            seconds,
        )
        .into_response();
    }
    let (subject, expires_at) = match verified_subject(&ctx, request.headers()).await {
        Ok(found) => found,
        Err(failure) => return refuse_login(&ctx, failure, address, at),
    };
    // A command may run under the lookup of its caller this process kept:
    // its commit checks that the authority has not moved since, and any
    // other answer is checked here. If it moved, the answer may rest on
    // roles that no longer hold, and nothing was written (a command under
    // a moved authority does not commit): the request runs again under a
    // fresh lookup.
    if let Some((kept, version)) = kept_lookup(&ctx, &request, &subject, at) {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, ctx.limits.body_bytes).await else {
            return ApiError::new(
                ProblemKind::PayloadTooLarge,
                "the request body is larger than it announced or could not be read",
            )
            .into_response();
        };
        let first = Request::from_parts(parts.clone(), axum::body::Body::from(bytes.clone()));
        let response = admit(&ctx, first, next.clone(), kept, expires_at, at).await;
        if response.extensions().get::<AuthorityChecked>().is_some() {
            return response;
        }
        match ctx.store.authority_version().await {
            Ok(Some(now)) if now == version => return response,
            Ok(_) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
        request = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    let lookup = match load_member(&ctx, &subject).await {
        Ok(found) => StaffLookup {
            // Read for this request: nothing to check at its commit.
            authority: None,
            ..found
        },
        Err(error) => return refuse_login(&ctx, error.into(), address, at),
    };
    admit(&ctx, request, next, lookup, expires_at, at).await
}

/// Set on a response whose command committed under the authority version
/// its kept actor lookup was read at (see [`authenticate`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthorityChecked;

/// The kept lookup of `subject` and the authority version it was read at,
/// for a request that may use it: one that can change something (reads
/// commit nothing to check a lookup against, so they read their caller),
/// whose body is small enough to hold for a second run, and whose caller
/// may act as kept.
fn kept_lookup(
    ctx: &ServiceContext,
    request: &Request,
    subject: &StaffId,
    at: creditops_domain::Timestamp,
) -> Option<(StaffLookup, u64)> {
    use axum::body::HttpBody;
    use axum::http::Method;
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return None;
    }
    let size = request.body().size_hint().exact()?;
    if usize::try_from(size).map_or(true, |size| size > ctx.limits.body_bytes) {
        return None;
    }
    let kept = ctx.store.kept_lookup(subject)?;
    let version = kept.authority?;
    refusal_of(&kept.member, at)
        .is_none()
        .then_some((kept, version))
}

/// Counts a failed login against the client address where it should, and
/// answers it.
fn refuse_login(
    ctx: &ServiceContext,
    LoginFailure { error, counts }: LoginFailure,
    address: std::net::IpAddr,
    at: chrono::DateTime<Utc>,
) -> Response {
    if counts {
        ctx.unauthenticated.note_failure(address, at);
    }
    error.into_response()
}

/// Runs `request` as the staff member `lookup` found, if the service's
/// policy allows one of their roles the route (S8); under the authority
/// version `lookup` names, if any (a kept lookup).
async fn admit(
    ctx: &ServiceContext,
    mut request: Request,
    next: Next,
    lookup: StaffLookup,
    expires_at: chrono::DateTime<Utc>,
    at: chrono::DateTime<Utc>,
) -> Response {
    let StaffLookup {
        member,
        rule_sets,
        authority,
    } = lookup;
    tracing::Span::current().record("actor", member.id.as_str());
    let actor = Actor(member.id.clone());
    let route = route_of(&request);
    let method = request.method().as_str().to_owned();
    let roles = member.roles_at(at);
    let allowed = roles
        .iter()
        .any(|role| ctx.authorizer.allows(role.as_str(), &route, &method));
    let mut response = if allowed {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        request
            .extensions_mut()
            .insert(crate::streams::TokenExpiry(expires_at));
        request
            .extensions_mut()
            .insert(Principal(creditops_commands::Actor {
                member,
                roles,
                at,
                request_id,
                rule_sets,
                authority,
            }));
        next.run(request).await
    } else {
        let held: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        ApiError::new(
            ProblemKind::Forbidden,
            format!(
                "the {} service does not allow {method} {route} for the roles held ({})",
                ctx.service,
                if held.is_empty() {
                    "none".to_owned()
                } else {
                    held.join(", ")
                }
            ),
        )
        .with_rule(RuleId::S8)
        .into_response()
    };
    response.extensions_mut().insert(actor);
    response
}

/// A refused login, and whether it counts against the client address's
/// budget: a correctly signed token that merely expired is a client that
/// has to refresh it, not somebody guessing.
struct LoginFailure {
    error: ApiError,
    counts: bool,
}

impl From<ApiError> for LoginFailure {
    fn from(error: ApiError) -> Self {
        let counts = error.kind == ProblemKind::Unauthenticated;
        Self { error, counts }
    }
}

/// The staff member a request's bearer token names, and when the token
/// expires.
async fn verified_subject(
    ctx: &ServiceContext,
    headers: &HeaderMap,
) -> Result<(StaffId, chrono::DateTime<Utc>), LoginFailure> {
    let token = bearer_token(headers)?;
    let verified = ctx.verifier.verify(token).await.map_err(|e| LoginFailure {
        counts: !matches!(e, creditops_auth::AuthError::Expired),
        error: ApiError::from(e),
    })?;
    let expires_at = chrono::DateTime::from_timestamp(verified.expires_at, 0)
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    Ok((verified.subject, expires_at))
}

async fn load_member(ctx: &ServiceContext, id: &StaffId) -> Result<StaffLookup, ApiError> {
    // Read for every request not run under a kept lookup (see
    // `authenticate`), so a suspension or a leaver approved a moment ago
    // refuses tokens minted before it (S4).
    match ctx.store.staff_member_with_rule_sets(id).await? {
        Some(found) => match refusal_of(&found.member, Utc::now()) {
            Some(refusal) => Err(ApiError::unauthenticated(refusal)),
            None => Ok(found),
        },
        None => Err(ApiError::unauthenticated(
            "the person behind the token is not in the staff directory",
        )),
    }
}

/// Why `member` may not act at `at` whatever their token says: suspended,
/// or left (no unit now or later, S4); `None` if they may.
pub fn refusal_of(
    member: &creditops_domain::StaffMember,
    at: creditops_domain::Timestamp,
) -> Option<&'static str> {
    if member.status != StaffStatus::Active {
        Some("the person behind the token is suspended")
    } else if !member.has_unit_from(at) {
        Some("the person behind the token has left: they belong to no unit any more")
    } else {
        None
    }
}

/// Whether the person `id` may still act now, as authentication would
/// decide for a new request: for responses that outlive their request (a
/// stream ends when its person is suspended, leaves or holds no role).
pub async fn still_admitted(ctx: &ServiceContext, id: &StaffId) -> bool {
    let now = Utc::now();
    matches!(
        ctx.store.staff_member(id).await,
        Ok(Some(member)) if refusal_of(&member, now).is_none() && !member.roles_at(now).is_empty()
    )
}

/// The case id of a `/v1/cases/{id}...` request, for the audit index.
fn case_id_of(route: &str, path: &str) -> Option<CaseId> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(template, _)| *template == "{id}")
        .filter(|_| route.starts_with("/v1/cases/"))
        .and_then(|(_, value)| value.parse().ok())
}

async fn audit_refusals(
    State(ctx): State<Arc<ServiceContext>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_of(&request);
    let method = request.method().as_str().to_owned();
    let case_id = case_id_of(&route, request.uri().path());
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let address = crate::abuse::client_address(&request);
    let response = next.run(request).await;
    if !response.status().is_client_error() {
        return response;
    }
    let Some(actor) = response.extensions().get::<Actor>() else {
        // Nobody logged in: tallied per minute, not one event each.
        ctx.unauthenticated.note_refusal(address, Utc::now());
        return response;
    };
    let refusal = response.extensions().get::<RefusalInfo>();
    let mut record = ctx.record(AuditAction::RequestRefused, Outcome::Denied, Utc::now());
    record.actor = Some(actor.0.to_string());
    record.request_id = request_id;
    record.case_id = case_id;
    record.rule = refusal.and_then(|r| r.rule);
    // No free text from the request goes into the hashed body (A6).
    record.data = serde_json::json!({
        "method": method,
        "route": route,
        "status": response.status().as_u16(),
        "problem": refusal.map(|r| r.kind.slug()),
    });
    match ctx.audit_refusal(record).await {
        Ok(()) => response,
        Err(e) => {
            // Fail closed: a refusal we cannot record is still a refusal, but
            // the client learns the platform is not able to serve right now.
            tracing::error!(error = %e, "could not audit a refused request");
            ApiError::new(
                ProblemKind::Unavailable,
                "the audit trail is unavailable; retry later",
            )
            .into_response()
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("no authenticated principal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_taken_from_case_routes_only() {
        let id = CaseId::generate();
        let path = format!("/v1/cases/{id}/second-vote");
        assert_eq!(case_id_of("/v1/cases/{id}/second-vote", &path), Some(id));
        assert_eq!(
            case_id_of("/v1/borrowers/{id}", &format!("/v1/borrowers/{id}")),
            None
        );
        assert_eq!(case_id_of("/v1/cases/{id}", "/v1/cases/not-a-uuid"), None);
    }

    #[test]
    fn request_ids_are_bounded_and_plain() {
        assert!(valid_request_id("abc-123_x.y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\nb"));
    }
}
