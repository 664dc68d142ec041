//! Hostile input over real HTTP, on both backends: forged, confused,
//! expired, misdirected and oversized tokens and tokens of people who may
//! not act are all refused with 401 problem+json and each refusal is in the
//! audit trail; SQL-injection and path-traversal strings are stored or
//! refused as data, never executed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use creditops_auth::{DevIdentityProvider, service_audience};
use creditops_domain::{StaffId, StaffStatus};
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends, json};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;

const SERVICES: [(&str, &str); 5] = [
    ("market", "/v1/cases/00000000-0000-0000-0000-000000000000"),
    ("backoffice", "/v1/cases"),
    ("risk", "/v1/exposures"),
    ("audit", "/v1/events"),
    ("admin", "/v1/staff"),
];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for `sub` at `service`.
fn claims(sub: &str, service: &str) -> Value {
    let now = now();
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

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    let obj = claims.as_object_mut().unwrap();
    if value.is_null() {
        obj.remove(name);
    } else {
        obj.insert(name.to_owned(), value);
    }
    claims
}

struct Signer {
    key: Ed25519KeyPair,
    kid: String,
}

impl Signer {
    fn trusted(p: &TestPlatform) -> Self {
        let pkcs8 = std::fs::read(p.data_dir.path().join(DevIdentityProvider::KEY_FILE)).unwrap();
        Self {
            key: Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap(),
            kid: p.idp.kid().to_owned(),
        }
    }

    /// Another key claiming the trusted key's id.
    fn impostor(p: &TestPlatform) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Self {
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
            kid: p.idp.kid().to_owned(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        format!("{input}.{}", b64(self.key.sign(input.as_bytes())))
    }
}

/// Writes the tallies of unauthenticated refusals so far and reads them
/// back from the audit trail as internal audit sees them.
async fn unauthenticated_tallies(p: &TestPlatform) -> Vec<Value> {
    let platform = p.platform.as_ref().expect("running");
    platform
        .flush_unauthenticated()
        .await
        .expect("tallies written");
    let tallies = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=request.unauthenticated&limit=1000",
            None,
        )
        .await;
    tallies.ok(200)["items"].as_array().unwrap().clone()
}

async fn denied_count(p: &TestPlatform) -> usize {
    let reply = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?outcome=denied&limit=1000",
            None,
        )
        .await;
    reply.ok(200)["items"].as_array().unwrap().len()
}

