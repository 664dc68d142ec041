//! Row mappings: one stored row to one domain value, the same for both
//! backends once ids and `INTEGER` columns are read through the dialect.

/// Expands, in a backend's transaction module, the column readers
/// (`get_id`, `get_int`, `get_staff` and their optional forms), the row
/// mappings (`borrower_from_row`, `vote_from_row`, `case_from_row`, `proposal_from_row`, `limit_version_from_row`,
/// `limit_from_row`, `reservation_from_row`, `breach_from_row`,
/// `capital_from_row`, `liquidity_from_row`, `exposure_from_row`,
/// `audit_event_from_row`) and `fetch_rule_sets`.
#[macro_export]
macro_rules! sql_rows {
    () => {
        fn get_id(row: &DbRow, column: &str) -> StoreResult<Uuid> {
            id_of(get(row, column)?)
        }

        fn get_opt_id(row: &DbRow, column: &str) -> StoreResult<Option<Uuid>> {
            get::<Option<DbId>>(row, column)?.map(id_of).transpose()
        }

        /// An `INTEGER` column, whatever width the backend reads it with.
        fn get_int(row: &DbRow, column: &str) -> StoreResult<i64> {
            Ok(get::<DbInt>(row, column)?.into())
        }

        fn get_staff(row: &DbRow, column: &str) -> StoreResult<StaffId> {
            parse_text(&get::<String>(row, column)?, "staff id")
        }

        fn get_opt_staff(row: &DbRow, column: &str) -> StoreResult<Option<StaffId>> {
            get::<Option<String>>(row, column)?
                .map(|id| parse_text(&id, "staff id"))
                .transpose()
        }

        /// Every rule-set version, ascending, in one statement (on a
        /// transaction or, for a read on its own, the pool).
        pub(crate) async fn fetch_rule_sets<'e, E>(executor: E) -> StoreResult<Vec<RuleSet>>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let rows: Vec<(i64, Timestamp, String)> = sqlx::query_as(
                "SELECT version, valid_from, parameters FROM rule_sets ORDER BY version",
            )
            .fetch_all(executor)
            .await
            .map_err(map_sqlx_error)?;
            rows.iter()
                .map(|(version, valid_from, parameters)| {
                    stored_rule_set(*version, *valid_from, parameters)
                })
                .collect()
        }

        fn vote_from_row(row: &DbRow) -> StoreResult<Vote> {
            Ok(Vote {
                stage: parse_text(&get::<String>(row, "stage")?, "vote stage")?,
                voter: Voter {
                    staff_id: get_staff(row, "voter_id")?,
                    unit_id: parse_text(&get::<String>(row, "unit_id")?, "unit id")?,
                    side: parse_text(&get::<String>(row, "side")?, "side")?,
                    competence_level: level(get_int(row, "competence_level")?)?,
                    left_market_at: get(row, "left_market_at")?,
                },
                decision: parse_text(&get::<String>(row, "decision")?, "vote decision")?,
                rationale: get(row, "rationale")?,
                file_version: get(row, "file_version")?,
                content_hash: get(row, "content_hash")?,
                cast_at: get(row, "cast_at")?,
                round: round(get_int(row, "round")?)?,
                required_level: level(get_int(row, "required_level")?)?,
                checks: serde_json::from_str::<Vec<RuleCheck>>(&get::<String>(row, "checks")?)
                    .map_err(|_| corrupt("the rule checks of a vote are not valid"))?,
            })
        }

        /// A case row with the votes and the stored decision read beside it;
        /// `round_column` names the case's round (a join may rename it).
        fn case_from_row(
            row: &DbRow,
            id: CaseId,
            round_column: &str,
            votes: Vec<Vote>,
            decision_json: Option<String>,
        ) -> StoreResult<CreditCase> {
            let file = CaseFile {
                borrower_id: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                amount: money(get(row, "amount_minor")?, &get::<String>(row, "currency")?)?,
                product: get(row, "product")?,
                term_months: u32::try_from(get_int(row, "term_months")?)
                    .map_err(|_| corrupt("term out of range"))?,
                purpose: get(row, "purpose")?,
                kind: parse_text(&get::<String>(row, "kind")?, "decision kind")?,
                base: credit_base_from_row(row)?,
                released: get::<Option<DbId>>(row, "released_collateral_id")?
                    .map(|id| id_of(id).map(creditops_domain::CollateralId::from_uuid))
                    .transpose()?,
                // Read beside the row by `case` (L2).
                documents: Vec::new(),
            };
            let editors = get::<String>(row, "editors")?;
            let board_resolution = get::<Option<String>>(row, "board_resolution")?
                .map(|json| {
                    serde_json::from_str::<BoardResolution>(&json)
                        .map_err(|_| corrupt("a stored board resolution is not valid"))
                })
                .transpose()?;
            let decision = decision_json
                .map(|json| {
                    serde_json::from_str::<Decision>(&json)
                        .map_err(|_| corrupt("a stored decision is not valid"))
                })
                .transpose()?;
            Ok(CreditCase {
                id,
                file,
                status: parse_text(&get::<String>(row, "status")?, "case status")?,
                version: get(row, "version")?,
                revision: get(row, "revision")?,
                originator: get_staff(row, "originator")?,
                editors: serde_json::from_str::<BTreeSet<StaffId>>(&editors)
                    .map_err(|_| corrupt("the stored editors of a case are not valid"))?,
                round: round(get_int(row, round_column)?)?,
                escalation_level: get::<Option<DbInt>>(row, "escalation_level")?
                    .map(|value| level(value.into()))
                    .transpose()?,
                related_party: get(row, "related_party")?,
                board_resolution,
                votes,
                decision,
                conditions: from_json(&get::<String>(row, "conditions")?, "conditions")?,
                return_reason: get(row, "return_reason")?,
                created_at: get(row, "created_at")?,
                updated_at: get(row, "updated_at")?,
            })
        }

        /// The credit a change case was opened on (L1), from its columns.
        fn credit_base_from_row(row: &DbRow) -> StoreResult<Option<CreditBase>> {
            let Some(credit_id) = get::<Option<DbId>>(row, "credit_id")? else {
                return Ok(None);
            };
            let currency = get::<String>(row, "currency")?;
            let minor = get::<Option<i64>>(row, "credit_amount_minor")?
                .ok_or_else(|| corrupt("a change case names no credit amount"))?;
            let term = get::<Option<DbInt>>(row, "credit_term_months")?
                .ok_or_else(|| corrupt("a change case names no credit term"))?;
            Ok(Some(CreditBase {
                credit_id: CreditId::from_uuid(id_of(credit_id)?),
                version: get::<Option<i64>>(row, "credit_version")?
                    .ok_or_else(|| corrupt("a change case names no credit version"))?,
                amount: money(minor, &currency)?.amount(),
                currency,
                term_months: u32::try_from(i64::from(term))
                    .map_err(|_| corrupt("a credit term is out of range"))?,
            }))
        }

        fn audit_event_from_row(row: &DbRow) -> StoreResult<StoredAuditEvent> {
            Ok(StoredAuditEvent {
                seq: get(row, "seq")?,
                event_id: get_id(row, "event_id")?,
                body: get(row, "body")?,
                leaf_hash: get(row, "leaf_hash")?,
                chain_hash: get(row, "chain_hash")?,
                recorded_at: get::<Timestamp>(row, "recorded_at")?,
                actor: get(row, "actor")?,
                action: get(row, "action")?,
                outcome: get(row, "outcome")?,
                case_id: get_opt_id(row, "case_id")?.map(CaseId::from_uuid),
                borrower_id: get_opt_id(row, "borrower_id")?.map(BorrowerId::from_uuid),
            })
        }

        fn proposal_from_row(row: &DbRow) -> StoreResult<ChangeProposal> {
            let payload: String = get(row, "payload")?;
            Ok(ChangeProposal {
                id: get_id(row, "id")?,
                kind: parse_text(&get::<String>(row, "kind")?, "proposal kind")?,
                payload: serde_json::from_str(&payload)
                    .map_err(|_| corrupt("a stored proposal payload is not valid JSON"))?,
                proposed_by: get_staff(row, "proposed_by")?,
                proposed_at: get(row, "proposed_at")?,
                status: parse_text(&get::<String>(row, "status")?, "proposal status")?,
                decided_by: get_opt_staff(row, "decided_by")?,
                decided_at: get(row, "decided_at")?,
            })
        }

        fn subject_from_row(row: &DbRow) -> StoreResult<LimitSubject> {
            let kind: LimitKind =
                parse_text(&get::<String>(row, "subject_kind")?, "limit subject kind")?;
            LimitSubject::parse(kind, &get::<String>(row, "subject_key")?)
                .map_err(|_| corrupt("a stored limit subject is not valid"))
        }

        fn limit_version_from_row(row: &DbRow) -> StoreResult<LimitVersion> {
            Ok(LimitVersion {
                id: get_id(row, "id")?,
                subject: subject_from_row(row)?,
                version: get(row, "version")?,
                amount: from_minor(get(row, "amount_minor")?),
                tolerance_percent: parse_text(
                    &get::<String>(row, "tolerance_percent")?,
                    "limit tolerance",
                )?,
                reason: get(row, "reason")?,
                proposed_by: get_staff(row, "proposed_by")?,
                proposed_at: get(row, "proposed_at")?,
                status: parse_text(&get::<String>(row, "status")?, "limit status")?,
                decided_by: get_opt_staff(row, "decided_by")?,
                decided_at: get(row, "decided_at")?,
            })
        }

        /// A limit in force: id, subject, version, amount and tolerance.
        fn limit_from_row(row: &DbRow) -> StoreResult<Limit> {
            Ok(Limit {
                id: get_id(row, "id")?,
                subject: subject_from_row(row)?,
                version: get(row, "version")?,
                amount: from_minor(get(row, "amount_minor")?),
                tolerance_percent: parse_text(
                    &get::<String>(row, "tolerance_percent")?,
                    "limit tolerance",
                )?,
            })
        }

        fn reservation_from_row(row: &DbRow) -> StoreResult<Reservation> {
            Ok(Reservation {
                case_id: CaseId::from_uuid(get_id(row, "case_id")?),
                borrower: BorrowerId::from_uuid(get_id(row, "borrower_id")?),
                amount: from_minor(get(row, "amount_minor")?),
                status: parse_text(&get::<String>(row, "status")?, "reservation status")?,
                reserved_at: get(row, "reserved_at")?,
                expires_at: get(row, "expires_at")?,
                closed_at: get(row, "closed_at")?,
                closed_by: get_opt_staff(row, "closed_by")?,
            })
        }

        fn breach_from_row(row: &DbRow) -> StoreResult<Breach> {
            Ok(Breach {
                id: get_id(row, "id")?,
                subject: get(row, "subject")?,
                rule: parse_text(&get::<String>(row, "rule")?, "breach rule")?,
                check: get(row, "check_name")?,
                limit: parse_text(&get::<String>(row, "limit_value")?, "breach limit")?,
                usage: parse_text(&get::<String>(row, "usage_value")?, "breach usage")?,
                amount_over: parse_text(&get::<String>(row, "amount_over")?, "breach amount")?,
                severity: severity_of(&get::<String>(row, "severity")?)?,
                cause: get(row, "cause")?,
                owner: get(row, "owner")?,
                detected_at: get(row, "detected_at")?,
                resolved_at: get(row, "resolved_at")?,
            })
        }

        /// Borrower `id` from a row of its columns.
        fn borrower_from_row(id: BorrowerId, row: &DbRow) -> StoreResult<Borrower> {
            Ok(Borrower {
                id,
                name: get(row, "name")?,
                country: parse_text(&get::<String>(row, "country")?, "country")?,
                sector: parse_text(&get::<String>(row, "sector")?, "sector")?,
                institution: get(row, "institution")?,
                relationship_manager: get::<Option<String>>(row, "relationship_manager")?
                    .map(|id| parse_text(&id, "staff id"))
                    .transpose()?,
                created_by: get_staff(row, "created_by")?,
                created_at: get(row, "created_at")?,
            })
        }

        fn capital_from_row(row: &DbRow) -> StoreResult<Capital> {
            Ok(Capital {
                version: get(row, "version")?,
                tier1: from_minor(get(row, "tier1_minor")?),
                recorded_by: get_staff(row, "recorded_by")?,
                recorded_at: get(row, "recorded_at")?,
            })
        }

        fn liquidity_from_row(row: &DbRow) -> StoreResult<LiquidityPosition> {
            Ok(LiquidityPosition {
                version: get(row, "version")?,
                hqla: from_minor(get(row, "hqla_minor")?),
                outflows_30d: from_minor(get(row, "outflows_minor")?),
                inflows_30d: from_minor(get(row, "inflows_minor")?),
                floor_percent: parse_text(
                    &get::<String>(row, "floor_percent")?,
                    "liquidity floor",
                )?,
                recorded_by: get_staff(row, "recorded_by")?,
                recorded_at: get(row, "recorded_at")?,
            })
        }

        /// A row of an exposure query: id, group_id, sector, country,
        /// institution and the reserved, consumed and imported sums.
        fn exposure_from_row(row: &DbRow) -> StoreResult<BorrowerExposure> {
            Ok(BorrowerExposure {
                borrower: BorrowerId::from_uuid(get_id(row, "id")?),
                group: get(row, "group_id")?,
                sector: parse_text(&get::<String>(row, "sector")?, "sector")?,
                country: parse_text(&get::<String>(row, "country")?, "country")?,
                institution: get(row, "institution")?,
                reserved: from_minor(get(row, "reserved")?),
                outstanding: sum_minor(&[get(row, "consumed")?, get(row, "imported")?])?,
            })
        }

        /// Maps an error, replacing the generic conflict text with `message`.
        fn conflict(message: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
            move |err| conflict_as(map_sqlx_error(err), message)
        }
    };
}
