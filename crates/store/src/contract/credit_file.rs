//! The contract of the credit file (L2): documents with their contents,
//! superseded once; the case's current documents in its loaded file;
//! key financials per borrower and reporting date.

use super::prelude::*;
use crate::{BorrowerFinancials, StoredDocument};
use creditops_domain::DocumentId;
use creditops_domain::credit_file::{MediaType, sha256_hex};

fn document(
    borrower_id: BorrowerId,
    case_id: Option<CaseId>,
    doc_type: &str,
    content: &[u8],
    when: Timestamp,
) -> StoredDocument {
    StoredDocument {
        id: DocumentId::generate(),
        borrower_id,
        case_id,
        doc_type: doc_type.to_owned(),
        media_type: MediaType::Pdf,
        sha256: sha256_hex(content),
        size: i64::try_from(content.len()).expect("size"),
        added_by: staff_id(LOAN_OFFICER),
        added_at: micros(when),
        replaces: None,
        superseded_by: None,
    }
}

pub async fn l2_documents_round_trip_and_supersede_once(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "1000.00", "EUR");
    insert_case(store, &case).await;

    // Bytes of every value, NUL and invalid UTF-8 included, come back as is.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let accounts = document(borrower_id, None, "annual_accounts", &binary, at(1));
    let application = document(
        borrower_id,
        Some(case.id),
        "credit_application",
        b"%PDF-1",
        at(2),
    );
    let mut tx = store.begin().await.expect("begin");
    tx.insert_document(&accounts, &binary)
        .await
        .expect("insert");
    tx.insert_document(&application, b"%PDF-1")
        .await
        .expect("insert");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.document(accounts.id).await.expect("load"),
        Some(accounts.clone())
    );
    assert_eq!(
        tx.document_content(accounts.id).await.expect("content"),
        Some(binary.clone())
    );
    assert_eq!(
        tx.document(DocumentId::generate()).await.expect("load"),
        None
    );
    assert_eq!(
        tx.borrower_documents(borrower_id).await.expect("list"),
        vec![accounts.clone()]
    );
    assert_eq!(
        tx.case_documents(case.id).await.expect("list"),
        vec![application.clone()]
    );
    let loaded = tx.case(case.id).await.expect("case").expect("exists");
    assert_eq!(loaded.file.documents, vec![application.file_entry()]);
    assert_ne!(loaded.content_hash(), case.content_hash());
    drop(tx);

    // A duplicate id is a conflict; an unknown borrower is not found.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_document(&accounts, &binary)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    // Replacing: the new one is current, the old one superseded, once.
    let mut corrected = document(
        borrower_id,
        Some(case.id),
        "credit_application",
        b"%PDF-2",
        at(3),
    );
    corrected.replaces = Some(application.id);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_document(&corrected, b"%PDF-2")
        .await
        .expect("insert");
    tx.supersede_document(application.id, corrected.id)
        .await
        .expect("supersede");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .supersede_document(application.id, accounts.id)
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    let listed = tx.case_documents(case.id).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].superseded_by, Some(corrected.id));
    assert_eq!(listed[1], corrected);
    let loaded = tx.case(case.id).await.expect("case").expect("exists");
    assert_eq!(loaded.file.documents, vec![corrected.file_entry()]);

    // Written without an audit event here: reconciliation names them (A1).
    let rows = tx.unaudited_rows(100).await.expect("reconcile");
    for id in [accounts.id, application.id, corrected.id] {
        assert!(
            rows.iter()
                .any(|r| r.table == "credit_documents" && r.key == id.to_string()),
            "{rows:?}"
        );
    }
}

pub async fn l2_financials_are_kept_per_reporting_date(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let date = |s: &str| s.parse::<chrono::NaiveDate>().expect("date");
    let figures = |reporting_date: &str, revenue: &str| BorrowerFinancials {
        borrower_id,
        reporting_date: date(reporting_date),
        currency: "EUR".into(),
        revenue: dec(revenue),
        ebitda: dec("-12.345"),
        total_debt: dec("4200000.00"),
        equity: dec("0"),
        debt_service: dec("650000.00"),
        recorded_by: staff_id(LOAN_OFFICER),
        recorded_at: micros(at(1)),
    };
    let mut tx = store.begin().await.expect("begin");
    tx.put_financials(&figures("2024-12-31", "100.00"))
        .await
        .expect("put");
    tx.put_financials(&figures("2025-12-31", "200.00"))
        .await
        .expect("put");
    // The same date again replaces what was recorded for it.
    tx.put_financials(&figures("2025-12-31", "250.50"))
        .await
        .expect("put");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.financials(borrower_id).await.expect("list"),
        vec![
            figures("2025-12-31", "250.50"),
            figures("2024-12-31", "100.00")
        ]
    );
    assert_eq!(
        tx.financials(BorrowerId::generate()).await.expect("list"),
        Vec::new()
    );
    let rows = tx.unaudited_rows(100).await.expect("reconcile");
    assert!(
        rows.iter()
            .any(|r| r.table == "borrower_financials"
                && r.key == format!("{borrower_id}/2025-12-31")),
        "{rows:?}"
    );
}
