//! The regulator export bundle (requirement A5): a self-contained set of
//! files that proves a contiguous range of audit events is exactly what the
//! log holds at a signed checkpoint, checkable offline with `sha256sum`,
//! `openssl` and the published `audit/verify.py`, without our software.
//!
//! [`build_bundle`] produces the files in memory (the caller writes them as a
//! directory or archive); [`verify_bundle`] / [`verify_bundle_with_keys`] check
//! them in the same order as `audit/verify.py` and name the first bad sequence
//! number. The layout is normative in `audit/SPEC.md` ("Export bundle",
//! format version 2).
//!
//! Verification order, shared with `verify.py` so both report the same
//! failure: files present, manifest, keys, checkpoint signature, the openssl
//! companion files, the border hashes, every entry in order (sequence, leaf,
//! chain, body), the Merkle root recomputed from left border + leaves + right
//! border, the consistency proof, and finally `SHA256SUMS`. The content
//! checks come before the checksums on purpose: a modified body is reported
//! as "seq N: leaf hash does not match", not only as a changed file.
//!
//! Speed: the verifier streams once over `entries.jsonl` with a positional
//! parse of its fixed line shape, keeps only the O(log n) compact range of
//! the tree, and hashes the files for `SHA256SUMS` on a second thread while
//! the entries are checked.

use crate::checkpoint::{
    Checkpoint, CheckpointError, VerifierKey, parse_and_verify, parse_ed25519_public_key_pem,
    verify_note,
};
use crate::merkle::{CompactRange, MerkleTree, compact_range_nodes, verify_consistency};
use crate::{Hash, chain_genesis, chain_next, json, leaf_hash};
use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest::{Context, SHA256, digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// `manifest.json` "format" value.
pub const BUNDLE_FORMAT: &str = "creditops-audit-bundle";
/// `manifest.json` "version" value this code writes and reads.
pub const BUNDLE_VERSION: u64 = 2;

pub const ENTRIES: &str = "entries.jsonl";
pub const BORDERS: &str = "borders.json";
pub const CHECKPOINT: &str = "checkpoint.txt";
pub const CHECKPOINT_BODY: &str = "checkpoint-body.txt";
pub const CHECKPOINT_SIG: &str = "checkpoint.sig";
pub const PUBLIC_KEY: &str = "public-key.pem";
pub const KEYS: &str = "keys.txt";
pub const MANIFEST: &str = "manifest.json";
pub const PREVIOUS_CHECKPOINT: &str = "previous-checkpoint.txt";
pub const CONSISTENCY: &str = "consistency.json";
/// Plain-text instructions for the recipient (informative; covered by
/// `SHA256SUMS` like every other file).
pub const RECIPIENT_README: &str = "README.txt";
pub const SHA256SUMS: &str = "SHA256SUMS";

const REQUIRED_FILES: [&str; 9] = [
    MANIFEST,
    KEYS,
    CHECKPOINT,
    CHECKPOINT_BODY,
    CHECKPOINT_SIG,
    PUBLIC_KEY,
    ENTRIES,
    BORDERS,
    SHA256SUMS,
];
const OPTIONAL_FILES: [&str; 3] = [PREVIOUS_CHECKPOINT, CONSISTENCY, RECIPIENT_README];

/// What the recipient of a bundle reads first: how to check it without our
/// software (SPEC section 10).
fn recipient_readme(origin: &str, first_seq: u64, last_seq: u64, size: u64) -> String {
    format!(
        "creditops audit export\n\
         ======================\n\n\
         Log {origin}: events {first_seq} to {last_seq} of a log of {size} events, proven\n\
         against the signed checkpoint in checkpoint.txt. Format: audit/SPEC.md,\n\
         bundle version {BUNDLE_VERSION}.\n\n\
         To verify, in this directory:\n\n\
         1. sha256sum -c SHA256SUMS\n\
         2. openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin \\\n\
         \x20    -in checkpoint-body.txt -sigfile checkpoint.sig\n\
         3. Compare the first line of keys.txt with the verifier key the bank\n\
         \x20  published through another channel; call that key KEY.\n\
         4. python3 verify.py . --key KEY\n\
         \x20  (verify.py is audit/verify.py of the creditops source, Python 3.8+,\n\
         \x20  standard library only; it checks every line, leaf, chain value, the\n\
         \x20  Merkle root and the signatures, and names the first bad position.)\n\n\
         entries.jsonl holds one event per line with its exact body; filter it\n\
         by case_id or borrower_id for a single case. Bodies contain no personal\n\
         data: staff and borrowers appear by id only.\n"
    )
}

fn is_format_file(name: &str) -> bool {
    REQUIRED_FILES.contains(&name) || OPTIONAL_FILES.contains(&name)
}

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

/// `borders.json`: the compact-range borders of the entries' range.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BordersFile {
    left: Vec<String>,
    right: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyFile {
    old_size: u64,
    new_size: u64,
    proof: Vec<String>,
}

// The fixed shape of an `entries.jsonl` line (SPEC 9.2):
// {"seq":<N>,"leaf":"<hex>","chain":"<hex>","body":<body bytes>} LF
const LINE_SEQ: &[u8] = b"{\"seq\":";
const LINE_LEAF: &[u8] = b",\"leaf\":\"";
const LINE_CHAIN: &[u8] = b"\",\"chain\":\"";
const LINE_BODY: &[u8] = b"\",\"body\":";
const LINE_END: &[u8] = b"}";

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Value of each byte as a lower-case hex digit; 0x80 marks "not a digit".
const HEX_VALUE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Exactly 64 lower-case hex digits. Branch-free over the digits: two per
/// entry line, a visible cost with a million lines.
fn parse_hash_bytes(s: &[u8]) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let high = HEX_VALUE[usize::from(pair[0])];
        let low = HEX_VALUE[usize::from(pair[1])];
        invalid |= high | low;
        *byte = high << 4 | low;
    }
    (invalid & 0x80 == 0).then_some(out)
}

