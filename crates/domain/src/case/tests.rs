//! Rule tests for the four-eyes credit case. Every test name or table row
//! names the rule it checks.
//!
//! Three layers:
//! - table-driven example tests for V1, V3, V6, V9, V10, S1, S2 and S4 (this
//!   file),
//! - table-driven example tests for the rules that depend on [`VoteFacts`]:
//!   V4 (competence), V5 (divergence and escalation), V8 (single-vote lane),
//!   V9 (the decision record), V11 (related parties), S5 (cooling-off) and S6
//!   (conflicts of interest), in `tests/facts_rules.rs`, and
//! - a randomized, model-based state-machine test (proptest) that applies
//!   thousands of random command sequences by random staff under random rule
//!   sets and checks the invariants after every single step, in
//!   `tests/state_machine.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::status::side_of;
use super::*;
use crate::rules::RuleSet;
use crate::rules::{DivergencePolicy, RuleParameters};
use crate::{BorrowerId, Money, RuleId, Side, Voter};
use crate::{CompetenceGrant, StaffMember, StaffStatus, UnitAssignment, UnitId};
use VoteDecision::{Approve, Decline};
use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use uuid::Uuid;

mod credit_file;
mod facts_rules;
mod granting;
mod risk_gate;
mod state_machine;

/// The requirement's bound for free text (rationale, reason, purpose).
const MAX_CHARS: usize = 4000;

// ---------------------------------------------------------------------------
// Fixtures: fixed times, staff, files, cases, rule facts
// ---------------------------------------------------------------------------

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid fixed time")
}

/// A fixed point in time, `minutes` after `t0`.
fn at(minutes: i64) -> Timestamp {
    t0() + Duration::minutes(minutes)
}

/// A UTC timestamp from RFC 3339 text.
fn ts(text: &str) -> Timestamp {
    text.parse().expect("RFC 3339 timestamp")
}

fn staff(id: &str) -> StaffId {
    StaffId::parse(id).expect("staff id")
}

