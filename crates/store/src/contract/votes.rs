//! The contract of a vote's combined read (`VoteTx`): every part equals
//! what its own method reads, with and without rows of every kind, other
//! borrowers' rows and rows outside the times asked for around them.

use super::prelude::*;
use crate::{StageTransfer, VoteInputs, VoteInputsQuery};
use creditops_domain::collateral::{Collateral, CollateralKind, CollateralStatus};
use creditops_domain::monitoring::Stage;
use creditops_domain::{CollateralId, Rating, RatingStatus};

/// Every part read by its own method, as the combined read must return it.
async fn parts_one_by_one(tx: &mut dyn Tx, query: &VoteInputsQuery<'_>) -> VoteInputs {
    let mut collateral = Vec::new();
    for member in query.members {
        collateral.extend(tx.active_collateral_of(*member).await.expect("collateral"));
    }
    VoteInputs {
        context: tx.vote_context(query.members).await.expect("context"),
        exposure: tx
            .exposure_total(&ExposureScope::Borrowers(query.members.to_vec()), query.at)
            .await
            .expect("exposure"),
        group_changes: tx
            .approved_proposals_since(ProposalKind::GroupMembership, query.since)
            .await
            .expect("proposals"),
        rating: tx.current_rating(query.borrower).await.expect("rating"),
        collateral,
        latest_stage: tx.current_stage(query.borrower).await.expect("stage"),
        stage_transfers: tx
            .stage_transfers_since(query.borrower, query.since)
            .await
            .expect("transfers"),
    }
}

fn rated(borrower: BorrowerId, class: u8, seconds: i64, status: RatingStatus) -> Rating {
    Rating {
        borrower_id: borrower,
        class,
        pd: "0.0125".parse().expect("decimal"),
        method: "scorecard".into(),
        reason: "annual accounts".into(),
        status,
        rated_by: staff_id(ANALYST),
        rated_at: micros(at(seconds)),
        rules_version: 1,
    }
}

fn transfer(borrower: BorrowerId, from: Stage, to: Stage, seconds: i64) -> StageTransfer {
    StageTransfer {
        id: uuid::Uuid::now_v7(),
        borrower_id: borrower,
        from_stage: from,
        to_stage: to,
        reason: "arrears".into(),
        decided_by: staff_id(ANALYST),
        decided_at: micros(at(seconds)),
        rules_version: 1,
    }
}

fn pledge(borrower: BorrowerId, nominal: &str) -> Collateral {
    Collateral {
        id: CollateralId::generate(),
        borrower_id: borrower,
        kind: CollateralKind::PledgeOfDeposits,
        nominal: Money::parse(nominal, "EUR").expect("money"),
        description: "Festgeld".into(),
        status: CollateralStatus::Active,
        registered_by: staff_id(LOAN_OFFICER),
        registered_at: micros(at(2)),
    }
}

fn membership_change(by: &str, decided_by: &str, seconds: i64) -> ChangeProposal {
    ChangeProposal {
        status: ProposalStatus::Approved,
        decided_by: Some(staff_id(decided_by)),
        decided_at: Some(micros(at(seconds))),
        ..proposal(ProposalKind::GroupMembership, by, micros(at(seconds - 1)))
    }
}

