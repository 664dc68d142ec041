//! Reservations and imported balances (R2, R5), shared.

/// Expands `ExposureTx` for `$ty`. `$lock_row` ends the statement that
/// reads an imported balance back (a row lock where writers are not
/// serial). The backend provides `dialect_exposures` and
/// `dialect_exposure_total` (statements shaped for its planner).
#[macro_export]
macro_rules! exposure_tx {
    ($ty:ty, lock_row = $lock_row:literal) => {
        /// Binds a reservation's columns as `$1` to `$8`, in the order
        /// `insert_reservation` names them.
        pub(crate) fn bind_reservation<'q>(
            query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
            reservation: &'q Reservation,
        ) -> StoreResult<sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>> {
            Ok(query
                .bind(id_arg(reservation.case_id))
                .bind(id_arg(reservation.borrower))
                .bind(to_minor(reservation.amount)?)
                .bind(reservation.status.as_str())
                .bind(micros(reservation.reserved_at))
                .bind(micros(reservation.expires_at))
                .bind(reservation.closed_at.map(micros))
                .bind(reservation.closed_by.as_ref().map(StaffId::as_str)))
        }

        #[$crate::async_trait]
        impl ExposureTx for $ty {
            async fn exposures(
                &mut self,
                scope: &ExposureScope,
                at: Timestamp,
            ) -> StoreResult<Vec<BorrowerExposure>> {
                self.dialect_exposures(scope, at).await
            }

            async fn exposure_total(
                &mut self,
                scope: &ExposureScope,
                at: Timestamp,
            ) -> StoreResult<Decimal> {
                self.dialect_exposure_total(scope, at).await
            }

            async fn insert_reservation(&mut self, reservation: &Reservation) -> StoreResult<()> {
                bind_reservation(
                    sqlx::query(
                        "INSERT INTO reservations (case_id, borrower_id, amount_minor, status, \
                         reserved_at, expires_at, closed_at, closed_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    ),
                    reservation,
                )?
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("the case holds a reservation already"))?;
                Ok(())
            }

            async fn reservation(&mut self, case: CaseId) -> StoreResult<Option<Reservation>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::reservation_columns!(),
                    " FROM reservations WHERE case_id = $1"
                ))
                .bind(id_arg(case))
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
                let case_id = id_arg(reservation.case_id);
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
                    let found: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM reservations WHERE case_id = $1)",
                    )
                    .bind(&case_id)
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
                    $crate::reservation_columns!(),
                    " FROM reservations WHERE status = 'active' AND expires_at <= $1 \
                     ORDER BY expires_at, case_id"
                ))
                .bind(micros(at))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter().map(reservation_from_row).collect()
            }

            /// Nobody imports the same record in between the insert attempt and the
            /// comparison: writers are serial, or the read back locks the row.
            async fn import_balance(
                &mut self,
                balance: &ImportedBalance,
            ) -> StoreResult<ImportEffect> {
                let amount = to_minor(balance.amount)?;
                let as_of = micros(balance.as_of);
                let imported_at = micros(chrono::Utc::now());
                let borrower_id = id_arg(balance.borrower);
                let days_past_due = balance.days_past_due.map(i64::from);
                let overdrawn_days = balance.overdrawn_days.map(i64::from);
                let inserted = sqlx::query(
                    "INSERT INTO imported_balances (source_id, borrower_id, amount_minor, as_of, \
                     imported_at, days_past_due, overdrawn_days) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source_id) DO NOTHING",
                )
                .bind(&balance.source_id)
                .bind(&borrower_id)
                .bind(amount)
                .bind(as_of)
                .bind(imported_at)
                .bind(days_past_due)
                .bind(overdrawn_days)
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if inserted.rows_affected() > 0 {
                    return Ok(ImportEffect::Inserted);
                }
                type Stored = (DbId, i64, Timestamp, Option<i64>, Option<i64>);
                let (stored_borrower, stored_amount, stored_as_of, stored_due, stored_over): Stored =
                    sqlx::query_as(concat!(
                        "SELECT borrower_id, amount_minor, as_of, days_past_due, overdrawn_days \
                         FROM imported_balances WHERE source_id = $1",
                        $lock_row
                    ))
                    .bind(&balance.source_id)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                if id_of(stored_borrower)? == balance.borrower.as_uuid()
                    && stored_amount == amount
                    && stored_as_of == as_of
                    && stored_due == days_past_due
                    && stored_over == overdrawn_days
                {
                    return Ok(ImportEffect::Unchanged);
                }
                sqlx::query(
                    "UPDATE imported_balances SET borrower_id = $2, amount_minor = $3, as_of = $4, \
                     imported_at = $5, days_past_due = $6, overdrawn_days = $7 \
                     WHERE source_id = $1",
                )
                .bind(&balance.source_id)
                .bind(&borrower_id)
                .bind(amount)
                .bind(as_of)
                .bind(imported_at)
                .bind(days_past_due)
                .bind(overdrawn_days)
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(ImportEffect::Updated)
            }
        }
    };
}
