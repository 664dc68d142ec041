//! `creditops audit export`: a self-contained, signed bundle of the audit log
//! (A5) that a regulator verifies offline with `sha256sum`, `openssl` and
//! `audit/verify.py`, without this software. The layout is specified in
//! `audit/SPEC.md`.
//!
//! The whole log is read and its chain checked first (a broken log is never
//! exported), the Merkle tree is rebuilt from the stored leaf hashes, the
//! checkpoint is signed with the audit key (kept outside the database), and
//! the export itself is recorded as an audit event that commits only if the
//! bundle was written.

use chrono::Utc;
use creditops_audit::export::{BundleEntry, BundleInput, build_bundle};
use creditops_audit::{
    AuditRecord, ChainVerifier, Hash, MerkleTree, Outcome, SigningKey, chain_genesis,
    hash_from_slice,
};
use creditops_store::{AuditFilter, Store, StoreError, append_record};
use std::path::Path;

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
    #[error("could not write the bundle: {0}")]
    Io(#[from] std::io::Error),
}

/// What an export produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub first_seq: i64,
    pub last_seq: i64,
    pub tree_size: u64,
    pub files: usize,
    pub key: String,
}

/// Exports events `first..=last` (default: the whole log) into `out`, which
/// must not exist yet or be empty.
pub async fn export(
    store: &dyn Store,
    origin: &str,
    key: &SigningKey,
    out: &Path,
    first: Option<i64>,
    last: Option<i64>,
) -> Result<ExportReport, ExportError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ExportError::Usage(format!(
            "{} exists and is not empty; choose a new directory",
            out.display()
        )));
    }
    let events = load_verified_log(store, origin).await?;
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
        previous_checkpoint: None,
        signing_key: &verifier_key,
        other_keys: &[],
        created_at: Utc::now(),
    })
    .map_err(|e| ExportError::Bundle(e.to_string()))?;

    // The export is audited (A5): the event commits only with the bundle.
    let mut tx = store.begin().await?;
    let mut record = AuditRecord::new("cli", "audit.exported", Outcome::Ok, Utc::now());
    record.data = serde_json::json!({
        "first_seq": first,
        "last_seq": last,
        "tree_size": tree_size,
        "root": hex::encode(root),
        "key": verifier_key.to_string(),
    });
    append_record(tx.as_mut(), &record).await?;
    if let Err(e) = write_files(out, &files) {
        let _ = std::fs::remove_dir_all(out);
        return Err(e.into());
    }
    if let Err(e) = tx.commit().await {
        let _ = std::fs::remove_dir_all(out);
        return Err(e.into());
    }
    Ok(ExportReport {
        first_seq: first,
        last_seq: last,
        tree_size,
        files: files.len(),
        key: verifier_key.to_string(),
    })
}

/// One stored event: seq, exact body bytes, leaf hash, chain hash.
pub type LogEntry = (i64, Vec<u8>, Hash, Hash);

/// Reads the whole log in one read transaction, checking the chain as it
/// goes; the first bad position is an error.
pub async fn load_verified_log(
    store: &dyn Store,
    origin: &str,
) -> Result<Vec<LogEntry>, ExportError> {
    let mut tx = store.begin_read().await?;
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
    drop(tx);
    Ok(events)
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

fn write_files(out: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for (name, bytes) in files {
        std::fs::write(out.join(name), bytes)?;
    }
    Ok(())
}
