//! The admin service (user administrators): the staff directory and every
//! four-eyes change to it and to the rules (S3, S9). A change is proposed by
//! one administrator and takes effect only when a different administrator
//! approves it; role assignments are checked against the SoD matrix when
//! proposed and again when approved. Administrators hold no business role and
//! no route here touches a credit case (S7).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use creditops_audit::AuditAction;
use creditops_domain::RuleId;
use creditops_domain::rules::{CompetenceOrder, DivergencePolicy, MAX_LEVEL};
use creditops_domain::{
    CompetenceGrant, DomainError, Role, RoleAssignment, RuleParameters, RuleSet, Side, StaffId,
    StaffMember, Timestamp,
};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, ProblemKind, Query,
    ServiceContext, openapi, run_command,
};
use creditops_store::{ChangeProposal, ProposalKind, ProposalStatus, Tx};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const SERVICE: &str = "admin";

/// The business routes with their documentation (one source for both).
pub fn api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(routes!(list_staff))
        .routes(routes!(read_staff))
        .routes(routes!(propose, list_proposals))
        .routes(routes!(read_proposal))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(list_rules))
}

/// This service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(SERVICE, api())
}

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    openapi::service_router(ctx.clone(), api(), ctx)
}

/// Staff ids.
#[derive(Debug, Serialize, ToSchema)]
struct StaffIds {
    items: Vec<StaffId>,
}

/// Staff ids in the directory.
#[utoipa::path(
    get,
    path = "/v1/staff",
    tag = "staff",
    responses((status = 200, description = "Every staff id", body = StaffIds)),
)]
async fn list_staff(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<StaffIds>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(axum::Json(StaffIds {
        items: tx.staff_ids().await?,
    }))
}

/// A person with dated units, roles and competence levels (S4).
#[utoipa::path(
    get,
    path = "/v1/staff/{id}",
    tag = "staff",
    params(PathId<StaffId>),
    responses((status = 200, description = "The person", body = StaffMember)),
)]
async fn read_staff(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<StaffId>,
) -> Result<axum::Json<StaffMember>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    let member = tx
        .staff_member(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no staff member with that id"))?;
    Ok(axum::Json(member))
}

/// A proposed change; the shape depends on `kind`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Change {
    RoleAssignment {
        staff_id: StaffId,
        role: Role,
        valid_from: DateTime<Utc>,
        #[serde(default)]
        valid_to: Option<DateTime<Utc>>,
    },
    CompetenceGrant {
        staff_id: StaffId,
        side: Side,
        level: u8,
        valid_from: DateTime<Utc>,
        #[serde(default)]
        valid_to: Option<DateTime<Utc>>,
    },
    RuleSet {
        valid_from: DateTime<Utc>,
        parameters: RuleParameters,
    },
}

impl Change {
    fn kind(&self) -> ProposalKind {
        match self {
            Change::RoleAssignment { .. } => ProposalKind::RoleAssignment,
            Change::CompetenceGrant { .. } => ProposalKind::CompetenceGrant,
            Change::RuleSet { .. } => ProposalKind::RuleSet,
        }
    }

    fn target(&self) -> Option<&StaffId> {
        match self {
            Change::RoleAssignment { staff_id, .. } | Change::CompetenceGrant { staff_id, .. } => {
                Some(staff_id)
            }
            Change::RuleSet { .. } => None,
        }
    }
}

fn check_period(from: Timestamp, to: Option<Timestamp>) -> Result<(), ApiError> {
    if to.is_some_and(|to| to <= from) {
        return Err(ApiError::validation("valid_to must be after valid_from"));
    }
    Ok(())
}

