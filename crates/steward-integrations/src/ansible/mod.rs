//! Ansible: listing the playbooks and inventory hosts a person configured,
//! and running a playbook, previewed in check mode before anyone approves
//! it.
//!
//! # How a run goes
//!
//! `ansible_run_playbook` changes machines, so the policy asks a person
//! first. Its preview runs the same playbook with `--check --diff`: the
//! approval then shows, per host and per task, what would change, with the
//! file diffs. Check mode cannot simulate everything: a module without
//! check-mode support, and `command`/`shell` without `creates`/`removes`,
//! skip themselves there. Those tasks are flagged "not previewable", since
//! the real run will do something the preview did not show. Once approved,
//! the playbook runs for real (with `--diff`, so the log shows what
//! changed); each task's events are logged as they happen, and the recap per
//! host, the failed tasks' messages and the log are the tool's output, which
//! the approval records as its outcome.
//!
//! # What Ansible gets to see
//!
//! Steward's environment holds API keys and tokens, so ansible-playbook
//! starts with an empty one and only: `PATH`; `HOME` pointing at a private
//! directory made for the run (mode 0700, removed afterwards), which is also
//! where Ansible keeps its temporary files (`ANSIBLE_LOCAL_TEMP`, and for
//! `connection: local` the remote temp `~/.ansible/tmp`); `LANG`/`LC_ALL`;
//! and the `ANSIBLE_*` settings Steward needs. SSH still finds Steward's
//! user's keys and `known_hosts` (ssh looks up the home directory in the
//! password database, not `HOME`), but not an ssh-agent: name keys in the
//! inventory (`ansible_ssh_private_key_file`) if they are not the default
//! ones. An `ansible.cfg` in the playbook directory is read as usual (it is
//! the working directory); `ANSIBLE_CONFIG` from Steward's environment is
//! not.
//!
//! Extra variables go to ansible-playbook in a file in that private
//! directory (`--extra-vars @file`), not on its command line, where every
//! user of the host could read them. They are data: strings holding
//! template markers (`{{`, `{%`, `{#`) are refused, because Ansible would
//! evaluate them on Steward's host (a `lookup('pipe', …)` runs a command),
//! and so are variables named `ansible_*`, which change how Ansible connects
//! (`ansible_ssh_common_args` can run a command too); set those in the
//! inventory.
//!
//! Events come from a callback plugin shipped inside Steward
//! (`steward_events.py`, written into the private directory for each run),
//! which prints one JSON object per line and picks each field it prints:
//! never module arguments, variables or facts, and nothing of a `no_log`
//! task's result.
//!
//! # Time
//!
//! A run has a wall clock (`[ansible] timeout_secs`, the check-mode preview
//! `check_timeout_secs`). When it runs out, the run's process group (Ansible,
//! its workers and the commands its tasks started) gets SIGTERM, then
//! SIGKILL five seconds later, and the report says it timed out, with what
//! happened until then. A person must then check the hosts: a playbook
//! stopped half-way may have left a host half-configured.

mod events;
mod playbooks;
mod process;
mod report;
mod tools;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

pub use events::{Event, HostRecap, Status, TaskResult};
pub use playbooks::{Group, InventoryGroups, PlayInfo, PlaybookInfo};
pub use report::{event_lines, RunReport};
pub use tools::{ansible_tools, ListHosts, ListPlaybooks, RunPlaybook, LIST_HOSTS, LIST_PLAYBOOKS, RUN_PLAYBOOK};

use process::Invocation;

/// The callback plugin, shipped inside the binary.
const CALLBACK_PLUGIN: &str = include_str!("steward_events.py");
const CALLBACK_NAME: &str = "steward_events";

/// Where programs are looked for when Steward itself has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes of `ansible-inventory --list` read at most.
const MAX_INVENTORY_BYTES: usize = 32 * 1024 * 1024;

/// Extra variables, as JSON, at most.
const MAX_EXTRA_VARS_BYTES: usize = 64 * 1024;

