//! The watcher's full evaluation of the early-warning catalogue (L7) over
//! 100,000 borrowers (issue figure, see docs/benchmarks.md).
//!
//! The book: 100,000 borrowers, each with an imported balance carrying
//! days past due and overdrawn days, 20,000 with two ratings, 10,000 with a
//! collateral item valued twice, 1,000 with negative information; about 4 %
//! of the borrowers meet an indicator of the default catalogue.
//!
//! Measured, per backend, with `evaluate_early_warning` over every borrower
//! exactly as the watcher's round calls it:
//! * the first evaluation, which lists every hit, opens an ad-hoc review for
//!   each listed borrower and audits both (committed);
//! * the steady state: the same full evaluation when nothing changed (each
//!   run rolled back), five times: the figure the issue bounds (<= 2 s);
//! * the baseline in the same run: reading the 100,000 balances alone into
//!   a map, the least any evaluation of them must do.
//!
//! Run with `cargo bench -p creditops --bench early_warning` (PostgreSQL
//! when `CREDITOPS_TEST_PG_URL` is set; `CREDITOPS_BENCH_BORROWERS`
//! overrides 100,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use creditops_commands::Context;
use creditops_commands::monitoring::evaluate_early_warning;
use creditops_store::Store;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "creditops.bench/early-warning";

