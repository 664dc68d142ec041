//! The versioned rule parameters a decision is taken under: the competence
//! order (Kompetenzordnung, V4), the cooling-off period (S5), the divergence
//! policy (V5) and the optional single-vote lane (V8).
//!
//! One [`RuleSet`] version covers all of them, so a decision records a single
//! number that explains every threshold it was evaluated against. Rule sets are
//! changed four-eyes (S9) and are effective-dated: the set in force at the time
//! of an action is the one with the latest `valid_from` not after it.

use crate::rating::RatingRules;
use crate::{DomainError, RuleId, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The highest level a competence order may have; keeps levels small numbers.
pub const MAX_LEVEL: u8 = 9;

/// One step of the competence order. `up_to` is the highest aggregated
/// exposure (inclusive) the level may decide; `None` marks the board, the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompetenceLevel {
    pub level: u8,
    pub name: String,
    #[serde(default)]
    pub up_to: Option<Decimal>,
}

/// The competence order: levels in ascending order, the last one unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompetenceOrder {
    /// Exposures are aggregated and compared in this currency.
    pub currency: String,
    pub levels: Vec<CompetenceLevel>,
}

impl CompetenceOrder {
    fn validate(&self) -> Result<(), DomainError> {
        if iso_currency::Currency::from_code(&self.currency).is_none() {
            return Err(DomainError::Invalid(format!(
                "competence order currency {:?} is not an ISO 4217 code",
                self.currency
            )));
        }
        let Some((top, below)) = self.levels.split_last() else {
            return Err(DomainError::Invalid(
                "the competence order needs at least one level".into(),
            ));
        };
        if top.up_to.is_some() {
            return Err(DomainError::Invalid(
                "the top level of the competence order (the board) must be unbounded".into(),
            ));
        }
        let mut previous_level = 0u8;
        let mut previous_limit = Decimal::ZERO;
        for (index, level) in self.levels.iter().enumerate() {
            if level.level != previous_level + 1 || level.level > MAX_LEVEL {
                return Err(DomainError::Invalid(format!(
                    "competence levels must be numbered 1, 2, ... up to {MAX_LEVEL} without gaps; \
                     entry {index} has level {}",
                    level.level
                )));
            }
            crate::text::required_text("competence level name", &level.name, 100)?;
            previous_level = level.level;
            if index < below.len() {
                let limit = level.up_to.ok_or_else(|| {
                    DomainError::Invalid(format!(
                        "only the top level may be unbounded; level {} has no limit",
                        level.level
                    ))
                })?;
                if limit <= previous_limit {
                    return Err(DomainError::Invalid(format!(
                        "competence limits must be positive and strictly increasing; level {} has {limit}",
                        level.level
                    )));
                }
                previous_limit = limit;
            }
        }
        Ok(())
    }

    /// The lowest level whose limit covers `exposure` (V4). Fails closed on an
    /// order without levels, which validation never lets into the store.
    pub fn required_level(&self, exposure: Decimal) -> Result<&CompetenceLevel, DomainError> {
        self.levels
            .iter()
            .find(|level| level.up_to.is_none_or(|limit| exposure <= limit))
            .ok_or_else(|| {
                DomainError::rule(
                    RuleId::V4,
                    "the competence order in force has no level for this exposure",
                )
            })
    }

    pub fn level(&self, level: u8) -> Option<&CompetenceLevel> {
        self.levels.iter().find(|l| l.level == level)
    }

    /// The level above `level`, or `None` at the board (V5).
    pub fn next_level(&self, level: u8) -> Option<&CompetenceLevel> {
        self.levels
            .iter()
            .find(|l| l.level == level.saturating_add(1))
    }

    /// The board is the top level: nothing above it.
    pub fn is_board(&self, level: u8) -> bool {
        self.next_level(level).is_none()
    }

    /// A level's display name, falling back to its number.
    pub fn name_of(&self, level: u8) -> String {
        self.level(level)
            .map_or_else(|| format!("level-{level}"), |l| l.name.clone())
    }
}

/// What divergent votes (market approves, back office declines) lead to (V5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DivergencePolicy {
    Decline,
    Escalate,
}

impl fmt::Display for DivergencePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DivergencePolicy::Decline => "decline",
            DivergencePolicy::Escalate => "escalate",
        })
    }
}