fn unit(id: &str) -> UnitId {
    UnitId::parse(id).expect("unit id")
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

/// The competence level the named fixture voters hold on their side: one
/// above what the fixture file (EUR 250k, level 1) needs, so the case can
/// also be voted on after one escalation (V5) without changing voters.
const FIXTURE_LEVEL: u8 = 2;

fn voter(id: &str, unit_id: &str, side: Side) -> Voter {
    Voter {
        staff_id: staff(id),
        unit_id: unit(unit_id),
        side,
        competence_level: FIXTURE_LEVEL,
        left_market_at: None,
    }
}

/// `v` with another competence level (V4).
fn leveled(v: Option<Voter>, level: u8) -> Option<Voter> {
    v.map(|v| Voter {
        competence_level: level,
        ..v
    })
}

/// The originator of the fixture case: a market person who never votes on
/// it (S6 forbids it).
const ORIGINATOR: &str = "or-1";

fn or1() -> Option<Voter> {
    Some(voter(ORIGINATOR, "market-corporate", Side::Market))
}

fn lo1() -> Option<Voter> {
    Some(voter("lo-1", "market-corporate", Side::Market))
}

fn lo2() -> Option<Voter> {
    Some(voter("lo-2", "market-retail", Side::Market))
}

fn ba1() -> Option<Voter> {
    Some(voter("ba-1", "backoffice-credit", Side::Backoffice))
}

fn ba2() -> Option<Voter> {
    Some(voter("ba-2", "backoffice-credit", Side::Backoffice))
}

/// The back office's board member: the top level of the fixture order.
fn bb1() -> Option<Voter> {
    leveled(
        Some(voter("bb-1", "backoffice-board", Side::Backoffice)),
        BOARD_LEVEL,
    )
}

/// The fixture competence order's top level (the board).
const BOARD_LEVEL: u8 = 4;

/// A voter on `side`, or an actor with no (unique) unit at all.
fn on_side(id: &str, side: Option<Side>) -> Option<Voter> {
    side.map(|s| voter(id, &format!("{}-unit", s.as_str()), s))
}

fn borrower() -> BorrowerId {
    BorrowerId::from_uuid(Uuid::from_u128(0xB0))
}

fn other_borrower() -> BorrowerId {
    BorrowerId::from_uuid(Uuid::from_u128(0xB1))
}

fn money(amount: &str, currency: &str) -> Money {
    Money::parse(amount, currency).expect("money")
}

fn file_of(amount: Money, product: &str, term: i64, purpose: &str) -> CaseFile {
    CaseFile::new(borrower(), amount, product, term, purpose).expect("valid case file")
}

fn file() -> CaseFile {
    file_of(
        money("250000.00", "EUR"),
        "term-loan",
        60,
        "working capital",
    )
}

fn file_v2() -> CaseFile {
    file_of(
        money("300000.00", "EUR"),
        "term-loan",
        72,
        "working capital",
    )
}

fn new_case() -> CreditCase {
    CreditCase::open(
        CaseId::from_uuid(Uuid::from_u128(0xCA5E)),
        file(),
        staff(ORIGINATOR),
        t0(),
    )
}

const WHY: &str = "within policy, collateral reviewed";

/// The policy hash the fixture facts carry (V9).
const POLICY_HASH: &str = "policy-hash";

/// The rule set in force with some parameters changed.
fn rules_with(change: impl FnOnce(&mut RuleParameters)) -> RuleSet {
    let mut rules = RuleSet::initial();
    change(&mut rules.parameters);
    rules.parameters.validate().expect("valid test parameters");
    rules
}

/// Facts for an aggregated exposure under the initial rule set: no group, no
/// relationship managers, no related parties.
fn facts_for(exposure: &str) -> VoteFacts {
    VoteFacts::plain(RuleSet::initial(), dec(exposure), POLICY_HASH)
        .with_risk(risk_pass())
        .with_rating(rating_of(5, t0()))
}

/// A rating back office set for the fixture borrower at `at` (L4).
fn rating_of(class: u8, at: Timestamp) -> crate::Rating {
    let rules = crate::RatingRules::default();
    let (_, pd) = rules.range_of(class).expect("class on the scale");
    crate::Rating {
        borrower_id: borrower(),
        class,
        pd,
        method: "corporate scorecard".into(),
        reason: "annual accounts".into(),
        status: crate::RatingStatus::Set,
        rated_by: staff("ba-9"),
        rated_at: at,
        rules_version: 1,
    }
}

/// A verdict of the risk gate with one finding of `severity` (R4).
fn risk_verdict(severity: crate::Severity, large_exposure: bool) -> crate::RiskVerdict {
    crate::RiskVerdict::from_findings(
        vec![crate::RiskFinding {
            rule: RuleId::R3,
            check: "borrower_limit".into(),
            subject: format!("borrower:{}", borrower()),
            limit: Some(dec("1000000")),
            usage: Some(dec("250000")),
            headroom: Some(dec("750000")),
            severity,
            detail: "fixture".into(),
        }],
        large_exposure,
        "EUR",
    )
}

/// A clean verdict: every limit within, not a large exposure.
fn risk_pass() -> crate::RiskVerdict {
    risk_verdict(crate::Severity::Within, false)
}

/// The facts of the fixture file: EUR 250k, competence level 1.
fn facts() -> VoteFacts {
    facts_for("250000.00")
}

/// A domain command, so tables and the random test can hold commands as data.
#[derive(Debug, Clone)]
enum Cmd {
    Edit {
        by: Option<Voter>,
        file: CaseFile,
        version: i64,
    },
    First {
        by: Option<Voter>,
        decision: VoteDecision,
        rationale: String,
        version: i64,
    },
    Second {
        by: Option<Voter>,
        decision: VoteDecision,
        rationale: String,
        version: i64,
    },
    Return {
        by: Option<Voter>,
        reason: String,
    },
    Resolution {
        by: Option<Voter>,
        reference: String,
    },
    Confirm {
        by: Option<Voter>,
    },
    Reevaluate,
}

fn edit(by: Option<Voter>, file: CaseFile, version: i64) -> Cmd {
    Cmd::Edit { by, file, version }
}

fn first(by: Option<Voter>, decision: VoteDecision, version: i64) -> Cmd {
    Cmd::First {
        by,
        decision,
        rationale: WHY.into(),
        version,
    }
}

fn second(by: Option<Voter>, decision: VoteDecision, version: i64) -> Cmd {
    Cmd::Second {
        by,
        decision,
        rationale: WHY.into(),
        version,
    }
}

fn ret(by: Option<Voter>, reason: &str) -> Cmd {
    Cmd::Return {
        by,
        reason: reason.into(),
    }
}

fn resolution(by: Option<Voter>, reference: &str) -> Cmd {
    Cmd::Resolution {
        by,
        reference: reference.into(),
    }
}

fn confirm(by: Option<Voter>) -> Cmd {
    Cmd::Confirm { by }
}

/// Applies `cmd` under `facts`. A vote command returns the vote it recorded,
/// which must be the last vote on record; `reevaluate` reports a change
/// exactly when the case changed.
fn apply(
    case: &mut CreditCase,
    cmd: &Cmd,
    facts: &VoteFacts,
    now: Timestamp,
) -> Result<(), DomainError> {
    let vote = match cmd {
        Cmd::Edit { by, file, version } => {
            return case.edit(by.as_ref(), file.clone(), *version, now);
        }
        Cmd::Return { by, reason } => return case.return_for_rework(by.as_ref(), reason, now),
        Cmd::Resolution { by, reference } => {
            return case.record_board_resolution(by.as_ref(), reference, case.version, now);
        }
        Cmd::Confirm { by } => {
            let order = facts.rules.competence();
            return case.confirm_board_resolution(by.as_ref(), order, case.version, now);
        }
        Cmd::Reevaluate => {
            let before = case.clone();
            let changed = case.reevaluate(facts, now)?;
            assert_eq!(
                changed,
                *case != before,
                "reevaluate reports a change exactly when the case changed"
            );
            return Ok(());
        }
        Cmd::First {
            by,
            decision,
            rationale,
            version,
        } => case
            .cast_first_vote(by.as_ref(), *decision, rationale, *version, facts, now)?
            .clone(),
        Cmd::Second {
            by,
            decision,
            rationale,
            version,
        } => case
            .cast_second_vote(by.as_ref(), *decision, rationale, *version, facts, now)?
            .clone(),
    };
    assert_eq!(
        Some(&vote),
        case.votes.last(),
        "the returned vote is the recorded one"
    );
    Ok(())
}

/// Applies a command that must be accepted under the fixture facts.
#[track_caller]
fn accept(case: &mut CreditCase, cmd: Cmd, now: Timestamp) {
    accept_with(case, cmd, &facts(), now);
}

/// Applies a command that must be accepted; checks the V10 bookkeeping.
#[track_caller]
fn accept_with(case: &mut CreditCase, cmd: Cmd, facts: &VoteFacts, now: Timestamp) {
    let before = case.clone();
    if let Err(err) = apply(case, &cmd, facts, now) {
        panic!("{cmd:?} was refused: {err:?}");
    }
    assert_eq!(
        case.revision,
        before.revision + 1,
        "V10: an accepted command bumps the revision exactly once"
    );
    assert_eq!(case.updated_at, now);
    assert_eq!(case.created_at, before.created_at);
    assert!(
        case.votes.starts_with(&before.votes),
        "V10: votes are append-only"
    );
}

/// Applies a command that must be refused under the fixture facts.
#[track_caller]
fn refuse(case: &mut CreditCase, cmd: Cmd, now: Timestamp) -> DomainError {
    refuse_with(case, cmd, &facts(), now)
}

/// Applies a command that must be refused; the case must stay exactly as it was.
#[track_caller]
fn refuse_with(case: &mut CreditCase, cmd: Cmd, facts: &VoteFacts, now: Timestamp) -> DomainError {
    let before = case.clone();
    let err = match apply(case, &cmd, facts, now) {
        Ok(()) => panic!("{cmd:?} was accepted on {before:?}"),
        Err(err) => err,
    };
    assert_eq!(
        *case, before,
        "a refused command must leave the case unchanged ({err:?})"
    );
    err
}

#[track_caller]
fn assert_rule(err: &DomainError, rule: RuleId, row: &str) {
    assert!(
        matches!(err, DomainError::RuleViolation { rule: r, .. } if *r == rule),
        "{row}: expected a {rule} rule violation, got {err:?}"
    );
    assert_eq!(err.rule_id(), Some(rule), "{row}");
}

#[track_caller]
fn assert_invalid_state(err: &DomainError, row: &str) {
    assert!(
        matches!(err, DomainError::InvalidState(_)),
        "{row}: expected InvalidState, got {err:?}"
    );
}

#[track_caller]
fn assert_invalid(err: &DomainError, row: &str) {
    assert!(
        matches!(err, DomainError::Invalid(_)),
        "{row}: expected Invalid, got {err:?}"
    );
}

/// The rule ids of a list of checks, in order.
fn rule_ids(checks: &[RuleCheck]) -> Vec<RuleId> {
    checks.iter().map(|c| c.rule).collect()
}

/// Market (lo-1) has approved version 1; the case awaits the second vote.
fn awaiting() -> CreditCase {
    let mut case = new_case();
    accept(&mut case, first(lo1(), Approve, 1), at(10));
    case
}

/// Back office (ba-1) has returned the case: version 2, votes void.
fn returned() -> CreditCase {
    let mut case = awaiting();
    accept(
        &mut case,
        ret(ba1(), "collateral valuation is outdated"),
        at(20),
    );
    case
}

fn approved() -> CreditCase {
    let mut case = awaiting();
    accept(&mut case, second(ba1(), Approve, 1), at(30));
    case
}

fn declined_by_market() -> CreditCase {
    let mut case = new_case();
    accept(&mut case, first(lo1(), Decline, 1), at(10));
    case
}

/// Back office declined lo-1's approval under the divergence policy
/// "decline" (V5): the case is declined with the Divergent flag.
fn declined_by_backoffice() -> CreditCase {
    let mut case = awaiting();
    let decline = VoteFacts {
        rules: rules_with(|p| p.divergence = DivergencePolicy::Decline),
        ..facts()
    };
    accept_with(&mut case, second(ba1(), Decline, 1), &decline, at(30));
    case
}

/// Back office (ba-1) declined lo-1's approval under the default policy
/// "escalate" (V5): round 1, escalated to level 2.
fn escalated() -> CreditCase {
    let mut case = awaiting();
    accept(&mut case, second(ba1(), Decline, 1), at(30));
    assert_eq!(case.status, CaseStatus::Escalated);
    case
}

// ---------------------------------------------------------------------------
// V1 / S1: sides
// ---------------------------------------------------------------------------

/// Every side plus "no unit", with whether the side may act.
fn side_table(allowed: Side) -> Vec<(String, Option<Side>, bool)> {
    let mut rows: Vec<(String, Option<Side>, bool)> = Side::ALL
        .into_iter()
        .map(|s| (format!("{s} actor"), Some(s), s == allowed))
        .collect();
    rows.push(("actor without a unit (None)".into(), None, false));
    rows
}

#[test]
fn v2_first_vote_is_accepted_only_from_a_market_voter() {
    for (row, side, ok) in side_table(Side::Market) {
        for decision in [Approve, Decline] {
            let row = format!("V1 first vote ({decision:?}) by {row}");
            let mut case = new_case();
            let cmd = first(on_side("p-1", side), decision, 1);
            if ok {
                accept(&mut case, cmd, at(10));
                let vote = case.votes.last().expect("vote");
                assert_eq!(vote.stage, VoteStage::First, "{row}");
                assert_eq!(vote.voter.side, Side::Market, "{row}");
                let want = match decision {
                    Approve => CaseStatus::AwaitingSecondVote,
                    Decline => CaseStatus::Declined,
                };
                assert_eq!(case.status, want, "{row}");
            } else {
                let err = refuse(&mut case, cmd, at(10));
                assert_rule(&err, RuleId::V2, &row);
            }
        }
    }
}

#[test]
fn v2_second_vote_is_accepted_only_from_a_backoffice_voter() {
    for (row, side, ok) in side_table(Side::Backoffice) {
        for decision in [Approve, Decline] {
            let row = format!("V1 second vote ({decision:?}) by {row}");
            let mut case = awaiting();
            let cmd = second(on_side("p-2", side), decision, 1);
            if ok {
                accept(&mut case, cmd, at(30));
                let vote = case.votes.last().expect("vote");
                assert_eq!(vote.stage, VoteStage::Second, "{row}");
                assert_eq!(vote.voter.side, Side::Backoffice, "{row}");
                // A decline after market's approval diverges: escalated under
                // the default policy (V5), never approved.
                let want = match decision {
                    Approve => CaseStatus::Approved,
                    Decline => CaseStatus::Escalated,
                };
                assert_eq!(case.status, want, "{row}");
            } else {
                let err = refuse(&mut case, cmd, at(30));
                assert_rule(&err, RuleId::V2, &row);
            }
        }
    }
}

#[test]
fn s1_only_market_may_edit_the_file() {
    for (row, side, ok) in side_table(Side::Market) {
        let row = format!("S1 edit by {row}");
        let mut case = new_case();
        let cmd = edit(on_side("p-1", side), file_v2(), 1);
        if ok {
            accept(&mut case, cmd, at(5));
            assert_eq!(case.file, file_v2(), "{row}");
        } else {
            let err = refuse(&mut case, cmd, at(5));
            assert_rule(&err, RuleId::S1, &row);
        }
    }
}

#[test]
fn v6_only_back_office_may_return_a_case() {
    for (row, side, ok) in side_table(Side::Backoffice) {
        let row = format!("V6 return by {row}");
        let mut case = awaiting();
        let cmd = ret(on_side("p-2", side), "needs a new valuation");
        if ok {
            accept(&mut case, cmd, at(20));
            assert_eq!(case.status, CaseStatus::Returned, "{row}");
        } else {
            let err = refuse(&mut case, cmd, at(20));
            assert_rule(&err, RuleId::V6, &row);
        }
    }
}

#[test]
fn s1_the_borrower_of_a_case_cannot_be_edited() {
    let mut case = new_case();
    let moved = CaseFile {
        borrower_id: other_borrower(),
        ..file()
    };
    let err = refuse(&mut case, edit(lo1(), moved, 1), at(5));
    assert_invalid(&err, "S1/V3 borrower change");
}

// ---------------------------------------------------------------------------
// V1 / S2: two different natural people
// ---------------------------------------------------------------------------

#[test]
fn v1_s2_second_vote_by_the_first_voter_is_refused() {
    // lo-1 cast the first vote. The rules apply per person (S2), never per
    // account or unit: the same staff id is refused in any unit.
    let table = [
        (
            "V2/S2 first voter, same market account: the side check refuses first",
            lo1(),
            RuleId::V2,
            "backoffice unit",
        ),
        (
            "V1/S2 first voter, now in a back-office unit (moved, S4)",
            Some(voter("lo-1", "backoffice-credit", Side::Backoffice)),
            RuleId::V1,
            "different person",
        ),
        (
            "V1/S2 first voter via a second back-office unit",
            Some(voter("lo-1", "backoffice-retail", Side::Backoffice)),
            RuleId::V1,
            "different person",
        ),
    ];
    for (row, by, rule, detail) in table {
        for decision in [Approve, Decline] {
            let mut case = awaiting();
            let err = refuse(&mut case, second(by.clone(), decision, 1), at(30));
            assert_rule(&err, rule, row);
            assert!(err.to_string().contains(detail), "{row}: {err}");
        }
    }
    // Control row: a different back-office person may vote.
    let mut case = awaiting();
    accept(&mut case, second(ba1(), Approve, 1), at(30));
    assert_eq!(case.status, CaseStatus::Approved);
}

// ---------------------------------------------------------------------------
// S4: sides are taken from the dated unit history at the time of the vote
// ---------------------------------------------------------------------------

fn member(id: &str, status: StaffStatus, units: &[(&str, Side, i64, Option<i64>)]) -> StaffMember {
    StaffMember {
        id: staff(id),
        status,
        units: units
            .iter()
            .map(|&(unit_id, side, from, to)| UnitAssignment {
                unit_id: unit(unit_id),
                side,
                valid_from: at(from),
                valid_to: to.map(at),
            })
            .collect(),
        roles: Vec::new(),
        // The fixture level on both sides, so a move between sides keeps a
        // competence (V4) and only the side and S5 decide.
        competences: [Side::Market, Side::Backoffice]
            .into_iter()
            .map(|side| CompetenceGrant {
                side,
                level: FIXTURE_LEVEL,
                valid_from: at(LONG_AGO),
                valid_to: None,
            })
            .collect(),
    }
}

const LONG_AGO: i64 = -500_000;

#[test]
fn s4_v2_the_voters_side_is_the_side_at_vote_time() {
    // mv-1 is in market until minute 100 and in back office from then on.
    let mover = member(
        "mv-1",
        StaffStatus::Active,
        &[
            ("market-corporate", Side::Market, LONG_AGO, Some(100)),
            ("backoffice-credit", Side::Backoffice, 100, None),
        ],
    );

    // Row "S4 second vote one minute before the move": still market -> V2.
    let mut case = new_case();
    accept(&mut case, first(lo2(), Approve, 1), at(50));
    let err = refuse(
        &mut case,
        second(mover.voter_at(at(99)), Approve, 1),
        at(99),
    );
    assert_rule(&err, RuleId::V2, "S4 second vote before the move");

    // Row "S4/S5 second vote at the move with the default cooling-off": the
    // side is back office, but the person left market this very minute.
    let err = refuse(
        &mut case,
        second(mover.voter_at(at(100)), Approve, 1),
        at(100),
    );
    assert_rule(&err, RuleId::S5, "S4/S5 second vote at the move");

    // Row "S4 second vote at the move without cooling-off": back office ->
    // accepted, recorded with the unit held at vote time.
    let no_cooling_off = VoteFacts {
        rules: rules_with(|p| p.cooling_off_months = 0),
        ..facts()
    };
    accept_with(
        &mut case,
        second(mover.voter_at(at(100)), Approve, 1),
        &no_cooling_off,
        at(100),
    );
    let decision = case.decision.clone().expect("decision");
    assert_eq!(decision.votes[1].voter.unit_id, unit("backoffice-credit"));
    assert_eq!(decision.votes[1].voter.side, Side::Backoffice);

    // Row "S2/S4 first voter moved to back office": same person, refused.
    let mut case = new_case();
    accept(&mut case, first(mover.voter_at(at(50)), Approve, 1), at(50));
    assert_eq!(case.votes[0].voter.side, Side::Market);
    let err = refuse_with(
        &mut case,
        second(mover.voter_at(at(150)), Approve, 1),
        &no_cooling_off,
        at(150),
    );
    assert_rule(&err, RuleId::V1, "S2/S4 first voter moved to back office");
    // ... and a first vote after the move is not a market vote any more.
    let mut fresh = new_case();
    let err = refuse(
        &mut fresh,
        first(mover.voter_at(at(150)), Approve, 1),
        at(150),
    );
    assert_rule(&err, RuleId::V2, "S4 first vote after leaving market");
}

#[test]
fn s4_v2_actors_without_a_unique_unit_at_vote_time_cannot_vote() {
    let table = [
        (
            "S4 suspended back-office member",
            member(
                "su-1",
                StaffStatus::Suspended,
                &[("backoffice-credit", Side::Backoffice, LONG_AGO, None)],
            ),
        ),
        (
            "S4 back-office assignment ended before the vote",
            member(
                "gp-1",
                StaffStatus::Active,
                &[("backoffice-credit", Side::Backoffice, LONG_AGO, Some(30))],
            ),
        ),
        (
            "S4 back-office assignment starts after the vote",
            member(
                "nw-1",
                StaffStatus::Active,
                &[("backoffice-credit", Side::Backoffice, 1000, None)],
            ),
        ),
        (
            "S4 units on two sides at once (ambiguous)",
            member(
                "am-1",
                StaffStatus::Active,
                &[
                    ("market-corporate", Side::Market, LONG_AGO, None),
                    ("backoffice-credit", Side::Backoffice, LONG_AGO, None),
                ],
            ),
        ),
        (
            "S4 no unit at all",
            member("nu-1", StaffStatus::Active, &[]),
        ),
    ];
    for (row, person) in table {
        let by = person.voter_at(at(60));
        assert_eq!(by, None, "{row}");
        let mut case = new_case();
        let err = refuse(&mut case, first(by.clone(), Approve, 1), at(60));
        assert_rule(&err, RuleId::V2, row);
        let mut case = awaiting();
        let err = refuse(&mut case, second(by.clone(), Approve, 1), at(60));
        assert_rule(&err, RuleId::V2, row);
        let err = refuse(&mut case, ret(by.clone(), "rework"), at(60));
        assert_rule(&err, RuleId::V6, row);
        let err = refuse(&mut case, resolution(by, "BR-2026-01"), at(60));
        assert_rule(&err, RuleId::V11, row);
    }
}

// ---------------------------------------------------------------------------
// V3: votes are bound to the file version
// ---------------------------------------------------------------------------

#[test]
fn v3_commands_naming_a_stale_version_are_refused() {
    let edited = || {
        let mut case = new_case();
        accept(&mut case, edit(lo1(), file_v2(), 1), at(5));
        case
    };
    let revoted = || {
        let mut case = returned();
        accept(&mut case, first(lo2(), Approve, 2), at(25));
        case
    };
    let table: Vec<(&str, CreditCase, Cmd, i64, i64)> = vec![
        (
            "V3 first vote names version 0",
            new_case(),
            first(lo1(), Approve, 0),
            1,
            0,
        ),
        (
            "V3 first vote names a future version",
            new_case(),
            first(lo1(), Approve, 2),
            1,
            2,
        ),
        (
            "V3 first vote names a negative version",
            new_case(),
            first(lo1(), Decline, -1),
            1,
            -1,
        ),
        (
            "V3 first vote names i64::MAX",
            new_case(),
            first(lo1(), Approve, i64::MAX),
            1,
            i64::MAX,
        ),
        (
            "V3 second vote names version 0",
            awaiting(),
            second(ba1(), Approve, 0),
            1,
            0,
        ),
        (
            "V3 second vote names a future version",
            awaiting(),
            second(ba1(), Decline, 2),
            1,
            2,
        ),
        (
            "V3 first vote on the version before an edit",
            edited(),
            first(lo1(), Approve, 1),
            2,
            1,
        ),
        (
            "V3 edit on the version before an edit",
            edited(),
            edit(lo1(), file(), 1),
            2,
            1,
        ),
        (
            "V3/V6 first vote on the version before a return",
            returned(),
            first(lo1(), Approve, 1),
            2,
            1,
        ),
        (
            "V3/V6 edit on the version before a return",
            returned(),
            edit(lo1(), file_v2(), 1),
            2,
            1,
        ),
        (
            "V3/V6 second vote on the version before a return",
            revoted(),
            second(ba1(), Approve, 1),
            2,
            1,
        ),
    ];
    for (row, mut case, cmd, current, given) in table {
        let err = refuse(&mut case, cmd, at(40));
        assert_eq!(err, DomainError::StaleVersion { current, given }, "{row}");
        assert_eq!(err.rule_id(), Some(RuleId::V3), "{row}");
    }
}

#[test]
fn v3_v6_the_file_cannot_be_edited_while_awaiting_the_second_vote() {
    let mut case = awaiting();
    for (row, by) in [
        ("V3 edit by the first voter", lo1()),
        ("V3 edit by another market member", lo2()),
    ] {
        let err = refuse(&mut case, edit(by, file_v2(), 1), at(20));
        assert_invalid_state(&err, row);
    }
}

#[test]
fn v3_edit_voids_votes_and_new_votes_bind_the_new_content() {
    let mut case = returned();
    let old_vote = case.votes[0].clone();
    assert_eq!(old_vote.content_hash, file().content_hash());

    accept(&mut case, edit(lo1(), file_v2(), 2), at(25));
    assert_eq!(case.version, 3, "V3 an edit is a new file version");
    assert_eq!(
        case.editors,
        BTreeSet::from([staff("lo-1")]),
        "S6 the editor is on record"
    );
    assert_eq!(case.status, CaseStatus::Draft);
    assert_eq!(case.current_votes().count(), 0, "V3 earlier votes are void");
    assert_eq!(
        case.votes,
        vec![old_vote.clone()],
        "V10 void votes stay on record"
    );
    assert_eq!(case.content_hash(), file_v2().content_hash());

    accept(&mut case, first(lo2(), Approve, 3), at(30));
    let new_vote = case.votes.last().expect("vote").clone();
    assert_eq!(new_vote.file_version, 3);
    assert_eq!(new_vote.content_hash, file_v2().content_hash());
    assert_ne!(new_vote.content_hash, old_vote.content_hash);
    assert_eq!(
        case.current_votes().cloned().collect::<Vec<_>>(),
        vec![new_vote]
    );

    // An edit in draft also moves the version on: a vote naming the old one is stale.
    let mut case = new_case();
    accept(&mut case, edit(lo1(), file_v2(), 1), at(5));
    assert_eq!(case.version, 2);
    let err = refuse(&mut case, first(lo1(), Approve, 1), at(6));
    assert_eq!(
        err,
        DomainError::StaleVersion {
            current: 2,
            given: 1
        }
    );
}

// ---------------------------------------------------------------------------
// V6: return for rework
// ---------------------------------------------------------------------------

#[test]
fn v6_return_bumps_the_version_voids_the_votes_and_voting_restarts() {
    let mut case = awaiting();
    let first_vote = case.votes[0].clone();
    assert_eq!(case.current_votes().count(), 1);

    accept(
        &mut case,
        ret(ba1(), "  collateral valuation is outdated \n"),
        at(20),
    );
    assert_eq!(case.status, CaseStatus::Returned);
    assert_eq!(case.version, 2, "V6 a return is a new file version");
    assert_eq!(
        case.return_reason.as_deref(),
        Some("collateral valuation is outdated")
    );
    assert_eq!(case.current_votes().count(), 0, "V6/V3 the votes are void");
    assert_eq!(
        case.votes,
        vec![first_vote.clone()],
        "V10 but stay on record"
    );
    assert_eq!(case.decision, None);

    // While returned: no second vote, no second return, no votes on version 1.
    let err = refuse(&mut case, second(ba2(), Approve, 2), at(21));
    assert_invalid_state(&err, "V6 second vote on a returned case");
    let err = refuse(&mut case, ret(ba2(), "again"), at(21));
    assert_invalid_state(&err, "V6 return of a returned case");
    let err = refuse(&mut case, first(lo1(), Approve, 1), at(21));
    assert_eq!(
        err,
        DomainError::StaleVersion {
            current: 2,
            given: 1
        }
    );

    // A new first vote on the new version works ...
    accept(&mut case, first(lo2(), Approve, 2), at(22));
    assert_eq!(case.status, CaseStatus::AwaitingSecondVote);
    let current: Vec<&Vote> = case.current_votes().collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].voter.staff_id, staff("lo-2"));
    assert_eq!(current[0].file_version, 2);

    // ... a second vote on the old version is stale ...
    let err = refuse(&mut case, second(ba1(), Approve, 1), at(23));
    assert_eq!(
        err,
        DomainError::StaleVersion {
            current: 2,
            given: 1
        }
    );

    // ... and the decision carries only the votes on the decided version.
    accept(&mut case, second(ba1(), Approve, 2), at(24));
    assert_eq!(case.status, CaseStatus::Approved);
    let decision = case.decision.clone().expect("decision");
    assert_eq!(decision.file_version, 2);
    assert_eq!(decision.votes.len(), 2);
    assert!(decision.votes.iter().all(|v| v.file_version == 2));
    assert_eq!(case.votes.len(), 3);
    assert_eq!(case.votes[0], first_vote, "V5/V10 original votes unchanged");
}

