//! Where a sampler puts its noise levels inside a segment: uniform in `t`, uniform in the logSNR
//! `λ`, or the spacing of Karras et al. (2022, Eq. 5) in the variance-exploding noise level
//! `σ̄ = σ/α = e^{−λ/2}` of the scalar schedule:
//!
//! ```text
//! σ̄_i = (σ̄_max^{1/ρ} + i/(n−1) · (σ̄_min^{1/ρ} − σ̄_max^{1/ρ}))^ρ,   i = 0..n−1
//! ```
//! (k-diffusion's `get_sigmas_karras`, without its appended σ = 0: the samplers add their final
//! step to σ = 0 themselves). Optional bounds `σ̄_min`, `σ̄_max` cut the time axis: sampling
//! starts at `t(σ̄_max)` from the prior and its grid ends at `t(σ̄_min)`.

use crate::process::{DiffusionProcess, Level};
use crate::schedule::LogSnrSchedule;
use crate::{Error, Result};

/// The rule that spaces the levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpacingRule {
    /// Uniform in `t` (DDPM's and DDIM's grid).
    Time,
    /// Uniform in `λ` (DPM-Solver's grid).
    LogSnr,
    /// Karras et al. (2022) Eq. 5 with exponent `rho` (7 in the paper).
    Karras {
        /// ρ > 0.
        rho: f64,
    },
}

/// Karras et al.'s ρ.
pub const KARRAS_RHO: f64 = 7.0;

impl std::fmt::Display for SpacingRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpacingRule::Time => write!(f, "time"),
            SpacingRule::LogSnr => write!(f, "logsnr"),
            SpacingRule::Karras { rho } => write!(f, "karras (ρ = {rho})"),
        }
    }
}

/// A sampler's grid: the rule (`None`: the sampler's own, [`super::SamplerKind::default_spacing`])
/// and optional `σ̄` bounds (`None`: the process's whole range, `t` from 1 to 0).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spacing {
    /// The rule.
    pub rule: Option<SpacingRule>,
    /// Lowest `σ̄ = e^{−λ/2}` of the grid before the final step.
    pub sigma_min: Option<f64>,
    /// Highest `σ̄`, where sampling starts.
    pub sigma_max: Option<f64>,
}

impl Spacing {
    /// A spacing from command-line words: `rule` is `time`, `logsnr` or `karras`; `rho` only
    /// with `karras`. Every number is checked (finite, positive, `σ̄_min < σ̄_max`).
    pub fn parse(
        rule: Option<&str>,
        rho: Option<f64>,
        sigma_min: Option<f64>,
        sigma_max: Option<f64>,
    ) -> Result<Self> {
        let rule = match rule.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("time" | "uniform" | "linear") => Some(SpacingRule::Time),
            Some("logsnr" | "lambda" | "log-snr") => Some(SpacingRule::LogSnr),
            Some("karras") => Some(SpacingRule::Karras {
                rho: rho.unwrap_or(KARRAS_RHO),
            }),
            Some(other) => {
                return Err(Error::invalid(format!(
                    "unknown spacing '{other}': expected karras, logsnr or time"
                )));
            }
        };
        if let Some(r) = rho {
            if !matches!(rule, Some(SpacingRule::Karras { .. })) {
                return Err(Error::invalid(
                    "--rho sets the Karras spacing's exponent: give it with --spacing karras",
                ));
            }
            if !(r.is_finite() && r > 0.0 && r <= 1000.0) {
                return Err(Error::invalid(format!(
                    "--rho {r}: the Karras exponent ρ must be a finite number in (0, 1000] (the paper uses 7)"
                )));
            }
        }
        for (flag, v) in [("--sigma-min", sigma_min), ("--sigma-max", sigma_max)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(Error::invalid(format!(
                    "{flag} {v}: a noise level σ̄ = σ/α must be finite and positive"
                )));
            }
        }
        if let (Some(lo), Some(hi)) = (sigma_min, sigma_max)
            && lo >= hi
        {
            return Err(Error::invalid(format!(
                "--sigma-min {lo} must be below --sigma-max {hi}"
            )));
        }
        Ok(Self {
            rule,
            sigma_min,
            sigma_max,
        })
    }

    /// Whether the grid has σ̄ bounds.
    pub fn is_bounded(&self) -> bool {
        self.sigma_min.is_some() || self.sigma_max.is_some()
    }
}

/// `σ̄ = e^{−λ/2}`, the variance-exploding noise level of logSNR `λ`.
pub fn sigma_ve(log_snr: f64) -> f64 {
    (-log_snr / 2.0).exp()
}

/// `λ = −2 ln σ̄`.
pub fn log_snr_of_sigma_ve(sigma: f64) -> f64 {
    -2.0 * sigma.ln()
}

/// `n ≥ 1` levels from `from` to `to` (both included; `n = 1`: `from` alone) under `rule`.
pub(super) fn ladder(
    rule: SpacingRule,
    process: &dyn DiffusionProcess,
    from: f64,
    to: f64,
    n: usize,
) -> Vec<Level> {
    let frac = |i: usize| {
        if n <= 1 {
            0.0
        } else {
            i as f64 / (n - 1) as f64
        }
    };
    let (lo, hi) = (process.log_snr(from), process.log_snr(to));
    (0..n)
        .map(|i| match rule {
            SpacingRule::Time => process.level(from - (from - to) * frac(i)),
            // Written as before spacings existed, so DPM-Solver++(2M)'s levels stay bit-identical.
            SpacingRule::LogSnr if n > 1 => {
                process.level_at_log_snr(lo + (hi - lo) * i as f64 / (n - 1) as f64)
            }
            SpacingRule::LogSnr => process.level_at_log_snr(lo),
            SpacingRule::Karras { rho } => {
                if i == 0 {
                    return process.level(from);
                }
                if i + 1 == n {
                    return process.level(to);
                }
                let (a, b) = (sigma_ve(lo).powf(1.0 / rho), sigma_ve(hi).powf(1.0 / rho));
                process.level_at_log_snr(log_snr_of_sigma_ve((a + frac(i) * (b - a)).powf(rho)))
            }
        })
        .collect()
}

/// The time where the scalar schedule's `σ̄` is `sigma`, or an error when `sigma` lies outside
/// the process's range `[σ̄(0), σ̄(1)]`.
pub(super) fn time_of_sigma(process: &dyn DiffusionProcess, flag: &str, sigma: f64) -> Result<f64> {
    let (lo, hi) = (
        sigma_ve(process.log_snr(0.0)),
        sigma_ve(process.log_snr(1.0)),
    );
    let tol = 1e-9 * hi;
    if sigma < lo * (1.0 - 1e-9) || sigma > hi + tol {
        return Err(Error::invalid(format!(
            "{flag} {sigma}: outside the {} process's noise range σ̄ ∈ [{lo:.6}, {hi:.4}] (σ̄ = e^(−λ/2) of its schedule)",
            process.kind()
        )));
    }
    Ok(process
        .schedule()
        .t_of_log_snr(log_snr_of_sigma_ve(sigma))
        .clamp(0.0, 1.0))
}
