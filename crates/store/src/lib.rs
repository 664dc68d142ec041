//! The storage boundary: one transactional repository trait that the SQLite
//! and PostgreSQL crates implement, the one error type of that boundary, and a
//! contract test suite both implementations must pass.
//!
//! Services work in units of work: `begin()` a transaction, load, call the pure
//! domain rules, persist the result and append the audit event, `commit()`.
//! A dropped, uncommitted transaction rolls back, so a failed audit write
//! takes the business change with it (A1, fail-closed).

mod audit_append;
pub mod contract;
mod model;

pub use audit_append::append_record;
pub use model::*;

use async_trait::async_trait;
use creditops_domain::{
    BorrowerId, CaseId, CaseStatus, CompetenceGrant, CreditCase, Money, RoleAssignment, RuleSet,
    Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitId,
};
use creditops_risk::{
    BorrowerExposure, Breach, Capital, ImportEffect, ImportedBalance, Limit, LimitStatus,
    LimitSubject, LimitVersion, LiquidityPosition, Reservation,
};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row the command needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness or optimistic-concurrency conflict: somebody else won.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached right now; the caller may retry later.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// The database refused the statement for lack of privilege: the process
    /// is connected as a role that may not do this (a misconfiguration, or a
    /// service trying what its side must not).
    #[error(
        "the database role may not do this ({0}); is the process connected as the right service role?"
    )]
    Denied(String),
    /// Any other database failure. The text is for logs, never for clients.
    #[error("database error")]
    Database(#[source] BoxError),
    /// A stored row could not be turned back into a domain value.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// Connections of a store's pool(s): open ones, idle ones, the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// A database backend. Cheap to clone behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// A read-write unit of work.
    async fn begin(&self) -> StoreResult<Box<dyn Tx>>;
    /// A read-only unit of work (may run concurrently with writers).
    async fn begin_read(&self) -> StoreResult<Box<dyn Tx>>;
    /// The staff member `id` as the directory holds it now, in one
    /// consistent read: what every request authenticates against, so a
    /// suspension counts from the next request on.
    async fn staff_member(&self, id: &StaffId) -> StoreResult<Option<StaffMember>> {
        let mut tx = self.begin_read().await?;
        tx.staff_member(id).await
    }
    /// Every rule-set version, ascending, in one consistent read: for a
    /// check before a command's transaction begins.
    async fn rule_sets(&self) -> StoreResult<Vec<RuleSet>> {
        let mut tx = self.begin_read().await?;
        tx.rule_sets().await
    }
    /// Cheap liveness check of the database connection.
    async fn ping(&self) -> StoreResult<()>;

    // -- liquidity claims (R5, R6) -----------------------------------------------
    /// Claims the liquidity headroom an approval of `case` will spend, in a
    /// transaction of its own, before the approval's transaction begins
    /// (which then counts every other live claim, see [`InFlightClaims`]).
    /// The claim may be settled up to `lifetime` after it is taken (the
    /// request timeout, which bounds the approval's transaction) and is
    /// counted by others for twice that. `None` if the case does not exist
    /// or is not in `currency`, and on backends whose writers are serial
    /// (there the approval's own check is exact).
    async fn claim_liquidity(
        &self,
        case: CaseId,
        currency: &str,
        lifetime: std::time::Duration,
    ) -> StoreResult<Option<LiquidityClaim>> {
        let _ = (case, currency, lifetime);
        Ok(None)
    }
    /// Withdraws a claim (nothing happens if it was settled already).
    async fn release_liquidity_claim(&self, claim: &LiquidityClaim) -> StoreResult<()> {
        let _ = claim;
        Ok(())
    }
    /// Connections of the pool(s) right now, for the metrics.
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }

    // -- audit sequencer (A1, A2) ----------------------------------------------
    /// Whether committed audit events wait for a sequencer to link them into
    /// the chain (PostgreSQL), rather than being linked inside the business
    /// transaction (SQLite, a single writer).
    fn audit_sequenced_separately(&self) -> bool;
    /// One sequencer round: links committed audit events that are not in the
    /// chain yet, extends the Merkle tree and returns the new head.
    /// Serialised in the database, so any number of instances may call it.
    /// With a key, the round also signs the new head as a checkpoint (at
    /// most about once a second) in the same transaction.
    async fn sequence_audit(
        &self,
        key: Option<&creditops_audit::SigningKey>,
    ) -> StoreResult<SequencerRound>;
    /// Runs rounds until every audit event committed before the call is in
    /// the chain; `Unavailable` if that takes longer than `deadline`.
    async fn flush_audit(&self, deadline: std::time::Duration) -> StoreResult<()>;
    /// When the oldest committed audit event that is not linked yet was
    /// recorded (the sequencer's lag); `None` if all are linked.
    async fn oldest_unsequenced_audit(&self) -> StoreResult<Option<Timestamp>>;
    /// Tries to become the one instance that runs the periodic sequencer.
    /// Leadership lasts as long as the returned lease (and its database
    /// session); `None` if another instance leads.
    async fn sequencer_lease(&self) -> StoreResult<Option<Box<dyn SequencerLease>>>;
}

