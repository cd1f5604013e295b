#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;

use async_trait::async_trait;
use steward_protocol::Effect;

use super::*;
use crate::llm::{LlmError, LlmStream};
use crate::policy::Decision;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};
use crate::AgentProfile;

/// An in-memory store, enough to drive the engine.
#[derive(Default)]
struct MemStore {
    conversations: StdMutex<Vec<Conversation>>,
    messages: StdMutex<Vec<StoredMessage>>,
    fingerprints: StdMutex<Vec<(String, String)>>,
}

#[async_trait]
impl Store for MemStore {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn create_conversation(&self, agent: &str, title: Option<&str>) -> Result<Conversation, StoreError> {
        let mut c = self.conversations.lock().unwrap();
        let conv = Conversation {
            id: format!("c{}", c.len()),
            agent: agent.into(),
            title: title.map(String::from),
            created_at: 0,
            updated_at: 0,
            debug: false,
        };
        c.push(conv.clone());
        Ok(conv)
    }
    async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        Ok(self.conversations.lock().unwrap().iter().find(|c| c.id == id).cloned())
    }
    async fn list_conversations(&self, _limit: u32) -> Result<Vec<Conversation>, StoreError> {
        Ok(self.conversations.lock().unwrap().clone())
    }
    async fn append_messages(&self, new: Vec<NewMessage>) -> Result<Vec<StoredMessage>, StoreError> {
        let mut all = self.messages.lock().unwrap();
        let mut out = Vec::new();
        for n in new {
            let seq = all.iter().filter(|m| m.conversation_id == n.conversation_id).count() as i64;
            let m = StoredMessage {
                id: format!("m{}", all.len()),
                conversation_id: n.conversation_id,
                seq,
                role: n.message.role,
                content: n.message.content,
                tool_calls: n.message.tool_calls,
                tool_call_id: n.message.tool_call_id,
                name: n.message.name,
                created_at: 0,
            };
            all.push(m.clone());
            out.push(m);
        }
        Ok(out)
    }
    async fn list_messages(&self, id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self.messages.lock().unwrap().iter().filter(|m| m.conversation_id == id).cloned().collect())
    }
    async fn set_client_fingerprint(&self, id: &str, fp: &str) -> Result<(), StoreError> {
        let mut f = self.fingerprints.lock().unwrap();
        f.retain(|(c, _)| c != id);
        f.push((id.to_string(), fp.to_string()));
        Ok(())
    }
    async fn record_usage(&self, _record: &crate::UsageRecord) -> Result<(), StoreError> {
        Ok(())
    }
    async fn usage_totals(&self, _since: i64, _group: crate::UsageGroup) -> Result<Vec<crate::UsageTotal>, StoreError> {
        Ok(Vec::new())
    }
    async fn find_by_client_fingerprint(&self, fp: &str) -> Result<Option<Conversation>, StoreError> {
        let id = self.fingerprints.lock().unwrap().iter().find(|(_, f)| f == fp).map(|(c, _)| c.clone());
        match id {
            Some(id) => self.get_conversation(&id).await,
            None => Ok(None),
        }
    }
}

/// A model that plays back a script, one entry per call, and records the
/// requests it saw.
#[derive(Default)]
struct ScriptLlm {
    script: StdMutex<VecDeque<Result<Vec<LlmChunk>, LlmError>>>,
    seen: StdMutex<Vec<LlmRequest>>,
}

impl ScriptLlm {
    fn new(steps: Vec<Result<Vec<LlmChunk>, LlmError>>) -> Arc<Self> {
        Arc::new(ScriptLlm { script: StdMutex::new(steps.into()), seen: StdMutex::default() })
    }
}

#[async_trait]
impl Llm for ScriptLlm {
    fn name(&self) -> &str {
        "script"
    }
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        self.seen.lock().unwrap().push(request);
        let next = self.script.lock().unwrap().pop_front();
        // By this test's convention, a `Finish(Error)` chunk stands for the
        // connection breaking at that point of the stream.
        let item = |c: LlmChunk| match c {
            LlmChunk::Finish(FinishReason::Error) => {
                Err(LlmError::new("script", LlmErrorKind::Network, "connection reset"))
            }
            other => Ok(other),
        };
        match next {
            Some(Ok(chunks)) => Ok(Box::pin(futures::stream::iter(chunks.into_iter().map(item)))),
            Some(Err(e)) => Err(e),
            None => Ok(Box::pin(futures::stream::iter(vec![Ok(LlmChunk::Text("(script exhausted)".into()))]))),
        }
    }
}

