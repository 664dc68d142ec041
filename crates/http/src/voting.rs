//! Casting a vote, shared by the market (first vote) and back-office (second
//! vote) services so both load the same facts, record the same audit data and
//! answer the same way. Which stage a service may cast is fixed by its router.

use crate::facts::vote_facts;
use crate::views::{case_audit_data, case_json};
use crate::{ApiError, CommandOutcome, Principal, ServiceContext};
use axum::http::StatusCode;
use chrono::Utc;
use creditops_domain::{CaseId, VoteDecision, VoteStage};
use creditops_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A vote: decision, rationale and the file version it is cast on (V3).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    pub decision: VoteDecision,
    pub rationale: String,
    pub version: i64,
}

/// Loads the case and the facts at vote time, casts the vote (all rules in
/// the domain), persists it with optimistic concurrency and audits it, all
/// in `tx`.
pub async fn cast_vote(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    actor: &Principal,
    id: CaseId,
    req: &VoteRequest,
    stage: VoteStage,
) -> Result<CommandOutcome, ApiError> {
    let mut case = tx
        .case(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no case with that id"))?;
    let expected_revision = case.revision;
    let now = Utc::now();
    let voter = actor.voter_at(now);
    let facts = vote_facts(tx, &case, now, &ctx.policy_hash).await?;
    let vote = match stage {
        VoteStage::First => case.cast_first_vote(
            voter.as_ref(),
            req.decision,
            &req.rationale,
            req.version,
            &facts,
            now,
        )?,
        VoteStage::Second => case.cast_second_vote(
            voter.as_ref(),
            req.decision,
            &req.rationale,
            req.version,
            &facts,
            now,
        )?,
    }
    .clone();
    tx.update_case(&case, expected_revision).await?;
    let action = match stage {
        VoteStage::First => "case.first_vote",
        VoteStage::Second => "case.second_vote",
    };
    let mut record = actor.record(ctx, action);
    record.case_id = Some(case.id.to_string());
    record.borrower_id = Some(case.file.borrower_id.to_string());
    let mut data = case_audit_data(&case);
    data["decision"] = json!(vote.decision.as_str());
    data["unit"] = json!(vote.voter.unit_id);
    data["competence_level"] = json!(vote.voter.competence_level);
    data["required_level"] = json!(vote.required_level);
    data["checks"] = json!(vote.checks.iter().map(|c| &c.rule).collect::<Vec<_>>());
    if let Some(decision) = &case.decision {
        data["outcome"] = json!(decision.outcome.as_str());
        data["level"] = json!(decision.level);
        data["rules_version"] = json!(decision.rules_version);
        data["policy_hash"] = json!(decision.policy_hash);
        data["flags"] = json!(decision.flags);
    }
    record.data = data;
    ctx.audit(tx, &record).await?;
    Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
}
