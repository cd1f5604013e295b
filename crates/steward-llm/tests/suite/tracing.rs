use std::io::Write;
use std::sync::{Arc, Mutex};

use steward_core::Llm;
use steward_testkit::Reply;
use tracing_subscriber::fmt::format::FmtSpan;

use super::common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The test runs on one thread, so a thread-local subscriber sees the calls.
#[tokio::test(flavor = "current_thread")]
async fn calls_are_traced_with_outcome_and_tokens_but_never_the_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = server().await;
    server.push(Reply::text("Hello there"));
    let message = format!("Incorrect API key provided: {KEY}");
    server.push(Reply::error(401, "invalid_request_error", Some("invalid_api_key"), &message));
    let llm = provider(&server);
    llm.complete(request("hi")).await.unwrap();
    assert!(llm.complete(request("hi")).await.is_err());

    let logs = captured.text();
    assert!(logs.contains("llm_call"), "{logs}");
    assert!(
        logs.contains("provider=openai") && logs.contains("model=gpt-test") && logs.contains("tier=smart"),
        "{logs}"
    );
    assert!(logs.contains("outcome=\"ok\"") || logs.contains("outcome=ok"), "{logs}");
    assert!(logs.contains("prompt_tokens=") && logs.contains("completion_tokens="), "{logs}");
    assert!(logs.contains("duration_ms="), "{logs}");
    assert!(logs.contains("authentication"), "{logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs:\n{logs}");
}
