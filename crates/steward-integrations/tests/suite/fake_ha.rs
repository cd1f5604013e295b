//! Small stand-ins for what can sit at HA_URL, to check the client's errors
//! and its reconnection without a real Home Assistant: a WebSocket server
//! that speaks just enough of Home Assistant's protocol, a web server that
//! answers everything with an HTML page, and one that never answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// A state object as Home Assistant sends it.
pub fn state(entity_id: &str, state: &str) -> Value {
    json!({
        "entity_id": entity_id,
        "state": state,
        "attributes": {"friendly_name": entity_id},
        "last_changed": "2026-03-10T14:07:00.000000+00:00",
        "last_updated": "2026-03-10T14:07:00.000000+00:00",
        "context": {"id": "x", "parent_id": null, "user_id": null},
    })
}

/// A fake Home Assistant WebSocket API.
pub struct FakeHa {
    pub url: String,
    states: Arc<Mutex<Vec<Value>>>,
    kick: Arc<Notify>,
    /// Connections that authenticated.
    pub connections: Arc<AtomicUsize>,
    /// Problems with the ids the client sent (each connection must count from 1 up).
    pub id_problems: Arc<Mutex<Vec<String>>>,
    listening: tokio::task::AbortHandle,
}

impl FakeHa {
    pub async fn start(token: &'static str, states: Vec<Value>) -> FakeHa {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let states = Arc::new(Mutex::new(states));
        let kick = Arc::new(Notify::new());
        let connections = Arc::new(AtomicUsize::new(0));
        let id_problems = Arc::new(Mutex::new(Vec::new()));
        let (s, k, c, p) = (states.clone(), kick.clone(), connections.clone(), id_problems.clone());
        let listening = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, token, s.clone(), k.clone(), c.clone(), p.clone()));
            }
        })
        .abort_handle();
        FakeHa { url, states, kick, connections, id_problems, listening }
    }

    pub fn set_states(&self, states: Vec<Value>) {
        *self.states.lock().unwrap() = states;
    }

    /// Drops every open connection, as a restart does.
    pub fn drop_connections(&self) {
        self.kick.notify_waiters();
    }

    /// Goes away for good: connections dropped, the port closed.
    pub async fn stop(&self) {
        self.listening.abort();
        // Let the abort close the listener before the connections go.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        self.kick.notify_waiters();
    }
}

async fn serve(
    stream: TcpStream,
    token: &str,
    states: Arc<Mutex<Vec<Value>>>,
    kick: Arc<Notify>,
    connections: Arc<AtomicUsize>,
    problems: Arc<Mutex<Vec<String>>>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let send = |v: Value| Message::text(v.to_string());
    if ws.send(send(json!({"type": "auth_required", "ha_version": "2025.4.4"}))).await.is_err() {
        return;
    }
    let Some(Ok(Message::Text(auth))) = ws.next().await else { return };
    let auth: Value = serde_json::from_str(auth.as_str()).unwrap();
    if auth["type"] != "auth" || auth["access_token"] != token {
        let _ = ws.send(send(json!({"type": "auth_invalid", "message": "Invalid access token or password"}))).await;
        return;
    }
    if ws.send(send(json!({"type": "auth_ok", "ha_version": "2025.4.4"}))).await.is_err() {
        return;
    }
    connections.fetch_add(1, Ordering::SeqCst);
    let mut last_id = 0;
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = kick.notified() => return,
        };
        let Some(Ok(Message::Text(text))) = message else { return };
        let command: Value = serde_json::from_str(text.as_str()).unwrap();
        let id = command["id"].as_u64().unwrap_or(0);
        if (last_id == 0 && id != 1) || (last_id != 0 && id <= last_id) {
            problems.lock().unwrap().push(format!("id {id} after {last_id}"));
        }
        last_id = id;
        let result = match command["type"].as_str().unwrap_or_default() {
            "get_states" => Value::Array(states.lock().unwrap().clone()),
            "config/entity_registry/get_entries" => json!({}),
            kind if kind.ends_with("_registry/list") => json!([]),
            "ping" => {
                let _ = ws.send(send(json!({"id": id, "type": "pong"}))).await;
                continue;
            }
            "subscribe_events" => Value::Null,
            other => {
                let error = json!({"code": "unknown_command", "message": format!("Unknown command {other}.")});
                let _ = ws.send(send(json!({"id": id, "type": "result", "success": false, "error": error}))).await;
                continue;
            }
        };
        if ws.send(send(json!({"id": id, "type": "result", "success": true, "result": result}))).await.is_err() {
            return;
        }
    }
}

/// A web server that answers every request with an HTML page, as a router
/// or another service at the wrong address would.
pub async fn html_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body =
                    "<!DOCTYPE html><html><head><title>Router login</title></head><body>Please log in</body></html>";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

/// A server that accepts connections and never says anything.
pub async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// An address where nothing listens.
pub async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// A WebSocket server that greets with `greeting` (something that is not
/// Home Assistant's `auth_required`).
pub async fn websocket_saying(greeting: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                let _ = ws.send(Message::text(greeting)).await;
                // Keep the connection open until the client goes.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    url
}
