//! Insights: what an analysis found, worded for a person, with the numbers
//! it rests on and a chart, kept in the store so an answer can link them.
//!
//! The energy insight is built from the same readings and arithmetic as the
//! `analyze_energy` tool ([`crate::home::tools::AnalyzeEnergy`]), so the
//! chat answer, the saved insight and `POST /api/insights/analyze` agree.
//! Everything here is worked out without a model.

use serde_json::{json, Value};
use steward_protocol::insight::{Chart, ChartBand, ChartKind, ChartPoint, ChartSeries, Insight};

use crate::clock::Clock;
use crate::home::energy::{
    anomalies, baseline, cost, data_gaps, meter_flatlines, peaks, top_consumers, unavailability_windows,
    BASELINE_PERCENTILE, DEFAULT_ANOMALY_THRESHOLD, HOUR_MS,
};
use crate::home::tools::energy::{
    consumers_json, kwh, meter_ids, read_meters, select_meters, EnergyRun, MeterReport, Window, MAX_PRICE,
};
use crate::home::Home;
use crate::tool::ToolError;
use crate::tools::rfc3339;

/// The kind of an energy insight.
pub const ENERGY_KIND: &str = "energy";
/// The shortest window an energy insight looks at, in hours.
pub const MIN_HOURS: u32 = 24;
/// The longest window, one week: long enough for a weekly pattern, short
/// enough for hourly points to stay readable on a chart.
pub const MAX_HOURS: u32 = 168;
/// The window when none is asked for.
pub const DEFAULT_HOURS: u32 = 24;
/// Meters drawn on a chart at most: more lines than this cannot be told apart.
const CHART_METERS: usize = 4;
/// Shaded stretches on a chart at most.
const CHART_BANDS: usize = 8;
/// Meters whose full details go into the evidence at most; the rest are
/// listed with their totals only.
const EVIDENCE_METERS: usize = 6;
/// Unusual hours named in a summary at most.
const SUMMARY_ANOMALIES: usize = 3;

/// Where an insight's chart is served, as SVG; `.png` instead of `.svg`
/// gives the same chart as a picture.
pub fn chart_url(insight_id: &str) -> String {
    format!("/api/insights/{insight_id}/chart.svg")
}

/// A fresh insight id: `ins_` and 16 hex digits.
pub fn new_insight_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("ins_{}", hex.get(..16).unwrap_or(&hex))
}

/// An insight before it is stored: everything but who made it, when, and
/// its id.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightDraft {
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub evidence: Value,
    pub entity_ids: Vec<String>,
    pub chart: Option<Chart>,
}

impl InsightDraft {
    /// The insight to store, with `chart_url` set when it has a chart.
    pub fn into_insight(
        self,
        id: String,
        created_by: String,
        created_at: i64,
        conversation_id: Option<String>,
    ) -> Insight {
        Insight {
            chart_url: self.chart.as_ref().map(|_| chart_url(&id)),
            id,
            kind: self.kind,
            title: self.title,
            summary: self.summary,
            evidence: self.evidence,
            entity_ids: self.entity_ids,
            chart: self.chart,
            conversation_id,
            created_by,
            created_at,
        }
    }
}

/// Why an energy analysis could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyzeError {
    /// A request value is out of range or names something that is not an
    /// energy meter; `field` is the request field to fix.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error(
        "this home has no energy meters (sensors with device_class energy in kWh or Wh), so there is nothing to \
analyse; add an energy meter to Home Assistant or name one in entity_ids"
    )]
    NoMeters,
    /// The house could not be read.
    #[error("{0}")]
    Home(ToolError),
}

