//! Reading energy meters: how much was used per hour and per day, the
//! standby load, the peaks, the biggest consumers, what it cost, and where
//! the data is missing or odd.
//!
//! Everything here is a plain function over recorded readings; nothing
//! talks to the house. Energy is in kWh throughout (readings in Wh or MWh
//! are scaled on the way in) and times are milliseconds since the Unix
//! epoch. Hours and days are UTC.
//!
//! A meter (`state_class` `total` or `total_increasing`) reports a running
//! total; what was used in an hour is the difference of two readings. When
//! the total drops the meter was reset (replaced, or it rolled over), and
//! the drop is not counted as use. When readings are missing for several
//! hours, what was used across the hole is spread evenly over those hours
//! and the hours are marked as estimated.

use std::collections::BTreeMap;

use serde::Serialize;

use super::analysis::{find_flatlines, find_gaps, Flatline, Gap, GapKind};
use super::types::{parse_number, HistoryPoint, StatisticsRow};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The robust z-score above which an hour counts as unusual.
pub const DEFAULT_ANOMALY_THRESHOLD: f64 = 3.5;
/// The percentile of hourly use taken as the standby load.
pub const BASELINE_PERCENTILE: f64 = 10.0;
/// A meter that does not move for this long is worth a mention.
pub const METER_FLATLINE_MS: i64 = 24 * HOUR_MS;

/// How many kWh one unit of an energy reading is: 1 for kWh, 0.001 for
/// Wh, 1000 for MWh; `None` for anything that is not energy.
pub fn kwh_per_unit(unit: Option<&str>) -> Option<f64> {
    match unit?.trim() {
        "kWh" => Some(1.0),
        "Wh" => Some(0.001),
        "MWh" => Some(1000.0),
        _ => None,
    }
}

