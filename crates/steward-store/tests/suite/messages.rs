//! Appending and listing messages.

use std::collections::BTreeSet;

use steward_core::{NewMessage, Store, StoreError};
use steward_protocol::{Message, Role, ToolCall};
use steward_store::SqlStore;

use super::harness::{TestDb, T0};

backend_tests!(
    messages_round_trip_exactly,
    seqs_continue_across_appends,
    append_to_missing_conversation_fails_and_writes_nothing,
    empty_append_is_a_no_op,
    one_append_may_span_conversations,
    concurrent_appends_get_consecutive_seqs,
    unknown_role_in_the_database_is_corrupt,
    malformed_tool_calls_in_the_database_are_corrupt,
    nul_characters_are_stored_alike_on_both_backends,
    client_fingerprints_find_their_conversation,
    the_usage_ledger_sums_by_day_provider_and_model,
);

fn new(conversation_id: &str, message: Message) -> NewMessage {
    NewMessage { conversation_id: conversation_id.to_string(), message, turn_id: Some("turn-1".into()) }
}

/// One message of each shape the engine stores.
fn sample_messages() -> Vec<Message> {
    vec![
        Message::system("You are Steward."),
        Message { name: Some("alice".into()), ..Message::user("What's the weather in Zürich? 🌦") },
        Message {
            role: Role::Assistant,
            content: String::new(),
            tool_calls: vec![
                ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Zürich","units":["c"],"nested":{"q":"\"quoted\""}}"#.into(),
                    // Provider data that must come back unchanged.
                    signature: Some("c2lnbmF0dXJl+/==".into()),
                },
                // Arguments are raw model output: not necessarily valid JSON.
                ToolCall::new("call_2", "clock", "{not json"),
            ],
            tool_call_id: None,
            name: None,
        },
        Message::tool("call_1", "weather", "{\"temp_c\": 12}"),
        Message::tool("call_2", "clock", "error: bad arguments\nline 2"),
        Message::assistant("It's 12 °C.\n\nAnything else?"),
    ]
}

async fn messages_round_trip_exactly(db: &TestDb) {
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    db.clock.set(T0 + 500);
    let input = sample_messages();
    let stored =
        db.store.append_messages(input.iter().cloned().map(|m| new(&conversation.id, m)).collect()).await.unwrap();

    assert_eq!(stored.len(), input.len());
    for (i, (s, m)) in stored.iter().zip(&input).enumerate() {
        assert_eq!(s.seq, i as i64);
        assert_eq!(s.conversation_id, conversation.id);
        assert_eq!(s.created_at, T0 + 500);
        assert_eq!(&s.to_message(), m, "message {i}");
        assert!(uuid::Uuid::parse_str(&s.id).is_ok());
    }
    let ids: BTreeSet<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), stored.len(), "ids are distinct");

    // Read back exactly what append returned.
    let listed = db.store.list_messages(&conversation.id).await.unwrap();
    assert_eq!(listed, stored);
    assert_eq!(listed[2].tool_calls.len(), 2);
    assert_eq!(listed[3].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(listed[3].name.as_deref(), Some("weather"));
    assert_eq!(listed[1].name.as_deref(), Some("alice"));
    assert_eq!(listed[0].tool_call_id, None);

    // The turn id is kept, even though StoredMessage does not carry it.
    let turn_ids: Vec<Option<String>> =
        sqlx::query_scalar("SELECT turn_id FROM messages WHERE conversation_id = $1 ORDER BY seq")
            .bind(&conversation.id)
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert_eq!(turn_ids, vec![Some("turn-1".to_string()); input.len()]);

    // Empty tool_calls are stored as NULL, others as a JSON list.
    let tool_calls: Vec<Option<String>> =
        sqlx::query_scalar("SELECT tool_calls FROM messages WHERE conversation_id = $1 ORDER BY seq")
            .bind(&conversation.id)
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert_eq!(tool_calls[0], None);
    let json: serde_json::Value = serde_json::from_str(tool_calls[2].as_deref().unwrap()).unwrap();
    assert_eq!(json[0]["name"], "weather");
}

