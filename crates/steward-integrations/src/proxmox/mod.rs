//! Proxmox VE: a client of its REST API (`/api2/json`), and the tools the
//! `infra` agent sees and powers guests with (see [`proxmox_tools`]).
//!
//! Configured by the API's base URL (`https://pve1.lan:8006`), an API token
//! id (`USER@REALM!TOKENID`) and the token's secret, sent on every request
//! as `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`. API tokens
//! need no login ticket and no CSRF token, and can be given only the
//! privileges Steward needs (`Sys.Audit`, `VM.Audit`, `VM.PowerMgmt`) and be
//! revoked on their own.
//!
//! Proxmox VE serves HTTPS with a certificate of its own cluster CA, which
//! no public root store knows. Either name that CA (`ca_cert`, the PEM file
//! `/etc/pve/pve-root-ca.pem` of any node) or, on a network you trust, turn
//! verification off (`insecure_tls`); never both. Plain `http://` is refused
//! except on loopback, where only tests (or a local TLS-terminating proxy)
//! listen, because it would send the token in the clear.
//!
//! The secret is never logged, never put in an error (text a server sends
//! back is scrubbed of it too) and hidden from `Debug` output.

mod tools;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

pub use tools::{proxmox_tools, TaskWait, NOT_CONFIGURED, TOOL_NAMES};
pub use wire::{compact_resource, human_duration, valid_node, Guest, GuestKind, Node, TaskState, Upid};

/// How long one API request may take by default: Proxmox answers reads in
/// milliseconds and queues power actions as tasks, so a request that takes
/// longer than this is a host in trouble.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Characters of a server's reply quoted in an error.
const SNIPPET_CHARS: usize = 300;
/// Log lines fetched in one request; task logs of power actions are a few lines.
const LOG_PAGE: usize = 500;

/// Where Proxmox VE is and how to authenticate to it.
#[derive(Clone)]
pub struct ProxmoxConfig {
    /// `https://host:8006` (a path prefix before `/api2/json`, for a proxy, is kept).
    pub url: String,
    /// `USER@REALM!TOKENID`, e.g. `steward@pve!infra`.
    pub token_id: String,
    pub token_secret: String,
    /// A PEM file of the CA that signed Proxmox's certificate.
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate. Only for a network you trust.
    pub insecure_tls: bool,
    /// One request, connecting included.
    pub timeout: Duration,
}

impl ProxmoxConfig {
    pub fn new(url: impl Into<String>, token_id: impl Into<String>, token_secret: impl Into<String>) -> Self {
        ProxmoxConfig {
            url: url.into(),
            token_id: token_id.into(),
            token_secret: token_secret.into(),
            ca_cert: None,
            insecure_tls: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for ProxmoxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxmoxConfig")
            .field("url", &self.url)
            .field("token_id", &self.token_id)
            .field("token_secret", &"********")
            .field("ca_cert", &self.ca_cert)
            .field("insecure_tls", &self.insecure_tls)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What can go wrong talking to Proxmox VE. None of them carries the
/// token's secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxmoxError {
    /// The configuration cannot work; the message names the fix.
    #[error("the Proxmox configuration is invalid: {0}")]
    Config(String),
    #[error(
        "Proxmox at {url} refused the API token {token_id} (401): check token id and secret, and that the token \
has the privileges (e.g. VM.PowerMgmt, Sys.Audit)"
    )]
    Unauthorized { url: String, token_id: String },
    #[error(
        "Proxmox denied {what} (403: {message}): grant the token's user the privilege named (VM.Audit and \
VM.PowerMgmt on /vms, Sys.Audit on /nodes); a token with privilege separation needs it granted to the token itself"
    )]
    Forbidden { what: String, message: String },
    /// Proxmox understood the request and refused or failed it.
    #[error("Proxmox could not serve {what} (HTTP {status}): {message}")]
    Api { what: String, status: u16, message: String },
    /// Something answered that is not the Proxmox VE API.
    #[error(
        "the server at {url} did not answer {what} like the Proxmox VE API ({detail}); check that the URL points \
at Proxmox VE, e.g. https://pve1.lan:8006"
    )]
    UnexpectedReply { url: String, what: String, detail: String },
    #[error("cannot reach Proxmox at {url}: {reason}; {hint}")]
    Unreachable { url: String, reason: String, hint: String },
    #[error(
        "Proxmox at {url} did not answer {what} within {} s; the host may be overloaded or unreachable: try again, \
or raise [proxmox] timeout_secs",
        after.as_secs_f64()
    )]
    Timeout { url: String, what: String, after: Duration },
}

