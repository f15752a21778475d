//! `prism eval` on image sets from anywhere (issue 15): `prism sample --out-dir/--npz` writes the
//! sets, `--samples/--reference` scores one against the other (here a set against itself, whose FID is 0), `--save-stats` caches the
//! reference's feature statistics and `--reference F.npz` reuses them, and `--pairs` gives PSNR and
//! SSIM that this test computes independently from the same PNG bytes.

mod common;

use common::{cli, fails_with, root, stderr, temp_dir};

/// Writes `n` grey 16×16 PNGs into `dir`, pixel `f(i, x, y)`.
fn write_set(dir: &std::path::Path, n: u32, f: impl Fn(u32, u32, u32) -> u8) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([f(i, x, y)]))
            .save(dir.join(format!("{i:03}.png")))
            .unwrap();
    }
}

#[test]
fn eval_scores_sets_from_anywhere_and_pairs_match_closed_forms() {
    let dir = temp_dir("eval-sets");
    let (a, b) = (dir.join("a"), dir.join("b"));
    // b = a + 10 grey levels everywhere (no clipping): MSE = (10/255)², PSNR = 20 log10(25.5).
    write_set(&a, 6, |i, x, y| (x * 7 + y * 3 + i * 11) as u8 % 200 + 20);
    write_set(&b, 6, |i, x, y| (x * 7 + y * 3 + i * 11) as u8 % 200 + 30);
    let json = dir.join("pairs.json");
    let o = cli(
        "eval --pairs {} {} --metrics psnr,ssim --json {}",
        &[&a, &b, &json],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let psnr = r["psnr"]["mean"].as_f64().unwrap();
    assert!((psnr - 20.0 * 25.5f64.log10()).abs() < 1e-3, "PSNR {psnr}");
    // A constant shift leaves variances and covariance alone and moves only the means' term:
    // SSIM = (2 μa μb + C1) / (μa² + μb² + C1) < 1, and identical sets give exactly 1.
    let ssim = r["ssim"]["mean"].as_f64().unwrap();
    assert!(ssim > 0.9 && ssim < 1.0, "SSIM {ssim}");
    let o = cli(
        "eval --pairs {} {} --metrics ssim --json {}",
        &[&a, &a, &json],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!((r["ssim"]["mean"].as_f64().unwrap() - 1.0).abs() < 1e-9);

    // LPIPS without its weights file names the converter; a set of another size is refused.
    let o = cli(
        "eval --pairs {} {} --metrics lpips --lpips {}",
        &[&a, &b, &dir.join("missing.safetensors")],
    );
    fails_with(&o, "convert_lpips.py");

    // Samples of the shipped model as files, then scored against the bundled test images' stats.
    let model = root().join("checkpoints/fashion-mnist-cond/model.safetensors");
    let classifier = root().join("checkpoints/fashion-mnist-classifier/classifier.safetensors");
    let (out_dir, npz) = (dir.join("samples"), dir.join("samples.npz"));
    let o = cli(
        "sample --checkpoint {} --num 4 --steps 2 --out-dir {} --npz {} --out {}",
        &[&model, &out_dir, &npz, &dir.join("grid.png")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pngs = std::fs::read_dir(&out_dir).unwrap().count();
    assert_eq!(pngs, 4);
    let stats = dir.join("ref.npz");
    let o = cli(
        "eval --samples {} --reference {} --save-stats {} --metrics fid,kid --features {} --kid-subsets 5 --kid-subset-size 4",
        &[&out_dir, &out_dir, &stats, &classifier],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let fid_of = |text: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("FID"))
            .expect("a FID line");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // A set against itself: FID 0; the same samples read from the .npz against the cached
    // statistics: FID 0 again (the .npz holds the same bytes, the statistics round-trip).
    assert!(fid_of(&printed).abs() < 1e-2, "{printed}");
    let o = cli(
        "eval --samples {} --reference {} --metrics fid --features {}",
        &[&npz, &stats, &classifier],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let again = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(fid_of(&again).abs() < 1e-2, "{again}");
    std::fs::remove_dir_all(dir).ok();
}

/// `prism eval --checkpoint` on an autoencoder run scores its reconstructions of the held-out
/// images: the mean |x − x̂| is the one `prism reconstruct` reports for the same images (another
/// code path), PSNR and SSIM come per image with their means, and metrics that need files say
/// which.
#[test]
fn eval_scores_an_autoencoder_on_its_held_out_images() {
    let dir = temp_dir("eval-ae");
    let cfg = dir.join("ae.toml");
    let data = root().join("data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    std::fs::write(
        &cfg,
        format!(
            r#"name = "tiny-ae"
[data]
path = "{}"
image_size = 16
channels = 1
limit = 40
held_out = 8
[autoencoder]
channels = 1
block_out_channels = [8, 8]
layers_per_block = 1
latent_channels = 2
norm_groups = 4
mid_attention = false
regularizer = {{ kind = "kl" }}
[loss]
reconstruction = "l1"
perceptual_weight = 0.0
[train]
steps = 3
batch_size = 4
lr = 1e-3
seed = 0
log_every = 1
sample_every = 0
checkpoint_every = 0
"#,
            data.display()
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let o = cli("train --quiet --config {} --out {}", &[&cfg, &run]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = dir.join("ae.json");
    let o = cli(
        "eval --checkpoint {} --num 8 --metrics l1,psnr,ssim --json {}",
        &[&run, &json],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("on 8 held-out images"),
        "{}",
        stderr(&o)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let grid = dir.join("grid.png");
    let o = cli(
        "reconstruct --checkpoint {} --num 8 --out {}",
        &[&run, &grid],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stderr(&o);
    let l1_reconstruct: f64 = said
        .split("mean |x − x̂| = ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    let l1 = r["l1"].as_f64().unwrap();
    assert!(
        (l1 - l1_reconstruct).abs() < 1e-4,
        "{l1} vs {l1_reconstruct}"
    );
    for (m, lo, hi) in [("psnr", 0.0, 60.0), ("ssim", -1.0, 1.0)] {
        let per: Vec<f64> = r[m]["per_image"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(per.len(), 8, "{m}");
        let mean = per.iter().sum::<f64>() / 8.0;
        assert!((r[m]["mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{m}");
        assert!(per.iter().all(|v| *v > lo && *v < hi), "{m}: {per:?}");
    }
    fails_with(
        &cli("eval --checkpoint {} --metrics fid", &[&run]),
        "need --features",
    );
    fails_with(
        &cli(
            "eval --checkpoint {} --metrics lpips --lpips {}",
            &[&run, &dir.join("none.safetensors")],
        ),
        "none.safetensors",
    );
    fails_with(
        &cli("eval --checkpoint {} --metrics bpd", &[&run]),
        "unknown metric 'bpd'",
    );
    std::fs::remove_dir_all(&dir).ok();
}
