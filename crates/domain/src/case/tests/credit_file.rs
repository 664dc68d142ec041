//! L2 at the state machine: the documents of a case are part of the file
//! version both votes bind to (V3). A new or replaced document changes the
//! content hash and voids the votes cast so far; a decided case takes none.

use super::*;
use crate::DocumentId;
use crate::credit_file::{FileDocument, sha256_hex};

fn doc(kind: &str, content: &[u8]) -> FileDocument {
    FileDocument {
        id: DocumentId::generate(),
        doc_type: kind.to_owned(),
        sha256: sha256_hex(content),
    }
}

#[test]
fn l2_the_content_hash_covers_the_documents() {
    let bare = file();
    let application = doc("credit_application", b"%PDF-1.7 application");
    let accounts = doc("annual_accounts", b"%PDF-1.7 accounts 2025");
    let with = |docs: Vec<FileDocument>| CaseFile {
        documents: docs,
        ..file()
    };
    let one = with(vec![application.clone()]);
    let two = with(vec![application.clone(), accounts.clone()]);
    let swapped = with(vec![accounts.clone(), application.clone()]);
    let replaced = with(vec![
        application.clone(),
        FileDocument {
            sha256: sha256_hex(b"%PDF-1.7 accounts 2025, corrected"),
            ..accounts.clone()
        },
    ]);
    let retyped = with(vec![FileDocument {
        doc_type: "other".into(),
        ..application.clone()
    }]);
    let hashes = [
        ("no documents", bare.content_hash()),
        ("one document", one.content_hash()),
        ("two documents", two.content_hash()),
        ("other content", replaced.content_hash()),
        ("other type", retyped.content_hash()),
    ];
    for (i, (a, ha)) in hashes.iter().enumerate() {
        for (b, hb) in &hashes[i + 1..] {
            assert_ne!(ha, hb, "L2/V3 {a} and {b} must hash apart");
        }
    }
    // The order documents were listed in does not matter; the set does.
    assert_eq!(two.content_hash(), swapped.content_hash());
    // A file without documents hashes as before documents existed.
    assert_eq!(
        bare.content_hash(),
        CaseFile {
            documents: Vec::new(),
            ..file()
        }
        .content_hash()
    );
}

#[test]
fn l2_a_document_voids_the_votes_cast_so_far() {
    // Draft: the version moves on, the case stays with market.
    let mut case = new_case();
    let before = case.content_hash();
    case.change_documents(vec![doc("annual_accounts", b"a")], "document added", at(1))
        .unwrap();
    assert_eq!(case.version, 2);
    assert_eq!(case.status, CaseStatus::Draft);
    assert_ne!(case.content_hash(), before);

    // Awaiting the second vote: the first vote is void, the case is back
    // with market, and a second vote on the old version is stale (V3).
    let mut case = awaiting();
    let docs = vec![doc("annual_accounts", b"b")];
    case.change_documents(docs, "annual accounts added", at(10))
        .unwrap();
    assert_eq!(case.status, CaseStatus::Returned);
    assert_eq!(case.version, 2);
    assert_eq!(
        case.current_votes().count(),
        0,
        "L2/V3 earlier votes are void"
    );
    let err = refuse(&mut case, second(ba1(), Approve, 1), at(11));
    assert!(
        matches!(
            err,
            DomainError::InvalidState(_) | DomainError::StaleVersion { .. }
        ),
        "{err:?}"
    );
    accept(&mut case, first(lo1(), Approve, 2), at(12));
    assert_eq!(case.status, CaseStatus::AwaitingSecondVote);

    // Escalated: back to market as well.
    let mut case = escalated();
    let version = case.version;
    case.change_documents(Vec::new(), "borrower document added", at(30))
        .unwrap();
    assert_eq!(case.status, CaseStatus::Returned);
    assert_eq!(case.version, version + 1);
}

#[test]
fn l2_a_decided_case_takes_no_document() {
    for (name, mut case) in [
        ("approved", approved()),
        ("declined", declined_by_backoffice()),
    ] {
        let before = case.clone();
        let err = case
            .change_documents(vec![doc("other", b"x")], "late document", at(50))
            .unwrap_err();
        assert_invalid_state(&err, &format!("L2 {name}"));
        assert_eq!(case, before, "L2 {name}: nothing changed");
    }
}
