//! The internal-audit desk of the web console over HTTP (issue 19), on
//! both backends: the event search with its filters and pages, a case's
//! story with every event proven included in the signed checkpoint, the
//! checkpoint with the published key, the chain's verification and
//! reconciliation behind the CSRF guard, and the export whose downloaded
//! bundle `audit/verify.py` accepts. Each page runs the audit API's command
//! and is audited as the API is (A7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::console::ConsoleClient;
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends, json};
use reqwest::StatusCode;
use serde_json::Value;

/// Signs `user` in at `service`'s console and returns the client.
async fn signed_in(p: &TestPlatform, service: &str, user: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(&p.url(service, ""));
    let answer = console.login(user).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    console
}

fn vote(decision: &str) -> Value {
    json!({"decision": decision, "rationale": "cash flow covers the debt service", "version": 1})
}

/// A case `lo-1` opened, refused once under S6 (its originator tried the
/// first vote), voted by `lo-2` and `ba-1` and so approved; its id.
async fn decided_case(p: &TestPlatform) -> String {
    let case = p.draft_case("250000.00").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let path = |suffix: &str| format!("/v1/cases/{id}{suffix}");
    let own = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            &path("/first-vote"),
            Some(vote("approve")),
        )
        .await;
    assert_eq!(own.problem(403)["rule"], "S6");
    let first = p
        .call(
            "lo-2",
            "market",
            Method::POST,
            &path("/first-vote"),
            Some(vote("approve")),
        )
        .await;
    assert_eq!(first.ok(200)["status"], "awaiting_second_vote");
    let second = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &path("/second-vote"),
            Some(vote("approve")),
        )
        .await;
    assert_eq!(second.ok(200)["status"], "approved");
    id
}

/// The audit events with `action` that `actor` caused, newest last.
async fn events_of(p: &TestPlatform, action: &str, actor: &str) -> Vec<Value> {
    let reply = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/events?action={action}&actor={actor}&limit=1000"),
            None,
        )
        .await;
    reply.ok(200)["items"].as_array().unwrap().clone()
}

