//! `analyze_energy` over the demo home's meters.

use std::sync::Arc;

use serde_json::{json, Value};
use steward_core::home::tools::home_tools;
use steward_core::{Clock, Tool, ToolContext, ToolError};
use steward_integrations::demo::{DemoHome, OUTAGE_ENTITY};

/// 2026-03-10T14:07:00Z.
const NOW: i64 = 1_773_151_620_000;
const HOUR_MS: i64 = 3_600_000;

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW
    }
}

fn kit() -> (Arc<DemoHome>, Arc<dyn Tool>) {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock);
    let home = Arc::new(DemoHome::new(clock.clone()));
    let tool = home_tools(home.clone(), clock).into_iter().find(|t| t.spec().name == "analyze_energy").unwrap();
    (home, tool)
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "turn".into(),
        conversation_id: "conv".into(),
        agent: "architect".into(),
        call_id: "call_1".into(),
        approval: None,
        progress: None,
    }
}

async fn run(tool: &dyn Tool, args: Value) -> Value {
    let out = tool.call(args, &ctx()).await.unwrap();
    assert!(out.len() <= tool.spec().output_cap, "output of {} bytes", out.len());
    serde_json::from_str(&out).unwrap()
}

fn details<'a>(out: &'a Value, id: &str) -> &'a Value {
    out["details"].as_array().unwrap().iter().find(|d| d["entity_id"] == id).unwrap()
}

#[tokio::test]
async fn analyses_every_meter_of_the_demo_home() {
    let (home, tool) = kit();
    let out = run(tool.as_ref(), json!({"price_per_kwh": 0.3})).await;
    assert_eq!(out["hours"], 72.0);
    assert_eq!(out["meters"], 3, "{out}");
    assert!(out.get("left_out").is_none(), "{out}");

    // Top consumers: every meter, biggest first, shares adding up to 100 %.
    let top = out["top_consumers"].as_array().unwrap();
    let ids: Vec<&str> = top.iter().map(|c| c["entity_id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["sensor.car_charger_energy", "sensor.house_energy", "sensor.solar_energy"]);
    let kwh: Vec<f64> = top.iter().map(|c| c["kwh"].as_f64().unwrap()).collect();
    assert!(kwh.windows(2).all(|w| w[0] >= w[1]), "{kwh:?}");
    assert!(kwh[0] > 0.0);
    let shares: f64 = top.iter().map(|c| c["share_pct"].as_f64().unwrap()).sum();
    assert!((shares - 100.0).abs() < 0.5, "{shares}");
    let total = out["total_kwh"].as_f64().unwrap();
    assert!((out["cost"]["total"].as_f64().unwrap() - total * 0.3).abs() < 0.05);

    // The charger's outage shows as a gap, and its hours are estimated.
    let (gap_start, gap_end) = home.scenario().charger_outage;
    let charger = details(&out, OUTAGE_ENTITY);
    let gaps = charger["data_gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{charger}");
    assert!(gaps[0]["hours"].as_f64().unwrap() >= ((gap_end - gap_start) / HOUR_MS) as f64);
    assert!(charger["estimated_hours"].as_u64().unwrap() >= 5, "{charger}");
    assert!(details(&out, "sensor.house_energy").get("data_gaps").is_none());

    // The daily profile covers the window: 72 hours back from 14:07 on the
    // 10th starts at 14:00 on the 7th.
    let house = details(&out, "sensor.house_energy");
    let days: Vec<&str> = house["daily"].as_array().unwrap().iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]);
    let hours: u64 = house["daily"].as_array().unwrap().iter().map(|d| d["hours"].as_u64().unwrap()).sum();
    assert_eq!(hours, 73, "every hour from 14:00 on the 7th to 14:00 on the 10th");
    assert_eq!(house["daily"][1]["hours"], 24);
    assert_eq!(house["mean_kwh_by_hour_of_day"].as_array().unwrap().len(), 24);
    assert!(house["baseline_kwh_per_hour"].as_f64().unwrap() > 0.0);
    assert_eq!(house["peaks"].as_array().unwrap().len(), 5);
    assert_eq!(house["source"], "statistics");
}

#[tokio::test]
async fn named_meters_and_bad_arguments() {
    let (_, tool) = kit();
    let out = run(tool.as_ref(), json!({"entity_ids": ["sensor.house_energy"], "hours": 24})).await;
    assert_eq!(out["meters"], 1);
    assert!(out.get("cost").is_none() && out.get("note").is_none());
    assert_eq!(out["top_consumers"][0]["share_pct"], 100.0);

    for (args, hint) in [
        (json!({"hours": 3}), "from 24 to 168"),
        (json!({"hours": 500}), "from 24 to 168"),
        (json!({"price_per_kwh": "cheap"}), "price_per_kwh"),
        (json!({"entity_ids": ["sensor.house_power"]}), "not an energy meter"),
        (json!({"entity_ids": ["house energy"]}), "not an entity id"),
        (json!({"entity_ids": ["sensor.nope_energy"]}), "does not exist"),
        (json!({"days": 3}), "this tool takes: hours, entity_ids, price_per_kwh"),
    ] {
        match tool.call(args.clone(), &ctx()).await {
            Err(ToolError::InvalidArguments(msg)) => assert!(msg.contains(hint), "{args}: {msg}"),
            other => panic!("{args}: expected invalid arguments, got {other:?}"),
        }
    }
}
