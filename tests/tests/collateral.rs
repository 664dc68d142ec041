//! L3 collateral over real HTTP on both backends: market registers and
//! proposes, back office values, confirms and checks legal validity; the
//! value after haircuts is exact; revaluations fall due on the schedule;
//! bad input is refused with 422 and writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Months, NaiveDate, Utc};
use creditops_tests::reqwest::Method;
use creditops_tests::{Reply, TestPlatform, both_backends};
use serde_json::{Value, json};

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn months_ago(n: u32) -> NaiveDate {
    today().checked_sub_months(Months::new(n)).unwrap()
}

fn refused_by(reply: &Reply, rule: &str) -> String {
    let problem = reply.problem(403);
    assert_eq!(problem["rule"], rule, "{}", reply.body);
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

async fn borrower(p: &TestPlatform) -> String {
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/borrowers",
            Some(json!({"name": "Sicherheiten GmbH", "country": "DE", "sector": "C"})),
        )
        .await;
    reply.ok(201)["id"].as_str().unwrap().to_owned()
}

fn valuation(value: &str, date: NaiveDate) -> Value {
    json!({
        "value": value,
        "currency": "EUR",
        "valuation_date": date.to_string(),
        "valuer": "Gutachterbüro Nord",
        "method": "market_value",
    })
}

async fn register(
    p: &TestPlatform,
    borrower: &str,
    kind: &str,
    nominal: &str,
    proposal: Option<Value>,
) -> Value {
    let mut body = json!({
        "kind": kind,
        "nominal": nominal,
        "currency": "EUR",
        "description": format!("{kind} über {nominal}"),
    });
    if let Some(proposal) = proposal {
        body["proposed_valuation"] = proposal;
    }
    p.call(
        "lo-1",
        "market",
        Method::POST,
        &format!("/v1/borrowers/{borrower}/collateral"),
        Some(body),
    )
    .await
    .ok(201)
    .clone()
}

async fn list(p: &TestPlatform, who: &str, service: &str, borrower: &str) -> Value {
    p.call(
        who,
        service,
        Method::GET,
        &format!("/v1/borrowers/{borrower}/collateral"),
        None,
    )
    .await
    .ok(200)
    .clone()
}

fn item<'a>(list: &'a Value, id: &Value) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == *id)
        .unwrap_or_else(|| panic!("{id} in {list}"))
}

/// Back office values an item effectively.
async fn back_office_values(p: &TestPlatform, id: &Value, value: &str, date: NaiveDate) -> Value {
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/collateral/{}/valuations", id.as_str().unwrap()),
        Some(valuation(value, date)),
    )
    .await
    .ok(201)
    .clone()
}

async fn legal_check(p: &TestPlatform, id: &Value, result: &str) -> Reply {
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/collateral/{}/legal-check", id.as_str().unwrap()),
        Some(json!({"result": result, "note": "Grundbuchauszug geprüft"})),
    )
    .await
}

async fn market_values(p: &TestPlatform, id: &Value, body: Value) -> Reply {
    p.call(
        "lo-1",
        "market",
        Method::POST,
        &format!("/v1/collateral/{}/valuations", id.as_str().unwrap()),
        Some(body),
    )
    .await
}

