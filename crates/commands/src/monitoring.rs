//! The credit after it is granted (L6-L10): the early-warning evaluation
//! and the watch list, reviews and their schedule, stages of care with their
//! plans, and loan-loss provisions under four eyes. Every change is audited
//! in the transaction that makes it (L12).

use crate::facts::rules_in_force;
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::four_eyes::Verdict;
use creditops_domain::monitoring::{
    self, Milestone, MilestoneStatus, MonitoringParameters, Signals, next_review_due,
};
use creditops_domain::{
    BorrowerId, CreditId, Money, Provision, ProvisionId, ProvisionStatus, ReviewId, RuleId, Side,
    StaffId, Stage, Timestamp,
};
use creditops_store::{
    BorrowerFlag, ExposureScope, FlagKind, MonitoringAlert, Review, ReviewKind, StageTransfer,
    StoredMilestone, Tx, WatchEntry,
};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The most rows one list answer holds.
pub const LIST_LIMIT: u32 = 1000;
/// Every open review, for the schedule (bounded far above any book).
const ALL_OPEN: u32 = 10_000_000;

fn side_of(actor: &Actor, now: Timestamp) -> Option<Side> {
    actor.voter_at(now).map(|voter| voter.side)
}

/// Refuses under `rule` with `refusal` unless `actor` is of back office now.
fn require_back_office(
    actor: &Actor,
    now: Timestamp,
    rule: RuleId,
    refusal: &str,
) -> CommandResult<()> {
    if side_of(actor, now) == Some(Side::Backoffice) {
        Ok(())
    } else {
        Err(CommandError::forbidden_under(rule, refusal))
    }
}

async fn require_borrower(tx: &mut dyn Tx, borrower: BorrowerId) -> CommandResult<()> {
    match tx.borrower(borrower).await? {
        Some(_) => Ok(()),
        None => Err(CommandError::not_found("no borrower with that id")),
    }
}

/// The borrower's stage now (`normal` without a transfer).
pub async fn stage_of(tx: &mut dyn Tx, borrower: BorrowerId) -> CommandResult<Stage> {
    Ok(tx
        .current_stage(borrower)
        .await?
        .map_or(Stage::Normal, |transfer| transfer.to_stage))
}

// ---------------------------------------------------------------------------
// Early warning (L7) and ad-hoc reviews (L6)

/// Opens an ad-hoc review of `borrower` for `reason`, due within the
/// rule set's days (`params`), unless one is open already (then that one is
/// the task); returns its id. Audited.
pub async fn open_ad_hoc_review(
    ctx: &Context,
    tx: &mut dyn Tx,
    (borrower, reason): (BorrowerId, &str),
    params: &MonitoringParameters,
    now: Timestamp,
) -> CommandResult<ReviewId> {
    if let Some(open) = tx
        .open_reviews(Some(borrower), 10)
        .await?
        .into_iter()
        .find(|review| review.kind == ReviewKind::AdHoc)
    {
        return Ok(open.id);
    }
    let days = i64::from(params.ad_hoc_review_days);
    let review = Review {
        id: ReviewId::generate(),
        borrower_id: borrower,
        kind: ReviewKind::AdHoc,
        reason: reason.to_owned(),
        // Opened at once; back office has the rule set's days for it.
        due_at: now + chrono::Duration::days(days),
        opened_at: now,
        assignee: None,
        overdue_at: None,
        completed_by: None,
        completed_at: None,
        assessment: None,
    };
    if !tx.insert_review(&review).await? {
        // Opened concurrently: that one is the task.
        return tx
            .open_reviews(Some(borrower), 10)
            .await?
            .into_iter()
            .find(|review| review.kind == ReviewKind::AdHoc)
            .map(|review| review.id)
            .ok_or_else(|| CommandError::conflict("the borrower's reviews changed meanwhile"));
    }
    audit_review(ctx, tx, &review, AuditAction::ReviewOpened, now).await?;
    Ok(review.id)
}

async fn audit_review(
    ctx: &Context,
    tx: &mut dyn Tx,
    review: &Review,
    action: AuditAction,
    now: Timestamp,
) -> CommandResult<()> {
    let mut record = ctx.record(action, now);
    record.rule = Some(RuleId::L6);
    record.borrower_id = Some(review.borrower_id);
    record.data = json!({
        "review_id": review.id,
        "kind": review.kind,
        "reason": review.reason,
        "due_at": review.due_at,
    });
    ctx.audit(tx, &record).await
}

/// What one evaluation of the catalogue changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Borrowers whose signals were evaluated.
    pub evaluated: usize,
    /// Entries put on the watch list.
    pub hits: Vec<WatchEntry>,
    /// Entries taken off: (borrower, indicator).
    pub cleared: Vec<(BorrowerId, String)>,
}

