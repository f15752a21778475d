//! ② Pure, exactly invertible image transforms, differentiable through burn ops: the 5/3 wavelet
//! (simple diffusion's patching, formula sheet §2) and the orthonormal DCT (blurring diffusion's
//! frequency space, §3), and resolution changes by average pooling and nearest upsampling.

mod dct;
pub mod dwt;
mod resample;

pub use dct::Dct2d;
pub use resample::{avg_pool, try_down, up_nearest};