fn borrowers() -> i64 {
    std::env::var("CREDITOPS_BENCH_BORROWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// The seed, as statements both dialects run: ids are UUIDs spelled from
/// the row number, so the same rows exist on both backends.
fn seed_statements(n: i64, postgres: bool) -> Vec<String> {
    let series = if postgres {
        format!("SELECT g AS n FROM generate_series(1, {n}) g")
    } else {
        format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) \
             SELECT n FROM s"
        )
    };
    let id = |prefix: &str| {
        if postgres {
            format!("('{prefix}-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid")
        } else {
            format!("printf('{prefix}-0000-7000-8000-%012d', n)")
        }
    };
    let now = if postgres {
        "now()".to_owned()
    } else {
        format!("'{}'", Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    };
    let earlier = if postgres {
        "now() - interval '400 days'".to_owned()
    } else {
        format!(
            "'{}'",
            (Utc::now() - chrono::Duration::days(400)).format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
    };
    let today = if postgres {
        "current_date".to_owned()
    } else {
        format!("'{}'", Utc::now().date_naive())
    };
    let b = id("00000000");
    vec![
        format!(
            "INSERT INTO borrowers (id, name, country, sector, created_by, created_at) \
             SELECT {b}, 'Bench ' || n, 'DE', 'C25', 'lo-1', {now} FROM ({series}) s"
        ),
        // 1 % at 90 or more days past due; the rest below.
        format!(
            "INSERT INTO imported_balances (source_id, borrower_id, amount_minor, as_of, \
             imported_at, days_past_due, overdrawn_days) \
             SELECT 'acct-' || n, {b}, 1000000 + n, {now}, {now}, \
             CASE WHEN n % 100 = 0 THEN 91 ELSE n % 60 END, \
             CASE WHEN n % 100 = 1 THEN 75 ELSE n % 30 END FROM ({series}) s"
        ),
        // 20 % rated twice; 1 % of the book downgraded by two classes.
        format!(
            "INSERT INTO ratings (id, borrower_id, class, pd, method, reason, status, rated_by, \
             rated_at, rules_version) \
             SELECT {r1}, {b}, 5, '0.0018', 'bench', 'bench', 'set', 'ba-1', {earlier}, 1 \
             FROM ({series}) s WHERE n % 5 = 0",
            r1 = id("00000001")
        ),
        format!(
            "INSERT INTO ratings (id, borrower_id, class, pd, method, reason, status, rated_by, \
             rated_at, rules_version) \
             SELECT {r2}, {b}, CASE WHEN n % 100 = 5 THEN 7 ELSE 6 END, \
             CASE WHEN n % 100 = 5 THEN '0.0040' ELSE '0.0025' END, 'bench', 'bench', 'set', \
             'ba-1', {now}, 1 FROM ({series}) s WHERE n % 5 = 0",
            r2 = id("00000002")
        ),
        // 10 % with collateral valued twice; 1 % of the book fell by 30 %.
        format!(
            "INSERT INTO collateral (id, borrower_id, kind, nominal_minor, currency, description, \
             status, registered_by, registered_at) \
             SELECT {c}, {b}, 'mortgage_commercial', 100000000, 'EUR', 'bench', 'active', 'lo-1', \
             {earlier} FROM ({series}) s WHERE n % 10 = 2",
            c = id("00000003")
        ),
        format!(
            "INSERT INTO collateral_valuations (id, collateral_id, value_minor, currency, \
             valuation_date, valuer, method, side, status, recorded_by, recorded_at) \
             SELECT {v1}, {c}, 100000000, 'EUR', {today}, 'bench', 'market value', \
             'backoffice', 'effective', 'ba-1', {earlier} FROM ({series}) s WHERE n % 10 = 2",
            c = id("00000003"),
            v1 = id("00000004")
        ),
        format!(
            "INSERT INTO collateral_valuations (id, collateral_id, value_minor, currency, \
             valuation_date, valuer, method, side, status, recorded_by, recorded_at) \
             SELECT {v2}, {c}, CASE WHEN n % 100 = 2 THEN 70000000 ELSE 95000000 END, 'EUR', \
             {today}, 'bench', 'market value', 'backoffice', 'effective', 'ba-1', {now} \
             FROM ({series}) s WHERE n % 10 = 2",
            c = id("00000003"),
            v2 = id("00000005")
        ),
        // 1 % with negative information.
        format!(
            "INSERT INTO borrower_flags (id, borrower_id, kind, reason, raised_by, raised_at) \
             SELECT {f}, {b}, 'negative_information', 'bench', 'lo-1', {now} \
             FROM ({series}) s WHERE n % 100 = 3",
            f = id("00000006")
        ),
    ]
}

async fn run(name: &str, store: Arc<dyn Store>, url: String, postgres: bool) {
    let (sod, _) = creditops::platform::load_sod(None).expect("sod matrix");
    creditops::demo::seed(store.as_ref(), &sod)
        .await
        .expect("seed");
    creditops::platform::ensure_rules(store.as_ref())
        .await
        .expect("rules");
    let n = borrowers();
    let started = Instant::now();
    if postgres {
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        for statement in seed_statements(n, true) {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .expect("seed");
        }
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("analyze");
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
        let mut tx = pool.begin().await.expect("begin");
        for statement in seed_statements(n, false) {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .expect("seed");
        }
        tx.commit().await.expect("commit");
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("analyze");
    }
    println!("{name}: seeded {n} borrowers in {:.1?}", started.elapsed());
    let ctx = Context {
        service: "risk",
        store: store.clone(),
        policy_hash: "bench".into(),
        sod: Arc::new(sod),
        claim_timeout: Duration::from_secs(5),
        operator: None,
    };

    let mut tx = store.begin().await.expect("begin");
    let started = Instant::now();
    let first = evaluate_early_warning(&ctx, tx.as_mut(), None, "bench", Utc::now())
        .await
        .expect("evaluate");
    tx.commit().await.expect("commit");
    println!(
        "{name}: first evaluation {:.1?}: {} borrowers with inputs, {} listed (each audited, \
         with an ad-hoc review)",
        started.elapsed(),
        first.evaluated,
        first.hits.len()
    );

    let mut steady = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..5 {
        let mut tx = store.begin().await.expect("begin");
        let started = Instant::now();
        let again = evaluate_early_warning(&ctx, tx.as_mut(), None, "bench", Utc::now())
            .await
            .expect("evaluate");
        steady.push(started.elapsed());
        assert!(again.hits.is_empty() && again.cleared.is_empty());
        drop(tx);

        let started = Instant::now();
        let sums: HashMap<String, i64> = if postgres {
            let pool = sqlx::PgPool::connect(&url).await.expect("connect");
            let rows: Vec<(uuid::Uuid, i64)> =
                sqlx::query_as("SELECT borrower_id, amount_minor FROM imported_balances")
                    .fetch_all(&pool)
                    .await
                    .expect("read");
            rows.into_iter()
                .map(|(id, a)| (id.to_string(), a))
                .collect()
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
            sqlx::query_as("SELECT borrower_id, amount_minor FROM imported_balances")
                .fetch_all(&pool)
                .await
                .expect("read")
                .into_iter()
                .collect()
        };
        baseline.push(started.elapsed());
        assert_eq!(i64::try_from(sums.len()).unwrap(), n);
    }
    steady.sort();
    baseline.sort();
    let (p50, max) = (steady[2], steady[4]);
    println!(
        "{name}: steady full evaluation p50 {p50:.1?} max {max:.1?} (target <= 2 s); \
         baseline read of the balances p50 {:.1?}; ratio {:.1}x",
        baseline[2],
        p50.as_secs_f64() / baseline[2].as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = creditops::open_store(None, dir.path(), ORIGIN)
        .await
        .expect("sqlite");
    let url = format!("sqlite://{}", dir.path().join("creditops.db").display());
    run("SQLite", store, url, false).await;

    if let Some(base) = pg_test_url() {
        let db = TestDatabase::create(&base).await;
        let url = db.url.clone();
        let store = creditops::open_store(Some(&url), dir.path(), ORIGIN)
            .await
            .expect("postgres");
        run("PostgreSQL", store, url, true).await;
        db.drop_database().await;
    } else {
        println!("PostgreSQL: skipped (CREDITOPS_TEST_PG_URL is not set)");
    }
}
