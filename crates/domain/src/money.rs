//! Exact money: a `Decimal` amount in an ISO 4217 currency. Never a float.
//!
//! Storage uses integer minor units (cents), which is exact in every SQL engine
//! and sums exactly in SQL; JSON uses decimal strings like `"250000.00"`.

use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest amount a single credit case may carry, in major units. Far above any
/// real credit, far below where minor units would overflow an `i64`.
const MAX_MAJOR_UNITS: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MoneyError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Parses a positive amount (decimal string) in a currency with minor units.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency = parse_currency(currency)?;
        let trimmed = amount.trim();
        if trimmed != amount || amount.is_empty() {
            return Err(MoneyError(format!(
                "amount {amount:?} is not a decimal number"
            )));
        }
        // Only plain decimal notation: no exponent, no sign games, no "NaN".
        let plain = amount
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        let amount_value = if plain {
            Decimal::from_str_exact(amount).ok()
        } else {
            None
        };
        let value = amount_value
            .ok_or_else(|| MoneyError(format!("amount {amount:?} is not a decimal number")))?;
        Self::new(value, currency)
    }

    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = minor_unit_exponent(currency)?;
        if amount <= Decimal::ZERO {
            return Err(MoneyError("amount must be greater than zero".into()));
        }
        if amount > Decimal::from(MAX_MAJOR_UNITS) {
            return Err(MoneyError(format!(
                "amount must not exceed {MAX_MAJOR_UNITS} {}",
                currency.code()
            )));
        }
        if amount.normalize().scale() > exponent {
            return Err(MoneyError(format!(
                "{} has {exponent} decimal places; amount {amount} has more",
                currency.code()
            )));
        }
        let mut amount = amount;
        amount.rescale(exponent);
        // Storage is i64 minor units. MAX_MAJOR_UNITS alone does not bound that
        // for four-decimal currencies (CLF, UYW): 10^15 * 10^4 > i64::MAX.
        if i64::try_from(amount.mantissa()).is_err() {
            return Err(MoneyError(format!(
                "amount {amount} {} does not fit integer minor units",
                currency.code()
            )));
        }
        Ok(Self { amount, currency })
    }

    /// Rebuilds money from stored integer minor units.
    pub fn from_minor_units(minor: i64, currency: &str) -> Result<Self, MoneyError> {
        let currency = parse_currency(currency)?;
        let exponent = minor_unit_exponent(currency)?;
        Self::new(Decimal::new(minor, exponent), currency)
    }

    /// The amount in integer minor units (exact; checked against overflow by `new`).
    pub fn minor_units(&self) -> i64 {
        let mantissa = self.amount.mantissa();
        // `new` rescaled to the currency exponent and bounded the value, so the
        // mantissa is the minor-unit count and fits an i64.
        i64::try_from(mantissa).unwrap_or(i64::MAX)
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn currency_code(&self) -> &'static str {
        self.currency.code()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency.code())
    }
}

fn parse_currency(code: &str) -> Result<Currency, MoneyError> {
    Currency::from_code(code)
        .ok_or_else(|| MoneyError(format!("{code:?} is not an ISO 4217 currency code")))
}

fn minor_unit_exponent(currency: Currency) -> Result<u32, MoneyError> {
    currency
        .exponent()
        .map(u32::from)
        .ok_or_else(|| MoneyError(format!("{} is not a currency for credit", currency.code())))
}

/// JSON shape of an amount: always a decimal string with the currency's scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyJson {
    pub amount: String,
    pub currency: String,
}

impl From<Money> for MoneyJson {
    fn from(m: Money) -> Self {
        Self {
            amount: m.amount.to_string(),
            currency: m.currency.code().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_amounts() {
        let cases = [
            ("250000.00", "EUR", "250000.00", 25_000_000),
            ("250000", "EUR", "250000.00", 25_000_000),
            ("0.01", "EUR", "0.01", 1),
            ("1000", "JPY", "1000", 1000),
            ("1.234", "BHD", "1.234", 1234),
        ];
        for (amount, currency, shown, minor) in cases {
            let m = Money::parse(amount, currency).expect(amount);
            assert_eq!(m.amount().to_string(), shown);
            assert_eq!(m.minor_units(), minor);
            assert_eq!(Money::from_minor_units(minor, currency), Ok(m));
        }
    }

    #[test]
    fn refuses_bad_amounts() {
        let cases = [
            ("0", "EUR"),
            ("-5.00", "EUR"),
            ("0.001", "EUR"),
            ("1.5", "JPY"),
            ("1e6", "EUR"),
            ("NaN", "EUR"),
            ("", "EUR"),
            (" 5", "EUR"),
            ("12,50", "EUR"),
            ("100", "XXX"),
            ("100", "EURO"),
            ("100", "eur"),
            ("100000000000000000000", "EUR"),
            ("1000000000000000.01", "EUR"),
        ];
        for (amount, currency) in cases {
            assert!(
                Money::parse(amount, currency).is_err(),
                "{amount} {currency}"
            );
        }
    }

    #[test]
    fn largest_amount_fits_minor_units() {
        let m = Money::parse("1000000000000000", "EUR").expect("max");
        assert_eq!(m.minor_units(), 100_000_000_000_000_000);
    }
}
