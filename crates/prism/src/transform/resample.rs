//! Resolution changes by integer factors: `down` = `f×f` average pooling, `up` = nearest-neighbour
//! upsampling. `down(up(x)) = x` exactly, and `up(down(·))` is the orthogonal projection onto
//! images constant on `f×f` blocks (formula sheet §4.1; `down = up^T / f²`).

use burn::tensor::Tensor;

use crate::{Error, Result};

/// Average pooling by `factor`: `[B, C, H, W] → [B, C, H/f, W/f]`; `H` and `W` must be divisible
/// by `f` (see [`try_down`] for a checked version).
pub fn avg_pool(x: Tensor<4>, factor: usize) -> Tensor<4> {
    if factor == 1 {
        return x;
    }
    let [b, c, h, w] = x.dims();
    let (h2, w2) = (h / factor, w / factor);
    x.reshape([b, c, h2, factor, w2, factor])
        .mean_dim(5)
        .mean_dim(3)
        .reshape([b, c, h2, w2])
}

/// [`avg_pool`], with an error naming the sizes when they are not divisible by `factor`.
pub fn try_down(x: Tensor<4>, factor: usize) -> Result<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    if factor == 0 || !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
        return Err(Error::Shape(format!(
            "cannot downsample {h}×{w} by {factor}: the sides must be divisible by it"
        )));
    }
    Ok(avg_pool(x, factor))
}

/// Nearest-neighbour upsampling by `factor`: `[B, C, H, W] → [B, C, H·f, W·f]`.
pub fn up_nearest(x: Tensor<4>, factor: usize) -> Tensor<4> {
    if factor == 1 {
        return x;
    }
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, factor, w, factor])
        .reshape([b, c, h * factor, w * factor])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{normal, to_vec};

    /// `down(up(x)) = x`; `up(down(·))` is idempotent and self-adjoint (an orthogonal projection).
    #[test]
    fn down_inverts_up_and_up_down_is_a_projection() {
        let (device, mut rng) = crate::golden_data::seeded(3);
        let x = normal([2, 3, 4, 6], &mut rng, &device);
        let y = normal([2, 3, 8, 12], &mut rng, &device);
        let back = to_vec(avg_pool(up_nearest(x.clone(), 2), 2));
        for (a, b) in back.iter().zip(to_vec(x.clone())) {
            assert!((a - b).abs() < 1e-6);
        }
        let p = |t: Tensor<4>| up_nearest(avg_pool(t, 2), 2);
        let py = p(y.clone());
        for (a, b) in to_vec(p(py.clone())).iter().zip(to_vec(py.clone())) {
            assert!((a - b).abs() < 1e-5);
        }
        let z = normal([2, 3, 8, 12], &mut rng, &device);
        let lhs: f32 = to_vec(py * z.clone()).iter().sum();
        let rhs: f32 = to_vec(y * p(z)).iter().sum();
        assert!(
            (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        assert_eq!(up_nearest(x, 3).dims(), [2, 3, 12, 18]);
        let e = try_down(normal([1, 1, 5, 4], &mut rng, &device), 2).unwrap_err();
        assert!(e.to_string().contains("5×4"), "{e}");
    }
}
