"""Peak memory of a process and all its descendants (benchmarks; Linux /proc).

``TreeMemory(pid)`` samples, in a background thread, the sum of the proportional set sizes
(PSS: each shared page counted once over the processes sharing it, e.g. the prepare stage's
shared ring and block of frames) of the process and every process below it (the worker
pool), and keeps the peak of the sum and of the process alone. Resident set sizes are used
where the kernel gives no PSS.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

#: Sampling interval [s]: the peaks it looks for last seconds (a worker's heap keeps its
#: high-water mark; the main process's finish), and each sample walks the page tables of
#: every process (at 0.1 s the sampler took a fifth of a core from the runs it measured).
INTERVAL = 0.5


def _rss_kib(pid: int) -> int:
    """The process's PSS (else its RSS) [KiB]; 0 when it is gone."""
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(v) for v in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


class TreeMemory:
    """Sample the memory of a process tree until :meth:`stop`; peaks in MiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_total = 0.0
        self.peak_main = 0.0
        #: CPU time the sampling itself took [s] (set by :meth:`stop`).
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree(self.pid)
            sizes = [_rss_kib(p) for p in pids]
            self.peak_total = max(self.peak_total, sum(sizes) / 1024)
            self.peak_main = max(self.peak_main, sizes[0] / 1024)
            self.cpu_seconds = time.thread_time()
            self._stop.wait(INTERVAL)

    def stop(self) -> TreeMemory:
        self._stop.set()
        self._thread.join()
        return self
