//! Table-driven tests for the rules checked against [`VoteFacts`]: V4
//! (competence), V5 (divergent votes, escalation), V8 (single-vote lane), V9
//! (the decision record), V11 (related parties), S5 (cooling-off) and S6
//! (conflicts of interest). Every test name or table row names the rule.

use super::*;
use crate::rules::CompetenceLevel;
use DecisionFlag::{BoardLevel, Divergent, Escalated, RelatedParty, SingleVoteLane};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn person(id: &str, side: Side, level: u8) -> Option<Voter> {
    Some(Voter {
        competence_level: level,
        ..voter(id, &format!("{}-unit", side.as_str()), side)
    })
}

/// The `i`-th market voter, competent up to the board.
fn mk(i: u32) -> Option<Voter> {
    person(&format!("mk-{i}"), Side::Market, 4)
}

/// The `i`-th back-office voter, competent up to the board, never in market.
fn bo(i: u32) -> Option<Voter> {
    person(&format!("bo-{i}"), Side::Backoffice, 4)
}

fn ids(list: &[&str]) -> BTreeSet<StaffId> {
    list.iter().map(|id| staff(id)).collect()
}

fn with_related(facts: VoteFacts, related: &[&str]) -> VoteFacts {
    VoteFacts {
        related_parties: ids(related),
        ..facts
    }
}

fn with_rms(facts: VoteFacts, rms: &[&str]) -> VoteFacts {
    VoteFacts {
        relationship_managers: ids(rms),
        ..facts
    }
}

fn with_group_changers(facts: VoteFacts, changers: &[&str]) -> VoteFacts {
    VoteFacts {
        group_changers: ids(changers),
        ..facts
    }
}

fn with_rules(facts: VoteFacts, rules: RuleSet) -> VoteFacts {
    VoteFacts { rules, ..facts }
}

/// The detail text of a rule violation.
fn detail(err: &DomainError) -> String {
    err.to_string()
}

/// The default competence order as a table: (exposure, level, level name).
const COMPETENCE_TABLE: [(&str, u8, &str); 8] = [
    ("0.01", 1, "level-1"),
    ("250000", 1, "level-1"),
    ("250000.01", 2, "level-2"),
    ("1000000", 2, "level-2"),
    ("1000000.01", 3, "level-3"),
    ("5000000", 3, "level-3"),
    ("5000000.01", 4, "board"),
    ("999999999999", 4, "board"),
];

// ---------------------------------------------------------------------------
// V4: competence
// ---------------------------------------------------------------------------

#[test]
fn v4_competence_table_for_first_and_second_vote() {
    for (exposure, required, name) in COMPETENCE_TABLE {
        let facts = facts_for(exposure);
        for level in 0..=4u8 {
            for stage in [VoteStage::First, VoteStage::Second] {
                let row = format!(
                    "V4 {stage} vote, exposure {exposure} (needs {required}), voter level {level}"
                );
                let mut case = new_case();
                let cmd = match stage {
                    VoteStage::First => first(leveled(lo1(), level), Approve, 1),
                    VoteStage::Second => {
                        accept_with(&mut case, first(mk(1), Approve, 1), &facts, at(10));
                        second(leveled(ba1(), level), Approve, 1)
                    }
                };
                if level >= required {
                    accept_with(&mut case, cmd, &facts, at(20));
                    let vote = case.votes.last().expect("vote");
                    assert_eq!(vote.required_level, required, "{row}");
                    assert_eq!(vote.voter.competence_level, level, "{row}");
                    let v4 = vote
                        .checks
                        .iter()
                        .find(|c| c.rule == RuleId::V4)
                        .expect("V4 check recorded");
                    assert!(
                        v4.detail.contains(&format!(
                            "holds level {level} on the {} side; the case requires level \
                             {required} ({name})",
                            side_of(stage)
                        )),
                        "{row}: {}",
                        v4.detail
                    );
                } else {
                    let err = refuse_with(&mut case, cmd, &facts, at(20));
                    assert_rule(&err, RuleId::V4, &row);
                    let text = detail(&err);
                    assert!(
                        text.contains(&format!("requires competence level {required} ({name})")),
                        "{row}: the refusal names the required level: {text}"
                    );
                    assert!(
                        text.contains(&format!("holds level {level}")),
                        "{row}: {text}"
                    );
                }
            }
        }
    }
}

#[test]
fn v4_the_competence_order_in_force_names_the_levels() {
    // A two-level order (rule set version 2): a team up to EUR 10k, then the board.
    let mut rules = rules_with(|p| {
        p.competence_order.levels = vec![
            CompetenceLevel {
                level: 1,
                name: "team".into(),
                up_to: Some(dec("10000")),
            },
            CompetenceLevel {
                level: 2,
                name: "management-board".into(),
                up_to: None,
            },
        ];
    });
    rules.version = 2;
    let table = [
        ("V4 custom order, team level", "10000", 1, "team"),
        ("V4 custom order, board", "10000.01", 2, "management-board"),
    ];
    for (row, exposure, required, name) in table {
        let facts = with_rules(facts_for(exposure), rules.clone());
        let mut case = new_case();
        let err = refuse_with(
            &mut case,
            first(leveled(lo1(), required - 1), Approve, 1),
            &facts,
            at(10),
        );
        assert_rule(&err, RuleId::V4, row);
        assert!(
            detail(&err).contains(&format!("level {required} ({name})")),
            "{row}: {err}"
        );
        accept_with(
            &mut case,
            first(leveled(lo1(), required), Approve, 1),
            &facts,
            at(11),
        );
        let v4 = &case.votes[0].checks[3];
        assert_eq!(v4.rule, RuleId::V4, "{row}");
        assert!(v4.detail.contains("(rule set 2)"), "{row}: {}", v4.detail);
    }
}

#[test]
fn v4_v5_the_escalation_level_raises_the_requirement() {
    // (row, exposure, escalation level, required level)
    let table = [
        ("V4 no escalation: by exposure", "250000", None, 1),
        (
            "V4/V5 escalated to 2 above a level-1 exposure",
            "250000",
            Some(2),
            2,
        ),
        ("V4/V5 escalated to the board", "250000", Some(4), 4),
        (
            "V4/V5 exposure above the escalation level",
            "6000000",
            Some(2),
            4,
        ),
        ("V4/V5 equal levels", "2000000", Some(3), 3),
    ];
    for (row, exposure, escalation, required) in table {
        assert_eq!(
            facts_for(exposure).required_level(escalation),
            Ok(required),
            "{row}"
        );
    }

    // The fixture case escalated from level 1 to level 2.
    let mut case = escalated();
    assert_eq!((case.round, case.escalation_level), (1, Some(2)));
    let err = refuse(&mut case, first(leveled(lo2(), 1), Approve, 1), at(40));
    assert_rule(
        &err,
        RuleId::V4,
        "V4/V5 level-1 market voter after escalation to level 2",
    );
    assert!(
        detail(&err).contains("requires competence level 2 (level-2)"),
        "{err}"
    );
    accept(&mut case, first(leveled(lo2(), 2), Approve, 1), at(41));
    let err = refuse(&mut case, second(leveled(ba2(), 1), Approve, 1), at(42));
    assert_rule(
        &err,
        RuleId::V4,
        "V4/V5 level-1 back-office voter after escalation to level 2",
    );
    assert!(
        detail(&err).contains("requires competence level 2 (level-2)"),
        "{err}"
    );
    accept(&mut case, second(leveled(ba2(), 2), Approve, 1), at(43));
    assert_eq!(case.status, CaseStatus::Approved);
    assert_eq!(case.decision.as_ref().map(|d| d.level), Some(2));
}

