//! Configuration: an optional `steward.toml`, then `.env`, then environment
//! variables, then command-line flags — each overriding the one before.
//! Everything is validated at start-up; every problem names the key and the
//! fix, and all problems are reported at once.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use steward_core::{AgentProfile, Tier};

mod llm;
mod mcp;
mod ssh;
pub use llm::{LlmSection, ProviderKind};
pub use mcp::{McpServerSection, McpServers};
use ssh::SshSection;

/// A value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerSection,
    pub storage: StorageSection,
    pub llm: LlmSection,
    pub engine: EngineSection,
    pub auth: AuthSection,
    pub policy: PolicySection,
    pub home: HomeSection,
    pub audit: AuditSection,
    pub log: LogSection,
    pub sandbox: SandboxSection,
    pub proxmox: ProxmoxSection,
    pub ssh: SshSection,
    pub ansible: AnsibleSection,
    pub energy: EnergySection,
    /// Extra or overriding agent profiles, by id.
    pub agents: BTreeMap<String, AgentSection>,
    /// MCP servers, by name; more can come from `mcp_config.json`.
    pub mcp_servers: BTreeMap<String, McpServerSection>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub insecure_no_auth: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection { host: "127.0.0.1".into(), port: 8000, max_body_bytes: 1024 * 1024, insecure_no_auth: false }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; unset means `<data_dir>/steward.db`.
    pub database_url: Option<Secret>,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection { data_dir: PathBuf::from("./steward-data"), database_url: None }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    pub max_steps: u32,
    pub max_parallel_tools: usize,
    /// Debug mode for every conversation: each tool's inputs and outputs
    /// are streamed as events and logged, verbatim but for secrets.
    pub debug: bool,
}

impl Default for EngineSection {
    fn default() -> Self {
        let d = steward_core::EngineLimits::default();
        EngineSection { max_steps: d.max_steps, max_parallel_tools: d.max_parallel_tools, debug: false }
    }
}

/// `[home]`: the house Steward sees. Without a URL, the built-in demo home.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeSection {
    /// Home Assistant's base URL (`HA_URL`), e.g. `http://homeassistant.local:8123`.
    pub url: Option<String>,
    /// A long-lived access token (`HA_TOKEN`).
    pub token: Option<Secret>,
    /// The demo home waits this long in every service call, like a slow house.
    pub demo_latency_ms: u64,
}

/// `[energy]`: what energy analyses should know about the house's tariff.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnergySection {
    /// A flat price per kWh, in the user's currency: `analyze_energy` and
    /// `POST /api/insights/analyze` work out the cost with it when no price
    /// is given. No cost is shown without one.
    pub price_per_kwh: Option<f64>,
}

/// `[audit]`: where applied configuration changes are also recorded.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// A git repository (created when missing) that gets a commit
    /// `infra(<approval-id>): <summary>` for every applied configuration change.
    pub git_repo: Option<PathBuf>,
}

/// `[sandbox]`: where model-written Python analysis scripts run; see
/// `steward_integrations::sandbox` for what the sandbox holds back.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// Run scripts without a sandbox when bubblewrap is missing or cannot
    /// work here; every such run then needs a person's approval.
    pub allow_unsandboxed: bool,
    /// The bwrap binary; default: `bwrap` on PATH.
    pub bwrap: Option<PathBuf>,
    /// The Python 3 interpreter; default: `python3` on PATH, then /usr/bin/python3.
    pub python: Option<PathBuf>,
    pub memory_mb: u64,
    pub cpu_secs: u64,
    pub timeout_secs: u64,
    pub max_processes: u64,
    pub output_cap_bytes: usize,
}

impl Default for SandboxSection {
    fn default() -> Self {
        let d = steward_integrations::sandbox::SandboxConfig::default();
        SandboxSection {
            allow_unsandboxed: d.allow_unsandboxed,
            bwrap: d.bwrap_path,
            python: d.python,
            memory_mb: d.memory_mb,
            cpu_secs: d.cpu_secs,
            timeout_secs: d.timeout_secs,
            max_processes: d.max_processes,
            output_cap_bytes: d.output_cap_bytes,
        }
    }
}

impl SandboxSection {
    pub fn sandbox_config(&self) -> steward_integrations::sandbox::SandboxConfig {
        steward_integrations::sandbox::SandboxConfig {
            allow_unsandboxed: self.allow_unsandboxed,
            bwrap_path: self.bwrap.clone(),
            python: self.python.clone(),
            memory_mb: self.memory_mb,
            cpu_secs: self.cpu_secs,
            timeout_secs: self.timeout_secs,
            max_processes: self.max_processes,
            output_cap_bytes: self.output_cap_bytes,
        }
    }
}

/// `[ansible]`: the playbooks Steward may run and the inventory they run
/// against; see `steward_integrations::ansible` for what a run may see.
/// Without `playbook_dir` and `inventory` the Ansible tools say so.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnsibleSection {
    /// The directory of the playbooks (with their ansible.cfg, roles …).
    pub playbook_dir: Option<PathBuf>,
    /// The inventory file, directory or script.
    pub inventory: Option<PathBuf>,
    /// ansible-playbook; default: on PATH.
    pub ansible_playbook: Option<PathBuf>,
    pub timeout_secs: u64,
    /// The check-mode run that previews an approval.
    pub check_timeout_secs: u64,
}

