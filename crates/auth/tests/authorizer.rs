//! Service RBAC with the project's exact-match casbin model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use creditops_auth::{AuthError, Authorizer};

/// The model every service uses (policies/<service>/model.conf).
const MODEL: &str = "\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
";

const MARKET: &str = "\
# market side: loan officers
p, loan_officer, /v1/borrowers, POST
p, loan_officer, /v1/borrowers/{id}, GET
p, loan_officer, /v1/cases, POST
p, loan_officer, /v1/cases/{id}, GET
p, loan_officer, /v1/cases/{id}, PATCH
p, loan_officer, /v1/cases/{id}/first-vote, POST
p, market_head, /v1/cases/{id}, GET
p, market_head, /v1/cases/{id}/first-vote, POST
";

async fn market() -> Authorizer {
    Authorizer::from_text(MODEL, MARKET).await.expect("policy")
}

#[tokio::test]
async fn allowed_and_denied() {
    let authz = market().await;
    let cases: &[(&str, &str, &str, bool)] = &[
        ("loan_officer", "/v1/cases/{id}/first-vote", "POST", true),
        ("loan_officer", "/v1/cases", "POST", true),
        ("loan_officer", "/v1/cases/{id}", "PATCH", true),
        ("loan_officer", "/v1/borrowers/{id}", "GET", true),
        ("market_head", "/v1/cases/{id}/first-vote", "POST", true),
        // Not granted to this role.
        ("market_head", "/v1/cases", "POST", false),
        ("market_head", "/v1/cases/{id}", "PATCH", false),
        // Unknown roles, including other sides' roles and near misses.
        ("credit_analyst", "/v1/cases/{id}", "GET", false),
        ("user_admin", "/v1/cases", "POST", false),
        ("Loan_Officer", "/v1/cases", "POST", false),
        ("loan_officer ", "/v1/cases", "POST", false),
        // Method mismatch.
        ("loan_officer", "/v1/cases/{id}/first-vote", "GET", false),
        ("loan_officer", "/v1/cases/{id}", "DELETE", false),
        ("loan_officer", "/v1/cases", "post", false),
        // Routes are templates, matched exactly: no concrete paths, no prefixes,
        // no routes of the other side.
        ("loan_officer", "/v1/cases/123/first-vote", "POST", false),
        ("loan_officer", "/v1/cases/{id}/first-vote/", "POST", false),
        ("loan_officer", "/v1/cases/{id}/second-vote", "POST", false),
        ("loan_officer", "/v1/cases/{id}/*", "POST", false),
        ("loan_officer", "/v1", "POST", false),
        // Empty and oversized inputs.
        ("", "/v1/cases", "POST", false),
        ("loan_officer", "", "POST", false),
        ("loan_officer", "/v1/cases", "", false),
        ("", "", "", false),
    ];
    for &(role, route, method, expected) in cases {
        assert_eq!(
            authz.allows(role, route, method),
            expected,
            "{role} {method} {route}"
        );
        // The memoised second answer is the same.
        assert_eq!(
            authz.allows(role, route, method),
            expected,
            "again: {role} {method} {route}"
        );
    }
    let long = "x".repeat(4096);
    assert!(!authz.allows(&long, "/v1/cases", "POST"));
}

/// casbin evaluates the matcher with empty strings when the policy is empty, which
/// would allow ("", "", ""). The authorizer refuses empty inputs first.
#[tokio::test]
async fn empty_policy_denies_everything() {
    let authz = Authorizer::from_text(MODEL, "# nothing yet\n")
        .await
        .expect("policy");
    assert!(authz.roles().is_empty());
    assert!(authz.permissions().is_empty());
    for (role, route, method) in [
        ("", "", ""),
        ("loan_officer", "/v1/cases", "POST"),
        ("user_admin", "/v1/staff", "POST"),
    ] {
        assert!(
            !authz.allows(role, route, method),
            "{role} {method} {route}"
        );
    }
}

#[tokio::test]
async fn roles_and_permissions_list_the_policy() {
    let authz = market().await;
    assert_eq!(authz.roles(), vec!["loan_officer", "market_head"]);
    let permissions = authz.permissions();
    assert_eq!(permissions.len(), 8);
    assert!(permissions.contains(&(
        "market_head".to_owned(),
        "/v1/cases/{id}/first-vote".to_owned(),
        "POST".to_owned()
    )));
    // The permission matrix is exactly what `allows` grants.
    for (role, route, method) in &permissions {
        assert!(authz.allows(role, route, method), "{role} {method} {route}");
    }
    let mut sorted = permissions.clone();
    sorted.sort();
    assert_eq!(sorted, permissions, "sorted");
    // Duplicates collapse.
    let doubled = format!("{MARKET}{MARKET}");
    let again = Authorizer::from_text(MODEL, &doubled)
        .await
        .expect("policy");
    assert_eq!(again.permissions(), permissions);
}

