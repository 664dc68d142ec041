//! Risk control inside a command's transaction: the locks an approval or a
//! limit decision takes, the pre-decision gate (R4), the reservation an
//! approval takes (R5) and the watcher's evaluation after every change (R7).
//! The rules are the pure `creditops-risk` engine; this module loads its
//! inputs and records its results, breaches audited.

use crate::facts::{Membership, group_members_of, members_in};
use crate::{CommandError, CommandResult, Context};
use creditops_audit::AuditAction;
use creditops_domain::{
    BorrowerId, Country, CreditCase, DomainError, RiskFinding, RiskVerdict, RuleId, Sector,
    Severity, Timestamp, UnitId,
};
use creditops_risk::exposure::{Aggregates, sectors_of, unit_exposure};
use creditops_risk::gate::liquidity_finding;
use creditops_risk::watch::{Usage, limit_usages, reconcile, unit_usage};
use creditops_risk::{
    BorrowerExposure, Breach, GateInput, LimitSubject, LiquidityView, REPORTING_CURRENCY,
    Reservation, ReservationStatus, gate,
};
use creditops_store::{
    ExposureScope, GateFigures, InFlightClaims, LiquidityClaim, LiquidityNow, Tx,
};
use rust_decimal::Decimal;
use serde_json::json;

/// The liquidity view now: the last position and what was committed since.
pub async fn liquidity_view(
    tx: &mut dyn Tx,
    now: Timestamp,
) -> CommandResult<Option<LiquidityView>> {
    Ok(tx
        .liquidity_now(now, InFlightClaims::Ignored)
        .await?
        .map(|now| LiquidityView::new(&now.position, now.committed)))
}

/// How long an approval waits for approvals in flight that claimed the
/// liquidity headroom after it to give way or commit.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// The liquidity an approval of `amount` holding `claim` is checked
/// against (R5, R6), in `tx`. Every approval claims its amount before its
/// transaction, so of two approvals the one that reads later sees the
/// other's claim (or reservation): counting every other live claim keeps the
/// floor whatever the interleaving. Counting them all would refuse
/// approvals for claims that come to nothing, so approvals in flight give
/// way by age: if the floor fails with only the earlier claims counted, the
/// approval is refused (earlier approvals come first); if only later claims
/// stand in the way, it waits for them to give way or commit, which they
/// do without waiting for it. Without a claim (a backend whose writers are
/// serial) the committed figure is exact. `first` is the first read, taken
/// with the capital (see [`gate_verdict`]); a wait reads again.
async fn approval_liquidity(
    tx: &mut dyn Tx,
    amount: Decimal,
    claim: Option<&LiquidityClaim>,
    first: Option<LiquidityNow>,
    now: Timestamp,
) -> CommandResult<Option<LiquidityView>> {
    let Some(claim) = claim else {
        return Ok(first.map(|now| LiquidityView::new(&now.position, now.committed)));
    };
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    let mut first = Some(first);
    loop {
        let read = match first.take() {
            Some(read) => read,
            None => {
                tx.liquidity_now(now, InFlightClaims::CountedExcept(claim))
                    .await?
            }
        };
        let Some(read) = read else {
            return Ok(None);
        };
        let earlier = read.committed + read.claimed_earlier;
        let with_all = LiquidityView::new(&read.position, earlier + read.claimed_later);
        if liquidity_finding(&with_all, amount).severity != Severity::Hard {
            return Ok(Some(with_all));
        }
        let with_earlier = LiquidityView::new(&read.position, earlier);
        if liquidity_finding(&with_earlier, amount).severity == Severity::Hard {
            return Ok(Some(with_earlier));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CommandError::conflict_under(
                RuleId::R6,
                "approvals in flight hold the liquidity headroom this approval needs; \
                 cast the vote again",
            ));
        }
        tokio::time::sleep(CLAIM_POLL).await;
    }
}