async fn event_search_filters_pages_and_is_audited(p: &TestPlatform) {
    let id = decided_case(p).await;
    let mut console = signed_in(p, "audit", "ia-1").await;
    let home = console.get("/console").await;
    assert_eq!(home.location(), Some("/console/events"));

    // A case's events: created, the S6 refusal, both votes, the decision.
    let page = console.get(&format!("/console/events?case_id={id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for action in [
        "case.created",
        "request.refused",
        "case.first_vote",
        "case.second_vote",
    ] {
        assert!(
            page.body.contains(action),
            "{action} missing: {}",
            page.body
        );
    }
    assert!(page.body.contains("<span class=\"rule\">S6</span>"));
    assert!(page.body.contains("lo-2") && page.body.contains("ba-1"));
    assert!(
        page.body.contains(&format!("href=\"/console/cases/{id}\"")),
        "each row links its case"
    );
    assert!(page.body.contains("<th scope=\"col\""));

    // Refusals only, by actor.
    let refused = console
        .get(&format!(
            "/console/events?case_id={id}&actor=lo-1&outcome=denied"
        ))
        .await;
    assert!(refused.body.contains("request.refused"), "{}", refused.body);
    assert!(!refused.body.contains("case.created"), "{}", refused.body);
    assert!(refused.body.contains("<option value=\"denied\" selected>"));

    // Pages of 50, oldest first: the next page starts after this one
    // (every query is an event too, so a few more fill the first page).
    for _ in 0..30 {
        events_of(p, "case.created", "lo-1").await;
    }
    let first = console.get("/console/events").await;
    let seqs = |body: &str| -> Vec<i64> {
        body.split("<tr><td class=\"num\">")
            .skip(1)
            .filter_map(|row| row.split('<').next()?.parse().ok())
            .collect()
    };
    // A full page stays far below the console's 150 KB bound.
    assert!(first.body.len() < 150 * 1024, "{} bytes", first.body.len());
    let first_seqs = seqs(&first.body);
    assert_eq!(first_seqs.len(), 50, "{}", first.body);
    assert!(first_seqs.windows(2).all(|w| w[0] < w[1]));
    let at = first
        .body
        .find("href=\"/console/events?")
        .expect("a next link")
        + 6;
    let next_link = first.body[at..first.body[at..].find('"').unwrap() + at].replace("&amp;", "&");
    assert!(next_link.ends_with(&format!("after={}", first_seqs[49])));
    let second = console.get(&next_link).await;
    assert_eq!(seqs(&second.body)[0], first_seqs[49] + 1);

    // A time window: nothing before the epoch of this test run.
    let none = console.get("/console/events?to=2000-01-01").await;
    assert!(none.body.contains("No event matches these filters."));

    // German times; bad input named in plain words.
    console.accept_language = "de";
    let german = console.get(&format!("/console/events?case_id={id}")).await;
    let today = chrono::Utc::now().format("%d.%m.%Y").to_string();
    assert!(german.body.contains(&today), "{}", german.body);
    let bad = console
        .get("/console/events?case_id=nope&from=yesterday")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Die Fall-ID ist keine Fall-ID."));
    assert!(bad.body.contains("Zeiten sind Daten"));

    // The auditor's queries are audited as the API's are (A7).
    let queries = events_of(p, "audit.query", "ia-1").await;
    assert!(
        queries
            .iter()
            .any(|e| e["body"]["data"]["case_id"] == id.as_str()),
        "{queries:?}"
    );
}
both_backends!(
    console_audit_a7_event_search_filters_pages_and_is_audited,
    event_search_filters_pages_and_is_audited
);

async fn case_story_is_verified_against_the_signed_checkpoint(p: &TestPlatform) {
    let id = decided_case(p).await;
    let api_events = p.case_events(&id).await;
    let mut console = signed_in(p, "audit", "ia-1").await;
    let story = console.get(&format!("/console/cases/{id}")).await;
    assert_eq!(story.status, StatusCode::OK, "{}", story.body);
    let body = &story.body;
    assert!(body.len() < 150 * 1024, "{} bytes", body.len());
    // The current state, both votes with their rationale, the decision record.
    assert!(body.contains("Approved"), "{body}");
    assert!(body.contains("250,000.00 EUR"));
    assert!(body.contains("First vote (market)") && body.contains("Second vote (back office)"));
    assert!(body.contains("cash flow covers the debt service"));
    assert!(body.contains("Decision record") && !body.contains("Not decided yet."));
    // Every event of the case, the S6 refusal among them, each verified.
    for event in &api_events {
        let seq = event["seq"].as_i64().unwrap();
        assert!(
            body.contains(&format!("<td class=\"num\">{seq}</td>")),
            "event {seq} missing"
        );
    }
    assert!(body.contains("request.refused") && body.contains("<span class=\"rule\">S6</span>"));
    assert!(body.contains("Request refused") && body.contains("Second vote cast"));
    let verified = body.matches("✓ verified").count();
    assert!(verified > api_events.len(), "{verified} of {body}");
    assert!(!body.contains("NOT verified"), "{body}");
    assert!(body.contains("Every event of this case is intact"));

    // The read and the proofs are audited, with the checkpoint handed out.
    assert_eq!(events_of(p, "audit.case_read", "ia-1").await.len(), 1);
    let proofs = events_of(p, "audit.proof", "ia-1").await;
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0]["body"]["data"]["case_id"], id.as_str());

    // An unknown case is a plain 404 page.
    let unknown = console
        .get("/console/cases/00000000-0000-7000-8000-000000000000")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
}
both_backends!(
    console_audit_a2_case_story_is_verified_against_the_signed_checkpoint,
    case_story_is_verified_against_the_signed_checkpoint
);

