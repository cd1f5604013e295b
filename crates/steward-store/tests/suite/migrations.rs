//! Schema migrations: idempotent, safe to run concurrently, and the data
//! they protect survives a restart.

use std::sync::Arc;

use steward_core::{NewMessage, Store};
use steward_protocol::Message;
use steward_store::SqlStore;

use super::harness::{TestClock, TestDb, T0};

backend_tests!(
    connecting_twice_is_a_no_op,
    concurrent_first_connects_migrate_once,
    data_survives_a_restart,
    ping_and_backend_name,
);

async fn migration_rows(store: &SqlStore) -> Vec<(i64, String, i64)> {
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT version, name, applied_at FROM steward_migrations ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows
}

async fn connecting_twice_is_a_no_op(db: &TestDb) {
    let first = migration_rows(&db.store).await;
    assert_eq!(
        first,
        vec![
            (1, "0001_conversations".to_string(), T0),
            (2, "0002_client_fingerprint".to_string(), T0),
            (3, "0003_usage_ledger".to_string(), T0),
            (4, "0004_audit_log".to_string(), T0),
            (5, "0005_approvals".to_string(), T0),
            (6, "0006_entities".to_string(), T0),
            (7, "0007_insights".to_string(), T0),
            (8, "0008_tasks".to_string(), T0),
            (9, "0009_snapshots".to_string(), T0),
            (10, "0010_run_logs".to_string(), T0)
        ]
    );

    let conversation = db.store.create_conversation("default", Some("before")).await.unwrap();

    // A second connect (later, so a re-applied migration would show).
    db.clock.set(T0 + 60_000);
    let again = db.reopen().await;
    assert_eq!(migration_rows(&again).await, first, "nothing re-applied");
    assert_eq!(again.get_conversation(&conversation.id).await.unwrap(), Some(conversation));
    again.close().await;
}

async fn concurrent_first_connects_migrate_once(db: &TestDb) {
    let url = db.empty_database().await;
    let clock = TestClock::new(T0);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        let clock: Arc<dyn steward_core::Clock> = clock.clone();
        tasks.push(tokio::spawn(async move { SqlStore::connect(&url, clock).await }));
    }
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.unwrap().unwrap_or_else(|e| panic!("concurrent connect failed: {e}")));
    }
    for store in &stores {
        assert_eq!(
            migration_rows(store).await,
            vec![
                (1, "0001_conversations".to_string(), T0),
                (2, "0002_client_fingerprint".to_string(), T0),
                (3, "0003_usage_ledger".to_string(), T0),
                (4, "0004_audit_log".to_string(), T0),
                (5, "0005_approvals".to_string(), T0),
                (6, "0006_entities".to_string(), T0),
                (7, "0007_insights".to_string(), T0),
                (8, "0008_tasks".to_string(), T0),
                (9, "0009_snapshots".to_string(), T0),
                (10, "0010_run_logs".to_string(), T0)
            ]
        );
    }
    // And the schema works from every one of them.
    let conversation = stores[0].create_conversation("default", None).await.unwrap();
    for store in &stores {
        assert!(store.get_conversation(&conversation.id).await.unwrap().is_some());
        store.close().await;
    }
}

async fn data_survives_a_restart(db: &TestDb) {
    let conversation = db.store.create_conversation("default", Some("persisted")).await.unwrap();
    let stored = db
        .store
        .append_messages(vec![
            NewMessage { conversation_id: conversation.id.clone(), message: Message::user("hi"), turn_id: None },
            NewMessage {
                conversation_id: conversation.id.clone(),
                message: Message::assistant("hello"),
                turn_id: Some("t1".into()),
            },
        ])
        .await
        .unwrap();

    // "Restart": close every connection, then open from scratch.
    db.store.close().await;
    assert!(db.store.ping().await.is_err(), "the old store is closed");
    db.clock.set(T0 + 1_000);
    let reopened = db.reopen().await;

    let got = reopened.get_conversation(&conversation.id).await.unwrap().unwrap();
    assert_eq!(got.title.as_deref(), Some("persisted"));
    assert_eq!(got.created_at, T0);
    assert_eq!(reopened.list_messages(&conversation.id).await.unwrap(), stored);
    reopened.close().await;
}

async fn ping_and_backend_name(db: &TestDb) {
    db.store.ping().await.unwrap();
    assert_eq!(db.store.backend(), db.backend());
    assert!(!db.store.url().is_empty());
}
