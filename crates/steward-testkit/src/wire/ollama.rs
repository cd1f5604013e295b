//! The scripted server's Ollama wire format: `POST /api/chat`.
//!
//! Streamed answers (Ollama streams unless the body says `"stream": false`)
//! are NDJSON, one object per line, served as `application/x-ndjson`:
//!
//! ```text
//! {"model":"m","created_at":"…","message":{"role":"assistant","content":"Hel"},"done":false}
//! {"model":"m","created_at":"…","message":{"role":"assistant","content":"lo"},"done":false}
//! {"model":"m","created_at":"…","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",
//!  "prompt_eval_count":6,"eval_count":1,"total_duration":…}
//! ```
//!
//! Tool calls come whole, in one line, with their arguments as a JSON
//! object and without an id unless the script gives one; the final line
//! still says `"done_reason":"stop"`, as Ollama does. Errors are Ollama's
//! `{"error":"message"}`, as an HTTP error or as a line of the stream.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::scripted::{
    content_chars, cut_body, error_reply, frames_body, garbage_reply, json_response, split_pieces, tokens, WireRequest,
};
use crate::{Reply, ScriptedCall, MODEL_ID};

/// The content type of Ollama's streamed answers.
const NDJSON: &str = "application/x-ndjson";

/// Renders `reply` as the ollama API would answer `req`.
pub(crate) fn respond(req: &WireRequest<'_>, reply: Reply) -> Response {
    Answer::new(req).respond(reply)
}

/// What an answer needs to know about its request.
struct Answer {
    model: String,
    created_at: String,
    /// Ollama streams unless told not to.
    stream: bool,
    prompt_tokens: u64,
}

impl Answer {
    fn new(req: &WireRequest<'_>) -> Self {
        let body = req.body;
        let prompt_chars: usize =
            body["messages"].as_array().map(|ms| ms.iter().map(|m| content_chars(&m["content"])).sum()).unwrap_or(0);
        Answer {
            model: body["model"].as_str().filter(|m| !m.is_empty()).unwrap_or(MODEL_ID).to_string(),
            created_at: rfc3339_now(),
            stream: body["stream"].as_bool().unwrap_or(true),
            prompt_tokens: tokens(prompt_chars),
        }
    }

    fn respond(&self, reply: Reply) -> Response {
        match reply {
            Reply::Text { content } => self.completion(&content, &[]),
            Reply::ToolCalls { calls, content } => self.completion(content.as_deref().unwrap_or(""), &calls),
            Reply::Error { status, body, retry_after } => error_reply(status, &body, retry_after),
            Reply::CutStream { content, after_chunks } => {
                if !self.stream {
                    let message =
                        "scripted LLM: the stream was cut (CutStream answers non-streaming requests with 500)";
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": message}));
                }
                let lines = split_pieces(&content, after_chunks).iter().map(|piece| self.content_line(piece)).collect();
                ndjson_response(cut_body(lines))
            }
            Reply::StreamError { content, error } => {
                if !self.stream {
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &error);
                }
                let mut lines: Vec<Bytes> =
                    split_pieces(&content, 2).iter().map(|piece| self.content_line(piece)).collect();
                lines.push(line(&error));
                ndjson_response(frames_body(lines))
            }
            Reply::Garbage { body } => garbage_reply(body, self.stream.then_some(NDJSON)),
            // Unwrapped by the caller; answering it again is harmless.
            Reply::Delay { then, .. } => self.respond(*then),
        }
    }

    fn completion(&self, content: &str, calls: &[ScriptedCall]) -> Response {
        let completion_tokens = self.completion_tokens(content, calls);
        if !self.stream {
            let mut message = json!({"role": "assistant", "content": content});
            if !calls.is_empty() {
                message["tool_calls"] = wire_calls(calls);
            }
            return json_response(StatusCode::OK, &self.done_object(message, completion_tokens));
        }
        let mut lines: Vec<Bytes> = split_pieces(content, 3).iter().map(|piece| self.content_line(piece)).collect();
        if !calls.is_empty() {
            let message = json!({"role": "assistant", "content": "", "tool_calls": wire_calls(calls)});
            lines.push(line(&self.object(message, false)));
        }
        let last = self.done_object(json!({"role": "assistant", "content": ""}), completion_tokens);
        lines.push(line(&last));
        ndjson_response(frames_body(lines))
    }

    /// Counted the way the OpenAI side counts them: the text, and each
    /// call's name and raw arguments.
    fn completion_tokens(&self, content: &str, calls: &[ScriptedCall]) -> u64 {
        let chars = content.chars().count()
            + calls.iter().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>();
        tokens(chars)
    }

    fn object(&self, message: Value, done: bool) -> Value {
        json!({"model": self.model, "created_at": self.created_at, "message": message, "done": done})
    }

    fn content_line(&self, piece: &str) -> Bytes {
        line(&self.object(json!({"role": "assistant", "content": piece}), false))
    }

    /// The last object of an answer: why it stopped, the counts and the
    /// timings (made up, in nanoseconds, like Ollama's).
    fn done_object(&self, message: Value, completion_tokens: u64) -> Value {
        let mut object = self.object(message, true);
        object["done_reason"] = json!("stop");
        object["total_duration"] = json!(12_345_678u64);
        object["load_duration"] = json!(1_234_567u64);
        object["prompt_eval_count"] = json!(self.prompt_tokens);
        object["prompt_eval_duration"] = json!(2_345_678u64);
        object["eval_count"] = json!(completion_tokens);
        object["eval_duration"] = json!(8_765_432u64);
        object
    }
}

