//! The contract every [`Store`] implementation must pass, as plain async
//! functions plus a macro that turns them into `#[tokio::test]`s.
//!
//! A backend's `tests/` directory invokes the macro with an async factory
//! expression that yields a fresh, empty, migrated store opened with
//! [`CONTRACT_ORIGIN`] as its audit origin:
//!
//! ```ignore
//! async fn fresh_store() -> TestStore {
//!     let dir = tempfile::tempdir().expect("tempdir");
//!     let store = SqliteStore::open(&dir.path().join("t.db"), CONTRACT_ORIGIN).await.expect("open");
//!     TestStore::new(Arc::new(store)).keep_alive(dir)
//! }
//! creditops_store::store_contract_tests!(fresh_store());
//! ```
//!
//! The factory may yield a [`TestStore`] (with things to keep alive and an
//! async cleanup, e.g. dropping a PostgreSQL test database), an
//! `Option<TestStore>` (`None` skips the test, e.g. no PostgreSQL configured)
//! or a bare `Arc<dyn Store>`. The invoking crate needs `tokio` (with the
//! `macros` and `rt-multi-thread` features) as a (dev-)dependency.
//!
//! After a method returned an error, the transaction is dropped: in
//! PostgreSQL a failed statement aborts the whole transaction.

// Test support: a panic is a failed test, with the message saying which step.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::{
    AuditFilter, Borrower, IdempotencyScope, NewAuditEvent, Store, StoreError, StoredAuditEvent,
    StoredResponse,
};
use creditops_audit::{AuditRecord, ChainVerifier, Outcome, VerifyReport};
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseStatus, CreditCase, DecisionOutcome, Money, Role,
    RoleAssignment, Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId,
    VoteDecision, Voter,
};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The audit origin a factory must open its store with.
pub const CONTRACT_ORIGIN: &str = "creditops.test/contract";

type Cleanup = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A fresh store for one contract test, with what must outlive the test.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    keep_alive: Vec<Box<dyn Any + Send>>,
    cleanup: Option<Cleanup>,
}

impl TestStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            keep_alive: Vec::new(),
            cleanup: None,
        }
    }

    /// Keeps `value` (e.g. a temporary directory) alive until after the test.
    pub fn keep_alive(mut self, value: impl Any + Send) -> Self {
        self.keep_alive.push(Box::new(value));
        self
    }

    /// Runs `cleanup` after the test, also when it failed.
    pub fn on_cleanup(mut self, cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cleanup = Some(Box::pin(cleanup));
        self
    }
}

/// What a factory may yield; `None` skips the test.
pub trait IntoTestStore {
    fn into_test_store(self) -> Option<TestStore>;
}

impl IntoTestStore for TestStore {
    fn into_test_store(self) -> Option<TestStore> {
        Some(self)
    }
}

impl IntoTestStore for Option<TestStore> {
    fn into_test_store(self) -> Option<TestStore> {
        self
    }
}

impl IntoTestStore for Arc<dyn Store> {
    fn into_test_store(self) -> Option<TestStore> {
        Some(TestStore::new(self))
    }
}

/// Runs one contract test against the store `factory` yields, then the
/// store's cleanup (also after a failure), then re-raises a failure.
pub async fn run<Fac, S, T, F>(factory: Fac, test: T)
where
    Fac: Future<Output = S>,
    S: IntoTestStore,
    T: FnOnce(Arc<dyn Store>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let Some(TestStore {
        store,
        keep_alive,
        cleanup,
    }) = factory.await.into_test_store()
    else {
        return;
    };
    let outcome = tokio::spawn(test(store)).await;
    if let Some(cleanup) = cleanup {
        cleanup.await;
    }
    drop(keep_alive);
    if let Err(failure) = outcome {
        match failure.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(failure) => panic!("contract test did not finish: {failure}"),
        }
    }
}

/// Expands to one `#[tokio::test]` per contract function. `$factory` is an
/// expression evaluated afresh for every test; it must be a future yielding
/// something [`IntoTestStore`].
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::store_contract_tests!(@each ($factory)
            backend_answers_ping
            staff_round_trip_keeps_dated_history
            upsert_unit_updates_name_and_side
            duplicate_staff_is_a_conflict
            staff_with_unknown_unit_is_refused
            staff_status_changes
            borrower_round_trip
            case_round_trip_keeps_exact_amounts
            votes_and_decision_round_trip
            first_vote_decline_decides_in_one_update
            stale_revision_is_a_conflict
            update_case_requires_a_new_revision
            cases_by_status_pages_by_id
            idempotency_round_trip_and_duplicate
            audit_append_links_a_verifiable_chain
            audit_filters_narrow_and_page
            rollback_is_fail_closed
            read_transactions_refuse_writes
            reads_run_while_a_writer_is_open
            concurrent_appends_get_a_gapless_chain
            timestamps_are_kept_to_the_microsecond
        );
    };
    (@each ($factory:expr) $($test:ident)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $crate::contract::run($factory, $crate::contract::$test).await;
            }
        )+
    };
}

