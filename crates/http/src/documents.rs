//! The credit file's routes both desks share (L2): a document upload (the
//! raw bytes as the body, the media type as `Content-Type`, the document
//! type as `?type=` or `Document-Type`), the lists, the content read with
//! its SHA-256 checked again, and the key financials.

use crate::{
    ApiError, CommandOutcome, IdempotencyKey, Json, PathId, Principal, ProblemKind, Query,
    ServiceContext,
};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use creditops_commands::credit_file::{
    self, DocumentOwner, FinancialsInput, NewDocument, add_document,
};
use creditops_domain::credit_file::{MediaType, sha256_hex};
use creditops_domain::{BorrowerId, CaseId, DocumentId};
use creditops_store::{BorrowerFinancials, StoredDocument};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The default bound on a document's size: 10 MiB.
pub const DEFAULT_DOCUMENT_LIMIT: usize = 10 * 1024 * 1024;

/// The header that may name the document type instead of `?type=`.
pub const DOCUMENT_TYPE_HEADER: &str = "document-type";

/// What an upload names besides its bytes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The document type: a code of the catalogue in the rule set in force
    /// (e.g. `annual_accounts`). The header `Document-Type` may name it
    /// instead.
    #[serde(rename = "type")]
    #[param(rename = "type", example = "annual_accounts")]
    pub doc_type: Option<String>,
    /// The id of the document this one supersedes (of the same case, or of
    /// the borrower itself).
    #[param(value_type = Option<String>, format = Uuid)]
    pub replaces: Option<DocumentId>,
}

/// The documents of a case or a borrower, oldest first, superseded ones
/// included (`superseded_by` set).
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<StoredDocument>,
}

/// A borrower's key financials, latest reporting date first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FinancialsList {
    pub items: Vec<BorrowerFinancials>,
}

/// Key financials of a borrower for one reporting date (L2). Amounts are
/// decimal strings in `currency`; revenue, total debt and debt service are
/// not negative.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinancialsRequest {
    #[schema(value_type = String, format = Date, example = "2025-12-31")]
    pub reporting_date: chrono::NaiveDate,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(example = "12500000.00")]
    pub revenue: String,
    #[schema(example = "1800000.00")]
    pub ebitda: String,
    #[schema(example = "4200000.00")]
    pub total_debt: String,
    #[schema(example = "3100000.00")]
    pub equity: String,
    #[schema(example = "650000.00")]
    pub debt_service: String,
}

fn unsupported(detail: impl Into<String>) -> ApiError {
    ApiError::new(ProblemKind::UnsupportedMediaType, detail)
}

/// Adds the document in the request's body to the credit file of `owner`
/// (L2): 413 above the size bound, 415 for a media type documents may not
/// have or content that is not what `Content-Type` says, 422 for a type
/// outside the catalogue; 201 with the stored document otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    operation: &'static str,
    owner: DocumentOwner,
    params: UploadParams,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unsupported("a document needs its media type as Content-Type"))
        .and_then(|v| MediaType::from_content_type(v).map_err(|e| unsupported(e.to_string())))?;
    let limit = ctx.limits.document_bytes;
    let content = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ProblemKind::PayloadTooLarge,
            format!("a document may have at most {limit} bytes"),
        )
    })?;
    let doc_type = match params.doc_type {
        Some(code) => code,
        None => headers
            .get(DOCUMENT_TYPE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "type",
                    "name the document type as the query parameter type or the header \
                     Document-Type",
                )
            })?,
    };
    media_type
        .check(&content)
        .map_err(|e| unsupported(e.to_string()))?;
    let owner_text = match owner {
        DocumentOwner::Case(id) => format!("case:{id}"),
        DocumentOwner::Borrower(id) => format!("borrower:{id}"),
    };
    let fingerprint = format!(
        "{owner_text}\n{doc_type}\n{media_type}\n{}\n{}",
        params.replaces.map(|id| id.to_string()).unwrap_or_default(),
        sha256_hex(&content)
    );
    let input = NewDocument {
        owner,
        doc_type,
        media_type,
        content: content.to_vec(),
        replaces: params.replaces,
    };
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    crate::run_command(
        &ctx,
        &principal,
        key,
        operation,
        fingerprint.as_bytes(),
        move |tx| {
            Box::pin(async move {
                let document = add_document(&commands, tx, &actor, input).await?;
                CommandOutcome::view(StatusCode::CREATED, &document)
            })
        },
    )
    .await
}

