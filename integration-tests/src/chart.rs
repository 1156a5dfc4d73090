//! The perf_analyzer benchmark's rows as a CSV file and a chart drawn from
//! it by `scripts/plot_perf.py` (matplotlib, in the project's virtualenv):
//! throughput and p50/p99 latency against concurrency, one line per path.
//! A chart that cannot be drawn is reported, never fatal: the table printed
//! beside it is the benchmark's result.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{venv, workspace_root};

/// One measured row: a model at a concurrency through one path.
pub struct Row {
    /// The model's name (`tiny`, `heavy`).
    pub model: &'static str,
    /// Calls in flight.
    pub concurrency: usize,
    /// `front door`, `worker direct` or `in-process ort`.
    pub path: &'static str,
    /// Inferences per second.
    pub per_second: f64,
    /// Median latency, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// The control plane's CPU per call, in microseconds, where it served.
    pub control_us: Option<f64>,
    /// The worker's CPU per call, in microseconds, where it served.
    pub worker_us: Option<f64>,
}

/// The rows as CSV, a header first; a figure not measured is empty.
pub fn to_csv(rows: &[Row]) -> String {
    let optional = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    let mut csv = String::from(
        "model,concurrency,path,infer_per_s,p50_us,p99_us,control_plane_us_per_call,worker_us_per_call\n",
    );
    for r in rows {
        writeln!(
            csv,
            "{},{},{},{:.1},{:.1},{:.1},{},{}",
            r.model,
            r.concurrency,
            r.path,
            r.per_second,
            r.p50_us,
            r.p99_us,
            optional(r.control_us),
            optional(r.worker_us),
        )
        .expect("writing to a String");
    }
    csv
}

/// Where the benchmark leaves its CSV: beside its own binary's profile
/// folder (`target/<profile>/bench-perf.csv`), kept after the run for a
/// second look and out of the work tree.
pub fn csv_path() -> PathBuf {
    let exe = std::env::current_exe().expect("bench binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("bench binary sits in target/<profile>/deps")
        .join("bench-perf.csv")
}

/// The chart committed beside the docs.
pub fn svg_path() -> PathBuf {
    workspace_root().join("docs/bench-perf.svg")
}

/// Draws the chart of the CSV at `csv` into `svg`, titled `title`: `Ok`, or
/// why it was not drawn (no matplotlib, a script error).
pub fn plot(csv: &Path, svg: &Path, title: &str) -> Result<(), String> {
    let script = workspace_root().join("integration-tests/scripts/plot_perf.py");
    // The benchmark has already used the virtualenv to make its models.
    let python = venv().join("bin/python");
    let output = Command::new(&python)
        .arg(&script)
        .arg(csv)
        .arg(svg)
        .arg(title)
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("{} {}: {last}", script.display(), output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_leaves_unmeasured_cpu_empty() {
        let rows = [Row {
            model: "tiny",
            concurrency: 4,
            path: "in-process ort",
            per_second: 1234.56,
            p50_us: 80.0,
            p99_us: 120.04,
            control_us: None,
            worker_us: Some(9.04),
        }];
        let csv = to_csv(&rows);
        assert_eq!(
            csv.lines().nth(1),
            Some("tiny,4,in-process ort,1234.6,80.0,120.0,,9.0")
        );
    }
}
