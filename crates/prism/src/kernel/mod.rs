//! Fused CPU kernels for burn's `flex` backend, where burn composes an operation of several passes
//! over memory (issue 17; `BENCHMARKS.md`, "Where the time goes").
//!
//! Each kernel is a burn backend extension (`#[backend_extension]`) implemented for `Flex` and for
//! `Autodiff<Flex>` with a hand-written backward pass, and each public function here routes a
//! tensor to it when the tensor lives on the flex CPU device in `f32`. On any other device (wgpu,
//! CUDA, LibTorch) or dtype the function computes the same formula from burn's own ops, so callers
//! never ask which device they run on.
//!
//! The element loops are written branch-free and run inside `pulp`'s run-time dispatch, which
//! compiles them a second time with AVX-512 enabled (`x86-v4`, the instruction set flex's matmul
//! already dispatches to) so the compiler vectorises them; rayon splits large tensors over the
//! pool. No `unsafe`.

mod conv;
mod exp;
mod group_norm;
mod silu;

pub use conv::{FusedConv2d, conv2d};
pub use exp::{exp_f32, sigmoid_f32};
pub use group_norm::{FusedGroupNorm, group_norm};
pub use silu::{FusedSilu, silu};

use burn::tensor::{DType, Tensor};

/// Whether `x` is an `f32` tensor on the flex CPU device (with or without autodiff): the tensors
/// the kernels of this module take.
pub(crate) fn on_flex_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32
        && matches!(
            x.device().inner().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

/// `x` with a contiguous layout starting at offset 0 (a copy only when it is not already).
fn contiguous(x: burn::backend::flex::FlexTensor) -> burn::backend::flex::FlexTensor {
    if x.is_contiguous() && x.layout().start_offset() == 0 {
        x
    } else {
        x.to_contiguous()
    }
}

/// Elements per rayon task: below this a tensor is processed on the calling thread.
const CHUNK: usize = 1 << 15;
