//! The `render` scenario: the markdown pipeline on adversarial inputs, in-process (no server).

use super::args::BenchArgs;
use super::report::{render_header, render_row};
use anyhow::{Context, Result};
use serde_json::json;

pub(super) async fn render_scenario(args: &BenchArgs) -> Result<()> {
    let iterations = args.iterations.max(1);
    let rows = tokio::task::spawn_blocking(move || {
        use confab_core::render::{pathological_inputs, render_markdown};
        let mut rows = Vec::new();
        for (name, input) in pathological_inputs() {
            let mut times: Vec<f64> = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t = std::time::Instant::now();
                let out = render_markdown(&input);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                std::hint::black_box(out);
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let max = times[times.len() - 1];
            rows.push(json!({
                "scenario": "render",
                "input": name,
                "chars": input.chars().count(),
                "iterations": iterations,
                "median_ms": (median * 1000.0).round() / 1000.0,
                "max_ms": (max * 1000.0).round() / 1000.0,
            }));
        }
        rows
    })
    .await
    .context("render scenario panicked")?;
    if !args.json {
        println!("{}", render_header());
    }
    for r in &rows {
        if args.json {
            println!("{r}");
        } else {
            println!("{}", render_row(r));
        }
    }
    Ok(())
}
