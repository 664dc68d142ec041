//! Rows that are not domain aggregates: borrowers, summaries, audit rows,
//! idempotency records.

use creditops_domain::{
    BorrowerId, CaseId, CaseStatus, Country, MarketScope, Money, Sector, StaffId, Timestamp, UnitId,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Borrower {
    pub id: BorrowerId,
    /// Personal data: kept in the business table, never in audit bodies (A6).
    pub name: String,
    pub country: Country,
    pub sector: Sector,
    /// A credit institution (CRR Art. 4(1)(3)): its large-exposure cap is
    /// max(25 % of Tier 1, EUR 150m).
    #[serde(default)]
    pub institution: bool,
    /// The market person who looks after the borrower (S6); may not vote.
    pub relationship_manager: Option<StaffId>,
    pub created_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSummary {
    pub id: CaseId,
    pub borrower_id: BorrowerId,
    pub amount: Money,
    pub status: CaseStatus,
    pub version: i64,
    pub updated_at: Timestamp,
}

/// A decision with the summary of its case (L11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedCase {
    pub case: CaseSummary,
    pub decision: creditops_domain::Decision,
}

/// Which cases a case list selects; the filters combine with AND. Pages
/// are keyset-paged by case id: at most `limit` cases after `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub status: Option<CaseStatus>,
    pub borrower_id: Option<BorrowerId>,
    /// Cases opened at or after this time.
    pub opened_from: Option<Timestamp>,
    /// Cases opened before this time.
    pub opened_before: Option<Timestamp>,
    /// Only the cases a market person's scope admits (hardening finding 9):
    /// the case's owning unit is its originator's market unit when it was
    /// opened. `None`: every case.
    pub market_scope: Option<MarketScope>,
    pub after: Option<CaseId>,
    pub limit: u32,
}

/// One dated membership of a borrower in a group of connected clients,
/// half-open `[valid_from, valid_to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupMembership {
    pub borrower_id: BorrowerId,
    #[schema(value_type = String)]
    pub group_id: UnitId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub valid_from: Timestamp,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub valid_to: Option<Timestamp>,
}

/// The key of an idempotent command: the same key from the same person on the
/// same operation returns the first result (V10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub actor: StaffId,
    /// `METHOD route-template`, e.g. `POST /v1/cases/{id}/second-vote`.
    pub operation: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// SHA-256 (hex) of the request (path + body): a reused key with another
    /// request is refused, not silently answered.
    pub request_hash: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: Timestamp,
}

/// An audit event ready to append: canonical body bytes and their leaf hash,
/// plus index columns copied out of the body for querying (A4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub event_id: uuid::Uuid,
    /// RFC 8785 canonical JSON, stored verbatim and hashed as stored.
    pub body: Vec<u8>,
    /// SHA-256(0x00 || body).
    pub leaf_hash: [u8; 32],
    pub recorded_at: Timestamp,
    pub actor: Option<String>,
    pub action: String,
    pub outcome: String,
    pub case_id: Option<CaseId>,
    pub borrower_id: Option<BorrowerId>,
}

/// A business row whose audit event is missing (reconciliation, A1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnauditedRow {
    /// `borrowers`, `cases`, `votes` or `decisions`.
    pub table: String,
    /// The row's key (`case_id/ordinal` for votes).
    pub key: String,
    /// The event id the row carries; `None` for rows written before rows
    /// carried one.
    pub audit_event_id: Option<uuid::Uuid>,
}

/// The head of the linked audit log: its size and Merkle root (RFC 9162),
/// what a checkpoint signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: [u8; 32],
}

/// What one sequencer round did: how many events it linked and the head of
/// the log after it (the size and root a checkpoint signs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequencerRound {
    pub linked: u64,
    pub size: u64,
    pub root: [u8; 32],
    /// Whether this round signed a checkpoint over the head.
    pub signed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEvent {
    pub seq: i64,
    pub event_id: uuid::Uuid,
    pub body: Vec<u8>,
    pub leaf_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
    pub recorded_at: Timestamp,
    pub actor: Option<String>,
    pub action: String,
    pub outcome: String,
    pub case_id: Option<CaseId>,
    pub borrower_id: Option<BorrowerId>,
}

/// Audit query. Every set field narrows the result; `after_seq` pages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditFilter {
    pub case_id: Option<CaseId>,
    pub borrower_id: Option<BorrowerId>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Only events with `seq > after_seq`.
    pub after_seq: Option<i64>,
    /// At most this many events (callers bound it; 0 means none).
    pub limit: u32,
}

/// A group of connected clients (CRR Art. 4(1)(39)); ids are slugs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BorrowerGroup {
    pub id: UnitLikeId,
    pub name: String,
    pub created_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub created_at: Timestamp,
}

/// Group ids share the slug rules of unit ids.
pub type UnitLikeId = creditops_domain::UnitId;

/// A person recorded as related to a borrower (KWG section 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RelatedParty {
    pub borrower_id: BorrowerId,
    pub staff_id: StaffId,
    pub relation: String,
    pub recorded_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub recorded_at: Timestamp,
}

// Change proposals are domain aggregates (their four-eyes rules are pure);
// the store keeps them under their old path for its callers.
pub use creditops_domain::proposal::{ChangeProposal, ProposalKind, ProposalStatus};

/// Which change proposals a page holds; the filters combine with AND. Pages
/// are keyset-paged by id, which is a UUIDv7 and so the order of proposal:
/// at most `limit` proposals after `after` in the chosen direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalFilter {
    pub status: Option<ProposalStatus>,
    /// Only these kinds; empty: every kind.
    pub kinds: Vec<ProposalKind>,
    pub newest_first: bool,
    pub after: Option<uuid::Uuid>,
    pub limit: u32,
}