async fn checkpoint_verify_and_reconcile(p: &TestPlatform) {
    p.draft_case("10000.00").await;
    let key = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint/key", None)
        .await;
    let verifier = key.ok(200)["verifier_key"].as_str().unwrap().to_owned();
    let retired = key.ok(200)["retired"][0]["verifier_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut console = signed_in(p, "audit", "ia-1").await;
    let page = console.get("/console/checkpoint").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&verifier), "the published key is shown");
    assert!(page.body.contains(&retired), "and the retired one");
    assert!(page.body.contains("BEGIN PUBLIC KEY"));
    assert!(page.body.contains("Signed tree head"));
    assert!(page.body.contains("— "), "the note's signature line");
    let handed = events_of(p, "audit.checkpoint", "ia-1").await;
    assert_eq!(handed.len(), 1, "handing the checkpoint out is audited");

    // The verification is a form: without its token it is refused.
    let csrf = page.csrf().unwrap();
    let without = console.post("/console/verify", &[]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let foreign = console
        .post_from(
            "/console/verify",
            &[("csrf", &csrf)],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(events_of(p, "audit.verify", "ia-1").await.is_empty());
    let verified = console.post("/console/verify", &[("csrf", &csrf)]).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert!(
        verified.body.contains("The chain is intact."),
        "{}",
        verified.body
    );
    let audited = events_of(p, "audit.verify", "ia-1").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["body"]["data"]["ok"], true);
    assert!(
        verified.body.contains("the first event"),
        "{}",
        verified.body
    );
    // The next verification starts from the head the first one signed; the
    // second button checks everything again.
    let again = console.post("/console/verify", &[("csrf", &csrf)]).await;
    assert!(
        again
            .body
            .contains("after the last verified, signed head: event"),
        "{}",
        again.body
    );
    let full = console
        .post("/console/verify", &[("csrf", &csrf), ("full", "true")])
        .await;
    assert!(full.body.contains("The chain is intact."), "{}", full.body);
    assert!(full.body.contains("the first event"), "{}", full.body);
    let audited = events_of(p, "audit.verify", "ia-1").await;
    assert_eq!(audited.len(), 3);
    assert_eq!(audited[1]["body"]["data"]["mode"], "incremental");
    assert_eq!(audited[2]["body"]["data"]["mode"], "full");

    let reconciled = console.get("/console/reconcile").await;
    assert_eq!(reconciled.status, StatusCode::OK);
    assert!(
        reconciled
            .body
            .contains("Every business row has its audit event.")
    );
    assert_eq!(events_of(p, "audit.reconcile", "ia-1").await.len(), 1);
}
both_backends!(
    console_audit_a1_a2_checkpoint_verify_and_reconcile,
    checkpoint_verify_and_reconcile
);

async fn export_bundle_is_accepted_by_verify_py(p: &TestPlatform) {
    let id = decided_case(p).await;
    let since = p.case_events(&id).await[0]["body"]["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint/key", None)
        .await;
    let verifier = key.ok(200)["verifier_key"].as_str().unwrap().to_owned();
    // A bundle the API handed out first: the console's export proves it is
    // consistent with it (A2), as the API's next export would.
    let api = p
        .client
        .post(p.url("audit", "/v1/exports"))
        .bearer_auth(p.token("ia-1", "audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 200);
    let api_archive = api.bytes().await.unwrap();
    let mut console = signed_in(p, "audit", "ia-1").await;
    let form = console.get("/console/exports").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf().unwrap();

    // Without the token nothing is exported.
    let without = console.post("/console/exports", &[("from", &since)]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert_eq!(events_of(p, "audit.exported", "ia-1").await.len(), 1);

    let ready = console
        .post("/console/exports", &[("csrf", &csrf), ("from", &since)])
        .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert!(
        ready.body.contains("The bundle is ready."),
        "{}",
        ready.body
    );
    let at = ready.body.find("href=\"/console/exports/").unwrap() + 6;
    let link = ready.body[at..ready.body[at..].find('"').unwrap() + at].to_owned();

    // Another session (even the same person's) does not get the bundle.
    let mut other = signed_in(p, "audit", "ia-1").await;
    assert_eq!(other.get(&link).await.status, StatusCode::NOT_FOUND);

    let response = reqwest::Client::new()
        .get(format!("{}{link}", console.base))
        .header(
            "cookie",
            console
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment; filename=\"creditops-audit-"));
    let archive = response.bytes().await.unwrap();
    let (_dir, bundle_dir) = creditops_tests::unpack_export(&archive);

    // The same files as the API's bundle, verified by the Rust verifier
    // with the published key, covering the case's first event onwards.
    let files = creditops_audit::export::read_bundle_dir(&bundle_dir).unwrap();
    let verifier_key: creditops_audit::VerifierKey = verifier.parse().unwrap();
    let report = creditops_audit::export::verify_bundle_with_keys(&files, &[verifier_key])
        .expect("the console's bundle verifies with the published key");
    let first_seq = p.case_events(&id).await[0]["seq"].as_u64().unwrap();
    assert_eq!(report.first_seq, first_seq);
    let names = |bytes: &[u8]| -> Vec<String> {
        let mut names: Vec<String> = tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path().unwrap().into_owned();
                path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    };
    let api_names = names(&api_archive);
    let mut expected = api_names.clone();
    expected.extend([
        "consistency.json".to_owned(),
        "previous-checkpoint.txt".to_owned(),
    ]);
    expected.sort();
    assert_eq!(names(&archive), expected, "API bundle: {api_names:?}");
    let api_size = tar::Archive::new(api_archive.as_ref())
        .entries()
        .unwrap()
        .count();
    assert!(api_size > 0);
    assert!(
        report.previous_size.is_some(),
        "consistent with the API's checkpoint"
    );

    // And by audit/verify.py with the published key.
    creditops_tests::assert_verify_py_accepts(&bundle_dir, &verifier);

    // The export is audited once, as the API's is.
    let exported = events_of(p, "audit.exported", "ia-1").await;
    assert_eq!(exported.len(), 2, "the console's and the API's");
    assert_eq!(
        exported[1]["body"]["data"]["first_seq"].as_u64(),
        Some(first_seq)
    );

    // A range with no event is refused in plain words, nothing exported.
    let empty = console
        .post(
            "/console/exports",
            &[
                ("csrf", &csrf),
                ("from", "2000-01-01"),
                ("to", "2000-01-02"),
            ],
        )
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    assert!(
        empty
            .body
            .contains("no event was recorded in that time range")
    );
    assert_eq!(events_of(p, "audit.exported", "ia-1").await.len(), 2);
}
both_backends!(
    console_audit_a5_export_bundle_is_accepted_by_verify_py,
    export_bundle_is_accepted_by_verify_py
);

async fn only_internal_audit_signs_in_at_the_audit_desk(p: &TestPlatform) {
    let mut console = ConsoleClient::new(&p.url("audit", ""));
    let officer = console.login("lo-2").await;
    assert_eq!(officer.status, StatusCode::FORBIDDEN);
    assert!(console.cookie("-session").is_none());
    // Without a session every page asks for the sign-in.
    for path in ["/console/events", "/console/checkpoint", "/console/exports"] {
        let page = console.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), Some("/login"));
    }
}
both_backends!(
    console_audit_s8_only_internal_audit_signs_in,
    only_internal_audit_signs_in_at_the_audit_desk
);

