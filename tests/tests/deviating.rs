//! The deviating-decisions report (L11) end to end over HTTP, on both
//! backends: escalated and divergent board-level decisions are listed with
//! their votes, a plain two-vote approval is not; JSON and CSV; the role
//! matrix; the audit service's read is audited (A7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, SecondsFormat, Utc};
use creditops_store::StoreExt;
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends, json};
use serde_json::Value;

async fn open_case(p: &TestPlatform, amount: &str) -> String {
    let borrower = p
        .borrower_with_limit(
            "lo-1",
            json!({"name": "Muster GmbH", "country": "DE", "sector": "C25"}),
        )
        .await;
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(json!({"borrower_id": borrower, "amount": amount, "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "machinery"})),
        )
        .await;
    reply.ok(201)["id"].as_str().unwrap().to_owned()
}

async fn vote(p: &TestPlatform, who: &str, case: &str, stage: &str, decision: &str) -> Value {
    let service = if stage == "first" {
        "market"
    } else {
        "backoffice"
    };
    p.call(
        who,
        service,
        Method::POST,
        &format!("/v1/cases/{case}/{stage}-vote"),
        Some(json!({"decision": decision, "rationale": format!("{who}: {decision}, \"see file\""), "version": 1})),
    )
    .await
    .ok(200)
    .clone()
}

async fn csv(p: &TestPlatform, user: &str, service: &str, query: &str) -> (u16, String, String) {
    let response = creditops_tests::reqwest::Client::new()
        .get(p.url(
            service,
            &format!("/v1/reports/deviating-decisions?{query}&format=csv"),
        ))
        .bearer_auth(p.token(user, service))
        .send()
        .await
        .expect("report");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

fn item<'a>(report: &'a Value, case: &str) -> Option<&'a Value> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["case_id"] == case)
}

async fn the_report_lists_escalated_and_divergent_decisions(p: &TestPlatform) {
    let from = (Utc::now() - Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Micros, true);

    // Escalated: market approves, back office declines, new voters at the
    // next level approve.
    let escalated = open_case(p, "100000.00").await;
    vote(p, "lo-2", &escalated, "first", "approve").await;
    let body = vote(p, "ba-1", &escalated, "second", "decline").await;
    assert_eq!(body["status"], "escalated", "{body}");
    vote(p, "lo-3", &escalated, "first", "approve").await;
    let body = vote(p, "ba-2", &escalated, "second", "approve").await;
    assert_eq!(body["status"], "approved", "{body}");

    // Divergent at the board: escalated from level 3 up to the board,
    // where divergent votes decline.
    let board = open_case(p, "4000000.00").await;
    vote(p, "lo-3", &board, "first", "approve").await;
    let body = vote(p, "ba-3", &board, "second", "decline").await;
    assert_eq!(body["status"], "escalated", "{body}");
    assert_eq!(body["escalation_level"], 4, "{body}");
    vote(p, "mb-1", &board, "first", "approve").await;
    let body = vote(p, "bb-1", &board, "second", "decline").await;
    assert_eq!(body["status"], "declined", "{body}");

    // A plain two-vote approval is not deviating.
    let plain = open_case(p, "100000.00").await;
    vote(p, "lo-2", &plain, "first", "approve").await;
    let body = vote(p, "ba-1", &plain, "second", "approve").await;
    assert_eq!(body["status"], "approved", "{body}");
    assert_eq!(body["decision"]["flags"], json!([]), "{body}");

    let to = (Utc::now() + Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Micros, true);
    let query = format!("from={from}&to={to}");
    let path = format!("/v1/reports/deviating-decisions?{query}");

    // JSON on the risk service.
    let report = p
        .call("rc-1", "risk", Method::GET, &path, None)
        .await
        .ok(200)
        .clone();
    assert!(item(&report, &plain).is_none(), "{report}");
    let e = item(&report, &escalated).expect("the escalated decision");
    assert!(e["flags"].as_array().unwrap().contains(&json!("escalated")));
    assert_eq!(e["outcome"], "approved");
    assert_eq!(e["level"], 2);
    assert_eq!(e["kind"], "new");
    assert_eq!(e["amount"], "100000.00");
    assert_eq!(e["rules_version"], 1);
    let votes = e["votes"].as_array().unwrap();
    assert_eq!(votes.len(), 4, "both rounds: {e}");
    assert_eq!(
        (
            &votes[0]["voter"],
            &votes[0]["stage"],
            &votes[0]["decision"]
        ),
        (&json!("lo-2"), &json!("first"), &json!("approve"))
    );
    assert_eq!(
        (&votes[1]["voter"], &votes[1]["decision"]),
        (&json!("ba-1"), &json!("decline"))
    );
    assert_eq!(votes[3]["voter"], "ba-2");
    assert_eq!(votes[3]["round"], 1);
    assert_eq!(votes[3]["level"], 2);
    let b = item(&report, &board).expect("the board decision");
    let flags = b["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("board_level")) && flags.contains(&json!("divergent")));
    assert_eq!(b["outcome"], "declined");
    assert_eq!(b["level"], 4);
    assert_eq!(b["amount"], "4000000.00");
    assert!(b["decided_at"].is_string() && b["borrower_id"].is_string());

    // CSV: one row per decision, RFC 4180 quoting of the rationale.
    let (status, content_type, text) = csv(p, "rc-1", "risk", &query).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(text.starts_with("case_id,decided_at,borrower_id,kind,amount,"));
    let rows: Vec<&str> = text.lines().collect();
    let row_of = |case: &str| rows.iter().find(|r| r.starts_with(case)).copied();
    assert!(row_of(&plain).is_none(), "{text}");
    let row = row_of(&escalated).expect("escalated row");
    assert!(row.contains(",new,100000.00,EUR,approved,2,"), "{row}");
    assert!(row.contains("\"lo-3: approve, \"\"see file\"\"\""), "{row}");
    let row = row_of(&board).expect("board row");
    assert!(
        row.contains("board_level;") || row.contains(";board_level"),
        "{row}"
    );

    // Internal audit reads it on the risk service and on the audit service.
    p.call("ia-1", "risk", Method::GET, &path, None)
        .await
        .ok(200);
    let audited = p
        .call("ia-1", "audit", Method::GET, &path, None)
        .await
        .ok(200)
        .clone();
    assert_eq!(audited["items"], report["items"]);
    let (status, _, audited_csv) = csv(p, "ia-1", "audit", &query).await;
    assert_eq!((status, audited_csv), (200, text));

    // The role matrix: a loan officer may not read it.
    p.call("lo-1", "risk", Method::GET, &path, None)
        .await
        .problem(403);
    p.call("lo-1", "audit", Method::GET, &path, None)
        .await
        .problem(403);

    // Bad periods: 422, nothing read.
    for bad in [
        "from=yesterday".to_owned(),
        "from=2026-01-01&to=2027-06-01".to_owned(),
        "from=2026-02-01&to=2026-01-01".to_owned(),
        "format=xml".to_owned(),
    ] {
        let reply = p
            .call(
                "rc-1",
                "risk",
                Method::GET,
                &format!("/v1/reports/deviating-decisions?{bad}"),
                None,
            )
            .await;
        reply.problem(422);
    }
    // Dates are accepted; the default period is the last 90 days.
    p.call(
        "rc-1",
        "risk",
        Method::GET,
        "/v1/reports/deviating-decisions?from=2026-01-01&to=2026-12-31",
        None,
    )
    .await
    .ok(200);
    let default = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            "/v1/reports/deviating-decisions",
            None,
        )
        .await
        .ok(200)
        .clone();
    assert!(item(&default, &board).is_some(), "{default}");

    // The audit service's reads are audited (A7), ids and counts only.
    p.store
        .flush_audit(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=audit.records_read&actor=ia-1&limit=1000",
            None,
        )
        .await
        .ok(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    let reads: Vec<&Value> = events
        .iter()
        .filter(|e| e["body"]["data"]["resource"] == "deviating_decisions")
        .collect();
    assert_eq!(reads.len(), 2, "{events:?}");
    assert_eq!(reads[0]["body"]["data"]["returned"], 2);
    assert!(!reads[0]["body"].to_string().contains("see file"));
}
both_backends!(
    l11_the_deviating_decisions_report_lists_an_escalated_and_a_divergent_board_decision,
    the_report_lists_escalated_and_divergent_decisions
);
