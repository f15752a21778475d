//! Every preset in `configs/` parses and validates, and the blurring process's configuration
//! errors name the key that is wrong.

use std::path::PathBuf;

use prism::config::ExperimentConfig;
use prism::process::ProcessConfig;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn every_preset_parses_and_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let cfg =
            ExperimentConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cfg.process.build().unwrap();
        // Round trip through the serialised form (what checkpoints store).
        assert_eq!(
            ExperimentConfig::from_toml(&cfg.to_toml(), None).unwrap(),
            cfg,
            "{}",
            path.display()
        );
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    for want in [
        "fashion-mnist.toml",
        "fashion-mnist-blur.toml",
        "emoji-64-blur.toml",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
}

fn blur_preset() -> String {
    std::fs::read_to_string(configs_dir().join("fashion-mnist-blur.toml")).unwrap()
}

fn error(text: &str) -> String {
    ExperimentConfig::from_toml(text, None)
        .unwrap_err()
        .to_string()
}

#[test]
fn blurring_preset_has_the_papers_settings() {
    let cfg = ExperimentConfig::from_toml(&blur_preset(), None).unwrap();
    match cfg.process {
        ProcessConfig::Blurring {
            blur_sigma_max,
            min_scale,
            ..
        } => assert_eq!((blur_sigma_max, min_scale), (20.0, 0.001)),
        other => panic!("not blurring: {other:?}"),
    }
    // min_scale and the schedule have defaults (0.001 and the paper's [−10, 10] cosine).
    let minimal = blur_preset().replace("min_scale = 0.001\n", "").replace(
        "schedule = { kind = \"cosine\", logsnr_min = -10.0, logsnr_max = 10.0 }\n",
        "",
    );
    assert_eq!(ExperimentConfig::from_toml(&minimal, None).unwrap(), cfg);
}

#[test]
fn blurring_config_errors_name_the_key() {
    let text = blur_preset();
    let e = error(&text.replace("parameterization = \"eps\"", "parameterization = \"v\""));
    assert!(
        e.contains("needs model.parameterization = \"eps\", got \"v\""),
        "{e}"
    );
    let e = error(&text.replace("sampler = \"ddpm\"", "sampler = \"dpmpp-2m\""));
    assert!(
        e.contains("needs sample.sampler = \"ddpm\"") && e.contains("dpmpp-2m"),
        "{e}"
    );
    let e = error(&text.replace(
        "weighting = { kind = \"mse\" }",
        "weighting = { kind = \"elbo\" }",
    ));
    assert!(e.contains("objective.weighting"), "{e}");
    let e = error(&text.replace("min_scale = 0.001", "min_scale = 0.0"));
    assert!(e.contains("process.min_scale"), "{e}");
    let e = error(&text.replace("blur_sigma_max = 20.0", "blur_sigma_max = -2.0"));
    assert!(e.contains("process.blur_sigma_max"), "{e}");
    let e = error(&text.replace("blur_sigma_max = 20.0", "blur_sigma = 20.0"));
    assert!(e.contains("blur_sigma"), "{e}");
    let e = error(&text.replace("min_scale = 0.001", "min_scale = 0.001\nd_min = 0.001"));
    assert!(e.contains("unknown field `d_min`"), "{e}");
}
