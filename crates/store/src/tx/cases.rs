//! Credit case storage: cases, their votes and decisions (V10).

use crate::{CaseFilter, CaseSummary, DecidedCase, StoreResult};
use creditops_domain::{CaseId, CaseStatus, CreditCase, Timestamp};

/// Credit cases with their votes and decision.
#[async_trait::async_trait]
pub trait CaseTx: Send {
    async fn insert_case(&mut self, case: &CreditCase) -> StoreResult<()>;
    /// Loads a case with all its votes (void ones included) and its decision.
    async fn case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>>;
    /// Saves the new state of `case` if the stored revision still equals
    /// `expected_revision` (optimistic concurrency, V10), appends the votes not
    /// yet stored (votes are never updated) and the decision if one was taken.
    /// `Conflict` if somebody else changed the case first.
    async fn update_case(&mut self, case: &CreditCase, expected_revision: i64) -> StoreResult<()>;
    /// Cases in a status, oldest first, keyset-paged by case id.
    async fn cases_by_status(
        &mut self,
        status: CaseStatus,
        after: Option<CaseId>,
        limit: u32,
    ) -> StoreResult<Vec<CaseSummary>>;
    /// The cases `filter` selects, by id, at most `filter.limit`.
    async fn cases_page(&mut self, filter: &CaseFilter) -> StoreResult<Vec<CaseSummary>>;
    /// The decisions taken in [`from`, `to`) with their case summary,
    /// oldest first (then by case id), at most `limit` (L11).
    async fn decisions_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DecidedCase>>;
}
