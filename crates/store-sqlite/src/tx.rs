//! One SQLite transaction implementing [`Tx`].
//!
//! UUIDs are stored as lower-case hyphenated TEXT (bound as strings, never as
//! sqlx's 16-byte BLOB encoding), timestamps with sqlx's chrono encoding.

use crate::error::map_sqlx_error;
use async_trait::async_trait;
use chrono::SubsecRound;
use creditops_audit::{chain_genesis, chain_next, hash_from_slice, leaf_hash};
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseStatus, CreditCase, Decision, Money, Role, RoleAssignment,
    RuleCheck, Side, StaffId, StaffMember, StaffStatus, Timestamp, UnitAssignment, UnitId, Vote,
    Voter,
};
use creditops_store::{
    AuditFilter, Borrower, CaseSummary, IdempotencyScope, NewAuditEvent, StoreError, StoreResult,
    StoredAuditEvent, StoredResponse, Tx,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    origin: Arc<str>,
}

impl SqliteTx {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>, origin: Arc<str>) -> Self {
        Self { tx, origin }
    }

    /// Inserts `case.votes[from..]` with their list index as ordinal.
    async fn insert_votes(&mut self, case: &CreditCase, from: usize) -> StoreResult<()> {
        let case_id = case.id.to_string();
        for (ordinal, vote) in case.votes.iter().enumerate().skip(from) {
            let checks = to_json(&vote.checks)?;
            sqlx::query(
                "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, decision, \
                 rationale, file_version, content_hash, cast_at, checks) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
             decision_json) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(case_id.to_string())
        .bind(decision.outcome.as_str())
        .bind(micros(decision.decided_at))
        .bind(decision.file_version)
        .bind(&decision.content_hash)
        .bind(json)
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
            sqlx::query(
                "INSERT INTO role_assignments (staff_id, position, role, valid_from, valid_to) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(member.id.as_str())
            .bind(to_i64(position)?)
            .bind(role.role.as_str())
            .bind(micros(role.valid_from))
            .bind(role.valid_to.map(micros))
            .execute(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
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

        Ok(Some(StaffMember {
            id: id.clone(),
            status,
            units,
            roles,
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

    async fn insert_borrower(&mut self, borrower: &Borrower) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO borrowers (id, name, country, sector, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(borrower.id.to_string())
        .bind(&borrower.name)
        .bind(&borrower.country)
        .bind(&borrower.sector)
        .bind(borrower.created_by.as_str())
        .bind(micros(borrower.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_as(e, "a borrower with this id exists already"))?;
        Ok(())
    }

    async fn borrower(&mut self, id: BorrowerId) -> StoreResult<Option<Borrower>> {
        let row = sqlx::query(
            "SELECT name, country, sector, created_by, created_at FROM borrowers WHERE id = $1",
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
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
             version, revision, originator, return_reason, created_at, updated_at \
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

        let vote_rows = sqlx::query(
            "SELECT ordinal, stage, voter_id, unit_id, side, decision, rationale, file_version, \
             content_hash, cast_at, checks FROM votes WHERE case_id = $1 ORDER BY ordinal",
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
             updated_at = $12 WHERE id = $1 AND revision = $2",
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
    async fn append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<i64> {
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
        Ok(seq)
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
        },
        decision: parse_text(&get::<String>(row, "decision")?, "vote decision")?,
        rationale: get(row, "rationale")?,
        file_version: get(row, "file_version")?,
        content_hash: get(row, "content_hash")?,
        cast_at: get(row, "cast_at")?,
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
    }
    decision
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