struct TestTool {
    spec: ToolSpec,
    delay: Duration,
    output: String,
    calls: StdMutex<Vec<serde_json::Value>>,
}

impl TestTool {
    fn new(name: &str, effect: Effect, delay_ms: u64, output: &str) -> Arc<Self> {
        Arc::new(TestTool {
            spec: ToolSpec {
                name: name.into(),
                description: format!("test tool {name}"),
                parameters: serde_json::json!({"type": "object"}),
                effect,
                timeout: Duration::from_millis(200),
                output_cap: 64,
                domain: None,
            },
            delay: Duration::from_millis(delay_ms),
            output: output.into(),
            calls: StdMutex::default(),
        })
    }
}

#[async_trait]
impl Tool for TestTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    async fn call(&self, arguments: serde_json::Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        self.calls.lock().unwrap().push(arguments);
        tokio::time::sleep(self.delay).await;
        Ok(self.output.clone())
    }
}

struct Fixture {
    engine: Engine,
    llm: Arc<ScriptLlm>,
    store: Arc<MemStore>,
    echo: Arc<TestTool>,
    slow: Arc<TestTool>,
    big: Arc<TestTool>,
    switch: Arc<TestTool>,
}

fn fixture(steps: Vec<Result<Vec<LlmChunk>, LlmError>>, max_steps: u32) -> Fixture {
    let llm = ScriptLlm::new(steps);
    let store = Arc::new(MemStore::default());
    let echo = TestTool::new("echo", Effect::Read, 0, "echoed");
    let slow = TestTool::new("slow", Effect::Read, 5_000, "too late");
    let big = TestTool::new("big", Effect::Read, 0, &"x".repeat(1000));
    let switch = TestTool::new("switch", Effect::Mutate, 0, "switched");
    let mut tools = ToolRegistry::new();
    for t in [&echo, &slow, &big, &switch] {
        tools.register(t.clone());
    }
    let mut agents = AgentRegistry::builtin();
    let mut profile = AgentProfile::architect();
    profile.tools = vec!["echo".into(), "slow".into(), "big".into(), "switch".into()];
    agents.insert(profile);
    let engine = Engine::new(EngineParts {
        llm: llm.clone(),
        store: store.clone(),
        tools,
        agents,
        clock: Arc::new(crate::SystemClock),
        limits: EngineLimits { max_steps, max_parallel_tools: 4 },
    });
    Fixture { engine, llm, store, echo, slow, big, switch }
}

/// An engine whose architect has exactly one tool.
fn engine_with_tool(llm: Arc<ScriptLlm>, tool: Arc<dyn Tool>, limits: EngineLimits) -> Engine {
    let mut tools = ToolRegistry::new();
    let name = tool.spec().name.clone();
    tools.register(tool);
    let mut agents = AgentRegistry::builtin();
    let mut profile = AgentProfile::architect();
    profile.tools = vec![name];
    agents.insert(profile);
    Engine::new(EngineParts {
        llm,
        store: Arc::new(MemStore::default()),
        tools,
        agents,
        clock: Arc::new(crate::SystemClock),
        limits,
    })
}

fn spec(name: &str, timeout: Duration) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("test tool {name}"),
        parameters: serde_json::json!({"type": "object"}),
        effect: Effect::Read,
        timeout,
        output_cap: 256,
        domain: None,
    }
}

fn call(id: &str, name: &str, args: &str) -> LlmChunk {
    LlmChunk::ToolCall(ToolCall::new(id, name, args))
}

fn text(t: &str) -> LlmChunk {
    LlmChunk::Text(t.into())
}

