//! The chart as a PNG: the layout's shapes rasterised here into an RGB
//! buffer (Bresenham lines with a square brush, filled rectangles and
//! circles, the built-in 5×7 font), then encoded by the `png` crate.
//!
//! No anti-aliasing: the picture is for a chat client or a notification,
//! where crisp one-pixel axes and two-pixel lines read well.

use steward_protocol::insight::Chart;

use super::font::{glyph, pixel, GLYPH_H, GLYPH_W};
use super::layout::{layout, text_width, Anchor, Rgb, Scene, Shape, BACKGROUND};
use super::ChartError;

/// An RGB picture.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    /// Three bytes per pixel, row by row from the top.
    pub pixels: Vec<u8>,
}

/// Pixel coordinates kept well within `i64` and near the canvas, so no
/// loop over a line or a rectangle runs long even for wild input.
fn px(v: f64, limit: u32) -> i64 {
    let limit = f64::from(limit);
    if v.is_finite() {
        v.round().clamp(-limit, 2.0 * limit) as i64
    } else {
        0
    }
}

impl Canvas {
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        let count = width as usize * height as usize;
        let mut pixels = Vec::with_capacity(count * 3);
        for _ in 0..count {
            pixels.extend_from_slice(&[background.0, background.1, background.2]);
        }
        Canvas { width, height, pixels }
    }

    /// The colour at (`x`, `y`), `None` outside the canvas.
    #[cfg(test)]
    pub fn get(&self, x: i64, y: i64) -> Option<Rgb> {
        let i = self.index(x, y)?;
        Some(Rgb(*self.pixels.get(i)?, *self.pixels.get(i + 1)?, *self.pixels.get(i + 2)?))
    }

    fn index(&self, x: i64, y: i64) -> Option<usize> {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return None;
        }
        Some((y as usize * self.width as usize + x as usize) * 3)
    }

    /// Paints one pixel, over what is there at `alpha` (0 to 1).
    fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f64) {
        let Some(i) = self.index(x, y) else { return };
        let Some(p) = self.pixels.get_mut(i..i + 3) else { return };
        if alpha >= 1.0 {
            p.copy_from_slice(&[c.0, c.1, c.2]);
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        for (old, new) in p.iter_mut().zip([c.0, c.1, c.2]) {
            *old = (f64::from(*old) * (1.0 - a) + f64::from(new) * a).round() as u8;
        }
    }

    fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgb, alpha: f64) {
        let (x0, x1) = (px(x, self.width), px(x + w, self.width));
        let (y0, y1) = (px(y, self.height), px(y + h, self.height));
        let (x0, x1) = (x0.max(0), x1.min(i64::from(self.width)).max(x0 + 1));
        let (y0, y1) = (y0.max(0), y1.min(i64::from(self.height)).max(y0 + 1));
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.blend(xx, yy, c, alpha);
            }
        }
    }

    /// A line `width` pixels thick: Bresenham's walk, stamping a square
    /// brush at every step.
    fn line(&mut self, from: (f64, f64), to: (f64, f64), c: Rgb, width: f64) {
        let (mut x, mut y) = (px(from.0, self.width), px(from.1, self.height));
        let (x1, y1) = (px(to.0, self.width), px(to.1, self.height));
        let brush = (width.round() as i64).clamp(1, 8);
        let back = (brush - 1) / 2;
        let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
        let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        loop {
            for by in 0..brush {
                for bx in 0..brush {
                    self.blend(x - back + bx, y - back + by, c, 1.0);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn dot(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        let r = r.clamp(0.5, 20.0);
        let (x0, x1) = (px(cx - r, self.width), px(cx + r, self.width));
        let (y0, y1) = (px(cy - r, self.height), px(cy + r, self.height));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                if dx * dx + dy * dy <= r * r {
                    self.blend(x, y, c, 1.0);
                }
            }
        }
    }

    /// `text` with its baseline at `y`.
    fn text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, scale: u32, c: Rgb) {
        let scale = scale.clamp(1, 4);
        let width = text_width(text, scale);
        let left = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        };
        let (left, top) = (px(left, self.width), px(y, self.height) - i64::from(GLYPH_H * scale));
        let s = i64::from(scale);
        for (k, ch) in text.chars().enumerate() {
            let origin = left + k as i64 * i64::from(super::font::ADVANCE) * s;
            if origin >= i64::from(self.width) {
                break;
            }
            let rows = glyph(ch);
            for row in 0..GLYPH_H {
                for col in 0..GLYPH_W {
                    if pixel(&rows, col, row) {
                        for yy in 0..s {
                            for xx in 0..s {
                                self.blend(origin + i64::from(col) * s + xx, top + i64::from(row) * s + yy, c, 1.0);
                            }
                        }
                    }
                }
            }
        }
    }

    fn draw(&mut self, scene: &Scene) {
        for shape in &scene.shapes {
            match shape {
                Shape::Rect { x, y, w, h, fill, opacity } => self.fill_rect(*x, *y, *w, *h, *fill, *opacity),
                Shape::Line { x1, y1, x2, y2, color, width } => self.line((*x1, *y1), (*x2, *y2), *color, *width),
                Shape::Polyline { points, color, width, .. } => {
                    for pair in points.windows(2) {
                        if let [a, b] = pair {
                            self.line(*a, *b, *color, *width);
                        }
                    }
                }
                Shape::Dot { x, y, r, color, .. } => self.dot(*x, *y, *r, *color),
                Shape::Text { x, y, text, anchor, scale, color } => self.text(*x, *y, text, *anchor, *scale, *color),
            }
        }
    }
}

