//! What goes into building a bundle and comes out of verifying one: the
//! exported entries and the build input, the report of a successful
//! verification, and the error that names the check that failed first.

use crate::Hash;
use crate::checkpoint::VerifierKey;
use crate::merkle::MerkleTree;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// Which verification step failed. `as_str` values are shared with
/// `verify.py` and the test vectors (`audit/vectors/tampered.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BundleCheck {
    /// `build_bundle` was given inconsistent input.
    Input,
    Files,
    Manifest,
    Keys,
    Checkpoint,
    Signature,
    SignatureFiles,
    Borders,
    Sequence,
    Entry,
    Leaf,
    Chain,
    Body,
    Root,
    Consistency,
    Checksum,
}

impl BundleCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleCheck::Input => "input",
            BundleCheck::Files => "files",
            BundleCheck::Manifest => "manifest",
            BundleCheck::Keys => "keys",
            BundleCheck::Checkpoint => "checkpoint",
            BundleCheck::Signature => "signature",
            BundleCheck::SignatureFiles => "signature-files",
            BundleCheck::Borders => "borders",
            BundleCheck::Sequence => "sequence",
            BundleCheck::Entry => "entry",
            BundleCheck::Leaf => "leaf",
            BundleCheck::Chain => "chain",
            BundleCheck::Body => "body",
            BundleCheck::Root => "root",
            BundleCheck::Consistency => "consistency",
            BundleCheck::Checksum => "checksum",
        }
    }
}

impl fmt::Display for BundleCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found; `seq` is the first bad sequence number when the
/// problem is in an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("bundle check '{check}' failed{}: {reason}", at_seq(.seq))]
pub struct BundleError {
    pub check: BundleCheck,
    pub seq: Option<u64>,
    pub reason: String,
}

fn at_seq(seq: &Option<u64>) -> String {
    seq.map(|s| format!(" at seq {s}")).unwrap_or_default()
}

/// Shorthand for the verifier's many checks.
pub(super) fn err(check: BundleCheck, seq: Option<u64>, reason: String) -> BundleError {
    BundleError::new(check, seq, reason)
}

impl BundleError {
    pub(super) fn new(check: BundleCheck, seq: Option<u64>, reason: impl Into<String>) -> Self {
        Self {
            check,
            seq,
            reason: reason.into(),
        }
    }
}

/// One stored audit event as exported: the exact stored body bytes and the
/// stored leaf and chain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    pub seq: u64,
    pub body: Vec<u8>,
    pub leaf: Hash,
    pub chain: Hash,
}

/// Everything [`super::build_bundle`] needs.
#[derive(Debug, Clone, Copy)]
pub struct BundleInput<'a> {
    pub origin: &'a str,
    /// Human-readable description of the selection (e.g. the requested time
    /// range or case set); informative, covered by `SHA256SUMS` only.
    pub range: &'a str,
    /// Contiguous entries, ascending `seq`, all within the checkpoint.
    pub entries: &'a [BundleEntry],
    /// Chain value before the first entry (`SHA-256(origin)` when it is seq 1).
    pub chain_before: Hash,
    /// The log's Merkle tree with at least the checkpoint's `size` leaves
    /// (leaf index = seq - 1); the border hashes come from it.
    pub tree: &'a MerkleTree,
    /// The signed checkpoint note the entries are proven against.
    pub checkpoint: &'a str,
    /// An earlier checkpoint (e.g. from the previous export); the bundle then
    /// carries the consistency proof from it to `checkpoint`.
    pub previous_checkpoint: Option<&'a str>,
    /// The key whose signature goes into `checkpoint.sig` / `public-key.pem`.
    pub signing_key: &'a VerifierKey,
    /// Further keys for `keys.txt` (e.g. a rotated key that signed the
    /// previous checkpoint).
    pub other_keys: &'a [VerifierKey],
    pub created_at: DateTime<Utc>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    pub origin: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: u64,
    /// Checkpoint tree size.
    pub size: u64,
    /// Checkpoint root, hex.
    pub root: String,
    /// Chain value after the last entry, hex (the next export's `chain_before`).
    pub chain_after: String,
    /// Verifier key strings whose checkpoint signatures verified.
    pub signed_by: Vec<String>,
    /// Size of the previous checkpoint proven consistent, if any.
    pub previous_size: Option<u64>,
    /// True when the keys came from the bundle's own `keys.txt` rather than
    /// from the verifier: then compare them with the published keys.
    pub keys_from_bundle: bool,
    /// Files present but not part of the format (e.g. `.DS_Store`); ignored.
    pub ignored_files: Vec<String>,
}
