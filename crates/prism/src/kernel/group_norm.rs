//! GroupNorm (Wu & He 2018) forward and backward, each one parallel pass over the groups.
//!
//! For `x [B, C, …]` split into `G` groups of `C/G` channels, with `N` elements per group:
//! `μ = mean(x)`, `σ² = mean((x − μ)²)` over each (sample, group), `r = 1/√(σ² + ε)`,
//! `x̂ = (x − μ)·r`, `y = γ_c·x̂ + β_c`. The backward pass, with `g = ∂L/∂y` and `ĝ = γ_c·g`:
//!
//! - `∂L/∂γ_c = Σ g·x̂`, `∂L/∂β_c = Σ g` over the batch and the positions;
//! - `∂L/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, the means over the group.
//!
//! burn composes GroupNorm of reshape, mean, subtraction, square, mean, division and the affine
//! map, a pass and a buffer each, and its autodiff runs the backward of each. Here a group's
//! statistics and outputs are computed while its `N` elements are in cache, groups in parallel;
//! the statistics are accumulated in `f64`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::GroupNorm;
use burn::tensor::{DType, Shape, Tensor, TensorData};
use rayon::prelude::*;

use super::{contiguous, on_flex_f32};

/// `norm.forward(x)` for `x [B, C, …]`, fused on the flex CPU device for an affine GroupNorm;
/// burn's `GroupNorm::forward` elsewhere.
pub fn group_norm<const D: usize>(norm: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
        return norm.forward(x);
    };
    let (gamma, beta) = (gamma.val(), beta.val());
    // The kernel reads γ and β as `f32` slices of one value per channel; anything else (weights
    // of another dtype, a malformed checkpoint) goes to burn's module and its own checks.
    let params_fit = |p: &Tensor<1>| p.dtype() == DType::F32 && p.dims() == [norm.num_channels];
    if !norm.affine
        || D < 3
        || !on_flex_f32(&x)
        || x.dims()[1] != norm.num_channels
        || !params_fit(&gamma)
        || !params_fit(&beta)
    {
        return norm.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedGroupNorm>::fused_group_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        norm.num_groups,
        norm.epsilon,
    ))
}

