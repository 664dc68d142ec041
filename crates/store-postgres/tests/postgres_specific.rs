//! PostgreSQL-only behaviour: append-only triggers against raw SQL (also as
//! the table owner and with replication role), trigger names, appenders in
//! several processes, the sequencer, corrupt rows, an unreachable server,
//! the risk locks.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_audit::SigningKey;
use creditops_domain::{CaseId, RuleSet, StaffId};
use creditops_store::contract::{seed_case, seed_risk};
use creditops_store::{AUTHORITY_CHANGED, AuditFilter, AuditSequencer, Store, StoreError};
use creditops_store_postgres::PgStore;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use sqlx::{Connection, PgConnection};
use std::future::Future;

mod common;

use common::{ORIGIN, assert_tree_matches_chain, event, now, raw, verify};

/// Runs `test` against a fresh database, then drops it (also after a panic).
async fn with_db<F, Fut>(test: F)
where
    F: FnOnce(PgStore, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = pg_test_url() else { return };
    let db = TestDatabase::create(&base).await;
    let store = PgStore::connect(&db.url, ORIGIN, 8).await;
    let outcome = match store {
        Ok(store) => {
            let closing = store.clone();
            let outcome = tokio::spawn(test(store, db.url.clone())).await;
            closing.close().await;
            outcome
        }
        Err(e) => {
            db.drop_database().await;
            panic!("connect: {e:?}");
        }
    };
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A case with a first vote and a decision (declined), plus three audit events.
async fn seed(store: &PgStore) -> CaseId {
    seed_case(store, now(), &[event(1), event(2), event(3)]).await
}

async fn refused(conn: &mut PgConnection, sql: &'static str) {
    let err = sqlx::query(sql).execute(&mut *conn).await.expect_err(sql);
    assert!(err.to_string().contains("append-only"), "{sql}: {err}");
}

const TAMPERING: [&str; 26] = [
    "UPDATE audit_entries SET action = 'x'",
    "DELETE FROM audit_entries",
    "TRUNCATE audit_entries CASCADE",
    "UPDATE audit_chain SET chain_hash = leaf_hash WHERE seq = 2",
    "DELETE FROM audit_chain WHERE seq = 3",
    "TRUNCATE audit_chain",
    "UPDATE audit_tree SET hash = hash",
    "DELETE FROM audit_tree",
    "TRUNCATE audit_tree",
    "UPDATE votes SET rationale = 'changed'",
    "DELETE FROM votes",
    "TRUNCATE votes",
    "UPDATE decisions SET outcome = 'approved'",
    "DELETE FROM decisions",
    "TRUNCATE decisions",
    "UPDATE rule_sets SET parameters = '{}'",
    "DELETE FROM rule_sets",
    "TRUNCATE rule_sets",
    // A decided proposal is final; a pending one changes only by its decision.
    "UPDATE change_proposals SET status = 'rejected' WHERE status = 'approved'",
    "UPDATE change_proposals SET payload = '{}' WHERE status = 'pending'",
    "UPDATE change_proposals SET proposed_by = 'lo-1' WHERE status = 'pending'",
    "DELETE FROM change_proposals",
    // Cascading: rows of the directory and the rules refer to proposals.
    "TRUNCATE change_proposals CASCADE",
    "UPDATE audit_heads SET note = ''",
    "DELETE FROM audit_heads",
    "TRUNCATE audit_heads",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a3_immutable_tables_refuse_update_delete_and_truncate_even_for_the_owner() {
    with_db(|store, url| async move {
        let case_id = seed(&store).await;
        // Linked and signed, so every audit table has rows to refuse changing.
        let key = SigningKey::from_pkcs8(ORIGIN, &SigningKey::generate_pkcs8().expect("key"))
            .expect("key");
        store
            .flush_audit(std::time::Duration::from_secs(10))
            .await
            .expect("flush");
        let round = store.sequence_audit(Some(&key)).await.expect("sequence");
        assert_eq!((round.size, round.signed), (3, true));
        let before = {
            let mut tx = store.begin_read().await.expect("begin_read");
            tx.case(case_id).await.expect("load").expect("case")
        };
        let mut conn = raw(&url).await;
        // This connection is the migrating user: it owns the tables.
        let owner_is_me: bool = sqlx::query_scalar(
            "SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'audit_entries'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("owner");
        assert!(owner_is_me);
        for sql in TAMPERING {
            refused(&mut conn, sql).await;
        }
        // ENABLE ALWAYS: the triggers fire in replica mode as well.
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut conn)
            .await
            .expect("replica role");
        for sql in TAMPERING {
            refused(&mut conn, sql).await;
        }
        sqlx::query("SET session_replication_role = DEFAULT")
            .execute(&mut conn)
            .await
            .expect("default role");
        sqlx::query(
            "UPDATE change_proposals SET status = 'rejected', decided_by = 'lo-1', \
             decided_at = now() WHERE status = 'pending'",
        )
        .execute(&mut conn)
        .await
        .expect("a pending proposal can be decided");
        let _ = conn.close().await;

        assert_eq!(verify(&store).await, Ok(3));
        let mut tx = store.begin_read().await.expect("begin_read");
        assert_eq!(tx.case(case_id).await.expect("load"), Some(before));
    })
    .await;
}

/// Ten years of trail: `audit_entries` is partitioned by the year of its
/// UUIDv7 event ids; an event lands in the partition of the year it was
/// created, and every partition refuses changes on its own, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_are_partitioned_by_year_and_each_year_is_append_only() {
    with_db(|store, url| async move {
        seed(&store).await;
        let mut conn = raw(&url).await;
        let partitions: Vec<String> = sqlx::query_scalar(
            "SELECT inhrelid::regclass::text FROM pg_inherits \
             WHERE inhparent = 'audit_entries'::regclass ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("partitions");
        let mut expected: Vec<String> = (2025..=2040)
            .map(|y| format!("audit_entries_y{y}"))
            .collect();
        expected.push("audit_entries_before_2025".into());
        expected.push("audit_entries_later".into());
        expected.sort();
        assert_eq!(partitions, expected);

        // The boundary is the first millisecond of the year, UTC.
        let new_year = chrono::DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
            .expect("time")
            .timestamp_millis();
        let v7 = |millis: i64| {
            let millis = u64::try_from(millis).expect("after 1970");
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                millis / 1000,
                u32::try_from(millis % 1000).expect("ms") * 1_000_000,
            ))
        };
        let floor: uuid::Uuid = sqlx::query_scalar("SELECT creditops_uuid7_floor(2027)")
            .fetch_one(&mut conn)
            .await
            .expect("floor");
        assert!(v7(new_year - 1) < floor && floor <= v7(new_year));
        let bound: String = sqlx::query_scalar(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class \
             WHERE oid = 'audit_entries_y2027'::regclass",
        )
        .fetch_one(&mut conn)
        .await
        .expect("bound");
        assert!(
            bound.starts_with(&format!("FOR VALUES FROM ('{floor}')")),
            "{bound}"
        );
        // A stored event: in the partition of the year its id was made.
        let (partition, made): (String, uuid::Uuid) =
            sqlx::query_as("SELECT tableoid::regclass::text, event_id FROM audit_entries LIMIT 1")
                .fetch_one(&mut conn)
                .await
                .expect("stored event");
        let (seconds, _) = made.get_timestamp().expect("v7").to_unix();
        let year = chrono::DateTime::from_timestamp(i64::try_from(seconds).expect("s"), 0)
            .expect("time")
            .format("%Y")
            .to_string();
        assert_eq!(partition, format!("audit_entries_y{year}"));

        let tampering = [
            format!("UPDATE {partition} SET action = 'x'"),
            format!("DELETE FROM {partition}"),
            format!("TRUNCATE {partition} CASCADE"),
            "TRUNCATE audit_entries_later CASCADE".to_owned(),
            "TRUNCATE audit_entries_before_2025 CASCADE".to_owned(),
        ];
        for replica in [false, true] {
            if replica {
                sqlx::query("SET session_replication_role = replica")
                    .execute(&mut conn)
                    .await
                    .expect("replica role");
            }
            for sql in &tampering {
                let err = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut conn)
                    .await
                    .expect_err(sql);
                assert!(err.to_string().contains("append-only"), "{sql}: {err}");
            }
        }
        let _ = conn.close().await;
        assert_eq!(verify(&store).await, Ok(3));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trigger_names_are_stable_and_the_chain_catches_tampering() {
    with_db(|store, url| async move {
        seed(&store).await;
        assert_eq!(verify(&store).await, Ok(3));
        let mut conn = raw(&url).await;
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE NOT tgisinternal \
             AND tgrelid::regclass::text IN ('audit_entries', 'audit_chain', 'audit_tree', \
             'audit_heads', 'audit_checkpoints') ORDER BY tgname",
        )
        .fetch_all(&mut conn)
        .await
        .expect("triggers");
        let always = |name: &str| (name.to_owned(), "A".to_owned());
        assert_eq!(
            triggers,
            [
                "audit_chain_append_only",
                "audit_chain_no_truncate",
                "audit_checkpoints_append_only",
                "audit_checkpoints_no_truncate",
                "audit_entries_append_only",
                "audit_entries_no_truncate",
                "audit_heads_append_only",
                "audit_heads_no_truncate",
                "audit_tree_append_only",
                "audit_tree_no_truncate",
            ]
            .map(always)
        );
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE NOT tgisinternal \
             AND tgrelid::regclass::text IN ('votes', 'decisions', 'rule_sets', \
             'change_proposals') ORDER BY tgname",
        )
        .fetch_all(&mut conn)
        .await
        .expect("triggers");
        assert_eq!(
            triggers,
            [
                "change_proposals_final",
                "change_proposals_no_delete",
                "change_proposals_no_truncate",
                "decisions_append_only",
                // The last line (finding 16): an approval needs its votes,
                // a rule set its approved proposal.
                "decisions_need_votes",
                "decisions_no_truncate",
                "rule_sets_append_only",
                "rule_sets_approved",
                // Moves the authority version kept actor lookups check.
                "rule_sets_authority",
                "rule_sets_no_truncate",
                "votes_append_only",
                "votes_no_truncate",
            ]
            .map(always)
        );

        // Somebody with owner rights drops the trigger and edits an event:
        // the hash chain names the edited position.
        sqlx::query("DROP TRIGGER audit_entries_append_only ON audit_entries")
            .execute(&mut conn)
            .await
            .expect("drop trigger");
        sqlx::query(
            "UPDATE audit_entries SET body = convert_to('{\"forged\":true}', 'UTF8') \
             WHERE event_id = (SELECT event_id FROM audit_chain WHERE seq = 2)",
        )
        .execute(&mut conn)
        .await
        .expect("tamper");
        let _ = conn.close().await;
        assert_eq!(verify(&store).await, Err(2));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_in_several_processes_share_one_gapless_chain() {
    with_db(|store, url| async move {
        // A second pool stands for a second service process.
        let other = PgStore::connect(&url, ORIGIN, 4)
            .await
            .expect("second store");
        let mut tasks = Vec::new();
        for n in 0..24 {
            let store = if n % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                tx.append_audit(&event(n)).await.expect("append");
                tx.commit().await.expect("commit");
                // Both processes run sequencer rounds while others append.
                store.sequence_audit(None).await.expect("sequence");
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        other.close().await;
        assert_eq!(verify(&store).await, Ok(24));
        assert_tree_matches_chain(&url).await;
    })
    .await;
}

/// A1: entries become final when their transaction ends. An open older
/// transaction holds later commits back (they are linked after it, never
/// skipped), and a rolled-back entry never takes a sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequencer_links_committed_entries_in_transaction_order() {
    with_db(|store, url| async move {
        let mut older = store.begin().await.expect("begin");
        let older_event = event(1);
        let older_id = older_event.event_id;
        older.append_audit(&older_event).await.expect("append");
        // As a business transaction does: it writes its change first (and so
        // takes its transaction id); its events are written at commit.
        let unit = creditops_domain::UnitId::parse("older-writer").expect("unit id");
        older
            .upsert_unit(&unit, "Older writer", creditops_domain::Side::Market)
            .await
            .expect("business write");
        let mut newer = store.begin().await.expect("begin");
        newer.append_audit(&event(2)).await.expect("append");
        newer.commit().await.expect("commit");
        let round = store.sequence_audit(None).await.expect("sequence");
        assert_eq!(round.linked, 0, "held back by the open older transaction");
        assert!(
            store
                .oldest_unsequenced_audit()
                .await
                .expect("lag")
                .is_some()
        );
        let timed_out = store
            .flush_audit(std::time::Duration::from_millis(50))
            .await
            .expect_err("cannot finish while the older transaction is open");
        assert!(
            matches!(timed_out, StoreError::Unavailable(_)),
            "{timed_out:?}"
        );
        older.commit().await.expect("commit");
        // Transaction ids are cluster-wide: other databases' open
        // transactions may hold a single round back too, so flush.
        store
            .flush_audit(std::time::Duration::from_secs(10))
            .await
            .expect("flush");
        let round = store.sequence_audit(None).await.expect("sequence");
        assert_eq!(round.size, 2);
        assert_eq!(store.oldest_unsequenced_audit().await.expect("lag"), None);

        let mut rolled_back = store.begin().await.expect("begin");
        rolled_back.append_audit(&event(3)).await.expect("append");
        let mut committed = store.begin().await.expect("begin");
        committed.append_audit(&event(4)).await.expect("append");
        committed.commit().await.expect("commit");
        drop(rolled_back);
        store
            .flush_audit(std::time::Duration::from_secs(5))
            .await
            .expect("flush");
        let mut tx = store.begin_read().await.expect("begin_read");
        let events = tx
            .audit_events(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .expect("events");
        let ids: Vec<_> = events.iter().map(|e| (e.seq, e.event_id)).collect();
        drop(tx);
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0].1, older_id, "older transaction first");
        assert_eq!(verify(&store).await, Ok(3));
        assert_tree_matches_chain(&url).await;
    })
    .await;
}

/// A2, A4: a flush hands over the head of the linked log, covering every
/// event committed before it, whether it ran a round itself (events were
/// waiting) or found them linked (one statement): the size and the root of
/// the chain's leaves, at every size from empty through several changes of
/// the tree's peaks, also after transactions of several events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_hands_over_the_head_it_linked() {
    with_db(|store, url| async move {
        let deadline = std::time::Duration::from_secs(10);
        let empty = store.flush_audit(deadline).await.expect("flush");
        assert_eq!(empty.size, 0);
        assert_eq!(empty.root, creditops_audit::merkle::empty_root());
        let mut leaves = Vec::new();
        let mut n = 0;
        for per_tx in [1, 1, 1, 2, 1, 3, 1, 5, 1, 8, 4, 1, 13, 1] {
            let mut tx = store.begin().await.expect("begin");
            for _ in 0..per_tx {
                let e = event(n);
                leaves.push(e.leaf_hash);
                tx.append_audit(&e).await.expect("append");
                n += 1;
            }
            tx.commit().await.expect("commit");
            let expected = (leaves.len() as u64, creditops_audit::merkle::root(&leaves));
            let linked = store.flush_audit(deadline).await.expect("flush");
            assert_eq!((linked.size, linked.root), expected, "after linking");
            let found = store.flush_audit(deadline).await.expect("flush");
            assert_eq!((found.size, found.root), expected, "already linked");
            let round = store.sequence_audit(None).await.expect("sequence");
            assert_eq!(
                (round.linked, round.size, round.root),
                (0, expected.0, expected.1)
            );
        }
        assert_tree_matches_chain(&url).await;
    })
    .await;
}

/// A2, A4, A7: a reader's flush hands over the head with a transaction to
/// read and record the read in. Dropped, it leaves the log as it was (the
/// linking again to do); committed, the read's event and checkpoint stay
/// and the head covered everything committed before the call. With nothing
/// held back the linking and the read commit in one transaction (seen in
/// the rows' `xmin`; other databases' transactions may hold a round back,
/// so it is looked for in up to 50 tries); an event committed behind an
/// older open transaction makes the reader wait, and the head then covers
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_links_and_records_its_read_in_one_transaction() {
    with_db(|store, url| async move {
        let deadline = std::time::Duration::from_secs(10);
        let mut leaves = Vec::new();
        let mut n = 0;
        let mut commit_event = |store: PgStore, leaves: &mut Vec<creditops_audit::Hash>| {
            let e = event(n);
            n += 1;
            leaves.push(e.leaf_hash);
            async move {
                let mut tx = store.begin().await.expect("begin");
                tx.append_audit(&e).await.expect("append");
                tx.commit().await.expect("commit");
                e
            }
        };
        for _ in 0..3 {
            commit_event(store.clone(), &mut leaves).await;
        }
        let (head, tx) = store.flush_audit_for_read(deadline).await.expect("flush");
        assert_eq!(
            (head.size, head.root),
            (3, creditops_audit::merkle::root(&leaves))
        );
        drop(tx);
        let linked = store.flush_audit(deadline).await.expect("flush");
        assert_eq!((linked.size, linked.root), (head.size, head.root));

        let mut conn = raw(&url).await;
        let mut one_transaction = false;
        for _ in 0..50 {
            let committed = commit_event(store.clone(), &mut leaves).await;
            let (head, mut tx) = store.flush_audit_for_read(deadline).await.expect("flush");
            assert_eq!(
                (head.size, head.root),
                (leaves.len() as u64, creditops_audit::merkle::root(&leaves))
            );
            let read = event(1000 + leaves.len() as i64);
            tx.append_audit(&read).await.expect("append");
            tx.insert_checkpoint(&creditops_store::StoredCheckpoint {
                tree_size: head.size,
                root: head.root,
                note: format!("note {}", head.size),
                signed_at: now(),
            })
            .await
            .expect("checkpoint");
            tx.commit().await.expect("commit");
            leaves.push(read.leaf_hash);
            let (linked_by, read_by): (String, String) = sqlx::query_as(
                "SELECT (SELECT xmin::text FROM audit_chain WHERE event_id = $1), \
                        (SELECT xmin::text FROM audit_entries WHERE event_id = $2)",
            )
            .bind(committed.event_id)
            .bind(read.event_id)
            .fetch_one(&mut conn)
            .await
            .expect("xmin");
            if linked_by == read_by {
                one_transaction = true;
                break;
            }
        }
        assert!(
            one_transaction,
            "the reader's round was never its read's transaction"
        );
        let mut tx = store.begin_read().await.expect("read");
        let latest = tx
            .latest_checkpoint(u64::MAX)
            .await
            .expect("latest")
            .expect("one");
        assert_eq!(latest.tree_size, leaves.len() as u64 - 1);
        drop(tx);

        // Held back: a newer event committed while an older transaction
        // is open waits for it; the reader's head covers both.
        let mut older = store.begin().await.expect("begin");
        let unit = creditops_domain::UnitId::parse("older-reader").expect("unit id");
        older
            .upsert_unit(&unit, "Older reader", creditops_domain::Side::Market)
            .await
            .expect("business write");
        let older_event = event(5000);
        older.append_audit(&older_event).await.expect("append");
        let newer = commit_event(store.clone(), &mut leaves).await;
        leaves.pop();
        leaves.push(older_event.leaf_hash);
        leaves.push(newer.leaf_hash);
        let ending = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            older.commit().await.expect("commit");
        });
        let (head, tx) = store.flush_audit_for_read(deadline).await.expect("flush");
        ending.await.expect("older transaction");
        assert_eq!(
            (head.size, head.root),
            (leaves.len() as u64, creditops_audit::merkle::root(&leaves))
        );
        tx.commit().await.expect("commit");
        let _ = conn.close().await;
        assert_eq!(verify(&store).await, Ok(leaves.len() as u64));
        assert_tree_matches_chain(&url).await;
    })
    .await;
}