/// The pure part of an evaluation: for every borrower with signals or on
/// the list, the indicators that newly hit and those that no longer do.
pub fn compare(
    catalogue: &[monitoring::Indicator],
    signals: &[(BorrowerId, Signals)],
    listed: &[WatchEntry],
) -> Vec<(BorrowerId, Vec<monitoring::Hit>, Vec<String>)> {
    let mut on_list: BTreeMap<BorrowerId, BTreeSet<&str>> = BTreeMap::new();
    for entry in listed {
        on_list
            .entry(entry.borrower_id)
            .or_default()
            .insert(entry.indicator.as_str());
    }
    let none = Signals::default();
    let by_borrower: BTreeMap<BorrowerId, &Signals> =
        signals.iter().map(|(id, s)| (*id, s)).collect();
    let borrowers: BTreeSet<BorrowerId> =
        by_borrower.keys().chain(on_list.keys()).copied().collect();
    let empty = BTreeSet::new();
    borrowers
        .into_iter()
        .filter_map(|borrower| {
            let hits = monitoring::evaluate(
                catalogue,
                by_borrower.get(&borrower).copied().unwrap_or(&none),
            );
            let listed = on_list.get(&borrower).unwrap_or(&empty);
            let now_hit: BTreeSet<&str> = hits.iter().map(|h| h.indicator.as_str()).collect();
            let gone: Vec<String> = listed
                .iter()
                .filter(|code| !now_hit.contains(**code))
                .map(|code| (*code).to_owned())
                .collect();
            let new: Vec<monitoring::Hit> = hits
                .into_iter()
                .filter(|hit| !listed.contains(hit.indicator.as_str()))
                .collect();
            (!new.is_empty() || !gone.is_empty()).then_some((borrower, new, gone))
        })
        .collect()
}

/// Evaluates the early-warning catalogue in force for the borrowers in
/// `scope` (every borrower when `None`): a new hit puts the borrower on the
/// watch list and opens an ad-hoc review (the back-office task); an
/// indicator that no longer hits takes the entry off. Each audited (L7).
pub async fn evaluate_early_warning(
    ctx: &Context,
    tx: &mut dyn Tx,
    scope: Option<&[BorrowerId]>,
    cause: &str,
    now: Timestamp,
) -> CommandResult<Evaluation> {
    let rules = rules_in_force(tx, now).await?;
    let (signals, listed) = tx.early_warning_inputs(scope).await?;
    let changes = compare(
        &rules.parameters.monitoring.early_warning,
        &signals,
        &listed,
    );
    let mut evaluation = Evaluation {
        evaluated: signals.len(),
        ..Evaluation::default()
    };
    for (borrower, new, gone) in changes {
        let review = if new.is_empty() {
            None
        } else {
            let names: Vec<String> = new
                .iter()
                .map(|hit| format!("{} {}", hit.indicator, hit.value))
                .collect();
            let reason = format!("early warning: {}", names.join(", "));
            let params = &rules.parameters.monitoring;
            Some(open_ad_hoc_review(ctx, tx, (borrower, &reason), params, now).await?)
        };
        for hit in new {
            let entry = WatchEntry {
                borrower_id: borrower,
                indicator: hit.indicator,
                value: hit.value,
                rules_version: rules.version,
                hit_at: now,
                review_id: review,
            };
            if !tx.insert_watch_entry(&entry).await? {
                // Listed by a concurrent evaluation, which audited it.
                continue;
            }
            let mut record = ctx.record(AuditAction::EarlyWarningHit, now);
            record.rule = Some(RuleId::L7);
            record.borrower_id = Some(borrower);
            record.data = json!({
                "indicator": entry.indicator,
                "value": entry.value,
                "catalogue_version": entry.rules_version,
                "review_id": entry.review_id,
                "cause": cause,
            });
            ctx.audit(tx, &record).await?;
            evaluation.hits.push(entry);
        }
        for indicator in gone {
            tx.clear_watch_entry(borrower, &indicator, now).await?;
            let mut record = ctx.record(AuditAction::EarlyWarningCleared, now);
            record.rule = Some(RuleId::L7);
            record.borrower_id = Some(borrower);
            record.data = json!({
                "indicator": indicator,
                "catalogue_version": rules.version,
                "cause": cause,
            });
            ctx.audit(tx, &record).await?;
            evaluation.cleared.push((borrower, indicator));
        }
    }
    Ok(evaluation)
}