#[test]
fn v4_second_vote_is_refused_when_the_first_vote_is_below_the_now_required_level() {
    // lo-1 (level 2) approved at EUR 250k (level 1). The group exposure then
    // changes before back office votes (R2).
    // (row, exposure at the second vote, accepted)
    let table = [
        ("V4 exposure unchanged", "250000", true),
        (
            "V4 exposure rose within the first voter's level",
            "1000000",
            true,
        ),
        ("V4 exposure rose to level 3", "1000000.01", false),
        ("V4 exposure rose to the board", "6000000", false),
    ];
    for (row, exposure, ok) in table {
        for decision in [Approve, Decline] {
            let row = format!("{row} ({decision:?})");
            let facts = facts_for(exposure);
            let mut case = awaiting();
            // The back-office voter is competent for any level.
            let cmd = second(leveled(ba1(), 4), decision, 1);
            if ok {
                accept_with(&mut case, cmd, &facts, at(30));
            } else {
                let err = refuse_with(&mut case, cmd, &facts, at(30));
                assert_rule(&err, RuleId::V4, &row);
                let text = detail(&err);
                assert!(text.contains("cast at level 2"), "{row}: {text}");
                assert!(
                    text.contains("requires competence level 3")
                        || text.contains("requires competence level 4"),
                    "{row}: {text}"
                );
            }
        }
    }
}

#[test]
fn v4_reevaluate_voids_an_insufficient_first_vote_and_returns_the_case() {
    // (row, exposure now, changes, level named in the reason)
    let table = [
        ("V4 reevaluate, exposure unchanged", "250000", false, ""),
        (
            "V4 reevaluate, still within the first voter's level",
            "1000000",
            false,
            "",
        ),
        (
            "V4 reevaluate, level 3 needed",
            "1000000.01",
            true,
            "level 3 (level-3)",
        ),
        (
            "V4 reevaluate, board needed",
            "6000000",
            true,
            "level 4 (board)",
        ),
    ];
    for (row, exposure, changes, named) in table {
        let facts = facts_for(exposure);
        let mut case = awaiting();
        let before = case.clone();
        assert_eq!(case.reevaluate(&facts, at(20)), Ok(changes), "{row}");
        if !changes {
            assert_eq!(case, before, "{row}");
            continue;
        }
        assert_eq!(case.status, CaseStatus::Returned, "{row}");
        assert_eq!(
            case.version,
            before.version + 1,
            "{row}: V3 new file version"
        );
        assert_eq!(case.revision, before.revision + 1, "{row}: V10");
        assert_eq!(case.updated_at, at(20), "{row}");
        assert_eq!(
            case.votes, before.votes,
            "{row}: V10 the void vote stays on record"
        );
        assert_eq!(
            case.current_votes().count(),
            0,
            "{row}: V3 the vote is void"
        );
        assert_eq!(case.decision, None, "{row}");
        let reason = case.return_reason.clone().expect("reason");
        assert!(reason.contains(named), "{row}: {reason}");
        // Voting restarts at the new level: lo-1 (level 2) is now too junior.
        let err = refuse_with(&mut case, first(lo1(), Approve, 2), &facts, at(21));
        assert_rule(&err, RuleId::V4, row);
        accept_with(&mut case, first(mk(1), Approve, 2), &facts, at(22));
        accept_with(&mut case, second(bo(1), Approve, 2), &facts, at(23));
        assert_eq!(case.status, CaseStatus::Approved, "{row}");
    }

    // In an escalated round the escalation level counts too; a void vote
    // restarts voting on a new version without the escalation level.
    let mut case = escalated();
    accept(&mut case, first(lo2(), Approve, 1), at(40));
    let mut same = case.clone();
    assert_eq!(
        same.reevaluate(&facts(), at(41)),
        Ok(false),
        "V4/V5 level 2 suffices"
    );
    assert_eq!(same, case);
    assert_eq!(case.reevaluate(&facts_for("1000000.01"), at(41)), Ok(true));
    assert_eq!(
        (case.status, case.version, case.escalation_level),
        (CaseStatus::Returned, 2, None)
    );
    assert_eq!(case.votes.len(), 3, "V10 all votes stay on record");

    // Outside "awaiting the second vote" there is no first vote to void.
    let others = [
        ("draft", new_case()),
        ("returned", returned()),
        ("escalated", escalated()),
        ("approved", approved()),
        ("declined", declined_by_market()),
    ];
    for (state, case) in others {
        let mut same = case.clone();
        assert_eq!(
            same.reevaluate(&facts_for("80000000"), at(50)),
            Ok(false),
            "V4 reevaluate on a {state} case"
        );
        assert_eq!(same, case, "V4 reevaluate on a {state} case");
    }
}

#[test]
fn v4_aggregated_exposure_sums_exactly_and_refuses_foreign_currency() {
    let eur = |amounts: &[&str]| amounts.iter().map(|a| money(a, "EUR")).collect::<Vec<_>>();
    // (row, approved credit of the group, this request, sum)
    let table = [
        ("V4 no other credit", eur(&[]), "250000.00", "250000.00"),
        (
            "V4 cents sum exactly",
            eur(&["0.10", "0.20"]),
            "0.30",
            "0.60",
        ),
        (
            "V4 the group crosses a competence limit by a cent",
            eur(&["100000.01", "149999.99"]),
            "0.01",
            "250000.01",
        ),
        (
            "V4 the largest amounts sum without loss",
            eur(&["1000000000000000", "1000000000000000", "999999999999999.99"]),
            "1000000000000000",
            "3999999999999999.99",
        ),
    ];
    for (row, approved, request, sum) in table {
        let got = aggregated_exposure(&approved, &money(request, "EUR"), "EUR");
        assert_eq!(got, Ok(dec(sum)), "{row}");
    }

    // (row, approved, request, competence order currency, named currency)
    let foreign = [
        (
            "V4 a group member's credit in USD",
            vec![money("100", "EUR"), money("100", "USD")],
            money("100", "EUR"),
            "EUR",
            "USD",
        ),
        (
            "V4 the request in JPY",
            vec![money("100", "EUR")],
            money("100", "JPY"),
            "EUR",
            "JPY",
        ),
        (
            "V4 everything in EUR, the order in CHF",
            vec![],
            money("100", "EUR"),
            "CHF",
            "EUR",
        ),
    ];
    for (row, approved, request, currency, named) in foreign {
        let err = aggregated_exposure(&approved, &request, currency).expect_err(row);
        assert_rule(&err, RuleId::V4, row);
        let text = detail(&err);
        assert!(
            text.contains(named) && text.contains(currency),
            "{row}: {text}"
        );
    }

    // The aggregate, not the request alone, decides the level: EUR 50k more
    // for a group with EUR 200k.01 needs level 2.
    let exposure = aggregated_exposure(&[money("200000.01", "EUR")], &money("50000", "EUR"), "EUR")
        .expect("sum");
    let facts = VoteFacts::plain(RuleSet::initial(), exposure, POLICY_HASH)
        .with_risk(risk_pass())
        .with_rating(rating_of(5, t0()));
    let mut case = new_case();
    let err = refuse_with(
        &mut case,
        first(leveled(lo1(), 1), Approve, 1),
        &facts,
        at(10),
    );
    assert_rule(&err, RuleId::V4, "V4 group aggregate needs level 2");
    assert!(detail(&err).contains("level 2 (level-2)"), "{err}");
}

