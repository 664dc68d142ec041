//! The rows of a balance import (R2) as the core banking system sends
//! them, read and checked without IO: JSON lines or CSV under the header
//! `source_id,borrower_id,amount,as_of` (optionally followed by
//! `days_past_due,overdrawn_days`, L7), every bad row named with its
//! number, field and problem. The API and the console read imports here, so
//! both refuse exactly the same rows with the same words.

use chrono::{DateTime, Utc};
use creditops_domain::BorrowerId;
use creditops_risk::ImportedBalance;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashSet;

/// Rows per import; larger files are split by the sender.
pub const MAX_ROWS: usize = 100_000;
/// Largest amount accepted, in major units (fits integer cents in an i64).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// How an import's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

/// One balance as sent, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    source_id: String,
    borrower_id: String,
    amount: String,
    as_of: String,
    /// Days past due (L7), a whole number; absent or empty when unknown.
    #[serde(default)]
    days_past_due: Option<i64>,
    /// Days the limit has been overdrawn (L7); absent or empty when unknown.
    #[serde(default)]
    overdrawn_days: Option<i64>,
}

/// The most days past due or overdrawn a row may say (100 years).
pub const MAX_DAYS: i64 = 36_500;

/// A bad row: its number (0 for the CSV header), the field, the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub row: usize,
    pub field: Option<String>,
    pub detail: String,
}

/// Why an import is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// More than [`MAX_ROWS`] rows.
    TooManyRows,
    /// Not one row.
    NoRows,
    /// These rows are bad (sorted by row); nothing is applied.
    Rows(Vec<RowProblem>),
}

fn problem(row: usize, field: Option<&str>, detail: impl Into<String>) -> RowProblem {
    RowProblem {
        row,
        field: field.map(str::to_owned),
        detail: detail.into(),
    }
}

/// A non-negative decimal string such as `1000000.00`, never a float.
pub fn plain_decimal(field: &str, text: &str) -> Result<Decimal, String> {
    let plain = !text.is_empty()
        && text.len() <= 40
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    if !plain {
        return Err(format!(
            "{field} must be a non-negative decimal string such as \"1000000.00\", got {text:?}"
        ));
    }
    Decimal::from_str_exact(text).map_err(|_| format!("{field} {text:?} is out of range"))
}

/// A non-negative amount in the reporting currency, at most 2 decimals.
pub fn parse_amount(field: &str, text: &str) -> Result<Decimal, String> {
    let value = plain_decimal(field, text)?;
    if value.normalize().scale() > 2 {
        return Err(format!("{field} {text:?} has more than 2 decimal places"));
    }
    if value > Decimal::from(MAX_AMOUNT) {
        return Err(format!("{field} must not exceed {MAX_AMOUNT}"));
    }
    Ok(value.normalize())
}

fn read_rows(format: Format, body: &[u8]) -> (Vec<(usize, RawRow)>, Vec<RowProblem>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    match format {
        Format::JsonLines => {
            for (index, line) in body.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<RawRow>(line) {
                    Ok(row) => rows.push((index + 1, row)),
                    Err(e) => problems.push(problem(
                        index + 1,
                        None,
                        format!("not a balance object: {e}"),
                    )),
                }
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .trim(csv::Trim::None)
                .from_reader(body);
            let expected = ["source_id", "borrower_id", "amount", "as_of"];
            let with_arrears = [
                "source_id",
                "borrower_id",
                "amount",
                "as_of",
                "days_past_due",
                "overdrawn_days",
            ];
            match reader.headers() {
                Ok(found) if found.iter().eq(expected) || found.iter().eq(with_arrears) => {}
                _ => {
                    problems.push(problem(
                        0,
                        None,
                        "the header must be exactly source_id,borrower_id,amount,as_of \
                         (optionally followed by ,days_past_due,overdrawn_days)",
                    ));
                    return (rows, problems);
                }
            }
            for (index, record) in reader.deserialize::<RawRow>().enumerate() {
                match record {
                    Ok(row) => rows.push((index + 1, row)),
                    Err(e) => problems.push(problem(index + 1, None, format!("unreadable: {e}"))),
                }
            }
        }
    }
    (rows, problems)
}

