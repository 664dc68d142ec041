//! The four-eyes credit case (V1, V3, V6, V10).
//!
//! Lifecycle: `draft` -> first vote (market) -> `awaiting_second_vote` ->
//! second vote (back office) -> `approved` | `declined`. Back office may send
//! the case back (`returned`), which changes the file and voids the votes cast
//! so far. Every vote names the file version and content hash it was cast on.

use crate::{BorrowerId, CaseId, DomainError, Money, Side, StaffId, Timestamp, Voter};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const MAX_TEXT: usize = 4000;
const MAX_TERM_MONTHS: u32 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Draft,
    AwaitingSecondVote,
    Approved,
    Declined,
    Returned,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::Draft,
        CaseStatus::AwaitingSecondVote,
        CaseStatus::Approved,
        CaseStatus::Declined,
        CaseStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Draft => "draft",
            CaseStatus::AwaitingSecondVote => "awaiting_second_vote",
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// The credit file: the risk-relevant facts both votes are bound to (V3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    pub borrower_id: BorrowerId,
    pub amount: Money,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
}

impl CaseFile {
    pub fn new(
        borrower_id: BorrowerId,
        amount: Money,
        product: &str,
        term_months: i64,
        purpose: &str,
    ) -> Result<Self, DomainError> {
        let product = required_text("product", product, 100)?;
        let purpose = required_text("purpose", purpose, MAX_TEXT)?;
        let term_months = u32::try_from(term_months)
            .ok()
            .filter(|t| (1..=MAX_TERM_MONTHS).contains(t))
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "term_months must be between 1 and {MAX_TERM_MONTHS}"
                ))
            })?;
        Ok(Self {
            borrower_id,
            amount,
            product,
            term_months,
            purpose,
        })
    }

    /// SHA-256 over a canonical rendering of the file (sorted keys, no
    /// whitespace, amounts as strings). A vote records this hash (V3).
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::json!({
            "amount": self.amount.amount().to_string(),
            "borrower_id": self.borrower_id.to_string(),
            "currency": self.amount.currency_code(),
            "product": self.product,
            "purpose": self.purpose,
            "term_months": self.term_months,
        });
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.to_string().as_bytes());
        hex::encode(digest.as_ref())
    }
}