// ---------------------------------------------------------------------------
// V5: divergent votes and escalation
// ---------------------------------------------------------------------------

#[test]
fn v5_divergent_votes_escalate_and_new_voters_approve_at_the_next_level() {
    let mut case = awaiting();
    accept(&mut case, second(ba1(), Decline, 1), at(30));
    assert_eq!(
        case.status,
        CaseStatus::Escalated,
        "V5 escalate, never approve"
    );
    assert_eq!((case.round, case.escalation_level), (1, Some(2)));
    assert_eq!(case.decision, None);
    let original = case.votes.clone();
    assert_eq!(original.len(), 2);

    accept(&mut case, first(lo2(), Approve, 1), at(40));
    assert_eq!(case.status, CaseStatus::AwaitingSecondVote);
    accept(&mut case, second(ba2(), Approve, 1), at(50));
    assert_eq!(case.status, CaseStatus::Approved);
    assert_eq!(case.votes[..2], original[..], "V5 original votes unchanged");

    let d = case.decision.clone().expect("decision");
    assert_eq!((d.level, d.level_name.as_str()), (2, "level-2"));
    assert_eq!(d.flags, [Escalated], "V5/V7 escalated decision is flagged");
    assert_eq!(d.votes, case.votes, "V9 votes of all rounds");
    let summary: Vec<_> = d
        .votes
        .iter()
        .map(|v| {
            (
                v.round,
                v.stage,
                v.decision,
                v.required_level,
                v.voter.staff_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, VoteStage::First, Approve, 1, "lo-1"),
            (0, VoteStage::Second, Decline, 1, "ba-1"),
            (1, VoteStage::First, Approve, 2, "lo-2"),
            (1, VoteStage::Second, Approve, 2, "ba-2"),
        ]
    );
    for v in &d.votes[2..] {
        let v5 = v
            .checks
            .iter()
            .find(|c| c.rule == RuleId::V5)
            .expect("V5 check");
        assert!(v5.detail.contains("round 1"), "{}", v5.detail);
    }
    assert!(
        d.votes[..2]
            .iter()
            .all(|v| v.checks.iter().all(|c| c.rule != RuleId::V5))
    );
}

#[test]
fn v5_earlier_voters_are_refused_in_the_escalated_round() {
    // lo-1 (market) and ba-1 (back office) voted in round 0. The same natural
    // people are refused in round 1 on either side (S2), with rule V5.
    let lo1_in_back_office = Some(Voter {
        left_market_at: Some(ts("2024-01-01T00:00:00Z")),
        ..voter("lo-1", "backoffice-credit", Side::Backoffice)
    });
    let ba1_in_market = Some(voter("ba-1", "market-retail", Side::Market));
    let first_rows = [
        ("V5 round-0 first voter casts the round-1 first vote", lo1()),
        (
            "V5 round-0 second voter, now in market, casts the round-1 first vote",
            ba1_in_market,
        ),
    ];
    for (row, by) in first_rows {
        let mut case = escalated();
        let err = refuse(&mut case, first(by, Approve, 1), at(40));
        assert_rule(&err, RuleId::V5, row);
        assert!(detail(&err).contains("new voter"), "{row}: {err}");
    }
    let mut case = escalated();
    accept(&mut case, first(lo2(), Approve, 1), at(40));
    let second_rows = [
        (
            "V5 round-0 second voter casts the round-1 second vote",
            ba1(),
        ),
        (
            "V5 round-0 first voter, now in back office, casts the round-1 second vote",
            lo1_in_back_office,
        ),
    ];
    for (row, by) in second_rows {
        for decision in [Approve, Decline] {
            let err = refuse(&mut case, second(by.clone(), decision, 1), at(41));
            assert_rule(&err, RuleId::V5, row);
        }
    }
    accept(&mut case, second(ba2(), Approve, 1), at(42));
    assert_eq!(case.status, CaseStatus::Approved, "V5 control: new voters");

    // V3/V5: a return starts a new file version; the earlier voters are not
    // "earlier rounds" of the new version.
    let mut case = escalated();
    accept(&mut case, ret(ba2(), "new valuation needed"), at(40));
    accept(&mut case, first(lo1(), Approve, 2), at(41));
    accept(&mut case, second(ba1(), Approve, 2), at(42));
    assert_eq!(case.status, CaseStatus::Approved, "V3/V5 new version");
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.votes.len(), 2, "V9 only the votes of the decided version");
    assert_eq!(
        d.level, 1,
        "V3 the escalation level belongs to the old version"
    );
}

#[test]
fn v5_divergence_at_board_level_declines_with_the_divergent_flag() {
    // Direct board case: EUR 6m.
    let board = facts_for("6000000");
    let mut case = new_case();
    accept_with(&mut case, first(mk(1), Approve, 1), &board, at(10));
    accept_with(&mut case, second(bo(1), Decline, 1), &board, at(20));
    assert_eq!(
        case.status,
        CaseStatus::Declined,
        "V5 no level above the board"
    );
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.outcome, DecisionOutcome::Declined);
    assert_eq!(d.flags, [BoardLevel, Divergent]);
    assert_eq!((d.level, d.level_name.as_str()), (4, "board"));
    assert_eq!(case.round, 0);

    // Escalated from level 3 to the board, divergent again: declined.
    let level3 = facts_for("2000000");
    let mut case = new_case();
    accept_with(&mut case, first(mk(1), Approve, 1), &level3, at(10));
    accept_with(&mut case, second(bo(1), Decline, 1), &level3, at(20));
    assert_eq!(
        (case.status, case.escalation_level),
        (CaseStatus::Escalated, Some(4))
    );
    accept_with(&mut case, first(mk(2), Approve, 1), &level3, at(30));
    accept_with(&mut case, second(bo(2), Decline, 1), &level3, at(40));
    assert_eq!(case.status, CaseStatus::Declined);
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.flags, [BoardLevel, Escalated, Divergent]);
    assert_eq!(d.level, 4);
    assert_eq!(d.votes.len(), 4, "V9 votes of both rounds");
    assert_eq!(case.round, 1);
}

