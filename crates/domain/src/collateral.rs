//! Collateral (L3, BTO 1.2.1 Tz 2): the register of a borrower's collateral,
//! its valuations and legal-validity checks, the haircuts and revaluation
//! schedule of the rule set, and the value that secures an exposure.
//!
//! Who may value: a valuation or legal check of collateral whose value is
//! above the rule set's back-office threshold is back office's only; market
//! may propose values, which count for nothing until back office records
//! an effective valuation. At or below the threshold a market valuation is
//! effective; the legal-validity check is always back office's. Everything
//! that is not an active item with an effective valuation and a valid legal
//! check secures nothing (fail closed).

use crate::{BorrowerId, DomainError, Money, RuleId, Side, StaffId, Timestamp};
use chrono::{Months, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use crate::ids::{CollateralId, ValuationId};

macro_rules! text_enum {
    ($(#[$meta:meta])* $ty:ident { $($variant:ident = $name:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $ty {
            $($variant),+
        }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("{s:?} is not one of {}", names.join(", "))
                    })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What secures the credit.
    CollateralKind {
        MortgageResidential = "mortgage_residential",
        MortgageCommercial = "mortgage_commercial",
        Guarantee = "guarantee",
        PledgeOfDeposits = "pledge_of_deposits",
        AssignmentOfReceivables = "assignment_of_receivables",
        SecuritiesPledge = "securities_pledge",
        Other = "other",
    }
);

text_enum!(
    /// Whether a collateral item still secures (a released item does not).
    CollateralStatus {
        Active = "active",
        Released = "released",
    }
);

text_enum!(
    /// A proposed valuation counts for nothing; an effective one counts.
    ValuationStatus {
        Proposed = "proposed",
        Effective = "effective",
    }
);

text_enum!(
    /// The outcome of a legal-validity check.
    LegalResult {
        Valid = "valid",
        Invalid = "invalid",
    }
);

/// One item of the collateral register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collateral {
    pub id: CollateralId,
    pub borrower_id: BorrowerId,
    pub kind: CollateralKind,
    /// The nominal (face) amount: the mortgage's registered amount, the
    /// guaranteed amount, the pledged deposit.
    pub nominal: Money,
    pub description: String,
    pub status: CollateralStatus,
    pub registered_by: StaffId,
    pub registered_at: Timestamp,
}

/// A valuation of a collateral item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valuation {
    pub id: ValuationId,
    pub collateral_id: CollateralId,
    pub value: Money,
    pub valuation_date: NaiveDate,
    /// Who valued it (an appraiser, the bank's own valuation unit).
    pub valuer: String,
    /// How (market value, mortgage lending value, nominal of a deposit, ...).
    pub method: String,
    pub recorded_by: StaffId,
    pub recorded_at: Timestamp,
    /// The side of the person who recorded it.
    pub side: Side,
    pub status: ValuationStatus,
    /// Back office's confirmation of a proposal (then `status` is effective).
    pub confirmed_by: Option<StaffId>,
    pub confirmed_at: Option<Timestamp>,
}

/// A legal-validity check of a collateral item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalCheck {
    pub collateral_id: CollateralId,
    pub result: LegalResult,
    pub note: String,
    pub checked_by: StaffId,
    pub checked_at: Timestamp,
}

/// A collateral item with what counts about it: its latest effective
/// valuation, its latest proposal not yet superseded and its latest legal
/// check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollateralPosition {
    pub collateral: Collateral,
    pub effective: Option<Valuation>,
    pub proposed: Option<Valuation>,
    pub legal_check: Option<LegalCheck>,
}

