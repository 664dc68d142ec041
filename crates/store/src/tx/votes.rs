//! What a vote reads about its borrowers besides the case, in one call: the
//! facts the segregation, competence and granting rules check it against
//! (V4, S5, S6, V11, L3, L4, L8). Each part is also readable on its own
//! through its area's method; this reads them together, so a vote does
//! not pay a round trip per part.

use crate::{StageTransfer, StoreResult, VoteContext};
use creditops_domain::collateral::CollateralPosition;
use creditops_domain::proposal::ChangeProposal;
use creditops_domain::{BorrowerId, Rating, Timestamp, UnitId};
use rust_decimal::Decimal;

/// Whose facts [`VoteTx::vote_inputs`] reads, and as of when.
#[derive(Debug, Clone, Copy)]
pub struct VoteInputsQuery<'a> {
    /// The case's borrower: its rating and its stage.
    pub borrower: BorrowerId,
    /// The borrowers whose exposure is aggregated with the borrower's, the
    /// borrower included (its group's members, or the borrower alone).
    pub members: &'a [BorrowerId],
    /// When the case opened: approved group membership changes and stage
    /// transfers from then on.
    pub since: Timestamp,
    /// The time of the vote: the exposure held then.
    pub at: Timestamp,
}

/// The facts of [`VoteInputsQuery`], each exactly as its own method reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteInputs {
    /// [`crate::BorrowerTx::vote_context`] of the members.
    pub context: VoteContext,
    /// [`crate::ExposureTx::exposure_total`] of the members at `at`.
    pub exposure: Decimal,
    /// [`crate::AdminTx::approved_proposals_since`] for group membership
    /// changes since `since`, oldest decision first.
    pub group_changes: Vec<ChangeProposal>,
    /// [`crate::GrantingTx::current_rating`] of the borrower.
    pub rating: Option<Rating>,
    /// [`crate::CollateralTx::active_collateral_of`] of each member, in the
    /// members' order.
    pub collateral: Vec<CollateralPosition>,
    /// [`crate::MonitoringTx::current_stage`] of the borrower.
    pub latest_stage: Option<StageTransfer>,
    /// [`crate::MonitoringTx::stage_transfers_since`] for the borrower and
    /// `since`, oldest first.
    pub stage_transfers: Vec<StageTransfer>,
}

/// A borrower's group at the time of a vote, its members and the vote's
/// facts about them (see [`VoteTx::vote_inputs_of_group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVoteInputs {
    /// [`crate::BorrowerTx::group_of`] the borrower at the time of the vote.
    pub group: Option<UnitId>,
    /// [`crate::BorrowerTx::group_members`] of that group with the borrower,
    /// in id order; the borrower alone without a group.
    pub members: Vec<BorrowerId>,
    /// [`VoteTx::vote_inputs`] of those members.
    pub inputs: VoteInputs,
}

/// Reads a vote's facts together (see the module documentation).
#[async_trait::async_trait]
pub trait VoteTx: Send {
    async fn vote_inputs(&mut self, query: &VoteInputsQuery<'_>) -> StoreResult<VoteInputs>;
    /// The borrower's group at `at` and its members, and
    /// [`Self::vote_inputs`] of them, in one statement: for a vote that
    /// locks nothing (an approval reads its group under the risk locks
    /// first).
    async fn vote_inputs_of_group(
        &mut self,
        borrower: BorrowerId,
        since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<GroupVoteInputs>;
}
