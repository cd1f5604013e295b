//! `analyze_energy`: what the house's energy meters say about the last days
//! (use per day and per hour of day, standby load, peaks, unusual hours,
//! the biggest consumers, the cost, and holes in the data), worked out
//! here without a model.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use steward_protocol::Effect;

use super::{arguments_object, entity_id_list, fetch_entity, optional_number, round, spec};
use crate::clock::Clock;
use crate::home::energy::{
    anomalies, baseline, cost, daily_profile, data_gaps, hour_start, hourly_from_history, hourly_from_statistics,
    hourly_profile, kwh_per_unit, meter_flatlines, peaks, top_consumers, unavailability_windows, Consumer,
    HourlySeries, BASELINE_PERCENTILE, DEFAULT_ANOMALY_THRESHOLD, HOUR_MS,
};
use crate::home::types::{Entity, EntityStatistics, HistoryPoint, StatisticsPeriod};
use crate::home::Home;
use crate::store::Store;
use crate::tool::{Tool, ToolContext, ToolError, ToolSpec};
use crate::tools::rfc3339;

const MIN_HOURS: f64 = 24.0;
const DEFAULT_HOURS: f64 = 72.0;
const MAX_HOURS: f64 = 168.0;
/// Meters named in one call at most.
const MAX_ENTITIES: usize = 20;
/// Meters analysed when the caller names none.
const MAX_AUTO: usize = 30;
pub(crate) const MAX_PRICE: f64 = 1_000.0;
const OUTPUT_CAP: usize = 16_000;
/// What the output aims for, leaving room under the cap.
const BUDGET: usize = 15_000;
const MAX_PEAKS: usize = 5;
const MAX_ANOMALIES: usize = 8;
const MAX_FINDINGS: usize = 6;

pub struct AnalyzeEnergy {
    spec: ToolSpec,
    home: Arc<dyn Home>,
    clock: Arc<dyn Clock>,
    /// Where each analysis is also kept as an insight with a chart, so the
    /// answer can link the chart. Without it the tool only reads.
    insights: Option<Arc<dyn Store>>,
    /// The flat price per kWh used when the caller gives none (the
    /// configured tariff).
    default_price: Option<f64>,
}

impl AnalyzeEnergy {
    pub fn new(home: Arc<dyn Home>, clock: Arc<dyn Clock>) -> Self {
        let parameters = json!({
            "type": "object",
            "properties": {
                "hours": {"type": "number", "minimum": MIN_HOURS, "maximum": MAX_HOURS, "description": "How far back from now (24 to 168, default 72)."},
                "entity_ids": {
                    "description": "Energy meters (kWh or Wh sensors), e.g. [\"sensor.house_energy\"]; leave out to analyse every energy meter of the home.",
                    "oneOf": [
                        {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_ENTITIES},
                        {"type": "string"}
                    ]
                },
                "price_per_kwh": {"type": "number", "minimum": 0, "maximum": MAX_PRICE, "description": "A flat price per kWh, in the user's currency, to work out the cost."}
            },
            "additionalProperties": false
        });
        AnalyzeEnergy {
            spec: spec(
                "analyze_energy",
                "Analyses the energy meters (kWh) over the last hours: total per meter and top consumers with \
their share, kWh per day, mean kWh per hour of day, the standby load (baseline), the peak hours, unusual \
hours (robust z-score), holes in the data and unavailable stretches, and the cost at a flat price if one is \
given. Hours and days are UTC. Use it for questions about energy use, cost or odd consumption. When the \
output has a `chart_url`, the analysis was saved as an insight with a chart of the hourly use: link that URL \
in your answer.",
                parameters,
                Effect::Read,
                Duration::from_secs(45),
                OUTPUT_CAP,
            ),
            home,
            clock,
            insights: None,
            default_price: None,
        }
    }

    /// Keeps every analysis as an insight in `store`; the output then
    /// carries its `insight_id` and `chart_url`.
    pub fn with_insights(mut self, store: Arc<dyn Store>) -> Self {
        self.insights = Some(store);
        self
    }

