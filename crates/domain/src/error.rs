//! The one error type of the domain boundary.

use crate::RuleId;

/// Why a domain command was refused. Each variant maps to exactly one HTTP
/// status class in the service layer (422, 403, 409), so the mapping lives in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input itself is malformed (422).
    #[error("{0}")]
    Invalid(String),
    /// A segregation, four-eyes or risk rule forbids the command (403). `rule` is the
    /// requirement it enforces.
    #[error("{detail}")]
    RuleViolation { rule: RuleId, detail: String },
    /// A rule refuses the command until what `missing` lists is there (403),
    /// e.g. the document types a first vote still needs (L2).
    #[error("{detail}")]
    Incomplete {
        rule: RuleId,
        detail: String,
        missing: Vec<String>,
    },
    /// The command refers to an outdated file version (409, rule V3).
    #[error("the case is at file version {current}, the command names version {given}")]
    StaleVersion { current: i64, given: i64 },
    /// The case is not in a state that allows the command (409).
    #[error("{0}")]
    InvalidState(String),
}

impl DomainError {
    pub fn rule(rule: RuleId, detail: impl Into<String>) -> Self {
        Self::RuleViolation {
            rule,
            detail: detail.into(),
        }
    }

    /// The requirement id this refusal is about, if any.
    pub fn rule_id(&self) -> Option<RuleId> {
        match self {
            Self::RuleViolation { rule, .. } | Self::Incomplete { rule, .. } => Some(*rule),
            Self::StaleVersion { .. } => Some(RuleId::V3),
            _ => None,
        }
    }
}
