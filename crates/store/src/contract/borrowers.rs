//! The contract of borrowers, groups of connected clients, relationship
//! managers and related parties.

use super::prelude::*;

pub async fn borrower_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    // Quotes, SQL-ish text and non-ASCII are data, not syntax.
    let b = borrower("Müller & Söhne GmbH 'x'; DROP TABLE borrowers; --");
    let bank = Borrower {
        institution: true,
        relationship_manager: Some(staff_id(LOAN_OFFICER)),
        ..borrower("Beispielbank AG")
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert");
    tx.insert_borrower(&bank).await.expect("insert institution");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.borrower(b.id).await.expect("load"), Some(b.clone()));
    assert_eq!(tx.borrower(bank.id).await.expect("load"), Some(bank));
    assert_eq!(
        tx.borrower(BorrowerId::generate()).await.expect("load"),
        None
    );
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_borrower(&b).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn borrower_relationship_managers(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut managed = borrower("Managed AG");
    managed.relationship_manager = Some(staff_id(LOAN_OFFICER));
    let mut other = borrower("Other AG");
    other.relationship_manager = Some(staff_id(EDITOR));
    let mut same = borrower("Same Manager AG");
    same.relationship_manager = Some(staff_id(LOAN_OFFICER));
    let unmanaged = borrower("Unmanaged AG");
    let mut tx = store.begin().await.expect("begin");
    for b in [&managed, &other, &same, &unmanaged] {
        tx.insert_borrower(b).await.expect("insert");
    }
    tx.commit().await.expect("commit");

    let mut ghost = borrower("Ghost Manager AG");
    ghost.relationship_manager = Some(staff_id("nobody"));
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_borrower(&ghost)
        .await
        .expect_err("unknown manager");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.borrower(managed.id).await.expect("load"),
        Some(managed.clone())
    );
    assert_eq!(
        tx.borrower(unmanaged.id).await.expect("load"),
        Some(unmanaged.clone())
    );
    let cases: Vec<(Vec<BorrowerId>, Vec<&str>)> = vec![
        (vec![], vec![]),
        (vec![unmanaged.id], vec![]),
        (vec![managed.id], vec![LOAN_OFFICER]),
        (vec![managed.id, same.id], vec![LOAN_OFFICER]),
        (
            vec![managed.id, other.id, unmanaged.id, BorrowerId::generate()],
            vec![LOAN_OFFICER, EDITOR],
        ),
    ];
    for (borrowers, expected) in cases {
        let expected: BTreeSet<StaffId> = expected.into_iter().map(staff_id).collect();
        assert_eq!(
            tx.relationship_managers(&borrowers)
                .await
                .expect("managers"),
            expected,
            "{borrowers:?}"
        );
        let context = tx.vote_context(&borrowers).await.expect("vote context");
        assert_eq!(context.relationship_managers, expected, "{borrowers:?}");
    }
}

pub async fn groups_round_trip_and_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let g = BorrowerGroup {
        name: "Müller Holding 'x'; --".into(),
        ..group("mueller-holding")
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&g).await.expect("insert group");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_group(&g).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let orphan = BorrowerGroup {
        created_by: staff_id("nobody"),
        ..group("orphan")
    };
    let err = tx.insert_group(&orphan).await.expect_err("unknown creator");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.group(&g.id).await.expect("load"), Some(g));
    assert_eq!(tx.group(&unit_id("orphan")).await.expect("load"), None);
}

