"""Parallel runs of the photometry: local worker processes and MPI, surviving faults.

:class:`Master` owns ``todo.sqlite`` (hands out tasks in an I/O-aware order, saves every
result as it arrives, keeps ``summary.json`` current, shows a progress bar); a pool runs
the tasks: :class:`LocalPool` in worker processes on this machine (``tessphot run -j N``),
:class:`MPIPool` on the ranks of an MPI job (``mpiexec -n N tessphot run-mpi``).
"""

from tessphot.parallel.local import LocalPool
from tessphot.parallel.master import Master
from tessphot.parallel.mpi import MPIPool, mpi_worker
from tessphot.parallel.schedule import TileScheduler, task_tiles

__all__ = ["LocalPool", "MPIPool", "Master", "TileScheduler", "mpi_worker", "task_tiles"]
