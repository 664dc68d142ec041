//! The API error type, mapped once to problem+json. Internal details (database
//! text, key material) are logged, never sent: a conversion keeps them beside
//! the error, and the one log line about them is written when the error
//! becomes a response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use creditops_auth::AuthError;
use creditops_commands::CommandError;
use creditops_domain::{DomainError, RuleId};
use creditops_store::StoreError;
use serde::Serialize;

/// The kinds of problem this API answers with; each has a stable `type` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Unauthenticated,
    Forbidden,
    RuleViolation,
    NotFound,
    MethodNotAllowed,
    StaleVersion,
    Conflict,
    Validation,
    UnsupportedMediaType,
    PayloadTooLarge,
    TooManyRequests,
    IdempotencyMismatch,
    Unavailable,
    Internal,
}

impl ProblemKind {
    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ProblemKind::Forbidden | ProblemKind::RuleViolation => StatusCode::FORBIDDEN,
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::StaleVersion | ProblemKind::Conflict => StatusCode::CONFLICT,
            ProblemKind::Validation | ProblemKind::IdempotencyMismatch => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            ProblemKind::Unauthenticated => "unauthenticated",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::RuleViolation => "rule-violation",
            ProblemKind::NotFound => "not-found",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::StaleVersion => "stale-version",
            ProblemKind::Conflict => "conflict",
            ProblemKind::Validation => "validation",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::PayloadTooLarge => "payload-too-large",
            ProblemKind::TooManyRequests => "too-many-requests",
            ProblemKind::IdempotencyMismatch => "idempotency-key-reused",
            ProblemKind::Unavailable => "unavailable",
            ProblemKind::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::Unauthenticated => "Authentication required",
            ProblemKind::Forbidden => "Forbidden",
            ProblemKind::RuleViolation => "Refused by a business rule",
            ProblemKind::NotFound => "Not found",
            ProblemKind::MethodNotAllowed => "Method not allowed",
            ProblemKind::StaleVersion => "Stale file version",
            ProblemKind::Conflict => "Conflict",
            ProblemKind::Validation => "Invalid input",
            ProblemKind::UnsupportedMediaType => "Unsupported media type",
            ProblemKind::PayloadTooLarge => "Payload too large",
            ProblemKind::TooManyRequests => "Too many requests",
            ProblemKind::IdempotencyMismatch => "Idempotency key reused",
            ProblemKind::Unavailable => "Service unavailable",
            ProblemKind::Internal => "Internal error",
        }
    }

    /// The problem `type` URI (RFC 9457 section 3.1.1).
    pub fn type_uri(self) -> String {
        format!("urn:creditops:problem:{}", self.slug())
    }
}

/// An error answered to a client. `detail` is written for the client and
/// never carries internal text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct ApiError {
    pub kind: ProblemKind,
    pub detail: String,
    /// The requirement behind a refusal.
    pub rule: Option<RuleId>,
    /// Itemised problems (e.g. one per bad row of an import), as the
    /// `errors` extension member (RFC 9457 section 3.2).
    pub errors: Vec<FieldError>,
    /// What a rule still misses before it lets the command through, e.g.
    /// the document types a first vote needs (L2), as the `missing` member.
    pub missing: Box<[String]>,
    /// The internal reason behind a 5xx answer, for the log only.
    cause: Option<Cause>,
    /// Seconds a client should wait before trying again (429, 503).
    retry_after: Option<u64>,
}

/// What went wrong inside, as the log line about it will say. Kept apart
/// from `detail` so it can never reach the client.
#[derive(Debug, Clone)]
enum Cause {
    /// The database could not be reached (a warning: clients retry).
    DatabaseUnavailable(String),
    /// Any other storage failure (an error: it needs a look).
    StorageFailure(String),
}

