//! [`Collective`] over MPI (the `mpi` feature): the processes `mpirun -np R` starts, summed with
//! `MPI_Allreduce` on `MPI_COMM_WORLD` (Open MPI picks shared memory between local ranks and the
//! network between hosts).

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use super::collective::{Collective, launched_ranks};
use crate::{Error, Result};

/// The world of an MPI job. Only the thread that made it calls MPI (`MPI_THREAD_FUNNELED`: the
/// tensor library's worker threads never do). MPI is finalised when it is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi({})", self.describe())
    }
}

impl Mpi {
    /// Initialises MPI if an MPI launcher started this process ([`launched_ranks`]); `None`
    /// otherwise (a plain `prism train` stays a single process without touching MPI).
    pub fn from_env() -> Result<Option<Self>> {
        if launched_ranks().is_none() {
            return Ok(None);
        }
        let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| Error::invalid("MPI was initialised twice in one process"))?;
        let world = universe.world();
        Ok(Some(Self {
            world,
            _universe: universe,
        }))
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_f32(&self, values: &mut [f32]) -> Result<()> {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }

    fn sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }

    fn describe(&self) -> String {
        format!("rank {} of {} (MPI)", self.rank(), self.size())
    }
}
