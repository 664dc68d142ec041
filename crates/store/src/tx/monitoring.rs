//! The credit after it is granted (L6-L10): the early-warning inputs and
//! the watch list, reviews, stages with their plans, provisions and the
//! alerts monitoring raises.

use crate::StoreResult;
use creditops_domain::monitoring::{Milestone, MilestoneStatus, Signals};
use creditops_domain::{
    BorrowerId, Money, Provision, ProvisionId, ReviewId, StaffId, Stage, Timestamp,
};
use serde::Serialize;
use uuid::Uuid;

/// A borrower on the watch list: one indicator of the catalogue that hit
/// (L7). It stays until the indicator no longer hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WatchEntry {
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    pub indicator: String,
    /// The value that met the indicator when it first hit.
    pub value: String,
    /// The rule set whose catalogue it was evaluated against.
    pub rules_version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub hit_at: Timestamp,
    /// The back-office task (an ad-hoc review) the hit opened.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub review_id: Option<ReviewId>,
}

/// Why a review exists (L6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// The schedule: every 12 months, quarterly in intensive care.
    Regular,
    /// Negative information: an early-warning hit, a limit breach, a
    /// downgrade.
    AdHoc,
}

impl ReviewKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewKind::Regular => "regular",
            ReviewKind::AdHoc => "ad_hoc",
        }
    }
}

impl std::str::FromStr for ReviewKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "regular" => Ok(ReviewKind::Regular),
            "ad_hoc" => Ok(ReviewKind::AdHoc),
            other => Err(format!("unknown review kind {other:?}")),
        }
    }
}

/// A risk assessment of a borrower by back office, open or done (L6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Review {
    #[schema(value_type = String, format = Uuid)]
    pub id: ReviewId,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    pub kind: ReviewKind,
    /// What opened it: the schedule, an indicator, a breach.
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    /// The analyst it is assigned to, if any.
    #[schema(value_type = Option<String>)]
    pub assignee: Option<StaffId>,
    /// When the watcher found it overdue and alerted.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub overdue_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub completed_by: Option<StaffId>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// The recorded assessment (JSON), once done.
    #[schema(value_type = Option<Object>)]
    pub assessment: Option<serde_json::Value>,
}

/// A decided transfer between stages (L8, L9); the newest is the
/// borrower's stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StageTransfer {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    pub from_stage: Stage,
    pub to_stage: Stage,
    pub reason: String,
    #[schema(value_type = String)]
    pub decided_by: StaffId,
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: Timestamp,
    pub rules_version: i64,
}

/// A milestone of a borrower's restructuring or workout plan (L9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredMilestone {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    /// The transfer whose plan it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub transfer_id: Uuid,
    pub ordinal: i64,
    #[serde(flatten)]
    pub milestone: Milestone,
    #[schema(value_type = String)]
    pub updated_by: StaffId,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// What kind of flag a staff member raised on a borrower (L7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// Negative information: any staff member may raise it.
    NegativeInformation,
    /// A breached covenant: back office records it.
    CovenantBreach,
}

impl FlagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::NegativeInformation => "negative_information",
            FlagKind::CovenantBreach => "covenant_breach",
        }
    }
}

impl std::str::FromStr for FlagKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "negative_information" => Ok(FlagKind::NegativeInformation),
            "covenant_breach" => Ok(FlagKind::CovenantBreach),
            other => Err(format!("unknown flag kind {other:?}")),
        }
    }
}

/// A flag on a borrower, raised and, later, cleared (L7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BorrowerFlag {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    pub kind: FlagKind,
    pub reason: String,
    #[schema(value_type = String)]
    pub raised_by: StaffId,
    #[schema(value_type = String, format = DateTime)]
    pub raised_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub cleared_by: Option<StaffId>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cleared_at: Option<Timestamp>,
}

/// An alert monitoring raised (L6 overdue review, L10 large provision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MonitoringAlert {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// `review_overdue` or `provision_board`.
    pub kind: String,
    #[schema(value_type = String, format = Uuid)]
    pub borrower_id: BorrowerId,
    /// The review or provision it is about.
    #[schema(value_type = String, format = Uuid)]
    pub subject_id: Uuid,
    /// Who must see it: `back_office` or `board`.
    pub audience: String,
    pub detail: String,
    #[schema(value_type = String, format = DateTime)]
    pub raised_at: Timestamp,
}

