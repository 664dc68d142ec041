//! The credit file (Kreditakte, L2): the versioned catalogue of document
//! types and the checklists of documents a product (and decision kind) needs
//! before its first vote, the media types a document may have and the check
//! of its content against the declared type, and the SHA-256 every document
//! is known by. Pure: the services store the bytes, this decides about them.

use crate::{DomainError, RuleId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The longest document type code.
const MAX_CODE: usize = 50;

/// One document type of the catalogue: a stable code and its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentType {
    /// Lower-case letters, digits and `_`, e.g. `annual_accounts`.
    #[schema(example = "annual_accounts")]
    pub code: String,
    #[schema(example = "Annual accounts")]
    pub name: String,
}

/// The document types one product (and, optionally, one decision kind) needs
/// in its credit file before the first vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    /// The product of the case, as the case names it (e.g. `term_loan`).
    #[schema(example = "term_loan")]
    pub product: String,
    /// The decision kind (`new`, `increase`, ...); none: every kind.
    #[serde(default)]
    #[schema(example = "new")]
    pub kind: Option<String>,
    /// Codes of the catalogue.
    pub required: Vec<String>,
}

/// The credit-file part of a rule set (L2): the catalogue of document types
/// and the checklists. The defaults hold a catalogue and no checklist: each
/// bank configures its own, four-eyes, with the rest of the rule set (S9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditFileParameters {
    pub document_types: Vec<DocumentType>,
    #[serde(default)]
    pub checklists: Vec<Checklist>,
}

impl Default for CreditFileParameters {
    fn default() -> Self {
        let types = [
            ("credit_application", "Credit application"),
            ("annual_accounts", "Annual accounts"),
            ("interim_accounts", "Interim accounts"),
            ("collateral_valuation", "Collateral valuation"),
            ("land_register_extract", "Land register extract"),
            ("id_document", "Identity document"),
            ("rating_report", "Rating report"),
            ("other", "Other"),
        ];
        Self {
            document_types: types
                .into_iter()
                .map(|(code, name)| DocumentType {
                    code: code.to_owned(),
                    name: name.to_owned(),
                })
                .collect(),
            checklists: Vec::new(),
        }
    }
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl CreditFileParameters {
    /// Codes are well-formed and unique, names present, and every checklist
    /// names a product and only codes of the catalogue.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut codes = BTreeSet::new();
        for kind in &self.document_types {
            if !valid_code(&kind.code) {
                return Err(DomainError::Invalid(format!(
                    "credit_file: document type code {:?} must be 1 to {MAX_CODE} lower-case \
                     letters, digits or '_'",
                    kind.code
                )));
            }
            crate::text::required_text("credit_file: document type name", &kind.name, 100)?;
            if !codes.insert(kind.code.as_str()) {
                return Err(DomainError::Invalid(format!(
                    "credit_file: document type {} is listed twice",
                    kind.code
                )));
            }
        }
        for (index, list) in self.checklists.iter().enumerate() {
            crate::text::required_text("credit_file: checklist product", &list.product, 100)?;
            if let Some(kind) = &list.kind {
                kind.parse::<crate::CaseKind>().map_err(|e| {
                    DomainError::Invalid(format!("credit_file: checklist kind: {e}"))
                })?;
            }
            if list.required.is_empty() {
                return Err(DomainError::Invalid(format!(
                    "credit_file: checklist {index} ({}) requires no document type",
                    list.product
                )));
            }
            if let Some(unknown) = list.required.iter().find(|c| !codes.contains(c.as_str())) {
                return Err(DomainError::Invalid(format!(
                    "credit_file: checklist {index} ({}) requires {unknown:?}, which is not a \
                     document type of the catalogue",
                    list.product
                )));
            }
        }
        Ok(())
    }

    /// Whether `code` is a document type of the catalogue.
    pub fn is_known_type(&self, code: &str) -> bool {
        self.document_types.iter().any(|t| t.code == code)
    }

    /// The document types a first vote on `product` of `kind` needs: every
    /// checklist of the product for that kind or for every kind.
    pub fn required_for(&self, product: &str, kind: &str) -> BTreeSet<&str> {
        self.checklists
            .iter()
            .filter(|list| {
                list.product == product && list.kind.as_deref().is_none_or(|k| k == kind)
            })
            .flat_map(|list| list.required.iter().map(String::as_str))
            .collect()
    }

