//! Creating, reading and listing conversations.

use steward_core::{NewMessage, Store};
use steward_protocol::Message;

use super::harness::{TestDb, T0};

backend_tests!(
    create_then_get_round_trips,
    get_missing_conversation_is_none,
    list_is_most_recently_updated_first,
    list_breaks_ties_by_id_and_respects_limit,
);

async fn create_then_get_round_trips(db: &TestDb) {
    let with_title = db.store.create_conversation("coder", Some("Ünïcode 'title' \"quoted\"")).await.unwrap();
    assert_eq!(with_title.agent, "coder");
    assert_eq!(with_title.title.as_deref(), Some("Ünïcode 'title' \"quoted\""));
    assert_eq!((with_title.created_at, with_title.updated_at), (T0, T0));
    assert!(uuid::Uuid::parse_str(&with_title.id).is_ok(), "id is a uuid: {}", with_title.id);

    let untitled = db.store.create_conversation("default", None).await.unwrap();
    assert_ne!(untitled.id, with_title.id);

    assert_eq!(db.store.get_conversation(&with_title.id).await.unwrap(), Some(with_title));
    assert_eq!(db.store.get_conversation(&untitled.id).await.unwrap(), Some(untitled));
}

async fn get_missing_conversation_is_none(db: &TestDb) {
    assert_eq!(db.store.get_conversation("no-such-conversation").await.unwrap(), None);
    assert_eq!(db.store.get_conversation(&uuid::Uuid::new_v4().to_string()).await.unwrap(), None);
    assert!(db.store.list_conversations(10).await.unwrap().is_empty());
}

async fn list_is_most_recently_updated_first(db: &TestDb) {
    db.clock.set(T0 + 1_000);
    let a = db.store.create_conversation("default", Some("a")).await.unwrap();
    db.clock.set(T0 + 2_000);
    let b = db.store.create_conversation("default", Some("b")).await.unwrap();
    db.clock.set(T0 + 3_000);
    let c = db.store.create_conversation("default", Some("c")).await.unwrap();

    let ids = |list: Vec<steward_protocol::api::Conversation>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(db.store.list_conversations(10).await.unwrap()), vec![c.id.clone(), b.id.clone(), a.id.clone()]);

    // Appending to the oldest moves it to the front and bumps updated_at.
    db.clock.set(T0 + 4_000);
    db.store
        .append_messages(vec![NewMessage {
            conversation_id: a.id.clone(),
            message: Message::user("bump"),
            turn_id: None,
        }])
        .await
        .unwrap();
    let list = db.store.list_conversations(10).await.unwrap();
    assert_eq!(list[0].id, a.id);
    assert_eq!((list[0].created_at, list[0].updated_at), (T0 + 1_000, T0 + 4_000));
    assert_eq!(ids(list), vec![a.id.clone(), c.id.clone(), b.id.clone()]);
    let got = db.store.get_conversation(&a.id).await.unwrap().unwrap();
    assert_eq!(got.updated_at, T0 + 4_000);
}

async fn list_breaks_ties_by_id_and_respects_limit(db: &TestDb) {
    // Same clock for all: order falls back to id.
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(db.store.create_conversation("default", Some(&format!("c{i}"))).await.unwrap());
    }
    let mut expected: Vec<String> = created.iter().map(|c| c.id.clone()).collect();
    expected.sort();

    let all: Vec<String> = db.store.list_conversations(100).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(all, expected);

    let two: Vec<String> = db.store.list_conversations(2).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(two, expected[..2]);
    assert!(db.store.list_conversations(0).await.unwrap().is_empty());
}
