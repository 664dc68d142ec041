//! The staff directory as the rules see it: one natural person (S2), dated
//! org-unit assignments (S4) and dated roles. Every question is asked "at" a
//! timestamp, because a check is evaluated at the time of the action, against
//! the history, never against today's state.

use crate::{StaffId, Timestamp, UnitId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The side of the house an org unit belongs to (MaRisk BTO 1.1).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Market,
    Backoffice,
    Risk,
    Audit,
    Admin,
}

impl Side {
    pub const ALL: [Side; 5] = [
        Side::Market,
        Side::Backoffice,
        Side::Risk,
        Side::Audit,
        Side::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Market => "market",
            Side::Backoffice => "backoffice",
            Side::Risk => "risk",
            Side::Audit => "audit",
            Side::Admin => "admin",
        }
    }
}

impl FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Side::ALL
            .into_iter()
            .find(|side| side.as_str() == s)
            .ok_or_else(|| format!("unknown side {s:?}"))
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Business and administrative roles. The casbin policies name these strings.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    LoanOfficer,
    CreditAnalyst,
    RiskController,
    InternalAuditor,
    UserAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::LoanOfficer,
        Role::CreditAnalyst,
        Role::RiskController,
        Role::InternalAuditor,
        Role::UserAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::LoanOfficer => "loan_officer",
            Role::CreditAnalyst => "credit_analyst",
            Role::RiskController => "risk_controller",
            Role::InternalAuditor => "internal_auditor",
            Role::UserAdmin => "user_admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffStatus {
    Active,
    Suspended,
}

impl StaffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffStatus::Active => "active",
            StaffStatus::Suspended => "suspended",
        }
    }
}

impl FromStr for StaffStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(StaffStatus::Active),
            "suspended" => Ok(StaffStatus::Suspended),
            _ => Err(format!("unknown staff status {s:?}")),
        }
    }
}

/// Half-open validity interval `[valid_from, valid_to)`.
fn valid_at(valid_from: Timestamp, valid_to: Option<Timestamp>, at: Timestamp) -> bool {
    valid_from <= at && valid_to.is_none_or(|to| at < to)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitAssignment {
    pub unit_id: UnitId,
    pub side: Side,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub valid_from: Timestamp,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub valid_to: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleAssignment {
    pub role: Role,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub valid_from: Timestamp,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub valid_to: Option<Timestamp>,
}

/// A dated competence level for one side (Kompetenzordnung, V4): up to which
/// level of the competence order the person may vote on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompetenceGrant {
    pub side: Side,
    pub level: u8,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub valid_from: Timestamp,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub valid_to: Option<Timestamp>,
}

/// One natural person with the full history of units, roles and competences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffMember {
    pub id: StaffId,
    pub status: StaffStatus,
    pub units: Vec<UnitAssignment>,
    pub roles: Vec<RoleAssignment>,
    #[serde(default)]
    pub competences: Vec<CompetenceGrant>,
}

impl StaffMember {
    pub fn is_active(&self) -> bool {
        self.status == StaffStatus::Active
    }

    /// Roles held at `at`; a suspended person holds none.
    pub fn roles_at(&self, at: Timestamp) -> Vec<Role> {
        if !self.is_active() {
            return Vec::new();
        }
        let mut roles: Vec<Role> = self
            .roles
            .iter()
            .filter(|r| valid_at(r.valid_from, r.valid_to, at))
            .map(|r| r.role)
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// Unit assignments valid at `at`.
    pub fn units_at(&self, at: Timestamp) -> impl Iterator<Item = &UnitAssignment> {
        self.units
            .iter()
            .filter(move |u| valid_at(u.valid_from, u.valid_to, at))
    }

    /// The voter as the rules see them at `at`: their unit and side then.
    /// `None` if the person has no unique unit at that time (none, or units on
    /// several sides, which the SoD matrix forbids and the rules treat as unknown).
    pub fn voter_at(&self, at: Timestamp) -> Option<Voter> {
        if !self.is_active() {
            return None;
        }
        let mut units = self.units_at(at);
        let first = units.next()?;
        if units.any(|u| u.side != first.side) {
            return None;
        }
        Some(Voter {
            staff_id: self.id.clone(),
            unit_id: first.unit_id.clone(),
            side: first.side,
            competence_level: self.competence_at(first.side, at),
            left_market_at: self.left_market_at(at),
        })
    }

    /// The highest competence level granted for `side` at `at`; 0 for none.
    pub fn competence_at(&self, side: Side, at: Timestamp) -> u8 {
        self.competences
            .iter()
            .filter(|c| c.side == side && valid_at(c.valid_from, c.valid_to, at))
            .map(|c| c.level)
            .max()
            .unwrap_or(0)
    }

    /// When the person last left a market unit, as of `at` (S5). A market
    /// assignment still running at `at` counts as leaving at `at`.
    pub fn left_market_at(&self, at: Timestamp) -> Option<Timestamp> {
        self.units
            .iter()
            .filter(|u| u.side == Side::Market && u.valid_from <= at)
            .map(|u| u.valid_to.map_or(at, |to| to.min(at)))
            .max()
    }
}

/// One of a person's dated histories (S4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    Units,
    Roles,
    Competences,
}

/// An entry of a person's dated history cut short (S4): it no longer holds
/// from `valid_to` on. An entry that had not started yet gets an empty
/// period (`valid_to == valid_from`). Nothing else of the entry changes:
/// the history is ended, never rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCut {
    pub history: History,
    /// The entry's position in the person's list of that history.
    pub position: usize,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
}

