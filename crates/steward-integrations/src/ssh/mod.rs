//! Running commands on configured hosts over SSH, and the `ssh_*` tools the
//! infra agent gets.
//!
//! Steward runs the OpenSSH client (`ssh`) rather than speaking SSH itself:
//! host-key checking, key formats, ciphers and `known_hosts` then behave
//! exactly as people know them from a terminal, and no SSH library joins
//! the dependencies. The client is started so that nothing but what is
//! configured here takes part:
//!
//! - `-F /dev/null`: no `~/.ssh/config` and no `/etc/ssh/ssh_config`, so a
//!   personal `ProxyCommand`, `Host *` block or agent forwarding never
//!   applies;
//! - `UserKnownHostsFile` is Steward's own file and `GlobalKnownHostsFile`
//!   is empty; `StrictHostKeyChecking=yes`, or `accept-new` only when trust
//!   on first use is configured (a *changed* key is refused either way);
//! - `BatchMode=yes` (never a password prompt), `IdentitiesOnly=yes` with
//!   the host's one key, no agent, no forwarding, no connection sharing;
//! - an environment of `PATH`, `HOME` (the directory of `known_hosts`) and
//!   `LC_ALL`, so none of Steward's secrets reach the process.
//!
//! A run has a wall clock (the connection included) and an output cap. When
//! the clock runs out, the local `ssh` is killed; the remote command is not
//! necessarily stopped with it (sshd does not signal a command without a
//! terminal when the connection drops), which the error says.
//!
//! What counts as read-only is decided by [`allowlist`]: the read-only tool
//! runs only commands it accepts, and every other command goes through the
//! mutating tool, which a person approves.

pub mod allowlist;
mod process;
mod tools;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use allowlist::{Allowlist, PatternError, Refusal, DEFAULT_READONLY_COMMANDS};
use process::{execute, Launch};
pub use tools::{ssh_tools, SshListHosts, SshRun, SshRunReadonly, SSH_TOOL_NAMES};

/// Where `ssh` is looked for: the same fixed `PATH` it is given.
const SEARCH_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Characters of ssh's own error output quoted in an error.
const DETAIL_CHARS: usize = 500;

/// `[ssh]` as the integration uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// Steward's own known_hosts file.
    pub known_hosts: PathBuf,
    /// Accept and record the key of a host seen for the first time (never a
    /// changed key).
    pub trust_on_first_use: bool,
    pub connect_timeout_secs: u64,
    /// The wall clock of a whole run, connecting included.
    pub command_timeout_secs: u64,
    /// Bytes of stdout, and of stderr, that are kept.
    pub output_cap_bytes: usize,
    /// Read-only command patterns beyond [`DEFAULT_READONLY_COMMANDS`].
    pub readonly_commands: Vec<String>,
    /// The hosts, by the name tools call them by.
    pub hosts: BTreeMap<String, SshHost>,
}

impl SshConfig {
    pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
    pub const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 60;
    pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 64 * 1024;

    /// No hosts, the defaults, and `known_hosts` where it is given.
    pub fn new(known_hosts: PathBuf) -> SshConfig {
        SshConfig {
            known_hosts,
            trust_on_first_use: false,
            connect_timeout_secs: Self::DEFAULT_CONNECT_TIMEOUT_SECS,
            command_timeout_secs: Self::DEFAULT_COMMAND_TIMEOUT_SECS,
            output_cap_bytes: Self::DEFAULT_OUTPUT_CAP_BYTES,
            readonly_commands: Vec::new(),
            hosts: BTreeMap::new(),
        }
    }
}

/// One host commands can run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    /// A name or address.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The private key to log in with.
    pub identity_file: PathBuf,
}

impl SshHost {
    /// `user@host:port`, as people read it.
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// How the host appears in known_hosts: `[host]:port` off port 22.
    fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub host: String,
    pub command: String,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout or stderr went past the output cap and was cut there.
    pub truncated: bool,
    pub elapsed_ms: u64,
}

impl RunOutput {
    /// The tool's answer.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::json!({
            "host": self.host,
            "command": self.command,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "truncated": self.truncated,
            "elapsed_ms": self.elapsed_ms,
        });
        if self.truncated {
            out["note"] = serde_json::json!(
                "the output was cut at the output cap; narrow the command (fewer lines, a filter) rather than \
running it again"
            );
        }
        out
    }
}

