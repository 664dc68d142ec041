//! Controlled vocabularies for what sector and country limits are keyed by: a
//! borrower's economic sector as a NACE Rev. 2 code and its country as an
//! ISO 3166-1 alpha-2 code. Free text let `c` or `C\u{200b}` escape a limit
//! on `C`; a value of these types is always one code of the built-in lists,
//! spelt one way.

mod nace;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A text that is not a code of the list it was given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassificationError {
    #[error(
        "{0:?} is not a NACE Rev. 2 code: use a section letter (A to U, e.g. \"C\") or a \
         division (section letter and two digits, e.g. \"C25\")"
    )]
    Sector(String),
    #[error("{0:?} is not an ISO 3166-1 alpha-2 country code (two capital letters, e.g. \"DE\")")]
    Country(String),
}

/// A NACE Rev. 2 section (`C`) or division (`C25`). A section limit covers
/// every division of its section ([`Sector::covers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sector {
    section: char,
    division: Option<u8>,
}

impl Sector {
    /// Every section and division, sections first in each section's block.
    pub fn all() -> impl Iterator<Item = Sector> {
        nace::SECTIONS.iter().flat_map(|s| {
            std::iter::once(Sector {
                section: s.letter,
                division: None,
            })
            .chain(s.divisions.iter().map(|(d, _)| Sector {
                section: s.letter,
                division: Some(*d),
            }))
        })
    }

    /// The section this code belongs to (itself for a section).
    pub fn section(self) -> Sector {
        Sector {
            section: self.section,
            division: None,
        }
    }

    /// Whether this is a section code rather than a division.
    pub fn is_section(self) -> bool {
        self.division.is_none()
    }

    /// Whether a limit on `self` covers a borrower in `other`: the same
    /// code, or `self` is the section of the division `other`.
    pub fn covers(self, other: Sector) -> bool {
        self == other || (self.is_section() && self.section == other.section)
    }

    /// Every code a limit on `self` covers: itself and, for a section, each
    /// of its divisions.
    pub fn covered(self) -> impl Iterator<Item = Sector> {
        Sector::all().filter(move |other| self.covers(*other))
    }

    /// The official (English) name of the section or division.
    pub fn name(self) -> &'static str {
        let section = nace::SECTIONS.iter().find(|s| s.letter == self.section);
        match (section, self.division) {
            (Some(s), None) => s.name,
            (Some(s), Some(d)) => s
                .divisions
                .iter()
                .find(|(code, _)| *code == d)
                .map_or("", |(_, name)| name),
            (None, _) => "",
        }
    }
}

impl FromStr for Sector {
    type Err = ClassificationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || ClassificationError::Sector(text.to_owned());
        let mut chars = text.chars();
        let letter = chars.next().ok_or_else(refuse)?;
        let section = nace::SECTIONS
            .iter()
            .find(|s| s.letter == letter)
            .ok_or_else(refuse)?;
        let digits = chars.as_str();
        if digits.is_empty() {
            return Ok(Sector {
                section: letter,
                division: None,
            });
        }
        if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse());
        }
        let division: u8 = digits.parse().map_err(|_| refuse())?;
        if !section.divisions.iter().any(|(d, _)| *d == division) {
            return Err(refuse());
        }
        Ok(Sector {
            section: letter,
            division: Some(division),
        })
    }
}

impl fmt::Display for Sector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.division {
            None => write!(f, "{}", self.section),
            Some(d) => write!(f, "{}{d:02}", self.section),
        }
    }
}

impl TryFrom<String> for Sector {
    type Error = ClassificationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Sector> for String {
    fn from(sector: Sector) -> Self {
        sector.to_string()
    }
}

impl utoipa::PartialSchema for Sector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some(
                "NACE Rev. 2 section letter (A to U) or division (section letter and two \
                 digits, e.g. C25)",
            ))
            .pattern(Some("^[A-U]([0-9]{2})?$"))
            .examples([serde_json::json!("C25")])
            .into()
    }
}
impl utoipa::ToSchema for Sector {}

