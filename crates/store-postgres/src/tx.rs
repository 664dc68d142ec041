//! One PostgreSQL transaction implementing the store's area traits.
//!
//! The statements both backends share come from `creditops_store_sql`; this
//! module gives them PostgreSQL's dialect and keeps what PostgreSQL does its
//! own way: advisory and row locks (writers run concurrently), liquidity
//! claims, the audit sequencer's unlinked inserts, and reads shaped as one
//! statement each. UUID ids are native `UUID` columns, timestamps
//! `TIMESTAMPTZ`, small counters (`term_months`, positions, ordinals, HTTP
//! status) `INTEGER`.

use crate::error::map_sqlx_error;
use async_trait::async_trait;
use creditops_audit::{Hash, NodePosition, leaf_hash};
use creditops_store_sql::prelude::*;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};

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
         UNION ALL SELECT 'credit_documents', x.id::text, x.audit_event_id FROM credit_documents x \
           WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.event_id = x.audit_event_id) \
         UNION ALL SELECT 'borrower_financials', f.borrower_id::text || '/' || f.reporting_date, \
           f.audit_event_id FROM borrower_financials f \
           WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.event_id = f.audit_event_id) \
         ) r ORDER BY t, k LIMIT $1"
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

/// An approval without a claim was not counted by others (R5, R6).
const NO_CLAIM: &str = "the approval holds no liquidity claim, so other approvals did not count it";
/// A claim settles only within its window and for no more than it claimed.
const CLAIM_LAPSED: &str = "the approval's liquidity claim lapsed or no longer covers the amount";

/// The latest liquidity position with the liquidity committed since it
/// and the live claims of other approvals (`counted`: `$2` the reader's
/// claim id, `$3` its time, `$4` its case) or none (`ignored`); `$1` is
/// the time read at.
macro_rules! liquidity_now_sql {
    (ignored) => {
        concat!(
            "SELECT ",
            creditops_store_sql::liquidity_columns!(),
            ", ",
            committed_since_position!(),
            " AS committed, 0::BIGINT AS claimed_earlier, 0::BIGINT AS claimed_later \
             FROM liquidity_positions AS p ORDER BY version DESC LIMIT 1"
        )
    };
    (counted) => {
        concat!(
            "SELECT ",
            creditops_store_sql::liquidity_columns!(),
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
        )
    };
}

/// The latest capital (columns prefixed `capital_`) and the row of
/// [`liquidity_now_sql`], as one row whatever exists.
macro_rules! capital_and_liquidity_sql {
    ($claims:ident) => {
        concat!(
            "SELECT c.version AS capital_version, c.tier1_minor AS capital_tier1_minor, \
             c.recorded_by AS capital_recorded_by, c.recorded_at AS capital_recorded_at, \
             l.* FROM (SELECT 1) AS one \
             LEFT JOIN LATERAL (SELECT version, tier1_minor, recorded_by, recorded_at \
               FROM capital_versions ORDER BY version DESC LIMIT 1) AS c ON true \
             LEFT JOIN LATERAL (",
            liquidity_now_sql!($claims),
            ") AS l ON true"
        )
    };
}

/// The exposures of the borrowers named in `$ids` at `$at`, each part an
/// index probe per borrower (unordered): what `exposure_from_row` reads.
macro_rules! named_exposures_sql {
    ($ids:literal, $at:literal) => {
        concat!(
            "SELECT b.id, b.country, b.sector, b.institution, \
             (SELECT m.group_id FROM group_memberships AS m WHERE m.borrower_id = b.id \
             AND m.valid_from <= ",
            $at,
            " AND (m.valid_to IS NULL OR m.valid_to > ",
            $at,
            ") \
             ORDER BY m.valid_from DESC LIMIT 1) AS group_id, \
             r.reserved, r.consumed, \
             (SELECT COALESCE(SUM(i.amount_minor), 0)::BIGINT FROM imported_balances AS i \
             WHERE i.borrower_id = b.id) AS imported \
             FROM borrowers AS b CROSS JOIN LATERAL (SELECT \
             COALESCE(SUM(r.amount_minor) FILTER (WHERE r.status = 'active' \
             AND r.expires_at > ",
            $at,
            "), 0)::BIGINT AS reserved, \
             COALESCE(SUM(r.amount_minor) FILTER (WHERE r.status = 'consumed'), 0)::BIGINT \
             AS consumed \
             FROM reservations AS r WHERE r.borrower_id = b.id \
             AND r.status IN ('active', 'consumed')) AS r \
             WHERE b.id = ANY(",
            $ids,
            ")"
        )
    };
}

/// [`capital_and_liquidity_sql`] with the exposures of the borrowers in
/// `$ids` beside it (both read at `$1`), one row per borrower found.
macro_rules! gate_figures_sql {
    ($claims:ident, $ids:literal) => {
        concat!(
            "SELECT cl.*, e.* FROM (",
            capital_and_liquidity_sql!($claims),
            ") AS cl LEFT JOIN LATERAL (",
            named_exposures_sql!($ids, "$1"),
            ") AS e ON true ORDER BY e.id"
        )
    };
}