/// A2 on the desk: an event changed behind the application's back (the
/// append-only trigger dropped first) is marked NOT verified on its case's
/// story, naming why, and the chain's verification names its position.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_audit_a2_a_changed_event_is_not_verified() {
    let p = TestPlatform::start(creditops_tests::Backend::Sqlite)
        .await
        .expect("sqlite");
    let id = decided_case(&p).await;
    let events = p.case_events(&id).await;
    let vote = events
        .iter()
        .find(|e| e["body"]["action"] == "case.first_vote")
        .expect("the first vote's event");
    let seq = vote["seq"].as_i64().unwrap();

    let url = format!(
        "sqlite://{}",
        p.data_dir.path().join("creditops.db").display()
    );
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("DROP TRIGGER audit_events_no_update")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    sqlx::query(
        "UPDATE audit_events SET body = CAST(REPLACE(CAST(body AS TEXT), '\"lo-2\"', '\"lo-9\"') AS BLOB) \
         WHERE seq = ?",
    )
    .bind(seq)
    .execute(&mut conn)
    .await
    .expect("tamper");
    drop(conn);

    let mut console = signed_in(&p, "audit", "ia-1").await;
    let story = console.get(&format!("/console/cases/{id}")).await;
    assert_eq!(story.status, StatusCode::OK, "{}", story.body);
    let body = &story.body;
    assert!(body.contains("At least one event of this case could not be verified"));
    assert_eq!(
        body.matches("NOT verified: the body no longer matches its leaf hash")
            .count(),
        1,
        "{body}"
    );
    let row = &body[body
        .find("<tr class=\"audit-bad\">")
        .expect("the marked row")..];
    assert!(
        row.starts_with(&format!(
            "<tr class=\"audit-bad\"><td class=\"num\">{seq}</td>"
        )),
        "{row}"
    );
    assert!(body.contains("✓ verified"), "the other events still verify");

    let page = console.get("/console/checkpoint").await;
    let csrf = page.csrf().unwrap();
    let verified = console.post("/console/verify", &[("csrf", &csrf)]).await;
    assert!(
        verified.body.contains("The chain is broken."),
        "{}",
        verified.body
    );
    assert!(
        verified
            .body
            .contains(&format!("<code class=\"audit-hash\">{seq}</code>")),
        "{}",
        verified.body
    );
    p.stop().await;
}

