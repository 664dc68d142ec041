//! Audited write throughput on PostgreSQL (issue figures, see docs/benchmarks.md).
//!
//! 32 concurrent clients commit transactions for a fixed time, without and
//! with audit, in the same run on the same database server, for two shapes:
//! * `minimal`: one business row (an idempotency record) and nothing else,
//!   the worst case for the audit's relative cost;
//! * `command`: what a command of this platform does around its write: load
//!   the acting person (authentication and the S-checks load them twice),
//!   look up the idempotency key, write the business row.
//!
//! Audited means: plus the command's audit event, with the audit sequencer
//! running as in production (leader lease, a round every 100 ms, signed
//! heads).
//!
//! Baseline and audited run alternately in 5 s slices. Reported:
//! transactions/s of both and their ratio; the age of the oldest
//! unlinked event, sampled every 10 ms under load (p50/p99/max); and the
//! delay from an event's record time to its linking, over every event.
//!
//! Run with `cargo bench -p creditops --bench audit_sequencer` (needs
//! `CREDITOPS_TEST_PG_URL`; `CREDITOPS_BENCH_CLIENTS` and
//! `CREDITOPS_BENCH_SECONDS` override 32 clients and 10 s per phase).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use creditops_audit::{AuditAction, AuditRecord, Outcome, SigningKey, leaf_hash};
use creditops_domain::{
    CaseId, CompetenceGrant, Role, RoleAssignment, Side, StaffId, StaffMember, StaffStatus,
    UnitAssignment, UnitId,
};
use creditops_store::{AuditSequencer, IdempotencyScope, NewAuditEvent, Store, StoredResponse};
use creditops_store_postgres::PgStore;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const ORIGIN: &str = "creditops.bench/sequencer";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Minimal,
    Command,
}

async fn one_transaction(store: &dyn Store, shape: Shape, client: u64, audited: bool) {
    let now = Utc::now();
    let actor = StaffId::parse(&format!("bench-{}", client % PEOPLE)).expect("staff id");
    let scope = IdempotencyScope {
        actor: actor.clone(),
        operation: "POST /v1/cases/{id}/second-vote".into(),
        key: uuid::Uuid::now_v7().to_string(),
    };
    let mut tx = store.begin().await.expect("begin");
    if shape == Shape::Command {
        for _ in 0..2 {
            tx.staff_member(&actor)
                .await
                .expect("staff")
                .expect("seeded");
        }
        assert!(
            tx.idempotent_response(&scope)
                .await
                .expect("lookup")
                .is_none()
        );
    }
    tx.save_idempotent_response(
        &scope,
        &StoredResponse {
            request_hash: "0".repeat(64),
            status: 200,
            body: vec![b'x'; 400],
            created_at: now,
        },
    )
    .await
    .expect("business row");
    if audited {
        let mut record =
            AuditRecord::new("backoffice", AuditAction::CaseSecondVote, Outcome::Ok, now);
        record.actor = Some(actor.to_string());
        record.case_id = Some(CaseId::generate());
        record.data = serde_json::json!({"amount": "250000.00", "decision": "approve", "level": 2});
        let body = record.canonical_body().expect("body");
        tx.append_audit(&NewAuditEvent {
            event_id: record.id,
            leaf_hash: leaf_hash(&body),
            body,
            recorded_at: now,
            actor: record.actor.clone(),
            action: record.action.as_str().to_owned(),
            outcome: "ok".into(),
            case_id: None,
            borrower_id: None,
        })
        .await
        .expect("audit event");
    }
    tx.commit().await.expect("commit");
}

/// People the clients act as (seeded in the staff directory).
const PEOPLE: u64 = 8;

async fn seed_people(store: &dyn Store) {
    let valid_from = Utc::now() - chrono::Duration::days(30);
    let unit = UnitId::parse("bench-backoffice").expect("unit");
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit, "Credit Back Office", Side::Backoffice)
        .await
        .expect("unit");
    for n in 0..PEOPLE {
        tx.insert_staff(&StaffMember {
            id: StaffId::parse(&format!("bench-{n}")).expect("staff id"),
            status: StaffStatus::Active,
            units: vec![UnitAssignment {
                unit_id: unit.clone(),
                side: Side::Backoffice,
                valid_from,
                valid_to: None,
            }],
            roles: vec![RoleAssignment {
                role: Role::CreditAnalyst,
                valid_from,
                valid_to: None,
            }],
            competences: vec![CompetenceGrant {
                side: Side::Backoffice,
                level: 2,
                valid_from,
                valid_to: None,
            }],
        })
        .await
        .expect("staff");
    }
    tx.commit().await.expect("commit");
}

