//! Audit trail storage: events appended with the change they describe,
//! reconciliation of business rows, signed checkpoints (A1, A2).

use crate::{
    AuditFilter, NewAuditEvent, StoreResult, StoredAuditEvent, StoredCheckpoint, UnauditedRow,
};

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
}
