//! The credit after it is granted (L6-L10), as pure rules: when a borrower's
//! review falls due, the early-warning catalogue and its evaluation, the
//! stages of intensive care and problem loans, and the four eyes on a
//! loan-loss provision.
//!
//! The catalogue, the review intervals, the transfer criteria and the board
//! threshold of provisions are part of the rule set: owned outside market,
//! versioned, and changed four-eyes (S9) like every other rule parameter.

use crate::four_eyes::{Proposed, Verdict, require_decidable};
use crate::staff::Side;
use crate::{DomainError, RuleId, StaffId, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One indicator of the early-warning catalogue (L7) with its threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "indicator", rename_all = "snake_case", deny_unknown_fields)]
pub enum Indicator {
    /// An imported balance at least this many days past due.
    DaysPastDue { at_least: u32 },
    /// A limit overdrawn for at least this many days (imported).
    OverdrawnDays { at_least: u32 },
    /// The rating set by back office worsened by at least this many classes
    /// against the one before it.
    RatingDowngrade { classes: u8 },
    /// A collateral item's effective value fell by at least this percentage
    /// against its previous effective valuation.
    CollateralValueDrop {
        #[schema(value_type = String)]
        percent: Decimal,
    },
    /// Back office recorded a breached covenant that is not cleared.
    CovenantBreach,
    /// A staff member raised negative information that is not cleared.
    NegativeInformation,
}

impl Indicator {
    /// The indicator's name, as the watch list shows it.
    pub fn code(&self) -> &'static str {
        match self {
            Indicator::DaysPastDue { .. } => "days_past_due",
            Indicator::OverdrawnDays { .. } => "overdrawn_days",
            Indicator::RatingDowngrade { .. } => "rating_downgrade",
            Indicator::CollateralValueDrop { .. } => "collateral_value_drop",
            Indicator::CovenantBreach => "covenant_breach",
            Indicator::NegativeInformation => "negative_information",
        }
    }

    fn validate(&self) -> Result<(), DomainError> {
        let fine = match self {
            Indicator::DaysPastDue { at_least } | Indicator::OverdrawnDays { at_least } => {
                (1..=3650).contains(at_least)
            }
            Indicator::RatingDowngrade { classes } => (1..=29).contains(classes),
            Indicator::CollateralValueDrop { percent } => {
                *percent > Decimal::ZERO && *percent <= Decimal::ONE_HUNDRED
            }
            Indicator::CovenantBreach | Indicator::NegativeInformation => true,
        };
        if fine {
            Ok(())
        } else {
            Err(DomainError::Invalid(format!(
                "the early-warning indicator {} has a threshold out of range",
                self.code()
            )))
        }
    }
}

/// The monitoring parameters of a rule set (L6-L10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringParameters {
    /// L6: borrowers whose aggregated exposure is above this amount (in the
    /// competence order's currency) are reviewed on a schedule.
    #[schema(value_type = String, example = "750000")]
    pub review_above: Decimal,
    /// L6: months between regular reviews.
    pub review_months: u32,
    /// L8: months between reviews of a borrower in intensive care,
    /// restructuring or workout.
    pub intensive_review_months: u32,
    /// L6: days back office has for an ad-hoc review that negative
    /// information opened (it is opened at once, due this many days later).
    #[serde(default = "default_ad_hoc_review_days")]
    pub ad_hoc_review_days: u32,
    /// L6: a review renews the rating: the rating in force must be at most
    /// this many days old when the review is completed.
    #[serde(default = "default_review_rating_days")]
    pub review_rating_days: u32,
    /// L7: the early-warning catalogue.
    pub early_warning: Vec<Indicator>,
    /// L8: the indicators whose hit is a criterion for a transfer into
    /// intensive care; back office decides the transfer.
    pub intensive_care_criteria: Vec<String>,
    /// L10: a provision above this amount is reported to the board at once.
    #[schema(value_type = String, example = "500000")]
    pub provision_board_above: Decimal,
}

fn default_ad_hoc_review_days() -> u32 {
    14
}

fn default_review_rating_days() -> u32 {
    92
}

