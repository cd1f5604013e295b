use steward_testkit::{Reply, ScriptedLlm};

use super::{free_port, run, steward, temp_dir, Server};

#[test]
fn help_is_available_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["chat", "--help"],
        vec!["ask", "--help"],
        vec!["keys", "new", "--help"],
        vec!["config", "check", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["audit", "list", "--help"],
    ] {
        let out = run(steward().args(&args));
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn keys_new_prints_a_key_and_its_sha256_digest() {
    let out = run(steward().args(["keys", "new"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string();
    let key = field("key:");
    let digest = field("digest:");
    assert!(key.len() > 40);
    assert_eq!(digest, steward_server::digest_hex(&key));
    let again = run(steward().args(["keys", "new"]));
    assert_ne!(String::from_utf8_lossy(&again.stdout), text, "keys must be random");
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_masked() {
    let dir = temp_dir("config-check");
    let out = run(steward()
        .current_dir(&dir)
        .args(["config", "check"])
        .env("OPENAI_API_KEY", "sk-live-very-secret")
        .env("DATABASE_URL", "postgres://steward:pw-secret@db.example:5432/steward")
        .env("API_PORT", "8123"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("port = 8123"));
    assert!(stdout.contains("[llm.providers.openai]"), "{stdout}");
    assert!(stdout.contains("# smart: openai/gpt-4o"), "{stdout}");
    assert!(!stdout.contains("sk-live-very-secret") && !stdout.contains("pw-secret"), "{stdout}");
    assert!(stdout.contains("postgres://steward:***@db.example:5432/steward"));
}

#[test]
fn a_bad_value_stops_the_start_naming_the_key_and_the_fix() {
    let dir = temp_dir("bad-config");
    let out = run(steward().current_dir(&dir).args(["serve"]).env("API_PORT", "http"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("API_PORT") && err.contains("fix:"), "{err}");

    std::fs::write(dir.join("steward.toml"), "[server]\nport = 8000\nbogus = true\n").unwrap();
    let out = run(steward().current_dir(&dir).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("steward.toml:3"), "{err}");

    let out = run(steward().current_dir(&dir).args(["--config", "missing.toml", "config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn a_public_address_without_keys_is_refused() {
    let dir = temp_dir("public-bind");
    let out = run(steward().current_dir(&dir).args(["serve", "--host", "0.0.0.0", "--port", "1"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-loopback") && err.contains("STEWARD_API_KEYS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_prints_the_answer_and_fails_loudly_on_errors() {
    let llm = ScriptedLlm::start().await.unwrap();
    let dir = temp_dir("ask");
    let port = free_port();
    let base = llm.base_url();
    let key = "stw_test_key";
    let digest = steward_server::digest_hex(key);
    let envs = [("OPENAI_BASE_URL", base.as_str()), ("STEWARD_API_KEYS", digest.as_str())];
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &envs));

    llm.push(Reply::text("Forty-two."));
    let out = tokio::task::block_in_place(|| {
        run(steward().args(["ask", "--url", &server.url, "what", "is", "the", "answer?"]).env("STEWARD_API_KEY", key))
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Forty-two.");
    assert_eq!(llm.chat_requests()[0]["messages"][1]["content"], "what is the answer?");

    // What that cost, from the ledger.
    let out = tokio::task::block_in_place(|| {
        run(steward().args(["usage", "--url", &server.url, "--days", "1"]).env("STEWARD_API_KEY", key))
    });
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("1 requests") && report.contains("100% served locally"), "{report}");
    assert!(report.contains("openai/gpt-4o"), "{report}");

    // Wrong key: non-zero exit and the server's reason.
    let out = tokio::task::block_in_place(|| {
        run(steward().args(["ask", "--url", &server.url, "hi"]).env("STEWARD_API_KEY", "nope"))
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid API key"));

    // An upstream failure is an error too.
    llm.push(Reply::error(500, "server_error", None, "boom"));
    let out = tokio::task::block_in_place(|| {
        run(steward().args(["ask", "--url", &server.url, "hi"]).env("STEWARD_API_KEY", key))
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("openai"), "{}", String::from_utf8_lossy(&out.stderr));
    drop(server);

    // No server: non-zero exit saying so.
    let out = tokio::task::block_in_place(|| {
        run(steward().args(["ask", "--url", &format!("http://127.0.0.1:{}", free_port()), "hi"]))
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `steward serve` running?"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_when_asked_and_no_secret_in_them() {
    let llm = ScriptedLlm::start().await.unwrap();
    let dir = temp_dir("json-logs");
    let port = free_port();
    let base = llm.base_url();
    let envs = [
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_API_KEY", "sk-json-secret"),
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "debug"),
    ];
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &envs));
    llm.push(Reply::text("ok"));
    let out = tokio::task::block_in_place(|| run(steward().args(["ask", "--url", &server.url, "hi"])));
    assert!(out.status.success());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = server.log_text();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().any(|l| l["message"] == "steward listening"), "{log}");
    assert!(lines.iter().any(|l| l["message"] == "turn finished" && l["span"]["name"] == "turn"), "{log}");
    assert!(!log.contains("sk-json-secret"));
}

#[test]
fn a_dot_env_file_fills_in_unset_variables() {
    let dir = temp_dir("dotenv");
    std::fs::write(dir.join(".env"), "API_PORT=8765\nLOG_FORMAT=json\n").unwrap();
    let out = run(steward().current_dir(&dir).args(["config", "check"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("port = 8765") && stdout.contains("format = \"json\""), "{stdout}");
    // A variable that is already set wins over .env.
    let out = run(steward().current_dir(&dir).args(["config", "check"]).env("API_PORT", "8766"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("port = 8766"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_answers_for_each_line_and_keeps_one_conversation() {
    use std::io::Write;
    let llm = ScriptedLlm::start().await.unwrap();
    let dir = temp_dir("chat");
    let port = free_port();
    let base = llm.base_url();
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &[("OPENAI_BASE_URL", base.as_str())]));
    llm.push(Reply::text("Hello there."));
    llm.push(Reply::text("Goodbye."));
    let out = tokio::task::block_in_place(|| {
        let mut child = steward()
            .args(["chat", "--url", &server.url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"hi\nbye\n").unwrap();
        child.wait_with_output().unwrap()
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), vec!["Hello there.", "Goodbye."]);
    // Both turns went to one conversation: the second request carried the first exchange.
    let second = &llm.chat_requests()[1]["messages"];
    let contents: Vec<&str> = second.as_array().unwrap()[1..].iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, vec!["hi", "Hello there.", "bye"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--conversation"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_added_in_steward_toml_are_served_as_models() {
    let dir = temp_dir("agents-toml");
    std::fs::write(
        dir.join("steward.toml"),
        "[agents.energy]\npurpose = \"Energy questions.\"\nsystem_prompt = \"You analyse energy.\"\ntools = [\"get_current_time\"]\ntier = \"fast\"\n",
    )
    .unwrap();
    let server = tokio::task::block_in_place(|| Server::start(&dir, free_port(), &[]));
    let models: serde_json::Value =
        reqwest::get(format!("{}/v1/models", server.url)).await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"energy") && ids.contains(&"architect"), "{models}");
    drop(server);

    // An agent that names a tool Steward does not have stops the start.
    std::fs::write(
        dir.join("steward.toml"),
        "[agents.x]\npurpose = \"p\"\nsystem_prompt = \"s\"\ntools = [\"launch_rockets\"]\n",
    )
    .unwrap();
    let out = tokio::task::block_in_place(|| {
        run(steward().current_dir(&dir).args(["serve", "--port", &free_port().to_string()]))
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agents.x") && err.contains("launch_rockets") && err.contains("get_current_time"), "{err}");
    let out = tokio::task::block_in_place(|| run(steward().current_dir(&dir).args(["config", "check"])));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("launch_rockets"));
}
