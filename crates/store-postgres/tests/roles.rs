//! Least privilege at the database (issue "operations", point 4): connected
//! as each service's role, the database itself refuses what that side must
//! not do, whatever SQL the process sends. The end-to-end suites run every
//! service as its role on PostgreSQL, which proves the grants suffice.
//!
//! Each refusal is SQLSTATE 42501 (insufficient privilege or a row policy
//! violation). Each matching "allowed" row expects a *different* error, from
//! a check PostgreSQL makes only after privileges and row policies passed
//! (23502 not-null, 23503 foreign key), so the table cannot pass by refusing
//! everything.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_store_postgres::PgStore;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use sqlx::{Connection, PgConnection};

const DENIED: &str = "42501";
const NOT_NULL: &str = "23502";
const FOREIGN_KEY: &str = "23503";

/// A vote row for a case that does not exist: passes privileges and row
/// policies or not, then fails on the foreign key.
fn vote(stage: &str, side: &str) -> String {
    format!(
        "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
         rationale, file_version, content_hash, cast_at, checks) VALUES \
         (gen_random_uuid(), 0, '{stage}', 'nobody', 'nowhere', '{side}', 'approve', 'r', 1, \
         'h', now(), '[]')"
    )
}

/// One row of the [`matrix`].
fn row(
    service: &'static str,
    statement: impl Into<String>,
    expected: &'static str,
) -> (&'static str, String, &'static str) {
    (service, statement.into(), expected)
}

/// `(service, statement, expected SQLSTATE)`.
fn matrix() -> Vec<(&'static str, String, &'static str)> {
    let mut rows = side_rows();
    rows.extend(ownership_rows());
    rows.extend(trail_and_schema_rows());
    rows
}

/// Votes (S1) and limits: each side does only its own part.
fn side_rows() -> Vec<(&'static str, String, &'static str)> {
    vec![
        // S1 at the database: each side casts only its own vote.
        row("market", vote("second", "backoffice"), DENIED),
        row("market", vote("second", "market"), DENIED),
        row("market", vote("first", "backoffice"), DENIED),
        row("market", vote("first", "market"), FOREIGN_KEY),
        row("backoffice", vote("first", "market"), DENIED),
        row("backoffice", vote("second", "market"), DENIED),
        row("backoffice", vote("second", "backoffice"), FOREIGN_KEY),
        row("risk", vote("first", "market"), DENIED),
        row("audit", vote("second", "backoffice"), DENIED),
        row("admin", vote("second", "backoffice"), DENIED),
        // Limits are the risk side's proposal and the back office's decision.
        row(
            "market",
            "INSERT INTO limit_versions DEFAULT VALUES",
            DENIED,
        ),
        row(
            "market",
            "UPDATE limit_versions SET status = status",
            DENIED,
        ),
        row(
            "backoffice",
            "INSERT INTO limit_versions DEFAULT VALUES",
            DENIED,
        ),
        row(
            "risk",
            "INSERT INTO limit_versions DEFAULT VALUES",
            NOT_NULL,
        ),
    ]
}

/// Who owns which business data.
fn ownership_rows() -> Vec<(&'static str, String, &'static str)> {
    vec![
        // Borrowers and cases start in the market.
        row("backoffice", "INSERT INTO borrowers DEFAULT VALUES", DENIED),
        row("backoffice", "INSERT INTO cases DEFAULT VALUES", DENIED),
        row("market", "INSERT INTO borrowers DEFAULT VALUES", NOT_NULL),
        row("market", "UPDATE borrowers SET name = name", DENIED),
        // The audit service reads business data and writes none.
        row("audit", "INSERT INTO cases DEFAULT VALUES", DENIED),
        row("audit", "UPDATE cases SET revision = revision", DENIED),
        row("audit", "INSERT INTO decisions DEFAULT VALUES", DENIED),
        row("audit", "INSERT INTO audit_chain DEFAULT VALUES", NOT_NULL),
        // Only the admin service changes who may do what (four-eyes there).
        row(
            "market",
            "INSERT INTO role_assignments DEFAULT VALUES",
            DENIED,
        ),
        row(
            "backoffice",
            "INSERT INTO competence_grants DEFAULT VALUES",
            DENIED,
        ),
        row("risk", "UPDATE staff SET status = status", DENIED),
        row(
            "admin",
            "INSERT INTO role_assignments DEFAULT VALUES",
            NOT_NULL,
        ),
        row("admin", "INSERT INTO cases DEFAULT VALUES", DENIED),
        // Risk data belongs to risk control.
        row(
            "market",
            "INSERT INTO capital_versions DEFAULT VALUES",
            DENIED,
        ),
        row(
            "backoffice",
            "INSERT INTO liquidity_positions DEFAULT VALUES",
            DENIED,
        ),
        row(
            "risk",
            "INSERT INTO capital_versions DEFAULT VALUES",
            NOT_NULL,
        ),
    ]
}

