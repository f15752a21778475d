//! The generic trainer with two networks and two optimisers: a tiny generator and discriminator
//! (least-squares GAN on a closed-form target, the Gaussian N((1, −2), 0.5² I)) updated
//! alternately within each step — the discriminator first, then the generator through the
//! updated discriminator. 2N steps straight equal N steps, a stop, and N resumed steps: every
//! tensor of the training state (both networks, the generator's EMA, both optimisers' moments)
//! identical to the bit, with the moments keyed by module name.

mod common;

use std::path::Path;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use prism::tensor::{normal, scalar, to_vec};
use prism::train::{
    AdamWConfig, Handle, LrSchedule, Metrics, ModuleSpec, Outcome, STATE_FILE, Step, Trainer,
    TrainerConfig, read_metrics,
};

#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    out: Linear,
}

impl Mlp {
    fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(d_in, 16).init(device),
            out: LinearConfig::new(16, d_out).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

const STEPS: u64 = 6;
const BATCH: usize = 16;

/// `BATCH` points `[BATCH, 2]` of N(0, I) from `rng`.
fn gaussian(rng: &mut rand_chacha::ChaCha8Rng, device: &Device) -> Vec<f32> {
    to_vec(normal([BATCH, 2, 1, 1], rng, device))
}

fn points(v: Vec<f32>, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [BATCH, 2]), device)
}

fn spec(generator: bool) -> ModuleSpec {
    if generator {
        ModuleSpec {
            adamw: AdamWConfig::default(),
            lr: LrSchedule::WarmupConstant {
                peak: 1e-2,
                warmup: 2,
            },
            grad_clip: None,
            ema_decay: Some(0.9),
        }
    } else {
        ModuleSpec {
            adamw: AdamWConfig {
                beta1: 0.5,
                weight_decay: 1e-3,
                ..AdamWConfig::default()
            },
            lr: LrSchedule::Constant(5e-3),
            grad_clip: Some(1.0),
            ema_decay: None,
        }
    }
}

/// A trainer of the two networks in `dir` (weights from a seeded generator).
fn trainer(
    dir: &Path,
    stop_after: Option<u64>,
    resume: bool,
) -> (Trainer, Device, [Handle<Mlp>; 2]) {
    let device = prism::default_device().autodiff();
    device.seed(11);
    let mut cfg = TrainerConfig::new(STEPS, 5);
    cfg.run_dir = Some(dir.to_path_buf());
    cfg.log_every = 2;
    cfg.stop_after = stop_after;
    cfg.resume = resume;
    let mut t = Trainer::new(cfg);
    let g = t
        .add("generator", Mlp::new(2, 2, &device), spec(true))
        .unwrap();
    let d = t
        .add("discriminator", Mlp::new(2, 1, &device), spec(false))
        .unwrap();
    (t, device, [g, d])
}

/// Runs the GAN in `dir` (fresh or resumed) up to `stop_after`.
fn run(dir: &Path, stop_after: Option<u64>, resume: bool) -> Outcome {
    let (mut t, device, [g, d]) = trainer(dir, stop_after, resume);
    let mu = [1.0f32, -2.0];
    let mut step = |s: &mut Step<'_>| -> prism::Result<Metrics> {
        let mut rng = s.rng(0);
        let real: Vec<f32> = gaussian(&mut rng, &device)
            .iter()
            .enumerate()
            .map(|(i, v)| mu[i % 2] + 0.5 * v)
            .collect();
        let z = points(gaussian(&mut rng, &device), &device);
        // 1. The discriminator: D(real) → 1, D(G(z)) → 0.
        let fake = s.module(&g).forward(z.clone()).detach();
        let dm = s.module(&d);
        let d_loss = dm
            .forward(points(real, &device))
            .sub_scalar(1.0)
            .powi_scalar(2)
            .mean()
            + dm.forward(fake).powi_scalar(2).mean();
        let grads = d_loss.backward();
        let d_loss = s.finite("d_loss", scalar(d_loss), "lower the rates")?;
        s.update(&d, &grads)?;
        // 2. The generator, through the updated discriminator: D(G(z)) → 1.
        let g_loss = s
            .module(&d)
            .forward(s.module(&g).forward(z))
            .sub_scalar(1.0)
            .powi_scalar(2)
            .mean();
        let grads = g_loss.backward();
        let g_loss = s.finite("g_loss", scalar(g_loss), "lower the rates")?;
        s.update(&g, &grads)?;
        Ok(Metrics::from([
            ("d_loss".to_string(), d_loss),
            ("g_loss".to_string(), g_loss),
        ]))
    };
    t.run(&mut step).unwrap()
}

