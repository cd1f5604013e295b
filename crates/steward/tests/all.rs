//! End-to-end tests of the `steward` binary: real processes, a real SQLite
//! file, and a scripted OpenAI-compatible model server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
