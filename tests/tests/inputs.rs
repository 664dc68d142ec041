//! Nobody moves alone the inputs a decision depends on, over HTTP on both
//! backends (hardening findings 2 and 4): a borrower's group of connected
//! clients (V4, S6), Tier 1 capital (R3) and the liquidity position (R6)
//! change only when a second person of the same desk approves the change a
//! first person proposed, and every step is on the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::reqwest::Method;
use creditops_tests::{Reply, TestPlatform, both_backends, json};
use serde_json::Value;

fn vote(decision: &str, version: i64) -> Value {
    json!({"decision": decision, "rationale": "reviewed the file", "version": version})
}

fn refused_by(reply: &Reply, rule: &str) -> String {
    let problem = reply.problem(403);
    assert_eq!(problem["rule"], rule, "{}", reply.body);
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

async fn open_case(p: &TestPlatform, borrower: &str, amount: &str) -> String {
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

async fn cast(p: &TestPlatform, who: &str, case: &str, stage: &str, version: i64) -> Reply {
    let service = if stage == "first-vote" {
        "market"
    } else {
        "backoffice"
    };
    let path = format!("/v1/cases/{case}/{stage}");
    p.call(
        who,
        service,
        Method::POST,
        &path,
        Some(vote("approve", version)),
    )
    .await
}

async fn move_to_group(p: &TestPlatform, by: &str, borrower: &str, group: Value) -> Reply {
    let path = format!("/v1/borrowers/{borrower}/group");
    p.call(
        by,
        "backoffice",
        Method::PUT,
        &path,
        Some(json!({ "group_id": group })),
    )
    .await
}

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

/// Hardening finding 2: with a group already holding an approved EUR 900k
/// credit, a EUR 400k case of a member needs level 3. An analyst holding
/// level 2 could take the borrower out of the group alone and then approve.
/// Now the move is a proposal another analyst decides, and neither of them
/// votes on the cases it touched (S6).
async fn one_analyst_cannot_lower_the_competence_level(p: &TestPlatform) {
    p.call(
        "ba-3",
        "backoffice",
        Method::POST,
        "/v1/groups",
        Some(json!({"id": "gcc-f2", "name": "Finding 2 group"})),
    )
    .await
    .ok(201);
    let body = json!({"name": "Muster GmbH", "country": "DE", "sector": "C25"});
    let held = p.borrower_with_limit("lo-1", body.clone()).await;
    let member = p.borrower_with_limit("lo-1", body).await;
    for borrower in [&held, &member] {
        let proposed = move_to_group(p, "ba-3", borrower, json!("gcc-f2")).await;
        p.approve_pending(&proposed, "bb-1", "backoffice")
            .await
            .ok(200);
    }
    let approved = open_case(p, &held, "900000.00").await;
    cast(p, "lo-2", &approved, "first-vote", 1).await.ok(200);
    cast(p, "ba-2", &approved, "second-vote", 1).await.ok(200);

    // 900k + 400k = 1.3m: level 3 for both votes.
    let case = open_case(p, &member, "400000.00").await;
    cast(p, "lo-3", &case, "first-vote", 1).await.ok(200);
    refused_by(&cast(p, "ba-2", &case, "second-vote", 1).await, "V4");

    // The attack: the level-2 analyst takes the borrower out of the group.
    let proposed = move_to_group(p, "ba-2", &member, Value::Null).await;
    let pending = proposed.ok(202);
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["kind"], "group_membership");
    let id = pending["id"].as_str().unwrap();
    assert_eq!(
        pending["links"]["approve"],
        format!("/v1/proposals/{id}/approve")
    );
    assert_eq!(
        pending["links"]["reject"],
        format!("/v1/proposals/{id}/reject")
    );
    // Nothing moved yet: still level 3.
    refused_by(&cast(p, "ba-2", &case, "second-vote", 1).await, "V4");
    // The proposer cannot approve their own move.
    let own = p
        .call(
            "ba-2",
            "backoffice",
            Method::POST,
            &format!("/v1/proposals/{id}/approve"),
            None,
        )
        .await;
    let detail = refused_by(&own, "V4");
    assert!(detail.contains("second credit analyst"), "{detail}");
    // No other desk sees or decides it.
    for (user, service) in [("ua-1", "admin"), ("rc-1", "risk")] {
        let path = format!("/v1/proposals/{id}/approve");
        p.call(user, service, Method::POST, &path, None)
            .await
            .problem(404);
    }

    // A second analyst approves: the move takes effect (400k alone is
    // level 2), but neither analyst may now vote on the member's case.
    let decided = p.approve_pending(&proposed, "ba-1", "backoffice").await;
    let decided = decided.ok(200);
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "ba-1");
    assert!(decided["links"]["approve"].is_null(), "{decided}");
    for analyst in ["ba-2", "ba-1"] {
        let detail = refused_by(&cast(p, analyst, &case, "second-vote", 1).await, "S6");
        assert!(
            detail.contains(analyst) && detail.contains("changed the group membership"),
            "{detail}"
        );
    }
    let body = cast(p, "ba-3", &case, "second-vote", 1).await;
    assert_eq!(body.ok(200)["status"], "approved", "{}", body.body);

    // On the record: who proposed, who approved, under which rule.
    let proposed = events(p, "change.proposed").await;
    let ours = proposed
        .iter()
        .find(|e| e["data"]["proposal_id"] == id)
        .expect("the proposal is audited");
    assert_eq!(ours["actor"], "ba-2");
    assert_eq!(ours["rule"], "V4");
    assert_eq!(ours["borrower_id"], member.as_str());
    let approvals = events(p, "change.approved").await;
    let approval = approvals
        .iter()
        .find(|e| e["data"]["proposal_id"] == id)
        .expect("the approval is audited");
    assert_eq!(approval["actor"], "ba-1");
    assert_eq!(approval["data"]["proposed_by"], "ba-2");
}
both_backends!(
    finding_2_v4_one_analyst_cannot_lower_the_competence_level,
    one_analyst_cannot_lower_the_competence_level
);

