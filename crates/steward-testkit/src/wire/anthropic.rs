//! The scripted server's Anthropic wire format: `POST /v1/messages`,
//! answered the way Anthropic's Messages API answers.
//!
//! Streamed (`"stream": true`): `message_start`, one `ping`, a text block
//! (`content_block_start`, `text_delta`s, `content_block_stop`), one
//! `tool_use` block per call (its input as `input_json_delta` pieces, the
//! first one empty as Anthropic sends it), `message_delta` with the stop
//! reason and the output tokens, `message_stop`. Otherwise one `message`
//! object. Token counts follow the OpenAI side: a quarter of the characters
//! of the prompt (system and messages) and of the answer.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::scripted::{
    content_chars, cut_body, error_reply, frames_body, garbage_reply, json_response, split_pieces, sse_response,
    tokens, WireRequest,
};
use crate::{Reply, ScriptedCall, MODEL_ID};

/// Renders `reply` as the Anthropic API would answer `req`.
pub(crate) fn respond(req: &WireRequest<'_>, reply: Reply) -> Response {
    Answer::new(req).respond(reply)
}

/// What an answer needs to know about its request.
struct Answer {
    id: String,
    seq: u64,
    model: String,
    stream: bool,
    input_tokens: u64,
}

impl Answer {
    fn new(req: &WireRequest<'_>) -> Self {
        let body = req.body;
        let messages_chars: usize =
            body["messages"].as_array().map(|ms| ms.iter().map(|m| message_chars(&m["content"])).sum()).unwrap_or(0);
        Answer {
            id: format!("msg_scripted_{}", req.seq),
            seq: req.seq,
            model: body["model"].as_str().filter(|m| !m.is_empty()).unwrap_or(MODEL_ID).to_string(),
            stream: body["stream"].as_bool().unwrap_or(false),
            input_tokens: tokens(content_chars(&body["system"]) + messages_chars),
        }
    }

    fn respond(&self, reply: Reply) -> Response {
        match reply {
            Reply::Text { content } => self.message(Some(&content), &[]),
            Reply::ToolCalls { calls, content } => self.message(content.as_deref(), &calls),
            Reply::Error { status, body, retry_after } => error_reply(status, &body, retry_after),
            Reply::CutStream { content, after_chunks } => {
                if !self.stream {
                    let message =
                        "scripted LLM: the stream was cut (CutStream answers non-streaming requests with 500)";
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &error_body("api_error", message));
                }
                let mut frames = vec![self.message_start(), event(&json!({"type": "ping"}))];
                frames.push(event(&text_block_start(0)));
                for piece in split_pieces(&content, after_chunks) {
                    frames.push(event(&text_delta(0, &piece)));
                }
                sse_response(cut_body(frames))
            }
            Reply::StreamError { content, error } => {
                if !self.stream {
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &error);
                }
                let mut frames = vec![self.message_start(), event(&json!({"type": "ping"}))];
                if !content.is_empty() {
                    frames.push(event(&text_block_start(0)));
                    for piece in split_pieces(&content, 2) {
                        frames.push(event(&text_delta(0, &piece)));
                    }
                }
                frames.push(Bytes::from(format!("event: error\ndata: {error}\n\n")));
                sse_response(frames_body(frames))
            }
            Reply::Garbage { body } => garbage_reply(body, self.stream.then_some("text/event-stream")),
            // Unwrapped by the caller; answering it again is harmless.
            Reply::Delay { then, .. } => self.respond(*then),
        }
    }

    fn output_tokens(content: Option<&str>, calls: &[ScriptedCall]) -> u64 {
        let chars = content.map(|c| c.chars().count()).unwrap_or(0)
            + calls.iter().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>();
        tokens(chars)
    }

    fn call_id(&self, index: usize, call: &ScriptedCall) -> String {
        call.id.clone().unwrap_or_else(|| format!("toolu_{}_{index}", self.seq))
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        })
    }

    fn message(&self, content: Option<&str>, calls: &[ScriptedCall]) -> Response {
        let stop_reason = if calls.is_empty() { "end_turn" } else { "tool_use" };
        let output_tokens = Answer::output_tokens(content, calls);
        // A text-only answer always has its text block, even an empty one.
        let text = content.filter(|c| !c.is_empty() || calls.is_empty());
        if !self.stream {
            let mut blocks: Vec<Value> = text.map(|t| json!({"type": "text", "text": t})).into_iter().collect();
            blocks.extend(calls.iter().enumerate().map(|(i, call)| {
                json!({"type": "tool_use", "id": self.call_id(i, call), "name": call.name, "input": input_object(call)})
            }));
            let body = json!({
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": null,
                "usage": self.usage(output_tokens),
            });
            return json_response(StatusCode::OK, &body);
        }

        let mut frames = vec![self.message_start(), event(&json!({"type": "ping"}))];
        let mut index = 0;
        if let Some(text) = text {
            frames.push(event(&text_block_start(index)));
            for piece in split_pieces(text, 3) {
                frames.push(event(&text_delta(index, &piece)));
            }
            frames.push(event(&json!({"type": "content_block_stop", "index": index})));
            index += 1;
        }
        for (i, call) in calls.iter().enumerate() {
            frames.push(event(&json!({
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": self.call_id(i, call), "name": call.name, "input": {}},
            })));
            let pieces = std::iter::once(String::new()).chain(split_pieces(&call.arguments, 3));
            for piece in pieces {
                frames.push(event(&json!({
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                })));
            }
            frames.push(event(&json!({"type": "content_block_stop", "index": index})));
            index += 1;
        }
        frames.push(event(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens},
        })));
        frames.push(event(&json!({"type": "message_stop"})));
        sse_response(frames_body(frames))
    }

    fn message_start(&self) -> Bytes {
        event(&json!({
            "type": "message_start",
            "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": self.usage(1),
            },
        }))
    }
}

