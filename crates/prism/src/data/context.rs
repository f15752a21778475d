//! Context sequences supplied with a data set (`data.context`), for a network whose
//! cross-attention reads them (`context = { kind = "data" }`): e.g. text embeddings computed once
//! by another program. One safetensors file, in either of two layouts:
//!
//! - **one tensor `context` of shape `[N, L, D]`**: row `i` belongs to image `i` of the set in
//!   its reading order (an IDX file's order; for a folder, the sorted file names, class
//!   sub-folders in sorted order), for all `N` images before `data.limit`;
//! - **one tensor per image `[L, D]`**, named by the image's path relative to the data folder with
//!   `/` separators (`shirts/0003.png`, or `0003.png` directly inside); extra names are an error,
//!   so a typo cannot go unnoticed.
//!
//! Every sequence has the same `L` and `D` (a batch is one `[B, L, D]` tensor); values are F32 or
//! F64 and finite. Errors name the file and what does not fit.

use std::path::Path;

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::{Error, Result};

/// The name of the one-tensor layout.
pub const CONTEXT_TENSOR: &str = "context";

/// Context sequences `[N, L, D]`, one per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Contexts {
    values: Vec<f32>,
    tokens: usize,
    dim: usize,
}

impl Contexts {
    /// Reads `path` for the `n` images of a set; `names` are their relative paths (folders) or
    /// `None` (IDX files, which have only the one-tensor layout).
    pub fn read(path: &Path, n: usize, names: Option<&[String]>) -> Result<Self> {
        let bad = |reason: String| Error::Data {
            path: path.into(),
            reason,
        };
        let tensors = read_tensors(path)?;
        if let Some(t) = tensors.get(CONTEXT_TENSOR) {
            let &[rows, tokens, dim] = t.shape.as_slice() else {
                return Err(bad(format!(
                    "tensor '{CONTEXT_TENSOR}' has shape {:?}; it must be [N, L, D]",
                    t.shape
                )));
            };
            if rows != n {
                return Err(bad(format!(
                    "tensor '{CONTEXT_TENSOR}' has {rows} rows for {n} images"
                )));
            }
            if tensors.len() > 1 {
                return Err(bad(format!(
                    "a '{CONTEXT_TENSOR}' tensor and {} others: use one layout, [N, L, D] or one tensor per image",
                    tensors.len() - 1
                )));
            }
            return Self::new(t.data.clone(), tokens, dim).map_err(bad);
        }
        let Some(names) = names else {
            return Err(bad(format!(
                "no tensor '{CONTEXT_TENSOR}' [N, L, D]; an IDX data set takes only that layout"
            )));
        };
        let mut shape: Option<&[usize]> = None;
        let mut values = Vec::new();
        for name in names {
            let t = tensors.get(name).ok_or_else(|| {
                bad(format!(
                    "no context for the image '{name}' (and no tensor '{CONTEXT_TENSOR}')"
                ))
            })?;
            match shape {
                None if t.shape.len() == 2 => shape = Some(t.shape.as_slice()),
                Some(s) if s == t.shape.as_slice() => {}
                _ => {
                    return Err(bad(format!(
                        "the context of '{name}' has shape {:?}; every image needs [L, D] of one shape{}",
                        t.shape,
                        shape.map_or(String::new(), |s| format!(" (the first is {s:?})"))
                    )));
                }
            }
            values.extend_from_slice(&t.data);
        }
        if let Some(extra) = tensors.keys().find(|k| !names.contains(k)) {
            return Err(bad(format!(
                "the tensor '{extra}' names no image of the data set"
            )));
        }
        let s = shape.unwrap_or(&[1, 1]);
        Self::new(values, s[0], s[1]).map_err(bad)
    }

    fn new(values: Vec<f32>, tokens: usize, dim: usize) -> std::result::Result<Self, String> {
        if tokens == 0 || dim == 0 {
            return Err(format!("contexts of {tokens} tokens of width {dim}"));
        }
        Ok(Self {
            values,
            tokens,
            dim,
        })
    }

