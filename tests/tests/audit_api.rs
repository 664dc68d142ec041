//! The auditor's view of the trail over HTTP, on both backends: a signed
//! checkpoint that verifies with the published key (A2), and inclusion
//! proofs of single events against it (A4). Every read is itself audited (A7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_audit::merkle::verify_inclusion;
use creditops_audit::{VerifierKey, hash_from_slice, parse_and_verify};
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
