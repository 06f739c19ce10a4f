"""The photometry stage's runner: the task loop, local worker processes and MPI.

:func:`run_photometry` hands out the tasks of ``todo.sqlite`` and stores their results
(:class:`tessphot.tasks.TaskResult`), in this process or in a pool of workers. For parallel
runs :class:`Master` owns ``todo.sqlite`` (hands out tasks in an I/O-aware order,
:mod:`tessphot.runner.schedule`; saves every result as it arrives; keeps ``summary.json``
current; shows a progress bar); a pool runs the tasks: :class:`LocalPool` in worker processes
on this machine (``tessphot run -j N``), :class:`MPIPool` on the ranks of an MPI job
(``mpiexec -n N tessphot run-mpi``). Each task is
:func:`tessphot.photometry.task.photometry_task`.
"""

from tessphot.runner.config import TaskConfig
from tessphot.runner.local import LocalPool
from tessphot.runner.loop import NoTaskError, run_photometry
from tessphot.runner.master import Master
from tessphot.runner.mpi import MPIPool, mpi_worker
from tessphot.runner.report import RunReport, format_summary
from tessphot.runner.schedule import TileScheduler, task_tiles

__all__ = [
    "LocalPool",
    "MPIPool",
    "Master",
    "NoTaskError",
    "RunReport",
    "TaskConfig",
    "TileScheduler",
    "format_summary",
    "mpi_worker",
    "run_photometry",
    "task_tiles",
]
