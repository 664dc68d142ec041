//! What risk control reads (R2, R3, R6, R7, R9): exposures, limits in force
//! with their usage, capital, liquidity, breaches and the regulatory
//! reports, each read in one read transaction.

use crate::risk::liquidity_view;
use crate::{CommandError, CommandResult, Context};
use creditops_domain::deviating::DeviatingDecision;
use creditops_domain::{BorrowerId, Country, Sector, Timestamp, UnitId};
use creditops_risk::reports::{ReportKind, ReportLine, report};
use creditops_risk::watch::{Usage, limit_usages};
use creditops_risk::{
    Aggregates, BorrowerExposure, Breach, Capital, Limit, LiquidityPosition, LiquidityView,
};
use creditops_store::{BreachFilter, BreachPage, ExposureScope};
use rust_decimal::Decimal;

/// Whose exposure to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposureFilter {
    All,
    Borrower(BorrowerId),
    /// The members of this group of connected clients.
    Group(UnitId),
    /// A sector code: a section includes its divisions.
    Sector(Sector),
    Country(Country),
}

/// Exposure per borrower (reserved, outstanding) of the borrowers `filter`
/// names, as of `now`.
pub async fn exposures(
    ctx: &Context,
    filter: ExposureFilter,
    now: Timestamp,
) -> CommandResult<Vec<BorrowerExposure>> {
    let mut tx = ctx.store.begin_read().await?;
    let scope = match filter {
        ExposureFilter::All => ExposureScope::All,
        ExposureFilter::Borrower(id) => ExposureScope::Borrowers(vec![id]),
        ExposureFilter::Group(group) => {
            if tx.group(&group).await?.is_none() {
                return Err(CommandError::not_found("no group with that id"));
            }
            ExposureScope::Borrowers(tx.group_members(&group, now).await?)
        }
        ExposureFilter::Sector(sector) => ExposureScope::Sector(sector),
        ExposureFilter::Country(country) => ExposureScope::Country(country),
    };
    Ok(tx.exposures(&scope, now).await?)
}

/// Every limit in force with its usage as of `now` (R7).
pub async fn limits_in_force(ctx: &Context, now: Timestamp) -> CommandResult<Vec<(Limit, Usage)>> {
    let mut tx = ctx.store.begin_read().await?;
    let limits = tx.limits_in_force(None).await?;
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let usages = limit_usages(&limits, &Aggregates::build(&exposures));
    Ok(limits.into_iter().zip(usages).collect())
}

/// Tier 1 capital in force (R3).
pub async fn capital(ctx: &Context) -> CommandResult<Capital> {
    let mut tx = ctx.store.begin_read().await?;
    tx.latest_capital()
        .await?
        .ok_or_else(|| CommandError::not_found("no Tier 1 capital is on record"))
}

/// The liquidity position in force and the view with what was committed
/// since, as of `now` (R6).
pub async fn liquidity(
    ctx: &Context,
    now: Timestamp,
) -> CommandResult<(LiquidityPosition, LiquidityView)> {
    let missing = || CommandError::not_found("no liquidity position is on record");
    let mut tx = ctx.store.begin_read().await?;
    let position = tx.latest_liquidity().await?.ok_or_else(missing)?;
    let view = liquidity_view(tx.as_mut(), now)
        .await?
        .ok_or_else(missing)?;
    Ok((position, view))
}

/// The breaches still open (R7).
pub async fn open_breaches(ctx: &Context) -> CommandResult<Vec<Breach>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.open_breaches().await?)
}

/// One page of the alert list (R7).
pub async fn breach_page(ctx: &Context, page: &BreachPage) -> CommandResult<Vec<Breach>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.breach_page(page).await?)
}

/// The breaches `filter` selects (R7).
pub async fn breaches(ctx: &Context, filter: &BreachFilter) -> CommandResult<Vec<Breach>> {
    let mut tx = ctx.store.begin_read().await?;
    Ok(tx.breaches(filter).await?)
}

/// A regulatory report of borrower units as of `now` (R9), with the Tier 1
/// capital it was computed with.
pub async fn exposure_report(
    ctx: &Context,
    kind: ReportKind,
    now: Timestamp,
) -> CommandResult<(Vec<ReportLine>, Option<Decimal>)> {
    let mut tx = ctx.store.begin_read().await?;
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let tier1 = tx.latest_capital().await?.map(|c| c.tier1);
    Ok((report(kind, &Aggregates::build(&exposures), tier1), tier1))
}

/// The most decisions one deviating-decisions report reads (L11).
pub const DEVIATING_MAX_DECISIONS: u32 = 10_000;
/// The longest period of one deviating-decisions report (L11).
pub const DEVIATING_MAX_DAYS: i64 = 366;

/// Refuses an empty, reversed or over-long period (L11).
fn check_deviating_period(from: Timestamp, to: Timestamp) -> CommandResult<()> {
    if to <= from {
        return Err(CommandError::invalid("to must be after from"));
    }
    if to - from > chrono::Duration::days(DEVIATING_MAX_DAYS) {
        return Err(CommandError::invalid(format!(
            "the period may span at most {DEVIATING_MAX_DAYS} days"
        )));
    }
    Ok(())
}

/// The decisions of [`from`, `to`) that deviate (L11), read in `tx`.
pub(crate) async fn deviating_in(
    tx: &mut dyn creditops_store::Tx,
    from: Timestamp,
    to: Timestamp,
) -> CommandResult<Vec<DeviatingDecision>> {
    check_deviating_period(from, to)?;
    let decided = tx
        .decisions_between(from, to, DEVIATING_MAX_DECISIONS + 1)
        .await?;
    if decided.len() > DEVIATING_MAX_DECISIONS as usize {
        return Err(CommandError::invalid(format!(
            "more than {DEVIATING_MAX_DECISIONS} decisions were taken in the period: \
             ask for a shorter period"
        )));
    }
    Ok(decided
        .iter()
        .filter_map(|d| {
            DeviatingDecision::of(d.case.id, d.case.borrower_id, &d.case.amount, &d.decision)
        })
        .collect())
}

/// The deviating decisions of [`from`, `to`) for the risk report (L11).
pub async fn deviating_decisions(
    ctx: &Context,
    from: Timestamp,
    to: Timestamp,
) -> CommandResult<Vec<DeviatingDecision>> {
    let mut tx = ctx.store.begin_read().await?;
    deviating_in(tx.as_mut(), from, to).await
}