fn validate(row: usize, raw: &RawRow, now: DateTime<Utc>) -> Result<ImportedBalance, RowProblem> {
    let source_ok = !raw.source_id.is_empty()
        && raw.source_id.len() <= 128
        && raw.source_id.bytes().all(|b| b.is_ascii_graphic());
    if !source_ok {
        return Err(problem(
            row,
            Some("source_id"),
            "must be 1-128 printable ASCII characters without spaces",
        ));
    }
    let borrower = raw
        .borrower_id
        .parse::<BorrowerId>()
        .map_err(|_| problem(row, Some("borrower_id"), "is not a borrower id"))?;
    let amount =
        parse_amount("amount", &raw.amount).map_err(|e| problem(row, Some("amount"), e))?;
    let as_of = DateTime::parse_from_rfc3339(&raw.as_of)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| problem(row, Some("as_of"), "must be an RFC 3339 timestamp"))?;
    if as_of > now + chrono::Duration::minutes(5) {
        return Err(problem(row, Some("as_of"), "lies in the future"));
    }
    let days = |field: &str, value: Option<i64>| match value {
        None => Ok(None),
        Some(days) if (0..=MAX_DAYS).contains(&days) => Ok(u32::try_from(days).ok()),
        Some(_) => Err(problem(
            row,
            Some(field),
            format!("must be a whole number of days from 0 to {MAX_DAYS}"),
        )),
    };
    Ok(ImportedBalance {
        source_id: raw.source_id.clone(),
        borrower,
        amount,
        as_of,
        days_past_due: days("days_past_due", raw.days_past_due)?,
        overdrawn_days: days("overdrawn_days", raw.overdrawn_days)?,
    })
}

