//! Turns the events of a streamed chat completion into [`LlmChunk`]s.
//!
//! Text is passed on as it arrives. Tool calls arrive in fragments and are
//! assembled by `index`; they are handed on whole, in index order, when the
//! stream finishes, followed by the usage (if the provider sent any) and the
//! finish reason. Real servers differ in the details, so the assembler
//! tolerates: deltas without `id` or `type`; arguments split anywhere
//! (including in the same fragment as the name); fragments of several calls
//! interleaved; `role` repeated in every delta; `finish_reason` in a chunk of
//! its own; fragments without `index`; calls without an id (one is made up,
//! `call_<index>`); arguments sent as a JSON object instead of a string; the
//! whole answer sent as one non-streamed `chat.completion`.

use std::collections::BTreeMap;

use serde_json::Value;
use steward_core::{LlmChunk, LlmError, LlmErrorKind};
use steward_protocol::{FinishReason, ToolCall, Usage};

use crate::errors::{preview, ErrorContext, STREAM_PREVIEW_CHARS};
use crate::sse::SseParser;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

impl PartialCall {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.name.is_empty() && self.arguments.is_empty()
    }
}

#[derive(Debug)]
pub(crate) struct StreamAssembler {
    ctx: ErrorContext,
    calls: BTreeMap<u64, PartialCall>,
    /// The call the last fragment went to.
    last: Option<u64>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// `[DONE]` arrived or the final chunks were produced.
    done: bool,
}

impl StreamAssembler {
    pub fn new(ctx: ErrorContext) -> Self {
        StreamAssembler { ctx, calls: BTreeMap::new(), last: None, finish_reason: None, usage: None, done: false }
    }