#[test]
fn v5_policy_decline_declines_divergent_votes() {
    let rules = rules_with(|p| p.divergence = DivergencePolicy::Decline);
    // (row, exposure, flags)
    let table = [
        ("V5 policy decline at level 1", "250000", vec![Divergent]),
        ("V5 policy decline at level 3", "2000000", vec![Divergent]),
        (
            "V5 policy decline at the board",
            "6000000",
            vec![BoardLevel, Divergent],
        ),
    ];
    for (row, exposure, flags) in table {
        let facts = with_rules(facts_for(exposure), rules.clone());
        let mut case = new_case();
        accept_with(&mut case, first(mk(1), Approve, 1), &facts, at(10));
        accept_with(&mut case, second(bo(1), Decline, 1), &facts, at(20));
        assert_eq!(case.status, CaseStatus::Declined, "{row}");
        assert_eq!((case.round, case.escalation_level), (0, None), "{row}");
        let d = case.decision.clone().expect("decision");
        assert_eq!(d.outcome, DecisionOutcome::Declined, "{row}");
        assert_eq!(d.flags, flags, "{row}");
    }
}

/// A case escalated `rounds` times from level 1 with new voters each round
/// (mk-i / bo-i in round i), awaiting the first vote of round `rounds`.
fn escalated_times(rounds: u32) -> CreditCase {
    let mut case = new_case();
    for round in 0..rounds {
        let minute = i64::from(round) * 10;
        accept(&mut case, first(mk(round), Approve, 1), at(minute + 1));
        accept(&mut case, second(bo(round), Decline, 1), at(minute + 2));
        assert_eq!(case.status, CaseStatus::Escalated);
    }
    assert_eq!(case.round, rounds);
    case
}

#[test]
fn v5_back_office_is_never_outvoted_in_any_round() {
    // Rounds 0..=3 at levels 1..=4 (the board) for the fixture EUR 250k.
    for round in 0..=3u32 {
        let level = u8::try_from(round).expect("small") + 1;
        let row = |what: &str| format!("V5 round {round} (level {level}): {what}");

        // Market approves, back office declines: never approved.
        let mut case = escalated_times(round);
        accept(&mut case, first(mk(round), Approve, 1), at(100));
        accept(&mut case, second(bo(round), Decline, 1), at(101));
        assert_ne!(case.status, CaseStatus::Approved, "{}", row("BO declines"));
        if level < 4 {
            assert_eq!(case.status, CaseStatus::Escalated, "{}", row("BO declines"));
            assert_eq!(
                case.escalation_level,
                Some(level + 1),
                "{}",
                row("BO declines")
            );
        } else {
            assert_eq!(case.status, CaseStatus::Declined, "{}", row("BO declines"));
            let d = case.decision.clone().expect("decision");
            assert!(
                d.flags.contains(&Divergent),
                "{}",
                row("BO declines at board")
            );
        }

        // Market declines (in an escalated round: the higher level confirms
        // back office's decline): declined.
        let mut case = escalated_times(round);
        accept(&mut case, first(mk(round), Decline, 1), at(100));
        assert_eq!(
            case.status,
            CaseStatus::Declined,
            "{}",
            row("market declines")
        );
        let d = case.decision.clone().expect("decision");
        assert_eq!(
            d.flags.contains(&Escalated),
            round > 0,
            "{}",
            row("market declines")
        );

        // Control: both approve at this round's level.
        let mut case = escalated_times(round);
        accept(&mut case, first(mk(round), Approve, 1), at(100));
        accept(&mut case, second(bo(round), Approve, 1), at(101));
        assert_eq!(case.status, CaseStatus::Approved, "{}", row("both approve"));
        let d = case.decision.clone().expect("decision");
        assert_eq!(d.level, level, "{}", row("both approve"));
        let last = d.votes.last().expect("vote");
        assert_eq!(
            (last.stage, last.decision, last.voter.side, last.round),
            (VoteStage::Second, Approve, Side::Backoffice, round),
            "{}",
            row("the deciding vote is an approving back-office vote")
        );
    }
}

// ---------------------------------------------------------------------------
// S5: cooling-off for back-office votes
// ---------------------------------------------------------------------------

#[test]
fn s5_cooling_off_boundaries_for_the_second_vote() {
    let vote_at = at(30); // 2026-03-02T09:30:00Z; six months earlier: 2025-09-02T09:30:00Z
    assert_eq!(vote_at, ts("2026-03-02T09:30:00Z"));
    let month_end = ts("2026-08-31T12:00:00Z");
    // (row, cooling-off months, left market at, vote time, accepted)
    let table: Vec<(&str, u32, Option<Timestamp>, Timestamp, bool)> = vec![
        ("S5 never in a market unit", 6, None, vote_at, true),
        (
            "S5 left exactly 6 months before the vote",
            6,
            Some(ts("2025-09-02T09:30:00Z")),
            vote_at,
            true,
        ),
        (
            "S5 left one second inside the 6-month window",
            6,
            Some(ts("2025-09-02T09:30:01Z")),
            vote_at,
            false,
        ),
        (
            "S5 left one second before the 6-month window",
            6,
            Some(ts("2025-09-02T09:29:59Z")),
            vote_at,
            true,
        ),
        (
            "S5 left yesterday",
            6,
            Some(ts("2026-03-01T09:30:00Z")),
            vote_at,
            false,
        ),
        (
            "S5 still in a market unit (left = vote time)",
            6,
            Some(vote_at),
            vote_at,
            false,
        ),
        (
            "S5 left 4 months ago, cooling-off 3 months",
            3,
            Some(ts("2025-11-02T09:30:00Z")),
            vote_at,
            true,
        ),
        (
            "S5 left 4 months ago, cooling-off 6 months",
            6,
            Some(ts("2025-11-02T09:30:00Z")),
            vote_at,
            false,
        ),
        (
            "S5 left 11 months ago, cooling-off 12 months",
            12,
            Some(ts("2025-04-02T09:30:00Z")),
            vote_at,
            false,
        ),
        (
            "S5 left exactly 12 months ago, cooling-off 12 months",
            12,
            Some(ts("2025-03-02T09:30:00Z")),
            vote_at,
            true,
        ),
        (
            "S5 cooling-off 0 months, left at vote time",
            0,
            Some(vote_at),
            vote_at,
            true,
        ),
        (
            "S5 calendar months: vote on Aug 31, left Feb 28 same time",
            6,
            Some(ts("2026-02-28T12:00:00Z")),
            month_end,
            true,
        ),
        (
            "S5 calendar months: vote on Aug 31, left Feb 28 one second later",
            6,
            Some(ts("2026-02-28T12:00:01Z")),
            month_end,
            false,
        ),
    ];
    for (row, months, left, now, ok) in table {
        let facts = with_rules(facts(), rules_with(|p| p.cooling_off_months = months));
        let by = Some(Voter {
            left_market_at: left,
            ..voter("ba-9", "backoffice-credit", Side::Backoffice)
        });
        for decision in [Approve, Decline] {
            let mut case = awaiting();
            let cmd = second(by.clone(), decision, 1);
            if ok {
                accept_with(&mut case, cmd, &facts, now);
                let vote = case.votes.last().expect("vote");
                let s5 = vote
                    .checks
                    .iter()
                    .find(|c| c.rule == RuleId::S5)
                    .expect("S5 check");
                let want = match left {
                    None => "never in a market unit".to_owned(),
                    Some(_) => format!("more than {months} months before the vote"),
                };
                assert!(s5.detail.contains(&want), "{row}: {}", s5.detail);
            } else {
                let err = refuse_with(&mut case, cmd, &facts, now);
                assert_rule(&err, RuleId::S5, row);
                let text = detail(&err);
                let day = left.expect("left").date_naive().to_string();
                assert!(
                    text.contains(&format!("cooling-off period of {months} months"))
                        && text.contains(&day),
                    "{row}: {text}"
                );
            }
        }
    }

    // S5 concerns back-office votes only: a market first vote is not checked.
    let mut case = new_case();
    let in_market = Some(Voter {
        left_market_at: Some(at(10)),
        ..voter("lo-1", "market-corporate", Side::Market)
    });
    accept(&mut case, first(in_market, Approve, 1), at(10));
    assert!(case.votes[0].checks.iter().all(|c| c.rule != RuleId::S5));
}

