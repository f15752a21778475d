//! ⑧ Training: the step, AdamW, learning-rate warm-up, EMA, checkpoints with exact resume, metrics.
//!
//! All per-step randomness (times, noise, label dropout, flips, dropout masks) is derived from
//! `(seed, step)`, and the data order from `(seed, epoch)`, so the random state of a run is its
//! step counter: a resumed run draws exactly what the uninterrupted run would have drawn.

mod checkpoint;
mod classifier;
mod ema;
mod metrics;
mod optimizer;
mod params;
mod step;
mod trainer;

pub use checkpoint::{
    FORMAT_KEY, Loaded, check_matches, load as load_checkpoint, save as save_checkpoint,
};
pub use classifier::{
    ClassifierReport, ClassifierTraining, accuracy, cross_entropy, train_classifier,
};
pub use ema::{ema_decay, ema_update};
pub use metrics::{MetricsLine, read_metrics};
pub use optimizer::{AdamW, AdamWConfig};
pub use params::{HostTensor, grads_by_name, host_params, host_to_flat, map_params};
pub use step::batch_loss;
pub use trainer::{TrainOptions, TrainOutcome, load_into, load_model, train};

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
