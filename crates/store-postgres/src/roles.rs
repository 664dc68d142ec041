//! Least-privilege database roles, one per service (MaRisk BTO 1.1 down to
//! the database): a service's role may write only what that side of the bank
//! writes, so a compromised market process cannot cast a second vote or set a
//! limit even with hand-written SQL. Nobody but the owner may change schema,
//! and nobody at all may UPDATE or DELETE audit rows (grants here, triggers in
//! the migrations).
//!
//! `provision` is idempotent: it creates missing roles, revokes everything a
//! role holds on this schema and grants the matrix below again, so running it
//! after every migration keeps the grants exact.

use crate::map_sqlx_error;
use creditops_store::StoreError;
use sqlx::{AssertSqlSafe, PgPool};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "role prefix {0:?}: use lower-case letters, digits and '_', starting with a letter (at most 40)"
    )]
    InvalidPrefix(String),
    #[error("provisioning failed: {0}")]
    Store(#[from] StoreError),
}

/// What one service's role may write, beyond what every role may do (read
/// every table, append audit events and idempotency records, keep console
/// sessions).
#[derive(Debug, Clone, Copy)]
pub struct ServiceGrants {
    pub service: &'static str,
    /// `(table, privileges)`; privileges are SQL keywords joined by commas.
    pub writes: &'static [(&'static str, &'static str)],
}

/// Every service role may do this.
const COMMON_WRITES: &[(&str, &str)] = &[
    ("audit_entries", "INSERT"),
    ("idempotency_keys", "INSERT"),
    // Every service serves its own console desk (issue 19).
    ("console_sessions", "INSERT, UPDATE"),
];

/// The write matrix. Reviewed against the store's statements: every INSERT
/// and UPDATE a service's routes (and the shared command code they call) run
/// is listed, nothing more. Votes are further restricted by row (below).
pub const SERVICE_GRANTS: &[ServiceGrants] = &[
    ServiceGrants {
        service: "market",
        writes: &[
            ("borrowers", "INSERT"),
            ("cases", "INSERT, UPDATE"),
            // First votes only (row policy); decisions only for declines
            // and, where a rule set opened it, the single-vote lane (row
            // policy; V8), reservations for that lane; disbursement closes
            // the reservation; the watcher records breaches an approval
            // causes. A case is approved only with an approved decision
            // resting on two votes (triggers in the migrations).
            ("votes", "INSERT"),
            ("decisions", "INSERT"),
            ("reservations", "INSERT, UPDATE"),
            // The claim a single-vote approval takes first (R5, R6).
            ("liquidity_claims", "INSERT, DELETE"),
            ("breaches", "INSERT, UPDATE"),
            // Collateral registered, values proposed (or, at or below the
            // threshold, recorded) by market (L3).
            ("collateral", "INSERT"),
            ("collateral_valuations", "INSERT"),
            // A single-vote approval makes or changes the credit (L1).
            ("credits", "INSERT, UPDATE"),
            ("credit_versions", "INSERT"),
            // Rating proposals only (row policy; L4).
            ("ratings", "INSERT"),
            // The credit file (L2): documents of the unit's cases and of
            // borrowers, superseded once; key financials.
            ("credit_documents", "INSERT, UPDATE (superseded_by)"),
            ("document_contents", "INSERT"),
            ("borrower_financials", "INSERT, UPDATE"),
            // Negative information (row policy; L7); the evaluation it
            // triggers lists the borrower and opens an ad-hoc review (L6).
            ("borrower_flags", "INSERT"),
            ("watch_list", "INSERT, UPDATE"),
            ("reviews", "INSERT"),
        ],
    },
    ServiceGrants {
        service: "backoffice",
        writes: &[
            ("cases", "UPDATE"),
            // Second votes only (row policy).
            ("votes", "INSERT"),
            ("decisions", "INSERT"),
            ("reservations", "INSERT"),
            // The claim an approving second vote takes first (R5, R6).
            ("liquidity_claims", "INSERT, DELETE"),
            ("breaches", "INSERT, UPDATE"),
            ("borrower_groups", "INSERT"),
            ("group_memberships", "INSERT, UPDATE"),
            ("related_parties", "INSERT"),
            // The four-eyes decision on a limit the risk side proposed (R8).
            ("limit_versions", "UPDATE"),
            // Group membership is proposed and decided four-eyes (V4).
            ("change_proposals", "INSERT, UPDATE"),
            // Effective valuations, confirmations of market proposals and
            // legal-validity checks of collateral (L3); a release by an
            // approved decision.
            ("collateral", "UPDATE"),
            ("collateral_valuations", "INSERT, UPDATE"),
            ("collateral_legal_checks", "INSERT"),
            // An approval makes or changes the credit (L1).
            ("credits", "INSERT, UPDATE"),
            ("credit_versions", "INSERT"),
            // Ratings are set by back office only (row policy; L4).
            ("ratings", "INSERT"),
            // The credit file (L2): borrower documents and key financials.
            ("credit_documents", "INSERT, UPDATE (superseded_by)"),
            ("document_contents", "INSERT"),
            ("borrower_financials", "INSERT, UPDATE"),
            // Monitoring (L6-L10): flags, the watch list, reviews, stages
            // with their plans, provisions and the alerts they raise.
            ("borrower_flags", "INSERT, UPDATE"),
            ("watch_list", "INSERT, UPDATE"),
            ("reviews", "INSERT, UPDATE"),
            ("stage_transfers", "INSERT"),
            ("plan_milestones", "INSERT, UPDATE"),
            ("provisions", "INSERT, UPDATE"),
            ("monitoring_alerts", "INSERT"),
        ],
    },
    ServiceGrants {
        service: "risk",
        writes: &[
            // Proposals only (row policy): the decision is the back
            // office's (R8).
            ("limit_versions", "INSERT"),
            ("imported_balances", "INSERT, UPDATE"),
            ("capital_versions", "INSERT"),
            ("liquidity_positions", "INSERT"),
            ("breaches", "INSERT, UPDATE"),
            // Expiry of reservations by the watcher (R5).
            ("reservations", "UPDATE"),
            // Tier 1 and liquidity are proposed and decided four-eyes (R3, R6).
            ("change_proposals", "INSERT, UPDATE"),
            // The watcher's early warning and review schedule (L6, L7);
            // negative information (row policy).
            ("borrower_flags", "INSERT"),
            ("watch_list", "INSERT, UPDATE"),
            ("reviews", "INSERT, UPDATE"),
            ("monitoring_alerts", "INSERT"),
        ],
    },
    ServiceGrants {
        service: "audit",
        // Read-only on business data; links and signs the chain (sequencer).
        writes: &[
            ("audit_chain", "INSERT"),
            ("audit_tree", "INSERT"),
            ("audit_heads", "INSERT"),
            ("audit_checkpoints", "INSERT"),
            ("audit_verified_heads", "INSERT"),
        ],
    },
    ServiceGrants {
        service: "admin",
        // Role assignments, competence grants and rule sets only under a
        // change proposal approved in the same transaction (S9; constraint
        // triggers in the migrations bind every role but the owner).
        writes: &[
            ("staff", "INSERT, UPDATE"),
            ("org_units", "INSERT, UPDATE"),
            // A unit move, a role's end and a leaver end entries of the
            // dated history: `valid_to` only (a trigger allows nothing else).
            ("unit_assignments", "INSERT, UPDATE (valid_to)"),
            ("role_assignments", "INSERT, UPDATE (valid_to)"),
            ("competence_grants", "INSERT, UPDATE (valid_to)"),
            ("rule_sets", "INSERT"),
            ("change_proposals", "INSERT, UPDATE"),
        ],
    },
];

