//! Per-request cost of authentication + authorization (issue "operations"):
//! verifying the bearer token and asking the service's casbin policy,
//! exactly as the middleware does for every request.
//!
//! * warm: the token was seen before (the verification cache hits; the
//!   claims' times are still checked) and the role is allowed the route;
//! * cold (baseline on the same machine, same run): a token never seen, so
//!   the EdDSA signature and every claim are checked.
//!
//! The directory lookup that follows (is the person active, which roles do
//! they hold today) is a database read and deliberately not cached, so a
//! suspension takes effect on the next request; it is not part of this
//! figure.
//!
//! Run with `cargo bench -p creditops-auth --bench authn`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_auth::{Authorizer, DevIdentityProvider};
use creditops_domain::StaffId;
use std::hint::black_box;
use std::time::{Duration, Instant};

const TOKENS: usize = 2_000;
const ROUNDS: usize = 25;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let idp = DevIdentityProvider::load_or_create(dir.path()).unwrap();
    let authorizer = runtime
        .block_on(Authorizer::from_text(
            include_str!("../../../policies/market/model.conf"),
            include_str!("../../../policies/market/policy.csv"),
        ))
        .unwrap();
    let user = StaffId::parse("lo-1").unwrap();
    let tokens: Vec<String> = (0..TOKENS)
        .map(|_| idp.mint(&user, "market", 3_600).unwrap())
        .collect();
    let route = "/v1/cases/{id}/first-vote";

    let mut cold = Vec::with_capacity(TOKENS);
    let mut warm = Vec::with_capacity(TOKENS * ROUNDS);
    // A fresh verifier per batch: every token's first use is a cache miss.
    for batch in tokens.chunks(200) {
        let verifier = idp.verifier("market").unwrap();
        for token in batch {
            let started = Instant::now();
            let verified = verifier.verify(black_box(token)).unwrap();
            let allowed = authorizer.allows("loan_officer", route, "POST");
            cold.push(started.elapsed());
            assert!(allowed && verified.subject == user);
        }
        for _ in 0..ROUNDS {
            for token in batch {
                let started = Instant::now();
                let verified = verifier.verify(black_box(token)).unwrap();
                let allowed = authorizer.allows("loan_officer", route, "POST");
                warm.push(started.elapsed());
                black_box((verified, allowed));
            }
        }
    }
    cold.sort();
    warm.sort();
    let show = |name: &str, d: &[Duration]| {
        println!(
            "{name:<34} n={:<6} p50 {:>8.2} us  p99 {:>8.2} us",
            d.len(),
            percentile(d, 0.50).as_secs_f64() * 1e6,
            percentile(d, 0.99).as_secs_f64() * 1e6,
        );
    };
    show("authn+authz, warm token cache", &warm);
    show("authn+authz, cold (signature)", &cold);
    println!(
        "ratio cold/warm at p50: {:.0}x (target: warm p50 <= 20 us)",
        percentile(&cold, 0.5).as_secs_f64() / percentile(&warm, 0.5).as_secs_f64()
    );
}
