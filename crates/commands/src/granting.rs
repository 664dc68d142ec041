//! The credit after its first decision: approved credits with their
//! versions (L1) and borrowers' ratings, set by back office and proposed by
//! market (L4).

use crate::cases::reevaluate_open_cases;
use crate::facts::rules_in_force;
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::{BorrowerId, Credit, CreditId, Rating, RatingInput, RatingStatus, RuleId};
use creditops_store::{StoreError, Tx};
use serde_json::json;

/// The most ratings a history answer lists.
pub const RATING_HISTORY: u32 = 200;

/// A credit with every version, oldest first (L1).
pub async fn credit(ctx: &Context, id: CreditId) -> CommandResult<(Credit, Vec<Credit>)> {
    let mut tx = ctx.store.begin_read().await?;
    let credit = tx
        .credit(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no credit with that id"))?;
    let versions = tx.credit_versions(id).await?;
    Ok((credit, versions))
}

/// A borrower's approved credits (L1).
pub async fn credits_of(ctx: &Context, borrower: BorrowerId) -> CommandResult<Vec<Credit>> {
    let mut tx = ctx.store.begin_read().await?;
    require_borrower(tx.as_mut(), borrower).await?;
    Ok(tx.credits_of(borrower).await?)
}

async fn require_borrower(tx: &mut dyn Tx, borrower: BorrowerId) -> CommandResult<()> {
    match tx.borrower(borrower).await? {
        Some(_) => Ok(()),
        None => Err(CommandError::not_found("no borrower with that id")),
    }
}

/// Records a rating of `status` for `borrower` (L4): back office sets,
/// market proposes; the class and probability of default are checked
/// against the master scale in force. A rating set re-evaluates the
/// borrower's open cases, whose competence level its band may raise.
pub async fn rate_borrower(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrower: BorrowerId,
    input: &RatingInput,
    status: RatingStatus,
) -> CommandResult<Rating> {
    let now = action_time();
    let rules = rules_in_force(tx, now).await?;
    let side = actor.voter_at(now).map(|voter| voter.side);
    let rating = Rating::new(
        borrower,
        input,
        status,
        (actor.id(), side),
        &rules.parameters.rating,
        rules.version,
        now,
    )?;
    // The rating's reference to its borrower is the existence check (one
    // statement for both): an unknown borrower stores nothing.
    tx.insert_rating(&rating).await.map_err(|e| match e {
        StoreError::NotFound(_) => CommandError::not_found("no borrower with that id"),
        other => other.into(),
    })?;
    let action = match status {
        RatingStatus::Set => AuditAction::RatingSet,
        RatingStatus::Proposed => AuditAction::RatingProposed,
    };
    let mut record = ctx.actor_record(actor, action);
    record.borrower_id = Some(borrower);
    record.rule = Some(RuleId::L4);
    // Class, PD and scale version; the reason is free text (A6).
    record.data = json!({
        "class": rating.class,
        "pd": rating.pd.to_string(),
        "rules_version": rating.rules_version,
    });
    ctx.audit(tx, &record).await?;
    if status == RatingStatus::Set {
        reevaluate_open_cases(ctx, tx, actor, &[borrower]).await?;
        // L7: a downgrade is an early-warning input.
        crate::monitoring::evaluate_early_warning(ctx, tx, Some(&[borrower]), "rating set", now)
            .await?;
    }
    Ok(rating)
}

/// The parameters of the rule set in force now.
pub async fn rule_parameters(ctx: &Context) -> CommandResult<creditops_domain::RuleParameters> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(rules_in_force(tx.as_mut(), action_time()).await?.parameters)
}

/// The rating rules of the rule set in force now (L4).
pub async fn rating_rules(ctx: &Context) -> CommandResult<creditops_domain::RatingRules> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(rules_in_force(tx.as_mut(), action_time())
        .await?
        .parameters
        .rating)
}

/// A borrower's ratings, set and proposed, newest first (L4).
pub async fn ratings(ctx: &Context, borrower: BorrowerId) -> CommandResult<Vec<Rating>> {
    let mut tx = ctx.store.begin_read().await?;
    require_borrower(tx.as_mut(), borrower).await?;
    Ok(tx.ratings(borrower, RATING_HISTORY).await?)
}
