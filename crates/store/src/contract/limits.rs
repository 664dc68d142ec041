//! The contract of limits, capital, liquidity and liquidity claims (R1, R3,
//! R6, R8).

use super::prelude::*;

pub async fn limit_versions_need_four_eyes(store: Arc<dyn Store>) {
    seed_org(store.as_ref()).await;
    let subject = LimitSubject::Sector(sector("D35"));
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.latest_limit_version(&subject).await.expect("latest"),
        0,
        "no version yet"
    );
    drop(tx);
    let mut v1 = limit_version(subject.clone(), 1, "12345678901234.56", at(10));
    v1.tolerance_percent = dec("12.5");
    propose_limits(store.as_ref(), &[&v1]).await;

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.limit_version(v1.id).await.expect("load"),
        Some(v1.clone())
    );
    assert_eq!(
        tx.limit_version(uuid::Uuid::new_v4()).await.expect("load"),
        None
    );
    assert_eq!(tx.latest_limit_version(&subject).await.expect("latest"), 1);
    assert_eq!(
        tx.latest_limit_version(&LimitSubject::Sector(sector("A01")))
            .await
            .expect("latest"),
        0
    );
    // The same version of the same subject again: somebody else proposed first.
    let err = tx
        .insert_limit_version(&limit_version(subject.clone(), 1, "5.00", at(11)))
        .await
        .expect_err("duplicate version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let mut stranger = limit_version(subject.clone(), 2, "5.00", at(11));
    stranger.proposed_by = staff_id("nobody");
    let err = tx
        .insert_limit_version(&stranger)
        .await
        .expect_err("unknown proposer");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    refuse_bad_decisions(store.as_ref(), &subject, &v1).await;

    // Two deciders at once: the first wins, the second gets Conflict.
    let approved = limit_decision(&v1, LimitStatus::Approved, ANALYST, at(20));
    let mut first = store.begin().await.expect("begin");
    first
        .decide_limit_version(&approved)
        .await
        .expect("first decides");
    let other = store.clone();
    let rejected = limit_decision(&v1, LimitStatus::Rejected, EDITOR, at(21));
    let second = tokio::spawn(async move {
        let mut tx = other.begin().await.expect("begin");
        tx.decide_limit_version(&rejected).await
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
        .decide_limit_version(&limit_decision(&v1, LimitStatus::Rejected, EDITOR, at(22)))
        .await
        .expect_err("decided already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    assert_limit_listing(store.as_ref(), &subject, approved).await;
}

/// Writes the store refuses whatever the caller checked: a version born
/// decided, a self-approval (R8), decisions that decide nothing, and
/// decisions on unknown versions.
async fn refuse_bad_decisions(store: &dyn Store, subject: &LimitSubject, v1: &LimitVersion) {
    let mut tx = store.begin().await.expect("begin");
    let born_approved = limit_decision(
        &limit_version(subject.clone(), 2, "5.00", at(11)),
        LimitStatus::Approved,
        ANALYST,
        at(12),
    );
    let result = tx.insert_limit_version(&born_approved).await;
    assert!(result.is_err(), "stored a decided proposal: {result:?}");
    drop(tx);

    // The proposer cannot approve their own limit (R8), whatever the caller checked.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_limit_version(&limit_decision(
            v1,
            LimitStatus::Approved,
            LOAN_OFFICER,
            at(20),
        ))
        .await;
    assert!(result.is_err(), "self-approval was stored: {result:?}");
    drop(tx);
    // Decisions that decide nothing are caller bugs; unknown versions are not found.
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .decide_limit_version(&limit_decision(v1, LimitStatus::Pending, ANALYST, at(20)))
        .await;
    assert!(result.is_err(), "{result:?}");
    let result = tx
        .decide_limit_version(&LimitVersion {
            decided_at: None,
            ..limit_decision(v1, LimitStatus::Approved, ANALYST, at(20))
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    let err = tx
        .decide_limit_version(&LimitVersion {
            id: uuid::Uuid::new_v4(),
            ..limit_decision(v1, LimitStatus::Approved, ANALYST, at(20))
        })
        .await
        .expect_err("unknown version");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
}

/// Listing: oldest proposal first (ties by id), narrowed by status and
/// subject; `approved` is the decided first version of `subject`.
async fn assert_limit_listing(store: &dyn Store, subject: &LimitSubject, approved: LimitVersion) {
    let country = LimitSubject::Country(country("FR"));
    let borrower = LimitSubject::Borrower(BorrowerId::generate());
    let v2 = limit_version(subject.clone(), 2, "7.10", at(30));
    let fr1 = limit_version(country.clone(), 1, "100", at(5));
    let b1 = limit_version(borrower.clone(), 1, "0", at(30));
    propose_limits(store, &[&v2, &fr1, &b1]).await;
    let rejected_fr1 = limit_decision(&fr1, LimitStatus::Rejected, ANALYST, at(40));
    decide_limit(store, &rejected_fr1).await;

    let mut tx = store.begin_read().await.expect("begin_read");
    let mut same_time = vec![v2.clone(), b1.clone()];
    same_time.sort_by_key(|l| l.id);
    let mut all = vec![rejected_fr1.clone(), approved.clone()];
    all.extend(same_time.clone());
    assert_eq!(tx.limit_versions(None, None).await.expect("all"), all);
    assert_eq!(
        tx.limit_versions(Some(LimitStatus::Pending), None)
            .await
            .expect("pending"),
        same_time
    );
    assert_eq!(
        tx.limit_versions(None, Some(subject))
            .await
            .expect("energy"),
        vec![approved.clone(), v2.clone()]
    );
    assert_eq!(
        tx.limit_versions(Some(LimitStatus::Approved), Some(subject))
            .await
            .expect("approved energy"),
        vec![approved]
    );
    assert_eq!(
        tx.limit_versions(Some(LimitStatus::Rejected), Some(&borrower))
            .await
            .expect("rejected borrower"),
        vec![]
    );
    assert_eq!(
        tx.limit_versions(None, Some(&borrower))
            .await
            .expect("borrower"),
        vec![b1]
    );
    assert_eq!(tx.latest_limit_version(subject).await.expect("latest"), 2);
}

pub async fn limits_in_force_are_the_highest_approved_versions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower = LimitSubject::Borrower(BorrowerId::generate());
    let group = LimitSubject::Group("acme".into());
    let sector = LimitSubject::Sector(sector("D35"));
    let country = LimitSubject::Country(country("FR"));
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(tx.limits_in_force(None).await.expect("none").is_empty());
    drop(tx);

    let energy: Vec<LimitVersion> = ["100.00", "200.00", "300.00", "400.00"]
        .iter()
        .zip(1..)
        .map(|(amount, v)| limit_version(sector.clone(), v, amount, at(v)))
        .collect();
    let mut fr1 = limit_version(country.clone(), 1, "50.5", at(1));
    fr1.tolerance_percent = dec("0");
    let fr2 = limit_version(country.clone(), 2, "60", at(2));
    let acme1 = limit_version(group.clone(), 1, "70", at(1));
    let b1 = limit_version(borrower.clone(), 1, "80", at(1));
    let mut b2 = limit_version(borrower.clone(), 2, "0.01", at(2));
    b2.tolerance_percent = dec("2.75");
    let mut all: Vec<&LimitVersion> = energy.iter().collect();
    all.extend([&fr1, &fr2, &acme1, &b1, &b2]);
    propose_limits(store, &all).await;

    // Energy: v2 approved before v1 -- the highest version is in force, not
    // the latest decision; v3 pending and v4 rejected do not count.
    for (limit, status) in [
        (&energy[1], LimitStatus::Approved),
        (&energy[0], LimitStatus::Approved),
        (&energy[3], LimitStatus::Rejected),
        (&fr1, LimitStatus::Approved),
        (&b1, LimitStatus::Rejected),
        (&b2, LimitStatus::Approved),
    ] {
        decide_limit(store, &limit_decision(limit, status, ANALYST, at(100))).await;
    }

    let mut tx = store.begin_read().await.expect("begin_read");
    let mut expected = vec![b2.limit(), energy[1].limit(), fr1.limit()];
    expected.sort_by(|a, b| a.subject.cmp(&b.subject));
    let in_force = tx.limits_in_force(None).await.expect("all");
    assert_eq!(in_force, expected);
    assert_eq!(in_force[1].amount, dec("200"));
    assert_eq!(in_force[0].tolerance_percent, dec("2.75"));
    assert_eq!(
        tx.limits_in_force(Some(&[
            sector.clone(),
            group.clone(),
            LimitSubject::Country(super::fixtures::country("DE")),
            sector.clone(),
        ]))
        .await
        .expect("some"),
        vec![energy[1].limit()],
        "only the subjects asked for, each once; pending-only subjects have no limit"
    );
    assert_eq!(
        tx.limits_in_force(Some(&[country.clone(), borrower.clone()]))
            .await
            .expect("some"),
        vec![b2.limit(), fr1.limit()]
    );
    assert!(
        tx.limits_in_force(Some(&[]))
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(tx.latest_limit_version(&sector).await.expect("latest"), 4);
    assert_eq!(tx.latest_limit_version(&group).await.expect("latest"), 1);
    drop(tx);

    // Taking a subject's hold with the read reads the same limits, none for
    // no subject; taking it again in the same transaction does not wait.
    let mut tx = store.begin().await.expect("begin");
    for subjects in [
        vec![
            sector.clone(),
            group.clone(),
            LimitSubject::Country(super::fixtures::country("DE")),
            sector.clone(),
        ],
        vec![country.clone(), borrower.clone()],
        vec![LimitSubject::Country(super::fixtures::country("DE"))],
        vec![],
    ] {
        let alone = tx.limits_in_force(Some(&subjects)).await.expect("read");
        let locked = tx
            .lock_subject_reading_limits("unit:group:acme", &subjects)
            .await
            .expect("read with the hold");
        assert_eq!(locked, alone, "{subjects:?}");
    }
    tx.commit().await.expect("commit");
}

pub async fn capital_and_liquidity_are_versioned(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(tx.latest_capital().await.expect("capital"), None);
    assert_eq!(tx.latest_liquidity().await.expect("liquidity"), None);
    assert_read_together(tx.as_mut(), (false, false)).await;
    drop(tx);

    let c1 = capital(1, "1000000.00");
    let c2 = capital(2, "12345678901234.56");
    let l1 = liquidity(1, "5000000", "110");
    let l2 = liquidity(2, "4000000.99", "112.5");
    let mut tx = store.begin().await.expect("begin");
    // Stored out of order: the highest version is the latest.
    tx.insert_capital(&c2).await.expect("capital 2");
    tx.insert_capital(&c1).await.expect("capital 1");
    assert_read_together(tx.as_mut(), (true, false)).await;
    tx.insert_liquidity(&l2).await.expect("liquidity 2");
    tx.insert_liquidity(&l1).await.expect("liquidity 1");
    assert_read_together(tx.as_mut(), (true, true)).await;
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_capital(&capital(2, "1.00"))
        .await
        .expect_err("duplicate capital version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_liquidity(&liquidity(1, "1.00", "100"))
        .await
        .expect_err("duplicate liquidity version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    let latest = tx.latest_capital().await.expect("capital");
    assert_eq!(latest, Some(c2));
    assert_eq!(
        latest.map(|c| c.tier1.to_string()),
        Some("12345678901234.56".to_owned()),
        "amounts are exact"
    );
    let latest = tx.latest_liquidity().await.expect("liquidity");
    assert_eq!(latest, Some(l2));
    assert_eq!(
        latest.map(|l| (l.outflows_30d, l.floor_percent)),
        Some((dec("800000.01"), dec("112.5")))
    );
}

/// The capital and the liquidity read together equal each read alone;
/// `present` says which of the two exist.
async fn assert_read_together(tx: &mut dyn Tx, present: (bool, bool)) {
    let now = at(50);
    let together = tx
        .capital_and_liquidity(now, InFlightClaims::Ignored)
        .await
        .expect("read together");
    let apart = (
        tx.latest_capital().await.expect("capital"),
        tx.liquidity_now(now, InFlightClaims::Ignored)
            .await
            .expect("liquidity"),
    );
    assert_eq!(together, apart);
    assert_eq!((together.0.is_some(), together.1.is_some()), present);
    // With exposures beside them, whether any borrower is found or not.
    for borrowers in [vec![], vec![BorrowerId::generate()]] {
        let figures = tx
            .gate_figures(&borrowers, now, InFlightClaims::Ignored)
            .await
            .expect("gate figures");
        assert_eq!((figures.capital, figures.liquidity), apart, "{borrowers:?}");
        assert_eq!(figures.exposures, Vec::new(), "{borrowers:?}");
    }
}

/// R6: active reservations not expired at `at`, plus those consumed since
/// the position was recorded (from `since` on, inclusive).
pub async fn committed_outflows_project_reservations(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let (since, now) = (at(100), at(200));
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.committed_outflows(since, now).await.expect("none"),
        Decimal::ZERO
    );
    drop(tx);

    reserve(store, borrower_id, "100.01", at(300)).await; // counted
    reserve(store, borrower_id, "50", now).await; // expired at `now`
    for (amount, status, when) in [
        ("30.10", ReservationStatus::Consumed, at(120)), // counted
        ("7", ReservationStatus::Consumed, since),       // counted
        ("20", ReservationStatus::Consumed, at(90)),     // before the position
        ("10", ReservationStatus::Expired, at(130)),     // freed
    ] {
        let r = reserve(store, borrower_id, amount, at(1000)).await;
        close_reservation(store, &closed(&r, status, when, Some(ANALYST))).await;
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.committed_outflows(since, now).await.expect("committed"),
        dec("137.11")
    );
    assert_eq!(
        tx.committed_outflows(since, at(199))
            .await
            .expect("committed"),
        dec("187.11"),
        "before its expiry the reservation counts"
    );
    assert_eq!(
        tx.committed_outflows(at(0), now).await.expect("committed"),
        dec("157.11")
    );
    // Read together with the latest position, the sum counts from the
    // position's own time.
    assert_eq!(
        tx.liquidity_now(now, InFlightClaims::Ignored)
            .await
            .expect("no position"),
        None
    );
    drop(tx);
    let mut position = liquidity(2, "5000000", "110");
    position.recorded_at = since;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_liquidity(&liquidity(1, "1", "100"))
        .await
        .expect("older position");
    tx.insert_liquidity(&position).await.expect("position");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.liquidity_now(now, InFlightClaims::Ignored)
            .await
            .expect("liquidity now"),
        Some(LiquidityNow {
            position,
            committed: dec("137.11"),
            claimed_earlier: Decimal::ZERO,
            claimed_later: Decimal::ZERO,
        })
    );
}

/// R5, R6: an approval's liquidity claim is counted by every other
/// approval's read, not by its own nor by plain views; it ends when settled
/// with the reservation (only if it covers the amount and has not lapsed) or
/// when released. A backend whose writers are serial issues no claims, and
/// there an approval needs none.
pub async fn liquidity_claims_count_for_other_approvals_only(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let first = new_case(borrower_id, "1000.00", "EUR");
    let second = new_case(borrower_id, "250.50", "EUR");
    let foreign = new_case(borrower_id, "99.00", "USD");
    for case in [&first, &second, &foreign] {
        insert_case(store, case).await;
    }
    let mut tx = store.begin().await.expect("begin");
    tx.insert_liquidity(&liquidity(1, "5000000", "100"))
        .await
        .expect("position");
    tx.commit().await.expect("commit");
    let lifetime = std::time::Duration::from_secs(30);
    let Some(claim) = store
        .claim_liquidity(first.id, "EUR", lifetime)
        .await
        .expect("claim")
    else {
        let mut tx = store.begin().await.expect("begin");
        tx.settle_liquidity_claim(None, dec("1000.00"))
            .await
            .expect("serial writers: an approval needs no claim");
        return;
    };
    assert_eq!((claim.case, claim.amount), (first.id, dec("1000.00")));
    assert_unclaimable(store, foreign.id).await;
    let other = store
        .claim_liquidity(second.id, "EUR", lifetime)
        .await
        .expect("claim")
        .expect("claimed");
    let zero = Decimal::ZERO;
    assert_eq!(
        claims_seen(store, None).await,
        (zero, zero),
        "views count no claims"
    );
    assert_eq!(
        claims_seen(store, Some(claim.clone())).await,
        (zero, dec("250.50"))
    );
    assert_eq!(
        claims_seen(store, Some(other.clone())).await,
        (dec("1000.00"), zero)
    );
    // A second approval of the same case: only one of them can commit.
    let twin = store
        .claim_liquidity(first.id, "EUR", lifetime)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(
        claims_seen(store, Some(claim.clone())).await,
        (zero, dec("250.50"))
    );
    assert_eq!(
        claims_seen(store, Some(other.clone())).await,
        (dec("1000.00"), dec("1000.00"))
    );
    store.release_liquidity_claim(&twin).await.expect("release");

    assert_settling(store, &claim, &other).await;

    // Releasing is idempotent.
    for _ in 0..2 {
        store
            .release_liquidity_claim(&other)
            .await
            .expect("release");
    }
    assert_eq!(claims_seen(store, Some(claim.clone())).await, (zero, zero));

    assert_claims_lapse(store, second.id, &claim).await;
}

/// R5, R6: an approval's reservation is written exactly when its claim is
/// settled with it. Refused (Conflict), and nothing written, for a claim
/// below the amount, without a claim where the backend issues claims, for a
/// claim settled already and for a case that holds a reservation; where
/// writers are serial no claim is needed.
pub async fn reservations_settle_their_claims(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "1000.00", "EUR");
    insert_case(store, &case).await;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_liquidity(&liquidity(1, "5000000", "100"))
        .await
        .expect("position");
    tx.commit().await.expect("commit");
    let reservation = |amount: &str| Reservation {
        case_id: case.id,
        borrower: borrower_id,
        amount: dec(amount),
        status: ReservationStatus::Active,
        reserved_at: at(10),
        expires_at: at(10) + chrono::Duration::days(30),
        closed_at: None,
        closed_by: None,
    };
    let lifetime = std::time::Duration::from_secs(30);
    let claim = store
        .claim_liquidity(case.id, "EUR", lifetime)
        .await
        .expect("claim");
    let mut tx = store.begin().await.expect("begin");
    if let Some(claim) = &claim {
        for (reserved, claim, why) in [
            (
                reservation("1000.01"),
                Some(claim),
                "a claim below the amount",
            ),
            (reservation("1000.00"), None, "no claim"),
        ] {
            let result = tx.reserve_with_claim(&reserved, claim).await;
            assert!(
                matches!(result, Err(StoreError::Conflict(_))),
                "{why}: {result:?}"
            );
            assert_eq!(tx.reservation(case.id).await.expect("read"), None, "{why}");
        }
    }
    tx.reserve_with_claim(&reservation("1000.00"), claim.as_ref())
        .await
        .expect("reserved");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.reservation(case.id).await.expect("read"),
        Some(reservation("1000.00"))
    );
    drop(tx);
    // Settled once: neither the same claim nor a new one reserves again.
    let again = store
        .claim_liquidity(case.id, "EUR", lifetime)
        .await
        .expect("claim");
    for (claim, why) in [
        (&claim, "the settled claim"),
        (&again, "a second reservation"),
    ] {
        let mut tx = store.begin().await.expect("begin");
        let result = tx
            .reserve_with_claim(&reservation("1000.00"), claim.as_ref())
            .await;
        assert!(
            matches!(result, Err(StoreError::Conflict(_))),
            "{why}: {result:?}"
        );
    }
}

/// Nothing to claim for a case in another currency or an unknown case.
async fn assert_unclaimable(store: &dyn Store, foreign: CaseId) {
    let lifetime = std::time::Duration::from_secs(30);
    for (case, why) in [
        (foreign, "a case in another currency"),
        (CaseId::generate(), "an unknown case"),
    ] {
        let claimed = store.claim_liquidity(case, "EUR", lifetime).await;
        assert_eq!(claimed.expect("claim"), None, "{why}");
    }
}

/// Settling `claim` (of 1000.00): refused below its amount and without a
/// claim; once settled, others stop counting it when the settling
/// transaction commits, and it cannot be settled again.
async fn assert_settling(store: &dyn Store, claim: &LiquidityClaim, other: &LiquidityClaim) {
    let zero = Decimal::ZERO;
    let mut tx = store.begin().await.expect("begin");
    for (claim, amount, why) in [
        (Some(claim), "1000.01", "a claim below the amount"),
        (None, "1000.00", "no claim"),
    ] {
        let result = tx.settle_liquidity_claim(claim, dec(amount)).await;
        assert!(
            matches!(result, Err(StoreError::Conflict(_))),
            "{why}: {result:?}"
        );
    }
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    tx.settle_liquidity_claim(Some(claim), dec("1000.00"))
        .await
        .expect("settled");
    assert_eq!(
        claims_seen(store, Some(other.clone())).await,
        (dec("1000.00"), zero),
        "until the settling transaction commits, the claim counts"
    );
    tx.commit().await.expect("commit");
    assert_eq!(claims_seen(store, Some(other.clone())).await, (zero, zero));
    let mut tx = store.begin().await.expect("begin");
    let again = tx.settle_liquidity_claim(Some(claim), dec("1000.00")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    drop(tx);
}

/// The live claims a reader counts as taken before and after its own claim
/// (none without one), at a time no reservation is committed.
async fn claims_seen(store: &dyn Store, claims: Option<LiquidityClaim>) -> (Decimal, Decimal) {
    let mut tx = store.begin_read().await.expect("begin_read");
    let counted = match &claims {
        None => InFlightClaims::Ignored,
        Some(own) => InFlightClaims::CountedExcept(own),
    };
    let now = tx
        .liquidity_now(at(50), counted)
        .await
        .expect("read")
        .expect("position");
    assert_eq!(now.committed, Decimal::ZERO, "no reservations");
    let (_, together) = tx
        .capital_and_liquidity(at(50), counted)
        .await
        .expect("read with the capital");
    assert_eq!(together.as_ref(), Some(&now), "read with the capital");
    let figures = tx
        .gate_figures(&[BorrowerId::generate()], at(50), counted)
        .await
        .expect("read with exposures");
    assert_eq!(
        figures.liquidity.as_ref(),
        Some(&now),
        "read with exposures"
    );
    (now.claimed_earlier, now.claimed_later)
}

/// A claim outliving its request lapses: nobody counts it, nobody can
/// settle it.
async fn assert_claims_lapse(store: &dyn Store, case: CaseId, claim: &LiquidityClaim) {
    let zero = Decimal::ZERO;
    let short = store
        .claim_liquidity(case, "EUR", std::time::Duration::from_millis(1))
        .await
        .expect("claim")
        .expect("claimed");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(claims_seen(store, Some(claim.clone())).await, (zero, zero));
    let mut tx = store.begin().await.expect("begin");
    let lapsed = tx.settle_liquidity_claim(Some(&short), dec("250.50")).await;
    assert!(matches!(lapsed, Err(StoreError::Conflict(_))), "{lapsed:?}");
}

/// A proposal numbered by the store: one more than the highest version its
/// subject has, of any status, whatever the proposal says; per subject; a
/// refused insert stores nothing.
pub async fn limit_versions_are_numbered_by_the_store(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let sector = LimitSubject::Sector(sector("D35"));
    let country = LimitSubject::Country(country("FR"));
    let mut tx = store.begin().await.expect("begin");
    let first = limit_version(sector.clone(), 7, "100", at(1));
    assert_eq!(
        tx.insert_next_limit_version(&first).await.expect("v1"),
        Some(1)
    );
    assert_eq!(
        tx.insert_next_limit_version(&limit_version(sector.clone(), 1, "200", at(2)))
            .await
            .expect("v2"),
        Some(2)
    );
    assert_eq!(
        tx.insert_next_limit_version(&limit_version(country.clone(), 0, "300", at(3)))
            .await
            .expect("other subject"),
        Some(1)
    );
    tx.commit().await.expect("commit");
    // A rejected version keeps its number.
    let mut v2 = store
        .begin_read()
        .await
        .expect("begin_read")
        .limit_versions(None, Some(&sector))
        .await
        .expect("versions")
        .pop()
        .expect("v2");
    assert_eq!((v2.version, v2.amount), (2, dec("200")));
    v2.status = LimitStatus::Rejected;
    v2.decided_by = Some(staff_id(ANALYST));
    v2.decided_at = Some(at(4));
    decide_limit(store, &v2).await;
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.insert_next_limit_version(&limit_version(sector.clone(), 2, "400", at(5)))
            .await
            .expect("v3"),
        Some(3)
    );
    // The same id again: refused, nothing stored.
    let err = tx
        .insert_next_limit_version(&first)
        .await
        .expect_err("duplicate id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin_read().await.expect("begin_read");
    let versions: Vec<i64> = tx
        .limit_versions(None, Some(&sector))
        .await
        .expect("versions")
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(
        versions,
        vec![1, 2],
        "the refused transaction stored nothing"
    );
    assert_eq!(tx.latest_limit_version(&sector).await.expect("latest"), 2);
    drop(tx);

    // A borrower's or a group's limit only where it is registered: else
    // nothing is stored.
    let borrower = insert_borrower(store).await;
    let acme = group("acme-holding");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_group(&acme).await.expect("group");
    for (subject, stored) in [
        (LimitSubject::Borrower(BorrowerId::generate()), None),
        (LimitSubject::Group("nobody-holding".into()), None),
        (LimitSubject::Borrower(borrower), Some(1)),
        (LimitSubject::Group(acme.id.to_string()), Some(1)),
        (LimitSubject::Borrower(borrower), Some(2)),
    ] {
        let proposal = limit_version(subject.clone(), 9, "500", at(6));
        assert_eq!(
            tx.insert_next_limit_version(&proposal)
                .await
                .expect("insert"),
            stored,
            "{subject:?}"
        );
        let versions = tx
            .limit_versions(None, Some(&subject))
            .await
            .expect("versions");
        assert_eq!(versions.len(), stored.unwrap_or(0) as usize, "{subject:?}");
    }
    tx.commit().await.expect("commit");
}
