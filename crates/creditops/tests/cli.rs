//! The command line as an operator uses it: real binary, real databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn creditops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(args)
        .env_remove("CREDITOPS_DATABASE_URL")
        .env_remove("CREDITOPS_DATA_DIR")
        .output()
        .expect("run creditops")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const STAFF: &str = r#"{
  "units": [
    {"id": "mkt", "name": "Market", "side": "market"},
    {"id": "bo", "name": "Back office", "side": "backoffice"}
  ],
  "staff": [
    {"id": "lo-9", "units": [{"unit_id": "mkt", "valid_from": "2025-01-01T00:00:00Z"}], "roles": [{"role": "loan_officer", "valid_from": "2025-01-01T00:00:00Z"}]},
    {"id": "ba-9", "units": [{"unit_id": "bo", "valid_from": "2025-01-01T00:00:00Z"}], "roles": [{"role": "credit_analyst", "valid_from": "2025-01-01T00:00:00Z"}]},
    {"id": "ba-8", "status": "suspended", "units": [{"unit_id": "bo", "valid_from": "2025-01-01T00:00:00Z", "valid_to": "2026-01-01T00:00:00Z"}]}
  ]
}"#;

/// Imports the staff file (2 units + 3 people = 5 audit events) and checks the chain.
fn import_and_verify(db_args: &[&str], dir: &Path) {
    let file = dir.join("staff.json");
    std::fs::write(&file, STAFF).expect("write staff file");
    let file = file.to_str().expect("utf8 path");
    let import = creditops(&[&["staff", "import", file], db_args].concat());
    assert!(
        import.status.success(),
        "import failed: {}",
        stderr(&import)
    );
    assert!(stdout(&import).contains("imported 2 units and 3 staff members"));

    let verify = creditops(&[&["audit", "verify"], db_args].concat());
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    assert!(
        stdout(&verify).contains("audit chain intact: 5 events"),
        "{}",
        stdout(&verify)
    );
}

fn assert_broken_at(db_args: &[&str], seq: i64) {
    let verify = creditops(&[&["audit", "verify", "--json"], db_args].concat());
    assert_eq!(
        verify.status.code(),
        Some(1),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout(&verify).trim()).expect("json report");
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad_seq"], seq, "{report}");
}

#[tokio::test]
async fn sqlite_tampered_row_is_named_by_audit_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf8");
    let db_args = ["--data-dir", data_dir];
    import_and_verify(&db_args, dir.path());

    // Behind the application's back: the trigger refuses, so drop it first.
    let url = format!("sqlite://{}", dir.path().join("creditops.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let refused = sqlx::query("UPDATE audit_events SET body = CAST('{}' AS BLOB) WHERE seq = 3")
        .execute(&mut conn)
        .await;
    assert!(refused.is_err(), "append-only trigger must refuse updates");
    sqlx::query("DROP TRIGGER audit_events_no_update")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    sqlx::query("UPDATE audit_events SET body = CAST('{\"tampered\":true}' AS BLOB) WHERE seq = 3")
        .execute(&mut conn)
        .await
        .expect("tamper");
    drop(conn);
    assert_broken_at(&db_args, 3);
}

#[tokio::test]
async fn postgres_tampered_row_is_named_by_audit_verify() {
    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db_args = ["--database-url", db.url.as_str()];
    import_and_verify(&db_args, dir.path());

    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    let refused = sqlx::query(
        "UPDATE audit_entries SET body = '\\x7b7d'::bytea \
         WHERE event_id = (SELECT event_id FROM audit_chain WHERE seq = 4)",
    )
    .execute(&mut conn)
    .await;
    assert!(
        refused.is_err(),
        "append-only trigger must refuse updates, even for the owner"
    );
    sqlx::query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        .execute(&mut conn)
        .await
        .expect("disable trigger");
    sqlx::query(
        "UPDATE audit_entries SET body = convert_to('{\"tampered\":true}', 'UTF8') \
         WHERE event_id = (SELECT event_id FROM audit_chain WHERE seq = 4)",
    )
    .execute(&mut conn)
    .await
    .expect("tamper");
    drop(conn);
    assert_broken_at(&db_args, 4);
    db.drop_database().await;
}

#[test]
fn token_without_a_dev_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = creditops(&[
        "token",
        "--data-dir",
        dir.path().to_str().expect("utf8"),
        "--user",
        "lo-1",
        "--service",
        "market",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("serve --dev"), "{}", stderr(&out));
}

#[test]
fn serve_without_identity_provider_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = creditops(&["serve", "--data-dir", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--jwks"), "{}", stderr(&out));
}

#[test]
fn a_bad_staff_file_imports_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf8");
    let file = dir.path().join("bad.json");
    // Second person names an unknown unit: the whole file is refused.
    std::fs::write(
        &file,
        r#"{"units":[{"id":"mkt","name":"M","side":"market"}],"staff":[
            {"id":"a-1","units":[{"unit_id":"mkt","valid_from":"2025-01-01T00:00:00Z"}]},
            {"id":"a-2","units":[{"unit_id":"nowhere","valid_from":"2025-01-01T00:00:00Z"}]}]}"#,
    )
    .expect("write");
    let out = creditops(&[
        "staff",
        "import",
        file.to_str().expect("utf8"),
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("staff[1].units[0]: unknown unit nowhere"),
        "{}",
        stderr(&out)
    );
    // Nothing imported; the refusal itself is audited (finding 19).
    let verify = creditops(&["audit", "verify", "--data-dir", data_dir]);
    assert!(
        stdout(&verify).contains("intact: 1 events"),
        "{}",
        stdout(&verify)
    );
    for garbage in [
        "",
        "{",
        "[]",
        r#"{"staff":[{"id":"bad id"}]}"#,
        r#"{"units":[{"id":"x","name":"n","side":"moon"}]}"#,
    ] {
        std::fs::write(&file, garbage).expect("write");
        let out = creditops(&[
            "staff",
            "import",
            file.to_str().expect("utf8"),
            "--data-dir",
            data_dir,
        ]);
        assert_eq!(out.status.code(), Some(2), "{garbage}: {}", stderr(&out));
    }
}

/// Copies the shipped policies into `dir` so a test can break one of them.
fn copy_policies(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    std::fs::create_dir_all(dir).expect("policy dir");
    std::fs::copy(shipped.join("sod.toml"), dir.join("sod.toml")).expect("sod");
    for service in ["market", "backoffice", "risk", "audit", "admin"] {
        std::fs::create_dir_all(dir.join(service)).expect("dir");
        for file in ["model.conf", "policy.csv"] {
            std::fs::copy(
                shipped.join(service).join(file),
                dir.join(service).join(file),
            )
            .expect("copy policy");
        }
    }
}

