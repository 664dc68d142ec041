//! The audit service (internal audit): read-only access to the audit trail,
//! filtered and paged, and a full recomputation of the hash chain. The
//! auditors' own queries are audited too (A7).

pub use creditops_commands::audit_bundle as bundle;

mod records;

use axum::extract::State;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use creditops_audit::{AuditAction, SigningKey};
use creditops_commands::Context;
use creditops_commands::audit_trail::{self, ChainCheck, StoredTree, TreeHead};
use creditops_domain::{BorrowerId, CaseId};
use creditops_http::monitoring;
use creditops_http::views::CaseView;
use creditops_http::{ApiError, PathId, Principal, ProblemKind, Query, ServiceContext, openapi};
use creditops_store::{AuditFilter, StoredAuditEvent, StoredCheckpoint, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const SERVICE: &str = "audit";

/// The largest page of every list of this service.
const MAX_PAGE: u32 = 1000;

/// The log's origin line and the checkpoint signing key (kept outside the
/// database; without it the checkpoint routes answer 503).
pub struct AuditSettings {
    pub origin: String,
    pub signing_key: Option<Arc<SigningKey>>,
    /// Verifier keys of signing keys used before a rotation.
    pub retired_keys: Vec<creditops_audit::VerifierKey>,
}

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(verify))
        .routes(routes!(checkpoint))
        .routes(routes!(checkpoint_key))
        .routes(routes!(proof))
        .routes(routes!(consistency))
        .routes(routes!(read_case))
        .routes(routes!(export))
        .routes(routes!(reconcile_route))
        .routes(routes!(entitlements))
        .routes(routes!(deviating_decisions))
        .routes(routes!(monitoring_report))
        .merge(records::api())
}

/// This service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(SERVICE, api())
}

pub fn router(ctx: Arc<ServiceContext>, settings: AuditSettings) -> Router {
    let state = (ctx.clone(), Arc::new(settings));
    openapi::service_router(ctx, api(), state)
}

pub(crate) type AppState = (Arc<ServiceContext>, Arc<AuditSettings>);

/// Filters combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    #[param(value_type = Option<CaseId>, inline)]
    case_id: Option<String>,
    #[param(value_type = Option<BorrowerId>, inline)]
    borrower_id: Option<String>,
    /// Staff id, 1-128 characters.
    #[param(min_length = 1, max_length = 128)]
    actor: Option<String>,
    /// E.g. `case.second_vote`, 1-128 characters.
    #[param(min_length = 1, max_length = 128)]
    action: Option<String>,
    #[param(value_type = Option<EventOutcome>, inline)]
    outcome: Option<String>,
    /// RFC 3339; events recorded at or after.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; events recorded before.
    #[param(format = DateTime)]
    to: Option<String>,
    /// The `next` of the previous page.
    after: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// An event's outcome.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the accepted values of a query parameter
enum EventOutcome {
    Ok,
    Denied,
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

/// One audit event as stored, with its hashes.
#[derive(Debug, Serialize, ToSchema)]
struct EventView {
    seq: i64,
    event_id: uuid::Uuid,
    recorded_at: DateTime<Utc>,
    /// The event body (RFC 8785 canonical JSON), parsed.
    #[schema(value_type = Object)]
    body: Value,
    /// The body's exact bytes as text: what the leaf hash covers.
    body_text: String,
    /// Hex SHA-256.
    leaf_hash: String,
    /// Hex SHA-256.
    chain_hash: String,
}

impl EventView {
    fn new(e: &StoredAuditEvent) -> Self {
        Self {
            seq: e.seq,
            event_id: e.event_id,
            recorded_at: e.recorded_at,
            // The body is returned as stored (its exact bytes are what the chain hashes).
            body: serde_json::from_slice(&e.body).unwrap_or(Value::Null),
            body_text: String::from_utf8_lossy(&e.body).into_owned(),
            leaf_hash: hex_string(&e.leaf_hash),
            chain_hash: hex_string(&e.chain_hash),
        }
    }
}

/// One page of events.
#[derive(Debug, Serialize, ToSchema)]
struct EventPage {
    items: Vec<EventView>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<i64>,
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Audit events filtered by case, borrower, actor, action, outcome and time,
/// cursor-paged (A4); the query is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(Query<EventQuery>),
    responses((status = 200, description = "One page of events", body = EventPage)),
)]
async fn list_events(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    Query(q): Query<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let filter = q.into_filter()?;
    let events = audit_trail::events(&ctx.commands(), &principal, &filter).await?;
    let next = (events.len() == filter.limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EventPage {
        items: events.iter().map(EventView::new).collect(),
        next,
    }))
}