// -- fixtures -----------------------------------------------------------------

/// A fixed instant with microseconds (the precision both backends keep).
fn base_time() -> Timestamp {
    "2026-03-02T09:15:30.123456Z".parse().expect("base time")
}

fn at(seconds: i64) -> Timestamp {
    base_time() + chrono::Duration::seconds(seconds)
}

fn day(n: i64) -> Timestamp {
    at(n * 86_400)
}

fn staff_id(s: &str) -> StaffId {
    StaffId::parse(s).expect("staff id")
}

fn unit_id(s: &str) -> UnitId {
    UnitId::parse(s).expect("unit id")
}

const MARKET_UNIT: &str = "market-corporate";
const BACKOFFICE_UNIT: &str = "backoffice-credit";
const LOAN_OFFICER: &str = "lo-1";
const ANALYST: &str = "ca-1";

fn member(id: &str, unit: &str, side: Side, role: Role) -> StaffMember {
    StaffMember {
        id: staff_id(id),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: unit_id(unit),
            side,
            valid_from: day(-30),
            valid_to: None,
        }],
        roles: vec![RoleAssignment {
            role,
            valid_from: day(-30),
            valid_to: None,
        }],
    }
}

/// Two units and two people: a loan officer (market) and an analyst (back office).
async fn seed_org(store: &dyn Store) {
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit_id(MARKET_UNIT), "Corporate Banking", Side::Market)
        .await
        .expect("market unit");
    tx.upsert_unit(
        &unit_id(BACKOFFICE_UNIT),
        "Credit Back Office",
        Side::Backoffice,
    )
    .await
    .expect("back-office unit");
    tx.insert_staff(&member(
        LOAN_OFFICER,
        MARKET_UNIT,
        Side::Market,
        Role::LoanOfficer,
    ))
    .await
    .expect("loan officer");
    tx.insert_staff(&member(
        ANALYST,
        BACKOFFICE_UNIT,
        Side::Backoffice,
        Role::CreditAnalyst,
    ))
    .await
    .expect("analyst");
    tx.commit().await.expect("commit org");
}

fn borrower(name: &str) -> Borrower {
    Borrower {
        id: BorrowerId::generate(),
        name: name.to_owned(),
        country: "DE".to_owned(),
        sector: "manufacturing".to_owned(),
        created_by: staff_id(LOAN_OFFICER),
        created_at: at(0),
    }
}

async fn insert_borrower(store: &dyn Store) -> BorrowerId {
    let b = borrower("Beispiel Maschinenbau GmbH");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert borrower");
    tx.commit().await.expect("commit borrower");
    b.id
}

fn new_case(borrower_id: BorrowerId, amount: &str, currency: &str) -> CreditCase {
    let money = Money::parse(amount, currency).expect("amount");
    let file = CaseFile::new(borrower_id, money, "term_loan", 60, "new production line")
        .expect("case file");
    CreditCase::open(CaseId::generate(), file, staff_id(LOAN_OFFICER), at(10))
}

async fn insert_case(store: &dyn Store, case: &CreditCase) {
    let mut tx = store.begin().await.expect("begin");
    tx.insert_case(case).await.expect("insert case");
    tx.commit().await.expect("commit case");
}

async fn load_case(store: &dyn Store, id: CaseId) -> CreditCase {
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.case(id).await.expect("load case").expect("case exists")
}

/// Saves `case` (changed from `expected_revision`) in its own transaction.
async fn save_case(store: &dyn Store, case: &CreditCase, expected_revision: i64) {
    let mut tx = store.begin().await.expect("begin");
    tx.update_case(case, expected_revision)
        .await
        .expect("update case");
    tx.commit().await.expect("commit update");
}

async fn voter(store: &dyn Store, id: &str, when: Timestamp) -> Voter {
    let mut tx = store.begin_read().await.expect("begin_read");
    let person = tx
        .staff_member(&staff_id(id))
        .await
        .expect("load staff")
        .expect("staff exists");
    person.voter_at(when).expect("voter has a unit")
}

