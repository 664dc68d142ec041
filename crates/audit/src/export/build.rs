//! Building a bundle. The entries stream: [`EntriesWriter`] writes
//! `entries.jsonl` line by line into any writer, checking each entry's
//! sequence, leaf, chain value and body as it goes and keeping only the
//! O(log n) compact range of the tree, so a bundle of any range is built in
//! bounded memory. [`bundle_files`] then writes the other files, checks that
//! the borders and the entries fold to the signed checkpoint's root and that
//! the consistency proof holds, and lists every file in `SHA256SUMS`.
//! [`build_bundle`] does both in memory from a whole tree and verifies the
//! result with the published verifier's checks before it is handed out.

use super::format::{
    BORDERS, BUNDLE_FORMAT, BUNDLE_VERSION, BordersFile, CHECKPOINT, CHECKPOINT_BODY,
    CHECKPOINT_SIG, CONSISTENCY, ConsistencyFile, ENTRIES, KEYS, LINE_BODY, LINE_CHAIN, LINE_END,
    LINE_LEAF, LINE_SEQ, MANIFEST, Manifest, PREVIOUS_CHECKPOINT, PUBLIC_KEY, RECIPIENT_README,
    SHA256SUMS, hexes, json_line, sha256_hex,
};
use super::model::{BundleCheck, BundleEntry, BundleError, BundleInput};
use super::verify::verify_bundle_with_keys;
use crate::checkpoint::{Checkpoint, VerifiedNote, VerifierKey, parse_and_verify, verify_note};
use crate::merkle::{CompactRange, MerkleTree, compact_range_nodes, verify_consistency};
use crate::{Hash, chain_next, json, leaf_hash};
use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest::{Context, SHA256};
use std::collections::BTreeMap;
use std::io::Write;

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

/// Writes `entries.jsonl` entry by entry (SPEC 9.2), checking each one as
/// the verifier will: contiguous sequence numbers within the checkpoint, the
/// leaf of the body, the chain value from the one before, a JSON object as
/// body. Keeps the SHA-256 of what it wrote and the compact range of the
/// tree up to the last entry, nothing else.
pub struct EntriesWriter<W> {
    out: W,
    digest: Context,
    bytes: u64,
    range: CompactRange,
    left_border: Vec<Hash>,
    first_seq: u64,
    next_seq: u64,
    size: u64,
    chain: Hash,
    line: Vec<u8>,
}

/// What [`EntriesWriter::finish`] hands back: the writer and what the other
/// files need to know about the entries.
pub struct WrittenEntries<W> {
    pub out: W,
    /// SHA-256 of `entries.jsonl`.
    pub sha256: Hash,
    /// Its length in bytes.
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The chain value after the last entry.
    pub chain_after: Hash,
    /// The tree's compact range from the first leaf to the last entry.
    range: CompactRange,
    left_border: Vec<Hash>,
}

impl<W: Write> EntriesWriter<W> {
    /// Entries from `first_seq` on, proven against a checkpoint of `size`
    /// events; `chain_before` is the chain value before `first_seq` and
    /// `left_border` the compact range of the leaves before it.
    pub fn new(
        out: W,
        first_seq: u64,
        size: u64,
        chain_before: Hash,
        left_border: Vec<Hash>,
    ) -> Result<Self, BundleError> {
        if first_seq == 0 || first_seq > size {
            return Err(bad(format!(
                "the entries start at {first_seq}, which is not within the checkpoint (1..={size})"
            )));
        }
        let range = CompactRange::from_parts(first_seq - 1, left_border.clone())
            .map_err(|e| bad(format!("left border: {e}")))?;
        Ok(Self {
            out,
            digest: Context::new(&SHA256),
            bytes: 0,
            range,
            left_border,
            first_seq,
            next_seq: first_seq,
            size,
            chain: chain_before,
            line: Vec::new(),
        })
    }

