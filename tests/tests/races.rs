//! Races (issue 7.3; V10, A1, A2): many concurrent first and second votes,
//! edits and returns on the same cases, over real HTTP. On PostgreSQL they
//! are spread over **two platform instances** sharing one database, each
//! with its own connection pool, listeners and audit sequencer task (the
//! two sequencers compete for the leader lease while auditors' reads run
//! rounds of their own); on SQLite they go through one instance.
//!
//! Some commands are delivered twice at the same moment with the same
//! `Idempotency-Key`, one copy to each instance (a client retrying through a
//! load balancer).
//!
//! What the suite proves, from the answers the clients saw and the final
//! state:
//! - every case has at most one decision, and exactly one answer announced
//!   it; a decided case's decision is the one that answer carried;
//! - nobody voted twice: one vote per (file version, round, stage), and the
//!   votes on record are exactly the votes whose command was answered 2xx;
//! - every 2xx edit and return is reflected in the file version and amount;
//! - every effect has exactly one audit event, every refusal one
//!   `request.refused` event on the case, nothing more;
//! - a duplicate delivery has one effect and both copies get the same answer;
//! - the audit chain is linear: sequence numbers from 1 without gaps or
//!   duplicates, every committed event linked, the chain verifies on both
//!   instances, and reconciliation finds no business row without its event.
//!
//! The choices (which commands, which instance) come from a seed printed at
//! the start; `CREDITOPS_RACE_SEED` replays one, `CREDITOPS_RACE_ROUNDS`
//! runs longer. Thread scheduling still varies between runs, so a replay
//! repeats the workload, not the interleaving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_tests::reqwest::Method;
use creditops_tests::{Backend, Reply, Rng, TestPlatform, count_from_env, json, seed_from_env};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Cases raced on at the same time.
const CASES: usize = 6;
/// Rounds of concurrent commands (each case gets a burst per round).
const ROUNDS: usize = 8;
/// Extra cases that only get duplicate deliveries of edits.
const DUPLICATE_EDITS: usize = 2;
/// Copies of each retried edit (half to each instance on PostgreSQL).
const COPIES: usize = 3;
/// File amounts an edit chooses from: competence levels 1 and 2.
const AMOUNTS: [&str; 3] = ["150000.00", "200000.00", "600000.00"];

#[derive(Debug, Clone)]
enum Command {
    FirstVote {
        voter: &'static str,
        decision: &'static str,
        version: i64,
    },
    SecondVote {
        voter: &'static str,
        decision: &'static str,
        version: i64,
    },
    Edit {
        version: i64,
        amount: &'static str,
    },
    Return {
        by: &'static str,
    },
}

impl Command {
    /// (user, service, path suffix, body)
    fn request(&self) -> (&'static str, &'static str, &'static str, Value) {
        let vote = |decision: &str, version: i64| json!({"decision": decision, "rationale": "race test review", "version": version});
        match self {
            Command::FirstVote {
                voter,
                decision,
                version,
            } => (voter, "market", "/first-vote", vote(decision, *version)),
            Command::SecondVote {
                voter,
                decision,
                version,
            } => (
                voter,
                "backoffice",
                "/second-vote",
                vote(decision, *version),
            ),
            // The originator edits: editing never bars them from anything
            // they could do before (S6 excludes them from voting anyway).
            Command::Edit { version, amount } => (
                "lo-1",
                "market",
                "",
                json!({"version": version, "amount": amount}),
            ),
            Command::Return { by } => (
                by,
                "backoffice",
                "/return",
                json!({"reason": "collateral documents incomplete"}),
            ),
        }
    }

    fn is_vote(&self) -> bool {
        matches!(self, Command::FirstVote { .. } | Command::SecondVote { .. })
    }

    fn action(&self) -> &'static str {
        match self {
            Command::FirstVote { .. } => "case.first_vote",
            Command::SecondVote { .. } => "case.second_vote",
            Command::Edit { .. } => "case.edited",
            Command::Return { .. } => "case.returned",
        }
    }
}

