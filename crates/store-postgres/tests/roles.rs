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

/// A limit version with `status`, decided by `decider` (SQL), proposed by
/// nobody known.
fn limit_version(status: &str, decider: &str) -> String {
    let decided_at = if decider == "NULL" { "NULL" } else { "now()" };
    format!(
        "INSERT INTO limit_versions (id, subject_kind, subject_key, version, amount_minor, \
         tolerance_percent, reason, proposed_by, proposed_at, status, decided_by, decided_at) \
         VALUES (gen_random_uuid(), 'sector', 'C', 1, 100, '0', 'r', 'nobody', now(), \
         '{status}', {decider}, {decided_at})"
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
        // Risk control proposes (a pending row passes, then fails on its
        // unknown proposer); it decides nothing (R8, finding 16).
        row("risk", limit_version("pending", "NULL"), FOREIGN_KEY),
        row("risk", limit_version("approved", "'nobody'"), DENIED),
        row("risk", "UPDATE limit_versions SET status = status", DENIED),
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

// Finding 16 of the hardening issue: the database as the last line ------------------

const CASE: &str = "00000000-0000-4000-8000-00000000000c";
const BORROWER: &str = "00000000-0000-4000-8000-00000000000b";
const LIMIT: &str = "00000000-0000-4000-8000-00000000001a";
/// A role-assignment proposal for `lo`, approved in an earlier transaction.
const SPENT: &str = "00000000-0000-4000-8000-0000000000a0";
/// Pending proposals: a role and a grant for `lo`, a role for `ba`, a rule set.
const ROLE: &str = "00000000-0000-4000-8000-0000000000a1";
const GRANT: &str = "00000000-0000-4000-8000-0000000000a2";
const ROLE_OF_BA: &str = "00000000-0000-4000-8000-0000000000a3";
const RULES: &str = "00000000-0000-4000-8000-0000000000a4";

/// A migrated database with the service roles and, written by the owner: a
/// market unit (`lo`, `lo2`), a back-office unit (`ba`), risk control
/// (`rc`) and administration (`ua1`, `ua2`); a case awaiting its second vote
/// with an approving first vote by `lo`; a pending limit; and proposals.
struct Fixture {
    db: TestDatabase,
    owner: String,
    urls: Vec<(&'static str, String)>,
}

impl Fixture {
    async fn create() -> Option<Fixture> {
        let base = pg_test_url()?;
        let mut db = TestDatabase::create(&base).await;
        let owner = PgStore::connect(&db.url, "creditops.test/roles", 2)
            .await
            .expect("migrate as owner");
        owner.close().await;
        let urls = db.provision_roles().await;
        let fixture = Fixture {
            owner: db.url.clone(),
            db,
            urls,
        };
        let seeded = fixture.run_as(None, &Self::seed_statements()).await;
        assert_eq!(seeded, "success", "seeding the fixture");
        Some(fixture)
    }

    fn seed_statements() -> Vec<String> {
        let payload =
            |kind: &str, staff: &str| format!(r#"{{"kind": "{kind}", "staff_id": "{staff}"}}"#);
        vec![
            "INSERT INTO org_units VALUES ('mkt', 'Market', 'market'), \
             ('bo', 'Back office', 'backoffice'), ('rsk', 'Risk', 'risk'), \
             ('adm', 'Administration', 'admin')"
                .into(),
            "INSERT INTO staff VALUES ('lo', 'active'), ('lo2', 'active'), ('ba', 'active'), \
             ('rc', 'active'), ('ua1', 'active'), ('ua2', 'active')"
                .into(),
            "INSERT INTO unit_assignments (staff_id, position, unit_id, side, valid_from) VALUES \
             ('lo', 0, 'mkt', 'market', '2000-01-01'), ('lo2', 0, 'mkt', 'market', '2000-01-01'), \
             ('ba', 0, 'bo', 'backoffice', '2000-01-01'), ('rc', 0, 'rsk', 'risk', '2000-01-01'), \
             ('ua1', 0, 'adm', 'admin', '2000-01-01'), ('ua2', 0, 'adm', 'admin', '2000-01-01')"
                .into(),
            format!(
                "INSERT INTO borrowers (id, name, country, sector, created_by, created_at) \
                 VALUES ('{BORROWER}', 'Beispiel GmbH', 'DE', 'C', 'lo', now())"
            ),
            format!(
                "INSERT INTO cases (id, borrower_id, amount_minor, currency, product, \
                 term_months, purpose, status, version, revision, originator, created_at, \
                 updated_at) VALUES ('{CASE}', '{BORROWER}', 100000, 'EUR', 'term_loan', 12, \
                 'machines', 'awaiting_second_vote', 1, 2, 'lo2', now(), now())"
            ),
            vote_row(1, "first", "lo", "mkt", "market"),
            format!(
                "INSERT INTO limit_versions (id, subject_kind, subject_key, version, \
                 amount_minor, tolerance_percent, reason, proposed_by, proposed_at, status) \
                 VALUES ('{LIMIT}', 'sector', 'C', 1, 100, '0', 'r', 'rc', now(), 'pending')"
            ),
            format!(
                "INSERT INTO change_proposals (id, kind, payload, proposed_by, proposed_at, \
                 status, decided_by, decided_at) VALUES \
                 ('{SPENT}', 'role_assignment', '{}', 'ua1', now(), 'approved', 'ua2', now()), \
                 ('{ROLE}', 'role_assignment', '{}', 'ua1', now(), 'pending', NULL, NULL), \
                 ('{GRANT}', 'competence_grant', '{}', 'ua1', now(), 'pending', NULL, NULL), \
                 ('{ROLE_OF_BA}', 'role_assignment', '{}', 'ua1', now(), 'pending', NULL, NULL), \
                 ('{RULES}', 'rule_set', '{{\"kind\": \"rule_set\"}}', 'ua1', now(), 'pending', \
                 NULL, NULL)",
                payload("role_assignment", "lo"),
                payload("role_assignment", "lo"),
                payload("competence_grant", "lo"),
                payload("role_assignment", "ba"),
            ),
        ]
    }

    /// Runs `statements` in one transaction as `service`'s role (the owner
    /// for `None`), checks the deferred constraints, and commits (owner) or
    /// rolls back (roles, so each check starts from the fixture). Returns
    /// "success" or the SQLSTATE of the first failure.
    async fn run_as(&self, service: Option<&str>, statements: &[String]) -> String {
        let url = match service {
            None => &self.owner,
            Some(service) => {
                &self
                    .urls
                    .iter()
                    .find(|(s, _)| *s == service)
                    .expect("role")
                    .1
            }
        };
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let mut tx = conn.begin().await.expect("begin");
        let mut outcome = "success".to_owned();
        let check = "SET CONSTRAINTS ALL IMMEDIATE".to_owned();
        for statement in statements.iter().chain([&check]) {
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut *tx)
                .await
            {
                outcome = match &e {
                    sqlx::Error::Database(db) => {
                        db.code().map(|c| c.into_owned()).unwrap_or_default()
                    }
                    e => format!("{e}"),
                };
                break;
            }
        }
        if service.is_none() && outcome == "success" {
            tx.commit().await.expect("commit");
        } else {
            let _ = tx.rollback().await;
        }
        let _ = conn.close().await;
        outcome
    }

    /// Runs each `(service, statements, expected)` and drops the database;
    /// fails listing every row that came out otherwise.
    async fn expect(self, rows: Vec<(Option<&str>, Vec<String>, &str)>) {
        let mut failures = Vec::new();
        for (service, statements, expected) in rows {
            let got = self.run_as(service, &statements).await;
            if got != expected {
                failures.push(format!(
                    "{}: {statements:?}\n  expected {expected}, got {got}",
                    service.unwrap_or("owner")
                ));
            }
        }
        self.db.drop_database().await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// An approving vote on the fixture's case.
fn vote_row(ordinal: i32, stage: &str, voter: &str, unit: &str, side: &str) -> String {
    format!(
        "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
         rationale, file_version, content_hash, cast_at, checks) VALUES ('{CASE}', {ordinal}, \
         '{stage}', '{voter}', '{unit}', '{side}', 'approve', 'r', 1, 'h', now(), '[]')"
    )
}

/// The fixture case's decision with `outcome` on file version 1.
fn decision(outcome: &str) -> String {
    format!(
        "INSERT INTO decisions (case_id, outcome, decided_at, file_version, content_hash, \
         decision_json) VALUES ('{CASE}', '{outcome}', now(), 1, 'h', '{{}}')"
    )
}

fn approve_case() -> String {
    format!("UPDATE cases SET status = 'approved', revision = 3 WHERE id = '{CASE}'")
}

#[tokio::test]
async fn finding_16_market_cannot_insert_an_approved_decision() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    fixture
        .expect(vec![
            (Some("market"), vec![decision("approved")], DENIED),
            // Market still declines alone.
            (Some("market"), vec![decision("declined")], "success"),
        ])
        .await;
}

#[tokio::test]
async fn finding_16_market_cannot_set_a_case_approved() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    let edit = format!(
        "UPDATE cases SET purpose = 'new machines', version = 2, revision = 3 WHERE id = '{CASE}'"
    );
    fixture
        .expect(vec![
            (Some("market"), vec![approve_case()], DENIED),
            (
                Some("market"),
                vec![approve_case(), decision("approved")],
                DENIED,
            ),
            // Market still edits its files.
            (Some("market"), vec![edit], "success"),
        ])
        .await;
}

#[tokio::test]
async fn finding_16_an_approved_decision_needs_two_proper_votes() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    let proper = vote_row(2, "second", "ba", "bo", "backoffice");
    fixture
        .expect(vec![
            // Only the first vote: refused for every role, the owner too.
            (
                Some("backoffice"),
                vec![approve_case(), decision("approved")],
                DENIED,
            ),
            (None, vec![approve_case(), decision("approved")], DENIED),
            // A market member's second vote calling itself back office (S4).
            (
                Some("backoffice"),
                vec![
                    vote_row(2, "second", "lo2", "bo", "backoffice"),
                    approve_case(),
                    decision("approved"),
                ],
                DENIED,
            ),
            // The first voter votes again as back office: not another person.
            (
                Some("backoffice"),
                vec![
                    vote_row(2, "second", "lo", "bo", "backoffice"),
                    approve_case(),
                    decision("approved"),
                ],
                DENIED,
            ),
            // Votes on an earlier file version are void (V3).
            (
                Some("backoffice"),
                vec![
                    proper.clone(),
                    format!("UPDATE cases SET version = 2, revision = 3 WHERE id = '{CASE}'"),
                    format!(
                        "INSERT INTO decisions (case_id, outcome, decided_at, file_version, \
                         content_hash, decision_json) VALUES ('{CASE}', 'approved', now(), 2, \
                         'h', '{{}}')"
                    ),
                ],
                DENIED,
            ),
            // Two proper votes: the approval stands.
            (
                Some("backoffice"),
                vec![proper, approve_case(), decision("approved")],
                "success",
            ),
        ])
        .await;
}

#[tokio::test]
async fn finding_16_admin_needs_an_approved_proposal_for_roles_grants_and_rule_sets() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    // A row policy hides the rows a role may not update: an approval that
    // reaches no row is refused here as the database refused it.
    let approve = |id: &str| {
        format!(
            "DO $$ BEGIN UPDATE change_proposals SET status = 'approved', \
             decided_by = 'ua2', decided_at = now() WHERE id = '{id}'; \
             IF NOT FOUND THEN RAISE EXCEPTION 'no row' USING ERRCODE = '42501'; END IF; \
             END $$"
        )
    };
    let proposal = |id: Option<&str>| id.map_or("NULL".to_owned(), |id| format!("'{id}'"));
    let role = |id: Option<&str>| {
        format!(
            "INSERT INTO role_assignments (staff_id, position, role, valid_from, proposal_id) \
             VALUES ('lo', 5, 'loan_officer', now(), {})",
            proposal(id)
        )
    };
    let grant = |id: Option<&str>| {
        format!(
            "INSERT INTO competence_grants (staff_id, position, side, level, valid_from, \
             proposal_id) VALUES ('lo', 5, 'market', 2, now(), {})",
            proposal(id)
        )
    };
    let rules = |id: Option<&str>| {
        format!(
            "INSERT INTO rule_sets (version, valid_from, parameters, proposal_id) \
             VALUES (7, now(), '{{}}', {})",
            proposal(id)
        )
    };
    let admin = Some("admin");
    fixture
        .expect(vec![
            // No proposal, a pending one, or one approved in an earlier
            // transaction (an approval is not replayed).
            (admin, vec![role(None)], DENIED),
            (admin, vec![role(Some(ROLE))], DENIED),
            (admin, vec![role(Some(SPENT))], DENIED),
            (admin, vec![grant(None)], DENIED),
            (admin, vec![grant(Some(GRANT))], DENIED),
            (admin, vec![rules(None)], DENIED),
            (admin, vec![rules(Some(RULES))], DENIED),
            // An approved proposal of another kind or for another person.
            (admin, vec![approve(RULES), role(Some(RULES))], DENIED),
            (admin, vec![approve(ROLE), rules(Some(ROLE))], DENIED),
            (
                admin,
                vec![approve(ROLE_OF_BA), role(Some(ROLE_OF_BA))],
                DENIED,
            ),
            // Applied in the transaction that approves the proposal: stored.
            (admin, vec![role(Some(ROLE)), approve(ROLE)], "success"),
            (admin, vec![grant(Some(GRANT)), approve(GRANT)], "success"),
            (admin, vec![rules(Some(RULES)), approve(RULES)], "success"),
            // The owner's bootstrap (migrations, the first staff import, the
            // dev seed) needs no proposal.
            (None, vec![role(None), grant(None), rules(None)], "success"),
        ])
        .await;
}

