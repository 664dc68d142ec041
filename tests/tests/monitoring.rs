//! The credit after it is granted (L6-L10) end to end over HTTP, on both
//! backends: imported arrears put a borrower on the watch list and open a
//! back-office task; the catalogue is changed four-eyes and versioned; a
//! review falls due, is alerted when overdue and is completed; only back
//! office moves a stage, and a problem loan needs the back-office vote one
//! level up; a provision needs two people and a large one alerts the board;
//! the monitoring report as JSON and CSV, audited at the audit service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends, json};
use serde_json::Value;

/// A date `days` from today, as a plan's milestone takes it.
fn in_days(days: i64) -> String {
    (Utc::now() + Duration::days(days)).date_naive().to_string()
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("id").to_owned()
}

async fn borrower(p: &TestPlatform, name: &str) -> String {
    p.borrower_with_limit(
        "lo-1",
        json!({"name": name, "country": "DE", "sector": "C25"}),
    )
    .await
}

async fn import(p: &TestPlatform, line: Value) -> Value {
    p.send_typed(
        "rc-1",
        "risk",
        "/v1/exposures/import",
        "application/x-ndjson",
        &format!("{line}\n"),
    )
    .await
    .ok(200)
    .clone()
}

fn balance(source: &str, borrower: &str, amount: &str, days_past_due: Option<u32>) -> Value {
    let mut line = json!({
        "source_id": source,
        "borrower_id": borrower,
        "amount": amount,
        "as_of": Utc::now().to_rfc3339(),
    });
    if let Some(days) = days_past_due {
        line["days_past_due"] = json!(days);
    }
    line
}

async fn watch_list(p: &TestPlatform, user: &str, service: &str) -> Vec<Value> {
    p.call(user, service, Method::GET, "/v1/watch-list", None)
        .await
        .ok(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn entries_of<'a>(list: &'a [Value], borrower: &str) -> Vec<&'a Value> {
    list.iter()
        .filter(|e| e["borrower_id"] == borrower)
        .collect()
}

