"""The precision report of a run: HTML page, PNG figures and JSON with the right counts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from astropy.io import fits

from tessphot.report import DataVal, write_report
from tessphot.report.data import read_run
from tessphot.report.validation import dataval_flags

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_report_of_a_small_run(finished_run, tmp_path):
    folder, output = finished_run["folder"], finished_run["output"]
    report = write_report(folder, output, report_folder=tmp_path / "report", validate=False)
    numbers = json.loads(report.json.read_text())
    assert numbers == json.loads(json.dumps(report.numbers))
    (group,) = numbers["groups"]
    assert (group["sector"], group["camera"], group["ccd"], group["cadence"]) == (1, 1, 4, 1800)
    with sqlite3.connect(folder / "todo.sqlite") as con:
        tasks = con.execute("SELECT COUNT(*) FROM todolist").fetchone()[0]
        statuses = dict(con.execute("SELECT status, COUNT(*) FROM todolist GROUP BY status"))
        used = dict(con.execute("SELECT method_used, COUNT(*) FROM diagnostics GROUP BY 1"))
        validated = con.execute("SELECT COUNT(*) FROM todolist WHERE status IN (1, 3)")
        validated = validated.fetchone()[0]
    assert group["tasks"] == numbers["tasks"] == tasks
    assert sum(group["statuses"].values()) == tasks
    assert group["statuses"].get("OK", 0) == statuses.get(1, 0)
    assert group["methods"]["used"] == used
    assert group["validation"]["validated"] == validated
    assert sum(b["stars"] for b in group["noise"]) == validated
    # Quiet simulated stars are near the model: the median ratio of a run is of order one.
    assert 0.5 < group["median_rms_over_model"] < 3
    page = report.html.read_text()
    for subject, name in group["figures"].items():
        png = report.html.parent / name
        assert png.read_bytes().startswith(PNG_SIGNATURE), subject
        assert f'src="{name}"' in page  # relative: the folder can be moved and viewed offline
    assert not Path(name).is_absolute()
    # The report did not validate: todo.sqlite has no validation table.
    with sqlite3.connect(folder / "todo.sqlite") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert "datavalidation_raw" not in tables


def test_validation_flags_in_todo_and_headers(finished_run, tmp_path):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(finished_run["folder"], folder)
    output = folder / "lightcurves"
    # One star made invalid: its flux negative, its contamination above one.
    with sqlite3.connect(folder / "todo.sqlite") as con:
        priority, name = con.execute(
            "SELECT priority, lightcurve FROM diagnostics WHERE lightcurve IS NOT NULL LIMIT 1"
        ).fetchone()
        con.execute(
            "UPDATE diagnostics SET mean_flux = -5, contamination = 1.5 WHERE priority = ?",
            (priority,),
        )
    report = write_report(folder, output)
    assert report.headers_updated >= 1
    with sqlite3.connect(folder / "todo.sqlite") as con:
        stored = dict((p, (f, a)) for p, f, a in con.execute("SELECT * FROM datavalidation_raw"))
    flags, approved = stored[priority]
    assert flags & DataVal.INVALID_FLUX and flags & DataVal.INVALID_CONTAMINATION
    assert not approved
    path = next(p for p in (folder / name, output / name) if p.is_file())
    with fits.open(path, checksum=True) as hdus:
        assert hdus[0].header["DATAVAL"] == flags
    counts = report.numbers["groups"][0]["validation"]
    assert counts["flags"]["INVALID_FLUX"] >= 1
    assert counts["approved"] == sum(a for _, a in stored.values())
    # Run again: nothing changes, no light curve is rewritten.
    assert write_report(folder, output).headers_updated == 0


def test_flags_of_constructed_cases(finished_run):
    run = read_run(finished_run["folder"] / "todo.sqlite")
    good = np.flatnonzero(np.isin(run["status"], (1, 3)))[:6]
    run = run.subset(good)
    columns = run.columns
    columns["mean_flux"][0] = np.nan  # all NaN
    columns["contamination"][1] = -0.2
    columns["mask_size"][2] = 1.0  # far too small for any magnitude up to 16
    columns["tmag"][2] = 10.0
    columns["mask_size"][3] = 5000.0
    columns["tmag"][3] = 12.0
    columns["rms_hour"][4] = columns["rms_hour"][4] * 100
    columns["ptp"][5] = columns["ptp"][5] / 100
    flags = dataval_flags(run)
    assert flags[0] & DataVal.INVALID_FLUX
    assert flags[1] == flags[1] | DataVal.INVALID_CONTAMINATION
    assert flags[2] & DataVal.SMALL_MASK and not flags[2] & DataVal.LARGE_MASK
    assert flags[3] & DataVal.LARGE_MASK and not flags[3] & DataVal.SMALL_MASK
    assert flags[4] & DataVal.HIGH_NOISE
    assert flags[5] & DataVal.LOW_PTP


def test_cli_report_and_a_failed_report_is_one_warning(
    finished_run, tmp_path, capsys, tessphot_log
):
    from tessphot.cli import EXIT_OK, main
    from tessphot.report import write_report_or_warn

    report_folder = tmp_path / "here"
    argv = ["report", str(finished_run["folder"]), "--report-folder", str(report_folder)]
    assert main([*argv, "--no-validation", "-q"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"Precision report: {report_folder / 'report.html'}"
    tessphot_log.lines.clear()
    assert write_report_or_warn(tmp_path / "nothing", tmp_path / "out") is None
    (line,) = tessphot_log.lines
    assert line.startswith("WARNING: No precision report:") and "no todo list" in line


def test_prf_fits_and_fallbacks_in_the_report(finished_run, tmp_path):
    """The PRF fits' ``PRFCHI2`` are summed up and drawn against Tmag; the automatic choice's
    fall back from a PRF fit counts as a switch with its reason; a todo file from before
    ``prf_chi2`` reads as NaN."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(finished_run["folder"], folder)
    line = (
        "WARNING: TIC 1: Fell back to aperture photometry: the PRF does not describe the target "
        "(reduced chi-square 3.1e+04 of the linear PSF fit > 10; a bleed column runs off the data)"
    )
    with sqlite3.connect(folder / "todo.sqlite") as con:
        first, second = (
            r[0] for r in con.execute("SELECT priority FROM diagnostics ORDER BY priority LIMIT 2")
        )
        con.execute("UPDATE diagnostics SET prf_chi2 = 1.1 WHERE priority = ?", (first,))
        con.execute(
            "UPDATE diagnostics SET prf_chi2 = 3.1e4, method_used = 'aperture', errors = ? "
            "WHERE priority = ?",
            (line, second),
        )
    report = write_report(
        folder, folder / "lightcurves", report_folder=tmp_path / "r", validate=False
    )
    methods = report.numbers["groups"][0]["methods"]
    assert methods["switches"]["aperture -> PRF fit -> aperture (fell back)"] == 1
    reason = "WARNING: Fell back to aperture photometry: the PRF does not describe the target"
    assert methods["switch_reasons"][reason] == 1
    assert methods["prf_fits"]["light curves with a PRF fit"] == 2
    assert methods["prf_fits"]["median PRFCHI2"] == np.median([1.1, 3.1e4])
    assert "prf_chi2" in report.numbers["groups"][0]["figures"]

    with sqlite3.connect(folder / "todo.sqlite") as con:
        con.execute("ALTER TABLE diagnostics DROP COLUMN prf_chi2")
    assert np.all(np.isnan(read_run(folder / "todo.sqlite")["prf_chi2"]))
