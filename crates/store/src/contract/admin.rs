//! The contract of rule sets and four-eyes change proposals (S9).

use super::prelude::*;

pub async fn rule_sets_are_versioned(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(tx.rule_sets().await.expect("rule sets").is_empty());
    drop(tx);

    let mut v2 = RuleSet::initial();
    v2.version = 2;
    v2.valid_from = day(10);
    v2.parameters.cooling_off_months = 3;
    v2.parameters.divergence = DivergencePolicy::Decline;
    v2.parameters.single_vote_below = Some("12345.67".parse().expect("decimal"));
    v2.parameters.competence_order.levels[0].up_to = Some("250000.005".parse().expect("decimal"));
    let v1 = RuleSet::initial();
    let mut tx = store.begin().await.expect("begin");
    // Stored out of order, listed by version.
    tx.insert_rule_set(&v2, None).await.expect("v2");
    tx.insert_rule_set(&v1, None).await.expect("v1");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let again = RuleSet {
        valid_from: day(20),
        ..v2.clone()
    };
    let err = tx
        .insert_rule_set(&again, None)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    // A transaction reads the sets once, and again after it inserts one.
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.rule_sets().await.expect("rule sets").len(), 2);
    let v3 = RuleSet {
        version: 3,
        valid_from: day(30),
        ..v2.clone()
    };
    tx.insert_rule_set(&v3, None).await.expect("v3");
    let seen = tx.rule_sets().await.expect("rule sets");
    assert_eq!(seen.last(), Some(&v3), "its own insert is seen");
    drop(tx);

    // Sets read just before a transaction serve it (one read per command);
    // a transaction that read its own keeps them; its own insert is seen.
    let before = vec![v1.clone()];
    let mut tx = store.begin().await.expect("begin");
    tx.use_rule_sets(before.clone());
    assert_eq!(tx.rule_sets().await.expect("rule sets"), before);
    tx.insert_rule_set(&v3, None).await.expect("v3");
    assert_eq!(tx.rule_sets().await.expect("rule sets").len(), 3);
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.rule_sets().await.expect("rule sets").len(), 2);
    tx.use_rule_sets(before);
    assert_eq!(tx.rule_sets().await.expect("rule sets").len(), 2);
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    let stored = tx.rule_sets().await.expect("rule sets");
    assert_eq!(stored, vec![v1, v2.clone()]);
    assert_eq!(
        stored[1]
            .parameters
            .single_vote_below
            .map(|d| d.to_string()),
        Some("12345.67".to_owned()),
        "amounts are exact"
    );
    assert_eq!(
        creditops_domain::rules::in_force(&stored, day(10)).map(|r| r.version),
        Some(2)
    );
}

pub async fn proposals_round_trip_filter_and_page(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let kinds = [
        ProposalKind::RoleAssignment,
        ProposalKind::CompetenceGrant,
        ProposalKind::RuleSet,
    ];
    let proposals: Vec<ChangeProposal> = kinds
        .iter()
        .enumerate()
        .map(|(n, kind)| proposal(*kind, ORIGINATOR, at(100 + 10 * n as i64)))
        .collect();
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.proposal(proposals[0].id).await.expect("none"), None);
    for p in &proposals {
        tx.insert_proposal(p).await.expect("insert");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_proposal(&proposals[0])
        .await
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_proposal(&proposal(ProposalKind::RuleSet, "nobody", at(1)))
        .await
        .expect_err("unknown proposer");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Decide the middle one.
    let mut decided = proposals[1].clone();
    decided.status = ProposalStatus::Approved;
    decided.decided_by = Some(staff_id(ANALYST));
    decided.decided_at = Some(at(500));
    let mut tx = store.begin().await.expect("begin");
    tx.decide_proposal(&decided).await.expect("decide");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    for p in [&proposals[0], &decided, &proposals[2]] {
        assert_eq!(tx.proposal(p.id).await.expect("load").as_ref(), Some(p));
    }
    let ids = |list: Vec<ChangeProposal>| list.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let page = |status, kinds: &[ProposalKind], newest_first, after, limit| ProposalFilter {
        status,
        kinds: kinds.to_vec(),
        newest_first,
        after,
        limit,
    };
    let all = page(None, &[], true, None, 10);
    assert_eq!(
        ids(tx.proposals(&all).await.expect("all")),
        vec![proposals[2].id, proposals[1].id, proposals[0].id],
        "newest first"
    );
    let pending = page(Some(ProposalStatus::Pending), &[], true, None, 10);
    assert_eq!(
        ids(tx.proposals(&pending).await.expect("pending")),
        vec![proposals[2].id, proposals[0].id]
    );
    let approved = page(Some(ProposalStatus::Approved), &[], false, None, 10);
    assert_eq!(
        tx.proposals(&approved).await.expect("approved"),
        vec![decided]
    );
    let rejected = page(Some(ProposalStatus::Rejected), &[], false, None, 10);
    assert!(tx.proposals(&rejected).await.expect("rejected").is_empty());

    // Kinds select; pages follow their cursor in either direction.
    let grants_and_rules = [ProposalKind::CompetenceGrant, ProposalKind::RuleSet];
    let of_kinds = page(None, &grants_and_rules, false, None, 10);
    assert_eq!(
        ids(tx.proposals(&of_kinds).await.expect("kinds")),
        vec![proposals[1].id, proposals[2].id]
    );
    let first = page(None, &[], false, None, 2);
    assert_eq!(
        ids(tx.proposals(&first).await.expect("first page")),
        vec![proposals[0].id, proposals[1].id]
    );
    let second = page(None, &[], false, Some(proposals[1].id), 2);
    assert_eq!(
        ids(tx.proposals(&second).await.expect("second page")),
        vec![proposals[2].id]
    );
    let older = page(None, &[], true, Some(proposals[2].id), 1);
    assert_eq!(
        ids(tx.proposals(&older).await.expect("older")),
        vec![proposals[1].id]
    );
    let everything = ProposalFilter::all(None, Vec::new());
    assert_eq!(tx.proposals(&everything).await.expect("all").len(), 3);
}

