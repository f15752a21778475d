//! Maintenance of the VQ codebook outside the gradient step (formula sheet §5): exponential
//! moving-average codebook updates (van den Oord et al. 2017, App. A.1; Razavi et al. 2019,
//! VQ-VAE-2) and random restarts of dead codes (Dhariwal et al. 2020, Jukebox, §2.2), as
//! vector-quantize-pytorch 1.32's `Codebook` does them (`ema_update`, `threshold_ema_dead_code`,
//! `reset_cluster_size` = the threshold; Sonnet's `VectorQuantizerEMA` is the same update with
//! bias-corrected averages that start at zero).
//!
//! After each step, with `n_k` the number of the batch's latent vectors `z` whose nearest code
//! is `k` and `s_k = Σ_{z → k} z` their sum:
//!
//! ```text
//! N_k ← γ N_k + (1 − γ) n_k                      (usage; kept when either option is on)
//! m_k ← γ m_k + (1 − γ) s_k                      (EMA updates only)
//! Ñ_k = (N_k + ε) / (Σ_j N_j + K ε) · Σ_j N_j    (Laplace smoothing)
//! e_k = m_k / Ñ_k
//! ```
//!
//! then every code with `N_k < threshold` is restarted: `e_k ← z` for an encoder output `z` of
//! the batch drawn without replacement, `N_k ← threshold`, `m_k ← threshold · z`. When more codes
//! are dead than the batch has vectors, a random subset of them (as many as there are vectors)
//! restarts now and the rest later. The state starts at `N_k = 1`, `m_k = e_k`, so the first
//! smoothed codebook is the initial one.

use rand::Rng;

/// How the codebook is maintained besides (or instead of) its gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodebookUpdate {
    /// EMA codebook updates: the codebook gets no gradient (the codebook loss term drops).
    pub ema: bool,
    /// The decay γ of the averages `N_k` and `m_k`.
    pub decay: f64,
    /// The Laplace smoothing ε.
    pub eps: f64,
    /// Codes with `N_k` below this are restarted (0: never).
    pub dead_code_threshold: f64,
}

impl CodebookUpdate {
    /// Whether anything is done after a step (EMA updates or restarts).
    pub fn is_active(&self) -> bool {
        self.ema || self.dead_code_threshold > 0.0
    }
}

/// The codebook and its statistics on the host (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct CodebookState {
    /// Code dimension `D`.
    pub dim: usize,
    /// The codes `e`, `[K, D]`.
    pub codebook: Vec<f32>,
    /// The usage averages `N`, `[K]`.
    pub cluster_size: Vec<f32>,
    /// The averaged sums `m`, `[K, D]` (EMA updates only).
    pub embed_avg: Option<Vec<f32>>,
}

impl CodebookState {
    /// The number of codes `K`.
    pub fn n_embed(&self) -> usize {
        self.cluster_size.len()
    }

