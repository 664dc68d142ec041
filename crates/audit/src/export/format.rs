//! The bundle's files: their names, which are required, the bytes of
//! `manifest.json`, `borders.json`, `consistency.json` and the fixed line
//! shape of `entries.jsonl` (SPEC 9.2), with the strict parsers the verifier
//! reads them back with. Building and verifying share these so both always
//! agree on the format.

use super::model::{BundleCheck, BundleError};
use crate::Hash;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

pub(super) const REQUIRED_FILES: [&str; 9] = [
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

/// A file the format defines (anything else in a bundle directory is ignored).
pub(super) fn is_format_file(name: &str) -> bool {
    REQUIRED_FILES.contains(&name) || OPTIONAL_FILES.contains(&name)
}

/// A bundle's files by name, borrowed from the caller.
pub(super) type Files<'a> = BTreeMap<&'a str, &'a [u8]>;

/// A text file of the bundle, as UTF-8.
pub(super) fn text<'a>(
    check: BundleCheck,
    name: &str,
    bytes: &'a [u8],
) -> Result<&'a str, BundleError> {
    std::str::from_utf8(bytes)
        .map_err(|_| BundleError::new(check, None, format!("{name} is not UTF-8 text")))
}

/// `manifest.json`: what the bundle holds and which chain values border it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manifest {
    pub(super) format: String,
    pub(super) version: u64,
    pub(super) origin: String,
    pub(super) range: String,
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) size: u64,
    pub(super) created_at: String,
    pub(super) chain_before: String,
    pub(super) chain_after: String,
}

/// `borders.json`: the compact-range borders of the entries' range.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BordersFile {
    pub(super) left: Vec<String>,
    pub(super) right: Vec<String>,
}

/// `consistency.json`: the proof that the checkpoint extends an earlier one.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyFile {
    pub(super) old_size: u64,
    pub(super) new_size: u64,
    pub(super) proof: Vec<String>,
}

// The fixed shape of an `entries.jsonl` line (SPEC 9.2):
// {"seq":<N>,"leaf":"<hex>","chain":"<hex>","body":<body bytes>} LF
pub(super) const LINE_SEQ: &[u8] = b"{\"seq\":";
pub(super) const LINE_LEAF: &[u8] = b",\"leaf\":\"";
pub(super) const LINE_CHAIN: &[u8] = b"\",\"chain\":\"";
pub(super) const LINE_BODY: &[u8] = b"\",\"body\":";
pub(super) const LINE_END: &[u8] = b"}";

pub(super) fn hexes(hashes: &[Hash]) -> Vec<String> {
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

pub(super) fn parse_hash(s: &str) -> Option<Hash> {
    parse_hash_bytes(s.as_bytes())
}

pub(super) fn parse_hashes(hashes: &[String]) -> Option<Vec<Hash>> {
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
pub(super) struct EntryLine<'a> {
    pub(super) seq: u64,
    pub(super) leaf: Hash,
    pub(super) chain: Hash,
    pub(super) body: &'a [u8],
}

/// The positional parse of the fixed line shape: any other byte sequence
/// (another field, a missing or repeated one, other key order, white space,
/// upper-case hex) is refused, so there are no unknown, missing or duplicate
/// fields to think about.
pub(super) fn parse_entry_line(line: &[u8]) -> Result<EntryLine<'_>, &'static str> {
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
pub(super) fn find_newline(b: &[u8]) -> Option<usize> {
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

pub(super) fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>, BundleError> {
    let mut out = serde_json::to_vec(value)
        .map_err(|e| BundleError::new(BundleCheck::Input, None, e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes).as_ref())
}