/// The result of recomputing the chain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the JSON of the command layer's `ChainCheck`
enum Verification {
    /// Every event verifies.
    Intact {
        /// Always true.
        ok: bool,
        events: u64,
        last_seq: Option<i64>,
        /// Hex chain hash of the last event.
        head: String,
        /// `full` (from the first event) or `incremental` (from the last
        /// verified, signed head).
        mode: String,
        /// The size of the verified head the check started from (0: full).
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    /// Recompute from the first event instead of from the last verified,
    /// signed head (default false).
    full: Option<bool>,
}

/// Verifies the log and names the first bad position (A2): from the last
/// verified, signed head (the events since, and the tree nodes they
/// complete), or with `full=true` from the first event. Without a signing
/// key every verification is full.
#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "events",
    params(Query<VerifyQuery>),
    responses((status = 200, description = "The verification result", body = Verification)),
)]
async fn verify(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    Query(q): Query<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    let keys = settings
        .signing_key
        .as_deref()
        .map(|signing| bundle::ExportKeys {
            signing,
            retired: &settings.retired_keys,
        });
    let full = q.full.unwrap_or(false);
    let result =
        audit_trail::verify(&ctx.commands(), &principal, &settings.origin, keys, full).await?;
    Ok(Json(result.to_value()))
}

/// Recomputes the chain over every stored event, in batches (the JSON of a
/// [`Verification`]).
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
    let check: ChainCheck = audit_trail::check_chain(tx, origin, progress).await?;
    Ok(check.to_value())
}

fn to_value(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

fn signing_key(settings: &AuditSettings) -> Result<&SigningKey, ApiError> {
    settings.signing_key.as_deref().ok_or_else(|| {
        ApiError::new(
            ProblemKind::Unavailable,
            "no checkpoint signing key is configured (--audit-key)",
        )
    })
}

/// Audits an auditor's read in its own transaction (A7).
async fn audit_read(
    ctx: &ServiceContext,
    principal: &Principal,
    action: AuditAction,
    data: Value,
) -> Result<(), ApiError> {
    hand_out(ctx, principal, action, data, None).await
}

/// Audits a read (A7) and, in the same transaction, records the signed
/// checkpoint it hands out, so a later export can prove consistency with it.
async fn hand_out(
    ctx: &ServiceContext,
    principal: &Principal,
    action: AuditAction,
    data: Value,
    checkpoint: Option<&StoredCheckpoint>,
) -> Result<(), ApiError> {
    Ok(audit_trail::record_read(&ctx.commands(), principal, action, data, checkpoint).await?)
}

fn handed_out(head: TreeHead, note: &str) -> StoredCheckpoint {
    StoredCheckpoint {
        tree_size: head.size,
        root: head.root,
        note: note.to_owned(),
        signed_at: Utc::now(),
    }
}

/// The stored tree over the whole log and a signed note over its head.
async fn signed_tree(
    ctx: &ServiceContext,
    settings: &AuditSettings,
) -> Result<(StoredTree, String), ApiError> {
    let key = signing_key(settings)?;
    let tree = StoredTree::open(&ctx.commands()).await?;
    let head = tree.head();
    let note = key
        .sign_checkpoint(&settings.origin, head.size, &head.root)
        .map_err(|_| ApiError::new(ProblemKind::Internal, "the checkpoint could not be signed"))?;
    Ok((tree, note))
}

/// A signed checkpoint over the whole log.
#[derive(Debug, Serialize, ToSchema)]
struct Checkpoint {
    origin: String,
    size: u64,
    /// Hex RFC 6962 Merkle root.
    root: String,
    /// The C2SP signed note (`origin\nsize\nbase64(root)\n` and its Ed25519 signature line).
    note: String,
}

/// The configured signing key answers 503 when absent.
const NO_KEY: &str = "No checkpoint signing key is configured, or the sequencer cannot catch up";

/// A signed checkpoint (C2SP signed note) over the whole log (A2); handed
/// out checkpoints are recorded so a later export proves consistency with them.
#[utoipa::path(
    get,
    path = "/v1/checkpoint",
    tag = "checkpoints",
    responses(
        (status = 200, description = "A freshly signed checkpoint", body = Checkpoint),
        (status = 409, description = "The audit log is broken; run POST /v1/verify"),
        (status = 503, description = NO_KEY),
    ),
)]
async fn checkpoint(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
) -> Result<Json<Checkpoint>, ApiError> {
    let (tree, note) = signed_tree(&ctx, &settings).await?;
    let head = tree.head();
    tree.record_read(
        &ctx.commands(),
        &principal,
        AuditAction::AuditCheckpoint,
        json!({"size": head.size}),
        Some(&handed_out(head, &note)),
    )
    .await?;
    Ok(Json(Checkpoint {
        origin: settings.origin.clone(),
        size: head.size,
        root: hex_string(&head.root),
        note,
    }))
}