/// Binds what [`liquidity_now_sql`] reads for `claims`.
fn bind_liquidity_claims<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    at: Timestamp,
    claims: InFlightClaims<'_>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let query = query.bind(micros(at));
    match claims {
        InFlightClaims::Ignored => query,
        InFlightClaims::CountedExcept(own) => query
            .bind(own.id)
            .bind(own.claimed_at)
            .bind(own.case.as_uuid()),
    }
}

/// A row of [`liquidity_now_sql`].
fn liquidity_now_from_row(row: &PgRow) -> StoreResult<LiquidityNow> {
    Ok(LiquidityNow {
        position: liquidity_from_row(row)?,
        committed: from_minor(get(row, "committed")?),
        claimed_earlier: from_minor(get(row, "claimed_earlier")?),
        claimed_later: from_minor(get(row, "claimed_later")?),
    })
}

/// Capital and liquidity from a row of [`capital_and_liquidity_sql`].
fn capital_and_liquidity_from_row(
    row: &PgRow,
) -> StoreResult<(Option<Capital>, Option<LiquidityNow>)> {
    let capital = match get::<Option<i64>>(row, "capital_version")? {
        None => None,
        Some(version) => Some(Capital {
            version,
            tier1: from_minor(get(row, "capital_tier1_minor")?),
            recorded_by: get_staff(row, "capital_recorded_by")?,
            recorded_at: get(row, "capital_recorded_at")?,
        }),
    };
    let liquidity = match get::<Option<i64>>(row, "version")? {
        None => None,
        Some(_) => Some(liquidity_now_from_row(row)?),
    };
    Ok((capital, liquidity))
}

type Db = Postgres;
type DbRow = PgRow;
/// Ids are `UUID` columns.
type DbId = Uuid;
/// A list of ids is one bound `uuid[]` value for `= ANY($n)`.
type DbIds = Vec<Uuid>;
/// `INTEGER` columns are 32-bit.
type DbInt = i32;

fn id_arg(id: impl StoredId) -> DbId {
    id.uuid()
}

#[allow(clippy::unnecessary_wraps)] // the dialect's signature: SQLite parses text
fn id_of(stored: DbId) -> StoreResult<Uuid> {
    Ok(stored)
}

#[allow(clippy::unnecessary_wraps)] // the dialect's signature: SQLite encodes JSON
fn ids_arg(ids: &[BorrowerId]) -> StoreResult<DbIds> {
    Ok(ids.iter().map(BorrowerId::as_uuid).collect())
}

fn int_arg(n: i64) -> StoreResult<DbInt> {
    i32::try_from(n).map_err(|_| invariant("a number does not fit a database integer"))
}

fn get<T>(row: &PgRow, column: &str) -> StoreResult<T>
where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(map_sqlx_error)
}

creditops_store_sql::sql_rows!();
creditops_store_sql::staff_tx!(PgTx);
creditops_store_sql::borrower_tx!(PgTx, in_ids = "= ANY($1)");
creditops_store_sql::admin_tx!(PgTx);
creditops_store_sql::limit_tx!(PgTx);
creditops_store_sql::risk_tx!(PgTx);
// A concurrent import of the same record waits for the row lock (the insert
// attempt, then `FOR UPDATE`), so the comparison sees the latest committed
// version.
creditops_store_sql::exposure_tx!(PgTx, lock_row = " FOR UPDATE");
creditops_store_sql::breach_tx!(PgTx);
creditops_store_sql::case_tx!(PgTx, votes_apart = false);
creditops_store_sql::collateral_tx!(PgTx);
creditops_store_sql::granting_tx!(
    PgTx,
    new_credit = creditops_store_sql::new_credit_with_version_sql!(),
    version_apart = false
);
creditops_store_sql::monitoring_tx!(PgTx, in_ids = "= ANY($1)");
creditops_store_sql::idempotency_tx!(PgTx);
creditops_store_sql::session_tx!(PgTx);
creditops_store_sql::credit_file_tx!(PgTx);
creditops_store_sql::audit_tx!(PgTx);
creditops_store_sql::vote_tx!(PgTx, in_ids = "= ANY($1)");

/// Inserts the audit events bound as nine arrays (see
/// [`bind_audit_entries`]) as `$1` to `$9`.
macro_rules! insert_audit_entries_sql {
    () => {
        "INSERT INTO audit_entries (event_id, body, leaf_hash, recorded_at, actor, action, \
         outcome, case_id, borrower_id) \
         SELECT * FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[], $4::timestamptz[], \
         $5::text[], $6::text[], $7::text[], $8::uuid[], $9::uuid[])"
    };
}