pub async fn group_memberships_are_dated_and_half_open(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 3).await;
    let (b1, b2, b3) = (borrowers[0], borrowers[1], borrowers[2]);
    let (g1, g2) = (group("group-one"), group("group-two"));
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&g1).await.expect("g1");
    tx.insert_group(&g2).await.expect("g2");
    // b1: g1 from day 1, g2 from day 5, no group from day 9.
    tx.set_group_membership(b1, Some(&g1.id), day(1))
        .await
        .expect("b1 joins g1");
    tx.set_group_membership(b1, Some(&g2.id), day(5))
        .await
        .expect("b1 moves to g2");
    tx.set_group_membership(b1, None, day(9))
        .await
        .expect("b1 leaves");
    // b2: g1 from day 3, running. b3: g1 from day 1, left at day 3.
    tx.set_group_membership(b2, Some(&g1.id), day(3))
        .await
        .expect("b2 joins g1");
    tx.set_group_membership(b3, Some(&g1.id), day(1))
        .await
        .expect("b3 joins g1");
    tx.set_group_membership(b3, None, day(3))
        .await
        .expect("b3 leaves");
    // Leaving without a membership changes nothing.
    tx.set_group_membership(b3, None, day(4))
        .await
        .expect("leave again");
    tx.commit().await.expect("commit");

    let us = chrono::Duration::microseconds(1);
    let mut tx = store.begin_read().await.expect("begin_read");
    let group_of = [
        (b1, day(0), None),
        (b1, day(1) - us, None),
        (b1, day(1), Some(&g1.id)),
        (b1, day(5) - us, Some(&g1.id)),
        (b1, day(5), Some(&g2.id)),
        (b1, day(9) - us, Some(&g2.id)),
        (b1, day(9), None),
        (b1, day(100), None),
        (b2, day(2), None),
        (b2, day(3), Some(&g1.id)),
        (b2, day(1000), Some(&g1.id)),
        (b3, day(2), Some(&g1.id)),
        (b3, day(3), None),
        (BorrowerId::generate(), day(3), None),
    ];
    for (b, when, expected) in group_of {
        assert_eq!(
            tx.group_of(b, when).await.expect("group of").as_ref(),
            expected,
            "group of {b} at {when}"
        );
        // The same group, read with the borrower.
        let with_group = tx
            .borrower_with_group(b, when)
            .await
            .expect("borrower with group");
        let borrower = tx.borrower(b).await.expect("borrower");
        assert_eq!(
            with_group,
            borrower.map(|row| (row, expected.cloned())),
            "borrower with group of {b} at {when}"
        );
    }
    drop(tx);
    assert_group_members(store, [b1, b2, b3], [&g1.id, &g2.id]).await;

    refuse_membership_changes(store, [b1, b2], [&g1.id, &g2.id]).await;

    assert_move_twice_at_once(store, b2, [&g1.id, &g2.id]).await;
}

/// A move at the same instant twice: the first interval is empty.
async fn assert_move_twice_at_once(store: &dyn Store, b2: BorrowerId, [g1, g2]: [&UnitId; 2]) {
    let mut tx = store.begin().await.expect("begin");
    tx.set_group_membership(b2, Some(g2), day(30))
        .await
        .expect("move");
    tx.set_group_membership(b2, Some(g1), day(30))
        .await
        .expect("move back at once");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.group_of(b2, day(30)).await.expect("group of"),
        Some(g1.clone())
    );
    assert!(
        tx.group_members(g2, day(30))
            .await
            .expect("members")
            .is_empty()
    );
}

/// The members of each group over time (see the memberships of
/// [`group_memberships_are_dated_and_half_open`]).
async fn assert_group_members(
    store: &dyn Store,
    [b1, b2, b3]: [BorrowerId; 3],
    [g1, g2]: [&UnitId; 2],
) {
    let mut tx = store.begin_read().await.expect("begin_read");
    let sorted = |mut ids: Vec<BorrowerId>| {
        ids.sort();
        ids
    };
    let members = [
        (g1, day(0), vec![]),
        (g1, day(1), sorted(vec![b1, b3])),
        (g1, day(3), sorted(vec![b1, b2])),
        (g1, day(5), vec![b2]),
        (g2, day(5), vec![b1]),
        (g2, day(9), vec![]),
        (g1, day(50), vec![b2]),
    ];
    for (g, when, expected) in members {
        assert_eq!(
            tx.group_members(g, when).await.expect("members"),
            expected,
            "members of {g} at {when}"
        );
    }
    assert!(
        tx.group_members(&unit_id("no-group"), day(5))
            .await
            .expect("members")
            .is_empty()
    );
}

