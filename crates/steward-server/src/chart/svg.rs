//! The chart as SVG: the layout's shapes as elements, every text escaped.

use std::fmt::Write;

use steward_protocol::insight::Chart;

use super::layout::{layout, Anchor, Scene, Shape, BACKGROUND};

/// Font size in px of text at font scale 1 (about as wide as the PNG's 6 px
/// a character, which the layout places by); the title (scale 2) is larger.
fn font_size(scale: u32) -> u32 {
    if scale >= 2 {
        16
    } else {
        10
    }
}

/// Escapes text for XML content and attribute values. Characters XML 1.0
/// does not allow at all (most control characters) are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with one decimal, which is finer than any screen needs.
fn n(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(String::from).unwrap_or(s)
}

/// Draws `chart` as a standalone SVG document.
pub fn render_svg(chart: &Chart) -> String {
    write_scene(&layout(chart))
}

fn write_scene(scene: &Scene) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // `write!` to a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" role=\"img\">\n<title>{title}</title>\n\
<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"{bg}\"/>\n",
        w = scene.width,
        h = scene.height,
        title = escape(&scene.title),
        bg = BACKGROUND.hex(),
    );
    for shape in &scene.shapes {
        match shape {
            Shape::Rect { x, y, w, h, fill, opacity } => {
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"",
                    n(*x),
                    n(*y),
                    n(*w),
                    n(*h),
                    fill.hex()
                );
                if *opacity < 1.0 {
                    let _ = write!(out, " fill-opacity=\"{:.2}\"", opacity.clamp(0.0, 1.0));
                }
                out.push_str("/>\n");
            }
            Shape::Line { x1, y1, x2, y2, color, width } => {
                let _ = writeln!(
                    out,
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>",
                    n(*x1),
                    n(*y1),
                    n(*x2),
                    n(*y2),
                    color.hex(),
                    n(*width)
                );
            }
            Shape::Polyline { series, points, color, width } => {
                let coords: Vec<String> = points.iter().map(|(x, y)| format!("{},{}", n(*x), n(*y))).collect();
                let name = scene.series.get(*series).map(String::as_str).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" \
stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"{}\"><title>{}</title></polyline>",
                    series,
                    color.hex(),
                    n(*width),
                    coords.join(" "),
                    escape(name)
                );
            }
            Shape::Dot { series, x, y, r, color } => {
                let _ = writeln!(
                    out,
                    "<circle class=\"series\" data-series=\"{}\" cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"/>",
                    series,
                    n(*x),
                    n(*y),
                    n(*r),
                    color.hex()
                );
            }
            Shape::Text { x, y, text, anchor, scale, color } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let weight = if *scale >= 2 { " font-weight=\"bold\"" } else { "" };
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\"{weight}>{}</text>",
                    n(*x),
                    n(*y),
                    font_size(*scale),
                    color.hex(),
                    escape(text)
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use steward_protocol::insight::{ChartBand, ChartKind, ChartPoint, ChartSeries};

    use super::*;

    const T0: i64 = 1_773_100_800_000; // 2026-03-10T00:00Z
    const HOUR: i64 = 3_600_000;

    fn series(name: &str, values: &[Option<f64>]) -> ChartSeries {
        ChartSeries {
            name: name.into(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, y)| ChartPoint { x: T0 + i as i64 * HOUR, y: *y, label: None })
                .collect(),
        }
    }

    fn chart(kind: ChartKind, series: Vec<ChartSeries>) -> Chart {
        Chart { kind, title: "Energy <by> \"meter\" & more".into(), y_unit: "kWh".into(), series, bands: vec![] }
    }

    #[test]
    fn a_line_chart_has_its_title_a_polyline_per_series_and_escaped_text() {
        let mut c = chart(
            ChartKind::Line,
            vec![
                series("House <main>", &[Some(1.0), Some(2.5), Some(0.5), Some(1.5)]),
                series("Car & charger", &[Some(0.0), Some(3.0), Some(4.0), Some(1.0)]),
            ],
        );
        c.bands.push(ChartBand { from: T0 + HOUR, to: T0 + 2 * HOUR, label: "no data: 'x'".into() });
        let svg = render_svg(&c);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<title>Energy &lt;by&gt; &quot;meter&quot; &amp; more</title>"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("data-series=\"0\"") && svg.contains("data-series=\"1\""));
        assert!(svg.contains(">House &lt;main&gt;</text>"), "the legend names the series: {svg}");
        assert!(svg.contains(">Car &amp; charger</text>"));
        assert!(svg.contains(">kWh</text>"), "the unit is on the y axis");
        assert!(svg.contains(">no data: &apos;x&apos;</text>"), "the band is labelled: {svg}");
        assert!(svg.contains("fill-opacity"), "the band is shaded");
        assert!(svg.contains(">00:00</text>") && svg.contains(">03-10</text>"), "UTC hours and the date: {svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // Nothing but the escaped forms of the special characters.
        for raw in ["<by>", "& more", "<main>", "'x'"] {
            assert!(!svg.contains(raw), "{raw} is not escaped");
        }
    }

    #[test]
    fn a_hole_breaks_the_line_and_a_lone_point_is_a_dot() {
        let c = chart(
            ChartKind::Line,
            vec![series("m", &[Some(1.0), Some(2.0), None, Some(3.0), Some(f64::NAN), Some(1.0), Some(2.0)])],
        );
        let svg = render_svg(&c);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }

    #[test]
    fn bars_are_drawn_per_point() {
        let c = chart(ChartKind::Bar, vec![series("day", &[Some(3.0), Some(5.0), None, Some(-1.0)])]);
        let svg = render_svg(&c);
        let bars = svg.matches("fill=\"#4e79a7\"").count();
        assert_eq!(bars, 3 + 1, "three bars and the legend swatch: {svg}");
        assert!(!svg.contains("<polyline"));
    }

    #[test]
    fn degenerate_charts_render() {
        let huge = series("huge", &[Some(1e300), Some(-1e300), Some(f64::INFINITY), Some(f64::NEG_INFINITY)]);
        let one = series("one", &[Some(2.0)]);
        let none = series("none", &[None, None]);
        let empty = series("empty", &[]);
        for c in [
            chart(ChartKind::Line, vec![]),
            chart(ChartKind::Bar, vec![]),
            chart(ChartKind::Line, vec![empty.clone(), none.clone()]),
            chart(ChartKind::Bar, vec![none]),
            chart(ChartKind::Line, vec![one.clone()]),
            chart(ChartKind::Bar, vec![one]),
            chart(ChartKind::Line, vec![huge.clone()]),
            chart(ChartKind::Bar, vec![huge]),
        ] {
            let svg = render_svg(&c);
            assert!(svg.ends_with("</svg>\n"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let svg = render_svg(&chart(ChartKind::Line, vec![empty]));
        assert!(svg.contains(">no data</text>"));
        // Plain numbers as x, out of order, are sorted and labelled as numbers.
        let numbers = ChartSeries {
            name: "n".into(),
            points: [5, -3, 12].iter().map(|&x| ChartPoint { x, y: Some(x as f64), label: None }).collect(),
        };
        assert_eq!(render_svg(&chart(ChartKind::Line, vec![numbers])).matches("<polyline").count(), 1);
    }

    #[test]
    fn long_inputs_are_capped() {
        let many: Vec<ChartSeries> = (0..50)
            .map(|i| ChartSeries {
                name: format!("series {i} {}", "x".repeat(500)),
                points: (0..100_000).map(|k| ChartPoint { x: k, y: Some((k % 7) as f64), label: None }).collect(),
            })
            .collect();
        let svg = render_svg(&Chart {
            kind: ChartKind::Line,
            title: "t".repeat(10_000),
            y_unit: String::new(),
            series: many,
            bands: (0..1000).map(|k| ChartBand { from: k, to: k + 10, label: "b".into() }).collect(),
        });
        assert_eq!(svg.matches("<polyline").count(), super::super::layout::MAX_SERIES);
        assert!(svg.len() < 2_000_000, "{} bytes", svg.len());
    }
}
