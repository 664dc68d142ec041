//! Administration storage: rule-set versions and change proposals (S9).

use crate::{ChangeProposal, ProposalFilter, StoreError, StoreResult};
use creditops_domain::proposal::ProposalKind;
use creditops_domain::{RuleSet, Timestamp};

/// Why a commit under a kept actor lookup is refused: the staff directory or
/// the rule sets changed since it was read (see [`AdminTx::expect_authority`]).
pub const AUTHORITY_CHANGED: &str =
    "the staff directory or the rule sets changed while the request ran";
/// Why a backend without an authority version refuses to check one.
pub const AUTHORITY_UNVERSIONED: &str = "this store keeps no authority version to check";

/// Rule sets and their four-eyes change proposals (S9).
#[async_trait::async_trait]
pub trait AdminTx: Send {
    /// Every rule-set version, ascending. Empty until the first is stored.
    async fn rule_sets(&mut self) -> StoreResult<Vec<RuleSet>>;
    /// Makes `sets`, every rule-set version as read just before this
    /// transaction began (by the same request: its actor lookup, see
    /// [`crate::RuleSetCache`], or a vote's check before its claim), this
    /// transaction's rule sets, unless it has read them already: one
    /// command sees one read of the rules. A rule set committed between
    /// that read and this transaction is not seen, as one committed during
    /// it is not.
    fn use_rule_sets(&mut self, sets: Vec<RuleSet>);
    /// Runs this transaction under an actor lookup kept from authority
    /// `version` (see [`crate::AuthorityCache`]): its commit fails with a
    /// conflict, writing nothing, if the version has moved since. Refused
    /// where the backend keeps no authority version.
    fn expect_authority(&mut self, version: u64) -> StoreResult<()> {
        let _ = version;
        Err(StoreError::Conflict(AUTHORITY_UNVERSIONED.into()))
    }
    /// Stores a new rule-set version (Conflict if the version exists) under
    /// the approved change `proposal` it applies (S9; none for the initial
    /// version the owner stores, see the migrations).
    async fn insert_rule_set(
        &mut self,
        rules: &RuleSet,
        proposal: Option<uuid::Uuid>,
    ) -> StoreResult<()>;
    async fn insert_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()>;
    async fn proposal(&mut self, id: uuid::Uuid) -> StoreResult<Option<ChangeProposal>>;
    /// Records the decision on a pending proposal; Conflict if it is not
    /// pending any more (somebody else decided first).
    async fn decide_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()>;
    /// One page of the proposals `filter` selects.
    async fn proposals(&mut self, filter: &ProposalFilter) -> StoreResult<Vec<ChangeProposal>>;
    /// Proposals of `kind` approved at or after `since`, oldest first.
    async fn approved_proposals_since(
        &mut self,
        kind: ProposalKind,
        since: Timestamp,
    ) -> StoreResult<Vec<ChangeProposal>>;
}