/// The checkpoint signing key, and the keys retired by rotations.
#[derive(Debug, Serialize, ToSchema)]
struct CheckpointKey {
    /// The signed-note key name (the origin).
    name: String,
    /// Hex key id.
    key_id: String,
    /// C2SP verifier key string: publish it through a second channel.
    verifier_key: String,
    public_key_pem: String,
    retired: Vec<RetiredKey>,
}

/// A verifier key of a key used before a rotation.
#[derive(Debug, Serialize, ToSchema)]
struct RetiredKey {
    key_id: String,
    verifier_key: String,
    public_key_pem: String,
}

/// The checkpoint signing key: verifier key string and public key PEM.
#[utoipa::path(
    get,
    path = "/v1/checkpoint/key",
    tag = "checkpoints",
    responses(
        (status = 200, description = "The verifier keys", body = CheckpointKey),
        (status = 503, description = "No checkpoint signing key is configured"),
    ),
)]
async fn checkpoint_key(
    State((_, settings)): State<AppState>,
    _principal: Principal,
) -> Result<Json<CheckpointKey>, ApiError> {
    let key = signing_key(&settings)?;
    let verifier = key.verifier_key();
    Ok(Json(CheckpointKey {
        name: key.name().to_owned(),
        key_id: hex_string(&key.key_id()),
        verifier_key: verifier.to_string(),
        public_key_pem: verifier.public_key_pem(),
        retired: settings
            .retired_keys
            .iter()
            .map(|k| RetiredKey {
                key_id: hex_string(&k.key_id()),
                verifier_key: k.to_string(),
                public_key_pem: k.public_key_pem(),
            })
            .collect(),
    }))
}

/// An RFC 9162 inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
struct InclusionProof {
    seq: u64,
    leaf_index: u64,
    /// Hex.
    leaf_hash: String,
    tree_size: u64,
    /// Hex Merkle root the proof leads to.
    root: String,
    /// Hex hashes, leaf to root.
    proof: Vec<String>,
    /// The signed note over `tree_size` and `root`.
    checkpoint: String,
}

