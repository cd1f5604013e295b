//! Insights over HTTP: an energy analysis of the demo home kept as an
//! insight with its evidence and a chart served as SVG and PNG; insights
//! written by a client; the `analyze_energy` tool keeping its analysis so
//! the chat answer can link the chart; and refusals that name the problem.

use std::sync::Arc;

use serde_json::{json, Value};
use steward_core::home::tools::AnalyzeEnergy;
use steward_core::home::Home;
use steward_core::{
    AgentRegistry, Clock, Engine, EngineLimits, EngineOptions, EngineParts, Store, SystemClock, Tool, ToolContext,
    ToolRegistry,
};
use steward_integrations::demo::OUTAGE_ENTITY;
use steward_integrations::DemoHome;
use steward_server::{app, AppState, ServerSettings};
use steward_store::SqlStore;
use steward_testkit::Reply;

use super::{harness_with, Harness, Options, Reply as HttpReply};

struct Insights {
    h: Harness,
    home: Arc<dyn Home>,
    clock: Arc<dyn Clock>,
}

/// An engine on the demo home and a real SQLite store, with
/// `analyze_energy` keeping its analyses as insights, and a scripted model.
async fn insights() -> Insights {
    let dir = std::env::temp_dir().join(format!("steward-insights-test-{}", uuid::Uuid::new_v4().simple()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(SqlStore::open_in_dir(&dir, clock.clone()).await.unwrap());
    let home: Arc<dyn Home> = Arc::new(DemoHome::new(clock.clone()));
    let (llm, scripted) = super::scripted_model().await;
    let mut tools = ToolRegistry::new();
    let kept: Arc<dyn Store> = store.clone();
    tools.register(Arc::new(AnalyzeEnergy::new(home.clone(), clock.clone()).with_insights(kept)));
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
    let state = AppState::new(engine, ServerSettings::default()).with_energy_price(Some(0.3));
    Insights { h: Harness { app: app(state), llm: Some(scripted), store, dir }, home, clock }
}

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The chart of `insight` answers as SVG with a line per series, and as a
/// PNG that decodes.
async fn assert_chart_served(h: &Harness, insight: &Value) {
    let url = insight["chart_url"].as_str().unwrap_or_else(|| panic!("no chart_url: {insight}"));
    assert_eq!(url, format!("/api/insights/{}/chart.svg", insight["id"].as_str().unwrap()));
    let svg = h.get(url).await;
    assert_eq!(svg.status, 200, "{}", svg.text());
    assert_eq!(svg.headers["content-type"], "image/svg+xml; charset=utf-8");
    let text = svg.text();
    assert!(text.starts_with("<svg"), "{text}");
    let series = insight["chart"]["series"].as_array().unwrap().len();
    assert!(series >= 1);
    assert!(text.matches("<polyline").count() >= series, "a line per series: {text}");
    let png = h.get(&url.replace(".svg", ".png")).await;
    assert_eq!(png.status, 200, "{}", png.text());
    assert_eq!(png.headers["content-type"], "image/png");
    let (width, height, pixels) = decode_png(&png.body);
    assert_eq!((width, height), (800, 420));
    // Not a blank picture: the first series' colour (#4e79a7) is drawn.
    assert!(pixels.chunks(3).any(|p| p == [0x4e, 0x79, 0xa7]), "no line drawn");
}

fn number_in(text: &str, what: f64) -> bool {
    // The summary rounds: 152.3 for 152.34, 3.52 for 3.521.
    let candidates = [format!("{what:.1}"), format!("{what:.2}"), format!("{what:.3}")];
    candidates.iter().any(|c| text.contains(c.trim_end_matches('0').trim_end_matches('.')))
}

#[tokio::test]
async fn an_energy_analysis_of_the_demo_home_is_kept_with_its_chart() {
    let i = insights().await;
    let r = i.h.post_json("/api/insights/analyze", json!({"hours": 72})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let insight = r.json();
    let id = insight["id"].as_str().unwrap();
    assert!(id.starts_with("ins_"), "{insight}");
    assert_eq!(r.headers["location"], format!("/api/insights/{id}"));
    assert_eq!(insight["kind"], "energy");
    assert_eq!(insight["created_by"], "user:local");

    // The summary is about the real numbers, which the evidence holds.
    let summary = insight["summary"].as_str().unwrap();
    let evidence = &insight["evidence"];
    let total = evidence["total_kwh"].as_f64().unwrap();
    assert!(total > 0.0, "{evidence}");
    assert!(number_in(summary, total), "the total {total} is in: {summary}");
    assert!(summary.contains("Over the 72 hours"), "{summary}");
    let top = &evidence["top_consumers"][0];
    assert!(summary.contains(&format!("({})", top["entity_id"].as_str().unwrap())), "{summary}");
    assert!(summary.contains("busiest hour") && summary.contains("standby load"), "{summary}");
    let cost = evidence["cost"]["total"].as_f64().unwrap();
    assert!((cost - total * 0.3).abs() < 0.05, "{cost} at 0.3 per kWh");
    assert!(summary.contains(&format!("that comes to {cost:.2}")), "the configured price is used: {summary}");
    // The car charger's outage is found, said and shaded.
    let charger = i.home.entity(OUTAGE_ENTITY).await.unwrap().name;
    assert!(summary.contains(&format!("{charger} had no data for")), "{summary}");
    let bands = insight["chart"]["bands"].as_array().unwrap();
    assert!(bands.iter().any(|b| b["label"] == format!("no data: {charger}")), "{bands:?}");
    assert_eq!(evidence["meters"], 3);
    let ids: Vec<&str> = insight["entity_ids"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(ids.contains(&OUTAGE_ENTITY) && ids.contains(&"sensor.house_energy"), "{ids:?}");

    // The chart: hourly kWh per meter over the window.
    let chart = &insight["chart"];
    assert_eq!((chart["kind"].as_str(), chart["y_unit"].as_str()), (Some("line"), Some("kWh")));
    let points = chart["series"][0]["points"].as_array().unwrap();
    assert!((72..=73).contains(&points.len()), "{}", points.len());
    assert_chart_served(&i.h, &insight).await;

    // Kept: listed, filtered and read back the same.
    let list = i.h.get("/api/insights").await.json();
    assert_eq!(list["insights"][0], insight);
    let about = i.h.get(&format!("/api/insights?kind=energy&entity_id={OUTAGE_ENTITY}")).await.json();
    assert_eq!(about["insights"].as_array().unwrap().len(), 1);
    assert_eq!(i.h.get("/api/insights?kind=note").await.json()["insights"], json!([]));
    assert_eq!(i.h.get(&format!("/api/insights/{id}")).await.json(), insight);

    // An empty body analyses every meter over the last 24 hours; meters can be named.
    let r = i.h.post_raw("/api/insights/analyze", "").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["summary"].as_str().unwrap().contains("Over the 24 hours"));
    let r = i.h.post_json("/api/insights/analyze", json!({"entity_ids": ["sensor.house_energy"], "hours": 24})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["entity_ids"], json!(["sensor.house_energy"]));
    assert_eq!(i.h.get("/api/insights?limit=2").await.json()["insights"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_insight_written_by_a_client_round_trips() {
    let i = insights().await;
    let body = json!({
        "kind": "anomaly",
        "title": "  Freezer <warm> & \"noisy\"  ",
        "summary": "The freezer ran 40% longer than usual on Tuesday.",
        "evidence": {"runtime_hours": [5.1, 7.2]},
        "entity_ids": ["sensor.freezer_power"],
        "chart": {
            "kind": "bar",
            "title": "Freezer <runtime>",
            "y_unit": "h",
            "series": [{"name": "runtime", "points": [
                {"x": 1773014400000i64, "y": 5.1},
                {"x": 1773100800000i64, "y": 7.2},
                {"x": 1773187200000i64, "y": null, "label": "today"}
            ]}]
        }
    });
    let r = i.h.post_json("/api/insights", body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["title"], "Freezer <warm> & \"noisy\"", "trimmed, kept as written");
    assert_eq!(created["created_by"], "user:local");
    assert_eq!(created["kind"], "anomaly");
    assert!(created.get("conversation_id").is_none());
    let id = created["id"].as_str().unwrap();
    assert_eq!(i.h.get(&format!("/api/insights/{id}")).await.json(), created);
    assert_eq!(i.h.get("/api/insights?entity_id=sensor.freezer_power").await.json()["insights"][0], created);
    let svg = i.h.get(&format!("/api/insights/{id}/chart.svg")).await.text();
    assert!(svg.contains("<title>Freezer &lt;runtime&gt;</title>"), "{svg}");
    assert!(svg.contains(">today</text>"), "a bar's own label: {svg}");
    let (w, h, _) = decode_png(&i.h.get(&format!("/api/insights/{id}/chart.png")).await.body);
    assert_eq!((w, h), (800, 420));

    // Without a chart there is no chart_url, and no chart to serve.
    let r = i.h.post_json("/api/insights", json!({"title": "Note", "summary": "Nothing odd this week."})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let plain = r.json();
    assert_eq!(plain["kind"], "note");
    assert_eq!(plain["evidence"], json!({}));
    assert!(plain.get("chart_url").is_none() && plain.get("chart").is_none(), "{plain}");
    let r = i.h.get(&format!("/api/insights/{}/chart.svg", plain["id"].as_str().unwrap())).await;
    assert_eq!(r.status, 404);
    assert!(r.error()["message"].as_str().unwrap().contains("has no chart"));
}

fn refused(r: &HttpReply, status: u16, param: Option<&str>, words: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let e = r.error();
    assert_eq!(e["param"].as_str(), param, "{e}");
    assert!(e["message"].as_str().unwrap().contains(words), "'{words}' not in {e}");
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_problem() {
    let i = insights().await;
    let h = &i.h;
    let analyze = |body: Value| h.post_json("/api/insights/analyze", body);
    refused(&analyze(json!({"hours": 5})).await, 400, Some("hours"), "from 24 to 168");
    refused(&analyze(json!({"hours": 1000})).await, 400, Some("hours"), "not 1000");
    refused(&analyze(json!({"hours": -1})).await, 400, None, "expected shape");
    refused(&h.post_raw("/api/insights/analyze", "{\"hours\": ").await, 400, None, "not valid JSON");
    refused(&analyze(json!({"hours": 48, "days": 2})).await, 400, None, "unknown field `days`");
    refused(&analyze(json!({"entity_ids": []})).await, 400, Some("entity_ids"), "empty");
    refused(&analyze(json!({"entity_ids": ["not an id"]})).await, 400, Some("entity_ids"), "not an entity id");
    refused(
        &analyze(json!({"entity_ids": ["light.kitchen_ceiling"]})).await,
        400,
        Some("entity_ids"),
        "not an energy meter",
    );
    refused(&analyze(json!({"entity_ids": ["sensor.nope_energy"]})).await, 400, Some("entity_ids"), "does not exist");

    let create = |body: Value| h.post_json("/api/insights", body);
    refused(&create(json!({"summary": "s"})).await, 400, None, "missing field `title`");
    refused(&create(json!({"title": " ", "summary": "s"})).await, 400, Some("title"), "title is empty");
    refused(&create(json!({"title": "t", "summary": ""})).await, 400, Some("summary"), "summary is empty");
    refused(&create(json!({"title": "x".repeat(201), "summary": "s"})).await, 400, Some("title"), "longer than 200");
    refused(&create(json!({"title": "t", "summary": "s", "colour": "red"})).await, 400, None, "unknown field `colour`");
    refused(&create(json!({"title": "t", "summary": "s", "kind": "Energy!"})).await, 400, Some("kind"), "lower-case");
    refused(&create(json!({"title": "t", "summary": "s", "entity_ids": ["x"]})).await, 400, Some("entity_ids"), "'x'");
    let huge = json!({"kind": "line", "title": "c", "series": [{"name": "s", "points":
        (0..20_001).map(|k| json!({"x": k, "y": 1.0})).collect::<Vec<_>>()}]});
    let r = h.post_json("/api/insights", json!({"title": "t", "summary": "s", "chart": huge})).await;
    // Over the body limit of the test server, or over the chart's.
    assert!(r.status == 413 || r.status == 400, "{}", r.text());

    refused(&h.get("/api/insights?limit=0").await, 400, Some("limit"), "limit must be");
    refused(&h.get("/api/insights/ins_missing").await, 404, None, "not found");
    refused(&h.get("/api/insights/ins_missing/chart.svg").await, 404, None, "not found");
    refused(&h.get("/api/insights/ins_missing/chart.png").await, 404, None, "not found");
    assert!(h.get("/api/insights").await.json()["insights"].as_array().unwrap().is_empty(), "nothing was kept");
}

#[tokio::test]
async fn without_a_home_there_is_nothing_to_analyse() {
    let h = harness_with(Options { with_llm: false, ..Options::default() }).await;
    let r = h.post_json("/api/insights/analyze", json!({})).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let e = r.error();
    assert_eq!(e["code"], "home_not_configured");
    assert!(e["message"].as_str().unwrap().contains("HA_URL"), "{e}");
    // Bad input is still refused first.
    assert_eq!(h.post_json("/api/insights/analyze", json!({"hours": 5})).await.status, 400);
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "turn_1".into(),
        conversation_id: "conv_1".into(),
        agent: "data-scientist".into(),
        call_id: "call_1".into(),
        approval: None,
        progress: None,
    }
}

#[tokio::test]
async fn the_energy_tool_keeps_its_analysis_and_returns_a_chart_url_that_resolves() {
    let i = insights().await;
    let store: Arc<dyn Store> = i.h.store.clone();
    let tool = AnalyzeEnergy::new(i.home.clone(), i.clock.clone()).with_insights(store);
    let out: Value = serde_json::from_str(&tool.call(json!({"hours": 48}), &ctx()).await.unwrap()).unwrap();
    // The analysis as before …
    assert_eq!(out["meters"], 3, "{out}");
    assert!(out["total_kwh"].as_f64().unwrap() > 0.0);
    assert!(out["details"].as_array().unwrap().len() == 3);
    // … and where it was kept.
    let id = out["insight_id"].as_str().unwrap();
    let url = out["chart_url"].as_str().unwrap();
    assert_eq!(url, format!("/api/insights/{id}/chart.svg"));
    let insight = i.h.get(&format!("/api/insights/{id}")).await.json();
    assert_eq!(insight["created_by"], "agent:data-scientist");
    assert_eq!(insight["conversation_id"], "conv_1");
    assert_eq!(insight["evidence"]["total_kwh"], out["total_kwh"], "the insight and the answer agree");
    assert_chart_served(&i.h, &insight).await;

    // Without a store the tool only reads, as before.
    let plain = AnalyzeEnergy::new(i.home.clone(), i.clock.clone());
    let out: Value = serde_json::from_str(&plain.call(json!({"hours": 48}), &ctx()).await.unwrap()).unwrap();
    assert!(out.get("insight_id").is_none() && out.get("chart_url").is_none());
}

#[tokio::test]
async fn in_a_chat_the_model_gets_the_chart_url_to_link() {
    let i = insights().await;
    let llm = i.h.llm();
    llm.push_all([
        Reply::tool_call("analyze_energy", json!({"hours": 24}).to_string()),
        Reply::text("The house used most; see the chart."),
    ]);
    let r = i.h.post_json("/api/conversations", json!({"agent": "data-scientist"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let conversation = r.json()["id"].as_str().unwrap().to_string();
    let r = i
        .h
        .post_json(&format!("/api/conversations/{conversation}/messages"), json!({"content": "How is my energy use?"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The tool's result, as the model read it, links the kept chart.
    let requests = llm.chat_requests();
    let tool_message = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap_or_else(|| panic!("no tool result in {}", requests[1]));
    let output: Value = serde_json::from_str(tool_message["content"].as_str().unwrap()).unwrap();
    let url = output["chart_url"].as_str().unwrap_or_else(|| panic!("no chart_url in {output}"));
    let insight = i.h.get(&format!("/api/insights/{}", output["insight_id"].as_str().unwrap())).await.json();
    assert_eq!(insight["conversation_id"], conversation.as_str());
    assert_eq!(insight["created_by"], "agent:data-scientist");
    assert_eq!(i.h.get(url).await.status, 200);
    // The tool's description tells the model to link it.
    let offered = requests[0]["tools"].as_array().unwrap();
    let analyze = offered.iter().find(|t| t["function"]["name"] == "analyze_energy").unwrap();
    assert!(analyze["function"]["description"].as_str().unwrap().contains("chart_url"));
}
