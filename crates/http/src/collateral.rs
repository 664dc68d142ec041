//! Collateral (L3) over HTTP: the request and response views and the route
//! bodies the market, back-office and risk services share. Each service
//! documents its own routes and calls these.

use crate::paging::PageSize;
use crate::{ApiError, CommandOutcome, IdempotencyKey, Principal, ServiceContext, run_command};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use creditops_commands::collateral::{
    self as commands, BorrowerCollateral, CollateralLine, NewCollateral, NewValuation,
};
use creditops_domain::collateral::{
    CollateralKind, CollateralStatus, LegalCheck, LegalResult, Valuation, ValuationRequest,
    ValuationStatus,
};
use creditops_domain::{BorrowerId, CollateralId, Money, StaffId, ValuationId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Page sizes of the revaluation due list.
const DUE_PAGE: PageSize = PageSize {
    default: 200,
    max: 1000,
};

/// A valuation as typed.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuationBody {
    /// Decimal string, greater than zero, with at most the currency's scale.
    #[schema(example = "300000.00", pattern = "^[0-9]{1,13}(\\.[0-9]{1,4})?$")]
    pub value: String,
    /// ISO 4217 code.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The date the value refers to; not in the future.
    #[schema(example = "2026-01-15")]
    pub valuation_date: NaiveDate,
    /// Who valued it (appraiser, valuation unit).
    #[schema(example = "Gutachterbüro Nord", min_length = 1, max_length = 200)]
    pub valuer: String,
    /// How it was valued (market value, mortgage lending value, ...).
    #[schema(example = "mortgage_lending_value", min_length = 1, max_length = 200)]
    pub method: String,
}

impl ValuationBody {
    pub fn parse(&self) -> Result<NewValuation, ApiError> {
        let value = Money::parse(&self.value, &self.currency)
            .map_err(|e| ApiError::invalid_field("value", e))?;
        Ok(NewValuation {
            value,
            valuation_date: self.valuation_date,
            valuer: self.valuer.clone(),
            method: self.method.clone(),
        })
    }
}

/// A collateral item to register, optionally with a proposed valuation.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollateralBody {
    pub kind: CollateralKind,
    /// The nominal (face) amount: decimal string, greater than zero.
    #[schema(example = "400000.00", pattern = "^[0-9]{1,13}(\\.[0-9]{1,4})?$")]
    pub nominal: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// What it is (land register entry, guarantor, account).
    #[schema(
        example = "Grundschuld, Grundbuch Hamburg Blatt 4711",
        min_length = 1,
        max_length = 1000
    )]
    pub description: String,
    /// A value market proposes: it counts for nothing until back office
    /// values the item (L3).
    #[serde(default)]
    pub proposed_valuation: Option<ValuationBody>,
}

/// The legal-validity check of an item.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalCheckBody {
    pub result: LegalResult,
    /// What was checked (land register extract, guarantee deed, ...).
    #[schema(
        example = "Grundbuchauszug geprüft, erstrangig",
        min_length = 1,
        max_length = 1000
    )]
    pub note: String,
}

/// The date and size of the revaluation due list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DueQuery {
    /// The date the list is for (`YYYY-MM-DD`); today when absent.
    #[param(value_type = Option<NaiveDate>, inline)]
    pub date: Option<String>,
    /// At most this many items, 1-1000 (default 200), the longest overdue first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A valuation of an item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValuationView {
    pub id: ValuationId,
    /// Decimal string.
    pub value: String,
    pub currency: String,
    pub valuation_date: NaiveDate,
    pub valuer: String,
    pub method: String,
    /// The side of the person who recorded it (`market`, `backoffice`).
    pub side: String,
    pub status: ValuationStatus,
    pub recorded_by: StaffId,
    pub recorded_at: DateTime<Utc>,
    /// Back office's confirmation of a market proposal.
    pub confirmed_by: Option<StaffId>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl From<&Valuation> for ValuationView {
    fn from(v: &Valuation) -> Self {
        Self {
            id: v.id,
            value: v.value.amount().to_string(),
            currency: v.value.currency_code().to_owned(),
            valuation_date: v.valuation_date,
            valuer: v.valuer.clone(),
            method: v.method.clone(),
            side: v.side.as_str().to_owned(),
            status: v.status,
            recorded_by: v.recorded_by.clone(),
            recorded_at: v.recorded_at,
            confirmed_by: v.confirmed_by.clone(),
            confirmed_at: v.confirmed_at,
        }
    }
}