    /// The averages' update from the batch's vectors `z` (`[n, D]`) and their nearest codes;
    /// with EMA updates, the codebook `e = m / Ñ` too. See the module docs.
    pub fn update(&mut self, z: &[f32], indices: &[usize], decay: f64, eps: f64) {
        let (k, d) = (self.n_embed(), self.dim);
        let mut counts = vec![0f64; k];
        let mut sums = vec![0f64; k * d];
        for (row, &c) in z.chunks_exact(d).zip(indices) {
            counts[c] += 1.0;
            for (s, &v) in sums[c * d..(c + 1) * d].iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let ema =
            |old: &mut f32, new: f64| *old = (decay * f64::from(*old) + (1.0 - decay) * new) as f32;
        for (n, &c) in self.cluster_size.iter_mut().zip(&counts) {
            ema(n, c);
        }
        let Some(m) = self.embed_avg.as_mut() else {
            return;
        };
        for (m, &s) in m.iter_mut().zip(&sums) {
            ema(m, s);
        }
        let total: f64 = self.cluster_size.iter().map(|&n| f64::from(n)).sum();
        let rows = self.codebook.chunks_exact_mut(d).zip(m.chunks_exact(d));
        for ((e, m), &n) in rows.zip(&self.cluster_size) {
            let smoothed = (f64::from(n) + eps) / (total + k as f64 * eps) * total;
            for (e, &m) in e.iter_mut().zip(m) {
                *e = (f64::from(m) / smoothed) as f32;
            }
        }
    }

    /// The codes whose usage `N_k` is below `threshold`, in ascending order.
    pub fn dead_codes(&self, threshold: f64) -> Vec<usize> {
        (0..self.n_embed())
            .filter(|&j| f64::from(self.cluster_size[j]) < threshold)
            .collect()
    }

    /// Restarts each `(code, vector)` of `restarts`: `e_code ← z_vector`, `N_code ← reset`,
    /// `m_code ← reset · z_vector` (`z` is `[n, D]`).
    pub fn restart(&mut self, restarts: &[(usize, usize)], z: &[f32], reset: f64) {
        let d = self.dim;
        for &(code, vector) in restarts {
            let v = &z[vector * d..(vector + 1) * d];
            self.codebook[code * d..(code + 1) * d].copy_from_slice(v);
            self.cluster_size[code] = reset as f32;
            if let Some(m) = self.embed_avg.as_mut() {
                for (m, &x) in m[code * d..(code + 1) * d].iter_mut().zip(v) {
                    *m = (f64::from(x) * reset) as f32;
                }
            }
        }
    }
}

/// Which dead code takes which of `n_vectors` batch vectors: every dead code (or, when there
/// are more dead codes than vectors, a random subset of `n_vectors` of them), in ascending code
/// order, each with a distinct vector drawn without replacement.
pub fn choose_restarts<R: Rng + ?Sized>(
    dead: &[usize],
    n_vectors: usize,
    rng: &mut R,
) -> Vec<(usize, usize)> {
    let mut codes = dead.to_vec();
    if codes.len() > n_vectors {
        codes = rand::seq::index::sample(rng, dead.len(), n_vectors)
            .into_iter()
            .map(|i| dead[i])
            .collect();
        codes.sort_unstable();
    }
    let vectors = rand::seq::index::sample(rng, n_vectors, codes.len());
    codes.into_iter().zip(vectors).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden_data::assert_close;
    use crate::nn::autoencoder::VectorQuantizer;
    use burn::tensor::{Device, Tensor, TensorData};
    use rand::SeedableRng;

    /// vector-quantize-pytorch 1.32's `Codebook` (`tools/golden_vq_ema.py`): five steps on fixed
    /// latents of EMA updates alone, EMA updates with dead-code restarts, and a gradient-trained
    /// codebook with restarts (usage averages only; its gradient step is not part of this), with
    /// the library's random choice of replacement vectors replaced by a recorded one. Nearest
    /// codes equal; codebook, cluster sizes and averaged sums to 10⁻⁵ (relative above 1).
    #[test]
    fn maintenance_matches_vector_quantize_pytorch() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/vq_ema.safetensors");
        let golden = crate::io::load(&path).unwrap();
        let meta = |k: &str| golden.metadata[k].parse::<f64>().unwrap();
        let (k, d) = (meta("n_embed") as usize, meta("dim") as usize);
        let t = |name: &str| &golden.tensors[name];
        let device = Device::flex();
        let mut restarted_total = 0;
        for (run, ema, threshold) in [
            ("ema", true, 0.0),
            ("ema_restart", true, meta("threshold")),
            ("grad_restart", false, meta("threshold")),
        ] {
            let update = CodebookUpdate {
                ema,
                decay: meta("decay"),
                eps: meta("eps"),
                dead_code_threshold: threshold,
            };
            let init = t("init.embed").data.clone();
            let mut q = VectorQuantizer::new(k, d, 0.25, &device)
                .with_update(update)
                .with_state(&CodebookState {
                    dim: d,
                    codebook: init.clone(),
                    cluster_size: vec![1.0; k],
                    embed_avg: ema.then_some(init),
                });
            for s in 0..meta("steps") as usize {
                let z = t(&format!("z.{s}"));
                let shape = [z.shape[0], z.shape[1], z.shape[2], z.shape[3]];
                let z = Tensor::<4>::from_data(TensorData::new(z.data.clone(), shape), &device);
                let idx = q.nearest(z.clone());
                let want: Vec<usize> = t(&format!("{run}.{s}.indices"))
                    .data
                    .iter()
                    .map(|&v| v as usize)
                    .collect();
                assert_eq!(idx, want, "{run} step {s}: nearest codes");
                let want: Vec<(usize, usize)> = golden
                    .tensors
                    .get(&format!("{run}.{s}.restarts"))
                    .map(|r| {
                        r.data
                            .chunks_exact(2)
                            .map(|p| (p[0] as usize, p[1] as usize))
                            .collect()
                    })
                    .unwrap_or_default();
                let (next, n) = q.maintain_with(z, &idx, |dead, n_vectors| {
                    let codes: Vec<usize> = want.iter().map(|p| p.0).collect();
                    assert_eq!(dead, codes, "{run} step {s}: dead codes");
                    assert_eq!(n_vectors, 18);
                    want.clone()
                });
                assert_eq!(n, want.len());
                restarted_total += n;
                q = next;
                let state = q.state();
                let what = |x: &str| format!("{run} step {s}: {x}");
                let g = |x: &str| &t(&format!("{run}.{s}.{x}")).data;
                assert_close(&state.codebook, g("embed"), 1e-5, &what("codebook"));
                assert_close(&state.cluster_size, g("cluster_size"), 1e-5, &what("N"));
                if ema {
                    let m = state.embed_avg.as_ref().unwrap();
                    assert_close(m, g("embed_avg"), 1e-5, &what("m"));
                }
            }
        }
        assert_eq!(
            restarted_total, 7,
            "the golden's restarts: 4 with EMA, 3 without"
        );
    }

    /// Restart choices: all dead codes while the batch has enough vectors, distinct vectors; a
    /// subset of the dead codes (distinct, ascending) when it has not.
    #[test]
    fn restarts_take_distinct_vectors_and_at_most_one_per_vector() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let dead = [1, 4, 5, 9];
        let r = choose_restarts(&dead, 10, &mut rng);
        assert_eq!(r.iter().map(|p| p.0).collect::<Vec<_>>(), dead);
        let mut v: Vec<usize> = r.iter().map(|p| p.1).collect();
        v.sort_unstable();
        v.dedup();
        assert!(v.len() == 4 && v.iter().all(|&i| i < 10), "{r:?}");
        let r = choose_restarts(&dead, 2, &mut rng);
        assert_eq!(r.len(), 2);
        assert!(r[0].0 < r[1].0 && dead.contains(&r[0].0) && dead.contains(&r[1].0));
        assert!(r[0].1 != r[1].1 && r.iter().all(|p| p.1 < 2), "{r:?}");
        assert!(choose_restarts(&[], 5, &mut rng).is_empty());
        assert!(choose_restarts(&dead, 0, &mut rng).is_empty());
    }
}
