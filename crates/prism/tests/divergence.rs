//! Divergence keeps work: a non-finite loss or gradient norm skips the step (no update, counted
//! in `metrics.jsonl`), `train.max_bad_steps` bad steps in a row stop the run with an error that
//! says what to change, and the last checkpoint is left as it was. No checkpoint is ever written
//! or read with non-finite weights.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, TensorData};
use prism::io::{HostTensor, load as load_checkpoint};
use prism::run::{TrainOptions, train};
use prism::tensor::scalar;
use prism::train::{
    AdamWConfig, LrSchedule, Metrics, ModuleSpec, STATE_FILE, Step, Trainer, TrainerConfig,
    read_metrics,
};

/// burn's backend generator (weight init, dropout masks) is process-wide: runs take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny() -> prism::config::ExperimentConfig {
    let mut cfg = common::tiny_preset("fashion-mnist-cond.toml", 200, 50);
    common::small_unet(&mut cfg, &[1]);
    cfg.train.batch_size = 4;
    cfg.train.steps = 20;
    cfg.train.warmup_steps = 0;
    cfg.train.log_every = 1;
    cfg.train.checkpoint_every = 2;
    cfg.train.sample_every = 0;
    cfg.sample.num = 4;
    cfg.sample.steps = 3;
    cfg
}

fn quiet(dir: &Path) -> TrainOptions {
    let mut o = TrainOptions::new(dir);
    o.progress = false;
    o.pictures = false;
    o
}

/// Every file of a run directory (not its subdirectories) and its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn all_finite(path: &Path) {
    // `load` itself refuses non-finite files; read the raw values too.
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, view) in st.tensors() {
        assert!(
            view.data()
                .chunks_exact(4)
                .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
            "{} holds non-finite values in '{name}'",
            path.display()
        );
    }
}

#[test]
fn absurd_learning_rate_stops_and_keeps_the_last_checkpoint() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::temp_dir("diverge-lr");
    let cfg = tiny();
    let mut first = quiet(&dir);
    first.stop_after = Some(2);
    assert_eq!(train(&cfg, &first).unwrap().step, 2);
    let before = files(&dir);
    assert!(before.contains_key(STATE_FILE) && before.contains_key("model.safetensors"));

    // The same job resumed with an absurd learning rate: the first update blows the weights
    // up, the losses after it are not finite.
    let mut wild = cfg.clone();
    wild.train.lr = 1e30;
    let mut again = quiet(&dir);
    again.resume = true;
    let e = train(&wild, &again).unwrap_err().to_string();
    assert!(
        e.contains("5 bad steps in a row")
            && e.contains("train.lr")
            && e.contains("train.grad_clip"),
        "{e}"
    );
    assert!(e.contains("step 8"), "names the step: {e}");
    let after = files(&dir);
    for name in [STATE_FILE, "model.safetensors"] {
        assert!(
            before[name] == after[name],
            "{name} changed after the divergence"
        );
        all_finite(&dir.join(name));
    }
    // The bad steps were logged.
    let lines = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    let bad: f64 = lines.iter().filter_map(|l| l.get("bad_steps")).sum();
    assert_eq!(bad, 4.0, "{lines:?}");
    // What was kept still resumes with a sane learning rate.
    let mut resumed = quiet(&dir);
    resumed.resume = true;
    resumed.stop_after = Some(3);
    assert_eq!(train(&cfg, &resumed).unwrap().step, 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn absurd_learning_rate_from_the_start_writes_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::temp_dir("diverge-start");
    let mut cfg = tiny();
    cfg.train.lr = 1e30;
    cfg.train.max_bad_steps = 3;
    let e = train(&cfg, &quiet(&dir)).unwrap_err().to_string();
    assert!(e.contains("3 bad steps in a row"), "{e}");
    assert!(!dir.join(STATE_FILE).exists());
    assert!(!dir.join("model.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[derive(Module, Debug)]
struct Line {
    lin: Linear,
}

/// A generic trainer on a one-parameter fit whose loss is NaN at the steps in `bad` (an injected
/// divergence): those steps are skipped, the others update.
fn injected(bad: &'static [u64], max_bad_steps: u64, dir: &Path) -> prism::Result<u64> {
    let device = prism::default_device().autodiff();
    let mut tc = TrainerConfig::new(10, 3);
    tc.log_every = 5;
    tc.checkpoint_every = 2;
    tc.run_dir = Some(dir.to_path_buf());
    tc.max_bad_steps = max_bad_steps;
    let mut trainer = Trainer::new(tc);
    let h = trainer.add(
        "line",
        Line {
            lin: LinearConfig::new(1, 1).init(&device),
        },
        ModuleSpec {
            adamw: AdamWConfig::default(),
            lr: LrSchedule::WarmupConstant {
                peak: 1e-2,
                warmup: 0,
            },
            grad_clip: None,
            ema_decay: None,
        },
    )?;
    let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [2, 1]), &device);
    trainer.run(&mut |s: &mut Step<'_>| -> prism::Result<Metrics> {
        let y = s.module(&h).lin.forward(x.clone());
        let mut loss = (y - 2.0).powi_scalar(2).mean();
        if bad.contains(&s.index()) {
            loss = loss * f64::NAN;
        }
        let grads = loss.backward();
        let v = s.finite("the loss", scalar(loss), "injected")?;
        s.update(&h, &grads)?;
        Ok(Metrics::from([("loss".to_string(), v)]))
    })?;
    Ok(trainer.modules().updates(&h))
}

