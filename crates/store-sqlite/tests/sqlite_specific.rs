//! SQLite-only behaviour: append-only triggers against raw SQL, the file
//! format, reopening, and corrupt rows.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_audit::{AuditAction, AuditRecord, ChainVerifier, Outcome};
use creditops_domain::{BorrowerId, CaseId, Money, Timestamp};
use creditops_store::contract::{seed_case, seed_risk};
use creditops_store::{AuditFilter, NewAuditEvent, Store, StoreError};
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
    let record = AuditRecord::new("sqlite-test", AuditAction::AuditQuery, Outcome::Ok, at);
    let body = record.canonical_body().expect("body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: creditops_audit::leaf_hash(&body),
        body,
        recorded_at: at,
        actor: Some("lo-1".into()),
        action: AuditAction::AuditQuery.as_str().to_owned(),
        outcome: "ok".into(),
        case_id: None,
        borrower_id: None,
    }
}

/// A case with a first vote and a decision (declined), plus three audit events.
async fn seed(store: &SqliteStore) -> CaseId {
    seed_case(store, now(), &[event(1), event(2), event(3)]).await
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
async fn a3_immutable_tables_refuse_update_and_delete() {
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
    refused(&mut conn, "UPDATE rule_sets SET parameters = '{}'").await;
    refused(&mut conn, "DELETE FROM rule_sets").await;
    // A decided proposal is final; a pending one changes only by its decision.
    refused(
        &mut conn,
        "UPDATE change_proposals SET status = 'rejected' WHERE status = 'approved'",
    )
    .await;
    refused(
        &mut conn,
        "UPDATE change_proposals SET payload = '{}' WHERE status = 'pending'",
    )
    .await;
    refused(&mut conn, "DELETE FROM change_proposals").await;
    sqlx::query(
        "UPDATE change_proposals SET status = 'rejected', decided_by = 'lo-1', \
         decided_at = '2026-03-03T00:00:00+00:00' WHERE status = 'pending'",
    )
    .execute(&mut conn)
    .await
    .expect("a pending proposal can be decided");
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
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' \
         AND tbl_name IN ('votes', 'decisions', 'rule_sets', 'change_proposals') ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("trigger names");
    assert_eq!(
        names,
        [
            "change_proposals_final",
            "change_proposals_no_delete",
            // The last line (finding 16): an approval needs its votes.
            "decisions_need_votes",
            "decisions_no_delete",
            "decisions_no_update",
            "rule_sets_no_delete",
            "rule_sets_no_update",
            "votes_no_delete",
            "votes_no_update",
        ]
    );

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
    let float_columns: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master AS t, pragma_table_info(t.name) AS c \
         WHERE t.type = 'table' AND upper(c.type) IN ('REAL', 'FLOAT', 'DOUBLE')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("column types");
    assert_eq!(float_columns, 0, "no floating-point columns");
    conn.close().await.expect("close");

    // Reopening runs the (already applied) migrations again and continues the chain.
    let store = SqliteStore::open(&path, ORIGIN).await.expect("reopen");
    let mut tx = store.begin().await.expect("begin");
    tx.append_audit(&event(4)).await.expect("append");
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

/// A database created by 0001 with data in it: 0002 rebuilds `cases` (for
/// the new status CHECK) under deferred foreign keys; votes and decisions
/// keep pointing at their cases, old rows get the documented defaults, and
/// the new status is accepted afterwards.
#[tokio::test]
async fn migrating_a_0001_database_keeps_cases_votes_and_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let (case_id, borrower_id) = write_0001_database(dir.path(), &path).await;

    let store = SqliteStore::open(&path, ORIGIN)
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

    let mut conn = raw(&path).await;
    let violations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_foreign_key_check")
        .fetch_one(&mut conn)
        .await
        .expect("foreign key check");
    assert_eq!(violations, 0);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        ["cases_borrower_id", "cases_credit_id", "cases_status_id"]
    );
    // The 0001 votes' foreign key still names `cases` and is enforced.
    let err = sqlx::query(
        "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
         rationale, file_version, content_hash, cast_at, checks) \
         VALUES ('00000000-0000-0000-0000-000000000000', 0, 'first', 'lo-1', 'm', 'market', \
         'decline', 'no', 1, 'h', 'x', '[]')",
    )
    .execute(&mut conn)
    .await
    .expect_err("dangling vote");
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    conn.close().await.expect("close");

    let mut tx = store.begin().await.expect("begin");
    let mut escalated = tx.case(case_id).await.expect("load").expect("case");
    escalated.status = creditops_domain::CaseStatus::Escalated;
    escalated.revision += 1;
    tx.update_case(&escalated, 2)
        .await
        .expect("escalated is allowed now");
    tx.commit().await.expect("commit");
    store.close().await;
}