    /// Whether the stream is over: nothing more will be produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the model said why it stopped.
    pub fn finish_seen(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// Handles the data of one event. Text is pushed to `out` at once; after
    /// `[DONE]` the final chunks are pushed and [`Self::is_done`] turns true.
    pub fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let trimmed = data.trim();
        if trimmed == "[DONE]" {
            self.finish(out);
            return Ok(());
        }
        if trimmed.is_empty() {
            return Ok(());
        }
        let value: Value = serde_json::from_str(trimmed).map_err(|_| {
            self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{} sent a stream event that is not JSON: {}",
                    self.ctx.provider,
                    preview(trimmed, STREAM_PREVIEW_CHARS)
                ),
            )
        })?;
        let Value::Object(chunk) = &value else {
            return Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{} sent a stream event that is not a completion chunk: {}",
                    self.ctx.provider,
                    preview(trimmed, STREAM_PREVIEW_CHARS)
                ),
            ));
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return Err(self.ctx.embedded_error(&value));
        }
        self.read_usage(chunk.get("usage"));
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).is_some_and(|i| i != 0) {
                continue;
            }
            // A few servers send `message` instead of `delta` in chunks.
            let delta = choice.get("delta").filter(|d| d.is_object()).or_else(|| choice.get("message"));
            if let Some(delta) = delta {
                self.read_delta(delta, out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason.to_string());
            }
        }
        Ok(())
    }

    /// The body ended (without `[DONE]`, or with it but we want to be sure).
    /// Accepts a stream that said why it finished; otherwise explains what
    /// came back.
    pub fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if self.finish_seen() {
            self.finish(out);
            return Ok(());
        }
        let p = &self.ctx.provider;
        if parser.events() > 0 {
            return Err(self.ctx.error(
                LlmErrorKind::Network,
                format!(
                    "stream ended before the model finished: {p} closed the stream without a finish_reason or [DONE]"
                ),
            ));
        }
        let raw = String::from_utf8_lossy(parser.raw_start());
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(self.ctx.error(
                LlmErrorKind::Network,
                format!("stream ended before the model finished: {p} closed the stream without sending anything"),
            ));
        }
        // A server that ignored `"stream": true` and answered in one piece.
        match serde_json::from_str::<Value>(raw) {
            Ok(value) => self.on_completion(&value, out),
            Err(_) => Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{p} answered with something that is neither an event stream nor JSON: {}",
                    preview(raw, STREAM_PREVIEW_CHARS)
                ),
            )),
        }
    }

    /// A whole, non-streamed `chat.completion` (or an error object).
    pub fn on_completion(&mut self, value: &Value, out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        let p = &self.ctx.provider;
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(self.ctx.embedded_error(value));
        }
        let Some(choice) = value.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else {
            return Err(self.ctx.error(
                LlmErrorKind::InvalidResponse,
                format!(
                    "{p} answered with JSON that is not a chat completion: {}",
                    preview(&value.to_string(), STREAM_PREVIEW_CHARS)
                ),
            ));
        };
        self.read_usage(value.get("usage"));
        let message = choice.get("message").or_else(|| choice.get("delta")).unwrap_or(&Value::Null);
        self.read_delta(message, out);
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            self.finish_reason = Some(reason.to_string());
        }
        self.finish(out);
        Ok(())
    }

    /// Pushes the assembled tool calls, the usage and the finish reason.
    pub fn finish(&mut self, out: &mut Vec<LlmChunk>) {
        if self.done {
            return;
        }
        self.done = true;
        let calls = std::mem::take(&mut self.calls);
        let mut any_call = false;
        for (index, call) in calls {
            if call.is_empty() {
                continue;
            }
            any_call = true;
            let arguments = if call.arguments.trim().is_empty() { "{}".to_string() } else { call.arguments };
            out.push(LlmChunk::ToolCall(ToolCall::new(
                call.id.unwrap_or_else(|| format!("call_{index}")),
                call.name,
                arguments,
            )));
        }
        if let Some(usage) = self.usage {
            out.push(LlmChunk::Usage(usage));
        }
        out.push(LlmChunk::Finish(map_finish_reason(self.finish_reason.as_deref(), any_call)));
    }

    fn read_usage(&mut self, usage: Option<&Value>) {
        let Some(usage) = usage.filter(|u| u.is_object()) else {
            return;
        };
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        let mut counted = Usage::new(count("prompt_tokens"), count("completion_tokens"));
        // OpenAI reports prompt-cache hits inside the prompt count.
        counted.cached_prompt_tokens =
            usage.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64).unwrap_or(0);
        self.usage = Some(counted);
    }

    fn read_delta(&mut self, delta: &Value, out: &mut Vec<LlmChunk>) {
        for key in ["content", "refusal"] {
            if let Some(text) = delta.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(LlmChunk::Text(text.to_string()));
            }
        }
        if let Some(fragments) = delta.get("tool_calls").and_then(Value::as_array) {
            for fragment in fragments {
                self.add_fragment(fragment);
            }
        }
        // The legacy single `function_call`.
        if let Some(function) = delta.get("function_call").filter(|f| f.is_object()) {
            let fragment = serde_json::json!({"index": 0, "function": function});
            self.add_fragment(&fragment);
        }
    }

    fn add_fragment(&mut self, fragment: &Value) {
        let id = fragment.get("id").and_then(Value::as_str).filter(|id| !id.is_empty());
        let function = fragment.get("function").unwrap_or(&Value::Null);
        let name = function.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
        let arguments = match function.get("arguments") {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(other) => Some(other.to_string()),
        };
        let index = match fragment.get("index").and_then(Value::as_u64) {
            Some(index) => index,
            None => self.guess_index(id, name),
        };
        self.last = Some(index);
        let call = self.calls.entry(index).or_default();
        if call.id.is_none() {
            call.id = id.map(str::to_string);
        }
        if let Some(name) = name {
            // Some servers repeat the whole name in every fragment; a few
            // stream it in pieces.
            if call.name.is_empty() {
                call.name = name.to_string();
            } else if call.name != name {
                call.name.push_str(name);
            }
        }
        if let Some(arguments) = arguments {
            call.arguments.push_str(&arguments);
        }
    }

    /// Which call a fragment without `index` belongs to.
    fn guess_index(&self, id: Option<&str>, name: Option<&str>) -> u64 {
        let Some(last) = self.last else { return 0 };
        let next = self.calls.keys().next_back().map_or(0, |i| i + 1);
        if let Some(id) = id {
            if let Some((index, _)) = self.calls.iter().find(|(_, c)| c.id.as_deref() == Some(id)) {
                return *index;
            }
            // A new id: a new call, unless the current call has no id yet.
            let current_has_id = self.calls.get(&last).is_some_and(|c| c.id.is_some());
            return if current_has_id { next } else { last };
        }
        // No id: a fragment of the current call, unless it names a function
        // while the current call is already complete.
        let current_complete = self.calls.get(&last).is_some_and(|c| {
            !c.name.is_empty()
                && name.is_some_and(|n| n != c.name)
                && serde_json::from_str::<serde::de::IgnoredAny>(&c.arguments).is_ok()
        });
        if current_complete {
            next
        } else {
            last
        }
    }
}

