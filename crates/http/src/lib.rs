//! HTTP plumbing shared by every service: the one API error type and its
//! `application/problem+json` rendering (RFC 9457), a JSON extractor whose
//! rejections use that format, authentication + authorization middleware that
//! audits every refusal, idempotent command execution, request ids, the
//! health endpoints and the OpenAPI document generated from the handlers.
//!
//! No business rule and no business read lives here: the use cases are the
//! commands of `creditops-commands`, which the services run inside
//! [`run_command`]; their errors become problem+json through
//! `From<CommandError> for ApiError`. [`views`] holds the JSON views several
//! services answer with, [`routes`] the route bodies they share.

pub mod abuse;
pub mod collateral;
mod context;
pub mod documents;
pub mod download;
mod extract;
pub mod granting;
mod health;
mod idempotency;
pub mod keys;
pub mod metrics;
mod middleware;
pub mod monitoring;
pub mod openapi;
pub mod paging;
mod problem;
pub mod proposals;
pub mod reports;
pub mod routes;
pub mod streams;
pub mod views;

pub use context::{Principal, RequestLimits, ServiceContext};
pub use extract::{Json, PathId, Query, body_rejection};
pub use idempotency::{
    Begin, BoxFuture, CommandOutcome, CommandRequest, IdempotencyKey, run_command,
    run_command_begun,
};
pub use middleware::{RequestId, secure, still_admitted};
pub use problem::{ApiError, FieldError, ProblemKind};
