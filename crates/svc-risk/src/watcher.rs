//! The periodic part of the watcher (R5, R7): releases reservations that
//! expired and re-evaluates every limit, unit and the LCR, so a breach is
//! found even when no command touched its subject (e.g. a reservation
//! expiring, a group changing). Runs in its own transactions; a failed
//! round is logged and retried at the next tick.

use chrono::Utc;
use creditops_audit::AuditAction;
use creditops_audit::Outcome;
use creditops_domain::RuleId;
use creditops_domain::Timestamp;
use creditops_http::risk::{watch_all, watch_borrowers};
use creditops_http::{ApiError, ServiceContext};
use creditops_risk::{Reservation, ReservationStatus};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub expired: usize,
    pub breaches: usize,
}

/// Expires the reservations due at `now` (each audited) and runs a full
/// evaluation as of `now`.
pub async fn run_round(ctx: &ServiceContext, now: Timestamp) -> Result<Round, ApiError> {
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
        let mut record = ctx.record(AuditAction::RiskReservationExpired, Outcome::Ok, now);
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

/// Runs [`run_round`] every `interval` until the task is dropped.
pub fn spawn(ctx: Arc<ServiceContext>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run_round(&ctx, Utc::now()).await {
                Ok(round) if round.expired + round.breaches > 0 => {
                    tracing::info!(
                        expired = round.expired,
                        breaches = round.breaches,
                        "risk watcher round"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    e.log_cause();
                    tracing::warn!(error = %e, "risk watcher round failed; retrying");
                }
            }
        }
    })
}
