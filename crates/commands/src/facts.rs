//! Loads, inside the command's transaction, the facts outside a case that the
//! segregation rules check a vote against (V4, S5, S6, V11): the rule set in
//! force, the borrower's group of connected clients, its aggregated exposure,
//! relationship managers and related parties. One function, so every service
//! that votes or re-evaluates sees exactly the same facts.

use crate::{CommandError, CommandResult};
use creditops_domain::monitoring::Stage;
use creditops_domain::proposal::{InputChange, ProposalKind};
use creditops_domain::rules::in_force;
use creditops_domain::{
    BorrowerId, CreditCase, DomainError, RuleId, RuleSet, StaffId, Timestamp, UnitId, VoteFacts,
    aggregated_exposure,
};
use creditops_risk::REPORTING_CURRENCY;
use creditops_store::{ExposureScope, Tx};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

/// The rule set in force at `at`. Fails closed: without one no vote can be
/// evaluated, so the command is refused (503, the platform is misconfigured).
pub async fn rules_in_force(tx: &mut dyn Tx, at: Timestamp) -> CommandResult<RuleSet> {
    let sets = tx.rule_sets().await?;
    in_force(&sets, at).cloned().ok_or_else(no_rules_in_force)
}

/// The refusal when no rule set is in force (503).
pub fn no_rules_in_force() -> CommandError {
    CommandError::Unavailable("no rule set is in force, so no vote can be evaluated".into())
}

/// A borrower's group at some time (if any) and the borrowers whose
/// exposure is aggregated with its own: the group's members, the borrower
/// included, or the borrower alone.
pub type Membership = (Option<String>, Vec<BorrowerId>);

/// V4's aggregated exposure: the risk module's exposure of the group of
/// connected clients (reserved plus outstanding, disbursed here or imported
/// from core banking, each credit once by its source), the same figure the
/// risk gate and the limits see, plus the request (hardening finding 3).
async fn group_exposure(
    tx: &mut dyn Tx,
    members: &[BorrowerId],
    case: &CreditCase,
    rules: &RuleSet,
    at: Timestamp,
) -> CommandResult<Decimal> {
    let currency = &rules.competence().currency;
    if currency != REPORTING_CURRENCY {
        return Err(DomainError::rule(
            RuleId::V4,
            format!(
                "the competence order is kept in {currency} and exposures in {REPORTING_CURRENCY}; \
                 they cannot be aggregated without an exchange rate"
            ),
        )
        .into());
    }
    // The domain's aggregation checks the request's currency; a change of
    // an approved credit adds only what it adds to the credit (L1).
    aggregated_exposure(&[], &case.file.amount, currency)?;
    let request = case.file.added_exposure();
    let held = tx
        .exposure_total(&ExposureScope::Borrowers(members.to_vec()), at)
        .await?;
    held.checked_add(request).ok_or_else(|| {
        DomainError::rule(
            RuleId::V4,
            "the aggregated exposure is too large to evaluate",
        )
        .into()
    })
}

/// The borrower and, if it belongs to a group at `at`, every group member.
pub async fn group_members_of(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    at: Timestamp,
) -> CommandResult<Membership> {
    let group = tx.group_of(borrower, at).await?;
    members_in(tx, borrower, group, at).await
}

/// [`group_members_of`] for a borrower whose group at `at` was read already.
pub async fn members_in(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    group: Option<UnitId>,
    at: Timestamp,
) -> CommandResult<Membership> {
    match group {
        Some(group) => {
            let mut members = tx.group_members(&group, at).await?;
            if !members.contains(&borrower) {
                members.push(borrower);
            }
            Ok((Some(group.to_string()), members))
        }
        None => Ok((None, vec![borrower])),
    }
}

