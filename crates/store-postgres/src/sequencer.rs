//! The audit sequencer (A1, A2): links committed audit entries into the hash
//! chain and the Merkle tree's node table.
//!
//! Business transactions insert into `audit_entries` without any shared
//! lock. An entry whose transaction id is below the xmin of a snapshot taken
//! now is final (its transaction has ended), so a round links exactly those,
//! in `(xid, event_id)` order, continuing from the last linked entry's xid.
//! Rounds take a transaction-scoped advisory lock, so rounds from several
//! instances (the leader's timer, readers flushing) never interleave; which
//! instance runs the timer is decided by a session-level advisory lock
//! ([`PgSequencerLease`]).

use crate::map_sqlx_error;
use async_trait::async_trait;
use creditops_audit::{CompactRange, Hash, SigningKey, TreeNode, chain_genesis, chain_next};
use creditops_domain::Timestamp;
use creditops_store::{SequencerLease, SequencerRound, StoreError, StoreResult};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Serialises sequencer rounds ("creditop" in ASCII).
const CHAIN_LOCK: i64 = 0x6372_6564_6974_6f70;
/// Held for the whole session by the instance that runs the timer ("seqleadr").
const LEADER_LOCK: i64 = 0x7365_716c_6561_6472;
/// Entries linked per round at most, so one round's transaction stays short.
const BATCH: i64 = 10_000;
/// How often at most the sequencer signs a new tree head.
const SIGN_EVERY: Duration = Duration::from_secs(1);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn hash(bytes: &[u8], what: &str) -> StoreResult<Hash> {
    creditops_audit::hash_from_slice(bytes).ok_or_else(|| corrupt(what))
}

/// The end of the chain: size, last chain value, and the xid to continue from.
struct Head {
    size: u64,
    chain: Hash,
    xid: String,
}

/// The head, and the xmin of a snapshot taken with it: a transaction below
/// that xmin has ended, so a later read sees all of its entries or none
/// will ever exist. One statement, after the round's lock is held.
async fn head(
    tx: &mut Transaction<'static, Postgres>,
    origin: &str,
) -> StoreResult<(Head, String)> {
    let (xmin, seq, chain, xid): (String, Option<i64>, Option<Vec<u8>>, Option<String>) =
        sqlx::query_as(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, c.seq, c.chain_hash, \
                    c.xid::text \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
               SELECT seq, chain_hash, xid FROM audit_chain ORDER BY seq DESC LIMIT 1) c ON true",
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(map_sqlx_error)?;
    let head = match (seq, chain, xid) {
        (Some(seq), Some(chain), Some(xid)) => Head {
            size: u64::try_from(seq).map_err(|_| corrupt("a negative audit seq"))?,
            chain: hash(&chain, "a stored chain hash is not 32 bytes")?,
            xid,
        },
        _ => Head {
            size: 0,
            chain: chain_genesis(origin),
            xid: "0".into(),
        },
    };
    Ok((head, xmin))
}

fn to_i64(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| corrupt("an audit position beyond i64"))
}

/// The compact range (peaks) of the tree of `size` leaves, from the node
/// table; rebuilds missing nodes from the leaves once (after the migration
/// that introduced the table, on a log that already had events).
async fn compact_range(
    tx: &mut Transaction<'static, Postgres>,
    size: u64,
) -> StoreResult<CompactRange> {
    let positions = CompactRange::peak_positions(size);
    let levels: Vec<i16> = positions
        .iter()
        .map(|(level, _)| i16::from(*level))
        .collect();
    let indices = positions
        .iter()
        .map(|(_, index)| to_i64(*index))
        .collect::<StoreResult<Vec<i64>>>()?;
    // One query for all peaks: level 0 is a leaf of the chain, higher levels
    // are nodes of the tree table.
    let found: Vec<Option<Vec<u8>>> = sqlx::query_scalar(audit_nodes_sql!())
        .bind(&levels)
        .bind(&indices)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_sqlx_error)?;
    let mut peaks = Vec::with_capacity(found.len());
    for bytes in found {
        match bytes {
            Some(bytes) => peaks.push(hash(&bytes, "a stored tree node is not 32 bytes")?),
            None => return rebuild_tree(tx, size).await,
        }
    }
    CompactRange::from_parts(size, peaks).map_err(|_| corrupt("tree peaks do not match the size"))
}

