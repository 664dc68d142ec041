//! Risk parameters and risk locks: capital, liquidity positions and what
//! approvals have committed against them (R3, R4, R5, R6).

use crate::{GateFigures, InFlightClaims, LiquidityClaim, LiquidityNow, StoreResult};
use creditops_domain::{BorrowerId, Timestamp};
use creditops_risk::{Capital, LiquidityPosition, Reservation};
use rust_decimal::Decimal;

/// Risk parameters (capital, liquidity) and the risk locks (R3, R4, R5, R6).
///
/// Each lock is held until the transaction ends, so two commands cannot both
/// spend the same headroom. They are taken in one order: the risk parameters
/// (exclusive or shared), then risk subjects. SQLite writers are serial
/// already, so there they cost nothing. The liquidity headroom every
/// approval spends is not locked: each approval claims its amount first
/// ([`crate::Store::claim_liquidity`]).
#[async_trait::async_trait]
pub trait RiskTx: Send {
    /// Exclusive hold on everything risk control evaluates. Taken by the
    /// commands that move many subjects at once or the parameters every
    /// evaluation reads: group membership, sector and country limits,
    /// capital, liquidity positions, imports, disbursement.
    async fn lock_risk(&mut self) -> StoreResult<()>;
    /// Shared hold on the risk parameters: while it is held, nobody takes
    /// [`Self::lock_risk`], so groups, the limits in force, capital and the
    /// liquidity position stay as read. Approvals hold it together, each
    /// locking only its own subjects.
    async fn lock_risk_shared(&mut self) -> StoreResult<()>;
    /// Exclusive holds on risk subjects (a unit of connected clients, a
    /// sector, a country), named by the caller; after
    /// [`Self::lock_risk_shared`]. Keys are locked in sorted order.
    async fn lock_risk_subjects(&mut self, subjects: &[String]) -> StoreResult<()>;
    /// Stores a new Tier 1 capital version (Conflict if the version exists).
    async fn insert_capital(&mut self, capital: &Capital) -> StoreResult<()>;
    async fn latest_capital(&mut self) -> StoreResult<Option<Capital>>;
    /// Stores a new liquidity position version (Conflict if the version exists).
    async fn insert_liquidity(&mut self, position: &LiquidityPosition) -> StoreResult<()>;
    async fn latest_liquidity(&mut self) -> StoreResult<Option<LiquidityPosition>>;
    /// The latest liquidity position and the liquidity committed since it
    /// was recorded ([`Self::committed_outflows`]), with `claims` counted as
    /// asked, read together (no claims where the backend issues none).
    async fn liquidity_now(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<Option<LiquidityNow>>;
    /// [`Self::latest_capital`] and [`Self::liquidity_now`], read together
    /// (what the risk gate weighs an approval against).
    async fn capital_and_liquidity(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<(Option<Capital>, Option<LiquidityNow>)>;
    /// The exposures of `borrowers` (what [`crate::ExposureTx::exposures`]
    /// reads for them by name) and [`Self::capital_and_liquidity`], read
    /// together: every figure of the risk gate but the sector and country
    /// sums. One statement where writers run concurrently.
    async fn gate_figures(
        &mut self,
        borrowers: &[BorrowerId],
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<GateFigures>;
    /// Ends the claim an approval took, as its reservation of `amount` is
    /// written in this transaction: the claim is gone exactly when the
    /// reservation commits. Conflict if the claim lapsed, was released, or
    /// claimed less than `amount` (the case changed since). With no claim:
    /// fine where writers are serial, Conflict where the backend issues
    /// claims (the approval was not claimed for, so others did not count it).
    async fn settle_liquidity_claim(
        &mut self,
        claim: Option<&LiquidityClaim>,
        amount: Decimal,
    ) -> StoreResult<()>;
    /// Writes an approval's `reservation` and settles its `claim` with it:
    /// what [`crate::ExposureTx::insert_reservation`] and then
    /// [`Self::settle_liquidity_claim`] for the reservation's amount do,
    /// with their conflicts, and nothing written if either is refused. One
    /// statement where the backend issues claims.
    async fn reserve_with_claim(
        &mut self,
        reservation: &Reservation,
        claim: Option<&LiquidityClaim>,
    ) -> StoreResult<()>;
    /// Liquidity committed since `since`: active reservations not expired at
    /// `at` plus reservations consumed after `since` (R6 projection).
    async fn committed_outflows(&mut self, since: Timestamp, at: Timestamp)
    -> StoreResult<Decimal>;
}