/// Ollama's tool calls: arguments as a JSON object (a raw string when the
/// script's arguments are not JSON), an id only when the script gives one.
fn wire_calls(calls: &[ScriptedCall]) -> Value {
    calls
        .iter()
        .map(|call| {
            let arguments = serde_json::from_str::<Value>(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone()));
            let mut wire = json!({"function": {"name": call.name, "arguments": arguments}});
            if let Some(id) = &call.id {
                wire["id"] = json!(id);
            }
            wire
        })
        .collect()
}

fn line(value: &Value) -> Bytes {
    Bytes::from(format!("{value}\n"))
}

fn ndjson_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

/// Now as Ollama writes `created_at`: RFC 3339 in UTC with nanoseconds.
fn rfc3339_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The date `days` days after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ScriptedLlm;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400 + 86_399, 5), "2000-02-29T23:59:59.000000005Z");
        assert_eq!(rfc3339(1_700_000_000, 123), "2023-11-14T22:13:20.000000123Z");
    }

    async fn post(server: &ScriptedLlm, body: Value) -> (u16, String, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/chat", server.host_url()))
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, content_type, response.text().await.unwrap_or_default())
    }

    fn lines(body: &str) -> Vec<Value> {
        body.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
    }

    fn chat(stream: Option<bool>) -> Value {
        let mut body = json!({"model": "llama3.1", "messages": [{"role": "user", "content": "12345678"}]});
        if let Some(stream) = stream {
            body["stream"] = json!(stream);
        }
        body
    }

    #[tokio::test]
    async fn text_streams_as_ndjson_by_default() {
        let server = ScriptedLlm::start().await.expect("start");
        server.push(Reply::text("Hello there"));
        let (status, content_type, body) = post(&server, chat(None)).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, NDJSON);
        let lines = lines(&body);
        assert_eq!(lines.len(), 4, "{body}");
        let text: String = lines.iter().map(|l| l["message"]["content"].as_str().unwrap_or_default()).collect();
        assert_eq!(text, "Hello there");
        assert!(lines[..3].iter().all(|l| l["done"] == false && l["model"] == "llama3.1"));
        let last = &lines[3];
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!(last["prompt_eval_count"], 2);
        assert_eq!(last["eval_count"], 2);
        assert!(last["created_at"].as_str().unwrap_or_default().ends_with('Z'));
    }

    #[tokio::test]
    async fn tool_calls_come_whole_with_object_arguments() {
        let server = ScriptedLlm::start().await.expect("start");
        server.push(Reply::tool_calls(vec![
            ScriptedCall::new("now", r#"{"tz":"UTC"}"#),
            ScriptedCall::new("lights", "{}").with_id("call_x"),
        ]));
        let (_, _, body) = post(&server, chat(Some(true))).await;
        let lines = lines(&body);
        assert_eq!(lines.len(), 2, "{body}");
        assert_eq!(
            lines[0]["message"]["tool_calls"],
            json!([
                {"function": {"name": "now", "arguments": {"tz": "UTC"}}},
                {"id": "call_x", "function": {"name": "lights", "arguments": {}}},
            ])
        );
        assert_eq!(lines[1]["done_reason"], "stop");
        // "now" + {"tz":"UTC"} + "lights" + {} = 3 + 12 + 6 + 2 chars.
        assert_eq!(lines[1]["eval_count"], 5);
    }

    #[tokio::test]
    async fn non_streamed_answers_are_one_object() {
        let server = ScriptedLlm::start().await.expect("start");
        server.push(Reply::ToolCalls { calls: vec![ScriptedCall::new("now", "{}")], content: Some("Sure.".into()) });
        let (status, content_type, body) = post(&server, chat(Some(false))).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["done"], true);
        assert_eq!(answer["message"]["content"], "Sure.");
        assert_eq!(answer["message"]["tool_calls"][0]["function"]["name"], "now");
    }

    #[tokio::test]
    async fn errors_in_the_stream_are_a_line_of_their_own() {
        let server = ScriptedLlm::start().await.expect("start");
        server.push(Reply::StreamError { content: "Hi there".into(), error: json!({"error": "model crashed"}) });
        let (status, _, body) = post(&server, chat(None)).await;
        assert_eq!(status, 200);
        let lines = lines(&body);
        assert_eq!(lines.last(), Some(&json!({"error": "model crashed"})));
        assert!(lines.iter().all(|l| l.get("done") != Some(&json!(true))));
    }
}
