//! `exp` and the logistic sigmoid in `f32` without branches or library calls, so that a loop over
//! them vectorises.
//!
//! Cephes' `expf` (S. L. Moshier): `x = n·ln 2 + r` with `n = ⌊x·log₂e + ½⌋` and `|r| ≤ ½ ln 2`
//! (`ln 2` split in two parts so `r` is exact), `e^r ≈ 1 + r + r²·P(r)` with Cephes' degree-5
//! minimax polynomial, and `2ⁿ` built in the exponent bits. The relative error is a few ulp over
//! the clamped range `[-87.3, 88.3]` (tested against `f64::exp`); arguments are clamped to it,
//! which keeps `2ⁿ` a normal number: `exp` of anything below `-87.3` is `≈ 1.2·10⁻³⁸` instead of a
//! subnormal or zero, and above `88.3` it is `≈ 2.2·10³⁸` instead of infinity. NaN stays NaN.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2 = LN2_HI + LN2_LO`, `LN2_HI` with few mantissa bits so that `n·LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes: 5.0000001e-1, the same f32
];

/// `eˣ` (see the module docs for the range and accuracy).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((P[0] * r + P[1]) * r + P[2]) * r + P[3]) * r + P[4]) * r + P[5];
    let er = p * r * r + r + 1.0;
    // n ∈ [-126, 127] after the clamp: 2ⁿ is a normal float.
    er * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The logistic sigmoid `σ(x) = 1 / (1 + e⁻ˣ)`.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 997th float bit pattern in [-87.3, 88.3] and the edges, against `f64::exp`.
    #[test]
    fn exp_matches_f64_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut check = |x: f32| {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
        };
        for x in [-87.3f32, -50.0, -1.0, -0.5, 0.0, 1e-8, 0.5, 1.0, 10.0, 88.3] {
            check(x);
        }
        let (lo, hi) = ((-87.3f32).to_bits(), 88.3f32.to_bits());
        // Negative floats: bit patterns from 0x8000_0000 (−0) up to lo; positive: 0 up to hi.
        for bits in (0x8000_0000u32..=lo)
            .step_by(997)
            .chain((0..=hi).step_by(997))
        {
            check(f32::from_bits(bits));
        }
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
    }

    #[test]
    fn exp_clamps_and_keeps_nan() {
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(-1000.0) < 2e-38);
        assert!(exp_f32(1000.0).is_finite() && exp_f32(1000.0) > 1e38);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_matches_f64() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            let got = sigmoid_f32(x) as f64;
            assert!(
                (got - want).abs() <= 2.0 * f32::EPSILON as f64 * want,
                "σ({x}) = {got}, want {want}"
            );
        }
        assert_eq!(sigmoid_f32(200.0), 1.0);
        assert!(sigmoid_f32(-200.0) < 1e-37);
    }
}
