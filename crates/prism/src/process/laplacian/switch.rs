//! The resolution switch of Laplacian pyramid diffusion (formula sheet §4.3–4.4) and its inverse.
//!
//! At the switch time `t_k` band `k` has no signal, so the pooled state at level `k − 1` (side
//! `N/2^(k−1)`) is `y_h = s + σ_h ε` with a signal `s` constant on 2×2 blocks and
//! `σ_h = σ(t_k)/2^(k−1)`; one level down it is `down(y_h) = down(s) + σ_h down(ε)`, whose noise
//! has variance `σ_h²/4` (§4.3: logSNR + log 4). Sampling goes up:
//! ```text
//! y_h = up(y_l) + σ_h (ξ − up(down(ξ))),   ξ ~ N(0, I) at level k − 1        (§4.4)
//! ```
//! exact, because `up(down(ε)) + (ξ − up(down(ξ)))` is `N(0, I)`: the two parts are independent
//! projections onto complementary subspaces. With the states' scales `c_j` (module docs of
//! [`super`]): `z_h = c_{k−1} y_h`, `y_l = z_l / c_k`. Training goes down, `y_l = down(y_h)`, which
//! [`super::LaplacianProcess`]'s `corrupt` does for every level at once (`downʲ` of the full state).

use burn::tensor::Tensor;

use super::LaplacianProcess;
use crate::schedule::LogSnrSchedule;
use crate::transform::{avg_pool, up_nearest};
use crate::{Error, Result};

impl LaplacianProcess {
    /// The state at level `k − 1` from the state `z` at level `k` at the switch time `t = t_k`,
    /// with `xi` standard normal at level `k − 1` (§4.4, module docs).
    pub fn switch_with(&self, z: Tensor<4>, t: f64, k: usize, xi: Tensor<4>) -> Result<Tensor<4>> {
        if k == 0 || k >= self.levels {
            return Err(Error::invalid(format!(
                "the Laplacian process switches from levels 1..{} up, not from level {k}",
                self.levels - 1
            )));
        }
        let side = z.dims()[2];
        if self.level_of_side(side)? != k {
            return Err(Error::Shape(format!(
                "a switch at t = {t} starts from a {}² state, got {side}²",
                self.image_size >> k
            )));
        }
        let [b, c, h, w] = z.dims();
        if xi.dims() != [b, c, 2 * h, 2 * w] {
            return Err(Error::Shape(format!(
                "the switch's noise must be {:?}, got {:?}",
                [b, c, 2 * h, 2 * w],
                xi.dims()
            )));
        }
        let sigma_h = self.schedule.sigma(t) / f64::from(1u32 << (k - 1));
        let y_low = z / self.state_scale(k, t);
        let fresh = xi.clone() - up_nearest(avg_pool(xi, 2), 2);
        let y_high = up_nearest(y_low, 2) + fresh * sigma_h;
        Ok(y_high * self.state_scale(k - 1, t))
    }

    /// A state shape at level `j` with `channels` channels (batch 1), for the basis transforms.
    pub(super) fn state_at(&self, j: usize, channels: usize) -> [usize; 4] {
        let side = self.image_size >> j;
        [1, channels, side, side]
    }
}