    /// The price per kWh to use when a call names none.
    pub fn with_price(mut self, price_per_kwh: Option<f64>) -> Self {
        self.default_price = price_per_kwh.filter(|p| p.is_finite() && (0.0..=MAX_PRICE).contains(p));
        self
    }

    /// Saves the analysis as an insight and says where it and its chart
    /// are. A failure to save is reported in the output, not as the
    /// tool's failure: the analysis itself is still right.
    async fn keep_insight(
        &self,
        store: &dyn Store,
        run: &EnergyRun,
        price: Option<f64>,
        ctx: &ToolContext,
        out: &mut Value,
    ) {
        let draft = crate::insights::energy_draft(run, price);
        let conversation = Some(ctx.conversation_id.clone()).filter(|c| !c.is_empty());
        let insight = draft.into_insight(
            crate::insights::new_insight_id(),
            format!("agent:{}", ctx.agent),
            self.clock.now_ms(),
            conversation,
        );
        match store.create_insight(&insight).await {
            Ok(()) => {
                out["insight_id"] = json!(insight.id);
                if let Some(url) = &insight.chart_url {
                    out["chart_url"] = json!(url);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the energy analysis could not be saved as an insight");
                out["insight_not_saved"] = json!(format!("the analysis could not be saved as an insight: {e}"));
            }
        }
    }
}

/// The window an analysis covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Window {
    /// The start of the first whole UTC hour.
    pub(crate) from: i64,
    /// Now.
    pub(crate) end: i64,
    pub(crate) hours: f64,
}

impl Window {
    pub(crate) fn ending_at(end: i64, hours: f64) -> Self {
        let start = end - (hours * HOUR_MS as f64) as i64;
        Window { from: hour_start(start), end, hours }
    }
}

/// Everything one analysis read: the window, each meter's report, and how
/// many energy meters were left out (beyond [`MAX_AUTO`]).
pub(crate) struct EnergyRun {
    pub(crate) window: Window,
    pub(crate) reports: Vec<MeterReport>,
    pub(crate) meters_left_out: usize,
}

/// Checks meter ids the way the tool's `entity_ids` argument is checked:
/// entity ids, each once, at most [`MAX_ENTITIES`].
pub(crate) fn meter_ids(ids: &[String]) -> Result<Vec<String>, ToolError> {
    let mut args = Map::new();
    args.insert("entity_ids".into(), json!(ids));
    entity_id_list(&args, "entity_ids", MAX_ENTITIES)
}

/// The meters to analyse (the named ones, or every energy meter of the
/// home up to [`MAX_AUTO`]), and how many energy meters were left out.
pub(crate) async fn select_meters(
    home: &dyn Home,
    ids: Option<Vec<String>>,
) -> Result<(Vec<Entity>, usize), ToolError> {
    if let Some(ids) = ids {
        let mut meters = Vec::with_capacity(ids.len());
        for id in &ids {
            let entity = fetch_entity(home, id).await?;
            if kwh_per_unit(entity.unit()).is_none() {
                let unit = entity.unit().unwrap_or("no unit");
                return Err(ToolError::InvalidArguments(format!(
                    "`{id}` is not an energy meter (its unit is {unit}); analyze_energy reads meters in kWh or \
Wh. Name energy sensors such as `sensor.house_energy`, or leave entity_ids out to analyse every energy meter."
                )));
            }
            meters.push(entity);
        }
        return Ok((meters, 0));
    }
    let mut meters: Vec<Entity> = home
        .entities()
        .await?
        .into_iter()
        .filter(|e| e.domain == "sensor" && e.device_class() == Some("energy") && kwh_per_unit(e.unit()).is_some())
        .collect();
    meters.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
    let left_out = meters.len().saturating_sub(MAX_AUTO);
    meters.truncate(MAX_AUTO);
    Ok((meters, left_out))
}

