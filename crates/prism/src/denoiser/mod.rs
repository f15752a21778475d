//! ⑥ The denoiser: network + parameterisation (ε / v / x) + conditioning (+ guidance) → predictions.
//!
//! The process converts the network's output into `x̂` and `ε̂` (formula sheet §1 for the
//! isotropic process). Samplers see only the [`Denoise`] trait.

mod config;
mod guidance;
mod input;
mod model;
mod tiled;

pub use config::{ModelConfig, NetConfig, Networks};
pub use guidance::{GuidanceInterval, GuidedDenoiser};
pub use input::ModelInput;
pub use model::DiffusionModel;
pub use tiled::{TiledDenoiser, Tiling};

use burn::tensor::Tensor;

use crate::Result;
use crate::nn::Condition;
use crate::process::{DiffusionProcess, Level, Prediction};

/// What a sampler calls: `z_t` at one level for the whole batch → predictions.
pub trait Denoise {
    /// Predict `x̂`, `ε̂` at `z` at `level`.
    fn denoise(&self, z: Tensor<4>, level: Level) -> Result<Prediction>;
}

/// A model under a fixed condition (or none).
pub struct ModelDenoiser<'a> {
    /// The model.
    pub model: &'a DiffusionModel,
    /// The process the model was trained for (it converts the network's output).
    pub process: &'a dyn DiffusionProcess,
    /// The condition for the batch (`Condition::none()`: unconditional / null label).
    pub cond: Condition,
}

impl Denoise for ModelDenoiser<'_> {
    fn denoise(&self, z: Tensor<4>, level: Level) -> Result<Prediction> {
        let levels = vec![level; z.dims()[0]];
        self.model.predict(self.process, z, &levels, &self.cond)
    }
}

/// Wraps a closure as a [`Denoise`] (analytic denoisers in tests and tools).
pub struct FnDenoiser<F>(pub F);

