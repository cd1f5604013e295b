//! The work envelope: how work travels between the engine and workers,
//! in process or over a message broker.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    WorkRequest,
    WorkStatus,
    WorkResult,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub message_id: String,
    pub trace_id: String,
    pub request_id: String,
    pub message_type: MessageType,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub version: u32,
    pub payload: serde_json::Value,
}

/// The payload of an `error` envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeError {
    /// 5001–5999, from [`ErrorCode::number`].
    pub code: u16,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
    pub trace_id: String,
}

impl EnvelopeError {
    pub fn new(code: ErrorCode, message: impl Into<String>, trace_id: impl Into<String>) -> Self {
        EnvelopeError {
            code: code.number(),
            message: message.into(),
            details: serde_json::Value::Null,
            trace_id: trace_id.into(),
        }
    }
}
