//! The four-eyes principle as one building block: what one person proposed
//! or cast first is decided by another, and only while it awaits a
//! decision. Credit cases (the second vote, V1), limit versions (R8) and
//! change proposals (S9) are all checked with it.

use crate::{DomainError, RuleId, StaffId};

/// What the second pair of eyes decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

/// Something proposed by one person that awaits another's decision.
pub trait Proposed {
    /// Who proposed it.
    fn proposer(&self) -> &StaffId;
    /// Its status, if it is decided already (e.g. "approved").
    fn decided_as(&self) -> Option<&'static str>;
}

/// Refuses under `rule` when `second` is the same person as `first`.
pub fn require_other_person(
    first: &StaffId,
    second: &StaffId,
    rule: RuleId,
    refusal: &str,
) -> Result<(), DomainError> {
    if first == second {
        return Err(DomainError::rule(rule, refusal));
    }
    Ok(())
}

/// Whether `decider` may decide `item` (called `what` in the refusal): it
/// awaits a decision (else a conflict), and `decider` did not propose it
/// (else refused under `rule` with `refusal`).
pub fn require_decidable(
    item: &impl Proposed,
    what: &str,
    decider: &StaffId,
    rule: RuleId,
    refusal: &str,
) -> Result<(), DomainError> {
    if let Some(status) = item.decided_as() {
        return Err(DomainError::InvalidState(format!(
            "the {what} is {status} already"
        )));
    }
    require_other_person(item.proposer(), decider, rule, refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(StaffId, Option<&'static str>);

    impl Proposed for Item {
        fn proposer(&self) -> &StaffId {
            &self.0
        }
        fn decided_as(&self) -> Option<&'static str> {
            self.1
        }
    }

    fn id(s: &str) -> StaffId {
        StaffId::parse(s).unwrap()
    }

    #[test]
    fn the_proposer_never_decides() {
        let item = Item(id("adm-1"), None);
        let err = require_decidable(&item, "proposal", &id("adm-1"), RuleId::S9, "no").unwrap_err();
        assert_eq!(err.rule_id(), Some(RuleId::S9));
        assert!(require_decidable(&item, "proposal", &id("adm-2"), RuleId::S9, "no").is_ok());
    }

    #[test]
    fn a_decided_item_is_a_conflict() {
        let item = Item(id("adm-1"), Some("approved"));
        let err = require_decidable(&item, "proposal", &id("adm-2"), RuleId::S9, "no").unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidState("the proposal is approved already".into())
        );
    }
}
