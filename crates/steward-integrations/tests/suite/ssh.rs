//! The SSH tools against a real OpenSSH server on loopback, started by
//! `scripts/sshd.sh`: reads on the allowlist run, shell tricks do not, a
//! changed or unknown host key is refused before anything runs, trust on
//! first use records the key, and the timeout, the output cap, a bad key and
//! a closed port each end in a clear answer.
//!
//! The server is named by `STEWARD_TEST_SSH_HOST`, `_PORT`, `_USER`, `_KEY`
//! and `_HOST_PUBKEY` (what `.ci-state/sshd/env` holds). Without them these
//! tests print why and pass, unless `STEWARD_REQUIRE_SSH=1` (set by
//! `scripts/test.sh`), in which case they fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_core::{Tool, ToolContext};
use steward_integrations::ssh::{ssh_tools, Ssh, SshConfig, SshError, SshHost};

const REQUIRE_VAR: &str = "STEWARD_REQUIRE_SSH";

/// The test server, from the environment.
struct Server {
    host: String,
    port: u16,
    user: String,
    key: PathBuf,
    /// `ssh-ed25519 AAAA…`
    host_pubkey: String,
}

fn server() -> Option<Server> {
    let var = |name: &str| std::env::var(format!("STEWARD_TEST_SSH_{name}")).ok().filter(|v| !v.trim().is_empty());
    let found = (var("HOST"), var("PORT"), var("USER"), var("KEY"), var("HOST_PUBKEY"));
    let (Some(host), Some(port), Some(user), Some(key), Some(host_pubkey)) = found else {
        let why = "STEWARD_TEST_SSH_HOST, _PORT, _USER, _KEY and _HOST_PUBKEY are not all set (bash scripts/sshd.sh \
starts a server and writes them to .ci-state/sshd/env)";
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!("{REQUIRE_VAR}=1 but there is no SSH server: {why}");
        }
        eprintln!("skipping: no SSH server ({why}); set {REQUIRE_VAR}=1 to make this a failure");
        return None;
    };
    let port = port.parse().unwrap_or_else(|_| panic!("STEWARD_TEST_SSH_PORT={port} is not a port"));
    Some(Server { host, port, user, key: PathBuf::from(key), host_pubkey })
}

/// A private directory for one test's known_hosts and keys.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir = std::env::temp_dir().join(format!("steward-ssh-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    fn known_hosts_line(&self, key: &str) -> String {
        format!("[{}]:{} {key}\n", self.host, self.port)
    }

    /// A configuration with this server as `lab`, and a known_hosts file
    /// that holds its right key.
    fn config(&self, dir: &Dir) -> SshConfig {
        let known_hosts = dir.path("known_hosts");
        std::fs::write(&known_hosts, self.known_hosts_line(&self.host_pubkey)).unwrap();
        let mut config = SshConfig::new(known_hosts);
        config.connect_timeout_secs = 5;
        config.command_timeout_secs = 20;
        config.hosts.insert(
            "lab".into(),
            SshHost {
                host: self.host.clone(),
                port: self.port,
                user: self.user.clone(),
                identity_file: self.key.clone(),
            },
        );
        config
    }
}

struct Tools {
    list: Arc<dyn Tool>,
    readonly: Arc<dyn Tool>,
    run: Arc<dyn Tool>,
}

fn tools(config: SshConfig) -> Tools {
    let mut all = ssh_tools(Arc::new(Ssh::new(config).unwrap())).into_iter();
    let (list, readonly, run) = (all.next().unwrap(), all.next().unwrap(), all.next().unwrap());
    assert_eq!(
        [list.spec().name.as_str(), readonly.spec().name.as_str(), run.spec().name.as_str()],
        ["ssh_list_hosts", "ssh_run_readonly", "ssh_run"]
    );
    Tools { list, readonly, run }
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "t".into(),
        conversation_id: "c".into(),
        agent: "infra".into(),
        call_id: "1".into(),
        approval: None,
        progress: None,
    }
}

async fn call(tool: &Arc<dyn Tool>, command: &str) -> Result<Value, String> {
    tool.call(json!({"host": "lab", "command": command}), &ctx())
        .await
        .map(|out| serde_json::from_str(&out).unwrap())
        .map_err(|e| e.to_string())
}

