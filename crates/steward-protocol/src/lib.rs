//! Wire types shared by every part of Steward.
//!
//! This crate holds data only: the engine's submission/event protocol
//! ([`Op`], [`Event`]), the conversation model ([`Message`]), the
//! OpenAI-compatible API shapes ([`openai`]), the native API shapes
//! ([`api`]), the work envelope used for dispatch ([`envelope`]) and the
//! error codes ([`ErrorCode`]). Nothing here performs I/O.

pub mod api;
pub mod approval;
pub mod envelope;
mod error;
pub mod insight;
pub mod message;
pub mod openai;
mod protocol;
pub mod task;

pub use error::ErrorCode;
pub use message::{Message, Role, ToolCall, Usage};
pub use protocol::{ActivityEvent, Effect, Event, FinishReason, Op, TurnInput, UserTurn};
