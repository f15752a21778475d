//! Vector quantisation of the VQ-regularised autoencoder (van den Oord et al. 2017; taming
//! `VectorQuantizer2` with `legacy = False`): each latent vector is replaced by its nearest
//! codebook entry `e_k`, `k = argmin_j ‖z − e_j‖²`; gradients pass straight through
//! (`z_q = z + sg(e_k − z)`); the codebook loss `‖sg(z) − e_k‖²` moves the codes and the
//! commitment loss `β ‖z − sg(e_k)‖²` (β = 0.25) keeps the encoder near them (formula sheet §5).
//! Optionally the codes follow exponential moving averages instead of the codebook loss, and dead
//! codes restart from encoder outputs ([`super::codebook`], [`VectorQuantizer::maintain`]).

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

use super::codebook::{CodebookState, CodebookUpdate, choose_restarts};
use crate::io::map_params;
use crate::tensor::{to_vec, to_vec_int};

/// The codebook: `embedding.weight`, `[n_embed, dim]`; with EMA updates or dead-code restarts
/// also the usage averages `cluster_size` (`N`, `[n_embed]`) and, with EMA updates, the averaged
/// sums `embed_avg` (`m`, `[n_embed, dim]`; vector-quantize-pytorch's buffer names). These get
/// no gradient; they are parameters so that checkpoints and the training state hold them.
#[derive(Module, Debug)]
pub struct VectorQuantizer {
    embedding: Embedding,
    cluster_size: Option<Param<Tensor<1>>>,
    embed_avg: Option<Param<Tensor<2>>>,
    #[module(skip)]
    beta: f64,
    #[module(skip)]
    update: Option<CodebookUpdate>,
}

/// What quantising a batch gives.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// `z + sg(e_k − z)`, `[B, dim, h, w]`: the codes forward, the identity backward.
    pub z_q: Tensor<4>,
    /// `mean ‖sg(z) − e_k‖² + β mean ‖z − sg(e_k)‖²` (means over all elements; the first term
    /// only without EMA updates).
    pub loss: Tensor<1>,
    /// The chosen code of every latent vector, in `[B, h, w]` order.
    pub indices: Vec<usize>,
}

impl VectorQuantizer {
    /// `n_embed` codes of `dim` channels, initialised uniformly in `±1/n_embed` (taming), with
    /// commitment weight `beta`.
    pub fn new(n_embed: usize, dim: usize, beta: f64, device: &Device) -> Self {
        let a = 1.0 / n_embed as f64;
        Self {
            embedding: EmbeddingConfig::new(n_embed, dim)
                .with_initializer(Initializer::Uniform { min: -a, max: a })
                .init(device),
            cluster_size: None,
            embed_avg: None,
            beta,
            update: None,
        }
    }