/// A file in /tmp no other run would name; the server runs on this machine,
/// so whether a command ran shows here.
fn marker() -> PathBuf {
    PathBuf::from(format!("/tmp/steward-ssh-{}", uuid::Uuid::new_v4().simple()))
}

fn other_key(dir: &Dir, name: &str) -> PathBuf {
    let path = dir.path(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "steward-test-other", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (openssh-client) is needed for the SSH tests");
    assert!(status.success());
    path
}

fn public_key(private: &Path) -> String {
    let text = std::fs::read_to_string(private.with_extension("pub")).unwrap();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn an_allowlisted_read_runs_on_a_known_host() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let t = tools(server.config(&dir));
    let out = call(&t.readonly, "uptime").await.unwrap();
    assert_eq!(out["exit_code"], 0, "{out}");
    assert!(out["stdout"].as_str().unwrap().contains("load average"), "{out}");
    assert_eq!(out["truncated"], false);
    assert_eq!(out["host"], "lab");
    let out = call(&t.readonly, "df -h").await.unwrap();
    assert!(out["stdout"].as_str().unwrap().contains("Filesystem"), "{out}");

    let listed: Value = serde_json::from_str(&t.list.call(json!({}), &ctx()).await.unwrap()).unwrap();
    assert_eq!(listed["hosts"][0]["name"], "lab");
    assert_eq!(listed["hosts"][0]["port"], server.port);
    assert!(listed["readonly_commands"].as_array().unwrap().iter().any(|p| p == "uptime"), "{listed}");
}

#[tokio::test]
async fn shell_tricks_never_pass_as_reads() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let t = tools(server.config(&dir));
    let touched = marker();
    for command in [
        format!("uptime; touch {}", touched.display()),
        format!("uptime && touch {}", touched.display()),
        format!("df -h $(touch {})", touched.display()),
        "uptime; id".to_string(),
        "echo $HOME".to_string(),
        format!("touch {}", touched.display()),
    ] {
        let e = call(&t.readonly, &command).await.unwrap_err();
        assert!(e.contains("not on the read-only allowlist"), "{command}: {e}");
        assert!(e.contains("use ssh_run, which asks a person"), "{command}: {e}");
    }
    assert!(!touched.exists(), "a refused command ran");
}

#[tokio::test]
async fn ssh_run_runs_any_command() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let t = tools(server.config(&dir));
    let touched = marker();
    let out = call(&t.run, &format!("touch {} && echo made", touched.display())).await.unwrap();
    assert_eq!(out["exit_code"], 0, "{out}");
    assert_eq!(out["stdout"], "made\n");
    assert!(touched.exists());
    std::fs::remove_file(&touched).unwrap();
    // A command's own failure is its result, not an error.
    let out = call(&t.run, "echo oops >&2; exit 3").await.unwrap();
    assert_eq!((out["exit_code"].as_i64(), out["stderr"].as_str()), (Some(3), Some("oops\n")), "{out}");
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_nothing_runs() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let mut config = server.config(&dir);
    let impostor = public_key(&other_key(&dir, "impostor"));
    std::fs::write(&config.known_hosts, server.known_hosts_line(&impostor)).unwrap();
    let touched = marker();
    for tofu in [false, true] {
        config.trust_on_first_use = tofu;
        let t = tools(config.clone());
        let e = call(&t.run, &format!("touch {}", touched.display())).await.unwrap_err();
        let expected = format!(
            "the host key of `lab` ([{}]:{}) does not match known_hosts ({})",
            server.host,
            server.port,
            config.known_hosts.display()
        );
        assert!(e.starts_with(&expected), "trust on first use {tofu}: {e}");
        assert!(e.contains("someone may be intercepting the connection, or the host was reinstalled"), "{e}");
        assert!(e.contains("it presented the key ED25519 SHA256:"), "{e}");
        assert!(e.contains("Nothing was run"), "{e}");
        assert!(!touched.exists(), "the command ran despite the wrong host key");
    }
    // The file is left as it was: the wrong key is not replaced.
    assert_eq!(std::fs::read_to_string(&config.known_hosts).unwrap(), server.known_hosts_line(&impostor));
}

