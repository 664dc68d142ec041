//! The contract of approved credits (L1): a credit and its versions.

use super::prelude::*;

/// What an approval records (L1): a credit and its first version together,
/// each later version beside it; a repeat or a stale version is refused and
/// leaves nothing.
pub async fn l1_credits_are_stored_with_their_versions(store: Arc<dyn Store>) {
    use creditops_domain::{CaseKind, Credit, CreditId};
    let store = store.as_ref();
    seed_org(store).await;
    let borrower = insert_borrower(store).await;
    let opening = new_case(borrower, "250000.00", "EUR");
    let change = new_case(borrower, "300000.00", "EUR");
    insert_case(store, &opening).await;
    insert_case(store, &change).await;
    let first = Credit::approved(
        CreditId::generate(),
        opening.id,
        &opening.file,
        micros(at(10)),
    );
    let second = Credit {
        version: 2,
        amount: Money::parse("300000.00", "EUR").expect("money"),
        term_months: 72,
        case_id: change.id,
        kind: CaseKind::Increase,
        updated_at: micros(at(20)),
        ..first.clone()
    };

    let mut tx = store.begin().await.expect("begin");
    tx.insert_credit(&first).await.expect("insert credit");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    let again = tx.insert_credit(&first).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let stale = Credit {
        version: 3,
        ..second.clone()
    };
    let refused = tx.update_credit(&stale).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    tx.update_credit(&second).await.expect("next version");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.credit(first.id).await.expect("credit"),
        Some(second.clone())
    );
    let versions = tx.credit_versions(first.id).await.expect("versions");
    let shapes: Vec<_> = versions
        .iter()
        .map(|v| (v.version, v.amount, v.case_id, v.kind, v.term_months))
        .collect();
    assert_eq!(
        shapes,
        [
            (1, first.amount, opening.id, first.kind, first.term_months),
            (2, second.amount, change.id, CaseKind::Increase, 72),
        ]
    );
    assert_eq!(tx.credits_of(borrower).await.expect("credits"), [second]);
}
