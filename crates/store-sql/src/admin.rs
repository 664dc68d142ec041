//! Rule sets and four-eyes change proposals (S9), shared.

/// Expands `AdminTx` for `$ty` (and needs `fetch_rule_sets` of [`sql_rows`],
/// a field `rule_sets: Option<Vec<RuleSet>>`: the rule sets are read once
/// per transaction, so every check of one command sees the same set, and
/// again only after this transaction inserted one; and a field
/// `rule_set_cache: Option<Arc<RuleSetCache>>`, the store's cache, offered
/// every read of committed rule sets, dropped once the transaction inserts
/// one, whose read would then show its own uncommitted row).
#[macro_export]
macro_rules! admin_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl AdminTx for $ty {
            async fn rule_sets(&mut self) -> StoreResult<Vec<RuleSet>> {
                if let Some(sets) = &self.rule_sets {
                    return Ok(sets.clone());
                }
                let sets = fetch_rule_sets(&mut *self.tx).await?;
                if let Some(cache) = &self.rule_set_cache {
                    cache.offer(&sets);
                }
                self.rule_sets = Some(sets.clone());
                Ok(sets)
            }

            fn use_rule_sets(&mut self, sets: Vec<RuleSet>) {
                if self.rule_sets.is_none() {
                    self.rule_sets = Some(sets);
                }
            }

            fn expect_authority(&mut self, version: u64) -> StoreResult<()> {
                self.dialect_expect_authority(version)
            }

            async fn insert_rule_set(
                &mut self,
                rules: &RuleSet,
                proposal: Option<Uuid>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO rule_sets (version, valid_from, parameters, proposal_id) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(rules.version)
                .bind(micros(rules.valid_from))
                .bind(to_json(&rules.parameters)?)
                .bind(proposal.map(id_arg))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a rule set with this version exists already"))?;
                self.rule_sets = None;
                self.rule_set_cache = None;
                Ok(())
            }

            async fn insert_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO change_proposals (id, kind, payload, proposed_by, proposed_at, \
                     status, \
                     decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id_arg(proposal.id))
                .bind(proposal.kind.as_str())
                .bind(to_json(&proposal.payload)?)
                .bind(proposal.proposed_by.as_str())
                .bind(micros(proposal.proposed_at))
                .bind(proposal.status.as_str())
                .bind(proposal.decided_by.as_ref().map(StaffId::as_str))
                .bind(proposal.decided_at.map(micros))
                .execute(&mut *self.tx)
                .await
                .map_err(conflict("a proposal with this id exists already"))?;
                Ok(())
            }

            async fn proposal(&mut self, id: Uuid) -> StoreResult<Option<ChangeProposal>> {
                let row = sqlx::query(
                    "SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, \
                     decided_at \
                     FROM change_proposals WHERE id = $1",
                )
                .bind(id_arg(id))
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.as_ref().map(proposal_from_row).transpose()
            }

            async fn decide_proposal(&mut self, proposal: &ChangeProposal) -> StoreResult<()> {
                let (Some(decided_by), Some(decided_at)) =
                    (&proposal.decided_by, proposal.decided_at)
                else {
                    return Err(invariant(
                        "a decided proposal needs decided_by and decided_at",
                    ));
                };
                if proposal.status == ProposalStatus::Pending {
                    return Err(invariant("a decision must approve or reject the proposal"));
                }
                let done = sqlx::query(
                    "UPDATE change_proposals SET status = $2, decided_by = $3, decided_at = $4 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id_arg(proposal.id))
                .bind(proposal.status.as_str())
                .bind(decided_by.as_str())
                .bind(micros(decided_at))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                if done.rows_affected() == 0 {
                    let found: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM change_proposals WHERE id = $1)",
                    )
                    .bind(id_arg(proposal.id))
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                    return Err(if found {
                        StoreError::Conflict("the proposal was decided already".into())
                    } else {
                        StoreError::NotFound("change proposal".into())
                    });
                }
                Ok(())
            }

            async fn proposals(
                &mut self,
                filter: &ProposalFilter,
            ) -> StoreResult<Vec<ChangeProposal>> {
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, \
                     decided_at \
                     FROM change_proposals WHERE 1 = 1",
                );
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status.as_str());
                }
                if !filter.kinds.is_empty() {
                    query.push(" AND kind IN (");
                    let mut kinds = query.separated(", ");
                    for kind in &filter.kinds {
                        kinds.push_bind(kind.as_str());
                    }
                    query.push(")");
                }
                let (before_or_after, direction) = if filter.newest_first {
                    ("<", "DESC")
                } else {
                    (">", "ASC")
                };
                if let Some(after) = filter.after {
                    query
                        .push(format_args!(" AND id {before_or_after} "))
                        .push_bind(id_arg(after));
                }
                query
                    .push(format_args!(" ORDER BY id {direction} LIMIT "))
                    .push_bind(i64::from(filter.limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(proposal_from_row).collect()
            }

            async fn approved_proposals_since(
                &mut self,
                kind: ProposalKind,
                since: Timestamp,
            ) -> StoreResult<Vec<ChangeProposal>> {
                let rows = sqlx::query(
                    "SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, \
                     decided_at \
                     FROM change_proposals WHERE kind = $1 AND status = 'approved' \
                     AND decided_at >= $2 ORDER BY decided_at, id",
                )
                .bind(kind.as_str())
                .bind(micros(since))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter().map(proposal_from_row).collect()
            }
        }
    };
}
