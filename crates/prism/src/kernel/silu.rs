//! SiLU, `silu(x) = x·σ(x)`, forward and backward each in one pass.
//!
//! burn computes `silu` as `x * sigmoid(x)`: on flex that is a single-threaded scalar loop calling
//! libm's `expf`, then a multiplication into a second fresh buffer; its autodiff recomputes the
//! sigmoid in the backward pass and runs `sigmoid_backward` and the multiplication's backward,
//! three more passes. Here the forward is one vectorised, threaded pass (in place when the input
//! is not shared), and the backward one pass computing
//! `∂silu/∂x = σ(x)·(1 + x·(1 − σ(x)))` from the saved input.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::exp::sigmoid_f32;
use super::{CHUNK, contiguous, on_flex_f32};

/// `silu(x) = x·σ(x)` (the activation of the U-Net, U-ViT and autoencoder blocks), fused on the
/// flex CPU device; burn's `activation::silu` elsewhere.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex_f32(&x) {
        Tensor::from_dispatch(<Dispatch as FusedSilu>::fused_silu(x.into_dispatch()))
    } else {
        burn::tensor::activation::silu(x)
    }
}

/// The backend extension: SiLU and its input gradient. The default bodies are burn's composition
/// (any backend); `Flex` overrides both with the fused kernels, `Autodiff` records the fused
/// forward with a fused backward.
#[backend_extension(Flex, Autodiff)]
pub trait FusedSilu: Backend {
    /// `x·σ(x)`.
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        composed_silu::<Self>(x)
    }

    /// `grad·σ(x)·(1 + x·(1 − σ(x)))`, the gradient with respect to `x` of `silu(x)`.
    fn fused_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed_silu_backward::<Self>(x, grad)
    }
}

/// `x·σ(x)` from burn's ops.
fn composed_silu<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(x.clone(), B::sigmoid(x))
}

/// `grad·σ(x)·(1 + x·(1 − σ(x)))` from burn's ops.
fn composed_silu_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let s = B::sigmoid(x.clone());
    let one_minus_s = B::float_add_scalar(B::float_neg(s.clone()), 1.0f32.into());
    let inner = B::float_add_scalar(B::float_mul(x, one_minus_s), 1.0f32.into());
    B::float_mul(grad, B::float_mul(s, inner))
}

impl FusedSilu for Flex {
    fn fused_silu(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return composed_silu::<Self>(x);
        }
        map_unary(x, |v| v * sigmoid_f32(v))
    }

    fn fused_silu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32
            || grad.dtype() != DType::F32
            || x.layout().shape() != grad.layout().shape()
        {
            return composed_silu_backward::<Self>(x, grad);
        }
        let x = contiguous(x);
        let xs = x.as_slice::<f32>().expect("contiguous f32");
        map_unary_with(grad, xs, |g, v| {
            let s = sigmoid_f32(v);
            g * (s * (1.0 + v * (1.0 - s)))
        })
    }
}

/// The saved input is the backward pass's state; the forward is not recomputed.
#[derive(Debug)]
struct SiluBackward;

impl<B: Backend + FusedSilu> Backward<B, 1> for SiluBackward {
    type State = B::FloatTensorPrimitive;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::fused_silu_backward(x, grad)
        });
    }
}

impl<B: Backend + FusedSilu, C: CheckpointStrategy> FusedSilu for Autodiff<B, C> {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = SiluBackward.prepare::<C>([x.node()]).compute_bound();
        match prep.stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                prep.finish(x.clone(), B::fused_silu(x))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_silu(x.into_primitive())),
        }
    }
}

