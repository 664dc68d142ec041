//! The risk-control engine (R1-R9): limits, large exposures, liquidity, the
//! pre-decision gate and the watcher's evaluation, as pure functions over
//! exact decimals. Services load the figures, call these, and persist.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod decision;
pub mod exposure;
pub mod gate;
pub mod lcr;
mod model;
pub mod reports;
pub mod watch;

pub use exposure::{Aggregates, UnitExposure};
pub use gate::{GateInput, gate};
pub use lcr::LiquidityView;
pub use model::*;

#[cfg(test)]
mod tests;