#[test]
fn two_networks_resume_bit_exactly() {
    let _turn = common::take_turn();
    let straight = common::temp_dir("gan-straight");
    assert_eq!(run(&straight, None, false).step, STEPS);
    let split = common::temp_dir("gan-split");
    assert_eq!(run(&split, Some(STEPS / 2), false).step, STEPS / 2);
    let out = run(&split, None, true);
    assert_eq!(out.step, STEPS);
    assert!(out.last.contains_key("d_loss") && out.last.contains_key("g_loss"));

    let (a, b) = common::same_state(&straight, &split, STATE_FILE);
    for key in [
        "step",
        "optimizer_step.generator",
        "optimizer_step.discriminator",
    ] {
        assert_eq!(a.metadata.get(key), b.metadata.get(key), "{key}");
    }
    assert_eq!(
        a.metadata["optimizer_step.discriminator"],
        STEPS.to_string()
    );
    assert_eq!(a.metadata["modules"], "generator,discriminator");

    // Every tensor is keyed by module: weights, the generator's EMA, both optimisers' moments.
    let count = |prefix: &str| a.tensors.keys().filter(|k| k.starts_with(prefix)).count();
    for module in ["generator", "discriminator"] {
        let params = count(&format!("{module}."));
        assert_eq!(params, 4, "{module}: two weights and two biases");
        assert_eq!(count(&format!("adam_m.{module}.")), params);
        assert_eq!(count(&format!("adam_v.{module}.")), params);
    }
    assert_eq!(count("ema.generator."), 4);
    assert_eq!(count("ema.discriminator."), 0);
    assert_eq!(a.tensors.len(), 4 * 4 + 4 * 3);
    // The two modules' moments differ (they are not one optimiser's state saved twice).
    assert_ne!(
        a.tensors["adam_m.generator.out.bias"].shape,
        a.tensors["adam_m.discriminator.out.bias"].shape
    );
    let (gen_w, ema_w) = (
        &a.tensors["generator.hidden.weight"],
        &a.tensors["ema.generator.hidden.weight"],
    );
    assert_ne!(gen_w.data, ema_w.data, "the EMA lags the online weights");

    // metrics.jsonl: each logged step once, with both losses and both learning rates.
    let lines = read_metrics(&split.join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.iter().map(|l| l.step).collect::<Vec<_>>(),
        [2, 3, 4, 6]
    );
    let last = lines.last().unwrap();
    assert_eq!(last.get("lr.discriminator"), Some(5e-3));
    assert_eq!(last.get("lr.generator"), Some(1e-2));
    assert!(last.get("g_loss").is_some_and(f64::is_finite));

    std::fs::remove_dir_all(&straight).ok();
    std::fs::remove_dir_all(&split).ok();
}

#[test]
fn resuming_with_other_modules_or_names_is_an_error() {
    let _turn = common::take_turn();
    let dir = common::temp_dir("gan-other");
    run(&dir, Some(1), false);
    let device = prism::default_device().autodiff();
    let mut cfg = TrainerConfig::new(STEPS, 5);
    cfg.run_dir = Some(dir.clone());
    cfg.resume = true;
    let mut t = Trainer::new(cfg);
    t.add("generator", Mlp::new(2, 2, &device), spec(true))
        .unwrap();
    let mut nothing = |_: &mut Step<'_>| -> prism::Result<Metrics> { Ok(Metrics::new()) };
    let e = t.run(&mut nothing).unwrap_err().to_string();
    assert!(e.contains("discriminator") && e.contains(STATE_FILE), "{e}");
    for bad in ["ema", "adam_m", "a.b", "", "generator"] {
        assert!(
            t.add(bad, Mlp::new(2, 2, &device), spec(true)).is_err(),
            "'{bad}' accepted"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A step that updates the discriminator and then goes bad (a non-finite generator loss) is
/// rolled back as a whole: the discriminator's update of that step is undone with it.
#[test]
fn a_bad_step_rolls_back_the_updates_it_applied() {
    let _turn = common::take_turn();
    let dir = common::temp_dir("gan-rollback");
    let (mut t, device, [g, d]) = trainer(&dir, None, false);
    let mut step = |s: &mut Step<'_>| -> prism::Result<Metrics> {
        let mut rng = s.rng(0);
        let z = points(gaussian(&mut rng, &device), &device);
        let d_loss = s.module(&d).forward(z.clone()).powi_scalar(2).mean();
        let grads = d_loss.backward();
        s.update(&d, &grads)?;
        let g_loss = s.module(&g).forward(z).mean();
        let value = if s.index() == 2 {
            f64::NAN
        } else {
            scalar(g_loss.clone())
        };
        s.finite("g_loss", value, "a test")?;
        let grads = g_loss.backward();
        s.update(&g, &grads)?;
        Ok(Metrics::from([("g_loss".to_string(), value)]))
    };
    let out = t.run(&mut step).unwrap();
    assert_eq!((out.step, out.bad_steps), (STEPS, 1));
    assert_eq!(
        t.modules().updates(&d),
        STEPS - 1,
        "step 3's update was undone"
    );
    assert_eq!(t.modules().updates(&g), STEPS - 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// A change made outside the optimiser ([`Step::map_module`]: every discriminator weight + 1 each
/// step) is kept like an update, and rolled back with the step when it goes bad afterwards.
#[test]
fn a_change_outside_the_optimiser_is_kept_and_rolled_back_with_its_step() {
    let _turn = common::take_turn();
    let dir = common::temp_dir("gan-map-module");
    let (mut t, _device, [g, d]) = trainer(&dir, None, false);
    let before = prism::io::host_params(t.modules().get(&d));
    let mut step = |s: &mut Step<'_>| -> prism::Result<Metrics> {
        s.map_module(&d, |m| prism::io::map_params(m, |_, w| w.add_scalar(1.0)));
        let value = if s.index() == 2 { f64::NAN } else { 0.0 };
        s.finite("loss", value, "a test")?;
        Ok(Metrics::new())
    };
    let out = t.run(&mut step).unwrap();
    assert_eq!((out.step, out.bad_steps), (STEPS, 1));
    let after = prism::io::host_params(t.modules().get(&d));
    for (name, w) in &before {
        for (a, b) in w.data.iter().zip(&after[name].data) {
            assert!(
                (b - a - (STEPS - 1) as f32).abs() < 1e-5,
                "{name}: {a} → {b}"
            );
        }
    }
    assert_eq!(t.modules().updates(&g), 0);
    std::fs::remove_dir_all(&dir).ok();
}
