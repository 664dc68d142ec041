//! The pre-decision gate (R4): every applicable limit, the large-exposure
//! regime and the liquidity floor, checked for one approval. Missing data
//! (no limit for the borrower, no capital, no liquidity position) is a hard
//! finding: what cannot be evaluated is refused.

use crate::exposure::{LARGE_EXPOSURE_PERCENT, UnitExposure, percent_of, unit_exposure};
use crate::lcr::LiquidityView;
use crate::{BorrowerExposure, Limit, LimitSubject, REPORTING_CURRENCY};
use creditops_domain::{RiskFinding, RiskVerdict, RuleId, Severity};
use rust_decimal::Decimal;

/// Everything the gate needs to know about one approval's surroundings.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    /// The borrower of the case, with its group, sector and country.
    pub borrower: &'a BorrowerExposure,
    /// The borrower's group members (the borrower included), or the borrower.
    pub members: &'a [BorrowerExposure],
    /// Current exposure of the borrower's sector code, of that code's
    /// section (the same figure when the borrower is in a section rather
    /// than a division: a limit on `C` covers `C25`), and of its country.
    pub sector_usage: Decimal,
    pub section_usage: Decimal,
    pub country_usage: Decimal,
    /// The limits in force for the borrower, its group, sector and country.
    pub limits: &'a [Limit],
    pub tier1: Option<Decimal>,
    pub liquidity: Option<&'a LiquidityView>,
}

/// The severity of `usage` against `limit` and its tolerance.
pub fn severity_of(limit: &Limit, usage: Decimal) -> Severity {
    if usage <= limit.amount {
        Severity::Within
    } else if usage <= limit.hard_amount() {
        Severity::Soft
    } else {
        Severity::Hard
    }
}

fn check_name(subject: &LimitSubject) -> &'static str {
    match subject {
        LimitSubject::Borrower(_) => "borrower_limit",
        LimitSubject::Group(_) => "group_limit",
        LimitSubject::Sector(_) => "sector_limit",
        LimitSubject::Country(_) => "country_limit",
    }
}

/// A finding for `limit` at `usage` (usage including the request).
pub fn limit_finding(limit: &Limit, usage: Decimal) -> RiskFinding {
    let severity = severity_of(limit, usage);
    let headroom = limit.amount - usage;
    let detail = match severity {
        Severity::Within => format!(
            "usage {usage} within limit {} (version {}), headroom {headroom}",
            limit.amount, limit.version
        ),
        Severity::Soft => format!(
            "usage {usage} over limit {} (version {}) by {} but within its {} % tolerance; \
             escalation required",
            limit.amount, limit.version, -headroom, limit.tolerance_percent
        ),
        Severity::Hard => format!(
            "usage {usage} over limit {} (version {}) by {}, beyond its {} % tolerance \
             ({})",
            limit.amount,
            limit.version,
            -headroom,
            limit.tolerance_percent,
            limit.hard_amount()
        ),
    };
    RiskFinding {
        rule: RuleId::R3,
        check: check_name(&limit.subject).into(),
        subject: limit.subject.to_string(),
        limit: Some(limit.amount),
        usage: Some(usage),
        headroom: Some(headroom),
        severity,
        detail,
    }
}

fn missing(rule: RuleId, check: &str, subject: String, detail: &str) -> RiskFinding {
    RiskFinding {
        rule,
        check: check.into(),
        subject,
        limit: None,
        usage: None,
        headroom: None,
        severity: Severity::Hard,
        detail: detail.into(),
    }
}

/// The liquidity finding for paying out `amount` (R6), or a hard finding
/// if the floor is set below the regulatory minimum.
pub fn liquidity_finding(view: &LiquidityView, amount: Decimal) -> RiskFinding {
    let floor = view.floor_percent.max(crate::lcr::REGULATORY_FLOOR_PERCENT);
    match view.projected_lcr_percent(amount) {
        None => RiskFinding {
            rule: RuleId::R6,
            check: "liquidity_floor".into(),
            subject: "liquidity:lcr".into(),
            limit: Some(floor),
            usage: None,
            headroom: None,
            severity: Severity::Within,
            detail: "no net cash outflows over 30 days: the LCR is unbounded".into(),
        },
        Some(lcr) => {
            let severity = if view.meets_floor(amount, floor) {
                Severity::Within
            } else {
                Severity::Hard
            };
            RiskFinding {
                rule: RuleId::R6,
                check: "liquidity_floor".into(),
                subject: "liquidity:lcr".into(),
                limit: Some(floor),
                usage: Some(lcr),
                headroom: Some(lcr - floor),
                severity,
                detail: format!("projected LCR {lcr} % against the floor {floor} %"),
            }
        }
    }
}