/// Runs `serve` expecting it to refuse to start; a server that starts
/// anyway is killed and the test fails.
fn serve_must_refuse(data_dir: &Path, policy_dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(["serve", "--dev", "--data-dir"])
        .arg(data_dir)
        .arg("--policy-dir")
        .arg(policy_dir)
        .args(["--services", "market", "--market-addr", "127.0.0.1:0"])
        .env_remove("CREDITOPS_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert_eq!(status.code(), Some(2), "serve must refuse with exit code 2");
            let out = child.wait_with_output().expect("output");
            return stderr(&out);
        }
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("serve started with a policy that breaks the SoD matrix");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn s1_s3_a_policy_that_breaks_the_sod_matrix_refuses_to_start() {
    let cases = [
        // A back-office role with a right in the market service.
        (
            "market/policy.csv",
            "p, credit_analyst, /v1/cases/{id}, GET\n",
            "credit_analyst",
        ),
        // A role the matrix does not know.
        (
            "backoffice/policy.csv",
            "p, superuser, /v1/cases, GET\n",
            "superuser",
        ),
        // The internal auditor writing outside the audit service.
        (
            "admin/policy.csv",
            "p, internal_auditor, /v1/proposals, POST\n",
            "internal_auditor",
        ),
    ];
    for (file, line, needle) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let policies = dir.path().join("policies");
        copy_policies(&policies);
        let path = policies.join(file);
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str(line);
        std::fs::write(&path, text).expect("write");
        let err = serve_must_refuse(&dir.path().join("data"), &policies);
        assert!(err.contains(needle), "{file}: {err}");
    }
    // A matrix that leaves a role without a side is refused as well.
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    copy_policies(&policies);
    let sod = std::fs::read_to_string(policies.join("sod.toml")).expect("sod");
    std::fs::write(
        policies.join("sod.toml"),
        sod.replace("user_admin = \"admin\"\n", ""),
    )
    .expect("write");
    let err = serve_must_refuse(&dir.path().join("data"), &policies);
    assert!(err.contains("user_admin"), "{err}");
}

/// A5: exports a bundle and checks it the way a regulator does, without our
/// software: `sha256sum -c`, `openssl pkeyutl -verify` and `verify.py`. Then
/// a flipped byte in one exported body is named by `verify.py`.
fn export_and_verify_offline(db_args: &[&str], dir: &Path) {
    import_and_verify(db_args, dir);
    let out = dir.join("bundle");
    let key = dir.join("keys").join("audit.key");
    std::fs::create_dir_all(dir.join("keys")).expect("key dir");
    let key_arg = key.to_str().expect("utf8");
    let out_arg = out.to_str().expect("utf8");
    // A missing key file is refused when named explicitly.
    let missing = creditops(
        &[
            &["audit", "export", "--out", out_arg, "--audit-key", key_arg],
            db_args,
        ]
        .concat(),
    );
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(!out.exists(), "nothing written on refusal");
    // The default key in the data dir is created on first use.
    let data_dir = dir.to_str().expect("utf8");
    // The data dir holds the default key; the SQLite arguments name it already.
    let key_dir: Vec<&str> = if db_args.contains(&"--data-dir") {
        Vec::new()
    } else {
        vec!["--data-dir", data_dir]
    };
    let export = creditops(
        &[
            &["audit", "export", "--out", out_arg, "--json"],
            key_dir.as_slice(),
            db_args,
        ]
        .concat(),
    );
    assert!(
        export.status.success(),
        "{}{}",
        stdout(&export),
        stderr(&export)
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&export).trim()).expect("json");
    assert_eq!(report["first_seq"], 1);
    assert_eq!(report["last_seq"], 5);
    // The export itself is audited: the log now has 6 events.
    let verify = creditops(&[&["audit", "verify"], db_args].concat());
    assert!(
        stdout(&verify).contains("intact: 6 events"),
        "{}",
        stdout(&verify)
    );
    // An existing bundle is never overwritten.
    let again = creditops(
        &[
            &["audit", "export", "--out", out_arg],
            key_dir.as_slice(),
            db_args,
        ]
        .concat(),
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));

    let sums = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .expect("sha256sum");
    assert!(sums.status.success(), "{}", stdout(&sums));
    let openssl = Command::new("openssl")
        .args([
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
        ])
        .current_dir(&out)
        .output()
        .expect("openssl");
    assert!(
        openssl.status.success(),
        "{}{}",
        stdout(&openssl),
        stderr(&openssl)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audit/verify.py");
    let key_line = std::fs::read_to_string(out.join("keys.txt")).expect("keys");
    let key = key_line.lines().next().expect("a key").trim().to_owned();
    let ok = Command::new("python3")
        .arg(&script)
        .arg(&out)
        .args(["--key", &key])
        .output()
        .expect("python3");
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).starts_with("OK"), "{}", stdout(&ok));
    // Our own verifier agrees, with the published key.
    let out_text = out.to_str().expect("utf-8 path");
    let ours = creditops(&["audit", "verify-export", out_text, "--key", &key]);
    assert!(ours.status.success(), "{}{}", stdout(&ours), stderr(&ours));
    assert!(stdout(&ours).starts_with("bundle ok"), "{}", stdout(&ours));
    a3_finding_12_a_bundle_without_a_trusted_key_is_unauthenticated(&script, out_text);
    // The same origin signed by another key: not the published one.
    let origin = key.split('+').next().expect("key name");
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other =
        creditops_audit::SigningKey::load_or_create(origin, &other_dir.path().join("other.key"))
            .expect("other key")
            .verifier_key_string();
    let wrong = creditops(&["audit", "verify-export", out_text, "--key", &other]);
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "{}{}",
        stdout(&wrong),
        stderr(&wrong)
    );
    let garbage = creditops(&["audit", "verify-export", out_text, "--key", "not a key"]);
    assert_eq!(garbage.status.code(), Some(2), "{}", stderr(&garbage));

    // Flip one byte of the body of seq 3 in entries.jsonl (one line per
    // event: {"seq":N,"leaf":"..","chain":"..","body":<exact body>}).
    let entries_path = out.join("entries.jsonl");
    let mut bytes = std::fs::read(&entries_path).expect("entries");
    let line = bytes
        .split(|b| *b == b'\n')
        .position(|l| l.starts_with(br#"{"seq":3,"#))
        .expect("a line for seq 3");
    let line_start: usize = bytes
        .split(|b| *b == b'\n')
        .take(line)
        .map(|l| l.len() + 1)
        .sum();
    let marker = br#""body":"#;
    let body_start = line_start
        + bytes[line_start..]
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("a body")
        + marker.len();
    bytes[body_start + 10] ^= 0x01;
    std::fs::write(&entries_path, bytes).expect("write");
    let bad = Command::new("python3")
        .arg(&script)
        .arg(&out)
        .output()
        .expect("python3");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}{}",
        stdout(&bad),
        stderr(&bad)
    );
    let said = format!("{}{}", stdout(&bad), stderr(&bad));
    assert!(said.contains("seq=3"), "{said}");
    let ours = creditops(&["audit", "verify-export", out_text, "--json"]);
    assert_eq!(
        ours.status.code(),
        Some(1),
        "{}{}",
        stdout(&ours),
        stderr(&ours)
    );
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&ours)).expect("json");
    assert_eq!(verdict["ok"], false);
    assert_eq!(verdict["error"]["seq"], 3, "{verdict}");
}

