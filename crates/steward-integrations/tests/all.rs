//! Integration tests of steward-integrations, compiled as one binary.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
