//! Learning-rate schedules, functions of the trainer's step (0-based).

/// The learning rate of one module as a function of the step.
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// The same rate at every step.
    Constant(f64),
    /// Linear warm-up `peak · (k + 1)/warmup` for `k < warmup`, then `peak`.
    WarmupConstant {
        /// The rate after warm-up.
        peak: f64,
        /// Warm-up steps (0: none).
        warmup: u64,
    },
    /// Linear warm-up as [`LrSchedule::WarmupConstant`], then cosine decay
    /// `peak · ½ (1 + cos π p)` with `p = (k − warmup)/(total − warmup)`.
    WarmupCosine {
        /// The rate at the end of warm-up.
        peak: f64,
        /// Warm-up steps (0: none).
        warmup: u64,
        /// The step count over which the rate decays to 0.
        total: u64,
    },
}

impl LrSchedule {
    /// The rate at step `k` (0-based).
    pub fn at(&self, k: u64) -> f64 {
        match *self {
            Self::Constant(lr) => lr,
            Self::WarmupConstant { peak, warmup } => {
                if warmup > 0 && k < warmup {
                    peak * (k + 1) as f64 / warmup as f64
                } else {
                    peak
                }
            }
            Self::WarmupCosine {
                peak,
                warmup,
                total,
            } => {
                if k < warmup {
                    return peak * (k + 1) as f64 / warmup as f64;
                }
                let p = (k - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
                peak * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LrSchedule;

    #[test]
    fn warm_up_then_constant_or_cosine() {
        let w = LrSchedule::WarmupConstant {
            peak: 1.0,
            warmup: 4,
        };
        assert_eq!([w.at(0), w.at(3), w.at(100)], [0.25, 1.0, 1.0]);
        let c = LrSchedule::WarmupCosine {
            peak: 2.0,
            warmup: 2,
            total: 12,
        };
        assert_eq!([c.at(0), c.at(2)], [1.0, 2.0]);
        assert!((c.at(7) - 1.0).abs() < 1e-12 && c.at(12).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant(0.5).at(9), 0.5);
    }
}
