//! The storage boundary: the transactional repository traits (one per area
//! of the data, see [`Tx`]) that the SQLite and PostgreSQL crates
//! implement, the one error type of that boundary and, with the `testing`
//! feature, the contract test suite both implementations must pass.
//!
//! Services work in units of work: `begin()` a transaction, load, call the pure
//! domain rules, persist the result and append the audit event, `commit()`.
//! A dropped, uncommitted transaction rolls back, so a failed audit write
//! takes the business change with it (A1, fail-closed).

mod audit_append;
mod authority_cache;
mod capabilities;
#[cfg(feature = "testing")]
pub mod contract;
mod model;
mod rule_set_cache;
mod tx;

pub use audit_append::append_record;
pub use authority_cache::AuthorityCache;
pub use capabilities::{AuditSequencer, LiquidityClaims, SequencerLease, StoreExt};
pub use model::*;
pub use rule_set_cache::{RuleSetCache, StaffLookup};
pub use tx::*;

/// Everything a caller of the store needs in scope: the traits whose
/// methods it calls on a `Box<dyn Tx>` or a store.
pub mod prelude {
    pub use crate::{
        AdminTx, AuditTx, BorrowerTx, BreachTx, CaseTx, CollateralTx, CreditFileTx, ExposureTx,
        GrantingTx, IdempotencyTx, LimitTx, MonitoringTx, RiskTx, SessionTx, StaffTx, Store, Tx,
        VoteTx,
    };
}

use async_trait::async_trait;
use creditops_domain::{RuleSet, StaffId, StaffMember};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row the command needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness or optimistic-concurrency conflict: somebody else won.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached right now; the caller may retry later.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// The database refused the statement for lack of privilege: the process
    /// is connected as a role that may not do this (a misconfiguration, or a
    /// service trying what its side must not).
    #[error(
        "the database role may not do this ({0}); is the process connected as the right service role?"
    )]
    Denied(String),
    /// Any other database failure. The text is for logs, never for clients.
    #[error("database error")]
    Database(#[source] BoxError),
    /// A stored row could not be turned back into a domain value.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// Connections of a store's pool(s): open ones, idle ones, the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// A database backend. Cheap to clone behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// A read-write unit of work.
    async fn begin(&self) -> StoreResult<Box<dyn Tx>>;
    /// A read-write unit of work that holds the shared risk lock
    /// ([`RiskTx::lock_risk_shared`]) from its start: for a command that
    /// takes it before anything else it locks (an approving vote), so that
    /// the lock comes with the begin instead of a statement of its own.
    async fn begin_sharing_risk(&self) -> StoreResult<Box<dyn Tx>> {
        let mut tx = self.begin().await?;
        tx.lock_risk_shared().await?;
        Ok(tx)
    }
    /// A read-only unit of work (may run concurrently with writers).
    async fn begin_read(&self) -> StoreResult<Box<dyn Tx>>;
    /// The staff member `id` as the directory holds it now, in one
    /// consistent read: what every request authenticates against, so a
    /// suspension counts from the next request on.
    async fn staff_member(&self, id: &StaffId) -> StoreResult<Option<StaffMember>> {
        let mut tx = self.begin_read().await?;
        tx.staff_member(id).await
    }
    /// The staff member `id` as [`Store::staff_member`] reads it and, where
    /// this process holds them, the rule sets committed at the moment of the
    /// same read (see [`RuleSetCache`]): a request's command then runs
    /// under them without reading them again.
    async fn staff_member_with_rule_sets(&self, id: &StaffId) -> StoreResult<Option<StaffLookup>> {
        Ok(self.staff_member(id).await?.map(|member| StaffLookup {
            member,
            rule_sets: None,
            authority: None,
        }))
    }
    /// Every rule-set version, ascending, in one consistent read: for a
    /// check before a command's transaction begins.
    async fn rule_sets(&self) -> StoreResult<Vec<RuleSet>> {
        let mut tx = self.begin_read().await?;
        tx.rule_sets().await
    }
    /// The lookup of `id` this process kept for commands, on a backend that
    /// versions the authority it read (see [`AuthorityCache`]); `None` where
    /// none is kept, and where every request reads its actor.
    fn kept_lookup(&self, id: &StaffId) -> Option<StaffLookup> {
        let _ = id;
        None
    }
    /// The authority version now, where the backend keeps one: whether an
    /// answer given under a kept lookup was given under the current
    /// authority. Kept lookups read before it are dropped.
    async fn authority_version(&self) -> StoreResult<Option<u64>> {
        Ok(None)
    }
    /// Cheap liveness check of the database connection.
    async fn ping(&self) -> StoreResult<()>;
    /// Connections of the pool(s) right now, for the metrics.
    fn pool_usage(&self) -> Option<PoolUsage>;
    /// Liquidity claims, on backends whose writers run concurrently; `None`
    /// where writers are serial (there the approval's own check is exact).
    fn liquidity_claims(&self) -> Option<&dyn LiquidityClaims> {
        None
    }
    /// The audit sequencer, on backends where committed events wait for one
    /// to link them into the chain; `None` where an event is linked inside
    /// its own transaction (a single writer).
    fn audit_sequencer(&self) -> Option<&dyn AuditSequencer> {
        None
    }
}
