//! The credit after its first decision, end to end over HTTP on both
//! backends: decision kinds on approved credits (L1), the back-office
//! rating a first vote needs (L4) and conditions precedent (L5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::reqwest::Method;
use creditops_tests::{Reply, TestPlatform, both_backends, json};
use serde_json::Value;

const WHY: &str = "cash flow covers debt service";

fn vote(decision: &str, version: i64) -> Value {
    json!({"decision": decision, "rationale": WHY, "version": version})
}

async fn borrower(p: &TestPlatform) -> String {
    p.borrower_with_limit(
        "lo-1",
        json!({"name": "Granting GmbH", "country": "DE", "sector": "C25"}),
    )
    .await
}

async fn open(p: &TestPlatform, body: Value) -> Reply {
    p.call("lo-1", "market", Method::POST, "/v1/cases", Some(body))
        .await
}

fn case_body(borrower: &str, amount: &str, term: u32, extra: Value) -> Value {
    let mut body = json!({"borrower_id": borrower, "amount": amount, "currency": "EUR",
        "product": "term_loan", "term_months": term, "purpose": "machinery"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

async fn first(p: &TestPlatform, who: &str, case: &str, version: i64) -> Reply {
    p.call(
        who,
        "market",
        Method::POST,
        &format!("/v1/cases/{case}/first-vote"),
        Some(vote("approve", version)),
    )
    .await
}

async fn second(p: &TestPlatform, who: &str, case: &str, body: Value) -> Reply {
    p.call(
        who,
        "backoffice",
        Method::POST,
        &format!("/v1/cases/{case}/second-vote"),
        Some(body),
    )
    .await
}

async fn disburse(p: &TestPlatform, case: &str) -> Reply {
    p.call(
        "lo-1",
        "market",
        Method::POST,
        &format!("/v1/cases/{case}/disburse"),
        None,
    )
    .await
}

/// A credit approved by `lo-2` and `ba-1` (level 2 each); returns the
/// case id, which is also the credit's id.
async fn approved_credit(p: &TestPlatform, borrower: &str, amount: &str) -> String {
    let case = open(p, case_body(borrower, amount, 60, json!({}))).await;
    let case = case.ok(201)["id"].as_str().unwrap().to_owned();
    first(p, "lo-2", &case, 1).await.ok(200);
    let approved = second(p, "ba-1", &case, vote("approve", 1)).await;
    let approved = approved.ok(200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision"]["credit_after"]["version"], 1);
    assert_eq!(
        approved["decision"]["credit_after"]["credit_id"],
        case.as_str()
    );
    case
}

fn refused(reply: &Reply, status: u16, rule: &str) {
    let body = reply.problem(status);
    assert_eq!(body["rule"], rule, "{body}");
}

/// L1: an increase is a case of its own, voted at the level of the
/// exposure after it (the new total), and makes the credit's next version;
/// it reserves only the difference.
async fn increase(p: &TestPlatform) {
    let borrower = borrower(p).await;
    let credit = approved_credit(p, &borrower, "900000.00").await;
    let view = p
        .call(
            "ba-2",
            "backoffice",
            Method::GET,
            &format!("/v1/credits/{credit}"),
            None,
        )
        .await;
    let view = view.ok(200);
    assert_eq!(view["current"]["version"], 1);
    assert_eq!(view["current"]["amount"], "900000.00");
    assert_eq!(view["current"]["kind"], "new");

    // EUR 1.2m after the increase: level 3, although 300k alone is level 2.
    let case = open(
        p,
        case_body(
            &borrower,
            "1200000.00",
            60,
            json!({"kind": "increase", "credit_id": credit}),
        ),
    )
    .await;
    let case = case.ok(201).clone();
    assert_eq!(case["kind"], "increase");
    assert_eq!(case["credit_id"], credit.as_str());
    assert_eq!(case["credit"]["version"], 1);
    let id = case["id"].as_str().unwrap();
    refused(&first(p, "lo-2", id, 1).await, 403, "V4");
    first(p, "lo-3", id, 1).await.ok(200);
    refused(&second(p, "ba-2", id, vote("approve", 1)).await, 403, "V4");
    let approved = second(p, "ba-3", id, vote("approve", 1)).await;
    let approved = approved.ok(200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision"]["level"], 3);
    assert_eq!(approved["decision"]["kind"], "increase");
    assert_eq!(approved["decision"]["credit_before"]["version"], 1);
    assert_eq!(approved["decision"]["credit_after"]["version"], 2);
    assert_eq!(approved["decision"]["rating"]["class"], 5);
    assert_eq!(approved["decision"]["aggregated_exposure"], "1200000.00");

    let view = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/credits/{credit}"),
            None,
        )
        .await;
    let view = view.ok(200);
    assert_eq!(view["current"]["version"], 2);
    assert_eq!(view["current"]["amount"], "1200000.00");
    assert_eq!(view["versions"].as_array().unwrap().len(), 2);
    assert_eq!(view["versions"][1]["case_id"], id);
    let list = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/borrowers/{borrower}/credits"),
            None,
        )
        .await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);
    // Internal audit reads the credit's versions too; the read is audited (L12, A7).
    let audited = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/credits/{credit}"),
            None,
        )
        .await;
    assert_eq!(audited.ok(200)["versions"].as_array().unwrap().len(), 2);

    // The increase reserved the difference only (R5).
    let events = p.case_events(id).await;
    let reserved = events
        .iter()
        .find(|e| e["body"]["action"] == "risk.reserved")
        .expect("a reservation");
    assert_eq!(reserved["body"]["data"]["amount"], "300000.00");
    let versioned = events
        .iter()
        .find(|e| e["body"]["action"] == "credit.versioned")
        .expect("the credit's new version is audited");
    assert_eq!(versioned["body"]["data"]["version"], 2);
    assert_eq!(versioned["body"]["rule"], "L1");
}
both_backends!(
    l1_an_increase_needs_both_votes_at_the_level_of_the_new_total,
    increase
);

/// L1: a prolongation adds no exposure (nothing reserved, nothing to
/// disburse) and makes the next version with the longer term; a case opened
/// on a version that another decision replaced cannot be approved.
async fn prolongation(p: &TestPlatform) {
    let borrower = borrower(p).await;
    let credit = approved_credit(p, &borrower, "200000.00").await;
    let change = |term: u32| {
        case_body(
            &borrower,
            "200000.00",
            term,
            json!({"kind": "prolongation", "credit_id": credit}),
        )
    };
    let a = open(p, change(84)).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = open(p, change(96)).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for case in [&a, &b] {
        first(p, "lo-2", case, 1).await.ok(200);
    }
    let approved = second(p, "ba-1", &a, vote("approve", 1)).await;
    assert_eq!(approved.ok(200)["decision"]["credit_after"]["version"], 2);
    let events: Vec<String> = p
        .case_events(&a)
        .await
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(!events.contains(&"risk.reserved".to_owned()), "{events:?}");
    assert_eq!(disburse(p, &a).await.status, 409, "nothing to disburse");

    // b was opened on version 1: its approval is refused, nothing written.
    let stale = second(p, "ba-2", &b, vote("approve", 1)).await;
    refused(&stale, 409, "L1");
    let b_now = p
        .call(
            "ba-2",
            "backoffice",
            Method::GET,
            &format!("/v1/cases/{b}"),
            None,
        )
        .await;
    assert_eq!(b_now.ok(200)["status"], "awaiting_second_vote");
    let view = p
        .call(
            "ba-2",
            "backoffice",
            Method::GET,
            &format!("/v1/credits/{credit}"),
            None,
        )
        .await;
    assert_eq!(view.ok(200)["current"]["term_months"], 84);
}
both_backends!(
    l1_a_prolongation_adds_no_exposure_and_binds_to_its_credit_version,
    prolongation
);

/// L1: what a kind may ask of its credit, and bad references, are refused
/// with a clear problem and nothing written.
async fn bad_changes(p: &TestPlatform) {
    let borrower = borrower(p).await;
    let other = p
        .borrower_with_limit(
            "lo-1",
            json!({"name": "Other AG", "country": "DE", "sector": "C25"}),
        )
        .await;
    let credit = approved_credit(p, &borrower, "500000.00").await;
    let table = [
        (
            case_body(&borrower, "600000.00", 60, json!({"kind": "increase"})),
            422,
            None,
        ),
        (
            case_body(&borrower, "600000.00", 60, json!({"credit_id": credit})),
            422,
            None,
        ),
        (
            case_body(
                &borrower,
                "600000.00",
                60,
                json!({"kind": "raise", "credit_id": credit}),
            ),
            422,
            None,
        ),
        (
            case_body(
                &borrower,
                "600000.00",
                60,
                json!({"kind": "increase", "credit_id": "0191e0a0-0000-7000-8000-000000000000"}),
            ),
            422,
            None,
        ),
        (
            case_body(
                &other,
                "600000.00",
                60,
                json!({"kind": "increase", "credit_id": credit}),
            ),
            422,
            None,
        ),
        (
            case_body(
                &borrower,
                "400000.00",
                60,
                json!({"kind": "increase", "credit_id": credit}),
            ),
            403,
            Some("L1"),
        ),
        (
            case_body(
                &borrower,
                "500000.00",
                48,
                json!({"kind": "prolongation", "credit_id": credit}),
            ),
            403,
            Some("L1"),
        ),
        (
            case_body(
                &borrower,
                "450000.00",
                60,
                json!({"kind": "collateral_release", "credit_id": credit}),
            ),
            403,
            Some("L1"),
        ),
    ];
    for (body, status, rule) in table {
        let reply = open(p, body.clone()).await;
        let problem = reply.problem(status);
        if let Some(rule) = rule {
            assert_eq!(problem["rule"], rule, "{body}: {problem}");
        }
    }
    let cases = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases?borrower_id={borrower}"),
            None,
        )
        .await;
    assert_eq!(
        cases.ok(200)["items"].as_array().unwrap().len(),
        1,
        "nothing written"
    );
}
both_backends!(
    l1_a_change_names_a_credit_of_its_borrower_and_asks_what_its_kind_may,
    bad_changes
);

