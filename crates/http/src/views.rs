//! JSON views shared by the market and back-office services. Amounts are
//! decimal strings; timestamps RFC 3339 UTC.

use creditops_domain::{CreditCase, Decision, Vote};
use creditops_store::CaseSummary;
use serde_json::{Value, json};

pub fn vote_json(vote: &Vote, current_version: i64) -> Value {
    json!({
        "stage": vote.stage.as_str(),
        "voter": vote.voter.staff_id,
        "unit": vote.voter.unit_id,
        "side": vote.voter.side,
        "competence_level": vote.voter.competence_level,
        "required_level": vote.required_level,
        "round": vote.round,
        "decision": vote.decision.as_str(),
        "rationale": vote.rationale,
        "file_version": vote.file_version,
        "content_hash": vote.content_hash,
        "cast_at": vote.cast_at,
        "void": vote.file_version != current_version,
        "checks": vote.checks,
    })
}

pub fn decision_json(decision: &Decision) -> Value {
    json!({
        "outcome": decision.outcome.as_str(),
        "decided_at": decision.decided_at,
        "file_version": decision.file_version,
        "content_hash": decision.content_hash,
        "level": decision.level,
        "level_name": decision.level_name,
        "rules_version": decision.rules_version,
        "policy_hash": decision.policy_hash,
        "risk": decision.risk,
        "aggregated_exposure": decision.aggregated_exposure.map(|e| e.to_string()),
        "flags": decision.flags,
        "votes": decision.votes.iter().map(|v| vote_json(v, decision.file_version)).collect::<Vec<_>>(),
        "checks": decision.checks,
    })
}

pub fn case_json(case: &CreditCase) -> Value {
    json!({
        "id": case.id,
        "borrower_id": case.file.borrower_id,
        "amount": case.file.amount.amount().to_string(),
        "currency": case.file.amount.currency_code(),
        "product": case.file.product,
        "term_months": case.file.term_months,
        "purpose": case.file.purpose,
        "status": case.status.as_str(),
        "version": case.version,
        "content_hash": case.content_hash(),
        "originator": case.originator,
        "editors": case.editors,
        "round": case.round,
        "escalation_level": case.escalation_level,
        "related_party": case.related_party,
        "board_resolution": case.board_resolution,
        "return_reason": case.return_reason,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "votes": case.votes.iter().map(|v| vote_json(v, case.version)).collect::<Vec<_>>(),
        "decision": case.decision.as_ref().map(decision_json),
    })
}

pub fn case_summary_json(summary: &CaseSummary) -> Value {
    json!({
        "id": summary.id,
        "borrower_id": summary.borrower_id,
        "amount": summary.amount.amount().to_string(),
        "currency": summary.amount.currency_code(),
        "status": summary.status.as_str(),
        "version": summary.version,
        "updated_at": summary.updated_at,
    })
}

/// The facts of a case change that go into the hashed audit body: ids,
/// versions, hashes and amounts as strings; no free text (A6).
pub fn case_audit_data(case: &CreditCase) -> Value {
    json!({
        "status": case.status.as_str(),
        "version": case.version,
        "content_hash": case.content_hash(),
        "amount": case.file.amount.amount().to_string(),
        "currency": case.file.amount.currency_code(),
        "round": case.round,
        "escalation_level": case.escalation_level,
    })
}