/// The auditor's desk in real headless Chromium: sign in, find a decided
/// case among the events, read its verified story, the checkpoint with the
/// published key, verify the chain, reconcile, start an export and download
/// the bundle, which `audit/verify.py` accepts; axe-core checks every page
/// when `CREDITOPS_AXE` names `axe.min.js`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_browser_auditor_walks_the_audit_desk() {
    use creditops_tests::browser::Browser;
    let p = TestPlatform::start(creditops_tests::Backend::Sqlite)
        .await
        .expect("sqlite");
    let id = decided_case(&p).await;
    let audit = p.url("audit", "");
    let browser = Browser::start().await;

    browser.goto(&format!("{audit}/login")).await;
    browser.type_into("#user", "ia-1").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/console/events").await;
    let events = browser.wait_for_text("Signed in as").await;
    assert!(events.contains("Signed in as ia-1"), "{events}");
    assert!(events.contains("org_unit.imported"), "{events}");
    browser.screenshot("audit_events").await;
    browser.assert_accessible("audit_events").await;

    browser.type_into("#case_id", &id).await;
    browser
        .click("form[action='/console/events'] button[type=submit]")
        .await;
    // The filtered page is the one without the demo organisation's events.
    browser.wait_for_url("&to=").await;
    let found = browser.wait_for_text("case.second_vote").await;
    assert!(found.contains("request.refused"), "{found}");
    assert!(!found.contains("org_unit.imported"), "{found}");
    browser.screenshot("audit_events_of_case").await;
    browser.assert_accessible("audit_events_of_case").await;

    browser
        .click(&format!("a[href='/console/cases/{id}']"))
        .await;
    let story = browser
        .wait_for_text("Every event of this case is intact")
        .await;
    assert!(story.contains("Decision record"), "{story}");
    assert!(story.contains("✓ verified"), "{story}");
    assert!(!story.contains("NOT verified"), "{story}");
    browser.screenshot("audit_story").await;
    browser.assert_accessible("audit_story").await;

    browser.click("nav a[href='/console/checkpoint']").await;
    let checkpoint = browser.wait_for_text("Signed tree head").await;
    assert!(checkpoint.contains("Published key"), "{checkpoint}");
    browser.screenshot("audit_checkpoint").await;
    browser.assert_accessible("audit_checkpoint").await;

    browser
        .click("form[action='/console/verify'] button[type=submit]")
        .await;
    browser.wait_for_text("The chain is intact.").await;
    browser.screenshot("audit_verified").await;
    browser.assert_accessible("audit_verified").await;

    browser.goto(&format!("{audit}/console/checkpoint")).await;
    browser.wait_for_text("Signed tree head").await;
    browser.click("a[href='/console/reconcile']").await;
    browser
        .wait_for_text("Every business row has its audit event.")
        .await;
    browser.screenshot("audit_reconciled").await;
    browser.assert_accessible("audit_reconciled").await;

    browser.click("nav a[href='/console/exports']").await;
    browser.wait_for_text("Start the export").await;
    browser.screenshot("audit_export").await;
    browser.assert_accessible("audit_export").await;
    browser
        .click("form[action='/console/exports'] button[type=submit]")
        .await;
    let ready = browser.wait_for_text("The bundle is ready.").await;
    assert!(ready.contains("Download the bundle"), "{ready}");
    browser.screenshot("audit_export_ready").await;
    browser.assert_accessible("audit_export_ready").await;

    // The download link, followed by the browser with its own session: the
    // bundle it gets is accepted by audit/verify.py with the published key.
    let fetched = browser
        .execute(
            "const link = document.querySelector('a[download]');\
             const x = new XMLHttpRequest();\
             x.open('GET', link.href, false);\
             x.overrideMimeType('text/plain; charset=x-user-defined');\
             x.send();\
             let bytes = '';\
             for (let i = 0; i < x.responseText.length; i++) {\
               bytes += String.fromCharCode(x.responseText.charCodeAt(i) & 0xff);\
             }\
             return [x.status, x.getResponseHeader('content-type'), btoa(bytes)];",
            json!([]),
        )
        .await;
    assert_eq!(fetched[0], 200, "{fetched}");
    assert_eq!(fetched[1], "application/x-tar");
    use base64::Engine as _;
    let archive = base64::engine::general_purpose::STANDARD
        .decode(fetched[2].as_str().unwrap())
        .unwrap();
    let (_dir, bundle_dir) = creditops_tests::unpack_export(&archive);
    let key = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint/key", None)
        .await;
    let verifier = key.ok(200)["verifier_key"].as_str().unwrap().to_owned();
    creditops_tests::assert_verify_py_accepts(&bundle_dir, &verifier);

    browser.quit().await;
    p.stop().await;
}
