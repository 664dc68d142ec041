//! What the PostgreSQL test files share: the audit origin, a fixed time,
//! audit events, raw connections and chain verification.

// Test code: a panic is a failed test; not every file uses every helper.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use creditops_audit::{AuditAction, AuditRecord, ChainVerifier, CompactRange, Outcome};
use creditops_domain::Timestamp;
use creditops_store::{AuditFilter, AuditSequencer, NewAuditEvent, Store};
use creditops_store_postgres::PgStore;
use sqlx::{Connection, PgConnection};

pub const ORIGIN: &str = "creditops.test/postgres";

pub fn now() -> Timestamp {
    "2026-03-02T09:15:30.123456Z".parse().expect("time")
}

pub fn event(n: i64) -> NewAuditEvent {
    let at = now() + chrono::Duration::seconds(n);
    let record = AuditRecord::new("pg-test", AuditAction::AuditQuery, Outcome::Ok, at);
    let body = record.canonical_body().expect("body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: creditops_audit::leaf_hash(&body),
        body,
        recorded_at: at,
        actor: Some("lo-1".into()),
        action: AuditAction::AuditQuery.as_str().to_owned(),
        outcome: "ok".into(),
        case_id: None,
        borrower_id: None,
    }
}

pub async fn raw(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("raw connection")
}

pub async fn verify(store: &PgStore) -> Result<u64, i64> {
    store
        .flush_audit(std::time::Duration::from_secs(10))
        .await
        .expect("flush");
    let mut tx = store.begin_read().await.expect("begin_read");
    let events = tx
        .audit_events(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    let mut verifier = ChainVerifier::new(ORIGIN, 1);
    for e in &events {
        verifier
            .push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash)
            .map_err(|f| f.seq)?;
    }
    Ok(verifier.finish().events)
}

/// The node table holds exactly the complete subtrees of the tree over the
/// chain's leaves.
pub async fn assert_tree_matches_chain(url: &str) {
    let mut conn = raw(url).await;
    let leaves: Vec<Vec<u8>> = sqlx::query_scalar("SELECT leaf_hash FROM audit_chain ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .expect("leaves");
    let nodes: Vec<(i16, i64, Vec<u8>)> =
        sqlx::query_as("SELECT level, idx, hash FROM audit_tree ORDER BY level, idx")
            .fetch_all(&mut conn)
            .await
            .expect("nodes");
    let _ = conn.close().await;
    let mut range = CompactRange::new();
    let mut expected = Vec::new();
    for leaf in &leaves {
        range.push_reporting(leaf.as_slice().try_into().expect("32 bytes"), |node| {
            expected.push((i16::from(node.level), node.index as i64, node.hash.to_vec()))
        });
    }
    expected.sort();
    assert_eq!(nodes, expected);
}
