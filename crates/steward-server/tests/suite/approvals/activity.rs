//! `GET /api/events`: one ordered stream of what every turn and approval
//! does, whoever started it, for watchers such as the dashboard.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{approvals, HEATER_ON};

/// One SSE message of the activity stream.
#[derive(Debug)]
pub struct Frame {
    pub name: String,
    pub id: u64,
    pub data: Value,
}

/// An open activity stream.
pub struct Watcher {
    body: Body,
    buffer: String,
    pub seen: Vec<Frame>,
}

impl Watcher {
    pub async fn open(h: &super::super::Harness, query: &str) -> Watcher {
        let request = Request::get(format!("/api/events{query}")).body(Body::empty()).unwrap();
        let response = h.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Watcher { body: response.into_body(), buffer: String::new(), seen: Vec::new() }
    }

    /// Reads until `done` holds for what was seen; fails the test after 10 s.
    pub async fn until(&mut self, what: &str, done: impl Fn(&[Frame]) -> bool) {
        let read = async {
            while !done(&self.seen) {
                let frame = self.body.frame().await.expect("the stream ended").expect("the stream failed");
                let Ok(bytes) = frame.into_data() else { continue };
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
                while let Some(end) = self.buffer.find("\n\n") {
                    let message: String = self.buffer.drain(..end + 2).collect();
                    let (mut name, mut id, mut data) = (None, None, None);
                    for line in message.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            name = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse::<u64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str::<Value>(v).unwrap());
                        }
                    }
                    // Comment lines (keepalives) carry nothing.
                    if let (Some(name), Some(id), Some(data)) = (name, id, data) {
                        self.seen.push(Frame { name, id, data });
                    }
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), read).await.is_err() {
            let names: Vec<_> = self.seen.iter().map(|f| f.name.as_str()).collect();
            panic!("no {what} on the activity stream within 10 s; saw {names:?}");
        }
    }
}

fn approval_status(f: &Frame) -> Option<&str> {
    f.data["event"]["approval"]["status"].as_str()
}

#[tokio::test]
async fn a_turn_and_an_approval_decided_over_the_api_are_one_ordered_stream() {
    let t = approvals().await;
    let mut w = Watcher::open(&t.h, "").await;
    let c = t.conversation().await;
    t.say(&c, HEATER_ON).await;
    let pending = t.proposals("?status=pending").await;
    let id = pending[0]["id"].as_str().unwrap().to_string();
    let decided = t.decide(&id, "approve", json!({})).await;
    assert_eq!(decided.status, 200, "{}", decided.text());
    w.until("executed approval", |seen| seen.iter().any(|f| approval_status(f) == Some("executed"))).await;

    // Numbered one by one, each message named after its event.
    for pair in w.seen.windows(2) {
        assert_eq!(pair[1].id, pair[0].id + 1, "{:?} then {:?}", pair[0], pair[1]);
    }
    for f in &w.seen {
        assert_eq!(f.data["seq"], f.id);
        assert_eq!(f.data["event"]["type"], f.name);
        assert!(f.data["at"].as_i64().unwrap() > 0);
    }
    let names: Vec<&str> = w.seen.iter().map(|f| f.name.as_str()).collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("no {name} in {names:?}"));
    assert!(at("turn_started") < at("tool_call_started"), "{names:?}");
    assert!(at("tool_call_started") < at("approval_requested"), "{names:?}");
    assert!(at("approval_requested") < at("turn_finished"), "{names:?}");
    assert!(!names.contains(&"text_delta"), "the words stay in the conversation's own stream: {names:?}");
    // The turn's events name their conversation and agent.
    let started = &w.seen[at("turn_started")];
    assert_eq!(
        (started.data["conversation_id"].as_str(), started.data["agent"].as_str()),
        (Some(c.as_str()), Some("architect"))
    );
    // The approval is announced once, however many front ends saw it, then
    // followed through its decision to its outcome, all in its conversation.
    let about: Vec<&Frame> = w.seen.iter().filter(|f| f.data["event"]["approval"]["id"] == id.as_str()).collect();
    assert_eq!(about.iter().filter(|f| f.name == "approval_requested").count(), 1, "{names:?}");
    let statuses: Vec<&str> = about.iter().filter_map(|f| approval_status(f)).collect();
    assert_eq!(statuses.first(), Some(&"pending"));
    assert!(statuses.contains(&"approved"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"executed"));
    assert!(about.iter().all(|f| f.data["conversation_id"] == c.as_str()));
    assert_eq!(about.last().unwrap().data["event"]["approval"]["decided_by"], "user:local");

    // A watcher that comes back later resumes after what it saw last.
    let requested = w.seen[at("approval_requested")].id;
    let mut again = Watcher::open(&t.h, &format!("?after={requested}")).await;
    again
        .until("the events after the request", |seen| seen.iter().any(|f| approval_status(f) == Some("executed")))
        .await;
    assert_eq!(again.seen[0].id, requested + 1);
    assert_eq!(again.seen.len(), w.seen.iter().filter(|f| f.id > requested).count());
    // So does a browser's EventSource, through Last-Event-ID.
    let request =
        Request::get("/api/events").header("last-event-id", requested.to_string()).body(Body::empty()).unwrap();
    let mut resumed = Watcher {
        body: t.h.app.clone().oneshot(request).await.unwrap().into_body(),
        buffer: String::new(),
        seen: Vec::new(),
    };
    resumed.until("the resumed events", |seen| !seen.is_empty()).await;
    assert_eq!(resumed.seen[0].id, requested + 1);
}

#[tokio::test]
async fn a_resume_point_that_is_not_a_number_is_refused() {
    let t = approvals().await;
    let r = t.h.get("/api/events?after=yesterday").await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.error();
    assert_eq!(e["param"], "after");
    assert!(e["message"].as_str().unwrap().contains("yesterday"), "{e}");
}
