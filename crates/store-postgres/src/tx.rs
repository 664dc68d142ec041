//! One PostgreSQL transaction implementing [`Tx`].
//!
//! UUID ids are native `UUID` columns, timestamps `TIMESTAMPTZ`, small
//! counters (`term_months`, positions, ordinals, HTTP status) `INTEGER`.

use crate::error::map_sqlx_error;
use async_trait::async_trait;
use chrono::SubsecRound;
use creditops_audit::leaf_hash;
use creditops_domain::{
    BoardResolution, BorrowerId, CaseFile, CaseId, CaseStatus, CompetenceGrant, CreditCase,
    Decision, Money, RoleAssignment, RuleCheck, RuleSet, Severity, Side, StaffId, StaffMember,
    StaffStatus, Timestamp, UnitId, Vote, Voter,
};
use creditops_risk::{
    BorrowerExposure, Breach, Capital, ImportEffect, ImportedBalance, Limit, LimitKind,
    LimitStatus, LimitSubject, LimitVersion, LiquidityPosition, Reservation, ReservationStatus,
};
use creditops_store::{
    AuditFilter, Borrower, BorrowerGroup, BreachFilter, CaseSummary, ChangeProposal, ExposureScope,
    IdempotencyScope, InFlightClaims, LiquidityClaim, LiquidityNow, NewAuditEvent, ProposalStatus,
    RelatedParty, StoreError, StoreResult, StoredAuditEvent, StoredCheckpoint, StoredResponse, Tx,
    UnauditedRow, VoteContext, stored_rule_set,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use std::collections::BTreeSet;
use std::str::FromStr;
use uuid::Uuid;

/// Business rows of the credit path whose audit event does not exist
/// (reconciliation, A1), `audit_entries` being the table that holds every
/// committed event.
macro_rules! unaudited_rows_sql {
    () => {
        "SELECT t, k, a FROM ( \
         SELECT 'borrowers' AS t, b.id::text AS k, b.audit_event_id AS a FROM borrowers b \
           WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.event_id = b.audit_event_id) \
         UNION ALL SELECT 'cases', c.id::text, c.audit_event_id FROM cases c \
           WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.event_id = c.audit_event_id) \
         UNION ALL SELECT 'votes', v.case_id::text || '/' || v.ordinal, v.audit_event_id FROM votes v \
           WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.event_id = v.audit_event_id) \
         UNION ALL SELECT 'decisions', d.case_id::text, d.audit_event_id FROM decisions d \
           WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.event_id = d.audit_event_id) \
         ) r ORDER BY t, k LIMIT $1"
    };
}

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

macro_rules! liquidity_columns {
    () => {
        "version, hqla_minor, outflows_minor, inflows_minor, floor_percent, recorded_by, \
         recorded_at"
    };
}

/// Liquidity committed since position `p` was recorded, at `$1`: what
/// [`Tx::committed_outflows`] sums, without reading every active
/// reservation: the running total of active ones (kept by a trigger, see
/// the `liquidity_totals` migration), less those already past their expiry
/// at `$1` (an index range the watcher keeps short), plus those consumed
/// since the position.
macro_rules! committed_since_position {
    () => {
        "((SELECT SUM(t.active_minor) FROM liquidity_totals AS t) \
         - (SELECT COALESCE(SUM(r.amount_minor), 0) FROM reservations AS r \
         WHERE r.status = 'active' AND r.expires_at <= $1) \
         + (SELECT COALESCE(SUM(r.amount_minor), 0) FROM reservations AS r \
         WHERE r.status = 'consumed' AND r.closed_at >= p.recorded_at))::BIGINT"
    };
}

pub(crate) struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// The id of this transaction's first audit event; every business row
    /// of the credit path it writes carries it (reconciliation).
    audit_event_id: Uuid,
    audit_event_claimed: bool,
}

