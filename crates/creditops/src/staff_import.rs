//! `creditops staff import FILE`: loads org units and staff (with dated
//! unit, role and competence history) from a JSON document, all or nothing,
//! audited with the operator's operating-system user and host.
//!
//! Only an empty directory is loaded directly (the bootstrap: there is no
//! administrator yet who could approve anything). In a populated directory
//! every new person becomes a `staff_onboarding` proposal of the
//! administrator the operator names (`--as`), which a second administrator
//! approves on the admin service (S3, S9); existing people are refused.
//! Both ways check the SoD matrix and the home side of every role (S3); the
//! proposals also refuse starts in the past (S4).

use crate::operator::Operator;
use chrono::{DateTime, Utc};
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_commands::{Actor, CommandError, Context, action_time, proposals};
use creditops_domain::proposal::{self, Change, ChangeRefusal, check_onboarding};
use creditops_domain::rules::MAX_LEVEL;
use creditops_domain::{
    CompetenceGrant, Role, RoleAssignment, RuleId, Side, SodMatrix, StaffId, StaffMember,
    StaffStatus, UnitAssignment, UnitId,
};
use creditops_store::{Store, StoreError, Tx, append_record};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// Refused by the directory as it is (e.g. the person exists already).
    #[error("{0}; nothing was imported")]
    Refused(String),
    /// Refused by a rule (S3, S4, S7, S9); nothing was imported.
    #[error("{rule}: {detail}; nothing was imported")]
    Rule { rule: RuleId, detail: String },
    #[error("the database refused the import: {0}")]
    Store(#[from] StoreError),
}

