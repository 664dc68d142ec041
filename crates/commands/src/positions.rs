//! The bank-wide figures every approval reads: Tier 1 capital (R3) and the
//! liquidity position with its LCR floor (R6), each recorded as a new
//! version and re-evaluated by the watcher at once (R7); and the import of
//! outstanding balances from core banking (R2).

use crate::risk::{watch_all, watch_borrowers};
use crate::{Actor, CommandError, CommandResult, Context, InputProblem, action_time};
use chrono::Utc;
use creditops_audit::AuditAction;
use creditops_domain::proposal::ChangeProposal;
use creditops_domain::{BorrowerId, RuleId};
use creditops_risk::{Breach, Capital, ImportEffect, ImportedBalance, LiquidityPosition};
use creditops_store::Tx;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};

/// Records Tier 1 capital (a new version) under the approved `proposal`
/// and re-evaluates every limit (R3, R7). `actor` approved the proposal;
/// the version is recorded as the proposer's.
pub(crate) async fn record_capital(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    tier1: Decimal,
    proposal: &ChangeProposal,
) -> CommandResult<(Capital, Vec<Breach>)> {
    // Every approval's large-exposure cap reads Tier 1.
    tx.lock_risk().await?;
    let now = action_time();
    let version = tx.latest_capital().await?.map_or(0, |c| c.version) + 1;
    let capital = Capital {
        version,
        tier1,
        recorded_by: proposal.proposed_by.clone(),
        recorded_at: now,
    };
    tx.insert_capital(&capital).await?;
    let mut record = ctx.actor_record(actor, AuditAction::RiskCapitalRecorded);
    record.rule = Some(RuleId::R3);
    record.data = json!({
        "version": version,
        "tier1": tier1.to_string(),
        "proposal_id": proposal.id,
        "proposed_by": proposal.proposed_by,
    });
    ctx.audit(tx, &record).await?;
    let breaches = watch_all(ctx, tx, &format!("Tier 1 capital version {version}"), now).await?;
    Ok((capital, breaches))
}

/// A liquidity position to record.
#[derive(Debug, Clone, Copy)]
pub struct NewPosition {
    pub hqla: Decimal,
    pub outflows_30d: Decimal,
    pub inflows_30d: Decimal,
    pub floor_percent: Decimal,
}

/// Records the liquidity position and LCR floor (a new version, R6) under
/// the approved `proposal` and re-evaluates every limit (R7). `actor`
/// approved the proposal; the version is recorded as the proposer's.
pub(crate) async fn record_liquidity(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    new: NewPosition,
    proposal: &ChangeProposal,
) -> CommandResult<(LiquidityPosition, Vec<Breach>)> {
    // Every approval's liquidity check reads the position.
    tx.lock_risk().await?;
    let now = action_time();
    let version = tx.latest_liquidity().await?.map_or(0, |p| p.version) + 1;
    let position = LiquidityPosition {
        version,
        hqla: new.hqla,
        outflows_30d: new.outflows_30d,
        inflows_30d: new.inflows_30d,
        floor_percent: new.floor_percent,
        recorded_by: proposal.proposed_by.clone(),
        recorded_at: now,
    };
    tx.insert_liquidity(&position).await?;
    let mut record = ctx.actor_record(actor, AuditAction::RiskLiquidityRecorded);
    record.rule = Some(RuleId::R6);
    record.data = json!({
        "version": version,
        "hqla": new.hqla.to_string(),
        "outflows_30d": new.outflows_30d.to_string(),
        "inflows_30d": new.inflows_30d.to_string(),
        "floor_percent": new.floor_percent.to_string(),
        "proposal_id": proposal.id,
        "proposed_by": proposal.proposed_by,
    });
    ctx.audit(tx, &record).await?;
    let cause = format!("liquidity position version {version}");
    let breaches = watch_all(ctx, tx, &cause, now).await?;
    Ok((position, breaches))
}

/// Above this many changed borrowers one full re-evaluation is cheaper.
const TARGETED_WATCH_MAX: usize = 200;

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub rows: usize,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Limit breaches the new balances caused (R7).
    pub breaches: Vec<Breach>,
}

/// The refusal of an import whose rows have `problems`: nothing is applied.
pub fn rejected_import(mut problems: Vec<InputProblem>) -> CommandError {
    problems.sort_by_key(|p| p.row);
    CommandError::Invalid {
        detail: format!(
            "{} row(s) of the import are invalid; nothing was imported",
            problems.len()
        ),
        problems,
    }
}

/// Applies validated balances (each with its row number), all or nothing
/// (R2): every borrower must be registered. `digest` identifies the file
/// in the audit trail.
pub async fn import_balances(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    balances: &[(usize, ImportedBalance)],
    digest: &str,
) -> CommandResult<Imported> {
    tx.lock_risk().await?;
    let borrowers: BTreeSet<BorrowerId> = balances.iter().map(|(_, b)| b.borrower).collect();
    let mut unknown = HashSet::new();
    for id in &borrowers {
        if tx.borrower(*id).await?.is_none() {
            unknown.insert(*id);
        }
    }
    if !unknown.is_empty() {
        let problems = balances
            .iter()
            .filter(|(_, b)| unknown.contains(&b.borrower))
            .map(|(row, _)| InputProblem {
                row: Some(*row),
                field: Some("borrower_id".into()),
                detail: "names no registered borrower".into(),
            })
            .collect();
        return Err(rejected_import(problems));
    }
    let (mut inserted, mut updated, mut unchanged) = (0u64, 0u64, 0u64);
    let mut changed = BTreeSet::new();
    for (_, balance) in balances {
        match tx.import_balance(balance).await? {
            ImportEffect::Inserted => inserted += 1,
            ImportEffect::Updated => updated += 1,
            ImportEffect::Unchanged => {
                unchanged += 1;
                continue;
            }
        }
        changed.insert(balance.borrower);
    }
    let mut record = ctx.actor_record(actor, AuditAction::RiskExposuresImported);
    record.rule = Some(RuleId::R2);
    record.data = json!({
        "rows": balances.len(),
        "inserted": inserted,
        "updated": updated,
        "unchanged": unchanged,
        "sha256": digest,
    });
    ctx.audit(tx, &record).await?;
    let changed: Vec<BorrowerId> = changed.into_iter().collect();
    let cause = "core banking import";
    let breaches = if changed.is_empty() {
        Vec::new()
    } else if changed.len() <= TARGETED_WATCH_MAX {
        watch_borrowers(ctx, tx, &changed, cause, Utc::now()).await?
    } else {
        watch_all(ctx, tx, cause, Utc::now()).await?
    };
    // L7: arrears are early-warning inputs; L6: a breach opens a review.
    let subjects: Vec<String> = breaches.iter().map(|b| b.subject.clone()).collect();
    crate::monitoring::review_breaches(ctx, tx, &subjects, Utc::now()).await?;
    if !changed.is_empty() {
        let scope = (changed.len() <= TARGETED_WATCH_MAX).then_some(changed.as_slice());
        crate::monitoring::evaluate_early_warning(ctx, tx, scope, cause, Utc::now()).await?;
    }
    Ok(Imported {
        rows: balances.len(),
        inserted,
        updated,
        unchanged,
        breaches,
    })
}
