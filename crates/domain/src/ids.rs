//! Identifiers. They parse instead of validate: a value of these types is
//! always well-formed, so handlers and stores never re-check them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

/// Pseudonymous staff identifier (e.g. `lo-1`). This is what the audit trail
/// records; names never enter hashed audit bodies (A6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StaffId(String);

/// Organisational unit identifier (e.g. `market-corporate`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnitId(String);

/// What [`parse_slug`] accepts, as a JSON Schema pattern.
const SLUG_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

fn parse_slug(kind: &str, s: &str) -> Result<String, IdError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(IdError(format!(
            "{kind} must be 1-64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

macro_rules! slug_id {
    ($ty:ident, $kind:literal) => {
        /// A string of the shape the parser accepts (the derive could not
        /// say so: the pattern lives in `parse_slug`).
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .description(Some(concat!(
                        $kind,
                        ": 1-64 letters, digits, '-', '_' or '.'"
                    )))
                    .pattern(Some(SLUG_PATTERN))
                    .into()
            }
        }
        impl utoipa::ToSchema for $ty {}

        impl $ty {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                parse_slug($kind, s).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
slug_id!(StaffId, "a staff id");
slug_id!(UnitId, "a unit id");

macro_rules! uuid_id {
    ($ty:ident, $kind:literal) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $ty(Uuid);

        impl $ty {
            /// A new, time-ordered id (UUIDv7), so inserts stay index-friendly.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| IdError(format!("{} must be a UUID", $kind)))
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}
uuid_id!(CaseId, "a case id");
uuid_id!(BorrowerId, "a borrower id");
uuid_id!(CollateralId, "a collateral id");
uuid_id!(ValuationId, "a valuation id");
uuid_id!(CreditId, "a credit id");
uuid_id!(DocumentId, "a document id");
uuid_id!(ProvisionId, "a provision id");
uuid_id!(ReviewId, "a review id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_ids_parse_or_refuse() {
        for ok in ["lo-1", "ba_2", "a.b", &"x".repeat(64)] {
            assert!(StaffId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " lo-1",
            "lo 1",
            "lo/1",
            "'; drop table staff;--",
            &"x".repeat(65),
        ] {
            assert!(StaffId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuid_ids_round_trip() {
        let id = CaseId::generate();
        assert_eq!(id.to_string().parse::<CaseId>(), Ok(id));
        assert!("../../etc/passwd".parse::<CaseId>().is_err());
    }
}
