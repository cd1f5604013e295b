#[macro_use]
pub mod harness;

mod approvals;
mod audit;
mod connect;
mod conversations;
mod entities;
mod insights;
mod messages;
mod migrations;
mod snapshots;
mod tasks;