/// Validates a change against the current state. Runs at proposal and again
/// at approval, since the directory may have changed in between.
async fn validate_change(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    change: &Change,
    actor: &StaffId,
    now: Timestamp,
) -> Result<(), ApiError> {
    if change.target() == Some(actor) {
        return Err(DomainError::rule(
            RuleId::S7,
            "nobody may change their own roles or competences",
        )
        .into());
    }
    match change {
        Change::RoleAssignment {
            staff_id,
            role,
            valid_from,
            valid_to,
        } => {
            check_period(*valid_from, *valid_to)?;
            let member = tx
                .staff_member(staff_id)
                .await?
                .ok_or_else(|| ApiError::validation("staff_id names no staff member"))?;
            let new = RoleAssignment {
                role: *role,
                valid_from: *valid_from,
                valid_to: *valid_to,
            };
            ctx.sod.check_assignment(&member.roles, &new)?;
            let home = ctx.sod.home_side(*role).ok_or_else(|| {
                ApiError::new(
                    ProblemKind::Unavailable,
                    "the SoD matrix has no side for this role",
                )
            })?;
            let side_then = member.voter_at(*valid_from).map(|v| v.side);
            if side_then != Some(home) {
                return Err(DomainError::rule(
                    RuleId::S3,
                    format!(
                        "role {role} belongs to the {home} side, but {staff_id} is not in a unique \
                         {home} unit on {}",
                        valid_from.date_naive()
                    ),
                )
                .into());
            }
        }
        Change::CompetenceGrant {
            staff_id,
            side,
            level,
            valid_from,
            valid_to,
        } => {
            check_period(*valid_from, *valid_to)?;
            if !matches!(side, Side::Market | Side::Backoffice) {
                return Err(ApiError::validation(
                    "competence levels exist for the market and backoffice sides only",
                ));
            }
            if !(1..=MAX_LEVEL).contains(level) {
                return Err(ApiError::validation(format!(
                    "level must be between 1 and {MAX_LEVEL}"
                )));
            }
            if tx.staff_member(staff_id).await?.is_none() {
                return Err(ApiError::validation("staff_id names no staff member"));
            }
        }
        Change::RuleSet {
            valid_from,
            parameters,
        } => {
            parameters.validate()?;
            // Decisions already taken were evaluated under the rules of their
            // time; a new version may only take effect in the future.
            if *valid_from < now {
                return Err(ApiError::new(
                    ProblemKind::Conflict,
                    "valid_from lies in the past; a rule set takes effect from now on or later",
                )
                .with_rule(RuleId::S9));
            }
        }
    }
    Ok(())
}

/// A change proposal and its decision.
#[derive(Debug, Serialize, ToSchema)]
struct ProposalView {
    id: Uuid,
    kind: ProposalKind,
    /// The change as proposed.
    #[schema(value_type = Change)]
    change: Value,
    status: ProposalStatus,
    proposed_by: StaffId,
    proposed_at: DateTime<Utc>,
    decided_by: Option<StaffId>,
    decided_at: Option<DateTime<Utc>>,
}

impl ProposalView {
    fn new(p: &ChangeProposal) -> Self {
        Self {
            id: p.id,
            kind: p.kind,
            change: p.payload.clone(),
            status: p.status,
            proposed_by: p.proposed_by.clone(),
            proposed_at: p.proposed_at,
            decided_by: p.decided_by.clone(),
            decided_at: p.decided_at,
        }
    }
}

/// Proposes a role assignment, competence grant or rule set; it takes
/// effect when another administrator approves it (S3, S9).
#[utoipa::path(
    post,
    path = "/v1/proposals",
    tag = "proposals",
    params(IdempotencyKey),
    request_body = Change,
    responses(
        (status = 201, description = "The change is proposed", body = ProposalView),
        (status = 409, description = "A rule set may not take effect in the past, or a concurrent request won"),
    ),
)]
async fn propose(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(change): Json<Change>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&change).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/proposals",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let now = creditops_http::cases::action_time();
                validate_change(&ctx, tx, &change, actor.id(), now).await?;
                let payload = serde_json::to_value(&change).map_err(|_| {
                    ApiError::new(ProblemKind::Internal, "the change could not be recorded")
                })?;
                let proposal = ChangeProposal {
                    id: Uuid::now_v7(),
                    kind: change.kind(),
                    payload: payload.clone(),
                    proposed_by: actor.id().clone(),
                    proposed_at: now,
                    status: ProposalStatus::Pending,
                    decided_by: None,
                    decided_at: None,
                };
                tx.insert_proposal(&proposal).await?;
                let mut record = actor.record(&ctx, AuditAction::ChangeProposed);
                record.rule = Some(RuleId::S9);
                record.data = json!({"proposal_id": proposal.id, "change": payload});
                ctx.audit(tx, &record).await?;
                CommandOutcome::view(StatusCode::CREATED, &ProposalView::new(&proposal))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ProposalQuery {
    /// Every status when absent.
    #[param(inline)]
    status: Option<ProposalStatus>,
}

