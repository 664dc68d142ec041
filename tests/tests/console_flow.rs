//! The desks together in real headless Chromium (issue 19): four people,
//! each in their own browser session at their own service (two loan
//! officers, a risk controller, a credit analyst), take a credit from a new
//! borrower to approval and disbursement; the internal auditor then finds
//! its story proven intact. Every page on the way
//! is checked with axe-core when `CREDITOPS_AXE` names it (CI does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::browser::Browser;
use creditops_tests::{Backend, TestPlatform};

/// A browser session of `user` signed in at `service`'s console.
async fn signed_in(p: &TestPlatform, service: &str, user: &str) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&p.url(service, "/login")).await;
    browser.type_into("#user", user).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text(&format!("Signed in as {user}")).await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_four_people_take_a_credit_from_borrower_to_disbursement() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");

    // Loan officer lo-1 registers the borrower and opens the case.
    let lo1 = signed_in(&p, "market", "lo-1").await;
    lo1.click("a[href='/console/borrowers/new']").await;
    lo1.wait_for_text("New borrower").await;
    lo1.assert_accessible("new_borrower").await;
    lo1.type_into("#name", "Werkzeugbau Muster GmbH").await;
    lo1.type_into("#country", "DE").await;
    lo1.type_into("#sector", "C25").await;
    lo1.click("form[action='/console/borrowers'] button[type=submit]")
        .await;
    lo1.wait_for_text("The borrower is registered").await;
    lo1.screenshot("flow_new_case").await;
    lo1.assert_accessible("new_case_prefilled").await;
    let borrower: String = lo1
        .execute(
            "return document.getElementById('borrower_id').value",
            serde_json::json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(borrower.len(), 36, "the new borrower's id is filled in");

    // Risk controller rc-1 proposes the borrower limit at the risk desk;
    // back office approves it from its inbox (R1, R8).
    let rc1 = signed_in(&p, "risk", "rc-1").await;
    rc1.goto(&p.url("risk", "/console/limits/new")).await;
    rc1.wait_for_text("Propose").await;
    rc1.type_into("#key", &borrower).await;
    rc1.type_into("#amount", "5.000.000,00").await;
    rc1.type_into("#reason", "New customer, annual plan").await;
    rc1.click("form[action='/console/limits'] button[type=submit]")
        .await;
    rc1.wait_for_text("The limit is proposed").await;
    rc1.screenshot("flow_limit_proposed").await;
    rc1.assert_accessible("limit_proposed").await;
    rc1.quit().await;
    let ba1 = signed_in(&p, "backoffice", "ba-1").await;
    ba1.click("a[href='/console/limits']").await;
    ba1.wait_for_text("Werkzeugbau Muster GmbH").await;
    ba1.screenshot("flow_limit_inbox").await;
    ba1.assert_accessible("limit_inbox").await;
    ba1.click("form[action$='/approve'] button[type=submit]")
        .await;
    ba1.wait_for_text("The limit is approved").await;

    // lo-1 opens the case for the registered borrower.
    lo1.type_into("#amount", "750.000,00").await;
    lo1.type_into("#product", "term_loan").await;
    lo1.type_into("#term_months", "60").await;
    lo1.type_into("#purpose", "New CNC machining centre").await;
    lo1.click("form[action='/console/cases'] button[type=submit]")
        .await;
    lo1.wait_for_text("The case is open as a draft.").await;
    let case_url = lo1.current_url().await;
    let case_path = case_url
        .split("/console/cases/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let case_page = format!("/console/cases/{case_path}");

    // Back office rates the borrower from its drafts tab: no first vote
    // without a rating set by back office (L4).
    ba1.click("a[href='/console/queue?state=draft']").await;
    ba1.wait_for_text("750,000.00 EUR").await;
    ba1.assert_accessible("drafts").await;
    ba1.click(&format!("a[href='{case_page}']")).await;
    ba1.wait_for_text("No rating by back office").await;
    ba1.type_into("#rating-class", "6").await;
    ba1.type_into("#rating-pd", "0.0020").await;
    ba1.type_into(
        "#rating-reason",
        "Annual accounts 2025, corporate scorecard",
    )
    .await;
    ba1.click("form[action$='/rating'] button[type=submit]")
        .await;
    let rated = ba1.wait_for_text("The rating is recorded.").await;
    assert!(rated.contains("0.2 %"), "{rated}");
    ba1.screenshot("flow_rating").await;
    ba1.assert_accessible("rating").await;

    // lo-2 casts the first vote: lo-1 opened the case and may not (S6).
    let lo2 = signed_in(&p, "market", "lo-2").await;
    lo2.goto(&p.url("market", &case_page)).await;
    lo2.wait_for_text("Cast the first (market) vote").await;
    lo2.type_into("#rationale", "Order book covers the debt service.")
        .await;
    lo2.click("form[action$='/first-vote'] button[type=submit]")
        .await;
    lo2.wait_for_text("Your vote is recorded.").await;
    lo2.quit().await;

    // ba-1 finds it in the queue and casts the second vote beside the first
    // vote and the risk gate.
    ba1.click("a[href='/console/queue']").await;
    ba1.wait_for_text("750,000.00 EUR").await;
    ba1.screenshot("flow_queue").await;
    ba1.assert_accessible("queue").await;
    ba1.click(&format!("a[href='{case_page}']")).await;
    let seen = ba1.wait_for_text("Risk gate (R4)").await;
    assert!(
        seen.contains("Order book covers the debt service."),
        "{seen}"
    );
    assert!(seen.contains("binds to the version shown"), "{seen}");
    assert!(
        seen.contains("Every limit and the liquidity floor are kept."),
        "{seen}"
    );
    ba1.screenshot("flow_second_vote").await;
    ba1.assert_accessible("second_vote").await;
    // The vote with the keyboard alone, from the first choice of the form:
    // Space chooses approve, Tab moves on (past the other choice of the
    // radio group) to the rationale, Tab to the conditions precedent (L5),
    // Tab to the button, Enter submits.
    ba1.focus("input[name=decision][value=approve]").await;
    ba1.keyboard(
        "\u{E00D}\u{E004}Collateral and rating confirmed.\u{E004}Land charge registered\u{E004}\u{E007}",
    )
    .await;
    let decided = ba1.wait_for_text("Your vote is recorded.").await;
    assert!(decided.contains("Approved"), "{decided}");
    assert!(decided.contains("Land charge registered"), "{decided}");

    // Market cannot disburse while the condition is open (L5).
    lo1.goto(&p.url("market", &case_page)).await;
    let waiting = lo1.wait_for_text("Conditions precedent").await;
    assert!(waiting.contains("not all signed off"), "{waiting}");
    assert!(!waiting.contains("the case can be disbursed"), "{waiting}");

    // ba-1 signs the condition off with its evidence.
    ba1.goto(&p.url("backoffice", &case_page)).await;
    ba1.wait_for_text("Sign off as met").await;
    ba1.type_into("#evidence-1", "Land register extract of today")
        .await;
    ba1.click("form[action$='/conditions/1/sign-off'] button[type=submit]")
        .await;
    let signed = ba1
        .wait_for_text("The condition is signed off as met.")
        .await;
    assert!(signed.contains("met, signed off by ba-1"), "{signed}");
    ba1.screenshot("flow_condition_signed_off").await;
    ba1.assert_accessible("condition_signed_off").await;
    ba1.quit().await;

    // lo-1 disburses beside the reservation and the LCR check.
    lo1.goto(&p.url("market", &case_page)).await;
    lo1.wait_for_text("the case can be disbursed").await;
    lo1.screenshot("flow_disburse").await;
    lo1.assert_accessible("disburse").await;
    lo1.click("form[action$='/disburse'] button[type=submit]")
        .await;
    let paid = lo1.wait_for_text("The credit is disbursed").await;
    assert!(paid.contains("Disbursed by"), "{paid}");
    lo1.screenshot("flow_disbursed").await;
    lo1.assert_accessible("disbursed").await;
    lo1.quit().await;

    // The internal auditor finds the case and sees its story proven intact
    // against the signed checkpoint (A2).
    let ia1 = signed_in(&p, "audit", "ia-1").await;
    ia1.goto(&p.url("audit", &case_page)).await;
    let story = ia1
        .wait_for_text("Every event of this case is intact")
        .await;
    assert!(
        story.contains("case.disbursed") || story.contains("disbursed"),
        "{story}"
    );
    assert!(!story.contains("NOT verified"), "{story}");
    ia1.screenshot("flow_audit_story").await;
    ia1.assert_accessible("audit_story").await;
    ia1.quit().await;

    let api = p
        .call(
            "ba-2",
            "backoffice",
            reqwest::Method::GET,
            &format!("/v1/cases/{case_path}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["status"], "approved");
    let actions: Vec<String> = p
        .case_events(&case_path)
        .await
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        actions.contains(&"case.disbursed".to_owned()),
        "{actions:?}"
    );
    p.stop().await;
}
