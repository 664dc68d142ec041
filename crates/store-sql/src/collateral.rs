//! The collateral register (L3), shared: items, valuations, legal checks.

use crate::convert::StoredId;
use creditops_domain::{CollateralId, ValuationId};
use uuid::Uuid;

impl StoredId for CollateralId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

impl StoredId for ValuationId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

/// What the expansion of [`collateral_tx!`] names besides the prelude.
#[doc(hidden)]
pub mod deps {
    pub use chrono::NaiveDate;
    pub use creditops_domain::collateral::{
        Collateral, CollateralKind, CollateralPosition, LegalCheck, Valuation,
    };
    pub use creditops_domain::{CollateralId, ValuationId};
}

/// Columns of `collateral` as `collateral_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! collateral_columns {
    () => {
        "id, borrower_id, kind, nominal_minor, currency, description, status, registered_by, \
         registered_at"
    };
}

/// Columns of `collateral_valuations` as `valuation_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! valuation_columns {
    () => {
        "id, collateral_id, value_minor, currency, valuation_date, valuer, method, side, status, \
         recorded_by, recorded_at, confirmed_by, confirmed_at"
    };
}

/// Expands `CollateralTx` for `$ty` (in a module of its own, so its row
/// mappings stay private to it).
#[macro_export]
macro_rules! collateral_tx {
    ($ty:ident) => {
        mod collateral_sql {
            use super::*;
            use $crate::collateral::deps::*;

            fn collateral_from_row(row: &DbRow) -> StoreResult<Collateral> {
                Ok(Collateral {
                    id: CollateralId::from_uuid(get_id(row, "id")?),
                    borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                    kind: parse_text(&get::<String>(row, "kind")?, "collateral kind")?,
                    nominal: money(
                        get::<i64>(row, "nominal_minor")?,
                        &get::<String>(row, "currency")?,
                    )?,
                    description: get(row, "description")?,
                    status: parse_text(&get::<String>(row, "status")?, "collateral status")?,
                    registered_by: get_staff(row, "registered_by")?,
                    registered_at: get(row, "registered_at")?,
                })
            }

            fn valuation_from_row(row: &DbRow) -> StoreResult<Valuation> {
                Ok(Valuation {
                    id: ValuationId::from_uuid(get_id(row, "id")?),
                    collateral_id: CollateralId::from_uuid(get_id(row, "collateral_id")?),
                    value: money(
                        get::<i64>(row, "value_minor")?,
                        &get::<String>(row, "currency")?,
                    )?,
                    valuation_date: get::<NaiveDate>(row, "valuation_date")?,
                    valuer: get(row, "valuer")?,
                    method: get(row, "method")?,
                    side: parse_text(&get::<String>(row, "side")?, "side")?,
                    status: parse_text(&get::<String>(row, "status")?, "valuation status")?,
                    recorded_by: get_staff(row, "recorded_by")?,
                    recorded_at: get(row, "recorded_at")?,
                    confirmed_by: get_opt_staff(row, "confirmed_by")?,
                    confirmed_at: get(row, "confirmed_at")?,
                })
            }

            fn legal_check_from_row(row: &DbRow) -> StoreResult<LegalCheck> {
                Ok(LegalCheck {
                    collateral_id: CollateralId::from_uuid(get_id(row, "collateral_id")?),
                    result: parse_text(&get::<String>(row, "result")?, "legal check result")?,
                    note: get(row, "note")?,
                    checked_by: get_staff(row, "checked_by")?,
                    checked_at: get(row, "checked_at")?,
                })
            }

            impl $ty {
                async fn latest_valuation(
                    &mut self,
                    id: CollateralId,
                    status: &str,
                ) -> StoreResult<Option<Valuation>> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        $crate::valuation_columns!(),
                        " FROM collateral_valuations WHERE collateral_id = $1 AND status = $2 \
                         ORDER BY valuation_date DESC, recorded_at DESC, id DESC LIMIT 1"
                    ))
                    .bind(id_arg(id))
                    .bind(status)
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    row.as_ref().map(valuation_from_row).transpose()
                }

                async fn position_of(
                    &mut self,
                    collateral: Collateral,
                ) -> StoreResult<CollateralPosition> {
                    let id = collateral.id;
                    let effective = self.latest_valuation(id, "effective").await?;
                    // The latest pending proposal (by recording time).
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        $crate::valuation_columns!(),
                        " FROM collateral_valuations WHERE collateral_id = $1 \
                         AND status = 'proposed' ORDER BY recorded_at DESC, id DESC LIMIT 1"
                    ))
                    .bind(id_arg(id))
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    let proposed = row.as_ref().map(valuation_from_row).transpose()?;
                    let row = sqlx::query(
                        "SELECT collateral_id, result, note, checked_by, checked_at \
                         FROM collateral_legal_checks WHERE collateral_id = $1 \
                         ORDER BY checked_at DESC, id DESC LIMIT 1",
                    )
                    .bind(id_arg(id))
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    let legal_check = row.as_ref().map(legal_check_from_row).transpose()?;
                    Ok(CollateralPosition {
                        collateral,
                        effective,
                        proposed,
                        legal_check,
                    })
                }
            }

            #[$crate::async_trait]
            impl CollateralTx for $ty {
                async fn insert_collateral(&mut self, item: &Collateral) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO collateral (id, borrower_id, kind, nominal_minor, currency, \
                         description, status, registered_by, registered_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(id_arg(item.id))
                    .bind(id_arg(item.borrower_id))
                    .bind(item.kind.as_str())
                    .bind(item.nominal.minor_units())
                    .bind(item.nominal.currency_code())
                    .bind(&item.description)
                    .bind(item.status.as_str())
                    .bind(item.registered_by.as_str())
                    .bind(micros(item.registered_at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| {
                        conflict_as(map_sqlx_error(e), "a collateral item with this id exists already")
                    })?;
                    Ok(())
                }

                async fn collateral(
                    &mut self,
                    id: CollateralId,
                ) -> StoreResult<Option<Collateral>> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        $crate::collateral_columns!(),
                        " FROM collateral WHERE id = $1"
                    ))
                    .bind(id_arg(id))
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    row.as_ref().map(collateral_from_row).transpose()
                }

                async fn insert_valuation(&mut self, v: &Valuation) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO collateral_valuations (id, collateral_id, value_minor, \
                         currency, valuation_date, valuer, method, side, status, recorded_by, \
                         recorded_at, confirmed_by, confirmed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    )
                    .bind(id_arg(v.id))
                    .bind(id_arg(v.collateral_id))
                    .bind(v.value.minor_units())
                    .bind(v.value.currency_code())
                    .bind(v.valuation_date)
                    .bind(&v.valuer)
                    .bind(&v.method)
                    .bind(v.side.as_str())
                    .bind(v.status.as_str())
                    .bind(v.recorded_by.as_str())
                    .bind(micros(v.recorded_at))
                    .bind(v.confirmed_by.as_ref().map(StaffId::as_str))
                    .bind(v.confirmed_at.map(micros))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| {
                        conflict_as(map_sqlx_error(e), "a valuation with this id exists already")
                    })?;
                    Ok(())
                }

                async fn valuation(&mut self, id: ValuationId) -> StoreResult<Option<Valuation>> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        $crate::valuation_columns!(),
                        " FROM collateral_valuations WHERE id = $1"
                    ))
                    .bind(id_arg(id))
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    row.as_ref().map(valuation_from_row).transpose()
                }

                async fn confirm_valuation(
                    &mut self,
                    id: ValuationId,
                    by: &StaffId,
                    at: Timestamp,
                ) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE collateral_valuations SET status = 'effective', \
                         confirmed_by = $2, confirmed_at = $3 \
                         WHERE id = $1 AND status = 'proposed'",
                    )
                    .bind(id_arg(id))
                    .bind(by.as_str())
                    .bind(micros(at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if done.rows_affected() == 1 {
                        return Ok(());
                    }
                    match self.valuation(id).await? {
                        None => Err(StoreError::NotFound("valuation".into())),
                        Some(_) => Err(StoreError::Conflict(
                            "the valuation is effective already".into(),
                        )),
                    }
                }

                async fn insert_legal_check(&mut self, check: &LegalCheck) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO collateral_legal_checks (id, collateral_id, result, note, \
                         checked_by, checked_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id_arg(Uuid::now_v7()))
                    .bind(id_arg(check.collateral_id))
                    .bind(check.result.as_str())
                    .bind(&check.note)
                    .bind(check.checked_by.as_str())
                    .bind(micros(check.checked_at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    Ok(())
                }

                async fn collateral_position(
                    &mut self,
                    id: CollateralId,
                ) -> StoreResult<Option<CollateralPosition>> {
                    match self.collateral(id).await? {
                        Some(item) => Ok(Some(self.position_of(item).await?)),
                        None => Ok(None),
                    }
                }

                async fn active_collateral_of(
                    &mut self,
                    borrower: BorrowerId,
                ) -> StoreResult<Vec<CollateralPosition>> {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        $crate::collateral_columns!(),
                        " FROM collateral WHERE borrower_id = $1 AND status = 'active' \
                         ORDER BY id"
                    ))
                    .bind(id_arg(borrower))
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    let items = rows
                        .iter()
                        .map(collateral_from_row)
                        .collect::<StoreResult<Vec<_>>>()?;
                    let mut positions = Vec::with_capacity(items.len());
                    for item in items {
                        positions.push(self.position_of(item).await?);
                    }
                    Ok(positions)
                }

                async fn revaluation_candidates(
                    &mut self,
                    cutoffs: &[(CollateralKind, NaiveDate)],
                    limit: u32,
                ) -> StoreResult<Vec<CollateralPosition>> {
                    let mut found: Vec<(Option<NaiveDate>, Uuid)> = Vec::new();
                    for (kind, cutoff) in cutoffs {
                        let rows = sqlx::query(
                            "SELECT id, last_valued FROM (SELECT c.id AS id, \
                             (SELECT MAX(v.valuation_date) FROM collateral_valuations v \
                             WHERE v.collateral_id = c.id AND v.status = 'effective') \
                             AS last_valued FROM collateral c \
                             WHERE c.status = 'active' AND c.kind = $1) t \
                             WHERE last_valued IS NULL OR last_valued <= $2 \
                             ORDER BY last_valued ASC NULLS FIRST, id LIMIT $3",
                        )
                        .bind(kind.as_str())
                        .bind(*cutoff)
                        .bind(int_arg(i64::from(limit))?)
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                        for row in &rows {
                            found.push((get::<Option<NaiveDate>>(row, "last_valued")?, get_id(row, "id")?));
                        }
                    }
                    found.sort();
                    found.truncate(limit as usize);
                    let mut positions = Vec::with_capacity(found.len());
                    for (_, id) in found {
                        let item = self
                            .collateral(CollateralId::from_uuid(id))
                            .await?
                            .ok_or_else(|| corrupt("a listed collateral item vanished"))?;
                        positions.push(self.position_of(item).await?);
                    }
                    Ok(positions)
                }

                async fn release_collateral(
                    &mut self,
                    id: CollateralId,
                    by: &StaffId,
                    at: Timestamp,
                ) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE collateral SET status = 'released', released_by = $2, \
                         released_at = $3 WHERE id = $1 AND status = 'active'",
                    )
                    .bind(id_arg(id))
                    .bind(by.as_str())
                    .bind(micros(at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if done.rows_affected() == 1 {
                        return Ok(());
                    }
                    match self.collateral(id).await? {
                        None => Err(StoreError::NotFound("collateral".into())),
                        Some(_) => Err(StoreError::Conflict(
                            "the collateral is released already".into(),
                        )),
                    }
                }
            }
        }
    };
}
