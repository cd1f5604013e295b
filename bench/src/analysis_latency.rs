//! Data-scientist benchmark: how long the built-in energy analysis, its
//! chart and a sandboxed analysis script take.
//!
//! Over the demo home (7 days of 5-minute history), runs `analyze_energy`
//! for 24 and 168 hours over every energy sensor, renders the resulting
//! chart as SVG and PNG, and — when bubblewrap works here — runs a small
//! Python script in the sandbox. Prints p50, p99 and max in milliseconds and
//! the sizes of what was produced.
//!
//! Run: `cargo run --release -p steward-bench --bin analysis-latency -- [--rounds N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use steward_core::insights::analyze_energy_insight;
use steward_core::{Clock, SystemClock};
use steward_integrations::sandbox::{Sandbox, SandboxConfig};
use steward_integrations::DemoHome;
use steward_server::chart::{render_png, render_svg};

fn parse_rounds() -> anyhow::Result<usize> {
    let mut rounds = 30;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rounds" => rounds = value.parse().context("--rounds must be a number")?,
            other => bail!("unknown flag {other}; use --rounds N"),
        }
    }
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(rounds)
}

fn report(what: &str, mut samples: Vec<Duration>, extra: &str) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what:<34} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({} runs){extra}",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        samples.len()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let rounds = parse_rounds()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let home = DemoHome::new(clock.clone());
    for hours in [24, 168] {
        let mut analysis = Vec::with_capacity(rounds);
        let mut svg_times = Vec::with_capacity(rounds);
        let mut png_times = Vec::with_capacity(rounds);
        let (mut svg_bytes, mut png_bytes, mut entities) = (0, 0, 0);
        for _ in 0..rounds {
            let started = Instant::now();
            let draft = analyze_energy_insight(&home, clock.as_ref(), hours, None, Some(0.30))
                .await
                .map_err(|e| anyhow::anyhow!("the analysis failed: {e:?}"))?;
            analysis.push(started.elapsed());
            entities = draft.entity_ids.len();
            let chart = draft.chart.context("the analysis drew no chart")?;
            let started = Instant::now();
            svg_bytes = render_svg(&chart).len();
            svg_times.push(started.elapsed());
            let started = Instant::now();
            png_bytes = render_png(&chart).map_err(|e| anyhow::anyhow!("PNG: {e}"))?.len();
            png_times.push(started.elapsed());
        }
        report(&format!("analyze_energy {hours} h"), analysis, &format!("  {entities} entities"));
        report(&format!("chart.svg {hours} h"), svg_times, &format!("  {svg_bytes} bytes"));
        report(&format!("chart.png {hours} h"), png_times, &format!("  {png_bytes} bytes"));
    }

    let sandbox = Sandbox::detect(&SandboxConfig::default()).await;
    if !sandbox.is_sandboxed() {
        println!("sandboxed script: skipped ({})", sandbox.describe());
        return Ok(());
    }
    let script = "import json\nrows = json.load(open('data.json'))\nprint(sum(rows) / len(rows))\n";
    let data = serde_json::to_vec(&(0..10_000).collect::<Vec<u32>>())?;
    let files = vec![("data.json".to_string(), data)];
    let mut runs = Vec::new();
    for _ in 0..rounds.min(20) {
        let started = Instant::now();
        let out = sandbox.run_python(script, &files).await.map_err(|e| anyhow::anyhow!("the script failed: {e}"))?;
        runs.push(started.elapsed());
        if !out.stdout.trim().starts_with("4999.5") {
            bail!("the script printed {:?}", out.stdout);
        }
    }
    report("sandboxed python script", runs, "  (bwrap + python3 start, 10,000 numbers in)");
    Ok(())
}