#[tokio::test]
async fn an_unknown_host_is_refused_unless_trust_on_first_use_is_on() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let mut config = server.config(&dir);
    // Not even the directory exists yet.
    config.known_hosts = dir.path("fresh/ssh/known_hosts");
    let touched = marker();
    let e = call(&tools(config.clone()).run, &format!("touch {}", touched.display())).await.unwrap_err();
    assert!(e.starts_with("`lab` ("), "{e}");
    assert!(e.contains("is not in known_hosts") && e.contains("trust_on_first_use = true"), "{e}");
    assert!(e.contains(&format!("ssh-keyscan -p {} {}", server.port, server.host)), "{e}");
    assert!(!touched.exists());

    config.trust_on_first_use = true;
    let out = call(&tools(config.clone()).readonly, "uptime").await.unwrap();
    assert_eq!(out["exit_code"], 0, "{out}");
    // No "Permanently added" chatter in the command's output.
    assert_eq!(out["stderr"], "", "{out}");
    let recorded = std::fs::read_to_string(&config.known_hosts).unwrap();
    assert_eq!(recorded, server.known_hosts_line(&server.host_pubkey));

    // Recorded once, the key is checked from then on.
    config.trust_on_first_use = false;
    let out = call(&tools(config).readonly, "uptime").await.unwrap();
    assert_eq!(out["exit_code"], 0, "{out}");
}

/// Local `ssh` processes whose command line holds `needle`.
fn ssh_clients_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| c.split(|b| *b == 0).next().is_some_and(|argv0| argv0.ends_with(b"/ssh") || argv0 == b"ssh"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[tokio::test]
async fn a_command_past_the_timeout_is_stopped_and_ssh_killed() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let mut config = server.config(&dir);
    config.command_timeout_secs = 2;
    let t = tools(config);
    // A duration nothing else sleeps for, so its processes can be found.
    let nap = format!("6.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_007);
    let started = Instant::now();
    let e = call(&t.run, &format!("echo started; sleep {nap}")).await.unwrap_err();
    let took = started.elapsed();
    assert!(e.starts_with("the command on `lab` was stopped after 2 s, its time limit"), "{e}");
    assert!(e.contains("may still be running there"), "{e}");
    assert!(e.contains("stdout (end):\nstarted"), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let left = ssh_clients_with(&nap);
    assert!(left.is_empty(), "the ssh client was left running: {left:?}");
}

#[tokio::test]
async fn output_past_the_cap_is_cut_and_said_so() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let mut config = server.config(&dir);
    config.output_cap_bytes = 10_000;
    let t = tools(config);
    let out = call(&t.run, r"head -c 10000000 /dev/zero | tr '\0' a").await.unwrap();
    let stdout = out["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 10_000);
    assert!(stdout.bytes().all(|b| b == b'a'));
    assert_eq!(out["truncated"], true);
    assert!(out["note"].as_str().unwrap().contains("cut at the output cap"), "{out}");
    // The command itself ran to its end.
    assert_eq!(out["exit_code"], 0, "{out}");
}

#[tokio::test]
async fn a_bad_key_is_a_clear_authentication_error() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let mut config = server.config(&dir);
    let missing = dir.path("no-such-key");
    config.hosts.get_mut("lab").unwrap().identity_file = missing.clone();
    let e = call(&tools(config.clone()).readonly, "uptime").await.unwrap_err();
    assert!(e.starts_with(&format!("cannot read the identity file {} of SSH host `lab`", missing.display())), "{e}");
    assert!(e.contains("[ssh.hosts.lab] identity_file"), "{e}");

    // A key the server does not accept.
    let stranger = other_key(&dir, "stranger");
    config.hosts.get_mut("lab").unwrap().identity_file = stranger.clone();
    let e = call(&tools(config).readonly, "uptime").await.unwrap_err();
    let expected =
        format!("SSH host `lab` refused to log in user `{}` with the key {}", server.user, stranger.display());
    assert!(e.starts_with(&expected), "{e}");
    assert!(e.contains("Permission denied") && e.contains("authorized_keys"), "{e}");
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_unreachable() {
    let Some(server) = server() else { return };
    let dir = Dir::new();
    let mut config = server.config(&dir);
    let closed = {
        let listener = std::net::TcpListener::bind((server.host.as_str(), 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    config.hosts.get_mut("lab").unwrap().port = closed;
    let ssh = Ssh::new(config).unwrap();
    let e = ssh.run("lab", "uptime").await.unwrap_err();
    assert!(matches!(e, SshError::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("cannot reach SSH host `lab` at {}:{closed}", server.host)), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
}
