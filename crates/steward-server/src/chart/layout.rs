//! Where everything of a chart goes, in pixels: one layout that the SVG
//! writer and the PNG rasteriser both draw, so the two always agree.
//!
//! The input is whatever a client posted, so nothing is trusted: values
//! that are not finite are holes, huge ones are clamped, long texts are cut,
//! and the number of series, points, bars and bands is capped before any
//! work proportional to them is done.

use steward_core::tools::rfc3339;
use steward_protocol::insight::{Chart, ChartKind, ChartPoint};

use super::font::ADVANCE;

pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 420;
/// Series drawn at most; the rest are left out of the legend too.
pub const MAX_SERIES: usize = 10;
/// Points per line series drawn at most; longer series are thinned evenly.
pub const MAX_POINTS: usize = 2_000;
/// Bars (categories) drawn at most.
pub const MAX_BARS: usize = 400;
pub const MAX_BANDS: usize = 20;
/// Values beyond this are drawn at this size: charts of real data never get
/// near it, and it keeps every sum and difference finite.
const MAX_ABS: f64 = 1e15;
/// Any time in years 1970 to 9999, in ms: x values outside are plain numbers.
const LAST_TIME_MS: i64 = 253_402_300_799_999;

const TITLE_CHARS: usize = 110;
const NAME_CHARS: usize = 40;
const UNIT_CHARS: usize = 16;

/// Small text is the font at scale 1, the title at scale 2.
const SMALL: u32 = 1;
const LARGE: u32 = 2;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Tableau 10: distinct for most colour vision, and legible on white.
pub const PALETTE: [Rgb; 10] = [
    Rgb(0x4e, 0x79, 0xa7),
    Rgb(0xf2, 0x8e, 0x2b),
    Rgb(0xe1, 0x57, 0x59),
    Rgb(0x76, 0xb7, 0xb2),
    Rgb(0x59, 0xa1, 0x4f),
    Rgb(0xed, 0xc9, 0x48),
    Rgb(0xb0, 0x7a, 0xa1),
    Rgb(0xff, 0x9d, 0xa7),
    Rgb(0x9c, 0x75, 0x5f),
    Rgb(0x79, 0x70, 0x6e),
];
pub const BACKGROUND: Rgb = Rgb(255, 255, 255);
const INK: Rgb = Rgb(0x33, 0x33, 0x33);
const MUTED: Rgb = Rgb(0x66, 0x66, 0x66);
const AXIS: Rgb = Rgb(0x88, 0x88, 0x88);
const GRID: Rgb = Rgb(0xe4, 0xe4, 0xe4);
const BAND: Rgb = Rgb(0xbb, 0xbb, 0xbb);
const BAND_OPACITY: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A filled rectangle; `opacity` below 1 lets what is under it show.
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Rgb,
        opacity: f64,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        color: Rgb,
        width: f64,
    },
    /// One unbroken run of a line series.
    Polyline {
        series: usize,
        points: Vec<(f64, f64)>,
        color: Rgb,
        width: f64,
    },
    /// A lone point of a line series, with holes on both sides.
    Dot {
        series: usize,
        x: f64,
        y: f64,
        r: f64,
        color: Rgb,
    },
    /// `y` is the baseline; `scale` multiplies the 5×7 font.
    Text {
        x: f64,
        y: f64,
        text: String,
        anchor: Anchor,
        scale: u32,
        color: Rgb,
    },
}

/// A laid-out chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub title: String,
    /// The series names, in drawing order (the legend).
    pub series: Vec<String>,
    pub shapes: Vec<Shape>,
    /// The plot area: left, top, right, bottom.
    pub plot: (f64, f64, f64, f64),
}

/// The width of `text` at `scale`, as the PNG font draws it (the SVG uses
/// the same for placing, which a sans-serif font roughly matches).
pub fn text_width(text: &str, scale: u32) -> f64 {
    let n = text.chars().count() as f64;
    if n == 0.0 {
        0.0
    } else {
        (n * f64::from(ADVANCE) - 1.0) * f64::from(scale)
    }
}

/// Text cut to `max` characters, with `…` when it was cut; control
/// characters become spaces.
pub fn clip_text(text: &str, max: usize) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn value(y: Option<f64>) -> Option<f64> {
    y.filter(|v| v.is_finite()).map(|v| v.clamp(-MAX_ABS, MAX_ABS))
}

/// A series ready to draw: at most [`MAX_POINTS`], sorted by x.
struct Prepared {
    name: String,
    points: Vec<(i64, Option<f64>, Option<String>)>,
}

