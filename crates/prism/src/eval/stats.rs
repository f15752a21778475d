//! Reference statistics on disk, in the format clean-fid and pytorch-fid use: an `.npz` with `mu`
//! (`float64 [d]`) and `sigma` (`float64 [d, d]`, denominator `n − 1`), plus `feats`
//! (`float32 [n, d]`, clean-fid's KID statistics) when the features are kept. Published statistics
//! files load with their `mu`/`sigma` (FID only: KID and precision/recall need `feats`).

use std::path::Path;

use nalgebra::{DMatrix, DVector};

use super::features::Features;
use super::fid::{GaussianFit, fit_gaussian};
use crate::io::{NpyArray, NpyDtype, read_npz, write_npz};
use crate::{Error, Result};

/// A reference set reduced to what the feature metrics need.
#[derive(Debug, Clone)]
pub struct ReferenceStats {
    /// `μ, Σ` for FID.
    pub fit: GaussianFit,
    /// The features themselves (KID, precision/recall), when stored.
    pub features: Option<Features>,
    /// Number of images behind the statistics (0 when a file does not say).
    pub n: usize,
}

impl ReferenceStats {
    /// From features (at least two vectors).
    pub fn from_features(f: Features) -> Result<Self> {
        if f.len() < 2 {
            return Err(Error::invalid(format!(
                "reference statistics need at least 2 images, got {}",
                f.len()
            )));
        }
        Ok(Self {
            fit: fit_gaussian(&f),
            n: f.len(),
            features: Some(f),
        })
    }

    /// Writes `mu`, `sigma` and, when present, `feats`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let d = self.fit.mean.len();
        let mu = NpyArray {
            shape: vec![d],
            dtype: NpyDtype::F64,
            data: self.fit.mean.iter().copied().collect(),
        };
        // nalgebra is column-major; Σ is symmetric, so row-major reads the same.
        let sigma = NpyArray {
            shape: vec![d, d],
            dtype: NpyDtype::F64,
            data: self.fit.cov.transpose().as_slice().to_vec(),
        };
        let feats = self.features.as_ref().map(|f| NpyArray {
            shape: vec![f.len(), f.dim],
            dtype: NpyDtype::F32,
            data: f.data.iter().map(|&v| v as f64).collect(),
        });
        let mut arrays = vec![("mu", &mu), ("sigma", &sigma)];
        if let Some(f) = &feats {
            arrays.push(("feats", f));
        }
        write_npz(path, &arrays)
    }

    /// Reads `mu` and `sigma` (and `feats` when present) from an `.npz`.
    pub fn load(path: &Path) -> Result<Self> {
        let arrays = read_npz(path)?;
        let bad = |reason: String| Error::Data {
            path: path.into(),
            reason,
        };
        let (mu, sigma) = match (arrays.get("mu"), arrays.get("sigma")) {
            (Some(m), Some(s)) => (m, s),
            _ => {
                return Err(bad(format!(
                    "statistics need 'mu' and 'sigma'; the file holds {:?}",
                    arrays.keys().collect::<Vec<_>>()
                )));
            }
        };
        let d = mu.data.len();
        if mu.shape != [d] || sigma.shape != [d, d] || d == 0 {
            return Err(bad(format!(
                "mu has shape {:?} and sigma {:?}; expected [d] and [d, d]",
                mu.shape, sigma.shape
            )));
        }
        if mu.data.iter().chain(&sigma.data).any(|v| !v.is_finite()) {
            return Err(bad("mu or sigma holds a non-finite value".into()));
        }
        let features = match arrays.get("feats") {
            Some(f) if f.shape.len() == 2 && f.shape[1] == d => Some(Features::new(
                d,
                f.data.iter().map(|&v| v as f32).collect(),
            )?),
            Some(f) => {
                return Err(bad(format!(
                    "feats has shape {:?}; expected [n, {d}]",
                    f.shape
                )));
            }
            None => None,
        };
        Ok(Self {
            fit: GaussianFit {
                mean: DVector::from_vec(mu.data.clone()),
                cov: DMatrix::from_row_slice(d, d, &sigma.data),
            },
            n: features.as_ref().map_or(0, Features::len),
            features,
        })
    }
}
