//! The risk controllers' desk of the web console (issue 19) over HTTP on
//! both backends, and once in real headless Chromium: the limits in force
//! with usage and headroom, the pending limit proposals (R8), the proposal
//! of a limit with its field problems, Tier 1 capital and the liquidity
//! position with their four-eyes proposals decided by a second risk
//! controller (R3, R6), and internal audit reading without proposing (S8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::browser::Browser;
use creditops_tests::console::ConsoleClient;
use creditops_tests::{Backend, TestPlatform, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Signs `user` in at the risk desk and returns the client.
async fn signed_in(p: &TestPlatform, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url("risk", ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

/// A borrower without a limit; returns its id.
async fn borrower(p: &TestPlatform, sector: &str) -> String {
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/borrowers",
            Some(json!({"name": "Risiko GmbH", "country": "DE", "sector": sector})),
        )
        .await;
    reply.ok(201)["id"].as_str().unwrap().to_owned()
}

/// Imports an outstanding balance of `amount` for `borrower` (R2).
async fn outstanding(p: &TestPlatform, borrower: &str, amount: &str) {
    let line = format!(
        "{{\"source_id\":\"loan-{borrower}\",\"borrower_id\":\"{borrower}\",\"amount\":\"{amount}\",\"as_of\":\"{}\"}}\n",
        chrono::Utc::now().to_rfc3339()
    );
    let imported = p
        .send_typed(
            "rc-1",
            "risk",
            "/v1/exposures/import",
            "application/x-ndjson",
            &line,
        )
        .await;
    imported.ok(200);
}

async fn limits_show_usage_headroom_and_pending_proposals(p: &TestPlatform) {
    let b = borrower(p, "C25").await;
    p.grant_limit("borrower", &b, "1000000").await;
    outstanding(p, &b, "250000.00").await;
    // A proposal back office has not decided yet (R8).
    let pending = p
        .call(
            "rc-2",
            "risk",
            Method::POST,
            "/v1/limits",
            Some(json!({"kind": "country", "key": "FR", "amount": "5000000.00", "reason": "country review"})),
        )
        .await;
    pending.ok(201);

    let mut console = signed_in(p, "rc-1").await;
    assert_eq!(
        console.get("/console").await.location(),
        Some("/console/limits"),
        "the limits are the desk's first page"
    );
    let page = console.get("/console/limits").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(body.contains(&b), "the limit's key is shown: {body}");
    assert!(body.contains("1,000,000.00 EUR"), "{body}");
    assert!(body.contains("250,000.00 EUR"), "the usage: {body}");
    assert!(body.contains("750,000.00 EUR"), "the headroom: {body}");
    assert!(body.contains("25.00 %"), "the share used: {body}");
    assert!(
        body.contains("<rect width=\"25\" height=\"8\" class=\"fill\"/>"),
        "the usage bar is server-rendered SVG: {body}"
    );
    assert!(!body.contains("style="), "no inline style: {body}");
    assert!(!body.contains("<script"), "no script: {body}");
    assert!(
        body.contains("5,000,000.00 EUR"),
        "the pending proposal: {body}"
    );
    assert!(body.contains("country review"), "{body}");
    assert!(
        body.contains("waiting for approval by back office"),
        "the pending state says who acts next (R8): {body}"
    );

    // German amounts and texts.
    console.accept_language = "de-DE";
    let german = console.get("/console/limits").await;
    assert!(german.body.contains("750.000,00 EUR"), "{}", german.body);
    assert!(german.body.contains("25,00 %"), "{}", german.body);
    assert!(
        german
            .body
            .contains("wartet auf die Genehmigung durch die Marktfolge"),
        "{}",
        german.body
    );
}
both_backends!(
    console_risk_limits_show_usage_headroom_and_pending_proposals_r8,
    limits_show_usage_headroom_and_pending_proposals
);

async fn limit_is_proposed_from_the_form(p: &TestPlatform) {
    let b = borrower(p, "C25").await;
    let mut console = signed_in(p, "rc-1").await;
    let form = console.get("/console/limits/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    for needle in [
        "action=\"/console/limits\"",
        "name=\"kind\"",
        "name=\"key\"",
        "name=\"amount\"",
        "name=\"reason\"",
        "<label for=\"amount\">",
        "button type=\"submit\"",
    ] {
        assert!(form.body.contains(needle), "{needle}: {}", form.body);
    }
    let csrf = form.csrf().unwrap();
    // The German spelling of the amount is understood.
    console.accept_language = "de";
    let posted = console
        .post(
            "/console/limits",
            &[
                ("csrf", &csrf),
                ("kind", "borrower"),
                ("key", &b),
                ("amount", "2.000.000,00"),
                ("tolerance_percent", "7,5"),
                ("reason", "new client"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    assert_eq!(posted.location(), Some("/console/limits?done=proposed"));
    console.accept_language = "en";
    let done = console.get("/console/limits?done=proposed").await;
    assert!(done.body.contains("The limit is proposed"), "{}", done.body);
    assert!(done.body.contains("2,000,000.00 EUR"), "{}", done.body);

    // The API shows the same pending version, proposed by rc-1.
    let api = p
        .call(
            "rc-2",
            "risk",
            Method::GET,
            "/v1/limits/proposals?status=pending",
            None,
        )
        .await;
    let items = api.ok(200)["items"].as_array().unwrap().clone();
    let mine = items
        .iter()
        .find(|v| v["subject"]["key"] == b.as_str() || v["subject"].to_string().contains(&b))
        .unwrap_or_else(|| panic!("the proposal is pending: {items:?}"));
    assert_eq!(mine["amount"], "2000000.00");
    assert_eq!(mine["proposed_by"], "rc-1");
    assert_eq!(
        mine["tolerance_percent"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        7.5
    );
    assert_eq!(mine["status"], "pending");
}
both_backends!(
    console_risk_limit_is_proposed_from_the_form_r8,
    limit_is_proposed_from_the_form
);

async fn limit_form_shows_each_problem_beside_its_field(p: &TestPlatform) {
    let mut console = signed_in(p, "rc-1").await;
    let csrf = console.get("/console/limits/new").await.csrf().unwrap();
    let bad = console
        .post(
            "/console/limits",
            &[
                ("csrf", &csrf),
                ("kind", "sector"),
                ("key", "energy"),
                ("amount", "12.345"),
                ("tolerance_percent", "150"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    for (field, text) in [
        ("key", "Enter a NACE code, e.g. C or C25."),
        ("amount", "Enter an amount in EUR with at most two decimals"),
        ("tolerance_percent", "Enter a percentage between 0 and 100"),
        ("reason", "Enter a reason"),
    ] {
        assert!(
            bad.body.contains(&format!(
                "<p class=\"field-error\" id=\"{field}-error\">{text}"
            )),
            "{field}: {}",
            bad.body
        );
        assert!(
            bad.body
                .contains(&format!("aria-describedby=\"{field}-error\"")),
            "{}",
            bad.body
        );
    }
    assert!(
        bad.body.contains("value=\"energy\""),
        "what was typed stays"
    );
    assert!(
        bad.body.contains("<option value=\"sector\" selected>"),
        "{}",
        bad.body
    );

    // A well-formed borrower id that names nobody is the key's problem,
    // found by the command, as the API answers 422.
    let nobody = "0192a0c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
    let unknown = console
        .post(
            "/console/limits",
            &[
                ("csrf", &csrf),
                ("kind", "borrower"),
                ("key", nobody),
                ("amount", "1000"),
                ("reason", "new client"),
            ],
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    assert!(
        unknown
            .body
            .contains("id=\"key-error\">Enter the id of a registered borrower."),
        "{}",
        unknown.body
    );
    let api = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            "/v1/limits/proposals?status=pending",
            None,
        )
        .await;
    assert!(
        api.ok(200)["items"].as_array().unwrap().is_empty(),
        "nothing was proposed: {}",
        api.body
    );

    // A form without its token is refused and nothing is applied.
    let forged = console
        .post(
            "/console/limits",
            &[
                ("kind", "country"),
                ("key", "DE"),
                ("amount", "1000"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
}
both_backends!(
    console_risk_limit_form_shows_each_problem_beside_its_field,
    limit_form_shows_each_problem_beside_its_field
);

async fn internal_audit_reads_the_desk_but_cannot_propose(p: &TestPlatform) {
    let mut auditor = signed_in(p, "ia-1").await;
    let limits = auditor.get("/console/limits").await;
    assert_eq!(limits.status, StatusCode::OK, "{}", limits.body);
    assert!(
        !limits.body.contains("action=\"/console/limits\""),
        "no proposal form for a reader: {}",
        limits.body
    );
    assert!(limits.body.contains("You may read here"), "{}", limits.body);
    // Nor links to pages a reader may not use.
    for page in ["href=\"/console/limits/new\"", "href=\"/console/import\""] {
        assert!(!limits.body.contains(page), "{page}: {}", limits.body);
    }
    assert!(limits.body.contains("href=\"/console/liquidity\""));
    let liquidity = auditor.get("/console/liquidity").await;
    assert_eq!(liquidity.status, StatusCode::OK, "{}", liquidity.body);
    assert!(!liquidity.body.contains("action=\"/console/capital\""));
    assert_eq!(
        auditor.get("/console/limits/new").await.status,
        StatusCode::FORBIDDEN
    );

    // Posting anyway is refused under S8 and audited as the API would.
    let csrf = limits.csrf().unwrap();
    let posted = auditor
        .post(
            "/console/limits",
            &[
                ("csrf", &csrf),
                ("kind", "country"),
                ("key", "DE"),
                ("amount", "1000"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN, "{}", posted.body);
    assert!(posted.body.contains("S8"), "{}", posted.body);
    let capital = auditor
        .post("/console/capital", &[("csrf", &csrf), ("tier1", "1")])
        .await;
    assert_eq!(capital.status, StatusCode::FORBIDDEN, "{}", capital.body);
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=request.refused&limit=1000",
            None,
        )
        .await;
    let refused = events.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        refused
            .iter()
            .map(|e| &e["body"])
            .any(|e| e["actor"] == "ia-1"
                && e["rule"] == "S8"
                && e["data"]["route"] == "/console/limits"
                && e["data"]["console"] == true),
        "{refused:?}"
    );
}
both_backends!(
    console_risk_internal_audit_reads_but_cannot_propose_s8,
    internal_audit_reads_the_desk_but_cannot_propose
);

async fn capital_and_liquidity_are_decided_by_a_second_controller(p: &TestPlatform) {
    let mut rc1 = signed_in(p, "rc-1").await;
    let page = rc1.get("/console/liquidity").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // The demo position: LCR 200 % against a floor of 110 %.
    assert!(page.body.contains("200.00 %"), "{}", page.body);
    assert!(page.body.contains("110.00 %"), "{}", page.body);
    assert!(page.body.contains("meets the floor"), "{}", page.body);
    assert!(
        page.body.contains("class=\"lcr-gauge within\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("500,000,000.00 EUR"), "{}", page.body);
    assert!(!page.body.contains("style="), "no inline style");
    let csrf = page.csrf().unwrap();

    // A field problem shows beside its field (422) and nothing is proposed.
    let bad = rc1
        .post(
            "/console/liquidity/propose",
            &[
                ("csrf", &csrf),
                ("hqla", "1000"),
                ("outflows_30d", "0"),
                ("inflows_30d", "0"),
                ("floor_percent", "90"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        bad.body
            .contains("id=\"floor_percent-error\">The floor may not be below"),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("id=\"outflows_30d-error\">The amount must be greater than zero"),
        "{}",
        bad.body
    );

    // rc-1 proposes Tier 1 capital (R3): pending, not in force.
    let proposed = rc1
        .post(
            "/console/capital",
            &[("csrf", &csrf), ("tier1", "600,000,000.00")],
        )
        .await;
    assert_eq!(proposed.status, StatusCode::SEE_OTHER, "{}", proposed.body);
    assert_eq!(proposed.location(), Some("/console/liquidity?done=capital"));
    let pending = rc1.get("/console/liquidity?done=capital").await;
    assert!(pending.body.contains("Tier 1 capital is proposed"));
    assert!(
        pending.body.contains("600,000,000.00 EUR"),
        "{}",
        pending.body
    );
    assert!(
        pending
            .body
            .contains("Your proposal: another risk controller decides it"),
        "{}",
        pending.body
    );
    let api = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            "/v1/proposals?status=pending",
            None,
        )
        .await;
    let id = api.ok(200)["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        !pending
            .body
            .contains(&format!("/console/proposals/{id}/approve")),
        "no approve button on one's own proposal"
    );

    // Approving one's own proposal anyway is refused with its rule.
    let own = rc1
        .post(
            &format!("/console/proposals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(
        own.body
            .contains("You made this proposal yourself, so another risk controller must decide it"),
        "{}",
        own.body
    );
    assert!(own.body.contains("rule R3"), "{}", own.body);

    // rc-2 sees it with the buttons and approves: the figure applies.
    let mut rc2 = signed_in(p, "rc-2").await;
    let theirs = rc2.get("/console/liquidity").await;
    assert!(
        theirs
            .body
            .contains(&format!("action=\"/console/proposals/{id}/approve\"")),
        "{}",
        theirs.body
    );
    let csrf2 = theirs.csrf().unwrap();
    let approved = rc2
        .post(
            &format!("/console/proposals/{id}/approve"),
            &[("csrf", &csrf2)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert_eq!(
        approved.location(),
        Some("/console/liquidity?done=approved")
    );
    let capital = p
        .call("ia-1", "risk", Method::GET, "/v1/capital", None)
        .await;
    assert_eq!(capital.ok(200)["tier1"], "600000000.00");
    assert_eq!(capital.body["recorded_by"], "rc-1", "recorded as proposed");

    // rc-2 proposes a liquidity position in German; rc-1 rejects it.
    rc2.accept_language = "de";
    let liquidity = rc2
        .post(
            "/console/liquidity/propose",
            &[
                ("csrf", &csrf2),
                ("hqla", "1.500.000.000,00"),
                ("outflows_30d", "1.000.000.000"),
                ("inflows_30d", "0"),
                ("floor_percent", "120"),
            ],
        )
        .await;
    assert_eq!(
        liquidity.status,
        StatusCode::SEE_OTHER,
        "{}",
        liquidity.body
    );
    let listed = rc1.get("/console/liquidity").await;
    assert!(
        listed.body.contains("1,500,000,000.00 EUR"),
        "{}",
        listed.body
    );
    let api = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            "/v1/proposals?status=pending",
            None,
        )
        .await;
    let change = api.ok(200)["items"][0].clone();
    assert_eq!(change["change"]["hqla"], "1500000000");
    assert_eq!(change["change"]["floor_percent"], "120");
    let lid = change["id"].as_str().unwrap().to_owned();
    let rejected = rc1
        .post(
            &format!("/console/proposals/{lid}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.body);
    let after = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/proposals/{lid}"),
            None,
        )
        .await;
    assert_eq!(after.ok(200)["status"], "rejected");
    assert_eq!(after.body["decided_by"], "rc-1");
    let position = p
        .call("rc-1", "risk", Method::GET, "/v1/liquidity", None)
        .await;
    assert_eq!(position.ok(200)["floor_percent"], "110", "nothing applied");
}
both_backends!(
    console_risk_capital_and_liquidity_are_decided_by_a_second_controller_r3_r6,
    capital_and_liquidity_are_decided_by_a_second_controller
);

/// The API's answer to `path` as raw bytes, read by `user`.
async fn api_bytes(p: &TestPlatform, user: &str, path: &str) -> Vec<u8> {
    let response = p
        .client
        .get(p.url("risk", path))
        .bearer_auth(p.token(user, "risk"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

async fn exposure_alerts_and_reports(p: &TestPlatform) {
    let b = borrower(p, "C25").await;
    p.grant_limit("borrower", &b, "1000000").await;
    outstanding(p, &b, "1200000.00").await;
    let other = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/borrowers",
            Some(json!({"name": "Banque SA", "country": "FR", "sector": "K64"})),
        )
        .await;
    let other = other.ok(201)["id"].as_str().unwrap().to_owned();
    outstanding(p, &other, "300000.00").await;

    let mut console = signed_in(p, "rc-1").await;
    let exposure = console.get("/console/exposure").await;
    assert_eq!(exposure.status, StatusCode::OK, "{}", exposure.body);
    let body = &exposure.body;
    assert!(body.contains("1,500,000.00 EUR"), "the total: {body}");
    for needle in [
        "<abbr title=\"Manufacturing\">C</abbr>",
        "<abbr title=\"Germany\">DE</abbr>",
        "80.00 %",
        "20.00 %",
        "<rect width=\"100\" height=\"8\" class=\"fill\"/>",
        "<rect width=\"25\" height=\"8\" class=\"fill\"/>",
        "<th scope=\"row\">",
    ] {
        assert!(body.contains(needle), "{needle}: {body}");
    }
    assert!(!body.contains("style="), "no inline style");

    let alerts = console.get("/console/alerts").await;
    assert_eq!(alerts.status, StatusCode::OK, "{}", alerts.body);
    assert!(
        alerts.body.contains(&format!("borrower:{b}")),
        "{}",
        alerts.body
    );
    assert!(
        alerts.body.contains("200,000.00 EUR"),
        "over by: {}",
        alerts.body
    );
    assert!(alerts.body.contains("over the limit"), "{}", alerts.body);
    assert!(
        alerts.body.contains("action=\"/console/reports/breaches\""),
        "{}",
        alerts.body
    );

    // The downloads are the API's bytes.
    let today = chrono::Utc::now().date_naive().to_string();
    let csv = console
        .get(&format!("/console/reports/breaches?date={today}"))
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert_eq!(
        csv.headers["content-disposition"],
        format!("attachment; filename=\"breaches-{today}.csv\"").as_str()
    );
    assert!(csv.body.contains(&format!("borrower:{b}")), "{}", csv.body);
    let api = api_bytes(
        p,
        "rc-2",
        &format!("/v1/reports/breaches?date={today}&format=csv"),
    )
    .await;
    assert_eq!(csv.body.as_bytes(), api.as_slice(), "same bytes as the API");
    let million = console.get("/console/reports/million-loans").await;
    assert_eq!(million.status, StatusCode::OK);
    let api = api_bytes(p, "rc-2", "/v1/reports/million-loans?format=csv").await;
    assert_eq!(million.body.as_bytes(), api.as_slice());
    assert!(million.body.contains(&b), "{}", million.body);
    let bad = console
        .get("/console/reports/breaches?date=yesterday")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Enter a day such as 2026-11-23."));
    assert_eq!(
        console.get("/console/reports/nothing").await.status,
        StatusCode::NOT_FOUND
    );
}
both_backends!(
    console_risk_exposure_alerts_and_reports_r7_r9,
    exposure_alerts_and_reports
);

async fn balances_are_imported_with_each_bad_row_shown(p: &TestPlatform) {
    let b = borrower(p, "C25").await;
    p.grant_limit("borrower", &b, "1000000").await;
    let nobody = "0192a0c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
    let as_of = chrono::Utc::now().to_rfc3339();
    let mut console = signed_in(p, "rc-1").await;
    let form = console.get("/console/import").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(
        form.body.contains("<label for=\"balances\">"),
        "{}",
        form.body
    );
    let csrf = form.csrf().unwrap();

    // Bad rows: each shown with its number, field and the API's words;
    // nothing is applied.
    let bad = format!(
        "source_id,borrower_id,amount,as_of\r\nloan-1,{b},1200000.00,{as_of}\r\nloan-2,{b},1.001,{as_of}\r\nloan-3,x,5,{as_of}\r\n"
    );
    let refused = console
        .post(
            "/console/import",
            &[("csrf", &csrf), ("format", "csv"), ("balances", &bad)],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let api = p
        .send_typed("rc-2", "risk", "/v1/exposures/import", "text/csv", &bad)
        .await;
    let errors = api.problem(422)["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for error in &errors {
        let row = error["row"].as_u64().unwrap();
        let field = error["field"].as_str().unwrap();
        let detail = error["detail"].as_str().unwrap().replace('"', "&#34;");
        assert!(
            refused.body.contains(&format!(
                "<tr><td>{row}</td><td>{field}</td><td>{detail}</td></tr>"
            )),
            "row {row} {field} {detail}: {}",
            refused.body
        );
    }
    assert!(refused.body.contains("loan-2"), "what was pasted stays");

    // A borrower nobody registered is found by the command, as in the API.
    let unknown = format!("source_id,borrower_id,amount,as_of\r\nloan-9,{nobody},5,{as_of}\r\n");
    let refused = console
        .post(
            "/console/import",
            &[("csrf", &csrf), ("format", "csv"), ("balances", &unknown)],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("<tr><td>1</td><td>borrower_id</td>"),
        "{}",
        refused.body
    );
    let exposure = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/exposures?borrower_id={b}"),
            None,
        )
        .await;
    assert_eq!(exposure.ok(200)["total"], "0.00", "nothing was applied");

    // The good file (JSON lines) is applied and its breach named.
    let good = format!(
        "{{\"source_id\":\"loan-1\",\"borrower_id\":\"{b}\",\"amount\":\"1200000.00\",\"as_of\":\"{as_of}\"}}\r\n"
    );
    let done = console
        .post(
            "/console/import",
            &[("csrf", &csrf), ("format", "jsonl"), ("balances", &good)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("The import is applied. Rows: 1 (new 1"),
        "{}",
        done.body
    );
    assert!(
        done.body
            .contains(&format!("borrower:{b} (R3): 200,000.00 EUR")),
        "{}",
        done.body
    );
    let exposure = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/exposures?borrower_id={b}"),
            None,
        )
        .await;
    assert_eq!(exposure.ok(200)["total"], "1200000.00");

    // Internal audit may not import (S8).
    let mut auditor = signed_in(p, "ia-1").await;
    assert_eq!(
        auditor.get("/console/import").await.status,
        StatusCode::FORBIDDEN
    );
}
both_backends!(
    console_risk_balances_are_imported_with_each_bad_row_shown_r2,
    balances_are_imported_with_each_bad_row_shown
);

/// The desk in real headless Chromium: rc-1 reads the limits, proposes a
/// limit through the form (its field problems first), proposes Tier 1
/// capital; rc-2 approves it in a second session. axe-core runs on every
/// page state when `CREDITOPS_AXE` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_risk_browser_walks_the_desk() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");
    let b = borrower(&p, "C25").await;
    p.grant_limit("borrower", &b, "1000000").await;
    outstanding(&p, &b, "1200000.00").await;
    let risk = p.url("risk", "");
    let browser = Browser::start().await;

    browser.goto(&format!("{risk}/login")).await;
    browser.type_into("#user", "rc-1").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/limits").await;
    let limits = browser.wait_for_text("Signed in as").await;
    assert!(limits.contains("1,000,000.00 EUR"), "{limits}");
    assert!(
        limits.contains("-200,000.00 EUR"),
        "over the limit: {limits}"
    );
    assert!(limits.contains("over the limit"), "{limits}");
    browser.screenshot("risk_limits").await;
    browser.assert_accessible("risk_limits").await;

    browser.goto(&format!("{risk}/console/limits/new")).await;
    browser.wait_for_text("Propose a limit").await;
    browser.assert_accessible("risk_limit_new").await;
    browser
        .click("form[action='/console/limits'] button[type=submit]")
        .await;
    browser
        .wait_for_text("Please check the marked fields.")
        .await;
    browser.screenshot("risk_limit_errors").await;
    browser.assert_accessible("risk_limit_errors").await;
    browser.type_into("#key", &b).await;
    browser.type_into("#amount", "1500000.00").await;
    browser.type_into("#reason", "annual review").await;
    browser
        .click("form[action='/console/limits'] button[type=submit]")
        .await;
    let done = browser.wait_for_text("The limit is proposed").await;
    assert!(
        done.contains("waiting for approval by back office"),
        "{done}"
    );
    assert!(done.contains("1,500,000.00 EUR"), "{done}");
    browser.screenshot("risk_limit_proposed").await;
    browser.assert_accessible("risk_limit_proposed").await;

    browser.goto(&format!("{risk}/console/liquidity")).await;
    let liquidity = browser.wait_for_text("Liquidity and Tier 1 capital").await;
    assert!(liquidity.contains("200.00 %"), "{liquidity}");
    browser.screenshot("risk_liquidity").await;
    browser.assert_accessible("risk_liquidity").await;
    browser.type_into("#tier1", "550000000").await;
    browser
        .click("form[action='/console/capital'] button[type=submit]")
        .await;
    let proposed = browser.wait_for_text("Tier 1 capital is proposed").await;
    assert!(proposed.contains("550,000,000.00 EUR"), "{proposed}");
    browser.assert_accessible("risk_capital_proposed").await;

    browser.goto(&format!("{risk}/console/exposure")).await;
    let exposure = browser.wait_for_text("By sector").await;
    assert!(exposure.contains("1,200,000.00 EUR"), "{exposure}");
    browser.screenshot("risk_exposure").await;
    browser.assert_accessible("risk_exposure").await;
    browser.goto(&format!("{risk}/console/alerts")).await;
    let alerts = browser.wait_for_text("Open limit breaches").await;
    assert!(
        alerts.contains("-200,000.00 EUR") || alerts.contains("200,000.00 EUR"),
        "{alerts}"
    );
    browser.screenshot("risk_alerts").await;
    browser.assert_accessible("risk_alerts").await;
    browser.goto(&format!("{risk}/console/import")).await;
    browser
        .wait_for_text("Outstanding balances from core banking")
        .await;
    browser
        .type_into(
            "#balances",
            "source_id,borrower_id,amount,as_of\nloan-7,x,1,now\n",
        )
        .await;
    browser
        .click("form[action='/console/import'] button[type=submit]")
        .await;
    let problems = browser.wait_for_text("Nothing was imported").await;
    assert!(problems.contains("is not a borrower id"), "{problems}");
    browser.screenshot("risk_import_problems").await;
    browser.assert_accessible("risk_import_problems").await;

    // The second controller decides it in their own session.
    browser
        .click("form[action='/logout'] button[type=submit]")
        .await;
    browser.wait_for_url("/login").await;
    browser.type_into("#user", "rc-2").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/limits").await;
    browser.goto(&format!("{risk}/console/liquidity")).await;
    browser
        .wait_for_text("Proposals waiting for a second person")
        .await;
    browser.assert_accessible("risk_liquidity_other").await;
    browser
        .click("form[action$='/approve'] button[type=submit]")
        .await;
    let approved = browser.wait_for_text("The proposal is approved").await;
    assert!(approved.contains("550,000,000.00 EUR"), "{approved}");
    browser.screenshot("risk_capital_approved").await;
    browser.assert_accessible("risk_capital_approved").await;

    browser.quit().await;
    p.stop().await;
}

async fn balances_are_imported_from_an_uploaded_file(p: &TestPlatform) {
    let b = borrower(p, "C25").await;
    p.grant_limit("borrower", &b, "1000000").await;
    let as_of = chrono::Utc::now().to_rfc3339();
    let mut console = signed_in(p, "rc-1").await;
    let form = console.get("/console/import").await;
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    let csrf = form.csrf().unwrap();
    let bad = format!("source_id,borrower_id,amount,as_of\nloan-1,{b},1.001,{as_of}\n");
    let refused = console
        .post_file(
            "/console/import/file",
            &[("csrf", &csrf), ("format", "csv")],
            ("file", "balances.csv", bad.as_bytes()),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("<tr><td>1</td><td>amount</td>"),
        "{}",
        refused.body
    );
    // Not a text file: refused, nothing imported.
    let binary = console
        .post_file(
            "/console/import/file",
            &[("csrf", &csrf), ("format", "csv")],
            ("file", "balances.xlsx", &[0xff, 0xfe, 0x00, 0x9f]),
        )
        .await;
    assert_eq!(binary.status, StatusCode::BAD_REQUEST, "{}", binary.body);
    assert!(binary.body.contains("nothing was imported"));
    // Without the form's token: refused and audited, as every form.
    let good = format!("source_id,borrower_id,amount,as_of\nloan-1,{b},250000.00,{as_of}\n");
    let forged = console
        .post_file(
            "/console/import/file",
            &[("format", "csv")],
            ("file", "balances.csv", good.as_bytes()),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let done = console
        .post_file(
            "/console/import/file",
            &[("csrf", &csrf), ("format", "csv")],
            ("file", "balances.csv", good.as_bytes()),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("The import is applied. Rows: 1 (new 1"),
        "{}",
        done.body
    );
    let exposure = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/exposures?borrower_id={b}"),
            None,
        )
        .await;
    assert_eq!(exposure.ok(200)["total"], "250000.00");
}
both_backends!(
    console_risk_balances_are_imported_from_an_uploaded_file_r2,
    balances_are_imported_from_an_uploaded_file
);
