//! Steward's integrations: implementations of the traits `steward-core`
//! defines, for the systems a home and a homelab run.
//!
//! So far: [`homeassistant::HomeAssistant`], the client of a real Home
//! Assistant, and [`demo::DemoHome`], the simulated house used when no Home
//! Assistant is configured.

pub mod ansible;
pub mod demo;
pub mod git_audit;
pub mod homeassistant;
pub mod mcp;
pub mod proxmox;
pub mod sandbox;
pub mod ssh;

pub use demo::DemoHome;
pub use homeassistant::HomeAssistant;
