"""A small simulated run (the small sector, every task done) for the report's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def finished_run(small_sector, tmp_path_factory) -> dict:
    """A copy of the small sector's todo list with every task run: ``folder``, ``output``
    and the runner's ``report`` (the report's tests must copy it before changing it)."""
    from tessphot.runner.loop import run_photometry

    folder = tmp_path_factory.mktemp("report_run")
    for name in ("catalog", "prepared", "todo"):
        shutil.copy2(small_sector[name], folder / Path(small_sector[name]).name)
    output = folder / "lightcurves"
    report = run_photometry(folder, output, run_all=True)
    return {"folder": folder, "output": output, "report": report}