/// The parameters of one rule-set version. Amounts are decimal strings in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleParameters {
    pub competence_order: CompetenceOrder,
    /// S5: months after leaving a market unit before a back-office vote.
    pub cooling_off_months: u32,
    pub divergence: DivergencePolicy,
    /// V8: below this aggregated exposure one market vote suffices. `None`
    /// (the default) keeps the lane closed: every decision needs both votes.
    #[serde(default)]
    pub single_vote_below: Option<Decimal>,
    /// R5: days an approval's reserved headroom is held for disbursement
    /// before it expires and is released.
    #[serde(default = "default_reservation_days")]
    pub reservation_days: u32,
    /// L3: haircuts, revaluation schedule and back-office threshold of collateral.
    #[serde(default)]
    pub collateral: crate::collateral::CollateralParameters,
    /// L1: what the competence order is applied to.
    #[serde(default)]
    pub competence_basis: CompetenceBasis,
    /// L4: the master scale, the maximum age of a rating for a first vote
    /// and the rating bands that need more competence.
    #[serde(default)]
    pub rating: RatingRules,
    /// L2: the catalogue of document types and the checklists of the credit
    /// file. Rule sets stored before it existed read as the defaults.
    #[serde(default)]
    pub credit_file: crate::credit_file::CreditFileParameters,
    /// L6-L10: review schedule, early-warning catalogue, intensive-care
    /// criteria and the board threshold of provisions.
    #[serde(default)]
    pub monitoring: crate::monitoring::MonitoringParameters,
}

/// What the competence order's limits are compared with (L1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompetenceBasis {
    /// The aggregated exposure of the group of connected clients after the
    /// decision.
    #[default]
    Exposure,
    /// The unsecured part of it: the exposure minus the collateral's value
    /// after haircuts (a collateral release raises it).
    Unsecured,
}

fn default_reservation_days() -> u32 {
    90
}

impl RuleParameters {
    /// The defaults: EUR 250k / 1m / 5m / board, six months, escalate, no lane.
    pub fn defaults() -> Self {
        let level = |level: u8, name: &str, up_to: Option<i64>| CompetenceLevel {
            level,
            name: name.to_owned(),
            up_to: up_to.map(Decimal::from),
        };
        Self {
            competence_order: CompetenceOrder {
                currency: "EUR".into(),
                levels: vec![
                    level(1, "level-1", Some(250_000)),
                    level(2, "level-2", Some(1_000_000)),
                    level(3, "level-3", Some(5_000_000)),
                    level(4, "board", None),
                ],
            },
            cooling_off_months: 6,
            divergence: DivergencePolicy::Escalate,
            single_vote_below: None,
            reservation_days: default_reservation_days(),
            collateral: crate::collateral::CollateralParameters::default(),
            competence_basis: CompetenceBasis::Exposure,
            rating: RatingRules::default(),
            credit_file: crate::credit_file::CreditFileParameters::default(),
            monitoring: crate::monitoring::MonitoringParameters::default(),
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        self.competence_order.validate()?;
        self.collateral.validate()?;
        self.rating.validate()?;
        self.credit_file.validate()?;
        self.monitoring.validate()?;
        if self.cooling_off_months > 120 {
            return Err(DomainError::Invalid(
                "cooling_off_months must be between 0 and 120".into(),
            ));
        }
        if !(1..=366).contains(&self.reservation_days) {
            return Err(DomainError::Invalid(
                "reservation_days must be between 1 and 366".into(),
            ));
        }
        if let Some(threshold) = self.single_vote_below {
            // The lane is for non-risk-relevant business only: never above
            // what the lowest competence level may decide.
            let lowest = self
                .competence_order
                .levels
                .first()
                .and_then(|level| level.up_to)
                .unwrap_or(Decimal::ZERO);
            if threshold <= Decimal::ZERO || threshold > lowest {
                return Err(DomainError::Invalid(format!(
                    "single_vote_below must be a positive amount no higher than the lowest \
                     competence limit ({lowest})"
                )));
            }
        }
        Ok(())
    }
}

/// A rule-set version in force from `valid_from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    pub version: i64,
    pub valid_from: Timestamp,
    #[serde(flatten)]
    pub parameters: RuleParameters,
}

impl RuleSet {
    /// Version 1: the defaults, in force since the beginning of time.
    pub fn initial() -> Self {
        Self {
            version: 1,
            valid_from: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            parameters: RuleParameters::defaults(),
        }
    }

