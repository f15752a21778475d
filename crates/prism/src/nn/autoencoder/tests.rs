//! The autoencoder's shapes, parameter names (diffusers' layout) and size, and the VQ
//! straight-through gradient. The KL and VQ losses are checked against references in
//! `objective::autoencoder`'s tests.

use super::*;
use crate::golden_data::seeded;
use crate::io::host_params;
use crate::tensor::{normal, to_vec};

fn tiny(regularizer: Regularizer, levels: usize) -> AutoencoderConfig {
    AutoencoderConfig {
        channels: 3,
        block_out_channels: vec![8; levels],
        layers_per_block: 1,
        latent_channels: 4,
        norm_groups: 4,
        mid_attention: true,
        regularizer,
    }
}

fn vq() -> Regularizer {
    Regularizer::vq(16, 3, 0.25)
}

/// f = 4, 8, 16: latents `[B, z, H/f, W/f]`, reconstructions of the input's shape.
#[test]
fn latents_and_reconstructions_have_the_documented_shapes() {
    let (device, mut rng) = seeded(1);
    for (levels, f) in [(3, 4), (4, 8), (5, 16)] {
        for reg in [Regularizer::Kl, vq()] {
            let cfg = tiny(reg.clone(), levels);
            assert_eq!(cfg.factor(), f);
            let ae = cfg.init(&device).unwrap();
            let x = normal([2, 3, 32, 32], &mut rng, &device);
            let z = ae.encode(x.clone()).unwrap();
            let zc = if matches!(reg, Regularizer::Kl) { 4 } else { 3 };
            assert_eq!(z.dims(), [2, zc, 32 / f, 32 / f], "f{f} {reg:?}");
            assert_eq!(ae.reconstruct(x).unwrap().dims(), [2, 3, 32, 32]);
        }
    }
    let ae = tiny(Regularizer::Kl, 3).init(&device).unwrap();
    let e = ae
        .encode(normal([1, 3, 30, 32], &mut rng, &device))
        .unwrap_err()
        .to_string();
    assert!(e.contains("multiples of 4") && e.contains("30×32"), "{e}");
}

/// The parameter paths are diffusers' `AutoencoderKL` keys (GroupNorm `gamma`/`beta` for
/// `weight`/`bias`); Stable Diffusion's f8 VAE has diffusers' 83,653,863 parameters.
#[test]
fn parameters_follow_the_diffusers_layout() {
    let device = crate::default_device();
    let keys: Vec<String> = host_params(&tiny(vq(), 3).init(&device).unwrap())
        .into_keys()
        .collect();
    for k in [
        "encoder.conv_in.weight",
        "encoder.down_blocks.0.resnets.0.norm1.gamma",
        "encoder.down_blocks.0.resnets.0.conv1.weight",
        "encoder.down_blocks.1.downsamplers.0.conv.weight",
        "encoder.mid_block.resnets.1.conv2.bias",
        "encoder.mid_block.attentions.0.group_norm.beta",
        "encoder.mid_block.attentions.0.to_q.weight",
        "encoder.mid_block.attentions.0.to_out.0.weight",
        "encoder.conv_norm_out.gamma",
        "encoder.conv_out.weight",
        "quant_conv.weight",
        "quantize.embedding.weight",
        "post_quant_conv.weight",
        "decoder.conv_in.weight",
        "decoder.up_blocks.0.resnets.1.conv1.weight",
        "decoder.up_blocks.1.upsamplers.0.conv.weight",
        "decoder.conv_out.bias",
    ] {
        assert!(keys.iter().any(|x| x == k), "missing {k}");
    }
    assert!(!keys.iter().any(|k| k.contains("up_blocks.2.upsamplers")));
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("down_blocks.2.downsamplers"))
    );
    let sd = AutoencoderConfig::kl_f8().init(&device).unwrap();
    assert_eq!(sd.num_params(), 83_653_863);
}