#[tokio::test]
async fn policy_hash_is_stable_and_tracks_changes() {
    let a = market().await;
    let b = market().await;
    assert_eq!(a.policy_hash(), b.policy_hash());
    assert_eq!(a.policy_hash().len(), 64);
    assert!(
        a.policy_hash()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let added = format!("{MARKET}p, market_head, /v1/cases, POST\n");
    let removed = MARKET.replace("p, market_head, /v1/cases/{id}, GET\n", "");
    let other_model = format!("# exact match\n{MODEL}");
    let comment_only = format!("{MARKET}# reviewed\n");
    let variants = [
        Authorizer::from_text(MODEL, &added).await.expect("added"),
        Authorizer::from_text(MODEL, &removed)
            .await
            .expect("removed"),
        Authorizer::from_text(&other_model, MARKET)
            .await
            .expect("model"),
        Authorizer::from_text(MODEL, &comment_only)
            .await
            .expect("comment"),
    ];
    let mut seen = std::collections::HashSet::new();
    seen.insert(a.policy_hash());
    for v in &variants {
        assert!(seen.insert(v.policy_hash()), "hash did not change");
    }
    // The change is real: the added rule is granted only where it was added.
    assert!(variants[0].allows("market_head", "/v1/cases", "POST"));
    assert!(!a.allows("market_head", "/v1/cases", "POST"));
    assert!(!variants[1].allows("market_head", "/v1/cases/{id}", "GET"));

    // Documented framing, recomputed independently.
    let mut framed = b"creditops-casbin-v1\n".to_vec();
    framed.extend_from_slice(&(MODEL.len() as u64).to_be_bytes());
    framed.extend_from_slice(MODEL.as_bytes());
    framed.extend_from_slice(&(MARKET.len() as u64).to_be_bytes());
    framed.extend_from_slice(MARKET.as_bytes());
    let expected = hex::encode(ring::digest::digest(&ring::digest::SHA256, &framed));
    assert_eq!(a.policy_hash(), expected);
}

#[tokio::test]
async fn load_reads_a_policy_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("model.conf"), MODEL).expect("model");
    std::fs::write(dir.path().join("policy.csv"), MARKET).expect("policy");
    let loaded = Authorizer::load(dir.path()).await.expect("load");
    assert_eq!(loaded.policy_hash(), market().await.policy_hash());
    assert!(loaded.allows("loan_officer", "/v1/cases/{id}/first-vote", "POST"));

    std::fs::remove_file(dir.path().join("policy.csv")).expect("rm");
    let err = Authorizer::load(dir.path())
        .await
        .expect_err("missing policy");
    assert!(matches!(err, AuthError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("policy.csv"), "{err}");
}

#[tokio::test]
async fn broken_policies_are_refused() {
    let cases: Vec<(&str, String, String)> = vec![
        (
            "model is not a model",
            "hello".to_owned(),
            MARKET.to_owned(),
        ),
        (
            "model with four request fields",
            MODEL.replace("r = sub, obj, act", "r = sub, dom, obj, act"),
            MARKET.to_owned(),
        ),
        (
            "model with four policy fields",
            MODEL.replace("p = sub, obj, act", "p = sub, obj, act, eft"),
            MARKET.to_owned(),
        ),
        (
            "rule with too few fields",
            MODEL.to_owned(),
            format!("{MARKET}p, loan_officer, /v1/cases\n"),
        ),
        (
            "rule with too many fields",
            MODEL.to_owned(),
            format!("{MARKET}p, loan_officer, /v1/cases, GET, deny\n"),
        ),
        (
            "grouping rule",
            MODEL.to_owned(),
            format!("{MARKET}g, alice, loan_officer\n"),
        ),
        (
            "lower-case method",
            MODEL.to_owned(),
            format!("{MARKET}p, loan_officer, /v1/cases, get\n"),
        ),
        // casbin 2.20 panics inside enforce() on an effect it does not know.
        (
            "unsupported effect expression",
            MODEL.replace("some(where (p.eft == allow))", "some(where (p.eft==allow))"),
            MARKET.to_owned(),
        ),
        (
            "route without slash",
            MODEL.to_owned(),
            format!("{MARKET}p, loan_officer, v1/cases, GET\n"),
        ),
        (
            "quoted field",
            MODEL.to_owned(),
            format!("{MARKET}p, \"loan_officer\", /v1/cases, GET\n"),
        ),
    ];
    for (name, model, policy) in cases {
        let err = Authorizer::from_text(&model, &policy)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert!(
            matches!(err, AuthError::InvalidPolicy(_)),
            "{name}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allows_is_shared_across_tasks() {
    let authz = Arc::new(market().await);
    let mut tasks = Vec::new();
    for task in 0..16 {
        let authz = Arc::clone(&authz);
        tasks.push(tokio::spawn(async move {
            for round in 0..2_000 {
                assert!(authz.allows("loan_officer", "/v1/cases/{id}/first-vote", "POST"));
                assert!(!authz.allows("market_head", "/v1/cases", "POST"));
                // Distinct unknown requests exercise the bounded memo concurrently.
                let route = format!("/v1/unknown/{task}/{round}");
                assert!(!authz.allows("loan_officer", &route, "GET"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}
