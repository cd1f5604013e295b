#[macro_use]
pub mod harness;

mod connect;
mod conversations;
mod messages;
mod migrations;
