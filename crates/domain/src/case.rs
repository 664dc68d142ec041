//! The four-eyes credit case (V1-V11, S5, S6).
//!
//! Lifecycle: `draft` -> first vote (market) -> `awaiting_second_vote` ->
//! second vote (back office) -> `approved` | `declined` | `escalated`. An
//! escalated case is voted again, one competence level up, by a new market
//! voter and a new back-office voter (V5). Back office may send the case back
//! (`returned`), which changes the file and voids the votes cast so far (V3,
//! V6). Every vote names the file version and content hash it was cast on and
//! carries the list of rule checks it passed (V9).
//!
//! The relational facts a vote is checked against (rule set in force,
//! aggregated group exposure, relationship managers, related parties) are
//! loaded by the service and handed in as [`VoteFacts`]; the checks here are
//! pure.

use crate::rules::RuleSet;
use crate::verdict::{RiskVerdict, Severity};
use crate::{BorrowerId, CaseId, DomainError, Money, RuleId, Side, StaffId, Timestamp, Voter};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

const MAX_TEXT: usize = 4000;
const MAX_TERM_MONTHS: u32 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Draft,
    AwaitingSecondVote,
    Escalated,
    Approved,
    Declined,
    Returned,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 6] = [
        CaseStatus::Draft,
        CaseStatus::AwaitingSecondVote,
        CaseStatus::Escalated,
        CaseStatus::Approved,
        CaseStatus::Declined,
        CaseStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Draft => "draft",
            CaseStatus::AwaitingSecondVote => "awaiting_second_vote",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Approved => "approved",
            CaseStatus::Declined => "declined",
            CaseStatus::Returned => "returned",
        }
    }

    /// Market may edit and first-vote only while the file is with market.
    pub fn is_with_market(self) -> bool {
        matches!(self, CaseStatus::Draft | CaseStatus::Returned)
    }

    pub fn is_final(self) -> bool {
        matches!(self, CaseStatus::Approved | CaseStatus::Declined)
    }
}

impl FromStr for CaseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CaseStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown case status {s:?}"))
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteStage {
    First,
    Second,
}

impl VoteStage {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteStage::First => "first",
            VoteStage::Second => "second",
        }
    }
}

impl fmt::Display for VoteStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VoteStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(VoteStage::First),
            "second" => Ok(VoteStage::Second),
            _ => Err(format!("unknown vote stage {s:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteDecision {
    Approve,
    Decline,
}

impl VoteDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteDecision::Approve => "approve",
            VoteDecision::Decline => "decline",
        }
    }
}

impl FromStr for VoteDecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" => Ok(VoteDecision::Approve),
            "decline" => Ok(VoteDecision::Decline),
            _ => Err(format!("unknown vote decision {s:?}")),
        }
    }
}

/// The credit file: the risk-relevant facts both votes are bound to (V3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    pub borrower_id: BorrowerId,
    pub amount: Money,
    pub product: String,
    pub term_months: u32,
    pub purpose: String,
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
        })
    }

    /// SHA-256 over a canonical rendering of the file (sorted keys, no
    /// whitespace, amounts as strings). A vote records this hash (V3).
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::json!({
            "amount": self.amount.amount().to_string(),
            "borrower_id": self.borrower_id.to_string(),
            "currency": self.amount.currency_code(),
            "product": self.product,
            "purpose": self.purpose,
            "term_months": self.term_months,
        });
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.to_string().as_bytes());
        hex::encode(digest.as_ref())
    }
}

/// Validates free text: required, bounded, no control characters except newlines/tabs.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max_chars {
        return Err(DomainError::Invalid(format!(
            "{field} must not be longer than {max_chars} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(DomainError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// One rule check that passed, recorded with the vote and the decision (V9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleCheck {
    #[schema(value_type = String)]
    pub rule: RuleId,
    pub detail: String,
}

impl RuleCheck {
    fn new(rule: RuleId, detail: String) -> Self {
        Self { rule, detail }
    }
}

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
    /// Hash over the casbin policies in force (V9).
    pub policy_hash: String,
    /// The risk gate's verdict on approving this case now (R4). `None` when
    /// it was not evaluated: an approval is then refused (fail closed).
    pub risk: Option<RiskVerdict>,
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
            policy_hash: policy_hash.to_owned(),
            risk: None,
        }
    }

    /// The same facts with the risk gate's verdict.
    pub fn with_risk(mut self, verdict: RiskVerdict) -> Self {
        self.risk = Some(verdict);
        self
    }

    /// The level the case needs: from the aggregated exposure (V4), never
    /// below the level an escalation raised it to (V5).
    pub fn required_level(&self, escalation_level: Option<u8>) -> Result<u8, DomainError> {
        let by_exposure = self
            .rules
            .competence()
            .required_level(self.aggregated_exposure)?
            .level;
        Ok(by_exposure.max(escalation_level.unwrap_or(0)))
    }
}

