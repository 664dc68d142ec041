//! Table tests per rule (R1, R3, R4, R6, R7, R9) at, just below and just
//! above every threshold, and properties of the gate.

use crate::exposure::Aggregates;
use crate::reports::{ReportKind, report};
use crate::watch::{evaluate_all, reconcile};
use crate::*;
use chrono::{TimeZone, Utc};
use creditops_domain::{BorrowerId, RuleId, Severity};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn borrower(group: Option<&str>, total: &str) -> BorrowerExposure {
    BorrowerExposure {
        borrower: BorrowerId::generate(),
        group: group.map(str::to_owned),
        sector: "D35".parse().unwrap(),
        country: "DE".parse().unwrap(),
        institution: false,
        reserved: Decimal::ZERO,
        outstanding: d(total),
    }
}

fn limit(subject: LimitSubject, amount: &str, tolerance: &str) -> Limit {
    Limit {
        id: uuid::Uuid::now_v7(),
        subject,
        version: 1,
        amount: d(amount),
        tolerance_percent: d(tolerance),
    }
}

fn liquidity(hqla: &str) -> LiquidityView {
    LiquidityView {
        hqla: d(hqla),
        outflows_30d: d("1000000000"),
        inflows_30d: Decimal::ZERO,
        floor_percent: d("110"),
        committed: Decimal::ZERO,
    }
}

/// A world with a comfortable capital and liquidity position, so only the
/// limit under test binds.
struct World {
    borrower: BorrowerExposure,
    members: Vec<BorrowerExposure>,
    limits: Vec<Limit>,
    sector_usage: Decimal,
    section_usage: Decimal,
    country_usage: Decimal,
    tier1: Option<Decimal>,
    liquidity: Option<LiquidityView>,
}

impl World {
    fn new(outstanding: &str) -> Self {
        let borrower = borrower(None, outstanding);
        Self {
            members: vec![borrower.clone()],
            limits: vec![limit(
                LimitSubject::Borrower(borrower.borrower),
                "1000000000",
                "0",
            )],
            borrower,
            sector_usage: Decimal::ZERO,
            section_usage: Decimal::ZERO,
            country_usage: Decimal::ZERO,
            tier1: Some(d("100000000000")),
            liquidity: Some(liquidity("100000000000")),
        }
    }

    fn gate(&self, amount: &str) -> creditops_domain::RiskVerdict {
        gate(
            &GateInput {
                borrower: &self.borrower,
                members: &self.members,
                sector_usage: self.sector_usage,
                section_usage: self.section_usage,
                country_usage: self.country_usage,
                limits: &self.limits,
                tier1: self.tier1,
                liquidity: self.liquidity.as_ref(),
            },
            d(amount),
        )
    }
}

fn finding<'a>(
    verdict: &'a creditops_domain::RiskVerdict,
    check: &str,
) -> &'a creditops_domain::RiskFinding {
    verdict
        .findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {verdict:?}"))
}