/// L6: a limit breach of a borrower is negative information: it opens an
/// ad-hoc review at once. `subjects` are the breached subjects
/// (`borrower:<id>` names a borrower; groups and portfolios do not).
pub async fn review_breaches(
    ctx: &Context,
    tx: &mut dyn Tx,
    subjects: &[String],
    now: Timestamp,
) -> CommandResult<()> {
    let borrowers: BTreeSet<BorrowerId> = subjects
        .iter()
        .filter_map(|subject| subject.strip_prefix("borrower:"))
        .filter_map(|id| id.parse().ok())
        .collect();
    if borrowers.is_empty() {
        return Ok(());
    }
    let rules = rules_in_force(tx, now).await?;
    for borrower in borrowers {
        let opening = (borrower, "limit breach");
        open_ad_hoc_review(ctx, tx, opening, &rules.parameters.monitoring, now).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Flags (L7)

/// Raises a flag on a borrower: negative information (any staff member of
/// market, back office or risk control) or a covenant breach (back office),
/// then evaluates the catalogue for the borrower.
pub async fn raise_flag(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower: BorrowerId,
    kind: FlagKind,
    reason: &str,
) -> CommandResult<BorrowerFlag> {
    let now = action_time();
    require_borrower(tx, borrower).await?;
    let side = side_of(actor, now);
    let allowed = match kind {
        FlagKind::NegativeInformation => {
            matches!(side, Some(Side::Market | Side::Backoffice | Side::Risk))
        }
        FlagKind::CovenantBreach => side == Some(Side::Backoffice),
    };
    if !allowed {
        return Err(CommandError::forbidden_under(
            RuleId::L7,
            match kind {
                FlagKind::NegativeInformation => {
                    "negative information is raised by staff of market, back office or risk control"
                }
                FlagKind::CovenantBreach => "back office records a covenant breach",
            },
        ));
    }
    let reason = creditops_domain::text::required_text("reason", reason, 4000)?;
    let flag = BorrowerFlag {
        id: Uuid::now_v7(),
        borrower_id: borrower,
        kind,
        reason,
        raised_by: actor.id().clone(),
        raised_at: now,
        cleared_by: None,
        cleared_at: None,
    };
    tx.insert_flag(&flag).await?;
    let mut record = ctx.actor_record(actor, AuditAction::BorrowerFlagRaised);
    record.rule = Some(RuleId::L7);
    record.borrower_id = Some(borrower);
    record.data = json!({"flag_id": flag.id, "kind": kind});
    ctx.audit(tx, &record).await?;
    evaluate_early_warning(ctx, tx, Some(&[borrower]), kind.as_str(), now).await?;
    Ok(flag)
}

/// Back office clears a flag (the information is resolved), with a reason;
/// the catalogue is evaluated again for the borrower.
pub async fn clear_flag(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    reason: &str,
) -> CommandResult<BorrowerFlag> {
    let now = action_time();
    require_back_office(
        actor,
        now,
        RuleId::L7,
        "only back office clears a flag on a borrower",
    )?;
    let reason = creditops_domain::text::required_text("reason", reason, 4000)?;
    let flag = tx
        .flag(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no flag with that id"))?;
    if flag.cleared_at.is_some() {
        return Err(CommandError::conflict("the flag is cleared already"));
    }
    let cleared = BorrowerFlag {
        cleared_by: Some(actor.id().clone()),
        cleared_at: Some(now),
        ..flag
    };
    tx.clear_flag(&cleared).await?;
    let mut record = ctx.actor_record(actor, AuditAction::BorrowerFlagCleared);
    record.rule = Some(RuleId::L7);
    record.borrower_id = Some(cleared.borrower_id);
    record.data = json!({"flag_id": cleared.id, "kind": cleared.kind, "reason": reason});
    ctx.audit(tx, &record).await?;
    evaluate_early_warning(ctx, tx, Some(&[cleared.borrower_id]), "flag cleared", now).await?;
    Ok(cleared)
}

// ---------------------------------------------------------------------------
// Reviews (L6)

/// What one round of the review schedule did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewRound {
    pub opened: usize,
    pub overdue: usize,
}

/// The review schedule as of `now` (L6, L8): every borrower above the
/// rule set's threshold, and every borrower outside `normal`, has an open
/// regular review due one interval after its last completed review (or
/// after the schedule started); a review past its due date is marked
/// overdue once, with an alert to back office and an audit event.
pub async fn review_round(
    ctx: &Context,
    tx: &mut dyn Tx,
    now: Timestamp,
) -> CommandResult<ReviewRound> {
    let rules = rules_in_force(tx, now).await?;
    let params = &rules.parameters.monitoring;
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let stages: BTreeMap<BorrowerId, Stage> = tx
        .stages()
        .await?
        .into_iter()
        .map(|transfer| (transfer.borrower_id, transfer.to_stage))
        .collect();
    let open = tx.open_reviews(None, ALL_OPEN).await?;
    let scheduled: BTreeSet<BorrowerId> = open
        .iter()
        .filter(|review| review.kind == ReviewKind::Regular)
        .map(|review| review.borrower_id)
        .collect();
    let last: BTreeMap<BorrowerId, Timestamp> =
        tx.last_completed_reviews().await?.into_iter().collect();
    let mut round = ReviewRound::default();
    let mut covered = BTreeSet::new();
    for exposure in &exposures {
        let borrower = exposure.borrower;
        let stage = stages.get(&borrower).copied().unwrap_or_default();
        let total = exposure.reserved + exposure.outstanding;
        if !params.needs_regular_review(total, stage) {
            continue;
        }
        covered.insert(borrower);
        if scheduled.contains(&borrower) {
            continue;
        }
        let since = last.get(&borrower).copied().unwrap_or(now);
        let review = Review {
            id: ReviewId::generate(),
            borrower_id: borrower,
            kind: ReviewKind::Regular,
            reason: format!(
                "scheduled: exposure {total} in stage {stage}, every {} months",
                params.review_interval(stage)
            ),
            due_at: next_review_due(since, params.review_interval(stage)),
            opened_at: now,
            assignee: None,
            overdue_at: None,
            completed_by: None,
            completed_at: None,
            assessment: None,
        };
        if tx.insert_review(&review).await? {
            audit_review(ctx, tx, &review, AuditAction::ReviewOpened, now).await?;
            round.opened += 1;
        }
    }
    for review in open {
        if review.due_at > now || review.overdue_at.is_some() {
            continue;
        }
        // A regular review of a borrower the schedule no longer covers
        // (exposure fell, back to normal) waits without alerting.
        if review.kind == ReviewKind::Regular && !covered.contains(&review.borrower_id) {
            continue;
        }
        if !tx.mark_review_overdue(review.id, now).await? {
            continue; // another round marked it
        }
        let overdue = Review {
            overdue_at: Some(now),
            ..review
        };
        let alert = MonitoringAlert {
            id: Uuid::now_v7(),
            kind: "review_overdue".into(),
            borrower_id: overdue.borrower_id,
            subject_id: overdue.id.as_uuid(),
            audience: "back_office".into(),
            detail: format!(
                "the {} review due {} is overdue",
                overdue.kind.as_str(),
                overdue.due_at.format("%Y-%m-%d")
            ),
            raised_at: now,
        };
        tx.insert_monitoring_alert(&alert).await?;
        audit_review(ctx, tx, &overdue, AuditAction::ReviewOverdue, now).await?;
        round.overdue += 1;
    }
    Ok(round)
}

/// Back office assigns an open review to an analyst of back office (the
/// due list per analyst).
pub async fn assign_review(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: ReviewId,
    assignee: &StaffId,
) -> CommandResult<Review> {
    let now = action_time();
    require_back_office(actor, now, RuleId::L6, "only back office assigns a review")?;
    let member = tx
        .staff_member(assignee)
        .await?
        .ok_or_else(|| CommandError::invalid("the assignee is not a staff member"))?;
    if member.voter_at(now).map(|voter| voter.side) != Some(Side::Backoffice) {
        return Err(CommandError::forbidden_under(
            RuleId::L6,
            "a review is assigned to an analyst of back office",
        ));
    }
    let review = open_review(tx, id).await?;
    let assigned = Review {
        assignee: Some(assignee.clone()),
        ..review
    };
    tx.update_review(&assigned).await?;
    let mut record = ctx.actor_record(actor, AuditAction::ReviewAssigned);
    record.rule = Some(RuleId::L6);
    record.borrower_id = Some(assigned.borrower_id);
    record.data = json!({"review_id": assigned.id, "assignee": assignee});
    ctx.audit(tx, &record).await?;
    Ok(assigned)
}

async fn open_review(tx: &mut dyn Tx, id: ReviewId) -> CommandResult<Review> {
    let review = tx
        .review(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no review with that id"))?;
    if review.completed_at.is_some() {
        return Err(CommandError::conflict("the review is completed already"));
    }
    Ok(review)
}

/// Whether the covenants were met at a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Covenants {
    Met,
    Breached,
    /// The credit has none.
    None,
}

/// What back office records when it completes a review (L6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub summary: String,
    pub covenants: Covenants,
    pub use_of_funds_checked: bool,
    pub collateral_checked: bool,
}

/// Back office completes a review (L6): the rating must have been renewed
/// lately, the use of funds and the collateral's revaluations checked; a
/// breached covenant is recorded as a flag. The next regular review is
/// then due one interval from now.
pub async fn complete_review(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: ReviewId,
    assessment: &Assessment,
) -> CommandResult<Review> {
    let now = action_time();
    require_back_office(
        actor,
        now,
        RuleId::L6,
        "back office records the risk assessment of a review",
    )?;
    let summary = creditops_domain::text::required_text("summary", &assessment.summary, 8000)?;
    if !assessment.use_of_funds_checked || !assessment.collateral_checked {
        return Err(CommandError::invalid(
            "a review checks the use of funds and the collateral's revaluations; confirm both",
        ));
    }
    let review = open_review(tx, id).await?;
    let rules = rules_in_force(tx, now).await?;
    let days = rules.parameters.monitoring.review_rating_days;
    let renewed_after = now - chrono::Duration::days(i64::from(days));
    let rating = tx.current_rating(review.borrower_id).await?;
    let Some(rating) = rating.filter(|rating| rating.rated_at >= renewed_after) else {
        return Err(CommandError::forbidden_under(
            RuleId::L6,
            format!(
                "a review renews the rating: set the borrower's rating first (the rating in \
                 force must be at most {days} days old)"
            ),
        ));
    };
    if assessment.covenants == Covenants::Breached {
        raise_flag(
            ctx,
            tx,
            actor,
            review.borrower_id,
            FlagKind::CovenantBreach,
            &format!("covenant breach found at review {}", review.id),
        )
        .await?;
    }
    let done = Review {
        completed_by: Some(actor.id().clone()),
        completed_at: Some(now),
        assessment: Some(json!({
            "summary": summary,
            "covenants": assessment.covenants,
            "use_of_funds_checked": true,
            "collateral_checked": true,
            "rating_class": rating.class,
            "rating_rated_at": rating.rated_at,
        })),
        ..review
    };
    tx.update_review(&done).await?;
    let mut record = ctx.actor_record(actor, AuditAction::ReviewCompleted);
    record.rule = Some(RuleId::L6);
    record.borrower_id = Some(done.borrower_id);
    record.data = json!({
        "review_id": done.id,
        "kind": done.kind,
        "covenants": assessment.covenants,
        "rating_class": rating.class,
    });
    ctx.audit(tx, &record).await?;
    reschedule(tx, done.borrower_id, &rules.parameters.monitoring, now).await?;
    Ok(done)
}

/// After an assessment or a transfer, the open regular review of the
/// borrower falls due one interval (of its stage now) from `now`.
async fn reschedule(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    params: &MonitoringParameters,
    now: Timestamp,
) -> CommandResult<()> {
    let stage = stage_of(tx, borrower).await?;
    let due = next_review_due(now, params.review_interval(stage));
    for review in tx.open_reviews(Some(borrower), 10).await? {
        if review.kind == ReviewKind::Regular && review.due_at != due {
            tx.update_review(&Review {
                due_at: due,
                overdue_at: None,
                ..review
            })
            .await?;
        }
    }
    Ok(())
}

/// Which reviews a due list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    pub assignee: Option<StaffId>,
    pub borrower: Option<BorrowerId>,
    /// Only those due at or before this time.
    pub due_by: Option<Timestamp>,
}

