//! The user administrators' desk over HTTP (issue 19): the staff directory
//! with the dated history (S4), pending four-eyes changes on the record
//! itself, the inbox that never decides one's own proposal (S9), proposals
//! of roles and competence levels refused under S3, S4 and S7 with their
//! rule, and the entitlement report as the API's CSV.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::console::ConsoleClient;
use creditops_tests::{TestPlatform, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Signs `user` in at the admin console and returns the client.
async fn admin(p: &TestPlatform, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url("admin", ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

/// Proposes `change` through the API as `user`; the proposal's id.
async fn propose_by_api(p: &TestPlatform, user: &str, change: Value) -> String {
    p.call(user, "admin", Method::POST, "/v1/proposals", Some(change))
        .await
        .ok(202)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The audit events of `action`, as the internal auditor sees them.
async fn events(p: &TestPlatform, action: &str) -> Vec<Value> {
    let path = format!("/v1/events?action={action}&limit=1000");
    p.call("ia-1", "audit", Method::GET, &path, None)
        .await
        .ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].clone())
        .collect()
}

async fn directory_shows_dated_history_and_pending_changes(p: &TestPlatform) {
    let mut console = admin(p, "ua-1").await;
    let home = console.get("/console").await;
    assert_eq!(home.location(), Some("/console/staff"));
    let directory = console.get("/console/staff").await;
    assert_eq!(directory.status, StatusCode::OK, "{}", directory.body);
    let since = (chrono::Utc::now() - chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();
    for shown in [
        "Staff directory",
        "lo-1",
        "ua-2",
        "market-corporate",
        "Loan officer",
        "Credit analyst",
        "Level 3",
        &format!("since {since}"),
        "active",
    ] {
        assert!(
            directory.body.contains(shown),
            "{shown}: {}",
            directory.body
        );
    }
    assert!(directory.body.contains("<th scope=\"col\">"));

    // ua-2 proposes a competence level for lo-1: the record says it waits.
    propose_by_api(
        p,
        "ua-2",
        json!({"kind": "competence_grant", "staff_id": "lo-1", "side": "market",
               "level": 3, "valid_from": chrono::Utc::now()}),
    )
    .await;
    let person = console.get("/console/staff/lo-1").await;
    assert_eq!(person.status, StatusCode::OK, "{}", person.body);
    for shown in [
        "Person lo-1",
        "market-corporate",
        "Valid from",
        "Valid to",
        "current",
        "Waiting for approval by a second administrator.",
        "Competence level 3 on the market side for lo-1",
        "ua-2",
    ] {
        assert!(person.body.contains(shown), "{shown}: {}", person.body);
    }
    assert!(
        !person.body.contains("\"kind\""),
        "the change is text, not JSON"
    );
    // ua-1 may decide ua-2's proposal from the record itself.
    assert!(person.body.contains("/approve"), "{}", person.body);
    let other = console.get("/console/staff/lo-2").await;
    assert!(other.body.contains("No change for this person is waiting"));
    let unknown = console.get("/console/staff/nobody-9").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // German: texts and dates.
    let mut german = admin(p, "ua-2").await;
    german.accept_language = "de-DE";
    let page = german.get("/console/staff/lo-1").await;
    let since_de = (chrono::Utc::now() - chrono::Duration::days(365))
        .format("%d.%m.%Y")
        .to_string();
    for shown in [
        "Organisationseinheiten",
        "Gültig ab",
        &since_de,
        "Wartet auf die Genehmigung durch eine zweite Administratorin oder einen zweiten Administrator.",
        "Kompetenzstufe 3 (Markt) für lo-1",
        "Ihr eigener Antrag",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
}
both_backends!(
    console_admin_s4_directory_shows_dated_history_and_pending_changes,
    directory_shows_dated_history_and_pending_changes
);

async fn inbox_decides_others_proposals_never_ones_own(p: &TestPlatform) {
    let theirs = propose_by_api(
        p,
        "ua-2",
        json!({"kind": "competence_grant", "staff_id": "lo-1", "side": "market",
               "level": 3, "valid_from": chrono::Utc::now()}),
    )
    .await;
    let mine = propose_by_api(
        p,
        "ua-1",
        json!({"kind": "competence_grant", "staff_id": "ba-1", "side": "backoffice",
               "level": 3, "valid_from": chrono::Utc::now()}),
    )
    .await;
    let mut console = admin(p, "ua-1").await;
    let inbox = console.get("/console/proposals").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    for shown in [
        "Competence level 3 on the market side for lo-1",
        "Competence level 3 on the back office side for ba-1",
        "ua-2",
        "Your own proposal: a second person decides it (S9).",
    ] {
        assert!(inbox.body.contains(shown), "{shown}: {}", inbox.body);
    }
    assert!(
        inbox
            .body
            .contains(&format!("/console/proposals/{theirs}/approve"))
    );
    assert!(
        !inbox
            .body
            .contains(&format!("/console/proposals/{mine}/approve")),
        "no buttons on one's own proposal"
    );
    let csrf = inbox.csrf().expect("token");

    // Without its token the decision is refused and nothing applied.
    let forged = console
        .post(&format!("/console/proposals/{theirs}/approve"), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // One's own proposal, posted anyway: the command refuses it (S9).
    let own = console
        .post(
            &format!("/console/proposals/{mine}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(own.body.contains("Rule S9"), "{}", own.body);
    assert!(
        own.body.contains("A second administrator must decide it."),
        "{}",
        own.body
    );
    let audited = events(p, "request.refused").await.into_iter().any(|e| {
        e["rule"] == "S9"
            && e["actor"] == "ua-1"
            && e["data"]["console"] == true
            && e["data"]["route"] == "/console/proposals/{id}/approve"
    });
    assert!(audited, "the refusal is audited with its rule");

    // Another administrator's proposal is approved and in force.
    let approved = console
        .post(
            &format!("/console/proposals/{theirs}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let after = console.get(approved.location().unwrap()).await;
    assert!(after.body.contains("The proposal is approved"));
    let lo1 = p
        .call("ua-2", "admin", Method::GET, "/v1/staff/lo-1", None)
        .await;
    assert!(
        lo1.ok(200)["competences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["level"] == 3),
        "{}",
        lo1.body
    );
    // Deciding it again: it is decided already.
    let again = console
        .post(
            &format!("/console/proposals/{theirs}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("approved already"), "{}", again.body);

    // ua-2 rejects ua-1's proposal; the rejected tab keeps it.
    let mut second = admin(p, "ua-2").await;
    let inbox = second.get("/console/proposals").await;
    let csrf = inbox.csrf().expect("token");
    let rejected = second
        .post(
            &format!("/console/proposals/{mine}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.body);
    let kept = second.get("/console/proposals?status=rejected").await;
    assert!(
        kept.body
            .contains("Competence level 3 on the back office side for ba-1"),
        "{}",
        kept.body
    );
    assert!(kept.body.contains("ua-2, "), "the decider is shown");
    let decided = p
        .call(
            "ua-1",
            "admin",
            Method::GET,
            &format!("/v1/proposals/{mine}"),
            None,
        )
        .await;
    assert_eq!(decided.ok(200)["status"], "rejected");
}
both_backends!(
    console_admin_s9_inbox_decides_others_proposals_never_ones_own,
    inbox_decides_others_proposals_never_ones_own
);

async fn proposals_are_refused_with_their_rule(p: &TestPlatform) {
    let mut console = admin(p, "ua-1").await;
    let form = console.get("/console/proposals/new?staff_id=lo-1").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("value=\"lo-1\""), "prefilled");
    let csrf = form.csrf().expect("token");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let role = |staff: &'static str, role: &'static str, from: String| {
        vec![
            ("kind", "role_assignment".to_owned()),
            ("staff_id", staff.to_owned()),
            ("role", role.to_owned()),
            ("valid_from", from),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let mut fields = fields;
        fields.push(("csrf", csrf.clone()));
        fields
    };
    async fn send(
        console: &mut ConsoleClient,
        fields: Vec<(&'static str, String)>,
    ) -> creditops_tests::console::Page {
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        console.post("/console/proposals", &borrowed).await
    }

    // S3: a loan officer cannot also be a credit analyst.
    let s3 = send(
        &mut console,
        post(role("lo-1", "credit_analyst", today.clone())),
    )
    .await;
    assert_eq!(s3.status, StatusCode::FORBIDDEN, "{}", s3.body);
    assert!(s3.body.contains("Rule S3"), "{}", s3.body);
    assert!(s3.body.contains("segregation of duties"), "{}", s3.body);
    assert!(s3.body.contains("End the incompatible role first"));
    // S4: the history is never back-dated.
    let s4 = send(
        &mut console,
        post(role("rc-1", "risk_controller", "2020-01-01".to_owned())),
    )
    .await;
    assert_eq!(s4.status, StatusCode::FORBIDDEN, "{}", s4.body);
    assert!(s4.body.contains("Rule S4"), "{}", s4.body);
    assert!(s4.body.contains("Choose today or a later date"));
    // S7: nobody changes their own entitlements.
    let s7 = send(
        &mut console,
        post(vec![
            ("kind", "competence_grant".to_owned()),
            ("staff_id", "ua-1".to_owned()),
            ("side", "market".to_owned()),
            ("level", "2".to_owned()),
            ("valid_from", today.clone()),
        ]),
    )
    .await;
    assert_eq!(s7.status, StatusCode::FORBIDDEN, "{}", s7.body);
    assert!(s7.body.contains("Rule S7"), "{}", s7.body);
    let refusals = events(p, "request.refused").await;
    for rule in ["S3", "S4", "S7"] {
        assert!(
            refusals.iter().any(|e| e["rule"] == rule
                && e["data"]["route"] == "/console/proposals"
                && e["data"]["console"] == true),
            "{rule} is audited"
        );
    }
    // Fields that are not a staff id or a date: each says so beside it.
    let bad = send(
        &mut console,
        post(role("", "loan_officer", "tomorrow".to_owned())),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        bad.body
            .contains("Enter the id of a person in the directory")
    );
    assert!(bad.body.contains("Enter a date, e.g. 2026-12-06."));
    assert!(bad.body.contains("aria-invalid=\"true\""));

    // A competence level for ba-1 from today (German date as typed): it is
    // proposed, shown on the record, and in force only once ua-2 approves.
    let de_today = chrono::Utc::now().format("%d.%m.%Y").to_string();
    let made = send(
        &mut console,
        post(vec![
            ("kind", "competence_grant".to_owned()),
            ("staff_id", "ba-1".to_owned()),
            ("side", "backoffice".to_owned()),
            ("level", "3".to_owned()),
            ("valid_from", de_today),
        ]),
    )
    .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert_eq!(made.location(), Some("/console/staff/ba-1?done=proposed"));
    let record = console.get("/console/staff/ba-1?done=proposed").await;
    assert!(
        record
            .body
            .contains("The proposal is made and is waiting for approval")
    );
    assert!(
        record
            .body
            .contains("Competence level 3 on the back office side for ba-1")
    );
    assert!(record.body.contains("Your own proposal"));
    let pending = p
        .call(
            "ua-2",
            "admin",
            Method::GET,
            "/v1/proposals?status=pending",
            None,
        )
        .await;
    let item = pending.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["change"]["staff_id"] == "ba-1")
        .cloned()
        .expect("the API lists the console's proposal");
    assert_eq!(item["proposed_by"], "ua-1");
    assert_eq!(item["change"]["level"], 3);
    let id = item["id"].as_str().unwrap().to_owned();
    let proposed = events(p, "change.proposed").await;
    assert!(
        proposed
            .iter()
            .any(|e| e["data"]["proposal_id"] == id.as_str())
    );

    let mut second = admin(p, "ua-2").await;
    let page = second.get("/console/staff/ba-1").await;
    let csrf = page.csrf().expect("token");
    let approved = second
        .post(
            &format!("/console/proposals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let ba1 = p
        .call("ua-1", "admin", Method::GET, "/v1/staff/ba-1", None)
        .await;
    assert!(
        ba1.ok(200)["competences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["level"] == 3 && c["side"] == "backoffice"),
        "{}",
        ba1.body
    );
}
both_backends!(
    console_admin_s3_s4_s7_proposals_are_refused_with_their_rule,
    proposals_are_refused_with_their_rule
);

async fn entitlement_report_is_the_apis_csv(p: &TestPlatform) {
    let mut console = admin(p, "ua-1").await;
    let directory = console.get("/console/staff").await;
    assert!(directory.body.contains("/console/reports/entitlements.csv"));
    let download = console.get("/console/reports/entitlements.csv").await;
    assert_eq!(download.status, StatusCode::OK, "{}", download.body);
    assert!(
        download.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        download.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let api = reqwest::Client::new()
        .get(p.url("admin", "/v1/reports/entitlements?format=csv"))
        .bearer_auth(p.token("ua-1", "admin"))
        .send()
        .await
        .expect("report")
        .text()
        .await
        .expect("body");
    assert_eq!(download.body, api, "the same bytes as the API's");
    let reads = events(p, "staff.entitlements_reported").await;
    assert!(reads.len() >= 2, "both reads are audited: {reads:?}");
}
both_backends!(
    console_admin_entitlement_report_is_the_apis_csv,
    entitlement_report_is_the_apis_csv
);

async fn directory_is_paged_and_shows_suspensions(p: &TestPlatform) {
    // 40 newcomers (four-eyes onboarding through the API) make 53 people.
    for i in 0..40 {
        let id = propose_by_api(
            p,
            "ua-1",
            json!({"kind": "staff_onboarding", "staff_id": format!("rc-n{i:02}"),
                   "units": [{"unit_id": "risk-control", "valid_from": chrono::Utc::now()}],
                   "roles": [{"role": "risk_controller", "valid_from": chrono::Utc::now()}]}),
        )
        .await;
        p.call(
            "ua-2",
            "admin",
            Method::POST,
            &format!("/v1/proposals/{id}/approve"),
            None,
        )
        .await
        .ok(200);
    }
    let suspension =
        propose_by_api(p, "ua-2", json!({"kind": "suspension", "staff_id": "lo-3"})).await;
    let mut console = admin(p, "ua-1").await;
    let inbox = console.get("/console/proposals").await;
    assert!(inbox.body.contains("lo-3 is suspended"), "{}", inbox.body);
    let csrf = inbox.csrf().expect("token");
    let approved = console
        .post(
            &format!("/console/proposals/{suspension}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);

    let first = console.get("/console/staff").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body.matches("<th scope=\"row\">").count(), 50);
    let next = first
        .body
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/console/staff?after="))
        .expect("a link to the next page")
        .to_owned();
    let second = console.get(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body.matches("<th scope=\"row\">").count(), 3);
    assert!(
        !second.body.contains("/console/staff?after="),
        "the last page"
    );
    let all = format!("{}{}", first.body, second.body);
    for id in ["ba-1", "rc-n00", "rc-n39", "ua-2"] {
        assert!(
            all.contains(&format!("href=\"/console/staff/{id}\"")),
            "{id}"
        );
    }
    let lo3 = console.get("/console/staff/lo-3").await;
    assert!(lo3.body.contains("Status: suspended"), "{}", lo3.body);

    // Every page of the desk: the strict policy, no inline script or
    // style, and far below 150 KB with its stylesheet (a full page of 50).
    let css = console.get("/console/assets/console.css").await.body.len();
    for path in [
        "/console/staff",
        "/console/staff/lo-3",
        "/console/proposals",
        "/console/proposals?status=approved",
        "/console/proposals/new",
        "/console/rules",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'none'") && csp.contains("style-src 'self'"));
        assert!(
            !page.body.contains("<script") && !page.body.contains("style="),
            "{path}"
        );
        let html = page.body.len();
        println!("page weight {path}: {html} B + {css} B stylesheet");
        assert!(
            html + css < 150 * 1024,
            "{path} weighs {html} + {css} bytes"
        );
    }
}
both_backends!(
    console_admin_directory_is_paged_and_shows_suspensions,
    directory_is_paged_and_shows_suspensions
);

/// A number the API writes as a decimal string (or a number).
fn number(value: &Value) -> f64 {
    match value {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

async fn rule_sets_are_shown_and_proposed_four_eyes(p: &TestPlatform) {
    let mut console = admin(p, "ua-1").await;
    let page = console.get("/console/rules").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for shown in [
        "Rule sets",
        "in force",
        "Level 1 (level-1) up to 250,000.00 EUR",
        "Level 4 (board) unbounded",
        "6 months",
        "closed",
        "90 days",
        "No rule set is waiting for approval.",
        "value=\"250,000.00\"",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    let csrf = page.csrf().expect("token");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let rules = |from: &str, level_1: &str, months: &str| {
        vec![
            ("csrf".to_owned(), csrf.clone()),
            ("valid_from".to_owned(), from.to_owned()),
            ("up_to_1".to_owned(), level_1.to_owned()),
            ("up_to_2".to_owned(), "1,000,000.00".to_owned()),
            ("up_to_3".to_owned(), "5,000,000.00".to_owned()),
            ("cooling_off_months".to_owned(), months.to_owned()),
            ("divergence".to_owned(), "escalate".to_owned()),
            ("single_vote_below".to_owned(), String::new()),
            ("reservation_days".to_owned(), "90".to_owned()),
        ]
    };
    async fn send(
        console: &mut ConsoleClient,
        fields: Vec<(String, String)>,
    ) -> creditops_tests::console::Page {
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        console.post("/console/rules", &borrowed).await
    }

    // Fields that are not amounts or numbers: each says so beside it.
    let bad = send(&mut console, rules(&tomorrow, "lots", "six")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("Enter an amount, e.g. 250,000.00."));
    assert!(bad.body.contains("Enter a whole number."));
    assert!(
        bad.body.contains("value=\"lots\""),
        "what was typed is kept"
    );
    // From today (00:00 UTC, already past): refused as the API refuses it (S9).
    let past = send(&mut console, rules(&today, "300,000.00", "7")).await;
    assert_eq!(past.status, StatusCode::CONFLICT, "{}", past.body);
    assert!(past.body.contains("Rule S9"), "{}", past.body);
    assert!(past.body.contains("never in the past"), "{}", past.body);

    let made = send(&mut console, rules(&tomorrow, "300,000.00", "7")).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert_eq!(made.location(), Some("/console/rules?done=proposed"));
    let waiting = console.get("/console/rules?done=proposed").await;
    for shown in [
        "The proposal is made and is waiting for approval by a second administrator.",
        "Waiting for approval by a second administrator.",
        "Level 1 (level-1) up to 300,000.00 EUR",
        "Cooling-off (S5) 7 months",
        "Your own proposal",
    ] {
        assert!(waiting.body.contains(shown), "{shown}: {}", waiting.body);
    }

    let mut second = admin(p, "ua-2").await;
    let inbox = second.get("/console/proposals").await;
    assert!(inbox.body.contains("A new rule set from"), "{}", inbox.body);
    let pending = p
        .call(
            "ua-2",
            "admin",
            Method::GET,
            "/v1/proposals?status=pending",
            None,
        )
        .await;
    let id = pending.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "rule_set")
        .expect("the API lists the console's rule set")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let csrf = inbox.csrf().expect("token");
    let approved = second
        .post(
            &format!("/console/proposals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let sets = p
        .call("ua-1", "admin", Method::GET, "/v1/rules", None)
        .await;
    let v2 = sets.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["version"] == 2)
        .cloned()
        .expect("version 2");
    assert_eq!(v2["cooling_off_months"], 7);
    assert_eq!(
        number(&v2["competence_order"]["levels"][0]["up_to"]),
        300_000.0
    );
    second.accept_language = "de";
    let german = second.get("/console/rules").await;
    for shown in ["Regelsätze", "künftig", "bis 300.000,00 EUR", "7 Monate"] {
        assert!(german.body.contains(shown), "{shown}: {}", german.body);
    }
}
both_backends!(
    console_admin_s9_rule_sets_are_shown_and_proposed_four_eyes,
    rule_sets_are_shown_and_proposed_four_eyes
);

/// The desk in real headless Chromium: ua-1 walks the directory, a
/// person's record and the proposal form (an S3 refusal, then a competence
/// level for lo-2 that waits on the record), sees the own proposal in the
/// inbox without buttons; ua-2 approves it there. axe-core checks every
/// page when `CREDITOPS_AXE` names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_browser_admin_walks_the_desk() {
    use creditops_tests::browser::Browser;
    let p = TestPlatform::start(creditops_tests::Backend::Sqlite)
        .await
        .expect("sqlite");
    let desk = p.url("admin", "");
    let browser = Browser::start().await;

    browser.goto(&format!("{desk}/login")).await;
    browser.type_into("#user", "ua-1").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/staff").await;
    let directory = browser.wait_for_text("Staff directory").await;
    assert!(directory.contains("Signed in as ua-1"), "{directory}");
    assert!(directory.contains("market-corporate"), "{directory}");
    browser.screenshot("admin_staff").await;
    browser.assert_accessible("admin_staff").await;

    browser.click("a[href='/console/staff/lo-2']").await;
    let person = browser.wait_for_text("Person lo-2").await;
    assert!(
        person.contains("No change for this person is waiting"),
        "{person}"
    );
    browser.screenshot("admin_person").await;
    browser.assert_accessible("admin_person").await;

    browser
        .click("a[href='/console/proposals/new?staff_id=lo-2']")
        .await;
    browser.wait_for_text("Grant a competence level").await;
    browser.screenshot("admin_propose").await;
    browser.assert_accessible("admin_propose").await;

    // A back-office role for a loan officer: refused under S3, explained.
    browser
        .click("#role-role option[value='credit_analyst']")
        .await;
    browser
        .click("form[aria-labelledby='role-h'] button[type=submit]")
        .await;
    let refused = browser.wait_for_text("Rule S3").await;
    assert!(refused.contains("segregation of duties"), "{refused}");
    browser.screenshot("admin_propose_refused").await;
    browser.assert_accessible("admin_propose_refused").await;

    browser.click("#grant-level option[value='3']").await;
    browser
        .click("form[aria-labelledby='grant-h'] button[type=submit]")
        .await;
    let waiting = browser
        .wait_for_text("Waiting for approval by a second administrator.")
        .await;
    assert!(
        waiting.contains("Competence level 3 on the market side for lo-2"),
        "{waiting}"
    );
    browser.screenshot("admin_person_pending").await;
    browser.assert_accessible("admin_person_pending").await;

    browser.goto(&format!("{desk}/console/proposals")).await;
    let inbox = browser
        .wait_for_text("Your own proposal: a second person decides it (S9).")
        .await;
    let buttons = browser
        .execute(
            "return document.querySelectorAll(\"form[action$='/approve']\").length",
            json!([]),
        )
        .await;
    assert_eq!(
        buttons,
        json!(0),
        "no buttons on one's own proposal: {inbox}"
    );
    browser.screenshot("admin_inbox_own").await;
    browser.assert_accessible("admin_inbox_own").await;

    // The second administrator decides it from the inbox.
    browser.click("form.logout button[type=submit]").await;
    browser.wait_for_url("/login").await;
    browser.type_into("#user", "ua-2").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/staff").await;
    browser.goto(&format!("{desk}/console/proposals")).await;
    browser.wait_for_text("Proposed by").await;
    browser
        .click("form[action$='/approve'] button[type=submit]")
        .await;
    browser
        .wait_for_text("The proposal is approved; the change is in force.")
        .await;
    browser.screenshot("admin_inbox_approved").await;
    browser.assert_accessible("admin_inbox_approved").await;
    browser
        .goto(&format!("{desk}/console/proposals?status=approved"))
        .await;
    let approved = browser.wait_for_text("Decided by").await;
    assert!(approved.contains("ua-2, "), "{approved}");
    browser.assert_accessible("admin_inbox_approved_tab").await;

    browser.goto(&format!("{desk}/console/rules")).await;
    browser.wait_for_text("Propose a new rule set").await;
    browser.screenshot("admin_rules").await;
    browser.assert_accessible("admin_rules").await;

    let lo2 = p
        .call("ua-1", "admin", Method::GET, "/v1/staff/lo-2", None)
        .await;
    assert!(
        lo2.ok(200)["competences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["level"] == 3),
        "{}",
        lo2.body
    );
    browser.quit().await;
    p.stop().await;
}