#[test]
fn r3_every_limit_kind_at_below_and_above_its_threshold() {
    // Limit 1,000,000 with 10 % tolerance: soft up to 1,100,000.
    // (existing usage, request, expected severity)
    let table = [
        ("400000", "599999.99", Severity::Within),
        ("400000", "600000.00", Severity::Within),
        ("400000", "600000.01", Severity::Soft),
        ("400000", "700000.00", Severity::Soft),
        ("400000", "700000.01", Severity::Hard),
    ];
    for kind in [
        LimitKind::Borrower,
        LimitKind::Group,
        LimitKind::Sector,
        LimitKind::Country,
    ] {
        for (existing, request, expected) in table {
            let mut world = World::new("0");
            world.borrower.group = Some("acme".into());
            let subject = match kind {
                LimitKind::Borrower => LimitSubject::Borrower(world.borrower.borrower),
                LimitKind::Group => LimitSubject::Group("acme".into()),
                LimitKind::Sector => LimitSubject::Sector("D35".parse().unwrap()),
                LimitKind::Country => LimitSubject::Country("DE".parse().unwrap()),
            };
            match kind {
                LimitKind::Borrower | LimitKind::Group => {
                    world.borrower.outstanding = d(existing);
                }
                LimitKind::Sector => world.sector_usage = d(existing),
                LimitKind::Country => world.country_usage = d(existing),
            }
            world.members = vec![world.borrower.clone()];
            // The counterparty limit that R1 needs stays generous unless it
            // is the one under test.
            world.limits = vec![
                limit(LimitSubject::Group("acme".into()), "1000000000", "0"),
                limit(
                    LimitSubject::Borrower(world.borrower.borrower),
                    "1000000000",
                    "0",
                ),
            ];
            world.limits.retain(|l| l.subject.kind() != kind);
            world.limits.push(limit(subject.clone(), "1000000", "10"));
            let verdict = world.gate(request);
            let check = format!("{}_limit", kind.as_str());
            let found = finding(&verdict, &check);
            assert_eq!(found.severity, expected, "{kind:?} {existing}+{request}");
            assert_eq!(verdict.outcome, expected, "{kind:?} {existing}+{request}");
            assert_eq!(
                found.headroom,
                Some(d("1000000") - d(existing) - d(request)),
                "{kind:?} headroom"
            );
            assert_eq!(found.subject, subject.to_string());
        }
    }
}

#[test]
fn r3_group_limit_aggregates_every_member() {
    let mut world = World::new("300000");
    world.borrower.group = Some("acme".into());
    let mut sister = borrower(Some("acme"), "500000");
    sister.reserved = d("100000");
    let stranger = borrower(Some("other"), "9000000");
    world.members = vec![world.borrower.clone(), sister, stranger];
    world.limits = vec![limit(LimitSubject::Group("acme".into()), "1000000", "0")];
    assert_eq!(world.gate("100000").outcome, Severity::Within);
    let verdict = world.gate("100000.01");
    assert_eq!(verdict.outcome, Severity::Hard);
    assert_eq!(
        finding(&verdict, "group_limit").usage,
        Some(d("1000000.01"))
    );
}

#[test]
fn r1_no_counterparty_limit_is_a_hard_breach() {
    let mut world = World::new("0");
    world.limits = vec![limit(
        LimitSubject::Sector("D35".parse().unwrap()),
        "1000000000",
        "0",
    )];
    let verdict = world.gate("1");
    assert_eq!(verdict.outcome, Severity::Hard);
    assert_eq!(finding(&verdict, "limit_required").rule, RuleId::R1);
    // A group limit suffices for a group member.
    world.borrower.group = Some("acme".into());
    world
        .limits
        .push(limit(LimitSubject::Group("acme".into()), "10", "0"));
    assert_eq!(world.gate("1").outcome, Severity::Within);
}

#[test]
fn r3_large_exposure_marks_at_ten_percent_and_caps_above_twenty_five() {
    // Tier 1 = 1,000,000: 10 % = 100,000, 25 % = 250,000.
    let table = [
        ("99999.99", false, Severity::Within),
        ("100000.00", true, Severity::Within),
        ("250000.00", true, Severity::Within),
        ("250000.01", true, Severity::Hard),
    ];
    for (request, large, expected) in table {
        let mut world = World::new("0");
        world.tier1 = Some(d("1000000"));
        let verdict = world.gate(request);
        assert_eq!(verdict.large_exposure, large, "{request}");
        assert_eq!(
            finding(&verdict, "large_exposure_cap").severity,
            expected,
            "{request}"
        );
        assert_eq!(verdict.outcome, expected, "{request}");
    }
}

