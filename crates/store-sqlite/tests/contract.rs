//! The shared store contract, run against a fresh SQLite file per test.

// Test code: a panic is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use creditops_store::contract::{CONTRACT_ORIGIN, TestStore};
use creditops_store_sqlite::SqliteStore;
use std::sync::Arc;

async fn fresh_store() -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("creditops.db"), CONTRACT_ORIGIN)
        .await
        .expect("open the SQLite store");
    let closing = store.clone();
    TestStore::new(Arc::new(store))
        .keep_alive(dir)
        .on_cleanup(async move { closing.close().await })
}

creditops_store::store_contract_tests!(fresh_store());
