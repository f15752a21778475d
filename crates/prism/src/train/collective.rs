//! Data-parallel training's communication: the [`Collective`] a trainer sums over. One process is
//! [`Single`] (every operation is the identity); `R` processes launched by `mpirun` are
//! [`super::Mpi`] (the `mpi` feature). The rest of the trainer never asks which it holds.
//!
//! Data parallelism here reproduces one process's batch exactly: every rank draws the whole global
//! batch of `B` images, times and noise from the step's generator, keeps its [`Collective::shard`]
//! of `B/R` of them, and the ranks' gradients are averaged before the update
//! ([`super::NamedGrads::average`]). The mean of the shards' mean losses is the batch's mean loss,
//! so the averaged gradient is the one-process gradient up to the order of the sums; every rank
//! then applies the same update to the same weights and stays identical.

use std::ops::Range;

use crate::{Error, Result};

/// The processes that train one model together.
pub trait Collective {
    /// This process's index, `0..size()`; rank 0 alone writes files.
    fn rank(&self) -> usize;

    /// How many processes train together.
    fn size(&self) -> usize;

    /// Replaces `values` by their element-wise sums over all ranks (every rank gets the same
    /// sums; every rank must call it with as many values).
    fn sum_f32(&self, values: &mut [f32]) -> Result<()>;

    /// [`Collective::sum_f32`] for `f64` values (metrics, flags).
    fn sum_f64(&self, values: &mut [f64]) -> Result<()>;

    /// The mean of `value` over all ranks.
    fn mean(&self, value: f64) -> Result<f64> {
        if self.size() == 1 {
            return Ok(value);
        }
        let mut v = [value];
        self.sum_f64(&mut v)?;
        Ok(v[0] / self.size() as f64)
    }

    /// Whether `flag` is set on any rank (so that all ranks take the same branch, e.g. stop).
    fn any(&self, flag: bool) -> Result<bool> {
        if self.size() == 1 {
            return Ok(flag);
        }
        let mut v = [f64::from(u8::from(flag))];
        self.sum_f64(&mut v)?;
        Ok(v[0] > 0.0)
    }

    /// This rank's contiguous part of a global batch of `n` items: `[rank·n/R, (rank+1)·n/R)`.
    /// Errors unless `R` divides `n` (equal shards keep the mean of shard means the batch mean).
    fn shard(&self, n: usize) -> Result<Range<usize>> {
        let (r, size) = (self.rank(), self.size());
        if size == 0 || !n.is_multiple_of(size) {
            return Err(Error::config(format!(
                "train.batch_size = {n} is not divisible by the {size} processes training together; \
                 use a batch size that is a multiple of the process count"
            )));
        }
        let per = n / size;
        Ok(r * per..(r + 1) * per)
    }

    /// A description for messages ("1 process", "rank 1 of 2 (MPI)").
    fn describe(&self) -> String {
        if self.size() == 1 {
            "1 process".into()
        } else {
            format!("rank {} of {}", self.rank(), self.size())
        }
    }
}

/// The number of processes of the `mpirun` (Open MPI, or MPICH's and MVAPICH's launchers) that
/// started this process, if one did: what tells a program built without the `mpi` feature that
/// it would train alone `R` times.
pub fn launched_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

/// One process training alone: sums over one rank are the values themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_f32(&self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }

    fn sum_f64(&self, _values: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake rank of a group (sums are the identity; only the sharding is tested).
    struct Rank(usize, usize);

    impl Collective for Rank {
        fn rank(&self) -> usize {
            self.0
        }
        fn size(&self) -> usize {
            self.1
        }
        fn sum_f32(&self, _: &mut [f32]) -> Result<()> {
            Ok(())
        }
        fn sum_f64(&self, _: &mut [f64]) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn shards_cover_the_batch_once_and_need_a_divisor() {
        assert_eq!(Single.shard(7).unwrap(), 0..7);
        let parts: Vec<_> = (0..4).map(|r| Rank(r, 4).shard(8).unwrap()).collect();
        assert_eq!(parts, vec![0..2, 2..4, 4..6, 6..8]);
        let e = Rank(0, 3).shard(8).unwrap_err().to_string();
        assert!(
            e.contains("train.batch_size = 8") && e.contains("3 processes"),
            "{e}"
        );
        assert_eq!(Single.mean(2.5).unwrap(), 2.5);
        assert!(Single.any(true).unwrap() && !Single.any(false).unwrap());
    }
}
