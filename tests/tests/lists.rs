//! Every list is paged with a maximum page size (hardening, abuse limits):
//! a page size outside `1..=max` is refused with 422, never clamped, and
//! following `next` walks on without repeating an item. Over real HTTP, on
//! both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends};
use serde_json::Value;

/// Every list route: service, a person allowed to read it, the path, and
/// whether the scenario below gives it at least two items to walk.
const LISTS: &[(&str, &str, &str, bool)] = &[
    ("market", "lo-1", "/v1/cases", true),
    ("backoffice", "ba-1", "/v1/cases", false),
    ("backoffice", "ba-1", "/v1/proposals", false),
    (
        "backoffice",
        "ba-1",
        "/v1/limits/proposals?status=approved",
        true,
    ),
    ("risk", "rc-1", "/v1/proposals", false),
    ("risk", "rc-1", "/v1/limits/proposals", true),
    ("risk", "rc-1", "/v1/alerts?status=all", false),
    ("admin", "ua-1", "/v1/staff", true),
    ("admin", "ua-1", "/v1/proposals", false),
    ("audit", "ia-1", "/v1/events", true),
    ("audit", "ia-1", "/v1/staff", true),
    ("audit", "ia-1", "/v1/proposals", false),
    ("audit", "ia-1", "/v1/cases", true),
];

fn with_query(path: &str, query: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{query}")
}

async fn page(p: &TestPlatform, (service, user, path): (&str, &str, &str), query: &str) -> Value {
    p.call(user, service, Method::GET, &with_query(path, query), None)
        .await
        .ok(200)
        .clone()
}

async fn every_list_is_paged(p: &TestPlatform) {
    // Two cases, each with its borrower and an approved borrower limit.
    p.draft_case("100000.00").await;
    p.draft_case("200000.00").await;

    for &(service, user, path, walk) in LISTS {
        let list = (service, user, path);
        for limit in ["0", "1001", "-1", "many"] {
            let query = with_query(path, &format!("limit={limit}"));
            let refused = p.call(user, service, Method::GET, &query, None).await;
            refused.problem(422);
        }
        let first = page(p, list, "limit=1").await;
        let items = first["items"].as_array().expect("items");
        assert!(items.len() <= 1, "{service} {path}: {first}");
        if !walk {
            continue;
        }
        // A cursor is an id, or a sequence number for the events.
        let next = match &first["next"] {
            Value::String(id) => id.clone(),
            Value::Number(seq) => seq.to_string(),
            _ => panic!("{service} {path}: a next page in {first}"),
        };
        let second = page(p, list, &format!("limit=1&after={next}")).await;
        let following = second["items"].as_array().expect("items");
        assert_eq!(following.len(), 1, "{service} {path}: {second}");
        assert_ne!(following[0], items[0], "{service} {path} walks on");
    }
}
both_backends!(
    every_list_is_paged_with_a_maximum_page_size,
    every_list_is_paged
);
