//! The actor lookups a service process made, kept for its commands, and the
//! version of the authority they were read at.
//!
//! Every request looks up its caller: the person, their units, roles and
//! competences, and the rule sets (see [`crate::StaffLookup`]). On a backend
//! that versions those tables together (PostgreSQL: `authority_version`,
//! moved by a trigger on every write to them), a lookup carries the
//! version it read, and a command may run under a kept lookup instead of
//! reading it again, because its commit checks that the version has not
//! moved ([`crate::AdminTx::expect_authority`]). A command whose check
//! fails writes nothing; the caller then looks the actor up again and runs
//! the request once more. Reads (which commit nothing) do not use kept
//! lookups.

use crate::StaffLookup;
use creditops_domain::StaffId;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Kept lookups beyond this many are all dropped (a bank's staff fits many
/// times over; a flood of distinct callers does not grow memory).
const MOST_KEPT: usize = 50_000;

/// Lookups of the latest authority version this process has seen.
#[derive(Debug, Default)]
pub struct AuthorityCache {
    state: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    version: u64,
    /// Each lookup with the number of rule sets its read counted.
    lookups: HashMap<StaffId, (StaffLookup, u64)>,
}

impl AuthorityCache {
    /// The kept lookup of `id`, if one was read at the latest version this
    /// process has seen, and the number of rule sets the read counted.
    pub fn lookup(&self, id: &StaffId) -> Option<(StaffLookup, u64)> {
        let kept = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        kept.lookups.get(id).cloned()
    }

    /// Keeps a lookup just read from committed rows, which counted
    /// `rule_set_count` rule sets. One read at a later version than the kept
    /// ones drops them all (they may be stale); one read at an earlier
    /// version is not kept.
    pub fn keep(&self, lookup: &StaffLookup, rule_set_count: u64) {
        let Some(version) = lookup.authority else {
            return;
        };
        let mut kept = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if version > kept.version || kept.lookups.len() >= MOST_KEPT {
            kept.lookups.clear();
            kept.version = kept.version.max(version);
        }
        if version == kept.version {
            kept.lookups
                .insert(lookup.member.id.clone(), (lookup.clone(), rule_set_count));
        }
    }

    /// Drops every kept lookup read before `version`, the version found now.
    pub fn moved_to(&self, version: u64) {
        let mut kept = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if version > kept.version {
            kept.lookups.clear();
            kept.version = version;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditops_domain::{StaffMember, StaffStatus};

    fn lookup(id: &str, authority: Option<u64>) -> StaffLookup {
        StaffLookup {
            member: StaffMember {
                id: StaffId::parse(id).expect("id"),
                status: StaffStatus::Active,
                units: Vec::new(),
                roles: Vec::new(),
                competences: Vec::new(),
            },
            rule_sets: None,
            authority,
        }
    }

    fn kept(cache: &AuthorityCache, id: &str) -> Option<Option<u64>> {
        cache
            .lookup(&StaffId::parse(id).expect("id"))
            .map(|(found, _)| found.authority)
    }

    #[test]
    fn lookups_without_a_version_are_not_kept() {
        let cache = AuthorityCache::default();
        cache.keep(&lookup("lo-1", None), 0);
        assert_eq!(kept(&cache, "lo-1"), None);
    }

    #[test]
    fn a_later_version_drops_every_earlier_lookup() {
        let cache = AuthorityCache::default();
        cache.keep(&lookup("lo-1", Some(3)), 0);
        cache.keep(&lookup("ba-1", Some(3)), 0);
        assert_eq!(kept(&cache, "lo-1"), Some(Some(3)));
        cache.keep(&lookup("ba-1", Some(4)), 0);
        assert_eq!(kept(&cache, "lo-1"), None, "read before the change");
        assert_eq!(kept(&cache, "ba-1"), Some(Some(4)));
        cache.keep(&lookup("lo-1", Some(3)), 0);
        assert_eq!(kept(&cache, "lo-1"), None, "an older read is not kept");
    }

    #[test]
    fn a_version_found_moved_drops_the_kept_lookups() {
        let cache = AuthorityCache::default();
        cache.keep(&lookup("lo-1", Some(3)), 0);
        cache.moved_to(3);
        assert_eq!(kept(&cache, "lo-1"), Some(Some(3)), "not moved");
        cache.moved_to(5);
        assert_eq!(kept(&cache, "lo-1"), None);
        cache.keep(&lookup("lo-1", Some(4)), 0);
        assert_eq!(kept(&cache, "lo-1"), None, "read before the version found");
    }
}
