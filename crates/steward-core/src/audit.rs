//! The tamper-evident audit log: what was decided and done, by whom, as a
//! hash chain.
//!
//! Every row carries the SHA-256 of its own content and of the previous
//! row's hash ([`entry_hash`]), so altering, removing or reordering a row
//! breaks the chain from that row on, and [`verify_chain`] names the first
//! row that does not fit.
//!
//! What the chain alone cannot show: rows cut off the END (the remaining
//! rows still form a valid chain), or the whole log rewritten with fresh
//! hashes by someone with write access. Against both, keep the head (its
//! `seq` and `hash`, as `steward audit verify` prints it) somewhere else
//! and check with [`verify_against_head`]: a truncated or rewritten log no
//! longer contains that head.
//!
//! Secrets never enter the log: [`redact`] blanks the values of keys that
//! look secret, and the store applies it to every entry's `detail`.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use steward_protocol::api::AuditEntry;

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

/// Object keys whose values are never logged (matched case-insensitively,
/// anywhere in the key).
const SECRET_KEY_PARTS: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "bearer", "private_key"];

/// An entry as a caller supplies it; the store assigns `seq`, `at` and the
/// hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// `user:<key digest prefix>`, `agent:<id>` or `system`.
    pub actor: String,
    /// `tool.decision`, `tool.executed`, `approval.decided` …
    pub action: String,
    /// E.g. the tool's name.
    pub subject: String,
    /// Entity ids and the like.
    pub targets: Vec<String>,
    /// Preview, verdict, outcome … ; redacted when appended.
    pub detail: Value,
    pub trace_id: Option<String>,
}

impl NewAuditEntry {
    pub fn new(actor: impl Into<String>, action: impl Into<String>, subject: impl Into<String>) -> Self {
        NewAuditEntry {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            targets: Vec::new(),
            detail: Value::Null,
            trace_id: None,
        }
    }

    pub fn with_targets(mut self, targets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.targets = targets.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }
}

/// The first row of a chain that does not fit: altered, removed or
/// reordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    pub seq: i64,
    pub reason: String,
}

impl fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for AuditBreak {}

/// A recorded head of the log, to detect truncation and rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// Whether an object key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// Replaces, recursively, the value of every object key that looks secret
/// with `"[redacted]"`.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    *v = Value::String(REDACTED.to_string());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// JSON text with object keys sorted (by their UTF-8 bytes) and no
/// whitespace: equal values give equal text, whatever order the keys were
/// stored in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

/// Feeds a length-prefixed byte string, so no two field lists encode alike.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// SHA-256 (lower-case hex) of an entry: a version tag, then every field
/// length-prefixed (`seq` and `at` as 8 big-endian bytes, `targets` as a
/// count and each target, `detail` as [`canonical_json`], `trace_id` as a
/// presence byte and the text), then `prev_hash`.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    targets: &[String],
    detail: &Value,
    trace_id: Option<&str>,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    field(&mut h, b"steward-audit-v1");
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    field(&mut h, actor.as_bytes());
    field(&mut h, action.as_bytes());
    field(&mut h, subject.as_bytes());
    h.update((targets.len() as u64).to_be_bytes());
    for t in targets {
        field(&mut h, t.as_bytes());
    }
    field(&mut h, canonical_json(detail).as_bytes());
    match trace_id {
        None => h.update([0u8]),
        Some(t) => {
            h.update([1u8]);
            field(&mut h, t.as_bytes());
        }
    }
    field(&mut h, prev_hash.as_bytes());
    hex::encode(h.finalize())
}

/// The hash `entry` should have, from its content and `prev_hash`.
pub fn expected_hash(entry: &AuditEntry) -> String {
    entry_hash(
        entry.seq,
        entry.at,
        &entry.actor,
        &entry.action,
        &entry.subject,
        &entry.targets,
        &entry.detail,
        entry.trace_id.as_deref(),
        &entry.prev_hash,
    )
}

