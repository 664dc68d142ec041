//! The contract of exposures, reservations, imported balances and breaches
//! (R2, R5, R7).

use super::prelude::*;

/// Every borrower in scope is a row, also without any exposure; reserved
/// counts active reservations not expired at `at`, outstanding consumed
/// reservations plus imported balances; the group is the one at `at`.
pub async fn exposures_cover_every_borrower_in_scope(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let [a, b, c, d] = seed_exposures(store).await;

    let row =
        |b: &Borrower, group: Option<&str>, reserved: &str, outstanding: &str| BorrowerExposure {
            borrower: b.id,
            group: group.map(str::to_owned),
            sector: b.sector,
            country: b.country,
            institution: b.institution,
            reserved: dec(reserved),
            outstanding: dec(outstanding),
        };
    let sorted = |mut rows: Vec<BorrowerExposure>| {
        rows.sort_by_key(|r| r.borrower);
        rows
    };
    let at_250 = sorted(vec![
        row(&a, Some("acme"), "1000.50", "210.25"),
        row(&b, Some("beta"), "0", "0"),
        row(&c, None, "0", "5000.01"),
        row(&d, None, "0", "0"),
    ]);
    assert_eq!(
        exposures_at(store, ExposureScope::All, at(250)).await,
        at_250
    );
    assert_eq!(
        exposures_at(store, ExposureScope::All, at(150)).await,
        sorted(vec![
            row(&a, Some("acme"), "1000.50", "210.25"),
            row(&b, Some("beta"), "300", "0"),
            row(&c, None, "0", "5000.01"),
            row(&d, None, "0", "0"),
        ]),
        "before its expiry the reservation counts"
    );
    assert_exposure_groups(store, [a.id, b.id, c.id, d.id]).await;

    assert_exposure_scopes(store, [a.id, b.id, c.id, d.id], &at_250).await;

    // Codes only were stored: nothing to correct before a start.
    let mut tx = store.begin_read().await.expect("begin");
    assert_eq!(
        tx.unclassified_values().await.expect("unclassified"),
        Vec::new()
    );
}

/// Four borrowers (A: DE manufacturing C25, B: a DE energy bank D35, C and
/// D: FR energy D35 and manufacturing C10); A in group acme during [100 s, 300 s), B in
/// beta from 50 s on; reservations of A (active, consumed, expired) and B
/// (active until 200 s), imported balances of A and C.
async fn seed_exposures(store: &dyn Store) -> [Borrower; 4] {
    let mut tx = store.begin().await.expect("begin");
    let make = |name: &str, country: &str, sector: &str, institution: bool| {
        let mut b = borrower(name);
        b.country = super::fixtures::country(country);
        b.sector = super::fixtures::sector(sector);
        b.institution = institution;
        b
    };
    let a = make("A", "DE", "C25", false);
    let b = make("B Bank", "DE", "D35", true);
    let c = make("C", "FR", "D35", false);
    let d = make("D", "FR", "C10", false);
    for borrower in [&a, &b, &c, &d] {
        tx.insert_borrower(borrower).await.expect("borrower");
    }
    tx.insert_group(&group("acme")).await.expect("acme");
    tx.insert_group(&group("beta")).await.expect("beta");
    tx.set_group_membership(a.id, Some(&unit_id("acme")), at(100))
        .await
        .expect("a joins");
    tx.set_group_membership(a.id, None, at(300))
        .await
        .expect("a leaves");
    tx.set_group_membership(b.id, Some(&unit_id("beta")), at(50))
        .await
        .expect("b joins");
    tx.commit().await.expect("commit");

    reserve(store, a.id, "1000.50", at(1000)).await;
    let consumed = reserve(store, a.id, "200.25", at(1000)).await;
    close_reservation(
        store,
        &closed(
            &consumed,
            ReservationStatus::Consumed,
            at(20),
            Some(ANALYST),
        ),
    )
    .await;
    let expired = reserve(store, a.id, "999.00", at(10)).await;
    close_reservation(
        store,
        &closed(&expired, ReservationStatus::Expired, at(15), None),
    )
    .await;
    // Still active, but its expiry passes at 200 s.
    reserve(store, b.id, "300", at(200)).await;
    assert_eq!(
        import(store, &balance("core-1", a.id, "10.00")).await,
        ImportEffect::Inserted
    );
    assert_eq!(
        import(store, &balance("core-2", c.id, "5000")).await,
        ImportEffect::Inserted
    );
    assert_eq!(
        import(store, &balance("core-3", c.id, "0.01")).await,
        ImportEffect::Inserted
    );

    [a, b, c, d]
}