/// The open reviews, by due date: the due list in total or per analyst.
pub async fn due_reviews(ctx: &Context, filter: &ReviewFilter) -> CommandResult<Vec<Review>> {
    let mut tx = ctx.store.begin_read().await?;
    let open = tx.open_reviews(filter.borrower, ALL_OPEN).await?;
    Ok(open
        .into_iter()
        .filter(|review| {
            filter
                .assignee
                .as_ref()
                .is_none_or(|who| review.assignee.as_ref() == Some(who))
                && filter.due_by.is_none_or(|by| review.due_at <= by)
        })
        .take(LIST_LIMIT as usize)
        .collect())
}

/// A borrower's reviews, newest first.
pub async fn reviews_of(ctx: &Context, borrower: BorrowerId) -> CommandResult<Vec<Review>> {
    let mut tx = ctx.store.begin_read().await?;
    require_borrower(tx.as_mut(), borrower).await?;
    Ok(tx.reviews_of(borrower, LIST_LIMIT).await?)
}

// ---------------------------------------------------------------------------
// Stages (L8, L9)

/// A borrower's stage with its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageView {
    pub stage: Stage,
    pub transfer: Option<StageTransfer>,
    pub plan: Vec<StoredMilestone>,
    /// The borrower's watch-list entries that are criteria for a transfer
    /// into intensive care under the rule set in force (L8).
    pub criteria_met: Vec<WatchEntry>,
}

