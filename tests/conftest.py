"""Shared pytest fixtures: the real TESS test data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _test_data_dir() -> Path:
    env = os.environ.get("TESSPHOT_TEST_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Folder with the real TESS data (``../shared/data`` or ``$TESSPHOT_TEST_DATA``).

    Tests using it are skipped with a clear reason when it is absent.
    """
    path = _test_data_dir()
    if not (path / "MANIFEST.md").is_file():
        pytest.skip(f"real TESS test data not found at {path} (set TESSPHOT_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def real_ffi(test_data: Path) -> Path:
    """The real cropped SPOC FFI of sector 1, camera 1, CCD 4."""
    return test_data / "ffi" / "tess2018206192942-s0001-1-4-0120-s_ffic.fits"


@pytest.fixture(scope="session")
def prf_dir(test_data: Path) -> Path:
    """Folder of real SPOC PRF models laid out like the archive."""
    return test_data / "prf"
