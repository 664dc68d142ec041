//! Test support for PostgreSQL: which server to use, and a throw-away
//! database per test. Behind the `testing` feature (not `cfg(test)`) so that
//! end-to-end tests in other crates use the same rules.
//!
//! ```ignore
//! let Some(base) = pg_test_url() else { return };   // skipped, or panics in CI
//! let db = TestDatabase::create(&base).await;
//! let store = PgStore::connect(&db.url, "origin", 8).await?;
//! // ... test ...
//! store.close().await;
//! db.drop_database().await;
//! ```
//!
//! These helpers panic on failure: they only run inside tests.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Environment variable naming the server (any existing database on it).
pub const TEST_URL_VAR: &str = "CREDITOPS_TEST_PG_URL";
/// Set to `1` (as CI does) to turn a missing [`TEST_URL_VAR`] into a failure.
pub const REQUIRE_VAR: &str = "CREDITOPS_REQUIRE_PG";

/// The PostgreSQL server for tests: `CREDITOPS_TEST_PG_URL`. If it is unset,
/// the test is skipped (`None`, with a note on stderr), unless
/// `CREDITOPS_REQUIRE_PG=1`, in which case this panics.
pub fn pg_test_url() -> Option<String> {
    match std::env::var(TEST_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!(
                    "{REQUIRE_VAR}=1 but {TEST_URL_VAR} is not set: the PostgreSQL tests must \
                     run here (e.g. {TEST_URL_VAR}=postgres://postgres@127.0.0.1:5432/test)"
                );
            }
            eprintln!("skipping PostgreSQL test: {TEST_URL_VAR} is not set");
            None
        }
    }
}

/// A freshly created, uniquely named database on the test server.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database (the base URL with another path).
    pub url: String,
    /// Its name, `creditops_test_<32 hex digits>`.
    pub name: String,
    base_url: String,
    /// Roles provisioned for this database, dropped with it.
    roles: Vec<String>,
}

impl TestDatabase {
    /// Creates a new empty database on the server of `base_url`.
    pub async fn create(base_url: &str) -> TestDatabase {
        let name = format!("creditops_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = match PgConnection::connect(base_url).await {
            Ok(conn) => conn,
            Err(e) => panic!("cannot connect to the PostgreSQL test server: {e}"),
        };
        // The name is generated above (letters, digits, '_'): safe to splice.
        let create = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = sqlx::query(AssertSqlSafe(create)).execute(&mut conn).await {
            panic!("cannot create the test database {name}: {e}");
        }
        let _ = conn.close().await;
        TestDatabase {
            url: with_database(base_url, &name),
            name,
            base_url: base_url.to_owned(),
            roles: Vec::new(),
        }
    }

    /// The role prefix unique to this database (roles are cluster-wide).
    pub fn role_prefix(&self) -> String {
        format!("ct{}", &self.name["creditops_test_".len()..][..16])
    }

    /// Provisions the per-service least-privilege roles on this (migrated)
    /// database under a prefix unique to it, and returns each service's
    /// connection URL: the test URL with the role as user.
    pub async fn provision_roles(&mut self) -> Vec<(&'static str, String)> {
        let prefix = self.role_prefix();
        let pool = match sqlx::PgPool::connect(&self.url).await {
            Ok(pool) => pool,
            Err(e) => panic!("cannot connect to the test database {}: {e}", self.name),
        };
        let result = crate::roles::provision(&pool, &prefix).await;
        pool.close().await;
        match result {
            Ok(roles) => self.roles.extend(roles),
            Err(e) => panic!("cannot provision roles on {}: {e}", self.name),
        }
        crate::roles::SERVICE_GRANTS
            .iter()
            .map(|g| {
                let role = crate::roles::role_name(&prefix, g.service);
                (g.service, with_user(&self.url, &role))
            })
            .collect()
    }

    /// Drops the database, terminating connections still open to it. A
    /// failure is reported on stderr, not raised: it must not hide the
    /// outcome of the test itself.
    pub async fn drop_database(self) {
        let result = async {
            let mut conn = PgConnection::connect(&self.base_url).await?;
            let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            sqlx::query(AssertSqlSafe(drop)).execute(&mut conn).await?;
            // Roles are cluster-wide; they held privileges only in the
            // dropped database, so they can go now.
            for role in &self.roles {
                let drop = format!("DROP ROLE IF EXISTS {role}");
                sqlx::query(AssertSqlSafe(drop)).execute(&mut conn).await?;
            }
            conn.close().await
        }
        .await;
        if let Err(e) = result {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `base` with its database (the URL path) replaced by `database`; the
/// query string is kept.
fn with_database(base: &str, database: &str) -> String {
    let (location, query) = match base.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (base, None),
    };
    let authority_start = location.find("://").map_or(0, |i| i + 3);
    let path_start = location[authority_start..]
        .find('/')
        .map_or(location.len(), |i| authority_start + i);
    let mut url = format!("{}/{database}", &location[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `url` connecting as `user` (without a password: tests use trust
/// authentication).
pub fn with_user(url: &str, user: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let host = match url[authority_start..authority_end].rfind('@') {
        Some(at) => &url[authority_start + at + 1..authority_end],
        None => &url[authority_start..authority_end],
    };
    format!(
        "{}{user}@{host}{}",
        &url[..authority_start],
        &url[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::{with_database, with_user};

    #[test]
    fn replaces_only_the_user() {
        let cases = [
            (
                "postgres://postgres@h:5432/test",
                "postgres://r@h:5432/test",
            ),
            ("postgres://u:p@h/db?x=1", "postgres://r@h/db?x=1"),
            ("postgres://h/db", "postgres://r@h/db"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_user(url, "r"), expected, "{url}");
        }
    }

    #[test]
    fn replaces_only_the_database() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/test",
                "postgres://postgres@127.0.0.1:5432/db",
            ),
            ("postgres://u:p@host/", "postgres://u:p@host/db"),
            ("postgres://host", "postgres://host/db"),
            (
                "postgresql://u@h:1/x?sslmode=disable&application_name=t",
                "postgresql://u@h:1/db?sslmode=disable&application_name=t",
            ),
            (
                "postgres://h?sslmode=disable",
                "postgres://h/db?sslmode=disable",
            ),
        ];
        for (base, expected) in cases {
            assert_eq!(with_database(base, "db"), expected, "{base}");
        }
    }
}
