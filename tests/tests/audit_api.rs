//! The auditor's view of the trail over HTTP, on both backends: a signed
//! checkpoint that verifies with the published key (A2), and inclusion
//! proofs of single events against it (A4). Every read is itself audited (A7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_audit::merkle::verify_inclusion;
use creditops_audit::{VerifierKey, hash_from_slice, parse_and_verify};
use creditops_store::StoreExt;
use creditops_tests::reqwest::Method;
use creditops_tests::{TestPlatform, both_backends};

fn hash(hex_text: &serde_json::Value) -> [u8; 32] {
    let bytes = hex::decode(hex_text.as_str().expect("hex")).expect("hex");
    hash_from_slice(&bytes).expect("32 bytes")
}

async fn checkpoints_and_proofs(p: &TestPlatform) {
    let case = p.draft_case("10000.00").await;
    let case_id = case["id"].as_str().unwrap();

    let key = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint/key", None)
        .await;
    let verifier: VerifierKey = key.ok(200)["verifier_key"]
        .as_str()
        .unwrap()
        .parse()
        .expect("key");
    // A3: keys used before a rotation stay published, so their checkpoints
    // keep verifying.
    let retired = key.ok(200)["retired"].as_array().expect("retired keys");
    assert_eq!(retired.len(), 1);
    let old: VerifierKey = retired[0]["verifier_key"]
        .as_str()
        .unwrap()
        .parse()
        .expect("retired key");
    assert_ne!(old.key_id(), verifier.key_id());
    let reply = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint", None)
        .await;
    let body = reply.ok(200).clone();
    let checkpoint = parse_and_verify(
        body["note"].as_str().unwrap(),
        std::slice::from_ref(&verifier),
    )
    .expect("the checkpoint verifies with the published key");
    assert_eq!(checkpoint.size, body["size"].as_u64().unwrap());
    assert_eq!(checkpoint.root, hash(&body["root"]));

    // Each event of the case is proven to be in the log.
    let events = p.case_events(case_id).await;
    assert!(!events.is_empty());
    for event in &events {
        let seq = event["seq"].as_u64().unwrap();
        let reply = p
            .call(
                "ia-1",
                "audit",
                Method::GET,
                &format!("/v1/events/{seq}/proof"),
                None,
            )
            .await;
        let proof = reply.ok(200);
        let signed = parse_and_verify(
            proof["checkpoint"].as_str().unwrap(),
            std::slice::from_ref(&verifier),
        )
        .expect("proof checkpoint verifies");
        let path: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        let leaf = hash(&event["leaf_hash"]);
        assert_eq!(leaf, hash(&proof["leaf_hash"]));
        verify_inclusion(&leaf, seq - 1, signed.size, &path, &signed.root)
            .expect("inclusion proof verifies");
        // A proof for the wrong leaf does not.
        let mut wrong = leaf;
        wrong[0] ^= 1;
        assert!(verify_inclusion(&wrong, seq - 1, signed.size, &path, &signed.root).is_err());
    }
    p.call("ia-1", "audit", Method::GET, "/v1/events/0/proof", None)
        .await
        .problem(404);
    p.call(
        "ia-1",
        "audit",
        Method::GET,
        "/v1/events/999999/proof",
        None,
    )
    .await
    .problem(404);
    p.call("ia-1", "audit", Method::GET, "/v1/events/x/proof", None)
        .await
        .problem(404);
    let refused = p
        .call("lo-1", "audit", Method::GET, "/v1/checkpoint", None)
        .await;
    assert_eq!(refused.problem(403)["rule"], "S8");

    // A7: the auditor's reads are in the trail.
    let reads = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=audit.proof&limit=1000",
            None,
        )
        .await;
    assert!(reads.ok(200)["items"].as_array().unwrap().len() >= events.len());
}
both_backends!(
    signed_checkpoints_and_inclusion_proofs,
    checkpoints_and_proofs
);

