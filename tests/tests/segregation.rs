//! MaRisk segregation end to end over HTTP, on both backends: competence
//! order (V4), escalation of divergent votes (V5), cooling-off (S5),
//! conflicts of interest (S6), related-party credits (V11), groups of
//! connected clients with re-evaluation (V4, R2), four-eyes administration
//! with SoD at role assignment (S3, S9), and the permission matrix of every
//! route, role and audience (S1, S7, S8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use creditops_domain::{
    CompetenceGrant, Role, RoleAssignment, Side, StaffId, StaffMember, StaffStatus, Timestamp,
    UnitAssignment, UnitId,
};
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends, documented_operations, json};
use serde_json::Value;

fn vote(decision: &str, version: i64) -> Value {
    json!({"decision": decision, "rationale": "reviewed the file", "version": version})
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

fn case_path(case: &str, suffix: &str) -> String {
    format!("/v1/cases/{case}{suffix}")
}

async fn borrower(p: &TestPlatform, by: &str, manager: Option<&str>) -> String {
    let mut body = json!({"name": "Muster GmbH", "country": "DE", "sector": "C25"});
    if let Some(manager) = manager {
        body["relationship_manager"] = json!(manager);
    }
    p.borrower_with_limit(by, body).await
}

async fn open_case(p: &TestPlatform, borrower_id: &str, amount: &str) -> String {
    let reply = p
        .call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/cases",
            Some(json!({"borrower_id": borrower_id, "amount": amount, "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "machinery"})),
        )
        .await;
    id_of(reply.ok(201))
}

async fn first(
    p: &TestPlatform,
    who: &str,
    case: &str,
    decision: &str,
    version: i64,
) -> creditops_tests::Reply {
    p.call(
        who,
        "market",
        Method::POST,
        &case_path(case, "/first-vote"),
        Some(vote(decision, version)),
    )
    .await
}

async fn second(
    p: &TestPlatform,
    who: &str,
    case: &str,
    decision: &str,
    version: i64,
) -> creditops_tests::Reply {
    p.call(
        who,
        "backoffice",
        Method::POST,
        &case_path(case, "/second-vote"),
        Some(vote(decision, version)),
    )
    .await
}

async fn case_json(p: &TestPlatform, case: &str) -> Value {
    p.call(
        "ba-1",
        "backoffice",
        Method::GET,
        &case_path(case, ""),
        None,
    )
    .await
    .ok(200)
    .clone()
}

/// Inserts a person directly into the staff directory (a test fixture for
/// histories the demo organisation does not have).
async fn insert_person(
    p: &TestPlatform,
    id: &str,
    units: &[(&str, Side, Timestamp, Option<Timestamp>)],
    roles: &[(Role, Timestamp)],
    competences: &[(Side, u8, Timestamp)],
) {
    let member = StaffMember {
        id: StaffId::parse(id).unwrap(),
        status: StaffStatus::Active,
        units: units
            .iter()
            .map(|(unit, side, from, to)| UnitAssignment {
                unit_id: UnitId::parse(unit).unwrap(),
                side: *side,
                valid_from: *from,
                valid_to: *to,
            })
            .collect(),
        roles: roles
            .iter()
            .map(|(role, from)| RoleAssignment {
                role: *role,
                valid_from: *from,
                valid_to: None,
            })
            .collect(),
        competences: competences
            .iter()
            .map(|(side, level, from)| CompetenceGrant {
                side: *side,
                level: *level,
                valid_from: *from,
                valid_to: None,
            })
            .collect(),
    };
    let mut tx = p.store.begin().await.unwrap();
    tx.insert_staff(&member).await.unwrap();
    tx.commit().await.unwrap();
}

fn refused_by(reply: &creditops_tests::Reply, rule: &str) -> String {
    let problem = reply.problem(403);
    assert_eq!(problem["rule"], rule, "{}", reply.body);
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

/// V5: divergent votes escalate one level; the escalated round needs new
/// voters competent for that level; the original votes stay on record.
async fn escalation(p: &TestPlatform) {
    let b = borrower(p, "lo-1", None).await;
    let case = open_case(p, &b, "100000.00").await;
    first(p, "lo-2", &case, "approve", 1).await.ok(200);
    let escalated = second(p, "ba-1", &case, "decline", 1).await;
    let body = escalated.ok(200);
    assert_eq!(body["status"], "escalated");
    assert_eq!(body["round"], 1);
    assert_eq!(body["escalation_level"], 2);
    assert!(body["decision"].is_null(), "no decision at the lower level");

    refused_by(&first(p, "lo-2", &case, "approve", 1).await, "V5");
    first(p, "lo-3", &case, "approve", 1).await.ok(200);
    refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V5");
    let approved = second(p, "ba-2", &case, "approve", 1).await;
    let body = approved.ok(200);
    assert_eq!(body["status"], "approved");
    let decision = &body["decision"];
    assert_eq!(decision["level"], 2);
    assert_eq!(decision["rules_version"], 1);
    assert!(
        decision["policy_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert!(
        decision["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("escalated"))
    );
    let votes = decision["votes"].as_array().unwrap();
    assert_eq!(votes.len(), 4, "both rounds are on the record");
    assert_eq!(
        votes[1]["decision"], "decline",
        "the original back-office vote is unchanged"
    );
    assert_eq!(votes[3]["required_level"], 2);
    let rules: Vec<&str> = decision["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["rule"].as_str())
        .collect();
    for rule in ["V1", "V2", "V3", "V4", "V5", "S5", "S6"] {
        assert!(
            rules.contains(&rule),
            "decision records the {rule} check: {rules:?}"
        );
    }

    // Divergence at the board declines (nothing above the board).
    let b = borrower(p, "lo-1", None).await;
    let big = open_case(p, &b, "6000000.00").await;
    first(p, "mb-1", &big, "approve", 1).await.ok(200);
    let declined = second(p, "bb-1", &big, "decline", 1).await;
    let body = declined.ok(200);
    assert_eq!(body["status"], "declined");
    let flags = body["decision"]["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("board_level")) && flags.contains(&json!("divergent")));
}
both_backends!(divergent_votes_escalate_to_the_next_level, escalation);

/// V4: the voter's competence must cover the required level; the refusal
/// names it.
async fn competence(p: &TestPlatform) {
    let b = borrower(p, "lo-1", None).await;
    let case = open_case(p, &b, "2000000.00").await;
    let detail = refused_by(&first(p, "lo-2", &case, "approve", 1).await, "V4");
    assert!(detail.contains("level 3"), "{detail}");
    first(p, "lo-3", &case, "approve", 1).await.ok(200);
    let detail = refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V4");
    assert!(
        detail.contains("level 3") && detail.contains("level-3"),
        "{detail}"
    );
    let approved = second(p, "ba-3", &case, "approve", 1).await;
    assert_eq!(approved.ok(200)["decision"]["level"], 3);

    let events = p.case_events(&case).await;
    let refusals: Vec<&Value> = events
        .iter()
        .filter(|e| e["body"]["action"] == "request.refused")
        .collect();
    assert_eq!(refusals.len(), 2, "both V4 refusals are audited");
    assert!(refusals.iter().all(|e| e["body"]["rule"] == "V4"));
}
both_backends!(
    insufficient_competence_is_refused_with_the_required_level,
    competence
);

/// S5: a person who left market less than six months ago may not cast a
/// back-office vote; after the cooling-off period they may.
async fn cooling_off(p: &TestPlatform) {
    let now = Utc::now();
    let year_ago = now - Duration::days(365);
    for (id, left_days_ago) in [("cool-1", 90), ("cool-2", 200)] {
        let left = now - Duration::days(left_days_ago);
        insert_person(
            p,
            id,
            &[
                ("market-corporate", Side::Market, year_ago, Some(left)),
                ("backoffice-credit", Side::Backoffice, left, None),
            ],
            &[(Role::CreditAnalyst, left)],
            &[(Side::Backoffice, 2, left)],
        )
        .await;
    }
    let b = borrower(p, "lo-1", None).await;
    let case = open_case(p, &b, "50000.00").await;
    first(p, "lo-2", &case, "approve", 1).await.ok(200);
    let detail = refused_by(&second(p, "cool-1", &case, "approve", 1).await, "S5");
    assert!(detail.contains("cooling-off"), "{detail}");
    second(p, "cool-2", &case, "approve", 1).await.ok(200);
}
both_backends!(cooling_off_period_blocks_back_office_votes, cooling_off);

/// S6 and V11: originator, relationship manager and related parties cannot
/// vote; a related-party credit needs a board resolution before approval.
async fn conflicts(p: &TestPlatform) {
    let b = borrower(p, "lo-1", Some("lo-3")).await;
    let case = open_case(p, &b, "80000.00").await;
    let originator = refused_by(&first(p, "lo-1", &case, "approve", 1).await, "S6");
    assert!(originator.contains("originated"), "{originator}");
    let manager = refused_by(&first(p, "lo-3", &case, "approve", 1).await, "S6");
    assert!(manager.contains("relationship manager"), "{manager}");

    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/related-parties",
        Some(json!({"borrower_id": b, "staff_id": "ba-2", "relation": "spouse of the managing director"})),
    )
    .await
    .ok(201);
    first(p, "lo-2", &case, "approve", 1).await.ok(200);
    let related = refused_by(&second(p, "ba-2", &case, "approve", 1).await, "S6");
    assert!(related.contains("related party"), "{related}");
    refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V11");
    let resolution = p
        .call(
            "ba-1",
            "backoffice",
            Method::POST,
            &case_path(&case, "/board-resolution"),
            Some(json!({"reference": "BR-2026-117", "version": 1})),
        )
        .await;
    assert_eq!(resolution.ok(200)["related_party"], true);
    // Hardening finding 5: one analyst's record is not enough (V11).
    refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V11");
    let confirmation = case_path(&case, "/board-resolution/confirmation");
    let confirm = |who: &'static str| {
        p.call(
            who,
            "backoffice",
            Method::POST,
            &confirmation,
            Some(json!({"version": 1})),
        )
    };
    let recorder = refused_by(&confirm("ba-1").await, "V11");
    assert!(recorder.contains("board-level"), "{recorder}");
    let below_board = refused_by(&confirm("ba-3").await, "V11");
    assert!(below_board.contains("board-level"), "{below_board}");
    let confirmed = confirm("bb-1").await;
    assert_eq!(
        confirmed.ok(200)["board_resolution"]["confirmed_by"],
        "bb-1"
    );
    // The recorder may not approve on the strength of their own record.
    let own = refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V11");
    assert!(own.contains("recorded the board resolution"), "{own}");
    let approved = second(p, "ba-3", &case, "approve", 1).await;
    let body = approved.ok(200);
    assert_eq!(body["status"], "approved");
    assert!(
        body["decision"]["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("related_party"))
    );
}
both_backends!(conflicts_of_interest_are_refused, conflicts);

/// V4 / R2: the required level follows the group's aggregated exposure, and
/// joining a group re-evaluates open cases.
async fn groups(p: &TestPlatform) {
    let year_ago = Utc::now() - Duration::days(365);
    insert_person(
        p,
        "lo-9",
        &[("market-corporate", Side::Market, year_ago, None)],
        &[(Role::LoanOfficer, year_ago)],
        &[(Side::Market, 1, year_ago)],
    )
    .await;
    // Borrower A already has 200k approved.
    let a = borrower(p, "lo-1", None).await;
    let approved = open_case(p, &a, "200000.00").await;
    first(p, "lo-2", &approved, "approve", 1).await.ok(200);
    second(p, "ba-1", &approved, "approve", 1).await.ok(200);

    // Borrower B alone: 100k is level 1, so lo-9 may vote.
    let b = borrower(p, "lo-1", None).await;
    let open = open_case(p, &b, "100000.00").await;
    first(p, "lo-9", &open, "approve", 1).await.ok(200);

    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/groups",
        Some(json!({"id": "muster-group", "name": "Muster group"})),
    )
    .await
    .ok(201);
    for member in [&a, &b] {
        let proposed = p
            .call(
                "ba-1",
                "backoffice",
                Method::PUT,
                &format!("/v1/borrowers/{member}/group"),
                Some(json!({"group_id": "muster-group"})),
            )
            .await;
        p.approve_pending(&proposed, "ba-3", "backoffice")
            .await
            .ok(200);
    }
    // 200k + 100k = 300k needs level 2: lo-9's first vote no longer suffices.
    let reevaluated = case_json(p, &open).await;
    assert_eq!(reevaluated["status"], "returned", "{reevaluated}");
    assert_eq!(reevaluated["version"], 2);
    let detail = refused_by(&first(p, "lo-9", &open, "approve", 2).await, "V4");
    assert!(
        detail.contains("level 2") && detail.contains("300000"),
        "{detail}"
    );
    first(p, "lo-2", &open, "approve", 2).await.ok(200);
    let decided = second(p, "ba-2", &open, "approve", 2).await;
    assert_eq!(
        decided.ok(200)["decision"]["aggregated_exposure"],
        "300000.00"
    );

    p.call(
        "ba-1",
        "backoffice",
        Method::PUT,
        &format!("/v1/borrowers/{b}/group"),
        Some(json!({"group_id": "no-such-group"})),
    )
    .await
    .problem(422);
}
both_backends!(r2_v4_group_exposure_sets_the_required_level, groups);

/// S3, S7, S9: role assignments are four-eyes, checked against the SoD matrix.
async fn administration(p: &TestPlatform) {
    let now = Utc::now();
    let year_ago = now - Duration::days(365);
    insert_person(
        p,
        "rc-9",
        &[("risk-control", Side::Risk, year_ago, None)],
        &[],
        &[],
    )
    .await;
    let propose = |body: Value| p.call("ua-1", "admin", Method::POST, "/v1/proposals", Some(body));

    // S3: a loan officer cannot become a credit analyst; an admin gets no business role.
    let incompatible = propose(json!({"kind": "role_assignment", "staff_id": "lo-2", "role": "credit_analyst", "valid_from": now})).await;
    let detail = refused_by(&incompatible, "S3");
    assert!(detail.contains("loan_officer"), "{detail}");
    refused_by(&propose(json!({"kind": "role_assignment", "staff_id": "ua-2", "role": "loan_officer", "valid_from": now})).await, "S3");
    // S7: nobody changes their own roles.
    refused_by(&propose(json!({"kind": "role_assignment", "staff_id": "ua-1", "role": "risk_controller", "valid_from": now})).await, "S7");
    propose(json!({"kind": "role_assignment", "staff_id": "rc-9", "role": "no_such_role", "valid_from": now})).await.problem(422);
    // Hardening finding 10 (S4): nothing is back-dated into the history.
    for kind in [
        json!({"kind": "role_assignment", "staff_id": "rc-9", "role": "risk_controller", "valid_from": "2020-01-01T00:00:00Z"}),
        json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "market", "level": 4, "valid_from": year_ago}),
    ] {
        let detail = refused_by(&propose(kind).await, "S4");
        assert!(detail.contains("lies in the past"), "{detail}");
    }

    let proposal = propose(json!({"kind": "role_assignment", "staff_id": "rc-9", "role": "risk_controller", "valid_from": now})).await;
    let proposal_id = id_of(proposal.ok(202));
    let approve_path = format!("/v1/proposals/{proposal_id}/approve");
    refused_by(
        &p.call("ua-1", "admin", Method::POST, &approve_path, None)
            .await,
        "S9",
    );
    let approved = p
        .call("ua-2", "admin", Method::POST, &approve_path, None)
        .await;
    assert_eq!(approved.ok(200)["status"], "approved");
    p.call("ua-2", "admin", Method::POST, &approve_path, None)
        .await
        .problem(409);
    let person = p
        .call("ua-2", "admin", Method::GET, "/v1/staff/rc-9", None)
        .await;
    assert_eq!(person.ok(200)["roles"][0]["role"], "risk_controller");

    // V4 via S9: a competence grant takes effect only after a second admin approves.
    let b = borrower(p, "lo-1", None).await;
    let big = open_case(p, &b, "2000000.00").await;
    refused_by(&first(p, "lo-2", &big, "approve", 1).await, "V4");
    let grant = propose(json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "market", "level": 3, "valid_from": Utc::now()})).await;
    let grant_id = id_of(grant.ok(202));
    refused_by(&first(p, "lo-2", &big, "approve", 1).await, "V4");
    propose(json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "risk", "level": 3, "valid_from": now})).await.problem(422);
    propose(json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "market", "level": 10, "valid_from": now})).await.problem(422);
    p.call(
        "ua-2",
        "admin",
        Method::POST,
        &format!("/v1/proposals/{grant_id}/approve"),
        None,
    )
    .await
    .ok(200);
    first(p, "lo-2", &big, "approve", 1).await.ok(200);
    // A rejected proposal changes nothing and cannot be approved afterwards.
    let rejected = propose(json!({"kind": "competence_grant", "staff_id": "ba-1", "side": "backoffice", "level": 4, "valid_from": now})).await;
    let rejected_id = id_of(rejected.ok(202));
    p.call(
        "ua-2",
        "admin",
        Method::POST,
        &format!("/v1/proposals/{rejected_id}/reject"),
        None,
    )
    .await
    .ok(200);
    p.call(
        "ua-2",
        "admin",
        Method::POST,
        &format!("/v1/proposals/{rejected_id}/approve"),
        None,
    )
    .await
    .problem(409);
    let ba1 = p
        .call("ua-2", "admin", Method::GET, "/v1/staff/ba-1", None)
        .await;
    assert_eq!(ba1.ok(200)["competences"].as_array().map(Vec::len), Some(1));

    // S9: rule changes are four-eyes and effective-dated.
    let mut parameters =
        serde_json::to_value(creditops_domain::RuleParameters::defaults()).unwrap();
    parameters["divergence"] = json!("decline");
    let past = propose(json!({"kind": "rule_set", "valid_from": now - Duration::days(1), "parameters": parameters})).await;
    assert_eq!(past.problem(409)["rule"], "S9");
    let from = Utc::now() + Duration::seconds(2);
    let rules =
        propose(json!({"kind": "rule_set", "valid_from": from, "parameters": parameters})).await;
    let rules_id = id_of(rules.ok(202));
    p.call(
        "ua-2",
        "admin",
        Method::POST,
        &format!("/v1/proposals/{rules_id}/approve"),
        None,
    )
    .await
    .ok(200);
    let versions = p
        .call("ua-1", "admin", Method::GET, "/v1/rules", None)
        .await;
    assert_eq!(versions.ok(200)["items"].as_array().map(Vec::len), Some(2));
    let wait =
        (from - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200);
    tokio::time::sleep(wait).await;
    let b = borrower(p, "lo-1", None).await;
    let case = open_case(p, &b, "10000.00").await;
    first(p, "lo-2", &case, "approve", 1).await.ok(200);
    let declined = second(p, "ba-1", &case, "decline", 1).await;
    let body = declined.ok(200);
    assert_eq!(
        body["status"], "declined",
        "rule set 2 declines divergent votes"
    );
    assert_eq!(body["decision"]["rules_version"], 2);
}
both_backends!(s9_s3_four_eyes_administration_with_sod, administration);