async fn events(p: &TestPlatform, query: &str) -> Vec<Value> {
    p.call(
        "ia-1",
        "audit",
        Method::GET,
        &format!("/v1/events?{query}&limit=200"),
        None,
    )
    .await
    .ok(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The regulator bundle of the whole log (A5), verified with the published
/// key: the text of its `entries.jsonl`.
async fn exported_entries(p: &TestPlatform) -> String {
    let key = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint/key", None)
        .await;
    let verifier: creditops_audit::VerifierKey = key.ok(200)["verifier_key"]
        .as_str()
        .unwrap()
        .parse()
        .expect("key");
    let response = p
        .client
        .post(p.url("audit", "/v1/exports"))
        .bearer_auth(p.token("ia-1", "audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let archive = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(archive.as_ref())
        .unpack(dir.path())
        .unwrap();
    let bundle = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let files = creditops_audit::export::read_bundle_dir(&bundle).unwrap();
    creditops_audit::export::verify_bundle_with_keys(&files, &[verifier])
        .expect("the bundle verifies");
    files
        .iter()
        .find(|(name, _)| name == "entries.jsonl")
        .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
        .expect("entries.jsonl")
}

async fn l7_imported_arrears_put_the_borrower_on_the_watch_list(p: &TestPlatform) {
    let b = borrower(p, "Arrears GmbH").await;
    // 89 days past due is below the default catalogue's 90.
    import(p, balance("acct-1", &b, "100000.00", Some(89))).await;
    assert!(entries_of(&watch_list(p, "ba-1", "backoffice").await, &b).is_empty());

    import(p, balance("acct-1", &b, "100000.00", Some(91))).await;
    for (user, service) in [("ba-1", "backoffice"), ("rc-1", "risk")] {
        let list = watch_list(p, user, service).await;
        let entries = entries_of(&list, &b);
        assert_eq!(entries.len(), 1, "{service}: {list:?}");
        assert_eq!(entries[0]["indicator"], "days_past_due");
        assert_eq!(entries[0]["value"], "91");
        assert_eq!(entries[0]["rules_version"], 1);
    }
    // The hit gave back office a task: an ad-hoc review, due at once.
    let list = watch_list(p, "ba-1", "backoffice").await;
    let review_id = entries_of(&list, &b)[0]["review_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reviews = p
        .call(
            "ba-1",
            "backoffice",
            Method::GET,
            &format!("/v1/reviews?borrower_id={b}"),
            None,
        )
        .await;
    let reviews = reviews.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(reviews[0]["id"], review_id.as_str());
    assert_eq!(reviews[0]["kind"], "ad_hoc");
    // Opened at once, due within the rule set's 14 days.
    let due: chrono::DateTime<Utc> = reviews[0]["due_at"].as_str().unwrap().parse().unwrap();
    let days = (due - Utc::now()).num_hours();
    assert!((13 * 24..=14 * 24).contains(&days), "{due}");
    assert!(
        reviews[0]["reason"]
            .as_str()
            .unwrap()
            .contains("days_past_due 91"),
        "{reviews:?}"
    );
    let hits = events(p, "action=early_warning.hit").await;
    let hit = hits
        .iter()
        .find(|e| e["body"]["borrower_id"] == b.as_str())
        .expect("the hit is audited");
    assert_eq!(hit["body"]["rule"], "L7");
    assert_eq!(hit["body"]["data"]["catalogue_version"], 1);
    assert_eq!(hit["body"]["data"]["value"], "91");

    // Paid: the indicator no longer hits; the entry is cleared, audited.
    import(p, balance("acct-1", &b, "100000.00", Some(0))).await;
    assert!(entries_of(&watch_list(p, "ba-1", "backoffice").await, &b).is_empty());
    let cleared = events(p, "action=early_warning.cleared").await;
    assert!(
        cleared
            .iter()
            .any(|e| e["body"]["borrower_id"] == b.as_str()),
        "{cleared:?}"
    );

    // Market never reads the watch list; the import rows are checked.
    let refused = p
        .call("lo-1", "market", Method::GET, "/v1/watch-list", None)
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let bad = p
        .send_typed(
            "rc-1",
            "risk",
            "/v1/exposures/import",
            "text/csv",
            &format!(
                "source_id,borrower_id,amount,as_of,days_past_due,overdrawn_days\nx,{b},5,{},-3,\n",
                Utc::now().to_rfc3339()
            ),
        )
        .await;
    let problem = bad.problem(422);
    assert!(problem.to_string().contains("days_past_due"), "{problem}");

    // L12: the regulator export carries the new events.
    let entries = exported_entries(p).await;
    for action in [
        "early_warning.hit",
        "early_warning.cleared",
        "review.opened",
    ] {
        assert!(entries.contains(action), "{action} is exported");
    }
}

both_backends!(
    l7_imported_arrears_put_the_borrower_on_the_watch_list,
    l7_imported_arrears_put_the_borrower_on_the_watch_list
);

async fn l7_negative_information_from_anyone_and_a_four_eyes_catalogue(p: &TestPlatform) {
    let b = borrower(p, "Rumour AG").await;
    let raised = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            &format!("/v1/borrowers/{b}/flags"),
            Some(json!({"kind": "negative_information", "reason": "press: the main customer filed for insolvency"})),
        )
        .await;
    let flag = raised.ok(201).clone();
    assert_eq!(flag["raised_by"], "lo-1");
    // Market may not record a covenant breach: that is back office's.
    let refused = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            &format!("/v1/borrowers/{b}/flags"),
            Some(json!({"kind": "covenant_breach", "reason": "equity ratio below 20 %"})),
        )
        .await;
    assert_eq!(refused.problem(403)["rule"], "L7");
    let list = watch_list(p, "ba-1", "backoffice").await;
    let entries = entries_of(&list, &b);
    assert_eq!(entries.len(), 1, "{list:?}");
    assert_eq!(entries[0]["indicator"], "negative_information");

    // Only back office clears it; then the borrower is off the list.
    let path = format!("/v1/flags/{}/clearance", id_of(&flag));
    let body = json!({"reason": "the customer's insolvency was withdrawn"});
    let refused = p
        .call("rc-1", "risk", Method::POST, &path, Some(body.clone()))
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    p.call(
        "ba-2",
        "backoffice",
        Method::POST,
        &path,
        Some(body.clone()),
    )
    .await
    .ok(200);
    assert!(entries_of(&watch_list(p, "ba-1", "backoffice").await, &b).is_empty());
    let again = p
        .call("ba-2", "backoffice", Method::POST, &path, Some(body))
        .await;
    again.problem(409);

    // The catalogue is part of the rule set: market cannot propose it, the
    // proposer cannot approve it, a second administrator does (S9).
    let mut parameters =
        serde_json::to_value(creditops_domain::RuleParameters::defaults()).unwrap();
    parameters["monitoring"]["early_warning"] =
        json!([{"indicator": "days_past_due", "at_least": 30}]);
    parameters["monitoring"]["intensive_care_criteria"] = json!(["days_past_due"]);
    let from = Utc::now() + Duration::seconds(2);
    let proposal_body = json!({"kind": "rule_set", "valid_from": from, "parameters": parameters});
    let refused = p
        .call(
            "lo-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(proposal_body.clone()),
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let proposal = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(proposal_body),
        )
        .await;
    let proposal_id = id_of(proposal.ok(202));
    let approve = format!("/v1/proposals/{proposal_id}/approve");
    let own = p.call("ua-1", "admin", Method::POST, &approve, None).await;
    assert_eq!(own.problem(403)["rule"], "S9");
    p.call("ua-2", "admin", Method::POST, &approve, None)
        .await
        .ok(200);
    let wait =
        (from - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200);
    tokio::time::sleep(wait).await;
    let c = borrower(p, "Late Payer KG").await;
    import(p, balance("acct-c", &c, "5000.00", Some(31))).await;
    let list = watch_list(p, "rc-1", "risk").await;
    let entries = entries_of(&list, &c);
    assert_eq!(entries.len(), 1, "{list:?}");
    assert_eq!(
        entries[0]["rules_version"], 2,
        "the catalogue version is recorded"
    );
}

both_backends!(
    l7_negative_information_from_anyone_and_a_four_eyes_catalogue,
    l7_negative_information_from_anyone_and_a_four_eyes_catalogue
);

async fn l6_a_review_falls_due_and_is_alerted_when_overdue(p: &TestPlatform) {
    let b = borrower(p, "Large Exposure SE").await;
    let small = borrower(p, "Small Exposure SE").await;
    import(p, balance("big-1", &b, "800000.00", None)).await;
    import(p, balance("small-1", &small, "700000.00", None)).await;
    let platform = p.platform.as_ref().unwrap();
    let now = Utc::now();
    let round = platform.risk_watch_round(now).await.unwrap().unwrap();
    assert!(round.reviews_opened >= 1, "{round:?}");
    let open = |borrower: String| async move {
        p.call(
            "ba-1",
            "backoffice",
            Method::GET,
            &format!("/v1/reviews?borrower_id={borrower}"),
            None,
        )
        .await
        .ok(200)["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    // Above the threshold (750,000): a regular review due in 12 months;
    // at or below it: none.
    let reviews = open(b.clone()).await;
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(reviews[0]["kind"], "regular");
    let due: chrono::DateTime<Utc> = reviews[0]["due_at"].as_str().unwrap().parse().unwrap();
    assert!(
        due > now + Duration::days(364) && due < now + Duration::days(367),
        "{due}"
    );
    assert!(open(small.clone()).await.is_empty());
    let review_id = id_of(&reviews[0]);

    // The due list per analyst.
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/reviews/{review_id}/assignee"),
        Some(json!({"assignee": "ba-2"})),
    )
    .await
    .ok(200);
    let mine = p
        .call(
            "ba-2",
            "backoffice",
            Method::GET,
            "/v1/reviews?assignee=ba-2",
            None,
        )
        .await;
    assert!(
        mine.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == review_id.as_str())
    );
    let to_market = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &format!("/v1/reviews/{review_id}/assignee"),
            Some(json!({"assignee": "lo-1"})),
        )
        .await;
    assert_eq!(to_market.problem(403)["rule"], "L6");

    // Thirteen months on, the watcher finds it overdue: an alert to back
    // office and an audit event, once.
    let later = now + Duration::days(396);
    let round = platform.risk_watch_round(later).await.unwrap().unwrap();
    assert!(round.reviews_overdue >= 1, "{round:?}");
    let alerts = p
        .call(
            "ba-1",
            "backoffice",
            Method::GET,
            "/v1/monitoring/alerts",
            None,
        )
        .await;
    let alerts = alerts.ok(200)["items"].as_array().unwrap().clone();
    let alert = alerts
        .iter()
        .find(|a| a["subject_id"] == review_id.as_str())
        .expect("an overdue alert");
    assert_eq!(alert["kind"], "review_overdue");
    assert_eq!(alert["audience"], "back_office");
    let overdue = events(p, "action=review.overdue").await;
    let for_review: Vec<_> = overdue
        .iter()
        .filter(|e| e["body"]["data"]["review_id"] == review_id.as_str())
        .collect();
    assert_eq!(for_review.len(), 1, "{overdue:?}");
    assert_eq!(for_review[0]["body"]["rule"], "L6");
    platform.risk_watch_round(later).await.unwrap().unwrap();
    let overdue = events(p, "action=review.overdue").await;
    assert_eq!(
        overdue
            .iter()
            .filter(|e| e["body"]["data"]["review_id"] == review_id.as_str())
            .count(),
        1,
        "alerted once"
    );

    // Back office completes it: the checks are confirmed, the rating (set
    // when the borrower was registered) is fresh; the next one is due in
    // 12 months.
    let completion = format!("/v1/reviews/{review_id}/completion");
    let unchecked = json!({"summary": "stable", "covenants": "met", "use_of_funds_checked": false, "collateral_checked": true});
    p.call(
        "ba-2",
        "backoffice",
        Method::POST,
        &completion,
        Some(unchecked),
    )
    .await
    .problem(422);
    let by_market = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            &completion,
            Some(json!({"summary": "x", "covenants": "met", "use_of_funds_checked": true, "collateral_checked": true})),
        )
        .await;
    assert!(by_market.status.is_client_error());
    let done = p
        .call(
            "ba-2",
            "backoffice",
            Method::POST,
            &completion,
            Some(json!({"summary": "turnover stable, collateral revalued in March", "covenants": "breached", "use_of_funds_checked": true, "collateral_checked": true})),
        )
        .await;
    let done = done.ok(200).clone();
    assert_eq!(done["completed_by"], "ba-2");
    assert_eq!(done["assessment"]["covenants"], "breached");
    // The breached covenant is an early-warning hit with its own task.
    let list = watch_list(p, "ba-1", "backoffice").await;
    assert!(
        entries_of(&list, &b)
            .iter()
            .any(|e| e["indicator"] == "covenant_breach"),
        "{list:?}"
    );
    let history = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/borrowers/{b}/reviews"),
            None,
        )
        .await;
    let history = history.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        history
            .iter()
            .any(|r| r["id"] == review_id.as_str() && r["completed_at"].is_string())
    );
    p.call("ba-2", "backoffice", Method::POST, &completion, Some(json!({"summary": "again", "covenants": "met", "use_of_funds_checked": true, "collateral_checked": true})))
        .await
        .problem(409);
}

