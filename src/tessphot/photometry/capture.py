"""The warnings and errors logged during a task, kept as the task's ``errors``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

#: Root of tessphot's loggers: warnings and errors logged below it during a task are the
#: task's ``errors``.
PACKAGE_LOGGER = "tessphot"


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname}: {record.getMessage()}")


@contextmanager
def capture_warnings(records: list[str]) -> Iterator[list[str]]:
    """Append the WARNING and ERROR messages logged by tessphot inside the block.

    They go to ``records`` as ``"LEVEL: message"``; the handler is removed afterwards.
    """
    handler = _ListHandler(records)
    root = logging.getLogger(PACKAGE_LOGGER)
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
