//! Gateway mode: a chat completion whose model is a tier or
//! `provider/model` goes straight through the router — the client's
//! messages and tools, no agent, no stored conversation — with the router's
//! fallback, budgets and ledger. Tool calls go back to the client, as an
//! OpenAI-compatible server would send them.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use steward_core::{Llm, LlmChunk, LlmError, LlmErrorKind, LlmRequest, ToolDefinition};
use steward_protocol::openai::{
    ChatCompletion, ChatCompletionRequest, Choice, CompletionUsage, Delta, DeltaToolCall, ResponseMessage, UsageField,
    WireToolCall,
};
use steward_protocol::{ErrorCode, FinishReason, Message, Usage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ApiError;
use crate::openai::{frame, ChunkHead};
use crate::sse;

/// The HTTP error for a model call that failed before any output.
fn api_error(e: LlmError) -> ApiError {
    let code = match e.kind {
        LlmErrorKind::BudgetExceeded => ErrorCode::BudgetExceeded,
        LlmErrorKind::Timeout => ErrorCode::Timeout,
        LlmErrorKind::ModelNotFound => ErrorCode::ModelNotFound,
        LlmErrorKind::NotConfigured => ErrorCode::LlmNotConfigured,
        LlmErrorKind::BadRequest | LlmErrorKind::ContextLengthExceeded | LlmErrorKind::ContentPolicy => {
            ErrorCode::InvalidRequest
        }
        LlmErrorKind::Authentication
        | LlmErrorKind::RateLimited { .. }
        | LlmErrorKind::Overloaded
        | LlmErrorKind::Server { .. }
        | LlmErrorKind::Network
        | LlmErrorKind::InvalidResponse => ErrorCode::LlmFailed,
    };
    ApiError::new(code, e.to_string())
}

fn wire_call(c: &steward_protocol::ToolCall) -> WireToolCall {
    WireToolCall::from(c)
}

pub async fn chat(
    llm: Arc<dyn Llm>,
    now_ms: i64,
    request: ChatCompletionRequest,
    messages: Vec<Message>,
) -> Result<Response, ApiError> {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let tools = request
        .tools
        .iter()
        .flatten()
        .map(|t| ToolDefinition {
            name: t.function.name.clone(),
            description: t.function.description.clone().unwrap_or_default(),
            parameters: t
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        })
        .collect();
    let llm_request = LlmRequest {
        model: Some(request.model.clone()),
        messages,
        tools,
        temperature: request.temperature,
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        caller: Some("gateway".into()),
        trace_id: Some(id.clone()),
        ..LlmRequest::default()
    };
    let head = ChunkHead {
        id,
        created: now_ms / 1000,
        model: request.model.clone(),
        include_usage: request.stream_options.as_ref().map(|o| o.include_usage).unwrap_or(false),
    };
    // The router answers with an error before any output, or with a stream.
    let stream = llm.stream(llm_request).await.map_err(api_error)?;
    if request.stream.unwrap_or(false) {
        return Ok(sse::response(stream_chunks(stream, head), Vec::new()));
    }
    let mut stream = stream;
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut usage = Usage::default();
    let mut finish = FinishReason::Stop;
    while let Some(chunk) = stream.next().await {
        match chunk.map_err(api_error)? {
            LlmChunk::Text(t) => text.push_str(&t),
            LlmChunk::ToolCall(c) => calls.push(wire_call(&c)),
            LlmChunk::Usage(u) => usage = u,
            LlmChunk::Finish(f) => finish = f,
        }
    }
    let completion = ChatCompletion {
        id: head.id,
        object: "chat.completion".into(),
        created: head.created,
        model: head.model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
                refusal: None,
                tool_calls: (!calls.is_empty()).then_some(calls),
            },
            finish_reason: finish.openai().into(),
            logprobs: None,
        }],
        usage: usage.into(),
        system_fingerprint: None,
    };
    Ok(Json(completion).into_response())
}

fn stream_chunks(mut stream: steward_core::LlmStream, head: ChunkHead) -> ReceiverStream<bytes::Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let role = Delta { role: Some("assistant".into()), content: Some(String::new()), tool_calls: None };
        if tx.send(frame(&head.chunk(Some(role), None))).await.is_err() {
            return;
        }
        let mut usage = None;
        let mut index = 0u32;
        while let Some(chunk) = stream.next().await {
            let out = match chunk {
                Ok(LlmChunk::Text(t)) => frame(&head.chunk(Some(Delta { content: Some(t), ..Delta::default() }), None)),
                Ok(LlmChunk::ToolCall(c)) => {
                    let call = DeltaToolCall { index, call: wire_call(&c) };
                    index += 1;
                    frame(&head.chunk(Some(Delta { tool_calls: Some(vec![call]), ..Delta::default() }), None))
                }
                Ok(LlmChunk::Usage(u)) => {
                    usage = Some(u);
                    continue;
                }
                Ok(LlmChunk::Finish(f)) => frame(&head.chunk(Some(Delta::default()), Some(f.openai()))),
                Err(e) => {
                    let _ = tx.send(frame(&api_error(e).body())).await;
                    return;
                }
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
        if head.include_usage {
            let mut last = head.chunk(None, None);
            last.usage = UsageField::Counts(CompletionUsage::from(usage.unwrap_or_default()));
            let _ = tx.send(frame(&last)).await;
        }
        let _ = tx.send(sse::data("[DONE]")).await;
    });
    ReceiverStream::new(rx)
}
