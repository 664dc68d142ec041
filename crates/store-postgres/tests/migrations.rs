//! PostgreSQL migrations over existing data: a database created by the
//! first migration keeps its rows through the later ones.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{ORIGIN, assert_tree_matches_chain, event, now, raw, verify};
use creditops_domain::{BorrowerId, CaseId, Money};
use creditops_store::Store;
use creditops_store_postgres::PgStore;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use sqlx::{Connection, PgConnection};

/// A database created by 0001 with data in it: 0002 adds the new columns
/// with their documented defaults and swaps the named status CHECK, so the
/// old rows load and 'escalated' is accepted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_a_0001_database_keeps_its_data() {
    let Some(base) = pg_test_url() else { return };
    let db = TestDatabase::create(&base).await;
    let outcome = tokio::spawn(migrate_from_0001(db.url.clone())).await;
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn migrate_from_0001(url: String) {
    apply_0001(&url).await;
    let (case_id, borrower_id) = write_0001_rows(&url).await;

    let store = PgStore::connect(&url, ORIGIN, 2)
        .await
        .expect("migrate to 0002");
    let mut tx = store.begin_read().await.expect("begin_read");
    let case = tx.case(case_id).await.expect("load").expect("case kept");
    assert_eq!(
        case.file.amount,
        Money::parse("1234.56", "EUR").expect("money")
    );
    assert_eq!(case.votes.len(), 1);
    assert_eq!(case.votes[0].round, 0);
    assert_eq!(case.votes[0].required_level, 0);
    assert_eq!(case.votes[0].voter.competence_level, 0);
    assert_eq!(case.votes[0].voter.left_market_at, None);
    assert!(case.editors.is_empty());
    assert_eq!((case.round, case.escalation_level), (0, None));
    assert!(!case.related_party);
    assert_eq!(case.board_resolution, None);
    assert!(case.decision.is_some());
    let borrower = tx.borrower(borrower_id).await.expect("load").expect("kept");
    assert_eq!(borrower.relationship_manager, None);
    assert!(!borrower.institution, "0003 adds institution = false");
    drop(tx);
    // 0005 moved the events, in order; the first round rebuilds the tree
    // nodes they predate, and new events continue the same chain.
    let mut tx = store.begin().await.expect("begin");
    tx.append_audit(&event(6)).await.expect("append");
    tx.commit().await.expect("commit");
    assert_eq!(verify(&store).await, Ok(6));
    assert_tree_matches_chain(&url).await;
    // Rows written before rows carried their event id are reported.
    let mut tx = store.begin_read().await.expect("begin_read");
    let unstamped = tx.unaudited_rows(10).await.expect("reconcile");
    assert_eq!(unstamped.len(), 4, "{unstamped:?}");
    assert!(unstamped.iter().all(|row| row.audit_event_id.is_none()));
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let mut escalated = tx.case(case_id).await.expect("load").expect("case");
    escalated.status = creditops_domain::CaseStatus::Escalated;
    escalated.revision += 1;
    tx.update_case(&escalated, 2)
        .await
        .expect("escalated is allowed now");
    tx.commit().await.expect("commit");
    let mut conn = raw(&url).await;
    let checks: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'cases'::regclass AND conname = 'cases_status_check'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("constraint");
    assert_eq!(checks.len(), 1);
    assert!(checks[0].contains("escalated"), "{}", checks[0]);
    let err = sqlx::query("UPDATE cases SET status = 'unknown'")
        .execute(&mut conn)
        .await
        .expect_err("unknown status");
    assert!(err.to_string().contains("cases_status_check"), "{err}");
    let _ = conn.close().await;
    store.close().await;
}

/// Applies only the first migration to the empty database at `url`.
async fn apply_0001(url: &str) {
    let dir = tempfile_dir();
    std::fs::write(
        dir.join("0001_initial.sql"),
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    )
    .expect("copy 0001");
    let pool = sqlx::PgPool::connect(url).await.expect("pool");
    let migrated = match sqlx::migrate::Migrator::new(dir.as_path()).await {
        Ok(migrator) => migrator.run(&pool).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    migrated.expect("apply 0001");
    pool.close().await;
}

/// A case with a vote and a decision, its borrower, and five audit events
/// linked the 0001 way, written with raw SQL as 0001 stored them.
async fn write_0001_rows(url: &str) -> (CaseId, BorrowerId) {
    let mut conn = raw(url).await;

    let (case_id, borrower_id) = (CaseId::generate(), BorrowerId::generate());
    let decision = serde_json::json!({
        "outcome": "declined",
        "decided_at": now(),
        "file_version": 1,
        "content_hash": "h",
        "votes": [],
        "checks": [],
    });
    sqlx::query("INSERT INTO org_units (id, name, side) VALUES ('m', 'Market', 'market')")
        .execute(&mut conn)
        .await
        .expect("unit");
    sqlx::query("INSERT INTO staff (id, status) VALUES ('lo-1', 'active')")
        .execute(&mut conn)
        .await
        .expect("staff");
    sqlx::query(
        "INSERT INTO borrowers (id, name, country, sector, created_by, created_at) \
         VALUES ($1, 'B', 'DE', 'G47', 'lo-1', $2)",
    )
    .bind(borrower_id.as_uuid())
    .bind(now())
    .execute(&mut conn)
    .await
    .expect("borrower");
    sqlx::query(
        "INSERT INTO cases (id, borrower_id, amount_minor, currency, product, term_months, \
         purpose, status, version, revision, originator, return_reason, created_at, updated_at) \
         VALUES ($1, $2, 123456, 'EUR', 'loan', 12, 'stock', 'declined', 1, 2, 'lo-1', NULL, \
         $3, $3)",
    )
    .bind(case_id.as_uuid())
    .bind(borrower_id.as_uuid())
    .bind(now())
    .execute(&mut conn)
    .await
    .expect("case");
    sqlx::query(
        "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
         rationale, file_version, content_hash, cast_at, checks) \
         VALUES ($1, 0, 'first', 'lo-1', 'm', 'market', 'decline', 'no', 1, 'h', $2, '[]')",
    )
    .bind(case_id.as_uuid())
    .bind(now())
    .execute(&mut conn)
    .await
    .expect("vote");
    sqlx::query(
        "INSERT INTO decisions (case_id, outcome, decided_at, file_version, content_hash, \
         decision_json) VALUES ($1, 'declined', $2, 1, 'h', $3)",
    )
    .bind(case_id.as_uuid())
    .bind(now())
    .bind(decision.to_string())
    .execute(&mut conn)
    .await
    .expect("decision");
    write_0001_events(&mut conn).await;
    let _ = conn.close().await;
    (case_id, borrower_id)
}

/// Five events linked the 0001 way (the chain inside the table).
async fn write_0001_events(conn: &mut PgConnection) {
    let mut chain = creditops_audit::chain_genesis(ORIGIN);
    for n in 1..=5 {
        let e = event(n);
        chain = creditops_audit::chain_next(&chain, &e.leaf_hash);
        sqlx::query(
            "INSERT INTO audit_events (seq, event_id, body, leaf_hash, chain_hash, recorded_at, \
             actor, action, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(n)
        .bind(e.event_id)
        .bind(&e.body)
        .bind(&e.leaf_hash[..])
        .bind(&chain[..])
        .bind(e.recorded_at)
        .bind(e.actor.as_deref())
        .bind(&e.action)
        .bind(&e.outcome)
        .execute(&mut *conn)
        .await
        .expect("0001 audit event");
    }
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "creditops-pg-migrations-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}
