//! The embedded SQLite backend of the `creditops-store` traits.
//!
//! One database file in WAL mode with `synchronous=FULL`. Single-writer
//! design: every read-write unit of work runs on the one connection of the
//! writer pool (`BEGIN IMMEDIATE`), read-only units of work run on a separate
//! pool of `query_only` connections. So writers never race each other for the
//! write lock (no `SQLITE_BUSY` upgrade deadlocks), the audit chain is linked
//! strictly in commit order, and readers see consistent snapshots while a
//! writer works.
//!
//! A task must not hold a read-write [`Tx`] while it calls [`Store::begin`]
//! again: the second call waits for the one writer connection until the
//! acquire timeout and then fails with `Unavailable`.

mod error;
mod tx;

use async_trait::async_trait;
use creditops_audit::{CompactRange, hash_from_slice};
use creditops_domain::StaffId;
use creditops_store::{PoolUsage, RuleSetCache, StaffLookup, Store, StoreError, StoreResult, Tx};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use error::map_sqlx_error;

/// How long SQLite waits for a lock, and a task for a pooled connection.
const WAIT: Duration = Duration::from_secs(5);
/// Connections of the read-only pool.
const READERS: u32 = 4;

/// The SQLite store. Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    origin: Arc<str>,
    rule_set_cache: Arc<RuleSetCache>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`, applies the
    /// embedded migrations and returns the store. `audit_origin` names the
    /// audit log; its hash is the chain's genesis value.
    pub async fn open(path: &Path, audit_origin: &str) -> Result<SqliteStore, StoreError> {
        restrict_to_owner(path).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(WAIT);

        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        // Exactly one writer connection, kept open for the life of the store
        // (it also keeps the WAL index alive for the readers).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(WAIT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(writer_options)
            .await
            .map_err(map_sqlx_error)?;

        sqlx::migrate!("../../migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        complete_audit_tree(&writer).await?;

        // Readers refuse every write (`query_only`); the file exists and is in
        // WAL mode already, so they set neither.
        let reader_options = base.pragma("query_only", "ON");
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(WAIT)
            .connect_with(reader_options)
            .await
            .map_err(map_sqlx_error)?;

        tracing::debug!(path = %path.display(), "sqlite store opened");
        Ok(SqliteStore {
            writer,
            readers,
            origin: Arc::from(audit_origin),
            rule_set_cache: Arc::default(),
        })
    }

    fn tx(&self, tx: sqlx::Transaction<'static, sqlx::Sqlite>) -> tx::SqliteTx {
        tx::SqliteTx::new(tx, self.origin.clone(), self.rule_set_cache.clone())
    }

    /// The audit log's origin this store links its chain from.
    pub fn audit_origin(&self) -> &str {
        &self.origin
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn pool_usage(&self) -> Option<PoolUsage> {
        let idle = self.writer.num_idle() + self.readers.num_idle();
        Some(PoolUsage {
            size: self.writer.size() + self.readers.size(),
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.writer.options().get_max_connections()
                + self.readers.options().get_max_connections(),
        })
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        // IMMEDIATE takes the write lock at once: no later lock upgrade can
        // fail, even if another process opened the file.
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx_error)?;
        Ok(Box::new(self.tx(tx)))
    }

    async fn begin_read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.readers.begin().await.map_err(map_sqlx_error)?;
        Ok(Box::new(self.tx(tx)))
    }

    async fn staff_member_with_rule_sets(&self, id: &StaffId) -> StoreResult<Option<StaffLookup>> {
        let tx = self.readers.begin().await.map_err(map_sqlx_error)?;
        self.tx(tx).staff_lookup(id, &self.rule_set_cache).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }
}

/// Leaves read per statement when the tree is computed from the chain.
const TREE_BATCH: i64 = 10_000;

/// Computes the Merkle tree's nodes of a log whose events predate the node
/// table (the migration cannot: SQLite has no SHA-256 in SQL). The table
/// is complete when the peaks of the log's size are stored (nodes only ever
/// come with their events, lower ones first): O(log n) lookups at start-up.
/// Otherwise every node is filled in from the leaves, in one transaction,
/// before the store serves anyone.
async fn complete_audit_tree(writer: &SqlitePool) -> StoreResult<()> {
    let mut tx = writer.begin().await.map_err(map_sqlx_error)?;
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_events")
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
    let mut complete = true;
    for (level, index) in CompactRange::peak_positions(u64::try_from(size).unwrap_or(0)) {
        if level == 0 {
            continue; // a leaf: the event itself
        }
        let stored: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM audit_tree WHERE level = $1 AND idx = $2)",
        )
        .bind(i64::from(level))
        .bind(i64::try_from(index).unwrap_or(i64::MAX))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
        complete &= stored;
    }
    if complete {
        return Ok(());
    }
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let mut range = CompactRange::new();
    let mut nodes = Vec::new();
    let mut after = 0i64;
    loop {
        let leaves: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, leaf_hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(TREE_BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
        for (seq, leaf) in &leaves {
            if *seq != after + 1 {
                // Opening must not hide tampering behind an error: the
                // verification names the gap; proofs answer 409 meanwhile.
                tracing::warn!(
                    seq = after + 1,
                    "the audit chain has a gap; tree not completed"
                );
                return Ok(());
            }
            after = *seq;
            let leaf = hash_from_slice(leaf)
                .ok_or_else(|| corrupt("a stored leaf hash is not 32 bytes"))?;
            range.push_reporting(leaf, |node| nodes.push(node));
        }
        if leaves.len() < TREE_BATCH as usize {
            break;
        }
    }
    for node in &nodes {
        sqlx::query("INSERT OR IGNORE INTO audit_tree (level, idx, hash) VALUES ($1, $2, $3)")
            .bind(i64::from(node.level))
            .bind(i64::try_from(node.index).map_err(|_| corrupt("a tree index beyond i64"))?)
            .bind(&node.hash[..])
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
    }
    tx.commit().await.map_err(map_sqlx_error)?;
    tracing::info!(
        size,
        nodes = nodes.len(),
        "audit tree nodes computed from the chain"
    );
    Ok(())
}

/// Makes the database file readable and writable by its owner only (0600),
/// creating it empty if it is missing: SQLite gives its WAL and shared-memory
/// files the database file's mode, and the file holds the whole credit book
/// and audit trail (hardening finding 11).
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "database file was readable by others; now 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
