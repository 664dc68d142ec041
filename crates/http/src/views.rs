//! JSON views shared by the services: cases (market, back office and the
//! audit service's reads), limits, change proposals and rule sets (admin
//! and audit). Amounts are decimal strings; timestamps RFC 3339
//! UTC. Each view is the type that is serialized, so its schema in the
//! OpenAPI document is exactly what is sent.

use chrono::{DateTime, Utc};
use creditops_domain::proposal::{
    Change, ChangeProposal, InputChange, ProposalKind, ProposalStatus,
};
use creditops_domain::rules::{CompetenceOrder, DivergencePolicy};
use creditops_domain::{
    BoardResolution, BorrowerId, CaseId, CaseKind, CaseStatus, Condition, CreditBase, CreditCase,
    CreditId, CreditVersion, Decision, DecisionFlag, DecisionOutcome, NewCondition, Rating,
    RiskVerdict, RuleCheck, Side, StaffId, UnitId, Vote, VoteDecision, VoteStage,
};
use creditops_domain::{CompetenceBasis, RatingRules, RuleParameters, RuleSet};
use creditops_risk::{Breach, LimitVersion};
use creditops_store::CaseSummary;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A vote as shown with its case (V9, V10).
#[derive(Debug, Serialize, ToSchema)]
pub struct VoteView {
    pub stage: VoteStage,
    pub voter: StaffId,
    /// The voter's unit at vote time.
    pub unit: UnitId,
    pub side: Side,
    pub competence_level: u8,
    /// The level the case required when the vote was cast (V4).
    pub required_level: u8,
    pub round: u32,
    pub decision: VoteDecision,
    pub rationale: String,
    pub file_version: i64,
    pub content_hash: String,
    pub cast_at: DateTime<Utc>,
    /// The file changed after this vote (V3).
    pub void: bool,
    pub checks: Vec<RuleCheck>,
}

impl VoteView {
    pub fn new(vote: &Vote, current_version: i64) -> Self {
        Self {
            stage: vote.stage,
            voter: vote.voter.staff_id.clone(),
            unit: vote.voter.unit_id.clone(),
            side: vote.voter.side,
            competence_level: vote.voter.competence_level,
            required_level: vote.required_level,
            round: vote.round,
            decision: vote.decision,
            rationale: vote.rationale.clone(),
            file_version: vote.file_version,
            content_hash: vote.content_hash.clone(),
            cast_at: vote.cast_at,
            void: vote.file_version != current_version,
            checks: vote.checks.clone(),
        }
    }
}

/// The decision record (V9).
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    pub outcome: DecisionOutcome,
    pub decided_at: DateTime<Utc>,
    pub file_version: i64,
    pub content_hash: String,
    pub level: u8,
    pub level_name: String,
    pub rules_version: i64,
    pub policy_hash: String,
    /// The risk gate's verdict (R4); none for declines.
    pub risk: Option<RiskVerdict>,
    /// Decimal string.
    pub aggregated_exposure: Option<String>,
    pub flags: Vec<DecisionFlag>,
    pub votes: Vec<VoteView>,
    pub checks: Vec<RuleCheck>,
    /// What was decided (L1).
    pub kind: CaseKind,
    /// The credit before the change (every kind but `new`).
    pub credit_before: Option<CreditBase>,
    /// The credit version an approval produced (L1).
    pub credit_after: Option<CreditVersion>,
    /// The rating the decision was taken with (L4).
    pub rating: Option<Rating>,
}

impl DecisionView {
    pub fn new(decision: &Decision) -> Self {
        Self {
            outcome: decision.outcome,
            decided_at: decision.decided_at,
            file_version: decision.file_version,
            content_hash: decision.content_hash.clone(),
            level: decision.level,
            level_name: decision.level_name.clone(),
            rules_version: decision.rules_version,
            policy_hash: decision.policy_hash.clone(),
            risk: decision.risk.clone(),
            aggregated_exposure: decision.aggregated_exposure.map(|e| e.to_string()),
            flags: decision.flags.clone(),
            votes: decision
                .votes
                .iter()
                .map(|v| VoteView::new(v, decision.file_version))
                .collect(),
            checks: decision.checks.clone(),
            kind: decision.kind,
            credit_before: decision.credit_before.clone(),
            credit_after: decision.credit_after,
            rating: decision.rating.clone(),
        }
    }
}

