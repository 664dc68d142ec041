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
    AuditFilter, Borrower, BorrowerGroup, BreachFilter, ChangeProposal, ExposureScope,
    IdempotencyScope, InFlightClaims, LiquidityClaim, LiquidityNow, NewAuditEvent, ProposalKind,
    ProposalStatus, RelatedParty, Store, StoreError, StoredAuditEvent, StoredResponse,
};
use creditops_audit::{AuditAction, AuditRecord, ChainVerifier, Outcome, VerifyReport};
use creditops_domain::{
    BoardResolution, BorrowerId, CaseFile, CaseId, CaseStatus, CompetenceGrant, CreditCase,
    DecisionFlag, DecisionOutcome, DivergencePolicy, Money, Role, RoleAssignment, RuleId, RuleSet,
    Severity, Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId,
    VoteDecision, VoteFacts, Voter,
};
use creditops_risk::{
    BorrowerExposure, Breach, Capital, ImportEffect, ImportedBalance, LimitStatus, LimitSubject,
    LimitVersion, LiquidityPosition, Reservation, ReservationStatus,
};
use rust_decimal::Decimal;
use std::any::Any;
use std::collections::BTreeSet;
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
            reconciliation_finds_rows_without_their_event
            timestamps_are_kept_to_the_microsecond
            staff_history_appends_and_ids_are_sorted
            borrower_relationship_managers
            groups_round_trip_and_conflict
            group_memberships_are_dated_and_half_open
            concurrent_membership_changes_keep_one_running
            related_parties_round_trip
            approved_amounts_and_open_cases
            checkpoints_handed_out_are_found_by_size
            rule_sets_are_versioned
            proposals_round_trip_and_list_newest_first
            a_proposal_is_decided_once_by_another_person
            case_segregation_fields_round_trip
            escalation_round_trips_through_the_store
            limit_versions_need_four_eyes
            limits_in_force_are_the_highest_approved_versions
            capital_and_liquidity_are_versioned
            exposures_cover_every_borrower_in_scope
            reservations_close_once
            committed_outflows_project_reservations
            liquidity_claims_count_for_other_approvals_only
            imported_balances_are_idempotent
            breaches_open_resolve_and_filter
            amounts_beyond_cents_are_refused
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
/// Opens the cases; as originator may not vote on them (S6).
const ORIGINATOR: &str = "lo-0";
/// Casts the first votes.
const LOAN_OFFICER: &str = "lo-1";
/// Edits files; as editor may not vote on them afterwards (S6).
const EDITOR: &str = "lo-2";
/// Casts the second votes.
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
        competences: vec![CompetenceGrant {
            side,
            level: 1,
            valid_from: day(-30),
            valid_to: None,
        }],
    }
}

/// Two units and four people: an originator, a loan officer and an editor
/// (market), and an analyst (back office); all with competence level 1.
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
    for id in [ORIGINATOR, LOAN_OFFICER, EDITOR] {
        tx.insert_staff(&member(id, MARKET_UNIT, Side::Market, Role::LoanOfficer))
            .await
            .expect("loan officer");
    }
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
        institution: false,
        sector: "manufacturing".to_owned(),
        relationship_manager: None,
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
    CreditCase::open(CaseId::generate(), file, staff_id(ORIGINATOR), at(10))
}

/// Vote facts without group, relationship managers or related parties, under
/// the initial rule set, for an exposure that competence level 1 covers, with
/// a clean risk verdict (R4: an approval without one is refused). Its finding
/// has exact decimals, so the stored decision must keep them.
fn facts() -> VoteFacts {
    let finding = creditops_domain::RiskFinding {
        rule: RuleId::R3,
        check: "borrower_limit".into(),
        subject: "borrower:contract".into(),
        limit: Some("1000000.00".parse().expect("decimal")),
        usage: Some("100000.01".parse().expect("decimal")),
        headroom: Some("899999.99".parse().expect("decimal")),
        severity: Severity::Within,
        detail: "within the limit".into(),
    };
    VoteFacts::plain(RuleSet::initial(), Decimal::from(100_000), "policy-hash").with_risk(
        creditops_domain::RiskVerdict::from_findings(vec![finding], false, "EUR"),
    )
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
    let action = action.parse().expect("an audit action");
    let mut record = AuditRecord::new("contract-test", action, outcome, recorded_at);
    record.actor = actor.map(str::to_owned);
    record.case_id = case_id;
    record.borrower_id = borrower_id;
    let body = record.canonical_body().expect("canonical body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: creditops_audit::leaf_hash(&body),
        body,
        recorded_at,
        actor: actor.map(str::to_owned),
        action: action.as_str().to_owned(),
        outcome: outcome.as_str().to_owned(),
        case_id,
        borrower_id,
    }
}