impl Default for AnsibleSection {
    fn default() -> Self {
        let d = steward_integrations::ansible::AnsibleConfig::default();
        AnsibleSection {
            playbook_dir: d.playbook_dir,
            inventory: d.inventory,
            ansible_playbook: d.ansible_playbook,
            timeout_secs: d.timeout_secs,
            check_timeout_secs: d.check_timeout_secs,
        }
    }
}

impl AnsibleSection {
    pub fn ansible_config(&self) -> steward_integrations::ansible::AnsibleConfig {
        steward_integrations::ansible::AnsibleConfig {
            playbook_dir: self.playbook_dir.clone(),
            inventory: self.inventory.clone(),
            ansible_playbook: self.ansible_playbook.clone(),
            timeout_secs: self.timeout_secs,
            check_timeout_secs: self.check_timeout_secs,
        }
    }
}

/// `[proxmox]`: the Proxmox VE cluster the infra agent sees and powers;
/// see `steward_integrations::proxmox`. Without a URL the Proxmox tools say
/// how to configure it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxmoxSection {
    /// `https://pve1.lan:8006` (`PROXMOX_URL`).
    pub url: Option<String>,
    /// `USER@REALM!TOKENID` (`PROXMOX_TOKEN_ID`).
    pub token_id: Option<String>,
    /// The token's secret (`PROXMOX_TOKEN_SECRET`).
    pub token_secret: Option<Secret>,
    /// The PEM file of the cluster's CA (`/etc/pve/pve-root-ca.pem` on a node).
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate; only on a network you trust.
    pub insecure_tls: bool,
    /// One API request.
    pub timeout_secs: u64,
}

impl Default for ProxmoxSection {
    fn default() -> Self {
        ProxmoxSection {
            url: None,
            token_id: None,
            token_secret: None,
            ca_cert: None,
            insecure_tls: false,
            timeout_secs: steward_integrations::proxmox::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

impl ProxmoxSection {
    /// The client's configuration, when Proxmox is configured.
    pub fn proxmox_config(&self) -> Option<steward_integrations::proxmox::ProxmoxConfig> {
        let (url, id, secret) = (self.url.as_ref()?, self.token_id.as_ref()?, self.token_secret.as_ref()?);
        let mut c = steward_integrations::proxmox::ProxmoxConfig::new(url, id, secret.expose());
        c.ca_cert = self.ca_cert.clone();
        c.insecure_tls = self.insecure_tls;
        c.timeout = std::time::Duration::from_secs(self.timeout_secs);
        Some(c)
    }
}

/// `[policy]`: how tool calls are decided; see `steward_core::policy` for
/// how the preset and the rules combine.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    pub preset: steward_core::Preset,
    pub rules: Vec<steward_core::Rule>,
    /// How long an approval waits for a person before it expires.
    pub approval_ttl_secs: u64,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            preset: steward_core::Preset::default(),
            rules: Vec::new(),
            approval_ttl_secs: steward_core::EngineOptions::default().approval_ttl.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// SHA-256 hex digests of accepted bearer keys.
    pub api_keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { level: "info".into(), format: LogFormat::Text }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    pub purpose: String,
    pub system_prompt: String,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub tier: Tier,
    #[serde(default)]
    pub model: Option<String>,
}

/// Flags given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub insecure_no_auth: bool,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n    fix: {}", self.key, self.message, self.fix)
    }
}

/// Every problem found, reported together.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the configuration is invalid ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// The environment, as a lookup, so tests need not touch the process's.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned().filter(|v| !v.trim().is_empty())
    }
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    #[serde(skip)]
    pub source: Option<PathBuf>,
    #[serde(flatten)]
    pub file: FileConfig,
    /// The MCP servers of steward.toml and mcp_config.json, merged.
    #[serde(skip)]
    pub mcp: McpServers,
}

/// Reads `path` if given (an explicit path that does not exist is an error),
/// else `./steward.toml` if it exists.
pub fn read_file(path: Option<&Path>) -> Result<(FileConfig, Option<PathBuf>), ConfigError> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("steward.toml"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok((FileConfig::default(), None)),
        Err(e) => {
            return Err(ConfigError(vec![Problem {
                key: "--config".into(),
                message: format!("cannot read {}: {e}", path.display()),
                fix: "pass the path of an existing steward.toml, or leave --config out to use the defaults".into(),
            }]))
        }
    };
    parse_file(&text, &path).map(|c| (c, Some(path)))
}

pub fn parse_file(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let key = e.span().map(|s| line_col(text, s.start)).unwrap_or_default();
        ConfigError(vec![Problem {
            key: format!("{}{key}", path.display()),
            message: e.message().trim().to_string(),
            fix: "correct that entry; `steward config check` shows every key with its effective value".into(),
        }])
    })
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count() + 1).unwrap_or(1);
    format!(":{line}:{col}")
}

