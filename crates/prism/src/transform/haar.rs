//! The orthonormal 2-D Haar transform, applied as a full packet (every sub-band split again at
//! each level): the basis in which Laplacian pyramid diffusion is diagonal (formula sheet §4).
//!
//! One level on each 2×2 block `[[a, b], [c, d]]` (PyWavelets' `dwt2(·, 'haar')`, `cA, cH, cV, cD`):
//! ```text
//! cA = (a + b + c + d)/2    cH = (a + b − c − d)/2    cV = (a − b + c − d)/2    cD = (a − b − c + d)/2
//! ```
//! Layout as in [`super::dwt`]: `[B, C, H, W] → [B, 4C, H/2, W/2]`, band-major (`channel = band·C + c`);
//! each further level splits every channel again, so `L` levels give `[B, C·4^L, H/2^L, W/2^L]`.
//!
//! Why a packet: the coefficients of relative level `m` (those whose level-`m` band is a detail
//! band, the levels before it approximation bands) span exactly the `m`-th detail band of the
//! Laplacian pyramid ([`super::pyramid_bands`]), and a further orthonormal split of a sub-band stays
//! inside its span. So [`packet_band`] tells, per channel, which pyramid band a coefficient belongs
//! to, and per-band scales broadcast as `[1, C·4^L, 1, 1]`.

use burn::tensor::Tensor;

use crate::{Error, Result};

/// One level: `[B, C, H, W] → [B, 4C, H/2, W/2]`.
fn forward_level(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let blocks = x.reshape([b, c, h / 2, 2, w / 2, 2]);
    let at = |i: usize, j: usize| {
        blocks
            .clone()
            .narrow(3, i, 1)
            .narrow(5, j, 1)
            .reshape([b, c, h / 2, w / 2])
    };
    let (p, q, r, s) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
    let ca = (p.clone() + q.clone() + r.clone() + s.clone()) * 0.5;
    let ch = (p.clone() + q.clone() - r.clone() - s.clone()) * 0.5;
    let cv = (p.clone() - q.clone() + r.clone() - s.clone()) * 0.5;
    let cd = (p - q - r + s) * 0.5;
    Tensor::cat(vec![ca, ch, cv, cd], 1)
}

/// Inverse of [`forward_level`]: `[B, 4C, H, W] → [B, C, 2H, 2W]` (the transform is its own
/// transpose up to the layout, so the same sums come back).
fn inverse_level(y: Tensor<4>) -> Tensor<4> {
    let [b, c4, h, w] = y.dims();
    let c = c4 / 4;
    let band = |i: usize| y.clone().narrow(1, i * c, c);
    let (ca, ch, cv, cd) = (band(0), band(1), band(2), band(3));
    let p = (ca.clone() + ch.clone() + cv.clone() + cd.clone()) * 0.5;
    let q = (ca.clone() + ch.clone() - cv.clone() - cd.clone()) * 0.5;
    let r = (ca.clone() - ch.clone() + cv.clone() - cd.clone()) * 0.5;
    let s = (ca - ch - cv + cd) * 0.5;
    let row = |l: Tensor<4>, m: Tensor<4>| {
        Tensor::cat(
            vec![l.reshape([b, c, h, w, 1]), m.reshape([b, c, h, w, 1])],
            4,
        )
        .reshape([b, c, h, 1, 2 * w])
    };
    Tensor::cat(vec![row(p, q), row(r, s)], 3).reshape([b, c, 2 * h, 2 * w])
}

fn check(h: usize, w: usize, levels: usize) -> Result<()> {
    let f = 1usize.checked_shl(levels as u32).unwrap_or(0);
    if f == 0 || !h.is_multiple_of(f) || !w.is_multiple_of(f) {
        return Err(Error::Shape(format!(
            "a {levels}-level Haar transform needs height and width divisible by 2^{levels}, got {h}×{w}"
        )));
    }
    Ok(())
}

/// `levels` levels of the orthonormal Haar packet (`0`: the identity).
pub fn haar_packet(x: Tensor<4>, levels: usize) -> Result<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    check(h, w, levels)?;
    Ok((0..levels).fold(x, |x, _| forward_level(x)))
}