/// The quantiser's output is a codebook entry, its gradient reaches the encoder unchanged
/// (straight-through) and the codebook through the codebook loss; usage and perplexity.
#[test]
fn vq_is_straight_through() {
    let (device, mut rng) = seeded(2);
    let device = device.autodiff();
    let q = VectorQuantizer::new(8, 3, 0.25, &device);
    let z = (normal([2, 3, 2, 2], &mut rng, &device) * 0.2).require_grad();
    let out = q.forward(z.clone());
    let codes = to_vec(q.codebook());
    let zq = to_vec(out.z_q.clone());
    for (p, &k) in out.indices.iter().enumerate() {
        let (b, y, x) = (p / 4, (p / 2) % 2, p % 2);
        for c in 0..3 {
            let v = zq[((b * 3 + c) * 2 + y) * 2 + x];
            assert!((v - codes[k * 3 + c]).abs() < 1e-6);
        }
    }
    let grads = out.z_q.sum().backward();
    let g = to_vec(z.grad(&grads).unwrap());
    assert!(g.iter().all(|v| (v - 1.0).abs() < 1e-6), "{g:?}");
    let grads = out.loss.backward();
    assert!(q.codebook().grad(&grads).is_some());
    let u = CodebookUsage::of(&[0, 0, 1, 1], 4);
    assert!((u.usage - 0.5).abs() < 1e-12 && (u.perplexity - 2.0).abs() < 1e-12);
    let u = CodebookUsage::of(&[3, 3, 3], 4);
    assert!((u.usage - 0.25).abs() < 1e-12 && (u.perplexity - 1.0).abs() < 1e-12);
}

/// EMA codebook updates: the loss is the commitment term alone (`β mean ‖z − sg(e_k)‖²`) and the
/// codebook gets no gradient; the statistics are parameters (`quantize.cluster_size`,
/// `quantize.embed_avg`) only where an option asks for them, so a default VQ autoencoder's
/// parameters are what they were; the options are absent from a default config's TOML.
#[test]
fn ema_codebook_has_no_codebook_loss_and_defaults_add_nothing() {
    let (device, mut rng) = seeded(3);
    let device = device.autodiff();
    let update = |ema, dead_code_threshold| CodebookUpdate {
        ema,
        decay: 0.99,
        eps: 1e-5,
        dead_code_threshold,
    };
    let plain = VectorQuantizer::new(8, 3, 0.25, &device);
    let ema = plain.clone().with_update(update(true, 0.0));
    let z = (normal([2, 3, 2, 2], &mut rng, &device) * 0.2).require_grad();
    let a = plain.forward(z.clone());
    let b = ema.forward(z.clone());
    assert_eq!(a.indices, b.indices);
    let e_k = to_vec(ema.lookup(&b.indices, [2, 2, 2]));
    let zs = to_vec(z.clone());
    let commitment = zs
        .iter()
        .zip(&e_k)
        .map(|(x, e)| (x - e).powi(2))
        .sum::<f32>()
        / 24.0;
    let loss = crate::tensor::scalar(b.loss.clone());
    assert!(
        (loss - 0.25 * f64::from(commitment)).abs() < 1e-6,
        "{loss} vs {commitment}"
    );
    let grads = b.loss.backward();
    assert!(ema.codebook().grad(&grads).is_none());
    assert!(z.grad(&grads).is_some());

    let keys = |q: &VectorQuantizer| host_params(q).into_keys().collect::<Vec<_>>();
    assert_eq!(keys(&plain), ["embedding.weight"]);
    assert_eq!(
        keys(&plain.clone().with_update(update(false, 0.0))),
        ["embedding.weight"]
    );
    assert_eq!(
        keys(&plain.clone().with_update(update(false, 1.0))),
        ["cluster_size", "embedding.weight"]
    );
    assert_eq!(
        keys(&ema),
        ["cluster_size", "embed_avg", "embedding.weight"]
    );
    let s = ema.state();
    assert_eq!(s.cluster_size, vec![1.0; 8]);
    assert_eq!(s.embed_avg.as_ref(), Some(&s.codebook));

    let cfg = tiny(vq(), 3);
    let text = toml::to_string(&cfg).unwrap();
    assert!(!text.contains("decay") && !text.contains("ema"), "{text}");
    let back: AutoencoderConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, cfg);
    let ema_cfg = text.replace(
        "beta = 0.25",
        "beta = 0.25\nema = true\ndead_code_threshold = 2.0",
    );
    let parsed: AutoencoderConfig = toml::from_str(&ema_cfg).unwrap();
    assert_eq!(
        parsed.regularizer.codebook_update(),
        Some(update(true, 2.0))
    );
}
