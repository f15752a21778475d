//! A small image classifier whose penultimate layer is the feature space for FID, KID and
//! precision/recall on data sets without standard feature networks (formula sheet §6: "a feature
//! network trained in the project"). Trained by `prism classifier` (see `train::classifier`).
//!
//! Architecture: stages of two `3×3 conv → GroupNorm → SiLU`, 2×2 average pooling between stages,
//! global average pooling, a `Linear → SiLU` feature layer (the features), a linear head (logits).

use std::collections::HashMap;
use std::path::Path;

use crate::kernel::{conv2d, group_norm, silu};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::features::FeatureNet;
use super::layers::init_group_norm;
use crate::io::{FORMAT_KEY, Loaded, host_params, load_into};
use crate::{Error, Result};

/// The `format` metadata of a classifier file.
pub const CLASSIFIER_FORMAT: &str = "prism-classifier";

/// The classifier's shape, stored in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Input channels.
    pub channels: usize,
    /// Input side length in pixels.
    pub image_size: usize,
    /// Channels of each stage (each stage after the first halves the resolution).
    pub widths: Vec<usize>,
    /// Dimension of the feature layer.
    pub feature_dim: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// GroupNorm groups.
    pub norm_groups: usize,
}

impl Default for ClassifierConfig {
    /// The Fashion-MNIST classifier: 32×32 grey, 32/64/128 channels, 128-d features.
    fn default() -> Self {
        Self {
            channels: 1,
            image_size: 32,
            widths: vec![32, 64, 128],
            feature_dim: 128,
            num_classes: 10,
            norm_groups: 8,
        }
    }
}

/// Two convolutions at one resolution.
#[derive(Module, Debug)]
pub struct Stage {
    conv1: Conv2d,
    norm1: GroupNorm,
    conv2: Conv2d,
    norm2: GroupNorm,
}