/// A staff member with a dated unit history and the fixture level on both sides.
fn history(id: &str, units: &[(&str, Side, Timestamp, Option<Timestamp>)]) -> StaffMember {
    let mut person = member(id, StaffStatus::Active, &[]);
    person.units = units
        .iter()
        .map(|&(unit_id, side, valid_from, valid_to)| UnitAssignment {
            unit_id: unit(unit_id),
            side,
            valid_from,
            valid_to,
        })
        .collect();
    person
}

#[test]
fn s5_s4_cooling_off_is_taken_from_the_dated_unit_history() {
    let long_ago = ts("2020-01-01T00:00:00Z");
    let moved = |id: &str, at_: &str| {
        history(
            id,
            &[
                ("market-corporate", Side::Market, long_ago, Some(ts(at_))),
                ("backoffice-credit", Side::Backoffice, ts(at_), None),
            ],
        )
    };
    // (row, person, vote outcome: Some(rule) refused, None accepted)
    let table = [
        (
            "S5 moved to back office exactly 6 months before the vote",
            moved("mv-1", "2025-09-02T09:30:00Z"),
            None,
        ),
        (
            "S5 moved to back office one minute later",
            moved("mv-2", "2025-09-02T09:31:00Z"),
            Some(RuleId::S5),
        ),
        (
            "S5 never in market",
            history(
                "bo-7",
                &[("backoffice-credit", Side::Backoffice, long_ago, None)],
            ),
            None,
        ),
        (
            "S4/S5 still in a market unit besides back office: no unique side",
            history(
                "am-1",
                &[
                    ("market-corporate", Side::Market, long_ago, None),
                    ("backoffice-credit", Side::Backoffice, long_ago, None),
                ],
            ),
            Some(RuleId::V2),
        ),
    ];
    for (row, person, refused) in table {
        let now = at(30);
        let mut case = awaiting();
        let cmd = second(person.voter_at(now), Approve, 1);
        match refused {
            None => accept(&mut case, cmd, now),
            Some(rule) => {
                let err = refuse(&mut case, cmd, now);
                assert_rule(&err, rule, row);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// S6: conflicts of interest
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Conflict {
    Originator,
    Editor,
    RelationshipManager,
    RelatedParty,
    /// Proposed or approved a change of the borrower's group (finding 2).
    GroupChanger,
}

#[test]
fn s6_conflicted_people_may_not_vote() {
    // cf-1 has the conflict; the table covers both votes.
    let cf1_market = || Some(voter("cf-1", "market-corporate", Side::Market));
    let cf1_back_office = || {
        Some(Voter {
            left_market_at: Some(ts("2024-01-01T00:00:00Z")),
            ..voter("cf-1", "backoffice-credit", Side::Backoffice)
        })
    };
    // (conflict, reason named in the refusal)
    let table = [
        (Conflict::Originator, "originated the case"),
        (Conflict::Editor, "edited the case"),
        (Conflict::RelationshipManager, "relationship manager"),
        (Conflict::RelatedParty, "related party"),
        (Conflict::GroupChanger, "changed the group membership"),
    ];
    for (conflict, reason) in table {
        for stage in [VoteStage::First, VoteStage::Second] {
            let row = format!("S6 {conflict:?} casts the {stage} vote");
            let mut case = match conflict {
                Conflict::Originator => CreditCase::open(
                    CaseId::from_uuid(Uuid::from_u128(0xCA5F)),
                    file(),
                    staff("cf-1"),
                    t0(),
                ),
                _ => new_case(),
            };
            let mut facts = facts();
            match conflict {
                Conflict::Editor => accept(&mut case, edit(cf1_market(), file_v2(), 1), at(5)),
                Conflict::RelationshipManager => facts = with_rms(facts, &["cf-1", "rm-9"]),
                Conflict::GroupChanger => facts = with_group_changers(facts, &["cf-1"]),
                Conflict::RelatedParty => {
                    facts = with_related(facts, &["cf-1"]);
                    // Approval needs the resolution (V11); S6 is checked anyway.
                    accept(&mut case, resolution(ba2(), "BR-2026-09"), at(6));
                    accept(&mut case, confirm(bb1()), at(6));
                }
                Conflict::Originator => {}
            }
            let version = case.version;
            let (conflicted, control) = match stage {
                VoteStage::First => (
                    first(cf1_market(), Approve, version),
                    first(lo1(), Approve, version),
                ),
                VoteStage::Second => {
                    accept_with(&mut case, first(lo1(), Approve, version), &facts, at(10));
                    (
                        second(cf1_back_office(), Approve, version),
                        second(ba1(), Approve, version),
                    )
                }
            };
            let err = refuse_with(&mut case, conflicted, &facts, at(20));
            assert_rule(&err, RuleId::S6, &row);
            let text = detail(&err);
            assert!(
                text.contains("cf-1") && text.contains(reason),
                "{row}: {text}"
            );
            // Control: an unconflicted voter passes S6, and it is recorded.
            accept_with(&mut case, control, &facts, at(21));
            let vote = case.votes.last().expect("vote");
            let s6 = vote
                .checks
                .iter()
                .find(|c| c.rule == RuleId::S6)
                .expect("S6 check");
            assert!(s6.detail.contains(vote.voter.staff_id.as_str()), "{row}");
        }
    }
}

#[test]
fn s6_editors_are_recorded_apart_from_the_originator_and_stay_conflicted() {
    let mut case = new_case();
    accept(&mut case, edit(or1(), file_v2(), 1), at(1));
    assert!(case.editors.is_empty(), "S6 the originator is kept apart");
    accept(&mut case, edit(lo1(), file(), 2), at(2));
    accept(&mut case, edit(lo1(), file_v2(), 3), at(3));
    accept(&mut case, edit(lo2(), file(), 4), at(4));
    assert_eq!(case.editors, ids(&["lo-1", "lo-2"]));

    // Still conflicted on later versions, after a return.
    accept(&mut case, first(mk(1), Approve, 5), at(5));
    accept(&mut case, ret(ba1(), "rework"), at(6));
    assert_eq!(case.version, 6);
    for (row, by) in [
        ("S6 editor lo-1 on a later version", lo1()),
        ("S6 editor lo-2", lo2()),
    ] {
        let err = refuse(&mut case, first(by, Approve, 6), at(7));
        assert_rule(&err, RuleId::S6, row);
    }
    let err = refuse(&mut case, first(or1(), Approve, 6), at(7));
    assert_rule(&err, RuleId::S6, "S6 originator");
    accept(&mut case, first(lo1_not_editor(), Approve, 6), at(8));
}

/// The group changes between the two votes (R2) so that the market first
/// voter now looks after a group member as relationship manager, or is now
/// recorded as a related party. The second vote re-checks the first vote's
/// competence against the new facts (V4); the first voter's conflicts (S6)
/// must not be waved through either: no approval with a first voter who is
/// conflicted at decision time.
#[test]
fn s6_an_approval_needs_a_first_voter_unconflicted_at_decision_time() {
    let table = [
        (
            "S6 first voter became relationship manager of a group member",
            with_rms(facts(), &["lo-1"]),
        ),
        (
            "S6 first voter recorded as a related party (resolution on record)",
            with_related(facts(), &["lo-1"]),
        ),
    ];
    for (row, changed) in table {
        let mut case = new_case();
        accept(&mut case, resolution(ba2(), "BR-2026-16"), at(5));
        accept(&mut case, confirm(bb1()), at(5));
        accept(&mut case, first(lo1(), Approve, 1), at(10));
        let result = apply(&mut case, &second(ba1(), Approve, 1), &changed, at(20));
        assert_ne!(
            case.status,
            CaseStatus::Approved,
            "{row}: approved although the first voter is conflicted under the facts in \
             force at the decision ({result:?})"
        );
    }
}

/// A market voter who neither originated nor edited the fixture case.
fn lo1_not_editor() -> Option<Voter> {
    person("lo-3", Side::Market, FIXTURE_LEVEL)
}

// ---------------------------------------------------------------------------
// V11: related-party credits need a board resolution
// ---------------------------------------------------------------------------

/// Facts naming kin-1 (who never votes) as a related party of the borrower.
fn related() -> VoteFacts {
    with_related(facts(), &["kin-1"])
}

#[test]
fn v11_related_party_approval_without_a_resolution_is_refused() {
    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Approve, 1), &related(), at(10));
    assert!(case.related_party, "V11 the related party is on record");
    assert!(!case.has_board_resolution());
    let err = refuse_with(&mut case, second(ba1(), Approve, 1), &related(), at(20));
    assert_rule(&err, RuleId::V11, "V11 approval without a resolution");
    assert!(detail(&err).contains("board resolution"), "{err}");
    // Once on record, the case stays a related-party case even if the facts
    // no longer name anybody.
    let err = refuse(&mut case, second(ba1(), Approve, 1), at(21));
    assert_rule(&err, RuleId::V11, "V11 related party stays on record");
    // V11 guards approvals only: back office may decline (V5 escalates).
    accept_with(&mut case, second(ba1(), Decline, 1), &related(), at(22));
    assert_eq!(case.status, CaseStatus::Escalated);
}

#[test]
fn v11_a_resolution_on_the_current_version_allows_approval_with_flag_and_check() {
    // (row, record the resolution before the first vote)
    for (row, before_first_vote) in [
        ("V11 resolution recorded in draft", true),
        (
            "V11 resolution recorded while awaiting the second vote",
            false,
        ),
    ] {
        let mut case = new_case();
        if before_first_vote {
            accept(&mut case, resolution(ba2(), " BR-2026-11 "), at(5));
        }
        accept_with(&mut case, first(lo1(), Approve, 1), &related(), at(10));
        if !before_first_vote {
            accept(&mut case, resolution(ba2(), " BR-2026-11 "), at(15));
        }
        assert!(
            !case.has_board_resolution(),
            "{row}: recorded, not confirmed"
        );
        let err = refuse_with(&mut case, second(ba1(), Approve, 1), &related(), at(16));
        assert_rule(&err, RuleId::V11, &format!("{row}: unconfirmed"));
        accept(&mut case, confirm(bb1()), at(17));
        let r = case.board_resolution.clone().expect("resolution");
        assert_eq!(r.reference, "BR-2026-11", "{row}");
        assert_eq!(r.recorded_by, staff("ba-2"), "{row}");
        assert_eq!(r.file_version, 1, "{row}");
        assert_eq!(r.content_hash, case.content_hash(), "{row}");
        assert!(case.has_board_resolution(), "{row}");

        accept_with(&mut case, second(ba1(), Approve, 1), &related(), at(20));
        assert_eq!(case.status, CaseStatus::Approved, "{row}");
        let d = case.decision.clone().expect("decision");
        assert_eq!(d.flags, [RelatedParty], "{row}");
        let v11 = d
            .checks
            .iter()
            .find(|c| c.rule == RuleId::V11)
            .expect("V11 check");
        assert!(v11.detail.contains("BR-2026-11"), "{row}: {}", v11.detail);
    }

    // A declined related-party case is flagged too (V7), without a V11 check.
    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Decline, 1), &related(), at(10));
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.flags, [RelatedParty]);
    assert!(d.checks.iter().all(|c| c.rule != RuleId::V11));
}