/// `f` applied to every element: in place when `x` is contiguous and not shared, else into a
/// fresh contiguous tensor.
fn map_unary(x: FlexTensor, f: impl Fn(f32) -> f32 + Sync + Copy) -> FlexTensor {
    let mut x = contiguous(x);
    let shape = x.layout().shape().clone();
    if let Some((start, end)) = x.layout().contiguous_offsets()
        && let Some(buf) = x.try_storage_mut::<f32>()
    {
        for_chunks(&mut buf[start..end], |out| {
            for v in out.iter_mut() {
                *v = f(*v);
            }
        });
        return x;
    }
    let src = x.as_slice::<f32>().expect("contiguous f32");
    let mut out = vec![0.0f32; src.len()];
    zip_chunks(&mut out, src, |o, s| {
        for (o, &s) in o.iter_mut().zip(s) {
            *o = f(s);
        }
    });
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// `out[i] = f(grad[i], x[i])`, written into `grad`'s buffer when it is contiguous and not
/// shared. `x` is contiguous with `grad`'s number of elements.
fn map_unary_with(
    grad: FlexTensor,
    x: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync + Copy,
) -> FlexTensor {
    let mut grad = contiguous(grad);
    let shape = grad.layout().shape().clone();
    if let Some((start, end)) = grad.layout().contiguous_offsets()
        && let Some(buf) = grad.try_storage_mut::<f32>()
    {
        zip_chunks(&mut buf[start..end], x, |g, xs| {
            for (g, &v) in g.iter_mut().zip(xs) {
                *g = f(*g, v);
            }
        });
        return grad;
    }
    let gs = grad.as_slice::<f32>().expect("contiguous f32");
    let mut out = vec![0.0f32; gs.len()];
    out.copy_from_slice(gs);
    zip_chunks(&mut out, x, |g, xs| {
        for (g, &v) in g.iter_mut().zip(xs) {
            *g = f(*g, v);
        }
    });
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// Runs `body` on chunks of `data` (in parallel for large tensors), vectorised by `pulp`.
fn for_chunks(data: &mut [f32], body: impl Fn(&mut [f32]) + Sync + Copy) {
    let arch = pulp::Arch::new();
    if data.len() <= CHUNK {
        arch.dispatch(|| body(data));
    } else {
        data.par_chunks_mut(CHUNK)
            .for_each(|c| arch.dispatch(|| body(c)));
    }
}

/// Runs `body` on matching chunks of `out` and `src` (same length), like [`for_chunks`].
fn zip_chunks(out: &mut [f32], src: &[f32], body: impl Fn(&mut [f32], &[f32]) + Sync + Copy) {
    debug_assert_eq!(out.len(), src.len());
    let arch = pulp::Arch::new();
    if out.len() <= CHUNK {
        arch.dispatch(|| body(out, src));
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(o, s)| arch.dispatch(|| body(o, s)));
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::silu;
    use crate::tensor::to_vec;

    fn inputs(device: &Device) -> Tensor<4> {
        // Values across the range SiLU sees, extremes included.
        let mut v: Vec<f32> = (0..4 * 3 * 33 * 35)
            .map(|i| (i as f32 * 0.37).sin() * 12.0)
            .collect();
        v[0] = -100.0;
        v[1] = 100.0;
        v[2] = 0.0;
        Tensor::from_data(TensorData::new(v, [4, 3, 33, 35]), device)
    }

    use burn::tensor::TensorData;

    fn reference(x: f32) -> (f64, f64) {
        let x = x as f64;
        let s = 1.0 / (1.0 + (-x).exp());
        (x * s, s * (1.0 + x * (1.0 - s)))
    }

    /// Forward against the f64 formula, on a plain tensor, a shared one (not in place) and a
    /// non-contiguous view.
    #[test]
    fn fused_silu_matches_the_formula() {
        let device = Device::flex();
        let x = inputs(&device);
        let xs = to_vec(x.clone());
        for (name, y, order) in [
            ("shared", silu(x.clone()), false),
            (
                "transposed",
                silu(x.clone().swap_dims(1, 3)).swap_dims(1, 3),
                false,
            ),
            ("owned", silu(x), true),
        ] {
            let ys = to_vec(y);
            for (i, (&a, &b)) in xs.iter().zip(&ys).enumerate() {
                let (want, _) = reference(a);
                assert!(
                    (b as f64 - want).abs() <= 3e-7 * (1.0 + want.abs()),
                    "{name} [{i}]: silu({a}) = {b}, want {want} ({order})"
                );
            }
        }
    }

    /// The gradient through autodiff against the f64 derivative, and against burn's own
    /// composition `x·sigmoid(x)` through burn's autodiff.
    #[test]
    fn fused_silu_gradient_matches_the_derivative_and_burns_autodiff() {
        let device = Device::flex().autodiff();
        let x = inputs(&device).require_grad();
        let w = Tensor::<4>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
        // The fused kernel is the one under test.
        assert!(crate::kernel::on_flex_f32(&x));
        let grads = (silu(x.clone()) * w.clone()).sum().backward();
        let g = to_vec(x.grad(&grads).unwrap());
        let x2 = inputs(&device).require_grad();
        let grads2 = (burn::tensor::activation::silu(x2.clone()) * w.clone())
            .sum()
            .backward();
        let g2 = to_vec(x2.grad(&grads2).unwrap());
        let xs = to_vec(inputs(&device));
        let ws = to_vec(w);
        for i in 0..xs.len() {
            let (_, d) = reference(xs[i]);
            let want = d * ws[i] as f64;
            assert!(
                (g[i] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "[{i}] x = {}: grad {}, want {want}",
                xs[i],
                g[i]
            );
            assert!(
                (g[i] - g2[i]).abs() <= 1e-5 * (1.0 + g2[i].abs()),
                "[{i}] burn: {}",
                g2[i]
            );
        }
    }
}