/// A row policy: which rows of `table` a service's role may write with
/// `command` (the privilege itself comes from [`SERVICE_GRANTS`]).
#[derive(Debug, Clone, Copy)]
pub struct RowPolicy {
    pub table: &'static str,
    pub service: &'static str,
    /// `INSERT` or `UPDATE`.
    pub command: &'static str,
    /// The `WITH CHECK` condition on the written row.
    pub check: &'static str,
}

/// Tables under row-level security: every role reads every row; a role
/// writes only rows one of its [`ROW_POLICIES`] admits.
const POLICED_TABLES: &[&str] = &[
    "votes",
    "decisions",
    "limit_versions",
    "change_proposals",
    "collateral_valuations",
    "ratings",
    "borrower_flags",
];

/// Which rows a side may write (S1, V1, V8, R8, S9).
pub const ROW_POLICIES: &[RowPolicy] = &[
    // Each side casts only its own vote, from its own side (S1).
    RowPolicy {
        table: "votes",
        service: "market",
        command: "INSERT",
        check: "stage = 'first' AND side = 'market'",
    },
    RowPolicy {
        table: "votes",
        service: "backoffice",
        command: "INSERT",
        check: "stage = 'second' AND side = 'backoffice'",
    },
    // Market declines alone; it approves alone only in the single-vote lane,
    // where a four-eyes rule set opened it (V8). Whatever the role, the
    // decisions_need_votes trigger checks the votes an approval rests on.
    RowPolicy {
        table: "decisions",
        service: "market",
        command: "INSERT",
        check: "outcome = 'declined' OR creditops_single_vote_lane_open(decided_at)",
    },
    RowPolicy {
        table: "decisions",
        service: "backoffice",
        command: "INSERT",
        check: "true",
    },
    // Back office sets ratings; market only proposes them (L4).
    RowPolicy {
        table: "ratings",
        service: "market",
        command: "INSERT",
        check: "status = 'proposed'",
    },
    RowPolicy {
        table: "ratings",
        service: "backoffice",
        command: "INSERT",
        check: "status = 'set'",
    },
    // Anyone raises negative information; back office alone records a
    // covenant breach and clears a flag (L7).
    RowPolicy {
        table: "borrower_flags",
        service: "market",
        command: "INSERT",
        check: "kind = 'negative_information' AND cleared_at IS NULL",
    },
    RowPolicy {
        table: "borrower_flags",
        service: "risk",
        command: "INSERT",
        check: "kind = 'negative_information' AND cleared_at IS NULL",
    },
    RowPolicy {
        table: "borrower_flags",
        service: "backoffice",
        command: "INSERT",
        check: "true",
    },
    RowPolicy {
        table: "borrower_flags",
        service: "backoffice",
        command: "UPDATE",
        check: "true",
    },
    // Risk control proposes limits; back office decides them (R8).
    RowPolicy {
        table: "limit_versions",
        service: "risk",
        command: "INSERT",
        check: "status = 'pending' AND decided_by IS NULL AND decided_at IS NULL",
    },
    RowPolicy {
        table: "limit_versions",
        service: "backoffice",
        command: "UPDATE",
        check: "true",
    },
    // Each desk proposes (pending) and decides only its own kinds: the
    // directory and the rules at admin, group membership at back office,
    // Tier 1 and liquidity at risk control (S9, V4, R3, R6).
    RowPolicy {
        table: "change_proposals",
        service: "admin",
        command: "INSERT",
        check: concat!(
            "status = 'pending' AND kind IN ('role_assignment', 'competence_grant', ",
            "'rule_set', 'staff_onboarding', 'unit_move', 'role_end', 'suspension', 'leaver')"
        ),
    },
    RowPolicy {
        table: "change_proposals",
        service: "admin",
        command: "UPDATE",
        check: concat!(
            "kind IN ('role_assignment', 'competence_grant', 'rule_set', ",
            "'staff_onboarding', 'unit_move', 'role_end', 'suspension', 'leaver')"
        ),
    },
    RowPolicy {
        table: "change_proposals",
        service: "backoffice",
        command: "INSERT",
        check: "status = 'pending' AND kind = 'group_membership'",
    },
    RowPolicy {
        table: "change_proposals",
        service: "backoffice",
        command: "UPDATE",
        check: "kind = 'group_membership'",
    },
    RowPolicy {
        table: "change_proposals",
        service: "risk",
        command: "INSERT",
        check: "status = 'pending' AND kind IN ('tier1_capital', 'liquidity_position')",
    },
    RowPolicy {
        table: "change_proposals",
        service: "risk",
        command: "UPDATE",
        check: "kind IN ('tier1_capital', 'liquidity_position')",
    },
    // Each side records valuations as its own; market's are never
    // confirmed by market, back office's are effective at once; back
    // office confirms market proposals only (L3).
    RowPolicy {
        table: "collateral_valuations",
        service: "market",
        command: "INSERT",
        check: "side = 'market' AND confirmed_by IS NULL",
    },
    RowPolicy {
        table: "collateral_valuations",
        service: "backoffice",
        command: "INSERT",
        check: "side = 'backoffice' AND status = 'effective'",
    },
    RowPolicy {
        table: "collateral_valuations",
        service: "backoffice",
        command: "UPDATE",
        check: "side = 'market'",
    },
];