#[test]
fn r3_institution_cap_is_at_least_150m() {
    // Tier 1 = 100m: 25 % = 25m, but an institution may take up to 150m.
    let table = [
        ("150000000.00", Severity::Within),
        ("150000000.01", Severity::Hard),
    ];
    for (request, expected) in table {
        let mut world = World::new("0");
        world.borrower.institution = true;
        world.members = vec![world.borrower.clone()];
        world.tier1 = Some(d("100000000"));
        let verdict = world.gate(request);
        assert_eq!(
            finding(&verdict, "large_exposure_cap").severity,
            expected,
            "{request}"
        );
    }
    // With a large Tier 1, 25 % is above 150m and applies.
    let mut world = World::new("0");
    world.borrower.institution = true;
    world.members = vec![world.borrower.clone()];
    world.tier1 = Some(d("1000000000"));
    assert_eq!(world.gate("250000000").outcome, Severity::Within);
    assert_eq!(world.gate("250000000.01").outcome, Severity::Hard);
}

#[test]
fn r3_group_with_institution_keeps_non_institutions_within_25_percent() {
    let mut world = World::new("0");
    world.borrower.group = Some("bankgroup".into());
    world.limits = vec![limit(
        LimitSubject::Group("bankgroup".into()),
        "1000000000",
        "0",
    )];
    let mut bank = borrower(Some("bankgroup"), "100000000");
    bank.institution = true;
    world.members = vec![world.borrower.clone(), bank];
    world.tier1 = Some(d("100000000"));
    // Non-institution part: 25m allowed.
    assert_eq!(world.gate("25000000").outcome, Severity::Within);
    assert_eq!(world.gate("25000000.01").outcome, Severity::Hard);
}

#[test]
fn r6_liquidity_floor_at_below_and_above() {
    // Outflows 1bn, floor 110 %: HQLA after payout must stay >= 1.1bn.
    let table = [
        ("1100000000", "0", Severity::Within),
        ("1100000000", "0.01", Severity::Hard),
        ("1200000000", "100000000", Severity::Within),
        ("1200000000", "100000000.01", Severity::Hard),
    ];
    for (hqla, request, expected) in table {
        let mut world = World::new("0");
        world.liquidity = Some(liquidity(hqla));
        let verdict = world.gate(request);
        assert_eq!(
            finding(&verdict, "liquidity_floor").severity,
            expected,
            "{hqla} {request}"
        );
    }
    // Committed cash (reservations, disbursements since the position) counts.
    let mut world = World::new("0");
    let mut view = liquidity("1200000000");
    view.committed = d("100000000");
    world.liquidity = Some(view);
    assert_eq!(world.gate("0.01").outcome, Severity::Hard);
}

#[test]
fn r4_missing_capital_or_liquidity_fails_closed() {
    let mut world = World::new("0");
    world.tier1 = None;
    let verdict = world.gate("1");
    assert_eq!(verdict.outcome, Severity::Hard);
    assert!(verdict.summary().contains("Tier 1"));
    let mut world = World::new("0");
    world.liquidity = None;
    let verdict = world.gate("1");
    assert_eq!(verdict.outcome, Severity::Hard);
    assert!(verdict.summary().contains("liquidity"));
}

#[test]
fn r4_verdict_names_binding_limits_first_with_headroom() {
    let mut world = World::new("0");
    world.limits.push(limit(
        LimitSubject::Country("DE".parse().unwrap()),
        "100",
        "0",
    ));
    let verdict = world.gate("150");
    assert_eq!(verdict.outcome, Severity::Hard);
    let first = &verdict.findings[0];
    assert_eq!(first.check, "country_limit");
    assert_eq!(first.headroom, Some(d("-50")));
    assert!(verdict.summary().contains("country_limit (country:DE)"));
}

#[test]
fn r7_reconcile_opens_once_and_resolves_when_within() {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let b = borrower(None, "150");
    let limits = vec![limit(LimitSubject::Borrower(b.borrower), "100", "0")];
    let usages = evaluate_all(std::slice::from_ref(&b), &limits, None, None);
    let first = reconcile(&[], &usages, "import", now);
    assert_eq!(first.opened.len(), 1);
    let breach = &first.opened[0];
    assert_eq!(breach.amount_over, d("50"));
    assert_eq!(breach.severity, Severity::Hard);
    assert_eq!(breach.owner, "risk-control");
    // Still over: nothing new.
    let again = reconcile(&first.opened, &usages, "periodic", now);
    assert!(again.opened.is_empty() && again.resolved.is_empty());
    // Back within: resolved.
    let mut lower = b.clone();
    lower.outstanding = d("100");
    let usages = evaluate_all(&[lower], &limits, None, None);
    let back = reconcile(&first.opened, &usages, "import", now);
    assert_eq!(back.resolved, vec![breach.id]);
    // A subject not evaluated stays open.
    let none = reconcile(&first.opened, &[], "partial", now);
    assert!(none.resolved.is_empty());
}