/// Checks a chain one row at a time, so a long log can be verified page by
/// page. Rows must be fed in order of `seq`, starting with the first row.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    checked: usize,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        ChainVerifier { expected_seq: 1, prev_hash: GENESIS_HASH.to_string(), checked: 0 }
    }

    /// Rows checked so far.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// The hash of the last row checked (64 zeros before any).
    pub fn head_hash(&self) -> &str {
        &self.prev_hash
    }

    /// The seq of the last row checked (0 before any).
    pub fn head_seq(&self) -> i64 {
        self.expected_seq - 1
    }

    /// Checks the next row.
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), AuditBreak> {
        if entry.seq != self.expected_seq {
            // Named by the seq that should be here: the first row missing.
            let expected = self.expected_seq;
            let reason = if entry.seq > expected {
                let missing = if entry.seq - expected == 1 {
                    format!("entry {expected} is missing")
                } else {
                    format!("entries {expected} to {} are missing", entry.seq - 1)
                };
                format!("{missing} (removed or reordered; found entry {} in its place)", entry.seq)
            } else {
                format!(
                    "out of order: found entry {} where entry {expected} belongs (reordered or duplicated)",
                    entry.seq
                )
            };
            return Err(AuditBreak { seq: expected, reason });
        }
        if entry.prev_hash != self.prev_hash {
            let what = if self.expected_seq == 1 {
                "the genesis hash".to_string()
            } else {
                "the previous entry's hash".into()
            };
            let reason = format!("prev_hash does not match {what} (an earlier entry was removed or altered?)");
            return Err(AuditBreak { seq: entry.seq, reason });
        }
        let expected = expected_hash(entry);
        if entry.hash != expected {
            let reason = "its hash does not match its content (altered)".to_string();
            return Err(AuditBreak { seq: entry.seq, reason });
        }
        self.expected_seq += 1;
        self.prev_hash = entry.hash.clone();
        self.checked += 1;
        Ok(())
    }
}

/// Verifies a whole chain, from its first row; returns the rows checked,
/// or the first row that was altered, removed or reordered.
///
/// Rows cut off the end of the chain leave a valid (shorter) chain; see
/// [`verify_against_head`].
pub fn verify_chain(entries: &[AuditEntry]) -> Result<usize, AuditBreak> {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(entry)?;
    }
    Ok(verifier.checked())
}

