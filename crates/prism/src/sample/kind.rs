//! Which sampler: written in configs and on the command line as `ddpm`, `ddim`, `ddim:ETA` or
//! `dpmpp-2m`.

use serde::{Deserialize, Serialize};

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
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamplerKind::Ddpm => write!(f, "ddpm"),
            SamplerKind::Ddim { eta } if *eta == 0.0 => write!(f, "ddim"),
            SamplerKind::Ddim { eta } => write!(f, "ddim:{eta}"),
            SamplerKind::DpmPp2m => write!(f, "dpmpp-2m"),
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

    /// `ddpm`, `ddim` (η = 0), `ddim:0.5`, `dpmpp-2m` (also `dpm++2m`).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim { eta: 0.0 }),
            "dpmpp-2m" | "dpm++2m" | "dpm++-2m" | "dpmpp2m" => Ok(SamplerKind::DpmPp2m),
            _ => match lower.strip_prefix("ddim:").map(str::parse::<f64>) {
                Some(Ok(eta)) if (0.0..=1.0).contains(&eta) => Ok(SamplerKind::Ddim { eta }),
                _ => Err(Error::invalid(format!(
                    "unknown sampler '{s}': expected ddpm, ddim, ddim:ETA (0 ≤ ETA ≤ 1) or dpmpp-2m"
                ))),
            },
        }
    }
}
