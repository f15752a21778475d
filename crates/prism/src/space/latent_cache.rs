//! Latents of a folder's (or IDX file's) images cached on disk: every training image encoded once
//! by the frozen autoencoder — and its mirror image too when `data.random_flip` is on, since
//! `E(flip x)` is not `flip E(x)` for a learned encoder — instead of one encoder pass per step.
//!
//! A cache file is `latents-<key>.safetensors` in the cache folder ([`LatentConfig::cache_folder`]),
//! with the unscaled latents `latents` (`[N, C, h, w]`) and `latents_flipped`; `<key>` is the
//! SHA-256 of the autoencoder file's hash, the images exactly as training reads them (their pixels
//! after fitting, with the geometry: channels, stored and training side) and whether flips are
//! cached. Another autoencoder, other images, another `data.image_size`, `fit`, `background`,
//! `limit` or `held_out` split changes the key, so a stale cache is never read. A missing file is
//! built; an unreadable one, or one whose metadata disagrees with its key, is rebuilt, with a
//! message saying why.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use sha2::{Digest, Sha256};

use super::LatentSpace;
use super::latent::LatentConfig;
use crate::data::Dataset;
use crate::io::{self, FORMAT_KEY, HostTensor};
use crate::nn::autoencoder::hex;
use crate::{Error, Result};

/// The `format` metadata of a latent cache file.
pub const LATENT_CACHE_FORMAT: &str = "prism-latents";
/// Bumped when the cache's layout or the latent it stores changes.
const VERSION: &str = "prism-latents-v1";
/// Images per encoder pass while building.
const ENCODE_BATCH: usize = 32;

/// How [`LatentCache::open`] got its latents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOrigin {
    /// Read from an existing file.
    Read,
    /// Encoded now: there was no file.
    Built,
    /// Encoded now: the file could not be used (the reason).
    Rebuilt(String),
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LatentCache {
    path: PathBuf,
    shape: [usize; 3],
    latents: Vec<f32>,
    flipped: Option<Vec<f32>>,
}

/// The key of `set`'s latents under the autoencoder with hash `ae_hash`; errors for a set a
/// cache cannot hold (decoded lazily, or randomly cropped).
pub fn cache_key(ae_hash: &str, set: &Dataset) -> Result<String> {
    let Some((pixels, geometry)) = set.stored_pixels() else {
        return Err(Error::config(
            "space.latents = \"cache\" needs the images in memory, but data.lazy = true; set space.latents = \"on_the_fly\"",
        ));
    };
    if set.random_crop() {
        return Err(Error::config(
            "space.latents = \"cache\" cannot hold random crops (data.fit = \"random_crop\"); set space.latents = \"on_the_fly\"",
        ));
    }
    let mut h = Sha256::new();
    h.update(VERSION.as_bytes());
    h.update([0]);
    h.update(ae_hash.as_bytes());
    h.update([0]);
    for g in geometry {
        h.update((g as u64).to_le_bytes());
    }
    h.update([u8::from(set.random_flip())]);
    h.update((set.len() as u64).to_le_bytes());
    for v in pixels {
        h.update(v.to_le_bytes());
    }
    Ok(hex(&h.finalize()))
}

impl LatentCache {
    /// The cache of `set` under `space` in `cfg`'s cache folder: read when a valid file exists,
    /// encoded (and written atomically) otherwise. `on_build` is told the file and the reason
    /// before a build starts.
    pub fn open(
        space: &LatentSpace,
        cfg: &LatentConfig,
        set: &Dataset,
        on_build: &mut dyn FnMut(&Path, &str),
    ) -> Result<(Self, CacheOrigin)> {
        let key = cache_key(space.hash(), set)?;
        let path = cfg
            .cache_folder()
            .join(format!("latents-{}.safetensors", &key[..16]));
        let reason = if path.exists() {
            match Self::read(&path, &key, set) {
                Ok(cache) => return Ok((cache, CacheOrigin::Read)),
                Err(e) => Some(e.to_string()),
            }
        } else {
            None
        };
        on_build(
            &path,
            reason
                .as_deref()
                .unwrap_or("no cached latents for this autoencoder and these images yet"),
        );
        let cache = Self::build(space, set, path)?;
        cache.write(&key, space.hash())?;
        Ok((
            cache,
            match reason {
                Some(r) => CacheOrigin::Rebuilt(r),
                None => CacheOrigin::Built,
            },
        ))
    }

