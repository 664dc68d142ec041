//! The entitlement report of the periodic review (AT 4.3.1, S9): who holds
//! which role and competence level, since when, and which approved
//! proposal granted it (who proposed, who approved, when). An entry no
//! proposal granted was loaded by the bootstrap import, and says so.

use crate::proposal::{Change, ChangeProposal, ProposalStatus};
use crate::{Role, Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitId};
use chrono::SubsecRound;
use serde::Serialize;
use std::collections::HashMap;

/// What an entitlement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementKind {
    Role,
    Competence,
}

/// How an entitlement came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// An approved four-eyes proposal (S9).
    Proposal,
    /// The bootstrap import of an empty directory: no proposal.
    Bootstrap,
}

/// One role or competence level a person holds now or from a later start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entitlement {
    pub staff_id: StaffId,
    pub status: StaffStatus,
    /// The person's unit at the time of the report (none for a leaver).
    pub unit_id: Option<UnitId>,
    pub unit_side: Option<Side>,
    pub kind: EntitlementKind,
    /// The role, for a role.
    pub role: Option<Role>,
    /// The side and level, for a competence.
    pub competence_side: Option<Side>,
    pub level: Option<u8>,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub valid_from: Timestamp,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub valid_to: Option<Timestamp>,
    pub source: GrantSource,
    pub proposal_id: Option<uuid::Uuid>,
    pub proposed_by: Option<StaffId>,
    pub approved_by: Option<StaffId>,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub approved_at: Option<Timestamp>,
}

/// What identifies an entry of a person's history: the person, what it
/// grants and when it starts (at the stored precision).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Grant {
    Role(Role),
    Competence(Side, u8),
}

type GrantKey = (StaffId, Grant, Timestamp);

/// The entries each approved proposal wrote: an approved change starts at
/// its approval at the earliest.
fn granted_by(approved: &[ChangeProposal]) -> HashMap<GrantKey, &ChangeProposal> {
    let mut granted = HashMap::new();
    for proposal in approved {
        let (ProposalStatus::Approved, Some(decided_at)) = (proposal.status, proposal.decided_at)
        else {
            continue;
        };
        let Ok(change) = serde_json::from_value::<Change>(proposal.payload.clone()) else {
            continue;
        };
        let start = |from: Timestamp| from.max(decided_at).trunc_subsecs(6);
        let mut add = |id: &StaffId, grant: Grant, from: Timestamp| {
            granted.insert((id.clone(), grant, start(from)), proposal);
        };
        match &change {
            Change::RoleAssignment {
                staff_id,
                role,
                valid_from,
                ..
            } => add(staff_id, Grant::Role(*role), *valid_from),
            Change::CompetenceGrant {
                staff_id,
                side,
                level,
                valid_from,
                ..
            } => add(staff_id, Grant::Competence(*side, *level), *valid_from),
            Change::StaffOnboarding {
                staff_id,
                roles,
                competences,
                ..
            } => {
                for role in roles {
                    add(staff_id, Grant::Role(role.role), role.valid_from);
                }
                for grant in competences {
                    add(
                        staff_id,
                        Grant::Competence(grant.side, grant.level),
                        grant.valid_from,
                    );
                }
            }
            _ => {}
        }
    }
    granted
}

/// Every role and competence level of `members` that holds at `at` or
/// starts later, each with the approved proposal that granted it.
pub fn entitlements(
    members: &[StaffMember],
    approved: &[ChangeProposal],
    at: Timestamp,
) -> Vec<Entitlement> {
    let granted = granted_by(approved);
    let running = |to: Option<Timestamp>| to.is_none_or(|to| to > at);
    let mut rows = Vec::new();
    for member in members {
        let unit = member.units_at(at).next();
        let entries = member
            .roles
            .iter()
            .filter(|r| running(r.valid_to))
            .map(|r| (Grant::Role(r.role), r.valid_from, r.valid_to))
            .chain(
                member
                    .competences
                    .iter()
                    .filter(|c| running(c.valid_to))
                    .map(|c| (Grant::Competence(c.side, c.level), c.valid_from, c.valid_to)),
            );
        for (grant, valid_from, valid_to) in entries {
            let key = (
                member.id.clone(),
                grant.clone(),
                valid_from.trunc_subsecs(6),
            );
            let proposal = granted.get(&key);
            let (kind, role, competence_side, level) = match grant {
                Grant::Role(role) => (EntitlementKind::Role, Some(role), None, None),
                Grant::Competence(side, level) => {
                    (EntitlementKind::Competence, None, Some(side), Some(level))
                }
            };
            rows.push(Entitlement {
                staff_id: member.id.clone(),
                status: member.status,
                unit_id: unit.map(|u| u.unit_id.clone()),
                unit_side: unit.map(|u| u.side),
                kind,
                role,
                competence_side,
                level,
                valid_from,
                valid_to,
                source: if proposal.is_some() {
                    GrantSource::Proposal
                } else {
                    GrantSource::Bootstrap
                },
                proposal_id: proposal.map(|p| p.id),
                proposed_by: proposal.map(|p| p.proposed_by.clone()),
                approved_by: proposal.and_then(|p| p.decided_by.clone()),
                approved_at: proposal.and_then(|p| p.decided_at),
            });
        }
    }
    rows
}

