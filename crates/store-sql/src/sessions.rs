//! Web console sessions (issue 19), shared.

/// Expands `SessionTx` for `$ty`.
#[macro_export]
macro_rules! session_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl SessionTx for $ty {
            async fn insert_console_session(&mut self, session: &ConsoleSession) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO console_sessions (token_hash, service, staff_id, csrf_token, \
                     created_at, last_seen_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&session.token_hash)
                .bind(&session.service)
                .bind(session.staff_id.as_str())
                .bind(&session.csrf_token)
                .bind(micros(session.created_at))
                .bind(micros(session.last_seen_at))
                .bind(session.ended_at.map(micros))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a console session with this token exists already"))?;
                Ok(())
            }

            async fn console_session(
                &mut self,
                token_hash: &str,
            ) -> StoreResult<Option<ConsoleSession>> {
                let row = sqlx::query(
                    "SELECT token_hash, service, staff_id, csrf_token, created_at, last_seen_at, \
                     ended_at FROM console_sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.map(|row| {
                    let staff_id: String = get(&row, "staff_id")?;
                    Ok(ConsoleSession {
                        token_hash: get(&row, "token_hash")?,
                        service: get(&row, "service")?,
                        staff_id: StaffId::parse(&staff_id)
                            .map_err(|_| corrupt("a console session names no valid staff id"))?,
                        csrf_token: get(&row, "csrf_token")?,
                        created_at: get(&row, "created_at")?,
                        last_seen_at: get(&row, "last_seen_at")?,
                        ended_at: get(&row, "ended_at")?,
                    })
                })
                .transpose()
            }

            async fn touch_console_session(
                &mut self,
                token_hash: &str,
                at: Timestamp,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE console_sessions SET last_seen_at = $2 \
                     WHERE token_hash = $1 AND ended_at IS NULL",
                )
                .bind(token_hash)
                .bind(micros(at))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn end_console_session(
                &mut self,
                token_hash: &str,
                at: Timestamp,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE console_sessions SET ended_at = $2 \
                     WHERE token_hash = $1 AND ended_at IS NULL",
                )
                .bind(token_hash)
                .bind(micros(at))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }
        }
    };
}
