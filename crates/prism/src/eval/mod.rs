//! ⑩ Evaluation: held-out denoising error at fixed noise levels, bits per dimension from the
//! diffusion ELBO, and the multi-scale sliced Wasserstein distance.

mod bpd;
mod denoise_mse;
mod swd;

pub use bpd::{BitsPerDim, BpdOptions, EpsPredictor, bits_per_dim};
pub use denoise_mse::{DenoiseMse, denoise_mse};
pub use swd::{Planes, Swd, SwdOptions, laplacian_pyramid, pyr_down, pyr_up, swd};
