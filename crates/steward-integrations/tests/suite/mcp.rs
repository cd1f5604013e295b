//! The MCP client against real servers: the reference
//! `@modelcontextprotocol/server-everything` (stdio and Streamable HTTP) and
//! `@modelcontextprotocol/server-filesystem` from npm, and two misbehaving
//! servers of our own (`tests/mcp/hang.js`, `tests/mcp/crash.js`, plain Node).
//!
//! `scripts/mcp.sh` installs the npm servers (pinned, into `.ci-state`) and
//! prints `STEWARD_TEST_MCP_EVERYTHING` and `STEWARD_TEST_MCP_FILESYSTEM`,
//! the entry scripts. Without them (or without `node`) these tests print why
//! and pass, unless `STEWARD_REQUIRE_MCP=1` (set by `scripts/test.sh`), in
//! which case they fail.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_core::{Tool, ToolContext, ToolError};
use steward_integrations::mcp::{
    parse_mcp_config_json, McpHub, ServerConfig, ServerStatus, ToolReport, Transport, OUTPUT_CAP,
};
use steward_protocol::Effect;

const REQUIRE_VAR: &str = "STEWARD_REQUIRE_MCP";
const EVERYTHING_VAR: &str = "STEWARD_TEST_MCP_EVERYTHING";
const FILESYSTEM_VAR: &str = "STEWARD_TEST_MCP_FILESYSTEM";

fn skip(why: &str) {
    if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
        panic!("{REQUIRE_VAR}=1 but {why}; run `bash scripts/mcp.sh` and export what it prints");
    }
    eprintln!("skipping: {why}; run scripts/mcp.sh and set {EVERYTHING_VAR}/{FILESYSTEM_VAR} ({REQUIRE_VAR}=1 makes this a failure)");
}

fn has_node() -> bool {
    let ok = Command::new("node").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        skip("node is not on PATH");
    }
    ok
}

/// The entry script named by `var`, when it is set and exists.
fn entry(var: &str) -> Option<PathBuf> {
    if !has_node() {
        return None;
    }
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_file() => Some(p),
        Some(p) => {
            skip(&format!("{var}={} does not exist", p.display()));
            None
        }
        None => {
            skip(&format!("{var} is not set"));
            None
        }
    }
}

/// A script of ours under `tests/mcp`.
fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp").join(name).to_string_lossy().into_owned()
}

fn stdio(name: &str, args: &[&str]) -> ServerConfig {
    ServerConfig::new(
        name,
        Transport::Stdio {
            command: "node".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: BTreeMap::new(),
            cwd: None,
        },
    )
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "turn_test".into(),
        conversation_id: "conv_test".into(),
        agent: "infra".into(),
        call_id: "call_test".into(),
        approval: None,
        progress: None,
    }
}

fn tool(hub: &McpHub, name: &str) -> Arc<dyn Tool> {
    hub.tools()
        .into_iter()
        .find(|t| t.spec().name == name)
        .unwrap_or_else(|| panic!("no tool {name}; the hub has {:?} ({:?})", hub.tool_names(), hub.report()))
}

fn tools_of(hub: &McpHub, server: &str) -> Vec<ToolReport> {
    hub.report().into_iter().find(|r| r.name == server).unwrap().tools
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steward-mcp-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // The filesystem server resolves symlinks in its roots; so do we.
    dir.canonicalize().unwrap()
}

