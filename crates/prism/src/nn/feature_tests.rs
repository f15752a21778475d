//! Tests of the feature networks: the Inception-v3 against pytorch-fid's network
//! (`tools/golden_inception.py`) and the classifier's file round trip, both through
//! [`load_feature_net`].

use super::*;
use crate::eval::extract;

fn golden(name: &str) -> serde_json::Value {
    crate::golden_data::load(name)
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    crate::golden_data::f32s(v)
}

/// Each input pipeline (clean-fid `clean`, `legacy_tensorflow` via torch-fidelity, pytorch-fid)
/// against its reference on non-square byte images: the 299×299 input at sampled positions and
/// the 2048-d features with the synthetic weights (`tools/golden_inception_input.py`).
#[test]
fn inception_input_pipelines_match_clean_fid_torch_fidelity_and_pytorch_fid() {
    let g = golden("inception_input.json");
    let device = crate::default_device();
    let shape = crate::golden_data::shape4(&g["shape"]);
    let bytes = floats(&g["images"]);
    let images: Vec<f32> = bytes.iter().map(|b| b / 127.5 - 1.0).collect();
    let images = crate::golden_data::tensor4(&images, shape, &device);
    let net = InceptionV3::new(&mut SyntheticWeights, &device).unwrap();
    let positions: Vec<Vec<usize>> = g["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| floats(p).iter().map(|&v| v as usize).collect())
        .collect();
    for (name, want) in g["modes"].as_object().unwrap() {
        let mode = InceptionInput::parse(name).unwrap();
        let x = mode.prepare(images.clone()).unwrap();
        assert_eq!(x.dims(), [shape[0], 3, 299, 299]);
        let x = crate::tensor::to_vec(x);
        let want_in = floats(&want["input"]);
        for (p, w) in positions.iter().zip(&want_in) {
            let v = x[(p[0] * 299 + p[1]) * 299 + p[2]];
            assert!((v - w).abs() < 2e-5, "{name} input at {p:?}: {v} vs {w}");
        }
        let got =
            crate::tensor::to_vec(net.clone().with_input(mode).embed(images.clone()).unwrap());
        let want: Vec<f32> = want["features"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err < 1e-3 * scale,
            "{name}: max |Δ| {err} vs max |feature| {scale}"
        );
    }
    assert!(InceptionInput::parse("tensorflow").is_err());
}

fn test_images(device: &burn::tensor::Device) -> burn::tensor::Tensor<4> {
    let data: Vec<f32> = (0..2)
        .flat_map(|k| {
            (0..32).flat_map(move |y| {
                (0..32).map(move |x| {
                    let v = 0.5
                        + 0.5 * (0.3 * x as f64 + 0.2 * (k + 1) as f64 * y as f64 + k as f64).sin();
                    (2.0 * v - 1.0) as f32
                })
            })
        })
        .collect();
    burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(data, [2, 1, 32, 32]), device)
}

