//! Running the simulation: a week of history when the house is built, and
//! the sensors carried forward tick by tick as the clock moves on. Also
//! long-term statistics, compiled from that same history the way Home
//! Assistant's recorder compiles them.

use std::collections::BTreeMap;

use steward_core::home::{
    parse_number, HistoryPoint, LogbookEntry, StateChanged, StatisticKind, StatisticsRow, UNAVAILABLE,
};

use super::services::logbook_message;
use super::sim::{align, key, Model, Reading, DAY_MS, TICK_MS};
use super::{World, CHARGER_SENSORS, STUCK_ENTITY, UNAVAILABLE_ENTITY};

/// How far back a catch-up after a long pause reaches.
const MAX_CATCH_UP_MS: i64 = 7 * DAY_MS;
/// Home Assistant's recorder keeps ten days by default; so does the demo.
pub(crate) const RETENTION_MS: i64 = 10 * DAY_MS;

/// How many decimals a model's readings are reported with.
fn decimals(model: &Model) -> usize {
    match model {
        Model::Meter(..) => 3,
        Model::IndoorTemperature { .. } | Model::OutdoorTemperature | Model::Humidity { .. } | Model::SoilMoisture => 1,
        _ => 0,
    }
}

impl World {
    /// Runs one tick. With `everything`, every simulated entity moves (used
    /// while building the past week); otherwise only sensors do, so that
    /// nothing a person switched is switched back by the simulation.
    pub(crate) fn tick(&mut self, t: i64, everything: bool) -> Vec<StateChanged> {
        let mut changes = Vec::new();
        for i in 0..self.specs.len() {
            let (id, model, domain) = {
                let spec = &self.specs[i];
                (spec.id, spec.model, spec.domain())
            };
            if matches!(model, Model::Steady) || (!everything && domain != "sensor") {
                continue;
            }
            let Some(available) = self.entities.get(id).map(|e| e.available) else { continue };
            if !available {
                continue;
            }
            if id == UNAVAILABLE_ENTITY && t >= self.scenario.valve_lost_at {
                changes.extend(self.record(i, t, UNAVAILABLE.to_string(), true));
                continue;
            }
            let reading = model.read(self.seed, key(id), t);
            let state = match reading {
                Reading::None => continue,
                Reading::Text(s) => s.to_string(),
                Reading::Number(v) => {
                    let v = if id == STUCK_ENTITY && t >= self.scenario.humidity_stuck_since {
                        *self.frozen.entry(id).or_insert(v)
                    } else {
                        v
                    };
                    format!("{v:.prec$}", prec = decimals(&model))
                }
                Reading::Increase(kwh) => {
                    let start = match model {
                        Model::Meter(_, start) => start,
                        _ => 0.0,
                    };
                    let total = self.meters.entry(id).or_insert(start);
                    *total += kwh;
                    format!("{:.prec$}", *total, prec = decimals(&model))
                }
            };
            // The charger's sensors report nothing while its connection is
            // down; its meter keeps counting and catches up on return.
            let (outage_start, outage_end) = self.scenario.charger_outage;
            if CHARGER_SENSORS.contains(&id) && (outage_start..outage_end).contains(&t) {
                continue;
            }
            let every_tick = model.reports_every_tick();
            changes.extend(self.record(i, t, state, every_tick));
        }
        changes
    }

    /// Gives entity `i` `state` at `t`: history, logbook, last changed.
    fn record(&mut self, i: usize, t: i64, state: String, always: bool) -> Option<StateChanged> {
        let spec = &self.specs[i];
        let entity = self.entities.get_mut(spec.id)?;
        let points = self.history.entry(spec.id.to_string()).or_default();
        let changed = entity.state != state;
        if !changed && !always {
            return None;
        }
        let old = entity.clone();
        points.push(HistoryPoint { at: t, state: state.clone() });
        entity.last_updated = t;
        if changed {
            entity.last_changed = t;
            entity.available = state != UNAVAILABLE;
            if spec.domain() != "sensor" {
                entity.attributes = spec.attributes_for(&state);
                self.logbook.push(LogbookEntry {
                    when: t,
                    name: spec.name.to_string(),
                    message: logbook_message(spec.domain(), entity.device_class(), &state),
                    entity_id: Some(spec.id.to_string()),
                    domain: Some(spec.domain().to_string()),
                    state: Some(state.clone()),
                    context: None,
                });
            }
            entity.state = state;
        }
        Some(StateChanged { entity_id: spec.id.to_string(), old: Some(old), new: Some(entity.clone()) })
    }

