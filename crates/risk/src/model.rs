//! The values the risk engine works on: limits, exposures, capital and
//! liquidity. All amounts are exact decimals in the reporting currency.

use creditops_domain::{BorrowerId, Country, RuleId, Sector, StaffId, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The one currency limits, capital and liquidity are kept in. Requests in
/// another currency cannot be gated (no FX rates here) and are refused.
pub const REPORTING_CURRENCY: &str = "EUR";

/// What a limit applies to (R3). The large-exposure limit is not stored: it
/// follows from Tier 1 capital.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum LimitSubject {
    Borrower(BorrowerId),
    /// A group of connected clients, by its id.
    Group(String),
    /// A NACE Rev. 2 section or division; a limit on a section covers
    /// its divisions.
    Sector(Sector),
    /// An ISO 3166-1 alpha-2 country.
    Country(Country),
}

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
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Borrower,
    Group,
    Sector,
    Country,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Borrower => "borrower",
            LimitKind::Group => "group",
            LimitKind::Sector => "sector",
            LimitKind::Country => "country",
        }
    }
}

impl FromStr for LimitKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "borrower" => Ok(LimitKind::Borrower),
            "group" => Ok(LimitKind::Group),
            "sector" => Ok(LimitKind::Sector),
            "country" => Ok(LimitKind::Country),
            _ => Err(format!(
                "unknown limit kind {s:?}; expected borrower, group, sector or country"
            )),
        }
    }
}

impl LimitSubject {
    pub fn kind(&self) -> LimitKind {
        match self {
            LimitSubject::Borrower(_) => LimitKind::Borrower,
            LimitSubject::Group(_) => LimitKind::Group,
            LimitSubject::Sector(_) => LimitKind::Sector,
            LimitSubject::Country(_) => LimitKind::Country,
        }
    }

    /// The key within the kind (borrower uuid, group id, sector, country).
    pub fn key(&self) -> String {
        match self {
            LimitSubject::Borrower(id) => id.to_string(),
            LimitSubject::Group(key) => key.clone(),
            LimitSubject::Sector(sector) => sector.to_string(),
            LimitSubject::Country(country) => country.to_string(),
        }
    }

    /// Rebuilds a subject from its kind and key (as stored or sent). Sector
    /// and country keys are codes of the built-in lists in their canonical
    /// spelling only: `c` or `C\u{200b}` is no sector limit on `C`.
    pub fn parse(kind: LimitKind, key: &str) -> Result<Self, String> {
        match kind {
            LimitKind::Borrower => key
                .parse::<BorrowerId>()
                .map(LimitSubject::Borrower)
                .map_err(|_| format!("borrower limit key {key:?} is not a borrower id")),
            LimitKind::Sector => key
                .parse::<Sector>()
                .map(LimitSubject::Sector)
                .map_err(|e| e.to_string()),
            LimitKind::Country => key
                .parse::<Country>()
                .map(LimitSubject::Country)
                .map_err(|e| e.to_string()),
            LimitKind::Group => {
                let valid_slug = !key.is_empty()
                    && key.len() <= 64
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if valid_slug {
                    Ok(LimitSubject::Group(key.to_owned()))
                } else {
                    Err(
                        "group limit key must be 1-64 characters of letters, digits, '-', '_' \
                         or '.'"
                            .to_owned(),
                    )
                }
            }
        }
    }
}

impl fmt::Display for LimitSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind().as_str(), self.key())
    }
}

/// A limit in force: the latest approved version for its subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub id: uuid::Uuid,
    pub subject: LimitSubject,
    pub version: i64,
    /// Usage up to this amount is within the limit.
    pub amount: Decimal,
    /// Usage above `amount` but up to `amount * (1 + tolerance_percent / 100)`
    /// is a soft breach (escalation); above that, a hard breach.
    pub tolerance_percent: Decimal,
}

impl Limit {
    /// The amount above which usage is a hard breach.
    pub fn hard_amount(&self) -> Decimal {
        self.amount + self.amount * self.tolerance_percent / Decimal::ONE_HUNDRED
    }
}

/// Where a limit version stands in its four-eyes approval (R8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitStatus {
    Pending,
    Approved,
    Rejected,
}

impl LimitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitStatus::Pending => "pending",
            LimitStatus::Approved => "approved",
            LimitStatus::Rejected => "rejected",
        }
    }
}

impl FromStr for LimitStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(LimitStatus::Pending),
            "approved" => Ok(LimitStatus::Approved),
            "rejected" => Ok(LimitStatus::Rejected),
            _ => Err(format!("unknown limit status {s:?}")),
        }
    }
}