/// The borrower's watch-list entries that are criteria for intensive care
/// under `rules` (L8).
async fn criteria_met(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    params: &MonitoringParameters,
) -> CommandResult<Vec<WatchEntry>> {
    Ok(tx
        .watch_entries(Some(&[borrower]))
        .await?
        .into_iter()
        .filter(|entry| params.intensive_care_criteria.contains(&entry.indicator))
        .collect())
}

/// The borrower's stage, the transfer that set it and the plan.
pub async fn stage(ctx: &Context, borrower: BorrowerId) -> CommandResult<StageView> {
    let mut tx = ctx.store.begin_read().await?;
    require_borrower(tx.as_mut(), borrower).await?;
    let transfer = tx.current_stage(borrower).await?;
    let plan = tx.milestones(Some(borrower)).await?;
    let rules = rules_in_force(tx.as_mut(), action_time()).await?;
    let criteria_met = criteria_met(tx.as_mut(), borrower, &rules.parameters.monitoring).await?;
    Ok(StageView {
        stage: transfer.as_ref().map_or(Stage::Normal, |t| t.to_stage),
        transfer,
        plan,
        criteria_met,
    })
}

/// Back office moves a borrower to another stage (L8, L9), with a reason
/// and, into restructuring or workout, a plan. Market cannot. The open
/// regular review is rescheduled to the new stage's interval.
pub async fn transfer_stage(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower: BorrowerId,
    to: Stage,
    reason: &str,
    plan: &[Milestone],
) -> CommandResult<StageView> {
    let now = action_time();
    require_borrower(tx, borrower).await?;
    let from = stage_of(tx, borrower).await?;
    monitoring::check_transfer(
        side_of(actor, now),
        (from, to),
        reason,
        plan,
        now.date_naive(),
    )?;
    let rules = rules_in_force(tx, now).await?;
    let criteria = criteria_met(tx, borrower, &rules.parameters.monitoring).await?;
    let transfer = StageTransfer {
        id: Uuid::now_v7(),
        borrower_id: borrower,
        from_stage: from,
        to_stage: to,
        reason: reason.trim().to_owned(),
        decided_by: actor.id().clone(),
        decided_at: now,
        rules_version: rules.version,
    };
    tx.insert_stage_transfer(&transfer).await?;
    let mut milestones = Vec::with_capacity(plan.len());
    for (ordinal, milestone) in (1i64..).zip(plan) {
        let stored = StoredMilestone {
            id: Uuid::now_v7(),
            borrower_id: borrower,
            transfer_id: transfer.id,
            ordinal,
            milestone: Milestone {
                title: milestone.title.trim().to_owned(),
                ..milestone.clone()
            },
            updated_by: actor.id().clone(),
            updated_at: now,
        };
        tx.insert_milestone(&stored).await?;
        milestones.push(stored);
    }
    let mut record = ctx.actor_record(actor, AuditAction::BorrowerStageChanged);
    record.rule = Some(if to.is_problem_loan() || from.is_problem_loan() {
        RuleId::L9
    } else {
        RuleId::L8
    });
    record.borrower_id = Some(borrower);
    record.data = json!({
        "from": from,
        "to": to,
        "transfer_id": transfer.id,
        "rules_version": rules.version,
        // Which criteria of the rule set were met: the transfer's grounds
        // beside the reason (L8).
        "criteria_met": criteria.iter().map(|e| e.indicator.as_str()).collect::<Vec<_>>(),
        "plan": milestones.iter().map(|m| json!({
            "milestone_id": m.id,
            "title": m.milestone.title,
            "due_on": m.milestone.due_on,
        })).collect::<Vec<_>>(),
    });
    ctx.audit(tx, &record).await?;
    reschedule(tx, borrower, &rules.parameters.monitoring, now).await?;
    Ok(StageView {
        stage: to,
        transfer: Some(transfer),
        plan: milestones,
        criteria_met: criteria,
    })
}

