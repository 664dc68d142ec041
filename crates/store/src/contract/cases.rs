//! The contract of credit cases: exact amounts, votes and decisions,
//! optimistic concurrency, paging, idempotency.

use super::prelude::*;

pub async fn case_round_trip_keeps_exact_amounts(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let amounts = [
        ("12345678901234.56", "EUR"),
        ("1000000", "JPY"),
        ("0.01", "EUR"),
        ("1.234", "BHD"),
        ("1000000000000000", "EUR"),
    ];
    for (amount, currency) in amounts {
        let case = new_case(borrower_id, amount, currency);
        insert_case(store, &case).await;
        let loaded = load_case(store, case.id).await;
        assert_eq!(loaded, case, "{amount} {currency}");
        let expected = Money::parse(amount, currency).expect("money");
        assert_eq!(loaded.file.amount, expected);
        assert_eq!(
            loaded.file.amount.minor_units(),
            expected.minor_units(),
            "{amount} {currency}"
        );
        assert_eq!(loaded.content_hash(), case.content_hash());
    }
    let big = Money::parse("12345678901234.56", "EUR").expect("money");
    assert_eq!(big.amount().to_string(), "12345678901234.56");
    assert_eq!(big.minor_units(), 1_234_567_890_123_456);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.case(CaseId::generate()).await.expect("load"), None);
    let summaries = tx
        .cases_by_status(CaseStatus::Draft, None, 100)
        .await
        .expect("summaries");
    assert_eq!(summaries.len(), amounts.len());
    assert!(
        summaries
            .iter()
            .any(|s| s.amount == big && s.borrower_id == borrower_id && s.version == 1)
    );
}

pub async fn votes_and_decision_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "250000.00", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let analyst = voter(store, ANALYST, at(20)).await;

    // First vote on version 1.
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "good risk",
        1,
        &facts(),
        at(20),
    )
    .expect("first vote");
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);

    // Returned for rework: version 2, the first vote is void but kept.
    let before = case.revision;
    case.return_for_rework(Some(&analyst), "collateral valuation missing", at(30))
        .expect("return");
    save_case(store, &case, before).await;
    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(
        loaded.return_reason.as_deref(),
        Some("collateral valuation missing")
    );

    // Edited, voted again, then the second vote decides.
    edit_and_decide(store, &mut case, [&officer, &analyst]).await;

    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.status, CaseStatus::Approved);
    assert_eq!(loaded.votes.len(), 3);
    assert_eq!(loaded.current_votes().count(), 2);
    let decision = loaded.decision.as_ref().expect("decision");
    assert_eq!(decision.outcome, DecisionOutcome::Approved);
    assert_eq!(decision.votes.len(), 2);
    assert_eq!(decision.file_version, 3);
    assert_eq!(decision.decided_at, at(60));
    assert_eq!(loaded.votes[0].voter, officer);
    assert_eq!(loaded.votes[2].voter, analyst);
    assert!(!loaded.votes[2].checks.is_empty());
}

/// Edits the returned `case` to version 2, has the officer vote on it
/// again and the analyst approve it, saving after each step.
async fn edit_and_decide(
    store: &dyn Store,
    case: &mut CreditCase,
    [officer, analyst]: [&Voter; 2],
) {
    let before = case.revision;
    let file = CaseFile::new(
        case.file.borrower_id,
        Money::parse("240000.00", "EUR").expect("money"),
        "term_loan",
        48,
        "new production line, with valuation",
    )
    .expect("file");
    let editor = voter(store, EDITOR, at(40)).await;
    case.edit(Some(&editor), file, 2, at(40)).expect("edit");
    save_case(store, case, before).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(officer),
        VoteDecision::Approve,
        "valuation added",
        3,
        &facts(),
        at(50),
    )
    .expect("first vote again");
    save_case(store, case, before).await;
    let before = case.revision;
    case.cast_second_vote(
        Some(analyst),
        VoteDecision::Approve,
        "agree",
        3,
        &facts(),
        at(60),
    )
    .expect("second vote");
    save_case(store, case, before).await;
}

pub async fn first_vote_decline_decides_in_one_update(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "5000000", "JPY");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Decline,
        "no business",
        1,
        &facts(),
        at(20),
    )
    .expect("decline");
    save_case(store, &case, before).await;
    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.status, CaseStatus::Declined);
    assert_eq!(
        loaded.decision.map(|d| d.outcome),
        Some(DecisionOutcome::Declined)
    );
}

