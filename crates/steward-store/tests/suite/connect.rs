//! Connect URLs, their errors, and the SQLite connection settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use steward_core::{Clock, NewMessage, Store, StoreError};
use steward_protocol::Message;
use steward_store::SqlStore;

use super::harness::{TestClock, T0};

fn clock() -> Arc<dyn Clock> {
    TestClock::new(T0)
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("steward-store-test-{}", uuid::Uuid::new_v4()))
}

fn database_error(result: Result<SqlStore, StoreError>) -> String {
    match result {
        Ok(store) => panic!("expected an error, connected to {store:?}"),
        Err(StoreError::Database(text)) => text,
        Err(other) => panic!("expected StoreError::Database, got {other:?}"),
    }
}

#[tokio::test]
async fn unsupported_scheme_is_rejected_by_name() {
    let text = database_error(SqlStore::connect("mysql://root:hunter2@localhost/steward", clock()).await);
    assert!(text.contains("'mysql:'"), "names the scheme: {text}");
    assert!(text.contains("sqlite:") && text.contains("postgres:") && text.contains("postgresql:"), "{text}");
    assert!(!text.contains("hunter2"), "leaks the password: {text}");
    assert!(text.contains("mysql://root:***@localhost/steward"), "{text}");

    let text = database_error(SqlStore::connect("/var/lib/steward.db", clock()).await);
    assert!(text.contains("no scheme"), "{text}");
}

#[tokio::test]
async fn postgres_connect_error_is_quick_and_hides_the_password() {
    let started = Instant::now();
    let result = SqlStore::connect("postgres://user:secretpw@127.0.0.1:1/steward", clock()).await;
    let elapsed = started.elapsed();
    let text = database_error(result);
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
    assert!(!text.contains("secretpw"), "leaks the password: {text}");
    assert!(text.contains("postgres://user:***@127.0.0.1:1/steward"), "names the redacted URL: {text}");
    assert!(text.starts_with("connecting to "), "{text}");

    // The same through `postgresql://` and a password parameter.
    let text =
        database_error(SqlStore::connect("postgresql://user@127.0.0.1:1/steward?password=secretpw", clock()).await);
    assert!(!text.contains("secretpw"), "leaks the password: {text}");
    assert!(text.contains("password=***"), "{text}");
}

#[tokio::test]
async fn open_in_dir_creates_the_directory_and_database() {
    let root = temp_dir();
    let data_dir = root.join("nested").join("data dir #1");
    let store = SqlStore::open_in_dir(&data_dir, clock()).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let conversation = store.create_conversation("default", None).await.unwrap();
    store.close().await;
    assert!(data_dir.join("steward.db").is_file());

    let again = SqlStore::open_in_dir(&data_dir, clock()).await.unwrap();
    assert!(again.get_conversation(&conversation.id).await.unwrap().is_some());
    again.close().await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn sqlite_url_forms() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for url in [
        format!("sqlite:{}", dir.join("plain.db").display()),
        format!("sqlite://{}?mode=rwc", dir.join("rwc.db").display()),
        format!("SQLITE://{}", dir.join("upper.db").display()),
    ] {
        let store = SqlStore::connect(&url, clock()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        store.ping().await.unwrap();
        store.create_conversation("default", None).await.unwrap();
        store.close().await;
    }
    assert!(dir.join("plain.db").is_file());

    // A missing directory is reported with the URL.
    let missing = dir.join("no").join("such").join("dir.db");
    let text = database_error(SqlStore::connect(&format!("sqlite://{}", missing.display()), clock()).await);
    assert!(text.contains(&missing.display().to_string()), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_works_with_concurrency() {
    let store = SqlStore::connect("sqlite::memory:", clock()).await.unwrap();
    let conversation = store.create_conversation("default", None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let id = conversation.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_messages(vec![NewMessage {
                    conversation_id: id,
                    message: Message::user(format!("{i}")),
                    turn_id: None,
                }])
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.list_messages(&conversation.id).await.unwrap().len(), 10);
    store.close().await;
}

#[tokio::test]
async fn sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout() {
    let dir = temp_dir();
    let store = SqlStore::open_in_dir(&dir, clock()).await.unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(journal.to_ascii_lowercase(), "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(foreign_keys, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(busy, 5_000);

    // Foreign keys are enforced: a message needs its conversation.
    let orphan = sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, content, created_at) VALUES ('m', 'nope', 0, 'user', '', 0)",
    )
    .execute(&mut *conn)
    .await;
    assert!(orphan.is_err(), "orphan message was accepted");
    drop(conn);
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
