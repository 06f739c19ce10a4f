"""Worker processes on this machine (``tessphot run -j N``).

The workers are forked from a fork server (``forkserver`` start method) that imported the
photometry code once: they inherit nothing from the master, and a worker that replaces a dead
one is ready at once instead of after seconds of imports. Each talks to the master through
one pipe. The master waits on the pipes and on the processes
themselves, so a worker that dies (killed by a signal, out of memory, a crash in compiled
code) is noticed at once: its task goes back to the queue (or is an ERROR after
:data:`~tessphot.runner.master.MAX_TASK_KILLS` deaths) and a new worker takes its place.
Workers ignore SIGINT: on Ctrl-C the master stores the tasks being worked on as ABORT and
stops them (SIGTERM, on which a worker unwinds, so that no temporary file is left). A
worker whose master dies stops when it finds its pipe closed.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from tessphot.runner.config import TaskConfig
from tessphot.runner.master import PREFETCH, Master
from tessphot.runner.worker import quiet_worker_logging, serve, unwind_on_terminate

logger = logging.getLogger(__name__)

#: Seconds a worker has to stop after it was told to, before it is terminated.
STOP_TIMEOUT = 10.0
#: Start method of the workers (``spawn`` where there is no fork server).
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
#: Modules the fork server imports once, so that the workers it forks start with them.
WORKER_PRELOAD = ["tessphot.runner.local", "tessphot.photometry.aperture"]
#: Workers that may die in a row as they start (before saying they are ready: a broken
#: installation, not a bad task) before the run gives up.
MAX_STARTUP_DEATHS = 3
#: What a worker sends once it has started, before its first result.
READY = "ready"


def _worker_main(conn: Connection, config: TaskConfig, debug: bool) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    unwind_on_terminate()  # terminated by the master
    quiet_worker_logging(debug)

    def receive() -> dict[str, Any] | None:
        try:
            return conn.recv()
        except (EOFError, OSError):  # the master is gone
            return None

    try:
        conn.send(READY)
        serve(config, receive, conn.send)
    except (BrokenPipeError, ConnectionResetError):  # the master is gone
        pass
    finally:
        conn.close()


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    conn: Connection
    #: Told to stop (nothing left to do).
    stopping: bool = False
    #: It has started (sent :data:`READY`).
    ready: bool = False


class LocalPool:
    """``size`` worker processes on this machine.

    Parameters
    ----------
    size : int
        Number of worker processes (at least 1).
    """

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ValueError(f"the number of workers must be a positive integer: {size!r}")
        self.size = int(size)
        self._context = multiprocessing.get_context(START_METHOD)
        if START_METHOD == "forkserver":
            self._context.set_forkserver_preload(WORKER_PRELOAD)
        self._workers: dict[int, _Worker] = {}
        self._started = 0

    def run(self, master: Master) -> None:
        """Run the master's tasks in the worker processes until none is left."""
        startup_deaths = 0
        try:
            for _ in range(self.size):
                self._start(master.config)
            for worker in list(self._workers.values()):
                self._feed(master, worker)
            while any(not w.stopping for w in self._workers.values()):
                for worker in self._active_workers():
                    startup_deaths = self._service(master, worker, startup_deaths)
                for worker in list(self._workers.values()):
                    if not worker.stopping and not master.held(worker.number):
                        self._feed(master, worker)
            self._join()
        finally:
            self._terminate()

    # ----------------------------------------------------------------------------------------
    def _active_workers(self) -> list[_Worker]:
        """Wait until workers have sent something or died; those workers."""
        waitables: list[Any] = []
        for worker in self._workers.values():
            waitables += [worker.conn, worker.process.sentinel]
        ready = set(wait(waitables))
        return [
            worker
            for worker in list(self._workers.values())
            if worker.conn in ready or worker.process.sentinel in ready
        ]

    def _service(self, master: Master, worker: _Worker, startup_deaths: int) -> int:
        """Read what a worker sent and replace it if it died.

        Returns the number of workers in a row that died as they started; raises
        RuntimeError when it reaches :data:`MAX_STARTUP_DEATHS`.
        """
        if not self._receive(master, worker):
            return startup_deaths
        startup_deaths = 0 if worker.ready else startup_deaths + 1
        if startup_deaths >= MAX_STARTUP_DEATHS:
            raise RuntimeError(
                f"{startup_deaths} worker processes in a row died as they "
                f"started ({_how_it_died(worker.process.exitcode)}); see "
                "the messages above"
            )
        if not master.finished:
            self._start(master.config)
        return startup_deaths

    def _start(self, config: TaskConfig) -> _Worker:
        self._started += 1
        parent, child = self._context.Pipe()
        debug = logging.getLogger("tessphot").getEffectiveLevel() <= logging.DEBUG
        process = self._context.Process(
            target=_worker_main,
            args=(child, config, debug),
            name=f"tessphot-worker-{self._started}",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(self._started, process, parent)
        self._workers[worker.number] = worker
        logger.debug("Worker %d started (pid %d)", worker.number, process.pid)
        return worker

    def _feed(self, master: Master, worker: _Worker) -> None:
        """Top up a worker's tasks; tell it to stop when everything is done."""
        try:
            while master.held(worker.number) < PREFETCH:
                task = master.next_task(worker.number)
                if task is None:
                    break
                worker.conn.send(task)
            if not master.held(worker.number) and master.finished:
                worker.stopping = True
                worker.conn.send(None)
        except OSError:  # it died meanwhile: noticed with its sentinel, its tasks queued again
            pass

    def _receive(self, master: Master, worker: _Worker) -> bool:
        """Read what a worker sent; returns True when it died (and was dealt with)."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message == READY:
                    worker.ready = True
                else:
                    master.save(worker.number, message)
        except (EOFError, OSError):
            pass
        else:
            if worker.process.is_alive() or worker.stopping:
                if not worker.stopping:
                    self._feed(master, worker)
                return False
        worker.process.join()
        del self._workers[worker.number]
        worker.conn.close()
        if worker.stopping and worker.process.exitcode == 0:
            return False
        master.worker_lost(
            worker.number, _how_it_died(worker.process.exitcode), blame_task=worker.ready
        )
        return True

    def _join(self) -> None:
        for worker in self._workers.values():
            worker.process.join(STOP_TIMEOUT)

    def _terminate(self) -> None:
        """Stop every worker still running (after an error or an interruption)."""
        for worker in self._workers.values():
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self._workers.values():
            worker.process.join(STOP_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers.clear()


def _how_it_died(exitcode: int | None) -> str:
    """``'killed by signal SIGKILL'`` or ``'exit code 1'``."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"killed by signal {name}"
    return f"exit code {exitcode}"
