//! ② Pure, exactly invertible image transforms, differentiable through burn ops: the 5/3 wavelet
//! (simple diffusion's patching, formula sheet §2) and the orthonormal DCT (blurring diffusion's
//! frequency space, §3).

mod dct;
pub mod dwt;

pub use dct::Dct2d;
