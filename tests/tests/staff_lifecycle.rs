//! Staff lifecycle over HTTP (S3, S4, S7, S9; hardening finding 18): a
//! unit move, the end of a role, a suspension and a leaver are four-eyes
//! proposals on the admin service that take effect at their approval, and
//! the next request of the person concerned shows it, also with a token
//! minted before.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::{TestPlatform, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const SERVICES: [&str; 5] = ["market", "backoffice", "risk", "audit", "admin"];

/// A read route of each service.
fn read_route(service: &str) -> &'static str {
    match service {
        "market" => "/v1/borrowers/00000000-0000-7000-8000-000000000000",
        "backoffice" => "/v1/cases",
        "risk" => "/v1/limits",
        "audit" => "/v1/events",
        _ => "/v1/staff",
    }
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

fn refused_by(reply: &creditops_tests::Reply, rule: &str) -> String {
    let problem = reply.problem(403);
    assert_eq!(problem["rule"], rule, "{}", reply.body);
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

/// `ua-1` proposes `change`; returns the proposal id.
async fn propose(p: &TestPlatform, change: Value) -> String {
    let reply = p
        .call("ua-1", "admin", Method::POST, "/v1/proposals", Some(change))
        .await;
    let id = id_of(reply.ok(202));
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(
        reply.body["links"]["approve"],
        format!("/v1/proposals/{id}/approve")
    );
    id
}

/// `ua-2` approves the proposal (after `ua-1`, its proposer, was refused).
async fn approve(p: &TestPlatform, id: &str) -> Value {
    let path = format!("/v1/proposals/{id}/approve");
    refused_by(
        &p.call("ua-1", "admin", Method::POST, &path, None).await,
        "S9",
    );
    let reply = p.call("ua-2", "admin", Method::POST, &path, None).await;
    assert_eq!(reply.ok(200)["status"], "approved", "{}", reply.body);
    reply.body
}

/// The status of a request with `token` to `service`: a read of a borrower
/// that does not exist (404 when let in, 403 without a role there).
async fn status_with(p: &TestPlatform, service: &str, token: &str) -> u16 {
    let path = format!("/v1/borrowers/{}", uuid::Uuid::now_v7());
    p.send(service, Method::GET, &path, Some(token), None, &[])
        .await
        .status
        .as_u16()
}

async fn person(p: &TestPlatform, id: &str) -> Value {
    p.call(
        "ua-2",
        "admin",
        Method::GET,
        &format!("/v1/staff/{id}"),
        None,
    )
    .await
    .ok(200)
    .clone()
}

/// Hardening finding 18 (S4): a suspension and a leaver take effect at the
/// approval, on every service, for tokens minted before; a suspension can
/// be lifted the same four-eyes way; nobody changes their own status (S7).
async fn lifecycle_takes_effect_at_once(p: &TestPlatform) {
    let tokens: Vec<(&str, String)> = SERVICES.iter().map(|s| (*s, p.token("lo-2", s))).collect();
    assert_eq!(status_with(p, "market", &tokens[0].1).await, 404);

    // S7: nobody suspends themselves or records their own leaving.
    for own in [
        json!({"kind": "suspension", "staff_id": "ua-1"}),
        json!({"kind": "leaver", "staff_id": "ua-1"}),
        json!({"kind": "unit_move", "staff_id": "ua-1", "unit_id": "risk-control"}),
    ] {
        let reply = p
            .call("ua-1", "admin", Method::POST, "/v1/proposals", Some(own))
            .await;
        refused_by(&reply, "S7");
    }

    let suspension = propose(p, json!({"kind": "suspension", "staff_id": "lo-2"})).await;
    // Pending: nothing changed yet.
    assert_eq!(status_with(p, "market", &tokens[0].1).await, 404);
    approve(p, &suspension).await;
    for (service, token) in &tokens {
        let reply = p
            .send(
                service,
                Method::GET,
                read_route(service),
                Some(token),
                None,
                &[],
            )
            .await;
        let problem = reply.problem(401);
        assert!(
            problem["detail"].as_str().unwrap().contains("suspended"),
            "{service}: {}",
            reply.body
        );
    }
    assert_eq!(person(p, "lo-2").await["status"], "suspended");
    // Suspended twice is refused; lifting brings the person back.
    p.call(
        "ua-1",
        "admin",
        Method::POST,
        "/v1/proposals",
        Some(json!({"kind": "suspension", "staff_id": "lo-2"})),
    )
    .await
    .problem(409);
    let lift = propose(
        p,
        json!({"kind": "suspension", "staff_id": "lo-2", "lifted": true}),
    )
    .await;
    approve(p, &lift).await;
    assert_eq!(status_with(p, "market", &tokens[0].1).await, 404);

    // A leaver: every unit, role and competence ends at the approval.
    let before: Vec<(&str, String)> = SERVICES.iter().map(|s| (*s, p.token("lo-3", s))).collect();
    let leaver = propose(p, json!({"kind": "leaver", "staff_id": "lo-3"})).await;
    let approved = approve(p, &leaver).await;
    assert_eq!(approved["kind"], "leaver");
    for (service, token) in &before {
        let reply = p
            .send(
                service,
                Method::GET,
                read_route(service),
                Some(token),
                None,
                &[],
            )
            .await;
        let problem = reply.problem(401);
        assert!(
            problem["detail"].as_str().unwrap().contains("has left"),
            "{service}: {}",
            reply.body
        );
    }
    let left = person(p, "lo-3").await;
    for history in ["units", "roles", "competences"] {
        let entries = left[history].as_array().unwrap();
        assert!(!entries.is_empty(), "{left}");
        assert!(
            entries.iter().all(|e| e["valid_to"].is_string()),
            "{history} still open: {left}"
        );
    }
    // A leaver leaves once, and is neither suspended nor moved afterwards.
    for again in [
        json!({"kind": "leaver", "staff_id": "lo-3"}),
        json!({"kind": "suspension", "staff_id": "lo-3"}),
        json!({"kind": "unit_move", "staff_id": "lo-3", "unit_id": "market-board"}),
    ] {
        p.call("ua-1", "admin", Method::POST, "/v1/proposals", Some(again))
            .await
            .problem(409);
    }

    // Each decision is in the audit trail with its proposer and approver.
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=change.approved",
            None,
        )
        .await;
    let approvals = events.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        approvals.len() >= 3,
        "three approvals audited: {}",
        events.body
    );
}
both_backends!(
    finding_18_staff_lifecycle_takes_effect_at_once,
    lifecycle_takes_effect_at_once
);