#[tokio::test]
async fn finding_16_risk_cannot_write_limit_approvals() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    let decide = |status: &str| {
        format!(
            "UPDATE limit_versions SET status = '{status}', decided_by = 'ba', \
             decided_at = now() WHERE id = '{LIMIT}'"
        )
    };
    let propose = |status: &str, decider: &str| {
        let decided_at = if decider == "NULL" { "NULL" } else { "now()" };
        format!(
            "INSERT INTO limit_versions (id, subject_kind, subject_key, version, \
             amount_minor, tolerance_percent, reason, proposed_by, proposed_at, status, \
             decided_by, decided_at) VALUES (gen_random_uuid(), 'sector', 'C', 2, 100, '0', \
             'r', 'rc', now(), '{status}', {decider}, {decided_at})"
        )
    };
    fixture
        .expect(vec![
            (Some("risk"), vec![decide("approved")], DENIED),
            (Some("risk"), vec![decide("rejected")], DENIED),
            (Some("risk"), vec![propose("approved", "'ba'")], DENIED),
            // Risk control still proposes; back office decides (R8).
            (Some("risk"), vec![propose("pending", "NULL")], "success"),
            (Some("backoffice"), vec![decide("approved")], "success"),
        ])
        .await;
}

/// The control of the two market refusals above: where a four-eyes rule set
/// opened the single-vote lane (V8), one market vote still decides.
#[tokio::test]
async fn finding_16_the_single_vote_lane_stays_open_where_a_rule_set_opened_it() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    let lane = "INSERT INTO rule_sets (version, valid_from, parameters) VALUES \
                (1, '2000-01-01', '{\"single_vote_below\": \"300000\"}')";
    assert_eq!(fixture.run_as(None, &[lane.to_owned()]).await, "success");
    fixture
        .expect(vec![(
            Some("market"),
            vec![approve_case(), decision("approved")],
            "success",
        )])
        .await;
}

