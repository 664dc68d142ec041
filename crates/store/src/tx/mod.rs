//! The unit of work of the storage boundary, split into one trait per area
//! of the data (staff, borrowers, administration, limits, risk, exposures,
//! breaches, cases, idempotency, audit, console sessions). [`Tx`] combines them, so services
//! hold one `Box<dyn Tx>`; `use creditops_store::prelude::*` brings every
//! area's methods into scope.

mod admin;
mod audit;
mod borrowers;
mod breaches;
mod cases;
mod collateral;
mod credit_file;
mod exposures;
mod granting;
mod idempotency;
mod limits;
mod monitoring;
mod risk;
mod sessions;
mod staff;
mod votes;

pub use admin::{AUTHORITY_CHANGED, AUTHORITY_UNVERSIONED, AdminTx};
pub use audit::AuditTx;
pub use borrowers::BorrowerTx;
pub use breaches::BreachTx;
pub use cases::CaseTx;
pub use collateral::CollateralTx;
pub use credit_file::{BorrowerFinancials, CreditFileTx, StoredDocument};
pub use exposures::ExposureTx;
pub use granting::GrantingTx;
pub use idempotency::IdempotencyTx;
pub use limits::LimitTx;
pub use monitoring::{
    BorrowerFlag, FlagKind, MonitoringAlert, MonitoringTx, Review, ReviewKind, StageTransfer,
    StoredMilestone, WatchEntry,
};
pub use risk::RiskTx;
pub use sessions::SessionTx;
pub use staff::StaffTx;
pub use votes::{GroupVoteInputs, VoteInputs, VoteInputsQuery, VoteTx};

use crate::StoreResult;

/// One database transaction over every area. Dropping it without `commit`
/// rolls it back.
#[async_trait::async_trait]
pub trait Tx:
    StaffTx
    + BorrowerTx
    + AdminTx
    + LimitTx
    + RiskTx
    + ExposureTx
    + BreachTx
    + CaseTx
    + CollateralTx
    + GrantingTx
    + CreditFileTx
    + MonitoringTx
    + IdempotencyTx
    + AuditTx
    + SessionTx
    + VoteTx
    + Send
{
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
