//! Stored responses of idempotent requests (V10), shared.

/// Expands `IdempotencyTx` for `$ty`.
#[macro_export]
macro_rules! idempotency_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl IdempotencyTx for $ty {
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
                    let status = get_int(&row, "status")?;
                    Ok(StoredResponse {
                        request_hash: get(&row, "request_hash")?,
                        status: u16::try_from(status)
                            .map_err(|_| corrupt("HTTP status out of range"))?,
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
                    "INSERT INTO idempotency_keys (actor, operation, key, request_hash, status, \
                     body, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(scope.actor.as_str())
                .bind(&scope.operation)
                .bind(&scope.key)
                .bind(&response.request_hash)
                .bind(int_arg(i64::from(response.status))?)
                .bind(&response.body)
                .bind(micros(response.created_at))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict(
                    "a response for this idempotency key exists already",
                ))?;
                Ok(())
            }
        }
    };
}
