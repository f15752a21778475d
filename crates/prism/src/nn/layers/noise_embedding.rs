//! Noise-level conditioning: sinusoidal features of λ followed by an MLP (ADM / DDPM style, with λ
//! in place of the discrete timestep).

use crate::kernel::silu;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// `[cos(λ f_k), sin(λ f_k)]` with `f_k = exp(−ln(10000)·k/half)`, `k < half = dim/2`.
/// `log_snr`: `[B]`; returns `[B, dim]`.
pub fn sinusoidal_embedding(log_snr: Tensor<1>, dim: usize) -> Tensor<2> {
    let half = dim / 2;
    let device = log_snr.device();
    let freqs: Vec<f32> = (0..half)
        .map(|k| (-(10000f64.ln()) * k as f64 / half as f64).exp() as f32)
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).reshape([1, half]);
    let [b] = log_snr.dims();
    let args = log_snr.reshape([b, 1]) * freqs;
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}

/// `Linear(C → 4C), SiLU, Linear(4C → 4C)` on the sinusoidal features.
#[derive(Module, Debug)]
pub struct NoiseEmbedding {
    dim: usize,
    linear1: Linear,
    linear2: Linear,
}

impl NoiseEmbedding {
    /// Features of width `dim`, embedding of width `emb_dim`.
    pub fn new(dim: usize, emb_dim: usize, device: &Device) -> Self {
        Self {
            dim,
            linear1: LinearConfig::new(dim, emb_dim).init(device),
            linear2: LinearConfig::new(emb_dim, emb_dim).init(device),
        }
    }

    /// `log_snr`: `[B]` → `[B, emb_dim]`.
    pub fn forward(&self, log_snr: Tensor<1>) -> Tensor<2> {
        let h = sinusoidal_embedding(log_snr, self.dim);
        self.linear2.forward(silu(self.linear1.forward(h)))
    }
}
