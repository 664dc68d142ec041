//! Fixtures of the contract suite: the people, borrowers, cases, events,
//! limits and risk values the tests store and read back.

use super::prelude::*;

/// A fixed instant with microseconds (the precision both backends keep).
pub(super) fn base_time() -> Timestamp {
    "2026-03-02T09:15:30.123456Z".parse().expect("base time")
}

pub(super) fn at(seconds: i64) -> Timestamp {
    base_time() + chrono::Duration::seconds(seconds)
}

pub(super) fn day(n: i64) -> Timestamp {
    at(n * 86_400)
}

pub(super) fn staff_id(s: &str) -> StaffId {
    StaffId::parse(s).expect("staff id")
}

pub(super) fn unit_id(s: &str) -> UnitId {
    UnitId::parse(s).expect("unit id")
}

pub(super) const MARKET_UNIT: &str = "market-corporate";
pub(super) const BACKOFFICE_UNIT: &str = "backoffice-credit";
/// Opens the cases; as originator may not vote on them (S6).
pub(super) const ORIGINATOR: &str = "lo-0";
/// Casts the first votes.
pub(super) const LOAN_OFFICER: &str = "lo-1";
/// Edits files; as editor may not vote on them afterwards (S6).
pub(super) const EDITOR: &str = "lo-2";
/// Casts the second votes.
pub(super) const ANALYST: &str = "ca-1";

pub(super) fn member(id: &str, unit: &str, side: Side, role: Role) -> StaffMember {
    StaffMember {
        id: staff_id(id),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: unit_id(unit),
            side,
            valid_from: day(-30),
            valid_to: None,
        }],
        roles: vec![RoleAssignment {
            role,
            valid_from: day(-30),
            valid_to: None,
        }],
        competences: vec![CompetenceGrant {
            side,
            level: 1,
            valid_from: day(-30),
            valid_to: None,
        }],
    }
}

/// Two units and four people: an originator, a loan officer and an editor
/// (market), and an analyst (back office); all with competence level 1.
pub(super) async fn seed_org(store: &dyn Store) {
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit_id(MARKET_UNIT), "Corporate Banking", Side::Market)
        .await
        .expect("market unit");
    tx.upsert_unit(
        &unit_id(BACKOFFICE_UNIT),
        "Credit Back Office",
        Side::Backoffice,
    )
    .await
    .expect("back-office unit");
    for id in [ORIGINATOR, LOAN_OFFICER, EDITOR] {
        tx.insert_staff(&member(id, MARKET_UNIT, Side::Market, Role::LoanOfficer))
            .await
            .expect("loan officer");
    }
    tx.insert_staff(&member(
        ANALYST,
        BACKOFFICE_UNIT,
        Side::Backoffice,
        Role::CreditAnalyst,
    ))
    .await
    .expect("analyst");
    tx.commit().await.expect("commit org");
}

/// A NACE Rev. 2 code of the built-in list.
pub(super) fn sector(code: &str) -> creditops_domain::Sector {
    code.parse().expect("a NACE code")
}

/// An ISO 3166-1 alpha-2 code of the built-in list.
pub(super) fn country(code: &str) -> creditops_domain::Country {
    code.parse().expect("a country code")
}

pub(super) fn borrower(name: &str) -> Borrower {
    Borrower {
        id: BorrowerId::generate(),
        name: name.to_owned(),
        country: country("DE"),
        institution: false,
        sector: sector("C25"),
        relationship_manager: None,
        created_by: staff_id(LOAN_OFFICER),
        created_at: at(0),
    }
}

pub(super) async fn insert_borrower(store: &dyn Store) -> BorrowerId {
    let b = borrower("Beispiel Maschinenbau GmbH");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_borrower(&b).await.expect("insert borrower");
    tx.commit().await.expect("commit borrower");
    b.id
}

pub(super) fn new_case(borrower_id: BorrowerId, amount: &str, currency: &str) -> CreditCase {
    let money = Money::parse(amount, currency).expect("amount");
    let file = CaseFile::new(borrower_id, money, "term_loan", 60, "new production line")
        .expect("case file");
    CreditCase::open(CaseId::generate(), file, staff_id(ORIGINATOR), at(10))
}