/// The role name of `service` under `prefix` (e.g. `creditops_market`).
pub fn role_name(prefix: &str, service: &str) -> String {
    format!("{prefix}_{service}")
}

/// A prefix is used unquoted in SQL: lower-case letters, digits and `_`,
/// starting with a letter, short enough for PostgreSQL's 63-byte names.
pub fn valid_prefix(prefix: &str) -> bool {
    (1..=40).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The statements that provision the roles under `prefix` in `schema` of
/// `database` (both quoted by the caller's server via `quote_ident`).
fn statements(prefix: &str, database: &str, schema: &str) -> Vec<String> {
    let mut sql = Vec::new();
    let roles: Vec<String> = SERVICE_GRANTS
        .iter()
        .map(|g| role_name(prefix, g.service))
        .collect();
    for role in &roles {
        // LOGIN without a password: set one with ALTER ROLE, or use
        // certificate authentication; this tool never handles secrets.
        sql.push(format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ));
        sql.push(format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}"
        ));
        sql.push(format!("REVOKE CREATE ON SCHEMA {schema} FROM {role}"));
        sql.push(format!("GRANT CONNECT ON DATABASE {database} TO {role}"));
        sql.push(format!("GRANT USAGE ON SCHEMA {schema} TO {role}"));
        sql.push(format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"
        ));
        sql.push(format!(
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"
        ));
        for (table, privileges) in COMMON_WRITES {
            sql.push(format!("GRANT {privileges} ON {schema}.{table} TO {role}"));
        }
    }
    for grants in SERVICE_GRANTS {
        let role = role_name(prefix, grants.service);
        for (table, privileges) in grants.writes {
            sql.push(format!("GRANT {privileges} ON {schema}.{table} TO {role}"));
        }
    }
    // Row policies bind the roles only (the owner bypasses them): every role
    // reads every row; each side writes only the rows its policies admit.
    let readers = roles.join(", ");
    for table in POLICED_TABLES {
        sql.push(format!(
            "ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY"
        ));
        sql.push(format!(
            "DROP POLICY IF EXISTS {prefix}_read ON {schema}.{table}"
        ));
        sql.push(format!(
            "CREATE POLICY {prefix}_read ON {schema}.{table} FOR SELECT TO {readers} USING (true)"
        ));
    }
    for policy in ROW_POLICIES {
        let RowPolicy {
            table,
            service,
            command,
            check,
        } = policy;
        let role = role_name(prefix, service);
        let name = format!("{role}_{}", command.to_ascii_lowercase());
        sql.push(format!("DROP POLICY IF EXISTS {name} ON {schema}.{table}"));
        // An update may only touch rows the check admits before, too.
        let using = if *command == "UPDATE" {
            format!(" USING ({check})")
        } else {
            String::new()
        };
        sql.push(format!(
            "CREATE POLICY {name} ON {schema}.{table} FOR {command} TO {role}{using} \
             WITH CHECK ({check})"
        ));
    }
    sql
}

