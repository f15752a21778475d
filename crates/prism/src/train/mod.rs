//! ⑧ Training, for any set of networks: named modules each with its own AdamW (moments keyed by
//! module and parameter path), learning-rate schedule, gradient clip and optional EMA; a step
//! function supplied by the method ([`Method`]); free-form metrics; one checkpoint and exact-resume
//! path ([`Trainer`]). It knows nothing of diffusion: the diffusion step is `run`'s, the
//! classifier's is [`train_classifier`]'s.
//!
//! All per-step randomness (times, noise, label dropout, flips, dropout masks) is derived from
//! `(seed, step)` ([`step_rng`], [`Step::rng`]), and the data order from `(seed, epoch)`, so the
//! random state of a run is its step counter: a resumed run draws exactly what the uninterrupted
//! run would have drawn.
//!
//! Data-parallel training runs the same loop on every rank of a [`Collective`] ([`Trainer::run_with`]):
//! the step computes the loss of its [`Collective::shard`] of the global batch, [`Step::update`]
//! averages the gradients over the ranks, and rank 0 alone writes.

mod classifier;
mod collective;
mod context;
mod ema;
mod metrics;
mod modules;
#[cfg(feature = "mpi")]
mod mpi;
mod optimizer;
mod schedule;
mod trainer;

pub use classifier::{
    ClassifierReport, ClassifierTraining, accuracy, cross_entropy, train_classifier,
};
pub use collective::{Collective, Single, launched_ranks};
pub use context::Step;
pub use ema::{ema_decay, ema_update};
pub use metrics::{MetricsLine, read_metrics};
pub use modules::{Handle, ModuleSpec, Modules};
#[cfg(feature = "mpi")]
pub use mpi::Mpi;
pub use optimizer::{AdamW, AdamWConfig, NamedGrads};
pub use schedule::LrSchedule;
pub use trainer::{
    DEFAULT_MAX_BAD_STEPS, METRICS_FILE, Method, Metrics, Outcome, STATE_FILE, STATE_FORMAT,
    Trainer, TrainerConfig,
};

/// The generator for step `step` of a run seeded with `seed` (SplitMix-style mixing).
pub fn step_rng(seed: u64, step: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut x = seed
        ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    rand_chacha::ChaCha8Rng::seed_from_u64(x ^ (x >> 31))
}
