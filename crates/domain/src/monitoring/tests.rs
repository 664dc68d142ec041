use super::*;
use crate::four_eyes::Verdict;
use crate::{BorrowerId, Money, ProvisionId};
use chrono::{NaiveDate, TimeZone, Utc};
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn staff(id: &str) -> StaffId {
    StaffId::parse(id).unwrap()
}

#[test]
fn l7_the_default_catalogue_hits_exactly_at_its_thresholds() {
    let catalogue = MonitoringParameters::default().early_warning;
    type Row = (&'static str, Signals, Vec<(&'static str, &'static str)>);
    let table: Vec<Row> = vec![
        ("nothing", Signals::default(), vec![]),
        (
            "89 days past due",
            Signals {
                days_past_due: Some(89),
                ..Signals::default()
            },
            vec![],
        ),
        (
            "90 days past due",
            Signals {
                days_past_due: Some(90),
                ..Signals::default()
            },
            vec![("days_past_due", "90")],
        ),
        (
            "overdrawn 60 days",
            Signals {
                overdrawn_days: Some(60),
                ..Signals::default()
            },
            vec![("overdrawn_days", "60")],
        ),
        (
            "a downgrade by one class",
            Signals {
                rating_change: Some((5, 6)),
                ..Signals::default()
            },
            vec![],
        ),
        (
            "a downgrade by two classes",
            Signals {
                rating_change: Some((5, 7)),
                ..Signals::default()
            },
            vec![("rating_downgrade", "5 -> 7")],
        ),
        (
            "an upgrade",
            Signals {
                rating_change: Some((9, 4)),
                ..Signals::default()
            },
            vec![],
        ),
        (
            "collateral 19.99 % down",
            Signals {
                collateral_drop_percent: Some(d("19.99")),
                ..Signals::default()
            },
            vec![],
        ),
        (
            "collateral 25 % down",
            Signals {
                collateral_drop_percent: Some(d("25")),
                ..Signals::default()
            },
            vec![("collateral_value_drop", "25")],
        ),
        (
            "all of them",
            Signals {
                days_past_due: Some(120),
                overdrawn_days: Some(90),
                rating_change: Some((3, 12)),
                collateral_drop_percent: Some(d("50")),
                covenant_breach: true,
                negative_information: true,
            },
            vec![
                ("days_past_due", "120"),
                ("overdrawn_days", "90"),
                ("rating_downgrade", "3 -> 12"),
                ("collateral_value_drop", "50"),
                ("covenant_breach", "recorded"),
                ("negative_information", "raised"),
            ],
        ),
    ];
    for (name, signals, expected) in table {
        let hits: Vec<(String, String)> = evaluate(&catalogue, &signals)
            .into_iter()
            .map(|hit| (hit.indicator, hit.value))
            .collect();
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        assert_eq!(hits, expected, "{name}");
    }
}

#[test]
fn l7_an_indicator_left_out_of_the_catalogue_never_hits() {
    let catalogue = vec![Indicator::NegativeInformation];
    let signals = Signals {
        days_past_due: Some(400),
        negative_information: false,
        ..Signals::default()
    };
    assert!(evaluate(&catalogue, &signals).is_empty());
}

#[test]
fn l7_a_catalogue_is_validated() {
    let valid = MonitoringParameters::default();
    assert!(valid.validate().is_ok());
    let twice = MonitoringParameters {
        early_warning: vec![Indicator::CovenantBreach, Indicator::CovenantBreach],
        intensive_care_criteria: vec![],
        ..valid.clone()
    };
    assert!(twice.validate().is_err());
    let zero = MonitoringParameters {
        early_warning: vec![Indicator::DaysPastDue { at_least: 0 }],
        intensive_care_criteria: vec![],
        ..valid.clone()
    };
    assert!(zero.validate().is_err());
    let unknown_criterion = MonitoringParameters {
        early_warning: vec![Indicator::CovenantBreach],
        intensive_care_criteria: vec!["days_past_due".into()],
        ..valid.clone()
    };
    assert!(unknown_criterion.validate().is_err());
    let no_ad_hoc_days = MonitoringParameters {
        ad_hoc_review_days: 0,
        ..valid.clone()
    };
    assert!(no_ad_hoc_days.validate().is_err());
    let no_rating_days = MonitoringParameters {
        review_rating_days: 0,
        ..valid.clone()
    };
    assert!(no_rating_days.validate().is_err());
    let longer_intensive = MonitoringParameters {
        intensive_review_months: 13,
        ..valid
    };
    assert!(longer_intensive.validate().is_err());
}

#[test]
fn l7_a_catalogue_reads_and_writes_as_tagged_json() {
    let json = serde_json::json!([
        {"indicator": "days_past_due", "at_least": 91},
        {"indicator": "collateral_value_drop", "percent": "30"},
        {"indicator": "negative_information"}
    ]);
    let catalogue: Vec<Indicator> = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(catalogue[0], Indicator::DaysPastDue { at_least: 91 });
    assert_eq!(serde_json::to_value(&catalogue).unwrap(), json);
    let unknown = serde_json::json!([{"indicator": "days_past_due", "at_least": 1, "x": 1}]);
    assert!(serde_json::from_value::<Vec<Indicator>>(unknown).is_err());
}

#[test]
fn l6_l8_reviews_fall_due_on_the_stage_interval() {
    let params = MonitoringParameters::default();
    let since = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
    assert_eq!(
        next_review_due(since, params.review_interval(Stage::Normal)),
        Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).unwrap()
    );
    assert_eq!(
        next_review_due(since, params.review_interval(Stage::IntensiveCare)),
        Utc.with_ymd_and_hms(2026, 4, 30, 12, 0, 0).unwrap()
    );
    assert!(!params.needs_regular_review(d("750000"), Stage::Normal));
    assert!(params.needs_regular_review(d("750000.01"), Stage::Normal));
    assert!(params.needs_regular_review(Decimal::ZERO, Stage::Workout));
}

