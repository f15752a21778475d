//! ① Data: IDX (MNIST-style) files and image folders → an in-memory set of images in `[-1, 1]`,
//! with labels when the source has them, a held-out split, and deterministic batches.

mod dataset;
mod folder;
mod idx;
mod lazy;
mod transform;

pub use dataset::{Batch, Dataset, planes};
pub use folder::{open_image, read_folder};
pub use idx::{read_idx_images, read_idx_labels};
pub use lazy::LazyDecode;
pub use transform::{Fit, fit_to_size, hflip};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where the images come from and how they are shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// An IDX images file (`*-images-idx3-ubyte[.gz]`, labels found beside it) or a folder of
    /// PNG/JPEG/WebP images (sub-folders become classes). Relative paths are resolved from the
    /// working directory.
    pub path: PathBuf,
    /// Side of the square training images.
    pub image_size: usize,
    /// 1 (grey) or 3 (RGB).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// How images of another size are brought to `image_size`.
    #[serde(default)]
    pub fit: Fit,
    /// Background for transparent pixels, as RGB in 0–255.
    #[serde(default = "default_background")]
    pub background: [u8; 3],
    /// Number of images held out for evaluation (taken from the end of the set).
    #[serde(default = "default_held_out")]
    pub held_out: usize,
    /// For `fit = "random_crop"`: the side images are stored at before cropping.
    #[serde(default)]
    pub load_size: Option<usize>,
    /// Flip training images left–right with probability ½.
    #[serde(default)]
    pub random_flip: bool,
    /// Use at most this many images (0: all).
    #[serde(default)]
    pub limit: usize,
    /// For image folders: keep only the file list and decode every batch's images when it is
    /// drawn (for folders of large photographs). Each image is scaled so its shorter side is
    /// `load_size` (when set), then cropped to `image_size`: at random for training with
    /// `fit = "random_crop"`, centred otherwise.
    #[serde(default)]
    pub lazy: bool,
}

fn default_channels() -> usize {
    1
}
fn default_background() -> [u8; 3] {
    [255, 255, 255]
}
fn default_held_out() -> usize {
    1000
}

impl DataConfig {
    /// Loads the whole set as configured.
    pub fn load(&self) -> Result<Dataset> {
        if !(self.channels == 1 || self.channels == 3) {
            return Err(Error::config(format!(
                "data.channels must be 1 or 3, got {}",
                self.channels
            )));
        }
        if self.image_size == 0 {
            return Err(Error::config("data.image_size must be positive"));
        }
        let path = &self.path;
        if !path.exists() {
            return Err(Error::io(
                "read",
                path.clone(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
        let set = if path.is_dir() {
            read_folder(path, self)?
        } else if self.lazy {
            return Err(Error::config(format!(
                "data.lazy needs a folder of images, but '{}' is a file",
                path.display()
            )));
        } else {
            self.load_idx(path)?
        };
        let set = if self.limit > 0 {
            set.take(self.limit)
        } else {
            set
        };
        if set.len() <= self.held_out {
            return Err(Error::Data {
                path: path.clone(),
                reason: format!(
                    "{} images is not more than data.held_out = {}",
                    set.len(),
                    self.held_out
                ),
            });
        }
        Ok(set)
    }

    fn load_idx(&self, path: &Path) -> Result<Dataset> {
        let (n, h, w, pixels) = read_idx_images(path)?;
        let labels_path = labels_beside(path);
        let labels = match &labels_path {
            Some(p) if p.exists() => {
                let l = read_idx_labels(p)?;
                if l.len() != n {
                    return Err(Error::Data {
                        path: p.clone(),
                        reason: format!("{} labels for {n} images", l.len()),
                    });
                }
                Some(l)
            }
            _ => None,
        };
        Dataset::from_grey_u8(&pixels, n, h, w, labels, self)
    }
}

/// `.../x-images-idx3-ubyte.gz` → `.../x-labels-idx1-ubyte.gz`.
fn labels_beside(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    name.contains("images-idx3")
        .then(|| path.with_file_name(name.replace("images-idx3", "labels-idx1")))
}