/// Vote facts without group, relationship managers or related parties, under
/// the initial rule set, for an exposure that competence level 1 covers, with
/// a clean risk verdict (R4: an approval without one is refused). Its finding
/// has exact decimals, so the stored decision must keep them.
pub(super) fn facts() -> VoteFacts {
    let finding = creditops_domain::RiskFinding {
        rule: RuleId::R3,
        check: "borrower_limit".into(),
        subject: "borrower:contract".into(),
        limit: Some("1000000.00".parse().expect("decimal")),
        usage: Some("100000.01".parse().expect("decimal")),
        headroom: Some("899999.99".parse().expect("decimal")),
        severity: Severity::Within,
        detail: "within the limit".into(),
    };
    VoteFacts::plain(RuleSet::initial(), Decimal::from(100_000), "policy-hash")
        .with_rating(rating())
        .with_risk(creditops_domain::RiskVerdict::from_findings(
            vec![finding],
            false,
            "EUR",
        ))
}

pub(super) async fn insert_case(store: &dyn Store, case: &CreditCase) {
    let mut tx = store.begin().await.expect("begin");
    tx.insert_case(case).await.expect("insert case");
    tx.commit().await.expect("commit case");
}

/// Inserts `case` and approves it as the databases accept an approval
/// (V1): an approving first vote from market, then one from back office by
/// another person, on the current file version.
pub(super) async fn insert_approved_case(store: &dyn Store, case: &mut CreditCase) {
    insert_case(store, case).await;
    let officer = voter(store, LOAN_OFFICER, at(20)).await;
    let analyst = voter(store, ANALYST, at(20)).await;
    let before = case.revision;
    let version = case.version;
    case.cast_first_vote(
        Some(&officer),
        VoteDecision::Approve,
        "good risk",
        version,
        &facts(),
        at(20),
    )
    .expect("first vote");
    case.cast_second_vote(
        Some(&analyst),
        VoteDecision::Approve,
        "agreed",
        version,
        &facts(),
        at(21),
    )
    .expect("second vote");
    assert_eq!(case.status, CaseStatus::Approved);
    save_case(store, case, before).await;
}

pub(super) async fn load_case(store: &dyn Store, id: CaseId) -> CreditCase {
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.case(id).await.expect("load case").expect("case exists")
}

/// Saves `case` (changed from `expected_revision`) in its own transaction.
pub(super) async fn save_case(store: &dyn Store, case: &CreditCase, expected_revision: i64) {
    let mut tx = store.begin().await.expect("begin");
    tx.update_case(case, expected_revision)
        .await
        .expect("update case");
    tx.commit().await.expect("commit update");
}

pub(super) async fn voter(store: &dyn Store, id: &str, when: Timestamp) -> Voter {
    let mut tx = store.begin_read().await.expect("begin_read");
    let person = tx
        .staff_member(&staff_id(id))
        .await
        .expect("load staff")
        .expect("staff exists");
    person.voter_at(when).expect("voter has a unit")
}

pub(super) fn audit_event(
    action: &str,
    outcome: Outcome,
    actor: Option<&str>,
    case_id: Option<CaseId>,
    borrower_id: Option<BorrowerId>,
    recorded_at: Timestamp,
) -> NewAuditEvent {
    let action = action.parse().expect("an audit action");
    let mut record = AuditRecord::new("contract-test", action, outcome, recorded_at);
    record.actor = actor.map(str::to_owned);
    record.case_id = case_id;
    record.borrower_id = borrower_id;
    let body = record.canonical_body().expect("canonical body");
    NewAuditEvent {
        event_id: record.id,
        leaf_hash: creditops_audit::leaf_hash(&body),
        body,
        recorded_at,
        actor: actor.map(str::to_owned),
        action: action.as_str().to_owned(),
        outcome: outcome.as_str().to_owned(),
        case_id,
        borrower_id,
    }
}

pub(super) fn simple_event(n: i64) -> NewAuditEvent {
    audit_event(
        "audit.query",
        Outcome::Ok,
        Some(LOAN_OFFICER),
        None,
        None,
        at(n),
    )
}

pub(super) fn all_events() -> AuditFilter {
    AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }
}

