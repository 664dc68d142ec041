//! A case's life outside voting: market edits the file (V3, S6), back office
//! returns it for rework (V6) or records a board resolution (V11), and an
//! open case is re-evaluated when its group or the rules change (V4, R2).

use super::CreditCase;
use super::checks::require_side;
use super::facts::VoteFacts;
use super::file::CaseFile;
use super::records::BoardResolution;
use super::status::{CaseStatus, VoteStage};
use crate::text::{MAX_TEXT, required_text};
use crate::{CompetenceOrder, DomainError, RuleId, Side, Timestamp, Voter};

impl CreditCase {
    /// Market edits the file while it is with market. The new version voids
    /// every vote cast so far (V3); the editor may no longer vote (S6).
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
        let editor = require_side(editor, Side::Market, RuleId::S1, "edit the credit file")?;
        if file.borrower_id != self.file.borrower_id {
            return Err(DomainError::Invalid(
                "the borrower of a case cannot be changed; open a new case".into(),
            ));
        }
        // An edit changes the terms, never the kind or the credit (L1).
        let released = self.file.released;
        self.file = file
            .changing(self.file.kind, self.file.base.clone())?
            .releasing(released)?;
        if editor.staff_id != self.originator {
            self.editors.insert(editor.staff_id.clone());
        }
        self.restart_voting();
        self.status = CaseStatus::Draft;
        self.touch(now);
        Ok(())
    }

    /// The case's documents changed (L2): a document was added to the case
    /// or replaced (`documents` is the new list), or one of the borrower's
    /// (`documents` unchanged). It is a new file version that voids every
    /// vote cast so far (V3); a case waiting for a vote goes back to market
    /// to be voted again. A decided case takes no change.
    pub fn change_documents(
        &mut self,
        documents: Vec<crate::credit_file::FileDocument>,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if self.status.is_final() {
            return Err(DomainError::InvalidState(format!(
                "the credit file of a {} case cannot change; open a new case",
                self.status
            )));
        }
        self.file.documents = documents;
        if matches!(
            self.status,
            CaseStatus::AwaitingSecondVote | CaseStatus::Escalated
        ) {
            self.return_reason = Some(required_text("reason", reason, MAX_TEXT)?);
            self.status = CaseStatus::Returned;
        }
        self.restart_voting();
        self.touch(now);
        Ok(())
    }

    /// Back office returns the case to market for rework (V6). The file
    /// changes (new version), so the votes cast so far are void (V3).
    pub fn return_for_rework(
        &mut self,
        actor: Option<&Voter>,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if !matches!(
            self.status,
            CaseStatus::AwaitingSecondVote | CaseStatus::Escalated
        ) {
            return Err(DomainError::InvalidState(format!(
                "only a case awaiting a vote from back office or an escalated case can be \
                 returned; it is {}",
                self.status
            )));
        }
        require_side(
            actor,
            Side::Backoffice,
            RuleId::V6,
            "return a case for rework",
        )?;
        let reason = required_text("reason", reason, MAX_TEXT)?;
        self.return_reason = Some(reason);
        self.status = CaseStatus::Returned;
        self.restart_voting();
        self.touch(now);
        Ok(())
    }

    /// Who may `act` ("record", "confirm") on a board resolution: a member of
    /// the back office (V11), on an open case, naming its current version.
    fn board_resolution_actor<'a>(
        &self,
        actor: Option<&'a Voter>,
        expected_version: i64,
        act: &str,
    ) -> Result<&'a Voter, DomainError> {
        if self.status.is_final() {
            return Err(DomainError::InvalidState(format!(
                "a board resolution cannot be {act}ed on a {} case",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        require_side(
            actor,
            Side::Backoffice,
            RuleId::V11,
            &format!("{act} a board resolution"),
        )
    }

    /// Back office records the board resolution a related-party credit needs
    /// (V11). It names and covers one file version, the current one (V3).
    pub fn record_board_resolution(
        &mut self,
        actor: Option<&Voter>,
        reference: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        let actor = self.board_resolution_actor(actor, expected_version, "record")?;
        let reference = required_text("reference", reference, 200)?;
        self.board_resolution = Some(BoardResolution {
            reference,
            recorded_by: actor.staff_id.clone(),
            recorded_at: now,
            file_version: self.version,
            content_hash: self.content_hash(),
            confirmed_by: None,
            confirmed_at: None,
        });
        self.touch(now);
        Ok(())
    }

    /// A board-level member of the back office confirms the resolution
    /// recorded for the current file version (V11): the recorder cannot, so
    /// no single analyst can type a resolution and rely on it.
    pub fn confirm_board_resolution(
        &mut self,
        actor: Option<&Voter>,
        order: &CompetenceOrder,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        let actor = self.board_resolution_actor(actor, expected_version, "confirm")?;
        if !order.is_board(actor.competence_level) {
            return Err(DomainError::rule(
                RuleId::V11,
                format!(
                    "only a board-level member of the back office may confirm a board resolution; \
                     {} holds back-office competence level {}",
                    actor.staff_id, actor.competence_level
                ),
            ));
        }
        let version = self.version;
        let resolution = self
            .board_resolution
            .as_mut()
            .filter(|r| r.file_version == version)
            .ok_or_else(|| {
                DomainError::InvalidState(
                    "no board resolution is recorded for the current file version".into(),
                )
            })?;
        if resolution.confirmed_by.is_some() {
            return Err(DomainError::InvalidState(
                "the board resolution is confirmed already".into(),
            ));
        }
        if resolution.recorded_by == actor.staff_id {
            return Err(DomainError::rule(
                RuleId::V11,
                "the person who recorded the board resolution cannot also confirm it",
            ));
        }
        resolution.confirmed_by = Some(actor.staff_id.clone());
        resolution.confirmed_at = Some(now);
        self.touch(now);
        Ok(())
    }

    /// Re-evaluates an open case after its group or the rules changed (V4,
    /// R2): a first vote cast below the level the case now requires is void,
    /// and the case goes back to market. Returns whether the case changed.
    pub fn reevaluate(&mut self, facts: &VoteFacts, now: Timestamp) -> Result<bool, DomainError> {
        if self.status != CaseStatus::AwaitingSecondVote {
            return Ok(false);
        }
        let required = facts.required_level(self.escalation_level)?;
        let Some(first) = self.current_vote(VoteStage::First) else {
            return Ok(false);
        };
        let reason = if first.voter.competence_level < required {
            format!(
                "re-evaluated: the aggregated exposure now requires competence level {required} \
                 ({}); voting restarts",
                facts.rules.competence().name_of(required)
            )
        } else if let Some(conflict) = self.conflict_of(&first.voter.staff_id, facts) {
            format!(
                "re-evaluated: the first voter {} {conflict}; voting restarts",
                first.voter.staff_id
            )
        } else {
            return Ok(false);
        };
        self.return_reason = Some(reason);
        self.status = CaseStatus::Returned;
        self.restart_voting();
        self.touch(now);
        Ok(true)
    }
}
