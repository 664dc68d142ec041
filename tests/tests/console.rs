//! The web console over HTTP (issue 19): sessions, their binding to the
//! service that issued them, the CSRF and Origin guard, the security
//! headers, and the market desk running the API's rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::console::ConsoleClient;
use creditops_tests::{TestPlatform, both_backends};
use reqwest::StatusCode;

/// Signs `user` in at `service`'s console and returns the client.
async fn signed_in(p: &TestPlatform, service: &str, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url(service, ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

async fn login_starts_a_session_and_logout_ends_it(p: &TestPlatform) {
    let mut console = signed_in(p, "market", "lo-2").await;
    let (name, _) = console
        .cookie("-session")
        .expect("a session cookie")
        .clone();
    assert_eq!(name, "creditops-market-session");
    let cases = console.get("/console/cases").await;
    assert_eq!(cases.status, StatusCode::OK, "{}", cases.body);
    assert!(
        cases.body.contains("lo-2"),
        "the page names who is signed in"
    );
    let stolen = console.cookies.clone();

    let csrf = cases.csrf().expect("the logout form carries the token");
    let out = console.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/login"));
    assert!(
        console.cookie("-session").is_none(),
        "logout deletes the cookie"
    );

    // The ended session is refused even with the old cookie (revocable).
    let mut replay = ConsoleClient::new(&p.url("market", ""));
    replay.cookies = stolen;
    let again = replay.get("/console/cases").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location(), Some("/login"));
}
both_backends!(
    console_login_starts_a_session_and_logout_ends_it,
    login_starts_a_session_and_logout_ends_it
);

async fn login_is_refused_without_a_role_of_the_desk(p: &TestPlatform) {
    let mut console = ConsoleClient::new(&p.url("market", ""));
    let analyst = console.login("ba-1").await;
    assert_eq!(analyst.status, StatusCode::FORBIDDEN);
    assert!(
        analyst.body.contains("You hold no role at this desk today"),
        "{}",
        analyst.body
    );
    assert!(console.cookie("-session").is_none());
    let unknown = console.login("nobody-9").await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert!(
        unknown.body.contains("not active in the staff directory"),
        "{}",
        unknown.body
    );
}
both_backends!(
    console_login_is_refused_without_a_role_of_the_desk,
    login_is_refused_without_a_role_of_the_desk
);

async fn market_session_is_not_accepted_by_the_back_office(p: &TestPlatform) {
    let market = signed_in(p, "market", "lo-2").await;
    let (_, token) = market.cookie("-session").expect("session").clone();
    let mut backoffice = ConsoleClient::new(&p.url("backoffice", ""));
    // Under its own name (as a browser sends every cookie of the host) and
    // under the back office's name: neither opens a back-office session.
    backoffice.cookies = vec![
        ("creditops-market-session".to_owned(), token.clone()),
        ("creditops-backoffice-session".to_owned(), token),
    ];
    let page = backoffice.get("/console").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/login"));
    // The back office's own sign-in works for its own people.
    let mut analyst = signed_in(p, "backoffice", "ba-1").await;
    let home = analyst.get("/console").await;
    assert_eq!(home.location(), Some("/console/queue"));
    assert_eq!(analyst.get("/console/queue").await.status, StatusCode::OK);
}
both_backends!(
    console_market_session_is_not_accepted_by_the_back_office,
    market_session_is_not_accepted_by_the_back_office
);

async fn forms_without_their_token_or_origin_are_refused_and_audited(p: &TestPlatform) {
    let case = p.draft_case("100000.00").await;
    let id = case["id"].as_str().expect("id").to_owned();
    let mut console = signed_in(p, "market", "lo-2").await;
    let page = console.get(&format!("/console/cases/{id}")).await;
    let csrf = page.csrf().expect("token");
    let path = format!("/console/cases/{id}/first-vote");
    let vote = [
        ("decision", "approve"),
        ("rationale", "fine"),
        ("version", "1"),
    ];

    let without = console.post(&path, &vote).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "{}", without.body);
    let mut wrong = vote.to_vec();
    wrong.push(("csrf", "not-the-token"));
    assert_eq!(
        console.post(&path, &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    let mut right = vote.to_vec();
    right.push(("csrf", &csrf));
    let foreign = console
        .post_from(&path, &right, Some("http://attacker.example"))
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(
        console.post_from(&path, &right, None).await.status,
        StatusCode::FORBIDDEN
    );

    let after = p
        .call(
            "lo-1",
            "market",
            reqwest::Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert!(
        after.ok(200)["votes"].as_array().is_some_and(Vec::is_empty),
        "nothing was voted"
    );
    let refusals = p
        .case_events(&id)
        .await
        .into_iter()
        .filter(|e| {
            e["body"]["action"] == "request.refused" && e["body"]["data"]["problem"] == "csrf"
        })
        .count();
    assert_eq!(refusals, 4, "every refused form is audited");

    // With its token, from its origin, the same form is accepted.
    let accepted = console.post(&path, &right).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
}
both_backends!(
    console_forms_without_their_token_or_origin_are_refused_and_audited,
    forms_without_their_token_or_origin_are_refused_and_audited
);

async fn pages_carry_a_strict_content_security_policy(p: &TestPlatform) {
    let mut console = signed_in(p, "market", "lo-2").await;
    for path in [
        "/login",
        "/console/cases",
        "/console/cases/new",
        "/console/assets/console.css",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let csp = page.headers["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
        assert!(
            !page.body.contains("<script") && !page.body.contains("style="),
            "{path}"
        );
    }
    // Page weight: a page with its one stylesheet stays far below 150 KB.
    let css = console.get("/console/assets/console.css").await.body.len();
    for path in ["/login", "/console/cases", "/console/cases/new"] {
        let html = console.get(path).await.body.len();
        println!("page weight {path}: {html} B + {css} B stylesheet");
        assert!(
            html + css < 150 * 1024,
            "{path} weighs {html} + {css} bytes"
        );
    }
    let login = ConsoleClient::new(&p.url("market", "")).get("/login").await;
    let cookie = login.headers["set-cookie"].to_str().expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}
both_backends!(
    console_pages_carry_a_strict_content_security_policy,
    pages_carry_a_strict_content_security_policy
);

async fn first_vote_refusals_name_their_rule(p: &TestPlatform) {
    // lo-1 opened the case: the first vote must come from somebody else (S6).
    let case = p.draft_case("100000.00").await;
    let id = case["id"].as_str().expect("id").to_owned();
    let mut console = signed_in(p, "market", "lo-1").await;
    let page = console.get(&format!("/console/cases/{id}")).await;
    let csrf = page.csrf().expect("token");
    let refused = console
        .post(
            &format!("/console/cases/{id}/first-vote"),
            &[
                ("decision", "approve"),
                ("rationale", "looks fine"),
                ("version", "1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("Rule S6"), "{}", refused.body);
    assert!(
        refused
            .body
            .contains("another loan officer must cast the first vote")
    );
    assert!(
        refused.body.contains("looks fine"),
        "the typed rationale is kept"
    );
    let audited = p
        .case_events(&id)
        .await
        .into_iter()
        .any(|e| e["body"]["action"] == "request.refused" && e["body"]["rule"] == "S6");
    assert!(audited, "the refusal is audited with its rule");
}
both_backends!(
    console_first_vote_refusals_name_their_rule,
    first_vote_refusals_name_their_rule
);

async fn new_case_form_shows_each_field_problem(p: &TestPlatform) {
    let mut console = signed_in(p, "market", "lo-2").await;
    console.accept_language = "de-DE,de;q=0.9";
    let form = console.get("/console/cases/new").await;
    assert!(
        form.body.contains("Neuer Kreditfall"),
        "German from Accept-Language"
    );
    let csrf = form.csrf().expect("token");
    let bad = console
        .post(
            "/console/cases",
            &[
                ("csrf", &csrf),
                ("borrower_id", "x"),
                ("amount", "abc"),
                ("currency", "EUR"),
                ("product", ""),
                ("term_months", "0"),
                ("purpose", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in [
        "borrower_id-error",
        "amount-error",
        "term_months-error",
        "product-error",
        "purpose-error",
    ] {
        assert!(bad.body.contains(field), "{field} is marked: {}", bad.body);
    }

    let borrower = p
        .borrower_with_limit(
            "lo-2",
            serde_json::json!({"name": "Beispiel AG", "country": "DE", "sector": "C"}),
        )
        .await;
    let made = console
        .post(
            "/console/cases",
            &[
                ("csrf", &csrf),
                ("borrower_id", &borrower),
                ("amount", "1.250.000,00"),
                ("currency", "EUR"),
                ("product", "term_loan"),
                ("term_months", "60"),
                ("purpose", "Maschinen"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let page = console.get(made.location().expect("to the case")).await;
    assert!(page.body.contains("1.250.000,00 EUR"), "{}", page.body);
    assert!(page.body.contains("Der Fall ist als Entwurf angelegt."));
}
both_backends!(
    console_new_case_form_shows_each_field_problem,
    new_case_form_shows_each_field_problem
);

/// A draft of `lo-1` with `lo-2`'s approving first vote: a case in the
/// back office's queue. Returns its id.
async fn awaiting_second_vote(p: &TestPlatform, amount: &str) -> String {
    let case = p.draft_case(amount).await;
    let id = case["id"].as_str().expect("id").to_owned();
    p.call(
        "lo-2",
        "market",
        reqwest::Method::POST,
        &format!("/v1/cases/{id}/first-vote"),
        Some(serde_json::json!({
            "decision": "approve",
            "rationale": "Cash flow covers the debt service twice.",
            "version": case["version"],
        })),
    )
    .await
    .ok(200);
    id
}

async fn back_office_votes_second_beside_the_first_vote_and_the_gate(p: &TestPlatform) {
    let id = awaiting_second_vote(p, "100000.00").await;
    let mut console = signed_in(p, "backoffice", "ba-1").await;
    let home = console.get("/console").await;
    assert_eq!(home.location(), Some("/console/queue"));
    let queue = console.get("/console/queue").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert!(queue.body.contains(&format!("/console/cases/{id}")));
    assert!(queue.body.contains("100,000.00 EUR"), "{}", queue.body);
    // The amount filter narrows the queue; a filter it cannot read says so.
    let above = console.get("/console/queue?min=200000").await;
    assert!(!above.body.contains(&format!("/console/cases/{id}")));
    let bad = console.get("/console/queue?min=lots").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Enter amounts as numbers"));

    let page = console.get(&format!("/console/cases/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for shown in [
        "First vote (market)",
        "lo-2",
        "Cash flow covers the debt service twice.",
        "binds to the version shown",
        "Risk gate (R4)",
        "borrower_limit",
        "Cast the second (back-office) vote",
        "Return to market",
    ] {
        assert!(page.body.contains(shown), "{shown} is shown: {}", page.body);
    }
    let csrf = page.csrf().expect("token");
    // A vote without a decision is not taken for an approval.
    let undecided = console
        .post(
            &format!("/console/cases/{id}/second-vote"),
            &[("csrf", &csrf), ("version", "1"), ("rationale", "fine")],
        )
        .await;
    assert_eq!(undecided.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(undecided.body.contains("fine"), "the rationale is kept");
    // A vote on an older version than the one shown is refused (V3).
    let stale = console
        .post(
            &format!("/console/cases/{id}/second-vote"),
            &[
                ("csrf", &csrf),
                ("version", "0"),
                ("decision", "approve"),
                ("rationale", "fine"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(stale.body.contains("Rule V3"), "{}", stale.body);

    let voted = console
        .post(
            &format!("/console/cases/{id}/second-vote"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("decision", "approve"),
                ("rationale", "Collateral and rating confirmed."),
            ],
        )
        .await;
    assert_eq!(voted.status, StatusCode::SEE_OTHER, "{}", voted.body);
    let after = console.get(voted.location().expect("to the case")).await;
    assert!(after.body.contains("Your vote is recorded."));
    assert!(after.body.contains("Approved"), "{}", after.body);
    assert!(!after.body.contains("Cast the second (back-office) vote"));
    // The API sees the same decision.
    let api = p
        .call(
            "ba-2",
            "backoffice",
            reqwest::Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["status"], "approved");
    assert_eq!(api.ok(200)["votes"][1]["voter"], "ba-1");
    let refusals: Vec<_> = p
        .case_events(&id)
        .await
        .into_iter()
        .filter(|e| e["body"]["action"] == "request.refused")
        .collect();
    assert!(
        refusals.iter().any(|e| e["body"]["rule"] == "V3"),
        "the stale vote's refusal is audited: {refusals:?}"
    );
}
both_backends!(
    console_back_office_votes_second_beside_the_first_vote_and_the_gate,
    back_office_votes_second_beside_the_first_vote_and_the_gate
);

async fn back_office_returns_a_case_with_its_reason(p: &TestPlatform) {
    let id = awaiting_second_vote(p, "100000.00").await;
    let mut console = signed_in(p, "backoffice", "ba-2").await;
    let page = console.get(&format!("/console/cases/{id}")).await;
    let csrf = page.csrf().expect("token");
    let empty = console
        .post(
            &format!("/console/cases/{id}/return"),
            &[("csrf", &csrf), ("reason", "  ")],
        )
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    let returned = console
        .post(
            &format!("/console/cases/{id}/return"),
            &[("csrf", &csrf), ("reason", "Collateral valuation missing.")],
        )
        .await;
    assert_eq!(returned.status, StatusCode::SEE_OTHER, "{}", returned.body);
    let after = console.get(returned.location().expect("to the case")).await;
    assert!(after.body.contains("The case is back with market."));
    // Market reads the reason on the case and may vote again.
    let mut market = signed_in(p, "market", "lo-2").await;
    let seen = market.get(&format!("/console/cases/{id}")).await;
    assert!(
        seen.body.contains("Collateral valuation missing."),
        "{}",
        seen.body
    );
    assert!(seen.body.contains("Cast the first (market) vote"));
    // The return is no longer offered once the case is with market.
    let again = console.get(&format!("/console/cases/{id}")).await;
    assert!(!again.body.contains("Return the case"));
}
both_backends!(
    console_back_office_returns_a_case_with_its_reason,
    back_office_returns_a_case_with_its_reason
);

async fn market_lists_only_its_units_cases(p: &TestPlatform) {
    // A loan officer of another market unit neither lists nor reads a case
    // of the corporate unit (hardening finding 9 holds in the console).
    use creditops_domain::{
        CompetenceGrant, Role, RoleAssignment, Side, StaffId, StaffMember, StaffStatus,
        UnitAssignment, UnitId,
    };
    let year_ago = chrono::Utc::now() - chrono::Duration::days(365);
    let retail = UnitId::parse("market-retail").unwrap();
    let mut tx = p.store.begin().await.unwrap();
    tx.upsert_unit(&retail, "Retail Banking", Side::Market)
        .await
        .unwrap();
    tx.insert_staff(&StaffMember {
        id: StaffId::parse("lr-1").unwrap(),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: retail,
            side: Side::Market,
            valid_from: year_ago,
            valid_to: None,
        }],
        roles: vec![RoleAssignment {
            role: Role::LoanOfficer,
            valid_from: year_ago,
            valid_to: None,
        }],
        competences: vec![CompetenceGrant {
            side: Side::Market,
            level: 2,
            valid_from: year_ago,
            valid_to: None,
        }],
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let case = p.draft_case("100000.00").await;
    let id = case["id"].as_str().expect("id").to_owned();
    let mut own = signed_in(p, "market", "lo-2").await;
    assert!(own.get("/console/cases").await.body.contains(&id));
    let mut other = signed_in(p, "market", "lr-1").await;
    let list = other.get("/console/cases").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(!list.body.contains(&id), "{}", list.body);
    let page = other.get(&format!("/console/cases/{id}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
}
both_backends!(
    console_market_lists_only_its_units_cases,
    market_lists_only_its_units_cases
);

async fn market_registers_a_borrower_and_opens_its_case(p: &TestPlatform) {
    let mut console = signed_in(p, "market", "lo-1").await;
    let form = console.get("/console/borrowers/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf().expect("token");
    // Spellings a sector or country limit would not see are refused beside
    // their field (hardening finding 1); what was typed stays.
    let wrong = console
        .post(
            "/console/borrowers",
            &[
                ("csrf", &csrf),
                ("name", "Beispiel AG"),
                ("country", "de"),
                ("sector", "c25"),
            ],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("id=\"country-error\""),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("id=\"sector-error\""), "{}", wrong.body);
    assert!(wrong.body.contains("Beispiel AG"));
    let made = console
        .post(
            "/console/borrowers",
            &[
                ("csrf", &csrf),
                ("name", "Beispiel AG"),
                ("country", "DE"),
                ("sector", "C25"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let next = made.location().expect("to the new case").to_owned();
    assert!(
        next.starts_with("/console/cases/new?borrower_id="),
        "{next}"
    );
    let borrower = next
        .trim_start_matches("/console/cases/new?borrower_id=")
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let case_form = console.get(&next).await;
    assert!(case_form.body.contains("The borrower is registered"));
    assert!(case_form.body.contains(&format!("value=\"{borrower}\"")));
    // The API knows the borrower, with lo-1 as its relationship manager.
    let api = p
        .call(
            "lo-2",
            "market",
            reqwest::Method::GET,
            &format!("/v1/borrowers/{borrower}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["relationship_manager"], "lo-1");
    assert_eq!(api.ok(200)["sector"], "C25");
}
both_backends!(
    console_market_registers_a_borrower_and_opens_its_case,
    market_registers_a_borrower_and_opens_its_case
);

async fn market_disburses_an_approved_case_once(p: &TestPlatform) {
    let id = awaiting_second_vote(p, "100000.00").await;
    p.call(
        "ba-1",
        "backoffice",
        reqwest::Method::POST,
        &format!("/v1/cases/{id}/second-vote"),
        Some(serde_json::json!({
            "decision": "approve", "rationale": "confirmed", "version": 1
        })),
    )
    .await
    .ok(200);
    let mut console = signed_in(p, "market", "lo-1").await;
    let page = console.get(&format!("/console/cases/{id}")).await;
    for shown in [
        "Disbursement",
        "100,000.00 EUR · active",
        "LCR after disbursement",
        "the case can be disbursed",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    let csrf = page.csrf().expect("token");
    let paid = console
        .post(&format!("/console/cases/{id}/disburse"), &[("csrf", &csrf)])
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
    let after = console.get(paid.location().expect("to the case")).await;
    assert!(
        after.body.contains("The credit is disbursed"),
        "{}",
        after.body
    );
    assert!(after.body.contains("consumed"));
    assert!(after.body.contains("Disbursed by"));
    assert!(!after.body.contains("/disburse\""), "no second button");
    // A second disbursement (a replayed form) is refused under R5, audited.
    let again = console
        .post(&format!("/console/cases/{id}/disburse"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("Rule R5"), "{}", again.body);
    let events = p.case_events(&id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["body"]["action"] == "case.disbursed")
            .count(),
        1
    );
    assert!(
        events
            .iter()
            .any(|e| e["body"]["action"] == "request.refused" && e["body"]["rule"] == "R5")
    );
}
both_backends!(
    console_market_disburses_an_approved_case_once,
    market_disburses_an_approved_case_once
);

async fn back_office_decides_limit_proposals_from_its_inbox(p: &TestPlatform) {
    let borrower = p
        .call(
            "lo-1",
            "market",
            reqwest::Method::POST,
            "/v1/borrowers",
            Some(serde_json::json!({"name": "Inbox GmbH", "country": "DE", "sector": "C25"})),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let propose = |amount: &'static str| {
        let borrower = borrower.clone();
        async move {
            p.call(
                "rc-1",
                "risk",
                reqwest::Method::POST,
                "/v1/limits",
                Some(serde_json::json!({
                    "kind": "borrower", "key": borrower, "amount": amount,
                    "reason": "annual review"
                })),
            )
            .await
            .ok(201)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let first = propose("2000000").await;
    let mut console = signed_in(p, "backoffice", "ba-1").await;
    let inbox = console.get("/console/limits").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    for shown in ["Inbox GmbH", "2,000,000.00 EUR", "rc-1", "annual review"] {
        assert!(inbox.body.contains(shown), "{shown}: {}", inbox.body);
    }
    let csrf = inbox.csrf().expect("token");
    let approved = console
        .post(
            &format!("/console/limits/{first}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let after = console.get(approved.location().unwrap()).await;
    assert!(after.body.contains("The limit is approved"));
    assert!(!after.body.contains(&first));
    // Deciding it again is refused: it is decided already.
    let again = console
        .post(
            &format!("/console/limits/{first}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let second = propose("3000000").await;
    let rejected = console
        .post(
            &format!("/console/limits/{second}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.body);
    let versions = p
        .call(
            "ba-2",
            "backoffice",
            reqwest::Method::GET,
            "/v1/limits/proposals?status=approved",
            None,
        )
        .await;
    assert!(
        versions.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == first.as_str() && v["decided_by"] == "ba-1")
    );
}
both_backends!(
    console_back_office_decides_limit_proposals_from_its_inbox,
    back_office_decides_limit_proposals_from_its_inbox
);

async fn the_language_is_switched_on_the_page_and_kept(p: &TestPlatform) {
    let mut console = signed_in(p, "market", "lo-2").await;
    console.accept_language = "de-DE,de;q=0.9";
    let german = console.get("/console/cases").await;
    assert!(german.body.contains("Kreditfälle") || german.body.contains("Entwurf"));
    assert!(german.body.contains("href=\"/console/lang/en\""));
    // The switch returns to the page it was chosen on, in English from then on.
    let base = p.url("market", "");
    let switched = console
        .get_from(
            "/console/lang/en",
            Some(&format!("{base}/console/cases?state=draft")),
        )
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), Some("/console/cases?state=draft"));
    let english = console.get("/console/cases?state=draft").await;
    assert!(english.body.contains("Draft"), "{}", english.body);
    assert!(english.body.contains("lang=\"en\""));
    // Another site as the page it came from: back to the desk, not there.
    let elsewhere = console
        .get_from(
            "/console/lang/de",
            Some("https://evil.example/console/cases"),
        )
        .await;
    assert_eq!(elsewhere.location(), Some("/console"));
    assert_eq!(
        console.get("/console/lang/fr").await.status,
        StatusCode::NOT_FOUND
    );
}
both_backends!(
    console_the_language_is_switched_on_the_page_and_kept,
    the_language_is_switched_on_the_page_and_kept
);

async fn market_edits_a_draft_and_the_page_says_votes_become_void(p: &TestPlatform) {
    // A case returned by back office holds a first vote on its version 1.
    let id = awaiting_second_vote(p, "100000.00").await;
    p.call(
        "ba-1",
        "backoffice",
        reqwest::Method::POST,
        &format!("/v1/cases/{id}/return"),
        Some(serde_json::json!({"reason": "amount too high"})),
    )
    .await
    .ok(200);
    let mut console = signed_in(p, "market", "lo-1").await;
    let case = console.get(&format!("/console/cases/{id}")).await;
    assert!(case.body.contains(&format!("/console/cases/{id}/edit")));
    let form = console.get(&format!("/console/cases/{id}/edit")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(
        form.body
            .contains("none cast so far counts for the new one")
    );
    assert!(
        form.body
            .contains("First vote (market): lo-2 (Version 1) does not count for the new version"),
        "{}",
        form.body
    );
    let csrf = form.csrf().expect("token");
    let edit = |version: &'static str, amount: &'static str| {
        vec![
            ("version", version),
            ("amount", amount),
            ("currency", "EUR"),
            ("product", "term_loan"),
            ("term_months", "48"),
            ("purpose", "new machinery"),
        ]
    };
    let mut bad = edit("2", "viel");
    bad.push(("csrf", &csrf));
    let refused = console
        .post(&format!("/console/cases/{id}/edit"), &bad)
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("id=\"amount-error\""));
    // The version shown is the one the edit applies to: an older one is
    // refused (V3), nothing saved.
    let mut stale = edit("1", "80.000,00");
    stale.push(("csrf", &csrf));
    let stale = console
        .post(&format!("/console/cases/{id}/edit"), &stale)
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    let version = form
        .body
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let mut good: Vec<(&str, &str)> = edit("0", "80.000,00");
    good[0] = ("version", &version);
    good.push(("csrf", &csrf));
    let saved = console
        .post(&format!("/console/cases/{id}/edit"), &good)
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = console.get(saved.location().unwrap()).await;
    assert!(
        after.body.contains("earlier votes are void"),
        "{}",
        after.body
    );
    let api = p
        .call(
            "lo-2",
            "market",
            reqwest::Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["amount"], "80000.00");
    assert_eq!(api.ok(200)["term_months"], 48);
    // Another unit's officer cannot even open the edit page (finding 9).
    let mut board = signed_in(p, "backoffice", "ba-2").await;
    assert_ne!(
        board.get(&format!("/console/cases/{id}/edit")).await.status,
        StatusCode::OK
    );
}
both_backends!(
    console_market_edits_a_draft_and_the_page_says_votes_become_void,
    market_edits_a_draft_and_the_page_says_votes_become_void
);

async fn back_office_records_and_confirms_a_board_resolution(p: &TestPlatform) {
    // EUR 60m against Tier 1 of EUR 500m: a large exposure (R3), approved
    // only on a confirmed board resolution (V11).
    let case = p.draft_case("60000000.00").await;
    let id = case["id"].as_str().unwrap().to_owned();
    p.call(
        "mb-1",
        "market",
        reqwest::Method::POST,
        &format!("/v1/cases/{id}/first-vote"),
        Some(serde_json::json!({"decision": "approve", "rationale": "strategic client", "version": 1})),
    )
    .await
    .ok(200);
    let mut analyst = signed_in(p, "backoffice", "ba-1").await;
    let page = analyst.get(&format!("/console/cases/{id}")).await;
    assert!(
        page.body.contains("Board resolution (V11)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Large exposure"), "{}", page.body);
    let csrf = page.csrf().unwrap();
    let recorded = analyst
        .post(
            &format!("/console/cases/{id}/board-resolution"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("reference", "BR-2026-117"),
            ],
        )
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let waiting = analyst.get(recorded.location().unwrap()).await;
    assert!(waiting.body.contains("BR-2026-117"));
    assert!(
        waiting
            .body
            .contains("Waiting for confirmation by a board-level member")
    );
    // An analyst below board level cannot confirm it (V11), audited.
    let not_board = analyst
        .post(
            &format!("/console/cases/{id}/board-resolution/confirmation"),
            &[("csrf", &csrf), ("version", "1")],
        )
        .await;
    assert!(not_board.status.is_client_error(), "{}", not_board.body);
    assert!(not_board.body.contains("Rule V11"), "{}", not_board.body);
    // The board-level member confirms it from the case page, then votes.
    let mut board = signed_in(p, "backoffice", "bb-1").await;
    let page = board.get(&format!("/console/cases/{id}")).await;
    assert!(
        page.body.contains("Confirm the resolution"),
        "{}",
        page.body
    );
    let csrf = page.csrf().unwrap();
    let confirmed = board
        .post(
            &format!("/console/cases/{id}/board-resolution/confirmation"),
            &[("csrf", &csrf), ("version", "1")],
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    let after = board.get(confirmed.location().unwrap()).await;
    assert!(after.body.contains("The resolution is confirmed."));
    assert!(after.body.contains("Confirmed by"));
    let voted = board
        .post(
            &format!("/console/cases/{id}/second-vote"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("decision", "approve"),
                ("rationale", "board resolution BR-2026-117"),
            ],
        )
        .await;
    assert_eq!(voted.status, StatusCode::SEE_OTHER, "{}", voted.body);
    let api = p
        .call(
            "ba-2",
            "backoffice",
            reqwest::Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["status"], "approved", "{}", api.body);
}
both_backends!(
    console_back_office_records_and_confirms_a_board_resolution,
    back_office_records_and_confirms_a_board_resolution
);

async fn a_vote_without_a_decision_is_refused_not_taken_for_approval(p: &TestPlatform) {
    let case = p.draft_case("100000.00").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let mut console = signed_in(p, "market", "lo-2").await;
    let csrf = console
        .get(&format!("/console/cases/{id}"))
        .await
        .csrf()
        .unwrap();
    for fields in [
        vec![
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("rationale", "fine"),
        ],
        vec![
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("decision", "maybe"),
            ("rationale", "fine"),
        ],
        vec![
            ("csrf", csrf.as_str()),
            ("version", "one"),
            ("decision", "approve"),
            ("rationale", "fine"),
        ],
    ] {
        let refused = console
            .post(&format!("/console/cases/{id}/first-vote"), &fields)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        assert!(
            refused.body.contains("choose approve or decline"),
            "{}",
            refused.body
        );
    }
    let api = p
        .call(
            "lo-2",
            "market",
            reqwest::Method::GET,
            &format!("/v1/cases/{id}"),
            None,
        )
        .await;
    assert_eq!(api.ok(200)["status"], "draft");
    assert_eq!(api.ok(200)["votes"], serde_json::json!([]));
}
both_backends!(
    console_a_vote_without_a_decision_is_refused_not_taken_for_approval,
    a_vote_without_a_decision_is_refused_not_taken_for_approval
);

async fn english_amounts_with_thousands_separators_open_a_case(p: &TestPlatform) {
    let borrower = p
        .borrower_with_limit(
            "lo-1",
            serde_json::json!({"name": "Comma Ltd", "country": "DE", "sector": "C25"}),
        )
        .await;
    let mut console = signed_in(p, "market", "lo-1").await;
    let csrf = console.get("/console/cases/new").await.csrf().unwrap();
    let made = console
        .post(
            "/console/cases",
            &[
                ("csrf", &csrf),
                ("borrower_id", &borrower),
                ("amount", "1,250,000.00"),
                ("currency", "EUR"),
                ("product", "term_loan"),
                ("term_months", "60"),
                ("purpose", "machinery"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let page = console.get(made.location().unwrap()).await;
    assert!(page.body.contains("1,250,000.00 EUR"), "{}", page.body);
}
both_backends!(
    console_english_amounts_with_thousands_separators_open_a_case,
    english_amounts_with_thousands_separators_open_a_case
);