/// Back office marks a milestone of the borrower's current plan met or
/// missed (L9).
pub async fn update_milestone(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower: BorrowerId,
    id: Uuid,
    status: MilestoneStatus,
) -> CommandResult<StoredMilestone> {
    let now = action_time();
    require_back_office(
        actor,
        now,
        RuleId::L9,
        "back office tracks the plan of a problem loan",
    )?;
    if status == MilestoneStatus::Open {
        return Err(CommandError::invalid("a milestone is marked met or missed"));
    }
    let current = tx.milestones(Some(borrower)).await?;
    let milestone = current
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| CommandError::not_found("no milestone with that id in the current plan"))?;
    if milestone.milestone.status != MilestoneStatus::Open {
        return Err(CommandError::conflict("the milestone is not open any more"));
    }
    tx.update_milestone(id, status, actor.id(), now).await?;
    let mut record = ctx.actor_record(actor, AuditAction::PlanMilestoneUpdated);
    record.rule = Some(RuleId::L9);
    record.borrower_id = Some(borrower);
    record.data = json!({"milestone_id": id, "status": status, "title": milestone.milestone.title});
    ctx.audit(tx, &record).await?;
    Ok(StoredMilestone {
        milestone: Milestone {
            status,
            ..milestone.milestone
        },
        updated_by: actor.id().clone(),
        updated_at: now,
        ..milestone
    })
}

// ---------------------------------------------------------------------------
// Provisions (L10)

/// What a provision proposal says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionInput {
    pub borrower: BorrowerId,
    pub credit: Option<CreditId>,
    pub amount: Money,
    pub reason: String,
    pub method: String,
}

/// Back office proposes a loan-loss provision (L10). Whether it is
/// reported to the board is fixed now, from the rule set in force.
pub async fn propose_provision(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    input: &ProvisionInput,
) -> CommandResult<Provision> {
    let now = action_time();
    // The borrower is named in the body: an unknown one is a bad request.
    if tx.borrower(input.borrower).await?.is_none() {
        return Err(CommandError::invalid(
            "borrower_id names no registered borrower",
        ));
    }
    monitoring::check_provision_proposal(
        side_of(actor, now),
        input.amount.amount(),
        &input.reason,
        &input.method,
    )?;
    if let Some(credit) = input.credit {
        let found = tx.credit(credit).await?;
        if found.is_none_or(|c| c.borrower_id != input.borrower) {
            return Err(CommandError::invalid(
                "credit_id names no credit of this borrower",
            ));
        }
    }
    let rules = rules_in_force(tx, now).await?;
    let currency = &rules.parameters.competence_order.currency;
    if input.amount.currency_code() != currency {
        return Err(CommandError::invalid(format!(
            "a provision is booked in {currency}, the competence order's currency"
        )));
    }
    let provision = Provision {
        id: ProvisionId::generate(),
        borrower_id: input.borrower,
        credit_id: input.credit,
        amount: input.amount,
        reason: input.reason.trim().to_owned(),
        method: input.method.trim().to_owned(),
        status: ProvisionStatus::Proposed,
        proposed_by: actor.id().clone(),
        proposed_at: now,
        decided_by: None,
        decided_at: None,
        board_alert: board_alert(&rules.parameters.monitoring, input.amount.amount()),
    };
    tx.insert_provision(&provision).await?;
    let mut record = ctx.actor_record(actor, AuditAction::ProvisionProposed);
    record.rule = Some(RuleId::L10);
    record.borrower_id = Some(provision.borrower_id);
    record.data = provision_data(&provision);
    ctx.audit(tx, &record).await?;
    Ok(provision)
}