fn audit_event(
    action: &str,
    outcome: Outcome,
    actor: Option<&str>,
    case_id: Option<CaseId>,
    borrower_id: Option<BorrowerId>,
    recorded_at: Timestamp,
) -> NewAuditEvent {
    let mut record = AuditRecord::new("contract-test", action, outcome, recorded_at);
    record.actor = actor.map(str::to_owned);
    record.case_id = case_id.map(|id| id.to_string());
    record.borrower_id = borrower_id.map(|id| id.to_string());
    let body = record.canonical_body().expect("canonical body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: creditops_audit::leaf_hash(&body),
        body,
        recorded_at,
        actor: actor.map(str::to_owned),
        action: action.to_owned(),
        outcome: outcome.as_str().to_owned(),
        case_id,
        borrower_id,
    }
}

fn simple_event(n: i64) -> NewAuditEvent {
    audit_event(
        "test.event",
        Outcome::Ok,
        Some(LOAN_OFFICER),
        None,
        None,
        at(n),
    )
}

fn all_events() -> AuditFilter {
    AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }
}

async fn read_events(store: &dyn Store, filter: &AuditFilter) -> Vec<StoredAuditEvent> {
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.audit_events(filter).await.expect("audit events")
}

async fn seqs(store: &dyn Store, filter: &AuditFilter) -> Vec<i64> {
    read_events(store, filter)
        .await
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Verifies the whole stored chain from the genesis of [`CONTRACT_ORIGIN`].
async fn verify_chain(store: &dyn Store) -> VerifyReport {
    let mut verifier = ChainVerifier::new(CONTRACT_ORIGIN, 1);
    let mut filter = AuditFilter {
        limit: 7,
        ..AuditFilter::default()
    };
    loop {
        let page = read_events(store, &filter).await;
        let Some(last) = page.last() else { break };
        filter.after_seq = Some(last.seq);
        for e in &page {
            verifier
                .push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash)
                .expect("the stored chain verifies");
        }
    }
    verifier.finish()
}

// -- the contract -------------------------------------------------------------

pub async fn backend_answers_ping(store: Arc<dyn Store>) {
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "unexpected backend name {}",
        store.backend()
    );
    store.ping().await.expect("ping");
}

pub async fn staff_round_trip_keeps_dated_history(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit_id(MARKET_UNIT), "Corporate Banking", Side::Market)
        .await
        .expect("unit");
    tx.upsert_unit(
        &unit_id(BACKOFFICE_UNIT),
        "Credit Back Office",
        Side::Backoffice,
    )
    .await
    .expect("unit");
    // Moved from market to back office on day 10; a microsecond-precise start.
    let moved = day(10) + chrono::Duration::microseconds(7);
    let person = StaffMember {
        id: staff_id("mover-1"),
        status: StaffStatus::Active,
        units: vec![
            UnitAssignment {
                unit_id: unit_id(MARKET_UNIT),
                side: Side::Market,
                valid_from: day(1),
                valid_to: Some(moved),
            },
            UnitAssignment {
                unit_id: unit_id(BACKOFFICE_UNIT),
                side: Side::Backoffice,
                valid_from: moved,
                valid_to: None,
            },
        ],
        roles: vec![
            RoleAssignment {
                role: Role::LoanOfficer,
                valid_from: day(1),
                valid_to: Some(moved),
            },
            RoleAssignment {
                role: Role::CreditAnalyst,
                valid_from: moved,
                valid_to: None,
            },
            RoleAssignment {
                role: Role::InternalAuditor,
                valid_from: day(-100),
                valid_to: Some(day(-50)),
            },
        ],
    };
    tx.insert_staff(&person).await.expect("insert staff");
    // A person without any assignment is fine too.
    let bare = StaffMember {
        id: staff_id("new.joiner_2"),
        status: StaffStatus::Active,
        units: vec![],
        roles: vec![],
    };
    tx.insert_staff(&bare).await.expect("insert bare staff");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    let loaded = tx.staff_member(&person.id).await.expect("load");
    assert_eq!(loaded.as_ref(), Some(&person));
    let loaded = loaded.expect("exists");
    assert_eq!(loaded.voter_at(day(5)).map(|v| v.side), Some(Side::Market));
    assert_eq!(
        loaded.voter_at(day(20)).map(|v| v.side),
        Some(Side::Backoffice)
    );
    assert_eq!(loaded.roles_at(day(20)), vec![Role::CreditAnalyst]);
    assert_eq!(tx.staff_member(&bare.id).await.expect("load"), Some(bare));
    assert_eq!(
        tx.staff_member(&staff_id("nobody")).await.expect("load"),
        None
    );
}

