//! Table tests for the credit after its first decision: decision kinds and
//! the exposure after the change (L1), the rating a first vote needs and its
//! bands (L4), and conditions precedent (L5).

use super::*;
use crate::credit::{CaseKind, CreditBase, check_change};
use crate::{CompetenceBasis, Credit, CreditId};
use VoteDecision::Approve;

fn base(amount: &str, term: u32, version: i64) -> CreditBase {
    CreditBase {
        credit_id: CreditId::from_uuid(Uuid::from_u128(0xC0)),
        version,
        amount: dec(amount),
        currency: "EUR".into(),
        term_months: term,
    }
}

fn change(kind: CaseKind, amount: &str, term: i64) -> Result<CaseFile, DomainError> {
    file_of(money(amount, "EUR"), "term-loan", term, "working capital")
        .changing(kind, Some(base("1000000", 60, 3)))
}

#[test]
fn l1_each_kind_asks_only_what_it_may_of_the_credit() {
    use CaseKind::*;
    // (kind, amount after, term after, accepted)
    let table = [
        (Increase, "1500000", 60, true),
        (Increase, "1000000", 60, false),
        (Increase, "900000", 60, false),
        (Overdraft, "1100000", 60, true),
        (Overdraft, "1000000", 60, false),
        (Prolongation, "1000000", 84, true),
        (Prolongation, "800000", 84, true),
        (Prolongation, "1000000", 60, false),
        (Prolongation, "1200000", 84, false),
        (ChangeOfTerms, "1000000", 48, true),
        (ChangeOfTerms, "1000001", 60, false),
        (CollateralRelease, "1000000", 60, true),
        (CollateralRelease, "999999", 60, false),
    ];
    for (kind, amount, term, accepted) in table {
        let result = change(kind, amount, term);
        assert_eq!(
            result.is_ok(),
            accepted,
            "L1 {kind} to {amount} over {term}"
        );
        if let Err(e) = result {
            assert_eq!(e.rule_id(), Some(RuleId::L1), "L1 {kind} {amount}: {e}");
        }
    }
    // A new credit names no credit; every other kind names one.
    assert!(file().changing(New, Some(base("1", 1, 1))).is_err());
    for kind in [
        Increase,
        Prolongation,
        ChangeOfTerms,
        CollateralRelease,
        Overdraft,
    ] {
        assert!(
            file().changing(kind, None).is_err(),
            "L1 {kind} without credit"
        );
    }
    // The currency of the credit does not change.
    let usd = file_of(money("2000000", "USD"), "term-loan", 60, "x")
        .changing(Increase, Some(base("1000000", 60, 3)));
    assert!(usd.is_err());
    assert!(check_change(New, None, &money("1", "EUR"), 1).is_ok());
}

#[test]
fn l1_the_exposure_a_decision_adds_is_the_difference() {
    use CaseKind::*;
    let table = [
        (Increase, "1500000", 60, "500000"),
        (Overdraft, "1100000", 60, "100000"),
        (Prolongation, "800000", 84, "0"),
        (ChangeOfTerms, "1000000", 48, "0"),
        (CollateralRelease, "1000000", 60, "0"),
    ];
    for (kind, amount, term, added) in table {
        let file = change(kind, amount, term).unwrap();
        assert_eq!(file.added_exposure(), dec(added), "L1 {kind}");
    }
    assert_eq!(file().added_exposure(), dec("250000.00"));
}

#[test]
fn l1_a_change_hashes_its_kind_and_credit_version() {
    let new = file_of(money("1000000", "EUR"), "term-loan", 60, "working capital");
    let release = change(CaseKind::CollateralRelease, "1000000", 60).unwrap();
    assert_ne!(new.content_hash(), release.content_hash());
    let other_version = file_of(money("1000000", "EUR"), "term-loan", 60, "working capital")
        .changing(CaseKind::CollateralRelease, Some(base("1000000", 60, 4)))
        .unwrap();
    assert_ne!(release.content_hash(), other_version.content_hash());
    // A new credit's hash is what it always was (stored votes stay bound).
    assert_eq!(
        file().content_hash(),
        "9a80b25630c60385636dc993f78368e62a3a7571043baf25b13663425a9fd210"
    );
}

#[test]
fn l1_an_increase_needs_the_level_of_the_new_total() {
    // The group holds 900k (the credit); the increase adds 300k: 1.2m needs
    // level 3 under the default order, not the level of the 300k.
    let mut case = CreditCase::open(
        CaseId::from_uuid(Uuid::from_u128(0xCA5F)),
        change(CaseKind::Increase, "1300000", 60).unwrap(),
        staff(ORIGINATOR),
        t0(),
    );
    assert_eq!(case.file.added_exposure(), dec("300000"));
    let facts = facts_for("1200000");
    let err = refuse_with(
        &mut case,
        first(leveled(lo1(), 2), Approve, 1),
        &facts,
        at(1),
    );
    assert_rule(&err, RuleId::V4, "level 2 for 1.2m");
    accept_with(
        &mut case,
        first(leveled(lo1(), 3), Approve, 1),
        &facts,
        at(2),
    );
    accept_with(
        &mut case,
        second(leveled(ba1(), 3), Approve, 1),
        &facts,
        at(3),
    );
    let decision = case.decision.as_ref().unwrap();
    assert_eq!(decision.level, 3);
    assert_eq!(decision.kind, CaseKind::Increase);
    assert_eq!(decision.credit_before.as_ref().map(|b| b.version), Some(3));
    assert_eq!(decision.credit_after.map(|c| c.version), Some(4));
    assert_eq!(decision.rating.as_ref().map(|r| r.class), Some(5));
}

