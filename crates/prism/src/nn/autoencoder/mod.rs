//! The first-stage autoencoder of latent diffusion (Rombach et al. 2022, §3.1 and App. G; formula
//! sheet §5): `x → E → quant_conv → [posterior | quantiser] → post_quant_conv → D → x̂`, with a
//! KL-regularised diagonal Gaussian posterior or a VQ codebook. Parameter paths follow diffusers'
//! `AutoencoderKL` / `VQModel` (`encoder.down_blocks.0.resnets.0.conv1.weight`, `quant_conv`,
//! `quantize.embedding.weight`, …) except where burn names differ: GroupNorm `gamma`/`beta` for
//! `weight`/`bias`, and Linear weights stored `[in, out]` (transposed).

mod blocks;
mod codebook;
mod coder;
mod config;
mod diffusers;
mod file;
mod posterior;
mod quantizer;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};
use rand::Rng;

pub use self::codebook::{CodebookState, CodebookUpdate, choose_restarts};
pub use self::coder::{CoderShape, Decoder, Encoder};
pub use self::config::{AutoencoderConfig, Regularizer};
pub use self::diffusers::{
    DiffusersVae, DiffusersVaeConfig, SD_SCALING_FACTOR, SDXL_SCALING_FACTOR, diffusers_to_prism,
};
pub use self::file::{AUTOENCODER_FORMAT, AutoencoderFile, autoencoder_file, file_hash, hex};
pub use self::posterior::DiagonalGaussian;
pub use self::quantizer::{CodebookUsage, Quantized, VectorQuantizer};
use crate::kernel::conv2d;
use crate::tensor::normal;
use crate::{Error, Result};

/// See the module docs.
#[derive(Module, Debug)]
pub struct Autoencoder {
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Conv2d,
    post_quant_conv: Conv2d,
    quantize: Option<VectorQuantizer>,
    #[module(skip)]
    factor: usize,
}

/// One training pass of the autoencoder.
#[derive(Debug, Clone)]
pub struct AePass {
    /// The reconstruction `x̂`.
    pub x_hat: Tensor<4>,
    /// The input of the decoder's last layer (for the adaptive GAN weight).
    pub last_input: Tensor<4>,
    /// The regulariser's loss: the KL of formula sheet §5 (per image), or the VQ codebook and
    /// commitment loss.
    pub reg_loss: Tensor<1>,
    /// VQ: the codes chosen for the batch.
    pub indices: Option<Vec<usize>>,
    /// VQ: the latent before quantisation (detached), for the codebook's maintenance
    /// ([`VectorQuantizer::maintain`]).
    pub unquantized: Option<Tensor<4>>,
}

impl AutoencoderConfig {
    /// Builds the network (after [`AutoencoderConfig::validate`]).
    pub fn init(&self, device: &Device) -> Result<Autoencoder> {
        self.validate()?;
        let shape = CoderShape {
            block_out_channels: &self.block_out_channels,
            layers_per_block: self.layers_per_block,
            groups: self.norm_groups,
            mid_attention: self.mid_attention,
        };
        let (enc_out, code) = (self.encoder_out_channels(), self.code_channels());
        let quant_out = match self.regularizer {
            Regularizer::Kl => enc_out,
            Regularizer::Vq { embed_dim, .. } => embed_dim,
        };
        let conv1 = |a: usize, b: usize| Conv2dConfig::new([a, b], [1, 1]).init(device);
        Ok(Autoencoder {
            encoder: Encoder::new(self.channels, enc_out, shape, device),
            decoder: Decoder::new(self.latent_channels, self.channels, shape, device),
            quant_conv: conv1(enc_out, quant_out),
            post_quant_conv: conv1(code, self.latent_channels),
            quantize: match (&self.regularizer, self.regularizer.codebook_update()) {
                (
                    &Regularizer::Vq {
                        n_embed,
                        embed_dim,
                        beta,
                        ..
                    },
                    Some(update),
                ) => {
                    Some(VectorQuantizer::new(n_embed, embed_dim, beta, device).with_update(update))
                }
                _ => None,
            },
            factor: self.factor(),
        })
    }
}

impl Autoencoder {
    /// The downsampling factor `f`.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// The codebook, for a VQ autoencoder.
    pub fn quantizer(&self) -> Option<&VectorQuantizer> {
        self.quantize.as_ref()
    }

