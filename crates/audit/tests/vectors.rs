//! The published test vectors in `audit/vectors/` (see its README): this test
//! regenerates them deterministically and compares them with the checked-in
//! files, so format changes cannot slip in unnoticed. After an intended change,
//! regenerate with
//!
//! ```text
//! CREDITOPS_REGEN_VECTORS=1 cargo test -p creditops-audit --test vectors
//! ```
//!
//! It also runs every tamper case of `tampered.json` through the Rust
//! verifier, and runs the independent Python verifier (`audit/verify.py`) and,
//! when installed, `openssl` and `sha256sum` over the same files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{TimeZone, Utc};
use creditops_audit::checkpoint::{self, SigningKey, VerifierKey};
use creditops_audit::export::{self, read_bundle_dir};
use creditops_audit::merkle;
use creditops_audit::{
    AuditAction, AuditRecord, BundleEntry, BundleInput, Hash, MerkleTree, Outcome, chain_genesis,
    chain_next, leaf_hash, verify_bundle, verify_bundle_with_keys,
};
use creditops_domain::{BorrowerId, CaseId, RuleId};
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ORIGIN: &str = "creditops.example/audit/test-vectors";
/// Seeds are SHA-256 of these public strings: the keys are TEST-ONLY.
const KEY_1_SEED_INPUT: &str =
    "creditops-audit test vectors v1: TEST-ONLY key 1 (publicly known, never use for a real log)";
const KEY_2_SEED_INPUT: &str =
    "creditops-audit test vectors v1: TEST-ONLY key 2 (publicly known, never use for a real log)";
const LOG_SIZE: u64 = 12;
const PREVIOUS_SIZE: u64 = 7;
const BUNDLE_FIRST: u64 = 4;
const BUNDLE_LAST: u64 = 9;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vectors_dir() -> PathBuf {
    repo_root().join("audit/vectors")
}

fn test_key(seed_input: &str) -> SigningKey {
    // PKCS#8 v1 for Ed25519 is a fixed DER prefix followed by the 32-byte seed.
    let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
    pkcs8.extend_from_slice(digest(&SHA256, seed_input.as_bytes()).as_ref());
    SigningKey::from_pkcs8(ORIGIN, &pkcs8).unwrap()
}

/// Twelve events of one credit case, pseudonymous ids only.
fn event_bodies() -> Vec<Vec<u8>> {
    let ok = Outcome::Ok;
    let denied = Outcome::Denied;
    let case: CaseId = "01942eff-0000-7000-8000-0000000c0001".parse().unwrap();
    let borrower: BorrowerId = "01942eff-0000-7000-8000-0000000b0001".parse().unwrap();
    // (service, action, outcome, actor, rule, data)
    type Event = (
        &'static str,
        AuditAction,
        Outcome,
        Option<&'static str>,
        Option<RuleId>,
        Value,
    );
    #[rustfmt::skip]
    let events: Vec<Event> = vec![
        ("admin", AuditAction::ChangeApproved, ok, Some("staff-0001"), None,
            json!({"role": "loan_officer", "staff_id": "staff-0101", "valid_from": "2026-01-01"})),
        ("market", AuditAction::CaseCreated, ok, Some("staff-0101"), None,
            json!({"amount": "250000.00", "currency": "EUR", "product": "term_loan", "term_months": 60})),
        ("market", AuditAction::CaseFirstVote, ok, Some("staff-0101"), None,
            json!({"decision": "approve", "file_version": 1, "side": "market",
                   "content_hash": "3f1c6a1d2b9e4c7a8d0e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708"})),
        ("backoffice", AuditAction::RequestRefused, denied, Some("staff-0101"), Some(RuleId::S6),
            json!({"reason": "voter originated the case"})),
        ("backoffice", AuditAction::CaseSecondVote, ok, Some("staff-0202"), None,
            json!({"decision": "approve", "file_version": 1, "side": "backoffice",
                   "content_hash": "3f1c6a1d2b9e4c7a8d0e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708"})),
        ("risk", AuditAction::RiskReserved, ok, Some("staff-0303"), None,
            json!({"limit": "borrower", "headroom": "750000.00", "currency": "EUR", "verdict": "pass"})),
        ("backoffice", AuditAction::CaseReevaluated, ok, Some("staff-0202"), None,
            json!({"decision": "approved", "competence_order_version": 3, "threshold_version": 2})),
        ("market", AuditAction::RequestRefused, denied, Some("staff-0104"), Some(RuleId::S8),
            json!({"operation": "POST /v1/cases/{id}/votes"})),
        ("risk", AuditAction::RiskBreach, ok, Some("staff-0303"), None,
            json!({"limit": "sector", "amount": "1200000.00", "currency": "EUR", "severity": "soft"})),
        ("audit", AuditAction::AuditQuery, ok, Some("staff-0404"), None,
            json!({"filter": {"case_id": case}, "purpose": "Stichprobe Prüfung 2026"})),
        ("audit", AuditAction::AuditExported, ok, Some("staff-0404"), None,
            json!({"first_seq": 4, "last_seq": 9})),
        ("admin", AuditAction::ChangeProposed, ok, Some("staff-0002"), None,
            json!({"parameter": "cooling_off_period", "value": "P6M", "approver": "staff-0003"})),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, (service, action, outcome, actor, rule, data))| {
            let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, i as u32, 0).unwrap();
            let mut record = AuditRecord::new(service, action, outcome, at);
            record.id = format!("01942f00-0000-7000-8000-{:012x}", i + 1)
                .parse()
                .unwrap();
            record.actor = actor.map(str::to_owned);
            record.rule = rule;
            if service != "admin" {
                record.case_id = Some(case);
                record.borrower_id = Some(borrower);
            }
            record.request_id = Some(format!("req-{:04}", i + 1));
            record.data = data;
            record.canonical_body().unwrap()
        })
        .collect()
}

