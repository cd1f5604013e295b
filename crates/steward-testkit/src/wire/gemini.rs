//! The scripted server's Gemini wire format: `POST
//! /v1beta/models/{model}:generateContent` answers with one
//! `GenerateContentResponse`, `…:streamGenerateContent` with a stream of
//! them as `data:` frames (what `?alt=sse` asks for).
//!
//! Text is streamed in up to three chunks; function calls arrive whole, as
//! parts of one chunk, each with a `thoughtSignature` of `sig-<request>-<i>`
//! so clients can be checked to send it back. The last chunk carries
//! `finishReason: "STOP"` and the final `usageMetadata`; earlier chunks carry
//! only the prompt count, as Gemini's do. Token counts are computed as on the
//! OpenAI side: a quarter of the characters, at least one.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::scripted::{
    content_chars, cut_body, error_reply, frames_body, garbage_reply, json_response, split_pieces, sse_response,
    tokens, WireRequest,
};
use crate::{Reply, ScriptedCall};

/// Renders `reply` as the Gemini API would answer `req`.
pub(crate) fn respond(req: &WireRequest<'_>, reply: Reply) -> Response {
    let Some(answer) = Answer::new(req) else {
        let message = format!("scripted LLM: no Gemini method at {} (expected …:generateContent)", req.path);
        return json_response(StatusCode::NOT_FOUND, &google_error(404, "NOT_FOUND", &message));
    };
    answer.respond(reply)
}

