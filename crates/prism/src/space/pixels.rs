//! The pixel space: diffusion on the images themselves.

use burn::tensor::Tensor;

use super::Space;
use crate::Result;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pixels;

impl Space for Pixels {
    fn kind(&self) -> &'static str {
        "pixels"
    }

    fn shape(&self, image: [usize; 4]) -> [usize; 4] {
        image
    }

    fn encode(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        Ok(x)
    }

    fn decode(&self, z: Tensor<4>) -> Result<Tensor<4>> {
        Ok(z)
    }

    fn mask(&self, mask: Tensor<4>) -> Result<Tensor<4>> {
        Ok(mask)
    }
}
