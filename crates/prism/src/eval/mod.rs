//! ⑩ Evaluation: held-out denoising error at fixed noise levels, bits per dimension from the
//! diffusion ELBO, the multi-scale sliced Wasserstein distance, the paired metrics (PSNR, SSIM),
//! and the feature-network metrics
//! (FID, KID, precision/recall) on a project-trained classifier or user-supplied Inception-v3
//! (the networks are in `nn`; here they are only `dyn nn::FeatureNet`).

mod bpd;
mod denoise_mse;
mod features;
mod fid;
mod kid;
mod paired;
mod precision_recall;
mod psnr;
mod ssim;
mod stats;
mod swd;
mod switch_mse;

pub use bpd::{BitsPerDim, BpdOptions, EpsPredictor, bits_per_dim};
pub use denoise_mse::{DenoiseMse, denoise_mse};
pub use features::{Features, extract};
pub use fid::{GaussianFit, fid, fit_gaussian, frechet_distance, trace_sqrt_product};
pub use kid::{Kid, KidOptions, kid, mmd2_unbiased};
pub use paired::PairedDistance;
pub use precision_recall::{PrecisionRecall, knn_radii_sq, precision_recall};
pub use psnr::{psnr, psnr_batch};
pub use ssim::{SSIM_SIGMA, SSIM_WINDOW, ssim, ssim_batch};
pub use stats::ReferenceStats;
pub use swd::{Planes, Swd, SwdOptions, laplacian_pyramid, pyr_down, pyr_up, swd};
pub use switch_mse::{SwitchMse, switch_mse};

#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod paired_tests;
