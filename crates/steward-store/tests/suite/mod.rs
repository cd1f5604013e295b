#[macro_use]
pub mod harness;

mod audit;
mod connect;
mod conversations;
mod messages;
mod migrations;