/// Reads the meters' hourly statistics (history when the house keeps
/// none) over the window and works out each meter's use.
pub(crate) async fn read_meters(
    home: &dyn Home,
    meters: &[Entity],
    window: &Window,
) -> Result<Vec<MeterReport>, ToolError> {
    let (from, end) = (window.from, window.end);
    let ids: Vec<String> = meters.iter().map(|m| m.entity_id.clone()).collect();
    // One hour before the window, so the first hour's use has a reading
    // to count from.
    let fetch_from = from - HOUR_MS;
    let statistics = match home.statistics(&ids, fetch_from, end, StatisticsPeriod::Hour).await {
        Ok(stats) => stats,
        Err(e) if e.is_transient() => return Err(e.into()),
        // A house that cannot give statistics still has history.
        Err(_) => Vec::new(),
    };
    let histories = home.history(&ids, fetch_from, end).await?;
    Ok(meters
        .iter()
        .map(|meter| {
            let stats = statistics.iter().find(|s| s.statistic_id == meter.entity_id);
            let points = histories
                .iter()
                .find(|h| h.entity_id == meter.entity_id)
                .map(|h| h.points.as_slice())
                .unwrap_or_default();
            MeterReport::build(meter, stats, points, from, end)
        })
        .collect())
}

#[async_trait]
impl Tool for AnalyzeEnergy {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<String, ToolError> {
        let args = arguments_object(&arguments, &["hours", "entity_ids", "price_per_kwh"])?;
        let hours = optional_number(&args, "hours", MIN_HOURS, MAX_HOURS)?.unwrap_or(DEFAULT_HOURS);
        let price = optional_number(&args, "price_per_kwh", 0.0, MAX_PRICE)?.or(self.default_price);
        let ids = match args.get("entity_ids") {
            Some(v) if !v.is_null() => Some(entity_id_list(&args, "entity_ids", MAX_ENTITIES)?),
            _ => None,
        };
        let (meters, meters_left_out) = select_meters(self.home.as_ref(), ids).await?;
        let window = Window::ending_at(self.clock.now_ms(), hours);
        let mut out = json!({
            "start": rfc3339(window.from),
            "end": rfc3339(window.end),
            "hours": round(hours, 2),
            "energy_unit": "kWh",
            "times": "all times, hours and days are UTC",
        });
        if meters.is_empty() {
            out["meters"] = json!(0);
            out["note"] = json!("this home has no energy meters (sensors with device_class energy in kWh or Wh)");
            return Ok(out.to_string());
        }
        let reports = read_meters(self.home.as_ref(), &meters, &window).await?;
        let run = EnergyRun { window, reports, meters_left_out };
        if let Some(store) = &self.insights {
            self.keep_insight(store.as_ref(), &run, price, ctx, &mut out).await;
        }
        render(out, run.reports, price, meters_left_out, window.from)
    }
}

/// What one meter showed.
pub(crate) struct MeterReport {
    pub(crate) entity_id: String,
    pub(crate) name: String,
    source: &'static str,
    /// Hour by hour, within the window.
    pub(crate) series: HourlySeries,
    /// The recorded states, for gaps, flatlines and unavailability.
    pub(crate) points: Vec<HistoryPoint>,
    /// The end of the window.
    pub(crate) end: i64,
}

impl MeterReport {
    pub(crate) fn build(
        meter: &Entity,
        stats: Option<&EntityStatistics>,
        points: &[HistoryPoint],
        from: i64,
        end: i64,
    ) -> Self {
        let entity_scale = kwh_per_unit(meter.unit()).unwrap_or(1.0);
        let (source, series) = match stats.filter(|s| s.rows.len() >= 2) {
            Some(s) => {
                let scale = kwh_per_unit(s.unit.as_deref()).unwrap_or(entity_scale);
                ("statistics", hourly_from_statistics(&s.rows, scale))
            }
            None => ("history", hourly_from_history(points, entity_scale)),
        };
        MeterReport {
            entity_id: meter.entity_id.clone(),
            name: meter.name.clone(),
            source,
            series: series.within(from, end),
            points: points.to_vec(),
            end,
        }
    }