fn parse_hash(s: &str) -> Option<Hash> {
    parse_hash_bytes(s.as_bytes())
}

fn parse_hashes(hashes: &[String]) -> Option<Vec<Hash>> {
    hashes.iter().map(|h| parse_hash(h)).collect()
}

/// ASCII decimal without sign or leading zeros, at most `u64::MAX`.
fn parse_seq(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// One parsed `entries.jsonl` line; `body` borrows the exact body bytes.
struct EntryLine<'a> {
    seq: u64,
    leaf: Hash,
    chain: Hash,
    body: &'a [u8],
}

/// The positional parse of the fixed line shape: any other byte sequence
/// (another field, a missing or repeated one, other key order, white space,
/// upper-case hex) is refused, so there are no unknown, missing or duplicate
/// fields to think about.
fn parse_entry_line(line: &[u8]) -> Result<EntryLine<'_>, &'static str> {
    const SHAPE: &str = r#"not of the form {"seq":N,"leaf":"<hex>","chain":"<hex>","body":<body>}"#;
    let rest = line.strip_prefix(LINE_SEQ).ok_or(SHAPE)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = rest.split_at(digits);
    let seq =
        parse_seq(number).ok_or("seq is not a decimal number without leading zeros below 2^64")?;
    let rest = rest.strip_prefix(LINE_LEAF).ok_or(SHAPE)?;
    let (leaf, rest) = rest.split_at_checked(64).ok_or(SHAPE)?;
    let leaf = parse_hash_bytes(leaf).ok_or("leaf is not 64 lower-case hex digits")?;
    let rest = rest.strip_prefix(LINE_CHAIN).ok_or(SHAPE)?;
    let (chain, rest) = rest.split_at_checked(64).ok_or(SHAPE)?;
    let chain = parse_hash_bytes(chain).ok_or("chain is not 64 lower-case hex digits")?;
    let rest = rest.strip_prefix(LINE_BODY).ok_or(SHAPE)?;
    let body = rest.strip_suffix(LINE_END).ok_or(SHAPE)?;
    Ok(EntryLine {
        seq,
        leaf,
        chain,
        body,
    })
}

/// Position of the first LF, eight bytes at a time (a plain byte loop is a
/// visible share of verifying a million entries).
fn find_newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        // Non-zero exactly when some byte of x is zero; the lowest flagged
        // byte is the first LF.
        let hits = x.wrapping_sub(ONES) & !x & (ONES << 7);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let tail = b.get(i..)?;
    tail.iter().position(|&c| c == b'\n').map(|p| i + p)
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
    if first.seq == 0 || last.seq < first.seq || last.seq > size {
        return Err(bad(format!(
            "the entries {}..={} are not within the checkpoint (1..={size})",
            first.seq, last.seq
        )));
    }
    let mut entries = Vec::new();
    for entry in input.entries {
        if entry.seq == 0 || entry.seq > size {
            return Err(bad(format!(
                "seq {} is outside the checkpoint (1..={size})",
                entry.seq
            )));
        }
        // A line holds the body verbatim; RFC 8785 output never contains a
        // raw LF, so a body with one is not a conforming body.
        if entry.body.contains(&b'\n') {
            return Err(BundleError::new(
                BundleCheck::Input,
                Some(entry.seq),
                "the body contains a raw line feed, which canonical (RFC 8785) JSON never does",
            ));
        }
        entries.extend_from_slice(LINE_SEQ);
        entries.extend_from_slice(entry.seq.to_string().as_bytes());
        entries.extend_from_slice(LINE_LEAF);
        entries.extend_from_slice(hex::encode(entry.leaf).as_bytes());
        entries.extend_from_slice(LINE_CHAIN);
        entries.extend_from_slice(hex::encode(entry.chain).as_bytes());
        entries.extend_from_slice(LINE_BODY);
        entries.extend_from_slice(&entry.body);
        entries.extend_from_slice(LINE_END);
        entries.push(b'\n');
    }
    let left = input
        .tree
        .compact_range(0, first.seq - 1)
        .map_err(|e| bad(format!("left border: {e}")))?;
    let right = input
        .tree
        .compact_range(last.seq, size)
        .map_err(|e| bad(format!("right border: {e}")))?;

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
    files.insert(
        RECIPIENT_README.into(),
        recipient_readme(input.origin, first.seq, last.seq, size).into_bytes(),
    );
    files.insert(CHECKPOINT.into(), input.checkpoint.as_bytes().to_vec());
    files.insert(CHECKPOINT_BODY.into(), verified.text.as_bytes().to_vec());
    files.insert(CHECKPOINT_SIG.into(), signature.clone());
    files.insert(
        PUBLIC_KEY.into(),
        input.signing_key.public_key_pem().into_bytes(),
    );
    files.insert(ENTRIES.into(), entries);
    files.insert(
        BORDERS.into(),
        json_line(&BordersFile {
            left: hexes(&left),
            right: hexes(&right),
        })?,
    );
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
    verify(files, None, true)
}