/// What Steward needs to know to run Ansible: `[ansible]` in steward.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsibleConfig {
    /// The directory holding the playbooks Steward may run (and their
    /// `ansible.cfg`, roles, group_vars …). Unset: Ansible is off.
    pub playbook_dir: Option<PathBuf>,
    /// The inventory: a file, a directory or an inventory script.
    pub inventory: Option<PathBuf>,
    /// ansible-playbook to use; default: `ansible-playbook` on `PATH`.
    /// `ansible-inventory` is looked for beside it.
    pub ansible_playbook: Option<PathBuf>,
    /// Wall-clock seconds for a real run.
    pub timeout_secs: u64,
    /// Wall-clock seconds for the check-mode run of a preview.
    pub check_timeout_secs: u64,
}

impl Default for AnsibleConfig {
    fn default() -> Self {
        AnsibleConfig {
            playbook_dir: None,
            inventory: None,
            ansible_playbook: None,
            timeout_secs: 600,
            check_timeout_secs: 300,
        }
    }
}

/// A check-mode preview or a real run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--check --diff`: nothing changes.
    Check,
    /// For real (with `--diff`).
    Apply,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Check => "check",
            Mode::Apply => "apply",
        }
    }
}

/// Which playbook to run, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// Relative to the playbook directory, e.g. `site.yml`.
    pub playbook: String,
    /// An Ansible host pattern (`--limit`), e.g. `web1` or `web:!web3`.
    pub limit: Option<String>,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--extra-vars`, a JSON object.
    pub extra_vars: Option<Map<String, Value>>,
}

impl RunRequest {
    /// Checks what Ansible would read as more than data. The messages are
    /// for the model, which chose the values.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(limit) = &self.limit {
            let allowed = |c: char| c.is_alphanumeric() || ".-_:,*!&~[]?^$()|+/".contains(c);
            if limit.is_empty() || limit.len() > 1000 || limit.starts_with('-') || !limit.chars().all(allowed) {
                return Err(format!(
                    "`limit` `{limit}` is not a host pattern; use host or group names, e.g. web1 or \
webservers:!web3 (no spaces, no @file)"
                ));
            }
        }
        for tag in &self.tags {
            let allowed = |c: char| c.is_alphanumeric() || "_-.:/ ".contains(c);
            if tag.trim().is_empty() || tag.len() > 200 || tag.starts_with('-') || !tag.chars().all(allowed) {
                return Err(format!(
                    "`tags` holds `{tag}`, which is not a tag name; use names such as nginx or config"
                ));
            }
        }
        if let Some(vars) = &self.extra_vars {
            let size = Value::Object(vars.clone()).to_string().len();
            if size > MAX_EXTRA_VARS_BYTES {
                return Err(format!("`extra_vars` is {size} bytes; keep it under {MAX_EXTRA_VARS_BYTES}"));
            }
            for key in vars.keys() {
                let mut chars = key.chars();
                let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !identifier {
                    return Err(format!(
                        "`extra_vars` key `{key}` is not a variable name (letters, digits and _, not starting with a digit)"
                    ));
                }
                if key.to_ascii_lowercase().starts_with("ansible_") {
                    return Err(format!(
                        "`extra_vars` cannot set `{key}`: variables named ansible_* change how Ansible connects \
and runs; they belong in the inventory"
                    ));
                }
            }
            if let Some(found) = template_in(&Value::Object(vars.clone())) {
                return Err(format!(
                    "`extra_vars` holds the template marker in `{found}`; extra variables are data, and Ansible \
would evaluate a template on Steward's host. Pass plain values"
                ));
            }
        }
        Ok(())
    }
}

/// The first string (key or value) holding a Jinja marker.
fn template_in(value: &Value) -> Option<String> {
    let marked = |s: &str| s.contains("{{") || s.contains("{%") || s.contains("{#");
    match value {
        Value::String(s) if marked(s) => Some(s.chars().take(80).collect()),
        Value::Array(items) => items.iter().find_map(template_in),
        Value::Object(map) => {
            map.iter().find_map(|(k, v)| if marked(k) { Some(k.chars().take(80).collect()) } else { template_in(v) })
        }
        Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// Why Ansible could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    #[error(
        "Ansible is not configured: set [ansible] playbook_dir and inventory in steward.toml (the directory of \
the playbooks Steward may run, and the inventory file). Nothing was run"
    )]
    NotConfigured,
    #[error(
        "{0}. Install ansible-core (pip install ansible-core, or the distribution's ansible-core package), or set \
[ansible] ansible_playbook in steward.toml to its path"
    )]
    NotInstalled(String),
    /// The request itself is wrong: the model should change it.
    #[error("{0}")]
    BadRequest(String),
    #[error("the playbook directory {} cannot be read: {source}. Check [ansible] playbook_dir in steward.toml", path.display())]
    PlaybookDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the inventory {} cannot be used: {why}. Check [ansible] inventory in steward.toml", path.display())]
    Inventory { path: PathBuf, why: String },
    #[error(
        "cannot run Ansible: {what}: {source}. Check that the temporary directory ({}) is writable and has room",
        std::env::temp_dir().display()
    )]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl AnsibleError {
    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> AnsibleError {
        move |source| AnsibleError::Io { what, source }
    }
}

/// The configured paths, checked.
#[derive(Debug, Clone)]
struct Setup {
    playbook_dir: PathBuf,
    inventory: PathBuf,
    ansible_playbook: PathBuf,
}

/// Steward's Ansible: the configuration, and the runs made with it.
#[derive(Debug, Clone)]
pub struct Ansible {
    config: AnsibleConfig,
}

impl Ansible {
    pub fn new(config: AnsibleConfig) -> Self {
        Ansible { config }
    }

    pub fn config(&self) -> &AnsibleConfig {
        &self.config
    }

    /// Both the playbook directory and the inventory are set.
    pub fn is_configured(&self) -> bool {
        self.config.playbook_dir.is_some() && self.config.inventory.is_some()
    }

    /// One line for the start-up log: where the playbooks, the inventory
    /// and ansible-playbook are, or why the tools cannot run.
    pub fn describe(&self) -> Result<String, AnsibleError> {
        let s = self.setup()?;
        Ok(format!(
            "Ansible: playbooks in {}, inventory {}, {}",
            s.playbook_dir.display(),
            s.inventory.display(),
            s.ansible_playbook.display()
        ))
    }

    fn setup(&self) -> Result<Setup, AnsibleError> {
        let (Some(dir), Some(inventory)) = (&self.config.playbook_dir, &self.config.inventory) else {
            return Err(AnsibleError::NotConfigured);
        };
        let playbook_dir =
            std::fs::canonicalize(dir).map_err(|source| AnsibleError::PlaybookDir { path: dir.clone(), source })?;
        if !playbook_dir.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            return Err(AnsibleError::PlaybookDir { path: dir.clone(), source });
        }
        let inventory = std::fs::canonicalize(inventory)
            .map_err(|e| AnsibleError::Inventory { path: inventory.clone(), why: e.to_string() })?;
        let ansible_playbook = match &self.config.ansible_playbook {
            Some(path) if path.is_file() => path.clone(),
            Some(path) => return Err(AnsibleError::NotInstalled(format!("{} does not exist", path.display()))),
            None => find_on_path("ansible-playbook")
                .ok_or_else(|| AnsibleError::NotInstalled("ansible-playbook was not found on PATH".into()))?,
        };
        Ok(Setup { playbook_dir, inventory, ansible_playbook })
    }

    /// The playbooks of the playbook directory, with their plays.
    pub async fn list_playbooks(&self) -> Result<Vec<PlaybookInfo>, AnsibleError> {
        let setup = self.setup()?;
        playbooks::list(&setup.playbook_dir).await
    }

    /// The inventory's groups and hosts (`ansible-inventory --list`), and
    /// the warnings Ansible printed reading it.
    pub async fn list_hosts(&self) -> Result<(InventoryGroups, Vec<String>), AnsibleError> {
        let setup = self.setup()?;
        let program = setup
            .ansible_playbook
            .parent()
            .map(|dir| dir.join("ansible-inventory"))
            .filter(|p| p.is_file())
            .or_else(|| find_on_path("ansible-inventory"))
            .ok_or_else(|| {
                AnsibleError::NotInstalled(format!(
                    "ansible-inventory was found neither beside {} nor on PATH",
                    setup.ansible_playbook.display()
                ))
            })?;
        let dir = RunDir::create().await?;
        let invocation = Invocation {
            program: program.clone(),
            args: vec!["-i".into(), setup.inventory.clone().into_os_string(), "--list".into()],
            cwd: setup.playbook_dir.clone(),
            env: dir.env(&program),
            timeout: Duration::from_secs(self.config.check_timeout_secs),
        };
        let mut listing = String::new();
        let mut too_large = false;
        let exit = process::run_lines(&invocation, |line| {
            if listing.len() + line.len() < MAX_INVENTORY_BYTES {
                listing.push_str(&line);
                listing.push('\n');
            } else {
                too_large = true;
            }
        })
        .await
        .map_err(AnsibleError::io("starting ansible-inventory"))?;
        drop(dir);
        let inventory_error = |why: String| AnsibleError::Inventory { path: setup.inventory.clone(), why };
        if exit.timed_out {
            return Err(inventory_error(format!(
                "ansible-inventory did not answer within {} s",
                self.config.check_timeout_secs
            )));
        }
        if exit.code != 0 {
            let why = exit.stderr.lines().find(|l| l.starts_with("ERROR!")).unwrap_or(exit.stderr.trim());
            return Err(inventory_error(format!("ansible-inventory failed (exit code {}): {why}", exit.code)));
        }
        if too_large {
            return Err(inventory_error(format!("its listing is larger than {MAX_INVENTORY_BYTES} bytes")));
        }
        let warnings = exit
            .stderr
            .lines()
            .filter(|l| l.starts_with("[WARNING]"))
            .map(|l| l.trim_start_matches("[WARNING]:").trim().to_string())
            .collect();
        let groups = InventoryGroups::parse(&listing).map_err(inventory_error)?;
        Ok((groups, warnings))
    }

    /// Runs a playbook (in check mode for [`Mode::Check`]) and reports what
    /// it did. `on_event` sees each event as it happens; every task start
    /// and result is also logged. A run that fails, or is stopped at its
    /// time limit, is a report too (see [`RunReport::succeeded`]); an error
    /// means the request was refused or ansible-playbook could not start.
    pub async fn run(
        &self,
        request: &RunRequest,
        mode: Mode,
        on_event: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<RunReport, AnsibleError> {
        let setup = self.setup()?;
        request.validate().map_err(AnsibleError::BadRequest)?;
        let (playbook, relative) = playbooks::resolve(&setup.playbook_dir, &request.playbook)?;
        let dir = RunDir::create().await?;
        let mut args: Vec<OsString> =
            vec![playbook.into_os_string(), "-i".into(), setup.inventory.clone().into_os_string()];
        if let Some(limit) = &request.limit {
            args.push(format!("--limit={limit}").into());
        }
        if !request.tags.is_empty() {
            args.push(format!("--tags={}", request.tags.join(",")).into());
        }
        if let Some(vars) = &request.extra_vars {
            let file = dir.write_extra_vars(vars).await?;
            let mut arg = OsString::from("--extra-vars=@");
            arg.push(file.as_os_str());
            args.push(arg);
        }
        match mode {
            Mode::Check => args.extend(["--check".into(), "--diff".into()]),
            Mode::Apply => args.push("--diff".into()),
        }
        let timeout_secs = match mode {
            Mode::Check => self.config.check_timeout_secs,
            Mode::Apply => self.config.timeout_secs,
        };
        let invocation = Invocation {
            program: setup.ansible_playbook.clone(),
            args,
            cwd: setup.playbook_dir.clone(),
            env: dir.env(&setup.ansible_playbook),
            timeout: Duration::from_secs(timeout_secs),
        };
        tracing::info!(playbook = %relative, mode = mode.as_str(), limit = ?request.limit, "ansible-playbook started");
        let mut events = Vec::new();
        let mut events_dropped = 0;
        let exit = process::run_lines(&invocation, |line| {
            let event = Event::parse(&line);
            log_event(&relative, mode, &event);
            on_event(&event);
            if events.len() < report::MAX_EVENTS {
                events.push(event);
            } else {
                events_dropped += 1;
            }
        })
        .await
        .map_err(AnsibleError::io("starting ansible-playbook"))?;
        drop(dir);
        let report = RunReport {
            playbook: relative,
            mode,
            events,
            events_dropped,
            exit_code: exit.code,
            timed_out: exit.timed_out,
            stderr: exit.stderr,
            elapsed: exit.elapsed,
        };
        if report.timed_out {
            tracing::warn!(playbook = %report.playbook, mode = mode.as_str(), timeout_secs, "ansible-playbook timed out and was stopped");
        } else {
            tracing::info!(
                playbook = %report.playbook,
                mode = mode.as_str(),
                exit_code = report.exit_code,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "ansible-playbook finished"
            );
        }
        Ok(report)
    }
}

/// Logs the progress of a run as it happens: which task starts, and how it
/// ended on each host (never its messages or diffs, which may quote files).
fn log_event(playbook: &str, mode: Mode, event: &Event) {
    let mode = mode.as_str();
    match event {
        Event::TaskStart { task, .. } => tracing::info!(playbook, mode, task = %task, "ansible task started"),
        Event::Result(r) if r.is_failure() => {
            tracing::warn!(playbook, mode, host = %r.host, task = %r.task, status = r.status.as_str(), "ansible task failed")
        }
        Event::Result(r) => {
            tracing::info!(playbook, mode, host = %r.host, task = %r.task, status = r.status.as_str(), "ansible task done")
        }
        Event::Stats(stats) => {
            for (host, recap) in stats {
                tracing::info!(playbook, mode, host = %host, recap = %recap.line(), "ansible recap");
            }
        }
        Event::PlaybookStart { .. }
        | Event::PlayStart { .. }
        | Event::Retry { .. }
        | Event::NoHostsMatched
        | Event::NoHostsRemaining
        | Event::Output(_) => {}
    }
}

/// The private directory of one run: the callback plugin, `HOME`, Ansible's
/// temporary files and the extra variables. Mode 0700; removed when dropped.
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    async fn create() -> Result<RunDir, AnsibleError> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("steward-ansible-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir(&path).await.map_err(AnsibleError::io("creating the run's directory"))?;
        let dir = RunDir { path };
        tokio::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(AnsibleError::io("restricting the run's directory"))?;
        for sub in ["plugins", "home", "tmp"] {
            tokio::fs::create_dir(dir.path.join(sub))
                .await
                .map_err(AnsibleError::io("creating the run's directory"))?;
        }
        tokio::fs::write(dir.path.join("plugins").join(format!("{CALLBACK_NAME}.py")), CALLBACK_PLUGIN)
            .await
            .map_err(AnsibleError::io("writing the callback plugin"))?;
        Ok(dir)
    }

    async fn write_extra_vars(&self, vars: &Map<String, Value>) -> Result<PathBuf, AnsibleError> {
        use tokio::io::AsyncWriteExt;
        let path = self.path.join("extra_vars.json");
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(AnsibleError::io("writing the extra variables"))?;
        file.write_all(Value::Object(vars.clone()).to_string().as_bytes())
            .await
            .map_err(AnsibleError::io("writing the extra variables"))?;
        Ok(path)
    }

    /// The whole environment of a run; nothing else of Steward's.
    fn env(&self, program: &Path) -> Vec<(String, String)> {
        let inherited = std::env::var("PATH").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PATH.into());
        // ansible-playbook's own directory first: a venv's ansible finds its
        // siblings (ansible-galaxy, ansible-connection) there.
        let path = match program.parent() {
            Some(bin) if !bin.as_os_str().is_empty() => format!("{}:{inherited}", bin.display()),
            Some(_) | None => inherited,
        };
        let at = |sub: &str| self.path.join(sub).display().to_string();
        [
            ("PATH", path),
            ("HOME", at("home")),
            ("TMPDIR", at("tmp")),
            ("LANG", "C.UTF-8".into()),
            ("LC_ALL", "C.UTF-8".into()),
            ("PYTHONDONTWRITEBYTECODE", "1".into()),
            ("ANSIBLE_CALLBACK_PLUGINS", at("plugins")),
            ("ANSIBLE_STDOUT_CALLBACK", CALLBACK_NAME.into()),
            ("ANSIBLE_LOCAL_TEMP", at("tmp")),
            ("ANSIBLE_RETRY_FILES_ENABLED", "0".into()),
            ("ANSIBLE_NOCOLOR", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove an Ansible run's directory");
        }
    }
}

/// The first `name` on `PATH` that is a file.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    fn request(extra: Value) -> RunRequest {
        RunRequest { playbook: "site.yml".into(), extra_vars: extra.as_object().cloned(), ..RunRequest::default() }
    }

    #[test]
    fn extra_vars_are_data_only() {
        assert!(request(json!({"dest": "/tmp/x", "n": 3, "list": ["a", {"b": true}]})).validate().is_ok());
        for (vars, expected) in [
            (json!({"x": "{{ lookup('pipe', 'id') }}"}), "template marker"),
            (json!({"x": ["ok", {"y": "{% if %}"}]}), "template marker"),
            (json!({"x": {"{#k#}": 1}}), "template marker"),
            (json!({"ansible_ssh_common_args": "-o ProxyCommand=id"}), "ansible_*"),
            (json!({"Ansible_Connection": "local"}), "ansible_*"),
            (json!({"2x": 1}), "not a variable name"),
            (json!({"a-b": 1}), "not a variable name"),
        ] {
            let e = request(vars.clone()).validate().unwrap_err();
            assert!(e.contains(expected), "{vars}: {e}");
        }
    }

    #[test]
    fn limits_and_tags_cannot_become_options_or_files() {
        let mut r = request(Value::Null);
        for good in ["web1", "web:!web3", "db*.example.com", "~web[0-9]+", "all"] {
            r.limit = Some(good.into());
            assert!(r.validate().is_ok(), "{good}");
        }
        for bad in ["-i /etc/passwd", "@/etc/hosts", "web1 web2", "", "a\nb"] {
            r.limit = Some(bad.into());
            assert!(r.validate().unwrap_err().contains("not a host pattern"), "{bad}");
        }
        r.limit = None;
        r.tags = vec!["config".into(), "-x".into()];
        assert!(r.validate().unwrap_err().contains("not a tag name"));
        r.tags = vec!["a,b".into()];
        assert!(r.validate().is_err());
    }

    #[tokio::test]
    async fn the_environment_is_private_and_minimal() {
        let dir = RunDir::create().await.unwrap();
        let path = dir.path.clone();
        let env = dir.env(Path::new("/opt/ansible/bin/ansible-playbook"));
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.iter().all(|k| {
            ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE"].contains(k)
                || k.starts_with("ANSIBLE_")
        }));
        let home = &env.iter().find(|(k, _)| k == "HOME").unwrap().1;
        assert!(home.starts_with(path.to_str().unwrap()));
        assert!(env.iter().any(|(k, v)| k == "PATH" && v.starts_with("/opt/ansible/bin:")));
        assert!(path.join("plugins/steward_events.py").is_file());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn not_configured_says_what_to_set() {
        let ansible = Ansible::new(AnsibleConfig::default());
        let e = ansible.setup().unwrap_err().to_string();
        assert!(e.starts_with("Ansible is not configured: set [ansible] playbook_dir and inventory"), "{e}");
    }
}
