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

/// Elements per rayon task: below this a tensor is processed on the calling thread.
const CHUNK: usize = 1 << 15;

#[cfg(test)]
mod probe {
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::backend::ops::ConvOptions;
    use burn::backend::ops::ModuleOps;
    use burn::tensor::TensorData;
    use std::time::Instant;

    fn t(shape: [usize; 4]) -> FlexTensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        FlexTensor::from_data(TensorData::new(v, shape))
    }

    #[test]
    #[ignore]
    fn probe_conv_times() {
        for &(b, cin, cout, hw) in &[
            (32usize, 32usize, 32usize, 32usize),
            (32, 64, 64, 16),
            (32, 64, 64, 8),
            (16, 64, 64, 32),
            (16, 128, 128, 16),
        ] {
            let x = t([b, cin, hw, hw]);
            let w = t([cout, cin, 3, 3]);
            let g = t([b, cout, hw, hw]);
            let opt = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let reps = 5;
            let s = Instant::now();
            for _ in 0..reps {
                let _ = Flex::conv2d(x.clone(), w.clone(), None, opt.clone());
            }
            let f = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for _ in 0..reps {
                let _ = Flex::conv2d_x_backward(x.clone(), w.clone(), g.clone(), opt.clone());
            }
            let xb = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for _ in 0..reps {
                let _ = Flex::conv2d_weight_backward(x.clone(), w.clone(), g.clone(), opt.clone());
            }
            let wb = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for _ in 0..reps {
                let _ = <Flex as super::FusedConv2d>::conv2d_weight_grad(
                    x.clone(),
                    w.clone(),
                    g.clone(),
                    opt.clone(),
                );
            }
            let wb2 = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for _ in 0..reps {
                let _ = <Flex as super::FusedConv2d>::tiled_conv2d_no_bias(
                    x.clone(),
                    w.clone(),
                    opt.clone(),
                );
            }
            let f2 = s.elapsed().as_secs_f64() / reps as f64;
            let s = Instant::now();
            for _ in 0..reps {
                let _ = <Flex as super::FusedConv2d>::conv2d_input_grad(
                    x.clone(),
                    w.clone(),
                    g.clone(),
                    opt.clone(),
                );
            }
            let xb2 = s.elapsed().as_secs_f64() / reps as f64;
            println!("   tiled fwd {:.1} ms  x_bwd {:.1} ms", f2 * 1e3, xb2 * 1e3);
            println!(
                "   fused w_bwd {:.1} ms ({:.0})",
                wb2 * 1e3,
                2.0 * (b * cout * hw * hw * cin * 9) as f64 / wb2 / 1e9
            );
            let flops = 2.0 * (b * cout * hw * hw * cin * 9) as f64;
            println!(
                "b{b} cin{cin} cout{cout} {hw}²: fwd {:.1} ms ({:.0} GF/s)  x_bwd {:.1} ms ({:.0})  w_bwd {:.1} ms ({:.0})",
                f * 1e3,
                flops / f / 1e9,
                xb * 1e3,
                flops / xb / 1e9,
                wb * 1e3,
                flops / wb / 1e9
            );
        }
    }
}
