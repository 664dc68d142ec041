//! One SQLite transaction implementing the store's area traits.
//!
//! The statements both backends share come from `creditops_store_sql`; this
//! module gives them SQLite's dialect and keeps what SQLite does its own
//! way. UUIDs are stored as lower-case hyphenated TEXT (bound as strings,
//! never as sqlx's 16-byte BLOB encoding), timestamps with sqlx's chrono
//! encoding; their text comparison is chronological, as every stored and
//! bound timestamp has the same RFC 3339 UTC shape.

use crate::error::map_sqlx_error;
use async_trait::async_trait;
use creditops_audit::merkle::node_hash;
use creditops_audit::{Hash, NodePosition, chain_genesis, chain_next, hash_from_slice, leaf_hash};
use creditops_store_sql::prelude::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, Transaction};
use std::sync::Arc;

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
         UNION ALL SELECT 'credit_documents', x.id, x.audit_event_id FROM credit_documents x \
           WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = x.audit_event_id) \
         UNION ALL SELECT 'borrower_financials', f.borrower_id || '/' || f.reporting_date, \
           f.audit_event_id FROM borrower_financials f \
           WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = f.audit_event_id) \
         ) r ORDER BY t, k LIMIT $1"
    };
}

type Db = Sqlite;
type DbRow = SqliteRow;
/// Ids are TEXT columns.
type DbId = String;
/// A list of ids is one JSON array, expanded by `json_each`.
type DbIds = String;
/// `INTEGER` columns are 64-bit.
type DbInt = i64;

fn id_arg(id: impl StoredId) -> DbId {
    id.uuid().to_string()
}

fn id_of(stored: DbId) -> StoreResult<Uuid> {
    Uuid::parse_str(&stored).map_err(|_| corrupt("a stored id is not a UUID"))
}

fn ids_arg(ids: &[BorrowerId]) -> StoreResult<DbIds> {
    to_json(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
}

#[allow(clippy::unnecessary_wraps)] // the dialect's signature: PostgreSQL narrows
fn int_arg(n: i64) -> StoreResult<DbInt> {
    Ok(n)
}

fn get<T>(row: &SqliteRow, column: &str) -> StoreResult<T>
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(map_sqlx_error)
}

creditops_store_sql::sql_rows!();
creditops_store_sql::staff_tx!(SqliteTx);
creditops_store_sql::borrower_tx!(SqliteTx, in_ids = "IN (SELECT value FROM json_each($1))");
creditops_store_sql::admin_tx!(SqliteTx);
creditops_store_sql::limit_tx!(SqliteTx);
creditops_store_sql::risk_tx!(SqliteTx);
// Writers are serial: nobody imports the same record in between.
creditops_store_sql::exposure_tx!(SqliteTx, lock_row = "");
creditops_store_sql::breach_tx!(SqliteTx);
creditops_store_sql::case_tx!(SqliteTx, votes_apart = true);
creditops_store_sql::collateral_tx!(SqliteTx);
creditops_store_sql::granting_tx!(
    SqliteTx,
    new_credit = creditops_store_sql::new_credit_sql!(),
    version_apart = true
);
creditops_store_sql::monitoring_tx!(SqliteTx, in_ids = "IN (SELECT value FROM json_each($1))");
creditops_store_sql::idempotency_tx!(SqliteTx);
creditops_store_sql::session_tx!(SqliteTx);
creditops_store_sql::credit_file_tx!(SqliteTx);
creditops_store_sql::audit_tx!(SqliteTx);
creditops_store_sql::vote_tx!(SqliteTx, in_ids = "IN (SELECT value FROM json_each($1))");

pub(crate) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    origin: Arc<str>,
    /// The id of this transaction's first audit event; every business row
    /// of the credit path it writes carries it (reconciliation).
    audit_event_id: Uuid,
    audit_event_claimed: bool,
    /// The rule sets as this transaction first read them (see
    /// `creditops_store_sql::admin_tx`).
    rule_sets: Option<Vec<RuleSet>>,
    /// The store's rule-set cache (see `creditops_store_sql::admin_tx`).
    rule_set_cache: Option<Arc<RuleSetCache>>,
}

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(map_sqlx_error)
    }
}

