//! Inpainting with a trained inpainting model (latent diffusion's concat conditioning): the model
//! draws the whole image given the masked image and the mask; the known region of the output is
//! then the input itself, exactly: `out = mask · sample + (1 − mask) · image`.

use burn::tensor::{Device, Tensor};

use super::{Stage, StageSampling};
use crate::nn::Condition;
use crate::{Error, Result};

impl Stage {
    /// Fills the region `mask` marks (`[B, 1, H, W]`, 1 = fill, 0 = keep) in `images`
    /// (`[B, C, H, W]` in `[-1, 1]`, at the model's size and channels) under `cond` (labels or a
    /// context for a model that takes them). Errors: not an inpainting model, sizes that do not
    /// match the model, a mask that is not 0/1.
    #[allow(clippy::too_many_arguments)]
    pub fn inpaint(
        &self,
        images: Tensor<4>,
        mask: Tensor<4>,
        sampling: &StageSampling,
        cond: &Condition,
        seed: u64,
        device: &Device,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        if !self.cfg.stage.is_inpaint() {
            return Err(Error::invalid(format!(
                "'{}' is not an inpainting model (its config has no [stage] kind = \"inpaint\")",
                self.path.display()
            )));
        }
        let [b, c, h, w] = images.dims();
        let d = &self.cfg.data;
        if c != d.channels || h != d.image_size || w != d.image_size {
            return Err(Error::Shape(format!(
                "the image is {c}×{h}×{w} (channels × height × width); this model fills {}×{}×{} images",
                d.channels, d.image_size, d.image_size
            )));
        }
        if mask.dims() != [b, 1, h, w] {
            let [_, mc, mh, mw] = mask.dims();
            return Err(Error::Shape(format!(
                "the mask is {mc}×{mh}×{mw}; the image needs a one-channel {h}×{w} mask"
            )));
        }
        if !crate::tensor::to_vec(mask.clone())
            .iter()
            .all(|&v| v == 0.0 || v == 1.0)
        {
            return Err(Error::invalid(
                "the mask must hold only 0 (keep) and 1 (fill)",
            ));
        }
        let input = self.cfg.model_input()?;
        let cond = Condition {
            image: Some(input.inpainting_condition(images.clone(), mask.clone())?),
            ..self.model_condition(cond)
        };
        let sample = self.draw([b, c, h, w], sampling, cond, seed, device, on_step, None)?;
        Ok(sample * mask.clone() + images * (mask.neg() + 1.0))
    }
}
