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
    let (_dir, bundle_dir) = creditops_tests::unpack_export(&archive);
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
    creditops_tests::assert_verify_py_accepts(&bundle_dir, &verifier_text);
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
    let (_next_dir, next_bundle) = creditops_tests::unpack_export(&archive);
    let next_files = creditops_audit::export::read_bundle_dir(&next_bundle).unwrap();
    let next = creditops_audit::export::verify_bundle(&next_files).expect("verifies");
    assert_eq!(next.previous_size, Some(report.size));
    // A range inside the log: borders on both sides, streamed entries; the
    // published verifier accepts it too.
    let last = report.last_seq;
    let response = p
        .client
        .post(p.url(
            "audit",
            &format!("/v1/exports?from_seq=2&to_seq={}", last - 1),
        ))
        .bearer_auth(p.token("ia-1", "audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let announced: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let archive = response.bytes().await.unwrap();
    assert_eq!(archive.len(), announced, "the streamed body is complete");
    let (_inner_dir, inner_bundle) = creditops_tests::unpack_export(&archive);
    let inner = creditops_audit::export::verify_bundle(
        &creditops_audit::export::read_bundle_dir(&inner_bundle).unwrap(),
    )
    .expect("a bundle of a range inside the log verifies");
    assert_eq!((inner.first_seq, inner.last_seq), (2, last - 1));
    creditops_tests::assert_verify_py_accepts(&inner_bundle, &verifier_text);
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
    let (_timed_dir, timed_bundle) = creditops_tests::unpack_export(&archive);
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

/// The ids in the `items` of a list answer, as `key` names them.
fn listed(body: &serde_json::Value, key: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            item[key]
                .as_str()
                .map_or_else(|| item[key].to_string(), str::to_owned)
        })
        .collect()
}

