//! The content checks of a bundle, in the order of SPEC 9.5 (shared with
//! `verify.py`): manifest, keys, checkpoint and its signature, the openssl
//! companion files, the border hashes, every entry in order (sequence, leaf,
//! chain, body), the Merkle root and the consistency proof. The checksums
//! come last and live with the driver in [`super::verify`].

use super::format::{
    BORDERS, BUNDLE_FORMAT, BUNDLE_VERSION, BordersFile, CHECKPOINT, CHECKPOINT_BODY,
    CHECKPOINT_SIG, CONSISTENCY, ConsistencyFile, ENTRIES, Files, KEYS, MANIFEST, Manifest,
    PREVIOUS_CHECKPOINT, PUBLIC_KEY, find_newline, parse_entry_line, parse_hash, parse_hashes,
    text,
};
use super::model::{BundleCheck as C, BundleError, BundleReport, err};
use crate::checkpoint::{
    Checkpoint, CheckpointError, VerifiedNote, VerifierKey, parse_and_verify,
    parse_ed25519_public_key_pem, verify_note,
};
use crate::merkle::{CompactRange, compact_range_nodes, verify_consistency};
use crate::{Hash, chain_genesis, chain_next, leaf_hash};

const VERSION_1_REFUSED: &str = "this is a version 1 bundle (inclusion proofs in proofs.jsonl); \
     version 1 is no longer supported: ask for a new export, which is version 2";

/// A manifest that passed check `manifest`, with its hashes decoded.
pub(super) struct CheckedManifest {
    fields: Manifest,
    chain_before: Hash,
    chain_after: Hash,
}