#[test]
fn v11_a_resolution_on_an_older_version_does_not_count() {
    // Row 1: recorded in draft on version 1, then the file is edited.
    let mut case = new_case();
    accept(&mut case, resolution(ba2(), "BR-2026-12"), at(5));
    accept(&mut case, confirm(bb1()), at(5));
    accept(&mut case, edit(or1(), file_v2(), 1), at(6));
    assert!(!case.has_board_resolution(), "V11 edit");
    accept_with(&mut case, first(lo1(), Approve, 2), &related(), at(10));
    let err = refuse_with(&mut case, second(ba1(), Approve, 2), &related(), at(20));
    assert_rule(
        &err,
        RuleId::V11,
        "V11 resolution on the version before an edit",
    );

    // Row 2: recorded while awaiting on version 1, then returned (V6).
    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Approve, 1), &related(), at(10));
    accept(&mut case, resolution(ba2(), "BR-2026-13"), at(11));
    accept(&mut case, confirm(bb1()), at(11));
    accept(&mut case, ret(ba1(), "rework"), at(12));
    assert!(!case.has_board_resolution(), "V11 return");
    accept_with(&mut case, first(lo2(), Approve, 2), &related(), at(13));
    let err = refuse_with(&mut case, second(ba1(), Approve, 2), &related(), at(14));
    assert_rule(
        &err,
        RuleId::V11,
        "V11 resolution on the version before a return",
    );

    // Recorded again for the current version: approved.
    accept(&mut case, resolution(ba2(), "BR-2026-14"), at(15));
    accept(&mut case, confirm(bb1()), at(15));
    accept_with(&mut case, second(ba1(), Approve, 2), &related(), at(16));
    assert_eq!(case.status, CaseStatus::Approved);
    let d = case.decision.clone().expect("decision");
    assert!(
        d.checks
            .iter()
            .any(|c| c.rule == RuleId::V11 && c.detail.contains("BR-2026-14"))
    );
}

