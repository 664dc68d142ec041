//! Export bundles for a regulator (A5): the selected events streamed into
//! `entries.jsonl` and checked one by one, the borders, root and
//! consistency proof read from the stored Merkle tree (a log whose events
//! and tree disagree is never exported), a checkpoint signed with the audit
//! key (kept outside the database) and the files of `audit/SPEC.md` built,
//! in memory bounded whatever the range. Shared by the
//! `creditops audit export` command and `POST /v1/exports`; both record the
//! export as an audit event that commits only with the bundle.

use chrono::{DateTime, Utc};
use creditops_audit::export::{
    BundleEntry, BundleError, BundleParts, ENTRIES, EntriesWriter, bundle_files,
};
use creditops_audit::merkle::{NodePlan, NodePosition, empty_root};
use creditops_audit::{
    ChainVerifier, Checkpoint, Hash, MerkleTree, SigningKey, chain_genesis, hash_from_slice,
};
use creditops_store::{AuditFilter, StoreError, StoredAuditEvent, StoredCheckpoint, Tx};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;

const PAGE: u32 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Usage(String),
    #[error("the audit log is broken at sequence {seq}: {reason}; nothing was exported")]
    Broken { seq: i64, reason: String },
    #[error("the audit log is empty; nothing to export")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit log's Merkle tree does not match its events: {0}; nothing was exported")]
    Tree(String),
    #[error("could not build the bundle: {0}")]
    Bundle(String),
}

/// One stored event: seq, exact body bytes, leaf hash, chain hash.
pub type LogEntry = (i64, Vec<u8>, Hash, Hash);

/// What to export: a range of sequence numbers, or the events recorded in a
/// half-open time range `[from, to)`. An export is always one contiguous
/// range (completeness is provable only for that), so a time range exports
/// the span from the first to the last event recorded in it; the recipient
/// filters by `ts`.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    Seq(Option<i64>, Option<i64>),
    Time(Option<DateTime<Utc>>, Option<DateTime<Utc>>),
}

