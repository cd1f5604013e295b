use serde_json::{json, Value};
use steward_testkit::{Reply, ScriptedLlm};

use super::{free_port, temp_dir, Server};

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = client.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_calling_turn_survives_a_hard_restart() {
    let llm = ScriptedLlm::start().await.unwrap();
    let dir = temp_dir("restart");
    let port = free_port();
    let base = llm.base_url();
    let envs =
        [("OPENAI_BASE_URL", base.as_str()), ("OPENAI_API_KEY", "sk-test-upstream"), ("OPENAI_MODEL", "scripted")];
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &envs));
    let client = reqwest::Client::new();

    llm.push(Reply::tool_call("get_current_time", "{}"));
    llm.push(Reply::text("It is time."));
    let (status, c) = post(&client, format!("{}/api/conversations", server.url), json!({"title": "clock"})).await;
    assert_eq!(status, 201);
    let id = c["id"].as_str().unwrap().to_string();
    let (status, reply) = post(
        &client,
        format!("{}/api/conversations/{id}/messages", server.url),
        json!({"content": "what time is it?"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["content"], "It is time.");
    // The upstream key never reaches the log.
    assert!(!server.log_text().contains("sk-test-upstream"));
    tokio::task::block_in_place(|| server.kill());

    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &envs));
    let detail: Value =
        client.get(format!("{}/api/conversations/{id}", server.url)).send().await.unwrap().json().await.unwrap();
    let messages = detail["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["user", "assistant", "tool", "assistant"], "{detail}");
    assert_eq!(messages[1]["tool_calls"][0]["name"], "get_current_time");
    assert!(messages[2]["content"].as_str().unwrap().contains("utc"));
    assert_eq!(messages[3]["content"], "It is time.");
    assert_eq!(detail["title"], "clock");

    // The conversation continues after the restart with its whole context.
    llm.push(Reply::text("Still time."));
    let (status, _) =
        post(&client, format!("{}/api/conversations/{id}/messages", server.url), json!({"content": "and now?"})).await;
    assert_eq!(status, 200);
    let sent = &llm.chat_requests()[2]["messages"];
    let roles: Vec<&str> = sent.as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["system", "user", "assistant", "tool", "assistant", "user"]);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same server on PostgreSQL, when the test script has started one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_postgresql_when_database_url_says_so() {
    let Ok(pg) = std::env::var("STEWARD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("STEWARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "STEWARD_REQUIRE_POSTGRES=1 but STEWARD_TEST_POSTGRES_URL is unset; start one with `bash scripts/postgres.sh`"
        );
        eprintln!("SKIPPED: set STEWARD_TEST_POSTGRES_URL (bash scripts/postgres.sh) to run this test");
        return;
    };
    let llm = ScriptedLlm::start().await.unwrap();
    let dir = temp_dir("postgres-serve");
    let port = free_port();
    let base = llm.base_url();
    let envs = [("OPENAI_BASE_URL", base.as_str()), ("DATABASE_URL", pg.as_str())];
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &envs));
    let client = reqwest::Client::new();
    let health: Value = client.get(format!("{}/health", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["database"]["backend"], "postgres", "{health}");
    llm.push(Reply::tool_call("get_current_time", "{}"));
    llm.push(Reply::text("Stored in PostgreSQL."));
    let (status, c) = post(&client, format!("{}/api/conversations", server.url), json!({})).await;
    assert_eq!(status, 201);
    let id = c["id"].as_str().unwrap().to_string();
    let (status, _) =
        post(&client, format!("{}/api/conversations/{id}/messages", server.url), json!({"content": "time?"})).await;
    assert_eq!(status, 200);
    tokio::task::block_in_place(|| server.kill());
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &envs));
    let detail: Value =
        client.get(format!("{}/api/conversations/{id}", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["messages"].as_array().unwrap().len(), 4, "{detail}");
    // The password never reaches the log.
    assert!(!server.log_text().contains(":steward@"), "{}", server.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}