fn conv(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

impl Stage {
    fn new(c_in: usize, c_out: usize, groups: usize, device: &Device) -> Self {
        Self {
            conv1: conv(c_in, c_out, device),
            norm1: init_group_norm(groups, c_out, device),
            conv2: conv(c_out, c_out, device),
            norm2: init_group_norm(groups, c_out, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = silu(group_norm(&self.norm1, conv2d(&self.conv1, x)));
        silu(group_norm(&self.norm2, conv2d(&self.conv2, x)))
    }
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct Classifier {
    stages: Vec<Stage>,
    features: Linear,
    head: Linear,
    #[module(skip)]
    config: ClassifierConfig,
}

impl ClassifierConfig {
    /// Checks the shape.
    pub fn validate(&self) -> Result<()> {
        let bad = |r: String| Err(Error::config(format!("classifier: {r}")));
        if self.widths.is_empty() || self.channels == 0 || self.num_classes < 2 {
            return bad("needs at least one stage, one channel and two classes".into());
        }
        if let Some(w) = self.widths.iter().find(|w| **w % self.norm_groups != 0) {
            return bad(format!(
                "width {w} is not divisible by norm_groups {}",
                self.norm_groups
            ));
        }
        let down = 1 << (self.widths.len() - 1);
        if !self.image_size.is_multiple_of(down) {
            return bad(format!(
                "image_size {} is not divisible by {down} ({} stages)",
                self.image_size,
                self.widths.len()
            ));
        }
        Ok(())
    }

    /// A classifier with fresh weights.
    pub fn init(&self, device: &Device) -> Result<Classifier> {
        self.validate()?;
        let mut c_in = self.channels;
        let stages = self
            .widths
            .iter()
            .map(|&w| {
                let s = Stage::new(c_in, w, self.norm_groups, device);
                c_in = w;
                s
            })
            .collect();
        Ok(Classifier {
            stages,
            features: LinearConfig::new(c_in, self.feature_dim).init(device),
            head: LinearConfig::new(self.feature_dim, self.num_classes).init(device),
            config: self.clone(),
        })
    }
}

impl Classifier {
    /// The shape.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    fn check_input(&self, x: &Tensor<4>) -> Result<()> {
        let [_, c, h, w] = x.dims();
        let cfg = &self.config;
        if c != cfg.channels || h != cfg.image_size || w != cfg.image_size {
            return Err(Error::Shape(format!(
                "the classifier takes {}×{}×{} images, got {c}×{h}×{w}",
                cfg.channels, cfg.image_size, cfg.image_size
            )));
        }
        Ok(())
    }

    /// The feature vectors `[B, feature_dim]` of images `[B, C, S, S]` in `[-1, 1]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                x = avg_pool2d(x, AvgPoolOptions::new([2, 2]).with_stride([2, 2]));
            }
            x = stage.forward(x);
        }
        let [b, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([b, c]);
        silu(self.features.forward(pooled))
    }

    /// Class logits `[B, num_classes]`.
    pub fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.features(x))
    }

    /// The predicted class (the arg max of the logits) of each image of `x` (`[B, C, S, S]` in
    /// `[-1, 1]`), `batch` images at a time.
    pub fn predict(&self, x: Tensor<4>, batch: usize) -> Vec<usize> {
        let n = x.dims()[0];
        let batch = batch.max(1);
        (0..n)
            .step_by(batch)
            .flat_map(|start| {
                let len = batch.min(n - start);
                let logits = self.logits(x.clone().narrow(0, start, len));
                crate::tensor::to_vec_int(logits.argmax(1).flatten(0, 1))
            })
            .map(|c| c as usize)
            .collect()
    }

    /// The metadata of a classifier file: format, config, and whatever `extra` adds (accuracy,
    /// command).
    pub fn metadata(&self, extra: &[(&str, String)]) -> HashMap<String, String> {
        let mut m = HashMap::from([
            (FORMAT_KEY.to_string(), CLASSIFIER_FORMAT.to_string()),
            (
                "config".to_string(),
                serde_json::to_string(&self.config).expect("config serialises"),
            ),
            (
                "prism_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ]);
        m.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        m
    }

    /// Writes the weights and metadata atomically.
    pub fn save(&self, path: &Path, extra: &[(&str, String)]) -> Result<()> {
        crate::io::save(path, &host_params(self), self.metadata(extra))
    }

    /// Rebuilds a classifier from a loaded file.
    pub fn from_checkpoint(ck: &Loaded, path: &Path, device: &Device) -> Result<Self> {
        let cfg: ClassifierConfig =
            serde_json::from_str(ck.meta("config", path)?).map_err(|e| Error::Checkpoint {
                path: path.into(),
                reason: format!("classifier config does not parse: {e}"),
            })?;
        load_into(cfg.init(device)?, &ck.tensors, path)
    }

    /// Loads a classifier file.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let ck = crate::io::load(path)?;
        if ck.metadata.get(FORMAT_KEY).map(String::as_str) != Some(CLASSIFIER_FORMAT) {
            return Err(Error::Checkpoint {
                path: path.into(),
                reason: "not a prism classifier (train one with `prism classifier`)".into(),
            });
        }
        Self::from_checkpoint(&ck, path, device)
    }
}

impl FeatureNet for Classifier {
    fn dim(&self) -> usize {
        self.config.feature_dim
    }

    fn describe(&self) -> String {
        format!(
            "prism classifier ({}×{}×{} input, {}-d feature layer)",
            self.config.channels,
            self.config.image_size,
            self.config.image_size,
            self.config.feature_dim
        )
    }

    /// A grey classifier given an RGB set (grey PNGs from other tools are often stored as RGB)
    /// sees the channel mean, which is exact for grey images.
    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        let images = if self.config.channels == 1 && images.dims()[1] == 3 {
            images.mean_dim(1)
        } else {
            images
        };
        self.check_input(&images)?;
        Ok(self.features(images))
    }
}
