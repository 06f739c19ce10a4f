"""``mpiexec -n 3 tessphot run-mpi`` and ``run_tessphot_mpi.py``: real 3-rank MPI jobs.

Skipped when Open MPI's ``mpiexec`` or mpi4py is missing, except on CI (``CI=true``), where
that is a failure (``.ci/install-system.sh`` installs Open MPI, the dev extra mpi4py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tessphot.cli import EXIT_OK
from tessphot.runner.loop import run_photometry
from tessphot.runner.master import KILL_MASTER_ENV
from tessphot.runner.worker import KILL_STARID_ENV
from tessphot.tasks import STATUS

REPO = Path(__file__).resolve().parents[2]
#: Ranks of the test jobs: a master and two workers (more than this machine's cores, maybe).
RANKS = 3
#: Statuses of a finished task.
FINAL = {int(STATUS.OK), int(STATUS.WARNING), int(STATUS.SKIPPED)}


@pytest.fixture(scope="module")
def mpiexec() -> list[str]:
    """The ``mpiexec`` command line of a 3-rank job on this machine."""
    missing = []
    if shutil.which("mpiexec") is None:
        missing.append("mpiexec (Debian: openmpi-bin, libopenmpi-dev)")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        missing.append("mpi4py (pip install 'tessphot[mpi]')")
    if missing:
        message = f"MPI tests need {' and '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: on CI they must run")
        pytest.skip(message)
    command = ["mpiexec", "--oversubscribe", "-n", str(RANKS)]
    if os.geteuid() == 0:  # Open MPI refuses to run as root without this
        command.insert(1, "--allow-run-as-root")
    return command


def _same_light_curves(folder: Path, serial: Path, read_todo) -> None:
    """The same statuses and, file by file, the same light curves as the serial run."""
    ours, expected = read_todo(folder), read_todo(serial)
    assert {p: t["status"] for p, t in ours.items()} == {
        p: t["status"] for p, t in expected.items()
    }
    compared = 0
    for priority, task in ours.items():
        # (A task SKIPPED in parallel may have written a light curve before the brighter
        # star's result skipped it: only the light curves of OK and WARNING tasks count.)
        if task["status"] not in (STATUS.OK, STATUS.WARNING):
            continue
        assert task["lightcurve"] == expected[priority]["lightcurve"]
        with (
            fits.open(folder / task["lightcurve"]) as a,
            fits.open(serial / task["lightcurve"]) as b,
        ):
            for column in ("TIME", "CADENCENO", "FLUX_RAW", "FLUX_RAW_ERR", "FLUX_BKG", "QUALITY"):
                np.testing.assert_array_equal(
                    a["LIGHTCURVE"].data[column], b["LIGHTCURVE"].data[column], err_msg=column
                )
            np.testing.assert_array_equal(a["APERTURE"].data, b["APERTURE"].data)
        compared += 1
    assert compared >= 5


def test_dead_rank_ends_the_job_and_a_rerun_resumes(
    sector_copy, tmp_path, mpiexec, run_cli, todo_tools, flagged_tasks
):
    """Real 3-rank jobs. A master killed after saving three results ends the job, and so
    does a worker rank that dies (``run_tessphot_mpi.py`` without ``--all``: every task, as
    the original's). Nothing saved is lost: ``mpiexec -n 3 tessphot run-mpi``
    then does only the rest, with no corrupt file, and keeps summary.json current. The
    light curves are those of a serial run, value for value."""
    read_todo, check_light_curves = todo_tools
    serial = tmp_path / "serial"
    serial.mkdir()
    for path in sector_copy.glob("*.*"):
        shutil.copy2(path, serial / path.name)
    run_photometry(serial, serial / "lightcurves", run_all=True)
    script = [*mpiexec, sys.executable, str(REPO / "run_tessphot_mpi.py")]
    args = [str(sector_copy)]  # the original's script runs every task without --all

    master_killed = run_cli(args, env={KILL_MASTER_ENV: "3"}, command=script)
    assert master_killed.returncode != EXIT_OK
    first = read_todo(sector_copy)
    assert len([t for t in first.values() if t["status"] in FINAL]) >= 3

    # The brightest task left: no brighter star left to make it SKIPPED, so it is run.
    victim = first[min(p for p, t in first.items() if t["status"] not in FINAL)]["starid"]
    died = run_cli(args, env={KILL_STARID_ENV: str(victim)}, command=script)
    assert died.returncode != EXIT_OK
    before = read_todo(sector_copy)
    assert not any(t["status"] in FINAL for t in before.values() if t["starid"] == victim)
    saved = {p: t for p, t in before.items() if t["status"] in FINAL}
    stamps = {
        p: (sector_copy / t["lightcurve"]).stat().st_mtime_ns
        for p, t in saved.items()
        if t["lightcurve"]
    }
    check_light_curves(sector_copy / "lightcurves")

    rerun = run_cli(
        ["run-mpi", "--all", *args], command=[*mpiexec, sys.executable, "-m", "tessphot.cli"]
    )
    assert rerun.returncode == EXIT_OK, rerun.stderr
    assert "2 worker(s)" in rerun.stdout
    after = read_todo(sector_copy)
    assert all(t["status"] in FINAL for t in after.values())
    ran = int(rerun.stdout.split("Ran ")[1].split()[0])
    assert ran <= len(after) - len(saved)
    for priority, stamp in stamps.items():  # not redone
        if priority not in flagged_tasks(sector_copy):
            assert (sector_copy / after[priority]["lightcurve"]).stat().st_mtime_ns == stamp
    assert all(
        t["worker_wait_time"] is not None for t in after.values() if t["status"] == STATUS.OK
    )
    check_light_curves(sector_copy / "lightcurves")
    summary = json.loads((sector_copy / "lightcurves" / "summary.json").read_text())
    assert summary["tasks_run"] == ran and summary["STARTED"] == 0
    assert summary["OK"] == sum(t["status"] == STATUS.OK for t in after.values())
    _same_light_curves(sector_copy, serial, read_todo)
