//! Load benchmark: concurrent simulated users run full four-eyes decisions
//! over real HTTP against the platform, run as a deployment runs it
//! (`creditops serve` in its own process, built by the benchmark first), and
//! in the same run a baseline: the plain commit rate of a comparable
//! unaudited transaction on the same database at the same concurrency. CPU
//! per decision is reported for the platform's process, the load generator
//! (this process) and PostgreSQL separately.
//!
//! Each decision is seven commands, each its own audited transaction:
//! register a borrower, rate it (back office: no first vote without a
//! rating, L4), propose its limit (risk control), approve it (back office),
//! open the case, first vote (market), second vote with the risk gate and
//! the reservation (back office).
//!
//! ```sh
//! cargo bench -p creditops-tests --bench decisions                    # SQLite
//! CREDITOPS_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p creditops-tests --bench decisions                  # and PostgreSQL
//! ```
//! After the closed loop and the baselines, an open loop offers decisions at
//! a fixed arrival rate, half the saturated throughput just measured
//! (`CREDITOPS_BENCH_RATE` decisions/s instead; `CREDITOPS_BENCH_OPEN_LOOP=0`
//! skips it), and prints each command's latency at that load.
//!
//! Before the load, ten decisions run one after another against a platform
//! in this process while every SQL statement it sends is counted (sqlx
//! reports each one as a `sqlx::query` event; the sequencer's rounds on
//! PostgreSQL included): the line `N statements per decision`. `CREDITOPS_BENCH_STATEMENTS=list`
//! then lists the statements of one more decision, step by step.
//!
//! `CREDITOPS_BENCH_CLIENTS` (default 32) and `CREDITOPS_BENCH_SECONDS`
//! (default 20) set the load; `CREDITOPS_BENCH_BACKENDS` (default
//! `sqlite,postgres`) the backends. A warm-up of `CREDITOPS_BENCH_WARMUP`
//! seconds (default 10, 0 for none) runs the same load unmeasured first and
//! ends with `ANALYZE` on PostgreSQL (see [`warm_up`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_auth::DevIdentityProvider;
use creditops_domain::StaffId;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use creditops_tests::reqwest::Method;
use creditops_tests::{Backend, TestPlatform, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const TRANSACTIONS_PER_DECISION: f64 = 7.0;
const STEPS: [&str; 7] = [
    "borrower",
    "rating",
    "limit proposal",
    "limit approval",
    "case",
    "first vote",
    "second vote",
];

/// Whether statements are being counted, and how many were.
static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);
/// With `CREDITOPS_BENCH_STATEMENTS=list`, the text of every counted
/// statement and the step of the decision it ran in (the sequencer's
/// statements land in the step during which they ran).
static LISTED: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
static LISTING: AtomicBool = AtomicBool::new(false);
static STEP: AtomicUsize = AtomicUsize::new(0);

/// Counts `sqlx::query` events while [`COUNTING`] is on; sqlx asks the
/// filter at every statement and formats its event only while counting.
fn install_statement_counter() {
    // Only sqlx's statement callsites are asked each time (a plain
    // `filter_fn` would cache its first answer per callsite); every other
    // callsite stays off for good.
    let filter = tracing_subscriber::filter::dynamic_filter_fn(|metadata, _| {
        metadata.target() == "sqlx::query" && COUNTING.load(Ordering::Relaxed)
    })
    .with_callsite_filter(|metadata| {
        if metadata.target() == "sqlx::query" {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    });
    struct Count;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
            if LISTING.load(Ordering::Relaxed) {
                let mut text = StatementText(String::new());
                event.record(&mut text);
                let step = STEP.load(Ordering::Relaxed);
                LISTED.lock().unwrap().push((step, text.0));
            }
        }
    }
    struct StatementText(String);
    impl tracing::field::Visit for StatementText {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            // sqlx leaves `db.statement` empty when the summary is the
            // whole statement (BEGIN, COMMIT, a lock): keep the summary then.
            let text = format!("{value:?}");
            let empty = text == "\"\"";
            if (field.name() == "db.statement" && !empty)
                || (field.name() == "summary" && self.0.is_empty())
            {
                self.0 = text.split_whitespace().collect::<Vec<_>>().join(" ");
            }
        }
    }
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::Layer::with_filter(Count, filter))
        .try_init();
}