    /// Tokens `L` per image.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Token width `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn row(&self) -> usize {
        self.tokens * self.dim
    }

    /// The first `n` sequences.
    pub fn take(&mut self, n: usize) {
        self.values.truncate(n * self.row());
    }

    /// Splits off the sequences from index `at` on.
    pub fn split_off(&mut self, at: usize) -> Self {
        Self {
            values: self
                .values
                .split_off((at * self.row()).min(self.values.len())),
            ..*self
        }
    }

    /// The sequences at `indices` as `[B, L, D]`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Tensor<3> {
        let r = self.row();
        let data: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.values[i * r..(i + 1) * r].iter().copied())
            .collect();
        Tensor::from_data(
            TensorData::new(data, [indices.len(), self.tokens, self.dim]),
            device,
        )
    }
}

/// A tensor as read: shape and row-major values.
struct Read {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Every tensor of the safetensors file at `path` (F32 or F64, finite), by name.
fn read_tensors(path: &Path) -> Result<BTreeMap<String, Read>> {
    let bad = |reason: String| Error::Data {
        path: path.into(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = match view.dtype() {
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
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has dtype {other:?}; contexts are F32 or F64"
                )));
            }
        };
        if data.iter().any(|v| !v.is_finite()) {
            return Err(bad(format!("tensor '{name}' has non-finite values")));
        }
        let shape = view.shape().to_vec();
        out.insert(name, Read { shape, data });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, tensors: &[(&str, Vec<usize>)]) {
        let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
            .iter()
            .enumerate()
            .map(|(k, (name, shape))| {
                let n: usize = shape.iter().product();
                let bytes = (0..n)
                    .flat_map(|i| ((k * 100 + i) as f32).to_le_bytes())
                    .collect();
                (name.to_string(), bytes, shape.clone())
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
            .iter()
            .map(|(n, b, s)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                        .unwrap(),
                )
            })
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    #[test]
    fn both_layouts_read_and_misfits_are_named() {
        let dir = std::env::temp_dir().join(format!("prism-context-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("context.safetensors");
        let device = Device::flex();
        let names: Vec<String> = ["a/0.png", "a/1.png", "b/0.png"].map(String::from).to_vec();

        write(&f, &[("context", vec![3, 2, 4])]);
        let c = Contexts::read(&f, 3, Some(&names)).unwrap();
        assert_eq!((c.tokens(), c.dim()), (2, 4));
        let b = crate::tensor::to_vec(c.batch(&[2], &device).reshape([8]));
        assert_eq!(b, (16..24).map(|v| v as f32).collect::<Vec<_>>());
        let e = Contexts::read(&f, 4, None).unwrap_err().to_string();
        assert!(
            e.contains("3 rows for 4 images") && e.contains("context.safetensors"),
            "{e}"
        );

        write(
            &f,
            &[
                ("b/0.png", vec![2, 4]),
                ("a/0.png", vec![2, 4]),
                ("a/1.png", vec![2, 4]),
            ],
        );
        let mut c = Contexts::read(&f, 3, Some(&names)).unwrap();
        let tail = c.split_off(2);
        assert_eq!(tail.batch(&[0], &device).dims(), [1, 2, 4]);
        c.take(1);
        assert_eq!(c.values.len(), 8);

        write(
            &f,
            &[
                ("a/0.png", vec![2, 4]),
                ("a/1.png", vec![3, 4]),
                ("b/0.png", vec![2, 4]),
            ],
        );
        let e = Contexts::read(&f, 3, Some(&names)).unwrap_err().to_string();
        assert!(e.contains("'a/1.png' has shape [3, 4]"), "{e}");
        write(&f, &[("a/0.png", vec![2, 4]), ("a/1.png", vec![2, 4])]);
        let e = Contexts::read(&f, 3, Some(&names)).unwrap_err().to_string();
        assert!(e.contains("no context for the image 'b/0.png'"), "{e}");
        write(
            &f,
            &[
                ("a/0.png", vec![2, 4]),
                ("a/1.png", vec![2, 4]),
                ("b/0.png", vec![2, 4]),
                ("c.png", vec![2, 4]),
            ],
        );
        let e = Contexts::read(&f, 3, Some(&names)).unwrap_err().to_string();
        assert!(e.contains("'c.png' names no image"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
