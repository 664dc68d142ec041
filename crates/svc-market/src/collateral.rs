//! Market's collateral routes (L3): register an item (optionally with a
//! proposed value), read a borrower's collateral, propose a value or, at or
//! below the rule set's threshold, value an item.

use axum::extract::State;
use axum::response::Response;
use chrono::NaiveDate;
use creditops_domain::collateral::ValuationRequest;
use creditops_domain::{BorrowerId, CollateralId};
use creditops_http::collateral::{
    self as shared, BorrowerCollateralView, CollateralItemView, NewCollateralBody, ValuationBody,
    ValuationView,
};
use creditops_http::{ApiError, IdempotencyKey, Json, PathId, Principal, ServiceContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Registers a collateral item for a borrower (L3). A proposed valuation
/// counts for nothing until back office values the item.
#[utoipa::path(
    post,
    path = "/v1/borrowers/{id}/collateral",
    tag = "collateral",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = NewCollateralBody,
    responses(
        (status = 201, description = "The item is registered", body = CollateralItemView),
        (status = 404, description = "No borrower with that id"),
    ),
)]
pub(crate) async fn register_collateral(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Json(req): Json<NewCollateralBody>,
) -> Result<Response, ApiError> {
    shared::register(ctx, principal, key, id, req).await
}

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

/// A valuation by market: a proposal (`"proposal": true`), or an effective
/// valuation, which market may record only for collateral at or below the
/// rule set's threshold (L3).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarketValuationBody {
    #[schema(example = "300000.00", pattern = "^[0-9]{1,13}(\\.[0-9]{1,4})?$")]
    value: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    currency: String,
    /// The date the value refers to; not in the future.
    #[schema(example = "2026-01-15")]
    valuation_date: NaiveDate,
    #[schema(example = "Gutachterbüro Nord", min_length = 1, max_length = 200)]
    valuer: String,
    #[schema(example = "market_value", min_length = 1, max_length = 200)]
    method: String,
    /// A proposal for back office to confirm; it counts for nothing until
    /// then. Default false: an effective valuation.
    #[serde(default)]
    proposal: bool,
}

/// Proposes a value of collateral, or values it where market may: at or
/// below the threshold (L3). Above it an effective valuation is refused
/// (403, rule L3).
#[utoipa::path(
    post,
    path = "/v1/collateral/{id}/valuations",
    tag = "collateral",
    params(PathId<CollateralId>, IdempotencyKey),
    request_body = MarketValuationBody,
    responses(
        (status = 201, description = "The valuation is recorded", body = ValuationView),
        (status = 403, description = "Above the threshold only back office values (L3)"),
        (status = 404, description = "No collateral with that id"),
    ),
)]
pub(crate) async fn value_collateral(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<CollateralId>,
    Json(req): Json<MarketValuationBody>,
) -> Result<Response, ApiError> {
    let request = if req.proposal {
        ValuationRequest::Propose
    } else {
        ValuationRequest::Effective
    };
    let body = ValuationBody {
        value: req.value,
        currency: req.currency,
        valuation_date: req.valuation_date,
        valuer: req.valuer,
        method: req.method,
    };
    shared::value(ctx, principal, key, id, body, request).await
}