struct Generated {
    files: BTreeMap<String, Vec<u8>>,
    bundle: Vec<(String, Vec<u8>)>,
    keys: Vec<VerifierKey>,
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn generate() -> Generated {
    let key1 = test_key(KEY_1_SEED_INPUT);
    let key2 = test_key(KEY_2_SEED_INPUT);

    let bodies = event_bodies();
    let mut tree = MerkleTree::new();
    let mut previous = chain_genesis(ORIGIN);
    let mut entries = Vec::new();
    let mut events = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let seq = i as u64 + 1;
        let leaf = leaf_hash(body);
        previous = chain_next(&previous, &leaf);
        tree.push(leaf);
        events.push(json!({
            "seq": seq,
            "body": String::from_utf8(body.clone()).unwrap(),
            "body_b64": BASE64.encode(body),
            "leaf": hex::encode(leaf),
            "chain": hex::encode(previous),
        }));
        entries.push(BundleEntry {
            seq,
            body: body.clone(),
            leaf,
            chain: previous,
        });
    }

    let roots: Vec<Value> = (0..=LOG_SIZE)
        .map(|n| json!({"size": n, "root": hex::encode(tree.root_at(n).unwrap())}))
        .collect();
    let inclusion = |t: &MerkleTree, index: u64, size: u64| {
        json!({
            "index": index,
            "size": size,
            "leaf": hex::encode(t.leaf(index).unwrap()),
            "root": hex::encode(t.root_at(size).unwrap()),
            "proof": hexes(&t.inclusion_proof(index, size).unwrap()),
        })
    };
    let consistency = |t: &MerkleTree, old: u64, new: u64| {
        json!({
            "old_size": old,
            "new_size": new,
            "old_root": hex::encode(t.root_at(old).unwrap()),
            "new_root": hex::encode(t.root_at(new).unwrap()),
            "proof": hexes(&t.consistency_proof(old, new).unwrap()),
        })
    };

    // The Certificate Transparency reference tree (RFC 6962 test inputs).
    let ct_inputs: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let ct = MerkleTree::from_leaves(ct_inputs.iter().map(|d| leaf_hash(d)).collect());

    let checkpoint = checkpoint::sign_note(
        &checkpoint::Checkpoint {
            origin: ORIGIN.into(),
            size: LOG_SIZE,
            root: tree.root_at(LOG_SIZE).unwrap(),
        }
        .to_text()
        .unwrap(),
        &[&key2, &key1],
    )
    .unwrap();
    let previous_checkpoint = key1
        .sign_checkpoint(ORIGIN, PREVIOUS_SIZE, &tree.root_at(PREVIOUS_SIZE).unwrap())
        .unwrap();

    let key_json = |label: &str, seed_input: &str, key: &SigningKey| {
        json!({
            "label": label,
            "name": key.name(),
            "seed_input": seed_input,
            "seed_derivation": "Ed25519 seed = SHA-256(UTF-8 bytes of seed_input). TEST ONLY: the seed is public.",
            "public_key_hex": hex::encode(key.public_key()),
            "key_id_hex": hex::encode(key.key_id()),
            "verifier_key": key.verifier_key_string(),
            "public_key_pem": key.verifier_key().public_key_pem(),
        })
    };

    // Compact-range borders (SPEC 9.3) for some ranges of the 12 events,
    // including the example bundle's (4..=9), a full export and the edges.
    let compact_range = |first: u64, last: u64, size: u64| {
        let nodes = |begin: u64, end: u64| {
            merkle::compact_range_nodes(begin, end)
                .into_iter()
                .map(|(start, height)| json!([start, height]))
                .collect::<Vec<_>>()
        };
        json!({
            "first_seq": first,
            "last_seq": last,
            "size": size,
            "left_nodes": nodes(0, first - 1),
            "left": hexes(&tree.compact_range(0, first - 1).unwrap()),
            "right_nodes": nodes(last, size),
            "right": hexes(&tree.compact_range(last, size).unwrap()),
        })
    };