async fn rebuild_tree(
    tx: &mut Transaction<'static, Postgres>,
    size: u64,
) -> StoreResult<CompactRange> {
    let leaves: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT leaf_hash FROM audit_chain WHERE seq <= $1 ORDER BY seq")
            .bind(to_i64(size)?)
            .fetch_all(&mut **tx)
            .await
            .map_err(map_sqlx_error)?;
    if leaves.len() as u64 != size {
        return Err(corrupt("the audit chain has a gap"));
    }
    let mut range = CompactRange::new();
    let mut nodes = Vec::new();
    for leaf in &leaves {
        range.push_reporting(hash(leaf, "a stored leaf hash is not 32 bytes")?, |node| {
            nodes.push(node)
        });
    }
    insert_nodes(tx, &nodes, true).await?;
    tracing::info!(size, "audit tree nodes rebuilt from the chain");
    Ok(range)
}

/// Tree nodes as the three arrays an `UNNEST` insert binds.
type NodeColumns = (Vec<i16>, Vec<i64>, Vec<Vec<u8>>);

fn node_columns(nodes: &[TreeNode]) -> StoreResult<NodeColumns> {
    let levels = nodes.iter().map(|n| i16::from(n.level)).collect();
    let indices = nodes
        .iter()
        .map(|n| to_i64(n.index))
        .collect::<StoreResult<Vec<i64>>>()?;
    let hashes = nodes.iter().map(|n| n.hash.to_vec()).collect();
    Ok((levels, indices, hashes))
}

async fn insert_nodes(
    tx: &mut Transaction<'static, Postgres>,
    nodes: &[TreeNode],
    skip_existing: bool,
) -> StoreResult<()> {
    for chunk in nodes.chunks(BATCH as usize) {
        let (levels, indices, hashes) = node_columns(chunk)?;
        let sql = if skip_existing {
            "INSERT INTO audit_tree (level, idx, hash) \
             SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[]) \
             ON CONFLICT DO NOTHING"
        } else {
            "INSERT INTO audit_tree (level, idx, hash) \
             SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])"
        };
        sqlx::query(sql)
            .bind(levels)
            .bind(indices)
            .bind(hashes)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx_error)?;
    }
    Ok(())
}

/// One round: see the module documentation.
pub(crate) async fn sequence(
    pool: &PgPool,
    origin: &str,
    key: Option<&SigningKey>,
) -> StoreResult<SequencerRound> {
    Ok(round(pool, origin, key).await?.0)
}

/// One round, and the xmin of its snapshot: every transaction below it had
/// ended when the round read the pending entries.
async fn round(
    pool: &PgPool,
    origin: &str,
    key: Option<&SigningKey>,
) -> StoreResult<(SequencerRound, String)> {
    let mut tx = pool.begin().await.map_err(map_sqlx_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
    let (head, xmin) = head(&mut tx, origin).await?;
    // The pending entries lie in a narrow xid range of a growing table. The
    // store's connections keep one generic plan per statement (see
    // `PgStore::connect`), planned once: a range scan of each year's xid
    // index, and for each entry a probe of the chain's key (a subplan, not
    // an anti-join the planner might hash over the whole chain). A plan made
    // per round instead would cost more to make over the year partitions
    // than the round's reads cost to run.
    let pending: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT e.event_id, e.leaf_hash FROM audit_entries e \
         WHERE e.xid >= $1::xid8 AND e.xid < $2::xid8 \
           AND (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id) IS NULL \
         ORDER BY e.xid, e.event_id LIMIT $3",
    )
    .bind(&head.xid)
    .bind(&xmin)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_sqlx_error)?;
    let mut range = compact_range(&mut tx, head.size).await?;
    if !pending.is_empty() {
        link(&mut tx, &head, &pending, &mut range).await?;
    }
    let signed = match key {
        Some(key) => sign_head(&mut tx, origin, key, &range).await?,
        None => false,
    };
    tx.commit().await.map_err(map_sqlx_error)?;
    let round = SequencerRound {
        linked: pending.len() as u64,
        size: range.size(),
        root: range.root(),
        signed,
    };
    Ok((round, xmin))
}

