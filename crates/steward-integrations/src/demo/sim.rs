//! The physics of the demo house: a seeded random number generator, the
//! daily routines of its people, and a model per entity that says what the
//! entity reads at any five-minute tick.
//!
//! Every reading is a pure function of (seed, entity, time), so the same
//! seed and clock always give the same week, and the simulation can be
//! carried forward tick by tick as time passes. The house lives in UTC: its
//! people wake at 06:30 UTC and go to bed around 23:00 UTC.

use std::f64::consts::PI;

pub(crate) const MINUTE_MS: i64 = 60_000;
/// The simulation's resolution, and the spacing of sensor readings.
pub(crate) const TICK_MS: i64 = 5 * MINUTE_MS;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// SplitMix64: small, fast and good enough for a simulation.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one (key, n) pair: the same inputs always give the
    /// same sequence.
    pub(crate) fn at(seed: u64, key: u64, n: i64) -> Rng {
        let mut rng = Rng(seed ^ key.rotate_left(17) ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next_u64();
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// FNV-1a, to turn entity ids and routine names into keys.
pub(crate) const fn key(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        i += 1;
    }
    hash
}

pub(crate) fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_MS)
}

/// Hours since midnight UTC, with fractions.
pub(crate) fn hour_of(t: i64) -> f64 {
    t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64
}

/// 0 is Monday (1970-01-01 was a Thursday).
pub(crate) fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

pub(crate) fn is_weekend(day: i64) -> bool {
    weekday(day) >= 5
}

/// The start of the tick `t` falls in.
pub(crate) fn align(t: i64) -> i64 {
    t - t.rem_euclid(TICK_MS)
}

fn at_hour(day: i64, hour: f64) -> i64 {
    day * DAY_MS + (hour * HOUR_MS as f64) as i64
}

fn same_tick(a: i64, b: i64) -> bool {
    align(a) == align(b)
}

/// Which days a routine runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Days {
    Every,
    Weekdays,
    Weekends,
    /// On a share of days, chosen at random per day.
    Some(f64),
}

/// A daily stretch from `start` to `end` hours UTC (an `end` before `start`
/// runs past midnight), each edge moved by up to `jitter` hours, differently
/// every day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: f64,
    pub end: f64,
    pub jitter: f64,
    pub days: Days,
}

pub(crate) const fn window(start: f64, end: f64, jitter: f64, days: Days) -> Window {
    Window { start, end, jitter, days }
}

impl Window {
    fn runs_on(&self, seed: u64, key: u64, day: i64) -> bool {
        match self.days {
            Days::Every => true,
            Days::Weekdays => !is_weekend(day),
            Days::Weekends => is_weekend(day),
            Days::Some(p) => Rng::at(seed, key ^ 0x5a5a, day).chance(p),
        }
    }

    /// The window's start and end on `day`, in ms.
    fn bounds(&self, seed: u64, key: u64, day: i64) -> (i64, i64) {
        let mut rng = Rng::at(seed, key, day);
        let start = self.start + rng.range(-self.jitter, self.jitter);
        let mut end = self.end + rng.range(-self.jitter, self.jitter);
        if end <= start {
            end += 24.0;
        }
        (at_hour(day, start), at_hour(day, end))
    }

    fn contains(&self, seed: u64, key: u64, t: i64) -> bool {
        let day = day_of(t);
        // A window that began yesterday may still be open.
        [day - 1, day].iter().any(|&d| {
            if !self.runs_on(seed, key, d) {
                return false;
            }
            let (s, e) = self.bounds(seed, key, d);
            (s..e).contains(&t)
        })
    }
}

fn any_window(windows: &[Window], seed: u64, key: u64, t: i64) -> bool {
    windows.iter().enumerate().any(|(i, w)| w.contains(seed, key.wrapping_add(i as u64 * 7919), t))
}