/// Creates (or re-grants) one role per service under `prefix` on the
/// database `pool` is connected to, as the schema's owner, in one
/// transaction. Returns the role names.
pub async fn provision(pool: &PgPool, prefix: &str) -> Result<Vec<String>, ProvisionError> {
    if !valid_prefix(prefix) {
        return Err(ProvisionError::InvalidPrefix(prefix.to_owned()));
    }
    let mut tx = pool.begin().await.map_err(map_sqlx_error)?;
    // "policy ... does not exist, skipping" is expected on a first run.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx_error)?;
    let (database, schema): (String, String) =
        sqlx::query_as("SELECT quote_ident(current_database()), quote_ident(current_schema())")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
    for statement in statements(prefix, &database, &schema) {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?;
    }
    tx.commit().await.map_err(map_sqlx_error)?;
    Ok(SERVICE_GRANTS
        .iter()
        .map(|g| role_name(prefix, g.service))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_identifiers() {
        for good in ["creditops", "bank_a", "t1"] {
            assert!(valid_prefix(good), "{good}");
        }
        for bad in [
            "",
            "Creditops",
            "1x",
            "a-b",
            "a;drop",
            "a b",
            &"x".repeat(41),
        ] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn nobody_may_change_or_delete_audit_rows() {
        for grants in SERVICE_GRANTS {
            for (table, privileges) in grants.writes.iter().chain(COMMON_WRITES) {
                if table.starts_with("audit_") {
                    assert_eq!(*privileges, "INSERT", "{} on {table}", grants.service);
                }
                // Records are never deleted; a liquidity claim is not a
                // record but a short-lived marker of an approval in flight.
                assert!(
                    !privileges.contains("DELETE") || *table == "liquidity_claims",
                    "{} on {table}",
                    grants.service
                );
                assert!(
                    !privileges.contains("TRUNCATE"),
                    "{} on {table}",
                    grants.service
                );
            }
        }
    }

    #[test]
    fn sides_keep_apart() {
        let writes = |service: &str| -> Vec<&str> {
            SERVICE_GRANTS
                .iter()
                .filter(|g| g.service == service)
                .flat_map(|g| g.writes.iter().map(|(t, _)| *t))
                .collect()
        };
        assert!(!writes("market").contains(&"limit_versions"));
        assert!(!writes("audit").iter().any(|t| !t.starts_with("audit_")));
        assert!(!writes("backoffice").contains(&"borrowers"));
    }

    #[test]
    fn row_policies_cover_granted_writes_on_policed_tables() {
        for policy in ROW_POLICIES {
            assert!(POLICED_TABLES.contains(&policy.table), "{policy:?}");
            let granted = SERVICE_GRANTS
                .iter()
                .filter(|g| g.service == policy.service)
                .flat_map(|g| g.writes.iter())
                .any(|(t, p)| *t == policy.table && p.contains(policy.command));
            assert!(granted, "{policy:?} has no matching grant");
        }
        // Risk control proposes limits and decides none (R8).
        let risk_limits = SERVICE_GRANTS
            .iter()
            .filter(|g| g.service == "risk")
            .flat_map(|g| g.writes.iter())
            .find(|(t, _)| *t == "limit_versions");
        assert_eq!(risk_limits, Some(&("limit_versions", "INSERT")));
    }
}