#[test]
fn a5_sqlite_export_verifies_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf8").to_owned();
    export_and_verify_offline(&["--data-dir", &data_dir], dir.path());
}

#[tokio::test]
async fn a5_postgres_export_verifies_offline() {
    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url.clone();
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        export_and_verify_offline(&["--database-url", &url], &path)
    })
    .await
    .expect("export test");
    db.drop_database().await;
}

/// A2: cutting events off the end leaves an intact chain, so only a
/// checkpoint published earlier can reveal it.
#[tokio::test]
async fn a2_truncation_beyond_a_published_checkpoint_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf8").to_owned();
    truncation_beyond_a_published_checkpoint(&["--data-dir", data_dir.as_str()], dir.path(), None)
        .await;
}

#[tokio::test]
async fn a2_postgres_truncation_beyond_a_published_checkpoint_is_detected() {
    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The data dir still holds the export's signing key.
    let data_dir = dir.path().to_str().expect("utf8").to_owned();
    truncation_beyond_a_published_checkpoint(
        &[
            "--database-url",
            db.url.as_str(),
            "--data-dir",
            data_dir.as_str(),
        ],
        dir.path(),
        Some(&db.url),
    )
    .await;
    db.drop_database().await;
}

/// Publishes a checkpoint of size 5 (an export), deletes the events from
/// seq 5 on behind the triggers' back (SQLite, or PostgreSQL at `pg_url`):
/// the remaining chain is intact, but the checkpoint names seq 5.
async fn truncation_beyond_a_published_checkpoint(
    db_args: &[&str],
    dir: &std::path::Path,
    pg_url: Option<&str>,
) {
    import_and_verify(db_args, dir);
    let out = dir.join("bundle");
    let export = creditops(
        &[
            &["audit", "export", "--out", out.to_str().expect("utf8")],
            db_args,
        ]
        .concat(),
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let checkpoint = out.join("checkpoint.txt");
    let key = std::fs::read_to_string(out.join("keys.txt")).expect("keys");
    let key = key.lines().next().expect("a key").trim().to_owned();
    let with_checkpoint = |extra: &[&str]| {
        creditops(
            &[
                &[
                    "audit",
                    "verify",
                    "--checkpoint",
                    checkpoint.to_str().expect("utf8"),
                    "--trusted-key",
                ],
                extra,
                db_args,
            ]
            .concat(),
        )
    };
    let ok = with_checkpoint(&[key.as_str()]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(
        stdout(&ok).contains("published checkpoint of size 5"),
        "{}",
        stdout(&ok)
    );
    // A key the checkpoint was not signed with is a usage error, never a pass.
    let wrong = with_checkpoint(&["creditops/audit/v1+00000000+AQ=="]);
    assert_ne!(wrong.status.code(), Some(0));

    if let Some(url) = pg_url {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .expect("connect");
        for statement in [
            "ALTER TABLE audit_chain DISABLE TRIGGER USER",
            "ALTER TABLE audit_entries DISABLE TRIGGER USER",
            "CREATE TEMP TABLE gone AS SELECT event_id FROM audit_chain WHERE seq >= 5",
            "DELETE FROM audit_chain WHERE seq >= 5",
            "DELETE FROM audit_entries WHERE event_id IN (SELECT event_id FROM gone)",
        ] {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    } else {
        let url = format!("sqlite://{}", dir.join("creditops.db").display());
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect");
        sqlx::query("DROP TRIGGER audit_events_no_delete")
            .execute(&mut conn)
            .await
            .expect("drop trigger");
        sqlx::query("DELETE FROM audit_events WHERE seq >= 5")
            .execute(&mut conn)
            .await
            .expect("truncate");
    }
    let plain = creditops(&[&["audit", "verify"], db_args].concat());
    assert!(
        plain.status.success(),
        "the remaining chain is intact: {}",
        stdout(&plain)
    );
    let caught = with_checkpoint(&[key.as_str(), "--json"]);
    assert_eq!(
        caught.status.code(),
        Some(1),
        "{}{}",
        stdout(&caught),
        stderr(&caught)
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&caught).trim()).expect("json");
    assert_eq!(report["first_bad_seq"], 5, "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or("")
            .contains("truncated"),
        "{report}"
    );
}

/// A2, A3: the tamper matrix. Each way of changing the trail behind the
/// application's back (triggers removed first) is detected by `audit
/// verify`, which names the first bad position.
const TAMPERINGS: [(&str, &[&str], i64); 4] = [
    (
        "modified body",
        &["UPDATE audit_events SET body = CAST(body || ' ' AS BLOB) WHERE seq = 3"],
        3,
    ),
    (
        "deleted event",
        &["DELETE FROM audit_events WHERE seq = 3"],
        3,
    ),
    (
        "swapped order",
        &[
            "UPDATE audit_events SET seq = 1000 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = 1000",
        ],
        2,
    ),
    (
        "rewritten chain value",
        &["UPDATE audit_events SET chain_hash = leaf_hash WHERE seq = 4"],
        4,
    ),
];

/// The same tamperings on PostgreSQL's tables (bodies in `audit_entries`,
/// positions and chain values in `audit_chain`).
const PG_TAMPERINGS: [(&str, &[&str], i64); 4] = [
    (
        "modified body",
        &["UPDATE audit_entries SET body = body || '\\x20'::bytea \
           WHERE event_id = (SELECT event_id FROM audit_chain WHERE seq = 3)"],
        3,
    ),
    (
        "deleted event",
        &[
            "DELETE FROM audit_chain WHERE seq = 3",
            "DELETE FROM audit_entries e \
             WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id)",
        ],
        3,
    ),
    (
        "swapped order",
        &[
            "UPDATE audit_chain SET seq = 1000 WHERE seq = 2",
            "UPDATE audit_chain SET seq = 2 WHERE seq = 3",
            "UPDATE audit_chain SET seq = 3 WHERE seq = 1000",
        ],
        2,
    ),
    (
        "rewritten chain value",
        &["UPDATE audit_chain SET chain_hash = leaf_hash WHERE seq = 4"],
        4,
    ),
];

#[tokio::test]
async fn a2_sqlite_tamper_matrix() {
    for (name, statements, seq) in TAMPERINGS {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_str().expect("utf8");
        let db_args = ["--data-dir", data_dir];
        import_and_verify(&db_args, dir.path());
        let url = format!("sqlite://{}", dir.path().join("creditops.db").display());
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect");
        for drop_trigger in [
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
        ] {
            sqlx::query(drop_trigger)
                .execute(&mut conn)
                .await
                .expect("drop trigger");
        }
        for statement in statements {
            sqlx::query(*statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        drop(conn);
        assert_broken_at(&db_args, seq);
    }
}

#[tokio::test]
async fn a2_postgres_tamper_matrix() {
    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    for (name, statements, seq) in PG_TAMPERINGS {
        let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let db_args = ["--database-url", db.url.as_str()];
        import_and_verify(&db_args, dir.path());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .expect("connect");
        for table in ["audit_entries", "audit_chain"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE {table} DISABLE TRIGGER USER"
            )))
            .execute(&mut conn)
            .await
            .expect("disable triggers");
        }
        for statement in statements {
            sqlx::query(*statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        drop(conn);
        assert_broken_at(&db_args, seq);
        db.drop_database().await;
    }
}

#[tokio::test]
async fn db_provision_creates_roles_the_services_run_as() {
    let refused = creditops(&[
        "db",
        "provision",
        "--database-url",
        "postgres://nowhere/db",
        "--role-prefix",
        "Bad-Prefix",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--role-prefix"),
        "{}",
        stderr(&refused)
    );

    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let prefix = format!("cli{}", &db.name["creditops_test_".len()..][..12]);
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().unwrap();
    let migrated = creditops(&["migrate", "--database-url", &db.url, "--data-dir", data_dir]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let provisioned = creditops(&[
        "db",
        "provision",
        "--database-url",
        &db.url,
        "--role-prefix",
        &prefix,
        "--json",
    ]);
    assert!(provisioned.status.success(), "{}", stderr(&provisioned));
    let report: serde_json::Value = serde_json::from_str(&stdout(&provisioned)).unwrap();
    assert_eq!(report["roles"].as_array().unwrap().len(), 5, "{report}");

    // The audit role verifies (and links) the trail; the market role may not
    // import staff (admin data): refused by the database, reported, exit 3.
    let as_role = |service: &str| {
        creditops_store_postgres::testing::with_user(&db.url, &format!("{prefix}_{service}"))
    };
    let audit_url = as_role("audit");
    let verified = creditops(&[
        "audit",
        "verify",
        "--database-url",
        &audit_url,
        "--data-dir",
        data_dir,
    ]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    let file = dir.path().join("staff.json");
    std::fs::write(&file, STAFF).expect("write staff file");
    let market_url = as_role("market");
    let import = creditops(&[
        "staff",
        "import",
        file.to_str().unwrap(),
        "--database-url",
        &market_url,
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(import.status.code(), Some(3), "{}", stderr(&import));

    db.drop_database().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .expect("connect");
    for service in ["market", "backoffice", "risk", "audit", "admin"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS {prefix}_{service}"
        )))
        .execute(&mut conn)
        .await
        .expect("drop role");
    }
}

/// Hardening finding 12: without a trusted key both verifiers exit 4
/// ("intact but unauthenticated"): the bundle's own keys.txt is written by
/// whoever wrote the bundle, a forger included. `--trust-bundle-keys` is the
/// explicit way to accept them.
fn a3_finding_12_a_bundle_without_a_trusted_key_is_unauthenticated(script: &Path, bundle: &str) {
    let python = Command::new("python3")
        .arg(script)
        .arg(bundle)
        .output()
        .expect("python3");
    assert_eq!(python.status.code(), Some(4), "{}", stderr(&python));
    assert!(
        stdout(&python).starts_with("UNAUTHENTICATED"),
        "{}",
        stdout(&python)
    );
    let ours = creditops(&["audit", "verify-export", bundle]);
    assert_eq!(ours.status.code(), Some(4), "{}", stderr(&ours));
    assert!(
        stderr(&ours).contains("unauthenticated"),
        "{}",
        stderr(&ours)
    );
    let ours = creditops(&["audit", "verify-export", bundle, "--json"]);
    assert_eq!(ours.status.code(), Some(4), "{}", stderr(&ours));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&ours)).expect("json");
    assert_eq!(verdict["unauthenticated"], true, "{verdict}");
    for trusting in [
        Command::new("python3")
            .arg(script)
            .args([bundle, "--trust-bundle-keys"])
            .output()
            .expect("python3"),
        creditops(&["audit", "verify-export", bundle, "--trust-bundle-keys"]),
    ] {
        assert!(trusting.status.success(), "{}", stderr(&trusting));
    }
}

/// Hardening finding 11: outside dev mode too, the data directory is 0700
/// and the database file 0600 (SQLite gives its WAL files the same mode); an
/// existing directory or database open to others is closed.
#[cfg(unix)]
#[test]
fn finding_11_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("fresh").join("data");
    let data_text = data.to_str().expect("utf-8 path");
    let migrated = creditops(&["migrate", "--data-dir", data_text]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert_eq!(mode(&data), 0o700);
    let db = data.join("creditops.db");
    assert_eq!(mode(&db), 0o600);
    for entry in std::fs::read_dir(&data).expect("ls") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
    }
    // Opened up by hand: the next start closes both again.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let again = creditops(&["migrate", "--data-dir", data_text]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
}

/// Hardening finding 15: `serve --dev` seeds demo staff (two user
/// administrators among them) and trusts its own token minter, so it refuses
/// a database it did not create: here one whose staff came from an
/// operator's import. Nothing is seeded into it. A database dev mode created
/// itself is used again on the next start.
#[tokio::test]
async fn finding_15_serve_dev_refuses_a_database_it_did_not_create() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("bank");
    let data_text = data.to_str().expect("utf-8 path");
    let file = dir.path().join("staff.json");
    std::fs::write(&file, STAFF).expect("write staff file");
    let import = creditops(&[
        "staff",
        "import",
        file.to_str().expect("utf-8 path"),
        "--data-dir",
        data_text,
    ]);
    assert!(import.status.success(), "{}", stderr(&import));
    let refused = serve_must_refuse(&data, &policies);
    assert!(refused.contains("database it created itself"), "{refused}");
    let token = creditops(&[
        "token",
        "--user",
        "ua-1",
        "--service",
        "admin",
        "--data-dir",
        data_text,
    ]);
    assert_eq!(
        token.status.code(),
        Some(2),
        "no dev key was made: {}",
        stderr(&token)
    );
    let verify = creditops(&["audit", "verify", "--data-dir", data_text, "--json"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let report: serde_json::Value = serde_json::from_str(&stdout(&verify)).expect("json");
    // The import's events and the audited refusal (finding 19); no demo
    // staff.
    assert_eq!(report["events"], 6, "{report}");
    let refusals = audit_bodies(&data, "cli.refused").await;
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["data"]["command"], "serve --dev");
}

/// A bootstrap document with two user administrators, a market and a
/// back-office person.
const DIRECTORY: &str = r#"{
  "units": [
    {"id": "mkt", "name": "Market", "side": "market"},
    {"id": "bo", "name": "Back office", "side": "backoffice"},
    {"id": "adm", "name": "User administration", "side": "admin"}
  ],
  "staff": [
    {"id": "ua-8", "units": [{"unit_id": "adm", "valid_from": "2025-01-01T00:00:00Z"}], "roles": [{"role": "user_admin", "valid_from": "2025-01-01T00:00:00Z"}]},
    {"id": "ua-9", "units": [{"unit_id": "adm", "valid_from": "2025-01-01T00:00:00Z"}], "roles": [{"role": "user_admin", "valid_from": "2025-01-01T00:00:00Z"}]},
    {"id": "lo-9", "units": [{"unit_id": "mkt", "valid_from": "2025-01-01T00:00:00Z"}], "roles": [{"role": "loan_officer", "valid_from": "2025-01-01T00:00:00Z"}]},
    {"id": "ba-9", "units": [{"unit_id": "bo", "valid_from": "2025-01-01T00:00:00Z"}], "roles": [{"role": "credit_analyst", "valid_from": "2025-01-01T00:00:00Z"}]}
  ]
}"#;

/// One new person as a staff document: `role` in `unit` from `from`.
fn newcomer(id: &str, unit: &str, role: &str, from: &str) -> String {
    serde_json::json!({"staff": [{
        "id": id,
        "units": [{"unit_id": unit, "valid_from": from}],
        "roles": [{"role": role, "valid_from": from}],
        "competences": [{"side": "market", "level": 4, "valid_from": from}],
    }]})
    .to_string()
}

/// `staff import` of `document` with `extra` arguments, as operator
/// `ops-tester` on host `ops-host`.
fn import_as_operator(dir: &Path, document: &str, extra: &[&str]) -> Output {
    let file = dir.join("import.json");
    std::fs::write(&file, document).expect("write staff file");
    Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(["staff", "import", file.to_str().unwrap()])
        .args(extra)
        .env_remove("CREDITOPS_DATABASE_URL")
        .env_remove("CREDITOPS_DATA_DIR")
        .env_remove("CREDITOPS_POLICY_DIR")
        .env_remove("LOGNAME")
        .env("USER", "ops-tester")
        .env("HOSTNAME", "ops-host")
        .output()
        .expect("run creditops")
}

/// The audit events with `action`, their bodies as JSON.
async fn audit_bodies(data_dir: &Path, action: &str) -> Vec<serde_json::Value> {
    let store = creditops::open_store(None, data_dir, creditops::DEFAULT_AUDIT_ORIGIN)
        .await
        .expect("open store");
    let mut tx = store.begin_read().await.expect("read");
    let filter = creditops_store::AuditFilter {
        action: Some(action.to_owned()),
        limit: 1000,
        ..creditops_store::AuditFilter::default()
    };
    tx.audit_events(&filter)
        .await
        .expect("events")
        .iter()
        .map(|e| serde_json::from_slice(&e.body).expect("json body"))
        .collect()
}

/// Hardening finding 14: `staff import` loads only an empty directory; in a
/// populated one it proposes each new person as the user administrator
/// `--as` names, a second administrator approves, and every refusal has a
/// precise message and exit 2. The operator's user and host are audited.
#[tokio::test]
async fn finding_14_staff_import_bootstraps_only_an_empty_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().unwrap();
    let db = ["--data-dir", data_dir];

    // An empty directory has no administrator to act as.
    let early = import_as_operator(
        dir.path(),
        DIRECTORY,
        &[&["--as", "ua-8"][..], &db].concat(),
    );
    assert_eq!(early.status.code(), Some(2), "{}", stderr(&early));
    assert!(
        stderr(&early).contains("without --as"),
        "{}",
        stderr(&early)
    );

    let boot = import_as_operator(dir.path(), DIRECTORY, &db);
    assert!(boot.status.success(), "{}", stderr(&boot));
    assert!(stdout(&boot).contains("(bootstrap)"), "{}", stdout(&boot));
    let imported = audit_bodies(dir.path(), "staff.imported").await;
    assert_eq!(imported.len(), 4);
    assert_eq!(imported[0]["data"]["operator"]["os_user"], "ops-tester");
    assert_eq!(imported[0]["data"]["operator"]["host"], "ops-host");

    let later = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let later = later.as_str();
    let good = newcomer("lo-7", "mkt", "loan_officer", later);
    // Populated: without --as, as nobody, as a non-administrator: refused.
    for (extra, says) in [
        (vec![], "name the proposing user administrator with --as"),
        (vec!["--as", "xx-1"], "--as xx-1: no such staff member"),
        (vec!["--as", "lo-9"], "only an active user administrator"),
    ] {
        let out = import_as_operator(dir.path(), &good, &[&extra[..], &db].concat());
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("S9"), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    // A person who exists, a back-dated start, a role off its home side.
    let as_admin = [&["--as", "ua-8"][..], &db].concat();
    for (document, says) in [
        (
            newcomer("lo-9", "mkt", "loan_officer", later),
            "exists already",
        ),
        (
            newcomer("lo-7", "mkt", "loan_officer", "2025-06-01T00:00:00Z"),
            "S4",
        ),
        (newcomer("lo-7", "bo", "loan_officer", later), "S3"),
    ] {
        let out = import_as_operator(dir.path(), &document, &as_admin);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing was imported"),
            "{}",
            stderr(&out)
        );
    }

    let proposed = import_as_operator(dir.path(), &good, &as_admin);
    assert!(proposed.status.success(), "{}", stderr(&proposed));
    let printed = stdout(&proposed);
    let id = printed
        .split("POST /v1/proposals/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an approve path");
    let id: uuid::Uuid = id.parse().expect("proposal id");

    // Not in the directory until a second administrator approves it on the
    // admin service's command; the proposer cannot.
    let store = creditops::open_store(None, dir.path(), creditops::DEFAULT_AUDIT_ORIGIN)
        .await
        .expect("open store");
    let lo_7 = creditops_domain::StaffId::parse("lo-7").unwrap();
    assert!(store.staff_member(&lo_7).await.unwrap().is_none());
    let (sod, _) = creditops::platform::load_sod(None).unwrap();
    let ctx = creditops_commands::Context {
        service: "admin",
        store: store.clone(),
        policy_hash: String::new(),
        sod: std::sync::Arc::new(sod),
        claim_timeout: std::time::Duration::from_secs(5),
        operator: None,
    };
    let approve = |who: creditops_commands::Actor| {
        let (ctx, store) = (ctx.clone(), store.clone());
        async move {
            let mut tx = store.begin().await.unwrap();
            let verdict = creditops_domain::four_eyes::Verdict::Approve;
            let result = creditops_commands::proposals::decide_proposal(
                &ctx,
                tx.as_mut(),
                &who,
                id,
                verdict,
                creditops_domain::Role::UserAdmin,
            )
            .await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            }
            result
        }
    };
    let own = approve(actor_of(&store, "ua-8").await).await.unwrap_err();
    assert!(own.to_string().contains("second administrator"), "{own}");
    approve(actor_of(&store, "ua-9").await)
        .await
        .expect("approved");
    let joined = store
        .staff_member(&lo_7)
        .await
        .unwrap()
        .expect("lo-7 joined");
    assert_eq!(joined.roles[0].role, creditops_domain::Role::LoanOfficer);

    let proposals = audit_bodies(dir.path(), "change.proposed").await;
    assert_eq!(proposals.len(), 1);
    assert_eq!(proposals[0]["actor"], "ua-8");
    assert_eq!(proposals[0]["data"]["operator"]["os_user"], "ops-tester");
}

