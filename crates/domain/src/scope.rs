//! Unit scoping on the market side (S4, S8; hardening finding 9): which
//! credit cases a market person may see and work on, judged at the time of
//! the action against their unit then.
//!
//! A case belongs to the market unit its originator was in when it was
//! opened ([`StaffMember::market_units_at`]; a person in two market units
//! then opened it for both). Staff of that unit read and work
//! on it (edit, vote, disburse). A board-level market voter (the top level
//! of the competence order) reads and votes on every case, since any case
//! may need the board; a market voter reads and votes on a case escalated
//! to a level their competence covers (V5). Everybody else does not learn
//! that the case exists: the market service answers as for an unknown id.

use crate::{CompetenceOrder, CreditCase, Side, StaffMember, Timestamp, UnitId, Voter};

/// How far a market person may go with one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarketAccess {
    /// The case is not shown at all (answered as an unknown id).
    Hidden,
    /// Read the case and cast the first vote it needs of them.
    ReadAndVote,
    /// Everything the market service offers on a case of their own unit.
    Full,
}

impl MarketAccess {
    pub fn may_read(self) -> bool {
        self >= MarketAccess::ReadAndVote
    }

    pub fn may_vote(self) -> bool {
        self >= MarketAccess::ReadAndVote
    }

    /// Edit, disburse and every other change of the case (not a vote).
    pub fn may_change(self) -> bool {
        self == MarketAccess::Full
    }
}

/// Which cases a market person sees at one time: the rule of this module as
/// a value, so a list can select in the store exactly what [`Self::access`]
/// admits one case at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketScope {
    /// Nobody of the market side at that time: no case.
    Nothing,
    /// A board-level market voter: every case; full access to those of
    /// their own unit.
    Board { unit: UnitId },
    /// The cases of `unit`, and cases escalated to a level up to
    /// `escalated_up_to` (the person's competence level).
    Unit { unit: UnitId, escalated_up_to: u8 },
}

impl MarketScope {
    /// The scope of `caller` (their unit, side and competence at the time of
    /// the action, or `None` without a unique unit then) under `order`.
    pub fn of(caller: Option<&Voter>, order: &CompetenceOrder) -> Self {
        let Some(voter) = caller.filter(|v| v.side == Side::Market) else {
            return MarketScope::Nothing;
        };
        let unit = voter.unit_id.clone();
        if voter.competence_level > 0 && order.is_board(voter.competence_level) {
            MarketScope::Board { unit }
        } else {
            MarketScope::Unit {
                unit,
                escalated_up_to: voter.competence_level,
            }
        }
    }

    /// What the person may do with `case`, which belongs to `owning_units`
    /// (its originator's market units when it was opened; none if unknown).
    pub fn access(&self, case: &CreditCase, owning_units: &[UnitId]) -> MarketAccess {
        let (unit, escalated_up_to) = match self {
            MarketScope::Nothing => return MarketAccess::Hidden,
            MarketScope::Board { unit } => (unit, u8::MAX),
            MarketScope::Unit {
                unit,
                escalated_up_to,
            } => (unit, *escalated_up_to),
        };
        if owning_units.contains(unit) {
            return MarketAccess::Full;
        }
        let board = matches!(self, MarketScope::Board { .. });
        let escalated_to_them = case
            .escalation_level
            .is_some_and(|level| level <= escalated_up_to);
        if board || escalated_to_them {
            MarketAccess::ReadAndVote
        } else {
            MarketAccess::Hidden
        }
    }
}

impl StaffMember {
    /// The market units the person belonged to at `at`, suspended or not:
    /// the units that own the cases they opened then.
    pub fn market_units_at(&self, at: Timestamp) -> Vec<UnitId> {
        self.units_at(at)
            .filter(|u| u.side == Side::Market)
            .map(|u| u.unit_id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BorrowerId, CaseFile, CaseId, Money, RuleSet, StaffId};
    use chrono::Utc;

    fn voter(unit: &str, side: Side, level: u8) -> Voter {
        Voter {
            staff_id: StaffId::parse("p-1").unwrap(),
            unit_id: UnitId::parse(unit).unwrap(),
            side,
            competence_level: level,
            left_market_at: None,
        }
    }

    fn case(escalation_level: Option<u8>) -> CreditCase {
        let file = CaseFile::new(
            BorrowerId::generate(),
            Money::parse("100000", "EUR").unwrap(),
            "term_loan",
            60,
            "machinery",
        )
        .unwrap();
        let mut case = CreditCase::open(
            CaseId::generate(),
            file,
            StaffId::parse("lo-1").unwrap(),
            Utc::now(),
        );
        case.escalation_level = escalation_level;
        case
    }

    /// Finding 9: own unit works on the case; another market unit does not
    /// see it unless it is escalated to their level; the board sees all;
    /// nobody off the market side sees any.
    #[test]
    fn finding_9_market_units_see_only_their_own_cases() {
        use MarketAccess::{Full, Hidden, ReadAndVote};
        let order = RuleSet::initial().parameters.competence_order;
        let corporate = [UnitId::parse("market-corporate").unwrap()];
        let table: [(Voter, Option<u8>, MarketAccess); 10] = [
            (voter("market-corporate", Side::Market, 2), None, Full),
            (voter("market-corporate", Side::Market, 0), None, Full),
            (voter("market-retail", Side::Market, 2), None, Hidden),
            (voter("market-retail", Side::Market, 3), None, Hidden),
            (
                voter("market-retail", Side::Market, 3),
                Some(3),
                ReadAndVote,
            ),
            (voter("market-retail", Side::Market, 2), Some(3), Hidden),
            (voter("market-board", Side::Market, 4), None, ReadAndVote),
            (voter("market-board", Side::Market, 4), Some(4), ReadAndVote),
            (
                voter("backoffice-credit", Side::Backoffice, 4),
                None,
                Hidden,
            ),
            (voter("market-corporate", Side::Backoffice, 2), None, Hidden),
        ];
        for (caller, escalation, expected) in table {
            let scope = MarketScope::of(Some(&caller), &order);
            let got = scope.access(&case(escalation), &corporate);
            assert_eq!(
                got, expected,
                "{caller:?} on a case escalated to {escalation:?}"
            );
        }
        let nobody = MarketScope::of(None, &order);
        assert_eq!(nobody, MarketScope::Nothing);
        assert_eq!(nobody.access(&case(None), &corporate), Hidden);
        // A case whose owning unit is unknown is nobody's own.
        let own = MarketScope::of(Some(&voter("market-corporate", Side::Market, 2)), &order);
        assert_eq!(own.access(&case(None), &[]), Hidden);
    }

    #[test]
    fn only_full_access_changes_a_case() {
        assert!(!MarketAccess::Hidden.may_read());
        assert!(MarketAccess::ReadAndVote.may_vote() && !MarketAccess::ReadAndVote.may_change());
        assert!(MarketAccess::Full.may_change());
    }
}
