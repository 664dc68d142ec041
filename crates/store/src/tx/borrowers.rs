//! Borrower storage: borrowers, groups of connected clients, related parties.

use crate::{
    Borrower, BorrowerGroup, GroupMembership, RelatedParty, StoreResult, UnclassifiedValue,
    VoteContext,
};
use creditops_domain::{BorrowerId, CaseId, StaffId, Timestamp, UnitId};
use std::collections::BTreeSet;

/// Borrowers, groups of connected clients, relationship managers and related parties: what segregation checks a vote against (V4, S5, S6).
#[async_trait::async_trait]
pub trait BorrowerTx: Send {
    async fn insert_borrower(&mut self, borrower: &Borrower) -> StoreResult<()>;
    /// Every stored sector and country (of borrowers, of sector and
    /// country limit versions and of their open breaches) that is not a
    /// code of the built-in lists, with the rows holding it; empty when
    /// every value is a code.
    async fn unclassified_values(&mut self) -> StoreResult<Vec<UnclassifiedValue>>;
    async fn borrower(&mut self, id: BorrowerId) -> StoreResult<Option<Borrower>>;
    async fn insert_group(&mut self, group: &BorrowerGroup) -> StoreResult<()>;
    async fn group(&mut self, id: &UnitId) -> StoreResult<Option<BorrowerGroup>>;
    /// Moves a borrower into `group` (or out of any group with `None`) from
    /// `at` on: the running membership ends at `at`, a new one starts.
    async fn set_group_membership(
        &mut self,
        borrower: BorrowerId,
        group: Option<&UnitId>,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// The borrower and the group it belongs to at `at`: [`Self::borrower`]
    /// and [`Self::group_of`] in one read.
    async fn borrower_with_group(
        &mut self,
        id: BorrowerId,
        at: Timestamp,
    ) -> StoreResult<Option<(Borrower, Option<UnitId>)>>;
    /// The group a borrower belongs to at `at`.
    async fn group_of(
        &mut self,
        borrower: BorrowerId,
        at: Timestamp,
    ) -> StoreResult<Option<UnitId>>;
    /// The members of a group at `at`, sorted.
    async fn group_members(
        &mut self,
        group: &UnitId,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerId>>;
    /// Relationship managers of these borrowers.
    async fn relationship_managers(
        &mut self,
        borrowers: &[BorrowerId],
    ) -> StoreResult<BTreeSet<StaffId>>;
    async fn insert_related_party(&mut self, party: &RelatedParty) -> StoreResult<()>;
    /// Staff recorded as related to any of these borrowers.
    async fn related_parties(&mut self, borrowers: &[BorrowerId])
    -> StoreResult<BTreeSet<StaffId>>;
    /// What the segregation rules check a vote on these borrowers against
    /// (S5, S6, V11), read together: [`Self::relationship_managers`] and
    /// [`Self::related_parties`]. (V4's exposure is the risk module's.)
    async fn vote_context(&mut self, borrowers: &[BorrowerId]) -> StoreResult<VoteContext>;
    /// Cases of these borrowers that are not decided yet.
    async fn open_cases_of(&mut self, borrowers: &[BorrowerId]) -> StoreResult<Vec<CaseId>>;
    /// Borrowers by id after `after`, at most `limit` (internal audit, A7).
    async fn borrowers_page(
        &mut self,
        after: Option<BorrowerId>,
        limit: u32,
    ) -> StoreResult<Vec<Borrower>>;
    /// Groups of connected clients by id after `after`, at most `limit`.
    async fn groups_page(
        &mut self,
        after: Option<&UnitId>,
        limit: u32,
    ) -> StoreResult<Vec<BorrowerGroup>>;
    /// Every membership a group ever had, ended ones included, oldest first.
    async fn group_history(&mut self, group: &UnitId) -> StoreResult<Vec<GroupMembership>>;
    /// Related parties (of `borrower`, or of every borrower) ordered by
    /// borrower and staff id, after that pair, at most `limit`.
    async fn related_parties_page(
        &mut self,
        borrower: Option<BorrowerId>,
        after: Option<(BorrowerId, StaffId)>,
        limit: u32,
    ) -> StoreResult<Vec<RelatedParty>>;
}
