//! Building a bundle ([`build_bundle`]): the input is checked against the
//! signed checkpoint it is proven by, every file of the format is written,
//! `SHA256SUMS` lists them, and the result is verified before it is handed
//! out.

use super::format::{
    BORDERS, BUNDLE_FORMAT, BUNDLE_VERSION, BordersFile, CHECKPOINT, CHECKPOINT_BODY,
    CHECKPOINT_SIG, CONSISTENCY, ConsistencyFile, ENTRIES, KEYS, LINE_BODY, LINE_CHAIN, LINE_END,
    LINE_LEAF, LINE_SEQ, MANIFEST, Manifest, PREVIOUS_CHECKPOINT, PUBLIC_KEY, RECIPIENT_README,
    SHA256SUMS, hexes, json_line, sha256_hex,
};
use super::model::{BundleCheck, BundleEntry, BundleError, BundleInput};
use super::verify::verify_bundle_with_keys;
use crate::checkpoint::{Checkpoint, VerifiedNote, VerifierKey, parse_and_verify, verify_note};
use crate::merkle::MerkleTree;
use chrono::SecondsFormat;
use std::collections::BTreeMap;

/// The bundle's files by name; sorted, which is also the order of
/// `SHA256SUMS`.
type FileMap = BTreeMap<String, Vec<u8>>;

fn bad(reason: String) -> BundleError {
    BundleError::new(BundleCheck::Input, None, reason)
}

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