/// The group each borrower of [`seed_exposures`] is in at a time.
async fn assert_exposure_groups(store: &dyn Store, [a, b, c, d]: [BorrowerId; 4]) {
    let groups = |rows: Vec<BorrowerExposure>| {
        rows.into_iter()
            .map(|r| (r.borrower, r.group))
            .collect::<Vec<_>>()
    };
    let expected_groups = |a_group: Option<&str>, b_group: Option<&str>| {
        let mut pairs = vec![
            (a, a_group.map(str::to_owned)),
            (b, b_group.map(str::to_owned)),
            (c, None),
            (d, None),
        ];
        pairs.sort();
        pairs
    };
    assert_eq!(
        groups(exposures_at(store, ExposureScope::All, at(50)).await),
        expected_groups(None, Some("beta")),
        "memberships start at valid_from"
    );
    assert_eq!(
        groups(exposures_at(store, ExposureScope::All, at(100)).await),
        expected_groups(Some("acme"), Some("beta"))
    );
    assert_eq!(
        groups(exposures_at(store, ExposureScope::All, at(300)).await),
        expected_groups(None, Some("beta")),
        "memberships are half-open"
    );
}

/// Narrower scopes select their rows of `at_250` (the exposures at 250 s),
/// and the total of a scope is the sum of its rows.
async fn assert_exposure_scopes(
    store: &dyn Store,
    [a, b, c, d]: [BorrowerId; 4],
    at_250: &[BorrowerExposure],
) {
    let pick = |ids: &[BorrowerId]| {
        at_250
            .iter()
            .filter(|r| ids.contains(&r.borrower))
            .cloned()
            .collect::<Vec<_>>()
    };
    let scopes = [
        (
            ExposureScope::Borrowers(vec![c, a, BorrowerId::generate(), a]),
            pick(&[a, c]),
        ),
        (ExposureScope::Borrowers(vec![d]), pick(&[d])),
        (ExposureScope::Borrowers(vec![]), vec![]),
        (ExposureScope::Sector(sector("D35")), pick(&[b, c])),
        // A section covers its divisions; a division only itself.
        (ExposureScope::Sector(sector("C")), pick(&[a, d])),
        (ExposureScope::Sector(sector("C25")), pick(&[a])),
        (ExposureScope::Sector(sector("C24")), vec![]),
        (ExposureScope::Sector(sector("D")), pick(&[b, c])),
        (ExposureScope::Country(country("FR")), pick(&[c, d])),
        (ExposureScope::Country(country("DE")), pick(&[a, b])),
        (ExposureScope::Country(country("JP")), vec![]),
        (ExposureScope::All, at_250.to_vec()),
    ];
    for (scope, expected) in scopes {
        let rows = exposures_at(store, scope.clone(), at(250)).await;
        assert_eq!(rows, expected, "{scope:?}");
        if let ExposureScope::Borrowers(named) = &scope {
            // The gate reads them with capital and liquidity: the same rows.
            let mut tx = store.begin_read().await.expect("begin_read");
            let figures = tx
                .gate_figures(named, at(250), InFlightClaims::Ignored)
                .await
                .expect("gate figures");
            assert_eq!(figures.exposures, expected, "gate figures of {scope:?}");
        }
        let sum: Decimal = rows.iter().map(BorrowerExposure::total).sum();
        assert_eq!(
            total_at(store, scope.clone(), at(250)).await,
            sum,
            "{scope:?}"
        );
    }
    assert_eq!(
        total_at(store, ExposureScope::All, at(250)).await,
        dec("6210.76")
    );
    assert_eq!(
        total_at(store, ExposureScope::Country(country("DE")), at(150)).await,
        dec("1510.75")
    );
    assert_eq!(
        total_at(store, ExposureScope::Sector(sector("A01")), at(150)).await,
        Decimal::ZERO
    );
}