    /// The required types not among `present`, sorted.
    pub fn missing(&self, product: &str, kind: &str, present: &BTreeSet<String>) -> Vec<String> {
        self.required_for(product, kind)
            .into_iter()
            .filter(|code| !present.contains(*code))
            .map(str::to_owned)
            .collect()
    }

    /// Refuses a first vote while a required document type is missing (L2).
    pub fn check_first_vote(
        &self,
        product: &str,
        kind: &str,
        present: &BTreeSet<String>,
    ) -> Result<(), DomainError> {
        let missing = self.missing(product, kind, present);
        if missing.is_empty() {
            return Ok(());
        }
        Err(DomainError::Incomplete {
            rule: RuleId::L2,
            detail: format!(
                "the credit file of this {product} ({kind}) lacks required documents: {}; \
                 add them before the first vote",
                missing.join(", ")
            ),
            missing,
        })
    }
}

/// The media types a document may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MediaType {
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "text/csv")]
    Csv,
    #[serde(rename = "text/plain")]
    Text,
}

/// Why a document's bytes were refused as its declared media type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The declared media type is none a document may have (415).
    #[error(
        "media type {0:?} is not accepted for documents; use application/pdf, image/png, \
         image/jpeg, text/csv or text/plain"
    )]
    Unsupported(String),
    /// The content is not what the declared type says (415).
    #[error("the content is not {0}: {1}")]
    Mismatch(&'static str, &'static str),
}

impl MediaType {
    pub const ALL: [MediaType; 5] = [
        MediaType::Pdf,
        MediaType::Png,
        MediaType::Jpeg,
        MediaType::Csv,
        MediaType::Text,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Csv => "text/csv",
            MediaType::Text => "text/plain",
        }
    }

    /// The media type of a `Content-Type` header value (parameters such as
    /// `charset=utf-8` are ignored; case does not matter).
    pub fn from_content_type(value: &str) -> Result<Self, MediaError> {
        let essence = value.split(';').next().unwrap_or("").trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(essence))
            .ok_or_else(|| MediaError::Unsupported(essence.chars().take(100).collect()))
    }

    /// Checks the bytes against the type: the magic bytes of PDF, PNG and
    /// JPEG, UTF-8 text without NUL for CSV and plain text. Empty content is
    /// refused for every type.
    pub fn check(self, content: &[u8]) -> Result<(), MediaError> {
        let ok = match self {
            MediaType::Pdf => content.starts_with(b"%PDF-"),
            MediaType::Png => content.starts_with(b"\x89PNG\r\n\x1a\n"),
            MediaType::Jpeg => content.starts_with(&[0xFF, 0xD8, 0xFF]),
            MediaType::Csv | MediaType::Text => {
                !content.is_empty() && std::str::from_utf8(content).is_ok() && !content.contains(&0)
            }
        };
        if ok {
            return Ok(());
        }
        Err(MediaError::Mismatch(
            self.as_str(),
            match self {
                MediaType::Pdf => "it does not begin with %PDF-",
                MediaType::Png => "it does not begin with the PNG signature",
                MediaType::Jpeg => "it does not begin with the JPEG marker",
                MediaType::Csv | MediaType::Text => "it is empty or not UTF-8 text",
            },
        ))
    }
}

impl FromStr for MediaType {
    type Err = MediaError;
    fn from_str(s: &str) -> Result<Self, MediaError> {
        Self::from_content_type(s)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SHA-256 of `content` as lower-case hex: the name a document is known by
/// in the case file's hash and in the audit trail (L2).
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, content).as_ref())
}