/// Statements per decision over `decisions` decisions run one after another.
async fn statements_per_decision(platform: &TestPlatform, decisions: u64) -> (f64, u64) {
    let target = Target::in_process(platform);
    let mut tally = Tally::new();
    STATEMENTS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..decisions {
        decide_once(&target, &mut tally).await;
    }
    COUNTING.store(false, Ordering::Relaxed);
    let counted = STATEMENTS.load(Ordering::Relaxed);
    if std::env::var("CREDITOPS_BENCH_STATEMENTS").as_deref() == Ok("list") {
        // One more decision, each statement listed under its step.
        LISTED.lock().unwrap().clear();
        LISTING.store(true, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        decide_once(&target, &mut Tally::new()).await;
        COUNTING.store(false, Ordering::Relaxed);
        LISTING.store(false, Ordering::Relaxed);
        let listed = std::mem::take(&mut *LISTED.lock().unwrap());
        for (index, step) in STEPS.iter().enumerate() {
            let mine: Vec<_> = listed.iter().filter(|(s, _)| *s == index).collect();
            println!("  {step}: {} statements", mine.len());
            for (_, text) in mine {
                println!("    {}", text.chars().take(150).collect::<String>());
            }
        }
    }
    (counted as f64 / tally.decisions.max(1) as f64, tally.errors)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    decisions: u64,
    errors: u64,
    steps: Vec<Vec<Duration>>,
}

impl Tally {
    /// No decisions yet, a latency list per step.
    fn new() -> Self {
        Self {
            steps: vec![Vec::new(); STEPS.len()],
            ..Self::default()
        }
    }
}

/// The five people of a decision and the service each acts in, in the
/// order [`decide_once`] uses their tokens.
const DECIDERS: [(&str, &str); 6] = [
    ("lo-1", "market"),
    ("rc-1", "risk"),
    ("bb-1", "backoffice"),
    ("lo-2", "market"),
    ("ba-1", "backoffice"),
    ("ba-3", "backoffice"),
];

/// Where the decisions go: each service's base URL and the deciders'
/// bearer tokens, for a platform in this process or in its own.
struct Target {
    client: creditops_tests::reqwest::Client,
    bases: BTreeMap<String, String>,
    tokens: Vec<String>,
}

impl Target {
    /// The platform of `p`, in this process.
    fn in_process(p: &TestPlatform) -> Self {
        Self {
            client: creditops_tests::reqwest::Client::new(),
            bases: creditops::ALL_SERVICES
                .iter()
                .map(|s| (s.to_string(), p.url(s, "")))
                .collect(),
            tokens: DECIDERS.iter().map(|(who, s)| p.token(who, s)).collect(),
        }
    }

    /// Sends a command as decider `who` (an index into [`DECIDERS`]); the
    /// status and the JSON body (Null if none).
    async fn send(
        &self,
        who: usize,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, serde_json::Value) {
        let service = DECIDERS[who].1;
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.bases[service]))
            .bearer_auth(&self.tokens[who]);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let Ok(response) = request.send().await else {
            return (0, serde_json::Value::Null);
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// One full decision (seven commands), each command's latency and the
/// outcome added to `tally`.
async fn decide_once(t: &Target, tally: &mut Tally) {
    STEP.store(0, Ordering::Relaxed);
    let mut timed = |index: usize, started: Instant| {
        tally.steps[index].push(started.elapsed());
        STEP.store(index + 1, Ordering::Relaxed);
    };
    let started = Instant::now();
    let borrower = json!({"name": "Last GmbH", "country": "DE", "sector": "G47"});
    let (_, borrower) = t
        .send(0, Method::POST, "/v1/borrowers", Some(borrower.to_string()))
        .await;
    timed(0, started);
    let Some(borrower) = borrower["id"].as_str().map(str::to_owned) else {
        tally.errors += 1;
        return;
    };
    let started = Instant::now();
    let rating = json!({"class": 5, "pd": "0.0015", "reason": "load"});
    let (status, _) = t
        .send(
            5,
            Method::PUT,
            &format!("/v1/borrowers/{borrower}/rating"),
            Some(rating.to_string()),
        )
        .await;
    timed(1, started);
    if status != 201 {
        tally.errors += 1;
        return;
    }
    let started = Instant::now();
    let proposal =
        json!({"kind": "borrower", "key": borrower, "amount": "1000000", "reason": "load"});
    let (_, proposal) = t
        .send(1, Method::POST, "/v1/limits", Some(proposal.to_string()))
        .await;
    timed(2, started);
    let Some(limit) = proposal["id"].as_str().map(str::to_owned) else {
        tally.errors += 1;
        return;
    };
    let started = Instant::now();
    let (status, _) = t
        .send(
            2,
            Method::POST,
            &format!("/v1/limits/{limit}/approve"),
            None,
        )
        .await;
    timed(3, started);
    if status != 200 {
        tally.errors += 1;
        return;
    }
    let started = Instant::now();
    let case = json!({"borrower_id": borrower, "amount": "1000.00", "currency": "EUR", "product": "overdraft", "term_months": 12, "purpose": "load"});
    let (_, case) = t
        .send(0, Method::POST, "/v1/cases", Some(case.to_string()))
        .await;
    timed(4, started);
    let Some(case) = case["id"].as_str().map(str::to_owned) else {
        tally.errors += 1;
        return;
    };
    let vote = json!({"decision": "approve", "rationale": "load test", "version": 1}).to_string();
    let started = Instant::now();
    let (status, _) = t
        .send(
            3,
            Method::POST,
            &format!("/v1/cases/{case}/first-vote"),
            Some(vote.clone()),
        )
        .await;
    timed(5, started);
    if status != 200 {
        tally.errors += 1;
        return;
    }
    let started = Instant::now();
    let (_, second) = t
        .send(
            4,
            Method::POST,
            &format!("/v1/cases/{case}/second-vote"),
            Some(vote),
        )
        .await;
    timed(6, started);
    if second["status"] == "approved" {
        tally.decisions += 1;
    } else {
        tally.errors += 1;
    }
}

/// One user's loop: full decisions until `deadline`.
async fn user(t: Arc<Target>, deadline: Instant) -> Tally {
    let mut tally = Tally::new();
    while Instant::now() < deadline {
        decide_once(&t, &mut tally).await;
    }
    tally
}

/// Open loop (issue 22): decisions arrive at a fixed `rate` per second for
/// `seconds`, each started on time whether or not earlier ones finished,
/// so queueing shows in the latencies instead of slowing the arrivals.
async fn open_loop(t: &Arc<Target>, rate: f64, seconds: u64) -> (Tally, f64) {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticks.tick().await;
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            decide_once(&t, &mut tally).await;
            tally
        }));
    }
    let mut total = Tally::new();
    for task in tasks {
        let tally = task.await.unwrap();
        total.decisions += tally.decisions;
        total.errors += tally.errors;
        for (all, mine) in total.steps.iter_mut().zip(tally.steps) {
            all.extend(mine);
        }
    }
    (total, started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Index arithmetic for reporting only.
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What the baselines write: a vote's body, as the decisions send it.
const BASELINE_PAYLOAD: &str =
    "{\"decision\":\"approve\",\"rationale\":\"load test\",\"version\":1}";

/// A pool of one connection per client, with the baselines' scratch table.
async fn baseline_pool(url: &str, clients: u64) -> sqlx::PgPool {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(clients).unwrap())
        .connect(url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_scratch (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// Commits per second of the plain baseline on `pool` ([`baseline_pool`]:
/// its connections, and so their server processes' CPU, outlive the run).
async fn baseline_postgres(pool: &sqlx::PgPool, clients: u64, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = 0u64;
            while Instant::now() < deadline {
                let mut tx = pool.begin().await.unwrap();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO bench_scratch (payload) VALUES ($1) RETURNING id",
                )
                .bind(BASELINE_PAYLOAD)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                sqlx::query("SELECT payload FROM bench_scratch WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                commits += 1;
            }
            commits
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / seconds as f64
}

/// Statements (reads, writes) of each of a decision's six commands without
/// their audit inserts, from PostgreSQL's statement log of one decision:
/// actor lookups, locks, rule, limit, exposure and liquidity reads; row
/// inserts, updates and claim writes.
const COMMAND_SHAPES: [(usize, usize); 6] = [(2, 1), (3, 1), (8, 1), (2, 1), (7, 2), (15, 7)];

/// A second, looser baseline on PostgreSQL: unaudited transactions shaped
/// like the six commands (the same number of reads and writes, each a
/// primary-key read or a one-row insert), run directly over SQL. What it
/// leaves out of an audited command: the audit event, HTTP, tokens, RBAC,
/// the rules, and the cost of the real statements (joins, foreign keys,
/// triggers, row security). Returns transactions per second.
async fn command_shaped_baseline_postgres(pool: &sqlx::PgPool, clients: u64, seconds: u64) -> f64 {
    const ROWS: i64 = 10_000;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO bench_rows SELECT g, md5(g::text) FROM generate_series(1, $1) AS g ON CONFLICT DO NOTHING")
        .bind(ROWS)
        .execute(pool)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = 0u64;
            let mut row = i64::try_from(client).unwrap() * 997;
            'decisions: while Instant::now() < deadline {
                for (reads, writes) in COMMAND_SHAPES {
                    let mut tx = pool.begin().await.unwrap();
                    for _ in 0..reads {
                        row = (row + 7919) % ROWS + 1;
                        sqlx::query("SELECT payload FROM bench_rows WHERE id = $1")
                            .bind(row)
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                    }
                    for _ in 0..writes {
                        sqlx::query("INSERT INTO bench_scratch (payload) VALUES ($1)")
                            .bind(BASELINE_PAYLOAD)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                    commits += 1;
                    if Instant::now() >= deadline {
                        break 'decisions;
                    }
                }
            }
            commits
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / seconds as f64
}

async fn baseline_sqlite(path: &std::path::Path, clients: u64, seconds: u64) -> f64 {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    // One writer connection, as the store uses: SQLite has one writer.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_scratch (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = 0u64;
            while Instant::now() < deadline {
                let mut tx = pool.begin().await.unwrap();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO bench_scratch (payload) VALUES (?) RETURNING id",
                )
                .bind(BASELINE_PAYLOAD)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                sqlx::query("SELECT payload FROM bench_scratch WHERE id = ?")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                commits += 1;
            }
            commits
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / seconds as f64
}

/// CPU seconds used so far by this process and by the local PostgreSQL
/// server's processes (all of them: backends, WAL writer, autovacuum), read
/// from `/proc`. The server's figure is `None` when no process named
/// `postgres` is visible (a remote server).
#[derive(Clone, Copy)]
struct CpuSample {
    this_process: f64,
    platform: f64,
    postgres: Option<f64>,
}

/// Linux reports `/proc/*/stat` times in USER_HZ units, 100 a second on
/// every architecture it supports.
const TICKS_PER_SECOND: f64 = 100.0;

fn stat_cpu_seconds(stat: &str) -> Option<(String, f64)> {
    // `pid (comm) state ...`: comm may contain spaces, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after comm.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (user + system) / TICKS_PER_SECOND))
}

fn process_cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_cpu_seconds(&stat))
        .map_or(0.0, |(_, seconds)| seconds)
}