/// The balances of `body`, each with its row number, checked as of `now`
/// (a balance may not lie in the future), or why the import is refused.
pub fn parse(
    format: Format,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<(usize, ImportedBalance)>, Refused> {
    let (raw_rows, mut problems) = read_rows(format, body);
    if raw_rows.len() + problems.len() > MAX_ROWS {
        return Err(Refused::TooManyRows);
    }
    let mut balances = Vec::with_capacity(raw_rows.len());
    let mut source_ids = HashSet::new();
    for (row, raw) in &raw_rows {
        match validate(*row, raw, now) {
            Ok(balance) if !source_ids.insert(balance.source_id.clone()) => problems.push(problem(
                *row,
                Some("source_id"),
                "appears twice in this import",
            )),
            Ok(balance) => balances.push((*row, balance)),
            Err(error) => problems.push(error),
        }
    }
    if balances.is_empty() && problems.is_empty() {
        return Err(Refused::NoRows);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.row);
        return Err(Refused::Rows(problems));
    }
    Ok(balances)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "0192a0c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
    const HEADER: &str = "source_id,borrower_id,amount,as_of\n";
    const ARREARS: &str = "source_id,borrower_id,amount,as_of,days_past_due,overdrawn_days\n";

    fn refused_rows(
        result: Result<Vec<(usize, ImportedBalance)>, Refused>,
    ) -> Vec<(usize, Option<String>)> {
        match result {
            Err(Refused::Rows(rows)) => rows.into_iter().map(|p| (p.row, p.field)).collect(),
            other => panic!("expected bad rows, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_row_is_named_with_its_field() {
        let now = Utc::now();
        let at = now.to_rfc3339();
        let later = (now + chrono::Duration::hours(1)).to_rfc3339();
        type Case<'a> = (&'a str, String, Vec<(usize, Option<&'a str>)>);
        let table: Vec<Case> = vec![
            (
                "three decimals",
                format!("{HEADER}a,{B},1.001,{at}\n"),
                vec![(1, Some("amount"))],
            ),
            (
                "a float",
                format!("{HEADER}a,{B},1e6,{at}\n"),
                vec![(1, Some("amount"))],
            ),
            (
                "negative",
                format!("{HEADER}a,{B},-5,{at}\n"),
                vec![(1, Some("amount"))],
            ),
            (
                "no borrower",
                format!("{HEADER}a,x,5,{at}\n"),
                vec![(1, Some("borrower_id"))],
            ),
            (
                "in the future",
                format!("{HEADER}a,{B},5,{later}\n"),
                vec![(1, Some("as_of"))],
            ),
            (
                "spaces in the id",
                format!("{HEADER}a b,{B},5,{at}\n"),
                vec![(1, Some("source_id"))],
            ),
            (
                "twice",
                format!("{HEADER}a,{B},5,{at}\na,{B},6,{at}\n"),
                vec![(2, Some("source_id"))],
            ),
            (
                "another header",
                format!("id,borrower,amount,at\na,{B},5,{at}\n"),
                vec![(0, None)],
            ),
            (
                "short record",
                format!("{HEADER}a,{B},5\n"),
                vec![(1, None)],
            ),
            (
                "days past due out of range",
                format!("{ARREARS}a,{B},5,{at},40000,\n"),
                vec![(1, Some("days_past_due"))],
            ),
            (
                "negative overdrawn days",
                format!("{ARREARS}a,{B},5,{at},,-1\n"),
                vec![(1, Some("overdrawn_days"))],
            ),
            (
                "days as a fraction",
                format!("{ARREARS}a,{B},5,{at},9.5,\n"),
                vec![(1, None)],
            ),
            (
                "only one arrears column",
                format!("source_id,borrower_id,amount,as_of,days_past_due\na,{B},5,{at},1\n"),
                vec![(0, None)],
            ),
        ];
        for (case, body, expected) in table {
            let got = refused_rows(parse(Format::Csv, body.as_bytes(), now));
            let expected: Vec<(usize, Option<String>)> = expected
                .into_iter()
                .map(|(row, field)| (row, field.map(str::to_owned)))
                .collect();
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn good_rows_are_read_in_both_formats() {
        let now = Utc::now();
        let at = now.to_rfc3339();
        let csv = format!("{HEADER}a,{B},1000.50,{at}\r\nb,{B},7,{at}\r\n");
        let rows = parse(Format::Csv, csv.as_bytes(), now).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1.amount, Decimal::new(100_050, 2));
        let lines = format!(
            "{{\"source_id\":\"a\",\"borrower_id\":\"{B}\",\"amount\":\"5\",\"as_of\":\"{at}\"}}\n\n"
        );
        let rows = parse(Format::JsonLines, lines.as_bytes(), now).unwrap();
        assert_eq!((rows.len(), rows[0].0), (1, 1));
        assert_eq!(rows[0].1.days_past_due, None);
        // L7: arrears in either format, empty or absent when unknown.
        let csv = format!("{ARREARS}a,{B},5,{at},91,\nb,{B},6,{at},,14\n");
        let rows = parse(Format::Csv, csv.as_bytes(), now).unwrap();
        assert_eq!(
            (rows[0].1.days_past_due, rows[0].1.overdrawn_days),
            (Some(91), None)
        );
        assert_eq!(
            (rows[1].1.days_past_due, rows[1].1.overdrawn_days),
            (None, Some(14))
        );
        let lines = format!(
            "{{\"source_id\":\"a\",\"borrower_id\":\"{B}\",\"amount\":\"5\",\"as_of\":\"{at}\",\"days_past_due\":91,\"overdrawn_days\":0}}\n"
        );
        let rows = parse(Format::JsonLines, lines.as_bytes(), now).unwrap();
        assert_eq!(rows[0].1.days_past_due, Some(91));
        assert_eq!(rows[0].1.overdrawn_days, Some(0));
        assert_eq!(
            parse(Format::Csv, HEADER.as_bytes(), now),
            Err(Refused::NoRows)
        );
        assert_eq!(
            refused_rows(parse(Format::JsonLines, b"{\"source_id\":1}\n", now)),
            vec![(1, None)]
        );
    }
}