/// Inclusion proof of event `seq` against a freshly signed checkpoint (A4).
#[utoipa::path(
    get,
    path = "/v1/events/{id}/proof",
    tag = "events",
    params(("id" = u64, Path, description = "The event's sequence number (from 1)", minimum = 1)),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 409, description = "The audit log is broken; run POST /v1/verify"),
        (status = 503, description = NO_KEY),
    ),
)]
async fn proof(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    PathId(seq): PathId<u64>,
) -> Result<Json<InclusionProof>, ApiError> {
    let (mut tree, note) = signed_tree(&ctx, &settings).await?;
    let head = tree.head();
    if seq == 0 || seq > head.size {
        return Err(ApiError::not_found("no event with that sequence number"));
    }
    let (leaf, path) = tree
        .inclusion_proofs(&[seq - 1])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("no event with that sequence number"))?;
    tree.record_read(
        &ctx.commands(),
        &principal,
        AuditAction::AuditProof,
        json!({"seq": seq, "size": head.size}),
        Some(&handed_out(head, &note)),
    )
    .await?;
    Ok(Json(InclusionProof {
        seq,
        leaf_index: seq - 1,
        leaf_hash: hex_string(&leaf),
        tree_size: head.size,
        root: hex_string(&head.root),
        proof: path.iter().map(|h| hex_string(h)).collect(),
        checkpoint: note,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    /// The tree size of the checkpoint you kept.
    from: u64,
    /// Default: the log's size now.
    to: Option<u64>,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Serialize, ToSchema)]
struct ConsistencyProof {
    from: u64,
    to: u64,
    /// Hex.
    from_root: String,
    /// Hex.
    to_root: String,
    /// Hex hashes.
    proof: Vec<String>,
    /// A signed note over the whole log now.
    checkpoint: String,
}

/// RFC 9162 consistency proof: the log of size `to` extends the log of size
/// `from` without rewriting it (A2: truncation or rewrite beyond a published
/// checkpoint is detected).
#[utoipa::path(
    get,
    path = "/v1/consistency",
    tag = "checkpoints",
    params(Query<ConsistencyQuery>),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 409, description = "The audit log is broken; run POST /v1/verify"),
        (status = 503, description = NO_KEY),
    ),
)]
async fn consistency(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let (mut tree, note) = signed_tree(&ctx, &settings).await?;
    let size = tree.head().size;
    let to = q.to.unwrap_or(size);
    if q.from > to || to > size {
        return Err(ApiError::validation(format!(
            "from and to must satisfy 0 <= from <= to <= {size} (the log's size)"
        )));
    }
    let (old_root, new_root, path) = tree.consistency_proof(q.from, to).await?;
    tree.record_read(
        &ctx.commands(),
        &principal,
        AuditAction::AuditConsistency,
        json!({"from": q.from, "to": to}),
        None,
    )
    .await?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to,
        from_root: hex_string(&old_root),
        to_root: hex_string(&new_root),
        proof: path.iter().map(|h| hex_string(h)).collect(),
        checkpoint: note,
    }))
}

/// At most this many missing rows are listed (the count says whether
/// there are more).
const RECONCILE_LIMIT: u32 = 1000;

/// Reconciliation (A1): business rows whose audit event is missing (the JSON
/// of a [`Reconciliation`]). Every committed event counts, linked or not yet
/// linked by the sequencer.
pub async fn reconcile(store: &dyn creditops_store::Store) -> Result<Value, ApiError> {
    let rows = audit_trail::unaudited_rows(store, RECONCILE_LIMIT + 1).await?;
    let truncated = rows.len() > RECONCILE_LIMIT as usize;
    let missing: Vec<MissingEvent> = rows
        .iter()
        .take(RECONCILE_LIMIT as usize)
        .map(|row| MissingEvent {
            table: row.table.clone(),
            key: row.key.clone(),
            audit_event_id: row.audit_event_id,
        })
        .collect();
    Ok(to_value(&Reconciliation {
        ok: missing.is_empty(),
        missing,
        truncated,
    }))
}

/// Business rows whose audit event is missing.
#[derive(Debug, Serialize, ToSchema)]
struct Reconciliation {
    /// No row lacks its event.
    ok: bool,
    /// At most 1000 rows.
    missing: Vec<MissingEvent>,
    /// More rows are missing their event than listed.
    truncated: bool,
}

/// A business row whose audit event does not exist.
#[derive(Debug, Serialize, ToSchema)]
struct MissingEvent {
    table: String,
    key: String,
    /// Null for rows written before rows carried one.
    audit_event_id: Option<uuid::Uuid>,
}