/// CPU seconds so far of this process (the load generator), of the
/// platform's process `platform` and of PostgreSQL.
fn cpu_sample(platform: u32) -> CpuSample {
    let this_process = process_cpu_seconds("self");
    let platform = process_cpu_seconds(&platform.to_string());
    let mut postgres = None;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some((comm, seconds)) = stat_cpu_seconds(&stat)
                && comm == "postgres"
            {
                *postgres.get_or_insert(0.0) += seconds;
            }
        }
    }
    CpuSample {
        this_process,
        platform,
        postgres,
    }
}

/// CPU milliseconds per unit of work between two samples, as text (the
/// database server's share only where it is PostgreSQL: SQLite runs in the
/// platform's process).
fn cpu_per(backend: Backend, before: CpuSample, after: CpuSample, units: f64) -> String {
    let ms = |seconds: f64| seconds * 1000.0 / units.max(1.0);
    let mut text = format!(
        "platform {:.2} ms, load generator {:.2} ms",
        ms(after.platform - before.platform),
        ms(after.this_process - before.this_process)
    );
    if let (Backend::Postgres, Some(a), Some(b)) = (backend, after.postgres, before.postgres) {
        text.push_str(&format!(", PostgreSQL {:.2} ms", ms(a - b)));
    }
    text
}

