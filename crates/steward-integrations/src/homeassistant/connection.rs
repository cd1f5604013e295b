//! One WebSocket connection to Home Assistant: the auth handshake, a reader
//! task that answers requests and keeps the state cache live, and a writer
//! task, so a request never shares the socket with a half-sent frame.
//!
//! Message ids are per connection (Home Assistant requires them to
//! increase within one), so a request that was in flight when a connection
//! dropped fails rather than being answered by the next one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use steward_core::home::HomeError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::shared::Shared;
use super::wire::{parse_states, snippet};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Home Assistant sends the whole house in one `get_states` frame; big
/// installations reach tens of megabytes.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Why a command got no result.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Home Assistant answered with an error.
    Ha { code: String, message: String },
    /// Anything else: no connection, a dropped one, a timeout.
    Home(HomeError),
}

impl CallError {
    /// The usual meaning of Home Assistant's error codes, for a command
    /// described by `what` (`history/history_during_period`, `light.turn_on`).
    pub(crate) fn into_home(self, what: &str) -> HomeError {
        match self {
            CallError::Home(e) => e,
            CallError::Ha { code, message } => match code.as_str() {
                "unauthorized" => HomeError::Unauthorized(format!(
                    "the user of HA_TOKEN may not do {what}: {message}; use a token of an administrator"
                )),
                "unknown_command" => HomeError::UnexpectedReply(format!(
                    "Home Assistant does not know the command {what} ({message}); it may be older than Steward \
supports, or the integration that provides it is not loaded"
                )),
                _ => HomeError::invalid(what, message),
            },
        }
    }
}

enum Pending {
    /// A plain command: its result goes to the caller.
    Reply(oneshot::Sender<Result<Value, CallError>>),
    /// `get_states`: the reader replaces the cache with the result itself,
    /// in order with the events around it, then says how many states came.
    States { announce: bool, done: oneshot::Sender<Result<usize, CallError>> },
}

/// What the reader and the writer share with the requests.
struct Wire {
    /// Home Assistant's address, for errors.
    url: String,
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    /// Milliseconds since `opened` when anything last came from Home Assistant.
    last_heard: AtomicU64,
    opened: Instant,
    /// Set once, with the reason, when the connection ends.
    closed: watch::Sender<Option<String>>,
}

impl Wire {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self, reason: String) {
        self.closed.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(reason.clone());
            true
        });
        // Whatever was asked and not answered never will be.
        for (_, pending) in self.pending().drain() {
            let lost = || CallError::Home(HomeError::Unreachable { url: self.url.clone(), reason: reason.clone() });
            match pending {
                Pending::Reply(tx) => {
                    let _ = tx.send(Err(lost()));
                }
                Pending::States { done, .. } => {
                    let _ = done.send(Err(lost()));
                }
            }
        }
    }
}

/// A live, authenticated connection. Dropping it ends its tasks.
pub(crate) struct Connection {
    wire: Arc<Wire>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A short description of a tungstenite error, as an error a person can act on.
fn classify(e: tungstenite::Error, shared: &Shared) -> HomeError {
    let url = shared.endpoint.display.clone();
    match e {
        tungstenite::Error::Io(io) => HomeError::Unreachable { url, reason: io.to_string() },
        tungstenite::Error::Tls(tls) => HomeError::Unreachable { url, reason: format!("TLS failed: {tls}") },
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            HomeError::Unreachable { url, reason: "the connection was closed".into() }
        }
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            if status.as_u16() == 401 || status.as_u16() == 403 {
                return HomeError::Unauthorized(format!("HTTP {status} from {}", shared.endpoint.ws));
            }
            HomeError::UnexpectedReply(format!(
                "{} answered HTTP {status} instead of opening a WebSocket: {}",
                shared.endpoint.ws,
                snippet(&body)
            ))
        }
        tungstenite::Error::Url(e) => HomeError::invalid(
            "connecting to Home Assistant",
            format!("HA_URL {url} cannot be used for a WebSocket ({e}); give the http:// or https:// address"),
        ),
        other => HomeError::UnexpectedReply(format!("the WebSocket at {} failed: {other}", shared.endpoint.ws)),
    }
}

fn timeout_error(what: &str, after: Duration) -> HomeError {
    HomeError::Timeout { what: what.to_string(), after }
}

