//! The monitoring page of the back-office and risk desks (issue 21,
//! L6-L10): the watch list, reviews due, stages and the provisions awaiting
//! their second person; back office decides a provision there, never its
//! own. Over HTTP on both backends, and in real headless Chromium with the
//! accessibility check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use creditops_tests::browser::Browser;
use creditops_tests::console::ConsoleClient;
use creditops_tests::{Backend, TestPlatform, both_backends, json};
use reqwest::{Method, StatusCode};

async fn signed_in(p: &TestPlatform, service: &str, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url(service, ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

/// A borrower 91 days past due (on the watch list, with a review) and a
/// large provision proposed by ba-1 for it; returns the borrower's and the
/// provision's id.
async fn monitored(p: &TestPlatform) -> (String, String) {
    let borrower = p
        .borrower_with_limit(
            "lo-1",
            json!({"name": "Watched Maschinenbau GmbH", "country": "DE", "sector": "C28"}),
        )
        .await;
    let line = json!({
        "source_id": "acct-watched",
        "borrower_id": borrower,
        "amount": "120000.00",
        "as_of": Utc::now().to_rfc3339(),
        "days_past_due": 91,
    });
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/x-ndjson",
        &format!("{line}\n"),
    )
    .await
    .ok(200);
    p.call(
        "ba-1",
        "backoffice",
        Method::PUT,
        &format!("/v1/borrowers/{borrower}/stage"),
        Some(json!({"stage": "intensive_care", "reason": "91 days past due"})),
    )
    .await
    .ok(200);
    let provision = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            "/v1/provisions",
            Some(json!({"borrower_id": borrower, "amount": "650000.00", "reason": "insolvency filed", "method": "collateral shortfall"})),
        )
        .await;
    let provision = provision.ok(201)["id"].as_str().unwrap().to_owned();
    (borrower, provision)
}