/// A2: with a key, rounds sign the head (at most about once a second) in the
/// transaction that links the events; the note verifies with the key and
/// names the chain's size and the root of its leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequencer_signs_the_head_it_links() {
    with_db(|store, url| async move {
        let key = SigningKey::from_pkcs8(ORIGIN, &SigningKey::generate_pkcs8().expect("key"))
            .expect("key");
        for n in 0..5 {
            let mut tx = store.begin().await.expect("begin");
            tx.append_audit(&event(n)).await.expect("append");
            tx.commit().await.expect("commit");
        }
        store
            .flush_audit(std::time::Duration::from_secs(10))
            .await
            .expect("flush");
        let round = store.sequence_audit(Some(&key)).await.expect("sequence");
        assert_eq!((round.size, round.signed), (5, true));
        let mut tx = store.begin().await.expect("begin");
        tx.append_audit(&event(9)).await.expect("append");
        tx.commit().await.expect("commit");
        store
            .flush_audit(std::time::Duration::from_secs(10))
            .await
            .expect("flush");
        let round = store.sequence_audit(Some(&key)).await.expect("sequence");
        assert_eq!(
            (round.size, round.signed),
            (6, false),
            "signed a second ago"
        );

        let mut conn = raw(&url).await;
        let (size, root, note): (i64, Vec<u8>, String) =
            sqlx::query_as("SELECT tree_size, root, note FROM audit_heads")
                .fetch_one(&mut conn)
                .await
                .expect("one head");
        let leaves: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT leaf_hash FROM audit_chain WHERE seq <= 5 ORDER BY seq")
                .fetch_all(&mut conn)
                .await
                .expect("leaves");
        let _ = conn.close().await;
        let leaves: Vec<[u8; 32]> = leaves
            .iter()
            .map(|l| l.as_slice().try_into().expect("32 bytes"))
            .collect();
        let head = creditops_audit::checkpoint::parse_and_verify(&note, &[key.verifier_key()])
            .expect("the note verifies");
        assert_eq!((head.origin.as_str(), head.size), (ORIGIN, 5));
        assert_eq!(size, 5);
        assert_eq!(head.root, creditops_audit::merkle::root(&leaves));
        assert_eq!(root, head.root.to_vec());
    })
    .await;
}

