//! Authentication and service-level authorization for creditops.
//!
//! Three layers guard every request (DESIGN.md, "Identity and authorization"); this
//! crate implements the first two and the dev-only token issuer:
//!
//! 1. **Authentication** ([`TokenVerifier`]): a bearer JWT is accepted only if it is
//!    signed by a key from the configured JWKS with a *pinned asymmetric* algorithm
//!    (EdDSA/Ed25519, ES256/P-256, RS256 with RSA >= 2048 bits; never `HS*`, never
//!    `none`), its `iss` is the configured issuer, its `aud` is exactly this service's
//!    audience (`creditops-<service>`, see [`service_audience`]), and `exp`/`nbf` are
//!    present, numeric and current (30 s leeway). A token minted for one service is
//!    refused by every other one (S1). The verified result says only *who* the caller
//!    is ([`VerifiedToken::subject`]); roles come from the staff directory.
//! 2. **Service RBAC** ([`Authorizer`]): a casbin model + policy per service; subject =
//!    role from the staff directory, object = matched route template, action = HTTP
//!    method. Deny by default and fail closed (S8). Decisions are precomputed into an
//!    exact-match table, so a check costs a few hash lookups.
//! 3. Domain rules (four-eyes, SoD, competence) live in `creditops-domain`.
//!
//! [`DevIdentityProvider`] is a local Ed25519 token issuer for `--dev` mode only; in
//! production tokens come from the bank's identity provider (`--jwks`, `--issuer`).
//!
//! Every failure crosses the crate boundary as one [`AuthError`]. All token
//! rejections ([`AuthError::is_unauthenticated`]) map to HTTP 401; their `Display`
//! never echoes the token or any value taken from it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authz;
mod dev_idp;
mod error;
mod jwt;

pub use authz::Authorizer;
pub use dev_idp::DevIdentityProvider;
pub use error::AuthError;
pub use jwt::{DEFAULT_MAX_TOKEN_LIFETIME, TokenVerifier, VerifiedToken};

/// The services of creditops; each has its own JWT audience and casbin policy.
pub const SERVICES: [&str; 5] = ["market", "backoffice", "risk", "audit", "admin"];

/// Largest bearer token accepted, in bytes. Longer tokens are refused before any
/// parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Clock-skew allowance, in seconds, applied to `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 30;

/// The JWT audience of a service: `creditops-<service>`.
///
/// The name is not validated here (this only formats); [`is_service`] tells whether
/// it is one of [`SERVICES`].
pub fn service_audience(service: &str) -> String {
    format!("creditops-{service}")
}

/// Whether `name` is one of the five [`SERVICES`].
pub fn is_service(name: &str) -> bool {
    SERVICES.contains(&name)
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    hex::encode(ctx.finish().as_ref())
}

// Everything a service shares between tokio tasks must be Send + Sync.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TokenVerifier>();
    assert_send_sync::<Authorizer>();
    assert_send_sync::<DevIdentityProvider>();
    assert_send_sync::<AuthError>();
    // Loading a policy can happen inside a spawned task.
    fn assert_send<T: Send>(_: T) {}
    assert_send(Authorizer::from_text("", ""));
    assert_send(Authorizer::load(std::path::Path::new("")));
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_prefixed_and_distinct() {
        let auds: Vec<String> = SERVICES.iter().map(|s| service_audience(s)).collect();
        assert_eq!(auds[0], "creditops-market");
        assert_eq!(auds[1], "creditops-backoffice");
        let unique: std::collections::HashSet<_> = auds.iter().collect();
        assert_eq!(unique.len(), SERVICES.len());
        assert!(is_service("risk"));
        assert!(!is_service("Risk"));
        assert!(!is_service(""));
    }
}
