//! Console sessions: server-side rows behind the web console's cookie,
//! revocable at once (logout ends a row; a request checks it every time).

use crate::{ConsoleSession, StoreResult};
use creditops_domain::Timestamp;

/// Web console sessions of one service.
#[async_trait::async_trait]
pub trait SessionTx: Send {
    /// Conflict if a session with the same token hash exists already.
    async fn insert_console_session(&mut self, session: &ConsoleSession) -> StoreResult<()>;
    /// The session whose token hashes to `token_hash`, ended or not.
    async fn console_session(&mut self, token_hash: &str) -> StoreResult<Option<ConsoleSession>>;
    /// Marks the session used at `at` (the idle timeout counts from here).
    async fn touch_console_session(&mut self, token_hash: &str, at: Timestamp) -> StoreResult<()>;
    /// Ends the session at `at` unless it has ended already.
    async fn end_console_session(&mut self, token_hash: &str, at: Timestamp) -> StoreResult<()>;
}
