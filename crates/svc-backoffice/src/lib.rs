//! The back-office service (credit analysts): the queue of cases awaiting the
//! second vote, the independent second vote, and returning a case to market
//! for rework. No market route exists in this router (S1).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use chrono::Utc;
use creditops_domain::{BorrowerId, CaseId, CaseStatus, StaffId, UnitId, VoteStage};
use creditops_http::cases::{self, CaseAction, VoteRequest, cast_vote, change_case};
use creditops_http::facts::{group_members_of, vote_facts};
use creditops_http::risk::{decide_limit, watch_borrowers};
use creditops_http::views::{case_audit_data, case_summary_json};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, Operation, PathId, Principal, Query,
    ServiceContext, health_routes, run_command, secure,
};
use creditops_risk::{LimitKind, LimitStatus};
use creditops_store::{BorrowerGroup, RelatedParty, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

pub const SERVICE: &str = "backoffice";

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        path: "/v1/limits/proposals",
        summary: "Limit versions awaiting a decision (or by status)",
    },
    Operation {
        method: "POST",
        path: "/v1/limits/{id}/approve",
        summary: "Approve a borrower or group limit (four-eyes, R8)",
    },
    Operation {
        method: "POST",
        path: "/v1/limits/{id}/reject",
        summary: "Reject a borrower or group limit (four-eyes, R8)",
    },
    Operation {
        method: "GET",
        path: "/v1/cases",
        summary: "Cases by status (default: awaiting the second vote), paged",
    },
    Operation {
        method: "GET",
        path: "/v1/cases/{id}",
        summary: "Read a credit case with its votes",
    },
    Operation {
        method: "POST",
        path: "/v1/cases/{id}/second-vote",
        summary: "Cast the independent back-office second vote",
    },
    Operation {
        method: "POST",
        path: "/v1/cases/{id}/return",
        summary: "Return a case to market for rework (voids votes)",
    },
    Operation {
        method: "POST",
        path: "/v1/cases/{id}/board-resolution",
        summary: "Record the board resolution a related-party credit needs (V11)",
    },
    Operation {
        method: "POST",
        path: "/v1/groups",
        summary: "Form a group of connected clients",
    },
    Operation {
        method: "PUT",
        path: "/v1/borrowers/{id}/group",
        summary: "Move a borrower into a group (or out: group_id null); re-evaluates open cases",
    },
    Operation {
        method: "POST",
        path: "/v1/related-parties",
        summary: "Record a staff member as related to a borrower (KWG section 15)",
    },
];

