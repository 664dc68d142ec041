//! Signed checkpoints: the log's tree head (origin, size, Merkle root) as a
//! C2SP signed note (<https://c2sp.org/tlog-checkpoint>,
//! <https://c2sp.org/signed-note>), signed with Ed25519 by a key kept outside
//! the database.
//!
//! ```text
//! <origin>\n
//! <size in decimal>\n
//! <base64 root>\n
//! \n
//! — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n
//! ```
//!
//! The signature covers the note text (the three lines, final newline
//! included). The key id is the first four bytes of
//! `SHA-256(key name || 0x0A || 0x01 || public key)`. A verifier knows a set of
//! [`VerifierKey`]s (`<name>+<hex key id>+<base64(0x01 || public key)>`):
//! signatures by unknown keys are ignored (that is how keys rotate and how
//! witnesses cosign), a signature by a known key that fails rejects the note,
//! and a note without any verified known signature is rejected.
//!
//! Everything that parses text from outside returns an error and never panics.

use crate::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Signature type byte of Ed25519 in the signed-note specification.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;
/// Em dash (U+2014) and a space start every signature line.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";
/// Upper bound on a note read from outside, signatures included.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Upper bound on signature lines (the spec asks verifiers to accept >= 16).
pub const MAX_SIGNATURES: usize = 100;
/// Key files are a few hundred bytes; anything far larger is not a key.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The 4-byte key id that precedes every signature.
pub type KeyId = [u8; 4];

const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName { name: String, reason: &'static str },
    #[error("invalid verifier key: {0}")]
    InvalidVerifierKey(String),
    #[error("invalid public key PEM: {0}")]
    InvalidPublicKeyPem(String),
    #[error("the note carries no signature by any known key")]
    NoKnownSignature,
    #[error("the signature by known key {name} (id {key_id}) does not verify")]
    BadSignature { name: String, key_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key file {} does not exist", .path.display())]
    NotFound { path: PathBuf },
    #[error("signing key path {} is not a regular file", .path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "signing key file {} is accessible by group or others (mode {mode:03o}); restrict it to the owner (chmod 600)",
        .path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("cannot read signing key file {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("signing key file {} is not a PEM \"PRIVATE KEY\" (PKCS#8) file: {reason}", .path.display())]
    Format { path: PathBuf, reason: String },
    #[error("not a valid Ed25519 PKCS#8 private key: {0}")]
    InvalidKey(String),
    #[error(transparent)]
    InvalidName(CheckpointError),
    #[error("cannot create signing key file {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the system random number generator failed")]
    Random,
}

