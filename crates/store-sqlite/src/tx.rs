//! One SQLite transaction implementing [`Tx`].
//!
//! UUIDs are stored as lower-case hyphenated TEXT (bound as strings, never as
//! sqlx's 16-byte BLOB encoding), timestamps with sqlx's chrono encoding.

use crate::error::map_sqlx_error;
use async_trait::async_trait;
use chrono::SubsecRound;
use creditops_audit::{chain_genesis, chain_next, hash_from_slice, leaf_hash};
use creditops_domain::{
    BoardResolution, BorrowerId, CaseFile, CaseId, CaseStatus, CompetenceGrant, CreditCase,
    Decision, Money, Role, RoleAssignment, RuleCheck, RuleSet, Severity, Side, StaffId,
    StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId, Vote, Voter,
};
use creditops_risk::{
    BorrowerExposure, Breach, Capital, ImportEffect, ImportedBalance, Limit, LimitKind,
    LimitStatus, LimitSubject, LimitVersion, LiquidityPosition, Reservation, ReservationStatus,
};
use creditops_store::{
    AuditFilter, Borrower, BorrowerGroup, BreachFilter, CaseSummary, ChangeProposal, ExposureScope,
    IdempotencyScope, NewAuditEvent, ProposalStatus, RelatedParty, StoreError, StoreResult,
    StoredAuditEvent, StoredCheckpoint, StoredResponse, Tx, UnauditedRow, stored_rule_set,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// Columns of `limit_versions` as `limit_version_from_row` reads them.
macro_rules! limit_columns {
    () => {
        "id, subject_kind, subject_key, version, amount_minor, tolerance_percent, reason, \
         proposed_by, proposed_at, status, decided_by, decided_at"
    };
}

/// Columns of `reservations` as `reservation_from_row` reads them.
macro_rules! reservation_columns {
    () => {
        "case_id, borrower_id, amount_minor, status, reserved_at, expires_at, closed_at, \
         closed_by"
    };
}

/// Columns of `breaches` as `breach_from_row` reads them.
macro_rules! breach_columns {
    () => {
        "id, subject, rule, check_name, limit_value, usage_value, amount_over, severity, \
         cause, owner, detected_at, resolved_at"
    };
}

/// Business rows of the credit path whose audit event does not exist
/// (reconciliation, A1), `audit_events` being the table that holds every
/// committed event.
macro_rules! unaudited_rows_sql {
    () => {
        "SELECT t, k, a FROM ( \
         SELECT 'borrowers' AS t, b.id AS k, b.audit_event_id AS a FROM borrowers b \
           WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = b.audit_event_id) \
         UNION ALL SELECT 'cases', c.id, c.audit_event_id FROM cases c \
           WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = c.audit_event_id) \
         UNION ALL SELECT 'votes', v.case_id || '/' || v.ordinal, v.audit_event_id FROM votes v \
           WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = v.audit_event_id) \
         UNION ALL SELECT 'decisions', d.case_id, d.audit_event_id FROM decisions d \
           WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = d.audit_event_id) \
         ) r ORDER BY t, k LIMIT $1"
    };
}

pub(crate) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    origin: Arc<str>,
    /// The id of this transaction's first audit event; every business row
    /// of the credit path it writes carries it (reconciliation).
    audit_event_id: uuid::Uuid,
    audit_event_claimed: bool,
}

impl SqliteTx {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>, origin: Arc<str>) -> Self {
        Self {
            tx,
            origin,
            audit_event_id: uuid::Uuid::now_v7(),
            audit_event_claimed: false,
        }
    }

    fn audit_id(&self) -> String {
        self.audit_event_id.to_string()
    }

    /// Inserts `case.votes[from..]` with their list index as ordinal.
    async fn insert_votes(&mut self, case: &CreditCase, from: usize) -> StoreResult<()> {
        let case_id = case.id.to_string();
        for (ordinal, vote) in case.votes.iter().enumerate().skip(from) {
            let checks = to_json(&vote.checks)?;
            sqlx::query(
                "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
                 rationale, file_version, content_hash, cast_at, checks, round, required_level, \
                 competence_level, left_market_at, audit_event_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17)",
            )
            .bind(&case_id)
            .bind(to_i64(ordinal)?)
            .bind(vote.stage.as_str())
            .bind(vote.voter.staff_id.as_str())
            .bind(vote.voter.unit_id.as_str())
            .bind(vote.voter.side.as_str())
            .bind(vote.decision.as_str())
            .bind(&vote.rationale)
            .bind(vote.file_version)
            .bind(&vote.content_hash)
            .bind(micros(vote.cast_at))
            .bind(checks)
            .bind(i64::from(vote.round))
            .bind(i64::from(vote.required_level))
            .bind(i64::from(vote.voter.competence_level))
            .bind(vote.voter.left_market_at.map(micros))
            .bind(self.audit_id())
            .execute(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        }
        Ok(())
    }

    async fn insert_decision(&mut self, case_id: CaseId, decision: &Decision) -> StoreResult<()> {
        let json = to_json(&decision_in_micros(decision))?;
        sqlx::query(
            "INSERT INTO decisions (case_id, outcome, decided_at, file_version, content_hash, \
             decision_json, audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(case_id.to_string())
        .bind(decision.outcome.as_str())
        .bind(micros(decision.decided_at))
        .bind(decision.file_version)
        .bind(&decision.content_hash)
        .bind(json)
        .bind(self.audit_id())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "the case has a decision already"))?;
        Ok(())
    }

    async fn stored_vote_count(&mut self, case_id: CaseId) -> StoreResult<usize> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM votes WHERE case_id = $1")
            .bind(case_id.to_string())
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        usize::try_from(count).map_err(|_| corrupt("vote count out of range"))
    }

    async fn has_decision(&mut self, case_id: CaseId) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM decisions WHERE case_id = $1")
            .bind(case_id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        Ok(found.is_some())
    }

    async fn insert_role(
        &mut self,
        id: &StaffId,
        position: i64,
        role: &RoleAssignment,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO role_assignments (staff_id, position, role, valid_from, valid_to) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(position)
        .bind(role.role.as_str())
        .bind(micros(role.valid_from))
        .bind(role.valid_to.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    async fn insert_grant(
        &mut self,
        id: &StaffId,
        position: i64,
        grant: &CompetenceGrant,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO competence_grants (staff_id, position, side, level, valid_from, \
             valid_to) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(position)
        .bind(grant.side.as_str())
        .bind(i64::from(grant.level))
        .bind(micros(grant.valid_from))
        .bind(grant.valid_to.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// NotFound unless the staff member exists.
    async fn require_staff(&mut self, id: &StaffId) -> StoreResult<()> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM staff WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound("staff member".into()))
    }

    /// The next free position in one of a person's history tables. Runs on
    /// the one writer connection, so nobody else appends in between.
    async fn next_position(&mut self, id: &StaffId, table: HistoryTable) -> StoreResult<i64> {
        let sql = match table {
            HistoryTable::Roles => {
                "SELECT COALESCE(MAX(position) + 1, 0) FROM role_assignments WHERE staff_id = $1"
            }
            HistoryTable::Competences => {
                "SELECT COALESCE(MAX(position) + 1, 0) FROM competence_grants WHERE staff_id = $1"
            }
        };
        sqlx::query_scalar(sql)
            .bind(id.as_str())
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)
    }
}

/// The dated history tables of a person that are appended to by position.
#[derive(Clone, Copy)]
enum HistoryTable {
    Roles,
    Competences,
}

