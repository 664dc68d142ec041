//! Risk control end to end over HTTP, on both backends (R1-R9): the gate's
//! three verdicts, large exposures, the LCR floor, reservations with
//! disbursement and expiry, the watcher's breaches as alerts and audit
//! events, imports with bad rows, four-eyes limits and the reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends, json};
use rust_decimal::Decimal;
use serde_json::Value;

fn vote(decision: &str, version: i64) -> Value {
    json!({"decision": decision, "rationale": "reviewed the file", "version": version})
}

/// The decimal in a JSON string, so "0" and "0.00" compare equal.
fn dec(value: &Value) -> Decimal {
    value
        .as_str()
        .expect("decimal string")
        .parse()
        .expect("decimal")
}

fn amount(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

/// A borrower without any limit; returns its id.
async fn bare_borrower(p: &TestPlatform, sector: &str) -> String {
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/borrowers",
            Some(json!({"name": "Risiko GmbH", "country": "DE", "sector": sector})),
        )
        .await;
    id_of(reply.ok(201))
}

async fn open_case(p: &TestPlatform, borrower: &str, amount: &str) -> String {
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(json!({"borrower_id": borrower, "amount": amount, "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "plant"})),
        )
        .await;
    id_of(reply.ok(201))
}

async fn first(p: &TestPlatform, who: &str, case: &str) -> creditops_tests::Reply {
    p.call(
        who,
        "market",
        Method::POST,
        &format!("/v1/cases/{case}/first-vote"),
        Some(vote("approve", 1)),
    )
    .await
}

async fn second(p: &TestPlatform, who: &str, case: &str) -> creditops_tests::Reply {
    p.call(
        who,
        "backoffice",
        Method::POST,
        &format!("/v1/cases/{case}/second-vote"),
        Some(vote("approve", 1)),
    )
    .await
}

/// Opens a case and casts both approving votes at level 2 (lo-2, ba-1).
async fn approve_case(
    p: &TestPlatform,
    borrower: &str,
    amount: &str,
) -> (String, creditops_tests::Reply) {
    let case = open_case(p, borrower, amount).await;
    first(p, "lo-2", &case).await.ok(200);
    let reply = second(p, "ba-1", &case).await;
    (case, reply)
}

/// A GET answered with text (CSV): status, content type and body.
async fn get_text(
    p: &TestPlatform,
    user: &str,
    service: &str,
    path: &str,
) -> (u16, String, String) {
    let response = p
        .client
        .get(p.url(service, path))
        .bearer_auth(p.token(user, service))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

async fn exposure_of(p: &TestPlatform, borrower: &str) -> Value {
    let reply = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/exposures?borrower_id={borrower}"),
            None,
        )
        .await;
    reply.ok(200)["items"][0].clone()
}

async fn disburse(p: &TestPlatform, case: &str, key: Option<&str>) -> creditops_tests::Reply {
    let token = p.token("lo-1", "market");
    let headers: Vec<(&str, &str)> = key
        .map(|k| vec![("idempotency-key", k)])
        .unwrap_or_default();
    p.send(
        "market",
        Method::POST,
        &format!("/v1/cases/{case}/disburse"),
        Some(&token),
        None,
        &headers,
    )
    .await
}

/// Records a liquidity position: rc-1 proposes, rc-2 approves (four-eyes);
/// the recorded position.
async fn set_liquidity(p: &TestPlatform, hqla: &str, outflows: &str) -> Value {
    let proposed = p
        .call(
            "rc-1",
            "risk",
            Method::PUT,
            "/v1/liquidity",
            Some(json!({"hqla": hqla, "outflows_30d": outflows, "inflows_30d": "0"})),
        )
        .await;
    let approved = p.approve_pending(&proposed, "rc-2", "risk").await;
    approved.ok(200)["applied"]["liquidity"].clone()
}

async fn events(p: &TestPlatform, query: &str) -> Vec<Value> {
    p.call(
        "ia-1",
        "audit",
        Method::GET,
        &format!("/v1/events?{query}&limit=1000"),
        None,
    )
    .await
    .ok(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Asserts that `reply` is the gate's refusal (403, R4) naming `check`.
fn refused_by_gate(reply: &creditops_tests::Reply, check: &str) {
    let problem = reply.problem(403);
    assert_eq!(problem["rule"], "R4", "{check}: {problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(check),
        "{check}: {problem}"
    );
}

/// Creates the group of connected clients `id` (back office).
async fn create_group(p: &TestPlatform, id: &str) {
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/groups",
        Some(json!({"id": id, "name": format!("{id} group")})),
    )
    .await
    .ok(201);
}

/// Moves `borrower` into `group`: ba-1 proposes, ba-3 approves (back
/// office, four-eyes); the approval's answer.
async fn join_group(p: &TestPlatform, borrower: &str, group: &str) -> creditops_tests::Reply {
    let proposed = p
        .call(
            "ba-1",
            "backoffice",
            Method::PUT,
            &format!("/v1/borrowers/{borrower}/group"),
            Some(json!({"group_id": group})),
        )
        .await;
    p.approve_pending(&proposed, "ba-3", "backoffice").await
}

/// R1, R3, R4: pass, soft breach (escalation) and hard breach over HTTP.
async fn gate_verdicts(p: &TestPlatform) {
    // R1: no limit, no credit business.
    let unlimited = bare_borrower(p, "G47").await;
    let (case, refused) = approve_case(p, &unlimited, "100000.00").await;
    let problem = refused.problem(403);
    assert_eq!(problem["rule"], "R4", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("limit_required"),
        "{problem}"
    );
    let denied: Vec<Value> = events(p, &format!("case_id={case}&outcome=denied")).await;
    assert!(
        denied.iter().any(|e| e["body"]["rule"] == "R4"),
        "the refusal is audited: {denied:?}"
    );

    // Pass: within the limit; the verdict is in the decision record and the
    // amount is reserved.
    let b = bare_borrower(p, "G47").await;
    p.grant_limit("borrower", &b, "500000").await;
    let (case, approved) = approve_case(p, &b, "250000.00").await;
    let decision = &approved.ok(200)["decision"];
    assert_eq!(decision["risk"]["outcome"], "within", "{decision}");
    let findings = decision["risk"]["findings"].as_array().unwrap();
    let limit = findings
        .iter()
        .find(|f| f["check"] == "borrower_limit")
        .unwrap();
    assert_eq!(dec(&limit["headroom"]), amount("250000"));
    assert_eq!(
        dec(&exposure_of(p, &b).await["reserved"]),
        amount("250000.00")
    );
    let actions: Vec<String> = events(p, &format!("case_id={case}"))
        .await
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"risk.reserved".to_owned()), "{actions:?}");

    // Hard: over the limit beyond its tolerance; the verdict names the limit
    // and its headroom.
    let (_, hard) = approve_case(p, &b, "250000.01").await;
    let problem = hard.problem(403);
    assert_eq!(problem["rule"], "R4");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("borrower_limit") && detail.contains("0.01"),
        "{detail}"
    );

    // Soft: within a 10 % tolerance: escalated one level up, then approved
    // there by new voters, flagged.
    let soft = bare_borrower(p, "G47").await;
    let proposal = p
        .call("rc-1", "risk", Method::POST, "/v1/limits", Some(json!({"kind": "borrower", "key": soft, "amount": "200000", "tolerance_percent": "30", "reason": "review"})))
        .await;
    let limit_id = id_of(proposal.ok(201));
    p.call(
        "bb-1",
        "backoffice",
        Method::POST,
        &format!("/v1/limits/{limit_id}/approve"),
        None,
    )
    .await
    .ok(200);
    let (case, escalated) = approve_case(p, &soft, "250000.00").await;
    assert_eq!(
        escalated.ok(200)["status"],
        "escalated",
        "{}",
        escalated.body
    );
    first(p, "lo-3", &case).await.ok(200);
    let decided = second(p, "ba-2", &case).await;
    let decision = &decided.ok(200)["decision"];
    assert_eq!(decided.body["status"], "approved");
    assert_eq!(decision["risk"]["outcome"], "soft");
    let flags = decision["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("risk_soft_breach")), "{flags:?}");
    // The approval over the limit is a breach the watcher records (R7).
    let alerts = p
        .call("rc-1", "risk", Method::GET, "/v1/alerts", None)
        .await;
    let items = alerts.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        items
            .iter()
            .any(|a| a["subject"] == format!("borrower:{soft}") && a["severity"] == "soft"),
        "{items:?}"
    );
}
both_backends!(gate_passes_escalates_and_refuses, gate_verdicts);

