//! The OpenAPI 3.1 document of a service, generated from its handlers.
//!
//! Every service builds its business routes as a `utoipa_axum` router
//! (`OpenApiRouter` + `routes!`), so a route cannot be served without its
//! `#[utoipa::path]` description. [`service_router`] puts the business routes
//! behind [`secure`](crate::secure), adds the health routes, `GET
//! /openapi.json` and the Swagger UI at `GET /docs`, and [`finish`] completes
//! the document with what follows from that layering rather than from a
//! single handler: bearer security on every business operation and the
//! problem answers the shared plumbing gives (401, 403, 404 for path ids,
//! 413/415/422 for bodies, 422 for query strings and `Idempotency-Key`, 503).
//! A handler's own attribute lists only the answers of its own logic.

use crate::problem::{FieldError, ProblemBody};
use crate::{IdempotencyKey, PathId, Query, ServiceContext};
use axum::Router;
use std::sync::Arc;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, InfoBuilder, ObjectBuilder, OpenApi, RefOr, Required, Response,
    ResponseBuilder, Type,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

/// Media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Name of the bearer security scheme in the document.
const BEARER: &str = "bearer";

/// The document of a service: its business routes (behind authentication)
/// and the health routes, completed by [`finish`].
pub fn document<S>(service: &str, business: OpenApiRouter<S>) -> OpenApi
where
    S: Clone + Send + Sync + 'static,
{
    finish(
        service,
        business.into_openapi(),
        health_api().into_openapi(),
    )
}

/// The whole HTTP surface of a service: the business routes behind
/// [`secure`](crate::secure) (authentication, authorization, refusal audit),
/// the health routes, `GET /openapi.json` and the Swagger UI at `GET /docs`
/// (vendored assets, outside authentication).
pub fn service_router<S>(ctx: Arc<ServiceContext>, business: OpenApiRouter<S>, state: S) -> Router
where
    S: Clone + Send + Sync + 'static,
{
    let (business, business_doc) = business.split_for_parts();
    let (health, health_doc) = health_api().split_for_parts();
    let document = Arc::new(finish(ctx.service, business_doc, health_doc));
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"));
    crate::secure(business.with_state(state), ctx.clone())
        .merge(health.with_state(ctx))
        .merge(Router::<()>::from(docs))
        .layer(axum::Extension(document))
}

/// The health routes and `GET /openapi.json`, outside authentication.
fn health_api() -> OpenApiRouter<Arc<ServiceContext>> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(crate::health::healthz))
        .routes(utoipa_axum::routes!(crate::health::readyz))
        .routes(utoipa_axum::routes!(crate::metrics::metrics_route))
        .routes(utoipa_axum::routes!(openapi_json))
}

/// This service's OpenAPI 3.1 document (what `/docs` renders).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json(
    axum::Extension(document): axum::Extension<Arc<OpenApi>>,
) -> axum::Json<Arc<OpenApi>> {
    axum::Json(document)
}

/// Completes the merged document: title and version, bearer security and the
/// shared problem answers on business operations, the problem+json content
/// of every error answer, and the shared components.
fn finish(service: &str, mut business: OpenApi, health: OpenApi) -> OpenApi {
    for item in business.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            secure_operation(operation);
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert(
                        "x-request-id".to_owned(),
                        RefOr::T(HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some(
                                "The request's id: the client's `x-request-id` when well-formed, \
                                 else a new one; it is in every log line and audit event of the request",
                            ))
                            .build()),
                    );
                }
            }
        }
    }
    business.merge(health);
    for item in business.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(response) = response {
                    add_problem(status, response);
                }
            }
        }
    }
    business.info = InfoBuilder::new()
        .title(format!("creditops {service} service"))
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "The {service} service of creditops. Business operations need a bearer token \
             whose audience is creditops-{service}; the role comes from the staff directory. \
             Every error is application/problem+json (RFC 9457)."
        )))
        .build();
    let components = business.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components
        .schemas
        .insert(ProblemBody::name().into_owned(), ProblemBody::schema());
    components
        .schemas
        .insert(FieldError::name().into_owned(), FieldError::schema());
    business
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Bearer security and the answers [`secure`](crate::secure) and the shared
/// extractors give, derived from what the operation takes.
fn secure_operation(operation: &mut Operation) {
    operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let takes = |location: ParameterIn| {
        parameters
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == location))
    };
    let mut shared = vec![
        (
            "401",
            "No valid bearer token for this service's audience, or the person is not active in the staff directory",
        ),
        (
            "403",
            "The roles held may not call this operation (S8), or a business rule refuses it (`rule` names it)",
        ),
        (
            "429",
            "Too many failed logins from this client address this minute; retry after `Retry-After` seconds",
        ),
        (
            "503",
            "The database or the audit trail is unavailable; retry after `Retry-After` seconds",
        ),
    ];
    if takes(ParameterIn::Path) {
        shared.push(("404", "No resource with that id"));
    }
    if operation.request_body.is_some() {
        shared.push((
            "413",
            "The request body is larger than the configured limit (--body-limit-bytes, default 64 KiB)",
        ));
        shared.push((
            "415",
            "The request body is not of a documented content type",
        ));
    }
    if operation.request_body.is_some() || takes(ParameterIn::Query) || takes(ParameterIn::Header) {
        shared.push((
            "422",
            "The request is malformed: body shape or value, query string, or Idempotency-Key",
        ));
    }
    for (status, description) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
}

/// An error answer documented without content gets the problem+json body
/// and the headers its status comes with.
fn add_problem(status: &str, response: &mut Response) {
    if !status.starts_with('4') && !status.starts_with('5') || !response.content.is_empty() {
        return;
    }
    let mut with = ResponseBuilder::from(response.clone()).content(
        PROBLEM_JSON,
        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            ProblemBody::name(),
        )))),
    );
    let header = |description: &str| {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    };
    if status == "401" {
        with = with.header("WWW-Authenticate", header("Always `Bearer`"));
    }
    if status == "503" || status == "429" {
        with = with.header("Retry-After", header("Seconds to wait before retrying"));
    }
    *response = with.build();
}

/// `Idempotency-Key` (V10): optional on every command.
impl IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Repeating a command with the same key returns the first answer \
                     (header `Idempotent-Replayed: true`); the same key with another request \
                     is refused (422).",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]+$")),
                ))
                .build(),
        ]
    }
}

/// The `{id}` path segment; its schema is the id type's.
impl<T: PartialSchema> IntoParams for PathId<T> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(T::schema()))
                .build(),
        ]
    }
}

/// The query string: the parameters of `T`, in the query.
impl<T: IntoParams> IntoParams for Query<T> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        T::into_params(|| Some(ParameterIn::Query))
    }
}