/// L4: a first vote needs a rating set by back office; market may propose
/// one and never set it; both read the history.
async fn rating(p: &TestPlatform) {
    p.without_automatic_ratings();
    let borrower = borrower(p).await;
    let case = open(p, case_body(&borrower, "100000.00", 60, json!({}))).await;
    let case = case.ok(201)["id"].as_str().unwrap().to_owned();
    refused(&first(p, "lo-2", &case, 1).await, 403, "L4");

    let rating = json!({"class": 6, "pd": "0.0020", "reason": "annual accounts 2025"});
    let path = format!("/v1/borrowers/{borrower}/rating");
    // Market has no such route, and a market person is refused at back office.
    let at_market = p
        .call("lo-1", "market", Method::PUT, &path, Some(rating.clone()))
        .await;
    assert!(
        [404, 405].contains(&at_market.status.as_u16()),
        "{}",
        at_market.status
    );
    refused(
        &p.call(
            "lo-1",
            "backoffice",
            Method::PUT,
            &path,
            Some(rating.clone()),
        )
        .await,
        403,
        "S8",
    );
    // A proposal is on record but decides nothing.
    let proposed = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            &format!("/v1/borrowers/{borrower}/rating-proposals"),
            Some(rating.clone()),
        )
        .await;
    assert_eq!(proposed.ok(201)["status"], "proposed");
    refused(&first(p, "lo-2", &case, 1).await, 403, "L4");

    // Bad ratings are refused with nothing written.
    for bad in [
        json!({"class": 6, "pd": "0.5", "reason": "x"}),
        json!({"class": 19, "pd": "0.5", "reason": "x"}),
        json!({"class": 6, "pd": "abc", "reason": "x"}),
        json!({"class": 6, "pd": "0.0020", "reason": " "}),
        json!({"class": 6, "pd": "0.0020"}),
    ] {
        let reply = p
            .call("ba-1", "backoffice", Method::PUT, &path, Some(bad.clone()))
            .await;
        reply.problem(422);
    }
    // A borrower nobody registered: 404, for a set rating and a proposal,
    // and nothing written for it.
    let nobody = uuid::Uuid::now_v7();
    for (who, service, method, route) in [
        ("ba-1", "backoffice", Method::PUT, "rating"),
        ("lo-1", "market", Method::POST, "rating-proposals"),
    ] {
        let reply = p
            .call(
                who,
                service,
                method,
                &format!("/v1/borrowers/{nobody}/{route}"),
                Some(rating.clone()),
            )
            .await;
        assert!(
            reply.problem(404)["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no borrower with that id")),
            "{route}"
        );
    }
    // Nor does a case open for it (422: the field names nobody).
    let opened = open(
        p,
        case_body(&nobody.to_string(), "100000.00", 60, json!({})),
    )
    .await;
    assert!(
        opened.problem(422)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("borrower_id names no registered borrower")),
        "{}",
        opened.body
    );
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/events?borrower_id={nobody}"),
            None,
        )
        .await;
    assert_eq!(events.ok(200)["items"].as_array().unwrap().len(), 0);
    let set = p
        .call("ba-1", "backoffice", Method::PUT, &path, Some(rating))
        .await;
    let set = set.ok(201);
    assert_eq!(set["status"], "set");
    assert_eq!(set["rated_by"], "ba-1");
    let voted = first(p, "lo-2", &case, 1).await;
    let voted = voted.ok(200);
    let checks = voted["votes"][0]["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["rule"] == "L4"), "{checks:?}");

    let history = p
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/borrowers/{borrower}/ratings"),
            None,
        )
        .await;
    let items = history.ok(200)["items"].as_array().unwrap().clone();
    let statuses: Vec<&str> = items
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["set", "proposed"]);
    // Internal audit reads the history too; the read is audited (L12, A7).
    let audited = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/borrowers/{borrower}/ratings"),
            None,
        )
        .await;
    assert_eq!(audited.ok(200)["items"].as_array().unwrap().len(), 2);
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            &format!("/v1/events?borrower_id={borrower}"),
            None,
        )
        .await;
    let actions: Vec<String> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"rating.set".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"rating.proposed".to_owned()),
        "{actions:?}"
    );
}
both_backends!(
    l4_a_first_vote_needs_a_back_office_rating_that_market_cannot_set,
    rating
);