async fn proposal_counts_nothing_until_back_office_values(p: &TestPlatform) {
    let b = borrower(p).await;
    let valued_on = months_ago(1);
    let registered = register(
        p,
        &b,
        "mortgage_residential",
        "400000.00",
        Some(valuation("380000.00", valued_on)),
    )
    .await;
    let id = registered["id"].clone();
    assert_eq!(registered["status"], "active");
    assert_eq!(registered["proposed_valuation"]["status"], "proposed");
    assert_eq!(registered["proposed_valuation"]["side"], "market");
    assert_eq!(registered["effective_valuation"], Value::Null);
    assert_eq!(registered["value_after_haircut"], "0.00");

    // A proposal with a valid legal check still secures nothing.
    legal_check(p, &id, "valid").await.ok(201);
    for (who, service) in [("lo-1", "market"), ("ba-1", "backoffice")] {
        let listed = list(p, who, service, &b).await;
        assert_eq!(listed["secured_value"], "0.00", "{service}: {listed}");
        assert_eq!(listed["currency"], "EUR");
        let shown = item(&listed, &id);
        assert_eq!(shown["effective_value"], Value::Null);
        assert_eq!(shown["value_after_haircut"], "0.00");
        assert_eq!(shown["proposed_valuation"]["value"], "380000.00");
        assert_eq!(shown["revaluation_due"], true, "never valued: due now");
    }

    // Market cannot confirm its own proposal: the route is back office's (S8).
    let proposal = registered["proposed_valuation"]["id"].as_str().unwrap();
    let confirm = format!(
        "/v1/collateral/{}/valuations/{proposal}/confirm",
        id.as_str().unwrap()
    );
    refused_by(
        &p.call("lo-1", "backoffice", Method::POST, &confirm, None)
            .await,
        "S8",
    );
    let confirmed = p
        .call("ba-1", "backoffice", Method::POST, &confirm, None)
        .await;
    let confirmed = confirmed.ok(200);
    assert_eq!(confirmed["status"], "effective");
    assert_eq!(confirmed["confirmed_by"], "ba-1");
    // Confirmed once.
    p.call("ba-2", "backoffice", Method::POST, &confirm, None)
        .await
        .problem(409);

    let listed = list(p, "ba-1", "backoffice", &b).await;
    let shown = item(&listed, &id);
    assert_eq!(shown["effective_value"], "380000.00");
    assert_eq!(shown["haircut_percent"], "20");
    assert_eq!(shown["value_after_haircut"], "304000.00");
    assert_eq!(shown["proposed_valuation"], Value::Null);
    assert_eq!(shown["legal_check"]["result"], "valid");
    let next = valued_on.checked_add_months(Months::new(36)).unwrap();
    assert_eq!(shown["next_revaluation"], next.to_string());
    assert_eq!(shown["revaluation_due"], false);
    assert_eq!(listed["secured_value"], "304000.00");
    assert_eq!(
        list(p, "lo-1", "market", &b).await["secured_value"],
        "304000.00"
    );
}
both_backends!(
    l3_market_proposes_and_the_proposal_counts_nothing_until_back_office_values_it,
    proposal_counts_nothing_until_back_office_values
);

async fn market_values_only_up_to_the_threshold(p: &TestPlatform) {
    let b = borrower(p).await;
    let on = months_ago(2);
    let large = register(p, &b, "guarantee", "500000.00", None).await["id"].clone();
    let small = register(p, &b, "guarantee", "250000.00", None).await["id"].clone();

    // Above the threshold: by the value, or by the item's nominal (L3).
    let detail = refused_by(
        &market_values(p, &large, valuation("500000.00", on)).await,
        "L3",
    );
    assert!(detail.contains("back office"), "{detail}");
    refused_by(
        &market_values(p, &large, valuation("1000.00", on)).await,
        "L3",
    );
    refused_by(
        &market_values(p, &small, valuation("250000.01", on)).await,
        "L3",
    );
    // A proposal is always market's to make.
    let mut proposal = valuation("500000.00", on);
    proposal["proposal"] = json!(true);
    let proposed = market_values(p, &large, proposal).await;
    assert_eq!(proposed.ok(201)["status"], "proposed");
    // At the threshold market's valuation is effective.
    let valued = market_values(p, &small, valuation("250000.00", on)).await;
    let valued = valued.ok(201);
    assert_eq!(valued["status"], "effective");
    assert_eq!(valued["side"], "market");

    // The legal check is never market's: its service has no such route
    // and the back office refuses a loan officer (S8).
    for id in [&large, &small] {
        let path = format!("/v1/collateral/{}/legal-check", id.as_str().unwrap());
        let body = json!({"result": "valid", "note": "geprüft"});
        refused_by(
            &p.call(
                "lo-1",
                "backoffice",
                Method::POST,
                &path,
                Some(body.clone()),
            )
            .await,
            "S8",
        );
        let at_market = p
            .call("lo-1", "market", Method::POST, &path, Some(body))
            .await;
        assert!(
            [403, 404, 405].contains(&at_market.status.as_u16()),
            "{}",
            at_market.body
        );
    }
    // Without a legal check nothing is secured; with back office's it is.
    assert_eq!(list(p, "lo-1", "market", &b).await["secured_value"], "0.00");
    legal_check(p, &small, "valid").await.ok(201);
    legal_check(p, &large, "valid").await.ok(201);
    let listed = list(p, "lo-1", "market", &b).await;
    assert_eq!(listed["secured_value"], "200000.00", "{listed}");
    assert_eq!(item(&listed, &large)["value_after_haircut"], "0.00");
    // Back office values above the threshold.
    back_office_values(p, &large, "500000.00", on).await;
    let listed = list(p, "ba-2", "backoffice", &b).await;
    assert_eq!(item(&listed, &large)["value_after_haircut"], "400000.00");
    assert_eq!(listed["secured_value"], "600000.00");
}
both_backends!(
    l3_market_cannot_value_above_the_threshold_nor_check_legal_validity,
    market_values_only_up_to_the_threshold
);

