//! Charts of insights, drawn here in Rust: as SVG for browsers and as PNG
//! for clients that show only pictures (chat apps, notifications).
//!
//! [`layout`] places everything once, in pixels; [`svg`] writes that as
//! elements and [`png`] rasterises it with a built-in bitmap [`font`], so
//! both pictures show the same chart. Neither needs a font file, a browser
//! or a native library on the host.

mod font;
mod layout;
mod png;
mod svg;

pub use self::png::render_png;
pub use self::svg::render_svg;

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("the chart could not be encoded as PNG ({0}); the same chart is served as SVG at chart.svg")]
    Encode(String),
}