/// Builds the bundle's files, sorted by name, and verifies them before
/// returning (a bundle this function returns passes [`super::verify_bundle`]).
pub fn build_bundle(input: &BundleInput<'_>) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let keys = bundle_keys(input);
    let signed = SignedCheckpoint::check(input, &keys)?;
    let size = signed.checkpoint.size;
    let (first, last) = entry_range(input.entries, size)?;
    let entries = entries_file(input.entries, size)?;
    let borders = borders_file(input.tree, first.seq, last.seq, size)?;

    let mut files = FileMap::new();
    if let Some(previous) = input.previous_checkpoint {
        add_consistency(&mut files, input.tree, previous, &keys, &signed.checkpoint)?;
    }
    files.insert(
        MANIFEST.into(),
        manifest_file(input, first.seq, last, size)?,
    );
    let keys_txt: String = keys.iter().map(|k| format!("{k}\n")).collect();
    files.insert(KEYS.into(), keys_txt.into_bytes());
    files.insert(
        RECIPIENT_README.into(),
        recipient_readme(input.origin, first.seq, last.seq, size).into_bytes(),
    );
    files.insert(CHECKPOINT.into(), input.checkpoint.as_bytes().to_vec());
    files.insert(CHECKPOINT_BODY.into(), signed.note.text.as_bytes().to_vec());
    files.insert(CHECKPOINT_SIG.into(), signed.signature);
    files.insert(
        PUBLIC_KEY.into(),
        input.signing_key.public_key_pem().into_bytes(),
    );
    files.insert(ENTRIES.into(), entries);
    files.insert(BORDERS.into(), borders);
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

/// The signing key first, then the other keys, each once (`keys.txt`).
fn bundle_keys(input: &BundleInput<'_>) -> Vec<VerifierKey> {
    let mut keys = vec![input.signing_key.clone()];
    for key in input.other_keys {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// The checkpoint of the input, verified: signed by the signing key, for
/// the input's origin, and the root of the input's tree at its size.
struct SignedCheckpoint {
    note: VerifiedNote,
    checkpoint: Checkpoint,
    /// The signing key's raw signature (`checkpoint.sig`).
    signature: Vec<u8>,
}

impl SignedCheckpoint {
    fn check(input: &BundleInput<'_>, keys: &[VerifierKey]) -> Result<Self, BundleError> {
        let note =
            verify_note(input.checkpoint, keys).map_err(|e| bad(format!("checkpoint: {e}")))?;
        let checkpoint = Checkpoint::from_text(&note.text).map_err(|e| bad(e.to_string()))?;
        if checkpoint.origin != input.origin {
            return Err(bad(format!(
                "the checkpoint is for origin {:?}, not {:?}",
                checkpoint.origin, input.origin
            )));
        }
        let signature = note
            .verified_by
            .iter()
            .position(|k| k == input.signing_key)
            .and_then(|i| note.signatures.get(i))
            .cloned()
            .ok_or_else(|| {
                bad("the checkpoint carries no signature by the signing key".to_owned())
            })?;
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
        Ok(Self {
            note,
            checkpoint,
            signature,
        })
    }
}

/// The first and last entry, which must lie within the checkpoint.
fn entry_range(
    entries: &[BundleEntry],
    size: u64,
) -> Result<(&BundleEntry, &BundleEntry), BundleError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Err(bad("a bundle needs at least one entry".to_owned()));
    };
    if first.seq == 0 || last.seq < first.seq || last.seq > size {
        return Err(bad(format!(
            "the entries {}..={} are not within the checkpoint (1..={size})",
            first.seq, last.seq
        )));
    }
    Ok((first, last))
}

/// `entries.jsonl`: one line of the fixed shape per entry.
fn entries_file(entries: &[BundleEntry], size: u64) -> Result<Vec<u8>, BundleError> {
    let mut out = Vec::new();
    for entry in entries {
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
        out.extend_from_slice(LINE_SEQ);
        out.extend_from_slice(entry.seq.to_string().as_bytes());
        out.extend_from_slice(LINE_LEAF);
        out.extend_from_slice(hex::encode(entry.leaf).as_bytes());
        out.extend_from_slice(LINE_CHAIN);
        out.extend_from_slice(hex::encode(entry.chain).as_bytes());
        out.extend_from_slice(LINE_BODY);
        out.extend_from_slice(&entry.body);
        out.extend_from_slice(LINE_END);
        out.push(b'\n');
    }
    Ok(out)
}

/// `borders.json`: the compact ranges left and right of the entries.
fn borders_file(
    tree: &MerkleTree,
    first_seq: u64,
    last_seq: u64,
    size: u64,
) -> Result<Vec<u8>, BundleError> {
    let left = tree
        .compact_range(0, first_seq - 1)
        .map_err(|e| bad(format!("left border: {e}")))?;
    let right = tree
        .compact_range(last_seq, size)
        .map_err(|e| bad(format!("right border: {e}")))?;
    json_line(&BordersFile {
        left: hexes(&left),
        right: hexes(&right),
    })
}

/// `previous-checkpoint.txt` and `consistency.json`, after checking that the
/// earlier checkpoint is a prefix of the log.
fn add_consistency(
    files: &mut FileMap,
    tree: &MerkleTree,
    previous: &str,
    keys: &[VerifierKey],
    checkpoint: &Checkpoint,
) -> Result<(), BundleError> {
    let size = checkpoint.size;
    let old =
        parse_and_verify(previous, keys).map_err(|e| bad(format!("previous checkpoint: {e}")))?;
    if old.origin != checkpoint.origin {
        return Err(bad(
            "the previous checkpoint is for another origin".to_owned()
        ));
    }
    let old_root = tree
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
    let proof = tree
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
    Ok(())
}

/// `manifest.json`, pretty-printed for the human recipient.
fn manifest_file(
    input: &BundleInput<'_>,
    first_seq: u64,
    last: &BundleEntry,
    size: u64,
) -> Result<Vec<u8>, BundleError> {
    let manifest = Manifest {
        format: BUNDLE_FORMAT.to_owned(),
        version: BUNDLE_VERSION,
        origin: input.origin.to_owned(),
        range: input.range.to_owned(),
        first_seq,
        last_seq: last.seq,
        size,
        created_at: input.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        chain_before: hex::encode(input.chain_before),
        chain_after: hex::encode(last.chain),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| bad(format!("manifest: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}
