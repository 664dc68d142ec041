//! Benchmarks of the risk engine (issue figures, see docs/benchmarks.md):
//!
//! * gate latency for a group of connected clients with 1,000 members and
//!   10,000 exposure records (aggregated per member, then gated), against a
//!   baseline that only sums the same 10,000 amounts;
//! * a full watcher re-evaluation of 100,000 exposures against 10,000
//!   limits after a Tier 1 change, against a baseline that only sums the
//!   exposures per borrower into a map.
//!
//! Run with `cargo bench -p creditops-risk`. Both sides of each ratio run in
//! the same process, interleaved, so machine noise hits them alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_domain::{BorrowerId, Country, Sector};
use creditops_risk::watch::{evaluate_all, reconcile};
use creditops_risk::{BorrowerExposure, GateInput, Limit, LimitSubject, LiquidityView, gate};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn cents(n: u64) -> Decimal {
    Decimal::new(i64::try_from(n).unwrap(), 2)
}

/// A deterministic pseudo-random sequence (no dependency, reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Index arithmetic for reporting only; no money involved.
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);
    println!(
        "{name:<46} n={:<6} p50 {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}",
        samples.len(),
        p50,
        p99,
        samples[samples.len() - 1]
    );
    (p50, p99)
}

/// The liquidity position both benchmarks gate against.
fn liquidity(committed: Decimal) -> LiquidityView {
    LiquidityView {
        hqla: Decimal::from(20_000_000_000i64),
        outflows_30d: Decimal::from(10_000_000_000i64),
        inflows_30d: Decimal::from(2_000_000_000),
        floor_percent: Decimal::from(110),
        committed,
    }
}

/// The four limits of the gated borrower: its group's, its own, its
/// sector's and its country's.
fn gate_limits(borrower: BorrowerId) -> Vec<Limit> {
    vec![
        Limit {
            id: uuid::Uuid::now_v7(),
            subject: LimitSubject::Group("big-group".into()),
            version: 3,
            amount: Decimal::from(10_000_000_000i64),
            tolerance_percent: Decimal::from(10),
        },
        Limit {
            id: uuid::Uuid::now_v7(),
            subject: LimitSubject::Borrower(borrower),
            version: 1,
            amount: Decimal::from(100_000_000),
            tolerance_percent: Decimal::ZERO,
        },
        Limit {
            id: uuid::Uuid::now_v7(),
            subject: LimitSubject::Sector("D35".parse().unwrap()),
            version: 1,
            amount: Decimal::from(50_000_000_000i64),
            tolerance_percent: Decimal::ZERO,
        },
        Limit {
            id: uuid::Uuid::now_v7(),
            subject: LimitSubject::Country("DE".parse().unwrap()),
            version: 1,
            amount: Decimal::from(90_000_000_000i64),
            tolerance_percent: Decimal::ZERO,
        },
    ]
}

/// Times `measured` and `baseline` alternately, `runs` times each after
/// `warmup` untimed rounds, so machine noise hits them alike.
fn interleaved(
    warmup: usize,
    runs: usize,
    mut measured: impl FnMut(),
    mut baseline: impl FnMut(),
) -> (Vec<Duration>, Vec<Duration>) {
    for _ in 0..warmup {
        measured();
        baseline();
    }
    let mut measured_samples = Vec::with_capacity(runs);
    let mut baseline_samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        measured();
        measured_samples.push(start.elapsed());
        let start = Instant::now();
        baseline();
        baseline_samples.push(start.elapsed());
    }
    (measured_samples, baseline_samples)
}

fn bench_gate() {
    let mut rng = Lcg(42);
    let members: Vec<BorrowerId> = (0..1_000).map(|_| BorrowerId::generate()).collect();
    // 10,000 exposure records: (member, amount).
    let records: Vec<(BorrowerId, Decimal)> = (0..10_000)
        .map(|i| (members[i % members.len()], cents(rng.next() % 100_000_000)))
        .collect();
    let limits = gate_limits(members[0]);
    let liquidity = liquidity(Decimal::from(100_000_000));
    let run_gate = || {
        let mut per_member: HashMap<BorrowerId, Decimal> = HashMap::with_capacity(1_000);
        for (member, amount) in &records {
            *per_member.entry(*member).or_default() += *amount;
        }
        let rows: Vec<BorrowerExposure> = members
            .iter()
            .map(|id| BorrowerExposure {
                borrower: *id,
                group: Some("big-group".into()),
                sector: "D35".parse().unwrap(),
                country: "DE".parse().unwrap(),
                institution: false,
                reserved: Decimal::ZERO,
                outstanding: per_member.get(id).copied().unwrap_or_default(),
            })
            .collect();
        let verdict = gate(
            &GateInput {
                borrower: &rows[0],
                members: &rows,
                sector_usage: Decimal::from(1_000_000_000),
                section_usage: Decimal::from(1_000_000_000),
                country_usage: Decimal::from(5_000_000_000i64),
                limits: &limits,
                tier1: Some(Decimal::from(50_000_000_000i64)),
                liquidity: Some(&liquidity),
            },
            Decimal::from(250_000),
        );
        black_box(verdict);
    };
    let run_baseline = || {
        let total: Decimal = records.iter().map(|(_, amount)| *amount).sum();
        black_box(total);
    };
    let (gate_samples, base_samples) = interleaved(200, 5_000, run_gate, run_baseline);
    println!("gate: group of 1,000 members, 10,000 exposure records, 4 limits, Tier 1, LCR");
    let (gate_p50, gate_p99) = summary("  gate (aggregate + all checks)", gate_samples);
    let (base_p50, _) = summary("  baseline (sum of the 10,000 amounts)", base_samples);
    println!(
        "  gate p99 {:.3} ms (target <= 2 ms); gate p50 / baseline p50 = {:.1}",
        gate_p99.as_secs_f64() * 1e3,
        gate_p50.as_secs_f64() / base_p50.as_secs_f64()
    );
}