/// A5 over HTTP: the export bundle as a tar archive, verified by the Rust
/// verifier and by `audit/verify.py` with the published key; the export is
/// itself an audit event; a bad range is refused.
async fn export_over_http(p: &TestPlatform) {
    p.draft_case("10000.00").await;
    // A checkpoint handed out now; the export after more events proves it
    // is consistent with the new one (A2).
    let handed = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint", None)
        .await;
    let handed_size = handed.ok(200)["size"].as_u64().unwrap();
    p.draft_case("20000.00").await;
    let key = p
        .call("ia-1", "audit", Method::GET, "/v1/checkpoint/key", None)
        .await;
    let verifier_text = key.ok(200)["verifier_key"].as_str().unwrap().to_owned();
    let verifier: VerifierKey = verifier_text.parse().expect("key");
    let response = p
        .client
        .post(p.url("audit", "/v1/exports"))
        .bearer_auth(p.token("ia-1", "audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-tar"
    );
    let archive = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(archive.as_ref())
        .unpack(dir.path())
        .unwrap();
    let bundle_dir = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let files = creditops_audit::export::read_bundle_dir(&bundle_dir).unwrap();
    let report = creditops_audit::export::verify_bundle_with_keys(&files, &[verifier])
        .expect("the exported bundle verifies with the published key");
    assert_eq!(report.first_seq, 1);
    assert_eq!(report.previous_size, Some(handed_size));
    assert!(
        files
            .iter()
            .any(|(name, _)| name == "previous-checkpoint.txt")
    );
    // A3: keys.txt lists the current key first, then the retired ones.
    let keys_txt = files
        .iter()
        .find(|(name, _)| name == "keys.txt")
        .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
        .expect("keys.txt");
    let retired = key.ok(200)["retired"][0]["verifier_key"].as_str().unwrap();
    assert_eq!(
        keys_txt.lines().collect::<Vec<_>>(),
        [verifier_text.as_str(), retired]
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/verify.py");
    let python = std::process::Command::new("python3")
        .arg(&script)
        .arg(&bundle_dir)
        .arg("--key")
        .arg(&verifier_text)
        .output()
        .expect("python3");
    assert!(
        python.status.success(),
        "{}{}",
        String::from_utf8_lossy(&python.stdout),
        String::from_utf8_lossy(&python.stderr)
    );
    // The export is audited.
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=audit.exported",
            None,
        )
        .await;
    let items = events.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["body"]["actor"], "ia-1");
    assert_eq!(
        items[0]["body"]["data"]["last_seq"].as_u64(),
        Some(report.last_seq)
    );
    // The next export proves consistency with the one just handed out.
    let response = p
        .client
        .post(p.url("audit", "/v1/exports"))
        .bearer_auth(p.token("ia-1", "audit"))
        .send()
        .await
        .unwrap();
    let archive = response.bytes().await.unwrap();
    let next_dir = tempfile::tempdir().unwrap();
    tar::Archive::new(archive.as_ref())
        .unpack(next_dir.path())
        .unwrap();
    let next_bundle = std::fs::read_dir(next_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let next_files = creditops_audit::export::read_bundle_dir(&next_bundle).unwrap();
    let next = creditops_audit::export::verify_bundle(&next_files).expect("verifies");
    assert_eq!(next.previous_size, Some(report.size));
    // A5: a time range exports the span of the events recorded in it.
    let latest = p.draft_case("30000.00").await;
    let events = p.case_events(latest["id"].as_str().unwrap()).await;
    let first_seq = events[0]["seq"].as_u64().unwrap();
    let since = events[0]["body"]["ts"].as_str().unwrap().to_owned();
    let response = p
        .client
        // An RFC 3339 UTC timestamp needs no escaping in a query string.
        .post(p.url("audit", &format!("/v1/exports?from={since}")))
        .bearer_auth(p.token("ia-1", "audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let archive = response.bytes().await.unwrap();
    let timed_dir = tempfile::tempdir().unwrap();
    tar::Archive::new(archive.as_ref())
        .unpack(timed_dir.path())
        .unwrap();
    let timed_bundle = std::fs::read_dir(timed_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let timed = creditops_audit::export::verify_bundle(
        &creditops_audit::export::read_bundle_dir(&timed_bundle).unwrap(),
    )
    .expect("a time-range bundle verifies");
    assert_eq!(timed.first_seq, first_seq);
    for bad in [
        format!("/v1/exports?from={since}&from_seq=1"),
        "/v1/exports?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z".to_owned(),
        "/v1/exports?from=yesterday".to_owned(),
        "/v1/exports?to=2000-01-01T00:00:00Z".to_owned(),
    ] {
        let token = p.token("ia-1", "audit");
        p.send("audit", Method::POST, &bad, Some(&token), None, &[])
            .await
            .problem(422);
    }
    // A range outside the log is refused; others may not export.
    let token = p.token("ia-1", "audit");
    let reply = p
        .send(
            "audit",
            Method::POST,
            "/v1/exports?from_seq=5&to_seq=2",
            Some(&token),
            None,
            &[],
        )
        .await;
    reply.problem(422);
    let token = p.token("lo-1", "audit");
    let reply = p
        .send(
            "audit",
            Method::POST,
            "/v1/exports",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 403);
}
both_backends!(a5_export_bundle_over_http, export_over_http);

/// A1: nobody has to read the trail for it to be linked. On PostgreSQL the
/// running platform's sequencer links what commands committed (no reader
/// flushes here); readiness reports the lag, zero once linked.
async fn sequencer_links_without_readers(p: &TestPlatform) {
    p.draft_case("12000.00").await;
    let mut linked = false;
    for _ in 0..100 {
        if p.store
            .oldest_unsequenced_audit()
            .await
            .expect("lag")
            .is_none()
        {
            linked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(linked, "the sequencer linked the case's events within 2 s");
    let ready = p
        .client
        .get(p.url("audit", "/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["audit_lag_ms"], 0, "{body}");
    let metrics = p
        .client
        .get(p.url("audit", "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("creditops_audit_unsequenced_age_seconds{service=\"audit\"} 0.0\n"),
        "{metrics}"
    );
    assert!(metrics.contains("creditops_database_up{service=\"audit\"} 1\n"));
    if let Some(sequencer) = p.store.audit_sequencer() {
        let head = sequencer.sequence_audit(None).await.expect("round");
        assert_eq!(
            head.linked, 0,
            "the platform's sequencer had linked everything"
        );
        assert!(head.size > 0);
    }
    // A1: reconciliation finds every business row's audit event.
    let reply = p
        .call("ia-1", "audit", Method::GET, "/v1/reconcile", None)
        .await;
    let report = reply.ok(200);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["missing"], serde_json::json!([]));
}

both_backends!(
    a1_sequencer_links_without_readers,
    sequencer_links_without_readers
);