pub async fn upsert_unit_updates_name_and_side(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let unit = unit_id("reorg-unit");
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit, "Old Name", Side::Market)
        .await
        .expect("insert unit");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit, "Risk Controlling", Side::Risk)
        .await
        .expect("update unit");
    tx.commit().await.expect("commit");

    // An assignment must carry its unit's (current) side.
    let mut tx = store.begin().await.expect("begin");
    let wrong = member("rc-1", "reorg-unit", Side::Market, Role::RiskController);
    let err = tx.insert_staff(&wrong).await.expect_err("side mismatch");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let right = member("rc-1", "reorg-unit", Side::Risk, Role::RiskController);
    tx.insert_staff(&right).await.expect("insert staff");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.staff_member(&right.id).await.expect("load"), Some(right));
}

pub async fn duplicate_staff_is_a_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut tx = store.begin().await.expect("begin");
    let again = member(
        LOAN_OFFICER,
        BACKOFFICE_UNIT,
        Side::Backoffice,
        Role::CreditAnalyst,
    );
    let err = tx.insert_staff(&again).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    // The first record is unchanged.
    let mut tx = store.begin_read().await.expect("begin_read");
    let stored = tx
        .staff_member(&staff_id(LOAN_OFFICER))
        .await
        .expect("load");
    assert_eq!(
        stored,
        Some(member(
            LOAN_OFFICER,
            MARKET_UNIT,
            Side::Market,
            Role::LoanOfficer
        ))
    );
}

pub async fn staff_with_unknown_unit_is_refused(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin().await.expect("begin");
    let person = member("lost-1", "no-such-unit", Side::Market, Role::LoanOfficer);
    let err = tx.insert_staff(&person).await.expect_err("unknown unit");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.staff_member(&person.id).await.expect("load"), None);
}

pub async fn staff_status_changes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let id = staff_id(LOAN_OFFICER);
    let mut tx = store.begin().await.expect("begin");
    tx.set_staff_status(&id, StaffStatus::Suspended)
        .await
        .expect("suspend");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    let person = tx.staff_member(&id).await.expect("load").expect("exists");
    drop(tx);
    assert_eq!(person.status, StaffStatus::Suspended);
    assert!(person.roles_at(at(0)).is_empty());
    assert_eq!(person.units.len(), 1, "history is kept");

    let mut tx = store.begin().await.expect("begin");
    tx.set_staff_status(&id, StaffStatus::Active)
        .await
        .expect("reactivate");
    let err = tx
        .set_staff_status(&staff_id("nobody"), StaffStatus::Suspended)
        .await
        .expect_err("unknown staff");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    let person = tx.staff_member(&id).await.expect("load").expect("exists");
    assert_eq!(person.status, StaffStatus::Active);
}

pub async fn borrower_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    // Quotes, SQL-ish text and non-ASCII are data, not syntax.
    let b = borrower("Müller & Söhne GmbH 'x'; DROP TABLE borrowers; --");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.borrower(b.id).await.expect("load"), Some(b.clone()));
    assert_eq!(
        tx.borrower(BorrowerId::generate()).await.expect("load"),
        None
    );
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_borrower(&b).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn case_round_trip_keeps_exact_amounts(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let amounts = [
        ("12345678901234.56", "EUR"),
        ("1000000", "JPY"),
        ("0.01", "EUR"),
        ("1.234", "BHD"),
        ("1000000000000000", "EUR"),
    ];
    for (amount, currency) in amounts {
        let case = new_case(borrower_id, amount, currency);
        insert_case(store, &case).await;
        let loaded = load_case(store, case.id).await;
        assert_eq!(loaded, case, "{amount} {currency}");
        let expected = Money::parse(amount, currency).expect("money");
        assert_eq!(loaded.file.amount, expected);
        assert_eq!(
            loaded.file.amount.minor_units(),
            expected.minor_units(),
            "{amount} {currency}"
        );
        assert_eq!(loaded.content_hash(), case.content_hash());
    }
    let big = Money::parse("12345678901234.56", "EUR").expect("money");
    assert_eq!(big.amount().to_string(), "12345678901234.56");
    assert_eq!(big.minor_units(), 1_234_567_890_123_456);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.case(CaseId::generate()).await.expect("load"), None);
    let summaries = tx
        .cases_by_status(CaseStatus::Draft, None, 100)
        .await
        .expect("summaries");
    assert_eq!(summaries.len(), amounts.len());
    assert!(
        summaries
            .iter()
            .any(|s| s.amount == big && s.borrower_id == borrower_id && s.version == 1)
    );
}

