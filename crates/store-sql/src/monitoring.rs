//! The credit after it is granted (L6-L10), shared: early-warning inputs,
//! the watch list, flags, reviews, stages and plans, provisions, alerts.

use crate::convert::StoredId;
use creditops_domain::{ProvisionId, ReviewId};
use uuid::Uuid;

impl StoredId for ProvisionId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

impl StoredId for ReviewId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

/// What the expansion of [`monitoring_tx!`] names besides the prelude.
#[doc(hidden)]
pub mod deps {
    pub use chrono::NaiveDate;
    pub use creditops_domain::monitoring::{
        Milestone, MilestoneStatus, Signals, Stage, drop_percent,
    };
    pub use creditops_domain::{CreditId, Provision, ProvisionId, ReviewId};
    pub use creditops_store::{
        BorrowerFlag, MonitoringAlert, Review, StageTransfer, StoredMilestone, WatchEntry,
    };
    pub use std::collections::BTreeMap;
}

/// Columns as `review_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! review_columns {
    () => {
        "id, borrower_id, kind, reason, due_at, opened_at, assignee, overdue_at, \
         completed_by, completed_at, assessment"
    };
}

/// Columns as `stage_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! stage_columns {
    () => {
        "id, borrower_id, from_stage, to_stage, reason, decided_by, decided_at, rules_version"
    };
}

/// Columns as `milestone_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! milestone_columns {
    () => {
        "id, borrower_id, transfer_id, ordinal, title, due_on, status, updated_by, updated_at"
    };
}

/// Columns as `provision_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! provision_columns {
    () => {
        "id, borrower_id, credit_id, amount_minor, currency, reason, method, status, \
         proposed_by, proposed_at, decided_by, decided_at, board_alert"
    };
}

/// Columns as `flag_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! flag_columns {
    () => {
        "id, borrower_id, kind, reason, raised_by, raised_at, cleared_by, cleared_at"
    };
}

