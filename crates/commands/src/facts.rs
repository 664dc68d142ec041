//! Loads, inside the command's transaction, the facts outside a case that the
//! segregation rules check a vote against (V4, S5, S6, V11): the rule set in
//! force, the borrower's group of connected clients, its aggregated exposure,
//! relationship managers and related parties. One function, so every service
//! that votes or re-evaluates sees exactly the same facts.

use crate::{CommandError, CommandResult};
use creditops_domain::rules::in_force;
use creditops_domain::{
    BorrowerId, CreditCase, RuleSet, Timestamp, VoteFacts, aggregated_exposure,
};
use creditops_store::Tx;

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

/// The borrower and, if it belongs to a group at `at`, every group member.
pub async fn group_members_of(
    tx: &mut dyn Tx,
    borrower: BorrowerId,
    at: Timestamp,
) -> CommandResult<Membership> {
    match tx.group_of(borrower, at).await? {
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

/// Everything [`VoteFacts`] holds for `case` at the time of the vote, given
/// the rule set in force then ([`rules_in_force`]) and the borrower's
/// membership then ([`group_members_of`]).
pub async fn vote_facts(
    tx: &mut dyn Tx,
    case: &CreditCase,
    rules: RuleSet,
    (group_id, members): Membership,
    policy_hash: &str,
) -> CommandResult<VoteFacts> {
    let context = tx.vote_context(&members).await?;
    let exposure = aggregated_exposure(
        &context.approved_amounts,
        &case.file.amount,
        &rules.competence().currency,
    )?;
    Ok(VoteFacts {
        rules,
        aggregated_exposure: exposure,
        group_id,
        relationship_managers: context.relationship_managers,
        related_parties: context.related_parties,
        policy_hash: policy_hash.to_owned(),
        // Evaluated by the command that may approve (R4), not for every vote.
        risk: None,
    })
}