pub async fn votes_and_decision_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "250000.00", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let analyst = voter(store, ANALYST, at(20)).await;

    // First vote on version 1.
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "good risk",
        1,
        at(20),
    )
    .expect("first vote");
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);

    // Returned for rework: version 2, the first vote is void but kept.
    let before = case.revision;
    case.return_for_rework(Some(&analyst), "collateral valuation missing", at(30))
        .expect("return");
    save_case(store, &case, before).await;
    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(
        loaded.return_reason.as_deref(),
        Some("collateral valuation missing")
    );

    // Edited, voted again, then the second vote decides.
    let before = case.revision;
    let file = CaseFile::new(
        borrower_id,
        Money::parse("240000.00", "EUR").expect("money"),
        "term_loan",
        48,
        "new production line, with valuation",
    )
    .expect("file");
    case.edit(Some(&officer), file, 2, at(40)).expect("edit");
    save_case(store, &case, before).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "valuation added",
        3,
        at(50),
    )
    .expect("first vote again");
    save_case(store, &case, before).await;
    let before = case.revision;
    case.cast_second_vote(Some(&analyst), VoteDecision::Approve, "agree", 3, at(60))
        .expect("second vote");
    save_case(store, &case, before).await;

    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.status, CaseStatus::Approved);
    assert_eq!(loaded.votes.len(), 3);
    assert_eq!(loaded.current_votes().count(), 2);
    let decision = loaded.decision.as_ref().expect("decision");
    assert_eq!(decision.outcome, DecisionOutcome::Approved);
    assert_eq!(decision.votes.len(), 2);
    assert_eq!(decision.file_version, 3);
    assert_eq!(decision.decided_at, at(60));
    assert_eq!(loaded.votes[0].voter, officer);
    assert_eq!(loaded.votes[2].voter, analyst);
    assert!(!loaded.votes[2].checks.is_empty());
}

pub async fn first_vote_decline_decides_in_one_update(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "5000000", "JPY");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Decline,
        "no business",
        1,
        at(20),
    )
    .expect("decline");
    save_case(store, &case, before).await;
    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.status, CaseStatus::Declined);
    assert_eq!(
        loaded.decision.map(|d| d.outcome),
        Some(DecisionOutcome::Declined)
    );
}

pub async fn stale_revision_is_a_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "100000.00", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;

    // Two users load the same revision in two transactions.
    let mut first = load_case(store, case.id).await;
    let mut second = load_case(store, case.id).await;
    let loaded_revision = first.revision;
    assert_eq!(second.revision, loaded_revision);

    first
        .cast_first_vote(
            Some(&officer),
            VoteDecision::Approve,
            "first wins",
            1,
            at(20),
        )
        .expect("vote");
    save_case(store, &first, loaded_revision).await;

    second
        .cast_first_vote(
            Some(&officer),
            VoteDecision::Decline,
            "second loses",
            1,
            at(21),
        )
        .expect("vote");
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .update_case(&second, loaded_revision)
        .await
        .expect_err("stale revision");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    assert_eq!(load_case(store, case.id).await, first);

    // A case that does not exist cannot be updated either.
    let mut ghost = new_case(borrower_id, "1.00", "EUR");
    ghost.revision = 2;
    let mut tx = store.begin().await.expect("begin");
    let err = tx.update_case(&ghost, 1).await.expect_err("no such case");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn update_case_requires_a_new_revision(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "100000.00", "EUR");
    insert_case(store, &case).await;
    // Saving without a new revision would defeat optimistic concurrency.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .update_case(&case, case.revision)
        .await
        .expect_err("same revision");
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

pub async fn cases_by_status_pages_by_id(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut drafts: Vec<CreditCase> = (1..=5)
        .map(|n| new_case(borrower_id, &format!("{n}000.00"), "EUR"))
        .collect();
    // Inserted out of order; listed by id.
    drafts.reverse();
    for case in &drafts {
        insert_case(store, case).await;
    }
    let mut approved = new_case(borrower_id, "777.00", "EUR");
    approved.status = CaseStatus::Approved;
    insert_case(store, &approved).await;
    drafts.sort_by_key(|c| c.id);
    let draft_ids: Vec<CaseId> = drafts.iter().map(|c| c.id).collect();

    let mut tx = store.begin_read().await.expect("begin_read");
    let mut paged = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = tx
            .cases_by_status(CaseStatus::Draft, after, 2)
            .await
            .expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page.iter().map(|s| s.id));
        pages += 1;
    }
    assert_eq!(paged, draft_ids);
    assert_eq!(pages, 3);

    let all = tx
        .cases_by_status(CaseStatus::Draft, None, 100)
        .await
        .expect("all");
    for (summary, case) in all.iter().zip(&drafts) {
        assert_eq!(summary.id, case.id);
        assert_eq!(summary.borrower_id, borrower_id);
        assert_eq!(summary.amount, case.file.amount);
        assert_eq!(summary.status, CaseStatus::Draft);
        assert_eq!(summary.version, 1);
        assert_eq!(summary.updated_at, case.updated_at);
    }
    let only = tx
        .cases_by_status(CaseStatus::Approved, None, 100)
        .await
        .expect("approved");
    assert_eq!(
        only.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![approved.id]
    );
    assert!(
        tx.cases_by_status(CaseStatus::Returned, None, 100)
            .await
            .expect("returned")
            .is_empty()
    );
    assert!(
        tx.cases_by_status(CaseStatus::Draft, None, 0)
            .await
            .expect("limit 0")
            .is_empty()
    );
}

