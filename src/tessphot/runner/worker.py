"""The worker side of a parallel run: run the tasks the master sends, send back the results.

Three environment variables are **test hooks** (for the tests of the fault handling, never
for production runs). ``TESSPHOT_TEST_KILL_STARID=TIC[,TIC...]``: a worker kills itself with
SIGKILL when it starts the task of one of these stars, as a crash of the photometry (a
segmentation fault, the out-of-memory killer) would. ``TESSPHOT_TEST_KILL_ONCE_STARID``: the
same, but only the first time (the worker leaves a marker file
``.tessphot-test-killed-TIC`` in the input folder), so that the task succeeds when retried.
``TESSPHOT_TEST_TASK_DELAY=SECONDS``: a worker waits this long before each task, so that a
test can stop a run in its middle however fast the photometry is.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from threadpoolctl import threadpool_limits

from tessphot import env
from tessphot.logs import setup_logging
from tessphot.runner.config import TaskConfig
from tessphot.tasks.result import TaskResult

logger = logging.getLogger(__name__)

#: Test hook: TIC numbers of stars whose task kills its worker (SIGKILL) every time.
KILL_STARID_ENV = env.KILL_STARID
#: Test hook: TIC numbers of stars whose task kills its worker the first time only.
KILL_ONCE_STARID_ENV = env.KILL_ONCE_STARID
#: Test hook: name of the marker file of a star whose task killed a worker once.
KILL_MARKER = ".tessphot-test-killed-{starid}"
#: Test hook: seconds a worker waits before each task.
TASK_DELAY_ENV = env.TASK_DELAY
#: Threads of numpy's linear-algebra libraries per worker (one core per worker).
WORKER_THREADS = 1


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def unwind_on_terminate() -> None:
    """Make SIGTERM unwind the worker instead of ending it on the spot.

    A light curve being written then removes its temporary file
    (:func:`tessphot.paths.atomic_path`). The local pool's master and ``mpiexec`` (when a
    rank dies) stop workers with SIGTERM.
    """
    signal.signal(signal.SIGTERM, _exit_on_signal)


def quiet_worker_logging(debug: bool = False) -> None:
    """Set up the logging of a worker process.

    Its warnings and errors reach the master inside the results (``details['errors']``), so
    they are not printed again; with ``debug`` every message is printed.
    """
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
    send: Callable[[TaskResult], None],
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
            _kill_hook(config, task)
            result = config.run(task)
            result.worker_wait_time = wait
            send(result)
            done += 1


def _kill_hook(config: TaskConfig, task: Mapping[str, Any]) -> None:
    """The test hooks of the module docstring."""
    delay = env.value(TASK_DELAY_ENV)
    if delay:
        time.sleep(float(delay))
    starid = int(task["starid"])
    if starid in env.starids(KILL_ONCE_STARID_ENV):
        marker = config.input_folder / KILL_MARKER.format(starid=starid)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    elif starid not in env.starids(KILL_STARID_ENV):
        return
    os.kill(os.getpid(), signal.SIGKILL)
