//! The shared store contract, run against a fresh PostgreSQL database per
//! test (skipped unless CREDITOPS_TEST_PG_URL is set; CREDITOPS_REQUIRE_PG=1
//! makes a missing URL a failure).

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_store::contract::{CONTRACT_ORIGIN, TestStore};
use creditops_store_postgres::PgStore;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use std::sync::Arc;

async fn fresh_store() -> Option<TestStore> {
    let base = pg_test_url()?;
    let db = TestDatabase::create(&base).await;
    let store = match PgStore::connect(&db.url, CONTRACT_ORIGIN, 8).await {
        Ok(store) => store,
        Err(e) => {
            db.drop_database().await;
            panic!("connect to the test database: {e:?}");
        }
    };
    let closing = store.clone();
    Some(TestStore::new(Arc::new(store)).on_cleanup(async move {
        closing.close().await;
        db.drop_database().await;
    }))
}

creditops_store::store_contract_tests!(fresh_store());