    /// The network with its quantiser replaced by `f(quantiser)` (a KL autoencoder unchanged).
    pub fn map_quantizer(self, f: impl FnOnce(VectorQuantizer) -> VectorQuantizer) -> Self {
        Self {
            quantize: self.quantize.map(f),
            ..self
        }
    }

    /// The decoder (its last layer sets the adaptive GAN weight).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    fn check(&self, x: &Tensor<4>) -> Result<()> {
        let [_, _, h, w] = x.dims();
        if h % self.factor != 0 || w % self.factor != 0 || h == 0 || w == 0 {
            return Err(Error::Shape(format!(
                "the autoencoder downsamples by {f}: image sides must be positive multiples of {f}, got {h}×{w}",
                f = self.factor
            )));
        }
        Ok(())
    }

    /// `quant_conv(E(x))`: the posterior's moments `[B, 2z, h, w]` (KL) or the unquantised
    /// latent `[B, embed_dim, h, w]` (VQ).
    pub fn moments(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        self.check(&x)?;
        Ok(conv2d(&self.quant_conv, self.encoder.forward(x)))
    }

    /// The deterministic latent of images in `[-1, 1]`: the posterior mean (KL) or the
    /// quantised codes (VQ).
    pub fn encode(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let m = self.moments(x)?;
        Ok(match &self.quantize {
            None => DiagonalGaussian::new(m).mean,
            Some(q) => q.forward(m).z_q,
        })
    }

    /// Images from latents: `D(post_quant_conv(z))`.
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        self.decoder.forward(conv2d(&self.post_quant_conv, z))
    }

    /// The latent a diffusion model works on (Rombach et al. 2022, §3.1 and the CompVis code's
    /// `get_first_stage_encoding`): the posterior mean for KL (LDM draws `μ + σ ε`; prism takes
    /// the mean, so cached and on-the-fly latents agree), and for VQ the latent *before*
    /// quantisation — LDM diffuses there and absorbs the quantiser into the decoder
    /// ([`Autoencoder::decode_latent`]).
    pub fn latent(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let m = self.moments(x)?;
        Ok(match &self.quantize {
            None => DiagonalGaussian::new(m).mean,
            Some(_) => m,
        })
    }

    /// Images from a diffusion latent ([`Autoencoder::latent`]): VQ quantises it to the nearest
    /// codes first (LDM's `decode_first_stage`), KL decodes it as it is.
    pub fn decode_latent(&self, z: Tensor<4>) -> Tensor<4> {
        match &self.quantize {
            None => self.decode(z),
            Some(q) => self.decode(q.forward(z).z_q),
        }
    }

    /// Channels of a diffusion latent.
    pub fn latent_channels(&self) -> usize {
        self.post_quant_conv.weight.val().dims()[1]
    }

    /// Channels of the images it reconstructs (its decoder's last convolution's outputs).
    pub fn image_channels(&self) -> usize {
        self.decoder.last_layer().weight.val().dims()[0]
    }

    /// `decode(encode(x))`.
    pub fn reconstruct(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        Ok(self.decode(self.encode(x)?))
    }

    /// One training pass: a posterior draw `μ + σ ε` (ε from `rng`) or the straight-through
    /// quantised latent, decoded; with the regulariser's loss.
    pub fn forward_train<R: Rng + ?Sized>(&self, x: Tensor<4>, rng: &mut R) -> Result<AePass> {
        let m = self.moments(x)?;
        let (z, reg_loss, indices, unquantized) = match &self.quantize {
            None => {
                let post = DiagonalGaussian::new(m);
                let eps = normal(post.mean.dims(), rng, &post.mean.device());
                (post.sample(eps), post.kl(), None, None)
            }
            Some(q) => {
                let out = q.forward(m.clone());
                (out.z_q, out.loss, Some(out.indices), Some(m.detach()))
            }
        };
        let (last_input, x_hat) = self
            .decoder
            .forward_with_last_input(conv2d(&self.post_quant_conv, z));
        Ok(AePass {
            x_hat,
            last_input,
            reg_loss,
            indices,
            unquantized,
        })
    }
}

#[cfg(test)]
mod diffusers_tests;
#[cfg(test)]
mod tests;
