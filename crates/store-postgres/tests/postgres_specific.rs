//! PostgreSQL-only behaviour: append-only triggers against raw SQL (also as
//! the table owner and with replication role), trigger names, appenders in
//! several processes, corrupt rows, an unreachable server.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_audit::{AuditRecord, ChainVerifier, Outcome};
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CreditCase, Money, Role, RoleAssignment, Side, StaffId,
    StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId, VoteDecision,
};
use creditops_store::{AuditFilter, Borrower, NewAuditEvent, Store, StoreError};
use creditops_store_postgres::PgStore;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use sqlx::{Connection, PgConnection};
use std::future::Future;

const ORIGIN: &str = "creditops.test/postgres";

/// Runs `test` against a fresh database, then drops it (also after a panic).
async fn with_db<F, Fut>(test: F)
where
    F: FnOnce(PgStore, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = pg_test_url() else { return };
    let db = TestDatabase::create(&base).await;
    let store = PgStore::connect(&db.url, ORIGIN, 8).await;
    let outcome = match store {
        Ok(store) => {
            let closing = store.clone();
            let outcome = tokio::spawn(test(store, db.url.clone())).await;
            closing.close().await;
            outcome
        }
        Err(e) => {
            db.drop_database().await;
            panic!("connect: {e:?}");
        }
    };
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn now() -> Timestamp {
    "2026-03-02T09:15:30.123456Z".parse().expect("time")
}

fn event(n: i64) -> NewAuditEvent {
    let at = now() + chrono::Duration::seconds(n);
    let record = AuditRecord::new("pg-test", "test.event", Outcome::Ok, at);
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
async fn seed(store: &PgStore) -> CaseId {
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

async fn raw(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("raw connection")
}

async fn refused(conn: &mut PgConnection, sql: &'static str) {
    let err = sqlx::query(sql).execute(&mut *conn).await.expect_err(sql);
    assert!(err.to_string().contains("append-only"), "{sql}: {err}");
}

async fn verify(store: &PgStore) -> Result<u64, i64> {
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

const TAMPERING: [&str; 9] = [
    "UPDATE audit_events SET action = 'x' WHERE seq = 2",
    "DELETE FROM audit_events WHERE seq = 3",
    "TRUNCATE audit_events",
    "UPDATE votes SET rationale = 'changed'",
    "DELETE FROM votes",
    "TRUNCATE votes",
    "UPDATE decisions SET outcome = 'approved'",
    "DELETE FROM decisions",
    "TRUNCATE decisions",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_tables_refuse_update_delete_and_truncate_even_for_the_owner() {
    with_db(|store, url| async move {
        let case_id = seed(&store).await;
        let before = {
            let mut tx = store.begin_read().await.expect("begin_read");
            tx.case(case_id).await.expect("load").expect("case")
        };
        let mut conn = raw(&url).await;
        // This connection is the migrating user: it owns the tables.
        let owner_is_me: bool = sqlx::query_scalar(
            "SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'audit_events'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("owner");
        assert!(owner_is_me);
        for sql in TAMPERING {
            refused(&mut conn, sql).await;
        }
        // ENABLE ALWAYS: the triggers fire in replica mode as well.
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut conn)
            .await
            .expect("replica role");
        for sql in TAMPERING {
            refused(&mut conn, sql).await;
        }
        let _ = conn.close().await;

        assert_eq!(verify(&store).await, Ok(3));
        let mut tx = store.begin_read().await.expect("begin_read");
        assert_eq!(tx.case(case_id).await.expect("load"), Some(before));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trigger_names_are_stable_and_the_chain_catches_tampering() {
    with_db(|store, url| async move {
        seed(&store).await;
        let mut conn = raw(&url).await;
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, tgenabled::text FROM pg_trigger \
             WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal ORDER BY tgname",
        )
        .fetch_all(&mut conn)
        .await
        .expect("triggers");
        let always = |name: &str| (name.to_owned(), "A".to_owned());
        assert_eq!(
            triggers,
            vec![
                always("audit_events_append_only"),
                always("audit_events_no_truncate")
            ]
        );

        // Somebody with owner rights drops the trigger and edits an event:
        // the hash chain names the edited position.
        sqlx::query("DROP TRIGGER audit_events_append_only ON audit_events")
            .execute(&mut conn)
            .await
            .expect("drop trigger");
        sqlx::query(
            "UPDATE audit_events SET body = convert_to('{\"forged\":true}', 'UTF8') WHERE seq = 2",
        )
        .execute(&mut conn)
        .await
        .expect("tamper");
        let _ = conn.close().await;
        assert_eq!(verify(&store).await, Err(2));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_in_several_processes_share_one_gapless_chain() {
    with_db(|store, url| async move {
        // A second pool stands for a second service process.
        let other = PgStore::connect(&url, ORIGIN, 4)
            .await
            .expect("second store");
        let mut tasks = Vec::new();
        for n in 0..24 {
            let store = if n % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                let seq = tx.append_audit(&event(n)).await.expect("append");
                tx.commit().await.expect("commit");
                seq
            }));
        }
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.expect("task"));
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=24).collect::<Vec<_>>());
        other.close().await;
        assert_eq!(verify(&store).await, Ok(24));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_rows_are_corrupt() {
    with_db(|store, url| async move {
        let case_id = seed(&store).await;
        let mut conn = raw(&url).await;
        // A currency code without minor units passes the CHECK but is no money.
        sqlx::query("UPDATE cases SET currency = 'XXX'")
            .execute(&mut conn)
            .await
            .expect("tamper");
        let _ = conn.close().await;
        let mut tx = store.begin_read().await.expect("begin_read");
        let err = tx.case(case_id).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(
            !err.to_string().contains("XXX"),
            "no stored values in messages"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_money_is_never_float() {
    with_db(|store, url| async move {
        assert_eq!(store.backend(), "postgres");
        assert_eq!(store.audit_origin(), ORIGIN);
        seed(&store).await;
        // Connecting again (another service) finds the schema applied.
        let again = PgStore::connect(&url, ORIGIN, 2).await.expect("reconnect");
        let mut tx = again.begin().await.expect("begin");
        assert_eq!(tx.append_audit(&event(4)).await.expect("append"), 4);
        tx.commit().await.expect("commit");
        again.close().await;

        let mut conn = raw(&url).await;
        let floats: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = 'public' \
             AND data_type IN ('real', 'double precision', 'money')",
        )
        .fetch_one(&mut conn)
        .await
        .expect("column types");
        assert_eq!(floats, 0);
        let _ = conn.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on loopback: connection refused at once.
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/none", ORIGIN, 1)
        .await
        .expect_err("no server");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(err.to_string(), "the database is unavailable");
}
