//! The PostgreSQL backend of the `creditops-store` traits (production).
//!
//! Read-write units of work are ordinary `READ COMMITTED` transactions;
//! read-only ones are `READ ONLY` transactions. Appending an audit event is
//! a plain insert; the sequencer (module `sequencer`) links committed events
//! into the chain and the Merkle tree, so audited writers do not serialise.

/// The stored hashes of the Merkle tree at the positions `$1` (levels) and
/// `$2` (indices), in order: level 0 is a leaf of the chain, higher levels
/// are nodes of the tree table. One index probe per position (scalar
/// subqueries): a join would be planned for UNNEST's default estimate of
/// 100 rows and could scan both tables, which grow with the log.
macro_rules! audit_nodes_sql {
    () => {
        concat!(
            "SELECT ",
            stored_node_sql!(),
            " FROM UNNEST($1::smallint[], $2::bigint[]) WITH ORDINALITY AS p(level, idx, ord) \
             ORDER BY p.ord"
        )
    };
}

/// The stored hash of the tree node at `p.level`, `p.idx` (`NULL` if it is
/// missing): a leaf of the chain at level 0, a node of the tree table above.
macro_rules! stored_node_sql {
    () => {
        "CASE WHEN p.level = 0 \
         THEN (SELECT c.leaf_hash FROM audit_chain c WHERE c.seq = p.idx + 1) \
         ELSE (SELECT t.hash FROM audit_tree t WHERE t.level = p.level AND t.idx = p.idx) \
         END"
    };
}

mod error;
pub mod roles;
mod sequencer;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;

