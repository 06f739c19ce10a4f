"""The task loop of ``tessphot run``: errors, resuming, atomic output, plots, CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (the cubes are Blosc-compressed)
import numpy as np
import pytest

from tessphot.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from tessphot.config import SettingsError
from tessphot.photometry.target import open_target
from tessphot.photometry.task import photometry_task
from tessphot.prepare.blocks import replace_images, stored_images
from tessphot.runner.loop import NoTaskError, run_photometry
from tessphot.sources import clear_cache
from tessphot.tasks import STATUS, TaskManager, write_todolist

REPO = Path(__file__).resolve().parents[2]


def _method(cls, starid, folder, settings=None):
    """A photometry method on a target of the test sector (camera 1, CCD 4)."""
    return cls(open_target(starid, folder, 1, 1, 4, settings=settings), settings)


def _statuses(folder: Path) -> dict[int, tuple[int | None, str | None]]:
    con = sqlite3.connect(folder / "todo.sqlite")
    try:
        rows = con.execute(
            "SELECT t.starid, t.status, d.errors FROM todolist AS t "
            "LEFT JOIN diagnostics AS d ON d.priority = t.priority"
        ).fetchall()
    finally:
        con.close()
    return {starid: (status, errors) for starid, status, errors in rows}


def _off_data_star(folder: Path) -> int:
    """A catalog star that is not on the (cropped) data."""
    from tessphot.sources import ffi_source

    data = ffi_source(folder, 1, 1, 4, 19.0)
    r0, c0 = data.origin
    ny, nx = data.shape
    stars = data.stars
    off = (stars.row < r0 - 1) | (stars.row > r0 + ny) | (stars.col < c0 - 1)
    off |= stars.col > c0 + nx
    return int(stars.starid[np.flatnonzero(off)[0]])


def _todo_with(folder: Path, extra: list[tuple[int, float]], keep: list[int]) -> None:
    """Rewrite the todo list: the ``extra`` (starid, tmag) targets and the kept stars."""
    con = sqlite3.connect(folder / "todo.sqlite")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM todolist")]
    con.close()
    template = rows[0]
    targets = [r for r in rows if r["starid"] in keep]
    for starid, tmag in extra:
        targets.append({**template, "starid": starid, "tmag": tmag, "method": None})
    write_todolist(folder / "todo.sqlite", targets, overwrite=True)


def test_errors_are_clear_and_the_run_goes_on(small_sector, sector_copy):
    """An unknown star and a star off the data: ERROR with a clear message each, and the
    next tasks still run; an invalid setting: a clear error before any task runs."""
    folder = sector_copy
    a = small_sector["A"][0]
    off = _off_data_star(folder)
    _todo_with(folder, [(123456789, 1.0), (off, 1.5)], keep=[a])
    report = run_photometry(folder, run_all=True)
    assert report.tasks == 3 and report.counts == {"ERROR": 2, "OK": 1}
    status = _statuses(folder)
    assert status[123456789][0] == STATUS.ERROR
    assert "star could not be found in the catalog" in status[123456789][1]
    assert status[off][0] == STATUS.ERROR and "is not on the data" in status[off][1]
    assert status[a][0] == STATUS.OK
    # Invalid settings: one clear error before any task runs (the tasks are not at fault).
    with pytest.raises(SettingsError, match="invalid setting psf_positions = 'everywhere'"):
        run_photometry(
            folder,
            constraints={"starid": [a]},
            method="psf",
            overwrite=True,
            settings={"psf_positions": "everywhere"},
        )
    assert _statuses(folder) == status


def test_all_nan_stamp_is_an_error(small_sector, sector_copy):
    folder = sector_copy
    a = small_sector["A"][0]
    path = folder / Path(small_sector["prepared"]).name
    with h5py.File(path, "r+") as h5:
        r0, c0 = (int(v) for v in h5.attrs["origin"])
        rows = slice(int(small_sector["A"][2]) - r0 - 12, int(small_sector["A"][2]) - r0 + 13)
        cols = slice(int(small_sector["A"][3]) - c0 - 12, int(small_sector["A"][3]) - c0 + 13)
        h5["sumimage"][rows, cols] = np.nan
        cube = stored_images(h5, 0, h5["images"].shape[0])
        cube[:, rows, cols] = np.nan
        replace_images(h5, cube)
    clear_cache()
    task = {
        "priority": 1,
        "starid": a,
        "sector": 1,
        "camera": 1,
        "ccd": 4,
        "cadence": 1800,
        "datasource": "ffi",
        "method": None,
        "tmag": 10.0,
    }
    result = photometry_task(task, folder, folder / "lightcurves")
    clear_cache()
    assert result.status == STATUS.ERROR
    assert any("all pixels NaN" in e for e in result.details["errors"])


def test_resume_does_not_redo_finished_tasks(sector_copy):
    folder = sector_copy
    first = run_photometry(folder, constraints={"priority": [1, 2, 3]})
    assert first.tasks == 3
    before = _statuses(folder)
    files = sorted((folder / "lightcurves").rglob("*.fits.gz"))
    assert len(files) == 3
    stamps = {f: f.stat().st_mtime_ns for f in files}
    rest = run_photometry(folder, run_all=True)
    after = _statuses(folder)
    to_do = [s for s, (status, _) in before.items() if status is None]
    skipped_since = [s for s in to_do if after[s][0] == STATUS.SKIPPED]
    # Every task left is done; those a brighter star's aperture covers need not run.
    assert all(after[s][0] is not None for s in to_do)
    assert len(to_do) - len(skipped_since) <= rest.tasks <= len(to_do)
    for f, mtime in stamps.items():
        assert f.stat().st_mtime_ns == mtime
    with pytest.raises(NoTaskError, match="done already"):
        run_photometry(folder, run_all=True)
    with pytest.raises(NoTaskError, match="matches the request"):
        run_photometry(folder, constraints={"starid": [1]})


def test_light_curves_are_written_atomically(small_sector, sector_copy, monkeypatch):
    """A failure while writing leaves no file behind (and the task is an ERROR)."""
    import gzip

    from isal import igzip

    def broken(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(gzip.GzipFile, "write", broken)
    monkeypatch.setattr(igzip.IGzipFile, "write", broken)
    report = run_photometry(sector_copy, constraints={"starid": [small_sector["A"][0]]})
    assert report.counts == {"ERROR": 1}
    assert "disk full" in _statuses(sector_copy)[small_sector["A"][0]][1]
    leftovers = [p for p in (sector_copy / "lightcurves").rglob("*") if p.is_file()]
    assert [p.name for p in leftovers] == ["summary.json"]


def test_interrupted_task_is_aborted_and_retried(small_sector, sector_copy, monkeypatch):
    from tessphot.photometry import aperture

    def interrupt(self):
        raise KeyboardInterrupt

    a = small_sector["A"][0]
    monkeypatch.setattr(aperture.AperturePhotometry, "do_photometry", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_photometry(sector_copy, constraints={"starid": [a]})
    assert _statuses(sector_copy)[a][0] == STATUS.ABORT
    monkeypatch.undo()
    with TaskManager(sector_copy / "todo.sqlite") as manager:  # aborted tasks are retried
        assert manager.get_number_tasks(starid=a) == 1


def test_plot_in_the_original_folder(small_sector, sector_copy):
    a = small_sector["A"][0]
    run_photometry(sector_copy, constraints={"starid": [a]}, plot=True)
    tic = f"{a:011d}"
    plots = list((sector_copy / "lightcurves" / "c1800" / tic[:5] / "plots" / tic).glob("*.png"))
    assert len(plots) == 1 and plots[0].stat().st_size > 10_000
    with open(plots[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_exit_codes(small_sector, sector_copy, capsys):
    folder = str(sector_copy)
    a = small_sector["A"][0]
    assert main(["-q", "run", folder, "--starid", str(a), "--version", "3"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Ran 1 task(s)" in out and "OK 1" in out
    assert list((sector_copy / "lightcurves").rglob("*-v03-tasoc_lc.fits.gz"))
    # Done already: a clear message, non-zero.
    assert main(["-q", "run", folder, "--starid", str(a)]) == EXIT_ERROR
    assert "done already" in capsys.readouterr().err
    assert main(["-q", "run", folder, "--starid", "1"]) == EXIT_ERROR
    assert "no task" in capsys.readouterr().err
    # One of --all, --starid, --priority, --random is needed.
    with pytest.raises(SystemExit) as info:
        main(["-q", "run", folder])
    assert info.value.code == EXIT_USAGE
    # --all runs everything and exits 0 (the original exited 2 at the end).
    assert main(["-q", "run", folder, "--all", "--tmag_max", "12", "--cadence", "1800"]) == 0
    assert main(["-q", "run", folder, "--all", "--camera", "2"]) == EXIT_ERROR
    # A failed task: exit 1.
    invalid = sector_copy / "invalid.toml"
    invalid.write_text('[photometry]\npsf_positions = "everywhere"\n')
    command = ["-q", "run", folder, "--random", "--method", "psf", "-o", "--settings", invalid]
    assert main([str(x) for x in command]) == EXIT_ERROR


def test_original_entry_point(small_sector, sector_copy):
    env = {**os.environ, "TESSPHOT_INPUT": str(sector_copy)}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_tessphot.py"),
            f"--starid={small_sector['B'][0]}",
            "--plot",
            "--output",
            str(sector_copy / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "1 tasks to be run" in result.stderr
    assert list((sector_copy / "out").rglob("*.png"))
    assert list((sector_copy / "out").rglob("*tasoc_lc.fits.gz"))


def test_streamed_blocks_give_the_same_light_curve(small_sector, sector_copy, monkeypatch):
    """Large stamps are read in blocks of cadences (bounded memory): same result."""
    from tessphot.photometry import aperture
    from tessphot.sources import blocks

    task = {
        "priority": 1,
        "starid": small_sector["B"][0],
        "sector": 1,
        "camera": 1,
        "ccd": 4,
        "cadence": 1800,
        "datasource": "ffi",
        "method": None,
        "tmag": 9.0,
    }
    results = []
    for stream_bytes in (blocks.STREAM_BYTES, 1):
        monkeypatch.setattr(blocks, "STREAM_BYTES", stream_bytes)
        phot = _method(
            aperture.AperturePhotometry,
            task["starid"],
            sector_copy,
            {"aperture": {"optimise": False}},
        )
        assert phot.run().status == STATUS.OK
        results.append(phot.columns)
    for key in ("flux", "flux_err", "flux_bkg", "centroid_row", "quality"):
        np.testing.assert_allclose(getattr(results[0], key), getattr(results[1], key), rtol=1e-12)