/// Hardening finding 18 (A7): internal audit reads, on the audit service,
/// staff with their dated history, change proposals, rule sets, borrowers,
/// groups with their memberships, related parties (with the relation, which
/// stays out of the audit trail, A6), every limit version and case lists
/// by status, borrower and time. Every read is audited; nobody else may.
async fn auditor_reads(p: &TestPlatform) {
    use creditops_domain::proposal::{ChangeProposal, ProposalKind, ProposalStatus};
    use creditops_domain::{BorrowerId, StaffId, UnitId};
    use creditops_tests::json;
    let before = chrono::Utc::now();
    let case = p.draft_case("10000.00").await;
    let case_id = case["id"].as_str().unwrap().to_owned();
    let borrower = case["borrower_id"].as_str().unwrap().to_owned();
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/groups",
        Some(json!({"id": "gcc-audit", "name": "Audit group"})),
    )
    .await
    .ok(201);
    let relation = "sibling of the managing director";
    p.call(
        "ba-1",
        "backoffice",
        Method::POST,
        "/v1/related-parties",
        Some(json!({"borrower_id": borrower, "staff_id": "lo-3", "relation": relation})),
    )
    .await
    .ok(201);
    // A membership and a pending proposal as fixtures: how they come about
    // is the business of their own tests.
    let proposal_id = uuid::Uuid::now_v7();
    let mut tx = p.store.begin().await.unwrap();
    let group = UnitId::parse("gcc-audit").unwrap();
    let borrower_id: BorrowerId = borrower.parse().unwrap();
    tx.set_group_membership(borrower_id, Some(&group), chrono::Utc::now())
        .await
        .unwrap();
    tx.insert_proposal(&ChangeProposal {
        id: proposal_id,
        kind: ProposalKind::CompetenceGrant,
        payload: json!({"kind": "competence_grant", "staff_id": "lo-2", "side": "market",
            "level": 3, "valid_from": chrono::Utc::now()}),
        proposed_by: StaffId::parse("ua-1").unwrap(),
        proposed_at: chrono::Utc::now(),
        status: ProposalStatus::Pending,
        decided_by: None,
        decided_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let read = |path: String| async move {
        p.call("ia-1", "audit", Method::GET, &path, None)
            .await
            .ok(200)
            .clone()
    };

    // The directory with its dated history (S4).
    let staff = read("/v1/staff?limit=1000".into()).await;
    assert!(listed(&staff, "id").contains(&"lo-1".to_owned()), "{staff}");
    let lo2 = read("/v1/staff/lo-2".into()).await;
    assert_eq!(lo2["units"][0]["unit_id"], "market-corporate", "{lo2}");
    assert!(lo2["units"][0]["valid_from"].is_string(), "{lo2}");
    assert_eq!(lo2["roles"][0]["role"], "loan_officer", "{lo2}");
    assert_eq!(lo2["competences"][0]["level"], 2, "{lo2}");
    // Change proposals and rule sets (S9).
    let proposals = read("/v1/proposals?status=pending".into()).await;
    assert!(
        listed(&proposals, "id").contains(&proposal_id.to_string()),
        "{proposals}"
    );
    let proposal = read(format!("/v1/proposals/{proposal_id}")).await;
    assert_eq!(
        (&proposal["kind"], &proposal["proposed_by"]),
        (&json!("competence_grant"), &json!("ua-1"))
    );
    let rules = read("/v1/rules".into()).await;
    assert_eq!(rules["items"][0]["version"], 1, "{rules}");
    assert_eq!(
        rules["items"][0]["competence_order"]["levels"][3]["name"], "board",
        "{rules}"
    );
    // Borrowers, groups with members, related parties.
    let borrowers = read("/v1/borrowers".into()).await;
    assert!(listed(&borrowers, "id").contains(&borrower), "{borrowers}");
    let one = read(format!("/v1/borrowers/{borrower}")).await;
    assert_eq!(one["name"], "Muster GmbH");
    let groups = read("/v1/groups".into()).await;
    assert!(
        listed(&groups, "id").contains(&"gcc-audit".to_owned()),
        "{groups}"
    );
    let group = read("/v1/groups/gcc-audit".into()).await;
    assert_eq!(
        group["memberships"][0]["borrower_id"],
        borrower.as_str(),
        "{group}"
    );
    assert!(group["memberships"][0]["valid_to"].is_null(), "{group}");
    let parties = read(format!("/v1/related-parties?borrower_id={borrower}")).await;
    assert_eq!(parties["items"][0]["staff_id"], "lo-3", "{parties}");
    assert_eq!(parties["items"][0]["relation"], relation, "{parties}");
    // Every limit version with who proposed and who approved it (R8).
    let limits = read("/v1/limits?kind=borrower&status=approved".into()).await;
    let version = limits["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["subject"]["key"] == borrower.as_str())
        .unwrap_or_else(|| panic!("the borrower's limit: {limits}"));
    assert_eq!(
        (&version["proposed_by"], &version["decided_by"]),
        (&json!("rc-1"), &json!("bb-1"))
    );
    // Cases by status, borrower and time.
    let from = before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let cases = read(format!(
        "/v1/cases?status=draft&borrower_id={borrower}&from={from}"
    ))
    .await;
    assert_eq!(listed(&cases, "id"), vec![case_id.clone()], "{cases}");
    let earlier = read(format!("/v1/cases?borrower_id={borrower}&to={from}")).await;
    assert!(listed(&earlier, "id").is_empty(), "{earlier}");
    let approved = read(format!("/v1/cases?status=approved&borrower_id={borrower}")).await;
    assert!(listed(&approved, "id").is_empty(), "{approved}");

    // Every read above is audited (A7) with what it selected, and no
    // personal data read enters the hashed bodies (A6).
    p.store
        .flush_audit(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let events = p
        .call(
            "ia-1",
            "audit",
            Method::GET,
            "/v1/events?action=audit.records_read&actor=ia-1&limit=1000",
            None,
        )
        .await;
    let events = events.ok(200)["items"].as_array().unwrap().clone();
    let resources: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["body"]["data"]["resource"].as_str())
        .collect();
    for resource in [
        "staff",
        "proposals",
        "rule_sets",
        "borrowers",
        "groups",
        "related_parties",
        "limit_versions",
        "cases",
    ] {
        assert!(
            resources.contains(resource),
            "{resource} read audited: {resources:?}"
        );
    }
    assert_eq!(events.len(), 14, "one event per read");
    for event in &events {
        let body = event["body_text"].as_str().unwrap();
        assert!(
            !body.contains(relation) && !body.contains("Muster GmbH"),
            "{body}"
        );
    }

    // Nobody else reads them here (S8), and nothing here writes.
    for (who, path) in [
        ("lo-1", "/v1/staff"),
        ("ua-1", "/v1/cases"),
        ("rc-1", "/v1/related-parties"),
    ] {
        let refused = p.call(who, "audit", Method::GET, path, None).await;
        assert_eq!(
            refused.status.as_u16(),
            403,
            "{who} {path}: {}",
            refused.body
        );
    }
    let write = p
        .call(
            "ia-1",
            "audit",
            Method::POST,
            "/v1/borrowers",
            Some(json!({})),
        )
        .await;
    assert!(write.status.as_u16() == 405, "{}", write.body);
}
both_backends!(
    finding_18_a7_auditors_read_directory_rules_and_credit_files,
    auditor_reads
);

/// Every auditor list is paged as the events are: `after` is the `next` of
/// the previous page, `limit` is 1-1000 and anything else is refused (422).
async fn auditor_paging(p: &TestPlatform) {
    let page =
        |path: String| async move { p.call("ia-1", "audit", Method::GET, &path, None).await };
    // Walk the staff in pages of 5: every person once, in order.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let reply = page(format!("/v1/staff?limit=5{after}")).await;
        let body = reply.ok(200).clone();
        let ids = listed(&body, "id");
        assert!(ids.len() <= 5);
        seen.extend(ids);
        match body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "each person once, by id");
    assert_eq!(seen.len(), 13, "the demo staff: {seen:?}");

    // Three borrowers in pages of two.
    for _ in 0..3 {
        p.call(
            "lo-1",
            "market",
            Method::POST,
            "/v1/borrowers",
            Some(creditops_tests::json!({"name": "Muster GmbH", "country": "DE", "sector": "C"})),
        )
        .await
        .ok(201);
    }
    let first = page("/v1/borrowers?limit=2".into()).await.ok(200).clone();
    assert_eq!(listed(&first, "id").len(), 2);
    let next = first["next"].as_str().expect("a full page has a next");
    let second = page(format!("/v1/borrowers?limit=2&after={next}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(listed(&second, "id").len(), 1);
    assert!(second["next"].is_null(), "{second}");

    for list in [
        "/v1/staff",
        "/v1/proposals",
        "/v1/rules",
        "/v1/borrowers",
        "/v1/groups",
        "/v1/related-parties",
        "/v1/limits",
        "/v1/cases",
    ] {
        for limit in ["0", "1001"] {
            let refused = page(format!("{list}?limit={limit}")).await;
            let problem = refused.problem(422);
            assert!(
                problem["detail"].as_str().unwrap().contains("limit"),
                "{list}: {problem}"
            );
        }
        page(format!("{list}?limit=1000")).await.ok(200);
    }
    let bad_cursor = page("/v1/related-parties?after=nonsense".into()).await;
    bad_cursor.problem(422);
    let bad_status = page("/v1/cases?status=lost".into()).await;
    assert!(
        bad_status.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("status")
    );
}
both_backends!(auditor_lists_are_paged_with_a_maximum, auditor_paging);

async fn verify(p: &TestPlatform, path: &str) -> serde_json::Value {
    let reply = p.call("ia-1", "audit", Method::POST, path, None).await;
    reply.ok(200).clone()
}

/// A2: `POST /v1/verify` starts from the last verified, signed head and
/// checks only what was added since; `?full=true` starts from the first
/// event.
async fn verification_is_incremental(p: &TestPlatform) {
    p.draft_case("10000.00").await;
    let first = verify(p, "/v1/verify").await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["mode"], "full", "nothing verified before: {first}");
    assert_eq!(first["from_size"], 0);
    let verified = first["last_seq"].as_u64().unwrap();
    assert_eq!(first["events"].as_u64().unwrap(), verified);

    p.draft_case("20000.00").await;
    let second = verify(p, "/v1/verify").await;
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(second["mode"], "incremental", "{second}");
    assert_eq!(second["from_size"].as_u64().unwrap(), verified);
    let last = second["last_seq"].as_u64().unwrap();
    assert!(
        last > verified + 1,
        "the draft and the first verification were added"
    );
    assert_eq!(second["events"].as_u64().unwrap(), last - verified);

    // Nothing new but the second verification's own event.
    let third = verify(p, "/v1/verify").await;
    assert_eq!(third["from_size"].as_u64().unwrap(), last, "{third}");
    assert_eq!(third["events"], 1, "{third}");

    let full = verify(p, "/v1/verify?full=true").await;
    assert_eq!(full["ok"], true, "{full}");
    assert_eq!(full["mode"], "full");
    assert_eq!(full["events"].as_u64().unwrap(), last + 2);
    let refused = p
        .call("ia-1", "audit", Method::POST, "/v1/verify?full=maybe", None)
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
}

both_backends!(
    a2_verification_starts_from_the_last_verified_head,
    verification_is_incremental
);

/// Runs `statements` on the SQLite file of `p` behind the platform's back.
async fn tamper(p: &TestPlatform, statements: &[&str]) {
    let url = format!(
        "sqlite://{}",
        p.data_dir.path().join("creditops.db").display()
    );
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// A2, A4: a tree node changed behind the application's back makes the
/// proofs through it fail at the auditor's end, the full verification names
/// the first event below it, and a changed node under a verified head makes
/// the incremental verification report the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a2_a_changed_tree_node_is_caught() {
    let p = TestPlatform::start(creditops_tests::Backend::Sqlite)
        .await
        .expect("sqlite");
    for amount in ["10000.00", "20000.00", "30000.00"] {
        p.draft_case(amount).await;
    }
    assert_eq!(verify(&p, "/v1/verify").await["ok"], true);
    tamper(
        &p,
        &[
            "DROP TRIGGER audit_tree_no_update",
            "UPDATE audit_tree SET hash = zeroblob(32) WHERE level = 1 AND idx = 0",
        ],
    )
    .await;

    // The proof of event 3 passes through the node over events 1 and 2.
    let reply = p
        .call("ia-1", "audit", Method::GET, "/v1/events/3/proof", None)
        .await;
    let body = reply.ok(200).clone();
    let path: Vec<[u8; 32]> = body["proof"].as_array().unwrap().iter().map(hash).collect();
    let size = body["tree_size"].as_u64().unwrap();
    assert!(
        verify_inclusion(
            &hash(&body["leaf_hash"]),
            2,
            size,
            &path,
            &hash(&body["root"])
        )
        .is_err(),
        "a proof through a changed node must not verify"
    );

    // A5: an export whose left border is that node would prove the events
    // against a tree that does not hold them: refused, nothing handed out.
    let token = p.token("ia-1", "audit");
    let refused = p
        .send(
            "audit",
            Method::POST,
            "/v1/exports?from_seq=3",
            Some(&token),
            None,
            &[],
        )
        .await;
    let problem = refused.problem(409);
    assert_eq!(problem["rule"], "A2", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Merkle tree does not match its events"),
        "{problem}"
    );
    // The whole log needs no node under the change: its bundle is sound.
    let whole = p
        .send(
            "audit",
            Method::POST,
            "/v1/exports",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(whole.status.as_u16(), 200);

    let full = verify(&p, "/v1/verify?full=true").await;
    assert_eq!(full["ok"], false, "{full}");
    assert_eq!(full["first_bad_seq"], 1, "{full}");
    assert!(
        full["reason"]
            .as_str()
            .unwrap()
            .contains("Merkle tree node at level 1, index 0"),
        "{full}"
    );

    // The largest peak under the verified head: the signed root is gone.
    let verified = verify(&p, "/v1/verify").await;
    assert_eq!(
        verified["ok"], true,
        "the change is below no peak yet: {verified}"
    );
    let size = verified["last_seq"].as_u64().unwrap();
    let level = 63 - size.leading_zeros();
    tamper(
        &p,
        &[&format!(
            "UPDATE audit_tree SET hash = zeroblob(32) WHERE level = {level} AND idx = 0"
        )],
    )
    .await;
    let caught = verify(&p, "/v1/verify").await;
    assert_eq!(caught["ok"], false, "{caught}");
    assert!(
        caught["reason"]
            .as_str()
            .unwrap()
            .contains("no longer has the root"),
        "{caught}"
    );
}