/// An update never takes a stored vote or decision back: a case with
/// fewer votes than stored, or without its stored decision, is refused
/// and nothing of the update stays.
pub async fn stored_votes_and_decision_are_append_only(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "250000.00", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Decline,
        "no business",
        1,
        &facts(),
        at(20),
    )
    .expect("decline");
    save_case(store, &case, before).await;
    let stored = load_case(store, case.id).await;
    assert_eq!(stored.votes.len(), 1);
    assert!(stored.decision.is_some());

    let without_votes = CreditCase {
        votes: Vec::new(),
        revision: stored.revision + 1,
        return_reason: Some("forged".into()),
        ..stored.clone()
    };
    let without_decision = CreditCase {
        decision: None,
        revision: stored.revision + 1,
        return_reason: Some("forged".into()),
        ..stored.clone()
    };
    for forged in [without_votes, without_decision] {
        let mut tx = store.begin().await.expect("begin");
        let refused = tx.update_case(&forged, stored.revision).await;
        assert!(
            matches!(refused, Err(StoreError::Database(_))),
            "{refused:?}"
        );
        drop(tx);
        assert_eq!(load_case(store, case.id).await, stored);
    }
}

pub async fn stale_revision_is_a_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "100000.00", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;

    // Two users load the same revision in two transactions.
    let mut first = load_case(store, case.id).await;
    let mut second = load_case(store, case.id).await;
    let loaded_revision = first.revision;
    assert_eq!(second.revision, loaded_revision);

    first
        .cast_first_vote(
            Some(&officer),
            VoteDecision::Approve,
            "first wins",
            1,
            &facts(),
            at(20),
        )
        .expect("vote");
    save_case(store, &first, loaded_revision).await;

    second
        .cast_first_vote(
            Some(&officer),
            VoteDecision::Decline,
            "second loses",
            1,
            &facts(),
            at(21),
        )
        .expect("vote");
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .update_case(&second, loaded_revision)
        .await
        .expect_err("stale revision");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    assert_eq!(load_case(store, case.id).await, first);

    // A case that does not exist cannot be updated either.
    let mut ghost = new_case(borrower_id, "1.00", "EUR");
    ghost.revision = 2;
    let mut tx = store.begin().await.expect("begin");
    let err = tx.update_case(&ghost, 1).await.expect_err("no such case");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn update_case_requires_a_new_revision(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "100000.00", "EUR");
    insert_case(store, &case).await;
    // Saving without a new revision would defeat optimistic concurrency.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .update_case(&case, case.revision)
        .await
        .expect_err("same revision");
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

pub async fn cases_by_status_pages_by_id(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut drafts: Vec<CreditCase> = (1..=5)
        .map(|n| new_case(borrower_id, &format!("{n}000.00"), "EUR"))
        .collect();
    // Inserted out of order; listed by id.
    drafts.reverse();
    for case in &drafts {
        insert_case(store, case).await;
    }
    let mut approved = new_case(borrower_id, "777.00", "EUR");
    insert_approved_case(store, &mut approved).await;
    drafts.sort_by_key(|c| c.id);
    let draft_ids: Vec<CaseId> = drafts.iter().map(|c| c.id).collect();

    let mut tx = store.begin_read().await.expect("begin_read");
    let mut paged = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = tx
            .cases_by_status(CaseStatus::Draft, after, 2)
            .await
            .expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page.iter().map(|s| s.id));
        pages += 1;
    }
    assert_eq!(paged, draft_ids);
    assert_eq!(pages, 3);

    let all = tx
        .cases_by_status(CaseStatus::Draft, None, 100)
        .await
        .expect("all");
    for (summary, case) in all.iter().zip(&drafts) {
        assert_eq!(summary.id, case.id);
        assert_eq!(summary.borrower_id, borrower_id);
        assert_eq!(summary.amount, case.file.amount);
        assert_eq!(summary.status, CaseStatus::Draft);
        assert_eq!(summary.version, 1);
        assert_eq!(summary.updated_at, case.updated_at);
    }
    let only = tx
        .cases_by_status(CaseStatus::Approved, None, 100)
        .await
        .expect("approved");
    assert_eq!(
        only.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![approved.id]
    );
    assert!(
        tx.cases_by_status(CaseStatus::Returned, None, 100)
            .await
            .expect("returned")
            .is_empty()
    );
    assert!(
        tx.cases_by_status(CaseStatus::Draft, None, 0)
            .await
            .expect("limit 0")
            .is_empty()
    );
}

