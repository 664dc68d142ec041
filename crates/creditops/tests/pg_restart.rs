//! PostgreSQL restart under load (issue 7.2): `creditops serve` (the real
//! binary) runs against a private PostgreSQL cluster started for this test
//! only, while clients register borrowers, get their limits approved, open
//! cases and cast both votes. The cluster is stopped with `pg_ctl stop -m
//! immediate` (every backend killed, crash recovery at the next start) and
//! started again, without restarting creditops.
//!
//! What it proves:
//! - while the database is down, the services answer 503
//!   `application/problem+json` with `Retry-After` within a bounded time
//!   (no 500, no hanging request), `/readyz` fails and `/metrics` reports
//!   the database down;
//! - after the restart the platform recovers by itself: `/readyz` passes
//!   again and the clients' commands succeed;
//! - every write a client saw acknowledged (2xx) is there afterwards;
//! - the audit sequencer resumes by itself (every committed event gets
//!   linked without a reader's flush), the chain verifies and
//!   reconciliation finds every business row's event.
//!
//! The test run does 1 restart; `CREDITOPS_PG_RESTARTS=10 cargo test -p
//! creditops --test pg_restart -- --nocapture` is the long version. It
//! needs the PostgreSQL server binaries (found with `pg_config --bindir`);
//! without them it is skipped with a notice, unless `CREDITOPS_REQUIRE_PG=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
/// How long the clients work before each stop and after each start.
const LOAD: Duration = Duration::from_millis(1500);
/// How long the database stays down (the clients keep trying).
const DOWN: Duration = Duration::from_secs(2);
/// The longest a request may take while the database is down: the pool's
/// acquire timeout (5 s) plus slack for a loaded machine.
const ANSWER_BOUND: Duration = Duration::from_secs(15);
/// How long the platform may take to become ready after the restart.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

// -- a private PostgreSQL cluster -------------------------------------------

/// A throw-away PostgreSQL cluster on a free port of 127.0.0.1, its socket in
/// its own directory. Stopped (immediately) when dropped.
struct Cluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    /// `initdb` refuses to run as root: then every server command runs as
    /// the `postgres` user, which owns the cluster's directory.
    as_postgres: bool,
}

fn require_pg() -> bool {
    std::env::var("CREDITOPS_REQUIRE_PG").as_deref() == Ok("1")
}

/// Skips (returns `None`) with a printed reason, or fails when PostgreSQL is
/// required.
fn unavailable(reason: &str) -> Option<Cluster> {
    assert!(
        !require_pg(),
        "CREDITOPS_REQUIRE_PG=1 but no private PostgreSQL cluster can be started: {reason}"
    );
    println!("skipping the PostgreSQL restart test: {reason}");
    None
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Cluster {
    fn create() -> Option<Cluster> {
        let bin = match output(Command::new("pg_config").arg("--bindir")) {
            Ok(dir) => PathBuf::from(dir),
            Err(e) => return unavailable(&format!("pg_config is not available ({e})")),
        };
        if !bin.join("initdb").exists() || !bin.join("pg_ctl").exists() {
            return unavailable(&format!(
                "no initdb/pg_ctl in {} (PostgreSQL server binaries not installed)",
                bin.display()
            ));
        }
        let as_postgres = output(Command::new("id").arg("-u")).as_deref() == Ok("0");
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join("socket")).expect("socket dir");
        if as_postgres
            && let Err(e) = output(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(root.path()),
            )
        {
            return unavailable(&format!(
                "running as root, but the cluster cannot be given to the postgres user ({e})"
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cluster = Cluster {
            bin,
            root,
            port,
            as_postgres,
        };
        let data = cluster.data_dir();
        if let Err(e) = output(cluster.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ])) {
            return unavailable(&format!("initdb failed: {e}"));
        }
        Some(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.root.path().join("socket").display()
        );
        output(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.root.path().join("server.log"))
                .args(["-w", "-t", "120", "-o", &options, "start"]),
        )
        .unwrap_or_else(|e| panic!("PostgreSQL does not start: {e}\n{}", self.log()));
    }

    /// Every backend is killed at once; the next start runs crash recovery.
    fn stop_immediately(&self) -> Result<String, String> {
        output(self.command("pg_ctl").arg("-D").arg(self.data_dir()).args([
            "-w",
            "-m",
            "immediate",
            "stop",
        ]))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
    }
}

// -- the platform under test ------------------------------------------------