/// Borrowers, cases, votes and decisions whose audit event is missing (A1);
/// the read is audited.
#[utoipa::path(
    get,
    path = "/v1/reconcile",
    tag = "events",
    responses((status = 200, description = "The reconciliation", body = Reconciliation)),
)]
async fn reconcile_route(
    State((ctx, _)): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let report = reconcile(ctx.store.as_ref()).await?;
    audit_read(
        &ctx,
        &principal,
        AuditAction::AuditReconcile,
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
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "cases",
    params(PathId<CaseId>),
    responses((status = 200, description = "The case", body = CaseView)),
)]
async fn read_case(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<Json<CaseView>, ApiError> {
    let case = audit_trail::read_case(&ctx.commands(), &principal, id).await?;
    Ok(Json(CaseView::new(&case)))
}

/// By sequence numbers or by time, not both; nothing selects the whole log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// First sequence number (default 1).
    from_seq: Option<i64>,
    /// Last sequence number (default: the last).
    to_seq: Option<i64>,
    /// RFC 3339; `[from, to)` on the events' `ts` (not with the seq bounds).
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339.
    #[param(format = DateTime)]
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
/// `creditops audit export`, its entries streamed and checked one by one
/// against the stored tree; the export is an audit event that commits
/// before the archive is handed out.
#[utoipa::path(
    post,
    path = "/v1/exports",
    tag = "exports",
    params(Query<ExportQuery>),
    responses(
        (status = 200, description = "The bundle as a tar archive", content_type = "application/x-tar", body = Vec<u8>),
        (status = 409, description = "The selection holds no events, or the audit log is broken (A2)"),
        (status = 503, description = NO_KEY),
    ),
)]
async fn export(
    State((ctx, settings)): State<AppState>,
    principal: Principal,
    Query(query): Query<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    let keys = bundle::ExportKeys {
        signing: signing_key(&settings)?,
        retired: &settings.retired_keys,
    };
    let selection = query.selection()?;
    let commands: Context = ctx.commands();
    let archive =
        audit_trail::export_archive(&commands, &settings.origin, keys, selection, Utc::now())
            .await?;
    let prepared = &archive.prepared;
    hand_out(
        &ctx,
        &principal,
        AuditAction::AuditExported,
        prepared.audit_data(),
        Some(&prepared.checkpoint),
    )
    .await?;
    Ok(creditops_http::download::tar_attachment(
        std::sync::Arc::new(archive.file),
        archive.len,
        &format!("{}.tar", prepared.dir_name()),
    ))
}

/// Who holds which role and competence level, since when, and which
/// approved proposal granted it (proposer, approver, approval time); an
/// entry loaded by the bootstrap import says so. For the periodic review of
/// entitlements (AT 4.3.1); the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/reports/entitlements",
    tag = "reports",
    params(creditops_http::Query<creditops_http::reports::FormatQuery>),
    responses((
        status = 200,
        description = "The report as JSON or CSV",
        content(
            (creditops_http::reports::EntitlementReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn entitlements(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    headers: axum::http::HeaderMap,
    creditops_http::Query(query): creditops_http::Query<creditops_http::reports::FormatQuery>,
) -> Result<axum::response::Response, ApiError> {
    creditops_http::reports::entitlement_report(&ctx, &principal, &headers, &query).await
}

/// The deviating decisions of a period with their votes (L11), as the risk
/// service serves them; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/reports/deviating-decisions",
    tag = "reports",
    params(creditops_http::Query<creditops_http::reports::DeviatingQuery>),
    responses((
        status = 200,
        description = "The report as JSON or CSV",
        content(
            (creditops_http::reports::DeviatingReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn deviating_decisions(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    headers: axum::http::HeaderMap,
    creditops_http::Query(query): creditops_http::Query<creditops_http::reports::DeviatingQuery>,
) -> Result<axum::response::Response, ApiError> {
    creditops_http::reports::deviating_report(&ctx, &principal, &headers, &query, true).await
}

/// The monitoring report (L6-L10): open reviews, the watch list, borrowers
/// by stage, the milestones of current plans and provisions, for internal audit; the read is audited (A7).
#[utoipa::path(
    get,
    path = "/v1/reports/monitoring",
    tag = "reports",
    params(creditops_http::Query<monitoring::MonitoringReportQuery>),
    responses((
        status = 200,
        description = "The report as JSON, or one section as CSV",
        content(
            (monitoring::MonitoringReport = "application/json"),
            (String = "text/csv"),
        ),
    )),
)]
async fn monitoring_report(
    State((ctx, _)): State<AppState>,
    principal: Principal,
    headers: axum::http::HeaderMap,
    creditops_http::Query(query): creditops_http::Query<monitoring::MonitoringReportQuery>,
) -> Result<axum::response::Response, ApiError> {
    monitoring::monitoring_report(&ctx, &principal, &headers, &query, true).await
}
