//! What an audit event records as having happened: one closed vocabulary of
//! dotted names (`audit/SPEC.md` lists them), so a writer cannot invent or
//! misspell one.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! audit_actions {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)+) => {
        /// An action of the audit trail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AuditAction {
            $($(#[doc = $doc])* $variant,)+
        }

        impl AuditAction {
            /// Every action, in the order `audit/SPEC.md` lists them.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant),+];

            /// The dotted name stored in the body's `action` field.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)+
                }
            }
        }
    };
}

audit_actions! {
    /// A request refused by authentication, authorization or a business rule
    /// (S8); the body names the rule where one applies.
    RequestRefused = "request.refused",
    /// One minute's refusals of requests without a valid login at one
    /// service, as a count and the number of distinct client addresses (S8).
    UnauthenticatedRefusals = "request.unauthenticated",
    /// The rule set was written at first start.
    RulesInitialised = "rules.initialised",
    /// A process started serving: its version, services, policy and SoD
    /// hashes, rule-set version and configuration without secrets (A1).
    PlatformStarted = "platform.started",
    /// The per-service database roles were provisioned (`db provision`),
    /// with the policy and SoD hashes, the rule-set version and the
    /// configuration without secrets (A1).
    RolesProvisioned = "platform.roles_provisioned",
    /// A command-line command refused for a rule or bad input once the
    /// database was open, with the operator's operating-system user and host.
    CommandRefused = "cli.refused",
    /// `serve --dev` took an empty database for its demo organisation; the
    /// marker ties the database to the dev data directory.
    DevDatabaseCreated = "platform.dev_database_created",
    /// An organisational unit loaded by the operator's staff import.
    OrgUnitImported = "org_unit.imported",
    /// A staff member loaded by the operator's staff import into an empty
    /// directory (bootstrap), with the operator's operating-system user and
    /// host; a populated directory takes new people only as proposals.
    StaffImported = "staff.imported",
    /// The entitlement report (who holds which role and competence level,
    /// granted by which proposal) was read for the periodic review.
    EntitlementsReported = "staff.entitlements_reported",
    /// A change to roles, competences or rules proposed (S9).
    ChangeProposed = "change.proposed",
    /// A proposed change approved by a second person and applied (S9).
    ChangeApproved = "change.approved",
    /// A proposed change rejected (S9).
    ChangeRejected = "change.rejected",
    /// A borrower recorded by market.
    BorrowerCreated = "borrower.created",
    /// A borrower moved into or out of a group of connected clients.
    BorrowerGroupChanged = "borrower.group_changed",
    /// A group of connected clients created.
    GroupCreated = "group.created",
    /// A related party (V11) recorded.
    RelatedPartyRecorded = "related_party.recorded",
    /// A collateral item registered for a borrower (L3), with its kind and
    /// nominal amount; the description stays out of the body.
    CollateralRegistered = "collateral.registered",
    /// A value of collateral proposed by market (L3): it counts for nothing
    /// until back office values the item.
    CollateralValuationProposed = "collateral.valuation_proposed",
    /// An effective valuation of collateral recorded, or a proposal
    /// confirmed (L3).
    CollateralValued = "collateral.valued",
    /// The legal validity of collateral checked by back office (L3); the
    /// note stays out of the body.
    CollateralLegalChecked = "collateral.legal_checked",
    /// Collateral released by an approved collateral-release decision (L1,
    /// L3): it secures nothing from now on.
    CollateralReleased = "collateral.released",
    /// A credit case opened.
    CaseCreated = "case.created",
    /// The credit file of a case edited (voids earlier votes, V3).
    CaseEdited = "case.edited",
    /// A first vote cast (market).
    CaseFirstVote = "case.first_vote",
    /// A second vote cast (back office).
    CaseSecondVote = "case.second_vote",
    /// A case returned to market for rework.
    CaseReturned = "case.returned",
    /// A board resolution recorded for a related-party case (V11).
    CaseBoardResolution = "case.board_resolution",
    /// A board-level back-office member confirmed the recorded resolution (V11).
    CaseBoardResolutionConfirmed = "case.board_resolution_confirmed",
    /// An open case re-evaluated after its group or the rules changed.
    CaseReevaluated = "case.reevaluated",
    /// An approved credit disbursed (its reservation consumed).
    CaseDisbursed = "case.disbursed",
    /// Back office signed off a condition precedent of an approval (L5).
    CaseConditionSignedOff = "case.condition_signed_off",
    /// An approval made a credit or the next version of one (L1).
    CreditVersioned = "credit.versioned",
    /// Back office set a borrower's rating (L4).
    RatingSet = "rating.set",
    /// Market proposed a rating for back office to consider (L4).
    RatingProposed = "rating.proposed",
    /// An indicator of the early-warning catalogue hit: the borrower is on
    /// the watch list, with the value and the catalogue version (L7).
    EarlyWarningHit = "early_warning.hit",
    /// An indicator no longer hits: the watch-list entry is taken off (L7).
    EarlyWarningCleared = "early_warning.cleared",
    /// Negative information or a covenant breach raised on a borrower (L7).
    BorrowerFlagRaised = "borrower.flag_raised",
    /// A flag on a borrower cleared by back office (L7).
    BorrowerFlagCleared = "borrower.flag_cleared",
    /// A review of a borrower opened: scheduled or ad hoc (L6).
    ReviewOpened = "review.opened",
    /// An open review assigned to a back-office analyst (L6).
    ReviewAssigned = "review.assigned",
    /// A review passed its due date; back office is alerted (L6).
    ReviewOverdue = "review.overdue",
    /// Back office recorded the risk assessment of a review (L6).
    ReviewCompleted = "review.completed",
    /// Back office moved a borrower to another stage, with its plan (L8, L9).
    BorrowerStageChanged = "borrower.stage_changed",
    /// A milestone of a restructuring or workout plan met or missed (L9).
    PlanMilestoneUpdated = "plan.milestone_updated",
    /// Back office proposed a loan-loss provision (L10).
    ProvisionProposed = "provision.proposed",
    /// A second person of back office approved a provision (L10).
    ProvisionApproved = "provision.approved",
    /// A second person of back office rejected a provision (L10).
    ProvisionRejected = "provision.rejected",
    /// An approved provision above the threshold reported to the board (L10).
    ProvisionBoardAlert = "provision.board_alert",
    /// The credit file of a case changed by a document of the case or of its
    /// borrower (a new file version; voids earlier votes, V3, L2).
    CaseFileChanged = "case.file_changed",
    /// A document added to the credit file of a case or a borrower (L2): its
    /// type, SHA-256, size, media type and the document it replaces; never
    /// its content.
    DocumentAdded = "document.added",
    /// Key financials of a borrower recorded for a reporting date (L2).
    BorrowerFinancialsRecorded = "borrower.financials_recorded",
    /// A limit proposed by risk control (R8).
    LimitProposed = "limit.proposed",
    /// A proposed limit approved (R8).
    LimitApproved = "limit.approved",
    /// A proposed limit rejected (R8).
    LimitRejected = "limit.rejected",
    /// Headroom reserved by an approval (R5).
    RiskReserved = "risk.reserved",
    /// A reservation expired unused (R5).
    RiskReservationExpired = "risk.reservation_expired",
    /// A limit breach detected (R7).
    RiskBreach = "risk.breach",
    /// A limit breach resolved (R7).
    RiskBreachResolved = "risk.breach_resolved",
    /// Tier 1 capital recorded (R3).
    RiskCapitalRecorded = "risk.capital_recorded",
    /// A liquidity position recorded (R6).
    RiskLiquidityRecorded = "risk.liquidity_recorded",
    /// Exposures imported from core banking (R2).
    RiskExposuresImported = "risk.exposures_imported",
    /// The audit trail queried (A7).
    AuditQuery = "audit.query",
    /// A case's full history read by internal audit (A7).
    AuditCaseRead = "audit.case_read",
    /// Internal audit read staff, proposals, rule sets, borrowers, groups,
    /// related parties, limits or a case list (A7): what and how many, no
    /// personal data.
    AuditRecordsRead = "audit.records_read",
    /// The chain verified (A2).
    AuditVerify = "audit.verify",
    /// Business rows reconciled with their audit events (A1).
    AuditReconcile = "audit.reconcile",
    /// A signed checkpoint handed out (A2).
    AuditCheckpoint = "audit.checkpoint",
    /// An inclusion proof handed out (A2).
    AuditProof = "audit.proof",
    /// A consistency proof handed out (A2).
    AuditConsistency = "audit.consistency",
    /// A regulator export written (A5).
    AuditExported = "audit.exported",
    /// A person signed in at a service's web console (development login or
    /// the bank's identity provider), with the way they signed in.
    ConsoleSignedIn = "console.signed_in",
    /// A person signed out of a service's web console (the session ended).
    ConsoleSignedOut = "console.signed_out",
}

/// A text that is not an action of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an audit action")]
pub struct UnknownAuditAction(pub String);

impl FromStr for AuditAction {
    type Err = UnknownAuditAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| UnknownAuditAction(s.to_owned()))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_dotted_and_round_trip() {
        let names: BTreeSet<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for action in AuditAction::ALL {
            let name = action.as_str();
            let (area, what) = name.split_once('.').unwrap();
            assert!(!area.is_empty() && !what.is_empty(), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            );
            assert_eq!(name.parse::<AuditAction>(), Ok(*action));
        }
        assert!("vote.cast".parse::<AuditAction>().is_err());
    }

    /// The specification lists exactly the actions the code writes.
    #[test]
    fn the_spec_lists_every_action() {
        let spec = include_str!("../../../audit/SPEC.md");
        for action in AuditAction::ALL {
            assert!(
                spec.contains(&format!("| `{}` |", action.as_str())),
                "audit/SPEC.md does not list {action}"
            );
        }
    }
}
