//! Measurements, not assertions of speed (machines differ). Run in release:
//! `cargo test -p creditops-auth --release --test perf -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use casbin::{CachedEnforcer, CoreApi, DefaultModel, Enforcer, StringAdapter};
use common::*;
use creditops_auth::{Authorizer, TokenVerifier, service_audience};
use creditops_domain::StaffId;
use serde_json::json;

const MODEL: &str = "[request_definition]\nr = sub, obj, act\n\n[policy_definition]\np = sub, obj, act\n\n[policy_effect]\ne = some(where (p.eft == allow))\n\n[matchers]\nm = r.sub == p.sub && r.obj == p.obj && r.act == p.act\n";

/// A policy of realistic size: 6 roles x 10 routes x 2 methods.
fn policy() -> String {
    let mut policy = String::new();
    for role in 0..6 {
        for route in 0..10 {
            for method in ["GET", "POST"] {
                policy.push_str(&format!(
                    "p, role_{role}, /v1/things/{{id}}/op-{route}, {method}\n"
                ));
            }
        }
    }
    policy
}

/// Times `iterations` calls of `f(i)`. `warm_up` calls run first, untimed, with
/// the same indices (so a cache under test must not be warmed: pass 0).
fn per_op(label: &str, warm_up: u32, iterations: u32, mut f: impl FnMut(u32)) {
    for i in 0..warm_up {
        f(i);
    }
    let start = Instant::now();
    for i in 0..iterations {
        f(i);
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iterations);
    if ns >= 10_000.0 {
        println!("{label:<58} {:>10.1} us/op", ns / 1000.0);
    } else {
        println!("{label:<58} {ns:>10.0} ns/op");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run in release with --ignored --nocapture"]
async fn measure_allows() {
    let policy = policy();
    let authz = Authorizer::from_text(MODEL, &policy).await.expect("authz");
    per_op("Authorizer::allows, granted rule", 1000, 2_000_000, |_| {
        black_box(authz.allows(
            black_box("role_3"),
            black_box("/v1/things/{id}/op-7"),
            black_box("POST"),
        ));
    });
    per_op(
        "Authorizer::allows, denied (memoised)",
        1000,
        2_000_000,
        |_| {
            black_box(authz.allows(
                black_box("role_3"),
                black_box("/v1/things/{id}/op-7"),
                black_box("DELETE"),
            ));
        },
    );
    per_op(
        "Authorizer::allows, unknown role (memoised)",
        1000,
        2_000_000,
        |_| {
            black_box(authz.allows(black_box("intruder"), black_box("/v1/x"), black_box("GET")));
        },
    );

    let plain = Enforcer::new(
        DefaultModel::from_str(MODEL).await.expect("model"),
        StringAdapter::new(policy.clone()),
    )
    .await
    .expect("enforcer");
    per_op(
        "casbin Enforcer::enforce (for comparison), granted",
        1000,
        20_000,
        |_| {
            black_box(
                plain
                    .enforce(("role_3", "/v1/things/{id}/op-7", "POST"))
                    .ok(),
            );
        },
    );
    let cached = CachedEnforcer::new(
        DefaultModel::from_str(MODEL).await.expect("model"),
        StringAdapter::new(policy.clone()),
    )
    .await
    .expect("cached enforcer");
    per_op(
        "casbin CachedEnforcer::enforce (for comparison), hit",
        1000,
        2_000_000,
        |_| {
            black_box(
                cached
                    .enforce(("role_3", "/v1/things/{id}/op-7", "POST"))
                    .ok(),
            );
        },
    );
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn measure_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idp, _) = dev_idp(dir.path());
    let aud = service_audience("market");
    let who = StaffId::parse("lo-1").expect("id");
    const N: u32 = 2_000;

    // EdDSA (dev IdP): N distinct tokens, each verified once uncached, then cached.
    let verifier = idp.verifier("market").expect("verifier");
    let tokens: Vec<String> = (0..N)
        .map(|_| idp.mint(&who, "market", 600).expect("mint"))
        .collect();
    per_op("verify EdDSA, uncached (first sight)", 0, N, |i| {
        black_box(verifier.verify(&tokens[i as usize]).expect("ok"));
    });
    per_op("verify EdDSA, cached (repeat)", 0, 1_000_000, |i| {
        black_box(verifier.verify(&tokens[(i % N) as usize]).expect("ok"));
    });
    // A well-formed token signed by a foreign key: a full signature check that fails.
    let (foreign, _) = ed_key();
    let bad = token(
        &json!({"alg": "EdDSA", "kid": idp.kid()}),
        &claims("lo-1", "market", now()),
        Sign::Ed(&foreign),
    );
    per_op("verify EdDSA, bad signature (never cached)", 100, N, |_| {
        black_box(verifier.verify(&bad).is_err());
    });

    // ES256 and RS256 from a JWKS, signed by ring.
    let (es, es_jwk) = es_key();
    let (rs, rs_jwk) = rsa_key();
    let t = now();
    let claims = |i: u32| with(claims("lo-1", "market", t), "jti", json!(format!("j-{i}")));
    let iss = "creditops-dev-idp";
    let others = TokenVerifier::from_jwks(&jwks(&[&es_jwk, &rs_jwk]), iss, &aud).expect("jwks");
    let es_tokens: Vec<String> = (0..N)
        .map(|i| {
            token(
                &json!({"alg": "ES256", "kid": "es-test-1"}),
                &claims(i),
                Sign::Es(&es),
            )
        })
        .collect();
    let rs_tokens: Vec<String> = (0..N / 4)
        .map(|i| {
            token(
                &json!({"alg": "RS256", "kid": "rsa-test-1"}),
                &claims(i),
                Sign::Rs(&rs),
            )
        })
        .collect();
    per_op("verify ES256, uncached", 0, N, |i| {
        black_box(others.verify(&es_tokens[i as usize]).expect("ok"));
    });
    per_op("verify RS256 (2048), uncached", 0, N / 4, |i| {
        black_box(others.verify(&rs_tokens[i as usize]).expect("ok"));
    });
    per_op("verify RS256 (2048), cached", 0, 1_000_000, |i| {
        black_box(
            others
                .verify(&rs_tokens[(i % (N / 4)) as usize])
                .expect("ok"),
        );
    });
}
