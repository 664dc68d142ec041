//! The risk-control verdict a decision is gated on (R4) and records (V9).
//!
//! The risk engine computes it; the case state machine only reads it, so the
//! domain stays independent of how limits and liquidity are evaluated.

use crate::RuleId;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// How far a check is from its limit. Ordered: the worst finding decides.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Within the limit.
    Within,
    /// Over the limit but within its tolerance: escalation required (R4).
    Soft,
    /// Over the hard limit, or the check could not be evaluated: refused.
    Hard,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Within => "within",
            Severity::Soft => "soft",
            Severity::Hard => "hard",
        }
    }
}

/// One check of the gate: a limit, the large-exposure regime or liquidity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RiskFinding {
    /// The requirement the check implements (R1, R3, R6).
    #[schema(value_type = String)]
    pub rule: RuleId,
    /// What was checked, e.g. `borrower_limit`, `large_exposure_cap`.
    pub check: String,
    /// What it was checked for, e.g. `borrower:<id>`, `sector:energy`.
    pub subject: String,
    /// The limit (an amount, or for liquidity the LCR floor in percent).
    pub limit: Option<Decimal>,
    /// Usage including this request (for liquidity: projected LCR in percent).
    pub usage: Option<Decimal>,
    /// `limit - usage`; negative when over.
    pub headroom: Option<Decimal>,
    pub severity: Severity,
    pub detail: String,
}

/// The gate's verdict on one approval (R4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RiskVerdict {
    /// The worst severity of all findings: within = pass.
    pub outcome: Severity,
    /// Every check that ran, binding ones first.
    pub findings: Vec<RiskFinding>,
    /// The exposure reaches 10 % of Tier 1 capital (R3): full-board decision (V11).
    pub large_exposure: bool,
    /// Currency of all amounts in the findings.
    pub currency: String,
}

impl RiskVerdict {
    /// Builds the verdict from its findings: worst first, outcome = worst.
    pub fn from_findings(
        mut findings: Vec<RiskFinding>,
        large_exposure: bool,
        currency: &str,
    ) -> Self {
        findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
        let outcome = findings
            .first()
            .map_or(Severity::Within, |finding| finding.severity);
        Self {
            outcome,
            findings,
            large_exposure,
            currency: currency.to_owned(),
        }
    }

    /// The findings that bind (soft or hard).
    pub fn binding(&self) -> impl Iterator<Item = &RiskFinding> {
        self.findings
            .iter()
            .filter(|finding| finding.severity != Severity::Within)
    }

    /// One line per binding finding with its headroom, for refusals.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for finding in self.binding() {
            if !text.is_empty() {
                text.push_str("; ");
            }
            let _ = write!(
                text,
                "{} {} {} ({}): {}",
                finding.severity.as_str(),
                finding.rule,
                finding.check,
                finding.subject,
                finding.detail
            );
        }
        text
    }
}
