//! The contract of units of work: ping, rollback, read-only transactions,
//! readers beside a writer, timestamp precision.

use super::prelude::*;

pub async fn backend_answers_ping(store: Arc<dyn Store>) {
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "unexpected backend name {}",
        store.backend()
    );
    store.ping().await.expect("ping");
}

pub async fn rollback_is_fail_closed(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let b = borrower("Rolled Back AG");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert borrower");
    let event = audit_event(
        "borrower.created",
        Outcome::Ok,
        Some(LOAN_OFFICER),
        None,
        Some(b.id),
        at(1),
    );
    tx.append_audit(&event).await.expect("append");
    drop(tx); // no commit: the business change and its audit event go together

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.borrower(b.id).await.expect("load"), None);
    assert!(
        tx.audit_events(&all_events())
            .await
            .expect("events")
            .is_empty()
    );
    drop(tx);

    // The rolled-back event takes no sequence number: no gap.
    let mut tx = store.begin().await.expect("begin");
    tx.append_audit(&simple_event(2)).await.expect("append");
    tx.commit().await.expect("commit");
    assert_eq!(seqs(store, &all_events()).await, vec![1]);
    assert_eq!(verify_chain(store).await.events, 1);
}

pub async fn read_transactions_refuse_writes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut tx = store.begin_read().await.expect("begin_read");
    let result = tx.append_audit(&simple_event(1)).await;
    assert!(
        result.is_err(),
        "a read-only transaction appended: {result:?}"
    );
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    let result = tx
        .upsert_unit(&unit_id("read-only"), "Read Only", Side::Audit)
        .await;
    assert!(result.is_err(), "a read-only transaction wrote: {result:?}");
    drop(tx);
    assert!(read_events(store, &all_events()).await.is_empty());
}

pub async fn reads_run_while_a_writer_is_open(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut writer = store.begin().await.expect("begin");
    writer.append_audit(&simple_event(1)).await.expect("append");
    // Readers neither wait for the writer nor see its uncommitted work.
    let read = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        store.ping().await.expect("ping");
        read_events(store, &all_events()).await
    })
    .await
    .expect("a reader was blocked by an open writer");
    assert!(read.is_empty());
    writer.commit().await.expect("commit");
    assert_eq!(seqs(store, &all_events()).await, vec![1]);
}

/// Sub-microsecond digits are truncated on write by every backend
/// (PostgreSQL keeps microseconds), everywhere, so a reload is the same
/// value on both backends.
pub async fn timestamps_are_kept_to_the_microsecond(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let ns = |t: Timestamp, n: i64| t + chrono::Duration::nanoseconds(n);
    seed_org(store).await;
    let mut tx = store.begin().await.expect("begin");
    let Precise {
        person,
        borrower: b,
        group,
        joined,
        party,
        rules,
        proposal,
    } = write_precise_directory(tx.as_mut(), ns).await;

    let case = precise_case(tx.as_mut(), b.id, &person, ns).await;
    let event = audit_event(
        "case.first_vote",
        Outcome::Ok,
        None,
        Some(case.id),
        None,
        ns(at(20), 7),
    );
    tx.append_audit(&event).await.expect("append");
    tx.commit().await.expect("commit");

    let expected_person = person_in_micros(&person);
    let expected_case = case_in_micros(&case);
    assert_ne!(
        expected_case, case,
        "the fixture has sub-microsecond digits"
    );

    store
        .flush_audit(std::time::Duration::from_secs(10))
        .await
        .expect("flush");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.staff_member(&person.id).await.expect("staff"),
        Some(expected_person)
    );
    let loaded_borrower = tx.borrower(b.id).await.expect("borrower").expect("exists");
    assert_eq!(loaded_borrower.created_at, micros(b.created_at));
    let loaded_group = tx.group(&group.id).await.expect("group").expect("exists");
    assert_eq!(loaded_group.created_at, micros(group.created_at));
    assert_membership_in_micros(tx.as_mut(), b.id, &group.id, joined).await;
    assert_eq!(
        tx.related_parties(&[b.id]).await.expect("related"),
        BTreeSet::from([party.staff_id.clone()])
    );
    let loaded_rules = tx.rule_sets().await.expect("rule sets");
    assert_eq!(loaded_rules.len(), 1);
    assert_eq!(loaded_rules[0].valid_from, micros(rules.valid_from));
    let loaded_proposal = tx
        .proposal(proposal.id)
        .await
        .expect("proposal")
        .expect("exists");
    assert_eq!(loaded_proposal.proposed_at, micros(proposal.proposed_at));
    assert_eq!(loaded_proposal.decided_at, proposal.decided_at.map(micros));
    assert_eq!(tx.case(case.id).await.expect("case"), Some(expected_case));
    let events = tx
        .audit_events(&AuditFilter {
            from: Some(event.recorded_at),
            ..all_events()
        })
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "an event is inside its own microsecond");
    assert_eq!(events[0].recorded_at, micros(event.recorded_at));
}

/// Membership bounds are stored truncated as well: the join counts from its
/// microsecond on.
async fn assert_membership_in_micros(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    group: &UnitId,
    joined: Timestamp,
) {
    assert_eq!(
        tx.group_of(borrower, micros(joined))
            .await
            .expect("group of"),
        Some(group.clone())
    );
    assert_eq!(
        tx.group_of(borrower, micros(joined) - chrono::Duration::microseconds(1))
            .await
            .expect("group of"),
        None
    );
    assert_eq!(
        tx.group_members(group, micros(joined))
            .await
            .expect("members"),
        vec![borrower]
    );
}

