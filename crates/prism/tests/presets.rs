//! The shipped presets parse, validate and build; old checkpoints still load; model and objective
//! settings of simple diffusion and the blurring process's settings are checked with errors that
//! name the key; a U-ViT with DWT patching and a U-Net with convolutional patching train end to end
//! with the multiscale loss.

mod common;

use std::path::PathBuf;

use prism::config::ExperimentConfig;
use prism::nn::{NetConfig, PatchingConfig, UNetConfig, UViTConfig};
use prism::process::ProcessConfig;
use prism::run::train;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// Every `configs/*.toml` and `configs/experiments/*.toml` parses and validates, and its model
/// builds (parameter count only, no forward pass, to keep the test cheap).
#[test]
fn every_preset_parses_and_builds() {
    let device = prism::default_device();
    let mut names = Vec::new();
    let dirs = [configs_dir(), configs_dir().join("experiments")];
    let entries = dirs.iter().flat_map(|d| std::fs::read_dir(d).unwrap());
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        // Autoencoder presets (the first stage of latent diffusion) are `AeConfig`s.
        let text = std::fs::read_to_string(&path).unwrap();
        if text.lines().any(|l| l.trim() == "[autoencoder]") {
            prism::run::autoencoder::AeConfig::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
            continue;
        }
        let cfg = ExperimentConfig::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let model = cfg.init_model(&device).unwrap();
        let params = burn::module::Module::num_params(&model);
        assert!(
            (100_000..60_000_000).contains(&params),
            "{}: {params} parameters",
            path.display()
        );
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
    let mut want: Vec<String> = [64, 128, 256, 512]
        .iter()
        .map(|d| format!("simple-{d}.toml"))
        .collect();
    want.extend(
        [
            "fashion-mnist.toml",
            "fashion-mnist-blur.toml",
            "emoji-64-blur.toml",
            "fashion-mnist-laplacian.toml",
            "fashion-mnist-laplacian-per-resolution.toml",
            "emoji-64-laplacian.toml",
            "fluent-emoji-sr4.toml",
            "fluent-ae-kl-f8.toml",
            "fluent-ae-vq-f4.toml",
            "fluent-ldm-kl-f8.toml",
            "fluent-ldm-vq-f4.toml",
            "fluent-ldm-kl-f8-xattn.toml",
            "fluent-ldm-kl-f8-inpaint.toml",
        ]
        .map(String::from),
    );
    for w in want {
        assert!(names.contains(&w), "{w} missing: {names:?}");
    }
}

/// Each latent-diffusion preset fits the autoencoder preset whose run it names (`runs/<name>`),
/// checked without the autoencoder being trained: its U-Net takes the autoencoder's latent
/// (`code_channels` channels of `image_size / f`), it reads the same images the same way (size,
/// channels, fit, background, held-out count; the unconditional presets the same folder, so the
/// same images are held out), and it leaves `x̂` unclipped. The cross-attention preset reads the
/// images as the 9 Unicode-category folders of `tools/fetch_data.sh fluent-emoji-categories`
/// through class tokens, with labels dropped for guidance. The inpainting preset's U-Net reads the
/// masked image's latent and the mask beside the state.
#[test]
fn latent_presets_fit_their_autoencoder_presets() {
    use prism::space::SpaceConfig;
    for (name, classes) in [
        ("fluent-ldm-kl-f8.toml", 0),
        ("fluent-ldm-vq-f4.toml", 0),
        ("fluent-ldm-kl-f8-xattn.toml", 9),
        ("fluent-ldm-kl-f8-inpaint.toml", 0),
    ] {
        let cfg = ExperimentConfig::load(&configs_dir().join(name)).unwrap();
        let SpaceConfig::Latent(latent) = &cfg.space else {
            panic!("{name}: a latent space")
        };
        let run = latent.autoencoder.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            latent.autoencoder,
            PathBuf::from("runs").join(run),
            "{name}"
        );
        let ae =
            prism::run::autoencoder::AeConfig::load(&configs_dir().join(format!("{run}.toml")))
                .unwrap();
        assert_eq!(
            ae.name, run,
            "{name}: the autoencoder preset trains into runs/{run}"
        );
        let side = cfg.data.image_size / ae.autoencoder.factor();
        cfg.model
            .validate_for(side, ae.autoencoder.code_channels())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (d, a) = (&cfg.data, &ae.data);
        assert_eq!(
            (d.image_size, d.channels, d.fit, d.background, d.held_out),
            (a.image_size, a.channels, a.fit, a.background, a.held_out),
            "{name}"
        );
        assert!(!cfg.sample.clip_x0, "{name}");
        let core = cfg.model.net.core();
        assert_eq!(core.num_classes, classes, "{name}");
        // An inpainting stage reads the masked image's latent and the mask beside the state.
        let inpaints = name.contains("inpaint");
        let cond = if inpaints {
            ae.autoencoder.code_channels() + 1
        } else {
            0
        };
        assert_eq!(core.cond_channels, cond, "{name}");
        if classes == 0 {
            assert_eq!(d.path, a.path, "{name}: the autoencoder's images");
        } else {
            assert_eq!(
                d.path,
                PathBuf::from("data/external/fluent-emoji-3d-categories"),
                "{name}"
            );
            let x = core.cross_attention.as_ref().expect("cross-attention");
            assert!(x.class_tokens().is_some(), "{name}: class tokens");
            assert_eq!(cfg.train.cond_drop_prob, 0.1, "{name}");
            assert!(cfg.sample.guidance > 1.0, "{name}");
        }
    }
}

