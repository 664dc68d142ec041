//! Risk control inside a command's transaction: the pre-decision gate (R4),
//! the reservation an approval takes (R5) and the watcher's evaluation after
//! every change (R7). The rules are the pure `creditops-risk` engine; this
//! module loads its inputs and records its results, breaches audited.

use crate::facts::group_members_of;
use crate::{ApiError, ServiceContext};
use creditops_audit::Outcome;
use creditops_domain::{BorrowerId, CreditCase, RiskFinding, RiskVerdict, Severity, Timestamp};
use creditops_risk::exposure::{Aggregates, unit_exposure};
use creditops_risk::watch::{Usage, limit_usages, reconcile, unit_usage};
use creditops_risk::{
    BorrowerExposure, Breach, GateInput, LimitKind, LimitSubject, LiquidityView,
    REPORTING_CURRENCY, Reservation, ReservationStatus, gate,
};
use creditops_store::{ExposureScope, Tx};
use rust_decimal::Decimal;
use serde_json::json;

/// The liquidity view now: the last position and what was committed since.
pub async fn liquidity_view(
    tx: &mut dyn Tx,
    now: Timestamp,
) -> Result<Option<LiquidityView>, ApiError> {
    let Some(position) = tx.latest_liquidity().await? else {
        return Ok(None);
    };
    let committed = tx.committed_outflows(position.recorded_at, now).await?;
    Ok(Some(LiquidityView::new(&position, committed)))
}

/// The borrower's exposure row and its group's members (the borrower too).
async fn borrower_and_members(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    now: Timestamp,
) -> Result<(BorrowerExposure, Vec<BorrowerExposure>), ApiError> {
    let (_, member_ids) = group_members_of(tx, borrower, now).await?;
    let members = tx
        .exposures(&ExposureScope::Borrowers(member_ids), now)
        .await?;
    let row = members
        .iter()
        .find(|m| m.borrower == borrower)
        .cloned()
        .ok_or_else(|| ApiError::not_found("no borrower with that id"))?;
    Ok((row, members))
}

/// The subjects whose limits apply to a borrower.
fn subjects_of(borrower: &BorrowerExposure) -> Vec<LimitSubject> {
    let mut subjects = vec![
        LimitSubject::Borrower(borrower.borrower),
        LimitSubject::Sector(borrower.sector.clone()),
        LimitSubject::Country(borrower.country.clone()),
    ];
    if let Some(group) = &borrower.group {
        subjects.push(LimitSubject::Group(group.clone()));
    }
    subjects
}

/// A verdict with a single hard finding: the gate cannot evaluate.
fn unevaluable(check: &str, detail: String) -> RiskVerdict {
    RiskVerdict::from_findings(
        vec![RiskFinding {
            rule: "R4".into(),
            check: check.into(),
            subject: "request".into(),
            limit: None,
            usage: None,
            headroom: None,
            severity: Severity::Hard,
            detail,
        }],
        false,
        REPORTING_CURRENCY,
    )
}

/// The total exposure of the borrower's sector or country, if one of
/// `limits` is of that kind (zero otherwise: nothing reads it).
async fn usage_if_limited(
    tx: &mut dyn Tx,
    limits: &[creditops_risk::Limit],
    kind: LimitKind,
    borrower: &BorrowerExposure,
    now: Timestamp,
) -> Result<Decimal, ApiError> {
    if !limits.iter().any(|limit| limit.subject.kind() == kind) {
        return Ok(Decimal::ZERO);
    }
    let scope = match kind {
        LimitKind::Sector => ExposureScope::Sector(borrower.sector.clone()),
        LimitKind::Country => ExposureScope::Country(borrower.country.clone()),
        LimitKind::Borrower | LimitKind::Group => return Ok(Decimal::ZERO),
    };
    Ok(tx.exposure_total(&scope, now).await?)
}

/// The gate's verdict on approving `case` now (R4), in `tx`.
pub async fn gate_verdict(
    tx: &mut dyn Tx,
    case: &CreditCase,
    now: Timestamp,
) -> Result<RiskVerdict, ApiError> {
    let money = &case.file.amount;
    if money.currency_code() != REPORTING_CURRENCY {
        return Ok(unevaluable(
            "currency",
            format!(
                "limits are kept in {REPORTING_CURRENCY}; a request in {} cannot be checked \
                 against them",
                money.currency_code()
            ),
        ));
    }
    // Held until commit (re-entrant if the caller holds it already): the
    // headroom read here is the headroom reserved.
    tx.lock_risk().await?;
    let (borrower, members) = borrower_and_members(tx, case.file.borrower_id, now).await?;
    let limits = tx.limits_in_force(Some(&subjects_of(&borrower))).await?;
    // Sector and country sums scan many borrowers: only where a limit uses them.
    let sector_usage = usage_if_limited(tx, &limits, LimitKind::Sector, &borrower, now).await?;
    let country_usage = usage_if_limited(tx, &limits, LimitKind::Country, &borrower, now).await?;
    let tier1 = tx.latest_capital().await?.map(|capital| capital.tier1);
    let liquidity = liquidity_view(tx, now).await?;
    Ok(gate(
        &GateInput {
            borrower: &borrower,
            members: &members,
            sector_usage,
            country_usage,
            limits: &limits,
            tier1,
            liquidity: liquidity.as_ref(),
        },
        money.amount(),
    ))
}