impl Selection {
    /// The first and last sequence number to export from a log of `size`
    /// linked events. A time range reads the events' bodies page by page
    /// (their `ts` is what the chain covers), never more than a page at once.
    pub async fn resolve(&self, tx: &mut dyn Tx, size: u64) -> Result<(u64, u64), ExportError> {
        let (from, to) = match *self {
            Selection::Seq(first, last) => {
                let first = first.unwrap_or(1);
                let last = last.unwrap_or(i64::try_from(size).unwrap_or(i64::MAX));
                return match (u64::try_from(first), u64::try_from(last)) {
                    (Ok(first), Ok(last)) if first >= 1 && first <= last && last <= size => {
                        Ok((first, last))
                    }
                    _ => Err(ExportError::Usage(format!(
                        "the range {first}..{last} is not within the log's 1..{size}"
                    ))),
                };
            }
            Selection::Time(None, None) => return Ok((1, size)),
            Selection::Time(from, to) => (from, to),
        };
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(ExportError::Usage(
                "the time range is empty: --from must be before --to".into(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Stamp {
            ts: DateTime<Utc>,
        }
        let mut span: Option<(u64, u64)> = None;
        let mut after = 0i64;
        let size_i64 = i64::try_from(size).unwrap_or(i64::MAX);
        while after < size_i64 {
            let page = events_page(tx, after, size - u64::try_from(after).unwrap_or(0)).await?;
            let Some(last_in_page) = page.last() else {
                break;
            };
            after = last_in_page.seq;
            for event in page {
                let stamp: Stamp =
                    serde_json::from_slice(&event.body).map_err(|_| ExportError::Broken {
                        seq: event.seq,
                        reason: "the event has no valid ts".into(),
                    })?;
                let inside =
                    from.is_none_or(|from| stamp.ts >= from) && to.is_none_or(|to| stamp.ts < to);
                let seq = u64::try_from(event.seq).unwrap_or(0);
                if inside && seq >= 1 {
                    span = Some(span.map_or((seq, seq), |(first, _)| (first, seq)));
                }
            }
        }
        span.ok_or_else(|| ExportError::Usage("no event was recorded in that time range".into()))
    }
}

/// Reads the whole log in `tx`, checking the chain as it goes; the first bad
/// position is an error.
pub async fn load_verified_log(
    tx: &mut dyn Tx,
    origin: &str,
) -> Result<Vec<LogEntry>, ExportError> {
    let mut verifier = ChainVerifier::new(origin, 1);
    let mut events = Vec::new();
    let mut after = 0i64;
    loop {
        let page = tx
            .audit_events(&AuditFilter {
                after_seq: Some(after),
                limit: PAGE,
                ..AuditFilter::default()
            })
            .await?;
        let Some(last_in_page) = page.last() else {
            break;
        };
        after = last_in_page.seq;
        for event in page {
            let leaf = hash_from_slice(&event.leaf_hash);
            let chain = hash_from_slice(&event.chain_hash);
            let (Some(leaf), Some(chain)) = (leaf, chain) else {
                return Err(ExportError::Broken {
                    seq: event.seq,
                    reason: "a stored hash has the wrong length".into(),
                });
            };
            verifier
                .push(event.seq, &event.body, &leaf, &chain)
                .map_err(|f| ExportError::Broken {
                    seq: f.seq,
                    reason: f.reason,
                })?;
            events.push((event.seq, event.body, leaf, chain));
        }
    }
    Ok(events)
}

/// The key that signs an export and the verifier keys of keys it replaced
/// (rotation): the bundle's `keys.txt` carries them all, so a previous
/// checkpoint signed before a rotation still verifies.
#[derive(Clone, Copy)]
pub struct ExportKeys<'a> {
    pub signing: &'a SigningKey,
    pub retired: &'a [creditops_audit::VerifierKey],
}

impl ExportKeys<'_> {
    pub(crate) fn verifiers(&self) -> Vec<creditops_audit::VerifierKey> {
        std::iter::once(self.signing.verifier_key())
            .chain(self.retired.iter().cloned())
            .collect()
    }
}

/// The last checkpoint handed out for a log of `size` events or fewer that
/// one of `keys` signed: the recipient may hold it, so the next bundle
/// proves it is consistent with the new one (A2). Checkpoints of a key that
/// is neither current nor listed as retired are left out (the bundle could
/// not show they are the bank's).
/// The note comes with what it signs.
pub async fn previous_checkpoint(
    tx: &mut dyn Tx,
    size: u64,
    keys: ExportKeys<'_>,
) -> Result<Option<(String, Checkpoint)>, ExportError> {
    let Some(stored) = tx.latest_checkpoint(size).await? else {
        return Ok(None);
    };
    Ok(
        creditops_audit::parse_and_verify(&stored.note, &keys.verifiers())
            .ok()
            .map(|signed| (stored.note, signed)),
    )
}

/// A built bundle and what it covers. Its entries went to the writer given
/// to [`write_bundle`]; `files` are the others.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Every file but `entries.jsonl`, sorted by name.
    pub files: Vec<(String, Vec<u8>)>,
    /// The length of `entries.jsonl` in bytes.
    pub entries_bytes: u64,
    /// The checkpoint signed for this bundle (to record as handed out).
    pub checkpoint: StoredCheckpoint,
    /// The size of the earlier checkpoint it is proven consistent with.
    pub previous_size: Option<u64>,
    pub first_seq: i64,
    pub last_seq: i64,
    pub tree_size: u64,
    pub root: Hash,
    pub key: String,
}

impl Prepared {
    /// The data of the `audit.exported` event.
    pub fn audit_data(&self) -> Value {
        json!({
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "tree_size": self.tree_size,
            "root": hex::encode(self.root),
            "key": self.key,
            "previous_size": self.previous_size,
        })
    }

    /// The name of the bundle's directory (and of its archive, with `.tar`).
    pub fn dir_name(&self) -> String {
        format!("creditops-audit-{}-{}", self.first_seq, self.last_seq)
    }
}

/// The hashes `plan` names, read from the stored Merkle tree in one
/// statement; a node the table lacks is a broken tree.
pub async fn stored_nodes(tx: &mut dyn Tx, plan: &NodePlan) -> Result<Vec<Hash>, ExportError> {
    let positions = plan.positions();
    let found = tx.audit_nodes(&positions).await?;
    let stored: HashMap<NodePosition, Hash> = positions
        .into_iter()
        .zip(found)
        .filter_map(|(position, hash)| Some((position, hash?)))
        .collect();
    plan.hashes(|position| stored.get(&position).copied())
        .map_err(|(level, index)| {
            ExportError::Tree(format!("it has no node at level {level}, index {index}"))
        })
}

