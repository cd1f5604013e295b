//! `steward audit verify` reads the database itself; `steward audit list`
//! asks a running server.

use std::sync::Arc;

use serde_json::json;
use steward_core::{NewAuditEntry, Store, SystemClock};
use steward_store::SqlStore;

use super::{free_port, run, steward, temp_dir, Server};

async fn seed(data_dir: &std::path::Path, n: usize) {
    let store = SqlStore::open_in_dir(data_dir, Arc::new(SystemClock)).await.unwrap();
    for i in 1..=n {
        store
            .append_audit(
                NewAuditEntry::new("agent:architect", "tool.executed", format!("tool{i}"))
                    .with_detail(json!({"outcome": "ok", "password": "hunter2"})),
            )
            .await
            .unwrap();
    }
    store.close().await;
}

fn verify(data_dir: &std::path::Path) -> (i32, String, String) {
    let cwd = data_dir.parent().unwrap_or(data_dir);
    let out = run(steward().current_dir(cwd).args(["audit", "verify", "--data-dir"]).arg(data_dir));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_says_intact_and_names_a_tampered_entry() {
    let dir = temp_dir("audit-verify");
    let data = dir.join("data");

    // No database there: an error, not an empty log that verifies.
    let (code, _, stderr) = tokio::task::block_in_place(|| verify(&data));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no database"), "{stderr}");

    seed(&data, 4).await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| verify(&data));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("audit log intact: 4 entries, head "), "{stdout}");

    // The server lists what is there, and agrees that it is intact.
    let port = free_port();
    let server = tokio::task::block_in_place(|| Server::start(&dir, port, &[]));
    let out = tokio::task::block_in_place(|| {
        run(steward().current_dir(&dir).args(["audit", "list", "--limit", "2", "--url", &server.url]))
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("tool.executed tool1") && stdout.contains("tool2"), "{stdout}");
    assert!(!stdout.contains("tool3"), "{stdout}");
    assert!(!stdout.contains("hunter2") && stdout.contains("[redacted]"), "{stdout}");
    assert!(stdout.contains("audit log intact: 4 entries"), "{stdout}");
    drop(server);

    let store = SqlStore::open_in_dir(&data, Arc::new(SystemClock)).await.unwrap();
    sqlx::query("UPDATE audit_log SET detail = '{\"outcome\":\"failed\"}' WHERE seq = 3")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| verify(&data));
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("audit log broken at entry 3:"), "{stdout}");

    let _ = std::fs::remove_dir_all(&dir);
}
