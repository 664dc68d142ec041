//! Idempotency storage: the response a request key was answered with (V10).

use crate::{IdempotencyScope, StoreResult, StoredResponse};

/// Stored responses of idempotent requests (V10).
#[async_trait::async_trait]
pub trait IdempotencyTx: Send {
    async fn idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
    ) -> StoreResult<Option<StoredResponse>>;
    /// Conflict if a response for the same scope exists already.
    async fn save_idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
    ) -> StoreResult<()>;
}