/// Unknown group or borrower: NotFound, nothing changes. History only grows
/// forward: a change before the running membership started, or before a
/// closed one ended, is refused.
async fn refuse_membership_changes(
    store: &dyn Store,
    [b1, b2]: [BorrowerId; 2],
    [g1, g2]: [&UnitId; 2],
) {
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .set_group_membership(b2, Some(&unit_id("no-group")), day(20))
        .await
        .expect_err("unknown group");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    for target in [Some(g1), None] {
        let mut tx = store.begin().await.expect("begin");
        let err = tx
            .set_group_membership(BorrowerId::generate(), target, day(20))
            .await
            .expect_err("unknown borrower");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    for (b, when) in [(b2, day(2)), (b1, day(8))] {
        let mut tx = store.begin().await.expect("begin");
        let err = tx
            .set_group_membership(b, Some(g2), when)
            .await
            .expect_err("back-dated change");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.group_of(b2, day(20)).await.expect("group of"),
        Some(g1.clone())
    );
    drop(tx);
}

/// Two membership changes for one borrower at once: both land, one after the
/// other, and exactly one membership is running afterwards.
pub async fn concurrent_membership_changes_keep_one_running(store: Arc<dyn Store>) {
    seed_org(store.as_ref()).await;
    let b = insert_borrowers(store.as_ref(), 1).await[0];
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&group("group-a")).await.expect("group a");
    tx.insert_group(&group("group-b")).await.expect("group b");
    tx.commit().await.expect("commit");

    let mut first = store.begin().await.expect("begin");
    first
        .set_group_membership(b, Some(&unit_id("group-a")), day(1))
        .await
        .expect("first change");
    let other = store.clone();
    let second = tokio::spawn(async move {
        // Waits for the first writer (SQLite: the writer connection;
        // PostgreSQL: the borrower's row lock).
        let mut tx = other.begin().await.expect("begin");
        tx.set_group_membership(b, Some(&unit_id("group-b")), day(2))
            .await
            .expect("second change");
        tx.commit().await.expect("commit second");
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.expect("commit first");
    second.await.expect("second task");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.group_of(b, day(1)).await.expect("group of"),
        Some(unit_id("group-a"))
    );
    assert_eq!(
        tx.group_of(b, day(3)).await.expect("group of"),
        Some(unit_id("group-b"))
    );
    assert!(
        tx.group_members(&unit_id("group-a"), day(3))
            .await
            .expect("members")
            .is_empty()
    );
}

pub async fn related_parties_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 3).await;
    let party = |b: BorrowerId, who: &str| RelatedParty {
        borrower_id: b,
        staff_id: staff_id(who),
        relation: "managing director's spouse".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(5),
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_related_party(&party(borrowers[0], EDITOR))
        .await
        .expect("party");
    tx.insert_related_party(&party(borrowers[0], ORIGINATOR))
        .await
        .expect("party");
    tx.insert_related_party(&party(borrowers[1], EDITOR))
        .await
        .expect("party");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_related_party(&party(borrowers[0], EDITOR))
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    for bad in [
        party(BorrowerId::generate(), EDITOR),
        party(borrowers[2], "nobody"),
        RelatedParty {
            recorded_by: staff_id("nobody"),
            ..party(borrowers[2], EDITOR)
        },
    ] {
        let mut tx = store.begin().await.expect("begin");
        let err = tx.insert_related_party(&bad).await.expect_err("unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    let mut tx = store.begin_read().await.expect("begin_read");
    let cases: Vec<(Vec<BorrowerId>, Vec<&str>)> = vec![
        (vec![], vec![]),
        (vec![borrowers[2]], vec![]),
        (vec![borrowers[1]], vec![EDITOR]),
        (vec![borrowers[0]], vec![EDITOR, ORIGINATOR]),
        (
            vec![borrowers[0], borrowers[1], borrowers[2]],
            vec![EDITOR, ORIGINATOR],
        ),
    ];
    for (list, expected) in cases {
        let expected: BTreeSet<StaffId> = expected.into_iter().map(staff_id).collect();
        assert_eq!(
            tx.related_parties(&list).await.expect("related"),
            expected,
            "{list:?}"
        );
        let context = tx.vote_context(&list).await.expect("vote context");
        assert_eq!(context.related_parties, expected, "{list:?}");
    }
}

pub async fn open_cases_of_borrowers(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 3).await;
    let (a, b, c) = (borrowers[0], borrowers[1], borrowers[2]);
    let cases = [
        (a, "12345678901234.56", "EUR", CaseStatus::Approved),
        (a, "5", "JPY", CaseStatus::Approved),
        (a, "7.00", "EUR", CaseStatus::Declined),
        (a, "8.00", "EUR", CaseStatus::Draft),
        (a, "9.00", "EUR", CaseStatus::AwaitingSecondVote),
        (a, "10.00", "EUR", CaseStatus::Escalated),
        (a, "11.00", "EUR", CaseStatus::Returned),
        (b, "2.50", "EUR", CaseStatus::Approved),
        (b, "3.00", "EUR", CaseStatus::Draft),
    ];
    let mut ids = Vec::new();
    for (borrower_id, amount, currency, status) in cases {
        let mut case = new_case(borrower_id, amount, currency);
        if status == CaseStatus::Approved {
            insert_approved_case(store, &mut case).await;
        } else {
            case.status = status;
            insert_case(store, &case).await;
        }
        ids.push(case.id);
    }
    let mut tx = store.begin_read().await.expect("begin_read");

    let sorted = |mut ids: Vec<CaseId>| {
        ids.sort();
        ids
    };
    assert!(tx.open_cases_of(&[]).await.expect("none").is_empty());
    assert!(tx.open_cases_of(&[c]).await.expect("c").is_empty());
    let open_a = sorted(ids[3..7].to_vec());
    assert_eq!(tx.open_cases_of(&[a]).await.expect("a"), open_a);
    let open_all = sorted(vec![ids[3], ids[4], ids[5], ids[6], ids[8]]);
    assert_eq!(
        sorted(tx.open_cases_of(&[c, b, a]).await.expect("all")),
        open_all
    );
}