pub async fn vote_inputs_equal_their_parts(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    // The member and the outsider have relationship managers.
    let mut tx = store.begin().await.expect("begin");
    let mut ids = Vec::new();
    for manager in [None, Some(LOAN_OFFICER), Some(ORIGINATOR)] {
        let stored = crate::Borrower {
            relationship_manager: manager.map(staff_id),
            ..borrower("Beispiel Maschinenbau GmbH")
        };
        tx.insert_borrower(&stored).await.expect("borrower");
        ids.push(stored.id);
    }
    tx.commit().await.expect("commit");
    let (borrower, member, outsider) = (ids[0], ids[1], ids[2]);
    let since = at(100);
    let vote_at = at(200);

    // Only the borrowers stored: no exposure, rating or stage, on both paths.
    let mut tx = store.begin_read().await.expect("begin_read");
    for members in [vec![borrower], vec![borrower, member], vec![]] {
        let query = VoteInputsQuery {
            borrower,
            members: &members,
            since,
            at: vote_at,
        };
        let together = tx.vote_inputs(&query).await.expect("vote inputs");
        assert_eq!(together, parts_one_by_one(tx.as_mut(), &query).await);
        assert_eq!(together.exposure, Decimal::ZERO);
        assert!(together.rating.is_none() && together.latest_stage.is_none());
    }
    drop(tx);

    // Exposure: an active and an expired reservation, a consumed one, an
    // imported balance, and the outsider's, which is not counted.
    reserve(store, borrower, "100000.00", at(300)).await;
    reserve(store, member, "7.00", at(150)).await;
    let consumed = reserve(store, member, "2500.50", at(150)).await;
    close_reservation(
        store,
        &closed(
            &consumed,
            ReservationStatus::Consumed,
            at(120),
            Some(ANALYST),
        ),
    )
    .await;
    reserve(store, outsider, "999999.00", at(300)).await;
    import(store, &balance("core-1", member, "40000.25")).await;
    import(store, &balance("core-2", outsider, "1.00")).await;

    let mut tx = store.begin().await.expect("begin");
    // Related parties, of a member and not.
    tx.insert_related_party(&RelatedParty {
        borrower_id: member,
        staff_id: staff_id(EDITOR),
        relation: "managing director's spouse".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(5),
    })
    .await
    .expect("related party");
    tx.insert_related_party(&RelatedParty {
        borrower_id: outsider,
        staff_id: staff_id(ORIGINATOR),
        relation: "shareholder".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(5),
    })
    .await
    .expect("related party");
    // Approved membership changes before and after the case opened, one
    // still pending; the order is by decision.
    for change in [
        membership_change(LOAN_OFFICER, ANALYST, 50),
        membership_change(EDITOR, ANALYST, 160),
        membership_change(ORIGINATOR, ANALYST, 110),
    ] {
        let pending = ChangeProposal {
            status: ProposalStatus::Pending,
            decided_by: None,
            decided_at: None,
            ..change.clone()
        };
        tx.insert_proposal(&pending).await.expect("proposal");
        tx.decide_proposal(&change).await.expect("decide");
    }
    tx.insert_proposal(&proposal(
        ProposalKind::GroupMembership,
        LOAN_OFFICER,
        at(170),
    ))
    .await
    .expect("pending proposal");
    // Ratings: the newest set one counts, not a newer proposal.
    for rating in [
        rated(borrower, 4, 10, RatingStatus::Set),
        rated(borrower, 7, 20, RatingStatus::Set),
        rated(borrower, 9, 30, RatingStatus::Proposed),
        rated(member, 2, 40, RatingStatus::Set),
    ] {
        tx.insert_rating(&rating).await.expect("rating");
    }
    // Collateral of a member, of the outsider, and a released item.
    let held = pledge(member, "50000.00");
    let released = pledge(borrower, "10000.00");
    for item in [&held, &released, &pledge(outsider, "80000.00")] {
        tx.insert_collateral(item).await.expect("collateral");
    }
    tx.release_collateral(released.id, &staff_id(ANALYST), at(3))
        .await
        .expect("release");
    // Stage transfers before and after the case opened, and another
    // borrower's.
    for step in [
        transfer(borrower, Stage::Normal, Stage::IntensiveCare, 60),
        transfer(borrower, Stage::IntensiveCare, Stage::Restructuring, 130),
        transfer(borrower, Stage::Restructuring, Stage::IntensiveCare, 140),
        transfer(member, Stage::Normal, Stage::Workout, 150),
    ] {
        tx.insert_stage_transfer(&step).await.expect("stage");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    let members = vec![borrower, member];
    let query = VoteInputsQuery {
        borrower,
        members: &members,
        since,
        at: vote_at,
    };
    let together = tx.vote_inputs(&query).await.expect("vote inputs");
    assert_eq!(together, parts_one_by_one(tx.as_mut(), &query).await);
    // And the parts are what was stored, not two equal mistakes.
    assert_eq!(together.exposure, dec("142500.75"));
    assert_eq!(
        together.context.related_parties,
        BTreeSet::from([staff_id(EDITOR)])
    );
    assert_eq!(
        together.context.relationship_managers,
        BTreeSet::from([staff_id(LOAN_OFFICER)])
    );
    let deciders: Vec<_> = together
        .group_changes
        .iter()
        .map(|p| p.proposed_by.clone())
        .collect();
    assert_eq!(deciders, [staff_id(ORIGINATOR), staff_id(EDITOR)]);
    assert_eq!(together.rating.as_ref().map(|r| r.class), Some(7));
    let items: Vec<_> = together
        .collateral
        .iter()
        .map(|c| c.collateral.id)
        .collect();
    assert_eq!(items, [held.id]);
    assert_eq!(
        together.latest_stage.as_ref().map(|s| s.to_stage),
        Some(Stage::IntensiveCare)
    );
    assert_eq!(together.stage_transfers.len(), 2);

    // A vote after the active reservation expired; a case opened after
    // every transfer and change.
    let later = VoteInputsQuery {
        borrower,
        members: &members,
        since: at(180),
        at: at(400),
    };
    let together = tx.vote_inputs(&later).await.expect("vote inputs");
    assert_eq!(together, parts_one_by_one(tx.as_mut(), &later).await);
    assert_eq!(together.exposure, dec("42500.75"));
    assert!(together.group_changes.is_empty() && together.stage_transfers.is_empty());
    assert!(together.latest_stage.is_some());

    // The borrower alone: its group's members' facts stay out.
    let alone = [borrower];
    let query = VoteInputsQuery {
        borrower,
        members: &alone,
        since,
        at: vote_at,
    };
    let together = tx.vote_inputs(&query).await.expect("vote inputs");
    assert_eq!(together, parts_one_by_one(tx.as_mut(), &query).await);
    assert!(together.collateral.is_empty());
    assert!(together.context.related_parties.is_empty());
    assert!(together.context.relationship_managers.is_empty());
    drop(tx);
    assert_group_read_with_the_facts(store, [borrower, member, outsider], since).await;
}

/// The group read by the facts' own statement equals `group_of` and
/// `group_members` (the borrower added) and the facts of those members,
/// before, during and after a membership, for members and others: the
/// borrower and the member join `acme` at 120 s and the borrower leaves
/// at 300 s; the outsider joins it at 250 s.
async fn assert_group_read_with_the_facts(
    store: &dyn Store,
    [borrower, member, outsider]: [BorrowerId; 3],
    since: Timestamp,
) {
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&group("acme")).await.expect("acme");
    let acme = unit_id("acme");
    for (who, group, from) in [
        (borrower, Some(&acme), 120),
        (member, Some(&acme), 120),
        (outsider, Some(&acme), 250),
        (borrower, None, 300),
    ] {
        tx.set_group_membership(who, group, at(from))
            .await
            .expect("membership");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    for who in [borrower, member, outsider] {
        for when in [100, 200, 260, 350] {
            let read = tx
                .vote_inputs_of_group(who, since, at(when))
                .await
                .expect("facts with the group");
            let group = tx.group_of(who, at(when)).await.expect("group");
            let members = match &group {
                Some(group) => {
                    let mut members = tx.group_members(group, at(when)).await.expect("members");
                    if !members.contains(&who) {
                        members.push(who);
                    }
                    members.sort();
                    members
                }
                None => vec![who],
            };
            let query = VoteInputsQuery {
                borrower: who,
                members: &members,
                since,
                at: at(when),
            };
            let inputs = tx.vote_inputs(&query).await.expect("vote inputs");
            let why = format!("borrower {who} at {when} s");
            assert_eq!(read.group, group, "{why}");
            assert_eq!(read.members, members, "{why}");
            assert_eq!(read.inputs, inputs, "{why}");
        }
    }
    // Not two equal mistakes: the group at 260 s holds all three.
    let read = tx
        .vote_inputs_of_group(member, since, at(260))
        .await
        .expect("facts with the group");
    let mut all = vec![borrower, member, outsider];
    all.sort();
    assert_eq!((read.group, read.members), (Some(acme), all));
}
