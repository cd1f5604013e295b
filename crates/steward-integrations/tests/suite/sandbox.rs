//! The analysis-script sandbox against the real bubblewrap: what a hostile
//! or careless script tries, and that the sandbox refuses it without
//! harming the host.
//!
//! Without a working bwrap these tests print why and pass, unless
//! `STEWARD_REQUIRE_SANDBOX=1` (set by `scripts/test.sh`), in which case
//! they fail. `STEWARD_TEST_BWRAP` names another bwrap (a missing path
//! shows what a machine without one sees).

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_core::home::Home;
use steward_core::{Clock, SystemClock, Tool, ToolContext};
use steward_integrations::demo::DemoHome;
use steward_integrations::sandbox::{RunAnalysisScript, RunOutput, Sandbox, SandboxConfig, SandboxError};
use steward_protocol::Effect;

const REQUIRE_VAR: &str = "STEWARD_REQUIRE_SANDBOX";
const BWRAP_VAR: &str = "STEWARD_TEST_BWRAP";
/// The wall clock the tests give a script.
const TIMEOUT_SECS: u64 = 5;

fn small_limits() -> SandboxConfig {
    SandboxConfig {
        memory_mb: 256,
        cpu_secs: 3,
        timeout_secs: TIMEOUT_SECS,
        max_processes: 16,
        output_cap_bytes: 64 * 1024,
        bwrap_path: std::env::var_os(BWRAP_VAR).map(PathBuf::from),
        ..SandboxConfig::default()
    }
}

/// The sandbox, or `None` (after saying why) when this machine has none
/// and none is required.
async fn sandbox(config: SandboxConfig) -> Option<Sandbox> {
    let sandbox = Sandbox::detect(&config).await;
    if sandbox.is_sandboxed() {
        eprintln!("{}", sandbox.describe());
        return Some(sandbox);
    }
    let why = sandbox.unavailable_reason().unwrap_or_default().to_string();
    if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
        panic!("{REQUIRE_VAR}=1 but there is no sandbox: {why}");
    }
    eprintln!("skipping: no sandbox ({why}); set {REQUIRE_VAR}=1 to make this a failure");
    None
}

async fn run(sandbox: &Sandbox, script: &str) -> Result<RunOutput, SandboxError> {
    sandbox.run_python(script, &[]).await
}

/// Processes on the host whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Waits briefly for the kernel to finish tearing a sandbox down.
async fn assert_no_process_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn marker() -> String {
    format!("steward-marker-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn the_network_is_unreachable_including_the_host_s_loopback() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        r#"
import json, socket
results = {{}}
for host, port in [("1.1.1.1", 80), ("127.0.0.1", {port})]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        results[host] = "connected"
    except OSError as e:
        results[host] = type(e).__name__ + ": " + str(e)
try:
    socket.getaddrinfo("example.com", 80)
    results["dns"] = "resolved"
except OSError as e:
    results["dns"] = type(e).__name__
print(json.dumps(results))
"#
    );
    let out = run(&sandbox, &script).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    let results: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    for key in ["1.1.1.1", "127.0.0.1", "dns"] {
        let result = results[key].as_str().unwrap();
        assert!(!result.starts_with("connected") && result != "resolved", "{key}: {result}");
    }
    assert!(results["1.1.1.1"].as_str().unwrap().contains("unreachable"), "{results}");
    assert_eq!(listener.accept().map(|_| ()).unwrap_err().kind(), ErrorKind::WouldBlock, "the host was reached");
}

