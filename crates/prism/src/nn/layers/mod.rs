//! Building blocks shared by the networks.

mod attention;
mod noise_embedding;
mod resample;
mod resblock;
mod spatial_transformer;
mod transformer;

pub use attention::{AttentionBlock, attention};
pub use noise_embedding::{NoiseEmbedding, sinusoidal_embedding};
pub use resample::{Downsample, Upsample, upsample_nearest};
pub use resblock::{ResBlock, conv3x3, dropout_active};
pub use spatial_transformer::{SpatialTransformer, SpatialTransformerSpec};
pub use transformer::{TransformerSpec, TransformerStack};

use burn::nn::{GroupNorm, GroupNormConfig};

/// GroupNorm with `groups` groups over `channels` channels (ε = 1e-5, affine).
pub fn group_norm(groups: usize, channels: usize) -> GroupNormConfig {
    GroupNormConfig::new(groups, channels)
}

/// A GroupNorm layer; `groups` must divide `channels` (checked by the network configs).
pub fn init_group_norm(groups: usize, channels: usize, device: &burn::tensor::Device) -> GroupNorm {
    group_norm(groups, channels).init(device)
}
