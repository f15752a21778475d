//! ⑤ Networks only, no diffusion knowledge: the denoising networks map (input, noise-level λ,
//! condition) → output; the feature networks ([`Classifier`], [`InceptionV3`], behind
//! [`FeatureNet`]) map images to the feature vectors that evaluation compares.

mod classifier;
mod condition;
mod features;
mod inception;
pub mod layers;
mod netconfig;
mod patching;
mod unet;
mod ushape;
mod uvit;

pub use classifier::{CLASSIFIER_FORMAT, Classifier, ClassifierConfig};
pub use condition::Condition;
pub use features::{FeatureNet, load_feature_net};
pub use inception::{
    INCEPTION_SIZE, InceptionV3, StateDict, SyntheticWeights, WeightSource, inception_input,
    synthetic_uniform,
};

pub use netconfig::{Net, NetConfig, NetCore, NetKind};
pub use patching::{Patching, PatchingConfig};
pub use unet::{UNetConfig, UNetOwn};
pub use ushape::{CLEAN_CONDITION_LOG_SNR, UNet};
pub use uvit::{UViTConfig, UViTOwn};

#[cfg(test)]
mod feature_tests;