/// The verdict on approving `amount` for `input.borrower` (R1, R3, R4, R6).
pub fn gate(input: &GateInput<'_>, amount: Decimal) -> RiskVerdict {
    let borrower = input.borrower;
    let unit = unit_exposure(borrower, input.members);
    let mut findings = Vec::with_capacity(input.limits.len() + 3);
    findings.extend(counterparty_limit_required(input));
    findings.extend(limit_findings(input, &unit, amount));

    let mut large_exposure = false;
    match input.tier1 {
        Some(tier1) if tier1 > Decimal::ZERO => {
            let after = unit.with_request(borrower, amount);
            large_exposure = after.is_large(tier1);
            findings.push(large_exposure_finding(&after, tier1, large_exposure));
            findings.push(large_exposure_cap_finding(&after, tier1));
        }
        _ => findings.push(missing(
            RuleId::R3,
            "large_exposure_cap",
            "capital:tier1".into(),
            "no Tier 1 capital is on record, so the large-exposure cap cannot be checked",
        )),
    }

    match input.liquidity {
        Some(view) => findings.push(liquidity_finding(view, amount)),
        None => findings.push(missing(
            RuleId::R6,
            "liquidity_floor",
            "liquidity:lcr".into(),
            "no liquidity position is on record, so the LCR floor cannot be checked",
        )),
    }

    RiskVerdict::from_findings(findings, large_exposure, REPORTING_CURRENCY)
}

/// R1: no credit business without a borrower or group limit.
fn counterparty_limit_required(input: &GateInput<'_>) -> Option<RiskFinding> {
    let borrower_subject = LimitSubject::Borrower(input.borrower.borrower);
    let group_subject = input.borrower.group.clone().map(LimitSubject::Group);
    let has_counterparty_limit = input.limits.iter().any(|limit| {
        limit.subject == borrower_subject || Some(&limit.subject) == group_subject.as_ref()
    });
    (!has_counterparty_limit).then(|| {
        missing(
            RuleId::R1,
            "limit_required",
            borrower_subject.to_string(),
            "no borrower or group limit approved by back office is in force",
        )
    })
}

/// R3: a finding per limit of the borrower, its group, sector and country,
/// at the usage the approval would bring it to.
fn limit_findings(input: &GateInput<'_>, unit: &UnitExposure, amount: Decimal) -> Vec<RiskFinding> {
    let borrower = input.borrower;
    let borrower_subject = LimitSubject::Borrower(borrower.borrower);
    let group_subject = borrower.group.clone().map(LimitSubject::Group);
    let sector_subject = LimitSubject::Sector(borrower.sector);
    let section_subject = LimitSubject::Sector(borrower.sector.section());
    let country_subject = LimitSubject::Country(borrower.country);
    let mut findings = Vec::with_capacity(input.limits.len());
    for limit in input.limits {
        let current = if limit.subject == borrower_subject {
            borrower.total()
        } else if Some(&limit.subject) == group_subject.as_ref() {
            unit.total
        } else if limit.subject == sector_subject {
            input.sector_usage
        } else if limit.subject == section_subject {
            input.section_usage
        } else if limit.subject == country_subject {
            input.country_usage
        } else {
            // Not this borrower's limit: the caller passed too much.
            continue;
        };
        findings.push(limit_finding(limit, current + amount));
    }
    findings
}

/// R3 (large exposure): whether the unit reaches 10 % of Tier 1 with the
/// request, which asks for a full-board decision.
fn large_exposure_finding(after: &UnitExposure, tier1: Decimal, large: bool) -> RiskFinding {
    let threshold = percent_of(tier1, LARGE_EXPOSURE_PERCENT);
    RiskFinding {
        rule: RuleId::R3,
        check: "large_exposure".into(),
        subject: after.unit.to_string(),
        limit: Some(threshold),
        usage: Some(after.total),
        headroom: Some(threshold - after.total),
        severity: Severity::Within,
        detail: if large {
            format!(
                "exposure {} reaches 10 % of Tier 1 ({threshold}): a large exposure, \
                 full-board decision required",
                after.total
            )
        } else {
            format!(
                "exposure {} below 10 % of Tier 1 ({threshold})",
                after.total
            )
        },
    }
}

/// R3 (large-exposure cap, CRR Art. 395): exceeding it is a hard finding.
fn large_exposure_cap_finding(after: &UnitExposure, tier1: Decimal) -> RiskFinding {
    let cap = after.cap(tier1);
    let over = after.over_cap(tier1);
    RiskFinding {
        rule: RuleId::R3,
        check: "large_exposure_cap".into(),
        subject: after.unit.to_string(),
        limit: Some(cap),
        usage: Some(after.total),
        headroom: Some(if over > Decimal::ZERO {
            -over
        } else {
            cap - after.total
        }),
        severity: if over > Decimal::ZERO {
            Severity::Hard
        } else {
            Severity::Within
        },
        detail: if over > Decimal::ZERO {
            format!(
                "exposure {} exceeds the large-exposure cap {cap} (CRR Art. 395) by {over}",
                after.total
            )
        } else {
            format!(
                "exposure {} within the large-exposure cap {cap}",
                after.total
            )
        },
    }
}
