//! `prism classifier`: trains the feature network for KID/FID/precision-recall on a labelled set
//! and reports its test accuracy.

use anyhow::{Context, Result};
use prism::data::{DataConfig, Fit};
use prism::nn::ClassifierConfig;
use prism::train::{ClassifierTraining, train_classifier};

use crate::args::ClassifierArgs;

fn data(path: &std::path::Path, size: usize, channels: usize, flip: bool) -> DataConfig {
    DataConfig {
        path: path.to_path_buf(),
        image_size: size,
        channels,
        fit: Fit::Pad,
        background: [0, 0, 0],
        held_out: 0,
        load_size: None,
        random_flip: flip,
        limit: 0,
        lazy: false,
        context: None,
    }
}

pub fn run(a: ClassifierArgs) -> Result<()> {
    super::check_extension("--out", &a.out, "safetensors", "the classifier's weights")?;
    anyhow::ensure!(a.epochs > 0, "--epochs must be at least 1");
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    anyhow::ensure!(
        a.lr.is_finite() && a.lr > 0.0,
        "--lr must be a positive finite number, got {}",
        a.lr
    );
    let channels = a.channels;
    let train = data(&a.data, a.image_size, channels, true);
    let test = data(&a.test, a.image_size, channels, false);
    let job = ClassifierTraining {
        train,
        test,
        config: ClassifierConfig {
            channels,
            image_size: a.image_size,
            ..ClassifierConfig::default()
        },
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        warmup_steps: 200,
        weight_decay: 1e-4,
        seed: a.seed,
        out: a.out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        progress: !a.quiet,
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating '{}'", dir.display()))?;
    }
    let r = train_classifier(&job)?;
    println!(
        "test accuracy {:.2}% on {} images ({} training images, {} steps, final epoch loss {:.4}, {:.0} s)",
        100.0 * r.test_accuracy,
        r.test_images,
        r.train_images,
        r.steps,
        r.final_loss,
        r.seconds
    );
    println!("wrote {}", a.out.display());
    Ok(())
}
