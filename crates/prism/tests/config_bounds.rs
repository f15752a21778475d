//! Every number is checked at the config boundary (finite, in range), with errors that name the
//! key; and every shipped preset survives the checkpoint metadata path (JSON) unchanged.

use std::path::{Path, PathBuf};

use prism::config::ExperimentConfig;
use prism::objective::Weighting;
use prism::run::autoencoder::AeConfig;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn presets() -> Vec<PathBuf> {
    let dirs = [configs_dir(), configs_dir().join("experiments")];
    let mut paths: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    paths.sort();
    paths
}

/// What a model file's `config` metadata holds is what was trained: write and read back every
/// preset as the checkpoint metadata does (serde_json), and as `config.toml`.
#[test]
fn every_preset_round_trips_through_checkpoint_metadata() {
    let paths = presets();
    assert!(paths.len() >= 10, "{paths:?}");
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        if AeConfig::is_autoencoder_toml(&text) {
            let cfg = AeConfig::load(&path).unwrap();
            let json = serde_json::to_string(&cfg).unwrap();
            let back: AeConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, cfg, "{} changes through JSON", path.display());
            back.validate().unwrap();
            let toml_back =
                AeConfig::from_toml(&cfg.to_toml(), Some(Path::new("config.toml"))).unwrap();
            assert_eq!(toml_back, cfg, "{} changes through TOML", path.display());
            continue;
        }
        let cfg = ExperimentConfig::load(&path).unwrap();
        let json = serde_json::to_string(&cfg).unwrap();
        let back: ExperimentConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg, "{} changes through JSON", path.display());
        back.validate().unwrap();
        let toml_back =
            ExperimentConfig::from_toml(&cfg.to_toml(), Some(Path::new("config.toml"))).unwrap();
        assert_eq!(toml_back, cfg, "{} changes through TOML", path.display());
    }
}

fn base() -> ExperimentConfig {
    ExperimentConfig::load(&configs_dir().join("fashion-mnist-cond.toml")).unwrap()
}

fn rejects(what: &str, key: &str, edit: impl FnOnce(&mut ExperimentConfig)) {
    let mut cfg = base();
    edit(&mut cfg);
    let e = cfg
        .validate()
        .err()
        .unwrap_or_else(|| panic!("{what} is accepted"))
        .to_string();
    assert!(
        e.contains(key),
        "{what}: the error does not name {key}: {e}"
    );
}

#[test]
fn non_finite_and_out_of_range_numbers_are_rejected_with_the_key() {
    rejects("lr = inf", "train.lr", |c| c.train.lr = f64::INFINITY);
    rejects("lr = nan", "train.lr", |c| c.train.lr = f64::NAN);
    rejects("lr = 0", "train.lr", |c| c.train.lr = 0.0);
    rejects("grad_clip = inf", "train.grad_clip", |c| {
        c.train.grad_clip = Some(f64::INFINITY)
    });
    rejects("ema_decay = nan", "train.ema_decay", |c| {
        c.train.ema_decay = f64::NAN
    });
    rejects("cond_drop_prob = nan", "train.cond_drop_prob", |c| {
        c.train.cond_drop_prob = f64::NAN
    });
    rejects("beta1 = 1", "train.adamw.beta1", |c| {
        c.train.adamw.beta1 = 1.0
    });
    rejects("beta1 = -0.1", "train.adamw.beta1", |c| {
        c.train.adamw.beta1 = -0.1
    });
    rejects("beta2 = nan", "train.adamw.beta2", |c| {
        c.train.adamw.beta2 = f64::NAN
    });
    rejects("beta2 = 1.5", "train.adamw.beta2", |c| {
        c.train.adamw.beta2 = 1.5
    });
    rejects("eps = 0", "train.adamw.eps", |c| c.train.adamw.eps = 0.0);
    rejects("eps = inf", "train.adamw.eps", |c| {
        c.train.adamw.eps = f64::INFINITY
    });
    rejects("weight_decay < 0", "train.adamw.weight_decay", |c| {
        c.train.adamw.weight_decay = -1e-4
    });
    rejects("max_bad_steps = 0", "train.max_bad_steps", |c| {
        c.train.max_bad_steps = 0
    });
    rejects("bias = nan", "objective.weighting.bias", |c| {
        c.objective.weighting = Weighting::Sigmoid { bias: f64::NAN }
    });
    rejects("bias = -inf", "objective.weighting.bias", |c| {
        c.objective.weighting = Weighting::Sigmoid {
            bias: f64::NEG_INFINITY,
        }
    });
    rejects("guidance = nan", "sample.guidance", |c| {
        c.sample.guidance = f64::NAN
    });
    rejects("guidance = inf", "sample.guidance", |c| {
        c.sample.guidance = f64::INFINITY
    });
    rejects("guidance < 0", "sample.guidance", |c| {
        c.sample.guidance = -1.0
    });
}

#[test]
fn non_finite_numbers_in_toml_are_rejected_with_the_key() {
    let text = std::fs::read_to_string(configs_dir().join("fashion-mnist-cond.toml")).unwrap();
    for (from, to, key) in [
        ("lr = ", "lr = inf\n#", "train.lr"),
        ("guidance = ", "guidance = nan\n#", "sample.guidance"),
        (
            "[train]",
            "[train.adamw]\nbeta2 = 1.0\n[train]",
            "train.adamw.beta2",
        ),
        ("logsnr_min = -15.0", "logsnr_min = -inf", "logsnr_min"),
    ] {
        assert!(text.contains(from), "{from}");
        let edited = text.replacen(from, to, 1);
        let e = ExperimentConfig::from_toml(&edited, Some(Path::new("x.toml")))
            .err()
            .unwrap_or_else(|| panic!("{to} is accepted"))
            .to_string();
        assert!(e.contains(key) && e.contains("x.toml"), "{to}: {e}");
    }
}
