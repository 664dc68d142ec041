//! Idempotent command execution (V10): the same `Idempotency-Key` from the
//! same person on the same operation returns the first answer, stored in the
//! same transaction as the change it answers for.

use crate::problem::ProblemKind;
use crate::{ApiError, Principal, ServiceContext};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use creditops_store::{IdempotencyScope, StoreError, StoredResponse, Tx};
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

const HEADER: &str = "idempotency-key";
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The optional `Idempotency-Key` header: 1-255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::validation("Idempotency-Key must be 1-255 visible ASCII characters")
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// What a command answers: status and JSON body.
pub struct CommandOutcome {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl CommandOutcome {
    pub fn new(status: StatusCode, body: serde_json::Value) -> Self {
        Self { status, body }
    }

    /// An answer whose body is `view` (a type whose schema documents it).
    pub fn view(status: StatusCode, view: &impl serde::Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_value(view)
            .map_err(|_| ApiError::new(ProblemKind::Internal, "could not encode the response"))?;
        Ok(Self { status, body })
    }
}

/// Runs `command` in one transaction and commits it together with the stored
/// answer for `key`. A replay with the same key and the same request gets the
/// stored answer; the same key with another request is refused (422).
/// `fingerprint` identifies the request (path ids and the parsed body).
pub async fn run_command<F>(
    ctx: &ServiceContext,
    principal: &Principal,
    key: IdempotencyKey,
    operation: &str,
    fingerprint: &[u8],
    command: F,
) -> Result<Response, ApiError>
where
    F: for<'a> FnOnce(&'a mut dyn Tx) -> BoxFuture<'a, Result<CommandOutcome, ApiError>> + Send,
{
    let request = CommandRequest {
        principal,
        key,
        operation,
        fingerprint,
    };
    run_command_begun(ctx, request, Begin::Plain, command).await
}

/// How a command's transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Plain,
    /// Holding the shared risk lock (see
    /// [`creditops_store::Store::begin_sharing_risk`]): for a command whose
    /// first lock is that one.
    SharingRisk,
}

/// Who asks for which idempotent operation, as [`run_command`] takes it.
pub struct CommandRequest<'r> {
    pub principal: &'r Principal,
    pub key: IdempotencyKey,
    pub operation: &'r str,
    pub fingerprint: &'r [u8],
}

/// [`run_command`] with its transaction begun as `begin` says.
pub async fn run_command_begun<F>(
    ctx: &ServiceContext,
    request: CommandRequest<'_>,
    begin: Begin,
    command: F,
) -> Result<Response, ApiError>
where
    F: for<'a> FnOnce(&'a mut dyn Tx) -> BoxFuture<'a, Result<CommandOutcome, ApiError>> + Send,
{
    let CommandRequest {
        principal,
        key,
        operation,
        fingerprint,
    } = request;
    let scope = key.0.map(|key| IdempotencyScope {
        actor: principal.id().clone(),
        operation: operation.to_owned(),
        key,
    });
    let request_hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, fingerprint));
    let mut tx = match begin {
        Begin::Plain => ctx.store.begin().await?,
        Begin::SharingRisk => ctx.store.begin_sharing_risk().await?,
    };
    // The rule sets committed when the actor was looked up, if this process
    // held them: the command does not read them again.
    if let Some(sets) = &principal.rule_sets {
        tx.use_rule_sets(sets.to_vec());
    }
    // A kept actor lookup: the commit checks it still holds.
    if let Some(version) = principal.authority {
        tx.expect_authority(version)?;
    }
    if let Some(scope) = &scope
        && let Some(stored) = tx.idempotent_response(scope).await?
    {
        return replay(stored, &request_hash);
    }
    let result = execute(tx, scope.as_ref(), &request_hash, command)
        .await
        .map(|mut response| {
            if principal.authority.is_some() {
                response
                    .extensions_mut()
                    .insert(crate::middleware::AuthorityChecked);
            }
            response
        });
    match (result, &scope) {
        // A concurrent delivery of the same request (same key) may have won
        // the race. Whatever this copy then ran into (a write conflict, but
        // also a stale file version or a state the winner's change made
        // invalid), if the winner's answer is stored now, this copy is its
        // replay: one effect, and the same answer to both.
        (Err(e), Some(scope)) if e.status().is_client_error() => {
            match stored_answer(ctx, scope).await {
                Some(stored) => replay(stored, &request_hash),
                None => Err(e),
            }
        }
        (result, _) => result,
    }
}

/// The answer stored for `scope`, if any (a failed lookup counts as none:
/// the caller then reports its own error).
async fn stored_answer(ctx: &ServiceContext, scope: &IdempotencyScope) -> Option<StoredResponse> {
    let mut tx = ctx.store.begin_read().await.ok()?;
    tx.idempotent_response(scope).await.ok().flatten()
}

async fn execute<F>(
    mut tx: Box<dyn Tx>,
    scope: Option<&IdempotencyScope>,
    request_hash: &str,
    command: F,
) -> Result<Response, ApiError>
where
    F: for<'a> FnOnce(&'a mut dyn Tx) -> BoxFuture<'a, Result<CommandOutcome, ApiError>> + Send,
{
    let outcome = command(tx.as_mut()).await?;
    let body = serde_json::to_vec(&outcome.body)
        .map_err(|_| ApiError::new(ProblemKind::Internal, "could not encode the response"))?;
    if let Some(scope) = scope {
        let stored = StoredResponse {
            request_hash: request_hash.to_owned(),
            status: outcome.status.as_u16(),
            body: body.clone(),
            created_at: Utc::now(),
        };
        tx.save_idempotent_response(scope, &stored).await?;
    }
    tx.commit().await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::new(ProblemKind::Conflict, "a concurrent request won"),
        other => ApiError::from(other),
    })?;
    Ok(json_response(outcome.status, body, false))
}

fn replay(stored: StoredResponse, request_hash: &str) -> Result<Response, ApiError> {
    if stored.request_hash != request_hash {
        return Err(ApiError::new(
            ProblemKind::IdempotencyMismatch,
            "this Idempotency-Key was already used for a different request",
        ));
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    Ok(json_response(status, stored.body, true))
}

/// A JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}
