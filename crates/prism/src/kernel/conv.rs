//! The weight gradient of a 2-D convolution as tiled im2col and one well-shaped matrix product.
//!
//! burn computes a convolution's weight gradient as another convolution, with batch and channels
//! swapped and the whole `H × W` output gradient as its kernel (`burn_backend`'s
//! `conv2d_weight_grad_no_groups`). On flex that is a matrix product of width 9. Here, for a
//! convolution with one group, it is computed as Caffe's and PyTorch's CPU kernels do, over tiles
//! of output positions: whole images of the batch, or rows of one image when an image alone is too
//! large. With `col [C_in·k_h·k_w, N]` the input taps of a tile's `N` positions (im2col, with zeros
//! in the padding) and `G_tile [C_out, N]` the output gradient there,
//!
//! `(∂L/∂W)ᵀ [C_in·k_h·k_w, C_out] = Σ_tiles col · G_tileᵀ`.
//!
//! Tiles keep `col` under [`COL_ELEMENTS`] floats, so it is still in cache when gemm reads it, and
//! memory stays bounded at any image size. The products run on flex's gemm. The forward pass and
//! the input gradient are flex's own (`conv2d`, `conv2d_x_backward`). Those were also written as
//! tiled im2col + gemm and measured: with two threads they were slower than flex's (BENCHMARKS.md).
//! The result equals burn's weight gradient to rounding (tested, including strides, dilation,
//! asymmetric padding and row tiles).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Shape, Tensor, TensorData};
use rayon::prelude::*;

use super::{contiguous, on_flex_f32};

/// Largest im2col tile, in floats (2 MB: the tile is still in cache when gemm reads it).
const COL_ELEMENTS: usize = 1 << 19;

/// `conv.forward(x)`, with the weight gradient of [`FusedConv2d`] on the flex CPU device for a
/// convolution with one group; burn's `Conv2d::forward` elsewhere.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // "Same" padding depends on the input size; burn's module computes it.
        PaddingConfig2d::Same => return conv.forward(x),
    };
    if conv.groups != 1 || !on_flex_f32(&x) {
        return conv.forward(x);
    }
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    let x = x.into_dispatch();
    let weight = conv.weight.val().into_dispatch();
    let out = match &conv.bias {
        Some(bias) => <Dispatch as FusedConv2d>::conv2d_tiled_wgrad(
            x,
            weight,
            bias.val().into_dispatch(),
            options,
        ),
        None => <Dispatch as FusedConv2d>::conv2d_tiled_wgrad_no_bias(x, weight, options),
    };
    Tensor::from_dispatch(out)
}

/// The backend extension: a convolution and its weight gradient. The default bodies are burn's
/// (any backend); `Flex` overrides the weight gradient, `Autodiff` records the convolution with
/// a backward pass that calls it.
#[backend_extension(Flex, Autodiff)]
pub trait FusedConv2d: Backend {
    /// `conv2d(x, weight) + bias`.
    fn conv2d_tiled_wgrad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options)
    }

    /// `conv2d(x, weight)` (a convolution without bias).
    fn conv2d_tiled_wgrad_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    /// `∂L/∂W` from the input `x` and the output gradient `grad`.
    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, grad, options)
    }
}

impl FusedConv2d for Flex {
    fn conv2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let applies = options.groups == 1
            && x.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && x.layout().shape().num_dims() == 4
            && weight.layout().shape().num_dims() == 4;
        if !applies {
            return Self::conv2d_weight_backward(x, weight, grad, options);
        }
        let w = weight.layout().shape().clone();
        weight_grad(x, grad, [w[0], w[1], w[2], w[3]], &options)
    }
}

/// Inputs of the backward pass.
#[derive(Debug, Clone)]
struct ConvState<T> {
    x: T,
    weight: T,
    bias: Option<T>,
    options: ConvOptions<2>,
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + FusedConv2d> Backward<B, 3> for ConvBackward {
    type State = ConvState<B::FloatTensorPrimitive>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let ConvState {
            x,
            weight,
            bias,
            options,
        } = ops.state;
        if let Some(node) = node_x {
            let g = B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_bias
            && let Some(bias) = bias
        {
            let g = B::conv2d_bias_backward(x.clone(), bias, grad.clone());
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_weight {
            let g = B::conv2d_weight_grad(x, weight, grad, options);
            grads.register::<B>(node.id, g);
        }
    }
}

#[derive(Debug)]
struct ConvNoBiasBackward;

impl<B: Backend + FusedConv2d> Backward<B, 2> for ConvNoBiasBackward {
    type State = ConvState<B::FloatTensorPrimitive>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, c: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let ops3 = Ops::new([node_x, node_weight, None], ops.node, ops.state);
        <ConvBackward as Backward<B, 3>>::backward(ConvBackward, ops3, grads, c);
    }
}

impl<B: Backend + FusedConv2d, C: CheckpointStrategy> FusedConv2d for Autodiff<B, C> {
    fn conv2d_tiled_wgrad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        {
            {
                let prep = ConvBackward
                    .prepare::<C>([x.node(), weight.node(), bias.node()])
                    .compute_bound();
                let (x, weight, bias) = (
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                match prep.stateful() {
                    OpsKind::Tracked(prep) => {
                        let state = ConvState {
                            x: x.clone(),
                            weight: weight.clone(),
                            bias: Some(bias.clone()),
                            options: options.clone(),
                        };
                        prep.finish(state, B::conv2d(x, weight, Some(bias), options))
                    }
                    OpsKind::UnTracked(prep) => {
                        prep.finish(B::conv2d(x, weight, Some(bias), options))
                    }
                }
            }
        }
    }