/// The back office's board member confirms the recorded resolution (V11).
async fn confirm_resolution(p: &TestPlatform, case: &str) {
    p.call(
        "bb-1",
        "backoffice",
        Method::POST,
        &format!("/v1/cases/{case}/board-resolution/confirmation"),
        Some(json!({"version": 1})),
    )
    .await
    .ok(200);
}

/// R3, V11: a large exposure needs a full-board resolution; above the cap
/// it is refused.
async fn large_exposures(p: &TestPlatform) {
    // Demo Tier 1 is EUR 500m: 10 % = 50m, 25 % = 125m.
    let b = bare_borrower(p, "D35").await;
    p.grant_limit("borrower", &b, "1000000000").await;
    let case = open_case(p, &b, "60000000.00").await;
    first(p, "mb-1", &case).await.ok(200);
    let refused = second(p, "bb-1", &case).await;
    assert_eq!(refused.problem(403)["rule"], "V11", "{}", refused.body);
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/cases/{case}/board-resolution"),
        Some(json!({"reference": "board 2026/41", "version": 1})),
    )
    .await
    .ok(200);
    // Recorded by one analyst, confirmed by a board-level member (V11).
    let unconfirmed = second(p, "bb-1", &case).await;
    assert_eq!(
        unconfirmed.problem(403)["rule"],
        "V11",
        "{}",
        unconfirmed.body
    );
    confirm_resolution(p, &case).await;
    let approved = second(p, "bb-1", &case).await;
    let decision = &approved.ok(200)["decision"];
    assert!(
        decision["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("large_exposure")),
        "{decision}"
    );
    assert_eq!(decision["risk"]["large_exposure"], true);

    // The report lists the unit.
    let report = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            "/v1/reports/large-exposures",
            None,
        )
        .await;
    let lines = report.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["unit"], format!("borrower:{b}"));
    assert_eq!(lines[0]["exposure"], "60000000.00");
    assert_eq!(lines[0]["percent_of_tier1"], "12.0000");
    let (status, content_type, text) =
        get_text(p, "ia-1", "risk", "/v1/reports/million-loans?format=csv").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(
        text.starts_with("unit,members,exposure,percent_of_tier1\r\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("borrower:{b},1,60000000.00,12.0000")),
        "{text}"
    );

    // Above the cap (125m incl. the 60m already reserved): refused.
    let case = open_case(p, &b, "65000000.01").await;
    first(p, "mb-1", &case).await.ok(200);
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/cases/{case}/board-resolution"),
        Some(json!({"reference": "board 2026/42", "version": 1})),
    )
    .await
    .ok(200);
    confirm_resolution(p, &case).await;
    let refused = second(p, "bb-1", &case).await;
    let problem = refused.problem(403);
    assert_eq!(problem["rule"], "R4");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("large_exposure_cap"),
        "{problem}"
    );
}
both_backends!(
    large_exposures_need_the_board_and_respect_the_cap,
    large_exposures
);

/// R6: the projected LCR may not fall below the floor, at approval and at
/// disbursement.
async fn liquidity_floor(p: &TestPlatform) {
    let b = bare_borrower(p, "G47").await;
    p.grant_limit("borrower", &b, "100000000").await;
    // Outflows 1bn, floor 110 %: 5m more leaves 1.099bn -> 109.9 %.
    set_liquidity(p, "1104000000", "1000000000").await;
    let case = open_case(p, &b, "5000000.00").await;
    first(p, "lo-3", &case).await.ok(200);
    let refused = second(p, "ba-3", &case).await;
    let problem = refused.problem(403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("liquidity_floor"),
        "{problem}"
    );
    // Exactly at the floor passes.
    set_liquidity(p, "1105000000", "1000000000").await;
    second(p, "ba-3", &case).await.ok(200);
    // The liquidity position worsens before the money leaves: refused.
    set_liquidity(p, "1000000000", "1000000000").await;
    let refused = disburse(p, &case, None).await;
    assert_eq!(refused.problem(403)["rule"], "R6", "{}", refused.body);
    set_liquidity(p, "2000000000", "1000000000").await;
    disburse(p, &case, None).await.ok(200);
    let liquidity = p
        .call("rc-1", "risk", Method::GET, "/v1/liquidity", None)
        .await;
    // Disbursed after the last position: committed until the next one.
    assert_eq!(
        dec(&liquidity.ok(200)["committed_since"]),
        amount("5000000"),
        "{}",
        liquidity.body
    );
}
both_backends!(
    liquidity_floor_refuses_approval_and_disbursement,
    liquidity_floor
);