/// Analyses the energy meters over the last `hours` (24 to 168) and words
/// what was found: the total, the biggest consumer, its busiest hour and
/// standby load, the cost when a price is known, and holes, stuck meters and
/// unusual hours; with the numbers as evidence and a line chart of hourly
/// use per meter, its data gaps shaded.
pub async fn analyze_energy_insight(
    home: &dyn Home,
    clock: &dyn Clock,
    hours: u32,
    entity_ids: Option<Vec<String>>,
    price_per_kwh: Option<f64>,
) -> Result<InsightDraft, AnalyzeError> {
    if !(MIN_HOURS..=MAX_HOURS).contains(&hours) {
        return Err(AnalyzeError::Invalid {
            field: "hours",
            message: format!("hours must be from {MIN_HOURS} to {MAX_HOURS} (one week), not {hours}"),
        });
    }
    if let Some(p) = price_per_kwh {
        if !(p.is_finite() && (0.0..=MAX_PRICE).contains(&p)) {
            return Err(AnalyzeError::Invalid {
                field: "price_per_kwh",
                message: format!("price_per_kwh must be a number from 0 to {MAX_PRICE}, not {p}"),
            });
        }
    }
    let invalid_ids = |e: ToolError| match e {
        ToolError::InvalidArguments(message) => AnalyzeError::Invalid { field: "entity_ids", message },
        other @ ToolError::Failed(_) => AnalyzeError::Home(other),
    };
    let ids = match entity_ids {
        None => None,
        Some(ids) if ids.is_empty() => {
            return Err(AnalyzeError::Invalid {
                field: "entity_ids",
                message: "entity_ids is empty; name at least one energy meter, or leave entity_ids out to analyse \
every energy meter"
                    .into(),
            })
        }
        Some(ids) => Some(meter_ids(&ids).map_err(invalid_ids)?),
    };
    let (meters, meters_left_out) = select_meters(home, ids).await.map_err(invalid_ids)?;
    if meters.is_empty() {
        return Err(AnalyzeError::NoMeters);
    }
    let window = Window::ending_at(clock.now_ms(), f64::from(hours));
    let reports = read_meters(home, &meters, &window).await.map_err(AnalyzeError::Home)?;
    Ok(energy_draft(&EnergyRun { window, reports, meters_left_out }, price_per_kwh))
}

/// The insight of an energy analysis already made.
pub(crate) fn energy_draft(run: &EnergyRun, price: Option<f64>) -> InsightDraft {
    let window = run.window;
    let mut reports: Vec<&MeterReport> = run.reports.iter().collect();
    reports.sort_by(|a, b| b.kwh().total_cmp(&a.kwh()).then_with(|| a.entity_id.cmp(&b.entity_id)));
    let total: f64 = reports.iter().map(|r| r.kwh()).sum();
    let findings: Vec<Findings> = reports.iter().map(|r| Findings::of(r, window.from)).collect();
    let hours = window.hours.round();

    let mut title = format!("Energy use over the last {hours} hours: {} kWh", number(total));
    let mut summary = vec![format!(
        "Over the {hours} hours from {} to {} UTC, {} recorded {} kWh in total.",
        minute(window.from),
        minute(window.end),
        plural(reports.len(), "energy meter", "energy meters"),
        number(total)
    )];
    if let (Some(top), Some(found)) = (reports.first(), findings.first()) {
        if top.kwh() > 0.0 {
            title.push_str(&format!(", most by {}", label(top)));
            if reports.len() > 1 {
                let share = if total > 0.0 { top.kwh() / total * 100.0 } else { 0.0 };
                summary.push(format!(
                    "{} ({}) used the most: {} kWh, {}% of the total.",
                    label(top),
                    top.entity_id,
                    number(top.kwh()),
                    share.round()
                ));
            }
            let mut about = Vec::new();
            if let Some((at, used)) = found.peak {
                about.push(format!("its busiest hour began {} UTC with {} kWh", minute(at), number(used)));
            }
            if let Some(base) = found.baseline {
                about.push(format!("its standby load is about {} kW", number(base)));
            }
            if !about.is_empty() {
                summary.push(capitalise(&format!("{}.", about.join(", and "))));
            }
        } else {
            summary.push("Nothing was used: every meter stood still.".into());
        }
    }
    if let Some(p) = price {
        summary.push(format!("At {} per kWh that comes to {:.2}.", number(p), cost(total, p).cost));
    }
    summary.extend(problem_sentences(&reports, &findings));
    if run.meters_left_out > 0 {
        summary.push(format!(
            "{} were left out; name them in entity_ids to include them.",
            plural(run.meters_left_out, "more meter", "more meters")
        ));
    }

    InsightDraft {
        kind: ENERGY_KIND.into(),
        title,
        summary: summary.join(" "),
        evidence: evidence(run, &reports, price, total),
        entity_ids: reports.iter().map(|r| r.entity_id.clone()).collect(),
        chart: Some(chart(&reports, &findings, window)),
    }
}