both_backends!(
    l6_a_review_falls_due_and_is_alerted_when_overdue,
    l6_a_review_falls_due_and_is_alerted_when_overdue
);

/// L6: a review renews the rating: with the rating in force older than the
/// rule set's `review_rating_days`, completing it is refused until back
/// office sets a new one.
async fn l6_a_review_needs_a_renewed_rating(p: &TestPlatform) {
    p.without_automatic_ratings();
    let b = borrower(p, "Old Rating AG").await;
    let mut tx = p.store.begin().await.unwrap();
    tx.insert_rating(&creditops_domain::Rating {
        borrower_id: b.parse().unwrap(),
        class: 6,
        pd: "0.0020".parse().unwrap(),
        method: "scorecard".into(),
        reason: "accounts 2024".into(),
        status: creditops_domain::RatingStatus::Set,
        rated_by: "ba-3".parse().unwrap(),
        rated_at: Utc::now() - Duration::days(200),
        rules_version: 1,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    p.call(
        "rc-1",
        "risk",
        Method::POST,
        &format!("/v1/borrowers/{b}/flags"),
        Some(json!({"kind": "negative_information", "reason": "rating agency watch"})),
    )
    .await
    .ok(201);
    let reviews = p
        .call(
            "ba-1",
            "backoffice",
            Method::GET,
            &format!("/v1/reviews?borrower_id={b}"),
            None,
        )
        .await;
    let review = id_of(&reviews.ok(200)["items"][0]);
    let completion = format!("/v1/reviews/{review}/completion");
    let body = json!({"summary": "watch resolved", "covenants": "none", "use_of_funds_checked": true, "collateral_checked": true});
    let stale = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &completion,
            Some(body.clone()),
        )
        .await;
    let problem = stale.problem(403);
    assert_eq!(problem["rule"], "L6");
    assert!(
        problem["detail"].as_str().unwrap().contains("92 days"),
        "{problem}"
    );
    p.rate(&b, 7).await;
    p.call("ba-1", "backoffice", Method::POST, &completion, Some(body))
        .await
        .ok(200);
}

both_backends!(
    l6_a_review_needs_a_renewed_rating,
    l6_a_review_needs_a_renewed_rating
);

async fn vote(p: &TestPlatform, who: &str, case: &str, stage: &str) -> creditops_tests::Reply {
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
        Some(json!({"decision": "approve", "rationale": "within policy", "version": 1})),
    )
    .await
}