/// The roles each service's policy file grants a route: (path, method) -> roles.
fn policy_grants(service: &str) -> Vec<(String, String, String)> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(service)
        .join("policy.csv");
    std::fs::read_to_string(file)
        .expect("policy file")
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(',').map(str::trim).collect();
            (parts.len() == 4 && parts[0] == "p").then(|| {
                (
                    parts[2].to_owned(),
                    parts[3].to_owned(),
                    parts[1].to_owned(),
                )
            })
        })
        .collect()
}

/// Every route every service documents, called by every role: exactly the
/// roles its policy grants reach it (S1, S7, S8), every other role is
/// refused with 403 (S8), and a token for another service is refused with
/// 401. Every policy entry names a documented route.
async fn permission_matrix(p: &TestPlatform) {
    let placeholder = "00000000-0000-7000-8000-000000000000";
    let services = ["market", "backoffice", "risk", "audit", "admin"].map(|service| {
        let business: Vec<_> = documented_operations(service)
            .into_iter()
            .filter(|o| o.secured)
            .collect();
        (service, business)
    });
    let people = [
        ("lo-2", "loan_officer"),
        ("ba-2", "credit_analyst"),
        ("rc-1", "risk_controller"),
        ("ia-1", "internal_auditor"),
        ("ua-1", "user_admin"),
    ];
    for (service, operations) in &services {
        let service = *service;
        let grants = policy_grants(service);
        for (path, method, _) in &grants {
            assert!(
                operations
                    .iter()
                    .any(|o| o.path == *path && o.method == *method),
                "{service} policy grants {method} {path}, which the service does not document"
            );
        }
        for operation in operations.iter() {
            let path = operation
                .path
                .replace("{id}", placeholder)
                .replace("{valuation_id}", placeholder);
            let method = Method::from_bytes(operation.method.as_bytes()).unwrap();
            let allowed: Vec<&str> = grants
                .iter()
                .filter(|(p, m, _)| *p == operation.path && *m == operation.method)
                .map(|(_, _, role)| role.as_str())
                .collect();
            assert!(
                !allowed.is_empty(),
                "{service} {} {} has no role",
                operation.method,
                operation.path
            );
            for (person, role) in people {
                let status = if path.ends_with("/stream") {
                    // A stream never ends: the status line is the answer.
                    p.client
                        .request(method.clone(), p.url(service, &path))
                        .bearer_auth(p.token(person, service))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                } else {
                    let reply = p
                        .call(person, service, method.clone(), &path, Some(json!({})))
                        .await;
                    if !allowed.contains(&role) {
                        assert_eq!(reply.body["rule"], "S8", "{service} {path}: {}", reply.body);
                    }
                    reply.status.as_u16()
                };
                if allowed.contains(&role) {
                    // 404 only for the placeholder id: the route itself exists.
                    let not_found_ok = operation.path.contains("{id}");
                    assert!(
                        ![401, 403, 405].contains(&status) && (status != 404 || not_found_ok),
                        "{role} must reach {method} {service}{path}: {status}"
                    );
                } else {
                    assert_eq!(
                        status, 403,
                        "{role} must be refused {method} {service}{path}"
                    );
                }
                // The same person's token for any other service is refused (S1).
                let other = services
                    .iter()
                    .map(|(s, _)| *s)
                    .find(|s| *s != service)
                    .unwrap();
                let token = p.token(person, other);
                let wrong = p
                    .send(
                        service,
                        method.clone(),
                        &path,
                        Some(&token),
                        Some("{}".into()),
                        &[],
                    )
                    .await;
                assert_eq!(
                    wrong.status.as_u16(),
                    401,
                    "{other} token at {service}{path}"
                );
            }
        }
    }
}
both_backends!(s8_every_route_every_role_every_audience, permission_matrix);

