//! Credit cases with their votes and decisions (V10), shared.

/// The update of a case row at an expected revision: `$1` the case, `$2`
/// the revision it is expected at, `$3` to `$19` its columns (see
/// `bind_case_update`).
#[doc(hidden)]
#[macro_export]
macro_rules! update_case_sql {
    () => {
        "UPDATE cases SET amount_minor = $3, currency = $4, product = $5, term_months = $6, \
         purpose = $7, status = $8, version = $9, revision = $10, return_reason = $11, \
         updated_at = $12, editors = $13, round = $14, escalation_level = $15, \
         related_party = $16, board_resolution = $17, audit_event_id = $18, conditions = $19 \
         WHERE id = $1 AND revision = $2"
    };
}

/// Expands `CaseTx` for `$ty`. The backend provides `dialect_case` (a case
/// with its votes, its decision and its file's documents, read as its
/// planner does best) and `dialect_update_case` (the case row written at
/// its expected revision, returning the number of votes and whether a
/// decision were stored before; None if the revision did not match). With
/// `votes_apart = true` the new votes are written next, one by one;
/// otherwise `dialect_update_case` wrote them.
#[macro_export]
macro_rules! case_tx {
    ($ty:ty, votes_apart = $votes_apart:literal) => {
        /// Binds [`update_case_sql`]'s parameters `$1` to `$19` for `case`,
        /// stored at `expected_revision` until now.
        fn bind_case_update<'q, O>(
            query: sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments>,
            case: &'q CreditCase,
            expected_revision: i64,
            audit_id: DbId,
        ) -> StoreResult<sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments>> {
            let file = &case.file;
            Ok(query
                .bind(id_arg(case.id))
                .bind(expected_revision)
                .bind(file.amount.minor_units())
                .bind(file.amount.currency_code())
                .bind(&file.product)
                .bind(int_arg(i64::from(file.term_months))?)
                .bind(&file.purpose)
                .bind(case.status.as_str())
                .bind(case.version)
                .bind(case.revision)
                .bind(case.return_reason.as_deref())
                .bind(micros(case.updated_at))
                .bind(to_json(&case.editors)?)
                .bind(int_arg(i64::from(case.round))?)
                .bind(
                    case.escalation_level
                        .map(|level| int_arg(i64::from(level)))
                        .transpose()?,
                )
                .bind(case.related_party)
                .bind(board_resolution_json(case.board_resolution.as_ref())?)
                .bind(audit_id)
                .bind(to_json(&case.conditions)?))
        }

        impl $ty {
            /// Inserts `case.votes[from..]` with their list index as ordinal.
            pub(crate) async fn insert_votes(
                &mut self,
                case: &CreditCase,
                from: usize,
            ) -> StoreResult<()> {
                let case_id = id_arg(case.id);
                for (ordinal, vote) in case.votes.iter().enumerate().skip(from) {
                    let checks = to_json(&vote.checks)?;
                    sqlx::query(
                        "INSERT INTO votes (case_id, ordinal, stage, voter_id, unit_id, side, \
                         decision, rationale, file_version, content_hash, cast_at, checks, \
                         round, required_level, competence_level, left_market_at, \
                         audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                         $11, $12, $13, $14, $15, $16, $17)",
                    )
                    .bind(&case_id)
                    .bind(int_arg(to_i64(ordinal)?)?)
                    .bind(vote.stage.as_str())
                    .bind(vote.voter.staff_id.as_str())
                    .bind(vote.voter.unit_id.as_str())
                    .bind(vote.voter.side.as_str())
                    .bind(vote.decision.as_str())
                    .bind(&vote.rationale)
                    .bind(vote.file_version)
                    .bind(&vote.content_hash)
                    .bind(micros(vote.cast_at))
                    .bind(checks)
                    .bind(int_arg(i64::from(vote.round))?)
                    .bind(int_arg(i64::from(vote.required_level))?)
                    .bind(int_arg(i64::from(vote.voter.competence_level))?)
                    .bind(vote.voter.left_market_at.map(micros))
                    .bind(self.audit_id())
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                }
                Ok(())
            }

            pub(crate) async fn insert_decision(
                &mut self,
                case_id: CaseId,
                decision: &Decision,
            ) -> StoreResult<()> {
                let json = to_json(&decision_in_micros(decision))?;
                sqlx::query(
                    "INSERT INTO decisions (case_id, outcome, decided_at, file_version, \
                     content_hash, \
                     decision_json, audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id_arg(case_id))
                .bind(decision.outcome.as_str())
                .bind(micros(decision.decided_at))
                .bind(decision.file_version)
                .bind(&decision.content_hash)
                .bind(json)
                .bind(self.audit_id())
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("the case has a decision already"))?;
                Ok(())
            }
        }

        #[$crate::async_trait]
        impl CaseTx for $ty {
            async fn insert_case(&mut self, case: &CreditCase) -> StoreResult<()> {
                let file = &case.file;
                sqlx::query(
                    "INSERT INTO cases (id, borrower_id, amount_minor, currency, product, \
                     term_months, purpose, status, version, revision, originator, \
                     return_reason, created_at, updated_at, editors, round, escalation_level, \
                     related_party, board_resolution, audit_event_id, kind, credit_id, \
                     credit_version, credit_amount_minor, credit_term_months, conditions, \
                     released_collateral_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
                )
                .bind(id_arg(case.id))
                .bind(id_arg(file.borrower_id))
                .bind(file.amount.minor_units())
                .bind(file.amount.currency_code())
                .bind(&file.product)
                .bind(int_arg(i64::from(file.term_months))?)
                .bind(&file.purpose)
                .bind(case.status.as_str())
                .bind(case.version)
                .bind(case.revision)
                .bind(case.originator.as_str())
                .bind(case.return_reason.as_deref())
                .bind(micros(case.created_at))
                .bind(micros(case.updated_at))
                .bind(to_json(&case.editors)?)
                .bind(int_arg(i64::from(case.round))?)
                .bind(
                    case.escalation_level
                        .map(|level| int_arg(i64::from(level)))
                        .transpose()?,
                )
                .bind(case.related_party)
                .bind(board_resolution_json(case.board_resolution.as_ref())?)
                .bind(self.audit_id())
                .bind(file.kind.as_str())
                .bind(file.base.as_ref().map(|base| id_arg(base.credit_id)))
                .bind(file.base.as_ref().map(|base| base.version))
                .bind(file.base.as_ref().map(credit_amount_minor).transpose()?)
                .bind(
                    file.base
                        .as_ref()
                        .map(|base| int_arg(i64::from(base.term_months)))
                        .transpose()?,
                )
                .bind(to_json(&case.conditions)?)
                .bind(file.released.map(id_arg))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a case with this id exists already"))?;
                self.insert_votes(case, 0).await?;
                if let Some(decision) = &case.decision {
                    self.insert_decision(case.id, decision).await?;
                }
                Ok(())
            }

            async fn case(&mut self, id: CaseId) -> StoreResult<Option<CreditCase>> {
                // With the documents of its file, which a vote binds to (L2, V3).
                self.dialect_case(id).await
            }

            async fn update_case(
                &mut self,
                case: &CreditCase,
                expected_revision: i64,
            ) -> StoreResult<()> {
                if case.revision <= expected_revision {
                    return Err(invariant(
                        "update_case needs a case whose revision is above the expected revision",
                    ));
                }
                // The dialect writes the case row (and, where it can, the new
                // votes from the same statement) and returns what was stored
                // before: the number of votes and whether a decision.
                let Some((stored, has_decision)) =
                    self.dialect_update_case(case, expected_revision).await?
                else {
                    return Err(StoreError::Conflict(
                        "the case was changed by somebody else; reload it and try again".into(),
                    ));
                };
                let stored =
                    usize::try_from(stored).map_err(|_| corrupt("vote count out of range"))?;
                if case.votes.len() < stored {
                    return Err(invariant(
                        "votes are append-only: the case has fewer votes than stored",
                    ));
                }
                if $votes_apart {
                    self.insert_votes(case, stored).await?;
                }
                match (&case.decision, has_decision) {
                    (Some(decision), false) => self.insert_decision(case.id, decision).await?,
                    (None, true) => return Err(invariant("a stored decision cannot be removed")),
                    _ => {}
                }
                Ok(())
            }

            async fn cases_page(&mut self, filter: &CaseFilter) -> StoreResult<Vec<CaseSummary>> {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, borrower_id, amount_minor, currency, status, version, updated_at \
                     FROM cases WHERE 1 = 1",
                );
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(borrower) = filter.borrower_id {
                    query.push(" AND borrower_id = ").push_bind(id_arg(borrower));
                }
                if let Some(from) = filter.opened_from {
                    query.push(" AND created_at >= ").push_bind(micros(from));
                }
                if let Some(before) = filter.opened_before {
                    query.push(" AND created_at < ").push_bind(micros(before));
                }
                match &filter.market_scope {
                    None | Some(MarketScope::Board { .. }) => {}
                    Some(MarketScope::Nothing) => return Ok(Vec::new()),
                    // MarketScope::access as a condition: the originator's
                    // market unit when the case was opened, or an
                    // escalation to a level the person covers.
                    Some(MarketScope::Unit {
                        unit,
                        escalated_up_to,
                    }) => {
                        query
                            .push(
                                " AND (EXISTS (SELECT 1 FROM unit_assignments AS u \
                                 WHERE u.staff_id = cases.originator AND u.side = 'market' \
                                 AND u.unit_id = ",
                            )
                            .push_bind(unit.as_str().to_owned())
                            .push(
                                " AND u.valid_from <= cases.created_at \
                                 AND (u.valid_to IS NULL OR u.valid_to > cases.created_at)) \
                                 OR cases.escalation_level <= ",
                            )
                            .push_bind(int_arg(i64::from(*escalated_up_to))?)
                            .push(")");
                    }
                }
                if let Some(after) = filter.after {
                    query.push(" AND id > ").push_bind(id_arg(after));
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(|row| case_summary_from_row(row)).collect()
            }

            async fn decisions_between(
                &mut self,
                from: Timestamp,
                to: Timestamp,
                limit: u32,
            ) -> StoreResult<Vec<DecidedCase>> {
                let rows = sqlx::query(
                    "SELECT c.id, c.borrower_id, c.amount_minor, c.currency, c.status, \
                     c.version, c.updated_at, d.decision_json \
                     FROM decisions AS d JOIN cases AS c ON c.id = d.case_id \
                     WHERE d.decided_at >= $1 AND d.decided_at < $2 \
                     ORDER BY d.decided_at, d.case_id LIMIT $3",
                )
                .bind(micros(from))
                .bind(micros(to))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        let json = get::<String>(row, "decision_json")?;
                        let decision = serde_json::from_str::<Decision>(&json)
                            .map_err(|_| corrupt("a stored decision is not valid"))?;
                        Ok(DecidedCase {
                            case: case_summary_from_row(row)?,
                            decision,
                        })
                    })
                    .collect()
            }

            async fn cases_by_status(
                &mut self,
                status: CaseStatus,
                after: Option<CaseId>,
                limit: u32,
            ) -> StoreResult<Vec<CaseSummary>> {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, borrower_id, amount_minor, currency, status, version, updated_at \
                     FROM cases WHERE status = ",
                );
                query.push_bind(status.as_str());
                if let Some(after) = after {
                    query.push(" AND id > ").push_bind(id_arg(after));
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(|row| case_summary_from_row(row)).collect()
            }
        }

        /// A case list's row (`id, borrower_id, amount_minor, currency,
        /// status, version, updated_at`).
        fn case_summary_from_row(row: &DbRow) -> StoreResult<CaseSummary> {
            Ok(CaseSummary {
                id: CaseId::from_uuid(get_id(row, "id")?),
                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                amount: money(get(row, "amount_minor")?, &get::<String>(row, "currency")?)?,
                status: parse_text(&get::<String>(row, "status")?, "case status")?,
                version: get(row, "version")?,
                updated_at: get(row, "updated_at")?,
            })
        }
    };
}
