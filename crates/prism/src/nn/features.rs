//! The feature networks' common face: [`FeatureNet`] maps images to feature vectors, and
//! [`load_feature_net`] picks the network a checkpoint holds (a prism classifier, or Inception-v3
//! in the pytorch-fid layout). Evaluation (`eval::extract`, FID, KID, precision/recall) sees only
//! `dyn FeatureNet`.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use super::classifier::{CLASSIFIER_FORMAT, Classifier};
use super::inception::{INCEPTION_MARKER, InceptionInput, InceptionV3, default_input};
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
/// Inception-v3 weights in the pytorch-fid layout (recognised by their tensor names; the standard
/// converted file reads clean-fid's `clean` input pipeline).
pub fn load_feature_net(path: &Path, device: &Device) -> Result<Box<dyn FeatureNet>> {
    load_feature_net_with(path, None, device)
}

/// [`load_feature_net`] with an Inception input pipeline other than the file's default (an error
/// for a classifier, which has none).
pub fn load_feature_net_with(
    path: &Path,
    input: Option<InceptionInput>,
    device: &Device,
) -> Result<Box<dyn FeatureNet>> {
    let ck = crate::io::load(path)?;
    if ck.metadata.get(crate::io::FORMAT_KEY).map(String::as_str) == Some(CLASSIFIER_FORMAT) {
        if let Some(mode) = input {
            return Err(Error::invalid(format!(
                "the Inception input mode '{}' does not apply to a classifier ('{}')",
                mode.name(),
                path.display()
            )));
        }
        return Ok(Box::new(Classifier::from_checkpoint(&ck, path, device)?));
    }
    if ck.tensors.keys().any(|k| k.starts_with(INCEPTION_MARKER)) {
        let net = InceptionV3::from_tensors(&ck.tensors, path, device)?;
        let mode = input.unwrap_or_else(|| default_input(&ck.metadata));
        return Ok(Box::new(net.with_input(mode)));
    }
    Err(Error::Checkpoint {
        path: path.into(),
        reason: "neither a prism classifier nor Inception-v3 weights in the pytorch-fid layout \
                 (expected tensors such as 'Mixed_7c.branch_pool.conv.weight')"
            .into(),
    })
}
