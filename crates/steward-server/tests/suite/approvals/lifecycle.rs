//! Each path of an approval's life: asked, approved and executed once,
//! rejected, expired, scoped to a conversation, raced, recovered.

use std::time::Duration;

use serde_json::json;
use steward_core::{ApprovalDecision, Store};
use steward_protocol::approval::{ApprovalScope, ApprovalStatus};

use super::{approvals, approvals_with, Setup, HEATER_ON, SECRET};

#[tokio::test]
async fn a_mutating_call_waits_for_approve_in_chat_then_runs_once() {
    let t = approvals().await;
    let c = t.conversation().await;
    let reply = t.say(&c, &format!("turn on the heater\n{HEATER_ON}")).await;
    let text = reply["content"].as_str().unwrap();
    assert!(text.contains("Reply 'approve' to proceed"), "{text}");
    assert!(text.contains("switch.turn_on on switch.heater (now off)"), "{text}");
    assert!(t.executions().is_empty(), "nothing runs before a person says yes");

    let pending = t.proposals("?status=pending").await;
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    let id = p["id"].as_str().unwrap().to_string();
    assert!(text.contains(&id), "the prompt names the approval: {text}");
    assert_eq!(p["status"], "pending");
    assert_eq!(p["tool"], "set_switch");
    assert_eq!(p["conversation_id"], c.as_str());
    assert_eq!(p["preview"]["targets"][0], json!({"id": "switch.heater", "name": "Heater", "state": "off"}));
    assert_eq!(p["expires_at"].as_i64().unwrap() - p["created_at"].as_i64().unwrap(), 600_000);
    assert!(p.get("decided_by").is_none());
    // The model was told it waits; the tool result says so.
    let stored = t.h.get(&format!("/api/conversations/{c}")).await.json();
    let tool_result = stored["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").unwrap().clone();
    assert!(tool_result["content"].as_str().unwrap().starts_with(&format!("awaiting approval {id}")));

    let reply = t.say(&c, "approve").await;
    let text = reply["content"].as_str().unwrap();
    assert!(text.contains(&format!("Done ({id})")), "{text}");
    assert!(text.contains("switch.heater is now turn_on"), "the outcome flows back: {text}");
    let runs = t.executions();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].approval.as_deref(), Some(id.as_str()));
    let p = t.h.get(&format!("/api/proposals/{id}")).await.json();
    assert_eq!(p["status"], "executed");
    assert_eq!(p["decided_by"], "user:local");
    assert_eq!(p["scope"], "once");
    assert_eq!(runs[0].idempotency_key.as_deref(), p["idempotency_key"].as_str());
    assert!(p["started_at"].as_i64().unwrap() <= p["finished_at"].as_i64().unwrap());
    assert_eq!(p["outcome"], "switch.heater is now turn_on");
    // The conversation holds the approved call and its result for later turns.
    let stored = t.h.get(&format!("/api/conversations/{c}")).await.json();
    let messages = stored["messages"].as_array().unwrap();
    assert!(messages.iter().any(|m| m["tool_calls"][0]["id"] == format!("{id}_run")));
    assert!(messages.iter().any(|m| m["tool_call_id"] == format!("{id}_run")
        && m["content"].as_str().unwrap().contains("approved by user:local and executed")));

    // Saying it again changes nothing.
    let again = t.say(&c, "approve").await;
    assert!(again["content"].as_str().unwrap().starts_with("Nothing is waiting"), "{again}");
    assert_eq!(t.executions().len(), 1);

    let actions = t.audit_actions().await;
    for expected in
        ["tool.decision", "approval.requested", "approval.approved", "approval.executing", "approval.executed"]
    {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "approval.executing").count(), 1);
}

#[tokio::test]
async fn reject_in_chat_changes_nothing() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let reply = t.say(&c, "Reject.").await;
    assert!(reply["content"].as_str().unwrap().starts_with("Rejected ("), "{reply}");
    assert!(t.executions().is_empty());
    let all = t.proposals("").await;
    assert_eq!(all[0]["status"], "rejected");
    assert_eq!(all[0]["decided_by"], "user:local");
    // A rejected approval cannot be approved afterwards.
    let id = all[0]["id"].as_str().unwrap();
    let r = t.decide(id, "approve", json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("already rejected"), "{}", r.text());
    assert!(t.executions().is_empty());
}

