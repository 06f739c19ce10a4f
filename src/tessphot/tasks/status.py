"""Status codes of photometry tasks, stored as integers in ``todolist.status``."""

from __future__ import annotations

import enum


class STATUS(enum.IntEnum):
    """Status of a photometry task (the original TASOC codes, §4.4 of the notes).

    ``NULL`` in the todo file (no status) means the task is still to be done.
    """

    #: Not yet computed; photometry must never return it.
    UNKNOWN = 0
    #: Success: a light curve was written.
    OK = 1
    #: Failed: no light curve.
    ERROR = 2
    #: A light curve was written, but something is fishy (e.g. a minimum aperture).
    WARNING = 3
    #: Interrupted (KeyboardInterrupt, SystemExit).
    ABORT = 4
    #: Not processed: a brighter target's mask covers it.
    SKIPPED = 5
    #: Handed to a worker; not finished.
    STARTED = 6


#: Statuses whose tasks have a light curve.
HAS_LIGHTCURVE = frozenset({STATUS.OK, STATUS.WARNING})
#: Statuses reset to "to do" when a TaskManager opens a todo file (failures are retried).
RETRIED = frozenset({STATUS.STARTED, STATUS.ERROR, STATUS.ABORT})