struct Server {
    child: Child,
    urls: BTreeMap<String, String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path, database_url: &str) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_creditops"));
    command
        .args(["serve", "--dev", "--data-dir"])
        .arg(data_dir)
        .args(["--database-url", database_url])
        .env_remove("CREDITOPS_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(data_dir.join("serve.log")).expect("log file"),
        ));
    for service in ["market", "backoffice", "risk", "audit", "admin"] {
        command.args([&format!("--{service}-addr"), "127.0.0.1:0"]);
    }
    let mut child = command.spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((service, url)) = line.split_once(" http://") {
                let _ = tx.send((service.trim().to_owned(), format!("http://{}", url.trim())));
            }
        }
    });
    let mut urls = BTreeMap::new();
    while urls.len() < 5 {
        let (service, url) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints every service's address");
        urls.insert(service, url);
    }
    Server { child, urls }
}

fn token(data_dir: &Path, user: &str, service: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(["token", "--data-dir"])
        .arg(data_dir)
        .args(["--user", user, "--service", service])
        .output()
        .expect("token");
    assert!(out.status.success(), "token for {user}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// The base URLs and a token per (user, service) the clients need.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    urls: BTreeMap<String, String>,
    tokens: BTreeMap<&'static str, String>,
}

/// One answer as the client saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    problem_json: bool,
    retry_after: bool,
    body: serde_json::Value,
    took: Duration,
}