async fn values_after_haircuts_are_exact(p: &TestPlatform) {
    let b = borrower(p).await;
    let on = months_ago(1);
    // (kind, effective value, legal check, value after haircut)
    let table = [
        ("pledge_of_deposits", "1000.00", Some("valid"), "1000.00"),
        ("securities_pledge", "100.01", Some("valid"), "70.00"),
        ("assignment_of_receivables", "99.99", Some("valid"), "49.99"),
        (
            "mortgage_commercial",
            "333333.33",
            Some("valid"),
            "199999.99",
        ),
        ("guarantee", "0.05", Some("valid"), "0.04"),
        ("other", "5000.00", Some("valid"), "0.00"),
        ("guarantee", "7000.00", Some("invalid"), "0.00"),
        ("mortgage_residential", "9000.00", None, "0.00"),
    ];
    let mut ids = Vec::new();
    for (kind, value, check, _) in table {
        let id = register(p, &b, kind, value, None).await["id"].clone();
        back_office_values(p, &id, value, on).await;
        if let Some(result) = check {
            legal_check(p, &id, result).await.ok(201);
        }
        ids.push(id);
    }
    let listed = list(p, "ba-1", "backoffice", &b).await;
    for ((kind, value, _, after), id) in table.iter().zip(&ids) {
        let shown = item(&listed, id);
        assert_eq!(shown["effective_value"], *value, "{kind}");
        assert_eq!(shown["value_after_haircut"], *after, "L3 {kind} {value}");
    }
    assert_eq!(listed["secured_value"], "201120.02", "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), table.len());
}
both_backends!(
    l3_value_after_haircuts_is_computed_exactly,
    values_after_haircuts_are_exact
);

async fn revaluations_fall_due(p: &TestPlatform) {
    let b = borrower(p).await;
    let old = register(p, &b, "mortgage_commercial", "800000.00", None).await["id"].clone();
    let fresh = register(p, &b, "mortgage_commercial", "800000.00", None).await["id"].clone();
    let residential =
        register(p, &b, "mortgage_residential", "300000.00", None).await["id"].clone();
    let old_date = months_ago(13);
    back_office_values(p, &old, "750000.00", old_date).await;
    back_office_values(p, &fresh, "750000.00", today()).await;
    back_office_values(p, &residential, "300000.00", months_ago(13)).await;

    let due_at = |who: &'static str, service: &'static str, query: &'static str| async move {
        p.call(
            who,
            service,
            Method::GET,
            &format!("/v1/collateral/revaluations-due{query}"),
            None,
        )
        .await
        .ok(200)
        .clone()
    };
    for (who, service) in [("ba-1", "backoffice"), ("rc-1", "risk")] {
        let due = due_at(who, service, "").await;
        assert_eq!(due["as_of"], today().to_string());
        let items = due["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{service}: {due}");
        assert_eq!(items[0]["id"], old);
        assert_eq!(items[0]["revaluation_due"], true);
        let next = old_date.checked_add_months(Months::new(12)).unwrap();
        assert_eq!(items[0]["next_revaluation"], next.to_string());
    }
    // Three years on, every item is due, the longest overdue first.
    let later = today().checked_add_months(Months::new(37)).unwrap();
    let path = format!("/v1/collateral/revaluations-due?date={later}");
    let due = p.call("ba-1", "backoffice", Method::GET, &path, None).await;
    let ids: Vec<_> = due.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, vec![old.clone(), fresh, residential]);
    // A new effective valuation takes the old item off the list.
    back_office_values(p, &old, "760000.00", today()).await;
    let due = due_at("ba-1", "backoffice", "").await;
    assert_eq!(due["items"], json!([]), "{due}");
    // The list's parameters are checked.
    for query in ["?limit=0", "?limit=1001", "?date=tomorrow", "?colour=red"] {
        let path = format!("/v1/collateral/revaluations-due{query}");
        p.call("rc-1", "risk", Method::GET, &path, None)
            .await
            .problem(422);
    }
    // Market does not read the due list.
    refused_by(
        &p.call(
            "lo-1",
            "backoffice",
            Method::GET,
            "/v1/collateral/revaluations-due",
            None,
        )
        .await,
        "S8",
    );
}
both_backends!(
    l3_a_revaluation_falls_due_and_appears_on_the_due_list,
    revaluations_fall_due
);