/// The borrower's exposure row and its group's members (the borrower too).
async fn borrower_and_members(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    now: Timestamp,
) -> CommandResult<(BorrowerExposure, Vec<BorrowerExposure>)> {
    let (_, member_ids) = group_members_of(tx, borrower, now).await?;
    let members = tx
        .exposures(&ExposureScope::Borrowers(member_ids), now)
        .await?;
    let row = members
        .iter()
        .find(|m| m.borrower == borrower)
        .cloned()
        .ok_or_else(|| CommandError::not_found("no borrower with that id"))?;
    Ok((row, members))
}

/// The sector and country subjects whose limits apply to a borrower in
/// `sector` and `country`: its sector code, that code's section (a limit on
/// `C` covers `C25`) and its country.
fn shared_subjects_of(sector: Sector, country: Country) -> Vec<LimitSubject> {
    let mut subjects: Vec<LimitSubject> = sectors_of(sector).map(LimitSubject::Sector).collect();
    subjects.push(LimitSubject::Country(country));
    subjects
}

/// The subjects whose limits apply to a borrower.
fn subjects_of(borrower: &BorrowerExposure) -> Vec<LimitSubject> {
    let mut subjects = vec![LimitSubject::Borrower(borrower.borrower)];
    subjects.extend(shared_subjects_of(borrower.sector, borrower.country));
    if let Some(group) = &borrower.group {
        subjects.push(LimitSubject::Group(group.clone()));
    }
    subjects
}

