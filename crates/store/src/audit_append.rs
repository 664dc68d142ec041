//! Turning an [`AuditRecord`] into a stored event inside a transaction.

use crate::{NewAuditEvent, StoreError, StoreResult, Tx};
use creditops_audit::{AuditRecord, leaf_hash};

/// Encodes `record` canonically and appends it to the chain in `tx` (A1: the
/// event commits or rolls back with the change it describes).
///
/// The transaction's first event takes the id the transaction stamped on
/// the business rows it wrote (reconciliation).
pub async fn append_record(tx: &mut dyn Tx, record: &AuditRecord) -> StoreResult<()> {
    let claimed;
    let record = match tx.claim_audit_event_id() {
        Some(id) => {
            let mut stamped = record.clone();
            stamped.id = id;
            claimed = stamped;
            &claimed
        }
        None => record,
    };
    let body = record
        .canonical_body()
        .map_err(|e| StoreError::Corrupt(format!("audit body: {e}")))?;
    let event = NewAuditEvent {
        event_id: record.id,
        leaf_hash: leaf_hash(&body),
        body,
        recorded_at: record.ts,
        actor: record.actor.clone(),
        action: record.action.as_str().to_owned(),
        outcome: record.outcome.as_str().to_owned(),
        case_id: record.case_id,
        borrower_id: record.borrower_id,
    };
    tx.append_audit(&event).await
}
