//! Exponential moving average of the weights, `θ̄ ← d θ̄ + (1 − d) θ`, with the warm-up
//! `d_k = min(d, (1 + k)/(10 + k))` so early averages are not dominated by the initialisation.

use burn::module::Module;

use crate::io::{grads_free_flat_params, map_params};

/// The decay used at update number `k` (0-based).
pub fn ema_decay(decay: f64, k: u64) -> f64 {
    decay.min((1.0 + k as f64) / (10.0 + k as f64))
}

/// Updates `ema` (a plain-device copy) towards `online` (possibly autodiff) with decay `d`.
pub fn ema_update<M: Module, E: Module>(ema: E, online: &M, d: f64) -> E {
    let mut online = grads_free_flat_params(online);
    map_params(ema, |name, avg| match online.remove(name) {
        Some(theta) => avg * d + theta * (1.0 - d),
        None => avg,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn decay_warms_up() {
        assert!((super::ema_decay(0.999, 0) - 0.1).abs() < 1e-12);
        assert_eq!(super::ema_decay(0.999, 1_000_000), 0.999);
    }
}
