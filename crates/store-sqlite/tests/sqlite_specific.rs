//! SQLite-only behaviour: append-only triggers against raw SQL, the file
//! format, reopening, and corrupt rows.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_audit::{AuditRecord, ChainVerifier, Outcome};
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CreditCase, Money, Role, RoleAssignment, Side, StaffId,
    StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId, VoteDecision,
};
use creditops_store::{AuditFilter, Borrower, NewAuditEvent, Store, StoreError};
use creditops_store_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::path::Path;

const ORIGIN: &str = "creditops.test/sqlite";

fn now() -> Timestamp {
    "2026-03-02T09:15:30.123456Z".parse().expect("time")
}

fn event(n: i64) -> NewAuditEvent {
    let at = now() + chrono::Duration::seconds(n);
    let record = AuditRecord::new("sqlite-test", "test.event", Outcome::Ok, at);
    let body = record.canonical_body().expect("body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: creditops_audit::leaf_hash(&body),
        body,
        recorded_at: at,
        actor: Some("lo-1".into()),
        action: "test.event".into(),
        outcome: "ok".into(),
        case_id: None,
        borrower_id: None,
    }
}

/// A case with a first vote and a decision (declined), plus three audit events.
async fn seed(store: &SqliteStore) -> CaseId {
    let mut tx = store.begin().await.expect("begin");
    let unit = UnitId::parse("market-1").expect("unit");
    tx.upsert_unit(&unit, "Market", Side::Market)
        .await
        .expect("unit");
    let person = StaffMember {
        id: StaffId::parse("lo-1").expect("id"),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: unit,
            side: Side::Market,
            valid_from: now() - chrono::Duration::days(1),
            valid_to: None,
        }],
        roles: vec![RoleAssignment {
            role: Role::LoanOfficer,
            valid_from: now() - chrono::Duration::days(1),
            valid_to: None,
        }],
    };
    tx.insert_staff(&person).await.expect("staff");
    let borrower = Borrower {
        id: BorrowerId::generate(),
        name: "Borrower".into(),
        country: "DE".into(),
        sector: "retail".into(),
        created_by: person.id.clone(),
        created_at: now(),
    };
    tx.insert_borrower(&borrower).await.expect("borrower");
    let money = Money::parse("1000.00", "EUR").expect("money");
    let file = CaseFile::new(borrower.id, money, "loan", 12, "stock").expect("file");
    let mut case = CreditCase::open(CaseId::generate(), file, person.id.clone(), now());
    tx.insert_case(&case).await.expect("case");
    let voter = person.voter_at(now()).expect("voter");
    case.cast_first_vote(Some(&voter), VoteDecision::Decline, "no", 1, now())
        .expect("vote");
    tx.update_case(&case, 1).await.expect("update");
    for n in 1..=3 {
        tx.append_audit(&event(n)).await.expect("append");
    }
    tx.commit().await.expect("commit");
    case.id
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("raw connection")
}

async fn refused(conn: &mut SqliteConnection, sql: &'static str) {
    let err = sqlx::query(sql).execute(&mut *conn).await.expect_err(sql);
    assert!(err.to_string().contains("append-only"), "{sql}: {err}");
}

async fn verify(store: &SqliteStore) -> Result<u64, i64> {
    let mut tx = store.begin_read().await.expect("begin_read");
    let events = tx
        .audit_events(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    let mut verifier = ChainVerifier::new(ORIGIN, 1);
    for e in &events {
        verifier
            .push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash)
            .map_err(|f| f.seq)?;
    }
    Ok(verifier.finish().events)
}

#[tokio::test]
async fn immutable_tables_refuse_update_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    let case_id = seed(&store).await;
    let before = {
        let mut tx = store.begin_read().await.expect("begin_read");
        tx.case(case_id).await.expect("load").expect("case")
    };

    let mut conn = raw(&path).await;
    refused(
        &mut conn,
        "UPDATE audit_events SET action = 'x' WHERE seq = 2",
    )
    .await;
    refused(&mut conn, "UPDATE audit_events SET body = x'7b7d'").await;
    refused(&mut conn, "DELETE FROM audit_events WHERE seq = 3").await;
    refused(&mut conn, "DELETE FROM audit_events").await;
    refused(&mut conn, "UPDATE votes SET rationale = 'changed'").await;
    refused(&mut conn, "DELETE FROM votes").await;
    refused(&mut conn, "UPDATE decisions SET outcome = 'approved'").await;
    refused(&mut conn, "DELETE FROM decisions").await;
    conn.close().await.expect("close");

    assert_eq!(verify(&store).await, Ok(3));
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.case(case_id).await.expect("load"), Some(before));
}

#[tokio::test]
async fn audit_trigger_names_are_stable_and_the_chain_catches_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    seed(&store).await;

    let mut conn = raw(&path).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events' \
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("trigger names");
    assert_eq!(names, ["audit_events_no_delete", "audit_events_no_update"]);

    // Somebody with file access drops the trigger and edits an event: the
    // hash chain names the edited position.
    sqlx::query("DROP TRIGGER audit_events_no_update")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    sqlx::query("UPDATE audit_events SET body = CAST('{\"forged\":true}' AS BLOB) WHERE seq = 2")
        .execute(&mut conn)
        .await
        .expect("tamper");
    conn.close().await.expect("close");
    assert_eq!(verify(&store).await, Err(2));
}

#[tokio::test]
async fn the_file_is_wal_and_reopening_keeps_data_and_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("creditops.db");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    assert_eq!(store.backend(), "sqlite");
    assert_eq!(store.audit_origin(), ORIGIN);
    seed(&store).await;
    store.close().await;
    drop(store);

    let mut conn = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let money_columns: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('cases') WHERE type = 'REAL'")
            .fetch_one(&mut conn)
            .await
            .expect("column types");
    assert_eq!(money_columns, 0, "no floating-point columns");
    conn.close().await.expect("close");

    // Reopening runs the (already applied) migrations again and continues the chain.
    let store = SqliteStore::open(&path, ORIGIN).await.expect("reopen");
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.append_audit(&event(4)).await.expect("append"), 4);
    tx.commit().await.expect("commit");
    assert_eq!(verify(&store).await, Ok(4));
}

#[tokio::test]
async fn undecodable_rows_are_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    let case_id = seed(&store).await;

    let mut conn = raw(&path).await;
    // A currency code without minor units passes the CHECK but is no money.
    sqlx::query("UPDATE cases SET currency = 'XXX'")
        .execute(&mut conn)
        .await
        .expect("tamper");
    conn.close().await.expect("close");

    let mut tx = store.begin_read().await.expect("begin_read");
    let err = tx.case(case_id).await.expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(
        !err.to_string().contains("XXX"),
        "no stored values in messages"
    );
}

#[tokio::test]
async fn the_leaf_hash_must_match_the_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("c.db"), ORIGIN)
        .await
        .expect("open");
    let mut forged = event(1);
    forged.body = b"{\"other\":1}".to_vec();
    let mut tx = store.begin().await.expect("begin");
    let err = tx.append_audit(&forged).await.expect_err("leaf mismatch");
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}
