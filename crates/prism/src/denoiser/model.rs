//! A diffusion model: the network, the transform around it (patching) and what its output means.
//!
//! A model for a process whose state changes resolution (Laplacian diffusion) holds either one
//! network shared by every resolution (told the resolution through its logSNR) or one network per
//! resolution, as Edify Image trains one denoiser per band resolution ([`Networks`]); the network
//! is picked by the side of the state it is given.

use burn::module::Module;
use burn::tensor::Tensor;

use super::Networks;
use crate::nn::{Condition, Patching, UNet};
use crate::process::{DiffusionProcess, Level, Parameterization, Prediction};
use crate::tensor::vector;
use crate::{Error, Result};

/// A diffusion model: the network, its input/output transform and what its output means.
#[derive(Module, Debug)]
pub struct DiffusionModel {
    /// The network: the only one, or that of the full resolution when there is one per
    /// resolution.
    pub net: UNet,
    /// The networks of the lower resolutions, `lower[j − 1]` for states of side `sides[j]`
    /// (empty: `net` takes every state). Their parameters are `lower.0.…`, `lower.1.…`, so a
    /// shared model's checkpoint keeps its keys.
    pub lower: Vec<UNet>,
    /// The transform around the network(s).
    pub patching: Patching,
    #[module(skip)]
    pub(super) parameterization: Parameterization,
    /// The state side of each network, full resolution first (empty for a shared network).
    #[module(skip)]
    pub(super) sides: Vec<usize>,
}

impl DiffusionModel {
    /// The parameterisation of the network's output.
    pub fn parameterization(&self) -> Parameterization {
        self.parameterization
    }

    /// Whether the model holds one network shared by every resolution or one per resolution.
    pub fn networks(&self) -> Networks {
        if self.lower.is_empty() {
            Networks::Shared
        } else {
            Networks::PerResolution
        }
    }

    /// The number of networks the model holds.
    pub fn num_networks(&self) -> usize {
        1 + self.lower.len()
    }

    /// The network that denoises states of side `side`: the shared one, or that of the state's
    /// resolution (an error naming the sides the model has for any other side).
    pub fn net_for(&self, side: usize) -> Result<&UNet> {
        if self.lower.is_empty() {
            return Ok(&self.net);
        }
        match self.sides.iter().position(|&s| s == side) {
            Some(0) => Ok(&self.net),
            Some(j) => Ok(&self.lower[j - 1]),
            None => Err(Error::Shape(format!(
                "this model has one network per resolution, for states of side {:?}; got a state of side {side}",
                self.sides
            ))),
        }
    }

    /// The raw network output at `z` (logSNR `log_snr` per sample) under `cond`, through the
    /// patching transform and its inverse, by the network for `z`'s side ([`Self::net_for`]).
    /// A spatial condition is concatenated to `z` on the channel axis before patching. Errors: a
    /// side not divisible by the patching factor, a side without a network, a spatial condition
    /// the network does not take (or lacks), a context for a network without cross-attention.
    pub fn raw(&self, z: Tensor<4>, log_snr: &[f64], cond: &Condition) -> Result<Tensor<4>> {
        let net = self.net_for(z.dims()[2])?;
        let l = vector(log_snr, &z.device());
        let z_batch = z.dims()[0];
        let factor = self.patching.config().channel_factor();
        let want = net.cond_channels();
        let input = match &cond.image {
            Some(image) if image.dims()[1] * factor == want && want > 0 => {
                Tensor::cat(vec![z, image.clone()], 1)
            }
            Some(image) => {
                return Err(Error::Shape(format!(
                    "the spatial condition has {} channels, the network takes {} (cond_channels {want} after patching)",
                    image.dims()[1],
                    want / factor
                )));
            }
            None if want > 0 => {
                return Err(Error::invalid(format!(
                    "this network takes a spatial condition of {} channels, and none was given",
                    want / factor
                )));
            }
            None => z,
        };
        if net.takes_cond_noise_level() != cond.image_noise.is_some() {
            return Err(Error::invalid(if cond.image_noise.is_some() {
                "the spatial condition comes with a noise level, but this network does not embed one (model cond_noise_level)"
            } else {
                "this network embeds the spatial condition's noise level (cond_noise_level), and none was given"
            }));
        }
        check_context(net, cond, z_batch)?;
        let inner = self.patching.encode(input)?;
        let out = net.forward(inner, l, cond);
        self.patching.decode(out)
    }

    /// Whether the network reads a supplied context sequence (`[B, L, context_dim]`).
    pub fn reads_context(&self) -> bool {
        self.net.reads_context()
    }

    /// `x̂` and `ε̂` at `z` (one level per sample) under `process`.
    pub fn predict(
        &self,
        process: &dyn DiffusionProcess,
        z: Tensor<4>,
        levels: &[Level],
        cond: &Condition,
    ) -> Result<Prediction> {
        let state = z.dims();
        let log_snr: Vec<f64> = levels
            .iter()
            .map(|&l| process.network_log_snr(l, state))
            .collect();
        let raw = self.raw(z.clone(), &log_snr, cond)?;
        process.predict(self.parameterization, raw, z, levels)
    }
}

/// The context `cond` carries fits `net`: a `[batch, L, context_dim]` sequence for a network
/// whose cross-attention reads a supplied context, none otherwise.
fn check_context(net: &UNet, cond: &Condition, batch: usize) -> Result<()> {
    match (&cond.context, net.context_dim()) {
        (Some(_), None) => Err(Error::invalid(
            "a context sequence was given, but this network has no cross-attention layers",
        )),
        (Some(_), Some(_)) if !net.reads_context() => Err(Error::invalid(
            "a context sequence was given, but this network makes its context from class labels",
        )),
        (Some(c), Some(d)) => {
            let [b, l, w] = c.dims();
            if b != batch || w != d || l == 0 {
                return Err(Error::Shape(format!(
                    "the context is [{b}, {l}, {w}]; this batch needs [{batch}, L, {d}] with L ≥ 1"
                )));
            }
            Ok(())
        }
        (None, Some(d)) if net.reads_context() => Err(Error::invalid(format!(
            "this network's cross-attention reads a context sequence [B, L, {d}], and none was given \
             (data.context in training, --context for prism sample)"
        ))),
        _ => Ok(()),
    }
}