fn board_alert(params: &MonitoringParameters, amount: Decimal) -> bool {
    params.board_alert(amount)
}

fn provision_data(provision: &Provision) -> serde_json::Value {
    json!({
        "provision_id": provision.id,
        "credit_id": provision.credit_id,
        "amount": provision.amount.amount().to_string(),
        "currency": provision.amount.currency_code(),
        "method": provision.method,
        "status": provision.status,
        "board_alert": provision.board_alert,
    })
}

/// A second person of back office approves or rejects a proposed
/// provision (L10). An approved provision above the threshold is reported
/// to the board at once: an alert and an audit event.
pub async fn decide_provision(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: ProvisionId,
    verdict: Verdict,
) -> CommandResult<Provision> {
    let now = action_time();
    let provision = tx
        .provision(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no provision with that id"))?;
    let decided =
        monitoring::decide_provision(&provision, side_of(actor, now), actor.id(), verdict, now)?;
    tx.decide_provision(&decided).await?;
    let action = match verdict {
        Verdict::Approve => AuditAction::ProvisionApproved,
        Verdict::Reject => AuditAction::ProvisionRejected,
    };
    let mut record = ctx.actor_record(actor, action);
    record.rule = Some(RuleId::L10);
    record.borrower_id = Some(decided.borrower_id);
    record.data = provision_data(&decided);
    ctx.audit(tx, &record).await?;
    if verdict == Verdict::Approve && decided.board_alert {
        let alert = MonitoringAlert {
            id: Uuid::now_v7(),
            kind: "provision_board".into(),
            borrower_id: decided.borrower_id,
            subject_id: decided.id.as_uuid(),
            audience: "board".into(),
            detail: format!(
                "a provision of {} approved by {} and {}",
                decided.amount,
                decided.proposed_by,
                actor.id()
            ),
            raised_at: now,
        };
        tx.insert_monitoring_alert(&alert).await?;
        let mut record = ctx.actor_record(actor, AuditAction::ProvisionBoardAlert);
        record.rule = Some(RuleId::L10);
        record.borrower_id = Some(decided.borrower_id);
        record.data = provision_data(&decided);
        ctx.audit(tx, &record).await?;
    }
    Ok(decided)
}

/// Provisions (of a borrower if given), newest first.
pub async fn provisions(
    ctx: &Context,
    borrower: Option<BorrowerId>,
) -> CommandResult<Vec<Provision>> {
    // A filter: an unknown borrower has none.
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.provisions(borrower, LIST_LIMIT).await?)
}

/// What monitoring adds to a borrower's exposure (L8, L10): its stage and
/// the sum of its approved provisions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExposureNotes {
    pub stage: Stage,
    pub provisions: Decimal,
}

/// The notes of every borrower outside `normal` or with an approved
/// provision, for the exposure views. Provisions are booked in the
/// competence currency, which is the reporting currency.
pub async fn exposure_notes(ctx: &Context) -> CommandResult<BTreeMap<BorrowerId, ExposureNotes>> {
    let mut tx = ctx.store.begin_read().await?;
    let mut notes: BTreeMap<BorrowerId, ExposureNotes> = BTreeMap::new();
    for transfer in tx.stages().await? {
        notes.entry(transfer.borrower_id).or_default().stage = transfer.to_stage;
    }
    for (borrower, sum) in tx.approved_provisions().await? {
        let amount = sum.amount();
        let entry = notes.entry(borrower).or_default();
        entry.provisions = entry
            .provisions
            .checked_add(amount)
            .ok_or_else(|| CommandError::invalid("the provisions are too large to sum"))?;
    }
    Ok(notes)
}

// ---------------------------------------------------------------------------
// Reads for the desks and the reports

/// The watch list, newest hit first.
pub async fn watch_list(ctx: &Context) -> CommandResult<Vec<WatchEntry>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.watch_entries(None).await?)
}

/// The alerts monitoring raised, newest first.
pub async fn alerts(ctx: &Context) -> CommandResult<Vec<MonitoringAlert>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.monitoring_alerts(LIST_LIMIT).await?)
}

