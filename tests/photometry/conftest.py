"""The small sector with every task run (built once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def photometry_run(small_sector, tmp_path_factory):
    """A copy of the small sector with ``run_photometry(--all)`` done: ``folder``,
    ``output`` (light curves) and the ``report``, plus the small sector's entries."""
    from tessphot.photometry.run import run_photometry

    folder = tmp_path_factory.mktemp("photometry_run")
    for name in ("catalog", "prepared", "todo"):
        shutil.copy2(small_sector[name], folder / Path(small_sector[name]).name)
    shutil.copytree(small_sector["folder"] / "truth", folder / "truth")
    output = folder / "lightcurves"
    report = run_photometry(folder, output, run_all=True)
    return {
        **small_sector,
        "folder": folder,
        "output": output,
        "report": report,
        "todo": folder / "todo.sqlite",
    }