/// Each desk writes only its own proposals (S9, V4, R3, R6): back office
/// cannot propose or approve a change of the directory, risk control none
/// of group membership, and no desk inserts a proposal already approved.
#[tokio::test]
async fn finding_16_each_desk_writes_only_its_own_proposals() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    let propose = |kind: &str, status: &str| {
        let decided = if status == "pending" {
            "NULL, NULL"
        } else {
            "'ua2', now()"
        };
        format!(
            "INSERT INTO change_proposals (id, kind, payload, proposed_by, proposed_at, \
             status, decided_by, decided_at) VALUES (gen_random_uuid(), '{kind}', '{{}}', \
             'ua1', now(), '{status}', {decided})"
        )
    };
    // A row policy hides the rows a role may not update: an approval that
    // reaches no row is refused here as the database refused it.
    let approve = |id: &str| {
        format!(
            "DO $$ BEGIN UPDATE change_proposals SET status = 'approved', \
             decided_by = 'ua2', decided_at = now() WHERE id = '{id}'; \
             IF NOT FOUND THEN RAISE EXCEPTION 'no row' USING ERRCODE = '42501'; END IF; \
             END $$"
        )
    };
    fixture
        .expect(vec![
            (
                Some("backoffice"),
                vec![propose("role_assignment", "pending")],
                DENIED,
            ),
            (Some("backoffice"), vec![approve(ROLE)], DENIED),
            (
                Some("risk"),
                vec![propose("group_membership", "pending")],
                DENIED,
            ),
            (
                Some("admin"),
                vec![propose("tier1_capital", "pending")],
                DENIED,
            ),
            (
                Some("admin"),
                vec![propose("role_assignment", "approved")],
                DENIED,
            ),
            (
                Some("backoffice"),
                vec![propose("group_membership", "approved")],
                DENIED,
            ),
            // What each desk still does.
            (
                Some("backoffice"),
                vec![propose("group_membership", "pending")],
                "success",
            ),
            (
                Some("risk"),
                vec![propose("liquidity_position", "pending")],
                "success",
            ),
            (
                Some("admin"),
                vec![propose("role_assignment", "pending")],
                "success",
            ),
            (Some("admin"), vec![approve(ROLE)], "success"),
        ])
        .await;
}

