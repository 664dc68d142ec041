//! What only some backends can do, as capabilities a [`Store`] may offer:
//! liquidity claims and a separate audit sequencer (PostgreSQL, whose
//! writers run concurrently). A backend whose writers are serial (SQLite)
//! offers neither: there an approval's own liquidity check is exact, and an
//! audit event joins the chain inside its own transaction.
//!
//! [`StoreExt`] answers the questions callers ask of every store, using a
//! capability where the backend has it.

use crate::{LiquidityClaim, SequencerRound, Store, StoreResult, TreeHead, Tx};
use async_trait::async_trait;
use creditops_domain::{CaseId, Timestamp};
use std::time::Duration;

/// Liquidity claims (R5, R6): what concurrent approvals count of each other.
#[async_trait]
pub trait LiquidityClaims: Send + Sync {
    /// Claims the liquidity headroom an approval of `case` will spend, in a
    /// transaction of its own, before the approval's transaction begins
    /// (which then counts every other live claim, see
    /// [`crate::InFlightClaims`]). The claim may be settled up to `lifetime`
    /// after it is taken (the request timeout, which bounds the approval's
    /// transaction) and is counted by others for twice that. `None` if the
    /// case does not exist or is not in `currency`.
    async fn claim_liquidity(
        &self,
        case: CaseId,
        currency: &str,
        lifetime: Duration,
    ) -> StoreResult<Option<LiquidityClaim>>;
    /// Withdraws a claim (nothing happens if it was settled already).
    async fn release_liquidity_claim(&self, claim: &LiquidityClaim) -> StoreResult<()>;
}

/// The audit sequencer (A1, A2): committed audit events wait for it to link
/// them into the chain, rather than being linked inside the business
/// transaction.
#[async_trait]
pub trait AuditSequencer: Send + Sync {
    /// One sequencer round: links committed audit events that are not in the
    /// chain yet, extends the Merkle tree and returns the new head.
    /// Serialised in the database, so any number of instances may call it.
    /// With a key, the round also signs the new head as a checkpoint (at
    /// most about once a second) in the same transaction.
    async fn sequence_audit(
        &self,
        key: Option<&creditops_audit::SigningKey>,
    ) -> StoreResult<SequencerRound>;
    /// Runs rounds until every audit event committed before the call is in
    /// the chain, and returns the head of the linked log then (covering at
    /// least those events); `Unavailable` if that takes longer than
    /// `deadline`. Usually nothing waits: then one statement answers both.
    async fn flush_audit(&self, deadline: Duration) -> StoreResult<TreeHead>;
    /// [`AuditSequencer::flush_audit`] for a reader who reads the tree at
    /// the head and records the read (A7): the head, and the transaction
    /// to do both in. Where possible that is the flush's own round, still
    /// open, so the linking, the read and its audit commit once; it holds
    /// the round's lock until it ends, so the reader commits or drops it
    /// promptly.
    async fn flush_audit_for_read(
        &self,
        deadline: Duration,
    ) -> StoreResult<(TreeHead, Box<dyn Tx>)>;
    /// When the oldest committed audit event that is not linked yet was
    /// recorded (the sequencer's lag); `None` if all are linked.
    async fn oldest_unsequenced_audit(&self) -> StoreResult<Option<Timestamp>>;
    /// Tries to become the one instance that runs the periodic sequencer.
    /// Leadership lasts as long as the returned lease (and its database
    /// session); `None` if another instance leads.
    async fn sequencer_lease(&self) -> StoreResult<Option<Box<dyn SequencerLease>>>;
}

/// Leadership of the audit sequencer, held by one instance at a time.
#[async_trait]
pub trait SequencerLease: Send {
    /// Whether this instance still leads (false once its session is lost).
    async fn still_held(&mut self) -> bool;
}

/// Questions asked of every store, answered with its capabilities.
#[async_trait]
pub trait StoreExt {
    /// [`LiquidityClaims::claim_liquidity`]; `None` where the backend
    /// issues no claims.
    async fn claim_liquidity(
        &self,
        case: CaseId,
        currency: &str,
        lifetime: Duration,
    ) -> StoreResult<Option<LiquidityClaim>>;
    /// [`LiquidityClaims::release_liquidity_claim`].
    async fn release_liquidity_claim(&self, claim: &LiquidityClaim) -> StoreResult<()>;
    /// Whether committed audit events wait for a sequencer.
    fn audit_sequenced_separately(&self) -> bool;
    /// [`AuditSequencer::flush_audit`]; nothing to wait for without one.
    async fn flush_audit(&self, deadline: Duration) -> StoreResult<()>;
    /// [`AuditSequencer::oldest_unsequenced_audit`]; `None` without one.
    async fn oldest_unsequenced_audit(&self) -> StoreResult<Option<Timestamp>>;
}

#[async_trait]
impl<'s> StoreExt for dyn Store + 's {
    async fn claim_liquidity(
        &self,
        case: CaseId,
        currency: &str,
        lifetime: Duration,
    ) -> StoreResult<Option<LiquidityClaim>> {
        match self.liquidity_claims() {
            Some(claims) => claims.claim_liquidity(case, currency, lifetime).await,
            None => Ok(None),
        }
    }

    async fn release_liquidity_claim(&self, claim: &LiquidityClaim) -> StoreResult<()> {
        match self.liquidity_claims() {
            Some(claims) => claims.release_liquidity_claim(claim).await,
            None => Ok(()),
        }
    }

    fn audit_sequenced_separately(&self) -> bool {
        self.audit_sequencer().is_some()
    }

    async fn flush_audit(&self, deadline: Duration) -> StoreResult<()> {
        match self.audit_sequencer() {
            Some(sequencer) => sequencer.flush_audit(deadline).await.map(|_| ()),
            None => Ok(()),
        }
    }

    async fn oldest_unsequenced_audit(&self) -> StoreResult<Option<Timestamp>> {
        match self.audit_sequencer() {
            Some(sequencer) => sequencer.oldest_unsequenced_audit().await,
            None => Ok(None),
        }
    }
}