/// Peak resident memory of process `pid` (`self` for this one).
fn rss_mb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// The platform as a deployment runs it: `creditops serve --dev` in its own
/// process, on a fresh database (a new PostgreSQL database, or SQLite in
/// its data dir), every service on a free port.
struct ServedPlatform {
    child: tokio::process::Child,
    pid: u32,
    data_dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    target: Arc<Target>,
}

impl ServedPlatform {
    async fn start(backend: Backend) -> Option<Self> {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create(&pg_test_url()?).await),
        };
        let data_dir = tempfile::tempdir().unwrap();
        // As an operator keeps it: the dev keys are in it.
        std::fs::set_permissions(
            data_dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut command = tokio::process::Command::new(platform_binary());
        command
            .arg("serve")
            .arg("--dev")
            .arg("--data-dir")
            .arg(data_dir.path());
        for service in creditops::ALL_SERVICES {
            command.arg(format!("--{service}-addr")).arg("127.0.0.1:0");
        }
        if let Some(database) = &database {
            command.env("CREDITOPS_DATABASE_URL", &database.url);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the platform starts");
        let pid = child.id().unwrap();
        // `serve` prints `<service> http://<addr>` for each service once it listens.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut bases = BTreeMap::new();
        while bases.len() < creditops::ALL_SERVICES.len() {
            let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
                .await
                .expect("the platform listens within two minutes")
                .unwrap()
                .expect("the platform prints its addresses");
            if let Some((service, url)) = line.split_once(char::is_whitespace)
                && creditops::ALL_SERVICES.contains(&service)
            {
                bases.insert(service.to_owned(), url.trim().to_owned());
            }
        }
        // Whatever else it prints is drained, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let idp = DevIdentityProvider::load(data_dir.path()).unwrap();
        let tokens = DECIDERS
            .iter()
            .map(|(who, service)| {
                idp.mint(&StaffId::parse(who).unwrap(), service, 3600)
                    .unwrap()
            })
            .collect();
        let target = Arc::new(Target {
            client: creditops_tests::reqwest::Client::new(),
            bases,
            tokens,
        });
        Some(Self {
            child,
            pid,
            data_dir,
            database,
            target,
        })
    }

    /// Stops the platform as an operator would (SIGTERM: it drains and
    /// exits), then drops its database.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        if let Some(database) = self.database {
            database.drop_database().await;
        }
    }
}

