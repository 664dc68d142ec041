//! Limit storage: proposed and decided limit versions (R1, R3, R8).

use crate::StoreResult;
use creditops_risk::{Limit, LimitStatus, LimitSubject, LimitVersion};

/// Limit versions and the limits in force (R1, R3, R8).
#[async_trait::async_trait]
pub trait LimitTx: Send {
    /// Stores a proposed limit version (Conflict if its subject has that
    /// version already).
    async fn insert_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()>;
    /// Stores a proposed limit version as its subject's next one, in one
    /// statement: one more than the highest version the subject has (any
    /// status), whatever `limit.version` says; returns the version stored.
    /// `None`, and nothing stored, if a borrower or group subject names no
    /// registered borrower or group. Conflict if a concurrent proposal took
    /// that version first.
    async fn insert_next_limit_version(&mut self, limit: &LimitVersion)
    -> StoreResult<Option<i64>>;
    async fn limit_version(&mut self, id: uuid::Uuid) -> StoreResult<Option<LimitVersion>>;
    /// Records the decision on a pending version; Conflict if it is not
    /// pending any more (somebody else decided first).
    async fn decide_limit_version(&mut self, limit: &LimitVersion) -> StoreResult<()>;
    /// Limit versions, oldest proposal first, optionally narrowed.
    async fn limit_versions(
        &mut self,
        status: Option<LimitStatus>,
        subject: Option<&LimitSubject>,
    ) -> StoreResult<Vec<LimitVersion>>;
    /// The highest version number a subject has (any status), 0 if none.
    async fn latest_limit_version(&mut self, subject: &LimitSubject) -> StoreResult<i64>;
    /// The limits in force: for each subject its approved version with the
    /// highest version number. `None` means every subject.
    async fn limits_in_force(
        &mut self,
        subjects: Option<&[LimitSubject]>,
    ) -> StoreResult<Vec<Limit>>;
    /// Takes the exclusive hold on the risk subject `lock` (as
    /// [`crate::RiskTx::lock_risk_subjects`] does) and reads the limits in
    /// force of `subjects`, in one round trip where the backend can. The
    /// read may see the limits as they were just before the hold was
    /// granted: only for limits the hold does not protect (under the shared
    /// risk lock: sector and country limits). Every later statement of the
    /// transaction runs with the hold.
    async fn lock_subject_reading_limits(
        &mut self,
        lock: &str,
        subjects: &[LimitSubject],
    ) -> StoreResult<Vec<Limit>>;
}
