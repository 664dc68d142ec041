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
            // First votes only (row policy); decisions and reservations for
            // declines and the single-vote lane (V8); disbursement closes the
            // reservation; the watcher records breaches an approval causes.
            ("votes", "INSERT"),
            ("decisions", "INSERT"),
            ("reservations", "INSERT, UPDATE"),
            // The claim a single-vote approval takes first (R5, R6).
            ("liquidity_claims", "INSERT, DELETE"),
            ("breaches", "INSERT, UPDATE"),
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
        ],
    },
    ServiceGrants {
        service: "risk",
        writes: &[
            ("limit_versions", "INSERT, UPDATE"),
            ("imported_balances", "INSERT, UPDATE"),
            ("capital_versions", "INSERT"),
            ("liquidity_positions", "INSERT"),
            ("breaches", "INSERT, UPDATE"),
            // Expiry of reservations by the watcher (R5).
            ("reservations", "UPDATE"),
            // Tier 1 and liquidity are proposed and decided four-eyes (R3, R6).
            ("change_proposals", "INSERT, UPDATE"),
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
        ],
    },
    ServiceGrants {
        service: "admin",
        writes: &[
            ("staff", "INSERT, UPDATE"),
            ("org_units", "INSERT, UPDATE"),
            ("unit_assignments", "INSERT"),
            ("role_assignments", "INSERT"),
            ("competence_grants", "INSERT"),
            ("rule_sets", "INSERT"),
            ("change_proposals", "INSERT, UPDATE"),
        ],
    },
];

/// Which votes a side may insert: its own stage, cast from its own side (S1).
const VOTE_POLICIES: &[(&str, &str)] = &[
    ("market", "stage = 'first' AND side = 'market'"),
    ("backoffice", "stage = 'second' AND side = 'backoffice'"),
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
    // reads every vote; each side inserts only its own stage.
    sql.push(format!(
        "ALTER TABLE {schema}.votes ENABLE ROW LEVEL SECURITY"
    ));
    let readers = roles.join(", ");
    sql.push(format!(
        "DROP POLICY IF EXISTS {prefix}_read ON {schema}.votes"
    ));
    sql.push(format!(
        "CREATE POLICY {prefix}_read ON {schema}.votes FOR SELECT TO {readers} USING (true)"
    ));
    for (service, check) in VOTE_POLICIES {
        let role = role_name(prefix, service);
        sql.push(format!(
            "DROP POLICY IF EXISTS {role}_insert ON {schema}.votes"
        ));
        sql.push(format!(
            "CREATE POLICY {role}_insert ON {schema}.votes FOR INSERT TO {role} WITH CHECK ({check})"
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
}