/// The `creditops` binary of this build's profile, built first (so the
/// benchmark never measures a stale platform): this benchmark runs from
/// `<target>/<profile>/deps/`, and the binary lands in `<target>/<profile>/`.
fn platform_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => "release",
    };
    let target_dir = profile_dir.parent().unwrap();
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "creditops", "--bin", "creditops"])
        .args(["--profile", profile, "--target-dir"])
        .arg(target_dir)
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cargo build -p creditops failed");
    profile_dir.join("creditops")
}

/// Runs `clients` users for `seconds` and discards what they measured, then
/// refreshes the planner statistics, as autovacuum does within a minute on
/// any running database: otherwise the measured window would start with
/// query plans made for empty tables.
async fn warm_up(platform: &ServedPlatform, clients: u64, seconds: u64) {
    if seconds == 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let users: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(user(platform.target.clone(), deadline)))
        .collect();
    let mut decisions = 0;
    for user in users {
        decisions += user.await.unwrap().decisions;
    }
    if let Some(database) = &platform.database {
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
            .await
            .unwrap();
        sqlx::query("ANALYZE")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    println!("  warm-up: {decisions} decisions in {seconds} s, then ANALYZE");
}

/// The statements of a decision, counted with the platform in this process
/// (sqlx reports each statement to this process's tracing subscriber).
async fn count_statements(backend: Backend) {
    let Some(platform) = TestPlatform::start(backend).await else {
        return;
    };
    // The rating is a command of its own in every decision (timed as such).
    platform.without_automatic_ratings();
    let (statements, errors) = statements_per_decision(&platform, 10).await;
    println!(
        "{backend:?}: {statements:.1} statements per decision (10 decisions one after another, \
         {errors} errors; target <= 35)"
    );
    platform.stop().await;
}