/// The staff member `id` as the actor of a command now.
async fn actor_of(
    store: &std::sync::Arc<dyn creditops_store::Store>,
    id: &str,
) -> creditops_commands::Actor {
    let member = store
        .staff_member(&creditops_domain::StaffId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("staff member");
    creditops_commands::Actor {
        roles: member.roles_at(chrono::Utc::now()),
        member,
        at: chrono::Utc::now(),
        request_id: "test".into(),
        rule_sets: None,
        authority: None,
    }
}

/// Hardening finding 14 (S3): the bootstrap checks home sides too: a loan
/// officer in a back-office unit is refused and nothing is imported.
#[test]
fn finding_14_staff_import_checks_home_sides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().unwrap();
    let document = DIRECTORY.replace(
        r#"{"id": "lo-9", "units": [{"unit_id": "mkt""#,
        r#"{"id": "lo-9", "units": [{"unit_id": "bo""#,
    );
    let out = import_as_operator(dir.path(), &document, &["--data-dir", data_dir]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("staff[2]: role loan_officer belongs to the market side"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("S3"), "{}", stderr(&out));
    let boot = import_as_operator(dir.path(), DIRECTORY, &["--data-dir", data_dir]);
    assert!(
        boot.status.success(),
        "nothing was imported before: {}",
        stderr(&boot)
    );
}

/// Hardening finding 14: `staff import` reads the SoD matrix and policies
/// from `--policy-dir`, as `serve` does: a policy dir whose matrix does not
/// parse, or that a policy breaks, refuses the import.
#[test]
fn finding_14_staff_import_reads_the_policy_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let policies = dir.path().join("policies");
    copy_policies(&policies);
    let policy_dir = policies.to_str().unwrap();
    let args = ["--policy-dir", policy_dir, "--data-dir", data_dir];
    std::fs::write(policies.join("sod.toml"), "home_side = 3").unwrap();
    let out = import_as_operator(dir.path(), DIRECTORY, &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("sod.toml"), "{}", stderr(&out));
    // The shipped matrix, but a market policy that lets a loan officer
    // reach a back-office route: the same refusal as at start-up (S1).
    copy_policies(&policies);
    let market = policies.join("market").join("policy.csv");
    let mut csv = std::fs::read_to_string(&market).unwrap();
    csv.push_str("p, credit_analyst, /v1/cases/{id}, GET\n");
    std::fs::write(&market, csv).unwrap();
    let out = import_as_operator(dir.path(), DIRECTORY, &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    copy_policies(&policies);
    let out = import_as_operator(dir.path(), DIRECTORY, &args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Hardening finding 19 (A1): a command refused once the store is open is
/// an audit event with the rule, the reason and the operator; `db
/// provision` records the policy and SoD hashes, the rule-set version and
/// the configuration without secrets.
#[tokio::test]
async fn finding_19_a1_cli_refusals_and_db_provision_are_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().unwrap();
    let boot = import_as_operator(dir.path(), DIRECTORY, &["--data-dir", data_dir]);
    assert!(boot.status.success(), "{}", stderr(&boot));
    let refused = import_as_operator(dir.path(), DIRECTORY, &["--data-dir", data_dir]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    // An export into a directory that holds files is refused, audited too.
    let occupied = dir.path().join("occupied");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("keep.txt"), "x").unwrap();
    let export = creditops(&[
        "audit",
        "export",
        "--out",
        occupied.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(export.status.code(), Some(2), "{}", stderr(&export));
    assert!(occupied.join("keep.txt").exists());
    let events = audit_bodies(dir.path(), "cli.refused").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["data"]["command"], "audit export");
    let event = &events[0];
    assert_eq!(event["outcome"], "denied", "{event}");
    assert_eq!(event["rule"], "S9", "{event}");
    assert_eq!(event["data"]["command"], "staff import");
    assert_eq!(event["data"]["exit_code"], 2);
    assert_eq!(event["data"]["operator"]["os_user"], "ops-tester");
    assert_eq!(event["data"]["operator"]["host"], "ops-host");
    let verify = creditops(&["audit", "verify", "--data-dir", data_dir]);
    assert!(verify.status.success(), "{}", stdout(&verify));

    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let prefix = format!("prov{}", &db.name["creditops_test_".len()..][..12]);
    let migrated = creditops(&["migrate", "--database-url", &db.url, "--data-dir", data_dir]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let url_with_secret = format!("{}?application_name=x&password=hunter2", db.url);
    let provisioned = creditops(&[
        "db",
        "provision",
        "--database-url",
        &url_with_secret,
        "--role-prefix",
        &prefix,
    ]);
    assert!(provisioned.status.success(), "{}", stderr(&provisioned));
    let store = creditops::open_store(Some(&db.url), dir.path(), creditops::DEFAULT_AUDIT_ORIGIN)
        .await
        .expect("open store");
    creditops_store::StoreExt::flush_audit(store.as_ref(), std::time::Duration::from_secs(10))
        .await
        .expect("flush");
    let mut tx = store.begin_read().await.unwrap();
    let filter = creditops_store::AuditFilter {
        action: Some("platform.roles_provisioned".into()),
        limit: 10,
        ..creditops_store::AuditFilter::default()
    };
    let events = tx.audit_events(&filter).await.unwrap();
    assert_eq!(events.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&events[0].body).unwrap();
    let data = &body["data"];
    assert_eq!(
        data["policy_hash"].as_str().map(str::len),
        Some(64),
        "{data}"
    );
    assert_eq!(data["sod_hash"].as_str().map(str::len), Some(64), "{data}");
    assert_eq!(data["rules_version"], 1, "{data}");
    assert_eq!(data["policies"], "built-in", "{data}");
    assert!(!body.to_string().contains("hunter2"), "{body}");
    drop(tx);
    drop(store);
    db.drop_database().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .expect("connect");
    for service in ["market", "backoffice", "risk", "audit", "admin"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS {prefix}_{service}"
        )))
        .execute(&mut conn)
        .await
        .expect("drop role");
    }
}

/// Runs `serve` with an identity provider configured, expecting it to
/// refuse before it listens; returns the exit code and stderr.
fn serve_refuses(db_args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA"}]}"#,
    )
    .expect("jwks");
    let mut child = Command::new(env!("CARGO_BIN_EXE_creditops"))
        .arg("serve")
        .args(db_args)
        .arg("--jwks")
        .arg(&jwks)
        .args(["--issuer", "https://idp"])
        .args(["--services", "market", "--market-addr", "127.0.0.1:0"])
        .env_remove("CREDITOPS_DATABASE_URL")
        .env_remove("CREDITOPS_DATA_DIR")
        .env_remove("CREDITOPS_DEV")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            return (status.code(), stderr(&out));
        }
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("serve started on a database with free-text sectors");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Rows written before the controlled vocabularies, behind the
/// application's back (it refuses such values now): free-text sectors and
/// countries of borrowers, a sector limit keyed by free text and an open
/// breach of it. Returns the statements and the ids the refusal must name.
fn free_text_rows() -> (Vec<String>, [String; 5]) {
    let [manufacturing, lower_case, germany, fine] =
        std::array::from_fn(|_| uuid::Uuid::now_v7().to_string());
    let limit = uuid::Uuid::now_v7().to_string();
    let breach = uuid::Uuid::now_v7().to_string();
    let at = "2026-01-01T00:00:00Z";
    let borrower = |id: &str, country: &str, sector: &str| {
        format!(
            "INSERT INTO borrowers (id, name, country, sector, created_by, created_at) \
             VALUES ('{id}', 'B', '{country}', '{sector}', 'lo-9', '{at}')"
        )
    };
    let statements = vec![
        "INSERT INTO staff (id, status) VALUES ('lo-9', 'active')".to_owned(),
        borrower(&manufacturing, "DE", "manufacturing"),
        borrower(&lower_case, "DE", "c"),
        borrower(&germany, "Germany", "C25"),
        borrower(&fine, "DE", "C25"),
        format!(
            "INSERT INTO limit_versions (id, subject_kind, subject_key, version, amount_minor, \
             tolerance_percent, reason, proposed_by, proposed_at, status) \
             VALUES ('{limit}', 'sector', 'energy', 1, 100000, '0', 'legacy', 'lo-9', '{at}', \
             'pending')"
        ),
        format!(
            "INSERT INTO breaches (id, subject, rule, check_name, limit_value, usage_value, \
             amount_over, severity, cause, owner, detected_at) VALUES ('{breach}', \
             'sector:energy', 'R7', 'sector_limit', '1000', '2000', '1000', 'hard', 'test', \
             'risk_control', '{at}')"
        ),
    ];
    (
        statements,
        [manufacturing, lower_case, germany, limit, breach],
    )
}

