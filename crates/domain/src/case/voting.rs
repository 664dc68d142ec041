//! Casting the two votes and what follows from them: the single-vote lane
//! (V8), divergence and escalation (V5), the risk-control gate on an
//! approval (R4, V11) and the decision record (V9).

use super::CreditCase;
use super::checks::CheckedVoter;
use super::facts::VoteFacts;
use super::records::{CreditVersion, Decision, DecisionFlag, DecisionOutcome, RuleCheck, Vote};
use super::status::{CaseStatus, VoteDecision, VoteStage};
use crate::rules::DivergencePolicy;
use crate::text::{MAX_TEXT, required_text};
use crate::verdict::Severity;
use crate::{DomainError, RuleId, StaffId, Timestamp, Voter};

impl CreditCase {
    fn record_vote(
        &mut self,
        stage: VoteStage,
        checked: CheckedVoter,
        decision: VoteDecision,
        rationale: String,
        now: Timestamp,
    ) {
        self.votes.push(Vote {
            stage,
            voter: checked.voter,
            decision,
            rationale,
            file_version: self.version,
            content_hash: self.content_hash(),
            cast_at: now,
            round: self.round,
            required_level: checked.required,
            checks: checked.checks,
        });
    }

    /// The first vote, from a competent, unconflicted market voter (V1, V4,
    /// V5, S4, S6). In the single-vote lane (V8, off by default) an approving
    /// first vote below the threshold decides the case.
    pub fn cast_first_vote(
        &mut self,
        voter: Option<&Voter>,
        decision: VoteDecision,
        rationale: &str,
        expected_version: i64,
        facts: &VoteFacts,
        now: Timestamp,
    ) -> Result<&Vote, DomainError> {
        if !matches!(
            self.status,
            CaseStatus::Draft | CaseStatus::Returned | CaseStatus::Escalated
        ) {
            return Err(DomainError::InvalidState(format!(
                "a first vote needs a case in draft, returned or escalated; it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let checked = self.check_voter(VoteStage::First, voter, facts, now)?;
        let required = checked.required;
        let rationale = required_text("rationale", rationale, MAX_TEXT)?;
        if !facts.related_parties.is_empty() {
            self.related_party = true;
        }
        self.record_vote(VoteStage::First, checked, decision, rationale, now);
        self.return_reason = None;
        match decision {
            VoteDecision::Approve => self.after_first_approval(required, facts, now),
            // Market does not want the business: the case ends here. After an
            // escalation this is the higher level confirming the back
            // office's decline.
            VoteDecision::Decline => {
                let flags = if self.escalation_level.is_some() {
                    vec![DecisionFlag::Escalated]
                } else {
                    Vec::new()
                };
                self.decide(
                    DecisionOutcome::Declined,
                    required,
                    facts,
                    flags,
                    Vec::new(),
                    now,
                );
            }
        }
        self.touch(now);
        self.last_vote()
    }

    /// An approving first vote decides the case in the single-vote lane (V8)
    /// and otherwise waits for the second vote.
    fn after_first_approval(&mut self, required: u8, facts: &VoteFacts, now: Timestamp) {
        let lane = facts
            .rules
            .parameters
            .single_vote_below
            .filter(|threshold| facts.aggregated_exposure < *threshold);
        match lane {
            // Only a clean risk verdict may skip the second vote (R4).
            Some(threshold)
                if self.escalation_level.is_none()
                    && !self.related_party
                    && facts.risk.as_ref().is_some_and(|verdict| {
                        verdict.outcome == Severity::Within && !verdict.large_exposure
                    }) =>
            {
                let check = RuleCheck::new(
                    RuleId::V8,
                    format!(
                        "aggregated exposure {} below the single-vote threshold {threshold} \
                         (rule set {}): one market vote suffices",
                        facts.aggregated_exposure, facts.rules.version
                    ),
                );
                self.decide(
                    DecisionOutcome::Approved,
                    required,
                    facts,
                    vec![DecisionFlag::SingleVoteLane],
                    vec![check],
                    now,
                );
            }
            _ => self.status = CaseStatus::AwaitingSecondVote,
        }
    }

    /// The independent second vote from a competent back-office voter who is
    /// a different person, outside the cooling-off period and unconflicted
    /// (V1, V2, V4, S5, S6). Divergent votes decline or escalate (V5); back
    /// office is never outvoted.
    pub fn cast_second_vote(
        &mut self,
        voter: Option<&Voter>,
        decision: VoteDecision,
        rationale: &str,
        expected_version: i64,
        facts: &VoteFacts,
        now: Timestamp,
    ) -> Result<&Vote, DomainError> {
        if self.status != CaseStatus::AwaitingSecondVote {
            return Err(DomainError::InvalidState(format!(
                "a second vote needs a case awaiting the second vote; it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let checked = self.check_voter(VoteStage::Second, voter, facts, now)?;
        let required = checked.required;
        let first = self
            .current_vote(VoteStage::First)
            .cloned()
            .ok_or_else(|| {
                DomainError::InvalidState("the case has no current first vote".into())
            })?;
        self.check_first_vote_stands(&first, required, facts)?;
        let rationale = required_text("rationale", rationale, MAX_TEXT)?;
        let related_party = self.related_party || !facts.related_parties.is_empty();
        let both_approve =
            first.decision == VoteDecision::Approve && decision == VoteDecision::Approve;
        let mut flags = Vec::new();
        if both_approve {
            self.check_board_resolution_for_approval(related_party, &checked.voter.staff_id)?;
            flags.extend(self.gate_approval(facts)?);
        }
        self.related_party = related_party;
        self.record_vote(VoteStage::Second, checked, decision, rationale, now);
        if flags.contains(&DecisionFlag::RiskSoftBreach)
            && let Some(next) = self.risk_escalation(facts, required)?
        {
            self.escalate(next);
            self.touch(now);
            return self.last_vote();
        }
        if self.escalation_level.is_some() {
            flags.push(DecisionFlag::Escalated);
        }
        if both_approve {
            self.approve_after_second_vote(required, facts, flags, now);
        } else if decision == VoteDecision::Decline && first.decision == VoteDecision::Approve {
            self.diverge(required, facts, flags, now);
        } else {
            self.decide(
                DecisionOutcome::Declined,
                required,
                facts,
                flags,
                Vec::new(),
                now,
            );
        }
        self.touch(now);
        self.last_vote()
    }

    /// V11 on an approving second vote: a related-party credit needs a
    /// confirmed board resolution for this file version, and whoever
    /// recorded the resolution cannot cast the approving vote.
    fn check_board_resolution_for_approval(
        &self,
        related_party: bool,
        voter: &StaffId,
    ) -> Result<(), DomainError> {
        if related_party && !self.has_board_resolution() {
            return Err(DomainError::rule(
                RuleId::V11,
                "a related-party credit (KWG section 15) needs a board resolution recorded for \
                 this file version and confirmed by a board-level member of the back office \
                 before it can be approved",
            ));
        }
        if self
            .board_resolution
            .as_ref()
            .is_some_and(|r| r.file_version == self.version && &r.recorded_by == voter)
        {
            return Err(DomainError::rule(
                RuleId::V11,
                "the person who recorded the board resolution cannot cast the approving vote",
            ));
        }
        Ok(())
    }

    /// The first vote must still stand when the second is cast: the group or
    /// the rules may have changed since (R2, V4), and its voter may have
    /// become conflicted (S6).
    fn check_first_vote_stands(
        &self,
        first: &Vote,
        required: u8,
        facts: &VoteFacts,
    ) -> Result<(), DomainError> {
        if first.voter.competence_level < required {
            return Err(DomainError::rule(
                RuleId::V4,
                format!(
                    "the case now requires competence level {required}, but the first vote was \
                     cast at level {}; market must vote again",
                    first.voter.competence_level
                ),
            ));
        }
        if let Some(reason) = self.conflict_of(&first.voter.staff_id, facts) {
            return Err(DomainError::rule(
                RuleId::S6,
                format!(
                    "the first voter {} {reason} and may not have voted on it; market must vote \
                     again",
                    first.voter.staff_id
                ),
            ));
        }
        Ok(())
    }

    /// Two approving votes approve the case, recording the four-eyes check
    /// (V1) and the board resolution of a related-party credit (V11).
    fn approve_after_second_vote(
        &mut self,
        required: u8,
        facts: &VoteFacts,
        flags: Vec<DecisionFlag>,
        now: Timestamp,
    ) {
        let mut extra = vec![RuleCheck::new(
            RuleId::V1,
            "approved with an approving market first vote and an approving back-office \
             second vote"
                .to_owned(),
        )];
        if let Some(resolution) = self
            .board_resolution
            .as_ref()
            .filter(|_| self.related_party)
        {
            extra.push(RuleCheck::new(
                RuleId::V11,
                format!("board resolution {} on record", resolution.reference),
            ));
        }
        self.decide(
            DecisionOutcome::Approved,
            required,
            facts,
            flags,
            extra,
            now,
        );
    }

    /// Back office declines what market approved: divergent votes never
    /// approve at the same level (V5); the case escalates one level up or,
    /// by policy or at the top of the order, is declined.
    fn diverge(
        &mut self,
        required: u8,
        facts: &VoteFacts,
        mut flags: Vec<DecisionFlag>,
        now: Timestamp,
    ) {
        let next = facts
            .rules
            .competence()
            .next_level(required)
            .map(|l| l.level);
        match (facts.rules.parameters.divergence, next) {
            (DivergencePolicy::Escalate, Some(next)) => self.escalate(next),
            _ => {
                flags.push(DecisionFlag::Divergent);
                self.decide(
                    DecisionOutcome::Declined,
                    required,
                    facts,
                    flags,
                    Vec::new(),
                    now,
                );
            }
        }
    }

    /// The case goes to a new voting round at `level` (V5, R4).
    fn escalate(&mut self, level: u8) {
        self.status = CaseStatus::Escalated;
        self.round += 1;
        self.escalation_level = Some(level);
    }

    /// The risk-control gate on an approval (R4, V11): refuses a hard breach
    /// or an unevaluated verdict, and a large exposure without a board
    /// resolution; returns the flags the decision will carry.
    fn gate_approval(&self, facts: &VoteFacts) -> Result<Vec<DecisionFlag>, DomainError> {
        let verdict = facts.risk.as_ref().ok_or_else(|| {
            DomainError::rule(
                RuleId::R4,
                "the risk-control gate has not evaluated this approval, so it is refused",
            )
        })?;
        if verdict.outcome == Severity::Hard {
            return Err(DomainError::rule(
                RuleId::R4,
                format!("approval refused by risk control: {}", verdict.summary()),
            ));
        }
        let mut flags = Vec::new();
        if verdict.large_exposure {
            if !self.has_board_resolution() {
                return Err(DomainError::rule(
                    RuleId::V11,
                    "a large exposure (>= 10 % of Tier 1 capital, KWG section 13) needs a \
                     full-board resolution recorded for this file version and confirmed by a \
                     board-level member of the back office before it can be approved",
                ));
            }
            flags.push(DecisionFlag::LargeExposure);
        }
        if verdict.outcome == Severity::Soft {
            flags.push(DecisionFlag::RiskSoftBreach);
        }
        Ok(flags)
    }

    /// The level a soft breach escalates to (R4): one above the level the
    /// exposure alone requires, unless the case is already voted there or
    /// higher (then `None`: the approval stands, flagged). At the top of the
    /// competence order there is nothing to escalate to.
    fn risk_escalation(&self, facts: &VoteFacts, required: u8) -> Result<Option<u8>, DomainError> {
        let by_exposure = facts.required_level(None)?;
        if required > by_exposure {
            return Ok(None);
        }
        Ok(facts
            .rules
            .competence()
            .next_level(required)
            .map(|level| level.level))
    }

    fn decide(
        &mut self,
        outcome: DecisionOutcome,
        level: u8,
        facts: &VoteFacts,
        mut flags: Vec<DecisionFlag>,
        extra_checks: Vec<RuleCheck>,
        now: Timestamp,
    ) {
        let votes: Vec<Vote> = self.current_votes().cloned().collect();
        let mut checks: Vec<RuleCheck> = votes.iter().flat_map(|v| v.checks.clone()).collect();
        checks.extend(extra_checks);
        let order = facts.rules.competence();
        if order.is_board(level) {
            flags.push(DecisionFlag::BoardLevel);
        }
        if self.related_party {
            flags.push(DecisionFlag::RelatedParty);
        }
        flags.sort();
        flags.dedup();
        self.status = match outcome {
            DecisionOutcome::Approved => CaseStatus::Approved,
            DecisionOutcome::Declined => CaseStatus::Declined,
        };
        self.decision = Some(Decision {
            outcome,
            decided_at: now,
            file_version: self.version,
            content_hash: self.content_hash(),
            level,
            level_name: order.name_of(level),
            rules_version: facts.rules.version,
            policy_hash: facts.policy_hash.clone(),
            aggregated_exposure: Some(facts.aggregated_exposure),
            risk: match outcome {
                DecisionOutcome::Approved => facts.risk.clone(),
                DecisionOutcome::Declined => None,
            },
            flags,
            votes,
            checks,
            kind: self.file.kind,
            credit_before: self.file.base.clone(),
            credit_after: match outcome {
                DecisionOutcome::Approved => Some(self.credit_after()),
                DecisionOutcome::Declined => None,
            },
            rating: facts.rating.clone(),
        });
    }

    /// The credit and its version an approval of this case produces (L1):
    /// a new credit takes the case's id and starts at version 1.
    pub fn credit_after(&self) -> CreditVersion {
        match &self.file.base {
            Some(base) => CreditVersion {
                credit_id: base.credit_id,
                version: base.version + 1,
            },
            None => CreditVersion {
                credit_id: crate::CreditId::from_uuid(self.id.as_uuid()),
                version: 1,
            },
        }
    }
}
