//! The credit file and the collateral on the desks' case pages (issue 20,
//! L2, L3), over HTTP on both backends: market uploads a document to its
//! case (which voids the votes cast so far), back office one to the
//! borrower; market registers collateral and proposes a value, back office
//! records the value and the legal validity, and the secured value shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::console::ConsoleClient;
use creditops_tests::{TestPlatform, both_backends};
use reqwest::{Method, StatusCode};

async fn signed_in(p: &TestPlatform, service: &str, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url(service, ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

async fn desks(p: &TestPlatform) {
    let case = p.draft_case("200000.00").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let borrower = case["borrower_id"].as_str().unwrap().to_owned();
    let page = format!("/console/cases/{id}");

    // Market uploads a PDF to its case: a new file version.
    let mut market = signed_in(p, "market", "lo-2").await;
    let shown = market.get(&page).await;
    assert!(shown.body.contains("No documents yet."), "{}", shown.body);
    let csrf = shown.csrf().unwrap();
    let pdf = b"%PDF-1.7\nannual accounts 2025\n%%EOF\n";
    let uploaded = market
        .post_file(
            &format!("{page}/documents"),
            &[("csrf", &csrf), ("type", "annual_accounts")],
            ("file", "accounts-2025.pdf", pdf),
        )
        .await;
    assert_eq!(
        uploaded.location(),
        Some(format!("{page}?done=saved").as_str()),
        "{}",
        uploaded.body
    );
    let api = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(
        api.ok(200)["version"],
        2,
        "a document is a new file version (V3, L2)"
    );
    // A scan larger than a form's usual bound is taken up to the
    // document bound.
    let mut scan = b"%PDF-1.7\n".to_vec();
    scan.resize(300 * 1024, b'0');
    let csrf = market.get(&page).await.csrf().unwrap();
    let large = market
        .post_file(
            &format!("{page}/documents"),
            &[("csrf", &csrf), ("type", "credit_application")],
            ("file", "application-scan.pdf", &scan),
        )
        .await;
    assert_eq!(large.status, StatusCode::SEE_OTHER, "{}", large.body);
    // The document opens from the case page, its bytes as uploaded.
    let shown = market.get(&page).await;
    let at = shown
        .body
        .find("/console/documents/")
        .expect("a document link");
    let link = shown.body[at..].split('"').next().unwrap().to_owned();
    let download = market.get(&link).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.headers["content-disposition"], "attachment");
    assert!(
        download.body.starts_with("%PDF-"),
        "{}",
        download.body.len()
    );
    // Content that is not what its name says is refused, nothing stored.
    let fake = market
        .post_file(
            &format!("{page}/documents"),
            &[("csrf", &csrf), ("type", "annual_accounts")],
            ("file", "fake.pdf", b"not a pdf"),
        )
        .await;
    assert_eq!(
        fake.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        fake.body
    );

    // Market registers collateral and proposes a value (L3).
    let csrf = market.get(&page).await.csrf().unwrap();
    let registered = market
        .post(
            &format!("/console/borrowers/{borrower}/collateral"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("kind", "pledge_of_deposits"),
                ("nominal", "100,000.00"),
                ("description", "Term deposit 4711"),
            ],
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::SEE_OTHER,
        "{}",
        registered.body
    );
    let shown = market.get(&page).await;
    assert!(shown.body.contains("Term deposit 4711"), "{}", shown.body);
    let item = {
        let at = shown
            .body
            .find("/console/collateral/")
            .expect("a valuation form");
        shown.body[at + "/console/collateral/".len()..][..36].to_owned()
    };
    let csrf = shown.csrf().unwrap();
    let proposed = market
        .post(
            &format!("/console/collateral/{item}/valuations"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("value", "100,000.00"),
                ("valuation_date", "2026-12-01"),
                ("valuer", "Bank statement"),
                ("method", "balance"),
            ],
        )
        .await;
    assert_eq!(proposed.status, StatusCode::SEE_OTHER, "{}", proposed.body);
    // Market has no legal check: that is back office's (L3).
    let refused = market
        .post(
            &format!("/console/collateral/{item}/legal-check"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("result", "valid"),
                ("note", "x"),
            ],
        )
        .await;
    assert!(
        [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::FORBIDDEN
        ]
        .contains(&refused.status),
        "{}",
        refused.status
    );

    // Back office records the value and the legal validity; the item counts.
    let mut office = signed_in(p, "backoffice", "ba-1").await;
    // Never validly valued: the item is on back office's due list.
    let due = office.get("/console/collateral/due").await;
    assert!(due.body.contains("Term deposit 4711"), "{}", due.body);
    let shown = office.get(&page).await;
    assert!(
        shown.body.contains("proposed 100,000.00 EUR"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("annual_accounts"), "{}", shown.body);
    let csrf = shown.csrf().unwrap();
    let valued = office
        .post(
            &format!("/console/collateral/{item}/valuations"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("value", "100,000.00"),
                ("valuation_date", "2026-12-01"),
                ("valuer", "Back office"),
                ("method", "balance confirmation"),
            ],
        )
        .await;
    assert_eq!(valued.status, StatusCode::SEE_OTHER, "{}", valued.body);
    let checked = office
        .post(
            &format!("/console/collateral/{item}/legal-check"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("result", "valid"),
                ("note", "Pledge agreement signed"),
            ],
        )
        .await;
    assert_eq!(checked.status, StatusCode::SEE_OTHER, "{}", checked.body);
    let shown = office.get(&page).await;
    assert!(
        shown
            .body
            .contains("Secured (after haircuts):</strong> 100,000.00 EUR"),
        "{}",
        shown.body
    );

    // The revaluation due list: valued today, the pledge is not due.
    let due = office.get("/console/collateral/due").await;
    assert_eq!(due.status, StatusCode::OK, "{}", due.body);
    assert!(due.body.contains("Revaluations"), "{}", due.body);
    assert!(!due.body.contains("Term deposit 4711"), "{}", due.body);

    // Back office adds a document to the borrower: the case changes again.
    let text = b"Site visit 2026-12-02: production running.";
    let added = office
        .post_file(
            &format!("/console/borrowers/{borrower}/documents?case={id}"),
            &[("csrf", &csrf), ("type", "other")],
            ("file", "visit.txt", text),
        )
        .await;
    assert_eq!(
        added.location(),
        Some(format!("{page}?done=saved").as_str()),
        "{}",
        added.body
    );
    let api = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["version"], 4);
}
both_backends!(
    console_l2_l3_documents_and_collateral_on_the_case_pages,
    desks
);
