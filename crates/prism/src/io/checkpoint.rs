//! Self-describing checkpoints in safetensors, written atomically: f32 tensors by name (f64, f16
//! and bf16 files are read too, widened to f32) and a string metadata map whose [`FORMAT_KEY`]
//! names the file kind. The files prism writes are described where they are written (`run` for
//! `model.safetensors`, `train` for `train_state.safetensors`, `nn::classifier` for classifier
//! files).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use super::params::HostTensor;
use crate::fsutil::write_atomic;
use crate::{Error, Result};

/// The metadata key naming the file kind.
pub const FORMAT_KEY: &str = "format";

/// Writes `tensors` with `metadata` to `path` atomically; refuses (writing nothing) when a tensor
/// holds a NaN or infinite value, naming it. [`load`] refuses such files too.
pub fn save(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    if let Some(reason) = non_finite(tensors) {
        return Err(Error::Checkpoint {
            path: path.into(),
            reason: format!("not written: {reason}"),
        });
    }
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(k, b, s)| {
            let view = TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches data");
            (k.clone(), view)
        })
        .collect();
    let data = safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Checkpoint {
        path: path.into(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &data)
}

/// A loaded checkpoint.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
    /// The metadata.
    pub metadata: HashMap<String, String>,
}

impl Loaded {
    /// A metadata value, or an error naming the file and key.
    pub fn meta(&self, key: &str, path: &Path) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::Checkpoint {
                path: path.into(),
                reason: format!("metadata has no '{key}'"),
            })
    }

    /// A numeric metadata value.
    pub fn meta_u64(&self, key: &str, path: &Path) -> Result<u64> {
        self.meta(key, path)?
            .parse()
            .map_err(|_| Error::Checkpoint {
                path: path.into(),
                reason: format!("metadata '{key}' is not a number"),
            })
    }

    /// The tensors whose names start with `prefix.`, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, HostTensor> {
        let p = format!("{prefix}.");
        self.tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&p).map(|k| (k.to_string(), v.clone())))
            .collect()
    }
}

/// Reads a checkpoint; errors name the file.
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse(&bytes, path)
}

/// The `format` metadata of a safetensors file (`None` when it has none), read from its header
/// alone: which kind of prism file it is, without loading the tensors. Errors name the file.
pub fn read_format(path: &Path) -> Result<Option<String>> {
    use std::io::Read;
    let bad = |reason: String| Error::Checkpoint {
        path: path.into(),
        reason,
    };
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| bad("not a safetensors file (shorter than its header)".into()))?;
    let n = u64::from_le_bytes(len);
    // safetensors' own limit on a header.
    if n > 100_000_000 {
        return Err(bad(format!(
            "not a safetensors file (a header of {n} bytes)"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|_| bad("not a safetensors file (its header is cut short)".into()))?;
    let json: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("not a safetensors file (header: {e})")))?;
    Ok(json
        .get("__metadata__")
        .and_then(|m| m.get(FORMAT_KEY))
        .and_then(|v| v.as_str())
        .map(String::from))
}

/// Parses the bytes of a checkpoint file (what [`load`] read from `path`, which errors name).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded> {
    let bad = |reason: String| Error::Checkpoint {
        path: path.into(),
        reason,
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            // Half-precision files (e.g. published Stable Diffusion VAEs) are widened to f32.
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|c| burn::tensor::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => view
                .data()
                .chunks_exact(2)
                .map(|c| burn::tensor::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            // PyTorch's batch-norm step counter is not a weight.
            Dtype::I64 if name.ends_with("num_batches_tracked") => continue,
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has dtype {other:?}, expected F32 (or F64, F16, BF16)"
                )));
            }
        };
        tensors.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    if let Some(reason) = non_finite(&tensors) {
        return Err(bad(format!(
            "{reason}; the weights are unusable (use an earlier checkpoint)"
        )));
    }
    Ok(Loaded {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
    })
}

/// The first tensor with a NaN or infinite value, as a message naming it, its first such
/// value and how many there are; `None` if every value is finite.
pub fn non_finite(tensors: &BTreeMap<String, HostTensor>) -> Option<String> {
    tensors.iter().find_map(|(name, t)| {
        let first = t.data.iter().position(|v| !v.is_finite())?;
        let count = t.data.iter().filter(|v| !v.is_finite()).count();
        Some(format!(
            "tensor '{name}' has {count} non-finite value(s) (the first, at index {first}, is {})",
            t.data[first]
        ))
    })
}

/// Checks that `tensors` has exactly the names and shapes of `expected`.
pub fn check_matches(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    expected: &BTreeMap<String, HostTensor>,
) -> Result<()> {
    for (name, want) in expected {
        match tensors.get(name) {
            None => {
                return Err(Error::Checkpoint {
                    path: path.into(),
                    reason: format!("missing tensor '{name}'"),
                });
            }
            Some(t) if t.shape != want.shape => {
                return Err(Error::Checkpoint {
                    path: path.into(),
                    reason: format!(
                        "tensor '{name}' has shape {:?}, the model expects {:?}",
                        t.shape, want.shape
                    ),
                });
            }
            _ => {}
        }
    }
    if let Some(extra) = tensors.keys().find(|k| !expected.contains_key(*k)) {
        return Err(Error::Checkpoint {
            path: path.into(),
            reason: format!("unexpected tensor '{extra}'"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{bf16, f16};

    /// A safetensors file holding one tensor `t` of `dtype` with the little-endian bytes `data`.
    fn file(dtype: Dtype, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let view = TensorView::new(dtype, shape.to_vec(), data).unwrap();
        safetensors::serialize([("t", view)], None).unwrap()
    }

    /// Half-precision tensors are widened to f32 exactly; other dtypes get an error naming them.
    #[test]
    fn half_precision_is_widened_and_other_dtypes_are_refused() {
        let values = [1.0f32, -0.5, 0.1, 65504.0, -3.0e-5, 2.5];
        let path = Path::new("half.safetensors");
        let halves: Vec<u8> = values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        let t = &parse(&file(Dtype::F16, &[2, 3], &halves), path)
            .unwrap()
            .tensors["t"];
        assert_eq!(t.shape, [2, 3]);
        let want: Vec<f32> = values.iter().map(|v| f16::from_f32(*v).to_f32()).collect();
        assert_eq!(t.data, want);
        assert_eq!(t.data[..2], [1.0, -0.5]);
        let bfloats: Vec<u8> = values
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect();
        let t = &parse(&file(Dtype::BF16, &[6], &bfloats), path)
            .unwrap()
            .tensors["t"];
        let want: Vec<f32> = values.iter().map(|v| bf16::from_f32(*v).to_f32()).collect();
        assert_eq!(t.data, want);
        assert_eq!(t.data[5], 2.5);
        let ints: Vec<u8> = [1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let e = parse(&file(Dtype::I32, &[2], &ints), path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("I32") && e.contains("half.safetensors"), "{e}");
    }
}
