//! The segregation-of-duties matrix (S1, S3, S7): which roles one person may
//! never hold together, which side each role belongs to, and which services a
//! role may read across sides. The matrix is configuration
//! (`policies/sod.toml`); the checks here are pure and run at every role
//! assignment and, against every service policy, at start-up.

use crate::{DomainError, Role, RoleAssignment, RuleId, Side, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One incompatible pair of roles, with the reason a reviewer reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncompatiblePair {
    pub roles: [Role; 2],
    pub reason: String,
}

/// The SoD matrix as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SodMatrix {
    /// The side whose service a role works in. Every role must have one.
    pub home_side: BTreeMap<Role, Side>,
    /// Sides whose services a role may read (GET only) besides its own.
    #[serde(default)]
    pub read_across: BTreeMap<Role, Vec<Side>>,
    pub incompatible: Vec<IncompatiblePair>,
}

/// A permission line of a service policy: role, route, method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub role: String,
    pub route: String,
    pub method: String,
}

fn overlaps(a: &RoleAssignment, b: &RoleAssignment) -> bool {
    let ends_after = |end: Option<Timestamp>, start: Timestamp| end.is_none_or(|e| e > start);
    ends_after(a.valid_to, b.valid_from) && ends_after(b.valid_to, a.valid_from)
}

impl SodMatrix {
    /// Refuses a matrix that leaves a role without a side (fail closed).
    pub fn validate(&self) -> Result<(), DomainError> {
        for role in Role::ALL {
            if !self.home_side.contains_key(&role) {
                return Err(DomainError::Invalid(format!(
                    "the SoD matrix assigns no home side to role {role}"
                )));
            }
        }
        for pair in &self.incompatible {
            if pair.roles[0] == pair.roles[1] {
                return Err(DomainError::Invalid(format!(
                    "an incompatible pair names role {} twice",
                    pair.roles[0]
                )));
            }
        }
        Ok(())
    }

    pub fn home_side(&self, role: Role) -> Option<Side> {
        self.home_side.get(&role).copied()
    }

    fn incompatibility(&self, a: Role, b: Role) -> Option<&IncompatiblePair> {
        self.incompatible
            .iter()
            .find(|p| (p.roles[0] == a && p.roles[1] == b) || (p.roles[0] == b && p.roles[1] == a))
    }

    /// S3: may a person who holds `existing` (their whole dated history) also
    /// get `new`? Any overlap in time with an incompatible role refuses.
    pub fn check_assignment(
        &self,
        existing: &[RoleAssignment],
        new: &RoleAssignment,
    ) -> Result<(), DomainError> {
        if let Some(to) = new.valid_to
            && to <= new.valid_from
        {
            return Err(DomainError::Invalid(
                "valid_to must be after valid_from".into(),
            ));
        }
        for held in existing.iter().filter(|held| overlaps(held, new)) {
            if held.role == new.role {
                return Err(DomainError::Invalid(format!(
                    "the person already holds role {} in that period",
                    new.role
                )));
            }
            if let Some(pair) = self.incompatibility(held.role, new.role) {
                return Err(DomainError::rule(
                    RuleId::S3,
                    format!(
                        "role {} cannot be combined with role {} held in the same period: {}",
                        new.role, held.role, pair.reason
                    ),
                ));
            }
        }
        Ok(())
    }

    /// S1, S3, S7: checks one service's policy at start-up. A role may write
    /// only in its home side's service and read only where `read_across`
    /// allows; a role unknown to the matrix is refused.
    pub fn check_policy(
        &self,
        service_side: Side,
        permissions: &[Permission],
    ) -> Result<(), String> {
        for p in permissions {
            let role: Role = p.role.parse().map_err(|_| {
                format!(
                    "the policy names role {:?}, unknown to the SoD matrix",
                    p.role
                )
            })?;
            let home = self
                .home_side(role)
                .ok_or_else(|| format!("the SoD matrix gives role {role} no home side"))?;
            if home == service_side {
                continue;
            }
            let may_read = self
                .read_across
                .get(&role)
                .is_some_and(|sides| sides.contains(&service_side));
            if !(may_read && p.method.eq_ignore_ascii_case("GET")) {
                return Err(format!(
                    "role {role} belongs to the {home} side but the {service_side} policy gives it \
                     {} {}",
                    p.method, p.route
                ));
            }
        }
        Ok(())
    }

