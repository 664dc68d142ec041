//! Credits after their first decision (L1): the kinds of credit decision a
//! case can ask for, the approved credit as an object with versions, and the
//! checks a change of an approved credit must pass.
//!
//! Every decision that changes the risk is a case with both votes (MaRisk
//! AT 2.3): a new credit, an increase, a prolongation, a material change of
//! terms, a release or exchange of collateral, an overdraft tolerance. A case
//! of any kind but `new` names the credit it changes and the credit version
//! it was opened on; its file holds the credit's terms after the change.

use crate::{BorrowerId, CaseId, CreditId, DomainError, Money, RuleId, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a credit decision decides (L1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A new credit.
    #[default]
    New,
    /// More money under an approved credit.
    Increase,
    /// A longer term for an approved credit.
    Prolongation,
    /// A material change of terms (rate, term, covenants).
    ChangeOfTerms,
    /// A release or exchange of collateral securing an approved credit.
    CollateralRelease,
    /// An overdraft tolerance above an approved credit.
    Overdraft,
}

impl CaseKind {
    pub const ALL: [CaseKind; 6] = [
        CaseKind::New,
        CaseKind::Increase,
        CaseKind::Prolongation,
        CaseKind::ChangeOfTerms,
        CaseKind::CollateralRelease,
        CaseKind::Overdraft,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::New => "new",
            CaseKind::Increase => "increase",
            CaseKind::Prolongation => "prolongation",
            CaseKind::ChangeOfTerms => "change_of_terms",
            CaseKind::CollateralRelease => "collateral_release",
            CaseKind::Overdraft => "overdraft",
        }
    }

    /// Whether the kind changes an approved credit (every kind but `new`).
    pub fn changes_a_credit(self) -> bool {
        self != CaseKind::New
    }
}

impl FromStr for CaseKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CaseKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown decision kind {s:?}; expected one of new, increase, prolongation, \
                     change_of_terms, collateral_release, overdraft"
                )
            })
    }
}

impl fmt::Display for CaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The approved credit a change case was opened on: which credit, at which
/// version, with which amount and term. Part of the file both votes bind to
/// (V3), so a vote names the credit version it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditBase {
    #[schema(value_type = String, format = Uuid)]
    pub credit_id: CreditId,
    /// The credit's version when the case was opened; the approval applies
    /// only to this version (a credit changed meanwhile is refused).
    pub version: i64,
    /// The credit's amount then (a decimal string in JSON).
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub currency: String,
    pub term_months: u32,
}

/// An approved credit (L1): the terms in force, the version (+1 per approved
/// change) and the case that decided each version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub id: CreditId,
    pub borrower_id: BorrowerId,
    pub version: i64,
    pub amount: Money,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
    /// The case that decided this version.
    pub case_id: CaseId,
    /// The kind of decision that produced this version.
    pub kind: CaseKind,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Credit {
    /// Version 1 of a credit, from the approved `new` case.
    pub fn approved(id: CreditId, case_id: CaseId, file: &crate::CaseFile, now: Timestamp) -> Self {
        Self {
            id,
            borrower_id: file.borrower_id,
            version: 1,
            amount: file.amount,
            product: file.product.clone(),
            term_months: file.term_months,
            purpose: file.purpose.clone(),
            case_id,
            kind: CaseKind::New,
            created_at: now,
            updated_at: now,
        }
    }

    /// What the case found: the base a change case binds to.
    pub fn base(&self) -> CreditBase {
        CreditBase {
            credit_id: self.id,
            version: self.version,
            amount: self.amount.amount(),
            currency: self.amount.currency_code().to_owned(),
            term_months: self.term_months,
        }
    }

    /// The next version of the credit after an approved change (L1).
    /// Refused when the credit moved since the case was opened on it: the
    /// votes were cast on terms that are no longer the credit's.
    pub fn changed_by(
        &self,
        case_id: CaseId,
        file: &crate::CaseFile,
        now: Timestamp,
    ) -> Result<Credit, DomainError> {
        let Some(base) = &file.base else {
            return Err(DomainError::InvalidState(
                "a new credit is not a change of an existing one".into(),
            ));
        };
        if base.credit_id != self.id || file.borrower_id != self.borrower_id {
            return Err(DomainError::InvalidState(
                "the case changes another credit".into(),
            ));
        }
        if base.version != self.version {
            return Err(DomainError::InvalidState(format!(
                "credit {} is at version {}, the case was opened on version {}; open a new \
                 case on the credit as it is now",
                self.id, self.version, base.version
            )));
        }
        Ok(Credit {
            version: self.version + 1,
            amount: file.amount,
            product: file.product.clone(),
            term_months: file.term_months,
            purpose: file.purpose.clone(),
            case_id,
            kind: file.kind,
            updated_at: now,
            ..self.clone()
        })
    }
}

/// L1: what a change of `kind` may ask of the credit it changes. The file's
/// amount and term are the credit's terms after the change.
pub fn check_change(
    kind: CaseKind,
    base: Option<&CreditBase>,
    amount: &Money,
    term_months: u32,
) -> Result<(), DomainError> {
    let base = match (kind, base) {
        (CaseKind::New, None) => return Ok(()),
        (CaseKind::New, Some(_)) => {
            return Err(DomainError::Invalid(
                "a new credit names no credit_id; use another kind to change a credit".into(),
            ));
        }
        (_, None) => {
            return Err(DomainError::Invalid(format!(
                "a case of kind {kind} names the approved credit it changes (credit_id)"
            )));
        }
        (_, Some(base)) => base,
    };
    if amount.currency_code() != base.currency {
        return Err(DomainError::Invalid(format!(
            "the credit is kept in {}; a change cannot switch it to {}",
            base.currency,
            amount.currency_code()
        )));
    }
    let (now, after) = (base.amount, amount.amount());
    let refusal = match kind {
        CaseKind::Increase | CaseKind::Overdraft if after <= now => Some(format!(
            "an {kind} asks for more than the credit's {now}; the amount is the total after \
             the change"
        )),
        CaseKind::Prolongation if after > now => Some(format!(
            "a prolongation keeps the amount at most at {now}; more money is an increase"
        )),
        CaseKind::Prolongation if term_months <= base.term_months => Some(format!(
            "a prolongation asks for a longer term than the credit's {} months",
            base.term_months
        )),
        CaseKind::ChangeOfTerms if after > now => Some(format!(
            "a change of terms keeps the amount at most at {now}; more money is an increase"
        )),
        CaseKind::CollateralRelease if after != now => Some(format!(
            "a collateral release keeps the credit's amount of {now}"
        )),
        _ => None,
    };
    match refusal {
        Some(detail) => Err(DomainError::rule(RuleId::L1, detail)),
        None => Ok(()),
    }
}

/// The exposure a decision adds (L1): the whole amount of a new credit, the
/// difference for an increase or overdraft, nothing for the other kinds.
pub fn added_exposure(base: Option<&CreditBase>, amount: &Money) -> Decimal {
    match base {
        None => amount.amount(),
        Some(base) => (amount.amount() - base.amount).max(Decimal::ZERO),
    }
}