    pub fn competence(&self) -> &CompetenceOrder {
        &self.parameters.competence_order
    }

    /// The start of the cooling-off window for a vote at `at` (S5).
    pub fn cooling_off_start(&self, at: Timestamp) -> Timestamp {
        at.checked_sub_months(chrono::Months::new(self.parameters.cooling_off_months))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    }
}

/// The rule set in force at `at`: the latest `valid_from` not after it.
pub fn in_force(sets: &[RuleSet], at: Timestamp) -> Option<&RuleSet> {
    sets.iter()
        .filter(|set| set.valid_from <= at)
        .max_by_key(|set| (set.valid_from, set.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn v4_required_level_follows_the_competence_order() {
        let order = RuleParameters::defaults().competence_order;
        let table = [
            ("0.01", 1),
            ("250000.00", 1),
            ("250000.01", 2),
            ("1000000", 2),
            ("1000000.01", 3),
            ("5000000", 3),
            ("5000000.01", 4),
            ("999999999999", 4),
        ];
        for (exposure, level) in table {
            assert_eq!(
                order.required_level(d(exposure)).expect("level").level,
                level,
                "V4 {exposure}"
            );
        }
        assert!(order.is_board(4));
        assert!(!order.is_board(3));
        assert_eq!(order.next_level(3).map(|l| l.level), Some(4));
        assert_eq!(order.next_level(4), None);
    }

    #[test]
    fn s9_invalid_parameters_are_refused() {
        let mut cases: Vec<(&str, RuleParameters)> = Vec::new();
        let mut p = RuleParameters::defaults();
        p.competence_order.levels.clear();
        cases.push(("no levels", p));
        let mut p = RuleParameters::defaults();
        p.competence_order.levels[3].up_to = Some(d("10000000"));
        cases.push(("bounded top", p));
        let mut p = RuleParameters::defaults();
        p.competence_order.levels[1].up_to = Some(d("100"));
        cases.push(("decreasing", p));
        let mut p = RuleParameters::defaults();
        p.competence_order.levels[1].up_to = None;
        cases.push(("unbounded middle", p));
        let mut p = RuleParameters::defaults();
        p.competence_order.levels[2].level = 7;
        cases.push(("gap", p));
        let mut p = RuleParameters::defaults();
        p.competence_order.currency = "XXY".into();
        cases.push(("currency", p));
        let mut p = RuleParameters::defaults();
        p.cooling_off_months = 1000;
        cases.push(("cooling off", p));
        let mut p = RuleParameters::defaults();
        p.single_vote_below = Some(Decimal::ZERO);
        cases.push(("lane", p));
        for (name, p) in cases {
            assert!(p.validate().is_err(), "{name} must be refused");
        }
        assert!(RuleParameters::defaults().validate().is_ok());
    }

    #[test]
    fn s9_the_version_in_force_is_the_latest_valid_from_not_after_the_action() {
        let t = |s: &str| s.parse::<Timestamp>().expect("time");
        let mut v2 = RuleSet::initial();
        v2.version = 2;
        v2.valid_from = t("2026-06-01T00:00:00Z");
        let sets = vec![RuleSet::initial(), v2];
        assert_eq!(
            in_force(&sets, t("2026-05-31T23:59:59Z")).map(|s| s.version),
            Some(1)
        );
        assert_eq!(
            in_force(&sets, t("2026-06-01T00:00:00Z")).map(|s| s.version),
            Some(2)
        );
        assert_eq!(in_force(&[], t("2026-06-01T00:00:00Z")), None);
    }

    #[test]
    fn s5_cooling_off_window_is_calendar_months() {
        let set = RuleSet::initial();
        let at: Timestamp = "2026-08-31T12:00:00Z".parse().expect("time");
        assert_eq!(
            set.cooling_off_start(at),
            "2026-02-28T12:00:00Z".parse::<Timestamp>().expect("time")
        );
    }

    #[test]
    fn parameters_round_trip_as_json_with_string_amounts() {
        let p = RuleParameters::defaults();
        let json = serde_json::to_value(&p).expect("json");
        assert_eq!(json["competence_order"]["levels"][0]["up_to"], "250000");
        let back: RuleParameters = serde_json::from_value(json).expect("back");
        assert_eq!(back, p);
    }
}