fn prepare(chart: &Chart) -> Vec<Prepared> {
    chart
        .series
        .iter()
        .take(MAX_SERIES)
        .map(|s| {
            let step = s.points.len().div_ceil(MAX_POINTS).max(1);
            let mut points: Vec<(i64, Option<f64>, Option<String>)> =
                s.points.iter().step_by(step).map(|p: &ChartPoint| (p.x, value(p.y), p.label.clone())).collect();
            points.sort_by_key(|p| p.0);
            Prepared { name: clip_text(&s.name, NAME_CHARS), points }
        })
        .collect()
}

/// The value axis: from `lo` to `hi` in steps of `step`.
struct Ticks {
    lo: f64,
    hi: f64,
    step: f64,
}

/// 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

fn value_ticks(values: &[f64]) -> Ticks {
    let (mut lo, mut hi) = values.iter().fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if hi - lo < 1e-12 * hi.abs().max(lo.abs()).max(1e-300) || hi - lo <= 0.0 {
        // One value (or only zeros): a range around it.
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.5 } else { 1.0 };
        hi += pad;
        if lo < 0.0 {
            lo -= pad;
        }
    }
    let step = nice_step((hi - lo) / 5.0);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    Ticks { lo, hi, step }
}

/// A tick value as text: as many decimals as the step needs, and SI
/// prefixes for big numbers.
fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let biggest = v.abs().max(step);
    let (scaled, scaled_step, suffix) = if biggest >= 1e12 {
        (v / 1e12, step / 1e12, "T")
    } else if biggest >= 1e9 {
        (v / 1e9, step / 1e9, "G")
    } else if biggest >= 1e6 {
        (v / 1e6, step / 1e6, "M")
    } else {
        (v, step, "")
    };
    let decimals = if scaled_step >= 1.0 { 0 } else { (-scaled_step.log10().floor()).clamp(0.0, 9.0) as usize };
    format!("{scaled:.decimals$}{suffix}")
}

fn is_time(ms: i64) -> bool {
    (0..=LAST_TIME_MS).contains(&ms)
}

/// `14:00` / `03-10` / `2026-03-10` from an RFC 3339 stamp.
fn time_part(ms: i64) -> String {
    rfc3339(ms).get(11..16).unwrap_or_default().to_string()
}

fn date_part(ms: i64) -> String {
    rfc3339(ms).get(5..10).unwrap_or_default().to_string()
}

fn full_date(ms: i64) -> String {
    rfc3339(ms).get(..10).unwrap_or_default().to_string()
}

/// The x axis of a line chart: from `lo` to `hi` (ms or plain numbers).
struct XAxis {
    lo: f64,
    hi: f64,
    time: bool,
}

