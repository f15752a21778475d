//! Feature vectors of images from a feature network (formula sheet §6): the space in which FID,
//! KID and precision/recall compare generated with real images. The networks themselves live in
//! `nn` (behind [`FeatureNet`]); evaluation only sees the trait object.

use burn::tensor::Tensor;

use crate::nn::FeatureNet;
use crate::{Error, Result};

/// `n` feature vectors of dimension `dim`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Dimension of one vector.
    pub dim: usize,
    /// `n × dim` values.
    pub data: Vec<f32>,
}

impl Features {
    /// Wraps `data` (`n × dim`).
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::Shape(format!(
                "{} feature values do not make rows of {dim}",
                data.len()
            )));
        }
        Ok(Self { dim, data })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The vectors at `indices`.
    pub fn select(&self, indices: &[usize]) -> Features {
        Features {
            dim: self.dim,
            data: indices
                .iter()
                .flat_map(|&i| self.row(i).iter().copied())
                .collect(),
        }
    }
}

/// Checks that two feature sets can be compared and each has at least `min` vectors.
pub(crate) fn check_pair(a: &Features, b: &Features, min: usize, metric: &str) -> Result<()> {
    if a.dim != b.dim {
        return Err(Error::Shape(format!(
            "{metric}: feature dimensions differ ({} vs {})",
            a.dim, b.dim
        )));
    }
    if a.len() < min || b.len() < min {
        return Err(Error::invalid(format!(
            "{metric} needs at least {min} images per set, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    Ok(())
}

/// The features of `images`, `batch` at a time.
pub fn extract(net: &dyn FeatureNet, images: Tensor<4>, batch: usize) -> Result<Features> {
    let n = images.dims()[0];
    let mut data = Vec::with_capacity(n * net.dim());
    let mut start = 0;
    while start < n {
        let end = (start + batch.max(1)).min(n);
        let f = net.embed(images.clone().slice(start..end))?;
        data.extend(crate::tensor::to_vec(f));
        start = end;
    }
    Features::new(net.dim(), data)
}