/// Monitoring storage.
#[async_trait::async_trait]
pub trait MonitoringTx: Send {
    /// The early-warning inputs of the borrowers in `scope` (every borrower
    /// when `None`) that have any; borrowers without are left out.
    async fn early_warning_signals(
        &mut self,
        scope: Option<&[BorrowerId]>,
    ) -> StoreResult<Vec<(BorrowerId, Signals)>>;
    /// [`Self::early_warning_signals`] and [`Self::watch_entries`] of
    /// `scope`, read together (one statement where the backend can).
    async fn early_warning_inputs(
        &mut self,
        scope: Option<&[BorrowerId]>,
    ) -> StoreResult<(Vec<(BorrowerId, Signals)>, Vec<WatchEntry>)>;
    /// The entries on the watch list now (not cleared) of the borrowers in
    /// `scope` (all when `None`), newest hit first.
    async fn watch_entries(&mut self, scope: Option<&[BorrowerId]>)
    -> StoreResult<Vec<WatchEntry>>;
    /// Puts the borrower on the list for the indicator; false (and nothing
    /// written) when it is listed for it already, e.g. by a concurrent
    /// evaluation.
    async fn insert_watch_entry(&mut self, entry: &WatchEntry) -> StoreResult<bool>;
    /// Takes the borrower off the list for the indicator (the entry is kept,
    /// cleared at `at`).
    async fn clear_watch_entry(
        &mut self,
        borrower: BorrowerId,
        indicator: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    async fn insert_flag(&mut self, flag: &BorrowerFlag) -> StoreResult<()>;
    async fn flag(&mut self, id: Uuid) -> StoreResult<Option<BorrowerFlag>>;
    /// Clears an open flag; Conflict if it is cleared already.
    async fn clear_flag(&mut self, flag: &BorrowerFlag) -> StoreResult<()>;
    /// A borrower's flags, newest first.
    async fn flags_of(&mut self, borrower: BorrowerId) -> StoreResult<Vec<BorrowerFlag>>;

    /// Opens a review; false (and nothing written) when the borrower has an
    /// open review of its kind already, e.g. opened concurrently.
    async fn insert_review(&mut self, review: &Review) -> StoreResult<bool>;
    /// Marks an open review overdue at `at`; false when it is marked or
    /// completed already (another watcher round was first).
    async fn mark_review_overdue(&mut self, id: ReviewId, at: Timestamp) -> StoreResult<bool>;
    async fn review(&mut self, id: ReviewId) -> StoreResult<Option<Review>>;
    /// Writes assignee, overdue mark, due date and completion of an open
    /// review; Conflict if it was completed meanwhile.
    async fn update_review(&mut self, review: &Review) -> StoreResult<()>;
    /// Open reviews (of `borrower` if given), by due date, at most `limit`.
    async fn open_reviews(
        &mut self,
        borrower: Option<BorrowerId>,
        limit: u32,
    ) -> StoreResult<Vec<Review>>;
    /// A borrower's reviews, newest first, at most `limit`.
    async fn reviews_of(&mut self, borrower: BorrowerId, limit: u32) -> StoreResult<Vec<Review>>;
    /// When each borrower's last review was completed (for the schedule).
    async fn last_completed_reviews(&mut self) -> StoreResult<Vec<(BorrowerId, Timestamp)>>;

    async fn insert_stage_transfer(&mut self, transfer: &StageTransfer) -> StoreResult<()>;
    /// The newest transfer of the borrower (its stage), if any.
    async fn current_stage(&mut self, borrower: BorrowerId) -> StoreResult<Option<StageTransfer>>;
    /// Every transfer of the borrower decided at or after `since`, oldest
    /// first.
    async fn stage_transfers_since(
        &mut self,
        borrower: BorrowerId,
        since: Timestamp,
    ) -> StoreResult<Vec<StageTransfer>>;
    /// The current stage of every borrower not in `normal`.
    async fn stages(&mut self) -> StoreResult<Vec<StageTransfer>>;
    async fn insert_milestone(&mut self, milestone: &StoredMilestone) -> StoreResult<()>;
    async fn milestone(&mut self, id: Uuid) -> StoreResult<Option<StoredMilestone>>;
    async fn update_milestone(
        &mut self,
        id: Uuid,
        status: MilestoneStatus,
        by: &StaffId,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// The milestones of the borrower's current plan (of `borrower`, or of
    /// every borrower when `None`), by due date.
    async fn milestones(
        &mut self,
        borrower: Option<BorrowerId>,
    ) -> StoreResult<Vec<StoredMilestone>>;

    async fn insert_provision(&mut self, provision: &Provision) -> StoreResult<()>;
    async fn provision(&mut self, id: ProvisionId) -> StoreResult<Option<Provision>>;
    /// Records the decision on a proposed provision; Conflict if it was
    /// decided meanwhile.
    async fn decide_provision(&mut self, provision: &Provision) -> StoreResult<()>;
    /// Provisions (of `borrower` if given), newest first, at most `limit`.
    async fn provisions(
        &mut self,
        borrower: Option<BorrowerId>,
        limit: u32,
    ) -> StoreResult<Vec<Provision>>;

    /// The sum of the approved provisions of every borrower that has one,
    /// per currency.
    async fn approved_provisions(&mut self) -> StoreResult<Vec<(BorrowerId, Money)>>;

    async fn insert_monitoring_alert(&mut self, alert: &MonitoringAlert) -> StoreResult<()>;
    /// Alerts, newest first, at most `limit`.
    async fn monitoring_alerts(&mut self, limit: u32) -> StoreResult<Vec<MonitoringAlert>>;
}