async fn attack_tokens(p: &TestPlatform) {
    let trusted = Signer::trusted(p);
    let impostor = Signer::impostor(p);
    let valid = claims("lo-1", "market");
    let header_none = b64(json!({"alg": "none", "typ": "JWT"}).to_string());
    let none = format!("{header_none}.{}.", b64(valid.to_string()));
    // HS256 keyed with the public key: the classic algorithm confusion.
    let hs_header = b64(json!({"alg": "HS256", "typ": "JWT", "kid": trusted.kid}).to_string());
    let hs_input = format!("{hs_header}.{}", b64(valid.to_string()));
    let hs_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, trusted.key.public_key().as_ref());
    let hs = format!(
        "{hs_input}.{}",
        b64(ring::hmac::sign(&hs_key, hs_input.as_bytes()))
    );
    let jwks_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, p.idp.jwks_json().as_bytes());
    let hs_jwks = format!(
        "{hs_input}.{}",
        b64(ring::hmac::sign(&jwks_key, hs_input.as_bytes()))
    );
    let padding = "x".repeat(9 * 1024);

    // Suspended since a moment ago: the directory decides, not the token.
    let mut tx = p.store.begin().await.unwrap();
    tx.set_staff_status(&StaffId::parse("lo-3").unwrap(), StaffStatus::Suspended)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut attacks: Vec<(String, String)> = vec![
        ("alg none".into(), none),
        ("HS256 keyed with the public key".into(), hs),
        ("HS256 keyed with the JWKS".into(), hs_jwks),
        (
            "another key under the trusted kid".into(),
            impostor.sign(&valid),
        ),
        (
            "wrong issuer".into(),
            trusted.sign(&with(valid.clone(), "iss", json!("https://evil.example"))),
        ),
        (
            "expired".into(),
            trusted.sign(&with(
                with(valid.clone(), "exp", json!(now() - 600)),
                "nbf",
                json!(now() - 900),
            )),
        ),
        (
            "not yet valid".into(),
            trusted.sign(&with(valid.clone(), "nbf", json!(now() + 600))),
        ),
        (
            "nbf as a string".into(),
            trusted.sign(&with(valid.clone(), "nbf", json!(now().to_string()))),
        ),
        (
            "exp missing".into(),
            trusted.sign(&with(valid.clone(), "exp", Value::Null)),
        ),
        // Hardening finding 13: a correctly signed token valid for ten years.
        (
            "finding 13: exp ten years ahead".into(),
            trusted.sign(&with(
                valid.clone(),
                "exp",
                json!(now() + 10 * 365 * 86_400),
            )),
        ),
        (
            "finding 13: 12 h 5 min from a back-dated nbf and iat".into(),
            trusted.sign(&with(
                with(valid.clone(), "nbf", json!(now() - 12 * 3_600)),
                "iat",
                json!(now() - 12 * 3_600),
            )),
        ),
        (
            "sub missing".into(),
            trusted.sign(&with(valid.clone(), "sub", Value::Null)),
        ),
        (
            "aud missing".into(),
            trusted.sign(&with(valid.clone(), "aud", Value::Null)),
        ),
        (
            "iss missing".into(),
            trusted.sign(&with(valid.clone(), "iss", Value::Null)),
        ),
        (
            "oversized".into(),
            trusted.sign(&with(valid.clone(), "pad", json!(padding))),
        ),
        (
            "unknown person".into(),
            trusted.sign(&claims("ghost-9", "market")),
        ),
        (
            "suspended person".into(),
            trusted.sign(&claims("lo-3", "market")),
        ),
        ("garbage".into(), "not.a.token".into()),
        (
            "SQL in the subject".into(),
            trusted.sign(&claims("lo-1' OR '1'='1", "market")),
        ),
    ];
    // Every service pair: a token for one audience at another service.
    for (issued_for, _) in SERVICES {
        for (used_at, _) in SERVICES {
            if issued_for != used_at {
                attacks.push((
                    format!("{issued_for} token at {used_at}"),
                    format!("{used_at}|{}", trusted.sign(&claims("ia-1", issued_for))),
                ));
            }
        }
    }
    let before = denied_count(p).await;
    for (name, token) in &attacks {
        let (service, token) = match token.split_once('|') {
            Some((service, token)) => (service, token.to_owned()),
            None => ("market", token.clone()),
        };
        let path = SERVICES.iter().find(|(s, _)| *s == service).unwrap().1;
        let reply = p
            .send(service, Method::GET, path, Some(&token), None, &[])
            .await;
        assert_eq!(reply.status.as_u16(), 401, "{name}: {}", reply.body);
        assert_eq!(reply.content_type(), "application/problem+json", "{name}");
        let detail = reply.body["detail"].as_str().unwrap_or("");
        assert!(
            !detail.contains("BEGIN"),
            "{name}: no key material in {detail}"
        );
    }
    // Hardening finding 6: refusals without a valid login do not each
    // become a permanent event; each service writes one event per minute
    // with their count and the number of distinct client addresses.
    let after = denied_count(p).await;
    assert_eq!(after, before, "no event per unauthenticated refusal");
    let mut refusals = 0;
    for event in &unauthenticated_tallies(p).await {
        let body = &event["body"];
        assert_eq!(body["outcome"], "denied", "{body}");
        assert_eq!(body["rule"], "S8", "{body}");
        assert!(body.get("actor").is_none(), "{body}");
        assert_eq!(body["data"]["distinct_addresses"], 1, "{body}");
        refusals += body["data"]["refusals"].as_u64().unwrap();
    }
    assert_eq!(refusals, attacks.len() as u64, "every refusal is counted");
    // A valid token still works.
    let reply = p
        .call("lo-1", "market", Method::GET, SERVICES[0].1, None)
        .await;
    assert_eq!(reply.status.as_u16(), 404);
}
both_backends!(attack_tokens_are_refused_and_audited, attack_tokens);