/// A recorded board resolution (V11), bound to the file version it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardResolution {
    pub reference: String,
    pub recorded_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub recorded_at: Timestamp,
    pub file_version: i64,
    pub content_hash: String,
}

/// An immutable vote (V10), bound to a file version and its content hash (V3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    pub stage: VoteStage,
    pub voter: Voter,
    pub decision: VoteDecision,
    pub rationale: String,
    pub file_version: i64,
    pub content_hash: String,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub cast_at: Timestamp,
    /// Voting round: 0 at first, +1 per escalation (V5).
    #[serde(default)]
    pub round: u32,
    /// Competence level the case required when this vote was cast (V4).
    #[serde(default)]
    pub required_level: u8,
    pub checks: Vec<RuleCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Approved,
    Declined,
}

impl DecisionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Approved => "approved",
            DecisionOutcome::Declined => "declined",
        }
    }
}

/// Why a decision goes into the risk report (V7, V8, V11).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DecisionFlag {
    /// Decided at board level (V7).
    BoardLevel,
    /// Decided after an escalation of divergent votes (V5, V7).
    Escalated,
    /// Declined because votes diverged at the board or the policy declines (V5).
    Divergent,
    /// A related-party credit (V11).
    RelatedParty,
    /// Decided by one market vote in the non-risk-relevant lane (V8).
    SingleVoteLane,
    /// A large exposure, >= 10 % of Tier 1 capital (R3, V11).
    LargeExposure,
    /// Approved over a limit's soft threshold after escalation (R4).
    RiskSoftBreach,
}

