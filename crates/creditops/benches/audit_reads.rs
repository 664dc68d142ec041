//! Audit reads against the size of the log (issue figures, see
//! docs/benchmarks.md#audit-reads): an inclusion proof, a consistency
//! proof, a signed checkpoint and an incremental verification, each exactly
//! as the audit service's route runs it through the command layer (the log
//! caught up, the stored tree read, the note signed, the read audited with
//! the checkpoint it hands out), at 10,000 and at 1,000,000 events.
//!
//! The log is filled directly through the store (`append_audit`, 2,000
//! events a transaction; PostgreSQL's sequencer links them). Per size and
//! operation: 1,000 runs (`verify`: 100), p50 and p99. `verify` is the incremental
//! verification of the 100 events appended since the last one. In the same
//! run, the figures the routes had before the stored tree: rebuilding the
//! tree from every leaf (what each proof, consistency proof and checkpoint
//! did), and a full verification from the first event.
//!
//! At each size also the export (`POST /v1/exports` without its HTTP):
//! of the last 10,000 events and of the whole log, its time, the archive's
//! size and the most heap it held at once (every allocation is counted);
//! and, as the figure from before the export streamed, the heap that
//! loading the whole checked log (the old export's first step) held.
//!
//! Run with `cargo bench -p creditops --bench audit_reads` (PostgreSQL
//! when `CREDITOPS_TEST_PG_URL` is set; `CREDITOPS_BENCH_EVENTS` overrides
//! 1,000,000, `CREDITOPS_BENCH_BACKENDS` (default `sqlite,postgres`) picks
//! the backends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use creditops_audit::{
    AuditAction, AuditRecord, MerkleTree, Outcome, SigningKey, hash_from_slice, leaf_hash,
};
use creditops_commands::audit_bundle::{ExportKeys, Selection, load_verified_log};
use creditops_commands::audit_trail::{self, ChainCheck, StoredTree};
use creditops_commands::{Actor, Context};
use creditops_domain::{Role, StaffId};
use creditops_store::{AuditFilter, NewAuditEvent, Store, StoreExt, StoredCheckpoint};
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ORIGIN: &str = "creditops.bench/audit-reads";
const RUNS: usize = 1000;
const SMALL: u64 = 10_000;
const PER_TX: u64 = 2_000;
/// Events appended before each timed incremental verification.
const SINCE_VERIFIED: u64 = 100;

/// Every allocation of this process is counted, so that a figure says how
/// much heap an operation holds at once (the allocator keeps freed pages,
/// so the resident size would not).
#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn live_heap() -> i128 {
    let stats = HEAP.stats();
    // A reallocation's growth or shrinkage is already in these two.
    stats.bytes_allocated as i128 - stats.bytes_deallocated as i128
}

