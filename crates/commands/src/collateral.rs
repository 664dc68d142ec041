//! Collateral (L3): market registers collateral and proposes values (or, at
//! or below the rule set's threshold, values it); back office values above
//! the threshold, confirms proposals and checks legal validity. Reads show
//! per item the effective value, the haircut, the value after haircut and
//! the next revaluation date, and the borrower's total secured value.

use crate::facts::rules_in_force;
use crate::{Actor, CommandError, CommandResult, Context, action_time};
use chrono::NaiveDate;
use creditops_audit::AuditAction;
use creditops_domain::collateral::{
    Collateral, CollateralKind, CollateralParameters, CollateralPosition, CollateralStatus,
    LegalCheck, LegalResult, Valuation, ValuationRequest, ValuationStatus, check_valuation_date,
    confirm_proposal, due_cutoff, may_check_legal_validity, next_revaluation, revaluation_due,
    valuation_status, value_after_haircut,
};
use creditops_domain::text::required_text;
use creditops_domain::{BorrowerId, CollateralId, Money, RuleId, Side, Timestamp, ValuationId};
use creditops_store::Tx;
use rust_decimal::Decimal;
use serde_json::json;

/// Longest description of an item, valuer or method name, legal note.
const MAX_DESCRIPTION: usize = 1000;
const MAX_NAME: usize = 200;

/// A valuation as typed: value, date, who valued it and how.
#[derive(Debug, Clone)]
pub struct NewValuation {
    pub value: Money,
    pub valuation_date: NaiveDate,
    pub valuer: String,
    pub method: String,
}

/// A collateral item to register, with an optional proposed valuation.
#[derive(Debug, Clone)]
pub struct NewCollateral {
    pub borrower_id: BorrowerId,
    pub kind: CollateralKind,
    pub nominal: Money,
    pub description: String,
    pub proposed_valuation: Option<NewValuation>,
}

/// One item as the lists show it.
#[derive(Debug, Clone)]
pub struct CollateralLine {
    pub position: CollateralPosition,
    /// Haircut of the item's kind in percent.
    pub haircut: Decimal,
    /// The effective value less the haircut, in the currency of the rule
    /// set; zero unless the item counts (effective valuation and a valid
    /// legal check).
    pub value_after_haircut: Decimal,
    /// `None` when there is no effective valuation (a valuation is due now).
    pub next_revaluation: Option<NaiveDate>,
    pub revaluation_due: bool,
}

/// A borrower's active collateral and what it secures.
#[derive(Debug, Clone)]
pub struct BorrowerCollateral {
    pub borrower_id: BorrowerId,
    pub items: Vec<CollateralLine>,
    /// Sum of the items' values after haircuts (L3).
    pub secured_value: Decimal,
    pub currency: String,
    /// The date the values and due dates are computed for.
    pub as_of: NaiveDate,
}

fn line(
    position: CollateralPosition,
    params: &CollateralParameters,
    today: NaiveDate,
) -> CollateralLine {
    CollateralLine {
        haircut: params.haircut(position.collateral.kind),
        value_after_haircut: value_after_haircut(&position, params, today),
        next_revaluation: next_revaluation(&position, params),
        revaluation_due: revaluation_due(&position, params, today),
        position,
    }
}

/// The actor's side now; a person without a unit values nothing (fail
/// closed, L3).
fn side_of(actor: &Actor, now: Timestamp) -> CommandResult<Side> {
    actor.voter_at(now).map(|v| v.side).ok_or_else(|| {
        CommandError::forbidden_under(RuleId::L3, "the caller belongs to no unit at this time")
    })
}

fn checked_valuation(input: &NewValuation, today: NaiveDate) -> CommandResult<NewValuation> {
    check_valuation_date(input.valuation_date, today)?;
    Ok(NewValuation {
        value: input.value,
        valuation_date: input.valuation_date,
        valuer: required_text("valuer", &input.valuer, MAX_NAME)?,
        method: required_text("method", &input.method, MAX_NAME)?,
    })
}

async fn load_position(tx: &mut dyn Tx, id: CollateralId) -> CommandResult<CollateralPosition> {
    tx.collateral_position(id)
        .await?
        .ok_or_else(|| CommandError::not_found("no collateral with that id"))
}