/// Change proposals.
#[derive(Debug, Serialize, ToSchema)]
struct Proposals {
    items: Vec<ProposalView>,
}

/// Change proposals, optionally by status.
#[utoipa::path(
    get,
    path = "/v1/proposals",
    tag = "proposals",
    params(Query<ProposalQuery>),
    responses((status = 200, description = "The proposals", body = Proposals)),
)]
async fn list_proposals(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<ProposalQuery>,
) -> Result<axum::Json<Proposals>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    let items = tx
        .proposals(query.status)
        .await?
        .iter()
        .map(ProposalView::new)
        .collect();
    Ok(axum::Json(Proposals { items }))
}

/// One change proposal.
#[utoipa::path(
    get,
    path = "/v1/proposals/{id}",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id")),
    responses((status = 200, description = "The proposal", body = ProposalView)),
)]
async fn read_proposal(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<Uuid>,
) -> Result<axum::Json<ProposalView>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    let proposal = tx
        .proposal(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no proposal with that id"))?;
    Ok(axum::Json(ProposalView::new(&proposal)))
}

/// Loads a pending proposal that `actor` may decide: somebody else's (S9).
async fn decidable(tx: &mut dyn Tx, id: Uuid, actor: &StaffId) -> Result<ChangeProposal, ApiError> {
    let proposal = tx
        .proposal(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no proposal with that id"))?;
    if proposal.status != ProposalStatus::Pending {
        return Err(ApiError::new(
            ProblemKind::Conflict,
            format!("the proposal is {} already", proposal.status.as_str()),
        ));
    }
    if &proposal.proposed_by == actor {
        return Err(DomainError::rule(
            RuleId::S9,
            "a change needs a second administrator: the proposer cannot decide it",
        )
        .into());
    }
    Ok(proposal)
}

/// Applies an approved change to the directory or the rules.
async fn apply(tx: &mut dyn Tx, change: &Change) -> Result<Value, ApiError> {
    match change {
        Change::RoleAssignment {
            staff_id,
            role,
            valid_from,
            valid_to,
        } => {
            let assignment = RoleAssignment {
                role: *role,
                valid_from: *valid_from,
                valid_to: *valid_to,
            };
            tx.add_role_assignment(staff_id, &assignment).await?;
            Ok(json!({"staff_id": staff_id, "role": role}))
        }
        Change::CompetenceGrant {
            staff_id,
            side,
            level,
            valid_from,
            valid_to,
        } => {
            let grant = CompetenceGrant {
                side: *side,
                level: *level,
                valid_from: *valid_from,
                valid_to: *valid_to,
            };
            tx.add_competence_grant(staff_id, &grant).await?;
            Ok(json!({"staff_id": staff_id, "side": side, "level": level}))
        }
        Change::RuleSet {
            valid_from,
            parameters,
        } => {
            let version = tx
                .rule_sets()
                .await?
                .iter()
                .map(|r| r.version)
                .max()
                .unwrap_or(0)
                + 1;
            tx.insert_rule_set(&RuleSet {
                version,
                valid_from: *valid_from,
                parameters: parameters.clone(),
            })
            .await?;
            Ok(json!({"rules_version": version, "valid_from": valid_from}))
        }
    }
}

/// Approves a proposal of another administrator; it takes effect (S9).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/approve",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is approved and applied", body = ProposalView),
        (status = 409, description = "The proposal is decided already, its rule set would take effect in the past, or a concurrent request won"),
        (status = 422, description = "The change is no longer valid against the directory"),
    ),
)]
async fn approve(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    let fingerprint = id.as_bytes().to_vec();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/proposals/{id}/approve",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let mut proposal = decidable(tx, id, actor.id()).await?;
                let change: Change =
                    serde_json::from_value(proposal.payload.clone()).map_err(|_| {
                        ApiError::new(ProblemKind::Internal, "a stored proposal is not valid")
                    })?;
                let now = creditops_http::cases::action_time();
                validate_change(&ctx, tx, &change, actor.id(), now).await?;
                let applied = apply(tx, &change).await?;
                proposal.status = ProposalStatus::Approved;
                proposal.decided_by = Some(actor.id().clone());
                proposal.decided_at = Some(now);
                tx.decide_proposal(&proposal).await?;
                let mut record = actor.record(&ctx, AuditAction::ChangeApproved);
                record.rule = Some(RuleId::S9);
                record.data = json!({
                    "proposal_id": proposal.id,
                    "proposed_by": proposal.proposed_by,
                    "applied": applied,
                });
                ctx.audit(tx, &record).await?;
                CommandOutcome::view(StatusCode::OK, &ProposalView::new(&proposal))
            })
        },
    )
    .await
}