    fn build(space: &LatentSpace, set: &Dataset, path: PathBuf) -> Result<Self> {
        let device = crate::default_device();
        let n = set.len();
        let mut latents = Vec::new();
        let mut flipped = set.random_flip().then(Vec::new);
        let mut shape = [0; 3];
        for start in (0..n).step_by(ENCODE_BATCH) {
            let idx: Vec<usize> = (start..(start + ENCODE_BATCH).min(n)).collect();
            let x = set
                .plain_images(&idx, &device)
                .expect("a cacheable set is in memory");
            let z = space.unscaled(x.clone(), ENCODE_BATCH)?;
            let [_, c, h, w] = z.dims();
            shape = [c, h, w];
            latents.extend(crate::tensor::to_vec(z));
            if let Some(f) = flipped.as_mut() {
                f.extend(crate::tensor::to_vec(
                    space.unscaled(x.flip([3]), ENCODE_BATCH)?,
                ));
            }
        }
        Ok(Self {
            path,
            shape,
            latents,
            flipped,
        })
    }

    fn write(&self, key: &str, ae_hash: &str) -> Result<()> {
        let n = self.len();
        let [c, h, w] = self.shape;
        let mut tensors = BTreeMap::from([(
            "latents".to_string(),
            HostTensor {
                shape: vec![n, c, h, w],
                data: self.latents.clone(),
            },
        )]);
        if let Some(f) = &self.flipped {
            tensors.insert(
                "latents_flipped".to_string(),
                HostTensor {
                    shape: vec![n, c, h, w],
                    data: f.clone(),
                },
            );
        }
        let meta = HashMap::from([
            (FORMAT_KEY.to_string(), LATENT_CACHE_FORMAT.to_string()),
            ("key".to_string(), key.to_string()),
            ("autoencoder".to_string(), ae_hash.to_string()),
            ("images".to_string(), n.to_string()),
        ]);
        io::save(&self.path, &tensors, meta)
    }

    fn read(path: &Path, key: &str, set: &Dataset) -> Result<Self> {
        let bad = |reason: String| Error::Checkpoint {
            path: path.into(),
            reason,
        };
        let ck = io::load(path)?;
        if ck.meta(FORMAT_KEY, path)? != LATENT_CACHE_FORMAT {
            return Err(bad("not a latent cache".into()));
        }
        if ck.meta("key", path)? != key {
            return Err(bad("its key is not this cache's (another autoencoder or other images share the file name's prefix)".into()));
        }
        let get = |name: &str| -> Result<HostTensor> {
            let t = ck
                .tensors
                .get(name)
                .ok_or_else(|| bad(format!("no tensor '{name}'")))?;
            match t.shape.as_slice() {
                [n, _, _, _] if *n == set.len() => Ok(t.clone()),
                s => Err(bad(format!(
                    "'{name}' has shape {s:?}, not one latent per each of the {} images",
                    set.len()
                ))),
            }
        };
        let latents = get("latents")?;
        let flipped = if set.random_flip() {
            let f = get("latents_flipped")?;
            if f.shape != latents.shape {
                return Err(bad("'latents_flipped' and 'latents' differ in shape".into()));
            }
            Some(f.data)
        } else {
            None
        };
        Ok(Self {
            path: path.into(),
            shape: [latents.shape[1], latents.shape[2], latents.shape[3]],
            latents: latents.data,
            flipped,
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Images cached.
    pub fn len(&self) -> usize {
        self.latents.len() / self.latent_len().max(1)
    }

    /// Whether no image is cached.
    pub fn is_empty(&self) -> bool {
        self.latents.is_empty()
    }

    /// `[C, h, w]` of one latent.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn latent_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The unscaled latents of the images `indices` (`[B, C, h, w]`), of the mirror image where
    /// `flipped` says so (the flips a batch of images drew, [`crate::data::Batch::flipped`]).
    pub fn batch(&self, indices: &[usize], flipped: &[bool], device: &Device) -> Result<Tensor<4>> {
        let len = self.latent_len();
        let mut data = Vec::with_capacity(indices.len() * len);
        for (k, &i) in indices.iter().enumerate() {
            let flip = flipped.get(k).copied().unwrap_or(false);
            let src = match (&self.flipped, flip) {
                (Some(f), true) => f,
                (None, true) => {
                    return Err(Error::invalid(
                        "a flipped image, but the latent cache holds no flipped latents",
                    ));
                }
                _ => &self.latents,
            };
            let Some(z) = src.get(i * len..(i + 1) * len) else {
                return Err(Error::invalid(format!(
                    "image {i} of a latent cache of {} images",
                    self.len()
                )));
            };
            data.extend_from_slice(z);
        }
        let [c, h, w] = self.shape;
        Ok(Tensor::from_data(
            TensorData::new(data, [indices.len(), c, h, w]),
            device,
        ))
    }
}