pub async fn idempotency_round_trip_and_duplicate(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let scope = IdempotencyScope {
        actor: staff_id(LOAN_OFFICER),
        operation: "POST /v1/cases/{id}/first-vote".to_owned(),
        key: "0b6f1c1e-key".to_owned(),
    };
    let response = StoredResponse {
        request_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        status: 201,
        // Arbitrary bytes, not only UTF-8.
        body: vec![b'{', 0, 255, 0x80, b'}'],
        created_at: at(5),
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.idempotent_response(&scope).await.expect("lookup"), None);
    tx.save_idempotent_response(&scope, &response)
        .await
        .expect("save");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.idempotent_response(&scope).await.expect("lookup"),
        Some(response.clone())
    );
    for other in [
        IdempotencyScope {
            key: "another-key".to_owned(),
            ..scope.clone()
        },
        IdempotencyScope {
            actor: staff_id(ANALYST),
            ..scope.clone()
        },
        IdempotencyScope {
            operation: "POST /v1/cases".to_owned(),
            ..scope.clone()
        },
    ] {
        assert_eq!(tx.idempotent_response(&other).await.expect("lookup"), None);
    }
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let second = StoredResponse {
        status: 409,
        ..response.clone()
    };
    let err = tx
        .save_idempotent_response(&scope, &second)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.idempotent_response(&scope).await.expect("lookup"),
        Some(response)
    );
}

