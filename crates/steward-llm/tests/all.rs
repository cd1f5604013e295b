//! Integration tests of the OpenAI-compatible provider against the scripted
//! server from `steward-testkit`. One binary; the tests live in `suite/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