    /// S1: across all services, no role may reach both market and back office.
    pub fn check_sides_apart(&self, policies: &[(Side, Vec<Permission>)]) -> Result<(), String> {
        let mut sides_of_role: BTreeMap<&str, Vec<Side>> = BTreeMap::new();
        for (side, permissions) in policies {
            for p in permissions {
                sides_of_role
                    .entry(p.role.as_str())
                    .or_default()
                    .push(*side);
            }
        }
        for (role, sides) in sides_of_role {
            if sides.contains(&Side::Market) && sides.contains(&Side::Backoffice) {
                return Err(format!(
                    "role {role} has rights in both the market and the back-office service"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> SodMatrix {
        toml_like()
    }

    /// The shipped matrix, written out so the domain tests need no file IO.
    fn toml_like() -> SodMatrix {
        let pair = |a: Role, b: Role, reason: &str| IncompatiblePair {
            roles: [a, b],
            reason: reason.into(),
        };
        SodMatrix {
            home_side: BTreeMap::from([
                (Role::LoanOfficer, Side::Market),
                (Role::CreditAnalyst, Side::Backoffice),
                (Role::RiskController, Side::Risk),
                (Role::InternalAuditor, Side::Audit),
                (Role::UserAdmin, Side::Admin),
            ]),
            read_across: BTreeMap::from([(Role::InternalAuditor, vec![Side::Risk])]),
            incompatible: vec![
                pair(
                    Role::LoanOfficer,
                    Role::CreditAnalyst,
                    "market and back-office voter",
                ),
                pair(
                    Role::UserAdmin,
                    Role::LoanOfficer,
                    "administrator and business role",
                ),
                pair(
                    Role::UserAdmin,
                    Role::CreditAnalyst,
                    "administrator and business role",
                ),
                pair(
                    Role::UserAdmin,
                    Role::RiskController,
                    "administrator and business role",
                ),
                pair(
                    Role::InternalAuditor,
                    Role::LoanOfficer,
                    "auditor and operational role",
                ),
                pair(
                    Role::InternalAuditor,
                    Role::CreditAnalyst,
                    "auditor and operational role",
                ),
                pair(
                    Role::InternalAuditor,
                    Role::RiskController,
                    "auditor and operational role",
                ),
                pair(
                    Role::InternalAuditor,
                    Role::UserAdmin,
                    "auditor and operational role",
                ),
                pair(
                    Role::RiskController,
                    Role::LoanOfficer,
                    "risk control and market",
                ),
            ],
        }
    }

    fn t(day: u32) -> Timestamp {
        use chrono::TimeZone;
        chrono::Utc
            .with_ymd_and_hms(2026, 1, day, 0, 0, 0)
            .single()
            .expect("date")
    }

    fn held(role: Role, from: u32, to: Option<u32>) -> RoleAssignment {
        RoleAssignment {
            role,
            valid_from: t(from),
            valid_to: to.map(t),
        }
    }

    #[test]
    fn s3_incompatible_pairs_are_refused_when_they_overlap() {
        use Role::*;
        let m = matrix();
        m.validate().expect("valid matrix");
        // (held, new, refused)
        let table = [
            (LoanOfficer, CreditAnalyst, true),
            (CreditAnalyst, LoanOfficer, true),
            (UserAdmin, LoanOfficer, true),
            (UserAdmin, CreditAnalyst, true),
            (UserAdmin, RiskController, true),
            (InternalAuditor, LoanOfficer, true),
            (InternalAuditor, CreditAnalyst, true),
            (InternalAuditor, RiskController, true),
            (InternalAuditor, UserAdmin, true),
            (RiskController, LoanOfficer, true),
            (RiskController, CreditAnalyst, false),
        ];
        for (old, new, refused) in table {
            let result = m.check_assignment(&[held(old, 1, None)], &held(new, 5, None));
            assert_eq!(result.is_err(), refused, "S3 {old} then {new}");
            if refused {
                assert_eq!(result.expect_err("refused").rule_id(), Some(RuleId::S3));
            }
        }
    }

    #[test]
    fn s3_s4_roles_held_in_disjoint_periods_are_allowed() {
        let m = matrix();
        // A loan officer until day 10 may become a credit analyst from day 10.
        let history = [held(Role::LoanOfficer, 1, Some(10))];
        assert!(
            m.check_assignment(&history, &held(Role::CreditAnalyst, 10, None))
                .is_ok()
        );
        assert!(
            m.check_assignment(&history, &held(Role::CreditAnalyst, 9, None))
                .is_err()
        );
        // Ending before the old one starts is fine as well.
        let later = [held(Role::LoanOfficer, 20, None)];
        assert!(
            m.check_assignment(&later, &held(Role::CreditAnalyst, 1, Some(20)))
                .is_ok()
        );
        assert!(
            m.check_assignment(&[], &held(Role::CreditAnalyst, 5, Some(5)))
                .is_err()
        );
    }

    fn perm(role: &str, method: &str) -> Permission {
        Permission {
            role: role.into(),
            route: "/v1/x".into(),
            method: method.into(),
        }
    }

    #[test]
    fn s1_s7_policies_give_roles_rights_only_on_their_side() {
        let m = matrix();
        let table = [
            (Side::Market, "loan_officer", "POST", true),
            (Side::Backoffice, "loan_officer", "GET", false),
            (Side::Market, "credit_analyst", "POST", false),
            (Side::Risk, "internal_auditor", "GET", true),
            (Side::Risk, "internal_auditor", "POST", false),
            (Side::Market, "internal_auditor", "GET", false),
            (Side::Admin, "user_admin", "POST", true),
            (Side::Market, "superuser", "GET", false),
        ];
        for (side, role, method, ok) in table {
            assert_eq!(
                m.check_policy(side, &[perm(role, method)]).is_ok(),
                ok,
                "{side} {role} {method}"
            );
        }
        let both = [
            (Side::Market, vec![perm("loan_officer", "POST")]),
            (Side::Backoffice, vec![perm("loan_officer", "GET")]),
        ];
        assert!(m.check_sides_apart(&both).is_err());
        let apart = [
            (Side::Market, vec![perm("loan_officer", "POST")]),
            (Side::Backoffice, vec![perm("credit_analyst", "POST")]),
        ];
        assert!(m.check_sides_apart(&apart).is_ok());
    }

    #[test]
    fn a_matrix_without_a_side_for_every_role_is_refused() {
        let mut m = matrix();
        m.home_side.remove(&Role::UserAdmin);
        assert!(m.validate().is_err());
    }
}