/// The backend extension: an affine GroupNorm and its gradients `(∂x, ∂γ, ∂β)`. Only flex and
/// its autodiff implement it; [`group_norm`] routes everything else to burn's module.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGroupNorm: Backend {
    /// `γ_c·x̂ + β_c` (see the module docs).
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// `(∂L/∂x, ∂L/∂γ, ∂L/∂β)` from the output gradient `grad`.
    fn fused_group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FusedGroupNorm for Flex {
    fn fused_group_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        groups: usize,
        epsilon: f64,
    ) -> FlexTensor {
        let shape = x.layout().shape().clone();
        let x = contiguous(x);
        let (gamma, beta) = (contiguous(gamma), contiguous(beta));
        let xs = x.as_slice::<f32>().expect("f32");
        let gs = gamma.as_slice::<f32>().expect("f32");
        let bs = beta.as_slice::<f32>().expect("f32");
        let layout = Layout::of(&shape, groups);
        let mut out = vec![0.0f32; xs.len()];
        out.par_chunks_mut(layout.group_len)
            .zip(xs.par_chunks(layout.group_len))
            .enumerate()
            .for_each(|(index, (y, x))| {
                let (mean, rstd) = statistics(x, epsilon);
                let c0 = (index % groups) * layout.channels_per_group;
                for (j, (y, x)) in y
                    .chunks_mut(layout.spatial)
                    .zip(x.chunks(layout.spatial))
                    .enumerate()
                {
                    let scale = gs[c0 + j] * rstd;
                    let shift = bs[c0 + j] - mean * scale;
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = x * scale + shift;
                    }
                }
            });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn fused_group_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        grad: FlexTensor,
        groups: usize,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.layout().shape().clone();
        let x = contiguous(x);
        let (gamma, grad) = (contiguous(gamma), contiguous(grad));
        let xs = x.as_slice::<f32>().expect("f32");
        let gs = gamma.as_slice::<f32>().expect("f32");
        let dys = grad.as_slice::<f32>().expect("f32");
        let layout = Layout::of(&shape, groups);
        let cpg = layout.channels_per_group;
        let mut dx = vec![0.0f32; xs.len()];
        // Per (sample, group): the group's channels' Σ g·x̂ and Σ g.
        let partial: Vec<(Vec<f64>, Vec<f64>)> = dx
            .par_chunks_mut(layout.group_len)
            .zip(xs.par_chunks(layout.group_len))
            .zip(dys.par_chunks(layout.group_len))
            .enumerate()
            .map(|(index, ((dx, x), dy))| {
                let (mean, rstd) = statistics(x, epsilon);
                let c0 = (index % groups) * cpg;
                let (mut dgamma, mut dbeta) = (vec![0.0f64; cpg], vec![0.0f64; cpg]);
                let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
                for j in 0..cpg {
                    let range = j * layout.spatial..(j + 1) * layout.spatial;
                    let (mut dg, mut db) = (0.0f32, 0.0f32);
                    let (mut sg, mut sgx) = (0.0f32, 0.0f32);
                    let gamma = gs[c0 + j];
                    for (&x, &dy) in x[range.clone()].iter().zip(&dy[range]) {
                        let xh = (x - mean) * rstd;
                        dg += dy * xh;
                        db += dy;
                        sg += dy * gamma;
                        sgx += dy * gamma * xh;
                    }
                    dgamma[j] = dg as f64;
                    dbeta[j] = db as f64;
                    sum_g += sg as f64;
                    sum_gx += sgx as f64;
                }
                let n = layout.group_len as f64;
                let (mean_g, mean_gx) = ((sum_g / n) as f32, (sum_gx / n) as f32);
                for j in 0..cpg {
                    let range = j * layout.spatial..(j + 1) * layout.spatial;
                    let gamma = gs[c0 + j];
                    for ((dx, &x), &dy) in dx[range.clone()]
                        .iter_mut()
                        .zip(&x[range.clone()])
                        .zip(&dy[range])
                    {
                        let xh = (x - mean) * rstd;
                        *dx = rstd * (dy * gamma - mean_g - xh * mean_gx);
                    }
                }
                (dgamma, dbeta)
            })
            .collect();
        let channels = layout.channels;
        let (mut dgamma, mut dbeta) = (vec![0.0f64; channels], vec![0.0f64; channels]);
        for (index, (dg, db)) in partial.iter().enumerate() {
            let c0 = (index % groups) * cpg;
            for j in 0..cpg {
                dgamma[c0 + j] += dg[j];
                dbeta[c0 + j] += db[j];
            }
        }
        let to_tensor = |v: Vec<f64>| {
            let v: Vec<f32> = v.into_iter().map(|v| v as f32).collect();
            FlexTensor::from_data(TensorData::new(v, [channels]))
        };
        (
            FlexTensor::from_data(TensorData::new(dx, shape)),
            to_tensor(dgamma),
            to_tensor(dbeta),
        )
    }
}

/// How `[B, C, …]` splits into groups.
struct Layout {
    channels: usize,
    channels_per_group: usize,
    /// Elements per channel (the product of the trailing dimensions).
    spatial: usize,
    group_len: usize,
}

impl Layout {
    fn of(shape: &Shape, groups: usize) -> Self {
        let channels = shape[1];
        let spatial: usize = (2..shape.num_dims()).map(|d| shape[d]).product();
        let channels_per_group = channels / groups;
        Self {
            channels,
            channels_per_group,
            spatial,
            group_len: channels_per_group * spatial,
        }
    }
}

/// `(μ, 1/√(σ² + ε))` of a group, two passes in `f64`.
fn statistics(x: &[f32], epsilon: f64) -> (f32, f32) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + epsilon).sqrt()) as f32)
}

