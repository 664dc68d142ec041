//! Audit trail storage: events appended with the change they describe,
//! reconciliation of business rows, signed checkpoints (A1, A2).

use crate::{
    AuditFilter, NewAuditEvent, StoreResult, StoredAuditEvent, StoredCheckpoint, UnauditedRow,
    VerifiedHead,
};
use creditops_audit::{Hash, NodePosition};

/// The audit trail (A1): events, reconciliation and signed checkpoints.
#[async_trait::async_trait]
pub trait AuditTx: Send {
    /// Appends an event in this transaction (A1: it commits or rolls back
    /// with the change it describes). SQLite links it into the chain at once;
    /// PostgreSQL leaves that to the sequencer ([`crate::Store::sequence_audit`]).
    async fn append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()>;
    /// The id this transaction's first audit event gets, handed out once:
    /// every business row of the credit path (borrowers, cases, votes,
    /// decisions) the transaction writes carries it, so reconciliation finds
    /// a row whose event is missing. `None` once claimed.
    fn claim_audit_event_id(&mut self) -> Option<uuid::Uuid>;
    /// Business rows of the credit path whose audit event does not exist
    /// (or that carry none), at most `limit`, by table and key.
    async fn unaudited_rows(&mut self, limit: u32) -> StoreResult<Vec<UnauditedRow>>;
    /// Events matching `filter`, in sequence order.
    async fn audit_events(&mut self, filter: &AuditFilter) -> StoreResult<Vec<StoredAuditEvent>>;
    /// Records a signed checkpoint that was handed out (insert-only).
    async fn insert_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> StoreResult<()>;
    /// The checkpoint handed out last with the largest tree size not above
    /// `max_size` (the newest of equal sizes).
    async fn latest_checkpoint(&mut self, max_size: u64) -> StoreResult<Option<StoredCheckpoint>>;
    /// The log's size: how many events are linked into the chain and the
    /// Merkle tree (PostgreSQL's sequencer links after commit).
    async fn audit_size(&mut self) -> StoreResult<u64>;
    /// The stored hashes of the complete subtrees at `positions`, in order
    /// (level 0: the leaf hashes), `None` where nothing is stored: O(1) per
    /// node, so a proof reads O(log n) of them whatever the log's size.
    async fn audit_nodes(&mut self, positions: &[NodePosition]) -> StoreResult<Vec<Option<Hash>>>;
    /// Records a head a verification reached (insert-only; a head of the
    /// same size recorded before stays).
    async fn insert_verified_head(&mut self, head: &VerifiedHead) -> StoreResult<()>;
    /// The recorded verified heads, largest size first, at most `limit`.
    async fn verified_heads(&mut self, limit: u32) -> StoreResult<Vec<VerifiedHead>>;
}