fn simple_event(n: i64) -> NewAuditEvent {
    audit_event(
        "audit.query",
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

/// Reads linked events after every committed one is linked (a no-op where
/// appends link in their own transaction).
async fn read_events(store: &dyn Store, filter: &AuditFilter) -> Vec<StoredAuditEvent> {
    store
        .flush_audit(std::time::Duration::from_secs(10))
        .await
        .expect("flush the audit sequencer");
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

pub async fn checkpoints_handed_out_are_found_by_size(store: Arc<dyn Store>) {
    let checkpoint = |size: u64, note: &str, minute: i64| crate::StoredCheckpoint {
        tree_size: size,
        root: [u8::try_from(size).unwrap(); 32],
        note: note.to_owned(),
        signed_at: at(minute),
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.latest_checkpoint(u64::MAX).await.expect("none"), None);
    for (size, note, minute) in [(3, "a", 1), (5, "b", 2), (5, "c", 3), (9, "d", 4)] {
        tx.insert_checkpoint(&checkpoint(size, note, minute))
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("read");
    let latest = |found: Option<crate::StoredCheckpoint>| found.map(|c| (c.tree_size, c.note));
    assert_eq!(
        latest(tx.latest_checkpoint(u64::MAX).await.expect("all")),
        Some((9, "d".to_owned()))
    );
    let at_five = tx.latest_checkpoint(8).await.expect("<= 8").expect("some");
    assert_eq!((at_five.tree_size, at_five.note.as_str()), (5, "c"));
    assert_eq!(at_five.root, [5; 32]);
    assert_eq!(at_five.signed_at, at(3));
    assert_eq!(
        latest(tx.latest_checkpoint(4).await.expect("<= 4")),
        Some((3, "a".to_owned()))
    );
    assert_eq!(latest(tx.latest_checkpoint(2).await.expect("<= 2")), None);
}

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
        competences: vec![
            CompetenceGrant {
                side: Side::Market,
                level: 2,
                valid_from: day(1),
                valid_to: Some(moved),
            },
            CompetenceGrant {
                side: Side::Backoffice,
                level: 9,
                valid_from: moved,
                valid_to: None,
            },
            CompetenceGrant {
                side: Side::Backoffice,
                level: 1,
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
        competences: vec![],
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
    let voter = loaded.voter_at(day(20)).expect("voter");
    assert_eq!(voter.competence_level, 9);
    assert_eq!(voter.left_market_at, Some(moved));
    assert_eq!(loaded.competence_at(Side::Market, day(5)), 2);
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
    let bank = Borrower {
        institution: true,
        relationship_manager: Some(staff_id(LOAN_OFFICER)),
        ..borrower("Beispielbank AG")
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert");
    tx.insert_borrower(&bank).await.expect("insert institution");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.borrower(b.id).await.expect("load"), Some(b.clone()));
    assert_eq!(tx.borrower(bank.id).await.expect("load"), Some(bank));
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
        &facts(),
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
    let editor = voter(store, EDITOR, at(40)).await;
    case.edit(Some(&editor), file, 2, at(40)).expect("edit");
    save_case(store, &case, before).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "valuation added",
        3,
        &facts(),
        at(50),
    )
    .expect("first vote again");
    save_case(store, &case, before).await;
    let before = case.revision;
    case.cast_second_vote(
        Some(&analyst),
        VoteDecision::Approve,
        "agree",
        3,
        &facts(),
        at(60),
    )
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
        &facts(),
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
            &facts(),
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
            &facts(),
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
            "case.first_vote",
            Outcome::Ok,
            Some(LOAN_OFFICER),
            Some(case_id),
            Some(borrower_id),
            at(n),
        );
        tx.append_audit(&event).await.expect("append");
        appended.push(event);
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    for n in 6..=8 {
        let event = audit_event("request.refused", Outcome::Denied, None, None, None, at(n));
        tx.append_audit(&event).await.expect("append");
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
            "case.created",
            Outcome::Ok,
            Some("lo-1"),
            Some(case_a),
            Some(borrower_x),
            at(0),
        ),
        audit_event(
            "case.first_vote",
            Outcome::Ok,
            Some("lo-1"),
            Some(case_a),
            Some(borrower_x),
            at(hour),
        ),
        audit_event(
            "case.first_vote",
            Outcome::Denied,
            Some("ca-1"),
            Some(case_b),
            Some(borrower_y),
            at(2 * hour),
        ),
        audit_event(
            "request.refused",
            Outcome::Denied,
            None,
            None,
            None,
            at(3 * hour),
        ),
        audit_event(
            "case.returned",
            Outcome::Ok,
            Some("ca-1"),
            Some(case_a),
            Some(borrower_x),
            at(4 * hour),
        ),
        audit_event(
            "borrower.created",
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
                action: Some("case.first_vote".into()),
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
        "borrower.created",
        Outcome::Ok,
        Some(LOAN_OFFICER),
        None,
        Some(b.id),
        at(1),
    );
    tx.append_audit(&event).await.expect("append");
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

    // The rolled-back event takes no sequence number: no gap.
    let mut tx = store.begin().await.expect("begin");
    tx.append_audit(&simple_event(2)).await.expect("append");
    tx.commit().await.expect("commit");
    assert_eq!(seqs(store, &all_events()).await, vec![1]);
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
            tx.append_audit(&simple_event(n)).await.expect("append");
            tokio::task::yield_now().await;
            tx.commit().await.expect("commit");
            // Sequencer rounds racing the appenders (PostgreSQL).
            store.sequence_audit(None).await.expect("sequence");
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(
        seqs(store.as_ref(), &all_events()).await,
        (1..=16).collect::<Vec<_>>()
    );
    let report = verify_chain(store.as_ref()).await;
    assert_eq!(report.events, 16);
    assert_eq!(report.last_seq, Some(16));
}

/// A1: every borrower, case, vote and decision row carries the id of its
/// transaction's first audit event; a row written without an event is
/// reported, a row with its event is not.
pub async fn reconciliation_finds_rows_without_their_event(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let audited = borrower("Audited AG");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&audited).await.expect("insert");
    let mut record = AuditRecord::new("market", AuditAction::BorrowerCreated, Outcome::Ok, at(1));
    record.borrower_id = Some(audited.id);
    crate::append_record(tx.as_mut(), &record)
        .await
        .expect("append");
    // A second event of the same transaction keeps its own id.
    crate::append_record(tx.as_mut(), &record)
        .await
        .expect("append a second event");
    tx.commit().await.expect("commit");
    let silent = borrower("Silent AG");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&silent).await.expect("insert");
    tx.commit().await.expect("commit");

    let events = read_events(store, &all_events()).await;
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].event_id, events[1].event_id);
    assert_ne!(
        events[0].event_id, record.id,
        "the first event took the stamped id"
    );
    let mut tx = store.begin_read().await.expect("begin_read");
    let rows = tx.unaudited_rows(10).await.expect("reconcile");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].table, "borrowers");
    assert_eq!(rows[0].key, silent.id.to_string());
    assert!(rows[0].audit_event_id.is_some());
    assert!(tx.unaudited_rows(0).await.expect("reconcile").is_empty());
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
    person.competences[0].valid_from = ns(day(-1), 2);
    person.competences[0].valid_to = Some(ns(day(9), 3));
    tx.insert_staff(&person).await.expect("staff");
    let mut b = borrower("Precise GmbH");
    b.created_at = ns(at(0), 999);
    tx.insert_borrower(&b).await.expect("borrower");
    let group = BorrowerGroup {
        id: unit_id("precise-group"),
        name: "Precise Group".into(),
        created_by: staff_id(ANALYST),
        created_at: ns(at(1), 1),
    };
    tx.insert_group(&group).await.expect("group");
    let joined = ns(at(2), 999);
    tx.set_group_membership(b.id, Some(&group.id), joined)
        .await
        .expect("join");
    let party = RelatedParty {
        borrower_id: b.id,
        staff_id: staff_id(EDITOR),
        relation: "spouse".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: ns(at(3), 5),
    };
    tx.insert_related_party(&party)
        .await
        .expect("related party");
    let mut rules = RuleSet::initial();
    rules.valid_from = ns(at(4), 777);
    tx.insert_rule_set(&rules).await.expect("rule set");
    let mut proposal = proposal(ProposalKind::RuleSet, ORIGINATOR, ns(at(5), 1));
    tx.insert_proposal(&proposal).await.expect("proposal");
    proposal.status = ProposalStatus::Rejected;
    proposal.decided_by = Some(staff_id(ANALYST));
    proposal.decided_at = Some(ns(at(6), 1));
    tx.decide_proposal(&proposal).await.expect("decide");

    let money = Money::parse("10.00", "EUR").expect("money");
    let file = CaseFile::new(b.id, money, "loan", 12, "stock").expect("file");
    let mut case = CreditCase::open(
        CaseId::generate(),
        file,
        staff_id(ORIGINATOR),
        ns(at(10), 501),
    );
    tx.insert_case(&case).await.expect("case");
    let analyst = tx
        .staff_member(&staff_id(ANALYST))
        .await
        .expect("load")
        .expect("analyst")
        .voter_at(at(15))
        .expect("voter");
    case.record_board_resolution(Some(&analyst), "BR-7", case.version, ns(at(15), 321))
        .expect("board resolution");
    // Still in market: the market exit counts as the vote time (ns digits).
    let voter = person.voter_at(ns(at(20), 999_999)).expect("voter");
    assert_eq!(voter.left_market_at, Some(ns(at(20), 999_999)));
    case.cast_first_vote(
        Some(&voter),
        VoteDecision::Decline,
        "no",
        1,
        &facts(),
        ns(at(20), 999_999),
    )
    .expect("vote");
    tx.update_case(&case, 1).await.expect("update");
    let event = audit_event(
        "case.first_vote",
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
    for c in &mut expected_person.competences {
        c.valid_from = micros(c.valid_from);
        c.valid_to = c.valid_to.map(micros);
    }
    let mut expected_case = case.clone();
    expected_case.created_at = micros(case.created_at);
    expected_case.updated_at = micros(case.updated_at);
    for v in &mut expected_case.votes {
        v.cast_at = micros(v.cast_at);
        v.voter.left_market_at = v.voter.left_market_at.map(micros);
    }
    let resolution = expected_case
        .board_resolution
        .as_mut()
        .expect("board resolution");
    resolution.recorded_at = micros(resolution.recorded_at);
    let decision = expected_case.decision.as_mut().expect("decision");
    decision.decided_at = micros(decision.decided_at);
    for v in &mut decision.votes {
        v.cast_at = micros(v.cast_at);
        v.voter.left_market_at = v.voter.left_market_at.map(micros);
    }
    assert_ne!(
        expected_case, case,
        "the fixture has sub-microsecond digits"
    );

    store
        .flush_audit(std::time::Duration::from_secs(10))
        .await
        .expect("flush");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.staff_member(&person.id).await.expect("staff"),
        Some(expected_person)
    );
    let loaded_borrower = tx.borrower(b.id).await.expect("borrower").expect("exists");
    assert_eq!(loaded_borrower.created_at, micros(b.created_at));
    let loaded_group = tx.group(&group.id).await.expect("group").expect("exists");
    assert_eq!(loaded_group.created_at, micros(group.created_at));
    // Membership bounds are stored truncated as well: the join counts from
    // its microsecond on.
    assert_eq!(
        tx.group_of(b.id, micros(joined)).await.expect("group of"),
        Some(group.id.clone())
    );
    assert_eq!(
        tx.group_of(b.id, micros(joined) - chrono::Duration::microseconds(1))
            .await
            .expect("group of"),
        None
    );
    assert_eq!(
        tx.group_members(&group.id, micros(joined))
            .await
            .expect("members"),
        vec![b.id]
    );
    assert_eq!(
        tx.related_parties(&[b.id]).await.expect("related"),
        BTreeSet::from([party.staff_id.clone()])
    );
    let loaded_rules = tx.rule_sets().await.expect("rule sets");
    assert_eq!(loaded_rules.len(), 1);
    assert_eq!(loaded_rules[0].valid_from, micros(rules.valid_from));
    let loaded_proposal = tx
        .proposal(proposal.id)
        .await
        .expect("proposal")
        .expect("exists");
    assert_eq!(loaded_proposal.proposed_at, micros(proposal.proposed_at));
    assert_eq!(loaded_proposal.decided_at, proposal.decided_at.map(micros));
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

// -- segregation of duties, groups, rule sets, change proposals ---------------

fn proposal(kind: ProposalKind, by: &str, proposed_at: Timestamp) -> ChangeProposal {
    ChangeProposal {
        id: uuid::Uuid::new_v4(),
        kind,
        // Nested JSON with a decimal string, unicode and an injection attempt.
        payload: serde_json::json!({
            "staff_id": "ca-9",
            "level": 3,
            "limits": ["250000.00", null, true],
            "note": "Prüfung '); DROP TABLE change_proposals; --",
        }),
        proposed_by: staff_id(by),
        proposed_at,
        status: ProposalStatus::Pending,
        decided_by: None,
        decided_at: None,
    }
}

fn group(id: &str) -> BorrowerGroup {
    BorrowerGroup {
        id: unit_id(id),
        name: format!("Group {id}"),
        created_by: staff_id(ANALYST),
        created_at: at(1),
    }
}

async fn insert_borrowers(store: &dyn Store, n: usize) -> Vec<BorrowerId> {
    let mut tx = store.begin().await.expect("begin");
    let mut ids = Vec::new();
    for i in 0..n {
        let b = borrower(&format!("Borrower {i}"));
        tx.insert_borrower(&b).await.expect("insert borrower");
        ids.push(b.id);
    }
    tx.commit().await.expect("commit borrowers");
    ids
}

/// Money as comparable (currency, minor units) pairs, sorted.
fn amounts(money: &[Money]) -> Vec<(&'static str, i64)> {
    let mut pairs: Vec<_> = money
        .iter()
        .map(|m| (m.currency_code(), m.minor_units()))
        .collect();
    pairs.sort_unstable();
    pairs
}

pub async fn staff_history_appends_and_ids_are_sorted(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let id = staff_id(LOAN_OFFICER);
    let promoted = RoleAssignment {
        role: Role::RiskController,
        valid_from: day(5),
        valid_to: Some(day(50)),
    };
    let grant = CompetenceGrant {
        side: Side::Market,
        level: 3,
        valid_from: day(5),
        valid_to: None,
    };
    let mut tx = store.begin().await.expect("begin");
    tx.add_role_assignment(&id, &promoted).await.expect("role");
    tx.add_competence_grant(&id, &grant).await.expect("grant");
    let second_grant = CompetenceGrant {
        side: Side::Backoffice,
        level: 9,
        valid_from: day(60),
        valid_to: Some(day(70)),
    };
    tx.add_competence_grant(&id, &second_grant)
        .await
        .expect("second grant");
    for err in [
        tx.add_role_assignment(&staff_id("nobody"), &promoted)
            .await
            .expect_err("unknown staff"),
        tx.add_competence_grant(&staff_id("nobody"), &grant)
            .await
            .expect_err("unknown staff"),
    ] {
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    tx.commit().await.expect("commit");

    let mut expected = member(LOAN_OFFICER, MARKET_UNIT, Side::Market, Role::LoanOfficer);
    expected.roles.push(promoted);
    expected.competences.push(grant);
    expected.competences.push(second_grant);
    let mut tx = store.begin_read().await.expect("begin_read");
    let loaded = tx.staff_member(&id).await.expect("load").expect("exists");
    assert_eq!(loaded, expected, "appended in order, earlier history kept");
    assert_eq!(loaded.competence_at(Side::Market, day(10)), 3);
    assert_eq!(loaded.competence_at(Side::Market, day(0)), 1);
    assert_eq!(
        loaded.roles_at(day(10)),
        vec![Role::LoanOfficer, Role::RiskController]
    );
    drop(tx);

    // Levels outside 1..=9 are refused by the schema.
    for level in [0, 10] {
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .add_competence_grant(
                &id,
                &CompetenceGrant {
                    side: Side::Market,
                    level,
                    valid_from: day(1),
                    valid_to: None,
                },
            )
            .await;
        assert!(result.is_err(), "level {level} was stored: {result:?}");
    }

    // staff_ids is sorted in `StaffId` order (byte order), not by a
    // database collation that ignores punctuation or case.
    let mut tx = store.begin().await.expect("begin");
    let extra = ["b_1", "A-1", "a.1", "a-2", "Z9", "a-10", "a1"];
    for id in extra {
        tx.insert_staff(&StaffMember {
            id: staff_id(id),
            status: StaffStatus::Active,
            units: vec![],
            roles: vec![],
            competences: vec![],
        })
        .await
        .expect("insert staff");
    }
    tx.commit().await.expect("commit");
    let mut expected: Vec<StaffId> = extra
        .iter()
        .chain(&[ORIGINATOR, LOAN_OFFICER, EDITOR, ANALYST])
        .map(|id| staff_id(id))
        .collect();
    expected.sort();
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.staff_ids().await.expect("staff ids"), expected);
}

