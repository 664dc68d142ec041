//! The periodic part of the watcher (R5, R7): releases reservations that
//! expired and re-evaluates every limit, unit and the LCR, so a breach is
//! found even when no command touched its subject (e.g. a reservation
//! expiring, a group changing). Each round is one transaction.

use crate::risk::{watch_all, watch_borrowers};
use crate::{CommandResult, Context};
use creditops_audit::AuditAction;
use creditops_domain::{RuleId, Timestamp};
use creditops_risk::{Reservation, ReservationStatus};
use serde_json::json;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub expired: usize,
    pub breaches: usize,
}

/// Expires the reservations due at `now` (each audited) and runs a full
/// evaluation as of `now`, in one transaction.
pub async fn run_round(ctx: &Context, now: Timestamp) -> CommandResult<Round> {
    let mut tx = ctx.store.begin().await?;
    let due = tx.due_reservations(now).await?;
    let mut borrowers = Vec::new();
    for reservation in &due {
        let expired = Reservation {
            status: ReservationStatus::Expired,
            closed_at: Some(now),
            ..reservation.clone()
        };
        tx.close_reservation(&expired).await?;
        let mut record = ctx.record(AuditAction::RiskReservationExpired, now);
        record.rule = Some(RuleId::R5);
        record.case_id = Some(reservation.case_id);
        record.borrower_id = Some(reservation.borrower);
        record.data = json!({
            "amount": reservation.amount.to_string(),
            "expires_at": reservation.expires_at,
        });
        ctx.audit(tx.as_mut(), &record).await?;
        borrowers.push(reservation.borrower);
    }
    let mut breaches = 0;
    if !borrowers.is_empty() {
        breaches += watch_borrowers(ctx, tx.as_mut(), &borrowers, "reservation expired", now)
            .await?
            .len();
    }
    breaches += watch_all(ctx, tx.as_mut(), "periodic re-evaluation", now)
        .await?
        .len();
    tx.commit().await?;
    Ok(Round {
        expired: due.len(),
        breaches,
    })
}