async fn propose_figure(p: &TestPlatform, by: &str, path: &str, body: Value) -> Reply {
    p.call(by, "risk", Method::PUT, path, Some(body)).await
}

async fn read(p: &TestPlatform, path: &str) -> Value {
    p.call("rc-2", "risk", Method::GET, path, None)
        .await
        .ok(200)
        .clone()
}

/// Hardening finding 4: one risk controller set Tier 1 (which lifts the
/// large-exposure cap) and the liquidity position (`hqla 1, outflows 0`
/// switched the LCR floor off) alone. Now each is a proposal a second risk
/// controller decides, and a position without outflows is refused.
async fn bank_wide_figures_need_two_risk_controllers(p: &TestPlatform) {
    let capital_before = read(p, "/v1/capital").await;
    let proposed = propose_figure(p, "rc-1", "/v1/capital", json!({"tier1": "999999999999"})).await;
    let pending = proposed.ok(202).clone();
    assert_eq!(pending["kind"], "tier1_capital");
    assert_eq!(
        read(p, "/v1/capital").await,
        capital_before,
        "not yet in force"
    );
    let approve = pending["links"]["approve"].as_str().unwrap();
    let detail = refused_by(
        &p.call("rc-1", "risk", Method::POST, approve, None).await,
        "R3",
    );
    assert!(detail.contains("second risk controller"), "{detail}");
    let reject = pending["links"]["reject"].as_str().unwrap();
    let rejected = p.call("rc-2", "risk", Method::POST, reject, None).await;
    assert_eq!(rejected.ok(200)["status"], "rejected");
    p.call("rc-2", "risk", Method::POST, approve, None)
        .await
        .problem(409);
    assert_eq!(
        read(p, "/v1/capital").await,
        capital_before,
        "rejected: unchanged"
    );

    // The floor cannot be switched off with a position without outflows.
    for outflows in ["0", "0.00"] {
        let body = json!({"hqla": "1", "outflows_30d": outflows, "inflows_30d": "0"});
        let refused = propose_figure(p, "rc-1", "/v1/liquidity", body).await;
        let detail = refused.problem(422)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("outflows_30d"), "{detail}");
    }
    let liquidity_before = read(p, "/v1/liquidity").await;
    let body = json!({"hqla": "1300000000", "outflows_30d": "1000000000", "inflows_30d": "0"});
    let proposed = propose_figure(p, "rc-1", "/v1/liquidity", body).await;
    assert_eq!(proposed.ok(202)["kind"], "liquidity_position");
    let pending = read(p, "/v1/proposals?status=pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1, "{pending}");
    // The desk's list is paged, newest first: the pending position, then
    // the rejected Tier 1 figure.
    let first = read(p, "/v1/proposals?limit=1").await;
    assert_eq!(first["items"][0]["kind"], "liquidity_position", "{first}");
    let next = first["next"].as_str().expect("a next page");
    let second = read(p, &format!("/v1/proposals?limit=1&after={next}")).await;
    assert_eq!(second["items"][0]["kind"], "tier1_capital", "{second}");
    for limit in ["0", "1001"] {
        p.call(
            "rc-2",
            "risk",
            Method::GET,
            &format!("/v1/proposals?limit={limit}"),
            None,
        )
        .await
        .problem(422);
    }
    assert_eq!(read(p, "/v1/liquidity").await, liquidity_before);
    let approved = p.approve_pending(&proposed, "rc-2", "risk").await;
    let applied = &approved.ok(200)["applied"]["liquidity"];
    assert_eq!(applied["hqla"], "1300000000");
    let now = read(p, "/v1/liquidity").await;
    assert_eq!(
        now["version"],
        liquidity_before["version"].as_i64().unwrap() + 1
    );
    assert_eq!(now["recorded_by"], "rc-1", "the proposer's figure");
    assert_eq!(now["lcr_percent"], "130");

    let approvals = events(p, "change.approved").await;
    let rules: Vec<&Value> = approvals.iter().map(|e| &e["rule"]).collect();
    assert_eq!(rules, [&json!("R6")], "{approvals:?}");
    let recorded = events(p, "risk.liquidity_recorded").await;
    let last = recorded.last().expect("the position is audited");
    assert_eq!(last["actor"], "rc-2");
    assert_eq!(last["data"]["proposed_by"], "rc-1");
}
both_backends!(
    finding_4_r3_bank_wide_figures_need_two_risk_controllers,
    bank_wide_figures_need_two_risk_controllers
);