#[test]
fn v6_the_voided_first_voter_is_not_the_current_first_voter() {
    // lo-1's vote on version 1 is void after the return; lo-2 votes on
    // version 2, so the second-vote check compares against lo-2.
    let mut case = returned();
    accept(&mut case, first(lo2(), Approve, 2), at(22));
    let lo2_in_back_office = Some(voter("lo-2", "backoffice-credit", Side::Backoffice));
    let err = refuse(&mut case, second(lo2_in_back_office, Approve, 2), at(23));
    assert_rule(&err, RuleId::V1, "V1/S2 current first voter");
}

// ---------------------------------------------------------------------------
// State machine: which command is allowed in which state
// ---------------------------------------------------------------------------

#[test]
fn v1_v6_commands_are_refused_outside_their_states() {
    // [edit, first vote, second vote, return, board resolution]
    let states = [
        ("draft", new_case(), [true, true, false, false, true]),
        ("returned", returned(), [true, true, false, false, true]),
        (
            "awaiting_second_vote",
            awaiting(),
            [false, false, true, true, true],
        ),
        // V5: an escalated case waits for a new first vote one level up; back
        // office may still return it (V6).
        ("escalated", escalated(), [false, true, false, true, true]),
        ("approved", approved(), [false; 5]),
        ("declined by market", declined_by_market(), [false; 5]),
        (
            "declined by back office",
            declined_by_backoffice(),
            [false; 5],
        ),
    ];
    for (state, case, allowed) in states {
        let v = case.version;
        // Final states refuse everything, whatever version is named.
        let versions = if case.status.is_final() {
            vec![v, v - 1, v + 1]
        } else {
            vec![v]
        };
        for version in versions {
            let cmds = [
                ("V3 edit", edit(lo1(), file_v2(), version)),
                ("V1 first vote", first(lo2(), Approve, version)),
                ("V1 second vote", second(ba2(), Approve, version)),
                ("V6 return", ret(ba2(), "needs a new valuation")),
                ("V11 board resolution", resolution(ba2(), "BR-2026-17")),
            ];
            for ((command, cmd), ok) in cmds.into_iter().zip(allowed) {
                let row = format!("{command} on a {state} case (version {version})");
                let mut case = case.clone();
                if ok {
                    accept(&mut case, cmd, at(100));
                } else {
                    let err = refuse(&mut case, cmd, at(100));
                    assert_invalid_state(&err, &row);
                }
            }
        }
        // V4: re-evaluating under unchanged facts changes nothing, in any state.
        let mut same = case.clone();
        assert_eq!(
            same.reevaluate(&facts(), at(100)),
            Ok(false),
            "V4 reevaluate on a {state} case"
        );
        assert_eq!(same, case, "V4 reevaluate on a {state} case");
    }
}

