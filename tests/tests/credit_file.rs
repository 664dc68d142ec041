//! L2, the credit file, end to end over HTTP on both backends: documents on
//! a case and on a borrower, known by their SHA-256; the document hashes
//! are part of the file version votes bind to (V3), so a document added
//! after the first vote voids it; the checklist of a product refuses a
//! first vote while a required document type is missing (rule L2, with a
//! `missing` list); size, media type and document type refusals; another
//! market unit cannot attach; the audit trail carries the hash, never the
//! content.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use creditops_domain::credit_file::sha256_hex;
use creditops_domain::{
    CompetenceGrant, Role, RoleAssignment, Side, StaffId, StaffMember, StaffStatus, UnitAssignment,
    UnitId,
};
use creditops_tests::reqwest::Method;
use creditops_tests::{Reply, TestPlatform, both_backends, json};
use serde_json::Value;

const PDF: &[u8] = b"%PDF-1.7\n% credit application of Muster GmbH, signed\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR annual accounts scan";

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

fn vote(decision: &str, version: i64) -> Value {
    json!({"decision": decision, "rationale": "sound cash flow, collateral adequate", "version": version})
}

/// Sends raw `bytes` with `content_type` (if any) and extra headers.
async fn upload(
    p: &TestPlatform,
    user: &str,
    service: &str,
    path: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = p
        .client
        .post(p.url(service, path))
        .bearer_auth(p.token(user, service))
        .body(bytes);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A PDF `credit_application` added to `case` by `user`.
async fn add_case_pdf(p: &TestPlatform, user: &str, case: &str, doc_type: &str) -> Reply {
    upload(
        p,
        user,
        "market",
        &format!("/v1/cases/{case}/documents?type={doc_type}"),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await
}

async fn case_state(p: &TestPlatform, case: &str) -> Value {
    p.call(
        "lo-1",
        "market",
        Method::GET,
        &format!("/v1/cases/{case}"),
        None,
    )
    .await
    .ok(200)
    .clone()
}

async fn content(p: &TestPlatform, user: &str, service: &str, id: &str) -> (u16, String, Vec<u8>) {
    let response = p
        .client
        .get(p.url(service, &format!("/v1/documents/{id}/content")))
        .bearer_auth(p.token(user, service))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (
        status,
        content_type,
        response.bytes().await.expect("body").to_vec(),
    )
}

async fn l2_upload_returns_the_sha256_and_round_trips(p: &TestPlatform) {
    let case = p.draft_case("250000.00").await;
    let case_id = id_of(&case);
    let borrower_id = case["borrower_id"].as_str().expect("borrower").to_owned();

    let added = add_case_pdf(p, "lo-1", &case_id, "credit_application").await;
    let document = added.ok(201).clone();
    assert_eq!(document["sha256"], sha256_hex(PDF));
    assert_eq!(document["size"], PDF.len());
    assert_eq!(document["type"], "credit_application");
    assert_eq!(document["media_type"], "application/pdf");
    assert_eq!(document["added_by"], "lo-1");
    assert_eq!(document["case_id"], case_id.as_str());
    assert!(document["added_at"].is_string());
    let document_id = id_of(&document);

    // The bytes come back unchanged, with their media type, on both desks.
    for (user, service) in [("lo-1", "market"), ("ba-1", "backoffice")] {
        let (status, content_type, bytes) = content(p, user, service, &document_id).await;
        assert_eq!(status, 200, "{service}");
        assert_eq!(content_type, "application/pdf", "{service}");
        assert_eq!(bytes, PDF, "{service}");
    }
    let listed = p
        .call(
            "ba-1",
            "backoffice",
            Method::GET,
            &format!("/v1/cases/{case_id}/documents"),
            None,
        )
        .await;
    assert_eq!(listed.ok(200)["items"][0]["id"], document_id.as_str());

    // The type may come as a header; the back office adds borrower documents.
    let scan = upload(
        p,
        "ba-1",
        "backoffice",
        &format!("/v1/borrowers/{borrower_id}/documents"),
        Some("image/png"),
        PNG.to_vec(),
        &[("Document-Type", "annual_accounts")],
    )
    .await;
    assert_eq!(scan.ok(201)["sha256"], sha256_hex(PNG));
    let (_, content_type, bytes) = content(p, "lo-1", "market", &id_of(&scan.body)).await;
    assert_eq!(
        (content_type.as_str(), bytes.as_slice()),
        ("image/png", PNG)
    );

    // A replacement supersedes the old document; the list keeps both.
    let corrected = upload(
        p,
        "lo-1",
        "market",
        &format!("/v1/cases/{case_id}/documents?type=credit_application&replaces={document_id}"),
        Some("text/plain; charset=utf-8"),
        "Kreditantrag, korrigiert".as_bytes().to_vec(),
        &[],
    )
    .await;
    assert_eq!(corrected.ok(201)["replaces"], document_id.as_str());
    let again = upload(
        p,
        "lo-1",
        "market",
        &format!("/v1/cases/{case_id}/documents?type=credit_application&replaces={document_id}"),
        Some("text/plain"),
        b"third".to_vec(),
        &[],
    )
    .await;
    again.problem(409);
    let listed = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases/{case_id}/documents"),
            None,
        )
        .await;
    let items = listed.ok(200)["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["superseded_by"], corrected.body["id"]);
    assert!(items[1]["superseded_by"].is_null());

    // A repeated upload with the same Idempotency-Key is answered once.
    let note_path = format!("/v1/cases/{case_id}/documents?type=other");
    let keyed = |bytes: &'static [u8]| {
        upload(
            p,
            "lo-1",
            "market",
            &note_path,
            Some("text/plain"),
            bytes.to_vec(),
            &[("Idempotency-Key", "l2-upload-1")],
        )
    };
    let once = keyed(b"note").await;
    let twice = keyed(b"note").await;
    assert_eq!(once.ok(201)["id"], twice.ok(201)["id"]);
    assert_eq!(
        twice
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    keyed(b"another note").await.problem(422);

    // Four documents, four new file versions of the case.
    assert_eq!(case_state(p, &case_id).await["version"], 5);

    // The audit trail carries hash, size and type, never the content.
    let events = p.case_events(&case_id).await;
    let added_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["body"]["action"] == "document.added")
        .collect();
    assert_eq!(added_events.len(), 3, "{events:?}");
    let data = &added_events[0]["body"]["data"];
    assert_eq!(data["sha256"], sha256_hex(PDF));
    assert_eq!(data["size"], PDF.len());
    assert_eq!(data["type"], "credit_application");
    assert_eq!(added_events[0]["body"]["rule"], "L2");
    let everything = serde_json::to_string(&events).expect("json");
    assert!(
        !everything.contains("Muster GmbH, signed"),
        "content leaked"
    );
    assert!(!everything.contains("korrigiert"), "content leaked");
    assert!(
        events
            .iter()
            .any(|e| e["body"]["action"] == "case.file_changed"),
        "{events:?}"
    );
    let verify = p
        .call("ia-1", "audit", Method::POST, "/v1/verify", None)
        .await;
    assert_eq!(verify.ok(200)["ok"], true, "{}", verify.body);
    // Every document row has its event (A1).
    let reconciled = p
        .call("ia-1", "audit", Method::GET, "/v1/reconcile", None)
        .await;
    assert_eq!(reconciled.ok(200)["ok"], true, "{}", reconciled.body);
}
both_backends!(
    l2_upload_returns_the_sha256_and_round_trips,
    l2_upload_returns_the_sha256_and_round_trips
);

async fn l2_a_document_after_the_first_vote_voids_it(p: &TestPlatform) {
    let case = p.draft_case("250000.00").await;
    let case_id = id_of(&case);
    let borrower_id = case["borrower_id"].as_str().expect("borrower").to_owned();
    let first_path = format!("/v1/cases/{case_id}/first-vote");
    let second_path = format!("/v1/cases/{case_id}/second-vote");
    let before = case_state(p, &case_id).await;

    let first = p
        .call(
            "lo-2",
            "market",
            Method::POST,
            &first_path,
            Some(vote("approve", 1)),
        )
        .await;
    assert_eq!(first.ok(200)["status"], "awaiting_second_vote");

    // A case document after the first vote: new version, the vote is void.
    add_case_pdf(p, "lo-1", &case_id, "credit_application")
        .await
        .ok(201);
    let state = case_state(p, &case_id).await;
    assert_eq!(state["version"], 2);
    assert_eq!(state["status"], "returned");
    assert_ne!(state["content_hash"], before["content_hash"]);
    // A second vote on the old version is refused; nothing is decided.
    let stale = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &second_path,
            Some(vote("approve", 1)),
        )
        .await;
    stale.problem(409);
    assert_eq!(case_state(p, &case_id).await["status"], "returned");

    // Voted again on version 2; then a borrower document voids that vote too.
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &first_path,
        Some(vote("approve", 2)),
    )
    .await
    .ok(200);
    upload(
        p,
        "ba-1",
        "backoffice",
        &format!("/v1/borrowers/{borrower_id}/documents?type=rating_report"),
        Some("application/pdf"),
        b"%PDF-1.4 rating".to_vec(),
        &[],
    )
    .await
    .ok(201);
    let state = case_state(p, &case_id).await;
    assert_eq!(
        (state["version"].as_i64(), state["status"].as_str()),
        (Some(3), Some("returned"))
    );
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &second_path,
        Some(vote("approve", 2)),
    )
    .await
    .problem(409);

    // On the current version both votes decide, bound to its hash.
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &first_path,
        Some(vote("approve", 3)),
    )
    .await
    .ok(200);
    let decided = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &second_path,
            Some(vote("approve", 3)),
        )
        .await;
    let decided = decided.ok(200);
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decision"]["file_version"], 3);

    // A decided case takes no new document; its version stays.
    add_case_pdf(p, "lo-1", &case_id, "other")
        .await
        .problem(409);
    assert_eq!(case_state(p, &case_id).await["version"], 3);
}
both_backends!(
    l2_a_document_after_the_first_vote_voids_it,
    l2_a_document_after_the_first_vote_voids_it
);