pub async fn a_proposal_is_decided_once_by_another_person(store: Arc<dyn Store>) {
    seed_org(store.as_ref()).await;
    let pending = proposal(ProposalKind::CompetenceGrant, ORIGINATOR, at(1));
    let mut tx = store.begin().await.expect("begin");
    tx.insert_proposal(&pending).await.expect("insert");
    tx.commit().await.expect("commit");
    let decision = |status: ProposalStatus, by: &str, when: i64| ChangeProposal {
        status,
        decided_by: Some(staff_id(by)),
        decided_at: Some(at(when)),
        ..pending.clone()
    };

    // The proposer cannot decide their own proposal (S3), whatever the caller checked.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_proposal(&decision(ProposalStatus::Approved, ORIGINATOR, 2))
        .await;
    assert!(result.is_err(), "self-approval was stored: {result:?}");
    drop(tx);
    // A "decision" that decides nothing is a caller bug.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_proposal(&ChangeProposal {
            decided_at: None,
            ..decision(ProposalStatus::Approved, ANALYST, 2)
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    let result = tx
        .decide_proposal(&decision(ProposalStatus::Pending, ANALYST, 2))
        .await;
    assert!(result.is_err(), "{result:?}");
    drop(tx);
    // Unknown proposal.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .decide_proposal(&ChangeProposal {
            id: uuid::Uuid::new_v4(),
            ..decision(ProposalStatus::Rejected, ANALYST, 2)
        })
        .await
        .expect_err("unknown proposal");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Two deciders at once: the first wins, the second gets Conflict.
    let mut first = store.begin().await.expect("begin");
    let approved = decision(ProposalStatus::Approved, ANALYST, 3);
    first
        .decide_proposal(&approved)
        .await
        .expect("first decides");
    let other = store.clone();
    let rejected = decision(ProposalStatus::Rejected, EDITOR, 4);
    let second = tokio::spawn(async move {
        let mut tx = other.begin().await.expect("begin");
        tx.decide_proposal(&rejected).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.expect("commit");
    let err = second
        .await
        .expect("second task")
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // Deciding again later: Conflict; the first decision stands.
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .decide_proposal(&decision(ProposalStatus::Rejected, EDITOR, 5))
        .await
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.proposal(pending.id).await.expect("load"), Some(approved));
}

/// The rule sets a request's actor lookup hands out (see
/// [`crate::RuleSetCache`]) are the committed ones at the moment of the
/// lookup, or none: never rows of a transaction still open or rolled back,
/// never a set older than the committed one.
pub async fn a_lookup_hands_out_only_the_committed_rule_sets(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let lo = staff_id(ORIGINATOR);
    let lookup = |id: StaffId| async move {
        store
            .staff_member_with_rule_sets(&id)
            .await
            .expect("lookup")
            .expect("staff member")
    };
    let committed = || async {
        let mut tx = store.begin_read().await.expect("begin_read");
        tx.rule_sets().await.expect("rule sets")
    };
    let version = |version: i64| RuleSet {
        version,
        valid_from: day(version),
        ..RuleSet::initial()
    };
    let unknown = store
        .staff_member_with_rule_sets(&staff_id("nobody"))
        .await
        .expect("lookup");
    assert!(unknown.is_none(), "an unknown person is not found");
    assert_eq!(lookup(lo.clone()).await.member.id, lo);

    let mut tx = store.begin().await.expect("begin");
    tx.insert_rule_set(&version(1), None).await.expect("v1");
    tx.commit().await.expect("commit");
    // Known once a read of committed rows has seen them, then exactly those.
    let read = committed().await;
    assert_eq!(lookup(lo.clone()).await.rule_sets.as_deref(), Some(&read));

    // A transaction that inserted one reads its own row: that read is not
    // handed out, neither while it is open nor after it rolled back, even
    // once another transaction committed as many rows.
    let mut phantom = store.begin().await.expect("begin");
    phantom
        .insert_rule_set(&version(7), None)
        .await
        .expect("v7");
    assert_eq!(phantom.rule_sets().await.expect("rule sets").len(), 2);
    assert_eq!(
        lookup(lo.clone()).await.rule_sets.as_deref(),
        Some(&read),
        "the open insert is not seen"
    );
    drop(phantom);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_rule_set(&version(2), None).await.expect("v2");
    tx.commit().await.expect("commit");
    // The cache holds one row less than committed now: nothing is handed
    // out (the command reads them), until a read has seen the new row.
    assert_eq!(
        lookup(lo.clone()).await.rule_sets,
        None,
        "a committed rule set is never missed"
    );
    let now = vec![version(1), version(2)];
    assert_eq!(committed().await, now);
    assert_eq!(lookup(lo.clone()).await.rule_sets.as_deref(), Some(&now));
}