/// OpenAI's `finish_reason` (and a few other servers' spellings). A stream
/// that produced tool calls but says `stop` (as some servers do) finished
/// for tool calls.
fn map_finish_reason(reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match reason {
        Some("length" | "max_tokens") => FinishReason::Length,
        Some("tool_calls" | "function_call" | "tool_use") => FinishReason::ToolCalls,
        Some("content_filter" | "safety") => FinishReason::ContentFilter,
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn ctx() -> ErrorContext {
        ErrorContext::new(
            "testprov",
            "m",
            "http://127.0.0.1:9/v1",
            Some("sk-hidden"),
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
    }

    /// A `chat.completion.chunk` with one choice.
    fn chunk(delta: Value, finish: Option<&str>) -> String {
        json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        })
        .to_string()
    }

    /// Runs events through a fresh assembler, then the end of the body.
    fn run(events: &[String]) -> Result<Vec<LlmChunk>, LlmError> {
        let mut asm = StreamAssembler::new(ctx());
        let mut out = Vec::new();
        for event in events {
            asm.on_data(event, &mut out)?;
        }
        let mut parser = SseParser::new();
        let mut ignored = Vec::new();
        if !events.is_empty() {
            parser.feed(b"data: x\n\n", &mut ignored);
        }
        asm.on_eof(&parser, &mut out)?;
        Ok(out)
    }

    fn ok(events: &[String]) -> Vec<LlmChunk> {
        run(events).unwrap_or_else(|e| panic!("{e}"))
    }

    fn call(id: &str, name: &str, arguments: &str) -> LlmChunk {
        LlmChunk::ToolCall(ToolCall::new(id, name, arguments))
    }

    fn text(t: &str) -> LlmChunk {
        LlmChunk::Text(t.into())
    }

    fn done() -> String {
        "[DONE]".to_string()
    }

    #[test]
    fn text_streams_and_empty_deltas_are_skipped() {
        let out = ok(&[
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": null}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            done(),
        ]);
        assert_eq!(out, vec![text("Hel"), text("lo"), LlmChunk::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn openai_style_tool_calls_assemble() {
        let out = ok(&[
            chunk(json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).to_string(),
            done(),
        ]);
        assert_eq!(
            out,
            vec![
                call("call_a", "get_weather", "{\"city\": \"Paris\"}"),
                LlmChunk::Usage(Usage::new(10, 5)),
                LlmChunk::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn arguments_may_start_with_the_name_and_deltas_may_omit_id_and_type() {
        let out = ok(&[
            chunk(
                json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "x1", "function": {"name": "f", "arguments": "{"}}]}),
                None,
            ),
            chunk(json!({"role": "assistant", "tool_calls": [{"index": 0, "function": {"arguments": "\"a\""}}]}), None),
            chunk(json!({"role": "assistant", "tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}), None),
            chunk(json!({"role": "assistant"}), Some("tool_calls")),
            done(),
        ]);
        assert_eq!(out, vec![call("x1", "f", "{\"a\":1}"), LlmChunk::Finish(FinishReason::ToolCalls)]);
    }

    #[test]
    fn interleaved_indices_come_out_in_index_order() {
        let out = ok(&[
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "b", "type": "function", "function": {"name": "second", "arguments": ""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "first", "arguments": "{\"x\""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"y\":2}"}}, {"index": 0, "function": {"arguments": ":1}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            done(),
        ]);
        assert_eq!(
            out,
            vec![
                call("a", "first", "{\"x\":1}"),
                call("b", "second", "{\"y\":2}"),
                LlmChunk::Finish(FinishReason::ToolCalls)
            ]
        );
    }

    #[test]
    fn a_missing_index_means_the_only_call() {
        let out = ok(&[
            chunk(
                json!({"tool_calls": [{"id": "only", "type": "function", "function": {"name": "f", "arguments": "{\"a\""}}]}),
                None,
            ),
            chunk(json!({"tool_calls": [{"function": {"arguments": ": 1}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            done(),
        ]);
        assert_eq!(out, vec![call("only", "f", "{\"a\": 1}"), LlmChunk::Finish(FinishReason::ToolCalls)]);
    }

    #[test]
    fn whole_calls_without_index_are_told_apart_by_id_or_name() {
        let out = ok(&[
            chunk(json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]}), None),
            chunk(json!({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{\"q\":1}"}}]}), None),
            chunk(json!({"tool_calls": [{"function": {"name": "h", "arguments": "{}"}}]}), Some("tool_calls")),
            done(),
        ]);
        assert_eq!(
            out,
            vec![
                call("a", "f", "{}"),
                call("b", "g", "{\"q\":1}"),
                call("call_2", "h", "{}"),
                LlmChunk::Finish(FinishReason::ToolCalls)
            ]
        );
    }

    #[test]
    fn missing_ids_are_made_up_and_empty_arguments_become_an_object() {
        let out = ok(&[
            chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "now"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 1, "function": {"name": "later", "arguments": {"in": 5}}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            done(),
        ]);
        assert_eq!(
            out,
            vec![
                call("call_0", "now", "{}"),
                call("call_1", "later", "{\"in\":5}"),
                LlmChunk::Finish(FinishReason::ToolCalls)
            ]
        );
    }

    #[test]
    fn repeated_names_are_not_doubled() {
        let out = ok(&[
            chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "}"}}]}), None),
            done(),
        ]);
        assert_eq!(out, vec![call("a", "f", "{}"), LlmChunk::Finish(FinishReason::ToolCalls)]);
    }

    #[test]
    fn finish_reason_and_tool_calls_in_the_same_chunk() {
        let out = ok(&[chunk(
            json!({"role": "assistant", "content": "", "tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
            Some("tool_calls"),
        )]);
        assert_eq!(out, vec![call("a", "f", "{}"), LlmChunk::Finish(FinishReason::ToolCalls)]);
    }

    #[test]
    fn text_then_tool_calls() {
        let out = ok(&[
            chunk(json!({"role": "assistant", "content": "Let me check."}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
                None,
            ),
            chunk(json!({}), Some("stop")),
            done(),
        ]);
        assert_eq!(out, vec![text("Let me check."), call("a", "f", "{}"), LlmChunk::Finish(FinishReason::ToolCalls)]);
    }

    #[test]
    fn legacy_function_call_deltas_assemble() {
        let out = ok(&[
            chunk(json!({"function_call": {"name": "f", "arguments": "{\"a\""}}), None),
            chunk(json!({"function_call": {"arguments": ":1}"}}), None),
            chunk(json!({}), Some("function_call")),
            done(),
        ]);
        assert_eq!(out, vec![call("call_0", "f", "{\"a\":1}"), LlmChunk::Finish(FinishReason::ToolCalls)]);
    }

    #[test]
    fn finish_reasons_map() {
        for (raw, expected) in [
            ("stop", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("tool_calls", FinishReason::ToolCalls),
            ("function_call", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("something_new", FinishReason::Stop),
        ] {
            let out = ok(&[chunk(json!({"content": "x"}), Some(raw)), done()]);
            assert_eq!(out.last(), Some(&LlmChunk::Finish(expected)), "{raw}");
        }
    }

    #[test]
    fn usage_may_arrive_with_the_finish_or_after_it() {
        let mut with_finish: Value = serde_json::from_str(&chunk(json!({}), Some("stop"))).unwrap_or_default();
        with_finish["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7});
        let out = ok(&[chunk(json!({"content": "hi"}), None), with_finish.to_string(), done()]);
        assert_eq!(out, vec![text("hi"), LlmChunk::Usage(Usage::new(3, 4)), LlmChunk::Finish(FinishReason::Stop)]);
        // `"usage": null` on every chunk (include_usage) is not usage.
        let mut null_usage: Value =
            serde_json::from_str(&chunk(json!({"content": "hi"}), Some("stop"))).unwrap_or_default();
        null_usage["usage"] = Value::Null;
        let out = ok(&[null_usage.to_string(), done()]);
        assert_eq!(out, vec![text("hi"), LlmChunk::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn a_finish_without_done_is_accepted() {
        let out = ok(&[chunk(json!({"content": "hi"}), None), chunk(json!({}), Some("stop"))]);
        assert_eq!(out, vec![text("hi"), LlmChunk::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn done_without_a_finish_reason_is_accepted() {
        let out = ok(&[chunk(json!({"content": "hi"}), None), done()]);
        assert_eq!(out, vec![text("hi"), LlmChunk::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn nothing_after_done_counts() {
        let out = ok(&[chunk(json!({"content": "hi"}), None), done(), chunk(json!({"content": "late"}), None)]);
        assert_eq!(out, vec![text("hi"), LlmChunk::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn a_stream_cut_before_the_finish_is_a_network_error() {
        let err = run(&[chunk(json!({"content": "hi"}), None)]).err();
        let err = err.unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(err.kind, LlmErrorKind::Network);
        assert!(err.message.contains("stream ended before the model finished"), "{}", err.message);
        assert_eq!(err.provider, "testprov");
    }

    #[test]
    fn non_json_data_is_an_invalid_response_quoting_a_little() {
        let garbage = format!("<html>{}</html>", "x".repeat(1000));
        let err = run(&[garbage]).err().unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
        assert!(err.message.contains("testprov") && err.message.contains("<html>xxx"), "{}", err.message);
        assert!(err.message.len() < 400, "{}", err.message);
    }

    #[test]
    fn an_error_mid_stream_is_an_error() {
        let events = [
            chunk(json!({"content": "par"}), None),
            json!({"error": {"message": "The server had an error", "type": "server_error"}}).to_string(),
        ];
        let mut asm = StreamAssembler::new(ctx());
        let mut out = Vec::new();
        assert!(asm.on_data(&events[0], &mut out).is_ok());
        let err = asm.on_data(&events[1], &mut out).err().unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(err.kind, LlmErrorKind::Server { status: 500 });
        assert!(err.message.contains("The server had an error"), "{}", err.message);
        assert_eq!(out, vec![text("par")]);
    }

    #[test]
    fn a_body_that_is_not_sse_is_explained() {
        let mut asm = StreamAssembler::new(ctx());
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        parser.feed(b"<html><body>502 Bad Gateway</body></html>", &mut events);
        parser.finish(&mut events);
        let err = asm.on_eof(&parser, &mut Vec::new()).err().unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(err.kind, LlmErrorKind::InvalidResponse);
        assert!(err.message.contains("502 Bad Gateway"), "{}", err.message);

        let mut asm = StreamAssembler::new(ctx());
        let err = asm.on_eof(&SseParser::new(), &mut Vec::new()).err().unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(err.kind, LlmErrorKind::Network);
    }

    #[test]
    fn a_non_streamed_completion_is_understood() {
        let body = json!({
            "id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "ok",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        });
        let mut asm = StreamAssembler::new(ctx());
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        parser.feed(serde_json::to_string_pretty(&body).unwrap_or_default().as_bytes(), &mut events);
        parser.finish(&mut events);
        assert!(events.is_empty());
        let mut out = Vec::new();
        asm.on_eof(&parser, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out,
            vec![
                text("ok"),
                call("c1", "f", "{\"a\":1}"),
                LlmChunk::Usage(Usage::new(2, 3)),
                LlmChunk::Finish(FinishReason::ToolCalls)
            ]
        );
    }

    /// The whole path from bytes: an OpenAI-style tool-call stream split at
    /// every byte position gives the same chunks.
    #[test]
    fn every_network_split_gives_the_same_chunks() {
        let events = [
            chunk(json!({"role": "assistant", "content": "Ça va ✓ "}), None),
            chunk(
                json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_é", "type": "function", "function": {"name": "f", "arguments": "{\"q\":"}}]}),
                None,
            ),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"€\"}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}).to_string(),
        ];
        let mut body = String::from(": keep-alive\r\n\r\n");
        for e in &events {
            body.push_str(&format!("data: {e}\r\n\r\n"));
        }
        body.push_str("data: [DONE]\r\n\r\n");
        let bytes = body.as_bytes();
        let expected = vec![
            text("Ça va ✓ "),
            call("call_é", "f", "{\"q\":\"€\"}"),
            LlmChunk::Usage(Usage::new(1, 2)),
            LlmChunk::Finish(FinishReason::ToolCalls),
        ];
        let through = |pieces: &[&[u8]]| -> Vec<LlmChunk> {
            let mut parser = SseParser::new();
            let mut asm = StreamAssembler::new(ctx());
            let mut out = Vec::new();
            for piece in pieces {
                let mut events = Vec::new();
                parser.feed(piece, &mut events);
                for e in events {
                    asm.on_data(&e, &mut out).unwrap_or_else(|e| panic!("{e}"));
                }
            }
            let mut events = Vec::new();
            parser.finish(&mut events);
            for e in events {
                asm.on_data(&e, &mut out).unwrap_or_else(|e| panic!("{e}"));
            }
            asm.on_eof(&parser, &mut out).unwrap_or_else(|e| panic!("{e}"));
            out
        };
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(through(&[a, b]), expected, "split at byte {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(through(&singles), expected);
    }
}