pub async fn idempotency_round_trip_and_duplicate(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let scope = IdempotencyScope {
        actor: staff_id(LOAN_OFFICER),
        operation: "POST /v1/cases/{id}/first-vote".to_owned(),
        key: "0b6f1c1e-key".to_owned(),
    };
    let response = StoredResponse {
        request_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        status: 201,
        // Arbitrary bytes, not only UTF-8.
        body: vec![b'{', 0, 255, 0x80, b'}'],
        created_at: at(5),
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.idempotent_response(&scope).await.expect("lookup"), None);
    tx.save_idempotent_response(&scope, &response)
        .await
        .expect("save");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.idempotent_response(&scope).await.expect("lookup"),
        Some(response.clone())
    );
    for other in [
        IdempotencyScope {
            key: "another-key".to_owned(),
            ..scope.clone()
        },
        IdempotencyScope {
            actor: staff_id(ANALYST),
            ..scope.clone()
        },
        IdempotencyScope {
            operation: "POST /v1/cases".to_owned(),
            ..scope.clone()
        },
    ] {
        assert_eq!(tx.idempotent_response(&other).await.expect("lookup"), None);
    }
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let second = StoredResponse {
        status: 409,
        ..response.clone()
    };
    let err = tx
        .save_idempotent_response(&scope, &second)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.idempotent_response(&scope).await.expect("lookup"),
        Some(response)
    );
}

/// Every new case and vote field round-trips, set and unset, through insert
/// and update.
pub async fn case_segregation_fields_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "1000000.00", "EUR");
    case.status = CaseStatus::Escalated;
    case.editors = BTreeSet::from([staff_id(EDITOR), staff_id(LOAN_OFFICER)]);
    case.round = 3;
    case.escalation_level = Some(9);
    case.related_party = true;
    case.board_resolution = Some(BoardResolution {
        reference: "Board resolution 2026/17 'x'".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(12),
        file_version: 1,
        content_hash: case.content_hash(),
        // The confirmation round-trips with the resolution (V11).
        confirmed_by: Some(staff_id(LOAN_OFFICER)),
        confirmed_at: Some(at(13)),
    });
    let officer = voter(store, LOAN_OFFICER, at(11)).await;
    assert_eq!(officer.competence_level, 1);
    assert_eq!(officer.left_market_at, Some(at(11)));
    let mut vote = creditops_domain::Vote {
        stage: creditops_domain::VoteStage::First,
        voter: Voter {
            competence_level: 9,
            left_market_at: Some(day(-400)),
            ..officer
        },
        decision: VoteDecision::Approve,
        rationale: "round three".into(),
        file_version: 1,
        content_hash: case.content_hash(),
        cast_at: at(13),
        round: 3,
        required_level: 9,
        checks: vec![],
    };
    case.votes.push(vote.clone());
    vote.voter.left_market_at = None;
    vote.voter.competence_level = 0;
    vote.required_level = 0;
    vote.round = 0;
    case.votes.push(vote);
    insert_case(store, &case).await;
    assert_eq!(load_case(store, case.id).await, case);

    // Everything back to unset in an update.
    let before = case.revision;
    case.revision += 1;
    case.status = CaseStatus::Returned;
    case.editors.clear();
    case.escalation_level = None;
    case.related_party = false;
    case.board_resolution = None;
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);
}