async fn bad_input_writes_nothing(p: &TestPlatform) {
    let b = borrower(p).await;
    let on = months_ago(1);
    let id = register(p, &b, "guarantee", "10000.00", None).await["id"].clone();
    back_office_values(p, &id, "9000.00", on).await;
    let before = list(p, "ba-1", "backoffice", &b).await;
    let register_path = format!("/v1/borrowers/{b}/collateral");
    let good = json!({"kind": "guarantee", "nominal": "100.00", "currency": "EUR", "description": "Bürgschaft"});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let future = today().checked_add_days(chrono::Days::new(1)).unwrap();
    let bad_registrations = [
        with("kind", json!("gold_bars")),
        with("kind", json!("Guarantee")),
        with("nominal", json!("-100.00")),
        with("nominal", json!("0")),
        with("nominal", json!("1e6")),
        with("nominal", json!(100)),
        with("currency", json!("EURO")),
        with("description", json!("   ")),
        with("colour", json!("red")),
        with("proposed_valuation", valuation("-5.00", on)),
        with("proposed_valuation", valuation("5.00", future)),
        with("proposed_valuation", json!({"value": "5.00"})),
    ];
    for body in bad_registrations {
        let reply = p
            .call(
                "lo-1",
                "market",
                Method::POST,
                &register_path,
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.body);
        reply.problem(422);
    }
    let value_path = format!("/v1/collateral/{}/valuations", id.as_str().unwrap());
    let mut proposal_in_future = valuation("100.00", future);
    proposal_in_future["proposal"] = json!(true);
    let bad_valuations = [
        ("lo-1", "market", valuation("-1.00", on)),
        ("lo-1", "market", valuation("100.00", future)),
        ("lo-1", "market", proposal_in_future),
        ("ba-1", "backoffice", valuation("-1.00", on)),
        ("ba-1", "backoffice", valuation("0.00", on)),
        ("ba-1", "backoffice", valuation("100.001", on)),
        ("ba-1", "backoffice", valuation("100.00", future)),
        (
            "ba-1",
            "backoffice",
            json!({"value": "1.00", "currency": "EUR", "valuation_date": "31.12.2025", "valuer": "x", "method": "y"}),
        ),
        (
            "ba-1",
            "backoffice",
            json!({"value": "1.00", "currency": "EUR", "valuation_date": on.to_string(), "valuer": "", "method": "y"}),
        ),
        // Back office records effective valuations; it does not propose.
        ("ba-1", "backoffice", {
            let mut body = valuation("1.00", on);
            body["proposal"] = json!(true);
            body
        }),
    ];
    for (who, service, body) in bad_valuations {
        p.call(who, service, Method::POST, &value_path, Some(body))
            .await
            .problem(422);
    }
    let check_path = format!("/v1/collateral/{}/legal-check", id.as_str().unwrap());
    for body in [
        json!({"result": "probably", "note": "x"}),
        json!({"result": "valid", "note": ""}),
        json!({"result": "valid"}),
    ] {
        p.call("ba-1", "backoffice", Method::POST, &check_path, Some(body))
            .await
            .problem(422);
    }
    // Unknown borrower and unknown collateral: 404.
    let ghost = "00000000-0000-7000-8000-000000000001";
    p.call(
        "lo-1",
        "market",
        Method::POST,
        &format!("/v1/borrowers/{ghost}/collateral"),
        Some(good.clone()),
    )
    .await
    .problem(404);
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &format!("/v1/collateral/{ghost}/valuations"),
        Some(valuation("1.00", on)),
    )
    .await
    .problem(404);
    p.call(
        "lo-1",
        "market",
        Method::GET,
        &format!("/v1/borrowers/{ghost}/collateral"),
        None,
    )
    .await
    .problem(404);

    // Nothing was written: the same list, no new audit events of collateral.
    let after = list(p, "ba-1", "backoffice", &b).await;
    assert_eq!(after["items"], before["items"]);
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/events?borrower_id={b}&limit=1000"),
            None,
        )
        .await;
    let actions: Vec<_> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["body"]["action"].as_str())
        .filter(|a| a.starts_with("collateral."))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        actions,
        vec!["collateral.registered", "collateral.valued"],
        "only the good requests were audited"
    );
}
both_backends!(
    l3_bad_input_is_refused_with_422_and_nothing_is_written,
    bad_input_writes_nothing
);

