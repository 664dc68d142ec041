//! Start-up and shutdown of `creditops serve` as an operator meets them:
//! unsafe configurations are refused before anything listens, with a clear
//! message and exit 2; SIGTERM stops accepting, lets open work finish (event
//! streams end), links the audit trail and exits 0; its JSON log lines carry
//! the request id, route template and actor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn creditops(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(args)
        .env_remove("CREDITOPS_DATABASE_URL")
        .env_remove("CREDITOPS_DATA_DIR")
        .env_remove("CREDITOPS_DEV")
        .output()
        .expect("run creditops")
}

#[test]
fn unsafe_configurations_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA"}]}"#,
    )
    .unwrap();
    let hmac = dir.path().join("hmac.json");
    std::fs::write(
        &hmac,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"k1","alg":"HS256"}]}"#,
    )
    .unwrap();
    let jwks = jwks.to_str().unwrap();
    let hmac = hmac.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--dev", "--jwks", jwks, "--issuer", "https://idp"],
            "do not combine it with --jwks",
        ),
        (
            &["--jwks", jwks, "--issuer", "creditops-dev-idp"],
            "use it only with --dev",
        ),
        (
            &["--dev", "--market-addr", "0.0.0.0:8081"],
            "not a loopback address",
        ),
        (&["--jwks", hmac, "--issuer", "https://idp"], "symmetric"),
        (&["--jwks", jwks], "--jwks needs --issuer"),
        (&[], "no identity provider configured"),
        (
            &["--dev", "--request-timeout-ms", "5"],
            "--request-timeout-ms",
        ),
        (&["--dev", "--body-limit-bytes", "1"], "--body-limit-bytes"),
        (
            &["--dev", "--services", "market,treasury"],
            "unknown service",
        ),
        (
            &["--dev", "--database-url", "mysql://u:secret@db/x"],
            "unsupported database URL",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["serve", "--data-dir", data];
        full.extend_from_slice(args);
        let out = creditops(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        // Secrets in a database URL are never echoed.
        assert!(!stderr.contains("secret"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn sigterm_ends_streams_drains_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(["serve", "--dev", "--data-dir", data])
        .args(["--services", "market,risk"])
        .args(["--market-addr", "127.0.0.1:0", "--risk-addr", "127.0.0.1:0"])
        .args(["--shutdown-timeout-secs", "20"])
        .env_remove("CREDITOPS_DATABASE_URL")
        .env("CREDITOPS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("risk") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let risk = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve prints the risk address");
    let token = creditops(&[
        "token",
        "--data-dir",
        data,
        "--user",
        "rc-1",
        "--service",
        "risk",
    ]);
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    // An open event stream: without shutdown handling it would hold the
    // process until the deadline.
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("{risk}/v1/alerts/stream"))
        .bearer_auth(&token)
        .header("x-request-id", "trace-stream-1")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status().as_u16(), 200);

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    // The stream ends (the server closes it) rather than hanging.
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream did not end on SIGTERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().expect("wait");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}", status.1);
    // JSON logs: the request's line carries its id, route template and actor.
    let answered: serde_json::Value = status
        .1
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| {
            line["fields"]["message"] == "request answered"
                && line["span"]["client_request_id"] == "trace-stream-1"
        })
        .unwrap_or_else(|| panic!("no JSON line for the request: {}", status.1));
    // The request id is the server's; the client's is logged beside it.
    let id = answered["span"]["request_id"].as_str().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{answered}");
    assert_eq!(answered["span"]["route"], "/v1/alerts/stream", "{answered}");
    assert_eq!(answered["span"]["actor"], "rc-1", "{answered}");
    assert_eq!(answered["fields"]["status"], 200, "{answered}");
    assert!(status.1.contains("stopped"), "{}", status.1);
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        signalled.elapsed()
    );
    // Stopped means stopped: nothing listens any more.
    assert!(client.get(format!("{risk}/healthz")).send().await.is_err());
}