/// L3 at the database: market registers collateral and records its own
/// valuations (never a back-office one, never a confirmation); back office
/// records effective valuations, confirms market proposals and checks legal
/// validity; risk control writes no collateral at all.
#[tokio::test]
async fn l3_each_side_writes_only_its_own_collateral_rows() {
    let Some(fixture) = Fixture::create().await else {
        return;
    };
    const ITEM: &str = "00000000-0000-7000-8000-00000000c011";
    const PROPOSAL: &str = "00000000-0000-7000-8000-00000000c012";
    let item = format!(
        "INSERT INTO collateral (id, borrower_id, kind, nominal_minor, currency, description, \
         status, registered_by, registered_at) VALUES ('{ITEM}', '{BORROWER}', 'guarantee', \
         100000, 'EUR', 'Bürgschaft', 'active', 'lo', now())"
    );
    let seeded = fixture
        .run_as(
            None,
            &[
                item.clone(),
                format!(
                    "INSERT INTO collateral_valuations (id, collateral_id, value_minor, currency, \
                     valuation_date, valuer, method, side, status, recorded_by, recorded_at) \
                     VALUES ('{PROPOSAL}', '{ITEM}', 100000, 'EUR', '2026-01-01', 'v', 'm', \
                     'market', 'proposed', 'lo', now())"
                ),
            ],
        )
        .await;
    assert_eq!(seeded, "success");
    let valuation = |side: &str, status: &str, by: &str, confirmed: &str| {
        format!(
            "INSERT INTO collateral_valuations (id, collateral_id, value_minor, currency, \
             valuation_date, valuer, method, side, status, recorded_by, recorded_at, \
             confirmed_by, confirmed_at) VALUES (gen_random_uuid(), '{ITEM}', 100000, 'EUR', \
             '2026-01-01', 'v', 'm', '{side}', '{status}', '{by}', now(), {confirmed}, \
             {})",
            if confirmed == "NULL" { "NULL" } else { "now()" }
        )
    };
    let confirm = format!(
        "UPDATE collateral_valuations SET status = 'effective', confirmed_by = 'ba', \
         confirmed_at = now() WHERE id = '{PROPOSAL}'"
    );
    let legal = format!(
        "INSERT INTO collateral_legal_checks (id, collateral_id, result, note, checked_by, \
         checked_at) VALUES (gen_random_uuid(), '{ITEM}', 'valid', 'n', 'ba', now())"
    );
    let second_item = item.replace(ITEM, "00000000-0000-7000-8000-00000000c013");
    fixture
        .expect(vec![
            (Some("market"), vec![second_item.clone()], "success"),
            (
                Some("market"),
                vec![valuation("market", "proposed", "lo", "NULL")],
                "success",
            ),
            (
                Some("market"),
                vec![valuation("market", "effective", "lo", "NULL")],
                "success",
            ),
            (
                Some("market"),
                vec![valuation("backoffice", "effective", "lo", "NULL")],
                DENIED,
            ),
            (
                Some("market"),
                vec![valuation("market", "effective", "lo", "'lo'")],
                DENIED,
            ),
            (Some("market"), vec![confirm.clone()], DENIED),
            (Some("market"), vec![legal.clone()], DENIED),
            (
                Some("backoffice"),
                vec![valuation("backoffice", "effective", "ba", "NULL")],
                "success",
            ),
            (
                Some("backoffice"),
                vec![valuation("backoffice", "proposed", "ba", "NULL")],
                DENIED,
            ),
            (
                Some("backoffice"),
                vec![valuation("market", "effective", "ba", "NULL")],
                DENIED,
            ),
            (Some("backoffice"), vec![confirm], "success"),
            (Some("backoffice"), vec![legal.clone()], "success"),
            (Some("backoffice"), vec![second_item.clone()], DENIED),
            (Some("risk"), vec![second_item], DENIED),
            (
                Some("risk"),
                vec![valuation("backoffice", "effective", "rc", "NULL")],
                DENIED,
            ),
            (Some("risk"), vec![legal], DENIED),
        ])
        .await;
}