/// One delivered command and what its client saw.
struct Sent {
    case: usize,
    command: Command,
    /// Set for the two copies of a duplicate delivery.
    key: Option<String>,
    reply: Reply,
}

impl Sent {
    fn succeeded(&self) -> bool {
        self.reply.status.is_success()
    }

    fn replayed(&self) -> bool {
        self.reply.headers.get("idempotent-replayed").is_some()
    }

    /// A 2xx that changed something (not the replay of another copy).
    fn effect(&self) -> bool {
        self.succeeded() && !self.replayed()
    }
}

fn decision(rng: &mut Rng, approve_percent: u64) -> &'static str {
    if rng.chance(approve_percent) {
        "approve"
    } else {
        "decline"
    }
}

/// A burst of commands for a case in `state`: several that compete for the
/// same transition, plus some that are out of order or stale.
fn burst(rng: &mut Rng, state: &Value) -> Vec<Command> {
    let version = state["version"].as_i64().expect("version");
    let stale = |rng: &mut Rng| {
        if rng.chance(15) { version - 1 } else { version }
    };
    let mut commands = Vec::new();
    match state["status"].as_str().expect("status") {
        "draft" | "returned" => {
            for _ in 0..=rng.below(2) {
                commands.push(Command::Edit {
                    version: stale(rng),
                    amount: rng.pick(&AMOUNTS),
                });
            }
            for voter in ["lo-2", "lo-3"] {
                if rng.chance(70) {
                    commands.push(Command::FirstVote {
                        voter,
                        decision: decision(rng, 85),
                        version: stale(rng),
                    });
                }
            }
        }
        "awaiting_second_vote" => {
            for voter in ["ba-1", "ba-2", "ba-3", "bb-1"] {
                if rng.chance(60) {
                    commands.push(Command::SecondVote {
                        voter,
                        decision: decision(rng, 65),
                        version: stale(rng),
                    });
                }
            }
            if rng.chance(35) {
                commands.push(Command::Return {
                    by: rng.pick(&["ba-1", "ba-2", "ba-3"]),
                });
            }
            if rng.chance(20) {
                commands.push(Command::Edit {
                    version,
                    amount: AMOUNTS[0],
                });
            }
        }
        "escalated" => {
            // The escalated vote needs new voters at the next level; the
            // ones who voted before are refused (V5).
            for voter in ["lo-2", "lo-3", "mb-1"] {
                if rng.chance(60) {
                    commands.push(Command::FirstVote {
                        voter,
                        decision: decision(rng, 85),
                        version: stale(rng),
                    });
                }
            }
            if rng.chance(30) {
                commands.push(Command::Return { by: "ba-3" });
            }
        }
        // Decided: everything is refused now.
        _ => commands.push(match rng.below(3) {
            0 => Command::SecondVote {
                voter: "bb-1",
                decision: "approve",
                version,
            },
            1 => Command::Return { by: "ba-1" },
            _ => Command::Edit {
                version,
                amount: AMOUNTS[1],
            },
        }),
    }
    if commands.is_empty() {
        commands.push(Command::Return { by: "ba-2" });
    }
    commands
}

async fn deliver(
    instance: &TestPlatform,
    case_id: &str,
    command: &Command,
    key: Option<&str>,
) -> Reply {
    let (user, service, suffix, body) = command.request();
    let method = if matches!(command, Command::Edit { .. }) {
        Method::PATCH
    } else {
        Method::POST
    };
    let token = instance.token(user, service);
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    instance
        .send(
            service,
            method,
            &format!("/v1/cases/{case_id}{suffix}"),
            Some(&token),
            Some(body.to_string()),
            &headers,
        )
        .await
}

async fn read_case(instance: &TestPlatform, case_id: &str) -> Value {
    instance
        .call(
            "lo-1",
            "market",
            Method::GET,
            &format!("/v1/cases/{case_id}"),
            None,
        )
        .await
        .ok(200)
        .clone()
}

