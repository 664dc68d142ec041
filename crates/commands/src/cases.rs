//! Commands on a credit case, whichever service offers them: each loads the
//! case, applies a pure domain command, persists the result with optimistic
//! concurrency (V10) and audits it in the same transaction (A1). Which
//! commands a service offers is fixed by its router (S1).

use crate::facts::{rules_in_force, vote_facts_of_group};
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use creditops_audit::AuditAction;
use creditops_domain::collateral::CollateralStatus;
use creditops_domain::{
    BorrowerId, CaseFile, CaseId, CaseKind, CollateralId, CreditCase, CreditId, DomainError,
    MarketAccess, MarketScope, Money, RuleId, Timestamp,
};
use creditops_store::{CaseFilter, CaseSummary, StoreError, Tx};
use serde_json::{Value, json};

/// The case, or NotFound.
pub async fn load_case(tx: &mut dyn Tx, id: CaseId) -> CommandResult<CreditCase> {
    tx.case(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no case with that id"))
}

/// Reads a case for display (both sides see the same case, V9).
pub async fn read_case(ctx: &Context, id: CaseId) -> CommandResult<CreditCase> {
    let mut tx = ctx.store.begin_read().await?;
    load_case(tx.as_mut(), id).await
}

/// What a market command does with a case (hardening finding 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketUse {
    Read,
    /// The first vote.
    Vote,
    /// Edit, disburse and any other change.
    Change,
}

/// The market scope of `actor` at `now`: their unit, side and competence
/// then, under the competence order in force (S4).
pub async fn market_scope(
    tx: &mut dyn Tx,
    actor: &Actor,
    now: Timestamp,
) -> CommandResult<MarketScope> {
    let rules = rules_in_force(tx, now).await?;
    Ok(MarketScope::of(
        actor.voter_at(now).as_ref(),
        rules.competence(),
    ))
}

/// Loads case `id` for a market command that `uses` it, judged at `now`
/// against the actor's unit then (hardening finding 9): a case the actor
/// may not see is answered exactly as an unknown id, so its existence does
/// not leak; a case they may read but not change is refused (S8).
pub async fn load_market_case(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    uses: MarketUse,
    now: Timestamp,
) -> CommandResult<CreditCase> {
    let case = load_case(tx, id).await?;
    let scope = market_scope(tx, actor, now).await?;
    // Most often the originator is the actor, whose record this command
    // already judges by (one read less).
    let owning_units = if &case.originator == actor.id() {
        actor.member.market_units_at(case.created_at)
    } else {
        match tx.staff_member(&case.originator).await? {
            Some(originator) => originator.market_units_at(case.created_at),
            None => Vec::new(),
        }
    };
    let access = scope.access(&case, &owning_units);
    let allowed = match uses {
        MarketUse::Read => access.may_read(),
        MarketUse::Vote => access.may_vote(),
        MarketUse::Change => access.may_change(),
    };
    match (allowed, access) {
        (true, _) => Ok(case),
        (false, MarketAccess::Hidden) => Err(CommandError::not_found("no case with that id")),
        (false, _) => Err(CommandError::forbidden_under(
            RuleId::S8,
            "only the market unit the case belongs to changes it; a board-level or escalation \
             voter of another unit reads it and votes",
        )),
    }
}

/// Reads a case as the market side may see it (hardening finding 9).
pub async fn read_market_case(
    ctx: &Context,
    actor: &Actor,
    id: CaseId,
) -> CommandResult<CreditCase> {
    let mut tx = ctx.store.begin_read().await?;
    load_market_case(tx.as_mut(), actor, id, MarketUse::Read, action_time()).await
}

/// One page of the cases the market `actor` may see now (hardening finding
/// 9), narrowed by `filter`.
pub async fn market_cases_page(
    ctx: &Context,
    actor: &Actor,
    mut filter: CaseFilter,
) -> CommandResult<(Vec<CaseSummary>, Option<CaseId>)> {
    let mut tx = ctx.store.begin_read().await?;
    filter.market_scope = Some(market_scope(tx.as_mut(), actor, action_time()).await?);
    let cases = tx.cases_page(&filter).await?;
    Ok(with_next(cases, filter.limit))
}

fn with_next(cases: Vec<CaseSummary>, limit: u32) -> (Vec<CaseSummary>, Option<CaseId>) {
    let next = (cases.len() == limit as usize)
        .then(|| cases.last().map(|c| c.id))
        .flatten();
    (cases, next)
}

/// The facts of a case change that go into the hashed audit body: ids,
/// versions, hashes and amounts as strings; no free text (A6).
pub fn case_audit_data(case: &CreditCase) -> Value {
    json!({
        "status": case.status.as_str(),
        "version": case.version,
        "content_hash": case.content_hash(),
        "amount": case.file.amount.amount().to_string(),
        "currency": case.file.amount.currency_code(),
        "round": case.round,
        "escalation_level": case.escalation_level,
        "kind": case.file.kind.as_str(),
        "credit": case.file.base.as_ref().map(|base| json!({
            "id": base.credit_id,
            "version": base.version,
        })),
        "released_collateral": case.file.released,
    })
}

