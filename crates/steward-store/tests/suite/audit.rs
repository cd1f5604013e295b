//! The tamper-evident audit log: appends chain, concurrent appends form one
//! chain, tampering in SQL is named, secrets never reach the table.

use serde_json::json;
use steward_core::audit::{verify_chain, AuditEntry, NewAuditEntry, GENESIS_HASH, REDACTED};
use steward_core::Store;

use super::harness::{TestDb, T0};

backend_tests!(
    appends_chain_and_verify,
    concurrent_appends_form_one_chain,
    a_row_altered_in_sql_is_named,
    a_row_deleted_in_sql_is_detected,
    secrets_in_detail_are_redacted_before_storing,
    the_chain_continues_after_a_reopen,
);

fn entry(n: usize) -> NewAuditEntry {
    NewAuditEntry::new("agent:architect", "tool.decision", format!("tool{n}"))
        .with_targets([format!("light.kitchen_{n}"), "switch.x".to_string()])
        .with_detail(json!({"verdict": "allow", "preview": {"n": n, "z": [1, 2.5, null]}}))
        .with_trace_id(format!("trace-{n}"))
}

async fn all(db: &TestDb) -> Vec<AuditEntry> {
    db.store.list_audit(0, 10_000).await.unwrap()
}

async fn appends_chain_and_verify(db: &TestDb) {
    assert!(all(db).await.is_empty());
    let mut appended = Vec::new();
    for n in 1..=5 {
        db.clock.set(T0 + n as i64);
        appended.push(db.store.append_audit(entry(n)).await.unwrap());
    }
    let first = &appended[0];
    assert_eq!((first.seq, first.at, first.prev_hash.as_str()), (1, T0 + 1, GENESIS_HASH));
    assert_eq!(first.actor, "agent:architect");
    assert_eq!(first.targets, vec!["light.kitchen_1".to_string(), "switch.x".to_string()]);
    assert_eq!(first.trace_id.as_deref(), Some("trace-1"));
    for w in appended.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
        assert_eq!(w[1].prev_hash, w[0].hash);
    }

    let stored = all(db).await;
    assert_eq!(stored, appended, "what is listed is what append returned");
    assert_eq!(verify_chain(&stored), Ok(5));

    // Paging.
    let page = db.store.list_audit(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    assert!(db.store.list_audit(5, 10).await.unwrap().is_empty());

    // A null detail and no targets or trace round-trip too.
    let bare = db.store.append_audit(NewAuditEntry::new("system", "audit.started", "")).await.unwrap();
    assert_eq!(bare.seq, 6);
    assert_eq!(verify_chain(&all(db).await), Ok(6));
}

async fn concurrent_appends_form_one_chain(db: &TestDb) {
    let store = db.store.clone();
    let tasks: Vec<_> = (1..=20)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append_audit(entry(n)).await.unwrap() })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>());
    let stored = all(db).await;
    assert_eq!(stored.len(), 20);
    assert_eq!(verify_chain(&stored), Ok(20));
}

async fn a_row_altered_in_sql_is_named(db: &TestDb) {
    for n in 1..=5 {
        db.store.append_audit(entry(n)).await.unwrap();
    }
    sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = 3")
        .bind(r#"{"verdict":"deny","preview":{"n":3,"z":[1,2.5,null]}}"#)
        .execute(db.store.pool())
        .await
        .unwrap();
    let err = verify_chain(&all(db).await).unwrap_err();
    assert_eq!(err.seq, 3, "{err}");
    assert!(err.reason.contains("altered"), "{err}");

    // Text that is not even JSON any more is named too, not a listing failure.
    sqlx::query("UPDATE audit_log SET detail = 'not json', targets = 'nope' WHERE seq = 2")
        .execute(db.store.pool())
        .await
        .unwrap();
    assert_eq!(verify_chain(&all(db).await).unwrap_err().seq, 2);

    // Re-hashing the altered row alone does not help: the next row's
    // prev_hash no longer matches.
    sqlx::query("UPDATE audit_log SET detail = '\"x\"', hash = $1 WHERE seq = 2")
        .bind("ab".repeat(32))
        .execute(db.store.pool())
        .await
        .unwrap();
    assert_eq!(verify_chain(&all(db).await).unwrap_err().seq, 2);
}

async fn a_row_deleted_in_sql_is_detected(db: &TestDb) {
    for n in 1..=5 {
        db.store.append_audit(entry(n)).await.unwrap();
    }
    sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(db.store.pool()).await.unwrap();
    let err = verify_chain(&all(db).await).unwrap_err();
    assert_eq!(err.seq, 2, "{err}");
    assert!(err.reason.contains("missing"), "{err}");

    // Closing the gap by renumbering breaks the hash links instead.
    sqlx::query("UPDATE audit_log SET seq = seq - 1 WHERE seq = 3").execute(db.store.pool()).await.unwrap();
    let err = verify_chain(&all(db).await).unwrap_err();
    assert!(err.seq == 2, "{err}");
}

async fn secrets_in_detail_are_redacted_before_storing(db: &TestDb) {
    let stored = db
        .store
        .append_audit(NewAuditEntry::new("user:ab12cd34", "tool.executed", "http_request").with_detail(json!({
            "url": "https://example.test",
            "headers": {"Authorization": "Bearer sk-very-secret-1"},
            "body": {"password": "hunter2-very-secret", "items": [{"API_KEY": "sk-very-secret-2"}]},
        })))
        .await
        .unwrap();
    assert_eq!(stored.detail["headers"]["Authorization"], REDACTED);
    assert_eq!(stored.detail["body"]["password"], REDACTED);
    assert_eq!(stored.detail["body"]["items"][0]["API_KEY"], REDACTED);
    assert_eq!(stored.detail["url"], "https://example.test");

    let raw: Vec<String> = sqlx::query_scalar("SELECT detail FROM audit_log").fetch_all(db.store.pool()).await.unwrap();
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].contains("very-secret"), "{}", raw[0]);
    assert_eq!(verify_chain(&all(db).await), Ok(1));
}

async fn the_chain_continues_after_a_reopen(db: &TestDb) {
    db.store.append_audit(entry(1)).await.unwrap();
    let other = db.reopen().await;
    let second = other.append_audit(entry(2)).await.unwrap();
    assert_eq!(second.seq, 2);
    other.close().await;
    assert_eq!(verify_chain(&all(db).await), Ok(2));
}
