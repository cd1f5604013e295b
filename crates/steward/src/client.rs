//! `steward chat` and `steward ask`: clients of a running server's native
//! API, reading its event stream.

use std::io::Write;

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use rand::RngCore;
use steward_protocol::api::Conversation;
use steward_protocol::approval::{Approval, ApprovalList, ApprovalStatus};
use steward_protocol::Event;
use tokio::io::AsyncBufReadExt;

/// A fresh API key: 32 random bytes, hex, with a recognisable prefix.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("stw_{}", hex::encode(bytes))
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    fn new(url: &str, key: Option<String>) -> anyhow::Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url / STEWARD_URL must be an http(s) URL such as http://127.0.0.1:8000, not '{url}'");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client { http, base: url.trim_end_matches('/').to_string(), key })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.get(format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.post(format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// Sends a request and turns an error status into the server's message.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!("cannot reach Steward at {}: is `steward serve` running? ({e})", self.base)
            } else {
                anyhow!("request to {} failed: {e}", self.base)
            }
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<steward_protocol::openai::ErrorResponse>(&text)
            .map(|e| e.error.message)
            .unwrap_or(text);
        bail!("server answered {status}: {message}")
    }

    async fn start(&self, agent: &str) -> anyhow::Result<Conversation> {
        let response = self.send(self.post("/api/conversations").json(&serde_json::json!({"agent": agent}))).await?;
        response.json().await.context("the server's reply to creating a conversation is not valid")
    }

    /// Sends one message and prints the answer as it streams. Fails when the
    /// turn ends in an error.
    async fn turn(&self, conversation: &str, content: &str, out: &mut impl Write) -> anyhow::Result<()> {
        let response = self
            .send(
                self.post(&format!("/api/conversations/{conversation}/messages?stream=true"))
                    .json(&serde_json::json!({"content": content})),
            )
            .await?;
        let mut body = response.bytes_stream();
        let mut buffer = Vec::new();
        let mut data = String::new();
        let mut failure = None;
        let mut finished = false;
        while let Some(chunk) = body.next().await {
            buffer.extend_from_slice(&chunk.context("the event stream broke off")?);
            while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                } else if line.is_empty() && !data.is_empty() {
                    let event: Event = serde_json::from_str(&data)
                        .with_context(|| format!("unexpected event from the server: {data}"))?;
                    data.clear();
                    match event {
                        Event::TextDelta { delta, .. } => {
                            write!(out, "{delta}")?;
                            out.flush()?;
                        }
                        Event::ToolCallStarted { name, arguments, .. } => {
                            eprintln!("  [tool] {name} {arguments}");
                        }
                        Event::ToolResult { name, ok, .. } => {
                            eprintln!("  [tool] {name} {}", if ok { "done" } else { "failed" });
                        }
                        Event::Error { message, .. } => failure = Some(message),
                        Event::TurnFinished { .. } => finished = true,
                        Event::ApprovalRequested { approval, .. } => {
                            eprintln!("  [approval] {} waits: {}", approval.id, approval.preview.summary);
                        }
                        Event::ApprovalUpdated { approval, .. } => {
                            eprintln!("  [approval] {} {}", approval.id, approval.status.as_str());
                        }
                        Event::ToolDebug { name, phase, content, .. } => {
                            eprintln!("  [debug] {name} {phase}: {content}");
                        }
                        Event::DelegationStarted { agent, task, .. } => {
                            eprintln!("  [{agent}] asked: {task}");
                        }
                        // Of a specialist's turn, only its tool calls and the
                        // approvals it asks for are shown.
                        Event::Delegated { agent, event, .. } => {
                            if let Event::ToolCallStarted { name, arguments, .. } = &*event {
                                eprintln!("  [{agent}] [tool] {name} {arguments}");
                            } else if let Event::ApprovalRequested { approval, .. } = &*event {
                                eprintln!("  [approval] {} waits: {}", approval.id, approval.preview.summary);
                            }
                        }
                        Event::DelegationFinished { agent, ok, .. } => {
                            eprintln!("  [{agent}] {}", if ok { "answered" } else { "failed" });
                        }
                        Event::TaskUpdated { task_id, status, step_id, step_status, .. } => {
                            match (step_id, step_status) {
                                (Some(step), Some(s)) => eprintln!("  [task] {task_id} step {step}: {s}"),
                                _ => eprintln!("  [task] {task_id}: {status}"),
                            }
                        }
                        Event::TurnStarted { .. }
                        | Event::MessageStored { .. }
                        | Event::LlmCall { .. }
                        | Event::ToolProgress { .. } => {}
                    }
                }
            }
        }
        writeln!(out)?;
        if let Some(message) = failure {
            bail!("{message}");
        }
        if !finished {
            bail!("the server closed the stream before the answer was finished");
        }
        Ok(())
    }
}