/// The backward pass's inputs.
#[derive(Debug, Clone)]
struct GroupNormState<T> {
    x: T,
    gamma: T,
    groups: usize,
    epsilon: f64,
}

#[derive(Debug)]
struct GroupNormBackward;

impl<B: Backend + FusedGroupNorm> Backward<B, 3> for GroupNormBackward {
    type State = GroupNormState<B::FloatTensorPrimitive>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let GroupNormState {
            x,
            gamma,
            groups,
            epsilon,
        } = ops.state;
        let (dx, dgamma, dbeta) = B::fused_group_norm_backward(x, gamma, grad, groups, epsilon);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, dbeta);
        }
    }
}

impl<B: Backend + FusedGroupNorm, C: CheckpointStrategy> FusedGroupNorm for Autodiff<B, C> {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let prep = GroupNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match prep.stateful() {
            OpsKind::Tracked(prep) => {
                let state = GroupNormState {
                    x: x.clone(),
                    gamma: gamma.clone(),
                    groups,
                    epsilon,
                };
                prep.finish(state, B::fused_group_norm(x, gamma, beta, groups, epsilon))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_group_norm(x, gamma, beta, groups, epsilon))
            }
        }
    }

    fn fused_group_norm_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _groups: usize,
        _epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("gradients are computed on the inner backend")
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::GroupNormConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::group_norm;
    use crate::tensor::to_vec;

    /// Output and every gradient equal burn's GroupNorm's, with
    /// non-trivial γ, β and an input far from zero mean (where one-pass variance would lose).
    /// (`[2, 6, 9, 1]`: trailing unit dimension; `groups = 1`: LayerNorm over `C, H, W`.)
    #[test]
    fn matches_burns_group_norm_and_its_gradients() {
        let device = Device::flex().autodiff();
        for (shape, groups) in [
            (vec![3usize, 8, 5, 7], 4usize),
            (vec![2, 6, 9, 1], 3),
            (vec![2, 4, 16, 16], 1),
        ] {
            let c = shape[1];
            let mut norm = GroupNormConfig::new(groups, c).init(&device);
            norm.gamma = Some(Param::from_tensor(Tensor::random(
                [c],
                Distribution::Normal(1.0, 0.5),
                &device,
            )));
            norm.beta = Some(Param::from_tensor(Tensor::random(
                [c],
                Distribution::Normal(0.0, 0.5),
                &device,
            )));
            let dims: [usize; 4] = shape.clone().try_into().unwrap();
            let x = Tensor::<4>::random(dims, Distribution::Normal(3.0, 2.0), &device);
            let w = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            // The fused kernel is the one under test.
            assert!(crate::kernel::on_flex_f32(&x));
            let run = |fused: bool| {
                let x = x.clone().require_grad();
                let y = if fused {
                    group_norm(&norm, x.clone())
                } else {
                    norm.forward(x.clone())
                };
                let grads = (y.clone() * w.clone()).sum().backward();
                (
                    to_vec(y),
                    to_vec(x.grad(&grads).unwrap()),
                    to_vec(norm.gamma.as_ref().unwrap().grad(&grads).unwrap()),
                    to_vec(norm.beta.as_ref().unwrap().grad(&grads).unwrap()),
                )
            };
            let (a, b) = (run(true), run(false));
            for (name, p, q, tol) in [
                ("y", &a.0, &b.0, 1e-5f32),
                ("dx", &a.1, &b.1, 1e-4),
                ("dγ", &a.2, &b.2, 1e-3),
                ("dβ", &a.3, &b.3, 1e-3),
            ] {
                assert_eq!(p.len(), q.len());
                for (i, (u, v)) in p.iter().zip(q.iter()).enumerate() {
                    assert!(
                        (u - v).abs() <= tol * (1.0 + v.abs()),
                        "{shape:?} {name}[{i}]: {u} vs {v}"
                    );
                }
            }
        }
    }
}
