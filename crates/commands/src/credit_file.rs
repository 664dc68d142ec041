//! The credit file (L2): documents added to a case or a borrower, which
//! change the file version of the cases they belong to (V3); the checklist
//! a first vote must satisfy; key financials per borrower and reporting
//! date. Document contents stay out of the audit trail: the events carry
//! the SHA-256.

use crate::cases::{
    CaseAction, MarketUse, case_audit_data, load_case, load_market_case, save_case,
};
use crate::facts::rules_in_force;
use crate::{Actor, CommandError, CommandResult, Context, InputProblem, action_time};
use creditops_audit::AuditAction;
use creditops_domain::credit_file::{MediaType, sha256_hex};
use creditops_domain::rules::RuleSet;
use creditops_domain::{BorrowerId, CaseId, CreditCase, DocumentId, Money, RuleId};
use creditops_store::{BorrowerFinancials, StoredDocument, Tx};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeSet;
use std::str::FromStr;

/// What a document is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentOwner {
    /// A case of the actor's market unit (hardening finding 9).
    Case(CaseId),
    /// A borrower: its open cases' files change with it.
    Borrower(BorrowerId),
}

/// A document to add: its type (a code of the catalogue in force), its
/// media type (checked against the content by the caller) and its bytes.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub owner: DocumentOwner,
    pub doc_type: String,
    pub media_type: MediaType,
    pub content: Vec<u8>,
    /// The document this one supersedes (same case, or same borrower).
    pub replaces: Option<DocumentId>,
}

fn invalid_field(field: &str, detail: String) -> CommandError {
    CommandError::Invalid {
        detail: format!("{field}: {detail}"),
        problems: vec![InputProblem {
            row: None,
            field: Some(field.to_owned()),
            detail,
        }],
    }
}

/// Adds a document to the credit file of a case or a borrower (L2), with
/// its `document.added` event, and changes the file of every case it
/// belongs to: the case itself, or every open case of the borrower. Each
/// such case gets a new file version that voids the votes cast so far (V3),
/// recorded as `case.file_changed`. A decided case takes no new document.
pub async fn add_document(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    input: NewDocument,
) -> CommandResult<StoredDocument> {
    let now = action_time();
    let (borrower_id, case) = match input.owner {
        DocumentOwner::Case(id) => {
            let case = load_market_case(tx, actor, id, MarketUse::Change, now).await?;
            if case.status.is_final() {
                return Err(CommandError::conflict_under(
                    RuleId::L2,
                    format!(
                        "the case is {}: its credit file takes no new document",
                        case.status
                    ),
                ));
            }
            (case.file.borrower_id, Some(case))
        }
        DocumentOwner::Borrower(id) => {
            if tx.borrower(id).await?.is_none() {
                return Err(CommandError::not_found("no borrower with that id"));
            }
            (id, None)
        }
    };
    let rules = rules_in_force(tx, now).await?;
    let catalogue = &rules.parameters.credit_file;
    if !catalogue.is_known_type(&input.doc_type) {
        let known: Vec<&str> = catalogue
            .document_types
            .iter()
            .map(|t| t.code.as_str())
            .collect();
        return Err(invalid_field(
            "type",
            format!(
                "{:?} is not a document type of the catalogue in force (rule set {}); known: {}",
                input.doc_type.chars().take(60).collect::<String>(),
                rules.version,
                known.join(", ")
            ),
        ));
    }
    let case_id = case.as_ref().map(|c| c.id);
    if let Some(old_id) = input.replaces {
        let old = tx
            .document(old_id)
            .await?
            .filter(|old| old.borrower_id == borrower_id && old.case_id == case_id)
            .ok_or_else(|| {
                invalid_field(
                    "replaces",
                    "names no document of this credit file (the same case, or the borrower \
                     itself)"
                        .into(),
                )
            })?;
        if old.superseded_by.is_some() {
            return Err(CommandError::conflict_under(
                RuleId::L2,
                "the document named in replaces is superseded already; replace the current one",
            ));
        }
    }
    let size = i64::try_from(input.content.len())
        .map_err(|_| CommandError::invalid("the document is too large"))?;
    let document = StoredDocument {
        id: DocumentId::generate(),
        borrower_id,
        case_id,
        doc_type: input.doc_type,
        media_type: input.media_type,
        sha256: sha256_hex(&input.content),
        size,
        added_by: actor.id().clone(),
        added_at: now,
        replaces: input.replaces,
        superseded_by: None,
    };
    tx.insert_document(&document, &input.content).await?;
    if let Some(old) = input.replaces {
        tx.supersede_document(old, document.id).await?;
    }
    let mut record = ctx.actor_record(actor, AuditAction::DocumentAdded);
    record.rule = Some(RuleId::L2);
    record.case_id = case_id;
    record.borrower_id = Some(borrower_id);
    record.data = json!({
        "document_id": document.id,
        "type": document.doc_type,
        "sha256": document.sha256,
        "size": document.size,
        "media_type": document.media_type.as_str(),
        "replaces": document.replaces,
    });
    ctx.audit(tx, &record).await?;

    match case {
        Some(mut case) => {
            let mut documents = case.file.documents.clone();
            documents.retain(|d| Some(d.id) != document.replaces);
            documents.push(document.file_entry());
            let reason = format!(
                "a {} document was added to the credit file; voting restarts",
                document.doc_type
            );
            file_changed(ctx, tx, actor, &mut case, documents, &reason, &document).await?;
        }
        None => {
            let reason = format!(
                "a {} document was added to the borrower's credit file; voting restarts",
                document.doc_type
            );
            for id in tx.open_cases_of(&[borrower_id]).await? {
                let Some(mut case) = tx.case(id).await? else {
                    continue;
                };
                if case.status.is_final() {
                    continue;
                }
                let documents = case.file.documents.clone();
                file_changed(ctx, tx, actor, &mut case, documents, &reason, &document).await?;
            }
        }
    }
    Ok(document)
}