/// Installs a rule set whose checklist for `term_loan` requires a credit
/// application and annual accounts, the four-eyes way (S9).
async fn install_checklist(p: &TestPlatform) {
    let mut parameters =
        serde_json::to_value(creditops_domain::RuleParameters::defaults()).expect("json");
    parameters["credit_file"]["checklists"] = json!([
        {"product": "term_loan", "required": ["credit_application", "annual_accounts"]},
        {"product": "overdraft", "kind": "new", "required": ["id_document"]}
    ]);
    let from = Utc::now() + Duration::seconds(2);
    let proposal = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(json!({"kind": "rule_set", "valid_from": from, "parameters": parameters})),
        )
        .await;
    let proposal_id = id_of(proposal.ok(202));
    p.call(
        "ua-2",
        "admin",
        Method::POST,
        &format!("/v1/proposals/{proposal_id}/approve"),
        None,
    )
    .await
    .ok(200);
    let wait =
        (from - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200);
    tokio::time::sleep(wait).await;
}

async fn l2_checklist_missing_refuses_the_first_vote(p: &TestPlatform) {
    // A checklist naming a type outside the catalogue is refused (422).
    let mut bad = serde_json::to_value(creditops_domain::RuleParameters::defaults()).unwrap();
    bad["credit_file"]["checklists"] =
        json!([{"product": "term_loan", "required": ["balance_sheet"]}]);
    let refused = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(json!({"kind": "rule_set", "valid_from": Utc::now() + Duration::seconds(5), "parameters": bad})),
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.body);

    install_checklist(p).await;
    let case = p.draft_case("250000.00").await;
    let case_id = id_of(&case);
    let borrower_id = case["borrower_id"].as_str().expect("borrower").to_owned();
    let first_path = format!("/v1/cases/{case_id}/first-vote");

    let refused = p
        .call(
            "lo-2",
            "market",
            Method::POST,
            &first_path,
            Some(vote("approve", 1)),
        )
        .await;
    let problem = refused.problem(403);
    assert_eq!(problem["rule"], "L2", "{problem}");
    assert_eq!(
        problem["missing"],
        json!(["annual_accounts", "credit_application"]),
        "{problem}"
    );
    assert_eq!(case_state(p, &case_id).await["status"], "draft");

    // The annual accounts on the borrower's file, the application on the case's.
    upload(
        p,
        "lo-1",
        "market",
        &format!("/v1/borrowers/{borrower_id}/documents?type=annual_accounts"),
        Some("application/pdf"),
        b"%PDF-1.5 accounts".to_vec(),
        &[],
    )
    .await
    .ok(201);
    let still = p
        .call(
            "lo-2",
            "market",
            Method::POST,
            &first_path,
            Some(vote("approve", 2)),
        )
        .await;
    assert_eq!(still.problem(403)["missing"], json!(["credit_application"]));
    add_case_pdf(p, "lo-1", &case_id, "credit_application")
        .await
        .ok(201);
    let voted = p
        .call(
            "lo-2",
            "market",
            Method::POST,
            &first_path,
            Some(vote("approve", 3)),
        )
        .await;
    assert_eq!(voted.ok(200)["status"], "awaiting_second_vote");

    // The rule set in force shows the checklist.
    let rules = p
        .call("ua-1", "admin", Method::GET, "/v1/rules", None)
        .await;
    let items = rules.ok(200)["items"].as_array().expect("items").clone();
    assert!(
        items
            .iter()
            .any(|set| set["credit_file"]["checklists"][0]["product"] == "term_loan"),
        "{items:?}"
    );
}
both_backends!(
    l2_checklist_missing_refuses_the_first_vote,
    l2_checklist_missing_refuses_the_first_vote
);

