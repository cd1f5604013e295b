//! `/v1/models` and `/v1/chat/completions` in OpenAI's wire format.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_core::{AgentProfile, TurnHandle};
use steward_protocol::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChunkChoice, CompletionUsage, Delta, Model,
    ModelList, ResponseMessage, UsageField,
};
use steward_protocol::{ErrorCode, Event, FinishReason, Message, TurnInput, Usage, UserTurn};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Actor;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::{sse, AppState, CONVERSATION_HEADER};

fn model_of(agent: &AgentProfile) -> Model {
    Model { id: agent.id.clone(), object: "model".into(), created: agent.created, owned_by: "steward".into() }
}

fn unknown_model(state: &AppState, id: &str) -> ApiError {
    let available: Vec<&str> = state.engine.agents().all().map(|a| a.id.as_str()).collect();
    let gateway = match &state.gateway {
        Some(g) => {
            format!(" Through the gateway: {}, or any provider/model of a configured provider.", g.models().join(", "))
        }
        None => String::new(),
    };
    ApiError::new(
        ErrorCode::ModelNotFound,
        format!("The model '{id}' does not exist. Steward's agents: {}.{gateway}", available.join(", ")),
    )
    .with_param("model")
}

/// A gateway model as `/v1/models` lists it.
fn gateway_model(id: &str) -> Model {
    Model { id: id.to_string(), object: "model".into(), created: 0, owned_by: "steward-gateway".into() }
}

pub async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    let mut data: Vec<Model> = state.engine.agents().all().map(model_of).collect();
    if let Some(g) = &state.gateway {
        data.extend(g.models().iter().map(|m| gateway_model(m)));
    }
    Json(ModelList { object: "list".into(), data })
}

pub async fn get_model(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Model>, ApiError> {
    if let Some(agent) = state.engine.agents().get(&id) {
        return Ok(Json(model_of(agent)));
    }
    match &state.gateway {
        Some(g) if g.routes(&id) => Ok(Json(gateway_model(&id))),
        _ => Err(unknown_model(&state, &id)),
    }
}

/// The conversation a client asks to continue, from the header.
fn requested_conversation(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(CONVERSATION_HEADER) {
        None => Ok(None),
        Some(v) => match v.to_str().map(str::trim) {
            Ok(id) if !id.is_empty() => Ok(Some(id.to_string())),
            _ => Err(ApiError::invalid(format!("the {CONVERSATION_HEADER} header must hold a conversation id"))),
        },
    }
}

pub async fn chat_completions(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(&headers, body, state.settings.max_body_bytes).await?;
    let request: ChatCompletionRequest = parse_json(&bytes, None)?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid("'messages' is empty; send at least one user message").with_param("messages"));
    }
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| m.to_message().map_err(|e| ApiError::invalid(e).with_param(format!("messages[{i}].role"))))
        .collect::<Result<Vec<Message>, ApiError>>()?;
    if state.engine.agents().get(&request.model).is_none() {
        return match &state.gateway {
            Some(g) if g.routes(&request.model) => {
                crate::gateway::chat(g.llm(), state.engine.clock().now_ms(), request, messages).await
            }
            _ => Err(unknown_model(&state, &request.model)),
        };
    }
    let conversation_id = requested_conversation(&headers)?;
    let handle = state
        .engine
        .start_turn(UserTurn {
            conversation_id,
            agent: request.model.clone(),
            input: TurnInput::History { messages },
            actor: Some(actor.0),
        })
        .await?;
    let conversation = HeaderValue::from_str(&handle.conversation_id)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the conversation id cannot be sent as a header"))?;
    let created = state.engine.clock().now_ms() / 1000;
    let id = format!("chatcmpl-{}", handle.turn_id.trim_start_matches("turn_"));
    let include_usage = request.stream_options.as_ref().map(|o| o.include_usage).unwrap_or(false);
    if request.stream.unwrap_or(false) {
        // Like OpenAI, answer with an HTTP error status when the turn fails
        // before its first output (a provider's 429 or 5xx, say), so
        // clients can see the status and retry; later errors go in the stream.
        let mut handle = handle;
        let mut first = Vec::new();
        loop {
            match handle.events.recv().await {
                Some(Event::Error { code, message, .. }) => return Err(ApiError::new(code, message)),
                Some(e @ (Event::TextDelta { .. } | Event::TurnFinished { .. })) => {
                    first.push(e);
                    break;
                }
                Some(
                    e @ (Event::TurnStarted { .. }
                    | Event::ToolCallStarted { .. }
                    | Event::ToolResult { .. }
                    | Event::ApprovalRequested { .. }
                    | Event::ApprovalUpdated { .. }
                    | Event::ToolDebug { .. }
                    | Event::DelegationStarted { .. }
                    | Event::Delegated { .. }
                    | Event::DelegationFinished { .. }
                    | Event::TaskUpdated { .. }
                    | Event::LlmCall { .. }
                    | Event::ToolProgress { .. }
                    | Event::MessageStored { .. }),
                ) => first.push(e),
                None => return Err(ended_early()),
            }
        }
        let frames = stream_chunks(handle, first, ChunkHead { id, created, model: request.model, include_usage });
        Ok(sse::response(frames, vec![(CONVERSATION_HEADER, conversation)]))
    } else {
        let completion = collect(handle, id, created, request.model).await?;
        let mut response = Json(completion).into_response();
        response.headers_mut().insert(CONVERSATION_HEADER, conversation);
        Ok(response)
    }
}

