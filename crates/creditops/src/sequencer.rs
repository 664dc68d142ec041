//! The periodic audit sequencer (A1, A2) of a process on PostgreSQL: every
//! process competes for the leader lease; the leader links committed audit
//! events about every `interval` and signs the head; the others retry for the
//! lease every second, so a dead leader is replaced within about a second of
//! PostgreSQL noticing its session is gone. Rounds are serialised in the
//! database, so a reader's flush and the leader's timer never conflict.

use creditops_audit::SigningKey;
use creditops_store::{AuditSequencer, SequencerLease, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a follower asks for the lease, and the leader checks it still holds it.
const LEASE_CHECK: Duration = Duration::from_secs(1);
/// How long the final flush at shutdown may take.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Runs the sequencer until `stop` turns true, then flushes once more (so
/// every event acknowledged before shutdown is linked) and returns.
pub fn spawn(
    store: Arc<dyn Store>,
    key: Option<Arc<SigningKey>>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(sequencer) = store.audit_sequencer() else {
            return;
        };
        let mut lease: Option<Box<dyn SequencerLease>> = None;
        let mut lease_checked: Option<Instant> = None;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            if lease_checked.is_none_or(|at| at.elapsed() >= LEASE_CHECK) {
                lease_checked = Some(Instant::now());
                lease = renew(sequencer, lease).await;
            }
            if lease.is_none() {
                continue;
            }
            match sequencer.sequence_audit(key.as_deref()).await {
                Ok(round) if round.linked > 0 => {
                    tracing::debug!(
                        linked = round.linked,
                        size = round.size,
                        "audit events linked"
                    );
                }
                Ok(_) => {}
                // Logged and retried at the next tick; readiness reports the lag.
                Err(e) => tracing::warn!(error = %e, "audit sequencer round failed"),
            }
        }
        if let Err(e) = sequencer.flush_audit(SHUTDOWN_FLUSH).await {
            tracing::warn!(error = %e, "audit events left unlinked at shutdown; the next sequencer links them");
        }
    })
}

async fn renew(
    sequencer: &dyn AuditSequencer,
    lease: Option<Box<dyn SequencerLease>>,
) -> Option<Box<dyn SequencerLease>> {
    match lease {
        Some(mut held) => {
            if held.still_held().await {
                return Some(held);
            }
            tracing::warn!("audit sequencer lease lost");
            None
        }
        None => match sequencer.sequencer_lease().await {
            Ok(Some(acquired)) => {
                tracing::info!("this process now runs the audit sequencer");
                Some(acquired)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not ask for the audit sequencer lease");
                None
            }
        },
    }
}
