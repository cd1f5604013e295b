//! Error codes shared by the APIs and the work envelope.

use serde::{Deserialize, Serialize};

/// A stable error code. Each has a number in 5001–5999 (used in the work
/// envelope and logs), an HTTP status and an OpenAI-style error `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    NotFound,
    ModelNotFound,
    PayloadTooLarge,
    /// The resource is not in a state that allows this (an approval
    /// already decided, say).
    Conflict,
    LlmNotConfigured,
    LlmFailed,
    BudgetExceeded,
    ToolFailed,
    StepLimit,
    StoreFailed,
    Timeout,
    Cancelled,
    Internal,
}

impl ErrorCode {
    pub fn number(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 5001,
            ErrorCode::Unauthorized => 5002,
            ErrorCode::NotFound => 5003,
            ErrorCode::ModelNotFound => 5004,
            ErrorCode::PayloadTooLarge => 5005,
            ErrorCode::Conflict => 5006,
            ErrorCode::LlmNotConfigured => 5010,
            ErrorCode::LlmFailed => 5011,
            ErrorCode::BudgetExceeded => 5012,
            ErrorCode::ToolFailed => 5020,
            ErrorCode::StepLimit => 5021,
            ErrorCode::StoreFailed => 5030,
            ErrorCode::Timeout => 5040,
            ErrorCode::Cancelled => 5041,
            ErrorCode::Internal => 5999,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound | ErrorCode::ModelNotFound => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Conflict => 409,
            ErrorCode::BudgetExceeded => 429,
            ErrorCode::LlmNotConfigured | ErrorCode::StoreFailed => 503,
            ErrorCode::LlmFailed | ErrorCode::ToolFailed => 502,
            ErrorCode::Timeout => 504,
            ErrorCode::StepLimit | ErrorCode::Cancelled | ErrorCode::Internal => 500,
        }
    }

    /// The `error.type` field of OpenAI's error object.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::NotFound
            | ErrorCode::ModelNotFound
            | ErrorCode::PayloadTooLarge
            | ErrorCode::Conflict => "invalid_request_error",
            ErrorCode::Unauthorized => "authentication_error",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::LlmNotConfigured | ErrorCode::LlmFailed | ErrorCode::ToolFailed | ErrorCode::Timeout => {
                "upstream_error"
            }
            ErrorCode::StepLimit | ErrorCode::StoreFailed | ErrorCode::Cancelled | ErrorCode::Internal => {
                "server_error"
            }
        }
    }

    /// The `error.code` string of OpenAI's error object.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "invalid_api_key",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Conflict => "conflict",
            ErrorCode::LlmNotConfigured => "llm_not_configured",
            ErrorCode::LlmFailed => "llm_failed",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::ToolFailed => "tool_failed",
            ErrorCode::StepLimit => "step_limit",
            ErrorCode::StoreFailed => "store_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Internal => "internal_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_in_range_and_unique() {
        let all = [
            ErrorCode::InvalidRequest,
            ErrorCode::Unauthorized,
            ErrorCode::NotFound,
            ErrorCode::ModelNotFound,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Conflict,
            ErrorCode::LlmNotConfigured,
            ErrorCode::LlmFailed,
            ErrorCode::BudgetExceeded,
            ErrorCode::ToolFailed,
            ErrorCode::StepLimit,
            ErrorCode::StoreFailed,
            ErrorCode::Timeout,
            ErrorCode::Cancelled,
            ErrorCode::Internal,
        ];
        let mut seen = std::collections::HashSet::new();
        for c in all {
            assert!((5001..=5999).contains(&c.number()), "{c:?}");
            assert!(seen.insert(c.number()), "duplicate number for {c:?}");
        }
    }
}