#[test]
fn v11_board_resolutions_are_recorded_by_back_office_with_a_valid_reference() {
    for (row, side, ok) in side_table(Side::Backoffice) {
        let row = format!("V11 resolution by {row}");
        let mut case = awaiting();
        let cmd = resolution(on_side("p-2", side), "BR-2026-15");
        if ok {
            accept(&mut case, cmd, at(20));
        } else {
            let err = refuse(&mut case, cmd, at(20));
            assert_rule(&err, RuleId::V11, &row);
        }
    }
    // (row, reference, stored)
    let table: Vec<(&str, String, Option<String>)> = vec![
        ("V11 empty reference", String::new(), None),
        ("V11 whitespace reference", " \t ".into(), None),
        ("V11 reference with NUL", "BR\u{0}1".into(), None),
        ("V11 reference of 201 chars", "r".repeat(201), None),
        (
            "V11 reference of 200 chars",
            "r".repeat(200),
            Some("r".repeat(200)),
        ),
        (
            "V11 padded reference",
            "  BR-1 ".into(),
            Some("BR-1".into()),
        ),
    ];
    for (row, reference, stored) in table {
        let mut case = awaiting();
        let cmd = Cmd::Resolution {
            by: ba2(),
            reference,
        };
        match stored {
            Some(want) => {
                accept(&mut case, cmd, at(20));
                assert_eq!(
                    case.board_resolution.map(|r| r.reference),
                    Some(want),
                    "{row}"
                );
            }
            None => {
                let err = refuse(&mut case, cmd, at(20));
                assert_invalid(&err, row);
            }
        }
    }
}

/// A related party recorded between the two votes: the approving second
/// vote is refused (V11), and a refused command must leave the case exactly
/// as it was, like every other refusal.
#[test]
fn v11_refused_related_party_approval_leaves_the_case_unchanged() {
    let mut case = awaiting();
    assert!(!case.related_party);
    let err = refuse_with(&mut case, second(ba1(), Approve, 1), &related(), at(20));
    assert_rule(
        &err,
        RuleId::V11,
        "V11 related party recorded after the first vote",
    );
}

// ---------------------------------------------------------------------------
// V8: the single-vote lane
// ---------------------------------------------------------------------------

fn lane(threshold: &str) -> RuleSet {
    rules_with(|p| p.single_vote_below = Some(dec(threshold)))
}

#[test]
fn v8_the_single_vote_lane_is_off_by_default() {
    assert_eq!(RuleSet::initial().parameters.single_vote_below, None);
    for exposure in ["0.01", "1", "99999.99", "250000"] {
        let row = format!("V8 default rules, exposure {exposure}");
        let mut case = new_case();
        accept_with(
            &mut case,
            first(lo1(), Approve, 1),
            &facts_for(exposure),
            at(10),
        );
        assert_eq!(case.status, CaseStatus::AwaitingSecondVote, "{row}");
        assert_eq!(case.decision, None, "{row}");
    }
}

#[test]
fn v8_the_lane_decides_below_the_threshold_only() {
    // (row, exposure, decided by one vote)
    let table = [
        ("V8 one cent", "0.01", true),
        ("V8 a cent below the threshold", "99999.99", true),
        ("V8 at the threshold", "100000", false),
        ("V8 a cent above the threshold", "100000.01", false),
        ("V8 far above", "250000", false),
    ];
    for (row, exposure, decided) in table {
        let facts = with_rules(facts_for(exposure), lane("100000"));
        let mut case = new_case();
        accept_with(&mut case, first(lo1(), Approve, 1), &facts, at(10));
        if !decided {
            assert_eq!(case.status, CaseStatus::AwaitingSecondVote, "{row}");
            assert_eq!(case.decision, None, "{row}");
            continue;
        }
        assert_eq!(case.status, CaseStatus::Approved, "{row}");
        let d = case.decision.clone().expect("decision");
        assert_eq!(d.outcome, DecisionOutcome::Approved, "{row}");
        assert_eq!(d.flags, [SingleVoteLane], "{row}");
        assert_eq!(d.votes.len(), 1, "{row}");
        assert_eq!(d.level, 1, "{row}");
        let v8 = d.checks.last().expect("check");
        assert_eq!(v8.rule, RuleId::V8, "{row}");
        assert!(v8.detail.contains("100000"), "{row}: {}", v8.detail);
    }

    // In the lane a first-vote decline is an ordinary decline.
    let facts = with_rules(facts_for("50000"), lane("100000"));
    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Decline, 1), &facts, at(10));
    assert_eq!(case.status, CaseStatus::Declined);
    assert_eq!(case.decision.clone().expect("decision").flags, []);

    // The lane skips the second vote, not the checks of the first (V4, S6).
    let mut case = new_case();
    let err = refuse_with(
        &mut case,
        first(leveled(lo1(), 0), Approve, 1),
        &facts,
        at(10),
    );
    assert_rule(&err, RuleId::V4, "V8 lane with an incompetent voter");
    let err = refuse_with(&mut case, first(or1(), Approve, 1), &facts, at(10));
    assert_rule(&err, RuleId::S6, "V8 lane with the originator");
}

#[test]
fn v8_a_related_party_disables_the_lane() {
    let facts = with_related(with_rules(facts_for("50000"), lane("100000")), &["kin-1"]);
    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Approve, 1), &facts, at(10));
    assert_eq!(case.status, CaseStatus::AwaitingSecondVote, "V8/V11");
    assert_eq!(case.decision, None);
}