/// Why a command did not run, or was stopped.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "no SSH hosts are configured: add [ssh.hosts.<name>] with host, user and identity_file (and port, if not \
22) to steward.toml"
    )]
    NoHosts,
    #[error("there is no SSH host named `{name}`; the configured hosts are: {known} (ssh_list_hosts lists them)")]
    UnknownHost { name: String, known: String },
    #[error(
        "cannot read the identity file {} of SSH host `{host}`: {reason}; set [ssh.hosts.{host}] identity_file to \
a private key Steward's user can read",
        path.display()
    )]
    IdentityUnreadable { host: String, path: PathBuf, reason: String },
    #[error(
        "authentication to SSH host `{host}` will fail: its identity file {} can be read by other users, and ssh \
refuses such keys; run chmod 600 {}",
        path.display(),
        path.display()
    )]
    IdentityTooOpen { host: String, path: PathBuf },
    #[error(
        "the host key of `{host}` ({address}) does not match known_hosts ({}){}: someone may be intercepting the \
connection, or the host was reinstalled; check the fingerprint on the host itself (ssh-keygen -lf \
/etc/ssh/ssh_host_ed25519_key.pub) and update known_hosts (ssh-keygen -f {} -R '{address}', then add the right key). \
Nothing was run",
        known_hosts.display(),
        fingerprint.as_ref().map(|f| format!("; it presented the key {f}")).unwrap_or_default(),
        known_hosts.display()
    )]
    HostKeyMismatch { host: String, address: String, known_hosts: PathBuf, fingerprint: Option<String> },
    #[error(
        "`{host}` ({address}) is not in known_hosts ({}), so its identity cannot be checked, and trust on first use \
is off. Nothing was run. Add its key after checking the fingerprint (ssh-keyscan {} >> {}), or set \
[ssh] trust_on_first_use = true to record the key on first contact",
        known_hosts.display(),
        keyscan_args(address),
        known_hosts.display()
    )]
    HostKeyUnknown { host: String, address: String, known_hosts: PathBuf },
    #[error(
        "SSH host `{host}` refused to log in user `{user}` with the key {} ({detail}): add the public key ({}.pub) \
to ~{user}/.ssh/authorized_keys on the host, or correct user / identity_file in [ssh.hosts.{host}]",
        identity_file.display(),
        identity_file.display()
    )]
    AuthFailed { host: String, user: String, identity_file: PathBuf, detail: String },
    #[error(
        "cannot reach SSH host `{host}` at {address} ({detail}); check that it is up and that sshd listens there, \
and the host and port in [ssh.hosts.{host}]"
    )]
    Unreachable { host: String, address: String, detail: String },
    #[error(
        "the command on `{host}` was stopped after {secs} s, its time limit, and the connection closed; the remote \
command may still be running there, so check before running it again. Make it finish sooner, or raise [ssh] \
command_timeout_secs"
    )]
    Timeout { host: String, secs: u64, output: Box<RunOutput> },
    #[error("cannot start ssh, the OpenSSH client ({0}); install it (apt-get install openssh-client)")]
    ClientMissing(String),
    #[error("cannot {what} {}: {source}; check that the directory is writable", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SshError {
    /// What the command printed before it was stopped, if it ran.
    pub fn output(&self) -> Option<&RunOutput> {
        match self {
            SshError::Timeout { output, .. } => Some(output),
            SshError::NoHosts
            | SshError::UnknownHost { .. }
            | SshError::IdentityUnreadable { .. }
            | SshError::IdentityTooOpen { .. }
            | SshError::HostKeyMismatch { .. }
            | SshError::HostKeyUnknown { .. }
            | SshError::AuthFailed { .. }
            | SshError::Unreachable { .. }
            | SshError::ClientMissing(_)
            | SshError::Io { .. } => None,
        }
    }

    /// Whether the model picked a host that is not there (its mistake to
    /// fix) rather than the run failing.
    pub fn is_bad_host(&self) -> bool {
        matches!(self, SshError::NoHosts | SshError::UnknownHost { .. })
    }
}

/// `-p <port> <host>` for ssh-keyscan, from a known_hosts name.
fn keyscan_args(address: &str) -> String {
    match address.strip_prefix('[').and_then(|rest| rest.split_once("]:")) {
        Some((host, port)) => format!("-p {port} {host}"),
        None => address.to_string(),
    }
}

/// Runs commands on the configured hosts.
#[derive(Debug)]
pub struct Ssh {
    config: SshConfig,
    allowlist: Allowlist,
}

