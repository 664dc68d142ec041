//! Staff directory storage: units, staff members and their dated histories.

use crate::StoreResult;
use creditops_domain::{
    CompetenceGrant, HistoryCut, RoleAssignment, Side, StaffId, StaffMember, StaffStatus,
    UnitAssignment, UnitId,
};
use uuid::Uuid;

/// The staff directory: organisational units and the people with their dated unit, role and competence histories.
#[async_trait::async_trait]
pub trait StaffTx: Send {
    async fn upsert_unit(&mut self, unit: &UnitId, name: &str, side: Side) -> StoreResult<()>;
    /// The side an organisational unit belongs to, if the unit exists.
    async fn unit_side(&mut self, unit: &UnitId) -> StoreResult<Option<Side>>;
    /// Inserts a person with their unit and role history outside any
    /// proposal (the bootstrap of an empty directory, as the schema's
    /// owner). Conflict if the id exists.
    async fn insert_staff(&mut self, member: &StaffMember) -> StoreResult<()> {
        self.onboard_staff(member, None).await
    }
    /// Inserts a person as [`StaffTx::insert_staff`] does, each role and
    /// competence row under the approved onboarding `proposal` (S9).
    async fn onboard_staff(
        &mut self,
        member: &StaffMember,
        proposal: Option<Uuid>,
    ) -> StoreResult<()>;
    async fn staff_member(&mut self, id: &StaffId) -> StoreResult<Option<StaffMember>>;
    async fn set_staff_status(&mut self, id: &StaffId, status: StaffStatus) -> StoreResult<()>;
    /// Appends a dated role assignment to a person's history (NotFound if
    /// unknown), under the approved change `proposal` it applies (S9; on
    /// PostgreSQL a service role's row needs one, see the migrations).
    async fn add_role_assignment(
        &mut self,
        id: &StaffId,
        role: &RoleAssignment,
        proposal: Option<Uuid>,
    ) -> StoreResult<()>;
    /// Appends a dated competence grant to a person's history (NotFound if
    /// unknown), under the approved change `proposal` it applies (S9).
    async fn add_competence_grant(
        &mut self,
        id: &StaffId,
        grant: &CompetenceGrant,
        proposal: Option<Uuid>,
    ) -> StoreResult<()>;
    /// Appends a dated unit assignment to a person's history (NotFound if
    /// unknown); the side recorded is the unit's (Conflict otherwise).
    async fn add_unit_assignment(&mut self, id: &StaffId, unit: &UnitAssignment)
    -> StoreResult<()>;
    /// Ends one entry of a person's history (S4): sets its `valid_to` and
    /// nothing else. NotFound if the entry is not the one the cut names.
    async fn cut_history(&mut self, id: &StaffId, cut: &HistoryCut) -> StoreResult<()>;
    /// Every staff id, sorted (for the admin directory and tests).
    async fn staff_ids(&mut self) -> StoreResult<Vec<StaffId>>;
}