/// A database at `path` migrated by 0001 only (copied into `dir`), holding
/// a declined case with a vote and a decision, written with raw SQL as
/// 0001 stored them.
async fn write_0001_database(dir: &Path, path: &Path) -> (CaseId, BorrowerId) {
    let only_0001 = dir.join("migrations");
    std::fs::create_dir(&only_0001).expect("mkdir");
    std::fs::write(
        only_0001.join("0001_initial.sql"),
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    )
    .expect("copy 0001");
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .connect()
        .await
        .expect("connect");
    sqlx::migrate::Migrator::new(only_0001.as_path())
        .await
        .expect("migrator")
        .run(&mut conn)
        .await
        .expect("apply 0001");

    let (case_id, borrower_id) = (CaseId::generate(), BorrowerId::generate());
    let t = "2026-03-02T09:15:30.123456+00:00";
    let decision = serde_json::json!({
        "outcome": "declined",
        "decided_at": t,
        "file_version": 1,
        "content_hash": "h",
        "votes": [],
        "checks": [],
    });
    let statements: Vec<(&str, Vec<String>)> = vec![
        (
            "INSERT INTO org_units (id, name, side) VALUES ('m', 'Market', 'market')",
            vec![],
        ),
        (
            "INSERT INTO staff (id, status) VALUES ('lo-1', 'active')",
            vec![],
        ),
        (
            "INSERT INTO borrowers (id, name, country, sector, created_by, created_at) \
             VALUES ($1, 'B', 'DE', 'G47', 'lo-1', $2)",
            vec![borrower_id.to_string(), t.into()],
        ),
        (
            "INSERT INTO cases (id, borrower_id, amount_minor, currency, product, term_months, \
             purpose, status, version, revision, originator, return_reason, created_at, \
             updated_at) VALUES ($1, $2, 123456, 'EUR', 'loan', 12, 'stock', 'declined', 1, 2, \
             'lo-1', NULL, $3, $3)",
            vec![case_id.to_string(), borrower_id.to_string(), t.into()],
        ),
        (
            "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
             rationale, file_version, content_hash, cast_at, checks) \
             VALUES ($1, 0, 'first', 'lo-1', 'm', 'market', 'decline', 'no', 1, 'h', $2, '[]')",
            vec![case_id.to_string(), t.into()],
        ),
        (
            "INSERT INTO decisions (case_id, outcome, decided_at, file_version, content_hash, \
             decision_json) VALUES ($1, 'declined', $2, 1, 'h', $3)",
            vec![case_id.to_string(), t.into(), decision.to_string()],
        ),
    ];
    for (sql, binds) in statements {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(bind);
        }
        query.execute(&mut conn).await.expect(sql);
    }
    conn.close().await.expect("close");
    (case_id, borrower_id)
}