#[test]
fn l8_l9_only_back_office_moves_a_stage_and_problem_loans_need_a_plan() {
    let plan = vec![Milestone {
        title: "new equity of 2m".into(),
        due_on: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
        status: MilestoneStatus::Open,
    }];
    type Row = (Option<Side>, Stage, Stage, bool, Result<(), Option<RuleId>>);
    let table: Vec<Row> = vec![
        (
            Some(Side::Market),
            Stage::Normal,
            Stage::IntensiveCare,
            false,
            Err(Some(RuleId::L8)),
        ),
        (
            None,
            Stage::Normal,
            Stage::IntensiveCare,
            false,
            Err(Some(RuleId::L8)),
        ),
        (
            Some(Side::Market),
            Stage::Normal,
            Stage::Restructuring,
            true,
            Err(Some(RuleId::L9)),
        ),
        (
            Some(Side::Backoffice),
            Stage::Normal,
            Stage::IntensiveCare,
            false,
            Ok(()),
        ),
        (
            Some(Side::Backoffice),
            Stage::Normal,
            Stage::Normal,
            false,
            Err(None),
        ),
        (
            Some(Side::Backoffice),
            Stage::IntensiveCare,
            Stage::Restructuring,
            false,
            Err(Some(RuleId::L9)),
        ),
        (
            Some(Side::Backoffice),
            Stage::IntensiveCare,
            Stage::Restructuring,
            true,
            Ok(()),
        ),
        (
            Some(Side::Backoffice),
            Stage::Restructuring,
            Stage::Workout,
            true,
            Ok(()),
        ),
        (
            Some(Side::Backoffice),
            Stage::Restructuring,
            Stage::Normal,
            false,
            Ok(()),
        ),
        (
            Some(Side::Backoffice),
            Stage::Normal,
            Stage::IntensiveCare,
            true,
            Err(None),
        ),
    ];
    for (side, from, to, with_plan, expected) in table {
        let milestones: &[Milestone] = if with_plan { &plan } else { &[] };
        let got = check_transfer(side, (from, to), "arrears since March", milestones, today())
            .map_err(|e| e.rule_id());
        assert_eq!(got, expected, "{side:?} {from} -> {to} plan {with_plan}");
    }
    let workout = (Stage::Normal, Stage::Workout);
    assert!(check_transfer(Some(Side::Backoffice), workout, " ", &plan, today()).is_err());
    // A plan's milestones lie ahead.
    let late = today().succ_opt().unwrap().succ_opt().unwrap();
    assert!(check_transfer(Some(Side::Backoffice), workout, "r", &plan, late).is_err());
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 3, 30).unwrap()
}

fn provision(by: &str, amount: &str) -> Provision {
    Provision {
        id: ProvisionId::generate(),
        borrower_id: BorrowerId::generate(),
        credit_id: None,
        amount: Money::parse(amount, "EUR").unwrap(),
        reason: "insolvency filed".into(),
        method: "discounted cash flow".into(),
        status: ProvisionStatus::Proposed,
        proposed_by: staff(by),
        proposed_at: Utc::now(),
        decided_by: None,
        decided_at: None,
        board_alert: false,
    }
}

#[test]
fn l10_a_provision_needs_a_second_person_of_back_office() {
    let proposed = provision("ba-1", "100000");
    let now = Utc::now();
    let own = decide_provision(
        &proposed,
        Some(Side::Backoffice),
        &staff("ba-1"),
        Verdict::Approve,
        now,
    );
    assert_eq!(own.unwrap_err().rule_id(), Some(RuleId::L10));
    let market = decide_provision(
        &proposed,
        Some(Side::Market),
        &staff("lo-1"),
        Verdict::Approve,
        now,
    );
    assert_eq!(market.unwrap_err().rule_id(), Some(RuleId::L10));
    let approved = decide_provision(
        &proposed,
        Some(Side::Backoffice),
        &staff("ba-2"),
        Verdict::Approve,
        now,
    )
    .unwrap();
    assert_eq!(approved.status, ProvisionStatus::Approved);
    assert_eq!(approved.decided_by, Some(staff("ba-2")));
    let again = decide_provision(
        &approved,
        Some(Side::Backoffice),
        &staff("ba-3"),
        Verdict::Reject,
        now,
    );
    assert!(matches!(again, Err(DomainError::InvalidState(_))));
}

#[test]
fn l10_only_back_office_proposes_and_large_provisions_alert_the_board() {
    let params = MonitoringParameters::default();
    assert_eq!(
        check_provision_proposal(Some(Side::Market), d("1"), "r", "m")
            .unwrap_err()
            .rule_id(),
        Some(RuleId::L10)
    );
    assert!(check_provision_proposal(Some(Side::Backoffice), d("0"), "r", "m").is_err());
    assert!(check_provision_proposal(Some(Side::Backoffice), d("1"), "", "m").is_err());
    assert!(check_provision_proposal(Some(Side::Backoffice), d("1"), "r", "m").is_ok());
    assert!(!params.board_alert(d("500000")));
    assert!(params.board_alert(d("500000.01")));
}

#[test]
fn l7_drop_percent_is_exact() {
    assert_eq!(drop_percent(d("1000000"), d("750000")), Some(d("25")));
    assert_eq!(drop_percent(d("100"), d("120")), Some(Decimal::ZERO));
    assert_eq!(drop_percent(Decimal::ZERO, d("1")), None);
}