/// Leadership of the audit sequencer, held by one instance at a time.
#[async_trait]
pub trait SequencerLease: Send {
    /// Whether this instance still leads (false once its session is lost).
    async fn still_held(&mut self) -> bool;
}

/// One database transaction. Dropping it without `commit` rolls it back.
#[async_trait]
pub trait Tx: Send {
    // -- staff directory ---------------------------------------------------
    async fn upsert_unit(&mut self, unit: &UnitId, name: &str, side: Side) -> StoreResult<()>;
    /// The side an organisational unit belongs to, if the unit exists.
    async fn unit_side(&mut self, unit: &UnitId) -> StoreResult<Option<Side>>;
    /// Inserts a person with their unit and role history. Conflict if the id exists.
    async fn insert_staff(&mut self, member: &StaffMember) -> StoreResult<()>;
    async fn staff_member(&mut self, id: &StaffId) -> StoreResult<Option<StaffMember>>;
    async fn set_staff_status(&mut self, id: &StaffId, status: StaffStatus) -> StoreResult<()>;
    /// Appends a dated role assignment to a person's history (NotFound if unknown).
    async fn add_role_assignment(&mut self, id: &StaffId, role: &RoleAssignment)
    -> StoreResult<()>;
    /// Appends a dated competence grant to a person's history (NotFound if unknown).
    async fn add_competence_grant(
        &mut self,
        id: &StaffId,
        grant: &CompetenceGrant,
    ) -> StoreResult<()>;
    /// Every staff id, sorted (for the admin directory and tests).
    async fn staff_ids(&mut self) -> StoreResult<Vec<StaffId>>;

