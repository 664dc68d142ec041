//! Four-eyes changes to the staff directory and the rules (S3, S7, S9): what
//! may be proposed, and the pure checks a proposal passes when proposed and
//! again when decided (the directory may have changed in between).

use crate::four_eyes::{self, Proposed};
use crate::rules::MAX_LEVEL;
use crate::{DomainError, Role, RoleAssignment, RuleId, RuleParameters, Side, SodMatrix, StaffId};
use crate::{StaffMember, Timestamp};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a four-eyes change proposal changes (S9): the staff directory and
/// the rules (decided by a second administrator), and the inputs a credit
/// decision depends on (decided by a second person of the proposer's own
/// function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    RoleAssignment,
    CompetenceGrant,
    RuleSet,
    /// A borrower joins or leaves a group of connected clients (V4, R2).
    GroupMembership,
    /// Tier 1 capital, which caps large exposures (R3).
    Tier1Capital,
    /// The liquidity position and its LCR floor (R6).
    LiquidityPosition,
    /// A new person in a populated directory (S3).
    StaffOnboarding,
    /// A person moves to another unit (S3, S4).
    UnitMove,
    /// A role ends (S4).
    RoleEnd,
    /// A person may not act until further notice (S4).
    Suspension,
    /// A person leaves the bank (S4).
    Leaver,
}

impl ProposalKind {
    pub const ALL: [ProposalKind; 11] = [
        ProposalKind::RoleAssignment,
        ProposalKind::CompetenceGrant,
        ProposalKind::RuleSet,
        ProposalKind::GroupMembership,
        ProposalKind::Tier1Capital,
        ProposalKind::LiquidityPosition,
        ProposalKind::StaffOnboarding,
        ProposalKind::UnitMove,
        ProposalKind::RoleEnd,
        ProposalKind::Suspension,
        ProposalKind::Leaver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::RoleAssignment => "role_assignment",
            ProposalKind::CompetenceGrant => "competence_grant",
            ProposalKind::RuleSet => "rule_set",
            ProposalKind::GroupMembership => "group_membership",
            ProposalKind::Tier1Capital => "tier1_capital",
            ProposalKind::LiquidityPosition => "liquidity_position",
            ProposalKind::StaffOnboarding => "staff_onboarding",
            ProposalKind::UnitMove => "unit_move",
            ProposalKind::RoleEnd => "role_end",
            ProposalKind::Suspension => "suspension",
            ProposalKind::Leaver => "leaver",
        }
    }

    /// The role that proposes and (as another person) decides this kind.
    pub fn decider_role(self) -> Role {
        match self {
            ProposalKind::GroupMembership => Role::CreditAnalyst,
            ProposalKind::Tier1Capital | ProposalKind::LiquidityPosition => Role::RiskController,
            ProposalKind::RoleAssignment
            | ProposalKind::CompetenceGrant
            | ProposalKind::RuleSet
            | ProposalKind::StaffOnboarding
            | ProposalKind::UnitMove
            | ProposalKind::RoleEnd
            | ProposalKind::Suspension
            | ProposalKind::Leaver => Role::UserAdmin,
        }
    }

    /// The rule a refusal to decide this kind names.
    pub fn rule(self) -> RuleId {
        match self {
            ProposalKind::GroupMembership => RuleId::V4,
            ProposalKind::Tier1Capital => RuleId::R3,
            ProposalKind::LiquidityPosition => RuleId::R6,
            _ => RuleId::S9,
        }
    }
}

impl std::str::FromStr for ProposalKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ProposalKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown proposal kind {s:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Pending,
    Approved,
    Rejected,
}

impl ProposalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Approved => "approved",
            ProposalStatus::Rejected => "rejected",
        }
    }
}

impl std::str::FromStr for ProposalStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(ProposalStatus::Pending),
            "approved" => Ok(ProposalStatus::Approved),
            "rejected" => Ok(ProposalStatus::Rejected),
            _ => Err(format!("unknown proposal status {s:?}")),
        }
    }
}

