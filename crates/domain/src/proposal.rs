//! Four-eyes changes to the staff directory and the rules (S3, S7, S9): what
//! may be proposed, and the pure checks a proposal passes when proposed and
//! again when decided (the directory may have changed in between).

use crate::four_eyes::{self, Proposed};
use crate::rules::MAX_LEVEL;
use crate::{BorrowerId, CompetenceGrant, DomainError, Role, RoleAssignment, RuleId};
use crate::{RuleParameters, Side, SodMatrix, StaffId, StaffMember, Timestamp, UnitId};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
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

    /// Every kind `role` decides, in declaration order.
    pub fn decided_by(role: Role) -> Vec<ProposalKind> {
        Self::ALL
            .into_iter()
            .filter(|kind| kind.decider_role() == role)
            .collect()
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
        // Boxed: a rule set is far larger than any other change.
        parameters: Box<RuleParameters>,
    },
    /// A new person in a populated directory (S3): their units, roles and
    /// competence levels, each starting now or later (S4).
    StaffOnboarding {
        staff_id: StaffId,
        units: Vec<DatedUnit>,
        #[serde(default)]
        roles: Vec<RoleAssignment>,
        #[serde(default)]
        competences: Vec<CompetenceGrant>,
    },
    /// The person moves to `unit_id` when the proposal is approved; the
    /// units they are in end then (S4). Every role they keep must belong
    /// to the new unit's side (S3).
    UnitMove { staff_id: StaffId, unit_id: UnitId },
    /// The person's `role` ends when the proposal is approved (S4).
    RoleEnd { staff_id: StaffId, role: Role },
    /// The person may not act from the approval on (every request is
    /// refused) until a suspension with `lifted: true` is approved.
    Suspension {
        staff_id: StaffId,
        #[serde(default)]
        lifted: bool,
    },
    /// The person leaves: every unit, role and competence level ends when
    /// the proposal is approved (S4); their requests are refused from then on.
    Leaver { staff_id: StaffId },
}

/// A unit a new person joins, dated (S4); the side is the unit's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatedUnit {
    pub unit_id: UnitId,
    pub valid_from: DateTime<Utc>,
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
}

/// A change to an input a credit decision depends on (hardening findings 2
/// and 4): proposed by one person, applied when a second person of the same
/// function approves it. `kind` tags the JSON as for [`Change`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputChange {
    /// The borrower joins `group_id` (or leaves `from_group` when `None`):
    /// the group's aggregated exposure decides the competence level (V4).
    GroupMembership {
        borrower_id: BorrowerId,
        group_id: Option<UnitId>,
        /// The group at the time of the proposal, so that a change of any
        /// member can be traced to the cases of the group it left.
        from_group: Option<UnitId>,
    },
    /// Tier 1 capital, which caps large exposures (R3).
    Tier1Capital {
        #[schema(value_type = String)]
        tier1: Decimal,
    },
    /// The liquidity position and its LCR floor (R6).
    LiquidityPosition {
        #[schema(value_type = String)]
        hqla: Decimal,
        #[schema(value_type = String)]
        outflows_30d: Decimal,
        #[schema(value_type = String)]
        inflows_30d: Decimal,
        #[schema(value_type = String)]
        floor_percent: Decimal,
    },
}

/// The lowest and highest internal LCR floor, in percent (R6).
pub const LCR_FLOOR_PERCENT: (u32, u32) = (100, 1000);

impl InputChange {
    pub fn kind(&self) -> ProposalKind {
        match self {
            InputChange::GroupMembership { .. } => ProposalKind::GroupMembership,
            InputChange::Tier1Capital { .. } => ProposalKind::Tier1Capital,
            InputChange::LiquidityPosition { .. } => ProposalKind::LiquidityPosition,
        }
    }

    /// The borrower whose group changes, if any.
    pub fn borrower(&self) -> Option<BorrowerId> {
        match self {
            InputChange::GroupMembership { borrower_id, .. } => Some(*borrower_id),
            _ => None,
        }
    }

