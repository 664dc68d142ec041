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
use creditops_store::{SequencerLease, SequencerRound, StoreError, StoreResult, TreeHead};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A round's transaction, begun with the lock that serialises rounds held,
/// in one round trip. The lock's key is "creditop" in ASCII as an `i64`,
/// written out since a simple query takes no parameters. The round's reads
/// come in later statements, so their snapshots are taken after the lock is
/// held.
const BEGIN_ROUND: &str = "BEGIN; SELECT pg_advisory_xact_lock(7165901439040253808)";
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

/// The end of the chain: size and last chain value.
struct Head {
    size: u64,
    chain: Hash,
}

/// The peaks of the Merkle tree of `$size` leaves (an SQL expression) as a
/// `bytea[]`, highest level first, `NULL` where a node is missing (see
/// `stored_node_sql`): one per set bit of the size, at the positions
/// `CompactRange::peak_positions` computes.
macro_rules! tree_peaks_sql {
    ($size:literal) => {
        concat!(
            "ARRAY(SELECT ",
            stored_node_sql!(),
            " FROM (SELECT k::smallint AS level, (",
            $size,
            " >> k) - 1 AS idx \
                     FROM generate_series(62, 0, -1) AS k WHERE (",
            $size,
            " >> k) & 1 = 1) AS p \
               ORDER BY p.level DESC)"
        )
    };
}

/// What a round works on, read in one statement after its lock is held:
/// the xmin of the statement's snapshot (every transaction below it has
/// ended, so this snapshot sees all of its entries or none will ever
/// exist), its xmax, whether it sees an entry at or above its xmin (one
/// committed while an older transaction is still open: this round cannot
/// link it yet), the end of the chain, the peaks of its tree, the entries to
/// link, in `(xid, event_id)` order, and the last signed head (written only
/// under the same lock).
///
/// The pending entries lie in a narrow xid range of a growing table. The
/// store's connections keep one generic plan per statement (see
/// `PgStore::connect`), planned once: a range scan of each year's xid
/// index between bounds computed first, and for each entry a probe of the
/// chain's key (a subplan, not an anti-join the planner might hash over
/// the whole chain).
const ROUND_INPUTS_SQL: &str = concat!(
    "WITH last AS (SELECT seq, chain_hash, xid FROM audit_chain ORDER BY seq DESC LIMIT 1), \
          snap AS (SELECT pg_snapshot_xmin(s) AS xmin, pg_snapshot_xmax(s) AS xmax \
                   FROM pg_current_snapshot() AS s), \
          pending AS ( \
            SELECT e.event_id, e.leaf_hash, e.xid FROM audit_entries e \
            WHERE e.xid >= COALESCE((SELECT xid FROM last), '0') \
              AND e.xid < (SELECT xmin FROM snap) \
              AND (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id) IS NULL \
            ORDER BY e.xid, e.event_id LIMIT $1) \
     SELECT (SELECT xmin FROM snap)::text, (SELECT xmax FROM snap)::text, \
       EXISTS (SELECT 1 FROM audit_entries e WHERE e.xid >= (SELECT xmin FROM snap)), \
       l.seq, l.chain_hash, ",
    tree_peaks_sql!("COALESCE(l.seq, 0)"),
    ", ARRAY(SELECT event_id FROM pending ORDER BY xid, event_id), \
       ARRAY(SELECT leaf_hash FROM pending ORDER BY xid, event_id), \
       signed.tree_size, signed.signed_at \
     FROM (SELECT 1) AS one LEFT JOIN last l ON true \
     LEFT JOIN LATERAL ( \
       SELECT tree_size, signed_at FROM audit_heads ORDER BY tree_size DESC LIMIT 1) signed ON true"
);

/// What [`ROUND_INPUTS_SQL`] reads.
struct RoundInputs {
    head: Head,
    xmin: String,
    /// Every transaction committed before the round's snapshot lies below.
    xmax: String,
    /// A committed entry waits behind an open transaction.
    held_back: bool,
    /// `None` if a peak node is missing (the tree is rebuilt then).
    peaks: Option<Vec<Hash>>,
    pending: Vec<(Uuid, Vec<u8>)>,
    /// The size and time of the last signed head, if any.
    last_signed: Option<(i64, Timestamp)>,
}

