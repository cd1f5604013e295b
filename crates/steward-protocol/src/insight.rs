//! Insights: what an analysis found, with its evidence and a chart.

use serde::{Deserialize, Serialize};

/// A persisted finding of an analysis (energy use, a fault, an anomaly).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Insight {
    pub id: String,
    /// `energy`, `diagnosis`, `anomaly`, `note` …
    pub kind: String,
    pub title: String,
    /// A few sentences a person reads.
    pub summary: String,
    /// The numbers and observations it rests on (JSON).
    #[serde(default)]
    pub evidence: serde_json::Value,
    /// The entities it is about.
    #[serde(default)]
    pub entity_ids: Vec<String>,
    /// The data its chart is drawn from, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
    /// Where the chart is served, as SVG (`…/chart.svg`) and PNG (`…/chart.png`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_url: Option<String>,
    /// The conversation it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Who made it: `agent:data-scientist`, `user:local` …
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// `GET /api/insights`, newest first.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct InsightList {
    pub insights: Vec<Insight>,
}

/// `POST /api/insights`: an insight written by a person or a client.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewInsight {
    #[serde(default)]
    pub kind: Option<String>,
    pub title: String,
    pub summary: String,
    #[serde(default)]
    pub evidence: Option<serde_json::Value>,
    #[serde(default)]
    pub entity_ids: Vec<String>,
    #[serde(default)]
    pub chart: Option<Chart>,
}

/// `POST /api/insights/analyze`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// How far back to look, 24 to 168 hours (default 24).
    #[serde(default)]
    pub hours: Option<u32>,
    /// The energy meters to analyse; all of them when absent.
    #[serde(default)]
    pub entity_ids: Option<Vec<String>>,
}

/// What a chart shows. Rendered by the server as SVG or PNG.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Chart {
    pub kind: ChartKind,
    pub title: String,
    /// The unit of the y axis (`kWh`, `°C`, `%`).
    #[serde(default)]
    pub y_unit: String,
    pub series: Vec<ChartSeries>,
    /// Stretches of the x axis to shade (a data gap, an anomaly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<ChartBand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Lines over time; `x` is milliseconds since the Unix epoch.
    Line,
    /// One bar per point, labelled by `label` (or `x` as a time).
    Bar,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChartSeries {
    pub name: String,
    pub points: Vec<ChartPoint>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChartPoint {
    pub x: i64,
    /// `None` is a hole: the line breaks, the bar is missing.
    pub y: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChartBand {
    pub from: i64,
    pub to: i64,
    pub label: String,
}
