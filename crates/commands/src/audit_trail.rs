//! Internal audit's work on the trail (A2, A4, A5, A7): reading events,
//! recomputing the chain, the Merkle tree behind checkpoints and proofs,
//! reconciliation, and the verified log an export is built from. Every read
//! an auditor makes is itself audited, in its own transaction.

use crate::audit_bundle::{self, ExportError, ExportKeys, LogEntry};
use crate::{Actor, CommandError, CommandResult, Context};
use creditops_audit::{AuditAction, ChainVerifier, MerkleTree, hash_from_slice};
use creditops_domain::{CaseId, CreditCase, RuleId};
use creditops_store::{
    AuditFilter, Store, StoreExt, StoredAuditEvent, StoredCheckpoint, Tx, UnauditedRow,
};
use serde::Serialize;
use serde_json::Value;

const VERIFY_BATCH: u32 = 5000;
/// How long a read waits for the sequencer to link what committed before it.
const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

impl From<ExportError> for CommandError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Usage(detail) => CommandError::invalid(detail),
            ExportError::Empty => CommandError::conflict(e.to_string()),
            ExportError::Broken { .. } => CommandError::conflict_under(RuleId::A2, e.to_string()),
            ExportError::Store(store) => CommandError::Store(store),
            ExportError::Bundle(_) => {
                CommandError::Internal("the bundle could not be built".into())
            }
        }
    }
}

/// Links every event committed before this call first (PostgreSQL links
/// after commit), so an auditor never reads a log that lags their own
/// actions; Unavailable if the sequencer cannot catch up in time.
pub async fn caught_up(ctx: &Context) -> CommandResult<()> {
    Ok(ctx.store.flush_audit(FLUSH_DEADLINE).await?)
}

