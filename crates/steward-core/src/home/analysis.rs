//! Reading a history for trouble: holes in the data and values that stopped
//! moving.
//!
//! A sensor that reports on a schedule (every five minutes, say) leaves
//! points at a regular spacing; a stretch several times longer than that
//! spacing with no point is a gap. Stretches in which the entity was
//! `unavailable` or `unknown` are gaps too, whatever the spacing. Note that
//! Home Assistant's recorder writes a row only when a state changes, so a
//! long quiet stretch in a real house may be a value that held still rather
//! than missing data; every gap therefore says which value came before it.

use serde::Serialize;

use super::types::{parse_number, HistoryPoint, UNAVAILABLE, UNKNOWN};

/// How many times the usual spacing a silence must last to count as a gap.
pub const GAP_FACTOR: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// No point at all for much longer than usual.
    NoData,
    /// The entity said it was `unavailable` or `unknown`.
    Unavailable,
}

/// A stretch of time without usable data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub start: i64,
    pub end: i64,
    pub kind: GapKind,
    /// The gap runs to the end of the window: the data has not come back.
    pub ongoing: bool,
    /// The last state before the gap.
    pub value_before: Option<String>,
}

/// A numeric value repeated unchanged over a long stretch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flatline {
    pub start: i64,
    pub end: i64,
    pub value: f64,
    /// How many readings repeated it.
    pub points: usize,
}

fn is_missing(state: &str) -> bool {
    state == UNAVAILABLE || state == UNKNOWN
}

/// The median time between consecutive points, when there are enough
/// points (at least three) to tell.
pub fn typical_spacing(points: &[HistoryPoint]) -> Option<i64> {
    if points.len() < 3 {
        return None;
    }
    let mut intervals: Vec<i64> = points.windows(2).map(|w| w[1].at - w[0].at).filter(|d| *d > 0).collect();
    if intervals.is_empty() {
        return None;
    }
    intervals.sort_unstable();
    Some(intervals[intervals.len() / 2])
}

/// Whether the points come at a steady pace (most intervals within a factor
/// of two of the median), so a long silence means something.
fn is_regular(points: &[HistoryPoint], spacing: i64) -> bool {
    if points.len() < 10 {
        return false;
    }
    let intervals: Vec<i64> = points.windows(2).map(|w| w[1].at - w[0].at).collect();
    let steady = intervals.iter().filter(|d| **d * 2 >= spacing && **d <= spacing * 2).count();
    steady * 2 >= intervals.len()
}

/// Gaps in `points` (oldest first), looking up to `window_end`.
pub fn find_gaps(points: &[HistoryPoint], window_end: i64) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let spacing = typical_spacing(points).filter(|s| is_regular(points, *s));
    let mut i = 0;
    while i < points.len() {
        let point = &points[i];
        if is_missing(&point.state) {
            let value_before = i.checked_sub(1).map(|p| points[p].state.clone());
            let mut j = i;
            while j < points.len() && is_missing(&points[j].state) {
                j += 1;
            }
            let (end, ongoing) = match points.get(j) {
                Some(next) => (next.at, false),
                None => (window_end, true),
            };
            gaps.push(Gap { start: point.at, end, kind: GapKind::Unavailable, ongoing, value_before });
            i = j;
            continue;
        }
        if let Some(spacing) = spacing {
            let (next_at, ongoing) = match points.get(i + 1) {
                Some(next) => (next.at, false),
                None => (window_end, true),
            };
            if next_at - point.at > spacing * GAP_FACTOR {
                gaps.push(Gap {
                    start: point.at,
                    end: next_at,
                    kind: GapKind::NoData,
                    ongoing,
                    value_before: Some(point.state.clone()),
                });
            }
        }
        i += 1;
    }
    gaps
}

/// Runs of at least three consecutive readings of the same number that
/// span at least `min_duration_ms`.
pub fn find_flatlines(points: &[HistoryPoint], min_duration_ms: i64) -> Vec<Flatline> {
    let mut flats = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let Some(value) = parse_number(&points[i].state) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < points.len() && parse_number(&points[j].state) == Some(value) {
            j += 1;
        }
        let run = &points[i..j];
        let span = run[run.len() - 1].at - run[0].at;
        if run.len() >= 3 && span >= min_duration_ms {
            flats.push(Flatline { start: run[0].at, end: run[run.len() - 1].at, value, points: run.len() });
        }
        i = j;
    }
    flats
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn series(values: &[(i64, &str)]) -> Vec<HistoryPoint> {
        values.iter().map(|(at, s)| HistoryPoint { at: *at, state: s.to_string() }).collect()
    }

    fn every_five(n: i64, value: impl Fn(i64) -> String) -> Vec<HistoryPoint> {
        (0..n).map(|i| HistoryPoint { at: i * 5 * MIN, state: value(i) }).collect()
    }

    #[test]
    fn spacing_is_the_median_interval() {
        assert_eq!(typical_spacing(&every_five(20, |i| i.to_string())), Some(5 * MIN));
        assert_eq!(typical_spacing(&series(&[(0, "1"), (1, "2")])), None);
    }

    #[test]
    fn a_silence_three_times_the_spacing_is_a_gap() {
        let mut points = every_five(20, |i| i.to_string());
        // Remove readings 10..=14: 30 minutes without data between 9 and 15.
        points.retain(|p| !(50 * MIN..=70 * MIN).contains(&p.at));
        let gaps = find_gaps(&points, 100 * MIN);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!((gaps[0].start, gaps[0].end), (45 * MIN, 75 * MIN));
        assert_eq!(gaps[0].kind, GapKind::NoData);
        assert_eq!(gaps[0].value_before.as_deref(), Some("9"));
        assert!(!gaps[0].ongoing);
        // A series that simply stops before the window ends has an ongoing gap.
        let gaps = find_gaps(&every_five(20, |i| i.to_string()), 200 * MIN);
        assert_eq!(gaps.len(), 1);
        assert!(gaps[0].ongoing);
        assert_eq!(gaps[0].end, 200 * MIN);
    }

    #[test]
    fn unavailable_stretches_are_gaps_and_irregular_series_have_no_silence_gaps() {
        let points = series(&[(0, "off"), (10 * MIN, "on"), (600 * MIN, "unavailable"), (700 * MIN, "off")]);
        let gaps = find_gaps(&points, 800 * MIN);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].kind, GapKind::Unavailable);
        assert_eq!((gaps[0].start, gaps[0].end), (600 * MIN, 700 * MIN));
        assert_eq!(gaps[0].value_before.as_deref(), Some("on"));
        let ongoing = find_gaps(&series(&[(0, "3"), (5 * MIN, "unavailable")]), 60 * MIN);
        assert!(ongoing[0].ongoing && ongoing[0].end == 60 * MIN);
    }

    #[test]
    fn flatlines_need_a_long_run_of_equal_numbers() {
        let points = every_five(100, |i| if (20..80).contains(&i) { "21.0".into() } else { format!("{i}.5") });
        let flats = find_flatlines(&points, 4 * 60 * MIN);
        assert_eq!(flats.len(), 1);
        assert_eq!(flats[0].points, 60);
        assert_eq!(flats[0].value, 21.0);
        assert_eq!((flats[0].start, flats[0].end), (100 * MIN, 395 * MIN));
        assert!(find_flatlines(&points, 6 * 60 * MIN).is_empty());
        assert!(find_flatlines(&series(&[(0, "on"), (MIN, "on"), (999 * MIN, "on")]), 1).is_empty());
    }
}