    let vectors = json!({
        "version": 2,
        "description": "creditops audit trail test vectors (audit/SPEC.md version 2). Generated by crates/audit/tests/vectors.rs; checked by that test and by `python3 audit/verify.py --vectors audit/vectors`.",
        "origin": ORIGIN,
        "chain_genesis": hex::encode(chain_genesis(ORIGIN)),
        "events": events,
        "merkle_roots": roots,
        "inclusion_proofs": [
            inclusion(&tree, 0, LOG_SIZE),
            inclusion(&tree, 5, LOG_SIZE),
            inclusion(&tree, 11, LOG_SIZE),
            inclusion(&tree, 4, PREVIOUS_SIZE),
            inclusion(&tree, 0, 1),
        ],
        "consistency_proofs": [
            consistency(&tree, PREVIOUS_SIZE, LOG_SIZE),
            consistency(&tree, 4, LOG_SIZE),
            consistency(&tree, 1, LOG_SIZE),
            consistency(&tree, 3, PREVIOUS_SIZE),
            consistency(&tree, LOG_SIZE, LOG_SIZE),
            consistency(&tree, 0, LOG_SIZE),
        ],
        "compact_ranges": [
            compact_range(BUNDLE_FIRST, BUNDLE_LAST, LOG_SIZE),
            compact_range(1, LOG_SIZE, LOG_SIZE),
            compact_range(1, 1, LOG_SIZE),
            compact_range(LOG_SIZE, LOG_SIZE, LOG_SIZE),
            compact_range(6, 6, LOG_SIZE),
            compact_range(2, 7, PREVIOUS_SIZE),
            compact_range(5, 8, 11),
            compact_range(1, 1, 1),
        ],
        "rfc6962": {
            "source": "Certificate Transparency reference test vectors (RFC 6962 Merkle tree of 8 leaves)",
            "inputs_hex": ct_inputs.iter().map(hex::encode).collect::<Vec<_>>(),
            "roots": (1..=8).map(|n| json!({"size": n, "root": hex::encode(ct.root_at(n).unwrap())})).collect::<Vec<_>>(),
            "inclusion_proofs": [inclusion(&ct, 0, 8), inclusion(&ct, 5, 8), inclusion(&ct, 2, 3)],
            "consistency_proofs": [consistency(&ct, 1, 8), consistency(&ct, 6, 8), consistency(&ct, 2, 5)],
        },
        "keys": [
            key_json("key-1 (rotated out; signed the previous checkpoint)", KEY_1_SEED_INPUT, &key1),
            key_json("key-2 (current)", KEY_2_SEED_INPUT, &key2),
        ],
        "checkpoints": [
            {
                "label": "previous",
                "size": PREVIOUS_SIZE,
                "root": hex::encode(tree.root_at(PREVIOUS_SIZE).unwrap()),
                "note": previous_checkpoint,
                "signed_by": [key1.verifier_key_string()],
            },
            {
                "label": "current (signed by the new and the old key during rotation)",
                "size": LOG_SIZE,
                "root": hex::encode(tree.root_at(LOG_SIZE).unwrap()),
                "note": checkpoint,
                "signed_by": [key2.verifier_key_string(), key1.verifier_key_string()],
            },
        ],
        // RFC 8032 section 7.1, TEST 1 (also checked against ring in the unit tests).
        "ed25519_rfc8032": {
            "seed": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "message_hex": "",
            "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        },
    });

    let first = (BUNDLE_FIRST - 1) as usize;
    let last = BUNDLE_LAST as usize;
    let bundle = export::build_bundle(&BundleInput {
        origin: ORIGIN,
        range: "example export: seq 4 to 9 (events of case 01942eff-0000-7000-8000-0000000c0001, 2026-01-05T09:03Z to 09:08Z)",
        entries: &entries[first..last],
        chain_before: entries[first - 1].chain,
        tree: &tree,
        checkpoint: &checkpoint,
        previous_checkpoint: Some(&previous_checkpoint),
        signing_key: &key2.verifier_key(),
        other_keys: &[key1.verifier_key()],
        created_at: Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap(),
    })
    .unwrap();

    let mut text = serde_json::to_string_pretty(&vectors).unwrap();
    text.push('\n');
    let mut files = BTreeMap::new();
    files.insert("vectors.json".to_owned(), text.into_bytes());
    for (name, bytes) in &bundle {
        files.insert(format!("bundle/{name}"), bytes.clone());
    }
    Generated {
        files,
        bundle,
        keys: vec![key2.verifier_key(), key1.verifier_key()],
    }
}

/// Compares (or, with CREDITOPS_REGEN_VECTORS=1, rewrites) the checked-in
/// vectors once per test process, before any test reads them.
fn synced() -> &'static Generated {
    static VECTORS: OnceLock<Generated> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let generated = generate();
        let dir = vectors_dir();
        let regen = std::env::var("CREDITOPS_REGEN_VECTORS").as_deref() == Ok("1");
        if regen {
            let bundle_dir = dir.join("bundle");
            if bundle_dir.exists() {
                std::fs::remove_dir_all(&bundle_dir).unwrap();
            }
            std::fs::create_dir_all(&bundle_dir).unwrap();
            for (name, bytes) in &generated.files {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
            eprintln!("regenerated {}", dir.display());
        }
        for (name, bytes) in &generated.files {
            let stored = std::fs::read(dir.join(name)).unwrap_or_else(|e| {
                panic!("audit/vectors/{name}: {e}; run with CREDITOPS_REGEN_VECTORS=1")
            });
            assert!(
                stored == *bytes,
                "audit/vectors/{name} differs from what the code produces; if the change is \
                 intended, run with CREDITOPS_REGEN_VECTORS=1 and review the diff"
            );
        }
        let on_disk: Vec<String> = read_bundle_dir(&dir.join("bundle"))
            .unwrap()
            .into_iter()
            .map(|(name, _)| format!("bundle/{name}"))
            .collect();
        let expected: Vec<String> = generated
            .files
            .keys()
            .filter(|n| n.starts_with("bundle/"))
            .cloned()
            .collect();
        assert_eq!(
            on_disk, expected,
            "unexpected files in audit/vectors/bundle"
        );
        generated
    })
}