/// One version of a limit with its four-eyes history. Versions are never
/// changed once decided; a new version supersedes the last approved one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimitVersion {
    pub id: uuid::Uuid,
    pub subject: LimitSubject,
    pub version: i64,
    pub amount: Decimal,
    pub tolerance_percent: Decimal,
    pub reason: String,
    pub proposed_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub proposed_at: Timestamp,
    pub status: LimitStatus,
    pub decided_by: Option<StaffId>,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub decided_at: Option<Timestamp>,
}

impl LimitVersion {
    pub fn limit(&self) -> Limit {
        Limit {
            id: self.id,
            subject: self.subject.clone(),
            version: self.version,
            amount: self.amount,
            tolerance_percent: self.tolerance_percent,
        }
    }
}

/// A borrower as the risk engine sees it, with its exposure (R2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BorrowerExposure {
    pub borrower: BorrowerId,
    /// The group of connected clients it belongs to now, if any.
    pub group: Option<String>,
    pub sector: Sector,
    pub country: Country,
    /// An institution (CRR Art. 4(1)(3)): the large-exposure cap is
    /// max(25 % of Tier 1, EUR 150m) (CRR Art. 395).
    pub institution: bool,
    /// Approved, not yet disbursed: active reservations (R5).
    pub reserved: Decimal,
    /// Disbursed here or imported from core banking.
    pub outstanding: Decimal,
}

impl BorrowerExposure {
    pub fn total(&self) -> Decimal {
        self.reserved + self.outstanding
    }
}

/// Tier 1 capital, the base of the large-exposure regime (R3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capital {
    pub version: i64,
    pub tier1: Decimal,
    pub recorded_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub recorded_at: Timestamp,
}

/// The liquidity position (R6): stock of high-quality liquid assets and the
/// 30-day stressed outflows and inflows, as of a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiquidityPosition {
    pub version: i64,
    pub hqla: Decimal,
    pub outflows_30d: Decimal,
    pub inflows_30d: Decimal,
    /// The internal LCR floor in percent (default 110; never below 100).
    pub floor_percent: Decimal,
    pub recorded_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub recorded_at: Timestamp,
}

/// Lifecycle of the headroom an approval reserves (R5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Active,
    /// Disbursed: the amount is outstanding now.
    Consumed,
    /// Not disbursed in time: the headroom is free again.
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Active => "active",
            ReservationStatus::Consumed => "consumed",
            ReservationStatus::Expired => "expired",
        }
    }
}

impl FromStr for ReservationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(ReservationStatus::Active),
            "consumed" => Ok(ReservationStatus::Consumed),
            "expired" => Ok(ReservationStatus::Expired),
            _ => Err(format!("unknown reservation status {s:?}")),
        }
    }
}

/// The limit and liquidity headroom one approved case holds (R5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reservation {
    pub case_id: creditops_domain::CaseId,
    pub borrower: BorrowerId,
    pub amount: Decimal,
    pub status: ReservationStatus,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub reserved_at: Timestamp,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub expires_at: Timestamp,
    /// When it was consumed or expired.
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub closed_at: Option<Timestamp>,
    /// Who disbursed it.
    pub closed_by: Option<StaffId>,
}

/// An outstanding balance imported from the core banking system, keyed by
/// the source system's record id (idempotent imports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedBalance {
    pub source_id: String,
    pub borrower: BorrowerId,
    pub amount: Decimal,
    pub as_of: Timestamp,
    /// Days the balance is past due, if core banking says (L7).
    pub days_past_due: Option<u32>,
    /// Days the limit behind it has been overdrawn, if core banking says (L7).
    pub overdrawn_days: Option<u32>,
}

/// What importing one balance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportEffect {
    Inserted,
    Updated,
    Unchanged,
}

/// A limit breach found by the gate or the watcher (R7). Open until usage is
/// back within the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Breach {
    pub id: uuid::Uuid,
    /// What is breached, e.g. `borrower:<id>`, `large_exposure:group:acme`,
    /// `liquidity:lcr`.
    pub subject: String,
    /// The rule (R3, R6) and the check, as in the gate's findings.
    #[schema(value_type = String)]
    pub rule: RuleId,
    pub check: String,
    pub limit: Decimal,
    pub usage: Decimal,
    /// `usage - limit` (for liquidity: floor minus LCR, in percentage points).
    pub amount_over: Decimal,
    pub severity: creditops_domain::Severity,
    /// What caused it: the command or change that was being applied.
    pub cause: String,
    /// Who has to act: the owning function.
    pub owner: String,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub detected_at: Timestamp,
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub resolved_at: Option<Timestamp>,
}
