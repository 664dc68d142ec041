//! The rule sets as this process last read them from committed rows, so
//! that a request's actor lookup can hand them to the request's command
//! instead of the command reading them again.
//!
//! Rule sets are append-only (the migrations refuse UPDATE, DELETE and
//! TRUNCATE on `rule_sets`), so the committed rows only ever grow, and of
//! two reads of them each holds all rows of the other or is held by it:
//! two reads that counted the same number of rows read the same rows. The
//! actor lookup counts the rows in its own statement; where the count
//! equals the cached number, the cached rows are exactly what a read at
//! that moment would have returned.

use creditops_domain::{RuleSet, StaffMember};
use std::sync::{Arc, Mutex, PoisonError};

/// The latest committed rule sets this process has seen.
#[derive(Debug, Default)]
pub struct RuleSetCache {
    latest: Mutex<Option<Arc<Vec<RuleSet>>>>,
}

impl RuleSetCache {
    /// The cached rule sets if they are the `count` committed rows a read
    /// just counted; `None` when the cache holds another number (a rule
    /// set was committed since, or nothing was read yet).
    pub fn matching(&self, count: u64) -> Option<Arc<Vec<RuleSet>>> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest
            .as_ref()
            .filter(|sets| u64::try_from(sets.len()).is_ok_and(|len| len == count))
            .cloned()
    }

    /// Offers every rule-set version as one read of committed rows found
    /// them; never the read of a transaction that inserted one itself (its
    /// own row may still roll back). Of two reads the one with more rows is
    /// the later state and is kept.
    pub fn offer(&self, sets: &[RuleSet]) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if latest.as_ref().is_none_or(|held| held.len() < sets.len()) {
            *latest = Some(Arc::new(sets.to_vec()));
        }
    }
}

/// What a request's actor lookup found: the staff member and, where this
/// process held them, the rule sets committed at the moment of the same
/// read.
#[derive(Debug, Clone)]
pub struct StaffLookup {
    pub member: StaffMember,
    pub rule_sets: Option<Arc<Vec<RuleSet>>>,
    /// The authority version the same read found, where the backend keeps
    /// one (see [`crate::AuthorityCache`]).
    pub authority: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(versions: &[i64]) -> Vec<RuleSet> {
        versions
            .iter()
            .map(|&version| RuleSet {
                version,
                ..RuleSet::initial()
            })
            .collect()
    }

    #[test]
    fn an_empty_cache_matches_no_count() {
        let cache = RuleSetCache::default();
        assert!(cache.matching(0).is_none());
        assert!(cache.matching(1).is_none());
    }

    #[test]
    fn the_cache_matches_only_the_count_it_holds() {
        let cache = RuleSetCache::default();
        cache.offer(&sets(&[1, 2]));
        assert_eq!(cache.matching(2).as_deref(), Some(&sets(&[1, 2])));
        assert!(cache.matching(1).is_none());
        assert!(cache.matching(3).is_none());
    }

    #[test]
    fn an_older_read_does_not_replace_a_newer_one() {
        let cache = RuleSetCache::default();
        cache.offer(&sets(&[1, 2, 3]));
        cache.offer(&sets(&[1, 2]));
        assert_eq!(cache.matching(3).as_deref(), Some(&sets(&[1, 2, 3])));
        cache.offer(&sets(&[1, 2, 3, 4]));
        assert!(cache.matching(3).is_none());
        assert_eq!(cache.matching(4).as_deref(), Some(&sets(&[1, 2, 3, 4])));
    }
}
