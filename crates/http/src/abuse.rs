//! What requests without a valid login may cost (hardening finding 6).
//!
//! - Failed authentication is rate-limited per client address: past the
//!   budget of a minute, the address gets 429 with `Retry-After` until the
//!   minute is over, before its token is even looked at.
//! - Refusals of unauthenticated requests are not one audit event each
//!   (anybody could fill the permanent trail): they are tallied per minute
//!   and written as one event per service and minute with their count and
//!   the number of distinct client addresses (the addresses themselves are
//!   personal data and stay out of the trail). Refusals of authenticated
//!   staff remain one event each (S8).

use crate::ServiceContext;
use chrono::{DateTime, TimeZone, Utc};
use creditops_audit::{AuditAction, Outcome};
use creditops_domain::{RuleId, Timestamp};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard};

/// Failed authentications one client address may have per minute.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 60;
/// Addresses tracked at once; beyond it, addresses of past minutes are
/// dropped first, and the table never grows without bound.
const MAX_TRACKED_ADDRESSES: usize = 100_000;
/// Distinct addresses remembered per minute's tally (the count saturates).
const MAX_TALLIED_ADDRESSES: usize = 10_000;

/// The address a request came from, when the server knows it.
pub fn client_address(request: &axum::extract::Request) -> IpAddr {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// One minute's unauthenticated refusals at one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The start of the minute.
    pub minute: Timestamp,
    pub refusals: u64,
    pub distinct_addresses: usize,
}

#[derive(Default)]
struct MinuteTally {
    refusals: u64,
    addresses: HashSet<IpAddr>,
}

#[derive(Default)]
struct State {
    /// Per address: the minute of its failures and how many there were.
    failures: HashMap<IpAddr, (i64, u32)>,
    /// Per minute (seconds since the epoch, divisible by 60).
    tallies: BTreeMap<i64, MinuteTally>,
}

/// The per-service bookkeeping of unauthenticated requests.
pub struct Unauthenticated {
    failures_per_minute: u32,
    state: Mutex<State>,
}

fn minute_of(at: Timestamp) -> i64 {
    at.timestamp().div_euclid(60) * 60
}

