//! Borrowers, groups of connected clients and related parties, shared.

/// Expands `BorrowerTx` for `$ty`. `$in_ids` is the dialect's test of a
/// column against the bound id list (`ids_arg`). The backend provides
/// `lock_membership` (serialises membership changes of one borrower where
/// writers are not serial) and `dialect_vote_context`.
#[macro_export]
macro_rules! borrower_tx {
    ($ty:ty, in_ids = $in_ids:literal) => {
        #[$crate::async_trait]
        impl BorrowerTx for $ty {
            async fn insert_borrower(&mut self, borrower: &Borrower) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO borrowers (id, name, country, sector, institution, \
                     relationship_manager, \
                     created_by, created_at, audit_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                     $8, $9)",
                )
                .bind(id_arg(borrower.id))
                .bind(&borrower.name)
                .bind(borrower.country.to_string())
                .bind(borrower.sector.to_string())
                .bind(borrower.institution)
                .bind(borrower.relationship_manager.as_ref().map(StaffId::as_str))
                .bind(borrower.created_by.as_str())
                .bind(micros(borrower.created_at))
                .bind(self.audit_id())
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a borrower with this id exists already"))?;
                Ok(())
            }

            async fn unclassified_values(&mut self) -> StoreResult<Vec<UnclassifiedValue>> {
                // (column, vocabulary, distinct values with their row counts,
                // the rows holding one value). Grouped first: the distinct
                // values are few, and the index on each column serves both.
                let sources: [(&'static str, &'static str, &'static str, &'static str); 6] = [
                    (
                        "borrowers.sector",
                        "sector",
                        "SELECT sector, COUNT(*) FROM borrowers GROUP BY sector",
                        "SELECT CAST(id AS TEXT) FROM borrowers WHERE sector = $1 \
                         ORDER BY id LIMIT $2",
                    ),
                    (
                        "borrowers.country",
                        "country",
                        "SELECT country, COUNT(*) FROM borrowers GROUP BY country",
                        "SELECT CAST(id AS TEXT) FROM borrowers WHERE country = $1 \
                         ORDER BY id LIMIT $2",
                    ),
                    (
                        "limit_versions.subject_key",
                        "sector",
                        "SELECT subject_key, COUNT(*) FROM limit_versions \
                         WHERE subject_kind = 'sector' GROUP BY subject_key",
                        "SELECT CAST(id AS TEXT) FROM limit_versions \
                         WHERE subject_kind = 'sector' AND subject_key = $1 ORDER BY id LIMIT $2",
                    ),
                    (
                        "limit_versions.subject_key",
                        "country",
                        "SELECT subject_key, COUNT(*) FROM limit_versions \
                         WHERE subject_kind = 'country' GROUP BY subject_key",
                        "SELECT CAST(id AS TEXT) FROM limit_versions \
                         WHERE subject_kind = 'country' AND subject_key = $1 ORDER BY id LIMIT $2",
                    ),
                    // An open breach of a free-text limit would stay open
                    // after its key is corrected: nothing evaluates it.
                    (
                        "breaches.subject (open)",
                        "sector",
                        "SELECT SUBSTR(subject, 8), COUNT(*) FROM breaches \
                         WHERE resolved_at IS NULL AND subject LIKE 'sector:%' GROUP BY subject",
                        "SELECT CAST(id AS TEXT) FROM breaches WHERE resolved_at IS NULL \
                         AND subject = 'sector:' || $1 ORDER BY id LIMIT $2",
                    ),
                    (
                        "breaches.subject (open)",
                        "country",
                        "SELECT SUBSTR(subject, 9), COUNT(*) FROM breaches \
                         WHERE resolved_at IS NULL AND subject LIKE 'country:%' GROUP BY subject",
                        "SELECT CAST(id AS TEXT) FROM breaches WHERE resolved_at IS NULL \
                         AND subject = 'country:' || $1 ORDER BY id LIMIT $2",
                    ),
                ];
                let mut found = Vec::new();
                for (column, vocabulary, distinct, holders) in sources {
                    let values: Vec<(String, i64)> = sqlx::query_as(distinct)
                        .fetch_all(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                    for (value, rows) in values {
                        let valid = match vocabulary {
                            "sector" => value.parse::<Sector>().is_ok(),
                            _ => value.parse::<Country>().is_ok(),
                        };
                        if valid {
                            continue;
                        }
                        let ids: Vec<String> = sqlx::query_scalar(holders)
                            .bind(&value)
                            .bind(UNCLASSIFIED_IDS_LISTED)
                            .fetch_all(&mut *self.tx)
                            .await
                            .map_err(map_sqlx_error)?;
                        found.push(UnclassifiedValue {
                            column,
                            vocabulary,
                            value,
                            rows,
                            ids,
                        });
                    }
                }
                found.sort_by(|a, b| (a.column, &a.value).cmp(&(b.column, &b.value)));
                Ok(found)
            }

            async fn borrower(&mut self, id: BorrowerId) -> StoreResult<Option<Borrower>> {
                let row = sqlx::query(
                    "SELECT name, country, sector, institution, relationship_manager, created_by, \
                     created_at FROM borrowers WHERE id = $1",
                )
                .bind(id_arg(id))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.map(|row| borrower_from_row(id, &row)).transpose()
            }

            async fn borrower_with_group(
                &mut self,
                id: BorrowerId,
                at: Timestamp,
            ) -> StoreResult<Option<(Borrower, Option<UnitId>)>> {
                // The group as `group_of` reads it, as a column of the row.
                let row = sqlx::query(
                    "SELECT b.name, b.country, b.sector, b.institution, b.relationship_manager, \
                     b.created_by, b.created_at, \
                     (SELECT m.group_id FROM group_memberships m WHERE m.borrower_id = b.id \
                      AND m.valid_from <= $2 AND (m.valid_to IS NULL OR m.valid_to > $2) \
                      ORDER BY m.valid_from DESC LIMIT 1) AS group_id \
                     FROM borrowers b WHERE b.id = $1",
                )
                .bind(id_arg(id))
                .bind(micros(at))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.map(|row| {
                    let group = get::<Option<String>>(&row, "group_id")?
                        .map(|g| parse_text(&g, "group id"))
                        .transpose()?;
                    Ok((borrower_from_row(id, &row)?, group))
                })
                .transpose()
            }

            async fn insert_group(&mut self, group: &BorrowerGroup) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO borrower_groups (id, name, created_by, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(group.id.as_str())
                .bind(&group.name)
                .bind(group.created_by.as_str())
                .bind(micros(group.created_at))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a group with this id exists already"))?;
                Ok(())
            }

            async fn group(&mut self, id: &UnitId) -> StoreResult<Option<BorrowerGroup>> {
                let row = sqlx::query(
                    "SELECT name, created_by, created_at FROM borrower_groups WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.map(|row| {
                    Ok(BorrowerGroup {
                        id: id.clone(),
                        name: get(&row, "name")?,
                        created_by: get_staff(&row, "created_by")?,
                        created_at: get(&row, "created_at")?,
                    })
                })
                .transpose()
            }

            async fn set_group_membership(
                &mut self,
                borrower: BorrowerId,
                group: Option<&UnitId>,
                at: Timestamp,
            ) -> StoreResult<()> {
                let at = micros(at);
                let borrower_id = id_arg(borrower);
                self.lock_membership(&borrower_id).await?;
                let found: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM borrowers WHERE id = $1)")
                        .bind(&borrower_id)
                        .fetch_one(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                if !found {
                    return Err(StoreError::NotFound("borrower".into()));
                }
                if let Some(group) = group {
                    let found: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM borrower_groups WHERE id = $1)",
                    )
                    .bind(group.as_str())
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    if !found {
                        return Err(StoreError::NotFound("borrower group".into()));
                    }
                }
                // The history only grows forward: a change may not start before a
                // membership already on record starts or ends.
                let history: Vec<(Timestamp, Option<Timestamp>)> = sqlx::query_as(
                    "SELECT valid_from, valid_to FROM group_memberships WHERE borrower_id = $1",
                )
                .bind(&borrower_id)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if history
                    .iter()
                    .any(|(from, to)| *from > at || to.is_some_and(|to| to > at))
                {
                    return Err(StoreError::Conflict(
                        "the borrower's group membership changed later than this change".into(),
                    ));
                }
                sqlx::query(
                    "UPDATE group_memberships SET valid_to = $2 \
                     WHERE borrower_id = $1 AND valid_to IS NULL",
                )
                .bind(&borrower_id)
                .bind(at)
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if let Some(group) = group {
                    sqlx::query(
                        "INSERT INTO group_memberships (borrower_id, group_id, valid_from) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(&borrower_id)
                    .bind(group.as_str())
                    .bind(at)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(conflict(
                        "the borrower's group membership changed concurrently",
                    ))?;
                }
                Ok(())
            }

            async fn group_of(
                &mut self,
                borrower: BorrowerId,
                at: Timestamp,
            ) -> StoreResult<Option<UnitId>> {
                let group: Option<String> = sqlx::query_scalar(
                    "SELECT group_id FROM group_memberships WHERE borrower_id = $1 \
                     AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2) \
                     ORDER BY valid_from DESC LIMIT 1",
                )
                .bind(id_arg(borrower))
                .bind(micros(at))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                group.map(|g| parse_text(&g, "group id")).transpose()
            }

            async fn group_members(
                &mut self,
                group: &UnitId,
                at: Timestamp,
            ) -> StoreResult<Vec<BorrowerId>> {
                let ids: Vec<DbId> = sqlx::query_scalar(
                    "SELECT DISTINCT borrower_id FROM group_memberships WHERE group_id = $1 \
                     AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
                )
                .bind(group.as_str())
                .bind(micros(at))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                let mut ids = ids
                    .into_iter()
                    .map(|id| id_of(id).map(BorrowerId::from_uuid))
                    .collect::<StoreResult<Vec<_>>>()?;
                ids.sort();
                Ok(ids)
            }

            async fn relationship_managers(
                &mut self,
                borrowers: &[BorrowerId],
            ) -> StoreResult<BTreeSet<StaffId>> {
                if borrowers.is_empty() {
                    return Ok(BTreeSet::new());
                }
                let ids: Vec<String> = sqlx::query_scalar(concat!(
                    "SELECT relationship_manager FROM borrowers \
                     WHERE id ",
                    $in_ids,
                    " AND relationship_manager IS NOT NULL"
                ))
                .bind(ids_arg(borrowers)?)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                ids.iter().map(|id| parse_text(id, "staff id")).collect()
            }

            async fn insert_related_party(&mut self, party: &RelatedParty) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO related_parties (borrower_id, staff_id, relation, recorded_by, \
                     recorded_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id_arg(party.borrower_id))
                .bind(party.staff_id.as_str())
                .bind(&party.relation)
                .bind(party.recorded_by.as_str())
                .bind(micros(party.recorded_at))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict(
                    "this person is recorded as related to the borrower already",
                ))?;
                Ok(())
            }

            async fn related_parties(
                &mut self,
                borrowers: &[BorrowerId],
            ) -> StoreResult<BTreeSet<StaffId>> {
                if borrowers.is_empty() {
                    return Ok(BTreeSet::new());
                }
                let ids: Vec<String> = sqlx::query_scalar(concat!(
                    "SELECT staff_id FROM related_parties \
                     WHERE borrower_id ",
                    $in_ids,
                    ""
                ))
                .bind(ids_arg(borrowers)?)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                ids.iter().map(|id| parse_text(id, "staff id")).collect()
            }

            async fn borrowers_page(
                &mut self,
                after: Option<BorrowerId>,
                limit: u32,
            ) -> StoreResult<Vec<Borrower>> {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, name, country, sector, institution, relationship_manager, \
                     created_by, created_at FROM borrowers",
                );
                if let Some(after) = after {
                    query.push(" WHERE id > ").push_bind(id_arg(after));
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(Borrower {
                            id: BorrowerId::from_uuid(get_id(row, "id")?),
                            name: get(row, "name")?,
                            country: parse_text(&get::<String>(row, "country")?, "country")?,
                            sector: parse_text(&get::<String>(row, "sector")?, "sector")?,
                            institution: get(row, "institution")?,
                            relationship_manager: get::<Option<String>>(
                                row,
                                "relationship_manager",
                            )?
                            .map(|id| parse_text(&id, "staff id"))
                            .transpose()?,
                            created_by: get_staff(row, "created_by")?,
                            created_at: get(row, "created_at")?,
                        })
                    })
                    .collect()
            }

            async fn groups_page(
                &mut self,
                after: Option<&UnitId>,
                limit: u32,
            ) -> StoreResult<Vec<BorrowerGroup>> {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, name, created_by, created_at FROM borrower_groups",
                );
                if let Some(after) = after {
                    query.push(" WHERE id > ").push_bind(after.as_str().to_owned());
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(BorrowerGroup {
                            id: parse_text(&get::<String>(row, "id")?, "group id")?,
                            name: get(row, "name")?,
                            created_by: get_staff(row, "created_by")?,
                            created_at: get(row, "created_at")?,
                        })
                    })
                    .collect()
            }

            async fn group_history(
                &mut self,
                group: &UnitId,
            ) -> StoreResult<Vec<GroupMembership>> {
                let rows = sqlx::query(
                    "SELECT borrower_id, valid_from, valid_to FROM group_memberships \
                     WHERE group_id = $1 ORDER BY valid_from, borrower_id",
                )
                .bind(group.as_str())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(GroupMembership {
                            borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                            group_id: group.clone(),
                            valid_from: get(row, "valid_from")?,
                            valid_to: get(row, "valid_to")?,
                        })
                    })
                    .collect()
            }

            async fn related_parties_page(
                &mut self,
                borrower: Option<BorrowerId>,
                after: Option<(BorrowerId, StaffId)>,
                limit: u32,
            ) -> StoreResult<Vec<RelatedParty>> {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT borrower_id, staff_id, relation, recorded_by, recorded_at \
                     FROM related_parties WHERE 1 = 1",
                );
                if let Some(borrower) = borrower {
                    query.push(" AND borrower_id = ").push_bind(id_arg(borrower));
                }
                if let Some((after_borrower, after_staff)) = after {
                    query
                        .push(" AND (borrower_id > ")
                        .push_bind(id_arg(after_borrower))
                        .push(" OR (borrower_id = ")
                        .push_bind(id_arg(after_borrower))
                        .push(" AND staff_id > ")
                        .push_bind(after_staff.as_str().to_owned())
                        .push("))");
                }
                query
                    .push(" ORDER BY borrower_id, staff_id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(RelatedParty {
                            borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                            staff_id: get_staff(row, "staff_id")?,
                            relation: get(row, "relation")?,
                            recorded_by: get_staff(row, "recorded_by")?,
                            recorded_at: get(row, "recorded_at")?,
                        })
                    })
                    .collect()
            }

            async fn vote_context(&mut self, borrowers: &[BorrowerId]) -> StoreResult<VoteContext> {
                self.dialect_vote_context(borrowers).await
            }

            async fn open_cases_of(
                &mut self,
                borrowers: &[BorrowerId],
            ) -> StoreResult<Vec<CaseId>> {
                if borrowers.is_empty() {
                    return Ok(Vec::new());
                }
                let ids: Vec<DbId> = sqlx::query_scalar(concat!(
                    "SELECT id FROM cases WHERE borrower_id ",
                    $in_ids,
                    " \
                     AND status NOT IN ($2, $3) ORDER BY id"
                ))
                .bind(ids_arg(borrowers)?)
                .bind(CaseStatus::Approved.as_str())
                .bind(CaseStatus::Declined.as_str())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                ids.into_iter()
                    .map(|id| id_of(id).map(CaseId::from_uuid))
                    .collect()
            }
        }
    };
}
