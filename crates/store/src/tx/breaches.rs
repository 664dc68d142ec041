//! Breach storage: detected limit breaches and their resolution (R7).

use crate::{BreachFilter, BreachPage, StoreResult};
use creditops_domain::Timestamp;
use creditops_risk::Breach;

/// Limit breaches and their resolution (R7).
#[async_trait::async_trait]
pub trait BreachTx: Send {
    async fn insert_breach(&mut self, breach: &Breach) -> StoreResult<()>;
    /// Breaches not resolved yet, oldest first.
    async fn open_breaches(&mut self) -> StoreResult<Vec<Breach>>;
    /// Sets `resolved_at`; Conflict if it is resolved already, NotFound if unknown.
    async fn resolve_breach(&mut self, id: uuid::Uuid, at: Timestamp) -> StoreResult<()>;
    /// Breaches detected in `[from, to)`, oldest first, at most `limit`.
    async fn breaches(&mut self, filter: &BreachFilter) -> StoreResult<Vec<Breach>>;
    /// One page of breaches in order of detection.
    async fn breach_page(&mut self, page: &BreachPage) -> StoreResult<Vec<Breach>>;
}