pub async fn borrower_relationship_managers(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut managed = borrower("Managed AG");
    managed.relationship_manager = Some(staff_id(LOAN_OFFICER));
    let mut other = borrower("Other AG");
    other.relationship_manager = Some(staff_id(EDITOR));
    let mut same = borrower("Same Manager AG");
    same.relationship_manager = Some(staff_id(LOAN_OFFICER));
    let unmanaged = borrower("Unmanaged AG");
    let mut tx = store.begin().await.expect("begin");
    for b in [&managed, &other, &same, &unmanaged] {
        tx.insert_borrower(b).await.expect("insert");
    }
    tx.commit().await.expect("commit");

    let mut ghost = borrower("Ghost Manager AG");
    ghost.relationship_manager = Some(staff_id("nobody"));
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_borrower(&ghost)
        .await
        .expect_err("unknown manager");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.borrower(managed.id).await.expect("load"),
        Some(managed.clone())
    );
    assert_eq!(
        tx.borrower(unmanaged.id).await.expect("load"),
        Some(unmanaged.clone())
    );
    let cases: Vec<(Vec<BorrowerId>, Vec<&str>)> = vec![
        (vec![], vec![]),
        (vec![unmanaged.id], vec![]),
        (vec![managed.id], vec![LOAN_OFFICER]),
        (vec![managed.id, same.id], vec![LOAN_OFFICER]),
        (
            vec![managed.id, other.id, unmanaged.id, BorrowerId::generate()],
            vec![LOAN_OFFICER, EDITOR],
        ),
    ];
    for (borrowers, expected) in cases {
        let expected: BTreeSet<StaffId> = expected.into_iter().map(staff_id).collect();
        assert_eq!(
            tx.relationship_managers(&borrowers)
                .await
                .expect("managers"),
            expected,
            "{borrowers:?}"
        );
        let context = tx.vote_context(&borrowers).await.expect("vote context");
        assert_eq!(context.relationship_managers, expected, "{borrowers:?}");
    }
}

pub async fn groups_round_trip_and_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let g = BorrowerGroup {
        name: "Müller Holding 'x'; --".into(),
        ..group("mueller-holding")
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&g).await.expect("insert group");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_group(&g).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let orphan = BorrowerGroup {
        created_by: staff_id("nobody"),
        ..group("orphan")
    };
    let err = tx.insert_group(&orphan).await.expect_err("unknown creator");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.group(&g.id).await.expect("load"), Some(g));
    assert_eq!(tx.group(&unit_id("orphan")).await.expect("load"), None);
}

pub async fn group_memberships_are_dated_and_half_open(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 3).await;
    let (b1, b2, b3) = (borrowers[0], borrowers[1], borrowers[2]);
    let (g1, g2) = (group("group-one"), group("group-two"));
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&g1).await.expect("g1");
    tx.insert_group(&g2).await.expect("g2");
    // b1: g1 from day 1, g2 from day 5, no group from day 9.
    tx.set_group_membership(b1, Some(&g1.id), day(1))
        .await
        .expect("b1 joins g1");
    tx.set_group_membership(b1, Some(&g2.id), day(5))
        .await
        .expect("b1 moves to g2");
    tx.set_group_membership(b1, None, day(9))
        .await
        .expect("b1 leaves");
    // b2: g1 from day 3, running. b3: g1 from day 1, left at day 3.
    tx.set_group_membership(b2, Some(&g1.id), day(3))
        .await
        .expect("b2 joins g1");
    tx.set_group_membership(b3, Some(&g1.id), day(1))
        .await
        .expect("b3 joins g1");
    tx.set_group_membership(b3, None, day(3))
        .await
        .expect("b3 leaves");
    // Leaving without a membership changes nothing.
    tx.set_group_membership(b3, None, day(4))
        .await
        .expect("leave again");
    tx.commit().await.expect("commit");

    let us = chrono::Duration::microseconds(1);
    let mut tx = store.begin_read().await.expect("begin_read");
    let group_of = [
        (b1, day(0), None),
        (b1, day(1) - us, None),
        (b1, day(1), Some(&g1.id)),
        (b1, day(5) - us, Some(&g1.id)),
        (b1, day(5), Some(&g2.id)),
        (b1, day(9) - us, Some(&g2.id)),
        (b1, day(9), None),
        (b1, day(100), None),
        (b2, day(2), None),
        (b2, day(3), Some(&g1.id)),
        (b2, day(1000), Some(&g1.id)),
        (b3, day(2), Some(&g1.id)),
        (b3, day(3), None),
        (BorrowerId::generate(), day(3), None),
    ];
    for (b, when, expected) in group_of {
        assert_eq!(
            tx.group_of(b, when).await.expect("group of").as_ref(),
            expected,
            "group of {b} at {when}"
        );
    }
    let sorted = |mut ids: Vec<BorrowerId>| {
        ids.sort();
        ids
    };
    let members = [
        (&g1.id, day(0), vec![]),
        (&g1.id, day(1), sorted(vec![b1, b3])),
        (&g1.id, day(3), sorted(vec![b1, b2])),
        (&g1.id, day(5), vec![b2]),
        (&g2.id, day(5), vec![b1]),
        (&g2.id, day(9), vec![]),
        (&g1.id, day(50), vec![b2]),
    ];
    for (g, when, expected) in members {
        assert_eq!(
            tx.group_members(g, when).await.expect("members"),
            expected,
            "members of {g} at {when}"
        );
    }
    assert!(
        tx.group_members(&unit_id("no-group"), day(5))
            .await
            .expect("members")
            .is_empty()
    );
    drop(tx);

    // Unknown group or borrower: NotFound, nothing changes.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .set_group_membership(b2, Some(&unit_id("no-group")), day(20))
        .await
        .expect_err("unknown group");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    for target in [Some(&g1.id), None] {
        let mut tx = store.begin().await.expect("begin");
        let err = tx
            .set_group_membership(BorrowerId::generate(), target, day(20))
            .await
            .expect_err("unknown borrower");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    // History only grows forward: a change before the running membership
    // started, or before a closed one ended, is refused.
    for (b, when) in [(b2, day(2)), (b1, day(8))] {
        let mut tx = store.begin().await.expect("begin");
        let err = tx
            .set_group_membership(b, Some(&g2.id), when)
            .await
            .expect_err("back-dated change");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.group_of(b2, day(20)).await.expect("group of"),
        Some(g1.id.clone())
    );
    drop(tx);

    // A move at the same instant twice: the first interval is empty.
    let mut tx = store.begin().await.expect("begin");
    tx.set_group_membership(b2, Some(&g2.id), day(30))
        .await
        .expect("move");
    tx.set_group_membership(b2, Some(&g1.id), day(30))
        .await
        .expect("move back at once");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.group_of(b2, day(30)).await.expect("group of"),
        Some(g1.id.clone())
    );
    assert!(
        tx.group_members(&g2.id, day(30))
            .await
            .expect("members")
            .is_empty()
    );
}

/// Two membership changes for one borrower at once: both land, one after the
/// other, and exactly one membership is running afterwards.
pub async fn concurrent_membership_changes_keep_one_running(store: Arc<dyn Store>) {
    seed_org(store.as_ref()).await;
    let b = insert_borrowers(store.as_ref(), 1).await[0];
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&group("group-a")).await.expect("group a");
    tx.insert_group(&group("group-b")).await.expect("group b");
    tx.commit().await.expect("commit");

    let mut first = store.begin().await.expect("begin");
    first
        .set_group_membership(b, Some(&unit_id("group-a")), day(1))
        .await
        .expect("first change");
    let other = store.clone();
    let second = tokio::spawn(async move {
        // Waits for the first writer (SQLite: the writer connection;
        // PostgreSQL: the borrower's row lock).
        let mut tx = other.begin().await.expect("begin");
        tx.set_group_membership(b, Some(&unit_id("group-b")), day(2))
            .await
            .expect("second change");
        tx.commit().await.expect("commit second");
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.expect("commit first");
    second.await.expect("second task");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.group_of(b, day(1)).await.expect("group of"),
        Some(unit_id("group-a"))
    );
    assert_eq!(
        tx.group_of(b, day(3)).await.expect("group of"),
        Some(unit_id("group-b"))
    );
    assert!(
        tx.group_members(&unit_id("group-a"), day(3))
            .await
            .expect("members")
            .is_empty()
    );
}

