//! The checks a voter must pass at vote time (V1, V4, V5, S5, S6) and the
//! side check every action of a case makes (S1, V6, V11).

use super::CreditCase;
use super::facts::VoteFacts;
use super::records::RuleCheck;
use super::status::{VoteStage, side_of};
use crate::{DomainError, RuleId, Side, StaffId, Timestamp, Voter};

/// A voter who passed every check, with what the vote records about it.
pub(super) struct CheckedVoter {
    pub(super) voter: Voter,
    pub(super) required: u8,
    pub(super) checks: Vec<RuleCheck>,
}

/// The actor, if a member of a `side` unit at this time; otherwise a
/// refusal under `rule` naming what the actor tried to do.
pub(super) fn require_side<'a>(
    actor: Option<&'a Voter>,
    side: Side,
    rule: RuleId,
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

impl CreditCase {
    /// Every check a voter must pass at vote time (V1, V4, V5, S4, S5, S6).
    /// Returns the voter as recorded, the required level and the passed checks.
    pub(super) fn check_voter(
        &self,
        stage: VoteStage,
        voter: Option<&Voter>,
        facts: &VoteFacts,
        now: Timestamp,
    ) -> Result<CheckedVoter, DomainError> {
        let side = side_of(stage);
        let what = match stage {
            VoteStage::First => "cast the first vote",
            VoteStage::Second => "cast the second vote",
        };
        let voter = require_side(voter, side, RuleId::V2, what)?;
        let who = &voter.staff_id;
        let mut checks = vec![RuleCheck::new(
            RuleId::V2,
            format!(
                "{stage} voter {who} belongs to {side} unit {} at vote time",
                voter.unit_id
            ),
        )];
        if stage == VoteStage::Second {
            checks.push(self.check_not_first_voter(who)?);
        }
        if self.round > 0 {
            checks.push(self.check_new_after_escalation(who)?);
        }
        checks.push(self.check_unconflicted(who, facts)?);
        if stage == VoteStage::Second {
            checks.push(check_cooling_off(voter, facts, now)?);
        } else {
            checks.push(check_rating(facts, now)?);
        }
        let required = facts.required_level(self.escalation_level)?;
        // L9: for a problem loan the back-office voter needs one level more;
        // the case's level (what the first vote must hold, what the decision
        // records) stays.
        let mut voter_needs = required;
        if stage == VoteStage::Second && facts.stage.is_problem_loan() {
            let raised = facts.back_office_level(required);
            if voter.competence_level < raised && voter.competence_level >= required {
                return Err(DomainError::rule(
                    RuleId::L9,
                    format!(
                        "the borrower is in {}: the back-office vote needs competence level \
                         {raised} ({}), one above the case's level {required}",
                        facts.stage,
                        facts.rules.competence().name_of(raised)
                    ),
                ));
            }
            checks.push(RuleCheck::new(
                RuleId::L9,
                format!(
                    "the borrower is in {}: the back-office vote needs competence level {raised} \
                     instead of {required}",
                    facts.stage
                ),
            ));
            voter_needs = raised;
        }
        checks.push(check_competence(voter, side, voter_needs, facts)?);
        checks.push(RuleCheck::new(
            RuleId::V3,
            format!(
                "vote bound to file version {} ({})",
                self.version,
                self.content_hash()
            ),
        ));
        Ok(CheckedVoter {
            voter: voter.clone(),
            required,
            checks,
        })
    }

    /// V1: the second vote comes from another person than the first.
    fn check_not_first_voter(&self, who: &StaffId) -> Result<RuleCheck, DomainError> {
        let first = self.current_vote(VoteStage::First).ok_or_else(|| {
            DomainError::InvalidState("the case has no current first vote".into())
        })?;
        crate::four_eyes::require_other_person(
            &first.voter.staff_id,
            who,
            RuleId::V1,
            "the second vote must come from a different person than the first vote",
        )?;
        Ok(RuleCheck::new(
            RuleId::V1,
            format!(
                "second voter {who} is not the first voter {}",
                first.voter.staff_id
            ),
        ))
    }

    /// V5: an escalated vote needs a voter who did not vote before it.
    fn check_new_after_escalation(&self, who: &StaffId) -> Result<RuleCheck, DomainError> {
        let voted_before = self
            .current_votes()
            .any(|v| v.round < self.round && &v.voter.staff_id == who);
        if voted_before {
            return Err(DomainError::rule(
                RuleId::V5,
                format!(
                    "{who} already voted on this case before the escalation; the escalated \
                     vote needs a new voter"
                ),
            ));
        }
        Ok(RuleCheck::new(
            RuleId::V5,
            format!(
                "{who} did not vote before the escalation (round {})",
                self.round
            ),
        ))
    }

