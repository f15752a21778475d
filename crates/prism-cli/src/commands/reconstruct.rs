//! `prism reconstruct`: a trained autoencoder's reconstructions of images (inputs above
//! reconstructions) and their mean absolute error. A diffusers VAE (Stable Diffusion's) has no
//! training data of its own: give it `--data` and `--image-size`.

use anyhow::{Context, Result};
use prism::run::autoencoder::{held_out_l1, load_autoencoder, reconstruction_grid};

use crate::args::ReconstructArgs;

/// The images an autoencoder is shown: the first `num` of the folder or file `given` (every image
/// of it, none held out), or else the held-out images of its training data; unflipped.
pub(super) fn autoencoder_images(
    mut data: prism::data::DataConfig,
    given: Option<&std::path::Path>,
    num: usize,
) -> Result<prism::data::Dataset> {
    data.random_flip = false;
    let set = match given {
        Some(path) => {
            data.path = path.to_path_buf();
            data.held_out = 0;
            data.limit = num;
            data.load()?
        }
        None => {
            let held = data.held_out;
            anyhow::ensure!(
                held > 0,
                "the autoencoder's data has no held-out images: pass --data"
            );
            data.load()?.split(held).1
        }
    };
    Ok(set)
}

pub fn run(a: ReconstructArgs) -> Result<()> {
    anyhow::ensure!(a.num > 0, "--num must be positive");
    anyhow::ensure!(
        a.out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png")),
        "--out must name a .png file, got '{}'",
        a.out.display()
    );
    let device = prism::default_device();
    let (cfg, ae, step) = load_autoencoder(&a.checkpoint, &device)
        .with_context(|| format!("loading '{}'", a.checkpoint.display()))?;
    let mut data = match cfg {
        Some(cfg) => cfg.data,
        None => {
            let (Some(path), Some(size)) = (&a.data, a.image_size) else {
                anyhow::bail!(
                    "'{}' is a diffusers VAE, with no training data of its own: pass --data and --image-size",
                    a.checkpoint.display()
                );
            };
            serde_json::from_value(serde_json::json!({
                "path": path,
                "image_size": size,
                "channels": ae.image_channels(),
            }))?
        }
    };
    if let Some(size) = a.image_size {
        anyhow::ensure!(
            size > 0 && size % ae.factor() == 0,
            "--image-size must be a positive multiple of the autoencoder's factor {}, got {size}",
            ae.factor()
        );
        data.image_size = size;
    }
    let set = autoencoder_images(data, a.data.as_deref(), a.num)?;
    let set = set.take(a.num);
    reconstruction_grid(&ae, &set, a.num, &device, &a.out)?;
    let l1 = held_out_l1(&ae, &set, &device)?;
    eprintln!(
        "autoencoder f{} at step {step}: {} images, mean |x − x̂| = {l1:.4} (pixels in [-1, 1])\n  grid {}",
        ae.factor(),
        set.len(),
        a.out.display()
    );
    Ok(())
}