pub async fn related_parties_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 3).await;
    let party = |b: BorrowerId, who: &str| RelatedParty {
        borrower_id: b,
        staff_id: staff_id(who),
        relation: "managing director's spouse".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(5),
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_related_party(&party(borrowers[0], EDITOR))
        .await
        .expect("party");
    tx.insert_related_party(&party(borrowers[0], ORIGINATOR))
        .await
        .expect("party");
    tx.insert_related_party(&party(borrowers[1], EDITOR))
        .await
        .expect("party");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_related_party(&party(borrowers[0], EDITOR))
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    for bad in [
        party(BorrowerId::generate(), EDITOR),
        party(borrowers[2], "nobody"),
        RelatedParty {
            recorded_by: staff_id("nobody"),
            ..party(borrowers[2], EDITOR)
        },
    ] {
        let mut tx = store.begin().await.expect("begin");
        let err = tx.insert_related_party(&bad).await.expect_err("unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    let mut tx = store.begin_read().await.expect("begin_read");
    let cases: Vec<(Vec<BorrowerId>, Vec<&str>)> = vec![
        (vec![], vec![]),
        (vec![borrowers[2]], vec![]),
        (vec![borrowers[1]], vec![EDITOR]),
        (vec![borrowers[0]], vec![EDITOR, ORIGINATOR]),
        (
            vec![borrowers[0], borrowers[1], borrowers[2]],
            vec![EDITOR, ORIGINATOR],
        ),
    ];
    for (list, expected) in cases {
        let expected: BTreeSet<StaffId> = expected.into_iter().map(staff_id).collect();
        assert_eq!(
            tx.related_parties(&list).await.expect("related"),
            expected,
            "{list:?}"
        );
        let context = tx.vote_context(&list).await.expect("vote context");
        assert_eq!(context.related_parties, expected, "{list:?}");
    }
}

pub async fn approved_amounts_and_open_cases(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 3).await;
    let (a, b, c) = (borrowers[0], borrowers[1], borrowers[2]);
    let cases = [
        (a, "12345678901234.56", "EUR", CaseStatus::Approved),
        (a, "5", "JPY", CaseStatus::Approved),
        (a, "7.00", "EUR", CaseStatus::Declined),
        (a, "8.00", "EUR", CaseStatus::Draft),
        (a, "9.00", "EUR", CaseStatus::AwaitingSecondVote),
        (a, "10.00", "EUR", CaseStatus::Escalated),
        (a, "11.00", "EUR", CaseStatus::Returned),
        (b, "2.50", "EUR", CaseStatus::Approved),
        (b, "3.00", "EUR", CaseStatus::Draft),
    ];
    let mut ids = Vec::new();
    for (borrower_id, amount, currency, status) in cases {
        let mut case = new_case(borrower_id, amount, currency);
        case.status = status;
        insert_case(store, &case).await;
        ids.push(case.id);
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(tx.approved_amounts(&[]).await.expect("none").is_empty());
    assert!(tx.approved_amounts(&[c]).await.expect("c").is_empty());
    assert_eq!(
        amounts(&tx.approved_amounts(&[a]).await.expect("a")),
        vec![("EUR", 1_234_567_890_123_456), ("JPY", 5)]
    );
    assert_eq!(
        amounts(&tx.approved_amounts(&[a, b, c]).await.expect("a b c")),
        vec![("EUR", 250), ("EUR", 1_234_567_890_123_456), ("JPY", 5)]
    );
    for list in [vec![], vec![c], vec![a], vec![a, b, c]] {
        let context = tx.vote_context(&list).await.expect("vote context");
        assert_eq!(
            context.approved_amounts,
            tx.approved_amounts(&list).await.expect("approved"),
            "read together as alone, in the same order: {list:?}"
        );
    }

    let sorted = |mut ids: Vec<CaseId>| {
        ids.sort();
        ids
    };
    assert!(tx.open_cases_of(&[]).await.expect("none").is_empty());
    assert!(tx.open_cases_of(&[c]).await.expect("c").is_empty());
    let open_a = sorted(ids[3..7].to_vec());
    assert_eq!(tx.open_cases_of(&[a]).await.expect("a"), open_a);
    let open_all = sorted(vec![ids[3], ids[4], ids[5], ids[6], ids[8]]);
    assert_eq!(
        sorted(tx.open_cases_of(&[c, b, a]).await.expect("all")),
        open_all
    );
}

pub async fn rule_sets_are_versioned(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(tx.rule_sets().await.expect("rule sets").is_empty());
    drop(tx);

    let mut v2 = RuleSet::initial();
    v2.version = 2;
    v2.valid_from = day(10);
    v2.parameters.cooling_off_months = 3;
    v2.parameters.divergence = DivergencePolicy::Decline;
    v2.parameters.single_vote_below = Some("12345.67".parse().expect("decimal"));
    v2.parameters.competence_order.levels[0].up_to = Some("250000.005".parse().expect("decimal"));
    let v1 = RuleSet::initial();
    let mut tx = store.begin().await.expect("begin");
    // Stored out of order, listed by version.
    tx.insert_rule_set(&v2).await.expect("v2");
    tx.insert_rule_set(&v1).await.expect("v1");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let again = RuleSet {
        valid_from: day(20),
        ..v2.clone()
    };
    let err = tx.insert_rule_set(&again).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    let stored = tx.rule_sets().await.expect("rule sets");
    assert_eq!(stored, vec![v1, v2.clone()]);
    assert_eq!(
        stored[1]
            .parameters
            .single_vote_below
            .map(|d| d.to_string()),
        Some("12345.67".to_owned()),
        "amounts are exact"
    );
    assert_eq!(
        creditops_domain::rules::in_force(&stored, day(10)).map(|r| r.version),
        Some(2)
    );
}

pub async fn proposals_round_trip_and_list_newest_first(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let kinds = [
        ProposalKind::RoleAssignment,
        ProposalKind::CompetenceGrant,
        ProposalKind::RuleSet,
    ];
    let proposals: Vec<ChangeProposal> = kinds
        .iter()
        .enumerate()
        .map(|(n, kind)| proposal(*kind, ORIGINATOR, at(100 + 10 * n as i64)))
        .collect();
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.proposal(proposals[0].id).await.expect("none"), None);
    for p in &proposals {
        tx.insert_proposal(p).await.expect("insert");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_proposal(&proposals[0])
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_proposal(&proposal(ProposalKind::RuleSet, "nobody", at(1)))
        .await
        .expect_err("unknown proposer");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Decide the middle one.
    let mut decided = proposals[1].clone();
    decided.status = ProposalStatus::Approved;
    decided.decided_by = Some(staff_id(ANALYST));
    decided.decided_at = Some(at(500));
    let mut tx = store.begin().await.expect("begin");
    tx.decide_proposal(&decided).await.expect("decide");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    for p in [&proposals[0], &decided, &proposals[2]] {
        assert_eq!(tx.proposal(p.id).await.expect("load").as_ref(), Some(p));
    }
    let ids = |list: Vec<ChangeProposal>| list.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(tx.proposals(None).await.expect("all")),
        vec![proposals[2].id, proposals[1].id, proposals[0].id],
        "newest first"
    );
    assert_eq!(
        ids(tx
            .proposals(Some(ProposalStatus::Pending))
            .await
            .expect("pending")),
        vec![proposals[2].id, proposals[0].id]
    );
    assert_eq!(
        tx.proposals(Some(ProposalStatus::Approved))
            .await
            .expect("approved"),
        vec![decided]
    );
    assert!(
        tx.proposals(Some(ProposalStatus::Rejected))
            .await
            .expect("rejected")
            .is_empty()
    );
}

pub async fn a_proposal_is_decided_once_by_another_person(store: Arc<dyn Store>) {
    seed_org(store.as_ref()).await;
    let pending = proposal(ProposalKind::CompetenceGrant, ORIGINATOR, at(1));
    let mut tx = store.begin().await.expect("begin");
    tx.insert_proposal(&pending).await.expect("insert");
    tx.commit().await.expect("commit");
    let decision = |status: ProposalStatus, by: &str, when: i64| ChangeProposal {
        status,
        decided_by: Some(staff_id(by)),
        decided_at: Some(at(when)),
        ..pending.clone()
    };

    // The proposer cannot decide their own proposal (S3), whatever the caller checked.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_proposal(&decision(ProposalStatus::Approved, ORIGINATOR, 2))
        .await;
    assert!(result.is_err(), "self-approval was stored: {result:?}");
    drop(tx);
    // A "decision" that decides nothing is a caller bug.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_proposal(&ChangeProposal {
            decided_at: None,
            ..decision(ProposalStatus::Approved, ANALYST, 2)
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    let result = tx
        .decide_proposal(&decision(ProposalStatus::Pending, ANALYST, 2))
        .await;
    assert!(result.is_err(), "{result:?}");
    drop(tx);
    // Unknown proposal.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .decide_proposal(&ChangeProposal {
            id: uuid::Uuid::new_v4(),
            ..decision(ProposalStatus::Rejected, ANALYST, 2)
        })
        .await
        .expect_err("unknown proposal");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Two deciders at once: the first wins, the second gets Conflict.
    let mut first = store.begin().await.expect("begin");
    let approved = decision(ProposalStatus::Approved, ANALYST, 3);
    first
        .decide_proposal(&approved)
        .await
        .expect("first decides");
    let other = store.clone();
    let rejected = decision(ProposalStatus::Rejected, EDITOR, 4);
    let second = tokio::spawn(async move {
        let mut tx = other.begin().await.expect("begin");
        tx.decide_proposal(&rejected).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.expect("commit");
    let err = second
        .await
        .expect("second task")
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // Deciding again later: Conflict; the first decision stands.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .decide_proposal(&decision(ProposalStatus::Rejected, EDITOR, 5))
        .await
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.proposal(pending.id).await.expect("load"), Some(approved));
}

/// Every new case and vote field round-trips, set and unset, through insert
/// and update.
pub async fn case_segregation_fields_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "1000000.00", "EUR");
    case.status = CaseStatus::Escalated;
    case.editors = BTreeSet::from([staff_id(EDITOR), staff_id(LOAN_OFFICER)]);
    case.round = 3;
    case.escalation_level = Some(9);
    case.related_party = true;
    case.board_resolution = Some(BoardResolution {
        reference: "Board resolution 2026/17 'x'".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(12),
        file_version: 1,
        content_hash: case.content_hash(),
    });
    let officer = voter(store, LOAN_OFFICER, at(11)).await;
    assert_eq!(officer.competence_level, 1);
    assert_eq!(officer.left_market_at, Some(at(11)));
    let mut vote = creditops_domain::Vote {
        stage: creditops_domain::VoteStage::First,
        voter: Voter {
            competence_level: 9,
            left_market_at: Some(day(-400)),
            ..officer
        },
        decision: VoteDecision::Approve,
        rationale: "round three".into(),
        file_version: 1,
        content_hash: case.content_hash(),
        cast_at: at(13),
        round: 3,
        required_level: 9,
        checks: vec![],
    };
    case.votes.push(vote.clone());
    vote.voter.left_market_at = None;
    vote.voter.competence_level = 0;
    vote.required_level = 0;
    vote.round = 0;
    case.votes.push(vote);
    insert_case(store, &case).await;
    assert_eq!(load_case(store, case.id).await, case);

    // Everything back to unset in an update.
    let before = case.revision;
    case.revision += 1;
    case.status = CaseStatus::Returned;
    case.editors.clear();
    case.escalation_level = None;
    case.related_party = false;
    case.board_resolution = None;
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);
}

