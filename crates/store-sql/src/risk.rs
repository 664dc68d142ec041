//! Capital, liquidity positions and the committed outflows (R3, R6), shared.

/// Expands `RiskTx` for `$ty`. The backend provides the locks
/// (`dialect_lock_risk`, `dialect_lock_risk_shared`,
/// `dialect_lock_risk_subjects`) and the liquidity reads and claims
/// (`dialect_liquidity_now`, `dialect_capital_and_liquidity`,
/// `dialect_settle_liquidity_claim`, `dialect_reserve_with_claim`).
#[macro_export]
macro_rules! risk_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl RiskTx for $ty {
            async fn lock_risk(&mut self) -> StoreResult<()> {
                self.dialect_lock_risk().await
            }

            async fn lock_risk_shared(&mut self) -> StoreResult<()> {
                self.dialect_lock_risk_shared().await
            }

            async fn lock_risk_subjects(&mut self, subjects: &[String]) -> StoreResult<()> {
                self.dialect_lock_risk_subjects(subjects).await
            }

            async fn insert_capital(&mut self, capital: &Capital) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO capital_versions (version, tier1_minor, recorded_by, recorded_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(capital.version)
                .bind(to_minor(capital.tier1)?)
                .bind(capital.recorded_by.as_str())
                .bind(micros(capital.recorded_at))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict(
                    "a capital version with this number exists already",
                ))?;
                Ok(())
            }

            async fn latest_capital(&mut self) -> StoreResult<Option<Capital>> {
                let row = sqlx::query(
                    "SELECT version, tier1_minor, recorded_by, recorded_at FROM capital_versions \
                     ORDER BY version DESC LIMIT 1",
                )
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(capital_from_row).transpose()
            }

            async fn insert_liquidity(&mut self, position: &LiquidityPosition) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO liquidity_positions (version, hqla_minor, outflows_minor, \
                     inflows_minor, floor_percent, recorded_by, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(position.version)
                .bind(to_minor(position.hqla)?)
                .bind(to_minor(position.outflows_30d)?)
                .bind(to_minor(position.inflows_30d)?)
                .bind(position.floor_percent.to_string())
                .bind(position.recorded_by.as_str())
                .bind(micros(position.recorded_at))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict(
                    "a liquidity position with this version exists already",
                ))?;
                Ok(())
            }

            async fn latest_liquidity(&mut self) -> StoreResult<Option<LiquidityPosition>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::liquidity_columns!(),
                    " FROM liquidity_positions ORDER BY version DESC LIMIT 1"
                ))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(liquidity_from_row).transpose()
            }

            async fn liquidity_now(
                &mut self,
                at: Timestamp,
                claims: InFlightClaims<'_>,
            ) -> StoreResult<Option<LiquidityNow>> {
                self.dialect_liquidity_now(at, claims).await
            }

            async fn settle_liquidity_claim(
                &mut self,
                claim: Option<&LiquidityClaim>,
                amount: Decimal,
            ) -> StoreResult<()> {
                self.dialect_settle_liquidity_claim(claim, amount).await
            }

            async fn capital_and_liquidity(
                &mut self,
                at: Timestamp,
                claims: InFlightClaims<'_>,
            ) -> StoreResult<(Option<Capital>, Option<LiquidityNow>)> {
                self.dialect_capital_and_liquidity(at, claims).await
            }

            async fn gate_figures(
                &mut self,
                borrowers: &[BorrowerId],
                at: Timestamp,
                claims: InFlightClaims<'_>,
            ) -> StoreResult<GateFigures> {
                self.dialect_gate_figures(borrowers, at, claims).await
            }

            async fn reserve_with_claim(
                &mut self,
                reservation: &Reservation,
                claim: Option<&LiquidityClaim>,
            ) -> StoreResult<()> {
                self.dialect_reserve_with_claim(reservation, claim).await
            }

            /// Consumed "after `since`" counts from `since` itself on: a disbursement
            /// at the very instant the position was recorded is counted, not lost.
            async fn committed_outflows(
                &mut self,
                since: Timestamp,
                at: Timestamp,
            ) -> StoreResult<Decimal> {
                let minor: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM reservations \
                     WHERE (status = 'active' AND expires_at > $1) \
                     OR (status = 'consumed' AND closed_at >= $2)",
                )
                .bind(micros(at))
                .bind(micros(since))
                .fetch_one(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(from_minor(minor))
            }
        }
    };
}
