//! Verification speed of an export bundle (issue figure, see docs/benchmarks.md):
//! a format version 2 bundle of 1,000,000 events (canonical JSON bodies of
//! realistic size) is verified completely (SHA256SUMS, every line, leaf,
//! chain value and body, the Merkle root from the border hashes and the
//! leaves, the signed checkpoint), against a baseline that only computes the
//! raw SHA-256 leaf and chain hashes of the same bodies, in the same run.
//! The verifier uses a second thread; the baseline one.
//!
//! Run with `cargo bench -p creditops-audit --bench verify_export`
//! (`CREDITOPS_BENCH_EVENTS` overrides the number of events).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use creditops_audit::export::{BundleEntry, BundleInput, build_bundle, verify_bundle};
use creditops_audit::{
    AuditAction, AuditRecord, MerkleTree, Outcome, SigningKey, chain_genesis, chain_next, leaf_hash,
};
use creditops_domain::{BorrowerId, CaseId};
use std::hint::black_box;
use std::time::Instant;

const ORIGIN: &str = "creditops.bench/audit";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("export verification benchmark: run with `cargo bench -p creditops-audit`");
        return;
    }
    let events: usize = std::env::var("CREDITOPS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let start = Instant::now();
    let now = Utc::now();
    let entries = log(events, now);
    let body_bytes: usize = entries.iter().map(|e| e.body.len()).sum();
    let files = bundle(&entries, now);
    let bundle_bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    println!(
        "built a bundle of {events} events ({} MB of bodies, {} MB of files) in {:.1} s",
        body_bytes / 1_000_000,
        bundle_bytes / 1_000_000,
        start.elapsed().as_secs_f64()
    );
    let bodies: Vec<&[u8]> = entries.iter().map(|e| e.body.as_slice()).collect();
    let mut verify_times = Vec::new();
    let mut raw_times = Vec::new();
    // Best of five, alternating: on a shared machine another process can
    // take a core for a while.
    for _ in 0..5 {
        let start = Instant::now();
        let report = verify_bundle(&files).expect("the bundle verifies");
        verify_times.push(start.elapsed().as_secs_f64());
        black_box(report);
        let start = Instant::now();
        let mut chain = chain_genesis(ORIGIN);
        for body in &bodies {
            chain = chain_next(&chain, &leaf_hash(body));
        }
        raw_times.push(start.elapsed().as_secs_f64());
        black_box(chain);
    }
    let best = |times: &[f64]| times.iter().copied().fold(f64::INFINITY, f64::min);
    let verify = best(&verify_times);
    let raw = best(&raw_times);
    let per_second = |seconds: f64| events as f64 / seconds;
    println!(
        "full verification: {verify:.2} s ({:.0} events/s); raw SHA-256 leaf+chain of the same \
         bodies: {raw:.2} s ({:.0} events/s); ratio {:.2} (target >= 0.3)",
        per_second(verify),
        per_second(raw),
        raw / verify
    );
}

/// `events` audit events of a second vote, with canonical bodies of
/// realistic size, chained from the origin.
fn log(events: usize, now: chrono::DateTime<Utc>) -> Vec<BundleEntry> {
    let mut entries = Vec::with_capacity(events);
    let mut chain = chain_genesis(ORIGIN);
    for i in 0..events {
        let mut record =
            AuditRecord::new("backoffice", AuditAction::CaseSecondVote, Outcome::Ok, now);
        record.actor = Some(format!("ba-{}", i % 40));
        record.case_id = Some(CaseId::generate());
        record.borrower_id = Some(BorrowerId::generate());
        record.request_id = Some(format!("req-{i}"));
        record.data = serde_json::json!({
            "amount": format!("{}.00", 1000 + i),
            "currency": "EUR",
            "version": 1,
            "decision": "approve",
            "level": 2,
        });
        let body = record.canonical_body().unwrap();
        let leaf = leaf_hash(&body);
        chain = chain_next(&chain, &leaf);
        entries.push(BundleEntry {
            seq: u64::try_from(i + 1).unwrap(),
            body,
            leaf,
            chain,
        });
    }
    entries
}

/// The bundle of the whole log, signed by a fresh key.
fn bundle(entries: &[BundleEntry], now: chrono::DateTime<Utc>) -> Vec<(String, Vec<u8>)> {
    let tree = MerkleTree::from_leaves(entries.iter().map(|e| e.leaf).collect());
    let key = SigningKey::from_pkcs8(ORIGIN, &SigningKey::generate_pkcs8().unwrap()).unwrap();
    let note = key
        .sign_checkpoint(ORIGIN, tree.size(), &tree.root())
        .unwrap();
    build_bundle(&BundleInput {
        origin: ORIGIN,
        range: "bench",
        entries,
        chain_before: chain_genesis(ORIGIN),
        tree: &tree,
        checkpoint: &note,
        previous_checkpoint: None,
        signing_key: &key.verifier_key(),
        other_keys: &[],
        created_at: now,
    })
    .unwrap()
}
