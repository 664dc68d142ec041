//! The credit file a case decides on, validated when it is made, and its
//! content hash that every vote and decision names (V3).

use crate::credit::{CaseKind, CreditBase, added_exposure, check_change};
use crate::credit_file::FileDocument;
use crate::text::{MAX_TEXT, required_text};
use crate::{BorrowerId, CollateralId, DomainError, Money};
use rust_decimal::Decimal;

/// The longest term a credit file may ask for (50 years).
const MAX_TERM_MONTHS: u32 = 600;

/// The credit file: the risk-relevant facts both votes are bound to (V3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    pub borrower_id: BorrowerId,
    pub amount: Money,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
    /// What the decision decides (L1); `new` unless the case changes an
    /// approved credit.
    pub kind: CaseKind,
    /// The approved credit a change case changes, as the case found it (L1).
    pub base: Option<CreditBase>,
    /// The collateral a collateral-release decision releases (L1, L3).
    pub released: Option<CollateralId>,
    /// The case's current documents (L2), superseded ones left out, in the
    /// order they were added. Their hashes are part of the content hash.
    pub documents: Vec<FileDocument>,
}

impl CaseFile {
    pub fn new(
        borrower_id: BorrowerId,
        amount: Money,
        product: &str,
        term_months: i64,
        purpose: &str,
    ) -> Result<Self, DomainError> {
        let product = required_text("product", product, 100)?;
        let purpose = required_text("purpose", purpose, MAX_TEXT)?;
        let term_months = u32::try_from(term_months)
            .ok()
            .filter(|t| (1..=MAX_TERM_MONTHS).contains(t))
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "term_months must be between 1 and {MAX_TERM_MONTHS}"
                ))
            })?;
        Ok(Self {
            borrower_id,
            amount,
            product,
            term_months,
            purpose,
            kind: CaseKind::New,
            base: None,
            released: None,
            documents: Vec::new(),
        })
    }

    /// The same file as a decision of `kind` on the approved credit `base`
    /// (L1): the amount and term are the credit's after the change.
    pub fn changing(
        mut self,
        kind: CaseKind,
        base: Option<CreditBase>,
    ) -> Result<Self, DomainError> {
        check_change(kind, base.as_ref(), &self.amount, self.term_months)?;
        self.kind = kind;
        self.base = base;
        Ok(self)
    }

    /// The same file naming the collateral a collateral release releases
    /// (L1, L3): named by that kind, and only by it.
    pub fn releasing(mut self, collateral: Option<CollateralId>) -> Result<Self, DomainError> {
        match (self.kind == CaseKind::CollateralRelease, collateral) {
            (true, None) => Err(DomainError::Invalid(
                "a collateral release names the collateral it releases (collateral_id)".into(),
            )),
            (false, Some(_)) => Err(DomainError::Invalid(
                "only a collateral release names collateral_id".into(),
            )),
            (_, collateral) => {
                self.released = collateral;
                Ok(self)
            }
        }
    }

    /// The exposure the decision adds (L1): all of a new credit, the
    /// difference for an increase or an overdraft, nothing otherwise.
    pub fn added_exposure(&self) -> Decimal {
        added_exposure(self.base.as_ref(), &self.amount)
    }

    /// SHA-256 over a canonical rendering of the file (sorted keys, no
    /// whitespace, amounts as strings). A vote records this hash (V3). A
    /// change of an approved credit names its kind and the credit version it
    /// changes (L1); the documents (L2) are in it as `documents`, sorted by
    /// id, each with its id, type and SHA-256. A new credit's file without
    /// documents renders as before either existed, so hashes recorded then
    /// still match.
    pub fn content_hash(&self) -> String {
        let mut canonical = serde_json::json!({
            "amount": self.amount.amount().to_string(),
            "borrower_id": self.borrower_id.to_string(),
            "currency": self.amount.currency_code(),
            "product": self.product,
            "purpose": self.purpose,
            "term_months": self.term_months,
        });
        if let Some(base) = &self.base {
            canonical["kind"] = serde_json::json!(self.kind.as_str());
            canonical["credit"] = serde_json::json!({
                "id": base.credit_id.to_string(),
                "version": base.version,
                "amount": base.amount.to_string(),
                "term_months": base.term_months,
            });
        }
        if let Some(released) = self.released {
            canonical["released_collateral"] = serde_json::json!(released.to_string());
        }
        if !self.documents.is_empty() {
            let mut documents: Vec<&FileDocument> = self.documents.iter().collect();
            documents.sort_by_key(|d| d.id);
            canonical["documents"] = documents
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "id": d.id.to_string(),
                        "sha256": d.sha256,
                        "type": d.doc_type,
                    })
                })
                .collect();
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.to_string().as_bytes());
        hex::encode(digest.as_ref())
    }
}
