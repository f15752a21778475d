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

/// A Laplacian model with one network per resolution (16², 8² and 4² states here): every network
/// trains (each has its AdamW moments), the resume is exact, and the inference file loads with its
/// three networks, samples with DDPM and DPM-Solver++ and evaluates; a process at one resolution
/// refuses per-resolution networks.
#[test]
fn per_resolution_laplacian_model_resumes_exactly_and_samples() {
    use prism::denoiser::Networks;
    use prism::process::ProcessConfig;
    use prism::sample::SamplerKind;
    let _turn = take_turn();
    let mut cfg = common::tiny_preset("fashion-mnist-laplacian.toml", 300, 50);
    if let ProcessConfig::Laplacian { image_size, .. } = &mut cfg.process {
        *image_size = 16;
    }
    common::small_unet(&mut cfg, &[]);
    cfg.model.networks = Networks::PerResolution;
    common::short_run(&mut cfg, 8, 6);
    cfg.train.warmup_steps = 2;
    cfg.train.log_every = 2;
    cfg.sample.num = 4;
    cfg.sample.steps = 3;
    let straight = common::temp_dir("lap-straight");
    assert_eq!(train(&cfg, &quiet(&straight)).unwrap().step, 6);
    let split = common::temp_dir("lap-split");
    let mut first = quiet(&split);
    first.stop_after = Some(3);
    assert_eq!(train(&cfg, &first).unwrap().step, 3);
    let mut second = quiet(&split);
    second.resume = true;
    assert_eq!(train(&cfg, &second).unwrap().step, 6);
    let (state, _) = common::same_state(&straight, &split, "train_state.safetensors");
    for net in ["net.", "lower.0.", "lower.1."] {
        for module in ["model.", "ema.model.", "adam_m.model.", "adam_v.model."] {
            let prefix = format!("{module}{net}");
            assert!(
                state.tensors.keys().any(|k| k.starts_with(&prefix)),
                "no {prefix}* in the training state"
            );
        }
    }

    let device = prism::default_device();
    let (loaded, model, _) =
        prism::run::load_model(&straight.join("model.safetensors"), &device).unwrap();
    assert_eq!(loaded.model.networks, Networks::PerResolution);
    assert_eq!(model.num_networks(), 3);
    let process = loaded.process.build().unwrap();
    for kind in [SamplerKind::Ddpm, SamplerKind::DpmPp2m] {
        let request = prism::sample::Generate {
            kind,
            steps: 6,
            spacing: prism::sample::Spacing::default(),
            shape: [2, 1, 16, 16],
            cond: prism::nn::Condition::none(),
            guidance: 1.0,
            guidance_interval: None,
            clip_x0: true,
            seed: 0,
        };
        let imgs =
            prism::sample::generate(&model, process.as_ref(), &request, &device, &mut |_, _| {})
                .unwrap();
        assert_eq!(imgs.dims(), [2, 1, 16, 16]);
        assert!(prism::tensor::to_vec(imgs).iter().all(|v| v.is_finite()));
    }
    let (train_set, held_out) = loaded.data.load().unwrap().split(loaded.data.held_out);
    let rows = prism::eval::denoise_mse(
        &model,
        process.as_ref(),
        &loaded.model_input().unwrap(),
        &held_out,
        &train_set.mean_image().unwrap(),
        &[0.2, 0.5, 0.8],
        8,
        0,
        &device,
    )
    .unwrap();
    assert!(rows.iter().all(|r| r.model.is_finite() && r.model > 0.0));

    let mut gaussian = tiny();
    gaussian.model.networks = Networks::PerResolution;
    let e = gaussian.validate().unwrap_err().to_string();
    assert!(e.contains("per_resolution") && e.contains("shared"), "{e}");
    std::fs::remove_dir_all(&straight).ok();
    std::fs::remove_dir_all(&split).ok();
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