/// Binds `events` column by column, for [`insert_audit_entries_sql`].
fn bind_audit_entries<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    events: &'q [NewAuditEvent],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let leaves: Vec<&[u8]> = events.iter().map(|e| &e.leaf_hash[..]).collect();
    let times: Vec<Timestamp> = events.iter().map(|e| micros(e.recorded_at)).collect();
    let actors: Vec<Option<&str>> = events.iter().map(|e| e.actor.as_deref()).collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    let cases: Vec<Option<Uuid>> = events
        .iter()
        .map(|e| e.case_id.map(|id| id.as_uuid()))
        .collect();
    let borrowers: Vec<Option<Uuid>> = events
        .iter()
        .map(|e| e.borrower_id.map(|id| id.as_uuid()))
        .collect();
    query
        .bind(ids)
        .bind(bodies)
        .bind(leaves)
        .bind(times)
        .bind(actors)
        .bind(actions)
        .bind(outcomes)
        .bind(cases)
        .bind(borrowers)
}

pub(crate) struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// The id of this transaction's first audit event; every business row
    /// of the credit path it writes carries it (reconciliation).
    audit_event_id: Uuid,
    audit_event_claimed: bool,
    /// The rule sets as this transaction first read them (see
    /// `creditops_store_sql::admin_tx`).
    rule_sets: Option<Vec<RuleSet>>,
    /// Audit events appended and not yet written: all of them go in one
    /// statement just before the commit (A1: they commit or roll back with
    /// the change), or before a read of this transaction that looks for them.
    pending_audit: Vec<NewAuditEvent>,
    /// Begun `READ ONLY`: an append is refused at once, not at commit.
    read_only: bool,
    /// The store's rule-set cache (see `creditops_store_sql::admin_tx`).
    rule_set_cache: Option<Arc<RuleSetCache>>,
    /// Begun with [`BEGIN_SHARING_RISK`]: the shared risk lock is held.
    risk_shared_held: bool,
    /// The authority version a kept actor lookup was read at, which the
    /// commit checks (see [`creditops_store::AdminTx::expect_authority`]).
    authority: Option<u64>,
    /// The process's kept actor lookups: under [`Self::authority`], a staff
    /// member kept at that version is read from here (the commit checks the
    /// version); dropped once this transaction writes the directory itself.
    authority_cache: Option<Arc<AuthorityCache>>,
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        // Fail closed: events that cannot be written roll the change back,
        // and so does an authority that moved under a kept actor lookup.
        let checked = self.write_pending_audit().await?;
        if let (Some(version), false) = (self.authority, checked) {
            let now: i64 = sqlx::query_scalar("SELECT creditops_authority_version()")
                .fetch_one(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
            if u64::try_from(now).ok() != Some(version) {
                return Err(StoreError::Conflict(AUTHORITY_CHANGED.into()));
            }
        }
        self.tx.commit().await.map_err(map_sqlx_error)
    }
}

impl PgTx {
    /// A read-write transaction; its reads of committed rule sets go to
    /// `rule_set_cache`, if given.
    pub(crate) fn new(
        tx: Transaction<'static, Postgres>,
        rule_set_cache: Option<Arc<RuleSetCache>>,
    ) -> Self {
        Self {
            tx,
            audit_event_id: Uuid::now_v7(),
            audit_event_claimed: false,
            rule_sets: None,
            pending_audit: Vec::new(),
            read_only: false,
            rule_set_cache,
            risk_shared_held: false,
            authority: None,
            authority_cache: None,
        }
    }

    /// This transaction was begun with [`BEGIN_SHARING_RISK`].
    /// A transaction that may read staff members from `cache` (see
    /// [`Self::dialect_staff_member`]).
    pub(crate) fn keeping(self, cache: Arc<AuthorityCache>) -> Self {
        Self {
            authority_cache: Some(cache),
            ..self
        }
    }

    pub(crate) fn holding_risk_shared(self) -> Self {
        Self {
            risk_shared_held: true,
            ..self
        }
    }

    /// A transaction begun `READ ONLY`.
    pub(crate) fn read_only(
        tx: Transaction<'static, Postgres>,
        rule_set_cache: Arc<RuleSetCache>,
    ) -> Self {
        Self {
            read_only: true,
            ..Self::new(tx, Some(rule_set_cache))
        }
    }

    fn audit_id(&self) -> DbId {
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

    /// Serializes membership changes of this borrower, so the check of the
    /// history and the change cannot interleave. An advisory lock, not a row
    /// lock: the back office's role may not UPDATE borrowers, and a row lock
    /// needs that privilege.
    pub(crate) async fn lock_membership(&mut self, borrower: &DbId) -> StoreResult<()> {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('borrower-group:' || $1::text, 0))",
        )
        .bind(borrower)
        .execute(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// Under a kept actor lookup's version, a person kept at that version is
    /// what a read would find: the commit checks nobody moved it since.
    pub(crate) async fn dialect_staff_member(
        &mut self,
        id: &StaffId,
    ) -> StoreResult<Option<StaffMember>> {
        if let (Some(version), Some(cache)) = (self.authority, &self.authority_cache)
            && let Some((kept, _)) = cache.lookup(id)
            && kept.authority == Some(version)
        {
            return Ok(Some(kept.member));
        }
        Ok(fetch_staff_member(&mut *self.tx, id)
            .await?
            .map(|fetched| fetched.member))
    }

    /// The two reads in one statement, each part tagged.
    pub(crate) async fn dialect_vote_context(
        &mut self,
        borrowers: &[BorrowerId],
    ) -> StoreResult<VoteContext> {
        let mut context = VoteContext::default();
        if borrowers.is_empty() {
            return Ok(context);
        }
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT 'manager' AS part, relationship_manager AS text FROM borrowers \
             WHERE id = ANY($1) AND relationship_manager IS NOT NULL \
             UNION ALL SELECT 'related', staff_id FROM related_parties \
             WHERE borrower_id = ANY($1)",
        )
        .bind(ids_arg(borrowers)?)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        for (part, text) in rows {
            let text = text.ok_or_else(|| corrupt("a vote context row without its value"))?;
            match part.as_str() {
                "manager" => {
                    context
                        .relationship_managers
                        .insert(parse_text(&text, "staff id")?);
                }
                "related" => {
                    context
                        .related_parties
                        .insert(parse_text(&text, "staff id")?);
                }
                _ => return Err(corrupt("a vote context row of no known part")),
            }
        }
        Ok(context)
    }