impl From<ProxmoxError> for steward_core::ToolError {
    fn from(e: ProxmoxError) -> Self {
        steward_core::ToolError::Failed(e.to_string())
    }
}

/// A power action on a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    /// A clean shutdown: the guest's OS is asked to stop.
    Shutdown,
    /// Pulls the plug.
    Stop,
}

impl PowerAction {
    /// The API's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Start => "start",
            PowerAction::Shutdown => "shutdown",
            PowerAction::Stop => "stop",
        }
    }

    /// `start`, `shut down`, `stop`, for sentences.
    pub fn verb(self) -> &'static str {
        match self {
            PowerAction::Start => "start",
            PowerAction::Shutdown => "shut down",
            PowerAction::Stop => "stop",
        }
    }
}

/// Checks a base URL and returns where the API is (`…/api2/json/`).
/// `https://` is required, except on loopback.
pub fn check_url(url: &str) -> Result<Url, String> {
    let written = url.trim().trim_end_matches('/');
    let mut base = Url::parse(written).map_err(|e| format!("`{written}` is not a URL ({e})"))?;
    let host = base.host_str().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(format!("`{written}` names no host"));
    }
    match base.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "`{written}` uses plain http://, which would send the API token unencrypted; Proxmox VE serves \
https:// (port 8006). http:// is accepted only on loopback, for tests"
            ))
        }
        other => return Err(format!("`{written}` uses `{other}:`; Proxmox VE's API is https://<host>:8006")),
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(format!(
            "`{}` carries credentials; remove them: Steward authenticates with the API token",
            base.host_str().unwrap_or_default()
        ));
    }
    let path = base.path().trim_end_matches('/');
    let path = path.strip_suffix("/api2/json").unwrap_or(path).to_string();
    base.set_path(&format!("{path}/api2/json/"));
    base.set_query(None);
    base.set_fragment(None);
    Ok(base)
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost" || bare.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// Checks the shape of an API token id: `USER@REALM!TOKENID`.
pub fn check_token_id(id: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{id}` is not an API token id: it is USER@REALM!TOKENID, e.g. steward@pve!infra (the user, its realm, \
and the token's name, as Proxmox shows it under Datacenter → Permissions → API Tokens)"
        )
    };
    let (user_id, token) = id.split_once('!').ok_or_else(bad)?;
    let (user, realm) = user_id.rsplit_once('@').ok_or_else(bad)?;
    let plain =
        |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || ":=!/".contains(c));
    let token_ok = token.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !(plain(user) && plain(realm) && token_ok) {
        return Err(bad());
    }
    Ok(())
}

/// Checks a token secret without ever quoting it.
pub fn check_token_secret(secret: &str) -> Result<(), String> {
    if secret.trim().is_empty() {
        return Err("the API token secret is empty".into());
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the API token secret contains spaces or control characters; paste it exactly as Proxmox \
showed it when the token was made"
            .into());
    }
    Ok(())
}

/// A Proxmox VE cluster (or single node), reached through its API.
pub struct Proxmox {
    http: reqwest::Client,
    /// `…/api2/json/`.
    base: Url,
    /// The URL as configured, for messages.
    display: String,
    token_id: String,
    /// `PVEAPIToken=…=…`, marked sensitive.
    authorization: HeaderValue,
    /// Only to scrub it from text a server sends back.
    secret: String,
    timeout: Duration,
}

impl std::fmt::Debug for Proxmox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxmox")
            .field("url", &self.display)
            .field("token_id", &self.token_id)
            .field("token_secret", &"********")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One decoded reply: `data`, and `total` where the API counts (task logs).
struct Reply {
    data: Value,
    total: Option<u64>,
}

impl Proxmox {
    /// Checks the configuration and builds the client. Nothing is sent yet:
    /// a Proxmox that is down at start-up must not keep Steward from
    /// starting.
    pub fn new(config: &ProxmoxConfig) -> Result<Proxmox, ProxmoxError> {
        let base = check_url(&config.url).map_err(ProxmoxError::Config)?;
        check_token_id(&config.token_id).map_err(ProxmoxError::Config)?;
        check_token_secret(&config.token_secret).map_err(ProxmoxError::Config)?;
        if config.insecure_tls && config.ca_cert.is_some() {
            return Err(ProxmoxError::Config(
                "ca_cert and insecure_tls are both set: name the CA to verify Proxmox's certificate with, or turn \
verification off, not both"
                    .into(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(ProxmoxError::Config("the request timeout is zero; the default is 15 s".into()));
        }
        let mut authorization = HeaderValue::from_str(&format!(
            "PVEAPIToken={}={}",
            config.token_id, config.token_secret
        ))
        .map_err(|_| {
            ProxmoxError::Config(
                "the API token id or secret holds characters an HTTP header cannot carry; copy them again".into(),
            )
        })?;
        authorization.set_sensitive(true);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            // A redirect would be another server, or a login page.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_cert {
            builder = builder.add_root_certificate(read_ca(path)?);
        }
        if config.insecure_tls {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http =
            builder.build().map_err(|e| ProxmoxError::Config(format!("cannot make an HTTP client: {}", causes(&e))))?;
        Ok(Proxmox {
            http,
            base,
            display: config.url.trim().trim_end_matches('/').to_string(),
            token_id: config.token_id.clone(),
            authorization,
            secret: config.token_secret.clone(),
            timeout: config.timeout,
        })
    }

    /// The URL it was configured with.
    pub fn url(&self) -> &str {
        &self.display
    }

    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// One request's time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Proxmox VE's version (`GET /version`), e.g. `8.2.4`: a cheap check
    /// that the URL, the certificate and the token all work.
    pub async fn version(&self) -> Result<String, ProxmoxError> {
        let what = "the version check";
        let data = self.get(&["version"], &[], what).await?.data;
        match data.get("version").and_then(Value::as_str) {
            Some(v) => Ok(v.to_string()),
            None => Err(self.unexpected(what, "no version in the reply".into())),
        }
    }

    /// The cluster's nodes (`GET /nodes`).
    pub async fn nodes(&self) -> Result<Vec<Node>, ProxmoxError> {
        let what = "the node list";
        let data = self.get(&["nodes"], &[], what).await?.data;
        self.list(what, &data, Node::from_value)
    }

    /// The VMs or containers of one node (`GET /nodes/{node}/qemu|lxc`).
    pub async fn guests_on(&self, node: &str, kind: GuestKind) -> Result<Vec<Guest>, ProxmoxError> {
        let what = format!("the {} list of node {node}", kind.noun());
        let data = self.get(&["nodes", node, kind.as_str()], &[], &what).await?.data;
        self.list(&what, &data, |v| Guest::from_value(v, Some(node), Some(kind)))
    }

    /// Every VM and container in the cluster, in one request
    /// (`GET /cluster/resources?type=vm`). Its figures are refreshed every
    /// few seconds by Proxmox, so use [`guest_status`](Self::guest_status)
    /// for a live state.
    pub async fn guests(&self) -> Result<Vec<Guest>, ProxmoxError> {
        let what = "the cluster's guest list";
        let data = self.get(&["cluster", "resources"], &[("type", "vm")], what).await?.data;
        let items = self.items(what, &data)?;
        // Other entries would only appear if the filter were ignored.
        Ok(items.iter().filter_map(|v| Guest::from_value(v, None, None)).collect())
    }

    /// `GET /cluster/resources`, of one type (`vm`, `node`, `storage`, `sdn`) or all.
    pub async fn cluster_resources(&self, kind: Option<&str>) -> Result<Vec<Value>, ProxmoxError> {
        let what = "the cluster's resource list";
        let query: Vec<(&str, &str)> = kind.map(|k| ("type", k)).into_iter().collect();
        let data = self.get(&["cluster", "resources"], &query, what).await?.data;
        self.items(what, &data).map(<[Value]>::to_vec)
    }

    /// A guest's live state (`GET /nodes/{node}/{kind}/{vmid}/status/current`).
    pub async fn guest_status(&self, node: &str, kind: GuestKind, vmid: u32) -> Result<Guest, ProxmoxError> {
        let what = format!("the status of {} {vmid} on node {node}", kind.noun());
        let id = vmid.to_string();
        let data = self.get(&["nodes", node, kind.as_str(), &id, "status", "current"], &[], &what).await?.data;
        let mut with_id = data.clone();
        if let Some(o) = with_id.as_object_mut() {
            // Older releases leave the vmid out of this reply.
            o.entry("vmid").or_insert(Value::from(vmid));
        }
        Guest::from_value(&with_id, Some(node), Some(kind))
            .ok_or_else(|| self.unexpected(&what, format!("got {}", snippet(&self.scrub(&data.to_string())))))
    }

    /// Asks for a power action and returns the task doing it. A shutdown
    /// may name how many seconds Proxmox waits for the guest.
    pub async fn power(
        &self,
        guest: &Guest,
        action: PowerAction,
        shutdown_timeout: Option<u64>,
    ) -> Result<Upid, ProxmoxError> {
        let what = format!("the request to {} {} on node {}", action.verb(), guest.label(), guest.node);
        let id = guest.vmid.to_string();
        let mut form: Vec<(&str, String)> = Vec::new();
        if let (PowerAction::Shutdown, Some(t)) = (action, shutdown_timeout) {
            form.push(("timeout", t.to_string()));
        }
        let path = ["nodes", guest.node.as_str(), guest.kind.as_str(), id.as_str(), "status", action.as_str()];
        let reply = self.send(Method::POST, &path, &[], Some(&form), &what).await?;
        match reply.data.as_str() {
            Some(raw) => Upid::parse(raw).map_err(|e| self.unexpected(&what, e)),
            None => {
                Err(self.unexpected(&what, format!("expected a task id, got {}", snippet(&reply.data.to_string()))))
            }
        }
    }

    /// Where a task is (`GET /nodes/{node}/tasks/{upid}/status`).
    pub async fn task_state(&self, upid: &Upid) -> Result<TaskState, ProxmoxError> {
        let what = format!("the status of task {upid}");
        let data = self.get(&["nodes", upid.node(), "tasks", upid.as_str(), "status"], &[], &what).await?.data;
        TaskState::from_value(&data)
            .ok_or_else(|| self.unexpected(&what, format!("got {}", snippet(&self.scrub(&data.to_string())))))
    }

    /// The last `last` lines of a task's log (`GET …/tasks/{upid}/log`).
    pub async fn task_log(&self, upid: &Upid, last: usize) -> Result<Vec<String>, ProxmoxError> {
        let what = format!("the log of task {upid}");
        let path = ["nodes", upid.node(), "tasks", upid.as_str(), "log"];
        let page = LOG_PAGE.to_string();
        let first = self.get(&path, &[("start", "0"), ("limit", &page)], &what).await?;
        let mut lines = self.log_lines(&what, &first.data)?;
        if let Some(total) = first.total.map(|t| t as usize).filter(|t| *t > lines.len()) {
            // A long log: fetch its end.
            let start = total.saturating_sub(last).to_string();
            let count = last.to_string();
            let tail = self.get(&path, &[("start", &start), ("limit", &count)], &what).await?;
            lines = self.log_lines(&what, &tail.data)?;
        }
        let skip = lines.len().saturating_sub(last);
        Ok(lines.split_off(skip))
    }

    fn log_lines(&self, what: &str, data: &Value) -> Result<Vec<String>, ProxmoxError> {
        let items = self.items(what, data)?;
        let mut lines: Vec<(u64, String)> = items
            .iter()
            .filter_map(|l| {
                let n = l.get("n").and_then(Value::as_u64).unwrap_or(0);
                l.get("t").and_then(Value::as_str).map(|t| (n, self.scrub(t)))
            })
            .collect();
        lines.sort_by_key(|(n, _)| *n);
        Ok(lines.into_iter().map(|(_, t)| t).collect())
    }

    fn items<'a>(&self, what: &str, data: &'a Value) -> Result<&'a [Value], ProxmoxError> {
        data.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.unexpected(what, format!("expected a list, got {}", snippet(&data.to_string()))))
    }

    fn list<T>(&self, what: &str, data: &Value, read: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>, ProxmoxError> {
        Ok(self.items(what, data)?.iter().filter_map(read).collect())
    }

    fn unexpected(&self, what: &str, detail: String) -> ProxmoxError {
        ProxmoxError::UnexpectedReply { url: self.display.clone(), what: what.to_string(), detail }
    }

    /// Text from the server with the secret blanked, in case something
    /// between here and Proxmox echoes the request's headers.
    fn scrub(&self, text: &str) -> String {
        text.replace(&self.secret, "[redacted]")
    }

    async fn get(&self, path: &[&str], query: &[(&str, &str)], what: &str) -> Result<Reply, ProxmoxError> {
        self.send(Method::GET, path, query, None, what).await
    }

    /// Sends one request and unwraps `{"data": …}`. A refused token and
    /// every transport failure are errors; so is any reply that is not the
    /// API's JSON envelope.
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        form: Option<&[(&str, String)]>,
        what: &str,
    ) -> Result<Reply, ProxmoxError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ProxmoxError::Config(format!("`{}` cannot be a base URL", self.display)))?
            .pop_if_empty()
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request =
            self.http.request(method, url).header(AUTHORIZATION, self.authorization.clone()).timeout(self.timeout);
        if let Some(form) = form.filter(|f| !f.is_empty()) {
            request = request.form(form);
        }
        let failed = |e: reqwest::Error| self.transport_error(&e, what);
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        // Before Proxmox VE 9 an error's message is only in the reason phrase.
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .and_then(|r| std::str::from_utf8(r.as_bytes()).ok())
            .map(|r| self.scrub(r));
        let html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
        let body = response.text().await.map_err(failed)?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(ProxmoxError::Unauthorized { url: self.display.clone(), token_id: self.token_id.clone() });
        }
        let envelope = match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(o)) if o.contains_key("data") && !html => o,
            Ok(_) | Err(_) => {
                let kind = if html { "an HTML page" } else { "a reply that is not the API's JSON" };
                return Err(self.unexpected(what, format!("HTTP {status}, {kind}: {}", snippet(&self.scrub(&body)))));
            }
        };
        if status.is_success() {
            let total = envelope.get("total").and_then(Value::as_u64);
            let data = envelope.get("data").cloned().unwrap_or(Value::Null);
            return Ok(Reply { data, total });
        }
        let message = self.error_message(status, &envelope, reason.as_deref());
        if status == StatusCode::FORBIDDEN {
            return Err(ProxmoxError::Forbidden { what: what.to_string(), message });
        }
        Err(ProxmoxError::Api { what: what.to_string(), status: status.as_u16(), message })
    }

    /// Proxmox's reason for an error: the body's `message` (Proxmox VE 9),
    /// else the reason phrase, plus any per-parameter `errors`.
    fn error_message(
        &self,
        status: StatusCode,
        envelope: &serde_json::Map<String, Value>,
        reason: Option<&str>,
    ) -> String {
        let mut parts: Vec<String> = Vec::new();
        let message = envelope
            .get("message")
            .and_then(Value::as_str)
            .map(|m| self.scrub(m.trim()))
            .filter(|m| !m.is_empty())
            .or_else(|| reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given").to_string());
        parts.push(message);
        if let Some(errors) = envelope.get("errors").and_then(Value::as_object) {
            for (param, why) in errors {
                let why = why.as_str().map(String::from).unwrap_or_else(|| why.to_string());
                parts.push(format!("{param}: {}", self.scrub(why.trim())));
            }
        }
        let joined = parts.join("; ");
        let mut cut: String = joined.chars().take(SNIPPET_CHARS).collect();
        if joined.chars().count() > SNIPPET_CHARS {
            cut.push('…');
        }
        cut
    }

    fn transport_error(&self, e: &reqwest::Error, what: &str) -> ProxmoxError {
        if e.is_timeout() {
            return ProxmoxError::Timeout { url: self.display.clone(), what: what.to_string(), after: self.timeout };
        }
        // The URL is in reqwest's message already; the secret never is
        // (it travels in a header).
        let reason = self.scrub(&causes(e));
        let lower = reason.to_ascii_lowercase();
        let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
            "the TLS certificate was not accepted: set [proxmox] ca_cert to the cluster's CA (/etc/pve/pve-root-ca.pem \
on a node), or insecure_tls = true on a network you trust"
        } else if lower.contains("corrupt message") || lower.contains("handshake") || lower.contains("tls") {
            "the TLS handshake failed: check that the port serves Proxmox VE's HTTPS (8006) and the URL is right"
        } else {
            "check the address and port (Proxmox VE listens on 8006), that the host is up, and any firewall between"
        };
        ProxmoxError::Unreachable { url: self.display.clone(), reason, hint: hint.to_string() }
    }
}

/// Reads the CA certificate, failing with the fix when it is not a PEM
/// certificate (reqwest would only find out at the first connection).
fn read_ca(path: &std::path::Path) -> Result<reqwest::Certificate, ProxmoxError> {
    let fix = "give the PEM file of the CA that signed Proxmox's certificate (/etc/pve/pve-root-ca.pem on a node)";
    let pem = std::fs::read(path)
        .map_err(|e| ProxmoxError::Config(format!("cannot read ca_cert {}: {e}; {fix}", path.display())))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(ProxmoxError::Config(format!("ca_cert {} holds no PEM certificate; {fix}", path.display())));
    }
    reqwest::Certificate::from_pem(&pem).map_err(|e| {
        ProxmoxError::Config(format!("ca_cert {} is not a usable certificate ({e}); {fix}", path.display()))
    })
}

/// The chain of causes of an error, which for a failed connection is where
/// the useful part is (`Connection refused`, a DNS failure, a TLS problem).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut current = e.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ")
}

fn snippet(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "an empty reply".into();
    }
    let mut out: String = flat.chars().take(SNIPPET_CHARS).collect();
    if flat.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls_need_https_except_on_loopback() {
        assert_eq!(check_url("https://pve1.lan:8006").unwrap().as_str(), "https://pve1.lan:8006/api2/json/");
        assert_eq!(check_url("https://pve1.lan:8006/api2/json/").unwrap().as_str(), "https://pve1.lan:8006/api2/json/");
        assert_eq!(check_url("https://proxy.lan/pve/").unwrap().as_str(), "https://proxy.lan/pve/api2/json/");
        assert_eq!(check_url("http://127.0.0.1:9000").unwrap().as_str(), "http://127.0.0.1:9000/api2/json/");
        assert!(check_url("http://[::1]:9000").is_ok());
        assert!(check_url("http://localhost:9000").is_ok());
        let e = check_url("http://pve1.lan:8006").unwrap_err();
        assert!(e.contains("plain http://") && e.contains("loopback"), "{e}");
        assert!(check_url("ftp://pve1.lan").unwrap_err().contains("ftp:"));
        assert!(check_url("pve1.lan:8006").is_err());
        assert!(check_url("https://root:pw@pve1.lan:8006").unwrap_err().contains("credentials"));
    }

    #[test]
    fn token_ids_are_user_at_realm_bang_token() {
        for good in ["steward@pve!infra", "root@pam!steward-1", "svc.bot@ldap-corp!t_2"] {
            assert!(check_token_id(good).is_ok(), "{good}");
        }
        for bad in
            ["steward@pve", "steward!infra", "@pve!infra", "steward@!infra", "steward@pve!", "a b@pve!x", "x@pve!1x"]
        {
            let e = check_token_id(bad).unwrap_err();
            assert!(e.contains("USER@REALM!TOKENID"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_secret_is_never_shown() {
        let secret = "5f0c1d2e-aaaa-bbbb-cccc-0123456789ab";
        let mut config = ProxmoxConfig::new("https://pve1.lan:8006", "steward@pve!infra", secret);
        assert!(!format!("{config:?}").contains(secret));
        let client = Proxmox::new(&config).unwrap();
        assert!(!format!("{client:?}").contains(secret));
        assert_eq!(client.scrub(&format!("echo: PVEAPIToken=x={secret}")), "echo: PVEAPIToken=x=[redacted]");
        config.token_secret = "has space".into();
        let e = Proxmox::new(&config).unwrap_err().to_string();
        assert!(e.contains("spaces") && !e.contains("has space"), "{e}");
    }

    #[test]
    fn tls_choices_are_exclusive_and_the_ca_must_be_a_certificate() {
        let dir = std::env::temp_dir().join(format!("steward-pve-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = ProxmoxConfig::new("https://pve1.lan:8006", "steward@pve!infra", "s3cret");
        config.ca_cert = Some(dir.join("pve-root-ca.pem"));
        config.insecure_tls = true;
        assert!(Proxmox::new(&config).unwrap_err().to_string().contains("not both"));
        config.insecure_tls = false;
        let e = Proxmox::new(&config).unwrap_err().to_string();
        assert!(e.contains("cannot read ca_cert") && e.contains("pve-root-ca.pem"), "{e}");
        std::fs::write(dir.join("pve-root-ca.pem"), "not a certificate").unwrap();
        let e = Proxmox::new(&config).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        config.ca_cert = None;
        config.insecure_tls = true;
        assert!(Proxmox::new(&config).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
