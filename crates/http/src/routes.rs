//! Route bodies that several services share: each parses nothing and
//! decides nothing, it runs a command of `creditops-commands` in the
//! idempotent transaction and renders what the command returns.

use crate::idempotency::REPLAYED_HEADER;
use crate::views::{LimitDecision, VoteRequest, case_json};
use crate::{
    ApiError, Begin, CommandOutcome, CommandRequest, IdempotencyKey, Principal, ServiceContext,
    run_command, run_command_begun,
};
use axum::http::StatusCode;
use axum::response::Response;
use creditops_commands::limits::decide_limit;
use creditops_commands::votes::{
    CastVote, cast_vote, claim_for_vote, release_liquidity_claim, settled_claim,
};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::{CaseId, VoteDecision, VoteStage};
use creditops_risk::LimitKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A vote, as the market (first) and back-office (second) routes run it:
/// an approval that may decide is claimed for first (R5, R6), the vote runs
/// as one idempotent transaction, and a claim it did not spend is released.
pub async fn vote(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: CaseId,
    req: VoteRequest,
    stage: VoteStage,
) -> Result<Response, ApiError> {
    let operation = match stage {
        VoteStage::First => "POST /v1/cases/{id}/first-vote",
        VoteStage::Second => "POST /v1/cases/{id}/second-vote",
    };
    let commands = ctx.commands();
    let before = claim_for_vote(&commands, &principal, id, req.decision, stage).await?;
    let fingerprint = serde_json::to_vec(&(id, &req)).unwrap_or_default();
    let vote = CastVote {
        decision: req.decision,
        rationale: req.rationale,
        version: req.version,
        conditions: req.conditions.iter().map(|c| c.condition()).collect(),
    };
    let (run, vote_before, actor) = (commands.clone(), before.clone(), principal.0.clone());
    // Set when this vote's transaction settled the claim; a replayed answer
    // runs no transaction and leaves it unset.
    let settled = Arc::new(AtomicBool::new(false));
    let settles = settled.clone();
    // An approving second vote decides: the risk gate's shared lock is its
    // first lock (R4), taken with the transaction's begin.
    let begin = if stage == VoteStage::Second && vote.decision == VoteDecision::Approve {
        Begin::SharingRisk
    } else {
        Begin::Plain
    };
    let request = CommandRequest {
        principal: &principal,
        key,
        operation,
        fingerprint: &fingerprint,
    };
    let answer = run_command_begun(&ctx, request, begin, move |tx| {
        Box::pin(async move {
            let case = cast_vote(&run, tx, &actor, id, &vote, stage, &vote_before).await?;
            settles.store(settled_claim(&case), Ordering::Relaxed);
            Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
        })
    })
    .await;
    // Only a committed settlement is gone; anything else is released. A
    // replayed answer (also the one that stands in for a copy that lost a
    // race at commit) committed nothing of this request.
    let committed = answer
        .as_ref()
        .is_ok_and(|response| !response.headers().contains_key(REPLAYED_HEADER));
    if !(committed && settled.load(Ordering::Relaxed)) {
        release_liquidity_claim(&commands, before.claim).await;
    }
    answer
}

/// Approves or rejects a pending limit version (R8, four-eyes), as the
/// side that decides `kinds` of limits.
pub async fn decide_limit_version(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: uuid::Uuid,
    verdict: Verdict,
    kinds: &'static [LimitKind],
) -> Result<Response, ApiError> {
    let operation = match verdict {
        Verdict::Approve => "POST /v1/limits/{id}/approve",
        Verdict::Reject => "POST /v1/limits/{id}/reject",
    };
    let fingerprint = id.as_bytes().to_vec();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(&ctx, &principal, key, operation, &fingerprint, move |tx| {
        Box::pin(async move {
            let (limit, breaches) = decide_limit(&commands, tx, &actor, id, verdict, kinds).await?;
            CommandOutcome::view(StatusCode::OK, &LimitDecision { limit, breaches })
        })
    })
    .await
}