/// The simple-diffusion presets follow the paper's recipe: shifted schedules relative to 64 for
/// 128–256, interpolated 32→256 at 512, DWT patching that leaves the transformer at 16×16.
#[test]
fn simple_presets_follow_the_recipe() {
    for d in [64usize, 128, 256, 512] {
        let cfg = ExperimentConfig::load(&configs_dir().join(format!("simple-{d}.toml"))).unwrap();
        assert_eq!(cfg.data.image_size, d);
        let net = &cfg.model.net;
        assert!(matches!(net, NetConfig::UViT(_)), "simple-{d}: a U-ViT");
        let side = (d / cfg.model.patching.spatial_factor()) >> net.depth();
        assert_eq!(side, 16, "simple-{d}: transformer at {side}×{side}");
        assert_eq!(net.core().dropout_max_resolution, Some(16));
        let schedule = serde_json::to_value(&cfg.process).unwrap()["schedule"].clone();
        let kind = schedule["kind"].as_str().unwrap();
        match d {
            64 => assert_eq!(kind, "cosine"),
            128 | 256 => {
                assert_eq!(kind, "shifted");
                assert_eq!(schedule["reference_size"], 64);
                assert_eq!(schedule["image_size"], d);
            }
            _ => {
                assert_eq!(kind, "interpolated");
                assert_eq!(
                    (
                        schedule["low_reference"].clone(),
                        schedule["high_reference"].clone()
                    ),
                    (32.into(), 256.into())
                );
            }
        }
        assert_eq!(cfg.objective.multiscale, d >= 256, "simple-{d}");
        assert!(cfg.data.lazy);
        assert_eq!(cfg.model.advice(), Vec::<String>::new(), "simple-{d}");
    }
}

/// The shipped Fashion-MNIST checkpoint (whose metadata has no `patching` or `uvit`) still loads.
#[test]
fn shipped_checkpoint_still_loads() {
    let path = configs_dir().join("../checkpoints/fashion-mnist-cond/model.safetensors");
    let (cfg, model, _) = prism::run::load_model(&path, &prism::default_device()).unwrap();
    assert_eq!(cfg.model.patching, PatchingConfig::None);
    assert!(matches!(cfg.model.net, NetConfig::UNet(_)));
    assert_eq!(model.net.num_classes(), 10);
}

fn with_model(model: &str, extra: &str) -> Result<ExperimentConfig, prism::Error> {
    let text = format!(
        r#"
[data]
path = "x"
image_size = 32
channels = 3
{extra}
[model]
{model}
[train]
steps = 1
batch_size = 1
lr = 1e-3
"#
    );
    ExperimentConfig::from_toml(&text, None)
}

