//! Checkpoint files and parameters by path: the low-level I/O that `nn` (feature networks),
//! `train` (training state) and `eval` share. Imports nothing above `error`, `fsutil` and `tensor`.
//!
//! - [`save`] / [`load`] — safetensors with string metadata, written atomically;
//! - [`host_params`] / [`map_params`] / [`load_into`] — every float parameter of a burn module under
//!   its path (`down.0.blocks.1.res.conv1.weight`), copied to the host or replaced from host data;
//! - [`read_npz`] / [`write_npz`] — NumPy `.npz` arrays (reference statistics, sample sets).

mod checkpoint;
mod npz;
mod params;

pub use checkpoint::{
    FORMAT_KEY, Loaded, check_matches, load, non_finite, parse, read_format, save,
};
pub use npz::{NpyArray, NpyDtype, read_npz, write_npz};
pub use params::{
    HostTensor, grads_by_name, grads_free_flat_params, host_params, host_to_flat, load_into,
    map_params,
};
