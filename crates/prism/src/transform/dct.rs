//! Orthonormal 2-D DCT-II and its inverse (formula sheet §3; scipy's `dctn(x, norm='ortho')`).
//!
//! With the orthonormal DCT-II matrix `C_N[k, n] = s_k cos(π (2n + 1) k / (2N))`, `s_0 = sqrt(1/N)`,
//! `s_k = sqrt(2/N)` for `k > 0`, the transform of one `H×W` plane is `U = C_H X C_Wᵀ` and its
//! inverse `X = C_Hᵀ U C_W` (`C` is orthogonal). Both are built from burn matrix products with the
//! two cached matrices, applied to every plane of a `[batch, channels, H, W]` tensor at once, so they
//! are differentiable and run on any backend. Orthonormality keeps white noise white: `DCT(ε)` is
//! again standard normal, which blurring diffusion relies on.

use burn::tensor::{Device, Tensor, TensorData};

use crate::{Error, Result};

/// The orthonormal 2-D DCT-II for `H×W` planes, with its matrices cached on one device.
#[derive(Debug, Clone)]
pub struct Dct2d {
    height: usize,
    width: usize,
    /// `C_H`, `[H, H]`.
    rows: Tensor<2>,
    /// `C_W`, `[W, W]`.
    cols: Tensor<2>,
}

/// The orthonormal DCT-II matrix `C_N` (row `k` is frequency `k`), in f64.
pub fn dct_matrix(n: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    for k in 0..n {
        let s = if k == 0 {
            (1.0 / n as f64).sqrt()
        } else {
            (2.0 / n as f64).sqrt()
        };
        for j in 0..n {
            let angle = std::f64::consts::PI * (2 * j + 1) as f64 * k as f64 / (2 * n) as f64;
            m[k * n + j] = s * angle.cos();
        }
    }
    m
}

fn matrix(n: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = dct_matrix(n).into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [n, n]), device)
}

/// `y[.., i] = Σ_j m[i, j] x[.., j]` over the last axis (`x Mᵀ` on `[rows, n]`).
fn along_last(x: Tensor<4>, m: Tensor<2>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b * c * h, w])
        .matmul(m.transpose())
        .reshape([b, c, h, w])
}

impl Dct2d {
    /// The transform for `height × width` planes on `device`.
    pub fn new(height: usize, width: usize, device: &Device) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(Error::Shape(format!(
                "DCT: planes must be non-empty, got {height}×{width}"
            )));
        }
        Ok(Self {
            height,
            width,
            rows: matrix(height, device),
            cols: matrix(width, device),
        })
    }

    /// `[height, width]` of the planes this transform takes.
    pub fn size(&self) -> [usize; 2] {
        [self.height, self.width]
    }

    fn check(&self, x: &Tensor<4>) -> Result<()> {
        let [_, _, h, w] = x.dims();
        if [h, w] != [self.height, self.width] {
            return Err(Error::Shape(format!(
                "DCT built for {}×{} planes, got {h}×{w}",
                self.height, self.width
            )));
        }
        Ok(())
    }

    /// `U = C_H X C_Wᵀ` per plane of `x`: `[batch, channels, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        self.check(&x)?;
        let y = along_last(x, self.cols.clone()).swap_dims(2, 3);
        Ok(along_last(y, self.rows.clone()).swap_dims(2, 3))
    }

    /// `X = C_Hᵀ U C_W` per plane of `u`: `[batch, channels, H, W]`.
    pub fn inverse(&self, u: Tensor<4>) -> Result<Tensor<4>> {
        self.check(&u)?;
        let y = along_last(u, self.cols.clone().transpose()).swap_dims(2, 3);
        Ok(along_last(y, self.rows.clone().transpose()).swap_dims(2, 3))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use serde_json::Value;

    use super::*;
    use crate::golden_data::f32s as floats;
    use crate::tensor::{normal, to_vec};

    fn golden() -> Value {
        crate::golden_data::load("blurring.json")
    }

    /// `dctn(x, norm='ortho', axes=(2, 3))` and `idctn` from `tools/golden_blurring.py`, on square
    /// and non-square planes, several batches and channels.
    #[test]
    fn dct_matches_scipy() {
        let device = Device::flex();
        for case in golden()["dct"].as_array().unwrap() {
            let s = crate::golden_data::shape4(&case["shape"]);
            let x = Tensor::<4>::from_data(TensorData::new(floats(&case["x"]), s), &device);
            let dct = Dct2d::new(s[2], s[3], &device).unwrap();
            for (got, key) in [
                (dct.forward(x.clone()).unwrap(), "dct"),
                (dct.inverse(x.clone()).unwrap(), "idct"),
            ] {
                for (i, (a, b)) in to_vec(got).iter().zip(floats(&case[key])).enumerate() {
                    assert!((a - b).abs() < 2e-5, "{key} {s:?}[{i}]: {a} vs {b}");
                }
            }
        }
    }

    /// `inverse(forward(x)) = x` and `forward(inverse(u)) = u`; the norm is preserved.
    #[test]
    fn round_trip_and_parseval() {
        let device = Device::flex();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for [b, c, h, w] in [[2, 3, 8, 8], [1, 1, 5, 12], [3, 2, 16, 7], [1, 1, 1, 1]] {
            let dct = Dct2d::new(h, w, &device).unwrap();
            let x = normal([b, c, h, w], &mut rng, &device);
            let xv = to_vec(x.clone());
            let u = dct.forward(x.clone()).unwrap();
            let uv = to_vec(u.clone());
            let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>();
            assert!((norm(&xv) - norm(&uv)).abs() < 1e-4 * norm(&xv).max(1.0));
            for back in [dct.inverse(u).unwrap(), {
                let i = dct.inverse(x.clone()).unwrap();
                dct.forward(i).unwrap()
            }] {
                for (a, b) in to_vec(back).iter().zip(&xv) {
                    assert!((a - b).abs() < 1e-5, "{h}×{w}: {a} vs {b}");
                }
            }
        }
    }

    /// A constant plane has all its energy at frequency (0, 0): `sqrt(H W) · value`.
    #[test]
    fn constant_plane_is_dc_only() {
        let device = Device::flex();
        let dct = Dct2d::new(4, 6, &device).unwrap();
        let u = to_vec(
            dct.forward(Tensor::<4>::ones([1, 1, 4, 6], &device) * 0.5)
                .unwrap(),
        );
        assert!((u[0] - 0.5 * 24f32.sqrt()).abs() < 1e-5);
        assert!(u[1..].iter().all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn wrong_size_is_an_error() {
        let device = Device::flex();
        let dct = Dct2d::new(4, 4, &device).unwrap();
        let err = dct.forward(Tensor::<4>::zeros([1, 1, 4, 5], &device));
        assert!(err.unwrap_err().to_string().contains("4×4 planes, got 4×5"));
        assert!(Dct2d::new(0, 3, &device).is_err());
    }
}