/// The corrections docs/operations.md describes: borrowers are updated in
/// place; a limit version is append-only, so its key is corrected with the
/// table's final-row trigger set aside for the one statement.
const BORROWER_CORRECTIONS: [&str; 2] = [
    "UPDATE borrowers SET sector = 'C25' WHERE sector IN ('manufacturing', 'c')",
    "UPDATE borrowers SET country = 'DE' WHERE country = 'Germany'",
];
const LIMIT_CORRECTION: &str = "UPDATE limit_versions SET subject_key = 'D35' \
     WHERE subject_kind = 'sector' AND subject_key = 'energy'";
/// An open breach of the old key is resolved (the watcher opens it again
/// under the code if the limit is still exceeded).
const BREACH_CORRECTION: &str = "UPDATE breaches SET resolved_at = detected_at \
     WHERE resolved_at IS NULL AND subject = 'sector:energy'";

/// Hardening finding 1, for databases written before it: a stored sector or
/// country that is not a code is neither guessed nor mapped; `migrate` and
/// `serve` exit 1 and list each value with the rows holding it, and start
/// once the rows are corrected.
fn assert_free_text_refused(db_args: &[&str], dir: &Path, ids: &[String; 5]) {
    let [manufacturing, lower_case, germany, limit, breach] = ids;
    let expected = [
        format!("borrowers.country \"Germany\" is not a country code, 1 row(s): {germany}"),
        format!("borrowers.sector \"c\" is not a sector code, 1 row(s): {lower_case}"),
        format!(
            "borrowers.sector \"manufacturing\" is not a sector code, 1 row(s): \
             {manufacturing}"
        ),
        format!("limit_versions.subject_key \"energy\" is not a sector code, 1 row(s): {limit}"),
        format!("breaches.subject (open) \"energy\" is not a sector code, 1 row(s): {breach}"),
    ];
    let migrate = creditops(&[&["migrate"], db_args].concat());
    assert_eq!(migrate.status.code(), Some(1), "{}", stderr(&migrate));
    let (code, serve) = serve_refuses(db_args, dir);
    assert_eq!(code, Some(1), "{serve}");
    for out in [stderr(&migrate), serve] {
        for line in &expected {
            assert!(out.contains(line), "{line:?} missing from:\n{out}");
        }
        assert!(!out.contains("\"C25\""), "a code is not listed: {out}");
        assert!(out.contains("docs/operations.md"), "{out}");
    }
}