/// The bytes of a document with their media type, after the SHA-256 of
/// what was read matched the recorded one (L2). Served as an attachment,
/// never sniffed.
pub async fn content(
    ctx: &ServiceContext,
    principal: &Principal,
    id: DocumentId,
    as_market: bool,
) -> Result<Response, ApiError> {
    let (document, bytes) =
        credit_file::document_content(&ctx.commands(), &principal.0, id, as_market).await?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(document.media_type.as_str()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(digest) = HeaderValue::from_str(&format!("\"{}\"", document.sha256)) {
        headers.insert(header::ETAG, digest);
    }
    Ok(response)
}

/// Records key financials of `borrower` (L2), idempotently.
pub async fn put_financials(
    ctx: Arc<ServiceContext>,
    principal: Principal,
    key: IdempotencyKey,
    borrower: BorrowerId,
    req: FinancialsRequest,
) -> Result<Response, ApiError> {
    let fingerprint = serde_json::to_vec(&(borrower, &req)).unwrap_or_default();
    let input = FinancialsInput {
        reporting_date: req.reporting_date,
        currency: req.currency,
        revenue: req.revenue,
        ebitda: req.ebitda,
        total_debt: req.total_debt,
        equity: req.equity,
        debt_service: req.debt_service,
    };
    let (commands, actor) = (ctx.commands(), principal.0.clone());
    crate::run_command(
        &ctx,
        &principal,
        key,
        "POST /v1/borrowers/{id}/financials",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let recorded =
                    credit_file::record_financials(&commands, tx, &actor, borrower, &input).await?;
                CommandOutcome::view(StatusCode::CREATED, &recorded)
            })
        },
    )
    .await
}

/// Whether the service answering is market's: market sees the credit file
/// of its own unit's cases only (S1).
fn as_market(ctx: &ServiceContext) -> bool {
    ctx.service == "market"
}

/// Adds a document to the credit file of a borrower (L2). Every open case
/// of the borrower gets a new file version: its votes are void (V3).
#[utoipa::path(
    post,
    path = "/v1/borrowers/{id}/documents",
    tag = "credit file",
    params(PathId<BorrowerId>, Query<UploadParams>, IdempotencyKey),
    request_body(
        description = "The document's bytes, of one of the media types a credit file takes",
        content(
            (Vec<u8> = "application/pdf"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "image/jpeg"),
            (String = "text/csv"),
            (String = "text/plain"),
        )
    ),
    responses(
        (status = 201, description = "The document is added", body = StoredDocument),
        (status = 409, description = "The replaced document is superseded already, or a concurrent request won"),
        (status = 413, description = "The document is larger than the configured bound"),
        (status = 415, description = "The media type is not accepted or the content is not of it"),
        (status = 422, description = "The document type is not in the catalogue in force"),
    ),
)]
pub async fn add_borrower_document(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    upload(
        ctx,
        principal,
        key,
        "POST /v1/borrowers/{id}/documents",
        DocumentOwner::Borrower(id),
        params,
        &headers,
        body,
    )
    .await
}

/// The documents of a borrower itself, oldest first, superseded ones included.
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/documents",
    tag = "credit file",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower's documents", body = DocumentList)),
)]
pub async fn list_borrower_documents(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<DocumentList>, ApiError> {
    let items = credit_file::borrower_documents(&ctx.commands(), id).await?;
    Ok(axum::Json(DocumentList { items }))
}

/// The documents of a case, oldest first, superseded ones included
/// (market: of its own unit's cases only).
#[utoipa::path(
    get,
    path = "/v1/cases/{id}/documents",
    tag = "credit file",
    params(PathId<CaseId>),
    responses((status = 200, description = "The case's documents", body = DocumentList)),
)]
pub async fn list_case_documents(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    PathId(id): PathId<CaseId>,
) -> Result<axum::Json<DocumentList>, ApiError> {
    let items =
        credit_file::case_documents(&ctx.commands(), &principal.0, id, as_market(&ctx)).await?;
    Ok(axum::Json(DocumentList { items }))
}

/// The bytes of a document with their media type; the SHA-256 is checked
/// again on every read, and content that does not match is never served.
#[utoipa::path(
    get,
    path = "/v1/documents/{id}/content",
    tag = "credit file",
    params(PathId<DocumentId>),
    responses((
        status = 200,
        description = "The document's bytes, served as an attachment in the media type it was added with",
        content(
            (Vec<u8> = "application/pdf"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "image/jpeg"),
            (String = "text/csv"),
            (String = "text/plain"),
        )
    )),
)]
pub async fn document_content(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    PathId(id): PathId<DocumentId>,
) -> Result<Response, ApiError> {
    content(&ctx, &principal, id, as_market(&ctx)).await
}

/// Records key financials of a borrower for a reporting date (L2),
/// replacing what was recorded for that date.
#[utoipa::path(
    post,
    path = "/v1/borrowers/{id}/financials",
    tag = "credit file",
    params(PathId<BorrowerId>, IdempotencyKey),
    request_body = FinancialsRequest,
    responses((status = 201, description = "The financials are recorded", body = BorrowerFinancials)),
)]
pub async fn record_financials(
    State(ctx): State<Arc<ServiceContext>>,
    principal: Principal,
    key: IdempotencyKey,
    PathId(id): PathId<BorrowerId>,
    Json(req): Json<FinancialsRequest>,
) -> Result<Response, ApiError> {
    put_financials(ctx, principal, key, id, req).await
}

/// A borrower's key financials, latest reporting date first.
#[utoipa::path(
    get,
    path = "/v1/borrowers/{id}/financials",
    tag = "credit file",
    params(PathId<BorrowerId>),
    responses((status = 200, description = "The borrower's financials", body = FinancialsList)),
)]
pub async fn list_financials(
    State(ctx): State<Arc<ServiceContext>>,
    _principal: Principal,
    PathId(id): PathId<BorrowerId>,
) -> Result<axum::Json<FinancialsList>, ApiError> {
    let items = credit_file::financials(&ctx.commands(), id).await?;
    Ok(axum::Json(FinancialsList { items }))
}