pub async fn reservations_close_once(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let first = reserve(store, borrower_id, "1234567.89", at(30)).await;
    let second = reserve(store, borrower_id, "1", at(10)).await;
    let third = reserve(store, borrower_id, "2", at(20)).await;
    let later = reserve(store, borrower_id, "3", at(40)).await;

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.reservation(first.case_id).await.expect("load"),
        Some(first.clone())
    );
    assert_eq!(
        tx.reservation(CaseId::generate()).await.expect("load"),
        None
    );
    let err = tx
        .insert_reservation(&Reservation {
            amount: dec("5"),
            ..first.clone()
        })
        .await
        .expect_err("the case holds a reservation");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .insert_reservation(&Reservation {
            case_id: CaseId::generate(),
            ..first.clone()
        })
        .await
        .expect_err("unknown case");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);

    // Due: active and expires_at <= at, soonest expiry first.
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.due_reservations(at(30)).await.expect("due"),
        vec![second.clone(), third.clone(), first.clone()]
    );
    assert_eq!(
        tx.due_reservations(at(19)).await.expect("due"),
        vec![second.clone()]
    );
    assert!(tx.due_reservations(at(9)).await.expect("due").is_empty());
    drop(tx);

    let consumed = closed(&first, ReservationStatus::Consumed, at(25), Some(ANALYST));
    let expired = closed(&second, ReservationStatus::Expired, at(35), None);
    close_reservation(store, &consumed).await;
    close_reservation(store, &expired).await;

    refuse_bad_closings(store, [&first, &second, &third]).await;

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.reservation(first.case_id).await.expect("load"),
        Some(consumed)
    );
    assert_eq!(
        tx.reservation(second.case_id).await.expect("load"),
        Some(expired)
    );
    assert_eq!(
        tx.due_reservations(at(100)).await.expect("due"),
        vec![third, later],
        "closed reservations are never due"
    );
}