// ---------------------------------------------------------------------------
// V1 / V5: decline paths; V9: the decision record
// ---------------------------------------------------------------------------

#[test]
fn v1_v5_decline_paths_never_approve() {
    use DecisionFlag::{BoardLevel, Divergent};
    let escalate = facts();
    let decline = VoteFacts {
        rules: rules_with(|p| p.divergence = DivergencePolicy::Decline),
        ..facts()
    };
    // EUR 6m needs the board (level 4): nothing to escalate to.
    let board = facts_for("6000000");
    let table = [
        (
            "V1 market declines: declined, no second vote",
            &escalate,
            Decline,
            None,
            DecisionOutcome::Declined,
            vec![],
        ),
        (
            "V5 market approves, back office declines, policy decline: declined (not outvoted)",
            &decline,
            Approve,
            Some(Decline),
            DecisionOutcome::Declined,
            vec![Divergent],
        ),
        (
            "V5 market approves, back office declines at the board: declined (not outvoted)",
            &board,
            Approve,
            Some(Decline),
            DecisionOutcome::Declined,
            vec![BoardLevel, Divergent],
        ),
        (
            "V1 both approve: approved",
            &escalate,
            Approve,
            Some(Approve),
            DecisionOutcome::Approved,
            vec![],
        ),
    ];
    for (row, facts, first_decision, second_decision, outcome, flags) in table {
        let mut case = new_case();
        accept_with(
            &mut case,
            first(leveled(lo1(), 4), first_decision, 1),
            facts,
            at(10),
        );
        if let Some(d) = second_decision {
            accept_with(&mut case, second(leveled(ba1(), 4), d, 1), facts, at(20));
        }
        let decision = case.decision.clone().expect("decision");
        assert_eq!(decision.outcome, outcome, "{row}");
        assert_eq!(decision.flags, flags, "{row}");
        let want_status = match outcome {
            DecisionOutcome::Approved => CaseStatus::Approved,
            DecisionOutcome::Declined => CaseStatus::Declined,
        };
        assert_eq!(case.status, want_status, "{row}");
        assert_eq!(case.round, 0, "{row}: nothing was escalated");
        assert_eq!(decision.votes, case.votes, "{row}");
        assert_eq!(decision.file_version, case.version, "{row}");
        assert_eq!(decision.content_hash, case.content_hash(), "{row}");
        let approval_check = decision
            .checks
            .iter()
            .any(|c| c.detail.starts_with("approved with"));
        assert_eq!(
            approval_check,
            outcome == DecisionOutcome::Approved,
            "{row}"
        );

        // Nothing moves a decided case: another back-office person cannot
        // outvote, market cannot re-vote, nobody can return it, record a
        // resolution on it or re-evaluate it.
        for (what, cmd) in [
            (
                "second vote by another back-office voter",
                second(leveled(ba2(), 4), Approve, 1),
            ),
            ("a new first vote", first(leveled(lo2(), 4), Approve, 1)),
            ("return", ret(ba2(), "reconsider")),
            ("edit", edit(lo1(), file_v2(), 1)),
            ("board resolution", resolution(ba2(), "BR-2026-03")),
        ] {
            let err = refuse_with(&mut case, cmd, facts, at(30));
            assert_invalid_state(&err, &format!("{row}: {what}"));
        }
        let frozen = case.clone();
        assert_eq!(case.reevaluate(&facts_for("80000000"), at(40)), Ok(false));
        assert_eq!(case, frozen, "{row}: reevaluate");
    }
}