/// The error for a turn whose events stopped without `TurnFinished` (the
/// turn panicked).
pub(crate) fn ended_early() -> ApiError {
    ApiError::new(ErrorCode::Internal, "the turn ended unexpectedly before it finished; see the server log")
}

async fn collect(mut handle: TurnHandle, id: String, created: i64, model: String) -> Result<ChatCompletion, ApiError> {
    let mut content = String::new();
    let mut finish = None;
    let mut usage = Usage::default();
    let mut error = None;
    while let Some(event) = handle.events.recv().await {
        match event {
            Event::TextDelta { delta, .. } => content.push_str(&delta),
            Event::TurnFinished { finish_reason, usage: u, .. } => {
                finish = Some(finish_reason);
                usage = u;
            }
            Event::Error { code, message, .. } => error = Some(ApiError::new(code, message)),
            Event::TurnStarted { .. }
            | Event::ToolCallStarted { .. }
            | Event::ToolResult { .. }
            | Event::ApprovalRequested { .. }
            | Event::ApprovalUpdated { .. }
            | Event::ToolDebug { .. }
            | Event::DelegationStarted { .. }
            | Event::Delegated { .. }
            | Event::DelegationFinished { .. }
            | Event::TaskUpdated { .. }
            | Event::LlmCall { .. }
            | Event::ToolProgress { .. }
            | Event::MessageStored { .. } => {}
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let finish: FinishReason = finish.ok_or_else(ended_early)?;
    Ok(ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: Some(content),
                refusal: None,
                tool_calls: None,
            },
            finish_reason: finish.openai().into(),
            logprobs: None,
        }],
        usage: usage.into(),
        system_fingerprint: None,
    })
}

pub(crate) struct ChunkHead {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) model: String,
    pub(crate) include_usage: bool,
}

impl ChunkHead {
    pub(crate) fn chunk(&self, delta: Option<Delta>, finish: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: None,
            choices: delta
                .map(|delta| {
                    vec![ChunkChoice { index: 0, delta, finish_reason: finish.map(String::from), logprobs: None }]
                })
                .unwrap_or_default(),
            usage: if self.include_usage { UsageField::Null } else { UsageField::Absent },
        }
    }
}

pub(crate) fn frame<T: serde::Serialize>(value: &T) -> bytes::Bytes {
    sse::data(&serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
}

/// Turns engine events into OpenAI chunks: the role first, content deltas,
/// a final chunk with `finish_reason`, the usage chunk when asked, `[DONE]`.
fn stream_chunks(mut handle: TurnHandle, first: Vec<Event>, head: ChunkHead) -> ReceiverStream<bytes::Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let role = head.chunk(
            Some(Delta { role: Some("assistant".into()), content: Some(String::new()), tool_calls: None }),
            None,
        );
        if tx.send(frame(&role)).await.is_err() {
            return;
        }
        let mut first = first.into_iter();
        loop {
            let event = match first.next() {
                Some(e) => e,
                None => match handle.events.recv().await {
                    Some(e) => e,
                    None => {
                        // No `TurnFinished`: the turn died; say so rather than end silently.
                        let _ = tx.send(frame(&ended_early().body())).await;
                        return;
                    }
                },
            };
            let out = match event {
                Event::TextDelta { delta, .. } => {
                    vec![frame(&head.chunk(Some(Delta { role: None, content: Some(delta), tool_calls: None }), None))]
                }
                Event::TurnFinished { finish_reason, usage, .. } => {
                    let mut out = vec![frame(&head.chunk(Some(Delta::default()), Some(finish_reason.openai())))];
                    if head.include_usage {
                        let mut last = head.chunk(None, None);
                        last.usage = UsageField::Counts(CompletionUsage::from(usage));
                        out.push(frame(&last));
                    }
                    out.push(sse::data("[DONE]"));
                    for f in out {
                        let _ = tx.send(f).await;
                    }
                    return;
                }
                Event::Error { code, message, .. } => {
                    // OpenAI's SDKs raise on a data frame that holds an error object.
                    let _ = tx.send(frame(&ApiError::new(code, message).body())).await;
                    return;
                }
                Event::TurnStarted { .. }
                | Event::ToolCallStarted { .. }
                | Event::ToolResult { .. }
                | Event::ApprovalRequested { .. }
                | Event::ApprovalUpdated { .. }
                | Event::ToolDebug { .. }
                | Event::DelegationStarted { .. }
                | Event::Delegated { .. }
                | Event::DelegationFinished { .. }
                | Event::TaskUpdated { .. }
                | Event::LlmCall { .. }
                | Event::ToolProgress { .. }
                | Event::MessageStored { .. } => Vec::new(),
            };
            for f in out {
                if tx.send(f).await.is_err() {
                    return;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
