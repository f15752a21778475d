//! What a network is conditioned on, carried from the data to the network as one value. Each
//! part is optional:
//!
//! - `label`: a class per sample (`[B]`); the index `num_classes` is the null label that
//!   classifier-free guidance and condition dropout use;
//! - `context`: a token sequence `[B, L, D]` for cross-attention (class tokens, text embeddings);
//! - `image`: a spatial condition `[B, C_c, H, W]` concatenated to the network's input on the
//!   channel axis (a low-resolution image upsampled for super-resolution; a masked image and its
//!   mask for inpainting);
//! - `image_noise`: per sample (`[B]`), how noisy the spatial condition is, as a logSNR — the
//!   noise augmentation of a super-resolution stage's low-resolution image (Ho et al. 2022,
//!   Cascaded Diffusion Models; Imagen), which a network with `cond_noise_level` embeds like its
//!   own noise level.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// Class per sample.
    pub label: Option<Tensor<1, Int>>,
    /// Context tokens for cross-attention.
    pub context: Option<Tensor<3>>,
    /// A spatial condition concatenated to the input.
    pub image: Option<Tensor<4>>,
    /// The logSNR of the noise added to `image`, per sample.
    pub image_noise: Option<Tensor<1>>,
}

impl Condition {
    /// No condition.
    pub fn none() -> Self {
        Self::default()
    }

    /// A class label per sample (`None`: no label).
    pub fn labels(label: Option<Tensor<1, Int>>) -> Self {
        Self {
            label,
            ..Self::default()
        }
    }

    /// Labels from host values.
    pub fn from_labels(labels: &[i64], device: &Device) -> Self {
        Self::labels(Some(Tensor::from_data(
            TensorData::new(labels.to_vec(), [labels.len()]),
            device,
        )))
    }

    /// Labels `0, 1, …, classes − 1, 0, 1, …` for `n` images (sample grids: one class per
    /// column); no condition when `classes` is 0.
    pub fn cycling_labels(n: usize, classes: usize, device: &Device) -> Self {
        if classes == 0 {
            return Self::none();
        }
        let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
        Self::from_labels(&labels, device)
    }

    /// The null condition for classifier-free guidance at batch size `batch`: every label
    /// replaced by the null label `num_classes`, a supplied context replaced by the null context
    /// (zeros of its shape; see [`crate::nn::ContextSource`]), the spatial condition kept
    /// (guidance is over the label and context, not over the image a stage refines).
    pub fn null(&self, batch: usize, num_classes: usize, device: &Device) -> Self {
        Self {
            label: self
                .label
                .as_ref()
                .map(|_| Tensor::full([batch], num_classes as i64, device)),
            context: self.context.as_ref().map(|c| c.zeros_like()),
            image: self.image.clone(),
            image_noise: self.image_noise.clone(),
        }
    }

    /// The two conditions stacked on the batch axis (the conditional and unconditional halves of
    /// a guided batch). A part present in one and absent in the other is an error.
    pub fn cat(a: &Condition, b: &Condition) -> Result<Condition> {
        fn both<T: Clone>(
            x: &Option<T>,
            y: &Option<T>,
            what: &str,
            cat: impl Fn(Vec<T>) -> T,
        ) -> Result<Option<T>> {
            match (x, y) {
                (Some(x), Some(y)) => Ok(Some(cat(vec![x.clone(), y.clone()]))),
                (None, None) => Ok(None),
                _ => Err(Error::invalid(format!(
                    "cannot stack conditions: one has a {what} and the other not"
                ))),
            }
        }
        Ok(Condition {
            label: both(&a.label, &b.label, "label", |v| Tensor::cat(v, 0))?,
            context: both(&a.context, &b.context, "context", |v| Tensor::cat(v, 0))?,
            image: both(&a.image, &b.image, "spatial condition", |v| {
                Tensor::cat(v, 0)
            })?,
            image_noise: both(
                &a.image_noise,
                &b.image_noise,
                "spatial condition's noise level",
                |v| Tensor::cat(v, 0),
            )?,
        })
    }

    /// The samples at `indices` (a training group).
    pub fn select(&self, indices: &[usize]) -> Condition {
        let device = self
            .label
            .as_ref()
            .map(|l| l.device())
            .or_else(|| self.context.as_ref().map(|c| c.device()))
            .or_else(|| self.image.as_ref().map(|i| i.device()))
            .or_else(|| self.image_noise.as_ref().map(|i| i.device()));
        let Some(device) = device else {
            return Condition::none();
        };
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(
                indices.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [indices.len()],
            ),
            &device,
        );
        Condition {
            label: self.label.clone().map(|l| l.select(0, idx.clone())),
            context: self.context.clone().map(|c| c.select(0, idx.clone())),
            image: self.image.clone().map(|i| i.select(0, idx.clone())),
            image_noise: self.image_noise.clone().map(|i| i.select(0, idx)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec_int;

    #[test]
    fn null_condition_keeps_the_image_and_nulls_the_label() {
        let device = Device::flex();
        let c = Condition {
            image: Some(Tensor::zeros([2, 1, 4, 4], &device)),
            image_noise: Some(Tensor::from_floats([1.0, 2.0], &device)),
            ..Condition::from_labels(&[3, 1], &device)
        };
        let n = c.null(2, 10, &device);
        assert_eq!(to_vec_int(n.label.clone().unwrap()), vec![10, 10]);
        assert!(n.image.is_some() && n.image_noise.is_some() && n.context.is_none());
        // A supplied context: its null is zeros of its shape, stackable with the real one.
        let ctx = Condition {
            context: Some(Tensor::ones([2, 3, 4], &device)),
            ..Condition::none()
        };
        let both = Condition::cat(&ctx, &ctx.null(2, 0, &device)).unwrap();
        let v = crate::tensor::to_vec(both.context.unwrap().reshape([4 * 3 * 4]));
        assert_eq!(v, [vec![1.0; 24], vec![0.0; 24]].concat());
        let both = Condition::cat(&c, &n).unwrap();
        assert_eq!(to_vec_int(both.label.unwrap()), vec![3, 1, 10, 10]);
        assert_eq!(both.image.unwrap().dims(), [4, 1, 4, 4]);
        let noise = crate::tensor::to_vec(both.image_noise.unwrap());
        assert_eq!(noise, vec![1.0, 2.0, 1.0, 2.0]);
        let picked = c.select(&[1]);
        assert_eq!(to_vec_int(picked.label.unwrap()), vec![1]);
        assert_eq!(
            crate::tensor::to_vec(picked.image_noise.unwrap()),
            vec![2.0]
        );
        let e = Condition::cat(&c, &Condition::none()).unwrap_err();
        assert!(e.to_string().contains("label"), "{e}");
    }
}