/// What a case command records in the audit trail: the action and, where a
/// single rule is the reason for the command, that rule's id.
#[derive(Debug, Clone, Copy)]
pub struct CaseAction {
    pub action: AuditAction,
    pub rule: Option<RuleId>,
}

impl CaseAction {
    pub const fn new(action: AuditAction) -> Self {
        Self { action, rule: None }
    }

    pub const fn under_rule(action: AuditAction, rule: RuleId) -> Self {
        Self {
            action,
            rule: Some(rule),
        }
    }
}

/// Stores a changed case (Conflict if somebody else changed it since
/// `expected_revision`) and its audit event with `data`, in `tx`.
pub(crate) async fn save_case(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    case: &CreditCase,
    expected_revision: i64,
    action: CaseAction,
    data: Value,
) -> CommandResult<()> {
    tx.update_case(case, expected_revision).await?;
    let mut record = ctx.actor_record(actor, action.action);
    record.rule = action.rule;
    record.case_id = Some(case.id);
    record.borrower_id = Some(case.file.borrower_id);
    record.data = data;
    ctx.audit(tx, &record).await
}

/// Loads case `id`, applies `change` (a pure domain command, given the time
/// of the action) and saves and audits the result as `action`.
pub async fn change_case(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    action: CaseAction,
    change: impl FnOnce(&mut CreditCase, Timestamp) -> Result<(), DomainError>,
) -> CommandResult<CreditCase> {
    let case = load_case(tx, id).await?;
    apply_change(ctx, tx, actor, case, action, action_time(), change).await
}

/// Applies `change` at `now` to a loaded `case` and saves and audits the
/// result as `action`.
async fn apply_change(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    mut case: CreditCase,
    action: CaseAction,
    now: Timestamp,
    change: impl FnOnce(&mut CreditCase, Timestamp) -> Result<(), DomainError>,
) -> CommandResult<CreditCase> {
    let expected_revision = case.revision;
    change(&mut case, now)?;
    let data = case_audit_data(&case);
    save_case(ctx, tx, actor, &case, expected_revision, action, data).await?;
    Ok(case)
}

/// Opens a credit case (draft) for a registered borrower: a new credit, or
/// a decision of `kind` on the approved credit `credit_id` (L1), whose
/// current version the case binds to.
pub async fn open_case(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    file: CaseFile,
    kind: CaseKind,
    credit_id: Option<CreditId>,
    released: Option<CollateralId>,
) -> CommandResult<CreditCase> {
    let base = match credit_id {
        None => None,
        Some(credit_id) => {
            let credit = tx
                .credit(credit_id)
                .await?
                .ok_or_else(|| CommandError::invalid("credit_id names no approved credit"))?;
            if credit.borrower_id != file.borrower_id {
                return Err(CommandError::invalid(
                    "credit_id names a credit of another borrower",
                ));
            }
            Some(credit.base())
        }
    };
    let file = file.changing(kind, base)?.releasing(released)?;
    if let Some(id) = released {
        // The collateral released secures this borrower's credit now (L3).
        let active = tx
            .collateral(id)
            .await?
            .filter(|item| item.borrower_id == file.borrower_id)
            .is_some_and(|item| item.status == CollateralStatus::Active);
        if !active {
            return Err(CommandError::invalid(
                "collateral_id names no active collateral of the borrower",
            ));
        }
    }
    let case = CreditCase::open(CaseId::generate(), file, actor.id().clone(), action_time());
    // The case's reference to its borrower is the existence check (one
    // statement for both); its other references are the actor and the
    // credit read above.
    tx.insert_case(&case).await.map_err(|e| match e {
        StoreError::NotFound(_) => {
            CommandError::invalid("borrower_id names no registered borrower")
        }
        other => other.into(),
    })?;
    let mut record = ctx.actor_record(actor, AuditAction::CaseCreated);
    record.case_id = Some(case.id);
    record.borrower_id = Some(case.file.borrower_id);
    record.data = case_audit_data(&case);
    ctx.audit(tx, &record).await?;
    Ok(case)
}

/// A partial edit of a file; `version` is the file version it applies to.
#[derive(Debug, Clone, Default)]
pub struct CaseEdit {
    pub version: i64,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub product: Option<String>,
    pub term_months: Option<i64>,
    pub purpose: Option<String>,
}