/// Expands `MonitoringTx` for `$ty`. `$in_ids` is the dialect's test of a
/// borrower id against a bound list.
#[macro_export]
macro_rules! monitoring_tx {
    ($ty:ident, in_ids = $in_ids:literal) => {
        mod monitoring_sql {
            use super::*;
            use $crate::monitoring::deps::*;

            fn days(value: Option<i64>) -> StoreResult<Option<u32>> {
                value
                    .map(|v| u32::try_from(v).map_err(|_| corrupt("a day count is out of range")))
                    .transpose()
            }

            fn watch_from_row(row: &DbRow) -> StoreResult<WatchEntry> {
                Ok(WatchEntry {
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    indicator: get(row, "indicator")?,
                    value: get(row, "value")?,
                    rules_version: get(row, "rules_version")?,
                    hit_at: get(row, "hit_at")?,
                    review_id: get_opt_id(row, "review_id")?.map(ReviewId::from_uuid),
                })
            }

            fn review_from_row(row: &DbRow) -> StoreResult<Review> {
                let assessment: Option<String> = get(row, "assessment")?;
                Ok(Review {
                    id: ReviewId::from_uuid(get_id(row, "id")?),
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    kind: parse_text(&get::<String>(row, "kind")?, "review kind")?,
                    reason: get(row, "reason")?,
                    due_at: get(row, "due_at")?,
                    opened_at: get(row, "opened_at")?,
                    assignee: get_opt_staff(row, "assignee")?,
                    overdue_at: get(row, "overdue_at")?,
                    completed_by: get_opt_staff(row, "completed_by")?,
                    completed_at: get(row, "completed_at")?,
                    assessment: assessment
                        .map(|text| {
                            serde_json::from_str(&text)
                                .map_err(|_| corrupt("a review's assessment is not JSON"))
                        })
                        .transpose()?,
                })
            }

            // Also what a vote's combined read maps its stage rows with.
            pub(super) fn stage_from_row(row: &DbRow) -> StoreResult<StageTransfer> {
                Ok(StageTransfer {
                    id: get_id(row, "id")?,
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    from_stage: parse_text(&get::<String>(row, "from_stage")?, "stage")?,
                    to_stage: parse_text(&get::<String>(row, "to_stage")?, "stage")?,
                    reason: get(row, "reason")?,
                    decided_by: get_staff(row, "decided_by")?,
                    decided_at: get(row, "decided_at")?,
                    rules_version: get(row, "rules_version")?,
                })
            }

            fn milestone_from_row(row: &DbRow) -> StoreResult<StoredMilestone> {
                Ok(StoredMilestone {
                    id: get_id(row, "id")?,
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    transfer_id: get_id(row, "transfer_id")?,
                    ordinal: get(row, "ordinal")?,
                    milestone: Milestone {
                        title: get(row, "title")?,
                        due_on: get::<NaiveDate>(row, "due_on")?,
                        status: parse_text(&get::<String>(row, "status")?, "milestone status")?,
                    },
                    updated_by: get_staff(row, "updated_by")?,
                    updated_at: get(row, "updated_at")?,
                })
            }

            fn provision_from_row(row: &DbRow) -> StoreResult<Provision> {
                Ok(Provision {
                    id: ProvisionId::from_uuid(get_id(row, "id")?),
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    credit_id: get_opt_id(row, "credit_id")?.map(CreditId::from_uuid),
                    amount: money(get::<i64>(row, "amount_minor")?, &get::<String>(row, "currency")?)?,
                    reason: get(row, "reason")?,
                    method: get(row, "method")?,
                    status: parse_text(&get::<String>(row, "status")?, "provision status")?,
                    proposed_by: get_staff(row, "proposed_by")?,
                    proposed_at: get(row, "proposed_at")?,
                    decided_by: get_opt_staff(row, "decided_by")?,
                    decided_at: get(row, "decided_at")?,
                    board_alert: get(row, "board_alert")?,
                })
            }

            fn flag_from_row(row: &DbRow) -> StoreResult<BorrowerFlag> {
                Ok(BorrowerFlag {
                    id: get_id(row, "id")?,
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    kind: parse_text(&get::<String>(row, "kind")?, "flag kind")?,
                    reason: get(row, "reason")?,
                    raised_by: get_staff(row, "raised_by")?,
                    raised_at: get(row, "raised_at")?,
                    cleared_by: get_opt_staff(row, "cleared_by")?,
                    cleared_at: get(row, "cleared_at")?,
                })
            }

            impl $ty {
                /// The early-warning inputs of [`MonitoringTx::early_warning_signals`]
                /// and, with `watch`, the watch list of
                /// [`MonitoringTx::watch_entries`], in one statement.
                async fn early_warning_rows(
                    &mut self,
                    scope: Option<&[BorrowerId]>,
                    watch: bool,
                ) -> StoreResult<(Vec<(BorrowerId, Signals)>, Vec<WatchEntry>)> {
                    if scope.is_some_and(<[BorrowerId]>::is_empty) {
                        return Ok((Vec::new(), Vec::new()));
                    }
                    let (all, some) = if watch {
                        (
                            $crate::early_warning_sql!(
                                "", "", $crate::early_warning_watch_sql!("")
                            ),
                            $crate::early_warning_sql!(
                                concat!(" AND c.borrower_id ", $in_ids),
                                concat!(" AND borrower_id ", $in_ids),
                                $crate::early_warning_watch_sql!(concat!(" AND w.borrower_id ", $in_ids))
                            ),
                        )
                    } else {
                        (
                            $crate::early_warning_sql!("", "", ""),
                            $crate::early_warning_sql!(
                                concat!(" AND c.borrower_id ", $in_ids),
                                concat!(" AND borrower_id ", $in_ids),
                                ""
                            ),
                        )
                    };
                    let rows = self.scoped_rows(all, some, scope).await?;
                    let mut signals: BTreeMap<Uuid, Signals> = BTreeMap::new();
                    let mut listed = Vec::new();
                    // Per rating borrower and per collateral item, the
                    // newest figure (n = 1) comes before the one before it.
                    let mut newest_rating: BTreeMap<Uuid, u8> = BTreeMap::new();
                    let mut latest_value: BTreeMap<Uuid, i64> = BTreeMap::new();
                    for row in rows {
                        let borrower = get_id(&row, "borrower_id")?;
                        let newest = get::<i64>(&row, "n")? == 1;
                        match get::<String>(&row, "part")?.as_str() {
                            "arrears" => {
                                let entry = signals.entry(borrower).or_default();
                                entry.days_past_due = days(get(&row, "a")?)?;
                                entry.overdrawn_days = days(get(&row, "b")?)?;
                            }
                            "rating" => {
                                let class = u8::try_from(get::<i64>(&row, "a")?)
                                    .map_err(|_| corrupt("a rating class is out of range"))?;
                                if newest {
                                    newest_rating.insert(borrower, class);
                                } else if let Some(now) = newest_rating.get(&borrower) {
                                    signals.entry(borrower).or_default().rating_change =
                                        Some((class, *now));
                                }
                            }
                            "valuation" => {
                                let item = get_id(&row, "item")?;
                                let value: i64 = get(&row, "a")?;
                                if newest {
                                    latest_value.insert(item, value);
                                } else if let Some(now) = latest_value.get(&item) {
                                    let fall =
                                        drop_percent(Decimal::from(value), Decimal::from(*now));
                                    let entry = signals.entry(borrower).or_default();
                                    entry.collateral_drop_percent =
                                        entry.collateral_drop_percent.max(fall);
                                }
                            }
                            "flag" => {
                                let entry = signals.entry(borrower).or_default();
                                match get::<Option<String>>(&row, "kind")?.as_deref() {
                                    Some("covenant_breach") => entry.covenant_breach = true,
                                    _ => entry.negative_information = true,
                                }
                            }
                            // A watch list entry: its review as the item, its
                            // rule set as `a`, its indicator as the kind.
                            "watch" => listed.push(WatchEntry {
                                borrower_id: BorrowerId::from_uuid(borrower),
                                indicator: get(&row, "kind")?,
                                value: get(&row, "value")?,
                                rules_version: get(&row, "a")?,
                                hit_at: get(&row, "at")?,
                                review_id: get_opt_id(&row, "item")?.map(ReviewId::from_uuid),
                            }),
                            _ => return Err(corrupt("an early-warning input of no known part")),
                        }
                    }
                    // The order of `watch_entries`: newest hit first.
                    listed.sort_by(|a: &WatchEntry, b: &WatchEntry| {
                        b.hit_at
                            .cmp(&a.hit_at)
                            .then_with(|| a.borrower_id.as_uuid().cmp(&b.borrower_id.as_uuid()))
                            .then_with(|| a.indicator.cmp(&b.indicator))
                    });
                    let signals = signals
                        .into_iter()
                        .map(|(id, s)| (BorrowerId::from_uuid(id), s))
                        .collect();
                    Ok((signals, listed))
                }

                /// Runs `all` unscoped, or `some` with the borrowers bound as `$1`.
                async fn scoped_rows(
                    &mut self,
                    all: &'static str,
                    some: &'static str,
                    scope: Option<&[BorrowerId]>,
                ) -> StoreResult<Vec<DbRow>> {
                    let query = match scope {
                        Some(ids) => sqlx::query(some).bind(ids_arg(ids)?),
                        None => sqlx::query(all),
                    };
                    query
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)
                }
            }

            #[$crate::async_trait]
            impl MonitoringTx for $ty {
                async fn early_warning_signals(
                    &mut self,
                    scope: Option<&[BorrowerId]>,
                ) -> StoreResult<Vec<(BorrowerId, Signals)>> {
                    Ok(self.early_warning_rows(scope, false).await?.0)
                }

                async fn early_warning_inputs(
                    &mut self,
                    scope: Option<&[BorrowerId]>,
                ) -> StoreResult<(Vec<(BorrowerId, Signals)>, Vec<WatchEntry>)> {
                    self.early_warning_rows(scope, true).await
                }

                async fn watch_entries(
                    &mut self,
                    scope: Option<&[BorrowerId]>,
                ) -> StoreResult<Vec<WatchEntry>> {
                    self.scoped_rows(
                        concat!("SELECT borrower_id, indicator, value, rules_version, hit_at, review_id FROM watch_list WHERE cleared_at IS NULL", " ORDER BY hit_at DESC, borrower_id, indicator"),
                        concat!("SELECT borrower_id, indicator, value, rules_version, hit_at, review_id FROM watch_list WHERE cleared_at IS NULL AND borrower_id ", $in_ids, " ORDER BY hit_at DESC, borrower_id, indicator"),
                        scope,
                    )
                    .await?
                        .iter()
                        .map(watch_from_row)
                        .collect()
                }

                async fn insert_watch_entry(&mut self, entry: &WatchEntry) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "INSERT INTO watch_list (id, borrower_id, indicator, value, rules_version, \
                         hit_at, review_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (borrower_id, indicator) WHERE cleared_at IS NULL DO NOTHING",
                    )
                    .bind(id_arg(Uuid::now_v7()))
                    .bind(id_arg(entry.borrower_id))
                    .bind(&entry.indicator)
                    .bind(&entry.value)
                    .bind(entry.rules_version)
                    .bind(micros(entry.hit_at))
                    .bind(entry.review_id.map(id_arg))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn clear_watch_entry(
                    &mut self,
                    borrower: BorrowerId,
                    indicator: &str,
                    at: Timestamp,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE watch_list SET cleared_at = $3 \
                         WHERE borrower_id = $1 AND indicator = $2 AND cleared_at IS NULL",
                    )
                        .bind(id_arg(borrower))
                        .bind(indicator)
                        .bind(micros(at))
                        .execute(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    Ok(())
                }

                async fn insert_flag(&mut self, flag: &BorrowerFlag) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO borrower_flags (id, borrower_id, kind, reason, raised_by, \
                         raised_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id_arg(flag.id))
                    .bind(id_arg(flag.borrower_id))
                    .bind(flag.kind.as_str())
                    .bind(&flag.reason)
                    .bind(flag.raised_by.as_str())
                    .bind(micros(flag.raised_at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(())
                }

                async fn flag(&mut self, id: Uuid) -> StoreResult<Option<BorrowerFlag>> {
                    let sql = concat!("SELECT ", $crate::flag_columns!(), " FROM borrower_flags WHERE id = $1");
                    let row = sqlx::query(sql)
                        .bind(id_arg(id))
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    row.as_ref().map(flag_from_row).transpose()
                }

                async fn clear_flag(&mut self, flag: &BorrowerFlag) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE borrower_flags SET cleared_by = $2, cleared_at = $3 \
                         WHERE id = $1 AND cleared_at IS NULL",
                    )
                    .bind(id_arg(flag.id))
                    .bind(flag.cleared_by.as_ref().map(StaffId::as_str))
                    .bind(flag.cleared_at.map(micros))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict("the flag is cleared already".into()));
                    }
                    Ok(())
                }

                async fn flags_of(&mut self, borrower: BorrowerId) -> StoreResult<Vec<BorrowerFlag>> {
                    let sql = concat!("SELECT ", $crate::flag_columns!(), " FROM borrower_flags WHERE borrower_id = $1 \
                         ORDER BY raised_at DESC, id DESC LIMIT 200");
                    sqlx::query(sql)
                        .bind(id_arg(borrower))
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(flag_from_row)
                        .collect()
                }

                async fn insert_review(&mut self, review: &Review) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "INSERT INTO reviews (id, borrower_id, kind, reason, due_at, opened_at, \
                         assignee) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (borrower_id, kind) WHERE completed_at IS NULL DO NOTHING",
                    )
                    .bind(id_arg(review.id))
                    .bind(id_arg(review.borrower_id))
                    .bind(review.kind.as_str())
                    .bind(&review.reason)
                    .bind(micros(review.due_at))
                    .bind(micros(review.opened_at))
                    .bind(review.assignee.as_ref().map(StaffId::as_str))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn mark_review_overdue(
                    &mut self,
                    id: ReviewId,
                    at: Timestamp,
                ) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE reviews SET overdue_at = $2 \
                         WHERE id = $1 AND overdue_at IS NULL AND completed_at IS NULL",
                    )
                    .bind(id_arg(id))
                    .bind(micros(at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn review(&mut self, id: ReviewId) -> StoreResult<Option<Review>> {
                    let sql = concat!("SELECT ", $crate::review_columns!(), " FROM reviews WHERE id = $1");
                    let row = sqlx::query(sql)
                        .bind(id_arg(id))
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    row.as_ref().map(review_from_row).transpose()
                }

                async fn update_review(&mut self, review: &Review) -> StoreResult<()> {
                    let assessment = review.assessment.as_ref().map(to_json).transpose()?;
                    let done = sqlx::query(
                        "UPDATE reviews SET assignee = $2, overdue_at = $3, due_at = $4, \
                         completed_by = $5, completed_at = $6, assessment = $7 \
                         WHERE id = $1 AND completed_at IS NULL",
                    )
                    .bind(id_arg(review.id))
                    .bind(review.assignee.as_ref().map(StaffId::as_str))
                    .bind(review.overdue_at.map(micros))
                    .bind(micros(review.due_at))
                    .bind(review.completed_by.as_ref().map(StaffId::as_str))
                    .bind(review.completed_at.map(micros))
                    .bind(assessment)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict(
                            "the review was completed meanwhile".into(),
                        ));
                    }
                    Ok(())
                }

                async fn open_reviews(
                    &mut self,
                    borrower: Option<BorrowerId>,
                    limit: u32,
                ) -> StoreResult<Vec<Review>> {
                    let sql = concat!("SELECT ", $crate::review_columns!(), " FROM reviews WHERE completed_at IS NULL \
                         AND ($1 IS NULL OR borrower_id = $1) ORDER BY due_at, id LIMIT $2");
                    sqlx::query(sql)
                        .bind(borrower.map(id_arg))
                        .bind(i64::from(limit))
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(review_from_row)
                        .collect()
                }

                async fn reviews_of(
                    &mut self,
                    borrower: BorrowerId,
                    limit: u32,
                ) -> StoreResult<Vec<Review>> {
                    let sql = concat!("SELECT ", $crate::review_columns!(), " FROM reviews WHERE borrower_id = $1 \
                         ORDER BY opened_at DESC, id DESC LIMIT $2");
                    sqlx::query(sql)
                        .bind(id_arg(borrower))
                        .bind(i64::from(limit))
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(review_from_row)
                        .collect()
                }

                async fn last_completed_reviews(
                    &mut self,
                ) -> StoreResult<Vec<(BorrowerId, Timestamp)>> {
                    let rows = sqlx::query(
                        "SELECT borrower_id, MAX(completed_at) AS at FROM reviews \
                         WHERE completed_at IS NOT NULL GROUP BY borrower_id",
                    )
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    rows.iter()
                        .map(|row| {
                            Ok((BorrowerId::from_uuid(get_id(row, "borrower_id")?), get(row, "at")?))
                        })
                        .collect()
                }

                async fn insert_stage_transfer(
                    &mut self,
                    transfer: &StageTransfer,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO stage_transfers (id, borrower_id, from_stage, to_stage, \
                         reason, decided_by, decided_at, rules_version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(id_arg(transfer.id))
                    .bind(id_arg(transfer.borrower_id))
                    .bind(transfer.from_stage.as_str())
                    .bind(transfer.to_stage.as_str())
                    .bind(&transfer.reason)
                    .bind(transfer.decided_by.as_str())
                    .bind(micros(transfer.decided_at))
                    .bind(transfer.rules_version)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(conflict("the borrower's stage changed meanwhile"))?;
                    Ok(())
                }

                async fn current_stage(
                    &mut self,
                    borrower: BorrowerId,
                ) -> StoreResult<Option<StageTransfer>> {
                    let sql = concat!("SELECT ", $crate::stage_columns!(), " FROM stage_transfers WHERE borrower_id = $1 \
                         ORDER BY decided_at DESC, id DESC LIMIT 1");
                    let row = sqlx::query(sql)
                        .bind(id_arg(borrower))
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    row.as_ref().map(stage_from_row).transpose()
                }

                async fn stage_transfers_since(
                    &mut self,
                    borrower: BorrowerId,
                    since: Timestamp,
                ) -> StoreResult<Vec<StageTransfer>> {
                    let sql = concat!(
                        "SELECT ",
                        $crate::stage_columns!(),
                        " FROM stage_transfers WHERE borrower_id = $1 AND decided_at >= $2 \
                         ORDER BY decided_at, id"
                    );
                    sqlx::query(sql)
                        .bind(id_arg(borrower))
                        .bind(micros(since))
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(stage_from_row)
                        .collect()
                }

                async fn stages(&mut self) -> StoreResult<Vec<StageTransfer>> {
                    let sql = concat!("SELECT ", $crate::stage_columns!(), " FROM (SELECT ", $crate::stage_columns!(), ", ROW_NUMBER() OVER \
                         (PARTITION BY borrower_id ORDER BY decided_at DESC, id DESC) AS n \
                         FROM stage_transfers) s WHERE n = 1 AND to_stage <> 'normal' \
                         ORDER BY decided_at DESC, id DESC");
                    sqlx::query(sql)
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(stage_from_row)
                        .collect()
                }

                async fn insert_milestone(&mut self, m: &StoredMilestone) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO plan_milestones (id, borrower_id, transfer_id, ordinal, \
                         title, due_on, status, updated_by, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(id_arg(m.id))
                    .bind(id_arg(m.borrower_id))
                    .bind(id_arg(m.transfer_id))
                    .bind(m.ordinal)
                    .bind(&m.milestone.title)
                    .bind(m.milestone.due_on)
                    .bind(m.milestone.status.as_str())
                    .bind(m.updated_by.as_str())
                    .bind(micros(m.updated_at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(())
                }

                async fn milestone(&mut self, id: Uuid) -> StoreResult<Option<StoredMilestone>> {
                    let sql = concat!("SELECT ", $crate::milestone_columns!(), " FROM plan_milestones WHERE id = $1");
                    let row = sqlx::query(sql)
                        .bind(id_arg(id))
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    row.as_ref().map(milestone_from_row).transpose()
                }

                async fn update_milestone(
                    &mut self,
                    id: Uuid,
                    status: MilestoneStatus,
                    by: &StaffId,
                    at: Timestamp,
                ) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE plan_milestones SET status = $2, updated_by = $3, updated_at = $4 \
                         WHERE id = $1 AND status = 'open'",
                    )
                    .bind(id_arg(id))
                    .bind(status.as_str())
                    .bind(by.as_str())
                    .bind(micros(at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict(
                            "the milestone is not open any more".into(),
                        ));
                    }
                    Ok(())
                }

                async fn milestones(
                    &mut self,
                    borrower: Option<BorrowerId>,
                ) -> StoreResult<Vec<StoredMilestone>> {
                    // Only the plan of each borrower's newest transfer counts.
                    let sql = concat!("SELECT ", $crate::milestone_columns!(), " FROM plan_milestones m WHERE \
                         ($1 IS NULL OR m.borrower_id = $1) AND m.transfer_id = \
                         (SELECT t.id FROM stage_transfers t WHERE t.borrower_id = m.borrower_id \
                         ORDER BY t.decided_at DESC, t.id DESC LIMIT 1) \
                         ORDER BY m.due_on, m.borrower_id, m.ordinal LIMIT 5000");
                    sqlx::query(sql)
                        .bind(borrower.map(id_arg))
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(milestone_from_row)
                        .collect()
                }

                async fn insert_provision(&mut self, p: &Provision) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO provisions (id, borrower_id, credit_id, amount_minor, \
                         currency, reason, method, status, proposed_by, proposed_at, board_alert) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(id_arg(p.id))
                    .bind(id_arg(p.borrower_id))
                    .bind(p.credit_id.map(id_arg))
                    .bind(p.amount.minor_units())
                    .bind(p.amount.currency_code())
                    .bind(&p.reason)
                    .bind(&p.method)
                    .bind(p.status.as_str())
                    .bind(p.proposed_by.as_str())
                    .bind(micros(p.proposed_at))
                    .bind(p.board_alert)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(())
                }

                async fn provision(&mut self, id: ProvisionId) -> StoreResult<Option<Provision>> {
                    let sql = concat!("SELECT ", $crate::provision_columns!(), " FROM provisions WHERE id = $1");
                    let row = sqlx::query(sql)
                        .bind(id_arg(id))
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    row.as_ref().map(provision_from_row).transpose()
                }

                async fn decide_provision(&mut self, p: &Provision) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE provisions SET status = $2, decided_by = $3, decided_at = $4 \
                         WHERE id = $1 AND status = 'proposed'",
                    )
                    .bind(id_arg(p.id))
                    .bind(p.status.as_str())
                    .bind(p.decided_by.as_ref().map(StaffId::as_str))
                    .bind(p.decided_at.map(micros))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict(
                            "the provision was decided meanwhile".into(),
                        ));
                    }
                    Ok(())
                }

                async fn provisions(
                    &mut self,
                    borrower: Option<BorrowerId>,
                    limit: u32,
                ) -> StoreResult<Vec<Provision>> {
                    let sql = concat!("SELECT ", $crate::provision_columns!(), " FROM provisions \
                         WHERE ($1 IS NULL OR borrower_id = $1) \
                         ORDER BY proposed_at DESC, id DESC LIMIT $2");
                    sqlx::query(sql)
                        .bind(borrower.map(id_arg))
                        .bind(i64::from(limit))
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?
                        .iter()
                        .map(provision_from_row)
                        .collect()
                }

                async fn approved_provisions(
                    &mut self,
                ) -> StoreResult<Vec<(BorrowerId, Money)>> {
                    let rows = sqlx::query(
                        "SELECT borrower_id, currency, CAST(SUM(amount_minor) AS BIGINT) AS total FROM provisions \
                         WHERE status = 'approved' GROUP BY borrower_id, currency",
                    )
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    rows.iter()
                        .map(|row| {
                            Ok((
                                BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                                money(get::<i64>(row, "total")?, &get::<String>(row, "currency")?)?,
                            ))
                        })
                        .collect()
                }

                async fn insert_monitoring_alert(
                    &mut self,
                    alert: &MonitoringAlert,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO monitoring_alerts (id, kind, borrower_id, subject_id, \
                         audience, detail, raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(id_arg(alert.id))
                    .bind(&alert.kind)
                    .bind(id_arg(alert.borrower_id))
                    .bind(id_arg(alert.subject_id))
                    .bind(&alert.audience)
                    .bind(&alert.detail)
                    .bind(micros(alert.raised_at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(())
                }

                async fn monitoring_alerts(
                    &mut self,
                    limit: u32,
                ) -> StoreResult<Vec<MonitoringAlert>> {
                    let rows = sqlx::query(
                        "SELECT id, kind, borrower_id, subject_id, audience, detail, raised_at \
                         FROM monitoring_alerts ORDER BY raised_at DESC, id DESC LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    rows.iter()
                        .map(|row| {
                            Ok(MonitoringAlert {
                                id: get_id(row, "id")?,
                                kind: get(row, "kind")?,
                                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                                subject_id: get_id(row, "subject_id")?,
                                audience: get(row, "audience")?,
                                detail: get(row, "detail")?,
                                raised_at: get(row, "raised_at")?,
                            })
                        })
                        .collect()
                }
            }
        }
    };
}