    pub(crate) async fn dialect_limits_in_force(
        &mut self,
        subjects: Option<&[LimitSubject]>,
    ) -> StoreResult<Vec<Limit>> {
        if subjects.is_some_and(<[LimitSubject]>::is_empty) {
            return Ok(Vec::new());
        }
        self.limits_read(subjects, None).await
    }

    /// The hold taken by the statement's first branch, a `UNION ALL` being
    /// read in full: the limits come in the same round trip, read in the
    /// statement's snapshot (taken before the hold was granted).
    pub(crate) async fn dialect_lock_subject_reading_limits(
        &mut self,
        lock: &str,
        subjects: &[LimitSubject],
    ) -> StoreResult<Vec<Limit>> {
        if subjects.is_empty() {
            self.dialect_lock_risk_subjects(&[lock.to_owned()]).await?;
            return Ok(Vec::new());
        }
        self.limits_read(Some(subjects), Some(subject_lock_key(lock)))
            .await
    }

    /// The limits in force of `subjects` (all if `None`), and with `lock`,
    /// that advisory lock taken in the same statement.
    async fn limits_read(
        &mut self,
        subjects: Option<&[LimitSubject]>,
        lock: Option<i64>,
    ) -> StoreResult<Vec<Limit>> {
        let mut query = QueryBuilder::<Postgres>::new("");
        if let Some(key) = lock {
            // A row of its own, told apart by its kind: the lock is taken
            // whether or not any limit is in force.
            query
                .push(
                    "SELECT NULL AS id, 'lock' AS subject_kind, NULL AS subject_key, \
                     NULL AS version, NULL AS amount_minor, NULL AS tolerance_percent \
                     FROM (SELECT pg_advisory_xact_lock(",
                )
                .push_bind(key)
                .push(")) AS held UNION ALL ");
        }
        match subjects {
            // Each subject's latest approved version by one probe of the
            // in-force index, however many versions of other subjects exist.
            Some(subjects) => {
                let subjects: BTreeSet<&LimitSubject> = subjects.iter().collect();
                let kinds: Vec<&str> = subjects.iter().map(|s| s.kind().as_str()).collect();
                let keys: Vec<String> = subjects.iter().map(|s| s.key()).collect();
                query.push(
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
            }
            None => {
                query.push(
                    "(SELECT DISTINCT ON (subject_kind, subject_key) id, subject_kind, \
                     subject_key, version, amount_minor, tolerance_percent FROM limit_versions \
                     WHERE status = 'approved' ORDER BY subject_kind, subject_key, version DESC)",
                );
            }
        }
        let rows = query
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        let (held, rows): (Vec<PgRow>, Vec<PgRow>) = rows
            .into_iter()
            .partition(|row| get::<String>(row, "subject_kind").is_ok_and(|kind| kind == "lock"));
        if held.len() != usize::from(lock.is_some()) {
            return Err(invariant("the limits read did not take its lock"));
        }
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

    /// The position, its committed sum and the claims in one statement: the
    /// sum is what [`Tx::committed_outflows`] computes, since the position's
    /// own time. A claim is live until it lapses by the database's clock,
    /// the one clock every instance shares. Claims for the reader's own case
    /// (a duplicate delivery, a second analyst) are not counted: of the
    /// approvals of one case only one can commit, as a case holds one
    /// reservation.
    pub(crate) async fn dialect_liquidity_now(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<Option<LiquidityNow>> {
        let row = bind_liquidity_claims(
            match claims {
                InFlightClaims::Ignored => sqlx::query(liquidity_now_sql!(ignored)),
                InFlightClaims::CountedExcept(_) => sqlx::query(liquidity_now_sql!(counted)),
            },
            at,
            claims,
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        row.as_ref().map(liquidity_now_from_row).transpose()
    }

    /// The latest capital and [`Self::dialect_liquidity_now`] in one
    /// statement (the capital's columns prefixed).
    pub(crate) async fn dialect_capital_and_liquidity(
        &mut self,
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<(Option<Capital>, Option<LiquidityNow>)> {
        let row = bind_liquidity_claims(
            match claims {
                InFlightClaims::Ignored => sqlx::query(capital_and_liquidity_sql!(ignored)),
                InFlightClaims::CountedExcept(_) => {
                    sqlx::query(capital_and_liquidity_sql!(counted))
                }
            },
            at,
            claims,
        )
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        capital_and_liquidity_from_row(&row)
    }

    /// The named borrowers' exposures joined to the one row of
    /// [`capital_and_liquidity_sql`] (each exposure row repeats it; with no
    /// borrower found, it comes alone, the exposure's columns null).
    pub(crate) async fn dialect_gate_figures(
        &mut self,
        borrowers: &[BorrowerId],
        at: Timestamp,
        claims: InFlightClaims<'_>,
    ) -> StoreResult<GateFigures> {
        let rows = bind_liquidity_claims(
            match claims {
                InFlightClaims::Ignored => sqlx::query(gate_figures_sql!(ignored, "$2")),
                InFlightClaims::CountedExcept(_) => sqlx::query(gate_figures_sql!(counted, "$5")),
            },
            at,
            claims,
        )
        .bind(ids_arg(borrowers)?)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)?;
        let first = rows
            .first()
            .ok_or_else(|| corrupt("the gate's figures came without their capital row"))?;
        let (capital, liquidity) = capital_and_liquidity_from_row(first)?;
        let mut exposures = Vec::with_capacity(rows.len());
        for row in &rows {
            if get::<Option<DbId>>(row, "id")?.is_some() {
                exposures.push(exposure_from_row(row)?);
            }
        }
        Ok(GateFigures {
            exposures,
            capital,
            liquidity,
        })
    }

    /// The claim deleted and the reservation written in one statement: the
    /// reservation only if the claim was settled (see
    /// [`Self::dialect_settle_liquidity_claim`] for when it is).
    pub(crate) async fn dialect_reserve_with_claim(
        &mut self,
        reservation: &Reservation,
        claim: Option<&LiquidityClaim>,
    ) -> StoreResult<()> {
        let Some(claim) = claim else {
            return Err(StoreError::Conflict(NO_CLAIM.into()));
        };
        let written = bind_reservation(
            sqlx::query(
                "WITH settled AS ( \
                   DELETE FROM liquidity_claims WHERE id = $9 AND case_id = $1 \
                   AND amount_minor >= $3 AND settle_by > statement_timestamp() RETURNING 1) \
                 INSERT INTO reservations (case_id, borrower_id, amount_minor, status, \
                   reserved_at, expires_at, closed_at, closed_by) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM settled)",
            ),
            reservation,
        )?
        .bind(claim.id)
        .execute(&mut *self.tx)
        .await
        .map_err(conflict("the case holds a reservation already"))?
        .rows_affected();
        if written != 1 {
            return Err(StoreError::Conflict(CLAIM_LAPSED.into()));
        }
        Ok(())
    }

    /// Deletes the claim with the reservation written beside it; the claim
    /// must still be within its settling window (so no other approval has
    /// stopped counting it) and cover the amount.
    pub(crate) async fn dialect_settle_liquidity_claim(
        &mut self,
        claim: Option<&LiquidityClaim>,
        amount: Decimal,
    ) -> StoreResult<()> {
        let Some(claim) = claim else {
            return Err(StoreError::Conflict(NO_CLAIM.into()));
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
            Err(StoreError::Conflict(CLAIM_LAPSED.into()))
        }
    }

    /// Four parts: the borrowers in scope, their reservation sums, their
    /// imported balances and their group at `at` (the latest membership
    /// covering `at`, should the history overlap). For named borrowers (a
    /// vote's group) each part is an index probe per borrower; for many
    /// (a sector, everyone) the parts are set-based and joined once.
    pub(crate) async fn dialect_exposures(
        &mut self,
        scope: &ExposureScope,
        at: Timestamp,
    ) -> StoreResult<Vec<BorrowerExposure>> {
        if let ExposureScope::Borrowers(ids) = scope {
            let rows = sqlx::query(concat!(named_exposures_sql!("$1", "$2"), " ORDER BY b.id"))
                .bind(ids_arg(ids)?)
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

    pub(crate) async fn dialect_exposure_total(
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

    /// The case row at its expected revision and its new votes, in one
    /// statement: every vote of `case` is sent, and those at or above the
    /// number stored before (read in the statement's snapshot, taken before
    /// the row was updated: any vote written since would have moved the
    /// revision) are inserted. The decision is written apart: its trigger
    /// checks the votes, which a sibling of the same statement could not
    /// show it.
    pub(crate) async fn dialect_update_case(
        &mut self,
        case: &CreditCase,
        expected_revision: i64,
    ) -> StoreResult<Option<(i64, bool)>> {
        let votes = &case.votes;
        let ordinals = (0..votes.len())
            .map(|ordinal| int_arg(to_i64(ordinal)?))
            .collect::<StoreResult<Vec<_>>>()?;
        let text = |pick: fn(&Vote) -> &str| votes.iter().map(pick).collect::<Vec<&str>>();
        let ints = |pick: fn(&Vote) -> i64| {
            votes
                .iter()
                .map(|vote| int_arg(pick(vote)))
                .collect::<StoreResult<Vec<_>>>()
        };
        let checks = votes
            .iter()
            .map(|vote| to_json(&vote.checks))
            .collect::<StoreResult<Vec<_>>>()?;
        let sql = concat!(
            "WITH updated AS (",
            creditops_store_sql::update_case_sql!(),
            " RETURNING id), \
             stored AS (SELECT (SELECT COUNT(*) FROM votes WHERE case_id = $1) AS votes, \
             EXISTS (SELECT 1 FROM decisions WHERE case_id = $1) AS decided FROM updated), \
             new_votes AS (INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, \
             decision, rationale, file_version, content_hash, cast_at, checks, round, \
             required_level, competence_level, left_market_at, audit_event_id) \
             SELECT $1, v.ordinal, v.stage, v.voter_id, v.unit_id, v.side, v.decision, \
             v.rationale, v.file_version, v.content_hash, v.cast_at, v.checks, v.round, \
             v.required_level, v.competence_level, v.left_market_at, $18 \
             FROM stored CROSS JOIN UNNEST($20::int[], $21::text[], $22::text[], $23::text[], \
             $24::text[], $25::text[], $26::text[], $27::bigint[], $28::text[], \
             $29::timestamptz[], $30::text[], $31::int[], $32::int[], $33::int[], \
             $34::timestamptz[]) AS v (ordinal, stage, voter_id, unit_id, side, decision, \
             rationale, file_version, content_hash, cast_at, checks, round, required_level, \
             competence_level, left_market_at) WHERE v.ordinal >= stored.votes) \
             SELECT votes, decided FROM stored"
        );
        bind_case_update(
            sqlx::query_as(sql),
            case,
            expected_revision,
            self.audit_id(),
        )?
        .bind(ordinals)
        .bind(text(|vote| vote.stage.as_str()))
        .bind(text(|vote| vote.voter.staff_id.as_str()))
        .bind(text(|vote| vote.voter.unit_id.as_str()))
        .bind(text(|vote| vote.voter.side.as_str()))
        .bind(text(|vote| vote.decision.as_str()))
        .bind(text(|vote| vote.rationale.as_str()))
        .bind(
            votes
                .iter()
                .map(|vote| vote.file_version)
                .collect::<Vec<_>>(),
        )
        .bind(text(|vote| vote.content_hash.as_str()))
        .bind(
            votes
                .iter()
                .map(|vote| micros(vote.cast_at))
                .collect::<Vec<_>>(),
        )
        .bind(checks)
        .bind(ints(|vote| i64::from(vote.round))?)
        .bind(ints(|vote| i64::from(vote.required_level))?)
        .bind(ints(|vote| i64::from(vote.voter.competence_level))?)
        .bind(
            votes
                .iter()
                .map(|vote| vote.voter.left_market_at.map(micros))
                .collect::<Vec<_>>(),
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_sqlx_error)
    }

    /// The case, its decision, its votes and its file's documents in one
    /// statement: one row per vote (one row with no vote columns for a case
    /// without votes), the documents as JSON on each.
    pub(crate) async fn dialect_case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>> {
        let rows = sqlx::query(
            "SELECT c.borrower_id, c.amount_minor, c.currency, c.product, c.term_months, \
             c.purpose, c.status, c.version, c.revision, c.originator, c.return_reason, \
             c.created_at, c.updated_at, c.editors, c.round AS case_round, c.escalation_level, \
             c.related_party, c.board_resolution, c.kind, c.credit_id, c.credit_version, \
             c.credit_amount_minor, c.credit_term_months, c.conditions, c.released_collateral_id, \
             (SELECT decision_json FROM decisions WHERE case_id = c.id) AS decision_json, \
             (SELECT COALESCE(json_agg(json_build_object('id', d.id, 'type', d.doc_type, \
             'sha256', d.sha256) ORDER BY d.added_at, d.id), '[]')::text \
             FROM credit_documents AS d WHERE d.case_id = c.id AND d.superseded_by IS NULL) \
             AS documents_json, \
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
        let mut votes = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(ordinal) = get::<Option<i32>>(row, "ordinal")? else {
                continue;
            };
            if i64::from(ordinal) != to_i64(votes.len())? {
                return Err(corrupt("the votes of a case have a gap"));
            }
            votes.push(vote_from_row(row)?);
        }
        let decision_json = get::<Option<String>>(row, "decision_json")?;
        let mut case = case_from_row(row, id, "case_round", votes, decision_json)?;
        // The documents are part of the file a vote binds to (L2, V3).
        case.file.documents = serde_json::from_str(&get::<String>(row, "documents_json")?)
            .map_err(|_| corrupt("a case's documents do not read back"))?;
        Ok(Some(case))
    }

    /// Links the event to the chain head. Serialization: the transaction
    /// first takes the chain's advisory lock, held until commit or rollback,
    /// so the next appender (in any process) reads this event as its head.
    /// Kept in this one function so a sequencer can replace it.
    /// Inserts the event without linking it: no lock shared with other
    /// writers, so audited transactions commit concurrently; the sequencer
    /// links it once it is committed (see `sequencer`).
    pub(crate) async fn dialect_append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()> {
        if leaf_hash(&event.body) != event.leaf_hash {
            return Err(invariant(
                "the audit event's leaf hash does not match its body",
            ));
        }
        if self.read_only {
            return Err(invariant(
                "a read-only transaction cannot append audit events",
            ));
        }
        self.pending_audit.push(event.clone());
        Ok(())
    }

    /// Writes the pending audit events, all in one statement.
    /// Under a kept actor lookup, the events are written only if the
    /// authority version is still the one it was read at (in the same
    /// statement, read as of its start): whether that was checked.
    async fn write_pending_audit(&mut self) -> StoreResult<bool> {
        let events = std::mem::take(&mut self.pending_audit);
        if events.is_empty() {
            return Ok(false);
        }
        let Some(version) = self.authority else {
            bind_audit_entries(sqlx::query(insert_audit_entries_sql!()), &events)
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("an audit event with this id exists already"))?;
            return Ok(false);
        };
        let version =
            i64::try_from(version).map_err(|_| corrupt("an authority version out of range"))?;
        let written = bind_audit_entries(
            sqlx::query(concat!(
                insert_audit_entries_sql!(),
                " WHERE creditops_authority_version() = $10"
            )),
            &events,
        )
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(conflict("an audit event with this id exists already"))?
        .rows_affected();
        if written != events.len() as u64 {
            return Err(StoreError::Conflict(AUTHORITY_CHANGED.into()));
        }
        Ok(true)
    }

    /// This transaction changes the staff directory: it reads its own
    /// change from now on, not a kept lookup.
    pub(crate) fn dialect_directory_written(&mut self) {
        self.authority_cache = None;
    }

    /// Commits only under `version` (see [`Tx::commit`]).
    pub(crate) fn dialect_expect_authority(&mut self, version: u64) -> StoreResult<()> {
        self.authority = Some(version);
        Ok(())
    }

    /// Stores a checkpoint together with the pending audit events (an
    /// auditor's read hands out a checkpoint right after recording the
    /// read): one statement for both.
    pub(crate) async fn dialect_insert_checkpoint(
        &mut self,
        size: i64,
        checkpoint: &StoredCheckpoint,
    ) -> StoreResult<()> {
        let events = std::mem::take(&mut self.pending_audit);
        let sql = concat!(
            "WITH checkpoint AS (",
            creditops_store_sql::insert_checkpoint_sql!("$10", "$11", "$12", "$13"),
            ") ",
            insert_audit_entries_sql!()
        );
        bind_audit_entries(sqlx::query(sql), &events)
            .bind(size)
            .bind(checkpoint.root.as_slice())
            .bind(&checkpoint.note)
            .bind(micros(checkpoint.signed_at))
            .execute(&mut *self.tx)
            .await
            .map_err(conflict("an audit event with this id exists already"))?;
        Ok(())
    }

    /// The linked size: the sequencer links in `seq` order, gaplessly.
    pub(crate) async fn dialect_audit_size(&mut self) -> StoreResult<u64> {
        let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_chain")
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
        let levels: Vec<i16> = positions
            .iter()
            .map(|(level, _)| i16::from(*level))
            .collect();
        let indices = positions
            .iter()
            .map(|(_, index)| {
                i64::try_from(*index).map_err(|_| corrupt("an audit tree index beyond i64"))
            })
            .collect::<StoreResult<Vec<i64>>>()?;
        // One statement for all: level 0 is a leaf of the chain, higher
        // levels are nodes of the tree table.
        let found: Vec<Option<Vec<u8>>> = sqlx::query_scalar(audit_nodes_sql!())
            .bind(&levels)
            .bind(&indices)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_sqlx_error)?;
        tree_hashes(found)
    }

    pub(crate) async fn dialect_unaudited_rows(
        &mut self,
        limit: u32,
    ) -> StoreResult<Vec<UnauditedRow>> {
        // This transaction's own events count.
        self.write_pending_audit().await?;
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

    pub(crate) async fn dialect_lock_risk(&mut self) -> StoreResult<()> {
        self.advisory_lock("SELECT pg_advisory_xact_lock($1)", RISK_LOCK_KEY)
            .await
    }

    pub(crate) async fn dialect_lock_risk_shared(&mut self) -> StoreResult<()> {
        if self.risk_shared_held {
            return Ok(());
        }
        self.advisory_lock("SELECT pg_advisory_xact_lock_shared($1)", RISK_LOCK_KEY)
            .await?;
        self.risk_shared_held = true;
        Ok(())
    }

    pub(crate) async fn dialect_lock_risk_subjects(
        &mut self,
        subjects: &[String],
    ) -> StoreResult<()> {
        let mut keys: Vec<i64> = subjects.iter().map(|s| subject_lock_key(s)).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            self.advisory_lock("SELECT pg_advisory_xact_lock($1)", key)
                .await?;
        }
        Ok(())
    }
}

/// The advisory lock key of risk decisions ("crdtrisk" in ASCII).
const RISK_LOCK_KEY: i64 = 0x6372_6474_7269_736b;

/// A transaction begun with the shared risk lock held, in one round trip:
/// [`RISK_LOCK_KEY`] written out, since a simple query takes no parameters.
/// Every statement after it takes its snapshot with the lock held.
pub(crate) const BEGIN_SHARING_RISK: &str =
    "BEGIN; SELECT pg_advisory_xact_lock_shared(7165900408398377835)";

/// The staff member `id` with every assignment, the number of rule sets
/// and the authority version, in one statement (so one snapshot without a
/// transaction around it): every request reads it to authenticate its
/// caller, the count tells whether the store's cached rule sets are the
/// ones committed now (see `creditops_store::RuleSetCache`), and the
/// version is what a command run under this read later checks (see
/// `creditops_store::AuthorityCache`). The assignment lists come as JSON
/// in their stored order and are read with the domain types' own serde form.
pub(crate) async fn fetch_staff_member<'e, E>(
    executor: E,
    id: &StaffId,
) -> StoreResult<Option<FetchedStaff>>
where
    E: sqlx::PgExecutor<'e>,
{
    let row: Option<(String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT s.status, \
         (SELECT COALESCE(json_agg(json_build_object('unit_id', unit_id, 'side', side, \
           'valid_from', valid_from, 'valid_to', valid_to) ORDER BY position), '[]')::text \
           FROM unit_assignments WHERE staff_id = s.id), \
         (SELECT COALESCE(json_agg(json_build_object('role', role, \
           'valid_from', valid_from, 'valid_to', valid_to) ORDER BY position), '[]')::text \
           FROM role_assignments WHERE staff_id = s.id), \
         (SELECT COALESCE(json_agg(json_build_object('side', side, 'level', level, \
           'valid_from', valid_from, 'valid_to', valid_to) ORDER BY position), '[]')::text \
           FROM competence_grants WHERE staff_id = s.id), \
         (SELECT COUNT(*) FROM rule_sets), \
         (SELECT version FROM authority_version) \
         FROM staff AS s WHERE s.id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(executor)
    .await
    .map_err(map_sqlx_error)?;
    let Some((status, units, roles, competences, rule_set_count, authority)) = row else {
        return Ok(None);
    };
    let member = StaffMember {
        id: id.clone(),
        status: parse_text(&status, "staff status")?,
        units: from_json(&units, "unit assignments")?,
        roles: from_json(&roles, "role assignments")?,
        competences: from_json(&competences, "competence grants")?,
    };
    let rule_set_count =
        u64::try_from(rule_set_count).map_err(|_| corrupt("a negative count of rule sets"))?;
    let authority =
        u64::try_from(authority).map_err(|_| corrupt("a negative authority version"))?;
    Ok(Some(FetchedStaff {
        member,
        rule_set_count,
        authority,
    }))
}

/// A staff member as [`fetch_staff_member`] reads them, with the number of
/// rule sets and the authority version of the same read.
pub(crate) struct FetchedStaff {
    pub member: StaffMember,
    pub rule_set_count: u64,
    pub authority: u64,
}

/// Claims the exposure `case` adds (see
/// [`creditops_store::Store::claim_liquidity`]): a new credit's amount, the
/// difference of an increase (L1); a change that adds nothing claims
/// nothing. One autocommitted statement, which also drops claims that lapsed.
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
         SELECT $1, c.id, c.amount_minor - COALESCE(c.credit_amount_minor, 0), \
         statement_timestamp(), \
         statement_timestamp() + $4 * INTERVAL '1 microsecond', \
         statement_timestamp() + 2 * $4 * INTERVAL '1 microsecond' \
         FROM cases AS c WHERE c.id = $2 AND c.currency = $3 \
         AND c.amount_minor - COALESCE(c.credit_amount_minor, 0) > 0 \
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

/// The advisory lock key of a risk subject: the first 8 bytes of its
/// SHA-256, the same in every process. Two subjects sharing a key only
/// wait for each other, which is safe.
fn subject_lock_key(subject: &str) -> i64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, subject.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// Pushes the condition that narrows `borrowers AS b` to `scope`.
fn push_scope(query: &mut QueryBuilder<Postgres>, scope: &ExposureScope) -> StoreResult<()> {
    match scope {
        ExposureScope::All => {
            query.push("1 = 1");
        }
        ExposureScope::Borrowers(ids) => {
            query.push("b.id = ANY(").push_bind(ids_arg(ids)?).push(")");
        }
        ExposureScope::Sector(sector) => {
            let codes: Vec<String> = sector.covered().map(|code| code.to_string()).collect();
            query.push("b.sector = ANY(").push_bind(codes).push(")");
        }
        ExposureScope::Country(country) => {
            query.push("b.country = ").push_bind(country.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_begin_sharing_risk_takes_the_risk_lock() {
        assert_eq!(
            BEGIN_SHARING_RISK,
            format!("BEGIN; SELECT pg_advisory_xact_lock_shared({RISK_LOCK_KEY})")
        );
    }
}
