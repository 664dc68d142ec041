//! Operations over real HTTP, on both backends: `/metrics` counts requests
//! per route template and status and refusals per rule, and reports the
//! database pool and (risk service) open breaches; request ids are echoed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends};

async fn scrape(p: &TestPlatform, service: &str) -> String {
    let reply = p
        .client
        .get(p.url(service, "/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(reply.status().as_u16(), 200);
    assert!(
        reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    reply.text().await.expect("text")
}

/// The value of the sample named `name` whose labels include all `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|l| line.contains(l)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn metrics_count_routes_statuses_and_rules(p: &TestPlatform) {
    let missing = "/v1/borrowers/00000000-0000-0000-0000-000000000000";
    for _ in 0..3 {
        p.call("lo-1", "market", Method::GET, missing, None)
            .await
            .problem(404);
    }
    // Unauthenticated, and a route nobody serves: bounded labels, no raw path.
    let anonymous = p.client.get(p.url("market", missing)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let scan = p
        .client
        .get(p.url("market", "/v1/../etc/passwd-1234"))
        .send()
        .await
        .unwrap();
    assert_eq!(scan.status().as_u16(), 404);
    // A back-office analyst is not allowed the market's borrower route:
    // wrong audience (token for backoffice) is 401; a risk controller's
    // market token has no market role (S8, 403).
    p.call("rc-1", "market", Method::GET, missing, None)
        .await
        .problem(403);
    // Hardening finding 7: invented methods are one label, `other`.
    for i in 0..30 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let reply = p
            .client
            .request(method, p.url("market", missing))
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_client_error(), "{}", reply.status());
    }

    let text = scrape(p, "market").await;
    assert!(
        !text.contains("INVENTED"),
        "invented methods never become labels"
    );
    let other: f64 = text
        .lines()
        .filter(|line| line.starts_with("creditops_http_requests_total{"))
        .filter(|line| line.contains("method=\"other\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(other, 30.0, "{text}");
    let route = "route=\"/v1/borrowers/{id}\"";
    assert_eq!(
        sample(
            &text,
            "creditops_http_requests_total",
            &[route, "status=\"404\"", "method=\"GET\""]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "creditops_http_requests_total",
            &[route, "status=\"401\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "creditops_http_requests_total",
            &["route=\"unmatched\"", "status=\"404\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("passwd"), "raw paths never become labels");
    assert_eq!(
        sample(
            &text,
            "creditops_http_request_duration_seconds_count",
            &[route, "status=\"404\""]
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "creditops_http_request_duration_seconds_bucket",
            &[route, "status=\"404\"", "le=\"+Inf\""]
        ) == Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "creditops_denials_total",
            &["rule=\"S8\"", "problem=\"forbidden\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "creditops_denials_total",
            &["rule=\"none\"", "problem=\"not-found\""]
        )
        .is_some_and(|n| n >= 3.0),
        "{text}"
    );
    assert!(
        sample(&text, "creditops_db_pool_connections", &["state=\"max\""])
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "creditops_database_up", &[]),
        Some(1.0),
        "{text}"
    );
    // Only the risk service reports risk alerts.
    assert!(!text.contains("creditops_risk_open_breaches"));
    let risk = scrape(p, "risk").await;
    assert_eq!(
        sample(&risk, "creditops_risk_open_breaches", &["service=\"risk\""]),
        Some(0.0),
        "{risk}"
    );
    // Each service counts its own requests.
    let backoffice = scrape(p, "backoffice").await;
    assert!(!backoffice.contains(route), "{backoffice}");
}

both_backends!(
    metrics_per_route_and_rule,
    metrics_count_routes_statuses_and_rules
);

/// Hardening finding 6: the request id is the server's (a UUIDv7), also
/// when the client sends its own; the client's text never reaches a hashed
/// audit body.
async fn request_ids_are_the_servers(p: &TestPlatform) {
    let given = p
        .client
        .get(p.url("market", "/v1/cases"))
        .header("x-request-id", "approved-by-board-2026-117")
        .send()
        .await
        .unwrap();
    let id = given.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "approved-by-board-2026-117");
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    let malformed = p
        .client
        .get(p.url("market", "/v1/cases"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    let other = malformed.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(other).is_ok(), "{other}");
    assert_ne!(other, id, "one id per request");

    // An audited refusal of a logged-in person with a client id.
    let risk_token = p.token("rc-1", "market");
    let refused = p
        .send(
            "market",
            Method::GET,
            "/v1/borrowers/00000000-0000-0000-0000-000000000000",
            Some(&risk_token),
            None,
            &[("x-request-id", "approved-by-board-2026-117")],
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
    let server_id = refused.headers["x-request-id"].to_str().unwrap().to_owned();
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=request.refused&limit=1000",
            None,
        )
        .await;
    let events = events.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e["body"]["request_id"] == server_id.as_str()),
        "{events:?}"
    );
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("approved-by-board"),
        "client text in a hashed body"
    );
}

both_backends!(request_ids, request_ids_are_the_servers);

/// The risk lock's advisory key (store-postgres): an approval waits on it.
const RISK_LOCK_KEY: i64 = 0x6372_6474_7269_736b;

/// A request that cannot finish in time is answered 503 problem+json and
/// leaves nothing behind: the approving vote waits on the risk lock (held
/// here from outside), times out, and the case is unchanged and unaudited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_request_is_answered_503_and_rolled_back() {
    let limits = creditops_http::RequestLimits {
        timeout: std::time::Duration::from_millis(1_500),
        ..Default::default()
    };
    let Some(p) = TestPlatform::start_with_limits(creditops_tests::Backend::Postgres, limits).await
    else {
        return;
    };
    let case = p.draft_case("250000.00").await;
    let path = |suffix: &str| format!("/v1/cases/{}{suffix}", case["id"].as_str().unwrap());
    let vote = serde_json::json!({"decision": "approve", "rationale": "sound", "version": 1});
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &path("/first-vote"),
        Some(vote.clone()),
    )
    .await
    .ok(200);

    let url = p.database_url.clone().unwrap();
    let mut blocker = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(RISK_LOCK_KEY)
        .execute(&mut blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let timed_out = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &path("/second-vote"),
            Some(vote.clone()),
        )
        .await;
    let problem = timed_out.problem(503);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nothing of it was applied"),
        "{problem}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Counted under its route, not as an unrouted request.
    let text = scrape(&p, "backoffice").await;
    assert_eq!(
        sample(
            &text,
            "creditops_http_requests_total",
            &["route=\"/v1/cases/{id}/second-vote\"", "status=\"503\""]
        ),
        Some(1.0),
        "{text}"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RISK_LOCK_KEY)
        .execute(&mut blocker)
        .await
        .unwrap();

    let unchanged = p
        .call("ba-1", "backoffice", Method::GET, &path(""), None)
        .await;
    assert_eq!(unchanged.ok(200)["status"], "awaiting_second_vote");
    let events = p.case_events(case["id"].as_str().unwrap()).await;
    assert!(
        events
            .iter()
            .any(|e| e["body"]["action"] == "case.first_vote"),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["body"]["action"] == "case.second_vote"),
        "{events:?}"
    );
    // With the lock free the same vote goes through.
    let decided = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &path("/second-vote"),
            Some(vote),
        )
        .await;
    assert_eq!(decided.ok(200)["status"], "approved");
    p.stop().await;
}