#[test]
fn l1_the_unsecured_basis_follows_the_rule_set() {
    // (basis, exposure, secured value, required level)
    let table = [
        (CompetenceBasis::Exposure, "1200000", "0", 3),
        (CompetenceBasis::Exposure, "1200000", "1000000", 3),
        (CompetenceBasis::Unsecured, "1200000", "1000000", 1),
        (CompetenceBasis::Unsecured, "1200000", "0", 3),
        (CompetenceBasis::Unsecured, "1200000", "5000000", 1),
    ];
    for (basis, exposure, secured, level) in table {
        let rules = rules_with(|p| p.competence_basis = basis);
        let mut facts = VoteFacts::plain(rules, dec(exposure), POLICY_HASH);
        facts.secured_value = dec(secured);
        assert_eq!(
            facts.required_level(None).unwrap(),
            level,
            "L1 {basis:?} {exposure} secured {secured}"
        );
    }
}

#[test]
fn l1_an_approved_change_makes_the_next_credit_version() {
    let id = CaseId::from_uuid(Uuid::from_u128(0xCA60));
    let credit = Credit::approved(
        CreditId::from_uuid(Uuid::from_u128(0xC0)),
        id,
        &file_of(money("1000000", "EUR"), "term-loan", 60, "working capital"),
        t0(),
    );
    let mut credit = Credit {
        version: 3,
        ..credit
    };
    let increase = change(CaseKind::Increase, "1500000", 60).unwrap();
    let next = credit.changed_by(id, &increase, at(1)).unwrap();
    assert_eq!((next.version, next.amount.amount()), (4, dec("1500000")));
    assert_eq!(next.kind, CaseKind::Increase);
    // A case opened on an older version is refused.
    credit.version = 4;
    assert!(credit.changed_by(id, &increase, at(2)).is_err());
}

#[test]
fn l4_a_first_vote_needs_a_fresh_rating_set_by_back_office() {
    let no_rating = VoteFacts {
        rating: None,
        ..facts()
    };
    let stale = facts().with_rating(rating_of(5, ts("2025-03-01T09:00:00Z")));
    let just_fresh = facts().with_rating(rating_of(5, ts("2025-03-02T09:00:00Z")));
    // (facts, accepted)
    let table = [
        (no_rating, false),
        (stale, false),
        (just_fresh, true),
        (facts(), true),
    ];
    for (index, (facts, accepted)) in table.into_iter().enumerate() {
        let mut case = new_case();
        let cmd = first(lo1(), Approve, 1);
        if accepted {
            accept_with(&mut case, cmd, &facts, t0());
        } else {
            let err = refuse_with(&mut case, cmd, &facts, t0());
            assert_rule(&err, RuleId::L4, &format!("row {index}"));
            assert!(case.votes.is_empty());
        }
    }
}

#[test]
fn l4_a_rating_band_asks_for_one_level_more() {
    // (class, required level for 250k)
    for (class, level) in [(5, 1), (12, 1), (13, 2), (18, 2)] {
        let facts = facts().with_rating(rating_of(class, t0()));
        assert_eq!(
            facts.required_level(None).unwrap(),
            level,
            "L4 class {class}"
        );
    }
    // Never above the board.
    let facts = facts_for("9000000").with_rating(rating_of(18, t0()));
    assert_eq!(facts.required_level(None).unwrap(), 4);
}