/// A credit case with its file, votes and decision record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: CaseId,
    pub borrower_id: BorrowerId,
    /// Decimal string in the currency's scale.
    #[schema(example = "250000.00")]
    pub amount: String,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
    pub status: CaseStatus,
    /// The file version; every edit increments it and voids earlier votes (V3).
    pub version: i64,
    pub content_hash: String,
    pub originator: StaffId,
    pub editors: Vec<StaffId>,
    pub round: u32,
    pub escalation_level: Option<u8>,
    pub related_party: bool,
    pub board_resolution: Option<BoardResolution>,
    pub return_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub votes: Vec<VoteView>,
    pub decision: Option<DecisionView>,
    /// What the decision decides (L1).
    pub kind: CaseKind,
    /// The approved credit the case changes (every kind but `new`).
    pub credit_id: Option<CreditId>,
    /// The credit as the case was opened on it: version, amount and term.
    pub credit: Option<CreditBase>,
    /// The conditions precedent of the approval with their sign-offs (L5).
    pub conditions: Vec<Condition>,
}

impl CaseView {
    pub fn new(case: &CreditCase) -> Self {
        Self {
            id: case.id,
            borrower_id: case.file.borrower_id,
            amount: case.file.amount.amount().to_string(),
            currency: case.file.amount.currency_code().to_owned(),
            product: case.file.product.clone(),
            term_months: case.file.term_months,
            purpose: case.file.purpose.clone(),
            status: case.status,
            version: case.version,
            content_hash: case.content_hash(),
            originator: case.originator.clone(),
            editors: case.editors.iter().cloned().collect(),
            round: case.round,
            escalation_level: case.escalation_level,
            related_party: case.related_party,
            board_resolution: case.board_resolution.clone(),
            return_reason: case.return_reason.clone(),
            created_at: case.created_at,
            updated_at: case.updated_at,
            votes: case
                .votes
                .iter()
                .map(|v| VoteView::new(v, case.version))
                .collect(),
            decision: case.decision.as_ref().map(DecisionView::new),
            kind: case.file.kind,
            credit_id: case.file.base.as_ref().map(|base| base.credit_id),
            credit: case.file.base.clone(),
            conditions: case.conditions.clone(),
        }
    }
}

/// The JSON of [`CaseView`].
pub fn case_json(case: &CreditCase) -> Value {
    serde_json::to_value(CaseView::new(case)).unwrap_or(Value::Null)
}

/// One line of a case list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseSummaryView {
    pub id: CaseId,
    pub borrower_id: BorrowerId,
    /// Decimal string.
    pub amount: String,
    pub currency: String,
    pub status: CaseStatus,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl CaseSummaryView {
    pub fn new(summary: &CaseSummary) -> Self {
        Self {
            id: summary.id,
            borrower_id: summary.borrower_id,
            amount: summary.amount.amount().to_string(),
            currency: summary.amount.currency_code().to_owned(),
            status: summary.status,
            version: summary.version,
            updated_at: summary.updated_at,
        }
    }
}

/// A vote: decision, rationale and the file version it is cast on (V3).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    pub decision: VoteDecision,
    /// Why; recorded with the vote (V9).
    #[schema(
        example = "cash flow covers debt service",
        min_length = 1,
        max_length = 4000
    )]
    pub rationale: String,
    /// The file version the vote is cast on; a stale one is refused (409).
    #[schema(example = 1)]
    pub version: i64,
    /// Conditions precedent of the approval (L5): only an approving second
    /// vote that decides the case carries them; disbursement waits until
    /// back office signed off every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionRequest>,
}