/// The V5 path through the domain: divergent votes escalate the case one
/// level up; the escalated round is voted by new, more competent voters; a
/// related-party credit needs the board resolution (V11).
pub async fn escalation_round_trips_through_the_store(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    // A senior market voter and a senior back-office voter who left market a
    // year ago (outside the cooling-off period, S5); both level 2.
    let mut senior_market = member("lo-senior", MARKET_UNIT, Side::Market, Role::LoanOfficer);
    senior_market.competences[0].level = 2;
    let mut senior_backoffice = member(
        "ca-senior",
        BACKOFFICE_UNIT,
        Side::Backoffice,
        Role::CreditAnalyst,
    );
    senior_backoffice.competences[0].level = 2;
    senior_backoffice.units = vec![
        UnitAssignment {
            unit_id: unit_id(MARKET_UNIT),
            side: Side::Market,
            valid_from: day(-800),
            valid_to: Some(day(-365)),
        },
        UnitAssignment {
            unit_id: unit_id(BACKOFFICE_UNIT),
            side: Side::Backoffice,
            valid_from: day(-365),
            valid_to: None,
        },
    ];
    let mut tx = store.begin().await.expect("begin");
    tx.insert_staff(&senior_market)
        .await
        .expect("senior market");
    tx.insert_staff(&senior_backoffice)
        .await
        .expect("senior back office");
    tx.commit().await.expect("commit");

    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "200000.00", "EUR");
    insert_case(store, &case).await;
    let mut facts = facts();
    facts.related_parties = BTreeSet::from([staff_id(EDITOR)]);

    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "good risk",
        1,
        &facts,
        at(20),
    )
    .expect("first vote");
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);

    let analyst = voter(store, ANALYST, at(30)).await;
    let before = case.revision;
    case.cast_second_vote(
        Some(&analyst),
        VoteDecision::Decline,
        "too risky",
        1,
        &facts,
        at(30),
    )
    .expect("second vote");
    assert_eq!(case.status, CaseStatus::Escalated);
    save_case(store, &case, before).await;
    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.round, 1);
    assert_eq!(loaded.escalation_level, Some(2));
    assert!(loaded.related_party);
    let mut tx = store.begin_read().await.expect("begin_read");
    let escalated = tx
        .cases_by_status(CaseStatus::Escalated, None, 10)
        .await
        .expect("escalated");
    assert_eq!(
        escalated.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![case.id]
    );
    assert_eq!(
        tx.open_cases_of(&[borrower_id]).await.expect("open"),
        vec![case.id]
    );
    drop(tx);

    let before = case.revision;
    case.record_board_resolution(Some(&analyst), "BR-2026-17", case.version, at(35))
        .expect("board resolution");
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);

    let senior = voter(store, "lo-senior", at(40)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&senior),
        VoteDecision::Approve,
        "approve at level 2",
        1,
        &facts,
        at(40),
    )
    .expect("escalated first vote");
    save_case(store, &case, before).await;
    let senior_bo = voter(store, "ca-senior", at(50)).await;
    assert_eq!(senior_bo.left_market_at, Some(day(-365)));
    let before = case.revision;
    case.cast_second_vote(
        Some(&senior_bo),
        VoteDecision::Approve,
        "agree at level 2",
        1,
        &facts,
        at(50),
    )
    .expect("escalated second vote");
    save_case(store, &case, before).await;

    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.status, CaseStatus::Approved);
    let rounds: Vec<(u32, u8, u8)> = loaded
        .votes
        .iter()
        .map(|v| (v.round, v.required_level, v.voter.competence_level))
        .collect();
    assert_eq!(rounds, vec![(0, 1, 1), (0, 1, 1), (1, 2, 2), (1, 2, 2)]);
    assert_eq!(loaded.votes[3].voter.left_market_at, Some(day(-365)));
    let decision = loaded.decision.as_ref().expect("decision");
    assert_eq!(decision.level, 2);
    assert!(decision.flags.contains(&DecisionFlag::Escalated));
    assert!(decision.flags.contains(&DecisionFlag::RelatedParty));
    assert_eq!(decision.votes.len(), 4);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        amounts(&tx.approved_amounts(&[borrower_id]).await.expect("approved")),
        vec![("EUR", 20_000_000)]
    );
    assert!(
        tx.open_cases_of(&[borrower_id])
            .await
            .expect("open")
            .is_empty()
    );
}

// -- risk control: limits, capital, liquidity, exposures, breaches ------------

fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

fn limit_version(
    subject: LimitSubject,
    version: i64,
    amount: &str,
    proposed_at: Timestamp,
) -> LimitVersion {
    LimitVersion {
        id: uuid::Uuid::new_v4(),
        subject,
        version,
        amount: dec(amount),
        tolerance_percent: dec("10"),
        reason: "annual review 'x'); DROP TABLE limit_versions; --".into(),
        proposed_by: staff_id(LOAN_OFFICER),
        proposed_at,
        status: LimitStatus::Pending,
        decided_by: None,
        decided_at: None,
    }
}

fn limit_decision(
    limit: &LimitVersion,
    status: LimitStatus,
    by: &str,
    when: Timestamp,
) -> LimitVersion {
    LimitVersion {
        status,
        decided_by: Some(staff_id(by)),
        decided_at: Some(when),
        ..limit.clone()
    }
}

/// Proposes every version in one transaction.
async fn propose_limits(store: &dyn Store, limits: &[&LimitVersion]) {
    let mut tx = store.begin().await.expect("begin");
    for limit in limits {
        tx.insert_limit_version(limit)
            .await
            .expect("insert limit version");
    }
    tx.commit().await.expect("commit limit versions");
}

async fn decide_limit(store: &dyn Store, decided: &LimitVersion) {
    let mut tx = store.begin().await.expect("begin");
    tx.decide_limit_version(decided)
        .await
        .expect("decide limit version");
    tx.commit().await.expect("commit decision");
}

fn capital(version: i64, tier1: &str) -> Capital {
    Capital {
        version,
        tier1: dec(tier1),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(version),
    }
}

fn liquidity(version: i64, hqla: &str, floor: &str) -> LiquidityPosition {
    LiquidityPosition {
        version,
        hqla: dec(hqla),
        outflows_30d: dec("800000.01"),
        inflows_30d: dec("0"),
        floor_percent: dec(floor),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(version),
    }
}