#[tokio::test]
async fn writes_land_only_in_the_private_tmp_and_the_host_is_out_of_sight() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let name = marker();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let host_tmp = std::env::temp_dir();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let refused: Vec<String> = ["/etc", "/usr", "/", "/dev", "/proc", home.as_str(), &repo.to_string_lossy()]
        .iter()
        .map(|dir| Path::new(dir).join(&name).to_string_lossy().into_owned())
        .collect();
    let host_tmp_file = host_tmp.join(&name).to_string_lossy().into_owned();
    let script = format!(
        r#"
import json, os
def write(path):
    try:
        with open(path, "w") as f:
            f.write("escaped")
        return "written"
    except OSError as e:
        return type(e).__name__
results = {{path: write(path) for path in {refused:?}}}
results["host_tmp"] = write({host_tmp_file:?})
results["scratch"] = write("/tmp/scratch")
results["scratch_back"] = open("/tmp/scratch").read()
results["repo_visible"] = os.path.exists({repo:?})
results["home_listing"] = sorted(os.listdir({home:?})) if os.path.isdir({home:?}) else None
results["shadow"] = os.path.exists("/etc/shadow")
results["tmp"] = sorted(os.listdir("/tmp"))
print(json.dumps(results))
"#,
        repo = repo.to_string_lossy(),
    );
    let out = run(&sandbox, &script).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    let results: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    for path in &refused {
        assert_ne!(results[path], json!("written"), "{path}: {results}");
        assert!(!Path::new(path).exists(), "{path} appeared on the host");
    }
    // Inside, the host's temp directory path is under the private /tmp (or
    // read-only); either way nothing reaches the host's.
    assert!(!Path::new(&host_tmp_file).exists(), "{host_tmp_file} appeared on the host");
    assert_eq!(results["scratch"], json!("written"), "{results}");
    assert_eq!(results["scratch_back"], json!("escaped"));
    assert_eq!(results["repo_visible"], json!(false), "{results}");
    assert!(results["home_listing"].as_array().map(|l| l.is_empty()).unwrap_or(true), "{results}");
    assert_eq!(results["shadow"], json!(false));
    let tmp: Vec<&str> = results["tmp"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(tmp.contains(&"script.py") && tmp.contains(&"scratch"), "{tmp:?}");
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_by_the_process_limit_and_the_host_is_fine() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let tag = marker();
    // Re-executed with the marker as an argument, so every fork carries it
    // in its command line and leftovers can be found on the host.
    let script = format!(
        "import os, sys\n\
if len(sys.argv) < 2:\n    os.execv(sys.executable, [sys.executable, '-I', 'script.py', '{tag}'])\n\
while True:\n    os.fork()\n"
    );
    let started = Instant::now();
    let e = run(&sandbox, &script).await.unwrap_err();
    let SandboxError::ProcessLimit { max, output } = &e else { panic!("{e:?}") };
    assert_eq!(*max, 16);
    assert!(output.stderr.contains("BlockingIOError"), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(TIMEOUT_SECS), "took {:?}", started.elapsed());
    assert!(e.to_string().contains("more than 16 processes"), "{e}");
    assert_no_process_with(&tag).await;
    assert!(std::process::Command::new("true").status().unwrap().success(), "the host cannot start a process");
}

#[tokio::test]
async fn a_fork_bomb_that_ignores_errors_ends_at_the_time_limit_with_nothing_left() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let tag = marker();
    // It keeps trying, but politely (a short sleep after each refusal), so
    // that it does not hog the CPUs of a machine running other tests.
    let script = format!(
        "import os, sys, time\n\
if len(sys.argv) < 2:\n    os.execv(sys.executable, [sys.executable, '-I', 'script.py', '{tag}'])\n\
first, told = os.getpid(), False\n\
while True:\n    try:\n        os.fork()\n    except OSError:\n        \
if os.getpid() == first and not told:\n            print('fork refused', flush=True)\n            told = True\n        \
time.sleep(0.05)\n"
    );
    let started = Instant::now();
    let e = run(&sandbox, &script).await.unwrap_err();
    let SandboxError::Timeout { output, .. } = &e else { panic!("{e:?}") };
    assert_eq!(output.stdout, "fork refused\n", "the process limit did not hold");
    assert!(started.elapsed() < Duration::from_secs(TIMEOUT_SECS + 4), "took {:?}", started.elapsed());
    assert_no_process_with(&tag).await;
    assert!(std::process::Command::new("true").status().unwrap().success(), "the host cannot start a process");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let script = "hoard = []\nwhile True:\n    hoard.append(bytearray(16 * 1024 * 1024))\n";
    let started = Instant::now();
    let e = run(&sandbox, script).await.unwrap_err();
    let SandboxError::MemoryLimit { mb, output } = &e else { panic!("{e:?}") };
    assert_eq!(*mb, 256);
    assert!(output.stderr.contains("MemoryError"), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(TIMEOUT_SECS), "took {:?}", started.elapsed());
    assert!(e.to_string().contains("ran out of memory"), "{e}");
}

#[tokio::test]
async fn a_runaway_loop_is_stopped_at_the_cpu_limit() {
    // A wall clock well past the CPU limit, so that the CPU limit is what
    // stops it even on a busy machine.
    let config = SandboxConfig { cpu_secs: 2, timeout_secs: 20, ..small_limits() };
    let Some(sandbox) = sandbox(config).await else { return };
    let started = Instant::now();
    let e = run(&sandbox, "print('spinning', flush=True)\nwhile True:\n    pass\n").await.unwrap_err();
    let SandboxError::CpuLimit { secs, output } = &e else { panic!("{e:?}") };
    assert_eq!(*secs, 2);
    assert_eq!(output.stdout, "spinning\n");
    // CPU time cannot run ahead of the wall clock.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(20), "took {took:?}");
}

