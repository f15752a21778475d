//! The feature networks' common face: [`FeatureNet`] maps images to feature vectors, and
//! [`load_feature_net`] picks the network a checkpoint holds (a prism classifier, or Inception-v3
//! in the pytorch-fid layout). Evaluation (`eval::extract`, FID, KID, precision/recall) sees only
//! `dyn FeatureNet`.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use super::classifier::{CLASSIFIER_FORMAT, Classifier};
use super::inception::{INCEPTION_MARKER, InceptionV3};
use crate::{Error, Result};

/// A network that maps images (`[B, C, H, W]` in `[-1, 1]`) to feature vectors (`[B, dim]`).
pub trait FeatureNet {
    /// Dimension of a feature vector.
    fn dim(&self) -> usize;
    /// A short description for reports (`"fashion-mnist classifier, 128-d penultimate layer"`).
    fn describe(&self) -> String;
    /// The features of a batch.
    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>>;
}

/// Loads a feature network from safetensors: a classifier trained by `prism classifier`, or
/// Inception-v3 weights in the pytorch-fid layout (recognised by their tensor names).
pub fn load_feature_net(path: &Path, device: &Device) -> Result<Box<dyn FeatureNet>> {
    let ck = crate::io::load(path)?;
    if ck.metadata.get(crate::io::FORMAT_KEY).map(String::as_str) == Some(CLASSIFIER_FORMAT) {
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
