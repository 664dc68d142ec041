//! Table tests of L3: who may value, the value after haircuts, the
//! unsecured part and the revaluation schedule.

use super::*;

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn eur(s: &str) -> Money {
    Money::parse(s, "EUR").expect("money")
}

fn at() -> Timestamp {
    "2026-06-01T10:00:00Z".parse().expect("time")
}

fn item(kind: CollateralKind, nominal: &str) -> Collateral {
    Collateral {
        id: CollateralId::generate(),
        borrower_id: BorrowerId::generate(),
        kind,
        nominal: eur(nominal),
        description: "item".into(),
        status: CollateralStatus::Active,
        registered_by: StaffId::parse("lo-1").expect("id"),
        registered_at: at(),
    }
}

fn valuation(c: &Collateral, value: Money, on: &str, status: ValuationStatus) -> Valuation {
    Valuation {
        id: ValuationId::generate(),
        collateral_id: c.id,
        value,
        valuation_date: date(on),
        valuer: "Gutachter".into(),
        method: "market_value".into(),
        recorded_by: StaffId::parse("ba-1").expect("id"),
        recorded_at: at(),
        side: Side::Backoffice,
        status,
        confirmed_by: None,
        confirmed_at: None,
    }
}

fn check(c: &Collateral, result: LegalResult) -> LegalCheck {
    LegalCheck {
        collateral_id: c.id,
        result,
        note: "land register extract".into(),
        checked_by: StaffId::parse("ba-1").expect("id"),
        checked_at: at(),
    }
}

/// An item with an effective valuation of `value` on `on` and a legal check.
fn position(
    kind: CollateralKind,
    value: &str,
    on: &str,
    legal: Option<LegalResult>,
) -> CollateralPosition {
    let c = item(kind, value);
    CollateralPosition {
        effective: Some(valuation(&c, eur(value), on, ValuationStatus::Effective)),
        proposed: None,
        legal_check: legal.map(|r| check(&c, r)),
        collateral: c,
    }
}

#[test]
fn l3_defaults_are_valid_and_as_the_rulebook_says() {
    let p = CollateralParameters::default();
    assert!(p.validate().is_ok());
    use CollateralKind::*;
    let table = [
        (PledgeOfDeposits, "0", 12),
        (Guarantee, "20", 12),
        (MortgageResidential, "20", 36),
        (MortgageCommercial, "40", 12),
        (SecuritiesPledge, "30", 12),
        (AssignmentOfReceivables, "50", 12),
        (Other, "100", 12),
    ];
    for (kind, haircut, months) in table {
        assert_eq!(p.haircut(kind), d(haircut), "L3 haircut {kind}");
        assert_eq!(p.revaluation_months_of(kind), months, "L3 months {kind}");
    }
    assert_eq!(p.back_office_threshold, d("250000"));
}

#[test]
fn l3_invalid_parameters_are_refused() {
    let mut cases = Vec::new();
    let mut p = CollateralParameters::default();
    p.haircuts.insert(CollateralKind::Guarantee, d("100.01"));
    cases.push(("haircut above 100", p));
    let mut p = CollateralParameters::default();
    p.haircuts.insert(CollateralKind::Guarantee, d("-1"));
    cases.push(("negative haircut", p));
    let mut p = CollateralParameters::default();
    p.revaluation_months.insert(CollateralKind::Other, 0);
    cases.push(("zero months", p));
    let mut p = CollateralParameters::default();
    p.revaluation_months.insert(CollateralKind::Other, 121);
    cases.push(("too many months", p));
    cases.push((
        "negative threshold",
        CollateralParameters {
            back_office_threshold: d("-0.01"),
            ..CollateralParameters::default()
        },
    ));
    cases.push((
        "currency",
        CollateralParameters {
            currency: "XXX".into(),
            ..CollateralParameters::default()
        },
    ));
    for (name, p) in cases {
        assert!(p.validate().is_err(), "L3 {name} must be refused");
        let mut rules = crate::RuleParameters::defaults();
        rules.collateral = p;
        assert!(rules.validate().is_err(), "L3 {name} in a rule set");
    }
}

