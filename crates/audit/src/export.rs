//! The regulator export bundle (requirement A5): a self-contained set of
//! files that proves a contiguous range of audit events is exactly what the
//! log holds at a signed checkpoint, checkable offline with `sha256sum`,
//! `openssl` and the published `audit/verify.py`, without our software.
//!
//! [`build_bundle`] produces the files in memory (the caller writes them as a
//! directory or archive); [`verify_bundle`] / [`verify_bundle_with_keys`] check
//! them in the same order as `audit/verify.py` and name the first bad sequence
//! number. The layout is normative in `audit/SPEC.md` ("Export bundle").
//!
//! Verification order, shared with `verify.py` so both report the same
//! failure: files present, manifest, keys, checkpoint signature, the openssl
//! companion files, every entry in order (sequence, leaf, chain, body,
//! inclusion proof), the consistency proof, and finally `SHA256SUMS`. The
//! content checks come before the checksums on purpose: a modified body is
//! reported as "seq N: leaf hash does not match", not only as a changed file.

use crate::checkpoint::{
    Checkpoint, CheckpointError, VerifierKey, parse_and_verify, parse_ed25519_public_key_pem,
    verify_note,
};
use crate::merkle::{MerkleTree, verify_consistency, verify_inclusion};
use crate::{Hash, chain_genesis, chain_next, leaf_hash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// `manifest.json` "format" value.
pub const BUNDLE_FORMAT: &str = "creditops-audit-bundle";
/// `manifest.json` "version" value this code writes and reads.
pub const BUNDLE_VERSION: u64 = 1;

pub const ENTRIES: &str = "entries.jsonl";
pub const PROOFS: &str = "proofs.jsonl";
pub const CHECKPOINT: &str = "checkpoint.txt";
pub const CHECKPOINT_BODY: &str = "checkpoint-body.txt";
pub const CHECKPOINT_SIG: &str = "checkpoint.sig";
pub const PUBLIC_KEY: &str = "public-key.pem";
pub const KEYS: &str = "keys.txt";
pub const MANIFEST: &str = "manifest.json";
pub const PREVIOUS_CHECKPOINT: &str = "previous-checkpoint.txt";
pub const CONSISTENCY: &str = "consistency.json";
pub const SHA256SUMS: &str = "SHA256SUMS";

const REQUIRED_FILES: [&str; 9] = [
    MANIFEST,
    KEYS,
    CHECKPOINT,
    CHECKPOINT_BODY,
    CHECKPOINT_SIG,
    PUBLIC_KEY,
    ENTRIES,
    PROOFS,
    SHA256SUMS,
];
const OPTIONAL_FILES: [&str; 2] = [PREVIOUS_CHECKPOINT, CONSISTENCY];

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
    Sequence,
    Entry,
    Leaf,
    Chain,
    Body,
    Proof,
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
            BundleCheck::Sequence => "sequence",
            BundleCheck::Entry => "entry",
            BundleCheck::Leaf => "leaf",
            BundleCheck::Chain => "chain",
            BundleCheck::Body => "body",
            BundleCheck::Proof => "proof",
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

impl BundleError {
    fn new(check: BundleCheck, seq: Option<u64>, reason: impl Into<String>) -> Self {
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

/// Everything [`build_bundle`] needs.
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
    /// (leaf index = seq - 1).
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u64,
    origin: String,
    range: String,
    first_seq: u64,
    last_seq: u64,
    size: u64,
    created_at: String,
    chain_before: String,
    chain_after: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    seq: u64,
    body_b64: String,
    leaf: String,
    chain: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofLine {
    seq: u64,
    proof: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyFile {
    old_size: u64,
    new_size: u64,
    proof: Vec<String>,
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Exactly 64 lower-case hex digits.
fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>, BundleError> {
    let mut out = serde_json::to_vec(value)
        .map_err(|e| BundleError::new(BundleCheck::Input, None, e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes).as_ref())
}

/// Builds the bundle's files, sorted by name, and verifies them before
/// returning (a bundle this function returns passes [`verify_bundle`]).
pub fn build_bundle(input: &BundleInput<'_>) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let bad = |reason: String| BundleError::new(BundleCheck::Input, None, reason);
    let mut keys = vec![input.signing_key.clone()];
    for key in input.other_keys {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    let verified =
        verify_note(input.checkpoint, &keys).map_err(|e| bad(format!("checkpoint: {e}")))?;
    let checkpoint = Checkpoint::from_text(&verified.text).map_err(|e| bad(e.to_string()))?;
    if checkpoint.origin != input.origin {
        return Err(bad(format!(
            "the checkpoint is for origin {:?}, not {:?}",
            checkpoint.origin, input.origin
        )));
    }
    let signature = verified
        .verified_by
        .iter()
        .position(|k| k == input.signing_key)
        .and_then(|i| verified.signatures.get(i))
        .ok_or_else(|| bad("the checkpoint carries no signature by the signing key".to_owned()))?;
    let size = checkpoint.size;
    let root = input
        .tree
        .root_at(size)
        .map_err(|e| bad(format!("tree: {e}")))?;
    if root != checkpoint.root {
        return Err(bad(format!(
            "the checkpoint root does not match the tree of the first {size} leaves"
        )));
    }

    let (Some(first), Some(last)) = (input.entries.first(), input.entries.last()) else {
        return Err(bad("a bundle needs at least one entry".to_owned()));
    };
    let mut entries = Vec::new();
    let mut proofs = Vec::new();
    for entry in input.entries {
        if entry.seq == 0 || entry.seq > size {
            return Err(bad(format!(
                "seq {} is outside the checkpoint (1..={size})",
                entry.seq
            )));
        }
        let proof = input
            .tree
            .inclusion_proof(entry.seq - 1, size)
            .map_err(|e| bad(format!("seq {}: {e}", entry.seq)))?;
        entries.extend(json_line(&EntryLine {
            seq: entry.seq,
            body_b64: BASE64.encode(&entry.body),
            leaf: hex::encode(entry.leaf),
            chain: hex::encode(entry.chain),
        })?);
        proofs.extend(json_line(&ProofLine {
            seq: entry.seq,
            proof: hexes(&proof),
        })?);
    }

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Some(previous) = input.previous_checkpoint {
        let old = parse_and_verify(previous, &keys)
            .map_err(|e| bad(format!("previous checkpoint: {e}")))?;
        if old.origin != checkpoint.origin {
            return Err(bad(
                "the previous checkpoint is for another origin".to_owned()
            ));
        }
        let old_root = input
            .tree
            .root_at(old.size)
            .map_err(|e| bad(format!("previous checkpoint: {e}")))?;
        // A signed earlier head that is not a prefix of today's tree means
        // the log was rewritten: refuse to export rather than hide it.
        if old.size > size || old_root != old.root {
            return Err(bad(format!(
                "the previous checkpoint (size {}) is not a prefix of the log at size {size}",
                old.size
            )));
        }
        let proof = input
            .tree
            .consistency_proof(old.size, size)
            .map_err(|e| bad(format!("consistency: {e}")))?;
        files.insert(PREVIOUS_CHECKPOINT.into(), previous.as_bytes().to_vec());
        files.insert(
            CONSISTENCY.into(),
            json_line(&ConsistencyFile {
                old_size: old.size,
                new_size: size,
                proof: hexes(&proof),
            })?,
        );
    }

    let manifest = Manifest {
        format: BUNDLE_FORMAT.to_owned(),
        version: BUNDLE_VERSION,
        origin: input.origin.to_owned(),
        range: input.range.to_owned(),
        first_seq: first.seq,
        last_seq: last.seq,
        size,
        created_at: input.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        chain_before: hex::encode(input.chain_before),
        chain_after: hex::encode(last.chain),
    };
    let mut manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| bad(format!("manifest: {e}")))?;
    manifest_bytes.push(b'\n');

    let keys_txt: String = keys.iter().map(|k| format!("{k}\n")).collect();
    files.insert(MANIFEST.into(), manifest_bytes);
    files.insert(KEYS.into(), keys_txt.into_bytes());
    files.insert(CHECKPOINT.into(), input.checkpoint.as_bytes().to_vec());
    files.insert(CHECKPOINT_BODY.into(), verified.text.as_bytes().to_vec());
    files.insert(CHECKPOINT_SIG.into(), signature.clone());
    files.insert(
        PUBLIC_KEY.into(),
        input.signing_key.public_key_pem().into_bytes(),
    );
    files.insert(ENTRIES.into(), entries);
    files.insert(PROOFS.into(), proofs);
    let sums: String = files
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect();
    files.insert(SHA256SUMS.into(), sums.into_bytes());

    let files: Vec<(String, Vec<u8>)> = files.into_iter().collect();
    // Never hand out a bundle that the published verifier would reject; the
    // error names the bad entry of the input (e.g. a stored leaf that does
    // not match its body).
    verify_bundle_with_keys(&files, &keys)?;
    Ok(files)
}

/// Verifies a bundle with the keys listed in its own `keys.txt`. That proves
/// integrity and internal consistency; authenticity additionally needs the
/// keys compared with the published ones (or [`verify_bundle_with_keys`]).
pub fn verify_bundle(files: &[(String, Vec<u8>)]) -> Result<BundleReport, BundleError> {
    verify(files, None)
}

/// Verifies a bundle against keys the verifier already trusts.
pub fn verify_bundle_with_keys(
    files: &[(String, Vec<u8>)],
    trusted_keys: &[VerifierKey],
) -> Result<BundleReport, BundleError> {
    verify(files, Some(trusted_keys))
}

/// Reads a bundle directory's files (not recursive; symbolic links are
/// followed, subdirectories skipped, as `verify.py` does). A helper for the
/// CLI and tests; the verification itself does no IO.
pub fn read_bundle_dir(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !std::fs::metadata(entry.path())?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read(entry.path())?));
    }
    files.sort();
    Ok(files)
}

fn text<'a>(check: BundleCheck, name: &str, bytes: &'a [u8]) -> Result<&'a str, BundleError> {
    std::str::from_utf8(bytes)
        .map_err(|_| BundleError::new(check, None, format!("{name} is not UTF-8 text")))
}