async fn run(engine: &Engine, content: &str) -> (TurnHandle, Vec<Event>) {
    let mut handle = engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent: "architect".into(),
            input: TurnInput::Message { content: content.into() },
            actor: None,
        })
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(e) = handle.events.recv().await {
        events.push(e);
    }
    (handle, events)
}

fn finished(events: &[Event]) -> (FinishReason, u32) {
    match events.last() {
        Some(Event::TurnFinished { finish_reason, steps, .. }) => (*finish_reason, *steps),
        other => panic!("last event is not TurnFinished: {other:?}"),
    }
}

fn tool_results(events: &[Event]) -> Vec<(String, bool, String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ToolResult { name, ok, output, truncated, .. } => {
                Some((name.clone(), *ok, output.clone(), *truncated))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_plain_answer_streams_and_is_stored() {
    let f = fixture(vec![Ok(vec![text("Hel"), text("lo"), LlmChunk::Usage(Usage::new(7, 2))])], 4);
    let (handle, events) = run(&f.engine, "hi").await;
    let deltas: String = events
        .iter()
        .filter_map(|e| match e {
            Event::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, "Hello");
    assert!(matches!(events.first(), Some(Event::TurnStarted { .. })));
    assert_eq!(finished(&events), (FinishReason::Stop, 1));
    match events.last() {
        Some(Event::TurnFinished { usage, .. }) => assert_eq!(usage.total(), 9),
        _ => unreachable!(),
    }
    let stored = f.store.list_messages(&handle.conversation_id).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| (m.role, m.content.as_str())).collect::<Vec<_>>(),
        vec![(Role::User, "hi"), (Role::Assistant, "Hello")]
    );
    let conv = f.store.get_conversation(&handle.conversation_id).await.unwrap().unwrap();
    assert_eq!(conv.title.as_deref(), Some("hi"));
    // The model saw the agent's prompt first, then the user.
    let seen = f.llm.seen.lock().unwrap();
    assert_eq!(seen[0].messages[0].role, Role::System);
    assert_eq!(seen[0].messages[1], Message::user("hi"));
    assert_eq!(seen[0].tools.len(), 4);
}

#[tokio::test]
async fn tool_calls_run_in_parallel_and_results_go_back_to_the_model() {
    let f = fixture(
        vec![Ok(vec![call("a", "echo", r#"{"q":1}"#), call("b", "echo", r#"{"q":2}"#)]), Ok(vec![text("done")])],
        4,
    );
    let (handle, events) = run(&f.engine, "go").await;
    assert_eq!(finished(&events), (FinishReason::Stop, 2));
    assert_eq!(f.echo.calls.lock().unwrap().len(), 2);
    let second = f.llm.seen.lock().unwrap()[1].clone();
    let tail: Vec<_> = second.messages.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(tail[0].tool_calls.len(), 2);
    assert_eq!(tail[1], Message::tool("a", "echo", "echoed"));
    assert_eq!(tail[2], Message::tool("b", "echo", "echoed"));
    let stored = f.store.list_messages(&handle.conversation_id).await.unwrap();
    let roles: Vec<Role> = stored.iter().map(|m| m.role).collect();
    assert_eq!(roles, vec![Role::User, Role::Assistant, Role::Tool, Role::Tool, Role::Assistant]);
}

#[tokio::test]
async fn a_slow_tool_times_out_and_the_turn_goes_on() {
    let f = fixture(vec![Ok(vec![call("a", "slow", "{}")]), Ok(vec![text("ok")])], 4);
    let (_, events) = run(&f.engine, "go").await;
    let results = tool_results(&events);
    assert_eq!(results.len(), 1);
    assert!(!results[0].1);
    assert!(results[0].2.contains("timed out after 200 ms"), "{}", results[0].2);
    assert_eq!(finished(&events), (FinishReason::Stop, 2));
}

#[tokio::test]
async fn big_output_is_capped_with_advice_to_narrow() {
    let f = fixture(vec![Ok(vec![call("a", "big", "{}")]), Ok(vec![text("ok")])], 4);
    let (_, events) = run(&f.engine, "go").await;
    let results = tool_results(&events);
    assert!(results[0].1 && results[0].3);
    assert!(results[0].2.starts_with(&"x".repeat(64)));
    assert!(!results[0].2.starts_with(&"x".repeat(65)));
    assert!(results[0].2.contains("narrow"));
    let second = f.llm.seen.lock().unwrap()[1].clone();
    assert!(second.messages.last().unwrap().content.contains("truncated"));
}

#[tokio::test]
async fn a_mutating_tool_is_not_executed_without_approval() {
    let f = fixture(vec![Ok(vec![call("a", "switch", "{}")]), Ok(vec![text("I would switch it.")])], 4);
    let (_, events) = run(&f.engine, "switch it").await;
    assert!(f.switch.calls.lock().unwrap().is_empty(), "a mutate tool ran without approval");
    let results = tool_results(&events);
    assert!(!results[0].1);
    assert!(results[0].2.contains("needs a person's approval"), "{}", results[0].2);
    assert_eq!(f.engine.metrics().tool_calls_blocked.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn bad_arguments_and_unknown_tools_are_reported_to_the_model() {
    let f = fixture(
        vec![
            Ok(vec![call("a", "echo", "{not json"), call("b", "nope", "{}"), call("c", "echo", "[1]")]),
            Ok(vec![text("ok")]),
        ],
        4,
    );
    let (_, events) = run(&f.engine, "go").await;
    let results = tool_results(&events);
    assert!(results[0].2.contains("not valid JSON"), "{}", results[0].2);
    assert!(results[1].2.contains("no tool named 'nope'"), "{}", results[1].2);
    assert!(results[2].2.contains("must be a JSON object"), "{}", results[2].2);
    assert!(results.iter().all(|r| !r.1));
    assert!(f.echo.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_step_limit_ends_a_looping_model() {
    let f = fixture((0..5).map(|i| Ok(vec![call(&format!("c{i}"), "echo", "{}")])).collect(), 3);
    let (_, events) = run(&f.engine, "loop").await;
    assert_eq!(finished(&events), (FinishReason::Length, 3));
    assert_eq!(f.echo.calls.lock().unwrap().len(), 3);
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            Event::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.contains("step limit"), "{text}");
}

#[tokio::test]
async fn no_model_configured_gives_a_helpful_reply_not_an_error() {
    let store = Arc::new(MemStore::default());
    let engine = Engine::new(EngineParts {
        llm: Arc::new(crate::UnconfiguredLlm),
        store: store.clone(),
        tools: ToolRegistry::new(),
        agents: AgentRegistry::builtin(),
        clock: Arc::new(crate::SystemClock),
        limits: EngineLimits::default(),
    });
    let (handle, events) = run(&engine, "hello").await;
    assert_eq!(finished(&events), (FinishReason::Stop, 1));
    assert!(!events.iter().any(|e| matches!(e, Event::Error { .. })));
    let stored = store.list_messages(&handle.conversation_id).await.unwrap();
    assert!(stored[1].content.contains("OPENAI_API_KEY"));
    assert!(stored[1].content.contains("OLLAMA_HOST"));
}

#[tokio::test]
async fn a_failing_model_ends_the_turn_with_an_error_naming_the_provider() {
    let err = LlmError::new("openai", LlmErrorKind::Server { status: 500 }, "boom");
    let f = fixture(vec![Err(err)], 4);
    let (handle, events) = run(&f.engine, "hi").await;
    assert_eq!(finished(&events).0, FinishReason::Error);
    let message = events
        .iter()
        .find_map(|e| match e {
            Event::Error { code, message, .. } => Some((*code, message.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(message.0, ErrorCode::LlmFailed);
    assert!(message.1.contains("openai") && message.1.contains("boom"), "{}", message.1);
    // The user's message is kept.
    assert_eq!(f.store.list_messages(&handle.conversation_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn history_input_is_the_context_and_continuing_stores_only_the_new_message() {
    let f = fixture(vec![Ok(vec![text("one")]), Ok(vec![text("two")])], 4);
    let history =
        vec![Message::system("client prompt"), Message::user("a"), Message::assistant("b"), Message::user("c")];
    let mut h = f
        .engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent: "architect".into(),
            input: TurnInput::History { messages: history.clone() },
            actor: None,
        })
        .await
        .unwrap();
    while h.events.recv().await.is_some() {}
    assert_eq!(f.store.list_messages(&h.conversation_id).await.unwrap().len(), 5);
    assert_eq!(&f.llm.seen.lock().unwrap()[0].messages[1..], &history[..]);

    let mut more = history.clone();
    more.push(Message::assistant("one"));
    more.push(Message::user("d"));
    let mut h2 = f
        .engine
        .start_turn(UserTurn {
            conversation_id: Some(h.conversation_id.clone()),
            agent: "architect".into(),
            input: TurnInput::History { messages: more },
            actor: None,
        })
        .await
        .unwrap();
    while h2.events.recv().await.is_some() {}
    let stored = f.store.list_messages(&h.conversation_id).await.unwrap();
    assert_eq!(stored.len(), 7);
    assert_eq!(stored[5].content, "d");
    assert_eq!(stored[6].content, "two");
}

#[tokio::test]
async fn invalid_turns_are_refused_before_anything_is_stored() {
    let f = fixture(vec![], 4);
    let bad_agent = f
        .engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent: "nobody".into(),
            input: TurnInput::Message { content: "x".into() },
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_agent.code(), ErrorCode::ModelNotFound);
    assert!(bad_agent.to_string().contains("architect"));
    let missing = f
        .engine
        .start_turn(UserTurn {
            conversation_id: Some("missing".into()),
            agent: "architect".into(),
            input: TurnInput::Message { content: "x".into() },
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), ErrorCode::NotFound);
    let last_not_user = f
        .engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent: "architect".into(),
            input: TurnInput::History { messages: vec![Message::assistant("x")] },
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(last_not_user.code(), ErrorCode::InvalidRequest);
    assert!(f.store.conversations.lock().unwrap().is_empty());
}

#[tokio::test]
async fn cancel_stops_a_turn_at_the_next_step() {
    let f = fixture(vec![Ok(vec![call("a", "slow", "{}")]), Ok(vec![text("never")])], 4);
    let mut h = f
        .engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent: "architect".into(),
            input: TurnInput::Message { content: "x".into() },
            actor: None,
        })
        .await
        .unwrap();
    // Wait until the tool is running, then cancel.
    while let Some(e) = h.events.recv().await {
        if matches!(e, Event::ToolCallStarted { .. }) {
            break;
        }
    }
    assert!(f.engine.submit(Op::Cancel { turn_id: h.turn_id.clone() }).await.unwrap().is_none());
    let mut last = None;
    while let Some(e) = h.events.recv().await {
        last = Some(e);
    }
    assert!(matches!(last, Some(Event::TurnFinished { finish_reason: FinishReason::Cancelled, .. })), "{last:?}");
    assert_eq!(f.llm.seen.lock().unwrap().len(), 1);
    let _ = (&f.slow, &f.big);
}

/// Waits until `n` calls are inside it at once: if calls ran one after
/// another, the first would time out.
struct Rendezvous {
    spec: ToolSpec,
    barrier: tokio::sync::Barrier,
}

#[async_trait]
impl Tool for Rendezvous {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    async fn call(&self, _arguments: serde_json::Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        self.barrier.wait().await;
        Ok("met".into())
    }
}

#[tokio::test]
async fn tool_calls_of_one_step_run_concurrently() {
    let llm = ScriptLlm::new(vec![
        Ok(vec![call("a", "meet", "{}"), call("b", "meet", "{}"), call("c", "meet", "{}")]),
        Ok(vec![text("ok")]),
    ]);
    let meet =
        Arc::new(Rendezvous { spec: spec("meet", Duration::from_secs(5)), barrier: tokio::sync::Barrier::new(3) });
    let engine = engine_with_tool(llm, meet, EngineLimits { max_steps: 4, max_parallel_tools: 3 });
    let (_, events) = run(&engine, "go").await;
    let results = tool_results(&events);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.1 && r.2 == "met"), "{results:?}");
}

#[tokio::test]
async fn a_broken_off_answer_is_kept_marked_as_interrupted() {
    let f = fixture(vec![Ok(vec![text("The door is "), LlmChunk::Finish(FinishReason::Error)])], 4);
    let (handle, events) = run(&f.engine, "door?").await;
    assert_eq!(finished(&events).0, FinishReason::Error);
    let stored = f.store.list_messages(&handle.conversation_id).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored[1].content.starts_with("The door is "), "{}", stored[1].content);
    assert!(stored[1].content.contains("[interrupted: network]"), "{}", stored[1].content);
}

#[tokio::test]
async fn turns_of_one_conversation_run_one_at_a_time() {
    // The first turn's tool runs until its timeout; the second message,
    // sent meanwhile, must not land between its tool call and its result.
    let f = fixture(vec![Ok(vec![call("a", "slow", "{}")]), Ok(vec![text("first")]), Ok(vec![text("second")])], 4);
    let mut first = f
        .engine
        .start_turn(UserTurn {
            conversation_id: None,
            agent: "architect".into(),
            input: TurnInput::Message { content: "one".into() },
            actor: None,
        })
        .await
        .unwrap();
    while let Some(e) = first.events.recv().await {
        if matches!(e, Event::ToolCallStarted { .. }) {
            break;
        }
    }
    let engine = f.engine.clone();
    let id = first.conversation_id.clone();
    let second = tokio::spawn(async move {
        let mut h = engine
            .start_turn(UserTurn {
                conversation_id: Some(id),
                agent: "architect".into(),
                input: TurnInput::Message { content: "two".into() },
                actor: None,
            })
            .await
            .unwrap();
        while h.events.recv().await.is_some() {}
    });
    while first.events.recv().await.is_some() {}
    second.await.unwrap();
    let stored = f.store.list_messages(&first.conversation_id).await.unwrap();
    let shape: Vec<(Role, &str)> = stored.iter().map(|m| (m.role, m.content.as_str())).collect();
    assert_eq!(shape[0], (Role::User, "one"));
    assert_eq!(shape[1].0, Role::Assistant);
    assert_eq!(shape[2].0, Role::Tool);
    assert_eq!(&shape[3..], &[(Role::Assistant, "first"), (Role::User, "two"), (Role::Assistant, "second")]);
    // The lock entry goes just after the event stream ends.
    for _ in 0..200 {
        if f.engine.inner.conversation_locks.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(f.engine.inner.conversation_locks.lock().unwrap().is_empty(), "lock entries must be released");
}

#[tokio::test]
async fn a_history_resending_client_continues_its_conversation_without_naming_it() {
    let f = fixture(vec![Ok(vec![text("one")]), Ok(vec![text("two")]), Ok(vec![text("other")])], 4);
    let turn = |messages: Vec<Message>| UserTurn {
        conversation_id: None,
        agent: "architect".into(),
        input: TurnInput::History { messages },
        actor: None,
    };
    let mut h1 = f.engine.start_turn(turn(vec![Message::user("a")])).await.unwrap();
    while h1.events.recv().await.is_some() {}
    let mut h2 = f
        .engine
        .start_turn(turn(vec![Message::user("a"), Message::assistant("one"), Message::user("b")]))
        .await
        .unwrap();
    while h2.events.recv().await.is_some() {}
    assert_eq!(h2.conversation_id, h1.conversation_id);
    let stored = f.store.list_messages(&h1.conversation_id).await.unwrap();
    assert_eq!(stored.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["a", "one", "b", "two"]);
    // A different history is a different conversation.
    let mut h3 = f
        .engine
        .start_turn(turn(vec![Message::user("a"), Message::assistant("not one"), Message::user("b")]))
        .await
        .unwrap();
    while h3.events.recv().await.is_some() {}
    assert_ne!(h3.conversation_id, h1.conversation_id);
}

#[tokio::test]
async fn a_stored_tool_call_without_a_result_is_repaired_in_the_context() {
    let f = fixture(vec![Ok(vec![text("ok")])], 4);
    let c = f.store.create_conversation("architect", None).await.unwrap();
    let mut dangling = Message::assistant("");
    dangling.tool_calls = vec![ToolCall::new("x1", "echo", "{}")];
    f.store
        .append_messages(vec![
            NewMessage { conversation_id: c.id.clone(), message: Message::user("a"), turn_id: None },
            NewMessage { conversation_id: c.id.clone(), message: dangling, turn_id: None },
        ])
        .await
        .unwrap();
    let mut h = f
        .engine
        .start_turn(UserTurn {
            conversation_id: Some(c.id.clone()),
            agent: "architect".into(),
            input: TurnInput::Message { content: "b".into() },
            actor: None,
        })
        .await
        .unwrap();
    while h.events.recv().await.is_some() {}
    let sent = f.llm.seen.lock().unwrap()[0].messages.clone();
    let roles: Vec<Role> = sent.iter().map(|m| m.role).collect();
    assert_eq!(roles, vec![Role::System, Role::User, Role::Assistant, Role::Tool, Role::User]);
    assert_eq!(sent[3].tool_call_id.as_deref(), Some("x1"));
    assert_eq!(sent[3].content, history::INTERRUPTED_RESULT);
}

struct Panicky {
    spec: ToolSpec,
}

#[async_trait]
impl Tool for Panicky {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    async fn call(&self, _arguments: serde_json::Value, _ctx: &ToolContext) -> Result<String, ToolError> {
        panic!("tool bug")
    }
}

#[tokio::test]
async fn a_panicking_tool_is_a_failed_call_not_a_dead_turn() {
    let llm = ScriptLlm::new(vec![Ok(vec![call("a", "boom", "{}")]), Ok(vec![text("sorry")])]);
    let engine = engine_with_tool(
        llm,
        Arc::new(Panicky { spec: spec("boom", Duration::from_secs(5)) }),
        EngineLimits::default(),
    );
    let (_, events) = run(&engine, "go").await;
    assert_eq!(finished(&events), (FinishReason::Stop, 2));
    let results = tool_results(&events);
    assert!(!results[0].1 && results[0].2.contains("panicked"), "{results:?}");
}

#[tokio::test]
async fn the_configured_policy_decides_each_call_from_its_targets() {
    use crate::policy::{Preset, Rule, RulePolicy};
    let f = fixture(vec![], 4);
    let policy = RulePolicy {
        preset: Preset::Balanced,
        rules: vec![Rule { tool: Some("echo".into()), domain: None, entity: None, decision: Decision::Deny }],
    };
    let llm = ScriptLlm::new(vec![
        Ok(vec![
            call("a", "switch", r#"{"entity_id": "light.kitchen"}"#),
            call("b", "switch", r#"{"entity_id": "lock.front"}"#),
            call("c", "echo", "{}"),
        ]),
        Ok(vec![text("done")]),
    ]);
    let mut agents = AgentRegistry::builtin();
    let mut profile = AgentProfile::architect();
    profile.tools = vec!["echo".into(), "switch".into()];
    agents.insert(profile);
    let mut tools = ToolRegistry::new();
    tools.register(f.echo.clone());
    tools.register(f.switch.clone());
    let engine = Engine::with_policy(
        EngineParts {
            llm,
            store: Arc::new(MemStore::default()),
            tools,
            agents,
            clock: Arc::new(crate::SystemClock),
            limits: EngineLimits::default(),
        },
        Arc::new(policy),
    );
    let (_, events) = run(&engine, "go").await;
    // Results arrive as calls finish; put them in call order.
    let mut by_call: Vec<(String, bool, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ToolResult { call_id, ok, output, .. } => Some((call_id.clone(), *ok, output.clone())),
            _ => None,
        })
        .collect();
    by_call.sort();
    let results: Vec<(String, bool, String)> = by_call;
    // Balanced lets a light be switched; a lock asks; the rule denies echo.
    assert!(results[0].1 && results[0].2 == "switched", "{results:?}");
    assert!(!results[1].1 && results[1].2.contains("needs a person's approval"), "{results:?}");
    assert!(!results[2].1 && results[2].2.contains("policy denies"), "{results:?}");
    assert_eq!(f.switch.calls.lock().unwrap().len(), 1, "only the light was switched");
    assert!(f.echo.calls.lock().unwrap().is_empty());
}
