//! The back office's groups of connected clients and related parties in the
//! web console (issue 19) over HTTP on both backends, and once in real
//! headless Chromium: a group is formed, a move into it is proposed by one
//! credit analyst and shows as waiting on the page and in the inbox, the
//! proposer is refused the decision with its rule (V4), a second analyst
//! approves it and the API sees the decision; related parties are recorded
//! as the API records them (S6, V11).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::browser::Browser;
use creditops_tests::console::ConsoleClient;
use creditops_tests::{Backend, TestPlatform, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Signs `user` in at the back-office desk and returns the client.
async fn signed_in(p: &TestPlatform, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url("backoffice", ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

/// A borrower named `name`; returns its id.
async fn borrower(p: &TestPlatform, name: &str) -> String {
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/borrowers",
            Some(json!({"name": name, "country": "DE", "sector": "C25"})),
        )
        .await;
    reply.ok(201)["id"].as_str().unwrap().to_owned()
}

/// The id in the first `/console/groups/proposals/{id}/approve` of `body`.
fn proposal_id(body: &str) -> Option<String> {
    let start = body.find("/console/groups/proposals/")? + "/console/groups/proposals/".len();
    let rest = &body[start..];
    let end = rest.find("/approve")?;
    Some(rest[..end].to_owned())
}

async fn group_move_is_decided_by_a_second_analyst(p: &TestPlatform) {
    let b = borrower(p, "Verbund Maschinenbau GmbH").await;
    let mut ba1 = signed_in(p, "ba-1").await;
    let page = ba1.get("/console/groups").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for needle in [
        "href=\"/console/groups\"",
        "href=\"/console/related-parties\"",
        "Verbund Maschinenbau GmbH",
        "action=\"/console/groups\"",
        "<label for=\"group-id\">",
        "<th scope=\"col\">",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    assert!(!page.body.contains("style="), "no inline style");
    assert!(!page.body.contains("<script"), "no script");
    let csrf = page.csrf().unwrap();

    // A form without its token is refused and nothing is formed.
    let forged = ba1
        .post(
            "/console/groups",
            &[("id", "gcc-forged"), ("name", "Forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

    // A malformed id is refused with what was typed kept.
    let bad = ba1
        .post(
            "/console/groups",
            &[("csrf", &csrf), ("id", "Not An Id"), ("name", "Verbund")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"Verbund\""), "{}", bad.body);

    let formed = ba1
        .post(
            "/console/groups",
            &[("csrf", &csrf), ("id", "gcc-verbund"), ("name", "Verbund")],
        )
        .await;
    assert_eq!(formed.status, StatusCode::SEE_OTHER, "{}", formed.body);
    assert_eq!(formed.location(), Some("/console/groups?done=created"));
    let page = ba1.get("/console/groups?done=created").await;
    assert!(
        page.body
            .contains("The group of connected clients is formed."),
        "{}",
        page.body
    );
    assert!(page.body.contains("gcc-verbund"), "{}", page.body);
    assert!(!page.body.contains("gcc-forged"), "{}", page.body);

    // ba-1 proposes the move: it waits for a second analyst (V4).
    let proposed = ba1
        .post(
            &format!("/console/groups/borrowers/{b}"),
            &[("csrf", &csrf), ("group_id", "gcc-verbund")],
        )
        .await;
    assert_eq!(proposed.status, StatusCode::SEE_OTHER, "{}", proposed.body);
    let page = ba1.get("/console/groups?done=proposed").await;
    assert!(
        page.body
            .contains("waiting for approval by a second analyst"),
        "the pending move shows on the record: {}",
        page.body
    );
    assert!(page.body.contains("no members"), "not yet a member");

    // The proposer's inbox offers no decision on their own proposal.
    let own = ba1.get("/console/groups/proposals").await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert!(
        own.body
            .contains("Your proposal: another analyst decides it"),
        "{}",
        own.body
    );
    assert!(
        own.body.contains("Verbund Maschinenbau GmbH"),
        "{}",
        own.body
    );
    assert!(proposal_id(&own.body).is_none(), "no buttons: {}", own.body);

    // ba-2 sees it with the buttons.
    let mut ba2 = signed_in(p, "ba-2").await;
    let inbox = ba2.get("/console/groups/proposals").await;
    let id = proposal_id(&inbox.body).expect("the approve button");
    let csrf2 = inbox.csrf().unwrap();

    // ba-1 posting the decision anyway is refused with the rule (V4).
    let refused = ba1
        .post(
            &format!("/console/groups/proposals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains(
            "You proposed this move, so another credit analyst must approve or reject it."
        ),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("V4"), "{}", refused.body);

    let approved = ba2
        .post(
            &format!("/console/groups/proposals/{id}/approve"),
            &[("csrf", &csrf2)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let location = approved.location().unwrap().to_owned();
    assert_eq!(
        location,
        "/console/groups/proposals?done=approved&sent_back=0&breaches=0"
    );
    let inbox = ba2.get(&location).await;
    assert!(
        inbox.body.contains("The proposal is approved"),
        "{}",
        inbox.body
    );
    assert!(
        inbox.body.contains("No group move proposals are waiting."),
        "{}",
        inbox.body
    );
    assert!(
        inbox.body.contains("Recently decided") && inbox.body.contains("approved: ba-2"),
        "the decision stays on the record: {}",
        inbox.body
    );
    let page = ba2.get("/console/groups").await;
    assert!(
        !page
            .body
            .contains("waiting for approval by a second analyst"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<li>Verbund Maschinenbau GmbH (DE, C25)</li>"),
        "the borrower is a member now: {}",
        page.body
    );

    // The API sees the same decision.
    let reply = p
        .call(
            "ba-3",
            "backoffice",
            Method::GET,
            &format!("/v1/proposals/{id}"),
            None,
        )
        .await;
    let view = reply.ok(200);
    assert_eq!(view["status"], "approved", "{view}");
    assert_eq!(view["proposed_by"], "ba-1", "{view}");
    assert_eq!(view["decided_by"], "ba-2", "{view}");
    assert_eq!(view["change"]["group_id"], "gcc-verbund", "{view}");

    // German texts.
    ba2.accept_language = "de";
    let german = ba2.get("/console/groups").await;
    assert!(
        german.body.contains("Kreditnehmereinheiten"),
        "{}",
        german.body
    );
}
both_backends!(
    console_groups_move_is_decided_by_a_second_analyst_v4,
    group_move_is_decided_by_a_second_analyst
);

async fn a_rejected_move_changes_nothing(p: &TestPlatform) {
    let b = borrower(p, "Einzel AG").await;
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/groups",
        Some(json!({"id": "gcc-einzel", "name": "Einzel"})),
    )
    .await
    .ok(201);
    // Proposed through the API, rejected at the desk.
    p.call(
        "ba-2",
        "backoffice",
        Method::PUT,
        &format!("/v1/borrowers/{b}/group"),
        Some(json!({"group_id": "gcc-einzel"})),
    )
    .await
    .ok(202);
    let mut ba1 = signed_in(p, "ba-1").await;
    let page = ba1.get("/console/groups").await;
    assert!(
        page.body
            .contains("waiting for approval by a second analyst"),
        "a move proposed through the API shows on the page: {}",
        page.body
    );
    let inbox = ba1.get("/console/groups/proposals").await;
    let id = proposal_id(&inbox.body).expect("the buttons");
    let csrf = inbox.csrf().unwrap();
    let rejected = ba1
        .post(
            &format!("/console/groups/proposals/{id}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.body);
    let page = ba1.get("/console/groups").await;
    assert!(page.body.contains("no members"), "{}", page.body);
    let inbox = ba1.get("/console/groups/proposals?done=rejected").await;
    assert!(
        inbox.body.contains("The proposal is rejected."),
        "{}",
        inbox.body
    );
    assert!(
        inbox.body.contains("rejected: ba-1"),
        "the rejection stays on the record: {}",
        inbox.body
    );
    // Deciding it again is refused in plain words.
    let again = ba1
        .post(
            &format!("/console/groups/proposals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("role=\"alert\""), "{}", again.body);
    let view = p
        .call(
            "ba-3",
            "backoffice",
            Method::GET,
            &format!("/v1/proposals/{id}"),
            None,
        )
        .await;
    assert_eq!(view.ok(200)["status"], "rejected");
}
both_backends!(
    console_groups_a_rejected_move_changes_nothing_v4,
    a_rejected_move_changes_nothing
);

/// Hardening finding 2 at the desk: a member joins a group that holds an
/// approved EUR 900k credit; its EUR 400k case, first-voted at level 2,
/// now needs level 3, so the approval sends it back to voting and the
/// inbox says so (V4, R2).
async fn an_approved_move_sends_open_cases_back(p: &TestPlatform) {
    p.call(
        "ba-3",
        "backoffice",
        Method::POST,
        "/v1/groups",
        Some(json!({"id": "gcc-back", "name": "Back"})),
    )
    .await
    .ok(201);
    let body = json!({"name": "Halter GmbH", "country": "DE", "sector": "C25"});
    let held = p.borrower_with_limit("lo-1", body).await;
    let body = json!({"name": "Mitglied GmbH", "country": "DE", "sector": "C25"});
    let member = p.borrower_with_limit("lo-1", body).await;
    let proposed = p
        .call(
            "ba-3",
            "backoffice",
            Method::PUT,
            &format!("/v1/borrowers/{held}/group"),
            Some(json!({"group_id": "gcc-back"})),
        )
        .await;
    p.approve_pending(&proposed, "bb-1", "backoffice")
        .await
        .ok(200);
    let vote = |decision: &str| json!({"decision": decision, "rationale": "reviewed the file", "version": 1});
    let case = |borrower: &str, amount: &str| json!({"borrower_id": borrower, "amount": amount, "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "machinery"});
    let approved = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(case(&held, "900000.00")),
        )
        .await;
    let approved = approved.ok(201)["id"].as_str().unwrap().to_owned();
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &format!("/v1/cases/{approved}/first-vote"),
        Some(vote("approve")),
    )
    .await
    .ok(200);
    p.call(
        "ba-2",
        "backoffice",
        Method::POST,
        &format!("/v1/cases/{approved}/second-vote"),
        Some(vote("approve")),
    )
    .await
    .ok(200);
    let open = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(case(&member, "400000.00")),
        )
        .await;
    let open = open.ok(201)["id"].as_str().unwrap().to_owned();
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &format!("/v1/cases/{open}/first-vote"),
        Some(vote("approve")),
    )
    .await
    .ok(200);

    let mut ba1 = signed_in(p, "ba-1").await;
    let page = ba1.get("/console/groups").await;
    let csrf = page.csrf().unwrap();
    let proposed = ba1
        .post(
            &format!("/console/groups/borrowers/{member}"),
            &[("csrf", &csrf), ("group_id", "gcc-back")],
        )
        .await;
    assert_eq!(proposed.status, StatusCode::SEE_OTHER, "{}", proposed.body);
    let mut ba2 = signed_in(p, "ba-2").await;
    let inbox = ba2.get("/console/groups/proposals").await;
    assert!(inbox.body.contains("Mitglied GmbH"), "{}", inbox.body);
    let id = proposal_id(&inbox.body).unwrap();
    let decided = ba2
        .post(
            &format!("/console/groups/proposals/{id}/approve"),
            &[("csrf", &inbox.csrf().unwrap())],
        )
        .await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.body);
    let location = decided.location().unwrap().to_owned();
    assert!(location.contains("sent_back=1"), "{location}");
    let inbox = ba2.get(&location).await;
    assert!(
        inbox
            .body
            .contains("Open cases sent back to voting (V4): 1."),
        "{}",
        inbox.body
    );
    let case = p
        .call(
            "ba-3",
            "backoffice",
            Method::GET,
            &format!("/v1/cases/{open}"),
            None,
        )
        .await;
    assert_ne!(
        case.ok(200)["status"],
        "awaiting_second_vote",
        "the case went back to voting: {}",
        case.body
    );
}
both_backends!(
    console_groups_an_approved_move_sends_open_cases_back_v4,
    an_approved_move_sends_open_cases_back
);

async fn related_party_is_recorded(p: &TestPlatform) {
    let b = borrower(p, "Familien KG").await;
    let mut ba1 = signed_in(p, "ba-1").await;
    let page = ba1.get("/console/related-parties").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("No related parties are recorded."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<label for=\"party-staff\">"),
        "{}",
        page.body
    );
    let csrf = page.csrf().unwrap();
    // An unknown person is refused with what was typed kept.
    let bad = ba1
        .post(
            "/console/related-parties",
            &[
                ("csrf", &csrf),
                ("borrower_id", &b),
                ("staff_id", "nobody-9"),
                ("relation", "brother of the owner"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    assert!(
        bad.body.contains("value=\"brother of the owner\""),
        "{}",
        bad.body
    );
    let recorded = ba1
        .post(
            "/console/related-parties",
            &[
                ("csrf", &csrf),
                ("borrower_id", &b),
                ("staff_id", "lo-3"),
                ("relation", "brother of the owner"),
            ],
        )
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let page = ba1.get("/console/related-parties?done=recorded").await;
    assert!(
        page.body.contains("The related party is recorded."),
        "{}",
        page.body
    );
    assert!(page.body.contains("Familien KG (DE, C25)"), "{}", page.body);
    assert!(page.body.contains("lo-3"), "{}", page.body);
    assert!(page.body.contains("brother of the owner"), "{}", page.body);
    // The same relation through the API is a conflict: it is recorded.
    let again = p
        .call(
            "ba-2",
            "backoffice",
            Method::POST,
            "/v1/related-parties",
            Some(json!({"borrower_id": b, "staff_id": "lo-3", "relation": "brother"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}
both_backends!(
    console_groups_related_party_is_recorded_v11,
    related_party_is_recorded
);

async fn other_desks_have_no_group_pages(p: &TestPlatform) {
    let mut market = ConsoleClient::new(&p.url("market", ""));
    let answer = market.login("lo-1").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    for path in [
        "/console/groups",
        "/console/groups/proposals",
        "/console/related-parties",
    ] {
        let page = market.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.body);
    }
}
both_backends!(
    console_groups_other_desks_have_no_group_pages_s1,
    other_desks_have_no_group_pages
);

/// The pages in real headless Chromium: ba-1 forms a group, proposes a
/// move and records a related party; ba-2 approves the move in a second
/// session. axe-core runs on every page state when `CREDITOPS_AXE` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_groups_browser_walks_the_pages() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");
    let b = borrower(&p, "Browser Holding GmbH").await;
    let desk = p.url("backoffice", "");
    let browser = Browser::start().await;

    browser.goto(&format!("{desk}/login")).await;
    browser.type_into("#user", "ba-1").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/queue").await;
    browser.click("nav a[href='/console/groups']").await;
    browser.wait_for_url("/console/groups").await;
    let groups = browser.wait_for_text("Borrowers and their group").await;
    assert!(groups.contains("Browser Holding GmbH"), "{groups}");
    browser.assert_accessible("groups_empty").await;

    browser.type_into("#group-id", "gcc-browser").await;
    browser.type_into("#group-name", "Browser group").await;
    browser
        .click("form[action='/console/groups'] button[type=submit]")
        .await;
    browser
        .wait_for_text("The group of connected clients is formed.")
        .await;
    browser.assert_accessible("groups_formed").await;

    browser
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            json!([format!("#move-{b}"), "gcc-browser"]),
        )
        .await;
    browser
        .click(&format!(
            "form[action='/console/groups/borrowers/{b}'] button[type=submit]"
        ))
        .await;
    let waiting = browser
        .wait_for_text("waiting for approval by a second analyst")
        .await;
    assert!(waiting.contains("Browser group"), "{waiting}");
    browser.screenshot("groups_move_proposed").await;
    browser.assert_accessible("groups_move_proposed").await;

    browser
        .goto(&format!("{desk}/console/groups/proposals"))
        .await;
    browser
        .wait_for_text("Your proposal: another analyst decides it")
        .await;
    browser.assert_accessible("groups_inbox_own").await;

    browser
        .click("nav a[href='/console/related-parties']")
        .await;
    browser.wait_for_text("Record a related party").await;
    browser.assert_accessible("related_empty").await;
    browser
        .execute(
            "document.querySelector('#party-borrower').value = arguments[0];",
            json!([b]),
        )
        .await;
    browser.type_into("#party-staff", "lo-3").await;
    browser
        .type_into("#party-relation", "spouse of the owner")
        .await;
    browser
        .click("form[action='/console/related-parties'] button[type=submit]")
        .await;
    let recorded = browser
        .wait_for_text("The related party is recorded.")
        .await;
    assert!(recorded.contains("spouse of the owner"), "{recorded}");
    browser.screenshot("related_recorded").await;
    browser.assert_accessible("related_recorded").await;

    browser
        .click("form[action='/logout'] button[type=submit]")
        .await;
    browser.wait_for_url("/login").await;
    browser.type_into("#user", "ba-2").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/queue").await;
    browser
        .goto(&format!("{desk}/console/groups/proposals"))
        .await;
    browser.wait_for_text("Browser Holding GmbH").await;
    browser.assert_accessible("groups_inbox_other").await;
    browser
        .click("form[action$='/approve'] button[type=submit]")
        .await;
    browser.wait_for_text("The proposal is approved").await;
    browser.assert_accessible("groups_approved").await;
    browser.goto(&format!("{desk}/console/groups")).await;
    let members = browser.wait_for_text("Borrowers and their group").await;
    assert!(
        !members.contains("waiting for approval by a second analyst"),
        "{members}"
    );
    browser.assert_accessible("groups_member").await;

    browser.quit().await;
    p.stop().await;
}