async fn run(backend: Backend, clients: u64, seconds: u64, warmup: u64) {
    count_statements(backend).await;
    let Some(platform) = ServedPlatform::start(backend).await else {
        return;
    };
    println!("{backend:?}: the platform runs as its own process (creditops serve)");
    warm_up(&platform, clients, warmup).await;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let cpu_before = cpu_sample(platform.pid);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(user(platform.target.clone(), deadline)));
    }
    let mut total = Tally::new();
    for task in tasks {
        let tally = task.await.unwrap();
        total.decisions += tally.decisions;
        total.errors += tally.errors;
        for (all, mine) in total.steps.iter_mut().zip(tally.steps) {
            all.extend(mine);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_sample(platform.pid);
    let decisions_per_second = total.decisions as f64 / elapsed;
    println!(
        "{backend:?}, {clients} clients, {seconds} s: {} decisions ({decisions_per_second:.1}/s), {} errors",
        total.decisions, total.errors
    );
    for (name, samples) in STEPS.iter().zip(total.steps.iter_mut()) {
        samples.sort();
        println!(
            "  {name:<15} p50 {:>8.1?}  p95 {:>8.1?}  p99 {:>8.1?}",
            percentile(samples, 0.5),
            percentile(samples, 0.95),
            percentile(samples, 0.99)
        );
    }
    let baseline_pool = match &platform.database {
        Some(database) => Some(baseline_pool(&database.url, clients).await),
        None => None,
    };
    // Half the closed loop's time, at least a second (no rate from 0 s).
    let baseline_seconds = (seconds / 2).max(1);
    let baseline_cpu_before = cpu_sample(platform.pid);
    let baseline = match &baseline_pool {
        Some(pool) => baseline_postgres(pool, clients, baseline_seconds).await,
        None => {
            baseline_sqlite(
                &platform.data_dir.path().join("creditops.db"),
                clients,
                baseline_seconds,
            )
            .await
        }
    };
    let baseline_cpu_after = cpu_sample(platform.pid);
    let ours = decisions_per_second * TRANSACTIONS_PER_DECISION;
    println!(
        "  audited commands {ours:.0}/s vs baseline unaudited commits {baseline:.0}/s: ratio {:.2}",
        ours / baseline
    );
    // Where the time goes: on a CPU-bound machine the ratio is the CPU a
    // baseline commit costs over the CPU an audited command costs.
    println!(
        "  CPU per decision: {}",
        cpu_per(backend, cpu_before, cpu_after, total.decisions as f64)
    );
    println!(
        "  CPU per baseline commit: {}",
        cpu_per(
            backend,
            baseline_cpu_before,
            baseline_cpu_after,
            baseline * baseline_seconds as f64
        )
    );
    if let Some(pool) = &baseline_pool {
        let shaped = command_shaped_baseline_postgres(pool, clients, baseline_seconds).await;
        println!(
            "  vs unaudited command-shaped transactions (same reads and writes, plain SQL) {shaped:.0}/s: ratio {:.2}",
            ours / shaped
        );
    }
    if let (Some(platform_mb), Some(load_mb)) = (rss_mb(&platform.pid.to_string()), rss_mb("self"))
    {
        println!("  peak RSS: platform {platform_mb} MB, load generator {load_mb} MB");
    }
    // Latency at a realistic load: an open loop at half the saturated
    // throughput just measured (or CREDITOPS_BENCH_RATE decisions/s).
    let rate = std::env::var("CREDITOPS_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(decisions_per_second / 2.0);
    if rate > 0.0 && env_or("CREDITOPS_BENCH_OPEN_LOOP", 1) == 1 {
        let (mut open, elapsed) = open_loop(&platform.target, rate, seconds).await;
        println!(
            "  open loop at {rate:.1} decisions/s for {seconds} s: {} decisions ({:.1}/s), {} errors",
            open.decisions,
            open.decisions as f64 / elapsed,
            open.errors
        );
        let mut worst = Duration::ZERO;
        for (name, samples) in STEPS.iter().zip(open.steps.iter_mut()) {
            samples.sort();
            let p99 = percentile(samples, 0.99);
            worst = worst.max(p99);
            println!(
                "    {name:<15} p50 {:>8.1?}  p95 {:>8.1?}  p99 {:>8.1?}",
                percentile(samples, 0.5),
                percentile(samples, 0.95),
                p99
            );
        }
        println!("  open loop: worst p99 per command {worst:.1?} (target <= 25 ms)");
    }
    platform.stop().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "decision load benchmark: run with `cargo bench -p creditops-tests --bench decisions`"
        );
        return;
    }
    install_statement_counter();
    let clients = env_or("CREDITOPS_BENCH_CLIENTS", 32);
    let seconds = env_or("CREDITOPS_BENCH_SECONDS", 20);
    let warmup = env_or("CREDITOPS_BENCH_WARMUP", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let backends =
        std::env::var("CREDITOPS_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    runtime.block_on(async {
        for backend in backends.split(',') {
            match backend.trim() {
                "sqlite" => run(Backend::Sqlite, clients, seconds, warmup).await,
                "postgres" => run(Backend::Postgres, clients, seconds, warmup).await,
                other => eprintln!("CREDITOPS_BENCH_BACKENDS: unknown backend {other:?}"),
            }
        }
    });
}