impl ProposalFilter {
    /// Every proposal of `kinds` (empty: every kind) with `status`, oldest
    /// first: for a report that must see them all, not for a list.
    pub fn all(status: Option<ProposalStatus>, kinds: Vec<ProposalKind>) -> Self {
        Self {
            status,
            kinds,
            newest_first: false,
            after: None,
            limit: u32::MAX,
        }
    }
}

/// A sector or country stored before the controlled vocabularies that is
/// not a code of the built-in lists (NACE Rev. 2, ISO 3166-1 alpha-2), e.g.
/// `manufacturing` or `c`: limits would not see it, so the platform refuses
/// to start until it is corrected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnclassifiedValue {
    /// Where it is stored: `borrowers.sector`, `borrowers.country`,
    /// `limit_versions.subject_key` for a sector or country limit, or
    /// `breaches.subject (open)` for an open breach of one.
    pub column: &'static str,
    /// `sector` or `country`: the list it should come from.
    pub vocabulary: &'static str,
    pub value: String,
    /// How many rows hold it.
    pub rows: i64,
    /// The ids of the first rows holding it (at most
    /// [`UNCLASSIFIED_IDS_LISTED`]), in id order.
    pub ids: Vec<String>,
}

/// How many row ids an [`UnclassifiedValue`] lists.
pub const UNCLASSIFIED_IDS_LISTED: i64 = 20;

/// Which borrowers an exposure query covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposureScope {
    All,
    Borrowers(Vec<BorrowerId>),
    /// Borrowers in this sector code: for a section, those in the section
    /// and in each of its divisions (what a limit on it covers).
    Sector(Sector),
    /// Borrowers in this country.
    Country(Country),
}

/// Breach query: detected in `[from, to)`, at most `limit` (callers bound it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachFilter {
    pub from: Timestamp,
    pub to: Timestamp,
    pub limit: u32,
}

/// One page of the alert list: breaches keyset-paged by id, which is a
/// UUIDv7 and so the order of detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreachPage {
    /// Only breaches not resolved yet.
    pub open_only: bool,
    pub after: Option<uuid::Uuid>,
    pub limit: u32,
}

/// A signed checkpoint (C2SP signed note) that was handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: [u8; 32],
    pub note: String,
    pub signed_at: Timestamp,
}

/// A head a verification of the audit trail reached (A2): the size, the
/// chain value there, and a signed note over size and Merkle root that the
/// next, incremental verification starts from once it checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHead {
    pub tree_size: u64,
    pub chain_hash: [u8; 32],
    /// The C2SP signed note (checkpoint) over `tree_size` and the root.
    pub note: String,
    pub verified_at: Timestamp,
}

/// Liquidity headroom an approval claimed before it ran (R5, R6), committed
/// on its own so every other approval checking the LCR floor counts it.
/// The approval's transaction turns it into the reservation
/// ([`crate::Tx::settle_liquidity_claim`]); a claim that was not is
/// released, and one left by a crashed process lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidityClaim {
    pub id: uuid::Uuid,
    pub case: CaseId,
    /// The case's amount when the claim was taken.
    pub amount: rust_decimal::Decimal,
    /// When the claim was taken, by the database's clock: with the id, the
    /// order in which approvals in flight give way to each other.
    pub claimed_at: Timestamp,
}

/// Whether a liquidity read counts the claims of approvals in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightClaims<'a> {
    /// Committed reservations only: what is spent (views, the watcher,
    /// disbursement).
    Ignored,
    /// Every live claim for another case, split into those taken before
    /// and after the reader's own: what an approval must leave room for.
    CountedExcept(&'a LiquidityClaim),
}

/// What the risk gate weighs an approval against, read in one go (see
/// [`crate::RiskTx::gate_figures`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateFigures {
    /// The named borrowers that exist, in id order.
    pub exposures: Vec<creditops_risk::BorrowerExposure>,
    pub capital: Option<creditops_risk::Capital>,
    pub liquidity: Option<LiquidityNow>,
}

/// The latest liquidity position and what is committed against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidityNow {
    pub position: creditops_risk::LiquidityPosition,
    /// Active reservations plus those consumed since the position was
    /// recorded (R6).
    pub committed: rust_decimal::Decimal,
    /// Live claims taken before the reader's own (zero if not counted).
    pub claimed_earlier: rust_decimal::Decimal,
    /// Live claims taken after the reader's own (zero if not counted).
    pub claimed_later: rust_decimal::Decimal,
}

/// The facts outside a case a vote on its borrowers is checked against
/// (see [`crate::Tx::vote_context`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoteContext {
    pub relationship_managers: std::collections::BTreeSet<StaffId>,
    pub related_parties: std::collections::BTreeSet<StaffId>,
}

/// A rule-set version from its stored columns (both backends store the
/// parameters as JSON text).
pub fn stored_rule_set(
    version: i64,
    valid_from: Timestamp,
    parameters: &str,
) -> crate::StoreResult<creditops_domain::RuleSet> {
    Ok(creditops_domain::RuleSet {
        version,
        valid_from,
        parameters: serde_json::from_str::<creditops_domain::RuleParameters>(parameters).map_err(
            |_| crate::StoreError::Corrupt("stored rule parameters are not valid".into()),
        )?,
    })
}

/// A web console session (issue 19): valid only at `service`, until it is
/// ended or its idle or absolute timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the cookie's token; the token itself is never stored.
    pub token_hash: String,
    /// The service that issued the session, the only one that accepts it.
    pub service: String,
    pub staff_id: StaffId,
    /// The token every form of the session carries (CSRF).
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}