/// How an entity behaves on its own.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Model {
    /// Changes only through service calls.
    Steady,
    /// `on` inside any of the daily windows, `off` outside.
    Routine {
        windows: &'static [Window],
        on: &'static str,
        off: &'static str,
    },
    /// Motion: `on` for single ticks, more often in busy hours.
    Motion {
        busy: f64,
    },
    /// The front door opens when people leave and come home.
    FrontDoor,
    /// The front door lock opens around those times.
    FrontLock,
    /// The garage door opens for the car on weekdays.
    GarageDoor,
    /// Armed away while everyone is out, armed at night, else disarmed.
    Alarm,
    /// The robot vacuum's run on some mornings.
    Vacuum,
    /// The bathroom extractor runs after the morning shower.
    ExtractorFan,
    /// Whether the washing machine is drawing power.
    WasherRunning,
    IndoorTemperature {
        base: f64,
        swing: f64,
    },
    OutdoorTemperature,
    Humidity {
        base: f64,
        swing: f64,
        showers: bool,
    },
    Co2,
    Power(PowerSource),
    /// A cumulative kWh meter of a power source, starting at this reading.
    Meter(PowerSource, f64),
    /// A battery that drains over `days` days and is replaced.
    Battery {
        days: f64,
    },
    VacuumBattery,
    SoilMoisture,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PowerSource {
    House,
    Charger,
    Solar,
    Washer,
}

/// What a model reads at a tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reading {
    /// Nothing of its own (a steady entity).
    None,
    Text(&'static str),
    Number(f64),
    /// A meter's increase over the tick, in kWh.
    Increase(f64),
}

impl Model {
    /// Whether the model's readings are numbers recorded at every tick (as
    /// a sensor that reports on a schedule); the rest are recorded when
    /// they change.
    pub(crate) fn reports_every_tick(&self) -> bool {
        matches!(
            self,
            Model::IndoorTemperature { .. }
                | Model::OutdoorTemperature
                | Model::Humidity { .. }
                | Model::Co2
                | Model::Power(_)
                | Model::Meter(..)
                | Model::SoilMoisture
        )
    }

    pub(crate) fn read(&self, seed: u64, key: u64, t: i64) -> Reading {
        let mut noise = Rng::at(seed, key, t / TICK_MS);
        let day = day_of(t);
        let h = hour_of(t);
        match *self {
            Model::Steady => Reading::None,
            Model::Routine { windows, on, off } => {
                Reading::Text(if any_window(windows, seed, key, t) { on } else { off })
            }
            Model::Motion { busy } => {
                let p = if (6.5..23.0).contains(&h) { busy } else { busy / 15.0 };
                let door = door_events(seed, day).iter().any(|e| same_tick(*e, t));
                Reading::Text(if door || noise.chance(p) { "on" } else { "off" })
            }
            Model::FrontDoor => {
                let open = door_events(seed, day).iter().any(|e| same_tick(*e, t));
                Reading::Text(if open { "on" } else { "off" })
            }
            Model::FrontLock => {
                let open = door_events(seed, day).iter().any(|e| same_tick(*e, t) || same_tick(*e - TICK_MS, t));
                Reading::Text(if open { "unlocked" } else { "locked" })
            }
            Model::GarageDoor => {
                let open = !is_weekend(day)
                    && door_events(seed, day)
                        .iter()
                        .any(|e| same_tick(*e + TICK_MS, t) || same_tick(*e + 2 * TICK_MS, t));
                Reading::Text(if open { "open" } else { "closed" })
            }
            Model::Alarm => Reading::Text(alarm_state(seed, t)),
            Model::Vacuum => Reading::Text(match vacuum_run(seed, day) {
                Some((s, e)) if (s..e).contains(&t) => "cleaning",
                Some((_, e)) if same_tick(e, t) => "returning",
                _ => "docked",
            }),
            Model::ExtractorFan => {
                let s = shower_start(seed, day);
                Reading::Text(if (s..s + 40 * MINUTE_MS).contains(&t) { "on" } else { "off" })
            }
            Model::WasherRunning => Reading::Text(if washer_watts(seed, t) > 10.0 { "on" } else { "off" }),
            Model::IndoorTemperature { base, swing } => {
                let daily = swing * (2.0 * PI * (h - 17.0) / 24.0).cos();
                let drift = Rng::at(seed, key ^ 0xd1, day).normal() * 0.4;
                Reading::Number(round(base + daily + drift + noise.normal() * 0.08, 1))
            }
            Model::OutdoorTemperature => {
                let daily = 4.5 * (2.0 * PI * (h - 15.0) / 24.0).cos();
                let drift = Rng::at(seed, key ^ 0xd1, day).normal() * 2.0;
                Reading::Number(round(6.0 + daily + drift + noise.normal() * 0.2, 1))
            }
            Model::Humidity { base, swing, showers } => {
                let mut v = base + swing * (2.0 * PI * (h - 5.0) / 24.0).cos() + noise.normal() * 0.8;
                if showers {
                    let since = (t - shower_start(seed, day)) as f64 / MINUTE_MS as f64;
                    if (0.0..180.0).contains(&since) {
                        v += 38.0 * (-since / 30.0).exp();
                    }
                }
                Reading::Number(round(v.clamp(20.0, 99.0), 1))
            }
            Model::Co2 => {
                let occupied = !is_weekend(day) && (9.0..17.5).contains(&h);
                let people = if occupied { 520.0 + 120.0 * (2.0 * PI * (h - 9.0) / 8.5).sin().abs() } else { 0.0 };
                Reading::Number((430.0 + people + noise.normal() * 12.0).round())
            }
            Model::Power(source) => Reading::Number(power_watts(source, seed, t, &mut noise).round()),
            Model::Meter(source, _) => {
                let watts = power_watts(source, seed, t, &mut noise).max(0.0);
                Reading::Increase(watts * TICK_MS as f64 / HOUR_MS as f64 / 1000.0)
            }
            Model::Battery { days } => {
                let fraction = (t as f64 / DAY_MS as f64 / days).fract();
                Reading::Number((100.0 - 85.0 * fraction).round())
            }
            Model::VacuumBattery => Reading::Number(match vacuum_run(seed, day) {
                Some((s, e)) if t >= s => {
                    let run = (t.min(e) - s) as f64 / MINUTE_MS as f64;
                    let charged = (t - e).max(0) as f64 / MINUTE_MS as f64;
                    (100.0 - 1.2 * run + 1.5 * charged).clamp(5.0, 100.0).round()
                }
                _ => 100.0,
            }),
            Model::SoilMoisture => {
                // Dries through the day, watered by the irrigation at dawn.
                let since_watering = (h - 6.3).rem_euclid(24.0);
                let v = 44.0 - 0.45 * since_watering + noise.normal() * 0.3;
                Reading::Number(round(v, 1))
            }
        }
    }
}