/// R5: approval reserves, disbursement consumes once, expiry releases.
async fn reservations(p: &TestPlatform) {
    let b = bare_borrower(p, "G47").await;
    p.grant_limit("borrower", &b, "600000").await;
    let (case, approved) = approve_case(p, &b, "200000.00").await;
    approved.ok(200);
    let first_disbursal = disburse(p, &case, Some("pay-1")).await;
    let body = first_disbursal.ok(200).clone();
    assert_eq!(body["reservation"]["status"], "consumed");
    // Same key: the first answer again. No key: refused.
    let replay = disburse(p, &case, Some("pay-1")).await;
    assert_eq!(replay.ok(200), &body);
    let again = disburse(p, &case, None).await;
    assert_eq!(again.problem(409)["rule"], "R5");
    let exposure = exposure_of(p, &b).await;
    assert_eq!(dec(&exposure["reserved"]), amount("0"));
    assert_eq!(dec(&exposure["outstanding"]), amount("200000.00"));
    let disbursed = events(p, &format!("case_id={case}&action=case.disbursed")).await;
    assert_eq!(disbursed.len(), 1);

    // A second approval expires after the reservation period (90 days).
    let (late, approved) = approve_case(p, &b, "300000.00").await;
    approved.ok(200);
    assert_eq!(
        dec(&exposure_of(p, &b).await["reserved"]),
        amount("300000.00")
    );
    // Only 100k headroom is left while it is reserved.
    let (_, refused) = approve_case(p, &b, "100000.01").await;
    assert_eq!(refused.problem(403)["rule"], "R4");
    let platform = p.platform.as_ref().unwrap();
    let round = platform
        .risk_watch_round(Utc::now() + Duration::days(91))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(round.expired, 1);
    let expired = disburse(p, &late, None).await;
    let problem = expired.problem(409);
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    assert_eq!(dec(&exposure_of(p, &b).await["reserved"]), amount("0"));
    let audited = events(
        p,
        &format!("case_id={late}&action=risk.reservation_expired"),
    )
    .await;
    assert_eq!(audited.len(), 1);
    // The released headroom is available again.
    let (_, approved) = approve_case(p, &b, "350000.00").await;
    approved.ok(200);
    // Disbursing is market's: back office has no such route (S1).
    let token = p.token("ba-1", "backoffice");
    let reply = p
        .send(
            "backoffice",
            Method::POST,
            &format!("/v1/cases/{case}/disburse"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert!(
        matches!(reply.status.as_u16(), 403 | 404),
        "{}",
        reply.status
    );
}
both_backends!(reservations_are_consumed_once_and_expire, reservations);

/// R7: an exposure change beyond a limit becomes a breach record, an alert
/// (also streamed) and an audit event; back within, it resolves.
async fn watcher(p: &TestPlatform) {
    let b = bare_borrower(p, "H50").await;
    p.grant_limit("borrower", &b, "1000000").await;
    // Subscribe to the stream first.
    let mut stream = p
        .client
        .get(p.url("risk", "/v1/alerts/stream"))
        .bearer_auth(p.token("rc-1", "risk"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let lines = format!(
        "{{\"source_id\":\"loan-1\",\"borrower_id\":\"{b}\",\"amount\":\"1200000.00\",\"as_of\":\"{}\"}}\n",
        Utc::now().to_rfc3339()
    );
    let imported = p
        .send_typed(
            "rc-1",
            "risk",
            "/v1/exposures/import",
            "application/x-ndjson",
            &lines,
        )
        .await;
    let body = imported.ok(200).clone();
    assert_eq!(body["inserted"], 1);
    let breach = &body["breaches"][0];
    assert_eq!(breach["subject"], format!("borrower:{b}"));
    assert_eq!(breach["amount_over"], "200000.00");
    assert_eq!(breach["severity"], "hard");
    assert_eq!(breach["owner"], "risk-control");
    let breach_id = breach["id"].as_str().unwrap().to_owned();
    let alerts = p
        .call("rc-1", "risk", Method::GET, "/v1/alerts", None)
        .await;
    assert!(
        alerts.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == breach_id.as_str())
    );
    let audited = events(p, "action=risk.breach").await;
    assert!(
        audited
            .iter()
            .any(|e| e["body"]["data"]["breach_id"] == breach_id.as_str()),
        "{audited:?}"
    );
    // The stream delivers it.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !seen.contains(&breach_id) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the breach is streamed in time")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: breach"), "{seen}");
    // The daily report lists it, as JSON and CSV.
    let today = Utc::now().date_naive();
    let report = p
        .call(
            "ia-1",
            "risk",
            Method::GET,
            &format!("/v1/reports/breaches?date={today}"),
            None,
        )
        .await;
    assert_eq!(report.ok(200)["items"].as_array().unwrap().len(), 1);
    let (_, _, csv) = get_text(
        p,
        "rc-1",
        "risk",
        &format!("/v1/reports/breaches?date={today}&format=csv"),
    )
    .await;
    assert!(csv.contains(&breach_id), "{csv}");
    // Back within the limit: resolved, audited.
    let lower = lines.replace("1200000.00", "900000.00");
    let updated = p
        .send_typed(
            "rc-1",
            "risk",
            "/v1/exposures/import",
            "application/x-ndjson",
            &lower,
        )
        .await;
    assert_eq!(updated.ok(200)["updated"], 1);
    let open = p
        .call("rc-1", "risk", Method::GET, "/v1/alerts", None)
        .await;
    assert!(
        open.ok(200)["items"].as_array().unwrap().is_empty(),
        "{}",
        open.body
    );
    assert_eq!(events(p, "action=risk.breach_resolved").await.len(), 1);
    // A Tier 1 change re-evaluates every unit: 900k is over 25 % of 2m.
    let proposed = p
        .call(
            "rc-1",
            "risk",
            Method::PUT,
            "/v1/capital",
            Some(json!({"tier1": "2000000"})),
        )
        .await;
    let capital = p.approve_pending(&proposed, "rc-2", "risk").await;
    let breaches = capital.ok(200)["applied"]["breaches"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        breaches.iter().any(|b| b["check"] == "large_exposure_cap"),
        "{breaches:?}"
    );
}
both_backends!(watcher_breach_alert_and_audit, watcher);

/// R2: imports are all or nothing, every bad row named; idempotent by source id.
async fn imports(p: &TestPlatform) {
    let b = bare_borrower(p, "G47").await;
    let now = Utc::now().to_rfc3339();
    let bad = format!(
        "{{\"source_id\":\"a-1\",\"borrower_id\":\"{b}\",\"amount\":\"10.00\",\"as_of\":\"{now}\"}}\n\
         {{\"source_id\":\"a-2\",\"borrower_id\":\"{b}\",\"amount\":\"1e3\",\"as_of\":\"{now}\"}}\n\
         {{\"source_id\":\"a-1\",\"borrower_id\":\"{b}\",\"amount\":\"5.00\",\"as_of\":\"{now}\"}}\n\
         not json\n"
    );
    let reply = p
        .send_typed(
            "rc-1",
            "risk",
            "/v1/exposures/import",
            "application/x-ndjson",
            &bad,
        )
        .await;
    let problem = reply.problem(422);
    let rows: Vec<(u64, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (2, "amount".into()),
            (3, "source_id".into()),
            (4, String::new())
        ],
        "{problem}"
    );
    assert_eq!(dec(&exposure_of(p, &b).await["outstanding"]), amount("0"));

    // Unknown borrower (CSV): refused with its row.
    let unknown = format!(
        "source_id,borrower_id,amount,as_of\nc-1,{b},100.00,{now}\nc-2,00000000-0000-0000-0000-000000000000,5.00,{now}\n"
    );
    let reply = p
        .send_typed("rc-1", "risk", "/v1/exposures/import", "text/csv", &unknown)
        .await;
    let problem = reply.problem(422);
    assert_eq!(problem["errors"][0]["row"], 2, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "borrower_id");
    assert_eq!(dec(&exposure_of(p, &b).await["outstanding"]), amount("0"));

    // Good CSV, twice: the second import changes nothing.
    let good =
        format!("source_id,borrower_id,amount,as_of\nc-1,{b},100.00,{now}\nc-2,{b},50.50,{now}\n");
    let first = p
        .send_typed("rc-1", "risk", "/v1/exposures/import", "text/csv", &good)
        .await;
    assert_eq!(first.ok(200)["inserted"], 2);
    let again = p
        .send_typed("rc-1", "risk", "/v1/exposures/import", "text/csv", &good)
        .await;
    assert_eq!(again.ok(200)["unchanged"], 2);
    assert_eq!(
        dec(&exposure_of(p, &b).await["outstanding"]),
        amount("150.50")
    );
    // Wrong content type, bad header.
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/xml",
        &good,
    )
    .await
    .problem(415);
    let headerless = good.replacen(
        "source_id,borrower_id,amount,as_of",
        "id,borrower,amount,date",
        1,
    );
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "text/csv",
        &headerless,
    )
    .await
    .problem(422);
    // Risk control imports; market does not reach the risk service.
    let token = p.token("lo-1", "risk");
    let reply = p
        .send(
            "risk",
            Method::GET,
            "/v1/exposures",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 403);
}
both_backends!(imports_are_all_or_nothing_and_idempotent, imports);