    /// Checks and writes the next entry.
    pub fn push(&mut self, entry: &BundleEntry) -> Result<(), BundleError> {
        let seq = entry.seq;
        if seq != self.next_seq || seq > self.size {
            return Err(bad(format!(
                "expected entry {} within the checkpoint (1..={}), found seq {seq}",
                self.next_seq, self.size
            )));
        }
        let failed = |check, reason: &str| Err(BundleError::new(check, Some(seq), reason));
        if leaf_hash(&entry.body) != entry.leaf {
            return failed(BundleCheck::Leaf, "the leaf hash does not match the body");
        }
        let chain = chain_next(&self.chain, &entry.leaf);
        if chain != entry.chain {
            return failed(BundleCheck::Chain, "the chain value does not follow");
        }
        // A line holds the body verbatim; RFC 8785 output never contains a
        // raw LF, so a body with one is not a conforming body.
        if entry.body.contains(&b'\n') {
            return failed(
                BundleCheck::Input,
                "the body contains a raw line feed, which canonical (RFC 8785) JSON never does",
            );
        }
        if !json::is_json_object(&entry.body) {
            return failed(BundleCheck::Body, "the body is not a JSON object");
        }
        self.line.clear();
        entry_line(&mut self.line, entry);
        self.out
            .write_all(&self.line)
            .map_err(|e| bad(format!("{ENTRIES} could not be written: {e}")))?;
        self.digest.update(&self.line);
        self.bytes += self.line.len() as u64;
        self.range.push(entry.leaf);
        self.chain = chain;
        self.next_seq += 1;
        Ok(())
    }

    /// The written entries; a bundle needs at least one.
    pub fn finish(mut self) -> Result<WrittenEntries<W>, BundleError> {
        if self.next_seq == self.first_seq {
            return Err(bad("a bundle needs at least one entry".to_owned()));
        }
        self.out
            .flush()
            .map_err(|e| bad(format!("{ENTRIES} could not be written: {e}")))?;
        Ok(WrittenEntries {
            out: self.out,
            sha256: crate::to_hash(self.digest.finish().as_ref()),
            bytes: self.bytes,
            first_seq: self.first_seq,
            last_seq: self.next_seq - 1,
            chain_after: self.chain,
            range: self.range,
            left_border: self.left_border,
        })
    }
}

impl<W> WrittenEntries<W> {
    /// The root of the tree of `size` leaves: the left border, the entries,
    /// then `right_border`, the compact range from the last entry to `size`.
    pub fn root_with(&self, right_border: &[Hash], size: u64) -> Result<Hash, BundleError> {
        let nodes = compact_range_nodes(self.last_seq, size);
        if nodes.len() != right_border.len() {
            return Err(bad(format!(
                "the right border up to {size} needs {} hashes, {} were given",
                nodes.len(),
                right_border.len()
            )));
        }
        let mut range = self.range.clone();
        for ((_, height), hash) in nodes.iter().zip(right_border) {
            range
                .append_subtree(*height, *hash)
                .map_err(|e| bad(format!("right border: {e}")))?;
        }
        Ok(range.root())
    }
}

/// One line of `entries.jsonl`, appended to `out`.
fn entry_line(out: &mut Vec<u8>, entry: &BundleEntry) {
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

/// Everything but the entries that the other files of a bundle need.
#[derive(Debug, Clone, Copy)]
pub struct BundleParts<'a> {
    pub origin: &'a str,
    /// Human-readable description of the selection; see [`BundleInput::range`].
    pub range: &'a str,
    /// Chain value before the first entry.
    pub chain_before: Hash,
    /// The compact range of the leaves after the last entry up to the
    /// checkpoint's size.
    pub right_border: &'a [Hash],
    /// The signed checkpoint note the entries are proven against.
    pub checkpoint: &'a str,
    /// An earlier checkpoint and the consistency proof from its size to the
    /// checkpoint's.
    pub previous: Option<(&'a str, &'a [Hash])>,
    pub signing_key: &'a VerifierKey,
    pub other_keys: &'a [VerifierKey],
    pub created_at: DateTime<Utc>,
}

