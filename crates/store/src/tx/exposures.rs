//! Exposure storage: reservations and imported balances, summed per
//! borrower (R2, R5).

use crate::{ExposureScope, StoreResult};
use creditops_domain::{CaseId, Timestamp};
use creditops_risk::{BorrowerExposure, ImportEffect, ImportedBalance, Reservation};
use rust_decimal::Decimal;

/// Exposures, reservations and imported balances (R2, R5).
#[async_trait::async_trait]
pub trait ExposureTx: Send {
    /// One row per borrower in `scope` (also those without exposure), with
    /// its group at `at`, reserved (active reservations not expired at `at`)
    /// and outstanding (consumed reservations plus imported balances).
    async fn exposures(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerExposure>>;
    /// Reserved plus outstanding over every borrower in `scope`, summed in SQL.
    async fn exposure_total(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Decimal>;
    /// Conflict if the case holds a reservation already.
    async fn insert_reservation(&mut self, reservation: &Reservation) -> StoreResult<()>;
    async fn reservation(&mut self, case: CaseId) -> StoreResult<Option<Reservation>>;
    /// Closes an active reservation (consumed or expired, with `closed_at`
    /// and `closed_by`); Conflict if it is not active any more.
    async fn close_reservation(&mut self, reservation: &Reservation) -> StoreResult<()>;
    /// Active reservations whose `expires_at <= at`, oldest first.
    async fn due_reservations(&mut self, at: Timestamp) -> StoreResult<Vec<Reservation>>;
    /// Upserts an imported balance by its source record id.
    async fn import_balance(&mut self, balance: &ImportedBalance) -> StoreResult<ImportEffect>;
}