/// Runs the race workload over `instances` (all on one database) and checks
/// every invariant.
async fn race(instances: &[&TestPlatform]) {
    let seed = seed_from_env("CREDITOPS_RACE_SEED");
    let rounds = count_from_env("CREDITOPS_RACE_ROUNDS", ROUNDS);
    println!(
        "race seed {seed} ({rounds} rounds, {CASES} cases, {} instances)",
        instances.len()
    );
    let mut rng = Rng::new(seed);
    let first = instances[0];
    let mut case_ids = Vec::new();
    for _ in 0..CASES {
        let case = first.draft_case(AMOUNTS[0]).await;
        case_ids.push(case["id"].as_str().expect("id").to_owned());
    }

    let mut sent: Vec<Sent> = Vec::new();
    for round in 0..rounds {
        let reader = instances[round % instances.len()];
        let mut planned = Vec::new();
        for (case, id) in case_ids.iter().enumerate() {
            let state = read_case(reader, id).await;
            for command in burst(&mut rng, &state) {
                // A duplicate delivery goes to every instance at once.
                let key = rng
                    .chance(25)
                    .then(|| format!("race-{seed}-{round}-{case}-{}", planned.len()));
                let targets: Vec<usize> = match key {
                    Some(_) => (0..instances.len()).collect(),
                    None => vec![rng.below(instances.len())],
                };
                for target in targets {
                    planned.push((case, command.clone(), key.clone(), target));
                }
            }
        }
        let replies =
            futures_util::future::join_all(planned.iter().map(|(case, command, key, target)| {
                deliver(
                    instances[*target],
                    &case_ids[*case],
                    command,
                    key.as_deref(),
                )
            }))
            .await;
        for ((case, command, key, _), reply) in planned.into_iter().zip(replies) {
            sent.push(Sent {
                case,
                command,
                key,
                reply,
            });
        }
    }

    // Retried edits: a file edit delivered twice at once with one key. The
    // losing copy sees the winner's new file version, a stale version rather
    // than a write conflict, and must still be answered as a replay.
    for _ in 0..DUPLICATE_EDITS {
        let case = case_ids.len();
        case_ids.push(
            first.draft_case(AMOUNTS[0]).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        for n in 0..2 * rounds {
            let version = read_case(first, &case_ids[case]).await["version"]
                .as_i64()
                .expect("version");
            let command = Command::Edit {
                version,
                amount: AMOUNTS[n % AMOUNTS.len()],
            };
            let key = format!("race-{seed}-edit-{case}-{n}");
            // The copies start a few milliseconds apart (from the seed), so
            // that over the rounds the later copies arrive at every stage of
            // the first one's transaction.
            let delays: Vec<u64> = (0..COPIES)
                .map(|i| if i == 0 { 0 } else { rng.below(8) as u64 })
                .collect();
            let copies =
                futures_util::future::join_all(delays.iter().enumerate().map(|(i, delay)| {
                    let (instance, id, command, key) = (
                        instances[i % instances.len()],
                        &case_ids[case],
                        &command,
                        &key,
                    );
                    async move {
                        tokio::time::sleep(std::time::Duration::from_millis(*delay)).await;
                        deliver(instance, id, command, Some(key)).await
                    }
                }))
                .await;
            for reply in copies {
                sent.push(Sent {
                    case,
                    command: command.clone(),
                    key: Some(key.clone()),
                    reply,
                });
            }
        }
    }

    // Every answer is a success or a refusal that names why; nothing failed.
    for s in &sent {
        let status = s.reply.status.as_u16();
        match status {
            200 => {}
            403 => assert!(
                s.reply.body["rule"].is_string(),
                "a 403 names its rule: {}",
                s.reply.body
            ),
            409 => {}
            _ => panic!(
                "seed {seed}: unexpected {status} for {:?}: {}",
                s.command, s.reply.body
            ),
        }
        if status != 200 {
            s.reply.problem(status);
        }
    }

    // A duplicate delivery: one effect, and every copy that succeeded got
    // the same answer. A copy may fail only by losing a write race (409
    // `conflict`) while the copy that won was still in flight, when there
    // was no answer to replay yet. Any other refusal means it saw the
    // winner's effect and should have replayed its answer: a stale file
    // version or a changed state are the winner's own doing.
    let mut by_key: BTreeMap<&str, Vec<&Sent>> = BTreeMap::new();
    for s in &sent {
        if let Some(key) = &s.key {
            by_key.entry(key).or_default().push(s);
        }
    }
    let mut duplicates_with_effect = 0;
    for (key, copies) in &by_key {
        let context = || {
            let answers: Vec<String> = copies
                .iter()
                .map(|c| format!("{} {}", c.reply.status.as_u16(), c.reply.body))
                .collect();
            format!(
                "seed {seed}: duplicate delivery {key} of {:?}: {answers:?}",
                copies[0].command
            )
        };
        if !copies.iter().any(|c| c.succeeded()) {
            continue;
        }
        duplicates_with_effect += 1;
        assert_eq!(
            copies.iter().filter(|c| c.effect()).count(),
            1,
            "exactly one copy takes effect: {}",
            context()
        );
        let succeeded: Vec<&&Sent> = copies.iter().filter(|c| c.succeeded()).collect();
        assert!(
            succeeded
                .windows(2)
                .all(|w| w[0].reply.body == w[1].reply.body),
            "the copies that succeeded got the same answer: {}",
            context()
        );
        assert!(
            copies
                .iter()
                .all(|c| c.succeeded() || c.reply.body["type"] == "urn:creditops:problem:conflict"),
            "a copy that saw the winner's effect replays its answer: {}",
            context()
        );
    }

    for (case, id) in case_ids.iter().enumerate() {
        check_case(instances, seed, id, sent.iter().filter(|s| s.case == case)).await;
    }
    check_trail(instances, seed).await;
    let effects = sent.iter().filter(|s| s.effect()).count();
    println!(
        "{} commands delivered, {effects} took effect, {} refused; {} duplicate deliveries, {duplicates_with_effect} with an effect",
        sent.len(),
        sent.iter().filter(|s| !s.succeeded()).count(),
        by_key.len(),
    );
    assert!(effects > CASES, "the workload got work done");
}

/// The final state of one case against every answer its clients saw.
async fn check_case<'a>(
    instances: &[&TestPlatform],
    seed: u64,
    id: &str,
    sent: impl Iterator<Item = &'a Sent>,
) {
    let sent: Vec<&Sent> = sent.collect();
    let state = read_case(instances[0], id).await;
    for other in &instances[1..] {
        assert_eq!(read_case(other, id).await, state, "instances agree on {id}");
    }
    let context = format!("seed {seed}, case {id}: {state}");

    // Votes: exactly the ones answered 2xx, one per (version, round, stage).
    let votes = state["votes"].as_array().expect("votes");
    let mut slots = BTreeSet::new();
    for vote in votes {
        let slot = (
            vote["file_version"].as_i64(),
            vote["round"].as_i64(),
            vote["stage"].as_str().map(str::to_owned),
        );
        assert!(
            slots.insert(slot.clone()),
            "two votes for {slot:?}: {context}"
        );
    }
    let vote_effects: Vec<&&Sent> = sent
        .iter()
        .filter(|s| s.effect() && s.command.is_vote())
        .collect();
    assert_eq!(
        votes.len(),
        vote_effects.len(),
        "votes on record: {context}"
    );
    for s in &vote_effects {
        let cast = s.reply.body["votes"]
            .as_array()
            .and_then(|v| v.last())
            .expect("the answer carries the vote");
        // As answered, apart from `void` (a later file version voids it).
        let without_void = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().map(|o| o.remove("void"));
            v
        };
        let recorded = votes.iter().any(|v| without_void(v) == without_void(cast));
        assert!(recorded, "acknowledged vote {cast} is missing: {context}");
    }

    // Decision: at most one, announced by exactly one answer.
    let deciding: Vec<&&Sent> = vote_effects
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s.reply.body["status"].as_str(),
                Some("approved" | "declined")
            )
        })
        .collect();
    match state["status"].as_str() {
        Some("approved" | "declined") => {
            assert_eq!(deciding.len(), 1, "one answer decided: {context}");
            assert_eq!(
                deciding[0].reply.body["decision"], state["decision"],
                "the decision is the one announced: {context}"
            );
        }
        _ => {
            assert!(
                deciding.is_empty(),
                "an announced decision is lost: {context}"
            );
            assert!(state["decision"].is_null(), "{context}");
        }
    }

    // File versions: one per edit and return answered 2xx.
    let edits: Vec<&&Sent> = sent
        .iter()
        .filter(|s| s.effect() && matches!(s.command, Command::Edit { .. }))
        .collect();
    let returns = sent
        .iter()
        .filter(|s| s.effect() && matches!(s.command, Command::Return { .. }))
        .count();
    assert_eq!(
        state["version"].as_i64(),
        Some(1 + (edits.len() + returns) as i64),
        "file version: {context}"
    );
    let last_edit = edits
        .iter()
        .max_by_key(|s| s.reply.body["version"].as_i64());
    let expected_amount = last_edit.map_or(AMOUNTS[0], |s| match s.command {
        Command::Edit { amount, .. } => amount,
        _ => unreachable!(),
    });
    assert_eq!(state["amount"], expected_amount, "amount: {context}");

    // The trail: one event per effect, one per refusal, nothing else.
    let events = instances[0].case_events(id).await;
    let mut actions: BTreeMap<String, usize> = BTreeMap::new();
    for event in &events {
        *actions
            .entry(event["body"]["action"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    expected.insert("case.created".into(), 1);
    for s in &sent {
        let action = if s.effect() {
            s.command.action()
        } else if s.succeeded() {
            continue;
        } else {
            "request.refused"
        };
        *expected.entry(action.to_owned()).or_default() += 1;
    }
    if state["status"] == "approved" {
        expected.insert("credit.versioned".into(), 1);
        expected.insert("risk.reserved".into(), 1);
    }
    assert_eq!(actions, expected, "audit events of the case: {context}");
}

/// The audit trail is one linear chain that both instances verify, and
/// every business row has its event.
async fn check_trail(instances: &[&TestPlatform], seed: u64) {
    for instance in instances {
        let verify = instance
            .call("ia-1", "audit", Method::POST, "/v1/verify", None)
            .await;
        assert_eq!(verify.ok(200)["ok"], true, "seed {seed}: {}", verify.body);
        let reconcile = instance
            .call("ia-1", "audit", Method::GET, "/v1/reconcile", None)
            .await;
        assert_eq!(
            reconcile.ok(200)["ok"],
            true,
            "seed {seed}: {}",
            reconcile.body
        );
    }
    if let Some(url) = &instances[0].database_url {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .expect("connect");
        let (rows, distinct, min, max): (i64, i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM audit_chain",
        )
        .fetch_one(&mut conn)
        .await
        .expect("chain");
        assert_eq!(
            (distinct, min, max),
            (rows, Some(1), Some(rows)),
            "seed {seed}: sequence numbers are 1..n without gaps or duplicates"
        );
        // The instances' sequencers link every committed event, once, by
        // themselves (no reader's flush here).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (entries, linked): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM audit_entries), \
                        (SELECT count(DISTINCT event_id) FROM audit_chain)",
            )
            .fetch_one(&mut conn)
            .await
            .expect("entries");
            if entries == linked {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "seed {seed}: {} committed events stay unlinked",
                entries - linked
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_race_on_the_same_cases() {
    let Some(a) = TestPlatform::start(Backend::Postgres).await else {
        return;
    };
    let b = a.attach_instance().await;
    race(&[&a, &b]).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_commands_on_the_same_cases() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");
    race(&[&p]).await;
    p.stop().await;
}