/// The start of the UTC hour holding `ms`.
pub fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The start of the UTC day holding `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// Energy used in one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HourlyUse {
    /// The start of the hour.
    pub start: i64,
    pub kwh: f64,
    /// True when no reading fell in this hour and its use is a share of
    /// what was used across a hole in the data.
    pub estimated: bool,
}

/// Hour-by-hour use of one meter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HourlySeries {
    /// Oldest first, one entry per hour from the first reading's hour to
    /// the last's. The first reading only sets the starting point, so its
    /// hour shows the use after it within that hour, if any.
    pub hours: Vec<HourlyUse>,
    /// How many times the running total dropped (meter resets).
    pub resets: usize,
}

impl HourlySeries {
    pub fn total_kwh(&self) -> f64 {
        self.hours.iter().map(|h| h.kwh).sum()
    }

    /// Only the hours whose start lies in `[start, end)`.
    pub fn within(mut self, start: i64, end: i64) -> Self {
        self.hours.retain(|h| h.start >= start && h.start < end);
        self
    }

    /// The hours that hold a real reading (not estimated).
    pub fn measured(&self) -> Vec<HourlyUse> {
        self.hours.iter().copied().filter(|h| !h.estimated).collect()
    }
}

/// Hourly use from running-total readings `(time, total)`, oldest first.
/// `scale` converts a reading to kWh (see [`kwh_per_unit`]).
pub fn hourly_from_readings(readings: &[(i64, f64)], scale: f64) -> HourlySeries {
    let mut buckets: BTreeMap<i64, HourlyUse> = BTreeMap::new();
    let mut resets = 0;
    let mut previous: Option<(i64, f64)> = None;
    for &(at, total) in readings {
        let hour = hour_start(at);
        buckets.entry(hour).or_insert(HourlyUse { start: hour, kwh: 0.0, estimated: false }).estimated = false;
        let Some((prev_at, prev_total)) = previous.replace((at, total)) else { continue };
        let delta = total - prev_total;
        if delta < 0.0 {
            resets += 1;
            continue;
        }
        let used = delta * scale;
        let prev_hour = hour_start(prev_at);
        let spanned = (hour - prev_hour) / HOUR_MS;
        if spanned <= 1 {
            if let Some(bucket) = buckets.get_mut(&hour) {
                bucket.kwh += used;
            }
            continue;
        }
        // A hole: share the use among the hours after the last reading up
        // to this one's.
        let share = used / spanned as f64;
        for k in 1..=spanned {
            let start = prev_hour + k * HOUR_MS;
            let bucket = buckets.entry(start).or_insert(HourlyUse { start, kwh: 0.0, estimated: start != hour });
            bucket.kwh += share;
        }
    }
    HourlySeries { hours: buckets.into_values().collect(), resets }
}

/// Hourly use from a meter's hourly statistics rows. The `sum` column is
/// used when every row has one (it already ignores resets), the `state`
/// column otherwise; rows with neither are skipped.
pub fn hourly_from_statistics(rows: &[StatisticsRow], scale: f64) -> HourlySeries {
    let use_sum = !rows.is_empty() && rows.iter().all(|r| r.sum.is_some());
    let readings: Vec<(i64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let value = if use_sum { r.sum } else { r.state };
            value.filter(|v| v.is_finite()).map(|v| (r.start, v))
        })
        .collect();
    hourly_from_readings(&readings, scale)
}

/// Hourly use from a meter's recorded states; `unavailable` and other
/// non-numbers are skipped.
pub fn hourly_from_history(points: &[HistoryPoint], scale: f64) -> HourlySeries {
    let readings: Vec<(i64, f64)> = points.iter().filter_map(|p| parse_number(&p.state).map(|v| (p.at, v))).collect();
    hourly_from_readings(&readings, scale)
}

/// Energy used in one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayUse {
    /// The start of the day (midnight UTC).
    pub start: i64,
    pub kwh: f64,
    /// How many hours of the day have data (24 for a full day).
    pub hours: usize,
    /// How many of those hours are estimated across a hole.
    pub estimated_hours: usize,
}

/// kWh per UTC day, oldest first.
pub fn daily_profile(hours: &[HourlyUse]) -> Vec<DayUse> {
    let mut days: BTreeMap<i64, DayUse> = BTreeMap::new();
    for h in hours {
        let start = day_start(h.start);
        let day = days.entry(start).or_insert(DayUse { start, kwh: 0.0, hours: 0, estimated_hours: 0 });
        day.kwh += h.kwh;
        day.hours += 1;
        day.estimated_hours += usize::from(h.estimated);
    }
    days.into_values().collect()
}

/// The typical use in one hour of the day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HourOfDay {
    /// 0–23, UTC.
    pub hour: u8,
    /// Mean kWh used in this hour of the day.
    pub mean_kwh: f64,
    /// How many days' hours the mean is over.
    pub samples: usize,
}

/// Mean kWh per hour of the day (UTC) over the measured hours; hours of
/// the day without any are left out.
pub fn hourly_profile(hours: &[HourlyUse]) -> Vec<HourOfDay> {
    let mut slots = [(0.0f64, 0usize); 24];
    for h in hours.iter().filter(|h| !h.estimated) {
        let slot = (h.start.rem_euclid(DAY_MS) / HOUR_MS) as usize;
        if let Some((total, n)) = slots.get_mut(slot) {
            *total += h.kwh;
            *n += 1;
        }
    }
    slots
        .iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(hour, (total, n))| HourOfDay { hour: hour as u8, mean_kwh: total / *n as f64, samples: *n })
        .collect()
}

/// The `p`th percentile (0–100, nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied()
}

/// The standby load: what the meter uses in its quietest hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baseline {
    /// kWh per hour, which is also the mean draw in kW.
    pub kwh_per_hour: f64,
    /// Which percentile of hourly use this is.
    pub percentile: f64,
    /// How many measured hours it is taken over.
    pub hours: usize,
}

/// The `pct`th percentile of measured hourly use.
pub fn baseline(hours: &[HourlyUse], pct: f64) -> Option<Baseline> {
    let values: Vec<f64> = hours.iter().filter(|h| !h.estimated).map(|h| h.kwh).collect();
    percentile(&values, pct).map(|kwh_per_hour| Baseline { kwh_per_hour, percentile: pct, hours: values.len() })
}

/// The `n` measured hours with the most use, biggest first (earlier first
/// among equals).
pub fn peaks(hours: &[HourlyUse], n: usize) -> Vec<HourlyUse> {
    let mut measured: Vec<HourlyUse> = hours.iter().copied().filter(|h| !h.estimated && h.kwh > 0.0).collect();
    measured.sort_by(|a, b| b.kwh.total_cmp(&a.kwh).then(a.start.cmp(&b.start)));
    measured.truncate(n);
    measured
}

/// One meter's use over the window and its share of all meters'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consumer {
    pub entity_id: String,
    pub kwh: f64,
    /// Share of the sum over all meters given, 0–1 (0 when nothing was used).
    pub share: f64,
}

/// Meters by use over the window, biggest first.
pub fn top_consumers(totals: &[(String, f64)]) -> Vec<Consumer> {
    let sum: f64 = totals.iter().map(|(_, kwh)| kwh.max(0.0)).sum();
    let mut consumers: Vec<Consumer> = totals
        .iter()
        .map(|(id, kwh)| Consumer {
            entity_id: id.clone(),
            kwh: *kwh,
            share: if sum > 0.0 { kwh.max(0.0) / sum } else { 0.0 },
        })
        .collect();
    consumers.sort_by(|a, b| b.kwh.total_cmp(&a.kwh).then_with(|| a.entity_id.cmp(&b.entity_id)));
    consumers
}

/// What energy cost at a flat price. The currency is whatever the price
/// was given in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    pub kwh: f64,
    pub price_per_kwh: f64,
    pub cost: f64,
}

pub fn cost(kwh: f64, price_per_kwh: f64) -> Cost {
    Cost { kwh, price_per_kwh, cost: kwh * price_per_kwh }
}

/// A stretch in which the meter said it was `unavailable` or `unknown`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unavailability {
    pub start: i64,
    pub end: i64,
    /// Still unavailable at the end of the window.
    pub ongoing: bool,
    pub hours: f64,
}

/// Stretches of `unavailable` / `unknown` states in `points`.
pub fn unavailability_windows(points: &[HistoryPoint], window_end: i64) -> Vec<Unavailability> {
    find_gaps(points, window_end)
        .into_iter()
        .filter(|g| g.kind == GapKind::Unavailable)
        .map(|g| Unavailability {
            start: g.start,
            end: g.end,
            ongoing: g.ongoing,
            hours: (g.end - g.start) as f64 / HOUR_MS as f64,
        })
        .collect()
}

/// Stretches in which a regularly reporting meter recorded nothing.
pub fn data_gaps(points: &[HistoryPoint], window_end: i64) -> Vec<Gap> {
    find_gaps(points, window_end).into_iter().filter(|g| g.kind == GapKind::NoData).collect()
}

/// Runs in which the meter's reading did not move for a day or more:
/// nothing was used, or the meter is stuck.
pub fn meter_flatlines(points: &[HistoryPoint]) -> Vec<Flatline> {
    find_flatlines(points, METER_FLATLINE_MS)
}

/// How the spread of hourly use was measured for the z-scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpreadMeasure {
    /// The median absolute deviation (the usual robust z-score).
    Mad,
    /// Most hours equal the median, so the MAD is 0; the mean absolute
    /// deviation stands in for it.
    MeanAbsoluteDeviation,
    /// Every hour is the same: nothing can stand out.
    None,
}

/// An hour whose use stands far from the typical hour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Anomaly {
    /// The start of the hour.
    pub start: i64,
    pub kwh: f64,
    /// The robust z-score; positive for more use than usual.
    pub z: f64,
}

/// The outcome of scoring hourly use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyScan {
    /// Median kWh per hour.
    pub median_kwh: f64,
    /// Median absolute deviation from it, kWh.
    pub mad_kwh: f64,
    pub spread: SpreadMeasure,
    pub threshold: f64,
    /// Largest |z| first.
    pub anomalies: Vec<Anomaly>,
}

/// Hours whose robust z-score `0.6745 (x − median) / MAD` exceeds
/// `threshold` in absolute value. When the MAD is 0 the mean absolute
/// deviation (times 1.2533) stands in; when that is 0 too nothing is
/// flagged. Estimated hours are not scored. `None` for fewer than three
/// measured hours.
pub fn anomalies(hours: &[HourlyUse], threshold: f64) -> Option<AnomalyScan> {
    let measured: Vec<HourlyUse> = hours.iter().copied().filter(|h| !h.estimated && h.kwh.is_finite()).collect();
    if measured.len() < 3 {
        return None;
    }
    let values: Vec<f64> = measured.iter().map(|h| h.kwh).collect();
    let median = median(&values)?;
    let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    let mad = median_or_zero(&deviations);
    let mean_deviation = deviations.iter().sum::<f64>() / deviations.len() as f64;
    const TINY: f64 = 1e-12;
    let (spread, score): (SpreadMeasure, Option<f64>) = if mad > TINY {
        (SpreadMeasure::Mad, Some(mad / 0.6745))
    } else if mean_deviation > TINY {
        (SpreadMeasure::MeanAbsoluteDeviation, Some(mean_deviation * 1.253_314))
    } else {
        (SpreadMeasure::None, None)
    };
    let mut found: Vec<Anomaly> = match score {
        Some(scale) => measured
            .iter()
            .map(|h| Anomaly { start: h.start, kwh: h.kwh, z: (h.kwh - median) / scale })
            .filter(|a| a.z.abs() > threshold)
            .collect(),
        None => Vec::new(),
    };
    found.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()).then(a.start.cmp(&b.start)));
    Some(AnomalyScan { median_kwh: median, mad_kwh: mad, spread, threshold, anomalies: found })
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
}

fn median_or_zero(values: &[f64]) -> f64 {
    median(values).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_773_100_800_000; // 2026-03-10T00:00:00Z

    fn h(i: i64) -> i64 {
        T0 + i * HOUR_MS
    }

    fn row(i: i64, state: f64, sum: Option<f64>) -> StatisticsRow {
        StatisticsRow { start: h(i), end: h(i + 1), mean: None, min: None, max: None, state: Some(state), sum }
    }

    fn hours(values: &[f64]) -> Vec<HourlyUse> {
        values.iter().enumerate().map(|(i, v)| HourlyUse { start: h(i as i64), kwh: *v, estimated: false }).collect()
    }

    fn points(v: &[(i64, &str)]) -> Vec<HistoryPoint> {
        v.iter().map(|(at, s)| HistoryPoint { at: *at, state: s.to_string() }).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn units_scale_to_kwh() {
        assert_eq!(kwh_per_unit(Some("kWh")), Some(1.0));
        assert_eq!(kwh_per_unit(Some("Wh")), Some(0.001));
        assert_eq!(kwh_per_unit(Some("W")), None);
        assert_eq!(kwh_per_unit(None), None);
    }

    #[test]
    fn statistics_deltas_give_hourly_use() {
        let rows = [row(0, 100.0, Some(0.0)), row(1, 101.5, Some(1.5)), row(2, 103.0, Some(3.0))];
        let series = hourly_from_statistics(&rows, 1.0);
        assert_eq!(series.hours.len(), 3);
        assert_eq!(series.hours[0].kwh, 0.0, "the first row is only a starting point");
        assert!(close(series.hours[1].kwh, 1.5) && close(series.hours[2].kwh, 1.5));
        assert!(close(series.total_kwh(), 3.0));
        assert_eq!(series.resets, 0);
        // Wh readings are scaled.
        let rows = [row(0, 1000.0, None), row(1, 3000.0, None)];
        assert!(close(hourly_from_statistics(&rows, 0.001).total_kwh(), 2.0));
    }

    #[test]
    fn a_reset_is_not_counted_as_negative_use() {
        // The state drops from 50 to 0.5 (meter replaced); without sums the
        // drop is skipped and the use after it counts.
        let rows = [row(0, 49.0, None), row(1, 50.0, None), row(2, 0.5, None), row(3, 2.5, None)];
        let series = hourly_from_statistics(&rows, 1.0);
        assert_eq!(series.resets, 1);
        assert!(close(series.total_kwh(), 3.0), "{series:?}");
        assert!(series.hours.iter().all(|h| h.kwh >= 0.0));
        // The same from history, with unavailable states in between.
        let pts = points(&[(h(0), "10"), (h(1), "12"), (h(1) + 60_000, "unavailable"), (h(2), "1"), (h(3), "4")]);
        let series = hourly_from_history(&pts, 1.0);
        assert_eq!(series.resets, 1);
        assert!(close(series.total_kwh(), 5.0));
        // Sums ignore the reset already and are preferred.
        let rows = [row(0, 49.0, Some(10.0)), row(1, 0.5, Some(11.0))];
        let series = hourly_from_statistics(&rows, 1.0);
        assert_eq!(series.resets, 0);
        assert!(close(series.total_kwh(), 1.0));
    }

    #[test]
    fn a_hole_is_spread_evenly_and_marked_estimated() {
        // No rows for hours 2 and 3; 6 kWh used between hour 1 and hour 4.
        let rows = [row(0, 0.0, Some(0.0)), row(1, 1.0, Some(1.0)), row(4, 7.0, Some(7.0)), row(5, 8.0, Some(8.0))];
        let series = hourly_from_statistics(&rows, 1.0);
        let starts: Vec<i64> = series.hours.iter().map(|x| x.start).collect();
        assert_eq!(starts, (0..6).map(h).collect::<Vec<_>>());
        let estimated: Vec<bool> = series.hours.iter().map(|x| x.estimated).collect();
        assert_eq!(estimated, [false, false, true, true, false, false]);
        assert!(series.hours[2..5].iter().all(|x| close(x.kwh, 2.0)));
        assert!(close(series.total_kwh(), 8.0));
        assert_eq!(series.measured().len(), 4);
        assert_eq!(series.clone().within(h(2), h(4)).hours.len(), 2);
    }

    #[test]
    fn history_readings_within_an_hour_add_up() {
        let pts =
            points(&[(h(0), "1.0"), (h(0) + 1_800_000, "1.5"), (h(1) + 60_000, "2.0"), (h(1) + 1_800_000, "3.0")]);
        let series = hourly_from_history(&pts, 1.0);
        assert_eq!(series.hours.len(), 2);
        assert!(close(series.hours[0].kwh, 0.5) && close(series.hours[1].kwh, 1.5));
    }

    #[test]
    fn daily_and_hour_of_day_profiles() {
        // Two days: 1 kWh every hour, 3 kWh at 18:00.
        let values: Vec<f64> = (0..48).map(|i| if i % 24 == 18 { 3.0 } else { 1.0 }).collect();
        let mut hs = hours(&values);
        hs[5].estimated = true;
        let days = daily_profile(&hs);
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].start, days[1].start), (T0, T0 + DAY_MS));
        assert!(close(days[0].kwh, 26.0) && days[0].hours == 24 && days[0].estimated_hours == 1);
        let profile = hourly_profile(&hs);
        assert_eq!(profile.len(), 24);
        assert!(close(profile[18].mean_kwh, 3.0) && profile[18].samples == 2);
        assert_eq!(profile[5].samples, 1, "estimated hours stay out of the profile");
        assert!(hourly_profile(&[]).is_empty());
    }

    #[test]
    fn baseline_is_a_low_percentile_and_peaks_are_the_top_hours() {
        let hs = hours(&[0.2, 0.3, 0.25, 2.0, 0.2, 5.0, 0.3, 0.2, 0.4, 1.0]);
        let base = baseline(&hs, 10.0).unwrap();
        assert!(close(base.kwh_per_hour, 0.2) && base.hours == 10);
        assert!(baseline(&[], 10.0).is_none());
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 100.0), Some(4.0));
        let top = peaks(&hs, 2);
        assert_eq!(top.iter().map(|p| (p.start, p.kwh)).collect::<Vec<_>>(), [(h(5), 5.0), (h(3), 2.0)]);
    }

    #[test]
    fn consumers_are_sorted_with_their_share_and_cost_multiplies() {
        let totals = [("sensor.a".to_string(), 10.0), ("sensor.b".to_string(), 30.0), ("sensor.c".to_string(), 0.0)];
        let top = top_consumers(&totals);
        assert_eq!(top.iter().map(|c| c.entity_id.as_str()).collect::<Vec<_>>(), ["sensor.b", "sensor.a", "sensor.c"]);
        assert!(close(top[0].share, 0.75) && close(top[1].share, 0.25) && top[2].share == 0.0);
        assert!(top_consumers(&[("sensor.z".into(), 0.0)])[0].share == 0.0, "no division by zero");
        let c = cost(12.5, 0.3);
        assert!(close(c.cost, 3.75));
    }

    #[test]
    fn a_clear_spike_is_an_anomaly() {
        let mut values: Vec<f64> = (0..48).map(|i| 0.5 + 0.05 * ((i % 5) as f64)).collect();
        values[30] = 6.0;
        let scan = anomalies(&hours(&values), DEFAULT_ANOMALY_THRESHOLD).unwrap();
        assert_eq!(scan.spread, SpreadMeasure::Mad);
        assert_eq!(scan.anomalies.len(), 1, "{scan:?}");
        assert_eq!((scan.anomalies[0].start, scan.anomalies[0].kwh), (h(30), 6.0));
        assert!(scan.anomalies[0].z > 3.5);
    }

    #[test]
    fn a_constant_series_has_no_anomalies_and_mad_zero_does_not_divide_by_zero() {
        let scan = anomalies(&hours(&[1.0; 30]), DEFAULT_ANOMALY_THRESHOLD).unwrap();
        assert_eq!(scan.spread, SpreadMeasure::None);
        assert!(scan.anomalies.is_empty());
        assert_eq!(scan.mad_kwh, 0.0);
        // Mostly idle with one burst: the MAD is 0, the mean deviation
        // stands in, and the scores stay finite.
        let mut values = vec![0.0; 40];
        values[7] = 11.0;
        let scan = anomalies(&hours(&values), DEFAULT_ANOMALY_THRESHOLD).unwrap();
        assert_eq!(scan.spread, SpreadMeasure::MeanAbsoluteDeviation);
        assert_eq!(scan.anomalies.len(), 1);
        assert!(scan.anomalies[0].z.is_finite() && scan.anomalies[0].start == h(7));
        assert!(anomalies(&hours(&[1.0, 2.0]), 3.5).is_none(), "too few hours to score");
    }

    #[test]
    fn gaps_flatlines_and_unavailability_of_a_meter() {
        let five = 300_000;
        let mut pts: Vec<HistoryPoint> =
            (0..60).map(|i| HistoryPoint { at: T0 + i * five, state: format!("{}", 100 + i) }).collect();
        // A two-hour silence after reading 30, then the meter says unavailable.
        pts.retain(|p| !(T0 + 31 * five..T0 + 55 * five).contains(&p.at));
        pts.push(HistoryPoint { at: T0 + 60 * five, state: "unavailable".into() });
        pts.push(HistoryPoint { at: T0 + 70 * five, state: "160".into() });
        let end = T0 + 71 * five;
        let gaps = data_gaps(&pts, end);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!((gaps[0].start, gaps[0].end), (T0 + 30 * five, T0 + 55 * five));
        let down = unavailability_windows(&pts, end);
        assert_eq!(down.len(), 1);
        assert_eq!((down[0].start, down[0].end, down[0].ongoing), (T0 + 60 * five, T0 + 70 * five, false));
        assert!(close(down[0].hours, 10.0 * five as f64 / HOUR_MS as f64));
        // A meter stuck for a day.
        let stuck: Vec<HistoryPoint> =
            (0..30).map(|i| HistoryPoint { at: T0 + i * HOUR_MS, state: "42.0".into() }).collect();
        let flats = meter_flatlines(&stuck);
        assert_eq!(flats.len(), 1);
        assert_eq!(flats[0].value, 42.0);
        assert!(meter_flatlines(&stuck[..10]).is_empty());
    }
}