use async_trait::async_trait;
use creditops_audit::SigningKey;
use creditops_domain::{CaseId, RuleSet, StaffId, StaffMember, Timestamp};
use creditops_store::{
    AuditSequencer, AuthorityCache, LiquidityClaim, LiquidityClaims, PoolUsage, RuleSetCache,
    SequencerLease, SequencerRound, StaffLookup, Store, StoreError, StoreResult, TreeHead, Tx,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
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
    rule_set_cache: Arc<RuleSetCache>,
    authority_cache: Arc<AuthorityCache>,
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
        let options = PgConnectOptions::from_str(url)
            .map_err(map_sqlx_error)?
            // Every statement here is a short index-driven OLTP statement
            // whose best plan does not depend on its parameter values, and
            // none compares a parameter with a partial index's predicate.
            // Planning each execution anew (the default for a prepared
            // statement's first executions on every connection, and for
            // good whenever the generic plan's estimate looks worse) cost
            // a fifth of the server's CPU under load; one generic plan per
            // statement and connection removes that.
            //
            // A generic plan does not know a bound LIMIT or a range bound,
            // so its cost estimates can be those of a scan of the whole
            // table: enough to start parallel workers (milliseconds to
            // launch, for a page of 100 audit events) or JIT compilation
            // (90 ms at 300,000 audit events, measured), both of which pay
            // off only for long analytical queries, which this platform does
            // not run.
            .options([
                ("plan_cache_mode", "force_generic_plan"),
                ("jit", "off"),
                ("max_parallel_workers_per_gather", "0"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_sqlx_error)?;
        let migrator = sqlx::migrate!("../../migrations/postgres");
        // A service's least-privilege role may not change the schema: when
        // every migration is applied already, do not even try.
        if pending_migrations(&pool, &migrator).await? {
            migrator.run(&pool).await.map_err(|e| {
                tracing::error!(error = %e, "migrations failed");
                StoreError::Database(Box::new(e))
            })?;
        }
        tracing::debug!("postgres store connected");
        Ok(PgStore {
            pool,
            origin: Arc::from(audit_origin),
            rule_set_cache: Arc::default(),
            authority_cache: Arc::default(),
        })
    }

    /// Creates or re-grants the per-service least-privilege roles (see
    /// [`roles`]); run as the schema's owner after the migrations.
    pub async fn provision_roles(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, roles::ProvisionError> {
        roles::provision(&self.pool, prefix).await
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

/// Whether the database lacks any of `migrator`'s migrations (or has never
/// been migrated).
async fn pending_migrations(
    pool: &PgPool,
    migrator: &sqlx::migrate::Migrator,
) -> Result<bool, StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(map_sqlx_error)?;
    if !exists {
        return Ok(true);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .map_err(map_sqlx_error)?;
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .any(|m| !applied.contains(&m.version)))
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn pool_usage(&self) -> Option<PoolUsage> {
        Some(PoolUsage {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        })
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(map_sqlx_error)?;
        Ok(Box::new(
            tx::PgTx::new(tx, Some(self.rule_set_cache.clone()))
                .keeping(self.authority_cache.clone()),
        ))
    }

    async fn begin_sharing_risk(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self
            .pool
            .begin_with(tx::BEGIN_SHARING_RISK)
            .await
            .map_err(map_sqlx_error)?;
        Ok(Box::new(
            tx::PgTx::new(tx, Some(self.rule_set_cache.clone()))
                .keeping(self.authority_cache.clone())
                .holding_risk_shared(),
        ))
    }

    async fn begin_read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self
            .pool
            .begin_with("BEGIN READ ONLY")
            .await
            .map_err(map_sqlx_error)?;
        Ok(Box::new(tx::PgTx::read_only(
            tx,
            self.rule_set_cache.clone(),
        )))
    }

    async fn staff_member(&self, id: &StaffId) -> StoreResult<Option<StaffMember>> {
        Ok(tx::fetch_staff_member(&self.pool, id)
            .await?
            .map(|fetched| fetched.member))
    }

    /// Also kept for commands (see [`AuthorityCache`]).
    async fn staff_member_with_rule_sets(&self, id: &StaffId) -> StoreResult<Option<StaffLookup>> {
        let Some(fetched) = tx::fetch_staff_member(&self.pool, id).await? else {
            return Ok(None);
        };
        let lookup = StaffLookup {
            member: fetched.member,
            rule_sets: self.rule_set_cache.matching(fetched.rule_set_count),
            authority: Some(fetched.authority),
        };
        self.authority_cache.keep(&lookup, fetched.rule_set_count);
        Ok(Some(lookup))
    }

    /// With the rule sets, where this process has read the ones the lookup
    /// counted since (they cannot have changed: the authority version
    /// covers them).
    fn kept_lookup(&self, id: &StaffId) -> Option<StaffLookup> {
        let (mut lookup, rule_set_count) = self.authority_cache.lookup(id)?;
        if lookup.rule_sets.is_none() {
            lookup.rule_sets = self.rule_set_cache.matching(rule_set_count);
        }
        Some(lookup)
    }

    async fn authority_version(&self) -> StoreResult<Option<u64>> {
        let version: i64 = sqlx::query_scalar("SELECT version FROM authority_version")
            .fetch_one(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        let version = u64::try_from(version)
            .map_err(|_| StoreError::Corrupt("a negative authority version".into()))?;
        self.authority_cache.moved_to(version);
        Ok(Some(version))
    }

    async fn rule_sets(&self) -> StoreResult<Vec<RuleSet>> {
        let sets = tx::fetch_rule_sets(&self.pool).await?;
        self.rule_set_cache.offer(&sets);
        Ok(sets)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }

    fn liquidity_claims(&self) -> Option<&dyn LiquidityClaims> {
        Some(self)
    }

    fn audit_sequencer(&self) -> Option<&dyn AuditSequencer> {
        Some(self)
    }
}

#[async_trait]
impl LiquidityClaims for PgStore {
    async fn claim_liquidity(
        &self,
        case: CaseId,
        currency: &str,
        lifetime: Duration,
    ) -> StoreResult<Option<LiquidityClaim>> {
        tx::claim_liquidity(&self.pool, case, currency, lifetime).await
    }

    async fn release_liquidity_claim(&self, claim: &LiquidityClaim) -> StoreResult<()> {
        tx::release_liquidity_claim(&self.pool, claim).await
    }
}

#[async_trait]
impl AuditSequencer for PgStore {
    async fn sequence_audit(&self, key: Option<&SigningKey>) -> StoreResult<SequencerRound> {
        sequencer::sequence(&self.pool, &self.origin, key).await
    }

    async fn flush_audit(&self, deadline: Duration) -> StoreResult<TreeHead> {
        sequencer::flush(&self.pool, &self.origin, deadline).await
    }

    async fn flush_audit_for_read(
        &self,
        deadline: Duration,
    ) -> StoreResult<(TreeHead, Box<dyn Tx>)> {
        let (head, tx) = sequencer::flush_for_read(&self.pool, &self.origin, deadline).await?;
        Ok((head, Box::new(tx::PgTx::new(tx, None))))
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