/// [`verify_chain`], and that the chain still contains a head recorded
/// earlier (elsewhere): detects rows cut off the end and a log rewritten
/// with fresh hashes.
pub fn verify_against_head(entries: &[AuditEntry], head: &AuditHead) -> Result<usize, AuditBreak> {
    let checked = verify_chain(entries)?;
    match entries.iter().find(|e| e.seq == head.seq) {
        None => Err(AuditBreak {
            seq: head.seq,
            reason: format!(
                "the recorded head entry {} is gone: the log ends at entry {} (truncated)",
                head.seq,
                entries.last().map_or(0, |e| e.seq)
            ),
        }),
        Some(e) if !e.hash.starts_with(&head.hash) || head.hash.is_empty() => Err(AuditBreak {
            seq: head.seq,
            reason: "its hash differs from the recorded head (the log was rewritten)".to_string(),
        }),
        Some(_) => Ok(checked),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut e = AuditEntry {
                    seq,
                    at: 1_700_000_000_000 + seq,
                    actor: "agent:architect".into(),
                    action: "tool.decision".into(),
                    subject: format!("tool{seq}"),
                    targets: vec![format!("light.{seq}")],
                    detail: json!({"verdict": "allow", "n": seq}),
                    trace_id: (seq % 2 == 0).then(|| format!("trace-{seq}")),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = expected_hash(&e);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn a_good_chain_verifies() {
        assert_eq!(verify_chain(&[]), Ok(0));
        let c = chain(6);
        assert_eq!(verify_chain(&c), Ok(6));
        assert_eq!(c[0].prev_hash, GENESIS_HASH);
        assert_eq!(c[0].hash.len(), 64);
    }

    #[test]
    fn changing_any_field_of_row_k_is_reported_at_k() {
        type Change = fn(&mut AuditEntry);
        let changes: Vec<(&str, Change)> = vec![
            ("seq", |e| e.seq += 100),
            ("at", |e| e.at += 1),
            ("actor", |e| e.actor.push('x')),
            ("action", |e| e.action = "tool.executed".into()),
            ("subject", |e| e.subject.push('x')),
            ("targets", |e| e.targets.push("extra".into())),
            ("targets split", |e| e.targets = vec!["light".into(), ".3".into()]),
            ("detail", |e| e.detail["verdict"] = json!("deny")),
            ("trace_id", |e| e.trace_id = Some("other".into())),
            ("trace_id presence", |e| e.trace_id = if e.trace_id.is_some() { None } else { Some(String::new()) }),
            ("prev_hash", |e| e.prev_hash = "f".repeat(64)),
            ("hash", |e| e.hash = "0".repeat(64)),
        ];
        for k in 0..4 {
            for (name, change) in &changes {
                let mut c = chain(4);
                change(&mut c[k]);
                let err = verify_chain(&c).unwrap_err();
                let seq = k as i64 + 1;
                assert_eq!(err.seq, seq, "changing {name} of row {seq}: {err}");
            }
        }
    }

    #[test]
    fn deleting_or_reordering_rows_is_reported() {
        for k in 0..5 {
            let mut c = chain(5);
            c.remove(k);
            let err = verify_chain(&c);
            if k == 4 {
                // Truncating the tail leaves a valid chain.
                assert_eq!(err, Ok(4));
            } else {
                let err = err.unwrap_err();
                assert_eq!(err.seq, k as i64 + 1, "{err}");
                assert!(err.reason.contains("missing"), "{err}");
            }
        }
        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify_chain(&c).unwrap_err().seq, 2);
    }

    #[test]
    fn a_recorded_head_detects_truncation_and_rewrites() {
        let c = chain(5);
        let head = AuditHead { seq: 5, hash: c[4].hash.clone() };
        assert_eq!(verify_against_head(&c, &head), Ok(5));
        assert_eq!(verify_against_head(&c, &AuditHead { seq: 5, hash: c[4].hash[..12].into() }), Ok(5));
        let err = verify_against_head(&c[..3], &head).unwrap_err();
        assert!(err.reason.contains("truncated"), "{err}");
        // Rewritten from row 2 with fresh, self-consistent hashes.
        let mut rewritten = c.clone();
        rewritten[1].detail = json!("forged");
        for i in 1..rewritten.len() {
            rewritten[i].prev_hash = rewritten[i - 1].hash.clone();
            rewritten[i].hash = expected_hash(&rewritten[i]);
        }
        assert_eq!(verify_chain(&rewritten), Ok(5));
        assert_eq!(verify_against_head(&rewritten, &head).unwrap_err().seq, 5);
    }

    #[test]
    fn the_hash_ignores_key_order_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": "s", "y": [1, 2]}, "b": 1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        let h = |d: &Value| entry_hash(1, 2, "system", "a", "s", &[], d, None, GENESIS_HASH);
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&json!({"a": {"x": "s", "y": [2, 1]}, "b": 1})));
        // Field boundaries are unambiguous.
        assert_ne!(
            entry_hash(1, 2, "ab", "c", "s", &[], &Value::Null, None, GENESIS_HASH),
            entry_hash(1, 2, "a", "bc", "s", &[], &Value::Null, None, GENESIS_HASH)
        );
        assert_ne!(
            entry_hash(1, 2, "a", "b", "s", &[], &Value::Null, Some(""), GENESIS_HASH),
            entry_hash(1, 2, "a", "b", "s", &[], &Value::Null, None, GENESIS_HASH)
        );
    }

    #[test]
    fn redact_blanks_secret_keys_recursively() {
        let mut v = json!({
            "Password": "hunter2",
            "user": "alice",
            "nested": {"API_KEY": "sk-1", "list": [{"refresh_token": "t", "ok": 1}], "apiKey": {"deep": "x"}},
            "headers": {"Authorization": "Bearer abc", "x-bearer-thing": "y", "accept": "json"},
            "db": {"passwd": 1, "client_secret": null, "private_key": ["k"]},
            "items": ["password", "plain"]
        });
        redact(&mut v);
        assert_eq!(
            v,
            json!({
                "Password": REDACTED,
                "user": "alice",
                "nested": {"API_KEY": REDACTED, "list": [{"refresh_token": REDACTED, "ok": 1}], "apiKey": REDACTED},
                "headers": {"Authorization": REDACTED, "x-bearer-thing": REDACTED, "accept": "json"},
                "db": {"passwd": REDACTED, "client_secret": REDACTED, "private_key": REDACTED},
                "items": ["password", "plain"]
            })
        );
        let mut s = json!("token");
        redact(&mut s);
        assert_eq!(s, json!("token"));
    }
}
