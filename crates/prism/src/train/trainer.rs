//! The generic training loop: named modules (each with its own AdamW, schedule and optional
//! EMA), a step function supplied by the method, free-form metrics, a progress bar, a stop flag,
//! and one checkpoint and exact-resume path. It knows nothing of what is trained.
//!
//! The training-state file `train_state.safetensors` holds every module's tensors (see
//! [`super::modules`]) and the metadata `format = prism-train-state`, `step`, `seed`, `modules`
//! (the names, comma-separated), `optimizer_step.<name>`, `prism_version`, plus whatever the
//! method adds ([`TrainerConfig::metadata`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};

use super::collective::{Collective, Single};
use super::context::{Step, Window};
use super::metrics::{self, MetricsLine};
use super::modules::{Handle, ModuleSpec, Modules};
use crate::io::{self, FORMAT_KEY, Loaded};
use crate::{Error, Result};

/// The training-state file inside a run directory.
pub const STATE_FILE: &str = "train_state.safetensors";
/// The metrics file inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The `format` metadata of a training-state file.
pub const STATE_FORMAT: &str = "prism-train-state";

/// One step's metrics by name (averaged over the steps between two log lines).
pub type Metrics = BTreeMap<String, f64>;

/// What a training method supplies: its step, and optional hooks around checkpoints and steps.
///
/// Any `FnMut(&mut Step<'_>) -> Result<Metrics>` is a method with no hooks.
pub trait Method {
    /// One training step: draw from [`Step::rng`], compute losses from [`Step::module`], and
    /// apply gradients with [`Step::update`] (any modules, in any order, any number of times).
    /// Returns the step's metrics.
    fn step(&mut self, step: &mut Step<'_>) -> Result<Metrics>;

    /// Checks, before a resume, that the training-state file `state` (read from `path`) belongs
    /// to this job; the error should name what differs.
    fn check_resume(&self, _state: &Loaded, _path: &Path) -> Result<()> {
        Ok(())
    }

    /// Called once before the first step of a [`Trainer::run`], after a resume has restored the
    /// modules (`step` is where the run starts).
    fn begin(&mut self, _modules: &Modules, _step: u64) -> Result<()> {
        Ok(())
    }

    /// Called after each training-state file is written into `dir` at `step` (e.g. to write an
    /// inference file beside it).
    fn saved(&mut self, _modules: &Modules, _dir: &Path, _step: u64) -> Result<()> {
        Ok(())
    }

    /// What to change when steps keep going bad (non-finite losses or gradients): the end of
    /// the error with which the trainer stops after `max_bad_steps` bad steps in a row.
    fn divergence_hint(&self) -> String {
        "lower the learning rate or clip the gradients".into()
    }

    /// Called after each step's logging and checkpoint, with the progress bar hidden; `done`
    /// is true after the last step of this call.
    fn after_step(&mut self, _modules: &Modules, _step: u64, _done: bool) -> Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&mut Step<'_>) -> Result<Metrics>> Method for F {
    fn step(&mut self, step: &mut Step<'_>) -> Result<Metrics> {
        self(step)
    }
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct TrainerConfig {
    /// Total steps of the job.
    pub steps: u64,
    /// Seed of the per-step generators ([`Step::rng`]).
    pub seed: u64,
    /// A metrics line every this many steps (and after the last).
    pub log_every: u64,
    /// A training-state file every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Where the training state and metrics go; `None` writes nothing (and cannot resume).
    pub run_dir: Option<PathBuf>,
    /// Continue from `run_dir/train_state.safetensors`.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Set to stop after the current step, save and return.
    pub stop: Arc<AtomicBool>,
    /// Stop (and save) after this step even if `steps` is larger.
    pub stop_after: Option<u64>,
    /// Extra metadata for the training-state file.
    pub metadata: HashMap<String, String>,
    /// Items (e.g. images) per step and their name: logs `<name>_per_s`.
    pub throughput: Option<(String, usize)>,
    /// The metrics shown on the progress bar.
    pub bar_metrics: Vec<String>,
    /// Stop with an error after this many bad steps in a row (a non-finite loss or gradient
    /// norm; see [`Step::finite`]); each bad step is skipped. At least 1.
    pub max_bad_steps: u64,
}

/// The default of [`TrainerConfig::max_bad_steps`].
pub const DEFAULT_MAX_BAD_STEPS: u64 = 5;

impl TrainerConfig {
    /// `steps` steps seeded with `seed`: a log line every 50 steps, state only at the end, no
    /// run directory, no progress bar, the `loss` metric on the bar.
    pub fn new(steps: u64, seed: u64) -> Self {
        Self {
            steps,
            seed,
            log_every: 50,
            checkpoint_every: 0,
            run_dir: None,
            resume: false,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            stop_after: None,
            metadata: HashMap::new(),
            throughput: None,
            bar_metrics: vec!["loss".into()],
            max_bad_steps: DEFAULT_MAX_BAD_STEPS,
        }
    }
}

/// What a call of [`Trainer::run`] ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Steps completed.
    pub step: u64,
    /// Whether it stopped on request before `steps` (or `stop_after`).
    pub interrupted: bool,
    /// The values of the last metrics line written in this call (empty if none).
    pub last: Metrics,
    /// Wall time of this call.
    pub seconds: f64,
    /// Bad steps (non-finite loss or gradient norm) skipped in this call.
    pub bad_steps: u64,
}

/// A set of named modules and how to run them. See the module docs.
#[derive(Debug)]
pub struct Trainer {
    cfg: TrainerConfig,
    modules: Modules,
}

impl Trainer {
    /// A trainer with no modules yet.
    pub fn new(cfg: TrainerConfig) -> Self {
        Self {
            cfg,
            modules: Modules::default(),
        }
    }

