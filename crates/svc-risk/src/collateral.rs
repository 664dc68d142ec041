//! Risk control's read of the collateral revaluation due list (L3).

use axum::extract::State;
use creditops_http::collateral::{self as shared, DueQuery, RevaluationsDueView};
use creditops_http::{ApiError, Principal, Query, ServiceContext};
use std::sync::Arc;

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
