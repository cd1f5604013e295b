//! Integration tests of the HTTP front end: the router driven in process,
//! the real SQLite store, and a scripted OpenAI-compatible model server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