/// The inverse of [`haar_packet`] (its transpose: the transform is orthonormal).
pub fn haar_packet_inverse(y: Tensor<4>, levels: usize) -> Result<Tensor<4>> {
    let c = y.dims()[1];
    let bands = 1usize.checked_shl(2 * levels as u32).unwrap_or(0);
    if bands == 0 || !c.is_multiple_of(bands) {
        return Err(Error::Shape(format!(
            "a {levels}-level inverse Haar transform needs channels divisible by 4^{levels}, got {c}"
        )));
    }
    Ok((0..levels).fold(y, |y, _| inverse_level(y)))
}

/// Which pyramid band the packet channel `channel` of an `L = levels`-level transform of a
/// `channels`-channel image belongs to, relative to the transformed image: `m ∈ 1..=L` for the
/// detail band of level `m` (`1`: the finest), `L + 1` for the approximation (the coarsest band).
pub fn packet_band(channel: usize, channels: usize, levels: usize) -> usize {
    // Level m (applied m-th) multiplies its sub-band index by C·4^(m−1).
    for m in 1..=levels {
        let stride = channels * 4usize.pow((m - 1) as u32);
        if !(channel / stride).is_multiple_of(4) {
            return m;
        }
    }
    levels + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden_data::{assert_close, f32s, shape4, tensor4};
    use crate::tensor::{normal, to_vec};

    /// One level against PyWavelets' `dwt2(·, 'haar')`, two- and three-level packets against the
    /// numpy packet of `tools/golden_laplacian.py`.
    #[test]
    fn matches_pywavelets_and_numpy() {
        let device = burn::tensor::Device::flex();
        let g = crate::golden_data::load("laplacian.json");
        for case in g["haar"].as_array().unwrap() {
            let s = shape4(&case["shape"]);
            let levels = case["levels"].as_u64().unwrap() as usize;
            let x = tensor4(&f32s(&case["x"]), s, &device);
            let y = haar_packet(x, levels).unwrap();
            let want = f32s(&case["packet"]);
            assert_close(&to_vec(y.clone()), &want, 1e-5, &format!("L={levels}"));
            let back = haar_packet_inverse(y, levels).unwrap();
            assert_close(&to_vec(back), &f32s(&case["x"]), 1e-5, "inverse");
        }
    }

    /// Orthonormal: round trip and Parseval; each band's span is the pyramid band's.
    #[test]
    fn orthonormal_and_band_aligned() {
        let (device, mut rng) = crate::golden_data::seeded(2);
        let x = normal([2, 3, 8, 16], &mut rng, &device);
        for levels in 0..=3 {
            let y = haar_packet(x.clone(), levels).unwrap();
            let norm = |t: Tensor<4>| to_vec(t.powi_scalar(2).sum())[0];
            assert!((norm(y.clone()) - norm(x.clone())).abs() < 1e-3 * norm(x.clone()));
            let back = to_vec(
                (haar_packet_inverse(y, levels).unwrap() - x.clone())
                    .abs()
                    .max(),
            );
            assert!(back[0] < 1e-5);
        }
        // Keeping only the channels of band m reproduces the pyramid's band m (upsampled).
        let levels = 2;
        let bands = super::super::pyramid_bands(x.clone(), levels + 1).unwrap();
        let y = haar_packet(x.clone(), levels).unwrap();
        let c = 3;
        for m in 1..=levels + 1 {
            let mask: Vec<f32> = (0..c * 16)
                .map(|ch| f32::from(u8::from(packet_band(ch, c, levels) == m)))
                .collect();
            let mask = tensor4(&mask, [1, c * 16, 1, 1], &device);
            let part = haar_packet_inverse(y.clone() * mask, levels).unwrap();
            let want = super::super::up_by(bands[m - 1].clone(), m - 1);
            let err = to_vec((part - want).abs().max())[0];
            assert!(err < 1e-5, "band {m}: {err}");
        }
        assert!(haar_packet(x.clone(), 4).is_err());
        assert!(haar_packet_inverse(x, 1).is_err());
    }
}