#[test]
fn r7_watcher_sees_large_exposure_cap_and_lcr() {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let b = borrower(Some("acme"), "260");
    let usages = evaluate_all(
        &[b],
        &[],
        Some(d("1000")),
        Some(&liquidity("1099999999.99")),
    );
    let result = reconcile(&[], &usages, "tier1 change", now);
    let checks: Vec<&str> = result.opened.iter().map(|b| b.check.as_str()).collect();
    assert!(checks.contains(&"large_exposure_cap"), "{checks:?}");
    assert!(checks.contains(&"liquidity_floor"), "{checks:?}");
    let cap = result
        .opened
        .iter()
        .find(|b| b.check == "large_exposure_cap")
        .unwrap();
    assert_eq!(cap.subject, "group:acme");
    assert_eq!(cap.amount_over, d("10"));
}

#[test]
fn r9_report_thresholds() {
    // (exposure, large (tier1 = 10m => 1m), million, section 18)
    let table = [
        ("750000.00", false, false, false),
        ("750000.01", false, false, true),
        ("999999.99", false, false, true),
        ("1000000.00", true, true, true),
    ];
    for (total, large, million, s18) in table {
        let aggregates = Aggregates::build(&[borrower(None, total)]);
        let tier1 = Some(d("10000000"));
        assert_eq!(
            !report(ReportKind::LargeExposures, &aggregates, tier1).is_empty(),
            large,
            "{total}"
        );
        assert_eq!(
            !report(ReportKind::MillionLoans, &aggregates, tier1).is_empty(),
            million,
            "{total}"
        );
        assert_eq!(
            !report(ReportKind::Section18, &aggregates, tier1).is_empty(),
            s18,
            "{total}"
        );
    }
    // EUR 300m is a large exposure whatever the capital.
    let aggregates = Aggregates::build(&[borrower(None, "300000000")]);
    assert_eq!(
        report(
            ReportKind::LargeExposures,
            &aggregates,
            Some(d("1000000000000"))
        )
        .len(),
        1
    );
    let aggregates = Aggregates::build(&[borrower(None, "299999999.99")]);
    assert!(
        report(
            ReportKind::LargeExposures,
            &aggregates,
            Some(d("1000000000000"))
        )
        .is_empty()
    );
}

#[test]
fn r9_units_aggregate_groups() {
    let a = borrower(Some("acme"), "600000");
    let b = borrower(Some("acme"), "500000");
    let lines = report(ReportKind::MillionLoans, &Aggregates::build(&[a, b]), None);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].unit, "group:acme");
    assert_eq!(lines[0].members, 2);
    assert_eq!(lines[0].exposure, d("1100000"));
}

fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..10_000_000_000).prop_map(|cents| Decimal::new(cents, 2))
}