/// R8: limits are four-eyes; borrower and group limits need back office.
async fn limit_four_eyes(p: &TestPlatform) {
    let b = bare_borrower(p, "G47").await;
    let proposal = p
        .call(
            "rc-1",
            "risk",
            Method::POST,
            "/v1/limits",
            Some(
                json!({"kind": "borrower", "key": b, "amount": "1000000", "reason": "new client"}),
            ),
        )
        .await;
    let proposal = proposal.ok(201).clone();
    assert_eq!(proposal["status"], "pending");
    let id = id_of(&proposal);
    // Not in force while pending: R1 still refuses.
    let (_, refused) = approve_case(p, &b, "1000.00").await;
    assert!(
        refused.problem(403)["detail"]
            .as_str()
            .unwrap()
            .contains("limit_required")
    );
    // Risk control proposes; it has no route to decide a limit (R8).
    let reply = p
        .call(
            "rc-2",
            "risk",
            Method::POST,
            &format!("/v1/limits/{id}/approve"),
            None,
        )
        .await;
    reply.problem(404);
    let pending = p
        .call(
            "ba-1",
            "backoffice",
            Method::GET,
            "/v1/limits/proposals",
            None,
        )
        .await;
    assert!(
        pending.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == id.as_str())
    );
    let approved = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &format!("/v1/limits/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.ok(200)["status"], "approved");
    p.call(
        "ba-2",
        "backoffice",
        Method::POST,
        &format!("/v1/limits/{id}/reject"),
        None,
    )
    .await
    .problem(409);
    // Hardening finding 17: sector limits too are approved by back office,
    // not by a second risk controller (R8).
    let sector = p
        .call("rc-1", "risk", Method::POST, "/v1/limits", Some(json!({"kind": "sector", "key": "G47", "amount": "5000000", "tolerance_percent": "5", "reason": "concentration"})))
        .await;
    let sector_id = id_of(sector.ok(201));
    for risk_controller in ["rc-1", "rc-2"] {
        p.call(
            risk_controller,
            "risk",
            Method::POST,
            &format!("/v1/limits/{sector_id}/approve"),
            None,
        )
        .await
        .problem(404);
    }
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/limits/{sector_id}/approve"),
        None,
    )
    .await
    .ok(200);
    // The sector limit binds at the gate: 1m outstanding elsewhere in the
    // sector plus 4.3m is beyond 5m plus 5 %.
    let now = Utc::now().to_rfc3339();
    let balance = format!(
        "{{\"source_id\":\"s-1\",\"borrower_id\":\"{b}\",\"amount\":\"1000000.00\",\"as_of\":\"{now}\"}}\n"
    );
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/x-ndjson",
        &balance,
    )
    .await
    .ok(200);
    let big = bare_borrower(p, "G47").await;
    p.grant_limit("borrower", &big, "100000000").await;
    let case = open_case(p, &big, "4300000.00").await;
    first(p, "lo-3", &case).await.ok(200);
    let refused = second(p, "ba-3", &case).await;
    let problem = refused.problem(403);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("sector_limit (sector:G47)"), "{problem}");
    let limits = p
        .call("ia-1", "risk", Method::GET, "/v1/limits", None)
        .await;
    let items = limits.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{items:?}");
    // Bad proposals are 422 and change nothing.
    for body in [
        json!({"kind": "borrower", "key": "not-a-uuid", "amount": "1", "reason": "x"}),
        json!({"kind": "planet", "key": "mars", "amount": "1", "reason": "x"}),
        json!({"kind": "country", "key": "Germany", "amount": "1", "reason": "x"}),
        json!({"kind": "country", "key": "de", "amount": "1", "reason": "x"}),
        json!({"kind": "sector", "key": "retail", "amount": "1", "reason": "x"}),
        json!({"kind": "sector", "key": "g47", "amount": "1", "reason": "x"}),
        json!({"kind": "sector", "key": "G47", "amount": "-1", "reason": "x"}),
        json!({"kind": "sector", "key": "G47", "amount": "1.001", "reason": "x"}),
        json!({"kind": "sector", "key": "G47", "amount": "1", "tolerance_percent": "101", "reason": "x"}),
        json!({"kind": "group", "key": "no-such-group", "amount": "1", "reason": "x"}),
    ] {
        p.call("rc-1", "risk", Method::POST, "/v1/limits", Some(body))
            .await
            .problem(422);
    }
    // A borrower or group nobody registered: refused by the statement that
    // would store the proposal, and nothing is stored.
    for (kind, key, detail) in [
        (
            "borrower",
            uuid::Uuid::now_v7().to_string(),
            "key names no registered borrower",
        ),
        (
            "group",
            "no-such-group".to_owned(),
            "key names no group of connected clients",
        ),
    ] {
        let body = json!({"kind": kind, "key": key, "amount": "1", "reason": "x"});
        let reply = p
            .call("rc-1", "risk", Method::POST, "/v1/limits", Some(body))
            .await;
        assert_eq!(reply.problem(422)["detail"], detail, "{kind}");
    }
    let limits = p
        .call("ia-1", "risk", Method::GET, "/v1/limits", None)
        .await;
    assert_eq!(limits.ok(200)["items"].as_array().unwrap().len(), 3);
    // Risk controllers neither vote nor change cases (R8): no such route.
    let token = p.token("rc-1", "risk");
    let reply = p
        .send(
            "market",
            Method::POST,
            "/v1/cases",
            Some(&token),
            Some("{}".into()),
            &[],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401);
}
both_backends!(limits_are_four_eyes, limit_four_eyes);