    /// Carries the sensors forward to `now`, returning what changed.
    pub(crate) fn advance(&mut self, now: i64) -> Vec<StateChanged> {
        let target = align(now);
        if target <= self.sim_until {
            return Vec::new();
        }
        let mut t = (self.sim_until + TICK_MS).max(target - MAX_CATCH_UP_MS);
        let mut changes = Vec::new();
        while t <= target {
            changes.extend(self.tick(t, false));
            t += TICK_MS;
        }
        self.sim_until = target;
        self.prune(now - RETENTION_MS);
        changes
    }

    /// Forgets history and logbook older than `cutoff`, keeping each
    /// entity's last state before it so the state at any kept time is known.
    fn prune(&mut self, cutoff: i64) {
        for points in self.history.values_mut() {
            let older = points.partition_point(|p| p.at < cutoff);
            if older > 1 {
                points.drain(..older - 1);
            }
        }
        self.logbook.retain(|e| e.when >= cutoff);
    }

    /// The recorded states of one entity between `start` and `end`, the
    /// first dated at `start` with the state the entity then had.
    pub(crate) fn history_between(&self, entity_id: &str, start: i64, end: i64) -> Vec<HistoryPoint> {
        let Some(points) = self.history.get(entity_id) else { return Vec::new() };
        let first_after = points.partition_point(|p| p.at <= start);
        let mut out = Vec::new();
        if first_after > 0 {
            out.push(HistoryPoint { at: start, state: points[first_after - 1].state.clone() });
        }
        out.extend(points[first_after..].iter().take_while(|p| p.at <= end).cloned());
        out
    }
}

/// Statistics rows of `period` ms for the buckets that start in
/// `[start, end)`, compiled from a whole recorded history.
///
/// Measurements get the mean, minimum and maximum of the readings in each
/// bucket. Totals get the reading at the bucket's end (`state`) and the
/// amount accumulated since the history began (`sum`), where a drop of the
/// reading counts as a meter reset. A bucket without readings gets no row.
pub(crate) fn statistics_rows(
    points: &[HistoryPoint],
    kind: StatisticKind,
    start: i64,
    end: i64,
    period: i64,
) -> Vec<StatisticsRow> {
    let first_bucket = start - start.rem_euclid(period);
    let in_range = |bucket: i64| bucket >= first_bucket && bucket < end;
    let mut rows: BTreeMap<i64, StatisticsRow> = BTreeMap::new();
    match kind {
        StatisticKind::Measurement => {
            let mut counts: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
            for p in points {
                let Some(v) = parse_number(&p.state) else { continue };
                let bucket = p.at - p.at.rem_euclid(period);
                if !in_range(bucket) {
                    continue;
                }
                let row = rows.entry(bucket).or_insert_with(|| StatisticsRow {
                    start: bucket,
                    end: bucket + period,
                    mean: None,
                    min: Some(v),
                    max: Some(v),
                    state: None,
                    sum: None,
                });
                row.min = row.min.map(|m| m.min(v));
                row.max = row.max.map(|m| m.max(v));
                let (total, n) = counts.entry(bucket).or_insert((0.0, 0));
                *total += v;
                *n += 1;
            }
            for (bucket, (total, n)) in counts {
                if let Some(row) = rows.get_mut(&bucket) {
                    row.mean = Some(total / n as f64);
                }
            }
        }
        StatisticKind::Total => {
            let mut previous: Option<f64> = None;
            let mut sum = 0.0;
            for p in points {
                let Some(v) = parse_number(&p.state) else { continue };
                if let Some(prev) = previous {
                    sum += if v >= prev { v - prev } else { v };
                }
                previous = Some(v);
                let bucket = p.at - p.at.rem_euclid(period);
                if in_range(bucket) {
                    rows.insert(
                        bucket,
                        StatisticsRow {
                            start: bucket,
                            end: bucket + period,
                            mean: None,
                            min: None,
                            max: None,
                            state: Some(v),
                            sum: Some(sum),
                        },
                    );
                }
            }
        }
    }
    rows.into_values().collect()
}
