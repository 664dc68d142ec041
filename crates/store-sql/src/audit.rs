//! The audit trail: events, reconciliation and checkpoints (A1, A2), shared.

/// Expands `AuditTx` for `$ty`. The backend provides `dialect_append_audit`
/// (how an event joins the chain), `dialect_unaudited_rows` (which table
/// holds every committed event), `dialect_audit_size` and
/// `dialect_audit_nodes` (where the chain and the tree are),
/// `dialect_insert_checkpoint` (with [`insert_checkpoint_sql`]), and fields
/// `audit_event_id` and `audit_event_claimed`.
#[macro_export]
macro_rules! audit_tx {
    ($ty:ty) => {
        #[$crate::async_trait]
        impl AuditTx for $ty {
            async fn append_audit(&mut self, event: &NewAuditEvent) -> StoreResult<()> {
                self.dialect_append_audit(event).await
            }

            fn claim_audit_event_id(&mut self) -> Option<Uuid> {
                (!std::mem::replace(&mut self.audit_event_claimed, true))
                    .then_some(self.audit_event_id)
            }

            async fn unaudited_rows(&mut self, limit: u32) -> StoreResult<Vec<UnauditedRow>> {
                self.dialect_unaudited_rows(limit).await
            }

            async fn audit_events(
                &mut self,
                filter: &AuditFilter,
            ) -> StoreResult<Vec<StoredAuditEvent>> {
                if filter.limit == 0 {
                    return Ok(Vec::new());
                }
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT seq, event_id, body, leaf_hash, chain_hash, recorded_at, actor, \
                     action, \
                     outcome, case_id, borrower_id FROM audit_events WHERE 1 = 1",
                );
                if let Some(case_id) = filter.case_id {
                    query.push(" AND case_id = ").push_bind(id_arg(case_id));
                }
                if let Some(borrower_id) = filter.borrower_id {
                    query
                        .push(" AND borrower_id = ")
                        .push_bind(id_arg(borrower_id));
                }
                if let Some(actor) = &filter.actor {
                    query.push(" AND actor = ").push_bind(actor.as_str());
                }
                if let Some(action) = &filter.action {
                    query.push(" AND action = ").push_bind(action.as_str());
                }
                if let Some(outcome) = &filter.outcome {
                    query.push(" AND outcome = ").push_bind(outcome.as_str());
                }
                // Text comparison is chronological: every stored and bound timestamp
                // has the same RFC 3339 UTC shape.
                if let Some(from) = filter.from {
                    query.push(" AND recorded_at >= ").push_bind(micros(from));
                }
                if let Some(to) = filter.to {
                    query.push(" AND recorded_at < ").push_bind(micros(to));
                }
                if let Some(after_seq) = filter.after_seq {
                    query.push(" AND seq > ").push_bind(after_seq);
                }
                query
                    .push(" ORDER BY seq LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows = query
                    .build()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.iter().map(audit_event_from_row).collect()
            }

            async fn insert_checkpoint(
                &mut self,
                checkpoint: &StoredCheckpoint,
            ) -> StoreResult<()> {
                let size = i64::try_from(checkpoint.tree_size)
                    .map_err(|_| invariant("a checkpoint size must fit a signed 64-bit integer"))?;
                self.dialect_insert_checkpoint(size, checkpoint).await
            }

            async fn latest_checkpoint(
                &mut self,
                max_size: u64,
            ) -> StoreResult<Option<StoredCheckpoint>> {
                let max_size = i64::try_from(max_size).unwrap_or(i64::MAX);
                let row = sqlx::query(
                    "SELECT tree_size, root, note, signed_at FROM audit_checkpoints \
                     WHERE tree_size <= $1 ORDER BY tree_size DESC, id DESC LIMIT 1",
                )
                .bind(max_size)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                row.map(|row| {
                    let size: i64 = get(&row, "tree_size")?;
                    let root: Vec<u8> = get(&row, "root")?;
                    Ok(StoredCheckpoint {
                        tree_size: u64::try_from(size)
                            .map_err(|_| corrupt("a checkpoint size is negative"))?,
                        root: root
                            .try_into()
                            .map_err(|_| corrupt("a checkpoint root is not 32 bytes"))?,
                        note: get(&row, "note")?,
                        signed_at: get(&row, "signed_at")?,
                    })
                })
                .transpose()
            }
            async fn audit_size(&mut self) -> StoreResult<u64> {
                self.dialect_audit_size().await
            }

            async fn audit_nodes(
                &mut self,
                positions: &[creditops_audit::NodePosition],
            ) -> StoreResult<Vec<Option<creditops_audit::Hash>>> {
                self.dialect_audit_nodes(positions).await
            }

            async fn insert_verified_head(&mut self, head: &VerifiedHead) -> StoreResult<()> {
                let size = i64::try_from(head.tree_size)
                    .map_err(|_| invariant("a verified size must fit a signed 64-bit integer"))?;
                sqlx::query(
                    "INSERT INTO audit_verified_heads (tree_size, chain_hash, note, verified_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
                )
                .bind(size)
                .bind(head.chain_hash.as_slice())
                .bind(&head.note)
                .bind(micros(head.verified_at))
                .execute(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn verified_heads(&mut self, limit: u32) -> StoreResult<Vec<VerifiedHead>> {
                let rows = sqlx::query(
                    "SELECT tree_size, chain_hash, note, verified_at FROM audit_verified_heads \
                     ORDER BY tree_size DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(map_sqlx_error)?;
                rows.iter()
                    .map(|row| {
                        let size: i64 = get(row, "tree_size")?;
                        let chain: Vec<u8> = get(row, "chain_hash")?;
                        Ok(VerifiedHead {
                            tree_size: u64::try_from(size)
                                .map_err(|_| corrupt("a verified size is negative"))?,
                            chain_hash: chain
                                .try_into()
                                .map_err(|_| corrupt("a verified chain value is not 32 bytes"))?,
                            note: get(row, "note")?,
                            verified_at: get(row, "verified_at")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

/// Stores a handed-out checkpoint, its size, root, note and time bound to
/// the four placeholders given.
#[doc(hidden)]
#[macro_export]
macro_rules! insert_checkpoint_sql {
    ($size:literal, $root:literal, $note:literal, $at:literal) => {
        concat!(
            "INSERT INTO audit_checkpoints (tree_size, root, note, signed_at) VALUES (",
            $size,
            ", ",
            $root,
            ", ",
            $note,
            ", ",
            $at,
            ")"
        )
    };
}