/// L4: a rating in a band of the rule set raises the competence level.
async fn rating_band(p: &TestPlatform) {
    let borrower = borrower(p).await;
    p.rate(&borrower, 14).await;
    let case = open(p, case_body(&borrower, "100000.00", 60, json!({}))).await;
    let case = case.ok(201)["id"].as_str().unwrap().to_owned();
    // EUR 100k is level 1; class 14 asks for one more: level 2 votes.
    let voted = first(p, "lo-2", &case, 1).await;
    assert_eq!(voted.ok(200)["votes"][0]["required_level"], 2);
}
both_backends!(
    l4_a_weak_rating_asks_for_a_higher_competence_level,
    rating_band
);

/// L5: the approving second vote attaches conditions; disbursement is
/// refused while one is open, naming it, and goes through once back office
/// signed off every one.
async fn conditions(p: &TestPlatform) {
    let borrower = borrower(p).await;
    let case = open(p, case_body(&borrower, "150000.00", 60, json!({}))).await;
    let case = case.ok(201)["id"].as_str().unwrap().to_owned();
    // A first vote carries no conditions.
    let mut with = vote("approve", 1);
    with["conditions"] = json!([{"text": "x"}]);
    p.call(
        "lo-2",
        "market",
        Method::POST,
        &format!("/v1/cases/{case}/first-vote"),
        Some(with),
    )
    .await
    .problem(422);
    first(p, "lo-2", &case, 1).await.ok(200);
    // A past due date is refused, nothing written.
    let mut bad = vote("approve", 1);
    bad["conditions"] = json!([{"text": "land charge registered", "due": "2001-01-01"}]);
    second(p, "ba-1", &case, bad).await.problem(422);
    let mut approve = vote("approve", 1);
    approve["conditions"] = json!([
        {"text": "land charge registered", "due": "2099-12-31"},
        {"text": "guarantee of the shareholder signed"}
    ]);
    let approved = second(p, "ba-1", &case, approve).await;
    let approved = approved.ok(200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["conditions"].as_array().unwrap().len(), 2);

    let refusal = disburse(p, &case).await;
    let problem = refusal.problem(403);
    assert_eq!(problem["rule"], "L5");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("land charge registered") && detail.contains("guarantee"),
        "{detail}"
    );

    let sign = |who: &'static str, service: &'static str, id: u32| {
        let path = format!("/v1/cases/{case}/conditions/{id}/sign-off");
        async move {
            p.call(
                who,
                service,
                Method::POST,
                &path,
                Some(json!({"evidence": "land register extract"})),
            )
            .await
        }
    };
    // Market cannot sign off: no route there, refused at back office.
    assert!([404, 405].contains(&sign("lo-1", "market", 1).await.status.as_u16()));
    refused(&sign("lo-1", "backoffice", 1).await, 403, "S8");
    sign("ba-2", "backoffice", 9).await.problem(422);
    let signed = sign("ba-2", "backoffice", 1).await;
    let signed = signed.ok(200);
    assert_eq!(signed["conditions"][0]["sign_off"]["by"], "ba-2");
    assert_eq!(
        sign("ba-2", "backoffice", 1).await.status,
        409,
        "signed off already"
    );
    let still = disburse(p, &case).await;
    let problem = still.problem(403);
    assert!(
        !problem["detail"].as_str().unwrap().contains("land charge"),
        "{problem}"
    );
    sign("ba-3", "backoffice", 2).await.ok(200);
    let paid = disburse(p, &case).await;
    paid.ok(200);

    let actions: Vec<String> = p
        .case_events(&case)
        .await
        .iter()
        .map(|e| e["body"]["action"].as_str().unwrap().to_owned())
        .collect();
    let sign_offs = actions
        .iter()
        .filter(|a| *a == "case.condition_signed_off")
        .count();
    assert_eq!(sign_offs, 2, "{actions:?}");
    assert!(actions.contains(&"case.disbursed".to_owned()));
}
both_backends!(
    l5_disbursement_waits_for_every_condition_signed_off_by_back_office,
    conditions
);

