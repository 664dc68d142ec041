//! Aggregation of exposures (R2) and the large-exposure regime (R3).

use crate::{BorrowerExposure, LimitSubject};
use creditops_domain::{BorrowerId, Sector};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// 10 % of Tier 1 marks a large exposure (CRR Art. 392).
pub const LARGE_EXPOSURE_PERCENT: Decimal = Decimal::TEN;
/// 25 % of Tier 1 is the hard cap (CRR Art. 395(1)).
pub const LARGE_EXPOSURE_CAP_PERCENT: Decimal = Decimal::from_parts(25, 0, 0, false, 0);
/// The institution floor of the cap: EUR 150m (CRR Art. 395(1)).
pub const INSTITUTION_CAP_FLOOR: Decimal = Decimal::from_parts(150_000_000, 0, 0, false, 0);

/// The unit exposures are aggregated over for the large-exposure regime: the
/// group of connected clients, or the borrower alone.
pub fn unit_of(borrower: &BorrowerExposure) -> LimitSubject {
    match &borrower.group {
        Some(group) => LimitSubject::Group(group.clone()),
        None => LimitSubject::Borrower(borrower.borrower),
    }
}

/// The sector codes whose limits cover a borrower in `sector`: its own and,
/// for a division, its section (a limit on `C` covers `C25`).
pub fn sectors_of(sector: Sector) -> impl Iterator<Item = Sector> {
    std::iter::once(sector).chain((!sector.is_section()).then(|| sector.section()))
}

/// `percent` % of `base`.
pub fn percent_of(base: Decimal, percent: Decimal) -> Decimal {
    base * percent / Decimal::ONE_HUNDRED
}

/// The large-exposure figures of one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitExposure {
    pub unit: LimitSubject,
    pub total: Decimal,
    /// Exposure to members that are not institutions.
    pub non_institution: Decimal,
    pub has_institution: bool,
    pub members: usize,
}

impl UnitExposure {
    fn empty(unit: LimitSubject) -> Self {
        Self {
            unit,
            total: Decimal::ZERO,
            non_institution: Decimal::ZERO,
            has_institution: false,
            members: 0,
        }
    }

    fn add(&mut self, borrower: &BorrowerExposure, amount: Decimal) {
        self.total += amount;
        if borrower.institution {
            self.has_institution = true;
        } else {
            self.non_institution += amount;
        }
    }

    /// The same unit with `amount` more for `borrower`.
    pub fn with_request(&self, borrower: &BorrowerExposure, amount: Decimal) -> Self {
        let mut next = self.clone();
        next.add(borrower, amount);
        next
    }

    /// The hard cap (CRR Art. 395): 25 % of Tier 1; for a unit with an
    /// institution max(25 %, EUR 150m), while exposure to its
    /// non-institutions stays within 25 %.
    pub fn cap(&self, tier1: Decimal) -> Decimal {
        let quarter = percent_of(tier1, LARGE_EXPOSURE_CAP_PERCENT);
        if self.has_institution {
            quarter.max(INSTITUTION_CAP_FLOOR)
        } else {
            quarter
        }
    }

    /// The amount by which the unit exceeds its cap (zero if within).
    pub fn over_cap(&self, tier1: Decimal) -> Decimal {
        let quarter = percent_of(tier1, LARGE_EXPOSURE_CAP_PERCENT);
        let over_total = self.total - self.cap(tier1);
        let over_non_institution = self.non_institution - quarter;
        over_total.max(over_non_institution).max(Decimal::ZERO)
    }

    pub fn is_large(&self, tier1: Decimal) -> bool {
        self.total >= percent_of(tier1, LARGE_EXPOSURE_PERCENT)
    }
}

/// Exposure totals by limit subject and by large-exposure unit, built in one
/// pass over the borrowers.
#[derive(Debug, Default, Clone)]
pub struct Aggregates {
    pub by_subject: HashMap<LimitSubject, Decimal>,
    pub units: HashMap<LimitSubject, UnitExposure>,
}

impl Aggregates {
    pub fn build(exposures: &[BorrowerExposure]) -> Self {
        let mut by_subject: HashMap<LimitSubject, Decimal> = HashMap::new();
        let mut units: HashMap<LimitSubject, UnitExposure> = HashMap::new();
        for exposure in exposures {
            let total = exposure.total();
            *by_subject
                .entry(LimitSubject::Borrower(exposure.borrower))
                .or_default() += total;
            if let Some(group) = &exposure.group {
                *by_subject
                    .entry(LimitSubject::Group(group.clone()))
                    .or_default() += total;
            }
            // A division counts towards its section's limit as well.
            for sector in sectors_of(exposure.sector) {
                *by_subject.entry(LimitSubject::Sector(sector)).or_default() += total;
            }
            *by_subject
                .entry(LimitSubject::Country(exposure.country))
                .or_default() += total;
            let unit = unit_of(exposure);
            units
                .entry(unit.clone())
                .or_insert_with(|| UnitExposure::empty(unit))
                .add_member(exposure, total);
        }
        Self { by_subject, units }
    }

    pub fn usage(&self, subject: &LimitSubject) -> Decimal {
        self.by_subject.get(subject).copied().unwrap_or_default()
    }
}

impl UnitExposure {
    fn add_member(&mut self, borrower: &BorrowerExposure, amount: Decimal) {
        self.members += 1;
        self.add(borrower, amount);
    }
}

/// The large-exposure unit of `borrower` built from its group's members
/// (the borrower included).
pub fn unit_exposure(borrower: &BorrowerExposure, members: &[BorrowerExposure]) -> UnitExposure {
    let unit = unit_of(borrower);
    let mut exposure = UnitExposure::empty(unit);
    let mut seen_self = false;
    for member in members {
        if member.borrower == borrower.borrower {
            seen_self = true;
        } else if borrower.group.is_none() || member.group != borrower.group {
            continue;
        }
        exposure.add_member(member, member.total());
    }
    if !seen_self {
        exposure.add_member(borrower, borrower.total());
    }
    exposure
}

/// Borrower ids of `members` (for queries).
pub fn ids(members: &[BorrowerExposure]) -> Vec<BorrowerId> {
    members.iter().map(|m| m.borrower).collect()
}
