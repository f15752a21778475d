//! Spaces a model is trained in: pixels, or (for latent diffusion) the latents of an autoencoder.
//! Training encodes the images into the space before the forward process; sampling draws in the
//! space and ends in [`Space::decode`]:
//!
//! ```text
//! training:  images ─▶ space.encode ─▶ process.corrupt ─▶ denoiser ─▶ objective
//! sampling:  process.prior ─▶ sampler ─▶ space.decode ─▶ images
//! ```
//!
//! Adding a space: one new file here that implements [`Space`], and one variant of
//! [`SpaceConfig`] that builds it.

mod latent;
mod latent_cache;
mod pixels;

pub use latent::{LatentConfig, LatentSource, LatentSpace, latent_scale};
pub use latent_cache::{CacheOrigin, LATENT_CACHE_FORMAT, LatentCache, cache_key};
pub use pixels::Pixels;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A space images are mapped into for diffusion.
pub trait Space: std::fmt::Debug + Send + Sync {
    /// A short name for messages: `pixels`, `latent`.
    fn kind(&self) -> &'static str;

    /// The shape of the space's tensors for images of shape `image` (`[B, C, H, W]`).
    fn shape(&self, image: [usize; 4]) -> [usize; 4];

    /// Images in `[-1, 1]` → the space.
    fn encode(&self, x: Tensor<4>) -> Result<Tensor<4>>;

    /// The space → images in (about) `[-1, 1]`.
    fn decode(&self, z: Tensor<4>) -> Result<Tensor<4>>;

    /// An image-space mask `[B, 1, H, W]` (1 = fill) at the space's resolution, for an
    /// inpainting model's condition: the pixel space keeps it; a latent space with downsampling
    /// factor `f` brings it to `[B, 1, H/f, W/f]` (LDM resizes the mask to the latent size).
    fn mask(&self, mask: Tensor<4>) -> Result<Tensor<4>>;

    /// The latent space, for what only it has (its scale, its latent cache).
    fn as_latent(&self) -> Option<&LatentSpace> {
        None
    }
}

/// Which space (`[space]` in a config; pixels when absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SpaceConfig {
    /// The images themselves.
    #[default]
    Pixels,
    /// The latents of a trained autoencoder (latent diffusion).
    Latent(LatentConfig),
}

impl SpaceConfig {
    /// Whether this is the default pixel space (configs leave it out).
    pub fn is_pixels(&self) -> bool {
        *self == SpaceConfig::Pixels
    }

    /// The latent space's settings, if it is one.
    pub fn latent(&self) -> Option<&LatentConfig> {
        match self {
            SpaceConfig::Latent(l) => Some(l),
            SpaceConfig::Pixels => None,
        }
    }

    /// Range checks that need no file.
    pub fn validate(&self) -> Result<()> {
        match self {
            SpaceConfig::Pixels => Ok(()),
            SpaceConfig::Latent(l) => l.validate(),
        }
    }

    /// The space's shape for `image`, when it is known without loading anything (pixels); a
    /// latent space's shape comes from its autoencoder ([`Space::shape`] once built).
    pub fn static_shape(&self, image: [usize; 4]) -> Option<[usize; 4]> {
        match self {
            SpaceConfig::Pixels => Some(image),
            SpaceConfig::Latent(_) => None,
        }
    }

    /// Builds the space; a latent space loads its autoencoder (checked against its hash) and
    /// needs its scale.
    pub fn build(&self) -> Result<Box<dyn Space>> {
        Ok(match self {
            SpaceConfig::Pixels => Box::new(Pixels),
            SpaceConfig::Latent(l) => Box::new(LatentSpace::load(l, None)?),
        })
    }
}

#[cfg(test)]
mod latent_tests;