/// The collateral parameters of a rule set (L3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollateralParameters {
    /// Haircut per kind in percent (0-100) of the effective value; a kind
    /// without an entry is cut by 100 % (secures nothing).
    #[schema(value_type = BTreeMap<String, String>)]
    pub haircuts: BTreeMap<CollateralKind, Decimal>,
    /// Months after the last effective valuation date when a revaluation
    /// falls due, per kind; a kind without an entry falls due after 12.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub revaluation_months: BTreeMap<CollateralKind, u32>,
    /// Above this value (in `currency`) valuation and legal check are back
    /// office's only.
    pub back_office_threshold: Decimal,
    /// ISO 4217 code of the threshold and of the secured value; collateral
    /// valued in another currency secures nothing here (no FX, fail closed).
    pub currency: String,
}

/// Months between revaluations of a kind without an entry.
const DEFAULT_REVALUATION_MONTHS: u32 = 12;

impl Default for CollateralParameters {
    fn default() -> Self {
        use CollateralKind::*;
        let haircuts = [
            (PledgeOfDeposits, 0),
            (Guarantee, 20),
            (MortgageResidential, 20),
            (MortgageCommercial, 40),
            (SecuritiesPledge, 30),
            (AssignmentOfReceivables, 50),
            (Other, 100),
        ]
        .into_iter()
        .map(|(kind, percent)| (kind, Decimal::from(percent)))
        .collect();
        let revaluation_months = CollateralKind::ALL
            .iter()
            .map(|kind| {
                let months = match kind {
                    MortgageResidential => 36,
                    _ => 12,
                };
                (*kind, months)
            })
            .collect();
        Self {
            haircuts,
            revaluation_months,
            back_office_threshold: Decimal::from(250_000),
            currency: "EUR".into(),
        }
    }
}

impl CollateralParameters {
    pub fn validate(&self) -> Result<(), DomainError> {
        for (kind, percent) in &self.haircuts {
            if *percent < Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                return Err(DomainError::Invalid(format!(
                    "collateral haircut of {kind} must be between 0 and 100 percent"
                )));
            }
        }
        for (kind, months) in &self.revaluation_months {
            if !(1..=120).contains(months) {
                return Err(DomainError::Invalid(format!(
                    "collateral revaluation_months of {kind} must be between 1 and 120"
                )));
            }
        }
        if self.back_office_threshold < Decimal::ZERO {
            return Err(DomainError::Invalid(
                "collateral back_office_threshold must not be negative".into(),
            ));
        }
        let currency = iso_currency::Currency::from_code(&self.currency);
        if currency.and_then(|c| c.exponent()).is_none() {
            return Err(DomainError::Invalid(format!(
                "collateral currency {:?} is not an ISO 4217 code with minor units",
                self.currency
            )));
        }
        Ok(())
    }

    /// The haircut of `kind` in percent (100 when the rule set names none).
    pub fn haircut(&self, kind: CollateralKind) -> Decimal {
        self.haircuts
            .get(&kind)
            .copied()
            .unwrap_or(Decimal::ONE_HUNDRED)
    }

    pub fn revaluation_months_of(&self, kind: CollateralKind) -> u32 {
        self.revaluation_months
            .get(&kind)
            .copied()
            .unwrap_or(DEFAULT_REVALUATION_MONTHS)
    }

    /// `amount` at the scale of the parameters' currency (`"0.00"` for EUR),
    /// so every secured value reads the same.
    pub fn in_currency(&self, amount: Decimal) -> Decimal {
        let exponent = iso_currency::Currency::from_code(&self.currency)
            .and_then(|c| c.exponent())
            .map_or(2, u32::from);
        let mut amount = amount.round_dp_with_strategy(exponent, RoundingStrategy::ToZero);
        amount.rescale(exponent);
        amount
    }

    /// Whether `amount` is above the threshold; an amount in another
    /// currency counts as above (fail closed).
    fn above_threshold(&self, amount: &Money) -> bool {
        amount.currency_code() != self.currency || amount.amount() > self.back_office_threshold
    }
}

/// What a person asks for when recording a valuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuationRequest {
    /// A value proposed for back office to confirm (market).
    Propose,
    /// A valuation that counts.
    Effective,
}

