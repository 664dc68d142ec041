//! Loads, inside the command's transaction, the facts outside a case that the
//! segregation rules check a vote against (V4, S5, S6, V11): the rule set in
//! force, the borrower's group of connected clients, its aggregated exposure,
//! relationship managers and related parties. One function, so every service
//! that votes or re-evaluates sees exactly the same facts.

use crate::{CommandError, CommandResult};
use creditops_domain::collateral::CollateralPosition;
use creditops_domain::monitoring::Stage;
use creditops_domain::proposal::{ChangeProposal, InputChange};
use creditops_domain::rules::in_force;
use creditops_domain::{
    BorrowerId, CreditCase, DomainError, RuleId, RuleSet, StaffId, Timestamp, UnitId, VoteFacts,
    aggregated_exposure,
};
use creditops_risk::REPORTING_CURRENCY;
use creditops_store::{GroupVoteInputs, Tx, VoteInputs, VoteInputsQuery};
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
/// from core banking, each credit once by its source; `held`), the same
/// figure the risk gate and the limits see, plus the request (hardening
/// finding 3).
fn group_exposure(held: Decimal, case: &CreditCase, rules: &RuleSet) -> CommandResult<Decimal> {
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
fn group_changers(
    changes: &[ChangeProposal],
    case: &CreditCase,
    group_id: Option<&str>,
    members: &[BorrowerId],
) -> CommandResult<BTreeSet<StaffId>> {
    let mut changers = BTreeSet::new();
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
            changers.insert(proposal.proposed_by.clone());
            changers.extend(proposal.decided_by.clone());
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
    membership: Membership,
    policy_hash: &str,
    at: Timestamp,
) -> CommandResult<VoteFacts> {
    // One read for all of them (see `VoteTx`): a vote is the busiest
    // command, and each part would be a round trip of its own.
    let inputs = tx
        .vote_inputs(&VoteInputsQuery {
            borrower: case.file.borrower_id,
            members: &membership.1,
            since: case.created_at,
            at,
        })
        .await?;
    facts_from(inputs, case, rules, membership, policy_hash, at)
}

/// [`vote_facts`] with the borrower's membership at `at` read in the same
/// statement: for a vote that locks nothing first (an approval reads its
/// group under the risk locks, see `lock_approval`).
pub async fn vote_facts_of_group(
    tx: &mut dyn Tx,
    case: &CreditCase,
    rules: RuleSet,
    policy_hash: &str,
    at: Timestamp,
) -> CommandResult<VoteFacts> {
    let GroupVoteInputs {
        group,
        members,
        inputs,
    } = tx
        .vote_inputs_of_group(case.file.borrower_id, case.created_at, at)
        .await?;
    let membership = (group.map(|g| g.to_string()), members);
    facts_from(inputs, case, rules, membership, policy_hash, at)
}

/// The facts of a vote from what its read found.
fn facts_from(
    inputs: VoteInputs,
    case: &CreditCase,
    rules: RuleSet,
    (group_id, members): Membership,
    policy_hash: &str,
    at: Timestamp,
) -> CommandResult<VoteFacts> {
    let exposure = group_exposure(inputs.exposure, case, &rules)?;
    let group_changers =
        group_changers(&inputs.group_changes, case, group_id.as_deref(), &members)?;
    let secured_value = secured_value(&inputs.collateral, &members, case, &rules, at);
    let (stage, stage_changers) = match inputs.latest_stage {
        Some(latest) => (
            latest.to_stage,
            inputs
                .stage_transfers
                .into_iter()
                .map(|transfer| transfer.decided_by)
                .collect(),
        ),
        None => (Stage::Normal, BTreeSet::new()),
    };
    Ok(VoteFacts {
        rules,
        aggregated_exposure: exposure,
        group_id,
        relationship_managers: inputs.context.relationship_managers,
        related_parties: inputs.context.related_parties,
        group_changers,
        policy_hash: policy_hash.to_owned(),
        // Evaluated by the command that may approve (R4), not for every vote.
        risk: None,
        rating: inputs.rating,
        stage,
        // Who transferred the borrower's stage since the case opened (S6).
        stage_changers,
        secured_value,
    })
}

/// The collateral value after haircuts of the borrowers whose exposure is
/// aggregated (L3), after the decision: the collateral a release would
/// release counts no more (L1). What the unsecured part deducts.
/// Collateral counted in another currency than the exposure's secures
/// nothing here (fail closed: the unsecured part stays the exposure).
fn secured_value(
    collateral: &[CollateralPosition],
    members: &[BorrowerId],
    case: &CreditCase,
    rules: &RuleSet,
    at: Timestamp,
) -> Decimal {
    let params = &rules.parameters.collateral;
    if params.currency != REPORTING_CURRENCY {
        return Decimal::ZERO;
    }
    let mut secured = Decimal::ZERO;
    for borrower in members {
        let items: Vec<CollateralPosition> = collateral
            .iter()
            .filter(|item| item.collateral.borrower_id == *borrower)
            .filter(|item| Some(item.collateral.id) != case.file.released)
            .cloned()
            .collect();
        let value = creditops_domain::collateral::collateral_value_after_haircuts(
            &items,
            params,
            at.date_naive(),
        );
        secured = secured.saturating_add(value);
    }
    secured
}
