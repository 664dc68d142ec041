//! Collateral storage (L3): the register, valuations and legal-validity
//! checks.

use crate::StoreResult;
use chrono::NaiveDate;
use creditops_domain::collateral::{
    Collateral, CollateralKind, CollateralPosition, LegalCheck, Valuation,
};
use creditops_domain::{BorrowerId, CollateralId, StaffId, Timestamp, ValuationId};

/// The collateral register, its valuations and legal checks.
#[async_trait::async_trait]
pub trait CollateralTx: Send {
    /// NotFound if the borrower does not exist; Conflict on a duplicate id.
    async fn insert_collateral(&mut self, item: &Collateral) -> StoreResult<()>;
    async fn collateral(&mut self, id: CollateralId) -> StoreResult<Option<Collateral>>;
    /// NotFound if the collateral item does not exist.
    async fn insert_valuation(&mut self, valuation: &Valuation) -> StoreResult<()>;
    async fn valuation(&mut self, id: ValuationId) -> StoreResult<Option<Valuation>>;
    /// Makes a proposed valuation effective, confirmed by `by` at `at`:
    /// NotFound if there is none, Conflict if it is effective already.
    async fn confirm_valuation(
        &mut self,
        id: ValuationId,
        by: &StaffId,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// NotFound if the collateral item does not exist.
    async fn insert_legal_check(&mut self, check: &LegalCheck) -> StoreResult<()>;
    /// An item with its latest effective valuation (by valuation date, then
    /// recording time), its latest proposal recorded after that and its
    /// latest legal check.
    async fn collateral_position(
        &mut self,
        id: CollateralId,
    ) -> StoreResult<Option<CollateralPosition>>;
    /// The active collateral of a borrower, by id, each as a
    /// [`Self::collateral_position`].
    async fn active_collateral_of(
        &mut self,
        borrower: BorrowerId,
    ) -> StoreResult<Vec<CollateralPosition>>;
    /// Active items of each kind whose latest effective valuation date is on
    /// or before the kind's cut-off, or that have no effective valuation;
    /// at most `limit`, those without a valuation first, then by the
    /// valuation date and id. Kinds not named are not listed.
    async fn revaluation_candidates(
        &mut self,
        cutoffs: &[(CollateralKind, NaiveDate)],
        limit: u32,
    ) -> StoreResult<Vec<CollateralPosition>>;
    /// Releases an active item (an approved collateral-release decision):
    /// NotFound if there is none, Conflict if it is released already.
    async fn release_collateral(
        &mut self,
        id: CollateralId,
        by: &StaffId,
        at: Timestamp,
    ) -> StoreResult<()>;
}