/// The chart drawn into pixels.
pub fn rasterise(chart: &Chart) -> Canvas {
    let scene = layout(chart);
    let mut canvas = Canvas::new(scene.width, scene.height, BACKGROUND);
    canvas.draw(&scene);
    canvas
}

/// Draws `chart` as a PNG image.
pub fn render_png(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    let canvas = rasterise(chart);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut encoder = png::Encoder::new(&mut out, canvas.width, canvas.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let encode = |e: png::EncodingError| ChartError::Encode(e.to_string());
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&canvas.pixels).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use steward_protocol::insight::{ChartBand, ChartKind, ChartPoint, ChartSeries};

    use super::super::layout::{HEIGHT, PALETTE, WIDTH};
    use super::*;

    const T0: i64 = 1_773_100_800_000;
    const HOUR: i64 = 3_600_000;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn line_chart(values: &[Option<f64>]) -> Chart {
        Chart {
            kind: ChartKind::Line,
            title: "Hourly energy use (kWh)".into(),
            y_unit: "kWh".into(),
            series: vec![ChartSeries {
                name: "House".into(),
                points: values
                    .iter()
                    .enumerate()
                    .map(|(i, y)| ChartPoint { x: T0 + i as i64 * HOUR, y: *y, label: None })
                    .collect(),
            }],
            bands: vec![ChartBand { from: T0 + 2 * HOUR, to: T0 + 3 * HOUR, label: "no data".into() }],
        }
    }

    fn count(canvas: &Canvas, c: Rgb, within: (f64, f64, f64, f64)) -> usize {
        let mut n = 0;
        for y in within.1 as i64..=within.3 as i64 {
            for x in within.0 as i64..=within.2 as i64 {
                n += usize::from(canvas.get(x, y) == Some(c));
            }
        }
        n
    }

    #[test]
    fn a_png_decodes_to_the_chart_size_with_the_line_where_the_data_is() {
        let chart = line_chart(&[Some(1.0), Some(4.0), None, Some(2.0), Some(3.0)]);
        let bytes = render_png(&chart).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (info, pixels) = decode(&bytes);
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let canvas = rasterise(&chart);
        assert_eq!(pixels, canvas.pixels, "the PNG holds exactly the rasterised pixels");

        // The series colour sits on every data point, and nowhere in the
        // hole between the second and fourth point.
        let scene = layout(&chart);
        let lines: Vec<&Vec<(f64, f64)>> = scene
            .shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Polyline { points, .. } => Some(points),
                _ => None,
            })
            .collect();
        assert_eq!(lines.len(), 2);
        let blue = PALETTE[0];
        for &(x, y) in lines.iter().flat_map(|l| l.iter()) {
            assert_eq!(canvas.get(x.round() as i64, y.round() as i64), Some(blue), "at ({x}, {y})");
        }
        let (x_end_first, x_start_second) = (lines[0][1].0, lines[1][0].0);
        let (_, top, _, bottom) = scene.plot;
        assert_eq!(count(&canvas, blue, (x_end_first + 3.0, top, x_start_second - 3.0, bottom)), 0);
        // The higher value is drawn higher up.
        assert!(lines[0][1].1 < lines[0][0].1);
        // The band is shaded: a pixel inside it, clear of the line, is grey.
        let inside = x_end_first + (x_start_second - x_end_first) * 0.75;
        let band = canvas.get(inside as i64, (bottom - 3.0) as i64).unwrap();
        assert!(band != BACKGROUND && band.0 == band.1 && band.1 == band.2, "{band:?}");
        // The title and labels are drawn in ink.
        assert!(count(&canvas, Rgb(0x33, 0x33, 0x33), (0.0, 0.0, f64::from(WIDTH), 30.0)) > 100);
    }

    #[test]
    fn bars_fill_their_rectangles() {
        let mut chart = line_chart(&[Some(2.0), Some(5.0)]);
        chart.kind = ChartKind::Bar;
        chart.bands.clear();
        let canvas = rasterise(&chart);
        let scene = layout(&chart);
        let bars: Vec<(f64, f64, f64, f64)> = scene
            .shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Rect { x, y, w, h, fill, .. } if *fill == PALETTE[0] && *h > 12.0 => Some((*x, *y, *w, *h)),
                _ => None,
            })
            .collect();
        assert_eq!(bars.len(), 2);
        assert!(bars[1].3 > bars[0].3 * 2.0, "5 is taller than 2: {bars:?}");
        for (x, y, w, h) in bars {
            assert_eq!(canvas.get((x + w / 2.0) as i64, (y + h / 2.0) as i64), Some(PALETTE[0]));
        }
    }

    #[test]
    fn degenerate_charts_render_as_pictures() {
        let nothing =
            Chart { kind: ChartKind::Line, title: String::new(), y_unit: String::new(), series: vec![], bands: vec![] };
        let wild = line_chart(&[Some(f64::NAN), Some(1e308), Some(-1e308), Some(f64::INFINITY), None, Some(0.0)]);
        let one = line_chart(&[Some(42.0)]);
        let mut odd_band = line_chart(&[Some(1.0), Some(2.0)]);
        odd_band.bands = vec![
            ChartBand { from: i64::MIN, to: i64::MAX, label: "everything".into() },
            ChartBand { from: 10, to: 5, label: "backwards".into() },
        ];
        let mut far = line_chart(&[Some(1.0)]);
        far.series[0].points.push(ChartPoint { x: i64::MAX, y: Some(2.0), label: Some("end".into()) });
        far.series[0].points.push(ChartPoint { x: i64::MIN, y: Some(3.0), label: None });
        for chart in [nothing, wild, one.clone(), odd_band, far] {
            for kind in [ChartKind::Line, ChartKind::Bar] {
                let chart = Chart { kind, ..chart.clone() };
                let (info, _) = decode(&render_png(&chart).unwrap());
                assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
            }
        }
        // A lone point is a visible dot.
        let scene = layout(&one);
        let dot = scene.shapes.iter().find_map(|s| match s {
            Shape::Dot { x, y, .. } => Some((*x, *y)),
            _ => None,
        });
        let (x, y) = dot.unwrap();
        assert_eq!(rasterise(&one).get(x as i64, y as i64), Some(PALETTE[0]));
    }
}