/// S7: no role, however it combines its own rights, takes a case from draft
/// to approved alone.
async fn nobody_decides_alone(p: &TestPlatform) {
    let everyone = [
        "lo-1", "lo-2", "lo-3", "mb-1", "ba-1", "ba-2", "ba-3", "bb-1", "rc-1", "ia-1", "ua-1",
        "ua-2",
    ];
    for person in everyone {
        let b = borrower(p, "lo-1", None).await;
        let case = open_case(p, &b, "10000.00").await;
        // Try every voting route on both services with the person's own tokens.
        first(p, person, &case, "approve", 1).await;
        second(p, person, &case, "approve", 1).await;
        p.call(
            person,
            "backoffice",
            Method::POST,
            &case_path(&case, "/board-resolution"),
            Some(json!({"reference": "x", "version": 1})),
        )
        .await;
        p.call(
            person,
            "backoffice",
            Method::POST,
            &case_path(&case, "/board-resolution/confirmation"),
            Some(json!({"version": 1})),
        )
        .await;
        second(p, person, &case, "approve", 1).await;
        let state = case_json(p, &case).await;
        assert_ne!(state["status"], "approved", "{person} decided a case alone");
    }
}
both_backends!(s7_no_role_decides_a_case_alone, nobody_decides_alone);