/// Reserves the approved amount until disbursement or expiry (R5).
pub async fn reserve(
    tx: &mut dyn Tx,
    case: &CreditCase,
    reservation_days: u32,
    now: Timestamp,
) -> Result<Reservation, ApiError> {
    let reservation = Reservation {
        case_id: case.id,
        borrower: case.file.borrower_id,
        amount: case.file.amount.amount(),
        status: ReservationStatus::Active,
        reserved_at: now,
        expires_at: now + chrono::Duration::days(i64::from(reservation_days)),
        closed_at: None,
        closed_by: None,
    };
    tx.insert_reservation(&reservation).await?;
    Ok(reservation)
}

/// Usage of everything a change to `borrowers` can move: their limits, their
/// group's, sector's and country's, their large-exposure unit, and the LCR.
async fn usages_around(
    tx: &mut dyn Tx,
    borrowers: &[BorrowerId],
    now: Timestamp,
) -> Result<Vec<Usage>, ApiError> {
    let tier1 = tx
        .latest_capital()
        .await?
        .map(|capital| capital.tier1)
        .filter(|t| *t > Decimal::ZERO);
    let mut usages = Vec::new();
    for &id in borrowers {
        let (borrower, members) = borrower_and_members(tx, id, now).await?;
        let mut aggregates = Aggregates::build(&members);
        let limits = tx.limits_in_force(Some(&subjects_of(&borrower))).await?;
        for (kind, subject) in [
            (
                LimitKind::Sector,
                LimitSubject::Sector(borrower.sector.clone()),
            ),
            (
                LimitKind::Country,
                LimitSubject::Country(borrower.country.clone()),
            ),
        ] {
            if limits.iter().any(|limit| limit.subject.kind() == kind) {
                let total = usage_if_limited(tx, &limits, kind, &borrower, now).await?;
                aggregates.by_subject.insert(subject, total);
            }
        }
        usages.extend(limit_usages(&limits, &aggregates));
        if let Some(tier1) = tier1 {
            usages.push(unit_usage(&unit_exposure(&borrower, &members), tier1));
        }
    }
    if let Some(view) = liquidity_view(tx, now).await? {
        usages.push(creditops_risk::gate::liquidity_finding(
            &view,
            Decimal::ZERO,
        ));
    }
    Ok(usages)
}

/// Records what an evaluation found: new breaches (each audited as
/// `risk.breach`, rule R7) and breaches that are back within limits.
pub async fn record_usages(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    usages: &[Usage],
    cause: &str,
    now: Timestamp,
) -> Result<Vec<Breach>, ApiError> {
    let open = tx.open_breaches().await?;
    let result = reconcile(&open, usages, cause, now);
    for breach in &result.opened {
        tx.insert_breach(breach).await?;
        let mut record = ctx.record("risk.breach", Outcome::Ok, now);
        record.rule = Some("R7".into());
        record.data = json!({
            "breach_id": breach.id,
            "subject": breach.subject,
            "check": breach.check,
            "limit": breach.limit.to_string(),
            "usage": breach.usage.to_string(),
            "amount_over": breach.amount_over.to_string(),
            "severity": breach.severity.as_str(),
            "cause": breach.cause,
        });
        ctx.audit(tx, &record).await?;
        tracing::warn!(
            breach = %breach.id, subject = %breach.subject, check = %breach.check,
            over = %breach.amount_over, "limit breach"
        );
    }
    for id in &result.resolved {
        tx.resolve_breach(*id, now).await?;
        let mut record = ctx.record("risk.breach_resolved", Outcome::Ok, now);
        record.rule = Some("R7".into());
        record.data = json!({ "breach_id": id, "cause": cause });
        ctx.audit(tx, &record).await?;
    }
    Ok(result.opened)
}