const NASTY: [&str; 8] = [
    "'; DROP TABLE cases; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM audit_events;--",
    "../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%00",
    "$(rm -rf /)",
    "名前 \u{202e}gnp.exe",
];

async fn injection_strings(p: &TestPlatform) {
    for nasty in NASTY {
        // Text fields are data: stored and returned verbatim. A sector is
        // a code, so as a sector the text is refused (hardening finding 1).
        let reply = p
            .call(
                "lo-1",
                "market",
                Method::POST,
                "/v1/borrowers",
                Some(json!({"name": nasty, "country": "DE", "sector": nasty})),
            )
            .await;
        assert_eq!(reply.problem(422)["errors"][0]["field"], "sector");
        let reply = p
            .call(
                "lo-1",
                "market",
                Method::POST,
                "/v1/borrowers",
                Some(json!({"name": nasty, "country": "DE", "sector": "C25"})),
            )
            .await;
        let borrower = reply.ok(201).clone();
        assert_eq!(borrower["name"], nasty);
        let id = borrower["id"].as_str().unwrap();
        let read = p
            .call(
                "lo-1",
                "market",
                Method::GET,
                &format!("/v1/borrowers/{id}"),
                None,
            )
            .await;
        assert_eq!(read.ok(200)["name"], nasty);
        let case = p
            .call(
                "lo-1",
                "market",
                Method::POST,
                "/v1/cases",
                Some(json!({"borrower_id": id, "amount": "1000.00", "currency": "EUR", "product": nasty, "term_months": 12, "purpose": nasty})),
            )
            .await;
        assert_eq!(case.ok(201)["purpose"], nasty);
        // As path ids they name nothing: 404, never 500.
        let encoded: String = nasty.bytes().map(|b| format!("%{b:02X}")).collect();
        for (service, user, path) in [
            ("market", "lo-1", format!("/v1/cases/{encoded}")),
            ("market", "lo-1", format!("/v1/borrowers/{encoded}")),
            ("backoffice", "ba-1", format!("/v1/cases/{encoded}")),
            ("audit", "ia-1", format!("/v1/cases/{encoded}")),
            ("audit", "ia-1", format!("/v1/events/{encoded}/proof")),
            ("admin", "ua-1", format!("/v1/staff/{encoded}")),
        ] {
            let reply = p.call(user, service, Method::GET, &path, None).await;
            assert!(
                matches!(reply.status.as_u16(), 404 | 422),
                "{service} {path}: {} {}",
                reply.status,
                reply.body
            );
        }
        // As filters they match nothing or are refused; never executed.
        let reply = p
            .call(
                "ia-1",
                "audit",
                Method::GET,
                &format!("/v1/events?actor={encoded}&limit=10"),
                None,
            )
            .await;
        assert!(matches!(reply.status.as_u16(), 200 | 422), "{}", reply.body);
        let reply = p
            .call(
                "rc-1",
                "risk",
                Method::GET,
                &format!("/v1/exposures?sector={encoded}"),
                None,
            )
            .await;
        assert_eq!(
            reply.problem(422)["errors"][0]["field"],
            "sector",
            "no sector code"
        );
        let reply = p
            .call(
                "rc-1",
                "risk",
                Method::POST,
                "/v1/limits",
                Some(json!({"kind": "sector", "key": nasty, "amount": "1", "reason": nasty})),
            )
            .await;
        reply.problem(422);
    }
    // Everything is still there and the trail is intact.
    let verify = p
        .call("ia-1", "audit", Method::POST, "/v1/verify", None)
        .await;
    assert_eq!(verify.ok(200)["ok"], true, "{}", verify.body);
    p.draft_case("5000.00").await;
}
both_backends!(injection_strings_are_only_data, injection_strings);