/// The V5 path through the domain: divergent votes escalate the case one
/// level up; the escalated round is voted by new, more competent voters; a
/// related-party credit needs the board resolution (V11).
pub async fn escalation_round_trips_through_the_store(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    insert_senior_voters(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "200000.00", "EUR");
    insert_case(store, &case).await;
    let mut facts = facts();
    facts.related_parties = BTreeSet::from([staff_id(EDITOR)]);

    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "good risk",
        1,
        &facts,
        at(20),
    )
    .expect("first vote");
    save_case(store, &case, before).await;
    assert_eq!(load_case(store, case.id).await, case);

    let analyst = voter(store, ANALYST, at(30)).await;
    let before = case.revision;
    case.cast_second_vote(
        Some(&analyst),
        VoteDecision::Decline,
        "too risky",
        1,
        &facts,
        at(30),
    )
    .expect("second vote");
    assert_eq!(case.status, CaseStatus::Escalated);
    save_case(store, &case, before).await;
    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.round, 1);
    assert_eq!(loaded.escalation_level, Some(2));
    assert!(loaded.related_party);
    assert_escalated_and_open(store, case.id, borrower_id).await;

    record_confirmed_resolution(store, &mut case, &analyst, &facts).await;
    assert_eq!(load_case(store, case.id).await, case);

    approve_at_level_2(store, &mut case, &facts).await;

    let loaded = load_case(store, case.id).await;
    assert_eq!(loaded, case);
    assert_eq!(loaded.status, CaseStatus::Approved);
    let rounds: Vec<(u32, u8, u8)> = loaded
        .votes
        .iter()
        .map(|v| (v.round, v.required_level, v.voter.competence_level))
        .collect();
    assert_eq!(rounds, vec![(0, 1, 1), (0, 1, 1), (1, 2, 2), (1, 2, 2)]);
    assert_eq!(loaded.votes[3].voter.left_market_at, Some(day(-365)));
    let decision = loaded.decision.as_ref().expect("decision");
    assert_eq!(decision.level, 2);
    assert!(decision.flags.contains(&DecisionFlag::Escalated));
    assert!(decision.flags.contains(&DecisionFlag::RelatedParty));
    assert_eq!(decision.votes.len(), 4);
    assert_eq!(
        amounts(std::slice::from_ref(&loaded.file.amount)),
        vec![("EUR", 20_000_000)]
    );
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(
        tx.open_cases_of(&[borrower_id])
            .await
            .expect("open")
            .is_empty()
    );
}

/// The escalated case is listed as escalated and still open.
async fn assert_escalated_and_open(store: &dyn Store, case: CaseId, borrower_id: BorrowerId) {
    let mut tx = store.begin_read().await.expect("begin_read");
    let escalated = tx
        .cases_by_status(CaseStatus::Escalated, None, 10)
        .await
        .expect("escalated");
    assert_eq!(
        escalated.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![case]
    );
    assert_eq!(
        tx.open_cases_of(&[borrower_id]).await.expect("open"),
        vec![case]
    );
}

/// A senior market voter and a senior back-office voter who left market a
/// year ago (outside the cooling-off period, S5); both level 2.
async fn insert_senior_voters(store: &dyn Store) {
    let mut senior_market = member("lo-senior", MARKET_UNIT, Side::Market, Role::LoanOfficer);
    senior_market.competences[0].level = 2;
    let mut senior_backoffice = member(
        "ca-senior",
        BACKOFFICE_UNIT,
        Side::Backoffice,
        Role::CreditAnalyst,
    );
    senior_backoffice.competences[0].level = 2;
    senior_backoffice.units = vec![
        UnitAssignment {
            unit_id: unit_id(MARKET_UNIT),
            side: Side::Market,
            valid_from: day(-800),
            valid_to: Some(day(-365)),
        },
        UnitAssignment {
            unit_id: unit_id(BACKOFFICE_UNIT),
            side: Side::Backoffice,
            valid_from: day(-365),
            valid_to: None,
        },
    ];
    let mut tx = store.begin().await.expect("begin");
    tx.insert_staff(&senior_market)
        .await
        .expect("senior market");
    tx.insert_staff(&senior_backoffice)
        .await
        .expect("senior back office");
    tx.commit().await.expect("commit");
}

/// `analyst` records a board resolution, a board-level member confirms it
/// (V11), and the case is saved.
async fn record_confirmed_resolution(
    store: &dyn Store,
    case: &mut CreditCase,
    analyst: &Voter,
    facts: &VoteFacts,
) {
    let before = case.revision;
    case.record_board_resolution(Some(analyst), "BR-2026-17", case.version, at(35))
        .expect("board resolution");
    let order = facts.rules.competence();
    case.confirm_board_resolution(Some(&board_member(order)), order, case.version, at(36))
        .expect("board confirmation");
    save_case(store, case, before).await;
}

/// A back-office member at the top level of `order`, who may confirm a
/// board resolution (V11); the confirmation is stored inside the case.
fn board_member(order: &creditops_domain::CompetenceOrder) -> Voter {
    let board = (1..=u8::MAX)
        .find(|l| order.is_board(*l))
        .unwrap_or(u8::MAX);
    Voter {
        staff_id: staff_id("bb-board"),
        unit_id: unit_id(BACKOFFICE_UNIT),
        side: Side::Backoffice,
        competence_level: board,
        left_market_at: None,
    }
}