async fn first_vote(p: &TestPlatform, case: &str) -> Reply {
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &format!("/v1/cases/{case}/first-vote"),
        Some(json!({"decision": "approve", "rationale": "secured", "version": 1})),
    )
    .await
}

/// L3 with L1: where the rule set applies the competence order to the
/// unsecured part, the collateral value after haircuts of the borrower is
/// deducted from the exposure. EUR 1.2m secured by a EUR 1m pledge of
/// deposits (no haircut) is voted at level 1; the same credit without
/// collateral needs level 3, which lo-2 (level 2) does not hold.
/// Puts a rule set in force (four-eyes at admin) whose competence order
/// applies to the unsecured part (L1), and waits until it is.
async fn unsecured_basis(p: &TestPlatform) {
    let mut parameters =
        serde_json::to_value(creditops_domain::RuleParameters::defaults()).unwrap();
    parameters["competence_basis"] = json!("unsecured");
    let from = Utc::now() + chrono::Duration::seconds(2);
    let proposed = p
        .call(
            "ua-1",
            "admin",
            Method::POST,
            "/v1/proposals",
            Some(json!({"kind": "rule_set", "valid_from": from, "parameters": parameters})),
        )
        .await;
    let proposal = proposed.ok(202)["id"].as_str().unwrap().to_owned();
    p.call(
        "ua-2",
        "admin",
        Method::POST,
        &format!("/v1/proposals/{proposal}/approve"),
        None,
    )
    .await
    .ok(200);
    let wait =
        (from - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200);
    tokio::time::sleep(wait).await;
}

async fn unsecured_part_decides_the_competence(p: &TestPlatform) {
    unsecured_basis(p).await;

    let body = |name: &str| json!({"name": name, "country": "DE", "sector": "C25"});
    let secured = p.borrower_with_limit("lo-1", body("Besichert GmbH")).await;
    let unsecured = p.borrower_with_limit("lo-1", body("Blanko GmbH")).await;
    let mut cases = Vec::new();
    for b in [&secured, &unsecured] {
        p.rate(b, 5).await;
        let case = p
            .call(
                "lo-1",
                "market",
                Method::POST,
                "/v1/cases",
                Some(
                    json!({"borrower_id": b, "amount": "1200000.00", "currency": "EUR",
                    "product": "term_loan", "term_months": 60, "purpose": "machinery"}),
                ),
            )
            .await;
        cases.push(case.ok(201)["id"].as_str().unwrap().to_owned());
    }
    let pledge =
        register(p, &secured, "pledge_of_deposits", "1000000.00", None).await["id"].clone();
    back_office_values(p, &pledge, "1000000.00", today()).await;
    legal_check(p, &pledge, "valid").await.ok(201);
    assert_eq!(
        list(p, "lo-1", "market", &secured).await["secured_value"],
        "1000000.00"
    );

    let voted = first_vote(p, &cases[0]).await;
    assert_eq!(
        voted.ok(200)["votes"][0]["required_level"],
        1,
        "{}",
        voted.body
    );
    refused_by(&first_vote(p, &cases[1]).await, "V4");
}
both_backends!(
    l3_the_unsecured_part_after_haircuts_decides_the_competence_level,
    unsecured_part_decides_the_competence
);

