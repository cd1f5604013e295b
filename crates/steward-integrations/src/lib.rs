//! Steward's integrations: implementations of the traits `steward-core`
//! defines, for the systems a home and a homelab run.
//!
//! So far: [`demo::DemoHome`], the simulated house used when no Home
//! Assistant is configured.

pub mod demo;
pub mod git_audit;

pub use demo::DemoHome;
