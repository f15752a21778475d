//! ⑤ Networks only, no diffusion knowledge: they map (input, noise-level λ, condition) → output.

mod condition;
pub mod layers;
mod patching;
mod unet;
mod uvit;

pub use condition::Condition;
pub use patching::{Patching, PatchingConfig};
pub use unet::{UNet, UNetConfig};
pub use uvit::UViTConfig;