/// Hardening finding 5: the approving analyst typed a related-party board
/// resolution (`{"reference": "made-up"}`) and then approved: V11 satisfied
/// by one person. A recorded resolution now needs the confirmation of a
/// board-level member of the back office, and its recorder cannot cast the
/// approving vote.
async fn a_self_typed_board_resolution_is_not_enough(p: &TestPlatform) {
    let b = borrower(p, "lo-1", None).await;
    let case = open_case(p, &b, "80000.00").await;
    let party = json!({"borrower_id": b, "staff_id": "lo-3", "relation": "brother-in-law"});
    p.call(
        "ba-2",
        "backoffice",
        Method::POST,
        "/v1/related-parties",
        Some(party),
    )
    .await
    .ok(201);
    first(p, "lo-2", &case, "approve", 1).await.ok(200);
    let record = json!({"reference": "made-up", "version": 1});
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        &case_path(&case, "/board-resolution"),
        Some(record),
    )
    .await
    .ok(200);
    let detail = refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V11");
    assert!(detail.contains("confirm"), "unconfirmed: {detail}");
    let confirmation = case_path(&case, "/board-resolution/confirmation");
    let confirm = |who: &'static str| {
        p.call(
            who,
            "backoffice",
            Method::POST,
            &confirmation,
            Some(json!({"version": 1})),
        )
    };
    // Only a board-level back-office member may confirm.
    refused_by(&confirm("ba-3").await, "V11");
    confirm("bb-1").await.ok(200);
    let detail = refused_by(&second(p, "ba-1", &case, "approve", 1).await, "V11");
    assert!(detail.contains("recorded the board resolution"), "{detail}");
    let approved = second(p, "ba-3", &case, "approve", 1).await;
    assert_eq!(approved.ok(200)["status"], "approved");
}
both_backends!(
    finding_5_v11_a_self_typed_board_resolution_is_not_enough,
    a_self_typed_board_resolution_is_not_enough
);