/// One instance leads the periodic sequencer; when its session ends another
/// takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sequencer_leader_at_a_time() {
    with_db(|store, url| async move {
        let other = PgStore::connect(&url, ORIGIN, 2)
            .await
            .expect("second store");
        let mut lease = store
            .sequencer_lease()
            .await
            .expect("lease")
            .expect("leads");
        assert!(lease.still_held().await);
        assert!(other.sequencer_lease().await.expect("lease").is_none());
        drop(lease);
        // The session closes in the background; the lock goes with it.
        let mut taken = None;
        for _ in 0..100 {
            taken = other.sequencer_lease().await.expect("lease");
            if taken.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(taken.is_some(), "the second instance took over");
        other.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_rows_are_corrupt() {
    with_db(|store, url| async move {
        let case_id = seed(&store).await;
        let mut conn = raw(&url).await;
        // A currency code without minor units passes the CHECK but is no money.
        sqlx::query("UPDATE cases SET currency = 'XXX'")
            .execute(&mut conn)
            .await
            .expect("tamper");
        let _ = conn.close().await;
        let mut tx = store.begin_read().await.expect("begin_read");
        let err = tx.case(case_id).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(
            !err.to_string().contains("XXX"),
            "no stored values in messages"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_money_is_never_float() {
    with_db(|store, url| async move {
        assert_eq!(store.backend(), "postgres");
        assert_eq!(store.audit_origin(), ORIGIN);
        seed(&store).await;
        // Connecting again (another service) finds the schema applied.
        let again = PgStore::connect(&url, ORIGIN, 2).await.expect("reconnect");
        let mut tx = again.begin().await.expect("begin");
        tx.append_audit(&event(4)).await.expect("append");
        tx.commit().await.expect("commit");
        again.close().await;
        assert_eq!(verify(&store).await, Ok(4));

        let mut conn = raw(&url).await;
        let floats: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = 'public' \
             AND data_type IN ('real', 'double precision', 'money')",
        )
        .fetch_one(&mut conn)
        .await
        .expect("column types");
        assert_eq!(floats, 0);
        let _ = conn.close().await;
    })
    .await;
}

const RISK_TAMPERING: [&str; 21] = [
    "UPDATE limit_versions SET amount_minor = 1 WHERE status = 'approved'",
    "UPDATE limit_versions SET status = 'rejected' WHERE status = 'approved'",
    "UPDATE limit_versions SET amount_minor = 1 WHERE status = 'pending'",
    "DELETE FROM limit_versions",
    "TRUNCATE limit_versions",
    "UPDATE capital_versions SET tier1_minor = 1",
    "DELETE FROM capital_versions",
    "TRUNCATE capital_versions",
    "UPDATE liquidity_positions SET floor_percent = '100'",
    "DELETE FROM liquidity_positions",
    "TRUNCATE liquidity_positions",
    "UPDATE reservations SET status = 'active', closed_at = NULL, closed_by = NULL \
     WHERE status = 'consumed'",
    "UPDATE reservations SET amount_minor = 1 WHERE status = 'active'",
    "DELETE FROM reservations",
    "TRUNCATE reservations",
    "UPDATE breaches SET resolved_at = NULL WHERE resolved_at IS NOT NULL",
    "UPDATE breaches SET resolved_at = now() WHERE resolved_at IS NOT NULL",
    "UPDATE breaches SET severity = 'soft' WHERE resolved_at IS NULL",
    "DELETE FROM breaches WHERE resolved_at IS NOT NULL",
    "DELETE FROM breaches",
    "TRUNCATE breaches",
];

/// The risk tables (0003): decided limit versions, capital and liquidity
/// versions, closed reservations and breaches never change; nothing is
/// deleted or truncated, also by the owner in replica mode; only a pending
/// version is decided, an active reservation closed, an open breach resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_tables_refuse_changes_deletes_and_truncates() {
    with_db(|store, url| async move {
        let case_id = seed(&store).await;
        seed_risk(&store, now(), case_id).await;
        let mut conn = raw(&url).await;
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE NOT tgisinternal \
             AND tgrelid::regclass::text IN ('limit_versions', 'capital_versions', \
             'liquidity_positions', 'reservations', 'breaches') ORDER BY tgname",
        )
        .fetch_all(&mut conn)
        .await
        .expect("triggers");
        let always = |name: &str| (name.to_owned(), "A".to_owned());
        // The refusals fire always, also in replica mode; the running
        // liquidity totals are derived data, kept where the change
        // originates (a replica receives the origin's totals).
        let mut expected: Vec<(String, String)> = [
            "breaches_final",
            "breaches_no_delete",
            "breaches_no_truncate",
            "capital_versions_append_only",
            "capital_versions_no_truncate",
            "limit_versions_final",
            "limit_versions_no_delete",
            "limit_versions_no_truncate",
            "liquidity_positions_append_only",
            "liquidity_positions_no_truncate",
            "reservations_final",
            "reservations_no_delete",
            "reservations_no_truncate",
        ]
        .map(always)
        .to_vec();
        expected.push(("reservations_liquidity_totals".into(), "O".into()));
        expected.sort();
        assert_eq!(triggers, expected);
        for sql in RISK_TAMPERING {
            refused(&mut conn, sql).await;
        }
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut conn)
            .await
            .expect("replica role");
        for sql in RISK_TAMPERING {
            refused(&mut conn, sql).await;
        }
        sqlx::query("SET session_replication_role = DEFAULT")
            .execute(&mut conn)
            .await
            .expect("default role");
        // The CHECKs hold for raw SQL too.
        for sql in [
            "UPDATE limit_versions SET status = 'approved', decided_by = proposed_by, \
             decided_at = proposed_at WHERE status = 'pending'",
            "INSERT INTO breaches (id, subject, rule, check_name, limit_value, usage_value, \
             amount_over, severity, cause, owner, detected_at) VALUES (gen_random_uuid(), 's', \
             'R3', 'c', '1', '2', '1', 'within', 'c', 'o', now())",
            "UPDATE imported_balances SET amount_minor = -1",
        ] {
            sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
        }
        // What may change, changes.
        for sql in [
            "UPDATE limit_versions SET status = 'rejected', decided_by = 'lo-1', \
             decided_at = now() WHERE status = 'pending'",
            "UPDATE reservations SET status = 'expired', closed_at = now() \
             WHERE status = 'active'",
            "UPDATE breaches SET resolved_at = now() WHERE resolved_at IS NULL",
            "UPDATE imported_balances SET amount_minor = 5",
        ] {
            let done = sqlx::query(sql).execute(&mut conn).await.expect(sql);
            assert_eq!(done.rows_affected(), 1, "{sql}");
        }
        let _ = conn.close().await;
        assert_eq!(verify(&store).await, Ok(3));
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on loopback: connection refused at once.
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/none", ORIGIN, 1)
        .await
        .expect_err("no server");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(err.to_string(), "the database is unavailable");
}

/// One of the risk locks of [`creditops_store::Tx`].
#[derive(Debug, Clone, Copy)]
enum RiskLock {
    Exclusive,
    Shared,
    /// The shared lock, held from the transaction's begin.
    SharedFromBegin,
    Subject(&'static str),
    /// A subject's hold, taken by the statement that reads limits.
    SubjectReadingLimits(&'static str),
}

/// A transaction holding `lock`.
async fn holding(store: &PgStore, lock: RiskLock) -> Box<dyn creditops_store::Tx> {
    let mut tx = match lock {
        RiskLock::SharedFromBegin => store.begin_sharing_risk().await.unwrap(),
        _ => store.begin().await.unwrap(),
    };
    match lock {
        RiskLock::Exclusive => tx.lock_risk().await,
        RiskLock::Shared => tx.lock_risk_shared().await,
        // Held already; taking it again is a no-op.
        RiskLock::SharedFromBegin => tx.lock_risk_shared().await,
        RiskLock::Subject(name) => tx.lock_risk_subjects(&[name.to_owned()]).await,
        RiskLock::SubjectReadingLimits(name) => {
            let country = "DE".parse().unwrap();
            let subject = creditops_store_sql::prelude::LimitSubject::Country(country);
            tx.lock_subject_reading_limits(name, &[subject])
                .await
                .map(drop)
        }
    }
    .unwrap();
    tx
}

/// R4, R5: which risk locks exclude each other. Approvals of unrelated
/// borrowers share the parameters and run side by side; one subject is
/// held by one transaction at a time; the exclusive
/// lock waits for every holder. The second transaction must wait for the
/// first to commit exactly when the table says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_locks_exclude_exactly_what_they_protect() {
    use RiskLock::{Exclusive, Shared, SharedFromBegin, Subject, SubjectReadingLimits};
    with_db(|store, _| async move {
        let table = [
            (Shared, Shared, false),
            (Shared, Exclusive, true),
            (Exclusive, Shared, true),
            (Exclusive, Exclusive, true),
            (SharedFromBegin, Exclusive, true),
            (SharedFromBegin, Shared, false),
            (Exclusive, SharedFromBegin, true),
            (SharedFromBegin, Subject("unit:group:a"), false),
            (
                SubjectReadingLimits("unit:group:a"),
                Subject("unit:group:a"),
                true,
            ),
            (
                Subject("unit:group:a"),
                SubjectReadingLimits("unit:group:a"),
                true,
            ),
            (
                SubjectReadingLimits("unit:group:a"),
                Subject("unit:group:b"),
                false,
            ),
            (Subject("unit:group:a"), Subject("unit:group:a"), true),
            (Subject("unit:group:a"), Subject("unit:group:b"), false),
            (Subject("sector:G47"), Subject("unit:group:a"), false),
        ];
        for (held, wanted, waits) in table {
            let first = holding(&store, held).await;
            let waiting = {
                let store = store.clone();
                tokio::spawn(async move {
                    let second = holding(&store, wanted).await;
                    second.commit().await.unwrap();
                })
            };
            let blocked = tokio::time::timeout(std::time::Duration::from_millis(300), async {
                while !waiting.is_finished() {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
            })
            .await
            .is_err();
            assert_eq!(blocked, waits, "{held:?} held, {wanted:?} wanted");
            first.commit().await.unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
                .await
                .expect("the waiter goes on after commit")
                .unwrap();
        }
    })
    .await;
}

/// Staff lifecycle (S4): an entry of a person's dated history is only ever
/// ended, from now on (its `valid_to` set or moved earlier, not into the
/// past), never rewritten, deleted or truncated, also by the owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_history_entries_may_only_be_ended() {
    with_db(|store, url| async move {
        use creditops_domain::{
            CompetenceGrant, History, Role, RoleAssignment, Side, StaffId, StaffMember,
            StaffStatus, Timestamp, UnitAssignment, UnitId,
        };
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let unit = UnitId::parse("mkt").expect("unit");
        let member = StaffMember {
            id: StaffId::parse("p-1").expect("id"),
            status: StaffStatus::Active,
            units: vec![UnitAssignment {
                unit_id: unit.clone(),
                side: Side::Market,
                valid_from: from,
                valid_to: None,
            }],
            roles: vec![RoleAssignment {
                role: Role::LoanOfficer,
                valid_from: from,
                valid_to: None,
            }],
            competences: vec![CompetenceGrant {
                side: Side::Market,
                level: 2,
                valid_from: from,
                valid_to: None,
            }],
        };
        let mut tx = store.begin().await.expect("begin");
        tx.upsert_unit(&unit, "Market", Side::Market)
            .await
            .expect("unit");
        tx.insert_staff(&member).await.expect("person");
        let end = chrono::Utc::now();
        for history in [History::Roles, History::Units] {
            for cut in member.cuts_at(history, end) {
                tx.cut_history(&member.id, &cut).await.expect("cut");
            }
        }
        tx.commit().await.expect("commit");

        let mut conn = raw(&url).await;
        for sql in [
            "UPDATE role_assignments SET role = 'user_admin'",
            "UPDATE role_assignments SET valid_to = NULL",
            "UPDATE role_assignments SET valid_to = '2099-01-01T00:00:00Z'",
            "UPDATE role_assignments SET valid_from = '2020-01-01T00:00:00Z'",
            "UPDATE unit_assignments SET side = 'backoffice'",
            "UPDATE competence_grants SET level = 4",
            // Ending in the past rewrites the history S4 and S5 rely on.
            "UPDATE competence_grants SET valid_to = '2026-02-01T00:00:00Z'",
        ] {
            let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
            assert!(
                err.to_string().contains("may only be ended"),
                "{sql}: {err}"
            );
        }
        for sql in [
            "DELETE FROM role_assignments",
            "DELETE FROM unit_assignments",
            "DELETE FROM competence_grants",
            "TRUNCATE competence_grants",
        ] {
            refused(&mut conn, sql).await;
        }
        // Ending from now on is what the lifecycle does.
        sqlx::query("UPDATE competence_grants SET valid_to = now()")
            .execute(&mut conn)
            .await
            .expect("ending from now on");
    })
    .await;
}

/// Kept actor lookups (S4, S8): every write to what an actor lookup reads,
/// by anyone, moves the authority version, and a transaction run under a
/// lookup kept from an earlier version commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_under_a_kept_lookup_commits_only_while_the_authority_holds() {
    with_db(|store, url| async move {
        seed(&store).await;
        let id = StaffId::parse("lo-1").expect("id");
        let found = store
            .staff_member_with_rule_sets(&id)
            .await
            .expect("lookup")
            .expect("lo-1");
        let kept = found.authority.expect("a version with the lookup");
        let kept_version = |store: &PgStore| store.kept_lookup(&id).and_then(|l| l.authority);
        assert_eq!(kept_version(&store), Some(kept));
        assert_eq!(store.authority_version().await.expect("now"), Some(kept));

        // Nothing moved: commits, with events and without.
        commit_under(&store, kept, None, &[event(10)])
            .await
            .expect("commits under the version read");
        commit_under(&store, kept, None, &[])
            .await
            .expect("commits without events too");

        // Every write statement to those tables moves it, even one that
        // finds no row.
        let mut conn = raw(&url).await;
        let mut version = kept;
        for change in [
            "UPDATE staff SET status = status WHERE id = 'lo-1'",
            "UPDATE unit_assignments SET valid_to = now() WHERE staff_id = 'nobody'",
            "UPDATE role_assignments SET valid_to = now() WHERE staff_id = 'nobody'",
            "UPDATE competence_grants SET valid_to = now() WHERE staff_id = 'nobody'",
        ] {
            sqlx::query(change).execute(&mut conn).await.expect(change);
            let now = store.authority_version().await.expect("now").expect("kept");
            assert!(now > version, "{change} moves the version");
            version = now;
        }
        commit_under(&store, version, Some(2), &[])
            .await
            .expect("a rule set");
        let now = store.authority_version().await.expect("now").expect("kept");
        assert!(now > version, "a rule set moves the version");
        assert_eq!(kept_version(&store), None, "the kept lookup is dropped");

        // Under the old version: nothing commits, with events or without.
        let count = "SELECT COUNT(*) FROM audit_entries";
        let before: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut conn)
            .await
            .expect("n");
        for events in [vec![event(11), event(12)], vec![]] {
            let refused = commit_under(&store, kept, None, &events).await;
            assert!(
                matches!(&refused, Err(StoreError::Conflict(m)) if m == AUTHORITY_CHANGED),
                "{refused:?}"
            );
        }
        let after: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut conn)
            .await
            .expect("n");
        assert_eq!(after, before, "no event of a refused commit is stored");

        // A fresh lookup carries the version now and is kept again.
        let fresh = store
            .staff_member_with_rule_sets(&id)
            .await
            .expect("lookup")
            .expect("lo-1");
        assert_eq!(fresh.authority, Some(now));
        assert_eq!(kept_version(&store), Some(now));
        commit_under(&store, now, None, &[event(13)])
            .await
            .expect("commits under the current version");

        // A command that changes the directory itself is checked against the
        // version others left, not against its own change.
        commit_under(&store, now, Some(3), &[event(14)])
            .await
            .expect("its own change does not refuse it");
        let refused = commit_under(&store, now, Some(4), &[event(15)]).await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict(m)) if m == AUTHORITY_CHANGED),
            "moved by rule set 3 before: {refused:?}"
        );
    })
    .await;
}

/// Commits a transaction under the kept lookup's `version` that stores the
/// rule set `rule_set` (a change of the directory, if given) and `events`.
async fn commit_under(
    store: &PgStore,
    version: u64,
    rule_set: Option<i64>,
    events: &[creditops_store::NewAuditEvent],
) -> Result<(), StoreError> {
    let mut tx = store.begin().await.expect("begin");
    tx.expect_authority(version).expect("expect");
    if let Some(number) = rule_set {
        let rules = RuleSet {
            version: number,
            ..RuleSet::initial()
        };
        tx.insert_rule_set(&rules, None).await.expect("rule set");
    }
    for event in events {
        tx.append_audit(event).await.expect("event");
    }
    tx.commit().await
}