#[test]
fn v1_v9_approval_records_a_decision_with_both_votes_version_hash_and_checks() {
    let mut case = new_case();
    accept(&mut case, first(lo1(), Approve, 1), at(10));
    accept(&mut case, second(ba1(), Approve, 1), at(20));

    assert_eq!(case.status, CaseStatus::Approved);
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.outcome, DecisionOutcome::Approved);
    assert_eq!(d.decided_at, at(20));
    assert_eq!(d.file_version, 1);
    assert_eq!(d.content_hash, file().content_hash());
    assert_eq!(d.votes, case.votes);
    assert_eq!(d.votes.len(), 2);

    let (v1, v2) = (&d.votes[0], &d.votes[1]);
    assert_eq!(
        (v1.stage, v1.decision, v1.voter.side),
        (VoteStage::First, Approve, Side::Market)
    );
    assert_eq!(
        (v2.stage, v2.decision, v2.voter.side),
        (VoteStage::Second, Approve, Side::Backoffice)
    );
    assert_eq!(v1.voter, lo1().expect("voter"));
    assert_eq!(v2.voter, ba1().expect("voter"));
    assert_ne!(v1.voter.staff_id, v2.voter.staff_id);
    assert_eq!((v1.cast_at, v2.cast_at), (at(10), at(20)));
    assert_eq!(v1.rationale, WHY);
    for v in [v1, v2] {
        assert_eq!(v.file_version, d.file_version);
        assert_eq!(v.content_hash, d.content_hash);
    }

    for v in [v1, v2] {
        assert_eq!((v.round, v.required_level), (0, 1), "V4/V5 round and level");
    }

    // V9: the checks that passed, per vote and on the decision.
    assert_eq!(
        rule_ids(&v1.checks),
        [RuleId::V2, RuleId::S6, RuleId::L4, RuleId::V4, RuleId::V3]
    );
    assert_eq!(
        rule_ids(&v2.checks),
        [
            RuleId::V2,
            RuleId::V1,
            RuleId::S6,
            RuleId::S5,
            RuleId::V4,
            RuleId::V3
        ]
    );
    assert!(
        v1.checks[0].detail.contains("lo-1") && v1.checks[0].detail.contains("market-corporate")
    );
    assert!(v1.checks[1].detail.contains("lo-1"), "S6 names the voter");
    assert!(
        v1.checks[2].detail.contains("rating class 5"),
        "L4 names the rating: {}",
        v1.checks[2].detail
    );
    assert!(
        v1.checks[3]
            .detail
            .contains("lo-1 holds level 2 on the market side; the case requires level 1 (level-1)"),
        "V4 names both levels: {}",
        v1.checks[3].detail
    );
    assert!(v2.checks[1].detail.contains("ba-1") && v2.checks[1].detail.contains("lo-1"));
    assert!(
        v2.checks[3].detail.contains("never in a market unit"),
        "the S5 check"
    );
    assert!(
        v2.checks[4]
            .detail
            .contains("holds level 2 on the backoffice side")
    );
    assert!(v2.checks[5].detail.contains(&d.content_hash));
    assert_eq!(
        rule_ids(&d.checks),
        [
            RuleId::V2,
            RuleId::S6,
            RuleId::L4,
            RuleId::V4,
            RuleId::V3,
            RuleId::V2,
            RuleId::V1,
            RuleId::S6,
            RuleId::S5,
            RuleId::V4,
            RuleId::V3,
            RuleId::V1
        ]
    );
    let mut vote_checks = v1.checks.clone();
    vote_checks.extend(v2.checks.clone());
    assert_eq!(d.checks[..11], vote_checks[..]);

    // V9: the rule set, level and policy the decision was taken under.
    assert_eq!((d.level, d.level_name.as_str()), (1, "level-1"));
    assert_eq!(d.rules_version, 1);
    assert_eq!(d.policy_hash, POLICY_HASH);
    assert_eq!(d.aggregated_exposure, Some(dec("250000")));
    assert_eq!(d.flags, []);
}

