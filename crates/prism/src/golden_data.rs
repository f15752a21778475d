//! Test-only access to the committed golden values in `tests/data/*.json` (written by the scripts
//! in `tools/`; see tools/README.md).

use serde_json::Value;

/// Parses `tests/data/{name}`.
pub(crate) fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("golden file {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("golden file {path}: {e}"))
}

/// A JSON array of numbers as `f32`.
pub(crate) fn f32s(v: &Value) -> Vec<f32> {
    f64s(v).into_iter().map(|x| x as f32).collect()
}

/// A JSON array of numbers as `f64`.
pub(crate) fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}
