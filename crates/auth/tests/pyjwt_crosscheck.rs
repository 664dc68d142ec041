//! Optional interoperability check against an independent implementation: PyPI
//! `pyjwt` + `cryptography`. Skipped (and reported as skipped on stderr) when
//! `python3` or those packages are missing; the Rust suite never needs Python.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use creditops_auth::{AuthError, DevIdentityProvider, TokenVerifier, service_audience};
use creditops_domain::StaffId;

fn python_with_pyjwt() -> bool {
    Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

const MINT: &str = r#"
import sys, time, uuid, jwt
from cryptography.hazmat.primitives import serialization
alg, key_path, kid, iss, aud, sub = sys.argv[1:7]
raw = open(key_path, "rb").read()
if key_path.endswith(".pem"):
    key = serialization.load_pem_private_key(raw, password=None)
else:
    # ring writes PKCS#8 v2 (RFC 5958 OneAsymmetricKey with the public key), which
    # OpenSSL 3.0 and cryptography do not read; take the 32-byte seed out of it.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    assert raw[:16] == bytes.fromhex("3051020101300506032b657004220420"), raw[:16].hex()
    key = Ed25519PrivateKey.from_private_bytes(raw[16:48])
now = int(time.time())
claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "nbf": now, "exp": now + 300,
          "jti": str(uuid.uuid4())}
print(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))
"#;

const VERIFY: &str = r#"
import sys, json, jwt
jwks_path, token, iss, aud = sys.argv[1:5]
jwks = jwt.PyJWKSet.from_dict(json.load(open(jwks_path)))
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwks.keys if k.key_id == kid)
claims = jwt.decode(token, key, algorithms=["EdDSA"], audience=aud, issuer=iss,
                    options={"require": ["exp", "nbf", "iss", "aud", "sub"]})
print(claims["sub"])
"#;

const ES256: &str = r#"
import sys, json, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
iss, aud, sub = sys.argv[1:4]
key = ec.generate_private_key(ec.SECP256R1())
jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
jwk.update({"kid": "py-es", "alg": "ES256", "use": "sig"})
now = int(time.time())
token = jwt.encode({"iss": iss, "aud": aud, "sub": sub, "nbf": now, "exp": now + 300},
                   key, algorithm="ES256", headers={"kid": "py-es"})
print(json.dumps({"jwks": {"keys": [jwk]}, "token": token}))
"#;

#[test]
fn pyjwt_and_creditops_agree() {
    if !python_with_pyjwt() {
        eprintln!("skipped: python3 with pyjwt + cryptography not available");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let idp = DevIdentityProvider::load_or_create(dir.path()).expect("idp");
    let market = service_audience("market");
    let verifier = idp.verifier("market").expect("verifier");
    let key_path = dir.path().join(DevIdentityProvider::KEY_FILE);
    let key_path = key_path.to_str().expect("utf8 path");

    // pyjwt mints EdDSA with the dev key; we verify.
    let token = python(
        MINT,
        &[
            "EdDSA",
            key_path,
            idp.kid(),
            DevIdentityProvider::ISSUER,
            &market,
            "lo-9",
        ],
    );
    assert_eq!(
        verifier
            .verify(&token)
            .expect("pyjwt EdDSA")
            .subject
            .as_str(),
        "lo-9"
    );
    // ...and a pyjwt token for another service is refused here.
    let backoffice = service_audience("backoffice");
    let token = python(
        MINT,
        &[
            "EdDSA",
            key_path,
            idp.kid(),
            DevIdentityProvider::ISSUER,
            &backoffice,
            "lo-9",
        ],
    );
    assert!(matches!(
        verifier.verify(&token),
        Err(AuthError::WrongAudience)
    ));

    // We mint; pyjwt verifies against the JWKS file we wrote.
    let ours = idp
        .mint(&StaffId::parse("ba-4").expect("id"), "market", 300)
        .expect("mint");
    let jwks_path = dir.path().join(DevIdentityProvider::JWKS_FILE);
    let sub = python(
        VERIFY,
        &[
            jwks_path.to_str().expect("utf8"),
            &ours,
            DevIdentityProvider::ISSUER,
            &market,
        ],
    );
    assert_eq!(sub, "ba-4");

    // pyjwt RS256 with the fixture key.
    let (_, rsa_jwk) = rsa_key();
    let rsa_verifier =
        TokenVerifier::from_jwks(&jwks(&[&rsa_jwk]), "https://idp.example", &market).expect("rsa");
    let pem = format!("{FIXTURES}/rsa2048-test-key.pem");
    let token = python(
        MINT,
        &[
            "RS256",
            &pem,
            "rsa-test-1",
            "https://idp.example",
            &market,
            "rc-2",
        ],
    );
    assert_eq!(
        rsa_verifier
            .verify(&token)
            .expect("pyjwt RS256")
            .subject
            .as_str(),
        "rc-2"
    );

    // pyjwt ES256 with a key and JWK made by `cryptography`.
    let out: serde_json::Value =
        serde_json::from_str(&python(ES256, &["https://idp.example", &market, "au-1"]))
            .expect("json");
    let es_verifier =
        TokenVerifier::from_jwks(&out["jwks"].to_string(), "https://idp.example", &market)
            .expect("es jwks");
    let token = out["token"].as_str().expect("token");
    assert_eq!(
        es_verifier
            .verify(token)
            .expect("pyjwt ES256")
            .subject
            .as_str(),
        "au-1"
    );
}
