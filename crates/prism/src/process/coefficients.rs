//! Coefficients of sampler updates for processes that are diagonal in an orthonormal basis: one
//! number for an isotropic process, one per coordinate (frequency, band) otherwise. Samplers
//! compute their update coefficients on the host in f64, coordinate by coordinate, and apply them
//! as a [`Coef`]; a scalar stays a scalar, so the isotropic path does exactly the arithmetic of
//! the scalar formulas.

use burn::tensor::{Device, Tensor, TensorData};

use crate::schedule::{alpha_from_log_snr, sigma_from_log_snr};

/// A coefficient that multiplies or divides a state: a scalar, or a tensor that broadcasts over
/// it.
#[derive(Debug, Clone)]
pub enum Coef {
    /// The same value for every coordinate.
    Scalar(f64),
    /// Per-coordinate values (e.g. `[1, 1, H, W]`).
    Tensor(Box<Tensor<4>>),
}

impl Coef {
    /// `x · c`.
    pub fn mul(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Coef::Scalar(c) => x * *c,
            Coef::Tensor(c) => x * (**c).clone(),
        }
    }

    /// `x / c`.
    pub fn div(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Coef::Scalar(c) => x / *c,
            Coef::Tensor(c) => x / (**c).clone(),
        }
    }
}

/// `α`, `σ` and `λ` of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coord {
    /// `α`.
    pub alpha: f64,
    /// `σ`.
    pub sigma: f64,
    /// `λ = log(α²/σ²)`.
    pub log_snr: f64,
}

/// Per-coordinate scales of a diagonal process at one level, host-side in f64, laid out to
/// broadcast as `shape` over the state in the process's basis (`[1, 1, 1, 1]`: isotropic).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagonal {
    /// The broadcast shape of the values.
    pub shape: [usize; 4],
    /// One entry per element of `shape`, row-major.
    pub coords: Vec<Coord>,
}

impl Diagonal {
    /// The isotropic scales at logSNR `log_snr`: `α² = sigmoid(λ)`, `σ² = sigmoid(−λ)`.
    pub fn isotropic(log_snr: f64) -> Self {
        Self {
            shape: [1, 1, 1, 1],
            coords: vec![Coord {
                alpha: alpha_from_log_snr(log_snr),
                sigma: sigma_from_log_snr(log_snr),
                log_snr,
            }],
        }
    }

    /// Per-coordinate values `f(self_i, other_i)` for two levels of the same process (one of
    /// them may be isotropic; it then broadcasts).
    pub fn zip_with(
        &self,
        other: &Diagonal,
        f: impl Fn(Coord, Coord) -> f64,
    ) -> (Vec<f64>, [usize; 4]) {
        let n = self.coords.len().max(other.coords.len());
        let shape = if self.coords.len() >= other.coords.len() {
            self.shape
        } else {
            other.shape
        };
        let at = |d: &Diagonal, i: usize| d.coords[if d.coords.len() == 1 { 0 } else { i }];
        (
            (0..n).map(|i| f(at(self, i), at(other, i))).collect(),
            shape,
        )
    }

    /// Per-coordinate values `f(self_i)`.
    pub fn map(&self, f: impl Fn(Coord) -> f64) -> (Vec<f64>, [usize; 4]) {
        (self.coords.iter().map(|&c| f(c)).collect(), self.shape)
    }
}

/// Per-coordinate values `f(&[d_0_i, d_1_i, …])` over several levels of the same process (any
/// of them may be isotropic; it then broadcasts): what multistep samplers need, whose update
/// coefficients depend on the logSNRs of the last few levels.
pub fn zip_all(ds: &[&Diagonal], f: impl Fn(&[Coord]) -> f64) -> (Vec<f64>, [usize; 4]) {
    let widest = ds
        .iter()
        .max_by_key(|d| d.coords.len())
        .expect("zip_all needs at least one diagonal");
    let n = widest.coords.len();
    let mut row = Vec::with_capacity(ds.len());
    let values = (0..n)
        .map(|i| {
            row.clear();
            row.extend(
                ds.iter()
                    .map(|d| d.coords[if d.coords.len() == 1 { 0 } else { i }]),
            );
            f(&row)
        })
        .collect();
    (values, widest.shape)
}

/// Host values (from [`Diagonal::zip_with`] or [`Diagonal::map`]) as a [`Coef`]: a scalar when
/// there is one value.
pub fn coef((values, shape): (Vec<f64>, [usize; 4]), device: &Device) -> Coef {
    if values.len() == 1 {
        Coef::Scalar(values[0])
    } else {
        let data: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
        Coef::Tensor(Box::new(Tensor::from_data(
            TensorData::new(data, shape),
            device,
        )))
    }
}
