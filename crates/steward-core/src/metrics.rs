//! Engine counters, rendered in Prometheus' text format by the server.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds in seconds for latency histograms.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Writes `name_bucket`, `name_sum` and `name_count` lines with `labels`
    /// (already formatted, e.g. `route="/v1/models"`, or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let n = self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// What the engine counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub turns_started: AtomicU64,
    pub turns_completed: AtomicU64,
    pub turns_failed: AtomicU64,
    pub turn_seconds: Histogram,
    pub tool_calls_ok: AtomicU64,
    pub tool_calls_failed: AtomicU64,
    pub tool_calls_blocked: AtomicU64,
    pub tool_calls_timed_out: AtomicU64,
    pub tool_seconds: Histogram,
    pub llm_calls_ok: AtomicU64,
    pub llm_calls_failed: AtomicU64,
    pub llm_seconds: Histogram,
    pub llm_prompt_tokens: AtomicU64,
    pub llm_completion_tokens: AtomicU64,
}

fn counter(out: &mut String, name: &str, help: &str, series: &[(&str, &AtomicU64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (labels, v) in series {
        let v = v.load(Ordering::Relaxed);
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    h.render(out, name, "");
}

impl Metrics {
    pub fn render(&self, out: &mut String) {
        counter(
            out,
            "steward_turns_total",
            "Agent turns by outcome.",
            &[
                ("outcome=\"started\"", &self.turns_started),
                ("outcome=\"completed\"", &self.turns_completed),
                ("outcome=\"failed\"", &self.turns_failed),
            ],
        );
        histogram(out, "steward_turn_duration_seconds", "Wall time of agent turns.", &self.turn_seconds);
        counter(
            out,
            "steward_tool_calls_total",
            "Tool calls by outcome.",
            &[
                ("outcome=\"ok\"", &self.tool_calls_ok),
                ("outcome=\"error\"", &self.tool_calls_failed),
                ("outcome=\"blocked\"", &self.tool_calls_blocked),
                ("outcome=\"timeout\"", &self.tool_calls_timed_out),
            ],
        );
        histogram(out, "steward_tool_call_duration_seconds", "Wall time of tool calls.", &self.tool_seconds);
        counter(
            out,
            "steward_llm_calls_total",
            "LLM calls by outcome.",
            &[("outcome=\"ok\"", &self.llm_calls_ok), ("outcome=\"error\"", &self.llm_calls_failed)],
        );
        histogram(out, "steward_llm_call_duration_seconds", "Wall time of LLM calls.", &self.llm_seconds);
        counter(
            out,
            "steward_llm_tokens_total",
            "Tokens reported by LLM providers.",
            &[("kind=\"prompt\"", &self.llm_prompt_tokens), ("kind=\"completion\"", &self.llm_completion_tokens)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(300));
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.001\"} 0"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 1"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.5\"} 2"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2"), "{out}");
        assert!(out.contains("x_count 2"), "{out}");
    }
}
