//! The pure rules of the decisions risk control takes part in: a limit
//! version decided by a second person of the deciding side (R1, R8), and a
//! disbursement that consumes a live reservation and keeps the liquidity
//! floor (R5, R6).

use crate::gate::liquidity_finding;
use crate::{LimitKind, LimitStatus, LimitVersion, LiquidityView, Reservation, ReservationStatus};
use creditops_domain::four_eyes::{self, Proposed, Verdict};
use creditops_domain::{
    CaseStatus, DomainError, RiskFinding, RuleId, Severity, Side, StaffId, Timestamp, Voter,
};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

/// Why a limit version may not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    /// The deciding side of this kind of limit is another one (R8).
    #[error("{kind} limits are decided by {by}", kind = kind.as_str())]
    OtherSide { kind: LimitKind, by: &'static str },
    /// Decided already, or the decider proposed it (R8, four-eyes).
    #[error(transparent)]
    Rule(#[from] DomainError),
}

impl Proposed for LimitVersion {
    fn proposer(&self) -> &StaffId {
        &self.proposed_by
    }

    fn decided_as(&self) -> Option<&'static str> {
        (self.status != LimitStatus::Pending).then(|| self.status.as_str())
    }
}

impl LimitVersion {
    /// R8: the version awaits a decision, `decider` did not propose it, and
    /// the deciding side (`decides`: the kinds it decides) decides its kind;
    /// then it is decided as `verdict` at `at`.
    pub fn decide(
        &mut self,
        verdict: Verdict,
        decider: &StaffId,
        decides: &[LimitKind],
        at: Timestamp,
    ) -> Result<(), LimitRefusal> {
        let kind = self.subject.kind();
        if !decides.contains(&kind) {
            return Err(LimitRefusal::OtherSide {
                kind,
                by: "back office",
            });
        }
        four_eyes::require_decidable(
            self,
            "limit version",
            decider,
            RuleId::R8,
            "the proposer of a limit cannot decide it (four-eyes)",
        )?;
        self.status = match verdict {
            Verdict::Approve => LimitStatus::Approved,
            Verdict::Reject => LimitStatus::Rejected,
        };
        self.decided_by = Some(decider.clone());
        self.decided_at = Some(at);
        Ok(())
    }
}

/// Who may approve a limit (R8, with S5 and S6 as for a second vote): a
/// member of a back-office unit at the time of the decision, out of the
/// cooling-off after leaving market (`cooling_off_start`: the earliest exit
/// that no longer counts), who neither looks after the borrower or a member
/// of its group as relationship manager nor is recorded as a related party.
/// For sector and country limits the two sets are empty.
pub fn check_limit_approver(
    approver: Option<&Voter>,
    cooling_off_start: Timestamp,
    relationship_managers: &BTreeSet<StaffId>,
    related_parties: &BTreeSet<StaffId>,
) -> Result<(), DomainError> {
    let approver = match approver {
        Some(v) if v.side == Side::Backoffice => v,
        _ => {
            return Err(DomainError::rule(
                RuleId::R8,
                "limits are approved by a member of a back-office unit at the time of the decision",
            ));
        }
    };
    let who = &approver.staff_id;
    if approver
        .left_market_at
        .is_some_and(|left| left > cooling_off_start)
    {
        return Err(DomainError::rule(
            RuleId::S5,
            format!(
                "{who} left a market unit within the cooling-off period and may not approve a limit"
            ),
        ));
    }
    if relationship_managers.contains(who) {
        return Err(DomainError::rule(
            RuleId::S6,
            format!("{who} looks after the borrower (or its group) as relationship manager"),
        ));
    }
    if related_parties.contains(who) {
        return Err(DomainError::rule(
            RuleId::S6,
            format!("{who} is recorded as a related party of the borrower (or its group)"),
        ));
    }
    Ok(())
}

/// Why a case may not be disbursed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisbursementRefusal {
    #[error("only an approved case can be disbursed; it is {0}")]
    NotApproved(CaseStatus),
    /// S1: disbursing is market work.
    #[error("only market staff disburse")]
    NotMarket,
    /// R5: there is no headroom held to spend.
    #[error("the case holds no reservation, so nothing can be disbursed")]
    NoReservation,
    /// R5: the headroom was released.
    #[error(
        "the reservation expired at {0}; the headroom was released and the case must be \
         decided again"
    )]
    Expired(Timestamp),
    /// R5: a reservation is consumed once.
    #[error("the case was disbursed already")]
    Disbursed,
    /// R6: the floor cannot be checked.
    #[error("no liquidity position is on record, so the LCR floor cannot be checked")]
    NoPosition,
    /// R6: the LCR with the reservation is below the floor.
    #[error("disbursement refused: {0}")]
    BelowFloor(String),
}

