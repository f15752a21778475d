//! A two-stage cascade on real data: a base model at 8×8 and a super-resolution stage 8→16
//! trained on Fashion-MNIST, sampled as a pipeline from the upper stage's checkpoint (which names
//! its base) and from a pipeline file; after 60 steps the upper stage follows its low-resolution
//! input (a dark input gives darker outputs than a light one, by more than 0.5 on average).

mod common;

use std::path::Path;

use prism::config::ExperimentConfig;
use prism::nn::Condition;
use prism::pipeline::Pipeline;
use prism::run::{TrainOptions, train};
use prism::stage::StageConfig;

fn tiny(image_size: usize) -> ExperimentConfig {
    let mut cfg = common::tiny_preset("fashion-mnist.toml", 200, 20);
    cfg.data.image_size = image_size;
    common::small_unet(&mut cfg, &[]).core.base_channels = 8;
    common::short_run(&mut cfg, 4, 3);
    cfg.sample.num = 2;
    cfg.sample.steps = 2;
    cfg
}

fn run(cfg: &ExperimentConfig, dir: &Path, pictures: bool) {
    let mut o = TrainOptions::new(dir);
    o.progress = false;
    o.pictures = pictures;
    train(cfg, &o).unwrap();
}

/// Writes a pipeline file with one `[[stage]]` per checkpoint.
fn pipeline_file(path: &Path, checkpoints: &[&Path]) -> std::path::PathBuf {
    let text: String = checkpoints
        .iter()
        .map(|c| format!("[[stage]]\ncheckpoint = {:?}\n", c.display().to_string()))
        .collect();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn base_and_super_resolution_stage_sample_as_a_pipeline() {
    let device = prism::default_device();
    let root = common::temp_dir("cascade");
    let base_dir = root.join("base");
    run(&tiny(8), &base_dir, false);
    let base_model = base_dir.join("model.safetensors");

    let mut sr = tiny(16);
    sr.stage = StageConfig::SuperResolution {
        factor: 2,
        base: Some(base_model.clone()),
        noise_aug_max: 0.0,
        noise_aug: 0.0,
    };
    sr.model.net.core_mut().cond_channels = 1;
    sr.train.steps = 60;
    sr.train.batch_size = 8;
    sr.validate().unwrap();
    let sr_dir = root.join("sr");
    // With pictures: the grid refines the first training images pooled to 8×8.
    run(&sr, &sr_dir, true);
    assert!(sr_dir.join("samples.png").exists());
    let sr_model = sr_dir.join("model.safetensors");

    // The upper stage's checkpoint names its base: sampling it runs both.
    let pipeline = Pipeline::from_checkpoint(&sr_model, &device).unwrap();
    assert_eq!(pipeline.stages.len(), 2);
    assert_eq!(pipeline.stages[0].0.cfg.data.image_size, 8);
    let none = Condition::none();
    let a = pipeline
        .generate(3, &none, 5, &device, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    assert_eq!(a.dims(), [3, 1, 16, 16]);
    let a = prism::tensor::to_vec(a);
    assert!(a.iter().all(|v| v.is_finite()));

    // The same cascade from a pipeline file.
    let from_file = Pipeline::from_file(
        &pipeline_file(&root.join("cascade.toml"), &[&base_model, &sr_model]),
        &device,
    )
    .unwrap();
    let b = from_file
        .generate(3, &none, 5, &device, &mut |_, _| {}, &mut |_, _| {})
        .unwrap();
    assert_eq!(a, prism::tensor::to_vec(b));

    // The upper stage follows its input: other low-resolution images, other outputs.
    let (stage, sampling) = &pipeline.stages[1];
    let low = burn::tensor::Tensor::<4>::zeros([2, 1, 8, 8], &device);
    let go = |low: burn::tensor::Tensor<4>| {
        prism::tensor::to_vec(
            stage
                .generate(2, sampling, &none, Some(low), 1, &device, &mut |_, _| {})
                .unwrap(),
        )
    };
    let (dark, light) = (go(low.clone() - 1.0), go(low + 1.0));
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        mean(&light) - mean(&dark) > 0.5,
        "{} vs {}",
        mean(&light),
        mean(&dark)
    );

    // A stage cannot follow one of the wrong size, and an upper stage alone needs its base.
    let wrong = root.join("wrong.toml");
    std::fs::write(
        &wrong,
        format!(
            "[[stage]]\ncheckpoint = {:?}\n[[stage]]\ncheckpoint = {:?}\n",
            sr_model.display().to_string(),
            sr_model.display().to_string()
        ),
    )
    .unwrap();
    let e = Pipeline::from_file(&wrong, &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be a base model"), "{e}");
    let e = stage
        .generate(2, sampling, &none, None, 1, &device, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs the images of the stage below"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}