/// A legal-validity check of an item.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegalCheckView {
    pub collateral_id: CollateralId,
    pub result: LegalResult,
    pub note: String,
    pub checked_by: StaffId,
    pub checked_at: DateTime<Utc>,
}

impl From<&LegalCheck> for LegalCheckView {
    fn from(c: &LegalCheck) -> Self {
        Self {
            collateral_id: c.collateral_id,
            result: c.result,
            note: c.note.clone(),
            checked_by: c.checked_by.clone(),
            checked_at: c.checked_at,
        }
    }
}

/// One collateral item with what it secures.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollateralItemView {
    pub id: CollateralId,
    pub borrower_id: BorrowerId,
    pub kind: CollateralKind,
    /// Decimal string.
    pub nominal: String,
    pub currency: String,
    pub description: String,
    pub status: CollateralStatus,
    pub registered_by: StaffId,
    pub registered_at: DateTime<Utc>,
    /// The latest effective valuation (by valuation date), if any.
    pub effective_valuation: Option<ValuationView>,
    /// The latest proposal not yet confirmed: it counts for nothing.
    pub proposed_valuation: Option<ValuationView>,
    /// The latest legal-validity check, if any.
    pub legal_check: Option<LegalCheckView>,
    /// The effective value (decimal string), if valued.
    pub effective_value: Option<String>,
    /// The haircut of the item's kind in percent (decimal string).
    pub haircut_percent: String,
    /// The effective value less the haircut, rounded down (decimal string);
    /// "0" unless the item has an effective valuation and a valid legal check.
    pub value_after_haircut: String,
    /// When the next revaluation falls due; null when the item has no
    /// effective valuation (a valuation is due now).
    pub next_revaluation: Option<NaiveDate>,
    pub revaluation_due: bool,
}

impl From<&CollateralLine> for CollateralItemView {
    fn from(line: &CollateralLine) -> Self {
        let c = &line.position.collateral;
        let effective = line.position.effective.as_ref();
        Self {
            id: c.id,
            borrower_id: c.borrower_id,
            kind: c.kind,
            nominal: c.nominal.amount().to_string(),
            currency: c.nominal.currency_code().to_owned(),
            description: c.description.clone(),
            status: c.status,
            registered_by: c.registered_by.clone(),
            registered_at: c.registered_at,
            effective_valuation: effective.map(ValuationView::from),
            proposed_valuation: line.position.proposed.as_ref().map(ValuationView::from),
            legal_check: line.position.legal_check.as_ref().map(LegalCheckView::from),
            effective_value: effective.map(|v| v.value.amount().to_string()),
            haircut_percent: line.haircut.normalize().to_string(),
            value_after_haircut: line.value_after_haircut.to_string(),
            next_revaluation: line.next_revaluation,
            revaluation_due: line.revaluation_due,
        }
    }
}

/// A borrower's active collateral and the total it secures (L3).
#[derive(Debug, Serialize, ToSchema)]
pub struct BorrowerCollateralView {
    pub borrower_id: BorrowerId,
    /// The date values and due dates are computed for.
    pub as_of: NaiveDate,
    /// The currency of the secured value (the rule set's); collateral
    /// valued in another currency secures nothing.
    pub currency: String,
    /// Sum of the items' values after haircuts (decimal string).
    pub secured_value: String,
    pub items: Vec<CollateralItemView>,
}

impl From<&BorrowerCollateral> for BorrowerCollateralView {
    fn from(b: &BorrowerCollateral) -> Self {
        Self {
            borrower_id: b.borrower_id,
            as_of: b.as_of,
            currency: b.currency.clone(),
            secured_value: b.secured_value.to_string(),
            items: b.items.iter().map(CollateralItemView::from).collect(),
        }
    }
}

