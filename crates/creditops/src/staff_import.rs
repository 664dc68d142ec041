//! `creditops staff import FILE`: loads org units and staff (with dated unit
//! and role history) from a JSON document, all or nothing, audited.

use chrono::{DateTime, Utc};
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_domain::rules::MAX_LEVEL;
use creditops_domain::{
    CompetenceGrant, Role, RoleAssignment, Side, SodMatrix, StaffId, StaffMember, StaffStatus,
    UnitAssignment, UnitId,
};
use creditops_store::{Store, StoreError, append_record};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffDocument {
    #[serde(default)]
    pub units: Vec<UnitEntry>,
    #[serde(default)]
    pub staff: Vec<StaffEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitEntry {
    pub id: String,
    pub name: String,
    pub side: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffEntry {
    pub id: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub units: Vec<DatedUnit>,
    #[serde(default)]
    pub roles: Vec<DatedRole>,
    #[serde(default)]
    pub competences: Vec<DatedCompetence>,
}

/// A dated competence level on one side (V4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedCompetence {
    pub side: String,
    pub level: u8,
    pub valid_from: DateTime<Utc>,
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
}

fn active() -> String {
    "active".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedUnit {
    pub unit_id: String,
    pub valid_from: DateTime<Utc>,
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedRole {
    pub role: String,
    pub valid_from: DateTime<Utc>,
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the staff document is not valid JSON of the expected shape: {0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("staff member {0} exists already; nothing was imported")]
    Duplicate(String),
    #[error("the database refused the import: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub units: usize,
    pub staff: usize,
}

pub fn parse(text: &str) -> Result<StaffDocument, ImportError> {
    // Parse as a value first: serde would also accept a JSON array as a
    // struct, and an empty document is a mistake, not an empty import.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ImportError::Parse(e.to_string()))?;
    if !value.is_object() {
        return Err(ImportError::Parse(
            "the top level must be a JSON object".into(),
        ));
    }
    let doc: StaffDocument =
        serde_json::from_value(value).map_err(|e| ImportError::Parse(e.to_string()))?;
    if doc.units.is_empty() && doc.staff.is_empty() {
        return Err(ImportError::Parse(
            "the document holds no units and no staff".into(),
        ));
    }
    Ok(doc)
}

fn invalid(context: &str, detail: impl std::fmt::Display) -> ImportError {
    ImportError::Invalid(format!("{context}: {detail}"))
}

/// Validates the whole document first, then writes it in one transaction
/// with one audit event per unit and person.
pub async fn import(
    store: &dyn Store,
    doc: &StaffDocument,
    sod: &SodMatrix,
) -> Result<ImportReport, ImportError> {
    let units = parse_units(&doc.units)?;
    let mut members = Vec::new();
    let mut tx = store.begin().await?;
    for (i, s) in doc.staff.iter().enumerate() {
        members.push(parse_member(tx.as_mut(), &format!("staff[{i}]"), s, &units, sod).await?);
    }
    write(tx.as_mut(), &units, &members).await?;
    tx.commit().await?;
    Ok(ImportReport {
        units: units.len(),
        staff: members.len(),
    })
}

/// The document's units by id, each once.
fn parse_units(entries: &[UnitEntry]) -> Result<BTreeMap<UnitId, (String, Side)>, ImportError> {
    let mut units = BTreeMap::new();
    for (i, u) in entries.iter().enumerate() {
        let context = format!("units[{i}]");
        let id = UnitId::parse(&u.id).map_err(|e| invalid(&context, e))?;
        let side: Side = u.side.parse().map_err(|e: String| invalid(&context, e))?;
        let name = creditops_domain::case::required_text("name", &u.name, 200)
            .map_err(|e| invalid(&context, e))?;
        if units.insert(id, (name, side)).is_some() {
            return Err(invalid(&context, "duplicate unit id"));
        }
    }
    Ok(units)
}

/// One person of the document, validated; units are those of the document
/// or ones already in the database.
async fn parse_member(
    tx: &mut dyn creditops_store::Tx,
    context: &str,
    s: &StaffEntry,
    units: &BTreeMap<UnitId, (String, Side)>,
    sod: &SodMatrix,
) -> Result<StaffMember, ImportError> {
    let id = StaffId::parse(&s.id).map_err(|e| invalid(context, e))?;
    let status: StaffStatus = s.status.parse().map_err(|e: String| invalid(context, e))?;
    let mut assignments = Vec::new();
    for (j, u) in s.units.iter().enumerate() {
        let context = format!("{context}.units[{j}]");
        let unit_id = UnitId::parse(&u.unit_id).map_err(|e| invalid(&context, e))?;
        check_interval(&context, u.valid_from, u.valid_to)?;
        let side = match units.get(&unit_id) {
            Some((_, side)) => *side,
            None => known_unit_side(tx, &unit_id)
                .await?
                .ok_or_else(|| invalid(&context, format!("unknown unit {unit_id}")))?,
        };
        assignments.push(UnitAssignment {
            unit_id,
            side,
            valid_from: u.valid_from,
            valid_to: u.valid_to,
        });
    }
    Ok(StaffMember {
        id,
        status,
        units: assignments,
        roles: parse_roles(context, &s.roles, sod)?,
        competences: parse_competences(context, &s.competences)?,
    })
}

/// A person's dated roles; S3 holds for imports too: no incompatible roles
/// per person.
fn parse_roles(
    context: &str,
    entries: &[DatedRole],
    sod: &SodMatrix,
) -> Result<Vec<RoleAssignment>, ImportError> {
    let mut roles = Vec::new();
    for (j, r) in entries.iter().enumerate() {
        let context = format!("{context}.roles[{j}]");
        let role: Role = r.role.parse().map_err(|e: String| invalid(&context, e))?;
        check_interval(&context, r.valid_from, r.valid_to)?;
        let assignment = RoleAssignment {
            role,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
        };
        sod.check_assignment(&roles, &assignment)
            .map_err(|e| invalid(&context, e))?;
        roles.push(assignment);
    }
    Ok(roles)
}

/// A person's dated competence levels (V4), market and back office only.
fn parse_competences(
    context: &str,
    entries: &[DatedCompetence],
) -> Result<Vec<CompetenceGrant>, ImportError> {
    let mut competences = Vec::new();
    for (j, c) in entries.iter().enumerate() {
        let context = format!("{context}.competences[{j}]");
        let side: Side = c.side.parse().map_err(|e: String| invalid(&context, e))?;
        if !matches!(side, Side::Market | Side::Backoffice) {
            return Err(invalid(
                &context,
                "competence levels exist for the market and backoffice sides only",
            ));
        }
        if !(1..=MAX_LEVEL).contains(&c.level) {
            return Err(invalid(
                &context,
                format!("level must be between 1 and {MAX_LEVEL}"),
            ));
        }
        check_interval(&context, c.valid_from, c.valid_to)?;
        competences.push(CompetenceGrant {
            side,
            level: c.level,
            valid_from: c.valid_from,
            valid_to: c.valid_to,
        });
    }
    Ok(competences)
}

/// Writes the validated units and people, each with its audit event.
async fn write(
    tx: &mut dyn creditops_store::Tx,
    units: &BTreeMap<UnitId, (String, Side)>,
    members: &[StaffMember],
) -> Result<(), ImportError> {
    let now = Utc::now();
    for (id, (name, side)) in units {
        tx.upsert_unit(id, name, *side).await?;
        let mut record = AuditRecord::new("cli", AuditAction::OrgUnitImported, Outcome::Ok, now);
        record.data = serde_json::json!({"unit_id": id, "side": side});
        append_record(&mut *tx, &record).await?;
    }
    for member in members {
        tx.insert_staff(member).await.map_err(|e| match e {
            StoreError::Conflict(_) => ImportError::Duplicate(member.id.to_string()),
            other => ImportError::Store(other),
        })?;
        let mut record = AuditRecord::new("cli", AuditAction::StaffImported, Outcome::Ok, now);
        record.data = serde_json::json!({
            "staff_id": member.id,
            "status": member.status,
            "units": member.units,
            "roles": member.roles,
            "competences": member.competences,
        });
        append_record(&mut *tx, &record).await?;
    }
    Ok(())
}

fn check_interval(
    context: &str,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Result<(), ImportError> {
    match to {
        Some(to) if to <= from => Err(invalid(context, "valid_to must be after valid_from")),
        _ => Ok(()),
    }
}

/// The side of a unit that is already in the database (imported earlier).
async fn known_unit_side(
    tx: &mut dyn creditops_store::Tx,
    unit: &UnitId,
) -> Result<Option<Side>, ImportError> {
    Ok(tx.unit_side(unit).await?)
}
