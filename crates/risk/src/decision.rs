//! The pure rules of the decisions risk control takes part in: a limit
//! version decided by a second person of the deciding side (R1, R8), and a
//! disbursement that consumes a live reservation and keeps the liquidity
//! floor (R5, R6).

use crate::gate::liquidity_finding;
use crate::{LimitKind, LimitStatus, LimitVersion, LiquidityView, Reservation, ReservationStatus};
use creditops_domain::four_eyes::{self, Proposed, Verdict};
use creditops_domain::{
    CaseStatus, DomainError, RiskFinding, RuleId, Severity, Side, StaffId, Timestamp,
};
use rust_decimal::Decimal;

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
            let by = match kind {
                LimitKind::Borrower | LimitKind::Group => "back office",
                LimitKind::Sector | LimitKind::Country => "a second risk controller",
            };
            return Err(LimitRefusal::OtherSide { kind, by });
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
