//! The PostgreSQL backend of the `creditops-store` traits (production).
//!
//! Read-write units of work are ordinary `READ COMMITTED` transactions;
//! read-only ones are `READ ONLY` transactions. Appending an audit event is
//! a plain insert; the sequencer (module `sequencer`) links committed events
//! into the chain and the Merkle tree, so audited writers do not serialise.

mod error;
mod sequencer;
pub mod testing;
mod tx;

use async_trait::async_trait;
use creditops_audit::SigningKey;
use creditops_domain::Timestamp;
use creditops_store::{SequencerLease, SequencerRound, Store, StoreError, StoreResult, Tx};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;

pub use error::map_sqlx_error;
pub use sequencer::PgSequencerLease;

/// How long a task waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    origin: Arc<str>,
}

impl PgStore {
    /// Connects a pool of at most `max_connections` (at least 1) to `url`,
    /// applies the embedded migrations and returns the store. `audit_origin`
    /// names the audit log; its hash is the chain's genesis value.
    pub async fn connect(
        url: &str,
        audit_origin: &str,
        max_connections: u32,
    ) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(map_sqlx_error)?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        tracing::debug!("postgres store connected");
        Ok(PgStore {
            pool,
            origin: Arc::from(audit_origin),
        })
    }

    /// The audit log's origin this store links its chain from.
    pub fn audit_origin(&self) -> &str {
        &self.origin
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(map_sqlx_error)?;
        Ok(Box::new(tx::PgTx::new(tx)))
    }

    async fn begin_read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self
            .pool
            .begin_with("BEGIN READ ONLY")
            .await
            .map_err(map_sqlx_error)?;
        Ok(Box::new(tx::PgTx::new(tx)))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }

    fn audit_sequenced_separately(&self) -> bool {
        true
    }

    async fn sequence_audit(&self, key: Option<&SigningKey>) -> StoreResult<SequencerRound> {
        sequencer::sequence(&self.pool, &self.origin, key).await
    }

    async fn flush_audit(&self, deadline: Duration) -> StoreResult<()> {
        sequencer::flush(&self.pool, &self.origin, deadline).await
    }

    async fn oldest_unsequenced_audit(&self) -> StoreResult<Option<Timestamp>> {
        sequencer::oldest_unsequenced(&self.pool).await
    }

    async fn sequencer_lease(&self) -> StoreResult<Option<Box<dyn SequencerLease>>> {
        Ok(sequencer::try_lease(&self.pool)
            .await?
            .map(|lease| Box::new(lease) as Box<dyn SequencerLease>))
    }
}
