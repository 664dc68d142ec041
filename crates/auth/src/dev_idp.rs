//! A local token issuer for `--dev` mode only.
//!
//! It keeps one Ed25519 key in the data directory and mints short-lived EdDSA
//! tokens for demo staff, so that the services can be tried without the bank's
//! identity provider. Its tokens go through the very same [`TokenVerifier`] as
//! production tokens; the only difference is the trusted JWKS and issuer. Nothing
//! in production mode constructs it.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use creditops_domain::StaffId;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

use crate::{AuthError, TokenVerifier, is_service, service_audience, sha256_hex};

/// A PKCS#8 v2 Ed25519 document is 83 bytes; refuse to read anything huge.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The dev identity provider: an Ed25519 key pair and its public JWKS.
pub struct DevIdentityProvider {
    key_pair: Ed25519KeyPair,
    kid: String,
    jwks_json: String,
}

impl fmt::Debug for DevIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevIdentityProvider")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIdentityProvider {
    /// The `iss` of every dev token.
    pub const ISSUER: &'static str = "creditops-dev-idp";
    /// The private key file in the data directory (PKCS#8 v2 DER, mode 0600).
    pub const KEY_FILE: &'static str = "dev-idp-key.pk8";
    /// The public key set written next to it.
    pub const JWKS_FILE: &'static str = "dev-idp-jwks.json";
    /// Longest lifetime [`Self::mint`] accepts: 12 hours, the verifiers' default
    /// maximum token lifetime.
    pub const MAX_TTL_SECONDS: i64 = 12 * 60 * 60;

    /// Loads the key from `data_dir`, or generates it on first use.
    ///
    /// Creates `data_dir` (mode 0700 on unix) if needed. A new key is written to a
    /// temporary file with mode 0600 and published with a hard link, which is atomic
    /// and never replaces an existing key: services starting at the same time all end
    /// up with the one key that won, and nobody ever reads a half-written file. Then
    /// (re)writes `dev-idp-jwks.json` from the key.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, AuthError> {
        create_private_dir(data_dir)?;
        let key_path = data_dir.join(Self::KEY_FILE);
        let idp = match read_key(&key_path)? {
            Some(pkcs8) => Self::from_pkcs8(&key_path, &pkcs8)?,
            None => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| AuthError::Crypto("Ed25519 key generation failed"))?;
                match publish_private_file(&key_path, pkcs8.as_ref()) {
                    Ok(()) => {
                        tracing::info!(path = %key_path.display(), "created a dev identity provider key");
                        Self::from_pkcs8(&key_path, pkcs8.as_ref())?
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let pkcs8 = read_key(&key_path)?
                            .ok_or_else(|| AuthError::NoDevKey(key_path.clone()))?;
                        Self::from_pkcs8(&key_path, &pkcs8)?
                    }
                    Err(e) => return Err(AuthError::io("create", key_path, e)),
                }
            }
        };
        write_replacing(&data_dir.join(Self::JWKS_FILE), idp.jwks_json.as_bytes())?;
        Ok(idp)
    }

    /// Loads an existing key from `data_dir`; never creates one.
    ///
    /// Fails with [`AuthError::NoDevKey`] if there is none.
    pub fn load(data_dir: &Path) -> Result<Self, AuthError> {
        let key_path = data_dir.join(Self::KEY_FILE);
        let pkcs8 = read_key(&key_path)?.ok_or_else(|| AuthError::NoDevKey(key_path.clone()))?;
        Self::from_pkcs8(&key_path, &pkcs8)
    }

    fn from_pkcs8(path: &Path, pkcs8: &[u8]) -> Result<Self, AuthError> {
        let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| AuthError::InvalidDevKey {
            path: path.to_owned(),
            reason: "not an Ed25519 PKCS#8 v2 document",
        })?;
        let public = key_pair.public_key().as_ref();
        let kid = sha256_hex(&[public])[..16].to_owned();
        let jwks = json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(public),
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        });
        let jwks_json = serde_json::to_string_pretty(&jwks)
            .map_err(|_| AuthError::Crypto("cannot serialize the JWKS"))?;
        Ok(Self {
            key_pair,
            kid,
            jwks_json,
        })
    }

    /// The key id: the first 16 hex characters of SHA-256 of the raw public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set (one OKP/Ed25519 key), as written to `dev-idp-jwks.json`.
    pub fn jwks_json(&self) -> String {
        self.jwks_json.clone()
    }

    /// A verifier that accepts this provider's tokens for `service`.
    pub fn verifier(&self, service: &str) -> Result<TokenVerifier, AuthError> {
        if !is_service(service) {
            return Err(AuthError::UnknownService(service.to_owned()));
        }
        TokenVerifier::from_jwks(&self.jwks_json, Self::ISSUER, &service_audience(service))
    }

    /// Signs arbitrary `claims` with the dev key (tests of claim rules).
    #[cfg(test)]
    pub(crate) fn sign_claims(&self, claims: &serde_json::Value) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key_pair.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    /// Mints an EdDSA token for `subject` at `service`, valid from now for
    /// `ttl_seconds` (1 s to 24 h).
    ///
    /// Header: `alg` EdDSA, `typ` JWT, `kid`. Claims: `iss` [`Self::ISSUER`], `sub`,
    /// `aud` = `creditops-<service>`, `iat` = `nbf` = now, `exp` = now + ttl, `jti` a
    /// random UUID.
    pub fn mint(
        &self,
        subject: &StaffId,
        service: &str,
        ttl_seconds: i64,
    ) -> Result<String, AuthError> {
        if !is_service(service) {
            return Err(AuthError::UnknownService(service.to_owned()));
        }
        if !(1..=Self::MAX_TTL_SECONDS).contains(&ttl_seconds) {
            return Err(AuthError::InvalidTtl(ttl_seconds));
        }
        let now = chrono::Utc::now().timestamp();
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.kid });
        let claims = json!({
            "iss": Self::ISSUER,
            "sub": subject.as_str(),
            "aud": service_audience(service),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key_pair.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// Reads the key file; `Ok(None)` if it does not exist.
fn read_key(path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::io("read", path, e)),
    };
    if !meta.is_file() || meta.len() > MAX_KEY_FILE_BYTES {
        return Err(AuthError::InvalidDevKey {
            path: path.to_owned(),
            reason: "not a regular file of at most 4 KiB",
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Whoever can read the key can mint tokens for anybody: refused, as
        // the audit signing key is (hardening finding 11).
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(AuthError::InvalidDevKey {
                path: path.to_owned(),
                reason: "readable or writable by other users; chmod 600 it",
            });
        }
    }
    fs::read(path)
        .map(Some)
        .map_err(|e| AuthError::io("read", path, e))
}

fn create_private_dir(dir: &Path) -> Result<(), AuthError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| AuthError::io("create directory", dir, e))
}

/// Publishes `bytes` at `path` with mode 0600, complete or not at all; fails with
/// `AlreadyExists` if `path` exists.
fn publish_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    write_new_private_file(&tmp, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked
}

/// A unique temporary name next to `path` (several services may start in one
/// process at once).
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()))
}

/// Creates `path` (failing if it exists) with mode 0600 and writes `bytes`. A
/// partial file is removed.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never
/// see a half-written file.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let tmp = temp_sibling(path);
    fs::write(&tmp, bytes).map_err(|e| AuthError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        AuthError::io("replace", path, e)
    })
}