/// Closings the store refuses: of a closed reservation, of an unknown one,
/// and ones that close nothing; `first` is consumed, `second` expired,
/// `third` active.
async fn refuse_bad_closings(store: &dyn Store, [first, second, third]: [&Reservation; 3]) {
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .close_reservation(&closed(first, ReservationStatus::Expired, at(36), None))
        .await
        .expect_err("closed already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .close_reservation(&closed(
            second,
            ReservationStatus::Consumed,
            at(36),
            Some(ANALYST),
        ))
        .await
        .expect_err("expired already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .close_reservation(&Reservation {
            case_id: CaseId::generate(),
            ..closed(third, ReservationStatus::Expired, at(36), None)
        })
        .await
        .expect_err("unknown reservation");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    // Closing means consumed or expired, at a time.
    let mut tx = store.begin().await.expect("begin");
    let result = tx.close_reservation(third).await;
    assert!(result.is_err(), "{result:?}");
    let result = tx
        .close_reservation(&Reservation {
            closed_at: None,
            ..closed(third, ReservationStatus::Expired, at(36), None)
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    drop(tx);
}

pub async fn imported_balances_are_idempotent(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrowers = insert_borrowers(store, 2).await;
    let (a, b) = (borrowers[0], borrowers[1]);
    let ns = |t: Timestamp, n: i64| t + chrono::Duration::nanoseconds(n);
    let mut first = balance("core/4711 'x'", a, "250000.00");
    first.as_of = ns(day(-1), 999);
    assert_eq!(import(store, &first).await, ImportEffect::Inserted);
    assert_eq!(
        import(store, &first).await,
        ImportEffect::Unchanged,
        "the same record again (also at nanosecond precision)"
    );
    let same_value = ImportedBalance {
        amount: dec("250000"),
        ..first.clone()
    };
    assert_eq!(import(store, &same_value).await, ImportEffect::Unchanged);
    let changes = [
        ImportedBalance {
            amount: dec("240000.01"),
            ..first.clone()
        },
        ImportedBalance {
            amount: dec("240000.01"),
            as_of: day(0),
            ..first.clone()
        },
        ImportedBalance {
            borrower: b,
            amount: dec("240000.01"),
            as_of: day(0),
            ..first.clone()
        },
        ImportedBalance {
            borrower: b,
            amount: dec("240000.01"),
            as_of: day(0),
            days_past_due: Some(91),
            ..first.clone()
        },
        ImportedBalance {
            borrower: b,
            amount: dec("240000.01"),
            as_of: day(0),
            days_past_due: Some(91),
            overdrawn_days: Some(3),
            ..first.clone()
        },
    ];
    for change in &changes {
        assert_eq!(
            import(store, change).await,
            ImportEffect::Updated,
            "{change:?}"
        );
        assert_eq!(
            import(store, change).await,
            ImportEffect::Unchanged,
            "{change:?}"
        );
    }
    assert_eq!(
        import(store, &balance("core/0", a, "0")).await,
        ImportEffect::Inserted,
        "a zero balance is a balance"
    );

    let outstanding = |rows: Vec<BorrowerExposure>| {
        rows.into_iter()
            .map(|r| (r.borrower, r.outstanding))
            .collect::<Vec<_>>()
    };
    let mut expected = vec![(a, Decimal::ZERO), (b, dec("240000.01"))];
    expected.sort();
    assert_eq!(
        outstanding(exposures_at(store, ExposureScope::All, at(0)).await),
        expected,
        "one balance per source record, the latest import"
    );

    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .import_balance(&balance("core/1", BorrowerId::generate(), "1"))
        .await
        .expect_err("unknown borrower");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx.import_balance(&balance("core/2", a, "-1")).await;
    assert!(result.is_err(), "negative balance: {result:?}");
}

pub async fn breaches_open_resolve_and_filter(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let first = breach(at(10), Severity::Hard);
    let mut second = breach(at(20), Severity::Soft);
    second.subject = "liquidity:lcr".into();
    second.rule = RuleId::R6;
    second.check = "lcr_floor".into();
    second.limit = dec("110");
    second.usage = dec("104.3700");
    second.amount_over = dec("5.63");
    let third = breach(at(30), Severity::Hard);
    let mut resolved = breach(at(5), Severity::Soft);
    resolved.resolved_at = Some(at(6));
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.open_breaches().await.expect("none").is_empty());
    // Stored out of order, listed by detection time.
    for b in [&third, &first, &resolved, &second] {
        tx.insert_breach(b).await.expect("insert breach");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let err = tx.insert_breach(&first).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx.insert_breach(&breach(at(1), Severity::Within)).await;
    assert!(result.is_err(), "within is no breach: {result:?}");
    drop(tx);

    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.open_breaches().await.expect("open"),
        vec![first.clone(), second.clone(), third.clone()]
    );
    drop(tx);

    assert_resolving(store, second.id).await;

    let second = Breach {
        resolved_at: Some(at(40)),
        ..second
    };
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.open_breaches().await.expect("open"),
        vec![first.clone(), third.clone()]
    );
    drop(tx);
    assert_breach_filters(store, [resolved, first, second, third]).await;
}

/// A breach is resolved once; an unknown one is not found.
async fn assert_resolving(store: &dyn Store, id: uuid::Uuid) {
    let mut tx = store.begin().await.expect("begin");
    tx.resolve_breach(id, at(40)).await.expect("resolve");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .resolve_breach(id, at(41))
        .await
        .expect_err("resolved already");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .resolve_breach(uuid::Uuid::new_v4(), at(41))
        .await
        .expect_err("unknown breach");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    drop(tx);
}