/// One itemised problem: where (a row, a field) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub detail: String,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            rule: None,
            errors: Vec::new(),
            missing: Box::default(),
            cause: None,
            retry_after: None,
        }
    }

    /// Too many failed logins from one address: try again in `seconds`.
    pub fn too_many_requests(detail: impl Into<String>, seconds: u64) -> Self {
        let mut error = Self::new(ProblemKind::TooManyRequests, detail);
        error.retry_after = Some(seconds);
        error
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_rule(mut self, rule: RuleId) -> Self {
        self.rule = Some(rule);
        self
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Validation, detail)
    }

    /// A 422 about one field of the request: the detail starts with the
    /// field's name and the `errors` member names it, so a client can tell
    /// which value was refused.
    pub fn invalid_field(field: &str, detail: impl std::fmt::Display) -> Self {
        let detail = format!("{field}: {detail}");
        Self::validation(detail.clone()).with_errors(vec![FieldError {
            row: None,
            field: Some(field.to_owned()),
            detail,
        }])
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::NotFound, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Unauthenticated, detail)
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Writes the log line about the internal cause of this error, if it has
    /// one. Done once, where the error is answered ([`IntoResponse`]) or,
    /// for work no request waits for, where the failure is reported.
    pub fn log_cause(&self) {
        match &self.cause {
            Some(Cause::DatabaseUnavailable(error)) => {
                tracing::warn!(error = %error, "database unavailable");
            }
            Some(Cause::StorageFailure(error)) => {
                tracing::error!(error = %error, "storage failure");
            }
            None => {}
        }
    }
}

/// An error answer (`application/problem+json`, RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemBody<'a> {
    /// `urn:creditops:problem:<kind>`, one URI per kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:creditops:problem:rule-violation")]
    type_uri: String,
    /// Short summary of the kind of problem.
    title: &'a str,
    /// The HTTP status code.
    status: u16,
    /// What went wrong with this request, written for the client.
    detail: &'a str,
    /// The requirement behind a refusal, e.g. `V1` or `S8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    /// Itemised problems, e.g. one per bad row of an import.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    /// What a rule still misses, e.g. the document type codes a first vote
    /// needs in the credit file (L2).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    missing: &'a [String],
}