impl Unauthenticated {
    pub fn new(failures_per_minute: u32) -> Self {
        Self {
            failures_per_minute: failures_per_minute.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters behind:
        // still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds until `address` may try again, if it used up this minute's
    /// budget of failed authentications.
    pub fn retry_after(&self, address: IpAddr, now: Timestamp) -> Option<u64> {
        let minute = minute_of(now);
        let state = self.state();
        match state.failures.get(&address) {
            Some((at, count)) if *at == minute && *count >= self.failures_per_minute => Some(
                u64::try_from(minute + 60 - now.timestamp())
                    .unwrap_or(1)
                    .max(1),
            ),
            _ => None,
        }
    }

    /// Counts a failed authentication from `address`.
    pub fn note_failure(&self, address: IpAddr, now: Timestamp) {
        let minute = minute_of(now);
        let mut state = self.state();
        if state.failures.len() >= MAX_TRACKED_ADDRESSES && !state.failures.contains_key(&address) {
            state.failures.retain(|_, (at, _)| *at == minute);
            if state.failures.len() >= MAX_TRACKED_ADDRESSES {
                // Every tracked address failed this very minute: the new
                // one is not tracked, but its refusals are still tallied.
                return;
            }
        }
        let entry = state.failures.entry(address).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Counts a refused request that carried no valid login.
    pub fn note_refusal(&self, address: IpAddr, now: Timestamp) {
        let mut state = self.state();
        let tally = state.tallies.entry(minute_of(now)).or_default();
        tally.refusals = tally.refusals.saturating_add(1);
        if tally.addresses.len() < MAX_TALLIED_ADDRESSES {
            tally.addresses.insert(address);
        }
    }

    /// Takes the tallies of minutes before `now`'s (all of them with
    /// `everything`, e.g. at shutdown).
    fn take(&self, now: Timestamp, everything: bool) -> Vec<(i64, MinuteTally)> {
        let mut state = self.state();
        let keep = if everything {
            BTreeMap::new()
        } else {
            state.tallies.split_off(&minute_of(now))
        };
        std::mem::replace(&mut state.tallies, keep)
            .into_iter()
            .collect()
    }

    /// Puts tallies back that could not be written, to be tried again.
    fn restore(&self, tallies: Vec<(i64, MinuteTally)>) {
        let mut state = self.state();
        for (minute, tally) in tallies {
            let into = state.tallies.entry(minute).or_default();
            into.refusals = into.refusals.saturating_add(tally.refusals);
            for address in tally.addresses {
                if into.addresses.len() >= MAX_TALLIED_ADDRESSES {
                    break;
                }
                into.addresses.insert(address);
            }
        }
    }
}

/// Writes the tallies of past minutes (all, with `everything`) as audit
/// events, one per minute, in one transaction. If that fails the tallies are
/// kept for the next call; what was written is returned.
pub async fn flush_unauthenticated(
    ctx: &ServiceContext,
    now: Timestamp,
    everything: bool,
) -> Result<Vec<Tally>, crate::ApiError> {
    let taken = ctx.unauthenticated.take(now, everything);
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let tallies: Vec<Tally> = taken
        .iter()
        .map(|(minute, tally)| Tally {
            minute: Utc
                .timestamp_opt(*minute, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            refusals: tally.refusals,
            distinct_addresses: tally.addresses.len(),
        })
        .collect();
    match write_tallies(ctx, &tallies).await {
        Ok(()) => Ok(tallies),
        Err(e) => {
            ctx.unauthenticated.restore(taken);
            Err(e)
        }
    }
}

async fn write_tallies(ctx: &ServiceContext, tallies: &[Tally]) -> Result<(), crate::ApiError> {
    let mut tx = ctx.store.begin().await?;
    for tally in tallies {
        let mut record = ctx.record(
            AuditAction::UnauthenticatedRefusals,
            Outcome::Denied,
            Utc::now(),
        );
        record.rule = Some(RuleId::S8);
        record.data = serde_json::json!({
            "minute": tally.minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "refusals": tally.refusals,
            "distinct_addresses": tally.distinct_addresses,
        });
        ctx.audit(tx.as_mut(), &record).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
    }

    #[test]
    fn the_budget_is_per_address_and_minute() {
        // 1_800_000_000 is divisible by 60: second 0 starts a minute.
        let guard = Unauthenticated::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(guard.retry_after(a, at(10)), None);
            guard.note_failure(a, at(10));
        }
        assert_eq!(guard.retry_after(a, at(10)), Some(50));
        assert_eq!(guard.retry_after(a, at(59)), Some(1));
        assert_eq!(guard.retry_after(b, at(10)), None, "another address");
        assert_eq!(guard.retry_after(a, at(60)), None, "the next minute");
        guard.note_failure(a, at(61));
        assert_eq!(guard.retry_after(a, at(61)), None, "counting starts again");
    }

    #[test]
    fn tallies_are_taken_per_closed_minute_and_restored_on_failure() {
        let guard = Unauthenticated::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        guard.note_refusal(a, at(1));
        guard.note_refusal(a, at(2));
        guard.note_refusal(b, at(3));
        guard.note_refusal(a, at(61));
        let closed = guard.take(at(70), false);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].1.refusals, 3);
        assert_eq!(closed[0].1.addresses.len(), 2);
        guard.restore(closed);
        let all = guard.take(at(70), true);
        assert_eq!(
            all.iter()
                .map(|(m, t)| (*m, t.refusals))
                .collect::<Vec<_>>(),
            [(1_800_000_000, 3), (1_800_000_060, 1)]
        );
        assert!(guard.take(at(70), true).is_empty());
    }
}
