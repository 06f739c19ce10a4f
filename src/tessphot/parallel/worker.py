"""The worker side of a parallel run: run the tasks the master sends, send back the results.

Two environment variables are **test hooks** (for the tests of the fault handling, never for
production runs): with ``TESSPHOT_TEST_KILL_STARID=TIC`` a worker kills itself with SIGKILL
when it starts the task of that star, as a crash of the photometry (a segmentation fault,
the out-of-memory killer) would; with ``TESSPHOT_TEST_KILL_ONCE=FILE`` as well, only the
first worker to get there does (it creates FILE), so the task succeeds when it is retried.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from threadpoolctl import threadpool_limits

from tessphot.photometry.run import TaskConfig

logger = logging.getLogger(__name__)

#: Test hook: TIC number of a star whose task kills its worker (SIGKILL).
KILL_STARID_ENV = "TESSPHOT_TEST_KILL_STARID"
#: Test hook: marker file; when set, only the worker that creates it is killed.
KILL_ONCE_ENV = "TESSPHOT_TEST_KILL_ONCE"
#: Threads of numpy's linear-algebra libraries per worker (one core per worker).
WORKER_THREADS = 1


def quiet_worker_logging(debug: bool = False) -> None:
    """Logging of a worker process: its warnings and errors reach the master inside the
    results (``details['errors']``), so they are not printed again; with ``debug`` every
    message is printed."""
    from tessphot.logs import setup_logging

    if debug:
        setup_logging(debug=True)
        return
    package = logging.getLogger("tessphot")
    for handler in list(package.handlers):
        package.removeHandler(handler)
    package.addHandler(logging.NullHandler())
    package.setLevel(logging.WARNING)
    package.propagate = False


def serve(
    config: TaskConfig,
    receive: Callable[[], Mapping[str, Any] | None],
    send: Callable[[dict[str, Any]], None],
) -> int:
    """Run tasks until told to stop.

    Parameters
    ----------
    config : TaskConfig
        How to run a task.
    receive : callable
        Blocks until the next task arrives; returns it, or None to stop.
    send : callable
        Sends a result to the master. The result carries ``worker_wait_time``, the seconds
        this worker waited for the task.

    Returns
    -------
    int
        Number of tasks run.
    """
    done = 0
    with threadpool_limits(WORKER_THREADS):
        while True:
            waiting = time.perf_counter()
            task = receive()
            if task is None:
                return done
            wait = time.perf_counter() - waiting
            _kill_hook(task)
            result = config.run(task)
            result["worker_wait_time"] = wait
            send(result)
            done += 1


def _kill_hook(task: Mapping[str, Any]) -> None:
    """The test hook of the module docstring."""
    starid = os.environ.get(KILL_STARID_ENV)
    if not starid or int(starid) != int(task["starid"]):
        return
    marker = os.environ.get(KILL_ONCE_ENV)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