/// Reads the next text message of the handshake as JSON.
async fn next_json(socket: &mut Socket, shared: &Shared) -> Result<Value, HomeError> {
    loop {
        match socket.next().await {
            None => {
                return Err(HomeError::Unreachable {
                    url: shared.endpoint.display.clone(),
                    reason: "Home Assistant closed the connection during the handshake".into(),
                })
            }
            Some(Err(e)) => return Err(classify(e, shared)),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).map_err(|_| {
                    HomeError::UnexpectedReply(format!(
                        "the WebSocket at {} sent something that is not JSON: {}",
                        shared.endpoint.ws,
                        snippet(text.as_str())
                    ))
                })
            }
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map(|f| f.reason.to_string()).filter(|r| !r.is_empty());
                return Err(HomeError::Unreachable {
                    url: shared.endpoint.display.clone(),
                    reason: format!(
                        "Home Assistant closed the connection during the handshake{}",
                        why.map(|w| format!(" ({w})")).unwrap_or_default()
                    ),
                });
            }
            Some(Ok(Message::Binary(bytes))) => {
                return Err(HomeError::UnexpectedReply(format!(
                    "the WebSocket at {} sent binary data: {}",
                    shared.endpoint.ws,
                    snippet(&String::from_utf8_lossy(&bytes))
                )))
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// Opens the socket and authenticates: `auth_required` → `auth` →
/// `auth_ok` | `auth_invalid`.
async fn open(shared: &Shared) -> Result<Socket, HomeError> {
    let request = shared.endpoint.ws.as_str().into_client_request().map_err(|e| classify(e, shared))?;
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    let what = format!("connecting to Home Assistant at {}", shared.endpoint.display);
    let after = shared.options.connect_timeout;
    let handshake = async {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(|e| classify(e, shared))?;
        let hello = next_json(&mut socket, shared).await?;
        if hello.get("type").and_then(Value::as_str) != Some("auth_required") {
            return Err(HomeError::UnexpectedReply(format!(
                "{} did not greet as Home Assistant does (auth_required): {}",
                shared.endpoint.ws,
                snippet(&hello.to_string())
            )));
        }
        let auth = json!({"type": "auth", "access_token": shared.token.expose()});
        socket.send(Message::text(auth.to_string())).await.map_err(|e| classify(e, shared))?;
        let reply = next_json(&mut socket, shared).await?;
        match reply.get("type").and_then(Value::as_str) {
            Some("auth_ok") => Ok(socket),
            Some("auth_invalid") => {
                let message = reply.get("message").and_then(Value::as_str).unwrap_or("invalid access token");
                Err(HomeError::Unauthorized(format!("HA_TOKEN was rejected: {message}")))
            }
            _ => Err(HomeError::UnexpectedReply(format!(
                "{} answered the authentication with {}",
                shared.endpoint.ws,
                snippet(&reply.to_string())
            ))),
        }
    };
    tokio::time::timeout(after, handshake).await.map_err(|_| timeout_error(&what, after))?
}

impl Connection {
    /// Connects, authenticates and starts the reader and writer.
    pub(crate) async fn open(shared: &Arc<Shared>) -> Result<Arc<Connection>, HomeError> {
        let socket = open(shared).await?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let wire = Arc::new(Wire {
            url: shared.endpoint.display.clone(),
            outgoing,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            last_heard: AtomicU64::new(0),
            opened: Instant::now(),
            closed: watch::channel(None).0,
        });

        let writer_wire = wire.clone();
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if let Err(e) = sink.send(message).await {
                    writer_wire.close(format!("sending to Home Assistant failed: {e}"));
                    return;
                }
            }
        });

        let reader_wire = wire.clone();
        let reader_shared = shared.clone();
        let reader = tokio::spawn(async move {
            let reason = loop {
                let message = match stream.next().await {
                    None => break "Home Assistant closed the connection".to_string(),
                    Some(Err(e)) => break format!("the connection failed: {e}"),
                    Some(Ok(message)) => message,
                };
                let heard = u64::try_from(reader_wire.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
                reader_wire.last_heard.store(heard, Ordering::Relaxed);
                match message {
                    Message::Text(text) => dispatch(&reader_shared, &reader_wire, text.as_str()),
                    Message::Close(frame) => {
                        let why = frame.map(|f| f.reason.to_string()).filter(|r| !r.is_empty());
                        break format!(
                            "Home Assistant closed the connection{}",
                            why.map(|w| format!(" ({w})")).unwrap_or_default()
                        );
                    }
                    Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            };
            reader_wire.close(reason);
        });

        Ok(Arc::new(Connection { wire, tasks: vec![writer.abort_handle(), reader.abort_handle()] }))
    }

    fn register(&self, mut payload: Value, pending: Pending) -> Result<u64, CallError> {
        if let Some(reason) = self.wire.closed.borrow().clone() {
            return Err(CallError::Home(HomeError::Unreachable { url: self.wire.url.clone(), reason }));
        }
        let id = self.wire.next_id.fetch_add(1, Ordering::Relaxed);
        payload["id"] = json!(id);
        self.wire.pending().insert(id, pending);
        if self.wire.outgoing.send(Message::text(payload.to_string())).is_err() {
            self.wire.pending().remove(&id);
            return Err(CallError::Home(HomeError::Unreachable {
                url: self.wire.url.clone(),
                reason: "the connection is closing".into(),
            }));
        }
        Ok(id)
    }

    async fn wait<T>(
        &self,
        id: u64,
        rx: oneshot::Receiver<Result<T, CallError>>,
        deadline: Instant,
        what: &str,
        after: Duration,
    ) -> Result<T, CallError> {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Home(HomeError::Unreachable {
                url: self.wire.url.clone(),
                reason: "the connection ended before Home Assistant answered".into(),
            })),
            Err(_) => {
                self.wire.pending().remove(&id);
                Err(CallError::Home(timeout_error(what, after)))
            }
        }
    }

    /// Sends one command (`payload` without its id) and waits for its result.
    pub(crate) async fn command(&self, payload: Value, deadline: Instant, after: Duration) -> Result<Value, CallError> {
        let what = payload.get("type").and_then(Value::as_str).unwrap_or("a command").to_string();
        let (tx, rx) = oneshot::channel();
        let id = self.register(payload, Pending::Reply(tx))?;
        self.wait(id, rx, deadline, &what, after).await
    }

    /// Fetches every state into the cache; with `announce`, differences
    /// from what the cache held are told to subscribers (after a reconnect,
    /// so they hear of what changed while the connection was down).
    pub(crate) async fn load_states(
        &self,
        announce: bool,
        deadline: Instant,
        after: Duration,
    ) -> Result<usize, CallError> {
        let (tx, rx) = oneshot::channel();
        let id = self.register(json!({"type": "get_states"}), Pending::States { announce, done: tx })?;
        self.wait(id, rx, deadline, "get_states", after).await
    }

    /// Sends a ping; the answer (any message) counts as being heard.
    pub(crate) fn ping(&self) {
        let id = self.wire.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self.wire.outgoing.send(Message::text(json!({"id": id, "type": "ping"}).to_string()));
    }

    /// How long since anything came from Home Assistant.
    pub(crate) fn silent_for(&self) -> Duration {
        let heard = Duration::from_millis(self.wire.last_heard.load(Ordering::Relaxed));
        self.wire.opened.elapsed().saturating_sub(heard)
    }

    /// Resolves, with the reason, when the connection has ended.
    pub(crate) async fn closed(&self) -> String {
        let mut rx = self.wire.closed.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "the connection ended".into();
            }
        }
    }

    /// Ends the connection now (a heartbeat went unanswered).
    pub(crate) fn abandon(&self, reason: String) {
        let _ = self.wire.outgoing.send(Message::Close(None));
        self.wire.close(reason);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Handles one text frame: a result, an event, a pong (or several of them:
/// Home Assistant may coalesce messages into a JSON list).
fn dispatch(shared: &Shared, wire: &Wire, text: &str) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            tracing::warn!(frame = %snippet(text), "Home Assistant sent a frame that is not JSON; ignored");
            return;
        }
    };
    match value {
        Value::Array(items) => items.iter().for_each(|m| handle(shared, wire, m)),
        message => handle(shared, wire, &message),
    }
}