/// Hardening finding 18 (S3, S4): a unit move counts from its approval, and
/// only if every role the person keeps belongs to the new unit's side; a
/// role that ends stops counting at its approval.
async fn unit_moves_and_role_ends(p: &TestPlatform) {
    // S3: a loan officer does not move to the back office with the role.
    let reply = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(json!({"kind": "unit_move", "staff_id": "lo-1", "unit_id": "backoffice-credit"})),
        )
        .await;
    let detail = refused_by(&reply, "S3");
    assert!(detail.contains("loan_officer"), "{detail}");
    for bad in [
        json!({"kind": "unit_move", "staff_id": "lo-1", "unit_id": "no-such-unit"}),
        json!({"kind": "unit_move", "staff_id": "nobody-1", "unit_id": "market-board"}),
        json!({"kind": "unit_move", "staff_id": "lo-1", "unit_id": "market-board", "valid_from": "2020-01-01T00:00:00Z"}),
    ] {
        p.call("ua-1", "admin", Method::POST, "/v1/proposals", Some(bad))
            .await
            .problem(422);
    }
    // Within the market side the move is fine; it counts from the approval.
    let unit_move = propose(
        p,
        json!({"kind": "unit_move", "staff_id": "lo-1", "unit_id": "market-board"}),
    )
    .await;
    approve(p, &unit_move).await;
    let moved = person(p, "lo-1").await;
    let units = moved["units"].as_array().unwrap();
    assert_eq!(units.len(), 2, "{moved}");
    assert_eq!(units[0]["unit_id"], "market-corporate");
    assert!(units[0]["valid_to"].is_string(), "{moved}");
    assert_eq!(units[1]["unit_id"], "market-board");
    assert!(units[1]["valid_to"].is_null(), "{moved}");
    assert_eq!(units[0]["valid_to"], units[1]["valid_from"]);

    // The end of a role: refused for a role not held; once approved the
    // role no longer lets the person in.
    p.call(
        "ua-1",
        "admin",
        Method::POST,
        "/v1/proposals",
        Some(json!({"kind": "role_end", "staff_id": "lo-2", "role": "credit_analyst"})),
    )
    .await
    .problem(409);
    let token = p.token("lo-2", "market");
    assert_eq!(status_with(p, "market", &token).await, 404);
    let role_end = propose(
        p,
        json!({"kind": "role_end", "staff_id": "lo-2", "role": "loan_officer"}),
    )
    .await;
    approve(p, &role_end).await;
    assert_eq!(status_with(p, "market", &token).await, 403);
    // Without a market role the person may now move to the back office
    // (S5's cooling-off then counts from the move).
    let to_backoffice = propose(
        p,
        json!({"kind": "unit_move", "staff_id": "lo-2", "unit_id": "backoffice-credit"}),
    )
    .await;
    approve(p, &to_backoffice).await;
    let moved = person(p, "lo-2").await;
    assert_eq!(moved["units"][1]["side"], "backoffice", "{moved}");
}
both_backends!(
    finding_18_s3_unit_moves_and_role_ends_are_four_eyes,
    unit_moves_and_role_ends
);

