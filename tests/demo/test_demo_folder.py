"""The demo's folder: claimed by its manifest, only its own files ever removed."""

from __future__ import annotations

import json

import pytest

from tessphot.demo.folder import DEMO_MARKER, DemoFolder, DemoFolderError


def test_a_missing_or_empty_folder_becomes_the_demos(tmp_path):
    demo = DemoFolder.claim(tmp_path / "new")
    assert (tmp_path / "new" / DEMO_MARKER).is_file()
    (tmp_path / "empty").mkdir()
    DemoFolder.claim(tmp_path / "empty")
    # Its own folder is claimed again, whatever it holds of the demo's.
    with demo.recording():
        (demo.path / "ffi").mkdir()
        (demo.path / "ffi" / "a_ffic.fits").write_bytes(b"x")
    again = DemoFolder.claim(tmp_path / "new")
    assert again.files == {"ffi/a_ffic.fits"} and again.folders == {"ffi"}


def test_a_foreign_folder_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoFolderError, match="not empty and is not a demo folder"):
        DemoFolder.claim(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_older_demos_folder_is_refused(tmp_path):
    (tmp_path / DEMO_MARKER).write_text(json.dumps({"sector": 1, "size": 200}))
    with pytest.raises(DemoFolderError, match="older tessphot demo"):
        DemoFolder.claim(tmp_path)


def test_foreign_data_in_its_own_folder_is_refused(tmp_path):
    DemoFolder.claim(tmp_path)
    (tmp_path / "sub").mkdir()
    real = tmp_path / "sub" / "tess2018206192942-s0001-1-4-0120-s_ffic.fits"
    real.write_bytes(b"real")
    with pytest.raises(DemoFolderError, match="data the demo did not make"):
        DemoFolder.claim(tmp_path)
    assert real.read_bytes() == b"real"


def test_remove_own_removes_only_the_manifests_files(tmp_path):
    demo = DemoFolder.claim(tmp_path)
    with demo.recording():
        (tmp_path / "lightcurves" / "c1800").mkdir(parents=True)
        (tmp_path / "lightcurves" / "c1800" / "lc.fits.gz").write_bytes(b"lc")
        (tmp_path / "todo.sqlite").write_bytes(b"todo")
    (tmp_path / "notes.txt").write_text("mine")  # not data: tolerated, never touched
    (tmp_path / "lightcurves" / "README").write_text("mine too")
    demo = DemoFolder.claim(tmp_path)
    demo.remove_own()
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == [DEMO_MARKER, "lightcurves", "lightcurves/README", "notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / DEMO_MARKER).read_text())["files"] == []


def test_files_of_a_killed_stage_are_claimed_at_the_next_start(tmp_path):
    demo = DemoFolder.claim(tmp_path)
    stage = demo.recording()
    stage.__enter__()  # a stage starts and is killed: its exit never runs
    (tmp_path / "catalog_sector001_camera1_ccd4.sqlite").write_bytes(b"half")
    again = DemoFolder.claim(tmp_path)  # not refused as foreign data
    assert again.files == {"catalog_sector001_camera1_ccd4.sqlite"}
    again.remove_own()
    assert not (tmp_path / "catalog_sector001_camera1_ccd4.sqlite").exists()
