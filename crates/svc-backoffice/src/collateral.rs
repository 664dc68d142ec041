//! Back office's collateral routes (L3): read a borrower's collateral,
//! record effective valuations, confirm market proposals, check legal
//! validity, and the revaluation due list.

use axum::extract::{Path, State};
use axum::response::Response;
use creditops_domain::collateral::ValuationRequest;
use creditops_domain::{BorrowerId, CollateralId, ValuationId};
use creditops_http::collateral::{
    self as shared, BorrowerCollateralView, DueQuery, LegalCheckBody, LegalCheckView,
    RevaluationsDueView, ValuationBody, ValuationView,
};
use creditops_http::{ApiError, IdempotencyKey, Json, PathId, Principal, Query, ServiceContext};
use std::sync::Arc;

/// A borrower's active collateral: per item the effective value, the
/// haircut, the value after haircut and the next revaluation date, and the
/// borrower's total secured value (L3).
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/collateral",
    tag = "collateral",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower's collateral", body = BorrowerCollateralView)),
)]
pub(crate) async fn borrower_collateral(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<BorrowerCollateralView>, ApiError> {
    shared::of_borrower(&ctx, id).await
}

/// Records an effective valuation of collateral, whatever its value (L3).
#[utoipa::path(
    post,
    path = "/v1/collateral/{id}/valuations",
    tag = "collateral",
    params(PathId<CollateralId>, IdempotencyKey),
    request_body = ValuationBody,
    responses(
        (status = 201, description = "The effective valuation is recorded", body = ValuationView),
        (status = 404, description = "No collateral with that id"),
        (status = 409, description = "The collateral is released"),
    ),
)]
pub(crate) async fn value_collateral(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CollateralId>,
    Json(req): Json<ValuationBody>,
) -> Result<Response, ApiError> {
    shared::value(ctx, principal, key, id, req, ValuationRequest::Effective).await
}

/// Confirms a value market proposed: it becomes the effective valuation (L3).
#[utoipa::path(
    post,
    path = "/v1/collateral/{id}/valuations/{valuation_id}/confirm",
    tag = "collateral",
    params(
        ("id" = CollateralId, Path, description = "The collateral item"),
        ("valuation_id" = ValuationId, Path, description = "The proposed valuation"),
        IdempotencyKey,
    ),
    responses(
        (status = 200, description = "The proposal is effective", body = ValuationView),
        (status = 404, description = "No such proposal of this item"),
        (status = 409, description = "The valuation is effective already, or the item released"),
    ),
)]
pub(crate) async fn confirm_valuation(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    Path(ids): Path<(String, String)>,
) -> Result<Response, ApiError> {
    shared::confirm(ctx, principal, key, ids).await
}

/// Records the legal-validity check of collateral: back office's only (L3).
#[utoipa::path(
    post,
    path = "/v1/collateral/{id}/legal-check",
    tag = "collateral",
    params(PathId<CollateralId>, IdempotencyKey),
    request_body = LegalCheckBody,
    responses(
        (status = 201, description = "The check is recorded", body = LegalCheckView),
        (status = 404, description = "No collateral with that id"),
        (status = 409, description = "The collateral is released"),
    ),
)]
pub(crate) async fn legal_check(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CollateralId>,
    Json(req): Json<LegalCheckBody>,
) -> Result<Response, ApiError> {
    shared::legal_check(ctx, principal, key, id, req).await
}

/// Active collateral due for (re)valuation at a date (L3): never validly
/// valued, or valued the rule set's revaluation months ago or longer.
#[utoipa::path(
    get,
    path = "/v1/collateral/revaluations-due",
    tag = "collateral",
    params(Query<DueQuery>),
    responses((status = 200, description = "Collateral due for revaluation", body = RevaluationsDueView)),
)]
pub(crate) async fn revaluations_due(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    Query(q): Query<DueQuery>,
) -> Result<axum::Json<RevaluationsDueView>, ApiError> {
    shared::due(&ctx, q).await
}