impl StaffMember {
    /// The cuts that end, at `at`, every entry of `history` that still
    /// holds then or starts later.
    pub fn cuts_at(&self, history: History, at: Timestamp) -> Vec<HistoryCut> {
        let periods: Vec<(Timestamp, Option<Timestamp>)> = match history {
            History::Units => self
                .units
                .iter()
                .map(|u| (u.valid_from, u.valid_to))
                .collect(),
            History::Roles => self
                .roles
                .iter()
                .map(|r| (r.valid_from, r.valid_to))
                .collect(),
            History::Competences => self
                .competences
                .iter()
                .map(|c| (c.valid_from, c.valid_to))
                .collect(),
        };
        periods
            .into_iter()
            .enumerate()
            .filter(|(_, (_, to))| to.is_none_or(|to| to > at))
            .map(|(position, (from, _))| HistoryCut {
                history,
                position,
                valid_from: from,
                valid_to: from.max(at),
            })
            .collect()
    }

    /// Whether the person belongs to a unit at `at` or later: false for a
    /// leaver (S4).
    pub fn has_unit_from(&self, at: Timestamp) -> bool {
        self.units
            .iter()
            .any(|u| u.valid_to.is_none_or(|to| to > at))
    }
}

/// Who casts a vote, as established at vote time (S4). Recorded on the vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Voter {
    pub staff_id: StaffId,
    pub unit_id: UnitId,
    pub side: Side,
    /// Competence level on `side` at vote time (V4); 0 = none.
    #[serde(default)]
    pub competence_level: u8,
    /// When the person last left a market unit before the vote (S5).
    #[serde(default)]
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub left_market_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(day: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0)
            .single()
            .expect("valid date")
    }

    fn person(units: Vec<UnitAssignment>) -> StaffMember {
        StaffMember {
            id: StaffId::parse("p-1").expect("id"),
            status: StaffStatus::Active,
            units,
            roles: vec![RoleAssignment {
                role: Role::LoanOfficer,
                valid_from: t(1),
                valid_to: Some(t(10)),
            }],
            competences: vec![CompetenceGrant {
                side: Side::Market,
                level: 2,
                valid_from: t(1),
                valid_to: Some(t(5)),
            }],
        }
    }

    fn unit(side: Side, from: u32, to: Option<u32>) -> UnitAssignment {
        UnitAssignment {
            unit_id: UnitId::parse(side.as_str()).expect("unit"),
            side,
            valid_from: t(from),
            valid_to: to.map(t),
        }
    }

    #[test]
    fn s4_side_is_evaluated_at_the_time_of_the_action() {
        // Moved from market to back office on day 10.
        let p = person(vec![
            unit(Side::Market, 1, Some(10)),
            unit(Side::Backoffice, 10, None),
        ]);
        let table = [
            (1, Some(Side::Market)),
            (9, Some(Side::Market)),
            (10, Some(Side::Backoffice)),
            (20, Some(Side::Backoffice)),
        ];
        for (day, side) in table {
            assert_eq!(p.voter_at(t(day)).map(|v| v.side), side, "day {day}");
        }
        let before = Utc
            .with_ymd_and_hms(2025, 12, 31, 0, 0, 0)
            .single()
            .expect("date");
        assert_eq!(p.voter_at(before), None);
    }

    #[test]
    fn s4_ambiguous_side_is_no_side() {
        let p = person(vec![
            unit(Side::Market, 1, None),
            unit(Side::Backoffice, 5, None),
        ]);
        assert!(p.voter_at(t(2)).is_some());
        assert_eq!(p.voter_at(t(6)), None);
    }

    #[test]
    fn v4_s5_competence_and_market_exit_are_dated() {
        let p = person(vec![
            unit(Side::Market, 1, Some(10)),
            unit(Side::Backoffice, 10, None),
        ]);
        assert_eq!(p.competence_at(Side::Market, t(2)), 2);
        assert_eq!(p.competence_at(Side::Market, t(5)), 0);
        assert_eq!(p.competence_at(Side::Backoffice, t(2)), 0);
        assert_eq!(p.left_market_at(t(3)), Some(t(3)), "still in market");
        assert_eq!(p.left_market_at(t(20)), Some(t(10)));
        let never = person(vec![unit(Side::Backoffice, 1, None)]);
        assert_eq!(never.left_market_at(t(20)), None);
    }

    #[test]
    fn s4_cuts_end_running_and_future_entries_only() {
        let p = person(vec![
            unit(Side::Market, 1, Some(3)),
            unit(Side::Backoffice, 3, None),
            unit(Side::Risk, 20, None),
        ]);
        let cuts = p.cuts_at(History::Units, t(5));
        assert_eq!(cuts.len(), 2);
        assert_eq!((cuts[0].position, cuts[0].valid_to), (1, t(5)));
        // Not started yet: an empty period, its start untouched.
        assert_eq!((cuts[1].position, cuts[1].valid_to), (2, t(20)));
        assert!(p.has_unit_from(t(5)));
        let roles = p.cuts_at(History::Roles, t(12));
        assert!(roles.is_empty(), "the role ended on day 10 already");
    }

    #[test]
    fn roles_are_dated_and_suspension_removes_them() {
        let mut p = person(vec![]);
        assert_eq!(p.roles_at(t(5)), vec![Role::LoanOfficer]);
        assert_eq!(p.roles_at(t(10)), vec![]);
        p.status = StaffStatus::Suspended;
        assert_eq!(p.roles_at(t(5)), vec![]);
    }
}
