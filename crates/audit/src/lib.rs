//! The audit trail's format: event bodies in RFC 8785 canonical JSON, the
//! leaf hash `SHA-256(0x00 || body)`, the hash chain
//! `chain_i = SHA-256(chain_{i-1} || leaf_i)` with `chain_{-1} = SHA-256(origin)`,
//! and a streaming verifier that names the first bad position.
//!
//! Beyond the chain: the RFC 6962 Merkle tree over the same leaves with
//! inclusion and consistency proofs ([`merkle`]), Ed25519-signed C2SP
//! checkpoints ([`checkpoint`]), and the regulator export bundle with its
//! verifier ([`export`]). The normative description of every byte is
//! `audit/SPEC.md` at the repository root.
//!
//! Pure: no IO, except reading and creating the checkpoint signing key file
//! ([`checkpoint::SigningKey::load_or_create`]) and reading a bundle
//! directory ([`export::read_bundle_dir`]). Stores persist what this crate
//! computes; `creditops audit verify` and the audit service feed stored rows
//! back into [`ChainVerifier`].

mod action;
pub mod checkpoint;
mod event;
pub mod export;
mod json;
pub mod merkle;
mod verify;

pub use action::{AuditAction, UnknownAuditAction};
pub use checkpoint::{
    Checkpoint, CheckpointError, KeyError, SigningKey, VerifierKey, parse_and_verify,
};
pub use event::{AuditRecord, Outcome};
pub use export::{
    BundleCheck, BundleEntry, BundleError, BundleInput, BundleReport, build_bundle, verify_bundle,
    verify_bundle_with_keys,
};
pub use merkle::{CompactRange, MerkleError, MerkleTree, NodePlan, NodePosition, TreeNode};
pub use verify::{ChainVerifier, VerifyFailure, VerifyReport};

use ring::digest::{Context, SHA256, digest};

pub type Hash = [u8; 32];

/// Domain separation byte for leaves (RFC 6962 uses 0x00 for leaves, 0x01 for nodes).
pub const LEAF_PREFIX: u8 = 0x00;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("audit bodies must not contain floating-point numbers (at {0})")]
    Float(String),
    #[error("could not encode the audit body: {0}")]
    Encoding(String),
}

/// RFC 8785 (JCS) canonical bytes of a JSON value. Floats are refused: the
/// trail carries amounts as decimal strings, so a float is a bug upstream.
pub fn canonical_json(value: &serde_json::Value) -> Result<Vec<u8>, AuditError> {
    reject_floats(value, "$")?;
    serde_json_canonicalizer::to_vec(value).map_err(|e| AuditError::Encoding(e.to_string()))
}

fn reject_floats(value: &serde_json::Value, path: &str) -> Result<(), AuditError> {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => Err(AuditError::Float(path.to_owned())),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| reject_floats(v, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| reject_floats(v, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

pub fn leaf_hash(body: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[LEAF_PREFIX]);
    ctx.update(body);
    to_hash(ctx.finish().as_ref())
}

/// The chain value before the first event: SHA-256 of the log's origin line.
pub fn chain_genesis(origin: &str) -> Hash {
    to_hash(digest(&SHA256, origin.as_bytes()).as_ref())
}

pub fn chain_next(previous: &Hash, leaf: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(previous);
    ctx.update(leaf);
    to_hash(ctx.finish().as_ref())
}

pub(crate) fn to_hash(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

/// Parses a stored 32-byte hash column.
pub fn hash_from_slice(bytes: &[u8]) -> Option<Hash> {
    <Hash>::try_from(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_has_no_whitespace() {
        let v = json!({"b": 1, "a": {"d": "x", "c": [true, null]}, "é": "ü"});
        let bytes = canonical_json(&v).expect("canonical");
        assert_eq!(
            String::from_utf8(bytes).expect("utf8"),
            r#"{"a":{"c":[true,null],"d":"x"},"b":1,"é":"ü"}"#
        );
    }

    #[test]
    fn canonical_json_refuses_floats() {
        let v = json!({"amount": 1.5});
        assert_eq!(
            canonical_json(&v),
            Err(AuditError::Float("$.amount".into()))
        );
    }

    #[test]
    fn hashes_match_known_values() {
        // SHA-256("") and SHA-256(0x00) are fixed points anyone can recompute.
        assert_eq!(
            hex::encode(chain_genesis("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
