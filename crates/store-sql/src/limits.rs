//! Limit versions (R1, R3, R8), shared.

/// Expands `LimitTx` for `$ty`. The backend provides
/// `dialect_limits_in_force` (each subject's latest approved version, a
/// statement shaped for its planner).
#[macro_export]
macro_rules! limit_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl LimitTx for $ty {
            async fn insert_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()> {
                if limit.status != LimitStatus::Pending {
                    return Err(invariant("a limit version is stored as a pending proposal"));
                }
                let query = sqlx::query(concat!(
                    $crate::insert_limit_version_sql!(),
                    " VALUES ($1, $2, $3, $12, $4, $5, $6, $7, $8, $9, $10, $11)"
                ));
                $crate::bind_limit_version!(query, limit)
                    .bind(limit.version)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(conflict($crate::LIMIT_VERSION_TAKEN))?;
                Ok(())
            }

            async fn insert_next_limit_version(
                &mut self,
                limit: &LimitVersion,
            ) -> StoreResult<Option<i64>> {
                if limit.status != LimitStatus::Pending {
                    return Err(invariant("a limit version is stored as a pending proposal"));
                }
                // The subject's existence is checked by the same statement:
                // no row to insert when it names nobody. Its key is `$12`.
                let inserted = match &limit.subject {
                    LimitSubject::Borrower(borrower) => {
                        let query = sqlx::query_scalar($crate::insert_next_limit_version_sql!(
                            " HAVING EXISTS (SELECT 1 FROM borrowers WHERE id = $12)"
                        ));
                        $crate::bind_limit_version!(query, limit)
                            .bind(id_arg(*borrower))
                            .fetch_optional(&mut *self.tx)
                            .await
                    }
                    LimitSubject::Group(group) => {
                        let query = sqlx::query_scalar($crate::insert_next_limit_version_sql!(
                            " HAVING EXISTS (SELECT 1 FROM borrower_groups WHERE id = $12)"
                        ));
                        $crate::bind_limit_version!(query, limit)
                            .bind(group.as_str())
                            .fetch_optional(&mut *self.tx)
                            .await
                    }
                    LimitSubject::Sector(_) | LimitSubject::Country(_) => {
                        let query = sqlx::query_scalar($crate::insert_next_limit_version_sql!(""));
                        $crate::bind_limit_version!(query, limit)
                            .fetch_optional(&mut *self.tx)
                            .await
                    }
                };
                inserted.map_err(conflict($crate::LIMIT_VERSION_TAKEN))
            }

            async fn limit_version(&mut self, id: Uuid) -> StoreResult<Option<LimitVersion>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::limit_columns!(),
                    " FROM limit_versions WHERE id = $1"
                ))
                .bind(id_arg(id))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(limit_version_from_row).transpose()
            }

            async fn decide_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()> {
                let (Some(decided_by), Some(decided_at)) = (&limit.decided_by, limit.decided_at)
                else {
                    return Err(invariant(
                        "a decided limit version needs decided_by and decided_at",
                    ));
                };
                if limit.status == LimitStatus::Pending {
                    return Err(invariant(
                        "a decision must approve or reject the limit version",
                    ));
                }
                let done = sqlx::query(
                    "UPDATE limit_versions SET status = $2, decided_by = $3, decided_at = $4 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id_arg(limit.id))
                .bind(limit.status.as_str())
                .bind(decided_by.as_str())
                .bind(micros(decided_at))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if done.rows_affected() == 0 {
                    let found: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM limit_versions WHERE id = $1)",
                    )
                    .bind(id_arg(limit.id))
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    return Err(if found {
                        StoreError::Conflict("the limit version was decided already".into())
                    } else {
                        StoreError::NotFound("limit version".into())
                    });
                }
                Ok(())
            }

            async fn limit_versions(
                &mut self,
                status: Option<LimitStatus>,
                subject: Option<&LimitSubject>,
            ) -> StoreResult<Vec<LimitVersion>> {
                let mut query = QueryBuilder::<Db>::new(concat!(
                    "SELECT ",
                    $crate::limit_columns!(),
                    " FROM limit_versions WHERE 1 = 1"
                ));
                if let Some(status) = status {
                    query.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(subject) = subject {
                    query
                        .push(" AND subject_kind = ")
                        .push_bind(subject.kind().as_str())
                        .push(" AND subject_key = ")
                        .push_bind(subject.key());
                }
                query.push(" ORDER BY proposed_at, id");
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(limit_version_from_row).collect()
            }

            async fn latest_limit_version(&mut self, subject: &LimitSubject) -> StoreResult<i64> {
                sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) FROM limit_versions \
                     WHERE subject_kind = $1 AND subject_key = $2",
                )
                .bind(subject.kind().as_str())
                .bind(subject.key())
                .fetch_one(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)
            }

            async fn limits_in_force(
                &mut self,
                subjects: Option<&[LimitSubject]>,
            ) -> StoreResult<Vec<Limit>> {
                self.dialect_limits_in_force(subjects).await
            }

            async fn lock_subject_reading_limits(
                &mut self,
                lock: &str,
                subjects: &[LimitSubject],
            ) -> StoreResult<Vec<Limit>> {
                self.dialect_lock_subject_reading_limits(lock, subjects)
                    .await
            }
        }
    };
}

/// The insert of a limit version up to its values, for [`limit_tx`].
#[doc(hidden)]
#[macro_export]
macro_rules! insert_limit_version_sql {
    () => {
        "INSERT INTO limit_versions (id, subject_kind, subject_key, version, amount_minor, \
         tolerance_percent, reason, proposed_by, proposed_at, status, decided_by, decided_at)"
    };
}

/// The insert of a limit version as its subject's next, with `$condition`
/// on the subject (a `HAVING` clause, or nothing).
#[doc(hidden)]
#[macro_export]
macro_rules! insert_next_limit_version_sql {
    ($condition:expr) => {
        concat!(
            $crate::insert_limit_version_sql!(),
            " SELECT $1, $2, $3, COALESCE(MAX(version), 0) + 1, $4, $5, $6, $7, $8, $9, $10, \
             $11 FROM limit_versions WHERE subject_kind = $2 AND subject_key = $3",
            $condition,
            " RETURNING version"
        )
    };
}

/// Binds `$limit` as `$1` to `$11` of [`insert_limit_version_sql`]'s values
/// (all but the version), for [`limit_tx`].
#[doc(hidden)]
#[macro_export]
macro_rules! bind_limit_version {
    ($query:expr, $limit:expr) => {
        $query
            .bind(id_arg($limit.id))
            .bind($limit.subject.kind().as_str())
            .bind(subject_key(&$limit.subject)?)
            .bind(to_minor($limit.amount)?)
            .bind($limit.tolerance_percent.to_string())
            .bind(&$limit.reason)
            .bind($limit.proposed_by.as_str())
            .bind(micros($limit.proposed_at))
            .bind($limit.status.as_str())
            .bind($limit.decided_by.as_ref().map(StaffId::as_str))
            .bind($limit.decided_at.map(micros))
    };
}

/// The conflict of a limit version stored twice.
#[doc(hidden)]
pub const LIMIT_VERSION_TAKEN: &str =
    "the limit's subject has this version already, or the id exists";