/// Hardening finding 14 (S3, S4): a new person joins a populated directory
/// only through a proposal a second administrator approves, with starts
/// from now on and roles of their unit's side.
async fn onboarding(p: &TestPlatform) {
    let now = chrono::Utc::now();
    let newcomer = |role: &str, unit: &str, from: chrono::DateTime<chrono::Utc>| {
        json!({
            "kind": "staff_onboarding",
            "staff_id": "lo-7",
            "units": [{"unit_id": unit, "valid_from": from}],
            "roles": [{"role": role, "valid_from": from}],
            "competences": [{"side": "market", "level": 2, "valid_from": from}],
        })
    };
    let wrong_side = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(newcomer("loan_officer", "backoffice-credit", now)),
        )
        .await;
    refused_by(&wrong_side, "S3");
    let back_dated = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(newcomer(
                "loan_officer",
                "market-corporate",
                now - chrono::Duration::days(30),
            )),
        )
        .await;
    refused_by(&back_dated, "S4");
    let mut existing = newcomer("loan_officer", "market-corporate", now);
    existing["staff_id"] = json!("lo-1");
    p.call(
        "ua-1",
        "admin",
        Method::POST,
        "/v1/proposals",
        Some(existing),
    )
    .await
    .problem(409);
    let id = propose(p, newcomer("loan_officer", "market-corporate", now)).await;
    p.call("ua-2", "admin", Method::GET, "/v1/staff/lo-7", None)
        .await
        .problem(404);
    approve(p, &id).await;
    let joined = person(p, "lo-7").await;
    assert_eq!(joined["roles"][0]["role"], "loan_officer", "{joined}");
    let token = p.token("lo-7", "market");
    assert_eq!(status_with(p, "market", &token).await, 404);
}
both_backends!(finding_14_onboarding_is_a_four_eyes_proposal, onboarding);

/// The report as text, with its content type.
async fn report_text(
    p: &TestPlatform,
    user: &str,
    service: &str,
    query: &str,
    accept: &str,
) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .get(p.url(service, &format!("/v1/reports/entitlements{query}")))
        .bearer_auth(p.token(user, service))
        .header("accept", accept)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// Hardening finding 18 (AT 4.3.1): the entitlement report lists who holds
