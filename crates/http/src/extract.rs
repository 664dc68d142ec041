//! Extractors whose rejections answer in our problem+json format.

use crate::ApiError;
use crate::problem::ProblemKind;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::str::FromStr;

/// `axum::Json` with problem+json rejections: 415 for a missing or wrong
/// content type, 413 for an oversized body, 422 for malformed JSON, missing
/// or unknown fields and wrong types.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "the request body must be JSON with content-type application/json",
        ),
        JsonRejection::JsonDataError(e) => ApiError::validation(format!(
            "the JSON body does not match the expected shape: {}",
            e.body_text()
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        )),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::validation("the request body is not well-formed JSON")
        }
        JsonRejection::BytesRejection(e) => body_rejection(&e),
        other => ApiError::validation(format!(
            "the request body could not be read: {}",
            other.body_text()
        )),
    }
}

/// A body that cannot be read (too large, or broken off) as problem+json:
/// axum's own rejection would be plain text.
pub fn body_rejection(rejection: &axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ProblemKind::PayloadTooLarge,
            "the request body is too large",
        )
    } else {
        ApiError::validation(format!(
            "the request body could not be read: {}",
            rejection.body_text()
        ))
    }
}

/// The `{id}` path segment, parsed into an id type. A malformed id names no
/// existing resource, so it answers 404 like an unknown one.
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: FromStr + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such resource"))?;
        raw.parse::<T>()
            .map(PathId)
            .map_err(|_| ApiError::not_found("no resource with that id"))
    }
}

/// `axum::extract::Query` with a problem+json (422) rejection.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| ApiError::validation(format!("invalid query string: {}", e.body_text())))
    }
}