/// Records that `actor` read the trail (A7) as `action` with `data` and,
/// in the same transaction, the signed checkpoint the read hands out, so a
/// later export can prove consistency with it.
pub async fn record_read(
    ctx: &Context,
    actor: &Actor,
    action: AuditAction,
    data: Value,
    checkpoint: Option<&StoredCheckpoint>,
) -> CommandResult<()> {
    let mut tx = ctx.store.begin().await?;
    let mut record = ctx.actor_record(actor, action);
    record.data = data;
    ctx.audit(tx.as_mut(), &record).await?;
    if let Some(checkpoint) = checkpoint {
        tx.insert_checkpoint(checkpoint).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The events `filter` selects, once the log is caught up; the query is
/// audited in the same transaction (A4, A7).
pub async fn events(
    ctx: &Context,
    actor: &Actor,
    filter: &AuditFilter,
) -> CommandResult<Vec<StoredAuditEvent>> {
    caught_up(ctx).await?;
    let mut tx = ctx.store.begin().await?;
    let events = tx.audit_events(filter).await?;
    let mut record = ctx.actor_record(actor, AuditAction::AuditQuery);
    record.data = serde_json::json!({
        "case_id": filter.case_id.map(|c| c.to_string()),
        "borrower_id": filter.borrower_id.map(|b| b.to_string()),
        "actor": filter.actor,
        "action": filter.action,
        "outcome": filter.outcome,
        "after": filter.after_seq,
        "limit": filter.limit,
        "returned": events.len(),
    });
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(events)
}

/// The result of recomputing the chain, as reported and audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ChainCheck {
    /// Every event verifies.
    Intact {
        /// Always true.
        ok: bool,
        events: u64,
        last_seq: Option<i64>,
        /// Hex chain hash of the last event.
        head: String,
    },
    /// The first event that does not verify.
    Broken {
        /// Always false.
        ok: bool,
        first_bad_seq: i64,
        reason: String,
    },
}

impl ChainCheck {
    /// The JSON of the check.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Recomputes the chain over every stored event in `tx`, in batches,
/// telling `progress` the number of events checked after each batch.
pub async fn check_chain(
    tx: &mut dyn Tx,
    origin: &str,
    progress: &mut (dyn FnMut(u64) + Send),
) -> CommandResult<ChainCheck> {
    let mut checked = 0u64;
    let mut verifier = ChainVerifier::new(origin, 1);
    let mut after = None;
    loop {
        let filter = AuditFilter {
            after_seq: after,
            limit: VERIFY_BATCH,
            ..AuditFilter::default()
        };
        let batch = tx.audit_events(&filter).await?;
        for e in &batch {
            if let Err(failure) = verifier.push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash) {
                return Ok(ChainCheck::Broken {
                    ok: false,
                    first_bad_seq: failure.seq,
                    reason: failure.reason,
                });
            }
        }
        checked += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        progress(checked);
        match batch.last() {
            Some(last) if batch.len() == VERIFY_BATCH as usize => after = Some(last.seq),
            _ => break,
        }
    }
    let report = verifier.finish();
    Ok(ChainCheck::Intact {
        ok: true,
        events: report.events,
        last_seq: report.last_seq,
        head: report.head,
    })
}

/// Recomputes the whole hash chain once the log is caught up (A2); the
/// verification and its result are audited.
pub async fn verify(ctx: &Context, actor: &Actor, origin: &str) -> CommandResult<ChainCheck> {
    caught_up(ctx).await?;
    let result = {
        let mut tx = ctx.store.begin_read().await?;
        check_chain(tx.as_mut(), origin, &mut |_| {}).await?
    };
    record_read(
        ctx,
        actor,
        AuditAction::AuditVerify,
        result.to_value(),
        None,
    )
    .await?;
    Ok(result)
}

/// The Merkle tree over every stored leaf, once the log is caught up.
/// Rebuilt per call: O(n) in the log size, which a persisted tree (the
/// sequencer's job) will replace. A gap or a bad leaf is a conflict.
pub async fn merkle_tree(ctx: &Context) -> CommandResult<MerkleTree> {
    caught_up(ctx).await?;
    let mut tx = ctx.store.begin_read().await?;
    let mut leaves = Vec::new();
    let mut after = None;
    loop {
        let batch = tx
            .audit_events(&AuditFilter {
                after_seq: after,
                limit: VERIFY_BATCH,
                ..AuditFilter::default()
            })
            .await?;
        for e in &batch {
            let expected = i64::try_from(leaves.len()).unwrap_or(i64::MAX) + 1;
            let leaf = hash_from_slice(&e.leaf_hash).filter(|_| e.seq == expected);
            let Some(leaf) = leaf else {
                return Err(CommandError::conflict(format!(
                    "the audit log is broken at sequence {}; run POST /v1/verify",
                    e.seq
                )));
            };
            leaves.push(leaf);
        }
        match batch.last() {
            Some(last) if batch.len() == VERIFY_BATCH as usize => after = Some(last.seq),
            _ => break,
        }
    }
    Ok(MerkleTree::from_leaves(leaves))
}

/// Business rows whose audit event is missing (A1), at most `limit`. Every
/// committed event counts, linked or not yet linked by the sequencer.
pub async fn unaudited_rows(store: &dyn Store, limit: u32) -> CommandResult<Vec<UnauditedRow>> {
    let mut tx = store.begin_read().await?;
    Ok(tx.unaudited_rows(limit).await?)
}

/// Internal audit reads a credit file with its votes and decision record
/// (A7, V9); the read itself is audited.
pub async fn read_case(ctx: &Context, actor: &Actor, id: CaseId) -> CommandResult<CreditCase> {
    let case = crate::cases::read_case(ctx, id).await?;
    let mut tx = ctx.store.begin().await?;
    let mut record = ctx.actor_record(actor, AuditAction::AuditCaseRead);
    record.case_id = Some(case.id);
    record.borrower_id = Some(case.file.borrower_id);
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(case)
}

/// The whole log, its chain checked, once caught up, and the last
/// checkpoint handed out that the export can prove consistency with (A2, A5).
pub async fn verified_log(
    ctx: &Context,
    origin: &str,
    keys: ExportKeys<'_>,
) -> CommandResult<(Vec<LogEntry>, Option<String>)> {
    caught_up(ctx).await?;
    let mut tx = ctx.store.begin_read().await?;
    let events = audit_bundle::load_verified_log(tx.as_mut(), origin).await?;
    let size = u64::try_from(events.len()).unwrap_or(u64::MAX);
    let previous = audit_bundle::previous_checkpoint(tx.as_mut(), size, keys).await?;
    Ok((events, previous))
}