/// Characters of a message's content: a string, or its blocks' text,
/// tool results included.
fn message_chars(content: &Value) -> usize {
    match content {
        Value::Array(blocks) => {
            content_chars(content)
                + blocks
                    .iter()
                    .filter(|b| b["type"] == "tool_result")
                    .map(|b| content_chars(&b["content"]))
                    .sum::<usize>()
        }
        other => content_chars(other),
    }
}

/// A call's arguments as the `input` object; `{}` when they are not one.
fn input_object(call: &ScriptedCall) -> Value {
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => Value::Object(Map::new()),
    }
}

fn text_block_start(index: usize) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
}

fn text_delta(index: usize, text: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
}

/// One SSE frame named after the event's `type`.
fn event(data: &Value) -> Bytes {
    let name = data["type"].as_str().unwrap_or("message");
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Anthropic's error body: `{"type":"error","error":{"type","message"}}`.
fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScriptedLlm;

    async fn post(server: &ScriptedLlm, body: Value) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/messages", server.host_url()))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// The `(event name, data)` pairs of an SSE body.
    fn events(body: &str) -> Vec<(String, Value)> {
        body.split("\n\n")
            .filter(|frame| !frame.trim().is_empty())
            .map(|frame| {
                let mut name = String::new();
                let mut data = Value::Null;
                for line in frame.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
                    }
                }
                (name, data)
            })
            .collect()
    }

    fn request(stream: bool) -> Value {
        json!({
            "model": "claude-test", "max_tokens": 100, "stream": stream,
            "system": "You are a test.",
            "messages": [
                {"role": "user", "content": "hi there!!"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "12:00"}]},
            ],
        })
    }

    #[tokio::test]
    async fn streamed_tool_calls_follow_anthropics_event_sequence() {
        let server = ScriptedLlm::start().await.unwrap_or_else(|e| panic!("{e}"));
        server.push(Reply::ToolCalls {
            calls: vec![
                ScriptedCall::new("get_time", r#"{"tz": "UTC"}"#),
                ScriptedCall::new("noop", "{}").with_id("toolu_mine"),
            ],
            content: Some("Let me see.".into()),
        });
        let (status, body) = post(&server, request(true)).await;
        assert_eq!(status, 200, "{body}");
        let events = events(&body);
        for (name, data) in &events {
            assert_eq!(Some(name.as_str()), data["type"].as_str(), "{body}");
        }
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(names.iter().filter(|n| **n == "ping").count(), 1);
        assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
        let start = &events[0].1["message"];
        assert_eq!(start["id"], "msg_scripted_1");
        assert_eq!(start["model"], "claude-test");
        // "You are a test." + "hi there!!" + "12:00" = 30 chars → 7 tokens.
        assert_eq!(start["usage"]["input_tokens"], 7);
        assert_eq!(start["usage"]["output_tokens"], 1);

        let text: String = events
            .iter()
            .filter(|(_, d)| d["delta"]["type"] == "text_delta")
            .map(|(_, d)| d["delta"]["text"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(text, "Let me see.");
        let tool_starts: Vec<&Value> = events
            .iter()
            .filter(|(_, d)| d["content_block"]["type"] == "tool_use")
            .map(|(_, d)| &d["content_block"])
            .collect();
        assert_eq!(tool_starts.len(), 2);
        assert_eq!(tool_starts[0]["id"], "toolu_1_0");
        assert_eq!(tool_starts[1]["id"], "toolu_mine");
        let pieces: Vec<&str> = events
            .iter()
            .filter(|(_, d)| d["index"] == 1 && d["delta"]["type"] == "input_json_delta")
            .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap_or_default())
            .collect();
        assert!(pieces.len() >= 3, "{pieces:?}");
        assert_eq!(pieces.concat(), r#"{"tz": "UTC"}"#);
        let delta = &events[events.len() - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        // "Let me see." + "get_time" + {"tz": "UTC"} + "noop" + "{}" = 38 chars → 9 tokens.
        assert_eq!(delta["usage"]["output_tokens"], 9);
        assert_eq!(server.requests()[0].path, "/v1/messages");
    }

    #[tokio::test]
    async fn non_streamed_answers_are_message_objects() {
        let server = ScriptedLlm::start().await.unwrap_or_else(|e| panic!("{e}"));
        server.push(Reply::text("Hello"));
        server.push(Reply::tool_call("f", r#"{"a": 1}"#));
        let (status, body) = post(&server, request(false)).await;
        assert_eq!(status, 200);
        let message: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(message["type"], "message");
        assert_eq!(message["content"], json!([{"type": "text", "text": "Hello"}]));
        assert_eq!(message["stop_reason"], "end_turn");
        assert_eq!(message["usage"]["input_tokens"], 7);
        assert_eq!(message["usage"]["output_tokens"], 1);
        let (_, body) = post(&server, request(false)).await;
        let message: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(
            message["content"],
            json!([{"type": "tool_use", "id": "toolu_2_0", "name": "f", "input": {"a": 1}}])
        );
        assert_eq!(message["stop_reason"], "tool_use");
    }

    #[tokio::test]
    async fn stream_errors_are_error_events() {
        let server = ScriptedLlm::start().await.unwrap_or_else(|e| panic!("{e}"));
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        server.push(Reply::StreamError { content: "par".into(), error: error.clone() });
        server.push(Reply::StreamError { content: String::new(), error: error.clone() });
        let (_, body) = post(&server, request(true)).await;
        let events = events(&body);
        assert_eq!(events.last(), Some(&("error".to_string(), error.clone())));
        assert!(events.iter().any(|(_, d)| d["delta"]["text"] == "p" || d["delta"]["text"] == "pa"), "{body}");
        let (_, body) = post(&server, request(true)).await;
        let names: Vec<String> = events_names(&body);
        assert_eq!(names, ["message_start", "ping", "error"]);
    }

    fn events_names(body: &str) -> Vec<String> {
        events(body).into_iter().map(|(n, _)| n).collect()
    }
}
