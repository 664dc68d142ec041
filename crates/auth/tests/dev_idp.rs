//! The dev identity provider: key files, JWKS, minting rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use creditops_auth::{AuthError, DevIdentityProvider, SERVICES};
use creditops_domain::StaffId;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

#[test]
fn first_start_creates_key_and_jwks() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data").join("nested");
    let idp = DevIdentityProvider::load_or_create(&data).expect("create");

    let key_path = data.join("dev-idp-key.pk8");
    let pkcs8 = std::fs::read(&key_path).expect("key file");
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("PKCS#8 v2 Ed25519 DER");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }

    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("dev-idp-jwks.json")).expect("jwks file"),
    )
    .expect("json");
    let in_memory: Value = serde_json::from_str(&idp.jwks_json()).expect("json");
    assert_eq!(on_disk, in_memory);
    let keys = on_disk["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    let public = key.public_key().as_ref();
    let expected_kid = &hex::encode(ring::digest::digest(&ring::digest::SHA256, public))[..16];
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["x"], b64(public));
    assert_eq!(jwk["kid"], expected_kid);
    assert_eq!(idp.kid(), expected_kid);
    assert!(jwk.get("d").is_none(), "no private material in the JWKS");
}

#[test]
fn the_key_persists_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = DevIdentityProvider::load_or_create(dir.path()).expect("create");
    let token = first
        .mint(&StaffId::parse("lo-1").expect("id"), "market", 300)
        .expect("mint");

    let again = DevIdentityProvider::load_or_create(dir.path()).expect("reload");
    let loaded = DevIdentityProvider::load(dir.path()).expect("load");
    assert_eq!(first.kid(), again.kid());
    assert_eq!(first.kid(), loaded.kid());
    assert_eq!(first.jwks_json(), loaded.jwks_json());
    // A token minted before the restart verifies with the reloaded key set.
    let verified = loaded
        .verifier("market")
        .expect("verifier")
        .verify(&token)
        .expect("verify");
    assert_eq!(verified.subject.as_str(), "lo-1");

    // A deleted JWKS file is rewritten from the key.
    std::fs::remove_file(dir.path().join("dev-idp-jwks.json")).expect("rm");
    DevIdentityProvider::load_or_create(dir.path()).expect("reload");
    assert!(dir.path().join("dev-idp-jwks.json").exists());
}

#[test]
fn load_without_a_key_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = DevIdentityProvider::load(dir.path()).expect_err("no key yet");
    assert!(matches!(err, AuthError::NoDevKey(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("no dev identity provider key exists"),
        "{message}"
    );
    assert!(message.contains("dev-idp-key.pk8"), "{message}");
    // `load` never creates anything.
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn a_corrupt_key_is_refused_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dev-idp-key.pk8");
    std::fs::write(&path, b"not a key").expect("write");
    for result in [
        DevIdentityProvider::load(dir.path()),
        DevIdentityProvider::load_or_create(dir.path()),
    ] {
        let err = result.expect_err("corrupt");
        assert!(matches!(err, AuthError::InvalidDevKey { .. }), "{err:?}");
    }
    assert_eq!(std::fs::read(&path).expect("read"), b"not a key");
}

/// Hardening finding 11: whoever can read the dev key can mint any token,
/// so a key readable by others is refused, not just warned about.
#[cfg(unix)]
#[test]
fn a_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    DevIdentityProvider::load_or_create(dir.path()).expect("created");
    let path = dir.path().join(DevIdentityProvider::KEY_FILE);
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode();
    assert_eq!(mode(&path) & 0o777, 0o600);
    for open in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).expect("chmod");
        for result in [
            DevIdentityProvider::load(dir.path()),
            DevIdentityProvider::load_or_create(dir.path()),
        ] {
            let err = result.expect_err("readable by others");
            assert!(err.to_string().contains("chmod 600"), "{open:o}: {err}");
        }
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    DevIdentityProvider::load(dir.path()).expect("private again");
}

#[test]
fn mint_validates_its_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let idp = DevIdentityProvider::load_or_create(dir.path()).expect("create");
    let who = StaffId::parse("lo-1").expect("id");
    let cases: Vec<(&str, i64, &str)> = vec![
        ("shop", 300, "UnknownService"),
        ("Market", 300, "UnknownService"),
        ("", 300, "UnknownService"),
        ("creditops-market", 300, "UnknownService"),
        ("market", 0, "InvalidTtl"),
        ("market", -5, "InvalidTtl"),
        (
            "market",
            DevIdentityProvider::MAX_TTL_SECONDS + 1,
            "InvalidTtl",
        ),
    ];
    for (service, ttl, expected) in cases {
        let err = idp.mint(&who, service, ttl).expect_err("refused");
        assert_eq!(kind(&err), expected, "{service}/{ttl}: {err}");
    }
    assert!(
        idp.mint(&who, "admin", DevIdentityProvider::MAX_TTL_SECONDS)
            .is_ok()
    );
    assert!(idp.verifier("shop").is_err());
}

#[test]
fn minted_tokens_have_the_documented_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let idp = DevIdentityProvider::load_or_create(dir.path()).expect("create");
    let who = StaffId::parse("ba-3").expect("id");
    let mut jtis = std::collections::HashSet::new();
    for service in SERVICES {
        let before = now();
        let token = idp.mint(&who, service, 900).expect("mint");
        let header = decode_part(&token, 0);
        let claims = decode_part(&token, 1);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], idp.kid());
        assert_eq!(claims["iss"], DevIdentityProvider::ISSUER);
        assert_eq!(claims["sub"], "ba-3");
        assert_eq!(claims["aud"], format!("creditops-{service}"));
        let iat = claims["iat"].as_i64().expect("iat");
        assert!(iat >= before && iat <= now());
        assert_eq!(claims["nbf"].as_i64(), Some(iat));
        assert_eq!(claims["exp"].as_i64(), Some(iat + 900));
        let jti = claims["jti"].as_str().expect("jti");
        assert!(uuid::Uuid::parse_str(jti).is_ok());
        assert!(jtis.insert(jti.to_owned()), "jti repeats");
    }
}

/// `serve --dev` may start several services at once: they must end up sharing one
/// key, never clobber each other's files.
#[test]
fn concurrent_first_starts_agree_on_one_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let kids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    DevIdentityProvider::load_or_create(&data)
                        .expect("create")
                        .kid()
                        .to_owned()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
    let loaded = DevIdentityProvider::load(&data).expect("load");
    assert_eq!(loaded.kid(), kids[0]);
    let names: Vec<String> = std::fs::read_dir(&data)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
}