pub(crate) fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// When the front door opens on `day`: leaving and coming home on weekdays,
/// a walk on weekends.
fn door_events(seed: u64, day: i64) -> [i64; 2] {
    let mut rng = Rng::at(seed, key("door"), day);
    if is_weekend(day) {
        [at_hour(day, 10.5 + rng.range(0.0, 1.5)), at_hour(day, 15.0 + rng.range(0.0, 2.0))]
    } else {
        [at_hour(day, 8.0 + rng.range(-0.15, 0.2)), at_hour(day, 17.6 + rng.range(-0.3, 0.4))]
    }
}

fn alarm_state(seed: u64, t: i64) -> &'static str {
    let day = day_of(t);
    let h = hour_of(t);
    if !(6.5..23.5).contains(&h) {
        return "armed_night";
    }
    let [leave, back] = door_events(seed, day);
    if !is_weekend(day) && t > leave + TICK_MS && t < back {
        "armed_away"
    } else {
        "disarmed"
    }
}

/// The vacuum runs on about half the mornings, for 35–55 minutes.
fn vacuum_run(seed: u64, day: i64) -> Option<(i64, i64)> {
    let mut rng = Rng::at(seed, key("vacuum"), day);
    rng.chance(0.5).then(|| {
        let start = at_hour(day, 10.0 + rng.range(0.0, 0.5));
        (start, start + (rng.range(35.0, 55.0) * MINUTE_MS as f64) as i64)
    })
}

fn shower_start(seed: u64, day: i64) -> i64 {
    let mut rng = Rng::at(seed, key("shower"), day);
    let hour = if is_weekend(day) { 8.5 } else { 6.9 };
    at_hour(day, hour + rng.range(0.0, 0.3))
}

/// Charging sessions start late in the evening on about half the days and
/// last 1.5–4.5 hours at 7.4 kW.
pub(crate) fn charger_session(seed: u64, day: i64) -> Option<(i64, i64)> {
    let mut rng = Rng::at(seed, key("charger"), day);
    rng.chance(0.55).then(|| {
        let start = at_hour(day, 22.5 + rng.range(-0.5, 1.0));
        (start, start + (rng.range(1.5, 4.5) * HOUR_MS as f64) as i64)
    })
}

