//! The deviating-decisions report (L11): which decisions go into the risk
//! report to the board, and the report's rows.
//!
//! A decision deviates when its votes diverged, it was escalated, it was
//! approved over a limit's soft threshold, it was taken at board level or in
//! the single-vote lane. Related-party and large-exposure flags alone do not
//! make a decision deviating (they have their own lists).

use crate::case::{Decision, DecisionFlag, DecisionOutcome, Vote, VoteDecision, VoteStage};
use crate::{BorrowerId, CaseId, CaseKind, Money, Timestamp};
use serde::Serialize;

/// The flags that put a decision on the deviating-decisions report.
pub const DEVIATING_FLAGS: [DecisionFlag; 5] = [
    DecisionFlag::Divergent,
    DecisionFlag::Escalated,
    DecisionFlag::RiskSoftBreach,
    DecisionFlag::BoardLevel,
    DecisionFlag::SingleVoteLane,
];

/// Whether a decision with these flags is a deviating decision (L11).
pub fn is_deviating(flags: &[DecisionFlag]) -> bool {
    flags.iter().any(|flag| DEVIATING_FLAGS.contains(flag))
}

/// The flag's name as the JSON of a decision spells it.
pub fn flag_name(flag: DecisionFlag) -> &'static str {
    match flag {
        DecisionFlag::BoardLevel => "board_level",
        DecisionFlag::Escalated => "escalated",
        DecisionFlag::Divergent => "divergent",
        DecisionFlag::RelatedParty => "related_party",
        DecisionFlag::SingleVoteLane => "single_vote_lane",
        DecisionFlag::LargeExposure => "large_exposure",
        DecisionFlag::RiskSoftBreach => "risk_soft_breach",
    }
}

/// One vote as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportVote {
    pub stage: VoteStage,
    /// Voting round: 0 at first, +1 per escalation.
    pub round: u32,
    #[schema(value_type = String)]
    pub voter: crate::StaffId,
    pub decision: VoteDecision,
    pub rationale: String,
    /// The voter's competence level at vote time.
    pub level: u8,
    /// The level the case required when the vote was cast.
    pub required_level: u8,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub cast_at: Timestamp,
}

impl ReportVote {
    fn of(vote: &Vote) -> Self {
        Self {
            stage: vote.stage,
            round: vote.round,
            voter: vote.voter.staff_id.clone(),
            decision: vote.decision,
            rationale: vote.rationale.clone(),
            level: vote.voter.competence_level,
            required_level: vote.required_level,
            cast_at: vote.cast_at,
        }
    }
}

/// One deviating decision with both votes of every round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviatingDecision {
    #[schema(value_type = String, format = Uuid)]
    pub case_id: CaseId,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    pub kind: CaseKind,
    /// The amount of the case as a plain decimal string.
    pub amount: String,
    pub currency: String,
    pub outcome: DecisionOutcome,
    /// The competence level the decision was taken at.
    pub level: u8,
    pub level_name: String,
    pub flags: Vec<DecisionFlag>,
    pub rules_version: i64,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub decided_at: Timestamp,
    /// Every vote of the decided file version, all rounds, in order.
    pub votes: Vec<ReportVote>,
}

impl DeviatingDecision {
    /// The report row of a decision, or `None` if it does not deviate.
    pub fn of(
        case_id: CaseId,
        borrower_id: BorrowerId,
        amount: &Money,
        decision: &Decision,
    ) -> Option<Self> {
        if !is_deviating(&decision.flags) {
            return None;
        }
        Some(Self {
            case_id,
            borrower_id,
            kind: decision.kind,
            amount: amount.amount().to_string(),
            currency: amount.currency_code().to_owned(),
            outcome: decision.outcome,
            level: decision.level,
            level_name: decision.level_name.clone(),
            flags: decision.flags.clone(),
            rules_version: decision.rules_version,
            decided_at: decision.decided_at,
            votes: decision.votes.iter().map(ReportVote::of).collect(),
        })
    }

    /// The first and the second vote of the last round.
    pub fn last_round(&self) -> (Option<&ReportVote>, Option<&ReportVote>) {
        let round = self.votes.iter().map(|v| v.round).max().unwrap_or(0);
        let of = |stage| {
            self.votes
                .iter()
                .rev()
                .find(|v| v.round == round && v.stage == stage)
        };
        (of(VoteStage::First), of(VoteStage::Second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l11_deviating_decisions_are_those_with_a_deviating_flag() {
        use DecisionFlag::*;
        let table: &[(&[DecisionFlag], bool)] = &[
            (&[], false),
            (&[RelatedParty], false),
            (&[LargeExposure], false),
            (&[RelatedParty, LargeExposure], false),
            (&[Divergent], true),
            (&[Escalated], true),
            (&[RiskSoftBreach], true),
            (&[BoardLevel], true),
            (&[SingleVoteLane], true),
            (&[LargeExposure, Escalated], true),
            (&[BoardLevel, Divergent, RelatedParty], true),
        ];
        for (flags, deviating) in table {
            assert_eq!(is_deviating(flags), *deviating, "{flags:?}");
        }
    }

    #[test]
    fn l11_flag_names_match_the_json_of_a_decision() {
        use DecisionFlag::*;
        for flag in [
            BoardLevel,
            Escalated,
            Divergent,
            RelatedParty,
            SingleVoteLane,
            LargeExposure,
            RiskSoftBreach,
        ] {
            let json = serde_json::to_string(&flag).unwrap();
            assert_eq!(json, format!("\"{}\"", flag_name(flag)));
        }
    }
}
