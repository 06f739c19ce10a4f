"""Override files of the todo list, in the original TASOC format.

``todolist-methods.dat`` forces a photometry method on targets; ``todolist-exclude.dat``
leaves targets out for one SPOC data release. Both are whitespace tables with ``#``
comments, one target a line, the last column a free-text reason::

    # TIC        sector  datasource  method  reason
    267211065    1       ffi         halo    Bright star spilling outside CCD.

    # TIC        sector  datasource  data release  reason
    44577667     1       tpf         1             No calibrated data.

tessphot ships the original's tables (``tessphot/data/``); the settings ``methods_file`` and
``exclude_file`` of ``[todo]`` name others.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from tessphot.io.errors import TessphotError
from tessphot.tasks.schema import METHODS

#: File names of the shipped tables (in ``tessphot/data``).
METHODS_FILENAME = "todolist-methods.dat"
EXCLUDE_FILENAME = "todolist-exclude.dat"
#: Data sources an override may name.
DATASOURCES = ("ffi", "tpf")


class OverrideFileError(TessphotError):
    """An override file that cannot be read (the message names the file, line and problem)."""


def _shipped(name: str) -> Path:
    return Path(str(resources.files("tessphot") / "data" / name))


def _lines(path: Path):
    """(line number, fields, reason) of the data lines of a table."""
    try:
        text = path.read_text()
    except OSError as err:
        raise OverrideFileError(f"{path}: cannot read override file ({err.strerror})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 4)
        if len(parts) < 4:
            raise OverrideFileError(
                f"{path}, line {number}: expected TIC, sector, datasource, value and a reason"
            )
        yield number, parts[:4], parts[4] if len(parts) > 4 else ""


def _int(path: Path, number: int, name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OverrideFileError(f"{path}, line {number}: invalid {name} {value!r}") from None


def _datasource(path: Path, number: int, value: str) -> str:
    value = value.lower()
    if value not in DATASOURCES:
        raise OverrideFileError(f"{path}, line {number}: invalid datasource {value!r} (ffi or tpf)")
    return value


def read_methods(path: str | os.PathLike | None = None) -> dict[tuple[int, int, str], str]:
    """Forced methods by ``(starid, sector, datasource)``.

    Parameters
    ----------
    path : path-like, optional
        A ``todolist-methods.dat`` file; default the one shipped with tessphot.

    Raises
    ------
    OverrideFileError
        For a missing file or a malformed line (unknown method, bad number, ...).
    """
    path = Path(path) if path is not None else _shipped(METHODS_FILENAME)
    table: dict[tuple[int, int, str], str] = {}
    for number, (tic, sector, datasource, method), _reason in _lines(path):
        method = method.lower()
        if method not in METHODS:
            raise OverrideFileError(
                f"{path}, line {number}: unknown method {method!r} (one of {', '.join(METHODS)})"
            )
        key = (
            _int(path, number, "TIC", tic),
            _int(path, number, "sector", sector),
            _datasource(path, number, datasource),
        )
        table[key] = method
    return table


def read_exclusions(path: str | os.PathLike | None = None) -> set[tuple[int, int, str, int]]:
    """Excluded targets as ``(starid, sector, datasource, data_rel)``.

    Parameters
    ----------
    path : path-like, optional
        A ``todolist-exclude.dat`` file; default the one shipped with tessphot.

    Raises
    ------
    OverrideFileError
        For a missing file or a malformed line.
    """
    path = Path(path) if path is not None else _shipped(EXCLUDE_FILENAME)
    table: set[tuple[int, int, str, int]] = set()
    for number, (tic, sector, datasource, data_rel), _reason in _lines(path):
        table.add(
            (
                _int(path, number, "TIC", tic),
                _int(path, number, "sector", sector),
                _datasource(path, number, datasource),
                _int(path, number, "data release", data_rel),
            )
        )
    return table