#[test]
fn l3_stored_rule_sets_without_collateral_parse_with_the_defaults() {
    let mut json = serde_json::to_value(crate::RuleParameters::defaults()).expect("json");
    assert_eq!(json["collateral"]["haircuts"]["guarantee"], "20");
    assert_eq!(json["collateral"]["back_office_threshold"], "250000");
    json.as_object_mut().expect("object").remove("collateral");
    let back: crate::RuleParameters = serde_json::from_value(json).expect("parse");
    assert_eq!(back.collateral, CollateralParameters::default());
    let bad = serde_json::json!({"haircuts": {"gold_bars": "10"}, "revaluation_months": {},
        "back_office_threshold": "1", "currency": "EUR"});
    assert!(serde_json::from_value::<CollateralParameters>(bad).is_err());
}

/// (side, request, item, new value, outcome: a status or the refusal's rule)
type Row<'a> = (
    Side,
    ValuationRequest,
    &'a CollateralPosition,
    Money,
    Result<ValuationStatus, Option<RuleId>>,
);

#[test]
fn l3_who_may_value_at_and_above_the_threshold() {
    use ValuationRequest::*;
    use ValuationStatus as VS;
    let p = CollateralParameters::default();
    let small = position(CollateralKind::Guarantee, "250000.00", "2026-01-01", None);
    let large = position(CollateralKind::Guarantee, "250000.01", "2026-01-01", None);
    let mut small_nominal_large_value = small.clone();
    small_nominal_large_value.effective = None;
    let usd = CollateralPosition {
        collateral: Collateral {
            nominal: Money::parse("100", "USD").expect("usd"),
            ..item(CollateralKind::Guarantee, "1")
        },
        effective: None,
        proposed: None,
        legal_check: None,
    };
    // (side, request, item, new value, outcome: Ok(status) or Err(rule))
    let table: Vec<Row> = vec![
        (
            Side::Market,
            Propose,
            &large,
            eur("900000"),
            Ok(VS::Proposed),
        ),
        (Side::Market, Propose, &small, eur("1000"), Ok(VS::Proposed)),
        (
            Side::Market,
            Effective,
            &small,
            eur("250000"),
            Ok(VS::Effective),
        ),
        (
            Side::Market,
            Effective,
            &small,
            eur("250000.01"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Market,
            Effective,
            &large,
            eur("1000"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Market,
            Effective,
            &small_nominal_large_value,
            eur("999999"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Market,
            Effective,
            &usd,
            Money::parse("100", "USD").expect("usd"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Backoffice,
            Effective,
            &large,
            eur("900000"),
            Ok(VS::Effective),
        ),
        (
            Side::Backoffice,
            Effective,
            &small,
            eur("10"),
            Ok(VS::Effective),
        ),
        (Side::Backoffice, Propose, &small, eur("10"), Err(None)),
        (
            Side::Risk,
            Effective,
            &small,
            eur("10"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Risk,
            Propose,
            &small,
            eur("10"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Audit,
            Effective,
            &small,
            eur("10"),
            Err(Some(RuleId::L3)),
        ),
        (
            Side::Admin,
            Effective,
            &small,
            eur("10"),
            Err(Some(RuleId::L3)),
        ),
    ];
    for (side, request, item, value, expected) in table {
        let got = valuation_status(side, request, item, &value, &p);
        match expected {
            Ok(status) => assert_eq!(got, Ok(status), "L3 {side:?} {request:?} {value}"),
            Err(rule) => assert_eq!(
                got.expect_err("refused").rule_id(),
                rule,
                "L3 {side:?} {request:?} {value}"
            ),
        }
    }
    let mut released = small.clone();
    released.collateral.status = CollateralStatus::Released;
    assert!(matches!(
        valuation_status(Side::Backoffice, Effective, &released, &eur("1"), &p),
        Err(DomainError::InvalidState(_))
    ));
}

#[test]
fn l3_legal_check_and_confirmation_are_back_office_only() {
    let c = item(CollateralKind::Guarantee, "1000");
    for side in Side::ALL {
        let got = may_check_legal_validity(side, &c);
        if side == Side::Backoffice {
            assert_eq!(got, Ok(()));
        } else {
            assert_eq!(
                got.expect_err("refused").rule_id(),
                Some(RuleId::L3),
                "{side:?}"
            );
        }
    }
    let proposal = valuation(&c, eur("1000"), "2026-01-01", ValuationStatus::Proposed);
    for side in Side::ALL {
        let got = confirm_proposal(side, &proposal, &c);
        if side == Side::Backoffice {
            assert_eq!(got, Ok(()));
        } else {
            assert_eq!(
                got.expect_err("refused").rule_id(),
                Some(RuleId::L3),
                "{side:?}"
            );
        }
    }
    let effective = valuation(&c, eur("1000"), "2026-01-01", ValuationStatus::Effective);
    assert!(matches!(
        confirm_proposal(Side::Backoffice, &effective, &c),
        Err(DomainError::InvalidState(_))
    ));
}

#[test]
fn l3_value_after_haircuts_counts_only_valued_and_valid_active_items() {
    use CollateralKind::*;
    use LegalResult::*;
    let p = CollateralParameters::default();
    let today = date("2026-06-01");
    // (item, value after haircut)
    let mut released = position(PledgeOfDeposits, "1000.00", "2026-01-01", Some(Valid));
    released.collateral.status = CollateralStatus::Released;
    let mut proposal_only = position(PledgeOfDeposits, "1000.00", "2026-01-01", Some(Valid));
    let proposal = proposal_only.effective.take().map(|mut v| {
        v.status = ValuationStatus::Proposed;
        v
    });
    proposal_only.proposed = proposal;
    let mut mislabelled = position(PledgeOfDeposits, "1000.00", "2026-01-01", Some(Valid));
    if let Some(v) = mislabelled.effective.as_mut() {
        v.status = ValuationStatus::Proposed;
    }
    let mut dollars = position(PledgeOfDeposits, "1000.00", "2026-01-01", Some(Valid));
    if let Some(v) = dollars.effective.as_mut() {
        v.value = Money::parse("1000.00", "USD").expect("usd");
    }
    let mut unknown_haircut = position(Guarantee, "1000.00", "2026-01-01", Some(Valid));
    let mut p_without_guarantee = p.clone();
    p_without_guarantee.haircuts.remove(&Guarantee);
    unknown_haircut.collateral.kind = Guarantee;
    let table = [
        (
            position(PledgeOfDeposits, "1000.00", "2026-01-01", Some(Valid)),
            "1000.00",
        ),
        (
            position(Guarantee, "1000.00", "2026-01-01", Some(Valid)),
            "800.00",
        ),
        (
            position(MortgageResidential, "333333.33", "2026-01-01", Some(Valid)),
            "266666.66",
        ),
        (
            position(MortgageCommercial, "0.05", "2026-01-01", Some(Valid)),
            "0.03",
        ),
        (
            position(SecuritiesPledge, "100.01", "2026-01-01", Some(Valid)),
            "70.00",
        ),
        (
            position(AssignmentOfReceivables, "99.99", "2026-01-01", Some(Valid)),
            "49.99",
        ),
        (position(Other, "5000.00", "2026-01-01", Some(Valid)), "0"),
        (
            position(Guarantee, "1000.00", "2026-01-01", Some(Invalid)),
            "0",
        ),
        (position(Guarantee, "1000.00", "2026-01-01", None), "0"),
        (
            position(Guarantee, "1000.00", "2026-06-02", Some(Valid)),
            "0",
        ),
        (released, "0"),
        (proposal_only, "0"),
        (mislabelled, "0"),
        (dollars, "0"),
    ];
    let mut total = Decimal::ZERO;
    for (item, expected) in &table {
        let got = value_after_haircut(item, &p, today);
        assert_eq!(
            got,
            d(expected),
            "L3 {} {:?}",
            item.collateral.kind,
            item.effective
        );
        total += got;
    }
    let items: Vec<_> = table.iter().map(|(item, _)| item.clone()).collect();
    assert_eq!(collateral_value_after_haircuts(&items, &p, today), total);
    assert_eq!(total, d("268586.68"));
    assert_eq!(
        collateral_value_after_haircuts(&[], &p, today),
        Decimal::ZERO
    );
    assert_eq!(
        value_after_haircut(&unknown_haircut, &p_without_guarantee, today),
        Decimal::ZERO,
        "a kind without a haircut secures nothing"
    );
}

#[test]
fn l3_unsecured_part_is_never_negative() {
    let table = [
        ("1000000", "268586.68", "731413.32"),
        ("1000", "1000", "0"),
        ("1000", "5000", "0"),
        ("1000", "0", "1000"),
        ("0", "0", "0"),
    ];
    for (exposure, secured, unsecured) in table {
        assert_eq!(
            unsecured_part(d(exposure), d(secured)),
            d(unsecured),
            "L3 {exposure} - {secured}"
        );
    }
}

#[test]
fn l3_revaluations_fall_due_on_the_schedule_per_kind() {
    use CollateralKind::*;
    let p = CollateralParameters::default();
    // (kind, last effective valuation, the date asked, next due, due?)
    let table = [
        (
            MortgageCommercial,
            "2025-06-01",
            "2026-05-31",
            "2026-06-01",
            false,
        ),
        (
            MortgageCommercial,
            "2025-06-01",
            "2026-06-01",
            "2026-06-01",
            true,
        ),
        (
            MortgageResidential,
            "2025-06-01",
            "2026-06-01",
            "2028-06-01",
            false,
        ),
        (
            MortgageResidential,
            "2023-06-01",
            "2026-06-01",
            "2026-06-01",
            true,
        ),
        (Guarantee, "2024-02-29", "2025-02-28", "2025-02-28", true),
        (
            PledgeOfDeposits,
            "2026-01-31",
            "2026-06-01",
            "2027-01-31",
            false,
        ),
    ];
    for (kind, valued, asked, next, due) in table {
        let item = position(kind, "1000", valued, Some(LegalResult::Valid));
        assert_eq!(
            next_revaluation(&item, &p),
            Some(date(next)),
            "L3 {kind} {valued}"
        );
        assert_eq!(
            revaluation_due(&item, &p, date(asked)),
            due,
            "L3 {kind} {valued} at {asked}"
        );
        // The store's cut-off agrees with the schedule.
        assert_eq!(
            date(valued) <= due_cutoff(kind, &p, date(asked)),
            due,
            "L3 cut-off {kind} {valued} at {asked}"
        );
    }
    let mut never = position(Guarantee, "1000", "2026-01-01", None);
    never.effective = None;
    assert_eq!(next_revaluation(&never, &p), None);
    assert!(
        revaluation_due(&never, &p, date("2026-01-01")),
        "never valued: due"
    );
    let mut released = position(Guarantee, "1000", "2020-01-01", None);
    released.collateral.status = CollateralStatus::Released;
    assert!(
        !revaluation_due(&released, &p, date("2026-01-01")),
        "released: never due"
    );

    let overdue = position(MortgageCommercial, "1000", "2024-01-01", None);
    let fresh = position(MortgageCommercial, "1000", "2026-05-01", None);
    let items = vec![fresh, overdue.clone(), never.clone(), released];
    let due = revaluations_due(&items, &p, date("2026-06-01"));
    let ids: Vec<_> = due.iter().map(|i| i.collateral.id).collect();
    assert_eq!(ids, vec![never.collateral.id, overdue.collateral.id]);
}

#[test]
fn l3_valuation_dates_in_the_future_are_refused() {
    let today = date("2026-06-01");
    assert_eq!(check_valuation_date(date("2026-06-01"), today), Ok(()));
    assert_eq!(check_valuation_date(date("2020-01-01"), today), Ok(()));
    assert!(matches!(
        check_valuation_date(date("2026-06-02"), today),
        Err(DomainError::Invalid(_))
    ));
}

#[test]
fn l3_kinds_parse_from_their_names_only() {
    for kind in CollateralKind::ALL {
        assert_eq!(kind.as_str().parse::<CollateralKind>(), Ok(*kind));
        let json = serde_json::to_string(kind).expect("json");
        assert_eq!(json, format!("\"{kind}\""));
    }
    for bad in ["", "Guarantee", "mortgage", "gold"] {
        assert!(bad.parse::<CollateralKind>().is_err(), "{bad}");
    }
}
