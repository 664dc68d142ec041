//! The contract of the audit trail: a verifiable chain, filters, concurrent
//! appends, reconciliation and checkpoints (A1, A2).

use super::prelude::*;

pub async fn checkpoints_handed_out_are_found_by_size(store: Arc<dyn Store>) {
    let checkpoint = |size: u64, note: &str, minute: i64| crate::StoredCheckpoint {
        tree_size: size,
        root: [u8::try_from(size).unwrap(); 32],
        note: note.to_owned(),
        signed_at: at(minute),
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.latest_checkpoint(u64::MAX).await.expect("none"), None);
    for (size, note, minute) in [(3, "a", 1), (5, "b", 2), (5, "c", 3), (9, "d", 4)] {
        tx.insert_checkpoint(&checkpoint(size, note, minute))
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("read");
    let latest = |found: Option<crate::StoredCheckpoint>| found.map(|c| (c.tree_size, c.note));
    assert_eq!(
        latest(tx.latest_checkpoint(u64::MAX).await.expect("all")),
        Some((9, "d".to_owned()))
    );
    let at_five = tx.latest_checkpoint(8).await.expect("<= 8").expect("some");
    assert_eq!((at_five.tree_size, at_five.note.as_str()), (5, "c"));
    assert_eq!(at_five.root, [5; 32]);
    assert_eq!(at_five.signed_at, at(3));
    assert_eq!(
        latest(tx.latest_checkpoint(4).await.expect("<= 4")),
        Some((3, "a".to_owned()))
    );
    assert_eq!(latest(tx.latest_checkpoint(2).await.expect("<= 2")), None);
    drop(tx);

    // An event appended before a checkpoint commits with it (PostgreSQL
    // writes both in one statement)...
    let read = audit_event(
        "audit.checkpoint",
        Outcome::Ok,
        Some(ANALYST),
        None,
        None,
        at(5),
    );
    let mut tx = store.begin().await.expect("begin");
    tx.append_audit(&read).await.expect("append");
    tx.insert_checkpoint(&checkpoint(11, "e", 5))
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    let stored = read_events(store.as_ref(), &all_events()).await;
    assert!(stored.iter().any(|e| e.event_id == read.event_id));
    let mut tx = store.begin_read().await.expect("read");
    assert_eq!(
        latest(tx.latest_checkpoint(u64::MAX).await.expect("all")),
        Some((11, "e".to_owned()))
    );
    drop(tx);
    // ...and one that cannot be stored (its id exists) takes the checkpoint
    // with it: whichever call refuses, nothing of the transaction stays.
    let mut tx = store.begin().await.expect("begin");
    let refused = match tx.append_audit(&read).await {
        Err(e) => Err(e),
        Ok(()) => match tx.insert_checkpoint(&checkpoint(12, "f", 6)).await {
            Err(e) => Err(e),
            Ok(()) => tx.commit().await,
        },
    };
    assert!(refused.is_err(), "a second event with the same id");
    let mut tx = store.begin_read().await.expect("read");
    assert_eq!(
        latest(tx.latest_checkpoint(u64::MAX).await.expect("all")),
        Some((11, "e".to_owned()))
    );
}

pub async fn audit_append_links_a_verifiable_chain(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert!(read_events(store, &all_events()).await.is_empty());
    let case_id = CaseId::generate();
    let borrower_id = BorrowerId::generate();
    let mut appended = Vec::new();
    let mut tx = store.begin().await.expect("begin");
    for n in 1..=5 {
        let event = audit_event(
            "case.first_vote",
            Outcome::Ok,
            Some(LOAN_OFFICER),
            Some(case_id),
            Some(borrower_id),
            at(n),
        );
        tx.append_audit(&event).await.expect("append");
        appended.push(event);
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    for n in 6..=8 {
        let event = audit_event("request.refused", Outcome::Denied, None, None, None, at(n));
        tx.append_audit(&event).await.expect("append");
        appended.push(event);
    }
    tx.commit().await.expect("commit");

    let stored = read_events(store, &all_events()).await;
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    for (s, e) in stored.iter().zip(&appended) {
        assert_eq!(s.event_id, e.event_id);
        assert_eq!(s.body, e.body, "body stored verbatim");
        assert_eq!(s.leaf_hash, e.leaf_hash.to_vec());
        assert_eq!(s.recorded_at, e.recorded_at);
        assert_eq!(s.actor, e.actor);
        assert_eq!(s.action, e.action);
        assert_eq!(s.outcome, e.outcome);
        assert_eq!(s.case_id, e.case_id);
        assert_eq!(s.borrower_id, e.borrower_id);
    }
    let genesis = creditops_audit::chain_genesis(CONTRACT_ORIGIN);
    assert_eq!(
        stored[0].chain_hash,
        creditops_audit::chain_next(&genesis, &appended[0].leaf_hash).to_vec()
    );
    let report = verify_chain(store).await;
    assert_eq!(report.events, 8);
    assert_eq!(report.last_seq, Some(8));
    assert_eq!(report.head, hex_lower(&stored[7].chain_hash));
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn audit_filters_narrow_and_page(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (case_a, case_b) = (CaseId::generate(), CaseId::generate());
    let (borrower_x, borrower_y) = (BorrowerId::generate(), BorrowerId::generate());
    let mut tx = store.begin().await.expect("begin");
    for e in &filter_events([case_a, case_b], [borrower_x, borrower_y]) {
        tx.append_audit(e).await.expect("append");
    }
    tx.commit().await.expect("commit");

    for (name, filter, expected) in filter_cases([case_a, case_b], borrower_y) {
        assert_eq!(seqs(store, &filter).await, expected, "filter {name}");
    }

    // Paging through one case, two at a time.
    let mut filter = AuditFilter {
        case_id: Some(case_a),
        limit: 2,
        ..AuditFilter::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = seqs(store, &filter).await;
        let Some(&last) = page.last() else { break };
        filter.after_seq = Some(last);
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![1, 2], vec![5]]);
}

/// Six events over two cases, two borrowers, two actors and five hours.
fn filter_events(
    [case_a, case_b]: [CaseId; 2],
    [borrower_x, borrower_y]: [BorrowerId; 2],
) -> [NewAuditEvent; 6] {
    let hour = 3600;
    [
        audit_event(
            "case.created",
            Outcome::Ok,
            Some("lo-1"),
            Some(case_a),
            Some(borrower_x),
            at(0),
        ),
        audit_event(
            "case.first_vote",
            Outcome::Ok,
            Some("lo-1"),
            Some(case_a),
            Some(borrower_x),
            at(hour),
        ),
        audit_event(
            "case.first_vote",
            Outcome::Denied,
            Some("ca-1"),
            Some(case_b),
            Some(borrower_y),
            at(2 * hour),
        ),
        audit_event(
            "request.refused",
            Outcome::Denied,
            None,
            None,
            None,
            at(3 * hour),
        ),
        audit_event(
            "case.returned",
            Outcome::Ok,
            Some("ca-1"),
            Some(case_a),
            Some(borrower_x),
            at(4 * hour),
        ),
        audit_event(
            "borrower.created",
            Outcome::Ok,
            Some("lo-1"),
            None,
            Some(borrower_y),
            at(5 * hour),
        ),
    ]
}

/// Each filter of [`audit_filters_narrow_and_page`] with the sequence
/// numbers it selects from [`filter_events`].
fn filter_cases(
    cases: [CaseId; 2],
    borrower_y: BorrowerId,
) -> Vec<(&'static str, AuditFilter, Vec<i64>)> {
    let mut all = field_filter_cases(cases, borrower_y);
    all.extend(window_filter_cases());
    all
}

/// Filters on the case, borrower, actor, action and outcome columns (a
/// quote in a value is data, not SQL).
fn field_filter_cases(
    [case_a, case_b]: [CaseId; 2],
    borrower_y: BorrowerId,
) -> Vec<(&'static str, AuditFilter, Vec<i64>)> {
    let base = all_events();
    vec![
        ("everything", base.clone(), vec![1, 2, 3, 4, 5, 6]),
        (
            "case",
            AuditFilter {
                case_id: Some(case_a),
                ..base.clone()
            },
            vec![1, 2, 5],
        ),
        (
            "other case",
            AuditFilter {
                case_id: Some(case_b),
                ..base.clone()
            },
            vec![3],
        ),
        (
            "unknown case",
            AuditFilter {
                case_id: Some(CaseId::generate()),
                ..base.clone()
            },
            vec![],
        ),
        (
            "borrower",
            AuditFilter {
                borrower_id: Some(borrower_y),
                ..base.clone()
            },
            vec![3, 6],
        ),
        (
            "actor",
            AuditFilter {
                actor: Some("lo-1".into()),
                ..base.clone()
            },
            vec![1, 2, 6],
        ),
        (
            "action",
            AuditFilter {
                action: Some("case.first_vote".into()),
                ..base.clone()
            },
            vec![2, 3],
        ),
        (
            "outcome",
            AuditFilter {
                outcome: Some("denied".into()),
                ..base.clone()
            },
            vec![3, 4],
        ),
        (
            "injection is data",
            AuditFilter {
                actor: Some("' OR '1'='1".into()),
                ..base.clone()
            },
            vec![],
        ),
    ]
}

/// Filters on time, sequence and count, and a combined filter.
fn window_filter_cases() -> Vec<(&'static str, AuditFilter, Vec<i64>)> {
    let hour = 3600;
    let base = all_events();
    vec![
        (
            "from is inclusive",
            AuditFilter {
                from: Some(at(2 * hour)),
                ..base.clone()
            },
            vec![3, 4, 5, 6],
        ),
        (
            "to is exclusive",
            AuditFilter {
                to: Some(at(2 * hour)),
                ..base.clone()
            },
            vec![1, 2],
        ),
        (
            "window",
            AuditFilter {
                from: Some(at(hour)),
                to: Some(at(4 * hour)),
                ..base.clone()
            },
            vec![2, 3, 4],
        ),
        (
            "microsecond bounds",
            AuditFilter {
                from: Some(at(hour) + chrono::Duration::microseconds(1)),
                to: Some(at(4 * hour) + chrono::Duration::microseconds(1)),
                ..base.clone()
            },
            vec![3, 4, 5],
        ),
        (
            "after_seq",
            AuditFilter {
                after_seq: Some(4),
                ..base.clone()
            },
            vec![5, 6],
        ),
        (
            "limit",
            AuditFilter {
                limit: 2,
                ..base.clone()
            },
            vec![1, 2],
        ),
        (
            "limit 0",
            AuditFilter {
                limit: 0,
                ..base.clone()
            },
            vec![],
        ),
        (
            "combined",
            AuditFilter {
                actor: Some("ca-1".into()),
                outcome: Some("ok".into()),
                ..base.clone()
            },
            vec![5],
        ),
    ]
}

pub async fn concurrent_appends_get_a_gapless_chain(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            tx.append_audit(&simple_event(n)).await.expect("append");
            tokio::task::yield_now().await;
            tx.commit().await.expect("commit");
            // Sequencer rounds racing the appenders (PostgreSQL).
            if let Some(sequencer) = store.audit_sequencer() {
                sequencer.sequence_audit(None).await.expect("sequence");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(
        seqs(store.as_ref(), &all_events()).await,
        (1..=16).collect::<Vec<_>>()
    );
    let report = verify_chain(store.as_ref()).await;
    assert_eq!(report.events, 16);
    assert_eq!(report.last_seq, Some(16));
}

/// A1: every borrower, case, vote and decision row carries the id of its
/// transaction's first audit event; a row written without an event is
/// reported, a row with its event is not.
pub async fn reconciliation_finds_rows_without_their_event(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let audited = borrower("Audited AG");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&audited).await.expect("insert");
    let mut record = AuditRecord::new("market", AuditAction::BorrowerCreated, Outcome::Ok, at(1));
    record.borrower_id = Some(audited.id);
    crate::append_record(tx.as_mut(), &record)
        .await
        .expect("append");
    // A second event of the same transaction keeps its own id.
    crate::append_record(tx.as_mut(), &record)
        .await
        .expect("append a second event");
    tx.commit().await.expect("commit");
    let silent = borrower("Silent AG");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&silent).await.expect("insert");
    tx.commit().await.expect("commit");

    let events = read_events(store, &all_events()).await;
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].event_id, events[1].event_id);
    assert_ne!(
        events[0].event_id, record.id,
        "the first event took the stamped id"
    );
    let mut tx = store.begin_read().await.expect("begin_read");
    let rows = tx.unaudited_rows(10).await.expect("reconcile");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].table, "borrowers");
    assert_eq!(rows[0].key, silent.id.to_string());
    assert!(rows[0].audit_event_id.is_some());
    assert!(tx.unaudited_rows(0).await.expect("reconcile").is_empty());
}