/// A four-eyes change (S3, S9): proposed by one person, decided by another.
/// `payload` is the change as JSON (its shape depends on `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeProposal {
    pub id: uuid::Uuid,
    pub kind: ProposalKind,
    pub payload: serde_json::Value,
    pub proposed_by: StaffId,
    pub proposed_at: Timestamp,
    pub status: ProposalStatus,
    pub decided_by: Option<StaffId>,
    pub decided_at: Option<Timestamp>,
}

impl Proposed for ChangeProposal {
    fn proposer(&self) -> &StaffId {
        &self.proposed_by
    }

    fn decided_as(&self) -> Option<&'static str> {
        (self.status != ProposalStatus::Pending).then(|| self.status.as_str())
    }
}

impl ChangeProposal {
    /// S9: a pending proposal is decided by a second person of the
    /// deciding role (a second administrator for the directory and the
    /// rules), never by its proposer.
    pub fn check_decider(&self, decider: &StaffId) -> Result<(), DomainError> {
        let refusal = match self.kind.decider_role() {
            Role::UserAdmin => {
                "a change needs a second administrator: the proposer cannot decide it"
            }
            Role::CreditAnalyst => {
                "a change of group membership needs a second credit analyst: the proposer cannot decide it"
            }
            _ => {
                "a change of a bank-wide figure needs a second risk controller: the proposer cannot decide it"
            }
        };
        four_eyes::require_decidable(self, "proposal", decider, self.kind.rule(), refusal)
    }

    /// Records the decision of `decider` at `at`.
    pub fn decide(&mut self, verdict: four_eyes::Verdict, decider: &StaffId, at: Timestamp) {
        self.status = match verdict {
            four_eyes::Verdict::Approve => ProposalStatus::Approved,
            four_eyes::Verdict::Reject => ProposalStatus::Rejected,
        };
        self.decided_by = Some(decider.clone());
        self.decided_at = Some(at);
    }
}

/// A proposed change; the shape depends on `kind`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    RoleAssignment {
        staff_id: StaffId,
        role: Role,
        valid_from: DateTime<Utc>,
        #[serde(default)]
        valid_to: Option<DateTime<Utc>>,
    },
    CompetenceGrant {
        staff_id: StaffId,
        side: Side,
        level: u8,
        valid_from: DateTime<Utc>,
        #[serde(default)]
        valid_to: Option<DateTime<Utc>>,
    },
    RuleSet {
        valid_from: DateTime<Utc>,
        parameters: RuleParameters,
    },
}

/// How far a proposed start may lie before the moment of proposal (a
/// client's clock may lag); such a start is taken as the moment itself.
pub const BACK_DATING_GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// Why a change may not be proposed or approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefusal {
    /// Malformed, or refused by a segregation rule (S3, S7).
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// A rule set takes effect from now on (S9): decisions already taken
    /// were evaluated under the rules of their time.
    #[error("valid_from lies in the past; a rule set takes effect from now on or later")]
    RuleSetInThePast,
    /// The SoD matrix names no home side for the role (misconfiguration).
    #[error("the SoD matrix has no side for this role")]
    NoHomeSide,
}

impl Change {
    pub fn kind(&self) -> ProposalKind {
        match self {
            Change::RoleAssignment { .. } => ProposalKind::RoleAssignment,
            Change::CompetenceGrant { .. } => ProposalKind::CompetenceGrant,
            Change::RuleSet { .. } => ProposalKind::RuleSet,
        }
    }

    /// S4: a proposed role or competence starts now or later, so nobody
    /// can write a grant into the dated history that S4 and S5 are checked
    /// against (hardening finding 10). A start earlier than `now` by at most
    /// [`BACK_DATING_GRACE`] (a client's clock may lag) is taken as now.
    pub fn check_not_back_dated(&self, now: Timestamp) -> Result<(), DomainError> {
        let from = match self {
            Change::RoleAssignment { valid_from, .. }
            | Change::CompetenceGrant { valid_from, .. } => *valid_from,
            Change::RuleSet { .. } => return Ok(()),
        };
        if from < now - BACK_DATING_GRACE {
            return Err(DomainError::rule(
                RuleId::S4,
                format!(
                    "valid_from {from} lies in the past: roles and competences start now or \
                     later, the dated history is never rewritten"
                ),
            ));
        }
        Ok(())
    }

