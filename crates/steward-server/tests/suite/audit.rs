//! `GET /api/audit`: pages of the log, and a verification of the whole
//! chain that names the row tampered with.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use steward_core::{NewAuditEntry, Store};

use super::{harness_with, Options};

fn options() -> Options {
    Options { with_llm: false, ..Default::default() }
}

async fn seed(store: &dyn Store, n: usize) {
    for i in 1..=n {
        store
            .append_audit(
                NewAuditEntry::new("agent:architect", "tool.decision", format!("tool{i}"))
                    .with_targets([format!("light.{i}")])
                    .with_detail(json!({"verdict": "allow", "token": "sk-secret", "i": i})),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn lists_pages_and_verifies_the_whole_chain() {
    let h = harness_with(options()).await;
    let r = h.get("/api/audit").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"entries": [], "verified": {"ok": true, "checked": 0, "first_bad_seq": null, "reason": null}})
    );

    seed(h.store.as_ref(), 5).await;
    let r = h.get("/api/audit").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["actor"], "agent:architect");
    assert_eq!(entries[0]["subject"], "tool1");
    assert_eq!(entries[0]["targets"], json!(["light.1"]));
    assert_eq!(entries[0]["detail"]["token"], "[redacted]");
    assert_eq!(entries[0]["prev_hash"], "0".repeat(64));
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    assert_eq!(v["verified"], json!({"ok": true, "checked": 5, "first_bad_seq": null, "reason": null}));

    // A page covers part of the log; the verification still covers all of it.
    let v = h.get("/api/audit?after=2&limit=2").await.json();
    let seqs: Vec<i64> = v["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(v["verified"]["checked"], 5);
}

#[tokio::test]
async fn a_row_tampered_with_in_sql_is_named() {
    let h = harness_with(options()).await;
    seed(h.store.as_ref(), 4).await;
    sqlx::query("UPDATE audit_log SET subject = 'something_else' WHERE seq = 3").execute(h.store.pool()).await.unwrap();
    let r = h.get("/api/audit?limit=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let verified = &r.json()["verified"];
    assert_eq!(verified["ok"], false, "{verified}");
    assert_eq!(verified["first_bad_seq"], 3, "{verified}");
    assert_eq!(verified["checked"], 2, "{verified}");
    assert!(verified["reason"].as_str().unwrap().contains("altered"), "{verified}");

    sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(h.store.pool()).await.unwrap();
    let verified = &h.get("/api/audit").await.json()["verified"];
    assert_eq!(verified["ok"], false, "{verified}");
    assert_eq!(verified["first_bad_seq"], 2, "{verified}");
}

#[tokio::test]
async fn bad_query_values_are_400() {
    let h = harness_with(options()).await;
    for (query, param) in [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
    ] {
        let r = h.get(&format!("/api/audit?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        let e = r.error();
        assert_eq!(e["type"], "invalid_request_error", "{query}: {e}");
        assert_eq!(e["param"], param, "{query}: {e}");
    }
    assert_eq!(h.get("/api/audit?limit=1000&after=0").await.status, 200);
}

#[tokio::test]
async fn the_audit_log_needs_a_key() {
    let h = harness_with(Options { keys: vec!["sk-good"], ..options() }).await;
    let r = h.get("/api/audit").await;
    assert_eq!(r.status, 401);
    let r =
        h.send(Request::get("/api/audit").header("authorization", "Bearer sk-good").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn every_tool_decision_of_a_turn_lands_in_the_chained_audit_log() {
    let h = super::harness().await;
    h.llm().push(steward_testkit::Reply::tool_call("get_current_time", "{}"));
    h.llm().push(steward_testkit::Reply::text("It is late."));
    let r = h
        .post_json(
            "/v1/chat/completions",
            serde_json::json!({"model": "architect", "messages": [{"role": "user", "content": "time?"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let audit = h.get("/api/audit").await.json();
    assert_eq!(audit["verified"]["ok"], true, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    let e = &entries[0];
    assert_eq!(
        (e["actor"].as_str(), e["action"].as_str(), e["subject"].as_str()),
        (Some("agent:architect"), Some("tool.decision"), Some("get_current_time"))
    );
    assert_eq!((e["detail"]["decision"].as_str(), e["detail"]["effect"].as_str()), (Some("allow"), Some("read")));
    assert!(e["trace_id"].as_str().unwrap().starts_with("turn_"));
}