/// Runs `clients` loops for `seconds`; returns committed transactions and,
/// when audited, the sampled ages of the oldest unlinked event.
async fn phase(
    store: Arc<PgStore>,
    shape: Shape,
    clients: u64,
    seconds: u64,
    audited: bool,
) -> (u64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                one_transaction(store.as_ref(), shape, client, audited).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let sampler = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ages = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if audited {
                    let oldest = store.oldest_unsequenced_audit().await.expect("lag");
                    let age = oldest
                        .and_then(|at| (Utc::now() - at).to_std().ok())
                        .unwrap_or_default();
                    ages.push(age);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ages
        })
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let committed = done.load(Ordering::Relaxed);
    for task in tasks {
        task.await.expect("client");
    }
    (committed, sampler.await.expect("sampler"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "audited write benchmark: run with `cargo bench -p creditops --bench audit_sequencer`"
        );
        return;
    }
    let Some(base) = pg_test_url() else {
        println!("CREDITOPS_TEST_PG_URL is not set: nothing measured");
        return;
    };
    let clients = env_or("CREDITOPS_BENCH_CLIENTS", 32);
    let seconds = env_or("CREDITOPS_BENCH_SECONDS", 10);
    let db = TestDatabase::create(&base).await;
    let pool_size = u32::try_from(clients).unwrap_or(32) + 4;
    let store = Arc::new(
        PgStore::connect(&db.url, ORIGIN, pool_size)
            .await
            .expect("connect"),
    );
    let key =
        Arc::new(SigningKey::from_pkcs8(ORIGIN, &SigningKey::generate_pkcs8().unwrap()).unwrap());

    seed_people(store.as_ref()).await;
    // Warm-up; then per shape the baseline and the audited phase, the
    // sequencer running (as in production) through all phases.
    phase(store.clone(), Shape::Command, clients, 1, false).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sequencer = creditops::sequencer::spawn(
        store.clone(),
        Some(key),
        Duration::from_millis(100),
        stop_rx,
    );
    let (results, mut ages, seconds) = run_phases(&store, clients, seconds).await;
    let _ = stop_tx.send(true);
    sequencer.await.expect("sequencer");
    let (delays, heads) = link_delays(&db.url).await;
    store.close().await;
    db.drop_database().await;

    ages.sort_unstable();
    report(clients, seconds, &results, &ages, &delays, heads);
}

/// Transactions of one shape: without audit, with audit.
type ShapeResult = (&'static str, u64, u64);

/// Baseline and audited phases of both shapes, alternating in slices so a
/// noisy neighbour on the shared machine hits both alike. Returns the
/// counts, the sampled ages of the oldest unlinked event and the seconds
/// each phase actually ran.
async fn run_phases(
    store: &Arc<PgStore>,
    clients: u64,
    seconds: u64,
) -> (Vec<ShapeResult>, Vec<Duration>, u64) {
    let mut results = Vec::new();
    let mut ages = Vec::new();
    let slices = (seconds / 5).max(1);
    let slice = seconds / slices;
    for (name, shape) in [("minimal", Shape::Minimal), ("command", Shape::Command)] {
        let (mut baseline, mut audited) = (0, 0);
        for _ in 0..slices {
            baseline += phase(store.clone(), shape, clients, slice, false).await.0;
            let (done, sampled) = phase(store.clone(), shape, clients, slice, true).await;
            audited += done;
            ages.extend(sampled);
        }
        results.push((name, baseline, audited));
    }
    (results, ages, slice * slices)
}

/// Every event's delay from its record time to its linking (ms, sorted),
/// and the number of signed heads.
async fn link_delays(url: &str) -> (Vec<f64>, i64) {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect");
    let delays: Vec<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM (c.sequenced_at - e.recorded_at)) * 1000)::float8 \
         FROM audit_chain c JOIN audit_entries e ON e.event_id = c.event_id ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("delays");
    let heads: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_heads")
        .fetch_one(&mut conn)
        .await
        .expect("heads");
    (delays, heads)
}

fn report(
    clients: u64,
    seconds: u64,
    results: &[ShapeResult],
    ages: &[Duration],
    delays: &[f64],
    heads: i64,
) {
    let per_second = |n: u64| n as f64 / seconds as f64;
    let delay_at = |p: f64| {
        if delays.is_empty() {
            0.0
        } else {
            delays[((delays.len() as f64 * p).ceil() as usize).clamp(1, delays.len()) - 1]
        }
    };
    println!("{clients} clients, {seconds} s per phase, PostgreSQL");
    for &(name, baseline, audited) in results {
        println!(
            "{name:<8} baseline {:>6.0} tx/s, audited {:>6.0} tx/s, ratio {:.2}",
            per_second(baseline),
            per_second(audited),
            audited as f64 / baseline.max(1) as f64
        );
    }
    println!(
        "oldest unlinked event age, sampled every 10 ms ({} samples): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ages.len(),
        ms(percentile(ages, 0.50)),
        ms(percentile(ages, 0.99)),
        ms(percentile(ages, 1.0)),
    );
    println!(
        "record-to-link delay over {} events: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {heads} signed heads",
        delays.len(),
        delay_at(0.50),
        delay_at(0.99),
        delay_at(1.0),
    );
}