    pub(crate) fn kwh(&self) -> f64 {
        self.series.total_kwh()
    }

    /// Everything about the meter, compact.
    pub(crate) fn details(&self, from: i64) -> Value {
        let hours = &self.series.hours;
        let mut out = json!({
            "entity_id": self.entity_id,
            "kwh": kwh(self.kwh()),
            "source": self.source,
            "hours_with_data": hours.len(),
        });
        let estimated = hours.iter().filter(|h| h.estimated).count();
        if estimated > 0 {
            out["estimated_hours"] = json!(estimated);
        }
        if self.series.resets > 0 {
            out["meter_resets"] = json!(self.series.resets);
        }
        out["daily"] = json!(daily_profile(hours)
            .iter()
            .map(|d| {
                let mut day = json!({"date": date(d.start), "kwh": kwh(d.kwh), "hours": d.hours});
                if d.estimated_hours > 0 {
                    day["estimated_hours"] = json!(d.estimated_hours);
                }
                day
            })
            .collect::<Vec<_>>());
        let mut profile = vec![Value::Null; 24];
        for slot in hourly_profile(hours) {
            if let Some(cell) = profile.get_mut(usize::from(slot.hour)) {
                *cell = json!(kwh(slot.mean_kwh));
            }
        }
        out["mean_kwh_by_hour_of_day"] = json!(profile);
        if let Some(base) = baseline(hours, BASELINE_PERCENTILE) {
            out["baseline_kwh_per_hour"] = json!(kwh(base.kwh_per_hour));
        }
        out["peaks"] = json!(peaks(hours, MAX_PEAKS)
            .iter()
            .map(|p| json!({"at": rfc3339(p.start), "kwh": kwh(p.kwh)}))
            .collect::<Vec<_>>());
        if let Some(scan) = anomalies(hours, DEFAULT_ANOMALY_THRESHOLD) {
            let mut found = json!({
                "median_kwh": kwh(scan.median_kwh),
                "spread": scan.spread,
                "hours": scan.anomalies.iter().take(MAX_ANOMALIES)
                    .map(|a| json!({"at": rfc3339(a.start), "kwh": kwh(a.kwh), "z": round(a.z, 1)}))
                    .collect::<Vec<_>>(),
            });
            if scan.anomalies.len() > MAX_ANOMALIES {
                found["more"] = json!(scan.anomalies.len() - MAX_ANOMALIES);
            }
            out["anomalies"] = found;
        }
        self.add_findings(&mut out, from);
        out
    }

    fn add_findings(&self, out: &mut Value, from: i64) {
        let gaps: Vec<Value> = data_gaps(&self.points, self.end)
            .iter()
            .filter(|g| g.end > from)
            .map(|g| stretch(g.start, g.end, g.ongoing))
            .collect();
        put_list(out, "data_gaps", gaps);
        let down: Vec<Value> = unavailability_windows(&self.points, self.end)
            .iter()
            .filter(|u| u.end > from)
            .map(|u| stretch(u.start, u.end, u.ongoing))
            .collect();
        put_list(out, "unavailable", down);
        let flats: Vec<Value> = meter_flatlines(&self.points)
            .iter()
            .filter(|f| f.end > from)
            .map(|f| {
                let mut item = stretch(f.start, f.end, false);
                item["reading"] = json!(f.value);
                item
            })
            .collect();
        if !flats.is_empty() {
            out["flatline_note"] = json!("a meter standing still means nothing was used, not necessarily a fault");
        }
        put_list(out, "flatlines", flats);
    }
}

/// The meters by use, biggest first, with their share and cost.
pub(crate) fn consumers_json(consumers: &[Consumer], reports: &[MeterReport], price: Option<f64>) -> Value {
    json!(consumers
        .iter()
        .map(|c| {
            let name = reports.iter().find(|r| r.entity_id == c.entity_id).map(|r| r.name.as_str()).unwrap_or("");
            let mut item =
                json!({"entity_id": c.entity_id, "name": name, "kwh": kwh(c.kwh), "share_pct": round(c.share * 100.0, 1)});
            if let Some(p) = price {
                item["cost"] = json!(round(cost(c.kwh, p).cost, 2));
            }
            item
        })
        .collect::<Vec<_>>())
}