#[tokio::test]
async fn an_undecided_approval_expires_and_cannot_run() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let id = t.proposals("?status=pending").await[0]["id"].as_str().unwrap().to_string();
    t.clock.advance(Duration::from_secs(601));
    let p = t.h.get(&format!("/api/proposals/{id}")).await.json();
    assert_eq!(p["status"], "expired");
    assert_eq!(p["decided_by"], "system:expiry");
    let r = t.decide(&id, "approve", json!({})).await;
    assert_eq!(r.status, 409);
    let reply = t.say(&c, "approve").await;
    let text = reply["content"].as_str().unwrap();
    assert!(text.starts_with("Nothing is waiting"), "{text}");
    assert!(text.contains("expired"), "{text}");
    assert!(t.executions().is_empty());
    assert!(t.audit_actions().await.iter().any(|a| a == "approval.expired"));
}

#[tokio::test]
async fn the_expiry_sweep_expires_every_overdue_approval() {
    let t = approvals().await;
    for _ in 0..3 {
        let c = t.conversation().await;
        t.say(&c, HEATER_ON).await;
    }
    assert!(t.engine.expire_due().await.unwrap().is_empty(), "nothing is overdue yet");
    t.clock.advance(Duration::from_secs(700));
    assert_eq!(t.engine.expire_due().await.unwrap().len(), 3);
    assert!(t.proposals("?status=pending").await.is_empty());
    assert_eq!(t.proposals("?status=expired").await.len(), 3);
}