/// Asserts a 422 whose detail and `errors` member name `field`.
fn refused_field(reply: &creditops_tests::Reply, field: &str) {
    let problem = reply.problem(422);
    assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{field}: ")),
        "{problem}"
    );
}

/// Hardening finding 1: a sector is a NACE Rev. 2 code and a country an ISO
/// 3166-1 alpha-2 code, each in its one canonical spelling, and a limit on
/// a section covers its divisions. Before, sector was free text matched
/// exactly: borrowers in `c` or `C\u{200b}` escaped a limit of 1,000 on
/// `C` and got EUR 100,000 approved, and `XX` was accepted as a country.
async fn sector_spelling(p: &TestPlatform) {
    p.grant_limit("sector", "C", "1000").await;
    let borrower = |country: &str, sector: &str| json!({"name": "Schrauben GmbH", "country": country, "sector": sector});
    for (field, body) in [
        ("sector", borrower("DE", "c")),
        ("sector", borrower("DE", "C\u{200b}")),
        ("sector", borrower("DE", " C25")),
        ("sector", borrower("DE", "C99")),
        ("sector", borrower("DE", "Manufacturing")),
        ("sector", borrower("DE", "")),
        ("country", borrower("XX", "C25")),
        ("country", borrower("de", "C25")),
        ("country", borrower("Germany", "C25")),
    ] {
        let reply = p
            .call("lo-1", "market", Method::POST, "/v1/borrowers", Some(body))
            .await;
        refused_field(&reply, field);
    }
    // None of the refused borrowers was stored.
    let all = p
        .call("rc-1", "risk", Method::GET, "/v1/exposures", None)
        .await;
    assert_eq!(all.ok(200)["items"], json!([]), "{}", all.body);
    // Limit keys and exposure filters take the same codes only.
    for key in ["c", "C\u{200b}", "Manufacturing"] {
        let reply = p
            .call(
                "rc-1",
                "risk",
                Method::POST,
                "/v1/limits",
                Some(json!({"kind": "sector", "key": key, "amount": "1", "reason": "x"})),
            )
            .await;
        refused_field(&reply, "key");
    }
    for (field, query) in [("sector", "sector=c"), ("country", "country=XX")] {
        let reply = p
            .call(
                "rc-1",
                "risk",
                Method::GET,
                &format!("/v1/exposures?{query}"),
                None,
            )
            .await;
        refused_field(&reply, field);
    }
    // Exposure in one division counts towards the section: 900 imported
    // for a borrower in C10 is usage of the limit on C.
    let c10 = p.borrower_with_limit("lo-1", borrower("DE", "C10")).await;
    let now = Utc::now().to_rfc3339();
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/x-ndjson",
        &format!(
            "{{\"source_id\":\"c10-1\",\"borrower_id\":\"{c10}\",\"amount\":\"900.00\",\"as_of\":\"{now}\"}}\n"
        ),
    )
    .await
    .ok(200);
    let limits = p
        .call("rc-1", "risk", Method::GET, "/v1/limits", None)
        .await;
    let section_limit = limits.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["subject"] == json!({"kind": "sector", "key": "C"}))
        .cloned()
        .unwrap_or_else(|| panic!("no limit on C: {}", limits.body));
    assert_eq!(
        dec(&section_limit["usage"]),
        amount("900"),
        "{section_limit}"
    );
    // A division counts against its section's limit: EUR 100,000 for a
    // borrower in C25 is over the limit of 1,000 on C.
    let b = p.borrower_with_limit("lo-1", borrower("DE", "C25")).await;
    let case = open_case(p, &b, "100000.00").await;
    first(p, "lo-2", &case).await.ok(200);
    let refused = second(p, "ba-1", &case).await;
    refused_by_gate(&refused, "sector_limit (sector:C)");
    let detail = refused.problem(403)["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("usage 100900.00 over limit 1000"),
        "{detail}"
    );
    // The exposure of the section lists its divisions' borrowers.
    let section = p
        .call("rc-1", "risk", Method::GET, "/v1/exposures?sector=C", None)
        .await;
    let sectors: Vec<&str> = section.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sector"].as_str().unwrap())
        .collect();
    assert_eq!(sectors.len(), 2, "{}", section.body);
    assert!(
        sectors.contains(&"C10") && sectors.contains(&"C25"),
        "{sectors:?}"
    );
}