/// Puts a non-empty list under `key`, at most [`MAX_FINDINGS`] items, with
/// the count of the rest.
fn put_list(out: &mut Value, key: &str, mut items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if items.len() > MAX_FINDINGS {
        out[format!("more_{key}")] = json!(items.len() - MAX_FINDINGS);
        items.truncate(MAX_FINDINGS);
    }
    out[key] = json!(items);
}

fn stretch(start: i64, end: i64, ongoing: bool) -> Value {
    let mut item =
        json!({"from": rfc3339(start), "to": rfc3339(end), "hours": round((end - start) as f64 / HOUR_MS as f64, 2)});
    if ongoing {
        item["ongoing"] = json!(true);
    }
    item
}

pub(crate) fn kwh(v: f64) -> f64 {
    round(v, 3)
}

/// `2026-03-10`.
pub(crate) fn date(ms: i64) -> String {
    let stamp = rfc3339(ms);
    stamp.get(..10).map(String::from).unwrap_or(stamp)
}

/// The whole answer, sized to the budget: meters are detailed biggest
/// first, and those that do not fit are listed with their total only.
fn render(
    mut out: Value,
    mut reports: Vec<MeterReport>,
    price: Option<f64>,
    meters_left_out: usize,
    from: i64,
) -> Result<String, ToolError> {
    let totals: Vec<(String, f64)> = reports.iter().map(|r| (r.entity_id.clone(), r.kwh())).collect();
    let consumers = top_consumers(&totals);
    reports.sort_by(|a, b| b.kwh().total_cmp(&a.kwh()).then_with(|| a.entity_id.cmp(&b.entity_id)));
    let total: f64 = totals.iter().map(|(_, k)| k).sum();
    out["meters"] = json!(reports.len());
    out["total_kwh"] = json!(kwh(total));
    out["top_consumers"] = consumers_json(&consumers, &reports, price);
    if reports.len() > 1 {
        out["note"] = json!(
            "shares are of the sum of the meters listed: a whole-house meter already includes its sub-meters, and a \
production meter (solar) counts energy produced, not used"
        );
    }
    if let Some(p) = price {
        let c = cost(total, p);
        out["cost"] = json!({
            "price_per_kwh": p,
            "kwh": kwh(c.kwh),
            "total": round(c.cost, 2),
            "currency": "the one the price was given in",
        });
    }
    let briefs: Vec<Value> = reports
        .iter()
        .map(|r| json!({"entity_id": r.entity_id, "kwh": kwh(r.kwh()), "details": "left out for length"}))
        .collect();
    out["details"] = json!(briefs);
    let mut size = out.to_string().len() + 200;
    let mut omitted = 0;
    for (i, report) in reports.iter().enumerate() {
        let full = report.details(from);
        let (full_len, brief_len) = (full.to_string().len(), out["details"][i].to_string().len());
        if size - brief_len + full_len <= BUDGET {
            size = size - brief_len + full_len;
            out["details"][i] = full;
        } else {
            omitted += 1;
        }
    }
    let mut left_out = Vec::new();
    if omitted > 0 {
        left_out.push(format!(
            "the details of {omitted} smaller meter(s); ask again with entity_ids naming them to see those"
        ));
    }
    if meters_left_out > 0 {
        left_out.push(format!(
            "{meters_left_out} more energy meter(s) beyond the first {MAX_AUTO}; name them in entity_ids"
        ));
    }
    if !left_out.is_empty() {
        out["left_out"] = json!(left_out.join("; "));
    }
    let text = out.to_string();
    if text.len() > OUTPUT_CAP {
        return Err(ToolError::Failed(format!(
            "the energy analysis came to {} bytes, more than the {OUTPUT_CAP} allowed; name fewer meters in entity_ids",
            text.len()
        )));
    }
    Ok(text)
}
