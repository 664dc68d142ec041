//! The admin service. Until its business routes land it answers only health,
//! readiness and its (empty) OpenAPI document; every other route is 404.

use axum::Router;
use creditops_http::{ServiceContext, health_routes, secure};
use std::sync::Arc;

pub const SERVICE: &str = "admin";

pub fn router(ctx: Arc<ServiceContext>) -> Router {
    secure(Router::new(), ctx.clone()).merge(health_routes(ctx, &[]))
}