impl DisbursementRefusal {
    /// The rule behind the refusal, if one is.
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            Self::NotApproved(_) => None,
            Self::NotMarket => Some(RuleId::S1),
            Self::NoReservation | Self::Expired(_) | Self::Disbursed => Some(RuleId::R5),
            Self::NoPosition | Self::BelowFloor(_) => Some(RuleId::R6),
        }
    }
}

/// What a disbursement is checked against.
#[derive(Debug, Clone, Copy)]
pub struct DisbursementCheck<'a> {
    pub case_status: CaseStatus,
    /// The disburser's side at the time, if they have a unique unit.
    pub side: Option<Side>,
    pub reservation: Option<&'a Reservation>,
    /// The liquidity now: the reservation already counts as committed cash.
    pub liquidity: Option<&'a LiquidityView>,
    pub now: Timestamp,
}

/// R5, R6 (and S1) at disbursement: an approved case, disbursed by market
/// staff, consumes its reservation once while it is live, and the LCR with
/// it still meets the floor. Returns the liquidity finding.
pub fn check_disbursement(
    check: &DisbursementCheck<'_>,
) -> Result<RiskFinding, DisbursementRefusal> {
    if check.case_status != CaseStatus::Approved {
        return Err(DisbursementRefusal::NotApproved(check.case_status));
    }
    if check.side != Some(Side::Market) {
        return Err(DisbursementRefusal::NotMarket);
    }
    let reservation = check
        .reservation
        .ok_or(DisbursementRefusal::NoReservation)?;
    match reservation.status {
        ReservationStatus::Active if reservation.expires_at > check.now => {}
        ReservationStatus::Active | ReservationStatus::Expired => {
            return Err(DisbursementRefusal::Expired(reservation.expires_at));
        }
        ReservationStatus::Consumed => return Err(DisbursementRefusal::Disbursed),
    }
    let view = check.liquidity.ok_or(DisbursementRefusal::NoPosition)?;
    let finding = liquidity_finding(view, Decimal::ZERO);
    if finding.severity != Severity::Within {
        return Err(DisbursementRefusal::BelowFloor(finding.detail));
    }
    Ok(finding)
}

