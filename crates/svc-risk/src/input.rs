//! Parsing of the decimal strings risk control sends: amounts in the
//! reporting currency (cents at most) and percentages. Never a float.

use creditops_commands::balance_rows;
use creditops_http::ApiError;
use rust_decimal::Decimal;

fn plain_decimal(field: &str, text: &str) -> Result<Decimal, ApiError> {
    balance_rows::plain_decimal(field, text).map_err(ApiError::validation)
}

/// A non-negative amount in the reporting currency, at most 2 decimals.
pub fn parse_amount(field: &str, text: &str) -> Result<Decimal, ApiError> {
    balance_rows::parse_amount(field, text).map_err(ApiError::validation)
}

/// A percentage between 0 and `max`, at most 4 decimals.
pub fn parse_percent(field: &str, text: &str, max: Decimal) -> Result<Decimal, ApiError> {
    let value = plain_decimal(field, text)?;
    if value.normalize().scale() > 4 || value > max {
        return Err(ApiError::validation(format!(
            "{field} must be between 0 and {max} with at most 4 decimal places, got {text:?}"
        )));
    }
    Ok(value.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_and_bounded() {
        for ok in ["0", "1", "1000000.00", "0.01", "1000000000000000"] {
            assert!(parse_amount("a", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-1",
            "1e6",
            "1.001",
            "NaN",
            " 1",
            "1,000",
            ".5",
            "5.",
            "1.2.3",
            "1000000000000000.01",
            "0x10",
        ] {
            assert!(parse_amount("a", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percents_are_bounded() {
        let hundred = Decimal::ONE_HUNDRED;
        assert!(parse_percent("p", "12.5", hundred).is_ok());
        assert!(parse_percent("p", "100", hundred).is_ok());
        assert!(parse_percent("p", "100.0001", hundred).is_err());
        assert!(parse_percent("p", "1.00001", hundred).is_err());
    }
}