    fn conv2d_tiled_wgrad_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        {
            {
                let prep = ConvNoBiasBackward
                    .prepare::<C>([x.node(), weight.node()])
                    .compute_bound();
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                match prep.stateful() {
                    OpsKind::Tracked(prep) => {
                        let state = ConvState {
                            x: x.clone(),
                            weight: weight.clone(),
                            bias: None,
                            options: options.clone(),
                        };
                        prep.finish(state, B::conv2d(x, weight, None, options))
                    }
                    OpsKind::UnTracked(prep) => prep.finish(B::conv2d(x, weight, None, options)),
                }
            }
        }
    }

    fn conv2d_weight_grad(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        unreachable!("gradients are computed on the inner backend")
    }
}

/// Output positions of one tile: images `b0..b0 + nb`, output rows `r0..r0 + rows` of each.
#[derive(Clone, Copy, Debug)]
struct Tile {
    b0: usize,
    nb: usize,
    r0: usize,
    rows: usize,
}

/// Tiles covering a `[batch, ·, h_out, w_out]` output with at most `max_positions` positions
/// each (at least one output row).
fn tiles(batch: usize, h_out: usize, w_out: usize, max_positions: usize) -> Vec<Tile> {
    let per_image = h_out * w_out;
    let mut out = Vec::new();
    if per_image <= max_positions {
        let nb = (max_positions / per_image.max(1)).max(1);
        for b0 in (0..batch).step_by(nb) {
            out.push(Tile {
                b0,
                nb: nb.min(batch - b0),
                r0: 0,
                rows: h_out,
            });
        }
    } else {
        let rows = (max_positions / w_out.max(1)).max(1);
        for b0 in 0..batch {
            for r0 in (0..h_out).step_by(rows) {
                out.push(Tile {
                    b0,
                    nb: 1,
                    r0,
                    rows: rows.min(h_out - r0),
                });
            }
        }
    }
    out
}

/// `∂L/∂W` of a one-group convolution of `x [B, C_in, H, W]` with output gradient
/// `grad [B, C_out, H_out, W_out]` (see the module docs).
fn weight_grad(
    x: FlexTensor,
    grad: FlexTensor,
    w_shape: [usize; 4],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = contiguous(x);
    let grad = contiguous(grad);
    let xs = x.as_slice::<f32>().expect("contiguous f32");
    let gs = grad.as_slice::<f32>().expect("contiguous f32");
    let xd = x.layout().shape().clone();
    let gd = grad.layout().shape().clone();
    let (batch, c_in, height, width) = (xd[0], xd[1], xd[2], xd[3]);
    let (c_out, h_out, w_out) = (gd[1], gd[2], gd[3]);
    let [_, _, kh, kw] = w_shape;
    let k = c_in * kh * kw;
    let geometry = Geometry::new(height, width, w_out, kh, kw, options);

    let mut acc_t = vec![0.0f32; k * c_out];
    let mut col: Vec<f32> = Vec::new();
    let mut g: Vec<f32> = Vec::new();
    for tile in tiles(batch, h_out, w_out, (COL_ELEMENTS / k.max(1)).max(w_out)) {
        let n = tile.nb * tile.rows * w_out;
        col.clear();
        col.resize(k * n, 0.0);
        im2col(xs, c_in, &geometry, tile, &mut col);
        g.clear();
        g.resize(c_out * n, 0.0);
        gather_grad(gs, c_out, h_out, w_out, tile, &mut g);

        // colᵀ-side product: col [k, n] · gᵀ [n, C_out] = (∂L/∂W)ᵀ of the tile. (The other
        // orientation, g · colᵀ, makes gemm read col across its rows and ran 2–3× slower.)
        let lhs = FlexTensor::from_data(TensorData::new(std::mem::take(&mut col), [k, n]));
        let rhs = FlexTensor::from_data(TensorData::new(std::mem::take(&mut g), [c_out, n]));
        let prod = contiguous(Flex::float_matmul(lhs.clone(), rhs.transpose(0, 1)));
        let ps = prod.as_slice::<f32>().expect("contiguous f32");
        acc_t.par_iter_mut().zip(ps).for_each(|(a, &p)| *a += p);
        drop(prod);
        // Take the buffers back for the next tile (no copy: they are not shared any more).
        col = lhs.into_data().try_into_vec::<f32>().unwrap_or_default();
        g = rhs.into_data().try_into_vec::<f32>().unwrap_or_default();
    }
    // acc_t is [k, C_out]; the gradient is its transpose.
    let mut acc = vec![0.0f32; c_out * k];
    for (kk, row) in acc_t.chunks(c_out).enumerate() {
        for (co, &v) in row.iter().enumerate() {
            acc[co * k + kk] = v;
        }
    }
    FlexTensor::from_data(TensorData::new(acc, Shape::from(w_shape.to_vec())))
}