/// A verified tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text `origin\nsize\nbase64(root)\n`. Refuses origins that are
    /// not valid key names (see `audit/SPEC.md`): they could not be signed
    /// under the recommended key name and could break the line structure.
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        validate_key_name(&self.origin)?;
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        ))
    }

    /// Parses note text (already separated from its signatures). Extension
    /// lines are not used by this log (SPEC section 8.1) and are refused.
    pub fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let bad = |reason: &str| CheckpointError::MalformedCheckpoint(reason.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text does not end with a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        match lines.len() {
            0..=2 => return Err(bad("expected three lines: origin, tree size, root hash")),
            3 => {}
            _ => {
                return Err(bad(
                    "extension lines after the root hash are not used by this log (SPEC section 8.1)",
                ));
            }
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let size = parse_decimal(lines[1]).ok_or_else(|| {
            bad("the tree size is not a decimal number without sign or leading zeros")
        })?;
        let root = BASE64
            .decode(lines[2])
            .ok()
            .and_then(|bytes| crate::hash_from_slice(&bytes))
            .ok_or_else(|| bad("the root hash is not the base64 encoding of 32 bytes"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Strict decimal: ASCII digits, no sign, no leading zero except "0", fits u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Key names (and our origins): non-empty, no Unicode white space, no '+'.
pub fn validate_key_name(name: &str) -> Result<(), CheckpointError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.chars().any(char::is_whitespace) {
        "it contains white space"
    } else if name.contains('+') {
        "it contains '+'"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(CheckpointError::InvalidKeyName {
        name: name.to_owned(),
        reason,
    })
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[..4]`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> KeyId {
    let mut ctx = Context::new(&SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[ED25519_SIGNATURE_TYPE]);
    ctx.update(public_key);
    let mut id = [0u8; 4];
    id.copy_from_slice(&ctx.finish().as_ref()[..4]);
    id
}

/// A public key a verifier trusts, with the name it signs under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: String,
    key_id: KeyId,
    public_key: [u8; 32],
}

impl VerifierKey {
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, CheckpointError> {
        validate_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses `<name>+<8 hex digits key id>+<base64(0x01 || public key)>` and
    /// checks that the key id belongs to the name and key.
    pub fn parse(s: &str) -> Result<Self, CheckpointError> {
        let bad = |reason: &str| CheckpointError::InvalidVerifierKey(reason.to_owned());
        // The name has no '+', base64 may: split at the first two only.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        validate_key_name(name)?;
        if id_hex.len() != 8 {
            return Err(bad("the key id is not 8 hexadecimal digits"));
        }
        let id: KeyId = hex::decode(id_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the key id is not 8 hexadecimal digits"))?;
        let raw = BASE64
            .decode(key_b64)
            .map_err(|_| bad("the key is not standard base64"))?;
        let Some((&kind, key)) = raw.split_first() else {
            return Err(bad("the key is empty"));
        };
        if kind != ED25519_SIGNATURE_TYPE {
            return Err(bad("unsupported signature type (only 0x01, Ed25519)"));
        }
        let public_key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 public key has 32 bytes"))?;
        let key = Self::new(name, public_key)?;
        if key.key_id != id {
            return Err(bad("the key id does not match the name and public key"));
        }
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// Ed25519 verification of `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form
    /// `openssl pkeyutl -verify -pubin -inkey` reads.
    pub fn public_key_pem(&self) -> String {
        ed25519_public_key_pem(&self.public_key)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ED25519_SIGNATURE_TYPE);
        raw.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            BASE64.encode(raw)
        )
    }
}

impl FromStr for VerifierKey {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// SPKI PEM of an Ed25519 public key.
pub fn ed25519_public_key_pem(public_key: &[u8; 32]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(public_key);
    pem_encode(PUBLIC_KEY_LABEL, &der)
}

/// Reads an Ed25519 public key from SPKI PEM.
pub fn parse_ed25519_public_key_pem(text: &str) -> Result<[u8; 32], CheckpointError> {
    let der = pem_decode(PUBLIC_KEY_LABEL, text).map_err(CheckpointError::InvalidPublicKeyPem)?;
    der.strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|key| <[u8; 32]>::try_from(key).ok())
        .ok_or_else(|| {
            CheckpointError::InvalidPublicKeyPem("not an Ed25519 SubjectPublicKeyInfo".to_owned())
        })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // RFC 7468: 64 characters per line. base64 output is ASCII, so byte
    // chunks are character chunks.
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Strict single-block PEM: exactly the expected label, base64 lines in
/// between, nothing else but surrounding white space.
fn pem_decode(label: &str, text: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut lines = text.trim().lines().map(str::trim);
    match lines.next() {
        Some(first) if first == begin => {}
        Some(first) if first.starts_with("-----BEGIN ") => {
            return Err(format!("expected {begin:?}, found {first:?}"));
        }
        _ => return Err(format!("does not start with {begin:?}")),
    }
    let mut b64 = String::new();
    let mut ended = false;
    for line in lines {
        if ended {
            return Err("text after the END line".to_owned());
        }
        if line == end {
            ended = true;
        } else if line.contains(':') {
            return Err("PEM headers (e.g. encryption) are not supported".to_owned());
        } else {
            b64.push_str(line);
        }
    }
    if !ended {
        return Err(format!("missing {end:?}"));
    }
    BASE64
        .decode(b64.as_bytes())
        .map_err(|e| format!("invalid base64: {e}"))
}

/// One signature line of a note, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: KeyId,
    pub signature: Vec<u8>,
}

/// A signed note split into its text and signature lines (syntax only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, final newline included.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    pub fn parse(note: &str) -> Result<Self, CheckpointError> {
        let bad = |reason: &str| CheckpointError::MalformedNote(reason.to_owned());
        if note.len() > MAX_NOTE_BYTES {
            return Err(bad("the note is too large"));
        }
        if note.contains('\r') {
            return Err(bad(
                "the note contains a carriage return (CRLF line endings are not allowed)",
            ));
        }
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad("the note contains a control character"));
        }
        // The text ends at the last blank line; signature lines follow.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line separates the text from the signatures"))?;
        let text = &note[..=split];
        let block = &note[split + 2..];
        let block = block
            .strip_suffix('\n')
            .ok_or_else(|| bad("the note does not end with a newline after a signature line"))?;
        if block.is_empty() {
            return Err(bad("the note has no signature lines"));
        }
        let mut signatures = Vec::new();
        for line in block.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(bad("the note has too many signatures"));
            }
            let rest = line.strip_prefix(SIGNATURE_LINE_PREFIX).ok_or_else(|| {
                bad("a signature line does not start with an em dash and a space")
            })?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| {
                bad("a signature line has no space between key name and signature")
            })?;
            validate_key_name(name).map_err(|_| bad("a signature line has an invalid key name"))?;
            let raw = BASE64
                .decode(b64)
                .map_err(|_| bad("a signature is not standard base64"))?;
            if raw.len() < 5 {
                return Err(bad("a signature is shorter than key id and one byte"));
            }
            let (id, signature) = raw.split_at(4);
            let mut key_id = [0u8; 4];
            key_id.copy_from_slice(id);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id,
                signature: signature.to_vec(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }
}