const UNET: &str = "[model.unet]\nchannels = 3\nbase_channels = 8\nchannel_mults = [1, 2]\nres_blocks = 1\nnorm_groups = 4\n";
const UVIT: &str = "[model.uvit]\nchannels = 12\nbase_channels = 8\nchannel_mults = [1]\nres_blocks = 1\ntransformer_channels = 16\ntransformer_blocks = 1\nhead_channels = 8\nnorm_groups = 4\n";

#[test]
fn model_settings_are_checked_with_named_keys() {
    assert!(with_model(UNET, "").is_ok());
    let e = with_model("parameterization = \"v\"", "").unwrap_err();
    assert!(e.to_string().contains("[model.uvit]"), "{e}");
    let both = UNET.to_string() + UVIT;
    let e = with_model(&both, "").unwrap_err();
    assert!(e.to_string().contains("exactly one"), "{e}");
    // DWT by one level: 12 channels at 16×16.
    let dwt = format!("patching = {{ kind = \"dwt\", levels = 1 }}\n{UVIT}");
    let narrow = with_model(&dwt, "").unwrap();
    let advice = narrow.model.advice().join("\n");
    assert!(advice.contains("model.uvit.base_channels = 8"), "{advice}");
    let wide = with_model(&dwt.replace("base_channels = 8", "base_channels = 24"), "").unwrap();
    assert!(wide.model.advice().is_empty());
    assert!(
        with_model(UNET, "").unwrap().model.advice().is_empty(),
        "no patching, no advice"
    );
    let e = with_model(UVIT, "").unwrap_err();
    assert!(e.to_string().contains("model.uvit.channels = 12"), "{e}");
    let e = with_model(&dwt.replace("channels = 12", "channels = 3"), "").unwrap_err();
    assert!(e.to_string().contains("model.uvit.channels = 3"), "{e}");
    let e = with_model(
        &format!("patching = {{ kind = \"dwt\", levels = 1 }}\n{UNET}"),
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("model.unet.channels"), "{e}");
    let odd = dwt.replace("channel_mults = [1]", "channel_mults = [1, 1, 1, 1, 1]");
    let e = with_model(&odd, "").unwrap_err();
    assert!(e.to_string().contains("data.image_size = 32"), "{e}");
    let e = with_model(&UVIT.replace("transformer_blocks", "transformer_block"), "").unwrap_err();
    assert!(e.to_string().contains("transformer_block"), "{e}");
    let e = with_model(&UNET.replace("norm_groups", "norm_group"), "").unwrap_err();
    assert!(e.to_string().contains("unknown field `norm_group`"), "{e}");
    let e = with_model(&format!("parametrization = \"v\"\n{UNET}"), "").unwrap_err();
    assert!(
        e.to_string().contains("unknown field `parametrization`"),
        "{e}"
    );
    let e = with_model(UNET, "[objective]\nmultiscale = true\nmultiscale_mn = 8\n").unwrap_err();
    assert!(e.to_string().contains("multiscale_mn"), "{e}");
    let cfg = with_model(UNET, "[objective]\nmultiscale = true\nmultiscale_min = 8\n").unwrap();
    assert!(cfg.objective.multiscale && cfg.objective.multiscale_min == 8);
    let shifted = |d: usize| {
        format!(
            "[process]\nkind = \"gaussian\"\nschedule = {{ kind = \"shifted\", image_size = {d} }}\n"
        )
    };
    assert!(with_model(UNET, &shifted(32)).is_ok());
    let e = with_model(UNET, &shifted(64)).unwrap_err();
    assert!(
        e.to_string().contains("process.schedule.image_size = 64")
            && e.to_string().contains("data.image_size = 32"),
        "{e}"
    );
    assert_eq!(
        with_model(UNET, "").unwrap().objective.multiscale_min,
        32,
        "paper default"
    );
}

