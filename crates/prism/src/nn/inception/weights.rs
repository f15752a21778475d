//! Where the Inception weights come from: a loaded state dict (checked for names and shapes) or
//! deterministic synthetic weights for tests against `tools/golden_inception.py`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::io::HostTensor;
use crate::{Error, Result};

/// Where the weights come from: a state dict, or a deterministic generator (tests).
pub trait WeightSource {
    /// The tensor `name` with `shape`, row-major.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
}

/// Weights from a loaded state dict, checked for presence and shape.
pub struct StateDict<'a> {
    pub(crate) tensors: &'a BTreeMap<String, HostTensor>,
    pub(crate) path: &'a Path,
}

impl WeightSource for StateDict<'_> {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let bad = |reason: String| Error::Checkpoint {
            path: self.path.into(),
            reason,
        };
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| bad(format!("missing Inception tensor '{name}'")))?;
        if t.shape != shape {
            return Err(bad(format!(
                "Inception tensor '{name}' has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t.data.clone())
    }
}

/// Deterministic pseudo-random weights, a pure function of each tensor's name (SplitMix64 over
/// the FNV-1a hash of the name), reproduced by `tools/golden_inception.py`:
/// conv weights `√3·u·√(2/fan_in)`, BN `γ = 1 + 0.1u`, `β = 0.1u`, mean `0.1u`, var `1 + 0.25(u + 1)`,
/// with `u` uniform in `[−1, 1)`.
pub struct SyntheticWeights;

/// `u ∈ [−1, 1)` number `i` of the stream for `name`.
pub fn synthetic_uniform(name: &str, i: u64) -> f32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
}

impl WeightSource for SyntheticWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let u = |i: usize| synthetic_uniform(name, i as u64);
        let v = if name.ends_with("conv.weight") {
            let fan_in: usize = shape[1..].iter().product();
            let a = 3f32.sqrt() * (2.0 / fan_in as f32).sqrt();
            (0..n).map(|i| a * u(i)).collect()
        } else if name.ends_with("bn.weight") {
            (0..n).map(|i| 1.0 + 0.1 * u(i)).collect()
        } else if name.ends_with("bn.running_var") {
            (0..n).map(|i| 1.0 + 0.25 * (u(i) + 1.0)).collect()
        } else {
            (0..n).map(|i| 0.1 * u(i)).collect()
        };
        Ok(v)
    }
}
