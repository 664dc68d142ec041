//! Page-render benchmark of the web console (issue 19): with 10,000 open
//! cases in the database, 20 concurrent users with live sessions load the
//! pages of their desks over real HTTP, and in the same run the same users
//! read the same cases through the JSON API (the baseline: what the data
//! costs without the page). Reports p50, p99 and max per page and the ratio
//! of each page's p99 to the API's, and each page's weight.
//!
//! ```sh
//! cargo bench -p creditops-tests --bench console_pages                  # SQLite
//! CREDITOPS_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p creditops-tests --bench console_pages                # and PostgreSQL
//! ```
//! `CREDITOPS_BENCH_CASES` (default 10000), `CREDITOPS_BENCH_USERS` (default
//! 20) and `CREDITOPS_BENCH_SECONDS` (default 15) set the load;
//! `CREDITOPS_BENCH_BACKENDS` (default `sqlite,postgres`) the backends. After
//! the bulk load PostgreSQL's statistics are refreshed (`ANALYZE`) and the
//! same users run `CREDITOPS_BENCH_WARMUP` seconds (default 5) unmeasured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::console::ConsoleClient;
use creditops_tests::reqwest::Method;
use creditops_tests::{Backend, TestPlatform, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Index arithmetic for reporting only.
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Opens `count` cases (one borrower per hundred) with 8 writers; the
/// first vote on every second one puts it into the back office's queue.
async fn open_cases(p: &Arc<TestPlatform>, count: u64) -> Vec<String> {
    let borrowers: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..count.div_ceil(100) {
            ids.push(
                p.borrower_with_limit(
                    "lo-1",
                    json!({"name": "Bench GmbH", "country": "DE", "sector": "C25"}),
                )
                .await,
            );
        }
        ids
    };
    let borrowers = Arc::new(borrowers);
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (p, borrowers) = (p.clone(), borrowers.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = w;
            while i < count {
                let borrower = &borrowers[(i / 100) as usize];
                let case = p
                    .call(
                        "lo-1",
                        "market",
                        Method::POST,
                        "/v1/cases",
                        Some(json!({"borrower_id": borrower, "amount": "250000.00",
                            "currency": "EUR", "product": "term_loan", "term_months": 60,
                            "purpose": "machinery"})),
                    )
                    .await;
                let id = case.ok(201)["id"].as_str().unwrap().to_owned();
                if i % 2 == 0 {
                    p.call(
                        "lo-2",
                        "market",
                        Method::POST,
                        &format!("/v1/cases/{id}/first-vote"),
                        Some(json!({"decision": "approve", "rationale": "bench", "version": 1})),
                    )
                    .await
                    .ok(200);
                }
                ids.push(id);
                i += writers;
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    ids
}

/// What one user loads, in turn: `(label, service, path)`; `{case}` is a
/// case id picked at random for each request.
fn pages_of(desk: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    match desk {
        "market" => vec![
            ("market: case list", "market", "/console/cases?state=draft"),
            ("market: case page", "market", "/console/cases/{case}"),
            (
                "API: GET /v1/cases/{id} (market)",
                "market",
                "/v1/cases/{case}",
            ),
        ],
        "backoffice" => vec![
            ("back office: queue", "backoffice", "/console/queue"),
            (
                "back office: case page with gate",
                "backoffice",
                "/console/cases/{case}",
            ),
            (
                "API: GET /v1/cases/{id} (back office)",
                "backoffice",
                "/v1/cases/{case}",
            ),
        ],
        "risk" => vec![
            ("risk: limits", "risk", "/console/limits"),
            ("risk: exposure", "risk", "/console/exposure"),
        ],
        "admin" => vec![("admin: staff directory", "admin", "/console/staff")],
        _ => vec![("audit: event search", "audit", "/console/events")],
    }
}

fn user_of(desk: &str) -> &'static str {
    match desk {
        "market" => "lo-2",
        "backoffice" => "ba-1",
        "risk" => "rc-1",
        "admin" => "ua-1",
        _ => "ia-1",
    }
}

type Samples = BTreeMap<&'static str, (Vec<Duration>, usize)>;

/// One user: signs in at `desk` and loads its pages until `deadline`.
async fn user(
    p: Arc<TestPlatform>,
    desk: &'static str,
    cases: Arc<Vec<String>>,
    seed: u64,
    deadline: Instant,
    think: Duration,
) -> Samples {
    let mut console = ConsoleClient::new(&p.url(desk, ""));
    let login = console.login(user_of(desk)).await;
    assert_eq!(login.status.as_u16(), 303, "{}", login.body);
    let token = p.token(user_of(desk), desk);
    let api = creditops_tests::reqwest::Client::new();
    let mut rng = creditops_tests::Rng::new(seed);
    let mut samples = Samples::new();
    let pages = pages_of(desk);
    let mut turn = 0;
    while Instant::now() < deadline {
        let (label, service, template) = pages[turn % pages.len()];
        turn += 1;
        let path = template.replace("{case}", &cases[rng.below(cases.len())]);
        let started = Instant::now();
        let bytes = if path.starts_with("/v1/") {
            let response = api
                .get(p.url(service, &path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.bytes().await.unwrap().len()
        } else {
            let page = console.get(&path).await;
            assert_eq!(page.status.as_u16(), 200, "{path}: {}", page.body);
            page.body.len()
        };
        let entry = samples.entry(label).or_default();
        entry.0.push(started.elapsed());
        entry.1 = entry.1.max(bytes);
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
    samples
}

async fn run(
    backend: Backend,
    cases: u64,
    users: u64,
    (warmup, seconds): (u64, u64),
    think: Duration,
) {
    let Some(p) = TestPlatform::start(backend).await else {
        println!("{backend:?}: skipped (no database configured)");
        return;
    };
    let p = Arc::new(p);
    let seeded = Instant::now();
    let ids = Arc::new(open_cases(&p, cases).await);
    // After the bulk load, as after a day's business: statistics current.
    if let Some(url) = p.database_url.as_deref() {
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        sqlx::query("ANALYZE")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    println!(
        "{backend:?}: {} open cases in {:.1} s; {users} users for {seconds} s, {} ms between pages",
        ids.len(),
        seeded.elapsed().as_secs_f64(),
        think.as_millis()
    );
    // The desks' share of the users: market and back office carry the load.
    let desks = [
        "market",
        "backoffice",
        "market",
        "backoffice",
        "risk",
        "audit",
        "admin",
    ];
    // A warm-up with the same users, not measured (caches, pools, plans).
    let warm = Instant::now() + Duration::from_secs(warmup);
    let mut warming = Vec::new();
    for u in 0..users {
        let desk = desks[(u as usize) % desks.len()];
        warming.push(tokio::spawn(user(
            p.clone(),
            desk,
            ids.clone(),
            u + 101,
            warm,
            think,
        )));
    }
    for task in warming {
        task.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for u in 0..users {
        let desk = desks[(u as usize) % desks.len()];
        tasks.push(tokio::spawn(user(
            p.clone(),
            desk,
            ids.clone(),
            u + 1,
            deadline,
            think,
        )));
    }
    let mut all = Samples::new();
    for task in tasks {
        for (label, (mut times, bytes)) in task.await.unwrap() {
            let entry = all.entry(label).or_default();
            entry.0.append(&mut times);
            entry.1 = entry.1.max(bytes);
        }
    }
    let stylesheet = ConsoleClient::new(&p.url("market", ""))
        .get("/console/assets/console.css")
        .await
        .body
        .len();
    for (times, _) in all.values_mut() {
        times.sort();
    }
    let api_p99: BTreeMap<&str, Duration> = all
        .iter()
        .filter(|(label, _)| label.starts_with("API"))
        .map(|(label, (times, _))| (*label, percentile(times, 0.99)))
        .collect();
    let api_p99 = |desk: &str| {
        api_p99
            .iter()
            .find(|(label, _)| label.contains(desk))
            .map(|(_, p99)| *p99)
    };
    println!(
        "{:<40} {:>7} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "page", "loads", "p50 ms", "p99 ms", "max ms", "p99/API", "KB+css"
    );
    for (label, (times, bytes)) in &all {
        let p99 = percentile(times, 0.99);
        let baseline = if label.starts_with("market") {
            api_p99("(market)")
        } else if label.starts_with("back office") {
            api_p99("(back office)")
        } else {
            None
        };
        let ratio = baseline
            .filter(|b| !b.is_zero())
            .map(|b| format!("{:.2}", p99.as_secs_f64() / b.as_secs_f64()))
            .unwrap_or_else(|| "-".to_owned());
        let weight = if label.starts_with("API") {
            format!("{:.1}", *bytes as f64 / 1024.0)
        } else {
            format!("{:.1}", (*bytes + stylesheet) as f64 / 1024.0)
        };
        println!(
            "{:<40} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>10} {:>9}",
            label,
            times.len(),
            percentile(times, 0.5).as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            ratio,
            weight,
        );
    }
    if let Ok(p) = Arc::try_unwrap(p) {
        p.stop().await;
    }
}

fn main() {
    let cases = env_or("CREDITOPS_BENCH_CASES", 10_000);
    let users = env_or("CREDITOPS_BENCH_USERS", 20);
    let seconds = env_or("CREDITOPS_BENCH_SECONDS", 15);
    let think = Duration::from_millis(env_or("CREDITOPS_BENCH_THINK_MS", 0));
    let warmup = env_or("CREDITOPS_BENCH_WARMUP", 5);
    let backends =
        std::env::var("CREDITOPS_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in backends.split(',') {
        let backend = match backend.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("unknown backend {other:?}"),
        };
        runtime.block_on(run(backend, cases, users, (warmup, seconds), think));
    }
}