impl Default for MonitoringParameters {
    fn default() -> Self {
        Self {
            review_above: Decimal::from(750_000),
            review_months: 12,
            intensive_review_months: 3,
            ad_hoc_review_days: default_ad_hoc_review_days(),
            review_rating_days: default_review_rating_days(),
            early_warning: vec![
                Indicator::DaysPastDue { at_least: 90 },
                Indicator::OverdrawnDays { at_least: 60 },
                Indicator::RatingDowngrade { classes: 2 },
                Indicator::CollateralValueDrop {
                    percent: Decimal::from(20),
                },
                Indicator::CovenantBreach,
                Indicator::NegativeInformation,
            ],
            intensive_care_criteria: vec![
                "days_past_due".into(),
                "overdrawn_days".into(),
                "rating_downgrade".into(),
                "covenant_breach".into(),
            ],
            provision_board_above: Decimal::from(500_000),
        }
    }
}

impl MonitoringParameters {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.review_above < Decimal::ZERO || self.provision_board_above < Decimal::ZERO {
            return Err(DomainError::Invalid(
                "review_above and provision_board_above must not be negative".into(),
            ));
        }
        if !(1..=24).contains(&self.review_months)
            || !(1..=self.review_months).contains(&self.intensive_review_months)
        {
            return Err(DomainError::Invalid(
                "review_months must be 1-24 and intensive_review_months 1 up to review_months"
                    .into(),
            ));
        }
        if !(1..=90).contains(&self.ad_hoc_review_days) {
            return Err(DomainError::Invalid(
                "ad_hoc_review_days must be between 1 and 90".into(),
            ));
        }
        if !(1..=366).contains(&self.review_rating_days) {
            return Err(DomainError::Invalid(
                "review_rating_days must be between 1 and 366".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for indicator in &self.early_warning {
            indicator.validate()?;
            if !seen.insert(indicator.code()) {
                return Err(DomainError::Invalid(format!(
                    "the early-warning catalogue names {} twice",
                    indicator.code()
                )));
            }
        }
        if let Some(unknown) = self
            .intensive_care_criteria
            .iter()
            .find(|code| !seen.contains(code.as_str()))
        {
            return Err(DomainError::Invalid(format!(
                "the intensive-care criterion {unknown:?} is not an indicator of the catalogue"
            )));
        }
        Ok(())
    }

    /// L6, L8: months from one review to the next in `stage`.
    pub fn review_interval(&self, stage: Stage) -> u32 {
        if stage == Stage::Normal {
            self.review_months
        } else {
            self.intensive_review_months
        }
    }

    /// L6: whether a borrower with this aggregated exposure is reviewed on a
    /// schedule (every borrower outside `normal` is).
    pub fn needs_regular_review(&self, exposure: Decimal, stage: Stage) -> bool {
        exposure > self.review_above || stage != Stage::Normal
    }

    /// L10: whether a provision of `amount` is reported to the board.
    pub fn board_alert(&self, amount: Decimal) -> bool {
        amount > self.provision_board_above
    }
}

/// The due date of the next regular review after `since` (the last
/// completed review, else the time the schedule started) (L6, L8).
pub fn next_review_due(since: Timestamp, months: u32) -> Timestamp {
    since
        .checked_add_months(chrono::Months::new(months))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// What the inputs of one borrower say, as the watcher and every relevant
/// change load them (L7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// The largest days past due of the borrower's imported balances.
    pub days_past_due: Option<u32>,
    /// The largest number of days a limit of the borrower is overdrawn.
    pub overdrawn_days: Option<u32>,
    /// The class of the rating set before the current one, and the current.
    pub rating_change: Option<(u8, u8)>,
    /// The largest fall of a collateral item's effective value, in percent.
    pub collateral_drop_percent: Option<Decimal>,
    pub covenant_breach: bool,
    pub negative_information: bool,
}

/// An indicator of the catalogue that a borrower's signals meet (L7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hit {
    /// The indicator's code (`days_past_due`, ...).
    pub indicator: String,
    /// The value that met it, as text (`91`, `4 -> 7`, `25.0`, `raised`).
    pub value: String,
}

/// The indicators of `catalogue` that `signals` meet, in catalogue order.
pub fn evaluate(catalogue: &[Indicator], signals: &Signals) -> Vec<Hit> {
    let hit = |indicator: &Indicator, value: String| Hit {
        indicator: indicator.code().to_owned(),
        value,
    };
    catalogue
        .iter()
        .filter_map(|indicator| match indicator {
            Indicator::DaysPastDue { at_least } => signals
                .days_past_due
                .filter(|days| days >= at_least)
                .map(|days| hit(indicator, days.to_string())),
            Indicator::OverdrawnDays { at_least } => signals
                .overdrawn_days
                .filter(|days| days >= at_least)
                .map(|days| hit(indicator, days.to_string())),
            Indicator::RatingDowngrade { classes } => signals
                .rating_change
                .filter(|(before, now)| now.saturating_sub(*before) >= *classes)
                .map(|(before, now)| hit(indicator, format!("{before} -> {now}"))),
            Indicator::CollateralValueDrop { percent } => signals
                .collateral_drop_percent
                .filter(|drop| drop >= percent)
                .map(|drop| hit(indicator, drop.round_dp(2).to_string())),
            Indicator::CovenantBreach => signals
                .covenant_breach
                .then(|| hit(indicator, "recorded".into())),
            Indicator::NegativeInformation => signals
                .negative_information
                .then(|| hit(indicator, "raised".into())),
        })
        .collect()
}

/// The fall from `before` to `now` in percent (0 when it rose), or `None`
/// when there was nothing before.
pub fn drop_percent(before: Decimal, now: Decimal) -> Option<Decimal> {
    if before <= Decimal::ZERO {
        return None;
    }
    let fall = (before - now).max(Decimal::ZERO);
    fall.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(before)
}

/// A borrower's stage of care (L8, L9).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Normal,
    IntensiveCare,
    Restructuring,
    Workout,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Normal,
        Stage::IntensiveCare,
        Stage::Restructuring,
        Stage::Workout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Normal => "normal",
            Stage::IntensiveCare => "intensive_care",
            Stage::Restructuring => "restructuring",
            Stage::Workout => "workout",
        }
    }

    /// L9: restructuring and workout are problem loans; their credit
    /// decisions need the back-office vote one competence level up.
    pub fn is_problem_loan(self) -> bool {
        matches!(self, Stage::Restructuring | Stage::Workout)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown stage {s:?}"))
    }
}