impl Config {
    /// Applies the environment and flags over the file, then validates.
    pub fn resolve(
        mut file: FileConfig,
        source: Option<PathBuf>,
        env: &dyn Env,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        if let Some(v) = env.var("STEWARD_HOST") {
            file.server.host = v;
        }
        if let Some(v) = env.var("API_PORT") {
            match v.trim().parse::<u16>() {
                Ok(p) if p > 0 => file.server.port = p,
                _ => problems.push(Problem {
                    key: "API_PORT".into(),
                    message: format!("'{v}' is not a port number"),
                    fix: "set API_PORT to a number from 1 to 65535, e.g. API_PORT=8000".into(),
                }),
            }
        }
        if let Some(v) = env.var("STEWARD_MAX_BODY_BYTES") {
            match v.trim().parse::<usize>() {
                Ok(n) => file.server.max_body_bytes = n,
                Err(_) => problems.push(Problem {
                    key: "STEWARD_MAX_BODY_BYTES".into(),
                    message: format!("'{v}' is not a number of bytes"),
                    fix: "set it to a whole number of bytes, e.g. 1048576".into(),
                }),
            }
        }
        if let Some(v) = env.var("STEWARD_DATA_DIR") {
            file.storage.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env.var("DATABASE_URL") {
            file.storage.database_url = Some(Secret::new(v));
        }
        if let Some(v) = env.var("HA_URL").filter(|v| !v.trim().is_empty()) {
            file.home.url = Some(v.trim().to_string());
        }
        if let Some(v) = env.var("HA_TOKEN").filter(|v| !v.trim().is_empty()) {
            file.home.token = Some(Secret::new(v.trim()));
        }
        if let Some(v) = env.var("PROXMOX_URL") {
            file.proxmox.url = Some(v.trim().to_string());
        }
        if let Some(v) = env.var("PROXMOX_TOKEN_ID") {
            file.proxmox.token_id = Some(v.trim().to_string());
        }
        if let Some(v) = env.var("PROXMOX_TOKEN_SECRET") {
            file.proxmox.token_secret = Some(Secret::new(v.trim()));
        }
        if let Some(v) = env.var("STEWARD_DEMO_LATENCY_MS") {
            match v.trim().parse::<u64>() {
                Ok(n) => file.home.demo_latency_ms = n,
                Err(_) => problems.push(Problem {
                    key: "STEWARD_DEMO_LATENCY_MS".into(),
                    message: format!("'{v}' is not a number of milliseconds"),
                    fix: "set it to a whole number, e.g. 0 (the default) or 2000".into(),
                }),
            }
        }
        llm::apply_env(&mut file.llm, env);
        if let Some(v) = env.var("STEWARD_API_KEYS") {
            file.auth.api_keys = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = env.var("LOG_LEVEL") {
            file.log.level = v;
        }
        if let Some(v) = env.var("LOG_FORMAT") {
            match v.trim().to_ascii_lowercase().as_str() {
                "json" => file.log.format = LogFormat::Json,
                "text" | "pretty" => file.log.format = LogFormat::Text,
                _ => problems.push(Problem {
                    key: "LOG_FORMAT".into(),
                    message: format!("'{v}' is not a log format"),
                    fix: "set LOG_FORMAT to text or json".into(),
                }),
            }
        }
        if let Some(h) = &flags.host {
            file.server.host = h.clone();
        }
        if let Some(p) = flags.port {
            file.server.port = p;
        }
        if let Some(d) = &flags.data_dir {
            file.storage.data_dir = d.clone();
        }
        file.server.insecure_no_auth |= flags.insecure_no_auth;

        let mcp = mcp::resolve(&file.mcp_servers, &file.storage.data_dir, env, &mut problems);
        let config = Config { source, file, mcp };
        problems.extend(config.validate());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let f = &self.file;
        if f.server.host.parse::<IpAddr>().is_err() && f.server.host != "localhost" {
            p.push(Problem {
                key: "server.host (STEWARD_HOST, --host)".into(),
                message: format!("'{}' is not an IP address", f.server.host),
                fix: "use an address such as 127.0.0.1 (the default), ::1 or 0.0.0.0".into(),
            });
        }
        if f.server.port == 0 {
            p.push(Problem {
                key: "server.port (API_PORT, --port)".into(),
                message: "port 0 is not allowed".into(),
                fix: "choose a port from 1 to 65535, e.g. 8000".into(),
            });
        }
        if f.server.max_body_bytes < 1024 {
            p.push(Problem {
                key: "server.max_body_bytes".into(),
                message: format!("{} bytes is too small for any chat request", f.server.max_body_bytes),
                fix: "use at least 1024; the default is 1048576 (1 MiB)".into(),
            });
        }
        if let Some(url) = &f.storage.database_url {
            let u = url.expose();
            let sqlite_path = u
                .strip_prefix("sqlite://")
                .or_else(|| u.strip_prefix("sqlite:"))
                .map(|p| p.split('?').next().unwrap_or(""));
            if let Some(path) = sqlite_path {
                // Each pooled connection to an in-memory or nameless SQLite
                // database gets its own empty database: tables would vanish
                // at random and nothing would survive a restart.
                if path.is_empty() || path.contains(":memory:") || u.contains("mode=memory") {
                    p.push(Problem {
                        key: "storage.database_url (DATABASE_URL)".into(),
                        message: format!("'{u}' is not a database file; Steward's data must survive a restart"),
                        fix: "name a file, e.g. sqlite:/var/lib/steward/steward.db, or unset DATABASE_URL for <data_dir>/steward.db".into(),
                    });
                }
            }
            if !(u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                p.push(Problem {
                    key: "storage.database_url (DATABASE_URL)".into(),
                    message: format!("unsupported database URL scheme in '{}'", steward_store::redact_url(u)),
                    fix: "use sqlite:<path> or postgres://user:password@host:5432/dbname, or unset it for the embedded SQLite database".into(),
                });
            }
        }
        for (i, d) in f.auth.api_keys.iter().enumerate() {
            if let Err(e) = steward_server::parse_digest(d) {
                p.push(Problem {
                    key: format!("auth.api_keys[{i}] (STEWARD_API_KEYS)"),
                    message: format!("the entry {e}"),
                    fix: "list SHA-256 hex digests of the keys, not the keys themselves; `steward keys new` prints a key and its digest".into(),
                });
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&f.log.level) {
            p.push(Problem {
                key: "log.level (LOG_LEVEL)".into(),
                message: format!("'{}' is not a log level or filter: {e}", f.log.level),
                fix: "use error, warn, info, debug or trace (or a filter such as info,steward_core=debug)".into(),
            });
        }
        f.llm.validate(&mut p);
        for (i, rule) in f.policy.rules.iter().enumerate() {
            if !rule.has_matcher() {
                p.push(Problem {
                    key: format!("policy.rules[{i}]"),
                    message: "the rule names no tool, domain or entity, so it would decide every call".into(),
                    fix: "add tool = \"…\", domain = \"…\" or entity = \"…\" (globs allowed), or set policy.preset instead".into(),
                });
            }
        }
        match (&f.home.url, &f.home.token) {
            (Some(url), _) if !(url.starts_with("http://") || url.starts_with("https://")) => p.push(Problem {
                key: "home.url (HA_URL)".into(),
                message: format!("'{url}' is not an http(s) URL"),
                fix: "use Home Assistant's base URL, e.g. http://homeassistant.local:8123".into(),
            }),
            (Some(_), None) => p.push(Problem {
                key: "home.token (HA_TOKEN)".into(),
                message: "HA_URL is set but HA_TOKEN is not".into(),
                fix: "create a long-lived access token in Home Assistant (your profile → Security) and set HA_TOKEN"
                    .into(),
            }),
            (None, Some(_)) => p.push(Problem {
                key: "home.url (HA_URL)".into(),
                message: "HA_TOKEN is set but HA_URL is not".into(),
                fix: "set HA_URL to Home Assistant's base URL, or unset HA_TOKEN to use the demo home".into(),
            }),
            _ => {}
        }
        if f.home.demo_latency_ms > 60_000 {
            p.push(Problem {
                key: "home.demo_latency_ms (STEWARD_DEMO_LATENCY_MS)".into(),
                message: format!("{} ms is longer than any tool waits", f.home.demo_latency_ms),
                fix: "use at most 60000".into(),
            });
        }
        p.extend(sandbox_problems(&f.sandbox));
        p.extend(proxmox_problems(&f.proxmox));
        f.ssh.validate(&mut p);
        p.extend(ansible_problems(&f.ansible));
        if let Some(price) = f.energy.price_per_kwh.filter(|p| !(p.is_finite() && (0.0..=1000.0).contains(p))) {
            p.push(Problem {
                key: "energy.price_per_kwh".into(),
                message: format!("{price} is not a price per kWh"),
                fix: "use the price of one kWh in your currency, from 0 to 1000, e.g. 0.30; or leave it out".into(),
            });
        }
        if !(10..=7 * 86_400).contains(&f.policy.approval_ttl_secs) {
            p.push(Problem {
                key: "policy.approval_ttl_secs".into(),
                message: format!("{} s is outside 10 s – 7 days", f.policy.approval_ttl_secs),
                fix: "use a number of seconds from 10 to 604800; the default is 1800 (30 minutes)".into(),
            });
        }
        if f.engine.max_steps == 0 || f.engine.max_steps > 100 {
            p.push(Problem {
                key: "engine.max_steps".into(),
                message: format!("{} is outside 1–100", f.engine.max_steps),
                fix: "use a number from 1 to 100; the default is 8".into(),
            });
        }
        if f.engine.max_parallel_tools == 0 {
            p.push(Problem {
                key: "engine.max_parallel_tools".into(),
                message: "0 would run no tool at all".into(),
                fix: "use at least 1; the default is 8".into(),
            });
        }
        for id in f.agents.keys() {
            let ok = !id.is_empty()
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                p.push(Problem {
                    key: format!("agents.{id}"),
                    message: "an agent id is used as a model name and must be lowercase letters, digits, '-' or '_'"
                        .into(),
                    fix: "rename the section, e.g. [agents.energy-helper]".into(),
                });
            }
        }
        if !self.is_loopback() && f.auth.api_keys.is_empty() && !f.server.insecure_no_auth {
            p.push(Problem {
                key: "server.host (STEWARD_HOST, --host)".into(),
                message: format!("refusing to listen on non-loopback address {} without API keys", f.server.host),
                fix: "set STEWARD_API_KEYS (digests from `steward keys new`), or bind 127.0.0.1, or pass --insecure-no-auth if another layer authenticates".into(),
            });
        }
        p
    }

    pub fn is_loopback(&self) -> bool {
        self.file.server.host == "localhost"
            || self.file.server.host.parse::<IpAddr>().map(|a| a.is_loopback()).unwrap_or(false)
    }

    /// The database URL, defaulting to SQLite in the data directory.
    /// Every secret value the configuration holds, for redaction: provider
    /// keys, the Home Assistant token and the database password.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self
            .file
            .llm
            .providers
            .values()
            .filter_map(|p| p.api_key.as_ref())
            .map(|k| k.expose().to_string())
            .collect();
        if let Some(token) = &self.file.home.token {
            secrets.push(token.expose().to_string());
        }
        secrets.extend(self.file.auth.api_keys.iter().cloned());
        if let Some(secret) = &self.file.proxmox.token_secret {
            secrets.push(secret.expose().to_string());
        }
        if let Some(url) = self.database_url() {
            // postgres://user:password@host/db
            if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
                if let Some((userinfo, _)) = rest.rsplit_once('@') {
                    if let Some((_, password)) = userinfo.split_once(':') {
                        secrets.push(password.to_string());
                    }
                }
            }
        }
        secrets.extend(self.mcp.servers.iter().flat_map(|s| s.secrets()));
        secrets
    }

