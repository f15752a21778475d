//! ⑩ Evaluation: held-out denoising error at fixed noise levels, and bits per dimension from the
//! diffusion ELBO.

mod bpd;
mod denoise_mse;

pub use bpd::{BitsPerDim, BpdOptions, bits_per_dim};
pub use denoise_mse::{DenoiseMse, denoise_mse};
