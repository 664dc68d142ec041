//! Crash recovery (issue "reliability suites"): `kill -9` the service
//! process at a random moment while clients create borrowers (each an
//! audited command), restart it, repeat. Afterwards every creation a client
//! saw acknowledged is there, every stored borrower has its audit event (no
//! half-applied command), the chain verifies, `audit reconcile` finds every
//! business row's event (and names the row whose event is then deleted), and
//! on PostgreSQL the restarted process's sequencer links what the killed one
//! left unlinked.
//!
//! CI runs 3 kills per backend; `CREDITOPS_CRASH_ROUNDS=20 cargo test -p
//! creditops --test crash` is the long version. The random moments come from
//! a seed printed at the start (`CREDITOPS_CRASH_SEED` replays one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;

/// Borrowers without the audit event of their creation (same SQL on both
/// backends).
const ORPHANED_BORROWERS: &str = "SELECT count(*) FROM borrowers b WHERE NOT EXISTS \
     (SELECT 1 FROM audit_events e WHERE e.borrower_id = b.id AND e.action = 'borrower.created')";

/// Ratings (L4) and their audit events come and go together: the
/// difference of the two counts.
const UNAUDITED_RATINGS: &str = "SELECT (SELECT count(*) FROM ratings) - (SELECT count(*) \
     FROM audit_events WHERE action IN ('rating.proposed', 'rating.set'))";

struct Server {
    child: Child,
    market: String,
}

fn serve(data_dir: &str, database_url: Option<&str>) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_creditops"));
    command
        .args(["serve", "--dev", "--data-dir", data_dir])
        // The audit service runs the sequencer that links what the killed
        // process left unlinked.
        .args(["--services", "market,audit"])
        .args([
            "--market-addr",
            "127.0.0.1:0",
            "--audit-addr",
            "127.0.0.1:0",
        ])
        .env_remove("CREDITOPS_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut child = command.spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("market") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let market = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve prints the market address");
    Server { child, market }
}