/// Hardening finding 10: a competence grant with `valid_from: 2020-01-01`
/// was proposed and approved, rewriting the dated history S4 and S5 rely
/// on. Grants, roles and units start now or later.
async fn grants_are_never_back_dated(p: &TestPlatform) {
    for change in [
        json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "market", "level": 4, "valid_from": "2020-01-01T00:00:00Z"}),
        json!({"kind": "role_assignment", "staff_id": "ba-1", "role": "credit_analyst", "valid_from": "2020-01-01T00:00:00Z"}),
    ] {
        let reply = p
            .call("ua-1", "admin", Method::POST, "/v1/proposals", Some(change))
            .await;
        let detail = refused_by(&reply, "S4");
        assert!(detail.contains("lies in the past"), "{detail}");
    }
    let pending = p
        .call(
            "ua-2",
            "admin",
            Method::GET,
            "/v1/proposals?status=pending",
            None,
        )
        .await;
    assert_eq!(pending.ok(200)["items"], json!([]), "nothing was proposed");
}
both_backends!(
    finding_10_s4_grants_are_never_back_dated,
    grants_are_never_back_dated
);

/// Hardening finding 9 (S4, S8): a loan officer of another market unit
/// neither reads nor edits (nor votes on, nor lists) a case: each answer is
/// the one for an unknown id. The case's own unit and the board-level
/// voter still see it; the board reads and votes but does not edit; an
/// escalation to a level the other unit's officer covers shows it to them.
async fn market_units(p: &TestPlatform) {
    let year_ago = Utc::now() - Duration::days(365);
    let retail = UnitId::parse("market-retail").unwrap();
    let mut tx = p.store.begin().await.unwrap();
    tx.upsert_unit(&retail, "Retail Banking", Side::Market)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    insert_person(
        p,
        "lr-1",
        &[("market-retail", Side::Market, year_ago, None)],
        &[(Role::LoanOfficer, year_ago)],
        &[(Side::Market, 2, year_ago)],
    )
    .await;
    let b = borrower(p, "lo-1", None).await;
    let case = open_case(p, &b, "100000.00").await;
    let unknown = case_path(&creditops_domain::CaseId::generate().to_string(), "");
    let hidden = p
        .call("lr-1", "market", Method::GET, &unknown, None)
        .await
        .problem(404)["detail"]
        .clone();

    // Another unit: every case route answers as for an unknown id.
    let read = p
        .call("lr-1", "market", Method::GET, &case_path(&case, ""), None)
        .await;
    assert_eq!(read.problem(404)["detail"], hidden, "{}", read.body);
    let edit = p
        .call(
            "lr-1",
            "market",
            Method::PATCH,
            &case_path(&case, ""),
            Some(json!({"version": 1, "amount": "90000.00"})),
        )
        .await;
    assert_eq!(edit.problem(404)["detail"], hidden, "{}", edit.body);
    let vote = first(p, "lr-1", &case, "approve", 1).await;
    assert_eq!(vote.problem(404)["detail"], hidden, "{}", vote.body);
    let listed = |reply: creditops_tests::Reply| {
        reply.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == case.as_str())
    };
    let list = "/v1/cases?status=draft&limit=200";
    assert!(!listed(
        p.call("lr-1", "market", Method::GET, list, None).await
    ));
    // The edit changed nothing: still version 1, amount unchanged.
    let state = case_json(p, &case).await;
    assert_eq!(
        (state["version"].as_i64(), state["amount"].as_str()),
        (Some(1), Some("100000.00"))
    );

    // The own unit and the board-level voter see it.
    for who in ["lo-1", "lo-2", "mb-1"] {
        p.call(who, "market", Method::GET, &case_path(&case, ""), None)
            .await
            .ok(200);
        assert!(
            listed(p.call(who, "market", Method::GET, list, None).await),
            "{who}"
        );
    }
    // The board reads and votes but does not edit another unit's case.
    let board_edit = p
        .call(
            "mb-1",
            "market",
            Method::PATCH,
            &case_path(&case, ""),
            Some(json!({"version": 1, "amount": "90000.00"})),
        )
        .await;
    assert_eq!(board_edit.problem(403)["rule"], "S8", "{}", board_edit.body);
    // The own unit edits.
    p.call(
        "lo-2",
        "market",
        Method::PATCH,
        &case_path(&case, ""),
        Some(json!({"version": 1, "amount": "90000.00"})),
    )
    .await
    .ok(200);

    // Escalated to level 2 (divergent votes at level 1): lr-1 covers
    // level 2, so the case is now one they may have to vote on.
    first(p, "lo-3", &case, "approve", 2).await.ok(200);
    second(p, "ba-1", &case, "decline", 2).await.ok(200);
    assert_eq!(case_json(p, &case).await["escalation_level"], 2);
    p.call("lr-1", "market", Method::GET, &case_path(&case, ""), None)
        .await
        .ok(200);
    assert!(listed(
        p.call(
            "lr-1",
            "market",
            Method::GET,
            "/v1/cases?status=escalated",
            None
        )
        .await
    ));
    let refused_edit = p
        .call(
            "lr-1",
            "market",
            Method::PATCH,
            &case_path(&case, ""),
            Some(json!({"version": 2, "amount": "80000.00"})),
        )
        .await;
    assert_eq!(
        refused_edit.problem(403)["rule"],
        "S8",
        "{}",
        refused_edit.body
    );
    first(p, "lr-1", &case, "approve", 2).await.ok(200);

    // Every refusal above is audited with its case (S8).
    let refusals = p
        .case_events(&case)
        .await
        .into_iter()
        .filter(|e| e["body"]["action"] == "request.refused" && e["body"]["actor"] == "lr-1")
        .count();
    assert_eq!(
        refusals, 4,
        "read, edit, vote, edit of lr-1 refused and audited"
    );
}
both_backends!(
    finding_9_market_units_see_only_their_own_cases,
    market_units
);
