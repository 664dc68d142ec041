//! Risk classification (L4, MaRisk BTO 1.4): the master scale of rating
//! classes, a borrower's rating as back office sets it (market may only
//! propose), its maximum age for a first vote, and the tightening of the
//! competence order by rating band.

use crate::{BorrowerId, DomainError, RuleId, Side, StaffId, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One class of the master scale: probabilities of default above the
/// previous class's `pd_max` up to and including this one's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingClass {
    pub class: u8,
    /// Highest probability of default of the class, as a fraction (0.0005
    /// is 0.05 %); a decimal string in JSON.
    #[schema(value_type = String)]
    pub pd_max: Decimal,
}

/// Classes from `from_class` to `to_class` need `extra_levels` more
/// competence than the exposure alone asks for (L4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBand {
    pub from_class: u8,
    pub to_class: u8,
    pub extra_levels: u8,
}

/// The rating part of a rule set (L4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRules {
    /// The master scale, classes 1, 2, ... in ascending order of risk.
    pub scale: Vec<RatingClass>,
    /// A first vote needs a rating younger than this many months.
    pub max_age_months: u32,
    /// Bands of classes that need a higher competence level.
    #[serde(default)]
    pub bands: Vec<RatingBand>,
}

impl Default for RatingRules {
    /// 18 classes (the last one default), 12 months, classes 13-18 one
    /// level more.
    fn default() -> Self {
        const PD_MAX: [&str; 18] = [
            "0.0003", "0.0005", "0.0008", "0.0012", "0.0018", "0.0026", "0.0039", "0.0058",
            "0.0087", "0.013", "0.0195", "0.0293", "0.0439", "0.0659", "0.0989", "0.15", "0.30",
            "1",
        ];
        let scale = PD_MAX
            .iter()
            .zip(1u8..)
            .map(|(pd, class)| RatingClass {
                class,
                pd_max: pd.parse().unwrap_or(Decimal::ONE),
            })
            .collect();
        Self {
            scale,
            max_age_months: 12,
            bands: vec![RatingBand {
                from_class: 13,
                to_class: 18,
                extra_levels: 1,
            }],
        }
    }
}

impl RatingRules {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.scale.is_empty() || self.scale.len() > 30 {
            return Err(DomainError::Invalid(
                "the rating scale needs between 1 and 30 classes".into(),
            ));
        }
        let mut previous = Decimal::ZERO;
        for (index, class) in self.scale.iter().enumerate() {
            if usize::from(class.class) != index + 1 {
                return Err(DomainError::Invalid(format!(
                    "rating classes must be numbered 1, 2, ... without gaps; entry {index} has class {}",
                    class.class
                )));
            }
            if class.pd_max <= previous || class.pd_max > Decimal::ONE {
                return Err(DomainError::Invalid(format!(
                    "the probabilities of default of the rating scale must rise strictly up to \
                     at most 1; class {} has {}",
                    class.class, class.pd_max
                )));
            }
            previous = class.pd_max;
        }
        if previous != Decimal::ONE {
            return Err(DomainError::Invalid(
                "the last rating class must reach a probability of default of 1".into(),
            ));
        }
        if !(1..=60).contains(&self.max_age_months) {
            return Err(DomainError::Invalid(
                "the maximum age of a rating must be between 1 and 60 months".into(),
            ));
        }
        let top = self.top_class();
        for band in &self.bands {
            if band.from_class == 0
                || band.from_class > band.to_class
                || band.to_class > top
                || !(1..=3).contains(&band.extra_levels)
            {
                return Err(DomainError::Invalid(format!(
                    "a rating band names classes within 1-{top} in order and 1-3 extra levels; \
                     {}-{} +{} does not",
                    band.from_class, band.to_class, band.extra_levels
                )));
            }
        }
        Ok(())
    }

    pub fn top_class(&self) -> u8 {
        self.scale.last().map_or(0, |c| c.class)
    }

    /// The probability-of-default range of `class`: above the lower bound,
    /// up to and including the upper one.
    pub fn range_of(&self, class: u8) -> Option<(Decimal, Decimal)> {
        let index = usize::from(class).checked_sub(1)?;
        let upper = self.scale.get(index)?.pd_max;
        let lower = match index {
            0 => Decimal::ZERO,
            _ => self.scale.get(index - 1)?.pd_max,
        };
        Some((lower, upper))
    }

    /// L4: the class exists and the probability of default lies in its range.
    pub fn check(&self, class: u8, pd: Decimal) -> Result<(), DomainError> {
        let (lower, upper) = self.range_of(class).ok_or_else(|| {
            DomainError::Invalid(format!(
                "rating class {class} is not on the master scale (1-{})",
                self.top_class()
            ))
        })?;
        let in_range = if class == 1 {
            pd >= lower && pd <= upper
        } else {
            pd > lower && pd <= upper
        };
        if !in_range {
            return Err(DomainError::Invalid(format!(
                "a probability of default of {pd} does not belong to class {class} \
                 (above {lower} up to {upper})"
            )));
        }
        Ok(())
    }

    /// How many competence levels above the exposure's `class` needs (L4).
    pub fn extra_levels(&self, class: u8) -> u8 {
        self.bands
            .iter()
            .filter(|band| (band.from_class..=band.to_class).contains(&class))
            .map(|band| band.extra_levels)
            .max()
            .unwrap_or(0)
    }

    /// The oldest rating date a first vote at `at` accepts (L4).
    pub fn oldest_accepted(&self, at: Timestamp) -> Timestamp {
        at.checked_sub_months(chrono::Months::new(self.max_age_months))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    }
}