/// The reservation as a disbursement by `by` at `at` consumes it (R5).
pub fn consume(reservation: Reservation, by: &StaffId, at: Timestamp) -> Reservation {
    Reservation {
        status: ReservationStatus::Consumed,
        closed_at: Some(at),
        closed_by: Some(by.clone()),
        ..reservation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LimitSubject, LiquidityPosition};
    use chrono::Utc;

    fn staff(id: &str) -> StaffId {
        StaffId::parse(id).unwrap()
    }

    /// Hardening finding 17: the back-office approver of a limit passes
    /// S5 and S6 as a second voter would.
    #[test]
    fn r8_s5_s6_the_limit_approver_is_independent() {
        let now = Utc::now();
        let cooling_off_start = now - chrono::Duration::days(180);
        let approver = |id: &str, side: Side, left: Option<i64>| Voter {
            staff_id: staff(id),
            unit_id: creditops_domain::UnitId::parse("unit").unwrap(),
            side,
            competence_level: 2,
            left_market_at: left.map(|days| now - chrono::Duration::days(days)),
        };
        let managers = BTreeSet::from([staff("rm-1")]);
        let related = BTreeSet::from([staff("rel-1")]);
        let table = [
            (
                "an analyst",
                Some(approver("ba-1", Side::Backoffice, None)),
                None,
            ),
            (
                "left market long ago",
                Some(approver("ba-2", Side::Backoffice, Some(400))),
                None,
            ),
            (
                "left market 30 days ago",
                Some(approver("ba-3", Side::Backoffice, Some(30))),
                Some(RuleId::S5),
            ),
            (
                "the relationship manager",
                Some(approver("rm-1", Side::Backoffice, None)),
                Some(RuleId::S6),
            ),
            (
                "a related party",
                Some(approver("rel-1", Side::Backoffice, None)),
                Some(RuleId::S6),
            ),
            (
                "a risk controller",
                Some(approver("rc-2", Side::Risk, None)),
                Some(RuleId::R8),
            ),
            ("no unique unit", None, Some(RuleId::R8)),
        ];
        for (row, who, refused) in table {
            let result = check_limit_approver(who.as_ref(), cooling_off_start, &managers, &related);
            assert_eq!(result.err().and_then(|e| e.rule_id()), refused, "{row}");
        }
    }

    fn pending(kind_subject: LimitSubject) -> LimitVersion {
        LimitVersion {
            id: uuid::Uuid::now_v7(),
            subject: kind_subject,
            version: 1,
            amount: Decimal::from(1_000_000),
            tolerance_percent: Decimal::ZERO,
            reason: "test".into(),
            proposed_by: staff("rc-1"),
            proposed_at: Utc::now(),
            status: LimitStatus::Pending,
            decided_by: None,
            decided_at: None,
        }
    }

    #[test]
    fn r8_a_limit_is_decided_by_another_person_of_the_deciding_side() {
        let now = Utc::now();
        let sector = || pending(LimitSubject::Sector("D35".parse().unwrap()));
        // A side that decides only counterparty limits may not decide a
        // sector limit; back office decides every kind (R8).
        let counterparties = [LimitKind::Borrower, LimitKind::Group];
        let every_kind = [
            LimitKind::Borrower,
            LimitKind::Group,
            LimitKind::Sector,
            LimitKind::Country,
        ];
        let err = sector()
            .decide(Verdict::Approve, &staff("bo-1"), &counterparties, now)
            .unwrap_err();
        assert_eq!(err.to_string(), "sector limits are decided by back office");
        let err = sector()
            .decide(Verdict::Approve, &staff("rc-1"), &every_kind, now)
            .unwrap_err();
        assert!(matches!(err, LimitRefusal::Rule(e) if e.rule_id() == Some(RuleId::R8)));
        let mut limit = sector();
        limit
            .decide(Verdict::Reject, &staff("rc-2"), &every_kind, now)
            .unwrap();
        assert_eq!(limit.status, LimitStatus::Rejected);
        assert_eq!(limit.decided_by, Some(staff("rc-2")));
        let err = limit
            .decide(Verdict::Approve, &staff("rc-3"), &every_kind, now)
            .unwrap_err();
        assert_eq!(
            err,
            LimitRefusal::Rule(DomainError::InvalidState(
                "the limit version is rejected already".into()
            ))
        );
    }

    fn reservation(status: ReservationStatus, expires_in_days: i64) -> Reservation {
        let now = Utc::now();
        Reservation {
            case_id: creditops_domain::CaseId::generate(),
            borrower: creditops_domain::BorrowerId::generate(),
            amount: Decimal::from(100),
            status,
            reserved_at: now,
            expires_at: now + chrono::Duration::days(expires_in_days),
            closed_at: None,
            closed_by: None,
        }
    }

    #[test]
    fn r5_r6_a_disbursement_consumes_a_live_reservation_above_the_floor() {
        let now = Utc::now();
        let position = LiquidityPosition {
            version: 1,
            hqla: Decimal::from(2_000),
            outflows_30d: Decimal::from(1_000),
            inflows_30d: Decimal::ZERO,
            floor_percent: Decimal::from(110),
            recorded_by: staff("rc-1"),
            recorded_at: now,
        };
        let view = LiquidityView::new(&position, Decimal::ZERO);
        let live = reservation(ReservationStatus::Active, 1);
        let check = |status, side, reservation, liquidity| {
            check_disbursement(&DisbursementCheck {
                case_status: status,
                side,
                reservation,
                liquidity,
                now,
            })
        };
        let market = Some(Side::Market);
        let ok = check(CaseStatus::Approved, market, Some(&live), Some(&view));
        assert_eq!(ok.unwrap().severity, Severity::Within);
        let refused = |r: Result<RiskFinding, DisbursementRefusal>| r.unwrap_err().rule();
        assert_eq!(
            refused(check(
                CaseStatus::Approved,
                Some(Side::Backoffice),
                Some(&live),
                None
            )),
            Some(RuleId::S1)
        );
        assert_eq!(
            refused(check(CaseStatus::Approved, market, None, None)),
            Some(RuleId::R5)
        );
        let expired = reservation(ReservationStatus::Active, -1);
        assert_eq!(
            refused(check(
                CaseStatus::Approved,
                market,
                Some(&expired),
                Some(&view)
            )),
            Some(RuleId::R5)
        );
        let consumed = consume(live.clone(), &staff("lo-1"), now);
        assert_eq!(
            check(CaseStatus::Approved, market, Some(&consumed), Some(&view)).unwrap_err(),
            DisbursementRefusal::Disbursed
        );
        assert_eq!(
            refused(check(CaseStatus::Approved, market, Some(&live), None)),
            Some(RuleId::R6)
        );
        assert_eq!(
            refused(check(CaseStatus::Draft, market, Some(&live), Some(&view))),
            None
        );
    }
}
