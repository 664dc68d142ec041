//! What every service handler needs: the store, the token verifier pinned to
//! this service's audience, and this service's casbin policy.

use crate::ApiError;
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_auth::Authorizer;
use creditops_commands::{Actor, Context};
use creditops_domain::{SodMatrix, Timestamp};
use creditops_store::{Store, Tx, append_record};
use std::sync::Arc;

pub struct ServiceContext {
    /// "market", "backoffice", "risk", "audit" or "admin".
    pub service: &'static str,
    pub store: Arc<dyn Store>,
    /// The keys bearer tokens are verified with (this service's audience).
    pub verifier: Arc<crate::keys::TokenKeys>,
    pub authorizer: Arc<Authorizer>,
    /// Hash over every service policy and the SoD matrix in force, recorded
    /// in each decision (V9).
    pub policy_hash: String,
    /// The SoD matrix, checked at every role assignment (S3).
    pub sod: Arc<SodMatrix>,
    /// Request, refusal and health metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Bounds on every request.
    pub limits: RequestLimits,
    /// Failed logins per client address and the tally of unauthenticated
    /// refusals (hardening finding 6).
    pub unauthenticated: Arc<crate::abuse::Unauthenticated>,
    /// The event streams open now, bounded per person and in total.
    pub streams: Arc<crate::streams::StreamSlots>,
    /// Turns true when the process begins to shut down: long-lived
    /// responses (event streams) end, so in-flight work can drain.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// Bounds on every request of a service.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Bodies above this many bytes are refused with 413.
    pub body_bytes: usize,
    /// Documents of the credit file (L2) above this many bytes are refused
    /// with 413; their routes read the body themselves, up to this bound.
    pub document_bytes: usize,
    /// A request not answered within this is abandoned (its transaction
    /// rolls back) and answered 503 problem+json.
    pub timeout: std::time::Duration,
    /// Failed authentications one client address may have per minute
    /// before it is answered 429 until the minute is over.
    pub auth_failures_per_minute: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            body_bytes: crate::middleware::DEFAULT_BODY_LIMIT,
            document_bytes: crate::documents::DEFAULT_DOCUMENT_LIMIT,
            timeout: std::time::Duration::from_secs(30),
            auth_failures_per_minute: crate::abuse::DEFAULT_AUTH_FAILURES_PER_MINUTE,
        }
    }
}

impl ServiceContext {
    /// A new audit record for this service, stamped now.
    pub fn record(&self, action: AuditAction, outcome: Outcome, at: Timestamp) -> AuditRecord {
        AuditRecord::new(self.service, action, outcome, at)
    }

    /// Appends `record` in `tx` (the audit of refused requests, S8).
    pub async fn audit(&self, tx: &mut dyn Tx, record: &AuditRecord) -> Result<(), ApiError> {
        Ok(append_record(tx, record).await?)
    }

    /// The environment this service's commands run in.
    pub fn commands(&self) -> Context {
        Context {
            service: self.service,
            store: self.store.clone(),
            policy_hash: self.policy_hash.clone(),
            sod: self.sod.clone(),
            claim_timeout: self.limits.timeout,
            operator: None,
        }
    }

    /// Records a refused request in its own transaction.
    pub async fn audit_refusal(&self, record: AuditRecord) -> Result<(), ApiError> {
        let mut tx = self.store.begin().await?;
        append_record(tx.as_mut(), &record).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The authenticated person behind a request, as the staff directory knows
/// them at the time of the request (S2, S4): the actor of the commands the
/// request runs.
#[derive(Debug, Clone)]
pub struct Principal(pub Actor);

impl std::ops::Deref for Principal {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.0
    }
}
