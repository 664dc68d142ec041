//! The periodic part of the watcher (R5, R7): releases reservations that
//! expired and re-evaluates every limit, unit and the LCR, so a breach is
//! found even when no command touched its subject (e.g. a reservation
//! expiring, a group changing). Runs in its own transactions; a failed
//! round is logged and retried at the next tick. The round itself is a
//! command (`creditops_commands::watcher`); this module schedules it.

use chrono::Utc;
use creditops_domain::Timestamp;
use creditops_http::{ApiError, ServiceContext};
use std::sync::Arc;
use std::time::Duration;

pub use creditops_commands::watcher::Round;

/// Expires the reservations due at `now` (each audited) and runs a full
/// evaluation as of `now`.
pub async fn run_round(ctx: &ServiceContext, now: Timestamp) -> Result<Round, ApiError> {
    Ok(creditops_commands::watcher::run_round(&ctx.commands(), now).await?)
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
