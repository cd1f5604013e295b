//! Mission Control, the web dashboard: every view renders from the demo
//! home and real conversations; what people or models wrote is escaped;
//! the login page, the session cookie and its CSRF check; the assets and
//! the Content-Security-Policy.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use steward_core::home::catalog::spawn_catalog_sync;
use steward_core::home::tools::home_tools;
use steward_core::home::Home;
use steward_core::tools::CurrentTime;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Store, SystemClock, ToolRegistry,
};
use steward_integrations::DemoHome;
use steward_protocol::api::CatalogEntity;
use steward_server::{app, digest_hex, parse_digest, ApiKeys, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::Reply as Scripted;

use super::{Harness, Reply};

const KEY: &str = "sk-dashboard-test-key";
const VIEWS: [&str; 8] =
    ["/", "/ui/activity", "/ui/approvals", "/ui/tasks", "/ui/home", "/ui/usage", "/ui/audit", "/ui/snapshots"];

/// The demo home behind a strict policy, its catalog synced into a real
/// SQLite store, a scripted model, and API keys when `keys` is set.
async fn dashboard(keys: bool) -> Harness {
    let dir = std::env::temp_dir().join(format!("steward-dashboard-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(clock.clone()));
    let (llm, scripted) = super::scripted_model().await;
    let mut tools = ToolRegistry::new();
    tools.register(Arc::new(CurrentTime::new(clock.clone())));
    for tool in home_tools(home.clone(), clock.clone()) {
        tools.register(tool);
    }
    let engine = Engine::with_options(
        EngineParts {
            llm: Arc::new(llm),
            store: store.clone(),
            tools,
            agents: AgentRegistry::builtin(),
            clock: clock.clone(),
            limits: EngineLimits::default(),
        },
        Arc::new(steward_core::policy::StrictPolicy),
        EngineOptions { home: Some(home.clone()), ..EngineOptions::default() },
    );
    let digests = if keys { vec![parse_digest(&digest_hex(KEY)).unwrap()] } else { Vec::new() };
    let settings = ServerSettings { api_keys: ApiKeys::new(digests), max_body_bytes: 64 * 1024 };
    let kept: Arc<dyn Store> = store.clone();
    let _sync = spawn_catalog_sync(home.clone(), kept, Duration::from_millis(50));
    let expected = home.entities().await.unwrap().len();
    for _ in 0..250 {
        let (_, total) = store.list_entities(&Default::default()).await.unwrap();
        if total == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Harness { app: app(AppState::new(engine, settings)), llm: Some(scripted), store, dir }
}

async fn get_with(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    h.send(request.body(Body::empty()).unwrap()).await
}

async fn post_with(h: &Harness, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::post(path).header("content-type", "application/json").header("host", "steward.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    h.send(request.body(Body::from(body.to_string())).unwrap()).await
}

/// A served page: HTML, the strict policy, and no inline script or style.
fn assert_page(r: &Reply, path: &str) -> String {
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8", "{path}");
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let text = r.text();
    for (i, _) in text.match_indices("<script") {
        let tag = &text[i..text[i..].find('>').map(|e| i + e).unwrap_or(text.len())];
        assert!(tag.contains("src=\"/ui/assets/"), "{path}: an inline script: {tag}");
    }
    for tag in tags(&text) {
        assert!(!tag.contains(" style="), "{path}: an inline style: {tag}");
        let handler = tag.split_whitespace().any(|a| a.starts_with("on") && a.contains('='));
        assert!(!handler, "{path}: an inline event handler: {tag}");
    }
    text
}

/// The markup's tags (`<…>`), not the text between them.
fn tags(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else { break };
        out.push(&rest[start..start + len + 1]);
        rest = &rest[start + len + 1..];
    }
    out
}

#[tokio::test]
async fn every_view_renders_with_the_homes_and_the_conversations_content() {
    let h = dashboard(false).await;
    for path in VIEWS {
        let text = assert_page(&h.get(path).await, path);
        // The navigation bar, with this view marked.
        for label in ["Chat", "Activity", "Approvals", "Tasks", "Home", "Usage", "Audit", "Snapshots"] {
            assert!(text.contains(&format!(">{label}</a>")), "{path}: no {label} link");
        }
        assert!(text.contains(&format!("<a href=\"{path}\" aria-current=\"page\">")), "{path}");
        assert!(!text.contains("Log out"), "no login, so no logout: {path}");
    }

    // Home: areas, entities with their states, sparklines of the last day.
    let home = h.get("/ui/home").await.text();
    assert!(home.contains("<h2>Kitchen</h2>"), "{home}");
    assert!(home.contains("Kitchen Ceiling") && home.contains("light.kitchen_ceiling"), "{home}");
    assert!(home.contains("<polyline class=\"line\""), "a numeric sensor's line");
    assert!(home.contains("class=\"strip-on\""), "a light's on/off strip");
    let searched = h.get("/ui/home?q=front%20door").await.text();
    assert!(searched.contains("lock.front_door"), "{searched}");
    assert!(!searched.contains("light.kitchen_ceiling"), "the search narrows the list");

    // Chat: agents from the registry, a conversation and its messages.
    let chat = h.get("/").await.text();
    assert!(chat.contains("<option value=\"architect\" selected>"), "{chat}");
    assert!(chat.contains("<option value=\"data-scientist\""), "{chat}");
    h.llm().push(Scripted::text("The kitchen is at 21 degrees."));
    let c = h.post_json("/api/conversations", json!({"title": "Kitchen check"})).await.json();
    let id = c["id"].as_str().unwrap();
    let r = h.post_json(&format!("/api/conversations/{id}/messages"), json!({"content": "how warm is it?"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let chat = assert_page(&h.get(&format!("/?c={id}")).await, "/?c=");
    assert!(chat.contains("Kitchen check"), "listed");
    assert!(chat.contains("how warm is it?") && chat.contains("The kitchen is at 21 degrees."), "{chat}");
    assert!(chat.contains(&format!("data-conversation=\"{id}\"")), "{chat}");

    // A change asked for by the model waits on Approvals with its preview.
    let approvals = h.get("/ui/approvals").await.text();
    assert!(approvals.contains("Nothing is waiting for a decision."), "{approvals}");
    h.llm().push(Scripted::tool_call(
        "control_entity",
        json!({"entity_id": "light.kitchen_ceiling", "action": "turn_on"}).to_string(),
    ));
    let r = h.post_json(&format!("/api/conversations/{id}/messages"), json!({"content": "light please"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let pending = h.get("/api/proposals?status=pending").await.json();
    let approval = pending["proposals"][0]["id"].as_str().unwrap().to_string();
    let approvals = h.get("/ui/approvals").await.text();
    assert!(approvals.contains(&format!("data-post=\"/api/proposals/{approval}/approve\"")), "{approvals}");
    assert!(approvals.contains("light.turn_on on Kitchen Ceiling"), "{approvals}");
    assert!(approvals.contains("<code>light.kitchen_ceiling</code> — now <em>"), "target with its state: {approvals}");
    // The fragment the page refreshes live is the list alone.
    let fragment = h.get("/ui/approvals?fragment=1").await;
    assert_eq!(fragment.status, 200);
    assert!(fragment.text().starts_with("<h2>Pending"), "{}", fragment.text());
    assert!(!fragment.text().contains("<html"));
    // Approved, it runs, the history shows it, and so does Home.
    let r = h.post_json(&format!("/api/proposals/{approval}/approve"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let approvals = h.get("/ui/approvals").await.text();
    assert!(approvals.contains("<table id=\"history\">") && approvals.contains("executed"), "{approvals}");
    let mut on = false;
    for _ in 0..100 {
        let home = h.get("/ui/home?q=kitchen%20ceiling").await.text();
        if home.contains("<td class=\"state on\">on</td>") {
            on = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(on, "the light shows on after the approved change");

    // Audit: the chain verifies and the decision is in it.
    let audit = h.get("/ui/audit").await.text();
    assert!(audit.contains("The hash chain verifies"), "{audit}");
    assert!(audit.contains("approval."), "{audit}");
    // Usage: the model calls are counted.
    let usage = h.get("/ui/usage").await.text();
    assert!(usage.contains("id=\"usage-requests\""), "{usage}");
    assert!(usage.contains("<h2>By provider</h2>"), "{usage}");
    // Activity and Snapshots are frames their script fills from the API.
    let activity = h.get("/ui/activity").await.text();
    assert!(activity.contains("<ol id=\"activity\" class=\"activity\" data-activity>"), "{activity}");
    let snapshots = h.get("/ui/snapshots").await.text();
    assert!(snapshots.contains("<form id=\"snapshot-save\"") && snapshots.contains("<table id=\"snapshots\">"));
    let script = h.get("/ui/assets/app.js").await.text();
    for call in ["\"/api/state\"", "\"/api/state/save\"", "\"/api/state/load\"", "\"/api/events?after=\""] {
        assert!(script.contains(call), "the script calls {call}");
    }
    // Tasks: none, and says why.
    let tasks = h.get("/ui/tasks").await.text();
    assert!(tasks.contains("Tasks are not enabled on this server"), "{tasks}");
}

#[tokio::test]
async fn what_people_models_and_the_home_wrote_is_escaped() {
    let h = dashboard(false).await;
    let evil = "<script>alert('x')</script>";
    h.llm().push(Scripted::text(format!("Sure: {evil} <img src=x onerror=alert(1)>")));
    let c = h.post_json("/api/conversations", json!({"title": evil})).await.json();
    let id = c["id"].as_str().unwrap();
    let r = h.post_json(&format!("/api/conversations/{id}/messages"), json!({"content": evil})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let chat = assert_page(&h.get(&format!("/?c={id}")).await, "chat");
    assert!(!chat.contains(evil), "{chat}");
    assert!(!chat.contains("<img src=x"), "{chat}");
    assert!(chat.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "{chat}");
    assert!(chat.contains("&lt;img src=x onerror=alert(1)&gt;"), "{chat}");

    let store: Arc<dyn Store> = h.store.clone();
    store
        .upsert_entity(&CatalogEntity {
            entity_id: "sensor.evil".into(),
            domain: "sensor".into(),
            name: format!("Evil {evil}"),
            aliases: Vec::new(),
            area_id: Some("kitchen".into()),
            area: Some("Kitchen\"><b>".into()),
            device_id: None,
            device: None,
            state: "<b>on</b>".into(),
            attributes: json!({"unit_of_measurement": "<i>"}),
            last_changed: 0,
            last_updated: 0,
            available: true,
        })
        .await
        .unwrap();
    let home = assert_page(&h.get("/ui/home?q=evil").await, "home");
    assert!(home.contains("Evil &lt;script&gt;"), "{home}");
    assert!(!home.contains(evil) && !home.contains("<b>") && !home.contains("<i>"), "{home}");
    // A search echoed back into the page stays text.
    let searched = assert_page(&h.get("/ui/home?q=%22%3E%3Cscript%3Ex").await, "search");
    assert!(searched.contains("value=\"&quot;&gt;&lt;script&gt;x\""), "{searched}");
}

#[tokio::test]
async fn assets_are_served_with_their_types_and_the_policy() {
    let h = dashboard(true).await;
    // No login needed: the login page itself uses them, and they hold no data.
    for (path, kind, marker) in [
        ("/ui/assets/app.js", "text/javascript; charset=utf-8", "X-Steward-Dashboard"),
        ("/ui/assets/app.css", "text/css; charset=utf-8", "header.top"),
        ("/ui/assets/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = h.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], kind, "{path}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        assert!(r.headers.contains_key("content-security-policy"), "{path}");
        assert!(r.text().contains(marker), "{path}");
    }
    assert!(!h.get("/ui/assets/app.js").await.text().contains(KEY));
}

fn session_cookie(r: &Reply) -> String {
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    let (pair, attributes) = set.split_once(';').unwrap();
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(wanted), "{set}");
    }
    // A session cookie: it ends with the browser session.
    assert!(!attributes.contains("Max-Age") && !attributes.contains("Expires"), "{set}");
    // It carries a session id, never the key.
    assert!(!set.contains(KEY), "{set}");
    pair.to_string()
}

#[tokio::test]
async fn with_keys_a_browser_logs_in_and_its_cookie_works_for_the_api_with_a_csrf_check() {
    let h = dashboard(true).await;
    // Every view sends a browser without a session to the login page.
    for path in VIEWS {
        let r = h.get(path).await;
        assert_eq!(r.status, 303, "{path}: {}", r.text());
        let location = r.headers["location"].to_str().unwrap();
        assert!(location.starts_with("/ui/login?next="), "{path}: {location}");
    }
    let r = h.get("/ui/home").await;
    assert_eq!(r.headers["location"], "/ui/login?next=%2Fui%2Fhome");
    let form = assert_page(&h.get("/ui/login?next=%2Fui%2Fhome").await, "login");
    assert!(form.contains("type=\"password\"") && form.contains("value=\"/ui/home\""), "{form}");
    // The API still answers 401 in JSON.
    let r = h.get("/api/conversations").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "invalid_api_key");

    // A wrong key: the form again, no cookie.
    let login = |body: String, origin: Option<&'static str>| {
        let mut request = Request::post("/ui/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", "steward.test");
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        request.body(Body::from(body)).unwrap()
    };
    let r = h.send(login("key=sk-wrong&next=%2Fui%2Fhome".into(), Some("http://steward.test"))).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("not one of this server&#39;s API keys"), "{}", r.text());
    assert!(!r.headers.contains_key("set-cookie"));
    // A login form posted from another site is refused.
    let r = h.send(login(format!("key={KEY}&next=%2F"), Some("http://evil.example"))).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.headers.contains_key("set-cookie"));
    // The right key: a session cookie and back where the browser was going.
    let r = h.send(login(format!("key={KEY}&next=%2Fui%2Fhome"), Some("http://steward.test"))).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.headers["location"], "/ui/home");
    let cookie = session_cookie(&r);
    // Never redirected off the server.
    let r = h.send(login(format!("key={KEY}&next=%2F%2Fevil.example"), None)).await;
    assert_eq!(r.headers["location"], "/");

    let with_cookie = [("cookie", cookie.as_str())];
    for path in VIEWS {
        let text = assert_page(&get_with(&h, path, &with_cookie).await, path);
        assert!(text.contains("Log out"), "{path}");
        assert!(!text.contains(KEY), "{path}: the key is in the page");
    }
    let r = get_with(&h, "/api/conversations", &with_cookie).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Changes with the cookie need the dashboard's header or this server's Origin.
    let r = post_with(&h, "/api/conversations", "{}", &with_cookie).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("X-Steward-Dashboard"));
    let r = post_with(&h, "/api/conversations", "{}", &[with_cookie[0], ("origin", "http://evil.example")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post_with(&h, "/api/conversations", "{}", &[with_cookie[0], ("x-steward-dashboard", "1")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post_with(&h, "/api/conversations", "{}", &[with_cookie[0], ("origin", "http://steward.test")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The session's actor is the key's, as with the bearer key.
    let actor = format!("user:{}", &digest_hex(KEY)[..8]);
    h.llm().push(Scripted::tool_call(
        "control_entity",
        json!({"entity_id": "light.hallway", "action": "turn_on"}).to_string(),
    ));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = post_with(
        &h,
        &format!("/api/conversations/{id}/messages"),
        &json!({"content": "hallway light"}).to_string(),
        &[with_cookie[0], ("x-steward-dashboard", "1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let pending = get_with(&h, "/api/proposals?status=pending", &with_cookie).await.json();
    let approval = pending["proposals"][0]["id"].as_str().unwrap().to_string();
    let r = post_with(
        &h,
        &format!("/api/proposals/{approval}/approve"),
        "{}",
        &[with_cookie[0], ("x-steward-dashboard", "1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["decided_by"], actor.as_str());
    // A bearer key still works without any of this, and a wrong one still fails.
    let bearer = format!("Bearer {KEY}");
    let r = post_with(&h, "/api/conversations", "{}", &[("authorization", bearer.as_str())]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post_with(&h, "/api/conversations", "{}", &[with_cookie[0], ("authorization", "Bearer sk-wrong")]).await;
    assert_eq!(r.status, 401, "a wrong key is not rescued by the cookie");
    // A made-up session is nothing.
    let r = get_with(&h, "/api/conversations", &[("cookie", "steward_session=0123456789abcdef")]).await;
    assert_eq!(r.status, 401);

    // Logging out ends the session.
    let r = h.send(Request::post("/ui/logout").header("cookie", &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/ui/login");
    assert!(r.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(get_with(&h, "/api/conversations", &with_cookie).await.status, 401);
    assert_eq!(get_with(&h, "/ui/home", &with_cookie).await.status, 303);
}

#[tokio::test]
async fn without_keys_there_is_no_login() {
    let h = dashboard(false).await;
    let r = h.get("/ui/login?next=%2Fui%2Fusage").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/ui/usage");
    // The scripts' header is harmless without a session.
    let r = post_with(&h, "/api/conversations", "{}", &[("x-steward-dashboard", "1")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
}