async fn link(
    tx: &mut Transaction<'static, Postgres>,
    head: &Head,
    pending: &[(Uuid, Vec<u8>)],
    range: &mut CompactRange,
) -> StoreResult<()> {
    let mut seqs = Vec::with_capacity(pending.len());
    let mut ids = Vec::with_capacity(pending.len());
    let mut chains = Vec::with_capacity(pending.len());
    let mut nodes = Vec::new();
    let mut chain = head.chain;
    for (event_id, leaf) in pending {
        let leaf = hash(leaf, "a stored leaf hash is not 32 bytes")?;
        chain = chain_next(&chain, &leaf);
        range.push_reporting(leaf, |node| nodes.push(node));
        seqs.push(to_i64(range.size())?);
        ids.push(*event_id);
        chains.push(chain.to_vec());
    }
    // The chain rows and the tree nodes they complete in one statement
    // (one round trip); a round that completes more nodes than a batch
    // inserts the rest after it.
    let (first, rest) = nodes.split_at(nodes.len().min(BATCH as usize));
    let (levels, indices, hashes) = node_columns(first)?;
    sqlx::query(
        "WITH chain AS ( \
           INSERT INTO audit_chain (seq, event_id, xid, leaf_hash, chain_hash, sequenced_at) \
           SELECT u.seq, u.event_id, e.xid, e.leaf_hash, u.chain_hash, now() \
           FROM UNNEST($1::bigint[], $2::uuid[], $3::bytea[]) AS u(seq, event_id, chain_hash) \
           JOIN audit_entries e ON e.event_id = u.event_id) \
         INSERT INTO audit_tree (level, idx, hash) \
         SELECT * FROM UNNEST($4::smallint[], $5::bigint[], $6::bytea[])",
    )
    .bind(&seqs)
    .bind(&ids)
    .bind(&chains)
    .bind(levels)
    .bind(indices)
    .bind(hashes)
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx_error)?;
    insert_nodes(tx, rest, false).await
}