/// Builds the bundle of the events `selection` names, proven against a
/// checkpoint over every linked event signed by `keys` now, in `tx`, with
/// memory bounded whatever the range: `entries.jsonl` streams into
/// `entries` page by page, checked entry by entry (sequence, leaf, chain,
/// body); the borders, the root and the consistency proof from the last
/// checkpoint handed out come from the stored tree, O(log n) nodes, and the
/// entries must fold with the borders to that root. Anything that does not
/// match is a broken log and nothing is exported. `progress` hears the
/// number of events read so far after each page.
pub async fn write_bundle<W: Write + Send>(
    tx: &mut dyn Tx,
    origin: &str,
    keys: ExportKeys<'_>,
    selection: Selection,
    created_at: DateTime<Utc>,
    entries: W,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<(Prepared, W), ExportError> {
    let size = tx.audit_size().await?;
    if size == 0 {
        return Err(ExportError::Empty);
    }
    let (first, last) = selection.resolve(tx, size).await?;
    let previous = previous_checkpoint(tx, size, keys).await?;
    let previous_head = previous.as_ref().map(|(_, signed)| signed);
    let right_plan = NodePlan::compact_range(last, size);
    let left_plan = NodePlan::compact_range(0, first - 1);
    let proof_plan = match previous_head {
        Some(old) => {
            NodePlan::consistency(old.size, size).map_err(|e| ExportError::Tree(e.to_string()))?
        }
        None => NodePlan::default(),
    };
    let (left_len, right_len) = (left_plan.len(), right_plan.len());
    let plan = NodePlan::root(size)
        .then(left_plan)
        .then(right_plan)
        .then(proof_plan);
    let mut nodes = stored_nodes(tx, &plan).await?.into_iter();
    let root = nodes.next().unwrap_or_else(empty_root);
    let left: Vec<Hash> = nodes.by_ref().take(left_len).collect();
    let right: Vec<Hash> = nodes.by_ref().take(right_len).collect();
    let proof: Vec<Hash> = nodes.collect();

    let chain_before = chain_before(tx, origin, first).await?;
    let mut writer =
        EntriesWriter::new(entries, first, size, chain_before, left).map_err(broken_entry)?;
    let (mut after, until) = (seq_i64(first)? - 1, seq_i64(last)?);
    let mut read = 0u64;
    while after < until {
        let page = events_page(tx, after, last - u64::try_from(after).unwrap_or(0)).await?;
        let Some(last_in_page) = page.last() else {
            break;
        };
        after = last_in_page.seq;
        read += page.len() as u64;
        for event in page {
            writer.push(&bundle_entry(event)?).map_err(broken_entry)?;
        }
        progress(read);
    }
    let written = writer.finish().map_err(broken_entry)?;
    if written.last_seq != last {
        return Err(ExportError::Broken {
            seq: seq_i64(written.last_seq + 1)?,
            reason: "the event is missing".into(),
        });
    }
    // The entries, folded with the stored borders, must give the stored
    // root: otherwise the tree does not hold the events' leaves.
    let folded = written.root_with(&right, size).map_err(broken_entry)?;
    if folded != root {
        return Err(ExportError::Tree(format!(
            "the events {first}..{last} and the stored borders do not give the stored root \
             of the first {size} events"
        )));
    }
    if let Some(old) = previous_head
        && creditops_audit::merkle::verify_consistency(old.size, size, &old.root, &root, &proof)
            .is_err()
    {
        return Err(ExportError::Tree(format!(
            "the checkpoint of {} events handed out before is not a prefix of today's log",
            old.size
        )));
    }
    let key = keys.signing;
    let checkpoint = key
        .sign_checkpoint(origin, size, &root)
        .map_err(|e| ExportError::Bundle(e.to_string()))?;
    let range = format!("seq {first}..{last}");
    let verifier_key = key.verifier_key();
    let files = bundle_files(
        &BundleParts {
            origin,
            range: &range,
            chain_before,
            right_border: &right,
            checkpoint: &checkpoint,
            previous: previous
                .as_ref()
                .map(|(note, _)| (note.as_str(), proof.as_slice())),
            signing_key: &verifier_key,
            other_keys: keys.retired,
            created_at,
        },
        &written,
    )
    .map_err(|e| ExportError::Bundle(e.to_string()))?;
    let prepared = Prepared {
        files,
        entries_bytes: written.bytes,
        checkpoint: StoredCheckpoint {
            tree_size: size,
            root,
            note: checkpoint,
            signed_at: created_at,
        },
        previous_size: previous_head.map(|old| old.size),
        first_seq: seq_i64(first)?,
        last_seq: seq_i64(last)?,
        tree_size: size,
        root,
        key: verifier_key.to_string(),
    };
    Ok((prepared, written.out))
}

/// A problem the entry writer found: in an entry, a broken log; otherwise
/// an internal error.
fn broken_entry(e: BundleError) -> ExportError {
    match e.seq {
        Some(seq) => ExportError::Broken {
            seq: i64::try_from(seq).unwrap_or(i64::MAX),
            reason: e.reason,
        },
        None => ExportError::Bundle(e.to_string()),
    }
}

fn seq_i64(seq: u64) -> Result<i64, ExportError> {
    i64::try_from(seq).map_err(|_| ExportError::Usage(format!("sequence {seq} is too large")))
}

/// Up to `limit` (at most a page) linked events after `after`.
async fn events_page(
    tx: &mut dyn Tx,
    after: i64,
    limit: u64,
) -> Result<Vec<StoredAuditEvent>, ExportError> {
    Ok(tx
        .audit_events(&AuditFilter {
            after_seq: Some(after),
            limit: u32::try_from(limit).unwrap_or(PAGE).min(PAGE),
            ..AuditFilter::default()
        })
        .await?)
}

/// The chain value before event `first`: the genesis value, or the stored
/// chain value of the event before.
async fn chain_before(tx: &mut dyn Tx, origin: &str, first: u64) -> Result<Hash, ExportError> {
    if first == 1 {
        return Ok(chain_genesis(origin));
    }
    let before = seq_i64(first - 1)?;
    let page = events_page(tx, before - 1, 1).await?;
    match page.first() {
        Some(event) if event.seq == before => {
            hash_from_slice(&event.chain_hash).ok_or_else(|| ExportError::Broken {
                seq: before,
                reason: "a stored hash has the wrong length".into(),
            })
        }
        _ => Err(ExportError::Broken {
            seq: before,
            reason: "the event is missing".into(),
        }),
    }
}

fn bundle_entry(event: StoredAuditEvent) -> Result<BundleEntry, ExportError> {
    let broken = |reason: &str| ExportError::Broken {
        seq: event.seq,
        reason: reason.into(),
    };
    let leaf = hash_from_slice(&event.leaf_hash)
        .ok_or_else(|| broken("a stored hash has the wrong length"))?;
    let chain = hash_from_slice(&event.chain_hash)
        .ok_or_else(|| broken("a stored hash has the wrong length"))?;
    let seq = u64::try_from(event.seq).map_err(|_| broken("the sequence number is negative"))?;
    Ok(BundleEntry {
        seq,
        body: event.body,
        leaf,
        chain,
    })
}

/// A2: checks the log against a checkpoint published earlier (signed note +
/// trusted key): the log must still contain that many events and its tree of
/// that size must have the signed root. Truncation or a rewrite of anything
/// the checkpoint covered is detected, even when the remaining chain is intact.
pub fn check_against_checkpoint(
    events: &[LogEntry],
    note: &str,
    trusted: &creditops_audit::VerifierKey,
) -> Result<u64, String> {
    let checkpoint = creditops_audit::parse_and_verify(note, std::slice::from_ref(trusted))
        .map_err(|e| format!("the checkpoint does not verify with the trusted key: {e}"))?;
    let tree = MerkleTree::from_leaves(events.iter().map(|(_, _, leaf, _)| *leaf).collect());
    if tree.size() < checkpoint.size {
        return Err(format!(
            "the log holds {} events but checkpoint {} covered {}: it was truncated",
            tree.size(),
            hex::encode(checkpoint.root),
            checkpoint.size
        ));
    }
    let root = tree.root_at(checkpoint.size).map_err(|e| e.to_string())?;
    if root != checkpoint.root {
        return Err(format!(
            "the first {} events no longer have the signed root: the log was rewritten",
            checkpoint.size
        ));
    }
    Ok(checkpoint.size)
}

/// The bundle as a tar archive under one directory, for download, written
/// into `out`: `prepared.files` and `entries.jsonl` read from `entries`
/// (`prepared.entries_bytes` long), in name order. Entries are regular
/// files, mode 0644, stamped with the bundle's creation time.
pub fn write_tar<W: Write>(
    out: W,
    prepared: &Prepared,
    entries: impl std::io::Read,
    mtime: DateTime<Utc>,
) -> std::io::Result<W> {
    let dir = prepared.dir_name();
    let mut archive = tar::Builder::new(out);
    let mtime = u64::try_from(mtime.timestamp()).unwrap_or(0);
    let header = |size: u64| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header
    };
    let mut entries = Some(entries);
    for (name, bytes) in &prepared.files {
        if name.as_str() > ENTRIES
            && let Some(entries) = entries.take()
        {
            let mut header = header(prepared.entries_bytes);
            archive.append_data(&mut header, format!("{dir}/{ENTRIES}"), entries)?;
        }
        let mut header = header(bytes.len() as u64);
        archive.append_data(&mut header, format!("{dir}/{name}"), bytes.as_slice())?;
    }
    if let Some(entries) = entries {
        let mut header = header(prepared.entries_bytes);
        archive.append_data(&mut header, format!("{dir}/{ENTRIES}"), entries)?;
    }
    archive.into_inner()
}