/// Every borrower outside `normal`, with the transfer that put it there.
pub async fn stages(ctx: &Context) -> CommandResult<Vec<StageTransfer>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.stages().await?)
}

/// The milestones of every current plan, by due date.
pub async fn milestones(ctx: &Context) -> CommandResult<Vec<StoredMilestone>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.milestones(None).await?)
}

/// A borrower's flags, newest first.
pub async fn flags_of(ctx: &Context, borrower: BorrowerId) -> CommandResult<Vec<BorrowerFlag>> {
    let mut tx = ctx.store.begin_read().await?;
    require_borrower(tx.as_mut(), borrower).await?;
    Ok(tx.flags_of(borrower).await?)
}

/// The monitoring report: open reviews, the watch list, borrowers outside
/// `normal`, the milestones of current plans and provisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub as_of: Timestamp,
    pub reviews: Vec<Review>,
    pub watch_list: Vec<WatchEntry>,
    pub stages: Vec<StageTransfer>,
    pub milestones: Vec<StoredMilestone>,
    pub provisions: Vec<Provision>,
}

impl Report {
    /// How many rows it holds (what an audited read records).
    pub fn rows(&self) -> usize {
        self.reviews.len()
            + self.watch_list.len()
            + self.stages.len()
            + self.milestones.len()
            + self.provisions.len()
    }
}

/// The report, read in `tx`.
pub async fn report_in(tx: &mut dyn Tx) -> CommandResult<Report> {
    let mut reviews = tx.open_reviews(None, LIST_LIMIT).await?;
    reviews.truncate(LIST_LIMIT as usize);
    Ok(Report {
        as_of: action_time(),
        reviews,
        watch_list: tx.watch_entries(None).await?,
        stages: tx.stages().await?,
        milestones: tx.milestones(None).await?,
        provisions: tx.provisions(None, LIST_LIMIT).await?,
    })
}

/// What a desk's monitoring page shows, read in one transaction: the
/// report, the alerts, and the name of every borrower either names.
pub async fn desk_view(
    ctx: &Context,
) -> CommandResult<(Report, Vec<MonitoringAlert>, BTreeMap<BorrowerId, String>)> {
    let mut tx = ctx.store.begin_read().await?;
    let report = report_in(tx.as_mut()).await?;
    let alerts = tx.monitoring_alerts(LIST_LIMIT).await?;
    let ids: BTreeSet<BorrowerId> = report
        .watch_list
        .iter()
        .map(|w| w.borrower_id)
        .chain(report.reviews.iter().map(|r| r.borrower_id))
        .chain(report.stages.iter().map(|s| s.borrower_id))
        .chain(report.provisions.iter().map(|p| p.borrower_id))
        .chain(alerts.iter().map(|a| a.borrower_id))
        .collect();
    let mut names = BTreeMap::new();
    for id in ids {
        if let Some(borrower) = tx.borrower(id).await? {
            names.insert(id, borrower.name);
        }
    }
    Ok((report, alerts, names))
}

/// The report (risk control).
pub async fn report(ctx: &Context) -> CommandResult<Report> {
    let mut tx = ctx.store.begin_read().await?;
    report_in(tx.as_mut()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditops_domain::monitoring::Indicator;

    fn entry(borrower: BorrowerId, indicator: &str) -> WatchEntry {
        WatchEntry {
            borrower_id: borrower,
            indicator: indicator.into(),
            value: "1".into(),
            rules_version: 1,
            hit_at: chrono::Utc::now(),
            review_id: None,
        }
    }

    #[test]
    fn l7_compare_lists_new_hits_and_cleared_entries_only() {
        let catalogue = vec![
            Indicator::DaysPastDue { at_least: 90 },
            Indicator::NegativeInformation,
        ];
        let (a, b, c) = (
            BorrowerId::generate(),
            BorrowerId::generate(),
            BorrowerId::generate(),
        );
        let signals = vec![
            (
                a,
                Signals {
                    days_past_due: Some(91),
                    ..Signals::default()
                },
            ),
            (
                b,
                Signals {
                    days_past_due: Some(95),
                    negative_information: true,
                    ..Signals::default()
                },
            ),
        ];
        // b is listed for days past due already; c's flag was cleared.
        let listed = vec![entry(b, "days_past_due"), entry(c, "negative_information")];
        let changes = compare(&catalogue, &signals, &listed);
        let summary: Vec<(BorrowerId, Vec<String>, Vec<String>)> = changes
            .into_iter()
            .map(|(id, new, gone)| (id, new.into_iter().map(|h| h.indicator).collect(), gone))
            .collect();
        let mut expected = vec![
            (a, vec!["days_past_due".to_owned()], vec![]),
            (b, vec!["negative_information".to_owned()], vec![]),
            (c, vec![], vec!["negative_information".to_owned()]),
        ];
        expected.sort_by_key(|(id, _, _)| *id);
        assert_eq!(summary, expected);
    }
}