async fn seqs_continue_across_appends(db: &TestDb) {
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    let other = db.store.create_conversation("default", None).await.unwrap();
    let first = db
        .store
        .append_messages(vec![
            new(&conversation.id, Message::user("1")),
            new(&conversation.id, Message::assistant("2")),
        ])
        .await
        .unwrap();
    // Another conversation has its own numbering.
    let elsewhere = db.store.append_messages(vec![new(&other.id, Message::user("x"))]).await.unwrap();
    assert_eq!(elsewhere[0].seq, 0);
    let second = db.store.append_messages(vec![new(&conversation.id, Message::user("3"))]).await.unwrap();

    assert_eq!(first.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(second[0].seq, 2);
    let contents: Vec<String> =
        db.store.list_messages(&conversation.id).await.unwrap().into_iter().map(|m| m.content).collect();
    assert_eq!(contents, vec!["1", "2", "3"]);
    assert!(db.store.list_messages("no-such-conversation").await.unwrap().is_empty());
}

async fn append_to_missing_conversation_fails_and_writes_nothing(db: &TestDb) {
    let err = db.store.append_messages(vec![new("missing-id", Message::user("hello?"))]).await.unwrap_err();
    assert!(matches!(&err, StoreError::ConversationNotFound(id) if id == "missing-id"), "{err:?}");
    assert_eq!(err.to_string(), "conversation 'missing-id' not found");

    // Atomic: a call naming one existing and one missing conversation
    // stores nothing and does not touch the existing one.
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    db.clock.set(T0 + 9_000);
    let err = db
        .store
        .append_messages(vec![new(&conversation.id, Message::user("kept?")), new("zzz-missing", Message::user("x"))])
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::ConversationNotFound(id) if id == "zzz-missing"), "{err:?}");
    assert!(db.store.list_messages(&conversation.id).await.unwrap().is_empty());
    assert_eq!(db.store.get_conversation(&conversation.id).await.unwrap().unwrap().updated_at, T0);
}

async fn empty_append_is_a_no_op(db: &TestDb) {
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    db.clock.set(T0 + 5);
    assert!(db.store.append_messages(Vec::new()).await.unwrap().is_empty());
    assert_eq!(db.store.get_conversation(&conversation.id).await.unwrap().unwrap().updated_at, T0);
}

async fn one_append_may_span_conversations(db: &TestDb) {
    let a = db.store.create_conversation("default", None).await.unwrap();
    let b = db.store.create_conversation("default", None).await.unwrap();
    db.store.append_messages(vec![new(&b.id, Message::user("b0"))]).await.unwrap();

    db.clock.set(T0 + 7);
    let stored = db
        .store
        .append_messages(vec![
            new(&a.id, Message::user("a0")),
            new(&b.id, Message::user("b1")),
            new(&a.id, Message::assistant("a1")),
        ])
        .await
        .unwrap();
    let got: Vec<(&str, i64, &str)> =
        stored.iter().map(|m| (m.conversation_id.as_str(), m.seq, m.content.as_str())).collect();
    assert_eq!(got, vec![(a.id.as_str(), 0, "a0"), (b.id.as_str(), 1, "b1"), (a.id.as_str(), 1, "a1")]);
    for id in [&a.id, &b.id] {
        assert_eq!(db.store.get_conversation(id).await.unwrap().unwrap().updated_at, T0 + 7);
    }
    assert_eq!(db.store.list_messages(&b.id).await.unwrap().len(), 2);
}

async fn concurrent_appends_get_consecutive_seqs(db: &TestDb) {
    const WRITERS: usize = 20;
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    // Half the writers go through a second store, as another process would.
    let second = db.reopen().await;

    let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let store: SqlStore = if i % 2 == 0 { db.store.clone() } else { second.clone() };
        let id = conversation.id.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            store.append_messages(vec![new(&id, Message::user(format!("writer {i}")))]).await
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        let stored = task.await.unwrap().unwrap_or_else(|e| panic!("a concurrent append failed: {e}"));
        assert_eq!(stored.len(), 1);
        seqs.push(stored[0].seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..WRITERS as i64).collect::<Vec<_>>(), "distinct, no gaps");

    let listed = db.store.list_messages(&conversation.id).await.unwrap();
    assert_eq!(listed.iter().map(|m| m.seq).collect::<Vec<_>>(), (0..WRITERS as i64).collect::<Vec<_>>());
    let contents: BTreeSet<String> = listed.into_iter().map(|m| m.content).collect();
    assert_eq!(contents, (0..WRITERS).map(|i| format!("writer {i}")).collect::<BTreeSet<_>>());
    second.close().await;
}

async fn insert_raw(db: &TestDb, conversation_id: &str, role: &str, tool_calls: Option<&str>) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, content, tool_calls, created_at) \
         VALUES ($1, $2, 0, $3, 'x', $4, $5)",
    )
    .bind(&id)
    .bind(conversation_id)
    .bind(role)
    .bind(tool_calls.map(str::to_string))
    .bind(T0)
    .execute(db.store.pool())
    .await
    .unwrap();
    id
}

async fn unknown_role_in_the_database_is_corrupt(db: &TestDb) {
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    let id = insert_raw(db, &conversation.id, "wizard", None).await;
    let err = db.store.list_messages(&conversation.id).await.unwrap_err();
    let StoreError::Corrupt(text) = &err else { panic!("expected Corrupt, got {err:?}") };
    assert!(text.contains(&id), "names the row: {text}");
    assert!(text.contains("wizard"), "names the role: {text}");
}