pub(super) fn parse_manifest(bytes: &[u8]) -> Result<CheckedManifest, BundleError> {
    let bad = |reason: String| err(C::Manifest, None, reason);
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
pub(super) fn verify_contents(
    map: &Files<'_>,
    manifest: CheckedManifest,
    trusted: Option<&[VerifierKey]>,
    ignored_files: Vec<String>,
    bad_body: &mut dyn FnMut() -> Option<u64>,
) -> Result<BundleReport, BundleError> {
    let file = |name: &str| map.get(name).copied().unwrap_or_default();
    let CheckedManifest {
        fields: manifest,
        chain_before,
        chain_after,
    } = manifest;
    let (first_seq, last_seq, size) = (manifest.first_seq, manifest.last_seq, manifest.size);

    let bundle_keys = read_keys(file(KEYS))?;
    let keys = trusted.unwrap_or(&bundle_keys);
    let (verified, checkpoint) = check_checkpoint(file(CHECKPOINT), keys, &manifest)?;
    check_signature_files(map, keys, &verified.text)?;
    let Borders {
        mut tree,
        right,
        right_nodes,
    } = read_borders(file(BORDERS), first_seq, last_seq, size)?;

    // Entries, in order: the chain and the tree grow as they stream by.
    if first_seq == 1 && chain_before != chain_genesis(&manifest.origin) {
        return Err(err(
            C::Chain,
            Some(1),
            "chain_before is not SHA-256(origin) although the bundle starts at seq 1".into(),
        ));
    }
    let previous = check_entries(
        file(ENTRIES),
        first_seq,
        last_seq,
        chain_before,
        &mut tree,
        bad_body,
    )?;

    check_root(tree, right, &right_nodes, &checkpoint, first_seq, last_seq)?;
    if previous != chain_after {
        return Err(err(
            C::Manifest,
            None,
            "chain_after is not the chain value of the last entry".into(),
        ));
    }

    let previous_size = check_consistency(map, keys, &checkpoint)?;
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

/// `keys.txt`: one verifier key per non-empty line, at least one.
fn read_keys(bytes: &[u8]) -> Result<Vec<VerifierKey>, BundleError> {
    let mut keys = Vec::new();
    for (i, line) in text(C::Keys, KEYS, bytes)?.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let key = VerifierKey::parse(line)
            .map_err(|e| err(C::Keys, None, format!("{KEYS} line {}: {e}", i + 1)))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(err(C::Keys, None, format!("{KEYS} lists no key")));
    }
    Ok(keys)
}

/// `checkpoint.txt`: signed by one of `keys`, for the manifest's origin and
/// size.
fn check_checkpoint(
    bytes: &[u8],
    keys: &[VerifierKey],
    manifest: &Manifest,
) -> Result<(VerifiedNote, Checkpoint), BundleError> {
    let note = text(C::Checkpoint, CHECKPOINT, bytes)?;
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
    if checkpoint.size != manifest.size {
        return Err(err(
            C::Checkpoint,
            None,
            format!(
                "checkpoint size {} differs from manifest size {}",
                checkpoint.size, manifest.size
            ),
        ));
    }
    Ok((verified, checkpoint))
}

/// The files for `openssl pkeyutl -verify` must say the same as the note.
fn check_signature_files(
    map: &Files<'_>,
    keys: &[VerifierKey],
    signed_text: &str,
) -> Result<(), BundleError> {
    let file = |name: &str| map.get(name).copied().unwrap_or_default();
    if file(CHECKPOINT_BODY) != signed_text.as_bytes() {
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
    if !pem_key.verify(signed_text.as_bytes(), file(CHECKPOINT_SIG)) {
        return Err(err(
            C::SignatureFiles,
            None,
            format!(
                "{CHECKPOINT_SIG} is not a valid signature of {CHECKPOINT_BODY} by {PUBLIC_KEY}"
            ),
        ));
    }
    Ok(())
}

/// `borders.json`, checked: the tree of the leaves before the entries, and
/// the subtrees after them with where they sit.
struct Borders {
    tree: CompactRange,
    right: Vec<Hash>,
    right_nodes: Vec<(u64, u32)>,
}

/// Borders: well formed, and exactly as many hashes as the canonical
/// split of [0, first_seq - 1) and [last_seq, size) has subtrees.
fn read_borders(
    bytes: &[u8],
    first_seq: u64,
    last_seq: u64,
    size: u64,
) -> Result<Borders, BundleError> {
    let borders: BordersFile = serde_json::from_slice(bytes)
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
    let tree = CompactRange::from_parts(first_seq - 1, left)
        .map_err(|e| err(C::Borders, None, format!("left border: {e}")))?;
    Ok(Borders {
        tree,
        right,
        right_nodes,
    })
}

/// `entries.jsonl`: the per-line checks, then the body check that ran
/// beside them; returns the chain value after the last entry.
fn check_entries(
    data: &[u8],
    first_seq: u64,
    last_seq: u64,
    chain_before: Hash,
    tree: &mut CompactRange,
    bad_body: &mut dyn FnMut() -> Option<u64>,
) -> Result<Hash, BundleError> {
    if !data.is_empty() && !data.ends_with(b"\n") {
        return Err(err(
            C::Entry,
            None,
            format!("{ENTRIES} does not end with a newline"),
        ));
    }
    let lines = check_lines(data, first_seq, last_seq, chain_before, tree);
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
    lines.map_err(|(_, e)| e)
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

/// The signed root, from left border + the entries' leaves (in `tree`) +
/// right border.
fn check_root(
    mut tree: CompactRange,
    right: Vec<Hash>,
    right_nodes: &[(u64, u32)],
    checkpoint: &Checkpoint,
    first_seq: u64,
    last_seq: u64,
) -> Result<(), BundleError> {
    for ((_, height), hash) in right_nodes.iter().zip(right) {
        tree.append_subtree(*height, hash)
            .map_err(|e| err(C::Root, None, format!("right border: {e}")))?;
    }
    if tree.size() != checkpoint.size || tree.root() != checkpoint.root {
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
    Ok(())
}

/// Consistency with an earlier checkpoint, when the bundle carries one:
/// the size of that checkpoint.
fn check_consistency(
    map: &Files<'_>,
    keys: &[VerifierKey],
    checkpoint: &Checkpoint,
) -> Result<Option<u64>, BundleError> {
    let size = checkpoint.size;
    let (previous_note, consistency) = match (map.get(PREVIOUS_CHECKPOINT), map.get(CONSISTENCY)) {
        (None, None) => return Ok(None),
        (Some(previous_note), Some(consistency)) => (previous_note, consistency),
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
    let c = |reason: String| err(C::Consistency, None, reason);
    let note = text(C::Consistency, PREVIOUS_CHECKPOINT, previous_note)?;
    let old = parse_and_verify(note, keys).map_err(|e| c(format!("{PREVIOUS_CHECKPOINT}: {e}")))?;
    if old.origin != checkpoint.origin {
        return Err(c(format!("{PREVIOUS_CHECKPOINT} is for another origin")));
    }
    let proof: ConsistencyFile =
        serde_json::from_slice(consistency).map_err(|e| c(format!("{CONSISTENCY}: {e}")))?;
    if proof.old_size != old.size || proof.new_size != size {
        return Err(c(format!(
            "{CONSISTENCY} is for sizes {} -> {}, the checkpoints are {} -> {size}",
            proof.old_size, proof.new_size, old.size
        )));
    }
    let hashes =
        parse_hashes(&proof.proof).ok_or_else(|| c("a proof hash is not 64 hex digits".into()))?;
    verify_consistency(old.size, size, &old.root, &checkpoint.root, &hashes).map_err(|e| {
        c(format!(
            "the checkpoint of size {size} does not extend the previous one of size {}: {e}",
            old.size
        ))
    })?;
    Ok(Some(old.size))
}
