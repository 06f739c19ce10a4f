"""``tessphot demo`` never removes or overwrites what it did not make."""

from __future__ import annotations

import pytest

from tessphot.cli import EXIT_ERROR, EXIT_OK, main
from tessphot.demo.folder import DEMO_MARKER
from tessphot.io import find_ffis

SMALL_DEMO = "[demo]\nsize = 40\ncadences = 3\nstars = 20\nbright = 0\n"


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_DEMO)
    return str(path)


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path, settings, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "todo.sqlite").write_bytes(b"my todo list")
    (folder / "ffi").mkdir()
    (folder / "ffi" / "tess2018206192942-s0001-1-4-0120-s_ffic.fits").write_bytes(b"real FFI")
    assert main(["demo", str(folder), "--settings", settings, "-q"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not empty and is not a demo folder" in err[0]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "ffi",
        "ffi/tess2018206192942-s0001-1-4-0120-s_ffic.fits",
        "todo.sqlite",
    ]
    assert (folder / "todo.sqlite").read_bytes() == b"my todo list"


def test_demo_reruns_and_overwrites_only_its_own_files(tmp_path, settings, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", str(folder), "--settings", settings, "-q"]) == EXIT_OK
    made = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"todo.sqlite", "catalog_sector001_camera1_ccd4.sqlite", DEMO_MARKER} <= made
    assert any(name.startswith("lightcurves/") for name in made)
    ffi = find_ffis(folder)[0]
    mtime = ffi.stat().st_mtime_ns
    # The user's own notes in the demo's folder and in its light-curve folder.
    (folder / "notes.txt").write_text("mine")
    (folder / "lightcurves" / "notes.txt").write_text("mine too")
    capsys.readouterr()

    # Its own folder re-runs, reusing the simulated data.
    assert main(["demo", str(folder), "--settings", settings, "-q"]) == EXIT_OK
    assert "every task was done already" in capsys.readouterr().out
    assert ffi.stat().st_mtime_ns == mtime

    # -o makes everything again: the demo's files are new, the user's are untouched.
    assert main(["demo", str(folder), "--settings", settings, "-q", "-o"]) == EXIT_OK
    assert ffi.stat().st_mtime_ns != mtime
    remade = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert remade == made | {"notes.txt", "lightcurves/notes.txt"}
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "lightcurves" / "notes.txt").read_text() == "mine too"

    # A data file it did not make stops it before anything is touched.
    (folder / "lightcurves" / "other_lc.fits").write_bytes(b"someone else's")
    assert main(["demo", str(folder), "--settings", settings, "-q", "-o"]) == EXIT_ERROR
    assert "data the demo did not make" in capsys.readouterr().err
    assert ffi.is_file() and (folder / "lightcurves" / "other_lc.fits").is_file()