pub async fn ask(
    url: &str,
    key: Option<String>,
    agent: &str,
    conversation: Option<String>,
    question: &str,
) -> anyhow::Result<()> {
    let client = Client::new(url, key)?;
    let id = match conversation {
        Some(id) => id,
        None => client.start(agent).await?.id,
    };
    client.turn(&id, question, &mut std::io::stdout()).await
}

pub async fn chat(url: &str, key: Option<String>, agent: &str, conversation: Option<String>) -> anyhow::Result<()> {
    let client = Client::new(url, key)?;
    let id = match conversation {
        Some(id) => id,
        None => client.start(agent).await?.id,
    };
    eprintln!("Talking to '{agent}' (conversation {id}). Empty line or Ctrl-D to quit.");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("> ");
        let Some(line) = lines.next_line().await.context("cannot read standard input")? else { break };
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        // A failed turn is reported and the conversation goes on.
        if let Err(e) = client.turn(&id, line, &mut std::io::stdout()).await {
            eprintln!("error: {e:#}");
        }
    }
    eprintln!("Conversation {id} is stored; continue it with --conversation {id}.");
    Ok(())
}

pub async fn usage(url: &str, key: Option<String>, days: u32, json: bool) -> anyhow::Result<()> {
    let client = Client::new(url, key)?;
    let response = client.send(client.get(&format!("/api/usage?days={days}"))).await?;
    let report: steward_protocol::api::UsageReport =
        response.json().await.context("the server's usage report is not valid")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", render_usage(&report));
    Ok(())
}

pub async fn audit_list(url: &str, key: Option<String>, after: i64, limit: u32, json: bool) -> anyhow::Result<()> {
    let client = Client::new(url, key)?;
    let response = client.send(client.get(&format!("/api/audit?after={after}&limit={limit}"))).await?;
    let report: steward_protocol::api::AuditReport =
        response.json().await.context("the server's audit report is not valid")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for e in &report.entries {
        let targets = if e.targets.is_empty() { String::new() } else { format!(" [{}]", e.targets.join(", ")) };
        println!(
            "{:>6}  {}  {}  {} {}{}  {}",
            e.seq,
            steward_core::tools::rfc3339(e.at),
            e.actor,
            e.action,
            e.subject,
            targets,
            e.detail
        );
    }
    let v = &report.verified;
    match (v.ok, v.first_bad_seq, &v.reason) {
        (true, _, _) => println!("audit log intact: {} entries", v.checked),
        (false, Some(seq), reason) => {
            println!("audit log broken at entry {seq}: {}", reason.as_deref().unwrap_or("unknown"))
        }
        (false, None, reason) => println!("audit log broken: {}", reason.as_deref().unwrap_or("unknown")),
    }
    Ok(())
}

/// `steward approvals`
pub async fn approvals(
    url: &str,
    key: Option<String>,
    status: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let client = Client::new(url, key)?;
    let mut path = format!("/api/proposals?limit={limit}");
    if let Some(s) = status {
        path.push_str(&format!("&status={s}"));
    }
    let list: ApprovalList =
        client.send(client.get(&path)).await?.json().await.context("the server's list of approvals is not valid")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.proposals.is_empty() {
        println!("no approvals{}", status.map(|s| format!(" with status {s}")).unwrap_or_default());
        return Ok(());
    }
    for a in &list.proposals {
        print!("{}", render_approval(a));
    }
    Ok(())
}

