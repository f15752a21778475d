//! The autoencoder's losses against PyTorch transcriptions of the reference code
//! (`tools/golden_autoencoder_loss.py` → `tests/data/autoencoder_loss.json`).

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use super::*;
use crate::golden_data::{assert_close, f32s, load, shape4};
use crate::io::{HostTensor, load_into};
use crate::nn::autoencoder::{CodebookUsage, DiagonalGaussian, VectorQuantizer};
use crate::nn::layers::conv3x3;
use crate::tensor::{scalar, to_vec};

fn t4(v: &serde_json::Value, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(f32s(v), shape), device)
}

#[test]
fn kl_matches_the_reference_posterior() {
    let g = &load("autoencoder_loss.json")["kl"];
    let device = crate::default_device();
    let post = DiagonalGaussian::new(t4(&g["moments"], shape4(&g["shape"]), &device));
    let kl = scalar(post.kl());
    let want = g["kl"].as_f64().unwrap();
    assert!((kl - want).abs() <= 1e-5 * want.abs(), "{kl} vs {want}");
}

#[test]
fn vq_matches_the_reference_quantiser() {
    let g = &load("autoencoder_loss.json")["vq"];
    let device = crate::default_device();
    let q = VectorQuantizer::new(8, 3, 0.25, &device);
    let codebook = BTreeMap::from([(
        "embedding.weight".to_string(),
        HostTensor {
            shape: vec![8, 3],
            data: f32s(&g["codebook"]),
        },
    )]);
    let q = load_into(q, &codebook, std::path::Path::new("golden")).unwrap();
    let out = q.forward(t4(&g["z"], [2, 3, 2, 2], &device));
    let want: Vec<usize> = f32s(&g["indices"]).iter().map(|&v| v as usize).collect();
    assert_eq!(out.indices, want);
    let loss = scalar(out.loss);
    let want = g["loss"].as_f64().unwrap();
    assert!((loss - want).abs() <= 1e-5 * want, "{loss} vs {want}");
    let p = CodebookUsage::of(&out.indices, 8).perplexity;
    assert!((p - g["perplexity"].as_f64().unwrap()).abs() < 1e-6);
}

/// The PatchGAN (taming's `NLayerDiscriminator` with its weights), the GAN losses and the adaptive
/// weight `λ` from the last layer's gradients, on a tiny decoder `x̂ = conv3x3(h)`.
#[test]
fn discriminator_and_adaptive_weight_match_pytorch() {
    let g = &load("autoencoder_loss.json")["gan"];
    let device = crate::default_device().autodiff();
    let cfg = DiscriminatorConfig {
        layers: 3,
        channels: 4,
    };
    let disc = cfg.init(3, &device);
    let tensors: BTreeMap<String, HostTensor> = disc
        .torch_names()
        .into_iter()
        .map(|(ours, theirs)| {
            let t = &g["disc"][&theirs];
            let shape = f32s(&t["shape"]).iter().map(|&v| v as usize).collect();
            (
                ours,
                HostTensor {
                    shape,
                    data: f32s(&t["data"]),
                },
            )
        })
        .collect();
    let disc = load_into(disc, &tensors, std::path::Path::new("golden")).unwrap();

    let mut last = conv3x3(4, 3, &device);
    last.weight = Param::from_tensor(t4(&g["last_weight"], [3, 4, 3, 3], &device));
    last.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(f32s(&g["last_bias"]), [3]),
        &device,
    )));
    let h = t4(&g["h"], [2, 4, 32, 32], &device);
    let x = t4(&g["x"], [2, 3, 32, 32], &device);
    let x_hat = last.forward(h.clone());
    let lv = g["logvar"].as_f64().unwrap();

    let loss = AeLossConfig {
        perceptual_weight: 0.0,
        ..AeLossConfig::default()
    };
    let (rec_sum, d_rec) = output_grad(x_hat.clone(), |xh| {
        Ok(loss.reconstruction(x.clone(), xh, None)?.sum())
    })
    .unwrap();
    let (b, numel) = (2.0, (2 * 3 * 32 * 32) as f64);
    let nll = (rec_sum * (-lv).exp() + lv * numel) / b;
    let close = |got: f64, key: &str, tol: f64| {
        let want = g[key].as_f64().unwrap();
        assert!(
            (got - want).abs() <= tol * want.abs().max(1e-3),
            "{key}: {got} vs {want}"
        );
    };
    close(nll, "nll", 1e-5);
    let d_nll = d_rec * ((-lv).exp() / b);
    let gan = GanLoss::Hinge;
    let (g_loss, d_g) = output_grad(x_hat.clone(), |xh| {
        let logits = disc.forward(xh);
        assert_eq!(logits.dims(), shape4(&g["logits_shape"]));
        assert_close(
            &to_vec(logits.clone())
                .into_iter()
                .take(4)
                .collect::<Vec<_>>(),
            &f32s(&g["logits_fake_first"]),
            1e-4,
            "logits",
        );
        Ok(gan.generator(logits))
    })
    .unwrap();
    close(g_loss, "g_loss", 1e-4);
    let nll_norm = norm(last_layer_grad(&last, h.clone(), d_nll));
    let g_norm = norm(last_layer_grad(&last, h, d_g));
    close(nll_norm, "nll_grad_norm", 1e-4);
    close(g_norm, "g_grad_norm", 1e-4);
    let w = adaptive_weight(nll_norm, g_norm, g["disc_weight"].as_f64().unwrap()).unwrap();
    close(w, "d_weight", 2e-4);

    let real = disc.forward(x.clone());
    let fake = disc.forward(x_hat.clone().detach());
    close(
        scalar(GanLoss::Hinge.discriminator(real.clone(), fake.clone())),
        "hinge_d_loss",
        1e-4,
    );
    close(
        scalar(GanLoss::NonSaturating.discriminator(real, fake)),
        "vanilla_d_loss",
        1e-4,
    );
    close(
        scalar(GanLoss::NonSaturating.generator(disc.forward(x_hat))),
        "nonsaturating_g_loss",
        1e-4,
    );
    assert!((adaptive_weight(1.0, 0.0, 1.0).unwrap() - 1e4).abs() < 1e-6);
    assert_eq!(adaptive_weight(0.0, 1.0, 0.5).unwrap(), 0.0);
    assert!(adaptive_weight(f64::NAN, 1.0, 0.5).is_err());
}