/// An ISO 3166-1 alpha-2 country code (`DE`), from the built-in list of
/// assigned codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country(iso_currency::Country);

impl Country {
    /// The short English name of the country.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for Country {
    type Err = ClassificationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || ClassificationError::Country(text.to_owned());
        // The list is searched by code, so only the canonical spelling counts.
        if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(refuse());
        }
        text.parse::<iso_currency::Country>()
            .map(Country)
            .map_err(|_| refuse())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<String> for Country {
    type Error = ClassificationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Country> for String {
    fn from(country: Country) -> Self {
        country.to_string()
    }
}

impl utoipa::PartialSchema for Country {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some("ISO 3166-1 alpha-2 country code"))
            .pattern(Some("^[A-Z]{2}$"))
            .examples([serde_json::json!("DE")])
            .into()
    }
}
impl utoipa::ToSchema for Country {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_have_21_sections_and_88_divisions() {
        let all: Vec<Sector> = Sector::all().collect();
        assert_eq!(all.iter().filter(|s| s.is_section()).count(), 21);
        assert_eq!(all.iter().filter(|s| !s.is_section()).count(), 88);
        for sector in all {
            assert!(!sector.name().is_empty(), "{sector}");
            assert_eq!(sector.to_string().parse::<Sector>(), Ok(sector));
        }
    }

    #[test]
    fn sector_codes_parse_only_in_their_canonical_spelling() {
        for (text, ok) in [
            ("C", true),
            ("C25", true),
            ("B05", true),
            ("U99", true),
            ("K64", true),
            ("c", false),
            ("c25", false),
            ("C\u{200b}", false),
            (" C", false),
            ("C ", false),
            ("C5", false),
            ("C025", false),
            ("C99", false),
            ("B04", false),
            ("V", false),
            ("", false),
            ("manufacturing", false),
            ("C2５", false),
        ] {
            assert_eq!(text.parse::<Sector>().is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn a_section_covers_its_divisions_and_nothing_else() {
        let s = |t: &str| t.parse::<Sector>().unwrap();
        for (limit, borrower, covered) in [
            ("C", "C", true),
            ("C", "C25", true),
            ("C", "C10", true),
            ("C", "D35", false),
            ("C", "D", false),
            ("C25", "C25", true),
            ("C25", "C", false),
            ("C25", "C24", false),
        ] {
            assert_eq!(s(limit).covers(s(borrower)), covered, "{limit} {borrower}");
        }
        assert_eq!(s("C25").section(), s("C"));
        assert_eq!(s("C25").covered().collect::<Vec<_>>(), [s("C25")]);
        let section_c: Vec<String> = s("C").covered().map(|c| c.to_string()).collect();
        assert_eq!(section_c.len(), 25);
        assert_eq!(
            (section_c[0].as_str(), section_c[24].as_str()),
            ("C", "C33")
        );
        assert_eq!(s("C25").name(), s("C25").name());
        assert_eq!(s("C").name(), "Manufacturing");
    }

    #[test]
    fn country_codes_are_assigned_iso_codes_in_capitals() {
        for (text, ok) in [
            ("DE", true),
            ("FR", true),
            ("SS", true),
            ("XX", false),
            ("de", false),
            ("De", false),
            ("DEU", false),
            ("D", false),
            ("", false),
            ("AN", false),
            ("DE\u{200b}", false),
        ] {
            assert_eq!(text.parse::<Country>().is_ok(), ok, "{text:?}");
        }
        let de: Country = "DE".parse().unwrap();
        assert_eq!(de.to_string(), "DE");
        assert_eq!(de.name(), "Germany");
        assert_eq!(serde_json::to_string(&de).unwrap(), "\"DE\"");
        assert!(serde_json::from_str::<Country>("\"XX\"").is_err());
    }
}