// ---------------------------------------------------------------------------
// V10: revision (optimistic concurrency)
// ---------------------------------------------------------------------------

#[test]
fn v10_revision_increments_on_every_state_change_and_only_then() {
    let mut case = new_case();
    assert_eq!((case.version, case.revision), (1, 1));
    // The originator edits: they never vote on the case anyway (S6).
    let steps: Vec<(&str, Cmd, bool, i64, i64)> = vec![
        // (row, command, accepted, version after, revision after)
        ("V10 edit", edit(or1(), file_v2(), 1), true, 2, 2),
        (
            "V10 refused stale first vote",
            first(lo1(), Approve, 1),
            false,
            2,
            2,
        ),
        ("V10 first vote", first(lo1(), Approve, 2), true, 2, 3),
        (
            "V10 refused same-person second vote",
            second(Some(voter("lo-1", "bo", Side::Backoffice)), Approve, 2),
            false,
            2,
            3,
        ),
        (
            "V10 board resolution",
            resolution(ba2(), "BR-2026-04"),
            true,
            2,
            4,
        ),
        (
            "V10 re-evaluation without a change is no state change",
            Cmd::Reevaluate,
            false,
            2,
            4,
        ),
        ("V10 return", ret(ba1(), "rework"), true, 3, 5),
        ("V10 refused return", ret(ba1(), "rework"), false, 3, 5),
        ("V10 edit after return", edit(or1(), file(), 3), true, 4, 6),
        ("V10 first vote again", first(lo2(), Approve, 4), true, 4, 7),
        (
            "V10 refused empty rationale",
            Cmd::Second {
                by: ba1(),
                decision: Approve,
                rationale: " ".into(),
                version: 4,
            },
            false,
            4,
            7,
        ),
        ("V10 second vote", second(ba1(), Approve, 4), true, 4, 8),
        (
            "V10 refused after approval",
            second(ba2(), Decline, 4),
            false,
            4,
            8,
        ),
    ];
    for (i, (row, cmd, ok, version, revision)) in steps.into_iter().enumerate() {
        let now = at(10 * (i as i64 + 1));
        if matches!(cmd, Cmd::Reevaluate) {
            let before = case.clone();
            apply(&mut case, &cmd, &facts(), now).expect("reevaluate");
            assert_eq!(case, before, "{row}");
        } else if ok {
            accept(&mut case, cmd, now);
        } else {
            refuse(&mut case, cmd, now);
        }
        assert_eq!((case.version, case.revision), (version, revision), "{row}");
    }
    assert_eq!(case.status, CaseStatus::Approved);
    assert_eq!(case.created_at, t0());
    assert_eq!(case.updated_at, at(120));
}