/// Architecture, BN folding, pooling variants and resize against pytorch-fid's network with the
/// same synthetic weights; then determinism, batch independence and the safetensors path.
#[test]
fn inception_matches_pytorch_fid_with_synthetic_weights() {
    let g = golden("inception.json");
    let u = &g["uniform_check"];
    let name = u["name"].as_str().unwrap();
    for (i, want) in floats(&u["first"]).iter().enumerate() {
        assert_eq!(synthetic_uniform(name, i as u64), *want);
    }
    let device = crate::default_device();
    let net = InceptionV3::new(&mut SyntheticWeights, &device).unwrap();
    let images = test_images(&device);
    assert_eq!(
        InceptionInput::PytorchFid
            .prepare(images.clone())
            .unwrap()
            .dims(),
        [2, 3, 299, 299]
    );
    let got = crate::tensor::to_vec(net.embed(images.clone()).unwrap());
    assert_eq!(got.len(), 2 * 2048);
    let want: Vec<f32> = g["features"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(floats)
        .collect();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-3 * scale, "max |Δ| {err} vs max |feature| {scale}");

    // Deterministic and independent of the batch it is in.
    let again = crate::tensor::to_vec(net.embed(images.clone()).unwrap());
    assert_eq!(got, again);
    let single = crate::tensor::to_vec(net.embed(images.clone().slice(1..2)).unwrap());
    let err1 = single
        .iter()
        .zip(&got[2048..])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err1 < 1e-5 * scale);

    // Through a safetensors file with the pytorch-fid names (what a user supplies).
    let mut tensors = std::collections::BTreeMap::new();
    struct Record<'a>(&'a mut std::collections::BTreeMap<String, crate::io::HostTensor>);
    impl WeightSource for Record<'_> {
        fn tensor(&mut self, name: &str, shape: &[usize]) -> crate::Result<Vec<f32>> {
            let data = SyntheticWeights.tensor(name, shape)?;
            self.0.insert(
                name.to_string(),
                crate::io::HostTensor {
                    shape: shape.to_vec(),
                    data: data.clone(),
                },
            );
            Ok(data)
        }
    }
    InceptionV3::new(&mut Record(&mut tensors), &device).unwrap();
    let dir = std::env::temp_dir().join(format!("prism-inception-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pt_inception.safetensors");
    crate::io::save(&path, &tensors, Default::default()).unwrap();
    let loaded = load_feature_net(&path, &device).unwrap();
    assert_eq!(loaded.dim(), 2048);
    let f = extract(loaded.as_ref(), images, 1).unwrap();
    assert_eq!(f.len(), 2);
    assert!(
        f.data
            .iter()
            .zip(&got)
            .all(|(a, b)| (a - b).abs() < 1e-5 * scale)
    );

    // A file missing a tensor is named in the error.
    tensors.remove("Mixed_6b.branch7x7_2.bn.running_var");
    crate::io::save(&path, &tensors, Default::default()).unwrap();
    let err = load_feature_net(&path, &device).err().unwrap().to_string();
    assert!(err.contains("Mixed_6b.branch7x7_2.bn.running_var"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn classifier_round_trips_through_its_file() {
    let device = crate::default_device();
    device.seed(7);
    let cfg = ClassifierConfig {
        widths: vec![8, 16],
        feature_dim: 12,
        image_size: 16,
        ..ClassifierConfig::default()
    };
    let net = cfg.init(&device).unwrap();
    let dir = std::env::temp_dir().join(format!("prism-classifier-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.safetensors");
    net.save(&path, &[("test_accuracy", "0.5".into())]).unwrap();
    let back = load_feature_net(&path, &device).unwrap();
    assert_eq!(back.dim(), 12);
    let x = crate::tensor::normal(
        [3, 1, 16, 16],
        &mut crate::train::step_rng(1, 0, 0),
        &device,
    );
    let a = extract(&net, x.clone(), 2).unwrap();
    let b = extract(back.as_ref(), x, 3).unwrap();
    assert_eq!(a.len(), 3);
    assert!(
        a.data
            .iter()
            .zip(&b.data)
            .all(|(p, q)| (p - q).abs() < 1e-6)
    );
    // Wrong input size is an error, not a panic.
    let wrong = crate::tensor::normal([1, 1, 8, 8], &mut crate::train::step_rng(1, 0, 0), &device);
    assert!(back.embed(wrong).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// Opt-in (needs the real weights, `bash tools/fetch_inception.sh`): prism's standard Inception
/// against clean-fid's `clean` pipeline and torch-fidelity's TF1-bilinear one on six
/// Fashion-MNIST images (`tools/golden_inception_real.py`). Run with
/// `cargo test --release -p prism --lib -- --ignored inception_real`; `PRISM_INCEPTION` overrides
/// the weights' path.
#[test]
#[ignore = "needs data/inception/inception-2015-12-05.safetensors (tools/fetch_inception.sh)"]
fn inception_real_weights_match_clean_fid_and_torch_fidelity() {
    let path = std::env::var_os("PRISM_INCEPTION")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data/inception/inception-2015-12-05.safetensors")
        });
    assert!(
        path.exists(),
        "{} is missing: run `bash tools/fetch_inception.sh`",
        path.display()
    );
    let g = golden("inception_real.json");
    let device = crate::default_device();
    let shape = crate::golden_data::shape4(&g["shape"]);
    let images: Vec<f32> = floats(&g["images"])
        .iter()
        .map(|b| b / 127.5 - 1.0)
        .collect();
    let images = crate::golden_data::tensor4(&images, shape, &device);
    let net = InceptionV3::load(&path, &device).unwrap();
    assert_eq!(
        net.input(),
        InceptionInput::Clean,
        "the standard file defaults to clean"
    );
    for mode in ["clean", "legacy_tensorflow"] {
        let start = std::time::Instant::now();
        let got = crate::tensor::to_vec(
            net.clone()
                .with_input(InceptionInput::parse(mode).unwrap())
                .embed(images.clone())
                .unwrap(),
        );
        let want: Vec<f32> = g[mode]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "{mode}: max |Δ| {err:.2e}, max |feature| {scale:.3}, {:.2} s for {} images",
            start.elapsed().as_secs_f64(),
            shape[0]
        );
        assert!(
            err < 1e-3 * scale,
            "{mode}: max |Δ| {err} vs max |feature| {scale}"
        );
    }
}