/// Hardening finding 19 (A1): a start is on the record with what the
/// process enforces (policy and SoD hashes, rule-set version) and its
/// configuration, without secrets.
async fn the_start_is_audited(p: &TestPlatform) {
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=platform.started&limit=10",
            None,
        )
        .await;
    let events = events.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let body = &events[0]["body"];
    assert_eq!(body["service"], "platform");
    let data = &body["data"];
    for hash in ["policy_hash", "sod_hash"] {
        let hex = data[hash].as_str().unwrap();
        assert_eq!(hex.len(), 64, "{hash}: {hex}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    }
    assert_eq!(data["rules_version"], 1);
    assert_eq!(data["services"].as_array().unwrap().len(), 5, "{data}");
    assert_eq!(data["backend"], p.store.backend());
    assert_eq!(data["max_token_lifetime_seconds"], 43_200);
    let text = body.to_string();
    assert!(!text.contains("postgres://"), "no database URL: {text}");
    assert!(!text.contains("BEGIN"), "no key material: {text}");
}

both_backends!(finding_19_a1_the_start_is_audited, the_start_is_audited);

/// Hardening finding 7: 300 invented HTTP methods grew `/metrics` from
/// 15 KB to 704 KB, each method a label. The method label is one of the
/// standard methods or `other`, so the exposition stays the same size.
async fn invented_methods_do_not_grow_metrics(p: &TestPlatform) {
    let send = |i: usize| {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        p.client
            .request(method, p.url("market", "/v1/cases"))
            .send()
    };
    send(0).await.unwrap();
    let before = scrape(p, "market").await.len();
    for i in 1..300 {
        assert!(send(i).await.unwrap().status().is_client_error());
    }
    let text = scrape(p, "market").await;
    assert!(!text.contains("INVENTED"), "no invented method is a label");
    assert!(text.contains("method=\"other\""), "they count as `other`");
    // Counts grow by digits, never by series.
    assert!(text.len() < before + 200, "{before} -> {}", text.len());
}
both_backends!(
    finding_7_invented_methods_do_not_grow_metrics,
    invented_methods_do_not_grow_metrics
);
