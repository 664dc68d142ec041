//! The demo organisation `--dev` creates: one unit per side, the staff ids the
//! README and the tests use, and competence levels that make every path of
//! the competence order reachable (level 1 up to EUR 250k, 2 up to 1m, 3 up to
//! 5m, 4 = board).

use crate::staff_import::{self, ImportError, StaffDocument};
use chrono::{Duration, Utc};
use creditops_domain::{SodMatrix, StaffId};
use creditops_store::Store;
use serde_json::json;

/// (staff id, unit, role, competence level on the unit's side; 0 = none).
pub const DEMO_STAFF: [(&str, &str, &str, u8); 11] = [
    ("lo-1", "market-corporate", "loan_officer", 2),
    ("lo-2", "market-corporate", "loan_officer", 2),
    ("lo-3", "market-corporate", "loan_officer", 3),
    ("mb-1", "market-board", "loan_officer", 4),
    ("ba-1", "backoffice-credit", "credit_analyst", 2),
    ("ba-2", "backoffice-credit", "credit_analyst", 2),
    ("ba-3", "backoffice-credit", "credit_analyst", 3),
    ("bb-1", "backoffice-board", "credit_analyst", 4),
    ("rc-1", "risk-control", "risk_controller", 0),
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

/// Seeds the demo organisation unless it is there already. Returns whether it seeded.
pub async fn seed(store: &dyn Store, sod: &SodMatrix) -> Result<bool, ImportError> {
    let first = StaffId::parse(DEMO_STAFF[0].0).map_err(|e| ImportError::Invalid(e.to_string()))?;
    let mut tx = store.begin_read().await?;
    let exists = tx.staff_member(&first).await?.is_some();
    drop(tx);
    if exists {
        return Ok(false);
    }
    staff_import::import(store, &demo_document()?, sod).await?;
    Ok(true)
}