/// server-everything's tools and effects, as the pinned version declares
/// them: every tool is annotated; the toggles and the gzip tool change
/// state (destructiveHint false), the rest only read.
async fn assert_everything_works(hub: &McpHub) {
    assert_eq!(hub.status("everything"), Some(ServerStatus::Running), "{:?}", hub.report());
    let tools = tools_of(hub, "everything");
    let effect = |remote: &str| tools.iter().find(|t| t.remote == remote).map(|t| t.effect);
    for t in &tools {
        assert_eq!(t.name, format!("everything__{}", t.remote));
    }
    for read in ["echo", "get-sum", "get-env", "get-tiny-image"] {
        assert_eq!(effect(read), Some(Effect::Read), "{read}: {tools:?}");
    }
    for mutate in ["toggle-simulated-logging", "gzip-file-as-resource"] {
        assert_eq!(effect(mutate), Some(Effect::Mutate), "{mutate}: {tools:?}");
    }
    assert!(tools.iter().all(|t| t.effect != Effect::Destructive), "{tools:?}");

    let echo = tool(hub, "everything__echo");
    let spec = echo.spec();
    assert_eq!(spec.domain.as_deref(), Some("mcp"));
    assert_eq!(spec.output_cap, OUTPUT_CAP);
    assert_eq!(spec.parameters["type"], "object");
    assert!(spec.parameters["properties"]["message"].is_object(), "{}", spec.parameters);
    assert_eq!(echo.call(json!({"message": "hello from steward"}), &ctx()).await.unwrap(), "Echo: hello from steward");

    let sum = tool(hub, "everything__get-sum").call(json!({"a": 2, "b": 40}), &ctx()).await.unwrap();
    assert!(sum.contains("42"), "{sum}");
    // An image is named and sized, not pasted.
    let image = tool(hub, "everything__get-tiny-image").call(json!({}), &ctx()).await.unwrap();
    assert!(image.contains("[image: image/png, ") && image.len() < 1_000, "{image}");
    // Arguments the server rejects come back as a failure the model can read.
    let bad = tool(hub, "everything__get-sum").call(json!({"a": "two"}), &ctx()).await.unwrap_err();
    assert!(matches!(&bad, ToolError::Failed(m) if m.contains("get-sum")), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_everything_offers_namespaced_tools_with_effects_from_annotations() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let hub = McpHub::start(vec![stdio("everything", &[everything.to_str().unwrap(), "stdio"])]).await;
    assert_everything_works(&hub).await;
    hub.shutdown().await;
}

/// A server-everything in Streamable HTTP mode on a free port, killed on drop.
struct HttpEverything {
    child: Child,
    url: String,
}

impl HttpEverything {
    fn start(entry: &Path) -> HttpEverything {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("node")
            .arg(entry)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = HttpEverything { child, url: format!("http://127.0.0.1:{port}/mcp") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("server-everything (streamableHttp) exited with {status} before listening");
            }
            assert!(Instant::now() < deadline, "server-everything did not listen on {port} within 30s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for HttpEverything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_server_everything_works_the_same() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let server = HttpEverything::start(&everything);
    let config = ServerConfig::new(
        "everything",
        Transport::Http {
            url: server.url.clone(),
            headers: BTreeMap::from([("X-Steward-Test".into(), "header-secret-value".into())]),
        },
    );
    let hub = McpHub::start(vec![config]).await;
    assert_everything_works(&hub).await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_that_goes_away_and_comes_back_is_reopened_by_the_next_call() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let mut server = HttpEverything::start(&everything);
    let port = server.url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/mcp").to_string();
    let mut config = ServerConfig::new("remote", Transport::Http { url: server.url.clone(), headers: BTreeMap::new() });
    config.startup_timeout = Duration::from_secs(20);
    let hub = McpHub::start(vec![config]).await;
    let echo = tool(&hub, "remote__echo");
    assert_eq!(echo.call(json!({"message": "one"}), &ctx()).await.unwrap(), "Echo: one");

    // A restart of the server loses its sessions; ours is reopened.
    let _ = server.child.kill();
    let _ = server.child.wait();
    let child = Command::new("node")
        .arg(&everything)
        .arg("streamableHttp")
        .env("PORT", &port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    server.child = child;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        assert!(Instant::now() < deadline, "server-everything did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The old session is gone with the old process; echo only reads, so the
    // call is made on a new session.
    let again = echo.call(json!({"message": "two"}), &ctx()).await;
    assert_eq!(again.unwrap(), "Echo: two");
    assert_eq!(hub.status("remote"), Some(ServerStatus::Running));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_tools_read_freely_and_declare_writes_destructive() {
    let Some(filesystem) = entry(FILESYSTEM_VAR) else { return };
    let root = temp_dir("fs");
    std::fs::write(root.join("notes.txt"), "the boiler was serviced in May\n").unwrap();
    let hub = McpHub::start(vec![stdio("filesystem", &[filesystem.to_str().unwrap(), root.to_str().unwrap()])]).await;
    assert_eq!(hub.status("filesystem"), Some(ServerStatus::Running), "{:?}", hub.report());
    let tools = tools_of(&hub, "filesystem");
    let effect = |remote: &str| tools.iter().find(|t| t.remote == remote).map(|t| t.effect);
    // As the pinned server annotates them.
    assert_eq!(effect("read_file"), Some(Effect::Read));
    assert_eq!(effect("read_text_file"), Some(Effect::Read));
    assert_eq!(effect("list_directory"), Some(Effect::Read));
    assert_eq!(effect("write_file"), Some(Effect::Destructive));
    assert_eq!(effect("edit_file"), Some(Effect::Destructive));
    assert_eq!(effect("move_file"), Some(Effect::Destructive));
    assert_eq!(effect("create_directory"), Some(Effect::Mutate));

    let listing =
        tool(&hub, "filesystem__list_directory").call(json!({"path": root.to_str().unwrap()}), &ctx()).await.unwrap();
    assert!(listing.contains("[FILE] notes.txt"), "{listing}");
    let text = tool(&hub, "filesystem__read_text_file")
        .call(json!({"path": root.join("notes.txt").to_str().unwrap()}), &ctx())
        .await
        .unwrap();
    assert!(text.contains("serviced in May"), "{text}");
    // Outside its root the server refuses, and the refusal reaches the model.
    let outside = tool(&hub, "filesystem__read_text_file").call(json!({"path": "/etc/hostname"}), &ctx()).await;
    let e = outside.unwrap_err().to_string();
    assert!(e.contains("read_text_file") && e.contains("filesystem"), "{e}");

    // The preview names the tool, the server and the arguments.
    let write = tool(&hub, "filesystem__write_file");
    let args = json!({"path": root.join("new.txt").to_str().unwrap(), "content": "hello"});
    let preview = write.preview(&args, &ctx()).await.unwrap();
    assert!(preview.summary.starts_with("call write_file on MCP server filesystem with "), "{}", preview.summary);
    assert!(preview.details.unwrap().contains("\"content\": \"hello\""));
    assert!(!root.join("new.txt").exists(), "a preview must not write");
    hub.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_times_out_with_a_clear_error_while_others_keep_working() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let mut hang = stdio("hang", &[&script("hang.js")]);
    hang.tool_timeout = Duration::from_secs(2);
    let mut stuck = stdio("stuck", &[&script("hang.js"), "list"]);
    stuck.startup_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let hub = McpHub::start(vec![hang, stuck, stdio("everything", &[everything.to_str().unwrap()])]).await;
    // Servers start concurrently: the stuck one costs its timeout once.
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    match hub.status("stuck") {
        Some(ServerStatus::Failed(reason)) => {
            assert!(reason.contains("within 2s") && reason.contains("startup_timeout_secs"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(hub.tool_names().iter().all(|n| !n.starts_with("stuck__")));
    assert_eq!(hub.status("hang"), Some(ServerStatus::Running));

    let wait = tool(&hub, "hang__wait");
    let echo = tool(&hub, "everything__echo");
    let call_started = Instant::now();
    let context = ctx();
    let (waited, echoed) =
        tokio::join!(wait.call(json!({}), &context), echo.call(json!({"message": "still here"}), &context));
    let e = waited.unwrap_err().to_string();
    assert!(e.contains("MCP server 'hang'") && e.contains("within 2s") && e.contains("tool_timeout_secs"), "{e}");
    assert!(call_started.elapsed() < Duration::from_secs(10), "{:?}", call_started.elapsed());
    assert_eq!(echoed.unwrap(), "Echo: still here");
    // A timeout is not a death: the server stays up.
    assert_eq!(hub.status("hang"), Some(ServerStatus::Running));
    // The engine's own limit leaves room for a restart and the server's timeout.
    assert!(wait.spec().timeout > Duration::from_secs(2));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_server_is_reported_and_the_others_keep_working() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let hub = McpHub::start(vec![
        stdio("broken", &[&script("crash.js"), "start"]),
        stdio("flaky", &[&script("crash.js"), "call"]),
        stdio("everything", &[everything.to_str().unwrap()]),
    ])
    .await;
    // Dead at start: reported, with what it said on stderr.
    match hub.status("broken") {
        Some(ServerStatus::Failed(reason)) => assert!(reason.contains("cannot open the database"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Dies on every call: restarted once, then reported.
    let e = tool(&hub, "flaky__boom").call(json!({}), &ctx()).await.unwrap_err().to_string();
    assert!(e.contains("MCP server 'flaky'") && e.contains("stopped again") && e.contains("segmentation fault"), "{e}");
    assert!(matches!(hub.status("flaky"), Some(ServerStatus::Failed(_))), "{:?}", hub.status("flaky"));
    let echo = tool(&hub, "everything__echo");
    assert_eq!(echo.call(json!({"message": "fine"}), &ctx()).await.unwrap(), "Echo: fine");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_died_is_restarted_and_a_change_is_never_sent_twice() {
    if !has_node() {
        return;
    }
    let dir = temp_dir("crash-once");
    // A read-only call that killed the server is repeated on the restarted one.
    let marker = dir.join("read-crashed");
    let hub = McpHub::start(vec![stdio("once", &[&script("crash.js"), "once", marker.to_str().unwrap()])]).await;
    let out = tool(&hub, "once__boom").call(json!({}), &ctx()).await.unwrap();
    assert!(out.starts_with("survived"), "{out}");
    assert!(marker.exists(), "the first server did not crash");
    assert_eq!(hub.status("once"), Some(ServerStatus::Running));
    hub.shutdown().await;

    // A change that killed it is not repeated: it may have happened.
    let marker = dir.join("change-crashed");
    let hub = McpHub::start(vec![stdio("once", &[&script("crash.js"), "once", marker.to_str().unwrap()])]).await;
    let zap = tool(&hub, "once__zap");
    assert_eq!(zap.spec().effect, Effect::Mutate);
    let e = zap.call(json!({}), &ctx()).await.unwrap_err().to_string();
    assert!(e.contains("stopped during the call of 'zap'") && e.contains("not repeated"), "{e}");
    // It was restarted, so asking again works.
    assert!(zap.call(json!({}), &ctx()).await.unwrap().starts_with("survived"));
    assert_eq!(hub.status("once"), Some(ServerStatus::Running));
    hub.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_command_fails_with_the_reason_and_a_disabled_server_is_not_started() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let mut bad = stdio("missing", &[]);
    bad.transport = Transport::Stdio {
        command: "/nonexistent/steward-mcp-server".into(),
        args: vec![],
        env: BTreeMap::new(),
        cwd: None,
    };
    let mut off = stdio("off", &[&script("crash.js"), "start"]);
    off.enabled = false;
    let hub = McpHub::start(vec![bad, off, stdio("everything", &[everything.to_str().unwrap()])]).await;
    match hub.status("missing") {
        Some(ServerStatus::Failed(reason)) => {
            assert!(reason.contains("cannot start `/nonexistent/steward-mcp-server`"), "{reason}");
            assert!(reason.contains("No such file"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hub.status("off"), Some(ServerStatus::Disabled));
    assert_eq!(ServerStatus::Disabled.to_string(), "disabled");
    let report = hub.report();
    assert_eq!(report.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["everything", "missing", "off"]);
    assert!(report.iter().filter(|r| r.name != "everything").all(|r| r.tools.is_empty()));
    assert_eq!(tool(&hub, "everything__echo").call(json!({"message": "ok"}), &ctx()).await.unwrap(), "Echo: ok");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_and_disabled_tool_lists_filter_what_is_offered() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let mut only = stdio("only", &[everything.to_str().unwrap()]);
    only.enabled_tools = Some(vec!["echo".into(), "get-sum".into(), "no-such-tool".into()]);
    only.disabled_tools = vec!["get-sum".into()];
    let mut most = stdio("most", &[everything.to_str().unwrap()]);
    most.disabled_tools = vec!["get-env".into()];
    let hub = McpHub::start(vec![only, most]).await;
    let names = hub.tool_names();
    let of = |server: &str| names.iter().filter(|n| n.starts_with(&format!("{server}__"))).cloned().collect::<Vec<_>>();
    assert_eq!(of("only"), ["only__echo"]);
    let most = of("most");
    assert!(most.contains(&"most__echo".to_string()) && !most.contains(&"most__get-env".to_string()), "{most:?}");
    assert!(most.len() > 5, "{most:?}");
    let report = hub.report();
    let only = report.iter().find(|r| r.name == "only").unwrap();
    assert_eq!(only.unknown_filters, ["no-such-tool"]);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_gets_its_own_environment_not_stewards() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let mut config = stdio("everything", &[everything.to_str().unwrap()]);
    if let Transport::Stdio { env, .. } = &mut config.transport {
        env.insert("STEWARD_MCP_TEST_TOKEN".into(), "token-for-the-server".into());
    }
    let hub = McpHub::start(vec![config]).await;
    let out = tool(&hub, "everything__get-env").call(json!({}), &ctx()).await.unwrap();
    let env: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = env.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(env["STEWARD_MCP_TEST_TOKEN"], "token-for-the-server");
    // Only the default variables and its own (cargo's and the test
    // environment's many variables stay out); node may add a few.
    let expected = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "TZ"];
    let unexpected: Vec<&&str> =
        keys.iter().filter(|k| !expected.contains(k) && **k != "STEWARD_MCP_TEST_TOKEN").collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert!(!keys.iter().any(|k| k.starts_with("CARGO")), "{keys:?}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_a_failing_server_prints_is_not_repeated_in_its_status() {
    if !has_node() {
        return;
    }
    let mut config = stdio("leaky", &["-e", "console.error('token is ' + process.env.API_TOKEN); process.exit(1)"]);
    if let Transport::Stdio { env, .. } = &mut config.transport {
        env.insert("API_TOKEN".into(), "sekrit-token-123".into());
    }
    let hub = McpHub::start(vec![config]).await;
    match hub.status("leaky") {
        Some(ServerStatus::Failed(reason)) => {
            assert!(reason.contains("token is ********") && !reason.contains("sekrit"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_config_json_servers_of_both_shapes_start() {
    let Some(everything) = entry(EVERYTHING_VAR) else { return };
    let Some(filesystem) = entry(FILESYSTEM_VAR) else { return };
    let http = HttpEverything::start(&everything);
    let root = temp_dir("json");
    let dir = temp_dir("json-config");
    let file = dir.join("mcp_config.json");
    let text = json!({"mcpServers": {
        "files": {"command": "node", "args": [filesystem, root], "env": {"NODE_NO_WARNINGS": "1"}},
        "remote": {"url": http.url, "headers": {"Authorization": "Bearer not-checked"}},
        "old": {"command": "node", "args": ["-e", "1"], "disabled": true}
    }})
    .to_string();
    std::fs::write(&file, &text).unwrap();
    let servers = parse_mcp_config_json(&std::fs::read_to_string(&file).unwrap(), &file).unwrap();
    assert_eq!(servers.len(), 3);
    let hub = McpHub::start(servers).await;
    assert_eq!(hub.status("files"), Some(ServerStatus::Running), "{:?}", hub.report());
    assert_eq!(hub.status("remote"), Some(ServerStatus::Running), "{:?}", hub.report());
    assert_eq!(hub.status("old"), Some(ServerStatus::Disabled));
    assert!(hub.tool_names().contains(&"files__list_directory".to_string()));
    assert_eq!(
        tool(&hub, "remote__echo").call(json!({"message": "via json"}), &ctx()).await.unwrap(),
        "Echo: via json"
    );
    hub.shutdown().await;

    // A broken file: the error names it and says where.
    std::fs::write(&file, "{\"mcpServers\": {\"files\": {\"command\": \"node\",}}}").unwrap();
    let errors = parse_mcp_config_json(&std::fs::read_to_string(&file).unwrap(), &file).unwrap_err();
    let shown = errors[0].to_string();
    assert!(
        shown.contains(&file.display().to_string()) && shown.contains("not valid JSON") && shown.contains("fix:"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&dir);
}
