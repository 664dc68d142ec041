//! The crate's one error type.

use std::path::PathBuf;

/// Every error of `creditops-auth`.
///
/// Two groups:
/// * **token rejections** (`Malformed` .. `BadSubject`): the caller is not
///   authenticated. [`AuthError::is_unauthenticated`] is true and they all map to
///   HTTP 401. Their `Display` is fixed text: it never contains the token, nor any
///   value read from it (issuer, audience, kid, subject), so it is safe to log and
///   to return to the client.
/// * **configuration and I/O errors**: a bad JWKS, a bad policy, a missing dev key,
///   a file-system failure. These are the operator's problem (startup failure or
///   HTTP 500), never the caller's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is absent, empty, too large, not a compact JWS, not JSON, or a
    /// required claim is missing or has the wrong type. The reason is fixed text.
    #[error("bearer token missing or malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not verify with the selected key.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` (or `iat`) is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `aud` is not exactly this service's audience.
    #[error("token audience is not this service")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not trusted")]
    WrongIssuer,
    /// The header `alg` is not one of the pinned algorithms, or does not match the
    /// algorithm of the key selected by `kid`.
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header `kid` names no key of the trusted key set (or no key has the
    /// token's algorithm).
    #[error("token key is not in the trusted key set")]
    UnknownKey,
    /// `sub` is not a valid staff id.
    #[error("token subject is not a valid staff id")]
    BadSubject,

    /// `exp` lies further from `nbf`/`iat` (or from now) than the maximum
    /// token lifetime: a stolen long-lived token must not work for years.
    #[error("token lifetime exceeds the maximum of {max_seconds} s")]
    LifetimeTooLong { max_seconds: i64 },

    /// The JWKS given to [`crate::TokenVerifier::from_jwks`] is unusable.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    /// Other invalid verifier settings (e.g. an empty issuer or audience).
    #[error("invalid token verifier configuration: {0}")]
    InvalidConfig(&'static str),
    /// A service name that is not one of [`crate::SERVICES`].
    #[error("unknown service {0:?} (expected one of market, backoffice, risk, audit, admin)")]
    UnknownService(String),
    /// A dev token lifetime outside `1..=DevIdentityProvider::MAX_TTL_SECONDS`.
    #[error("invalid token lifetime {0} s (must be between 1 s and 12 h)")]
    InvalidTtl(i64),
    /// [`crate::DevIdentityProvider::load`] found no key.
    #[error(
        "no dev identity provider key exists at {}; start `creditops serve --dev` once (or \
         call DevIdentityProvider::load_or_create) to create one",
        .0.display()
    )]
    NoDevKey(PathBuf),
    /// The dev key file exists but is not an Ed25519 PKCS#8 v2 key.
    #[error("dev identity provider key {} is invalid: {reason}", path.display())]
    InvalidDevKey { path: PathBuf, reason: &'static str },
    /// A file-system operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The casbin model or policy is unusable.
    #[error("invalid authorization policy: {0}")]
    InvalidPolicy(String),
    /// Key generation, signing or serialization failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

impl AuthError {
    /// True for token rejections: the caller is not authenticated (HTTP 401).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::Malformed(_)
                | AuthError::BadSignature
                | AuthError::Expired
                | AuthError::NotYetValid
                | AuthError::WrongAudience
                | AuthError::WrongIssuer
                | AuthError::UnsupportedAlgorithm
                | AuthError::UnknownKey
                | AuthError::BadSubject
                | AuthError::LifetimeTooLong { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuthError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
