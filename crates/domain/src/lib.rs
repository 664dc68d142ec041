//! The credit-operations domain: identifiers, exact money, the staff directory's
//! time-dated view of a person, and the four-eyes credit case state machine.
//!
//! Everything here is pure: no IO, no async, no database. Services load the
//! state, call these functions, and persist what they return. That keeps every
//! rule (ids S*, V* in the requirements) testable exhaustively in-process.

// Tests may unwrap/expect; the library itself (the non-test target) stays linted.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod case;
pub mod classification;
pub mod collateral;
pub mod credit;
pub mod credit_file;
pub mod deviating;
pub mod entitlement;
pub mod error;
pub mod four_eyes;
pub mod ids;
pub mod money;
pub mod monitoring;
pub mod proposal;
pub mod rating;
pub mod rule_id;
pub mod rules;
pub mod scope;
pub mod sod;
pub mod staff;
pub mod text;
pub mod verdict;

pub use case::{
    BoardResolution, CaseFile, CaseStatus, Condition, CreditCase, CreditVersion, Decision,
    DecisionFlag, DecisionOutcome, NewCondition, RuleCheck, SignOff, Vote, VoteDecision, VoteFacts,
    VoteStage, aggregated_exposure,
};
pub use classification::{ClassificationError, Country, Sector};
pub use credit::{CaseKind, Credit, CreditBase};
pub use error::DomainError;
pub use ids::{
    BorrowerId, CaseId, CollateralId, CreditId, DocumentId, IdError, ProvisionId, ReviewId,
    StaffId, UnitId, ValuationId,
};
pub use money::{Money, MoneyError};
pub use monitoring::{Indicator, MonitoringParameters, Provision, ProvisionStatus, Stage};
pub use rating::{Rating, RatingInput, RatingRules, RatingStatus};
pub use rule_id::{RuleId, UnknownRuleId};
pub use rules::{
    CompetenceBasis, CompetenceLevel, CompetenceOrder, DivergencePolicy, RuleParameters, RuleSet,
};
pub use scope::{MarketAccess, MarketScope};
pub use sod::{IncompatiblePair, Permission, SodMatrix};
pub use staff::{
    CompetenceGrant, History, HistoryCut, Role, RoleAssignment, Side, StaffMember, StaffStatus,
    UnitAssignment, Voter,
};
pub use verdict::{RiskFinding, RiskVerdict, Severity};

/// Points in time are always UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
