//! `metrics.jsonl`: one JSON object per logged step, `{"step": …, "elapsed_s": …, <name>: …}`,
//! where the names are free-form (the method's own metrics, averaged over the steps since the
//! previous line, and the trainer's `lr.<module>` and throughput). Non-finite values are written
//! as `null` and read back as NaN.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Number, Value};

use crate::{Error, Result};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsLine {
    /// Optimiser step (1-based: after this many steps).
    pub step: u64,
    /// Wall time since the start of this process.
    pub elapsed_s: f64,
    /// The logged values by name.
    pub values: BTreeMap<String, f64>,
}

impl MetricsLine {
    /// The value `name`, if the line has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// The mean training loss since the previous line (`loss`; NaN when the line has none).
    pub fn loss(&self) -> f64 {
        self.get("loss").unwrap_or(f64::NAN)
    }

    fn to_json(&self) -> String {
        let num = |v: f64| Number::from_f64(v).map_or(Value::Null, Value::Number);
        let mut m = Map::new();
        m.insert("step".into(), Value::from(self.step));
        m.insert("elapsed_s".into(), num(self.elapsed_s));
        for (k, v) in &self.values {
            m.insert(k.clone(), num(*v));
        }
        Value::Object(m).to_string()
    }

    fn from_json(line: &str) -> std::result::Result<Self, String> {
        let Value::Object(m) = serde_json::from_str(line).map_err(|e| e.to_string())? else {
            return Err("not a JSON object".into());
        };
        let mut step = None;
        let mut elapsed_s = f64::NAN;
        let mut values = BTreeMap::new();
        for (k, v) in m {
            let x = match &v {
                Value::Null => f64::NAN,
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                _ => return Err(format!("'{k}' is not a number")),
            };
            match k.as_str() {
                "step" => step = Some(v.as_u64().ok_or("'step' is not a whole number")?),
                "elapsed_s" => elapsed_s = x,
                _ => {
                    values.insert(k, x);
                }
            }
        }
        Ok(Self {
            step: step.ok_or("no 'step'")?,
            elapsed_s,
            values,
        })
    }
}

/// Appends a line.
pub fn append(path: &Path, line: &MetricsLine) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("write", path, e))?;
    writeln!(f, "{}", line.to_json()).map_err(|e| Error::io("write", path, e))
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
            MetricsLine::from_json(l).map_err(|e| Error::Data {
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
        .map(MetricsLine::to_json)
        .collect();
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    crate::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_free_form_names_and_nan() {
        let line = MetricsLine {
            step: 7,
            elapsed_s: 1.5,
            values: BTreeMap::from([
                ("loss".to_string(), 0.25),
                ("lr.model".to_string(), 1e-4),
                ("d_loss".to_string(), f64::NAN),
            ]),
        };
        let back = MetricsLine::from_json(&line.to_json()).unwrap();
        assert_eq!(back.step, 7);
        assert_eq!(back.loss(), 0.25);
        assert_eq!(back.get("lr.model"), Some(1e-4));
        assert!(back.get("d_loss").unwrap().is_nan());
        assert!(MetricsLine::from_json(r#"{"loss": 1}"#).is_err());
    }
}