/// which role and competence level since when, and which approved proposal
/// granted it (proposer, approver); bootstrap entries say so. Admin and
/// internal audit read it, as JSON and CSV; every read is audited.
async fn entitlements_report(p: &TestPlatform) {
    let grant = propose(
        p,
        json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "market", "level": 3, "valid_from": chrono::Utc::now()}),
    )
    .await;
    approve(p, &grant).await;
    let leaver = propose(p, json!({"kind": "leaver", "staff_id": "ba-3"})).await;
    approve(p, &leaver).await;

    for (user, service) in [("ua-1", "admin"), ("ia-1", "audit")] {
        let reply = p
            .call(user, service, Method::GET, "/v1/reports/entitlements", None)
            .await;
        let items = reply.ok(200)["items"].as_array().unwrap().clone();
        let row = |staff: &str, kind: &str| {
            items
                .iter()
                .filter(|r| r["staff_id"] == staff && r["kind"] == kind)
                .cloned()
                .collect::<Vec<_>>()
        };
        let granted: Vec<Value> = row("lo-2", "competence")
            .into_iter()
            .filter(|r| r["level"] == 3)
            .collect();
        assert_eq!(granted.len(), 1, "{items:?}");
        assert_eq!(granted[0]["source"], "proposal");
        assert_eq!(granted[0]["proposal_id"], grant.as_str());
        assert_eq!(granted[0]["proposed_by"], "ua-1");
        assert_eq!(granted[0]["approved_by"], "ua-2");
        assert!(granted[0]["approved_at"].is_string());
        let seeded = row("lo-1", "role");
        assert_eq!(seeded.len(), 1, "{items:?}");
        assert_eq!(seeded[0]["role"], "loan_officer");
        assert_eq!(seeded[0]["source"], "bootstrap");
        assert!(seeded[0]["proposal_id"].is_null());
        assert_eq!(seeded[0]["unit_id"], "market-corporate");
        // A leaver holds nothing any more.
        assert!(items.iter().all(|r| r["staff_id"] != "ba-3"), "{items:?}");

        for (query, accept) in [("?format=csv", "application/json"), ("", "text/csv")] {
            let (status, content_type, text) = report_text(p, user, service, query, accept).await;
            assert_eq!(status, 200, "{text}");
            assert!(content_type.starts_with("text/csv"), "{content_type}");
            let mut lines = text.lines();
            assert!(lines.next().unwrap().starts_with("staff_id,status,unit_id"));
            assert!(
                text.lines().any(|l| l.starts_with("lo-2,")
                    && l.contains(&grant)
                    && l.contains(",ua-1,ua-2,")),
                "{text}"
            );
        }
        p.call(
            user,
            service,
            Method::GET,
            "/v1/reports/entitlements?format=xml",
            None,
        )
        .await
        .problem(422);
    }
    // Nobody else reads it.
    for (user, service) in [("lo-1", "market"), ("rc-1", "risk")] {
        let reply = p
            .call(user, service, Method::GET, "/v1/reports/entitlements", None)
            .await;
        assert_eq!(reply.status.as_u16(), 404, "{}", reply.body);
    }
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=staff.entitlements_reported",
            None,
        )
        .await;
    assert!(
        events.ok(200)["items"].as_array().unwrap().len() >= 6,
        "{}",
        events.body
    );
}
both_backends!(
    finding_18_entitlements_report_lists_who_holds_what,
    entitlements_report
);