impl<F: Fn(Tensor<4>, Level) -> Prediction> Denoise for FnDenoiser<F> {
    fn denoise(&self, z: Tensor<4>, level: Level) -> Result<Prediction> {
        Ok((self.0)(z, level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::UNetConfig;
    use crate::process::{GaussianProcess, Parameterization};
    use crate::schedule::{CosineSchedule, Schedule};
    use crate::tensor::to_vec;
    use burn::tensor::{Device, Int};

    fn small_unet(num_classes: usize, cond_channels: usize) -> UNetConfig {
        let mut unet = UNetConfig::tiny(1);
        unet.core.num_classes = num_classes;
        unet.core.cond_channels = cond_channels;
        unet
    }

    fn small_model(num_classes: usize, cond_channels: usize, device: &Device) -> DiffusionModel {
        ModelConfig::with_unet(Parameterization::V, small_unet(num_classes, cond_channels))
            .init(device)
            .unwrap()
    }

    fn process() -> GaussianProcess {
        GaussianProcess::new(Schedule::Cosine(CosineSchedule::new(-15.0, 15.0).unwrap()))
    }

    /// One network per resolution: the state's side picks the network (the full-resolution one
    /// is `net`, the others `lower.0`, `lower.1`, …), a side without a network is an error, and
    /// a shared model keeps its parameter paths (no `lower.*`). `networks` round-trips through
    /// TOML and is left out when shared.
    #[test]
    fn per_resolution_model_picks_the_network_of_the_states_side() {
        use crate::io::host_params;
        let (device, mut rng) = crate::golden_data::seeded(3);
        let mut cfg = ModelConfig::with_unet(Parameterization::V, small_unet(0, 0));
        let shared = cfg.init_for(&[8, 4, 2], &device).unwrap();
        assert_eq!(
            (shared.num_networks(), shared.networks()),
            (1, Networks::Shared)
        );
        assert!(host_params(&shared).keys().all(|k| !k.starts_with("lower")));
        assert!(!toml::to_string(&cfg).unwrap().contains("networks"));

        cfg.networks = Networks::PerResolution;
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("networks = \"per_resolution\""), "{text}");
        assert_eq!(toml::from_str::<ModelConfig>(&text).unwrap(), cfg);
        let e = cfg.init(&device).unwrap_err().to_string();
        assert!(
            e.contains("per_resolution") && e.contains("laplacian"),
            "{e}"
        );

        let model = cfg.init_for(&[8, 4], &device).unwrap();
        assert_eq!(
            (model.num_networks(), model.networks()),
            (2, Networks::PerResolution)
        );
        let keys = host_params(&model);
        assert!(keys.keys().any(|k| k.starts_with("lower.0.")));
        assert!(keys.keys().all(|k| !k.starts_with("lower.1.")));
        let direct = |net: &crate::nn::UNet, z: &Tensor<4>| {
            to_vec(net.forward(
                z.clone(),
                crate::tensor::vector(&[0.5, -1.0], &device),
                &Condition::none(),
            ))
        };
        for (side, net) in [(8, &model.net), (4, &model.lower[0])] {
            let z = crate::tensor::normal([2, 1, side, side], &mut rng, &device);
            let raw = to_vec(
                model
                    .raw(z.clone(), &[0.5, -1.0], &Condition::none())
                    .unwrap(),
            );
            assert_eq!(raw, direct(net, &z), "side {side}");
        }
        // The two networks are different networks: the other one gives another output.
        let z = crate::tensor::normal([2, 1, 4, 4], &mut rng, &device);
        let raw = to_vec(
            model
                .raw(z.clone(), &[0.5, -1.0], &Condition::none())
                .unwrap(),
        );
        assert_ne!(raw, direct(&model.net, &z));
        let e = model
            .raw(
                crate::tensor::normal([2, 1, 2, 2], &mut rng, &device),
                &[0.5, -1.0],
                &Condition::none(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("side [8, 4]"), "{e}");
    }

    /// Guidance weight 1 is the conditional model; weight 0 the unconditional (null label) one.
    #[test]
    fn guidance_interpolates_conditional_and_unconditional() {
        let (device, mut rng) = crate::golden_data::seeded(0);
        let model = small_model(3, 0, &device);
        let process = process();
        let z = crate::tensor::normal([2, 1, 8, 8], &mut rng, &device);
        let labels = Condition::labels(Some(Tensor::<1, Int>::from_ints([0, 2], &device)));
        let null = Condition::labels(Some(Tensor::<1, Int>::from_ints([3, 3], &device)));
        let level = process.level_at_log_snr(0.7);
        let eps = |d: &dyn Denoise| to_vec(d.denoise(z.clone(), level).unwrap().eps_hat);
        let cond = eps(&ModelDenoiser {
            model: &model,
            process: &process,
            cond: labels.clone(),
        });
        let uncond = eps(&ModelDenoiser {
            model: &model,
            process: &process,
            cond: null,
        });
        for (w, want) in [(1.0, &cond), (0.0, &uncond)] {
            let got = eps(&GuidedDenoiser {
                model: &model,
                process: &process,
                cond: labels.clone(),
                guidance: w,
                interval: None,
            });
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() < 1e-4, "w = {w}: {a} vs {b}");
            }
        }
        // w = 3: ε̃ = ε_u + 3 (ε_c − ε_u)
        let got = eps(&GuidedDenoiser {
            model: &model,
            process: &process,
            cond: labels.clone(),
            guidance: 3.0,
            interval: None,
        });
        for ((g, c), u) in got.iter().zip(&cond).zip(&uncond) {
            assert!((g - (u + 3.0 * (c - u))).abs() < 1e-4);
        }
        // The guidance interval: outside [lo, hi] the conditional model, inside guided.
        let windowed = |lo: f64, hi: f64| {
            eps(&GuidedDenoiser {
                model: &model,
                process: &process,
                cond: labels.clone(),
                guidance: 3.0,
                interval: Some(GuidanceInterval::new(lo, hi).unwrap()),
            })
        };
        assert_eq!(windowed(-1.0, 0.8), got, "0.7 lies inside [-1, 0.8]");
        let outside = windowed(1.0, 4.0);
        for (a, b) in outside.iter().zip(&cond) {
            assert!((a - b).abs() < 1e-5, "outside the window: {a} vs {b}");
        }
        for bad in ["2,1", "nan,1", "1", "a,b", "-inf,0"] {
            let e = bad.parse::<GuidanceInterval>().unwrap_err().to_string();
            assert!(e.contains("guidance interval"), "{bad}: {e}");
        }
        assert_eq!(
            "-3.4, 2.6".parse::<GuidanceInterval>().unwrap().bounds(),
            (-3.4, 2.6)
        );
    }

    /// A network that reads a supplied context: it must be given one of the right width and
    /// batch; guidance stacks it with its null context (zeros), and `w = 0` is the model under
    /// the zero context.
    #[test]
    fn supplied_context_is_checked_and_guided() {
        use crate::nn::{ContextSource, CrossAttentionConfig};
        let (device, mut rng) = crate::golden_data::seeded(2);
        let mut unet = small_unet(0, 0);
        unet.core.cross_attention = Some(CrossAttentionConfig {
            levels: vec![1],
            heads: 2,
            depth: 1,
            context_dim: 6,
            context: ContextSource::Data,
        });
        let model = ModelConfig::with_unet(Parameterization::V, unet)
            .init(&device)
            .unwrap();
        let z = crate::tensor::normal([2, 1, 8, 8], &mut rng, &device);
        let mut ctx = |l: usize, d: usize| Condition {
            context: Some(
                crate::tensor::normal([2, 1, l, d], &mut rng, &device).reshape([2, l, d]),
            ),
            ..Condition::none()
        };
        let e = model
            .raw(z.clone(), &[0.0, 1.0], &Condition::none())
            .unwrap_err();
        assert!(
            e.to_string().contains("reads a context sequence [B, L, 6]"),
            "{e}"
        );
        let e = model.raw(z.clone(), &[0.0, 1.0], &ctx(3, 5)).unwrap_err();
        assert!(e.to_string().contains("needs [2, L, 6]"), "{e}");
        let cond = ctx(3, 6);
        let process = process();
        let level = process.level_at_log_snr(0.0);
        let eps = |d: &dyn Denoise| to_vec(d.denoise(z.clone(), level).unwrap().eps_hat);
        let null = cond.null(2, 0, &device);
        let uncond = eps(&ModelDenoiser {
            model: &model,
            process: &process,
            cond: null,
        });
        let guided = eps(&GuidedDenoiser {
            model: &model,
            process: &process,
            cond,
            guidance: 0.0,
            interval: None,
        });
        for (a, b) in guided.iter().zip(&uncond) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// A network with separate input and output channels reads the state and a spatial
    /// condition and writes the state; the condition changes the output; a missing or misshapen
    /// condition and a context without cross-attention are errors.
    #[test]
    fn spatial_condition_is_concatenated_to_the_input() {
        let (device, mut rng) = crate::golden_data::seeded(1);
        let model = small_model(0, 2, &device);
        let z = crate::tensor::normal([2, 1, 8, 8], &mut rng, &device);
        let img = crate::tensor::normal([2, 2, 8, 8], &mut rng, &device);
        let with = |image: Tensor<4>| Condition {
            image: Some(image),
            ..Condition::none()
        };
        let a = model
            .raw(z.clone(), &[0.0, 1.0], &with(img.clone()))
            .unwrap();
        assert_eq!(a.dims(), [2, 1, 8, 8]);
        let b = model
            .raw(z.clone(), &[0.0, 1.0], &with(img.clone() * 2.0))
            .unwrap();
        assert!(
            to_vec(a)
                .iter()
                .zip(to_vec(b))
                .any(|(x, y)| (x - y).abs() > 1e-6)
        );
        let e = model
            .raw(z.clone(), &[0.0, 1.0], &Condition::none())
            .unwrap_err();
        assert!(
            e.to_string().contains("spatial condition of 2 channels"),
            "{e}"
        );
        let e = model
            .raw(z.clone(), &[0.0, 1.0], &with(img.narrow(1, 0, 1)))
            .unwrap_err();
        assert!(e.to_string().contains("has 1 channels"), "{e}");
        let ctx = Condition {
            context: Some(Tensor::zeros([2, 3, 4], &device)),
            ..with(crate::tensor::normal([2, 2, 8, 8], &mut rng, &device))
        };
        let e = model.raw(z, &[0.0, 1.0], &ctx).unwrap_err();
        assert!(e.to_string().contains("cross-attention"), "{e}");
    }
}
