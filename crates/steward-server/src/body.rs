//! JSON bodies with a size limit and errors that say what is wrong.

use axum::body::Body;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use steward_protocol::ErrorCode;

use crate::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes (server.max_body_bytes)"),
        )
    };
    if let Some(len) = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) {
        if len.parse::<u64>().map(|n| n > limit as u64).unwrap_or(false) {
            return Err(too_large());
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` reports a length-limit error through its source chain.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        ApiError::invalid(format!("could not read the request body: {e}"))
    })
}

/// Parses a JSON body; an empty body parses as `empty` when given.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], empty: Option<T>) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return empty.ok_or_else(|| ApiError::invalid("the request body is empty; send a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "the request body is not valid JSON"
            }
            serde_json::error::Category::Data => "the request body does not have the expected shape",
            serde_json::error::Category::Io => "the request body could not be read",
        };
        ApiError::invalid(format!("{what}: {e}"))
    })
}