    /// The checks that need nothing from the store. A position without
    /// 30-day outflows has no LCR at all and would switch the floor off
    /// (hardening finding 4), so it is refused.
    pub fn check(&self) -> Result<(), DomainError> {
        match self {
            InputChange::GroupMembership {
                group_id,
                from_group,
                ..
            } => {
                if group_id == from_group {
                    return Err(DomainError::InvalidState(match group_id {
                        Some(group) => format!("the borrower is in group {group} already"),
                        None => "the borrower is in no group already".into(),
                    }));
                }
            }
            InputChange::Tier1Capital { tier1 } => {
                if *tier1 <= Decimal::ZERO {
                    return Err(DomainError::Invalid(
                        "tier1 must be greater than zero".into(),
                    ));
                }
            }
            InputChange::LiquidityPosition {
                hqla,
                outflows_30d,
                inflows_30d,
                floor_percent,
            } => {
                if [hqla, outflows_30d, inflows_30d]
                    .iter()
                    .any(|v| v.is_sign_negative())
                {
                    return Err(DomainError::Invalid(
                        "liquidity amounts must not be negative".into(),
                    ));
                }
                if outflows_30d.is_zero() {
                    return Err(DomainError::Invalid(
                        "outflows_30d must be greater than zero: without outflows the LCR is \
                         undefined and its floor (R6) could not be checked"
                            .into(),
                    ));
                }
                let (low, high) = LCR_FLOOR_PERCENT;
                if *floor_percent < Decimal::from(low) || *floor_percent > Decimal::from(high) {
                    return Err(DomainError::Invalid(format!(
                        "floor_percent must be between {low} and {high}"
                    )));
                }
            }
        }
        Ok(())
    }
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
            Change::StaffOnboarding { .. } => ProposalKind::StaffOnboarding,
            Change::UnitMove { .. } => ProposalKind::UnitMove,
            Change::RoleEnd { .. } => ProposalKind::RoleEnd,
            Change::Suspension { .. } => ProposalKind::Suspension,
            Change::Leaver { .. } => ProposalKind::Leaver,
        }
    }

    /// The starts a change proposes (units, roles, competence levels); the
    /// lifecycle kinds take effect at their approval and propose none.
    fn starts(&self) -> Vec<Timestamp> {
        match self {
            Change::RoleAssignment { valid_from, .. }
            | Change::CompetenceGrant { valid_from, .. } => vec![*valid_from],
            Change::StaffOnboarding {
                units,
                roles,
                competences,
                ..
            } => units
                .iter()
                .map(|u| u.valid_from)
                .chain(roles.iter().map(|r| r.valid_from))
                .chain(competences.iter().map(|c| c.valid_from))
                .collect(),
            Change::RuleSet { .. }
            | Change::UnitMove { .. }
            | Change::RoleEnd { .. }
            | Change::Suspension { .. }
            | Change::Leaver { .. } => Vec::new(),
        }
    }

    /// S4: a proposed role or competence starts now or later, so nobody
    /// can write a grant into the dated history that S4 and S5 are checked
    /// against (hardening finding 10). A start earlier than `now` by at most
    /// [`BACK_DATING_GRACE`] (a client's clock may lag) is taken as now.
    pub fn check_not_back_dated(&self, now: Timestamp) -> Result<(), DomainError> {
        match self
            .starts()
            .into_iter()
            .find(|from| *from < now - BACK_DATING_GRACE)
        {
            Some(from) => Err(DomainError::rule(
                RuleId::S4,
                format!(
                    "valid_from {from} lies in the past: units, roles and competences start now \
                     or later, the dated history is never rewritten"
                ),
            )),
            None => Ok(()),
        }
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
            Change::StaffOnboarding {
                staff_id,
                units,
                roles,
                competences,
            } => Change::StaffOnboarding {
                staff_id,
                units: units
                    .into_iter()
                    .map(|u| {
                        Ok(DatedUnit {
                            valid_from: start(u.valid_from, u.valid_to)?,
                            ..u
                        })
                    })
                    .collect::<Result<_, DomainError>>()?,
                roles: roles
                    .into_iter()
                    .map(|r| {
                        Ok(RoleAssignment {
                            valid_from: start(r.valid_from, r.valid_to)?,
                            ..r
                        })
                    })
                    .collect::<Result<_, DomainError>>()?,
                competences: competences
                    .into_iter()
                    .map(|c| {
                        Ok(CompetenceGrant {
                            valid_from: start(c.valid_from, c.valid_to)?,
                            ..c
                        })
                    })
                    .collect::<Result<_, DomainError>>()?,
            },
            // The rules carry their own start; the lifecycle kinds take
            // effect at the approval itself.
            other @ (Change::RuleSet { .. }
            | Change::UnitMove { .. }
            | Change::RoleEnd { .. }
            | Change::Suspension { .. }
            | Change::Leaver { .. }) => other,
        })
    }

    /// The person whose entitlements or status change, if any.
    pub fn target(&self) -> Option<&StaffId> {
        match self {
            Change::RoleAssignment { staff_id, .. }
            | Change::CompetenceGrant { staff_id, .. }
            | Change::StaffOnboarding { staff_id, .. }
            | Change::UnitMove { staff_id, .. }
            | Change::RoleEnd { staff_id, .. }
            | Change::Suspension { staff_id, .. }
            | Change::Leaver { staff_id } => Some(staff_id),
            Change::RuleSet { .. } => None,
        }
    }

    /// The checks that need nothing from the directory, in the order they
    /// are reported: S7 (nobody changes their own roles, competences, unit or status), the
    /// validity period, the competence grant's side and level, and a rule
    /// set's parameters and start (S9).
    pub fn check(&self, actor: &StaffId, now: Timestamp) -> Result<(), ChangeRefusal> {
        if self.target() == Some(actor) {
            return Err(DomainError::rule(
                RuleId::S7,
                "nobody may change their own roles, competences, unit or status",
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
                check_competence(*side, *level)?;
            }
            Change::StaffOnboarding {
                units,
                roles,
                competences,
                ..
            } => {
                if units.is_empty() {
                    return Err(DomainError::Invalid(
                        "units: a new person joins at least one unit".into(),
                    )
                    .into());
                }
                for unit in units {
                    check_period(unit.valid_from, unit.valid_to)?;
                }
                for role in roles {
                    check_period(role.valid_from, role.valid_to)?;
                }
                for grant in competences {
                    check_period(grant.valid_from, grant.valid_to)?;
                    check_competence(grant.side, grant.level)?;
                }
            }
            Change::UnitMove { .. }
            | Change::RoleEnd { .. }
            | Change::Suspension { .. }
            | Change::Leaver { .. } => {}
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

/// A competence level exists on a voting side and within the order (V4).
pub fn check_competence(side: Side, level: u8) -> Result<(), DomainError> {
    if !matches!(side, Side::Market | Side::Backoffice) {
        return Err(DomainError::Invalid(
            "competence levels exist for the market and backoffice sides only".into(),
        ));
    }
    if !(1..=MAX_LEVEL).contains(&level) {
        return Err(DomainError::Invalid(format!(
            "level must be between 1 and {MAX_LEVEL}"
        )));
    }
    Ok(())
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

/// S3 and S4 for a change of a person's place in the bank, against the
/// person as the directory holds them at `at` (when proposed, and again
/// when approved). `new_side` is the side of the unit a move goes to.
pub fn check_lifecycle(
    sod: &SodMatrix,
    member: &StaffMember,
    change: &Change,
    new_side: Option<Side>,
    at: Timestamp,
) -> Result<(), ChangeRefusal> {
    let invalid = |text: String| ChangeRefusal::Rule(DomainError::Invalid(text));
    let conflict = |text: String| ChangeRefusal::Rule(DomainError::InvalidState(text));
    let id = &member.id;
    let left = !member.has_unit_from(at);
    match change {
        Change::UnitMove { unit_id, .. } => {
            if left {
                return Err(conflict(format!("{id} has left: a leaver moves nowhere")));
            }
            let side = new_side.ok_or_else(|| invalid(format!("unit_id: no unit {unit_id}")))?;
            let mut units = member.units_at(at);
            if units.next().is_some_and(|u| &u.unit_id == unit_id) && units.next().is_none() {
                return Err(conflict(format!("{id} is in unit {unit_id} already")));
            }
            for kept in member
                .roles
                .iter()
                .filter(|r| r.valid_to.is_none_or(|to| to > at))
            {
                let home = sod.home_side(kept.role).ok_or(ChangeRefusal::NoHomeSide)?;
                if home != side {
                    return Err(DomainError::rule(
                        RuleId::S3,
                        format!(
                            "{id} holds the role {} of the {home} side, which does not fit unit \
                             {unit_id} of the {side} side: end the role first",
                            kept.role
                        ),
                    )
                    .into());
                }
            }
        }
        Change::RoleEnd { role, .. } => {
            if !member
                .roles
                .iter()
                .any(|r| r.role == *role && r.valid_to.is_none_or(|to| to > at))
            {
                return Err(conflict(format!("{id} holds no running {role} role")));
            }
        }
        Change::Suspension { lifted, .. } => match (member.status, lifted) {
            (crate::StaffStatus::Active, true) => {
                return Err(conflict(format!("{id} is not suspended")));
            }
            (crate::StaffStatus::Suspended, false) => {
                return Err(conflict(format!("{id} is suspended already")));
            }
            _ if left => return Err(conflict(format!("{id} has left"))),
            _ => {}
        },
        Change::Leaver { .. } => {
            if left {
                return Err(conflict(format!("{id} has left already")));
            }
        }
        Change::RoleAssignment { .. }
        | Change::CompetenceGrant { .. }
        | Change::RuleSet { .. }
        | Change::StaffOnboarding { .. } => {}
    }
    Ok(())
}

/// Four-eyes administration needs two people: a change that would leave
/// fewer active user administrators is refused (S9), since no later change,
/// a new administrator included, could be approved any more.
pub const MIN_USER_ADMINS: usize = 2;

/// Whether `change` takes the user administration away from `member`, who
/// holds it at `at`: the end of that role, a suspension or leaving.
pub fn removes_user_admin(member: &StaffMember, change: &Change, at: Timestamp) -> bool {
    member.roles_at(at).contains(&Role::UserAdmin)
        && match change {
            Change::RoleEnd { role, .. } => *role == Role::UserAdmin,
            Change::Suspension { lifted, .. } => !lifted,
            Change::Leaver { .. } => true,
            _ => false,
        }
}

/// S9: after `change` at least [`MIN_USER_ADMINS`] active user
/// administrators remain; `others` is how many there are besides `member`.
pub fn check_admins_remain(
    member: &StaffMember,
    change: &Change,
    others: usize,
    at: Timestamp,
) -> Result<(), ChangeRefusal> {
    if removes_user_admin(member, change, at) && others < MIN_USER_ADMINS {
        return Err(DomainError::rule(
            RuleId::S9,
            format!(
                "{} is one of the last {MIN_USER_ADMINS} active user administrators: onboard \
                 another one first, or no later change could be approved",
                member.id
            ),
        )
        .into());
    }
    Ok(())
}

/// S3 for a new person: each role fits the SoD matrix beside the others
/// and belongs to the side of the unit the person is in when it starts.
pub fn check_onboarding(sod: &SodMatrix, newcomer: &StaffMember) -> Result<(), ChangeRefusal> {
    let mut checked = StaffMember {
        roles: Vec::new(),
        ..newcomer.clone()
    };
    for role in &newcomer.roles {
        check_role_assignment(sod, &checked, role)?;
        checked.roles.push(role.clone());
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

    /// S9: the last two active user administrators stay; other roles and
    /// lifting a suspension are not limited.
    #[test]
    fn s9_the_last_two_user_administrators_stay() {
        let now = Utc::now();
        let person = |role: Role| StaffMember {
            id: staff("p-1"),
            status: crate::StaffStatus::Active,
            units: vec![],
            roles: vec![RoleAssignment {
                role,
                valid_from: now - Duration::days(10),
                valid_to: None,
            }],
            competences: vec![],
        };
        let suspension = |lifted| Change::Suspension {
            staff_id: staff("p-1"),
            lifted,
        };
        let role_end = |role| Change::RoleEnd {
            staff_id: staff("p-1"),
            role,
        };
        let leaver = Change::Leaver {
            staff_id: staff("p-1"),
        };
        let admin = person(Role::UserAdmin);
        let officer = person(Role::LoanOfficer);
        // (person, change, other administrators, refused)
        let table = [
            (&admin, suspension(false), 1, true),
            (&admin, suspension(false), 2, false),
            (&admin, leaver.clone(), 1, true),
            (&admin, leaver.clone(), 0, true),
            (&admin, role_end(Role::UserAdmin), 1, true),
            (&admin, role_end(Role::UserAdmin), 2, false),
            (&admin, role_end(Role::LoanOfficer), 0, false),
            (&admin, suspension(true), 0, false),
            (&officer, leaver.clone(), 0, false),
            (&officer, suspension(false), 1, false),
        ];
        for (member, change, others, refused) in table {
            let outcome = check_admins_remain(member, &change, others, now);
            assert_eq!(outcome.is_err(), refused, "{change:?} with {others} others");
            if let Err(ChangeRefusal::Rule(e)) = outcome {
                assert_eq!(e.rule_id(), Some(RuleId::S9));
            }
        }
    }

    /// Hardening finding 18 (S3, S4): the lifecycle checks against the
    /// person as the directory holds them.
    #[test]
    fn s3_s4_lifecycle_changes_fit_the_person_now() {
        let now = Utc::now();
        // Home sides only: no incompatible pair matters for one role.
        let sod = SodMatrix {
            home_side: [
                (Role::LoanOfficer, Side::Market),
                (Role::CreditAnalyst, Side::Backoffice),
                (Role::RiskController, Side::Risk),
                (Role::InternalAuditor, Side::Audit),
                (Role::UserAdmin, Side::Admin),
            ]
            .into(),
            read_across: Default::default(),
            incompatible: Vec::new(),
        };
        let lo = StaffMember {
            id: staff("lo-1"),
            status: crate::StaffStatus::Active,
            units: vec![crate::UnitAssignment {
                unit_id: UnitId::parse("mkt").unwrap(),
                side: Side::Market,
                valid_from: now - Duration::days(10),
                valid_to: None,
            }],
            roles: vec![RoleAssignment {
                role: Role::LoanOfficer,
                valid_from: now - Duration::days(10),
                valid_to: None,
            }],
            competences: vec![],
        };
        let to = |unit: &str| Change::UnitMove {
            staff_id: staff("lo-1"),
            unit_id: UnitId::parse(unit).unwrap(),
        };
        let check = |member: &StaffMember, change: &Change, side: Option<Side>| {
            check_lifecycle(&sod, member, change, side, now)
        };
        // A running market role does not move to the back office.
        let refused = check(&lo, &to("bo"), Some(Side::Backoffice)).unwrap_err();
        assert!(matches!(refused, ChangeRefusal::Rule(e) if e.rule_id() == Some(RuleId::S3)));
        check(&lo, &to("mkt-board"), Some(Side::Market)).unwrap();
        // Already there, or no such unit.
        assert!(check(&lo, &to("mkt"), Some(Side::Market)).is_err());
        assert!(check(&lo, &to("nowhere"), None).is_err());
        // Once the role ended, the move is fine.
        let mut ended = lo.clone();
        ended.roles[0].valid_to = Some(now);
        check(&ended, &to("bo"), Some(Side::Backoffice)).unwrap();
        let suspend = |lifted| Change::Suspension {
            staff_id: staff("lo-1"),
            lifted,
        };
        check(&lo, &suspend(false), None).unwrap();
        assert!(check(&lo, &suspend(true), None).is_err(), "not suspended");
        let leaver = Change::Leaver {
            staff_id: staff("lo-1"),
        };
        check(&lo, &leaver, None).unwrap();
        let mut left = lo.clone();
        left.units[0].valid_to = Some(now);
        for change in [leaver, suspend(false), to("mkt-board")] {
            assert!(check(&left, &change, None).is_err(), "{change:?}");
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
