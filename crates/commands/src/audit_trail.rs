//! Internal audit's work on the trail (A2, A4, A5, A7): reading events,
//! recomputing the chain, the Merkle tree behind checkpoints and proofs,
//! reconciliation, and the verified log an export is built from. Every read
//! an auditor makes is itself audited, in its own transaction.

use crate::audit_bundle::{self, ExportError, ExportKeys};
use crate::{Actor, CommandError, CommandResult, Context};
use creditops_audit::merkle::empty_root;
use creditops_audit::{
    AuditAction, ChainVerifier, CompactRange, Hash, NodePlan, NodePosition, TreeNode,
    hash_from_slice,
};
use creditops_domain::{CaseId, CreditCase, RuleId};
use creditops_store::{
    AuditFilter, Store, StoreExt, StoredAuditEvent, StoredCheckpoint, Tx, UnauditedRow,
    VerifiedHead,
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
            ExportError::Broken { .. } | ExportError::Tree(_) => {
                CommandError::conflict_under(RuleId::A2, e.to_string())
            }
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
    let tx = ctx.store.begin().await?;
    audit_read(ctx, tx, actor, action, data, checkpoint).await
}

/// [`record_read`] in `tx`, which it commits.
async fn audit_read(
    ctx: &Context,
    mut tx: Box<dyn Tx>,
    actor: &Actor,
    action: AuditAction,
    data: Value,
    checkpoint: Option<&StoredCheckpoint>,
) -> CommandResult<()> {
    // Under a kept actor lookup, the read is recorded only if it still holds.
    if let Some(version) = actor.authority {
        tx.expect_authority(version)?;
    }
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
        /// Events checked by this verification.
        events: u64,
        last_seq: Option<i64>,
        /// Hex chain hash of the last event.
        head: String,
        /// `full` from the first event, or `incremental` from the last
        /// verified, signed head.
        mode: VerifyMode,
        /// The size of the verified head this verification started from (0
        /// for a full one).
        from_size: u64,
    },
    /// The first event that does not verify.
    Broken {
        /// Always false.
        ok: bool,
        first_bad_seq: i64,
        reason: String,
    },
}

/// Where a verification starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// From the first event.
    Full,
    /// After the last verified head whose signature, stored tree and chain
    /// value still match.
    Incremental,
}