/// The escalated round: the two senior voters approve at level 2.
async fn approve_at_level_2(store: &dyn Store, case: &mut CreditCase, facts: &VoteFacts) {
    let senior = voter(store, "lo-senior", at(40)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&senior),
        VoteDecision::Approve,
        "approve at level 2",
        1,
        facts,
        at(40),
    )
    .expect("escalated first vote");
    save_case(store, case, before).await;
    let senior_bo = voter(store, "ca-senior", at(50)).await;
    assert_eq!(senior_bo.left_market_at, Some(day(-365)));
    let before = case.revision;
    case.cast_second_vote(
        Some(&senior_bo),
        VoteDecision::Approve,
        "agree at level 2",
        1,
        facts,
        at(50),
    )
    .expect("escalated second vote");
    save_case(store, case, before).await;
}

/// Finding 16 of the hardening issue, at the database (V1, S7): an approved
/// decision is stored only with an approving first vote from a market unit
/// and an approving second vote from a back-office unit by another person,
/// on the current file version, whatever writes it. A forged approval (the
/// second vote left out, or cast by a market member who calls himself back
/// office) is refused; the proper one is stored.
pub async fn finding_16_an_approval_without_two_proper_votes_is_refused(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let mut case = new_case(borrower_id, "250000.00", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "good risk",
        1,
        &facts(),
        at(20),
    )
    .expect("first vote");
    save_case(store, &case, before).await;
    let before = case.revision;

    // A market member's vote dressed up as back office: the vote row says
    // back office, the dated unit history does not (S4).
    let mut impostor = voter(store, EDITOR, at(21)).await;
    impostor.side = Side::Backoffice;
    impostor.unit_id = unit_id(BACKOFFICE_UNIT);
    impostor.left_market_at = None;
    let analyst = voter(store, ANALYST, at(21)).await;
    let approve = |voter: &Voter| {
        let mut approved = case.clone();
        approved
            .cast_second_vote(
                Some(voter),
                VoteDecision::Approve,
                "agreed",
                1,
                &facts(),
                at(21),
            )
            .expect("second vote");
        assert_eq!(approved.status, CaseStatus::Approved);
        approved
    };
    let mut without_second_vote = approve(&analyst);
    without_second_vote.votes.pop();
    for (what, forged) in [
        ("no second vote", without_second_vote),
        ("second voter outside back office", approve(&impostor)),
    ] {
        let mut tx = store.begin().await.expect("begin");
        let stored = match tx.update_case(&forged, before).await {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        assert!(stored.is_err(), "{what}: the approval was stored");
    }
    assert_eq!(load_case(store, case.id).await, case, "nothing applied");

    let approved = approve(&analyst);
    save_case(store, &approved, before).await;
    assert_eq!(load_case(store, case.id).await, approved);
}

/// Declines a new case of `borrower_id` by a first vote at `when`.
async fn declined_case(store: &dyn Store, borrower_id: BorrowerId, when: Timestamp) -> CreditCase {
    let mut case = new_case(borrower_id, "1234.56", "EUR");
    insert_case(store, &case).await;
    let officer = voter(store, LOAN_OFFICER, when).await;
    let before = case.revision;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Decline,
        "no business",
        1,
        &facts(),
        when,
    )
    .expect("decline");
    save_case(store, &case, before).await;
    case
}

pub async fn l11_decisions_between_lists_the_decisions_of_the_period(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let later = declined_case(store, borrower_id, at(40)).await;
    let earlier = declined_case(store, borrower_id, at(20)).await;
    let undecided = new_case(borrower_id, "10", "EUR");
    insert_case(store, &undecided).await;

    let mut tx = store.begin_read().await.expect("begin_read");
    let all = tx
        .decisions_between(at(0), at(100), 100)
        .await
        .expect("all");
    let ids: Vec<CaseId> = all.iter().map(|d| d.case.id).collect();
    assert_eq!(ids, vec![earlier.id, later.id], "oldest decision first");
    assert_eq!(Some(&all[0].decision), earlier.decision.as_ref());
    assert_eq!(all[0].case.borrower_id, borrower_id);
    assert_eq!(all[0].case.amount, earlier.file.amount);
    assert_eq!(all[0].case.status, CaseStatus::Declined);

    // [from, to): the start is in, the end is out.
    let first = tx
        .decisions_between(at(20), at(40), 100)
        .await
        .expect("half-open");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].case.id, earlier.id);
    let bounded = tx
        .decisions_between(at(0), at(100), 1)
        .await
        .expect("limit");
    assert_eq!(bounded.len(), 1);
    assert_eq!(bounded[0].case.id, earlier.id);
    let none = tx
        .decisions_between(at(41), at(100), 100)
        .await
        .expect("none");
    assert!(none.is_empty());
}
