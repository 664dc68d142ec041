//! The desks' pages for the credit after its first decision (issue 20),
//! over HTTP on both backends: back office sets a rating and market only
//! proposes one (L4), the second vote carries conditions that back office
//! signs off before market may disburse (L5), and market opens a change of
//! the approved credit from its case page (L1).

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
    p.without_automatic_ratings();
    let case = p.draft_case("300000.00").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let borrower = case["borrower_id"].as_str().unwrap().to_owned();
    let page = format!("/console/cases/{id}");

    // Market sees that there is no rating and may only propose one (L4).
    let mut market = signed_in(p, "market", "lo-2").await;
    let shown = market.get(&page).await;
    assert!(
        shown.body.contains("No rating by back office"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("Propose a rating"), "{}", shown.body);
    assert!(!shown.body.contains("Set the rating"));
    let csrf = shown.csrf().unwrap();
    let proposed = market
        .post(
            &format!("/console/borrowers/{borrower}/rating-proposals"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("class", "7"),
                ("pd", "0.0030"),
                ("reason", "Accounts 2025"),
            ],
        )
        .await;
    assert_eq!(proposed.status, StatusCode::SEE_OTHER, "{}", proposed.body);
    // A first vote is still refused: a proposal decides nothing.
    let vote = [
        ("csrf", csrf.as_str()),
        ("version", "1"),
        ("decision", "approve"),
        ("rationale", "Sound."),
    ];
    let refused = market.post(&format!("{page}/first-vote"), &vote).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("L4"), "{}", refused.body);

    // Back office sees the proposal on its drafts tab and sets the rating.
    let mut office = signed_in(p, "backoffice", "ba-1").await;
    let drafts = office.get("/console/queue?state=draft").await;
    assert!(drafts.body.contains(&page), "{}", drafts.body);
    let shown = office.get(&page).await;
    assert!(shown.body.contains("Proposals by market"), "{}", shown.body);
    assert!(shown.body.contains("Accounts 2025"), "{}", shown.body);
    let csrf = shown.csrf().unwrap();
    let bad = office
        .post(
            &format!("/console/borrowers/{borrower}/rating"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("class", "7"),
                ("pd", "0.9"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let set = office
        .post(
            &format!("/console/borrowers/{borrower}/rating"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("class", "7"),
                ("pd", "0.0030"),
                ("reason", "Accounts 2025 confirmed"),
            ],
        )
        .await;
    assert_eq!(set.location(), Some(format!("{page}?done=rated").as_str()));
    // Market cannot post the back office's form (no such page at market).
    let at_market = market
        .post(
            &format!("/console/borrowers/{borrower}/rating"),
            &[
                ("csrf", &csrf),
                ("case", &id),
                ("class", "1"),
                ("pd", "0.0001"),
                ("reason", "x"),
            ],
        )
        .await;
    assert!(
        [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::FORBIDDEN
        ]
        .contains(&at_market.status),
        "{}",
        at_market.status
    );

    let csrf = market.get(&page).await.csrf().unwrap();
    let vote = [
        ("csrf", csrf.as_str()),
        ("version", "1"),
        ("decision", "approve"),
        ("rationale", "Sound."),
    ];
    let voted = market.post(&format!("{page}/first-vote"), &vote).await;
    assert_eq!(voted.status, StatusCode::SEE_OTHER, "{}", voted.body);

    // The second vote with two conditions, one with a due date (L5).
    let csrf = office.get(&page).await.csrf().unwrap();
    let bad_date = office
        .post(
            &format!("{page}/second-vote"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("decision", "approve"),
                ("rationale", "Agreed."),
                ("conditions", "Land charge registered | next spring"),
            ],
        )
        .await;
    assert_eq!(
        bad_date.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_date.body
    );
    let approved = office
        .post(
            &format!("{page}/second-vote"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("decision", "approve"),
                ("rationale", "Agreed."),
                (
                    "conditions",
                    "Land charge registered | 2099-03-31\nGuarantee signed\n",
                ),
            ],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let api = p
        .call(
            "ba-2",
            "backoffice",
            Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    let api = api.ok(200);
    assert_eq!(api["conditions"][0]["due"], "2099-03-31");
    assert_eq!(api["conditions"][1]["text"], "Guarantee signed");

    // Market's page blocks the disbursement and names the open conditions.
    let shown = market.get(&page).await;
    assert!(shown.body.contains("not all signed off"), "{}", shown.body);
    assert!(
        !shown.body.contains("/disburse\""),
        "no disbursement form while a condition is open"
    );
    // Back office signs both off, then market disburses.
    for n in ["1", "2"] {
        let csrf = office.get(&page).await.csrf().unwrap();
        let signed = office
            .post(
                &format!("{page}/conditions/{n}/sign-off"),
                &[
                    ("csrf", &csrf),
                    ("evidence", "Checked against the originals"),
                ],
            )
            .await;
        assert_eq!(
            signed.location(),
            Some(format!("{page}?done=signed_off").as_str())
        );
    }
    let shown = market.get(&page).await;
    assert!(
        shown.body.contains("the case can be disbursed"),
        "{}",
        shown.body
    );

    // Market opens an increase of the approved credit from the case page (L1).
    assert!(
        shown.body.contains(&format!(
            "/console/cases/new?kind=increase&#38;credit_id={id}"
        )),
        "{}",
        shown.body
    );
    let form = market
        .get(&format!("/console/cases/new?kind=increase&credit_id={id}"))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Increase of credit"), "{}", form.body);
    assert!(
        form.body.contains("300,000.00"),
        "the credit's amount is filled in: {}",
        form.body
    );
    let csrf = form.csrf().unwrap();
    let opened = market
        .post(
            "/console/cases",
            &[
                ("csrf", &csrf),
                ("borrower_id", &borrower),
                ("amount", "450,000.00"),
                ("currency", "EUR"),
                ("product", "term_loan"),
                ("term_months", "60"),
                ("purpose", "Second machine"),
                ("kind", "increase"),
                ("credit_id", &id),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let new_id = opened
        .location()
        .unwrap()
        .trim_start_matches("/console/cases/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let change = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases/{new_id}"),
            None,
        )
        .await;
    let change = change.ok(200);
    assert_eq!(change["kind"], "increase");
    assert_eq!(change["credit_id"], id.as_str());
    // An increase that does not increase is refused under L1, nothing opened.
    let refused = market
        .post(
            "/console/cases",
            &[
                ("csrf", &csrf),
                ("borrower_id", &borrower),
                ("amount", "100,000.00"),
                ("currency", "EUR"),
                ("product", "term_loan"),
                ("term_months", "60"),
                ("purpose", "Less"),
                ("kind", "increase"),
                ("credit_id", &id),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("L1"), "{}", refused.body);
}
both_backends!(
    console_l1_l4_l5_rating_conditions_and_changes_at_the_desks,
    desks
);
