//! What every provider records about a call on its `llm_call` span.

use std::time::{Duration, Instant};

use steward_core::{LlmChunk, LlmError};
use steward_protocol::{FinishReason, Usage};
use tracing::field::Empty;
use tracing::Span;

/// Records how a call went on its span, once.
pub(crate) struct CallLog {
    pub(crate) span: Span,
    start: Instant,
    first_chunk: Option<Duration>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    closed: bool,
}

impl CallLog {
    /// Opens the `llm_call` span of a call, with every field the log records.
    pub(crate) fn start(provider: &str, model: &str, tier: steward_core::Tier) -> Self {
        let span = tracing::info_span!(
            "llm_call",
            provider = %provider,
            model = %model,
            tier = %tier.as_str(),
            status = Empty,
            outcome = Empty,
            error = Empty,
            finish_reason = Empty,
            duration_ms = Empty,
            first_chunk_ms = Empty,
            prompt_tokens = Empty,
            completion_tokens = Empty,
            cached_prompt_tokens = Empty,
        );
        Self::new(span)
    }

    pub(crate) fn new(span: Span) -> Self {
        CallLog { span, start: Instant::now(), first_chunk: None, usage: None, finish: None, closed: false }
    }

    pub(crate) fn saw(&mut self, chunk: &LlmChunk) {
        if self.first_chunk.is_none() {
            let elapsed = self.start.elapsed();
            self.first_chunk = Some(elapsed);
            self.span.record("first_chunk_ms", elapsed.as_millis() as u64);
        }
        match chunk {
            LlmChunk::Usage(usage) => self.usage = Some(*usage),
            LlmChunk::Finish(reason) => self.finish = Some(*reason),
            LlmChunk::Text(_) | LlmChunk::ToolCall(_) => {}
        }
    }

    fn close(&mut self, outcome: &str) -> Option<u64> {
        if self.closed {
            return None;
        }
        self.closed = true;
        let duration_ms = self.start.elapsed().as_millis() as u64;
        self.span.record("outcome", outcome);
        self.span.record("duration_ms", duration_ms);
        if let Some(usage) = self.usage {
            self.span.record("prompt_tokens", usage.prompt_tokens);
            self.span.record("completion_tokens", usage.completion_tokens);
            self.span.record("cached_prompt_tokens", usage.cached_prompt_tokens);
        }
        if let Some(finish) = self.finish {
            self.span.record("finish_reason", finish.openai());
        }
        Some(duration_ms)
    }

    pub(crate) fn succeeded(&mut self) {
        if let Some(duration_ms) = self.close("ok") {
            let usage = self.usage.unwrap_or_default();
            tracing::info!(
                parent: &self.span,
                duration_ms,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                cached_prompt_tokens = usage.cached_prompt_tokens,
                "llm call finished"
            );
        }
    }

    pub(crate) fn failed(&mut self, error: &LlmError) {
        if let Some(duration_ms) = self.close(error.kind.as_str()) {
            self.span.record("error", error.message.as_str());
            tracing::warn!(parent: &self.span, duration_ms, kind = error.kind.as_str(), error = %error.message, "llm call failed");
        }
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        // The caller stopped reading before the answer was complete.
        if let Some(duration_ms) = self.close("cancelled") {
            tracing::info!(parent: &self.span, duration_ms, "llm call cancelled");
        }
    }
}