/// Hardening finding 6: failed logins are limited per client address. Past
/// the budget (here 5 a minute) the address is answered 429 with
/// Retry-After until the minute is over, before its token is looked at; the
/// refusals are tallied, not audited one by one.
async fn failed_logins_are_rate_limited(backend: creditops_tests::Backend) {
    let limits = creditops_http::RequestLimits {
        auth_failures_per_minute: 5,
        ..Default::default()
    };
    let Some(p) = TestPlatform::start_with_limits(backend, limits).await else {
        return;
    };
    let before = denied_count(&p).await;
    // The budget is per minute: start early in one.
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if second > 45 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - second) as u64)).await;
    }
    for _ in 0..5 {
        let reply = p
            .send(
                "market",
                Method::GET,
                SERVICES[0].1,
                Some("not.a.token"),
                None,
                &[],
            )
            .await;
        assert_eq!(reply.status.as_u16(), 401, "{}", reply.body);
    }
    let limited = p
        .send(
            "market",
            Method::GET,
            SERVICES[0].1,
            Some("not.a.token"),
            None,
            &[],
        )
        .await;
    assert_eq!(limited.status.as_u16(), 429, "{}", limited.body);
    assert_eq!(limited.content_type(), "application/problem+json");
    assert_eq!(
        limited.body["type"],
        "urn:creditops:problem:too-many-requests"
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Other services keep their own budget.
    let elsewhere = p
        .send(
            "risk",
            Method::GET,
            "/v1/exposures",
            Some("not.a.token"),
            None,
            &[],
        )
        .await;
    assert_eq!(elsewhere.status.as_u16(), 401);
    assert_eq!(denied_count(&p).await, before, "tallied, not one by one");
    let counted: u64 = unauthenticated_tallies(&p)
        .await
        .iter()
        .map(|e| e["body"]["data"]["refusals"].as_u64().unwrap())
        .sum();
    assert_eq!(
        counted, 7,
        "5 failed logins, the 429 and the other service's 401"
    );
}

#[tokio::test]
async fn finding_6_failed_logins_are_rate_limited_on_sqlite() {
    failed_logins_are_rate_limited(creditops_tests::Backend::Sqlite).await;
}

#[tokio::test]
async fn finding_6_failed_logins_are_rate_limited_on_postgres() {
    failed_logins_are_rate_limited(creditops_tests::Backend::Postgres).await;
}

/// Hardening finding 13: a correctly signed token whose `exp` lies ten years
/// ahead was accepted. A token may live at most `--max-token-lifetime`
/// (default 12 h); the same person's short-lived token still works.
async fn long_lived_tokens_are_refused(p: &TestPlatform) {
    let trusted = Signer::trusted(p);
    let valid = claims("lo-1", "market");
    let ten_years = with(valid.clone(), "exp", json!(now() + 10 * 365 * 86_400));
    let path = SERVICES[0].1;
    for (what, token) in [
        ("ten years", trusted.sign(&ten_years)),
        ("the default", trusted.sign(&valid)),
    ] {
        let reply = p
            .send("market", Method::GET, path, Some(&token), None, &[])
            .await;
        match what {
            "ten years" => {
                let detail = reply.problem(401)["detail"].as_str().unwrap().to_owned();
                assert!(detail.contains("lifetime"), "{detail}");
            }
            _ => assert_eq!(reply.status.as_u16(), 404, "{what}: {}", reply.body),
        }
    }
}
both_backends!(
    finding_13_tokens_valid_for_years_are_refused,
    long_lived_tokens_are_refused
);