    /// The change as it takes effect at `at`: a role or competence starts
    /// no earlier than that (a four-eyes change counts from its approval).
    /// Refused if its validity ended by then.
    pub fn effective_at(&self, at: Timestamp) -> Result<Change, DomainError> {
        let start = |from: Timestamp, to: Option<Timestamp>| {
            let from = from.max(at);
            if to.is_some_and(|to| to <= from) {
                return Err(DomainError::Invalid(
                    "the validity period ended before the change could take effect".into(),
                ));
            }
            Ok(from)
        };
        Ok(match self.clone() {
            Change::RoleAssignment {
                staff_id,
                role,
                valid_from,
                valid_to,
            } => Change::RoleAssignment {
                staff_id,
                role,
                valid_from: start(valid_from, valid_to)?,
                valid_to,
            },
            Change::CompetenceGrant {
                staff_id,
                side,
                level,
                valid_from,
                valid_to,
            } => Change::CompetenceGrant {
                staff_id,
                side,
                level,
                valid_from: start(valid_from, valid_to)?,
                valid_to,
            },
            rules @ Change::RuleSet { .. } => rules,
        })
    }

    /// The person whose roles or competences change, if any.
    pub fn target(&self) -> Option<&StaffId> {
        match self {
            Change::RoleAssignment { staff_id, .. } | Change::CompetenceGrant { staff_id, .. } => {
                Some(staff_id)
            }
            Change::RuleSet { .. } => None,
        }
    }

    /// The checks that need nothing from the directory, in the order they
    /// are reported: S7 (nobody changes their own roles or competences), the
    /// validity period, the competence grant's side and level, and a rule
    /// set's parameters and start (S9).
    pub fn check(&self, actor: &StaffId, now: Timestamp) -> Result<(), ChangeRefusal> {
        if self.target() == Some(actor) {
            return Err(DomainError::rule(
                RuleId::S7,
                "nobody may change their own roles or competences",
            )
            .into());
        }
        match self {
            Change::RoleAssignment {
                valid_from,
                valid_to,
                ..
            } => check_period(*valid_from, *valid_to)?,
            Change::CompetenceGrant {
                side,
                level,
                valid_from,
                valid_to,
                ..
            } => {
                check_period(*valid_from, *valid_to)?;
                if !matches!(side, Side::Market | Side::Backoffice) {
                    return Err(DomainError::Invalid(
                        "competence levels exist for the market and backoffice sides only".into(),
                    )
                    .into());
                }
                if !(1..=MAX_LEVEL).contains(level) {
                    return Err(DomainError::Invalid(format!(
                        "level must be between 1 and {MAX_LEVEL}"
                    ))
                    .into());
                }
            }
            Change::RuleSet {
                valid_from,
                parameters,
            } => {
                parameters.validate()?;
                if *valid_from < now {
                    return Err(ChangeRefusal::RuleSetInThePast);
                }
            }
        }
        Ok(())
    }
}

fn check_period(from: Timestamp, to: Option<Timestamp>) -> Result<(), DomainError> {
    if to.is_some_and(|to| to <= from) {
        return Err(DomainError::Invalid(
            "valid_to must be after valid_from".into(),
        ));
    }
    Ok(())
}