/// Verifies a bundle against keys the verifier already trusts.
pub fn verify_bundle_with_keys(
    files: &[(String, Vec<u8>)],
    trusted_keys: &[VerifierKey],
) -> Result<BundleReport, BundleError> {
    verify(files, Some(trusted_keys), true)
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

type Files<'a> = BTreeMap<&'a str, &'a [u8]>;

fn err(check: BundleCheck, seq: Option<u64>, reason: String) -> BundleError {
    BundleError::new(check, seq, reason)
}

/// `helper_thread: false` does all the work on the calling thread (what
/// happens anyway when no thread can be started; tests compare both).
fn verify(
    files: &[(String, Vec<u8>)],
    trusted: Option<&[VerifierKey]>,
    helper_thread: bool,
) -> Result<BundleReport, BundleError> {
    use BundleCheck as C;

    // Files: each name once, and the manifest first: its version says how
    // to read everything else.
    let mut map: Files<'_> = BTreeMap::new();
    let mut ignored_files = Vec::new();
    for (name, bytes) in files {
        if map.insert(name.as_str(), bytes.as_slice()).is_some() {
            return Err(err(C::Files, None, format!("{name} appears twice")));
        }
        if !is_format_file(name) {
            ignored_files.push(name.clone());
        }
    }
    let manifest_bytes = map
        .get(MANIFEST)
        .ok_or_else(|| err(C::Files, None, format!("{MANIFEST} is missing")))?;
    let manifest = parse_manifest(manifest_bytes)?;
    for name in REQUIRED_FILES {
        if !map.contains_key(name) {
            return Err(err(C::Files, None, format!("{name} is missing")));
        }
    }

    // Two kinds of work do not feed the chain and the tree: the body check
    // of every entry and hashing every file for SHA256SUMS (checked last).
    // Together they cost about as much as leaves, chain and tree, so a second
    // thread does them meanwhile; the results are used in the order of SPEC
    // 9.5. `stop` ends the thread early when an earlier check fails.
    let stop = AtomicBool::new(false);
    let entries = map.get(ENTRIES).copied().unwrap_or_default();
    std::thread::scope(|scope| {
        let (map, stop) = (&map, &stop);
        let (bodies_tx, bodies_rx) = std::sync::mpsc::sync_channel(1);
        let worker = helper_thread
            .then(|| {
                std::thread::Builder::new()
                    .name("bundle-bodies-sums".into())
                    .spawn_scoped(scope, move || {
                        // A closed channel only means the main thread has finished.
                        let _ = bodies_tx.send(first_bad_body(entries, stop));
                        file_digests(map, stop)
                    })
                    .ok()
            })
            .flatten();
        let spawned = worker.is_some();
        let mut bad_body = || {
            let from_worker = if spawned {
                bodies_rx.recv().ok().flatten()
            } else {
                None
            };
            // Without a worker thread, check the bodies here.
            from_worker
                .or_else(|| first_bad_body(entries, stop))
                .flatten()
        };
        let result = verify_contents(map, manifest, trusted, ignored_files, &mut bad_body)
            .and_then(|report| {
                let digests = match worker {
                    Some(handle) => handle.join().ok().flatten(),
                    // No thread available: hash here instead.
                    None => file_digests(map, stop),
                };
                let digests = digests.ok_or_else(|| {
                    err(
                        C::Checksum,
                        None,
                        "internal error: the files could not be hashed".into(),
                    )
                })?;
                check_sums(map, &report.ignored_files, &digests)?;
                Ok(report)
            });
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// The index (0-based) of the first line of `entries.jsonl` of the fixed
/// shape whose body is not a JSON object; lines of another shape are left to
/// the main loop. `None` if `stop` was set before the end.
fn first_bad_body(entries: &[u8], stop: &AtomicBool) -> Option<Option<u64>> {
    let mut rest = entries;
    let mut index = 0u64;
    while let Some(end) = find_newline(rest) {
        if index.is_multiple_of(4096) && stop.load(Ordering::Relaxed) {
            return None;
        }
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        if let Ok(entry) = parse_entry_line(line)
            && !json::is_json_object(entry.body)
        {
            return Some(Some(index));
        }
        index += 1;
    }
    Some(None)
}

/// SHA-256 of every format file except `SHA256SUMS`; `None` if `stop` was
/// set before the end.
fn file_digests<'a>(map: &Files<'a>, stop: &AtomicBool) -> Option<BTreeMap<&'a str, Hash>> {
    const CHUNK: usize = 1 << 20;
    let mut digests = BTreeMap::new();
    for (name, bytes) in map {
        if *name == SHA256SUMS || !is_format_file(name) {
            continue;
        }
        let mut ctx = Context::new(&SHA256);
        for chunk in bytes.chunks(CHUNK) {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            ctx.update(chunk);
        }
        digests.insert(*name, crate::to_hash(ctx.finish().as_ref()));
    }
    Some(digests)
}

const VERSION_1_REFUSED: &str = "this is a version 1 bundle (inclusion proofs in proofs.jsonl); \
     version 1 is no longer supported: ask for a new export, which is version 2";

/// A manifest that passed check `manifest`, with its hashes decoded.
struct CheckedManifest {
    fields: Manifest,
    chain_before: Hash,
    chain_after: Hash,
}

fn parse_manifest(bytes: &[u8]) -> Result<CheckedManifest, BundleError> {
    let bad = |reason: String| err(BundleCheck::Manifest, None, reason);
    // The version first, so that an old bundle gets a clear answer rather
    // than a complaint about fields.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    if let Some(object) = value.as_object() {
        let format = object.get("format").and_then(serde_json::Value::as_str);
        let version = object.get("version").and_then(serde_json::Value::as_u64);
        if format == Some(BUNDLE_FORMAT) && version == Some(1) {
            return Err(bad(VERSION_1_REFUSED.into()));
        }
    }
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    if manifest.format != BUNDLE_FORMAT || manifest.version != BUNDLE_VERSION {
        return Err(bad(format!(
            "unsupported format {:?} version {} (expected {BUNDLE_FORMAT:?} version {BUNDLE_VERSION})",
            manifest.format, manifest.version
        )));
    }
    let (first_seq, last_seq, size) = (manifest.first_seq, manifest.last_seq, manifest.size);
    if first_seq == 0 || last_seq < first_seq || last_seq > size {
        return Err(bad(format!(
            "range {first_seq}..={last_seq} is not within 1..={size}"
        )));
    }
    let chain_before = parse_hash(&manifest.chain_before)
        .ok_or_else(|| bad("chain_before is not 64 hex digits".into()))?;
    let chain_after = parse_hash(&manifest.chain_after)
        .ok_or_else(|| bad("chain_after is not 64 hex digits".into()))?;
    Ok(CheckedManifest {
        fields: manifest,
        chain_before,
        chain_after,
    })
}

/// Every check but the checksums, in the order of SPEC 9.5. `bad_body`
/// gives the index of the first entry line whose body is not a JSON object
/// (computed beside this function, see `verify`).
fn verify_contents(
    map: &Files<'_>,
    manifest: CheckedManifest,
    trusted: Option<&[VerifierKey]>,
    ignored_files: Vec<String>,
    bad_body: &mut dyn FnMut() -> Option<u64>,
) -> Result<BundleReport, BundleError> {
    use BundleCheck as C;
    let file = |name: &str| map.get(name).copied().unwrap_or_default();

    let CheckedManifest {
        fields: manifest,
        chain_before,
        chain_after,
    } = manifest;
    let (first_seq, last_seq, size) = (manifest.first_seq, manifest.last_seq, manifest.size);

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

    // Borders: well formed, and exactly as many hashes as the canonical
    // split of [0, first_seq - 1) and [last_seq, size) has subtrees.
    let borders: BordersFile = serde_json::from_slice(file(BORDERS))
        .map_err(|e| err(C::Borders, None, format!("{BORDERS}: {e}")))?;
    let left = parse_hashes(&borders.left).ok_or_else(|| {
        err(
            C::Borders,
            None,
            "a left border hash is not 64 hex digits".into(),
        )
    })?;
    let right = parse_hashes(&borders.right).ok_or_else(|| {
        err(
            C::Borders,
            None,
            "a right border hash is not 64 hex digits".into(),
        )
    })?;
    let left_nodes = compact_range_nodes(0, first_seq - 1);
    let right_nodes = compact_range_nodes(last_seq, size);
    for (side, hashes, nodes, what) in [
        (
            "left",
            &left,
            &left_nodes,
            format!("seq 1..={}", first_seq - 1),
        ),
        (
            "right",
            &right,
            &right_nodes,
            format!("seq {}..={size}", last_seq.saturating_add(1)),
        ),
    ] {
        if hashes.len() != nodes.len() {
            return Err(err(
                C::Borders,
                None,
                format!(
                    "{BORDERS} has {} {side} border hashes; the events {what} need {}",
                    hashes.len(),
                    nodes.len()
                ),
            ));
        }
    }
    // The left border is the compact range of the first first_seq - 1
    // leaves: one peak per set bit, which the count check guaranteed.
    let mut tree = CompactRange::from_parts(first_seq - 1, left)
        .map_err(|e| err(C::Borders, None, format!("left border: {e}")))?;

    // Entries, in order: the chain and the tree grow as they stream by.
    let origin = manifest.origin.as_str();
    if first_seq == 1 && chain_before != chain_genesis(origin) {
        return Err(err(
            C::Chain,
            Some(1),
            "chain_before is not SHA-256(origin) although the bundle starts at seq 1".into(),
        ));
    }
    let data = file(ENTRIES);
    if !data.is_empty() && !data.ends_with(b"\n") {
        return Err(err(
            C::Entry,
            None,
            format!("{ENTRIES} does not end with a newline"),
        ));
    }
    let lines = check_lines(data, first_seq, last_seq, chain_before, &mut tree);
    // The body check ran beside the loop. Its first failure is the one to
    // report if it comes before the loop's; on the same line the loop's checks
    // come first (entry, sequence, leaf, chain, then body).
    if let Some(bad) = bad_body()
        && lines.as_ref().err().is_none_or(|(line, _)| bad < *line)
    {
        // Every line before the loop's failure had the expected seq.
        return Err(err(
            C::Body,
            Some(first_seq + bad),
            "body is not a JSON object".into(),
        ));
    }
    let previous = lines.map_err(|(_, e)| e)?;

    // The signed root, from left border + the entries' leaves + right border.
    for ((_, height), hash) in right_nodes.iter().zip(right) {
        tree.append_subtree(*height, hash)
            .map_err(|e| err(C::Root, None, format!("right border: {e}")))?;
    }
    if tree.size() != size || tree.root() != checkpoint.root {
        return Err(err(
            C::Root,
            None,
            format!(
                "the Merkle root of the left border, the entries {first_seq}..={last_seq} and the \
                 right border is not the checkpoint root: an entry or a border hash differs from \
                 what the log signed"
            ),
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
            let hashes = parse_hashes(&proof.proof)
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

/// The per-line checks but the body's (SPEC 9.5 steps 10 and 11) over
/// `entries.jsonl`, which ends with LF: each line's leaf is added to `tree`.
/// Returns the chain value of the last entry, or the first failure with the
/// index of the line it concerns (the number of lines if it concerns the
/// missing ones).
fn check_lines(
    data: &[u8],
    first_seq: u64,
    last_seq: u64,
    chain_before: Hash,
    tree: &mut CompactRange,
) -> Result<Hash, (u64, BundleError)> {
    use BundleCheck as C;
    let mut rest = data;
    let mut previous = chain_before;
    let mut expected_seqs = first_seq..=last_seq;
    let mut index = 0u64;
    while let Some(end) = find_newline(rest) {
        let fail = |check, seq: u64, reason: String| (index, err(check, Some(seq), reason));
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        let Some(expected) = expected_seqs.next() else {
            return Err(fail(
                C::Sequence,
                last_seq.saturating_add(1),
                format!("{ENTRIES} has entries after last_seq {last_seq}"),
            ));
        };
        let entry = parse_entry_line(line).map_err(|reason| {
            fail(
                C::Entry,
                expected,
                format!("{ENTRIES} line {}: {reason}", index + 1),
            )
        })?;
        if entry.seq != expected {
            let what = if entry.seq > expected {
                "events are missing"
            } else {
                "events are out of order or repeated"
            };
            return Err(fail(
                C::Sequence,
                expected.min(entry.seq),
                format!("expected seq {expected}, found {}: {what}", entry.seq),
            ));
        }
        let leaf = leaf_hash(entry.body);
        if leaf != entry.leaf {
            return Err(fail(
                C::Leaf,
                expected,
                "leaf hash does not match the body (body modified)".into(),
            ));
        }
        let chain = chain_next(&previous, &leaf);
        if chain != entry.chain {
            return Err(fail(
                C::Chain,
                expected,
                "chain value does not match (event reordered, inserted, removed or chain edited)"
                    .into(),
            ));
        }
        tree.push(leaf);
        previous = chain;
        index += 1;
    }
    if let Some(missing) = expected_seqs.next() {
        let reason = if data.is_empty() {
            format!("{ENTRIES} is empty")
        } else {
            format!(
                "{ENTRIES} ends at seq {}, the manifest range ends at {last_seq} (truncated)",
                missing - 1
            )
        };
        return Err((index, err(C::Sequence, Some(missing), reason)));
    }
    Ok(previous)
}

/// Checksums: every format file but SHA256SUMS itself, exactly once.
fn check_sums(
    map: &Files<'_>,
    ignored_files: &[String],
    digests: &BTreeMap<&str, Hash>,
) -> Result<(), BundleError> {
    use BundleCheck as C;
    let sums = text(
        C::Checksum,
        SHA256SUMS,
        map.get(SHA256SUMS).copied().unwrap_or_default(),
    )?;
    let mut listed: BTreeMap<&str, Hash> = BTreeMap::new();
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
        let hash = parse_hash(hash).ok_or_else(bad_line)?;
        if name == SHA256SUMS || !is_format_file(name) {
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
    for name in map.keys() {
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
            Some(hash) if digests.get(name) != Some(hash) => {
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
    Ok(())
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
        assert_eq!(check(&without(BORDERS)), (BundleCheck::Files, None));
        assert_eq!(check(&without(MANIFEST)), (BundleCheck::Files, None));
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
        replace(&mut f, BORDERS, |b| {
            *b = br#"{"left":[],"right":[]}"#.to_vec()
        });
        assert_eq!(check(&f), (BundleCheck::Borders, None));
        let mut f = good.clone();
        replace(&mut f, BORDERS, |b| b.insert(1, b' '));
        assert!(verify_bundle(&f).is_err_and(|e| e.check == BundleCheck::Checksum));
        let mut f = good.clone();
        replace(&mut f, BORDERS, |b| *b = b"[]".to_vec());
        assert_eq!(check(&f), (BundleCheck::Borders, None));
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

    #[test]
    fn entry_lines_have_one_exact_shape() {
        let leaf = "ab".repeat(32);
        let chain = "cd".repeat(32);
        let line = |seq: &str, body: &str| {
            format!(r#"{{"seq":{seq},"leaf":"{leaf}","chain":"{chain}","body":{body}}}"#)
        };
        let ok = line("42", r#"{"a":"}"}"#);
        let parsed = parse_entry_line(ok.as_bytes()).unwrap();
        assert_eq!(parsed.seq, 42);
        assert_eq!(parsed.leaf, [0xab; 32]);
        assert_eq!(parsed.chain, [0xcd; 32]);
        assert_eq!(parsed.body, br#"{"a":"}"}"#);
        // The body is whatever lies between the prefix and the final brace.
        assert_eq!(
            parse_entry_line(line("0", "").as_bytes()).unwrap().body,
            b""
        );
        assert_eq!(
            parse_entry_line(line("18446744073709551615", "x").as_bytes())
                .unwrap()
                .seq,
            u64::MAX
        );
        for bad in [
            line("01", "{}"),
            line("-1", "{}"),
            line("18446744073709551616", "{}"),
            line("", "{}"),
            line("1", "{}") + "\r",
            line("1", "{}") + " ",
            format!(" {}", line("1", "{}")),
            ok.replace(r#""seq":42"#, r#""seq": 42"#),
            ok.replace(r#""seq":42,"#, r#""seq":42,"seq":42,"#),
            ok.replace(r#","body":"#, r#","x":1,"body":"#),
            ok.replace(r#""chain":"#, r#""CHAIN":"#),
            ok.replace(&leaf, &leaf.to_uppercase()),
            ok.replace(&chain, &chain[..62]),
            ok.replace(&format!(r#","chain":"{chain}""#), ""),
            format!(r#"{{"seq":42,"chain":"{chain}","leaf":"{leaf}","body":{{}}}}"#),
            r#"{"seq":42}"#.to_owned(),
            String::new(),
        ] {
            assert!(parse_entry_line(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn newline_search_matches_a_plain_scan() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes = vec![b'x'; len];
                bytes.extend_from_slice(b"\n\n");
                bytes[at] = b'\n';
                assert_eq!(find_newline(&bytes), Some(at));
                // Bytes next to LF in value must not be mistaken for it.
                let other: Vec<u8> = (0..len as u8).map(|i| i ^ 0x0b | 0x80).collect();
                assert_eq!(find_newline(&other), None);
            }
        }
    }

    #[test]
    fn version_1_and_unknown_versions_are_refused() {
        let l = log(4);
        let good = bundle(&l, 1, 4, 4, None);
        for (version, words) in [(1, "version 1 bundle"), (3, "unsupported")] {
            let mut f = good.clone();
            replace(&mut f, MANIFEST, |m| {
                let text = String::from_utf8(m.clone()).unwrap();
                *m = text
                    .replace("\"version\": 2", &format!("\"version\": {version}"))
                    .into_bytes();
            });
            let e = verify_bundle(&f).unwrap_err();
            assert_eq!((e.check, e.seq), (BundleCheck::Manifest, None));
            assert!(e.reason.contains(words), "{e}");
        }
        // A whole version 1 layout: still the manifest that answers, not the
        // missing borders.json.
        let mut f: Vec<(String, Vec<u8>)> =
            good.iter().filter(|(n, _)| n != BORDERS).cloned().collect();
        f.push(("proofs.jsonl".into(), b"{}\n".to_vec()));
        replace(&mut f, MANIFEST, |m| {
            let text = String::from_utf8(m.clone()).unwrap();
            *m = text
                .replace("\"version\": 2", "\"version\": 1")
                .into_bytes();
        });
        let e = verify_bundle(&f).unwrap_err();
        assert!(e.reason.contains("version 1 bundle"), "{e}");
        // The whole manifest check comes before the other files are required.
        replace(&mut f, MANIFEST, |m| {
            let text = String::from_utf8(m.clone()).unwrap();
            *m = text
                .replace("\"version\": 1", "\"version\": 2")
                .replace("\"first_seq\": 1", "\"first_seq\": 0")
                .into_bytes();
        });
        let e = verify_bundle(&f).unwrap_err();
        assert_eq!((e.check, e.seq), (BundleCheck::Manifest, None), "{e}");
        assert!(e.reason.contains("range"), "{e}");
    }

    #[test]
    fn borders_and_entries_bind_to_the_signed_root() {
        let l = log(13);
        // seq 6..=9 of 12: the left border covers seq 1..=5 (subtrees of 4
        // and 1 leaves), the right one 10..=12 (1 and 2 leaves).
        let good = bundle(&l, 6, 9, 12, None);
        let borders = |files: &[(String, Vec<u8>)]| -> serde_json::Value {
            let bytes = &files.iter().find(|(n, _)| n == BORDERS).unwrap().1;
            serde_json::from_slice(bytes).unwrap()
        };
        let b = borders(&good);
        assert_eq!(b["left"].as_array().unwrap().len(), 2);
        assert_eq!(b["right"].as_array().unwrap().len(), 2);
        let check = |f: &[(String, Vec<u8>)]| {
            let e = verify_bundle(f).unwrap_err();
            (e.check, e.seq)
        };
        let with_borders = |value: serde_json::Value| {
            let mut f = good.clone();
            replace(&mut f, BORDERS, |b| *b = format!("{value}\n").into_bytes());
            f
        };
        for side in ["left", "right"] {
            for i in 0..2 {
                let mut v = b.clone();
                let h = v[side][i].as_str().unwrap().to_owned();
                let flipped = format!("{}{}", if h.starts_with('0') { '1' } else { '0' }, &h[1..]);
                v[side][i] = serde_json::json!(flipped);
                assert_eq!(check(&with_borders(v)), (BundleCheck::Root, None));
            }
            let mut v = b.clone();
            v[side].as_array_mut().unwrap().pop();
            assert_eq!(check(&with_borders(v)), (BundleCheck::Borders, None));
            let mut v = b.clone();
            v[side]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!("00".repeat(32)));
            assert_eq!(check(&with_borders(v)), (BundleCheck::Borders, None));
            let mut v = b.clone();
            v[side][0] = serde_json::json!(v[side][0].as_str().unwrap().to_uppercase());
            assert_eq!(check(&with_borders(v)), (BundleCheck::Borders, None));
        }
        // Left and right swapped: same counts here, wrong root.
        let swapped = serde_json::json!({"left": b["right"], "right": b["left"]});
        assert_eq!(check(&with_borders(swapped)), (BundleCheck::Root, None));
        let extra = serde_json::json!({"left": b["left"], "right": b["right"], "x": []});
        assert_eq!(check(&with_borders(extra)), (BundleCheck::Borders, None));
        let missing = serde_json::json!({"left": b["left"]});
        assert_eq!(check(&with_borders(missing)), (BundleCheck::Borders, None));

        // A full export has empty borders.
        let full = bundle(&l, 1, 13, 13, None);
        assert_eq!(borders(&full), serde_json::json!({"left": [], "right": []}));
        // Entries at the right border only (last_seq = size): no right hashes.
        let tail = bundle(&l, 13, 13, 13, None);
        assert_eq!(borders(&tail)["right"], serde_json::json!([]));
        assert_eq!(borders(&tail)["left"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn entries_damage_is_named_at_its_seq() {
        let l = log(8);
        let good = bundle(&l, 3, 7, 8, None);
        let check = |f: &[(String, Vec<u8>)]| {
            let e = verify_bundle(f).unwrap_err();
            (e.check, e.seq)
        };
        let edit = |f: &dyn Fn(Vec<&str>) -> Vec<String>| {
            let mut files = good.clone();
            replace(&mut files, ENTRIES, |e| {
                let text = String::from_utf8(e.clone()).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                *e = f(lines)
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes();
            });
            files
        };
        let owned = |lines: Vec<&str>| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
        // Truncated at the tail, swapped, deleted, duplicated.
        assert_eq!(
            check(&edit(&|l| owned(l[..3].to_vec()))),
            (BundleCheck::Sequence, Some(6))
        );
        assert_eq!(
            check(&edit(&|mut l| {
                l.swap(1, 2);
                owned(l)
            })),
            (BundleCheck::Sequence, Some(4))
        );
        assert_eq!(
            check(&edit(&|mut l| {
                l.remove(2);
                owned(l)
            })),
            (BundleCheck::Sequence, Some(5))
        );
        assert_eq!(
            check(&edit(&|mut l| {
                l.insert(2, l[1]);
                owned(l)
            })),
            (BundleCheck::Sequence, Some(4))
        );
        // A modified body: the leaf no longer matches.
        assert_eq!(
            check(&edit(&|l| {
                let mut l = owned(l);
                l[2] = l[2].replace(r#"{"n":5}"#, r#"{"n":6}"#);
                l
            })),
            (BundleCheck::Leaf, Some(5))
        );
        // Another field in a line.
        assert_eq!(
            check(&edit(&|l| {
                let mut l = owned(l);
                l[1] = l[1].replace(r#","body":"#, r#","x":0,"body":"#);
                l
            })),
            (BundleCheck::Entry, Some(4))
        );
        // A body that is not a JSON object, with leaf and chain recomputed:
        // the body check names it, before the tree does.
        let mut prev = l.entries[1].chain;
        let lines: Vec<String> = (3..=7u64)
            .map(|seq| {
                let body: Vec<u8> = if seq == 4 {
                    b"[4]".to_vec()
                } else {
                    l.entries[seq as usize - 1].body.clone()
                };
                let leaf = leaf_hash(&body);
                prev = chain_next(&prev, &leaf);
                format!(
                    r#"{{"seq":{seq},"leaf":"{}","chain":"{}","body":{}}}"#,
                    hex::encode(leaf),
                    hex::encode(prev),
                    String::from_utf8(body).unwrap()
                )
            })
            .collect();
        assert_eq!(
            check(&edit(&|_| lines.clone())),
            (BundleCheck::Body, Some(4))
        );
    }

    #[test]
    fn builder_refuses_bodies_with_a_line_feed() {
        let mut l = log(3);
        let body = b"{\"n\":\n2}".to_vec();
        let leaf = leaf_hash(&body);
        l.entries[1].body = body;
        l.entries[1].leaf = leaf;
        l.entries[1].chain = chain_next(&l.entries[0].chain, &leaf);
        l.tree = MerkleTree::from_leaves(l.entries.iter().map(|e| e.leaf).collect());
        let k = key(1);
        let note = k
            .sign_checkpoint("example.test/log", 3, &l.tree.root())
            .unwrap();
        let e = build_bundle(&BundleInput {
            origin: "example.test/log",
            range: "test",
            entries: &l.entries[..2],
            chain_before: chain_genesis("example.test/log"),
            tree: &l.tree,
            checkpoint: &note,
            previous_checkpoint: None,
            signing_key: &k.verifier_key(),
            other_keys: &[],
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        })
        .unwrap_err();
        assert_eq!((e.check, e.seq), (BundleCheck::Input, Some(2)));
    }

    #[test]
    fn body_failures_are_ordered_with_the_other_entry_checks() {
        let l = log(8);
        let good = bundle(&l, 2, 7, 8, None);
        // Lines for seq 2..=7 with leaf and chain recomputed; `bad` bodies
        // are not JSON objects, `stale` lines carry a wrong leaf.
        let with = |bad: &[u64], stale: &[u64], drop_tail: usize| {
            let mut prev = l.entries[0].chain;
            let mut text = String::new();
            for seq in 2..=7u64 - drop_tail as u64 {
                let e = &l.entries[seq as usize - 1];
                let body = if bad.contains(&seq) {
                    format!("[{seq}]")
                } else {
                    String::from_utf8(e.body.clone()).unwrap()
                };
                let leaf = if stale.contains(&seq) {
                    [7; 32]
                } else {
                    leaf_hash(body.as_bytes())
                };
                prev = chain_next(&prev, &leaf);
                text.push_str(&format!(
                    r#"{{"seq":{seq},"leaf":"{}","chain":"{}","body":{body}}}"#,
                    hex::encode(leaf),
                    hex::encode(prev)
                ));
                text.push('\n');
            }
            let mut f = good.clone();
            replace(&mut f, ENTRIES, |e| *e = text.into_bytes());
            f
        };
        // (bad bodies, wrong leaves, lines dropped at the tail, verdict)
        type Case<'a> = (&'a [u64], &'a [u64], usize, (BundleCheck, Option<u64>));
        let cases: [Case<'_>; 7] = [
            (&[4], &[], 0, (BundleCheck::Body, Some(4))),
            (&[4, 6], &[], 0, (BundleCheck::Body, Some(4))),
            (&[5], &[3], 0, (BundleCheck::Leaf, Some(3))),
            (&[3], &[5], 0, (BundleCheck::Body, Some(3))),
            // A non-JSON body with a wrong leaf: the leaf check comes first.
            (&[4], &[4], 0, (BundleCheck::Leaf, Some(4))),
            (&[3], &[], 2, (BundleCheck::Body, Some(3))),
            (&[], &[], 2, (BundleCheck::Sequence, Some(6))),
        ];
        for (bad, stale, drop_tail, expected) in cases {
            let f = with(bad, stale, drop_tail);
            for helper_thread in [true, false] {
                let e = verify(&f, None, helper_thread).unwrap_err();
                assert_eq!((e.check, e.seq), expected, "{bad:?} {stale:?} {drop_tail}");
            }
        }
        // Lines after last_seq: a bad body before them still comes first.
        let mut f = with(&[2], &[], 0);
        replace(&mut f, ENTRIES, |e| {
            let first = e.split(|b| *b == b'\n').next().unwrap().to_vec();
            e.extend_from_slice(&first);
            e.push(b'\n');
        });
        for helper_thread in [true, false] {
            let e = verify(&f, None, helper_thread).unwrap_err();
            assert_eq!((e.check, e.seq), (BundleCheck::Body, Some(2)));
        }
        assert!(verify(&good, None, false).is_ok());
    }
}