fn handle(shared: &Shared, wire: &Wire, message: &Value) {
    match message.get("type").and_then(Value::as_str) {
        Some("result") => {
            let Some(id) = message.get("id").and_then(Value::as_u64) else { return };
            let Some(pending) = wire.pending().remove(&id) else { return };
            let outcome = if message.get("success").and_then(Value::as_bool) == Some(true) {
                Ok(message.get("result").cloned().unwrap_or(Value::Null))
            } else {
                let error = message.get("error");
                let field =
                    |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
                Err(CallError::Ha { code: field("code"), message: field("message") })
            };
            match pending {
                Pending::Reply(tx) => {
                    let _ = tx.send(outcome);
                }
                Pending::States { announce, done } => {
                    let loaded = outcome.and_then(|v| parse_states(&v).map_err(CallError::Home)).map(|states| {
                        let n = states.len();
                        shared.replace_states(states, announce);
                        n
                    });
                    let _ = done.send(loaded);
                }
            }
        }
        Some("event") => {
            let Some(event) = message.get("event") else { return };
            match event.get("event_type").and_then(Value::as_str) {
                Some("state_changed") => {
                    if let Some(data) = event.get("data") {
                        shared.apply_state_changed(data);
                    }
                }
                Some(kind) if kind.ends_with("_registry_updated") => shared.mark_registries_stale(),
                _ => {}
            }
        }
        _ => {}
    }
}
