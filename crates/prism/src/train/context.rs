//! What the trainer's loop hands the method's step function ([`Step`]), and the sums of metrics
//! between two log lines.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Gradients;

use super::collective::Collective;
use super::modules::{Handle, Modules};
use super::step_rng;
use super::trainer::Metrics;
use crate::{Error, Result};

/// The step function's view of the trainer during one step.
pub struct Step<'a> {
    pub(super) modules: &'a mut Modules,
    pub(super) collective: &'a dyn Collective,
    pub(super) index: u64,
    pub(super) seed: u64,
    /// Whether a module was updated in this step.
    pub(super) updated: bool,
    /// Why this step is bad (a non-finite loss or gradient norm), if it is.
    pub(super) bad: Option<String>,
}

impl Step<'_> {
    /// The step number (0-based: the number of steps done before this one).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The generator of stream `stream` of this step: `step_rng(seed, step, stream)`, so a
    /// resumed run draws what the uninterrupted run would have drawn.
    pub fn rng(&self, stream: u64) -> rand_chacha::ChaCha8Rng {
        step_rng(self.seed, self.index, stream)
    }

    /// The processes training together ([`Collective::rank`], [`Collective::shard`]); one
    /// ([`super::Single`]) unless the run is data-parallel. A step that shards its batch with
    /// [`Collective::shard`] computes the mean loss of its shard; [`Step::update`] averages the
    /// gradients over the ranks.
    pub fn collective(&self) -> &dyn Collective {
        self.collective
    }

    /// The mean of `value` over the ranks (e.g. a shard's loss: the batch's loss); `value` for
    /// one process.
    pub fn mean_over_ranks(&self, value: f64) -> Result<f64> {
        self.collective.mean(value)
    }

    /// The online weights of a module.
    pub fn module<M: Module + 'static>(&self, h: &Handle<M>) -> &M {
        self.modules.get(h)
    }

    /// The EMA weights of a module, if it has them.
    pub fn ema<M: Module + 'static>(&self, h: &Handle<M>) -> Option<&M> {
        self.modules.ema(h)
    }

    /// The trainer's modules.
    pub fn modules(&self) -> &Modules {
        self.modules
    }

    /// Applies one AdamW update of the module from `grads` (the gradients of its parameters;
    /// others are ignored; averaged over the ranks of a data-parallel run) with its learning rate at this step, then its EMA update. Returns
    /// the module's gradient norm before clipping.
    ///
    /// The norm is checked first: if it is not finite, nothing is changed, the step is marked
    /// bad (the trainer skips it, see [`Step::finite`]) and the error says so.
    pub fn update<M: Module + 'static>(&mut self, h: &Handle<M>, grads: &Gradients) -> Result<f64> {
        match self.modules.update(h, grads, self.index, self.collective)? {
            Ok(norm) => {
                self.updated = true;
                Ok(norm)
            }
            Err(norm) => {
                let what = format!("the gradient norm of '{}'", self.modules.name(h));
                Err(self.mark_bad(&what, norm, "the update was not applied"))
            }
        }
    }

    /// Replaces a module by `f(module)` outside its optimiser: state a module keeps that is not
    /// trained by gradients (e.g. a VQ codebook's moving averages). The change belongs to the
    /// step like an update: it is in the next training state, and with several modules a step
    /// that goes bad afterwards rolls it back. The module's EMA copy is not updated.
    pub fn map_module<M: Module + 'static>(&mut self, h: &Handle<M>, f: impl FnOnce(M) -> M) {
        self.modules.map(h, f);
        self.updated = true;
    }

    /// `value` if it is finite; otherwise the step is marked bad and the error says `what`
    /// became `value` at this step, with `hint`. Return the error (`?`) before any update: the
    /// trainer then skips the step (no update, no metrics but a `bad_steps` count), and stops
    /// with an error after `max_bad_steps` bad steps in a row, without writing a checkpoint.
    pub fn finite(&mut self, what: &str, value: f64, hint: &str) -> Result<f64> {
        if value.is_finite() {
            return Ok(value);
        }
        Err(self.mark_bad(what, value, hint))
    }

    /// Whether this step has been marked bad.
    pub fn is_bad(&self) -> bool {
        self.bad.is_some()
    }

    fn mark_bad(&mut self, what: &str, value: f64, hint: &str) -> Error {
        let why = format!("{what} became {value} at step {} ({hint})", self.index + 1);
        self.bad = Some(why.clone());
        Error::invalid(why)
    }
}

/// Sums of metrics between two log lines.
pub(super) struct Window {
    sums: Metrics,
    counts: BTreeMap<String, u64>,
    steps: u64,
    since: Instant,
}

impl Window {
    pub(super) fn new() -> Self {
        Self {
            sums: Metrics::new(),
            counts: BTreeMap::new(),
            steps: 0,
            since: Instant::now(),
        }
    }

    pub(super) fn add(&mut self, m: Metrics) {
        for (k, v) in m {
            *self.sums.entry(k.clone()).or_insert(0.0) += v;
            *self.counts.entry(k).or_insert(0) += 1;
        }
        self.steps += 1;
    }

    pub(super) fn means(&self) -> Metrics {
        self.sums
            .iter()
            .map(|(k, s)| (k.clone(), s / self.counts[k] as f64))
            .collect()
    }

    pub(super) fn per_s(&self, items: usize) -> f64 {
        self.steps as f64 * items as f64 / self.since.elapsed().as_secs_f64().max(1e-9)
    }
}