impl Ssh {
    /// Checks the read-only patterns; nothing is contacted.
    pub fn new(config: SshConfig) -> Result<Ssh, PatternError> {
        let allowlist = Allowlist::new(&config.readonly_commands)?;
        Ok(Ssh { config, allowlist })
    }

    pub fn config(&self) -> &SshConfig {
        &self.config
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Result<&SshHost, SshError> {
        if self.config.hosts.is_empty() {
            return Err(SshError::NoHosts);
        }
        self.config.hosts.get(name).ok_or_else(|| SshError::UnknownHost {
            name: name.to_string(),
            known: self.config.hosts.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
        })
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        if self.config.hosts.is_empty() {
            return "SSH: no hosts configured".into();
        }
        format!(
            "SSH: {} host{} ({}), known_hosts {}, trust on first use {}",
            self.config.hosts.len(),
            if self.config.hosts.len() == 1 { "" } else { "s" },
            self.config.hosts.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
            self.config.known_hosts.display(),
            if self.config.trust_on_first_use { "on" } else { "off" }
        )
    }

    /// Runs `command` on the host called `name` through the remote user's
    /// shell. A command that ends by itself, whatever its exit code, is an
    /// `Ok`; failing to connect, to trust the host or to log in is an error.
    pub async fn run(&self, name: &str, command: &str) -> Result<RunOutput, SshError> {
        let host = self.host(name)?;
        check_identity(name, host)?;
        let known_hosts = &self.config.known_hosts;
        let home = known_hosts.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // ssh records a first-seen key only into a directory that exists.
        tokio::fs::create_dir_all(home).await.map_err(|source| SshError::Io {
            what: "create the directory of known_hosts",
            path: home.to_path_buf(),
            source,
        })?;
        let launch = Launch {
            program: find_ssh().ok_or_else(|| SshError::ClientMissing(format!("no ssh in {SEARCH_PATH}")))?,
            args: self.ssh_args(host, command),
            env: vec![
                ("PATH".into(), SEARCH_PATH.into()),
                ("HOME".into(), home.to_string_lossy().into_owned()),
                ("LC_ALL".into(), "C".into()),
            ],
        };
        let wall = Duration::from_secs(self.config.command_timeout_secs);
        let finished = execute(&launch, wall, self.config.output_cap_bytes)
            .await
            .map_err(|e| SshError::ClientMissing(format!("{}: {e}", launch.program.display())))?;
        tracing::debug!(
            host = name,
            exit_code = finished.exit_code,
            timed_out = finished.timed_out,
            truncated = finished.truncated,
            elapsed_ms = finished.elapsed.as_millis() as u64,
            "ssh command finished"
        );
        let output = RunOutput {
            host: name.to_string(),
            command: command.to_string(),
            exit_code: finished.exit_code,
            stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
            truncated: finished.truncated,
            elapsed_ms: u64::try_from(finished.elapsed.as_millis()).unwrap_or(u64::MAX),
        };
        if finished.timed_out {
            return Err(SshError::Timeout {
                host: name.to_string(),
                secs: self.config.command_timeout_secs,
                output: Box::new(output),
            });
        }
        match classify(name, host, known_hosts, &output) {
            Some(error) => Err(error),
            None => Ok(output),
        }
    }

    fn ssh_args(&self, host: &SshHost, command: &str) -> Vec<OsString> {
        let checking = if self.config.trust_on_first_use { "accept-new" } else { "yes" };
        let mut known_hosts = OsString::from("UserKnownHostsFile=");
        known_hosts.push(&self.config.known_hosts);
        let options: [OsString; 18] = [
            format!("StrictHostKeyChecking={checking}").into(),
            known_hosts,
            "GlobalKnownHostsFile=/dev/null".into(),
            "BatchMode=yes".into(),
            format!("ConnectTimeout={}", self.config.connect_timeout_secs).into(),
            "IdentitiesOnly=yes".into(),
            "IdentityAgent=none".into(),
            "PasswordAuthentication=no".into(),
            "KbdInteractiveAuthentication=no".into(),
            "ForwardAgent=no".into(),
            "ForwardX11=no".into(),
            "ClearAllForwardings=yes".into(),
            "ControlMaster=no".into(),
            "ControlPath=none".into(),
            // ssh would otherwise add the host's other keys to the file.
            "UpdateHostKeys=no".into(),
            "HashKnownHosts=no".into(),
            "RequestTTY=no".into(),
            // Errors only: no "Permanently added … to known hosts" in the
            // command's stderr; every message `classify` reads is an error.
            "LogLevel=ERROR".into(),
        ];
        let mut args: Vec<OsString> = vec!["-F".into(), "/dev/null".into()];
        for option in options {
            args.push("-o".into());
            args.push(option);
        }
        args.extend([
            "-i".into(),
            host.identity_file.clone().into_os_string(),
            "-p".into(),
            host.port.to_string().into(),
            "-l".into(),
            host.user.clone().into(),
            "--".into(),
            host.host.clone().into(),
            command.into(),
        ]);
        args
    }
}

/// `ssh` on the fixed search path.
fn find_ssh() -> Option<PathBuf> {
    SEARCH_PATH.split(':').map(|dir| Path::new(dir).join("ssh")).find(|p| p.is_file())
}

/// Refuses before connecting when the key cannot work: ssh would only say
/// "Permission denied", which hides that the file is missing or unusable.
fn check_identity(name: &str, host: &SshHost) -> Result<(), SshError> {
    let path = &host.identity_file;
    let unreadable =
        |reason: String| SshError::IdentityUnreadable { host: name.to_string(), path: path.clone(), reason };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("it is not a file".into()));
    }
    std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    // ssh's own rule: a key of ours that group or others can read is refused.
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() == euid && meta.mode() & 0o077 != 0 {
        return Err(SshError::IdentityTooOpen { host: name.to_string(), path: path.clone() });
    }
    Ok(())
}

