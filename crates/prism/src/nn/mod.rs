//! ⑤ Networks only, no diffusion knowledge: the denoising networks map (input, noise-level λ,
//! condition) → output; the first-stage [`autoencoder`] of latent diffusion and its PatchGAN
//! [`NLayerDiscriminator`]; the perceptual distance [`Lpips`]; the feature networks ([`Classifier`], [`InceptionV3`], behind
//! [`FeatureNet`]) map images to the feature vectors that evaluation compares.

pub mod autoencoder;
mod classifier;
mod condition;
mod cross_attention;
mod discriminator;
mod features;
mod inception;
pub mod layers;
mod lpips;
mod netconfig;
mod patching;
mod unet;
mod ushape;
mod uvit;

pub use classifier::{CLASSIFIER_FORMAT, Classifier, ClassifierConfig};
pub use condition::Condition;
pub use cross_attention::{ContextSource, CrossAttentionConfig};
pub use discriminator::{BatchStatNorm, DiscriminatorConfig, NLayerDiscriminator};
pub use features::{FeatureNet, load_feature_net, load_feature_net_with};
pub use inception::{
    INCEPTION_FORMAT, INCEPTION_SIZE, InceptionInput, InceptionV3, StateDict, SyntheticWeights,
    WeightSource, default_input, pil_bicubic_matrix, synthetic_uniform, tf_bilinear_matrix,
};

pub use lpips::{DEFAULT_LPIPS_PATH, LPIPS_CHANNELS, Lpips, LpipsSynthetic};
pub use netconfig::{Net, NetConfig, NetCore, NetKind};
pub use patching::{Patching, PatchingConfig};
pub use unet::{UNetConfig, UNetOwn};
pub use ushape::{CLEAN_CONDITION_LOG_SNR, UNet};
pub use uvit::{UViTConfig, UViTOwn};

#[cfg(test)]
mod feature_tests;