#[test]
fn v10_concurrent_commands_from_the_same_revision_cannot_both_win() {
    // Two back-office analysts load the same case (same revision) and vote
    // concurrently. In memory both succeed, but both claim the same next
    // revision, so the store's compare-and-set on `revision` lets one win.
    let loaded = awaiting();
    let mut a = loaded.clone();
    let mut b = loaded.clone();
    accept(&mut a, second(ba1(), Approve, 1), at(30));
    accept(&mut b, second(ba2(), Decline, 1), at(30));
    assert_eq!(a.revision, loaded.revision + 1);
    assert_eq!(a.revision, b.revision, "V10 both claim the same revision");
    // The loser reloads the winner's state and retries: refused, not applied.
    let mut reloaded = a.clone();
    let err = refuse(&mut reloaded, second(ba2(), Decline, 1), at(31));
    assert_invalid_state(&err, "V10 retry after the other vote won");

    // Edit racing a first vote: after reloading the edit, the vote is stale.
    let loaded = new_case();
    let mut editor = loaded.clone();
    let mut voter_side = loaded.clone();
    accept(&mut editor, edit(lo1(), file_v2(), 1), at(5));
    accept(&mut voter_side, first(lo2(), Approve, 1), at(5));
    assert_eq!(editor.revision, voter_side.revision);
    let mut reloaded = editor.clone();
    let err = refuse(&mut reloaded, first(lo2(), Approve, 1), at(6));
    assert_eq!(
        err,
        DomainError::StaleVersion {
            current: 2,
            given: 1
        }
    );
}

// ---------------------------------------------------------------------------
// Text validation: rationale (V1/V9) and return reason (V6)
// ---------------------------------------------------------------------------