#[test]
fn l9_a_problem_loan_needs_the_back_office_vote_one_level_up() {
    use crate::monitoring::Stage;
    // (stage, back-office competence level, refused under)
    let table = [
        (Stage::Normal, 1, None),
        (Stage::IntensiveCare, 1, None),
        (Stage::Restructuring, 1, Some(RuleId::L9)),
        (Stage::Restructuring, 2, None),
        (Stage::Workout, 1, Some(RuleId::L9)),
        (Stage::Workout, 2, None),
    ];
    for (stage, level, refused) in table {
        let facts = VoteFacts { stage, ..facts() };
        let mut case = new_case();
        accept_with(&mut case, first(lo1(), Approve, 1), &facts, at(1));
        let cmd = second(leveled(ba1(), level), Approve, 1);
        match refused {
            None => {
                accept_with(&mut case, cmd, &facts, at(2));
                assert_eq!(case.status, CaseStatus::Approved, "{stage} level {level}");
            }
            Some(rule) => {
                let err = refuse_with(&mut case, cmd, &facts, at(2));
                assert_rule(&err, rule, &format!("{stage} level {level}"));
            }
        }
    }
    // Market's first vote is not raised.
    let facts = VoteFacts {
        stage: Stage::Workout,
        ..facts()
    };
    assert_eq!(facts.back_office_level(4), 4, "the board stays the board");
    // Whoever moved the stage while the case was open does not vote (S6).
    let moved_by_ba1 = VoteFacts {
        stage_changers: [crate::StaffId::parse("ba-1").unwrap()].into(),
        ..self::facts()
    };
    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Approve, 1), &moved_by_ba1, at(1));
    let err = refuse_with(&mut case, second(ba1(), Approve, 1), &moved_by_ba1, at(2));
    assert_rule(&err, RuleId::S6, "stage changer");
    accept_with(&mut case, second(ba2(), Approve, 1), &moved_by_ba1, at(3));
    assert_eq!(facts.back_office_level(1), 2);
}

fn approved_case() -> CreditCase {
    let mut case = new_case();
    accept(&mut case, first(lo1(), Approve, 1), at(1));
    accept(&mut case, second(ba1(), Approve, 1), at(2));
    assert_eq!(case.status, CaseStatus::Approved);
    case
}

fn condition(text: &str) -> NewCondition {
    NewCondition {
        text: text.into(),
        due: None,
    }
}

#[test]
fn l5_conditions_come_with_the_approving_second_vote_and_are_signed_off_by_back_office() {
    let mut case = approved_case();
    let voter = ba1().unwrap();
    case.attach_conditions(
        &voter,
        &[
            condition("land charge registered"),
            condition("guarantee signed"),
        ],
        at(2),
    )
    .unwrap();
    assert_eq!(case.open_conditions().count(), 2);
    assert_rule(
        &case.check_conditions_met().unwrap_err(),
        RuleId::L5,
        "two open",
    );

    // Market may not sign off.
    let err = case
        .sign_off_condition(lo1().as_ref(), 1, "land register extract", None, at(3))
        .unwrap_err();
    assert_rule(&err, RuleId::L5, "market signs off");
    let err = case
        .sign_off_condition(None, 1, "extract", None, at(3))
        .unwrap_err();
    assert_rule(&err, RuleId::L5, "nobody");
    // Unknown condition, empty evidence.
    assert_invalid(
        &case
            .sign_off_condition(ba2().as_ref(), 9, "extract", None, at(3))
            .unwrap_err(),
        "unknown",
    );
    assert_invalid(
        &case
            .sign_off_condition(ba2().as_ref(), 1, "  ", None, at(3))
            .unwrap_err(),
        "no evidence",
    );

    let revision = case.revision;
    case.sign_off_condition(
        ba2().as_ref(),
        1,
        "land register extract",
        Some("ok"),
        at(3),
    )
    .unwrap();
    assert_eq!(case.revision, revision + 1);
    assert_invalid_state(
        &case
            .sign_off_condition(ba2().as_ref(), 1, "again", None, at(4))
            .unwrap_err(),
        "twice",
    );
    let err = case.check_conditions_met().unwrap_err();
    assert!(err.to_string().contains("guarantee signed"), "{err}");
    assert!(!err.to_string().contains("land charge"), "{err}");
    case.sign_off_condition(ba2().as_ref(), 2, "signed guarantee", None, at(4))
        .unwrap();
    assert!(case.check_conditions_met().is_ok());
}

#[test]
fn l5_only_an_approval_carries_conditions() {
    let voter = ba1().unwrap();
    // Awaiting the second vote: nothing decided.
    let mut case = awaiting();
    assert_invalid(
        &case
            .attach_conditions(&voter, &[condition("x")], at(3))
            .unwrap_err(),
        "awaiting",
    );
    // Approved, but by someone else's vote.
    let mut case2 = approved_case();
    assert_invalid(
        &case2
            .attach_conditions(&ba2().unwrap(), &[condition("x")], at(3))
            .unwrap_err(),
        "other voter",
    );
    // No conditions is always fine; empty text and past due dates are not.
    assert!(case.attach_conditions(&voter, &[], at(3)).is_ok());
    let mut case3 = approved_case();
    assert_invalid(
        &case3
            .attach_conditions(&voter, &[condition(" ")], at(3))
            .unwrap_err(),
        "empty",
    );
    let past = NewCondition {
        text: "x".into(),
        due: Some(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
    };
    assert_invalid(
        &case3.attach_conditions(&voter, &[past], at(3)).unwrap_err(),
        "past due",
    );
    let many: Vec<NewCondition> = (0..21).map(|i| condition(&format!("c{i}"))).collect();
    assert_invalid(
        &case3.attach_conditions(&voter, &many, at(3)).unwrap_err(),
        "too many",
    );
}