impl Api {
    async fn send(
        &self,
        user: &'static str,
        service: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        self.send_as(reqwest::Method::POST, user, service, path, body)
            .await
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        user: &'static str,
        service: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let started = Instant::now();
        let url = format!("{}{path}", self.urls[service]);
        let mut request = match &body {
            Some(body) => self.client.request(method, url).json(body),
            None => self.client.request(method, url),
        };
        request = request.bearer_auth(&self.tokens[user]);
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} got no answer: {e}"));
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).is_some();
        let problem_json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json");
        let retry_after = header("retry-after");
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            problem_json,
            retry_after,
            body,
            took: started.elapsed(),
        }
    }

    async fn get(&self, service: &str, user: &'static str, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.urls[service]))
            .bearer_auth(&self.tokens[user])
            .send()
            .await
            .expect("get");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    async fn ready(&self, service: &str) -> u16 {
        match self
            .client
            .get(format!("{}/readyz", self.urls[service]))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// What the clients saw acknowledged.
#[derive(Default)]
struct Acked {
    borrowers: Vec<String>,
    cases: Vec<String>,
    first_votes: Vec<String>,
    approvals: Vec<String>,
    /// Acknowledgements since the last restart (recovery shows in these).
    since_restart: usize,
}

/// Every answer the clients saw that was not a success.
#[derive(Default)]
struct Refusals {
    unavailable: usize,
    other: Vec<String>,
    slowest: Duration,
}

/// Checks an answer: a success, or a well-formed 503 in bounded time.
fn classify(answer: &Answer, what: &str, refusals: &Mutex<Refusals>) -> bool {
    let mut refusals = refusals.lock().expect("lock");
    refusals.slowest = refusals.slowest.max(answer.took);
    if (200..300).contains(&answer.status) {
        return true;
    }
    if answer.status == 503 && answer.problem_json && answer.retry_after {
        refusals.unavailable += 1;
    } else {
        refusals.other.push(format!(
            "{what}: {} (problem+json {}, Retry-After {}) {}",
            answer.status, answer.problem_json, answer.retry_after, answer.body
        ));
    }
    false
}

/// One client: the full four-eyes path over and over; a failed step (the
/// database is down) abandons the path and starts a new one.
async fn client(
    api: Api,
    n: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
    refusals: Arc<Mutex<Refusals>>,
) {
    let ack = |f: &dyn Fn(&mut Acked)| {
        let mut acked = acked.lock().expect("lock");
        f(&mut acked);
        acked.since_restart += 1;
    };
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let pause = || tokio::time::sleep(Duration::from_millis(100));
        let borrower = api
            .send(
                "lo-1",
                "market",
                "/v1/borrowers",
                Some(serde_json::json!({"name": format!("Restart {n}-{round} GmbH"), "country": "DE", "sector": "C25"})),
            )
            .await;
        if !classify(&borrower, "create borrower", &refusals) {
            pause().await;
            continue;
        }
        let borrower_id = borrower.body["id"].as_str().expect("id").to_owned();
        ack(&|a| a.borrowers.push(borrower_id.clone()));
        // Back office rates the borrower: no first vote without it (L4).
        let rating = api
            .send_as(
                reqwest::Method::PUT,
                "ba-1",
                "backoffice",
                &format!("/v1/borrowers/{borrower_id}/rating"),
                Some(serde_json::json!({"class": 5, "pd": "0.0015", "reason": "restart test"})),
            )
            .await;
        if !classify(&rating, "set rating", &refusals) {
            pause().await;
            continue;
        }
        let limit = api
            .send(
                "rc-1",
                "risk",
                "/v1/limits",
                Some(serde_json::json!({"kind": "borrower", "key": borrower_id, "amount": "100000000", "reason": "restart test"})),
            )
            .await;
        if !classify(&limit, "propose limit", &refusals) {
            pause().await;
            continue;
        }
        let limit_id = limit.body["id"].as_str().expect("limit id").to_owned();
        let approved = api
            .send(
                "bb-1",
                "backoffice",
                &format!("/v1/limits/{limit_id}/approve"),
                None,
            )
            .await;
        if !classify(&approved, "approve limit", &refusals) {
            pause().await;
            continue;
        }
        let case = api
            .send(
                "lo-1",
                "market",
                "/v1/cases",
                Some(serde_json::json!({"borrower_id": borrower_id, "amount": "200000.00", "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "machinery"})),
            )
            .await;
        if !classify(&case, "open case", &refusals) {
            pause().await;
            continue;
        }
        let case_id = case.body["id"].as_str().expect("case id").to_owned();
        ack(&|a| a.cases.push(case_id.clone()));
        let vote =
            serde_json::json!({"decision": "approve", "rationale": "restart test", "version": 1});
        let first = api
            .send(
                "lo-2",
                "market",
                &format!("/v1/cases/{case_id}/first-vote"),
                Some(vote.clone()),
            )
            .await;
        if !classify(&first, "first vote", &refusals) {
            pause().await;
            continue;
        }
        ack(&|a| a.first_votes.push(case_id.clone()));
        let second = api
            .send(
                "ba-1",
                "backoffice",
                &format!("/v1/cases/{case_id}/second-vote"),
                Some(vote),
            )
            .await;
        if !classify(&second, "second vote", &refusals) {
            pause().await;
            continue;
        }
        assert_eq!(second.body["status"], "approved", "{}", second.body);
        ack(&|a| a.approvals.push(case_id.clone()));
    }
}

/// `/readyz` of several services, asked at the same time.
async fn ready_all(api: &Api, services: &[&str]) -> Vec<u16> {
    let mut answers = Vec::new();
    let handles: Vec<_> = services
        .iter()
        .map(|service| {
            let (api, service) = (api.clone(), service.to_string());
            tokio::spawn(async move { api.ready(&service).await })
        })
        .collect();
    for handle in handles {
        answers.push(handle.await.expect("readyz"));
    }
    answers
}

async fn unlinked_events(url: &str) -> Option<i64> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .ok()?;
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_entries e WHERE NOT EXISTS \
         (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id)",
    )
    .fetch_one(&mut conn)
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let restarts: usize = std::env::var("CREDITOPS_PG_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let started = Instant::now();
    cluster.start();
    let url = cluster.url();
    let dir = tempfile::tempdir().expect("data dir");
    let server = serve(dir.path(), &url);
    let mut tokens = BTreeMap::new();
    for (user, service) in [
        ("lo-1", "market"),
        ("lo-2", "market"),
        ("ba-1", "backoffice"),
        ("bb-1", "backoffice"),
        ("rc-1", "risk"),
        ("ia-1", "audit"),
    ] {
        tokens.insert(user, token(dir.path(), user, service));
    }
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        urls: server.urls.clone(),
        tokens,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let refusals = Arc::new(Mutex::new(Refusals::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                api.clone(),
                n,
                stop.clone(),
                acked.clone(),
                refusals.clone(),
            ))
        })
        .collect();

    for restart in 1..=restarts {
        tokio::time::sleep(LOAD).await;
        cluster
            .stop_immediately()
            .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));

        // Down: a command is refused as unavailable, in bounded time;
        // readiness and the metrics say so. (Asked at once: each answer
        // takes up to the pool's acquire timeout.)
        let metrics = async {
            api.client
                .get(format!("{}/metrics", api.urls["market"]))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text")
        };
        let (probe, ready, metrics) = tokio::join!(
            api.send(
                "lo-1",
                "market",
                "/v1/borrowers",
                Some(serde_json::json!({"name": "Probe GmbH", "country": "DE", "sector": "G47"})),
            ),
            ready_all(&api, &["market", "backoffice", "audit"]),
            metrics,
        );
        assert_eq!(probe.status, 503, "while the database is down: {probe:?}");
        assert!(probe.problem_json && probe.retry_after, "{probe:?}");
        assert!(
            probe.took < ANSWER_BOUND,
            "the answer took {:?}",
            probe.took
        );
        assert_eq!(ready, [503, 503, 503], "/readyz while down");
        assert!(
            metrics.contains("creditops_database_up{service=\"market\"} 0"),
            "{metrics}"
        );
        tokio::time::sleep(DOWN).await;

        cluster.start();
        acked.lock().expect("lock").since_restart = 0;
        // Up again: the platform recovers by itself, creditops keeps running.
        let deadline = Instant::now() + RECOVERY_BOUND;
        for service in ["market", "backoffice", "risk", "audit"] {
            while api.ready(service).await != 200 {
                assert!(
                    Instant::now() < deadline,
                    "{service} does not become ready again"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(LOAD).await;
        let deadline = Instant::now() + RECOVERY_BOUND;
        while acked.lock().expect("lock").since_restart == 0 {
            assert!(
                Instant::now() < deadline,
                "no command succeeds after restart {restart}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("restart {restart}: recovered");
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }

    // No answer other than success or a well-formed 503, none too slow.
    let refusals = Arc::try_unwrap(refusals)
        .ok()
        .expect("clients done")
        .into_inner()
        .expect("lock");
    assert!(
        refusals.other.is_empty(),
        "answers other than 2xx or 503 problem+json with Retry-After: {:#?}",
        refusals.other
    );
    assert!(
        refusals.slowest < ANSWER_BOUND,
        "slowest answer {:?}",
        refusals.slowest
    );

    // Every acknowledged write is there.
    let acked = Arc::try_unwrap(acked)
        .ok()
        .expect("clients done")
        .into_inner()
        .expect("lock");
    for id in &acked.borrowers {
        let (status, _) = api
            .get("market", "lo-1", &format!("/v1/borrowers/{id}"))
            .await;
        assert_eq!(status, 200, "acknowledged borrower {id} is lost");
    }
    for id in &acked.cases {
        let (status, case) = api.get("market", "lo-1", &format!("/v1/cases/{id}")).await;
        assert_eq!(status, 200, "acknowledged case {id} is lost");
        let stages: Vec<&str> = case["votes"]
            .as_array()
            .expect("votes")
            .iter()
            .filter_map(|v| v["stage"].as_str())
            .collect();
        if acked.first_votes.contains(id) {
            assert!(
                stages.contains(&"first"),
                "acknowledged first vote on {id} is lost: {case}"
            );
        }
        if acked.approvals.contains(id) {
            assert_eq!(
                case["status"], "approved",
                "acknowledged approval of {id} is lost"
            );
        }
    }

    // The sequencer resumed by itself: everything committed gets linked
    // without any reader flushing.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match unlinked_events(&url).await {
            Some(0) => break,
            other => assert!(
                Instant::now() < deadline,
                "the audit sequencer does not resume: {other:?} events unlinked"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let verify = api.send("ia-1", "audit", "/v1/verify", None).await;
    assert_eq!(verify.status, 200, "{:?}", verify.body);
    assert_eq!(
        verify.body["ok"], true,
        "the chain verifies: {}",
        verify.body
    );
    let (status, reconcile) = api.get("audit", "ia-1", "/v1/reconcile").await;
    assert_eq!(
        (status, &reconcile["ok"]),
        (200, &serde_json::json!(true)),
        "{reconcile}"
    );

    drop(server);
    let out = Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", &url])
        .env_remove("CREDITOPS_DATABASE_URL")
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "creditops audit verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    println!(
        "{restarts} restarts in {:.1} s: {} borrowers, {} cases, {} approvals acknowledged, none lost; \
         {} answers 503 while down, slowest answer {} ms; chain of {} events verifies",
        started.elapsed().as_secs_f64(),
        acked.borrowers.len(),
        acked.cases.len(),
        acked.approvals.len(),
        refusals.unavailable,
        refusals.slowest.as_millis(),
        verify.body["events"]
    );
}