/// A note whose signatures by known keys all verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    pub text: String,
    /// The known keys whose signatures verified, in note order.
    pub verified_by: Vec<VerifierKey>,
    /// The raw Ed25519 signature of each key in `verified_by`, same order.
    pub signatures: Vec<Vec<u8>>,
}

/// Verifies a signed note against the known keys (signed-note semantics).
pub fn verify_note(note: &str, keys: &[VerifierKey]) -> Result<VerifiedNote, CheckpointError> {
    let parsed = Note::parse(note)?;
    let mut verified_by: Vec<VerifierKey> = Vec::new();
    let mut signatures = Vec::new();
    for sig in &parsed.signatures {
        // Name and id both have to match; otherwise the signature belongs to
        // somebody else (a witness, a rotated key) and is ignored.
        let Some(key) = keys
            .iter()
            .find(|k| k.name == sig.name && k.key_id == sig.key_id)
        else {
            continue;
        };
        if verified_by.contains(key) {
            return Err(CheckpointError::MalformedNote(format!(
                "two signatures by key {} ({})",
                key.name,
                hex::encode(key.key_id)
            )));
        }
        if !key.verify(parsed.text.as_bytes(), &sig.signature) {
            return Err(CheckpointError::BadSignature {
                name: key.name.clone(),
                key_id: hex::encode(key.key_id),
            });
        }
        verified_by.push(key.clone());
        signatures.push(sig.signature.clone());
    }
    if verified_by.is_empty() {
        return Err(CheckpointError::NoKnownSignature);
    }
    Ok(VerifiedNote {
        text: parsed.text,
        verified_by,
        signatures,
    })
}

/// Verifies a checkpoint note and returns its tree head. Callers compare
/// `origin` with the log they expect.
pub fn parse_and_verify(
    note: &str,
    verifier_keys: &[VerifierKey],
) -> Result<Checkpoint, CheckpointError> {
    let verified = verify_note(note, verifier_keys)?;
    Checkpoint::from_text(&verified.text)
}