/// The status a valuation recorded by someone of `side` gets (L3). The
/// value that decides against the threshold is the highest of the item's
/// nominal, the new value and its current effective value.
pub fn valuation_status(
    side: Side,
    request: ValuationRequest,
    position: &CollateralPosition,
    value: &Money,
    params: &CollateralParameters,
) -> Result<ValuationStatus, DomainError> {
    if position.collateral.status != CollateralStatus::Active {
        return Err(DomainError::InvalidState(
            "the collateral is released: it is valued no more".into(),
        ));
    }
    match (side, request) {
        (Side::Backoffice, ValuationRequest::Effective) => Ok(ValuationStatus::Effective),
        (Side::Backoffice, ValuationRequest::Propose) => Err(DomainError::Invalid(
            "back office records effective valuations, it does not propose".into(),
        )),
        (Side::Market, ValuationRequest::Propose) => Ok(ValuationStatus::Proposed),
        (Side::Market, ValuationRequest::Effective) => {
            let above = params.above_threshold(&position.collateral.nominal)
                || params.above_threshold(value)
                || position
                    .effective
                    .as_ref()
                    .is_some_and(|v| params.above_threshold(&v.value));
            if above {
                Err(DomainError::rule(
                    RuleId::L3,
                    format!(
                        "collateral valued above {} {} is valued by back office only; market \
                         may propose a value",
                        params.back_office_threshold, params.currency
                    ),
                ))
            } else {
                Ok(ValuationStatus::Effective)
            }
        }
        _ => Err(DomainError::rule(
            RuleId::L3,
            "only market (proposals and effective values at or below the threshold) and back \
             office value collateral",
        )),
    }
}

/// Back office confirms a market proposal: it becomes effective (L3).
pub fn confirm_proposal(
    side: Side,
    valuation: &Valuation,
    collateral: &Collateral,
) -> Result<(), DomainError> {
    if side != Side::Backoffice {
        return Err(DomainError::rule(
            RuleId::L3,
            "only back office confirms a proposed valuation",
        ));
    }
    if collateral.status != CollateralStatus::Active {
        return Err(DomainError::InvalidState(
            "the collateral is released: it is valued no more".into(),
        ));
    }
    if valuation.status != ValuationStatus::Proposed {
        return Err(DomainError::InvalidState(
            "the valuation is effective already".into(),
        ));
    }
    Ok(())
}

/// Whether someone of `side` may record a legal-validity check: always back
/// office's (L3).
pub fn may_check_legal_validity(side: Side, collateral: &Collateral) -> Result<(), DomainError> {
    if side != Side::Backoffice {
        return Err(DomainError::rule(
            RuleId::L3,
            "the legal-validity check of collateral is back office's",
        ));
    }
    if collateral.status != CollateralStatus::Active {
        return Err(DomainError::InvalidState(
            "the collateral is released: it is checked no more".into(),
        ));
    }
    Ok(())
}

/// A valuation date: not in the future (at `today`).
pub fn check_valuation_date(date: NaiveDate, today: NaiveDate) -> Result<(), DomainError> {
    if date > today {
        return Err(DomainError::Invalid(format!(
            "valuation_date {date} lies in the future"
        )));
    }
    Ok(())
}

/// What one item secures: its effective value less the haircut, rounded
/// down to the currency's minor unit; zero unless the item is active, has
/// an effective valuation in the parameters' currency dated no later than
/// `today` and its latest legal check is valid (fail closed).
pub fn value_after_haircut(
    position: &CollateralPosition,
    params: &CollateralParameters,
    today: NaiveDate,
) -> Decimal {
    let counts = position.collateral.status == CollateralStatus::Active
        && position
            .legal_check
            .as_ref()
            .is_some_and(|check| check.result == LegalResult::Valid);
    let Some(valuation) = position.effective.as_ref().filter(|v| {
        counts
            && v.status == ValuationStatus::Effective
            && v.valuation_date <= today
            && v.value.currency_code() == params.currency
    }) else {
        return params.in_currency(Decimal::ZERO);
    };
    params.in_currency(haircut_value(
        &valuation.value,
        params.haircut(position.collateral.kind),
    ))
}