/// The early-warning inputs, one part per source, in the columns `part,
/// borrower_id, item, a, b, n, kind, value, at`: the two newest effective
/// valuations of each active collateral item, the worst arrears per
/// borrower, the two newest ratings back office set, the open flags, and
/// `$watch` (see [`early_warning_watch_sql`], or nothing). `$of_collateral`
/// and `$of_borrower` narrow the parts to the bound borrowers (empty for
/// all). The valuations come first, so that PostgreSQL types each column
/// from a branch that has a value in it; the other parts name their
/// borrower as the item, since an untyped NULL beside a grouping would be
/// typed text, and the columns only the watch list fills are cast.
#[doc(hidden)]
#[macro_export]
macro_rules! early_warning_sql {
    ($of_collateral:expr, $of_borrower:expr, $watch:expr) => {
        concat!(
            "SELECT 'valuation' AS part, c.borrower_id, v.collateral_id AS item, v.value_minor AS a, NULL AS b, v.n, NULL AS kind, CAST(NULL AS TEXT) AS value, CAST(NULL AS TIMESTAMPTZ) AS at FROM (SELECT collateral_id, value_minor, ROW_NUMBER() OVER (PARTITION BY collateral_id ORDER BY valuation_date DESC, recorded_at DESC, id DESC) AS n FROM collateral_valuations WHERE status = 'effective') v JOIN collateral c ON c.id = v.collateral_id WHERE v.n <= 2 AND c.status = 'active'", $of_collateral,
            " UNION ALL SELECT 'arrears', borrower_id, borrower_id, MAX(days_past_due), MAX(overdrawn_days), CAST(0 AS BIGINT), NULL, CAST(NULL AS TEXT), CAST(NULL AS TIMESTAMPTZ) FROM imported_balances WHERE (days_past_due IS NOT NULL OR overdrawn_days IS NOT NULL)", $of_borrower, " GROUP BY borrower_id",
            " UNION ALL SELECT 'rating', borrower_id, borrower_id, CAST(class AS BIGINT), NULL, n, NULL, CAST(NULL AS TEXT), CAST(NULL AS TIMESTAMPTZ) FROM (SELECT borrower_id, class, ROW_NUMBER() OVER (PARTITION BY borrower_id ORDER BY rated_at DESC, class DESC) AS n FROM ratings WHERE status = 'set'", $of_borrower, ") r WHERE n <= 2",
            " UNION ALL SELECT 'flag', borrower_id, borrower_id, NULL, NULL, CAST(0 AS BIGINT), kind, CAST(NULL AS TEXT), CAST(NULL AS TIMESTAMPTZ) FROM borrower_flags WHERE cleared_at IS NULL", $of_borrower,
            $watch,
            " ORDER BY part, borrower_id, item, n"
        )
    };
}

/// The watch list's part of [`early_warning_sql`]: the entries not cleared,
/// narrowed by `$of_borrower` (empty for all).
#[doc(hidden)]
#[macro_export]
macro_rules! early_warning_watch_sql {
    ($of_borrower:expr) => {
        concat!(
            " UNION ALL SELECT 'watch', w.borrower_id, w.review_id, w.rules_version, NULL, CAST(0 AS BIGINT), w.indicator, w.value, w.hit_at FROM watch_list AS w WHERE w.cleared_at IS NULL",
            $of_borrower
        )
    };
}
