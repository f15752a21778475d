//! One sampling trajectory, recorded for pictures (`prism sample --trajectory`): every state a
//! sampler hands the denoiser, with its level and the denoiser's `x̂`. Recording wraps the
//! denoiser, so it sees what every sampler does — including the resolution switches of a process
//! whose state changes resolution, where the recorded states change side.

use std::cell::RefCell;

use burn::tensor::Tensor;

use crate::denoiser::Denoise;
use crate::process::{Level, Prediction};
use crate::transform::up_nearest;
use crate::{Error, Result};

/// One network evaluation of a trajectory: the first image of the batch.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The level the sampler asked for.
    pub level: Level,
    /// The state `z_t` (`[1, C, h, w]`: `h` is the state's side at `t`).
    pub z: Tensor<4>,
    /// The denoiser's `x̂` at that state (same shape).
    pub x0_hat: Tensor<4>,
}

/// A [`Denoise`] that passes every call to `inner` and records its first image as a [`Frame`].
pub struct Recording<'a> {
    inner: &'a dyn Denoise,
    frames: RefCell<Vec<Frame>>,
}

impl<'a> Recording<'a> {
    /// Records the calls to `inner`.
    pub fn new(inner: &'a dyn Denoise) -> Self {
        Self {
            inner,
            frames: RefCell::new(Vec::new()),
        }
    }

    /// The frames recorded so far, in call order.
    pub fn into_frames(self) -> Vec<Frame> {
        self.frames.into_inner()
    }
}

impl Denoise for Recording<'_> {
    fn denoise(&self, z: Tensor<4>, level: Level) -> Result<Prediction> {
        let pred = self.inner.denoise(z.clone(), level)?;
        self.frames.borrow_mut().push(Frame {
            level,
            z: z.narrow(0, 0, 1),
            x0_hat: pred.x0_hat.clone().narrow(0, 0, 1),
        });
        Ok(pred)
    }
}

/// Which of `frames` a picture of `columns` columns shows (all of them when there are fewer): the
/// first and the last, the last before and the first after every change of the state's side (a
/// resolution switch), and then, one at a time, the middle of the widest gap between those
/// shown; in call order.
pub fn pick_frames(frames: &[Frame], columns: usize) -> Vec<usize> {
    let n = frames.len();
    if n == 0 || columns == 0 {
        return Vec::new();
    }
    let side = |i: usize| frames[i].z.dims()[2];
    let mut keep = vec![0, n - 1];
    for i in 0..n - 1 {
        if side(i) != side(i + 1) {
            keep.extend([i, i + 1]);
        }
    }
    keep.sort_unstable();
    keep.dedup();
    while keep.len() < columns.min(n) {
        let (at, gap) = keep
            .windows(2)
            .enumerate()
            .map(|(i, w)| (i, w[1] - w[0]))
            .max_by_key(|&(i, g)| (g, usize::MAX - i))
            .expect("at least two frames kept");
        if gap < 2 {
            break;
        }
        keep.insert(at + 1, keep[at] + gap / 2);
    }
    keep
}

/// The picture of a trajectory: the frames `picked` as columns, the states `z_t` in the first
/// row and the denoiser's `x̂` in the second, each upsampled (nearest) to side `side`; a
/// `[2·len, C, side, side]` batch for [`crate::image::grid`] with `len` columns.
pub fn trajectory_strip(frames: &[Frame], picked: &[usize], side: usize) -> Result<Tensor<4>> {
    let up = |x: &Tensor<4>| -> Result<Tensor<4>> {
        let h = x.dims()[2];
        if h == 0 || !side.is_multiple_of(h) {
            return Err(Error::Shape(format!(
                "a trajectory frame of side {h} does not upsample to {side}"
            )));
        }
        Ok(up_nearest(x.clone(), side / h))
    };
    let mut rows = Vec::with_capacity(2 * picked.len());
    for &i in picked {
        rows.push(up(&frames[i].z)?);
    }
    for &i in picked {
        rows.push(up(&frames[i].x0_hat)?);
    }
    if rows.is_empty() {
        return Err(Error::invalid(
            "a trajectory picture needs at least one frame",
        ));
    }
    Ok(Tensor::cat(rows, 0))
}