/// 40 NACE divisions.
fn bench_divisions() -> Vec<Sector> {
    Sector::all().filter(|s| !s.is_section()).take(40).collect()
}

fn bench_countries() -> Vec<Country> {
    ["DE", "AT", "FR", "NL", "IT"]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect()
}

/// 100,000 exposures: a third in 20,000 groups, 40 sectors, 5 countries.
fn watcher_borrowers(rng: &mut Lcg) -> Vec<BorrowerExposure> {
    let (divisions, countries) = (bench_divisions(), bench_countries());
    (0..100_000)
        .map(|i| BorrowerExposure {
            borrower: BorrowerId::generate(),
            group: (i % 3 == 0).then(|| format!("group-{}", i % 20_000)),
            sector: divisions[i % 40],
            country: countries[i % 5],
            institution: i % 97 == 0,
            reserved: cents(rng.next() % 10_000_000),
            outstanding: cents(rng.next() % 500_000_000),
        })
        .collect()
}

/// 10,000 limits: 9,000 borrowers, 955 groups, 40 sectors, 5 countries.
fn watcher_limits(borrowers: &[BorrowerExposure], rng: &mut Lcg) -> Vec<Limit> {
    let mut limits: Vec<Limit> = borrowers
        .iter()
        .take(9_000)
        .map(|b| Limit {
            id: uuid::Uuid::now_v7(),
            subject: LimitSubject::Borrower(b.borrower),
            version: 1,
            amount: cents(rng.next() % 600_000_000),
            tolerance_percent: Decimal::from(5),
        })
        .collect();
    limits.extend((0..955).map(|g| Limit {
        id: uuid::Uuid::now_v7(),
        subject: LimitSubject::Group(format!("group-{g}")),
        version: 1,
        amount: Decimal::from(20_000_000),
        tolerance_percent: Decimal::ZERO,
    }));
    limits.extend(bench_divisions().into_iter().map(|s| Limit {
        id: uuid::Uuid::now_v7(),
        subject: LimitSubject::Sector(s),
        version: 1,
        amount: Decimal::from(5_000_000_000i64),
        tolerance_percent: Decimal::ZERO,
    }));
    limits.extend(bench_countries().into_iter().map(|c| Limit {
        id: uuid::Uuid::now_v7(),
        subject: LimitSubject::Country(c),
        version: 1,
        amount: Decimal::from(50_000_000_000i64),
        tolerance_percent: Decimal::ZERO,
    }));
    assert_eq!(limits.len(), 10_000);
    limits
}

fn bench_watcher() {
    let mut rng = Lcg(7);
    let borrowers = watcher_borrowers(&mut rng);
    let limits = watcher_limits(&borrowers, &mut rng);
    let liquidity = liquidity(Decimal::ZERO);
    let now = chrono::Utc::now();
    let mut open = Vec::new();
    let mut full = Vec::new();
    let mut base = Vec::new();
    for round in 0..12 {
        // A Tier 1 change every round: every unit's cap moves.
        let tier1 = Decimal::from(2_000_000_000i64 + round * 100_000_000);
        let start = Instant::now();
        let usages = evaluate_all(&borrowers, &limits, Some(tier1), Some(&liquidity));
        let result = reconcile(&open, &usages, "tier1 change", now);
        full.push(start.elapsed());
        open.retain(|b: &creditops_risk::Breach| !result.resolved.contains(&b.id));
        open.extend(result.opened);
        let start = Instant::now();
        let mut sums: HashMap<BorrowerId, Decimal> = HashMap::with_capacity(borrowers.len());
        for b in &borrowers {
            *sums.entry(b.borrower).or_default() += b.total();
        }
        black_box(sums);
        base.push(start.elapsed());
    }
    println!("watcher: 100,000 exposures, 10,000 limits, full re-evaluation after a Tier 1 change");
    let (full_p50, _) = summary("  full re-evaluation + breach reconciliation", full.clone());
    let (base_p50, _) = summary("  baseline (sum per borrower into a map)", base);
    println!(
        "  full re-evaluation max {:.0} ms (target <= 1000 ms); open breaches {}; \
         p50 / baseline p50 = {:.1}",
        full.iter().max().unwrap().as_secs_f64() * 1e3,
        open.len(),
        full_p50.as_secs_f64() / base_p50.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: keep it quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        println!("engine benchmark: run with `cargo bench -p creditops-risk` for figures");
        return;
    }
    bench_gate();
    bench_watcher();
}