/// An active reservation of `amount` for a new case of `borrower`.
async fn reserve(
    store: &dyn Store,
    borrower: BorrowerId,
    amount: &str,
    expires_at: Timestamp,
) -> Reservation {
    let case = new_case(borrower, "1000.00", "EUR");
    insert_case(store, &case).await;
    let reservation = Reservation {
        case_id: case.id,
        borrower,
        amount: dec(amount),
        status: ReservationStatus::Active,
        reserved_at: at(0),
        expires_at,
        closed_at: None,
        closed_by: None,
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_reservation(&reservation)
        .await
        .expect("insert reservation");
    tx.commit().await.expect("commit reservation");
    reservation
}

fn closed(
    reservation: &Reservation,
    status: ReservationStatus,
    when: Timestamp,
    by: Option<&str>,
) -> Reservation {
    Reservation {
        status,
        closed_at: Some(when),
        closed_by: by.map(staff_id),
        ..reservation.clone()
    }
}

async fn close_reservation(store: &dyn Store, closing: &Reservation) {
    let mut tx = store.begin().await.expect("begin");
    tx.close_reservation(closing)
        .await
        .expect("close reservation");
    tx.commit().await.expect("commit closing");
}

async fn import(store: &dyn Store, balance: &ImportedBalance) -> ImportEffect {
    let mut tx = store.begin().await.expect("begin");
    let effect = tx.import_balance(balance).await.expect("import balance");
    tx.commit().await.expect("commit import");
    effect
}

fn balance(source_id: &str, borrower: BorrowerId, amount: &str) -> ImportedBalance {
    ImportedBalance {
        source_id: source_id.to_owned(),
        borrower,
        amount: dec(amount),
        as_of: day(-1),
    }
}

fn breach(detected_at: Timestamp, severity: Severity) -> Breach {
    Breach {
        id: uuid::Uuid::new_v4(),
        subject: "sector:energy".into(),
        rule: RuleId::R3,
        check: "sector_limit".into(),
        limit: dec("1000000.00"),
        usage: dec("1250000.50"),
        amount_over: dec("250000.50"),
        severity,
        cause: "approval of case 'x'; --".into(),
        owner: "risk-control".into(),
        detected_at,
        resolved_at: None,
    }
}

/// Sorted by borrower, so the comparison does not depend on the row order.
async fn exposures_at(
    store: &dyn Store,
    scope: ExposureScope,
    when: Timestamp,
) -> Vec<BorrowerExposure> {
    let mut tx = store.begin_read().await.expect("begin_read");
    let mut rows = tx.exposures(&scope, when).await.expect("exposures");
    rows.sort_by_key(|row| row.borrower);
    rows
}

async fn total_at(store: &dyn Store, scope: ExposureScope, when: Timestamp) -> Decimal {
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.exposure_total(&scope, when)
        .await
        .expect("exposure total")
}

pub async fn limit_versions_need_four_eyes(store: Arc<dyn Store>) {
    seed_org(store.as_ref()).await;
    let subject = LimitSubject::Sector("energy".into());
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.latest_limit_version(&subject).await.expect("latest"),
        0,
        "no version yet"
    );
    drop(tx);
    let mut v1 = limit_version(subject.clone(), 1, "12345678901234.56", at(10));
    v1.tolerance_percent = dec("12.5");
    propose_limits(store.as_ref(), &[&v1]).await;

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.limit_version(v1.id).await.expect("load"),
        Some(v1.clone())
    );
    assert_eq!(
        tx.limit_version(uuid::Uuid::new_v4()).await.expect("load"),
        None
    );
    assert_eq!(tx.latest_limit_version(&subject).await.expect("latest"), 1);
    assert_eq!(
        tx.latest_limit_version(&LimitSubject::Sector("other".into()))
            .await
            .expect("latest"),
        0
    );
    // The same version of the same subject again: somebody else proposed first.
    let err = tx
        .insert_limit_version(&limit_version(subject.clone(), 1, "5.00", at(11)))
        .await
        .expect_err("duplicate version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let mut stranger = limit_version(subject.clone(), 2, "5.00", at(11));
    stranger.proposed_by = staff_id("nobody");
    let err = tx
        .insert_limit_version(&stranger)
        .await
        .expect_err("unknown proposer");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    // A version is stored as a proposal, never decided on the way in.
    let mut tx = store.begin().await.expect("begin");
    let born_approved = limit_decision(
        &limit_version(subject.clone(), 2, "5.00", at(11)),
        LimitStatus::Approved,
        ANALYST,
        at(12),
    );
    let result = tx.insert_limit_version(&born_approved).await;
    assert!(result.is_err(), "stored a decided proposal: {result:?}");
    drop(tx);

    // The proposer cannot approve their own limit (R8), whatever the caller checked.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_limit_version(&limit_decision(
            &v1,
            LimitStatus::Approved,
            LOAN_OFFICER,
            at(20),
        ))
        .await;
    assert!(result.is_err(), "self-approval was stored: {result:?}");
    drop(tx);
    // Decisions that decide nothing are caller bugs; unknown versions are not found.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_limit_version(&limit_decision(&v1, LimitStatus::Pending, ANALYST, at(20)))
        .await;
    assert!(result.is_err(), "{result:?}");
    let result = tx
        .decide_limit_version(&LimitVersion {
            decided_at: None,
            ..limit_decision(&v1, LimitStatus::Approved, ANALYST, at(20))
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    let err = tx
        .decide_limit_version(&LimitVersion {
            id: uuid::Uuid::new_v4(),
            ..limit_decision(&v1, LimitStatus::Approved, ANALYST, at(20))
        })
        .await
        .expect_err("unknown version");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Two deciders at once: the first wins, the second gets Conflict.
    let approved = limit_decision(&v1, LimitStatus::Approved, ANALYST, at(20));
    let mut first = store.begin().await.expect("begin");
    first
        .decide_limit_version(&approved)
        .await
        .expect("first decides");
    let other = store.clone();
    let rejected = limit_decision(&v1, LimitStatus::Rejected, EDITOR, at(21));
    let second = tokio::spawn(async move {
        let mut tx = other.begin().await.expect("begin");
        tx.decide_limit_version(&rejected).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.expect("commit");
    let err = second
        .await
        .expect("second task")
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Deciding again later: Conflict; the first decision stands.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .decide_limit_version(&limit_decision(&v1, LimitStatus::Rejected, EDITOR, at(22)))
        .await
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    // Listing: oldest proposal first (ties by id), narrowed by status and subject.
    let country = LimitSubject::Country("FR".into());
    let borrower = LimitSubject::Borrower(BorrowerId::generate());
    let v2 = limit_version(subject.clone(), 2, "7.10", at(30));
    let fr1 = limit_version(country.clone(), 1, "100", at(5));
    let b1 = limit_version(borrower.clone(), 1, "0", at(30));
    propose_limits(store.as_ref(), &[&v2, &fr1, &b1]).await;
    let rejected_fr1 = limit_decision(&fr1, LimitStatus::Rejected, ANALYST, at(40));
    decide_limit(store.as_ref(), &rejected_fr1).await;

    let mut tx = store.begin_read().await.expect("begin_read");
    let mut same_time = vec![v2.clone(), b1.clone()];
    same_time.sort_by_key(|l| l.id);
    let mut all = vec![rejected_fr1.clone(), approved.clone()];
    all.extend(same_time.clone());
    assert_eq!(tx.limit_versions(None, None).await.expect("all"), all);
    assert_eq!(
        tx.limit_versions(Some(LimitStatus::Pending), None)
            .await
            .expect("pending"),
        same_time
    );
    assert_eq!(
        tx.limit_versions(None, Some(&subject))
            .await
            .expect("energy"),
        vec![approved.clone(), v2.clone()]
    );
    assert_eq!(
        tx.limit_versions(Some(LimitStatus::Approved), Some(&subject))
            .await
            .expect("approved energy"),
        vec![approved]
    );
    assert_eq!(
        tx.limit_versions(Some(LimitStatus::Rejected), Some(&borrower))
            .await
            .expect("rejected borrower"),
        vec![]
    );
    assert_eq!(
        tx.limit_versions(None, Some(&borrower))
            .await
            .expect("borrower"),
        vec![b1]
    );
    assert_eq!(tx.latest_limit_version(&subject).await.expect("latest"), 2);
}

pub async fn limits_in_force_are_the_highest_approved_versions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower = LimitSubject::Borrower(BorrowerId::generate());
    let group = LimitSubject::Group("acme".into());
    let sector = LimitSubject::Sector("energy".into());
    let country = LimitSubject::Country("FR".into());
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(tx.limits_in_force(None).await.expect("none").is_empty());
    drop(tx);

    let energy: Vec<LimitVersion> = ["100.00", "200.00", "300.00", "400.00"]
        .iter()
        .zip(1..)
        .map(|(amount, v)| limit_version(sector.clone(), v, amount, at(v)))
        .collect();
    let mut fr1 = limit_version(country.clone(), 1, "50.5", at(1));
    fr1.tolerance_percent = dec("0");
    let fr2 = limit_version(country.clone(), 2, "60", at(2));
    let acme1 = limit_version(group.clone(), 1, "70", at(1));
    let b1 = limit_version(borrower.clone(), 1, "80", at(1));
    let mut b2 = limit_version(borrower.clone(), 2, "0.01", at(2));
    b2.tolerance_percent = dec("2.75");
    let mut all: Vec<&LimitVersion> = energy.iter().collect();
    all.extend([&fr1, &fr2, &acme1, &b1, &b2]);
    propose_limits(store, &all).await;

    // Energy: v2 approved before v1 -- the highest version is in force, not
    // the latest decision; v3 pending and v4 rejected do not count.
    for (limit, status) in [
        (&energy[1], LimitStatus::Approved),
        (&energy[0], LimitStatus::Approved),
        (&energy[3], LimitStatus::Rejected),
        (&fr1, LimitStatus::Approved),
        (&b1, LimitStatus::Rejected),
        (&b2, LimitStatus::Approved),
    ] {
        decide_limit(store, &limit_decision(limit, status, ANALYST, at(100))).await;
    }

    let mut tx = store.begin_read().await.expect("begin_read");
    let mut expected = vec![b2.limit(), energy[1].limit(), fr1.limit()];
    expected.sort_by(|a, b| a.subject.cmp(&b.subject));
    let in_force = tx.limits_in_force(None).await.expect("all");
    assert_eq!(in_force, expected);
    assert_eq!(in_force[1].amount, dec("200"));
    assert_eq!(in_force[0].tolerance_percent, dec("2.75"));
    assert_eq!(
        tx.limits_in_force(Some(&[
            sector.clone(),
            group.clone(),
            LimitSubject::Country("DE".into()),
            sector.clone(),
        ]))
        .await
        .expect("some"),
        vec![energy[1].limit()],
        "only the subjects asked for, each once; pending-only subjects have no limit"
    );
    assert_eq!(
        tx.limits_in_force(Some(&[country.clone(), borrower.clone()]))
            .await
            .expect("some"),
        vec![b2.limit(), fr1.limit()]
    );
    assert!(
        tx.limits_in_force(Some(&[]))
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(tx.latest_limit_version(&sector).await.expect("latest"), 4);
    assert_eq!(tx.latest_limit_version(&group).await.expect("latest"), 1);
}

pub async fn capital_and_liquidity_are_versioned(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.latest_capital().await.expect("capital"), None);
    assert_eq!(tx.latest_liquidity().await.expect("liquidity"), None);
    drop(tx);

    let c1 = capital(1, "1000000.00");
    let c2 = capital(2, "12345678901234.56");
    let l1 = liquidity(1, "5000000", "110");
    let l2 = liquidity(2, "4000000.99", "112.5");
    let mut tx = store.begin().await.expect("begin");
    // Stored out of order: the highest version is the latest.
    tx.insert_capital(&c2).await.expect("capital 2");
    tx.insert_capital(&c1).await.expect("capital 1");
    tx.insert_liquidity(&l2).await.expect("liquidity 2");
    tx.insert_liquidity(&l1).await.expect("liquidity 1");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_capital(&capital(2, "1.00"))
        .await
        .expect_err("duplicate capital version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_liquidity(&liquidity(1, "1.00", "100"))
        .await
        .expect_err("duplicate liquidity version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    let latest = tx.latest_capital().await.expect("capital");
    assert_eq!(latest, Some(c2));
    assert_eq!(
        latest.map(|c| c.tier1.to_string()),
        Some("12345678901234.56".to_owned()),
        "amounts are exact"
    );
    let latest = tx.latest_liquidity().await.expect("liquidity");
    assert_eq!(latest, Some(l2));
    assert_eq!(
        latest.map(|l| (l.outflows_30d, l.floor_percent)),
        Some((dec("800000.01"), dec("112.5")))
    );
}

/// Every borrower in scope is a row, also without any exposure; reserved
/// counts active reservations not expired at `at`, outstanding consumed
/// reservations plus imported balances; the group is the one at `at`.
pub async fn exposures_cover_every_borrower_in_scope(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut tx = store.begin().await.expect("begin");
    let make = |name: &str, country: &str, sector: &str, institution: bool| {
        let mut b = borrower(name);
        b.country = country.into();
        b.sector = sector.into();
        b.institution = institution;
        b
    };
    let a = make("A", "DE", "manufacturing", false);
    let b = make("B Bank", "DE", "energy", true);
    let c = make("C", "FR", "energy", false);
    let d = make("D", "FR", "manufacturing", false);
    for borrower in [&a, &b, &c, &d] {
        tx.insert_borrower(borrower).await.expect("borrower");
    }
    tx.insert_group(&group("acme")).await.expect("acme");
    tx.insert_group(&group("beta")).await.expect("beta");
    // A is in acme during [100 s, 300 s); B is in beta from 50 s on.
    tx.set_group_membership(a.id, Some(&unit_id("acme")), at(100))
        .await
        .expect("a joins");
    tx.set_group_membership(a.id, None, at(300))
        .await
        .expect("a leaves");
    tx.set_group_membership(b.id, Some(&unit_id("beta")), at(50))
        .await
        .expect("b joins");
    tx.commit().await.expect("commit");

    reserve(store, a.id, "1000.50", at(1000)).await;
    let consumed = reserve(store, a.id, "200.25", at(1000)).await;
    close_reservation(
        store,
        &closed(
            &consumed,
            ReservationStatus::Consumed,
            at(20),
            Some(ANALYST),
        ),
    )
    .await;
    let expired = reserve(store, a.id, "999.00", at(10)).await;
    close_reservation(
        store,
        &closed(&expired, ReservationStatus::Expired, at(15), None),
    )
    .await;
    // Still active, but its expiry passes at 200 s.
    reserve(store, b.id, "300", at(200)).await;
    assert_eq!(
        import(store, &balance("core-1", a.id, "10.00")).await,
        ImportEffect::Inserted
    );
    assert_eq!(
        import(store, &balance("core-2", c.id, "5000")).await,
        ImportEffect::Inserted
    );
    assert_eq!(
        import(store, &balance("core-3", c.id, "0.01")).await,
        ImportEffect::Inserted
    );

    let row =
        |b: &Borrower, group: Option<&str>, reserved: &str, outstanding: &str| BorrowerExposure {
            borrower: b.id,
            group: group.map(str::to_owned),
            sector: b.sector.clone(),
            country: b.country.clone(),
            institution: b.institution,
            reserved: dec(reserved),
            outstanding: dec(outstanding),
        };
    let sorted = |mut rows: Vec<BorrowerExposure>| {
        rows.sort_by_key(|r| r.borrower);
        rows
    };
    let at_250 = sorted(vec![
        row(&a, Some("acme"), "1000.50", "210.25"),
        row(&b, Some("beta"), "0", "0"),
        row(&c, None, "0", "5000.01"),
        row(&d, None, "0", "0"),
    ]);
    assert_eq!(
        exposures_at(store, ExposureScope::All, at(250)).await,
        at_250
    );
    assert_eq!(
        exposures_at(store, ExposureScope::All, at(150)).await,
        sorted(vec![
            row(&a, Some("acme"), "1000.50", "210.25"),
            row(&b, Some("beta"), "300", "0"),
            row(&c, None, "0", "5000.01"),
            row(&d, None, "0", "0"),
        ]),
        "before its expiry the reservation counts"
    );
    let groups = |rows: Vec<BorrowerExposure>| {
        rows.into_iter()
            .map(|r| (r.borrower, r.group))
            .collect::<Vec<_>>()
    };
    let expected_groups = |a_group: Option<&str>, b_group: Option<&str>| {
        let mut pairs = vec![
            (a.id, a_group.map(str::to_owned)),
            (b.id, b_group.map(str::to_owned)),
            (c.id, None),
            (d.id, None),
        ];
        pairs.sort();
        pairs
    };
    assert_eq!(
        groups(exposures_at(store, ExposureScope::All, at(50)).await),
        expected_groups(None, Some("beta")),
        "memberships start at valid_from"
    );
    assert_eq!(
        groups(exposures_at(store, ExposureScope::All, at(100)).await),
        expected_groups(Some("acme"), Some("beta"))
    );
    assert_eq!(
        groups(exposures_at(store, ExposureScope::All, at(300)).await),
        expected_groups(None, Some("beta")),
        "memberships are half-open"
    );

    // Narrower scopes.
    let pick = |ids: &[BorrowerId]| {
        at_250
            .iter()
            .filter(|r| ids.contains(&r.borrower))
            .cloned()
            .collect::<Vec<_>>()
    };
    let scopes = [
        (
            ExposureScope::Borrowers(vec![c.id, a.id, BorrowerId::generate(), a.id]),
            pick(&[a.id, c.id]),
        ),
        (ExposureScope::Borrowers(vec![d.id]), pick(&[d.id])),
        (ExposureScope::Borrowers(vec![]), vec![]),
        (ExposureScope::Sector("energy".into()), pick(&[b.id, c.id])),
        (
            ExposureScope::Sector("manufacturing".into()),
            pick(&[a.id, d.id]),
        ),
        (ExposureScope::Country("FR".into()), pick(&[c.id, d.id])),
        (ExposureScope::Country("DE".into()), pick(&[a.id, b.id])),
        (ExposureScope::Country("XX".into()), vec![]),
        (ExposureScope::All, at_250.clone()),
    ];
    for (scope, expected) in scopes {
        let rows = exposures_at(store, scope.clone(), at(250)).await;
        assert_eq!(rows, expected, "{scope:?}");
        let sum: Decimal = rows.iter().map(BorrowerExposure::total).sum();
        assert_eq!(
            total_at(store, scope.clone(), at(250)).await,
            sum,
            "{scope:?}"
        );
    }
    assert_eq!(
        total_at(store, ExposureScope::All, at(250)).await,
        dec("6210.76")
    );
    assert_eq!(
        total_at(store, ExposureScope::Country("DE".into()), at(150)).await,
        dec("1510.75")
    );
    assert_eq!(
        total_at(store, ExposureScope::Sector("none".into()), at(150)).await,
        Decimal::ZERO
    );
}

pub async fn reservations_close_once(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let first = reserve(store, borrower_id, "1234567.89", at(30)).await;
    let second = reserve(store, borrower_id, "1", at(10)).await;
    let third = reserve(store, borrower_id, "2", at(20)).await;
    let later = reserve(store, borrower_id, "3", at(40)).await;

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.reservation(first.case_id).await.expect("load"),
        Some(first.clone())
    );
    assert_eq!(
        tx.reservation(CaseId::generate()).await.expect("load"),
        None
    );
    let err = tx
        .insert_reservation(&Reservation {
            amount: dec("5"),
            ..first.clone()
        })
        .await
        .expect_err("the case holds a reservation");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_reservation(&Reservation {
            case_id: CaseId::generate(),
            ..first.clone()
        })
        .await
        .expect_err("unknown case");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Due: active and expires_at <= at, soonest expiry first.
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.due_reservations(at(30)).await.expect("due"),
        vec![second.clone(), third.clone(), first.clone()]
    );
    assert_eq!(
        tx.due_reservations(at(19)).await.expect("due"),
        vec![second.clone()]
    );
    assert!(tx.due_reservations(at(9)).await.expect("due").is_empty());
    drop(tx);

    let consumed = closed(&first, ReservationStatus::Consumed, at(25), Some(ANALYST));
    let expired = closed(&second, ReservationStatus::Expired, at(35), None);
    close_reservation(store, &consumed).await;
    close_reservation(store, &expired).await;

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .close_reservation(&closed(&first, ReservationStatus::Expired, at(36), None))
        .await
        .expect_err("closed already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .close_reservation(&closed(
            &second,
            ReservationStatus::Consumed,
            at(36),
            Some(ANALYST),
        ))
        .await
        .expect_err("expired already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .close_reservation(&Reservation {
            case_id: CaseId::generate(),
            ..closed(&third, ReservationStatus::Expired, at(36), None)
        })
        .await
        .expect_err("unknown reservation");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    // Closing means consumed or expired, at a time.
    let mut tx = store.begin().await.expect("begin");
    let result = tx.close_reservation(&third).await;
    assert!(result.is_err(), "{result:?}");
    let result = tx
        .close_reservation(&Reservation {
            closed_at: None,
            ..closed(&third, ReservationStatus::Expired, at(36), None)
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.reservation(first.case_id).await.expect("load"),
        Some(consumed)
    );
    assert_eq!(
        tx.reservation(second.case_id).await.expect("load"),
        Some(expired)
    );
    assert_eq!(
        tx.due_reservations(at(100)).await.expect("due"),
        vec![third, later],
        "closed reservations are never due"
    );
}

/// R6: active reservations not expired at `at`, plus those consumed since
/// the position was recorded (from `since` on, inclusive).
pub async fn committed_outflows_project_reservations(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let (since, now) = (at(100), at(200));
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.committed_outflows(since, now).await.expect("none"),
        Decimal::ZERO
    );
    drop(tx);

    reserve(store, borrower_id, "100.01", at(300)).await; // counted
    reserve(store, borrower_id, "50", now).await; // expired at `now`
    for (amount, status, when) in [
        ("30.10", ReservationStatus::Consumed, at(120)), // counted
        ("7", ReservationStatus::Consumed, since),       // counted
        ("20", ReservationStatus::Consumed, at(90)),     // before the position
        ("10", ReservationStatus::Expired, at(130)),     // freed
    ] {
        let r = reserve(store, borrower_id, amount, at(1000)).await;
        close_reservation(store, &closed(&r, status, when, Some(ANALYST))).await;
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.committed_outflows(since, now).await.expect("committed"),
        dec("137.11")
    );
    assert_eq!(
        tx.committed_outflows(since, at(199))
            .await
            .expect("committed"),
        dec("187.11"),
        "before its expiry the reservation counts"
    );
    assert_eq!(
        tx.committed_outflows(at(0), now).await.expect("committed"),
        dec("157.11")
    );
    // Read together with the latest position, the sum counts from the
    // position's own time.
    assert_eq!(
        tx.liquidity_now(now, InFlightClaims::Ignored)
            .await
            .expect("no position"),
        None
    );
    drop(tx);
    let mut position = liquidity(2, "5000000", "110");
    position.recorded_at = since;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_liquidity(&liquidity(1, "1", "100"))
        .await
        .expect("older position");
    tx.insert_liquidity(&position).await.expect("position");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.liquidity_now(now, InFlightClaims::Ignored)
            .await
            .expect("liquidity now"),
        Some(LiquidityNow {
            position,
            committed: dec("137.11"),
            claimed_earlier: Decimal::ZERO,
            claimed_later: Decimal::ZERO,
        })
    );
}

