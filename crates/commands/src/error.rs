//! The one error type of the command layer. It says what kind of refusal or
//! failure a command met, never how a protocol answers it: the HTTP services
//! map it to problem+json in one place.

use creditops_domain::{DomainError, RuleId};
use creditops_store::StoreError;

/// One itemised problem of a command's input: where (a row, a field) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub row: Option<usize>,
    pub field: Option<String>,
    pub detail: String,
}

/// Why a command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A pure rule refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The store failed or reported a conflict or a missing row.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the command names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The input is malformed or names nothing known; `problems` itemises it.
    #[error("{detail}")]
    Invalid {
        detail: String,
        problems: Vec<InputProblem>,
    },
    /// The state of what the command changes does not allow it now.
    #[error("{detail}")]
    Conflict {
        detail: String,
        rule: Option<RuleId>,
    },
    /// The actor's side or role does not take this command.
    #[error("{detail}")]
    Forbidden {
        detail: String,
        rule: Option<RuleId>,
    },
    /// The platform cannot evaluate the command now (e.g. no rule set).
    #[error("{0}")]
    Unavailable(String),
    /// An invariant of the platform does not hold.
    #[error("{0}")]
    Internal(String),
}

/// What every command returns.
pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(detail.into())
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid {
            detail: detail.into(),
            problems: Vec::new(),
        }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
            rule: None,
        }
    }

    pub fn conflict_under(rule: RuleId, detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
            rule: Some(rule),
        }
    }

    pub fn forbidden_under(rule: RuleId, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            detail: detail.into(),
            rule: Some(rule),
        }
    }
}
