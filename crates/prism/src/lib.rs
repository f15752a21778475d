//! # prism
//!
//! Training, sampling and evaluation of diffusion models for images, on burn.
//!
//! Every method is the same loop with a different forward process:
//!
//! ```text
//! training:  images ─▶ data ─▶ process.corrupt(x0, t, ε) ─▶ model(z_t, λ_t, label) ─▶ objective
//! sampling:  process.prior(noise) ─▶ sampler(process, denoiser, steps) ─▶ images
//! ```
//!
//! Stations: [`data`] ①, [`schedule`] ③ (host f64 logSNR schedules), [`process`] ④, [`nn`] ⑤
//! (networks only), [`denoiser`] ⑥ (parameterisation, conditioning, guidance), [`objective`] ⑦,
//! [`train`] ⑧, [`sample`] ⑨, [`eval`] ⑩; [`transform`] holds the orthonormal DCT of blurring
//! diffusion. The maths follows the project's formula sheet; each file cites its equations.
//!
//! Layers: [`io`] (checkpoint files, parameters by path) is below `nn`, `train` and `eval`;
//! [`train`] is a generic trainer that knows nothing of diffusion and never reads [`config`];
//! [`config`] aggregates the stations' settings; [`run`] is above it and trains a diffusion
//! model from an [`config::ExperimentConfig`] as a step function of the trainer.

pub mod config;
pub mod data;
pub mod denoiser;
mod error;
pub mod eval;
pub mod fsutil;
#[cfg(test)]
mod golden_data;
pub mod image;
pub mod io;
pub mod kernel;
pub mod nn;
pub mod objective;
pub mod pipeline;
pub mod plot;
pub mod process;
pub mod run;
pub mod sample;
pub mod schedule;
pub mod space;
pub mod stage;
pub mod tensor;
pub mod train;
pub mod transform;

pub use error::{Error, Result};

/// The device computations run on: burn's pure-Rust `flex` CPU backend, unless this crate's `wgpu`,
/// `cuda` or `tch` feature asks for another (then burn's first enabled backend: CUDA, wgpu,
/// LibTorch) or the `BURN_DEVICE` environment variable names a backend (burn's override: `flex`,
/// `wgpu`, `vulkan`, `cuda`, `tch`, …; the binary refuses one not compiled in through
/// [`check_device_override`] before it gets here, where burn would panic).
///
/// A build can hold burn's wgpu backend without asking for it: the test build does (a
/// dev-dependency enables it, so that `tests/wgpu.rs` compares it with the CPU), and there every
/// other test and the `prism` binary still compute on the CPU.
pub fn default_device() -> burn::tensor::Device {
    if cfg!(any(feature = "wgpu", feature = "cuda", feature = "tch"))
        || std::env::var_os("BURN_DEVICE").is_some()
    {
        burn::tensor::Device::default()
    } else {
        burn::tensor::Device::flex()
    }
}

/// The backends `BURN_DEVICE` may name in this build: `flex` always, and `wgpu`, `cuda` or `tch`
/// when the crate feature of that name compiled it in.
pub fn device_overrides() -> Vec<&'static str> {
    let mut names = vec!["flex"];
    for (on, name) in [
        (cfg!(feature = "wgpu"), "wgpu"),
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "tch"), "tch"),
    ] {
        if on {
            names.push(name);
        }
    }
    names
}

/// Refuses a `BURN_DEVICE` that names no backend of this build, with the names it accepts (burn
/// itself panics on one, deep inside the first tensor op). The `prism` binary calls this first.
pub fn check_device_override() -> Result<()> {
    let Some(value) = std::env::var_os("BURN_DEVICE") else {
        return Ok(());
    };
    let value = value.to_string_lossy().to_lowercase();
    let known = device_overrides();
    if known.contains(&value.as_str()) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "BURN_DEVICE={value} names no backend of this build of prism, which has: {} \
         (GPU backends need the crate's `wgpu`, `cuda` or `tch` feature; README, \"GPU\"); \
         unset BURN_DEVICE or name one of those",
        known.join(", ")
    )))
}

/// Which backend and device `device` is, for logs: `Flex(…)` for the CPU backend, `Cube(Wgpu(…))`
/// or `Cube(Cuda(…))` for a GPU (burn's description of the device); in a build with the `wgpu` or
/// `cuda` feature, a GPU device also gives the adapter's own name (which opens the device).
pub fn describe_device(device: &burn::tensor::Device) -> String {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Some(id) = device.identity() {
        return format!("{device:?} ({})", id.name);
    }
    format!("{device:?}")
}