/// Signs the head if it grew and the last signed head is at least
/// [`SIGN_EVERY`] old (or there is none).
async fn sign_head(
    tx: &mut Transaction<'static, Postgres>,
    origin: &str,
    key: &SigningKey,
    range: &CompactRange,
) -> StoreResult<bool> {
    if range.size() == 0 {
        return Ok(false);
    }
    let now = chrono::Utc::now();
    let last: Option<(i64, Timestamp)> = sqlx::query_as(
        "SELECT tree_size, signed_at FROM audit_heads ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_sqlx_error)?;
    let due = match last {
        None => true,
        Some((size, at)) => {
            to_i64(range.size())? > size
                && now.signed_duration_since(at).to_std().unwrap_or_default() >= SIGN_EVERY
        }
    };
    if !due {
        return Ok(false);
    }
    let note = key
        .sign_checkpoint(origin, range.size(), &range.root())
        .map_err(|e| StoreError::Corrupt(format!("the checkpoint could not be signed: {e}")))?;
    sqlx::query(
        "INSERT INTO audit_heads (tree_size, root, note, signed_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(to_i64(range.size())?)
    .bind(range.root().to_vec())
    .bind(note)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx_error)?;
    Ok(true)
}

/// Entries not linked yet, among those written by transactions below
/// `below_xid` (all of them if `None`): the oldest one's `recorded_at`.
async fn oldest_unlinked(pool: &PgPool, below_xid: Option<&str>) -> StoreResult<Option<Timestamp>> {
    // Every entry below the last linked xid is linked (rounds link in xid
    // order), so only the tail needs the check; as a probe per entry of the
    // tail (a subplan), not an anti-join the planner may hash over the whole
    // chain.
    let oldest = sqlx::query_scalar(
        "SELECT min(e.recorded_at) FROM audit_entries e \
         WHERE e.xid >= COALESCE((SELECT xid FROM audit_chain ORDER BY seq DESC LIMIT 1), '0') \
           AND ($1::xid8 IS NULL OR e.xid < $1::xid8) \
           AND (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id) IS NULL",
    )
    .bind(below_xid)
    .fetch_one(pool)
    .await
    .map_err(map_sqlx_error)?;
    Ok(oldest)
}

pub(crate) async fn oldest_unsequenced(pool: &PgPool) -> StoreResult<Option<Timestamp>> {
    oldest_unlinked(pool, None).await
}

pub(crate) async fn flush(pool: &PgPool, origin: &str, deadline: Duration) -> StoreResult<()> {
    let started = Instant::now();
    // Every transaction that committed before this call has an id below
    // the xmax of a snapshot taken now. Usually the leader's timer linked
    // them all already: then this one statement is the whole flush.
    let (below, pending): (String, bool) = sqlx::query_as(
        "SELECT pg_snapshot_xmax(s)::text, EXISTS ( \
           SELECT 1 FROM audit_entries e \
           WHERE e.xid >= COALESCE((SELECT xid FROM audit_chain ORDER BY seq DESC LIMIT 1), '0') \
             AND e.xid < pg_snapshot_xmax(s) \
             AND (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id) IS NULL) \
         FROM pg_current_snapshot() AS s",
    )
    .fetch_one(pool)
    .await
    .map_err(map_sqlx_error)?;
    if !pending {
        return Ok(());
    }
    loop {
        let (round, xmin) = round(pool, origin, None).await?;
        // A round whose snapshot had every transaction below `below` ended,
        // and that was not cut short by its batch, linked all their entries
        // (rounds link in xid order): nothing is left to look for.
        if (round.linked < BATCH as u64 && xid_at_least(&xmin, &below))
            || oldest_unlinked(pool, Some(&below)).await?.is_none()
        {
            return Ok(());
        }
        if started.elapsed() >= deadline {
            return Err(StoreError::Unavailable(
                "the audit sequencer did not link the committed events in time".into(),
            ));
        }
        // An older transaction is still open; its end makes the rest final.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether transaction id `xid` is at least `bound` (both `xid8` as text:
/// 64-bit, never wrapping). An id that does not parse answers `false`, so
/// the caller checks the table instead.
fn xid_at_least(xid: &str, bound: &str) -> bool {
    match (xid.parse::<u64>(), bound.parse::<u64>()) {
        (Ok(xid), Ok(bound)) => xid >= bound,
        _ => false,
    }
}

/// Leadership of the periodic sequencer: a session-level advisory lock on a
/// connection of its own, released by PostgreSQL when the session ends (for
/// example when the leading process dies), so another instance takes over.
pub struct PgSequencerLease {
    connection: PgConnection,
}

pub(crate) async fn try_lease(pool: &PgPool) -> StoreResult<Option<PgSequencerLease>> {
    let options = pool.connect_options();
    let mut connection = PgConnection::connect_with(&options)
        .await
        .map_err(map_sqlx_error)?;
    let leads: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut connection)
        .await
        .map_err(map_sqlx_error)?;
    if leads {
        Ok(Some(PgSequencerLease { connection }))
    } else {
        // Best effort: the session ends with the connection anyway.
        let _ = connection.close().await;
        Ok(None)
    }
}

#[async_trait]
impl SequencerLease for PgSequencerLease {
    async fn still_held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::xid_at_least;

    #[test]
    fn transaction_ids_compare_as_64_bit_numbers_and_garbage_never_passes() {
        for (xid, bound, expected) in [
            ("10", "9", true),
            ("10", "10", true),
            ("9", "10", false),
            // Text order would get this one wrong.
            ("100", "99", true),
            ("18446744073709551615", "4294967296", true),
            ("", "1", false),
            ("12", "x", false),
            ("-1", "0", false),
        ] {
            assert_eq!(xid_at_least(xid, bound), expected, "{xid} >= {bound}");
        }
    }
}