/// L1 under races: two changes of one credit, both voted on its version 1,
/// approved at the same moment (on PostgreSQL through two instances): one
/// makes version 2, the other is refused and writes nothing. Two sign-offs
/// of one condition at the same moment: one stands (L5).
async fn racing_changes(p: &TestPlatform, other: &TestPlatform) {
    let borrower = borrower(p).await;
    let credit = approved_credit(p, &borrower, "200000.00").await;
    let change = |amount: &str| {
        case_body(
            &borrower,
            amount,
            60,
            json!({"kind": "increase", "credit_id": credit}),
        )
    };
    let a = open(p, change("220000.00")).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = open(p, change("230000.00")).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for case in [&a, &b] {
        first(p, "lo-2", case, 1).await.ok(200);
    }
    let mut approve_a = vote("approve", 1);
    approve_a["conditions"] = json!([{"text": "guarantee signed"}]);
    let mut approve_b = vote("approve", 1);
    approve_b["conditions"] = json!([{"text": "guarantee signed"}]);
    let (ra, rb) = tokio::join!(
        second(p, "ba-1", &a, approve_a),
        second(other, "ba-2", &b, approve_b)
    );
    let statuses = [ra.status.as_u16(), rb.status.as_u16()];
    assert!(
        statuses.contains(&200) && statuses.contains(&409),
        "one approval stands, the other is refused: {statuses:?} {} {}",
        ra.body,
        rb.body
    );
    let (winner, loser, lost) = if ra.status == 200 {
        (&a, &b, &rb)
    } else {
        (&b, &a, &ra)
    };
    assert_eq!(lost.body["rule"], "L1", "{}", lost.body);
    let loser_now = p
        .call(
            "ba-3",
            "backoffice",
            Method::GET,
            &format!("/v1/cases/{loser}"),
            None,
        )
        .await;
    assert_eq!(loser_now.ok(200)["status"], "awaiting_second_vote");
    let view = p
        .call(
            "ba-3",
            "backoffice",
            Method::GET,
            &format!("/v1/credits/{credit}"),
            None,
        )
        .await;
    let view = view.ok(200);
    assert_eq!(view["current"]["version"], 2);
    assert_eq!(view["versions"].as_array().unwrap().len(), 2);
    assert_eq!(view["versions"][1]["case_id"], winner.as_str());
    let versioned: Vec<Value> = p
        .case_events(loser)
        .await
        .into_iter()
        .filter(|e| e["body"]["action"] == "credit.versioned")
        .collect();
    assert!(versioned.is_empty(), "the refused approval wrote nothing");

    // Two sign-offs of the winner's condition at the same moment.
    let path = format!("/v1/cases/{winner}/conditions/1/sign-off");
    let body = json!({"evidence": "signed guarantee"});
    let (s1, s2) = tokio::join!(
        p.call(
            "ba-2",
            "backoffice",
            Method::POST,
            &path,
            Some(body.clone())
        ),
        other.call(
            "ba-3",
            "backoffice",
            Method::POST,
            &path,
            Some(body.clone())
        )
    );
    let mut statuses = [s1.status.as_u16(), s2.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} {}", s1.body, s2.body);
    let signed = p
        .case_events(winner)
        .await
        .into_iter()
        .filter(|e| e["body"]["action"] == "case.condition_signed_off")
        .count();
    assert_eq!(signed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l1_l5_racing_approvals_of_one_credit_sqlite() {
    let p = TestPlatform::start(creditops_tests::Backend::Sqlite)
        .await
        .expect("sqlite");
    racing_changes(&p, &p).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l1_l5_racing_approvals_of_one_credit_on_two_postgres_instances() {
    let Some(p) = TestPlatform::start(creditops_tests::Backend::Postgres).await else {
        return;
    };
    let other = p.attach_instance().await;
    racing_changes(&p, &other).await;
    other.stop().await;
    p.stop().await;
}