type RoundRow = (
    String,
    String,
    bool,
    Option<i64>,
    Option<Vec<u8>>,
    Vec<Option<Vec<u8>>>,
    Vec<Uuid>,
    Vec<Vec<u8>>,
    Option<i64>,
    Option<Timestamp>,
);

async fn round_inputs(
    tx: &mut Transaction<'static, Postgres>,
    origin: &str,
) -> StoreResult<RoundInputs> {
    let (xmin, xmax, held_back, seq, chain, peaks, ids, leaves, signed_size, signed_at): RoundRow =
        sqlx::query_as(ROUND_INPUTS_SQL)
            .bind(BATCH)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_sqlx_error)?;
    let head = match (seq, chain) {
        (Some(seq), Some(chain)) => Head {
            size: u64::try_from(seq).map_err(|_| corrupt("a negative audit seq"))?,
            chain: hash(&chain, "a stored chain hash is not 32 bytes")?,
        },
        _ => Head {
            size: 0,
            chain: chain_genesis(origin),
        },
    };
    Ok(RoundInputs {
        head,
        xmin,
        xmax,
        held_back,
        peaks: peak_hashes(peaks)?,
        pending: ids.into_iter().zip(leaves).collect(),
        last_signed: signed_size.zip(signed_at),
    })
}

/// The peaks as hashes; `None` if one is missing.
fn peak_hashes(peaks: Vec<Option<Vec<u8>>>) -> StoreResult<Option<Vec<Hash>>> {
    let mut hashes = Vec::with_capacity(peaks.len());
    for peak in peaks {
        match peak {
            Some(bytes) => hashes.push(hash(&bytes, "a stored tree node is not 32 bytes")?),
            None => return Ok(None),
        }
    }
    Ok(Some(hashes))
}

fn to_i64(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| corrupt("an audit position beyond i64"))
}