/// A tiny U-ViT behind two DWT levels, then a tiny U-Net behind a 2×2 patch convolution, each
/// trained with the multiscale loss for a few steps on Fashion-MNIST: the loss stays finite and the
/// model file round-trips its config.
#[test]
fn patched_networks_train_with_the_multiscale_loss() {
    let mut cfg = common::tiny_preset("fashion-mnist-cond.toml", 100, 20);
    cfg.model.patching = PatchingConfig::Dwt { levels: 2 };
    let mut uvit = UViTConfig::tiny(16);
    uvit.own.dropout = 0.1;
    uvit.core.dropout_max_resolution = Some(2);
    uvit.core.num_classes = 10;
    cfg.model.net = NetConfig::UViT(uvit);
    cfg.objective.multiscale = true;
    cfg.objective.multiscale_min = 4;
    cfg.validate().unwrap();
    common::short_run(&mut cfg, 4, 3);
    cfg.train.warmup_steps = 1;
    cfg.train.log_every = 1;
    cfg.sample.num = 2;
    cfg.sample.steps = 2;
    let dir = common::temp_dir("uvit-dwt");
    let out = train(&cfg, &common::quiet(&dir)).unwrap();
    assert_eq!(out.step, 3);
    assert!(out.last_loss.is_finite() && out.last_loss > 0.0);
    let (loaded, _, _) =
        prism::run::load_model(&dir.join("model.safetensors"), &prism::default_device()).unwrap();
    assert_eq!(loaded.model, cfg.model);
    std::fs::remove_dir_all(&dir).ok();

    // The cheaper alternative: a U-Net behind a stride-2 2×2 convolution and its transposed twin.
    cfg.model.patching = PatchingConfig::Conv { factor: 2 };
    let mut unet = UNetConfig::tiny(4);
    unet.own.dropout = vec![0.1];
    unet.core.dropout_max_resolution = Some(4);
    unet.core.num_classes = 10;
    cfg.model.net = NetConfig::UNet(unet);
    cfg.validate().unwrap();
    let dir = common::temp_dir("unet-conv");
    let out = train(&cfg, &common::quiet(&dir)).unwrap();
    assert!(out.last_loss.is_finite() && out.last_loss > 0.0);
    let (loaded, model, _) =
        prism::run::load_model(&dir.join("model.safetensors"), &prism::default_device()).unwrap();
    assert_eq!(loaded.model, cfg.model);
    assert_eq!(model.patching.config(), PatchingConfig::Conv { factor: 2 });
    std::fs::remove_dir_all(&dir).ok();
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
    // DDIM and DPM-Solver++ run in the DCT basis, where the process is diagonal.
    for sampler in ["dpmpp-2m", "ddim", "ddim:0.5"] {
        let text = text.replace("sampler = \"ddpm\"", &format!("sampler = \"{sampler}\""));
        ExperimentConfig::from_toml(&text, None).unwrap();
    }
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

/// The Laplacian presets: 3 bands, the process's image size that of the data, and errors that name
/// the key for a mismatched size, a network that cannot take the smallest state, ε-prediction,
/// unordered switch times and too few sampling steps for the segments.
#[test]
fn laplacian_presets_and_errors() {
    for (name, side) in [
        ("fashion-mnist-laplacian.toml", 32),
        ("emoji-64-laplacian.toml", 64),
    ] {
        let cfg = ExperimentConfig::load(&configs_dir().join(name)).unwrap();
        assert_eq!(cfg.process.image_size(), Some(side));
        assert_eq!(cfg.process.smallest_side(), Some(side / 4));
        assert_eq!(
            cfg.process.build().unwrap().switch_times(),
            vec![0.65, 0.35]
        );
    }
    let text = std::fs::read_to_string(configs_dir().join("fashion-mnist-laplacian.toml")).unwrap();
    let e = error(&text.replace("image_size = 32\n\n[model]", "image_size = 16\n\n[model]"));
    assert!(e.contains("process.image_size = 16"), "{e}");
    let e = error(&text.replace(
        "channel_mults = [1, 2, 2]",
        "channel_mults = [1, 2, 2, 2, 2]",
    ));
    assert!(e.contains("smallest state is 8²"), "{e}");
    let e = error(&text.replace("parameterization = \"v\"", "parameterization = \"eps\""));
    assert!(e.contains("\"v\" or \"x\""), "{e}");
    let e = error(&text.replace("[0.35, 0.65]", "[0.65, 0.35]"));
    assert!(e.contains("strictly increasing"), "{e}");
    let e = error(&text.replace("levels = 3", "levels = 5"));
    assert!(e.contains("levels must be 2, 3 or 4"), "{e}");
    let e = error(&text.replace("steps = 25", "steps = 2"));
    assert!(
        e.contains("sample.steps") && e.contains("at least 3 steps"),
        "{e}"
    );
}
