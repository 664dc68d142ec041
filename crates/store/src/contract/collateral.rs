//! The contract of the collateral register (L3): items, valuations,
//! legal checks, the positions the rules read and the due list.

use super::prelude::*;
use chrono::NaiveDate;
use creditops_domain::collateral::{
    Collateral, CollateralKind, CollateralParameters, CollateralStatus, LegalCheck, LegalResult,
    Valuation, ValuationStatus, due_cutoff,
};
use creditops_domain::{CollateralId, ValuationId};

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn item(borrower_id: BorrowerId, kind: CollateralKind, nominal: &str) -> Collateral {
    Collateral {
        id: CollateralId::generate(),
        borrower_id,
        kind,
        nominal: Money::parse(nominal, "EUR").expect("money"),
        // Quotes and SQL-ish text are data.
        description: "Grundschuld 'Flurstück 12'; DROP TABLE collateral; --".into(),
        status: CollateralStatus::Active,
        registered_by: staff_id(LOAN_OFFICER),
        registered_at: micros(at(1)),
    }
}

fn valuation(
    c: &Collateral,
    value: &str,
    on: &str,
    status: ValuationStatus,
    recorded: i64,
) -> Valuation {
    Valuation {
        id: ValuationId::generate(),
        collateral_id: c.id,
        value: Money::parse(value, "EUR").expect("money"),
        valuation_date: date(on),
        valuer: "Sachverständige Müller".into(),
        method: "market_value".into(),
        recorded_by: staff_id(if status == ValuationStatus::Effective {
            ANALYST
        } else {
            LOAN_OFFICER
        }),
        recorded_at: micros(at(recorded)),
        side: if status == ValuationStatus::Effective {
            Side::Backoffice
        } else {
            Side::Market
        },
        status,
        confirmed_by: None,
        confirmed_at: None,
    }
}

fn check(c: &Collateral, result: LegalResult, checked: i64) -> LegalCheck {
    LegalCheck {
        collateral_id: c.id,
        result,
        note: "Grundbuchauszug vom Vortag".into(),
        checked_by: staff_id(ANALYST),
        checked_at: micros(at(checked)),
    }
}