async fn l8_l9_back_office_decides_the_stage_and_a_problem_loan_needs_one_level_more(
    p: &TestPlatform,
) {
    let b = borrower(p, "Turnaround GmbH").await;
    let stage_path = format!("/v1/borrowers/{b}/stage");
    let intensive = json!({"stage": "intensive_care", "reason": "91 days past due"});
    // Market reads the stage, never sets it.
    let refused = p
        .call(
            "lo-1",
            "market",
            Method::PUT,
            &stage_path,
            Some(intensive.clone()),
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let read = p
        .call("lo-1", "market", Method::GET, &stage_path, None)
        .await;
    assert_eq!(read.ok(200)["stage"], "normal");
    // 91 days past due meets a criterion of the rule set for intensive care.
    import(p, balance("turn-1", &b, "50000.00", Some(91))).await;
    let read = p
        .call("ba-1", "backoffice", Method::GET, &stage_path, None)
        .await;
    assert_eq!(
        read.ok(200)["criteria_met"][0]["indicator"],
        "days_past_due"
    );

    let moved = p
        .call(
            "ba-1",
            "backoffice",
            Method::PUT,
            &stage_path,
            Some(intensive),
        )
        .await;
    assert_eq!(moved.ok(200)["stage"], "intensive_care");
    // Into restructuring only with a plan (L9).
    let no_plan = p
        .call(
            "ba-1",
            "backoffice",
            Method::PUT,
            &stage_path,
            Some(json!({"stage": "restructuring", "reason": "restructuring agreed"})),
        )
        .await;
    assert_eq!(no_plan.problem(403)["rule"], "L9");
    let past = p
        .call(
            "ba-1",
            "backoffice",
            Method::PUT,
            &stage_path,
            Some(json!({"stage": "workout", "reason": "wind down", "plan": [{"title": "sale", "due_on": in_days(-1)}]})),
        )
        .await;
    past.problem(422);
    let moved = p
        .call(
            "ba-1",
            "backoffice",
            Method::PUT,
            &stage_path,
            Some(
                json!({"stage": "restructuring", "reason": "restructuring agreed", "plan": [
                    {"title": "new equity of EUR 2m paid in", "due_on": "2027-03-31"},
                    {"title": "sale of the Leipzig plant", "due_on": "2027-09-30"}
                ]}),
            ),
        )
        .await;
    let moved = moved.ok(200).clone();
    assert_eq!(moved["stage"], "restructuring");
    assert_eq!(moved["plan"].as_array().unwrap().len(), 2);
    let milestone = moved["plan"][0]["id"].as_str().unwrap().to_owned();
    let read = p
        .call("lo-1", "market", Method::GET, &stage_path, None)
        .await;
    let read = read.ok(200).clone();
    assert_eq!(read["stage"], "restructuring");
    assert_eq!(read["transfer"]["from_stage"], "intensive_care");
    assert_eq!(read["plan"][0]["status"], "open");
    let met = p
        .call(
            "ba-2",
            "backoffice",
            Method::PUT,
            &format!("/v1/borrowers/{b}/milestones/{milestone}/status"),
            Some(json!({"status": "met"})),
        )
        .await;
    assert_eq!(met.ok(200)["status"], "met");
    let audited = events(p, "action=borrower.stage_changed").await;
    let mut transfers: Vec<_> = audited
        .iter()
        .filter(|e| e["body"]["borrower_id"] == b.as_str())
        .collect();
    assert_eq!(transfers.len(), 2, "{audited:?}");
    transfers.sort_by_key(|e| e["seq"].as_i64());
    assert_eq!(transfers[0]["body"]["rule"], "L8");
    assert_eq!(
        transfers[0]["body"]["data"]["criteria_met"],
        json!(["days_past_due"])
    );
    assert_eq!(transfers[1]["body"]["rule"], "L9");
    // Risk control sees the stage in the exposure view.
    let exposure = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/exposures?borrower_id={b}"),
            None,
        )
        .await;
    assert_eq!(exposure.ok(200)["items"][0]["stage"], "restructuring");

    // A 100k case needs level 1; in restructuring the back-office vote
    // needs level 2 ... which ba-1 holds; at 300k (level 2) it needs 3.
    let case = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(json!({"borrower_id": b, "amount": "300000.00", "currency": "EUR", "product": "term_loan", "term_months": 36, "purpose": "bridge"})),
        )
        .await;
    let case = id_of(case.ok(201));
    vote(p, "lo-2", &case, "first").await.ok(200);
    let refused = vote(p, "ba-1", &case, "second").await;
    let problem = refused.problem(403);
    assert_eq!(problem["rule"], "L9", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("restructuring")
    );
    let approved = vote(p, "ba-3", &case, "second").await;
    let approved = approved.ok(200).clone();
    assert_eq!(approved["status"], "approved", "{approved}");
    let checks = approved["votes"][1]["checks"].to_string();
    assert!(checks.contains("\"L9\""), "{checks}");

    // Side door: moving the borrower out of restructuring while a case is
    // open lowers the level its back-office vote needs; whoever moved it
    // does not vote on that case (S6).
    let case = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(json!({"borrower_id": b, "amount": "300000.00", "currency": "EUR", "product": "term_loan", "term_months": 36, "purpose": "second bridge"})),
        )
        .await;
    let case = id_of(case.ok(201));
    vote(p, "lo-2", &case, "first").await.ok(200);
    p.call(
        "ba-1",
        "backoffice",
        Method::PUT,
        &stage_path,
        Some(json!({"stage": "normal", "reason": "restructuring completed"})),
    )
    .await
    .ok(200);
    let refused = vote(p, "ba-1", &case, "second").await;
    let problem = refused.problem(403);
    assert_eq!(problem["rule"], "S6", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("stage"),
        "{problem}"
    );
    let approved = vote(p, "ba-2", &case, "second").await;
    assert_eq!(approved.ok(200)["status"], "approved");
}