impl SqliteTx {
    pub(crate) fn new(
        tx: Transaction<'static, Sqlite>,
        origin: Arc<str>,
        rule_set_cache: Arc<RuleSetCache>,
    ) -> Self {
        Self {
            tx,
            origin,
            audit_event_id: Uuid::now_v7(),
            audit_event_claimed: false,
            rule_sets: None,
            rule_set_cache: Some(rule_set_cache),
        }
    }

    /// The staff member `id` with the store's cached rule sets where they
    /// are the committed ones.
    pub(crate) async fn staff_lookup(
        &mut self,
        id: &StaffId,
        cache: &RuleSetCache,
    ) -> StoreResult<Option<StaffLookup>> {
        Ok(self
            .staff_member_counting_rule_sets(id)
            .await?
            .map(|(member, rule_set_count)| StaffLookup {
                member,
                rule_sets: cache.matching(rule_set_count),
                authority: None,
            }))
    }

    fn audit_id(&self) -> DbId {
        id_arg(self.audit_event_id)
    }

    /// NotFound unless the staff member exists. Writers are serial, so
    /// nobody else appends to the person's history in between.
    pub(crate) async fn lock_staff(&mut self, id: &StaffId) -> StoreResult<()> {
        let found: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM staff WHERE id = $1)")
            .bind(id.as_str())
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NotFound("staff member".into()))
        }
    }

    /// Writers are serial already: membership changes cannot interleave.
    pub(crate) async fn lock_membership(&mut self, _borrower: &DbId) -> StoreResult<()> {
        Ok(())
    }

    /// The two reads of [`BorrowerTx::vote_context`], one after the other.
    pub(crate) async fn dialect_vote_context(
        &mut self,
        borrowers: &[BorrowerId],
    ) -> StoreResult<VoteContext> {
        Ok(VoteContext {
            relationship_managers: self.relationship_managers(borrowers).await?,
            related_parties: self.related_parties(borrowers).await?,
        })
    }

    // Write transactions run inside BEGIN IMMEDIATE on one writer: they are
    // serial already, so the risk locks have nothing to add.
    pub(crate) async fn dialect_lock_risk(&mut self) -> StoreResult<()> {
        Ok(())
    }

    pub(crate) async fn dialect_lock_risk_shared(&mut self) -> StoreResult<()> {
        Ok(())
    }

    pub(crate) async fn dialect_lock_risk_subjects(
        &mut self,
        _subjects: &[String],
    ) -> StoreResult<()> {
        Ok(())
    }

    /// The latest position and what was committed since; SQLite issues no
    /// liquidity claims (its writers are serial, so the approval's own check
    /// is exact), so there are none to count.
    pub(crate) async fn dialect_liquidity_now(
        &mut self,
        at: Timestamp,
        _claims: InFlightClaims<'_>,
    ) -> StoreResult<Option<LiquidityNow>> {
        let Some(position) = self.latest_liquidity().await? else {
            return Ok(None);
        };
        let committed = self.committed_outflows(position.recorded_at, at).await?;
        Ok(Some(LiquidityNow {
            position,
            committed,
            claimed_earlier: Decimal::ZERO,
            claimed_later: Decimal::ZERO,
        }))
    }

    /// No claims are issued here: settling none is fine, settling one is a
    /// bug of the caller.
    /// Writers are serial: two reads of the same snapshot.
    pub(crate) async fn dialect_capital_and_liquidity(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<(Option<Capital>, Option<LiquidityNow>)> {
        let capital = RiskTx::latest_capital(self).await?;
        Ok((capital, RiskTx::liquidity_now(self, at, claims).await?))
    }

    /// No lookups are kept here: nothing to drop.
    pub(crate) fn dialect_directory_written(&mut self) {}

    /// No authority version is kept here (each request reads its actor), so
    /// none can be checked: refused, as the trait's default.
    pub(crate) fn dialect_expect_authority(&mut self, _version: u64) -> StoreResult<()> {
        Err(StoreError::Conflict(
            creditops_store::AUTHORITY_UNVERSIONED.into(),
        ))
    }

    /// Writers are serial: the exposures, then capital and liquidity, of
    /// the same snapshot.
    pub(crate) async fn dialect_gate_figures(
        &mut self,
        borrowers: &[BorrowerId],
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<GateFigures> {
        let exposures = self
            .dialect_exposures(&ExposureScope::Borrowers(borrowers.to_vec()), at)
            .await?;
        let (capital, liquidity) = self.dialect_capital_and_liquidity(at, claims).await?;
        Ok(GateFigures {
            exposures,
            capital,
            liquidity,
        })
    }

    /// Writers are serial: the reservation, then the (absent) claim.
    pub(crate) async fn dialect_reserve_with_claim(
        &mut self,
        reservation: &Reservation,
        claim: Option<&LiquidityClaim>,
    ) -> StoreResult<()> {
        ExposureTx::insert_reservation(self, reservation).await?;
        RiskTx::settle_liquidity_claim(self, claim, reservation.amount).await
    }

    pub(crate) async fn dialect_settle_liquidity_claim(
        &mut self,
        claim: Option<&LiquidityClaim>,
        _amount: Decimal,
    ) -> StoreResult<()> {
        match claim {
            None => Ok(()),
            Some(_) => Err(StoreError::Corrupt(
                "this backend issues no liquidity claims".into(),
            )),
        }
    }

    /// A person with their unit, role and competence histories, each in
    /// stored order.
    pub(crate) async fn dialect_staff_member(
        &mut self,
        id: &StaffId,
    ) -> StoreResult<Option<StaffMember>> {
        Ok(self
            .staff_member_counting_rule_sets(id)
            .await?
            .map(|(member, _)| member))
    }

    /// The staff member `id` and, in the same snapshot (its first
    /// statement), the number of rule sets: whether the store's cached rule
    /// sets are the committed ones (see `creditops_store::RuleSetCache`).
    pub(crate) async fn staff_member_counting_rule_sets(
        &mut self,
        id: &StaffId,
    ) -> StoreResult<Option<(StaffMember, u64)>> {
        // One statement: the person's row (with the count of rule sets)
        // and each history, told apart by `part`, each in its stored order.
        let rows = sqlx::query(
            "SELECT 'staff' AS part, status AS a, NULL AS b, NULL AS valid_from, \
             NULL AS valid_to, (SELECT COUNT(*) FROM rule_sets) AS n FROM staff WHERE id = $1 \
             UNION ALL SELECT 'unit', unit_id, side, valid_from, valid_to, position \
             FROM unit_assignments WHERE staff_id = $1 \
             UNION ALL SELECT 'role', role, NULL, valid_from, valid_to, position \
             FROM role_assignments WHERE staff_id = $1 \
             UNION ALL SELECT 'grant', side, level, valid_from, valid_to, position \
             FROM competence_grants WHERE staff_id = $1 \
             ORDER BY part, n",
        )
        .bind(id.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let mut found = None;
        let (mut units, mut roles, mut competences) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            match get::<String>(row, "part")?.as_str() {
                "staff" => {
                    let status = parse_text(&get::<String>(row, "a")?, "staff status")?;
                    let count = u64::try_from(get::<i64>(row, "n")?)
                        .map_err(|_| corrupt("a negative count of rule sets"))?;
                    found = Some((status, count));
                }
                "unit" => units.push(UnitAssignment {
                    unit_id: parse_text(&get::<String>(row, "a")?, "unit id")?,
                    side: parse_text(&get::<String>(row, "b")?, "side")?,
                    valid_from: get(row, "valid_from")?,
                    valid_to: get(row, "valid_to")?,
                }),
                "role" => roles.push(RoleAssignment {
                    role: parse_text::<Role>(&get::<String>(row, "a")?, "role")?,
                    valid_from: get(row, "valid_from")?,
                    valid_to: get(row, "valid_to")?,
                }),
                "grant" => competences.push(CompetenceGrant {
                    side: parse_text(&get::<String>(row, "a")?, "side")?,
                    level: level(get(row, "b")?)?,
                    valid_from: get(row, "valid_from")?,
                    valid_to: get(row, "valid_to")?,
                }),
                _ => return Err(corrupt("a staff row of no known part")),
            }
        }
        let Some((status, rule_set_count)) = found else {
            return Ok(None);
        };
        let member = StaffMember {
            id: id.clone(),
            status,
            units,
            roles,
            competences,
        };
        Ok(Some((member, rule_set_count)))
    }

    /// Writers are serial: the hold has nothing to add (see
    /// `dialect_lock_risk`).
    pub(crate) async fn dialect_lock_subject_reading_limits(
        &mut self,
        lock: &str,
        subjects: &[LimitSubject],
    ) -> StoreResult<Vec<Limit>> {
        self.dialect_lock_risk_subjects(&[lock.to_owned()]).await?;
        self.dialect_limits_in_force(Some(subjects)).await
    }

    pub(crate) async fn dialect_limits_in_force(
        &mut self,
        subjects: Option<&[LimitSubject]>,
    ) -> StoreResult<Vec<Limit>> {
        let mut query = QueryBuilder::<Db>::new(
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
                    id: get_id(row, "id")?,
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
    /// One statement over the borrowers in scope; per borrower, index
    /// lookups only (reservations by borrower and status, imported balances
    /// by borrower, memberships by borrower and start). SQLite's planner
    /// joins aggregated subqueries without an index (quadratic for large
    /// scopes), so the sums are correlated subqueries instead. The group is
    /// the latest membership covering `at`, should the history overlap.
    pub(crate) async fn dialect_exposures(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerExposure>> {
        if matches!(scope, ExposureScope::Borrowers(ids) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        let at = micros(at);
        let mut query = QueryBuilder::<Db>::new(
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
                    borrower: BorrowerId::from_uuid(get_id(row, "id")?),
                    group: get(row, "group_id")?,
                    sector: parse_text(&get::<String>(row, "sector")?, "sector")?,
                    country: parse_text(&get::<String>(row, "country")?, "country")?,
                    institution: get(row, "institution")?,
                    reserved: from_minor(get(row, "reserved")?),
                    outstanding: sum_minor(&[get(row, "consumed")?, get(row, "imported")?])?,
                })
            })
            .collect()
    }
    pub(crate) async fn dialect_exposure_total(
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
        let mut query = QueryBuilder::<Db>::new(
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
    /// The case row at its expected revision; the number of votes and
    /// whether a decision were stored come back with it, read once the
    /// row is this transaction's.
    pub(crate) async fn dialect_update_case(
        &mut self,
        case: &CreditCase,
        expected_revision: i64,
    ) -> StoreResult<Option<(i64, bool)>> {
        let sql = concat!(
            creditops_store_sql::update_case_sql!(),
            " RETURNING (SELECT COUNT(*) FROM votes WHERE case_id = $1), \
             EXISTS (SELECT 1 FROM decisions WHERE case_id = $1)"
        );
        bind_case_update(
            sqlx::query_as(sql),
            case,
            expected_revision,
            self.audit_id(),
        )?
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)
    }

    /// The case row, its votes (in order, without gaps), its decision and
    /// its file's documents, read one after another.
    pub(crate) async fn dialect_case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>> {
        let row = sqlx::query(
            "SELECT borrower_id, amount_minor, currency, product, term_months, purpose, status, \
             version, revision, originator, return_reason, created_at, updated_at, editors, \
             round, escalation_level, related_party, board_resolution, kind, credit_id, \
             credit_version, credit_amount_minor, credit_term_months, conditions, \
             released_collateral_id \
             FROM cases WHERE id = $1",
        )
        .bind(id_arg(id))
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let vote_rows = sqlx::query(
            "SELECT ordinal, stage, voter_id, unit_id, side, decision, rationale, file_version, \
             content_hash, cast_at, checks, round, required_level, competence_level, \
             left_market_at FROM votes WHERE case_id = $1 ORDER BY ordinal",
        )
        .bind(id_arg(id))
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
                .bind(id_arg(id))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
        let mut case = case_from_row(&row, id, "round", votes, decision_json)?;
        // The documents are part of the file a vote binds to (L2, V3).
        case.file.documents = self.case_file_documents(id).await?;
        Ok(Some(case))
    }

    /// Links the event to the chain head. Serialization: this runs on the one
    /// writer connection inside `BEGIN IMMEDIATE`, so no other appender can
    /// read the same head before this transaction ends.
    pub(crate) async fn dialect_append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()> {
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
        .bind(id_arg(event.event_id))
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
        .map_err(conflict(
            "an audit event with this id or sequence exists already",
        ))?;
        self.complete_tree_nodes(seq, event.leaf_hash).await
    }

    /// Appends, in the event's transaction, the tree nodes the leaf at
    /// `seq` completes: one per trailing one bit of its index, each the hash
    /// of a stored left sibling and the node just completed (on average one
    /// read and one insert per event).
    async fn complete_tree_nodes(&mut self, seq: i64, leaf: Hash) -> StoreResult<()> {
        let index = u64::try_from(seq - 1).map_err(|_| corrupt("an audit seq below 1"))?;
        let completed = index.trailing_ones();
        if completed == 0 {
            return Ok(());
        }
        // The left sibling at `level` is the peak of that height just before
        // this leaf.
        let siblings: Vec<NodePosition> = (0..completed)
            .map(|level| (level as u8, ((index + 1) >> level) - 2))
            .collect();
        let found = self.dialect_audit_nodes(&siblings).await?;
        let mut node = leaf;
        for (level, left) in (1..=completed).zip(found) {
            let left =
                left.ok_or_else(|| corrupt("the audit tree misses a node below the log's size"))?;
            node = node_hash(&left, &node);
            let position = i64::try_from(((index + 1) >> level) - 1)
                .map_err(|_| corrupt("an audit tree index beyond i64"))?;
            sqlx::query("INSERT INTO audit_tree (level, idx, hash) VALUES ($1, $2, $3)")
                .bind(i64::from(level))
                .bind(position)
                .bind(&node[..])
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
        }
        Ok(())
    }

    pub(crate) async fn dialect_insert_checkpoint(
        &mut self,
        size: i64,
        checkpoint: &StoredCheckpoint,
    ) -> StoreResult<()> {
        sqlx::query(creditops_store_sql::insert_checkpoint_sql!(
            "$1", "$2", "$3", "$4"
        ))
        .bind(size)
        .bind(checkpoint.root.as_slice())
        .bind(&checkpoint.note)
        .bind(micros(checkpoint.signed_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    pub(crate) async fn dialect_audit_size(&mut self) -> StoreResult<u64> {
        let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_events")
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        u64::try_from(size).map_err(|_| corrupt("a negative audit seq"))
    }

    pub(crate) async fn dialect_audit_nodes(
        &mut self,
        positions: &[NodePosition],
    ) -> StoreResult<Vec<Option<Hash>>> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for all, one index probe per position: level 0 is a
        // leaf of the chain, higher levels are nodes of the tree table.
        let wanted = to_json(&positions)?;
        let found: Vec<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT CASE WHEN p.value ->> 0 = 0 \
                    THEN (SELECT e.leaf_hash FROM audit_events e \
                          WHERE e.seq = (p.value ->> 1) + 1) \
                    ELSE (SELECT t.hash FROM audit_tree t \
                          WHERE t.level = p.value ->> 0 AND t.idx = p.value ->> 1) \
                    END \
             FROM json_each($1) p ORDER BY p.key",
        )
        .bind(wanted)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        tree_hashes(found)
    }
    pub(crate) async fn dialect_unaudited_rows(
        &mut self,
        limit: u32,
    ) -> StoreResult<Vec<UnauditedRow>> {
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
                .push_bind(ids_arg(ids)?)
                .push("))");
        }
        ExposureScope::Sector(sector) => {
            let codes: Vec<String> = sector.covered().map(|code| code.to_string()).collect();
            query
                .push("b.sector IN (SELECT value FROM json_each(")
                .push_bind(to_json(&codes)?)
                .push("))");
        }
        ExposureScope::Country(country) => {
            query.push("b.country = ").push_bind(country.to_string());
        }
    }
    Ok(())
}