const MAX_PAGE: u32 = 200;

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    let business = Router::new()
        .route("/v1/cases", get(list_cases))
        .route("/v1/cases/{id}", get(read_case))
        .route("/v1/cases/{id}/second-vote", post(second_vote))
        .route("/v1/cases/{id}/return", post(return_case))
        .route("/v1/cases/{id}/board-resolution", post(board_resolution))
        .route("/v1/groups", post(create_group))
        .route("/v1/borrowers/{id}/group", put(set_group))
        .route("/v1/related-parties", post(record_related_party))
        .route("/v1/limits/proposals", get(limit_proposals))
        .route("/v1/limits/{id}/approve", post(approve_limit))
        .route("/v1/limits/{id}/reject", post(reject_limit))
        .with_state(ctx.clone());
    secure(business, ctx.clone()).merge(health_routes(ctx, OPERATIONS))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_cases(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let status: CaseStatus = q
        .status
        .as_deref()
        .unwrap_or("awaiting_second_vote")
        .parse()
        .map_err(ApiError::validation)?;
    let after = q
        .after
        .as_deref()
        .map(str::parse::<CaseId>)
        .transpose()
        .map_err(|_| ApiError::validation("after must be a case id from a previous page"))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let mut tx = ctx.store.begin_read().await?;
    let cases = tx.cases_by_status(status, after, limit).await?;
    let next = (cases.len() == limit as usize)
        .then(|| cases.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(axum::Json(json!({
        "items": cases.iter().map(case_summary_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

async fn read_case(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(cases::read_case(&ctx, id).await?))
}

async fn second_vote(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<VoteRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/cases/{id}/second-vote",
        &fingerprint,
        move |tx| {
            Box::pin(async move { cast_vote(&ctx, tx, &actor, id, &req, VoteStage::Second).await })
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ReturnRequest {
    reason: String,
}

async fn return_case(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<ReturnRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/cases/{id}/return",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let action = CaseAction::new("case.returned");
                change_case(&ctx, tx, &actor, id, action, |case, now| {
                    case.return_for_rework(actor.voter_at(now).as_ref(), &req.reason, now)
                })
                .await
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ResolutionRequest {
    reference: String,
    version: i64,
}

async fn board_resolution(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CaseId>,
    Json(req): Json<ResolutionRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/cases/{id}/board-resolution",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let action = CaseAction::under_rule("case.board_resolution", "V11");
                change_case(&ctx, tx, &actor, id, action, |case, now| {
                    let voter = actor.voter_at(now);
                    case.record_board_resolution(voter.as_ref(), &req.reference, req.version, now)
                })
                .await
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    id: String,
    name: String,
}

async fn create_group(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<NewGroup>,
) -> Result<Response, ApiError> {
    let id = UnitId::parse(&req.id).map_err(|e| ApiError::validation(format!("id: {e}")))?;
    let name = creditops_domain::case::required_text("name", &req.name, 200)?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/groups",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let group = BorrowerGroup {
                    id,
                    name,
                    created_by: actor.id().clone(),
                    created_at: Utc::now(),
                };
                tx.insert_group(&group).await?;
                let mut record = actor.record(&ctx, "group.created");
                record.data = json!({"group_id": group.id});
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(
                    StatusCode::CREATED,
                    json!({"id": group.id, "name": group.name, "created_by": group.created_by, "created_at": group.created_at}),
                ))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GroupMembership {
    group_id: Option<String>,
}

/// Re-evaluates every open case of `borrowers` (V4, R2): a first vote below
/// the level a case now requires is void and the case goes back to market.
/// Returns the ids of the cases sent back.
async fn reevaluate_open_cases(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    actor: &Principal,
    borrowers: &[BorrowerId],
) -> Result<Vec<CaseId>, ApiError> {
    let now = Utc::now();
    let mut returned = Vec::new();
    for id in tx.open_cases_of(borrowers).await? {
        let Some(mut case) = tx.case(id).await? else {
            continue;
        };
        let facts = vote_facts(tx, &case, now, &ctx.policy_hash).await?;
        let expected_revision = case.revision;
        if case.reevaluate(&facts, now)? {
            tx.update_case(&case, expected_revision).await?;
            let mut record = actor.record(ctx, "case.reevaluated");
            record.case_id = Some(case.id.to_string());
            record.borrower_id = Some(case.file.borrower_id.to_string());
            record.rule = Some("V4".into());
            record.data = case_audit_data(&case);
            ctx.audit(tx, &record).await?;
            returned.push(case.id);
        }
    }
    Ok(returned)
}

async fn set_group(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(borrower): PathId<BorrowerId>,
    Json(req): Json<GroupMembership>,
) -> Result<Response, ApiError> {
    let group = req
        .group_id
        .as_deref()
        .map(UnitId::parse)
        .transpose()
        .map_err(|e| ApiError::validation(format!("group_id: {e}")))?;
    let fingerprint = serde_json::to_vec(&(borrower, &req)).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "PUT /v1/borrowers/{id}/group",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                if tx.borrower(borrower).await?.is_none() {
                    return Err(ApiError::not_found("no borrower with that id"));
                }
                if let Some(group) = &group
                    && tx.group(group).await?.is_none()
                {
                    return Err(ApiError::validation("group_id names no group"));
                }
                // Serialised with approvals, which aggregate over groups.
                tx.lock_risk().await?;
                let now = Utc::now();
                // Everybody whose aggregated exposure changes: the old group
                // and the new one.
                let (_, mut affected) = group_members_of(tx, borrower, now).await?;
                // One member of the old group stands for it in the watcher;
                // the moved borrower for its new group (R2, R7).
                let mut watched = vec![borrower];
                watched.extend(affected.iter().copied().find(|b| *b != borrower));
                tx.set_group_membership(borrower, group.as_ref(), now)
                    .await?;
                let (_, joined) = group_members_of(tx, borrower, now).await?;
                affected.extend(joined);
                affected.sort();
                affected.dedup();
                let mut record = actor.record(&ctx, "borrower.group_changed");
                record.borrower_id = Some(borrower.to_string());
                record.data = json!({"group_id": group});
                ctx.audit(tx, &record).await?;
                let returned = reevaluate_open_cases(&ctx, tx, &actor, &affected).await?;
                let breaches = watch_borrowers(
                    &ctx,
                    tx,
                    &watched,
                    &format!("borrower {borrower} changed group"),
                    now,
                )
                .await?;
                Ok(CommandOutcome::new(
                    StatusCode::OK,
                    json!({
                        "borrower_id": borrower,
                        "group_id": group,
                        "valid_from": now,
                        "cases_sent_back": returned,
                        "breaches": serde_json::to_value(&breaches).unwrap_or_default(),
                    }),
                ))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewRelatedParty {
    borrower_id: BorrowerId,
    staff_id: String,
    relation: String,
}

async fn record_related_party(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Json(req): Json<NewRelatedParty>,
) -> Result<Response, ApiError> {
    let staff_id = StaffId::parse(&req.staff_id)
        .map_err(|e| ApiError::validation(format!("staff_id: {e}")))?;
    let relation = creditops_domain::case::required_text("relation", &req.relation, 200)?;
    let fingerprint = serde_json::to_vec(&req).unwrap_or_default();
    let actor = principal.clone();
    run_command(
        &ctx.clone(),
        &principal,
        key,
        "POST /v1/related-parties",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                if tx.borrower(req.borrower_id).await?.is_none() {
                    return Err(ApiError::validation("borrower_id names no borrower"));
                }
                if tx.staff_member(&staff_id).await?.is_none() {
                    return Err(ApiError::validation("staff_id names no staff member"));
                }
                let party = RelatedParty {
                    borrower_id: req.borrower_id,
                    staff_id,
                    relation,
                    recorded_by: actor.id().clone(),
                    recorded_at: Utc::now(),
                };
                tx.insert_related_party(&party).await?;
                let mut record = actor.record(&ctx, "related_party.recorded");
                record.borrower_id = Some(party.borrower_id.to_string());
                record.rule = Some("V11".into());
                // The relation text may describe family ties: personal data
                // stays out of the hashed body (A6).
                record.data = json!({"staff_id": party.staff_id});
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(
                    StatusCode::CREATED,
                    json!({
                        "borrower_id": party.borrower_id,
                        "staff_id": party.staff_id,
                        "relation": party.relation,
                        "recorded_by": party.recorded_by,
                        "recorded_at": party.recorded_at,
                    }),
                ))
            })
        },
    )
    .await
}

/// Borrower and group limits are approved by back office (R1, R8).
const BACKOFFICE_DECIDES: &[LimitKind] = &[LimitKind::Borrower, LimitKind::Group];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitProposalQuery {
    status: Option<String>,
}

async fn limit_proposals(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(query): Query<LimitProposalQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let status = query
        .status
        .as_deref()
        .unwrap_or("pending")
        .parse::<LimitStatus>()
        .map_err(|e| ApiError::validation(format!("status: {e}")))?;
    let mut tx = ctx.store.begin_read().await?;
    let versions: Vec<_> = tx
        .limit_versions(Some(status), None)
        .await?
        .into_iter()
        .filter(|v| BACKOFFICE_DECIDES.contains(&v.subject.kind()))
        .collect();
    Ok(axum::Json(
        json!({ "items": serde_json::to_value(&versions).unwrap_or_default() }),
    ))
}

async fn approve_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<uuid::Uuid>,
) -> Result<Response, ApiError> {
    decide_limit(ctx, principal, key, id, true, BACKOFFICE_DECIDES).await
}

async fn reject_limit(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<uuid::Uuid>,
) -> Result<Response, ApiError> {
    decide_limit(ctx, principal, key, id, false, BACKOFFICE_DECIDES).await
}
