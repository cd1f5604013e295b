//! The two homes the contract suite runs against, and what a real Home
//! Assistant needs to be ready for it.
//!
//! Real Home Assistant: set `STEWARD_TEST_HA_URL` and `STEWARD_TEST_HA_TOKEN`
//! (an administrator's long-lived access token), or run
//! `bash scripts/homeassistant.sh`, which starts one and writes both to
//! `.ci-state/ha/env`, read when the variables are not set. Without either
//! the Home Assistant tests are skipped with a notice, unless
//! `STEWARD_REQUIRE_HA=1`, in which case they fail.
//!
//! The Home Assistant tests share one instance. Each holds a shared lock for
//! its run; the reconnection test, which restarts Home Assistant, holds it
//! exclusively, so nothing else runs against a restarting house.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::home::{Home, ServiceCall, StateChanged};
use steward_core::{Clock, SystemClock};
use steward_integrations::demo::DemoHome;
use steward_integrations::homeassistant::{format_time, HomeAssistant, Options};
use tokio::sync::broadcast;

pub const URL_VAR: &str = "STEWARD_TEST_HA_URL";
pub const TOKEN_VAR: &str = "STEWARD_TEST_HA_TOKEN";
pub const REQUIRE_VAR: &str = "STEWARD_REQUIRE_HA";

/// 2026-03-10T14:07:00Z, a Tuesday afternoon, for the demo home.
pub const DEMO_NOW: i64 = 1_773_151_620_000;

/// Names the seeding gives the registries of the real house.
pub const SEED_FLOOR: &str = "Steward Ground Floor";
pub const SEED_AREA: &str = "Steward Lounge";
pub const SEED_AREA_ALIAS: &str = "steward sitting room";
pub const SEED_LABEL: &str = "Steward Test";
/// An entity with its own area, an alias and a label.
pub const SEED_OWN_AREA_ENTITY: &str = "light.bed_light";
pub const SEED_ENTITY_ALIAS: &str = "nightstand lamp";
/// An entity whose area comes from its device.
pub const SEED_DEVICE_AREA_ENTITY: &str = "light.ceiling_lights";

pub struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The real Home Assistant a test runs against, and its lock on it.
pub struct Target {
    pub url: String,
    pub token: String,
    pub _lock: HaLock,
}

/// Where and how to reach the real Home Assistant, or `None` (after saying
/// why) when the test is to be skipped. The lock is taken first (shared, or
/// with `alone` exclusive), so a test never looks while another restarts it.
pub fn ha_target(test: &str, alone: bool) -> Option<Target> {
    let lock = if alone { exclusive_lock() } else { shared_lock() };
    let (url, token) = ha_config(test)?;
    Some(Target { url, token, _lock: lock })
}

fn ha_config(test: &str) -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let required = var(REQUIRE_VAR).as_deref() == Some("1");
    let skip = |why: String| {
        if required {
            panic!(
                "{REQUIRE_VAR}=1 but {why}. Start Home Assistant with `bash scripts/homeassistant.sh` (it writes \
                 .ci-state/ha/env), or set {URL_VAR} and {TOKEN_VAR}"
            );
        }
        eprintln!(
            "SKIPPED home_assistant::{test}: {why} (start one with `bash scripts/homeassistant.sh`, or set \
             {URL_VAR} and {TOKEN_VAR})"
        );
        None
    };
    if let (Some(url), Some(token)) = (var(URL_VAR), var(TOKEN_VAR)) {
        return Some((url, token));
    }
    let env_file = repo_root().join(".ci-state/ha/env");
    let Ok(text) = std::fs::read_to_string(&env_file) else {
        return skip(format!("{URL_VAR} / {TOKEN_VAR} are not set and there is no {}", env_file.display()));
    };
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(|v| v.trim().to_string());
    let (Some(url), Some(token)) = (value("HA_URL"), value("HA_TOKEN")) else {
        return skip(format!("{} lacks HA_URL or HA_TOKEN", env_file.display()));
    };
    // The file outlives the instance: only use it while something answers.
    let address = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&address.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if !reachable {
        return skip(format!("nothing answers at {url} (from {})", env_file.display()));
    }
    Some((url, token))
}

