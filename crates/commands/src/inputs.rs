//! Four-eyes changes to the inputs a credit decision depends on (hardening
//! findings 2 and 4): a borrower's group of connected clients (V4: its
//! aggregated exposure decides the competence level), Tier 1 capital (R3:
//! it caps large exposures) and the liquidity position (R6). One person
//! proposes; the change takes effect only when a second person of the same
//! function approves it, and both are then barred from voting on the
//! affected cases (S6).

use crate::groups::{current_group, move_borrower};
use crate::positions::{NewPosition, record_capital, record_liquidity};
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::proposal::{ChangeProposal, InputChange, ProposalStatus};
use creditops_store::Tx;
use serde_json::{Value, json};
use uuid::Uuid;

/// Proposes `change`; it takes effect when a second person of the deciding
/// function approves it. A group change records the group the borrower is
/// in now, so that the approval can tell whether it is still current.
pub async fn propose_input(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    change: InputChange,
) -> CommandResult<ChangeProposal> {
    let change = match change {
        InputChange::GroupMembership {
            borrower_id,
            group_id,
            ..
        } => {
            let from_group = current_group(tx, borrower_id, group_id.as_ref()).await?;
            InputChange::GroupMembership {
                borrower_id,
                group_id,
                from_group,
            }
        }
        other => other,
    };
    change.check()?;
    let payload = serde_json::to_value(&change)
        .map_err(|_| CommandError::Internal("the change could not be recorded".into()))?;
    let proposal = ChangeProposal {
        id: Uuid::now_v7(),
        kind: change.kind(),
        payload: payload.clone(),
        proposed_by: actor.id().clone(),
        proposed_at: action_time(),
        status: ProposalStatus::Pending,
        decided_by: None,
        decided_at: None,
    };
    tx.insert_proposal(&proposal).await?;
    let mut record = ctx.actor_record(actor, AuditAction::ChangeProposed);
    record.rule = Some(proposal.kind.rule());
    record.borrower_id = change.borrower();
    record.data = json!({"proposal_id": proposal.id, "change": payload});
    ctx.audit(tx, &record).await?;
    Ok(proposal)
}

/// Applies the approved `proposal` of an input change, checked again
/// first: the approver decides on the facts of now. `actor` approves.
pub(crate) async fn apply_input(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    proposal: &ChangeProposal,
) -> CommandResult<Value> {
    let change: InputChange = serde_json::from_value(proposal.payload.clone())
        .map_err(|_| CommandError::Internal("a stored proposal is not valid".into()))?;
    change.check()?;
    match change {
        InputChange::GroupMembership {
            borrower_id,
            group_id,
            from_group,
        } => {
            let now_in = current_group(tx, borrower_id, group_id.as_ref()).await?;
            if now_in != from_group {
                return Err(CommandError::conflict_under(
                    proposal.kind.rule(),
                    "the borrower's group changed since the proposal; reject it and propose again",
                ));
            }
            let moved =
                move_borrower(ctx, tx, actor, borrower_id, group_id.as_ref(), proposal).await?;
            Ok(json!({
                "borrower_id": borrower_id,
                "group_id": group_id,
                "valid_from": moved.valid_from,
                "cases_sent_back": moved.cases_sent_back,
                "breaches": moved.breaches,
            }))
        }
        InputChange::Tier1Capital { tier1 } => {
            let (capital, breaches) = record_capital(ctx, tx, actor, tier1, proposal).await?;
            Ok(json!({"capital": capital, "breaches": breaches}))
        }
        InputChange::LiquidityPosition {
            hqla,
            outflows_30d,
            inflows_30d,
            floor_percent,
        } => {
            let new = NewPosition {
                hqla,
                outflows_30d,
                inflows_30d,
                floor_percent,
            };
            let (position, breaches) = record_liquidity(ctx, tx, actor, new, proposal).await?;
            Ok(json!({"liquidity": position, "breaches": breaches}))
        }
    }
}
