//! Snapshots: the memory (conversations with settings and messages,
//! insights) saved, listed newest first and loaded back exactly, the state
//! a load replaces saved first as its backup, a load that fails half way
//! changing nothing, and approvals and tasks never touched by a load.

use serde_json::json;
use steward_core::snapshots::{SaveOutcome, SnapshotSpec};
use steward_core::{NewMessage, Store};
use steward_protocol::insight::Insight;
use steward_protocol::{Message, ToolCall};

use super::harness::{TestDb, T0};

backend_tests!(save_list_and_load_round_trip, a_failed_load_changes_nothing, a_load_keeps_what_approvals_refer_to,);

fn spec(name: &str, at: i64) -> SnapshotSpec {
    SnapshotSpec { name: name.into(), created_at: at, created_by: "user:local".into(), home: None }
}

fn insight(id: &str, at: i64) -> Insight {
    Insight {
        id: id.into(),
        kind: "note".into(),
        title: format!("Note {id}"),
        summary: "The kettle is on a lot.".into(),
        evidence: json!({"hours": 3}),
        entity_ids: vec!["switch.kettle".into(), "switch.kettle".into(), "sensor.power".into()],
        chart: None,
        chart_url: None,
        conversation_id: None,
        created_by: "user:local".into(),
        created_at: at,
    }
}

async fn say(db: &TestDb, conversation: &str, messages: Vec<Message>) {
    let messages = messages
        .into_iter()
        .map(|message| NewMessage { conversation_id: conversation.into(), message, turn_id: Some("turn_1".into()) })
        .collect();
    db.store.append_messages(messages).await.unwrap();
}

/// Everything the memory holds, as the store's ordinary reads see it.
async fn memory(db: &TestDb) -> serde_json::Value {
    let mut conversations = db.store.list_conversations(1000).await.unwrap();
    conversations.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::new();
    for c in conversations {
        let messages = db.store.list_messages(&c.id).await.unwrap();
        out.push(json!({"conversation": c, "messages": messages}));
    }
    let insights = db.store.list_insights(&Default::default()).await.unwrap();
    json!({"conversations": out, "insights": insights})
}

