//! Feature vectors of images from a feature network (formula sheet §6): the space in which FID,
//! KID and precision/recall compare generated with real images.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use super::classifier::{CLASSIFIER_FORMAT, Classifier};
use super::inception::{INCEPTION_MARKER, InceptionV3};
use crate::train::load_checkpoint;
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

/// A network that maps images (`[B, C, H, W]` in `[-1, 1]`) to feature vectors (`[B, dim]`).
pub trait FeatureNet {
    /// Dimension of a feature vector.
    fn dim(&self) -> usize;
    /// A short description for reports (`"fashion-mnist classifier, 128-d penultimate layer"`).
    fn describe(&self) -> String;
    /// The features of a batch.
    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>>;
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

/// Loads a feature network from safetensors: a classifier trained by `prism classifier`, or
/// Inception-v3 weights in the pytorch-fid layout (recognised by their tensor names).
pub fn load_feature_net(path: &Path, device: &Device) -> Result<Box<dyn FeatureNet>> {
    let ck = load_checkpoint(path)?;
    if ck
        .metadata
        .get(crate::train::FORMAT_KEY)
        .map(String::as_str)
        == Some(CLASSIFIER_FORMAT)
    {
        return Ok(Box::new(Classifier::from_checkpoint(&ck, path, device)?));
    }
    if ck.tensors.keys().any(|k| k.starts_with(INCEPTION_MARKER)) {
        return Ok(Box::new(InceptionV3::from_tensors(
            &ck.tensors,
            path,
            device,
        )?));
    }
    Err(Error::Checkpoint {
        path: path.into(),
        reason: "neither a prism classifier nor Inception-v3 weights in the pytorch-fid layout \
                 (expected tensors such as 'Mixed_7c.branch_pool.conv.weight')"
            .into(),
    })
}