impl ImportError {
    /// The rule a refusal names, if any.
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            ImportError::Rule { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportReport {
    /// An empty directory was loaded.
    Bootstrapped { units: usize, staff: usize },
    /// A populated directory: new units were created and each new person
    /// is a pending proposal (id) for a second administrator.
    Proposed {
        units: usize,
        proposals: Vec<(StaffId, uuid::Uuid)>,
    },
}

/// The segregation rules an import is checked against (S3), and the hash of
/// the policies in force that proposals record.
pub struct ImportRules {
    pub sod: Arc<SodMatrix>,
    pub policy_hash: String,
}

/// Loads `doc`: directly into an empty directory (then `proposer` must be
/// `None`), else as proposals of the user administrator `proposer`.
pub async fn import(
    store: Arc<dyn Store>,
    doc: &StaffDocument,
    rules: &ImportRules,
    operator: &Operator,
    proposer: Option<&StaffId>,
) -> Result<ImportReport, ImportError> {
    let populated = {
        let mut tx = store.begin_read().await?;
        !tx.staff_ids().await?.is_empty()
    };
    match (populated, proposer) {
        (false, None) => bootstrap(store.as_ref(), doc, &rules.sod, operator).await,
        (false, Some(_)) => Err(ImportError::Invalid(
            "the directory is empty, so there is no administrator to act as: run the first \
             import (the bootstrap) without --as"
                .into(),
        )),
        (true, None) => Err(ImportError::Rule {
            rule: RuleId::S9,
            detail: "the directory is populated: new people join only as proposals a second \
                     administrator approves; name the proposing user administrator with --as"
                .into(),
        }),
        (true, Some(proposer)) => propose(store, doc, rules, operator, proposer).await,
    }
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

/// Loads an empty directory: validates the whole document first (S3: the
/// SoD matrix and each role's home side), then writes it in one transaction
/// with one audit event per unit and person. Refused if the directory holds
/// anybody by then.
pub async fn bootstrap(
    store: &dyn Store,
    doc: &StaffDocument,
    sod: &SodMatrix,
    operator: &Operator,
) -> Result<ImportReport, ImportError> {
    let units = parse_units(&doc.units)?;
    let mut members = Vec::new();
    let mut tx = store.begin().await?;
    if !tx.staff_ids().await?.is_empty() {
        return Err(ImportError::Invalid(
            "the directory was populated meanwhile; run the import again with --as".into(),
        ));
    }
    for (i, s) in doc.staff.iter().enumerate() {
        members.push(parse_member(tx.as_mut(), &format!("staff[{i}]"), s, &units, sod).await?);
    }
    write(tx.as_mut(), &units, &members, operator).await?;
    tx.commit().await?;
    Ok(ImportReport::Bootstrapped {
        units: units.len(),
        staff: members.len(),
    })
}

/// A populated directory: `proposer` must be an active user administrator
/// now; units the directory lacks are created, units it has must be on the
/// same side; each person becomes a `staff_onboarding` proposal, checked as
/// one over the admin service is (S3, S4, S9). All or nothing.
async fn propose(
    store: Arc<dyn Store>,
    doc: &StaffDocument,
    rules: &ImportRules,
    operator: &Operator,
    proposer: &StaffId,
) -> Result<ImportReport, ImportError> {
    let units = parse_units(&doc.units)?;
    let now = action_time();
    let mut tx = store.begin().await?;
    let member = tx
        .staff_member(proposer)
        .await?
        .ok_or_else(|| ImportError::Rule {
            rule: RuleId::S9,
            detail: format!("--as {proposer}: no such staff member"),
        })?;
    let roles = member.roles_at(now);
    if !roles.contains(&Role::UserAdmin) || !member.has_unit_from(now) {
        return Err(ImportError::Rule {
            rule: RuleId::S9,
            detail: format!(
                "--as {proposer}: only an active user administrator proposes new people"
            ),
        });
    }
    let ctx = Context {
        service: "cli",
        store: store.clone(),
        policy_hash: rules.policy_hash.clone(),
        sod: rules.sod.clone(),
        claim_timeout: std::time::Duration::from_secs(5),
        operator: Some(operator.to_json()),
    };
    let actor = Actor {
        member,
        roles,
        at: now,
        request_id: format!("cli-{}", uuid::Uuid::now_v7()),
        rule_sets: None,
        authority: None,
    };
    let created = create_units(tx.as_mut(), &units, &ctx, &actor).await?;
    let mut proposed = Vec::new();
    for (i, entry) in doc.staff.iter().enumerate() {
        let context = format!("staff[{i}]");
        let change = onboarding(&context, entry)?;
        let proposal = proposals::propose_change(&ctx, tx.as_mut(), &actor, &change)
            .await
            .map_err(|e| refused(&context, e))?;
        if let Some(id) = change.target() {
            proposed.push((id.clone(), proposal.id));
        }
    }
    tx.commit().await?;
    Ok(ImportReport::Proposed {
        units: created,
        proposals: proposed,
    })
}

/// Creates the document's units the directory lacks (audited as the
/// proposer's); a unit it has must keep its side.
async fn create_units(
    tx: &mut dyn Tx,
    units: &BTreeMap<UnitId, (String, Side)>,
    ctx: &Context,
    actor: &Actor,
) -> Result<usize, ImportError> {
    let mut created = 0;
    for (id, (name, side)) in units {
        match tx.unit_side(id).await? {
            Some(existing) if existing == *side => continue,
            Some(existing) => {
                return Err(ImportError::Rule {
                    rule: RuleId::S4,
                    detail: format!(
                        "unit {id} is on the {existing} side; an import never changes a unit's \
                         side (the history of its members would change with it)"
                    ),
                });
            }
            None => {}
        }
        tx.upsert_unit(id, name, *side).await?;
        let mut record = ctx.actor_record(actor, AuditAction::OrgUnitImported);
        record.data = serde_json::json!({"unit_id": id, "side": side});
        ctx.audit(tx, &record)
            .await
            .map_err(|e| refused("units", e))?;
        created += 1;
    }
    Ok(created)
}

/// One person of the document as a `staff_onboarding` change.
fn onboarding(context: &str, entry: &StaffEntry) -> Result<Change, ImportError> {
    let staff_id = StaffId::parse(&entry.id).map_err(|e| invalid(context, e))?;
    if entry.status != "active" {
        return Err(invalid(
            context,
            "a new person joins active; a suspension is its own proposal",
        ));
    }
    let mut units = Vec::new();
    for (j, u) in entry.units.iter().enumerate() {
        let context = format!("{context}.units[{j}]");
        units.push(proposal::DatedUnit {
            unit_id: UnitId::parse(&u.unit_id).map_err(|e| invalid(&context, e))?,
            valid_from: u.valid_from,
            valid_to: u.valid_to,
        });
    }
    let mut roles = Vec::new();
    for (j, r) in entry.roles.iter().enumerate() {
        let context = format!("{context}.roles[{j}]");
        roles.push(RoleAssignment {
            role: r.role.parse().map_err(|e: String| invalid(&context, e))?,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
        });
    }
    Ok(Change::StaffOnboarding {
        staff_id,
        units,
        roles,
        competences: parse_competences(context, &entry.competences)?,
    })
}

/// A command's refusal of one entry as an import error naming the entry.
fn refused(context: &str, e: CommandError) -> ImportError {
    let rule = match &e {
        CommandError::Domain(d) => d.rule_id(),
        CommandError::Conflict { rule, .. } | CommandError::Forbidden { rule, .. } => *rule,
        _ => None,
    };
    match (e, rule) {
        (CommandError::Store(e), _) => ImportError::Store(e),
        (e, Some(rule)) => ImportError::Rule {
            rule,
            detail: format!("{context}: {e}"),
        },
        (e, None) => ImportError::Refused(format!("{context}: {e}")),
    }
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
    let member = StaffMember {
        id,
        status,
        units: assignments,
        roles: parse_roles(context, &s.roles)?,
        competences: parse_competences(context, &s.competences)?,
    };
    // S3 as for a role assigned later: the SoD matrix, and each role on its
    // home side when it starts (checked as if active: a suspended person
    // keeps the roles they are suspended from).
    let active = StaffMember {
        status: StaffStatus::Active,
        ..member.clone()
    };
    check_onboarding(sod, &active).map_err(|e| match e {
        ChangeRefusal::Rule(d) => match d.rule_id() {
            Some(rule) => ImportError::Rule {
                rule,
                detail: format!("{context}: {d}"),
            },
            None => invalid(context, d),
        },
        other => invalid(context, other),
    })?;
    Ok(member)
}

/// A person's dated roles (checked against the SoD matrix with the person).
fn parse_roles(context: &str, entries: &[DatedRole]) -> Result<Vec<RoleAssignment>, ImportError> {
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
    operator: &Operator,
) -> Result<(), ImportError> {
    let now = Utc::now();
    for (id, (name, side)) in units {
        tx.upsert_unit(id, name, *side).await?;
        let mut record = AuditRecord::new("cli", AuditAction::OrgUnitImported, Outcome::Ok, now);
        record.data = serde_json::json!({
            "unit_id": id,
            "side": side,
            "bootstrap": true,
            "operator": operator.to_json(),
        });
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
            "bootstrap": true,
            "operator": operator.to_json(),
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
