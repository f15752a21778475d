//! ② Pure, exactly invertible image transforms, differentiable through burn ops: the 5/3 wavelet
//! (simple diffusion's patching, formula sheet §2), the orthonormal DCT (blurring diffusion's
//! frequency space, §3), resolution changes by average pooling and nearest upsampling, and the
//! Laplacian pyramid with its orthonormal Haar basis (Laplacian pyramid diffusion, §4).

mod dct;
pub mod dwt;
mod haar;
mod laplacian;
mod resample;

pub use dct::Dct2d;
pub use haar::{haar_packet, haar_packet_inverse, packet_band};
pub use laplacian::{check_pyramid, down_by, pyramid_bands, pyramid_reconstruct, up_by};
pub use resample::{avg_pool, try_down, up_nearest};