/// Gives `case` a new file version with `documents` (V3) and records it.
async fn file_changed(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    case: &mut CreditCase,
    documents: Vec<creditops_domain::credit_file::FileDocument>,
    reason: &str,
    document: &StoredDocument,
) -> CommandResult<()> {
    let expected_revision = case.revision;
    case.change_documents(documents, reason, document.added_at)?;
    let mut data = case_audit_data(case);
    data["document_id"] = json!(document.id);
    let action = CaseAction::under_rule(AuditAction::CaseFileChanged, RuleId::L2);
    save_case(ctx, tx, actor, case, expected_revision, action, data).await
}

/// The document types present in a case's credit file now: the case's own
/// current documents and its borrower's.
async fn present_types(tx: &mut dyn Tx, case: &CreditCase) -> CommandResult<BTreeSet<String>> {
    let mut present: BTreeSet<String> = case
        .file
        .documents
        .iter()
        .map(|d| d.doc_type.clone())
        .collect();
    present.extend(
        tx.borrower_documents(case.file.borrower_id)
            .await?
            .into_iter()
            .filter(|d| d.superseded_by.is_none())
            .map(|d| d.doc_type),
    );
    Ok(present)
}

/// Refuses a first vote while the checklist of the case's product (rule set
/// in force) names a document type the credit file lacks (L2).
pub(crate) async fn check_first_vote_documents(
    tx: &mut dyn Tx,
    case: &CreditCase,
    rules: &RuleSet,
) -> CommandResult<()> {
    let checklist = &rules.parameters.credit_file;
    if checklist
        .required_for(&case.file.product, case.file.kind.as_str())
        .is_empty()
    {
        return Ok(());
    }
    let present = present_types(tx, case).await?;
    Ok(checklist.check_first_vote(&case.file.product, case.file.kind.as_str(), &present)?)
}

/// The documents of a case, superseded ones included, oldest first. Market
/// reads only what it may read of the case (hardening finding 9).
pub async fn case_documents(
    ctx: &Context,
    actor: &Actor,
    id: CaseId,
    as_market: bool,
) -> CommandResult<Vec<StoredDocument>> {
    let mut tx = ctx.store.begin_read().await?;
    if as_market {
        load_market_case(tx.as_mut(), actor, id, MarketUse::Read, action_time()).await?;
    } else {
        load_case(tx.as_mut(), id).await?;
    }
    Ok(tx.case_documents(id).await?)
}

/// The documents of a borrower itself, superseded ones included.
pub async fn borrower_documents(
    ctx: &Context,
    id: BorrowerId,
) -> CommandResult<Vec<StoredDocument>> {
    let mut tx = ctx.store.begin_read().await?;
    if tx.borrower(id).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    Ok(tx.borrower_documents(id).await?)
}

