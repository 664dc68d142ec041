//! The contract of the staff directory: people with dated unit, role and
//! competence histories.

use super::prelude::*;

pub async fn staff_round_trip_keeps_dated_history(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit_id(MARKET_UNIT), "Corporate Banking", Side::Market)
        .await
        .expect("unit");
    tx.upsert_unit(
        &unit_id(BACKOFFICE_UNIT),
        "Credit Back Office",
        Side::Backoffice,
    )
    .await
    .expect("unit");
    // Moved from market to back office on day 10; a microsecond-precise start.
    let moved = day(10) + chrono::Duration::microseconds(7);
    let person = mover(moved);
    tx.insert_staff(&person).await.expect("insert staff");
    // A person without any assignment is fine too.
    let bare = StaffMember {
        id: staff_id("new.joiner_2"),
        status: StaffStatus::Active,
        units: vec![],
        roles: vec![],
        competences: vec![],
    };
    tx.insert_staff(&bare).await.expect("insert bare staff");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    let loaded = tx.staff_member(&person.id).await.expect("load");
    assert_eq!(loaded.as_ref(), Some(&person));
    let loaded = loaded.expect("exists");
    assert_eq!(loaded.voter_at(day(5)).map(|v| v.side), Some(Side::Market));
    assert_eq!(
        loaded.voter_at(day(20)).map(|v| v.side),
        Some(Side::Backoffice)
    );
    assert_eq!(loaded.roles_at(day(20)), vec![Role::CreditAnalyst]);
    let voter = loaded.voter_at(day(20)).expect("voter");
    assert_eq!(voter.competence_level, 9);
    assert_eq!(voter.left_market_at, Some(moved));
    assert_eq!(loaded.competence_at(Side::Market, day(5)), 2);
    assert_eq!(tx.staff_member(&bare.id).await.expect("load"), Some(bare));
    assert_eq!(
        tx.staff_member(&staff_id("nobody")).await.expect("load"),
        None
    );
}

/// A person who moved from market to back office at `moved`, with a role
/// and a grant that ended long before.
fn mover(moved: Timestamp) -> StaffMember {
    StaffMember {
        id: staff_id("mover-1"),
        status: StaffStatus::Active,
        units: vec![
            UnitAssignment {
                unit_id: unit_id(MARKET_UNIT),
                side: Side::Market,
                valid_from: day(1),
                valid_to: Some(moved),
            },
            UnitAssignment {
                unit_id: unit_id(BACKOFFICE_UNIT),
                side: Side::Backoffice,
                valid_from: moved,
                valid_to: None,
            },
        ],
        roles: vec![
            RoleAssignment {
                role: Role::LoanOfficer,
                valid_from: day(1),
                valid_to: Some(moved),
            },
            RoleAssignment {
                role: Role::CreditAnalyst,
                valid_from: moved,
                valid_to: None,
            },
            RoleAssignment {
                role: Role::InternalAuditor,
                valid_from: day(-100),
                valid_to: Some(day(-50)),
            },
        ],
        competences: vec![
            CompetenceGrant {
                side: Side::Market,
                level: 2,
                valid_from: day(1),
                valid_to: Some(moved),
            },
            CompetenceGrant {
                side: Side::Backoffice,
                level: 9,
                valid_from: moved,
                valid_to: None,
            },
            CompetenceGrant {
                side: Side::Backoffice,
                level: 1,
                valid_from: day(-100),
                valid_to: Some(day(-50)),
            },
        ],
    }
}

pub async fn upsert_unit_updates_name_and_side(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let unit = unit_id("reorg-unit");
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit, "Old Name", Side::Market)
        .await
        .expect("insert unit");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit, "Risk Controlling", Side::Risk)
        .await
        .expect("update unit");
    tx.commit().await.expect("commit");

    // An assignment must carry its unit's (current) side.
    let mut tx = store.begin().await.expect("begin");
    let wrong = member("rc-1", "reorg-unit", Side::Market, Role::RiskController);
    let err = tx.insert_staff(&wrong).await.expect_err("side mismatch");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let right = member("rc-1", "reorg-unit", Side::Risk, Role::RiskController);
    tx.insert_staff(&right).await.expect("insert staff");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.staff_member(&right.id).await.expect("load"), Some(right));
}

pub async fn duplicate_staff_is_a_conflict(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut tx = store.begin().await.expect("begin");
    let again = member(
        LOAN_OFFICER,
        BACKOFFICE_UNIT,
        Side::Backoffice,
        Role::CreditAnalyst,
    );
    let err = tx.insert_staff(&again).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    // The first record is unchanged.
    let mut tx = store.begin_read().await.expect("begin_read");
    let stored = tx
        .staff_member(&staff_id(LOAN_OFFICER))
        .await
        .expect("load");
    assert_eq!(
        stored,
        Some(member(
            LOAN_OFFICER,
            MARKET_UNIT,
            Side::Market,
            Role::LoanOfficer
        ))
    );
}

