//! Output: the table rows of measurements and of the `render` scenario, the warnings about a
//! row, and `--report FILE` (the table of a file of `--json` lines, and rps ratios).

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

pub(super) fn warn_about(row: &Value) {
    let name = row["name"].as_str().unwrap_or("?");
    if row["errors"].as_u64().unwrap_or(0) > 0 {
        eprintln!(
            "warning: {name}: {} errors {} (first: {})",
            row["errors"],
            row["error_kinds"],
            row["first_error"].as_str().unwrap_or("?")
        );
    }
    if row["behind"].as_bool() == Some(true) {
        eprintln!(
            "warning: {name}: fell behind the schedule: {} req/s answered of {} offered, start lag p99 {} ms, max {} ms (latencies count from the intended start)",
            row["rps"], row["rate"], row["start_lag_p99_ms"], row["start_lag_max_ms"]
        );
    }
    if let Some(other) = row["cpu_cores"]["other"].as_f64() {
        if other > 0.25 {
            eprintln!(
                "warning: {name}: other processes used {other:.2} CPU cores during the measurement (machine {}, server {}, bench {}): the numbers are skewed",
                row["cpu_cores"]["machine"], row["cpu_cores"]["server"], row["cpu_cores"]["bench"]
            );
        }
    }
    if row["too_short"].as_bool() == Some(true) {
        eprintln!(
            "warning: {name}: fewer responses than connections in the window: the response time is about as long as --duration or longer, so rps is imprecise; use a longer --duration"
        );
    }
}

fn row_name(row: &Value) -> String {
    row["name"]
        .as_str()
        .or(row["scenario"].as_str())
        .unwrap_or("?")
        .to_string()
}

pub(super) fn table_header() -> String {
    format!(
        "{:<24} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
        "scenario",
        "requests",
        "errors",
        "rps",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p999 ms",
        "q/req",
        "replica"
    )
}

pub(super) fn table_row(row: &Value) -> String {
    let f = |k: &str| row[k].as_f64().unwrap_or(0.0);
    let qpr = row["queries_per_request"]
        .as_f64()
        .map_or("-".to_string(), |q| format!("{q:.2}"));
    let share = row["replica_read_share"]
        .as_f64()
        .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0));
    format!(
        "{:<24} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8}",
        row_name(row),
        row["requests"].as_u64().unwrap_or(0),
        row["errors"].as_u64().unwrap_or(0),
        f("rps"),
        f("p50_ms"),
        f("p90_ms"),
        f("p99_ms"),
        f("p999_ms"),
        qpr,
        share,
    )
}

pub(super) fn render_header() -> String {
    format!(
        "{:<24} {:>7} {:>6} {:>10} {:>10}",
        "render input", "chars", "runs", "median ms", "max ms"
    )
}

pub(super) fn render_row(row: &Value) -> String {
    format!(
        "{:<24} {:>7} {:>6} {:>10.3} {:>10.3}",
        row["input"].as_str().unwrap_or("?"),
        row["chars"].as_u64().unwrap_or(0),
        row["iterations"].as_u64().unwrap_or(0),
        row["median_ms"].as_f64().unwrap_or(0.0),
        row["max_ms"].as_f64().unwrap_or(0.0),
    )
}

/// `--report FILE`: the table of a file of `--json` lines, and rps ratios of named rows.
pub(super) fn report(path: &PathBuf, ratios: &[String]) -> Result<()> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("parsing the JSON lines")?;
    let loads: Vec<&Value> = rows.iter().filter(|r| r.get("rps").is_some()).collect();
    let renders: Vec<&Value> = rows.iter().filter(|r| r.get("input").is_some()).collect();
    if !loads.is_empty() {
        // With --server-pid: the CPU cores the server used and those other processes took.
        let cpu = loads.iter().any(|r| r["cpu_cores"]["server"].is_number());
        let cores = |r: &Value, k: &str| match r["cpu_cores"][k].as_f64() {
            Some(x) => format!("{x:>9.2}"),
            None => format!("{:>9}", "-"),
        };
        let mut header = table_header();
        if cpu {
            let _ = write!(header, " {:>9} {:>9}", "srv cores", "oth cores");
        }
        println!("{header}");
        for r in &loads {
            let mut line = table_row(r);
            if cpu {
                let _ = write!(line, " {} {}", cores(r, "server"), cores(r, "other"));
            }
            println!("{line}");
        }
        let busy: Vec<String> = loads
            .iter()
            .filter(|r| r["cpu_cores"]["other"].as_f64().is_some_and(|o| o > 0.25))
            .map(|r| row_name(r))
            .collect();
        if !busy.is_empty() {
            println!(
                "note: other processes competed for the CPUs during {} (oth cores): those rows are skewed",
                busy.join(", ")
            );
        }
    }
    if !renders.is_empty() {
        if !loads.is_empty() {
            println!();
        }
        println!("{}", render_header());
        for r in &renders {
            println!("{}", render_row(r));
        }
    }
    if !ratios.is_empty() {
        println!();
    }
    let find = |n: &str| {
        loads
            .iter()
            .find(|r| row_name(r) == n)
            .and_then(|r| r["rps"].as_f64())
    };
    for spec in ratios {
        // Row names may hold `/` themselves (`3n/read-hot`): the split is the one that names
        // two rows, else the last `/`.
        let splits = || {
            spec.match_indices('/')
                .map(|(i, _)| (&spec[..i], &spec[i + 1..]))
        };
        let (a, b) = splits()
            .find(|(a, b)| find(a).is_some() && find(b).is_some())
            .or_else(|| splits().next_back())
            .ok_or_else(|| anyhow!("--ratio wants A/B, got {spec}"))?;
        match (find(a), find(b)) {
            (Some(x), Some(y)) if y > 0.0 => {
                println!(
                    "ratio {a} / {b}: {} ({} / {} req/s)",
                    sig(x / y),
                    sig(x),
                    sig(y)
                )
            }
            _ => println!("ratio {a} / {b}: n/a (missing row or zero rps)"),
        }
    }
    Ok(())
}

/// A positive number with about three significant digits (no exponent).
fn sig(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        a if a >= 1.0 => format!("{x:.2}"),
        0.0 => "0".into(),
        a => format!(
            "{x:.*}",
            (2.0 - a.log10().floor()).clamp(3.0, 12.0) as usize
        ),
    }
}