/// What went wrong or stood out on one meter, within the window.
struct Findings {
    /// `(hour start, kWh)` of the busiest measured hour.
    peak: Option<(i64, f64)>,
    /// kWh per hour in the quietest hours.
    baseline: Option<f64>,
    /// `(start, end)` of stretches without readings.
    gaps: Vec<(i64, i64)>,
    /// `(start, end)` of stretches the meter said it was unavailable.
    unavailable: Vec<(i64, i64)>,
    /// `(start, end)` of stretches the reading stood still for a day or more.
    flatlines: Vec<(i64, i64)>,
    /// `(hour start, kWh)` of hours that used far more than usual, most
    /// unusual first.
    anomalies: Vec<(i64, f64)>,
}

impl Findings {
    fn of(r: &MeterReport, from: i64) -> Self {
        let hours = &r.series.hours;
        let clip = |start: i64, end: i64| (start.max(from), end);
        Findings {
            peak: peaks(hours, 1).first().map(|p| (p.start, p.kwh)),
            baseline: baseline(hours, BASELINE_PERCENTILE).map(|b| b.kwh_per_hour),
            gaps: data_gaps(&r.points, r.end).iter().filter(|g| g.end > from).map(|g| clip(g.start, g.end)).collect(),
            unavailable: unavailability_windows(&r.points, r.end)
                .iter()
                .filter(|u| u.end > from)
                .map(|u| clip(u.start, u.end))
                .collect(),
            flatlines: meter_flatlines(&r.points)
                .iter()
                .filter(|f| f.end > from)
                .map(|f| clip(f.start, f.end))
                .collect(),
            // Only more use than usual: an hour that used less is rarely news.
            anomalies: anomalies(hours, DEFAULT_ANOMALY_THRESHOLD)
                .map(|scan| scan.anomalies.iter().filter(|a| a.z > 0.0).map(|a| (a.start, a.kwh)).collect())
                .unwrap_or_default(),
        }
    }
}

/// Sentences about holes, stuck meters and unusual hours; one saying none
/// were found otherwise.
fn problem_sentences(reports: &[&MeterReport], findings: &[Findings]) -> Vec<String> {
    let mut out = Vec::new();
    for (r, f) in reports.iter().zip(findings) {
        if let Some(&(start, end)) = f.gaps.first() {
            let more = if f.gaps.len() > 1 { format!(" ({} gaps in all)", f.gaps.len()) } else { String::new() };
            out.push(format!(
                "{} had no data for {} from {} UTC{more}; its use across the hole is estimated.",
                label(r),
                duration(end - start),
                minute(start)
            ));
        }
        if let Some(&(start, end)) = f.unavailable.first() {
            out.push(format!("{} was unavailable for {} from {} UTC.", label(r), duration(end - start), minute(start)));
        }
        if let Some(&(start, end)) = f.flatlines.first() {
            out.push(format!(
                "{}'s reading stood still for {} from {} UTC: nothing was used, or the meter is stuck.",
                label(r),
                duration(end - start),
                minute(start)
            ));
        }
    }
    let mut unusual: Vec<(String, i64, f64)> = Vec::new();
    for (r, f) in reports.iter().zip(findings) {
        unusual.extend(f.anomalies.iter().map(|&(at, kwh)| (label(r), at, kwh)));
    }
    if !unusual.is_empty() {
        unusual.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
        let named: Vec<String> = unusual
            .iter()
            .take(SUMMARY_ANOMALIES)
            .map(|(name, at, kwh)| format!("{name} at {} UTC ({} kWh)", minute(*at), number(*kwh)))
            .collect();
        let count = plural(unusual.len(), "hour", "hours");
        let lead = if unusual.len() > SUMMARY_ANOMALIES { "; the highest: " } else { ": " };
        out.push(format!(
            "{count} used far more than usual (a robust z-score above {DEFAULT_ANOMALY_THRESHOLD}){lead}{}.",
            named.join("; ")
        ));
    }
    if out.is_empty() {
        out.push("No data gaps, stuck meters or unusual hours were found.".into());
    }
    out
}