/// Tick positions and their one or two label lines.
fn x_ticks(axis: &XAxis, max_ticks: usize) -> Vec<(f64, String, Option<String>)> {
    let max_ticks = max_ticks.clamp(2, 40);
    let span = axis.hi - axis.lo;
    if !axis.time {
        let step = nice_step(span / max_ticks as f64);
        let first = (axis.lo / step).ceil() * step;
        return (0..=max_ticks * 3)
            .map(|k| first + k as f64 * step)
            .take_while(|v| *v <= axis.hi + step * 1e-9)
            .take(max_ticks + 1)
            .map(|v| (v, tick_label(v, step), None))
            .collect();
    }
    const STEPS: [i64; 19] = [
        MINUTE,
        5 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
        30 * DAY,
        91 * DAY,
        182 * DAY,
        365 * DAY,
        5 * 365 * DAY,
        100 * 365 * DAY,
    ];
    let step = STEPS.iter().copied().find(|s| span / (*s as f64) <= max_ticks as f64).unwrap_or(1000 * 365 * DAY);
    let lo = axis.lo as i64;
    let first = lo + (step - lo.rem_euclid(step)) % step;
    let mut ticks = Vec::new();
    let mut last_date = String::new();
    let mut at = first;
    while (at as f64) <= axis.hi && ticks.len() <= max_ticks {
        let date = if step >= 365 * DAY { full_date(at) } else { date_part(at) };
        if step >= DAY {
            ticks.push((at as f64, date, None));
        } else {
            // The date under the first tick and under each new day's.
            let second = (date != last_date).then(|| date.clone());
            last_date = date;
            ticks.push((at as f64, time_part(at), second));
        }
        at = match at.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    ticks
}

/// The label of a bar: its own, or its x as a date (and time unless every
/// bar starts a day), or as a number.
fn bar_label(x: i64, label: Option<&str>, daily: bool) -> String {
    match label {
        Some(l) => clip_text(l, 16),
        None if is_time(x) && daily => date_part(x),
        None if is_time(x) => format!("{} {}", date_part(x), time_part(x)),
        None => x.to_string(),
    }
}

/// Lays out `chart` on a [`WIDTH`] × [`HEIGHT`] canvas.
pub fn layout(chart: &Chart) -> Scene {
    let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
    let title = clip_text(&chart.title, TITLE_CHARS);
    let unit = clip_text(&chart.y_unit, UNIT_CHARS);
    let series = prepare(chart);
    let mut shapes = Vec::new();

    // The legend, wrapped, under everything.
    let mut legend: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    let mut row_width = 0.0;
    for (i, s) in series.iter().enumerate() {
        let item = 14.0 + text_width(&s.name, SMALL) + 16.0;
        if row_width + item > w - 60.0 && row_width > 0.0 {
            legend.push(Vec::new());
            row_width = 0.0;
        }
        if let Some(row) = legend.last_mut() {
            row.push((i, row_width));
        }
        row_width += item;
    }
    let legend_rows = if series.is_empty() { 0 } else { legend.len() };

    // The value axis, from every finite value drawn.
    let values: Vec<f64> = series.iter().flat_map(|s| s.points.iter().filter_map(|p| p.1)).collect();
    let ticks = value_ticks(&values);
    let tick_values: Vec<f64> = (0..=60)
        .map(|k| ticks.lo + f64::from(k) * ticks.step)
        .take_while(|v| *v <= ticks.hi + ticks.step * 1e-9)
        .collect();
    let tick_labels: Vec<String> = tick_values.iter().map(|v| tick_label(*v, ticks.step)).collect();
    let label_width = tick_labels.iter().map(|l| text_width(l, SMALL)).fold(text_width(&unit, SMALL), f64::max);

    let left = (12.0 + label_width + 8.0).min(w / 3.0);
    let right = w - 24.0;
    let top = 44.0;
    let bottom = h - 40.0 - legend_rows as f64 * 16.0;
    let plot = (left, top, right, bottom);
    let y_of = |v: f64| bottom - (v - ticks.lo) / (ticks.hi - ticks.lo) * (bottom - top);

    shapes.push(Shape::Text { x: 12.0, y: 24.0, text: title.clone(), anchor: Anchor::Start, scale: LARGE, color: INK });
    if !unit.is_empty() {
        shapes.push(Shape::Text {
            x: left - 8.0,
            y: top - 10.0,
            text: unit.clone(),
            anchor: Anchor::End,
            scale: SMALL,
            color: MUTED,
        });
    }
    for (v, label) in tick_values.iter().zip(&tick_labels) {
        let y = y_of(*v);
        shapes.push(Shape::Line { x1: left, y1: y, x2: right, y2: y, color: GRID, width: 1.0 });
        shapes.push(Shape::Text {
            x: left - 8.0,
            y: y + 3.5,
            text: label.clone(),
            anchor: Anchor::End,
            scale: SMALL,
            color: MUTED,
        });
    }

    // The axes go over the grid and the bands, under the data.
    let zero = if ticks.lo <= 0.0 && ticks.hi >= 0.0 { y_of(0.0) } else { bottom };
    let axes = [
        Shape::Line { x1: left, y1: top, x2: left, y2: bottom, color: AXIS, width: 1.0 },
        Shape::Line { x1: left, y1: zero, x2: right, y2: zero, color: AXIS, width: 1.0 },
    ];
    let mut data = Vec::new();
    match chart.kind {
        ChartKind::Line => line_plot(chart, &series, plot, &ticks, &mut shapes, &mut data),
        ChartKind::Bar => bar_plot(chart, &series, plot, &ticks, &mut shapes, &mut data),
    }
    shapes.extend(axes);
    shapes.append(&mut data);

    if values.is_empty() {
        shapes.push(Shape::Text {
            x: (left + right) / 2.0,
            y: (top + bottom) / 2.0,
            text: "no data".into(),
            anchor: Anchor::Middle,
            scale: LARGE,
            color: MUTED,
        });
    }

    for (r, row) in legend.iter().enumerate().take(legend_rows) {
        let y = h - 12.0 - (legend_rows - 1 - r) as f64 * 16.0;
        for &(i, offset) in row {
            let Some(s) = series.get(i) else { continue };
            let x = left + offset;
            let color = PALETTE[i % PALETTE.len()];
            shapes.push(Shape::Rect { x, y: y - 8.0, w: 10.0, h: 10.0, fill: color, opacity: 1.0 });
            shapes.push(Shape::Text {
                x: x + 14.0,
                y: y + 0.5,
                text: s.name.clone(),
                anchor: Anchor::Start,
                scale: SMALL,
                color: INK,
            });
        }
    }

    Scene { width: WIDTH, height: HEIGHT, title, series: series.into_iter().map(|s| s.name).collect(), shapes, plot }
}

fn band_label(shapes: &mut Vec<Shape>, x: f64, width: f64, top: f64, label: &str) {
    let fits = ((width - 4.0) / f64::from(ADVANCE)).floor().max(0.0) as usize;
    if fits >= 3 {
        shapes.push(Shape::Text {
            x: x + 3.0,
            y: top + 11.0,
            text: clip_text(label, fits.min(NAME_CHARS)),
            anchor: Anchor::Start,
            scale: SMALL,
            color: MUTED,
        });
    }
}

/// Puts the bands and x labels in `shapes` and the lines in `data`.
fn line_plot(
    chart: &Chart,
    series: &[Prepared],
    plot: (f64, f64, f64, f64),
    ticks: &Ticks,
    shapes: &mut Vec<Shape>,
    data: &mut Vec<Shape>,
) {
    let (left, top, right, bottom) = plot;
    let xs: Vec<i64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let (Some(&min), Some(&max)) = (xs.iter().min(), xs.iter().max()) else { return };
    let time = is_time(min) && is_time(max);
    let (lo, hi) = if min == max {
        let pad = if time { HOUR } else { 1 };
        (min as f64 - pad as f64, max as f64 + pad as f64)
    } else {
        (min as f64, max as f64)
    };
    let axis = XAxis { lo, hi, time };
    let x_of = |x: f64| left + (x - lo) / (hi - lo) * (right - left);
    let y_of = |v: f64| bottom - (v - ticks.lo) / (ticks.hi - ticks.lo) * (bottom - top);

    for band in chart.bands.iter().take(MAX_BANDS) {
        let (from, to) = ((band.from as f64).max(lo), (band.to as f64).min(hi));
        if from >= to {
            continue;
        }
        let (x1, x2) = (x_of(from), x_of(to));
        let width = (x2 - x1).max(1.0);
        shapes.push(Shape::Rect { x: x1, y: top, w: width, h: bottom - top, fill: BAND, opacity: BAND_OPACITY });
        band_label(shapes, x1, width, top, &band.label);
    }

    let max_ticks = ((right - left) / 80.0).floor() as usize;
    for (x, first, second) in x_ticks(&axis, max_ticks) {
        let px = x_of(x);
        shapes.push(Shape::Line { x1: px, y1: bottom, x2: px, y2: bottom + 4.0, color: AXIS, width: 1.0 });
        shapes.push(Shape::Text {
            x: px,
            y: bottom + 15.0,
            text: first,
            anchor: Anchor::Middle,
            scale: SMALL,
            color: MUTED,
        });
        if let Some(second) = second {
            shapes.push(Shape::Text {
                x: px,
                y: bottom + 26.0,
                text: second,
                anchor: Anchor::Middle,
                scale: SMALL,
                color: MUTED,
            });
        }
    }
    if time {
        shapes.push(Shape::Text {
            x: right,
            y: bottom + 26.0,
            text: "UTC".into(),
            anchor: Anchor::End,
            scale: SMALL,
            color: MUTED,
        });
    }

    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64)>| {
            match run.len() {
                0 => {}
                1 => data.push(Shape::Dot { series: i, x: run[0].0, y: run[0].1, r: 3.0, color }),
                _ => data.push(Shape::Polyline { series: i, points: std::mem::take(run), color, width: 2.0 }),
            }
            run.clear();
        };
        for (x, y, _) in &s.points {
            match y {
                Some(v) => run.push((x_of(*x as f64), y_of(*v))),
                None => flush(&mut run),
            }
        }
        flush(&mut run);
    }
}