    pub fn database_url(&self) -> Option<&str> {
        self.file.storage.database_url.as_ref().map(Secret::expose)
    }

    /// Agent profiles: the built-ins, with those from config added or replacing.
    pub fn agent_profiles(&self) -> Vec<AgentProfile> {
        self.file
            .agents
            .iter()
            .map(|(id, a)| AgentProfile {
                id: id.clone(),
                purpose: a.purpose.clone(),
                system_prompt: a.system_prompt.clone(),
                tools: a.tools.clone(),
                tier: a.tier,
                model: a.model.clone(),
                created: 0,
            })
            .collect()
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn render(&self) -> String {
        let mut shown = self.file.clone();
        shown.llm = shown.llm.masked();
        if let Some(url) = &shown.storage.database_url {
            // The URL is shown with only its password hidden.
            shown.storage.database_url = Some(Secret::new(steward_store::redact_url(url.expose())));
        }
        let mut text = toml::to_string_pretty(&DisplayConfig { config: &shown })
            .unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        if let Some(url) = &shown.storage.database_url {
            text = text.replace("database_url = \"********\"", &format!("database_url = \"{}\"", url.expose()));
        }
        text.push_str(&mcp::render_note(&self.mcp));
        text
    }
}

#[derive(Serialize)]
struct DisplayConfig<'a> {
    #[serde(flatten)]
    config: &'a FileConfig,
}

