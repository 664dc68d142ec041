//! The OpenAPI documents: each service's generated document equals its
//! committed snapshot under `openapi/` (so every change to the API is
//! reviewed in a diff), and the document and the router agree: every
//! documented operation is served (business ones refuse a request without a
//! token with 401 problem+json, never 404 or 405), and the served
//! `/openapi.json` is the generated document.

// A test: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::reqwest::Method;
use creditops_tests::{Backend, TestPlatform, documented_operations, openapi_document};
use std::path::PathBuf;

const SERVICES: [&str; 5] = ["market", "backoffice", "risk", "audit", "admin"];
const UPDATE: &str = "UPDATE_OPENAPI";
/// A demo person whose role may call the service's commands.
const STAFF: [(&str, &str); 5] = [
    ("market", "lo-1"),
    ("backoffice", "ba-1"),
    ("risk", "rc-1"),
    ("audit", "ia-1"),
    ("admin", "ua-1"),
];

fn snapshot_path(service: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("openapi")
        .join(format!("{service}.json"))
}

fn rendered(service: &str) -> String {
    let mut text = serde_json::to_string_pretty(&openapi_document(service)).unwrap();
    text.push('\n');
    text
}

#[test]
fn documents_match_the_committed_snapshots() {
    let update = std::env::var(UPDATE).is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    for service in SERVICES {
        let path = snapshot_path(service);
        let generated = rendered(service);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            let first = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
            drifted.push(format!(
                "  openapi/{service}.json differs from the generated document from line {}:\n    \
                 committed: {}\n    generated: {}",
                first + 1,
                committed.lines().nth(first).unwrap_or("<end of file>"),
                generated.lines().nth(first).unwrap_or("<end of file>"),
            ));
        }
    }
    assert!(
        drifted.is_empty(),
        "the API changed without its reviewed OpenAPI snapshot:\n{}\nIf the change is intended, \
         regenerate the snapshots with `{UPDATE}=1 cargo test -p creditops-tests --test openapi` \
         and review the diff of openapi/ with the change.",
        drifted.join("\n")
    );
}

/// Every `$ref` in `value`.
fn references(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| references(v, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    for service in SERVICES {
        let document = openapi_document(service);
        let mut found = Vec::new();
        references(&document, &mut found);
        for target in found {
            let pointer = target.trim_start_matches('#');
            assert!(
                document.pointer(pointer).is_some(),
                "{service}: {target} is referenced but not defined"
            );
        }
    }
}

#[tokio::test]
async fn the_router_serves_exactly_what_the_document_lists() {
    let p = TestPlatform::start(Backend::Sqlite).await.unwrap();
    let placeholder = "00000000-0000-7000-8000-000000000000";
    for service in SERVICES {
        let served = p
            .send(service, Method::GET, "/openapi.json", None, None, &[])
            .await;
        assert_eq!(served.status, 200);
        assert_eq!(
            served.body,
            openapi_document(service),
            "{service} serves another /openapi.json than it generates"
        );
        let operations = documented_operations(service);
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            assert!(
                operations.iter().any(|o| o.path == path && !o.secured),
                "{service} does not document GET {path} (outside authentication)"
            );
        }
        for operation in &operations {
            let method = Method::from_bytes(operation.method.as_bytes()).unwrap();
            let path = operation.path.replace("{id}", placeholder);
            if !operation.secured {
                let reply = p.send(service, method, &path, None, None, &[]).await;
                assert_eq!(reply.status, 200, "{service} {path}: {:?}", reply.body);
                continue;
            }
            // No token: the route exists, so authentication refuses it.
            let reply = p.send(service, method, &path, None, None, &[]).await;
            reply.problem(401);
        }
        // Every operation that takes a body refuses one above the limit
        // with the documented 413 problem+json, whatever its media type.
        let person = STAFF.iter().find(|(s, _)| *s == service).unwrap().1;
        let token = p.token(person, service);
        let document = openapi_document(service);
        for operation in operations.iter().filter(|o| o.secured) {
            let content = &document["paths"][&operation.path][operation.method.to_lowercase()]["requestBody"]
                ["content"];
            let Some(media_types) = content.as_object() else {
                continue;
            };
            let path = operation.path.replace("{id}", placeholder);
            // Documents of the credit file (L2) have a bound of their own.
            let oversized = if operation.path.ends_with("/documents") {
                creditops_tests::test_limits().document_bytes + 1
            } else {
                70 * 1024
            };
            for media_type in media_types.keys() {
                let method = Method::from_bytes(operation.method.as_bytes()).unwrap();
                let reply = p
                    .client
                    .request(method, p.url(service, &path))
                    .bearer_auth(&token)
                    .header("content-type", media_type)
                    .body(vec![b' '; oversized])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    (
                        reply.status().as_u16(),
                        reply.headers()["content-type"].to_str().unwrap()
                    ),
                    (413, "application/problem+json"),
                    "{service} {} {path} with an oversized {media_type} body",
                    operation.method
                );
            }
        }
        // The interactive documentation, from vendored assets.
        let docs = p.client.get(p.url(service, "/docs/")).send().await.unwrap();
        assert_eq!(docs.status(), 200);
        assert!(docs.text().await.unwrap().contains("swagger"));
    }
    p.stop().await;
}