/// Runs `work`, and returns its time and the most heap it held at once
/// beyond what was live before, in MB (sampled every millisecond).
async fn with_peak<T>(work: impl std::future::Future<Output = T>) -> (T, Duration, f64) {
    let before = live_heap();
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = running.clone();
        std::thread::spawn(move || {
            let mut peak = 0i128;
            while running.load(Ordering::Relaxed) {
                peak = peak.max(live_heap() - before);
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let started = Instant::now();
    let out = work.await;
    let elapsed = started.elapsed();
    let held = live_heap() - before;
    running.store(false, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler").max(held);
    (out, elapsed, peak as f64 / 1e6)
}

fn large() -> u64 {
    std::env::var("CREDITOPS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn event(n: u64) -> NewAuditEvent {
    let at = Utc::now();
    let mut record = AuditRecord::new("bench", AuditAction::AuditQuery, Outcome::Ok, at);
    record.actor = Some("ia-1".into());
    record.data = serde_json::json!({ "n": n });
    let body = record.canonical_body().expect("canonical body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: leaf_hash(&body),
        body,
        recorded_at: at,
        actor: Some("ia-1".into()),
        action: AuditAction::AuditQuery.as_str().to_owned(),
        outcome: Outcome::Ok.as_str().to_owned(),
        case_id: None,
        borrower_id: None,
    }
}

/// Appends events until the linked log has `size` events.
async fn fill_to(store: &dyn Store, size: u64) {
    store
        .flush_audit(Duration::from_secs(600))
        .await
        .expect("flush");
    let mut have = store
        .begin_read()
        .await
        .expect("read")
        .audit_size()
        .await
        .expect("size");
    while have < size {
        let n = PER_TX.min(size - have);
        let mut tx = store.begin().await.expect("begin");
        for i in 0..n {
            tx.append_audit(&event(have + i)).await.expect("append");
        }
        tx.commit().await.expect("commit");
        have += n;
        // PostgreSQL links after commit; keep the sequencer's rounds short.
        store
            .flush_audit(Duration::from_secs(600))
            .await
            .expect("flush");
    }
}

struct Bench {
    ctx: Context,
    actor: Actor,
    key: SigningKey,
}

impl Bench {
    fn keys(&self) -> ExportKeys<'_> {
        ExportKeys {
            signing: &self.key,
            retired: &[],
        }
    }

    async fn checkpoint(&self) {
        let tree = StoredTree::open(&self.ctx).await.expect("tree");
        let head = tree.head();
        let note = self
            .key
            .sign_checkpoint(ORIGIN, head.size, &head.root)
            .expect("sign");
        self.hand_out(tree, AuditAction::AuditCheckpoint, note)
            .await;
    }

    async fn proof(&self, index: u64) {
        let mut tree = StoredTree::open(&self.ctx).await.expect("tree");
        let head = tree.head();
        let proofs = tree.inclusion_proofs(&[index]).await.expect("proof");
        let (leaf, path) = &proofs[0];
        creditops_audit::merkle::verify_inclusion(leaf, index, head.size, path, &head.root)
            .expect("the proof verifies");
        let note = self
            .key
            .sign_checkpoint(ORIGIN, head.size, &head.root)
            .expect("sign");
        self.hand_out(tree, AuditAction::AuditProof, note).await;
    }

    async fn consistency(&self, old: u64) {
        let mut tree = StoredTree::open(&self.ctx).await.expect("tree");
        let head = tree.head();
        let (old_root, new_root, path) =
            tree.consistency_proof(old, head.size).await.expect("proof");
        creditops_audit::merkle::verify_consistency(old, head.size, &old_root, &new_root, &path)
            .expect("the proof verifies");
        self.key
            .sign_checkpoint(ORIGIN, head.size, &head.root)
            .expect("sign");
        tree.record_read(
            &self.ctx,
            &self.actor,
            AuditAction::AuditConsistency,
            serde_json::json!({"from": old, "to": head.size}),
            None,
        )
        .await
        .expect("audited");
    }

    /// Audits the read in the tree's transaction, with the checkpoint it
    /// hands out, as the routes do.
    async fn hand_out(&self, tree: StoredTree, action: AuditAction, note: String) {
        let head = tree.head();
        let checkpoint = StoredCheckpoint {
            tree_size: head.size,
            root: head.root,
            note,
            signed_at: Utc::now(),
        };
        tree.record_read(
            &self.ctx,
            &self.actor,
            action,
            serde_json::json!({"size": head.size}),
            Some(&checkpoint),
        )
        .await
        .expect("audited");
    }

    async fn verify(&self, full: bool) -> ChainCheck {
        let check = audit_trail::verify(&self.ctx, &self.actor, ORIGIN, Some(self.keys()), full)
            .await
            .expect("verify");
        assert!(matches!(check, ChainCheck::Intact { .. }), "{check:?}");
        check
    }

    /// What every proof, consistency proof and checkpoint did before the
    /// stored tree: read every leaf and build the tree in memory.
    /// The export figures at the log's current `size` (see the module doc).
    async fn exports(&self, name: &str, size: u64) {
        let last = i64::try_from(size).unwrap();
        for (label, selection) in [
            (
                "the last 10,000 events",
                Selection::Seq(Some(last - 9_999), Some(last)),
            ),
            ("the whole log", Selection::Seq(None, None)),
        ] {
            let (archive, elapsed, peak) = with_peak(audit_trail::export_archive(
                &self.ctx,
                ORIGIN,
                self.keys(),
                selection,
                Utc::now(),
            ))
            .await;
            let archive = archive.expect("export");
            println!(
                "{name} at {size} events: export of {label}: {elapsed:.1?}, archive {:.1} MB, \
                 heap held at most {peak:.1} MB",
                archive.len as f64 / 1e6
            );
        }
        let (log, elapsed, peak) = with_peak(async {
            let mut tx = self.ctx.store.begin_read().await.expect("read");
            load_verified_log(tx.as_mut(), ORIGIN).await.expect("log")
        })
        .await;
        println!(
            "{name} at {size} events: loading the whole checked log, as the export did before \
             it streamed: {elapsed:.1?}, heap held at most {peak:.1} MB ({} events)",
            log.len()
        );
    }

    async fn rebuild_from_leaves(&self) -> MerkleTree {
        let mut tx = self.ctx.store.begin_read().await.expect("read");
        let mut leaves = Vec::new();
        let mut after = None;
        loop {
            let batch = tx
                .audit_events(&AuditFilter {
                    after_seq: after,
                    limit: 5000,
                    ..AuditFilter::default()
                })
                .await
                .expect("events");
            leaves.extend(batch.iter().map(|e| hash_from_slice(&e.leaf_hash).unwrap()));
            match batch.last() {
                Some(last) if batch.len() == 5000 => after = Some(last.seq),
                _ => break,
            }
        }
        MerkleTree::from_leaves(leaves)
    }
}

/// A small deterministic sequence of positions (no dependency for it).
struct Positions(u64);

impl Positions {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

#[derive(Clone, Copy)]
struct Figure {
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:>7.2} ms  p99 {:>7.2} ms",
            ms(self.p50),
            ms(self.p99)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn figure(mut samples: Vec<Duration>) -> Figure {
    samples.sort();
    let at =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    Figure {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// The four operations at the log's current size, `RUNS` times each (`verify` a tenth as often).
async fn measure(bench: &Bench, store: &dyn Store, positions: &mut Positions) -> [Figure; 4] {
    let size = store
        .begin_read()
        .await
        .expect("read")
        .audit_size()
        .await
        .expect("size");
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for _ in 0..RUNS {
        let index = positions.next(size);
        let started = Instant::now();
        bench.proof(index).await;
        samples[0].push(started.elapsed());

        let old = positions.next(size) + 1;
        let started = Instant::now();
        bench.consistency(old).await;
        samples[1].push(started.elapsed());

        let started = Instant::now();
        bench.checkpoint().await;
        samples[2].push(started.elapsed());
    }
    // Catch up with the reads just audited, then time verifications of
    // what was appended since the last one (and its own audit event).
    bench.verify(false).await;
    for _ in 0..RUNS / 10 {
        let now = store
            .begin_read()
            .await
            .expect("read")
            .audit_size()
            .await
            .expect("size");
        fill_to(store, now + SINCE_VERIFIED).await;
        let started = Instant::now();
        let check = bench.verify(false).await;
        samples[3].push(started.elapsed());
        assert!(
            matches!(check, ChainCheck::Intact { events, .. }
                if (SINCE_VERIFIED..=SINCE_VERIFIED + 1).contains(&events)),
            "{check:?}"
        );
    }
    samples.map(figure)
}

async fn run(name: &str, store: Arc<dyn Store>, postgres_url: Option<&str>) {
    let (sod, _) = creditops::platform::load_sod(None).expect("sod matrix");
    creditops::demo::seed(store.as_ref(), &sod)
        .await
        .expect("seed");
    let member = store
        .begin_read()
        .await
        .expect("read")
        .staff_member(&"ia-1".parse::<StaffId>().expect("id"))
        .await
        .expect("staff")
        .expect("ia-1 is seeded");
    let bench = Bench {
        ctx: Context {
            service: "audit",
            store: store.clone(),
            policy_hash: "bench".into(),
            sod: Arc::new(sod),
            claim_timeout: Duration::from_secs(5),
            operator: None,
        },
        actor: Actor {
            member,
            roles: vec![Role::InternalAuditor],
            at: Utc::now(),
            request_id: "bench".into(),
            rule_sets: None,
            authority: None,
        },
        key: SigningKey::from_pkcs8(ORIGIN, &SigningKey::generate_pkcs8().expect("key"))
            .expect("key"),
    };
    let mut positions = Positions(7);
    let mut table = Vec::new();
    for size in [SMALL, large()] {
        let started = Instant::now();
        fill_to(store.as_ref(), size).await;
        println!(
            "{name}: filled to {size} events in {:.1?}",
            started.elapsed()
        );
        // What a running server does within minutes of a bulk load, so the
        // reads are measured on a log at rest (as a log filled over years
        // is), not beside the maintenance of a fill of seconds: autovacuum
        // vacuums the insert-only tables and analyzes them (plans for their
        // real sizes), the checkpointer writes the pages the fill dirtied.
        if let Some(url) = postgres_url {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::query("VACUUM (ANALYZE)")
                .execute(&pool)
                .await
                .expect("vacuum");
            // Needs a superuser or pg_checkpoint; otherwise the
            // checkpointer's own schedule writes them.
            if let Err(e) = sqlx::query("CHECKPOINT").execute(&pool).await {
                println!("{name}: no checkpoint after the fill ({e})");
            }
            pool.close().await;
        }
        bench.exports(name, size).await;
        let started = Instant::now();
        let full = bench.verify(true).await;
        let full_time = started.elapsed();
        let started = Instant::now();
        let tree = bench.rebuild_from_leaves().await;
        let rebuild = started.elapsed();
        assert!(tree.size() >= size);
        let figures = measure(&bench, store.as_ref(), &mut positions).await;
        println!(
            "{name} at {size} events: full verification {:.1?} ({} events); rebuilding the tree \
             from the leaves (before) {:.1?}",
            full_time,
            match full {
                ChainCheck::Intact { events, .. } => events,
                ChainCheck::Broken { .. } => 0,
            },
            rebuild
        );
        for (label, figure) in ["proof", "consistency", "checkpoint", "verify"]
            .iter()
            .zip(figures)
        {
            println!("  {label:<12} {figure}");
        }
        table.push((size, figures, rebuild));
    }
    let (small, large_figures) = (table[0].1, table[1].1);
    println!(
        "{name}: ratio at {} vs {} events (target <= 2.0):",
        table[1].0, table[0].0
    );
    for (i, label) in ["proof", "consistency", "checkpoint", "verify"]
        .iter()
        .enumerate()
    {
        println!(
            "  {label:<12} p50 {:.2}x  p99 {:.2}x",
            ms(large_figures[i].p50) / ms(small[i].p50),
            ms(large_figures[i].p99) / ms(small[i].p99)
        );
    }
    println!(
        "{name}: proof p99 at {} events {:.2} ms (target < 5 ms)",
        table[1].0,
        ms(large_figures[0].p99)
    );
}

#[tokio::main]
async fn main() {
    let backends =
        std::env::var("CREDITOPS_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends.split(',') {
        match backend.trim() {
            "sqlite" => {
                let store = creditops::open_store(None, dir.path(), ORIGIN)
                    .await
                    .expect("sqlite");
                run("SQLite", store, None).await;
            }
            "postgres" => {
                let Some(base) = pg_test_url() else {
                    println!("PostgreSQL: skipped (CREDITOPS_TEST_PG_URL is not set)");
                    continue;
                };
                let db = TestDatabase::create(&base).await;
                let store = creditops::open_store(Some(&db.url), dir.path(), ORIGIN)
                    .await
                    .expect("postgres");
                run("PostgreSQL", store, Some(&db.url)).await;
                db.drop_database().await;
            }
            other => eprintln!("CREDITOPS_BENCH_BACKENDS: unknown backend {other:?}"),
        }
    }
}