/// The decision record (V9): what was decided, on which file, by which votes,
/// under which rule-set version and policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub outcome: DecisionOutcome,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub decided_at: Timestamp,
    pub file_version: i64,
    pub content_hash: String,
    /// The competence level the decision was taken at.
    #[serde(default)]
    pub level: u8,
    #[serde(default)]
    pub level_name: String,
    /// The rule-set version (competence order, cooling-off, divergence, lane).
    #[serde(default)]
    pub rules_version: i64,
    #[serde(default)]
    pub policy_hash: String,
    #[serde(default)]
    pub aggregated_exposure: Option<Decimal>,
    #[serde(default)]
    pub flags: Vec<DecisionFlag>,
    /// The risk-control verdict the approval passed (R4); none for declines.
    #[serde(default)]
    pub risk: Option<RiskVerdict>,
    /// Every vote of the current file version, all rounds, in order.
    pub votes: Vec<Vote>,
    pub checks: Vec<RuleCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCase {
    pub id: CaseId,
    pub file: CaseFile,
    pub status: CaseStatus,
    /// File version: starts at 1, +1 on every change of the file (edit, return).
    pub version: i64,
    /// Row version for optimistic concurrency (V10): +1 on every state change.
    pub revision: i64,
    pub originator: StaffId,
    /// Everybody who edited the file (S6); the originator is kept apart.
    pub editors: BTreeSet<StaffId>,
    /// Voting round: +1 per escalation (V5). Never goes back.
    pub round: u32,
    /// The level an escalation raised the case to (V5); reset by a new file.
    pub escalation_level: Option<u8>,
    /// A related party of the borrower or its group is on record (V11).
    pub related_party: bool,
    pub board_resolution: Option<BoardResolution>,
    pub votes: Vec<Vote>,
    pub decision: Option<Decision>,
    pub return_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A voter who passed every check, with what the vote records about it.
struct CheckedVoter {
    voter: Voter,
    required: u8,
    checks: Vec<RuleCheck>,
}

/// The market or back-office side a vote stage belongs to (V1).
fn side_of(stage: VoteStage) -> Side {
    match stage {
        VoteStage::First => Side::Market,
        VoteStage::Second => Side::Backoffice,
    }
}

impl CreditCase {
    pub fn open(id: CaseId, file: CaseFile, originator: StaffId, now: Timestamp) -> Self {
        Self {
            id,
            file,
            status: CaseStatus::Draft,
            version: 1,
            revision: 1,
            originator,
            editors: BTreeSet::new(),
            round: 0,
            escalation_level: None,
            related_party: false,
            board_resolution: None,
            votes: Vec::new(),
            decision: None,
            return_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn content_hash(&self) -> String {
        self.file.content_hash()
    }

    /// Votes cast on the current file version, every round; earlier file
    /// versions' votes are void (V3).
    pub fn current_votes(&self) -> impl Iterator<Item = &Vote> {
        self.votes
            .iter()
            .filter(move |v| v.file_version == self.version)
    }

    fn current_vote(&self, stage: VoteStage) -> Option<&Vote> {
        self.current_votes()
            .find(|v| v.stage == stage && v.round == self.round)
    }

    fn touch(&mut self, now: Timestamp) {
        self.revision += 1;
        self.updated_at = now;
    }

    fn expect_version(&self, given: i64) -> Result<(), DomainError> {
        if given == self.version {
            Ok(())
        } else {
            Err(DomainError::StaleVersion {
                current: self.version,
                given,
            })
        }
    }

    /// A valid board resolution covers the current file version (V11).
    pub fn has_board_resolution(&self) -> bool {
        self.board_resolution
            .as_ref()
            .is_some_and(|r| r.file_version == self.version)
    }

    /// A new file restarts voting from the beginning (V3, V6).
    fn restart_voting(&mut self) {
        self.version += 1;
        self.escalation_level = None;
    }

    /// Market edits the file while it is with market. The new version voids
    /// every vote cast so far (V3); the editor may no longer vote (S6).
    pub fn edit(
        &mut self,
        editor: Option<&Voter>,
        file: CaseFile,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if !self.status.is_with_market() {
            return Err(DomainError::InvalidState(format!(
                "a case can be edited only while it is with market (draft or returned); it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let editor = require_side(editor, Side::Market, RuleId::S1, "edit the credit file")?;
        if file.borrower_id != self.file.borrower_id {
            return Err(DomainError::Invalid(
                "the borrower of a case cannot be changed; open a new case".into(),
            ));
        }
        self.file = file;
        if editor.staff_id != self.originator {
            self.editors.insert(editor.staff_id.clone());
        }
        self.restart_voting();
        self.status = CaseStatus::Draft;
        self.touch(now);
        Ok(())
    }

    /// Every check a voter must pass at vote time (V1, V4, V5, S4, S5, S6).
    /// Returns the voter as recorded, the required level and the passed checks.
    fn check_voter(
        &self,
        stage: VoteStage,
        voter: Option<&Voter>,
        facts: &VoteFacts,
        now: Timestamp,
    ) -> Result<CheckedVoter, DomainError> {
        let side = side_of(stage);
        let what = match stage {
            VoteStage::First => "cast the first vote",
            VoteStage::Second => "cast the second vote",
        };
        let voter = require_side(voter, side, RuleId::V2, what)?;
        let who = &voter.staff_id;
        let mut checks = vec![RuleCheck::new(
            RuleId::V2,
            format!(
                "{stage} voter {who} belongs to {side} unit {} at vote time",
                voter.unit_id
            ),
        )];

        if stage == VoteStage::Second {
            let first = self.current_vote(VoteStage::First).ok_or_else(|| {
                DomainError::InvalidState("the case has no current first vote".into())
            })?;
            crate::four_eyes::require_other_person(
                &first.voter.staff_id,
                who,
                RuleId::V1,
                "the second vote must come from a different person than the first vote",
            )?;
            checks.push(RuleCheck::new(
                RuleId::V1,
                format!(
                    "second voter {who} is not the first voter {}",
                    first.voter.staff_id
                ),
            ));
        }

        if self.round > 0 {
            let voted_before = self
                .current_votes()
                .any(|v| v.round < self.round && &v.voter.staff_id == who);
            if voted_before {
                return Err(DomainError::rule(
                    RuleId::V5,
                    format!(
                        "{who} already voted on this case before the escalation; the escalated \
                         vote needs a new voter"
                    ),
                ));
            }
            checks.push(RuleCheck::new(
                RuleId::V5,
                format!(
                    "{who} did not vote before the escalation (round {})",
                    self.round
                ),
            ));
        }

        let conflict = self.conflict_of(who, facts);
        if let Some(reason) = conflict {
            return Err(DomainError::rule(
                RuleId::S6,
                format!("{who} {reason} and may not vote on it (conflict of interest)"),
            ));
        }
        checks.push(RuleCheck::new(
            RuleId::S6,
            format!("{who} is not originator, editor, relationship manager or related party"),
        ));

        if stage == VoteStage::Second {
            let window_start = facts.rules.cooling_off_start(now);
            let months = facts.rules.parameters.cooling_off_months;
            match voter.left_market_at {
                Some(left) if left > window_start => {
                    return Err(DomainError::rule(
                        RuleId::S5,
                        format!(
                            "{who} left a market unit on {} and may not cast a back-office vote \
                             before the cooling-off period of {months} months has passed",
                            left.date_naive()
                        ),
                    ));
                }
                Some(left) => checks.push(RuleCheck::new(
                    RuleId::S5,
                    format!(
                        "{who} left market on {}, more than {months} months before the vote",
                        left.date_naive()
                    ),
                )),
                None => checks.push(RuleCheck::new(
                    RuleId::S5,
                    format!("{who} was never in a market unit"),
                )),
            }
        }

        let required = facts.required_level(self.escalation_level)?;
        let order = facts.rules.competence();
        if voter.competence_level < required {
            return Err(DomainError::rule(
                RuleId::V4,
                format!(
                    "this case requires competence level {required} ({}) for an aggregated \
                     exposure of {} {}; {who} holds level {} on the {side} side",
                    order.name_of(required),
                    facts.aggregated_exposure,
                    order.currency,
                    voter.competence_level
                ),
            ));
        }
        checks.push(RuleCheck::new(
            RuleId::V4,
            format!(
                "{who} holds level {} on the {side} side; the case requires level {required} ({}) \
                 for an aggregated exposure of {} {} (rule set {})",
                voter.competence_level,
                order.name_of(required),
                facts.aggregated_exposure,
                order.currency,
                facts.rules.version
            ),
        ));
        checks.push(RuleCheck::new(
            RuleId::V3,
            format!(
                "vote bound to file version {} ({})",
                self.version,
                self.content_hash()
            ),
        ));
        Ok(CheckedVoter {
            voter: voter.clone(),
            required,
            checks,
        })
    }

    /// Why `who` may not vote on this case (S6), if anything.
    fn conflict_of(&self, who: &StaffId, facts: &VoteFacts) -> Option<&'static str> {
        if who == &self.originator {
            Some("originated the case")
        } else if self.editors.contains(who) {
            Some("edited the case")
        } else if facts.relationship_managers.contains(who) {
            Some("is relationship manager of the borrower or of a member of its group")
        } else if facts.related_parties.contains(who) {
            Some("is recorded as a related party of the borrower or its group (KWG section 15)")
        } else {
            None
        }
    }

    fn record_vote(
        &mut self,
        stage: VoteStage,
        checked: CheckedVoter,
        decision: VoteDecision,
        rationale: String,
        now: Timestamp,
    ) {
        self.votes.push(Vote {
            stage,
            voter: checked.voter,
            decision,
            rationale,
            file_version: self.version,
            content_hash: self.content_hash(),
            cast_at: now,
            round: self.round,
            required_level: checked.required,
            checks: checked.checks,
        });
    }

    /// The first vote, from a competent, unconflicted market voter (V1, V4,
    /// V5, S4, S6). In the single-vote lane (V8, off by default) an approving
    /// first vote below the threshold decides the case.
    pub fn cast_first_vote(
        &mut self,
        voter: Option<&Voter>,
        decision: VoteDecision,
        rationale: &str,
        expected_version: i64,
        facts: &VoteFacts,
        now: Timestamp,
    ) -> Result<&Vote, DomainError> {
        if !matches!(
            self.status,
            CaseStatus::Draft | CaseStatus::Returned | CaseStatus::Escalated
        ) {
            return Err(DomainError::InvalidState(format!(
                "a first vote needs a case in draft, returned or escalated; it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let checked = self.check_voter(VoteStage::First, voter, facts, now)?;
        let required = checked.required;
        let rationale = required_text("rationale", rationale, MAX_TEXT)?;
        if !facts.related_parties.is_empty() {
            self.related_party = true;
        }
        self.record_vote(VoteStage::First, checked, decision, rationale, now);
        self.return_reason = None;
        let lane = facts
            .rules
            .parameters
            .single_vote_below
            .filter(|threshold| facts.aggregated_exposure < *threshold);
        match decision {
            VoteDecision::Approve => match lane {
                // Only a clean risk verdict may skip the second vote (R4).
                Some(threshold)
                    if self.escalation_level.is_none()
                        && !self.related_party
                        && facts.risk.as_ref().is_some_and(|verdict| {
                            verdict.outcome == Severity::Within && !verdict.large_exposure
                        }) =>
                {
                    let check = RuleCheck::new(
                        RuleId::V8,
                        format!(
                            "aggregated exposure {} below the single-vote threshold {threshold} \
                             (rule set {}): one market vote suffices",
                            facts.aggregated_exposure, facts.rules.version
                        ),
                    );
                    self.decide(
                        DecisionOutcome::Approved,
                        required,
                        facts,
                        vec![DecisionFlag::SingleVoteLane],
                        vec![check],
                        now,
                    );
                }
                _ => self.status = CaseStatus::AwaitingSecondVote,
            },
            // Market does not want the business: the case ends here. After an
            // escalation this is the higher level confirming the back
            // office's decline.
            VoteDecision::Decline => {
                let flags = if self.escalation_level.is_some() {
                    vec![DecisionFlag::Escalated]
                } else {
                    Vec::new()
                };
                self.decide(
                    DecisionOutcome::Declined,
                    required,
                    facts,
                    flags,
                    Vec::new(),
                    now,
                );
            }
        }
        self.touch(now);
        self.last_vote()
    }

    /// The independent second vote from a competent back-office voter who is
    /// a different person, outside the cooling-off period and unconflicted
    /// (V1, V2, V4, S5, S6). Divergent votes decline or escalate (V5); back
    /// office is never outvoted.
    pub fn cast_second_vote(
        &mut self,
        voter: Option<&Voter>,
        decision: VoteDecision,
        rationale: &str,
        expected_version: i64,
        facts: &VoteFacts,
        now: Timestamp,
    ) -> Result<&Vote, DomainError> {
        if self.status != CaseStatus::AwaitingSecondVote {
            return Err(DomainError::InvalidState(format!(
                "a second vote needs a case awaiting the second vote; it is {}",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let checked = self.check_voter(VoteStage::Second, voter, facts, now)?;
        let required = checked.required;
        let first = self
            .current_vote(VoteStage::First)
            .cloned()
            .ok_or_else(|| {
                DomainError::InvalidState("the case has no current first vote".into())
            })?;
        // The group or the rules may have changed since the first vote (R2).
        if first.voter.competence_level < required {
            return Err(DomainError::rule(
                RuleId::V4,
                format!(
                    "the case now requires competence level {required}, but the first vote was \
                     cast at level {}; market must vote again",
                    first.voter.competence_level
                ),
            ));
        }
        // Nor may a first voter who became conflicted since (S6).
        if let Some(reason) = self.conflict_of(&first.voter.staff_id, facts) {
            return Err(DomainError::rule(
                RuleId::S6,
                format!(
                    "the first voter {} {reason} and may not have voted on it; market must vote \
                     again",
                    first.voter.staff_id
                ),
            ));
        }
        let rationale = required_text("rationale", rationale, MAX_TEXT)?;
        let related_party = self.related_party || !facts.related_parties.is_empty();
        let both_approve =
            first.decision == VoteDecision::Approve && decision == VoteDecision::Approve;
        if both_approve && related_party && !self.has_board_resolution() {
            return Err(DomainError::rule(
                RuleId::V11,
                "a related-party credit (KWG section 15) needs a board resolution recorded for \
                 this file version before it can be approved",
            ));
        }
        let mut flags = Vec::new();
        if both_approve {
            flags.extend(self.gate_approval(facts)?);
        }
        self.related_party = related_party;
        self.record_vote(VoteStage::Second, checked, decision, rationale, now);
        if flags.contains(&DecisionFlag::RiskSoftBreach)
            && let Some(next) = self.risk_escalation(facts, required)?
        {
            self.status = CaseStatus::Escalated;
            self.round += 1;
            self.escalation_level = Some(next);
            self.touch(now);
            return self.last_vote();
        }
        if self.escalation_level.is_some() {
            flags.push(DecisionFlag::Escalated);
        }
        if both_approve {
            let mut extra = vec![RuleCheck::new(
                RuleId::V1,
                "approved with an approving market first vote and an approving back-office \
                 second vote"
                    .to_owned(),
            )];
            if let Some(resolution) = self
                .board_resolution
                .as_ref()
                .filter(|_| self.related_party)
            {
                extra.push(RuleCheck::new(
                    RuleId::V11,
                    format!("board resolution {} on record", resolution.reference),
                ));
            }
            self.decide(
                DecisionOutcome::Approved,
                required,
                facts,
                flags,
                extra,
                now,
            );
        } else if decision == VoteDecision::Decline && first.decision == VoteDecision::Approve {
            // Divergent votes never approve at the same level (V5).
            let next = facts
                .rules
                .competence()
                .next_level(required)
                .map(|l| l.level);
            match (facts.rules.parameters.divergence, next) {
                (crate::rules::DivergencePolicy::Escalate, Some(next)) => {
                    self.status = CaseStatus::Escalated;
                    self.round += 1;
                    self.escalation_level = Some(next);
                }
                _ => {
                    flags.push(DecisionFlag::Divergent);
                    self.decide(
                        DecisionOutcome::Declined,
                        required,
                        facts,
                        flags,
                        Vec::new(),
                        now,
                    );
                }
            }
        } else {
            self.decide(
                DecisionOutcome::Declined,
                required,
                facts,
                flags,
                Vec::new(),
                now,
            );
        }
        self.touch(now);
        self.last_vote()
    }

    /// Back office returns the case to market for rework (V6). The file
    /// changes (new version), so the votes cast so far are void (V3).
    pub fn return_for_rework(
        &mut self,
        actor: Option<&Voter>,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if !matches!(
            self.status,
            CaseStatus::AwaitingSecondVote | CaseStatus::Escalated
        ) {
            return Err(DomainError::InvalidState(format!(
                "only a case awaiting a vote from back office or an escalated case can be \
                 returned; it is {}",
                self.status
            )));
        }
        require_side(
            actor,
            Side::Backoffice,
            RuleId::V6,
            "return a case for rework",
        )?;
        let reason = required_text("reason", reason, MAX_TEXT)?;
        self.return_reason = Some(reason);
        self.status = CaseStatus::Returned;
        self.restart_voting();
        self.touch(now);
        Ok(())
    }

    /// Back office records the board resolution a related-party credit needs
    /// (V11). It names and covers one file version, the current one (V3).
    pub fn record_board_resolution(
        &mut self,
        actor: Option<&Voter>,
        reference: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if self.status.is_final() {
            return Err(DomainError::InvalidState(format!(
                "a board resolution cannot be recorded on a {} case",
                self.status
            )));
        }
        self.expect_version(expected_version)?;
        let actor = require_side(
            actor,
            Side::Backoffice,
            RuleId::V11,
            "record a board resolution",
        )?;
        let reference = required_text("reference", reference, 200)?;
        self.board_resolution = Some(BoardResolution {
            reference,
            recorded_by: actor.staff_id.clone(),
            recorded_at: now,
            file_version: self.version,
            content_hash: self.content_hash(),
        });
        self.touch(now);
        Ok(())
    }

    /// Re-evaluates an open case after its group or the rules changed (V4,
    /// R2): a first vote cast below the level the case now requires is void,
    /// and the case goes back to market. Returns whether the case changed.
    pub fn reevaluate(&mut self, facts: &VoteFacts, now: Timestamp) -> Result<bool, DomainError> {
        if self.status != CaseStatus::AwaitingSecondVote {
            return Ok(false);
        }
        let required = facts.required_level(self.escalation_level)?;
        let Some(first) = self.current_vote(VoteStage::First) else {
            return Ok(false);
        };
        let reason = if first.voter.competence_level < required {
            format!(
                "re-evaluated: the aggregated exposure now requires competence level {required} \
                 ({}); voting restarts",
                facts.rules.competence().name_of(required)
            )
        } else if let Some(conflict) = self.conflict_of(&first.voter.staff_id, facts) {
            format!(
                "re-evaluated: the first voter {} {conflict}; voting restarts",
                first.voter.staff_id
            )
        } else {
            return Ok(false);
        };
        self.return_reason = Some(reason);
        self.status = CaseStatus::Returned;
        self.restart_voting();
        self.touch(now);
        Ok(true)
    }

    /// The risk-control gate on an approval (R4, V11): refuses a hard breach
    /// or an unevaluated verdict, and a large exposure without a board
    /// resolution; returns the flags the decision will carry.
    fn gate_approval(&self, facts: &VoteFacts) -> Result<Vec<DecisionFlag>, DomainError> {
        let verdict = facts.risk.as_ref().ok_or_else(|| {
            DomainError::rule(
                RuleId::R4,
                "the risk-control gate has not evaluated this approval, so it is refused",
            )
        })?;
        if verdict.outcome == Severity::Hard {
            return Err(DomainError::rule(
                RuleId::R4,
                format!("approval refused by risk control: {}", verdict.summary()),
            ));
        }
        let mut flags = Vec::new();
        if verdict.large_exposure {
            if !self.has_board_resolution() {
                return Err(DomainError::rule(
                    RuleId::V11,
                    "a large exposure (>= 10 % of Tier 1 capital, KWG section 13) needs a \
                     full-board resolution recorded for this file version before it can be \
                     approved",
                ));
            }
            flags.push(DecisionFlag::LargeExposure);
        }
        if verdict.outcome == Severity::Soft {
            flags.push(DecisionFlag::RiskSoftBreach);
        }
        Ok(flags)
    }

    /// The level a soft breach escalates to (R4): one above the level the
    /// exposure alone requires, unless the case is already voted there or
    /// higher (then `None`: the approval stands, flagged). At the top of the
    /// competence order there is nothing to escalate to.
    fn risk_escalation(&self, facts: &VoteFacts, required: u8) -> Result<Option<u8>, DomainError> {
        let by_exposure = facts.required_level(None)?;
        if required > by_exposure {
            return Ok(None);
        }
        Ok(facts
            .rules
            .competence()
            .next_level(required)
            .map(|level| level.level))
    }

    fn last_vote(&self) -> Result<&Vote, DomainError> {
        self.votes
            .last()
            .ok_or_else(|| DomainError::InvalidState("no vote recorded".into()))
    }

    fn decide(
        &mut self,
        outcome: DecisionOutcome,
        level: u8,
        facts: &VoteFacts,
        mut flags: Vec<DecisionFlag>,
        extra_checks: Vec<RuleCheck>,
        now: Timestamp,
    ) {
        let votes: Vec<Vote> = self.current_votes().cloned().collect();
        let mut checks: Vec<RuleCheck> = votes.iter().flat_map(|v| v.checks.clone()).collect();
        checks.extend(extra_checks);
        let order = facts.rules.competence();
        if order.is_board(level) {
            flags.push(DecisionFlag::BoardLevel);
        }
        if self.related_party {
            flags.push(DecisionFlag::RelatedParty);
        }
        flags.sort();
        flags.dedup();
        self.status = match outcome {
            DecisionOutcome::Approved => CaseStatus::Approved,
            DecisionOutcome::Declined => CaseStatus::Declined,
        };
        self.decision = Some(Decision {
            outcome,
            decided_at: now,
            file_version: self.version,
            content_hash: self.content_hash(),
            level,
            level_name: order.name_of(level),
            rules_version: facts.rules.version,
            policy_hash: facts.policy_hash.clone(),
            aggregated_exposure: Some(facts.aggregated_exposure),
            risk: match outcome {
                DecisionOutcome::Approved => facts.risk.clone(),
                DecisionOutcome::Declined => None,
            },
            flags,
            votes,
            checks,
        });
    }
}

fn require_side<'a>(
    actor: Option<&'a Voter>,
    side: Side,
    rule: RuleId,
    what: &str,
) -> Result<&'a Voter, DomainError> {
    match actor {
        Some(v) if v.side == side => Ok(v),
        Some(v) => Err(DomainError::rule(
            rule,
            format!(
                "only a member of a {side} unit may {what}; {} belongs to {} unit {} at this time",
                v.staff_id, v.side, v.unit_id
            ),
        )),
        None => Err(DomainError::rule(
            rule,
            format!(
                "only a member of a {side} unit may {what}; the actor has no unique unit at this time"
            ),
        )),
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

#[cfg(test)]
mod tests;