/// S3 for a role assignment to `member`: no incompatible role in the same
/// period (the SoD matrix), and the person sits in a unit of the role's
/// home side when the assignment starts.
pub fn check_role_assignment(
    sod: &SodMatrix,
    member: &StaffMember,
    new: &RoleAssignment,
) -> Result<(), ChangeRefusal> {
    sod.check_assignment(&member.roles, new)?;
    let role = new.role;
    let home = sod.home_side(role).ok_or(ChangeRefusal::NoHomeSide)?;
    let side_then = member.voter_at(new.valid_from).map(|v| v.side);
    if side_then != Some(home) {
        return Err(DomainError::rule(
            RuleId::S3,
            format!(
                "role {role} belongs to the {home} side, but {} is not in a unique {home} unit on {}",
                member.id,
                new.valid_from.date_naive()
            ),
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Hardening finding 10 (S4): no back-dated grants; a four-eyes change
    /// starts when it is approved at the earliest.
    #[test]
    fn s4_grants_start_now_or_later() {
        let now = Utc::now();
        let grant = |from: Timestamp, to: Option<Timestamp>| Change::CompetenceGrant {
            staff_id: StaffId::parse("lo-2").unwrap(),
            side: Side::Market,
            level: 3,
            valid_from: from,
            valid_to: to,
        };
        let start = |change: Change| match change {
            Change::CompetenceGrant { valid_from, .. } => valid_from,
            _ => unreachable!(),
        };
        let years_ago = now - chrono::Duration::days(6 * 365);
        let refused = grant(years_ago, None)
            .check_not_back_dated(now)
            .unwrap_err();
        assert_eq!(refused.rule_id(), Some(RuleId::S4));
        let lagging = grant(now - chrono::Duration::minutes(2), None);
        lagging.check_not_back_dated(now).unwrap();
        assert_eq!(start(lagging.effective_at(now).unwrap()), now);
        let later = now + chrono::Duration::days(3);
        assert_eq!(start(grant(later, None).effective_at(now).unwrap()), later);
        // Approved a day later: it counts from the approval.
        let approved = now + chrono::Duration::days(1);
        assert_eq!(
            start(grant(now, None).effective_at(approved).unwrap()),
            approved
        );
        // A period that ended before the approval takes no effect at all.
        let ended = grant(now, Some(now + chrono::Duration::hours(1)));
        assert!(matches!(
            ended.effective_at(approved),
            Err(DomainError::Invalid(_))
        ));
    }

    use super::*;
    use crate::four_eyes::Verdict;
    use chrono::Duration;

    fn staff(id: &str) -> StaffId {
        StaffId::parse(id).unwrap()
    }

    fn grant(staff_id: &str, side: Side, level: u8) -> Change {
        Change::CompetenceGrant {
            staff_id: staff(staff_id),
            side,
            level,
            valid_from: Utc::now(),
            valid_to: None,
        }
    }

    #[test]
    fn s7_nobody_changes_their_own_competences() {
        let err = grant("adm-1", Side::Market, 1)
            .check(&staff("adm-1"), Utc::now())
            .unwrap_err();
        assert!(matches!(err, ChangeRefusal::Rule(e) if e.rule_id() == Some(RuleId::S7)));
        assert!(
            grant("lo-1", Side::Market, 1)
                .check(&staff("adm-1"), Utc::now())
                .is_ok()
        );
    }

    #[test]
    fn grants_need_a_voting_side_a_known_level_and_a_period() {
        let admin = staff("adm-1");
        let now = Utc::now();
        for change in [
            grant("lo-1", Side::Market, 0),
            grant("lo-1", Side::Market, MAX_LEVEL + 1),
            Change::CompetenceGrant {
                staff_id: staff("lo-1"),
                side: Side::Market,
                level: 1,
                valid_from: now,
                valid_to: Some(now - Duration::days(1)),
            },
        ] {
            let err = change.check(&admin, now).unwrap_err();
            assert!(
                matches!(err, ChangeRefusal::Rule(DomainError::Invalid(_))),
                "{err}"
            );
        }
    }

    #[test]
    fn s9_a_proposal_is_decided_once_by_a_second_administrator() {
        let mut proposal = ChangeProposal {
            id: uuid::Uuid::now_v7(),
            kind: ProposalKind::CompetenceGrant,
            payload: serde_json::Value::Null,
            proposed_by: staff("adm-1"),
            proposed_at: Utc::now(),
            status: ProposalStatus::Pending,
            decided_by: None,
            decided_at: None,
        };
        let err = proposal.check_decider(&staff("adm-1")).unwrap_err();
        assert_eq!(err.rule_id(), Some(RuleId::S9));
        proposal.check_decider(&staff("adm-2")).unwrap();
        proposal.decide(Verdict::Approve, &staff("adm-2"), Utc::now());
        assert_eq!(proposal.status, ProposalStatus::Approved);
        assert_eq!(
            proposal.check_decider(&staff("adm-3")).unwrap_err(),
            DomainError::InvalidState("the proposal is approved already".into())
        );
    }
}
