//! Conversions between domain values and what both SQL backends store:
//! amounts as integer minor units, timestamps at microsecond precision,
//! enum-like values as text, structured values as JSON text.

use chrono::SubsecRound;
use creditops_domain::{
    BoardResolution, BorrowerId, CaseId, Decision, DocumentId, Money, Severity, Timestamp,
};
use creditops_risk::LimitSubject;
use creditops_store::StoreError;
use creditops_store::StoreResult;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::str::FromStr;
use uuid::Uuid;

/// A value stored in an id column (a UUID, whatever the column's type).
pub trait StoredId: Copy {
    fn uuid(self) -> Uuid;
}

impl StoredId for Uuid {
    fn uuid(self) -> Uuid {
        self
    }
}

impl StoredId for CaseId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

impl StoredId for DocumentId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

impl StoredId for BorrowerId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

impl StoredId for creditops_domain::CreditId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

/// Parses enum-like stored text (status, side, role, ids...). The stored text
/// is not quoted into the error: it could be anything.
pub fn parse_text<T: FromStr>(text: &str, what: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| corrupt(&format!("a stored {what} is not valid")))
}

/// Parses stored JSON into `T`; like [`parse_text`], the text stays out of
/// the error.
pub fn from_json<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|_| corrupt(&format!("stored {what} are not valid")))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(Box::new(e)))
}

/// Stored Merkle tree hashes (level 0: leaf hashes), in order, `None`
/// where nothing is stored.
pub fn tree_hashes(found: Vec<Option<Vec<u8>>>) -> StoreResult<Vec<Option<[u8; 32]>>> {
    found
        .into_iter()
        .map(|bytes| {
            bytes
                .map(|b| {
                    <[u8; 32]>::try_from(b.as_slice())
                        .map_err(|_| corrupt("a stored tree node is not 32 bytes"))
                })
                .transpose()
        })
        .collect()
}

pub fn money(minor: i64, currency: &str) -> StoreResult<Money> {
    Money::from_minor_units(minor, currency).map_err(|_| corrupt("a stored amount is not valid"))
}

/// Timestamps are stored with microsecond precision on both backends
/// (PostgreSQL's `TIMESTAMPTZ` keeps no more); finer digits are truncated, so
/// a reloaded value is the same whichever backend stored it.
pub fn micros(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

/// The decision as stored: its timestamps at the stored precision too.
pub fn decision_in_micros(decision: &Decision) -> Decision {
    let mut decision = decision.clone();
    decision.decided_at = micros(decision.decided_at);
    for vote in &mut decision.votes {
        vote.cast_at = micros(vote.cast_at);
        vote.voter.left_market_at = vote.voter.left_market_at.map(micros);
    }
    decision
}

/// The board resolution as stored JSON, its timestamp at the stored precision.
pub fn board_resolution_json(resolution: Option<&BoardResolution>) -> StoreResult<Option<String>> {
    resolution
        .map(|resolution| {
            let mut resolution = resolution.clone();
            resolution.recorded_at = micros(resolution.recorded_at);
            to_json(&resolution)
        })
        .transpose()
}

/// A stored competence level (0 = none, up to the order's maximum).
pub fn level(value: i64) -> StoreResult<u8> {
    u8::try_from(value).map_err(|_| corrupt("a stored competence level is out of range"))
}

pub fn round(value: i64) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt("a stored voting round is out of range"))
}

/// A list index or count as a database integer.
pub fn to_i64(n: usize) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| invariant("a list index does not fit a database integer"))
}

pub fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// A caller broke the store's contract: a bug, reported as a database error
/// (logged, never shown to clients).
pub fn invariant(what: &'static str) -> StoreError {
    StoreError::Database(what.into())
}

/// Replaces the generic conflict text of a mapped error with `message`.
pub fn conflict_as(err: StoreError, message: &str) -> StoreError {
    match err {
        StoreError::Conflict(_) => StoreError::Conflict(message.to_owned()),
        other => other,
    }
}

/// Reporting-currency amounts (EUR) are stored as integer cents.
const MINOR_UNIT_SCALE: u32 = 2;

/// An EUR amount as integer cents. More than two decimal places or an amount
/// beyond an `i64` of cents is refused, never rounded.
pub fn to_minor(amount: Decimal) -> StoreResult<i64> {
    let cents = amount
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or_else(|| invariant("an amount does not fit integer minor units"))?;
    if !cents.fract().is_zero() {
        return Err(invariant(
            "an amount has more than 2 decimal places (EUR minor units)",
        ));
    }
    cents
        .to_i64()
        .ok_or_else(|| invariant("an amount does not fit integer minor units"))
}

pub fn from_minor(minor: i64) -> Decimal {
    Decimal::new(minor, MINOR_UNIT_SCALE)
}

/// Adds stored sums of cents exactly.
pub fn sum_minor(parts: &[i64]) -> StoreResult<Decimal> {
    parts
        .iter()
        .try_fold(Decimal::ZERO, |sum, part| {
            sum.checked_add(from_minor(*part))
        })
        .ok_or_else(|| corrupt("a stored sum is out of range"))
}

/// The key a limit subject is stored under; a subject that would not read
/// back as itself (e.g. an empty sector) is refused.
pub fn subject_key(subject: &LimitSubject) -> StoreResult<String> {
    let key = subject.key();
    match LimitSubject::parse(subject.kind(), &key) {
        Ok(parsed) if parsed == *subject => Ok(key),
        _ => Err(invariant("a limit subject key is not valid for its kind")),
    }
}

/// A breach is soft or hard; "within" is no breach.
pub fn breach_severity(severity: Severity) -> StoreResult<&'static str> {
    match severity {
        Severity::Soft | Severity::Hard => Ok(severity.as_str()),
        Severity::Within => Err(invariant("a breach is soft or hard, not within")),
    }
}

/// The stored text of a breach severity.
pub fn severity_of(text: &str) -> StoreResult<Severity> {
    match text {
        "soft" => Ok(Severity::Soft),
        "hard" => Ok(Severity::Hard),
        _ => Err(corrupt("a stored breach severity is not valid")),
    }
}

/// A change case's credit amount as stored: minor units of the case's
/// currency (L1).
pub fn credit_amount_minor(base: &creditops_domain::CreditBase) -> StoreResult<i64> {
    let money = Money::parse(&base.amount.to_string(), &base.currency)
        .map_err(|_| invariant("a credit base amount must be a positive amount"))?;
    Ok(money.minor_units())
}