    /// With codebook maintenance `update` (nothing changes if it is inactive): the statistics
    /// start at `N_k = 1` and `m_k = e_k` (see [`super::codebook`]).
    pub fn with_update(self, update: CodebookUpdate) -> Self {
        if !update.is_active() {
            return self;
        }
        fn buffer<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
            Param::from_tensor(t).set_require_grad(false)
        }
        let e = self.codebook();
        Self {
            cluster_size: Some(buffer(Tensor::ones([self.n_embed()], &e.device()))),
            embed_avg: update.ema.then(|| buffer(e.detach())),
            update: Some(update),
            ..self
        }
    }

    /// The codebook maintenance, if any.
    pub fn update(&self) -> Option<CodebookUpdate> {
        self.update
    }

    /// The codebook and its statistics on the host.
    pub fn state(&self) -> CodebookState {
        let e = self.codebook();
        CodebookState {
            dim: e.dims()[1],
            codebook: to_vec(e),
            cluster_size: match &self.cluster_size {
                Some(n) => to_vec(n.val()),
                None => vec![0.0; self.n_embed()],
            },
            embed_avg: self.embed_avg.as_ref().map(|m| to_vec(m.val())),
        }
    }

    /// The quantiser with the codebook and statistics of `state` (same shapes; statistics this
    /// quantiser does not keep are ignored).
    pub fn with_state(self, state: &CodebookState) -> Self {
        map_params(self, |name, like| {
            let data = match name {
                "embedding.weight" => &state.codebook,
                "cluster_size" => &state.cluster_size,
                "embed_avg" => state
                    .embed_avg
                    .as_ref()
                    .expect("EMA state for an EMA codebook"),
                _ => return like,
            };
            Tensor::from_data(TensorData::new(data.clone(), [data.len()]), &like.device())
        })
    }

    /// One maintenance step after the optimiser's (see [`super::codebook`]): the averages from
    /// the batch's unquantised latent `z` (`[B, dim, h, w]`) and its nearest codes `indices`
    /// (`[B, h, w]` order), the EMA codebook, then restarts of dead codes with vectors of `z`
    /// drawn from `rng` ([`choose_restarts`]). Returns the quantiser and the number of codes
    /// restarted; without maintenance, the quantiser unchanged and 0.
    pub fn maintain<R: Rng + ?Sized>(
        self,
        z: Tensor<4>,
        indices: &[usize],
        rng: &mut R,
    ) -> (Self, usize) {
        self.maintain_with(z, indices, |dead, n| choose_restarts(dead, n, rng))
    }

    /// [`VectorQuantizer::maintain`] with the restarts chosen by `choose(dead codes, number of
    /// vectors)`: `(code, vector)` pairs, vectors indexing `z`'s `[B, h, w]` order.
    pub fn maintain_with(
        self,
        z: Tensor<4>,
        indices: &[usize],
        choose: impl FnOnce(&[usize], usize) -> Vec<(usize, usize)>,
    ) -> (Self, usize) {
        let Some(u) = self.update else {
            return (self, 0);
        };
        let [b, d, h, w] = z.dims();
        let z = to_vec(z.permute([0, 2, 3, 1]).reshape([b * h * w, d]));
        let mut state = self.state();
        state.update(&z, indices, u.decay, u.eps);
        let restarts = if u.dead_code_threshold > 0.0 {
            choose(&state.dead_codes(u.dead_code_threshold), b * h * w)
        } else {
            Vec::new()
        };
        state.restart(&restarts, &z, u.dead_code_threshold);
        (self.with_state(&state), restarts.len())
    }

    /// The codebook `[n_embed, dim]`.
    pub fn codebook(&self) -> Tensor<2> {
        self.embedding.weight.val()
    }

    /// The number of codes.
    pub fn n_embed(&self) -> usize {
        self.embedding.weight.dims()[0]
    }

    /// The nearest code of each vector of `z` (`[B, dim, h, w]`), in `[B, h, w]` order.
    pub fn nearest(&self, z: Tensor<4>) -> Vec<usize> {
        let [b, d, h, w] = z.dims();
        let flat = z.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
        let e = self.codebook();
        let n = e.dims()[0];
        let dist = flat.clone().powi_scalar(2).sum_dim(1)
            + e.clone().powi_scalar(2).sum_dim(1).reshape([1, n])
            - flat.matmul(e.transpose()) * 2.0;
        to_vec_int(dist.argmin(1).reshape([-1]))
            .into_iter()
            .map(|k| k as usize)
            .collect()
    }

    /// The codes `indices` (`[B, h, w]` order) as a latent `[B, dim, h, w]`.
    pub fn lookup(&self, indices: &[usize], shape: [usize; 3]) -> Tensor<4> {
        let [b, h, w] = shape;
        let e = self.codebook();
        let d = e.dims()[1];
        let idx: Vec<i64> = indices.iter().map(|&k| k as i64).collect();
        let idx = Tensor::<1, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(idx, [indices.len()]),
            &e.device(),
        );
        e.select(0, idx).reshape([b, h, w, d]).permute([0, 3, 1, 2])
    }

    /// Quantises `z` (`[B, dim, h, w]`). See the module docs.
    pub fn forward(&self, z: Tensor<4>) -> Quantized {
        let [b, _, h, w] = z.dims();
        let indices = self.nearest(z.clone().detach());
        let e_k = self.lookup(&indices, [b, h, w]);
        let ema = self.update.is_some_and(|u| u.ema);
        let codebook = (!ema).then(|| (e_k.clone() - z.clone().detach()).powi_scalar(2).mean());
        let commitment = (z.clone() - e_k.clone().detach()).powi_scalar(2).mean();
        let loss = match codebook {
            Some(codebook) => codebook + commitment * self.beta,
            None => commitment * self.beta,
        };
        let z_q = z.clone() + (e_k - z).detach();
        Quantized { z_q, loss, indices }
    }
}

/// How a batch used the codebook: the fraction of codes used at least once and the perplexity
/// `exp(−Σ_k p_k log p_k)` of the code frequencies `p_k` (taming's `perplexity`; `n_embed` when
/// every code is used equally, 1 when one code takes all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodebookUsage {
    /// Codes used / `n_embed`.
    pub usage: f64,
    /// See the type docs.
    pub perplexity: f64,
}

impl CodebookUsage {
    /// From the chosen codes of a batch.
    pub fn of(indices: &[usize], n_embed: usize) -> Self {
        let mut counts = vec![0usize; n_embed];
        for &k in indices {
            counts[k] += 1;
        }
        let total = indices.len().max(1) as f64;
        let entropy: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total;
                -p * p.ln()
            })
            .sum();
        Self {
            usage: counts.iter().filter(|&&c| c > 0).count() as f64 / n_embed as f64,
            perplexity: entropy.exp(),
        }
    }
}
