"""Logging set-up shared by all command-line programs, and their progress reports."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

#: Log line format (the original pipeline's; its log lines are a de-facto interface).
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
#: Progress away from a terminal: a log line at every this many per cent done...
PROGRESS_LOG_PERCENT = 10
#: ...and at least every this many seconds [s].
PROGRESS_LOG_SECONDS = 60.0

progress_log = logging.getLogger("tessphot.progress")


class TqdmLoggingHandler(logging.StreamHandler):
    """A handler that writes to stderr through tqdm, so log lines do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record above the progress bars."""
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_logging(debug: bool = False, quiet: bool = False) -> logging.Logger:
    """Attach one console handler to the ``tessphot`` logger.

    ``debug`` gives DEBUG, ``quiet`` WARNING, else INFO. Calling it again replaces the handler.
    """
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("tessphot")
    for handler in [h for h in logger.handlers if isinstance(h, TqdmLoggingHandler)]:
        logger.removeHandler(handler)
    handler = TqdmLoggingHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def stderr_is_terminal() -> bool:
    """Whether the standard error stream is a terminal (not a file, a pipe or a batch log)."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class LogProgress:
    """Progress as plain log lines, for standard error away from a terminal.

    A line every :data:`PROGRESS_LOG_PERCENT` per cent and at least every
    :data:`PROGRESS_LOG_SECONDS` seconds, and one at the end: a log file gets a few lines
    instead of a progress bar redrawn many times. It has the parts of tqdm's interface the
    pipeline uses (``update``, ``total``, ``refresh``, ``set_postfix_str``, ``close``,
    iteration).

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over, counting each item.
    total : int, optional
        The number of steps (default: the iterable's length, if it has one).
    desc : str
        What progresses (``"photometry"``).
    unit : str
        Name of one step (``"task"``).
    initial : int
        Steps done already.
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = self._start_n = initial
        self._start = self._last = time.monotonic()
        self._logged_percent = self._percent()
        self._logged_n = initial
        self._postfix = ""
        self._closed = False

    def _percent(self) -> int:
        """Whole per cent done (0 without a total)."""
        return int(100 * self.n / self.total) if self.total else 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` steps done; log a line when a step of per cent or of time is passed."""
        self.n += n
        percent = self._percent()
        now = time.monotonic()
        step = percent // PROGRESS_LOG_PERCENT > self._logged_percent // PROGRESS_LOG_PERCENT
        if step or now - self._last >= PROGRESS_LOG_SECONDS:
            self._log(now)

    def _log(self, now: float) -> None:
        """Write one progress line."""
        self._last = now
        self._logged_percent = self._percent()
        self._logged_n = self.n
        elapsed = now - self._start
        rate = (self.n - self._start_n) / elapsed if elapsed > 0 else 0.0
        done = f"{self.n} of {self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {done} {self.unit}s done"
        if self.total:
            text += f" ({self._logged_percent} %)"
        text += f" in {elapsed:.0f} s"
        if self.total and rate > 0 and self.n < self.total:
            text += f", about {(self.total - self.n) / rate:.0f} s left"
        if self._postfix:
            text += f"; {self._postfix}"
        progress_log.info(text)

    def refresh(self) -> None:
        """Nothing to redraw (tqdm's interface)."""

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Text added to the next lines (e.g. ``"2 failed"``)."""
        self._postfix = text

    def close(self) -> None:
        """Log the last line, unless it was just written."""
        if self._closed:
            return
        self._closed = True
        if self.n != self._logged_n:
            self._log(time.monotonic())


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    initial: int = 0,
    **tqdm_options: Any,
) -> tqdm | LogProgress:
    """A progress report: a tqdm bar on a terminal, else log lines (:class:`LogProgress`).

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over.
    total : int, optional
        The number of steps.
    desc : str
        What progresses.
    unit : str
        Name of one step.
    enabled : bool
        False: no report at all (a disabled bar).
    initial : int
        Steps done already.
    **tqdm_options
        Further options of the tqdm bar (e.g. ``smoothing``).

    Returns
    -------
    tqdm or LogProgress
    """
    if enabled and not stderr_is_terminal():
        return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        disable=not enabled,
        **tqdm_options,
    )
