//! The measuring helpers every bench shares: medians and percentiles, a warm heap, a temporary
//! root for bench data, and `LOGBUS_BENCH_ONLY` case selection.
#![allow(dead_code, reason = "each bench uses a subset of these helpers")]

use std::path::Path;

pub fn median(mut samples: Vec<f64>) -> f64 {
    assert!(!samples.is_empty(), "a median of nothing");
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

pub fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

/// Allocates and touches memory so that the process's heap is backed before measuring.
pub fn pre_touch(bytes: usize) {
    let buffer = vec![1u8; bytes];
    std::hint::black_box(&buffer);
}

/// A temporary directory for bench data, under `LOGBUS_BENCH_DIR` when it is set.
pub struct BenchRoot(tempfile::TempDir);

impl BenchRoot {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

pub fn bench_root() -> BenchRoot {
    let dir = match std::env::var_os("LOGBUS_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    };
    BenchRoot(dir.expect("a temporary directory for the bench logs"))
}

/// Whether `LOGBUS_BENCH_ONLY` (a comma-separated list of the bench's case names) is unset or
/// names `case`.
pub fn selected(case: &str) -> bool {
    std::env::var("LOGBUS_BENCH_ONLY").map_or(true, |only| only.split(',').any(|name| name == case))
}

/// The figures of a bench run, printed as they come and as a Markdown table at the end (the
/// README's tables are pasted from it).
#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    pub fn add(
        &mut self,
        figure: String,
        value: String,
        baseline: String,
        ratio: String,
        goal: &str,
    ) {
        println!("  {figure}: {value} (baseline {baseline}, ratio {ratio}, goal {goal})");
        self.rows
            .push([figure, value, baseline, ratio, goal.to_owned()]);
    }

    pub fn print(&self) {
        let header = ["figure", "value (median)", "baseline", "ratio", "goal"].map(String::from);
        let mut widths = [0; 5];
        for row in std::iter::once(&header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        println!();
        for row in std::iter::once(&header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            println!("| {} |", cells.join(" | "));
        }
    }
}