/// Signs `text` with every key (e.g. the old and the new key while a key
/// rotation is under way) and returns the signed note.
pub fn sign_note(text: &str, keys: &[&SigningKey]) -> Result<String, CheckpointError> {
    let bad = |reason: &str| CheckpointError::MalformedNote(reason.to_owned());
    if keys.is_empty() {
        return Err(bad("no signing key"));
    }
    if text.is_empty() || !text.ends_with('\n') {
        return Err(bad("the text must be non-empty and end with a newline"));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(bad("the text must not contain empty lines"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(bad("the text contains a control character"));
    }
    let mut note = format!("{text}\n");
    for key in keys {
        let mut raw = key.verifier.key_id.to_vec();
        raw.extend_from_slice(key.pair.sign(text.as_bytes()).as_ref());
        note.push_str(SIGNATURE_LINE_PREFIX);
        note.push_str(&key.verifier.name);
        note.push(' ');
        note.push_str(&BASE64.encode(raw));
        note.push('\n');
    }
    if note.len() > MAX_NOTE_BYTES {
        return Err(bad("the note is too large"));
    }
    Ok(note)
}

/// The checkpoint signing key: an Ed25519 key pair and the name it signs
/// under (by convention the log's origin). `Debug` shows no key material.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    verifier: VerifierKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.verifier.name)
            .field("key_id", &hex::encode(self.verifier.key_id))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key as PKCS#8 v2 DER (contains the public key).
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| KeyError::Random)
    }

    /// From PKCS#8 DER. v2 documents (ring's) are checked for a consistent
    /// public key; v1 documents (`openssl genpkey -algorithm ed25519`) are
    /// accepted so operators can create the key with standard tools.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, KeyError> {
        validate_key_name(name).map_err(KeyError::InvalidName)?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        let public_key: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| KeyError::InvalidKey("public key is not 32 bytes".to_owned()))?;
        let verifier = VerifierKey::new(name, public_key).map_err(KeyError::InvalidName)?;
        Ok(Self { pair, verifier })
    }

    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    pub fn key_id(&self) -> KeyId {
        self.verifier.key_id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.verifier.public_key
    }

    pub fn verifier_key(&self) -> VerifierKey {
        self.verifier.clone()
    }

    /// `<name>+<hex key id>+<base64(0x01 || public key)>`, to publish.
    pub fn verifier_key_string(&self) -> String {
        self.verifier.to_string()
    }

    /// Signs the checkpoint `origin`, `size`, `root` and returns the note.
    pub fn sign_checkpoint(
        &self,
        origin: &str,
        size: u64,
        root: &Hash,
    ) -> Result<String, CheckpointError> {
        let text = Checkpoint {
            origin: origin.to_owned(),
            size,
            root: *root,
        }
        .to_text()?;
        sign_note(&text, &[self])
    }

    /// Loads the key from a PEM "PRIVATE KEY" (PKCS#8) file. On unix the file
    /// must not be accessible by group or others.
    pub fn load(name: &str, path: &Path) -> Result<Self, KeyError> {
        let err_path = || path.to_path_buf();
        let meta = fs::metadata(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => KeyError::NotFound { path: err_path() },
            _ => KeyError::Read {
                path: err_path(),
                source,
            },
        })?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile { path: err_path() });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: err_path(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyError::Format {
                path: err_path(),
                reason: "the file is too large for a key".to_owned(),
            });
        }
        let bytes = fs::read(path).map_err(|source| KeyError::Read {
            path: err_path(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| KeyError::Format {
            path: err_path(),
            reason: "the file is not text".to_owned(),
        })?;
        let der = pem_decode(PRIVATE_KEY_LABEL, &text).map_err(|reason| KeyError::Format {
            path: err_path(),
            reason,
        })?;
        Self::from_pkcs8(name, &der)
    }

    /// Loads the key, or creates a new one if the file does not exist. The
    /// file is written in full under a temporary name with mode 0600 and then
    /// linked into place, so it is never seen half-written and an existing
    /// key is never replaced (if another process wins the race, its key is
    /// loaded).
    pub fn load_or_create(name: &str, path: &Path) -> Result<Self, KeyError> {
        match Self::load(name, path) {
            Err(KeyError::NotFound { .. }) => {}
            other => return other,
        }
        validate_key_name(name).map_err(KeyError::InvalidName)?;
        let pkcs8 = Self::generate_pkcs8()?;
        let key = Self::from_pkcs8(name, &pkcs8)?;
        match write_new_private_file(path, pem_encode(PRIVATE_KEY_LABEL, &pkcs8).as_bytes()) {
            Ok(()) => Ok(key),
            Err(KeyError::Write { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                Self::load(name, path)
            }
            Err(e) => Err(e),
        }
    }
}

/// Creates `path` with `contents`, mode 0600 on unix; fails with
/// `AlreadyExists` rather than replacing an existing file.
fn write_new_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let write_err = |source: io::Error| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err(io::Error::new(io::ErrorKind::InvalidInput, "no file name")))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut nonce = [0u8; 8];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError::Random)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        hex::encode(nonce)
    ));

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    // hard_link fails with AlreadyExists instead of replacing the target.
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let removed = fs::remove_file(&tmp);
    linked.map_err(write_err)?;
    removed.map_err(write_err)?;
    #[cfg(unix)]
    {
        // Make the new directory entry durable before the key is used.
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 PKCS#8 document wraps the 32-byte seed behind this fixed DER prefix.
    fn test_key(name: &str, seed_byte: u8) -> SigningKey {
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&[seed_byte; 32]);
        SigningKey::from_pkcs8(name, &pkcs8).unwrap()
    }

    const ROOT: Hash = [7u8; 32];

    #[test]
    fn rfc8032_test_1_through_pkcs8_v1() {
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend(
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap(),
        );
        let key = SigningKey::from_pkcs8("rfc8032", &pkcs8).unwrap();
        assert_eq!(
            hex::encode(key.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.pair.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn sign_and_verify_round_trip_with_exact_bytes() {
        let key = test_key("example.test/log", 1);
        let note = key.sign_checkpoint("example.test/log", 42, &ROOT).unwrap();
        let text = format!("example.test/log\n42\n{}\n", BASE64.encode(ROOT));
        assert!(note.starts_with(&format!("{text}\n\u{2014} example.test/log ")));
        assert!(note.ends_with('\n'));
        let cp = parse_and_verify(&note, &[key.verifier_key()]).unwrap();
        assert_eq!(
            cp,
            Checkpoint {
                origin: "example.test/log".into(),
                size: 42,
                root: ROOT
            }
        );
        // The signature line is base64(key id || 64-byte signature).
        let parsed = Note::parse(&note).unwrap();
        assert_eq!(parsed.text, text);
        assert_eq!(parsed.signatures.len(), 1);
        assert_eq!(parsed.signatures[0].key_id, key.key_id());
        assert_eq!(parsed.signatures[0].signature.len(), 64);
        assert_eq!(
            key.key_id(),
            key_id("example.test/log", key.public_key()),
            "key id"
        );
    }

    #[test]
    fn verifier_key_strings_round_trip_and_are_checked() {
        let key = test_key("example.test/log", 2);
        let s = key.verifier_key_string();
        let parts: Vec<&str> = s.splitn(3, '+').collect();
        assert_eq!(parts[0], "example.test/log");
        assert_eq!(parts[1], hex::encode(key.key_id()));
        assert_eq!(BASE64.decode(parts[2]).unwrap()[0], 0x01);
        let parsed: VerifierKey = s.parse().unwrap();
        assert_eq!(parsed, key.verifier_key());
        assert_eq!(parsed.to_string(), s);
        // Upper-case hex is the same id.
        let upper = format!("{}+{}+{}", parts[0], parts[1].to_uppercase(), parts[2]);
        assert_eq!(VerifierKey::parse(&upper).unwrap(), parsed);

        for bad in [
            "",
            "name",
            "name+00000000",
            &format!("other.name+{}+{}", parts[1], parts[2]),
            &format!("{}+00000000+{}", parts[0], parts[2]),
            &format!("{}+{}+{}", parts[0], &parts[1][..6], parts[2]),
            &format!("{}+{}+AQ==", parts[0], parts[1]),
            &format!("{}+{}+{}x", parts[0], parts[1], parts[2]),
            &format!("bad name+{}+{}", parts[1], parts[2]),
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        // Signature type other than Ed25519.
        let mut raw = vec![0x02];
        raw.extend_from_slice(key.public_key());
        let other_type = format!("{}+{}+{}", parts[0], parts[1], BASE64.encode(raw));
        assert!(VerifierKey::parse(&other_type).is_err());
    }

    #[test]
    fn public_key_pem_round_trips() {
        let key = test_key("k", 3);
        let pem = key.verifier_key().public_key_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(
            &parse_ed25519_public_key_pem(&pem).unwrap(),
            key.public_key()
        );
        assert!(parse_ed25519_public_key_pem("garbage").is_err());
        assert!(parse_ed25519_public_key_pem(&pem.replace("PUBLIC", "PRIVATE")).is_err());
    }

    #[test]
    fn unknown_keys_bad_signatures_and_malformed_notes_are_refused() {
        let key = test_key("example.test/log", 4);
        let other = test_key("example.test/log", 5);
        let note = key.sign_checkpoint("example.test/log", 3, &ROOT).unwrap();
        let known = [key.verifier_key()];

        assert_eq!(
            parse_and_verify(&note, &[other.verifier_key()]),
            Err(CheckpointError::NoKnownSignature)
        );
        assert_eq!(
            parse_and_verify(&note, &[]),
            Err(CheckpointError::NoKnownSignature)
        );

        // Changed text under a valid-looking signature.
        let forged = note.replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(
            parse_and_verify(&forged, &known),
            Err(CheckpointError::BadSignature { .. })
        ));
        // A flipped signature bit.
        let parsed = Note::parse(&note).unwrap();
        let mut raw = parsed.signatures[0].key_id.to_vec();
        let mut sig = parsed.signatures[0].signature.clone();
        sig[10] ^= 1;
        raw.extend(sig);
        let flipped = format!(
            "{}\n\u{2014} example.test/log {}\n",
            parsed.text,
            BASE64.encode(raw)
        );
        assert!(matches!(
            parse_and_verify(&flipped, &known),
            Err(CheckpointError::BadSignature { .. })
        ));

        let sig_line = note.split("\n\n").nth(1).unwrap();
        let text = &parsed.text;
        for (what, bad) in [
            ("no blank line", note.replacen("\n\n", "\n", 1)),
            ("crlf", note.replace('\n', "\r\n")),
            ("no final newline", note.trim_end().to_owned()),
            ("no signatures", format!("{text}\n")),
            ("hyphen instead of em dash", note.replace('\u{2014}', "-")),
            ("tab", note.replacen("example", "ex\tample", 1)),
            (
                "too short signature",
                format!("{text}\n\u{2014} example.test/log AAAA\n"),
            ),
            (
                "bad base64",
                format!("{text}\n\u{2014} example.test/log !!!!\n"),
            ),
            ("no space", format!("{text}\n\u{2014} example.test/log\n")),
            ("duplicate", format!("{text}\n{sig_line}{sig_line}")),
            (
                "two lines only",
                key.sign_checkpoint("o", 1, &ROOT)
                    .unwrap()
                    .replacen("\n1\n", "\n", 1),
            ),
        ] {
            assert!(parse_and_verify(&bad, &known).is_err(), "{what} accepted");
        }

        // Checkpoint text rules.
        for bad in [
            "o\n01\nAAAA\n",
            "o\n-1\nAAAA\n",
            "o\n18446744073709551616\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "o\n1\nBwcH\n",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\next\n",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        ] {
            assert!(Checkpoint::from_text(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Checkpoint::from_text("o\n0\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n")
                .unwrap()
                .size,
            0
        );
        // Origins that would break the format are not signed.
        for origin in ["", "a b", "a+b", "a\nb"] {
            assert!(key.sign_checkpoint(origin, 1, &ROOT).is_err(), "{origin:?}");
        }
    }

    #[test]
    fn additional_signatures_and_key_rotation() {
        let old = test_key("example.test/log", 6);
        let new = test_key("example.test/log", 7);
        let witness = test_key("witness.example", 8);
        let text = Checkpoint {
            origin: "example.test/log".into(),
            size: 9,
            root: ROOT,
        }
        .to_text()
        .unwrap();
        let note = sign_note(&text, &[&new, &old, &witness]).unwrap();
        // Same name, different key ids: each verifier set finds its key.
        for keys in [
            vec![old.verifier_key()],
            vec![new.verifier_key()],
            vec![new.verifier_key(), old.verifier_key()],
            vec![witness.verifier_key()],
        ] {
            let verified = verify_note(&note, &keys).unwrap();
            assert_eq!(verified.verified_by.len(), keys.len());
            assert_eq!(parse_and_verify(&note, &keys).unwrap().size, 9);
        }
        // A known key's bad signature rejects the note even if another verifies.
        let parsed = Note::parse(&note).unwrap();
        let mut lines: Vec<String> = Vec::new();
        for (i, s) in parsed.signatures.iter().enumerate() {
            let mut raw = s.key_id.to_vec();
            let mut sig = s.signature.clone();
            if i == 1 {
                sig[0] ^= 1;
            }
            raw.extend(sig);
            lines.push(format!("\u{2014} {} {}\n", s.name, BASE64.encode(raw)));
        }
        let tampered = format!("{}\n{}", parsed.text, lines.concat());
        assert!(verify_note(&tampered, &[new.verifier_key()]).is_ok());
        assert!(matches!(
            verify_note(&tampered, &[new.verifier_key(), old.verifier_key()]),
            Err(CheckpointError::BadSignature { .. })
        ));
    }

    #[test]
    fn key_files_are_created_private_and_loaded_with_precise_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.key");
        assert!(matches!(
            SigningKey::load("log", &path),
            Err(KeyError::NotFound { .. })
        ));
        let created = SigningKey::load_or_create("log", &path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let loaded = SigningKey::load("log", &path).unwrap();
        assert_eq!(loaded.public_key(), created.public_key());
        let again = SigningKey::load_or_create("log", &path).unwrap();
        assert_eq!(again.public_key(), created.public_key());
        assert!(format!("{created:?}").contains("key_id"));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = SigningKey::load("log", &path).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions { mode: 0o644, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"));
            // load_or_create must not replace a key it cannot use.
            assert!(SigningKey::load_or_create("log", &path).is_err());
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }

        let write_private = |name: &str, contents: &str| {
            let p = dir.path().join(name);
            write_new_private_file(&p, contents.as_bytes()).unwrap();
            p
        };
        let garbage = write_private("garbage.key", "not a key");
        assert!(matches!(
            SigningKey::load("log", &garbage),
            Err(KeyError::Format { .. })
        ));
        let encrypted = write_private(
            "enc.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        assert!(matches!(
            SigningKey::load("log", &encrypted),
            Err(KeyError::Format { .. })
        ));
        let wrong = write_private("wrong.key", &pem_encode(PRIVATE_KEY_LABEL, b"not pkcs8"));
        assert!(matches!(
            SigningKey::load("log", &wrong),
            Err(KeyError::InvalidKey(_))
        ));
        assert!(matches!(
            SigningKey::load("log", dir.path()),
            Err(KeyError::NotAFile { .. })
        ));
        assert!(matches!(
            SigningKey::load("bad name", &path),
            Err(KeyError::InvalidName(_))
        ));
        // An existing file is never replaced.
        let err = write_new_private_file(&path, b"x").unwrap_err();
        assert!(
            matches!(err, KeyError::Write { ref source, .. } if source.kind() == io::ErrorKind::AlreadyExists)
        );
        assert_eq!(
            SigningKey::load("log", &path).unwrap().public_key(),
            created.public_key()
        );
    }

    #[test]
    fn openssl_style_v1_keys_load() {
        // `openssl genpkey -algorithm ed25519` writes PKCS#8 v1 in this PEM form.
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&[9u8; 32]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openssl.key");
        write_new_private_file(&path, pem_encode(PRIVATE_KEY_LABEL, &pkcs8).as_bytes()).unwrap();
        let key = SigningKey::load("log", &path).unwrap();
        assert_eq!(key.public_key(), test_key("log", 9).public_key());
    }
}