/// Lines of a JSON-lines file: every line ends with '\n', none is empty.
fn jsonl_lines<'a>(
    check: BundleCheck,
    name: &str,
    bytes: &'a [u8],
) -> Result<Vec<&'a str>, BundleError> {
    let content = text(check, name, bytes)?;
    if content.is_empty() {
        return Ok(Vec::new());
    }
    let body = content.strip_suffix('\n').ok_or_else(|| {
        BundleError::new(check, None, format!("{name} does not end with a newline"))
    })?;
    Ok(body.split('\n').collect())
}

fn parse_proof(hashes: &[String]) -> Option<Vec<Hash>> {
    hashes.iter().map(|h| parse_hash(h)).collect()
}

fn verify(
    files: &[(String, Vec<u8>)],
    trusted: Option<&[VerifierKey]>,
) -> Result<BundleReport, BundleError> {
    use BundleCheck as C;
    let err = |check: C, seq: Option<u64>, reason: String| BundleError::new(check, seq, reason);

    // Files.
    let mut map: BTreeMap<&str, &[u8]> = BTreeMap::new();
    let mut ignored_files = Vec::new();
    for (name, bytes) in files {
        if map.insert(name.as_str(), bytes.as_slice()).is_some() {
            return Err(err(C::Files, None, format!("{name} appears twice")));
        }
        if !REQUIRED_FILES.contains(&name.as_str()) && !OPTIONAL_FILES.contains(&name.as_str()) {
            ignored_files.push(name.clone());
        }
    }
    for name in REQUIRED_FILES {
        if !map.contains_key(name) {
            return Err(err(C::Files, None, format!("{name} is missing")));
        }
    }
    let file = |name: &str| map.get(name).copied().unwrap_or_default();

    // Manifest.
    let manifest: Manifest = serde_json::from_slice(file(MANIFEST))
        .map_err(|e| err(C::Manifest, None, format!("{MANIFEST}: {e}")))?;
    if manifest.format != BUNDLE_FORMAT || manifest.version != BUNDLE_VERSION {
        return Err(err(
            C::Manifest,
            None,
            format!(
                "unsupported format {:?} version {} (expected {BUNDLE_FORMAT:?} version {BUNDLE_VERSION})",
                manifest.format, manifest.version
            ),
        ));
    }
    let (first_seq, last_seq, size) = (manifest.first_seq, manifest.last_seq, manifest.size);
    if first_seq == 0 || last_seq < first_seq || last_seq > size {
        return Err(err(
            C::Manifest,
            None,
            format!("range {first_seq}..={last_seq} is not within 1..={size}"),
        ));
    }
    let chain_before = parse_hash(&manifest.chain_before).ok_or_else(|| {
        err(
            C::Manifest,
            None,
            "chain_before is not 64 hex digits".into(),
        )
    })?;
    let chain_after = parse_hash(&manifest.chain_after)
        .ok_or_else(|| err(C::Manifest, None, "chain_after is not 64 hex digits".into()))?;

    // Keys.
    let mut bundle_keys = Vec::new();
    for (i, line) in text(C::Keys, KEYS, file(KEYS))?.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let key = VerifierKey::parse(line)
            .map_err(|e| err(C::Keys, None, format!("{KEYS} line {}: {e}", i + 1)))?;
        bundle_keys.push(key);
    }
    if bundle_keys.is_empty() {
        return Err(err(C::Keys, None, format!("{KEYS} lists no key")));
    }
    let keys = trusted.unwrap_or(&bundle_keys);

    // Checkpoint.
    let note = text(C::Checkpoint, CHECKPOINT, file(CHECKPOINT))?;
    let verified = verify_note(note, keys).map_err(|e| match e {
        CheckpointError::NoKnownSignature | CheckpointError::BadSignature { .. } => {
            err(C::Signature, None, format!("{CHECKPOINT}: {e}"))
        }
        _ => err(C::Checkpoint, None, format!("{CHECKPOINT}: {e}")),
    })?;
    let checkpoint = Checkpoint::from_text(&verified.text)
        .map_err(|e| err(C::Checkpoint, None, format!("{CHECKPOINT}: {e}")))?;
    if checkpoint.origin != manifest.origin {
        return Err(err(
            C::Checkpoint,
            None,
            format!(
                "checkpoint origin {:?} differs from manifest origin {:?}",
                checkpoint.origin, manifest.origin
            ),
        ));
    }
    if checkpoint.size != size {
        return Err(err(
            C::Checkpoint,
            None,
            format!(
                "checkpoint size {} differs from manifest size {size}",
                checkpoint.size
            ),
        ));
    }

    // The files for `openssl pkeyutl -verify` must say the same as the note.
    if file(CHECKPOINT_BODY) != verified.text.as_bytes() {
        return Err(err(
            C::SignatureFiles,
            None,
            format!("{CHECKPOINT_BODY} is not the signed text of {CHECKPOINT}"),
        ));
    }
    let pem = text(C::SignatureFiles, PUBLIC_KEY, file(PUBLIC_KEY))?;
    let public_key = parse_ed25519_public_key_pem(pem)
        .map_err(|e| err(C::SignatureFiles, None, format!("{PUBLIC_KEY}: {e}")))?;
    let pem_key = keys
        .iter()
        .find(|k| *k.public_key() == public_key)
        .ok_or_else(|| {
            err(
                C::SignatureFiles,
                None,
                format!("{PUBLIC_KEY} is not one of the verifier keys"),
            )
        })?;
    if !pem_key.verify(verified.text.as_bytes(), file(CHECKPOINT_SIG)) {
        return Err(err(
            C::SignatureFiles,
            None,
            format!(
                "{CHECKPOINT_SIG} is not a valid signature of {CHECKPOINT_BODY} by {PUBLIC_KEY}"
            ),
        ));
    }

    // Entries, in order, with their inclusion proofs.
    let origin = manifest.origin.as_str();
    if first_seq == 1 && chain_before != chain_genesis(origin) {
        return Err(err(
            C::Chain,
            Some(1),
            "chain_before is not SHA-256(origin) although the bundle starts at seq 1".into(),
        ));
    }
    let entry_lines = jsonl_lines(C::Entry, ENTRIES, file(ENTRIES))?;
    let proof_lines = jsonl_lines(C::Proof, PROOFS, file(PROOFS))?;
    let mut previous = chain_before;
    let mut expected = first_seq;
    for (i, line) in entry_lines.iter().enumerate() {
        if expected > last_seq {
            return Err(err(
                C::Sequence,
                Some(expected),
                format!("{ENTRIES} has entries after last_seq {last_seq}"),
            ));
        }
        let at = Some(expected);
        let entry: EntryLine = serde_json::from_str(line)
            .map_err(|e| err(C::Entry, at, format!("{ENTRIES} line {}: {e}", i + 1)))?;
        if entry.seq != expected {
            let what = if entry.seq > expected {
                "events are missing"
            } else {
                "events are out of order or repeated"
            };
            return Err(err(
                C::Sequence,
                Some(expected.min(entry.seq)),
                format!("expected seq {expected}, found {}: {what}", entry.seq),
            ));
        }
        let seq = entry.seq;
        let at = Some(seq);
        let body = BASE64
            .decode(&entry.body_b64)
            .map_err(|_| err(C::Entry, at, "body_b64 is not standard base64".into()))?;
        let stored_leaf = parse_hash(&entry.leaf)
            .ok_or_else(|| err(C::Entry, at, "leaf is not 64 hex digits".into()))?;
        let stored_chain = parse_hash(&entry.chain)
            .ok_or_else(|| err(C::Entry, at, "chain is not 64 hex digits".into()))?;
        let leaf = leaf_hash(&body);
        if leaf != stored_leaf {
            return Err(err(
                C::Leaf,
                at,
                "leaf hash does not match the body (body modified)".into(),
            ));
        }
        let chain = chain_next(&previous, &leaf);
        if chain != stored_chain {
            return Err(err(
                C::Chain,
                at,
                "chain value does not match (event reordered, inserted, removed or chain edited)"
                    .into(),
            ));
        }
        if !matches!(
            serde_json::from_slice::<serde_json::Value>(&body),
            Ok(serde_json::Value::Object(_))
        ) {
            return Err(err(C::Body, at, "body is not a JSON object".into()));
        }
        let proof_line = proof_lines
            .get(i)
            .ok_or_else(|| err(C::Proof, at, format!("{PROOFS} has no line for this seq")))?;
        let proof: ProofLine = serde_json::from_str(proof_line)
            .map_err(|e| err(C::Proof, at, format!("{PROOFS} line {}: {e}", i + 1)))?;
        if proof.seq != seq {
            return Err(err(
                C::Proof,
                at,
                format!("{PROOFS} line {} is for seq {}", i + 1, proof.seq),
            ));
        }
        let hashes = parse_proof(&proof.proof)
            .ok_or_else(|| err(C::Proof, at, "a proof hash is not 64 hex digits".into()))?;
        verify_inclusion(&leaf, seq - 1, size, &hashes, &checkpoint.root).map_err(|e| {
            err(
                C::Proof,
                at,
                format!("inclusion proof against the checkpoint fails: {e}"),
            )
        })?;
        previous = chain;
        expected += 1;
    }
    if expected <= last_seq {
        let reason = if entry_lines.is_empty() {
            format!("{ENTRIES} is empty")
        } else {
            format!(
                "{ENTRIES} ends at seq {}, the manifest range ends at {last_seq} (truncated)",
                expected - 1
            )
        };
        return Err(err(C::Sequence, Some(expected), reason));
    }
    if proof_lines.len() > entry_lines.len() {
        return Err(err(
            C::Proof,
            None,
            format!("{PROOFS} has more lines than {ENTRIES}"),
        ));
    }
    if previous != chain_after {
        return Err(err(
            C::Manifest,
            None,
            "chain_after is not the chain value of the last entry".into(),
        ));
    }

    // Consistency with an earlier checkpoint.
    let previous_size = match (map.get(PREVIOUS_CHECKPOINT), map.get(CONSISTENCY)) {
        (None, None) => None,
        (Some(previous_note), Some(consistency)) => {
            let c = |reason: String| err(C::Consistency, None, reason);
            let note = text(C::Consistency, PREVIOUS_CHECKPOINT, previous_note)?;
            let old = parse_and_verify(note, keys)
                .map_err(|e| c(format!("{PREVIOUS_CHECKPOINT}: {e}")))?;
            if old.origin != checkpoint.origin {
                return Err(c(format!("{PREVIOUS_CHECKPOINT} is for another origin")));
            }
            let proof: ConsistencyFile = serde_json::from_slice(consistency)
                .map_err(|e| c(format!("{CONSISTENCY}: {e}")))?;
            if proof.old_size != old.size || proof.new_size != size {
                return Err(c(format!(
                    "{CONSISTENCY} is for sizes {} -> {}, the checkpoints are {} -> {size}",
                    proof.old_size, proof.new_size, old.size
                )));
            }
            let hashes = parse_proof(&proof.proof)
                .ok_or_else(|| c("a proof hash is not 64 hex digits".into()))?;
            verify_consistency(old.size, size, &old.root, &checkpoint.root, &hashes).map_err(
                |e| {
                    c(format!(
                        "the checkpoint of size {size} does not extend the previous one of size {}: {e}",
                        old.size
                    ))
                },
            )?;
            Some(old.size)
        }
        (Some(_), None) => {
            return Err(err(
                C::Files,
                None,
                format!("{PREVIOUS_CHECKPOINT} is present without {CONSISTENCY}"),
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                C::Files,
                None,
                format!("{CONSISTENCY} is present without {PREVIOUS_CHECKPOINT}"),
            ));
        }
    };

    // Checksums: every format file but SHA256SUMS itself, exactly once.
    let sums = text(C::Checksum, SHA256SUMS, file(SHA256SUMS))?;
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, line) in sums.lines().enumerate() {
        let bad_line = || {
            err(
                C::Checksum,
                None,
                format!("{SHA256SUMS} line {} is malformed", i + 1),
            )
        };
        let (hash, name) = line.split_at_checked(64).ok_or_else(bad_line)?;
        let name = name
            .strip_prefix("  ")
            .or_else(|| name.strip_prefix(" *"))
            .ok_or_else(bad_line)?;
        parse_hash(hash).ok_or_else(bad_line)?;
        if name == SHA256SUMS || !(REQUIRED_FILES.contains(&name) || OPTIONAL_FILES.contains(&name))
        {
            return Err(err(
                C::Checksum,
                None,
                format!("{SHA256SUMS} lists {name:?}, which is not a bundle file"),
            ));
        }
        if listed.insert(name, hash).is_some() {
            return Err(err(
                C::Checksum,
                None,
                format!("{SHA256SUMS} lists {name} twice"),
            ));
        }
    }
    for (name, bytes) in &map {
        if *name == SHA256SUMS || ignored_files.iter().any(|f| f == name) {
            continue;
        }
        match listed.get(name) {
            None => {
                return Err(err(
                    C::Checksum,
                    None,
                    format!("{name} is not listed in {SHA256SUMS}"),
                ));
            }
            Some(hash) if *hash != sha256_hex(bytes) => {
                return Err(err(
                    C::Checksum,
                    None,
                    format!("{name}: SHA-256 does not match {SHA256SUMS}"),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(name) = listed.keys().find(|name| !map.contains_key(*name)) {
        return Err(err(
            C::Checksum,
            None,
            format!("{name} is listed in {SHA256SUMS} but missing"),
        ));
    }

    Ok(BundleReport {
        origin: manifest.origin,
        first_seq,
        last_seq,
        entries: last_seq - first_seq + 1,
        size,
        root: hex::encode(checkpoint.root),
        chain_after: hex::encode(previous),
        signed_by: verified
            .verified_by
            .iter()
            .map(ToString::to_string)
            .collect(),
        previous_size,
        keys_from_bundle: trusted.is_none(),
        ignored_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SigningKey;
    use chrono::TimeZone;

    fn key(seed: u8) -> SigningKey {
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&[seed; 32]);
        SigningKey::from_pkcs8("example.test/log", &pkcs8).unwrap()
    }

    struct Log {
        entries: Vec<BundleEntry>,
        tree: MerkleTree,
    }

    fn log(n: u64) -> Log {
        let mut prev = chain_genesis("example.test/log");
        let mut entries = Vec::new();
        let mut tree = MerkleTree::new();
        for seq in 1..=n {
            let body = format!(r#"{{"n":{seq}}}"#).into_bytes();
            let leaf = leaf_hash(&body);
            prev = chain_next(&prev, &leaf);
            tree.push(leaf);
            entries.push(BundleEntry {
                seq,
                body,
                leaf,
                chain: prev,
            });
        }
        Log { entries, tree }
    }

    fn bundle(
        log: &Log,
        from: usize,
        to: usize,
        size: u64,
        prev: Option<u64>,
    ) -> Vec<(String, Vec<u8>)> {
        let k = key(1);
        let note = k
            .sign_checkpoint("example.test/log", size, &log.tree.root_at(size).unwrap())
            .unwrap();
        let prev_note = prev.map(|s| {
            k.sign_checkpoint("example.test/log", s, &log.tree.root_at(s).unwrap())
                .unwrap()
        });
        let chain_before = if from == 1 {
            chain_genesis("example.test/log")
        } else {
            log.entries[from - 2].chain
        };
        build_bundle(&BundleInput {
            origin: "example.test/log",
            range: "test",
            entries: &log.entries[from - 1..to],
            chain_before,
            tree: &log.tree,
            checkpoint: &note,
            previous_checkpoint: prev_note.as_deref(),
            signing_key: &k.verifier_key(),
            other_keys: &[],
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        })
        .unwrap()
    }

    #[test]
    fn bundles_for_every_range_verify() {
        let l = log(9);
        for size in 1..=9u64 {
            for from in 1..=size as usize {
                for to in from..=size as usize {
                    let files = bundle(&l, from, to, size, Some(size / 2));
                    let report = verify_bundle(&files).unwrap();
                    assert_eq!(
                        (report.first_seq, report.last_seq),
                        (from as u64, to as u64)
                    );
                    assert_eq!(report.previous_size, Some(size / 2));
                    let trusted =
                        verify_bundle_with_keys(&files, &[key(1).verifier_key()]).unwrap();
                    assert!(!trusted.keys_from_bundle);
                    assert_eq!(
                        verify_bundle_with_keys(&files, &[key(2).verifier_key()])
                            .unwrap_err()
                            .check,
                        BundleCheck::Signature
                    );
                }
            }
        }
    }

    #[test]
    fn builder_refuses_inconsistent_input() {
        let l = log(6);
        let k = key(1);
        let note = k
            .sign_checkpoint("example.test/log", 5, &l.tree.root_at(5).unwrap())
            .unwrap();
        let vk = k.verifier_key();
        let base = BundleInput {
            origin: "example.test/log",
            range: "test",
            entries: &l.entries[1..4],
            chain_before: l.entries[0].chain,
            tree: &l.tree,
            checkpoint: &note,
            previous_checkpoint: None,
            signing_key: &vk,
            other_keys: &[],
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        };
        assert!(build_bundle(&base).is_ok());
        let e = build_bundle(&BundleInput {
            entries: &l.entries[1..6],
            ..base
        })
        .unwrap_err();
        assert_eq!(e.check, BundleCheck::Input);
        let e = build_bundle(&BundleInput {
            entries: &[],
            ..base
        })
        .unwrap_err();
        assert_eq!(e.check, BundleCheck::Input);
        let e = build_bundle(&BundleInput {
            origin: "other",
            ..base
        })
        .unwrap_err();
        assert_eq!(e.check, BundleCheck::Input);
        let stranger = key(2).verifier_key();
        let e = build_bundle(&BundleInput {
            signing_key: &stranger,
            ..base
        })
        .unwrap_err();
        assert_eq!(e.check, BundleCheck::Input);
        // Wrong chain_before: the final verification names the first entry.
        let e = build_bundle(&BundleInput {
            chain_before: [0; 32],
            ..base
        })
        .unwrap_err();
        assert_eq!((e.check, e.seq), (BundleCheck::Chain, Some(2)));
        // A stored leaf that does not match its body.
        let mut bad = l.entries[1..4].to_vec();
        bad[1].body = br#"{"n":99}"#.to_vec();
        let e = build_bundle(&BundleInput {
            entries: &bad,
            ..base
        })
        .unwrap_err();
        assert_eq!((e.check, e.seq), (BundleCheck::Leaf, Some(3)));
        // A previous checkpoint from a forked log.
        let forked = k.sign_checkpoint("example.test/log", 3, &[9; 32]).unwrap();
        let e = build_bundle(&BundleInput {
            previous_checkpoint: Some(&forked),
            ..base
        })
        .unwrap_err();
        assert!(e.reason.contains("not a prefix"), "{e}");
        // A checkpoint whose root is not the tree's.
        let wrong = k.sign_checkpoint("example.test/log", 5, &[9; 32]).unwrap();
        let e = build_bundle(&BundleInput {
            checkpoint: &wrong,
            ..base
        })
        .unwrap_err();
        assert_eq!(e.check, BundleCheck::Input);
    }

    fn replace(files: &mut [(String, Vec<u8>)], name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let entry = files.iter_mut().find(|(n, _)| n == name).unwrap();
        f(&mut entry.1);
    }

    #[test]
    fn structural_damage_is_reported() {
        let l = log(5);
        let good = bundle(&l, 2, 4, 5, None);
        let check = |files: &[(String, Vec<u8>)]| {
            let e = verify_bundle(files).unwrap_err();
            (e.check, e.seq)
        };
        let without = |name: &str| -> Vec<(String, Vec<u8>)> {
            good.iter().filter(|(n, _)| n != name).cloned().collect()
        };
        assert_eq!(check(&without(PROOFS)), (BundleCheck::Files, None));
        let mut dup = good.clone();
        dup.push(good[0].clone());
        assert_eq!(check(&dup), (BundleCheck::Files, None));
        let mut extra = good.clone();
        extra.push((".DS_Store".into(), vec![0]));
        assert_eq!(verify_bundle(&extra).unwrap().ignored_files, [".DS_Store"]);
        let mut half = good.clone();
        half.push((CONSISTENCY.into(), b"{}".to_vec()));
        assert_eq!(check(&half), (BundleCheck::Files, None));

        let mut f = good.clone();
        replace(&mut f, MANIFEST, |m| *m = b"{}".to_vec());
        assert_eq!(check(&f), (BundleCheck::Manifest, None));
        let mut f = good.clone();
        replace(&mut f, KEYS, |k| k.clear());
        assert_eq!(check(&f), (BundleCheck::Keys, None));
        let mut f = good.clone();
        replace(&mut f, CHECKPOINT_BODY, |b| b.push(b'x'));
        assert_eq!(check(&f), (BundleCheck::SignatureFiles, None));
        let mut f = good.clone();
        replace(&mut f, CHECKPOINT_SIG, |s| s[0] ^= 1);
        assert_eq!(check(&f), (BundleCheck::SignatureFiles, None));
        let mut f = good.clone();
        replace(&mut f, PUBLIC_KEY, |p| {
            *p = key(3).verifier_key().public_key_pem().into_bytes()
        });
        assert_eq!(check(&f), (BundleCheck::SignatureFiles, None));
        let mut f = good.clone();
        replace(&mut f, ENTRIES, |e| {
            e.pop();
        });
        assert_eq!(check(&f), (BundleCheck::Entry, None));
        let mut f = good.clone();
        replace(&mut f, ENTRIES, |e| e.extend_from_slice(b"{}\n"));
        assert_eq!(check(&f), (BundleCheck::Sequence, Some(5)));
        let mut f = good.clone();
        replace(&mut f, ENTRIES, |e| e.clear());
        assert_eq!(check(&f), (BundleCheck::Sequence, Some(2)));
        let mut f = good.clone();
        replace(&mut f, PROOFS, |p| p.extend_from_slice(b"{}\n"));
        assert_eq!(check(&f), (BundleCheck::Proof, None));
        let mut f = good.clone();
        replace(&mut f, SHA256SUMS, |s| s.extend_from_slice(b"garbage\n"));
        assert_eq!(check(&f), (BundleCheck::Checksum, None));
        let mut f = good.clone();
        replace(&mut f, SHA256SUMS, |s| {
            let text = String::from_utf8(s.clone()).unwrap();
            *s = text
                .lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes();
        });
        assert_eq!(check(&f), (BundleCheck::Checksum, None));
        // Binary-mode lines (" *name") are accepted like sha256sum does.
        let mut f = good.clone();
        replace(&mut f, SHA256SUMS, |s| {
            *s = String::from_utf8(s.clone())
                .unwrap()
                .replace("  ", " *")
                .into_bytes();
        });
        assert!(verify_bundle(&f).is_ok());
    }
}
