//! The back-office service (credit analysts): the queue of cases awaiting the
//! second vote, the independent second vote, and returning a case to market
//! for rework. No market route exists in this router (S1).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;
use creditops_domain::{CaseId, CaseStatus, VoteDecision};
use creditops_http::views::{case_audit_data, case_json, case_summary_json};
use creditops_http::{
    ApiError, CommandOutcome, IdempotencyKey, Json, Operation, PathId, Principal, Query,
    ServiceContext, health_routes, run_command, secure,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

pub const SERVICE: &str = "backoffice";

pub const OPERATIONS: &[Operation] = &[
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
];

const MAX_PAGE: u32 = 200;

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    let business = Router::new()
        .route("/v1/cases", get(list_cases))
        .route("/v1/cases/{id}", get(read_case))
        .route("/v1/cases/{id}/second-vote", post(second_vote))
        .route("/v1/cases/{id}/return", post(return_case))
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
    let mut tx = ctx.store.begin_read().await?;
    let case = tx
        .case(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no case with that id"))?;
    Ok(axum::Json(case_json(&case)))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct VoteRequest {
    decision: VoteDecision,
    rationale: String,
    version: i64,
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
            Box::pin(async move {
                let mut case = tx
                    .case(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("no case with that id"))?;
                let expected_revision = case.revision;
                let now = Utc::now();
                let voter = actor.voter_at(now);
                let vote = case
                    .cast_second_vote(
                        voter.as_ref(),
                        req.decision,
                        &req.rationale,
                        req.version,
                        now,
                    )?
                    .clone();
                tx.update_case(&case, expected_revision).await?;
                let mut record = actor.record(&ctx, "case.second_vote");
                record.case_id = Some(case.id.to_string());
                record.borrower_id = Some(case.file.borrower_id.to_string());
                let mut data = case_audit_data(&case);
                data["decision"] = json!(vote.decision.as_str());
                data["unit"] = json!(vote.voter.unit_id);
                data["checks"] = json!(vote.checks.iter().map(|c| &c.rule).collect::<Vec<_>>());
                if let Some(decision) = &case.decision {
                    data["outcome"] = json!(decision.outcome.as_str());
                }
                record.data = data;
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
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
                let mut case = tx
                    .case(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("no case with that id"))?;
                let expected_revision = case.revision;
                let now = Utc::now();
                case.return_for_rework(actor.voter_at(now).as_ref(), &req.reason, now)?;
                tx.update_case(&case, expected_revision).await?;
                let mut record = actor.record(&ctx, "case.returned");
                record.case_id = Some(case.id.to_string());
                record.borrower_id = Some(case.file.borrower_id.to_string());
                record.data = case_audit_data(&case);
                ctx.audit(tx, &record).await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await
}
