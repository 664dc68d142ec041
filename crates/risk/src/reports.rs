//! Regulatory lists from the same exposure data (R9): large exposures,
//! "Millionenkredite" (KWG section 14) and KWG section 18 candidates, per
//! borrower unit (a group of connected clients, or a borrower alone).

use crate::exposure::{Aggregates, LARGE_EXPOSURE_PERCENT, percent_of};
use rust_decimal::Decimal;
use serde::Serialize;

/// A large exposure is also reported from EUR 300m on (CRR Art. 394(2)).
pub const LARGE_EXPOSURE_ABSOLUTE: Decimal = Decimal::from_parts(300_000_000, 0, 0, false, 0);
/// Millionenkredite: credit volume of EUR 1m or more (KWG section 14).
pub const MILLION_LOAN_THRESHOLD: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// KWG section 18: disclosure of financial circumstances above EUR 750k.
pub const SECTION_18_THRESHOLD: Decimal = Decimal::from_parts(750_000, 0, 0, false, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    LargeExposures,
    MillionLoans,
    Section18,
}

impl std::str::FromStr for ReportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "large-exposures" => Ok(ReportKind::LargeExposures),
            "million-loans" => Ok(ReportKind::MillionLoans),
            "section-18" => Ok(ReportKind::Section18),
            _ => Err(format!(
                "unknown report {s:?}; expected large-exposures, million-loans or section-18"
            )),
        }
    }
}

/// One borrower unit on a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportLine {
    /// `group:<id>` or `borrower:<id>`.
    pub unit: String,
    pub members: usize,
    pub exposure: Decimal,
    /// Exposure as a percentage of Tier 1 (4 decimals), when capital is known.
    pub percent_of_tier1: Option<Decimal>,
}

/// The lines of `kind`, largest exposure first. Large exposures need Tier 1
/// (without it only the absolute EUR 300m criterion applies).
pub fn report(
    kind: ReportKind,
    aggregates: &Aggregates,
    tier1: Option<Decimal>,
) -> Vec<ReportLine> {
    let tier1 = tier1.filter(|t| *t > Decimal::ZERO);
    let mut lines: Vec<ReportLine> = aggregates
        .units
        .values()
        .filter(|unit| match kind {
            ReportKind::LargeExposures => {
                unit.total >= LARGE_EXPOSURE_ABSOLUTE
                    || tier1.is_some_and(|t| unit.total >= percent_of(t, LARGE_EXPOSURE_PERCENT))
            }
            ReportKind::MillionLoans => unit.total >= MILLION_LOAN_THRESHOLD,
            ReportKind::Section18 => unit.total > SECTION_18_THRESHOLD,
        })
        .map(|unit| ReportLine {
            unit: unit.unit.to_string(),
            members: unit.members,
            exposure: unit.total,
            percent_of_tier1: tier1.map(|t| {
                // Four decimals always, so the column reads uniformly.
                let mut percent = (unit.total * Decimal::ONE_HUNDRED / t).round_dp(4);
                percent.rescale(4);
                percent
            }),
        })
        .collect();
    lines.sort_by(|a, b| {
        b.exposure
            .cmp(&a.exposure)
            .then_with(|| a.unit.cmp(&b.unit))
    });
    lines
}

/// The lines as CSV (RFC 4180; unit ids never contain commas or quotes).
pub fn to_csv(lines: &[ReportLine]) -> String {
    let mut csv = String::from("unit,members,exposure,percent_of_tier1\r\n");
    for line in lines {
        csv.push_str(&format!(
            "{},{},{},{}\r\n",
            line.unit,
            line.members,
            line.exposure,
            line.percent_of_tier1
                .map(|p| p.to_string())
                .unwrap_or_default()
        ));
    }
    csv
}