/// What `steward approve` / `steward reject` decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve { always: bool },
    Reject,
}

/// `steward approve ID` / `steward reject ID`
pub async fn decide(url: &str, key: Option<String>, id: &str, verdict: Verdict, json: bool) -> anyhow::Result<()> {
    let client = Client::new(url, key)?;
    let (verb, body) = match verdict {
        Verdict::Approve { always: true } => ("approve", serde_json::json!({"scope": "conversation"})),
        Verdict::Approve { always: false } => ("approve", serde_json::json!({})),
        Verdict::Reject => ("reject", serde_json::json!({})),
    };
    let request = client.post(&format!("/api/proposals/{id}/{verb}")).json(&body);
    let approval: Approval =
        client.send(request).await?.json().await.context("the server's answer about the approval is not valid")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&approval)?);
    } else {
        print!("{}", render_approval(&approval));
    }
    if approval.status == ApprovalStatus::Failed {
        bail!("the approved action failed: {}", approval.outcome.as_deref().unwrap_or("no reason given"));
    }
    Ok(())
}

/// One approval as a person reads it.
pub fn render_approval(a: &Approval) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}  {:<8}  {}", a.id, a.status.as_str(), a.preview.summary);
    for t in &a.preview.targets {
        let name = t.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let state = t.state.as_deref().map(|s| format!(": now {s}")).unwrap_or_default();
        let _ = writeln!(out, "    {}{name}{state}", t.id);
    }
    if let Some(details) = &a.preview.details {
        for line in details.lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
    let _ = write!(
        out,
        "    {} by {} in conversation {}, {}",
        a.tool,
        a.agent,
        a.conversation_id,
        steward_core::tools::rfc3339(a.created_at)
    );
    match (&a.decided_by, a.decided_at) {
        (Some(who), Some(at)) => {
            let _ = writeln!(out, "; decided by {who} at {}", steward_core::tools::rfc3339(at));
        }
        _ => {
            let _ = writeln!(out, "; expires {}", steward_core::tools::rfc3339(a.expires_at));
        }
    }
    if let Some(outcome) = &a.outcome {
        let _ = writeln!(out, "    outcome: {}", outcome.lines().next().unwrap_or(""));
    }
    out
}

/// The usage report as a person reads it.
pub fn render_usage(r: &steward_protocol::api::UsageReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Since {} ({} days): {} requests, cost {:.4}, {:.0}% served locally",
        r.since,
        r.days,
        r.requests,
        r.cost,
        r.local_share * 100.0
    );
    for (title, lines) in [("day", &r.by_day), ("provider", &r.by_provider), ("model", &r.by_model)] {
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\nBy {title}:");
        let _ = writeln!(
            out,
            "  {:<40} {:>8} {:>8} {:>12} {:>12} {:>10}",
            title, "requests", "failed", "tokens in", "tokens out", "cost"
        );
        for l in lines.iter() {
            let _ = writeln!(
                out,
                "  {:<40} {:>8} {:>8} {:>12} {:>12} {:>10.4}",
                l.key,
                l.requests,
                l.requests - l.ok_requests,
                l.prompt_tokens,
                l.completion_tokens,
                l.cost
            );
        }
    }
    if !r.budgets.is_empty() {
        let _ = writeln!(out, "\nBudgets:");
        for b in &r.budgets {
            let _ = writeln!(
                out,
                "  {:<12} {:<8} since {}: spent {:.4} of {:.4}, {:.4} remaining{}",
                b.scope,
                b.period,
                b.period_start,
                b.spent,
                b.limit,
                b.remaining,
                if b.reserved > 0.0 { format!(" ({:.4} held by running requests)", b.reserved) } else { String::new() }
            );
        }
    }
    out
}