/// A document's metadata and bytes, the SHA-256 checked again: content that
/// does not match its recorded hash is refused, never served (L2).
pub async fn document_content(
    ctx: &Context,
    actor: &Actor,
    id: DocumentId,
    as_market: bool,
) -> CommandResult<(StoredDocument, Vec<u8>)> {
    let mut tx = ctx.store.begin_read().await?;
    let document = tx
        .document(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no document with that id"))?;
    if let (true, Some(case_id)) = (as_market, document.case_id) {
        load_market_case(tx.as_mut(), actor, case_id, MarketUse::Read, action_time())
            .await
            .map_err(|_| CommandError::not_found("no document with that id"))?;
    }
    let content = tx
        .document_content(id)
        .await?
        .ok_or_else(|| CommandError::Internal(format!("document {id} has no stored content")))?;
    if sha256_hex(&content) != document.sha256 {
        tracing::error!(document = %id, "stored document content does not match its SHA-256");
        return Err(CommandError::Internal(format!(
            "the stored content of document {id} does not match its recorded SHA-256; it is \
             not served"
        )));
    }
    Ok((document, content))
}

/// Key financials as entered: amounts as decimal strings.
#[derive(Debug, Clone)]
pub struct FinancialsInput {
    pub reporting_date: chrono::NaiveDate,
    pub currency: String,
    pub revenue: String,
    pub ebitda: String,
    pub total_debt: String,
    pub equity: String,
    pub debt_service: String,
}

/// The largest absolute amount a key figure may have.
const MAX_FIGURE: i64 = 1_000_000_000_000_000;

fn figure(field: &str, text: &str, non_negative: bool) -> Result<Decimal, InputProblem> {
    let problem = |detail: &str| InputProblem {
        row: None,
        field: Some(field.to_owned()),
        detail: format!("{field}: {detail}"),
    };
    let value = Decimal::from_str(text.trim())
        .map_err(|_| problem("must be a decimal amount as a string, e.g. \"1250000.00\""))?;
    if value.scale() > 4 || value.abs() >= Decimal::from(MAX_FIGURE) {
        return Err(problem("at most 4 decimal places and below 10^15"));
    }
    if non_negative && value.is_sign_negative() && !value.is_zero() {
        return Err(problem("must not be negative"));
    }
    Ok(value)
}

/// Records the key financials of a borrower for a reporting date (L2),
/// replacing what was recorded for that date, audited as
/// `borrower.financials_recorded`.
pub async fn record_financials(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower_id: BorrowerId,
    input: &FinancialsInput,
) -> CommandResult<BorrowerFinancials> {
    let now = action_time();
    let mut problems = Vec::new();
    if Money::parse("1", &input.currency).is_err() {
        problems.push(InputProblem {
            row: None,
            field: Some("currency".into()),
            detail: "currency: must be an ISO 4217 code".into(),
        });
    }
    if input.reporting_date > now.date_naive() {
        problems.push(InputProblem {
            row: None,
            field: Some("reporting_date".into()),
            detail: "reporting_date: must not be in the future".into(),
        });
    }
    let mut values = Vec::new();
    for (field, text, non_negative) in [
        ("revenue", &input.revenue, true),
        ("ebitda", &input.ebitda, false),
        ("total_debt", &input.total_debt, true),
        ("equity", &input.equity, false),
        ("debt_service", &input.debt_service, true),
    ] {
        match figure(field, text, non_negative) {
            Ok(value) => values.push(value),
            Err(problem) => problems.push(problem),
        }
    }
    let [revenue, ebitda, total_debt, equity, debt_service] = values[..] else {
        return Err(CommandError::Invalid {
            detail: problems
                .iter()
                .map(|p| p.detail.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            problems,
        });
    };
    if !problems.is_empty() {
        return Err(CommandError::Invalid {
            detail: problems
                .iter()
                .map(|p| p.detail.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            problems,
        });
    }
    if tx.borrower(borrower_id).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    let financials = BorrowerFinancials {
        borrower_id,
        reporting_date: input.reporting_date,
        currency: input.currency.clone(),
        revenue,
        ebitda,
        total_debt,
        equity,
        debt_service,
        recorded_by: actor.id().clone(),
        recorded_at: now,
    };
    tx.put_financials(&financials).await?;
    let mut record = ctx.actor_record(actor, AuditAction::BorrowerFinancialsRecorded);
    record.rule = Some(RuleId::L2);
    record.borrower_id = Some(borrower_id);
    record.data = json!({
        "reporting_date": financials.reporting_date.to_string(),
        "currency": financials.currency,
        "revenue": financials.revenue.to_string(),
        "ebitda": financials.ebitda.to_string(),
        "total_debt": financials.total_debt.to_string(),
        "equity": financials.equity.to_string(),
        "debt_service": financials.debt_service.to_string(),
    });
    ctx.audit(tx, &record).await?;
    Ok(financials)
}

/// A borrower's key financials, latest reporting date first.
pub async fn financials(ctx: &Context, id: BorrowerId) -> CommandResult<Vec<BorrowerFinancials>> {
    let mut tx = ctx.store.begin_read().await?;
    if tx.borrower(id).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    Ok(tx.financials(id).await?)
}
