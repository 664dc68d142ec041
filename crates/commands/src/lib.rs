//! The use cases of the platform, each a function of (context, actor,
//! input) that loads what it needs, calls the pure rules of `domain` and
//! `risk`, persists the result and audits it in the same transaction (A1).
//! Nothing here knows about HTTP: the services parse requests into inputs,
//! run these commands (inside the idempotent transaction they open) and
//! render what they return; a web console can call the very same commands.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod audit_bundle;
pub mod audit_reads;
pub mod audit_trail;
pub mod balance_rows;
pub mod cases;
pub mod collateral;
mod context;
pub mod credit_file;
mod error;
pub mod facts;
pub mod granting;
pub mod groups;
pub mod inputs;
pub mod limits;
pub mod market;
pub mod monitoring;
pub mod positions;
pub mod proposals;
pub mod reports;
pub mod risk;
pub mod votes;
pub mod watcher;

pub use context::{Actor, Context, action_time};
pub use error::{CommandError, CommandResult, InputProblem};

/// The first `limit` of `items` (sorted by `key`) whose key comes after
/// `after`: paging of the small tables the store hands out whole.
pub(crate) fn page_of<T, K: Ord>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> K,
    after: Option<&K>,
    limit: u32,
) -> Vec<T> {
    items.sort_by_key(|item| key(item));
    items
        .into_iter()
        .filter(|item| after.is_none_or(|after| key(item) > *after))
        .take(limit as usize)
        .collect()
}
