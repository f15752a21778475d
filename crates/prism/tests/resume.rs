//! Exact resume: 2N steps straight equal N steps, a stop, and N resumed steps — weights, EMA and
//! optimiser moments identical to the bit. Also: checkpoints load for sampling, and bad input
//! gets errors that name what is wrong.

mod common;

use common::{quiet, take_turn};
use prism::io::{host_params, load as load_checkpoint};
use prism::run::train;

fn tiny() -> prism::config::ExperimentConfig {
    let mut cfg = common::tiny_preset("fashion-mnist-cond.toml", 300, 50);
    cfg.data.random_flip = true;
    common::small_unet(&mut cfg, &[1]).own.dropout = vec![0.0, 0.2];
    common::short_run(&mut cfg, 8, 6);
    cfg.train.warmup_steps = 2;
    cfg.train.log_every = 2;
    cfg.sample.num = 4;
    cfg.sample.steps = 3;
    cfg
}

#[test]
fn resumed_run_equals_straight_run() {
    let _turn = take_turn();
    let cfg = tiny();
    let straight = common::temp_dir("straight");
    let out = train(&cfg, &quiet(&straight)).unwrap();
    assert_eq!(out.step, 6);

    let split = common::temp_dir("split");
    let mut first = quiet(&split);
    first.stop_after = Some(3);
    assert_eq!(train(&cfg, &first).unwrap().step, 3);
    let mut second = quiet(&split);
    second.resume = true;
    assert_eq!(train(&cfg, &second).unwrap().step, 6);

    let (a, b) = common::same_state(&straight, &split, "train_state.safetensors");
    assert_eq!(a.metadata.get("step"), b.metadata.get("step"));
    // metrics.jsonl has each logged step once
    assert_eq!(common::logged_steps(&split), vec![2, 3, 4, 6]);
    std::fs::remove_dir_all(&straight).ok();
    std::fs::remove_dir_all(&split).ok();
}

#[test]
fn model_file_loads_and_samples() {
    let _turn = take_turn();
    let cfg = tiny();
    let dir = common::temp_dir("modelfile");
    let mut o = quiet(&dir);
    o.stop_after = Some(1);
    train(&cfg, &o).unwrap();
    let device = prism::default_device();
    let (loaded_cfg, model, step) =
        prism::run::load_model(&dir.join("model.safetensors"), &device).unwrap();
    assert_eq!(step, 1);
    assert_eq!(loaded_cfg.model, cfg.model);
    let ema = load_checkpoint(&dir.join("train_state.safetensors"))
        .unwrap()
        .with_prefix("ema.model");
    assert_eq!(host_params(&model), ema);
    let process = loaded_cfg.process.build().unwrap();
    let request = prism::sample::Generate {
        kind: prism::sample::SamplerKind::DpmPp2m,
        steps: 3,
        spacing: prism::sample::Spacing::default(),
        shape: [2, 1, 16, 16],
        cond: prism::nn::Condition::from_labels(&[0, 1], &device),
        guidance: 2.0,
        guidance_interval: None,
        clip_x0: true,
        seed: 0,
    };
    let imgs = prism::sample::generate(&model, process.as_ref(), &request, &device, &mut |_, _| {})
        .unwrap();
    assert_eq!(imgs.dims(), [2, 1, 16, 16]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_inputs_get_named_errors() {
    let dir = common::temp_dir("errors");
    // unknown key
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/fashion-mnist.toml"),
    )
    .unwrap()
    .replace("lr = ", "learning_rate = 1.0\nlr = ");
    let e = prism::config::ExperimentConfig::from_toml(&text, Some(std::path::Path::new("x.toml")))
        .unwrap_err();
    let msg = format!("{e}");
    assert!(
        msg.contains("learning_rate") && msg.contains("x.toml"),
        "{msg}"
    );
    // corrupt checkpoint
    let bad = dir.join("model.safetensors");
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let e = prism::run::load_model(&bad, &prism::default_device()).unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");
    // corrupt image in a folder
    let imgs = dir.join("images");
    std::fs::create_dir_all(&imgs).unwrap();
    std::fs::write(imgs.join("broken.png"), b"\x89PNG\r\n\x1a\nnope").unwrap();
    let mut cfg = tiny();
    cfg.data.path = imgs.clone();
    let e = cfg.data.load().unwrap_err();
    assert!(e.to_string().contains("broken.png"), "{e}");
    // missing data
    cfg.data.path = dir.join("nowhere");
    let e = cfg.data.load().unwrap_err();
    assert!(e.to_string().contains("nowhere"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