/// Sizes, stride, dilation and leading padding of a convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    height: usize,
    width: usize,
    w_out: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
}

impl Geometry {
    fn new(
        height: usize,
        width: usize,
        w_out: usize,
        kh: usize,
        kw: usize,
        options: &ConvOptions<2>,
    ) -> Self {
        Self {
            height,
            width,
            w_out,
            kh,
            kw,
            stride: options.stride,
            dilation: options.dilation,
            pad: options.padding_begin(),
        }
    }
}

/// `col [C_in·k_h·k_w, N]` of a tile: row `(c, i, j)`, column `(image, oh, ow)` holds
/// `x[b0 + image, c, oh·s_h − p_h + i·d_h, ow·s_w − p_w + j·d_w]`, or 0 in the padding.
/// `col` arrives zeroed.
fn im2col(xs: &[f32], c_in: usize, g: &Geometry, tile: Tile, col: &mut [f32]) {
    let n = tile.nb * tile.rows * g.w_out;
    let plane = g.height * g.width;
    col.par_chunks_mut(n).enumerate().for_each(|(row, dst)| {
        let c = row / (g.kh * g.kw);
        let i = (row / g.kw) % g.kh;
        let j = row % g.kw;
        // Output columns whose input column is inside the image: ow in [lo, hi).
        let offset = (j * g.dilation[1]) as isize - g.pad[1] as isize;
        let (lo, hi) = valid_range(offset, g.stride[1], g.width, g.w_out);
        for image in 0..tile.nb {
            let src = &xs[((tile.b0 + image) * c_in + c) * plane..][..plane];
            for r in 0..tile.rows {
                let oh = tile.r0 + r;
                let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize - g.pad[0] as isize;
                if ih < 0 || ih >= g.height as isize || lo >= hi {
                    continue;
                }
                let src_row = &src[ih as usize * g.width..][..g.width];
                let out = &mut dst[(image * tile.rows + r) * g.w_out..][..g.w_out];
                let first = (lo as isize * g.stride[1] as isize + offset) as usize;
                if g.stride[1] == 1 {
                    out[lo..hi].copy_from_slice(&src_row[first..first + (hi - lo)]);
                } else {
                    for (o, iw) in out[lo..hi].iter_mut().zip((first..).step_by(g.stride[1])) {
                        *o = src_row[iw];
                    }
                }
            }
        }
    });
}

/// The output columns `ow ∈ [lo, hi)` with `0 ≤ ow·stride + offset < width`.
fn valid_range(offset: isize, stride: usize, width: usize, w_out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        ((-offset) + s - 1) / s
    } as usize;
    let hi = if (width as isize) <= offset {
        0
    } else {
        (((width as isize - offset) + s - 1) / s) as usize
    };
    (lo.min(w_out), hi.min(w_out).max(lo.min(w_out)))
}

