//! The first-stage autoencoder's training on the generic trainer (two networks, two optimisers):
//! exact resume for KL + PatchGAN and VQ + PatchGAN jobs (the discriminator switched on mid-run),
//! the inference file and `reconstruct`, and — in release mode — evidence that it learns on real
//! images (Fashion-MNIST, held out) and that dead-code restarts keep a VQ codebook in use.

mod common;

use common::{quiet, take_turn};
use prism::data::Fit;
use prism::nn::DiscriminatorConfig;
use prism::nn::autoencoder::{AutoencoderConfig, CodebookUsage, Regularizer};
use prism::objective::autoencoder::{AeLossConfig, GanConfig, GanLoss};
use prism::run::autoencoder::{
    AeConfig, AeTrainConfig, held_out_l1, load_autoencoder, train_autoencoder,
};

/// A tiny job on `limit` Fashion-MNIST images at 16×16 (f4), no LPIPS, the GAN from step `start`.
fn tiny(regularizer: Regularizer, limit: usize, start: u64) -> AeConfig {
    let mut data = common::preset("fashion-mnist.toml").data;
    data.image_size = 16;
    data.fit = Fit::Resize;
    data.limit = limit;
    data.held_out = 8;
    data.random_flip = true;
    AeConfig {
        name: "tiny-ae".into(),
        data,
        autoencoder: AutoencoderConfig {
            channels: 1,
            block_out_channels: vec![8, 8, 16],
            layers_per_block: 1,
            latent_channels: 3,
            norm_groups: 4,
            mid_attention: true,
            regularizer,
        },
        loss: AeLossConfig {
            perceptual_weight: 0.0,
            gan: Some(GanConfig {
                loss: GanLoss::Hinge,
                start,
                weight: 0.5,
                factor: 1.0,
                discriminator: DiscriminatorConfig {
                    layers: 2,
                    channels: 8,
                },
                lr: Some(1e-3),
            }),
            ..AeLossConfig::default()
        },
        train: AeTrainConfig {
            steps: 6,
            batch_size: 4,
            lr: 1e-3,
            adamw: Default::default(),
            grad_clip: Some(1.0),
            seed: 3,
            log_every: 2,
            checkpoint_every: 0,
            sample_every: 0,
            max_bad_steps: 5,
        },
    }
}

fn vq() -> Regularizer {
    Regularizer::vq(16, 3, 0.25)
}

/// [`vq`] with EMA codebook updates and restarts of codes whose usage average falls below 1.
fn vq_ema_restart() -> Regularizer {
    Regularizer::Vq {
        n_embed: 16,
        embed_dim: 3,
        beta: 0.25,
        ema: true,
        decay: 0.9,
        eps: 1e-5,
        dead_code_threshold: 1.0,
    }
}

/// 6 steps straight equal 3 steps, a stop, and 3 resumed steps: both networks, both optimisers'
/// moments and the log-variance identical to the bit; the discriminator starts at step 2. With
/// EMA codebook updates and dead-code restarts (`vq-ema`) also the codebook's averages, after
/// restarts in the resumed steps (their vectors drawn from the step's random stream).
#[test]
fn autoencoder_with_discriminator_resumes_bit_exactly() {
    let _turn = take_turn();
    for (name, reg) in [
        ("kl", Regularizer::Kl),
        ("vq", vq()),
        ("vq-ema", vq_ema_restart()),
    ] {
        let cfg = tiny(reg, 64, 2);
        let straight = common::temp_dir(&format!("ae-straight-{name}"));
        assert_eq!(train_autoencoder(&cfg, &quiet(&straight)).unwrap().step, 6);
        let split = common::temp_dir(&format!("ae-split-{name}"));
        let mut first = quiet(&split);
        first.stop_after = Some(3);
        assert_eq!(train_autoencoder(&cfg, &first).unwrap().step, 3);
        let mut second = quiet(&split);
        second.resume = true;
        assert_eq!(train_autoencoder(&cfg, &second).unwrap().step, 6);

        let (a, _) = common::same_state(&straight, &split, prism::train::STATE_FILE);
        assert_eq!(a.metadata["modules"], "autoencoder,discriminator");
        assert_eq!(a.metadata["optimizer_step.autoencoder"], "6");
        assert_eq!(
            a.metadata["optimizer_step.discriminator"], "4",
            "{name}: from step 2"
        );
        assert!(a.tensors.contains_key("autoencoder.logvar"));
        assert!(
            a.tensors
                .contains_key("adam_m.discriminator.convs.0.weight")
        );
        let lines = prism::train::read_metrics(&split.join("metrics.jsonl")).unwrap();
        let last = lines.last().unwrap();
        for key in ["loss", "rec", "g_loss", "d_weight", "d_loss"] {
            assert!(last.get(key).is_some_and(f64::is_finite), "{name}: {key}");
        }
        let ema_state = ["cluster_size", "embed_avg"].map(|b| {
            a.tensors
                .contains_key(&format!("autoencoder.ae.quantize.{b}"))
        });
        assert_eq!(ema_state, [name == "vq-ema"; 2], "{name}");
        let codebook_moments = a
            .tensors
            .contains_key("adam_m.autoencoder.ae.quantize.embedding.weight");
        assert_eq!(
            codebook_moments,
            name == "vq",
            "{name}: the codebook's gradient"
        );
        if name == "vq-ema" {
            let resumed: f64 = lines
                .iter()
                .filter(|l| l.step > 3)
                .filter_map(|l| l.get("codes_restarted"))
                .sum();
            assert!(resumed > 0.0, "{name}: no restarts after the resume");
        }
        if name.starts_with("vq") {
            assert!(last.get("perplexity").is_some_and(|p| p >= 1.0));
        } else {
            assert!(last.get("kl").is_some_and(|k| k >= 0.0));
        }

        let device = prism::default_device();
        let (loaded, ae, step) = load_autoencoder(&split, &device).unwrap();
        assert_eq!((loaded, step), (Some(cfg.clone()), 6));
        let (_, held_out) = cfg.data.load().unwrap().split(8);
        assert!(held_out_l1(&ae, &held_out, &device).unwrap().is_finite());
        std::fs::remove_dir_all(&straight).ok();
        std::fs::remove_dir_all(&split).ok();
    }
}