both_backends!(
    finding_1_sector_spelling_does_not_escape_a_sector_limit,
    sector_spelling
);

/// R2, R7: moving a borrower into a group re-evaluates the group's limit at
/// once; exposure reads per group aggregate every member.
async fn group_moves(p: &TestPlatform) {
    let a = bare_borrower(p, "G47").await;
    let b = bare_borrower(p, "G47").await;
    let now = Utc::now().to_rfc3339();
    let lines = format!(
        "{{\"source_id\":\"g-1\",\"borrower_id\":\"{a}\",\"amount\":\"700000.00\",\"as_of\":\"{now}\"}}\n\
         {{\"source_id\":\"g-2\",\"borrower_id\":\"{b}\",\"amount\":\"600000.00\",\"as_of\":\"{now}\"}}\n"
    );
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/x-ndjson",
        &lines,
    )
    .await
    .ok(200);
    create_group(p, "acme").await;
    p.grant_limit("group", "acme", "1000000").await;
    let join = |borrower: String| async move { join_group(p, &borrower, "acme").await };
    let first = join(a.clone()).await;
    assert!(
        first.ok(200)["applied"]["breaches"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        first.body
    );
    let second = join(b.clone()).await;
    let breaches = second.ok(200)["applied"]["breaches"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0]["subject"], "group:acme");
    assert_eq!(dec(&breaches[0]["amount_over"]), amount("300000"));
    let group = p
        .call(
            "ia-1",
            "risk",
            Method::GET,
            "/v1/exposures?group_id=acme",
            None,
        )
        .await;
    assert_eq!(dec(&group.ok(200)["total"]), amount("1300000"));
    p.call(
        "ia-1",
        "risk",
        Method::GET,
        "/v1/exposures?group_id=nope",
        None,
    )
    .await
    .problem(404);
    p.call(
        "ia-1",
        "risk",
        Method::GET,
        &format!("/v1/exposures?group_id=acme&borrower_id={a}"),
        None,
    )
    .await
    .problem(422);
}
both_backends!(group_moves_re_evaluate_group_limits, group_moves);

/// R4, R5 under concurrency: two approvals that each fit the headroom but
/// not together race; exactly one wins, the other is refused by the gate,
/// and the reserved total never exceeds the limit. Concurrent disbursements
/// of one case consume its reservation once.
async fn racing_approvals(p: &TestPlatform) {
    for round in 0..3 {
        let b = bare_borrower(p, "G47").await;
        p.grant_limit("borrower", &b, "500000").await;
        let one = open_case(p, &b, "300000.00").await;
        let two = open_case(p, &b, "300000.00").await;
        first(p, "lo-2", &one).await.ok(200);
        first(p, "lo-2", &two).await.ok(200);
        let (a, b_reply) = tokio::join!(second(p, "ba-1", &one), second(p, "ba-2", &two));
        let statuses = [a.status.as_u16(), b_reply.status.as_u16()];
        let approved = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(approved, 1, "round {round}: {} / {}", a.body, b_reply.body);
        let refused = if a.status.as_u16() == 200 {
            &b_reply
        } else {
            &a
        };
        assert_eq!(refused.problem(403)["rule"], "R4", "{}", refused.body);
        assert_eq!(dec(&exposure_of(p, &b).await["reserved"]), amount("300000"));
        let winner = if a.status.as_u16() == 200 { one } else { two };
        let pays = futures_join_all(p, &winner).await;
        assert_eq!(pays.iter().filter(|s| **s == 200).count(), 1, "{pays:?}");
        assert!(pays.iter().all(|s| *s == 200 || *s == 409), "{pays:?}");
        assert_eq!(
            dec(&exposure_of(p, &b).await["outstanding"]),
            amount("300000")
        );
    }
}

/// Five concurrent disbursements of one case; their statuses.
async fn futures_join_all(p: &TestPlatform, case: &str) -> Vec<u16> {
    let (a, b, c, d, e) = tokio::join!(
        disburse(p, case, None),
        disburse(p, case, None),
        disburse(p, case, None),
        disburse(p, case, None),
        disburse(p, case, None)
    );
    [a, b, c, d, e].iter().map(|r| r.status.as_u16()).collect()
}
both_backends!(racing_approvals_never_overspend_a_limit, racing_approvals);

/// Approves one case of 300,000 for each of `borrowers` at the same time;
/// the replies, approvals first.
async fn race_approvals(p: &TestPlatform, borrowers: &[String]) -> Vec<creditops_tests::Reply> {
    let mut cases = Vec::new();
    for borrower in borrowers {
        let case = open_case(p, borrower, "300000.00").await;
        first(p, "lo-2", &case).await.ok(200);
        cases.push(case);
    }
    let analysts = ["ba-1", "ba-2"];
    let mut replies = futures_util::future::join_all(
        cases
            .iter()
            .enumerate()
            .map(|(i, case)| second(p, analysts[i % 2], case)),
    )
    .await;
    replies.sort_by_key(|r| r.status.as_u16());
    replies
}