/// Every file of the bundle but `entries.jsonl`, sorted by name, after
/// checking the checkpoint's signature and origin, that the left border,
/// the entries and the right border fold to its root, and that the
/// consistency proof from the previous checkpoint holds. `SHA256SUMS` lists
/// `entries.jsonl` too.
pub fn bundle_files<W>(
    parts: &BundleParts<'_>,
    entries: &WrittenEntries<W>,
) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let keys = bundle_keys(parts.signing_key, parts.other_keys);
    let signed = SignedCheckpoint::check(parts.checkpoint, parts.origin, parts.signing_key, &keys)?;
    let size = signed.checkpoint.size;
    if entries.last_seq > size {
        return Err(bad(format!(
            "the entries {}..={} are not within the checkpoint (1..={size})",
            entries.first_seq, entries.last_seq
        )));
    }
    if entries.root_with(parts.right_border, size)? != signed.checkpoint.root {
        return Err(bad(format!(
            "the checkpoint root does not match the tree of the first {size} leaves"
        )));
    }
    let mut files = FileMap::new();
    if let Some((previous, proof)) = parts.previous {
        add_consistency(&mut files, previous, proof, &keys, &signed.checkpoint)?;
    }
    files.insert(MANIFEST.into(), manifest_file(parts, entries, size)?);
    let keys_txt: String = keys.iter().map(|k| format!("{k}\n")).collect();
    files.insert(KEYS.into(), keys_txt.into_bytes());
    files.insert(
        RECIPIENT_README.into(),
        recipient_readme(parts.origin, entries.first_seq, entries.last_seq, size).into_bytes(),
    );
    files.insert(CHECKPOINT.into(), parts.checkpoint.as_bytes().to_vec());
    files.insert(CHECKPOINT_BODY.into(), signed.note.text.as_bytes().to_vec());
    files.insert(CHECKPOINT_SIG.into(), signed.signature);
    files.insert(
        PUBLIC_KEY.into(),
        parts.signing_key.public_key_pem().into_bytes(),
    );
    files.insert(
        BORDERS.into(),
        json_line(&BordersFile {
            left: hexes(&entries.left_border),
            right: hexes(parts.right_border),
        })?,
    );
    let mut sums: BTreeMap<&str, String> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), sha256_hex(bytes)))
        .collect();
    sums.insert(ENTRIES, hex::encode(entries.sha256));
    let sums: String = sums
        .iter()
        .map(|(name, hash)| format!("{hash}  {name}\n"))
        .collect();
    files.insert(SHA256SUMS.into(), sums.into_bytes());
    Ok(files.into_iter().collect())
}

/// Builds the bundle's files in memory, sorted by name, from a whole tree,
/// and verifies them before returning (a bundle this function returns
/// passes [`super::verify_bundle`]).
pub fn build_bundle(input: &BundleInput<'_>) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let keys = bundle_keys(input.signing_key, input.other_keys);
    let signed = SignedCheckpoint::check(input.checkpoint, input.origin, input.signing_key, &keys)?;
    let size = signed.checkpoint.size;
    let (first, last) = entry_range(input.entries, size)?;
    let tree = input.tree;
    let border = |begin, end, side: &str| {
        tree.compact_range(begin, end)
            .map_err(|e| bad(format!("{side} border: {e}")))
    };
    let left = border(0, first.seq - 1, "left")?;
    let right = border(last.seq, size, "right")?;
    let proof = match input.previous_checkpoint {
        Some(previous) => Some(consistency_from_tree(tree, previous, &keys, size)?),
        None => None,
    };
    let mut writer = EntriesWriter::new(Vec::new(), first.seq, size, input.chain_before, left)?;
    for entry in input.entries {
        writer.push(entry)?;
    }
    let written = writer.finish()?;
    let mut files = bundle_files(
        &BundleParts {
            origin: input.origin,
            range: input.range,
            chain_before: input.chain_before,
            right_border: &right,
            checkpoint: input.checkpoint,
            previous: input.previous_checkpoint.zip(proof.as_deref()),
            signing_key: input.signing_key,
            other_keys: input.other_keys,
            created_at: input.created_at,
        },
        &written,
    )?;
    files.push((ENTRIES.into(), written.out));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    // Never hand out a bundle that the published verifier would reject.
    verify_bundle_with_keys(&files, &keys)?;
    Ok(files)
}