pub async fn the_stored_tree_holds_every_complete_subtree(store: Arc<dyn Store>) {
    let store = store.as_ref();
    // Three transactions of different sizes: nodes complete across them.
    for (first, last) in [(1, 5), (6, 6), (7, 37)] {
        let mut tx = store.begin().await.expect("begin");
        for n in first..=last {
            tx.append_audit(&simple_event(n)).await.expect("append");
        }
        tx.commit().await.expect("commit");
    }
    let leaves: Vec<creditops_audit::Hash> = read_events(store, &all_events())
        .await
        .iter()
        .map(|e| creditops_audit::hash_from_slice(&e.leaf_hash).expect("32 bytes"))
        .collect();
    assert_eq!(leaves.len(), 37);
    let mut tx = store.begin_read().await.expect("read");
    assert_eq!(tx.audit_size().await.expect("size"), 37);
    let mut positions = Vec::new();
    let mut expected = Vec::new();
    for level in 0..7u8 {
        let width = 1usize << level;
        for index in 0..=(37 / width) as u64 {
            let begin = index as usize * width;
            let end = begin + width;
            positions.push((level, index));
            // A subtree not complete within the log is not stored.
            expected.push((end <= 37).then(|| creditops_audit::merkle::root(&leaves[begin..end])));
        }
    }
    assert_eq!(tx.audit_nodes(&positions).await.expect("nodes"), expected);
    assert_eq!(tx.audit_nodes(&[]).await.expect("none"), Vec::new());
}

pub async fn verified_heads_are_kept_largest_first(store: Arc<dyn Store>) {
    let head = |size: u64, note: &str, minute: i64| crate::VerifiedHead {
        tree_size: size,
        chain_hash: [u8::try_from(size).unwrap(); 32],
        note: note.to_owned(),
        verified_at: at(minute),
    };
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.verified_heads(5).await.expect("none").is_empty());
    for (size, note, minute) in [(3, "a", 1), (9, "b", 2), (5, "c", 3), (9, "again", 4)] {
        tx.insert_verified_head(&head(size, note, minute))
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("read");
    let heads = tx.verified_heads(2).await.expect("heads");
    // The first head of a size stays; later ones of the same size are no-ops.
    assert_eq!(heads, vec![head(9, "b", 2), head(5, "c", 3)]);
}
