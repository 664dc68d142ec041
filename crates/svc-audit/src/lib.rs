//! The audit service (internal audit): read-only access to the audit trail,
//! filtered and paged, and a full recomputation of the hash chain. The
//! auditors' own queries are audited too (A7).

pub mod bundle;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use creditops_audit::{ChainVerifier, MerkleTree, SigningKey, hash_from_slice};
use creditops_domain::{BorrowerId, CaseId};
use creditops_http::{
    ApiError, Operation, PathId, Principal, ProblemKind, Query, ServiceContext, health_routes,
    secure,
};
use creditops_store::{AuditFilter, StoredAuditEvent, StoredCheckpoint, Tx};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub const SERVICE: &str = "audit";

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        path: "/v1/events",
        summary: "Audit events filtered by case, borrower, actor, action, outcome and time, cursor-paged",
    },
    Operation {
        method: "POST",
        path: "/v1/verify",
        summary: "Recompute the whole hash chain; names the first bad position",
    },
    Operation {
        method: "GET",
        path: "/v1/checkpoint",
        summary: "A signed checkpoint (C2SP signed note) over the whole log",
    },
    Operation {
        method: "GET",
        path: "/v1/checkpoint/key",
        summary: "The checkpoint signing key: verifier key string and public key PEM",
    },
    Operation {
        method: "GET",
        path: "/v1/cases/{id}",
        summary: "A credit case with its votes and decision record (read-only, audited)",
    },
    Operation {
        method: "GET",
        path: "/v1/consistency",
        summary: "Consistency proof between tree sizes `from` and `to` (default: now)",
    },
    Operation {
        method: "GET",
        path: "/v1/events/{id}/proof",
        summary: "Inclusion proof of event `seq` against a freshly signed checkpoint",
    },
    Operation {
        method: "GET",
        path: "/v1/reconcile",
        summary: "Borrowers, cases, votes and decisions whose audit event is missing (audited)",
    },
    Operation {
        method: "POST",
        path: "/v1/exports",
        summary: "A signed export bundle for a regulator as a tar archive (audited)",
    },
];

const MAX_PAGE: u32 = 1000;
const VERIFY_BATCH: u32 = 5000;
/// How long a read waits for the sequencer to link what committed before it.
const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Links every event committed before this request first (PostgreSQL links
/// after commit), so an auditor never reads a log that lags their own
/// actions; 503 if the sequencer cannot catch up in time.
async fn caught_up(ctx: &ServiceContext) -> Result<(), ApiError> {
    Ok(ctx.store.flush_audit(FLUSH_DEADLINE).await?)
}

/// The log's origin line and the checkpoint signing key (kept outside the
/// database; without it the checkpoint routes answer 503).
pub struct AuditSettings {
    pub origin: String,
    pub signing_key: Option<Arc<SigningKey>>,
    /// Verifier keys of signing keys used before a rotation.
    pub retired_keys: Vec<creditops_audit::VerifierKey>,
}

pub fn router(ctx: Arc<ServiceContext>, settings: AuditSettings) -> Router {
    let state = (ctx.clone(), Arc::new(settings));
    let business = Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/verify", post(verify))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/checkpoint/key", get(checkpoint_key))
        .route("/v1/events/{id}/proof", get(proof))
        .route("/v1/consistency", get(consistency))
        .route("/v1/cases/{id}", get(read_case))
        .route("/v1/exports", post(export))
        .route("/v1/reconcile", get(reconcile_route))
        .with_state(state);
    secure(business, ctx.clone()).merge(health_routes(ctx, OPERATIONS))
}

type AppState = (Arc<ServiceContext>, Arc<AuditSettings>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    case_id: Option<String>,
    borrower_id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::validation(format!("{name} must be an RFC 3339 timestamp")))
        })
        .transpose()
}

fn bounded(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > 128 => Err(ApiError::validation(format!(
            "{name} must be 1-128 characters"
        ))),
        other => Ok(other),
    }
}

