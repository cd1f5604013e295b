//! Keeping secrets out of what Steward shows and writes: debug events, log
//! lines, the audit log.
//!
//! Three layers, applied together by a [`Redactor`]:
//! 1. every configured secret value (API keys, the Home Assistant token, a
//!    database password …) is replaced wherever it appears;
//! 2. in JSON, the value of every key that names a secret (`password`,
//!    `token`, `api_key` …) is replaced ([`crate::audit::redact`]);
//! 3. in free text, `key=value` and `key: value` pairs whose key names a
//!    secret, and `Bearer <token>`, lose their value.

use serde_json::Value;

use crate::audit::{self, REDACTED};

/// Secrets shorter than this are not searched for: they would blank
/// ordinary words.
const MIN_SECRET_LEN: usize = 6;

/// Words that, followed by `=` or `:`, introduce a secret in free text.
const SECRET_WORDS: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "private_key", "authorization"];

#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> =
            secrets.into_iter().map(|s| s.trim().to_string()).filter(|s| s.len() >= MIN_SECRET_LEN).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Free text with every secret blanked.
    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        blank_bearer(&blank_pairs(&out))
    }

    /// A JSON value with secret keys and every secret value blanked.
    pub fn json(&self, value: &Value) -> Value {
        let mut v = value.clone();
        audit::redact(&mut v);
        self.strings(&mut v);
        v
    }

    /// Text that may be JSON: redacted as JSON when it parses (and written
    /// back compactly), as free text otherwise.
    pub fn maybe_json(&self, s: &str) -> String {
        match serde_json::from_str::<Value>(s) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => self.json(&v).to_string(),
            _ => self.text(s),
        }
    }

    fn strings(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let redacted = self.text(s);
                if redacted != *s {
                    *s = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.strings(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.strings(i)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// Blanks the value after `word=` / `word: ` when `word` names a secret.
fn blank_pairs(s: &str) -> String {
    // Byte-wise throughout: the keys and delimiters are ASCII, so every
    // index cut at is a character boundary, whatever else the text holds.
    let lower = s.to_ascii_lowercase();
    let lower = lower.as_bytes();
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(word) = SECRET_WORDS.iter().find(|w| lower[i..].starts_with(w.as_bytes())) else {
            i += 1;
            continue;
        };
        // The key may run on (`db_password`, `token_secret`) and be quoted.
        let mut j = i + word.len();
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
            j += 1;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || !(bytes[j] == b'=' || bytes[j] == b':') {
            i += word.len();
            continue;
        }
        j += 1;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'"' || bytes[j] == b'\'') {
            j += 1;
        }
        // `Authorization: Bearer <token>` keeps its scheme, loses its token.
        for scheme in ["bearer ", "basic "] {
            if lower[j..].starts_with(scheme.as_bytes()) {
                j += scheme.len();
            }
        }
        let start = j;
        while j < bytes.len() && !matches!(bytes[j], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'' | b',' | b'&' | b';') {
            j += 1;
        }
        if j > start {
            out.push_str(&s[copied..start]);
            out.push_str(REDACTED);
            copied = j;
        }
        i = j.max(i + 1);
    }
    out.push_str(&s[copied..]);
    out
}

/// Blanks the token after `Bearer `.
fn blank_bearer(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("bearer ") {
        let start = from + found + "bearer ".len();
        let end = s[start..].find(|c: char| c.is_whitespace() || c == '"' || c == '\'').map_or(s.len(), |e| start + e);
        if end > start && &s[start..end] != REDACTED {
            out.push_str(&s[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        from = end.max(start);
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_secrets_are_blanked_anywhere() {
        let r = Redactor::new(["hunter2-long-secret".to_string(), "abc".to_string()]);
        assert_eq!(r.text("x hunter2-long-secretY abc"), "x [redacted]Y abc");
    }

    #[test]
    fn secret_pairs_in_text_lose_their_value() {
        let r = Redactor::default();
        assert_eq!(r.text("user=bob password=s3cr3t host=a"), "user=bob password=[redacted] host=a");
        assert_eq!(r.text("DB_PASSWORD: 'xyz', next"), "DB_PASSWORD: '[redacted]', next");
        assert_eq!(r.text("ha_token = abc.def"), "ha_token = [redacted]");
        assert_eq!(r.text("the token expired"), "the token expired");
        assert_eq!(r.text("Authorization: Bearer sk-123 x"), "Authorization: Bearer [redacted] x");
    }

    #[test]
    fn text_that_is_not_ascii_is_handled() {
        let r = Redactor::new(["geheimnis-1234".to_string()]);
        assert_eq!(r.text("Küche 21 °C, password=gehéim ✓"), "Küche 21 °C, password=[redacted] ✓");
        assert_eq!(r.text("ü geheimnis-1234 ü"), "ü [redacted] ü");
        assert_eq!(r.text("Bearer ütoken x"), "Bearer [redacted] x");
        assert_eq!(r.text("тoken: секрет"), "тoken: секрет");
        let v = serde_json::json!({"query": "Küche", "n": "… 3 more lines"});
        assert_eq!(r.json(&v), v);
    }

    #[test]
    fn bearer_tokens_are_blanked() {
        let r = Redactor::default();
        assert_eq!(r.text("curl -H 'x: Bearer abc123' u"), "curl -H 'x: Bearer [redacted]' u");
    }

    #[test]
    fn json_keys_and_values_are_blanked() {
        let r = Redactor::new(["ha-token-value-1".to_string()]);
        let v = serde_json::json!({"url": "http://h/?t=ha-token-value-1", "api_key": "k", "n": [1, {"secret": 2}]});
        let out = r.json(&v);
        assert_eq!(out["url"], "http://h/?t=[redacted]");
        assert_eq!(out["api_key"], REDACTED);
        assert_eq!(out["n"][1]["secret"], REDACTED);
        assert_eq!(r.maybe_json(&v.to_string()), out.to_string());
        assert_eq!(r.maybe_json("plain ha-token-value-1"), "plain [redacted]");
    }
}
