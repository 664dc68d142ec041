//! A vote's facts about its borrowers in one statement (`VoteTx`), shared.
//!
//! The parts (relationship managers, related parties, the exposure held,
//! approved group membership changes, the rating, which members hold
//! active collateral, the stage and its transfers) are the statements of
//! their own methods, side by side in one `UNION ALL`: every part fills the
//! columns its row mapping reads and leaves the others NULL, so the same
//! mappings read it. Collateral is only flagged here: a member that holds
//! any is read by `active_collateral_of` afterwards (its valuations and
//! legal check are more statements per item anyway).

/// The columns of the combined statement and their SQL types (explicit, so
/// a NULL of one part never decides the type of another part's column).
const COLUMNS: [(&str, &str); 20] = [
    ("id", "UUID"),
    ("borrower_id", "UUID"),
    ("kind", "TEXT"),
    ("payload", "TEXT"),
    ("proposed_by", "TEXT"),
    ("proposed_at", "TIMESTAMPTZ"),
    ("status", "TEXT"),
    ("decided_by", "TEXT"),
    ("decided_at", "TIMESTAMPTZ"),
    ("class", "INTEGER"),
    ("pd", "TEXT"),
    ("method", "TEXT"),
    ("reason", "TEXT"),
    ("rated_by", "TEXT"),
    ("rated_at", "TIMESTAMPTZ"),
    ("rules_version", "BIGINT"),
    ("from_stage", "TEXT"),
    ("to_stage", "TEXT"),
    ("staff", "TEXT"),
    ("amount", "BIGINT"),
];

/// Bound parameters: `$1` the members (as the dialect's `in_ids` reads
/// them), `$2` the borrower, `$3` since, `$4` the time of the vote, `$5`
/// the group membership proposal kind.
const PARTS: [(&str, &[&str], &str); 9] = [
    (
        "manager",
        &["staff = relationship_manager"],
        "FROM borrowers WHERE relationship_manager IS NOT NULL AND id {in_ids}",
    ),
    (
        "related",
        &["staff = staff_id"],
        "FROM related_parties WHERE borrower_id {in_ids}",
    ),
    // The two exposure sums of `exposure_total`, each exact (BIGINT; out
    // of range is an error), added in Rust.
    (
        "reserved",
        &[
            "amount = CAST(COALESCE(SUM(CASE WHEN status = 'consumed' OR expires_at > $4 \
             THEN amount_minor ELSE 0 END), 0) AS BIGINT)",
        ],
        "FROM reservations WHERE status IN ('active', 'consumed') AND borrower_id {in_ids}",
    ),
    (
        "imported",
        &["amount = CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)"],
        "FROM imported_balances WHERE borrower_id {in_ids}",
    ),
    (
        "proposal",
        &[
            "id",
            "kind",
            "payload",
            "proposed_by",
            "proposed_at",
            "status",
            "decided_by",
            "decided_at",
        ],
        "FROM change_proposals WHERE kind = $5 AND status = 'approved' AND decided_at >= $3",
    ),
    (
        "rating",
        &[
            "borrower_id",
            "class",
            "pd",
            "method",
            "reason",
            "status",
            "rated_by",
            "rated_at",
            "rules_version",
        ],
        "FROM (SELECT borrower_id, class, pd, method, reason, status, rated_by, rated_at, \
         rules_version FROM ratings WHERE borrower_id = $2 AND status = 'set' \
         ORDER BY rated_at DESC, id DESC LIMIT 1) AS r",
    ),
    (
        "collateral",
        &["borrower_id"],
        "FROM (SELECT DISTINCT borrower_id FROM collateral \
         WHERE status = 'active' AND borrower_id {in_ids}) AS c",
    ),
    (
        "stage",
        STAGE_COLUMNS,
        "FROM (SELECT id, borrower_id, from_stage, to_stage, reason, decided_by, decided_at, \
         rules_version FROM stage_transfers WHERE borrower_id = $2 \
         ORDER BY decided_at DESC, id DESC LIMIT 1) AS s",
    ),
    (
        "stage_since",
        STAGE_COLUMNS,
        "FROM stage_transfers WHERE borrower_id = $2 AND decided_at >= $3",
    ),
];