/// Hardening finding 18 (S4): a response that outlives its request ends
/// with the person's admission: an alert stream opened before a
/// suspension ends once the suspension is approved.
async fn suspension_ends_open_streams(p: &TestPlatform) {
    let mut stream = p
        .client
        .get(p.url("risk", "/v1/alerts/stream"))
        .bearer_auth(p.token("rc-2", "risk"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let suspension = propose(p, json!({"kind": "suspension", "staff_id": "rc-2"})).await;
    approve(p, &suspension).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the suspension");
}
both_backends!(
    finding_18_a_suspension_ends_open_streams,
    suspension_ends_open_streams
);

/// S9: four-eyes administration needs two administrators. Suspending,
/// ending the role of or recording the leaving of one of the last two is
/// refused (no later change could be approved); with a third onboarded, it
/// goes through.
async fn two_administrators_remain(p: &TestPlatform) {
    let now = chrono::Utc::now();
    let removals = [
        json!({"kind": "suspension", "staff_id": "ua-2"}),
        json!({"kind": "leaver", "staff_id": "ua-2"}),
        json!({"kind": "role_end", "staff_id": "ua-2", "role": "user_admin"}),
    ];
    for removal in &removals {
        let reply = p
            .call(
                "ua-1",
                "admin",
                Method::POST,
                "/v1/proposals",
                Some(removal.clone()),
            )
            .await;
        let detail = refused_by(&reply, "S9");
        assert!(
            detail.contains("last 2 active user administrators"),
            "{detail}"
        );
    }
    let third = propose(
        p,
        json!({
            "kind": "staff_onboarding",
            "staff_id": "ua-3",
            "units": [{"unit_id": "user-administration", "valid_from": now}],
            "roles": [{"role": "user_admin", "valid_from": now}],
            "competences": [],
        }),
    )
    .await;
    approve(p, &third).await;
    let suspension = propose(p, removals[0].clone()).await;
    let path = format!("/v1/proposals/{suspension}/approve");
    let approved = p.call("ua-3", "admin", Method::POST, &path, None).await;
    assert_eq!(approved.ok(200)["status"], "approved", "{}", approved.body);
    // Two remain (ua-1, ua-3): neither can be taken away now.
    let reply = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(json!({"kind": "leaver", "staff_id": "ua-3"})),
        )
        .await;
    refused_by(&reply, "S9");
}
both_backends!(s9_two_user_administrators_remain, two_administrators_remain);

/// S4, S8 with several instances: an instance keeps the actor lookups of
/// its callers for their commands, and a change approved on another
/// instance applies to the very next command there all the same. The
/// command runs under the kept lookup, its commit finds the directory
/// moved and writes nothing, and the request runs again under a fresh
/// lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_change_on_one_instance_applies_to_commands_on_another() {
    let Some(a) = TestPlatform::start(creditops_tests::Backend::Postgres).await else {
        return;
    };
    let b = a.attach_instance().await;
    let token = b.token("lo-2", "market");
    let register = |key: &'static str| {
        let (b, token) = (&b, token.clone());
        async move {
            let body = json!({"name": format!("Kept {key} GmbH"), "country": "DE", "sector": "C"});
            b.send(
                "market",
                Method::POST,
                "/v1/borrowers",
                Some(&token),
                Some(body.to_string()),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    // Two commands on b: the second runs under the lookup b kept.
    register("first").await.ok(201);
    register("second").await.ok(201);

    let suspension = propose(&a, json!({"kind": "suspension", "staff_id": "lo-2"})).await;
    approve(&a, &suspension).await;
    let refused = register("while-suspended").await;
    assert!(
        refused.problem(401)["detail"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{}",
        refused.body
    );

    let lifting = propose(
        &a,
        json!({"kind": "suspension", "staff_id": "lo-2", "lifted": true}),
    )
    .await;
    approve(&a, &lifting).await;
    // The refused command stored nothing: its key is still unused.
    let again = register("while-suspended").await;
    again.ok(201);
    assert!(
        again.headers.get("idempotent-replayed").is_none(),
        "the refused command was stored"
    );
    register("after-lifting").await.ok(201);

    let role_end = propose(
        &a,
        json!({"kind": "role_end", "staff_id": "lo-2", "role": "loan_officer"}),
    )
    .await;
    approve(&a, &role_end).await;
    let refused = register("without-the-role").await;
    refused.problem(403);
    b.stop().await;
    a.stop().await;
}