/// A verdict with a single hard finding: the gate cannot evaluate.
fn unevaluable(check: &str, detail: String) -> RiskVerdict {
    RiskVerdict::from_findings(
        vec![RiskFinding {
            rule: RuleId::R4,
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

/// The total exposure of a sector code (a section with its divisions) or a
/// country, if one of `limits` is on it (zero otherwise: nothing reads it).
async fn usage_if_limited(
    tx: &mut dyn Tx,
    limits: &[creditops_risk::Limit],
    subject: &LimitSubject,
    now: Timestamp,
) -> CommandResult<Decimal> {
    if !limits.iter().any(|limit| limit.subject == *subject) {
        return Ok(Decimal::ZERO);
    }
    let scope = match subject {
        LimitSubject::Sector(sector) => ExposureScope::Sector(*sector),
        LimitSubject::Country(country) => ExposureScope::Country(*country),
        LimitSubject::Borrower(_) | LimitSubject::Group(_) => return Ok(Decimal::ZERO),
    };
    Ok(tx.exposure_total(&scope, now).await?)
}

/// The lock name of the unit a borrower's exposure is aggregated in (its
/// group of connected clients, or itself): borrower and group limits and the
/// large-exposure cap are all checked on it.
fn unit_lock(group: Option<&str>, borrower: BorrowerId) -> String {
    subject_lock(&match group {
        Some(group) => LimitSubject::Group(group.to_owned()),
        None => LimitSubject::Borrower(borrower),
    })
}

/// The lock name of a limit subject's headroom.
fn subject_lock(subject: &LimitSubject) -> String {
    match subject {
        LimitSubject::Borrower(id) => format!("unit:borrower:{id}"),
        LimitSubject::Group(group) => format!("unit:group:{group}"),
        LimitSubject::Sector(sector) => format!("sector:{sector}"),
        LimitSubject::Country(country) => format!("country:{country}"),
    }
}

/// What an approval locked and read to know what to lock: the borrower's
/// group members and the limits in force for it. Both stay as read while
/// the shared risk lock is held.
#[derive(Debug)]
pub struct ApprovalScope {
    group: Option<String>,
    members: Vec<BorrowerId>,
    limits: Vec<creditops_risk::Limit>,
}

impl ApprovalScope {
    /// The borrower's group and members as read under the locks.
    pub fn membership(&self) -> Membership {
        (self.group.clone(), self.members.clone())
    }
}

/// Locks what approving a case of `borrower` spends, until commit: the
/// risk parameters shared, the borrower's unit exclusively, and its sector
/// and country only where a limit is in force for them. Approvals of
/// unrelated borrowers then run side by side; the liquidity headroom, which
/// all of them spend, is claimed instead (see [`gate_verdict`]).
pub async fn lock_approval(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    now: Timestamp,
) -> CommandResult<ApprovalScope> {
    approval_scope(tx, borrower, now, true).await
}

/// What approving a case of `borrower` would spend, read without locks
/// (for showing the gate's verdict before anybody votes).
async fn approval_scope(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    now: Timestamp,
    lock: bool,
) -> CommandResult<ApprovalScope> {
    if lock {
        tx.lock_risk_shared().await?;
    }
    let (row, group) = tx
        .borrower_with_group(borrower, now)
        .await?
        .ok_or_else(|| CommandError::not_found("no borrower with that id"))?;
    let (group, members) = members_in(tx, borrower, group, now).await?;
    // Sector and country limits change only under the exclusive lock, so
    // the shared one keeps them as read here, also by the statement that
    // takes the unit's lock; whether one is in force decides what else to
    // lock. The unit comes first, then sector and country in key order:
    // every approval locks in this order.
    let mut subjects = shared_subjects_of(row.sector, row.country);
    if lock {
        let unit = unit_lock(group.as_deref(), borrower);
        let locks: Vec<String> = tx
            .lock_subject_reading_limits(&unit, &subjects)
            .await?
            .iter()
            .map(|limit| subject_lock(&limit.subject))
            .collect();
        if !locks.is_empty() {
            tx.lock_risk_subjects(&locks).await?;
        }
    }
    // Borrower and group limits change under the unit lock: read them now.
    subjects.push(LimitSubject::Borrower(borrower));
    subjects.extend(group.clone().map(LimitSubject::Group));
    let limits = tx.limits_in_force(Some(&subjects)).await?;
    Ok(ApprovalScope {
        group,
        members,
        limits,
    })
}

/// The gate's verdict if `case` were approved now (R4), read without locks
/// or a liquidity claim: what the second voter sees beside the file. The
/// vote itself evaluates again under the locks; this is a preview only.
pub async fn gate_preview(ctx: &Context, case: &CreditCase) -> CommandResult<RiskVerdict> {
    let now = chrono::Utc::now();
    let mut tx = ctx.store.begin_read().await?;
    let scope = approval_scope(tx.as_mut(), case.file.borrower_id, now, false).await?;
    gate_verdict(tx.as_mut(), case, &scope, None, now).await
}

/// Locks what a decision on a limit of `subject` moves: the subject's unit
/// for borrower and group limits; everything for sector and country limits,
/// which every approval in the sector or country reads. For a borrower's
/// limit, its group at `now` as read under the lock (the unit locked).
pub async fn lock_limit_subject(
    tx: &mut dyn Tx,
    subject: &LimitSubject,
    now: Timestamp,
) -> CommandResult<Option<UnitId>> {
    let (lock, group) = match subject {
        LimitSubject::Borrower(borrower) => {
            tx.lock_risk_shared().await?;
            let group = tx.group_of(*borrower, now).await?;
            let name = group.as_ref().map(ToString::to_string);
            (unit_lock(name.as_deref(), *borrower), group)
        }
        LimitSubject::Group(_) => {
            tx.lock_risk_shared().await?;
            (subject_lock(subject), None)
        }
        LimitSubject::Sector(_) | LimitSubject::Country(_) => {
            tx.lock_risk().await?;
            return Ok(None);
        }
    };
    tx.lock_risk_subjects(&[lock]).await?;
    Ok(group)
}

/// The gate's verdict on approving `case` now (R4), in `tx`, which holds
/// the locks of `scope` (see [`lock_approval`]): the limits and the
/// large-exposure cap are checked on figures nobody else can move before
/// commit. The liquidity headroom is not locked: see
/// [`approval_liquidity`] for how the approval's `claim` keeps the floor.
pub async fn gate_verdict(
    tx: &mut dyn Tx,
    case: &CreditCase,
    scope: &ApprovalScope,
    claim: Option<&LiquidityClaim>,
    now: Timestamp,
) -> CommandResult<RiskVerdict> {
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
    let counted = match claim {
        Some(own) => InFlightClaims::CountedExcept(own),
        None => InFlightClaims::Ignored,
    };
    let GateFigures {
        exposures: members,
        capital,
        liquidity: first_liquidity,
    } = tx.gate_figures(&scope.members, now, counted).await?;
    let borrower = members
        .iter()
        .find(|m| m.borrower == case.file.borrower_id)
        .cloned()
        .ok_or_else(|| CommandError::not_found("no borrower with that id"))?;
    let limits = &scope.limits;
    // Sector and country sums scan many borrowers: only where a limit uses them.
    let sector = LimitSubject::Sector(borrower.sector);
    let sector_usage = usage_if_limited(tx, limits, &sector, now).await?;
    let section = LimitSubject::Sector(borrower.sector.section());
    let section_usage = if section == sector {
        sector_usage
    } else {
        usage_if_limited(tx, limits, &section, now).await?
    };
    let country = LimitSubject::Country(borrower.country);
    let country_usage = usage_if_limited(tx, limits, &country, now).await?;
    let tier1 = capital.map(|capital| capital.tier1);
    // A change of an approved credit adds only the difference (L1).
    let added = case.file.added_exposure();
    let liquidity = approval_liquidity(tx, added, claim, first_liquidity, now).await?;
    Ok(gate(
        &GateInput {
            borrower: &borrower,
            members: &members,
            sector_usage,
            section_usage,
            country_usage,
            limits,
            tier1,
            liquidity: liquidity.as_ref(),
        },
        added,
    ))
}

/// The watcher after an approval (R7): the gate's limit and cap findings
/// are the usage after it (every figure includes the approved amount, and
/// the subject locks kept it from moving since), so they are recorded as
/// they are, without evaluating again. The informational checks (the 10 %
/// mark of a large exposure, whether a limit exists) are not usages. Nor is
/// the liquidity finding: an approval below the floor is refused, so it can
/// only find the floor kept, and as the gate read it without the liquidity
/// lock; resolving a liquidity breach is left to what frees liquidity
/// (expiry, a new position) and the periodic evaluation.
pub async fn watch_approval(
    ctx: &Context,
    tx: &mut dyn Tx,
    verdict: &RiskVerdict,
    cause: &str,
    now: Timestamp,
) -> CommandResult<Vec<Breach>> {
    let usages: Vec<Usage> = verdict
        .findings
        .iter()
        .filter(|finding| {
            !matches!(
                finding.check.as_str(),
                "large_exposure" | "limit_required" | "liquidity_floor"
            )
        })
        .cloned()
        .collect();
    record_usages(ctx, tx, &usages, cause, now).await
}

/// A reservation and the liquidity it leaves.
#[derive(Debug)]
pub struct Reserved {
    pub reservation: Reservation,
    /// The gate's liquidity finding (R6): the LCR with this reservation and
    /// every other approval in flight counted.
    pub liquidity: RiskFinding,
}

/// Reserves the approved amount until disbursement or expiry (R5), the
/// last step of an approval, and settles the approval's liquidity claim
/// with it: the claim is gone exactly when the reservation commits, so
/// other approvals count one or the other throughout. `verdict` is the
/// gate's, whose liquidity check was binding (see [`gate_verdict`]).
pub async fn reserve(
    tx: &mut dyn Tx,
    case: &CreditCase,
    verdict: &RiskVerdict,
    claim: Option<&LiquidityClaim>,
    reservation_days: u32,
    now: Timestamp,
) -> CommandResult<Reserved> {
    // The gate refuses without a liquidity position, but what cannot be
    // evaluated is refused all the same.
    let liquidity = verdict
        .findings
        .iter()
        .find(|finding| finding.check == "liquidity_floor")
        .cloned()
        .ok_or_else(|| {
            DomainError::rule(
                RuleId::R4,
                "the LCR floor was not checked, so the headroom cannot be reserved",
            )
        })?;
    let reservation = Reservation {
        case_id: case.id,
        borrower: case.file.borrower_id,
        amount: case.file.added_exposure(),
        status: ReservationStatus::Active,
        reserved_at: now,
        expires_at: now + chrono::Duration::days(i64::from(reservation_days)),
        closed_at: None,
        closed_by: None,
    };
    tx.reserve_with_claim(&reservation, claim).await?;
    Ok(Reserved {
        reservation,
        liquidity,
    })
}

/// Usage of everything a change to `borrowers` can move: their limits, their
/// group's, sector's and country's, their large-exposure unit, and the LCR.
async fn usages_around(
    tx: &mut dyn Tx,
    borrowers: &[BorrowerId],
    now: Timestamp,
) -> CommandResult<Vec<Usage>> {
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
        // The members' aggregates cover only the group: the sector and
        // country figures are the whole portfolio's.
        for subject in shared_subjects_of(borrower.sector, borrower.country) {
            if limits.iter().any(|limit| limit.subject == subject) {
                let total = usage_if_limited(tx, &limits, &subject, now).await?;
                aggregates.by_subject.insert(subject, total);
            }
        }
        usages.extend(limit_usages(&limits, &aggregates));
        if let Some(tier1) = tier1 {
            usages.push(unit_usage(&unit_exposure(&borrower, &members), tier1));
        }
    }
    if let Some(view) = liquidity_view(tx, now).await? {
        usages.push(liquidity_finding(&view, Decimal::ZERO));
    }
    Ok(usages)
}

/// Records what an evaluation found: new breaches (each audited as
/// `risk.breach`, rule R7) and breaches that are back within limits.
pub async fn record_usages(
    ctx: &Context,
    tx: &mut dyn Tx,
    usages: &[Usage],
    cause: &str,
    now: Timestamp,
) -> CommandResult<Vec<Breach>> {
    let open = tx.open_breaches().await?;
    let result = reconcile(&open, usages, cause, now);
    for breach in &result.opened {
        tx.insert_breach(breach).await?;
        let mut record = ctx.record(AuditAction::RiskBreach, now);
        record.rule = Some(RuleId::R7);
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
        let mut record = ctx.record(AuditAction::RiskBreachResolved, now);
        record.rule = Some(RuleId::R7);
        record.data = json!({ "breach_id": id, "cause": cause });
        ctx.audit(tx, &record).await?;
    }
    Ok(result.opened)
}

/// The watcher after a change to `borrowers`' exposure (R7), in `tx`.
pub async fn watch_borrowers(
    ctx: &Context,
    tx: &mut dyn Tx,
    borrowers: &[BorrowerId],
    cause: &str,
    now: Timestamp,
) -> CommandResult<Vec<Breach>> {
    let usages = usages_around(tx, borrowers, now).await?;
    record_usages(ctx, tx, &usages, cause, now).await
}

/// The watcher after a borrower's limit changed (R7): of everything the
/// watcher evaluates, only that limit's usage moved, so only it is
/// evaluated, against the version in force (an older version approved late
/// is not).
pub(crate) async fn watch_borrower_limit(
    ctx: &Context,
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    cause: &str,
    now: Timestamp,
) -> CommandResult<Vec<Breach>> {
    let limits = tx
        .limits_in_force(Some(&[LimitSubject::Borrower(borrower)]))
        .await?;
    let exposure = tx
        .exposures(&ExposureScope::Borrowers(vec![borrower]), now)
        .await?;
    let usages = limit_usages(&limits, &Aggregates::build(&exposure));
    record_usages(ctx, tx, &usages, cause, now).await
}

/// The full re-evaluation (R7): every limit, every unit, the LCR.
pub async fn watch_all(
    ctx: &Context,
    tx: &mut dyn Tx,
    cause: &str,
    now: Timestamp,
) -> CommandResult<Vec<Breach>> {
    let exposures = tx.exposures(&ExposureScope::All, now).await?;
    let limits = tx.limits_in_force(None).await?;
    let tier1 = tx.latest_capital().await?.map(|capital| capital.tier1);
    let liquidity = liquidity_view(tx, now).await?;
    let usages =
        creditops_risk::watch::evaluate_all(&exposures, &limits, tier1, liquidity.as_ref());
    record_usages(ctx, tx, &usages, cause, now).await
}
