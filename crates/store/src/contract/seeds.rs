//! A populated store for the backends' own tests (raw-SQL checks, corrupt
//! rows, migrations): one case with a vote and a decision, rule sets,
//! proposals, limits, capital, liquidity, reservations, an imported balance
//! and breaches, written through the store's traits.

use super::prelude::*;

/// A case with a first vote and a decision (declined), plus three audit events.
pub async fn seed_case(store: &dyn Store, now: Timestamp, events: &[NewAuditEvent]) -> CaseId {
    let mut tx = store.begin().await.expect("begin");
    let unit = UnitId::parse("market-1").expect("unit");
    tx.upsert_unit(&unit, "Market", Side::Market)
        .await
        .expect("unit");
    // lo-0 opens the case, lo-1 votes (the originator may not, S6).
    let person = |id: &str| StaffMember {
        id: StaffId::parse(id).expect("id"),
        status: StaffStatus::Active,
        units: vec![UnitAssignment {
            unit_id: unit.clone(),
            side: Side::Market,
            valid_from: now - chrono::Duration::days(1),
            valid_to: None,
        }],
        roles: vec![RoleAssignment {
            role: Role::LoanOfficer,
            valid_from: now - chrono::Duration::days(1),
            valid_to: None,
        }],
        competences: vec![CompetenceGrant {
            side: Side::Market,
            level: 1,
            valid_from: now - chrono::Duration::days(1),
            valid_to: None,
        }],
    };
    let (originator, officer) = (person("lo-0"), person("lo-1"));
    tx.insert_staff(&originator).await.expect("staff");
    tx.insert_staff(&officer).await.expect("staff");
    let borrower = Borrower {
        id: BorrowerId::generate(),
        name: "Borrower".into(),
        country: country("DE"),
        sector: sector("G47"),
        institution: false,
        relationship_manager: Some(originator.id.clone()),
        created_by: originator.id.clone(),
        created_at: now,
    };
    tx.insert_borrower(&borrower).await.expect("borrower");
    let money = Money::parse("1000.00", "EUR").expect("money");
    let file = CaseFile::new(borrower.id, money, "loan", 12, "stock").expect("file");
    let mut case = CreditCase::open(CaseId::generate(), file, originator.id.clone(), now);
    tx.insert_case(&case).await.expect("case");
    let voter = officer.voter_at(now).expect("voter");
    let rating = creditops_domain::Rating {
        rated_at: now,
        ..super::fixtures::rating()
    };
    let facts = VoteFacts::plain(
        RuleSet::initial(),
        "1000".parse().expect("decimal"),
        "policy-hash",
    )
    .with_rating(rating);
    case.cast_first_vote(Some(&voter), VoteDecision::Decline, "no", 1, &facts, now)
        .expect("vote");
    tx.update_case(&case, 1).await.expect("update");
    tx.insert_rule_set(&RuleSet::initial(), None)
        .await
        .expect("rule set");
    seed_proposals(tx.as_mut(), [&originator.id, &officer.id], now).await;
    for event in events {
        tx.append_audit(event).await.expect("append");
    }
    tx.commit().await.expect("commit");
    case.id
}

/// One decided and one pending change proposal.
async fn seed_proposals(tx: &mut dyn Tx, [originator, officer]: [&StaffId; 2], now: Timestamp) {
    for (n, decided) in [(1, true), (2, false)] {
        let decided_by = decided.then(|| officer.clone());
        tx.insert_proposal(&ChangeProposal {
            id: uuid::Uuid::from_u128(n),
            kind: ProposalKind::RoleAssignment,
            payload: serde_json::json!({"n": n}),
            proposed_by: originator.clone(),
            proposed_at: now,
            status: if decided {
                ProposalStatus::Approved
            } else {
                ProposalStatus::Pending
            },
            decided_at: decided_by.as_ref().map(|_| now),
            decided_by,
        })
        .await
        .expect("proposal");
    }
}