/// The washing machine runs on some mornings: heating, washing, spinning.
fn washer_watts(seed: u64, t: i64) -> f64 {
    let day = day_of(t);
    let mut rng = Rng::at(seed, key("washer"), day);
    if !rng.chance(0.4) {
        return 1.5;
    }
    let start = at_hour(day, 9.5 + rng.range(0.0, 3.0));
    let minutes = (t - start) as f64 / MINUTE_MS as f64;
    match minutes {
        m if (0.0..20.0).contains(&m) => 2100.0,
        m if (20.0..75.0).contains(&m) => 260.0,
        m if (75.0..88.0).contains(&m) => 560.0,
        _ => 1.5,
    }
}

fn charger_watts(seed: u64, t: i64, noise: &mut Rng) -> f64 {
    let day = day_of(t);
    let charging = [day - 1, day].iter().filter_map(|d| charger_session(seed, *d)).any(|(s, e)| (s..e).contains(&t));
    if charging {
        7400.0 + noise.normal() * 40.0
    } else {
        0.0
    }
}

fn solar_watts(seed: u64, t: i64, noise: &mut Rng) -> f64 {
    let h = hour_of(t);
    if !(6.5..19.5).contains(&h) {
        return 0.0;
    }
    let sun = (PI * (h - 6.5) / 13.0).sin();
    let clear = 0.3 + 0.7 * Rng::at(seed, key("clouds"), day_of(t)).unit();
    (4200.0 * sun * clear * (1.0 + noise.normal() * 0.08)).max(0.0)
}

const HOUSE_ROUTINES: &[(Window, f64)] = &[
    (window(6.5, 8.5, 0.2, Days::Weekdays), 350.0),
    (window(8.0, 10.0, 0.3, Days::Weekends), 350.0),
    (window(7.0, 7.3, 0.1, Days::Every), 1800.0),
    (window(12.3, 13.0, 0.2, Days::Weekends), 1400.0),
    (window(18.2, 19.0, 0.2, Days::Every), 2100.0),
    (window(18.0, 23.0, 0.4, Days::Every), 420.0),
];

fn house_watts(seed: u64, t: i64, noise: &mut Rng) -> f64 {
    let routines: f64 = HOUSE_ROUTINES
        .iter()
        .enumerate()
        .filter(|(i, (w, _))| w.contains(seed, key("house").wrapping_add(*i as u64), t))
        .map(|(_, (_, watts))| watts)
        .sum();
    // The fridge's compressor runs about a third of the time.
    let fridge = if noise.chance(0.35) { 90.0 } else { 0.0 };
    160.0 + fridge + routines + washer_watts(seed, t) + charger_watts(seed, t, noise) + noise.normal() * 25.0
}

fn power_watts(source: PowerSource, seed: u64, t: i64, noise: &mut Rng) -> f64 {
    match source {
        PowerSource::House => house_watts(seed, t, noise).max(0.0),
        PowerSource::Charger => charger_watts(seed, t, noise),
        PowerSource::Solar => solar_watts(seed, t, noise),
        PowerSource::Washer => washer_watts(seed, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_spread() {
        let a: Vec<u64> = (0..5).map(|i| Rng::at(7, key("x"), i).next_u64()).collect();
        let b: Vec<u64> = (0..5).map(|i| Rng::at(7, key("x"), i).next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(Rng::at(7, key("x"), 0).next_u64(), Rng::at(8, key("x"), 0).next_u64());
        let mut rng = Rng::at(1, 2, 3);
        let samples: Vec<f64> = (0..10_000).map(|_| rng.unit()).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!(samples.iter().all(|u| (0.0..1.0).contains(u)));
        let normals: Vec<f64> = (0..10_000).map(|_| rng.normal()).collect();
        let nm = normals.iter().sum::<f64>() / normals.len() as f64;
        assert!(nm.abs() < 0.05, "{nm}");
    }

    #[test]
    fn calendar_helpers() {
        // 2026-01-05 was a Monday.
        let monday = 1_767_571_200_000 / DAY_MS;
        assert_eq!(weekday(monday), 0);
        assert!(is_weekend(monday + 5) && !is_weekend(monday + 4));
        assert_eq!(align(TICK_MS + 1234), TICK_MS);
        assert_eq!(hour_of(monday * DAY_MS + 90 * MINUTE_MS), 1.5);
    }

    #[test]
    fn windows_can_run_past_midnight() {
        let w = [window(23.0, 1.0, 0.0, Days::Every)];
        let day = 20_000;
        assert!(any_window(&w, 1, 2, at_hour(day, 23.5)));
        assert!(any_window(&w, 1, 2, at_hour(day, 0.5)));
        assert!(!any_window(&w, 1, 2, at_hour(day, 12.0)));
    }
}