/// The numbers the insight rests on: totals and shares, the cost, and each
/// large meter's details as the `analyze_energy` tool reports them.
fn evidence(run: &EnergyRun, reports: &[&MeterReport], price: Option<f64>, total: f64) -> Value {
    let window = run.window;
    let totals: Vec<(String, f64)> = reports.iter().map(|r| (r.entity_id.clone(), r.kwh())).collect();
    let mut out = json!({
        "start": rfc3339(window.from),
        "end": rfc3339(window.end),
        "hours": window.hours,
        "energy_unit": "kWh",
        "times": "UTC",
        "meters": reports.len(),
        "total_kwh": kwh(total),
        "top_consumers": consumers_json(&top_consumers(&totals), &run.reports, price),
        "details": reports.iter().take(EVIDENCE_METERS).map(|r| r.details(window.from)).collect::<Vec<_>>(),
    });
    if let Some(p) = price {
        out["cost"] =
            json!({"price_per_kwh": p, "kwh": kwh(total), "total": (cost(total, p).cost * 100.0).round() / 100.0});
    }
    if reports.len() > EVIDENCE_METERS {
        out["details_left_out"] = json!(reports.len() - EVIDENCE_METERS);
    }
    if run.meters_left_out > 0 {
        out["meters_left_out"] = json!(run.meters_left_out);
    }
    out
}

/// Hourly kWh of the biggest meters, one point per hour of the window;
/// hours without a reading of their own are holes (the line breaks), and
/// the stretches without data are shaded.
fn chart(reports: &[&MeterReport], findings: &[Findings], window: Window) -> Chart {
    let hours: Vec<i64> = (0..)
        .map(|k| window.from + k * HOUR_MS)
        .take_while(|&h| h < window.end)
        // One point per hour, and a bound whatever the window says.
        .take(MAX_HOURS as usize + 1)
        .collect();
    let charted: Vec<(&&MeterReport, &Findings)> = reports.iter().zip(findings).take(CHART_METERS).collect();
    let series = charted
        .iter()
        .map(|(r, _)| ChartSeries {
            name: label(r),
            points: hours
                .iter()
                .map(|&h| {
                    let y = r.series.hours.iter().find(|u| u.start == h && !u.estimated).map(|u| kwh(u.kwh));
                    ChartPoint { x: h, y, label: None }
                })
                .collect(),
        })
        .collect();
    let mut bands = Vec::new();
    for (r, f) in &charted {
        let name = label(r);
        bands.extend(f.gaps.iter().map(|&(from, to)| (from, to, format!("no data: {name}"))));
        bands.extend(f.unavailable.iter().map(|&(from, to)| (from, to, format!("unavailable: {name}"))));
    }
    bands.sort_by_key(|b| b.0);
    Chart {
        kind: ChartKind::Line,
        title: format!("Hourly energy use, {} to {} UTC", minute(window.from), minute(window.end)),
        y_unit: "kWh".into(),
        series,
        bands: bands
            .into_iter()
            .take(CHART_BANDS)
            .map(|(from, to, label)| ChartBand { from, to: to.min(window.end), label })
            .collect(),
    }
}