/// Risk rows next to the seeded case: an approved and a pending limit
/// version, capital, a liquidity position, an active and a consumed
/// reservation, an imported balance, an open and a resolved breach.
pub async fn seed_risk(store: &dyn Store, now: Timestamp, case_id: CaseId) {
    let mut tx = store.begin().await.expect("begin");
    let case = tx.case(case_id).await.expect("load").expect("case");
    let borrower = case.file.borrower_id;
    let (originator, officer) = (
        StaffId::parse("lo-0").expect("id"),
        StaffId::parse("lo-1").expect("id"),
    );
    seed_limits(tx.as_mut(), borrower, [&originator, &officer], now).await;
    tx.insert_capital(&Capital {
        version: 1,
        tier1: "1000000.00".parse().expect("decimal"),
        recorded_by: officer.clone(),
        recorded_at: now,
    })
    .await
    .expect("capital");
    tx.insert_liquidity(&LiquidityPosition {
        version: 1,
        hqla: "100.00".parse().expect("decimal"),
        outflows_30d: "50.00".parse().expect("decimal"),
        inflows_30d: "10.00".parse().expect("decimal"),
        floor_percent: "110".parse().expect("decimal"),
        recorded_by: officer.clone(),
        recorded_at: now,
    })
    .await
    .expect("liquidity");
    let other = CreditCase::open(CaseId::generate(), case.file.clone(), originator, now);
    tx.insert_case(&other).await.expect("second case");
    for (case_id, consumed) in [(case_id, false), (other.id, true)] {
        let reservation = Reservation {
            case_id,
            borrower,
            amount: "1000.00".parse().expect("decimal"),
            status: ReservationStatus::Active,
            reserved_at: now,
            expires_at: now + chrono::Duration::days(30),
            closed_at: None,
            closed_by: None,
        };
        tx.insert_reservation(&reservation)
            .await
            .expect("reservation");
        if consumed {
            tx.close_reservation(&Reservation {
                status: ReservationStatus::Consumed,
                closed_at: Some(now),
                closed_by: Some(officer.clone()),
                ..reservation
            })
            .await
            .expect("consume");
        }
    }
    tx.import_balance(&ImportedBalance {
        source_id: "core-1".into(),
        borrower,
        amount: "10.00".parse().expect("decimal"),
        as_of: now,
        days_past_due: None,
        overdrawn_days: None,
    })
    .await
    .expect("import");
    seed_breaches(tx.as_mut(), borrower, now).await;
    tx.commit().await.expect("commit");
}

/// Two limit versions of the borrower: the first approved, the second pending.
async fn seed_limits(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    [originator, officer]: [&StaffId; 2],
    now: Timestamp,
) {
    let subject = LimitSubject::Borrower(borrower);
    for version in [1, 2] {
        let limit = LimitVersion {
            id: uuid::Uuid::from_u128(100 + version as u128),
            subject: subject.clone(),
            version,
            amount: "5000.00".parse().expect("decimal"),
            tolerance_percent: "10".parse().expect("decimal"),
            reason: "review".into(),
            proposed_by: originator.clone(),
            proposed_at: now,
            status: LimitStatus::Pending,
            decided_by: None,
            decided_at: None,
        };
        tx.insert_limit_version(&limit).await.expect("limit");
        if version == 1 {
            tx.decide_limit_version(&LimitVersion {
                status: LimitStatus::Approved,
                decided_by: Some(officer.clone()),
                decided_at: Some(now),
                ..limit
            })
            .await
            .expect("approve");
        }
    }
}

/// An open and a resolved breach of the borrower's limit.
async fn seed_breaches(tx: &mut dyn Tx, borrower: BorrowerId, now: Timestamp) {
    for (n, resolved) in [(1, false), (2, true)] {
        let breach = Breach {
            id: uuid::Uuid::from_u128(200 + n),
            subject: format!("borrower:{borrower}"),
            rule: RuleId::R3,
            check: "borrower_limit".into(),
            limit: "5000.00".parse().expect("decimal"),
            usage: "6000.00".parse().expect("decimal"),
            amount_over: "1000.00".parse().expect("decimal"),
            severity: Severity::Hard,
            cause: "test".into(),
            owner: "risk-control".into(),
            detected_at: now,
            resolved_at: None,
        };
        tx.insert_breach(&breach).await.expect("breach");
        if resolved {
            tx.resolve_breach(breach.id, now + chrono::Duration::hours(1))
                .await
                .expect("resolve");
        }
    }
}