/// The signing key first, then the other keys, each once (`keys.txt`).
fn bundle_keys(signing_key: &VerifierKey, other_keys: &[VerifierKey]) -> Vec<VerifierKey> {
    let mut keys = vec![signing_key.clone()];
    for key in other_keys {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// A bundle's checkpoint, verified: signed by the signing key and for the
/// bundle's origin.
struct SignedCheckpoint {
    note: VerifiedNote,
    checkpoint: Checkpoint,
    /// The signing key's raw signature (`checkpoint.sig`).
    signature: Vec<u8>,
}

impl SignedCheckpoint {
    fn check(
        note: &str,
        origin: &str,
        signing_key: &VerifierKey,
        keys: &[VerifierKey],
    ) -> Result<Self, BundleError> {
        let note = verify_note(note, keys).map_err(|e| bad(format!("checkpoint: {e}")))?;
        let checkpoint = Checkpoint::from_text(&note.text).map_err(|e| bad(e.to_string()))?;
        if checkpoint.origin != origin {
            return Err(bad(format!(
                "the checkpoint is for origin {:?}, not {origin:?}",
                checkpoint.origin
            )));
        }
        let signature = note
            .verified_by
            .iter()
            .position(|k| k == signing_key)
            .and_then(|i| note.signatures.get(i))
            .cloned()
            .ok_or_else(|| {
                bad("the checkpoint carries no signature by the signing key".to_owned())
            })?;
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

/// The consistency proof from the earlier checkpoint `previous` to `size`,
/// after checking in `tree` that it is a prefix of the log.
fn consistency_from_tree(
    tree: &MerkleTree,
    previous: &str,
    keys: &[VerifierKey],
    size: u64,
) -> Result<Vec<Hash>, BundleError> {
    let old =
        parse_and_verify(previous, keys).map_err(|e| bad(format!("previous checkpoint: {e}")))?;
    let old_root = tree
        .root_at(old.size)
        .map_err(|e| bad(format!("previous checkpoint: {e}")))?;
    if old.size > size || old_root != old.root {
        return Err(not_a_prefix(old.size, size));
    }
    tree.consistency_proof(old.size, size)
        .map_err(|e| bad(format!("consistency: {e}")))
}

fn not_a_prefix(old_size: u64, size: u64) -> BundleError {
    bad(format!(
        "the previous checkpoint (size {old_size}) is not a prefix of the log at size {size}"
    ))
}

/// `previous-checkpoint.txt` and `consistency.json`, after checking that
/// `proof` shows the earlier checkpoint is a prefix of the log.
fn add_consistency(
    files: &mut FileMap,
    previous: &str,
    proof: &[Hash],
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
    // A signed earlier head that is not a prefix of today's tree means
    // the log was rewritten: refuse to export rather than hide it.
    if verify_consistency(old.size, size, &old.root, &checkpoint.root, proof).is_err() {
        return Err(not_a_prefix(old.size, size));
    }
    files.insert(PREVIOUS_CHECKPOINT.into(), previous.as_bytes().to_vec());
    files.insert(
        CONSISTENCY.into(),
        json_line(&ConsistencyFile {
            old_size: old.size,
            new_size: size,
            proof: hexes(proof),
        })?,
    );
    Ok(())
}

/// `manifest.json`, pretty-printed for the human recipient.
fn manifest_file<W>(
    parts: &BundleParts<'_>,
    entries: &WrittenEntries<W>,
    size: u64,
) -> Result<Vec<u8>, BundleError> {
    let manifest = Manifest {
        format: BUNDLE_FORMAT.to_owned(),
        version: BUNDLE_VERSION,
        origin: parts.origin.to_owned(),
        range: parts.range.to_owned(),
        first_seq: entries.first_seq,
        last_seq: entries.last_seq,
        size,
        created_at: parts.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        chain_before: hex::encode(parts.chain_before),
        chain_after: hex::encode(entries.chain_after),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| bad(format!("manifest: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}