/// The watcher after a change to `borrowers`' exposure (R7), in `tx`.
pub async fn watch_borrowers(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    borrowers: &[BorrowerId],
    cause: &str,
    now: Timestamp,
) -> Result<Vec<Breach>, ApiError> {
    let usages = usages_around(tx, borrowers, now).await?;
    record_usages(ctx, tx, &usages, cause, now).await
}

/// The full re-evaluation (R7): every limit, every unit, the LCR.
pub async fn watch_all(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    cause: &str,
    now: Timestamp,
) -> Result<Vec<Breach>, ApiError> {
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let limits = tx.limits_in_force(None).await?;
    let tier1 = tx.latest_capital().await?.map(|capital| capital.tier1);
    let liquidity = liquidity_view(tx, now).await?;
    let usages =
        creditops_risk::watch::evaluate_all(&exposures, &limits, tier1, liquidity.as_ref());
    record_usages(ctx, tx, &usages, cause, now).await
}

/// Approves or rejects a pending limit version (R8, four-eyes): never by its
/// proposer, only for the kinds this service decides. On approval the new
/// version is in force at once and the watcher re-evaluates.
/// A list of limit versions.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LimitVersions {
    pub items: Vec<creditops_risk::LimitVersion>,
}

/// What deciding a limit version answers: the version and the breaches its
/// approval caused (R7).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LimitDecision {
    #[serde(flatten)]
    pub limit: creditops_risk::LimitVersion,
    pub breaches: Vec<Breach>,
}

pub async fn decide_limit(
    ctx: std::sync::Arc<ServiceContext>,
    principal: crate::Principal,
    key: crate::IdempotencyKey,
    id: uuid::Uuid,
    approve: bool,
    kinds: &'static [creditops_risk::LimitKind],
) -> Result<axum::response::Response, ApiError> {
    let operation = if approve {
        "POST /v1/limits/{id}/approve"
    } else {
        "POST /v1/limits/{id}/reject"
    };
    let fingerprint = id.as_bytes().to_vec();
    let actor = principal.clone();
    crate::run_command(
        &ctx.clone(),
        &principal,
        key,
        operation,
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let mut limit = tx
                    .limit_version(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("no limit version with that id"))?;
                if !kinds.contains(&limit.subject.kind()) {
                    return Err(ApiError::new(
                        crate::ProblemKind::Forbidden,
                        format!(
                            "{} limits are decided by {}",
                            limit.subject.kind().as_str(),
                            match limit.subject.kind() {
                                creditops_risk::LimitKind::Borrower
                                | creditops_risk::LimitKind::Group => "back office",
                                _ => "a second risk controller",
                            }
                        ),
                    )
                    .with_rule("R8"));
                }
                if limit.status != creditops_risk::LimitStatus::Pending {
                    return Err(ApiError::new(
                        crate::ProblemKind::Conflict,
                        format!("the limit version is {} already", limit.status.as_str()),
                    ));
                }
                if &limit.proposed_by == actor.id() {
                    return Err(ApiError::new(
                        crate::ProblemKind::RuleViolation,
                        "the proposer of a limit cannot decide it (four-eyes)",
                    )
                    .with_rule("R8"));
                }
                let now = crate::cases::action_time();
                limit.status = if approve {
                    creditops_risk::LimitStatus::Approved
                } else {
                    creditops_risk::LimitStatus::Rejected
                };
                limit.decided_by = Some(actor.id().clone());
                limit.decided_at = Some(now);
                tx.decide_limit_version(&limit).await?;
                let mut record = actor.record(
                    &ctx,
                    if approve {
                        "limit.approved"
                    } else {
                        "limit.rejected"
                    },
                );
                record.rule = Some("R8".into());
                record.data = json!({
                    "limit_id": limit.id,
                    "subject": limit.subject.to_string(),
                    "version": limit.version,
                    "amount": limit.amount.to_string(),
                    "proposed_by": limit.proposed_by,
                });
                if let creditops_risk::LimitSubject::Borrower(borrower) = &limit.subject {
                    record.borrower_id = Some(borrower.to_string());
                }
                ctx.audit(tx, &record).await?;
                let breaches = if approve {
                    let cause = format!("limit {} version {}", limit.subject, limit.version);
                    match &limit.subject {
                        creditops_risk::LimitSubject::Borrower(borrower) => {
                            watch_borrowers(&ctx, tx, &[*borrower], &cause, now).await?
                        }
                        _ => watch_all(&ctx, tx, &cause, now).await?,
                    }
                } else {
                    Vec::new()
                };
                crate::CommandOutcome::view(
                    axum::http::StatusCode::OK,
                    &LimitDecision { limit, breaches },
                )
            })
        },
    )
    .await
}