/// The CSV header of [`to_csv`].
pub const CSV_HEADER: &str = "staff_id,status,unit_id,unit_side,kind,role,competence_side,level,\
     valid_from,valid_to,source,proposal_id,proposed_by,approved_by,approved_at";

/// The report as CSV (RFC 4180, CRLF line ends). Every field is an id, a
/// closed vocabulary word, a number or a timestamp: nothing needs quoting.
pub fn to_csv(rows: &[Entitlement]) -> String {
    fn opt<T: ToString>(value: Option<T>) -> String {
        value.map(|v| v.to_string()).unwrap_or_default()
    }
    let mut csv = format!("{CSV_HEADER}\r\n");
    for row in rows {
        let fields = [
            row.staff_id.to_string(),
            row.status.as_str().to_owned(),
            opt(row.unit_id.as_ref()),
            opt(row.unit_side),
            match row.kind {
                EntitlementKind::Role => "role".to_owned(),
                EntitlementKind::Competence => "competence".to_owned(),
            },
            opt(row.role),
            opt(row.competence_side),
            opt(row.level),
            row.valid_from.to_rfc3339(),
            opt(row.valid_to.map(|t| t.to_rfc3339())),
            match row.source {
                GrantSource::Proposal => "proposal".to_owned(),
                GrantSource::Bootstrap => "bootstrap".to_owned(),
            },
            opt(row.proposal_id),
            opt(row.proposed_by.as_ref()),
            opt(row.approved_by.as_ref()),
            opt(row.approved_at.map(|t| t.to_rfc3339())),
        ];
        csv.push_str(&fields.join(","));
        csv.push_str("\r\n");
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proposal::ProposalKind;
    use crate::{RoleAssignment, UnitAssignment};
    use chrono::{Duration, Utc};

    fn id(s: &str) -> StaffId {
        StaffId::parse(s).unwrap()
    }

    #[test]
    fn s9_each_entitlement_names_the_proposal_that_granted_it() {
        let now = Utc::now().trunc_subsecs(6);
        let approved_at = now - Duration::days(1);
        let requested = approved_at - Duration::hours(1);
        let role = |from| RoleAssignment {
            role: Role::LoanOfficer,
            valid_from: from,
            valid_to: None,
        };
        let member = StaffMember {
            id: id("lo-1"),
            status: StaffStatus::Active,
            units: vec![UnitAssignment {
                unit_id: UnitId::parse("mkt").unwrap(),
                side: Side::Market,
                valid_from: now - Duration::days(400),
                valid_to: None,
            }],
            roles: vec![
                role(now - Duration::days(400)),
                // Proposed to start before the approval: counts from it.
                role(approved_at),
                RoleAssignment {
                    valid_to: Some(now - Duration::days(2)),
                    ..role(now - Duration::days(300))
                },
            ],
            competences: vec![],
        };
        let proposal = ChangeProposal {
            id: uuid::Uuid::now_v7(),
            kind: ProposalKind::RoleAssignment,
            payload: serde_json::to_value(Change::RoleAssignment {
                staff_id: id("lo-1"),
                role: Role::LoanOfficer,
                valid_from: requested,
                valid_to: None,
            })
            .unwrap(),
            proposed_by: id("ua-1"),
            proposed_at: requested,
            status: ProposalStatus::Approved,
            decided_by: Some(id("ua-2")),
            decided_at: Some(approved_at),
        };
        let rows = entitlements(&[member], std::slice::from_ref(&proposal), now);
        assert_eq!(rows.len(), 2, "the ended role is not held: {rows:?}");
        assert_eq!(rows[0].source, GrantSource::Bootstrap);
        assert_eq!(rows[0].proposal_id, None);
        assert_eq!(rows[1].source, GrantSource::Proposal);
        assert_eq!(rows[1].proposal_id, Some(proposal.id));
        assert_eq!(rows[1].approved_by, Some(id("ua-2")));
        let csv = to_csv(&rows);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(2).unwrap().contains(",proposal,"), "{csv}");
    }
}
