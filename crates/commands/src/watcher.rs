//! The periodic part of the watcher (R5, R7): releases reservations that
//! expired and re-evaluates every limit, unit and the LCR, so a breach is
//! found even when no command touched its subject (e.g. a reservation
//! expiring, a group changing); then evaluates the early-warning catalogue
//! over every borrower (L7) and keeps the review schedule (L6). Each round
//! is one transaction.

use crate::monitoring;
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
    /// Borrowers newly put on the watch list for an indicator (L7).
    pub early_warnings: usize,
    /// Reviews opened by the schedule and reviews found overdue (L6).
    pub reviews_opened: usize,
    pub reviews_overdue: usize,
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
    let mut found = Vec::new();
    if !borrowers.is_empty() {
        found.extend(
            watch_borrowers(ctx, tx.as_mut(), &borrowers, "reservation expired", now).await?,
        );
    }
    found.extend(watch_all(ctx, tx.as_mut(), "periodic re-evaluation", now).await?);
    let subjects: Vec<String> = found.iter().map(|breach| breach.subject.clone()).collect();
    monitoring::review_breaches(ctx, tx.as_mut(), &subjects, now).await?;
    let evaluation =
        monitoring::evaluate_early_warning(ctx, tx.as_mut(), None, "watcher", now).await?;
    let reviews = monitoring::review_round(ctx, tx.as_mut(), now).await?;
    tx.commit().await?;
    Ok(Round {
        expired: due.len(),
        breaches: found.len(),
        early_warnings: evaluation.hits.len(),
        reviews_opened: reviews.opened,
        reviews_overdue: reviews.overdue,
    })
}
