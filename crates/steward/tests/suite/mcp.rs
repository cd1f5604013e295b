//! `steward mcp list` against real MCP servers (see scripts/mcp.sh):
//! servers from steward.toml and mcp_config.json, with their status and
//! tools. Skipped with the reason when the servers are not installed,
//! unless `STEWARD_REQUIRE_MCP=1`.

use std::path::PathBuf;

use steward_testkit::{Reply, ScriptedLlm};

use super::{free_port, run, steward, temp_dir, Server};

const REQUIRE_VAR: &str = "STEWARD_REQUIRE_MCP";

/// The entry script named by `var`, when it is set and exists.
fn entry(var: &str) -> Option<PathBuf> {
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let found = std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file());
    match (node, found) {
        (true, Some(path)) => Some(path),
        (node, _) => {
            let why = if node { format!("{var} is not set to an existing file") } else { "node is not on PATH".into() };
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_VAR}=1 but {why}; run `bash scripts/mcp.sh` and export what it prints");
            }
            eprintln!("skipping: {why}; run scripts/mcp.sh ({REQUIRE_VAR}=1 makes this a failure)");
            None
        }
    }
}

#[test]
fn mcp_list_shows_every_server_with_its_status_and_tools() {
    let Some(everything) = entry("STEWARD_TEST_MCP_EVERYTHING") else { return };
    let Some(filesystem) = entry("STEWARD_TEST_MCP_FILESYSTEM") else { return };
    let dir = temp_dir("mcp-list");
    let data = dir.join("data");
    let root = dir.join("files");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        dir.join("steward.toml"),
        format!(
            r#"
[mcp_servers.everything]
command = "node"
args = [{everything:?}]
env = {{ EVERYTHING_TOKEN = "toml-env-secret-value" }}
enabled_tools = ["echo", "toggle-simulated-logging"]

[mcp_servers.broken]
command = "/nonexistent/steward-mcp-server"
startup_timeout_secs = 5

[mcp_servers.off]
command = "node"
enabled = false
"#
        ),
    )
    .unwrap();
    std::fs::write(
        data.join("mcp_config.json"),
        serde_json::json!({"mcpServers": {
            "files": {"command": "node", "args": [filesystem, root]},
            "off": {"url": "http://127.0.0.1:9/mcp"}
        }})
        .to_string(),
    )
    .unwrap();

    let out = run(steward().current_dir(&dir).args(["mcp", "list", "--data-dir"]).arg(&data));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A server failed, so the exit says so; the others are listed all the same.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let line =
        |start: &str| stdout.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start}: {stdout}"));
    assert!(line("everything  ok  (node ").contains("index.js"), "{stdout}");
    assert!(line("  everything__echo").ends_with("read"), "{stdout}");
    assert!(line("  everything__toggle-simulated-logging").ends_with("mutate"), "{stdout}");
    assert!(!stdout.contains("everything__get-sum"), "enabled_tools must filter: {stdout}");
    assert!(
        line("broken  failed: cannot start `/nonexistent/steward-mcp-server`").contains("No such file"),
        "{stdout}"
    );
    assert!(line("off  disabled").contains("(node)"), "the steward.toml entry wins: {stdout}");
    assert!(stderr.contains("'off'") && stderr.contains("steward.toml"), "the duplicate is warned about: {stderr}");
    assert!(line("files  ok").contains(filesystem.to_str().unwrap()), "{stdout}");
    assert!(line("  files__write_file").ends_with("destructive"), "{stdout}");
    assert!(line("  files__read_text_file").ends_with("read"), "{stdout}");
    assert!(line("  files__create_directory").ends_with("mutate"), "{stdout}");
    assert!(!stdout.contains("toml-env-secret-value") && !stderr.contains("toml-env-secret-value"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mcp_list_without_servers_says_how_to_add_one_and_a_bad_file_is_named() {
    let dir = temp_dir("mcp-list-none");
    let out = run(steward().current_dir(&dir).args(["mcp", "list", "--data-dir"]).arg(dir.join("data")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("no MCP servers are configured") && stdout.contains("[mcp_servers.<name>]"), "{stdout}");

    let file = dir.join("mcp.json");
    std::fs::write(&file, "{\"mcpServers\": {\"x\": {\"command\": 1}}}").unwrap();
    let out = run(steward().current_dir(&dir).args(["mcp", "list"]).env("STEWARD_MCP_CONFIG", &file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mcp.json: mcpServers.x.command") && stderr.contains("fix:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_gives_the_infra_agent_the_mcp_tools_and_a_failing_server_does_not_stop_it() {
    let Some(everything) = entry("STEWARD_TEST_MCP_EVERYTHING") else { return };
    let llm = ScriptedLlm::start().await.unwrap();
    let dir = temp_dir("mcp-serve");
    std::fs::write(
        dir.join("steward.toml"),
        format!(
            "[mcp_servers.everything]\ncommand = \"node\"\nargs = [{everything:?}]\n\n\
[mcp_servers.broken]\ncommand = \"/nonexistent/steward-mcp-server\"\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let base = llm.base_url();
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &[("OPENAI_BASE_URL", base.as_str())]));

    llm.push_all([
        Reply::tool_call("everything__echo", serde_json::json!({"message": "ping"}).to_string()),
        Reply::text("It answered: Echo: ping"),
    ]);
    let out = tokio::task::block_in_place(|| {
        run(steward().args([
            "ask",
            "--url",
            &server.url,
            "--agent",
            "infra",
            "is",
            "the",
            "everything",
            "server",
            "up?",
        ]))
    });
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), server.log_text());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Echo: ping"));
    let requests = llm.chat_requests();
    let offered: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(offered.contains(&"everything__echo"), "{offered:?}");
    let result = requests[1]["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(result["content"], "Echo: ping");
    // The failed server is in the log, with its reason.
    let log = server.log_text();
    assert!(log.contains("MCP server failed to start") && log.contains("broken"), "{log}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
