//! The four-eyes credit case (V1-V11, S5, S6).
//!
//! Lifecycle: `draft` -> first vote (market) -> `awaiting_second_vote` ->
//! second vote (back office) -> `approved` | `declined` | `escalated`. An
//! escalated case is voted again, one competence level up, by a new market
//! voter and a new back-office voter (V5). Back office may send the case back
//! (`returned`), which changes the file and voids the votes cast so far (V3,
//! V6). Every vote names the file version and content hash it was cast on and
//! carries the list of rule checks it passed (V9).
//!
//! The relational facts a vote is checked against (rule set in force,
//! aggregated group exposure, relationship managers, related parties) are
//! loaded by the service and handed in as [`VoteFacts`]; the checks here are
//! pure.
//!
//! Split by subject: `status`, `file`, `records` and `facts` hold what a case
//! is made of and checked against; `checks` the checks on a voter;
//! `voting` the two votes and the decision; `lifecycle` editing, returning,
//! the board resolution and re-evaluation. This file holds the case itself.

mod checks;
mod conditions;
mod facts;
mod file;
mod lifecycle;
mod records;
mod status;
mod voting;

pub use facts::{VoteFacts, aggregated_exposure};
pub use file::CaseFile;
pub use records::{
    BoardResolution, Condition, CreditVersion, Decision, DecisionFlag, DecisionOutcome,
    NewCondition, RuleCheck, SignOff, Vote,
};
pub use status::{CaseStatus, VoteDecision, VoteStage};
// Re-exported where callers have always found it; it lives with the other
// text checks so the rule sets can use it without importing the case.
pub use crate::text::required_text;

use crate::{CaseId, DomainError, StaffId, Timestamp};
use std::collections::BTreeSet;

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
    /// Everybody who edited the file (S6); the originator is kept apart.
    pub editors: BTreeSet<StaffId>,
    /// Voting round: +1 per escalation (V5). Never goes back.
    pub round: u32,
    /// The level an escalation raised the case to (V5); reset by a new file.
    pub escalation_level: Option<u8>,
    /// A related party of the borrower or its group is on record (V11).
    pub related_party: bool,
    pub board_resolution: Option<BoardResolution>,
    pub votes: Vec<Vote>,
    pub decision: Option<Decision>,
    /// Conditions precedent of the approval (L5).
    pub conditions: Vec<Condition>,
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
            editors: BTreeSet::new(),
            round: 0,
            escalation_level: None,
            related_party: false,
            board_resolution: None,
            votes: Vec::new(),
            decision: None,
            conditions: Vec::new(),
            return_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn content_hash(&self) -> String {
        self.file.content_hash()
    }

    /// Votes cast on the current file version, every round; earlier file
    /// versions' votes are void (V3).
    pub fn current_votes(&self) -> impl Iterator<Item = &Vote> {
        self.votes
            .iter()
            .filter(move |v| v.file_version == self.version)
    }

    fn current_vote(&self, stage: VoteStage) -> Option<&Vote> {
        self.current_votes()
            .find(|v| v.stage == stage && v.round == self.round)
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

    /// A valid board resolution covers the current file version (V11).
    /// A board resolution for the current file version, confirmed by a
    /// second, board-level person (V11).
    pub fn has_board_resolution(&self) -> bool {
        self.board_resolution
            .as_ref()
            .is_some_and(|r| r.file_version == self.version && r.confirmed_by.is_some())
    }

    /// A new file restarts voting from the beginning (V3, V6).
    fn restart_voting(&mut self) {
        self.version += 1;
        self.escalation_level = None;
    }

    fn last_vote(&self) -> Result<&Vote, DomainError> {
        self.votes
            .last()
            .ok_or_else(|| DomainError::InvalidState("no vote recorded".into()))
    }
}

#[cfg(test)]
mod tests;
