//! One error type for every route, rendered as OpenAI's error object.

use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::FutureExt;
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

impl From<steward_core::StoreError> for ApiError {
    fn from(e: steward_core::StoreError) -> Self {
        ApiError::from(EngineError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = self.code.as_str(), error = %self.message, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        // These are answered before the request body is read, and the server
        // then closes the connection; saying so keeps pooling clients from
        // sending their next request into a closed socket.
        if matches!(self.code, ErrorCode::Unauthorized | ErrorCode::PayloadTooLarge) {
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        response
    }
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {method} {}", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let e = ApiError::invalid(format!("{method} is not allowed on {}", uri.path()));
    (StatusCode::METHOD_NOT_ALLOWED, Json(e.body())).into_response()
}

/// A bug in a handler becomes a 500 in the usual error shape instead of a
/// dropped connection.
pub async fn catch_panic(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("a request handler panicked");
            ApiError::new(ErrorCode::Internal, "internal error: the request could not be handled; see the server log")
                .into_response()
        }
    }
}