/// The error an exit of 255 (ssh's own failures) stands for, read from what
/// ssh printed. An exit of 255 with none of these messages is taken to be
/// the remote command's own exit code.
fn classify(name: &str, host: &SshHost, known_hosts: &Path, output: &RunOutput) -> Option<SshError> {
    if output.exit_code != 255 {
        return None;
    }
    let stderr = &output.stderr;
    let address = host.known_hosts_name();
    let detail = || {
        let line = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message from ssh");
        line.chars().take(DETAIL_CHARS).collect::<String>()
    };
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("has changed and you have requested")
    {
        let fingerprint = stderr.split_whitespace().find(|w| w.starts_with("SHA256:")).map(|f| {
            let f = f.trim_end_matches('.');
            let kind = stderr.split("The fingerprint for the ").nth(1).and_then(|rest| rest.split(' ').next());
            match kind {
                Some(kind) => format!("{kind} {f}"),
                None => f.to_string(),
            }
        });
        return Some(SshError::HostKeyMismatch {
            host: name.to_string(),
            address,
            known_hosts: known_hosts.to_path_buf(),
            fingerprint,
        });
    }
    if stderr.contains("host key is known for") || stderr.contains("Host key verification failed") {
        return Some(SshError::HostKeyUnknown {
            host: name.to_string(),
            address,
            known_hosts: known_hosts.to_path_buf(),
        });
    }
    if stderr.contains("Permission denied") || stderr.contains("Too many authentication failures") {
        return Some(SshError::AuthFailed {
            host: name.to_string(),
            user: host.user.clone(),
            identity_file: host.identity_file.clone(),
            detail: detail(),
        });
    }
    const UNREACHABLE: &[&str] = &[
        "Connection refused",
        "Connection timed out",
        "Operation timed out",
        "No route to host",
        "Network is unreachable",
        "Could not resolve hostname",
        "Name or service not known",
        "Connection closed by",
        "Connection reset by",
        "kex_exchange_identification",
        "banner exchange",
        "ssh: connect to host",
    ];
    if UNREACHABLE.iter().any(|m| stderr.contains(m)) {
        return Some(SshError::Unreachable {
            host: name.to_string(),
            address: format!("{}:{}", host.host, host.port),
            detail: detail(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn host() -> SshHost {
        SshHost { host: "10.0.0.5".into(), port: 2222, user: "admin".into(), identity_file: "/keys/id".into() }
    }

    fn output(exit_code: i32, stderr: &str) -> RunOutput {
        RunOutput {
            host: "nas".into(),
            command: "uptime".into(),
            exit_code,
            stdout: String::new(),
            stderr: stderr.into(),
            truncated: false,
            elapsed_ms: 1,
        }
    }

    fn classified(exit_code: i32, stderr: &str) -> Option<String> {
        classify("nas", &host(), Path::new("/data/ssh/known_hosts"), &output(exit_code, stderr)).map(|e| e.to_string())
    }

    #[test]
    fn a_changed_host_key_is_a_clear_refusal_with_the_fingerprint() {
        let stderr = "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@\nThe fingerprint for the \
ED25519 key sent by the remote host is\nSHA256:Ay/tuEBZYc7/XqQuv3cI5BuW2+2TH/7/sDZni0eQKyU.\nHost key verification failed.\n";
        let e = classified(255, stderr).unwrap();
        assert!(
            e.starts_with("the host key of `nas` ([10.0.0.5]:2222) does not match known_hosts (/data/ssh/known_hosts)")
        );
        assert!(e.contains("it presented the key ED25519 SHA256:Ay/tuEBZYc7/XqQuv3cI5BuW2+2TH/7/sDZni0eQKyU:"), "{e}");
        assert!(e.contains("someone may be intercepting the connection, or the host was reinstalled"), "{e}");
        assert!(e.contains("Nothing was run"), "{e}");
    }

    #[test]
    fn ssh_failures_are_told_apart_from_the_command_s_own_exit() {
        let unknown = classified(
            255,
            "No ED25519 host key is known for [10.0.0.5]:2222 and you have requested strict checking.\nHost key verification failed.\n",
        )
        .unwrap();
        assert!(unknown.contains("is not in known_hosts") && unknown.contains("trust_on_first_use"), "{unknown}");
        assert!(unknown.contains("ssh-keyscan -p 2222 10.0.0.5 >> /data/ssh/known_hosts"), "{unknown}");
        let auth = classified(255, "admin@10.0.0.5: Permission denied (publickey).\n").unwrap();
        assert!(
            auth.contains("user `admin`") && auth.contains("/keys/id") && auth.contains("authorized_keys"),
            "{auth}"
        );
        let refused = classified(255, "ssh: connect to host 10.0.0.5 port 2222: Connection refused\n").unwrap();
        assert!(refused.starts_with("cannot reach SSH host `nas` at 10.0.0.5:2222"), "{refused}");
        assert!(refused.contains("Connection refused"), "{refused}");
        assert_eq!(classified(255, "my script failed\n"), None);
        assert_eq!(classified(1, "Permission denied\n"), None);
    }

    #[test]
    fn the_client_gets_only_the_configured_options_and_the_command_last() {
        let mut config = SshConfig::new("/data/ssh/known_hosts".into());
        config.hosts.insert("nas".into(), host());
        let ssh = Ssh::new(config.clone()).unwrap();
        let args: Vec<String> =
            ssh.ssh_args(&host(), "uptime").into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(&args[..2], ["-F", "/dev/null"]);
        assert!(args.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(args.contains(&"UserKnownHostsFile=/data/ssh/known_hosts".to_string()));
        assert_eq!(
            &args[args.len() - 9..],
            ["-i", "/keys/id", "-p", "2222", "-l", "admin", "--", "10.0.0.5", "uptime"]
        );
        config.trust_on_first_use = true;
        let ssh = Ssh::new(config).unwrap();
        assert!(ssh.ssh_args(&host(), "x").contains(&OsString::from("StrictHostKeyChecking=accept-new")));
    }

    #[test]
    fn hosts_are_looked_up_by_name_with_the_fix_when_missing() {
        let ssh = Ssh::new(SshConfig::new("/k".into())).unwrap();
        let e = ssh.host("nas").unwrap_err().to_string();
        assert!(e.starts_with("no SSH hosts are configured: add [ssh.hosts.<name>]"), "{e}");
        let mut config = SshConfig::new("/k".into());
        config.hosts.insert("nas".into(), host());
        config.hosts.insert("pi".into(), host());
        let ssh = Ssh::new(config).unwrap();
        let e = ssh.host("router").unwrap_err().to_string();
        assert!(e.contains("`router`") && e.contains("nas, pi"), "{e}");
    }

    #[test]
    fn unusable_keys_are_refused_before_connecting() {
        let dir = std::env::temp_dir().join(format!("steward-ssh-key-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = SshHost { identity_file: dir.join("missing"), ..host() };
        let e = check_identity("nas", &missing).unwrap_err().to_string();
        assert!(e.contains("cannot read the identity file") && e.contains("missing"), "{e}");
        let open = dir.join("open");
        std::fs::write(&open, "key").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_identity("nas", &SshHost { identity_file: open.clone(), ..host() }).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_identity("nas", &SshHost { identity_file: open, ..host() }).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