pub async fn audit_append_links_a_verifiable_chain(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert!(read_events(store, &all_events()).await.is_empty());
    let case_id = CaseId::generate();
    let borrower_id = BorrowerId::generate();
    let mut appended = Vec::new();
    let mut tx = store.begin().await.expect("begin");
    for n in 1..=5 {
        let event = audit_event(
            "case.vote",
            Outcome::Ok,
            Some(LOAN_OFFICER),
            Some(case_id),
            Some(borrower_id),
            at(n),
        );
        assert_eq!(tx.append_audit(&event).await.expect("append"), n);
        appended.push(event);
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    for n in 6..=8 {
        let event = audit_event("auth.denied", Outcome::Denied, None, None, None, at(n));
        assert_eq!(tx.append_audit(&event).await.expect("append"), n);
        appended.push(event);
    }
    tx.commit().await.expect("commit");

    let stored = read_events(store, &all_events()).await;
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    for (s, e) in stored.iter().zip(&appended) {
        assert_eq!(s.event_id, e.event_id);
        assert_eq!(s.body, e.body, "body stored verbatim");
        assert_eq!(s.leaf_hash, e.leaf_hash.to_vec());
        assert_eq!(s.recorded_at, e.recorded_at);
        assert_eq!(s.actor, e.actor);
        assert_eq!(s.action, e.action);
        assert_eq!(s.outcome, e.outcome);
        assert_eq!(s.case_id, e.case_id);
        assert_eq!(s.borrower_id, e.borrower_id);
    }
    let genesis = creditops_audit::chain_genesis(CONTRACT_ORIGIN);
    assert_eq!(
        stored[0].chain_hash,
        creditops_audit::chain_next(&genesis, &appended[0].leaf_hash).to_vec()
    );
    let report = verify_chain(store).await;
    assert_eq!(report.events, 8);
    assert_eq!(report.last_seq, Some(8));
    assert_eq!(report.head, hex_lower(&stored[7].chain_hash));
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn audit_filters_narrow_and_page(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (case_a, case_b) = (CaseId::generate(), CaseId::generate());
    let (borrower_x, borrower_y) = (BorrowerId::generate(), BorrowerId::generate());
    let hour = 3600;
    let events = [
        audit_event(
            "case.open",
            Outcome::Ok,
            Some("lo-1"),
            Some(case_a),
            Some(borrower_x),
            at(0),
        ),
        audit_event(
            "case.vote",
            Outcome::Ok,
            Some("lo-1"),
            Some(case_a),
            Some(borrower_x),
            at(hour),
        ),
        audit_event(
            "case.vote",
            Outcome::Denied,
            Some("ca-1"),
            Some(case_b),
            Some(borrower_y),
            at(2 * hour),
        ),
        audit_event(
            "auth.denied",
            Outcome::Denied,
            None,
            None,
            None,
            at(3 * hour),
        ),
        audit_event(
            "case.return",
            Outcome::Ok,
            Some("ca-1"),
            Some(case_a),
            Some(borrower_x),
            at(4 * hour),
        ),
        audit_event(
            "borrower.create",
            Outcome::Ok,
            Some("lo-1"),
            None,
            Some(borrower_y),
            at(5 * hour),
        ),
    ];
    let mut tx = store.begin().await.expect("begin");
    for e in &events {
        tx.append_audit(e).await.expect("append");
    }
    tx.commit().await.expect("commit");

    let base = all_events();
    let cases: Vec<(&str, AuditFilter, Vec<i64>)> = vec![
        ("everything", base.clone(), vec![1, 2, 3, 4, 5, 6]),
        (
            "case",
            AuditFilter {
                case_id: Some(case_a),
                ..base.clone()
            },
            vec![1, 2, 5],
        ),
        (
            "other case",
            AuditFilter {
                case_id: Some(case_b),
                ..base.clone()
            },
            vec![3],
        ),
        (
            "unknown case",
            AuditFilter {
                case_id: Some(CaseId::generate()),
                ..base.clone()
            },
            vec![],
        ),
        (
            "borrower",
            AuditFilter {
                borrower_id: Some(borrower_y),
                ..base.clone()
            },
            vec![3, 6],
        ),
        (
            "actor",
            AuditFilter {
                actor: Some("lo-1".into()),
                ..base.clone()
            },
            vec![1, 2, 6],
        ),
        (
            "action",
            AuditFilter {
                action: Some("case.vote".into()),
                ..base.clone()
            },
            vec![2, 3],
        ),
        (
            "outcome",
            AuditFilter {
                outcome: Some("denied".into()),
                ..base.clone()
            },
            vec![3, 4],
        ),
        (
            "from is inclusive",
            AuditFilter {
                from: Some(at(2 * hour)),
                ..base.clone()
            },
            vec![3, 4, 5, 6],
        ),
        (
            "to is exclusive",
            AuditFilter {
                to: Some(at(2 * hour)),
                ..base.clone()
            },
            vec![1, 2],
        ),
        (
            "window",
            AuditFilter {
                from: Some(at(hour)),
                to: Some(at(4 * hour)),
                ..base.clone()
            },
            vec![2, 3, 4],
        ),
        (
            "microsecond bounds",
            AuditFilter {
                from: Some(at(hour) + chrono::Duration::microseconds(1)),
                to: Some(at(4 * hour) + chrono::Duration::microseconds(1)),
                ..base.clone()
            },
            vec![3, 4, 5],
        ),
        (
            "after_seq",
            AuditFilter {
                after_seq: Some(4),
                ..base.clone()
            },
            vec![5, 6],
        ),
        (
            "limit",
            AuditFilter {
                limit: 2,
                ..base.clone()
            },
            vec![1, 2],
        ),
        (
            "limit 0",
            AuditFilter {
                limit: 0,
                ..base.clone()
            },
            vec![],
        ),
        (
            "combined",
            AuditFilter {
                actor: Some("ca-1".into()),
                outcome: Some("ok".into()),
                ..base.clone()
            },
            vec![5],
        ),
        (
            "injection is data",
            AuditFilter {
                actor: Some("' OR '1'='1".into()),
                ..base.clone()
            },
            vec![],
        ),
    ];
    for (name, filter, expected) in cases {
        assert_eq!(seqs(store, &filter).await, expected, "filter {name}");
    }

    // Paging through one case, two at a time.
    let mut filter = AuditFilter {
        case_id: Some(case_a),
        limit: 2,
        ..AuditFilter::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = seqs(store, &filter).await;
        let Some(&last) = page.last() else { break };
        filter.after_seq = Some(last);
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![1, 2], vec![5]]);
}

pub async fn rollback_is_fail_closed(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let b = borrower("Rolled Back AG");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert borrower");
    let event = audit_event(
        "borrower.create",
        Outcome::Ok,
        Some(LOAN_OFFICER),
        None,
        Some(b.id),
        at(1),
    );
    assert_eq!(tx.append_audit(&event).await.expect("append"), 1);
    drop(tx); // no commit: the business change and its audit event go together

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.borrower(b.id).await.expect("load"), None);
    assert!(
        tx.audit_events(&all_events())
            .await
            .expect("events")
            .is_empty()
    );
    drop(tx);

    // The rolled-back sequence number is reused: no gap.
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.append_audit(&simple_event(2)).await.expect("append"), 1);
    tx.commit().await.expect("commit");
    assert_eq!(verify_chain(store).await.events, 1);
}