pub async fn staff_with_unknown_unit_is_refused(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin().await.expect("begin");
    let person = member("lost-1", "no-such-unit", Side::Market, Role::LoanOfficer);
    let err = tx.insert_staff(&person).await.expect_err("unknown unit");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.staff_member(&person.id).await.expect("load"), None);
}

pub async fn staff_status_changes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let id = staff_id(LOAN_OFFICER);
    let mut tx = store.begin().await.expect("begin");
    tx.set_staff_status(&id, StaffStatus::Suspended)
        .await
        .expect("suspend");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    let person = tx.staff_member(&id).await.expect("load").expect("exists");
    drop(tx);
    assert_eq!(person.status, StaffStatus::Suspended);
    assert!(person.roles_at(at(0)).is_empty());
    assert_eq!(person.units.len(), 1, "history is kept");

    let mut tx = store.begin().await.expect("begin");
    tx.set_staff_status(&id, StaffStatus::Active)
        .await
        .expect("reactivate");
    let err = tx
        .set_staff_status(&staff_id("nobody"), StaffStatus::Suspended)
        .await
        .expect_err("unknown staff");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    let person = tx.staff_member(&id).await.expect("load").expect("exists");
    assert_eq!(person.status, StaffStatus::Active);
}

pub async fn staff_history_appends_and_ids_are_sorted(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let id = staff_id(LOAN_OFFICER);
    let promoted = RoleAssignment {
        role: Role::RiskController,
        valid_from: day(5),
        valid_to: Some(day(50)),
    };
    let grant = CompetenceGrant {
        side: Side::Market,
        level: 3,
        valid_from: day(5),
        valid_to: None,
    };
    let mut tx = store.begin().await.expect("begin");
    tx.add_role_assignment(&id, &promoted, None)
        .await
        .expect("role");
    tx.add_competence_grant(&id, &grant, None)
        .await
        .expect("grant");
    let second_grant = CompetenceGrant {
        side: Side::Backoffice,
        level: 9,
        valid_from: day(60),
        valid_to: Some(day(70)),
    };
    tx.add_competence_grant(&id, &second_grant, None)
        .await
        .expect("second grant");
    for err in [
        tx.add_role_assignment(&staff_id("nobody"), &promoted, None)
            .await
            .expect_err("unknown staff"),
        tx.add_competence_grant(&staff_id("nobody"), &grant, None)
            .await
            .expect_err("unknown staff"),
    ] {
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    tx.commit().await.expect("commit");

    let mut expected = member(LOAN_OFFICER, MARKET_UNIT, Side::Market, Role::LoanOfficer);
    expected.roles.push(promoted);
    expected.competences.push(grant);
    expected.competences.push(second_grant);
    let mut tx = store.begin_read().await.expect("begin_read");
    let loaded = tx.staff_member(&id).await.expect("load").expect("exists");
    assert_eq!(loaded, expected, "appended in order, earlier history kept");
    assert_eq!(loaded.competence_at(Side::Market, day(10)), 3);
    assert_eq!(loaded.competence_at(Side::Market, day(0)), 1);
    assert_eq!(
        loaded.roles_at(day(10)),
        vec![Role::LoanOfficer, Role::RiskController]
    );
    drop(tx);

    // Levels outside 1..=9 are refused by the schema.
    for level in [0, 10] {
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .add_competence_grant(
                &id,
                &CompetenceGrant {
                    side: Side::Market,
                    level,
                    valid_from: day(1),
                    valid_to: None,
                },
                None,
            )
            .await;
        assert!(result.is_err(), "level {level} was stored: {result:?}");
    }

    assert_staff_ids_sorted(store).await;
}

/// `staff_ids` is sorted in `StaffId` order (byte order), not by a database
/// collation that ignores punctuation or case.
async fn assert_staff_ids_sorted(store: &dyn Store) {
    let mut tx = store.begin().await.expect("begin");
    let extra = ["b_1", "A-1", "a.1", "a-2", "Z9", "a-10", "a1"];
    for id in extra {
        tx.insert_staff(&StaffMember {
            id: staff_id(id),
            status: StaffStatus::Active,
            units: vec![],
            roles: vec![],
            competences: vec![],
        })
        .await
        .expect("insert staff");
    }
    tx.commit().await.expect("commit");
    let mut expected: Vec<StaffId> = extra
        .iter()
        .chain(&[ORIGINATOR, LOAN_OFFICER, EDITOR, ANALYST])
        .map(|id| staff_id(id))
        .collect();
    expected.sort();
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.staff_ids().await.expect("staff ids"), expected);
}