/// R5, R6: an approval's liquidity claim is counted by every other
/// approval's read, not by its own nor by plain views; it ends when settled
/// with the reservation (only if it covers the amount and has not lapsed) or
/// when released. A backend whose writers are serial issues no claims, and
/// there an approval needs none.
pub async fn liquidity_claims_count_for_other_approvals_only(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let first = new_case(borrower_id, "1000.00", "EUR");
    let second = new_case(borrower_id, "250.50", "EUR");
    let foreign = new_case(borrower_id, "99.00", "USD");
    for case in [&first, &second, &foreign] {
        insert_case(store, case).await;
    }
    let mut tx = store.begin().await.expect("begin");
    tx.insert_liquidity(&liquidity(1, "5000000", "100"))
        .await
        .expect("position");
    tx.commit().await.expect("commit");
    let lifetime = std::time::Duration::from_secs(30);
    let Some(claim) = store
        .claim_liquidity(first.id, "EUR", lifetime)
        .await
        .expect("claim")
    else {
        let mut tx = store.begin().await.expect("begin");
        tx.settle_liquidity_claim(None, dec("1000.00"))
            .await
            .expect("serial writers: an approval needs no claim");
        return;
    };
    assert_eq!((claim.case, claim.amount), (first.id, dec("1000.00")));
    for (case, why) in [
        (foreign.id, "a case in another currency"),
        (CaseId::generate(), "an unknown case"),
    ] {
        let claimed = store.claim_liquidity(case, "EUR", lifetime).await;
        assert_eq!(claimed.expect("claim"), None, "{why}");
    }
    let other = store
        .claim_liquidity(second.id, "EUR", lifetime)
        .await
        .expect("claim")
        .expect("claimed");
    // Seen from a claim: the live claims taken before and after it.
    let claimed = |claims: Option<LiquidityClaim>| async move {
        let mut tx = store.begin_read().await.expect("begin_read");
        let counted = match &claims {
            None => InFlightClaims::Ignored,
            Some(own) => InFlightClaims::CountedExcept(own),
        };
        let now = tx
            .liquidity_now(at(50), counted)
            .await
            .expect("read")
            .expect("position");
        assert_eq!(now.committed, Decimal::ZERO, "no reservations");
        (now.claimed_earlier, now.claimed_later)
    };
    let zero = Decimal::ZERO;
    assert_eq!(claimed(None).await, (zero, zero), "views count no claims");
    assert_eq!(claimed(Some(claim.clone())).await, (zero, dec("250.50")));
    assert_eq!(claimed(Some(other.clone())).await, (dec("1000.00"), zero));
    // A second approval of the same case: only one of them can commit.
    let twin = store
        .claim_liquidity(first.id, "EUR", lifetime)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claimed(Some(claim.clone())).await, (zero, dec("250.50")));
    assert_eq!(
        claimed(Some(other.clone())).await,
        (dec("1000.00"), dec("1000.00"))
    );
    store.release_liquidity_claim(&twin).await.expect("release");

    let mut tx = store.begin().await.expect("begin");
    for (claim, amount, why) in [
        (Some(&claim), "1000.01", "a claim below the amount"),
        (None, "1000.00", "no claim"),
    ] {
        let result = tx.settle_liquidity_claim(claim, dec(amount)).await;
        assert!(
            matches!(result, Err(StoreError::Conflict(_))),
            "{why}: {result:?}"
        );
    }
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    tx.settle_liquidity_claim(Some(&claim), dec("1000.00"))
        .await
        .expect("settled");
    assert_eq!(
        claimed(Some(other.clone())).await,
        (dec("1000.00"), zero),
        "until the settling transaction commits, the claim counts"
    );
    tx.commit().await.expect("commit");
    assert_eq!(claimed(Some(other.clone())).await, (zero, zero));
    let mut tx = store.begin().await.expect("begin");
    let again = tx
        .settle_liquidity_claim(Some(&claim), dec("1000.00"))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    drop(tx);

    store
        .release_liquidity_claim(&other)
        .await
        .expect("release");
    store
        .release_liquidity_claim(&other)
        .await
        .expect("released twice");
    assert_eq!(claimed(Some(claim.clone())).await, (zero, zero));

    // A claim outliving its request lapses: nobody counts it, nobody can
    // settle it.
    let short = store
        .claim_liquidity(second.id, "EUR", std::time::Duration::from_millis(1))
        .await
        .expect("claim")
        .expect("claimed");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(claimed(Some(claim.clone())).await, (zero, zero));
    let mut tx = store.begin().await.expect("begin");
    let lapsed = tx.settle_liquidity_claim(Some(&short), dec("250.50")).await;
    assert!(matches!(lapsed, Err(StoreError::Conflict(_))), "{lapsed:?}");
}