#[tokio::test]
async fn a_script_that_waits_is_killed_at_the_wall_clock_with_what_it_started() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let tag = marker();
    let script = format!(
        "import subprocess, sys, time\n\
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{tag}'])\n\
print('waiting', flush=True)\n\
time.sleep(300)\n"
    );
    let started = Instant::now();
    let e = run(&sandbox, &script).await.unwrap_err();
    let SandboxError::Timeout { secs, output } = &e else { panic!("{e:?}") };
    assert_eq!(*secs, TIMEOUT_SECS);
    assert_eq!(output.stdout, "waiting\n");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(TIMEOUT_SECS) && took < Duration::from_secs(TIMEOUT_SECS + 4), "took {took:?}");
    assert!(e.to_string().contains("time limit"), "{e}");
    assert_no_process_with(&tag).await;
}

#[tokio::test]
async fn an_analysis_reads_its_data_and_prints_a_result() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let data = json!({"entities": {"sensor.t": {"points": [{"t": 0, "value": 20.0}, {"t": 1, "value": 22.5}, {"t": 2, "value": null}]}}});
    let script = "import json, statistics\n\
data = json.load(open('/tmp/data.json'))\n\
values = [p['value'] for p in data['entities']['sensor.t']['points'] if p['value'] is not None]\n\
print(f'mean={statistics.mean(values):.2f} n={len(values)}')\n";
    let files = [("data.json".to_string(), data.to_string().into_bytes())];
    let out = sandbox.run_python(script, &files).await.unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, "mean=21.25 n=2\n"), "{out:?}");
    assert!(out.sandboxed && !out.truncated);
    // A script's own error is reported as its output, not as a limit.
    let out = run(&sandbox, "raise ValueError('bad fit')").await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(out.stderr.contains("ValueError: bad fit"), "{out:?}");
}

#[tokio::test]
async fn nothing_of_steward_s_environment_reaches_the_script() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let secret = format!("hunter2-{}", uuid::Uuid::new_v4().simple());
    // Each test is its own process under nextest; under `cargo test` this
    // only adds a variable nothing else reads.
    std::env::set_var("STEWARD_TEST_FAKE_SECRET", &secret);
    let script = "import json, os\n\
environs = []\n\
for pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n            environs.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n        except OSError:\n            pass\n\
print(json.dumps({'env': dict(os.environ), 'proc': environs}))\n";
    let out = run(&sandbox, script).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(!out.stdout.contains(&secret) && !out.stdout.contains("STEWARD_TEST_FAKE_SECRET"), "{}", out.stdout);
    let seen: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let mut keys: Vec<&str> = seen["env"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    // bwrap sets PWD for --chdir.
    assert_eq!(keys, ["HOME", "LANG", "PATH", "PWD", "TMPDIR"], "{seen}");
    assert_eq!(seen["env"]["HOME"], json!("/tmp"));
}

#[tokio::test]
async fn output_past_the_cap_is_cut_and_the_script_stopped() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let started = Instant::now();
    let out = run(&sandbox, "import sys\nsys.stdout.write('x' * 10_000_000)\nsys.stdout.flush()\n").await.unwrap();
    assert!(out.truncated, "{:?}", (out.exit_code, &out.stderr));
    assert_eq!(out.stdout.len(), 64 * 1024);
    assert!(started.elapsed() < Duration::from_secs(TIMEOUT_SECS), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn the_tool_runs_a_script_over_the_demo_home_s_history() {
    let Some(sandbox) = sandbox(small_limits()).await else { return };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let home = Arc::new(DemoHome::new(clock.clone()));
    let id = "sensor.living_room_temperature";
    let end = clock.now_ms();
    let recorded = home.history(&[id.to_string()], end - 6 * 3_600_000, end).await.unwrap()[0].points.len();
    let tool = RunAnalysisScript::new(home, clock, Arc::new(sandbox));
    assert_eq!(tool.spec().effect, Effect::Read);
    assert!(tool.spec().timeout > Duration::from_secs(TIMEOUT_SECS));
    let code = format!(
        "import json\n\
d = json.load(open('/tmp/data.json'))\n\
e = d['entities']['{id}']\n\
vals = [p['value'] for p in e['points'] if p['value'] is not None]\n\
print(json.dumps({{'name': e['name'], 'unit': e['unit'], 'points': len(e['points']), 'numeric': len(vals), 'span_h': round((d['end'] - d['start']) / 3600000)}}))\n"
    );
    let ctx = ToolContext {
        turn_id: "t".into(),
        conversation_id: "c".into(),
        agent: "data-scientist".into(),
        call_id: "1".into(),
        approval: None,
        progress: None,
    };
    let answer = tool.call(json!({"code": code, "entity_ids": [id], "hours": 6}), &ctx).await.unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["sandboxed"], json!(true), "{answer}");
    assert_eq!(answer["exit_code"], json!(0), "{answer}");
    let result: Value = serde_json::from_str(answer["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(result["points"], json!(recorded), "{result}");
    assert!(result["numeric"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["span_h"], json!(6));
    assert_eq!(result["unit"], json!("°C"), "{result}");
}