/// A document in a case's file as the file version's hash covers it (V3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileDocument {
    pub id: crate::DocumentId,
    #[serde(rename = "type")]
    pub doc_type: String,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(codes: &[&str]) -> BTreeSet<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    fn with_checklists(lists: Vec<Checklist>) -> CreditFileParameters {
        CreditFileParameters {
            checklists: lists,
            ..CreditFileParameters::default()
        }
    }

    fn list(product: &str, kind: Option<&str>, required: &[&str]) -> Checklist {
        Checklist {
            product: product.to_owned(),
            kind: kind.map(str::to_owned),
            required: required.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn l2_checklist_names_what_is_missing() {
        let params = with_checklists(vec![
            list(
                "term_loan",
                None,
                &["credit_application", "annual_accounts"],
            ),
            list("term_loan", Some("new"), &["rating_report"]),
            list("term_loan", Some("increase"), &["interim_accounts"]),
            list("overdraft", None, &["id_document"]),
        ]);
        let table: [(&str, &str, &[&str], &[&str]); 6] = [
            (
                "term_loan",
                "new",
                &[],
                &["annual_accounts", "credit_application", "rating_report"],
            ),
            (
                "term_loan",
                "new",
                &["annual_accounts", "other"],
                &["credit_application", "rating_report"],
            ),
            (
                "term_loan",
                "new",
                &["annual_accounts", "credit_application", "rating_report"],
                &[],
            ),
            (
                "term_loan",
                "increase",
                &["annual_accounts", "credit_application"],
                &["interim_accounts"],
            ),
            ("mortgage", "new", &[], &[]),
            ("overdraft", "prolongation", &[], &["id_document"]),
        ];
        for (product, kind, present, missing) in table {
            assert_eq!(
                params.missing(product, kind, &set(present)),
                missing.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(),
                "L2 {product} {kind} {present:?}"
            );
        }
    }

    #[test]
    fn l2_a_first_vote_without_required_documents_is_refused_with_the_list() {
        let params = with_checklists(vec![list("term_loan", None, &["annual_accounts"])]);
        match params.check_first_vote("term_loan", "new", &set(&[])) {
            Err(DomainError::Incomplete { rule, missing, .. }) => {
                assert_eq!(rule, RuleId::L2);
                assert_eq!(missing, vec!["annual_accounts".to_owned()]);
            }
            other => panic!("expected an L2 refusal, got {other:?}"),
        }
        assert!(
            params
                .check_first_vote("term_loan", "new", &set(&["annual_accounts"]))
                .is_ok()
        );
        // The defaults hold no checklist: nothing is required.
        assert!(
            CreditFileParameters::default()
                .check_first_vote("term_loan", "new", &set(&[]))
                .is_ok()
        );
    }

    #[test]
    fn l2_catalogue_validation() {
        assert!(CreditFileParameters::default().validate().is_ok());
        let mut cases: Vec<(&str, CreditFileParameters)> = Vec::new();
        cases.push((
            "unknown code in checklist",
            with_checklists(vec![list("term_loan", None, &["balance_sheet"])]),
        ));
        cases.push((
            "empty checklist",
            with_checklists(vec![list("term_loan", None, &[])]),
        ));
        cases.push((
            "empty product",
            with_checklists(vec![list(" ", None, &["other"])]),
        ));
        let mut p = CreditFileParameters::default();
        p.document_types.push(DocumentType {
            code: "other".into(),
            name: "Again".into(),
        });
        cases.push(("duplicate code", p));
        let mut p = CreditFileParameters::default();
        p.document_types[0].code = "Credit Application".into();
        cases.push(("bad code", p));
        let mut p = CreditFileParameters::default();
        p.document_types[0].name = String::new();
        cases.push(("empty name", p));
        for (name, p) in cases {
            assert!(p.validate().is_err(), "L2 {name} must be refused");
        }
        assert!(
            with_checklists(vec![list("term_loan", Some("new"), &["other"])])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn l2_media_types_are_checked_by_their_magic_bytes() {
        let table: [(&str, &[u8], bool); 12] = [
            ("application/pdf", b"%PDF-1.7\n...", true),
            ("Application/PDF", b"%PDF-1.4", true),
            ("application/pdf", b"PK\x03\x04", false),
            ("image/png", b"\x89PNG\r\n\x1a\n\0\0", true),
            ("image/png", b"%PDF-1.7", false),
            ("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0], true),
            ("image/jpeg", b"GIF89a", false),
            ("text/csv; charset=utf-8", b"year,revenue\n2025,100\n", true),
            ("text/csv", &[0xFF, 0xFE, 0x00], false),
            ("text/plain", "Grundbuch M\u{fc}nchen".as_bytes(), true),
            ("text/plain", b"", false),
            ("text/plain", b"a\0b", false),
        ];
        for (content_type, bytes, ok) in table {
            let media = MediaType::from_content_type(content_type).expect("known type");
            assert_eq!(media.check(bytes).is_ok(), ok, "{content_type} {bytes:?}");
        }
        for unknown in [
            "application/zip",
            "text/html",
            "",
            "application/octet-stream",
        ] {
            assert!(
                matches!(
                    MediaType::from_content_type(unknown),
                    Err(MediaError::Unsupported(_))
                ),
                "{unknown}"
            );
        }
    }

    #[test]
    fn sha256_is_lower_case_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