pub async fn imported_balances_are_idempotent(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 2).await;
    let (a, b) = (borrowers[0], borrowers[1]);
    let ns = |t: Timestamp, n: i64| t + chrono::Duration::nanoseconds(n);
    let mut first = balance("core/4711 'x'", a, "250000.00");
    first.as_of = ns(day(-1), 999);
    assert_eq!(import(store, &first).await, ImportEffect::Inserted);
    assert_eq!(
        import(store, &first).await,
        ImportEffect::Unchanged,
        "the same record again (also at nanosecond precision)"
    );
    let same_value = ImportedBalance {
        amount: dec("250000"),
        ..first.clone()
    };
    assert_eq!(import(store, &same_value).await, ImportEffect::Unchanged);
    let changes = [
        ImportedBalance {
            amount: dec("240000.01"),
            ..first.clone()
        },
        ImportedBalance {
            amount: dec("240000.01"),
            as_of: day(0),
            ..first.clone()
        },
        ImportedBalance {
            borrower: b,
            amount: dec("240000.01"),
            as_of: day(0),
            ..first.clone()
        },
    ];
    for change in &changes {
        assert_eq!(
            import(store, change).await,
            ImportEffect::Updated,
            "{change:?}"
        );
        assert_eq!(
            import(store, change).await,
            ImportEffect::Unchanged,
            "{change:?}"
        );
    }
    assert_eq!(
        import(store, &balance("core/0", a, "0")).await,
        ImportEffect::Inserted,
        "a zero balance is a balance"
    );

    let outstanding = |rows: Vec<BorrowerExposure>| {
        rows.into_iter()
            .map(|r| (r.borrower, r.outstanding))
            .collect::<Vec<_>>()
    };
    let mut expected = vec![(a, Decimal::ZERO), (b, dec("240000.01"))];
    expected.sort();
    assert_eq!(
        outstanding(exposures_at(store, ExposureScope::All, at(0)).await),
        expected,
        "one balance per source record, the latest import"
    );

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .import_balance(&balance("core/1", BorrowerId::generate(), "1"))
        .await
        .expect_err("unknown borrower");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx.import_balance(&balance("core/2", a, "-1")).await;
    assert!(result.is_err(), "negative balance: {result:?}");
}

pub async fn breaches_open_resolve_and_filter(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let first = breach(at(10), Severity::Hard);
    let mut second = breach(at(20), Severity::Soft);
    second.subject = "liquidity:lcr".into();
    second.rule = RuleId::R6;
    second.check = "lcr_floor".into();
    second.limit = dec("110");
    second.usage = dec("104.3700");
    second.amount_over = dec("5.63");
    let third = breach(at(30), Severity::Hard);
    let mut resolved = breach(at(5), Severity::Soft);
    resolved.resolved_at = Some(at(6));
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.open_breaches().await.expect("none").is_empty());
    // Stored out of order, listed by detection time.
    for b in [&third, &first, &resolved, &second] {
        tx.insert_breach(b).await.expect("insert breach");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_breach(&first).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx.insert_breach(&breach(at(1), Severity::Within)).await;
    assert!(result.is_err(), "within is no breach: {result:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.open_breaches().await.expect("open"),
        vec![first.clone(), second.clone(), third.clone()]
    );
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    tx.resolve_breach(second.id, at(40)).await.expect("resolve");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .resolve_breach(second.id, at(41))
        .await
        .expect_err("resolved already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .resolve_breach(uuid::Uuid::new_v4(), at(41))
        .await
        .expect_err("unknown breach");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    let second = Breach {
        resolved_at: Some(at(40)),
        ..second
    };
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.open_breaches().await.expect("open"),
        vec![first.clone(), third.clone()]
    );
    let filter = |from: i64, to: i64, limit: u32| BreachFilter {
        from: at(from),
        to: at(to),
        limit,
    };
    let all = vec![resolved, first.clone(), second.clone(), third.clone()];
    assert_eq!(tx.breaches(&filter(0, 100, 100)).await.expect("all"), all);
    assert_eq!(
        tx.breaches(&filter(10, 30, 100)).await.expect("[10, 30)"),
        vec![first.clone(), second.clone()],
        "half-open range"
    );
    assert_eq!(
        tx.breaches(&filter(6, 100, 2)).await.expect("limit"),
        vec![first, second.clone()]
    );
    assert!(
        tx.breaches(&filter(0, 100, 0))
            .await
            .expect("none")
            .is_empty()
    );
    assert!(
        tx.breaches(&filter(31, 100, 9))
            .await
            .expect("none")
            .is_empty()
    );
    let stored = tx.breaches(&filter(20, 21, 1)).await.expect("liquidity");
    assert_eq!(stored, vec![second]);
    assert_eq!(
        (
            stored[0].usage.to_string(),
            stored[0].amount_over.to_string()
        ),
        ("104.3700".to_owned(), "5.63".to_owned()),
        "decimals are kept as written"
    );
}

/// Amounts are EUR cents in storage: more than two decimal places, or more
/// than an i64 of cents, is refused and nothing is stored.
pub async fn amounts_beyond_cents_are_refused(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "1000.00", "EUR");
    insert_case(store, &case).await;
    let subject = LimitSubject::Sector("energy".into());
    for amount in [dec("0.001"), dec("1000.005"), Decimal::MAX, Decimal::MIN] {
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .insert_limit_version(&LimitVersion {
                amount,
                ..limit_version(subject.clone(), 1, "0", at(1))
            })
            .await;
        assert!(result.is_err(), "limit {amount}: {result:?}");
        drop(tx);
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .insert_capital(&Capital {
                tier1: amount,
                ..capital(1, "0")
            })
            .await;
        assert!(result.is_err(), "capital {amount}: {result:?}");
        drop(tx);
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .insert_liquidity(&LiquidityPosition {
                inflows_30d: amount,
                ..liquidity(1, "1", "110")
            })
            .await;
        assert!(result.is_err(), "liquidity {amount}: {result:?}");
        drop(tx);
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .insert_reservation(&Reservation {
                case_id: case.id,
                borrower: borrower_id,
                amount,
                status: ReservationStatus::Active,
                reserved_at: at(0),
                expires_at: at(10),
                closed_at: None,
                closed_by: None,
            })
            .await;
        assert!(result.is_err(), "reservation {amount}: {result:?}");
        drop(tx);
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .import_balance(&ImportedBalance {
                amount,
                ..balance("core/1", borrower_id, "0")
            })
            .await;
        assert!(result.is_err(), "import {amount}: {result:?}");
        drop(tx);
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(
        tx.limit_versions(None, None)
            .await
            .expect("limits")
            .is_empty()
    );
    assert_eq!(tx.latest_capital().await.expect("capital"), None);
    assert_eq!(tx.latest_liquidity().await.expect("liquidity"), None);
    assert_eq!(tx.reservation(case.id).await.expect("reservation"), None);
    assert_eq!(
        tx.exposure_total(&ExposureScope::All, at(0))
            .await
            .expect("total"),
        Decimal::ZERO
    );
    drop(tx);
    // Trailing zeros are no extra precision; the largest amounts round-trip.
    let mut tx = store.begin().await.expect("begin");
    tx.insert_capital(&Capital {
        tier1: dec("92233720368547758.07"),
        ..capital(1, "0")
    })
    .await
    .expect("i64::MAX cents");
    tx.insert_liquidity(&liquidity(1, "1.500000", "110"))
        .await
        .expect("trailing zeros");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.latest_capital().await.expect("capital").map(|c| c.tier1),
        Some(dec("92233720368547758.07"))
    );
    assert_eq!(
        tx.latest_liquidity()
            .await
            .expect("liquidity")
            .map(|l| l.hqla),
        Some(dec("1.5"))
    );
}
