//! Where a case stands and what a vote says: the case status, the two vote
//! stages and the side each belongs to (V1), and the vote's decision.

use crate::Side;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Draft,
    AwaitingSecondVote,
    Escalated,
    Approved,
    Declined,
    Returned,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 6] = [
        CaseStatus::Draft,
        CaseStatus::AwaitingSecondVote,
        CaseStatus::Escalated,
        CaseStatus::Approved,
        CaseStatus::Declined,
        CaseStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Draft => "draft",
            CaseStatus::AwaitingSecondVote => "awaiting_second_vote",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Approved => "approved",
            CaseStatus::Declined => "declined",
            CaseStatus::Returned => "returned",
        }
    }

    /// Market may edit and first-vote only while the file is with market.
    pub fn is_with_market(self) -> bool {
        matches!(self, CaseStatus::Draft | CaseStatus::Returned)
    }

    pub fn is_final(self) -> bool {
        matches!(self, CaseStatus::Approved | CaseStatus::Declined)
    }
}

impl FromStr for CaseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CaseStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown case status {s:?}"))
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteStage {
    First,
    Second,
}

impl VoteStage {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteStage::First => "first",
            VoteStage::Second => "second",
        }
    }
}

impl fmt::Display for VoteStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VoteStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(VoteStage::First),
            "second" => Ok(VoteStage::Second),
            _ => Err(format!("unknown vote stage {s:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteDecision {
    Approve,
    Decline,
}

impl VoteDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteDecision::Approve => "approve",
            VoteDecision::Decline => "decline",
        }
    }
}

impl FromStr for VoteDecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" => Ok(VoteDecision::Approve),
            "decline" => Ok(VoteDecision::Decline),
            _ => Err(format!("unknown vote decision {s:?}")),
        }
    }
}

/// The market or back-office side a vote stage belongs to (V1).
pub(super) fn side_of(stage: VoteStage) -> Side {
    match stage {
        VoteStage::First => Side::Market,
        VoteStage::Second => Side::Backoffice,
    }
}
