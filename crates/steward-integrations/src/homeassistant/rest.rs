//! The few things Home Assistant does only over REST: the configuration
//! check, the error log file, and the automation editor's config store.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use steward_core::home::HomeError;

use super::shared::Shared;
use super::wire::snippet;

/// One REST reply: its status and its body as text.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    /// The body as JSON, or an error quoting it.
    pub(crate) fn json(&self, what: &str) -> Result<Value, HomeError> {
        serde_json::from_str(&self.body).map_err(|_| {
            HomeError::UnexpectedReply(format!("{what} answered HTTP {} with {}", self.status, snippet(&self.body)))
        })
    }

    /// Home Assistant's `{"message": …}`, or a piece of the body.
    pub(crate) fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| snippet(&self.body))
    }
}

/// The chain of causes of an error, which for a failed connection is where
/// the useful part is (`Connection refused`, a DNS failure, a TLS problem).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current = e.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        current = cause.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

impl Shared {
    /// Sends one REST request to `path` (relative to the base URL, e.g.
    /// `api/config/core/check_config`). Transport failures and a refused
    /// token become errors; any other status is the caller's to read.
    pub(crate) async fn rest(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        timeout: Duration,
    ) -> Result<Reply, HomeError> {
        let url = self.endpoint.base.join(path).map_err(|e| HomeError::invalid(what, e.to_string()))?;
        let mut request = self.http.request(method, url).bearer_auth(self.token.expose()).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                HomeError::Timeout { what: what.to_string(), after: timeout }
            } else {
                // The URL is in the message already; the token never is (it travels in a header).
                HomeError::Unreachable { url: self.endpoint.display.clone(), reason: causes(&e) }
            }
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let body = response.text().await.map_err(failed)?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(HomeError::Unauthorized(format!("HA_TOKEN was rejected by {what} (HTTP {status})")));
        }
        Ok(Reply { status, body })
    }
}
