//! Token verification with real keys and real tokens: what is accepted, and a table
//! of attacks that must each be refused with the right kind of error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use creditops_auth::{
    AuthError, DevIdentityProvider, MAX_TOKEN_BYTES, SERVICES, TokenVerifier, service_audience,
};
use creditops_domain::StaffId;
use serde_json::{Value, json};

fn verifier_for(idp: &DevIdentityProvider, service: &str) -> TokenVerifier {
    TokenVerifier::from_jwks(
        &idp.jwks_json(),
        DevIdentityProvider::ISSUER,
        &service_audience(service),
    )
    .expect("verifier")
}

#[test]
fn dev_tokens_verify_at_their_own_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, _) = dev_idp(dir.path());
    for service in SERVICES {
        for who in ["lo-1", "ba_2", "risk.controller-7"] {
            let subject = StaffId::parse(who).expect("id");
            let token = idp.mint(&subject, service, 600).expect("mint");
            let verified = verifier_for(&idp, service)
                .verify(&token)
                .unwrap_or_else(|e| panic!("{service}/{who}: {e}"));
            assert_eq!(verified.subject, subject);
            let jti = verified.token_id.expect("dev tokens carry a jti");
            assert!(uuid::Uuid::parse_str(&jti).is_ok());
            let exp_delta = verified.expires_at - now();
            assert!((598..=600).contains(&exp_delta), "{exp_delta}");
        }
    }
}

#[test]
fn tolerated_variations_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, key) = dev_idp(dir.path());
    let verifier = verifier_for(&idp, "market");
    let t = now();
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": idp.kid() });
    let base = claims("lo-1", "market", t);
    let cases: Vec<(&str, Value, Value)> = vec![
        ("as minted", header.clone(), base.clone()),
        (
            "expired within the 30 s leeway",
            header.clone(),
            with(base.clone(), "exp", json!(t - 10)),
        ),
        (
            "nbf within the 30 s leeway",
            header.clone(),
            with(base.clone(), "nbf", json!(t + 10)),
        ),
        (
            "no iat",
            header.clone(),
            with(base.clone(), "iat", Value::Null),
        ),
        (
            "no jti",
            header.clone(),
            with(base.clone(), "jti", Value::Null),
        ),
        (
            "fractional NumericDates",
            header.clone(),
            with(
                with(base.clone(), "exp", json!(t as f64 + 60.5)),
                "nbf",
                json!(t as f64 - 0.5),
            ),
        ),
        (
            "aud as a one-element array",
            header.clone(),
            with(base.clone(), "aud", json!(["creditops-market"])),
        ),
        (
            "no kid: keys of the token's alg are tried",
            json!({ "alg": "EdDSA" }),
            base.clone(),
        ),
        (
            "typ at+jwt (RFC 9068)",
            json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": idp.kid() }),
            base.clone(),
        ),
        (
            "unknown private claims",
            header.clone(),
            with(base.clone(), "roles", json!(["admin"])),
        ),
    ];
    for (name, header, claims) in cases {
        let token = token(&header, &claims, Sign::Ed(&key));
        let verified = verifier
            .verify(&token)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.subject.as_str(), "lo-1", "{name}");
    }
}

