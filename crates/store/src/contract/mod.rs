//! The contract every [`Store`] implementation must pass, as plain async
//! functions (one module per area, like the store's traits) plus a macro
//! that turns them into `#[tokio::test]`s. Test support only: compiled with
//! the `testing` feature, which the backends enable for their tests.
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

use crate::Store;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod admin;
mod audit;
mod borrowers;
mod cases;
mod collateral;
mod credit_file;
mod exposures;
mod fixtures;
mod granting;
mod limits;
mod listings;
mod monitoring;
mod seeds;
mod staff;
mod transactions;
mod votes;

pub use admin::*;
pub use audit::*;
pub use borrowers::*;
pub use cases::*;
pub use collateral::*;
pub use credit_file::*;
pub use exposures::*;
pub use granting::*;
pub use limits::*;
pub use listings::*;
pub use monitoring::*;
pub use seeds::{seed_case, seed_risk};
pub use staff::*;
pub use transactions::*;
pub use votes::*;

/// What the contract modules use: the store's types, the domain's and the
/// fixtures.
mod prelude {
    pub(super) use super::CONTRACT_ORIGIN;
    pub(super) use super::fixtures::*;
    pub(super) use crate::Tx;
    pub(super) use crate::{
        AuditFilter, Borrower, BorrowerGroup, BreachFilter, ChangeProposal, ExposureScope,
        IdempotencyScope, InFlightClaims, LiquidityClaim, LiquidityNow, NewAuditEvent,
        ProposalFilter, ProposalKind, ProposalStatus, RelatedParty, Store, StoreError, StoreExt,
        StoredAuditEvent, StoredResponse,
    };
    pub(super) use creditops_audit::{
        AuditAction, AuditRecord, ChainVerifier, Outcome, VerifyReport,
    };
    pub(super) use creditops_domain::{
        BoardResolution, BorrowerId, CaseFile, CaseId, CaseStatus, CompetenceGrant, CreditCase,
        DecisionFlag, DecisionOutcome, DivergencePolicy, Money, Role, RoleAssignment, RuleId,
        RuleSet, Severity, Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitAssignment,
        UnitId, VoteDecision, VoteFacts, Voter,
    };
    pub(super) use creditops_risk::{
        BorrowerExposure, Breach, Capital, ImportEffect, ImportedBalance, LimitStatus,
        LimitSubject, LimitVersion, LiquidityPosition, Reservation, ReservationStatus,
    };
    pub(super) use rust_decimal::Decimal;
    pub(super) use std::collections::BTreeSet;
    pub(super) use std::sync::Arc;
}

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
            finding_16_an_approval_without_two_proper_votes_is_refused
            first_vote_decline_decides_in_one_update
            stored_votes_and_decision_are_append_only
            l11_decisions_between_lists_the_decisions_of_the_period
            stale_revision_is_a_conflict
            update_case_requires_a_new_revision
            cases_by_status_pages_by_id
            case_lists_select_what_the_market_scope_admits
            audit_lists_page_borrowers_groups_and_related_parties
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
            open_cases_of_borrowers
            checkpoints_handed_out_are_found_by_size
            the_stored_tree_holds_every_complete_subtree
            verified_heads_are_kept_largest_first
            rule_sets_are_versioned
            a_lookup_hands_out_only_the_committed_rule_sets
            proposals_round_trip_filter_and_page
            a_proposal_is_decided_once_by_another_person
            case_segregation_fields_round_trip
            escalation_round_trips_through_the_store
            limit_versions_need_four_eyes
            limits_in_force_are_the_highest_approved_versions
            limit_versions_are_numbered_by_the_store
            capital_and_liquidity_are_versioned
            exposures_cover_every_borrower_in_scope
            reservations_close_once
            committed_outflows_project_reservations
            liquidity_claims_count_for_other_approvals_only
            reservations_settle_their_claims
            imported_balances_are_idempotent
            breaches_open_resolve_and_filter
            amounts_beyond_cents_are_refused
            l3_collateral_round_trip_with_latest_valuation_and_check
            l3_release_and_revaluations_due
            l2_documents_round_trip_and_supersede_once
            l2_financials_are_kept_per_reporting_date
            l7_early_warning_inputs_and_the_watch_list
            l6_l10_reviews_stages_plans_and_provisions
            vote_inputs_equal_their_parts
            l1_credits_are_stored_with_their_versions
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