#[test]
fn bad_autoencoder_configs_are_refused_with_the_key() {
    let mut cfg = tiny(Regularizer::Kl, 64, 0);
    cfg.data.image_size = 18;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("factor 4"), "{e}");
    let mut cfg = tiny(Regularizer::Kl, 64, 0);
    cfg.autoencoder.block_out_channels = vec![8, 6];
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("norm_groups"), "{e}");
    let mut cfg = tiny(vq(), 64, 0);
    cfg.loss.kl_weight = f64::NAN;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("loss.kl_weight"), "{e}");
    for (key, value) in [
        ("decay", 1.0),
        ("decay", 0.0),
        ("eps", 0.0),
        ("eps", f64::INFINITY),
        ("dead_code_threshold", -1.0),
        ("dead_code_threshold", f64::NAN),
    ] {
        let mut cfg = tiny(vq_ema_restart(), 64, 0);
        if let Regularizer::Vq {
            decay,
            eps,
            dead_code_threshold,
            ..
        } = &mut cfg.autoencoder.regularizer
        {
            *match key {
                "decay" => decay,
                "eps" => eps,
                _ => dead_code_threshold,
            } = value;
        }
        let e = cfg.validate().unwrap_err().to_string();
        assert!(
            e.contains(&format!("autoencoder.regularizer.{key}")),
            "{key} = {value}: {e}"
        );
    }
    let text = cfg.to_toml().replace("latent_channels", "z_chans");
    let e = AeConfig::from_toml(&text, None).unwrap_err().to_string();
    assert!(e.contains("z_chans"), "{e}");
    let mut cfg = tiny(Regularizer::Kl, 64, 0);
    cfg.loss.perceptual_weight = 1.0;
    cfg.loss.lpips = Some("no/such/lpips.safetensors".into());
    let e = train_autoencoder(&cfg, &quiet(&common::temp_dir("ae-nolpips")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("convert_lpips.py"), "{e}");
}

/// Held-out mean |x − x̂| must fall below this fraction of the mean-image predictor's (an
/// untrained autoencoder is above 1). The GAN phase makes the end point chaotic: with the GAN
/// from step 150, runs that differ only in float rounding (burn's composed ops against prism's
/// fused kernels, losses equal to 4–5 digits for the first 20 steps) ended at 0.47, 0.52 and
/// 0.99 — the last one a GAN phase that wrecked the reconstructions. From step 200 (this test):
/// 0.54 and 0.48 with two builds of the kernels.
const MAX_L1_RATIO: f64 = 0.6;