/// A meter's name, or its id when it has none.
fn label(r: &MeterReport) -> String {
    if r.name.trim().is_empty() {
        r.entity_id.clone()
    } else {
        r.name.clone()
    }
}

/// `2026-03-10 14:00`.
fn minute(ms: i64) -> String {
    let stamp = rfc3339(ms);
    match (stamp.get(..10), stamp.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => stamp,
    }
}

/// kWh for a sentence: three significant decimals for small amounts,
/// one for large ones.
fn number(v: f64) -> String {
    let places = if v.abs() >= 100.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `7 hours`, `45 minutes`, `2.5 days`.
fn duration(ms: i64) -> String {
    let hours = ms as f64 / HOUR_MS as f64;
    if hours < 1.0 {
        plural((ms / 60_000).max(1) as usize, "minute", "minutes")
    } else if hours < 48.0 {
        let h = (hours * 10.0).round() / 10.0;
        if h == 1.0 {
            "1 hour".into()
        } else {
            format!("{} hours", number(h))
        }
    } else {
        format!("{} days", number((hours / 24.0 * 10.0).round() / 10.0))
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_plainly() {
        assert_eq!(number(152.345), "152.3");
        assert_eq!(number(3.5), "3.5");
        assert_eq!(number(0.4123), "0.412");
        assert_eq!(number(2.0), "2");
        assert_eq!(duration(7 * HOUR_MS), "7 hours");
        assert_eq!(duration(HOUR_MS), "1 hour");
        assert_eq!(duration(30 * 60_000), "30 minutes");
        assert_eq!(duration(72 * HOUR_MS), "3 days");
        assert_eq!(minute(1_773_151_620_000), "2026-03-10 14:07");
        assert_eq!(capitalise("for it, x."), "For it, x.");
    }

    const T0: i64 = 1_773_100_800_000; // 2026-03-10T00:00:00Z

    /// A kWh meter read every 15 minutes from an hour before `T0` for 49
    /// hours, using 1 kWh an hour, 6 kWh in hour 30, and silent in hours
    /// 10 to 15.
    fn house_meter() -> (crate::home::Entity, Vec<crate::home::HistoryPoint>) {
        let entity = crate::home::Entity {
            entity_id: "sensor.house_energy".into(),
            domain: "sensor".into(),
            name: "House energy".into(),
            aliases: vec![],
            area_id: None,
            device_id: None,
            state: "0".into(),
            attributes: json!({"unit_of_measurement": "kWh", "device_class": "energy", "state_class": "total_increasing"}),
            last_changed: T0,
            last_updated: T0,
            available: true,
        };
        let quarter = HOUR_MS / 4;
        let mut total = 100.0;
        let mut points = Vec::new();
        for q in -4i64..(49 * 4) {
            let hour = q.div_euclid(4);
            total += if hour == 30 { 1.5 } else { 0.25 };
            if (10..16).contains(&hour) {
                continue;
            }
            points.push(crate::home::HistoryPoint { at: T0 + q * quarter, state: format!("{total:.2}") });
        }
        (entity, points)
    }

    #[test]
    fn an_energy_analysis_becomes_an_insight_with_a_chart() {
        let (meter, points) = house_meter();
        let window = Window::ending_at(T0 + 48 * HOUR_MS + 7 * 60_000, 48.0);
        assert_eq!(window.from, T0);
        let report = MeterReport::build(&meter, None, &points, window.from, window.end);
        let total = report.kwh();
        let draft = energy_draft(&EnergyRun { window, reports: vec![report], meters_left_out: 0 }, Some(0.3));

        assert_eq!(draft.kind, "energy");
        assert_eq!(draft.entity_ids, ["sensor.house_energy"]);
        assert!(draft.title.contains(&format!("{} kWh", number(total))), "{}", draft.title);
        let summary = &draft.summary;
        assert!(summary.contains(&format!("recorded {} kWh in total", number(total))), "{summary}");
        assert!(summary.contains("busiest hour began 2026-03-11 06:00 UTC with"), "{summary}");
        assert!(summary.contains("standby load is about 1 kW"), "{summary}");
        assert!(summary.contains(&format!("that comes to {:.2}", total * 0.3)), "{summary}");
        assert!(summary.contains("House energy had no data for"), "{summary}");
        assert!(
            summary.contains(
                "used far more than usual (a robust z-score above 3.5): House energy at 2026-03-11 06:00 UTC (6 kWh)"
            ),
            "{summary}"
        );
        assert_eq!(draft.evidence["total_kwh"], json!(kwh(total)));
        assert_eq!(draft.evidence["details"][0]["entity_id"], "sensor.house_energy");
        assert!(draft.evidence["cost"]["total"].as_f64().is_some());

        let chart = draft.chart.unwrap();
        assert_eq!((chart.kind, chart.y_unit.as_str()), (ChartKind::Line, "kWh"));
        assert_eq!(chart.series.len(), 1);
        let points = &chart.series[0].points;
        assert_eq!(points.len(), 49, "one point per hour of the window, the last one partial");
        assert_eq!(points[0].x, T0);
        assert_eq!(points[5].y, Some(1.0));
        assert_eq!(points[30].y, Some(6.0));
        assert!(points[11..16].iter().all(|p| p.y.is_none()), "the hole breaks the line: {points:?}");
        assert_eq!(chart.bands.len(), 1, "{:?}", chart.bands);
        assert_eq!(chart.bands[0].label, "no data: House energy");
        assert!(chart.bands[0].from < T0 + 11 * HOUR_MS && chart.bands[0].to >= T0 + 16 * HOUR_MS);
    }

    #[test]
    fn a_meter_that_used_nothing_says_so() {
        let (meter, _) = house_meter();
        let points: Vec<crate::home::HistoryPoint> =
            (0..30).map(|h| crate::home::HistoryPoint { at: T0 + h * HOUR_MS, state: "42".into() }).collect();
        let window = Window::ending_at(T0 + 29 * HOUR_MS, 24.0);
        let report = MeterReport::build(&meter, None, &points, window.from, window.end);
        let draft = energy_draft(&EnergyRun { window, reports: vec![report], meters_left_out: 2 }, None);
        assert!(draft.summary.contains("Nothing was used"), "{}", draft.summary);
        assert!(draft.summary.contains("stood still for"), "{}", draft.summary);
        assert!(draft.summary.contains("2 more meters were left out"), "{}", draft.summary);
        assert!(!draft.summary.contains("comes to"), "no price, no cost: {}", draft.summary);
        assert_eq!(draft.evidence["meters_left_out"], 2);
    }

    #[test]
    fn an_insight_gets_its_chart_url_from_its_id() {
        let draft = InsightDraft {
            kind: "note".into(),
            title: "t".into(),
            summary: "s".into(),
            evidence: json!({}),
            entity_ids: vec![],
            chart: None,
        };
        let plain = draft.clone().into_insight("ins_1".into(), "user:local".into(), 5, None);
        assert_eq!(plain.chart_url, None);
        let charted = InsightDraft {
            chart: Some(Chart {
                kind: ChartKind::Bar,
                title: "c".into(),
                y_unit: String::new(),
                series: vec![],
                bands: vec![],
            }),
            ..draft
        }
        .into_insight("ins_2".into(), "user:local".into(), 5, None);
        assert_eq!(charted.chart_url.as_deref(), Some("/api/insights/ins_2/chart.svg"));
        let id = new_insight_id();
        assert!(id.starts_with("ins_") && id.len() == 20, "{id}");
    }
}