/// Google's error body: `{"error":{"code","message","status"}}`.
fn google_error(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// What an answer needs to know about its request.
struct Answer {
    seq: u64,
    model: String,
    stream: bool,
    prompt_tokens: u64,
}

impl Answer {
    /// `None` when the path names neither Gemini generation method.
    fn new(req: &WireRequest<'_>) -> Option<Answer> {
        let spec = req.path.rsplit('/').next().unwrap_or_default();
        let (model, method) = spec.rsplit_once(':')?;
        let stream = match method {
            "streamGenerateContent" => true,
            "generateContent" => false,
            _ => return None,
        };
        let body = req.body;
        let mut prompt_chars = content_chars(&body["systemInstruction"]["parts"]);
        if let Some(contents) = body["contents"].as_array() {
            prompt_chars += contents.iter().map(|c| content_chars(&c["parts"])).sum::<usize>();
        }
        Some(Answer { seq: req.seq, model: model.to_string(), stream, prompt_tokens: tokens(prompt_chars) })
    }

    fn respond(&self, reply: Reply) -> Response {
        match reply {
            Reply::Text { content } => self.generation(Some(&content), &[]),
            Reply::ToolCalls { calls, content } => self.generation(content.as_deref(), &calls),
            Reply::Error { status, body, retry_after } => error_reply(status, &body, retry_after),
            Reply::CutStream { content, after_chunks } => {
                if !self.stream {
                    let message =
                        "scripted LLM: the stream was cut (CutStream answers non-streaming requests with 500)";
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &google_error(500, "INTERNAL", message));
                }
                let frames = split_pieces(&content, after_chunks).iter().map(|p| self.text_frame(p)).collect();
                sse_response(cut_body(frames))
            }
            Reply::StreamError { content, error } => {
                if !self.stream {
                    return json_response(StatusCode::INTERNAL_SERVER_ERROR, &error);
                }
                let mut frames: Vec<Bytes> = split_pieces(&content, 2).iter().map(|p| self.text_frame(p)).collect();
                frames.push(frame(&error));
                sse_response(frames_body(frames))
            }
            Reply::Garbage { body } => garbage_reply(body, self.stream.then_some("text/event-stream")),
            // Unwrapped by the caller; answering it again is harmless.
            Reply::Delay { then, .. } => self.respond(*then),
        }
    }

    /// The final usage: the OpenAI side's counts in Gemini's names.
    fn usage(&self, content: Option<&str>, calls: &[ScriptedCall]) -> Value {
        let chars = content.map(|c| c.chars().count()).unwrap_or(0)
            + calls.iter().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>();
        let completion = tokens(chars);
        json!({
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": completion,
            "totalTokenCount": self.prompt_tokens + completion,
        })
    }

    /// A `functionCall` part, with the arguments as an object (`{}` when
    /// the scripted text is not one) and a signature to send back.
    fn call_part(&self, index: usize, call: &ScriptedCall) -> Value {
        let args = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(Value::Object(map)) => Value::Object(map),
            _ => Value::Object(Map::new()),
        };
        let mut function_call = json!({"name": call.name, "args": args});
        if let Some(id) = &call.id {
            function_call["id"] = json!(id);
        }
        json!({"functionCall": function_call, "thoughtSignature": format!("sig-{}-{index}", self.seq)})
    }

    /// One `GenerateContentResponse` with a single candidate.
    fn response(&self, parts: Vec<Value>, last: Option<Value>) -> Value {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let usage = match last {
            Some(usage) => {
                candidate["finishReason"] = json!("STOP");
                usage
            }
            None => json!({"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}),
        };
        json!({
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": format!("scripted-{}", self.seq),
        })
    }

    fn text_frame(&self, text: &str) -> Bytes {
        frame(&self.response(vec![json!({"text": text})], None))
    }

    fn generation(&self, content: Option<&str>, calls: &[ScriptedCall]) -> Response {
        let text = content.filter(|c| !c.is_empty());
        let call_parts: Vec<Value> = calls.iter().enumerate().map(|(i, c)| self.call_part(i, c)).collect();
        let usage = self.usage(content, calls);
        if !self.stream {
            let mut parts: Vec<Value> = text.map(|t| json!({"text": t})).into_iter().collect();
            parts.extend(call_parts);
            if parts.is_empty() {
                parts.push(json!({"text": ""}));
            }
            return json_response(StatusCode::OK, &self.response(parts, Some(usage)));
        }

        // Each chunk's parts; the last one also says why the model stopped.
        let mut chunks: Vec<Vec<Value>> = text
            .map(|t| split_pieces(t, 3))
            .unwrap_or_default()
            .into_iter()
            .map(|p| vec![json!({"text": p})])
            .collect();
        if !call_parts.is_empty() {
            chunks.push(call_parts);
        }
        let last_parts = chunks.pop().unwrap_or_else(|| vec![json!({"text": ""})]);
        let mut frames: Vec<Bytes> = chunks.into_iter().map(|parts| frame(&self.response(parts, None))).collect();
        frames.push(frame(&self.response(last_parts, Some(usage))));
        sse_response(frames_body(frames))
    }
}

/// A `data:` frame, ended the way Google's servers end them.
fn frame(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\r\n\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(path: &str, body: &Value) -> Option<Answer> {
        Answer::new(&WireRequest { body, seq: 7, path })
    }

    #[test]
    fn the_path_names_the_model_and_the_method() {
        let body = json!({});
        let a = answer("/v1beta/models/gemini-2.0-flash:streamGenerateContent", &body);
        assert!(a.as_ref().is_some_and(|a| a.stream && a.model == "gemini-2.0-flash"));
        let a = answer("/v1beta/models/gemini-2.0-flash:generateContent", &body);
        assert!(a.is_some_and(|a| !a.stream));
        assert!(answer("/v1beta/models/gemini-2.0-flash:countTokens", &body).is_none());
        assert!(answer("/v1beta/models/gemini-2.0-flash", &body).is_none());
    }

    #[test]
    fn prompt_tokens_count_the_system_instruction_and_the_contents() {
        let body = json!({
            "systemInstruction": {"parts": [{"text": "12345678"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "abcd"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            ],
        });
        let a = answer("/v1beta/models/m:streamGenerateContent", &body);
        assert_eq!(a.map(|a| a.prompt_tokens), Some(3));
    }

    #[test]
    fn calls_carry_object_arguments_ids_and_signatures() {
        let body = json!({});
        let a = answer("/v1beta/models/m:streamGenerateContent", &body);
        let a = a.unwrap_or_else(|| panic!("no answer"));
        let part = a.call_part(1, &ScriptedCall::new("f", r#"{"a": 1}"#).with_id("x"));
        assert_eq!(
            part,
            json!({"functionCall": {"name": "f", "args": {"a": 1}, "id": "x"}, "thoughtSignature": "sig-7-1"})
        );
        let part = a.call_part(0, &ScriptedCall::new("g", "not json"));
        assert_eq!(part["functionCall"], json!({"name": "g", "args": {}}));
    }
}
