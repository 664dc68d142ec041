//! R4 and V11 at the state machine: an approval needs the risk gate's
//! verdict; a hard breach refuses, a soft breach escalates one level, a
//! large exposure needs a board resolution; the verdict is recorded (V9).

use super::*;
use crate::{RiskVerdict, Severity};

fn with_verdict(verdict: Option<RiskVerdict>) -> VoteFacts {
    VoteFacts {
        risk: verdict,
        ..facts()
    }
}

/// A case with an approving first vote (lo-1), awaiting the second vote.
fn awaiting_second() -> CreditCase {
    let mut case = new_case();
    accept(&mut case, first(lo1(), Approve, 1), at(1));
    case
}

#[test]
fn r4_an_approval_without_a_verdict_is_refused() {
    let mut case = awaiting_second();
    let err = refuse_with(
        &mut case,
        second(ba1(), Approve, 1),
        &with_verdict(None),
        at(2),
    );
    assert_rule(&err, RuleId::R4, "no verdict");
    // A decline needs no verdict (here it diverges and escalates, V5).
    accept_with(
        &mut case,
        second(ba1(), Decline, 1),
        &with_verdict(None),
        at(3),
    );
    assert_eq!(case.status, CaseStatus::Escalated);
}

#[test]
fn r4_a_hard_breach_refuses_the_approval_and_names_the_limit() {
    let mut case = awaiting_second();
    let facts = with_verdict(Some(risk_verdict(Severity::Hard, false)));
    let err = refuse_with(&mut case, second(ba1(), Approve, 1), &facts, at(2));
    assert_rule(&err, RuleId::R4, "hard");
    assert!(err.to_string().contains("borrower_limit"), "{err}");
}

#[test]
fn r4_a_soft_breach_escalates_one_level_then_approves_flagged() {
    let mut case = awaiting_second();
    let soft = with_verdict(Some(risk_verdict(Severity::Soft, false)));
    accept_with(&mut case, second(ba1(), Approve, 1), &soft, at(2));
    assert_eq!(case.status, CaseStatus::Escalated);
    assert_eq!(case.escalation_level, Some(2));
    assert!(case.decision.is_none());
    // The next level votes; the soft breach now stands, flagged (R4, V9).
    accept_with(&mut case, first(lo2(), Approve, 1), &soft, at(3));
    accept_with(&mut case, second(ba2(), Approve, 1), &soft, at(4));
    assert_eq!(case.status, CaseStatus::Approved);
    let decision = case.decision.as_ref().unwrap();
    assert_eq!(decision.level, 2);
    assert!(decision.flags.contains(&DecisionFlag::RiskSoftBreach));
    assert!(decision.flags.contains(&DecisionFlag::Escalated));
    assert_eq!(decision.risk.as_ref().unwrap().outcome, Severity::Soft);
}

#[test]
fn r4_a_pass_is_recorded_in_the_decision() {
    let mut case = awaiting_second();
    accept(&mut case, second(ba1(), Approve, 1), at(2));
    let decision = case.decision.as_ref().unwrap();
    assert_eq!(decision.risk, Some(risk_pass()));
    assert!(!decision.flags.contains(&DecisionFlag::RiskSoftBreach));
}

#[test]
fn v11_a_large_exposure_needs_a_board_resolution() {
    let mut case = awaiting_second();
    let large = with_verdict(Some(risk_verdict(Severity::Within, true)));
    let err = refuse_with(&mut case, second(ba1(), Approve, 1), &large, at(2));
    assert_rule(&err, RuleId::V11, "large exposure");
    accept_with(&mut case, resolution(ba2(), "board 2026/17"), &large, at(3));
    let err = refuse_with(&mut case, second(ba1(), Approve, 1), &large, at(3));
    assert_rule(
        &err,
        RuleId::V11,
        "large exposure, resolution not confirmed",
    );
    accept_with(&mut case, confirm(bb1()), &large, at(3));
    accept_with(&mut case, second(ba1(), Approve, 1), &large, at(4));
    let decision = case.decision.as_ref().unwrap();
    assert!(decision.flags.contains(&DecisionFlag::LargeExposure));
}

#[test]
fn v8_the_single_vote_lane_needs_a_clean_verdict() {
    let rules = rules_with(|p| p.single_vote_below = Some(dec("250000")));
    for (verdict, decided) in [
        (Some(risk_pass()), true),
        (Some(risk_verdict(Severity::Soft, false)), false),
        (Some(risk_verdict(Severity::Within, true)), false),
        (None, false),
    ] {
        let facts = VoteFacts {
            rules: rules.clone(),
            risk: verdict.clone(),
            ..facts_for("100000")
        };
        let mut case = new_case();
        accept_with(&mut case, first(lo1(), Approve, 1), &facts, at(1));
        assert_eq!(
            case.status == CaseStatus::Approved,
            decided,
            "verdict {verdict:?}"
        );
    }
}