/// The risk tables (0003): decided limit versions, capital and liquidity
/// versions, closed reservations and breaches never change; nothing is
/// deleted; only a pending version is decided, an active reservation
/// closed, an open breach resolved.
#[tokio::test]
async fn risk_tables_refuse_changes_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    let case_id = seed(&store).await;
    seed_risk(&store, now(), case_id).await;

    let mut conn = raw(&path).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN \
         ('limit_versions', 'capital_versions', 'liquidity_positions', 'reservations', \
         'breaches') ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("trigger names");
    assert_eq!(
        names,
        [
            "breaches_final",
            "breaches_no_delete",
            "capital_versions_no_delete",
            "capital_versions_no_update",
            "limit_versions_final",
            "limit_versions_no_delete",
            "liquidity_positions_no_delete",
            "liquidity_positions_no_update",
            "reservations_final",
            "reservations_no_delete",
        ]
    );
    for sql in RISK_TAMPERING {
        refused(&mut conn, sql).await;
    }
    // The CHECKs hold for raw SQL too.
    for sql in [
        "UPDATE limit_versions SET status = 'approved', decided_by = proposed_by, \
         decided_at = proposed_at WHERE status = 'pending'",
        "INSERT INTO breaches (id, subject, rule, check_name, limit_value, usage_value, \
         amount_over, severity, cause, owner, detected_at) VALUES ('x', 's', 'R3', 'c', '1', \
         '2', '1', 'within', 'c', 'o', '2026-03-03T00:00:00+00:00')",
        "UPDATE imported_balances SET amount_minor = -1",
        "UPDATE imported_balances SET amount_minor = 1.5",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
    }
    // What may change, changes.
    for sql in [
        "UPDATE limit_versions SET status = 'rejected', decided_by = 'lo-1', \
         decided_at = '2026-03-03T00:00:00+00:00' WHERE status = 'pending'",
        "UPDATE reservations SET status = 'expired', closed_at = '2026-03-03T00:00:00+00:00' \
         WHERE status = 'active'",
        "UPDATE breaches SET resolved_at = '2026-03-03T00:00:00+00:00' \
         WHERE resolved_at IS NULL",
        "UPDATE imported_balances SET amount_minor = 5",
    ] {
        let done = sqlx::query(sql).execute(&mut conn).await.expect(sql);
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }
    conn.close().await.expect("close");
    assert_eq!(verify(&store).await, Ok(3));
}

const RISK_TAMPERING: [&str; 16] = [
    "UPDATE limit_versions SET amount_minor = 1 WHERE status = 'approved'",
    "UPDATE limit_versions SET status = 'rejected' WHERE status = 'approved'",
    "UPDATE limit_versions SET amount_minor = 1 WHERE status = 'pending'",
    "DELETE FROM limit_versions",
    "UPDATE capital_versions SET tier1_minor = 1",
    "DELETE FROM capital_versions",
    "UPDATE liquidity_positions SET floor_percent = '100'",
    "DELETE FROM liquidity_positions",
    "UPDATE reservations SET status = 'active', closed_at = NULL, closed_by = NULL \
     WHERE status = 'consumed'",
    "UPDATE reservations SET amount_minor = 1 WHERE status = 'active'",
    "DELETE FROM reservations",
    "UPDATE breaches SET resolved_at = NULL WHERE resolved_at IS NOT NULL",
    "UPDATE breaches SET resolved_at = '2030-01-01T00:00:00+00:00' \
     WHERE resolved_at IS NOT NULL",
    "UPDATE breaches SET severity = 'soft' WHERE resolved_at IS NULL",
    "DELETE FROM breaches WHERE resolved_at IS NOT NULL",
    "DELETE FROM breaches",
];

/// A person with one unit, role and competence level from the start of 2026.
async fn seed_person(store: &SqliteStore) -> creditops_domain::StaffMember {
    use creditops_domain::{
        CompetenceGrant, Role, RoleAssignment, Side, StaffId, StaffMember, StaffStatus,
        UnitAssignment, UnitId,
    };
    let from: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
    let unit = UnitId::parse("mkt").expect("unit");
    let member = StaffMember {
        id: StaffId::parse("p-1").expect("id"),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: unit.clone(),
            side: Side::Market,
            valid_from: from,
            valid_to: None,
        }],
        roles: vec![RoleAssignment {
            role: Role::LoanOfficer,
            valid_from: from,
            valid_to: None,
        }],
        competences: vec![CompetenceGrant {
            side: Side::Market,
            level: 2,
            valid_from: from,
            valid_to: None,
        }],
    };
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit, "Market", Side::Market)
        .await
        .expect("unit");
    tx.insert_staff(&member).await.expect("person");
    tx.commit().await.expect("commit");
    member
}

