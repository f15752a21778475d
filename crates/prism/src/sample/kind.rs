//! Which sampler: written in configs and on the command line as `ddpm`, `ddim`, `ddim:ETA`,
//! `dpmpp-2m`, `euler`, `heun`, `dpmpp-2m-sde`, `dpmpp-3m-sde` or `unipc`.

use serde::{Deserialize, Serialize};

use super::spacing::{KARRAS_RHO, SpacingRule};
use crate::{Error, Result};

/// Which sampler.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SamplerKind {
    /// Ancestral sampling (Ho et al. 2020) in logSNR form.
    Ddpm,
    /// DDIM (Song et al. 2021); `eta = 0` deterministic, `eta = 1` equals DDPM.
    Ddim {
        /// Stochasticity η.
        eta: f64,
    },
    /// DPM-Solver++(2M) (Lu et al. 2022), multistep second order, data prediction.
    DpmPp2m,
    /// Euler steps of the probability-flow ODE (Karras et al. 2022, Alg. 2 without churn).
    Euler,
    /// Heun's second-order steps (Karras et al. 2022, Alg. 1), Euler on the last step.
    Heun,
    /// DPM-Solver++(2M) SDE (k-diffusion's `sample_dpmpp_2m_sde`, η = 1, midpoint).
    DpmPp2mSde,
    /// DPM-Solver++(3M) SDE (k-diffusion's `sample_dpmpp_3m_sde`, η = 1).
    DpmPp3mSde,
    /// UniPC (Zhao et al. 2023): order-2 UniP predictor and UniC corrector, B(h) = e^h − 1
    /// (diffusers' `UniPCMultistepScheduler` defaults).
    UniPc,
}

impl SamplerKind {
    /// The grid the sampler uses unless told otherwise: uniform in `t` for DDPM and DDIM, in `λ`
    /// for DPM-Solver++(2M), Karras et al.'s (ρ = 7) for the samplers that come from
    /// k-diffusion and diffusers.
    pub fn default_spacing(self) -> SpacingRule {
        match self {
            SamplerKind::Ddpm | SamplerKind::Ddim { .. } => SpacingRule::Time,
            SamplerKind::DpmPp2m => SpacingRule::LogSnr,
            _ => SpacingRule::Karras { rho: KARRAS_RHO },
        }
    }

    /// Whether the last segment ends with a step to σ = 0 whose result is the denoiser's `x̂`
    /// (everything except DDPM and DDIM, which land on `t = 0` and let the process finish).
    pub fn ends_with_denoised(self) -> bool {
        !matches!(self, SamplerKind::Ddpm | SamplerKind::Ddim { .. })
    }
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamplerKind::Ddpm => write!(f, "ddpm"),
            SamplerKind::Ddim { eta } if *eta == 0.0 => write!(f, "ddim"),
            SamplerKind::Ddim { eta } => write!(f, "ddim:{eta}"),
            SamplerKind::DpmPp2m => write!(f, "dpmpp-2m"),
            SamplerKind::Euler => write!(f, "euler"),
            SamplerKind::Heun => write!(f, "heun"),
            SamplerKind::DpmPp2mSde => write!(f, "dpmpp-2m-sde"),
            SamplerKind::DpmPp3mSde => write!(f, "dpmpp-3m-sde"),
            SamplerKind::UniPc => write!(f, "unipc"),
        }
    }
}

impl From<SamplerKind> for String {
    fn from(k: SamplerKind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for SamplerKind {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = Error;

    /// `ddpm`, `ddim` (η = 0), `ddim:0.5`, `dpmpp-2m` (also `dpm++2m`), `euler`, `heun`,
    /// `dpmpp-2m-sde`, `dpmpp-3m-sde`, `unipc`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim { eta: 0.0 }),
            "dpmpp-2m" | "dpm++2m" | "dpm++-2m" | "dpmpp2m" => Ok(SamplerKind::DpmPp2m),
            "euler" => Ok(SamplerKind::Euler),
            "heun" => Ok(SamplerKind::Heun),
            "dpmpp-2m-sde" | "dpm++2m-sde" | "dpm++-2m-sde" => Ok(SamplerKind::DpmPp2mSde),
            "dpmpp-3m-sde" | "dpm++3m-sde" | "dpm++-3m-sde" => Ok(SamplerKind::DpmPp3mSde),
            "unipc" => Ok(SamplerKind::UniPc),
            _ => match lower.strip_prefix("ddim:").map(str::parse::<f64>) {
                Some(Ok(eta)) if (0.0..=1.0).contains(&eta) => Ok(SamplerKind::Ddim { eta }),
                _ => Err(Error::invalid(format!(
                    "unknown sampler '{s}': expected ddpm, ddim, ddim:ETA (0 ≤ ETA ≤ 1), dpmpp-2m, euler, heun, \
                     dpmpp-2m-sde, dpmpp-3m-sde or unipc"
                ))),
            },
        }
    }
}
