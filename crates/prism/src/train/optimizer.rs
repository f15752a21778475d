//! AdamW (Loshchilov & Hutter 2019) with global gradient-norm clipping, its moments keyed by
//! parameter path so the state saves and restores exactly (in a training-state file, under the
//! module's name too: `adam_m.<module>.<path>`, `adam_v.<module>.<path>`).
//!
//! `g ← g · min(1, c/‖g‖)` over all parameters, then
//! `m ← β₁ m + (1−β₁) g`, `v ← β₂ v + (1−β₂) g²`, `m̂ = m/(1−β₁ᵏ)`, `v̂ = v/(1−β₂ᵏ)`,
//! `θ ← θ − lr (m̂/(√v̂ + ε) + wd θ)`.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Gradients, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::Collective;
use crate::Result;
use crate::io::{HostTensor, grads_by_name, map_params};
use crate::tensor::{scalar, to_vec};

/// Optimiser hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// `β₁`.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// `β₂`.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// `ε`.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: 0.0,
        }
    }
}

impl AdamWConfig {
    /// Range checks: `β₁`, `β₂` in `[0, 1)`, `ε > 0`, weight decay `>= 0`, all finite; errors
    /// name the key as `<key>.beta1` etc.
    pub fn validate(&self, key: &str) -> crate::Result<()> {
        let bad = |name: &str, want: &str, v: f64| {
            Err(crate::Error::config(format!(
                "{key}.{name} must be {want}, got {v}"
            )))
        };
        for (name, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(name, "in [0, 1)", v);
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", "a positive finite number", self.eps);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", "a finite number >= 0", self.weight_decay);
        }
        Ok(())
    }
}

/// A module's gradients by parameter path and their global norm (before clipping): step 1 of
/// an update, so that the norm can be checked before anything changes.
#[derive(Debug)]
pub struct NamedGrads {
    grads: BTreeMap<String, Tensor<1>>,
    /// The global gradient norm `‖g‖` over all parameters.
    pub norm: f64,
}

impl NamedGrads {
    /// The gradients of `model`'s parameters in `grads` and their global norm.
    pub fn new<M: Module>(model: &M, grads: &Gradients) -> Self {
        let grads = grads_by_name(model, grads);
        let sq = grads
            .values()
            .map(|g| g.clone().powi_scalar(2).sum())
            .reduce(|a, b| a + b);
        let norm = sq.map_or(0.0, |s| scalar(s).sqrt());
        Self { grads, norm }
    }

    /// The mean of these gradients over the ranks of `c` (every rank calls it in the same step,
    /// for the same module) and its norm; the gradients themselves for one process. The ranks'
    /// gradients travel as one flat `f32` buffer in parameter-path order, and the norm is
    /// recomputed from the mean (in `f64` on the host), so every rank gets the same values.
    pub fn average(self, c: &dyn Collective) -> Result<Self> {
        if c.size() == 1 {
            return Ok(self);
        }
        let mut flat = Vec::new();
        let mut parts = Vec::with_capacity(self.grads.len());
        for (name, g) in self.grads {
            let device = g.device();
            let v = to_vec(g);
            parts.push((name, v.len(), device));
            flat.extend(v);
        }
        c.sum_f32(&mut flat)?;
        let ranks = c.size() as f32;
        for x in &mut flat {
            *x /= ranks;
        }
        let norm = flat
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        let mut grads = BTreeMap::new();
        let mut rest = flat.as_slice();
        for (name, n, device) in parts {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            let t = Tensor::<1>::from_data(TensorData::new(head.to_vec(), [n]), &device);
            grads.insert(name, t);
        }
        Ok(Self { grads, norm })
    }
}

/// The optimiser and its state.
#[derive(Debug, Clone)]
pub struct AdamW {
    cfg: AdamWConfig,
    step: u64,
    moments: BTreeMap<String, (Tensor<1>, Tensor<1>)>,
}

impl AdamW {
    /// A fresh optimiser.
    pub fn new(cfg: AdamWConfig) -> Self {
        Self {
            cfg,
            step: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Number of updates applied.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update to `model` from `grads`; returns the model and the gradient norm
    /// before clipping.
    pub fn update<M: Module>(
        &mut self,
        model: M,
        grads: &Gradients,
        lr: f64,
        clip: Option<f64>,
    ) -> (M, f64) {
        let named = NamedGrads::new(&model, grads);
        let norm = named.norm;
        (self.apply(model, named, lr, clip), norm)
    }

    /// Applies one update to `model` from gradients prepared by [`NamedGrads::new`] (whose
    /// norm the caller may check first); exactly what [`AdamW::update`] does.
    pub fn apply<M: Module>(
        &mut self,
        model: M,
        grads: NamedGrads,
        lr: f64,
        clip: Option<f64>,
    ) -> M {
        let NamedGrads { mut grads, norm } = grads;
        let scale = match clip {
            Some(c) if norm > c && norm > 0.0 => c / norm,
            _ => 1.0,
        };
        // 2. The AdamW update, parameter by parameter.
        self.step += 1;
        let k = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let (bc1, bc2) = (1.0 - b1.powi(k), 1.0 - b2.powi(k));
        let (eps, wd) = (self.cfg.eps, self.cfg.weight_decay);
        let moments = &mut self.moments;
        map_params(model, |name, theta| {
            let Some(g) = grads.remove(name) else {
                return theta;
            };
            let g = if scale != 1.0 { g * scale } else { g };
            let (m, v) = match moments.remove(name) {
                Some((m, v)) => (
                    m * b1 + g.clone() * (1.0 - b1),
                    v * b2 + g.powi_scalar(2) * (1.0 - b2),
                ),
                None => (g.clone() * (1.0 - b1), g.powi_scalar(2) * (1.0 - b2)),
            };
            let update = (m.clone() / bc1) / ((v.clone() / bc2).sqrt() + eps);
            let theta = if wd > 0.0 {
                theta.clone() - theta * (lr * wd)
            } else {
                theta
            };
            moments.insert(name.to_string(), (m, v));
            theta - update * lr
        })
    }

    /// The state as host tensors keyed by module and parameter path:
    /// `adam_m.<module>.<path>`, `adam_v.<module>.<path>`; and the number of updates.
    pub fn state(&self, module: &str) -> (u64, BTreeMap<String, HostTensor>) {
        let mut out = BTreeMap::new();
        for (name, (m, v)) in &self.moments {
            for (prefix, t) in [("adam_m", m), ("adam_v", v)] {
                out.insert(
                    format!("{prefix}.{module}.{name}"),
                    HostTensor {
                        shape: t.dims().to_vec(),
                        data: to_vec(t.clone()),
                    },
                );
            }
        }
        (self.step, out)
    }

    /// Restores the state written by [`AdamW::state`] for `module` (other tensors in `tensors`
    /// are ignored): `step` updates, and every `adam_m.<module>.<path>` with its
    /// `adam_v.<module>.<path>`.
    pub fn restore(
        &mut self,
        module: &str,
        step: u64,
        tensors: &BTreeMap<String, HostTensor>,
        device: &burn::tensor::Device,
    ) {
        self.step = step;
        self.moments.clear();
        let prefix = format!("adam_m.{module}.");
        for (key, m) in tensors {
            let Some(name) = key.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(v) = tensors.get(&format!("adam_v.{module}.{name}")) {
                let t = |h: &HostTensor| {
                    Tensor::<1>::from_data(
                        burn::tensor::TensorData::new(h.data.clone(), [h.data.len()]),
                        device,
                    )
                };
                self.moments.insert(name.to_string(), (t(m), t(v)));
            }
        }
    }
}