pub async fn l3_collateral_round_trip_with_latest_valuation_and_check(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let b = insert_borrower(store).await;
    let house = item(b, CollateralKind::MortgageResidential, "400000.00");
    let deposit = item(b, CollateralKind::PledgeOfDeposits, "10000.50");
    let old = valuation(
        &house,
        "380000.00",
        "2024-01-10",
        ValuationStatus::Effective,
        2,
    );
    let newer = valuation(
        &house,
        "390000.00",
        "2025-01-10",
        ValuationStatus::Effective,
        3,
    );
    // Recorded later, valued earlier: not the latest valuation.
    let late_entry = valuation(&house, "1.00", "2023-01-10", ValuationStatus::Effective, 9);
    let proposal = valuation(
        &deposit,
        "10000.50",
        "2026-01-02",
        ValuationStatus::Proposed,
        4,
    );
    let mut tx = store.begin().await.expect("begin");
    tx.insert_collateral(&house).await.expect("house");
    tx.insert_collateral(&deposit).await.expect("deposit");
    for v in [&old, &newer, &late_entry, &proposal] {
        tx.insert_valuation(v).await.expect("valuation");
    }
    tx.insert_legal_check(&check(&house, LegalResult::Invalid, 5))
        .await
        .expect("check");
    tx.insert_legal_check(&check(&house, LegalResult::Valid, 6))
        .await
        .expect("check");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("read");
    assert_eq!(
        tx.collateral(house.id).await.expect("load"),
        Some(house.clone())
    );
    assert_eq!(
        tx.valuation(proposal.id).await.expect("load"),
        Some(proposal.clone())
    );
    assert_eq!(
        tx.collateral(CollateralId::generate()).await.expect("load"),
        None
    );
    let positions = tx.active_collateral_of(b).await.expect("positions");
    let ids: Vec<_> = positions.iter().map(|p| p.collateral.id).collect();
    let mut expected = vec![house.id, deposit.id];
    expected.sort();
    assert_eq!(ids, expected, "active items by id");
    let house_now = tx
        .collateral_position(house.id)
        .await
        .expect("position")
        .expect("found");
    assert_eq!(house_now.effective, Some(newer.clone()));
    assert_eq!(house_now.proposed, None);
    assert_eq!(
        house_now.legal_check.map(|c| c.result),
        Some(LegalResult::Valid)
    );
    let deposit_now = tx
        .collateral_position(deposit.id)
        .await
        .expect("position")
        .expect("found");
    assert_eq!(deposit_now.effective, None, "a proposal is not effective");
    assert_eq!(deposit_now.proposed, Some(proposal.clone()));
    assert_eq!(deposit_now.legal_check, None);
    drop(tx);

    // A proposal is confirmed once; the confirmation makes it effective.
    let mut tx = store.begin().await.expect("begin");
    tx.confirm_valuation(proposal.id, &staff_id(ANALYST), at(7))
        .await
        .expect("confirm");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .confirm_valuation(proposal.id, &staff_id(ANALYST), at(8))
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .confirm_valuation(ValuationId::generate(), &staff_id(ANALYST), at(8))
        .await
        .expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("read");
    let deposit_now = tx
        .collateral_position(deposit.id)
        .await
        .expect("position")
        .expect("found");
    let confirmed = deposit_now.effective.expect("effective now");
    assert_eq!(confirmed.status, ValuationStatus::Effective);
    assert_eq!(confirmed.confirmed_by, Some(staff_id(ANALYST)));
    assert_eq!(confirmed.confirmed_at, Some(micros(at(7))));
    assert_eq!(deposit_now.proposed, None);
    drop(tx);

    // Unknown borrower or item: NotFound; a duplicate id: Conflict.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_collateral(&item(BorrowerId::generate(), CollateralKind::Other, "1"))
        .await
        .expect_err("unknown borrower");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let ghost = item(b, CollateralKind::Other, "1");
    let err = tx
        .insert_valuation(&valuation(
            &ghost,
            "1",
            "2026-01-01",
            ValuationStatus::Effective,
            1,
        ))
        .await
        .expect_err("unknown item");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_collateral(&house).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn l3_release_and_revaluations_due(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let b = insert_borrower(store).await;
    let params = CollateralParameters::default();
    let today = date("2026-06-01");
    let overdue = item(b, CollateralKind::MortgageCommercial, "500000");
    let fresh = item(b, CollateralKind::MortgageCommercial, "500000");
    let residential = item(b, CollateralKind::MortgageResidential, "300000");
    let unvalued = item(b, CollateralKind::Guarantee, "1000");
    let released = item(b, CollateralKind::Guarantee, "1000");
    let mut tx = store.begin().await.expect("begin");
    for c in [&overdue, &fresh, &residential, &unvalued, &released] {
        tx.insert_collateral(c).await.expect("insert");
    }
    for v in [
        valuation(
            &overdue,
            "500000",
            "2025-06-01",
            ValuationStatus::Effective,
            2,
        ),
        // Overdue by its old valuation, but revalued since.
        valuation(
            &fresh,
            "500000",
            "2024-01-01",
            ValuationStatus::Effective,
            2,
        ),
        valuation(
            &fresh,
            "500000",
            "2026-03-01",
            ValuationStatus::Effective,
            3,
        ),
        // A proposal does not reset the schedule.
        valuation(
            &overdue,
            "500000",
            "2026-05-01",
            ValuationStatus::Proposed,
            4,
        ),
        valuation(
            &residential,
            "300000",
            "2024-01-01",
            ValuationStatus::Effective,
            2,
        ),
    ] {
        tx.insert_valuation(&v).await.expect("valuation");
    }
    tx.release_collateral(released.id, &staff_id(ANALYST), at(5))
        .await
        .expect("release");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .release_collateral(released.id, &staff_id(ANALYST), at(6))
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .release_collateral(CollateralId::generate(), &staff_id(ANALYST), at(6))
        .await
        .expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("read");
    let stored = tx
        .collateral(released.id)
        .await
        .expect("load")
        .expect("found");
    assert_eq!(stored.status, CollateralStatus::Released);
    let active: Vec<_> = tx
        .active_collateral_of(b)
        .await
        .expect("active")
        .into_iter()
        .map(|p| p.collateral.id)
        .collect();
    assert!(
        !active.contains(&released.id),
        "released items are not active"
    );
    assert_eq!(active.len(), 4);

    let cutoffs: Vec<_> = CollateralKind::ALL
        .iter()
        .map(|kind| (*kind, due_cutoff(*kind, &params, today)))
        .collect();
    let due: Vec<_> = tx
        .revaluation_candidates(&cutoffs, 100)
        .await
        .expect("due")
        .into_iter()
        .map(|p| p.collateral.id)
        .collect();
    // Never valued first, then by the last effective valuation date.
    assert_eq!(due, vec![unvalued.id, overdue.id]);
    let first: Vec<_> = tx
        .revaluation_candidates(&cutoffs, 1)
        .await
        .expect("due")
        .into_iter()
        .map(|p| p.collateral.id)
        .collect();
    assert_eq!(first, vec![unvalued.id]);
    // Three years on, the residential mortgage is due too.
    let later = date("2027-01-01");
    let cutoffs: Vec<_> = CollateralKind::ALL
        .iter()
        .map(|kind| (*kind, due_cutoff(*kind, &params, later)))
        .collect();
    let due: Vec<_> = tx
        .revaluation_candidates(&cutoffs, 100)
        .await
        .expect("due")
        .into_iter()
        .map(|p| p.collateral.id)
        .collect();
    assert_eq!(due, vec![unvalued.id, residential.id, overdue.id]);
}
