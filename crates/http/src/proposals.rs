//! Four-eyes proposals as every desk serves them (S9, hardening findings 2
//! and 4): the admin service for the directory and the rules, back office
//! for group membership, risk control for Tier 1 and liquidity. A change
//! that needs a second person answers `202 Accepted` with the proposal and
//! the links a script follows to decide it on the same service; another
//! person of the desk approves (the change takes effect) or rejects it.
//! The route bodies here are shared; each service documents its routes.

use crate::paging::{PageSize, next_cursor};
use crate::{ApiError, CommandOutcome, IdempotencyKey, Principal, ServiceContext, run_command};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use creditops_commands::proposals::{self, Decided};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::proposal::{ChangeProposal, ProposalKind, ProposalStatus};
use creditops_domain::{Role, StaffId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Where a script finds a proposal and, while it is pending, how it is
/// decided: paths on the service that answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalLinks {
    #[serde(rename = "self")]
    #[schema(example = "/v1/proposals/0192a0c4-5d6e-7f80-9a1b-2c3d4e5f6a7b")]
    pub this: String,
    /// `POST` here (another person) applies the change; absent once decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<String>,
    /// `POST` here (another person) drops it; absent once decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<String>,
}

/// A four-eyes change proposal. `change` is the proposed change, tagged by
/// its `kind`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalView {
    pub id: Uuid,
    pub kind: ProposalKind,
    #[schema(value_type = crate::views::ProposedChange)]
    pub change: Value,
    pub status: ProposalStatus,
    pub proposed_by: StaffId,
    pub proposed_at: DateTime<Utc>,
    pub decided_by: Option<StaffId>,
    pub decided_at: Option<DateTime<Utc>>,
    /// What the approval did (the applied change and its effects: cases
    /// sent back, limit breaches); only in the answer to the approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub applied: Option<Value>,
    pub links: ProposalLinks,
}

impl ProposalView {
    pub fn new(p: &ChangeProposal) -> Self {
        let this = format!("/v1/proposals/{}", p.id);
        let pending = p.status == ProposalStatus::Pending;
        Self {
            id: p.id,
            kind: p.kind,
            change: p.payload.clone(),
            status: p.status,
            proposed_by: p.proposed_by.clone(),
            proposed_at: p.proposed_at,
            decided_by: p.decided_by.clone(),
            decided_at: p.decided_at,
            applied: None,
            links: ProposalLinks {
                approve: pending.then(|| format!("{this}/approve")),
                reject: pending.then(|| format!("{this}/reject")),
                this,
            },
        }
    }

    fn decided(decided: Decided) -> Self {
        Self {
            applied: decided.applied,
            ..Self::new(&decided.proposal)
        }
    }
}

/// Change proposals.
/// One page of change proposals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Proposals {
    pub items: Vec<ProposalView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<Uuid>,
}

/// The page sizes of a proposal list.
pub const PROPOSAL_PAGE: PageSize = PageSize {
    default: 100,
    max: 1000,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProposalQuery {
    /// Every status when absent.
    #[param(inline)]
    pub status: Option<ProposalStatus>,
    /// The `next` of the previous page.
    pub after: Option<Uuid>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The answer to a change that needs a second person: `202 Accepted` with
/// the pending proposal and its links.
pub fn accepted(proposal: &ChangeProposal) -> Result<CommandOutcome, ApiError> {
    CommandOutcome::view(StatusCode::ACCEPTED, &ProposalView::new(proposal))
}

/// One page of the proposals `desk` decides, optionally by status, newest
/// first.
pub async fn list(
    ctx: &ServiceContext,
    query: ProposalQuery,
    desk: Role,
) -> Result<Proposals, ApiError> {
    let limit = PROPOSAL_PAGE.limit(query.limit)?;
    let page =
        proposals::proposals(&ctx.commands(), query.status, desk, query.after, limit).await?;
    Ok(Proposals {
        next: next_cursor(&page, limit, |p| p.id),
        items: page.iter().map(ProposalView::new).collect(),
    })
}

/// One proposal `desk` decides.
pub async fn read(ctx: &ServiceContext, id: Uuid, desk: Role) -> Result<ProposalView, ApiError> {
    let proposal = proposals::proposal(&ctx.commands(), id, desk).await?;
    Ok(ProposalView::new(&proposal))
}

/// Approves or rejects a proposal of `desk` made by somebody else.
pub async fn decide(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: Uuid,
    verdict: Verdict,
    desk: Role,
) -> Result<Response, ApiError> {
    let operation = match verdict {
        Verdict::Approve => "POST /v1/proposals/{id}/approve",
        Verdict::Reject => "POST /v1/proposals/{id}/reject",
    };
    let fingerprint = id.as_bytes().to_vec();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(&ctx, &principal, key, operation, &fingerprint, move |tx| {
        Box::pin(async move {
            let decided =
                proposals::decide_proposal(&commands, tx, &actor, id, verdict, desk).await?;
            CommandOutcome::view(StatusCode::OK, &ProposalView::decided(decided))
        })
    })
    .await
}