    /// Registers `module` under `name` with its optimiser settings; the EMA copy (where asked)
    /// starts as `module.valid()`. Errors on a duplicate or reserved name (`ema`, `adam_m`,
    /// `adam_v`, or one containing `.`).
    pub fn add<M: Module + 'static>(
        &mut self,
        name: &str,
        module: M,
        spec: ModuleSpec,
    ) -> Result<Handle<M>> {
        self.modules.add(name, module, spec)
    }

    /// The modules (after [`Trainer::run`]: the trained weights and EMA).
    pub fn modules(&self) -> &Modules {
        &self.modules
    }

    /// Writes the training state of the end of step `step` into `dir`, then calls
    /// [`Method::saved`].
    fn save(&self, dir: &Path, step: u64, method: &mut dyn Method) -> Result<()> {
        let mut tensors = BTreeMap::new();
        let mut meta = self.cfg.metadata.clone();
        meta.extend([
            (FORMAT_KEY.to_string(), STATE_FORMAT.to_string()),
            ("step".to_string(), step.to_string()),
            ("seed".to_string(), self.cfg.seed.to_string()),
            ("modules".to_string(), self.modules.names().join(",")),
            (
                "prism_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ]);
        self.modules.save(&mut tensors, &mut meta);
        io::save(&dir.join(STATE_FILE), &tensors, meta)?;
        method.saved(&self.modules, dir, step)
    }

    /// Restores the modules from `dir`'s training state; returns its step.
    fn restore(&mut self, dir: &Path, method: &mut dyn Method) -> Result<u64> {
        let path = dir.join(STATE_FILE);
        let ck = io::load(&path)?;
        let bad = |reason: String| Error::Checkpoint {
            path: path.clone(),
            reason,
        };
        if ck.meta(FORMAT_KEY, &path)? != STATE_FORMAT {
            return Err(bad("not a prism training state".into()));
        }
        let Some(names) = ck.metadata.get("modules") else {
            return Err(bad(
                "written by an older prism (before named modules); it cannot be resumed".into(),
            ));
        };
        let ours = self.modules.names().join(",");
        if *names != ours {
            return Err(bad(format!(
                "holds the modules [{names}], this job trains [{ours}]"
            )));
        }
        let seed = ck.meta_u64("seed", &path)?;
        if seed != self.cfg.seed {
            return Err(bad(format!(
                "was trained with seed {seed}, this job has seed {}; resume with the same seed",
                self.cfg.seed
            )));
        }
        method.check_resume(&ck, &path)?;
        self.modules.restore(&ck, &path)?;
        ck.meta_u64("step", &path)
    }

    /// Runs (or, with [`TrainerConfig::resume`], continues) the job: steps until `steps` (or
    /// `stop_after`, or the stop flag), a metrics line every `log_every` steps, the training
    /// state every `checkpoint_every` steps and at the end.
    ///
    /// A bad step (the method marked it with [`Step::finite`] or a non-finite gradient norm in
    /// [`Step::update`]) is skipped: updates it applied before it went bad are rolled back (with
    /// several modules; see [`Modules::snapshot`]), its metrics are dropped, the log line counts it as
    /// `bad_steps`, a warning goes to stderr, and no periodic checkpoint is written until a good
    /// step follows (the state before a bad step is suspect). After `max_bad_steps` bad steps
    /// in a row the run stops with an error and writes nothing, so the last periodic
    /// checkpoint stays as it was.
    pub fn run(&mut self, method: &mut dyn Method) -> Result<Outcome> {
        self.run_with(method, &Single)
    }

    /// [`Trainer::run`] as one of the ranks of `collective` (data-parallel training): every rank
    /// runs the same steps (the method shards its batch, [`Step::update`] averages gradients),
    /// all ranks restore a resume from the same files, and only rank 0 writes (training state,
    /// the method's `saved` files, metrics, progress bar). The ranks agree each step on whether
    /// to stop (a signal may reach them at different steps), so they stop at the same step.
    pub fn run_with(
        &mut self,
        method: &mut dyn Method,
        collective: &dyn Collective,
    ) -> Result<Outcome> {
        let writer = collective.rank() == 0;
        let dir = self.cfg.run_dir.clone();
        if let Some(d) = dir.as_ref().filter(|_| writer) {
            std::fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
            // Half-written files of a killed run: the finished files beside them are intact.
            for name in crate::fsutil::remove_stale_temporaries(d)? {
                eprintln!(
                    "removed '{name}', left in '{}' by an interrupted write",
                    d.display()
                );
            }
        }
        let metrics_path = dir
            .as_ref()
            .filter(|_| writer)
            .map(|d| d.join(METRICS_FILE));
        let mut step = 0;
        if self.cfg.resume {
            let d = dir
                .as_ref()
                .ok_or_else(|| Error::invalid("resuming needs a run directory"))?;
            step = self.restore(d, method)?;
            if let Some(p) = &metrics_path {
                metrics::truncate_after(p, step)?;
            }
        } else if let Some(p) = &metrics_path {
            std::fs::remove_file(p).ok();
        }

        method.begin(&self.modules, step)?;
        let c = self.cfg.clone();
        let end = c.stop_after.map_or(c.steps, |s| s.min(c.steps));
        let bar = if c.progress && writer {
            ProgressBar::new(c.steps)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} ETA {eta}",
            )
            .expect("valid template"),
        );
        bar.set_position(step);

        let started = Instant::now();
        let mut window = Window::new();
        let mut last = Metrics::new();
        let mut interrupted = false;
        let (mut bad_in_row, mut bad_in_window, mut bad_total) = (0u64, 0u64, 0u64);
        let mut last_saved: Option<u64> = None;
        while step < end {
            if collective.any(c.stop.load(Ordering::SeqCst))? {
                interrupted = true;
                break;
            }
            // With several modules, a step may update one and then go bad in the next: the
            // copy taken here rolls every module back, so a skipped step changes nothing.
            let before = (self.modules.len() > 1).then(|| self.modules.snapshot());
            let mut ctx = Step {
                modules: &mut self.modules,
                collective,
                index: step,
                seed: c.seed,
                updated: false,
                bad: None,
            };
            let result = method.step(&mut ctx);
            let (bad, updated) = (ctx.bad.take(), ctx.updated);
            if bad.is_some()
                && updated
                && let Some(before) = before
            {
                self.modules = before;
            }
            let metrics = match (result, bad) {
                (_, Some(why)) => {
                    bad_in_row += 1;
                    bad_in_window += 1;
                    bad_total += 1;
                    if bad_in_row >= c.max_bad_steps.max(1) {
                        bar.finish_and_clear();
                        let kept = match (&dir, last_saved) {
                            (Some(d), Some(s)) => format!(
                                "; nothing was saved after step {s}: the checkpoint in '{}' is kept",
                                d.display()
                            ),
                            (Some(d), None) if self.cfg.resume => format!(
                                "; nothing was saved: the checkpoint in '{}' is kept",
                                d.display()
                            ),
                            _ => "; nothing was saved".to_string(),
                        };
                        return Err(Error::invalid(format!(
                            "training diverged: {bad_in_row} bad steps in a row, the last at step {}: {why}; {}{kept}",
                            step + 1,
                            method.divergence_hint(),
                        )));
                    }
                    bar.suspend(|| {
                        eprintln!(
                            "warning: step {} skipped ({bad_in_row} in a row): {why}",
                            step + 1
                        )
                    });
                    None
                }
                (Ok(m), None) => {
                    bad_in_row = 0;
                    Some(m)
                }
                (Err(e), None) => return Err(e),
            };
            let lrs: Vec<(String, f64)> = self.modules.lrs(step).collect();
            step += 1;
            if let Some(m) = metrics {
                window.add(m);
            }

            bar.set_position(step);
            let means = window.means();
            let mut msg: Vec<String> = c
                .bar_metrics
                .iter()
                .filter_map(|k| means.get(k).map(|v| format!("{k} {v:.4}")))
                .collect();
            if let Some((name, n)) = &c.throughput {
                msg.push(format!("{:.1} {name}/s", window.per_s(*n)));
            }
            if bad_total > 0 {
                msg.push(format!("{bad_total} bad steps skipped"));
            }
            bar.set_message(msg.join(" "));
            let done = step == end;
            if step % c.log_every.max(1) == 0 || done {
                let mut values = means;
                values.extend(lrs);
                if let Some((name, n)) = &c.throughput {
                    values.insert(format!("{name}_per_s"), window.per_s(*n));
                }
                if bad_in_window > 0 {
                    values.insert("bad_steps".to_string(), bad_in_window as f64);
                }
                if let Some(p) = &metrics_path {
                    let line = MetricsLine {
                        step,
                        elapsed_s: started.elapsed().as_secs_f64(),
                        values: values.clone(),
                    };
                    metrics::append(p, &line)?;
                }
                last = values;
                window = Window::new();
                bad_in_window = 0;
            }
            if let Some(d) = dir.as_ref().filter(|_| writer)
                && !done
                && c.checkpoint_every > 0
                && step % c.checkpoint_every == 0
                && bad_in_row == 0
            {
                self.save(d, step, method)?;
                last_saved = Some(step);
            }
            let modules = &self.modules;
            bar.suspend(|| method.after_step(modules, step, done))?;
        }
        bar.finish_and_clear();
        if let Some(d) = dir.as_ref().filter(|_| writer) {
            self.save(d, step, method)?;
        }
        Ok(Outcome {
            step,
            interrupted,
            last,
            seconds: started.elapsed().as_secs_f64(),
            bad_steps: bad_total,
        })
    }
}