/// Edits a draft (or returned) file: a new file version that voids the
/// votes cast so far (V3). Only the case's own market unit edits it
/// (hardening finding 9).
pub async fn edit_case(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    edit: CaseEdit,
) -> CommandResult<CreditCase> {
    let action = CaseAction::new(AuditAction::CaseEdited);
    let now = action_time();
    let case = load_market_case(tx, actor, id, MarketUse::Change, now).await?;
    apply_change(ctx, tx, actor, case, action, now, |case, now| {
        let old = &case.file;
        let amount_text = edit
            .amount
            .unwrap_or_else(|| old.amount.amount().to_string());
        let currency = edit
            .currency
            .unwrap_or_else(|| old.amount.currency_code().to_owned());
        let amount =
            Money::parse(&amount_text, &currency).map_err(|e| DomainError::Invalid(e.0))?;
        let file = CaseFile::new(
            old.borrower_id,
            amount,
            edit.product.as_deref().unwrap_or(&old.product),
            edit.term_months.unwrap_or(i64::from(old.term_months)),
            edit.purpose.as_deref().unwrap_or(&old.purpose),
        )?;
        case.edit(actor.voter_at(now).as_ref(), file, edit.version, now)
    })
    .await
}

/// Returns a case to market for rework (V6); the votes are void.
pub async fn return_case(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    reason: &str,
) -> CommandResult<CreditCase> {
    let action = CaseAction::new(AuditAction::CaseReturned);
    change_case(ctx, tx, actor, id, action, |case, now| {
        case.return_for_rework(actor.voter_at(now).as_ref(), reason, now)
    })
    .await
}

/// Records the board resolution a related-party credit or a large exposure
/// needs before approval (V11), bound to the file version it covers.
pub async fn record_board_resolution(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    reference: &str,
    version: i64,
) -> CommandResult<CreditCase> {
    let action = CaseAction::under_rule(AuditAction::CaseBoardResolution, RuleId::V11);
    change_case(ctx, tx, actor, id, action, |case, now| {
        let voter = actor.voter_at(now);
        case.record_board_resolution(voter.as_ref(), reference, version, now)
    })
    .await
}

/// A board-level member of the back office confirms the board resolution
/// recorded for the current file version (V11); the recorder cannot, and
/// only a confirmed resolution lets an approval stand.
pub async fn confirm_board_resolution(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    version: i64,
) -> CommandResult<CreditCase> {
    let rules = rules_in_force(tx, action_time()).await?;
    let action = CaseAction::under_rule(AuditAction::CaseBoardResolutionConfirmed, RuleId::V11);
    change_case(ctx, tx, actor, id, action, |case, now| {
        let voter = actor.voter_at(now);
        case.confirm_board_resolution(voter.as_ref(), rules.competence(), version, now)
    })
    .await
}

/// Re-evaluates every open case of `borrowers` (V4, R2): a first vote below
/// the level a case now requires is void and the case goes back to market.
/// Returns the ids of the cases sent back.
pub async fn reevaluate_open_cases(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    borrowers: &[BorrowerId],
) -> CommandResult<Vec<CaseId>> {
    let now = chrono::Utc::now();
    let mut returned = Vec::new();
    let open = tx.open_cases_of(borrowers).await?;
    if open.is_empty() {
        return Ok(returned);
    }
    let rules = rules_in_force(tx, now).await?;
    for id in open {
        let Some(mut case) = tx.case(id).await? else {
            continue;
        };
        let facts = vote_facts_of_group(tx, &case, rules.clone(), &ctx.policy_hash, now).await?;
        let expected_revision = case.revision;
        if case.reevaluate(&facts, now)? {
            let action = CaseAction::under_rule(AuditAction::CaseReevaluated, RuleId::V4);
            let data = case_audit_data(&case);
            save_case(ctx, tx, actor, &case, expected_revision, action, data).await?;
            returned.push(case.id);
        }
    }
    Ok(returned)
}

/// One page of cases with `status`, after case `after`: at most `limit`
/// summaries, and the id to continue after if the page is full.
pub async fn cases_page(
    ctx: &Context,
    status: creditops_domain::CaseStatus,
    after: Option<CaseId>,
    limit: u32,
) -> CommandResult<(Vec<creditops_store::CaseSummary>, Option<CaseId>)> {
    let mut tx = ctx.store.begin_read().await?;
    let cases = tx.cases_by_status(status, after, limit).await?;
    Ok(with_next(cases, limit))
}

/// Back office signs off a condition precedent of an approval (L5), naming
/// the evidence; the evidence text stays out of the hashed body (A6).
pub async fn sign_off_condition(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CaseId,
    condition_id: u32,
    evidence: &str,
    note: Option<&str>,
) -> CommandResult<CreditCase> {
    let case = load_case(tx, id).await?;
    let expected_revision = case.revision;
    let now = action_time();
    let mut case = case;
    case.sign_off_condition(
        actor.voter_at(now).as_ref(),
        condition_id,
        evidence,
        note,
        now,
    )?;
    let mut data = case_audit_data(&case);
    data["condition"] = json!(condition_id);
    data["open_conditions"] = json!(case.open_conditions().count());
    let action = CaseAction::under_rule(AuditAction::CaseConditionSignedOff, RuleId::L5);
    save_case(ctx, tx, actor, &case, expected_revision, action, data).await?;
    Ok(case)
}
