//! The watcher's evaluation (R7): usage of every limit, the large-exposure
//! cap of every unit and the LCR, and the breach records that follow from
//! comparing that with the breaches still open.

use crate::exposure::{Aggregates, UnitExposure};
use crate::gate::{limit_finding, liquidity_finding};
use crate::lcr::LiquidityView;
use crate::{BorrowerExposure, Breach, Limit};
use creditops_domain::{RiskFinding, RuleId, Severity, Timestamp};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};

/// The function that owns every breach: risk control informs management.
pub const BREACH_OWNER: &str = "risk-control";

/// The current usage of one limit, cap or floor.
pub type Usage = RiskFinding;

/// Usage of `limits` given the totals per subject.
pub fn limit_usages(limits: &[Limit], aggregates: &Aggregates) -> Vec<Usage> {
    limits
        .iter()
        .map(|limit| limit_finding(limit, aggregates.usage(&limit.subject)))
        .collect()
}

/// The large-exposure cap usage of one unit (R3).
pub fn unit_usage(unit: &UnitExposure, tier1: Decimal) -> Usage {
    let cap = unit.cap(tier1);
    let over = unit.over_cap(tier1);
    RiskFinding {
        rule: RuleId::R3,
        check: "large_exposure_cap".into(),
        subject: unit.unit.to_string(),
        limit: Some(cap),
        usage: Some(unit.total),
        headroom: Some(if over > Decimal::ZERO {
            -over
        } else {
            cap - unit.total
        }),
        severity: if over > Decimal::ZERO {
            Severity::Hard
        } else {
            Severity::Within
        },
        detail: format!("unit exposure {} against the cap {cap}", unit.total),
    }
}

/// A full evaluation: every limit, every unit's cap, the LCR now.
pub fn evaluate_all(
    exposures: &[BorrowerExposure],
    limits: &[Limit],
    tier1: Option<Decimal>,
    liquidity: Option<&LiquidityView>,
) -> Vec<Usage> {
    let aggregates = Aggregates::build(exposures);
    let mut usages = limit_usages(limits, &aggregates);
    if let Some(tier1) = tier1.filter(|t| *t > Decimal::ZERO) {
        usages.extend(
            aggregates
                .units
                .values()
                .map(|unit| unit_usage(unit, tier1)),
        );
    }
    if let Some(view) = liquidity {
        usages.push(liquidity_finding(view, Decimal::ZERO));
    }
    usages
}

/// What the watcher has to record after an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconciliation {
    /// New breaches (no open breach for the same subject and check).
    pub opened: Vec<Breach>,
    /// Open breaches whose subject was evaluated and is within again.
    pub resolved: Vec<uuid::Uuid>,
}

/// Compares `usages` with the `open` breaches. Only subjects that were
/// evaluated are resolved, so a partial evaluation (one borrower's limits
/// after an exposure change) leaves other breaches alone.
pub fn reconcile(open: &[Breach], usages: &[Usage], cause: &str, now: Timestamp) -> Reconciliation {
    // Concurrent evaluations may have opened the same breach twice; all of
    // them resolve together.
    let mut open_by_key: HashMap<(&str, &str), Vec<&Breach>> = HashMap::new();
    for breach in open {
        open_by_key
            .entry((breach.subject.as_str(), breach.check.as_str()))
            .or_default()
            .push(breach);
    }
    let mut seen = HashSet::new();
    let mut result = Reconciliation::default();
    for usage in usages {
        let key = (usage.subject.as_str(), usage.check.as_str());
        if !seen.insert(key) {
            continue;
        }
        match (usage.severity, open_by_key.get(&key)) {
            (Severity::Within, Some(breaches)) => {
                result
                    .resolved
                    .extend(breaches.iter().map(|breach| breach.id));
            }
            (Severity::Soft | Severity::Hard, None) => {
                if let (Some(limit), Some(used)) = (usage.limit, usage.usage) {
                    let amount_over = if usage.check == "liquidity_floor" {
                        limit - used
                    } else {
                        used - limit
                    };
                    result.opened.push(Breach {
                        id: uuid::Uuid::now_v7(),
                        subject: usage.subject.clone(),
                        rule: usage.rule,
                        check: usage.check.clone(),
                        limit,
                        usage: used,
                        amount_over,
                        severity: usage.severity,
                        cause: cause.to_owned(),
                        owner: BREACH_OWNER.to_owned(),
                        detected_at: now,
                        resolved_at: None,
                    });
                }
            }
            _ => {}
        }
    }
    result
}
