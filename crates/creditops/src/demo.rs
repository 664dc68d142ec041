//! The demo organisation `--dev` creates: one unit per side, the staff ids the
//! README and the tests use, and competence levels that make every path of
//! the competence order reachable (level 1 up to EUR 250k, 2 up to 1m, 3 up to
//! 5m, 4 = board).

use crate::staff_import::{self, ImportError, StaffDocument};
use chrono::{Duration, Utc};
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_domain::{SodMatrix, StaffId};
use creditops_risk::{Capital, LiquidityPosition};
use creditops_store::{AuditFilter, Store, StoreError, append_record};
use rust_decimal::Decimal;
use serde_json::json;
use std::path::Path;

/// (staff id, unit, role, competence level on the unit's side; 0 = none).
pub const DEMO_STAFF: [(&str, &str, &str, u8); 12] = [
    ("lo-1", "market-corporate", "loan_officer", 2),
    ("lo-2", "market-corporate", "loan_officer", 2),
    ("lo-3", "market-corporate", "loan_officer", 3),
    ("mb-1", "market-board", "loan_officer", 4),
    ("ba-1", "backoffice-credit", "credit_analyst", 2),
    ("ba-2", "backoffice-credit", "credit_analyst", 2),
    ("ba-3", "backoffice-credit", "credit_analyst", 3),
    ("bb-1", "backoffice-board", "credit_analyst", 4),
    ("rc-1", "risk-control", "risk_controller", 0),
    ("rc-2", "risk-control", "risk_controller", 0),
    ("ia-1", "internal-audit", "internal_auditor", 0),
    ("ua-1", "user-administration", "user_admin", 0),
];

/// A second user administrator, so four-eyes changes can be tried out.
const SECOND_ADMIN: &str = "ua-2";

fn side_of_unit(unit: &str) -> &'static str {
    match unit {
        "market-corporate" | "market-board" => "market",
        "backoffice-credit" | "backoffice-board" => "backoffice",
        _ => "other",
    }
}

pub fn demo_document() -> Result<StaffDocument, ImportError> {
    // Assignments start a year back so that every check "at vote time" sees
    // them, as it would for long-standing staff.
    let since = Utc::now() - Duration::days(365);
    let mut staff: Vec<_> = DEMO_STAFF
        .iter()
        .map(|(id, unit, role, level)| {
            let competences = if *level > 0 {
                json!([{"side": side_of_unit(unit), "level": level, "valid_from": since}])
            } else {
                json!([])
            };
            json!({
                "id": id,
                "units": [{"unit_id": unit, "valid_from": since}],
                "roles": [{"role": role, "valid_from": since}],
                "competences": competences,
            })
        })
        .collect();
    staff.push(json!({
        "id": SECOND_ADMIN,
        "units": [{"unit_id": "user-administration", "valid_from": since}],
        "roles": [{"role": "user_admin", "valid_from": since}],
    }));
    let doc = json!({
        "units": [
            {"id": "market-corporate", "name": "Corporate Banking", "side": "market"},
            {"id": "market-board", "name": "Board member for market", "side": "market"},
            {"id": "backoffice-credit", "name": "Credit Analysis", "side": "backoffice"},
            {"id": "backoffice-board", "name": "Board member for back office", "side": "backoffice"},
            {"id": "risk-control", "name": "Risk Control", "side": "risk"},
            {"id": "internal-audit", "name": "Internal Audit", "side": "audit"},
            {"id": "user-administration", "name": "User Administration", "side": "admin"},
        ],
        "staff": staff,
    });
    staff_import::parse(&doc.to_string())
}

/// The file in the dev data directory that names the database dev mode
/// created (hardening finding 15).
pub const MARKER_FILE: &str = "dev-database";

