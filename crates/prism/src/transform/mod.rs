//! Orthogonal image transforms used by forward processes that act per frequency (formula sheet §3).

mod dct;

pub use dct::Dct2d;