    /// S6: no vote by the originator, an editor, a relationship manager, a
    /// related party or whoever changed the borrower's group while the case
    /// was open.
    fn check_unconflicted(
        &self,
        who: &StaffId,
        facts: &VoteFacts,
    ) -> Result<RuleCheck, DomainError> {
        if let Some(reason) = self.conflict_of(who, facts) {
            return Err(DomainError::rule(
                RuleId::S6,
                format!("{who} {reason} and may not vote on it (conflict of interest)"),
            ));
        }
        Ok(RuleCheck::new(
            RuleId::S6,
            format!("{who} is not originator, editor, relationship manager or related party"),
        ))
    }

    /// Why `who` may not vote on this case (S6), if anything.
    pub(super) fn conflict_of(&self, who: &StaffId, facts: &VoteFacts) -> Option<&'static str> {
        if who == &self.originator {
            Some("originated the case")
        } else if self.editors.contains(who) {
            Some("edited the case")
        } else if facts.relationship_managers.contains(who) {
            Some("is relationship manager of the borrower or of a member of its group")
        } else if facts.related_parties.contains(who) {
            Some("is recorded as a related party of the borrower or its group (KWG section 15)")
        } else if facts.group_changers.contains(who) {
            Some(
                "changed the group membership of the borrower or its group while the case was open",
            )
        } else if facts.stage_changers.contains(who) {
            Some("moved the borrower's stage of care while the case was open")
        } else {
            None
        }
    }
}

/// S5: a back-office voter who left market did so before the cooling-off
/// period.
fn check_cooling_off(
    voter: &Voter,
    facts: &VoteFacts,
    now: Timestamp,
) -> Result<RuleCheck, DomainError> {
    let who = &voter.staff_id;
    let window_start = facts.rules.cooling_off_start(now);
    let months = facts.rules.parameters.cooling_off_months;
    match voter.left_market_at {
        Some(left) if left > window_start => Err(DomainError::rule(
            RuleId::S5,
            format!(
                "{who} left a market unit on {} and may not cast a back-office vote \
                 before the cooling-off period of {months} months has passed",
                left.date_naive()
            ),
        )),
        Some(left) => Ok(RuleCheck::new(
            RuleId::S5,
            format!(
                "{who} left market on {}, more than {months} months before the vote",
                left.date_naive()
            ),
        )),
        None => Ok(RuleCheck::new(
            RuleId::S5,
            format!("{who} was never in a market unit"),
        )),
    }
}

/// L4: a first vote needs the borrower's rating, set by back office and
/// younger than the rule set's maximum age.
fn check_rating(facts: &VoteFacts, now: Timestamp) -> Result<RuleCheck, DomainError> {
    let rules = &facts.rules.parameters.rating;
    let Some(rating) = &facts.rating else {
        return Err(DomainError::rule(
            RuleId::L4,
            "the borrower has no rating; back office rates the borrower before the first vote",
        ));
    };
    let oldest = rules.oldest_accepted(now);
    if rating.rated_at < oldest {
        return Err(DomainError::rule(
            RuleId::L4,
            format!(
                "the borrower's rating of {} is older than {} months; back office renews it                  before the first vote",
                rating.rated_at.date_naive(),
                rules.max_age_months
            ),
        ));
    }
    Ok(RuleCheck::new(
        RuleId::L4,
        format!(
            "rating class {} (PD {}) set by {} on {}, younger than {} months",
            rating.class,
            rating.pd,
            rating.rated_by,
            rating.rated_at.date_naive(),
            rules.max_age_months
        ),
    ))
}

/// V4: the voter holds the competence level the case requires.
fn check_competence(
    voter: &Voter,
    side: Side,
    required: u8,
    facts: &VoteFacts,
) -> Result<RuleCheck, DomainError> {
    let who = &voter.staff_id;
    let order = facts.rules.competence();
    if voter.competence_level < required {
        return Err(DomainError::rule(
            RuleId::V4,
            format!(
                "this case requires competence level {required} ({}) for {} of {} {}; {who} \
                 holds level {} on the {side} side",
                order.name_of(required),
                basis_name(facts),
                facts.competence_amount(),
                order.currency,
                voter.competence_level
            ),
        ));
    }
    Ok(RuleCheck::new(
        RuleId::V4,
        format!(
            "{who} holds level {} on the {side} side; the case requires level {required} ({}) \
             for {} of {} {} (rule set {})",
            voter.competence_level,
            order.name_of(required),
            basis_name(facts),
            facts.competence_amount(),
            order.currency,
            facts.rules.version
        ),
    ))
}

/// How a competence message names the amount it compared (L1, L4).
fn basis_name(facts: &VoteFacts) -> String {
    let basis = match facts.rules.parameters.competence_basis {
        crate::CompetenceBasis::Exposure => "an aggregated exposure",
        crate::CompetenceBasis::Unsecured => "an unsecured part",
    };
    match &facts.rating {
        Some(rating) if facts.rules.parameters.rating.extra_levels(rating.class) > 0 => {
            format!("{basis} with rating class {}", rating.class)
        }
        _ => basis.to_owned(),
    }
}
