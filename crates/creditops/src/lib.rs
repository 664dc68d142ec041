//! The creditops binary's library half: opening the configured store,
//! composing the services onto their listeners, the dev-mode demo
//! organisation, staff import and audit verification. `main.rs` is only the
//! command line; end-to-end tests start the same platform through [`start`].

pub mod demo;
pub mod export;
pub mod operator;
pub mod platform;
pub mod sequencer;
pub mod staff_import;

pub use platform::{
    ALL_SERVICES, Identity, PlatformConfig, PlatformError, RunningPlatform, open_store, start,
};

/// The default origin line of the audit log (the chain's genesis input).
pub const DEFAULT_AUDIT_ORIGIN: &str = "creditops/audit/v1";
