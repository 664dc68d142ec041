//! The demo organisation `--dev` creates: one unit per side and the staff
//! ids the README and the tests use.

use crate::staff_import::{self, ImportError, StaffDocument};
use chrono::{Duration, Utc};
use creditops_domain::StaffId;
use creditops_store::Store;
use serde_json::json;

/// (staff id, unit, role) of the demo staff.
pub const DEMO_STAFF: [(&str, &str, &str); 7] = [
    ("lo-1", "market-corporate", "loan_officer"),
    ("lo-2", "market-corporate", "loan_officer"),
    ("ba-1", "backoffice-credit", "credit_analyst"),
    ("ba-2", "backoffice-credit", "credit_analyst"),
    ("rc-1", "risk-control", "risk_controller"),
    ("ia-1", "internal-audit", "internal_auditor"),
    ("ua-1", "user-administration", "user_admin"),
];

pub fn demo_document() -> Result<StaffDocument, ImportError> {
    // Assignments start a year back so that every check "at vote time" sees
    // them, as it would for long-standing staff.
    let since = Utc::now() - Duration::days(365);
    let doc = json!({
        "units": [
            {"id": "market-corporate", "name": "Corporate Banking", "side": "market"},
            {"id": "backoffice-credit", "name": "Credit Analysis", "side": "backoffice"},
            {"id": "risk-control", "name": "Risk Control", "side": "risk"},
            {"id": "internal-audit", "name": "Internal Audit", "side": "audit"},
            {"id": "user-administration", "name": "User Administration", "side": "admin"},
        ],
        "staff": DEMO_STAFF.iter().map(|(id, unit, role)| json!({
            "id": id,
            "units": [{"unit_id": unit, "valid_from": since}],
            "roles": [{"role": role, "valid_from": since}],
        })).collect::<Vec<_>>(),
    });
    staff_import::parse(&doc.to_string())
}

/// Seeds the demo organisation unless it is there already. Returns whether it seeded.
pub async fn seed(store: &dyn Store) -> Result<bool, ImportError> {
    let first = StaffId::parse(DEMO_STAFF[0].0).map_err(|e| ImportError::Invalid(e.to_string()))?;
    let mut tx = store.begin_read().await?;
    let exists = tx.staff_member(&first).await?.is_some();
    drop(tx);
    if exists {
        return Ok(false);
    }
    staff_import::import(store, &demo_document()?).await?;
    Ok(true)
}