/// What the microsecond test stores besides the case, each with
/// sub-microsecond digits.
struct Precise {
    person: StaffMember,
    borrower: Borrower,
    group: BorrowerGroup,
    joined: Timestamp,
    party: RelatedParty,
    rules: RuleSet,
    proposal: ChangeProposal,
}

/// A person, a borrower in a group with a related party, a rule set and a
/// rejected proposal, all at instants with sub-microsecond digits.
async fn write_precise_directory(
    tx: &mut dyn Tx,
    ns: impl Fn(Timestamp, i64) -> Timestamp,
) -> Precise {
    let mut person = member("precise-1", MARKET_UNIT, Side::Market, Role::LoanOfficer);
    person.units[0].valid_from = ns(day(-1), 123_456_789);
    person.units[0].valid_to = Some(ns(day(9), 999));
    person.roles[0].valid_from = ns(day(-1), 1);
    person.competences[0].valid_from = ns(day(-1), 2);
    person.competences[0].valid_to = Some(ns(day(9), 3));
    tx.insert_staff(&person).await.expect("staff");
    let mut b = borrower("Precise GmbH");
    b.created_at = ns(at(0), 999);
    tx.insert_borrower(&b).await.expect("borrower");
    let group = BorrowerGroup {
        id: unit_id("precise-group"),
        name: "Precise Group".into(),
        created_by: staff_id(ANALYST),
        created_at: ns(at(1), 1),
    };
    tx.insert_group(&group).await.expect("group");
    let joined = ns(at(2), 999);
    tx.set_group_membership(b.id, Some(&group.id), joined)
        .await
        .expect("join");
    let party = RelatedParty {
        borrower_id: b.id,
        staff_id: staff_id(EDITOR),
        relation: "spouse".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: ns(at(3), 5),
    };
    tx.insert_related_party(&party)
        .await
        .expect("related party");
    let mut rules = RuleSet::initial();
    rules.valid_from = ns(at(4), 777);
    tx.insert_rule_set(&rules, None).await.expect("rule set");
    let mut proposal = proposal(ProposalKind::RuleSet, ORIGINATOR, ns(at(5), 1));
    tx.insert_proposal(&proposal).await.expect("proposal");
    proposal.status = ProposalStatus::Rejected;
    proposal.decided_by = Some(staff_id(ANALYST));
    proposal.decided_at = Some(ns(at(6), 1));
    tx.decide_proposal(&proposal).await.expect("decide");
    Precise {
        person,
        borrower: b,
        group,
        joined,
        party,
        rules,
        proposal,
    }
}

/// A case opened, given a board resolution and declined by `person`, all
/// at instants with sub-microsecond digits.
async fn precise_case(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    person: &StaffMember,
    ns: impl Fn(Timestamp, i64) -> Timestamp,
) -> CreditCase {
    let money = Money::parse("10.00", "EUR").expect("money");
    let file = CaseFile::new(borrower, money, "loan", 12, "stock").expect("file");
    let mut case = CreditCase::open(
        CaseId::generate(),
        file,
        staff_id(ORIGINATOR),
        ns(at(10), 501),
    );
    tx.insert_case(&case).await.expect("case");
    let analyst = tx
        .staff_member(&staff_id(ANALYST))
        .await
        .expect("load")
        .expect("analyst")
        .voter_at(at(15))
        .expect("voter");
    case.record_board_resolution(Some(&analyst), "BR-7", case.version, ns(at(15), 321))
        .expect("board resolution");
    // Still in market: the market exit counts as the vote time (ns digits).
    let voter = person.voter_at(ns(at(20), 999_999)).expect("voter");
    assert_eq!(voter.left_market_at, Some(ns(at(20), 999_999)));
    case.cast_first_vote(
        Some(&voter),
        VoteDecision::Decline,
        "no",
        1,
        &facts(),
        ns(at(20), 999_999),
    )
    .expect("vote");
    tx.update_case(&case, 1).await.expect("update");
    case
}

/// The staff member as stored: every date truncated to the microsecond.
fn person_in_micros(person: &StaffMember) -> StaffMember {
    let mut expected = person.clone();
    for u in &mut expected.units {
        u.valid_from = micros(u.valid_from);
        u.valid_to = u.valid_to.map(micros);
    }
    for r in &mut expected.roles {
        r.valid_from = micros(r.valid_from);
        r.valid_to = r.valid_to.map(micros);
    }
    for c in &mut expected.competences {
        c.valid_from = micros(c.valid_from);
        c.valid_to = c.valid_to.map(micros);
    }
    expected
}

/// The case as stored: every instant truncated to the microsecond.
fn case_in_micros(case: &CreditCase) -> CreditCase {
    let mut expected = case.clone();
    expected.created_at = micros(case.created_at);
    expected.updated_at = micros(case.updated_at);
    for v in &mut expected.votes {
        v.cast_at = micros(v.cast_at);
        v.voter.left_market_at = v.voter.left_market_at.map(micros);
    }
    let resolution = expected
        .board_resolution
        .as_mut()
        .expect("board resolution");
    resolution.recorded_at = micros(resolution.recorded_at);
    let decision = expected.decision.as_mut().expect("decision");
    decision.decided_at = micros(decision.decided_at);
    for v in &mut decision.votes {
        v.cast_at = micros(v.cast_at);
        v.voter.left_market_at = v.voter.left_market_at.map(micros);
    }
    expected
}