/// A condition precedent as the second vote attaches it (L5).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionRequest {
    #[schema(example = "land charge registered", min_length = 1, max_length = 4000)]
    pub text: String,
    /// The date by which it should be met (not before today).
    #[serde(default)]
    pub due: Option<chrono::NaiveDate>,
}

impl ConditionRequest {
    pub fn condition(&self) -> NewCondition {
        NewCondition {
            text: self.text.clone(),
            due: self.due,
        }
    }
}

/// One page of limit versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitVersions {
    pub items: Vec<LimitVersion>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<uuid::Uuid>,
}

/// The page sizes of a limit-version list.
pub const LIMIT_VERSION_PAGE: crate::paging::PageSize = crate::paging::PageSize {
    default: 100,
    max: 1000,
};

/// What deciding a limit version answers: the version and the breaches its
/// approval caused (R7).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitDecision {
    #[serde(flatten)]
    pub limit: LimitVersion,
    pub breaches: Vec<Breach>,
}

/// What a proposal proposes, as documented: a change of the directory or
/// the rules, or of an input a credit decision depends on. Only a schema:
/// the view carries the stored JSON as it is.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a schema only: never constructed
pub enum ProposedChange {
    Directory(Change),
    Input(InputChange),
}

/// A change proposal and its decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalView {
    pub id: Uuid,
    pub kind: ProposalKind,
    /// The change as proposed.
    #[schema(value_type = ProposedChange)]
    pub change: Value,
    pub status: ProposalStatus,
    pub proposed_by: StaffId,
    pub proposed_at: DateTime<Utc>,
    pub decided_by: Option<StaffId>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl ProposalView {
    pub fn new(p: &ChangeProposal) -> Self {
        Self {
            id: p.id,
            kind: p.kind,
            change: p.payload.clone(),
            status: p.status,
            proposed_by: p.proposed_by.clone(),
            proposed_at: p.proposed_at,
            decided_by: p.decided_by.clone(),
            decided_at: p.decided_at,
        }
    }
}

/// A rule-set version in force from `valid_from`, its parameters inline.
/// (Spelled out rather than flattened: the parameters' schema is closed,
/// `additionalProperties: false`, which an `allOf` with the version fields
/// could never satisfy.)
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetView {
    pub version: i64,
    pub valid_from: DateTime<Utc>,
    pub competence_order: CompetenceOrder,
    /// S5: months after leaving a market unit before a back-office vote.
    pub cooling_off_months: u32,
    pub divergence: DivergencePolicy,
    /// V8: below this aggregated exposure one market vote suffices; null
    /// keeps the lane closed. Decimal string.
    pub single_vote_below: Option<Decimal>,
    /// R5: days an approval's reserved headroom is held for disbursement.
    pub reservation_days: u32,
    /// L3: collateral haircuts, revaluation schedule and back-office threshold.
    pub collateral: creditops_domain::collateral::CollateralParameters,
    /// L1: what the competence order is applied to.
    pub competence_basis: CompetenceBasis,
    /// L4: the master scale, the maximum age of a rating for a first vote
    /// and the rating bands that need more competence.
    pub rating: RatingRules,
    /// L2: the catalogue of document types and the checklists of the
    /// credit file.
    pub credit_file: creditops_domain::credit_file::CreditFileParameters,
    /// L6-L10: the review schedule, the early-warning catalogue, the
    /// intensive-care criteria and the board threshold of provisions.
    pub monitoring: creditops_domain::MonitoringParameters,
}

impl RuleSetView {
    pub fn new(rules: RuleSet) -> Self {
        let RuleParameters {
            competence_order,
            cooling_off_months,
            divergence,
            single_vote_below,
            reservation_days,
            collateral,
            competence_basis,
            rating,
            credit_file,
            monitoring,
        } = rules.parameters;
        Self {
            version: rules.version,
            valid_from: rules.valid_from,
            competence_order,
            cooling_off_months,
            divergence,
            single_vote_below,
            reservation_days,
            collateral,
            competence_basis,
            rating,
            credit_file,
            monitoring,
        }
    }
}