#[test]
fn v1_v6_rationale_and_reason_are_validated() {
    // (row, input, stored value if accepted)
    let table: Vec<(&str, String, Option<String>)> = vec![
        ("empty", String::new(), None),
        ("only spaces", "   ".into(), None),
        ("only whitespace incl. newlines", " \n\t\r\n ".into(), None),
        ("NUL byte", "ok\u{0}".into(), None),
        ("BEL in the middle", "a\u{7}b".into(), None),
        ("ANSI escape", "\u{1b}[2J wiped".into(), None),
        ("DEL", "del\u{7f}ete".into(), None),
        ("C1 control", "x\u{85}y\u{9b}z".into(), None),
        ("4001 ASCII chars", "x".repeat(MAX_CHARS + 1), None),
        ("4001 two-byte chars", "ü".repeat(MAX_CHARS + 1), None),
        (
            "4000 ASCII chars",
            "x".repeat(MAX_CHARS),
            Some("x".repeat(MAX_CHARS)),
        ),
        (
            "4000 two-byte chars (chars, not bytes)",
            "ü".repeat(MAX_CHARS),
            Some("ü".repeat(MAX_CHARS)),
        ),
        (
            "4000 chars plus surrounding whitespace",
            format!("  {}\n", "x".repeat(MAX_CHARS)),
            Some("x".repeat(MAX_CHARS)),
        ),
        (
            "padded text is trimmed",
            "  fits the competence order  ".into(),
            Some("fits the competence order".into()),
        ),
        (
            "newlines and tabs inside are kept",
            "line one\r\nline two\tindented".into(),
            Some("line one\r\nline two\tindented".into()),
        ),
        (
            "non-ASCII text",
            "Kredit für Müller GmbH – Saisonfinanzierung".into(),
            Some("Kredit für Müller GmbH – Saisonfinanzierung".into()),
        ),
    ];
    for (row, input, stored) in table {
        let commands = [
            (
                "V1 first vote rationale",
                new_case(),
                Cmd::First {
                    by: lo1(),
                    decision: Approve,
                    rationale: input.clone(),
                    version: 1,
                },
            ),
            (
                "V1 second vote rationale",
                awaiting(),
                Cmd::Second {
                    by: ba1(),
                    decision: Decline,
                    rationale: input.clone(),
                    version: 1,
                },
            ),
            (
                "V6 return reason",
                awaiting(),
                Cmd::Return {
                    by: ba1(),
                    reason: input.clone(),
                },
            ),
        ];
        for (what, mut case, cmd) in commands {
            let row = format!("{what}: {row}");
            let is_return = matches!(cmd, Cmd::Return { .. });
            match &stored {
                Some(want) => {
                    accept(&mut case, cmd, at(50));
                    let got = if is_return {
                        case.return_reason.clone().expect("reason")
                    } else {
                        case.votes.last().expect("vote").rationale.clone()
                    };
                    assert_eq!(&got, want, "{row}");
                }
                None => {
                    let err = refuse(&mut case, cmd, at(50));
                    assert_invalid(&err, &row);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The credit file (V3): validation and content hash
// ---------------------------------------------------------------------------

#[test]
fn v3_case_file_validation() {
    let eur = || money("250000.00", "EUR");
    // (row, product, term, purpose, ok)
    let long_product = "p".repeat(101);
    let max_product = "p".repeat(100);
    let long_purpose = "x".repeat(MAX_CHARS + 1);
    let max_purpose = "x".repeat(MAX_CHARS);
    let table: Vec<(&str, &str, i64, &str, bool)> = vec![
        ("term 1 (lower bound)", "term-loan", 1, "capex", true),
        ("term 600 (upper bound)", "term-loan", 600, "capex", true),
        ("term 0", "term-loan", 0, "capex", false),
        ("term 601", "term-loan", 601, "capex", false),
        ("term -1", "term-loan", -1, "capex", false),
        ("term i64::MIN", "term-loan", i64::MIN, "capex", false),
        ("term i64::MAX", "term-loan", i64::MAX, "capex", false),
        (
            "term 2^32 + 1 (no wrap to 1)",
            "term-loan",
            (1 << 32) + 1,
            "capex",
            false,
        ),
        ("empty product", "", 60, "capex", false),
        ("whitespace product", " \t ", 60, "capex", false),
        (
            "product with control char",
            "term\u{0}loan",
            60,
            "capex",
            false,
        ),
        ("product 101 chars", &long_product, 60, "capex", false),
        ("product 100 chars", &max_product, 60, "capex", true),
        ("empty purpose", "term-loan", 60, "", false),
        ("purpose with ESC", "term-loan", 60, "\u{1b}capex", false),
        ("purpose 4001 chars", "term-loan", 60, &long_purpose, false),
        ("purpose 4000 chars", "term-loan", 60, &max_purpose, true),
    ];
    for (row, product, term, purpose, ok) in table {
        let result = CaseFile::new(borrower(), eur(), product, term, purpose);
        match result {
            Ok(f) => {
                assert!(ok, "V3 {row}: accepted {f:?}");
                assert_eq!(i64::from(f.term_months), term, "V3 {row}");
            }
            Err(err) => {
                assert!(!ok, "V3 {row}: refused {err:?}");
                assert_invalid(&err, &format!("V3 {row}"));
            }
        }
    }
    // Text is stored trimmed.
    let f = CaseFile::new(borrower(), eur(), "  term-loan ", 60, "\ncapex ").expect("file");
    assert_eq!(
        (f.product.as_str(), f.purpose.as_str()),
        ("term-loan", "capex")
    );
}

#[test]
fn v3_content_hash_is_canonical_and_stable() {
    let base = file();
    // Canonical rendering: sorted keys, no whitespace, amount as a string with
    // the currency's scale. Other services must be able to recompute it.
    let canonical = format!(
        r#"{{"amount":"250000.00","borrower_id":"{}","currency":"EUR","product":"term-loan","purpose":"working capital","term_months":60}}"#,
        borrower()
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    assert_eq!(base.content_hash(), hex::encode(digest.as_ref()));
    assert_eq!(base.content_hash().len(), 64);

    // Stable: same facts, same hash, however they were entered.
    let same = [
        ("V3 clone", base.clone()),
        ("V3 rebuilt", file()),
        (
            "V3 amount without decimals",
            file_of(money("250000", "EUR"), "term-loan", 60, "working capital"),
        ),
        (
            "V3 padded text",
            file_of(
                money("250000.00", "EUR"),
                " term-loan ",
                60,
                "working capital\n",
            ),
        ),
    ];
    for (row, f) in same {
        assert_eq!(f, base, "{row}");
        assert_eq!(f.content_hash(), base.content_hash(), "{row}");
    }
    assert_eq!(base.content_hash(), base.content_hash());
    assert_eq!(new_case().content_hash(), base.content_hash());
}

#[test]
fn v3_content_hash_changes_when_any_field_changes() {
    let base = file();
    let with = |amount: &str, currency: &str, product: &str, term: i64, purpose: &str| {
        file_of(money(amount, currency), product, term, purpose)
    };
    let variants = [
        (
            "V3 amount +0.01",
            with("250000.01", "EUR", "term-loan", 60, "working capital"),
        ),
        (
            "V3 currency",
            with("250000.00", "USD", "term-loan", 60, "working capital"),
        ),
        (
            "V3 currency with another scale",
            with("250000", "JPY", "term-loan", 60, "working capital"),
        ),
        (
            "V3 borrower",
            CaseFile {
                borrower_id: other_borrower(),
                ..base.clone()
            },
        ),
        (
            "V3 product",
            with("250000.00", "EUR", "overdraft", 60, "working capital"),
        ),
        (
            "V3 product case",
            with("250000.00", "EUR", "Term-loan", 60, "working capital"),
        ),
        (
            "V3 purpose",
            with("250000.00", "EUR", "term-loan", 60, "working capital."),
        ),
        (
            "V3 term",
            with("250000.00", "EUR", "term-loan", 61, "working capital"),
        ),
        (
            "V3 text moved between fields",
            with("250000.00", "EUR", "term-loan working", 60, "capital"),
        ),
        (
            "V3 quotes cannot forge a field boundary",
            with(
                "250000.00",
                "EUR",
                r#"term-loan","purpose":"x"#,
                60,
                "working capital",
            ),
        ),
    ];
    let mut seen = BTreeSet::from([base.content_hash()]);
    for (row, f) in variants {
        assert_ne!(f, base, "{row}");
        assert!(seen.insert(f.content_hash()), "{row}: hash not unique");
    }
}

/// Regression test for a bug found while writing these tests: `Money::new`
/// bounded amounts by major units only, so in four-decimal currencies (CLF,
/// UYW) an accepted amount could exceed i64 minor units and `minor_units()`
/// silently saturated to i64::MAX, i.e. stored a different amount.
#[test]
fn case_file_amounts_always_fit_integer_minor_units() {
    let table = [
        ("1000000000000000", "EUR", true),
        ("1000000000000000", "BHD", true),
        ("1000000000000000", "JPY", true),
        ("922337203685477.5807", "CLF", true),
        ("922337203685477.5808", "CLF", false),
        ("1000000000000000", "CLF", false),
        ("1000000000000000", "UYW", false),
    ];
    for (amount, currency, ok) in table {
        match Money::parse(amount, currency) {
            Ok(m) => {
                assert!(ok, "{amount} {currency} accepted");
                assert_eq!(
                    Money::from_minor_units(m.minor_units(), currency),
                    Ok(m),
                    "{amount} {currency}: minor units round-trip"
                );
            }
            Err(err) => assert!(!ok, "{amount} {currency} refused: {err}"),
        }
    }
}