impl EventQuery {
    fn into_filter(self) -> Result<AuditFilter, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::validation(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        if let Some(outcome) = &self.outcome
            && !matches!(outcome.as_str(), "ok" | "denied")
        {
            return Err(ApiError::validation("outcome must be \"ok\" or \"denied\""));
        }
        Ok(AuditFilter {
            case_id: self
                .case_id
                .as_deref()
                .map(str::parse::<CaseId>)
                .transpose()
                .map_err(|_| ApiError::validation("case_id must be a case id"))?,
            borrower_id: self
                .borrower_id
                .as_deref()
                .map(str::parse::<BorrowerId>)
                .transpose()
                .map_err(|_| ApiError::validation("borrower_id must be a borrower id"))?,
            actor: bounded("actor", self.actor)?,
            action: bounded("action", self.action)?,
            outcome: self.outcome,
            from: parse_time("from", self.from.as_deref())?,
            to: parse_time("to", self.to.as_deref())?,
            after_seq: self.after,
            limit,
        })
    }
}

fn event_json(e: &StoredAuditEvent) -> Value {
    // The body is returned as stored (its exact bytes are what the chain hashes).
    let body: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
    json!({
        "seq": e.seq,
        "event_id": e.event_id,
        "recorded_at": e.recorded_at,
        "body": body,
        "body_text": String::from_utf8_lossy(&e.body),
        "leaf_hash": hex_string(&e.leaf_hash),
        "chain_hash": hex_string(&e.chain_hash),
    })
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn list_events(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = q.into_filter()?;
    caught_up(&ctx).await?;
    let mut tx = ctx.store.begin().await?;
    let events = tx.audit_events(&filter).await?;
    let mut record = principal.record(&ctx, "audit.query");
    record.data = json!({
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
    let next = (events.len() == filter.limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({
        "items": events.iter().map(event_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

async fn verify(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    caught_up(&ctx).await?;
    let result = {
        let mut tx = ctx.store.begin_read().await?;
        verify_chain(tx.as_mut(), &settings.origin).await?
    };
    let mut tx = ctx.store.begin().await?;
    let mut record = principal.record(&ctx, "audit.verify");
    record.data = result.clone();
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(Json(result))
}

/// Recomputes the chain over every stored event, in batches.
pub async fn verify_chain(tx: &mut dyn Tx, origin: &str) -> Result<Value, ApiError> {
    verify_chain_with_progress(tx, origin, &mut |_| {}).await
}

/// [`verify_chain`], telling `progress` the number of events checked so far
/// after each batch (for a progress bar).
pub async fn verify_chain_with_progress(
    tx: &mut dyn Tx,
    origin: &str,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Value, ApiError> {
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
                return Ok(json!({
                    "ok": false,
                    "first_bad_seq": failure.seq,
                    "reason": failure.reason,
                }));
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
    Ok(
        json!({"ok": true, "events": report.events, "last_seq": report.last_seq, "head": report.head}),
    )
}

fn signing_key(settings: &AuditSettings) -> Result<&SigningKey, ApiError> {
    settings.signing_key.as_deref().ok_or_else(|| {
        ApiError::new(
            ProblemKind::Unavailable,
            "no checkpoint signing key is configured (--audit-key)",
        )
    })
}

/// The Merkle tree over every stored leaf. Rebuilt per request: O(n) in the
/// log size, which a persisted tree (the sequencer's job) will replace.
async fn load_tree(tx: &mut dyn Tx) -> Result<MerkleTree, ApiError> {
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
                return Err(ApiError::new(
                    ProblemKind::Conflict,
                    format!(
                        "the audit log is broken at sequence {}; run POST /v1/verify",
                        e.seq
                    ),
                ));
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

/// Audits an auditor's read in its own transaction (A7).
async fn audit_read(
    ctx: &ServiceContext,
    principal: &Principal,
    action: &str,
    data: Value,
) -> Result<(), ApiError> {
    hand_out(ctx, principal, action, data, None).await
}

/// Audits a read (A7) and, in the same transaction, records the signed
/// checkpoint it hands out, so a later export can prove consistency with it.
async fn hand_out(
    ctx: &ServiceContext,
    principal: &Principal,
    action: &str,
    data: Value,
    checkpoint: Option<&StoredCheckpoint>,
) -> Result<(), ApiError> {
    let mut tx = ctx.store.begin().await?;
    let mut record = principal.record(ctx, action);
    record.data = data;
    ctx.audit(tx.as_mut(), &record).await?;
    if let Some(checkpoint) = checkpoint {
        tx.insert_checkpoint(checkpoint).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn handed_out(tree: &MerkleTree, note: &str) -> StoredCheckpoint {
    StoredCheckpoint {
        tree_size: tree.size(),
        root: tree.root(),
        note: note.to_owned(),
        signed_at: Utc::now(),
    }
}

async fn signed_tree(
    ctx: &ServiceContext,
    settings: &AuditSettings,
) -> Result<(MerkleTree, String), ApiError> {
    let key = signing_key(settings)?;
    caught_up(ctx).await?;
    let tree = {
        let mut tx = ctx.store.begin_read().await?;
        load_tree(tx.as_mut()).await?
    };
    let note = key
        .sign_checkpoint(&settings.origin, tree.size(), &tree.root())
        .map_err(|_| ApiError::new(ProblemKind::Internal, "the checkpoint could not be signed"))?;
    Ok((tree, note))
}

async fn checkpoint(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let (tree, note) = signed_tree(&ctx, &settings).await?;
    hand_out(
        &ctx,
        &principal,
        "audit.checkpoint",
        json!({"size": tree.size()}),
        Some(&handed_out(&tree, &note)),
    )
    .await?;
    Ok(Json(json!({
        "origin": settings.origin,
        "size": tree.size(),
        "root": hex_string(&tree.root()),
        "note": note,
    })))
}

async fn checkpoint_key(
    State((_, settings)): State<AppState>,
    _principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let key = signing_key(&settings)?;
    let verifier = key.verifier_key();
    Ok(Json(json!({
        "name": key.name(),
        "key_id": hex_string(&key.key_id()),
        "verifier_key": verifier.to_string(),
        "public_key_pem": verifier.public_key_pem(),
        "retired": settings
            .retired_keys
            .iter()
            .map(|k| json!({
                "key_id": hex_string(&k.key_id()),
                "verifier_key": k.to_string(),
                "public_key_pem": k.public_key_pem(),
            }))
            .collect::<Vec<_>>(),
    })))
}

async fn proof(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    PathId(seq): PathId<u64>,
) -> Result<Json<Value>, ApiError> {
    let (tree, note) = signed_tree(&ctx, &settings).await?;
    if seq == 0 || seq > tree.size() {
        return Err(ApiError::not_found("no event with that sequence number"));
    }
    let path = tree
        .inclusion_proof(seq - 1, tree.size())
        .map_err(|_| ApiError::not_found("no event with that sequence number"))?;
    let leaf = tree
        .leaf(seq - 1)
        .ok_or_else(|| ApiError::not_found("no event with that sequence number"))?;
    hand_out(
        &ctx,
        &principal,
        "audit.proof",
        json!({"seq": seq, "size": tree.size()}),
        Some(&handed_out(&tree, &note)),
    )
    .await?;
    Ok(Json(json!({
        "seq": seq,
        "leaf_index": seq - 1,
        "leaf_hash": hex_string(leaf),
        "tree_size": tree.size(),
        "root": hex_string(&tree.root()),
        "proof": path.iter().map(|h| hex_string(h)).collect::<Vec<_>>(),
        "checkpoint": note,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

/// RFC 9162 consistency proof: the log of size `to` extends the log of size
/// `from` without rewriting it (A2: truncation or rewrite beyond a published
/// checkpoint is detected).
async fn consistency(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<Value>, ApiError> {
    let (tree, note) = signed_tree(&ctx, &settings).await?;
    let to = q.to.unwrap_or(tree.size());
    if q.from > to || to > tree.size() {
        return Err(ApiError::validation(format!(
            "from and to must satisfy 0 <= from <= to <= {} (the log's size)",
            tree.size()
        )));
    }
    let path = tree
        .consistency_proof(q.from, to)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let old_root = tree
        .root_at(q.from)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let new_root = tree
        .root_at(to)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    audit_read(
        &ctx,
        &principal,
        "audit.consistency",
        json!({"from": q.from, "to": to}),
    )
    .await?;
    Ok(Json(json!({
        "from": q.from,
        "to": to,
        "from_root": hex_string(&old_root),
        "to_root": hex_string(&new_root),
        "proof": path.iter().map(|h| hex_string(h)).collect::<Vec<_>>(),
        "checkpoint": note,
    })))
}

/// At most this many missing rows are listed (the count says whether
/// there are more).
const RECONCILE_LIMIT: u32 = 1000;

/// Reconciliation (A1): business rows whose audit event is missing. Every
/// committed event counts, linked or not yet linked by the sequencer.
pub async fn reconcile(store: &dyn creditops_store::Store) -> Result<Value, ApiError> {
    let mut tx = store.begin_read().await?;
    let rows = tx.unaudited_rows(RECONCILE_LIMIT + 1).await?;
    let truncated = rows.len() > RECONCILE_LIMIT as usize;
    let missing: Vec<Value> = rows
        .iter()
        .take(RECONCILE_LIMIT as usize)
        .map(|row| {
            json!({
                "table": row.table,
                "key": row.key,
                "audit_event_id": row.audit_event_id,
            })
        })
        .collect();
    Ok(json!({"ok": missing.is_empty(), "missing": missing, "truncated": truncated}))
}

async fn reconcile_route(
    State((ctx, _)): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let report = reconcile(ctx.store.as_ref()).await?;
    audit_read(
        &ctx,
        &principal,
        "audit.reconcile",
        json!({
            "missing": report["missing"].as_array().map_or(0, Vec::len),
            "truncated": report["truncated"],
        }),
    )
    .await?;
    Ok(Json(report))
}

/// Internal audit reads every credit file with its votes and decision record
/// (A7, V9); the read itself is audited.
async fn read_case(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<Json<Value>, ApiError> {
    let case = {
        let mut tx = ctx.store.begin_read().await?;
        tx.case(id)
            .await?
            .ok_or_else(|| ApiError::not_found("no case with that id"))?
    };
    let mut tx = ctx.store.begin().await?;
    let mut record = principal.record(&ctx, "audit.case_read");
    record.case_id = Some(case.id.to_string());
    record.borrower_id = Some(case.file.borrower_id.to_string());
    ctx.audit(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(Json(creditops_http::views::case_json(&case)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    from_seq: Option<i64>,
    to_seq: Option<i64>,
    /// RFC 3339; `[from, to)` on the events' `ts` (not with the seq bounds).
    from: Option<String>,
    to: Option<String>,
}

impl ExportQuery {
    fn selection(&self) -> Result<bundle::Selection, ApiError> {
        let from = parse_time("from", self.from.as_deref())?;
        let to = parse_time("to", self.to.as_deref())?;
        match (
            from.is_some() || to.is_some(),
            self.from_seq.is_some() || self.to_seq.is_some(),
        ) {
            (true, true) => Err(ApiError::validation(
                "select either by sequence number or by time, not both",
            )),
            (true, false) => Ok(bundle::Selection::Time(from, to)),
            (false, _) => Ok(bundle::Selection::Seq(self.from_seq, self.to_seq)),
        }
    }
}

/// The regulator export (A5) as a tar archive: the same bundle as
/// `creditops audit export`, built from a verified log; the export is an
/// audit event that commits before the archive is handed out.
async fn export(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    Query(query): Query<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let keys = bundle::ExportKeys {
        signing: signing_key(&settings)?,
        retired: &settings.retired_keys,
    };
    let selection = query.selection()?;
    caught_up(&ctx).await?;
    let (events, previous) = {
        let mut tx = ctx.store.begin_read().await?;
        let events = bundle::load_verified_log(tx.as_mut(), &settings.origin)
            .await
            .map_err(export_error)?;
        let size = u64::try_from(events.len()).unwrap_or(u64::MAX);
        let previous = bundle::previous_checkpoint(tx.as_mut(), size, keys)
            .await
            .map_err(export_error)?;
        (events, previous)
    };
    let now = Utc::now();
    let prepared = bundle::prepare(
        &events,
        &settings.origin,
        keys,
        selection.resolve(&events).map_err(export_error)?,
        previous.as_deref(),
        now,
    )
    .map_err(export_error)?;
    let dir = format!(
        "creditops-audit-{}-{}",
        prepared.first_seq, prepared.last_seq
    );
    let archive = bundle::to_tar(&dir, &prepared.files, now)
        .map_err(|_| ApiError::new(ProblemKind::Internal, "the archive could not be built"))?;
    hand_out(
        &ctx,
        &principal,
        "audit.exported",
        prepared.audit_data(),
        Some(&prepared.checkpoint),
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{dir}.tar\""),
            ),
        ],
        archive,
    )
        .into_response())
}

fn export_error(e: bundle::ExportError) -> ApiError {
    match e {
        bundle::ExportError::Usage(detail) => ApiError::validation(detail),
        bundle::ExportError::Empty => ApiError::new(ProblemKind::Conflict, e.to_string()),
        bundle::ExportError::Broken { .. } => {
            ApiError::new(ProblemKind::Conflict, e.to_string()).with_rule("A2")
        }
        bundle::ExportError::Store(store) => store.into(),
        bundle::ExportError::Bundle(_) => {
            ApiError::new(ProblemKind::Internal, "the bundle could not be built")
        }
    }
}