/// R3, R4, R5 under concurrency, for headroom that approvals of different
/// borrowers share: a group limit, a sector limit and the liquidity floor.
/// Two approvals that each fit but not together race; exactly one wins and
/// the other is refused by the gate naming the shared check.
async fn racing_shared_headroom(p: &TestPlatform) {
    // A group of connected clients: the unit is locked, not the borrower.
    create_group(p, "race").await;
    p.grant_limit("group", "race", "500000").await;
    let mut members = Vec::new();
    for _ in 0..2 {
        let b = bare_borrower(p, "G47").await;
        join_group(p, &b, "race").await.ok(200);
        members.push(b);
    }
    // A sector limit: borrowers of one sector in no common group.
    p.grant_limit("sector", "H49", "500000").await;
    let sector = [bare_borrower(p, "H49").await, bare_borrower(p, "H49").await];
    for b in &sector {
        p.grant_limit("borrower", b, "100000000").await;
    }
    let checks = [("group_limit", members), ("sector_limit", sector.to_vec())];
    // Each pair fits one approval of 300,000, not two.
    for (check, borrowers) in checks {
        let replies = race_approvals(p, &borrowers).await;
        replies[0].ok(200);
        refused_by_gate(&replies[1], check);
    }
    // Liquidity: room for two more approvals of 300,000, and six race, in
    // three rounds.
    for round in 0..3 {
        let mut unrelated = Vec::new();
        for sector in ["G47", "H50", "D35", "G47", "H50", "D35"] {
            let b = bare_borrower(p, sector).await;
            p.grant_limit("borrower", &b, "100000000").await;
            unrelated.push(b);
        }
        let committed = committed_liquidity(p).await;
        // Outflows 1bn at the 110 % floor need 1.1bn after every payment.
        let hqla = amount("1100000000") + committed + amount("700000");
        set_liquidity(p, &hqla.to_string(), "1000000000").await;
        let replies = race_approvals(p, &unrelated).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [200, 200, 403, 403, 403, 403], "round {round}");
        for refused in &replies[2..] {
            refused_by_gate(refused, "liquidity_floor");
        }
        assert_eq!(
            committed_liquidity(p).await - committed,
            amount("600000"),
            "round {round}"
        );
    }
}

/// Inserts, as the schema's owner, a live liquidity claim for all of
/// `case`'s amount that counts as taken after every claim made now (an
/// approval of `case` in flight, as another process would hold it).
async fn later_claim(owner: &sqlx::PgPool, case: &str) {
    sqlx::query(
        "INSERT INTO liquidity_claims (id, case_id, amount_minor, claimed_at, settle_by, lapses_at) \
         SELECT gen_random_uuid(), id, amount_minor, now() + INTERVAL '1 hour', \
         now() + INTERVAL '1 hour', now() + INTERVAL '2 hours' FROM cases WHERE id = $1::uuid",
    )
    .bind(case)
    .execute(owner)
    .await
    .unwrap();
}

/// Withdraws the claims [`later_claim`] made (and no approval's own).
async fn withdraw_later_claims(owner: &sqlx::PgPool) {
    sqlx::query("DELETE FROM liquidity_claims WHERE claimed_at > now() + INTERVAL '30 minutes'")
        .execute(owner)
        .await
        .unwrap();
}

/// R6 on PostgreSQL, where approvals in flight hold claims: an approval
/// that would fit but for a later approval's claim waits for it. If the
/// later one gives way in time, the waiting one is approved; if not, it is
/// refused with 409 after the wait, nothing of it applied, and succeeds
/// when cast again once the headroom is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_waits_for_later_claims_on_postgres() {
    let Some(p) = TestPlatform::start(creditops_tests::Backend::Postgres).await else {
        return;
    };
    let b = bare_borrower(&p, "G47").await;
    p.grant_limit("borrower", &b, "100000000").await;
    // Outflows 1bn at the 110 % floor: room for exactly one payment of 5m.
    set_liquidity(&p, "1105000000", "1000000000").await;
    let other = bare_borrower(&p, "G47").await;
    let in_flight = open_case(&p, &other, "5000000.00").await;

    // The later claim gives way while the approval waits: approved.
    let waiting = open_case(&p, &b, "5000000.00").await;
    first(&p, "lo-3", &waiting).await.ok(200);
    let owner = sqlx::PgPool::connect(p.database_url.as_deref().unwrap())
        .await
        .unwrap();
    later_claim(&owner, &in_flight).await;
    let give_way = {
        let owner = owner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            withdraw_later_claims(&owner).await;
        })
    };
    let approved = second(&p, "ba-3", &waiting).await;
    give_way.await.unwrap();
    assert_eq!(approved.ok(200)["status"], "approved", "{}", approved.body);

    // The later claim stays: after the wait, 409 and the case unchanged.
    let committed = committed_liquidity(&p).await;
    let hqla = amount("1105000000") + committed;
    set_liquidity(&p, &hqla.to_string(), "1000000000").await;
    let b2 = bare_borrower(&p, "G47").await;
    p.grant_limit("borrower", &b2, "100000000").await;
    let refused_case = open_case(&p, &b2, "5000000.00").await;
    first(&p, "lo-3", &refused_case).await.ok(200);
    later_claim(&owner, &in_flight).await;
    let started = std::time::Instant::now();
    let refused = second(&p, "ba-3", &refused_case).await;
    let problem = refused.problem(409);
    assert_eq!(problem["rule"], "R6", "{problem}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let case = p
        .call(
            "ba-3",
            "backoffice",
            Method::GET,
            &format!("/v1/cases/{refused_case}"),
            None,
        )
        .await;
    assert_eq!(
        case.ok(200)["status"],
        "awaiting_second_vote",
        "{}",
        case.body
    );
    let claims: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liquidity_claims")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(claims, 1, "the refused approval's own claim is released");

    withdraw_later_claims(&owner).await;
    let cast_again = second(&p, "ba-3", &refused_case).await;
    assert_eq!(
        cast_again.ok(200)["status"],
        "approved",
        "{}",
        cast_again.body
    );
    owner.close().await;
    p.stop().await;
}