/// Whether a rating is in force (set by back office) or only proposed by
/// market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RatingStatus {
    /// Set by back office: the borrower's rating from now on.
    Set,
    /// Proposed by market: informs back office, decides nothing.
    Proposed,
}

impl RatingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RatingStatus::Set => "set",
            RatingStatus::Proposed => "proposed",
        }
    }
}

impl std::str::FromStr for RatingStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "set" => Ok(RatingStatus::Set),
            "proposed" => Ok(RatingStatus::Proposed),
            other => Err(format!("unknown rating status {other:?}")),
        }
    }
}

/// A borrower's rating, set or proposed, dated (L4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rating {
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    pub class: u8,
    /// Probability of default, a fraction as a decimal string.
    #[schema(value_type = String)]
    pub pd: Decimal,
    pub method: String,
    pub reason: String,
    pub status: RatingStatus,
    #[schema(value_type = String)]
    pub rated_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub rated_at: Timestamp,
    /// The rule set whose master scale the class belongs to.
    pub rules_version: i64,
}

/// What a rating request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingInput {
    pub class: u8,
    pub pd: Decimal,
    pub method: String,
    pub reason: String,
}

impl Rating {
    /// L4: back office sets a rating; market may only propose one. The class
    /// and probability of default are checked against the master scale.
    pub fn new(
        borrower_id: BorrowerId,
        input: &RatingInput,
        status: RatingStatus,
        actor: (&StaffId, Option<Side>),
        rules: &RatingRules,
        rules_version: i64,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        let (who, side) = actor;
        let required = match status {
            RatingStatus::Set => Side::Backoffice,
            RatingStatus::Proposed => Side::Market,
        };
        if side != Some(required) {
            return Err(DomainError::rule(
                RuleId::L4,
                match status {
                    RatingStatus::Set => format!(
                        "only back office sets a rating (BTO 1.4); {who} may propose one from market"
                    ),
                    RatingStatus::Proposed => {
                        format!("a rating proposal comes from market; {who} is not a market member")
                    }
                },
            ));
        }
        rules.check(input.class, input.pd)?;
        let method = crate::text::required_text("method", &input.method, 100)?;
        let reason = crate::text::required_text("reason", &input.reason, crate::text::MAX_TEXT)?;
        Ok(Self {
            borrower_id,
            class: input.class,
            pd: input.pd,
            method,
            reason,
            status,
            rated_by: who.clone(),
            rated_at: now,
            rules_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn l4_the_default_master_scale_has_18_valid_classes() {
        let rules = RatingRules::default();
        assert_eq!(rules.top_class(), 18);
        assert!(rules.validate().is_ok());
    }

    #[test]
    fn l4_class_and_pd_must_match_the_master_scale() {
        let rules = RatingRules::default();
        let table = [
            (1, "0", true),
            (1, "0.0003", true),
            (1, "0.00031", false),
            (2, "0.0003", false),
            (2, "0.0004", true),
            (18, "1", true),
            (18, "0.30", false),
            (19, "0.5", false),
            (0, "0.0001", false),
            (5, "-0.001", false),
        ];
        for (class, pd, ok) in table {
            assert_eq!(
                rules.check(class, d(pd)).is_ok(),
                ok,
                "L4 class {class} pd {pd}"
            );
        }
    }

    #[test]
    fn l4_bands_tighten_the_competence_order() {
        let rules = RatingRules::default();
        for (class, extra) in [(1, 0), (12, 0), (13, 1), (18, 1)] {
            assert_eq!(rules.extra_levels(class), extra, "L4 class {class}");
        }
    }

    #[test]
    fn l4_invalid_rating_rules_are_refused() {
        let mut cases = Vec::new();
        let mut r = RatingRules::default();
        r.scale.clear();
        cases.push(("empty", r));
        let mut r = RatingRules::default();
        r.scale[3].pd_max = d("0.0001");
        cases.push(("not rising", r));
        let mut r = RatingRules::default();
        r.scale[17].pd_max = d("0.9");
        cases.push(("no default class", r));
        let r = RatingRules {
            max_age_months: 0,
            ..RatingRules::default()
        };
        cases.push(("age", r));
        let mut r = RatingRules::default();
        r.bands[0].to_class = 19;
        cases.push(("band", r));
        for (name, rules) in cases {
            assert!(rules.validate().is_err(), "{name} must be refused");
        }
    }

    #[test]
    fn l4_only_back_office_sets_and_only_market_proposes() {
        let rules = RatingRules::default();
        let input = RatingInput {
            class: 5,
            pd: d("0.0015"),
            method: "corporate scorecard".into(),
            reason: "annual accounts 2025".into(),
        };
        let who = StaffId::parse("x-1").unwrap();
        let now = chrono::Utc::now();
        let borrower = BorrowerId::generate();
        let attempt = |status, side| {
            Rating::new(borrower, &input, status, (&who, side), &rules, 1, now)
                .map_err(|e| e.rule_id())
        };
        assert!(attempt(RatingStatus::Set, Some(Side::Backoffice)).is_ok());
        assert_eq!(
            attempt(RatingStatus::Set, Some(Side::Market)),
            Err(Some(RuleId::L4))
        );
        assert_eq!(attempt(RatingStatus::Set, None), Err(Some(RuleId::L4)));
        assert!(attempt(RatingStatus::Proposed, Some(Side::Market)).is_ok());
        assert_eq!(
            attempt(RatingStatus::Proposed, Some(Side::Backoffice)),
            Err(Some(RuleId::L4))
        );
    }
}