/// `g [C_out, N]` of a tile: row `c`, column `(image, oh, ow)` holds `grad[b0 + image, c, oh, ow]`.
fn gather_grad(gs: &[f32], c_out: usize, h_out: usize, w_out: usize, tile: Tile, g: &mut [f32]) {
    let n = tile.nb * tile.rows * w_out;
    let run = tile.rows * w_out;
    g.par_chunks_mut(n).enumerate().for_each(|(c, dst)| {
        for image in 0..tile.nb {
            let src = ((tile.b0 + image) * c_out + c) * h_out * w_out + tile.r0 * w_out;
            dst[image * run..][..run].copy_from_slice(&gs[src..src + run]);
        }
    });
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::tensor::to_vec;

    /// The gradients of every parameter and of the input through the fused convolution equal
    /// burn's, for the convolutions prism's networks use (3×3 same, strided downsampling, 1×1,
    /// patching, the discriminator's 4×4 stride 2, no bias, asymmetric padding), and when the
    /// weight gradient is split into row tiles.
    #[test]
    fn gradients_match_burns_convolution() {
        let device = Device::flex().autodiff();
        let cases: Vec<(Conv2dConfig, [usize; 4])> = vec![
            (
                Conv2dConfig::new([5, 7], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                [3, 5, 9, 11],
            ),
            (
                Conv2dConfig::new([4, 6], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                [2, 4, 10, 7],
            ),
            (Conv2dConfig::new([6, 3], [1, 1]), [2, 6, 5, 5]),
            (
                Conv2dConfig::new([3, 8], [2, 2]).with_stride([2, 2]),
                [2, 3, 8, 8],
            ),
            (
                Conv2dConfig::new([3, 4], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false),
                [2, 3, 9, 9],
            ),
            (
                Conv2dConfig::new([2, 3], [3, 3])
                    .with_dilation([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(0, 1, 2, 1)),
                [2, 2, 8, 9],
            ),
        ];
        for (i, (config, shape)) in cases.into_iter().enumerate() {
            let conv = config.init(&device);
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let reference = {
                let x = x.clone().require_grad();
                let y = conv.forward(x.clone());
                let w = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
                let grads = (y.clone() * w.clone()).sum().backward();
                (
                    y,
                    w,
                    x.grad(&grads).unwrap(),
                    conv.weight.grad(&grads).unwrap(),
                    conv.bias.as_ref().map(|b| b.grad(&grads).unwrap()),
                )
            };
            let (y_ref, w, gx_ref, gw_ref, gb_ref) = reference;
            // The fused kernel is the one under test.
            assert!(crate::kernel::on_flex_f32(&x));
            let x = x.require_grad();
            let y = conv2d(&conv, x.clone());
            let grads = (y.clone() * w).sum().backward();
            let close = |name: &str, a: Vec<f32>, b: Vec<f32>| {
                assert_eq!(a.len(), b.len(), "case {i} {name}");
                for (j, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-4 * (1.0 + q.abs()),
                        "case {i} {name}[{j}]: {p} vs {q}"
                    );
                }
            };
            close("output", to_vec(y), to_vec(y_ref));
            close("x grad", to_vec(x.grad(&grads).unwrap()), to_vec(gx_ref));
            close(
                "weight grad",
                to_vec(conv.weight.grad(&grads).unwrap()),
                to_vec(gw_ref),
            );
            if let Some(gb_ref) = gb_ref {
                let gb = conv.bias.as_ref().unwrap().grad(&grads).unwrap();
                close("bias grad", to_vec(gb), to_vec(gb_ref));
            }
        }
    }

    /// Row tiles (one image too large for a tile) give the same weight gradient as whole-image
    /// tiles.
    #[test]
    fn row_tiles_give_the_whole_image_gradient() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 13, 10], Distribution::Normal(0.0, 1.0), &device);
        let g = Tensor::<4>::random([2, 4, 13, 10], Distribution::Normal(0.0, 1.0), &device);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let prim = |t: Tensor<4>| {
            let d = t.into_data();
            FlexTensor::from_data(d)
        };
        let whole = weight_grad(prim(x.clone()), prim(g.clone()), [4, 3, 3, 3], &options);
        let whole = whole.into_data().try_into_vec::<f32>().unwrap();
        assert!(
            tiles(2, 13, 10, 25)
                .iter()
                .all(|t| t.nb == 1 && t.rows <= 2)
        );
        // Same computation, forced into 2-row tiles.
        let xs = to_vec(x);
        let gs = to_vec(g);
        let geometry = Geometry {
            height: 13,
            width: 10,
            w_out: 10,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [1, 1],
        };
        let mut acc = vec![0.0f64; 4 * 27];
        for tile in tiles(2, 13, 10, 25) {
            let n = tile.rows * 10;
            let mut col = vec![0.0f32; 27 * n];
            im2col(&xs, 3, &geometry, tile, &mut col);
            let mut gt = vec![0.0f32; 4 * n];
            gather_grad(&gs, 4, 13, 10, tile, &mut gt);
            for co in 0..4 {
                for kk in 0..27 {
                    acc[co * 27 + kk] += (0..n)
                        .map(|p| gt[co * n + p] as f64 * col[kk * n + p] as f64)
                        .sum::<f64>();
                }
            }
        }
        for (a, b) in acc.iter().zip(&whole) {
            assert!(
                (*a as f32 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn valid_range_matches_brute_force() {
        for stride in 1..4 {
            for offset in -4isize..5 {
                for width in 1..9 {
                    let w_out = 10;
                    let (lo, hi) = valid_range(offset, stride, width, w_out);
                    for ow in 0..w_out {
                        let iw = ow as isize * stride as isize + offset;
                        let inside = iw >= 0 && iw < width as isize;
                        assert_eq!(
                            inside,
                            (lo..hi).contains(&ow),
                            "s{stride} o{offset} w{width} ow{ow}"
                        );
                    }
                }
            }
        }
    }
}
