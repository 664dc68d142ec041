//! The SQL both store backends share: the statements, row mappings and
//! method bodies that are the same text for SQLite and PostgreSQL, written
//! once. A backend keeps only what its dialect really does differently
//! (locks, the audit chain, statements tuned to one planner).
//!
//! The shared code comes as macros that a backend invokes in its
//! transaction module; they expand to the backend's trait impls (one per
//! area trait of `creditops_store`) and to free helpers. Names the macros do
//! not define resolve where they are invoked, so that module provides the
//! backend's dialect:
//!
//! - `Db`, `DbRow`: the sqlx database and row types;
//! - `DbId`: the type an id column is bound and read as (`String` for
//!   SQLite's TEXT ids, `Uuid` for PostgreSQL's UUID), with
//!   `id_arg(impl StoredId) -> DbId` and `id_of(DbId) -> StoreResult<Uuid>`;
//! - `DbIds`: a list of ids as one bound value, with
//!   `ids_arg(&[BorrowerId]) -> StoreResult<DbIds>`;
//! - `DbInt`: the type of `INTEGER` columns (`i64` / `i32`), with
//!   `int_arg(i64) -> StoreResult<DbInt>`;
//! - `get::<T>(&DbRow, &str) -> StoreResult<T>`: one column of a row;
//! - `map_sqlx_error(sqlx::Error) -> StoreError`: the backend's error
//!   mapping;
//!
//! plus `use creditops_store_sql::prelude::*;`. The transaction type has a
//! field `tx: sqlx::Transaction<'static, Db>` and the dialect methods each
//! area macro names in its documentation (`dialect_*`, the backend's own
//! version of a method whose statement differs).

pub mod convert;
mod rows;

mod admin;
mod audit;
mod borrowers;
mod breaches;
mod cases;
pub mod collateral;
mod credit_file;
mod exposures;
mod granting;
mod idempotency;
mod limits;
pub mod monitoring;
mod risk;
mod sessions;
mod staff;
pub mod votes;

#[doc(hidden)]
pub use async_trait::async_trait;
#[doc(hidden)]
pub use limits::LIMIT_VERSION_TAKEN;

/// The dated history tables of a person that are appended to by position.
#[derive(Clone, Copy, Debug)]
pub enum HistoryTable {
    Units,
    Roles,
    Competences,
}

/// What the code the macros expand to names, for the invoking module.
pub mod prelude {
    pub use crate::HistoryTable;
    pub use crate::convert::*;
    pub use creditops_domain::credit_file::MediaType;
    pub use creditops_domain::proposal::ProposalKind;
    pub use creditops_domain::{
        BoardResolution, BorrowerId, CaseFile, CaseId, CaseKind, CaseStatus, CompetenceGrant,
        Country, Credit, CreditBase, CreditCase, CreditId, Decision, DocumentId, History,
        HistoryCut, MarketScope, Money, Rating, Role, RoleAssignment, RuleCheck, RuleSet, Sector,
        Severity, Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId, Vote,
        Voter,
    };
    pub use creditops_risk::{
        BorrowerExposure, Breach, Capital, ImportEffect, ImportedBalance, Limit, LimitKind,
        LimitStatus, LimitSubject, LimitVersion, LiquidityPosition, Reservation, ReservationStatus,
    };
    pub use creditops_store::prelude::*;
    pub use creditops_store::{
        AUTHORITY_CHANGED, AuditFilter, AuthorityCache, Borrower, BorrowerFinancials,
        BorrowerGroup, BreachFilter, BreachPage, CaseFilter, CaseSummary, ChangeProposal,
        ConsoleSession, DecidedCase, ExposureScope, GateFigures, GroupMembership, GroupVoteInputs,
        IdempotencyScope, InFlightClaims, LiquidityClaim, LiquidityNow, NewAuditEvent,
        ProposalFilter, ProposalStatus, RelatedParty, RuleSetCache, StaffLookup, StoreError,
        StoreResult, StoredAuditEvent, StoredCheckpoint, StoredDocument, StoredResponse,
        UNCLASSIFIED_IDS_LISTED, UnauditedRow, UnclassifiedValue, VerifiedHead, VoteContext,
        VoteInputs, VoteInputsQuery, stored_rule_set,
    };
    pub use rust_decimal::Decimal;
    pub use sqlx::{QueryBuilder, Row};
    pub use std::collections::BTreeSet;
    pub use std::sync::Arc;
    pub use uuid::Uuid;
}

/// Columns of `limit_versions` as `limit_version_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! limit_columns {
    () => {
        "id, subject_kind, subject_key, version, amount_minor, tolerance_percent, reason, \
         proposed_by, proposed_at, status, decided_by, decided_at"
    };
}

/// Columns of `reservations` as `reservation_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! reservation_columns {
    () => {
        "case_id, borrower_id, amount_minor, status, reserved_at, expires_at, closed_at, \
         closed_by"
    };
}

/// Columns of `breaches` as `breach_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! breach_columns {
    () => {
        "id, subject, rule, check_name, limit_value, usage_value, amount_over, severity, \
         cause, owner, detected_at, resolved_at"
    };
}

/// Columns of `liquidity_positions` as `liquidity_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! liquidity_columns {
    () => {
        "version, hqla_minor, outflows_minor, inflows_minor, floor_percent, recorded_by, \
         recorded_at"
    };
}

/// Columns of `change_proposals` as `proposal_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! proposal_columns {
    () => {
        "id, kind, payload, proposed_by, proposed_at, status, decided_by, decided_at"
    };
}
