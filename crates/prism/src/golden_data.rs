//! Test-only: access to the committed golden values in `tests/data/*.json` (written by the
//! scripts in `tools/`; see tools/README.md) and the comparisons the unit tests share.

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

/// A JSON array of four sizes as a 4-D shape.
pub(crate) fn shape4(v: &Value) -> [usize; 4] {
    let s: Vec<usize> = f64s(v).into_iter().map(|x| x as usize).collect();
    [s[0], s[1], s[2], s[3]]
}

/// A 4-D tensor from row-major values.
pub(crate) fn tensor4(
    values: &[f32],
    shape: [usize; 4],
    device: &burn::tensor::Device,
) -> burn::tensor::Tensor<4> {
    burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(values.to_vec(), shape),
        device,
    )
}

/// Asserts `|a_i − b_i| ≤ tol · max(|b_i|, 1)` for every element, naming `what` and the index.
pub(crate) fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// The cosine schedule clipped to `[lo, hi]`.
pub(crate) fn cosine(lo: f64, hi: f64) -> crate::schedule::Schedule {
    crate::schedule::Schedule::Cosine(crate::schedule::CosineSchedule::new(lo, hi).unwrap())
}

/// The CPU device and a generator seeded with `seed`, for a test's random tensors.
pub(crate) fn seeded(seed: u64) -> (burn::tensor::Device, rand_chacha::ChaCha8Rng) {
    use rand::SeedableRng;
    (
        burn::tensor::Device::flex(),
        rand_chacha::ChaCha8Rng::seed_from_u64(seed),
    )
}
