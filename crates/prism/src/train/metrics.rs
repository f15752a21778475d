//! `metrics.jsonl`: one JSON object per logged step.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Optimiser step (1-based: after this many updates).
    pub step: u64,
    /// Mean training loss since the previous line.
    pub loss: f64,
    /// Learning rate at this step.
    pub lr: f64,
    /// Mean gradient norm (before clipping) since the previous line.
    pub grad_norm: f64,
    /// Training throughput since the previous line.
    pub images_per_s: f64,
    /// Wall time since the start of this process.
    pub elapsed_s: f64,
}

/// Appends a line.
pub fn append(path: &Path, line: &MetricsLine) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("write", path, e))?;
    let text = serde_json::to_string(line).expect("metrics serialise");
    writeln!(f, "{text}").map_err(|e| Error::io("write", path, e))
}

/// Reads every line (a missing file is empty); malformed lines are errors naming the file.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Data {
                path: path.into(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// Drops lines after `step` (used on resume, so a crash after a log line but before the
/// checkpoint does not leave duplicates).
pub fn truncate_after(path: &Path, step: u64) -> Result<()> {
    let lines = read_metrics(path)?;
    let kept: Vec<String> = lines
        .iter()
        .filter(|l| l.step <= step)
        .map(|l| serde_json::to_string(l).expect("metrics serialise"))
        .collect();
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    crate::fsutil::write_atomic(path, text.as_bytes())
}