#[tokio::test]
async fn finding_1_free_text_sectors_refuse_to_start_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf8");
    let db_args = ["--data-dir", data_dir];
    let migrate = creditops(&[&["migrate"], &db_args[..]].concat());
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    let url = format!("sqlite://{}", dir.path().join("creditops.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let (statements, ids) = free_text_rows();
    for statement in &statements {
        // Test data of this file, no outside input.
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    assert_free_text_refused(&db_args, dir.path(), &ids);

    for statement in BORROWER_CORRECTIONS.into_iter().chain([BREACH_CORRECTION]) {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    // SQLite cannot disable a trigger: drop it, correct, and create it again
    // exactly as the migration does.
    let migration = include_str!("../../../migrations/sqlite/0003_risk.sql");
    let start = migration
        .find("CREATE TRIGGER limit_versions_final")
        .expect("trigger");
    let end = start + migration[start..].find("END;").expect("end") + "END;".len();
    for statement in [
        "DROP TRIGGER limit_versions_final",
        LIMIT_CORRECTION,
        &migration[start..end],
    ] {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    drop(conn);
    let migrate = creditops(&[&["migrate"], &db_args[..]].concat());
    assert!(migrate.status.success(), "{}", stderr(&migrate));
}

#[tokio::test]
async fn finding_1_free_text_sectors_refuse_to_start_postgres() {
    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db_args = ["--database-url", db.url.as_str()];
    let migrate = creditops(&[&["migrate"], &db_args[..]].concat());
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    let (statements, ids) = free_text_rows();
    for statement in &statements {
        // Test data of this file, no outside input.
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    assert_free_text_refused(&db_args, dir.path(), &ids);

    for statement in BORROWER_CORRECTIONS.into_iter().chain([
        BREACH_CORRECTION,
        "ALTER TABLE limit_versions DISABLE TRIGGER limit_versions_final",
        LIMIT_CORRECTION,
        "ALTER TABLE limit_versions ENABLE ALWAYS TRIGGER limit_versions_final",
    ]) {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    drop(conn);
    let migrate = creditops(&[&["migrate"], &db_args[..]].concat());
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    db.drop_database().await;
}

/// The consoles' single sign-on is configured completely or not at all: a
/// client without its issuer, secret or external address, a secret file
/// others may read, and single sign-on beside `--dev` are refused at start
/// (exit 2) with what to give instead.
#[test]
fn console_sign_on_is_configured_completely_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, r#"{"keys": []}"#).unwrap();
    let secret = dir.path().join("market.secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let open_secret = dir.path().join("open.secret");
    std::fs::write(&open_secret, "s3cret\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&open_secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let secret_arg = format!("market={}", secret.display());
    let open_arg = format!("market={}", open_secret.display());
    let issuer = "https://idp.bank.example/realms/credit";
    let table: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--dev", "--oidc-client-id", "market=market-console"],
            "need --oidc-issuer",
        ),
        (
            vec![
                "--dev",
                "--oidc-issuer",
                issuer,
                "--oidc-client-id",
                "market=m",
            ],
            "do not combine it with --oidc-issuer",
        ),
        (
            vec!["--oidc-issuer", issuer, "--oidc-client-id", "market=m"],
            "give --oidc-client-secret-file market=FILE",
        ),
        (
            vec![
                "--oidc-issuer",
                issuer,
                "--oidc-client-id",
                "market=m",
                "--oidc-client-secret-file",
                &secret_arg,
            ],
            "give --console-url market=URL",
        ),
        (
            vec![
                "--oidc-issuer",
                issuer,
                "--oidc-client-id",
                "market=m",
                "--oidc-client-secret-file",
                &open_arg,
                "--console-url",
                "market=https://market.bank.example",
            ],
            "readable by others",
        ),
        (
            vec![
                "--oidc-issuer",
                issuer,
                "--oidc-client-id",
                "market=m",
                "--oidc-client-secret-file",
                &secret_arg,
                "--console-url",
                "market=http://market.bank.example",
            ],
            "must be https",
        ),
        (
            vec![
                "--oidc-issuer",
                "http://idp.bank.example",
                "--oidc-client-id",
                "market=m",
                "--oidc-client-secret-file",
                &secret_arg,
                "--console-url",
                "market=https://market.bank.example",
            ],
            "must be https",
        ),
        (
            vec!["--oidc-issuer", issuer, "--oidc-client-id", "treasury=m"],
            "unknown service \"treasury\"",
        ),
        (
            vec![
                "--oidc-issuer",
                issuer,
                "--console-url",
                "backoffice=https://bo.bank.example",
            ],
            "no --oidc-client-id backoffice=ID",
        ),
    ];
    for (flags, expected) in table {
        let mut args = vec!["serve", "--data-dir", data];
        if !flags.contains(&"--dev") {
            args.extend(["--jwks", jwks.to_str().unwrap(), "--issuer", issuer]);
        }
        args.extend(flags.iter().copied());
        let out = creditops(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{flags:?}: {}",
            stderr(&out)
        );
    }
}

/// `--jwks` takes the identity provider's key set address as well as a
/// file: https only (http on this machine), and a provider that does not
/// answer at start is a start failure, not a platform without keys.
#[test]
fn jwks_addresses_are_https_and_must_answer_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let issuer = "https://idp.bank.example/realms/credit";
    let plain = creditops(&[
        "serve",
        "--data-dir",
        data,
        "--issuer",
        issuer,
        "--jwks",
        "http://idp.bank.example/jwks",
    ]);
    assert_eq!(plain.status.code(), Some(2), "{}", stderr(&plain));
    assert!(
        stderr(&plain).contains("must be https"),
        "{}",
        stderr(&plain)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let silent = creditops(&[
        "serve",
        "--data-dir",
        data,
        "--issuer",
        issuer,
        "--jwks",
        &format!("http://127.0.0.1:{port}/jwks"),
        "--market-addr",
        "127.0.0.1:0",
        "--backoffice-addr",
        "127.0.0.1:0",
        "--risk-addr",
        "127.0.0.1:0",
        "--audit-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    assert_ne!(silent.status.code(), Some(0), "{}", stderr(&silent));
    assert!(stderr(&silent).contains("--jwks"), "{}", stderr(&silent));
}
