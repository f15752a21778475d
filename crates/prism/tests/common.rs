//! Helpers shared by the integration tests.

use std::path::PathBuf;

use prism::config::ExperimentConfig;

/// The bundled Fashion-MNIST test split.
pub fn fashion_mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fashion-mnist/t10k-images-idx3-ubyte.gz")
}

/// A config from the shipped preset with a few fields replaced.
pub fn preset(name: &str) -> ExperimentConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    let mut cfg = ExperimentConfig::load(&path).expect("preset parses");
    cfg.data.path = fashion_mnist();
    cfg
}

/// A preset shrunk for a quick training test: `limit` Fashion-MNIST images resized to 16×16, the
/// last `held_out` of them held out.
pub fn tiny_preset(name: &str, limit: usize, held_out: usize) -> ExperimentConfig {
    let mut cfg = preset(name);
    cfg.data.image_size = 16;
    cfg.data.fit = prism::data::Fit::Resize;
    cfg.data.limit = limit;
    cfg.data.held_out = held_out;
    cfg
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-test-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
