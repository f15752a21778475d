//! The start of a latent-diffusion run (`[space] kind = "latent"`, [`crate::space::LatentSpace`]):
//! load the autoencoder, open (or build) the latent cache, measure the latent scale unless the
//! config sets it (or the autoencoder is a diffusers VAE with its own `scaling_factor`), and write the autoencoder's hash and the scale into the run's config — the
//! config every file of the run records, so the checkpoint names its autoencoder and scale.

use burn::tensor::Tensor;
use rand::SeedableRng;

use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::space::{
    CacheOrigin, LatentCache, LatentConfig, LatentSource, LatentSpace, SpaceConfig, latent_scale,
};
use crate::{Error, Result};

/// What a latent run trains on.
pub(super) struct LatentRun {
    /// The config with `space.hash` and `space.scale` filled in.
    pub cfg: ExperimentConfig,
    /// The space, scaled.
    pub space: LatentSpace,
    /// The cached training latents (`space.latents = "cache"`).
    pub cache: Option<LatentCache>,
}

/// Prepares the latent space of `cfg` (whose space is `l`) for training on `train_set`; tells
/// what it does on standard error when `verbose`.
pub(super) fn prepare(
    cfg: &ExperimentConfig,
    l: &LatentConfig,
    train_set: &Dataset,
    verbose: bool,
) -> Result<LatentRun> {
    let space = LatentSpace::load(l, Some(l.scale.unwrap_or(1.0)))?;
    if l.latents == LatentSource::Cache && !cfg.stage.is_base() {
        return Err(Error::config(
            "space.latents = \"cache\" holds the latents of the images alone, but this stage's condition is made from each batch (super-resolution, inpainting masks): set space.latents = \"on_the_fly\"",
        ));
    }
    let cache = match l.latents {
        LatentSource::OnTheFly => None,
        LatentSource::Cache => {
            let mut tell = |path: &std::path::Path, why: &str| {
                if verbose {
                    eprintln!(
                        "latent cache: {why}; encoding {} training images{} into '{}'",
                        train_set.len(),
                        if train_set.random_flip() {
                            " and their mirror images"
                        } else {
                            ""
                        },
                        path.display()
                    );
                }
            };
            let (cache, origin) = LatentCache::open(&space, l, train_set, &mut tell)?;
            if verbose && origin == CacheOrigin::Read {
                eprintln!(
                    "latent cache: {} latents of {:?} read from '{}'",
                    cache.len(),
                    cache.shape(),
                    cache.path().display()
                );
            }
            Some(cache)
        }
    };
    let (scale, how) = match (l.scale, space.file_scale()) {
        (Some(s), _) => (s, "set by space.scale".to_string()),
        (None, Some(s)) => (s, "the diffusers VAE's scaling_factor".to_string()),
        (None, None) => {
            let n = l.scale_images.min(train_set.len());
            let s = measure_scale(&space, cache.as_ref(), train_set, cfg.train.seed, n)?;
            (s, format!("1/std of the latents of {n} training images"))
        }
    };
    let space = space.with_scale(scale);
    let mut cfg = cfg.clone();
    cfg.space = SpaceConfig::Latent(LatentConfig {
        hash: Some(space.hash().to_string()),
        scale: Some(scale),
        ..l.clone()
    });
    cfg.check_space(&space)?;
    if verbose {
        let d = &cfg.data;
        let [_, c, h, w] =
            crate::space::Space::shape(&space, [1, d.channels, d.image_size, d.image_size]);
        eprintln!(
            "latent space: '{}' ({}…), {c}×{h}×{w} latents, scale {scale:.6} ({how})",
            space.path().display(),
            &space.hash()[..19],
        );
    }
    Ok(LatentRun { cfg, space, cache })
}

/// `1 / std` of the unscaled latents of the first `n` images of the training order under `seed`
/// (unflipped): from the cache when there is one, encoded otherwise.
fn measure_scale(
    space: &LatentSpace,
    cache: Option<&LatentCache>,
    set: &Dataset,
    seed: u64,
    n: usize,
) -> Result<f64> {
    let device = crate::default_device();
    let idx = set.indices_at(seed, 0, n);
    let z: Tensor<4> = match cache {
        Some(c) => c.batch(&idx, &[], &device)?,
        None => {
            let mut parts = Vec::new();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            for chunk in idx.chunks(64) {
                let x = match set.plain_images(chunk, &device) {
                    Some(x) => x,
                    None => set.try_batch(chunk, &mut rng, &device)?.images,
                };
                parts.push(space.unscaled(x, 64)?);
            }
            Tensor::cat(parts, 0)
        }
    };
    latent_scale(&crate::tensor::to_vec(z))
}
