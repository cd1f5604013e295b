//! One error type for every route, rendered as OpenAI's error object.

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_core::EngineError;
use steward_protocol::openai::ErrorResponse;
use steward_protocol::ErrorCode;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), param: None }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn body(&self) -> ErrorResponse {
        ErrorResponse::new(self.code, self.message.clone(), self.param.clone())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        let param = match &e {
            EngineError::UnknownAgent { .. } => Some("model".to_string()),
            EngineError::InvalidInput(_) => Some("messages".to_string()),
            EngineError::ConversationNotFound(_) | EngineError::Store(_) => None,
        };
        ApiError { code, message: e.to_string(), param }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = self.code.as_str(), error = %self.message, "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {method} {}", uri.path()))
}