/// Rejects a proposal of another administrator (S9).
#[utoipa::path(
    post,
    path = "/v1/proposals/{id}/reject",
    tag = "proposals",
    params(("id" = Uuid, Path, description = "The proposal id"), IdempotencyKey),
    responses(
        (status = 200, description = "The proposal is rejected", body = ProposalView),
        (status = 409, description = "The proposal is decided already, or a concurrent request won"),
    ),
)]
async fn reject(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<Uuid>,
) -> Result<Response, ApiError> {
    let fingerprint = id.as_bytes().to_vec();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/proposals/{id}/reject",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let mut proposal = decidable(tx, id, actor.id()).await?;
                proposal.status = ProposalStatus::Rejected;
                proposal.decided_by = Some(actor.id().clone());
                proposal.decided_at = Some(creditops_http::cases::action_time());
                tx.decide_proposal(&proposal).await?;
                let mut record = actor.record(&ctx, AuditAction::ChangeRejected);
                record.rule = Some(RuleId::S9);
                record.data = json!({"proposal_id": proposal.id});
                ctx.audit(tx, &record).await?;
                CommandOutcome::view(StatusCode::OK, &ProposalView::new(&proposal))
            })
        },
    )
    .await
}

/// Rule-set versions.
#[derive(Debug, Serialize, ToSchema)]
struct RuleSets {
    items: Vec<RuleSetView>,
}

/// A rule-set version in force from `valid_from`, its parameters inline.
/// (Spelled out rather than flattened: the parameters' schema is closed,
/// `additionalProperties: false`, which an `allOf` with the version fields
/// could never satisfy.)
#[derive(Debug, Serialize, ToSchema)]
struct RuleSetView {
    version: i64,
    valid_from: DateTime<Utc>,
    competence_order: CompetenceOrder,
    /// S5: months after leaving a market unit before a back-office vote.
    cooling_off_months: u32,
    divergence: DivergencePolicy,
    /// V8: below this aggregated exposure one market vote suffices; null
    /// keeps the lane closed. Decimal string.
    single_vote_below: Option<Decimal>,
    /// R5: days an approval's reserved headroom is held for disbursement.
    reservation_days: u32,
}

impl RuleSetView {
    fn new(rules: RuleSet) -> Self {
        let RuleParameters {
            competence_order,
            cooling_off_months,
            divergence,
            single_vote_below,
            reservation_days,
        } = rules.parameters;
        Self {
            version: rules.version,
            valid_from: rules.valid_from,
            competence_order,
            cooling_off_months,
            divergence,
            single_vote_below,
            reservation_days,
        }
    }
}

/// Every rule-set version (competence order, cooling-off, divergence, lane).
#[utoipa::path(
    get,
    path = "/v1/rules",
    tag = "rules",
    responses((status = 200, description = "The rule sets", body = RuleSets)),
)]
async fn list_rules(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
) -> Result<axum::Json<RuleSets>, ApiError> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(axum::Json(RuleSets {
        items: tx
            .rule_sets()
            .await?
            .into_iter()
            .map(RuleSetView::new)
            .collect(),
    }))
}