const STAGE_COLUMNS: &[&str] = &[
    "id",
    "borrower_id",
    "from_stage",
    "to_stage",
    "reason",
    "decided_by",
    "decided_at",
    "rules_version",
];

/// The combined statement for a dialect whose test of a borrower id against
/// the bound list `$1` is `in_ids`. Rows come by part, and within a part by
/// decision time and id (the order of proposals and stage transfers).
pub fn vote_inputs_sql(in_ids: &str) -> String {
    let branches: Vec<String> = PARTS
        .iter()
        .map(|(part, filled, from)| branch(part, filled, &from.replace("{in_ids}", in_ids)))
        .collect();
    format!(
        "{} ORDER BY part, decided_at, id",
        branches.join(" UNION ALL ")
    )
}

/// [`vote_inputs_sql`] for the members of the borrower's group at `$4`, read
/// by the statement itself: `$1` binds the borrower alone, and the group
/// (`group_of`'s read) and its members (`group_members`' read, the borrower
/// added) come as two more parts, `group` (in `kind`) and `member` (in
/// `borrower_id`).
pub fn vote_inputs_of_group_sql(in_ids: &str) -> String {
    let members = "IN (SELECT id FROM members)";
    let mut branches: Vec<String> = PARTS
        .iter()
        .map(|(part, filled, from)| branch(part, filled, &from.replace("{in_ids}", members)))
        .collect();
    branches.push(branch("group", &["kind = group_id"], "FROM grp"));
    branches.push(branch("member", &["borrower_id = id"], "FROM members"));
    format!(
        "WITH grp AS (SELECT group_id FROM group_memberships WHERE borrower_id = $2 \
         AND valid_from <= $4 AND (valid_to IS NULL OR valid_to > $4) \
         ORDER BY valid_from DESC LIMIT 1), \
         members AS (SELECT id FROM borrowers WHERE id {in_ids} \
         UNION SELECT borrower_id FROM group_memberships \
         WHERE group_id = (SELECT group_id FROM grp) \
         AND valid_from <= $4 AND (valid_to IS NULL OR valid_to > $4)) \
         {} ORDER BY part, decided_at, id",
        branches.join(" UNION ALL ")
    )
}

/// One part's branch: every column of the statement, those the part fills
/// from its own expressions, the others NULL of their type.
fn branch(part: &str, filled: &[&str], from: &str) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, sql_type)| {
            let given = filled
                .iter()
                .find_map(|column| match column.split_once(" = ") {
                    Some((alias, expression)) if alias == *name => Some(expression),
                    None if column == name => Some(*column),
                    _ => None,
                });
            match given {
                Some(expression) => format!("{expression} AS {name}"),
                None => format!("CAST(NULL AS {sql_type}) AS {name}"),
            }
        })
        .collect();
    format!("SELECT '{part}' AS part, {} {from}", columns.join(", "))
}