async fn vote_as(p: &TestPlatform, who: &str, case: &str, stage: &str) -> Reply {
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
        Some(json!({"decision": "approve", "rationale": "fine", "version": 1})),
    )
    .await
}

/// L1 with L3: under the unsecured basis a collateral release raises the
/// unsecured part after the change, and with it the competence level the
/// release needs; its approval releases the collateral. EUR 1.2m secured by
/// a EUR 1m pledge is approved at level 1; releasing the pledge leaves EUR
/// 1.2m unsecured: level 3.
async fn release_needs_the_higher_level(p: &TestPlatform) {
    unsecured_basis(p).await;
    let borrower = p
        .borrower_with_limit(
            "lo-1",
            json!({"name": "Freigabe GmbH", "country": "DE", "sector": "C25"}),
        )
        .await;
    let other = p
        .borrower_with_limit(
            "lo-1",
            json!({"name": "Andere GmbH", "country": "DE", "sector": "C25"}),
        )
        .await;
    let pledge =
        register(p, &borrower, "pledge_of_deposits", "1000000.00", None).await["id"].clone();
    back_office_values(p, &pledge, "1000000.00", today()).await;
    legal_check(p, &pledge, "valid").await.ok(201);
    let foreign = register(p, &other, "pledge_of_deposits", "10000.00", None).await["id"].clone();

    let open = |body: Value| async move {
        p.call("lo-1", "market", Method::POST, "/v1/cases", Some(body))
            .await
    };
    let new = open(
        json!({"borrower_id": borrower, "amount": "1200000.00", "currency": "EUR",
        "product": "term_loan", "term_months": 60, "purpose": "machinery"}),
    )
    .await;
    let credit = new.ok(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        vote_as(p, "lo-2", &credit, "first").await.ok(200)["votes"][0]["required_level"],
        1
    );
    assert_eq!(
        vote_as(p, "ba-1", &credit, "second").await.ok(200)["status"],
        "approved"
    );

    let release = |collateral: Option<&Value>, kind: &str| {
        let mut body = json!({"borrower_id": borrower, "amount": "1200000.00", "currency": "EUR",
            "product": "term_loan", "term_months": 60, "purpose": "release the pledge",
            "kind": kind, "credit_id": credit});
        if let Some(collateral) = collateral {
            body["collateral_id"] = collateral.clone();
        }
        body
    };
    // A release names an active item of the borrower; no other kind names one.
    open(release(None, "collateral_release")).await.problem(422);
    open(release(Some(&foreign), "collateral_release"))
        .await
        .problem(422);
    open(release(Some(&pledge), "change_of_terms"))
        .await
        .problem(422);
    let case = open(release(Some(&pledge), "collateral_release")).await;
    let case = case.ok(201)["id"].as_str().unwrap().to_owned();

    let detail = refused_by(&vote_as(p, "lo-2", &case, "first").await, "V4");
    assert!(detail.contains("unsecured part"), "{detail}");
    assert_eq!(
        vote_as(p, "lo-3", &case, "first").await.ok(200)["votes"][0]["required_level"],
        3
    );
    refused_by(&vote_as(p, "ba-2", &case, "second").await, "V4");
    let approved = vote_as(p, "ba-3", &case, "second").await;
    let approved = approved.ok(200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision"]["kind"], "collateral_release");
    assert_eq!(approved["decision"]["credit_after"]["version"], 2);

    let after = list(p, "ba-1", "backoffice", &borrower).await;
    assert_eq!(after["secured_value"], "0.00", "{after}");
    let events: Vec<String> = p
        .case_events(&case)
        .await
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        events.contains(&"collateral.released".to_owned()),
        "{events:?}"
    );
    assert!(
        !events.contains(&"risk.reserved".to_owned()),
        "a release adds no exposure"
    );
    // The released pledge cannot be released again.
    open(release(Some(&pledge), "collateral_release"))
        .await
        .problem(422);
}
both_backends!(
    l1_l3_a_collateral_release_needs_the_level_of_the_unsecured_part_after_it,
    release_needs_the_higher_level
);