async fn malformed_tool_calls_in_the_database_are_corrupt(db: &TestDb) {
    let conversation = db.store.create_conversation("default", None).await.unwrap();
    let id = insert_raw(db, &conversation.id, "assistant", Some("{oops")).await;
    let err = db.store.list_messages(&conversation.id).await.unwrap_err();
    let StoreError::Corrupt(text) = &err else { panic!("expected Corrupt, got {err:?}") };
    assert!(text.contains(&id), "names the row: {text}");
}

async fn nul_characters_are_stored_alike_on_both_backends(db: &TestDb) {
    let store = &db.store;
    let c = store.create_conversation("architect", Some("a\0b")).await.unwrap();
    assert_eq!(c.title.as_deref(), Some("a\u{FFFD}b"));
    let mut m = Message::tool("call\u{0}1", "to\0ol", "x\0y");
    m.role = Role::Tool;
    let stored = store.append_messages(vec![new(&c.id, m)]).await.unwrap();
    let listed = store.list_messages(&c.id).await.unwrap();
    assert_eq!(stored, listed);
    assert_eq!(listed[0].content, "x\u{FFFD}y");
    assert_eq!(listed[0].tool_call_id.as_deref(), Some("call\u{FFFD}1"));
    assert_eq!(listed[0].name.as_deref(), Some("to\u{FFFD}ol"));
}

async fn client_fingerprints_find_their_conversation(db: &TestDb) {
    let store = &db.store;
    let a = store.create_conversation("architect", None).await.unwrap();
    let b = store.create_conversation("architect", None).await.unwrap();
    assert_eq!(store.find_by_client_fingerprint("fp-1").await.unwrap(), None);
    store.set_client_fingerprint(&a.id, "fp-1").await.unwrap();
    store.set_client_fingerprint(&b.id, "fp-2").await.unwrap();
    assert_eq!(store.find_by_client_fingerprint("fp-1").await.unwrap().map(|c| c.id), Some(a.id.clone()));
    // A conversation moves on: its old fingerprint no longer finds it.
    store.set_client_fingerprint(&a.id, "fp-3").await.unwrap();
    assert_eq!(store.find_by_client_fingerprint("fp-1").await.unwrap(), None);
    assert_eq!(store.find_by_client_fingerprint("fp-3").await.unwrap().map(|c| c.id), Some(a.id));
    let missing = store.set_client_fingerprint("nope", "fp-4").await.unwrap_err();
    assert!(matches!(missing, StoreError::ConversationNotFound(ref id) if id == "nope"), "{missing:?}");
}

async fn the_usage_ledger_sums_by_day_provider_and_model(db: &TestDb) {
    use steward_core::{UsageGroup, UsageRecord};
    let store = &db.store;
    let day = 86_400_000;
    let record = |at: i64, provider: &str, model: &str, cost: i64, outcome: &str, local: bool| UsageRecord {
        created_at: at,
        caller: Some("architect".into()),
        tier: Some("smart".into()),
        provider: provider.into(),
        model: model.into(),
        usage: steward_protocol::Usage { prompt_tokens: 100, completion_tokens: 20, cached_prompt_tokens: 5 },
        cost_micros: cost,
        latency_ms: 12,
        ttft_ms: Some(3),
        outcome: outcome.into(),
        local,
        fallback_path: vec!["anthropic/claude".into()],
        trace_id: Some("turn_1".into()),
    };
    // 2026-11-22 and the day after.
    let d0 = 20_779 * day;
    for r in [
        record(d0 + 1, "openai", "gpt-4o", 1_500, "ok", false),
        record(d0 + 2, "openai", "gpt-4o-mini", 250, "ok", false),
        record(d0 + day + 3, "ollama", "llama3.1", 0, "ok", true),
        record(d0 + day + 4, "openai", "gpt-4o", 0, "rate_limited", false),
        record(d0 - 5, "openai", "gpt-4o", 9_999, "ok", false),
    ] {
        store.record_usage(&r).await.unwrap();
    }
    let by_day = store.usage_totals(d0, UsageGroup::Day).await.unwrap();
    assert_eq!(
        by_day.iter().map(|t| (t.key.as_str(), t.requests, t.cost_micros)).collect::<Vec<_>>(),
        vec![("2026-11-22", 2, 1_750), ("2026-11-23", 2, 0)]
    );
    let by_provider = store.usage_totals(d0, UsageGroup::Provider).await.unwrap();
    let ollama = &by_provider[0];
    assert_eq!((ollama.key.as_str(), ollama.local_requests, ollama.ok_requests), ("ollama", 1, 1));
    let openai = &by_provider[1];
    assert_eq!((openai.key.as_str(), openai.requests, openai.ok_requests), ("openai", 3, 2));
    assert_eq!((openai.prompt_tokens, openai.completion_tokens, openai.cached_tokens), (300, 60, 15));
    let by_model = store.usage_totals(0, UsageGroup::Model).await.unwrap();
    let keys: Vec<&str> = by_model.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, vec!["ollama/llama3.1", "openai/gpt-4o", "openai/gpt-4o-mini"]);
    assert_eq!(by_model[1].cost_micros, 11_499);
}