async fn save_list_and_load_round_trip(db: &TestDb) {
    let a = db.store.create_conversation("architect", Some("Lights")).await.unwrap();
    let mut call = Message::assistant("");
    call.tool_calls = vec![ToolCall::new("call_1", "control_entity", r#"{"entity_id":"light.hall"}"#)];
    say(
        db,
        &a.id,
        vec![Message::user("turn on the hall light"), call, Message::tool("call_1", "control_entity", "done")],
    )
    .await;
    db.store.set_conversation_debug(&a.id, true).await.unwrap();
    db.store.set_client_fingerprint(&a.id, "fp-a").await.unwrap();
    db.store.create_insight(&insight("ins_1", T0)).await.unwrap();
    let before = memory(db).await;

    db.clock.set(T0 + 1_000);
    let SaveOutcome::Created(saved) = db.store.save_snapshot(&spec("before-party", T0 + 1_000), false).await.unwrap()
    else {
        panic!("not created");
    };
    assert_eq!((saved.conversations, saved.messages, saved.insights, saved.entities), (1, 3, 1, 0));
    assert_eq!(saved.created_by, "user:local");

    // The same name again: refused without `replace`, replaced with it.
    assert_eq!(db.store.save_snapshot(&spec("before-party", T0 + 2_000), false).await.unwrap(), SaveOutcome::Exists);
    let replaced = db.store.save_snapshot(&spec("before-party", T0 + 2_000), true).await.unwrap();
    assert!(matches!(&replaced, SaveOutcome::Replaced(s) if s.created_at == T0 + 2_000), "{replaced:?}");

    // Change everything the snapshot holds.
    db.clock.set(T0 + 5_000);
    say(db, &a.id, vec![Message::user("now the party starts")]).await;
    db.store.set_conversation_debug(&a.id, false).await.unwrap();
    let b = db.store.create_conversation("chef", Some("Party")).await.unwrap();
    say(db, &b.id, vec![Message::user("snacks?")]).await;
    db.store.create_insight(&insight("ins_2", T0 + 5_000)).await.unwrap();
    let changed = memory(db).await;
    assert_ne!(changed, before);
    db.store.save_snapshot(&spec("later", T0 + 6_000), false).await.unwrap();

    let names: Vec<String> = db.store.list_snapshots().await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["later", "before-party"], "newest first");

    let loaded = db.store.load_snapshot("before-party", &spec("autosave-1", T0 + 7_000)).await.unwrap().unwrap();
    assert_eq!(loaded.snapshot.summary.name, "before-party");
    assert!(loaded.kept_conversations.is_empty());
    assert_eq!(memory(db).await, before, "the memory is exactly the snapshot's again");
    let found = db.store.find_by_client_fingerprint("fp-a").await.unwrap().map(|c| c.id);
    assert_eq!(found.as_deref(), Some(a.id.as_str()), "the fingerprint came back");
    // New messages continue after the restored ones.
    say(db, &a.id, vec![Message::user("again")]).await;
    assert_eq!(db.store.list_messages(&a.id).await.unwrap().last().map(|m| m.seq), Some(3));

    // The backup holds the state the load replaced.
    assert_eq!(loaded.backup.name, "autosave-1");
    assert_eq!((loaded.backup.conversations, loaded.backup.messages, loaded.backup.insights), (2, 5, 2));
    let backup = db.store.get_snapshot("autosave-1").await.unwrap().unwrap();
    assert_eq!(backup.summary, loaded.backup);
    assert!(backup.body.memory.conversations.iter().any(|c| c.conversation.id == b.id));
    db.store.load_snapshot("autosave-1", &spec("autosave-1", T0 + 8_000)).await.unwrap().unwrap();
    let mut back = memory(db).await;
    // …minus the "again" said after the first load, which the second
    // backup (a free name next to the first) holds instead.
    assert_eq!(back["insights"], changed["insights"]);
    back["conversations"].as_array_mut().unwrap().iter_mut().for_each(|c| {
        c["conversation"]["updated_at"] = json!(0);
    });
    let mut expected = changed.clone();
    expected["conversations"].as_array_mut().unwrap().iter_mut().for_each(|c| {
        c["conversation"]["updated_at"] = json!(0);
    });
    assert_eq!(back, expected);
    let second = db.store.get_snapshot("autosave-1-2").await.unwrap().unwrap();
    assert_eq!(second.summary.messages, 4);

    // An unknown name changes nothing and saves no backup.
    let count = db.store.list_snapshots().await.unwrap().len();
    assert!(db.store.load_snapshot("nope", &spec("autosave-2", T0 + 9_000)).await.unwrap().is_none());
    assert_eq!(db.store.list_snapshots().await.unwrap().len(), count);
    assert_eq!(db.store.memory_counts().await.unwrap().conversations, 2);
}

async fn a_failed_load_changes_nothing(db: &TestDb) {
    let a = db.store.create_conversation("architect", Some("one")).await.unwrap();
    say(db, &a.id, vec![Message::user("hello"), Message::assistant("hi")]).await;
    db.store.create_insight(&insight("ins_1", T0)).await.unwrap();
    db.store.save_snapshot(&spec("good", T0), false).await.unwrap();

    // A snapshot whose last insight repeats an id: its load fails at the
    // very end, after every delete and most inserts.
    let mut broken = db.store.get_snapshot("good").await.unwrap().unwrap();
    broken.body.memory.insights.push(broken.body.memory.insights[0].clone());
    sqlx::query("INSERT INTO snapshots (name, created_at, created_by, summary, body) VALUES ($1, $2, $3, $4, $5)")
        .bind("broken")
        .bind(T0 + 1)
        .bind("user:local")
        .bind(serde_json::to_string(&broken.summary).unwrap().replace("\"good\"", "\"broken\""))
        .bind(serde_json::to_string(&broken.body).unwrap())
        .execute(db.store.pool())
        .await
        .unwrap();

    // The live state moves on from the good snapshot.
    say(db, &a.id, vec![Message::user("more")]).await;
    let b = db.store.create_conversation("chef", None).await.unwrap();
    db.store.create_insight(&insight("ins_2", T0 + 2)).await.unwrap();
    let live = memory(db).await;
    let snapshots = db.store.list_snapshots().await.unwrap();

    let failed = db.store.load_snapshot("broken", &spec("autosave-x", T0 + 3)).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(memory(db).await, live, "the live state is untouched");
    assert_eq!(db.store.list_snapshots().await.unwrap(), snapshots, "no backup was left behind");
    assert!(db.store.get_conversation(&b.id).await.unwrap().is_some());

    // And the good one still loads.
    db.store.load_snapshot("good", &spec("autosave-y", T0 + 4)).await.unwrap().unwrap();
    assert_eq!(db.store.list_messages(&a.id).await.unwrap().len(), 2);
    assert!(db.store.get_conversation(&b.id).await.unwrap().is_none());
}

async fn a_load_keeps_what_approvals_refer_to(db: &TestDb) {
    let a = db.store.create_conversation("architect", None).await.unwrap();
    say(db, &a.id, vec![Message::user("hello")]).await;
    db.store.save_snapshot(&spec("empty-ish", T0), false).await.unwrap();

    // After the snapshot: an approval in a, and a new conversation c with one.
    let c = db.store.create_conversation("architect", None).await.unwrap();
    say(db, &c.id, vec![Message::user("unlock the door")]).await;
    let d = db.store.create_conversation("architect", None).await.unwrap();
    for (id, conversation) in [("apr_a", &a.id), ("apr_c", &c.id)] {
        sqlx::query(
            "INSERT INTO approvals (id, conversation_id, turn_id, agent, call_id, tool, arguments, effect, targets, \
             preview, kind, status, created_at, expires_at, idempotency_key) \
             VALUES ($1, $2, 't', 'architect', 'call', 'control_entity', '{}', 'mutate', '[]', \
             '{\"summary\": \"s\", \"targets\": []}', 'k', 'pending', $3, $4, $5)",
        )
        .bind(id)
        .bind(conversation)
        .bind(T0)
        .bind(T0 + 60_000)
        .bind(format!("idem_{id}"))
        .execute(db.store.pool())
        .await
        .unwrap();
    }

    let loaded = db.store.load_snapshot("empty-ish", &spec("autosave-1", T0 + 1)).await.unwrap().unwrap();
    assert_eq!(loaded.kept_conversations, vec![c.id.clone()]);
    assert!(db.store.get_approval("apr_a").await.unwrap().is_some(), "an approval in a restored conversation stays");
    assert!(db.store.get_approval("apr_c").await.unwrap().is_some(), "an approval's conversation stays");
    assert_eq!(db.store.list_messages(&c.id).await.unwrap().len(), 1);
    assert!(db.store.get_conversation(&d.id).await.unwrap().is_none(), "a conversation nothing refers to goes");
}
