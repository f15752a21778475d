//! Avoiding high-resolution feature maps (simple diffusion §3.3, formula sheet §2): the image is
//! transformed to a smaller map with more channels before the network, and back after it.
//!
//! - `none`: the network sees the image.
//! - `dwt { levels }`: the invertible 5/3 wavelet transform ([`crate::transform::dwt`]), every
//!   level halving the side and multiplying the channels by 4 (`512² × 3 → 128² × 48` at two
//!   levels); its exact inverse at the output. No parameters.
//! - `conv { factor }`: a `d × d` convolution with stride `d` (`C → C·d²` channels) and a matching
//!   `d × d` transposed convolution with stride `d` at the output (cheaper, slightly worse in the
//!   paper; learned, so not exactly invertible).
//!
//! The network's `channels` must be the image channels times [`PatchingConfig::channel_factor`].

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::kernel::conv2d;
use crate::transform::dwt::{dwt2, idwt2};
use crate::{Error, Result};

/// Largest supported number of wavelet levels (`4^4 = 256` channels per image channel).
const MAX_DWT_LEVELS: usize = 4;

/// The transform at the network's input and output (`[model.patching]`, `kind = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PatchingConfig {
    /// The network works on the image itself.
    #[default]
    None,
    /// `levels` levels of the 5/3 DWT, sub-bands stacked on channels.
    Dwt {
        /// Number of levels (1 to 4).
        levels: usize,
    },
    /// A stride-`factor` `factor × factor` convolution and a matching transposed convolution.
    Conv {
        /// Patch side `d` (at least 2).
        factor: usize,
    },
}

impl PatchingConfig {
    /// How many times smaller the network's feature map is than the image, per side.
    pub fn spatial_factor(&self) -> usize {
        match *self {
            PatchingConfig::None => 1,
            PatchingConfig::Dwt { levels } => 1 << levels.min(MAX_DWT_LEVELS),
            PatchingConfig::Conv { factor } => factor,
        }
    }

    /// How many times more channels the network sees than the image has.
    pub fn channel_factor(&self) -> usize {
        self.spatial_factor() * self.spatial_factor()
    }

    /// Range checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        match *self {
            PatchingConfig::Dwt { levels } if !(1..=MAX_DWT_LEVELS).contains(&levels) => {
                Err(Error::config(format!(
                    "model.patching.levels must lie in 1..={MAX_DWT_LEVELS}, got {levels}"
                )))
            }
            PatchingConfig::Conv { factor } if !(2..=64).contains(&factor) => Err(Error::config(
                format!("model.patching.factor must lie in 2..=64, got {factor}"),
            )),
            _ => Ok(()),
        }
    }

    /// The layer for images with `in_channels` channels in (the state and any spatial
    /// condition) and `out_channels` out (the state).
    pub fn init(
        &self,
        in_channels: usize,
        out_channels: usize,
        device: &Device,
    ) -> Result<Patching> {
        self.validate()?;
        let conv = match *self {
            PatchingConfig::Conv { factor } => {
                let k = [factor, factor];
                let f2 = factor * factor;
                Some(ConvPatch {
                    down: Conv2dConfig::new([in_channels, in_channels * f2], k)
                        .with_stride(k)
                        .init(device),
                    up: ConvTranspose2dConfig::new([out_channels * f2, out_channels], k)
                        .with_stride(k)
                        .init(device),
                })
            }
            _ => None,
        };
        Ok(Patching {
            conv,
            config: *self,
        })
    }
}

#[derive(Module, Debug)]
struct ConvPatch {
    down: Conv2d,
    up: ConvTranspose2d,
}

/// The input/output transform; build it with [`PatchingConfig::init`].
#[derive(Module, Debug)]
pub struct Patching {
    conv: Option<ConvPatch>,
    #[module(skip)]
    config: PatchingConfig,
}

impl Patching {
    /// Image → network input: `[B, C, H, W] → [B, C·f², H/f, W/f]` with `f` the spatial factor;
    /// `H` and `W` must be divisible by `f`.
    pub fn encode(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let [_, _, h, w] = x.dims();
        let f = self.config.spatial_factor();
        if !h.is_multiple_of(f) || !w.is_multiple_of(f) {
            return Err(Error::Shape(format!(
                "patching by {f} needs height and width divisible by {f}, got {h}×{w}"
            )));
        }
        Ok(match (&self.config, &self.conv) {
            (PatchingConfig::Dwt { levels }, _) => dwt2(x, *levels)?,
            (_, Some(conv)) => conv2d(&conv.down, x),
            _ => x,
        })
    }

    /// Network output → image: the inverse of [`Patching::encode`] (exact for `none` and `dwt`).
    pub fn decode(&self, y: Tensor<4>) -> Result<Tensor<4>> {
        Ok(match (&self.config, &self.conv) {
            (PatchingConfig::Dwt { levels }, _) => idwt2(y, *levels)?,
            (_, Some(conv)) => conv.up.forward(y),
            _ => y,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> PatchingConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{normal, to_vec};

    #[test]
    fn shapes_and_exact_inverse() {
        let (device, mut rng) = crate::golden_data::seeded(5);
        let x = normal([2, 3, 16, 16], &mut rng, &device);
        for (cfg, want) in [
            (PatchingConfig::None, [2, 3, 16, 16]),
            (PatchingConfig::Dwt { levels: 2 }, [2, 48, 4, 4]),
            (PatchingConfig::Conv { factor: 4 }, [2, 48, 4, 4]),
        ] {
            let p = cfg.init(3, 3, &device).unwrap();
            let y = p.encode(x.clone()).unwrap();
            assert_eq!(y.dims(), want, "{cfg:?}");
            assert_eq!(want[1], 3 * cfg.channel_factor());
            let back = p.decode(y).unwrap();
            assert_eq!(back.dims(), [2, 3, 16, 16], "{cfg:?}");
            if !matches!(cfg, PatchingConfig::Conv { .. }) {
                let err = to_vec((back - x.clone()).abs().max())[0];
                assert!(err < 1e-5, "{cfg:?}: {err}");
            }
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        let device = Device::flex();
        let e = PatchingConfig::Dwt { levels: 0 }.validate().unwrap_err();
        assert!(e.to_string().contains("model.patching.levels"), "{e}");
        let e = PatchingConfig::Conv { factor: 1 }.validate().unwrap_err();
        assert!(e.to_string().contains("model.patching.factor"), "{e}");
        let p = PatchingConfig::Conv { factor: 4 }
            .init(1, 1, &device)
            .unwrap();
        assert!(
            p.encode(Tensor::<4>::zeros([1, 1, 10, 8], &device))
                .is_err()
        );
    }

    /// The TOML spelling of each kind.
    #[test]
    fn parses_from_toml() {
        #[derive(Deserialize)]
        struct T {
            patching: PatchingConfig,
        }
        let t: T = toml::from_str("patching = { kind = \"dwt\", levels = 2 }").unwrap();
        assert_eq!(t.patching, PatchingConfig::Dwt { levels: 2 });
        let t: T = toml::from_str("patching = { kind = \"conv\", factor = 4 }").unwrap();
        assert_eq!(t.patching, PatchingConfig::Conv { factor: 4 });
        assert!(toml::from_str::<T>("patching = { kind = \"dwt\", level = 2 }").is_err());
    }
}