/// Expands `VoteTx` for `$ty`. `$in_ids` is the dialect's test of a
/// borrower id against the bound list `$1`.
#[macro_export]
macro_rules! vote_tx {
    ($ty:ident, in_ids = $in_ids:literal) => {
        impl $ty {
            /// The facts of a vote from the rows of the combined statement,
            /// with the group and members its `group` and `member` parts
            /// name (none where the statement has no such parts). The
            /// collateral is read for `members`, or for the members the rows
            /// name where `members` is empty.
            async fn vote_inputs_from_rows(
                &mut self,
                rows: &[DbRow],
                members: &[BorrowerId],
            ) -> StoreResult<(VoteInputs, Option<UnitId>, Vec<BorrowerId>)> {
                let mut inputs = VoteInputs {
                    context: VoteContext::default(),
                    exposure: Decimal::ZERO,
                    group_changes: Vec::new(),
                    rating: None,
                    collateral: Vec::new(),
                    latest_stage: None,
                    stage_transfers: Vec::new(),
                };
                let mut sums = Vec::with_capacity(2);
                let mut with_collateral = BTreeSet::new();
                let mut group = None;
                let mut read_members = Vec::new();
                for row in rows {
                    match get::<String>(row, "part")?.as_str() {
                        "manager" => {
                            let staff: String = get(row, "staff")?;
                            inputs
                                .context
                                .relationship_managers
                                .insert(parse_text(&staff, "staff id")?);
                        }
                        "related" => {
                            let staff: String = get(row, "staff")?;
                            inputs
                                .context
                                .related_parties
                                .insert(parse_text(&staff, "staff id")?);
                        }
                        "reserved" | "imported" => sums.push(get::<i64>(row, "amount")?),
                        "proposal" => inputs.group_changes.push(proposal_from_row(row)?),
                        "rating" => inputs.rating = Some(rating_from_row(row)?),
                        "collateral" => {
                            with_collateral
                                .insert(BorrowerId::from_uuid(get_id(row, "borrower_id")?));
                        }
                        "stage" => {
                            inputs.latest_stage = Some(monitoring_sql::stage_from_row(row)?);
                        }
                        "stage_since" => inputs
                            .stage_transfers
                            .push(monitoring_sql::stage_from_row(row)?),
                        "group" => {
                            group = Some(parse_text(&get::<String>(row, "kind")?, "group id")?);
                        }
                        "member" => {
                            read_members.push(BorrowerId::from_uuid(get_id(row, "borrower_id")?));
                        }
                        _ => return Err(corrupt("a vote input row of no known part")),
                    }
                }
                if sums.len() != 2 {
                    return Err(corrupt("a vote's exposure sums are missing"));
                }
                inputs.exposure = sum_minor(&sums)?;
                read_members.sort();
                let members = if members.is_empty() {
                    &read_members
                } else {
                    members
                };
                for member in members {
                    if with_collateral.contains(member) {
                        inputs
                            .collateral
                            .extend(self.active_collateral_of(*member).await?);
                    }
                }
                Ok((inputs, group, read_members))
            }
        }

        #[$crate::async_trait]
        impl VoteTx for $ty {
            async fn vote_inputs(
                &mut self,
                query: &VoteInputsQuery<'_>,
            ) -> StoreResult<VoteInputs> {
                static SQL: std::sync::LazyLock<String> =
                    std::sync::LazyLock::new(|| $crate::votes::vote_inputs_sql($in_ids));
                let rows = sqlx::query(SQL.as_str())
                    .bind(ids_arg(query.members)?)
                    .bind(id_arg(query.borrower))
                    .bind(micros(query.since))
                    .bind(micros(query.at))
                    .bind(ProposalKind::GroupMembership.as_str())
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(self.vote_inputs_from_rows(&rows, query.members).await?.0)
            }

            async fn vote_inputs_of_group(
                &mut self,
                borrower: BorrowerId,
                since: Timestamp,
                at: Timestamp,
            ) -> StoreResult<GroupVoteInputs> {
                static SQL: std::sync::LazyLock<String> =
                    std::sync::LazyLock::new(|| $crate::votes::vote_inputs_of_group_sql($in_ids));
                let rows = sqlx::query(SQL.as_str())
                    .bind(ids_arg(&[borrower])?)
                    .bind(id_arg(borrower))
                    .bind(micros(since))
                    .bind(micros(at))
                    .bind(ProposalKind::GroupMembership.as_str())
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(map_sqlx_error)?;
                let (inputs, group, members) = self.vote_inputs_from_rows(&rows, &[]).await?;
                if !members.contains(&borrower) {
                    return Err(corrupt("a vote's borrower is not among its members"));
                }
                // Alone where it has no group, as `group_members_of` answers.
                let members = if group.is_some() {
                    members
                } else {
                    vec![borrower]
                };
                Ok(GroupVoteInputs {
                    group,
                    members,
                    inputs,
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{COLUMNS, PARTS, vote_inputs_sql};

    /// A column a part fills but the statement does not have would be
    /// dropped without a word: every filled name is one of the columns.
    #[test]
    fn every_filled_column_is_a_column_of_the_statement() {
        for (part, filled, _) in PARTS {
            for column in filled {
                let name = column.split_once(" = ").map_or(*column, |(alias, _)| alias);
                assert!(
                    COLUMNS.iter().any(|(known, _)| *known == name),
                    "part {part} fills {name}, which is no column"
                );
            }
        }
    }

    #[test]
    fn one_branch_per_part_with_every_column() {
        let sql = vote_inputs_sql("= ANY($1)");
        assert_eq!(sql.matches(" UNION ALL ").count(), PARTS.len() - 1);
        assert_eq!(sql.matches(" AS amount").count(), PARTS.len());
        assert!(!sql.contains("{in_ids}"));
    }
}
