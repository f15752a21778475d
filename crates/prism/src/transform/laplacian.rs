//! The Laplacian pyramid of Laplacian pyramid diffusion (formula sheet §4.1; NVIDIA Edify Image):
//! `down` = 2×2 average pooling, `up` = nearest upsampling (so `down∘up = I`), and for `K` levels
//!
//! ```text
//! x⁽ᴷ⁾ = downᴷ⁻¹(x)                              (the coarsest band, side H/2^(K−1))
//! x⁽ᵏ⁾ = downᵏ⁻¹(x) − up(downᵏ(x)),   k < K       (detail bands, side H/2^(k−1))
//! x    = Σ_k upᵏ⁻¹(x⁽ᵏ⁾)                          (exact reconstruction, telescoping)
//! ```
//! `upᵏ⁻¹(x⁽ᵏ⁾)` are the orthogonal projections of `x` onto mutually orthogonal subspaces (images
//! constant on `2^(k−1)` blocks whose `2^k` block averages vanish), so the bands carry the image's
//! energy without overlap: `||x||² = Σ_k 4^(k−1) ||x⁽ᵏ⁾||²`. The SWD's Gaussian pyramid (5×5
//! binomial kernel) is a different pyramid, in `eval::swd`.

use burn::tensor::Tensor;

use super::resample::{avg_pool, try_down, up_nearest};
use crate::{Error, Result};

/// Checks that a `K`-level pyramid fits `h × w`: `K ≥ 1` and both sides divisible by `2^(K−1)`.
pub fn check_pyramid(h: usize, w: usize, levels: usize) -> Result<()> {
    let f = 1usize
        .checked_shl(levels.saturating_sub(1) as u32)
        .unwrap_or(0);
    if levels == 0 || f == 0 || !h.is_multiple_of(f) || !w.is_multiple_of(f) {
        return Err(Error::Shape(format!(
            "a {levels}-level Laplacian pyramid needs height and width divisible by 2^{} = {f}, got {h}×{w}",
            levels.saturating_sub(1)
        )));
    }
    Ok(())
}

/// The `K = levels` bands of `x` (`[B, C, H, W]`), finest first: `bands[k−1] = x⁽ᵏ⁾` of side
/// `H/2^(k−1)`.
pub fn pyramid_bands(x: Tensor<4>, levels: usize) -> Result<Vec<Tensor<4>>> {
    let [_, _, h, w] = x.dims();
    check_pyramid(h, w, levels)?;
    let mut bands = Vec::with_capacity(levels);
    let mut current = x;
    for _ in 1..levels {
        let coarser = try_down(current.clone(), 2)?;
        bands.push(current - up_nearest(coarser.clone(), 2));
        current = coarser;
    }
    bands.push(current);
    Ok(bands)
}

/// `x = Σ_k upᵏ⁻¹(x⁽ᵏ⁾)` from bands finest first (the inverse of [`pyramid_bands`]).
pub fn pyramid_reconstruct(bands: Vec<Tensor<4>>) -> Result<Tensor<4>> {
    let mut rev = bands.into_iter().rev();
    let mut x = rev
        .next()
        .ok_or_else(|| Error::invalid("a Laplacian pyramid needs at least one band"))?;
    for band in rev {
        let coarse = x.dims();
        let up = up_nearest(x, 2);
        if up.dims() != band.dims() {
            return Err(Error::Shape(format!(
                "Laplacian bands do not fit: {coarse:?} upsampled is {:?}, the next band is {:?}",
                up.dims(),
                band.dims()
            )));
        }
        x = up + band;
    }
    Ok(x)
}

/// `downʲ(x)`: the image at `1/2^j` of its side (`j = 0`: `x` itself).
pub fn down_by(x: Tensor<4>, j: usize) -> Tensor<4> {
    avg_pool(x, 1 << j)
}

/// `upʲ(x)`.
pub fn up_by(x: Tensor<4>, j: usize) -> Tensor<4> {
    up_nearest(x, 1 << j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden_data::{assert_close, f32s, shape4, tensor4};
    use crate::tensor::{normal, to_vec};

    /// Bands, reconstructions and energies against the numpy pyramid of
    /// `tools/golden_laplacian.py` (`tests/data/laplacian.json`), K = 2, 3, 4.
    #[test]
    fn bands_match_numpy() {
        let device = burn::tensor::Device::flex();
        let g = crate::golden_data::load("laplacian.json");
        let cases = g["pyramid"].as_array().unwrap();
        assert!(cases.len() >= 3);
        for case in cases {
            let s = shape4(&case["shape"]);
            let k = case["levels"].as_u64().unwrap() as usize;
            let x = tensor4(&f32s(&case["x"]), s, &device);
            let bands = pyramid_bands(x.clone(), k).unwrap();
            assert_eq!(bands.len(), k);
            for (i, band) in bands.iter().enumerate() {
                let side = s[2] >> i;
                assert_eq!(band.dims()[2], side);
                let want = f32s(&case["bands"][i]);
                assert_close(
                    &to_vec(band.clone()),
                    &want,
                    1e-5,
                    &format!("K={k} band {i}"),
                );
            }
            let back = pyramid_reconstruct(bands).unwrap();
            assert_close(&to_vec(back), &f32s(&case["x"]), 1e-5, "reconstruction");
        }
    }

    /// Exact reconstruction and orthogonality of the band projections on random shapes.
    #[test]
    fn reconstruction_is_exact_and_bands_are_orthogonal() {
        let (device, mut rng) = crate::golden_data::seeded(5);
        for (shape, k) in [([2, 3, 16, 8], 4), ([1, 1, 4, 4], 3), ([3, 2, 6, 10], 2)] {
            let x = normal(shape, &mut rng, &device);
            let bands = pyramid_bands(x.clone(), k).unwrap();
            let full: Vec<Tensor<4>> = bands
                .iter()
                .enumerate()
                .map(|(i, b)| up_by(b.clone(), i))
                .collect();
            let back = pyramid_reconstruct(bands).unwrap();
            let err = to_vec((back - x.clone()).abs().max())[0];
            assert!(err < 1e-5, "{shape:?} K={k}: {err}");
            for i in 0..k {
                for j in i + 1..k {
                    let dot: f32 = to_vec(full[i].clone() * full[j].clone()).iter().sum();
                    assert!(
                        dot.abs() < 1e-3,
                        "{shape:?}: bands {i}, {j} overlap by {dot}"
                    );
                }
            }
            // A detail band averages to zero over 2×2 blocks of its own resolution.
            for b in &pyramid_bands(x, k).unwrap()[..k - 1] {
                let pooled = to_vec(avg_pool(b.clone(), 2));
                assert!(pooled.iter().all(|v| v.abs() < 1e-5), "{shape:?} K={k}");
            }
        }
    }

    #[test]
    fn indivisible_sizes_are_errors() {
        let (device, mut rng) = crate::golden_data::seeded(1);
        let e = pyramid_bands(normal([1, 1, 12, 12], &mut rng, &device), 4).unwrap_err();
        assert!(
            e.to_string().contains("divisible by 2^3 = 8, got 12×12"),
            "{e}"
        );
        assert!(pyramid_bands(normal([1, 1, 4, 4], &mut rng, &device), 0).is_err());
        assert!(pyramid_reconstruct(Vec::new()).is_err());
    }
}
