//! Approved credits with their versions (L1) and ratings (L4), shared.

/// Columns of `credits` / `credit_versions` as `credit_from_row` reads them
/// (`credit_versions` has `decided_at` for both times, aliased).
#[doc(hidden)]
#[macro_export]
macro_rules! credit_columns {
    () => {
        "id, borrower_id, version, amount_minor, currency, product, term_months, purpose, \
         case_id, kind, created_at, updated_at"
    };
}

/// Columns of `ratings` as `rating_from_row` reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! rating_columns {
    () => {
        "borrower_id, class, pd, method, reason, status, rated_by, rated_at, rules_version"
    };
}

/// The insert of a new credit's row, its twelve columns bound as `$1` to
/// `$12`.
#[doc(hidden)]
#[macro_export]
macro_rules! new_credit_sql {
    () => {
        "INSERT INTO credits (id, borrower_id, version, amount_minor, currency, product, \
         term_months, purpose, case_id, kind, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    };
}

/// The new credit's row and its first version in one statement, for a
/// dialect that writes from a `WITH` clause: the version row is what the
/// credit row returns, so the two cannot differ.
#[doc(hidden)]
#[macro_export]
macro_rules! new_credit_with_version_sql {
    () => {
        concat!(
            "WITH credit AS (",
            $crate::new_credit_sql!(),
            " RETURNING id, version, amount_minor, currency, product, term_months, purpose, \
             case_id, kind, updated_at) \
             INSERT INTO credit_versions (credit_id, version, amount_minor, currency, product, \
             term_months, purpose, case_id, kind, decided_at) SELECT id, version, amount_minor, \
             currency, product, term_months, purpose, case_id, kind, updated_at FROM credit"
        )
    };
}

/// Expands `GrantingTx` for `$ty`. `$new_credit` writes a new credit, bound
/// as [`new_credit_sql`] binds it; with `version_apart = true` its first
/// version is written by a statement of its own next.
#[macro_export]
macro_rules! granting_tx {
    ($ty:ty, new_credit = $new_credit:expr, version_apart = $version_apart:literal) => {
        impl $ty {
            async fn insert_credit_version(&mut self, credit: &Credit) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO credit_versions (credit_id, version, amount_minor, currency, \
                     product, term_months, purpose, case_id, kind, decided_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id_arg(credit.id))
                .bind(credit.version)
                .bind(credit.amount.minor_units())
                .bind(credit.amount.currency_code())
                .bind(&credit.product)
                .bind(int_arg(i64::from(credit.term_months))?)
                .bind(&credit.purpose)
                .bind(id_arg(credit.case_id))
                .bind(credit.kind.as_str())
                .bind(micros(credit.updated_at))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("this credit version or case is recorded already"))?;
                Ok(())
            }
        }

        fn credit_from_row(row: &DbRow) -> StoreResult<Credit> {
            Ok(Credit {
                id: CreditId::from_uuid(get_id(row, "id")?),
                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                version: get(row, "version")?,
                amount: money(get(row, "amount_minor")?, &get::<String>(row, "currency")?)?,
                product: get(row, "product")?,
                term_months: u32::try_from(get_int(row, "term_months")?)
                    .map_err(|_| corrupt("a credit's term is out of range"))?,
                purpose: get(row, "purpose")?,
                case_id: CaseId::from_uuid(get_id(row, "case_id")?),
                kind: parse_text(&get::<String>(row, "kind")?, "decision kind")?,
                created_at: get(row, "created_at")?,
                updated_at: get(row, "updated_at")?,
            })
        }

        fn rating_from_row(row: &DbRow) -> StoreResult<Rating> {
            Ok(Rating {
                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                class: u8::try_from(get_int(row, "class")?)
                    .map_err(|_| corrupt("a rating class is out of range"))?,
                pd: parse_text(&get::<String>(row, "pd")?, "probability of default")?,
                method: get(row, "method")?,
                reason: get(row, "reason")?,
                status: parse_text(&get::<String>(row, "status")?, "rating status")?,
                rated_by: get_staff(row, "rated_by")?,
                rated_at: get(row, "rated_at")?,
                rules_version: get(row, "rules_version")?,
            })
        }

        #[$crate::async_trait]
        impl GrantingTx for $ty {
            async fn insert_credit(&mut self, credit: &Credit) -> StoreResult<()> {
                if credit.version != 1 {
                    return Err(invariant("a new credit starts at version 1"));
                }
                sqlx::query($new_credit)
                    .bind(id_arg(credit.id))
                    .bind(id_arg(credit.borrower_id))
                    .bind(credit.version)
                    .bind(credit.amount.minor_units())
                    .bind(credit.amount.currency_code())
                    .bind(&credit.product)
                    .bind(int_arg(i64::from(credit.term_months))?)
                    .bind(&credit.purpose)
                    .bind(id_arg(credit.case_id))
                    .bind(credit.kind.as_str())
                    .bind(micros(credit.created_at))
                    .bind(micros(credit.updated_at))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(conflict(
                        "a credit with this id, or a credit version of its case, is recorded already",
                    ))?;
                if $version_apart {
                    self.insert_credit_version(credit).await?;
                }
                Ok(())
            }

            async fn update_credit(&mut self, credit: &Credit) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE credits SET version = $2, amount_minor = $3, product = $4, \
                     term_months = $5, purpose = $6, case_id = $7, kind = $8, updated_at = $9 \
                     WHERE id = $1 AND version = $2 - 1 AND currency = $10",
                )
                .bind(id_arg(credit.id))
                .bind(credit.version)
                .bind(credit.amount.minor_units())
                .bind(&credit.product)
                .bind(int_arg(i64::from(credit.term_months))?)
                .bind(&credit.purpose)
                .bind(id_arg(credit.case_id))
                .bind(credit.kind.as_str())
                .bind(micros(credit.updated_at))
                .bind(credit.amount.currency_code())
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(
                        "the credit was changed by another decision; open a new case on it".into(),
                    ));
                }
                self.insert_credit_version(credit).await
            }

            async fn credit(&mut self, id: CreditId) -> StoreResult<Option<Credit>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::credit_columns!(),
                    " FROM credits WHERE id = $1"
                ))
                .bind(id_arg(id))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(credit_from_row).transpose()
            }

            async fn credit_versions(&mut self, id: CreditId) -> StoreResult<Vec<Credit>> {
                let rows = sqlx::query(
                    "SELECT v.credit_id AS id, c.borrower_id, v.version, v.amount_minor, \
                     v.currency, v.product, v.term_months, v.purpose, v.case_id, v.kind, \
                     c.created_at, v.decided_at AS updated_at \
                     FROM credit_versions AS v JOIN credits AS c ON c.id = v.credit_id \
                     WHERE v.credit_id = $1 ORDER BY v.version",
                )
                .bind(id_arg(id))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter().map(credit_from_row).collect()
            }

            async fn credits_of(&mut self, borrower: BorrowerId) -> StoreResult<Vec<Credit>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::credit_columns!(),
                    " FROM credits WHERE borrower_id = $1 ORDER BY created_at, id"
                ))
                .bind(id_arg(borrower))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter().map(credit_from_row).collect()
            }

            async fn insert_rating(&mut self, rating: &Rating) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO ratings (id, borrower_id, class, pd, method, reason, status, \
                     rated_by, rated_at, rules_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id_arg(Uuid::now_v7()))
                .bind(id_arg(rating.borrower_id))
                .bind(int_arg(i64::from(rating.class))?)
                .bind(rating.pd.to_string())
                .bind(&rating.method)
                .bind(&rating.reason)
                .bind(rating.status.as_str())
                .bind(rating.rated_by.as_str())
                .bind(micros(rating.rated_at))
                .bind(rating.rules_version)
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn current_rating(
                &mut self,
                borrower: BorrowerId,
            ) -> StoreResult<Option<Rating>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::rating_columns!(),
                    " FROM ratings WHERE borrower_id = $1 AND status = 'set' \
                     ORDER BY rated_at DESC, id DESC LIMIT 1"
                ))
                .bind(id_arg(borrower))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(rating_from_row).transpose()
            }

            async fn ratings(
                &mut self,
                borrower: BorrowerId,
                limit: u32,
            ) -> StoreResult<Vec<Rating>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::rating_columns!(),
                    " FROM ratings WHERE borrower_id = $1 ORDER BY rated_at DESC, id DESC LIMIT $2"
                ))
                .bind(id_arg(borrower))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter().map(rating_from_row).collect()
            }
        }
    };
}