/// An f4 KL autoencoder (L1 + PatchGAN from step 200, no LPIPS) trained for 300 steps of batch 16
/// on 2,000 Fashion-MNIST images (32×32, 8×8×3 latents) reconstructs 200 held-out images with a
/// mean absolute error below `MAX_L1_RATIO` of the best constant image (the training mean).
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release-mode learning test: cargo test --release"
)]
fn autoencoder_learns_on_real_images() {
    let _turn = take_turn();
    let mut cfg = tiny(Regularizer::Kl, 2200, 200);
    cfg.data.image_size = 32;
    cfg.data.held_out = 200;
    cfg.autoencoder.block_out_channels = vec![16, 32, 32];
    cfg.train.steps = 300;
    cfg.train.batch_size = 16;
    cfg.train.log_every = 50;
    let dir = common::temp_dir("ae-learning");
    let started = std::time::Instant::now();
    train_autoencoder(&cfg, &quiet(&dir)).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let device = prism::default_device();
    let (_, ae, _) = load_autoencoder(&dir, &device).unwrap();
    let (train_set, held_out) = cfg.data.load().unwrap().split(200);
    let l1 = held_out_l1(&ae, &held_out, &device).unwrap();
    let mean = train_set.mean_image().unwrap();
    let mut baseline = 0.0;
    let n = held_out.len();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let idx: Vec<usize> = (0..n).collect();
    let x = prism::tensor::to_vec(held_out.try_batch(&idx, &mut rng, &device).unwrap().images);
    for (i, v) in x.iter().enumerate() {
        baseline += (v - mean[i % mean.len()]).abs() as f64;
    }
    let baseline = baseline / x.len() as f64;
    eprintln!("held-out L1 {l1:.4}, mean-image L1 {baseline:.4}, {seconds:.0} s");
    assert!(
        l1 < MAX_L1_RATIO * baseline,
        "held-out L1 {l1:.4} not below {MAX_L1_RATIO} × {baseline:.4}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Codebook usage and perplexity of a VQ job's autoencoder on its held-out images (the nearest
/// codes of every latent vector) and its held-out L1, after training `cfg` in a fresh directory.
fn held_out_codebook_usage(cfg: &AeConfig, name: &str) -> (CodebookUsage, f64) {
    let dir = common::temp_dir(name);
    train_autoencoder(cfg, &quiet(&dir)).unwrap();
    let device = prism::default_device();
    let (_, ae, _) = load_autoencoder(&dir, &device).unwrap();
    let (_, held_out) = cfg.data.load().unwrap().split(cfg.data.held_out);
    let q = ae.quantizer().unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let idx: Vec<usize> = (0..held_out.len()).collect();
    let x = held_out.try_batch(&idx, &mut rng, &device).unwrap().images;
    let codes = q.nearest(ae.latent(x).unwrap());
    let l1 = held_out_l1(&ae, &held_out, &device).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (CodebookUsage::of(&codes, q.n_embed()), l1)
}

/// Dead-code restarts keep the codebook in use. A small f4 VQ autoencoder (64 codes of 3
/// channels, L1 only, no GAN) trained for 200 steps of batch 16 on 1,000 Fashion-MNIST images at
/// 16×16, its codebook trained by gradient or by EMA updates (decay 0.99), without and with
/// restarts (threshold 1); on 200 held-out images (3,200 latent vectors) it measured:
///
/// | codebook | usage | perplexity | held-out L1 |
/// |---|---|---|---|
/// | gradient | 0.344 | 8.1 | 0.2091 |
/// | gradient + restarts | 1.000 | 46.8 | 0.1832 |
/// | EMA | 0.516 | 13.6 | 0.1890 |
/// | EMA + restarts | 1.000 | 44.8 | 0.1814 |
///
/// (about 10 s a run). With restarts the usage must reach `MIN_USAGE` and exceed the usage
/// without them by `MIN_GAIN`, the perplexity must double, and the reconstructions must not be
/// worse (held-out L1 at most 5 % above).
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release-mode learning test: cargo test --release"
)]
fn dead_code_restarts_raise_codebook_usage() {
    const MIN_USAGE: f64 = 0.9;
    const MIN_GAIN: f64 = 0.25;
    let _turn = take_turn();
    let job = |reg: Regularizer| {
        let mut cfg = tiny(reg, 1200, 0);
        cfg.data.held_out = 200;
        cfg.loss.gan = None;
        cfg.train.steps = 200;
        cfg.train.batch_size = 16;
        cfg.train.log_every = 50;
        cfg
    };
    let with = |ema: bool, dead_code_threshold: f64| Regularizer::Vq {
        n_embed: 64,
        embed_dim: 3,
        beta: 0.25,
        ema,
        decay: 0.99,
        eps: 1e-5,
        dead_code_threshold,
    };
    let run = |name: &str, reg: Regularizer| {
        let started = std::time::Instant::now();
        let (u, l1) = held_out_codebook_usage(&job(reg), &format!("vq-usage-{name}"));
        eprintln!(
            "{name}: usage {:.3}, perplexity {:.1}, held-out L1 {l1:.4} ({:.1} s)",
            u.usage,
            u.perplexity,
            started.elapsed().as_secs_f64()
        );
        (u, l1)
    };
    for ema in [false, true] {
        let (off, l1_off) = run(if ema { "ema" } else { "gradient" }, with(ema, 0.0));
        let (on, l1_on) = run(if ema { "ema-restart" } else { "restart" }, with(ema, 1.0));
        let what = if ema {
            "EMA codebook"
        } else {
            "gradient codebook"
        };
        assert!(
            on.usage >= MIN_USAGE && on.usage >= off.usage + MIN_GAIN,
            "{what}: usage {:.3} with restarts, {:.3} without",
            on.usage,
            off.usage
        );
        assert!(
            on.perplexity >= 2.0 * off.perplexity,
            "{what}: perplexity {:.1} with restarts, {:.1} without",
            on.perplexity,
            off.perplexity
        );
        assert!(
            l1_on <= 1.05 * l1_off,
            "{what}: held-out L1 {l1_on:.4} with restarts, {l1_off:.4} without"
        );
    }
}