impl ChainCheck {
    /// The JSON of the check.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A verified position to continue from: its size, the chain value there
/// and the Merkle tree's compact range over it.
struct Verified {
    size: u64,
    chain: Hash,
    range: CompactRange,
}

/// What a check reached: the result and, when intact, the new verified
/// position.
struct Checked {
    check: ChainCheck,
    reached: Option<Verified>,
}

fn broken(first_bad_seq: i64, reason: String) -> Checked {
    Checked {
        check: ChainCheck::Broken {
            ok: false,
            first_bad_seq,
            reason,
        },
        reached: None,
    }
}

/// A stored tree node that the leaves below it do not give: the first
/// position it covers is the first bad one (proofs through it would lie).
fn wrong_node(node: TreeNode) -> Checked {
    let first = node
        .index
        .checked_shl(u32::from(node.level))
        .unwrap_or(u64::MAX);
    broken(
        seq_of(first.saturating_add(1)),
        format!(
            "the stored Merkle tree node at level {}, index {} does not match the leaves \
             below it",
            node.level, node.index
        ),
    )
}

fn seq_of(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// Recomputes the chain over every stored event in `tx`, in batches,
/// telling `progress` the number of events checked after each batch; the
/// stored Merkle tree's nodes are checked against the leaves as well.
pub async fn check_chain(
    tx: &mut dyn Tx,
    origin: &str,
    progress: &mut (dyn FnMut(u64) + Send),
) -> CommandResult<ChainCheck> {
    Ok(check_log(tx, origin, None, progress).await?.check)
}

/// Checks the events after `start` (all, without one): sequence, leaf and
/// chain of each event, and every tree node the events complete against
/// the stored one, batch by batch.
async fn check_log(
    tx: &mut dyn Tx,
    origin: &str,
    start: Option<Verified>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> CommandResult<Checked> {
    let (mode, from_size, mut verifier, mut range, mut chain) = match start {
        None => (
            VerifyMode::Full,
            0,
            ChainVerifier::new(origin, 1),
            CompactRange::new(),
            None,
        ),
        Some(start) => (
            VerifyMode::Incremental,
            start.size,
            ChainVerifier::resume(start.chain, seq_of(start.size + 1)),
            start.range,
            Some(start.chain),
        ),
    };
    let mut checked = 0u64;
    let mut after = (from_size > 0).then(|| seq_of(from_size));
    loop {
        let filter = AuditFilter {
            after_seq: after,
            limit: VERIFY_BATCH,
            ..AuditFilter::default()
        };
        let batch = tx.audit_events(&filter).await?;
        let mut completed = Vec::new();
        for e in &batch {
            if let Err(failure) = verifier.push(e.seq, &e.body, &e.leaf_hash, &e.chain_hash) {
                // A wrong node over the leaves before it is the earlier fault.
                if let Some(node) = first_wrong_node(tx, &completed).await? {
                    return Ok(wrong_node(node));
                }
                return Ok(broken(failure.seq, failure.reason));
            }
            // Both verified by the push: the leaf hashes the body, the chain
            // value follows from the previous one.
            let (Some(leaf), Some(value)) = (
                hash_from_slice(&e.leaf_hash),
                hash_from_slice(&e.chain_hash),
            ) else {
                return Ok(broken(e.seq, "a stored hash is not 32 bytes".into()));
            };
            chain = Some(value);
            range.push_reporting(leaf, |node| completed.push(node));
        }
        if let Some(node) = first_wrong_node(tx, &completed).await? {
            return Ok(wrong_node(node));
        }
        checked += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        progress(checked);
        match batch.last() {
            Some(last) if batch.len() == VERIFY_BATCH as usize => after = Some(last.seq),
            _ => break,
        }
    }
    let report = verifier.finish();
    let head = match chain {
        Some(chain) if mode == VerifyMode::Incremental && report.events == 0 => hex::encode(chain),
        _ => report.head,
    };
    let last_seq = report
        .last_seq
        .or((from_size > 0).then(|| seq_of(from_size)));
    Ok(Checked {
        check: ChainCheck::Intact {
            ok: true,
            events: report.events,
            last_seq,
            head,
            mode,
            from_size,
        },
        reached: chain.map(|chain| Verified {
            size: range.size(),
            chain,
            range,
        }),
    })
}

/// The first of `nodes` (computed from the leaves) whose stored copy
/// differs or is missing.
async fn first_wrong_node(tx: &mut dyn Tx, nodes: &[TreeNode]) -> CommandResult<Option<TreeNode>> {
    let positions: Vec<NodePosition> = nodes.iter().map(|n| (n.level, n.index)).collect();
    let stored = tx.audit_nodes(&positions).await?;
    Ok(nodes
        .iter()
        .zip(stored)
        .find(|(node, stored)| *stored != Some(node.hash))
        .map(|(node, _)| *node))
}

/// Verified heads tried, newest first, before falling back to a full
/// verification (a head signed by a key since retired and forgotten).
const VERIFIED_HEADS_TRIED: u32 = 3;

/// The newest verified head that still holds: its signature verifies with
/// one of `keys`, its origin is ours, the stored tree at its size has its
/// root, and the stored chain value there is the one it recorded. A head
/// whose signature does not verify is skipped (a full verification follows
/// if none holds); a stored tree or chain that no longer matches a signed
/// head means the verified part of the log changed: broken.
async fn verified_start(
    tx: &mut dyn Tx,
    origin: &str,
    keys: &ExportKeys<'_>,
) -> CommandResult<Result<Option<Verified>, Checked>> {
    let verifiers = keys.verifiers();
    let size = tx.audit_size().await?;
    for head in tx.verified_heads(VERIFIED_HEADS_TRIED).await? {
        let Ok(signed) = creditops_audit::parse_and_verify(&head.note, &verifiers) else {
            continue;
        };
        if signed.origin != origin || signed.size != head.tree_size {
            continue;
        }
        let changed = |what: &str| {
            broken(
                seq_of(signed.size.min(size + 1)),
                format!(
                    "{what} the head of size {} verified at {}: the verified part of the log \
                     changed; a full verification (POST /v1/verify?full=true) names the first \
                     bad event",
                    signed.size, head.verified_at
                ),
            )
        };
        if signed.size > size {
            return Ok(Err(changed("the log is shorter than")));
        }
        let peaks = CompactRange::peak_positions(signed.size);
        let range = tx
            .audit_nodes(&peaks)
            .await?
            .into_iter()
            .collect::<Option<Vec<Hash>>>()
            .and_then(|peaks| CompactRange::from_parts(signed.size, peaks).ok())
            .filter(|range| range.root() == signed.root);
        let Some(range) = range else {
            return Ok(Err(changed(
                "the stored Merkle tree no longer has the root of",
            )));
        };
        let at = seq_of(signed.size);
        let chain = tx
            .audit_events(&AuditFilter {
                after_seq: Some(at - 1),
                limit: 1,
                ..AuditFilter::default()
            })
            .await?
            .into_iter()
            .next()
            .filter(|e| e.seq == at)
            .and_then(|e| hash_from_slice(&e.chain_hash))
            .filter(|chain| *chain == head.chain_hash);
        let Some(chain) = chain else {
            return Ok(Err(changed("the stored chain value differs from")));
        };
        return Ok(Ok(Some(Verified {
            size: signed.size,
            chain,
            range,
        })));
    }
    Ok(Ok(None))
}

/// Verifies the log once it is caught up (A2): from the last verified,
/// signed head when `keys` are given and `full` is not asked for, else from
/// the first event. An intact result is recorded as the new verified head,
/// signed, in the transaction that audits the verification.
pub async fn verify(
    ctx: &Context,
    actor: &Actor,
    origin: &str,
    keys: Option<ExportKeys<'_>>,
    full: bool,
) -> CommandResult<ChainCheck> {
    caught_up(ctx).await?;
    let checked = {
        let mut tx = ctx.store.begin_read().await?;
        let start = match &keys {
            Some(keys) if !full => verified_start(tx.as_mut(), origin, keys).await?,
            _ => Ok(None),
        };
        match start {
            Ok(start) => check_log(tx.as_mut(), origin, start, &mut |_| {}).await?,
            Err(broken) => broken,
        }
    };
    let mut tx = ctx.store.begin().await?;
    let mut record = ctx.actor_record(actor, AuditAction::AuditVerify);
    record.data = checked.check.to_value();
    ctx.audit(tx.as_mut(), &record).await?;
    if let (Some(keys), Some(reached)) = (&keys, &checked.reached) {
        let note = keys
            .signing
            .sign_checkpoint(origin, reached.size, &reached.range.root())
            .map_err(|_| CommandError::Internal("the verified head could not be signed".into()))?;
        tx.insert_verified_head(&VerifiedHead {
            tree_size: reached.size,
            chain_hash: reached.chain,
            note,
            verified_at: chrono::Utc::now(),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(checked.check)
}

pub use creditops_store::TreeHead;

/// Roots and proofs from the stored Merkle tree (the nodes the sequencer,
/// or SQLite's append, stores with each event), at one size: each answer
/// reads O(log n) nodes in one statement, whatever the log's size (A2, A4).
/// A node the table lacks is a broken log (409). Nodes below the head never
/// change, so the reads need no snapshot of their own: they share the
/// transaction the tree was opened in, in which [`StoredTree::record_read`]
/// then audits the read.
pub struct StoredTree {
    tx: Box<dyn Tx>,
    head: TreeHead,
}

impl StoredTree {
    /// The tree over every event committed before the call (caught up
    /// first). Where a sequencer links the events, the flush hands over the
    /// head it linked and the transaction to read in (usually its own
    /// round's, so linking, reading and recording the read commit once);
    /// otherwise the head is read.
    pub async fn open(ctx: &Context) -> CommandResult<Self> {
        if let Some(sequencer) = ctx.store.audit_sequencer() {
            let (head, tx) = sequencer.flush_audit_for_read(FLUSH_DEADLINE).await?;
            return Ok(Self { tx, head });
        }
        // The transaction the read is audited in (SQLite: the writer's).
        let mut tx = ctx.store.begin().await?;
        let size = tx.audit_size().await?;
        let root = read_nodes(tx.as_mut(), &NodePlan::root(size)).await?;
        let root = root.first().copied().unwrap_or_else(empty_root);
        Ok(Self {
            tx,
            head: TreeHead { size, root },
        })
    }

    pub fn head(&self) -> TreeHead {
        self.head
    }

    /// The hashes `plan` names, in the tree's transaction.
    async fn read(&mut self, plan: &NodePlan) -> CommandResult<Vec<Hash>> {
        read_nodes(self.tx.as_mut(), plan).await
    }

    /// [`record_read`], in the transaction the tree was read in (one
    /// transaction for an auditor's read and its audit).
    pub async fn record_read(
        self,
        ctx: &Context,
        actor: &Actor,
        action: AuditAction,
        data: Value,
        checkpoint: Option<&StoredCheckpoint>,
    ) -> CommandResult<()> {
        audit_read(ctx, self.tx, actor, action, data, checkpoint).await
    }

    /// The leaf hash and the inclusion proof of each leaf index in
    /// `indices` against [`StoredTree::head`], read in one statement; an
    /// index outside the tree is invalid input.
    pub async fn inclusion_proofs(
        &mut self,
        indices: &[u64],
    ) -> CommandResult<Vec<(Hash, Vec<Hash>)>> {
        let mut plan = NodePlan::default();
        let mut lengths = Vec::with_capacity(indices.len());
        for index in indices {
            let proof = NodePlan::inclusion(*index, self.head.size)
                .map_err(|e| CommandError::invalid(e.to_string()))?;
            lengths.push(proof.len());
            plan = plan.then(NodePlan::leaf(*index)).then(proof);
        }
        let hashes = self.read(&plan).await?;
        // Per index the leaf, then its proof.
        let mut rest = hashes.into_iter();
        let mut proofs = Vec::with_capacity(indices.len());
        for length in lengths {
            let leaf = rest.next().unwrap_or_else(empty_root);
            proofs.push((leaf, rest.by_ref().take(length).collect()));
        }
        Ok(proofs)
    }

    /// The roots at `old_size` and `new_size` and the consistency proof
    /// between them (`new_size` at most the head's size).
    pub async fn consistency_proof(
        &mut self,
        old_size: u64,
        new_size: u64,
    ) -> CommandResult<(Hash, Hash, Vec<Hash>)> {
        if new_size > self.head.size {
            return Err(CommandError::invalid(format!(
                "tree size {new_size} is larger than the log's {} events",
                self.head.size
            )));
        }
        let proof = NodePlan::consistency(old_size, new_size)
            .map_err(|e| CommandError::invalid(e.to_string()))?;
        let plan = NodePlan::root(old_size)
            .then(NodePlan::root(new_size))
            .then(proof);
        let mut hashes = self.read(&plan).await?.into_iter();
        let old_root = hashes.next().unwrap_or_else(empty_root);
        let new_root = hashes.next().unwrap_or_else(empty_root);
        Ok((old_root, new_root, hashes.collect()))
    }
}

/// The hashes `plan` names, read from the stored tree in one statement.
async fn read_nodes(tx: &mut dyn Tx, plan: &NodePlan) -> CommandResult<Vec<Hash>> {
    audit_bundle::stored_nodes(tx, plan)
        .await
        .map_err(|e| match e {
            ExportError::Tree(detail) => CommandError::conflict(format!(
                "the audit log's Merkle tree is incomplete: {detail}; run POST /v1/verify"
            )),
            other => other.into(),
        })
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

/// The export bundle of `selection` (A5), once the log is caught up: its
/// entries streamed into `entries`, the other files in the answer (see
/// [`audit_bundle::write_bundle`]).
pub async fn export_bundle<W: std::io::Write + Send>(
    ctx: &Context,
    origin: &str,
    keys: ExportKeys<'_>,
    selection: audit_bundle::Selection,
    created_at: chrono::DateTime<chrono::Utc>,
    entries: W,
) -> CommandResult<(audit_bundle::Prepared, W)> {
    caught_up(ctx).await?;
    let mut tx = ctx.store.begin_read().await?;
    let built = audit_bundle::write_bundle(
        tx.as_mut(),
        origin,
        keys,
        selection,
        created_at,
        entries,
        &mut |_| {},
    )
    .await?;
    Ok(built)
}

/// An export as a tar archive, ready to be handed out: the archive lives
/// in an unnamed temporary file (gone when the last handle closes), so
/// neither the entries nor the archive are ever in memory as a whole.
pub struct ExportArchive {
    pub prepared: audit_bundle::Prepared,
    pub file: std::fs::File,
    /// The archive's length in bytes.
    pub len: u64,
}

/// [`export_bundle`] as a tar archive (see [`ExportArchive`]).
pub async fn export_archive(
    ctx: &Context,
    origin: &str,
    keys: ExportKeys<'_>,
    selection: audit_bundle::Selection,
    created_at: chrono::DateTime<chrono::Utc>,
) -> CommandResult<ExportArchive> {
    use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
    let spooled = |e: std::io::Error| {
        tracing::error!(error = %e, "an export could not be spooled to a temporary file");
        CommandError::Internal("the export could not be spooled to a temporary file".into())
    };
    let spool = tempfile::tempfile().map_err(spooled)?;
    let (prepared, entries) = export_bundle(
        ctx,
        origin,
        keys,
        selection,
        created_at,
        BufWriter::new(spool),
    )
    .await?;
    let mut entries = entries.into_inner().map_err(|e| spooled(e.into_error()))?;
    // Copying the spool into the archive is blocking file IO.
    let built = tokio::task::spawn_blocking(move || -> std::io::Result<ExportArchive> {
        entries.seek(SeekFrom::Start(0))?;
        let archive = tempfile::tempfile()?;
        let mut out = audit_bundle::write_tar(
            BufWriter::new(archive),
            &prepared,
            BufReader::new(entries),
            created_at,
        )?;
        out.flush()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        let len = file.metadata()?.len();
        Ok(ExportArchive {
            prepared,
            file,
            len,
        })
    })
    .await
    .map_err(|e| CommandError::Internal(format!("the archive could not be built: {e}")))?;
    built.map_err(spooled)
}