impl PgTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self {
            tx,
            audit_event_id: Uuid::now_v7(),
            audit_event_claimed: false,
        }
    }

    fn audit_id(&self) -> Uuid {
        self.audit_event_id
    }

    /// Takes the transaction-scoped advisory lock `key` with `statement`.
    async fn advisory_lock(&mut self, statement: &'static str, key: i64) -> StoreResult<()> {
        sqlx::query(statement)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// Inserts `case.votes[from..]` with their list index as ordinal.
    async fn insert_votes(&mut self, case: &CreditCase, from: usize) -> StoreResult<()> {
        let case_id = case.id.as_uuid();
        for (ordinal, vote) in case.votes.iter().enumerate().skip(from) {
            let checks = to_json(&vote.checks)?;
            sqlx::query(
                "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
                 rationale, file_version, content_hash, cast_at, checks, round, required_level, \
                 competence_level, left_market_at, audit_event_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17)",
            )
            .bind(case_id)
            .bind(to_i32(ordinal)?)
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
            .bind(round_to_db(vote.round)?)
            .bind(i32::from(vote.required_level))
            .bind(i32::from(vote.voter.competence_level))
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
        .bind(case_id.as_uuid())
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

    /// How many votes of the case are stored, and whether its decision is.
    async fn stored_votes_and_decision(&mut self, case_id: CaseId) -> StoreResult<(usize, bool)> {
        let (votes, decided): (i64, bool) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM votes WHERE case_id = $1), \
             EXISTS (SELECT 1 FROM decisions WHERE case_id = $1)",
        )
        .bind(case_id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let votes = usize::try_from(votes).map_err(|_| corrupt("vote count out of range"))?;
        Ok((votes, decided))
    }

    async fn insert_role(
        &mut self,
        id: &StaffId,
        position: i32,
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
        position: i32,
        grant: &CompetenceGrant,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO competence_grants (staff_id, position, side, level, valid_from, \
             valid_to) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(position)
        .bind(grant.side.as_str())
        .bind(i32::from(grant.level))
        .bind(micros(grant.valid_from))
        .bind(grant.valid_to.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// NotFound unless the staff member exists; otherwise locks their row
    /// until the end of the transaction, so appends to their history run one
    /// after another (NO KEY UPDATE: rows that merely refer to the person,
    /// e.g. votes, are not blocked).
    async fn lock_staff(&mut self, id: &StaffId) -> StoreResult<()> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM staff WHERE id = $1 FOR NO KEY UPDATE")
                .bind(id.as_str())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound("staff member".into()))
    }

    /// The next free position in one of a person's history tables; callers
    /// hold the person's row lock ([`Self::lock_staff`]).
    async fn next_position(&mut self, id: &StaffId, table: HistoryTable) -> StoreResult<i32> {
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
impl Tx for PgTx {
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
            .bind(to_i32(position)?)
            .bind(unit.unit_id.as_str())
            .bind(unit.side.as_str())
            .bind(micros(unit.valid_from))
            .bind(unit.valid_to.map(micros))
            .execute(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        }
        for (position, role) in member.roles.iter().enumerate() {
            self.insert_role(&member.id, to_i32(position)?, role)
                .await?;
        }
        for (position, grant) in member.competences.iter().enumerate() {
            self.insert_grant(&member.id, to_i32(position)?, grant)
                .await?;
        }
        Ok(())
    }

    async fn staff_member(&mut self, id: &StaffId) -> StoreResult<Option<StaffMember>> {
        fetch_staff_member(&mut *self.tx, id).await
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
        self.lock_staff(id).await?;
        let position = self.next_position(id, HistoryTable::Roles).await?;
        self.insert_role(id, position, role).await
    }

    async fn add_competence_grant(
        &mut self,
        id: &StaffId,
        grant: &CompetenceGrant,
    ) -> StoreResult<()> {
        self.lock_staff(id).await?;
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
        // Sorted in Rust: the order of `StaffId`, not the database collation.
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
        let borrower_id = borrower.as_uuid();
        // Serializes membership changes of this borrower, so the check of
        // the history below and the change cannot interleave. An advisory
        // lock, not a row lock: the back office's role may not UPDATE
        // borrowers, and a row lock needs that privilege.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('borrower-group:' || $1::text, 0))",
        )
        .bind(borrower_id)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM borrowers WHERE id = $1")
            .bind(borrower_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        if found.is_none() {
            return Err(StoreError::NotFound("borrower".into()));
        }
        if let Some(group) = group {
            let found: Option<i32> =
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
        .bind(borrower_id)
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
        .bind(borrower_id)
        .bind(at)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if let Some(group) = group {
            sqlx::query(
                "INSERT INTO group_memberships (borrower_id, group_id, valid_from) \
                 VALUES ($1, $2, $3)",
            )
            .bind(borrower_id)
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
        let group: Option<String> = sqlx::query_scalar(
            "SELECT group_id FROM group_memberships WHERE borrower_id = $1 \
             AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2) \
             ORDER BY valid_from DESC LIMIT 1",
        )
        .bind(borrower.as_uuid())
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
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT borrower_id FROM group_memberships WHERE group_id = $1 \
             AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
        )
        .bind(group.as_str())
        .bind(micros(at))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let mut ids: Vec<BorrowerId> = ids.into_iter().map(BorrowerId::from_uuid).collect();
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
             WHERE id = ANY($1) AND relationship_manager IS NOT NULL",
        )
        .bind(uuids(borrowers))
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
        .bind(party.borrower_id.as_uuid())
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
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT staff_id FROM related_parties WHERE borrower_id = ANY($1)")
                .bind(uuids(borrowers))
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
             WHERE borrower_id = ANY($1) AND status = $2 ORDER BY id",
        )
        .bind(uuids(borrowers))
        .bind(CaseStatus::Approved.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|(minor, currency)| money(*minor, currency))
            .collect()
    }

    /// The three reads in one statement, each part tagged.
    async fn vote_context(&mut self, borrowers: &[BorrowerId]) -> StoreResult<VoteContext> {
        let mut context = VoteContext::default();
        if borrowers.is_empty() {
            return Ok(context);
        }
        let rows: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT part, amount_minor, text FROM ( \
             SELECT 'approved' AS part, id, amount_minor, currency AS text FROM cases \
             WHERE borrower_id = ANY($1) AND status = $2 \
             UNION ALL SELECT 'manager', NULL, NULL, relationship_manager FROM borrowers \
             WHERE id = ANY($1) AND relationship_manager IS NOT NULL \
             UNION ALL SELECT 'related', NULL, NULL, staff_id FROM related_parties \
             WHERE borrower_id = ANY($1)) AS parts ORDER BY part, id",
        )
        .bind(uuids(borrowers))
        .bind(CaseStatus::Approved.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        for (part, minor, text) in rows {
            let text = text.ok_or_else(|| corrupt("a vote context row without its value"))?;
            match (part.as_str(), minor) {
                ("approved", Some(minor)) => context.approved_amounts.push(money(minor, &text)?),
                ("manager", None) => {
                    context
                        .relationship_managers
                        .insert(parse_text(&text, "staff id")?);
                }
                ("related", None) => {
                    context
                        .related_parties
                        .insert(parse_text(&text, "staff id")?);
                }
                _ => return Err(corrupt("a vote context row of no known part")),
            }
        }
        Ok(context)
    }

    async fn open_cases_of(&mut self, borrowers: &[BorrowerId]) -> StoreResult<Vec<CaseId>> {
        if borrowers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM cases WHERE borrower_id = ANY($1) AND status NOT IN ($2, $3) \
             ORDER BY id",
        )
        .bind(uuids(borrowers))
        .bind(CaseStatus::Approved.as_str())
        .bind(CaseStatus::Declined.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(ids.into_iter().map(CaseId::from_uuid).collect())
    }

    async fn rule_sets(&mut self) -> StoreResult<Vec<RuleSet>> {
        fetch_rule_sets(&mut *self.tx).await
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
        .bind(proposal.id)
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
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.as_ref().map(proposal_from_row).transpose()
    }

    /// Under READ COMMITTED a concurrent decider waits for this row's lock
    /// and then finds the row no longer pending: 0 rows, Conflict.
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
        .bind(proposal.id)
        .bind(proposal.status.as_str())
        .bind(decided_by.as_str())
        .bind(micros(decided_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM change_proposals WHERE id = $1)")
                    .bind(proposal.id)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(if found {
                StoreError::Conflict("the proposal was decided already".into())
            } else {
                StoreError::NotFound("change proposal".into())
            });
        }
        Ok(())
    }

    async fn proposals(
        &mut self,
        status: Option<ProposalStatus>,
    ) -> StoreResult<Vec<ChangeProposal>> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, decided_at \
             FROM change_proposals",
        );
        if let Some(status) = status {
            query.push(" WHERE status = ").push_bind(status.as_str());
        }
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
        .bind(limit.id)
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
        .bind(id)
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
        .bind(limit.id)
        .bind(limit.status.as_str())
        .bind(decided_by.as_str())
        .bind(micros(decided_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM limit_versions WHERE id = $1)")
                    .bind(limit.id)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(if found {
                StoreError::Conflict("the limit version was decided already".into())
            } else {
                StoreError::NotFound("limit version".into())
            });
        }
        Ok(())
    }

    async fn limit_versions(
        &mut self,
        status: Option<LimitStatus>,
        subject: Option<&LimitSubject>,
    ) -> StoreResult<Vec<LimitVersion>> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
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
        let mut query = match subjects {
            // Each subject's latest approved version by one probe of the
            // in-force index, however many versions of other subjects exist.
            Some(subjects) => {
                let subjects: BTreeSet<&LimitSubject> = subjects.iter().collect();
                if subjects.is_empty() {
                    return Ok(Vec::new());
                }
                let kinds: Vec<&str> = subjects.iter().map(|s| s.kind().as_str()).collect();
                let keys: Vec<String> = subjects.iter().map(|s| s.key()).collect();
                let mut query = QueryBuilder::<Postgres>::new(
                    "SELECT l.id, l.subject_kind, l.subject_key, l.version, l.amount_minor, \
                     l.tolerance_percent FROM UNNEST(",
                );
                query
                    .push_bind(kinds)
                    .push("::text[], ")
                    .push_bind(keys)
                    .push(
                        "::text[]) AS s (kind, key) CROSS JOIN LATERAL (SELECT id, \
                         subject_kind, subject_key, version, amount_minor, tolerance_percent \
                         FROM limit_versions WHERE status = 'approved' \
                         AND subject_kind = s.kind AND subject_key = s.key \
                         ORDER BY version DESC LIMIT 1) AS l",
                    );
                query
            }
            None => QueryBuilder::<Postgres>::new(
                "SELECT DISTINCT ON (subject_kind, subject_key) id, subject_kind, subject_key, \
                 version, amount_minor, tolerance_percent FROM limit_versions \
                 WHERE status = 'approved' ORDER BY subject_kind, subject_key, version DESC",
            ),
        };
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        let mut limits = rows
            .iter()
            .map(|row| {
                Ok(Limit {
                    id: get(row, "id")?,
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
        let row = sqlx::query(concat!(
            "SELECT ",
            liquidity_columns!(),
            " FROM liquidity_positions ORDER BY version DESC LIMIT 1"
        ))
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.as_ref().map(liquidity_from_row).transpose()
    }

    /// The position, its committed sum and the claims in one statement: the
    /// sum is what [`Tx::committed_outflows`] computes, since the position's
    /// own time. A claim is live until it lapses by the database's clock,
    /// the one clock every instance shares. Claims for the reader's own case
    /// (a duplicate delivery, a second analyst) are not counted: of the
    /// approvals of one case only one can commit, as a case holds one
    /// reservation.
    async fn liquidity_now(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<Option<LiquidityNow>> {
        let row = match claims {
            InFlightClaims::Ignored => sqlx::query(concat!(
                "SELECT ",
                liquidity_columns!(),
                ", ",
                committed_since_position!(),
                " AS committed, 0::BIGINT AS claimed_earlier, 0::BIGINT AS claimed_later \
                 FROM liquidity_positions AS p ORDER BY version DESC LIMIT 1"
            ))
            .bind(micros(at)),
            InFlightClaims::CountedExcept(own) => sqlx::query(concat!(
                "SELECT ",
                liquidity_columns!(),
                ", ",
                committed_since_position!(),
                " AS committed, k.claimed_earlier, k.claimed_later \
                 FROM liquidity_positions AS p CROSS JOIN LATERAL (SELECT \
                 COALESCE(SUM(c.amount_minor) FILTER (WHERE (c.claimed_at, c.id) < ($3, $2)), \
                 0)::BIGINT AS claimed_earlier, \
                 COALESCE(SUM(c.amount_minor) FILTER (WHERE (c.claimed_at, c.id) > ($3, $2)), \
                 0)::BIGINT AS claimed_later \
                 FROM liquidity_claims AS c WHERE c.lapses_at > statement_timestamp() \
                 AND c.case_id <> $4) AS k \
                 ORDER BY version DESC LIMIT 1"
            ))
            .bind(micros(at))
            .bind(own.id)
            .bind(own.claimed_at)
            .bind(own.case.as_uuid()),
        }
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.map(|row| {
            Ok(LiquidityNow {
                position: liquidity_from_row(&row)?,
                committed: from_minor(get(&row, "committed")?),
                claimed_earlier: from_minor(get(&row, "claimed_earlier")?),
                claimed_later: from_minor(get(&row, "claimed_later")?),
            })
        })
        .transpose()
    }

    /// Deletes the claim with the reservation written beside it; the claim
    /// must still be within its settling window (so no other approval has
    /// stopped counting it) and cover the amount.
    async fn settle_liquidity_claim(
        &mut self,
        claim: Option<&LiquidityClaim>,
        amount: Decimal,
    ) -> StoreResult<()> {
        let Some(claim) = claim else {
            return Err(StoreError::Conflict(
                "the approval holds no liquidity claim, so other approvals did not count it".into(),
            ));
        };
        let settled = sqlx::query(
            "DELETE FROM liquidity_claims WHERE id = $1 AND case_id = $2 \
             AND amount_minor >= $3 AND settle_by > statement_timestamp()",
        )
        .bind(claim.id)
        .bind(claim.case.as_uuid())
        .bind(to_minor(amount)?)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?
        .rows_affected();
        if settled == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(
                "the approval's liquidity claim lapsed or no longer covers the amount".into(),
            ))
        }
    }

    /// Four parts: the borrowers in scope, their reservation sums, their
    /// imported balances and their group at `at` (the latest membership
    /// covering `at`, should the history overlap). For named borrowers (a
    /// vote's group) each part is an index probe per borrower; for many
    /// (a sector, everyone) the parts are set-based and joined once.
    async fn exposures(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerExposure>> {
        if let ExposureScope::Borrowers(ids) = scope {
            let rows = sqlx::query(
                "SELECT b.id, b.country, b.sector, b.institution, \
                 (SELECT m.group_id FROM group_memberships AS m WHERE m.borrower_id = b.id \
                 AND m.valid_from <= $2 AND (m.valid_to IS NULL OR m.valid_to > $2) \
                 ORDER BY m.valid_from DESC LIMIT 1) AS group_id, \
                 r.reserved, r.consumed, \
                 (SELECT COALESCE(SUM(i.amount_minor), 0)::BIGINT FROM imported_balances AS i \
                 WHERE i.borrower_id = b.id) AS imported \
                 FROM borrowers AS b CROSS JOIN LATERAL (SELECT \
                 COALESCE(SUM(r.amount_minor) FILTER (WHERE r.status = 'active' \
                 AND r.expires_at > $2), 0)::BIGINT AS reserved, \
                 COALESCE(SUM(r.amount_minor) FILTER (WHERE r.status = 'consumed'), 0)::BIGINT \
                 AS consumed \
                 FROM reservations AS r WHERE r.borrower_id = b.id \
                 AND r.status IN ('active', 'consumed')) AS r \
                 WHERE b.id = ANY($1) ORDER BY b.id",
            )
            .bind(uuids(ids))
            .bind(micros(at))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
            return rows.iter().map(exposure_from_row).collect();
        }
        if matches!(scope, ExposureScope::Borrowers(ids) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        let at = micros(at);
        let mut query = QueryBuilder::<Postgres>::new(
            "WITH scope AS (SELECT b.id, b.country, b.sector, b.institution \
             FROM borrowers AS b WHERE ",
        );
        push_scope(&mut query, scope)?;
        query
            .push(
                "), reserved AS (SELECT r.borrower_id, \
                 SUM(CASE WHEN r.status = 'active' AND r.expires_at > ",
            )
            .push_bind(at)
            .push(
                " THEN r.amount_minor ELSE 0 END)::BIGINT AS reserved, \
                 SUM(CASE WHEN r.status = 'consumed' THEN r.amount_minor ELSE 0 END)::BIGINT \
                 AS consumed \
                 FROM reservations AS r JOIN scope AS s ON s.id = r.borrower_id \
                 WHERE r.status IN ('active', 'consumed') GROUP BY r.borrower_id), \
                 imported AS (SELECT i.borrower_id, SUM(i.amount_minor)::BIGINT AS imported \
                 FROM imported_balances AS i JOIN scope AS s ON s.id = i.borrower_id \
                 GROUP BY i.borrower_id), \
                 membership AS (SELECT borrower_id, group_id FROM (SELECT m.borrower_id, \
                 m.group_id, ROW_NUMBER() OVER (PARTITION BY m.borrower_id \
                 ORDER BY m.valid_from DESC) AS n FROM group_memberships AS m \
                 JOIN scope AS s ON s.id = m.borrower_id WHERE m.valid_from <= ",
            )
            .push_bind(at)
            .push(" AND (m.valid_to IS NULL OR m.valid_to > ")
            .push_bind(at)
            .push(
                ")) AS latest WHERE n = 1) \
                 SELECT s.id, s.country, s.sector, s.institution, g.group_id, \
                 COALESCE(r.reserved, 0) AS reserved, COALESCE(r.consumed, 0) AS consumed, \
                 COALESCE(i.imported, 0) AS imported \
                 FROM scope AS s LEFT JOIN reserved AS r ON r.borrower_id = s.id \
                 LEFT JOIN imported AS i ON i.borrower_id = s.id \
                 LEFT JOIN membership AS g ON g.borrower_id = s.id ORDER BY s.id",
            );
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        rows.iter().map(exposure_from_row).collect()
    }

    async fn exposure_total(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Decimal> {
        if matches!(scope, ExposureScope::Borrowers(ids) if ids.is_empty()) {
            return Ok(Decimal::ZERO);
        }
        // Two sums, each exact (BIGINT; out of range is an error), added in Rust.
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT (SELECT COALESCE(SUM(r.amount_minor), 0)::BIGINT FROM reservations AS r \
             JOIN borrowers AS b ON b.id = r.borrower_id WHERE ",
        );
        push_scope(&mut query, scope)?;
        query
            .push(" AND ((r.status = 'active' AND r.expires_at > ")
            .push_bind(micros(at))
            .push(
                ") OR r.status = 'consumed')) AS reservations, \
                 (SELECT COALESCE(SUM(i.amount_minor), 0)::BIGINT FROM imported_balances AS i \
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
        .bind(reservation.case_id.as_uuid())
        .bind(reservation.borrower.as_uuid())
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
        .bind(case.as_uuid())
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
        let case_id = reservation.case_id.as_uuid();
        let done = sqlx::query(
            "UPDATE reservations SET status = $2, closed_at = $3, closed_by = $4 \
             WHERE case_id = $1 AND status = 'active'",
        )
        .bind(case_id)
        .bind(reservation.status.as_str())
        .bind(micros(closed_at))
        .bind(reservation.closed_by.as_ref().map(StaffId::as_str))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reservations WHERE case_id = $1)")
                    .bind(case_id)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(if found {
                StoreError::Conflict("the reservation is not active any more".into())
            } else {
                StoreError::NotFound("reservation".into())
            });
        }
        Ok(())
    }

    async fn due_reservations(&mut self, at: Timestamp) -> StoreResult<Vec<Reservation>> {
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
            "SELECT COALESCE(SUM(amount_minor), 0)::BIGINT FROM reservations \
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

    /// A concurrent import of the same record waits for the row lock (the
    /// insert attempt, then `FOR UPDATE`), so the comparison sees the latest
    /// committed version.
    async fn import_balance(&mut self, balance: &ImportedBalance) -> StoreResult<ImportEffect> {
        let amount = to_minor(balance.amount)?;
        let as_of = micros(balance.as_of);
        let imported_at = micros(chrono::Utc::now());
        let borrower_id = balance.borrower.as_uuid();
        let inserted = sqlx::query(
            "INSERT INTO imported_balances (source_id, borrower_id, amount_minor, as_of, \
             imported_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_id) DO NOTHING",
        )
        .bind(&balance.source_id)
        .bind(borrower_id)
        .bind(amount)
        .bind(as_of)
        .bind(imported_at)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if inserted.rows_affected() > 0 {
            return Ok(ImportEffect::Inserted);
        }
        let (stored_borrower, stored_amount, stored_as_of): (Uuid, i64, Timestamp) =
            sqlx::query_as(
                "SELECT borrower_id, amount_minor, as_of FROM imported_balances \
                 WHERE source_id = $1 FOR UPDATE",
            )
            .bind(&balance.source_id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        if stored_borrower == borrower_id && stored_amount == amount && stored_as_of == as_of {
            return Ok(ImportEffect::Unchanged);
        }
        sqlx::query(
            "UPDATE imported_balances SET borrower_id = $2, amount_minor = $3, as_of = $4, \
             imported_at = $5 WHERE source_id = $1",
        )
        .bind(&balance.source_id)
        .bind(borrower_id)
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
        .bind(breach.id)
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
        .bind(id)
        .bind(micros(at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        if done.rows_affected() == 0 {
            let found: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM breaches WHERE id = $1)")
                    .bind(id)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
            return Err(if found {
                StoreError::Conflict("the breach is resolved already".into())
            } else {
                StoreError::NotFound("breach".into())
            });
        }
        Ok(())
    }

    async fn breaches(&mut self, filter: &BreachFilter) -> StoreResult<Vec<Breach>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
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
        .bind(borrower.id.as_uuid())
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
        .bind(id.as_uuid())
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
        .bind(case.id.as_uuid())
        .bind(file.borrower_id.as_uuid())
        .bind(file.amount.minor_units())
        .bind(file.amount.currency_code())
        .bind(&file.product)
        .bind(term_months(file.term_months)?)
        .bind(&file.purpose)
        .bind(case.status.as_str())
        .bind(case.version)
        .bind(case.revision)
        .bind(case.originator.as_str())
        .bind(case.return_reason.as_deref())
        .bind(micros(case.created_at))
        .bind(micros(case.updated_at))
        .bind(to_json(&case.editors)?)
        .bind(round_to_db(case.round)?)
        .bind(case.escalation_level.map(i32::from))
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

    /// The case, its decision and its votes in one statement: one row per
    /// vote (one row with no vote columns for a case without votes).
    async fn case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>> {
        let rows = sqlx::query(
            "SELECT c.borrower_id, c.amount_minor, c.currency, c.product, c.term_months, \
             c.purpose, c.status, c.version, c.revision, c.originator, c.return_reason, \
             c.created_at, c.updated_at, c.editors, c.round AS case_round, c.escalation_level, \
             c.related_party, c.board_resolution, \
             (SELECT decision_json FROM decisions WHERE case_id = c.id) AS decision_json, \
             v.ordinal, v.stage, v.voter_id, v.unit_id, v.side, v.decision, v.rationale, \
             v.file_version, v.content_hash, v.cast_at, v.checks, v.round, v.required_level, \
             v.competence_level, v.left_market_at \
             FROM cases AS c LEFT JOIN votes AS v ON v.case_id = c.id \
             WHERE c.id = $1 ORDER BY v.ordinal",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let term_months: i32 = get(row, "term_months")?;
        let file = CaseFile {
            borrower_id: BorrowerId::from_uuid(get(row, "borrower_id")?),
            amount: money(get(row, "amount_minor")?, &get::<String>(row, "currency")?)?,
            product: get(row, "product")?,
            term_months: u32::try_from(term_months).map_err(|_| corrupt("term out of range"))?,
            purpose: get(row, "purpose")?,
        };
        let status: CaseStatus = parse_text(&get::<String>(row, "status")?, "case status")?;
        let originator: StaffId = parse_text(&get::<String>(row, "originator")?, "staff id")?;
        let editors = serde_json::from_str::<BTreeSet<StaffId>>(&get::<String>(row, "editors")?)
            .map_err(|_| corrupt("the stored editors of a case are not valid"))?;
        let board_resolution = get::<Option<String>>(row, "board_resolution")?
            .map(|json| {
                serde_json::from_str::<BoardResolution>(&json)
                    .map_err(|_| corrupt("a stored board resolution is not valid"))
            })
            .transpose()?;

        let mut votes = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(ordinal) = get::<Option<i32>>(row, "ordinal")? else {
                continue;
            };
            if ordinal != to_i32(votes.len())? {
                return Err(corrupt("the votes of a case have a gap"));
            }
            votes.push(vote_from_row(row)?);
        }

        let decision = get::<Option<String>>(row, "decision_json")?
            .map(|json| {
                serde_json::from_str::<Decision>(&json)
                    .map_err(|_| corrupt("a stored decision is not valid"))
            })
            .transpose()?;

        Ok(Some(CreditCase {
            id,
            file,
            status,
            version: get(row, "version")?,
            revision: get(row, "revision")?,
            originator,
            editors,
            round: round(get(row, "case_round")?)?,
            escalation_level: get::<Option<i32>>(row, "escalation_level")?
                .map(level)
                .transpose()?,
            related_party: get(row, "related_party")?,
            board_resolution,
            votes,
            decision,
            return_reason: get(row, "return_reason")?,
            created_at: get(row, "created_at")?,
            updated_at: get(row, "updated_at")?,
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
        .bind(case.id.as_uuid())
        .bind(expected_revision)
        .bind(file.amount.minor_units())
        .bind(file.amount.currency_code())
        .bind(&file.product)
        .bind(term_months(file.term_months)?)
        .bind(&file.purpose)
        .bind(case.status.as_str())
        .bind(case.version)
        .bind(case.revision)
        .bind(case.return_reason.as_deref())
        .bind(micros(case.updated_at))
        .bind(to_json(&case.editors)?)
        .bind(round_to_db(case.round)?)
        .bind(case.escalation_level.map(i32::from))
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

        let (stored, has_decision) = self.stored_votes_and_decision(case.id).await?;
        if case.votes.len() < stored {
            return Err(invariant(
                "votes are append-only: the case has fewer votes than stored",
            ));
        }
        self.insert_votes(case, stored).await?;

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
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT id, borrower_id, amount_minor, currency, status, version, updated_at \
             FROM cases WHERE status = ",
        );
        query.push_bind(status.as_str());
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.as_uuid());
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
                    id: CaseId::from_uuid(get(row, "id")?),
                    borrower_id: BorrowerId::from_uuid(get(row, "borrower_id")?),
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
            let status: i32 = get(&row, "status")?;
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
        .bind(i32::from(response.status))
        .bind(&response.body)
        .bind(micros(response.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a response for this idempotency key exists already"))?;
        Ok(())
    }

    /// Links the event to the chain head. Serialization: the transaction
    /// first takes the chain's advisory lock, held until commit or rollback,
    /// so the next appender (in any process) reads this event as its head.
    /// Kept in this one function so a sequencer can replace it.
    /// Inserts the event without linking it: no lock shared with other
    /// writers, so audited transactions commit concurrently; the sequencer
    /// links it once it is committed (see `sequencer`).
    async fn append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()> {
        if leaf_hash(&event.body) != event.leaf_hash {
            return Err(invariant(
                "the audit event's leaf hash does not match its body",
            ));
        }
        sqlx::query(
            "INSERT INTO audit_entries (event_id, body, leaf_hash, recorded_at, actor, action, \
             outcome, case_id, borrower_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(event.event_id)
        .bind(&event.body)
        .bind(&event.leaf_hash[..])
        .bind(micros(event.recorded_at))
        .bind(event.actor.as_deref())
        .bind(&event.action)
        .bind(&event.outcome)
        .bind(event.case_id.map(|id| id.as_uuid()))
        .bind(event.borrower_id.map(|id| id.as_uuid()))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "an audit event with this id exists already"))?;
        Ok(())
    }

    fn claim_audit_event_id(&mut self) -> Option<Uuid> {
        (!std::mem::replace(&mut self.audit_event_claimed, true)).then_some(self.audit_event_id)
    }

    async fn unaudited_rows(&mut self, limit: u32) -> StoreResult<Vec<UnauditedRow>> {
        let rows: Vec<(String, String, Option<Uuid>)> = sqlx::query_as(unaudited_rows_sql!())
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|(table, key, audit_event_id)| UnauditedRow {
                table,
                key,
                audit_event_id,
            })
            .collect())
    }

    async fn audit_events(&mut self, filter: &AuditFilter) -> StoreResult<Vec<StoredAuditEvent>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT seq, event_id, body, leaf_hash, chain_hash, recorded_at, actor, action, \
             outcome, case_id, borrower_id FROM audit_events WHERE 1 = 1",
        );
        if let Some(case_id) = filter.case_id {
            query.push(" AND case_id = ").push_bind(case_id.as_uuid());
        }
        if let Some(borrower_id) = filter.borrower_id {
            query
                .push(" AND borrower_id = ")
                .push_bind(borrower_id.as_uuid());
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

    async fn lock_risk(&mut self) -> StoreResult<()> {
        self.advisory_lock("SELECT pg_advisory_xact_lock($1)", RISK_LOCK_KEY)
            .await
    }

    async fn lock_risk_shared(&mut self) -> StoreResult<()> {
        self.advisory_lock("SELECT pg_advisory_xact_lock_shared($1)", RISK_LOCK_KEY)
            .await
    }

    async fn lock_risk_subjects(&mut self, subjects: &[String]) -> StoreResult<()> {
        let mut keys: Vec<i64> = subjects.iter().map(|s| subject_lock_key(s)).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            self.advisory_lock("SELECT pg_advisory_xact_lock($1)", key)
                .await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(map_sqlx_error)
    }
}

/// Every rule-set version, ascending, in one statement (on a transaction
/// or, for a read on its own, the pool).
pub(crate) async fn fetch_rule_sets<'e, E>(executor: E) -> StoreResult<Vec<RuleSet>>
where
    E: sqlx::PgExecutor<'e>,
{
    let rows: Vec<(i64, Timestamp, String)> =
        sqlx::query_as("SELECT version, valid_from, parameters FROM rule_sets ORDER BY version")
            .fetch_all(executor)
            .await
            .map_err(map_sqlx_error)?;
    rows.iter()
        .map(|(version, valid_from, parameters)| stored_rule_set(*version, *valid_from, parameters))
        .collect()
}

/// A row of an exposure query: id, group_id, sector, country, institution
/// and the reserved, consumed and imported sums.
fn exposure_from_row(row: &PgRow) -> StoreResult<BorrowerExposure> {
    Ok(BorrowerExposure {
        borrower: BorrowerId::from_uuid(get(row, "id")?),
        group: get(row, "group_id")?,
        sector: get(row, "sector")?,
        country: get(row, "country")?,
        institution: get(row, "institution")?,
        reserved: from_minor(get(row, "reserved")?),
        outstanding: sum_minor(&[get(row, "consumed")?, get(row, "imported")?])?,
    })
}

/// Claims `case`'s amount (see [`creditops_store::Store::claim_liquidity`])
/// in one autocommitted statement, which also drops claims that lapsed.
pub(crate) async fn claim_liquidity(
    pool: &sqlx::PgPool,
    case: CaseId,
    currency: &str,
    lifetime: std::time::Duration,
) -> StoreResult<Option<LiquidityClaim>> {
    let lifetime_micros = i64::try_from(lifetime.as_micros())
        .map_err(|_| StoreError::Corrupt("the claim lifetime is out of range".into()))?;
    let row: Option<(Uuid, i64, Timestamp)> = sqlx::query_as(
        "WITH lapsed AS (DELETE FROM liquidity_claims WHERE lapses_at <= statement_timestamp()) \
         INSERT INTO liquidity_claims (id, case_id, amount_minor, claimed_at, settle_by, \
         lapses_at) \
         SELECT $1, c.id, c.amount_minor, statement_timestamp(), \
         statement_timestamp() + $4 * INTERVAL '1 microsecond', \
         statement_timestamp() + 2 * $4 * INTERVAL '1 microsecond' \
         FROM cases AS c WHERE c.id = $2 AND c.currency = $3 \
         RETURNING id, amount_minor, claimed_at",
    )
    .bind(Uuid::new_v4())
    .bind(case.as_uuid())
    .bind(currency)
    .bind(lifetime_micros)
    .fetch_optional(pool)
    .await
    .map_err(map_sqlx_error)?;
    Ok(row.map(|(id, minor, claimed_at)| LiquidityClaim {
        id,
        case,
        amount: from_minor(minor),
        claimed_at,
    }))
}

/// Withdraws a claim; nothing happens if it was settled or lapsed already.
pub(crate) async fn release_liquidity_claim(
    pool: &sqlx::PgPool,
    claim: &LiquidityClaim,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM liquidity_claims WHERE id = $1")
        .bind(claim.id)
        .execute(pool)
        .await
        .map_err(map_sqlx_error)?;
    Ok(())
}

/// The staff member `id` with every assignment, in one statement (so one
/// snapshot without a transaction around it): every request reads it to
/// authenticate its caller. The assignment lists come as JSON in their
/// stored order and are read with the domain types' own serde form.
pub(crate) async fn fetch_staff_member<'e, E>(
    executor: E,
    id: &StaffId,
) -> StoreResult<Option<StaffMember>>
where
    E: sqlx::PgExecutor<'e>,
{
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT s.status, \
         (SELECT COALESCE(json_agg(json_build_object('unit_id', unit_id, 'side', side, \
           'valid_from', valid_from, 'valid_to', valid_to) ORDER BY position), '[]')::text \
           FROM unit_assignments WHERE staff_id = s.id), \
         (SELECT COALESCE(json_agg(json_build_object('role', role, \
           'valid_from', valid_from, 'valid_to', valid_to) ORDER BY position), '[]')::text \
           FROM role_assignments WHERE staff_id = s.id), \
         (SELECT COALESCE(json_agg(json_build_object('side', side, 'level', level, \
           'valid_from', valid_from, 'valid_to', valid_to) ORDER BY position), '[]')::text \
           FROM competence_grants WHERE staff_id = s.id) \
         FROM staff AS s WHERE s.id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(executor)
    .await
    .map_err(map_sqlx_error)?;
    let Some((status, units, roles, competences)) = row else {
        return Ok(None);
    };
    Ok(Some(StaffMember {
        id: id.clone(),
        status: parse_text(&status, "staff status")?,
        units: from_json(&units, "unit assignments")?,
        roles: from_json(&roles, "role assignments")?,
        competences: from_json(&competences, "competence grants")?,
    }))
}

/// The advisory lock key of risk decisions ("crdtrisk" in ASCII).
const RISK_LOCK_KEY: i64 = 0x6372_6474_7269_736b;

/// The advisory lock key of a risk subject: the first 8 bytes of its
/// SHA-256, the same in every process. Two subjects sharing a key only
/// wait for each other, which is safe.
fn subject_lock_key(subject: &str) -> i64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, subject.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

fn vote_from_row(row: &PgRow) -> StoreResult<Vote> {
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

fn audit_event_from_row(row: &PgRow) -> StoreResult<StoredAuditEvent> {
    let case_id: Option<Uuid> = get(row, "case_id")?;
    let borrower_id: Option<Uuid> = get(row, "borrower_id")?;
    Ok(StoredAuditEvent {
        seq: get(row, "seq")?,
        event_id: get(row, "event_id")?,
        body: get(row, "body")?,
        leaf_hash: get(row, "leaf_hash")?,
        chain_hash: get(row, "chain_hash")?,
        recorded_at: get::<Timestamp>(row, "recorded_at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        outcome: get(row, "outcome")?,
        case_id: case_id.map(CaseId::from_uuid),
        borrower_id: borrower_id.map(BorrowerId::from_uuid),
    })
}

fn get<T>(row: &PgRow, column: &str) -> StoreResult<T>
where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(map_sqlx_error)
}

/// Parses enum-like stored text (status, side, role, ids...). The stored text
/// is not quoted into the error: it could be anything.
fn parse_text<T: FromStr>(text: &str, what: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| corrupt(&format!("a stored {what} is not valid")))
}

fn liquidity_from_row(row: &PgRow) -> StoreResult<LiquidityPosition> {
    Ok(LiquidityPosition {
        version: get(row, "version")?,
        hqla: from_minor(get(row, "hqla_minor")?),
        outflows_30d: from_minor(get(row, "outflows_minor")?),
        inflows_30d: from_minor(get(row, "inflows_minor")?),
        floor_percent: parse_text(&get::<String>(row, "floor_percent")?, "liquidity floor")?,
        recorded_by: parse_text(&get::<String>(row, "recorded_by")?, "staff id")?,
        recorded_at: get(row, "recorded_at")?,
    })
}

/// Parses stored JSON into `T`; like [`parse_text`], the text stays out of
/// the error.
fn from_json<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|_| corrupt(&format!("stored {what} are not valid")))
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

/// Ids as one bound `uuid[]` value for `= ANY($n)`.
fn uuids(ids: &[BorrowerId]) -> Vec<Uuid> {
    ids.iter().map(BorrowerId::as_uuid).collect()
}

fn proposal_from_row(row: &PgRow) -> StoreResult<ChangeProposal> {
    let payload: String = get(row, "payload")?;
    Ok(ChangeProposal {
        id: get(row, "id")?,
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
fn level(value: i32) -> StoreResult<u8> {
    u8::try_from(value).map_err(|_| corrupt("a stored competence level is out of range"))
}

fn round(value: i32) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt("a stored voting round is out of range"))
}

fn round_to_db(round: u32) -> StoreResult<i32> {
    i32::try_from(round).map_err(|_| invariant("a voting round does not fit a database integer"))
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(Box::new(e)))
}

fn to_i32(n: usize) -> StoreResult<i32> {
    i32::try_from(n).map_err(|_| invariant("a list index does not fit a database integer"))
}

fn term_months(months: u32) -> StoreResult<i32> {
    i32::try_from(months).map_err(|_| invariant("term_months does not fit a database integer"))
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

fn subject_from_row(row: &PgRow) -> StoreResult<LimitSubject> {
    let kind: LimitKind = parse_text(&get::<String>(row, "subject_kind")?, "limit subject kind")?;
    LimitSubject::parse(kind, &get::<String>(row, "subject_key")?)
        .map_err(|_| corrupt("a stored limit subject is not valid"))
}

fn limit_version_from_row(row: &PgRow) -> StoreResult<LimitVersion> {
    Ok(LimitVersion {
        id: get(row, "id")?,
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

fn reservation_from_row(row: &PgRow) -> StoreResult<Reservation> {
    Ok(Reservation {
        case_id: CaseId::from_uuid(get(row, "case_id")?),
        borrower: BorrowerId::from_uuid(get(row, "borrower_id")?),
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

fn breach_from_row(row: &PgRow) -> StoreResult<Breach> {
    let severity = match get::<String>(row, "severity")?.as_str() {
        "soft" => Severity::Soft,
        "hard" => Severity::Hard,
        _ => return Err(corrupt("a stored breach severity is not valid")),
    };
    Ok(Breach {
        id: get(row, "id")?,
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
fn push_scope(query: &mut QueryBuilder<Postgres>, scope: &ExposureScope) -> StoreResult<()> {
    match scope {
        ExposureScope::All => {
            query.push("1 = 1");
        }
        ExposureScope::Borrowers(ids) => {
            query.push("b.id = ANY(").push_bind(uuids(ids)).push(")");
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
