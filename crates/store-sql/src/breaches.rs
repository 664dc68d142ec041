//! Limit breaches (R7), shared.

/// Expands `BreachTx` for `$ty`.
#[macro_export]
macro_rules! breach_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl BreachTx for $ty {
            async fn insert_breach(&mut self, breach: &Breach) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO breaches (id, subject, rule, check_name, limit_value, \
                     usage_value, \
                     amount_over, severity, cause, owner, detected_at, resolved_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(id_arg(breach.id))
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
                .map_err(conflict("a breach with this id exists already"))?;
                Ok(())
            }

            async fn open_breaches(&mut self) -> StoreResult<Vec<Breach>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::breach_columns!(),
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
                .bind(id_arg(id))
                .bind(micros(at))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if done.rows_affected() == 0 {
                    let found: bool =
                        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM breaches WHERE id = $1)")
                            .bind(id_arg(id))
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
                    $crate::breach_columns!(),
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

            async fn breach_page(&mut self, page: &BreachPage) -> StoreResult<Vec<Breach>> {
                let mut query = QueryBuilder::<Db>::new(concat!(
                    "SELECT ",
                    $crate::breach_columns!(),
                    " FROM breaches WHERE 1 = 1"
                ));
                if page.open_only {
                    query.push(" AND resolved_at IS NULL");
                }
                if let Some(after) = page.after {
                    query.push(" AND id > ").push_bind(id_arg(after));
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(page.limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(breach_from_row).collect()
            }
        }
    };
}