/// The `[sandbox]` numbers outside what a script can work with (too small
/// for Python to start) or what a host should give one script.
fn sandbox_problems(s: &SandboxSection) -> Vec<Problem> {
    let checks: [(&str, u64, u64, u64, &str); 5] = [
        ("sandbox.memory_mb", s.memory_mb, 64, 65_536, "the default is 512"),
        ("sandbox.cpu_secs", s.cpu_secs, 1, 3_600, "the default is 10"),
        ("sandbox.timeout_secs", s.timeout_secs, 1, 3_600, "the default is 20"),
        // The sandbox's own init and the interpreter are two already.
        ("sandbox.max_processes", s.max_processes, 4, 4_096, "the default is 32"),
        ("sandbox.output_cap_bytes", s.output_cap_bytes as u64, 1_024, 16 * 1024 * 1024, "the default is 65536"),
    ];
    checks
        .into_iter()
        .filter(|(_, value, min, max, _)| !(*min..=*max).contains(value))
        .map(|(key, value, min, max, default)| Problem {
            key: key.into(),
            message: format!("{value} is outside {min}–{max}"),
            fix: format!("use a number from {min} to {max}; {default}"),
        })
        .collect()
}

/// `[ansible]` half set, or time limits no run should have.
fn ansible_problems(a: &AnsibleSection) -> Vec<Problem> {
    let mut p = Vec::new();
    match (&a.playbook_dir, &a.inventory) {
        (Some(_), None) => p.push(Problem {
            key: "ansible.inventory".into(),
            message: "ansible.playbook_dir is set but ansible.inventory is not".into(),
            fix: "set inventory to your inventory file (e.g. /etc/ansible/hosts), or remove playbook_dir".into(),
        }),
        (None, Some(_)) => p.push(Problem {
            key: "ansible.playbook_dir".into(),
            message: "ansible.inventory is set but ansible.playbook_dir is not".into(),
            fix: "set playbook_dir to the directory of the playbooks Steward may run, or remove inventory".into(),
        }),
        (Some(_), Some(_)) | (None, None) => {}
    }
    for (key, value, default) in
        [("ansible.timeout_secs", a.timeout_secs, 600), ("ansible.check_timeout_secs", a.check_timeout_secs, 300)]
    {
        if !(1..=86_400).contains(&value) {
            p.push(Problem {
                key: key.into(),
                message: format!("{value} is outside 1–86400 seconds"),
                fix: format!("use a number of seconds from 1 to 86400; the default is {default}"),
            });
        }
    }
    p
}

