//! Real keys and hand-built tokens for the integration tests (no mocks).
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use creditops_auth::{AuthError, DevIdentityProvider, service_audience};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::{Value, json};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// How the third segment is made.
pub enum Sign<'a> {
    Ed(&'a Ed25519KeyPair),
    Es(&'a EcdsaKeyPair),
    Rs(&'a RsaKeyPair),
    /// HMAC-SHA256 with this secret (the classic key-confusion attack).
    Hs256(&'a [u8]),
    /// A literal third segment (e.g. empty for `alg: none`).
    Literal(&'a str),
}

/// A compact JWS over exactly these header and claims texts.
pub fn raw_token(header_json: &str, claims_json: &str, sign: Sign<'_>) -> String {
    let input = format!("{}.{}", b64(header_json), b64(claims_json));
    let signature = match sign {
        Sign::Ed(key) => b64(key.sign(input.as_bytes())),
        Sign::Es(key) => b64(key
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("ecdsa sign")),
        Sign::Rs(key) => {
            let mut sig = vec![0; key.public().modulus_len()];
            key.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("rsa sign");
            b64(sig)
        }
        Sign::Hs256(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            b64(ring::hmac::sign(&key, input.as_bytes()))
        }
        Sign::Literal(s) => s.to_owned(),
    };
    format!("{input}.{signature}")
}

pub fn token(header: &Value, claims: &Value, sign: Sign<'_>) -> String {
    raw_token(&header.to_string(), &claims.to_string(), sign)
}

/// Valid claims for `sub` at `service`, from the dev issuer, valid for 5 minutes.
pub fn claims(sub: &str, service: &str, now: i64) -> Value {
    json!({
        "iss": DevIdentityProvider::ISSUER,
        "sub": sub,
        "aud": service_audience(service),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// `claims` with one member replaced (or removed, for `Value::Null`).
pub fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if let Some(obj) = claims.as_object_mut() {
        if value.is_null() {
            obj.remove(name);
        } else {
            obj.insert(name.to_owned(), value);
        }
    }
    claims
}

/// A dev identity provider in `dir`, plus its private key read back from disk so
/// tests can sign crafted claims with the trusted key.
pub fn dev_idp(dir: &Path) -> (DevIdentityProvider, Ed25519KeyPair) {
    let idp = DevIdentityProvider::load_or_create(dir).expect("dev idp");
    let pkcs8 = std::fs::read(dir.join(DevIdentityProvider::KEY_FILE)).expect("key file");
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("pkcs8");
    (idp, key)
}

pub fn ed_key() -> (Ed25519KeyPair, Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generate");
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse");
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref()),
        "kid": "ed-test-1", "alg": "EdDSA", "use": "sig",
    });
    (key, jwk)
}

pub fn es_key() -> (EcdsaKeyPair, Value) {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("parse");
    let point = key.public_key().as_ref(); // 0x04 || x || y
    assert_eq!(point.len(), 65);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]),
        "kid": "es-test-1", "alg": "ES256", "use": "sig",
    });
    (key, jwk)
}

/// The 2048-bit test RSA key and its JWK (kid `rsa-test-1`) from the fixtures.
pub fn rsa_key() -> (RsaKeyPair, Value) {
    let pem = std::fs::read_to_string(format!("{FIXTURES}/rsa2048-test-key.pem")).expect("pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).expect("pem base64");
    let key = RsaKeyPair::from_pkcs8(&der).expect("pkcs8 rsa");
    let jwks: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/rsa2048-test-jwks.json")).expect("jwks"),
    )
    .expect("json");
    (key, jwks["keys"][0].clone())
}

pub fn jwks(keys: &[&Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// The variant name, for tables of expected outcomes.
pub fn kind(err: &AuthError) -> &'static str {
    match err {
        AuthError::Malformed(_) => "Malformed",
        AuthError::BadSignature => "BadSignature",
        AuthError::Expired => "Expired",
        AuthError::NotYetValid => "NotYetValid",
        AuthError::WrongAudience => "WrongAudience",
        AuthError::WrongIssuer => "WrongIssuer",
        AuthError::UnsupportedAlgorithm => "UnsupportedAlgorithm",
        AuthError::UnknownKey => "UnknownKey",
        AuthError::BadSubject => "BadSubject",
        AuthError::InvalidJwks(_) => "InvalidJwks",
        AuthError::InvalidConfig(_) => "InvalidConfig",
        AuthError::UnknownService(_) => "UnknownService",
        AuthError::InvalidTtl(_) => "InvalidTtl",
        AuthError::NoDevKey(_) => "NoDevKey",
        AuthError::InvalidDevKey { .. } => "InvalidDevKey",
        AuthError::Io { .. } => "Io",
        AuthError::InvalidPolicy(_) => "InvalidPolicy",
        AuthError::Crypto(_) => "Crypto",
        _ => "other",
    }
}
