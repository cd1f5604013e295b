use serde_json::json;
use steward_testkit::Reply as Scripted;

use super::harness;

#[tokio::test]
async fn conversations_can_be_created_listed_continued_and_read_back() {
    let h = harness().await;
    let r = h.post_json("/api/conversations", json!({"title": "Heating"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json();
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["agent"], "architect");
    assert_eq!(c["title"], "Heating");

    // An empty body starts a conversation with the default agent.
    let r = h.post_raw("/api/conversations", "").await;
    assert_eq!(r.status, 201);

    h.llm().push(Scripted::text("It is 20 degrees."));
    let r = h.post_json(&format!("/api/conversations/{id}/messages"), json!({"content": "how warm is it?"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let reply = r.json();
    assert_eq!(reply["content"], "It is 20 degrees.");
    assert_eq!(reply["conversation_id"], id.as_str());
    assert_eq!(reply["finish_reason"], "stop");
    assert_eq!(reply["messages"].as_array().unwrap().len(), 2);

    let r = h.get(&format!("/api/conversations/{id}")).await;
    let detail = r.json();
    assert_eq!(detail["id"], id.as_str());
    let msgs = detail["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!((msgs[0]["role"].as_str(), msgs[0]["seq"].as_i64()), (Some("user"), Some(0)));
    assert_eq!((msgs[1]["role"].as_str(), msgs[1]["content"].as_str()), (Some("assistant"), Some("It is 20 degrees.")));

    // The second turn's context is the stored conversation.
    h.llm().push(Scripted::text("Still 20."));
    h.post_json(&format!("/api/conversations/{id}/messages"), json!({"content": "and now?"})).await;
    let sent = &h.llm().chat_requests()[1]["messages"];
    let contents: Vec<&str> = sent.as_array().unwrap()[1..].iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, vec!["how warm is it?", "It is 20 degrees.", "and now?"]);

    let list = h.get("/api/conversations").await.json();
    let ids: Vec<&str> = list["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], id, "most recently updated first");
    assert_eq!(h.get("/api/conversations?limit=1").await.json()["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(h.get("/api/conversations?limit=zero").await.status, 400);
}

#[tokio::test]
async fn streamed_messages_deliver_the_engine_events() {
    let h = harness().await;
    let id = h.post_json("/api/conversations", json!({})).await.json()["id"].as_str().unwrap().to_string();
    h.llm().push(Scripted::tool_call("get_current_time", "{}"));
    h.llm().push(Scripted::text("Done."));
    let r = h.post_json(&format!("/api/conversations/{id}/messages?stream=true"), json!({"content": "time?"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let events = r.sse_events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"turn_started"));
    assert_eq!(names.last(), Some(&"turn_finished"));
    for expected in ["tool_call_started", "tool_result", "text_delta", "message_stored"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let result = events.iter().find(|(n, _)| n == "tool_result").unwrap();
    assert_eq!(result.1["ok"], true);
    assert_eq!(result.1["name"], "get_current_time");
    let stored = h.get(&format!("/api/conversations/{id}")).await.json();
    assert_eq!(stored["messages"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn missing_conversations_and_agents_are_404() {
    let h = harness().await;
    let r = h.get("/api/conversations/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.error()["message"].as_str().unwrap().contains("nope"));
    let r = h.post_json("/api/conversations/nope/messages", json!({"content": "hi"})).await;
    assert_eq!(r.status, 404);
    let r = h.post_json("/api/conversations", json!({"agent": "ghost"})).await;
    assert_eq!(r.status, 404);
    let e = r.error();
    assert_eq!(e["param"], "agent");
    assert!(e["message"].as_str().unwrap().contains("architect"), "{e}");
    // A conversation header naming nothing is a 404, not a new conversation.
    let request = axum::http::Request::post("/v1/chat/completions")
        .header("x-steward-conversation-id", "nope")
        .body(axum::body::Body::from(
            json!({"model": "architect", "messages": [{"role": "user", "content": "x"}]}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(request).await.status, 404);
}