/// Collateral due for (re)valuation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevaluationsDueView {
    pub as_of: NaiveDate,
    /// The longest overdue first; never-valued items before all others.
    pub items: Vec<CollateralItemView>,
}

/// `POST /v1/borrowers/{id}/collateral`.
pub async fn register(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    borrower_id: BorrowerId,
    req: NewCollateralBody,
) -> Result<Response, ApiError> {
    let nominal = Money::parse(&req.nominal, &req.currency)
        .map_err(|e| ApiError::invalid_field("nominal", e))?;
    let proposed_valuation = req
        .proposed_valuation
        .as_ref()
        .map(ValuationBody::parse)
        .transpose()?;
    let input = NewCollateral {
        borrower_id,
        kind: req.kind,
        nominal,
        description: req.description.clone(),
        proposed_valuation,
    };
    let fingerprint = serde_json::to_vec(&(borrower_id, &req)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/borrowers/{id}/collateral",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let line = commands::register_collateral(&commands, tx, &actor, input).await?;
                CommandOutcome::view(StatusCode::CREATED, &CollateralItemView::from(&line))
            })
        },
    )
    .await
}

/// `GET /v1/borrowers/{id}/collateral`.
pub async fn of_borrower(
    ctx: &ServiceContext,
    borrower_id: BorrowerId,
) -> Result<axum::Json<BorrowerCollateralView>, ApiError> {
    let collateral = commands::borrower_collateral(&ctx.commands(), borrower_id).await?;
    Ok(axum::Json(BorrowerCollateralView::from(&collateral)))
}

/// `POST /v1/collateral/{id}/valuations`.
pub async fn value(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: CollateralId,
    body: ValuationBody,
    request: ValuationRequest,
) -> Result<Response, ApiError> {
    let input = body.parse()?;
    let proposal = request == ValuationRequest::Propose;
    let fingerprint = serde_json::to_vec(&(id, &body, proposal)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/collateral/{id}/valuations",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let valuation =
                    commands::record_valuation(&commands, tx, &actor, id, input, request).await?;
                CommandOutcome::view(StatusCode::CREATED, &ValuationView::from(&valuation))
            })
        },
    )
    .await
}

/// `POST /v1/collateral/{id}/valuations/{valuation_id}/confirm`.
pub async fn confirm(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    (id, valuation_id): (String, String),
) -> Result<Response, ApiError> {
    let unknown = || ApiError::not_found("no resource with that id");
    let id: CollateralId = id.parse().map_err(|_| unknown())?;
    let valuation_id: ValuationId = valuation_id.parse().map_err(|_| unknown())?;
    let fingerprint = serde_json::to_vec(&(id, valuation_id)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/collateral/{id}/valuations/{valuation_id}/confirm",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let valuation =
                    commands::confirm_valuation(&commands, tx, &actor, id, valuation_id).await?;
                CommandOutcome::view(StatusCode::OK, &ValuationView::from(&valuation))
            })
        },
    )
    .await
}

/// `POST /v1/collateral/{id}/legal-check`.
pub async fn legal_check(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    id: CollateralId,
    body: LegalCheckBody,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(id, &body)).unwrap_or_default();
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/collateral/{id}/legal-check",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let check = commands::record_legal_check(
                    &commands,
                    tx,
                    &actor,
                    id,
                    body.result,
                    &body.note,
                )
                .await?;
                CommandOutcome::view(StatusCode::CREATED, &LegalCheckView::from(&check))
            })
        },
    )
    .await
}

/// `GET /v1/collateral/revaluations-due`.
pub async fn due(
    ctx: &ServiceContext,
    query: DueQuery,
) -> Result<axum::Json<RevaluationsDueView>, ApiError> {
    let limit = DUE_PAGE.limit(query.limit)?;
    let date = query
        .date
        .as_deref()
        .map(|text| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid_field("date", "date must be YYYY-MM-DD"))
        })
        .transpose()?;
    let (as_of, items) = commands::revaluations_due(&ctx.commands(), date, limit).await?;
    Ok(axum::Json(RevaluationsDueView {
        as_of,
        items: items.iter().map(CollateralItemView::from).collect(),
    }))
}