both_backends!(
    l8_l9_back_office_decides_the_stage_and_a_problem_loan_needs_one_level_more,
    l8_l9_back_office_decides_the_stage_and_a_problem_loan_needs_one_level_more
);

async fn l10_a_provision_needs_two_people_and_a_large_one_alerts_the_board(p: &TestPlatform) {
    let b = borrower(p, "Workout AG").await;
    let by_market = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/provisions",
            Some(json!({"borrower_id": b, "amount": "100.00", "reason": "r", "method": "m"})),
        )
        .await;
    assert!(by_market.status.is_client_error());
    let propose = |amount: &str| json!({"borrower_id": b, "amount": amount, "reason": "insolvency filed; collateral shortfall", "method": "collateral shortfall"});
    let small = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            "/v1/provisions",
            Some(propose("200000.00")),
        )
        .await;
    let small = small.ok(201).clone();
    assert_eq!(small["status"], "proposed");
    assert_eq!(small["board_alert"], false);
    let large = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            "/v1/provisions",
            Some(propose("600000.00")),
        )
        .await;
    let large = large.ok(201).clone();
    assert_eq!(large["board_alert"], true);
    assert_eq!(large["amount"], "600000.00");
    let approve = format!("/v1/provisions/{}/approve", id_of(&large));
    let own = p
        .call("ba-1", "backoffice", Method::POST, &approve, None)
        .await;
    assert_eq!(own.problem(403)["rule"], "L10");
    let approved = p
        .call("ba-2", "backoffice", Method::POST, &approve, None)
        .await;
    let approved = approved.ok(200).clone();
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decided_by"], "ba-2");
    p.call("ba-3", "backoffice", Method::POST, &approve, None)
        .await
        .problem(409);
    let reject = format!("/v1/provisions/{}/reject", id_of(&small));
    p.call("ba-3", "backoffice", Method::POST, &reject, None)
        .await
        .ok(200);

    let alerts = p
        .call("rc-1", "risk", Method::GET, "/v1/monitoring/alerts", None)
        .await;
    let alerts = alerts.ok(200)["items"].as_array().unwrap().clone();
    let board: Vec<_> = alerts
        .iter()
        .filter(|a| a["borrower_id"] == b.as_str())
        .collect();
    assert_eq!(board.len(), 1, "only the large one: {alerts:?}");
    assert_eq!(board[0]["audience"], "board");
    assert_eq!(board[0]["subject_id"], large["id"]);
    let audited = events(p, "action=provision.board_alert").await;
    assert!(
        audited
            .iter()
            .any(|e| e["body"]["data"]["provision_id"] == large["id"]),
        "{audited:?}"
    );
    let listed = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/provisions?borrower_id={b}"),
            None,
        )
        .await;
    let statuses: Vec<Value> = listed.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("approved"), json!("rejected")]);
    // The approved provision shows in the exposure view; the rejected not.
    let exposure = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            &format!("/v1/exposures?borrower_id={b}"),
            None,
        )
        .await;
    assert_eq!(exposure.ok(200)["items"][0]["provisions"], "600000.00");

    // The report: JSON for internal audit (the read is audited), a CSV
    // section for risk control.
    let report = p
        .call("ia-1", "audit", Method::GET, "/v1/reports/monitoring", None)
        .await;
    let report = report.ok(200).clone();
    assert!(
        report["provisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == large["id"])
    );
    let reads = events(p, "action=audit.records_read").await;
    assert!(
        reads
            .iter()
            .any(|e| e["body"]["data"]["resource"] == "monitoring_report"),
        "{reads:?}"
    );
    let csv = creditops_tests::reqwest::Client::new()
        .get(p.url(
            "risk",
            "/v1/reports/monitoring?section=provisions&format=csv",
        ))
        .bearer_auth(p.token("rc-1", "risk"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("provision_id,borrower_id,"), "{text}");
    assert!(text.contains("600000.00,EUR,approved"), "{text}");
    let no_section = p
        .call(
            "rc-1",
            "risk",
            Method::GET,
            "/v1/reports/monitoring?format=csv",
            None,
        )
        .await;
    no_section.problem(422);
}

both_backends!(
    l10_a_provision_needs_two_people_and_a_large_one_alerts_the_board,
    l10_a_provision_needs_two_people_and_a_large_one_alerts_the_board
);

/// Two evaluations of the same change at once (two watcher instances, or
/// the watcher and an import): the borrower is listed once, with one hit
/// event and one ad-hoc review, and neither evaluation fails.
async fn l7_concurrent_evaluations_list_once(p: &TestPlatform) {
    use creditops_store::{BorrowerFlag, FlagKind};
    let b: creditops_domain::BorrowerId = borrower(p, "Twice Watched GmbH").await.parse().unwrap();
    let mut tx = p.store.begin().await.unwrap();
    tx.insert_flag(&BorrowerFlag {
        id: uuid::Uuid::now_v7(),
        borrower_id: b,
        kind: FlagKind::NegativeInformation,
        reason: "written directly, not yet evaluated".into(),
        raised_by: "lo-1".parse().unwrap(),
        raised_at: Utc::now(),
        cleared_by: None,
        cleared_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (sod, _) = creditops::platform::load_sod(None).expect("sod");
    let ctx = creditops_commands::Context {
        service: "risk",
        store: p.store.clone(),
        policy_hash: "test".into(),
        sod: std::sync::Arc::new(sod),
        claim_timeout: std::time::Duration::from_secs(5),
        operator: None,
    };
    let evaluate = |ctx: creditops_commands::Context| async move {
        let mut tx = ctx.store.begin().await.unwrap();
        let done = creditops_commands::monitoring::evaluate_early_warning(
            &ctx,
            tx.as_mut(),
            Some(&[b]),
            "concurrent",
            Utc::now(),
        )
        .await
        .expect("evaluation");
        (tx, done.hits.len())
    };
    // The first holds its transaction open while the second starts.
    let (first, first_hits) = evaluate(ctx.clone()).await;
    let second = tokio::spawn(evaluate(ctx.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    first.commit().await.unwrap();
    let (second, second_hits) = second.await.unwrap();
    second.commit().await.unwrap();
    assert_eq!((first_hits, second_hits), (1, 0));
    let list = watch_list(p, "ba-1", "backoffice").await;
    assert_eq!(entries_of(&list, &b.to_string()).len(), 1, "{list:?}");
    let hits = events(p, "action=early_warning.hit").await;
    assert_eq!(
        hits.iter()
            .filter(|e| e["body"]["borrower_id"] == b.to_string().as_str())
            .count(),
        1
    );
    let reviews = p
        .call(
            "ba-1",
            "backoffice",
            Method::GET,
            &format!("/v1/reviews?borrower_id={b}"),
            None,
        )
        .await;
    assert_eq!(reviews.ok(200)["items"].as_array().unwrap().len(), 1);
}

both_backends!(
    l7_concurrent_evaluations_list_once,
    l7_concurrent_evaluations_list_once
);