/// The cash committed since the last liquidity position.
async fn committed_liquidity(p: &TestPlatform) -> Decimal {
    dec(&p
        .call("rc-1", "risk", Method::GET, "/v1/liquidity", None)
        .await
        .ok(200)["committed_since"])
}

both_backends!(
    racing_approvals_never_overspend_shared_headroom,
    racing_shared_headroom
);

/// R7 under concurrency: lowering a borrower's limit races an approval that
/// fits only the old limit. Whichever commits first, the result is never an
/// approval above the limit in force without an open breach: either the
/// gate refuses the approval, or the watcher records the breach.
async fn racing_limit_change(p: &TestPlatform) {
    for round in 0..3 {
        let b = bare_borrower(p, "G47").await;
        p.grant_limit("borrower", &b, "500000").await;
        let case = open_case(p, &b, "300000.00").await;
        first(p, "lo-2", &case).await.ok(200);
        let proposal = p
            .call(
                "rc-1",
                "risk",
                Method::POST,
                "/v1/limits",
                Some(json!({"kind": "borrower", "key": b, "amount": "100000", "reason": "downgrade"})),
            )
            .await;
        let limit = id_of(proposal.ok(201));
        let approve_path = format!("/v1/limits/{limit}/approve");
        let (vote, lowered) = tokio::join!(
            second(p, "ba-1", &case),
            p.call("bb-1", "backoffice", Method::POST, &approve_path, None)
        );
        lowered.ok(200);
        let alerts = p
            .call("rc-1", "risk", Method::GET, "/v1/alerts", None)
            .await;
        let breached = alerts.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["subject"] == format!("borrower:{b}").as_str());
        match vote.status.as_u16() {
            200 => assert!(
                breached,
                "round {round}: approved over the new limit, no breach"
            ),
            _ => {
                assert_eq!(
                    vote.problem(403)["rule"],
                    "R4",
                    "round {round}: {}",
                    vote.body
                );
                assert!(!breached, "round {round}: a breach without usage");
            }
        }
    }
}
both_backends!(
    racing_limit_change_and_approval_leave_no_unrecorded_breach,
    racing_limit_change
);

/// Hardening finding 17 (R8 with S6): the back-office approver of a
/// borrower limit must not be a related party of the borrower, as a second
/// voter must not.
async fn limit_approvers_are_independent(p: &TestPlatform) {
    let b = bare_borrower(p, "G47").await;
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/related-parties",
        Some(json!({"borrower_id": b, "staff_id": "ba-2", "relation": "brother of the owner"})),
    )
    .await
    .ok(201);
    let proposal = p
        .call(
            "rc-1",
            "risk",
            Method::POST,
            "/v1/limits",
            Some(json!({"kind": "borrower", "key": b, "amount": "250000", "reason": "new client"})),
        )
        .await;
    let id = id_of(proposal.ok(201));
    let conflicted = p
        .call(
            "ba-2",
            "backoffice",
            Method::POST,
            &format!("/v1/limits/{id}/approve"),
            None,
        )
        .await;
    let problem = conflicted.problem(403);
    assert_eq!(problem["rule"], "S6", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("related party"),
        "{problem}"
    );
    // Nothing was decided: an independent analyst approves.
    let approved = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &format!("/v1/limits/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.ok(200)["status"], "approved");
}
both_backends!(
    finding_17_r8_limit_approvers_are_independent,
    limit_approvers_are_independent
);

/// Hardening finding 8: an alert stream ends when the token that opened it
/// expires, and a person may hold only so many streams open at once.
async fn alert_streams_are_bounded(p: &TestPlatform) {
    let who = creditops_domain::StaffId::parse("rc-2").unwrap();
    let short = p.idp.mint(&who, "risk", 2).unwrap();
    let opened = std::time::Instant::now();
    let mut stream = p
        .client
        .get(p.url("risk", "/v1/alerts/stream"))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token");
    assert!(
        opened.elapsed() >= std::time::Duration::from_secs(1),
        "it ended at expiry, not before"
    );

    // Three open streams per person; the fourth is refused with 429.
    let token = p.token("rc-1", "risk");
    let mut open = Vec::new();
    for _ in 0..creditops_http::streams::STREAMS_PER_PERSON {
        let reply = p
            .client
            .get(p.url("risk", "/v1/alerts/stream"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200);
        open.push(reply);
    }
    let refused = p
        .send(
            "risk",
            Method::GET,
            "/v1/alerts/stream",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status.as_u16(), 429, "{}", refused.body);
    assert_eq!(refused.content_type(), "application/problem+json");
    // Another person has slots of their own.
    let other = p
        .client
        .get(p.url("risk", "/v1/alerts/stream"))
        .bearer_auth(p.token("rc-2", "risk"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
}
both_backends!(
    finding_8_alert_streams_are_bounded,
    alert_streams_are_bounded
);

/// Hardening finding 3 (V4): exposure imported from core banking counts for
/// the competence order. With EUR 4.5m outstanding, a EUR 400k case needs
/// level 3 (up to EUR 5m), not level 2.
async fn imported_exposure_counts_for_competence(p: &TestPlatform) {
    let b = bare_borrower(p, "G47").await;
    p.grant_limit("borrower", &b, "10000000").await;
    let balance = format!(
        "{{\"source_id\":\"core-4711\",\"borrower_id\":\"{b}\",\"amount\":\"4500000.00\",\"as_of\":\"{}\"}}\n",
        Utc::now().to_rfc3339()
    );
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/x-ndjson",
        &balance,
    )
    .await
    .ok(200);
    let case = open_case(p, &b, "400000.00").await;
    // A level-2 first vote does not carry EUR 4.9m.
    let low = first(p, "lo-2", &case).await;
    assert_eq!(low.problem(403)["rule"], "V4", "{}", low.body);
    first(p, "lo-3", &case).await.ok(200);
    let refused = second(p, "ba-1", &case).await;
    let problem = refused.problem(403);
    assert_eq!(problem["rule"], "V4", "{problem}");
    let approved = second(p, "ba-3", &case).await;
    let body = approved.ok(200);
    assert_eq!(body["status"], "approved");
    assert_eq!(body["decision"]["level"], 3, "{body}");
}
both_backends!(
    finding_3_v4_imported_exposure_counts_for_competence,
    imported_exposure_counts_for_competence
);