/// Breaches by detection time in half-open windows, at most a limit, with
/// their decimals as written; `breaches` are in detection order, the
/// second the liquidity breach detected at 20.
async fn assert_breach_filters(store: &dyn Store, breaches: [Breach; 4]) {
    let [resolved, first, second, third] = breaches;
    let mut tx = store.begin_read().await.expect("begin_read");
    let filter = |from: i64, to: i64, limit: u32| BreachFilter {
        from: at(from),
        to: at(to),
        limit,
    };
    let all = vec![resolved, first.clone(), second.clone(), third.clone()];
    assert_eq!(tx.breaches(&filter(0, 100, 100)).await.expect("all"), all);
    assert_eq!(
        tx.breaches(&filter(10, 30, 100)).await.expect("[10, 30)"),
        vec![first.clone(), second.clone()],
        "half-open range"
    );
    assert_eq!(
        tx.breaches(&filter(6, 100, 2)).await.expect("limit"),
        vec![first, second.clone()]
    );
    assert!(
        tx.breaches(&filter(0, 100, 0))
            .await
            .expect("none")
            .is_empty()
    );
    assert!(
        tx.breaches(&filter(31, 100, 9))
            .await
            .expect("none")
            .is_empty()
    );
    let stored = tx.breaches(&filter(20, 21, 1)).await.expect("liquidity");
    assert_eq!(stored, vec![second]);
    assert_eq!(
        (
            stored[0].usage.to_string(),
            stored[0].amount_over.to_string()
        ),
        ("104.3700".to_owned(), "5.63".to_owned()),
        "decimals are kept as written"
    );
}

/// Amounts are EUR cents in storage: more than two decimal places, or more
/// than an i64 of cents, is refused and nothing is stored.
pub async fn amounts_beyond_cents_are_refused(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let borrower_id = insert_borrower(store).await;
    let case = new_case(borrower_id, "1000.00", "EUR");
    insert_case(store, &case).await;
    for amount in [dec("0.001"), dec("1000.005"), Decimal::MAX, Decimal::MIN] {
        refuse_everywhere(store, amount, case.id, borrower_id).await;
    }
    let mut tx = store.begin_read().await.expect("begin_read");
    assert!(
        tx.limit_versions(None, None)
            .await
            .expect("limits")
            .is_empty()
    );
    assert_eq!(tx.latest_capital().await.expect("capital"), None);
    assert_eq!(tx.latest_liquidity().await.expect("liquidity"), None);
    assert_eq!(tx.reservation(case.id).await.expect("reservation"), None);
    assert_eq!(
        tx.exposure_total(&ExposureScope::All, at(0))
            .await
            .expect("total"),
        Decimal::ZERO
    );
    drop(tx);
    // Trailing zeros are no extra precision; the largest amounts round-trip.
    let mut tx = store.begin().await.expect("begin");
    tx.insert_capital(&Capital {
        tier1: dec("92233720368547758.07"),
        ..capital(1, "0")
    })
    .await
    .expect("i64::MAX cents");
    tx.insert_liquidity(&liquidity(1, "1.500000", "110"))
        .await
        .expect("trailing zeros");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_read().await.expect("begin_read");
    assert_eq!(
        tx.latest_capital().await.expect("capital").map(|c| c.tier1),
        Some(dec("92233720368547758.07"))
    );
    assert_eq!(
        tx.latest_liquidity()
            .await
            .expect("liquidity")
            .map(|l| l.hqla),
        Some(dec("1.5"))
    );
}

/// Every write of an amount refuses `amount`, each in a transaction of its
/// own (a refused statement may abort a PostgreSQL transaction).
async fn refuse_everywhere(
    store: &dyn Store,
    amount: Decimal,
    case: CaseId,
    borrower_id: BorrowerId,
) {
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .insert_limit_version(&LimitVersion {
            amount,
            ..limit_version(LimitSubject::Sector(sector("D35")), 1, "0", at(1))
        })
        .await;
    assert!(result.is_err(), "limit {amount}: {result:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .insert_capital(&Capital {
            tier1: amount,
            ..capital(1, "0")
        })
        .await;
    assert!(result.is_err(), "capital {amount}: {result:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .insert_liquidity(&LiquidityPosition {
            inflows_30d: amount,
            ..liquidity(1, "1", "110")
        })
        .await;
    assert!(result.is_err(), "liquidity {amount}: {result:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .insert_reservation(&Reservation {
            case_id: case,
            borrower: borrower_id,
            amount,
            status: ReservationStatus::Active,
            reserved_at: at(0),
            expires_at: at(10),
            closed_at: None,
            closed_by: None,
        })
        .await;
    assert!(result.is_err(), "reservation {amount}: {result:?}");
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let result = tx
        .import_balance(&ImportedBalance {
            amount,
            ..balance("core/1", borrower_id, "0")
        })
        .await;
    assert!(result.is_err(), "import {amount}: {result:?}");
    drop(tx);
}
