//! What the Home Assistant client says when HA_URL or HA_TOKEN is wrong,
//! or when something other than Home Assistant answers: each a clear error,
//! quickly, never a hang. And how it gets over a dropped connection. These
//! run without a real Home Assistant, against the stand-ins in `fake_ha`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use steward_core::home::{Home, HomeError};
use steward_core::{Clock, SystemClock};
use steward_integrations::homeassistant::{HomeAssistant, Options};

use super::fake_ha::{closed_port, html_server, silent_server, state, websocket_saying, FakeHa};
use super::ha_harness::{changed_to, eventually};

const TOKEN: &str = "a-long-lived-token-that-must-never-show";

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn quick() -> Options {
    Options {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        reconnect_wait: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..Options::default()
    }
}

/// Connects expecting a failure, within `limit`; the error must not carry the token.
async fn failure(url: &str, token: &str, limit: Duration) -> HomeError {
    let started = Instant::now();
    let result = tokio::time::timeout(limit * 2, HomeAssistant::connect_with(url, token, clock(), quick())).await;
    let elapsed = started.elapsed();
    let error = match result {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => panic!("connecting to {url} succeeded"),
        Err(_) => panic!("connecting to {url} hung for {:?}", limit * 2),
    };
    assert!(elapsed <= limit, "took {elapsed:?} to fail: {error}");
    assert!(!error.to_string().contains(token) && !format!("{error:?}").contains(token), "{error}");
    error
}

#[tokio::test]
async fn an_unreachable_url_names_the_url_and_the_cause() {
    let url = closed_port().await;
    match failure(&url, TOKEN, Duration::from_secs(2)).await {
        e @ HomeError::Unreachable { .. } => {
            let text = e.to_string();
            assert!(text.contains(&url) && text.to_lowercase().contains("refused"), "{text}");
            assert!(text.contains("HA_URL"), "{text}");
            assert!(e.is_transient());
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_html_page_is_an_unexpected_reply_quoting_it() {
    let url = html_server().await;
    match failure(&url, TOKEN, Duration::from_secs(2)).await {
        HomeError::UnexpectedReply(what) => {
            assert!(
                what.contains("HTTP 200") && what.contains("<!DOCTYPE html><html><head><title>Router login"),
                "{what}"
            );
            assert!(what.len() < 400, "a short piece, not the whole page: {what}");
        }
        other => panic!("expected UnexpectedReply, got {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_that_is_not_home_assistant_is_an_unexpected_reply() {
    let url = websocket_saying("hello, this is a chat server").await;
    match failure(&url, TOKEN, Duration::from_secs(2)).await {
        HomeError::UnexpectedReply(what) => assert!(what.contains("hello, this is a chat server"), "{what}"),
        other => panic!("expected UnexpectedReply, got {other:?}"),
    }
    let url = websocket_saying(r#"{"type": "welcome"}"#).await;
    match failure(&url, TOKEN, Duration::from_secs(2)).await {
        HomeError::UnexpectedReply(what) => {
            assert!(what.contains("auth_required") && what.contains("welcome"), "{what}")
        }
        other => panic!("expected UnexpectedReply, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let url = silent_server().await;
    match failure(&url, TOKEN, Duration::from_secs(3)).await {
        e @ HomeError::Timeout { .. } => assert!(e.to_string().contains(&url), "{e}"),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_token_names_ha_token() {
    let fake = FakeHa::start("the-right-token", vec![]).await;
    match failure(&fake.url, TOKEN, Duration::from_secs(2)).await {
        e @ HomeError::Unauthorized(_) => {
            let text = e.to_string();
            assert!(text.contains("HA_TOKEN") && text.contains("Invalid access token"), "{text}");
            assert!(!e.is_transient());
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(matches!(failure(&fake.url, "  ", Duration::from_secs(1)).await, HomeError::Unauthorized(_)));
}

#[tokio::test]
async fn urls_that_cannot_be_home_assistant_are_refused_at_once() {
    for url in ["homeassistant.local:8123", "ftp://ha.local", "not a url", ""] {
        match failure(url, TOKEN, Duration::from_millis(200)).await {
            HomeError::InvalidRequest { why, .. } => assert!(why.contains("HA_URL"), "{url}: {why}"),
            other => panic!("{url}: expected InvalidRequest, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_dropped_connection_is_reopened_and_the_cache_catches_up() {
    let fake = FakeHa::start(TOKEN, vec![state("light.porch", "off"), state("switch.pump", "on")]).await;
    let ha = HomeAssistant::connect_with(&fake.url, TOKEN, clock(), quick()).await.unwrap();
    assert!(!format!("{ha:?}").contains(TOKEN), "{ha:?}");
    assert_eq!(ha.entity("light.porch").await.unwrap().state, "off");
    let mut events = ha.subscribe();

    // While the connection is down the porch light goes on and the pump goes away.
    fake.set_states(vec![state("light.porch", "on")]);
    fake.drop_connections();
    let change = changed_to(&mut events, "light.porch", "on").await;
    assert_eq!(change.old.map(|o| o.state).as_deref(), Some("off"));
    assert_eq!(ha.entity("light.porch").await.unwrap().state, "on");
    assert!(matches!(ha.entity("switch.pump").await, Err(HomeError::NotFound { .. })));
    assert_eq!(fake.connections.load(Ordering::SeqCst), 2);
    assert!(ha.is_connected());

    // Commands work on the new connection, whose ids start again from 1.
    match ha.command(serde_json::json!({"type": "no/such_command"})).await {
        Err(HomeError::UnexpectedReply(what)) => assert!(what.contains("no/such_command"), "{what}"),
        other => panic!("expected UnexpectedReply, got {other:?}"),
    }
    assert!(fake.id_problems.lock().unwrap().is_empty(), "{:?}", fake.id_problems.lock().unwrap());
}

#[tokio::test]
async fn calls_fail_as_unreachable_when_home_assistant_stays_away() {
    let fake = FakeHa::start(TOKEN, vec![state("light.porch", "off")]).await;
    let options = Options { reconnect_wait: Duration::from_millis(500), ..quick() };
    let ha = HomeAssistant::connect_with(&fake.url, TOKEN, clock(), options).await.unwrap();
    fake.stop().await;
    eventually("the client noticing", 5, || async { (!ha.is_connected()).then_some(()) }).await;
    let started = Instant::now();
    match ha.entity("light.porch").await {
        Err(e @ HomeError::Unreachable { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&fake.url) && text.contains("reconnecting"), "{text}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    match ha.logs().await {
        Err(HomeError::Unreachable { .. }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