/// Stores a valuation and audits it (proposed or valued).
async fn store_valuation(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    collateral: &Collateral,
    valuation: &Valuation,
) -> CommandResult<()> {
    tx.insert_valuation(valuation).await?;
    let action = match valuation.status {
        ValuationStatus::Proposed => AuditAction::CollateralValuationProposed,
        ValuationStatus::Effective => AuditAction::CollateralValued,
    };
    let mut record = ctx.actor_record(actor, action);
    record.borrower_id = Some(collateral.borrower_id);
    record.rule = Some(RuleId::L3);
    // The valuer's name and the method text stay out of the hashed body.
    record.data = json!({
        "collateral_id": collateral.id,
        "valuation_id": valuation.id,
        "value": valuation.value.amount().to_string(),
        "currency": valuation.value.currency_code(),
        "valuation_date": valuation.valuation_date,
        "side": valuation.side.as_str(),
        "status": valuation.status,
    });
    ctx.audit(tx, &record).await?;
    if valuation.status == ValuationStatus::Effective {
        // L7: a fall in value is an early-warning input.
        let borrower = [collateral.borrower_id];
        crate::monitoring::evaluate_early_warning(
            ctx,
            tx,
            Some(&borrower),
            "collateral valued",
            valuation.recorded_at,
        )
        .await?;
    }
    Ok(())
}

/// Registers a collateral item for a borrower, with an optional proposed
/// valuation (L3): a proposal counts for nothing until back office values
/// the item.
pub async fn register_collateral(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    input: NewCollateral,
) -> CommandResult<CollateralLine> {
    let now = action_time();
    let today = now.date_naive();
    let description = required_text("description", &input.description, MAX_DESCRIPTION)?;
    let proposed = input
        .proposed_valuation
        .as_ref()
        .map(|v| checked_valuation(v, today))
        .transpose()?;
    if tx.borrower(input.borrower_id).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    let side = side_of(actor, now)?;
    let params = rules_in_force(tx, now).await?.parameters.collateral;
    let collateral = Collateral {
        id: CollateralId::generate(),
        borrower_id: input.borrower_id,
        kind: input.kind,
        nominal: input.nominal,
        description,
        status: CollateralStatus::Active,
        registered_by: actor.id().clone(),
        registered_at: now,
    };
    let mut position = CollateralPosition {
        collateral: collateral.clone(),
        effective: None,
        proposed: None,
        legal_check: None,
    };
    let proposal = match proposed {
        Some(v) => {
            let status = valuation_status(
                side,
                ValuationRequest::Propose,
                &position,
                &v.value,
                &params,
            )?;
            Some(Valuation {
                id: ValuationId::generate(),
                collateral_id: collateral.id,
                value: v.value,
                valuation_date: v.valuation_date,
                valuer: v.valuer,
                method: v.method,
                recorded_by: actor.id().clone(),
                recorded_at: now,
                side,
                status,
                confirmed_by: None,
                confirmed_at: None,
            })
        }
        None => None,
    };
    tx.insert_collateral(&collateral).await?;
    let mut record = ctx.actor_record(actor, AuditAction::CollateralRegistered);
    record.borrower_id = Some(collateral.borrower_id);
    record.rule = Some(RuleId::L3);
    record.data = json!({
        "collateral_id": collateral.id,
        "kind": collateral.kind,
        "nominal": collateral.nominal.amount().to_string(),
        "currency": collateral.nominal.currency_code(),
    });
    ctx.audit(tx, &record).await?;
    if let Some(proposal) = proposal {
        store_valuation(ctx, tx, actor, &collateral, &proposal).await?;
        position.proposed = Some(proposal);
    }
    Ok(line(position, &params, today))
}

/// Records a valuation of an item (L3). `request` is what the caller asks
/// for: market proposes, or values effectively at or below the threshold;
/// back office values effectively.
pub async fn record_valuation(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CollateralId,
    input: NewValuation,
    request: ValuationRequest,
) -> CommandResult<Valuation> {
    let now = action_time();
    let input = checked_valuation(&input, now.date_naive())?;
    let position = load_position(tx, id).await?;
    let side = side_of(actor, now)?;
    let params = rules_in_force(tx, now).await?.parameters.collateral;
    let status = valuation_status(side, request, &position, &input.value, &params)?;
    let valuation = Valuation {
        id: ValuationId::generate(),
        collateral_id: id,
        value: input.value,
        valuation_date: input.valuation_date,
        valuer: input.valuer,
        method: input.method,
        recorded_by: actor.id().clone(),
        recorded_at: now,
        side,
        status,
        confirmed_by: None,
        confirmed_at: None,
    };
    store_valuation(ctx, tx, actor, &position.collateral, &valuation).await?;
    Ok(valuation)
}

