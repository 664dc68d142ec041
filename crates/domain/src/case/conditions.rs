//! Conditions precedent (L5): the approving second vote attaches them, back
//! office signs each off, and the credit is disbursed only when none is open.

use super::CreditCase;
use super::checks::require_side;
use super::records::{Condition, NewCondition, SignOff};
use super::status::{CaseStatus, VoteStage};
use crate::text::{MAX_TEXT, required_text};
use crate::{DomainError, RuleId, Side, Timestamp, Voter};

/// More conditions than this are a file to rework, not an approval.
pub const MAX_CONDITIONS: usize = 20;

impl CreditCase {
    /// Attaches the conditions of the approval just decided by `voter`'s
    /// second vote (L5). Only an approving second vote that decided the case
    /// carries conditions.
    pub fn attach_conditions(
        &mut self,
        voter: &Voter,
        conditions: &[NewCondition],
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if conditions.is_empty() {
            return Ok(());
        }
        if conditions.len() > MAX_CONDITIONS {
            return Err(DomainError::Invalid(format!(
                "an approval carries at most {MAX_CONDITIONS} conditions"
            )));
        }
        let decided_by_this_vote = self.status == CaseStatus::Approved
            && self.votes.last().is_some_and(|vote| {
                vote.stage == VoteStage::Second && vote.voter.staff_id == voter.staff_id
            });
        if !decided_by_this_vote {
            return Err(DomainError::Invalid(
                "conditions belong to an approving second vote that decides the case; this vote \
                 does not approve it"
                    .into(),
            ));
        }
        let today = now.date_naive();
        for (index, condition) in conditions.iter().enumerate() {
            let text = required_text("condition text", &condition.text, MAX_TEXT)?;
            if condition.due.is_some_and(|due| due < today) {
                return Err(DomainError::Invalid(format!(
                    "condition {} is due before today",
                    index + 1
                )));
            }
            self.conditions.push(Condition {
                id: u32::try_from(self.conditions.len() + 1).unwrap_or(u32::MAX),
                text,
                due: condition.due,
                attached_by: voter.staff_id.clone(),
                attached_at: now,
                sign_off: None,
            });
        }
        Ok(())
    }

    /// Back office signs a condition off (L5), naming the evidence.
    pub fn sign_off_condition(
        &mut self,
        actor: Option<&Voter>,
        condition_id: u32,
        evidence: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<&Condition, DomainError> {
        let actor = require_side(actor, Side::Backoffice, RuleId::L5, "sign off a condition")?;
        if self.status != CaseStatus::Approved {
            return Err(DomainError::InvalidState(format!(
                "conditions are signed off on an approved case; it is {}",
                self.status
            )));
        }
        let evidence = required_text("evidence", evidence, MAX_TEXT)?;
        let note = note
            .map(|n| required_text("note", n, MAX_TEXT))
            .transpose()?;
        let by = actor.staff_id.clone();
        let condition = self
            .conditions
            .iter_mut()
            .find(|c| c.id == condition_id)
            .ok_or_else(|| {
                DomainError::Invalid(format!("the case has no condition {condition_id}"))
            })?;
        if let Some(done) = &condition.sign_off {
            return Err(DomainError::InvalidState(format!(
                "condition {condition_id} was signed off by {} already",
                done.by
            )));
        }
        condition.sign_off = Some(SignOff {
            by,
            at: now,
            evidence,
            note,
        });
        self.revision += 1;
        self.updated_at = now;
        self.conditions
            .iter()
            .find(|c| c.id == condition_id)
            .ok_or_else(|| DomainError::InvalidState("the condition vanished".into()))
    }

    /// The conditions not signed off yet (L5).
    pub fn open_conditions(&self) -> impl Iterator<Item = &Condition> {
        self.conditions.iter().filter(|c| c.sign_off.is_none())
    }

    /// L5: refused while a condition is open, naming every open one.
    pub fn check_conditions_met(&self) -> Result<(), DomainError> {
        let open: Vec<String> = self
            .open_conditions()
            .map(|c| format!("{} ({})", c.id, c.text))
            .collect();
        if open.is_empty() {
            Ok(())
        } else {
            Err(DomainError::rule(
                RuleId::L5,
                format!(
                    "the approval's conditions precedent are not all signed off by back office: \
                     open {}",
                    open.join("; ")
                ),
            ))
        }
    }
}