async fn desks(p: &TestPlatform) {
    let (borrower, provision) = monitored(p).await;

    let mut analyst = signed_in(p, "backoffice", "ba-2").await;
    let page = analyst.get("/console/monitoring").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for shown in [
        "Watched Maschinenbau GmbH",
        "days_past_due",
        "91",
        "ad_hoc",
        "intensive_care",
        "650,000.00 EUR",
        "above the board threshold",
        "Approve provision",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        page.body.contains("href=\"/console/monitoring\""),
        "in the nav"
    );

    // The proposer cannot decide it (L10): the page says why.
    let mut proposer = signed_in(p, "backoffice", "ba-1").await;
    let shown = proposer.get("/console/monitoring").await;
    let csrf = shown.csrf().unwrap();
    let own = proposer
        .post(
            &format!("/console/provisions/{provision}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(own.body.contains("L10"), "{}", own.body);

    // The second person approves it from the page.
    let csrf = page.csrf().unwrap();
    let approved = analyst
        .post(
            &format!("/console/provisions/{provision}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        approved.location(),
        Some("/console/monitoring?done=approved"),
        "{}",
        approved.body
    );
    let after = analyst.get("/console/monitoring?done=approved").await;
    assert!(after.body.contains("The provision is approved."));
    assert!(after.body.contains("No provision awaits a decision."));
    assert!(after.body.contains("board"), "the board alert is listed");
    let api = p
        .call("rc-1", "risk", Method::GET, "/v1/provisions", None)
        .await;
    let items = api.ok(200)["items"].as_array().unwrap().clone();
    let decided = items
        .iter()
        .find(|i| i["id"] == provision.as_str())
        .unwrap();
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "ba-2");

    // The analyst completes the ad-hoc review from the page (L6): the
    // checks must be confirmed.
    let reviews = p
        .call(
            "ba-2",
            "backoffice",
            Method::GET,
            &format!("/v1/reviews?borrower_id={borrower}"),
            None,
        )
        .await;
    let review = reviews.ok(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = format!("/console/reviews/{review}/completion");
    let shown = analyst.get("/console/monitoring").await;
    assert!(shown.body.contains(&form), "{}", shown.body);
    let csrf = shown.csrf().unwrap();
    let unchecked = analyst
        .post(
            &form,
            &[
                ("csrf", &csrf),
                ("summary", "Arrears cleared in January."),
                ("covenants", "met"),
                ("collateral_checked", "on"),
            ],
        )
        .await;
    assert_eq!(
        unchecked.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unchecked.body
    );
    assert!(
        unchecked.body.contains("use of funds"),
        "{}",
        unchecked.body
    );
    let done = analyst
        .post(
            &form,
            &[
                ("csrf", &csrf),
                ("summary", "Arrears cleared in January."),
                ("covenants", "met"),
                ("use_of_funds_checked", "on"),
                ("collateral_checked", "on"),
            ],
        )
        .await;
    assert_eq!(
        done.location(),
        Some("/console/monitoring?done=reviewed"),
        "{}",
        done.body
    );
    let history = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/borrowers/{borrower}/reviews"),
            None,
        )
        .await;
    assert_eq!(history.ok(200)["items"][0]["completed_by"], "ba-2");

    // Back office acts on the watched borrower from the page: a transfer
    // into restructuring with its plan (L9), a provision (L10).
    let shown = analyst.get("/console/monitoring").await;
    let csrf = shown.csrf().unwrap();
    let stage_form = format!("/console/borrowers/{borrower}/stage");
    assert!(shown.body.contains(&stage_form), "{}", shown.body);
    let undated = analyst
        .post(
            &stage_form,
            &[
                ("csrf", &csrf),
                ("stage", "restructuring"),
                ("reason", "restructuring agreed"),
                ("plan", "new equity paid in"),
            ],
        )
        .await;
    assert_eq!(
        undated.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        undated.body
    );
    let due = (Utc::now() + chrono::Duration::days(90)).date_naive();
    let plan = format!("new equity paid in | {due}\nsale of the Leipzig plant | {due}");
    let moved = analyst
        .post(
            &stage_form,
            &[
                ("csrf", &csrf),
                ("stage", "restructuring"),
                ("reason", "restructuring agreed"),
                ("plan", &plan),
            ],
        )
        .await;
    assert_eq!(
        moved.location(),
        Some("/console/monitoring?done=moved"),
        "{}",
        moved.body
    );
    let stage = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/borrowers/{borrower}/stage"),
            None,
        )
        .await;
    let stage = stage.ok(200).clone();
    assert_eq!(stage["stage"], "restructuring");
    assert_eq!(stage["plan"].as_array().unwrap().len(), 2);
    let proposed = analyst
        .post(
            "/console/provisions",
            &[
                ("csrf", &csrf),
                ("borrower_id", &borrower),
                ("amount", "120000.00"),
                ("reason", "collateral shortfall after the sale"),
                ("method", "collateral shortfall"),
            ],
        )
        .await;
    assert_eq!(
        proposed.location(),
        Some("/console/monitoring?done=proposed"),
        "{}",
        proposed.body
    );
    let after = analyst.get("/console/monitoring?done=proposed").await;
    assert!(after.body.contains("120,000.00 EUR"), "{}", after.body);

    // Risk control reads the page without the decisions; a forged form is
    // refused.
    let mut controller = signed_in(p, "risk", "rc-1").await;
    let risk_page = controller.get("/console/monitoring").await;
    assert_eq!(risk_page.status, StatusCode::OK, "{}", risk_page.body);
    assert!(risk_page.body.contains("Watched Maschinenbau GmbH"));
    assert!(!risk_page.body.contains("Approve provision"));
    assert!(!risk_page.body.contains("Complete the review"));
    assert!(!risk_page.body.contains("Propose a provision"));
    let csrf = risk_page.csrf().unwrap();
    let forged = controller
        .post(
            &format!("/console/provisions/{provision}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(
        [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::FORBIDDEN
        ]
        .contains(&forged.status),
        "{}",
        forged.status
    );
    // Market has no monitoring page.
    let mut officer = signed_in(p, "market", "lo-2").await;
    let market_page = officer.get("/console/monitoring").await;
    assert_eq!(market_page.status, StatusCode::NOT_FOUND);
}

both_backends!(console_monitoring_desks, desks);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_browser_analyst_approves_a_provision() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");
    monitored(&p).await;
    let backoffice = p.url("backoffice", "");
    let browser = Browser::start().await;
    browser.goto(&format!("{backoffice}/login")).await;
    browser.type_into("#user", "ba-2").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/queue").await;
    browser.click("a[href='/console/monitoring']").await;
    let page = browser
        .wait_for_text("Provisions awaiting a decision")
        .await;
    assert!(page.contains("Watched Maschinenbau GmbH"), "{page}");
    browser.screenshot("monitoring").await;
    browser.assert_accessible("monitoring").await;
    // The keyboard alone: focus the decision and press Enter.
    browser.focus("form[action$='/approve'] button").await;
    browser.keyboard("\u{E007}").await;
    let done = browser.wait_for_text("The provision is approved.").await;
    assert!(done.contains("No provision awaits a decision."), "{done}");
    browser.assert_accessible("monitoring_done").await;
    // The review's form opens behind its summary line.
    browser
        .click("table[aria-labelledby=reviews] details summary")
        .await;
    browser
        .type_into("textarea[name=summary]", "Arrears cleared in January.")
        .await;
    browser.click("input[name=use_of_funds_checked]").await;
    browser.click("input[name=collateral_checked]").await;
    browser.screenshot("monitoring_review").await;
    browser.assert_accessible("monitoring_review").await;
    browser
        .click("form[action$='/completion'] button[type=submit]")
        .await;
    let reviewed = browser.wait_for_text("The review is completed.").await;
    assert!(reviewed.contains("No review is open."), "{reviewed}");
    // The forms to act on a watched borrower, opened.
    browser.click("details summary").await;
    browser.wait_for_text("Propose a provision").await;
    browser.screenshot("monitoring_act").await;
    browser.assert_accessible("monitoring_act").await;
    browser.quit().await;
}
