"""Master and workers over MPI (``mpiexec -n N tessphot run-mpi ...``).

Rank 0 is the master: it alone opens ``todo.sqlite``, hands out tasks and saves the results
as they arrive (:class:`~tessphot.runner.master.Master`). Ranks 1 to N-1 are workers
(:func:`mpi_worker`). Messages are pickled Python objects:

- master to worker: the run's :class:`~tessphot.runner.config.TaskConfig` (tag
  :data:`TAG_CONFIG`, once), then tasks (:data:`TAG_TASK`), finally :data:`TAG_STOP`;
- worker to master: results (:data:`TAG_RESULT`).

A rank that dies ends the whole job (that is MPI's way: ``mpiexec`` stops the other ranks).
Nothing finished is lost: every result was committed by the master when it arrived, and a
rerun does the tasks that were being worked on again.

mpi4py is imported only when a pool or worker is made (``pip install 'tessphot[mpi]'``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tessphot.runner.master import PREFETCH, Master
from tessphot.runner.worker import quiet_worker_logging, serve, unwind_on_terminate
from tessphot.tasks.result import TaskResult

logger = logging.getLogger(__name__)

#: Message tags.
TAG_CONFIG, TAG_TASK, TAG_RESULT, TAG_STOP = 1, 2, 3, 4
#: Rank of the master.
MASTER_RANK = 0
#: Shortest and longest pause between two looks for a message [s]. A blocking MPI receive
#: keeps a core busy while it waits (Open MPI polls), which would slow the workers down when
#: there are more ranks than cores; probing with pauses costs at most the longest pause.
POLL_MIN_SECONDS, POLL_MAX_SECONDS = 1e-4, 1e-2


def world() -> Any:
    """``MPI.COMM_WORLD`` (initialises MPI).

    Raises
    ------
    RuntimeError
        When mpi4py is not installed.
    """
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise RuntimeError(
            f"run-mpi needs mpi4py ({err}): pip install 'tessphot[mpi]' (and an MPI library, "
            "e.g. Debian's openmpi-bin and libopenmpi-dev)"
        ) from None
    return MPI.COMM_WORLD


class MPIPool:
    """The worker ranks of an MPI communicator, driven from rank 0.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The communicator (rank 0 is this process, the master).

    Notes
    -----
    Call :meth:`close` in any case (also when the run fails before it starts): it tells the
    workers that were not told yet to stop, so that they do not wait forever.
    """

    def __init__(self, comm: Any) -> None:
        if comm.Get_rank() != MASTER_RANK:
            raise ValueError("the MPI pool is driven from rank 0")
        if comm.Get_size() < 2:
            raise RuntimeError(
                "run-mpi needs at least 2 MPI ranks (a master and a worker), e.g. "
                "mpiexec -n 3 tessphot run-mpi ...; use 'tessphot run -j N' on one machine"
            )
        self.comm = comm
        self.size = comm.Get_size() - 1
        self._running: set[int] = set()
        self._stopped: set[int] = set()

    def run(self, master: Master) -> None:
        """Run the master's tasks on the worker ranks until none is left."""
        from mpi4py import MPI

        comm = self.comm
        for rank in range(1, comm.Get_size()):
            comm.send(master.config, dest=rank, tag=TAG_CONFIG)
            self._running.add(rank)
            self._feed(master, rank)
        status = MPI.Status()
        while self._running:
            result = _receive(comm, MPI.ANY_SOURCE, TAG_RESULT, status)
            master.save(status.Get_source(), result)
            for rank in sorted(self._running):
                if master.held(rank) < PREFETCH:
                    self._feed(master, rank)

    def _feed(self, master: Master, rank: int) -> None:
        """Top up a worker's tasks; tell it to stop when everything is done."""
        while master.held(rank) < PREFETCH:
            task = master.next_task(rank)
            if task is None:
                break
            self.comm.send(task, dest=rank, tag=TAG_TASK)
        if not master.held(rank) and master.finished:
            self._stop(rank)

    def _stop(self, rank: int) -> None:
        self.comm.send(None, dest=rank, tag=TAG_STOP)
        self._running.discard(rank)
        self._stopped.add(rank)

    def close(self) -> None:
        """Tell every worker not stopped yet to stop."""
        for rank in range(1, self.comm.Get_size()):
            if rank not in self._stopped:
                self._stop(rank)


def mpi_worker(comm: Any, debug: bool = False) -> int:
    """Run the tasks rank 0 sends until it says stop; returns the number of tasks run."""
    from mpi4py import MPI

    unwind_on_terminate()  # mpiexec stops the other ranks when one dies
    quiet_worker_logging(debug)
    status = MPI.Status()
    message = _receive(comm, MASTER_RANK, MPI.ANY_TAG, status)
    if status.Get_tag() == TAG_STOP:
        return 0
    config = message

    def receive() -> dict[str, Any] | None:
        task = _receive(comm, MASTER_RANK, MPI.ANY_TAG, status)
        return None if status.Get_tag() == TAG_STOP else task

    def send(result: TaskResult) -> None:
        comm.send(result, dest=MASTER_RANK, tag=TAG_RESULT)

    return serve(config, receive, send)


def _receive(comm: Any, source: int, tag: int, status: Any) -> Any:
    """Receive a message without keeping a core busy while waiting for it.

    See :data:`POLL_MAX_SECONDS`; ``status`` tells its source and tag.
    """
    pause = POLL_MIN_SECONDS
    while not comm.Iprobe(source=source, tag=tag, status=status):
        time.sleep(pause)
        pause = min(2 * pause, POLL_MAX_SECONDS)
    return comm.recv(source=status.Get_source(), tag=status.Get_tag(), status=status)
