"""A photometry run's folder to correct (a fresh copy per test)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture
def run_copy(photometry_run, tmp_path):
    """A copy of the small sector's photometry run (todo.sqlite and light curves)."""
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy2(photometry_run["todo"], folder / "todo.sqlite")
    shutil.copytree(photometry_run["output"], folder / "lightcurves")
    return folder
