"""``tessphot run -j N``: local worker processes, and the faults they must survive.

The runs are real processes: the command line in a subprocess, its workers spawned by it;
faults are real SIGKILLs (from the test, or from the workers' test hook,
``tessphot.runner.worker``).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from tessphot.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from tessphot.logs import PROGRESS_LOG_PERCENT
from tessphot.runner.loop import run_photometry
from tessphot.runner.worker import (
    KILL_MARKER,
    KILL_ONCE_STARID_ENV,
    KILL_STARID_ENV,
    TASK_DELAY_ENV,
)
from tessphot.tasks import STATUS

#: Statuses of a finished task.
FINAL = {int(STATUS.OK), int(STATUS.WARNING), int(STATUS.SKIPPED)}
#: Seconds to wait for processes to appear or go away.
PROCESS_TIMEOUT = 60.0
#: Seconds each worker waits before a task in the runs stopped in their middle.
TASK_DELAY = 0.2
#: Tests that find the workers through /proc (:func:`_children`, :func:`_alive`).
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_two_workers_give_the_serial_results(sector_copy, tmp_path, run_cli, todo_tools):
    """Same statuses and fluxes as a serial run; summary.json with the counts and the mean
    task and wait times; a wait time per task in the diagnostics."""
    read_todo, check_light_curves = todo_tools
    serial = tmp_path / "serial"
    serial.mkdir()
    for path in sector_copy.glob("*.*"):
        (serial / path.name).write_bytes(path.read_bytes())
    run_photometry(serial, run_all=True)

    result = run_cli(["run", str(sector_copy), "--all", "-j", "2"])
    assert result.returncode == EXIT_OK, result.stderr
    assert "2 worker(s)" in result.stdout and "waited" in result.stdout
    # stderr is a pipe, not a terminal: no progress bar, a few plain progress lines instead.
    assert "\r" not in result.stderr and "task/s" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if "tasks done" in line]
    assert progress and len(progress) <= 100 // PROGRESS_LOG_PERCENT + 1
    assert re.search(r"photometry: (\d+) of \1 tasks done \(100 %\)", progress[-1])
    parallel, expected = read_todo(sector_copy), read_todo(serial)
    assert {p: t["status"] for p, t in parallel.items()} == {
        p: t["status"] for p, t in expected.items()
    }
    for priority, task in parallel.items():
        if task["status"] in (STATUS.OK, STATUS.WARNING):
            np.testing.assert_allclose(task["mean_flux"], expected[priority]["mean_flux"])
            assert task["worker_wait_time"] is not None and task["worker_wait_time"] >= 0
    check_light_curves(sector_copy / "lightcurves")
    summary = json.loads((sector_copy / "lightcurves" / "summary.json").read_text())
    assert summary["tasks_run"] == len(parallel) and summary["STARTED"] == 0
    assert summary["OK"] == sum(t["status"] == STATUS.OK for t in parallel.values())
    assert summary["mean_elaptime"] > 0 and summary["mean_worker_waittime"] >= 0
    # A whole run ends with its precision report.
    page = sector_copy / "lightcurves" / "report" / "report.html"
    assert f"Precision report: {page}" in result.stdout and page.is_file()


def test_progress_bar_on_a_terminal(sector_copy):
    """On a terminal (a pseudo-terminal here) the parallel run shows a tqdm bar with the rate
    and the time left, redrawn in place."""
    leader, follower = pty.openpty()
    # A window size: tqdm draws nothing on a terminal of zero columns.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tessphot.cli", "run", str(sector_copy), "--all", "-j", "2"],
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        output = _read_terminal(leader)
        assert process.wait(timeout=PROCESS_TIMEOUT) == EXIT_OK
    finally:
        os.close(leader)
    assert "task/s" in output and "\r" in output and "tasks done" not in output


def _read_terminal(leader: int) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_workers_must_be_positive(sector_copy):
    with pytest.raises(SystemExit) as info:
        main(["-q", "run", str(sector_copy), "--all", "-j", "0"])
    assert info.value.code == EXIT_USAGE
    with pytest.raises(ValueError, match="positive integer"):
        run_photometry(sector_copy, run_all=True, workers=0)


def test_killed_workers(small_sector, sector_copy, run_cli, todo_tools):
    """Workers killed (SIGKILL) in the middle of a task are noticed and replaced. Star A
    kills its worker once: its task goes back to the queue and succeeds. Star B kills its
    worker every time: after the second time it is an ERROR saying why. The run completes."""
    read_todo, check_light_curves = todo_tools
    once, always = small_sector["A"][0], small_sector["B"][0]
    env = {KILL_ONCE_STARID_ENV: str(once), KILL_STARID_ENV: str(always)}
    result = run_cli(["run", str(sector_copy), "--all", "-j", "2"], env=env)
    assert (sector_copy / KILL_MARKER.format(starid=once)).exists(), "A killed no worker"
    assert result.returncode == EXIT_ERROR, result.stderr
    assert "killed by signal SIGKILL" in result.stderr and "queued again" in result.stderr
    assert f"ERROR TIC {always}" in result.stdout
    tasks = {t["starid"]: t for t in read_todo(sector_copy).values()}
    assert tasks[once]["status"] == STATUS.OK
    assert (sector_copy / tasks[once]["lightcurve"]).is_file()
    assert tasks[always]["status"] == STATUS.ERROR
    assert "killed its worker process 2 times" in tasks[always]["errors"]
    assert "SIGKILL" in tasks[always]["errors"]
    assert all(t["status"] in FINAL for s, t in tasks.items() if s != always)
    check_light_curves(sector_copy / "lightcurves")


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _default_sigint() -> None:
    """In the child before it starts: the default action of SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_wait_for_results(folder: Path) -> subprocess.Popen:
    """Start ``tessphot run --all -j 2`` and return once it has written a few light curves.

    Its workers wait :data:`TASK_DELAY` before each task, so that the run is still in its
    middle when the test stops it, however fast the photometry and however busy the machine.
    """
    output = folder / "lightcurves"
    master = subprocess.Popen(
        [sys.executable, "-m", "tessphot.cli", "-q", "run", str(folder), "--all", "-j", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, TASK_DELAY_ENV: str(TASK_DELAY)},
        # A shell's background job starts with SIGINT ignored, and Python then keeps it so:
        # the run must get Ctrl-C as a user's terminal would give it.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while len(list(output.rglob("*-tasoc_lc.fits.gz"))) < 4:
        assert master.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline, "no light curve appeared"
        time.sleep(0.02)
    return master


@needs_proc
def test_ctrl_c_stores_the_running_tasks_as_abort(sector_copy, run_cli, todo_tools):
    """Ctrl-C (SIGINT) on the master: it stops its workers, stores the tasks they were on as
    ABORT, exits with 130; a rerun retries those and finishes the list."""
    read_todo, check_light_curves = todo_tools
    master = _start_and_wait_for_results(sector_copy)
    workers = _children(master.pid)
    master.send_signal(signal.SIGINT)
    _, stderr = master.communicate(timeout=PROCESS_TIMEOUT)
    assert master.returncode == 130, stderr
    assert "interrupted" in stderr
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers outlived the interrupted run"
        time.sleep(0.05)
    before = read_todo(sector_copy)
    statuses = {t["status"] for t in before.values()}
    assert STATUS.STARTED not in statuses
    assert statuses & FINAL and None in statuses, "interrupt the run in the middle"
    check_light_curves(sector_copy / "lightcurves")

    result = run_cli(["run", str(sector_copy), "--all", "-j", "2"])
    assert result.returncode == EXIT_OK, result.stderr
    assert all(t["status"] in FINAL for t in read_todo(sector_copy).values())


@needs_proc
def test_killed_master_loses_nothing(sector_copy, run_cli, todo_tools, flagged_tasks):
    """SIGKILL the master in the middle of a run: its workers stop, every result it had
    saved stays, and a rerun does the rest, redoing nothing saved, with no corrupt file."""
    read_todo, check_light_curves = todo_tools
    output = sector_copy / "lightcurves"
    master = _start_and_wait_for_results(sector_copy)
    deadline = time.monotonic() + PROCESS_TIMEOUT
    workers = _children(master.pid)
    assert workers
    os.kill(master.pid, signal.SIGKILL)
    master.wait()
    while any(_alive(pid) for pid in workers):  # they notice their master is gone
        assert time.monotonic() < deadline, "workers outlived their master"
        time.sleep(0.05)

    before = read_todo(sector_copy)
    saved = {p: t for p, t in before.items() if t["status"] in FINAL}
    left = [p for p, t in before.items() if t["status"] not in FINAL]
    assert saved and left, "kill the master in the middle of the run"
    stamps = {
        p: (sector_copy / t["lightcurve"]).stat().st_mtime_ns
        for p, t in saved.items()
        if t["lightcurve"]
    }
    check_light_curves(output)

    result = run_cli(["run", str(sector_copy), "--all", "-j", "2"])
    assert result.returncode == EXIT_OK, result.stderr
    ran = int(result.stdout.split("Ran ")[1].split()[0])
    assert ran <= len(left)
    after = read_todo(sector_copy)
    assert all(t["status"] in FINAL for t in after.values())
    for priority, stamp in stamps.items():  # not redone
        assert after[priority]["lightcurve"] == saved[priority]["lightcurve"]
        if priority not in flagged_tasks(sector_copy):
            assert (sector_copy / after[priority]["lightcurve"]).stat().st_mtime_ns == stamp
    files = check_light_curves(output)
    paths = [t["lightcurve"] for t in after.values() if t["status"] != STATUS.SKIPPED]
    assert len(paths) == len(set(paths)) and {sector_copy / p for p in paths} <= set(files)


def test_workers_dying_as_they_start_stop_the_run(sector_copy, tmp_path, run_cli, todo_tools):
    """A broken installation (workers that die before they are ready) is no task's fault:
    the run stops with a clear error after three such deaths, every task left to do."""
    (tmp_path / "broken_worker.py").write_text(
        "import os\n\n\ndef die(conn, config, debug):\n    os._exit(3)\n"
    )
    (tmp_path / "run_broken.py").write_text(
        "import broken_worker\n"
        "import tessphot.runner.local as local\n"
        "from tessphot.runner.loop import run_photometry\n\n"
        "if __name__ == '__main__':\n"
        "    local._worker_main = broken_worker.die\n"
        f"    run_photometry({str(sector_copy)!r}, run_all=True, workers=1)\n"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = run_cli(
        [str(tmp_path / "run_broken.py")], env={"PYTHONPATH": path}, command=[sys.executable]
    )
    assert result.returncode != 0
    assert "3 worker processes in a row died as they started (exit code 3)" in result.stderr
    read_todo, _ = todo_tools
    assert all(t["status"] is None for t in read_todo(sector_copy).values())