/// The compact range of the tree of `size` leaves from its stored peaks;
/// rebuilds missing nodes from the leaves once (after the migration that
/// introduced the table, on a log that already had events).
async fn compact_range(
    tx: &mut Transaction<'static, Postgres>,
    size: u64,
    peaks: Option<Vec<Hash>>,
) -> StoreResult<CompactRange> {
    match peaks {
        Some(peaks) => CompactRange::from_parts(size, peaks)
            .map_err(|_| corrupt("tree peaks do not match the size")),
        None => rebuild_tree(tx, size).await,
    }
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
    let mut tx = pool.begin_with(BEGIN_ROUND).await.map_err(map_sqlx_error)?;
    let RoundInputs {
        head,
        xmin,
        peaks,
        pending,
        last_signed,
        ..
    } = round_inputs(&mut tx, origin).await?;
    let mut range = compact_range(&mut tx, head.size, peaks).await?;
    if !pending.is_empty() {
        link(&mut tx, &head, &pending, &mut range).await?;
    }
    let signed = match key {
        Some(key) => sign_head(&mut tx, origin, key, &range, last_signed).await?,
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

/// Signs the head if it grew and the last signed head (`last`, its size and
/// time, read with the round's inputs) is at least
/// [`SIGN_EVERY`] old (or there is none).
async fn sign_head(
    tx: &mut Transaction<'static, Postgres>,
    origin: &str,
    key: &SigningKey,
    range: &CompactRange,
    last: Option<(i64, Timestamp)>,
) -> StoreResult<bool> {
    if range.size() == 0 {
        return Ok(false);
    }
    let now = chrono::Utc::now();
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

/// In one statement and its one snapshot: the snapshot's `xmax` (every
/// transaction committed before the statement lies below it), whether an
/// entry below it is not linked yet, the chain's size and the peaks of its
/// Merkle tree (highest level first, `NULL` where a node is missing; level 0
/// is a leaf of the chain). The peaks are the set bits of the size, as
/// `CompactRange::peak_positions` computes them.
const LINKED_HEAD_SQL: &str = concat!(
    "WITH head AS ( \
       SELECT COALESCE((SELECT seq FROM audit_chain ORDER BY seq DESC LIMIT 1), 0) AS size) \
     SELECT pg_snapshot_xmax(s)::text, \
       EXISTS ( \
         SELECT 1 FROM audit_entries e \
         WHERE e.xid >= COALESCE((SELECT xid FROM audit_chain ORDER BY seq DESC LIMIT 1), '0') \
           AND e.xid < pg_snapshot_xmax(s) \
           AND (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id) IS NULL), \
       head.size, ",
    tree_peaks_sql!("head.size"),
    " FROM pg_current_snapshot() AS s, head"
);

/// What [`LINKED_HEAD_SQL`] answers: the bound below which every committed
/// transaction lies, whether one of their entries waits, and the linked
/// head (`None` if a peak node is missing, which a round rebuilds).
async fn linked_head(pool: &PgPool) -> StoreResult<(String, bool, Option<TreeHead>)> {
    let (below, pending, size, peaks): (String, bool, i64, Vec<Option<Vec<u8>>>) =
        sqlx::query_as(LINKED_HEAD_SQL)
            .fetch_one(pool)
            .await
            .map_err(map_sqlx_error)?;
    let size = u64::try_from(size).map_err(|_| corrupt("a negative audit seq"))?;
    let Some(peaks) = peak_hashes(peaks)? else {
        return Ok((below, pending, None));
    };
    let range = CompactRange::from_parts(size, peaks)
        .map_err(|_| corrupt("tree peaks do not match the size"))?;
    let head = TreeHead {
        size,
        root: range.root(),
    };
    Ok((below, pending, Some(head)))
}

pub(crate) async fn flush(
    pool: &PgPool,
    origin: &str,
    deadline: Duration,
) -> StoreResult<TreeHead> {
    let started = Instant::now();
    // Usually the leader's timer linked every entry committed before this
    // call already: then this one statement is the whole flush, and its
    // head covers them.
    let (below, pending, head) = linked_head(pool).await?;
    if let (false, Some(head)) = (pending, head) {
        return Ok(head);
    }
    link_below(pool, origin, &below, started, deadline).await
}

/// [`flush`] for a reader of the tree who then records the read: the head,
/// and the transaction to read the tree and record the read in. That is the
/// flush's own round when it covers every entry committed before the call
/// (its snapshot is later than the call, so it saw them all; it covers them
/// if none it saw is held back and its batch was not cut short): the round
/// links what waits, hands over its head and stays open, so the link, the
/// read and its audit commit once. The round's lock is held until the
/// reader commits or drops the transaction, which only delays other rounds
/// by the read. Otherwise the round commits, the flush goes on as
/// [`flush`] does, and the read gets a transaction of its own.
pub(crate) async fn flush_for_read(
    pool: &PgPool,
    origin: &str,
    deadline: Duration,
) -> StoreResult<(TreeHead, Transaction<'static, Postgres>)> {
    let started = Instant::now();
    let mut tx = pool.begin_with(BEGIN_ROUND).await.map_err(map_sqlx_error)?;
    let inputs = round_inputs(&mut tx, origin).await?;
    let mut range = compact_range(&mut tx, inputs.head.size, inputs.peaks).await?;
    if !inputs.pending.is_empty() {
        link(&mut tx, &inputs.head, &inputs.pending, &mut range).await?;
    }
    if !inputs.held_back && inputs.pending.len() < BATCH as usize {
        let head = TreeHead {
            size: range.size(),
            root: range.root(),
        };
        return Ok((head, tx));
    }
    tx.commit().await.map_err(map_sqlx_error)?;
    let head = link_below(pool, origin, &inputs.xmax, started, deadline).await?;
    Ok((head, pool.begin().await.map_err(map_sqlx_error)?))
}

/// Runs rounds until every entry of a transaction below `below` (an `xid8`
/// as text) is linked, and returns a head that covers them.
async fn link_below(
    pool: &PgPool,
    origin: &str,
    below: &str,
    started: Instant,
    deadline: Duration,
) -> StoreResult<TreeHead> {
    loop {
        let (round, xmin) = round(pool, origin, None).await?;
        // A round whose snapshot had every transaction below `below` ended,
        // and that was not cut short by its batch, linked all their entries
        // (rounds link in xid order): its head covers them.
        if round.linked < BATCH as u64 && xid_at_least(&xmin, below) {
            return Ok(TreeHead {
                size: round.size,
                root: round.root,
            });
        }
        // Another round linked them: the head read now covers them.
        if oldest_unlinked(pool, Some(below)).await?.is_none()
            && let (_, _, Some(head)) = linked_head(pool).await?
        {
            return Ok(head);
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
    use super::{BEGIN_ROUND, xid_at_least};

    #[test]
    fn a_round_begins_with_the_chain_lock() {
        let key = i64::from_be_bytes(*b"creditop");
        assert!(BEGIN_ROUND.ends_with(&format!("pg_advisory_xact_lock({key})")));
    }

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