/// Held for a test's run against the shared Home Assistant.
pub struct HaLock(#[allow(dead_code)] File);

fn lock_file() -> File {
    // One lock for every checkout on the machine: simple, and a test run
    // never needs to overlap another's restart.
    let path = std::env::temp_dir().join("steward-ha-tests.lock");
    File::options().create(true).truncate(false).write(true).open(&path).unwrap()
}

/// Runs alongside other Home Assistant tests.
fn shared_lock() -> HaLock {
    let file = lock_file();
    file.lock_shared().unwrap();
    HaLock(file)
}

/// Runs alone (it restarts Home Assistant).
fn exclusive_lock() -> HaLock {
    let file = lock_file();
    file.lock().unwrap();
    HaLock(file)
}

/// Options for tests: short enough that a failure shows quickly.
pub fn test_options() -> Options {
    Options {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        reconnect_wait: Duration::from_secs(30),
        backoff_initial: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        ..Options::default()
    }
}

/// A home under test, with the entities the checks use.
pub struct Subject {
    pub home: Arc<dyn Home>,
    pub ha: Option<Arc<HomeAssistant>>,
    pub clock: Arc<dyn Clock>,
    /// Lights the checks switch, one per check so they do not meet.
    pub lights: [&'static str; 3],
    /// A sensor with hourly statistics of the `measurement` kind (°C).
    pub measurement: &'static str,
    /// A meter with hourly statistics of the `total` kind (kWh).
    pub total: &'static str,
    pub min_entities: usize,
    pub min_with_area: usize,
    _lock: Option<HaLock>,
}

impl Subject {
    pub fn demo() -> Subject {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(AtomicI64::new(DEMO_NOW)));
        Subject {
            home: Arc::new(DemoHome::new(clock.clone())),
            ha: None,
            clock,
            lights: ["light.kitchen_ceiling", "light.kitchen_counter", "light.hallway"],
            measurement: "sensor.outdoor_temperature",
            total: "sensor.house_energy",
            min_entities: 50,
            min_with_area: 40,
            _lock: None,
        }
    }

    /// The real Home Assistant, seeded for the checks; `None` when skipped.
    pub async fn home_assistant(test: &str) -> Option<Subject> {
        let Target { url, token, _lock: lock } = ha_target(test, false)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ha = Arc::new(
            HomeAssistant::connect_with(&url, &token, clock.clone(), test_options())
                .await
                .unwrap_or_else(|e| panic!("connecting to the test Home Assistant at {url}: {e}")),
        );
        seed(&ha).await;
        Some(Subject {
            home: ha.clone(),
            ha: Some(ha),
            clock,
            lights: ["light.office_rgbw_lights", "light.living_room_rgbww_lights", "light.entrance_color_white_lights"],
            measurement: "sensor.outside_temperature",
            total: "sensor.total_energy_kwh",
            min_entities: 80,
            min_with_area: 3,
            _lock: Some(lock),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Makes sure the system log has an error from us: the demo home has
    /// its own; Home Assistant gets one through `system_log.write`.
    pub async fn log_an_error(&self, message: &str) {
        if self.ha.is_some() {
            let call = ServiceCall::new("system_log", "write", vec![]).with_data(json!({
                "message": message,
                "level": "error",
                "logger": "steward.contract",
            }));
            self.home.call_service(&call).await.unwrap();
        }
    }
}

/// Polls `check` until it gives something, failing after `secs`: Home
/// Assistant's recorder writes in the background.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {secs}s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for a change of `entity_id` to `state` among the subscribed events.
pub async fn changed_to(rx: &mut broadcast::Receiver<StateChanged>, entity_id: &str, state: &str) -> StateChanged {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(change)
                    if change.entity_id == entity_id && change.new.as_ref().is_some_and(|n| n.state == state) =>
                {
                    return change
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("the event stream closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no change of {entity_id} to {state} within 30s"))
}

// --- Seeding the real house --------------------------------------------------

/// Finds the item of `kind` (floor, label, area) called `name`, creating it
/// when missing. Two tests may race to create it: the loser finds it after.
async fn find_or_create(ha: &HomeAssistant, kind: &str, name: &str, create: Value) -> Value {
    for attempt in 0..2 {
        let list = ha.command(json!({"type": format!("config/{kind}_registry/list")})).await.unwrap();
        if let Some(found) = list.as_array().unwrap().iter().find(|i| i["name"] == name) {
            return found.clone();
        }
        let mut command = create.clone();
        command["type"] = json!(format!("config/{kind}_registry/create"));
        command["name"] = json!(name);
        match ha.command(command).await {
            Ok(created) => return created,
            Err(e) if attempt == 0 => eprintln!("creating {kind} {name}: {e}; looking again"),
            Err(e) => panic!("creating {kind} {name}: {e}"),
        }
    }
    unreachable!()
}

/// Gives the demo house of Home Assistant what the checks look for: a floor,
/// an area with an alias on it, a label, an entity with its own area, an
/// alias and the label, an entity whose device is in the area, and a day
/// of hourly statistics for two sensors (the recorder compiles its own only
/// at each full hour). Idempotent.
pub async fn seed(ha: &HomeAssistant) {
    let floor = find_or_create(ha, "floor", SEED_FLOOR, json!({"level": 0})).await;
    let label = find_or_create(ha, "label", SEED_LABEL, json!({"color": "indigo"})).await;
    let area = find_or_create(ha, "area", SEED_AREA, json!({})).await;
    let area_id = area["area_id"].as_str().unwrap().to_string();
    ha.command(json!({
        "type": "config/area_registry/update",
        "area_id": area_id,
        "aliases": [SEED_AREA_ALIAS],
        "floor_id": floor["floor_id"],
    }))
    .await
    .unwrap();
    ha.command(json!({
        "type": "config/entity_registry/update",
        "entity_id": SEED_OWN_AREA_ENTITY,
        "area_id": "bedroom",
        "aliases": [SEED_ENTITY_ALIAS],
        "labels": [label["label_id"]],
    }))
    .await
    .unwrap();
    let entries = ha
        .command(json!({
            "type": "config/entity_registry/get_entries",
            "entity_ids": [SEED_DEVICE_AREA_ENTITY, "sensor.outside_temperature"],
        }))
        .await
        .unwrap();
    for entry in entries.as_object().unwrap().values() {
        let device_id = entry["device_id"].as_str().unwrap();
        ha.command(json!({"type": "config/device_registry/update", "device_id": device_id, "area_id": area_id}))
            .await
            .unwrap();
    }
    seed_statistics(ha).await;
}

async fn seed_statistics(ha: &HomeAssistant) {
    const HOUR: i64 = 3_600_000;
    let this_hour = ha.now_ms() / HOUR * HOUR;
    // The 48 full hours before this one. The recorder compiles its own row
    // for each hour that passes, from the sensors' real states, so the
    // seeded rows must fit with those: values depend only on the hour (runs
    // on different days agree), the meter's sum rises with time, and its
    // reading ends at the demo meter's real (unchanging) one.
    let hours: Vec<i64> = (1..=48).rev().map(|h| this_hour - h * HOUR).collect();
    let meter_now = ha.entity("sensor.total_energy_kwh").await.unwrap().numeric_state().unwrap();
    let sum_at = |start: i64| 0.4 * (start / HOUR) as f64;
    let last_sum = sum_at(hours[hours.len() - 1]);
    let temperature: Vec<Value> = hours
        .iter()
        .map(|start| {
            let hour_of_day = (start / HOUR % 24) as f64;
            let mean = 12.0 + 4.0 * (hour_of_day / 24.0 * std::f64::consts::TAU).sin();
            json!({"start": format_time(*start), "mean": mean, "min": mean - 0.8, "max": mean + 0.9})
        })
        .collect();
    let energy: Vec<Value> = hours
        .iter()
        .map(|start| {
            let sum = sum_at(*start);
            json!({"start": format_time(*start), "state": meter_now - (last_sum - sum), "sum": sum})
        })
        .collect();
    for (id, unit, has_mean, stats) in
        [("sensor.outside_temperature", "°C", true, temperature), ("sensor.total_energy_kwh", "kWh", false, energy)]
    {
        ha.command(json!({
            "type": "recorder/import_statistics",
            "metadata": {
                "has_mean": has_mean,
                "has_sum": !has_mean,
                "name": null,
                "source": "recorder",
                "statistic_id": id,
                "unit_of_measurement": unit,
            },
            "stats": stats,
        }))
        .await
        .unwrap();
    }
    // The recorder imports in the background: wait until it has.
    let first = hours[0];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = ha
            .command(json!({
                "type": "recorder/statistics_during_period",
                "start_time": format_time(first),
                "statistic_ids": ["sensor.outside_temperature", "sensor.total_energy_kwh"],
                "period": "hour",
            }))
            .await
            .unwrap();
        let count = |id: &str| rows.get(id).and_then(Value::as_array).map_or(0, Vec::len);
        if count("sensor.outside_temperature") >= 48 && count("sensor.total_energy_kwh") >= 48 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the recorder did not import the seeded statistics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Restarts the test Home Assistant with `scripts/homeassistant.sh restart`.
pub async fn restart_home_assistant() {
    let script = repo_root().join("scripts/homeassistant.sh");
    let output = tokio::process::Command::new("bash").arg(&script).arg("restart").output().await.unwrap();
    assert!(
        output.status.success(),
        "{} restart failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
