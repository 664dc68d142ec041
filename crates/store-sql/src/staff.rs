//! The staff directory, shared: units, staff members, their dated histories.

/// Expands `StaffTx` for the transaction type `$ty`. The backend provides
/// `dialect_staff_member` (how a person is read with their histories) and
/// `lock_staff` (NotFound unless the person exists; holds appends to their
/// history until the transaction ends where writers are not serial).
#[macro_export]
macro_rules! staff_tx {
    ($ty:ty) => {
        impl $ty {
            pub(crate) async fn insert_role(
                &mut self,
                id: &StaffId,
                position: DbInt,
                role: &RoleAssignment,
                proposal: Option<Uuid>,
            ) -> StoreResult<()> {
                self.dialect_directory_written();
                sqlx::query(
                    "INSERT INTO role_assignments (staff_id, position, role, valid_from, valid_to, \
                     proposal_id) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.as_str())
                .bind(position)
                .bind(role.role.as_str())
                .bind(micros(role.valid_from))
                .bind(role.valid_to.map(micros))
                .bind(proposal.map(id_arg))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            pub(crate) async fn insert_unit(
                &mut self,
                id: &StaffId,
                position: DbInt,
                unit: &UnitAssignment,
            ) -> StoreResult<()> {
                self.dialect_directory_written();
                sqlx::query(
                    "INSERT INTO unit_assignments (staff_id, position, unit_id, side, \
                     valid_from, valid_to) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.as_str())
                .bind(position)
                .bind(unit.unit_id.as_str())
                .bind(unit.side.as_str())
                .bind(micros(unit.valid_from))
                .bind(unit.valid_to.map(micros))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            pub(crate) async fn insert_grant(
                &mut self,
                id: &StaffId,
                position: DbInt,
                grant: &CompetenceGrant,
                proposal: Option<Uuid>,
            ) -> StoreResult<()> {
                self.dialect_directory_written();
                sqlx::query(
                    "INSERT INTO competence_grants (staff_id, position, side, level, valid_from, \
                     valid_to, proposal_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id.as_str())
                .bind(position)
                .bind(grant.side.as_str())
                .bind(int_arg(i64::from(grant.level))?)
                .bind(micros(grant.valid_from))
                .bind(grant.valid_to.map(micros))
                .bind(proposal.map(id_arg))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            /// The next free position in one of a person's history tables; callers
            /// hold the person's lock (`lock_staff`).
            pub(crate) async fn next_position(
                &mut self,
                id: &StaffId,
                table: HistoryTable,
            ) -> StoreResult<DbInt> {
                let sql = match table {
                    HistoryTable::Units => {
                        "SELECT COALESCE(MAX(position) + 1, 0) FROM unit_assignments WHERE \
                         staff_id = $1"
                    }
                    HistoryTable::Roles => {
                        "SELECT COALESCE(MAX(position) + 1, 0) FROM role_assignments WHERE \
                         staff_id = $1"
                    }
                    HistoryTable::Competences => {
                        "SELECT COALESCE(MAX(position) + 1, 0) FROM competence_grants WHERE \
                         staff_id = $1"
                    }
                };
                sqlx::query_scalar(sql)
                    .bind(id.as_str())
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)
            }
        }

        #[$crate::async_trait]
        impl StaffTx for $ty {
            async fn upsert_unit(
                &mut self,
                unit: &UnitId,
                name: &str,
                side: Side,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO org_units (id, name, side) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, side = excluded.side",
                )
                .bind(unit.as_str())
                .bind(name)
                .bind(side.as_str())
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn unit_side(&mut self, unit: &UnitId) -> StoreResult<Option<Side>> {
                let side: Option<String> =
                    sqlx::query_scalar("SELECT side FROM org_units WHERE id = $1")
                        .bind(unit.as_str())
                        .fetch_optional(&mut *self.tx)
                        .await
                        .map_err(map_sqlx_error)?;
                side.map(|side| parse_text(&side, "side")).transpose()
            }

            async fn onboard_staff(
                &mut self,
                member: &StaffMember,
                proposal: Option<Uuid>,
            ) -> StoreResult<()> {
                // Check the units first: a clear NotFound instead of a bare FK error,
                // and the side recorded on the assignment must be its unit's side.
                for unit in &member.units {
                    let side: Option<String> =
                        sqlx::query_scalar("SELECT side FROM org_units WHERE id = $1")
                            .bind(unit.unit_id.as_str())
                            .fetch_optional(&mut *self.tx)
                            .await
                            .map_err(map_sqlx_error)?;
                    match side {
                        None => {
                            return Err(StoreError::NotFound(
                                "an org unit of the staff member's unit assignments does not exist"
                                    .into(),
                            ));
                        }
                        Some(side) if side != unit.side.as_str() => {
                            return Err(StoreError::Conflict(
                                "a unit assignment names another side than its org unit has".into(),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                self.dialect_directory_written();
                sqlx::query("INSERT INTO staff (id, status) VALUES ($1, $2)")
                    .bind(member.id.as_str())
                    .bind(member.status.as_str())
                    .execute(&mut *self.tx)
                    .await
                    .map_err(conflict("a staff member with this id exists already"))?;
                for (position, unit) in member.units.iter().enumerate() {
                    self.insert_unit(&member.id, int_arg(to_i64(position)?)?, unit)
                        .await?;
                }
                for (position, role) in member.roles.iter().enumerate() {
                    self.insert_role(&member.id, int_arg(to_i64(position)?)?, role, proposal)
                        .await?;
                }
                for (position, grant) in member.competences.iter().enumerate() {
                    self.insert_grant(&member.id, int_arg(to_i64(position)?)?, grant, proposal)
                        .await?;
                }
                Ok(())
            }

            async fn staff_member(&mut self, id: &StaffId) -> StoreResult<Option<StaffMember>> {
                self.dialect_staff_member(id).await
            }

            async fn set_staff_status(
                &mut self,
                id: &StaffId,
                status: StaffStatus,
            ) -> StoreResult<()> {
                self.dialect_directory_written();
                let done = sqlx::query("UPDATE staff SET status = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound("staff member".into()));
                }
                Ok(())
            }

            async fn add_role_assignment(
                &mut self,
                id: &StaffId,
                role: &RoleAssignment,
                proposal: Option<Uuid>,
            ) -> StoreResult<()> {
                self.lock_staff(id).await?;
                let position = self.next_position(id, HistoryTable::Roles).await?;
                self.insert_role(id, position, role, proposal).await
            }

            async fn add_competence_grant(
                &mut self,
                id: &StaffId,
                grant: &CompetenceGrant,
                proposal: Option<Uuid>,
            ) -> StoreResult<()> {
                self.lock_staff(id).await?;
                let position = self.next_position(id, HistoryTable::Competences).await?;
                self.insert_grant(id, position, grant, proposal).await
            }

            async fn add_unit_assignment(
                &mut self,
                id: &StaffId,
                unit: &UnitAssignment,
            ) -> StoreResult<()> {
                match self.unit_side(&unit.unit_id).await? {
                    None => return Err(StoreError::NotFound("org unit".into())),
                    Some(side) if side != unit.side => {
                        return Err(StoreError::Conflict(
                            "a unit assignment names another side than its org unit has".into(),
                        ));
                    }
                    Some(_) => {}
                }
                self.lock_staff(id).await?;
                let position = self.next_position(id, HistoryTable::Units).await?;
                self.insert_unit(id, position, unit).await
            }

            async fn cut_history(&mut self, id: &StaffId, cut: &HistoryCut) -> StoreResult<()> {
                let sql = match cut.history {
                    History::Units => {
                        "UPDATE unit_assignments SET valid_to = $4 WHERE staff_id = $1 AND \
                         position = $2 AND valid_from = $3"
                    }
                    History::Roles => {
                        "UPDATE role_assignments SET valid_to = $4 WHERE staff_id = $1 AND \
                         position = $2 AND valid_from = $3"
                    }
                    History::Competences => {
                        "UPDATE competence_grants SET valid_to = $4 WHERE staff_id = $1 AND \
                         position = $2 AND valid_from = $3"
                    }
                };
                self.dialect_directory_written();
                let done = sqlx::query(sql)
                    .bind(id.as_str())
                    .bind(int_arg(to_i64(cut.position)?)?)
                    .bind(micros(cut.valid_from))
                    .bind(micros(cut.valid_to))
                    .execute(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound(
                        "the history entry to end is not the one read".into(),
                    ));
                }
                Ok(())
            }

            async fn staff_ids(&mut self) -> StoreResult<Vec<StaffId>> {
                let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM staff")
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                let mut ids = ids
                    .iter()
                    .map(|id| parse_text(id, "staff id"))
                    .collect::<StoreResult<Vec<StaffId>>>()?;
                // Sorted in Rust: the order of `StaffId`, not the database collation.
                ids.sort();
                Ok(ids)
            }
        }
    };
}