/// A milestone of a restructuring or workout plan (L9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    pub title: String,
    pub due_on: chrono::NaiveDate,
    #[serde(default)]
    pub status: MilestoneStatus,
}

/// Where a milestone stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    #[default]
    Open,
    Met,
    Missed,
}

impl MilestoneStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MilestoneStatus::Open => "open",
            MilestoneStatus::Met => "met",
            MilestoneStatus::Missed => "missed",
        }
    }
}

impl std::str::FromStr for MilestoneStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(MilestoneStatus::Open),
            "met" => Ok(MilestoneStatus::Met),
            "missed" => Ok(MilestoneStatus::Missed),
            other => Err(format!("unknown milestone status {other:?}")),
        }
    }
}

/// Most milestones one plan holds.
pub const MAX_MILESTONES: usize = 50;

/// L8, L9: back office (and only back office) moves a borrower between
/// stages, with a reason; into restructuring or workout with a plan of
/// milestones (a restructuring plan, or the workout's steps).
pub fn check_transfer(
    side: Option<Side>,
    (from, to): (Stage, Stage),
    reason: &str,
    plan: &[Milestone],
    today: chrono::NaiveDate,
) -> Result<(), DomainError> {
    let rule = if to.is_problem_loan() || from.is_problem_loan() {
        RuleId::L9
    } else {
        RuleId::L8
    };
    if side != Some(Side::Backoffice) {
        return Err(DomainError::rule(
            rule,
            "only back office decides a borrower's stage; market may read it",
        ));
    }
    if from == to {
        return Err(DomainError::Invalid(format!(
            "the borrower is in {to} already"
        )));
    }
    crate::text::required_text("reason", reason, 4000)?;
    if to.is_problem_loan() && plan.is_empty() {
        return Err(DomainError::rule(
            RuleId::L9,
            format!("a transfer into {to} needs a plan with at least one milestone"),
        ));
    }
    if !to.is_problem_loan() && !plan.is_empty() {
        return Err(DomainError::Invalid(format!(
            "a plan belongs to restructuring or workout, not to {to}"
        )));
    }
    if plan.len() > MAX_MILESTONES {
        return Err(DomainError::Invalid(format!(
            "a plan holds at most {MAX_MILESTONES} milestones"
        )));
    }
    for milestone in plan {
        crate::text::required_text("milestone title", &milestone.title, 500)?;
        if milestone.status != MilestoneStatus::Open {
            return Err(DomainError::Invalid(
                "a new plan's milestones are open".into(),
            ));
        }
        if milestone.due_on < today {
            return Err(DomainError::Invalid(format!(
                "the milestone {:?} is due on {}, which has passed",
                milestone.title.trim(),
                milestone.due_on
            )));
        }
    }
    Ok(())
}