#[test]
fn injected_nan_steps_are_skipped_and_counted() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::temp_dir("diverge-inject");
    // Steps 3 and 4 (0-based 2, 3) are bad, fewer than 3 in a row: the run finishes.
    assert_eq!(injected(&[2, 3], 3, &dir).unwrap(), 8);
    let lines = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines[0].get("bad_steps"), Some(2.0));
    assert!(lines[0].loss().is_finite());
    assert_eq!(lines[1].get("bad_steps"), None);
    all_finite(&dir.join(STATE_FILE));

    // Steps 5, 6, 7 bad with max 3: stops at step 7; the checkpoint of step 4 stays.
    let dir2 = common::temp_dir("diverge-inject2");
    let e = injected(&[4, 5, 6], 3, &dir2).unwrap_err().to_string();
    assert!(
        e.contains("the last at step 7") && e.contains("injected"),
        "{e}"
    );
    assert!(e.contains("nothing was saved after step 4"), "{e}");
    let ck = load_checkpoint(&dir2.join(STATE_FILE)).unwrap();
    assert_eq!(ck.metadata["step"], "4");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dir2).ok();
}

#[test]
fn non_finite_weights_are_never_written_nor_loaded() {
    let dir = common::temp_dir("diverge-io");
    let path = dir.join("w.safetensors");
    let mut tensors = BTreeMap::from([(
        "net.w".to_string(),
        HostTensor {
            shape: vec![3],
            data: vec![1.0, f32::NAN, 2.0],
        },
    )]);
    let e = prism::io::save(&path, &tensors, Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("net.w") && e.contains("NaN"), "{e}");
    assert!(!path.exists());

    // A file with an infinite weight written behind prism's back is refused when read,
    // and so is a model file for sampling.
    tensors.get_mut("net.w").unwrap().data[1] = f32::INFINITY;
    let bytes: Vec<u8> = tensors["net.w"]
        .data
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], &bytes).unwrap();
    let raw = safetensors::serialize(vec![("net.w", view)], None).unwrap();
    std::fs::write(&path, raw).unwrap();
    let e = load_checkpoint(&path).unwrap_err().to_string();
    assert!(
        e.contains("w.safetensors") && e.contains("net.w") && e.contains("inf"),
        "{e}"
    );
    let model = dir.join("model.safetensors");
    std::fs::copy(&path, &model).unwrap();
    let e = prism::run::load_model(&model, &prism::default_device())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("net.w"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