    // -- groups of connected clients, relationship managers, related parties --
    async fn insert_group(&mut self, group: &BorrowerGroup) -> StoreResult<()>;
    async fn group(&mut self, id: &UnitId) -> StoreResult<Option<BorrowerGroup>>;
    /// Moves a borrower into `group` (or out of any group with `None`) from
    /// `at` on: the running membership ends at `at`, a new one starts.
    async fn set_group_membership(
        &mut self,
        borrower: BorrowerId,
        group: Option<&UnitId>,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// The group a borrower belongs to at `at`.
    async fn group_of(
        &mut self,
        borrower: BorrowerId,
        at: Timestamp,
    ) -> StoreResult<Option<UnitId>>;
    /// The members of a group at `at`, sorted.
    async fn group_members(
        &mut self,
        group: &UnitId,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerId>>;
    /// Relationship managers of these borrowers.
    async fn relationship_managers(
        &mut self,
        borrowers: &[BorrowerId],
    ) -> StoreResult<BTreeSet<StaffId>>;
    async fn insert_related_party(&mut self, party: &RelatedParty) -> StoreResult<()>;
    /// Staff recorded as related to any of these borrowers.
    async fn related_parties(&mut self, borrowers: &[BorrowerId])
    -> StoreResult<BTreeSet<StaffId>>;
    /// The amounts of every approved case of these borrowers (V4 aggregation).
    async fn approved_amounts(&mut self, borrowers: &[BorrowerId]) -> StoreResult<Vec<Money>>;
    /// What the segregation rules check a vote on these borrowers against
    /// (V4, S5, S6), read together: [`Tx::approved_amounts`],
    /// [`Tx::relationship_managers`] and [`Tx::related_parties`].
    async fn vote_context(&mut self, borrowers: &[BorrowerId]) -> StoreResult<VoteContext> {
        Ok(VoteContext {
            approved_amounts: self.approved_amounts(borrowers).await?,
            relationship_managers: self.relationship_managers(borrowers).await?,
            related_parties: self.related_parties(borrowers).await?,
        })
    }
    /// Cases of these borrowers that are not decided yet.
    async fn open_cases_of(&mut self, borrowers: &[BorrowerId]) -> StoreResult<Vec<CaseId>>;

    // -- rule sets and four-eyes change proposals (S9) -----------------------
    /// Every rule-set version, ascending. Empty until the first is stored.
    async fn rule_sets(&mut self) -> StoreResult<Vec<RuleSet>>;
    /// Stores a new rule-set version (Conflict if the version exists).
    async fn insert_rule_set(&mut self, rules: &RuleSet) -> StoreResult<()>;
    async fn insert_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()>;
    async fn proposal(&mut self, id: uuid::Uuid) -> StoreResult<Option<ChangeProposal>>;
    /// Records the decision on a pending proposal; Conflict if it is not
    /// pending any more (somebody else decided first).
    async fn decide_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()>;
    async fn proposals(
        &mut self,
        status: Option<ProposalStatus>,
    ) -> StoreResult<Vec<ChangeProposal>>;

    // -- risk control: limits (R1, R3, R8) -------------------------------------
    /// Stores a proposed limit version (Conflict if its subject has that
    /// version already).
    async fn insert_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()>;
    async fn limit_version(&mut self, id: uuid::Uuid) -> StoreResult<Option<LimitVersion>>;
    /// Records the decision on a pending version; Conflict if it is not
    /// pending any more (somebody else decided first).
    async fn decide_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()>;
    /// Limit versions, oldest proposal first, optionally narrowed.
    async fn limit_versions(
        &mut self,
        status: Option<LimitStatus>,
        subject: Option<&LimitSubject>,
    ) -> StoreResult<Vec<LimitVersion>>;
    /// The highest version number a subject has (any status), 0 if none.
    async fn latest_limit_version(&mut self, subject: &LimitSubject) -> StoreResult<i64>;
    /// The limits in force: for each subject its approved version with the
    /// highest version number. `None` means every subject.
    async fn limits_in_force(
        &mut self,
        subjects: Option<&[LimitSubject]>,
    ) -> StoreResult<Vec<Limit>>;

    // -- risk locks (R4, R5) ----------------------------------------------------
    // Each is held until the transaction ends, so two commands cannot both
    // spend the same headroom. They are taken in one order: the risk
    // parameters (exclusive or shared), then risk subjects.
    // SQLite writers are serial already, so there they cost nothing.

    /// Exclusive hold on everything risk control evaluates. Taken by the
    /// commands that move many subjects at once or the parameters every
    /// evaluation reads: group membership, sector and country limits,
    /// capital, liquidity positions, imports, disbursement.
    async fn lock_risk(&mut self) -> StoreResult<()>;
    /// Shared hold on the risk parameters: while it is held, nobody takes
    /// [`Tx::lock_risk`], so groups, the limits in force, capital and the
    /// liquidity position stay as read. Approvals hold it together, each
    /// locking only its own subjects.
    async fn lock_risk_shared(&mut self) -> StoreResult<()>;
    /// Exclusive holds on risk subjects (a unit of connected clients, a
    /// sector, a country), named by the caller; after
    /// [`Tx::lock_risk_shared`]. Keys are locked in sorted order.
    async fn lock_risk_subjects(&mut self, subjects: &[String]) -> StoreResult<()>;
    // The liquidity headroom every approval spends is not locked: each
    // approval claims its amount first (Store::claim_liquidity).

    // -- risk control: capital and liquidity (R3, R6) --------------------------
    /// Stores a new Tier 1 capital version (Conflict if the version exists).
    async fn insert_capital(&mut self, capital: &Capital) -> StoreResult<()>;
    async fn latest_capital(&mut self) -> StoreResult<Option<Capital>>;
    /// Stores a new liquidity position version (Conflict if the version exists).
    async fn insert_liquidity(&mut self, position: &LiquidityPosition) -> StoreResult<()>;
    async fn latest_liquidity(&mut self) -> StoreResult<Option<LiquidityPosition>>;

    // -- risk control: exposures and reservations (R2, R5) ----------------------
    /// One row per borrower in `scope` (also those without exposure), with
    /// its group at `at`, reserved (active reservations not expired at `at`)
    /// and outstanding (consumed reservations plus imported balances).
    async fn exposures(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerExposure>>;
    /// Reserved plus outstanding over every borrower in `scope`, summed in SQL.
    async fn exposure_total(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Decimal>;
    /// Conflict if the case holds a reservation already.
    async fn insert_reservation(&mut self, reservation: &Reservation) -> StoreResult<()>;
    async fn reservation(&mut self, case: CaseId) -> StoreResult<Option<Reservation>>;
    /// Closes an active reservation (consumed or expired, with `closed_at`
    /// and `closed_by`); Conflict if it is not active any more.
    async fn close_reservation(&mut self, reservation: &Reservation) -> StoreResult<()>;
    /// Active reservations whose `expires_at <= at`, oldest first.
    async fn due_reservations(&mut self, at: Timestamp) -> StoreResult<Vec<Reservation>>;
    /// The latest liquidity position and the liquidity committed since it
    /// was recorded ([`Tx::committed_outflows`]), with `claims` counted as
    /// asked, read together. This default is for backends that issue no
    /// claims.
    async fn liquidity_now(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<Option<LiquidityNow>> {
        let _ = claims;
        let Some(position) = self.latest_liquidity().await? else {
            return Ok(None);
        };
        let committed = self.committed_outflows(position.recorded_at, at).await?;
        Ok(Some(LiquidityNow {
            position,
            committed,
            claimed_earlier: Decimal::ZERO,
            claimed_later: Decimal::ZERO,
        }))
    }
    /// Ends the claim an approval took, as its reservation of `amount` is
    /// written in this transaction: the claim is gone exactly when the
    /// reservation commits. Conflict if the claim lapsed, was released, or
    /// claimed less than `amount` (the case changed since). With no claim:
    /// fine where writers are serial, Conflict where the backend issues
    /// claims (the approval was not claimed for, so others did not count it).
    async fn settle_liquidity_claim(
        &mut self,
        claim: Option<&LiquidityClaim>,
        amount: Decimal,
    ) -> StoreResult<()> {
        let _ = amount;
        match claim {
            None => Ok(()),
            Some(_) => Err(StoreError::Corrupt(
                "this backend issues no liquidity claims".into(),
            )),
        }
    }
    /// Liquidity committed since `since`: active reservations not expired at
    /// `at` plus reservations consumed after `since` (R6 projection).
    async fn committed_outflows(&mut self, since: Timestamp, at: Timestamp)
    -> StoreResult<Decimal>;
    /// Upserts an imported balance by its source record id.
    async fn import_balance(&mut self, balance: &ImportedBalance) -> StoreResult<ImportEffect>;

    // -- risk control: breaches (R7) ---------------------------------------------
    async fn insert_breach(&mut self, breach: &Breach) -> StoreResult<()>;
    /// Breaches not resolved yet, oldest first.
    async fn open_breaches(&mut self) -> StoreResult<Vec<Breach>>;
    /// Sets `resolved_at`; Conflict if it is resolved already, NotFound if unknown.
    async fn resolve_breach(&mut self, id: uuid::Uuid, at: Timestamp) -> StoreResult<()>;
    /// Breaches detected in `[from, to)`, oldest first, at most `limit`.
    async fn breaches(&mut self, filter: &BreachFilter) -> StoreResult<Vec<Breach>>;

    // -- borrowers ---------------------------------------------------------
    async fn insert_borrower(&mut self, borrower: &Borrower) -> StoreResult<()>;
    async fn borrower(&mut self, id: BorrowerId) -> StoreResult<Option<Borrower>>;

    // -- credit cases --------------------------------------------------------
    async fn insert_case(&mut self, case: &CreditCase) -> StoreResult<()>;
    /// Loads a case with all its votes (void ones included) and its decision.
    async fn case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>>;
    /// Saves the new state of `case` if the stored revision still equals
    /// `expected_revision` (optimistic concurrency, V10), appends the votes not
    /// yet stored (votes are never updated) and the decision if one was taken.
    /// `Conflict` if somebody else changed the case first.
    async fn update_case(&mut self, case: &CreditCase, expected_revision: i64) -> StoreResult<()>;
    /// Cases in a status, oldest first, keyset-paged by case id.
    async fn cases_by_status(
        &mut self,
        status: CaseStatus,
        after: Option<CaseId>,
        limit: u32,
    ) -> StoreResult<Vec<CaseSummary>>;

    // -- idempotency (V10) ---------------------------------------------------
    async fn idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
    ) -> StoreResult<Option<StoredResponse>>;
    /// Conflict if a response for the same scope exists already.
    async fn save_idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
    ) -> StoreResult<()>;

    // -- audit trail (A1) ------------------------------------------------------
    /// Appends an event in this transaction (A1: it commits or rolls back
    /// with the change it describes). SQLite links it into the chain at once;
    /// PostgreSQL leaves that to the sequencer ([`Store::sequence_audit`]).
    async fn append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()>;
    /// The id this transaction's first audit event gets, handed out once:
    /// every business row of the credit path (borrowers, cases, votes,
    /// decisions) the transaction writes carries it, so reconciliation finds
    /// a row whose event is missing. `None` once claimed.
    fn claim_audit_event_id(&mut self) -> Option<uuid::Uuid>;
    /// Business rows of the credit path whose audit event does not exist
    /// (or that carry none), at most `limit`, by table and key.
    async fn unaudited_rows(&mut self, limit: u32) -> StoreResult<Vec<UnauditedRow>>;
    /// Events matching `filter`, in sequence order.
    async fn audit_events(&mut self, filter: &AuditFilter) -> StoreResult<Vec<StoredAuditEvent>>;
    /// Records a signed checkpoint that was handed out (insert-only).
    async fn insert_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> StoreResult<()>;
    /// The checkpoint handed out last with the largest tree size not above
    /// `max_size` (the newest of equal sizes).
    async fn latest_checkpoint(&mut self, max_size: u64) -> StoreResult<Option<StoredCheckpoint>>;

    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