#[test]
fn v8_the_lane_applies_only_before_an_escalation() {
    let rules = lane("100000");
    let above = with_rules(facts_for("400000"), rules.clone());
    let below = with_rules(facts_for("50000"), rules);
    let mut case = new_case();
    accept_with(&mut case, first(mk(1), Approve, 1), &above, at(10));
    accept_with(&mut case, second(bo(1), Decline, 1), &above, at(11));
    assert_eq!(case.status, CaseStatus::Escalated);
    // Round 1, exposure now below the threshold: two votes still needed.
    accept_with(&mut case, first(mk(2), Approve, 1), &below, at(12));
    assert_eq!(
        case.status,
        CaseStatus::AwaitingSecondVote,
        "V8/V5 no lane in round 1"
    );
    accept_with(&mut case, second(bo(2), Approve, 1), &below, at(13));
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.flags, [Escalated]);
    assert_eq!(d.votes.len(), 4);
}

// ---------------------------------------------------------------------------
// V9: the decision record
// ---------------------------------------------------------------------------

#[test]
fn v9_the_decision_records_all_rounds_rule_set_policy_level_and_flags() {
    let mut rules = RuleSet::initial();
    rules.version = 7;
    rules.valid_from = ts("2026-01-01T00:00:00Z");
    let facts = VoteFacts::plain(rules, dec("3000000"), "sha256:0123abcd")
        .with_risk(risk_pass())
        .with_rating(rating_of(5, t0()));

    let mut case = new_case();
    // Version 1: a first vote, then returned: void, not part of the decision.
    accept_with(&mut case, first(mk(0), Approve, 1), &facts, at(1));
    accept_with(&mut case, ret(bo(0), "rework"), &facts, at(2));
    // Version 2: divergent at level 3, escalated to the board, approved there.
    accept_with(&mut case, first(mk(1), Approve, 2), &facts, at(3));
    accept_with(&mut case, second(bo(1), Decline, 2), &facts, at(4));
    accept_with(&mut case, first(mk(2), Approve, 2), &facts, at(5));
    accept_with(&mut case, second(bo(2), Approve, 2), &facts, at(6));

    assert_eq!(case.status, CaseStatus::Approved);
    assert_eq!(case.votes.len(), 5);
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.outcome, DecisionOutcome::Approved);
    assert_eq!(d.decided_at, at(6));
    assert_eq!(d.file_version, 2);
    assert_eq!(d.content_hash, case.content_hash());
    assert_eq!(
        d.votes,
        case.votes[1..],
        "V9 all rounds of the decided version"
    );
    assert_eq!(d.rules_version, 7);
    assert_eq!(d.policy_hash, "sha256:0123abcd");
    assert_eq!((d.level, d.level_name.as_str()), (4, "board"));
    assert_eq!(d.aggregated_exposure, Some(dec("3000000")));
    assert_eq!(d.flags, [BoardLevel, Escalated], "V7 board-level decision");
    let rounds: Vec<_> = d
        .votes
        .iter()
        .map(|v| (v.round, v.required_level))
        .collect();
    assert_eq!(rounds, [(0, 3), (0, 3), (1, 4), (1, 4)]);
    for v in &d.votes {
        assert_eq!(v.voter.competence_level, 4);
        assert!(!v.rationale.is_empty());
        let v4 = v
            .checks
            .iter()
            .find(|c| c.rule == RuleId::V4)
            .expect("V4 check");
        assert!(v4.detail.contains("(rule set 7)"), "{}", v4.detail);
    }
    // Every vote's checks, in order, then the approval check.
    let vote_checks: Vec<RuleCheck> = d.votes.iter().flat_map(|v| v.checks.clone()).collect();
    assert_eq!(d.checks[..vote_checks.len()], vote_checks[..]);
    assert_eq!(rule_ids(&d.checks[vote_checks.len()..]), [RuleId::V1]);

    // A board-level decision without escalation carries the board flag alone.
    let board = facts_for("6000000");
    let mut case = new_case();
    accept_with(&mut case, first(mk(1), Approve, 1), &board, at(1));
    accept_with(&mut case, second(bo(1), Approve, 1), &board, at(2));
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.flags, [BoardLevel]);
    assert_eq!(d.aggregated_exposure, Some(dec("6000000")));

    // A decline records the same facts.
    let mut case = new_case();
    accept_with(&mut case, first(mk(1), Decline, 1), &board, at(1));
    let d = case.decision.clone().expect("decision");
    assert_eq!(d.outcome, DecisionOutcome::Declined);
    assert_eq!((d.level, d.rules_version), (4, 1));
    assert_eq!(d.policy_hash, POLICY_HASH);
    assert_eq!(d.votes.len(), 1);
}

/// Hardening finding 5 (V11): a board resolution typed by one analyst is not
/// enough. A second person, a board-level member of the back office,
/// confirms it, and the recorder cannot cast the approving vote.
#[test]
fn v11_a_board_resolution_needs_a_second_board_level_person() {
    let refusals = [
        ("V11 the recorder confirms", leveled(ba2(), BOARD_LEVEL)),
        ("V11 an analyst below board level confirms", ba1()),
        ("V11 market confirms", leveled(lo2(), BOARD_LEVEL)),
    ];
    for (row, by) in refusals {
        let mut case = new_case();
        accept_with(&mut case, first(lo1(), Approve, 1), &related(), at(10));
        accept(&mut case, resolution(ba2(), "BR-2026-20"), at(11));
        let err = refuse(&mut case, confirm(by), at(12));
        assert_rule(&err, RuleId::V11, row);
        assert!(!case.has_board_resolution(), "{row}");
    }

    let mut case = new_case();
    accept_with(&mut case, first(lo1(), Approve, 1), &related(), at(10));
    let err = refuse(&mut case, confirm(bb1()), at(11));
    assert!(
        matches!(err, DomainError::InvalidState(_)),
        "V11 nothing to confirm: {err:?}"
    );
    accept(&mut case, resolution(ba2(), "BR-2026-21"), at(12));
    accept(&mut case, confirm(bb1()), at(13));
    let r = case.board_resolution.clone().expect("resolution");
    assert_eq!(r.confirmed_by, Some(staff("bb-1")));
    assert_eq!(r.confirmed_at, Some(at(13)));
    let again = refuse(&mut case, confirm(bb1()), at(14));
    assert!(matches!(again, DomainError::InvalidState(_)), "{again:?}");
    // The recorder may not approve on the strength of their own record.
    let err = refuse_with(&mut case, second(ba2(), Approve, 1), &related(), at(15));
    assert_rule(&err, RuleId::V11, "V11 the recorder approves");
    accept_with(&mut case, second(ba1(), Approve, 1), &related(), at(16));
    assert_eq!(case.status, CaseStatus::Approved);
    // Recording anew voids the confirmation.
    let mut case = new_case();
    accept(&mut case, resolution(ba2(), "BR-2026-22"), at(5));
    accept(&mut case, confirm(bb1()), at(6));
    accept(&mut case, resolution(ba1(), "BR-2026-23"), at(7));
    assert!(
        !case.has_board_resolution(),
        "a new record needs a new confirmation"
    );
}
