//! Bearer-key authentication. Keys are configured only as SHA-256 digests;
//! a presented key is hashed and compared against every digest in constant
//! time, so neither the keys nor timing reveal anything.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use steward_protocol::ErrorCode;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

/// The accepted keys, as SHA-256 digests. Empty means auth is off.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} digests)", self.digests.len())
    }
}

impl ApiKeys {
    pub fn new(digests: Vec<[u8; 32]>) -> Self {
        ApiKeys { digests }
    }

    pub fn is_enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `key` hashes to one of the digests. Every digest is compared,
    /// whatever matched earlier.
    pub fn accepts(&self, key: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut matched = subtle::Choice::from(0u8);
        for d in &self.digests {
            matched |= d.ct_eq(&presented);
        }
        bool::from(matched)
    }
}

/// The SHA-256 digest of `key`, in lowercase hex.
pub fn digest_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Parses one configured digest (64 hex characters).
pub fn parse_digest(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    let bytes = hex::decode(s).map_err(|_| "is not hexadecimal".to_string())?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("is {} bytes long; a SHA-256 digest is 32 bytes (64 hex characters)", b.len()))
}

/// Who made a request, for the approvals they decide and the audit log:
/// `user:` and the first 8 hex digits of their key's digest, or
/// `user:local` when the server runs without keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Actor>().cloned().unwrap_or_else(|| Actor("user:local".into())))
    }
}

/// The key of an `Authorization: Bearer <key>` header.
fn bearer_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        // The scheme name is case-insensitive (RFC 9110).
        let (scheme, key) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
    })
}

/// The actor of a request whose bearer key is accepted.
pub(crate) fn bearer_actor(keys: &ApiKeys, headers: &axum::http::HeaderMap) -> Option<Actor> {
    bearer_key(headers).filter(|key| keys.accepts(key)).map(|key| Actor(format!("user:{}", &digest_hex(key)[..8])))
}

pub async fn require_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let keys = &state.settings.api_keys;
    if !keys.is_enabled() {
        return next.run(request).await;
    }
    let presented = bearer_key(request.headers());
    // The dashboard's session cookie stands in for the key, but only where
    // no key is sent, and a change needs proof it comes from the dashboard.
    if presented.is_none() {
        if let Some(actor) = state.sessions.actor_of(request.headers()) {
            if !crate::dashboard::csrf_ok(request.method(), request.headers()) {
                let e = ApiError::invalid(
                    "a request made with the dashboard's session must come from the dashboard: send the \
                     'X-Steward-Dashboard: 1' header or an Origin header matching this server",
                );
                return (axum::http::StatusCode::FORBIDDEN, axum::Json(e.body())).into_response();
            }
            request.extensions_mut().insert(Actor(actor));
            return next.run(request).await;
        }
    }
    match presented {
        Some(key) if keys.accepts(key) => {
            let actor = Actor(format!("user:{}", &digest_hex(key)[..8]));
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Some(_) => {
            ApiError::new(ErrorCode::Unauthorized, "invalid API key: the bearer key does not match any configured key")
                .into_response()
        }
        None => ApiError::new(
            ErrorCode::Unauthorized,
            "missing API key: send 'Authorization: Bearer <key>' (create one with `steward keys new`)",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_keys_whose_digest_is_configured() {
        let d = parse_digest(&digest_hex("sk-one")).unwrap_or([0; 32]);
        let keys = ApiKeys::new(vec![[7; 32], d]);
        assert!(keys.accepts("sk-one"));
        assert!(!keys.accepts("sk-two"));
        assert!(!keys.accepts(""));
    }

    #[test]
    fn digests_must_be_64_hex_characters() {
        assert!(parse_digest("zz").unwrap_err().contains("hexadecimal"));
        assert!(parse_digest("abcd").unwrap_err().contains("2 bytes"));
        assert!(parse_digest(&"a".repeat(64)).is_ok());
    }
}