pub async fn read_transactions_refuse_writes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin_read().await.expect("begin_read");
    let result = tx.append_audit(&simple_event(1)).await;
    assert!(
        result.is_err(),
        "a read-only transaction appended: {result:?}"
    );
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    let result = tx
        .upsert_unit(&unit_id("read-only"), "Read Only", Side::Audit)
        .await;
    assert!(result.is_err(), "a read-only transaction wrote: {result:?}");
    drop(tx);
    assert!(read_events(store, &all_events()).await.is_empty());
}

pub async fn reads_run_while_a_writer_is_open(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut writer = store.begin().await.expect("begin");
    writer.append_audit(&simple_event(1)).await.expect("append");
    // Readers neither wait for the writer nor see its uncommitted work.
    let read = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        store.ping().await.expect("ping");
        read_events(store, &all_events()).await
    })
    .await
    .expect("a reader was blocked by an open writer");
    assert!(read.is_empty());
    writer.commit().await.expect("commit");
    assert_eq!(seqs(store, &all_events()).await, vec![1]);
}

pub async fn concurrent_appends_get_a_gapless_chain(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            let seq = tx.append_audit(&simple_event(n)).await.expect("append");
            tokio::task::yield_now().await;
            tx.commit().await.expect("commit");
            seq
        }));
    }
    let mut seqs_seen = Vec::new();
    for task in tasks {
        seqs_seen.push(task.await.expect("task"));
    }
    seqs_seen.sort_unstable();
    assert_eq!(seqs_seen, (1..=16).collect::<Vec<_>>());
    let report = verify_chain(store.as_ref()).await;
    assert_eq!(report.events, 16);
    assert_eq!(report.last_seq, Some(16));
}

fn micros(t: Timestamp) -> Timestamp {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// Sub-microsecond digits are truncated on write by every backend
/// (PostgreSQL keeps microseconds), everywhere, so a reload is the same
/// value on both backends.
pub async fn timestamps_are_kept_to_the_microsecond(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let ns = |t: Timestamp, n: i64| t + chrono::Duration::nanoseconds(n);
    seed_org(store).await;
    let mut tx = store.begin().await.expect("begin");
    let mut person = member("precise-1", MARKET_UNIT, Side::Market, Role::LoanOfficer);
    person.units[0].valid_from = ns(day(-1), 123_456_789);
    person.units[0].valid_to = Some(ns(day(9), 999));
    person.roles[0].valid_from = ns(day(-1), 1);
    tx.insert_staff(&person).await.expect("staff");
    let mut b = borrower("Precise GmbH");
    b.created_at = ns(at(0), 999);
    tx.insert_borrower(&b).await.expect("borrower");
    let money = Money::parse("10.00", "EUR").expect("money");
    let file = CaseFile::new(b.id, money, "loan", 12, "stock").expect("file");
    let mut case = CreditCase::open(CaseId::generate(), file, person.id.clone(), ns(at(10), 501));
    tx.insert_case(&case).await.expect("case");
    let voter = person.voter_at(at(20)).expect("voter");
    case.cast_first_vote(
        Some(&voter),
        VoteDecision::Decline,
        "no",
        1,
        ns(at(20), 999_999),
    )
    .expect("vote");
    tx.update_case(&case, 1).await.expect("update");
    let event = audit_event(
        "case.vote",
        Outcome::Ok,
        None,
        Some(case.id),
        None,
        ns(at(20), 7),
    );
    tx.append_audit(&event).await.expect("append");
    tx.commit().await.expect("commit");

    let mut expected_person = person.clone();
    for u in &mut expected_person.units {
        u.valid_from = micros(u.valid_from);
        u.valid_to = u.valid_to.map(micros);
    }
    for r in &mut expected_person.roles {
        r.valid_from = micros(r.valid_from);
        r.valid_to = r.valid_to.map(micros);
    }
    let mut expected_case = case.clone();
    expected_case.created_at = micros(case.created_at);
    expected_case.updated_at = micros(case.updated_at);
    for v in &mut expected_case.votes {
        v.cast_at = micros(v.cast_at);
    }
    let decision = expected_case.decision.as_mut().expect("decision");
    decision.decided_at = micros(decision.decided_at);
    for v in &mut decision.votes {
        v.cast_at = micros(v.cast_at);
    }

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.staff_member(&person.id).await.expect("staff"),
        Some(expected_person)
    );
    let loaded_borrower = tx.borrower(b.id).await.expect("borrower").expect("exists");
    assert_eq!(loaded_borrower.created_at, micros(b.created_at));
    assert_eq!(tx.case(case.id).await.expect("case"), Some(expected_case));
    let events = tx
        .audit_events(&AuditFilter {
            from: Some(event.recorded_at),
            ..all_events()
        })
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "an event is inside its own microsecond");
    assert_eq!(events[0].recorded_at, micros(event.recorded_at));
}