/// Put into response extensions so the refusal-audit middleware can record
/// why a request was refused without parsing the body.
#[derive(Debug, Clone)]
pub struct RefusalInfo {
    pub kind: ProblemKind,
    pub rule: Option<RuleId>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_cause();
        let status = self.status();
        let body = ProblemBody {
            type_uri: self.kind.type_uri(),
            title: self.kind.title(),
            status: status.as_u16(),
            detail: &self.detail,
            rule: self.rule.map(RuleId::as_str),
            errors: &self.errors,
            missing: &self.missing,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.kind == ProblemKind::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match (self.kind, self.retry_after) {
            (_, Some(seconds)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            (ProblemKind::Unavailable, None) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response.extensions_mut().insert(RefusalInfo {
            kind: self.kind,
            rule: self.rule,
        });
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let rule = e.rule_id();
        let kind = match &e {
            DomainError::Invalid(_) => ProblemKind::Validation,
            DomainError::RuleViolation { .. } | DomainError::Incomplete { .. } => {
                ProblemKind::RuleViolation
            }
            DomainError::StaleVersion { .. } => ProblemKind::StaleVersion,
            DomainError::InvalidState(_) => ProblemKind::Conflict,
        };
        let missing = match &e {
            DomainError::Incomplete { missing, .. } => missing.clone().into_boxed_slice(),
            _ => Box::default(),
        };
        Self {
            kind,
            detail: e.to_string(),
            rule,
            errors: Vec::new(),
            missing,
            cause: None,
            retry_after: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(_) => ApiError::new(
                ProblemKind::Conflict,
                "the resource was changed by another request; reload it and try again",
            ),
            StoreError::Unavailable(source) => ApiError {
                cause: Some(Cause::DatabaseUnavailable(source.to_string())),
                ..ApiError::new(
                    ProblemKind::Unavailable,
                    "the database is unavailable; retry later",
                )
            },
            // Debug, not Display: the log line names the variant, as it
            // always has.
            other => ApiError {
                cause: Some(Cause::StorageFailure(format!("{other:?}"))),
                ..ApiError::new(ProblemKind::Internal, "an internal error occurred")
            },
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        // The reason is safe to tell: it never echoes the token or key material.
        ApiError::unauthenticated(format!("the bearer token was refused: {e}"))
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let answer = |kind, detail: String, rule: Option<RuleId>| {
            let mut answer = ApiError::new(kind, detail);
            answer.rule = rule;
            answer
        };
        match e {
            CommandError::Domain(e) => e.into(),
            CommandError::Store(e) => e.into(),
            CommandError::NotFound(detail) => answer(ProblemKind::NotFound, detail, None),
            CommandError::Invalid { detail, problems } => ApiError::validation(detail).with_errors(
                problems
                    .into_iter()
                    .map(|p| FieldError {
                        row: p.row,
                        field: p.field,
                        detail: p.detail,
                    })
                    .collect(),
            ),
            CommandError::Conflict { detail, rule } => answer(ProblemKind::Conflict, detail, rule),
            CommandError::Forbidden { detail, rule } => {
                answer(ProblemKind::Forbidden, detail, rule)
            }
            CommandError::Unavailable(detail) => answer(ProblemKind::Unavailable, detail, None),
            CommandError::Internal(detail) => answer(ProblemKind::Internal, detail, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_keep_their_kind_rule_and_detail() {
        let cases = [
            (
                CommandError::conflict_under(RuleId::R5, "the case was disbursed already"),
                ProblemKind::Conflict,
                Some(RuleId::R5),
            ),
            (
                CommandError::forbidden_under(RuleId::R8, "sector limits are decided elsewhere"),
                ProblemKind::Forbidden,
                Some(RuleId::R8),
            ),
            (
                CommandError::Domain(DomainError::rule(RuleId::S9, "four-eyes")),
                ProblemKind::RuleViolation,
                Some(RuleId::S9),
            ),
            (
                CommandError::not_found("no case with that id"),
                ProblemKind::NotFound,
                None,
            ),
            (
                CommandError::Unavailable("no rule set is in force".into()),
                ProblemKind::Unavailable,
                None,
            ),
        ];
        for (error, kind, rule) in cases {
            let detail = error.to_string();
            let answer = ApiError::from(error);
            assert_eq!((answer.kind, answer.rule), (kind, rule));
            assert_eq!(answer.detail, detail);
        }
    }

    #[test]
    fn l2_an_incomplete_file_is_a_rule_refusal_listing_what_is_missing() {
        let error = CommandError::Domain(DomainError::Incomplete {
            rule: RuleId::L2,
            detail: "required documents are missing".into(),
            missing: vec!["annual_accounts".into(), "credit_application".into()],
        });
        let answer = ApiError::from(error);
        assert_eq!(answer.kind, ProblemKind::RuleViolation);
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        assert_eq!(answer.rule, Some(RuleId::L2));
        let response = answer.into_response();
        let refusal = response.extensions().get::<RefusalInfo>().cloned();
        assert_eq!(refusal.map(|r| r.rule), Some(Some(RuleId::L2)));
        // Other refusals carry no `missing` member.
        let plain = ApiError::from(DomainError::rule(RuleId::V1, "same person"));
        assert!(plain.missing.is_empty());
    }

    #[test]
    fn invalid_input_lists_its_problems() {
        let error = CommandError::Invalid {
            detail: "1 row(s) of the import are invalid; nothing was imported".into(),
            problems: vec![creditops_commands::InputProblem {
                row: Some(2),
                field: Some("borrower_id".into()),
                detail: "names no registered borrower".into(),
            }],
        };
        let answer = ApiError::from(error);
        assert_eq!(answer.kind, ProblemKind::Validation);
        assert_eq!(answer.errors.len(), 1);
        assert_eq!(answer.errors[0].row, Some(2));
    }

    #[tokio::test]
    async fn internal_causes_are_kept_for_the_log_and_stay_out_of_the_answer() {
        for (store_error, status) in [
            (
                StoreError::Corrupt("row 7 holds secret-token".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                StoreError::Unavailable("connecting as secret-token failed".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ] {
            let error = ApiError::from(store_error);
            assert!(error.cause.is_some());
            assert!(!error.detail.contains("secret-token"));
            let response = error.into_response();
            assert_eq!(response.status(), status);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert!(!String::from_utf8_lossy(&body).contains("secret-token"));
        }
        let not_found = ApiError::from(StoreError::NotFound("case".into()));
        assert!(not_found.cause.is_none());
    }
}
