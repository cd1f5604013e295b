//! The steward-store integration tests, as one binary.
//!
//! Every store test runs against a fresh SQLite database in a temporary
//! directory and, when `STEWARD_TEST_POSTGRES_URL` is set, against a fresh
//! PostgreSQL database created for it (see `suite/harness.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