/// Reads linked events after every committed one is linked (a no-op where
/// appends link in their own transaction).
pub(super) async fn read_events(store: &dyn Store, filter: &AuditFilter) -> Vec<StoredAuditEvent> {
    store
        .flush_audit(std::time::Duration::from_secs(10))
        .await
        .expect("flush the audit sequencer");
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.audit_events(filter).await.expect("audit events")
}

pub(super) async fn seqs(store: &dyn Store, filter: &AuditFilter) -> Vec<i64> {
    read_events(store, filter)
        .await
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Verifies the whole stored chain from the genesis of [`CONTRACT_ORIGIN`].
pub(super) async fn verify_chain(store: &dyn Store) -> VerifyReport {
    let mut verifier = ChainVerifier::new(CONTRACT_ORIGIN, 1);
    let mut filter = AuditFilter {
        limit: 7,
        ..AuditFilter::default()
    };
    loop {
        let page = read_events(store, &filter).await;
        let Some(last) = page.last() else { break };
        filter.after_seq = Some(last.seq);
        for e in &page {
            verifier
                .push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash)
                .expect("the stored chain verifies");
        }
    }
    verifier.finish()
}

pub(super) fn micros(t: Timestamp) -> Timestamp {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

pub(super) fn proposal(kind: ProposalKind, by: &str, proposed_at: Timestamp) -> ChangeProposal {
    ChangeProposal {
        id: uuid::Uuid::now_v7(),
        kind,
        // Nested JSON with a decimal string, unicode and an injection attempt.
        payload: serde_json::json!({
            "staff_id": "ca-9",
            "level": 3,
            "limits": ["250000.00", null, true],
            "note": "Prüfung '); DROP TABLE change_proposals; --",
        }),
        proposed_by: staff_id(by),
        proposed_at,
        status: ProposalStatus::Pending,
        decided_by: None,
        decided_at: None,
    }
}

pub(super) fn group(id: &str) -> BorrowerGroup {
    BorrowerGroup {
        id: unit_id(id),
        name: format!("Group {id}"),
        created_by: staff_id(ANALYST),
        created_at: at(1),
    }
}

pub(super) async fn insert_borrowers(store: &dyn Store, n: usize) -> Vec<BorrowerId> {
    let mut tx = store.begin().await.expect("begin");
    let mut ids = Vec::new();
    for i in 0..n {
        let b = borrower(&format!("Borrower {i}"));
        tx.insert_borrower(&b).await.expect("insert borrower");
        ids.push(b.id);
    }
    tx.commit().await.expect("commit borrowers");
    ids
}

/// Money as comparable (currency, minor units) pairs, sorted.
pub(super) fn amounts(money: &[Money]) -> Vec<(&'static str, i64)> {
    let mut pairs: Vec<_> = money
        .iter()
        .map(|m| (m.currency_code(), m.minor_units()))
        .collect();
    pairs.sort_unstable();
    pairs
}

pub(super) fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

pub(super) fn limit_version(
    subject: LimitSubject,
    version: i64,
    amount: &str,
    proposed_at: Timestamp,
) -> LimitVersion {
    LimitVersion {
        id: uuid::Uuid::new_v4(),
        subject,
        version,
        amount: dec(amount),
        tolerance_percent: dec("10"),
        reason: "annual review 'x'); DROP TABLE limit_versions; --".into(),
        proposed_by: staff_id(LOAN_OFFICER),
        proposed_at,
        status: LimitStatus::Pending,
        decided_by: None,
        decided_at: None,
    }
}

pub(super) fn limit_decision(
    limit: &LimitVersion,
    status: LimitStatus,
    by: &str,
    when: Timestamp,
) -> LimitVersion {
    LimitVersion {
        status,
        decided_by: Some(staff_id(by)),
        decided_at: Some(when),
        ..limit.clone()
    }
}

/// Proposes every version in one transaction.
pub(super) async fn propose_limits(store: &dyn Store, limits: &[&LimitVersion]) {
    let mut tx = store.begin().await.expect("begin");
    for limit in limits {
        tx.insert_limit_version(limit)
            .await
            .expect("insert limit version");
    }
    tx.commit().await.expect("commit limit versions");
}

pub(super) async fn decide_limit(store: &dyn Store, decided: &LimitVersion) {
    let mut tx = store.begin().await.expect("begin");
    tx.decide_limit_version(decided)
        .await
        .expect("decide limit version");
    tx.commit().await.expect("commit decision");
}

pub(super) fn capital(version: i64, tier1: &str) -> Capital {
    Capital {
        version,
        tier1: dec(tier1),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(version),
    }
}

pub(super) fn liquidity(version: i64, hqla: &str, floor: &str) -> LiquidityPosition {
    LiquidityPosition {
        version,
        hqla: dec(hqla),
        outflows_30d: dec("800000.01"),
        inflows_30d: dec("0"),
        floor_percent: dec(floor),
        recorded_by: staff_id(ANALYST),
        recorded_at: at(version),
    }
}

/// An active reservation of `amount` for a new case of `borrower`.
pub(super) async fn reserve(
    store: &dyn Store,
    borrower: BorrowerId,
    amount: &str,
    expires_at: Timestamp,
) -> Reservation {
    let case = new_case(borrower, "1000.00", "EUR");
    insert_case(store, &case).await;
    let reservation = Reservation {
        case_id: case.id,
        borrower,
        amount: dec(amount),
        status: ReservationStatus::Active,
        reserved_at: at(0),
        expires_at,
        closed_at: None,
        closed_by: None,
    };
    let mut tx = store.begin().await.expect("begin");
    tx.insert_reservation(&reservation)
        .await
        .expect("insert reservation");
    tx.commit().await.expect("commit reservation");
    reservation
}

pub(super) fn closed(
    reservation: &Reservation,
    status: ReservationStatus,
    when: Timestamp,
    by: Option<&str>,
) -> Reservation {
    Reservation {
        status,
        closed_at: Some(when),
        closed_by: by.map(staff_id),
        ..reservation.clone()
    }
}

pub(super) async fn close_reservation(store: &dyn Store, closing: &Reservation) {
    let mut tx = store.begin().await.expect("begin");
    tx.close_reservation(closing)
        .await
        .expect("close reservation");
    tx.commit().await.expect("commit closing");
}

pub(super) async fn import(store: &dyn Store, balance: &ImportedBalance) -> ImportEffect {
    let mut tx = store.begin().await.expect("begin");
    let effect = tx.import_balance(balance).await.expect("import balance");
    tx.commit().await.expect("commit import");
    effect
}

pub(super) fn balance(source_id: &str, borrower: BorrowerId, amount: &str) -> ImportedBalance {
    ImportedBalance {
        source_id: source_id.to_owned(),
        borrower,
        amount: dec(amount),
        as_of: day(-1),
        days_past_due: None,
        overdrawn_days: None,
    }
}

pub(super) fn breach(detected_at: Timestamp, severity: Severity) -> Breach {
    Breach {
        id: uuid::Uuid::new_v4(),
        subject: "sector:D35".into(),
        rule: RuleId::R3,
        check: "sector_limit".into(),
        limit: dec("1000000.00"),
        usage: dec("1250000.50"),
        amount_over: dec("250000.50"),
        severity,
        cause: "approval of case 'x'; --".into(),
        owner: "risk-control".into(),
        detected_at,
        resolved_at: None,
    }
}

/// Sorted by borrower, so the comparison does not depend on the row order.
pub(super) async fn exposures_at(
    store: &dyn Store,
    scope: ExposureScope,
    when: Timestamp,
) -> Vec<BorrowerExposure> {
    let mut tx = store.begin_read().await.expect("begin_read");
    let mut rows = tx.exposures(&scope, when).await.expect("exposures");
    rows.sort_by_key(|row| row.borrower);
    rows
}

pub(super) async fn total_at(store: &dyn Store, scope: ExposureScope, when: Timestamp) -> Decimal {
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.exposure_total(&scope, when)
        .await
        .expect("exposure total")
}

/// A rating back office set before every fixture vote (L4: a first vote
/// needs one).
pub(super) fn rating() -> creditops_domain::Rating {
    creditops_domain::Rating {
        borrower_id: creditops_domain::BorrowerId::generate(),
        class: 5,
        pd: "0.0015".parse().expect("decimal"),
        method: "scorecard".into(),
        reason: "annual accounts".into(),
        status: creditops_domain::RatingStatus::Set,
        rated_by: staff_id("ba-1"),
        rated_at: at(0),
        rules_version: 1,
    }
}
