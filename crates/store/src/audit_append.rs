//! Turning an [`AuditRecord`] into a stored event inside a transaction.

use crate::{NewAuditEvent, StoreError, StoreResult, Tx};
use creditops_audit::{AuditRecord, leaf_hash};
use creditops_domain::{BorrowerId, CaseId};

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
    let parse_case = |s: &String| s.parse::<CaseId>().ok();
    let parse_borrower = |s: &String| s.parse::<BorrowerId>().ok();
    let recorded_at = chrono::DateTime::parse_from_rfc3339(&record.ts)
        .map_err(|e| StoreError::Corrupt(format!("audit timestamp: {e}")))?
        .with_timezone(&chrono::Utc);
    let event = NewAuditEvent {
        event_id: record.id,
        leaf_hash: leaf_hash(&body),
        body,
        recorded_at,
        actor: record.actor.clone(),
        action: record.action.clone(),
        outcome: record.outcome.as_str().to_owned(),
        case_id: record.case_id.as_ref().and_then(parse_case),
        borrower_id: record.borrower_id.as_ref().and_then(parse_borrower),
    };
    tx.append_audit(&event).await
}
