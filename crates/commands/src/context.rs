//! What every command runs with: the store, the facts of the deployment a
//! decision records, and the person who acts.

use crate::CommandResult;
use chrono::{SubsecRound, Utc};
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_domain::{Role, RuleSet, SodMatrix, StaffId, StaffMember, Timestamp, Voter};
use creditops_store::{Store, Tx, append_record};
use std::sync::Arc;
use std::time::Duration;

/// The environment of a command. Cheap to clone: a command that runs inside
/// a transaction somebody else opened (idempotent execution) owns a copy.
#[derive(Clone)]
pub struct Context {
    /// The service the command runs in, recorded in every audit event.
    pub service: &'static str,
    pub store: Arc<dyn Store>,
    /// Hash over every service policy and the SoD matrix in force, recorded
    /// in each decision (V9).
    pub policy_hash: String,
    /// The SoD matrix, checked at every role assignment (S3).
    pub sod: Arc<SodMatrix>,
    /// How long an approval may wait for a liquidity claim (R5, R6).
    pub claim_timeout: Duration,
    /// Who ran the command outside the services (the operating-system user
    /// and host of a command-line run), added to every audit event it
    /// writes; `None` over HTTP, where the token names the person.
    pub operator: Option<serde_json::Value>,
}

impl Context {
    /// A new audit record of the platform itself (no actor), stamped `at`.
    pub fn record(&self, action: AuditAction, at: Timestamp) -> AuditRecord {
        AuditRecord::new(self.service, action, Outcome::Ok, at)
    }

    /// A new audit record attributed to `actor`, stamped now.
    pub fn actor_record(&self, actor: &Actor, action: AuditAction) -> AuditRecord {
        let mut record = AuditRecord::new(self.service, action, Outcome::Ok, Utc::now());
        record.actor = Some(actor.member.id.to_string());
        record.request_id = Some(actor.request_id.clone());
        record
    }

    /// Appends `record` in `tx`; a failure fails the whole command (A1).
    pub async fn audit(&self, tx: &mut dyn Tx, record: &AuditRecord) -> CommandResult<()> {
        match (&self.operator, &record.data) {
            (Some(operator), serde_json::Value::Object(data)) => {
                let mut record = record.clone();
                let mut data = data.clone();
                data.insert("operator".into(), operator.clone());
                record.data = serde_json::Value::Object(data);
                Ok(append_record(tx, &record).await?)
            }
            _ => Ok(append_record(tx, record).await?),
        }
    }
}

/// The authenticated person behind a command, as the staff directory knows
/// them at the time of the request (S2, S4).
#[derive(Debug, Clone)]
pub struct Actor {
    pub member: StaffMember,
    pub roles: Vec<Role>,
    pub at: Timestamp,
    /// Correlates the command's audit events with the request.
    pub request_id: String,
    /// The rule sets committed when the directory was read for this actor,
    /// where the process held them (see `creditops_store::RuleSetCache`):
    /// the request's command runs under them instead of reading them again.
    /// `None` where the command reads them itself.
    pub rule_sets: Option<Arc<Vec<RuleSet>>>,
    /// Where this actor is a lookup the process kept (see
    /// `creditops_store::AuthorityCache`), the authority version it was
    /// read at: the command's commit checks that it has not moved. `None`
    /// for an actor read for this request.
    pub authority: Option<u64>,
}

impl Actor {
    pub fn id(&self) -> &StaffId {
        &self.member.id
    }

    /// The person's unit and side at `at` (the time of the action).
    pub fn voter_at(&self, at: Timestamp) -> Option<Voter> {
        self.member.voter_at(at)
    }
}

/// The time of an action, at the precision both stores keep (microseconds):
/// the answer to a command then shows the same times (votes, decisions,
/// limit decisions, proposals, ...) as every later read of the stored
/// record (V9, V10). Every command that stores a time takes it from here.
pub fn action_time() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}
