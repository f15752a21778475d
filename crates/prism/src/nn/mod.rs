//! ⑤ Networks only, no diffusion knowledge: they map (input, noise-level λ, condition) → output.

pub mod layers;
mod unet;

pub use unet::{UNet, UNetConfig};