/// Puts the bands and x labels in `shapes` and the bars in `data`.
fn bar_plot(
    chart: &Chart,
    series: &[Prepared],
    plot: (f64, f64, f64, f64),
    ticks: &Ticks,
    shapes: &mut Vec<Shape>,
    data: &mut Vec<Shape>,
) {
    let (left, top, right, bottom) = plot;
    // The categories: every distinct x, in order, with the first label given.
    let mut categories: Vec<(i64, Option<String>)> = Vec::new();
    for s in series {
        for (x, _, label) in &s.points {
            match categories.binary_search_by_key(x, |c| c.0) {
                Ok(at) => {
                    if let Some(c) = categories.get_mut(at) {
                        if c.1.is_none() {
                            c.1.clone_from(label);
                        }
                    }
                }
                Err(at) if categories.len() < MAX_BARS => categories.insert(at, (*x, label.clone())),
                Err(_) => {}
            }
        }
    }
    if categories.is_empty() {
        return;
    }
    let n = categories.len() as f64;
    let slot = (right - left) / n;
    let y_of = |v: f64| bottom - (v - ticks.lo) / (ticks.hi - ticks.lo) * (bottom - top);
    let base = y_of(0.0f64.clamp(ticks.lo, ticks.hi));

    for band in chart.bands.iter().take(MAX_BANDS) {
        let inside: Vec<usize> =
            (0..categories.len()).filter(|&k| (band.from..band.to).contains(&categories[k].0)).collect();
        if let (Some(&first), Some(&last)) = (inside.first(), inside.last()) {
            let x = left + first as f64 * slot;
            let width = (last - first + 1) as f64 * slot;
            shapes.push(Shape::Rect { x, y: top, w: width, h: bottom - top, fill: BAND, opacity: BAND_OPACITY });
            band_label(shapes, x, width, top, &band.label);
        }
    }

    let groups = series.len().max(1) as f64;
    let bar = (slot * 0.8 / groups).max(0.5);
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for (x, y, _) in &s.points {
            let (Ok(k), Some(v)) = (categories.binary_search_by_key(x, |c| c.0), y) else { continue };
            let px = left + k as f64 * slot + slot * 0.1 + i as f64 * bar;
            let py = y_of(*v);
            let (y0, y1) = (py.min(base), py.max(base));
            data.push(Shape::Rect { x: px, y: y0, w: bar, h: (y1 - y0).max(1.0), fill: color, opacity: 1.0 });
        }
    }

    let daily = categories.iter().all(|c| c.0.rem_euclid(DAY) == 0);
    let labels: Vec<String> = categories.iter().map(|(x, l)| bar_label(*x, l.as_deref(), daily)).collect();
    let widest = labels.iter().map(|l| text_width(l, SMALL)).fold(0.0, f64::max) + 8.0;
    let every = (widest / slot).ceil().max(1.0) as usize;
    for (k, label) in labels.into_iter().enumerate().step_by(every) {
        let px = left + (k as f64 + 0.5) * slot;
        shapes.push(Shape::Text {
            x: px,
            y: bottom + 15.0,
            text: label,
            anchor: Anchor::Middle,
            scale: SMALL,
            color: MUTED,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        let t = value_ticks(&[0.3, 4.7]);
        assert_eq!((t.lo, t.hi, t.step), (0.0, 5.0, 1.0));
        let t = value_ticks(&[-3.0, 12.0]);
        assert!(t.lo <= -3.0 && t.hi >= 12.0 && t.step > 0.0);
        let t = value_ticks(&[]);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
        let t = value_ticks(&[7.0, 7.0]);
        assert!(t.lo <= 7.0 && t.hi > 7.0);
        let t = value_ticks(&[MAX_ABS, -MAX_ABS]);
        assert!(t.lo.is_finite() && t.hi.is_finite() && t.step.is_finite());
        assert_eq!(tick_label(0.5, 0.1), "0.5");
        assert_eq!(tick_label(2_000_000.0, 500_000.0), "2.0M");
        assert_eq!(tick_label(3.0, 1.0), "3");
        assert_eq!(tick_label(1e-17, 0.2), "0.0");
    }

    #[test]
    fn time_ticks_show_hours_and_dates_in_utc() {
        let start = 1_773_100_800_000; // 2026-03-10T00:00Z
        let axis = XAxis { lo: (start - 6 * HOUR) as f64, hi: (start + 18 * HOUR) as f64, time: true };
        let ticks = x_ticks(&axis, 8);
        assert!(ticks.len() >= 4 && ticks.len() <= 9, "{ticks:?}");
        let midnight = ticks.iter().find(|t| t.0 == start as f64).unwrap();
        assert_eq!((midnight.1.as_str(), midnight.2.as_deref()), ("00:00", Some("03-10")));
        assert_eq!(ticks[0].2.as_deref(), Some("03-09"), "the first tick says its date");
        let week = XAxis { lo: start as f64, hi: (start + 7 * DAY) as f64, time: true };
        assert!(x_ticks(&week, 8).iter().all(|t| t.1.len() == 5 && t.2.is_none()));
    }

    #[test]
    fn text_is_clipped_and_cleaned() {
        assert_eq!(clip_text("abc", 5), "abc");
        assert_eq!(clip_text("abcdef", 4), "abc…");
        assert_eq!(clip_text("a\nb\u{0}", 10), "a b ");
    }
}