async fn l2_size_media_and_type_are_refused(p: &TestPlatform) {
    let case = p.draft_case("100000.00").await;
    let case_id = id_of(&case);
    let path = format!("/v1/cases/{case_id}/documents?type=credit_application");

    // 413: above the 10 MiB bound (the general 64 KiB body bound does not
    // apply to documents: a 1 MiB one is taken).
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b' ');
    upload(
        p,
        "lo-1",
        "market",
        &path,
        Some("application/pdf"),
        big,
        &[],
    )
    .await
    .problem(413);
    let mut large = b"%PDF-1.7\n".to_vec();
    large.resize(1024 * 1024, b' ');
    let taken = upload(
        p,
        "lo-1",
        "market",
        &path,
        Some("application/pdf"),
        large,
        &[],
    )
    .await;
    assert_eq!(taken.ok(201)["size"], 1024 * 1024);

    // 415: a media type documents may not have, none, or content of another type.
    for (content_type, bytes) in [
        (Some("application/zip"), b"PK\x03\x04".to_vec()),
        (Some("text/html"), b"<html></html>".to_vec()),
        (None, PDF.to_vec()),
        (Some("application/pdf"), PNG.to_vec()),
        (Some("image/png"), PDF.to_vec()),
        (Some("image/jpeg"), PDF.to_vec()),
        (Some("text/csv"), vec![0xFF, 0xFE, 0x00, 0x41]),
        (Some("application/pdf"), Vec::new()),
    ] {
        let reply = upload(p, "lo-1", "market", &path, content_type, bytes, &[]).await;
        reply.problem(415);
    }

    // 422: a type outside the catalogue, or none.
    let unknown = upload(
        p,
        "lo-1",
        "market",
        &format!("/v1/cases/{case_id}/documents?type=balance_sheet"),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await;
    assert_eq!(unknown.problem(422)["errors"][0]["field"], "type");
    upload(
        p,
        "lo-1",
        "market",
        &format!("/v1/cases/{case_id}/documents"),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await
    .problem(422);
    // replaces must name a document of this file.
    upload(
        p,
        "lo-1",
        "market",
        &format!(
            "/v1/cases/{case_id}/documents?type=other&replaces={}",
            creditops_domain::DocumentId::generate()
        ),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await
    .problem(422);

    // Nothing of the refusals was stored: one document, version 2.
    let listed = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases/{case_id}/documents"),
            None,
        )
        .await;
    assert_eq!(listed.ok(200)["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(case_state(p, &case_id).await["version"], 2);
}
both_backends!(
    l2_size_media_and_type_are_refused,
    l2_size_media_and_type_are_refused
);

async fn l2_another_market_unit_cannot_attach(p: &TestPlatform) {
    let year_ago = Utc::now() - Duration::days(365);
    let retail = UnitId::parse("market-retail").unwrap();
    let mut tx = p.store.begin().await.unwrap();
    tx.upsert_unit(&retail, "Retail Banking", Side::Market)
        .await
        .unwrap();
    tx.insert_staff(&StaffMember {
        id: StaffId::parse("lr-1").unwrap(),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: retail.clone(),
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
    let case_id = id_of(&case);
    let document = add_case_pdf(p, "lo-1", &case_id, "credit_application").await;
    let document_id = id_of(document.ok(201));

    // Another unit: attaching, listing and reading answer as for an unknown case.
    add_case_pdf(p, "lr-1", &case_id, "other")
        .await
        .problem(404);
    p.call(
        "lr-1",
        "market",
        Method::GET,
        &format!("/v1/cases/{case_id}/documents"),
        None,
    )
    .await
    .problem(404);
    let (status, _, bytes) = content(p, "lr-1", "market", &document_id).await;
    assert_eq!(status, 404);
    assert!(!bytes.starts_with(b"%PDF"));
    // Nothing was attached: still one document, version 2.
    assert_eq!(case_state(p, &case_id).await["version"], 2);

    // The back office has no route to attach to a case (S1).
    let reply = upload(
        p,
        "ba-1",
        "backoffice",
        &format!("/v1/cases/{case_id}/documents?type=other"),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await;
    assert!(
        (403..=405).contains(&reply.status.as_u16()),
        "{}",
        reply.status
    );
}
both_backends!(
    l2_another_market_unit_cannot_attach,
    l2_another_market_unit_cannot_attach
);

async fn l2_key_financials_are_recorded_and_audited(p: &TestPlatform) {
    let case = p.draft_case("100000.00").await;
    let borrower_id = case["borrower_id"].as_str().expect("borrower").to_owned();
    let path = format!("/v1/borrowers/{borrower_id}/financials");
    let figures = json!({
        "reporting_date": "2025-12-31", "currency": "EUR", "revenue": "12500000.00",
        "ebitda": "-150000.50", "total_debt": "4200000.00", "equity": "3100000.00",
        "debt_service": "650000.00"
    });
    let recorded = p
        .call("lo-1", "market", Method::POST, &path, Some(figures.clone()))
        .await;
    let body = recorded.ok(201);
    assert_eq!(body["ebitda"], "-150000.50");
    assert_eq!(body["recorded_by"], "lo-1");
    let mut corrected = figures.clone();
    corrected["revenue"] = json!("12600000.00");
    p.call("ba-1", "backoffice", Method::POST, &path, Some(corrected))
        .await
        .ok(201);
    let mut negative = figures.clone();
    negative["revenue"] = json!("-1");
    let refused = p
        .call("lo-1", "market", Method::POST, &path, Some(negative))
        .await;
    assert_eq!(refused.problem(422)["errors"][0]["field"], "revenue");
    let mut future = figures.clone();
    future["reporting_date"] = json!("2999-12-31");
    p.call("lo-1", "market", Method::POST, &path, Some(future))
        .await
        .problem(422);

    let list = p.call("ba-1", "backoffice", Method::GET, &path, None).await;
    let items = list.ok(200)["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["revenue"], "12600000.00");
    assert_eq!(items[0]["recorded_by"], "ba-1");

    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/events?borrower_id={borrower_id}&limit=1000"),
            None,
        )
        .await;
    let recorded: Vec<Value> = events.ok(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["body"]["action"] == "borrower.financials_recorded")
        .cloned()
        .collect();
    assert_eq!(recorded.len(), 2, "{}", events.body);
    let reconciled = p
        .call("ia-1", "audit", Method::GET, "/v1/reconcile", None)
        .await;
    assert_eq!(reconciled.ok(200)["ok"], true, "{}", reconciled.body);
}
both_backends!(
    l2_key_financials_are_recorded_and_audited,
    l2_key_financials_are_recorded_and_audited
);

/// Content is never changed (the database refuses it); should it change
/// behind the database's back, the read finds the SHA-256 no longer
/// matching and refuses to serve it (L2). SQLite: the file is at hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l2_tampered_content_is_refused_never_served() {
    use sqlx::Connection;
    let p = TestPlatform::start(creditops_tests::Backend::Sqlite)
        .await
        .expect("sqlite");
    let case = p.draft_case("100000.00").await;
    let document = add_case_pdf(&p, "lo-1", &id_of(&case), "credit_application").await;
    let document_id = id_of(document.ok(201));

    let path = p.data_dir.path().join("creditops.db");
    let mut conn = sqlx::sqlite::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&path),
    )
    .await
    .expect("raw connection");
    let tamper = "UPDATE document_contents SET content = CAST('%PDF-1.7 forged' AS BLOB)";
    let refused = sqlx::query(tamper).execute(&mut conn).await;
    assert!(refused.is_err(), "the database refuses to change content");
    sqlx::query("DROP TRIGGER document_contents_immutable_update")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    sqlx::query(tamper)
        .execute(&mut conn)
        .await
        .expect("tamper");
    drop(conn);

    let (status, content_type, bytes) = content(&p, "ba-1", "backoffice", &document_id).await;
    assert_eq!(status, 500);
    assert_eq!(content_type, "application/problem+json");
    let body = String::from_utf8_lossy(&bytes);
    assert!(body.contains("SHA-256"), "{body}");
    assert!(!body.contains("forged"), "{body}");
    p.stop().await;
}