#[test]
fn checked_in_vectors_are_what_the_code_produces() {
    let generated = synced();
    let report = verify_bundle(&generated.bundle).unwrap();
    assert_eq!(
        (report.first_seq, report.last_seq),
        (BUNDLE_FIRST, BUNDLE_LAST)
    );
    assert_eq!(report.size, LOG_SIZE);
    assert_eq!(report.previous_size, Some(PREVIOUS_SIZE));
    assert_eq!(report.signed_by.len(), 2);
    let trusted = verify_bundle_with_keys(&generated.bundle, &generated.keys).unwrap();
    assert!(!trusted.keys_from_bundle);
    // Only the current key is trusted: the checkpoint still verifies (its
    // signature is there) but the previous checkpoint, signed by the old key
    // only, does not.
    let err = verify_bundle_with_keys(&generated.bundle, &generated.keys[..1]).unwrap_err();
    assert_eq!(err.check, creditops_audit::BundleCheck::Consistency);
    // A stranger's key: nothing verifies.
    let stranger = test_key("stranger").verifier_key();
    let err = verify_bundle_with_keys(&generated.bundle, &[stranger]).unwrap_err();
    assert_eq!(err.check, creditops_audit::BundleCheck::Signature);
}

// ---------------------------------------------------------------------------
// Tamper cases (audit/vectors/tampered.json), applied the same way verify.py does.

/// One `entries.jsonl` line, split by its fixed shape (SPEC 9.2).
#[derive(Clone)]
struct Line {
    seq: u64,
    leaf: String,
    chain: String,
    body: Vec<u8>,
}