/// Why `serve --dev` refuses a database.
#[derive(Debug, thiserror::Error)]
pub enum DevDatabaseError {
    #[error(
        "serve --dev seeds demo staff and trusts its own identity provider, so it uses only a \
         database it created itself: this one holds staff and no marker of {dir}; give --dev an \
         empty database (or a new --data-dir for the embedded one), or run without --dev"
    )]
    NotCreatedByDev { dir: String },
    #[error("dev database marker {path}: {source}")]
    Marker {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes sure the database is one `serve --dev` created with this data
/// directory: an empty one (no staff) is claimed with an audited marker that
/// the data directory keeps too; a database with staff must carry this data
/// directory's marker. Refuses any other, so dev mode never seeds demo staff
/// (with their user administrators) into a real directory.
pub async fn claim_database(store: &dyn Store, data_dir: &Path) -> Result<(), DevDatabaseError> {
    let path = data_dir.join(MARKER_FILE);
    crate::platform::create_private_dir(data_dir).map_err(marker_error(&path))?;
    let existing = read_marker(&path)?;
    let mut tx = store.begin().await?;
    if let Some(marker) = &existing {
        let filter = AuditFilter {
            action: Some(AuditAction::DevDatabaseCreated.as_str().to_owned()),
            limit: 1_000,
            ..AuditFilter::default()
        };
        let claimed = tx.audit_events(&filter).await?.iter().any(|event| {
            serde_json::from_slice::<serde_json::Value>(&event.body)
                .is_ok_and(|body| body["data"]["marker"] == marker.as_str())
        });
        if claimed {
            return Ok(());
        }
    }
    if !tx.staff_ids().await?.is_empty() {
        return Err(DevDatabaseError::NotCreatedByDev {
            dir: data_dir.display().to_string(),
        });
    }
    // Written before the database is claimed, so a crash in between leaves
    // a marker that the next start claims the still empty database with.
    let marker = match existing {
        Some(marker) => marker,
        None => create_marker(&path)?,
    };
    let mut record = AuditRecord::new(
        "cli",
        AuditAction::DevDatabaseCreated,
        Outcome::Ok,
        Utc::now(),
    );
    record.data = json!({ "marker": marker });
    append_record(tx.as_mut(), &record).await?;
    tx.commit().await?;
    Ok(())
}

fn marker_error(path: &Path) -> impl Fn(std::io::Error) -> DevDatabaseError + '_ {
    move |source| DevDatabaseError::Marker {
        path: path.display().to_string(),
        source,
    }
}

/// The data directory's marker, if it has one.
fn read_marker(path: &Path) -> Result<Option<String>, DevDatabaseError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(marker_error(path)(e)),
    }
}

/// A new random marker in a file only the owner may read (0600).
fn create_marker(path: &Path) -> Result<String, DevDatabaseError> {
    let failed = marker_error(path);
    let mut random = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| failed(std::io::Error::other("no randomness for the marker")))?;
    let marker = hex::encode(random);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(&failed)?;
    std::io::Write::write_all(&mut file, marker.as_bytes()).map_err(&failed)?;
    file.sync_all().map_err(&failed)?;
    Ok(marker)
}

/// Seeds the demo organisation unless it is there already. Returns whether it seeded.
pub async fn seed(store: &dyn Store, sod: &SodMatrix) -> Result<bool, ImportError> {
    let first = StaffId::parse(DEMO_STAFF[0].0).map_err(|e| ImportError::Invalid(e.to_string()))?;
    let mut tx = store.begin_read().await?;
    let exists = tx.staff_member(&first).await?.is_some();
    drop(tx);
    if exists {
        return Ok(false);
    }
    let operator = crate::operator::Operator::from_env();
    staff_import::bootstrap(store, &demo_document()?, sod, &operator).await?;
    seed_risk(store).await?;
    Ok(true)
}

/// Demo Tier 1 capital (EUR 500m: large exposures from EUR 50m, cap EUR
/// 125m) and a liquidity position (LCR 200 %, floor 110 %), recorded by
/// rc-1 and audited like any other change, so approvals can be gated (R4).
async fn seed_risk(store: &dyn Store) -> Result<(), ImportError> {
    let invalid = |e: String| ImportError::Invalid(e);
    let recorder = StaffId::parse("rc-1").map_err(|e| invalid(e.to_string()))?;
    let now = Utc::now();
    let capital = Capital {
        version: 1,
        tier1: Decimal::from(500_000_000),
        recorded_by: recorder.clone(),
        recorded_at: now,
    };
    let position = LiquidityPosition {
        version: 1,
        hqla: Decimal::from(2_000_000_000),
        outflows_30d: Decimal::from(1_250_000_000),
        inflows_30d: Decimal::from(250_000_000),
        floor_percent: Decimal::from(110),
        recorded_by: recorder.clone(),
        recorded_at: now,
    };
    let mut tx = store.begin().await?;
    tx.insert_capital(&capital).await?;
    tx.insert_liquidity(&position).await?;
    for (action, data) in [
        (
            AuditAction::RiskCapitalRecorded,
            json!({"version": 1, "tier1": capital.tier1.to_string()}),
        ),
        (
            AuditAction::RiskLiquidityRecorded,
            json!({
                "version": 1,
                "hqla": position.hqla.to_string(),
                "outflows_30d": position.outflows_30d.to_string(),
                "inflows_30d": position.inflows_30d.to_string(),
                "floor_percent": position.floor_percent.to_string(),
            }),
        ),
    ] {
        let mut record = AuditRecord::new("risk", action, Outcome::Ok, now);
        record.actor = Some(recorder.to_string());
        record.data = data;
        append_record(tx.as_mut(), &record).await?;
    }
    tx.commit().await?;
    Ok(())
}