#[async_trait]
impl Tx for SqliteTx {
    async fn upsert_unit(&mut self, unit: &UnitId, name: &str, side: Side) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO org_units (id, name, side) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, side = excluded.side",
        )
        .bind(unit.as_str())
        .bind(name)
        .bind(side.as_str())
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    async fn unit_side(&mut self, unit: &UnitId) -> StoreResult<Option<Side>> {
        let side: Option<String> = sqlx::query_scalar("SELECT side FROM org_units WHERE id = $1")
            .bind(unit.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        side.map(|side| parse_text(&side, "side")).transpose()
    }

    async fn insert_staff(&mut self, member: &StaffMember) -> StoreResult<()> {
        // Check the units first: a clear NotFound instead of a bare FK error,
        // and the side recorded on the assignment must be its unit's side.
        for unit in &member.units {
            let side: Option<String> =
                sqlx::query_scalar("SELECT side FROM org_units WHERE id = $1")
                    .bind(unit.unit_id.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            match side {
                None => {
                    return Err(StoreError::NotFound(
                        "an org unit of the staff member's unit assignments does not exist".into(),
                    ));
                }
                Some(side) if side != unit.side.as_str() => {
                    return Err(StoreError::Conflict(
                        "a unit assignment names another side than its org unit has".into(),
                    ));
                }
                Some(_) => {}
            }
        }
        sqlx::query("INSERT INTO staff (id, status) VALUES ($1, $2)")
            .bind(member.id.as_str())
            .bind(member.status.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(|e| conflict_as(e, "a staff member with this id exists already"))?;
        for (position, unit) in member.units.iter().enumerate() {
            sqlx::query(
                "INSERT INTO unit_assignments (staff_id, position, unit_id, side, valid_from, \
                 valid_to) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(member.id.as_str())
            .bind(to_i64(position)?)
            .bind(unit.unit_id.as_str())
            .bind(unit.side.as_str())
            .bind(micros(unit.valid_from))
            .bind(unit.valid_to.map(micros))
            .execute(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        }
        for (position, role) in member.roles.iter().enumerate() {
            self.insert_role(&member.id, to_i64(position)?, role)
                .await?;
        }
        for (position, grant) in member.competences.iter().enumerate() {
            self.insert_grant(&member.id, to_i64(position)?, grant)
                .await?;
        }
        Ok(())
    }

    async fn staff_member(&mut self, id: &StaffId) -> StoreResult<Option<StaffMember>> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM staff WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        let Some(status) = status else {
            return Ok(None);
        };
        let status: StaffStatus = parse_text(&status, "staff status")?;

        let unit_rows = sqlx::query(
            "SELECT unit_id, side, valid_from, valid_to FROM unit_assignments \
             WHERE staff_id = $1 ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let units = unit_rows
            .iter()
            .map(|row| {
                Ok(UnitAssignment {
                    unit_id: parse_text(&get::<String>(row, "unit_id")?, "unit id")?,
                    side: parse_text(&get::<String>(row, "side")?, "side")?,
                    valid_from: get(row, "valid_from")?,
                    valid_to: get(row, "valid_to")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;

        let role_rows = sqlx::query(
            "SELECT role, valid_from, valid_to FROM role_assignments \
             WHERE staff_id = $1 ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let roles = role_rows
            .iter()
            .map(|row| {
                Ok(RoleAssignment {
                    role: parse_text::<Role>(&get::<String>(row, "role")?, "role")?,
                    valid_from: get(row, "valid_from")?,
                    valid_to: get(row, "valid_to")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;

        let grant_rows = sqlx::query(
            "SELECT side, level, valid_from, valid_to FROM competence_grants \
             WHERE staff_id = $1 ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let competences = grant_rows
            .iter()
            .map(|row| {
                Ok(CompetenceGrant {
                    side: parse_text(&get::<String>(row, "side")?, "side")?,
                    level: level(get(row, "level")?)?,
                    valid_from: get(row, "valid_from")?,
                    valid_to: get(row, "valid_to")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;

        Ok(Some(StaffMember {
            id: id.clone(),
            status,
            units,
            roles,
            competences,
        }))
    }

    async fn set_staff_status(&mut self, id: &StaffId, status: StaffStatus) -> StoreResult<()> {
        let done = sqlx::query("UPDATE staff SET status = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(status.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("staff member".into()));
        }
        Ok(())
    }

    async fn add_role_assignment(
        &mut self,
        id: &StaffId,
        role: &RoleAssignment,
    ) -> StoreResult<()> {
        self.require_staff(id).await?;
        let position = self.next_position(id, HistoryTable::Roles).await?;
        self.insert_role(id, position, role).await
    }

    async fn add_competence_grant(
        &mut self,
        id: &StaffId,
        grant: &CompetenceGrant,
    ) -> StoreResult<()> {
        self.require_staff(id).await?;
        let position = self.next_position(id, HistoryTable::Competences).await?;
        self.insert_grant(id, position, grant).await
    }

    async fn staff_ids(&mut self) -> StoreResult<Vec<StaffId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM staff")
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        let mut ids = ids
            .iter()
            .map(|id| parse_text(id, "staff id"))
            .collect::<StoreResult<Vec<StaffId>>>()?;
        // Sorted in Rust: the order of `StaffId`, whatever the collation.
        ids.sort();
        Ok(ids)
    }

    async fn insert_group(&mut self, group: &BorrowerGroup) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO borrower_groups (id, name, created_by, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(group.id.as_str())
        .bind(&group.name)
        .bind(group.created_by.as_str())
        .bind(micros(group.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a group with this id exists already"))?;
        Ok(())
    }

    async fn group(&mut self, id: &UnitId) -> StoreResult<Option<BorrowerGroup>> {
        let row =
            sqlx::query("SELECT name, created_by, created_at FROM borrower_groups WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
        row.map(|row| {
            Ok(BorrowerGroup {
                id: id.clone(),
                name: get(&row, "name")?,
                created_by: parse_text(&get::<String>(&row, "created_by")?, "staff id")?,
                created_at: get(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn set_group_membership(
        &mut self,
        borrower: BorrowerId,
        group: Option<&UnitId>,
        at: Timestamp,
    ) -> StoreResult<()> {
        let at = micros(at);
        let borrower_id = borrower.to_string();
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM borrowers WHERE id = $1")
            .bind(&borrower_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        if found.is_none() {
            return Err(StoreError::NotFound("borrower".into()));
        }
        if let Some(group) = group {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM borrower_groups WHERE id = $1")
                    .bind(group.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            if found.is_none() {
                return Err(StoreError::NotFound("borrower group".into()));
            }
        }
        // The history only grows forward: a change may not start before a
        // membership already on record starts or ends.
        let history: Vec<(Timestamp, Option<Timestamp>)> = sqlx::query_as(
            "SELECT valid_from, valid_to FROM group_memberships WHERE borrower_id = $1",
        )
        .bind(&borrower_id)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if history
            .iter()
            .any(|(from, to)| *from > at || to.is_some_and(|to| to > at))
        {
            return Err(StoreError::Conflict(
                "the borrower's group membership changed later than this change".into(),
            ));
        }
        sqlx::query(
            "UPDATE group_memberships SET valid_to = $2 \
             WHERE borrower_id = $1 AND valid_to IS NULL",
        )
        .bind(&borrower_id)
        .bind(at)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if let Some(group) = group {
            sqlx::query(
                "INSERT INTO group_memberships (borrower_id, group_id, valid_from) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&borrower_id)
            .bind(group.as_str())
            .bind(at)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| conflict_as(e, "the borrower's group membership changed concurrently"))?;
        }
        Ok(())
    }

    async fn group_of(
        &mut self,
        borrower: BorrowerId,
        at: Timestamp,
    ) -> StoreResult<Option<UnitId>> {
        // Text comparison is chronological (see `audit_events`).
        let group: Option<String> = sqlx::query_scalar(
            "SELECT group_id FROM group_memberships WHERE borrower_id = $1 \
             AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2) \
             ORDER BY valid_from DESC LIMIT 1",
        )
        .bind(borrower.to_string())
        .bind(micros(at))
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        group.map(|g| parse_text(&g, "group id")).transpose()
    }

    async fn group_members(
        &mut self,
        group: &UnitId,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT borrower_id FROM group_memberships WHERE group_id = $1 \
             AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
        )
        .bind(group.as_str())
        .bind(micros(at))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let mut ids = ids
            .iter()
            .map(|id| parse_uuid(id).map(BorrowerId::from_uuid))
            .collect::<StoreResult<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }

    async fn relationship_managers(
        &mut self,
        borrowers: &[BorrowerId],
    ) -> StoreResult<BTreeSet<StaffId>> {
        if borrowers.is_empty() {
            return Ok(BTreeSet::new());
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT relationship_manager FROM borrowers \
             WHERE id IN (SELECT value FROM json_each($1)) AND relationship_manager IS NOT NULL",
        )
        .bind(id_list(borrowers)?)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        ids.iter().map(|id| parse_text(id, "staff id")).collect()
    }

    async fn insert_related_party(&mut self, party: &RelatedParty) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO related_parties (borrower_id, staff_id, relation, recorded_by, \
             recorded_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(party.borrower_id.to_string())
        .bind(party.staff_id.as_str())
        .bind(&party.relation)
        .bind(party.recorded_by.as_str())
        .bind(micros(party.recorded_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            conflict_as(
                e,
                "this person is recorded as related to the borrower already",
            )
        })?;
        Ok(())
    }

    async fn related_parties(
        &mut self,
        borrowers: &[BorrowerId],
    ) -> StoreResult<BTreeSet<StaffId>> {
        if borrowers.is_empty() {
            return Ok(BTreeSet::new());
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT staff_id FROM related_parties \
             WHERE borrower_id IN (SELECT value FROM json_each($1))",
        )
        .bind(id_list(borrowers)?)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        ids.iter().map(|id| parse_text(id, "staff id")).collect()
    }

    async fn approved_amounts(&mut self, borrowers: &[BorrowerId]) -> StoreResult<Vec<Money>> {
        if borrowers.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT amount_minor, currency FROM cases \
             WHERE borrower_id IN (SELECT value FROM json_each($1)) AND status = $2 ORDER BY id",
        )
        .bind(id_list(borrowers)?)
        .bind(CaseStatus::Approved.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|(minor, currency)| money(*minor, currency))
            .collect()
    }

    async fn open_cases_of(&mut self, borrowers: &[BorrowerId]) -> StoreResult<Vec<CaseId>> {
        if borrowers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM cases WHERE borrower_id IN (SELECT value FROM json_each($1)) \
             AND status NOT IN ($2, $3) ORDER BY id",
        )
        .bind(id_list(borrowers)?)
        .bind(CaseStatus::Approved.as_str())
        .bind(CaseStatus::Declined.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        ids.iter()
            .map(|id| parse_uuid(id).map(CaseId::from_uuid))
            .collect()
    }

    async fn rule_sets(&mut self) -> StoreResult<Vec<RuleSet>> {
        let rows: Vec<(i64, Timestamp, String)> = sqlx::query_as(
            "SELECT version, valid_from, parameters FROM rule_sets ORDER BY version",
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|(version, valid_from, parameters)| {
                stored_rule_set(*version, *valid_from, parameters)
            })
            .collect()
    }

    async fn insert_rule_set(&mut self, rules: &RuleSet) -> StoreResult<()> {
        sqlx::query("INSERT INTO rule_sets (version, valid_from, parameters) VALUES ($1, $2, $3)")
            .bind(rules.version)
            .bind(micros(rules.valid_from))
            .bind(to_json(&rules.parameters)?)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| conflict_as(e, "a rule set with this version exists already"))?;
        Ok(())
    }

    async fn insert_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO change_proposals (id, kind, payload, proposed_by, proposed_at, status, \
             decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(proposal.id.to_string())
        .bind(proposal.kind.as_str())
        .bind(to_json(&proposal.payload)?)
        .bind(proposal.proposed_by.as_str())
        .bind(micros(proposal.proposed_at))
        .bind(proposal.status.as_str())
        .bind(proposal.decided_by.as_ref().map(StaffId::as_str))
        .bind(proposal.decided_at.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a proposal with this id exists already"))?;
        Ok(())
    }

    async fn proposal(&mut self, id: Uuid) -> StoreResult<Option<ChangeProposal>> {
        let row = sqlx::query(
            "SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, decided_at \
             FROM change_proposals WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.as_ref().map(proposal_from_row).transpose()
    }

    async fn decide_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()> {
        let (Some(decided_by), Some(decided_at)) = (&proposal.decided_by, proposal.decided_at)
        else {
            return Err(invariant(
                "a decided proposal needs decided_by and decided_at",
            ));
        };
        if proposal.status == ProposalStatus::Pending {
            return Err(invariant("a decision must approve or reject the proposal"));
        }
        let done = sqlx::query(
            "UPDATE change_proposals SET status = $2, decided_by = $3, decided_at = $4 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(proposal.id.to_string())
        .bind(proposal.status.as_str())
        .bind(decided_by.as_str())
        .bind(micros(decided_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM change_proposals WHERE id = $1")
                    .bind(proposal.id.to_string())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(match found {
                Some(_) => StoreError::Conflict("the proposal was decided already".into()),
                None => StoreError::NotFound("change proposal".into()),
            });
        }
        Ok(())
    }

    async fn proposals(
        &mut self,
        status: Option<ProposalStatus>,
    ) -> StoreResult<Vec<ChangeProposal>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, decided_at \
             FROM change_proposals",
        );
        if let Some(status) = status {
            query.push(" WHERE status = ").push_bind(status.as_str());
        }
        // Text comparison is chronological (see `audit_events`).
        query.push(" ORDER BY proposed_at DESC, id DESC");
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.iter().map(proposal_from_row).collect()
    }

    async fn insert_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()> {
        if limit.status != LimitStatus::Pending {
            return Err(invariant("a limit version is stored as a pending proposal"));
        }
        sqlx::query(
            "INSERT INTO limit_versions (id, subject_kind, subject_key, version, amount_minor, \
             tolerance_percent, reason, proposed_by, proposed_at, status, decided_by, \
             decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(limit.id.to_string())
        .bind(limit.subject.kind().as_str())
        .bind(subject_key(&limit.subject)?)
        .bind(limit.version)
        .bind(to_minor(limit.amount)?)
        .bind(limit.tolerance_percent.to_string())
        .bind(&limit.reason)
        .bind(limit.proposed_by.as_str())
        .bind(micros(limit.proposed_at))
        .bind(limit.status.as_str())
        .bind(limit.decided_by.as_ref().map(StaffId::as_str))
        .bind(limit.decided_at.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            conflict_as(
                e,
                "the limit's subject has this version already, or the id exists",
            )
        })?;
        Ok(())
    }

    async fn limit_version(&mut self, id: Uuid) -> StoreResult<Option<LimitVersion>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            limit_columns!(),
            " FROM limit_versions WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.as_ref().map(limit_version_from_row).transpose()
    }

    async fn decide_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()> {
        let (Some(decided_by), Some(decided_at)) = (&limit.decided_by, limit.decided_at) else {
            return Err(invariant(
                "a decided limit version needs decided_by and decided_at",
            ));
        };
        if limit.status == LimitStatus::Pending {
            return Err(invariant(
                "a decision must approve or reject the limit version",
            ));
        }
        let done = sqlx::query(
            "UPDATE limit_versions SET status = $2, decided_by = $3, decided_at = $4 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(limit.id.to_string())
        .bind(limit.status.as_str())
        .bind(decided_by.as_str())
        .bind(micros(decided_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM limit_versions WHERE id = $1")
                    .bind(limit.id.to_string())
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(match found {
                Some(_) => StoreError::Conflict("the limit version was decided already".into()),
                None => StoreError::NotFound("limit version".into()),
            });
        }
        Ok(())
    }

    async fn limit_versions(
        &mut self,
        status: Option<LimitStatus>,
        subject: Option<&LimitSubject>,
    ) -> StoreResult<Vec<LimitVersion>> {
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            limit_columns!(),
            " FROM limit_versions WHERE 1 = 1"
        ));
        if let Some(status) = status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(subject) = subject {
            query
                .push(" AND subject_kind = ")
                .push_bind(subject.kind().as_str())
                .push(" AND subject_key = ")
                .push_bind(subject.key());
        }
        // Text comparison is chronological (see `audit_events`).
        query.push(" ORDER BY proposed_at, id");
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.iter().map(limit_version_from_row).collect()
    }

    async fn latest_limit_version(&mut self, subject: &LimitSubject) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM limit_versions \
             WHERE subject_kind = $1 AND subject_key = $2",
        )
        .bind(subject.kind().as_str())
        .bind(subject.key())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)
    }

    async fn limits_in_force(
        &mut self,
        subjects: Option<&[LimitSubject]>,
    ) -> StoreResult<Vec<Limit>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT id, subject_kind, subject_key, version, amount_minor, tolerance_percent \
             FROM (SELECT id, subject_kind, subject_key, version, amount_minor, \
             tolerance_percent, ROW_NUMBER() OVER (PARTITION BY subject_kind, subject_key \
             ORDER BY version DESC) AS n FROM limit_versions WHERE status = 'approved'",
        );
        if let Some(subjects) = subjects {
            if subjects.is_empty() {
                return Ok(Vec::new());
            }
            // One bound value: a JSON array of [kind, key] pairs.
            let pairs: Vec<(&str, String)> = subjects
                .iter()
                .map(|s| (s.kind().as_str(), s.key()))
                .collect();
            query
                .push(
                    " AND (subject_kind, subject_key) IN (SELECT json_extract(value, '$[0]'), \
                     json_extract(value, '$[1]') FROM json_each(",
                )
                .push_bind(to_json(&pairs)?)
                .push("))");
        }
        query.push(") AS ranked WHERE n = 1");
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        let mut limits = rows
            .iter()
            .map(|row| {
                Ok(Limit {
                    id: parse_uuid(&get::<String>(row, "id")?)?,
                    subject: subject_from_row(row)?,
                    version: get(row, "version")?,
                    amount: from_minor(get(row, "amount_minor")?),
                    tolerance_percent: parse_text(
                        &get::<String>(row, "tolerance_percent")?,
                        "limit tolerance",
                    )?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Sorted in Rust: the order of `LimitSubject`, whatever the collation.
        limits.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(limits)
    }

    async fn insert_capital(&mut self, capital: &Capital) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO capital_versions (version, tier1_minor, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(capital.version)
        .bind(to_minor(capital.tier1)?)
        .bind(capital.recorded_by.as_str())
        .bind(micros(capital.recorded_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a capital version with this number exists already"))?;
        Ok(())
    }

    async fn latest_capital(&mut self) -> StoreResult<Option<Capital>> {
        let row = sqlx::query(
            "SELECT version, tier1_minor, recorded_by, recorded_at FROM capital_versions \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.map(|row| {
            Ok(Capital {
                version: get(&row, "version")?,
                tier1: from_minor(get(&row, "tier1_minor")?),
                recorded_by: parse_text(&get::<String>(&row, "recorded_by")?, "staff id")?,
                recorded_at: get(&row, "recorded_at")?,
            })
        })
        .transpose()
    }

    async fn insert_liquidity(&mut self, position: &LiquidityPosition) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO liquidity_positions (version, hqla_minor, outflows_minor, \
             inflows_minor, floor_percent, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(position.version)
        .bind(to_minor(position.hqla)?)
        .bind(to_minor(position.outflows_30d)?)
        .bind(to_minor(position.inflows_30d)?)
        .bind(position.floor_percent.to_string())
        .bind(position.recorded_by.as_str())
        .bind(micros(position.recorded_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a liquidity position with this version exists already"))?;
        Ok(())
    }

    async fn latest_liquidity(&mut self) -> StoreResult<Option<LiquidityPosition>> {
        let row = sqlx::query(
            "SELECT version, hqla_minor, outflows_minor, inflows_minor, floor_percent, \
             recorded_by, recorded_at FROM liquidity_positions ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.map(|row| {
            Ok(LiquidityPosition {
                version: get(&row, "version")?,
                hqla: from_minor(get(&row, "hqla_minor")?),
                outflows_30d: from_minor(get(&row, "outflows_minor")?),
                inflows_30d: from_minor(get(&row, "inflows_minor")?),
                floor_percent: parse_text(
                    &get::<String>(&row, "floor_percent")?,
                    "liquidity floor",
                )?,
                recorded_by: parse_text(&get::<String>(&row, "recorded_by")?, "staff id")?,
                recorded_at: get(&row, "recorded_at")?,
            })
        })
        .transpose()
    }

    /// One statement over the borrowers in scope; per borrower, index
    /// lookups only (reservations by borrower and status, imported balances
    /// by borrower, memberships by borrower and start). SQLite's planner
    /// joins aggregated subqueries without an index (quadratic for large
    /// scopes), so the sums are correlated subqueries instead. The group is
    /// the latest membership covering `at`, should the history overlap.
    async fn exposures(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerExposure>> {
        if matches!(scope, ExposureScope::Borrowers(ids) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        let at = micros(at);
        // Text comparison is chronological (see `audit_events`).
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT b.id, b.country, b.sector, b.institution, \
             (SELECT m.group_id FROM group_memberships AS m WHERE m.borrower_id = b.id \
             AND m.valid_from <= ",
        );
        query
            .push_bind(at)
            .push(" AND (m.valid_to IS NULL OR m.valid_to > ")
            .push_bind(at)
            .push(
                ") ORDER BY m.valid_from DESC LIMIT 1) AS group_id, \
                 (SELECT COALESCE(SUM(r.amount_minor), 0) FROM reservations AS r \
                 WHERE r.borrower_id = b.id AND r.status = 'active' AND r.expires_at > ",
            )
            .push_bind(at)
            .push(
                ") AS reserved, \
                 (SELECT COALESCE(SUM(r.amount_minor), 0) FROM reservations AS r \
                 WHERE r.borrower_id = b.id AND r.status = 'consumed') AS consumed, \
                 (SELECT COALESCE(SUM(i.amount_minor), 0) FROM imported_balances AS i \
                 WHERE i.borrower_id = b.id) AS imported \
                 FROM borrowers AS b WHERE ",
            );
        push_scope(&mut query, scope)?;
        query.push(" ORDER BY b.id");
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|row| {
                Ok(BorrowerExposure {
                    borrower: BorrowerId::from_uuid(parse_uuid(&get::<String>(row, "id")?)?),
                    group: get(row, "group_id")?,
                    sector: get(row, "sector")?,
                    country: get(row, "country")?,
                    institution: get(row, "institution")?,
                    reserved: from_minor(get(row, "reserved")?),
                    outstanding: sum_minor(&[get(row, "consumed")?, get(row, "imported")?])?,
                })
            })
            .collect()
    }

    async fn exposure_total(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Decimal> {
        if matches!(scope, ExposureScope::Borrowers(ids) if ids.is_empty()) {
            return Ok(Decimal::ZERO);
        }
        // Two sums (an addition of SQLite integers could overflow into a
        // float; SUM raises an error instead), added exactly in Rust. The
        // expiry test sits in the CASE, not the WHERE: an OR there lets the
        // planner prefer the partial indexes (every active and consumed
        // reservation) over the borrowers' index.
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT (SELECT COALESCE(SUM(CASE WHEN r.status = 'consumed' OR r.expires_at > ",
        );
        query.push_bind(micros(at)).push(
            " THEN r.amount_minor ELSE 0 END), 0) FROM reservations AS r \
                 JOIN borrowers AS b ON b.id = r.borrower_id \
                 WHERE r.status IN ('active', 'consumed') AND ",
        );
        push_scope(&mut query, scope)?;
        query.push(
            ") AS reservations, \
             (SELECT COALESCE(SUM(i.amount_minor), 0) FROM imported_balances AS i \
             JOIN borrowers AS b ON b.id = i.borrower_id WHERE ",
        );
        push_scope(&mut query, scope)?;
        query.push(") AS imported");
        let row = query
            .build()
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        sum_minor(&[get(&row, "reservations")?, get(&row, "imported")?])
    }

    async fn insert_reservation(&mut self, reservation: &Reservation) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO reservations (case_id, borrower_id, amount_minor, status, reserved_at, \
             expires_at, closed_at, closed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(reservation.case_id.to_string())
        .bind(reservation.borrower.to_string())
        .bind(to_minor(reservation.amount)?)
        .bind(reservation.status.as_str())
        .bind(micros(reservation.reserved_at))
        .bind(micros(reservation.expires_at))
        .bind(reservation.closed_at.map(micros))
        .bind(reservation.closed_by.as_ref().map(StaffId::as_str))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "the case holds a reservation already"))?;
        Ok(())
    }

    async fn reservation(&mut self, case: CaseId) -> StoreResult<Option<Reservation>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            reservation_columns!(),
            " FROM reservations WHERE case_id = $1"
        ))
        .bind(case.to_string())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.as_ref().map(reservation_from_row).transpose()
    }

    async fn close_reservation(&mut self, reservation: &Reservation) -> StoreResult<()> {
        if reservation.status == ReservationStatus::Active {
            return Err(invariant("closing a reservation consumes or expires it"));
        }
        let Some(closed_at) = reservation.closed_at else {
            return Err(invariant("a closed reservation needs closed_at"));
        };
        let case_id = reservation.case_id.to_string();
        let done = sqlx::query(
            "UPDATE reservations SET status = $2, closed_at = $3, closed_by = $4 \
             WHERE case_id = $1 AND status = 'active'",
        )
        .bind(&case_id)
        .bind(reservation.status.as_str())
        .bind(micros(closed_at))
        .bind(reservation.closed_by.as_ref().map(StaffId::as_str))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM reservations WHERE case_id = $1")
                    .bind(&case_id)
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(match found {
                Some(_) => StoreError::Conflict("the reservation is not active any more".into()),
                None => StoreError::NotFound("reservation".into()),
            });
        }
        Ok(())
    }

    async fn due_reservations(&mut self, at: Timestamp) -> StoreResult<Vec<Reservation>> {
        // Text comparison is chronological (see `audit_events`).
        let rows = sqlx::query(concat!(
            "SELECT ",
            reservation_columns!(),
            " FROM reservations WHERE status = 'active' AND expires_at <= $1 \
             ORDER BY expires_at, case_id"
        ))
        .bind(micros(at))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter().map(reservation_from_row).collect()
    }

    /// Consumed "after `since`" counts from `since` itself on: a disbursement
    /// at the very instant the position was recorded is counted, not lost.
    async fn committed_outflows(
        &mut self,
        since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<Decimal> {
        let minor: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount_minor), 0) FROM reservations \
             WHERE (status = 'active' AND expires_at > $1) \
             OR (status = 'consumed' AND closed_at >= $2)",
        )
        .bind(micros(at))
        .bind(micros(since))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(from_minor(minor))
    }

    /// Runs on the one writer connection: nobody imports the same record in
    /// between the insert attempt and the comparison.
    async fn import_balance(&mut self, balance: &ImportedBalance) -> StoreResult<ImportEffect> {
        let amount = to_minor(balance.amount)?;
        let as_of = micros(balance.as_of);
        let imported_at = micros(chrono::Utc::now());
        let borrower_id = balance.borrower.to_string();
        let inserted = sqlx::query(
            "INSERT INTO imported_balances (source_id, borrower_id, amount_minor, as_of, \
             imported_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_id) DO NOTHING",
        )
        .bind(&balance.source_id)
        .bind(&borrower_id)
        .bind(amount)
        .bind(as_of)
        .bind(imported_at)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if inserted.rows_affected() > 0 {
            return Ok(ImportEffect::Inserted);
        }
        let (stored_borrower, stored_amount, stored_as_of): (String, i64, Timestamp) =
            sqlx::query_as(
                "SELECT borrower_id, amount_minor, as_of FROM imported_balances \
                 WHERE source_id = $1",
            )
            .bind(&balance.source_id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        if parse_uuid(&stored_borrower)? == balance.borrower.as_uuid()
            && stored_amount == amount
            && stored_as_of == as_of
        {
            return Ok(ImportEffect::Unchanged);
        }
        sqlx::query(
            "UPDATE imported_balances SET borrower_id = $2, amount_minor = $3, as_of = $4, \
             imported_at = $5 WHERE source_id = $1",
        )
        .bind(&balance.source_id)
        .bind(&borrower_id)
        .bind(amount)
        .bind(as_of)
        .bind(imported_at)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(ImportEffect::Updated)
    }

    async fn insert_breach(&mut self, breach: &Breach) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO breaches (id, subject, rule, check_name, limit_value, usage_value, \
             amount_over, severity, cause, owner, detected_at, resolved_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(breach.id.to_string())
        .bind(&breach.subject)
        .bind(breach.rule.as_str())
        .bind(&breach.check)
        .bind(breach.limit.to_string())
        .bind(breach.usage.to_string())
        .bind(breach.amount_over.to_string())
        .bind(breach_severity(breach.severity)?)
        .bind(&breach.cause)
        .bind(&breach.owner)
        .bind(micros(breach.detected_at))
        .bind(breach.resolved_at.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a breach with this id exists already"))?;
        Ok(())
    }

    async fn open_breaches(&mut self) -> StoreResult<Vec<Breach>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            breach_columns!(),
            " FROM breaches WHERE resolved_at IS NULL ORDER BY detected_at, id"
        ))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter().map(breach_from_row).collect()
    }

    async fn resolve_breach(&mut self, id: Uuid, at: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE breaches SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(id.to_string())
        .bind(micros(at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM breaches WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
            return Err(match found {
                Some(_) => StoreError::Conflict("the breach is resolved already".into()),
                None => StoreError::NotFound("breach".into()),
            });
        }
        Ok(())
    }

    async fn breaches(&mut self, filter: &BreachFilter) -> StoreResult<Vec<Breach>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        // Text comparison is chronological (see `audit_events`).
        let rows = sqlx::query(concat!(
            "SELECT ",
            breach_columns!(),
            " FROM breaches WHERE detected_at >= $1 AND detected_at < $2 \
             ORDER BY detected_at, id LIMIT $3"
        ))
        .bind(micros(filter.from))
        .bind(micros(filter.to))
        .bind(i64::from(filter.limit))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter().map(breach_from_row).collect()
    }

    async fn insert_borrower(&mut self, borrower: &Borrower) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO borrowers (id, name, country, sector, institution, relationship_manager, \
             created_by, created_at, audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(borrower.id.to_string())
        .bind(&borrower.name)
        .bind(&borrower.country)
        .bind(&borrower.sector)
        .bind(borrower.institution)
        .bind(borrower.relationship_manager.as_ref().map(StaffId::as_str))
        .bind(borrower.created_by.as_str())
        .bind(micros(borrower.created_at))
        .bind(self.audit_id())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a borrower with this id exists already"))?;
        Ok(())
    }

    async fn borrower(&mut self, id: BorrowerId) -> StoreResult<Option<Borrower>> {
        let row = sqlx::query(
            "SELECT name, country, sector, institution, relationship_manager, created_by, \
             created_at FROM borrowers WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.map(|row| {
            Ok(Borrower {
                id,
                name: get(&row, "name")?,
                country: get(&row, "country")?,
                sector: get(&row, "sector")?,
                institution: get(&row, "institution")?,
                relationship_manager: get::<Option<String>>(&row, "relationship_manager")?
                    .map(|id| parse_text(&id, "staff id"))
                    .transpose()?,
                created_by: parse_text(&get::<String>(&row, "created_by")?, "staff id")?,
                created_at: get(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn insert_case(&mut self, case: &CreditCase) -> StoreResult<()> {
        let file = &case.file;
        sqlx::query(
            "INSERT INTO cases (id, borrower_id, amount_minor, currency, product, term_months, \
             purpose, status, version, revision, originator, return_reason, created_at, \
             updated_at, editors, round, escalation_level, related_party, board_resolution, \
             audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20)",
        )
        .bind(case.id.to_string())
        .bind(file.borrower_id.to_string())
        .bind(file.amount.minor_units())
        .bind(file.amount.currency_code())
        .bind(&file.product)
        .bind(i64::from(file.term_months))
        .bind(&file.purpose)
        .bind(case.status.as_str())
        .bind(case.version)
        .bind(case.revision)
        .bind(case.originator.as_str())
        .bind(case.return_reason.as_deref())
        .bind(micros(case.created_at))
        .bind(micros(case.updated_at))
        .bind(to_json(&case.editors)?)
        .bind(i64::from(case.round))
        .bind(case.escalation_level.map(i64::from))
        .bind(case.related_party)
        .bind(board_resolution_json(case.board_resolution.as_ref())?)
        .bind(self.audit_id())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a case with this id exists already"))?;
        self.insert_votes(case, 0).await?;
        if let Some(decision) = &case.decision {
            self.insert_decision(case.id, decision).await?;
        }
        Ok(())
    }

    async fn case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>> {
        let row = sqlx::query(
            "SELECT borrower_id, amount_minor, currency, product, term_months, purpose, status, \
             version, revision, originator, return_reason, created_at, updated_at, editors, \
             round, escalation_level, related_party, board_resolution \
             FROM cases WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let term_months: i64 = get(&row, "term_months")?;
        let file = CaseFile {
            borrower_id: BorrowerId::from_uuid(parse_uuid(&get::<String>(&row, "borrower_id")?)?),
            amount: money(
                get(&row, "amount_minor")?,
                &get::<String>(&row, "currency")?,
            )?,
            product: get(&row, "product")?,
            term_months: u32::try_from(term_months).map_err(|_| corrupt("term out of range"))?,
            purpose: get(&row, "purpose")?,
        };
        let status: CaseStatus = parse_text(&get::<String>(&row, "status")?, "case status")?;
        let originator: StaffId = parse_text(&get::<String>(&row, "originator")?, "staff id")?;
        let editors = serde_json::from_str::<BTreeSet<StaffId>>(&get::<String>(&row, "editors")?)
            .map_err(|_| corrupt("the stored editors of a case are not valid"))?;
        let board_resolution = get::<Option<String>>(&row, "board_resolution")?
            .map(|json| {
                serde_json::from_str::<BoardResolution>(&json)
                    .map_err(|_| corrupt("a stored board resolution is not valid"))
            })
            .transpose()?;

        let vote_rows = sqlx::query(
            "SELECT ordinal, stage, voter_id, unit_id, side, decision, rationale, file_version, \
             content_hash, cast_at, checks, round, required_level, competence_level, \
             left_market_at FROM votes WHERE case_id = $1 ORDER BY ordinal",
        )
        .bind(id.to_string())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let mut votes = Vec::with_capacity(vote_rows.len());
        for (expected, row) in vote_rows.iter().enumerate() {
            let ordinal: i64 = get(row, "ordinal")?;
            if ordinal != to_i64(expected)? {
                return Err(corrupt("the votes of a case have a gap"));
            }
            votes.push(vote_from_row(row)?);
        }

        let decision_json: Option<String> =
            sqlx::query_scalar("SELECT decision_json FROM decisions WHERE case_id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
        let decision = decision_json
            .map(|json| {
                serde_json::from_str::<Decision>(&json)
                    .map_err(|_| corrupt("a stored decision is not valid"))
            })
            .transpose()?;

        Ok(Some(CreditCase {
            id,
            file,
            status,
            version: get(&row, "version")?,
            revision: get(&row, "revision")?,
            originator,
            editors,
            round: round(get(&row, "round")?)?,
            escalation_level: get::<Option<i64>>(&row, "escalation_level")?
                .map(level)
                .transpose()?,
            related_party: get(&row, "related_party")?,
            board_resolution,
            votes,
            decision,
            return_reason: get(&row, "return_reason")?,
            created_at: get(&row, "created_at")?,
            updated_at: get(&row, "updated_at")?,
        }))
    }

    async fn update_case(&mut self, case: &CreditCase, expected_revision: i64) -> StoreResult<()> {
        if case.revision <= expected_revision {
            return Err(invariant(
                "update_case needs a case whose revision is above the expected revision",
            ));
        }
        let file = &case.file;
        let done = sqlx::query(
            "UPDATE cases SET amount_minor = $3, currency = $4, product = $5, term_months = $6, \
             purpose = $7, status = $8, version = $9, revision = $10, return_reason = $11, \
             updated_at = $12, editors = $13, round = $14, escalation_level = $15, \
             related_party = $16, board_resolution = $17, audit_event_id = $18 \
             WHERE id = $1 AND revision = $2",
        )
        .bind(case.id.to_string())
        .bind(expected_revision)
        .bind(file.amount.minor_units())
        .bind(file.amount.currency_code())
        .bind(&file.product)
        .bind(i64::from(file.term_months))
        .bind(&file.purpose)
        .bind(case.status.as_str())
        .bind(case.version)
        .bind(case.revision)
        .bind(case.return_reason.as_deref())
        .bind(micros(case.updated_at))
        .bind(to_json(&case.editors)?)
        .bind(i64::from(case.round))
        .bind(case.escalation_level.map(i64::from))
        .bind(case.related_party)
        .bind(board_resolution_json(case.board_resolution.as_ref())?)
        .bind(self.audit_id())
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "the case was changed by somebody else; reload it and try again".into(),
            ));
        }

        let stored = self.stored_vote_count(case.id).await?;
        if case.votes.len() < stored {
            return Err(invariant(
                "votes are append-only: the case has fewer votes than stored",
            ));
        }
        self.insert_votes(case, stored).await?;

        let has_decision = self.has_decision(case.id).await?;
        match (&case.decision, has_decision) {
            (Some(decision), false) => self.insert_decision(case.id, decision).await?,
            (None, true) => return Err(invariant("a stored decision cannot be removed")),
            _ => {}
        }
        Ok(())
    }

    async fn cases_by_status(
        &mut self,
        status: CaseStatus,
        after: Option<CaseId>,
        limit: u32,
    ) -> StoreResult<Vec<CaseSummary>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT id, borrower_id, amount_minor, currency, status, version, updated_at \
             FROM cases WHERE status = ",
        );
        query.push_bind(status.as_str());
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.to_string());
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|row| {
                Ok(CaseSummary {
                    id: CaseId::from_uuid(parse_uuid(&get::<String>(row, "id")?)?),
                    borrower_id: BorrowerId::from_uuid(parse_uuid(&get::<String>(
                        row,
                        "borrower_id",
                    )?)?),
                    amount: money(get(row, "amount_minor")?, &get::<String>(row, "currency")?)?,
                    status: parse_text(&get::<String>(row, "status")?, "case status")?,
                    version: get(row, "version")?,
                    updated_at: get(row, "updated_at")?,
                })
            })
            .collect()
    }

    async fn idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
    ) -> StoreResult<Option<StoredResponse>> {
        let row = sqlx::query(
            "SELECT request_hash, status, body, created_at FROM idempotency_keys \
             WHERE actor = $1 AND operation = $2 AND key = $3",
        )
        .bind(scope.actor.as_str())
        .bind(&scope.operation)
        .bind(&scope.key)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.map(|row| {
            let status: i64 = get(&row, "status")?;
            Ok(StoredResponse {
                request_hash: get(&row, "request_hash")?,
                status: u16::try_from(status).map_err(|_| corrupt("HTTP status out of range"))?,
                body: get(&row, "body")?,
                created_at: get(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn save_idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO idempotency_keys (actor, operation, key, request_hash, status, body, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(scope.actor.as_str())
        .bind(&scope.operation)
        .bind(&scope.key)
        .bind(&response.request_hash)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(micros(response.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a response for this idempotency key exists already"))?;
        Ok(())
    }

    /// Links the event to the chain head. Serialization: this runs on the one
    /// writer connection inside `BEGIN IMMEDIATE`, so no other appender can
    /// read the same head before this transaction ends.
    async fn append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()> {
        if leaf_hash(&event.body) != event.leaf_hash {
            return Err(invariant(
                "the audit event's leaf hash does not match its body",
            ));
        }
        let head: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, chain_hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
        let (seq, previous) = match head {
            None => (1, chain_genesis(&self.origin)),
            Some((last, chain)) => (
                last + 1,
                hash_from_slice(&chain)
                    .ok_or_else(|| corrupt("a stored chain hash is not 32 bytes"))?,
            ),
        };
        let chain = chain_next(&previous, &event.leaf_hash);
        sqlx::query(
            "INSERT INTO audit_events (seq, event_id, body, leaf_hash, chain_hash, recorded_at, \
             actor, action, outcome, case_id, borrower_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(seq)
        .bind(event.event_id.to_string())
        .bind(&event.body)
        .bind(&event.leaf_hash[..])
        .bind(&chain[..])
        .bind(micros(event.recorded_at))
        .bind(event.actor.as_deref())
        .bind(&event.action)
        .bind(&event.outcome)
        .bind(event.case_id.map(|id| id.to_string()))
        .bind(event.borrower_id.map(|id| id.to_string()))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "an audit event with this id or sequence exists already"))?;
        Ok(())
    }

    fn claim_audit_event_id(&mut self) -> Option<uuid::Uuid> {
        (!std::mem::replace(&mut self.audit_event_claimed, true)).then_some(self.audit_event_id)
    }

    async fn unaudited_rows(&mut self, limit: u32) -> StoreResult<Vec<UnauditedRow>> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(unaudited_rows_sql!())
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.into_iter()
            .map(|(table, key, audit_event_id)| {
                Ok(UnauditedRow {
                    table,
                    key,
                    audit_event_id: audit_event_id
                        .map(|id| id.parse())
                        .transpose()
                        .map_err(|_| corrupt("a stored audit event id is not a UUID"))?,
                })
            })
            .collect()
    }

    async fn audit_events(&mut self, filter: &AuditFilter) -> StoreResult<Vec<StoredAuditEvent>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT seq, event_id, body, leaf_hash, chain_hash, recorded_at, actor, action, \
             outcome, case_id, borrower_id FROM audit_events WHERE 1 = 1",
        );
        if let Some(case_id) = filter.case_id {
            query.push(" AND case_id = ").push_bind(case_id.to_string());
        }
        if let Some(borrower_id) = filter.borrower_id {
            query
                .push(" AND borrower_id = ")
                .push_bind(borrower_id.to_string());
        }
        if let Some(actor) = &filter.actor {
            query.push(" AND actor = ").push_bind(actor.as_str());
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(outcome) = &filter.outcome {
            query.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        // Text comparison is chronological: every stored and bound timestamp
        // has the same RFC 3339 UTC shape.
        if let Some(from) = filter.from {
            query.push(" AND recorded_at >= ").push_bind(micros(from));
        }
        if let Some(to) = filter.to {
            query.push(" AND recorded_at < ").push_bind(micros(to));
        }
        if let Some(after_seq) = filter.after_seq {
            query.push(" AND seq > ").push_bind(after_seq);
        }
        query
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.iter().map(audit_event_from_row).collect()
    }

    async fn insert_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> StoreResult<()> {
        let size = i64::try_from(checkpoint.tree_size)
            .map_err(|_| invariant("a checkpoint size must fit a signed 64-bit integer"))?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root, note, signed_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(size)
        .bind(checkpoint.root.as_slice())
        .bind(&checkpoint.note)
        .bind(micros(checkpoint.signed_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    async fn latest_checkpoint(&mut self, max_size: u64) -> StoreResult<Option<StoredCheckpoint>> {
        let max_size = i64::try_from(max_size).unwrap_or(i64::MAX);
        let row = sqlx::query(
            "SELECT tree_size, root, note, signed_at FROM audit_checkpoints \
             WHERE tree_size <= $1 ORDER BY tree_size DESC, id DESC LIMIT 1",
        )
        .bind(max_size)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.map(|row| {
            let size: i64 = get(&row, "tree_size")?;
            let root: Vec<u8> = get(&row, "root")?;
            Ok(StoredCheckpoint {
                tree_size: u64::try_from(size)
                    .map_err(|_| corrupt("a checkpoint size is negative"))?,
                root: root
                    .try_into()
                    .map_err(|_| corrupt("a checkpoint root is not 32 bytes"))?,
                note: get(&row, "note")?,
                signed_at: get(&row, "signed_at")?,
            })
        })
        .transpose()
    }

    // Write transactions run inside BEGIN IMMEDIATE on one writer: they are
    // serial already, so the risk locks have nothing to add.
    async fn lock_risk(&mut self) -> StoreResult<()> {
        Ok(())
    }

    async fn lock_risk_shared(&mut self) -> StoreResult<()> {
        Ok(())
    }

    async fn lock_risk_subjects(&mut self, _subjects: &[String]) -> StoreResult<()> {
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(map_sqlx_error)
    }
}

fn vote_from_row(row: &SqliteRow) -> StoreResult<Vote> {
    let checks: String = get(row, "checks")?;
    Ok(Vote {
        stage: parse_text(&get::<String>(row, "stage")?, "vote stage")?,
        voter: Voter {
            staff_id: parse_text(&get::<String>(row, "voter_id")?, "staff id")?,
            unit_id: parse_text(&get::<String>(row, "unit_id")?, "unit id")?,
            side: parse_text(&get::<String>(row, "side")?, "side")?,
            competence_level: level(get(row, "competence_level")?)?,
            left_market_at: get(row, "left_market_at")?,
        },
        decision: parse_text(&get::<String>(row, "decision")?, "vote decision")?,
        rationale: get(row, "rationale")?,
        file_version: get(row, "file_version")?,
        content_hash: get(row, "content_hash")?,
        cast_at: get(row, "cast_at")?,
        round: round(get(row, "round")?)?,
        required_level: level(get(row, "required_level")?)?,
        checks: serde_json::from_str::<Vec<RuleCheck>>(&checks)
            .map_err(|_| corrupt("the rule checks of a vote are not valid"))?,
    })
}

fn audit_event_from_row(row: &SqliteRow) -> StoreResult<StoredAuditEvent> {
    let case_id: Option<String> = get(row, "case_id")?;
    let borrower_id: Option<String> = get(row, "borrower_id")?;
    Ok(StoredAuditEvent {
        seq: get(row, "seq")?,
        event_id: parse_uuid(&get::<String>(row, "event_id")?)?,
        body: get(row, "body")?,
        leaf_hash: get(row, "leaf_hash")?,
        chain_hash: get(row, "chain_hash")?,
        recorded_at: get::<Timestamp>(row, "recorded_at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        outcome: get(row, "outcome")?,
        case_id: case_id
            .map(|id| parse_uuid(&id).map(CaseId::from_uuid))
            .transpose()?,
        borrower_id: borrower_id
            .map(|id| parse_uuid(&id).map(BorrowerId::from_uuid))
            .transpose()?,
    })
}

fn get<T>(row: &SqliteRow, column: &str) -> StoreResult<T>
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(map_sqlx_error)
}

/// Parses enum-like stored text (status, side, role, ids...). The stored text
/// is not quoted into the error: it could be anything.
fn parse_text<T: FromStr>(text: &str, what: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| corrupt(&format!("a stored {what} is not valid")))
}

fn parse_uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| corrupt("a stored id is not a UUID"))
}

fn money(minor: i64, currency: &str) -> StoreResult<Money> {
    Money::from_minor_units(minor, currency).map_err(|_| corrupt("a stored amount is not valid"))
}

/// Timestamps are stored with microsecond precision on both backends
/// (PostgreSQL's `TIMESTAMPTZ` keeps no more); finer digits are truncated, so
/// a reloaded value is the same whichever backend stored it.
fn micros(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

/// The decision as stored: its timestamps at the stored precision too.
fn decision_in_micros(decision: &Decision) -> Decision {
    let mut decision = decision.clone();
    decision.decided_at = micros(decision.decided_at);
    for vote in &mut decision.votes {
        vote.cast_at = micros(vote.cast_at);
        vote.voter.left_market_at = vote.voter.left_market_at.map(micros);
    }
    decision
}

/// The board resolution as stored JSON, its timestamp at the stored precision.
fn board_resolution_json(resolution: Option<&BoardResolution>) -> StoreResult<Option<String>> {
    resolution
        .map(|resolution| {
            let mut resolution = resolution.clone();
            resolution.recorded_at = micros(resolution.recorded_at);
            to_json(&resolution)
        })
        .transpose()
}

/// A list of ids as the JSON array `json_each` expands (one bound value).
fn id_list(ids: &[BorrowerId]) -> StoreResult<String> {
    to_json(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
}

fn proposal_from_row(row: &SqliteRow) -> StoreResult<ChangeProposal> {
    let payload: String = get(row, "payload")?;
    Ok(ChangeProposal {
        id: parse_uuid(&get::<String>(row, "id")?)?,
        kind: parse_text(&get::<String>(row, "kind")?, "proposal kind")?,
        payload: serde_json::from_str(&payload)
            .map_err(|_| corrupt("a stored proposal payload is not valid JSON"))?,
        proposed_by: parse_text(&get::<String>(row, "proposed_by")?, "staff id")?,
        proposed_at: get(row, "proposed_at")?,
        status: parse_text(&get::<String>(row, "status")?, "proposal status")?,
        decided_by: get::<Option<String>>(row, "decided_by")?
            .map(|id| parse_text(&id, "staff id"))
            .transpose()?,
        decided_at: get(row, "decided_at")?,
    })
}

/// A stored competence level (0 = none, up to the order's maximum).
fn level(value: i64) -> StoreResult<u8> {
    u8::try_from(value).map_err(|_| corrupt("a stored competence level is out of range"))
}

fn round(value: i64) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt("a stored voting round is out of range"))
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(Box::new(e)))
}

fn to_i64(n: usize) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| invariant("a list index does not fit a database integer"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// A caller broke the store's contract: a bug, reported as a database error
/// (logged, never shown to clients).
fn invariant(what: &'static str) -> StoreError {
    StoreError::Database(what.into())
}

/// Maps an error, replacing the generic conflict text with `message`.
fn conflict_as(err: sqlx::Error, message: &str) -> StoreError {
    match map_sqlx_error(err) {
        StoreError::Conflict(_) => StoreError::Conflict(message.to_owned()),
        other => other,
    }
}

// -- risk control ----------------------------------------------------------------

/// Reporting-currency amounts (EUR) are stored as integer cents.
const MINOR_UNIT_SCALE: u32 = 2;

/// An EUR amount as integer cents. More than two decimal places or an amount
/// beyond an `i64` of cents is refused, never rounded.
fn to_minor(amount: Decimal) -> StoreResult<i64> {
    let cents = amount
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or_else(|| invariant("an amount does not fit integer minor units"))?;
    if !cents.fract().is_zero() {
        return Err(invariant(
            "an amount has more than 2 decimal places (EUR minor units)",
        ));
    }
    cents
        .to_i64()
        .ok_or_else(|| invariant("an amount does not fit integer minor units"))
}

fn from_minor(minor: i64) -> Decimal {
    Decimal::new(minor, MINOR_UNIT_SCALE)
}

/// Adds stored sums of cents exactly.
fn sum_minor(parts: &[i64]) -> StoreResult<Decimal> {
    parts
        .iter()
        .try_fold(Decimal::ZERO, |sum, part| {
            sum.checked_add(from_minor(*part))
        })
        .ok_or_else(|| corrupt("a stored sum is out of range"))
}

/// The key a limit subject is stored under; a subject that would not read
/// back as itself (e.g. an empty sector) is refused.
fn subject_key(subject: &LimitSubject) -> StoreResult<String> {
    let key = subject.key();
    match LimitSubject::parse(subject.kind(), &key) {
        Ok(parsed) if parsed == *subject => Ok(key),
        _ => Err(invariant("a limit subject key is not valid for its kind")),
    }
}

fn subject_from_row(row: &SqliteRow) -> StoreResult<LimitSubject> {
    let kind: LimitKind = parse_text(&get::<String>(row, "subject_kind")?, "limit subject kind")?;
    LimitSubject::parse(kind, &get::<String>(row, "subject_key")?)
        .map_err(|_| corrupt("a stored limit subject is not valid"))
}

fn limit_version_from_row(row: &SqliteRow) -> StoreResult<LimitVersion> {
    Ok(LimitVersion {
        id: parse_uuid(&get::<String>(row, "id")?)?,
        subject: subject_from_row(row)?,
        version: get(row, "version")?,
        amount: from_minor(get(row, "amount_minor")?),
        tolerance_percent: parse_text(
            &get::<String>(row, "tolerance_percent")?,
            "limit tolerance",
        )?,
        reason: get(row, "reason")?,
        proposed_by: parse_text(&get::<String>(row, "proposed_by")?, "staff id")?,
        proposed_at: get(row, "proposed_at")?,
        status: parse_text(&get::<String>(row, "status")?, "limit status")?,
        decided_by: get::<Option<String>>(row, "decided_by")?
            .map(|id| parse_text(&id, "staff id"))
            .transpose()?,
        decided_at: get(row, "decided_at")?,
    })
}

fn reservation_from_row(row: &SqliteRow) -> StoreResult<Reservation> {
    Ok(Reservation {
        case_id: CaseId::from_uuid(parse_uuid(&get::<String>(row, "case_id")?)?),
        borrower: BorrowerId::from_uuid(parse_uuid(&get::<String>(row, "borrower_id")?)?),
        amount: from_minor(get(row, "amount_minor")?),
        status: parse_text(&get::<String>(row, "status")?, "reservation status")?,
        reserved_at: get(row, "reserved_at")?,
        expires_at: get(row, "expires_at")?,
        closed_at: get(row, "closed_at")?,
        closed_by: get::<Option<String>>(row, "closed_by")?
            .map(|id| parse_text(&id, "staff id"))
            .transpose()?,
    })
}

/// A breach is soft or hard; "within" is no breach.
fn breach_severity(severity: Severity) -> StoreResult<&'static str> {
    match severity {
        Severity::Soft | Severity::Hard => Ok(severity.as_str()),
        Severity::Within => Err(invariant("a breach is soft or hard, not within")),
    }
}

fn breach_from_row(row: &SqliteRow) -> StoreResult<Breach> {
    let severity = match get::<String>(row, "severity")?.as_str() {
        "soft" => Severity::Soft,
        "hard" => Severity::Hard,
        _ => return Err(corrupt("a stored breach severity is not valid")),
    };
    Ok(Breach {
        id: parse_uuid(&get::<String>(row, "id")?)?,
        subject: get(row, "subject")?,
        rule: parse_text(&get::<String>(row, "rule")?, "breach rule")?,
        check: get(row, "check_name")?,
        limit: parse_text(&get::<String>(row, "limit_value")?, "breach limit")?,
        usage: parse_text(&get::<String>(row, "usage_value")?, "breach usage")?,
        amount_over: parse_text(&get::<String>(row, "amount_over")?, "breach amount")?,
        severity,
        cause: get(row, "cause")?,
        owner: get(row, "owner")?,
        detected_at: get(row, "detected_at")?,
        resolved_at: get(row, "resolved_at")?,
    })
}

/// Pushes the condition that narrows `borrowers AS b` to `scope`.
fn push_scope(query: &mut QueryBuilder<Sqlite>, scope: &ExposureScope) -> StoreResult<()> {
    match scope {
        ExposureScope::All => {
            query.push("1 = 1");
        }
        ExposureScope::Borrowers(ids) => {
            query
                .push("b.id IN (SELECT value FROM json_each(")
                .push_bind(id_list(ids)?)
                .push("))");
        }
        ExposureScope::Sector(sector) => {
            query.push("b.sector = ").push_bind(sector.clone());
        }
        ExposureScope::Country(country) => {
            query.push("b.country = ").push_bind(country.clone());
        }
    }
    Ok(())
}
