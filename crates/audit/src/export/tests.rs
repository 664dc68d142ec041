//! The bundle's round trips and every refusal, at the seq it names.

use super::format::{find_newline, parse_entry_line};
use super::verify::verify;
use super::*;
use crate::checkpoint::SigningKey;
use crate::merkle::MerkleTree;
use crate::{chain_genesis, chain_next, leaf_hash};
use chrono::{TimeZone, Utc};

fn key(seed: u8) -> SigningKey {
    let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
    pkcs8.extend_from_slice(&[seed; 32]);
    SigningKey::from_pkcs8("example.test/log", &pkcs8).unwrap()
}

struct Log {
    entries: Vec<BundleEntry>,
    tree: MerkleTree,
}

fn log(n: u64) -> Log {
    let mut prev = chain_genesis("example.test/log");
    let mut entries = Vec::new();
    let mut tree = MerkleTree::new();
    for seq in 1..=n {
        let body = format!(r#"{{"n":{seq}}}"#).into_bytes();
        let leaf = leaf_hash(&body);
        prev = chain_next(&prev, &leaf);
        tree.push(leaf);
        entries.push(BundleEntry {
            seq,
            body,
            leaf,
            chain: prev,
        });
    }
    Log { entries, tree }
}

fn bundle(
    log: &Log,
    from: usize,
    to: usize,
    size: u64,
    prev: Option<u64>,
) -> Vec<(String, Vec<u8>)> {
    let k = key(1);
    let note = k
        .sign_checkpoint("example.test/log", size, &log.tree.root_at(size).unwrap())
        .unwrap();
    let prev_note = prev.map(|s| {
        k.sign_checkpoint("example.test/log", s, &log.tree.root_at(s).unwrap())
            .unwrap()
    });
    let chain_before = if from == 1 {
        chain_genesis("example.test/log")
    } else {
        log.entries[from - 2].chain
    };
    build_bundle(&BundleInput {
        origin: "example.test/log",
        range: "test",
        entries: &log.entries[from - 1..to],
        chain_before,
        tree: &log.tree,
        checkpoint: &note,
        previous_checkpoint: prev_note.as_deref(),
        signing_key: &k.verifier_key(),
        other_keys: &[],
        created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    })
    .unwrap()
}

#[test]
fn bundles_for_every_range_verify() {
    let l = log(9);
    for size in 1..=9u64 {
        for from in 1..=size as usize {
            for to in from..=size as usize {
                let files = bundle(&l, from, to, size, Some(size / 2));
                let report = verify_bundle(&files).unwrap();
                assert_eq!(
                    (report.first_seq, report.last_seq),
                    (from as u64, to as u64)
                );
                assert_eq!(report.previous_size, Some(size / 2));
                let trusted = verify_bundle_with_keys(&files, &[key(1).verifier_key()]).unwrap();
                assert!(!trusted.keys_from_bundle);
                assert_eq!(
                    verify_bundle_with_keys(&files, &[key(2).verifier_key()])
                        .unwrap_err()
                        .check,
                    BundleCheck::Signature
                );
            }
        }
    }
}

#[test]
fn builder_refuses_inconsistent_input() {
    let l = log(6);
    let k = key(1);
    let note = k
        .sign_checkpoint("example.test/log", 5, &l.tree.root_at(5).unwrap())
        .unwrap();
    let vk = k.verifier_key();
    let base = BundleInput {
        origin: "example.test/log",
        range: "test",
        entries: &l.entries[1..4],
        chain_before: l.entries[0].chain,
        tree: &l.tree,
        checkpoint: &note,
        previous_checkpoint: None,
        signing_key: &vk,
        other_keys: &[],
        created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    };
    assert!(build_bundle(&base).is_ok());
    let e = build_bundle(&BundleInput {
        entries: &l.entries[1..6],
        ..base
    })
    .unwrap_err();
    assert_eq!(e.check, BundleCheck::Input);
    let e = build_bundle(&BundleInput {
        entries: &[],
        ..base
    })
    .unwrap_err();
    assert_eq!(e.check, BundleCheck::Input);
    let e = build_bundle(&BundleInput {
        origin: "other",
        ..base
    })
    .unwrap_err();
    assert_eq!(e.check, BundleCheck::Input);
    let stranger = key(2).verifier_key();
    let e = build_bundle(&BundleInput {
        signing_key: &stranger,
        ..base
    })
    .unwrap_err();
    assert_eq!(e.check, BundleCheck::Input);
    // Wrong chain_before: the final verification names the first entry.
    let e = build_bundle(&BundleInput {
        chain_before: [0; 32],
        ..base
    })
    .unwrap_err();
    assert_eq!((e.check, e.seq), (BundleCheck::Chain, Some(2)));
    // A stored leaf that does not match its body.
    let mut bad = l.entries[1..4].to_vec();
    bad[1].body = br#"{"n":99}"#.to_vec();
    let e = build_bundle(&BundleInput {
        entries: &bad,
        ..base
    })
    .unwrap_err();
    assert_eq!((e.check, e.seq), (BundleCheck::Leaf, Some(3)));
    // A previous checkpoint from a forked log.
    let forked = k.sign_checkpoint("example.test/log", 3, &[9; 32]).unwrap();
    let e = build_bundle(&BundleInput {
        previous_checkpoint: Some(&forked),
        ..base
    })
    .unwrap_err();
    assert!(e.reason.contains("not a prefix"), "{e}");
    // A checkpoint whose root is not the tree's.
    let wrong = k.sign_checkpoint("example.test/log", 5, &[9; 32]).unwrap();
    let e = build_bundle(&BundleInput {
        checkpoint: &wrong,
        ..base
    })
    .unwrap_err();
    assert_eq!(e.check, BundleCheck::Input);
}

fn replace(files: &mut [(String, Vec<u8>)], name: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let entry = files.iter_mut().find(|(n, _)| n == name).unwrap();
    f(&mut entry.1);
}

#[test]
fn structural_damage_is_reported() {
    let l = log(5);
    let good = bundle(&l, 2, 4, 5, None);
    let check = |files: &[(String, Vec<u8>)]| {
        let e = verify_bundle(files).unwrap_err();
        (e.check, e.seq)
    };
    let without = |name: &str| -> Vec<(String, Vec<u8>)> {
        good.iter().filter(|(n, _)| n != name).cloned().collect()
    };
    assert_eq!(check(&without(BORDERS)), (BundleCheck::Files, None));
    assert_eq!(check(&without(MANIFEST)), (BundleCheck::Files, None));
    let mut dup = good.clone();
    dup.push(good[0].clone());
    assert_eq!(check(&dup), (BundleCheck::Files, None));
    let mut extra = good.clone();
    extra.push((".DS_Store".into(), vec![0]));
    assert_eq!(verify_bundle(&extra).unwrap().ignored_files, [".DS_Store"]);
    let mut half = good.clone();
    half.push((CONSISTENCY.into(), b"{}".to_vec()));
    assert_eq!(check(&half), (BundleCheck::Files, None));

    let mut f = good.clone();
    replace(&mut f, MANIFEST, |m| *m = b"{}".to_vec());
    assert_eq!(check(&f), (BundleCheck::Manifest, None));
    let mut f = good.clone();
    replace(&mut f, KEYS, |k| k.clear());
    assert_eq!(check(&f), (BundleCheck::Keys, None));
    let mut f = good.clone();
    replace(&mut f, CHECKPOINT_BODY, |b| b.push(b'x'));
    assert_eq!(check(&f), (BundleCheck::SignatureFiles, None));
    let mut f = good.clone();
    replace(&mut f, CHECKPOINT_SIG, |s| s[0] ^= 1);
    assert_eq!(check(&f), (BundleCheck::SignatureFiles, None));
    let mut f = good.clone();
    replace(&mut f, PUBLIC_KEY, |p| {
        *p = key(3).verifier_key().public_key_pem().into_bytes()
    });
    assert_eq!(check(&f), (BundleCheck::SignatureFiles, None));
    let mut f = good.clone();
    replace(&mut f, ENTRIES, |e| {
        e.pop();
    });
    assert_eq!(check(&f), (BundleCheck::Entry, None));
    let mut f = good.clone();
    replace(&mut f, ENTRIES, |e| e.extend_from_slice(b"{}\n"));
    assert_eq!(check(&f), (BundleCheck::Sequence, Some(5)));
    let mut f = good.clone();
    replace(&mut f, ENTRIES, |e| e.clear());
    assert_eq!(check(&f), (BundleCheck::Sequence, Some(2)));
    let mut f = good.clone();
    replace(&mut f, BORDERS, |b| {
        *b = br#"{"left":[],"right":[]}"#.to_vec()
    });
    assert_eq!(check(&f), (BundleCheck::Borders, None));
    let mut f = good.clone();
    replace(&mut f, BORDERS, |b| b.insert(1, b' '));
    assert!(verify_bundle(&f).is_err_and(|e| e.check == BundleCheck::Checksum));
    let mut f = good.clone();
    replace(&mut f, BORDERS, |b| *b = b"[]".to_vec());
    assert_eq!(check(&f), (BundleCheck::Borders, None));
    let mut f = good.clone();
    replace(&mut f, SHA256SUMS, |s| s.extend_from_slice(b"garbage\n"));
    assert_eq!(check(&f), (BundleCheck::Checksum, None));
    let mut f = good.clone();
    replace(&mut f, SHA256SUMS, |s| {
        let text = String::from_utf8(s.clone()).unwrap();
        *s = text
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes();
    });
    assert_eq!(check(&f), (BundleCheck::Checksum, None));
    // Binary-mode lines (" *name") are accepted like sha256sum does.
    let mut f = good.clone();
    replace(&mut f, SHA256SUMS, |s| {
        *s = String::from_utf8(s.clone())
            .unwrap()
            .replace("  ", " *")
            .into_bytes();
    });
    assert!(verify_bundle(&f).is_ok());
}

#[test]
fn entry_lines_have_one_exact_shape() {
    let leaf = "ab".repeat(32);
    let chain = "cd".repeat(32);
    let line = |seq: &str, body: &str| {
        format!(r#"{{"seq":{seq},"leaf":"{leaf}","chain":"{chain}","body":{body}}}"#)
    };
    let ok = line("42", r#"{"a":"}"}"#);
    let parsed = parse_entry_line(ok.as_bytes()).unwrap();
    assert_eq!(parsed.seq, 42);
    assert_eq!(parsed.leaf, [0xab; 32]);
    assert_eq!(parsed.chain, [0xcd; 32]);
    assert_eq!(parsed.body, br#"{"a":"}"}"#);
    // The body is whatever lies between the prefix and the final brace.
    assert_eq!(
        parse_entry_line(line("0", "").as_bytes()).unwrap().body,
        b""
    );
    assert_eq!(
        parse_entry_line(line("18446744073709551615", "x").as_bytes())
            .unwrap()
            .seq,
        u64::MAX
    );
    for bad in [
        line("01", "{}"),
        line("-1", "{}"),
        line("18446744073709551616", "{}"),
        line("", "{}"),
        line("1", "{}") + "\r",
        line("1", "{}") + " ",
        format!(" {}", line("1", "{}")),
        ok.replace(r#""seq":42"#, r#""seq": 42"#),
        ok.replace(r#""seq":42,"#, r#""seq":42,"seq":42,"#),
        ok.replace(r#","body":"#, r#","x":1,"body":"#),
        ok.replace(r#""chain":"#, r#""CHAIN":"#),
        ok.replace(&leaf, &leaf.to_uppercase()),
        ok.replace(&chain, &chain[..62]),
        ok.replace(&format!(r#","chain":"{chain}""#), ""),
        format!(r#"{{"seq":42,"chain":"{chain}","leaf":"{leaf}","body":{{}}}}"#),
        r#"{"seq":42}"#.to_owned(),
        String::new(),
    ] {
        assert!(parse_entry_line(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn newline_search_matches_a_plain_scan() {
    for len in 0..40 {
        for at in 0..=len {
            let mut bytes = vec![b'x'; len];
            bytes.extend_from_slice(b"\n\n");
            bytes[at] = b'\n';
            assert_eq!(find_newline(&bytes), Some(at));
            // Bytes next to LF in value must not be mistaken for it.
            let other: Vec<u8> = (0..len as u8).map(|i| i ^ 0x0b | 0x80).collect();
            assert_eq!(find_newline(&other), None);
        }
    }
}

#[test]
fn version_1_and_unknown_versions_are_refused() {
    let l = log(4);
    let good = bundle(&l, 1, 4, 4, None);
    for (version, words) in [(1, "version 1 bundle"), (3, "unsupported")] {
        let mut f = good.clone();
        replace(&mut f, MANIFEST, |m| {
            let text = String::from_utf8(m.clone()).unwrap();
            *m = text
                .replace("\"version\": 2", &format!("\"version\": {version}"))
                .into_bytes();
        });
        let e = verify_bundle(&f).unwrap_err();
        assert_eq!((e.check, e.seq), (BundleCheck::Manifest, None));
        assert!(e.reason.contains(words), "{e}");
    }
    // A whole version 1 layout: still the manifest that answers, not the
    // missing borders.json.
    let mut f: Vec<(String, Vec<u8>)> =
        good.iter().filter(|(n, _)| n != BORDERS).cloned().collect();
    f.push(("proofs.jsonl".into(), b"{}\n".to_vec()));
    replace(&mut f, MANIFEST, |m| {
        let text = String::from_utf8(m.clone()).unwrap();
        *m = text
            .replace("\"version\": 2", "\"version\": 1")
            .into_bytes();
    });
    let e = verify_bundle(&f).unwrap_err();
    assert!(e.reason.contains("version 1 bundle"), "{e}");
    // The whole manifest check comes before the other files are required.
    replace(&mut f, MANIFEST, |m| {
        let text = String::from_utf8(m.clone()).unwrap();
        *m = text
            .replace("\"version\": 1", "\"version\": 2")
            .replace("\"first_seq\": 1", "\"first_seq\": 0")
            .into_bytes();
    });
    let e = verify_bundle(&f).unwrap_err();
    assert_eq!((e.check, e.seq), (BundleCheck::Manifest, None), "{e}");
    assert!(e.reason.contains("range"), "{e}");
}

#[test]
fn borders_and_entries_bind_to_the_signed_root() {
    let l = log(13);
    // seq 6..=9 of 12: the left border covers seq 1..=5 (subtrees of 4
    // and 1 leaves), the right one 10..=12 (1 and 2 leaves).
    let good = bundle(&l, 6, 9, 12, None);
    let borders = |files: &[(String, Vec<u8>)]| -> serde_json::Value {
        let bytes = &files.iter().find(|(n, _)| n == BORDERS).unwrap().1;
        serde_json::from_slice(bytes).unwrap()
    };
    let b = borders(&good);
    assert_eq!(b["left"].as_array().unwrap().len(), 2);
    assert_eq!(b["right"].as_array().unwrap().len(), 2);
    let check = |f: &[(String, Vec<u8>)]| {
        let e = verify_bundle(f).unwrap_err();
        (e.check, e.seq)
    };
    let with_borders = |value: serde_json::Value| {
        let mut f = good.clone();
        replace(&mut f, BORDERS, |b| *b = format!("{value}\n").into_bytes());
        f
    };
    for side in ["left", "right"] {
        for i in 0..2 {
            let mut v = b.clone();
            let h = v[side][i].as_str().unwrap().to_owned();
            let flipped = format!("{}{}", if h.starts_with('0') { '1' } else { '0' }, &h[1..]);
            v[side][i] = serde_json::json!(flipped);
            assert_eq!(check(&with_borders(v)), (BundleCheck::Root, None));
        }
        let mut v = b.clone();
        v[side].as_array_mut().unwrap().pop();
        assert_eq!(check(&with_borders(v)), (BundleCheck::Borders, None));
        let mut v = b.clone();
        v[side]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!("00".repeat(32)));
        assert_eq!(check(&with_borders(v)), (BundleCheck::Borders, None));
        let mut v = b.clone();
        v[side][0] = serde_json::json!(v[side][0].as_str().unwrap().to_uppercase());
        assert_eq!(check(&with_borders(v)), (BundleCheck::Borders, None));
    }
    // Left and right swapped: same counts here, wrong root.
    let swapped = serde_json::json!({"left": b["right"], "right": b["left"]});
    assert_eq!(check(&with_borders(swapped)), (BundleCheck::Root, None));
    let extra = serde_json::json!({"left": b["left"], "right": b["right"], "x": []});
    assert_eq!(check(&with_borders(extra)), (BundleCheck::Borders, None));
    let missing = serde_json::json!({"left": b["left"]});
    assert_eq!(check(&with_borders(missing)), (BundleCheck::Borders, None));

    // A full export has empty borders.
    let full = bundle(&l, 1, 13, 13, None);
    assert_eq!(borders(&full), serde_json::json!({"left": [], "right": []}));
    // Entries at the right border only (last_seq = size): no right hashes.
    let tail = bundle(&l, 13, 13, 13, None);
    assert_eq!(borders(&tail)["right"], serde_json::json!([]));
    assert_eq!(borders(&tail)["left"].as_array().unwrap().len(), 2);
}

#[test]
fn entries_damage_is_named_at_its_seq() {
    let l = log(8);
    let good = bundle(&l, 3, 7, 8, None);
    let check = |f: &[(String, Vec<u8>)]| {
        let e = verify_bundle(f).unwrap_err();
        (e.check, e.seq)
    };
    let edit = |f: &dyn Fn(Vec<&str>) -> Vec<String>| {
        let mut files = good.clone();
        replace(&mut files, ENTRIES, |e| {
            let text = String::from_utf8(e.clone()).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            *e = f(lines)
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes();
        });
        files
    };
    let owned = |lines: Vec<&str>| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    // Truncated at the tail, swapped, deleted, duplicated.
    assert_eq!(
        check(&edit(&|l| owned(l[..3].to_vec()))),
        (BundleCheck::Sequence, Some(6))
    );
    assert_eq!(
        check(&edit(&|mut l| {
            l.swap(1, 2);
            owned(l)
        })),
        (BundleCheck::Sequence, Some(4))
    );
    assert_eq!(
        check(&edit(&|mut l| {
            l.remove(2);
            owned(l)
        })),
        (BundleCheck::Sequence, Some(5))
    );
    assert_eq!(
        check(&edit(&|mut l| {
            l.insert(2, l[1]);
            owned(l)
        })),
        (BundleCheck::Sequence, Some(4))
    );
    // A modified body: the leaf no longer matches.
    assert_eq!(
        check(&edit(&|l| {
            let mut l = owned(l);
            l[2] = l[2].replace(r#"{"n":5}"#, r#"{"n":6}"#);
            l
        })),
        (BundleCheck::Leaf, Some(5))
    );
    // Another field in a line.
    assert_eq!(
        check(&edit(&|l| {
            let mut l = owned(l);
            l[1] = l[1].replace(r#","body":"#, r#","x":0,"body":"#);
            l
        })),
        (BundleCheck::Entry, Some(4))
    );
    // A body that is not a JSON object, with leaf and chain recomputed:
    // the body check names it, before the tree does.
    let mut prev = l.entries[1].chain;
    let lines: Vec<String> = (3..=7u64)
        .map(|seq| {
            let body: Vec<u8> = if seq == 4 {
                b"[4]".to_vec()
            } else {
                l.entries[seq as usize - 1].body.clone()
            };
            let leaf = leaf_hash(&body);
            prev = chain_next(&prev, &leaf);
            format!(
                r#"{{"seq":{seq},"leaf":"{}","chain":"{}","body":{}}}"#,
                hex::encode(leaf),
                hex::encode(prev),
                String::from_utf8(body).unwrap()
            )
        })
        .collect();
    assert_eq!(
        check(&edit(&|_| lines.clone())),
        (BundleCheck::Body, Some(4))
    );
}

#[test]
fn builder_refuses_bodies_with_a_line_feed() {
    let mut l = log(3);
    let body = b"{\"n\":\n2}".to_vec();
    let leaf = leaf_hash(&body);
    l.entries[1].body = body;
    l.entries[1].leaf = leaf;
    l.entries[1].chain = chain_next(&l.entries[0].chain, &leaf);
    l.tree = MerkleTree::from_leaves(l.entries.iter().map(|e| e.leaf).collect());
    let k = key(1);
    let note = k
        .sign_checkpoint("example.test/log", 3, &l.tree.root())
        .unwrap();
    let e = build_bundle(&BundleInput {
        origin: "example.test/log",
        range: "test",
        entries: &l.entries[..2],
        chain_before: chain_genesis("example.test/log"),
        tree: &l.tree,
        checkpoint: &note,
        previous_checkpoint: None,
        signing_key: &k.verifier_key(),
        other_keys: &[],
        created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    })
    .unwrap_err();
    assert_eq!((e.check, e.seq), (BundleCheck::Input, Some(2)));
}

#[test]
fn body_failures_are_ordered_with_the_other_entry_checks() {
    let l = log(8);
    let good = bundle(&l, 2, 7, 8, None);
    // Lines for seq 2..=7 with leaf and chain recomputed; `bad` bodies
    // are not JSON objects, `stale` lines carry a wrong leaf.
    let with = |bad: &[u64], stale: &[u64], drop_tail: usize| {
        let mut prev = l.entries[0].chain;
        let mut text = String::new();
        for seq in 2..=7u64 - drop_tail as u64 {
            let e = &l.entries[seq as usize - 1];
            let body = if bad.contains(&seq) {
                format!("[{seq}]")
            } else {
                String::from_utf8(e.body.clone()).unwrap()
            };
            let leaf = if stale.contains(&seq) {
                [7; 32]
            } else {
                leaf_hash(body.as_bytes())
            };
            prev = chain_next(&prev, &leaf);
            text.push_str(&format!(
                r#"{{"seq":{seq},"leaf":"{}","chain":"{}","body":{body}}}"#,
                hex::encode(leaf),
                hex::encode(prev)
            ));
            text.push('\n');
        }
        let mut f = good.clone();
        replace(&mut f, ENTRIES, |e| *e = text.into_bytes());
        f
    };
    // (bad bodies, wrong leaves, lines dropped at the tail, verdict)
    type Case<'a> = (&'a [u64], &'a [u64], usize, (BundleCheck, Option<u64>));
    let cases: [Case<'_>; 7] = [
        (&[4], &[], 0, (BundleCheck::Body, Some(4))),
        (&[4, 6], &[], 0, (BundleCheck::Body, Some(4))),
        (&[5], &[3], 0, (BundleCheck::Leaf, Some(3))),
        (&[3], &[5], 0, (BundleCheck::Body, Some(3))),
        // A non-JSON body with a wrong leaf: the leaf check comes first.
        (&[4], &[4], 0, (BundleCheck::Leaf, Some(4))),
        (&[3], &[], 2, (BundleCheck::Body, Some(3))),
        (&[], &[], 2, (BundleCheck::Sequence, Some(6))),
    ];
    for (bad, stale, drop_tail, expected) in cases {
        let f = with(bad, stale, drop_tail);
        for helper_thread in [true, false] {
            let e = verify(&f, None, helper_thread).unwrap_err();
            assert_eq!((e.check, e.seq), expected, "{bad:?} {stale:?} {drop_tail}");
        }
    }
    // Lines after last_seq: a bad body before them still comes first.
    let mut f = with(&[2], &[], 0);
    replace(&mut f, ENTRIES, |e| {
        let first = e.split(|b| *b == b'\n').next().unwrap().to_vec();
        e.extend_from_slice(&first);
        e.push(b'\n');
    });
    for helper_thread in [true, false] {
        let e = verify(&f, None, helper_thread).unwrap_err();
        assert_eq!((e.check, e.seq), (BundleCheck::Body, Some(2)));
    }
    assert!(verify(&good, None, false).is_ok());
}