/// `value` less `haircut` percent, rounded down to the currency's minor unit.
pub fn haircut_value(value: &Money, haircut: Decimal) -> Decimal {
    let exponent = value.currency().exponent().map_or(0, u32::from);
    let kept = Decimal::ONE_HUNDRED - haircut.clamp(Decimal::ZERO, Decimal::ONE_HUNDRED);
    value
        .amount()
        .checked_mul(kept)
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        .map_or(Decimal::ZERO, |v| {
            v.round_dp_with_strategy(exponent, RoundingStrategy::ToZero)
        })
}

/// The collateral value after haircuts of `items` (L3): the sum of
/// [`value_after_haircut`] over them.
pub fn collateral_value_after_haircuts(
    items: &[CollateralPosition],
    params: &CollateralParameters,
    today: NaiveDate,
) -> Decimal {
    params.in_currency(
        items
            .iter()
            .map(|item| value_after_haircut(item, params, today))
            .fold(Decimal::ZERO, |sum, v| sum.saturating_add(v)),
    )
}

/// The unsecured part of an exposure: exposure less the secured value, never
/// below zero (L3).
pub fn unsecured_part(exposure: Decimal, secured_value: Decimal) -> Decimal {
    exposure.saturating_sub(secured_value).max(Decimal::ZERO)
}

/// When the item's next revaluation falls due: `revaluation_months` after
/// its last effective valuation date; `None` when it has none (it is due
/// now: nothing values it).
pub fn next_revaluation(
    position: &CollateralPosition,
    params: &CollateralParameters,
) -> Option<NaiveDate> {
    let valuation = position.effective.as_ref()?;
    let months = params.revaluation_months_of(position.collateral.kind);
    Some(
        valuation
            .valuation_date
            .checked_add_months(Months::new(months))
            .unwrap_or(NaiveDate::MAX),
    )
}

/// Whether an active item needs a (re)valuation at `date`: never validly
/// valued, or its next revaluation is on or before `date`.
pub fn revaluation_due(
    position: &CollateralPosition,
    params: &CollateralParameters,
    date: NaiveDate,
) -> bool {
    position.collateral.status == CollateralStatus::Active
        && next_revaluation(position, params).is_none_or(|due| due <= date)
}

/// The latest valuation date at which an item of `kind` valued on it is due
/// at `date` (the store's cut-off for the due list): exactly the dates `v`
/// with `v + months <= date`, month ends included (adding months clamps to
/// the month's end, so subtracting alone would miss 29 February).
pub fn due_cutoff(
    kind: CollateralKind,
    params: &CollateralParameters,
    date: NaiveDate,
) -> NaiveDate {
    let months = Months::new(params.revaluation_months_of(kind));
    let mut cutoff = date.checked_sub_months(months).unwrap_or(NaiveDate::MIN);
    while let Some(next) = cutoff.succ_opt() {
        match next.checked_add_months(months) {
            Some(due) if due <= date => cutoff = next,
            _ => break,
        }
    }
    cutoff
}

/// The items of `items` due for revaluation at `date`, earliest due first
/// (never-valued items first of all).
pub fn revaluations_due<'a>(
    items: &'a [CollateralPosition],
    params: &CollateralParameters,
    date: NaiveDate,
) -> Vec<&'a CollateralPosition> {
    let mut due: Vec<_> = items
        .iter()
        .filter(|item| revaluation_due(item, params, date))
        .collect();
    due.sort_by_key(|item| (next_revaluation(item, params), item.collateral.id));
    due
}

#[cfg(test)]
mod tests;
