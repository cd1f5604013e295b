//! Test support for Steward.
//!
//! [`ScriptedLlm`] is an OpenAI-compatible chat-completions server that
//! answers from a script of [`Reply`]s instead of a model. Rust tests drive
//! it in-process; other processes (the Python end-to-end suite, the
//! benchmark) run the `steward-scripted-llm` binary and drive it through its
//! admin HTTP API:
//!
//! | Request | Effect |
//! |---|---|
//! | `POST /_script` with a JSON array of replies (or one reply) | appends to the script |
//! | `POST /_default` with a reply or `null` | sets the reply used when the script is empty |
//! | `GET /_requests` | the recorded requests, oldest first, as `[{method, path, headers, body}]` |
//! | `POST /_reset` | clears the script, the default and the records |
//!
//! The OpenAI side serves `POST /v1/chat/completions` (streamed when the
//! body says `"stream": true`, exactly in OpenAI's SSE format) and
//! `GET /v1/models`.

mod scripted;
mod wire;

pub use scripted::{RecordedRequest, Reply, ScriptedCall, ScriptedLlm, EXHAUSTED_MESSAGE, MODEL_ID};
