//! What a case records: the rule checks a vote or decision passed (V9), the
//! votes, the board resolution (V11) and the decision with its flags.

use super::status::{VoteDecision, VoteStage};
use crate::credit::{CaseKind, CreditBase};
use crate::rating::Rating;
use crate::verdict::RiskVerdict;
use crate::{CreditId, RuleId, StaffId, Timestamp, Voter};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One rule check that passed, recorded with the vote and the decision (V9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleCheck {
    #[schema(value_type = String)]
    pub rule: RuleId,
    pub detail: String,
}

impl RuleCheck {
    pub(super) fn new(rule: RuleId, detail: String) -> Self {
        Self { rule, detail }
    }
}

/// A recorded board resolution (V11), bound to the file version it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardResolution {
    pub reference: String,
    pub recorded_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub recorded_at: Timestamp,
    pub file_version: i64,
    pub content_hash: String,
    /// The board-level back-office member who confirmed it: until then the
    /// resolution is one person's word and no approval can rest on it (V11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<StaffId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub confirmed_at: Option<Timestamp>,
}

/// An immutable vote (V10), bound to a file version and its content hash (V3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    pub stage: VoteStage,
    pub voter: Voter,
    pub decision: VoteDecision,
    pub rationale: String,
    pub file_version: i64,
    pub content_hash: String,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub cast_at: Timestamp,
    /// Voting round: 0 at first, +1 per escalation (V5).
    #[serde(default)]
    pub round: u32,
    /// Competence level the case required when this vote was cast (V4).
    #[serde(default)]
    pub required_level: u8,
    pub checks: Vec<RuleCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Approved,
    Declined,
}

impl DecisionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Approved => "approved",
            DecisionOutcome::Declined => "declined",
        }
    }
}

/// Why a decision goes into the risk report (V7, V8, V11).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DecisionFlag {
    /// Decided at board level (V7).
    BoardLevel,
    /// Decided after an escalation of divergent votes (V5, V7).
    Escalated,
    /// Declined because votes diverged at the board or the policy declines (V5).
    Divergent,
    /// A related-party credit (V11).
    RelatedParty,
    /// Decided by one market vote in the non-risk-relevant lane (V8).
    SingleVoteLane,
    /// A large exposure, >= 10 % of Tier 1 capital (R3, V11).
    LargeExposure,
    /// Approved over a limit's soft threshold after escalation (R4).
    RiskSoftBreach,
}

/// The decision record (V9): what was decided, on which file, by which votes,
/// under which rule-set version and policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub outcome: DecisionOutcome,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub decided_at: Timestamp,
    pub file_version: i64,
    pub content_hash: String,
    /// The competence level the decision was taken at.
    #[serde(default)]
    pub level: u8,
    #[serde(default)]
    pub level_name: String,
    /// The rule-set version (competence order, cooling-off, divergence, lane).
    #[serde(default)]
    pub rules_version: i64,
    #[serde(default)]
    pub policy_hash: String,
    #[serde(default)]
    pub aggregated_exposure: Option<Decimal>,
    #[serde(default)]
    pub flags: Vec<DecisionFlag>,
    /// The risk-control verdict the approval passed (R4); none for declines.
    #[serde(default)]
    pub risk: Option<RiskVerdict>,
    /// Every vote of the current file version, all rounds, in order.
    pub votes: Vec<Vote>,
    pub checks: Vec<RuleCheck>,
    /// What was decided (L1).
    #[serde(default)]
    pub kind: CaseKind,
    /// The approved credit before the change, for every kind but `new`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_before: Option<CreditBase>,
    /// The credit version an approval produced (L1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_after: Option<CreditVersion>,
    /// The rating the decision was taken with (L4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

/// A version of an approved credit (L1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditVersion {
    #[schema(value_type = String, format = Uuid)]
    pub credit_id: CreditId,
    pub version: i64,
}

/// A condition precedent the approving second vote attached (L5): money
/// leaves the bank only after back office signed every one off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Condition {
    /// 1, 2, ... in the order attached.
    pub id: u32,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<chrono::NaiveDate>,
    #[schema(value_type = String)]
    pub attached_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub attached_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_off: Option<SignOff>,
}

/// Back office's sign-off of a condition (L5): who, when, on what evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignOff {
    #[schema(value_type = String)]
    pub by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub at: Timestamp,
    /// The document (or other evidence) the condition was checked against.
    pub evidence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A condition as the second vote asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCondition {
    pub text: String,
    pub due: Option<chrono::NaiveDate>,
}
