//! Validation of the free text a person types (names, reasons, rationales):
//! shared by the case file, the rule sets and the services' inputs, so every
//! text field is bounded and free of control characters in the same way.

use crate::DomainError;

/// The requirement's bound for free text (rationale, reason, purpose).
pub(crate) const MAX_TEXT: usize = 4000;

/// Validates free text: required, bounded, no control characters except newlines/tabs.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max_chars {
        return Err(DomainError::Invalid(format!(
            "{field} must not be longer than {max_chars} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(DomainError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}