/// Staff lifecycle (S4): an entry of a person's dated history is only ever
/// ended (its `valid_to` set or moved earlier), never rewritten or deleted.
#[tokio::test]
async fn staff_history_entries_may_only_be_ended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    let member = seed_person(&store).await;
    let end = chrono::Utc::now();
    let mut tx = store.begin().await.expect("begin");
    for history in [
        creditops_domain::History::Roles,
        creditops_domain::History::Units,
    ] {
        for cut in member.cuts_at(history, end) {
            tx.cut_history(&member.id, &cut).await.expect("cut");
        }
    }
    tx.commit().await.expect("commit");
    let ended = store
        .staff_member(&member.id)
        .await
        .expect("read")
        .expect("person");
    assert!(ended.roles[0].valid_to.is_some() && ended.units[0].valid_to.is_some());
    assert_eq!(ended.competences[0].valid_to, None);

    let mut conn = raw(&path).await;
    for sql in [
        "UPDATE role_assignments SET role = 'user_admin'",
        "UPDATE role_assignments SET valid_to = NULL",
        "UPDATE role_assignments SET valid_to = '2099-01-01T00:00:00+00:00'",
        "UPDATE role_assignments SET valid_from = '2020-01-01T00:00:00+00:00'",
        "UPDATE unit_assignments SET side = 'backoffice'",
        "UPDATE competence_grants SET level = 4",
        "UPDATE competence_grants SET valid_to = '2025-01-01T00:00:00+00:00'",
        "DELETE FROM role_assignments",
        "DELETE FROM unit_assignments",
        "DELETE FROM competence_grants",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
        assert!(
            err.to_string().contains("may only be ended"),
            "{sql}: {err}"
        );
    }
    store.close().await;
}

/// A log written before SQLite kept the tree's nodes (the migration cannot
/// compute them: no SHA-256 in SQL) gets them when the store opens, and the
/// next event completes nodes on top of them.
#[tokio::test]
async fn a2_a_log_without_tree_nodes_gets_them_when_the_store_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("creditops.db");
    let store = SqliteStore::open(&path, ORIGIN).await.expect("open");
    let mut tx = store.begin().await.expect("begin");
    for n in 1..=11 {
        tx.append_audit(&event(n)).await.expect("append");
    }
    tx.commit().await.expect("commit");
    let positions: Vec<(u8, u64)> = vec![(1, 0), (1, 4), (2, 1), (3, 0), (1, 5)];
    let read = |store: &SqliteStore| {
        let store = store.clone();
        let positions = positions.clone();
        async move {
            let mut tx = store.begin_read().await.expect("read");
            tx.audit_nodes(&positions).await.expect("nodes")
        }
    };
    let before = read(&store).await;
    assert!(before[..4].iter().all(Option::is_some), "{before:?}");
    assert_eq!(before[4], None, "leaves 10 and 11 are not both there yet");
    store.close().await;

    // As if the events predated the table.
    let mut conn = raw(&path).await;
    for statement in [
        "DROP TRIGGER audit_tree_no_delete",
        "DELETE FROM audit_tree",
    ] {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    conn.close().await.expect("close");

    let store = SqliteStore::open(&path, ORIGIN).await.expect("reopen");
    assert_eq!(read(&store).await, before);
    let mut tx = store.begin().await.expect("begin");
    tx.append_audit(&event(12)).await.expect("append on top");
    tx.commit().await.expect("commit");
    let after = read(&store).await;
    assert_eq!(after[..4], before[..4]);
    assert!(
        after[4].is_some(),
        "the twelfth leaf completes the node over 10 and 11"
    );
    assert_eq!(verify(&store).await, Ok(12));
}