/// S6 (hardening finding 2): who proposed or approved a change of the
/// group membership of the borrower, of a member of its group, or into or
/// out of its group while the case was open. They moved the exposure the
/// case's competence level depends on, so they do not vote on it.
async fn group_changers(
    tx: &mut dyn Tx,
    case: &CreditCase,
    group_id: Option<&str>,
    members: &[BorrowerId],
) -> CommandResult<BTreeSet<StaffId>> {
    let mut changers = BTreeSet::new();
    let changes = tx
        .approved_proposals_since(ProposalKind::GroupMembership, case.created_at)
        .await?;
    for proposal in changes {
        let Ok(InputChange::GroupMembership {
            borrower_id,
            group_id: joined,
            from_group,
        }) = serde_json::from_value(proposal.payload.clone())
        else {
            return Err(CommandError::Internal(
                "a stored group membership proposal is not valid".into(),
            ));
        };
        let touches_group = [joined, from_group]
            .iter()
            .flatten()
            .any(|g| Some(g.as_str()) == group_id);
        if borrower_id == case.file.borrower_id || members.contains(&borrower_id) || touches_group {
            changers.insert(proposal.proposed_by);
            changers.extend(proposal.decided_by);
        }
    }
    Ok(changers)
}

/// Everything [`VoteFacts`] holds for `case` at `at`, the time of the vote,
/// given the rule set in force then ([`rules_in_force`]) and the borrower's
/// membership then ([`group_members_of`]).
pub async fn vote_facts(
    tx: &mut dyn Tx,
    case: &CreditCase,
    rules: RuleSet,
    (group_id, members): Membership,
    policy_hash: &str,
    at: Timestamp,
) -> CommandResult<VoteFacts> {
    let context = tx.vote_context(&members).await?;
    let exposure = group_exposure(tx, &members, case, &rules, at).await?;
    let group_changers = group_changers(tx, case, group_id.as_deref(), &members).await?;
    let rating = tx.current_rating(case.file.borrower_id).await?;
    let secured_value = secured_value(tx, &members, case, &rules, at).await?;
    let (stage, stage_changers) = stage_and_changers(tx, case).await?;
    Ok(VoteFacts {
        rules,
        aggregated_exposure: exposure,
        group_id,
        relationship_managers: context.relationship_managers,
        related_parties: context.related_parties,
        group_changers,
        policy_hash: policy_hash.to_owned(),
        // Evaluated by the command that may approve (R4), not for every vote.
        risk: None,
        rating,
        stage,
        stage_changers,
        secured_value,
    })
}

/// The borrower's stage now and who transferred it since the case opened
/// (S6). The latest transfer is the last of those since any time at or
/// before it, so the second read is needed only when it lies in the case's
/// lifetime: without transfers, or with older ones, one read.
async fn stage_and_changers(
    tx: &mut dyn Tx,
    case: &CreditCase,
) -> CommandResult<(Stage, BTreeSet<StaffId>)> {
    let borrower = case.file.borrower_id;
    let Some(latest) = tx.current_stage(borrower).await? else {
        return Ok((Stage::Normal, BTreeSet::new()));
    };
    let changers = if latest.decided_at >= case.created_at {
        tx.stage_transfers_since(borrower, case.created_at)
            .await?
            .into_iter()
            .map(|transfer| transfer.decided_by)
            .collect()
    } else {
        BTreeSet::new()
    };
    Ok((latest.to_stage, changers))
}

/// The collateral value after haircuts of the borrowers whose exposure is
/// aggregated (L3), after the decision: the collateral a release would
/// release counts no more (L1). What the unsecured part deducts.
/// Collateral counted in another currency than the exposure's secures
/// nothing here (fail closed: the unsecured part stays the exposure).
async fn secured_value(
    tx: &mut dyn Tx,
    members: &[BorrowerId],
    case: &CreditCase,
    rules: &RuleSet,
    at: Timestamp,
) -> CommandResult<Decimal> {
    let params = &rules.parameters.collateral;
    if params.currency != REPORTING_CURRENCY {
        return Ok(Decimal::ZERO);
    }
    let mut secured = Decimal::ZERO;
    for borrower in members {
        let mut items = tx.active_collateral_of(*borrower).await?;
        items.retain(|item| Some(item.collateral.id) != case.file.released);
        let value = creditops_domain::collateral::collateral_value_after_haircuts(
            &items,
            params,
            at.date_naive(),
        );
        secured = secured.saturating_add(value);
    }
    Ok(secured)
}
