//! Export bundles for a regulator (A5): the whole log read and its chain
//! checked (a broken log is never exported), the Merkle tree rebuilt from the
//! stored leaf hashes, a checkpoint signed with the audit key (kept outside
//! the database) and the files of `audit/SPEC.md` built. Shared by the
//! `creditops audit export` command and `POST /v1/exports`; both record the
//! export as an audit event that commits only with the bundle.

use chrono::{DateTime, Utc};
use creditops_audit::export::{BundleEntry, BundleInput, build_bundle};
use creditops_audit::{
    ChainVerifier, Hash, MerkleTree, SigningKey, chain_genesis, hash_from_slice,
};
use creditops_store::{AuditFilter, StoreError, StoredCheckpoint, Tx};
use serde_json::{Value, json};

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
    /// The sequence range to export from `events` (the whole verified log).
    pub fn resolve(&self, events: &[LogEntry]) -> Result<(Option<i64>, Option<i64>), ExportError> {
        let (from, to) = match *self {
            Selection::Seq(first, last) => return Ok((first, last)),
            Selection::Time(None, None) => return Ok((None, None)),
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
        let mut span: Option<(i64, i64)> = None;
        for (seq, body, _, _) in events {
            let stamp: Stamp = serde_json::from_slice(body).map_err(|_| ExportError::Broken {
                seq: *seq,
                reason: "the event has no valid ts".into(),
            })?;
            let inside =
                from.is_none_or(|from| stamp.ts >= from) && to.is_none_or(|to| stamp.ts < to);
            if inside {
                span = Some(span.map_or((*seq, *seq), |(first, _)| (first, *seq)));
            }
        }
        let (first, last) = span
            .ok_or_else(|| ExportError::Usage("no event was recorded in that time range".into()))?;
        Ok((Some(first), Some(last)))
    }
}

/// Reads the whole log in `tx`, checking the chain as it goes; the first bad
/// position is an error.
pub async fn load_verified_log(
    tx: &mut dyn Tx,
    origin: &str,
) -> Result<Vec<LogEntry>, ExportError> {
    load_verified_log_with_progress(tx, origin, &mut |_| {}).await
}

/// [`load_verified_log`], telling `progress` the number of events read so
/// far after each page (for a progress bar).
pub async fn load_verified_log_with_progress(
    tx: &mut dyn Tx,
    origin: &str,
    progress: &mut (dyn FnMut(u64) + Send),
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
        progress(u64::try_from(events.len()).unwrap_or(u64::MAX));
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
pub async fn previous_checkpoint(
    tx: &mut dyn Tx,
    size: u64,
    keys: ExportKeys<'_>,
) -> Result<Option<String>, ExportError> {
    let Some(stored) = tx.latest_checkpoint(size).await? else {
        return Ok(None);
    };
    let verifies = creditops_audit::parse_and_verify(&stored.note, &keys.verifiers()).is_ok();
    Ok(verifies.then_some(stored.note))
}

/// A built bundle and what it covers.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub files: Vec<(String, Vec<u8>)>,
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
}

/// Builds the bundle of events `first..=last` (default: the whole log) from
/// a verified log, with a checkpoint over the whole log signed by `key`.
pub fn prepare(
    events: &[LogEntry],
    origin: &str,
    keys: ExportKeys<'_>,
    range: (Option<i64>, Option<i64>),
    previous: Option<&str>,
    created_at: DateTime<Utc>,
) -> Result<Prepared, ExportError> {
    let (first, last) = range;
    let size = i64::try_from(events.len()).map_err(|_| ExportError::Empty)?;
    if size == 0 {
        return Err(ExportError::Empty);
    }
    let first = first.unwrap_or(1);
    let last = last.unwrap_or(size);
    if first < 1 || last < first || last > size {
        return Err(ExportError::Usage(format!(
            "the range {first}..{last} is not within the log's 1..{size}"
        )));
    }
    let tree = MerkleTree::from_leaves(events.iter().map(|(_, _, leaf, _)| *leaf).collect());
    let tree_size = tree.size();
    let root = tree.root();
    let key = keys.signing;
    let checkpoint = key
        .sign_checkpoint(origin, tree_size, &root)
        .map_err(|e| ExportError::Bundle(e.to_string()))?;
    let index = |seq: i64| usize::try_from(seq - 1).unwrap_or(0);
    let chain_before: Hash = if first == 1 {
        chain_genesis(origin)
    } else {
        events[index(first - 1)].3
    };
    let entries: Vec<BundleEntry> = events[index(first)..=index(last)]
        .iter()
        .map(|(seq, body, leaf, chain)| BundleEntry {
            seq: u64::try_from(*seq).unwrap_or(0),
            body: body.clone(),
            leaf: *leaf,
            chain: *chain,
        })
        .collect();
    let range = format!("seq {first}..{last}");
    let verifier_key = key.verifier_key();
    let files = build_bundle(&BundleInput {
        origin,
        range: &range,
        entries: &entries,
        chain_before,
        tree: &tree,
        checkpoint: &checkpoint,
        previous_checkpoint: previous,
        signing_key: &verifier_key,
        other_keys: keys.retired,
        created_at,
    })
    .map_err(|e| ExportError::Bundle(e.to_string()))?;
    let previous_size = previous
        .and_then(|note| creditops_audit::parse_and_verify(note, &keys.verifiers()).ok())
        .map(|signed| signed.size);
    Ok(Prepared {
        files,
        checkpoint: StoredCheckpoint {
            tree_size,
            root,
            note: checkpoint.clone(),
            signed_at: created_at,
        },
        previous_size,
        first_seq: first,
        last_seq: last,
        tree_size,
        root,
        key: verifier_key.to_string(),
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

/// The bundle as a tar archive under one directory, for download. Entries
/// are regular files, mode 0644, stamped with the bundle's creation time.
pub fn to_tar(
    dir: &str,
    files: &[(String, Vec<u8>)],
    mtime: DateTime<Utc>,
) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    let mtime = u64::try_from(mtime.timestamp()).unwrap_or(0);
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        archive.append_data(&mut header, format!("{dir}/{name}"), bytes.as_slice())?;
    }
    archive.into_inner()
}
