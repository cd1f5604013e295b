//! The usage ledger's records: one per model call, written by the router.

use serde::{Deserialize, Serialize};
use steward_protocol::Usage;

/// One model call, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Milliseconds since the Unix epoch, when the call started.
    pub created_at: i64,
    /// The agent (or `gateway`) that asked.
    pub caller: Option<String>,
    pub tier: Option<String>,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    /// Cost in millionths of the price table's currency unit, so sums are exact.
    pub cost_micros: i64,
    pub latency_ms: i64,
    /// Time to the first streamed token, when there was one.
    pub ttft_ms: Option<i64>,
    /// `ok`, or the error kind (`rate_limited`, `budget_exceeded`, …).
    pub outcome: String,
    /// Whether the deployment runs on the user's own machines (free).
    pub local: bool,
    /// The deployments tried before this one for the same request, in order.
    pub fallback_path: Vec<String>,
    pub trace_id: Option<String>,
}

/// How ledger totals are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// By UTC day; the key is `YYYY-MM-DD`.
    Day,
    Provider,
    /// By `provider/model`.
    Model,
}

/// Totals of the ledger for one group key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotal {
    pub key: String,
    pub requests: i64,
    pub ok_requests: i64,
    pub local_requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost_micros: i64,
}