proptest! {
    /// A larger request never gets a better verdict (monotone gate).
    #[test]
    fn r4_gate_is_monotone_in_the_amount(existing in amount(), a in amount(), b in amount(),
                                         limit_amount in amount(), tolerance in 0u32..50) {
        let mut world = World::new("0");
        world.borrower.outstanding = existing;
        world.members = vec![world.borrower.clone()];
        world.limits = vec![Limit {
            id: uuid::Uuid::now_v7(),
            subject: LimitSubject::Borrower(world.borrower.borrower),
            version: 1,
            amount: limit_amount,
            tolerance_percent: Decimal::from(tolerance),
        }];
        world.tier1 = Some(d("1000000000"));
        let (small, large) = if a <= b { (a, b) } else { (b, a) };
        let small_verdict = world.gate(&small.to_string());
        let large_verdict = world.gate(&large.to_string());
        prop_assert!(small_verdict.outcome <= large_verdict.outcome);
        prop_assert!(small_verdict.large_exposure <= large_verdict.large_exposure);
    }

    /// Group usage is the exact sum of its members, whatever their split.
    #[test]
    fn r2_group_usage_is_the_exact_sum(parts in proptest::collection::vec(amount(), 1..20)) {
        let members: Vec<BorrowerExposure> = parts.iter().map(|p| {
            let mut m = borrower(Some("g"), "0");
            m.outstanding = *p;
            m
        }).collect();
        let aggregates = Aggregates::build(&members);
        let sum: Decimal = parts.iter().copied().sum();
        prop_assert_eq!(aggregates.usage(&LimitSubject::Group("g".into())), sum);
        prop_assert_eq!(aggregates.units[&LimitSubject::Group("g".into())].total, sum);
    }
}

fn sector(code: &str) -> creditops_domain::Sector {
    code.parse().unwrap()
}

#[test]
fn r3_a_section_limit_covers_its_divisions_and_no_other_division() {
    let mut world = World::new("0");
    world.borrower.sector = sector("C25");
    world.members = vec![world.borrower.clone()];
    world.sector_usage = d("10");
    world.section_usage = d("500");
    world.limits.extend([
        limit(LimitSubject::Sector(sector("C")), "1000", "0"),
        limit(LimitSubject::Sector(sector("C25")), "1000000", "0"),
        // Another division of the same section does not cover C25.
        limit(LimitSubject::Sector(sector("C24")), "1", "0"),
    ]);
    let verdict = world.gate("100000");
    assert_eq!(verdict.outcome, Severity::Hard);
    let sectors: Vec<_> = verdict
        .findings
        .iter()
        .filter(|f| f.check == "sector_limit")
        .map(|f| (f.subject.as_str(), f.usage, f.severity))
        .collect();
    assert_eq!(
        sectors,
        [
            ("sector:C", Some(d("100500")), Severity::Hard),
            ("sector:C25", Some(d("100010")), Severity::Within),
        ]
    );
    assert!(verdict.summary().contains("sector_limit (sector:C)"));
}

#[test]
fn r2_sector_aggregates_count_divisions_towards_their_section() {
    let mut rows = Vec::new();
    for (code, amount) in [("C25", "1"), ("C10", "20"), ("C", "300"), ("D35", "4000")] {
        let mut row = borrower(None, amount);
        row.sector = sector(code);
        rows.push(row);
    }
    let aggregates = Aggregates::build(&rows);
    for (code, usage) in [
        ("C", "321"),
        ("C25", "1"),
        ("C10", "20"),
        ("C24", "0"),
        ("D", "4000"),
        ("D35", "4000"),
    ] {
        assert_eq!(
            aggregates.usage(&LimitSubject::Sector(sector(code))),
            d(usage),
            "{code}"
        );
    }
}

#[test]
fn limit_keys_of_sectors_and_countries_are_canonical_codes_only() {
    for (kind, key, ok) in [
        (LimitKind::Sector, "C", true),
        (LimitKind::Sector, "C25", true),
        (LimitKind::Sector, "c", false),
        (LimitKind::Sector, "C\u{200b}", false),
        (LimitKind::Sector, "manufacturing", false),
        (LimitKind::Sector, "C99", false),
        (LimitKind::Country, "DE", true),
        (LimitKind::Country, "XX", false),
        (LimitKind::Country, "de", false),
        (LimitKind::Country, "Germany", false),
        (LimitKind::Group, "acme", true),
        (LimitKind::Group, "", false),
    ] {
        let parsed = LimitSubject::parse(kind, key);
        assert_eq!(parsed.is_ok(), ok, "{kind:?} {key:?}: {parsed:?}");
        if let Ok(subject) = parsed {
            assert_eq!(subject.key(), key);
        }
    }
}