/// Back office confirms a market proposal: it becomes the effective
/// valuation (L3).
pub async fn confirm_valuation(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CollateralId,
    valuation_id: ValuationId,
) -> CommandResult<Valuation> {
    let now = action_time();
    let position = load_position(tx, id).await?;
    let valuation = tx
        .valuation(valuation_id)
        .await?
        .filter(|v| v.collateral_id == id)
        .ok_or_else(|| CommandError::not_found("no valuation with that id for this collateral"))?;
    let side = side_of(actor, now)?;
    confirm_proposal(side, &valuation, &position.collateral)?;
    if valuation.valuation_date > now.date_naive() {
        return Err(CommandError::invalid(
            "the proposal's valuation date lies in the future",
        ));
    }
    tx.confirm_valuation(valuation_id, actor.id(), now).await?;
    let confirmed = Valuation {
        status: ValuationStatus::Effective,
        confirmed_by: Some(actor.id().clone()),
        confirmed_at: Some(now),
        ..valuation
    };
    let mut record = ctx.actor_record(actor, AuditAction::CollateralValued);
    record.borrower_id = Some(position.collateral.borrower_id);
    record.rule = Some(RuleId::L3);
    record.data = json!({
        "collateral_id": id,
        "valuation_id": confirmed.id,
        "value": confirmed.value.amount().to_string(),
        "currency": confirmed.value.currency_code(),
        "valuation_date": confirmed.valuation_date,
        "side": side.as_str(),
        "status": confirmed.status,
        "confirmed_proposal_of": confirmed.recorded_by,
    });
    ctx.audit(tx, &record).await?;
    let borrower = [position.collateral.borrower_id];
    crate::monitoring::evaluate_early_warning(ctx, tx, Some(&borrower), "collateral valued", now)
        .await?;
    Ok(confirmed)
}

/// Back office records the legal validity of an item (L3).
pub async fn record_legal_check(
    ctx: &Context,
    tx: &mut dyn Tx,
    actor: &Actor,
    id: CollateralId,
    result: LegalResult,
    note: &str,
) -> CommandResult<LegalCheck> {
    let now = action_time();
    let note = required_text("note", note, MAX_DESCRIPTION)?;
    let position = load_position(tx, id).await?;
    let side = side_of(actor, now)?;
    may_check_legal_validity(side, &position.collateral)?;
    let check = LegalCheck {
        collateral_id: id,
        result,
        note,
        checked_by: actor.id().clone(),
        checked_at: now,
    };
    tx.insert_legal_check(&check).await?;
    let mut record = ctx.actor_record(actor, AuditAction::CollateralLegalChecked);
    record.borrower_id = Some(position.collateral.borrower_id);
    record.rule = Some(RuleId::L3);
    record.data = json!({"collateral_id": id, "result": result});
    ctx.audit(tx, &record).await?;
    Ok(check)
}

/// A borrower's active collateral with what each item secures (L3).
pub async fn borrower_collateral(
    ctx: &Context,
    borrower_id: BorrowerId,
) -> CommandResult<BorrowerCollateral> {
    let now = action_time();
    let today = now.date_naive();
    let mut tx = ctx.store.begin_read().await?;
    if tx.borrower(borrower_id).await?.is_none() {
        return Err(CommandError::not_found("no borrower with that id"));
    }
    let params = rules_in_force(&mut *tx, now).await?.parameters.collateral;
    let items: Vec<_> = tx
        .active_collateral_of(borrower_id)
        .await?
        .into_iter()
        .map(|p| line(p, &params, today))
        .collect();
    let secured_value = params.in_currency(items.iter().fold(Decimal::ZERO, |sum, item| {
        sum.saturating_add(item.value_after_haircut)
    }));
    Ok(BorrowerCollateral {
        borrower_id,
        items,
        secured_value,
        currency: params.currency,
        as_of: today,
    })
}

/// Active collateral due for (re)valuation on `date` (today by default):
/// never validly valued, or valued `revaluation_months` or longer ago (L3);
/// at most `limit`, the longest overdue first.
pub async fn revaluations_due(
    ctx: &Context,
    date: Option<NaiveDate>,
    limit: u32,
) -> CommandResult<(NaiveDate, Vec<CollateralLine>)> {
    let now = action_time();
    let date = date.unwrap_or_else(|| now.date_naive());
    let mut tx = ctx.store.begin_read().await?;
    let params = rules_in_force(&mut *tx, now).await?.parameters.collateral;
    let cutoffs: Vec<_> = CollateralKind::ALL
        .iter()
        .map(|kind| (*kind, due_cutoff(*kind, &params, date)))
        .collect();
    let mut items: Vec<_> = tx
        .revaluation_candidates(&cutoffs, limit)
        .await?
        .into_iter()
        .filter(|p| revaluation_due(p, &params, date))
        .map(|p| line(p, &params, date))
        .collect();
    items.sort_by_key(|l| (l.next_revaluation, l.position.collateral.id));
    Ok((date, items))
}