/// Validates free text: required, bounded, no control characters except newlines/tabs.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max_chars {
        return Err(DomainError::Invalid(format!(
            "{field} must not be longer than {max_chars} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(DomainError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// One rule check that passed, recorded with the vote and the decision (V9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCheck {
    pub rule: String,
    pub detail: String,
}

impl RuleCheck {
    fn new(rule: &str, detail: String) -> Self {
        Self {
            rule: rule.to_owned(),
            detail,
        }
    }
}

/// An immutable vote (V10), bound to a file version and its content hash (V3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub stage: VoteStage,
    pub voter: Voter,
    pub decision: VoteDecision,
    pub rationale: String,
    pub file_version: i64,
    pub content_hash: String,
    pub cast_at: Timestamp,
    pub checks: Vec<RuleCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The decision record (V9): what was decided, on which file, by which votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: DecisionOutcome,
    pub decided_at: Timestamp,
    pub file_version: i64,
    pub content_hash: String,
    pub votes: Vec<Vote>,
    pub checks: Vec<RuleCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCase {
    pub id: CaseId,
    pub file: CaseFile,
    pub status: CaseStatus,
    /// File version: starts at 1, +1 on every change of the file (edit, return).
    pub version: i64,
    /// Row version for optimistic concurrency (V10): +1 on every state change.
    pub revision: i64,
    pub originator: StaffId,
    pub votes: Vec<Vote>,
    pub decision: Option<Decision>,
    pub return_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl CreditCase {
    pub fn open(id: CaseId, file: CaseFile, originator: StaffId, now: Timestamp) -> Self {
        Self {
            id,
            file,
            status: CaseStatus::Draft,
            version: 1,
            revision: 1,
            originator,
            votes: Vec::new(),
            decision: None,
            return_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn content_hash(&self) -> String {
        self.file.content_hash()
    }

    /// Votes cast on the current file version; earlier ones are void (V3).
    pub fn current_votes(&self) -> impl Iterator<Item = &Vote> {
        self.votes
            .iter()
            .filter(move |v| v.file_version == self.version)
    }

    fn current_vote(&self, stage: VoteStage) -> Option<&Vote> {
        self.current_votes().find(|v| v.stage == stage)
    }

    fn touch(&mut self, now: Timestamp) {
        self.revision += 1;
        self.updated_at = now;
    }

    fn expect_version(&self, given: i64) -> Result<(), DomainError> {
        if given == self.version {
            Ok(())
        } else {
            Err(DomainError::StaleVersion {
                current: self.version,
                given,
            })
        }
    }

    /// Market edits the file while it is with market. The new version voids
    /// every vote cast so far (V3).
    pub fn edit(
        &mut self,
        editor: Option<&Voter>,
        file: CaseFile,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if !self.status.is_with_market() {
            return Err(DomainError::InvalidState(format!(
                "a case can be edited only while it is with market (draft or returned); it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        require_side(editor, Side::Market, "S1", "edit the credit file")?;
        if file.borrower_id != self.file.borrower_id {
            return Err(DomainError::Invalid(
                "the borrower of a case cannot be changed; open a new case".into(),
            ));
        }
        self.file = file;
        self.version += 1;
        self.status = CaseStatus::Draft;
        self.touch(now);
        Ok(())
    }

    /// The first vote, from a market unit at vote time (V1, S4).
    pub fn cast_first_vote(
        &mut self,
        voter: Option<&Voter>,
        decision: VoteDecision,
        rationale: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<&Vote, DomainError> {
        if !self.status.is_with_market() {
            return Err(DomainError::InvalidState(format!(
                "a first vote needs a case in draft or returned; it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let voter = require_side(voter, Side::Market, "V1", "cast the first vote")?;
        let rationale = required_text("rationale", rationale, MAX_TEXT)?;
        let checks = vec![
            RuleCheck::new(
                "V1",
                format!(
                    "first voter {} belongs to market unit {} at vote time",
                    voter.staff_id, voter.unit_id
                ),
            ),
            RuleCheck::new(
                "V3",
                format!(
                    "vote bound to file version {} ({})",
                    self.version,
                    self.content_hash()
                ),
            ),
        ];
        let vote = Vote {
            stage: VoteStage::First,
            voter: voter.clone(),
            decision,
            rationale,
            file_version: self.version,
            content_hash: self.content_hash(),
            cast_at: now,
            checks,
        };
        self.votes.push(vote);
        match decision {
            VoteDecision::Approve => self.status = CaseStatus::AwaitingSecondVote,
            // Market does not want the business: the case ends here.
            VoteDecision::Decline => self.decide(DecisionOutcome::Declined, now),
        }
        self.return_reason = None;
        self.touch(now);
        self.last_vote()
    }

    /// The independent second vote, from a back-office unit at vote time, by a
    /// different natural person than the first voter (V1, S2, S4).
    pub fn cast_second_vote(
        &mut self,
        voter: Option<&Voter>,
        decision: VoteDecision,
        rationale: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<&Vote, DomainError> {
        if self.status != CaseStatus::AwaitingSecondVote {
            return Err(DomainError::InvalidState(format!(
                "a second vote needs a case awaiting the second vote; it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let voter = require_side(voter, Side::Backoffice, "V1", "cast the second vote")?;
        let first = self.current_vote(VoteStage::First).ok_or_else(|| {
            DomainError::InvalidState("the case has no current first vote".into())
        })?;
        if first.voter.staff_id == voter.staff_id {
            return Err(DomainError::rule(
                "V1",
                "the second vote must come from a different person than the first vote",
            ));
        }
        let rationale = required_text("rationale", rationale, MAX_TEXT)?;
        let checks = vec![
            RuleCheck::new(
                "V1",
                format!(
                    "second voter {} belongs to back-office unit {} at vote time",
                    voter.staff_id, voter.unit_id
                ),
            ),
            RuleCheck::new(
                "V1",
                format!(
                    "second voter {} is not the first voter {}",
                    voter.staff_id, first.voter.staff_id
                ),
            ),
            RuleCheck::new(
                "V3",
                format!(
                    "vote bound to file version {} ({})",
                    self.version,
                    self.content_hash()
                ),
            ),
        ];
        let first_approved = first.decision == VoteDecision::Approve;
        self.votes.push(Vote {
            stage: VoteStage::Second,
            voter: voter.clone(),
            decision,
            rationale,
            file_version: self.version,
            content_hash: self.content_hash(),
            cast_at: now,
            checks,
        });
        // Back office cannot be outvoted: approval needs both approvals. A
        // divergent pair declines (escalation is configured elsewhere).
        let outcome = if first_approved && decision == VoteDecision::Approve {
            DecisionOutcome::Approved
        } else {
            DecisionOutcome::Declined
        };
        self.decide(outcome, now);
        self.touch(now);
        self.last_vote()
    }

    /// Back office returns the case to market for rework (V6). The file
    /// changes (new version), so the votes cast so far are void (V3).
    pub fn return_for_rework(
        &mut self,
        actor: Option<&Voter>,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if self.status != CaseStatus::AwaitingSecondVote {
            return Err(DomainError::InvalidState(format!(
                "only a case awaiting the second vote can be returned; it is {}",
                self.status
            )));
        }
        require_side(actor, Side::Backoffice, "V6", "return a case for rework")?;
        let reason = required_text("reason", reason, MAX_TEXT)?;
        self.return_reason = Some(reason);
        self.status = CaseStatus::Returned;
        self.version += 1;
        self.touch(now);
        Ok(())
    }

    fn last_vote(&self) -> Result<&Vote, DomainError> {
        self.votes
            .last()
            .ok_or_else(|| DomainError::InvalidState("no vote recorded".into()))
    }

    fn decide(&mut self, outcome: DecisionOutcome, now: Timestamp) {
        let votes: Vec<Vote> = self.current_votes().cloned().collect();
        let mut checks: Vec<RuleCheck> = votes.iter().flat_map(|v| v.checks.clone()).collect();
        if outcome == DecisionOutcome::Approved {
            checks.push(RuleCheck::new(
                "V1",
                "approved with an approving market first vote and an approving back-office second vote"
                    .to_owned(),
            ));
        }
        self.status = match outcome {
            DecisionOutcome::Approved => CaseStatus::Approved,
            DecisionOutcome::Declined => CaseStatus::Declined,
        };
        self.decision = Some(Decision {
            outcome,
            decided_at: now,
            file_version: self.version,
            content_hash: self.content_hash(),
            votes,
            checks,
        });
    }
}

fn require_side<'a>(
    actor: Option<&'a Voter>,
    side: Side,
    rule: &'static str,
    what: &str,
) -> Result<&'a Voter, DomainError> {
    match actor {
        Some(v) if v.side == side => Ok(v),
        Some(v) => Err(DomainError::rule(
            rule,
            format!(
                "only a member of a {side} unit may {what}; {} belongs to {} unit {} at this time",
                v.staff_id, v.side, v.unit_id
            ),
        )),
        None => Err(DomainError::rule(
            rule,
            format!(
                "only a member of a {side} unit may {what}; the actor has no unique unit at this time"
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