/// `[proxmox]` half set, a URL that is not Proxmox's, a token id of the
/// wrong shape, or two TLS choices at once.
fn proxmox_problems(x: &ProxmoxSection) -> Vec<Problem> {
    use steward_integrations::proxmox::{check_token_id, check_token_secret, check_url};
    let mut p = Vec::new();
    let problem = |key: &str, message: String, fix: &str| Problem { key: key.into(), message, fix: fix.into() };
    let (url_key, id_key, secret_key) = (
        "proxmox.url (PROXMOX_URL)",
        "proxmox.token_id (PROXMOX_TOKEN_ID)",
        "proxmox.token_secret (PROXMOX_TOKEN_SECRET)",
    );
    let token_fix = "make an API token in Proxmox (Datacenter → Permissions → API Tokens) and set token_id to \
USER@REALM!TOKENID and token_secret to its secret";
    match (&x.url, &x.token_id, &x.token_secret) {
        (None, None, None) => {}
        (None, _, _) => p.push(problem(
            url_key,
            "a Proxmox token is set but no URL".into(),
            "set url to the API's address, e.g. https://pve1.lan:8006, or remove the token to leave Proxmox out",
        )),
        (Some(_), id, secret) => {
            if id.is_none() {
                p.push(problem(id_key, "proxmox.url is set but token_id is not".into(), token_fix));
            }
            if secret.is_none() {
                p.push(problem(secret_key, "proxmox.url is set but token_secret is not".into(), token_fix));
            }
        }
    }
    if let Some(url) = &x.url {
        if let Err(e) = check_url(url) {
            p.push(problem(url_key, e, "use https://<host>:8006, the address of any node of the cluster"));
        }
    }
    if let Some(id) = &x.token_id {
        if let Err(e) = check_token_id(id) {
            p.push(problem(id_key, e, "copy the token id from Proxmox, e.g. steward@pve!infra"));
        }
    }
    if let Some(secret) = &x.token_secret {
        if let Err(e) = check_token_secret(secret.expose()) {
            p.push(problem(secret_key, e, "copy the secret again; Proxmox shows it once, when the token is made"));
        }
    }
    if x.ca_cert.is_some() && x.insecure_tls {
        p.push(problem(
            "proxmox.ca_cert, proxmox.insecure_tls",
            "both are set: a CA to verify Proxmox's certificate with, and no verification at all".into(),
            "keep ca_cert (the cluster's /etc/pve/pve-root-ca.pem) and remove insecure_tls",
        ));
    }
    if !(1..=300).contains(&x.timeout_secs) {
        p.push(problem(
            "proxmox.timeout_secs",
            format!("{} is outside 1–300 seconds", x.timeout_secs),
            "use a number of seconds from 1 to 300; the default is 15",
        ));
    }
    p
}

