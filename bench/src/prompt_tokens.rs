//! Prints what the home costs in a model's prompt: the architect's system
//! prompt with the home's compact summary, and its tool definitions, for
//! the demo home and a synthetic 1,000-entity home — next to what the whole
//! catalog would cost if it were put in the prompt instead.
//!
//! Tokens are estimated as ceil(characters / 4), the usual rule of thumb
//! for English text and JSON with OpenAI-style tokenizers; characters are
//! printed too.

use std::sync::Arc;

use steward_core::home::summary::prompt_summary;
use steward_core::home::tools::{home_tools, DeleteAutomation, SaveAutomation};
use steward_core::home::{Area, Entity, Home};
use steward_core::tools::CurrentTime;
use steward_core::{AgentProfile, Clock, SystemClock, Tool};
use steward_integrations::DemoHome;

const DOMAINS: &[&str] = &[
    "light",
    "switch",
    "sensor",
    "binary_sensor",
    "climate",
    "cover",
    "lock",
    "media_player",
    "fan",
    "camera",
    "vacuum",
    "alarm_control_panel",
    "input_boolean",
    "automation",
    "scene",
];

fn tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// A house of `n` entities over 30 areas and the domains above.
fn synthetic(n: usize) -> (Vec<Entity>, Vec<Area>) {
    let areas: Vec<Area> = (0..30)
        .map(|i| Area { area_id: format!("area_{i}"), name: format!("Room {i}"), aliases: vec![], floor: None })
        .collect();
    let entities = (0..n)
        .map(|i| {
            let domain = DOMAINS[i % DOMAINS.len()];
            Entity {
                entity_id: format!("{domain}.device_{i}"),
                domain: domain.into(),
                name: format!("Device {i}"),
                aliases: vec![],
                area_id: Some(format!("area_{}", i % 30)),
                device_id: Some(format!("dev_{}", i / 3)),
                state: if i % 97 == 0 { "unavailable".into() } else { "on".into() },
                attributes: serde_json::json!({"friendly_name": format!("Device {i}")}),
                last_changed: 0,
                last_updated: 0,
                available: i % 97 != 0,
            }
        })
        .collect();
    (entities, areas)
}

fn report(label: &str, system: &str, summary: &str, tools: &str, catalog: &str) {
    println!("{label}");
    for (what, text) in [
        ("system prompt (with summary)", system),
        ("  of which the home summary", summary),
        ("tool definitions", tools),
    ] {
        println!("  {what:<32} {:>7} chars  ~{:>6} tokens", text.len(), tokens(text.len()));
    }
    let total = system.len() + tools.len();
    println!("  {:<32} {:>7} chars  ~{:>6} tokens", "total fixed prompt", total, tokens(total));
    println!(
        "  {:<32} {:>7} chars  ~{:>6} tokens",
        "(whole catalog as JSON, unused)",
        catalog.len(),
        tokens(catalog.len())
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let demo: Arc<dyn Home> = Arc::new(DemoHome::new(clock.clone()));
    let architect = AgentProfile::architect();

    let mut tools: Vec<Arc<dyn Tool>> = home_tools(demo.clone(), clock.clone());
    tools.push(Arc::new(SaveAutomation::new(demo.clone(), None)));
    tools.push(Arc::new(DeleteAutomation::new(demo.clone(), None)));
    tools.push(Arc::new(CurrentTime::new(clock)));
    let definitions: Vec<_> = tools
        .iter()
        .filter(|t| architect.tools.contains(&t.spec().name))
        .map(|t| {
            let d = t.spec().definition();
            serde_json::json!({"type": "function", "function": {"name": d.name, "description": d.description, "parameters": d.parameters}})
        })
        .collect();
    let tools_json = serde_json::to_string(&definitions)?;

    let (entities, areas) = (demo.entities().await?, demo.areas().await?);
    let summary = prompt_summary(demo.name(), true, &entities, &areas);
    let system = format!("{}\n\n{summary}", architect.system_prompt);
    report(
        &format!("demo home: {} entities, {} areas", entities.len(), areas.len()),
        &system,
        &summary,
        &tools_json,
        &serde_json::to_string(&entities)?,
    );

    for n in [1_000, 10_000] {
        let (entities, areas) = synthetic(n);
        let summary = prompt_summary("synthetic", false, &entities, &areas);
        let system = format!("{}\n\n{summary}", architect.system_prompt);
        report(
            &format!("synthetic home: {n} entities, {} areas, {} domains", areas.len(), DOMAINS.len()),
            &system,
            &summary,
            &tools_json,
            &serde_json::to_string(&entities)?,
        );
    }
    Ok(())
}