/// Where a provision stands (L10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionStatus {
    Proposed,
    Approved,
    Rejected,
}

impl ProvisionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionStatus::Proposed => "proposed",
            ProvisionStatus::Approved => "approved",
            ProvisionStatus::Rejected => "rejected",
        }
    }
}

impl std::str::FromStr for ProvisionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "proposed" => Ok(ProvisionStatus::Proposed),
            "approved" => Ok(ProvisionStatus::Approved),
            "rejected" => Ok(ProvisionStatus::Rejected),
            other => Err(format!("unknown provision status {other:?}")),
        }
    }
}

/// A loan-loss provision for a borrower or one of its credits (L10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub id: crate::ProvisionId,
    pub borrower_id: crate::BorrowerId,
    pub credit_id: Option<crate::CreditId>,
    pub amount: crate::Money,
    pub reason: String,
    pub method: String,
    pub status: ProvisionStatus,
    pub proposed_by: StaffId,
    pub proposed_at: Timestamp,
    pub decided_by: Option<StaffId>,
    pub decided_at: Option<Timestamp>,
    /// Above the rule set's threshold: reported to the board at once.
    pub board_alert: bool,
}

impl Proposed for Provision {
    fn proposer(&self) -> &StaffId {
        &self.proposed_by
    }
    fn decided_as(&self) -> Option<&'static str> {
        (self.status != ProvisionStatus::Proposed).then(|| self.status.as_str())
    }
}

/// L10: only back office proposes a provision, with a positive amount, a
/// reason and a method.
pub fn check_provision_proposal(
    side: Option<Side>,
    amount: Decimal,
    reason: &str,
    method: &str,
) -> Result<(), DomainError> {
    if side != Some(Side::Backoffice) {
        return Err(DomainError::rule(
            RuleId::L10,
            "only back office proposes a loan-loss provision",
        ));
    }
    if amount <= Decimal::ZERO {
        return Err(DomainError::Invalid(
            "a provision's amount must be positive".into(),
        ));
    }
    crate::text::required_text("reason", reason, 4000)?;
    crate::text::required_text("method", method, 100)?;
    Ok(())
}

/// L10: a second person of back office approves or rejects a proposed
/// provision; the proposer never decides their own.
pub fn decide_provision(
    provision: &Provision,
    side: Option<Side>,
    decider: &StaffId,
    verdict: Verdict,
    now: Timestamp,
) -> Result<Provision, DomainError> {
    if side != Some(Side::Backoffice) {
        return Err(DomainError::rule(
            RuleId::L10,
            "only back office decides a loan-loss provision",
        ));
    }
    require_decidable(
        provision,
        "provision",
        decider,
        RuleId::L10,
        "a provision needs a second person: its proposer may not decide it",
    )?;
    Ok(Provision {
        status: match verdict {
            Verdict::Approve => ProvisionStatus::Approved,
            Verdict::Reject => ProvisionStatus::Rejected,
        },
        decided_by: Some(decider.clone()),
        decided_at: Some(now),
        ..provision.clone()
    })
}

#[cfg(test)]
mod tests;
