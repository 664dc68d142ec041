//! The credit after its first decision: approved credits with their
//! versions (L1) and borrowers' ratings (L4).

use crate::StoreResult;
use creditops_domain::{BorrowerId, Credit, CreditId, Rating};

/// Approved credits and ratings.
#[async_trait::async_trait]
pub trait GrantingTx: Send {
    /// Stores version 1 of a credit and its first history row; Conflict if
    /// the credit exists already.
    async fn insert_credit(&mut self, credit: &Credit) -> StoreResult<()>;
    /// Stores the next version of a credit (and its history row), if the
    /// stored one is still `credit.version - 1`; Conflict otherwise.
    async fn update_credit(&mut self, credit: &Credit) -> StoreResult<()>;
    async fn credit(&mut self, id: CreditId) -> StoreResult<Option<Credit>>;
    /// Every version of a credit, oldest first.
    async fn credit_versions(&mut self, id: CreditId) -> StoreResult<Vec<Credit>>;
    /// A borrower's credits, oldest first.
    async fn credits_of(&mut self, borrower: BorrowerId) -> StoreResult<Vec<Credit>>;
    /// Appends a rating (set or proposed); ratings are never changed.
    async fn insert_rating(&mut self, rating: &Rating) -> StoreResult<()>;
    /// The latest rating back office set for the borrower (L4).
    async fn current_rating(&mut self, borrower: BorrowerId) -> StoreResult<Option<Rating>>;
    /// The borrower's ratings, set and proposed, newest first, at most `limit`.
    async fn ratings(&mut self, borrower: BorrowerId, limit: u32) -> StoreResult<Vec<Rating>>;
}
