//! Market commands outside the vote: registering a borrower (S6) and
//! disbursing an approved case (R5, R6).

use crate::cases::{MarketUse, load_market_case};
use crate::risk::{liquidity_view, watch_borrowers};
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::{BorrowerId, CaseId, RuleId, Side};
use creditops_risk::Reservation;
use creditops_risk::decision::{
    DisbursementCheck, DisbursementRefusal, check_disbursement, consume,
};
use creditops_store::{Borrower, Tx};
use serde_json::json;

impl From<DisbursementRefusal> for CommandError {
    fn from(refusal: DisbursementRefusal) -> Self {
        let rule = refusal.rule();
        let detail = refusal.to_string();
        match refusal {
            DisbursementRefusal::NotMarket => CommandError::Forbidden { detail, rule },
            DisbursementRefusal::NoPosition | DisbursementRefusal::BelowFloor(_) => {
                CommandError::Domain(creditops_domain::DomainError::RuleViolation {
                    rule: RuleId::R6,
                    detail,
                })
            }
            _ => CommandError::Conflict { detail, rule },
        }
    }
}

/// Registers `borrower`; its relationship manager, if named, must be a
/// member of a market unit (S6).
pub async fn register_borrower(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower: &Borrower,
) -> CommandResult<()> {
    if let Some(manager) = &borrower.relationship_manager {
        let on_market = tx
            .staff_member(manager)
            .await?
            .and_then(|m| m.voter_at(borrower.created_at))
            .is_some_and(|v| v.side == Side::Market);
        if !on_market {
            return Err(CommandError::invalid(
                "relationship_manager must be a staff member of a market unit",
            ));
        }
    }
    tx.insert_borrower(borrower).await?;
    let mut record = ctx.actor_record(actor, AuditAction::BorrowerCreated);
    record.borrower_id = Some(borrower.id);
    // The name is personal data and stays out of the hashed body (A6).
    record.data = json!({
        "country": borrower.country,
        "relationship_manager": borrower.relationship_manager,
    });
    ctx.audit(tx, &record).await
}

/// Reads a borrower.
pub async fn borrower(ctx: &Context, id: BorrowerId) -> CommandResult<Borrower> {
    let mut tx = ctx.store.begin_read().await?;
    tx.borrower(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no borrower with that id"))
}

/// What a disbursement did: the consumed reservation and the LCR with it.
#[derive(Debug, Clone)]
pub struct Disbursed {
    pub case_id: CaseId,
    pub reservation: Reservation,
    /// Projected LCR in percent, if computable.
    pub lcr_percent: Option<rust_decimal::Decimal>,
}

/// Disburses an approved case (R5, R6): consumes its reservation once, after
/// re-checking the liquidity floor.
pub async fn disburse(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
) -> CommandResult<Disbursed> {
    let now = action_time();
    tx.lock_risk().await?;
    // Only the case's own market unit disburses it (hardening finding 9).
    let case = load_market_case(tx, actor, id, MarketUse::Change, now).await?;
    // Money leaves only when back office signed off every condition (L5).
    case.check_conditions_met()?;
    let reservation = tx.reservation(id).await?;
    let liquidity = liquidity_view(tx, now).await?;
    let finding = check_disbursement(&DisbursementCheck {
        case_status: case.status,
        side: actor.voter_at(now).map(|v| v.side),
        reservation: reservation.as_ref(),
        liquidity: liquidity.as_ref(),
        now,
    })?;
    let Some(reservation) = reservation else {
        return Err(DisbursementRefusal::NoReservation.into());
    };
    let consumed = consume(reservation, actor.id(), now);
    tx.close_reservation(&consumed).await?;
    let mut record = ctx.actor_record(actor, AuditAction::CaseDisbursed);
    record.case_id = Some(case.id);
    record.borrower_id = Some(case.file.borrower_id);
    record.rule = Some(RuleId::R5);
    record.data = json!({
        "amount": consumed.amount.to_string(),
        "lcr_percent": finding.usage.map(|l| l.to_string()),
    });
    ctx.audit(tx, &record).await?;
    watch_borrowers(ctx, tx, &[case.file.borrower_id], "disbursement", now).await?;
    Ok(Disbursed {
        case_id: case.id,
        reservation: consumed,
        lcr_percent: finding.usage,
    })
}

/// What disbursing case `id` would do now, read without locks: the
/// reservation it would consume and the liquidity check's finding, or why
/// it would be refused. The disbursement itself checks again under locks.
#[derive(Debug, Clone)]
pub struct DisbursementPreview {
    pub reservation: Option<Reservation>,
    pub check: Result<creditops_domain::RiskFinding, DisbursementRefusal>,
}

/// The [`DisbursementPreview`] of case `id` for `actor` (a case they may not
/// see is an unknown id, hardening finding 9).
pub async fn disbursement_preview(
    ctx: &Context,
    actor: &Actor,
    id: CaseId,
) -> CommandResult<DisbursementPreview> {
    let now = action_time();
    let mut tx = ctx.store.begin_read().await?;
    let case = load_market_case(tx.as_mut(), actor, id, MarketUse::Read, now).await?;
    let reservation = tx.reservation(id).await?;
    let liquidity = liquidity_view(tx.as_mut(), now).await?;
    let check = check_disbursement(&DisbursementCheck {
        case_status: case.status,
        side: actor.voter_at(now).map(|v| v.side),
        reservation: reservation.as_ref(),
        liquidity: liquidity.as_ref(),
        now,
    });
    Ok(DisbursementPreview { reservation, check })
}
