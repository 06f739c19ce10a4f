"""Helpers of the parallel-run tests: running the command line in a real process, reading
the todo list of a (possibly killed) run, checking the light-curve files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

#: Seconds a test run of the small sector may take at most.
RUN_TIMEOUT = 300


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python -m tessphot.cli ARGS`` (or another command) in a new process: returns the
    completed process (text output)."""

    def run(
        args: Sequence[str],
        env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> subprocess.CompletedProcess:
        prefix = list(command) if command is not None else [sys.executable, "-m", "tessphot.cli"]
        return subprocess.run(
            [*prefix, *args],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            env={**os.environ, **(env or {})},
        )

    return run


def read_todo(folder: Path) -> dict[int, dict]:
    """Every task of ``folder/todo.sqlite`` by priority: ``starid``, ``status``,
    ``lightcurve``, ``errors``, ``worker_wait_time``, ``mean_flux`` (read directly, without
    the task manager, which would reset unfinished tasks)."""
    con = sqlite3.connect(folder / "todo.sqlite")
    try:
        rows = con.execute(
            "SELECT t.priority, t.starid, t.status, d.lightcurve, d.errors, "
            "d.worker_wait_time, d.mean_flux FROM todolist AS t "
            "LEFT JOIN diagnostics AS d ON d.priority = t.priority"
        ).fetchall()
    finally:
        con.close()
    keys = ("starid", "status", "lightcurve", "errors", "worker_wait_time", "mean_flux")
    return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}


def flagged(folder: Path) -> set[int]:
    """Priorities of the tasks with data-validation flags: the precision report at the end of
    ``run --all`` rewrote their light curves' ``DATAVAL`` card (the photometry was not redone)."""
    con = sqlite3.connect(folder / "todo.sqlite")
    try:
        return {p for (p,) in con.execute("SELECT priority FROM datavalidation_raw WHERE dataval")}
    finally:
        con.close()


def check_light_curves(output: Path) -> list[Path]:
    """Every light-curve file below ``output``: assert that each is complete (gzip stream
    and FITS checksums good) and that no temporary file is left; returns them."""
    from astropy.io import fits

    leftovers = [p for p in output.rglob(".*") if p.is_file()]
    assert not leftovers, f"temporary files left: {leftovers}"
    files = sorted(output.rglob("*-tasoc_lc.fits.gz"))
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a checksum mismatch is a warning
            with fits.open(path, checksum=True) as hdus:
                assert hdus[1].data is not None and len(hdus[1].data) > 0
    return files


@pytest.fixture
def todo_tools() -> tuple[Callable[[Path], dict[int, dict]], Callable[[Path], list[Path]]]:
    """``(read_todo, check_light_curves)``."""
    return read_todo, check_light_curves


@pytest.fixture
def flagged_tasks() -> Callable[[Path], set[int]]:
    """:func:`flagged`."""
    return flagged
