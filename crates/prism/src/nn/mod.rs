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
pub use features::{FeatureNet, load_feature_net, load_feature_net_with};
pub use inception::{
    INCEPTION_FORMAT, INCEPTION_SIZE, InceptionInput, InceptionV3, StateDict, SyntheticWeights,
    WeightSource, default_input, pil_bicubic_matrix, synthetic_uniform, tf_bilinear_matrix,
};

pub use netconfig::{Net, NetConfig, NetCore, NetKind};
pub use patching::{Patching, PatchingConfig};
pub use unet::{UNetConfig, UNetOwn};
pub use ushape::UNet;
pub use uvit::{UViTConfig, UViTOwn};

#[cfg(test)]
mod feature_tests;