#[tokio::test]
async fn approving_over_the_api_runs_once_however_many_approve_at_once() {
    let t = approvals_with(Setup { tool_delay: Duration::from_millis(50), ..Setup::default() }).await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let id = t.proposals("?status=pending").await[0]["id"].as_str().unwrap().to_string();
    let mut racers = Vec::new();
    for _ in 0..8 {
        let (app, id) = (t.h.app.clone(), id.clone());
        racers.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let request = axum::http::Request::post(format!("/api/proposals/{id}/approve"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(t.executions().len(), 1);
    let p = t.h.get(&format!("/api/proposals/{id}")).await.json();
    assert_eq!(p["status"], "executed");
    // The outcome reaches the conversation too.
    let stored = t.h.get(&format!("/api/conversations/{c}")).await.json();
    let last = stored["messages"].as_array().unwrap().last().unwrap().clone();
    assert!(last["content"].as_str().unwrap().contains(&format!("Done ({id})")), "{last}");
    assert!(last["content"].as_str().unwrap().contains("decided by user:local"));
    let actions = t.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "approval.approved").count(), 1);
    assert_eq!(actions.iter().filter(|a| *a == "approval.executing").count(), 1);
}

#[tokio::test]
async fn the_api_rejects_names_unknown_ids_and_refuses_bad_bodies() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let id = t.proposals("").await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(t.decide("apr_nope", "approve", json!({})).await.status, 404);
    assert_eq!(t.h.get("/api/proposals/apr_nope").await.status, 404);
    assert_eq!(t.h.get("/api/proposals?status=maybe").await.status, 400);
    assert_eq!(t.h.get("/api/proposals?limit=0").await.status, 400);
    let r = t.decide(&id, "approve", json!({"scope": "forever"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = t.decide(&id, "reject", json!({"scope": "conversation"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(t.decide(&id, "approve", json!({"extra": 1})).await.status, 400);
    let r = t.decide(&id, "reject", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "rejected");
    assert!(t.executions().is_empty());
}

#[tokio::test]
async fn approve_always_covers_this_kind_of_call_in_this_conversation_only() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let reply = t.say(&c, "approve always").await;
    assert!(reply["content"].as_str().unwrap().contains("Done ("), "{reply}");
    assert_eq!(t.executions().len(), 1);
    assert_eq!(t.proposals("").await[0]["scope"], "conversation");

    // The same call (same action, same entities) now runs without asking, here.
    let reply = t.say(&c, HEATER_ON).await;
    assert_eq!(t.executions().len(), 2, "{reply}");
    assert!(t.executions()[1].approval.is_none());
    assert!(t.audit_actions().await.iter().any(|a| a == "tool.granted"));
    // Another target asks: a grant never reaches new entities.
    t.say(&c, r#"DO: call set_switch {"entity_id": "switch.fan", "action": "turn_on"}"#).await;
    assert_eq!(t.executions().len(), 2);
    assert_eq!(t.proposals("?status=pending").await.len(), 1);
    t.say(&c, "reject").await;
    // Another action asks.
    t.say(&c, r#"DO: call set_switch {"entity_id": "switch.heater", "action": "turn_off"}"#).await;
    assert_eq!(t.executions().len(), 2);
    assert_eq!(t.proposals("?status=pending").await.len(), 1);
    // Another conversation asks.
    let other = t.conversation().await;
    t.say(&other, HEATER_ON).await;
    assert_eq!(t.executions().len(), 2);
    assert_eq!(t.proposals("?status=pending").await.len(), 2);
}

#[tokio::test]
async fn approving_once_grants_nothing_more() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    t.say(&c, "approve").await;
    t.say(&c, HEATER_ON).await;
    assert_eq!(t.executions().len(), 1, "the same call asks again");
    assert_eq!(t.proposals("?status=pending").await.len(), 1);
}

#[tokio::test]
async fn destructive_calls_can_only_be_approved_once() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, r#"DO: call wipe_disk {"entity_id": "disk.nas"}"#).await;
    let id = t.proposals("?status=pending").await[0]["id"].as_str().unwrap().to_string();
    let reply = t.say(&c, "approve always").await;
    assert!(reply["content"].as_str().unwrap().contains("can only be approved once"), "{reply}");
    assert!(t.executions().is_empty());
    let r = t.decide(&id, "approve", json!({"scope": "conversation"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(t.decide(&id, "approve", json!({"scope": "once"})).await.status, 200);
    assert_eq!(t.executions().len(), 1);
}

#[tokio::test]
async fn several_waiting_need_approve_all_or_an_id() {
    let t = approvals().await;
    let c = t.conversation().await;
    let two = format!("{HEATER_ON}\n{}", r#"DO: call set_switch {"entity_id": "switch.pump", "action": "turn_on"}"#);
    let reply = t.say(&c, &two).await;
    assert!(reply["content"].as_str().unwrap().contains("'approve all'"), "{reply}");
    let pending = t.proposals("?status=pending").await;
    assert_eq!(pending.len(), 2);

    let reply = t.say(&c, "approve").await;
    assert!(reply["content"].as_str().unwrap().starts_with("2 actions are waiting; say which"), "{reply}");
    assert!(t.executions().is_empty());

    // By a prefix of its id.
    let pump = pending.iter().find(|p| p["arguments"]["entity_id"] == "switch.pump").unwrap();
    let pump_id = pump["id"].as_str().unwrap();
    t.say(&c, &format!("approve {}", &pump_id[..10])).await;
    assert_eq!(t.executions().len(), 1);
    assert_eq!(t.executions()[0].arguments["entity_id"], "switch.pump");

    let reply = t.say(&c, "approve apr_ffffffffffff").await;
    assert!(reply["content"].as_str().unwrap().contains("no approval 'apr_ffffffffffff'"), "{reply}");
    t.say(&c, "approve all").await;
    assert_eq!(t.executions().len(), 2);
    assert!(t.proposals("?status=pending").await.is_empty());
}

#[tokio::test]
async fn after_a_restart_approved_actions_run_once_and_interrupted_ones_fail() {
    let t = approvals().await;
    let (c1, c2, c3) = (t.conversation().await, t.conversation().await, t.conversation().await);
    t.say(&c1, HEATER_ON).await;
    t.say(&c2, HEATER_ON).await;
    t.say(&c3, HEATER_ON).await;
    let mut ids = Vec::new();
    for c in [&c1, &c2, &c3] {
        ids.push(t.proposals(&format!("?conversation_id={c}")).await[0]["id"].as_str().unwrap().to_string());
    }
    let (p1, p2, p3) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    // The state a crash leaves: p1 approved but never started; p2 started
    // (its tool may or may not have acted) but never finished; p3
    // approved, never started, and Steward was down past its lifetime.
    let now = steward_core::Clock::now_ms(t.clock.as_ref());
    let approve = |by: &str, at: i64| ApprovalDecision {
        status: ApprovalStatus::Approved,
        decided_by: by.into(),
        decided_at: at,
        scope: Some(ApprovalScope::Once),
    };
    t.store.decide_approval(&p1, &approve("user:a", now)).await.unwrap().unwrap();
    t.store.decide_approval(&p2, &approve("user:b", now)).await.unwrap().unwrap();
    t.store.decide_approval(&p3, &approve("user:c", now)).await.unwrap().unwrap();
    assert!(t.store.claim_approval(&p2, now).await.unwrap());
    t.clock.advance(Duration::from_secs(3));
    let old = t.store.get_approval(&p3).await.unwrap().unwrap();
    sqlx::query("UPDATE approvals SET decided_at = 1 WHERE id = $1")
        .bind(&old.id)
        .execute(t.store.pool())
        .await
        .unwrap();

    let mut recovery = t.engine.recover_approvals().await.unwrap();
    recovery.interrupted.sort();
    assert_eq!(recovery.resumed, vec![p1.clone()]);
    let mut expected = vec![p2.clone(), p3.clone()];
    expected.sort();
    assert_eq!(recovery.interrupted, expected);
    let too_late = t.h.get(&format!("/api/proposals/{p3}")).await.json();
    assert_eq!(too_late["status"], "failed");
    assert!(too_late["outcome"].as_str().unwrap().starts_with("not run"), "{too_late}");
    let runs = t.executions();
    assert_eq!(runs.len(), 1, "only the never-started action runs");
    assert_eq!(runs[0].approval.as_deref(), Some(p1.as_str()));
    assert_eq!(t.h.get(&format!("/api/proposals/{p1}")).await.json()["status"], "executed");
    let failed = t.h.get(&format!("/api/proposals/{p2}")).await.json();
    assert_eq!(failed["status"], "failed");
    assert!(failed["outcome"].as_str().unwrap().contains("It was not run again"), "{failed}");
    // The person is told in the conversation.
    let stored = t.h.get(&format!("/api/conversations/{c2}")).await.json();
    let last = stored["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(last.starts_with(&format!("Failed ({p2})")), "{last}");

    // A second recovery finds nothing to do.
    assert_eq!(t.engine.recover_approvals().await.unwrap(), Default::default());
    assert_eq!(t.executions().len(), 1);
}

#[tokio::test]
async fn debug_mode_streams_tool_io_with_secrets_redacted() {
    let t = approvals().await;
    let c = t.conversation().await;
    *t.note.lock().unwrap() = format!("config: password=hunter2 token {SECRET} ok");
    let r =
        t.h.send(
            axum::http::Request::patch(format!("/api/conversations/{c}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"debug": true}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["debug"], true);

    let r =
        t.h.post_json(
            &format!("/api/conversations/{c}/messages?stream=true"),
            json!({"content": format!("DO: call read_note {{\"api_key\": \"k-1\", \"q\": \"{SECRET}\"}}")}),
        )
        .await;
    let events = r.sse_events();
    let debug: Vec<_> = events.iter().filter(|(name, _)| name == "tool_debug").map(|(_, e)| e.clone()).collect();
    assert_eq!(debug.len(), 2, "{events:?}");
    assert_eq!(debug[0]["phase"], "input");
    assert_eq!(debug[0]["content"], r#"{"api_key":"[redacted]","q":"[redacted]"}"#);
    assert_eq!(debug[1]["phase"], "output");
    assert_eq!(debug[1]["content"], "config: password=[redacted] token [redacted] ok");
    for d in &debug {
        assert!(!d.to_string().contains("hunter2") && !d.to_string().contains(SECRET), "{d}");
    }

    // Without debug mode, no such events.
    let other = t.conversation().await;
    let r =
        t.h.post_json(
            &format!("/api/conversations/{other}/messages?stream=true"),
            json!({"content": "DO: call read_note {}"}),
        )
        .await;
    assert!(!r.sse_events().iter().any(|(name, _)| name == "tool_debug"));
    // A bad patch is refused.
    let r =
        t.h.send(
            axum::http::Request::patch(format!("/api/conversations/{c}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"debug": "yes"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn debug_mode_for_every_conversation_comes_from_the_engine_options() {
    let t = approvals_with(Setup { debug: true, ..Setup::default() }).await;
    let c = t.conversation().await;
    let r = t
        .h
        .post_json(&format!("/api/conversations/{c}/messages?stream=true"), json!({"content": "DO: call read_note {}"}))
        .await;
    assert_eq!(r.sse_events().iter().filter(|(name, _)| name == "tool_debug").count(), 2);
}

#[tokio::test]
async fn a_decision_after_the_expiry_is_refused_even_unseen() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let id = t.proposals("?status=pending").await[0]["id"].as_str().unwrap().to_string();
    // Nobody looked at it since; the decision itself finds it expired.
    t.clock.advance(Duration::from_secs(600));
    let r = t.decide(&id, "approve", json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("expired"), "{}", r.text());
    assert!(t.executions().is_empty());
}

#[tokio::test]
async fn calls_that_name_no_entities_can_only_be_approved_once() {
    let t = approvals().await;
    let c = t.conversation().await;
    t.say(&c, "DO: call set_switch {\"action\": \"turn_on\"}").await;
    let pending = t.proposals("?status=pending").await;
    // The switch tool refuses a call without entity_id already in its preview.
    assert!(pending.is_empty(), "{pending:?}");
    // A call with targets can be approved always; one without cannot.
    t.say(&c, HEATER_ON).await;
    let id = t.proposals("?status=pending").await[0]["id"].as_str().unwrap().to_string();
    sqlx::query("UPDATE approvals SET targets = '[]' WHERE id = $1").bind(&id).execute(t.store.pool()).await.unwrap();
    let reply = t.say(&c, "approve always").await;
    assert!(reply["content"].as_str().unwrap().contains("names no entities"), "{reply}");
    assert!(t.executions().is_empty());
}
