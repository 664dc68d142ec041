//! The event body: what happened, who (pseudonymous id), to what, with what
//! outcome. No personal data: staff and borrowers appear by id only (A6).

use crate::{AuditAction, AuditError, canonical_json};
use chrono::{DateTime, SecondsFormat, Utc};
use creditops_domain::{BorrowerId, CaseId, RuleId};
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A state change that was carried out.
    Ok,
    /// A request refused by authentication, authorization or a rule.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
        }
    }
}

/// One audit event before encoding, with typed ids and time until the body
/// is written. Field names are the body's JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Body format version.
    pub v: u32,
    pub id: uuid::Uuid,
    /// Written as RFC 3339 UTC with microseconds.
    #[serde(serialize_with = "rfc3339_micros")]
    pub ts: DateTime<Utc>,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub action: AuditAction,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub borrower_id: Option<BorrowerId>,
    /// The rule the event is about (a refusal's, or the rule a command enforces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Action-specific facts: ids, versions, hashes, amounts as strings.
    pub data: serde_json::Value,
}

impl AuditRecord {
    pub fn new(service: &str, action: AuditAction, outcome: Outcome, at: DateTime<Utc>) -> Self {
        Self {
            v: 1,
            id: uuid::Uuid::now_v7(),
            ts: at,
            service: service.to_owned(),
            actor: None,
            action,
            outcome,
            case_id: None,
            borrower_id: None,
            rule: None,
            request_id: None,
            data: serde_json::Value::Object(Default::default()),
        }
    }

    /// The canonical body bytes that are stored and hashed.
    pub fn canonical_body(&self) -> Result<Vec<u8>, AuditError> {
        let value = serde_json::to_value(self).map_err(|e| AuditError::Encoding(e.to_string()))?;
        canonical_json(&value)
    }
}

/// The body's time format: RFC 3339 in UTC with exactly six fractional
/// digits and `Z` (SPEC section 3).
fn rfc3339_micros<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
}