/// The attack table: each token is refused, with the kind of error a caller can
/// tell apart. All of them are 401s.
#[test]
fn attacks_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, key) = dev_idp(dir.path());
    let verifier = verifier_for(&idp, "market");
    let t = now();
    let kid = idp.kid().to_owned();
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid });
    let good = claims("lo-1", "market", t);
    let (other_key, _) = ed_key();
    let (es_key, _) = es_key();
    let jwks: Value = serde_json::from_str(&idp.jwks_json()).expect("jwks");
    let public_x = jwks["keys"][0]["x"].as_str().expect("x").to_owned();
    let public_raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &public_x)
            .expect("x bytes");
    let valid = token(&header, &good, Sign::Ed(&key));
    let (h, p, _) = {
        let mut it = valid.split('.');
        (
            it.next().expect("h").to_owned(),
            it.next().expect("p").to_owned(),
            it.next().expect("s").to_owned(),
        )
    };
    let tampered_payload = format!(
        "{h}.{}.{}",
        b64(with(good.clone(), "sub", json!("admin-1")).to_string()),
        valid.rsplit('.').next().expect("sig")
    );
    let oversized = token(
        &header,
        &with(good.clone(), "padding", json!("x".repeat(MAX_TOKEN_BYTES))),
        Sign::Ed(&key),
    );

    let cases: Vec<(&str, String, &str)> = vec![
        // Algorithm attacks.
        (
            "alg none, empty signature",
            token(
                &json!({"alg": "none", "typ": "JWT"}),
                &good,
                Sign::Literal(""),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "alg none with kid",
            token(
                &json!({"alg": "none", "kid": kid}),
                &good,
                Sign::Literal(""),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "alg None",
            token(&json!({"alg": "None"}), &good, Sign::Literal("")),
            "UnsupportedAlgorithm",
        ),
        (
            "alg NONE with a fake signature",
            token(&json!({"alg": "NONE"}), &good, Sign::Literal("c2ln")),
            "UnsupportedAlgorithm",
        ),
        (
            "HS256 keyed with the raw public key",
            token(
                &json!({"alg": "HS256", "kid": kid}),
                &good,
                Sign::Hs256(&public_raw),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "HS256 keyed with the base64url public key",
            token(
                &json!({"alg": "HS256"}),
                &good,
                Sign::Hs256(public_x.as_bytes()),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "HS256 keyed with the JWKS text",
            token(
                &json!({"alg": "HS256", "kid": kid}),
                &good,
                Sign::Hs256(idp.jwks_json().as_bytes()),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "HS512",
            token(&json!({"alg": "HS512"}), &good, Sign::Hs256(&public_raw)),
            "UnsupportedAlgorithm",
        ),
        (
            "ES256 header on the EdDSA kid",
            token(
                &json!({"alg": "ES256", "kid": kid}),
                &good,
                Sign::Es(&es_key),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "RS256 header on the EdDSA kid",
            token(&json!({"alg": "RS256", "kid": kid}), &good, Sign::Ed(&key)),
            "UnsupportedAlgorithm",
        ),
        (
            "PS256 (unpinned)",
            token(&json!({"alg": "PS256"}), &good, Sign::Ed(&key)),
            "UnsupportedAlgorithm",
        ),
        (
            "ES256 without kid, no ES256 key",
            token(&json!({"alg": "ES256"}), &good, Sign::Es(&es_key)),
            "UnknownKey",
        ),
        (
            "alg not a string",
            token(&json!({"alg": 1}), &good, Sign::Ed(&key)),
            "Malformed",
        ),
        (
            "no alg",
            token(&json!({"kid": kid}), &good, Sign::Ed(&key)),
            "Malformed",
        ),
        // Wrong key / broken signature.
        (
            "signed by another Ed25519 key, same kid",
            token(&header, &good, Sign::Ed(&other_key)),
            "BadSignature",
        ),
        (
            "signed by another Ed25519 key, no kid",
            token(&json!({"alg": "EdDSA"}), &good, Sign::Ed(&other_key)),
            "BadSignature",
        ),
        (
            "unknown kid",
            token(
                &json!({"alg": "EdDSA", "kid": "not-a-key"}),
                &good,
                Sign::Ed(&key),
            ),
            "UnknownKey",
        ),
        (
            "payload swapped after signing",
            tampered_payload,
            "BadSignature",
        ),
        ("signature stripped", format!("{h}.{p}."), "BadSignature"),
        (
            "signature of another token",
            format!(
                "{h}.{p}.{}",
                token(&header, &claims("lo-2", "market", t), Sign::Ed(&key))
                    .rsplit('.')
                    .next()
                    .expect("sig")
            ),
            "BadSignature",
        ),
        // Issuer and audience.
        (
            "wrong issuer",
            token(
                &header,
                &with(good.clone(), "iss", json!("https://evil.example")),
                Sign::Ed(&key),
            ),
            "WrongIssuer",
        ),
        (
            "issuer as an array containing ours",
            token(
                &header,
                &with(
                    good.clone(),
                    "iss",
                    json!([DevIdentityProvider::ISSUER, "x"]),
                ),
                Sign::Ed(&key),
            ),
            "WrongIssuer",
        ),
        (
            "missing issuer",
            token(
                &header,
                &with(good.clone(), "iss", Value::Null),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "audience for two services",
            token(
                &header,
                &with(
                    good.clone(),
                    "aud",
                    json!(["creditops-market", "creditops-backoffice"]),
                ),
                Sign::Ed(&key),
            ),
            "WrongAudience",
        ),
        (
            "audience prefix",
            token(
                &header,
                &with(good.clone(), "aud", json!("creditops-market-2")),
                Sign::Ed(&key),
            ),
            "WrongAudience",
        ),
        (
            "audience not a string",
            token(
                &header,
                &with(good.clone(), "aud", json!(7)),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "missing audience",
            token(
                &header,
                &with(good.clone(), "aud", Value::Null),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        // Time claims.
        (
            "expired beyond the leeway",
            token(
                &header,
                &with(good.clone(), "exp", json!(t - 120)),
                Sign::Ed(&key),
            ),
            "Expired",
        ),
        (
            "nbf in the future beyond the leeway",
            token(
                &header,
                &with(good.clone(), "nbf", json!(t + 120)),
                Sign::Ed(&key),
            ),
            "NotYetValid",
        ),
        (
            "iat in the future beyond the leeway",
            token(
                &header,
                &with(good.clone(), "iat", json!(t + 120)),
                Sign::Ed(&key),
            ),
            "NotYetValid",
        ),
        (
            "nbf as a string",
            token(
                &header,
                &with(good.clone(), "nbf", json!(t.to_string())),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "exp as a string",
            token(
                &header,
                &with(good.clone(), "exp", json!((t + 300).to_string())),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "iat as a string",
            token(
                &header,
                &with(good.clone(), "iat", json!(t.to_string())),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "negative exp",
            token(
                &header,
                &with(good.clone(), "exp", json!(-1)),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "missing exp",
            token(
                &header,
                &with(good.clone(), "exp", Value::Null),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "missing nbf",
            token(
                &header,
                &with(good.clone(), "nbf", Value::Null),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        // Subject.
        (
            "missing sub",
            token(
                &header,
                &with(good.clone(), "sub", Value::Null),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "sub not a staff id (space)",
            token(
                &header,
                &with(good.clone(), "sub", json!("lo 1")),
                Sign::Ed(&key),
            ),
            "BadSubject",
        ),
        (
            "sub not a staff id (injection)",
            token(
                &header,
                &with(good.clone(), "sub", json!("'; drop table staff;--")),
                Sign::Ed(&key),
            ),
            "BadSubject",
        ),
        (
            "sub empty",
            token(
                &header,
                &with(good.clone(), "sub", json!("")),
                Sign::Ed(&key),
            ),
            "BadSubject",
        ),
        (
            "sub too long",
            token(
                &header,
                &with(good.clone(), "sub", json!("x".repeat(65))),
                Sign::Ed(&key),
            ),
            "BadSubject",
        ),
        (
            "sub a number",
            token(
                &header,
                &with(good.clone(), "sub", json!(42)),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "jti a number",
            token(
                &header,
                &with(good.clone(), "jti", json!(42)),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        // Parser differentials and header tricks.
        (
            "duplicate sub member",
            raw_token(
                &header.to_string(),
                &format!(
                    r#"{{"sub":"lo-1","sub":"admin-1","iss":"{}","aud":"creditops-market","nbf":{t},"exp":{}}}"#,
                    DevIdentityProvider::ISSUER,
                    t + 300
                ),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "duplicate alg member",
            raw_token(
                &format!(r#"{{"alg":"EdDSA","alg":"HS256","kid":"{kid}"}}"#),
                &good.to_string(),
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "crit header",
            token(
                &json!({"alg": "EdDSA", "kid": kid, "crit": ["b64"], "b64": false}),
                &good,
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "typ of another token kind",
            token(
                &json!({"alg": "EdDSA", "kid": kid, "typ": "dpop+jwt"}),
                &good,
                Sign::Ed(&key),
            ),
            "Malformed",
        ),
        (
            "claims not an object",
            raw_token(&header.to_string(), "[1,2]", Sign::Ed(&key)),
            "Malformed",
        ),
        // Size and shape.
        ("oversized token", oversized, "Malformed"),
        ("garbage", "not-a-token".to_owned(), "Malformed"),
        ("garbage with dots", "a.b.c".to_owned(), "Malformed"),
        ("only dots", "..".to_owned(), "Malformed"),
        ("four segments", format!("{valid}.x"), "Malformed"),
        (
            "Bearer prefix left on",
            format!("Bearer {valid}"),
            "Malformed",
        ),
        ("padding in a segment", format!("{h}=.{p}.x"), "Malformed"),
        (
            "JWS JSON serialization",
            json!({"payload": p, "signatures": []}).to_string(),
            "Malformed",
        ),
        ("non-ASCII", "é.é.é".to_owned(), "Malformed"),
        ("empty", String::new(), "Malformed"),
    ];

    assert!(oversized_len_ok(&cases));
    for (name, token, expected) in &cases {
        let err = verifier
            .verify(token)
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(kind(&err), *expected, "{name}: {err}");
        assert!(err.is_unauthenticated(), "{name}: must map to 401");
        // The message never echoes the token (nor a long piece of it).
        let shown = err.to_string();
        assert!(
            token.is_empty() || !shown.contains(token.as_str()),
            "{name}: {shown}"
        );
        if let Some(header_part) = token.split('.').next().filter(|s| s.len() >= 8) {
            assert!(!shown.contains(header_part), "{name}: {shown}");
        }
    }
    // The valid token itself still passes (the table is not vacuous).
    assert!(verifier.verify(&valid).is_ok());
}

fn oversized_len_ok(cases: &[(&str, String, &str)]) -> bool {
    cases
        .iter()
        .any(|(name, token, _)| *name == "oversized token" && token.len() > MAX_TOKEN_BYTES)
}

/// S1: a token for one service is refused by every other one.
#[test]
fn every_cross_service_replay_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, _) = dev_idp(dir.path());
    let subject = StaffId::parse("lo-1").expect("id");
    let verifiers: Vec<(&str, TokenVerifier)> = SERVICES
        .iter()
        .map(|s| (*s, verifier_for(&idp, s)))
        .collect();
    let mut refused = 0;
    for minted_for in SERVICES {
        let token = idp.mint(&subject, minted_for, 300).expect("mint");
        for (presented_to, verifier) in &verifiers {
            let outcome = verifier.verify(&token);
            if *presented_to == minted_for {
                assert!(outcome.is_ok(), "{minted_for} -> {presented_to}");
            } else {
                assert!(
                    matches!(outcome, Err(AuthError::WrongAudience)),
                    "{minted_for} -> {presented_to}: {outcome:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 20);
}

#[test]
fn es256_and_rs256_keys_from_a_jwks_verify() {
    let (es, es_jwk) = es_key();
    let (rs, rs_jwk) = rsa_key();
    let (ed, ed_jwk) = ed_key();
    let issuer = "https://idp.bank.example/realms/staff";
    let aud = service_audience("backoffice");
    let verifier =
        TokenVerifier::from_jwks(&jwks(&[&ed_jwk, &es_jwk, &rs_jwk]), issuer, &aud).expect("jwks");
    let t = now();
    let claims = with(claims("ba-7", "backoffice", t), "iss", json!(issuer));

    let cases: Vec<(&str, String)> = vec![
        (
            "ES256 with kid",
            token(
                &json!({"alg": "ES256", "kid": "es-test-1"}),
                &claims,
                Sign::Es(&es),
            ),
        ),
        (
            "ES256 without kid",
            token(&json!({"alg": "ES256"}), &claims, Sign::Es(&es)),
        ),
        (
            "RS256 with kid",
            token(
                &json!({"alg": "RS256", "kid": "rsa-test-1"}),
                &claims,
                Sign::Rs(&rs),
            ),
        ),
        (
            "RS256 without kid",
            token(&json!({"alg": "RS256"}), &claims, Sign::Rs(&rs)),
        ),
        (
            "EdDSA with kid",
            token(
                &json!({"alg": "EdDSA", "kid": "ed-test-1"}),
                &claims,
                Sign::Ed(&ed),
            ),
        ),
    ];
    for (name, token) in cases {
        let verified = verifier
            .verify(&token)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.subject.as_str(), "ba-7", "{name}");
    }

    // Cross-key confusion inside one key set.
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "ES256 token naming the RSA kid",
            token(
                &json!({"alg": "ES256", "kid": "rsa-test-1"}),
                &claims,
                Sign::Es(&es),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "RS256 token naming the EC kid",
            token(
                &json!({"alg": "RS256", "kid": "es-test-1"}),
                &claims,
                Sign::Rs(&rs),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "HS256 keyed with the RSA modulus",
            token(
                &json!({"alg": "HS256", "kid": "rsa-test-1"}),
                &claims,
                Sign::Hs256(rs_jwk["n"].as_str().expect("n").as_bytes()),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "ES256 by a foreign P-256 key",
            token(
                &json!({"alg": "ES256", "kid": "es-test-1"}),
                &claims,
                Sign::Es(&es_key().0),
            ),
            "BadSignature",
        ),
    ];
    for (name, token, expected) in refused {
        let err = verifier
            .verify(&token)
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(kind(&err), expected, "{name}: {err}");
    }
}

#[test]
fn unusable_key_sets_are_refused() {
    let (_, ed) = ed_key();
    let (_, es) = es_key();
    let (_, rsa) = rsa_key();
    let set = |v: Value| v.to_string();
    let small_rsa = json!({"kty": "RSA", "n": b64([0xc5u8; 128]), "e": "AQAB", "alg": "RS256"});
    let cases: Vec<(&str, String)> = vec![
        ("not JSON", "{".to_owned()),
        ("no keys member", set(json!({}))),
        ("keys not an array", set(json!({"keys": {}}))),
        ("empty key set", set(json!({"keys": []}))),
        (
            "symmetric oct key",
            set(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]})),
        ),
        (
            "HS256 on an RSA key",
            set(json!({"keys": [with(rsa.clone(), "alg", json!("HS256"))]})),
        ),
        (
            "alg none",
            set(json!({"keys": [with(ed.clone(), "alg", json!("none"))]})),
        ),
        (
            "RS512 (not pinned)",
            set(json!({"keys": [with(rsa.clone(), "alg", json!("RS512"))]})),
        ),
        (
            "PS256 (not pinned)",
            set(json!({"keys": [with(rsa.clone(), "alg", json!("PS256"))]})),
        ),
        (
            "ES256 alg on an OKP key",
            set(json!({"keys": [with(ed.clone(), "alg", json!("ES256"))]})),
        ),
        ("RSA 1024 bits", set(json!({"keys": [small_rsa]}))),
        (
            "RSA even exponent",
            set(json!({"keys": [with(rsa.clone(), "e", json!("AAI"))]})),
        ),
        (
            "EC P-384",
            set(json!({"keys": [with(es.clone(), "crv", json!("P-384"))]})),
        ),
        (
            "EC short x",
            set(json!({"keys": [with(es.clone(), "x", json!("AAAA"))]})),
        ),
        (
            "OKP Ed448",
            set(json!({"keys": [with(ed.clone(), "crv", json!("Ed448"))]})),
        ),
        (
            "OKP X25519",
            set(json!({"keys": [with(ed.clone(), "crv", json!("X25519"))]})),
        ),
        (
            "unknown kty",
            set(json!({"keys": [{"kty": "PQ", "x": "AAAA"}]})),
        ),
        (
            "private key material",
            set(json!({"keys": [with(ed.clone(), "d", json!(b64([1u8; 32])))]})),
        ),
        (
            "duplicate kid",
            set(json!({"keys": [ed.clone(), with(es.clone(), "kid", json!("ed-test-1"))]})),
        ),
        (
            "empty kid",
            set(json!({"keys": [with(ed.clone(), "kid", json!(""))]})),
        ),
        (
            "only an encryption key",
            set(json!({"keys": [with(rsa.clone(), "use", json!("enc"))]})),
        ),
        (
            "unknown use",
            set(json!({"keys": [with(rsa.clone(), "use", json!("wrap"))]})),
        ),
        (
            "x not base64url",
            set(json!({"keys": [with(ed.clone(), "x", json!("not base64!"))]})),
        ),
    ];
    for (name, jwks) in cases {
        let err = TokenVerifier::from_jwks(&jwks, "iss", "creditops-market")
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(kind(&err), "InvalidJwks", "{name}: {err}");
        assert!(!err.is_unauthenticated());
    }

    let good = jwks(&[&ed]);
    assert_eq!(
        kind(&TokenVerifier::from_jwks(&good, "", "creditops-market").expect_err("empty iss")),
        "InvalidConfig"
    );
    assert_eq!(
        kind(&TokenVerifier::from_jwks(&good, "iss", "").expect_err("empty aud")),
        "InvalidConfig"
    );
    // Lenient on what does not matter: no alg (inferred), no use, an extra enc key.
    let no_alg = json!({"keys": [
        with(with(ed.clone(), "alg", Value::Null), "use", Value::Null),
        with(with(rsa.clone(), "kid", json!("enc-1")), "use", json!("enc")),
    ]});
    assert!(TokenVerifier::from_jwks(&no_alg.to_string(), "iss", "aud").is_ok());
}

/// A cached token is refused once it expires, on the real clock.
#[test]
fn cached_token_is_refused_after_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, key) = dev_idp(dir.path());
    let verifier = verifier_for(&idp, "market");
    let t = now();
    // Valid until t - 29 + 30 = t + 1 thanks to the leeway.
    let claims = with(claims("lo-1", "market", t - 60), "exp", json!(t - 29));
    let token = token(
        &json!({"alg": "EdDSA", "kid": idp.kid()}),
        &claims,
        Sign::Ed(&key),
    );
    assert!(verifier.verify(&token).is_ok(), "inside the leeway");
    assert!(verifier.verify(&token).is_ok(), "cached");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(matches!(verifier.verify(&token), Err(AuthError::Expired)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_is_shared_across_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, _) = dev_idp(dir.path());
    let verifier = Arc::new(verifier_for(&idp, "risk"));
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..20)
            .map(|i| {
                let who = StaffId::parse(&format!("rc-{i}")).expect("id");
                idp.mint(&who, "risk", 300).expect("mint")
            })
            .collect(),
    );
    let mut tasks = Vec::new();
    for task in 0..16 {
        let verifier = Arc::clone(&verifier);
        let tokens = Arc::clone(&tokens);
        tasks.push(tokio::spawn(async move {
            for round in 0..50 {
                let i = (task + round) % tokens.len();
                let verified = verifier.verify(&tokens[i]).expect("verify");
                assert_eq!(verified.subject.as_str(), format!("rc-{i}"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

#[test]
fn error_messages_are_fixed_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, key) = dev_idp(dir.path());
    let verifier = verifier_for(&idp, "market");
    let t = now();
    let secret_marker = "SECRET-MARKER-9f8e";
    let cases = [
        with(
            claims(secret_marker, "market", t),
            "sub",
            json!(format!("{secret_marker} x")),
        ),
        with(claims("lo-1", "market", t), "iss", json!(secret_marker)),
        with(claims("lo-1", "market", t), "aud", json!(secret_marker)),
    ];
    for claims in cases {
        let token = token(
            &json!({"alg": "EdDSA", "kid": idp.kid()}),
            &claims,
            Sign::Ed(&key),
        );
        let err = verifier.verify(&token).expect_err("refused");
        assert!(!err.to_string().contains(secret_marker), "{err}");
        assert!(!format!("{err:?}").contains(secret_marker), "{err:?}");
    }
    let unknown_kid = token(
        &json!({"alg": "EdDSA", "kid": secret_marker}),
        &claims("lo-1", "market", t),
        Sign::Ed(&key),
    );
    let err = verifier.verify(&unknown_kid).expect_err("refused");
    assert!(!err.to_string().contains(secret_marker), "{err}");
}
