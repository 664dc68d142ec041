//! The market desk in real headless Chromium (issue 19): a loan officer
//! signs in, opens a case another officer drafted and casts the first vote;
//! the session the browser holds is not accepted by the back office.
//! Chromium and chromedriver must be installed (see `.ci/run`); without
//! them this test fails and says how to install them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::browser::Browser;
use creditops_tests::{Backend, TestPlatform};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_browser_loan_officer_casts_the_first_vote() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");
    let case = p.draft_case("250000.00").await;
    let id = case["id"].as_str().expect("id").to_owned();
    let market = p.url("market", "");
    let browser = Browser::start().await;

    browser.goto(&format!("{market}/login")).await;
    browser.screenshot("login").await;
    browser.assert_accessible("login").await;
    browser.type_into("#user", "lo-2").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/cases").await;
    let list = browser.wait_for_text("Signed in as").await;
    assert!(list.contains("Signed in as lo-2"), "{list}");
    assert!(list.contains("250,000.00 EUR"), "{list}");
    browser.screenshot("cases").await;
    browser.assert_accessible("cases").await;

    browser
        .click(&format!("a[href='/console/cases/{id}']"))
        .await;
    let page = browser.wait_for_text("Credit file").await;
    assert!(page.contains("Cast the first (market) vote"), "{page}");
    assert!(page.contains("lo-1"), "the originator is shown: {page}");
    browser
        .type_into("#rationale", "Cash flow covers the debt service twice.")
        .await;
    browser.screenshot("case").await;
    browser.assert_accessible("case").await;
    browser
        .click("form[action$='/first-vote'] button[type=submit]")
        .await;
    let voted = browser.wait_for_text("Your vote is recorded.").await;
    assert!(voted.contains("Awaiting second vote"), "{voted}");
    assert!(
        voted.contains("Cash flow covers the debt service twice."),
        "{voted}"
    );
    browser.screenshot("voted").await;
    browser.assert_accessible("voted").await;

    // The same vote is what the API shows.
    let api = p
        .call(
            "lo-1",
            "market",
            reqwest::Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["votes"][0]["voter"], "lo-2");

    // The browser's market session does not open the back-office console:
    // the browser sends the host's cookies to every port.
    browser
        .goto(&format!("{}/console", p.url("backoffice", "")))
        .await;
    // (it asks for its own sign-in)
    browser.wait_for_url("/login").await;

    browser.goto(&format!("{market}/console/cases/new")).await;
    browser.screenshot("new_case").await;
    browser.assert_accessible("new_case").await;
    browser
        .click("form[action='/console/cases'] button[type=submit]")
        .await;
    browser
        .wait_for_text("Please check the marked fields.")
        .await;
    browser.screenshot("new_case_errors").await;
    browser.assert_accessible("new_case_errors").await;

    browser.quit().await;
    p.stop().await;
}
