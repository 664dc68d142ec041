//! The relational facts a vote is checked against, loaded by the service
//! (rule set in force, aggregated group exposure, relationship managers,
//! related parties, the risk verdict), and the aggregation of the exposure
//! for the competence check (V4).

use crate::monitoring::Stage;
use crate::rating::Rating;
use crate::rules::{CompetenceBasis, RuleSet};
use crate::verdict::RiskVerdict;
use crate::{DomainError, Money, RuleId, StaffId};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

/// The facts outside the case that a vote is checked against, loaded by the
/// service in the voting transaction, evaluated at vote time (S4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteFacts {
    /// The rule set in force at vote time (S9).
    pub rules: RuleSet,
    /// Aggregated exposure of the borrower's group of connected clients
    /// including this request, in the competence order's currency (V4).
    pub aggregated_exposure: Decimal,
    /// The group the borrower belongs to at vote time, if any.
    pub group_id: Option<String>,
    /// Relationship managers of the borrower and of every group member (S6).
    pub relationship_managers: BTreeSet<StaffId>,
    /// Staff recorded as related to the borrower or a group member (S6, V11).
    pub related_parties: BTreeSet<StaffId>,
    /// Staff who proposed or approved a change of the group membership of
    /// the borrower or of its group while the case was open: they moved the
    /// exposure the competence level depends on (S6, hardening finding 2).
    pub group_changers: BTreeSet<StaffId>,
    /// Hash over the casbin policies in force (V9).
    pub policy_hash: String,
    /// The risk gate's verdict on approving this case now (R4). `None` when
    /// it was not evaluated: an approval is then refused (fail closed).
    pub risk: Option<RiskVerdict>,
    /// The borrower's rating set by back office, if any (L4).
    pub rating: Option<Rating>,
    /// The value after haircuts of the collateral securing the group's
    /// exposure after the decision (L1, L3): what the unsecured part nets.
    pub secured_value: Decimal,
    /// The borrower's stage of care at vote time (L8, L9).
    pub stage: Stage,
    /// Staff who moved the borrower's stage while the case was open: they
    /// moved what the back-office vote's competence level depends on (S6,
    /// L9).
    pub stage_changers: BTreeSet<StaffId>,
}

impl VoteFacts {
    /// Facts with no group, no relationship managers and no related parties.
    pub fn plain(rules: RuleSet, aggregated_exposure: Decimal, policy_hash: &str) -> Self {
        Self {
            rules,
            aggregated_exposure,
            group_id: None,
            relationship_managers: BTreeSet::new(),
            related_parties: BTreeSet::new(),
            group_changers: BTreeSet::new(),
            policy_hash: policy_hash.to_owned(),
            risk: None,
            rating: None,
            secured_value: Decimal::ZERO,
            stage: Stage::Normal,
            stage_changers: BTreeSet::new(),
        }
    }

    /// The same facts with the borrower's rating.
    pub fn with_rating(mut self, rating: Rating) -> Self {
        self.rating = Some(rating);
        self
    }

    /// The amount the competence order is applied to (L1): the aggregated
    /// exposure or, where the rule set says so, its unsecured part.
    pub fn competence_amount(&self) -> Decimal {
        match self.rules.parameters.competence_basis {
            CompetenceBasis::Exposure => self.aggregated_exposure,
            CompetenceBasis::Unsecured => {
                (self.aggregated_exposure - self.secured_value).max(Decimal::ZERO)
            }
        }
    }

    /// L9: the level the back-office vote needs when the case needs
    /// `required`: for a borrower in restructuring or workout one level
    /// more (the board stays the board); otherwise `required`.
    pub fn back_office_level(&self, required: u8) -> u8 {
        if !self.stage.is_problem_loan() {
            return required;
        }
        let order = self.rules.competence();
        order
            .next_level(required)
            .map_or(required, |level| level.level)
    }

    /// The same facts with the risk gate's verdict.
    pub fn with_risk(mut self, verdict: RiskVerdict) -> Self {
        self.risk = Some(verdict);
        self
    }

    /// The level the case needs: from the aggregated exposure or its
    /// unsecured part (V4, L1), raised by the rating band (L4, never above
    /// the board), never below the level an escalation raised it to (V5).
    pub fn required_level(&self, escalation_level: Option<u8>) -> Result<u8, DomainError> {
        let order = self.rules.competence();
        let by_amount = order.required_level(self.competence_amount())?.level;
        let extra = self.rating.as_ref().map_or(0, |rating| {
            self.rules.parameters.rating.extra_levels(rating.class)
        });
        let top = order.levels.last().map_or(by_amount, |level| level.level);
        let by_rating = by_amount.saturating_add(extra).min(top);
        Ok(by_rating.max(escalation_level.unwrap_or(0)))
    }
}

/// Aggregated exposure for the competence check (V4): the approved credit of
/// every member of the borrower's group plus this request, in the competence
/// order's currency. Fails closed when an amount is in another currency: no
/// exchange rates are configured, so such a sum cannot be evaluated.
pub fn aggregated_exposure(
    approved: &[Money],
    request: &Money,
    currency: &str,
) -> Result<Decimal, DomainError> {
    let mut total = Decimal::ZERO;
    for amount in approved.iter().chain(std::iter::once(request)) {
        if amount.currency_code() != currency {
            return Err(DomainError::rule(
                RuleId::V4,
                format!(
                    "the competence order is kept in {currency}; an exposure in {} cannot be \
                     aggregated without an exchange rate",
                    amount.currency_code()
                ),
            ));
        }
        total = total.checked_add(amount.amount()).ok_or_else(|| {
            DomainError::rule(
                RuleId::V4,
                "the aggregated exposure is too large to evaluate",
            )
        })?;
    }
    Ok(total)
}
