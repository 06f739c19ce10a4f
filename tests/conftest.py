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


# ------------------------------------------------------------------------------------------
# A small simulated sector run through catalog, prepare and todo (shared by the todo and
# photometry tests; built once per session).

#: Extra stars of the small sector: (TIC, Tmag, science row, science column). A is an
#: isolated Tmag-10 star; C (Tmag 14.6) sits 1.2 px from B (Tmag 9.0), inside B's aperture.
STAR_A = (900_000_001, 10.0, 1005.2, 1041.4)
STAR_B = (900_000_002, 9.0, 1040.3, 1004.1)
STAR_C = (900_000_003, 14.6, 1041.3, 1004.7)


@pytest.fixture(scope="session")
def small_sector(tmp_path_factory):
    """A 72x72 px, 48-cadence simulated sector prepared up to the todo list (no bright stars,
    no momentum dump in the window), as a dict: ``folder``, ``truth``, ``sector``,
    ``camera``, ``ccd`` and the stages' outputs. Tests must not modify it: copy it first
    (:func:`copy_sector`)."""
    from tessphot.config import load_settings
    from tessphot.config.simulate import SimulationConfig
    from tessphot.demo import prepare_simulated
    from tessphot.evaluation.simulate.sector import simulate_sector

    folder = tmp_path_factory.mktemp("small_sector")
    config = SimulationConfig(
        sector=1,
        camera=1,
        ccd=4,
        size=72,
        cadences=48,
        stars=70,
        bright=0,
        seed=20251121,
        variable_fraction=0.3,
        extra_stars=[STAR_A, STAR_B, STAR_C],
    )
    result = simulate_sector(config, folder, progress=False)
    stages = prepare_simulated(folder, load_settings(), progress=False, workers=1)
    return {
        "folder": folder,
        "truth": result["truth"],
        "config": config,
        "A": STAR_A,
        "B": STAR_B,
        "C": STAR_C,
        **stages,
    }


@pytest.fixture
def sector_copy(small_sector, tmp_path) -> Path:
    """A fresh input folder with the prepared files of the small sector (not the FFIs), its
    truth and a todo list with nothing done, for tests that change things."""
    import shutil

    destination = tmp_path / "input"
    destination.mkdir()
    for name in ("catalog", "prepared", "todo"):
        shutil.copy2(small_sector[name], destination / Path(small_sector[name]).name)
    shutil.copytree(small_sector["folder"] / "truth", destination / "truth")
    return destination


@pytest.fixture(scope="session")
def photometry_run(small_sector, tmp_path_factory):
    """A copy of the small sector with ``run_photometry(--all)`` done: ``folder``,
    ``output`` (light curves) and the ``report``, plus the small sector's entries."""
    import shutil

    from tessphot.runner.loop import run_photometry

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


@pytest.fixture
def tessphot_log():
    """Messages logged under ``tessphot`` (INFO and up) during the test, as ``.text``.

    A handler on the ``tessphot`` logger itself: the CLI's set-up stops its records from
    reaching the root logger, where ``caplog`` listens.
    """
    import logging

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.INFO)
            self.lines: list[str] = []

        def emit(self, record):
            self.lines.append(f"{record.levelname}: {record.getMessage()}")

        @property
        def text(self) -> str:
            return "\n".join(self.lines)

    logger = logging.getLogger("tessphot")
    handler = Collect()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def _restore_tessphot_logger():
    """Undo what a test's ``main()`` call did to the ``tessphot`` logger (its console
    handler, level and ``propagate = False``), so that later tests in the same worker still
    see its records through ``caplog``."""
    import logging

    logger = logging.getLogger("tessphot")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate
