//! Browser sessions of the dashboard.
//!
//! Logging in with an API key gives the browser a random session id in an
//! HttpOnly cookie; the key itself never leaves the login request. The
//! server keeps only the SHA-256 of each id (so a lookup's timing says
//! nothing about a valid id) with the actor it stands for. Sessions live in
//! memory: a restart logs everyone out, which is what a key rotation needs.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// The cookie that carries the session id.
pub const COOKIE: &str = "steward_session";

/// Sessions kept at most; past it the oldest is forgotten.
const MAX_SESSIONS: usize = 10_000;

#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_digest: HashMap<[u8; 32], Session>,
    next: u64,
}

struct Session {
    actor: String,
    /// Creation order, to forget the oldest first.
    order: u64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({})", self.lock().by_digest.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-changed: every change
        // is one insert or remove.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `actor`; returns the id to put in the cookie.
    pub fn create(&self, actor: String) -> String {
        // Two v4 UUIDs: 244 random bits from the operating system.
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut inner = self.lock();
        if inner.by_digest.len() >= MAX_SESSIONS {
            if let Some(oldest) = inner.by_digest.iter().min_by_key(|(_, s)| s.order).map(|(d, _)| *d) {
                inner.by_digest.remove(&oldest);
            }
        }
        inner.next += 1;
        let order = inner.next;
        inner.by_digest.insert(digest(&token), Session { actor, order });
        token
    }

    /// The actor of a live session.
    pub fn actor(&self, token: &str) -> Option<String> {
        self.lock().by_digest.get(&digest(token)).map(|s| s.actor.clone())
    }

    pub fn remove(&self, token: &str) {
        self.lock().by_digest.remove(&digest(token));
    }

    /// The actor of the session whose cookie `headers` carry, if it is live.
    pub fn actor_of(&self, headers: &HeaderMap) -> Option<String> {
        self.actor(&cookie(headers)?)
    }
}

/// The session cookie's value, from any `Cookie` header.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session: no Max-Age or Expires, so it ends with
/// the browser session; HttpOnly so scripts cannot read it; SameSite=Strict
/// so no other site's page can send it.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_maps_to_its_actor_until_removed() {
        let sessions = Sessions::default();
        let token = sessions.create("user:abcd1234".into());
        assert_eq!(token.len(), 64);
        assert_eq!(sessions.actor(&token).as_deref(), Some("user:abcd1234"));
        assert_eq!(sessions.actor("nope"), None);
        sessions.remove(&token);
        assert_eq!(sessions.actor(&token), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; steward_session=tok; b=2"));
        assert_eq!(cookie(&headers).as_deref(), Some("tok"));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("steward_session="));
        assert_eq!(cookie(&empty), None);
    }
}