/// Whether `url` is an http(s) URL with a host.
fn check_http_url(url: &str) -> Result<(), &'static str> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).ok_or("is not an http(s) URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host
        .rsplit_once(':')
        .map(|(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host })
        .unwrap_or(host);
    if host.is_empty() {
        return Err("has no host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn resolve(toml_text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let file = parse_file(toml_text, Path::new("steward.toml"))?;
        Config::resolve(file, None, &env(pairs), &Overrides::default())
    }

    #[test]
    fn defaults_are_loopback_8000_sqlite_and_no_model() {
        let c = resolve("", &[]).unwrap();
        assert_eq!(c.file.server.host, "127.0.0.1");
        assert_eq!(c.file.server.port, 8000);
        assert_eq!(c.file.storage.data_dir, PathBuf::from("./steward-data"));
        assert!(c.file.llm.providers.is_empty());
        assert!(c.database_url().is_none());
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let file = parse_file("[server]\nport = 9000\n", Path::new("s.toml")).unwrap();
        let c = Config::resolve(file.clone(), None, &env(&[("API_PORT", "9100")]), &Overrides::default()).unwrap();
        assert_eq!(c.file.server.port, 9100);
        let flags = Overrides { port: Some(9200), ..Overrides::default() };
        let c = Config::resolve(file, None, &env(&[("API_PORT", "9100")]), &flags).unwrap();
        assert_eq!(c.file.server.port, 9200);
    }

    #[test]
    fn an_energy_price_is_optional_and_checked() {
        assert_eq!(resolve("", &[]).unwrap().file.energy.price_per_kwh, None);
        let c = resolve("[energy]\nprice_per_kwh = 0.3\n", &[]).unwrap();
        assert_eq!(c.file.energy.price_per_kwh, Some(0.3));
        let e = resolve("[energy]\nprice_per_kwh = -1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("energy.price_per_kwh") && e.contains("from 0 to 1000"), "{e}");
    }

    #[test]
    fn a_bad_port_names_the_variable_and_the_fix() {
        let e = resolve("", &[("API_PORT", "eighty")]).unwrap_err().to_string();
        assert!(e.contains("API_PORT") && e.contains("'eighty'") && e.contains("1 to 65535"), "{e}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_with_their_place() {
        let e = resolve("[server]\nprot = 1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `prot`") && e.contains("steward.toml:2:1"), "{e}");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let e = resolve(
            "[engine]\nmax_steps = 0\n",
            &[("LOG_FORMAT", "xml"), ("STEWARD_API_KEYS", "not-a-digest"), ("DATABASE_URL", "mysql://x")],
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(e.0.len(), 4, "{keys:?}");
        assert!(e.to_string().contains("steward keys new"));
    }

    #[test]
    fn a_public_bind_needs_keys_or_an_explicit_opt_out() {
        let e = resolve("", &[("STEWARD_HOST", "0.0.0.0")]).unwrap_err().to_string();
        assert!(e.contains("non-loopback") && e.contains("--insecure-no-auth"), "{e}");
        let digest = "a".repeat(64);
        assert!(resolve("", &[("STEWARD_HOST", "0.0.0.0"), ("STEWARD_API_KEYS", &digest)]).is_ok());
        let file = FileConfig::default();
        let flags = Overrides { host: Some("0.0.0.0".into()), insecure_no_auth: true, ..Overrides::default() };
        assert!(Config::resolve(file, None, &env(&[]), &flags).is_ok());
    }

    #[test]
    fn the_home_assistant_token_is_among_the_secrets_to_redact() {
        let c = resolve("", &[("HA_URL", "http://ha.lan:8123"), ("HA_TOKEN", "eyJ-ha-token ")]).unwrap();
        assert!(c.secrets().iter().any(|s| s == "eyJ-ha-token"), "{:?}", c.secrets().len());
    }

    #[test]
    fn every_provider_set_in_the_environment_is_usable() {
        let c = resolve("", &[("OLLAMA_HOST", "http://127.0.0.1:11434")]).unwrap();
        assert_eq!(c.file.llm.providers.keys().collect::<Vec<_>>(), vec!["ollama"]);
        let c = resolve(
            "",
            &[
                ("OLLAMA_HOST", "http://x"),
                ("OPENAI_API_KEY", "sk-x"),
                ("GEMINI_API_KEY", "g"),
                ("ANTHROPIC_API_KEY", "a"),
            ],
        )
        .unwrap();
        assert_eq!(c.file.llm.providers.keys().collect::<Vec<_>>(), vec!["anthropic", "gemini", "ollama", "openai"]);
        assert_eq!(c.file.llm.providers["openai"].api_key.as_ref().map(Secret::expose), Some("sk-x"));
        // The environment updates a provider the file names.
        let c = resolve("[llm.providers.openai]\nmodel = \"gpt-4.1\"\n", &[("OPENAI_API_KEY", "sk-y")]).unwrap();
        let p = &c.file.llm.providers["openai"];
        assert_eq!((p.model.as_deref(), p.api_key.as_ref().map(Secret::expose)), (Some("gpt-4.1"), Some("sk-y")));
    }

    #[test]
    fn tiers_budgets_and_prices_are_checked() {
        let e =
            resolve("[llm.tiers]\nsmart = [\"nobody/x\", \"bare\"]\n", &[("OLLAMA_HOST", "127.0.0.1")]).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(e.to_string().contains("llm.tiers.smart") && e.to_string().contains("ollama"), "{e}");
        let e = resolve("[llm.budgets]\nmonthly = -1\n[llm.budgets.providers.ghost]\ndaily = 1\n", &[]).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        let e = resolve("[llm.prices.\"openai/x\"]\ninput = -2\noutput = 1\n", &[]).unwrap_err();
        assert!(e.to_string().contains("zero or more"), "{e}");
        let e = resolve("[llm.providers.work]\nbase_url = \"http://10.0.0.2/v1\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("kind = "), "{e}");
        assert!(resolve("[llm.providers.work]\nkind = \"openai\"\nbase_url = \"http://10.0.0.2/v1\"\n", &[]).is_ok());
    }

    #[test]
    fn rendering_masks_secrets() {
        let c = resolve(
            "",
            &[("OPENAI_API_KEY", "sk-very-secret"), ("DATABASE_URL", "postgres://steward:hunter2@db:5432/steward")],
        )
        .unwrap();
        let text = c.render();
        assert!(!text.contains("sk-very-secret") && !text.contains("hunter2"), "{text}");
        assert!(text.contains("postgres://steward:***@db:5432/steward"), "{text}");
        assert!(text.contains("api_key = \"********\""), "{text}");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn llm_urls_are_checked_after_ollama_style_normalisation() {
        assert!(resolve("", &[("OLLAMA_HOST", "127.0.0.1:11434")]).is_ok());
        assert!(resolve("", &[("OLLAMA_HOST", "localhost")]).is_ok());
        let e = resolve("", &[("OPENAI_BASE_URL", "http://")]).unwrap_err().to_string();
        assert!(e.contains("has no host"), "{e}");
        let e = resolve("", &[("OPENAI_BASE_URL", "ftp://x/v1")]).unwrap_err().to_string();
        assert!(e.contains("not an http(s) URL"), "{e}");
        assert!(resolve("", &[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")]).is_ok());
    }

    #[test]
    fn a_cloud_provider_without_a_key_or_another_server_is_refused() {
        let e = resolve("[llm.providers.openai]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
        let e = resolve("[llm.providers.anthropic]\nmodel = \"claude\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("ANTHROPIC_API_KEY"), "{e}");
        assert!(resolve("[llm.providers.openai]\nbase_url = \"http://127.0.0.1:8080/v1\"\n", &[]).is_ok());
    }

    #[test]
    fn an_sqlite_database_that_would_not_persist_is_refused() {
        for url in ["sqlite:", "sqlite://", "sqlite::memory:", "sqlite://x.db?mode=memory"] {
            let e = resolve("", &[("DATABASE_URL", url)]).unwrap_err().to_string();
            assert!(e.contains("survive a restart"), "{url}: {e}");
        }
        assert!(resolve("", &[("DATABASE_URL", "sqlite:/tmp/steward.db")]).is_ok());
    }

    #[test]
    fn credentials_in_the_llm_url_are_masked() {
        let c = resolve("", &[("OPENAI_BASE_URL", "http://me:hunter2@proxy:8080/v1")]).unwrap();
        assert!(!c.render().contains("hunter2"), "{}", c.render());
    }

    #[test]
    fn policy_presets_and_rules_are_read_and_checked() {
        let c = resolve(
            "[policy]\npreset = \"balanced\"\n[[policy.rules]]\nentity = \"lock.*\"\ndecision = \"ask\"\n[[policy.rules]]\ntool = \"proxmox_*\"\ndecision = \"deny\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.file.policy.preset, steward_core::Preset::Balanced);
        assert_eq!(c.file.policy.rules.len(), 2);
        let e = resolve("[[policy.rules]]\ndecision = \"allow\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("policy.rules[0]"), "{e}");
        let e = resolve("[policy]\npreset = \"yolo\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("yolo"), "{e}");
        let e = resolve("[[policy.rules]]\nentity = \"x\"\ndecision = \"maybe\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("maybe"), "{e}");
    }

    #[test]
    fn the_sandbox_section_is_read_and_checked() {
        let c = resolve("", &[]).unwrap();
        assert_eq!(c.file.sandbox.sandbox_config(), steward_integrations::sandbox::SandboxConfig::default());
        let c = resolve(
            "[sandbox]\nallow_unsandboxed = true\nbwrap = \"/opt/bwrap\"\nmemory_mb = 256\ntimeout_secs = 5\n",
            &[],
        )
        .unwrap();
        let s = c.file.sandbox.sandbox_config();
        assert!(s.allow_unsandboxed);
        assert_eq!(
            (s.bwrap_path, s.memory_mb, s.timeout_secs, s.cpu_secs),
            (Some(PathBuf::from("/opt/bwrap")), 256, 5, 10)
        );
        let e = resolve("[sandbox]\nmax_processes = 1\ntimeout_secs = 0\n", &[]).unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["sandbox.timeout_secs", "sandbox.max_processes"], "{e}");
        let e = resolve("[sandbox]\nallow_unsandboxd = true\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `allow_unsandboxd`"), "{e}");
    }

    #[test]
    fn the_ansible_section_is_read_and_checked() {
        let c = resolve("", &[]).unwrap();
        assert_eq!(c.file.ansible.ansible_config(), steward_integrations::ansible::AnsibleConfig::default());
        let c = resolve(
            "[ansible]\nplaybook_dir = \"/srv/ansible\"\ninventory = \"/srv/ansible/hosts\"\ntimeout_secs = 60\n",
            &[],
        )
        .unwrap();
        let a = c.file.ansible.ansible_config();
        assert_eq!(
            (a.playbook_dir, a.timeout_secs, a.check_timeout_secs),
            (Some(PathBuf::from("/srv/ansible")), 60, 300)
        );
        let e = resolve("[ansible]\nplaybook_dir = \"/srv/ansible\"\ncheck_timeout_secs = 0\n", &[]).unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["ansible.inventory", "ansible.check_timeout_secs"], "{e}");
    }

    #[test]
    fn the_proxmox_section_is_read_from_the_file_or_the_environment_and_checked() {
        assert!(resolve("", &[]).unwrap().file.proxmox.proxmox_config().is_none());
        let secret = "8c1e52f0-3d7a-4b9e-a6c2-5f0d9e7b1a34";
        let c = resolve(
            "[proxmox]\nurl = \"https://pve1.lan:8006\"\ntoken_id = \"steward@pve!infra\"\nca_cert = \"/etc/steward/pve-root-ca.pem\"\n",
            &[("PROXMOX_TOKEN_SECRET", secret), ("PROXMOX_URL", "https://pve2.lan:8006")],
        )
        .unwrap();
        let p = c.file.proxmox.proxmox_config().unwrap();
        // The environment wins over the file, as for HA_URL.
        assert_eq!(
            (p.url.as_str(), p.token_id.as_str(), p.token_secret.as_str()),
            ("https://pve2.lan:8006", "steward@pve!infra", secret)
        );
        assert_eq!(
            (p.ca_cert, p.insecure_tls, p.timeout.as_secs()),
            (Some(PathBuf::from("/etc/steward/pve-root-ca.pem")), false, 15)
        );
        // The secret is redacted everywhere and never rendered.
        assert!(c.secrets().iter().any(|s| s == secret));
        assert!(!c.render().contains(secret) && !format!("{c:?}").contains(secret), "{}", c.render());

        let e = resolve(
            "[proxmox]\nurl = \"http://pve1.lan:8006\"\ntoken_id = \"steward@pve\"\ninsecure_tls = true\nca_cert = \"/ca.pem\"\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "proxmox.token_secret (PROXMOX_TOKEN_SECRET)",
                "proxmox.url (PROXMOX_URL)",
                "proxmox.token_id (PROXMOX_TOKEN_ID)",
                "proxmox.ca_cert, proxmox.insecure_tls"
            ],
            "{e}"
        );
        let text = e.to_string();
        assert!(text.contains("plain http://") && text.contains("USER@REALM!TOKENID"), "{text}");
        let e = resolve("", &[("PROXMOX_TOKEN_ID", "steward@pve!infra")]).unwrap_err().to_string();
        assert!(e.contains("no URL"), "{e}");
        let e = resolve("[proxmox]\nverify_tls = false\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `verify_tls`"), "{e}");
        // Loopback may be plain http (tests, a local proxy).
        let loopback =
            [("PROXMOX_URL", "http://127.0.0.1:8006"), ("PROXMOX_TOKEN_ID", "a@pve!b"), ("PROXMOX_TOKEN_SECRET", "s")];
        assert!(resolve("", &loopback).is_ok());
    }

    #[test]
    fn agents_can_be_added_in_the_file() {
        let c = resolve(
            "[agents.energy]\npurpose = \"energy\"\nsystem_prompt = \"You watch energy.\"\ntier = \"fast\"\ntools = [\"get_current_time\"]\n",
            &[],
        )
        .unwrap();
        let a = &c.agent_profiles()[0];
        assert_eq!((a.id.as_str(), a.tier), ("energy", Tier::Fast));
        let e = resolve("[agents.energy]\npurpose = \"x\"\nsystem_prompt = \"y\"\ntier = \"huge\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("huge"), "{e}");
    }
}