/// Nobody changes the audit trail or the schema.
fn trail_and_schema_rows() -> Vec<(&'static str, String, &'static str)> {
    let mut rows = Vec::new();
    for service in ["market", "backoffice", "risk", "audit", "admin"] {
        for statement in [
            "UPDATE audit_entries SET actor = actor",
            "DELETE FROM audit_entries",
            "DELETE FROM audit_chain",
            "TRUNCATE audit_entries",
            "UPDATE audit_heads SET tree_size = tree_size",
            "DELETE FROM votes",
            "DELETE FROM decisions",
            "DROP TABLE votes",
            "ALTER TABLE votes DISABLE ROW LEVEL SECURITY",
            "CREATE TABLE shadow (id int)",
            "DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",
            // Derived data: only the reservations' trigger keeps it.
            "UPDATE liquidity_totals SET active_minor = 0",
            "INSERT INTO liquidity_totals VALUES (64, 0)",
        ] {
            rows.push(row(service, statement, DENIED));
        }
        rows.push(row(
            service,
            "INSERT INTO audit_entries DEFAULT VALUES",
            NOT_NULL,
        ));
    }
    rows
}

#[tokio::test]
async fn each_service_role_is_refused_at_the_database() {
    let Some(base) = pg_test_url() else { return };
    let mut db = TestDatabase::create(&base).await;
    let owner = PgStore::connect(&db.url, "creditops.test/roles", 2)
        .await
        .expect("migrate as owner");
    let urls = db.provision_roles().await;
    // Provisioning again is harmless (it runs after every migration).
    let prefix_roles = owner
        .provision_roles(&db.role_prefix())
        .await
        .expect("idempotent provisioning");
    assert_eq!(prefix_roles.len(), 5);
    owner.close().await;

    let mut failures = Vec::new();
    for (service, statement, expected) in matrix() {
        let url = &urls.iter().find(|(s, _)| *s == service).expect("role").1;
        let mut conn = PgConnection::connect(url).await.expect("connect as role");
        // Each statement in its own transaction, rolled back: nothing applies.
        let mut tx = conn.begin().await.expect("begin");
        let outcome = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await;
        let code = match &outcome {
            Ok(_) => "success".to_owned(),
            Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()).unwrap_or_default(),
            Err(e) => format!("{e}"),
        };
        if code != expected {
            failures.push(format!(
                "{service}: {statement}\n  expected {expected}, got {code} ({outcome:?})"
            ));
        }
        let _ = tx.rollback().await;
        let _ = conn.close().await;
    }
    db.drop_database().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_service_role_starts_without_migrating() {
    let Some(base) = pg_test_url() else { return };
    let mut db = TestDatabase::create(&base).await;
    let owner = PgStore::connect(&db.url, "creditops.test/roles", 2)
        .await
        .expect("migrate as owner");
    let urls = db.provision_roles().await;
    owner.close().await;
    for (service, url) in &urls {
        // Connecting runs no DDL once the schema is current: a role that
        // may not create tables connects fine.
        let store = PgStore::connect(url, "creditops.test/roles", 1)
            .await
            .unwrap_or_else(|e| panic!("{service} connects: {e}"));
        store.close().await;
    }
    db.drop_database().await;
}
