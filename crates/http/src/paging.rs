//! The paging convention of every list: a cursor `after` (the `next` of the
//! previous page) and a page size `limit` between 1 and the list's maximum;
//! a page size outside that range is refused (422), never clamped silently.
//! Also the filters a case list shares across services.

use crate::ApiError;
use crate::views::CaseSummaryView;
use chrono::{DateTime, Utc};
use creditops_domain::{BorrowerId, CaseId, CaseStatus};
use creditops_store::CaseFilter;
use serde::Serialize;
use utoipa::ToSchema;

/// A list's page sizes: the default and the largest accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    pub default: u32,
    pub max: u32,
}

impl PageSize {
    /// The page size `given` (or the default); 422 outside `1..=max`.
    pub fn limit(self, given: Option<u32>) -> Result<u32, ApiError> {
        let limit = given.unwrap_or(self.default);
        if (1..=self.max).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::validation(format!(
                "limit must be between 1 and {}",
                self.max
            )))
        }
    }
}

/// The `next` cursor of a page of `items` asked with `limit`: the key of
/// the last item if the page is full, else none (the last page).
pub fn next_cursor<T, K>(items: &[T], limit: u32, key: impl Fn(&T) -> K) -> Option<K> {
    (items.len() == limit as usize)
        .then(|| items.last().map(key))
        .flatten()
}

/// The query parameter `name` parsed into `T`; a malformed one is a 422
/// naming it.
pub fn parse_param<T: std::str::FromStr>(
    name: &str,
    value: Option<&str>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ApiError::validation(format!("{name} is not valid: {v:?}")))
        })
        .transpose()
}

/// An RFC 3339 timestamp of the query parameter `name`.
pub fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::validation(format!("{name} must be an RFC 3339 timestamp")))
        })
        .transpose()
}

/// The query parameters of a case list, as given.
#[derive(Debug, Default)]
pub struct CaseListParams<'a> {
    pub status: Option<&'a str>,
    pub borrower_id: Option<&'a str>,
    /// RFC 3339; cases opened at or after.
    pub from: Option<&'a str>,
    /// RFC 3339; cases opened before.
    pub to: Option<&'a str>,
    pub after: Option<&'a str>,
    pub limit: Option<u32>,
}

impl CaseListParams<'_> {
    /// The store filter; each malformed parameter is a 422 naming it.
    pub fn into_filter(self, page: PageSize) -> Result<CaseFilter, ApiError> {
        Ok(CaseFilter {
            status: self
                .status
                .map(str::parse::<CaseStatus>)
                .transpose()
                .map_err(|e| ApiError::validation(format!("status: {e}")))?,
            borrower_id: self
                .borrower_id
                .map(str::parse::<BorrowerId>)
                .transpose()
                .map_err(|_| ApiError::validation("borrower_id must be a borrower id"))?,
            opened_from: parse_time("from", self.from)?,
            opened_before: parse_time("to", self.to)?,
            market_scope: None,
            after: self
                .after
                .map(str::parse::<CaseId>)
                .transpose()
                .map_err(|_| {
                    ApiError::validation("after must be a case id from a previous page")
                })?,
            limit: page.limit(self.limit)?,
        })
    }
}

/// One page of cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseSummaryView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<CaseId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_outside_the_range_are_refused() {
        let page = PageSize {
            default: 50,
            max: 200,
        };
        assert_eq!(page.limit(None).ok(), Some(50));
        assert_eq!(page.limit(Some(200)).ok(), Some(200));
        assert!(page.limit(Some(0)).is_err());
        assert!(page.limit(Some(201)).is_err());
        assert_eq!(next_cursor(&[1, 2], 2, |x| *x), Some(2));
        assert_eq!(next_cursor(&[1], 2, |x| *x), None);
    }
}