fn token(data_dir: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_creditops"))
        .args([
            "token",
            "--data-dir",
            data_dir,
            "--user",
            "lo-1",
            "--service",
            "market",
        ])
        .output()
        .expect("token");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// A small xorshift generator: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Clients create borrowers, each with a rating proposal (L4), until the
/// server dies; returns nothing, the acknowledged ids go into `acked` (a
/// borrower whose proposal was acknowledged too is marked with a `+`).
fn start_clients(
    market: &str,
    token: &str,
    acked: Arc<Mutex<Vec<String>>>,
    round: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    (0..CLIENTS)
        .map(|c| {
            let (client, acked) = (client.clone(), acked.clone());
            let url = format!("{market}/v1/borrowers");
            let token = token.to_owned();
            tokio::spawn(async move {
                for n in 0.. {
                    let reply = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&serde_json::json!({
                            "name": format!("Crash {round}-{c}-{n} GmbH"),
                            "country": "DE",
                            "sector": "C25",
                        }))
                        .send()
                        .await;
                    let Ok(reply) = reply else { return };
                    if reply.status().as_u16() != 201 {
                        return;
                    }
                    let Ok(body) = reply.json::<serde_json::Value>().await else {
                        return;
                    };
                    let Some(id) = body["id"].as_str() else {
                        return;
                    };
                    acked.lock().expect("lock").push(id.to_owned());
                    let proposal = client
                        .post(format!("{url}/{id}/rating-proposals"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({
                            "class": 5, "pd": "0.0015", "reason": "first accounts"
                        }))
                        .send()
                        .await;
                    match proposal {
                        Ok(reply) if reply.status().as_u16() == 201 => {
                            acked.lock().expect("lock").push(format!("+{id}"));
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect()
}

async fn crash_and_recover(data_dir: &str, database_url: Option<&str>) {
    let rounds: u64 = std::env::var("CREDITOPS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("CREDITOPS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("crash test seed {seed} ({rounds} kills)");
    let mut rng = Rng(seed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut server = serve(data_dir, database_url);
    let token = token(data_dir);
    for round in 0..rounds {
        let clients = start_clients(&server.market, &token, acked.clone(), round);
        tokio::time::sleep(Duration::from_millis(200 + rng.next() % 1300)).await;
        server.child.kill().expect("kill -9");
        server.child.wait().expect("reap");
        for client in clients {
            let _ = client.await;
        }
        server = serve(data_dir, database_url);
    }

    // Every acknowledged creation survived the kills.
    let all = acked.lock().expect("lock").clone();
    let proposed: Vec<String> = all
        .iter()
        .filter_map(|id| id.strip_prefix('+').map(str::to_owned))
        .collect();
    let acked: Vec<String> = all.into_iter().filter(|id| !id.starts_with('+')).collect();
    assert!(!acked.is_empty(), "the clients got some work acknowledged");
    println!("{} creations acknowledged across the kills", acked.len());
    let client = reqwest::Client::new();
    for id in &acked {
        let reply = client
            .get(format!("{}/v1/borrowers/{id}", server.market))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get");
        assert_eq!(
            reply.status().as_u16(),
            200,
            "acknowledged borrower {id} is lost"
        );
    }

    // Every acknowledged rating proposal survived the kills (L4).
    for id in &proposed {
        let reply = client
            .get(format!("{}/v1/borrowers/{id}/ratings", server.market))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get");
        let body: serde_json::Value = reply.json().await.expect("ratings");
        assert_eq!(
            body["items"].as_array().map(Vec::len),
            Some(1),
            "acknowledged rating proposal of {id} is lost: {body}"
        );
    }

    // No half-applied command: every stored borrower has its audit event.
    let (orphans, unaudited_ratings): (i64, i64) = match database_url {
        Some(url) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .expect("connect");
            // The restarted process's sequencer links what was left unlinked.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let unlinked: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM audit_entries e WHERE NOT EXISTS \
                     (SELECT 1 FROM audit_chain c WHERE c.event_id = e.event_id)",
                )
                .fetch_one(&mut conn)
                .await
                .expect("unlinked");
                if unlinked == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{unlinked} events stay unlinked");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (
                sqlx::query_scalar(ORPHANED_BORROWERS)
                    .fetch_one(&mut conn)
                    .await
                    .expect("orphans"),
                sqlx::query_scalar(UNAUDITED_RATINGS)
                    .fetch_one(&mut conn)
                    .await
                    .expect("ratings"),
            )
        }
        None => {
            let url = format!("sqlite://{data_dir}/creditops.db");
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                .await
                .expect("connect");
            (
                sqlx::query_scalar(ORPHANED_BORROWERS)
                    .fetch_one(&mut conn)
                    .await
                    .expect("orphans"),
                sqlx::query_scalar(UNAUDITED_RATINGS)
                    .fetch_one(&mut conn)
                    .await
                    .expect("ratings"),
            )
        }
    };
    assert_eq!(orphans, 0, "borrowers without their audit event");
    assert_eq!(
        unaudited_ratings, 0,
        "ratings and their audit events differ"
    );

    server.child.kill().expect("kill");
    server.child.wait().expect("reap");
    let mut verify = Command::new(env!("CARGO_BIN_EXE_creditops"));
    verify.args(["audit", "verify", "--data-dir", data_dir]);
    if let Some(url) = database_url {
        verify.args(["--database-url", url]);
    }
    let out = verify
        .env_remove("CREDITOPS_DATABASE_URL")
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "the chain verifies after the crashes: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Reconciliation agrees: every borrower row carries an event that exists.
    let reconcile = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_creditops"));
        command.args(["audit", "reconcile", "--json", "--data-dir", data_dir]);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        command
            .env_remove("CREDITOPS_DATABASE_URL")
            .output()
            .expect("reconcile")
    };
    let clean = reconcile();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    // An event deleted behind the triggers' back is named by the row that
    // carried it.
    let victim = &acked[0];
    match database_url {
        Some(url) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .expect("connect");
            for statement in [
                "ALTER TABLE audit_chain DISABLE TRIGGER USER",
                "ALTER TABLE audit_entries DISABLE TRIGGER USER",
                "CREATE TEMP TABLE gone AS SELECT audit_event_id AS id FROM borrowers \
                 WHERE id::text = $1",
                "DELETE FROM audit_chain WHERE event_id IN (SELECT id FROM gone)",
                "DELETE FROM audit_entries WHERE event_id IN (SELECT id FROM gone)",
            ] {
                let query = sqlx::query(statement);
                let query = if statement.contains("$1") {
                    query.bind(victim)
                } else {
                    query
                };
                query.execute(&mut conn).await.expect(statement);
            }
        }
        None => {
            let url = format!("sqlite://{data_dir}/creditops.db");
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                .await
                .expect("connect");
            sqlx::query("DROP TRIGGER audit_events_no_delete")
                .execute(&mut conn)
                .await
                .expect("drop trigger");
            sqlx::query(
                "DELETE FROM audit_events WHERE event_id = \
                 (SELECT audit_event_id FROM borrowers WHERE id = $1)",
            )
            .bind(victim)
            .execute(&mut conn)
            .await
            .expect("delete the event");
        }
    }
    let caught = reconcile();
    assert_eq!(caught.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&caught.stdout).expect("json");
    let missing = report["missing"].as_array().expect("missing rows");
    assert!(
        missing
            .iter()
            .any(|row| row["table"] == "borrowers" && row["key"] == victim.as_str()),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_kill_9_under_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    crash_and_recover(dir.path().to_str().expect("utf8"), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_kill_9_under_load() {
    let Some(base) = creditops_store_postgres::testing::pg_test_url() else {
        return;
    };
    let db = creditops_store_postgres::testing::TestDatabase::create(&base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    crash_and_recover(dir.path().to_str().expect("utf8"), Some(&db.url)).await;
    db.drop_database().await;
}