fn entries_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<Line> {
    files[export::ENTRIES]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = l.strip_prefix(br#"{"seq":"#).unwrap();
            let comma = l.iter().position(|b| *b == b',').unwrap();
            let seq = std::str::from_utf8(&l[..comma]).unwrap().parse().unwrap();
            let l = l[comma..].strip_prefix(br#","leaf":""#).unwrap();
            let leaf = String::from_utf8(l[..64].to_vec()).unwrap();
            let l = l[64..].strip_prefix(br#"","chain":""#).unwrap();
            let chain = String::from_utf8(l[..64].to_vec()).unwrap();
            let body = l[64..]
                .strip_prefix(br#"","body":"#)
                .unwrap()
                .strip_suffix(b"}")
                .unwrap()
                .to_vec();
            Line {
                seq,
                leaf,
                chain,
                body,
            }
        })
        .collect()
}

fn set_entries(files: &mut BTreeMap<String, Vec<u8>>, lines: &[Line]) {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(
            format!(
                r#"{{"seq":{},"leaf":"{}","chain":"{}","body":"#,
                l.seq, l.leaf, l.chain
            )
            .as_bytes(),
        );
        out.extend_from_slice(&l.body);
        out.extend_from_slice(b"}\n");
    }
    files.insert(export::ENTRIES.to_owned(), out);
}

/// Recomputes leaves and chain values from `from_seq` on, as a forger who
/// rewrites history would.
fn rechain(files: &BTreeMap<String, Vec<u8>>, lines: &mut [Line], from_seq: u64) {
    let manifest: Value = serde_json::from_slice(&files[export::MANIFEST]).unwrap();
    let mut previous: Hash = hex::decode(manifest["chain_before"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    for l in lines {
        if l.seq >= from_seq {
            let leaf = leaf_hash(&l.body);
            l.leaf = hex::encode(leaf);
            l.chain = hex::encode(chain_next(&previous, &leaf));
        }
        previous = hex::decode(&l.chain).unwrap().try_into().unwrap();
    }
}

fn flip_hex(s: &str) -> String {
    let first = if s.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &s[1..])
}

fn edit_borders(f: &mut BTreeMap<String, Vec<u8>>, edit: impl FnOnce(&mut Value)) {
    let mut borders: Value = serde_json::from_slice(&f[export::BORDERS]).unwrap();
    edit(&mut borders);
    f.insert(export::BORDERS.into(), format!("{borders}\n").into_bytes());
}

fn apply_tamper(files: &[(String, Vec<u8>)], case: &Value) -> Vec<(String, Vec<u8>)> {
    let mut f: BTreeMap<String, Vec<u8>> = files.iter().cloned().collect();
    let seq = case["seq"].as_u64();
    let index = case["index"].as_u64().map(|i| i as usize);
    let mut lines = entries_of(&f);
    let position = |lines: &[Line]| lines.iter().position(|l| Some(l.seq) == seq).unwrap();
    match case["op"].as_str().unwrap() {
        "flip_body_byte" => {
            let i = position(&lines);
            lines[i].body[case["offset"].as_u64().unwrap() as usize] ^= 0x01;
            set_entries(&mut f, &lines);
        }
        "rewrite_entry" => {
            let i = position(&lines);
            lines[i].body = case["body"].as_str().unwrap().as_bytes().to_vec();
            rechain(&f, &mut lines, seq.unwrap());
            set_entries(&mut f, &lines);
        }
        "swap_bodies" => {
            let i = position(&lines);
            let body = std::mem::take(&mut lines[i].body);
            lines[i].body = std::mem::replace(&mut lines[i + 1].body, body);
            rechain(&f, &mut lines, seq.unwrap());
            set_entries(&mut f, &lines);
        }
        "edit_entry_line" => {
            let i = position(&lines);
            set_entries(&mut f, &lines);
            let text = String::from_utf8(f[export::ENTRIES].clone()).unwrap();
            let mut edited: Vec<String> = text.split('\n').map(str::to_owned).collect();
            edited[i] = edited[i].replacen(
                case["find"].as_str().unwrap(),
                case["replace"].as_str().unwrap(),
                1,
            );
            f.insert(export::ENTRIES.into(), edited.join("\n").into_bytes());
        }
        "delete_entry" => {
            lines.retain(|l| Some(l.seq) != seq);
            set_entries(&mut f, &lines);
        }
        "swap_entries" => {
            let i = position(&lines);
            lines.swap(i, i + 1);
            set_entries(&mut f, &lines);
        }
        "truncate" => {
            let count = case["count"].as_u64().unwrap() as usize;
            lines.truncate(lines.len() - count);
            set_entries(&mut f, &lines);
        }
        "flip_border_hash" => {
            let side = case["side"].as_str().unwrap();
            edit_borders(&mut f, |b| {
                let i = index.unwrap();
                b[side][i] = json!(flip_hex(b[side][i].as_str().unwrap()));
            });
        }
        "drop_border_hash" => {
            let side = case["side"].as_str().unwrap();
            edit_borders(&mut f, |b| {
                b[side].as_array_mut().unwrap().remove(index.unwrap());
            });
        }
        "delete_file" => {
            f.remove(case["file"].as_str().unwrap());
        }
        "flip_consistency_hash" => {
            let mut c: Value = serde_json::from_slice(&f[export::CONSISTENCY]).unwrap();
            let i = index.unwrap();
            c["proof"][i] = json!(flip_hex(c["proof"][i].as_str().unwrap()));
            f.insert(export::CONSISTENCY.into(), format!("{c}\n").into_bytes());
        }
        "set_manifest" => {
            let mut m: Value = serde_json::from_slice(&f[export::MANIFEST]).unwrap();
            m[case["field"].as_str().unwrap()] = case["value"].clone();
            f.insert(
                export::MANIFEST.into(),
                format!("{}\n", serde_json::to_string_pretty(&m).unwrap()).into_bytes(),
            );
        }
        "flip_note_signature" => {
            let name = case["file"].as_str().unwrap();
            let note = String::from_utf8(f[name].clone()).unwrap();
            let (head, last) = note.trim_end_matches('\n').rsplit_once('\n').unwrap();
            let (prefix, b64) = last.rsplit_once(' ').unwrap();
            let mut raw = BASE64.decode(b64).unwrap();
            *raw.last_mut().unwrap() ^= 0x01;
            let note = format!("{head}\n{prefix} {}\n", BASE64.encode(raw));
            f.insert(name.into(), note.into_bytes());
        }
        "flip_file_byte" => {
            let name = case["file"].as_str().unwrap();
            let offset = case["offset"].as_u64().unwrap() as usize;
            f.get_mut(name).unwrap()[offset] ^= 0x01;
        }
        other => panic!("unknown tamper op {other}"),
    }
    if case["resum"].as_bool() != Some(false) {
        let sums: String = f
            .iter()
            .filter(|(n, _)| n.as_str() != export::SHA256SUMS)
            .map(|(n, b)| format!("{}  {n}\n", hex::encode(digest(&SHA256, b))))
            .collect();
        f.insert(export::SHA256SUMS.into(), sums.into_bytes());
    }
    f.into_iter().collect()
}

fn tamper_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(vectors_dir().join("tampered.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn every_tamper_case_is_detected_at_the_expected_position() {
    let generated = synced();
    let cases = tamper_cases();
    assert!(cases.len() >= 10);
    for case in &cases {
        let tampered = apply_tamper(&generated.bundle, case);
        let err = verify_bundle(&tampered)
            .err()
            .unwrap_or_else(|| panic!("tamper case {} not detected", case["name"]));
        let expect = &case["expect"];
        assert_eq!(
            (err.check.as_str(), err.seq),
            (expect["check"].as_str().unwrap(), expect["seq"].as_u64()),
            "tamper case {}: {err}",
            case["name"]
        );
    }
}

// ---------------------------------------------------------------------------
// Independent tools over the same files.

fn tool_available(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok()
}

fn run(program: &str, args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// `verify.py`'s verdict on every bundle directory under `cases` (named
/// 0, 1, ...), one line each: "<case> <check> <seq>" or "<case> ok".
fn python_verdicts(cases: &Path) -> String {
    // `-B`: importing verify.py must not leave __pycache__ in the repository.
    let script = r#"
import os, sys
sys.path.insert(0, sys.argv[1])
import verify
root = sys.argv[2]
for case in sorted(os.listdir(root), key=int):
    files = verify.read_bundle_dir(os.path.join(root, case))
    try:
        verify.verify_bundle(files)
        print(case, "ok")
    except verify.Failure as f:
        print(case, f.check, "None" if f.seq is None else "Some(%d)" % f.seq)
"#;
    let audit_dir = repo_root().join("audit").to_string_lossy().into_owned();
    let cases_dir = cases.to_string_lossy().into_owned();
    let (code, out, err) = run(
        "python3",
        &["-B", "-c", script, &audit_dir, &cases_dir],
        cases,
    );
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn python_verifier_agrees() {
    let generated = synced();
    if !tool_available("python3", "--version") {
        eprintln!("NOTE: python3 not found; skipping the audit/verify.py cross-check");
        return;
    }
    let root = repo_root();

    let (code, out, err) = run(
        "python3",
        &["audit/verify.py", "--vectors", "audit/vectors"],
        &root,
    );
    assert_eq!(code, 0, "verify.py --vectors failed:\n{out}\n{err}");
    assert!(out.starts_with("OK vectors:"), "{out}");

    // Without a trusted key the bundle is intact but unauthenticated (4).
    let (code, out, err) = run(
        "python3",
        &["audit/verify.py", "audit/vectors/bundle"],
        &root,
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        out.starts_with("UNAUTHENTICATED origin=creditops.example/audit/test-vectors seq=4..9"),
        "{out}"
    );
    let (code, out, err) = run(
        "python3",
        &[
            "audit/verify.py",
            "audit/vectors/bundle",
            "--trust-bundle-keys",
        ],
        &root,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.starts_with("OK origin=creditops.example/audit/test-vectors seq=4..9"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "one summary line: {out}");

    let keys: Vec<String> = generated.keys.iter().map(ToString::to_string).collect();
    let (code, out, err) = run(
        "python3",
        &[
            "audit/verify.py",
            "audit/vectors/bundle",
            "--key",
            &keys[0],
            "--key",
            &keys[1],
        ],
        &root,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let stranger = test_key("stranger").verifier_key_string();
    let (code, out, _) = run(
        "python3",
        &[
            "audit/verify.py",
            "audit/vectors/bundle",
            "--key",
            &stranger,
        ],
        &root,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL check=signature"), "{out}");

    // A tampered copy on disk: one byte of the body of seq 6 flipped.
    let tmp = tempfile::tempdir().unwrap();
    let case = json!({"op": "flip_body_byte", "seq": 6, "offset": 10, "resum": false});
    let tampered_dir = tmp.path().join("tampered");
    write_dir(&tampered_dir, &apply_tamper(&generated.bundle, &case));
    let dir_arg = tampered_dir.to_string_lossy().into_owned();
    let (code, out, err) = run("python3", &["audit/verify.py", &dir_arg], &root);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.starts_with("FAIL check=leaf seq=6:"), "{out}");
    let rust = verify_bundle(&read_bundle_dir(&tampered_dir).unwrap()).unwrap_err();
    assert_eq!((rust.check.as_str(), rust.seq), ("leaf", Some(6)));

    // Usage errors exit with 2.
    let (code, _, _) = run("python3", &["audit/verify.py"], &root);
    assert_eq!(code, 2);
    let missing = tmp.path().join("missing").to_string_lossy().into_owned();
    let (code, _, _) = run("python3", &["audit/verify.py", &missing], &root);
    assert_eq!(code, 2);
}

#[test]
fn standard_tools_check_the_bundle() {
    synced();
    let bundle = vectors_dir().join("bundle");
    if tool_available("sha256sum", "--version") {
        let (code, out, err) = run("sha256sum", &["-c", "--strict", "SHA256SUMS"], &bundle);
        assert_eq!(code, 0, "{out}\n{err}");
    } else {
        eprintln!("NOTE: sha256sum not found; skipping");
    }
    if tool_available("openssl", "version") {
        let args = [
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "public-key.pem",
            "-rawin",
            "-in",
            "checkpoint-body.txt",
            "-sigfile",
            "checkpoint.sig",
        ];
        let (code, out, err) = run("openssl", &args, &bundle);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("Signature Verified Successfully"), "{out}");
        // A changed body makes openssl refuse too.
        let tmp = tempfile::tempdir().unwrap();
        let mut files = read_bundle_dir(&bundle).unwrap();
        for (name, bytes) in &mut files {
            if name == export::CHECKPOINT_BODY {
                bytes[0] ^= 1;
            }
        }
        write_dir(tmp.path(), &files);
        let (code, _, _) = run("openssl", &args, tmp.path());
        assert_ne!(code, 0);
    } else {
        eprintln!("NOTE: openssl not found; skipping");
    }
}

/// Differential test: random single-byte damage anywhere in the example
/// bundle; the Rust verifier and `verify.py` must agree on the verdict (check
/// name and first bad seq), since both implement SPEC section 9.5.
#[test]
fn python_and_rust_agree_on_random_damage() {
    let generated = synced();
    if !tool_available("python3", "--version") {
        eprintln!("NOTE: python3 not found; skipping the differential test");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A fixed xorshift generator: the same cases on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut expected = Vec::new();
    for case in 0..200 {
        let mut files = generated.bundle.clone();
        let file = (next() % files.len() as u64) as usize;
        let len = files[file].1.len() as u64;
        let offset = (next() % len) as usize;
        let bit = 1u8 << (next() % 8);
        files[file].1[offset] ^= bit;
        let dir = tmp.path().join(case.to_string());
        write_dir(&dir, &files);
        let verdict = match verify_bundle(&read_bundle_dir(&dir).unwrap()) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{} {:?}", e.check, e.seq),
        };
        expected.push(format!("{case} {} {verdict}", files[file].0));
    }
    let out = python_verdicts(tmp.path());
    let python: Vec<&str> = out.lines().collect();
    assert_eq!(python.len(), expected.len(), "{out}");
    let mut detected = 0;
    for (rust, py) in expected.iter().zip(python) {
        // rust: "<case> <file> <verdict>", python: "<case> <verdict>"
        let (case, rest) = rust.split_once(' ').unwrap();
        let (file, verdict) = rest.split_once(' ').unwrap();
        assert_eq!(
            format!("{case} {verdict}"),
            py,
            "damage in {file} judged differently"
        );
        // Any bit flip in a format file is caught by some check.
        assert_ne!(verdict, "ok", "damage in {file} (case {case}) not detected");
        detected += 1;
    }
    assert_eq!(detected, 200);
}

/// Differential test of the `body` check and the line shape: bodies at and
/// around the edges of RFC 8259 (and of the limits SPEC 9.5 adds), each put
/// into seq 6 with leaf and chain recomputed, and entry lines edited in
/// place. Rust and `verify.py` must agree on every verdict, and the bodies'
/// verdicts are the expected ones.
#[test]
fn python_and_rust_agree_on_bodies_and_line_shapes() {
    let generated = synced();
    if !tool_available("python3", "--version") {
        eprintln!("NOTE: python3 not found; skipping the differential test");
        return;
    }
    let nested = |depth: usize| {
        format!(
            "{{\"a\":{}{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
        .into_bytes()
    };
    let mut bodies: Vec<(Vec<u8>, bool)> = [
        (r#"{}"#, true),
        (" {}\t\r", true),
        (r#"{"a":[1,-0.5e+3,true,false,null,"x",{},[]]}"#, true),
        (r#"{"a":1,"a":2}"#, true),
        (
            r#"{"s":"\ud83d\ude00 \u00e9 \" \\ \/ \b \f \n \r \t \u0000"}"#,
            true,
        ),
        (r#"{"n":1e999,"m":-0,"k":1E-400}"#, true),
        ("{\"é\":\"😀\u{7f}\"}", true),
        (r#"[]"#, false),
        (r#"1"#, false),
        (r#""s""#, false),
        (r#""#, false),
        (r#"{"#, false),
        (r#"{}}"#, false),
        (r#"{} {}"#, false),
        (r#"{"a":1,}"#, false),
        (r#"{"a":01}"#, false),
        (r#"{"a":1.}"#, false),
        (r#"{"a":.5}"#, false),
        (r#"{"a":+1}"#, false),
        (r#"{"a":-}"#, false),
        (r#"{"a":1e}"#, false),
        (r#"{"a":NaN}"#, false),
        (r#"{"a":Infinity}"#, false),
        (r#"{"a":-Infinity}"#, false),
        (r#"{"a":tru}"#, false),
        (r#"{"a":True}"#, false),
        (r#"{'a':1}"#, false),
        (r#"{a:1}"#, false),
        (r#"{"a":"\x"}"#, false),
        (r#"{"a":"\u12G4"}"#, false),
        (r#"{"a":"\ud800"}"#, false),
        (r#"{"a":"\udc00"}"#, false),
        (r#"{"\ud800":1}"#, false),
        (r#"{"a":"\ud800\u0041"}"#, false),
        (r#"{"a":"\ud800\ud800\udc00"}"#, false),
        ("{\"a\":\"tab\there\"}", false),
        ("{\"a\":\"\u{1}\"}", false),
        ("{\"a\":1}\u{b}", false),
        ("\u{feff}{}", false),
    ]
    .into_iter()
    .map(|(b, ok)| (b.as_bytes().to_vec(), ok))
    .collect();
    bodies.push((b"{\"a\":\"\xff\"}".to_vec(), false));
    bodies.push((b"{\"a\":\"\xed\xa0\x80\"}".to_vec(), false));
    bodies.push((b"{\"a\":\"\xc0\xaf\"}".to_vec(), false));
    bodies.push((format!("{{\"n\":{}}}", "7".repeat(5000)).into_bytes(), true));
    bodies.push((nested(128), true));
    bodies.push((nested(129), false));
    bodies.push((nested(3000), false));

    let line_edits: [(&str, &str); 9] = [
        ("{\"seq\":6,", "{\"seq\":06,"),
        ("{\"seq\":6,", "{\"seq\": 6,"),
        ("{\"seq\":6,", "{\"seq\":18446744073709551616,"),
        ("{\"seq\":6,", "{ \"seq\":6,"),
        ("\",\"chain\":\"", "\",\"Chain\":\""),
        ("\",\"body\":", "\",\"body\" :"),
        ("\"leaf\":\"", "\"leaf\":\"A"),
        ("\"leaf\":\"", "\"leaf\":\"0"),
        ("\"body\":{", "\"body\":\r{"),
    ];

    let tmp = tempfile::tempdir().unwrap();
    let base: BTreeMap<String, Vec<u8>> = generated.bundle.iter().cloned().collect();
    let mut rust = Vec::new();
    let write_case = |case: usize, files: BTreeMap<String, Vec<u8>>| {
        let mut f = files;
        let sums: String = f
            .iter()
            .filter(|(n, _)| n.as_str() != export::SHA256SUMS)
            .map(|(n, b)| format!("{}  {n}\n", hex::encode(digest(&SHA256, b))))
            .collect();
        f.insert(export::SHA256SUMS.into(), sums.into_bytes());
        let files: Vec<(String, Vec<u8>)> = f.into_iter().collect();
        write_dir(&tmp.path().join(case.to_string()), &files);
        match verify_bundle(&files) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{} {:?}", e.check, e.seq),
        }
    };
    for (case, (body, ok)) in bodies.iter().enumerate() {
        let mut f = base.clone();
        let mut lines = entries_of(&f);
        let i = lines.iter().position(|l| l.seq == 6).unwrap();
        lines[i].body = body.clone();
        rechain(&f, &mut lines, 6);
        set_entries(&mut f, &lines);
        let verdict = write_case(case, f);
        // A valid body still changes the leaf, so the root no longer matches.
        let expected = if *ok { "root None" } else { "body Some(6)" };
        assert_eq!(
            verdict,
            expected,
            "body {:?}",
            String::from_utf8_lossy(body)
        );
        rust.push(format!("{case} {verdict}"));
    }
    for (k, (find, replace)) in line_edits.iter().enumerate() {
        let case = bodies.len() + k;
        let mut f = base.clone();
        let text = String::from_utf8(f[export::ENTRIES].clone()).unwrap();
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        let i = lines
            .iter()
            .position(|l| l.starts_with("{\"seq\":6,"))
            .unwrap();
        lines[i] = lines[i].replacen(find, replace, 1);
        f.insert(export::ENTRIES.into(), lines.join("\n").into_bytes());
        let verdict = write_case(case, f);
        assert_ne!(verdict, "ok", "line edit {find:?} -> {replace:?}");
        rust.push(format!("{case} {verdict}"));
    }
    let out = python_verdicts(tmp.path());
    let python: Vec<&str> = out.lines().collect();
    assert_eq!(python, rust);
}
