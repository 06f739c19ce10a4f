"""``tessphot correct`` on the small sector's photometry run: FLUX_CORR written, resumable,
bad input reported, the same with workers, MPI ranks and the ensemble corrector."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

from tessphot.cli import EXIT_ERROR, EXIT_OK, main
from tessphot.correct import stage, star
from tessphot.correct.stage import cbv_path, run_corrections
from tessphot.correct.star import isolated
from tessphot.correct.store import open_corrections
from tessphot.lightcurve.read import read_lightcurve
from tessphot.paths import stored_lightcurve
from tessphot.tasks import STATUS


def _rows(folder):
    with sqlite3.connect(folder / "todo.sqlite") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if "diagnostics_corr" not in tables:  # before any run: make the corrections' tables
        with open_corrections(folder / "todo.sqlite"):
            pass
    with sqlite3.connect(folder / "todo.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return {
            r["priority"]: dict(r)
            for r in conn.execute(
                "SELECT t.priority, t.starid, t.corr_status, d.lightcurve, c.method, c.rms_hour,"
                " c.errors FROM todolist t JOIN diagnostics d ON d.priority = t.priority "
                "LEFT JOIN diagnostics_corr c ON c.priority = t.priority "
                "WHERE t.status IN (1, 3)"
            )
        }


def _path(folder, row):
    return stored_lightcurve(row["lightcurve"], folder, folder / "lightcurves")


def test_corrections_fill_flux_corr(run_copy):
    raw = {}
    for p, row in _rows(run_copy).items():
        with fits.open(_path(run_copy, row)) as hdus:
            raw[p] = hdus["LIGHTCURVE"].data["FLUX_RAW"].copy()
            assert np.isnan(hdus["LIGHTCURVE"].data["FLUX_CORR"]).all()
    report = run_corrections(run_copy)
    rows = _rows(run_copy)
    assert report.corrected == len(rows) > 10 and not report.errors
    assert {r["corr_status"] for r in rows.values()} <= {int(STATUS.OK), int(STATUS.WARNING)}
    (cbvs,) = report.cbv_files
    assert cbvs.is_file() and cbvs.with_suffix(".png").is_file()
    for p, row in rows.items():
        path = _path(run_copy, row)
        with fits.open(path, checksum=True) as hdus:
            table = hdus["LIGHTCURVE"].data
            np.testing.assert_array_equal(table["FLUX_RAW"], raw[p])
            good = np.isfinite(table["FLUX_RAW"])
            assert np.isfinite(table["FLUX_CORR"][good]).all()
            # Relative flux in ppm around zero.
            assert abs(np.nanmedian(table["FLUX_CORR"])) < 1e4
            header = hdus[0].header
            assert header["CORRMET"] == "cbv" and header["CORRFIT"] == row["method"]
            assert header["CBV_NUM"] >= 0 and "CBV_AREA" in header
            assert header["ORIGIN"] != "TASOC/Aarhus"
        assert row["rms_hour"] is None or row["rms_hour"] > 0
    # lightkurve reads the corrected flux by default, normalised (ours and its own reader).
    path = _path(run_copy, next(iter(rows.values())))
    lc = read_lightcurve(path)
    assert lc.meta["FLUX_ORIGIN"] == "flux_corr" and np.isfinite(lc.flux.value).sum() > 10
    lightkurve = pytest.importorskip("lightkurve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lightkurve.TessLightCurve.read(str(path), format="tasoc")
    assert theirs.meta["NORMALIZED"] and str(theirs.flux.unit) == "ppm"
    np.testing.assert_array_equal(theirs.flux.value, lc.flux.value)


def test_a_killed_run_resumes_and_redoes_nothing_saved(run_copy, monkeypatch):
    written = []
    real = star.set_corrected_flux

    def dies_after_five(path, *args, **kwargs):
        if len(written) == 5:
            raise KeyboardInterrupt
        real(path, *args, **kwargs)
        written.append(path)

    monkeypatch.setattr(star, "set_corrected_flux", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        run_corrections(run_copy)
    monkeypatch.undo()
    done = {p for p, r in _rows(run_copy).items() if r["corr_status"] is not None}
    assert len(done) == 5
    times = {path: os.stat(path).st_mtime_ns for path in written}
    cbvs = next((run_copy / "lightcurves" / "cbv").glob("*.fits"))
    cbv_time = os.stat(cbvs).st_mtime_ns
    report = run_corrections(run_copy)
    assert report.corrected == len(_rows(run_copy)) - 5
    assert {path: os.stat(path).st_mtime_ns for path in written} == times
    assert os.stat(cbvs).st_mtime_ns == cbv_time and not report.cbv_files
    # Nothing left: a third run does nothing; -o redoes everything.
    assert run_corrections(run_copy).corrected == 0
    assert run_corrections(run_copy, overwrite=True).corrected == len(_rows(run_copy))


def test_damaged_light_curve_is_an_error_and_the_rest_goes_on(run_copy):
    rows = _rows(run_copy)
    bad_priority, bad = next(iter(rows.items()))
    path = _path(run_copy, bad)
    path.write_bytes(path.read_bytes()[:2000])
    report = run_corrections(run_copy)
    after = _rows(run_copy)
    assert after[bad_priority]["corr_status"] == int(STATUS.ERROR)
    assert path.name in after[bad_priority]["errors"]
    assert report.counts["ERROR"] == 1 and len(report.errors) == 1
    assert sum(r["corr_status"] in (1, 3) for r in after.values()) == len(rows) - 1


def test_workers_write_the_same_as_one_process(run_copy, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    run_corrections(run_copy)
    run_corrections(other, workers=2)
    for row in _rows(run_copy).values():
        with fits.open(_path(run_copy, row)) as a, fits.open(_path(other, row)) as b:
            np.testing.assert_array_equal(
                a["LIGHTCURVE"].data["FLUX_CORR"], b["LIGHTCURVE"].data["FLUX_CORR"]
            )


def test_ensemble_corrector(run_copy):
    report = run_corrections(run_copy, settings={"method": "ensemble"})
    assert not report.cbv_files and not report.errors
    methods = {r["method"] for r in _rows(run_copy).values()}
    assert methods <= {"ensemble", "none"} and "ensemble" in methods
    row = next(r for r in _rows(run_copy).values() if r["method"] == "ensemble")
    with fits.open(_path(run_copy, row)) as hdus:
        assert hdus[0].header["CORRMET"] == "ensemble" and hdus[0].header["ENS_NUM"] >= 10


def test_cli_selection_and_exit_codes(run_copy, capsys):
    one = next(iter(_rows(run_copy).values()))
    assert main(["-q", "correct", str(run_copy), "--starid", str(one["starid"])]) == EXIT_OK
    corrected = [r for r in _rows(run_copy).values() if r["corr_status"] is not None]
    assert [r["starid"] for r in corrected] == [one["starid"]]
    assert "Corrections:" in capsys.readouterr().out
    # The CBVs were made from the whole group, and are used again by the next run.
    assert cbv_path(run_copy / "lightcurves", (1, 1, 4, 1800, _area(run_copy))).is_file()
    path = _path(run_copy, next(r for r in _rows(run_copy).values() if r["corr_status"] is None))
    path.write_bytes(b"not a light curve")
    assert main(["-q", "correct", str(run_copy)]) == EXIT_ERROR


def _area(folder):
    with sqlite3.connect(folder / "todo.sqlite") as conn:
        return conn.execute("SELECT cbv_area FROM todolist LIMIT 1").fetchone()[0]


def test_correct_mpi(run_copy, tmp_path):
    if shutil.which("mpiexec") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("MPI tests need mpiexec: on CI they must run")
        pytest.skip("needs mpiexec (Open MPI)")
    serial = tmp_path / "serial"
    shutil.copytree(run_copy, serial)
    run_corrections(serial)
    command = ["mpiexec", "--oversubscribe", "-n", "2"]
    if os.geteuid() == 0:
        command.insert(1, "--allow-run-as-root")
    command += [sys.executable, "-m", "tessphot.cli", "-q", "correct-mpi", str(run_copy)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == EXIT_OK, result.stderr
    for row in _rows(run_copy).values():
        assert row["corr_status"] in (1, 3)
        with fits.open(_path(run_copy, row)) as a, fits.open(_path(serial, row)) as b:
            np.testing.assert_array_equal(
                a["LIGHTCURVE"].data["FLUX_CORR"], b["LIGHTCURVE"].data["FLUX_CORR"]
            )


def test_isolated_outliers_only_are_flagged():
    clipped = np.array([0, 1, 0, 0, 1, 1, 1, 0, 1], dtype=bool)
    np.testing.assert_array_equal(isolated(clipped), [0, 1, 0, 0, 0, 0, 0, 0, 1])


def test_a_star_on_its_own_gets_its_relative_raw_flux(run_copy, monkeypatch):
    monkeypatch.setattr(stage, "MIN_GROUP_STARS", 10_000)
    report = run_corrections(run_copy)
    assert report.counts == {"WARNING": len(_rows(run_copy))} and not report.cbv_files
    row = next(iter(_rows(run_copy).values()))
    assert "at least 10000 needed" in row["errors"] and row["method"] == "none"
    with fits.open(_path(run_copy, row)) as hdus:
        table = hdus["LIGHTCURVE"].data
        assert hdus[0].header["CORRMET"] == "none"
        good = np.isfinite(table["FLUX_RAW"]) & (table["PIXEL_QUALITY"] & 175 == 0)
        expected = 1e6 * (table["FLUX_RAW"] / np.median(table["FLUX_RAW"][good]) - 1)
        with sqlite3.connect(run_copy / "todo.sqlite") as conn:
            (contamination,) = conn.execute(
                "SELECT contamination FROM diagnostics WHERE lightcurve = ?", (row["lightcurve"],)
            ).fetchone()
        dilution = 1 - contamination
        np.testing.assert_allclose(table["FLUX_CORR"][good], expected[good] / dilution, rtol=1e-6)


def test_precision_report_shows_the_corrected_noise(run_copy, tmp_path):
    from tessphot.report import write_report

    before = write_report(run_copy, run_copy / "lightcurves", report_folder=tmp_path / "a")
    (group,) = before.numbers["groups"]
    assert group["corrections"] == {"TODO": sum(b["stars"] for b in group["noise"])}
    assert all(b["corrected"] == 0 for b in group["noise"])
    run_corrections(run_copy)
    after = write_report(run_copy, run_copy / "lightcurves", report_folder=tmp_path / "b")
    (group,) = after.numbers["groups"]
    assert "TODO" not in group["corrections"]
    assert any(key.startswith("method ") for key in group["corrections"])
    bins = [b for b in group["noise"] if b["corrected"]]
    assert bins and all(b["median_rms_hour_corr_ppm"] > 0 for b in bins)
    # Corrected and raw noise of the same stars are of the same order (no systematics here).
    for b in bins:
        assert 0.3 < b["median_rms_hour_corr_ppm"] / b["median_rms_hour_ppm"] < 3
    assert "Corrections" in after.html.read_text()


def test_cli_magnitude_selection(run_copy):
    assert main(["-q", "correct", str(run_copy), "--tmag_max", "13"]) == EXIT_OK
    with sqlite3.connect(run_copy / "todo.sqlite") as conn:
        rows = conn.execute(
            "SELECT tmag, corr_status FROM todolist WHERE status IN (1, 3)"
        ).fetchall()
    assert all((status is not None) == (tmag <= 13) for tmag, status in rows)
    assert any(status is None for _, status in rows)
