"""A damaged prepared-data file: one clear line naming it, from the reader, todo and run."""

from __future__ import annotations

import shutil
import sqlite3

import h5py
import numpy as np
import pytest

from tessphot.cli import main
from tessphot.config.simulate import SimulationConfig
from tessphot.prepare.cube import PreparedCube, PreparedDataError
from tessphot.tasks.status import STATUS

PREPARED = "sector001_camera1_ccd4.hdf5"
ADVICE = "re-run 'tessphot prepare --overwrite --sector 1 --camera 1 --ccd 4' to rebuild it"


def truncate(path, fraction=0.5) -> tuple[int, int]:
    """Cut a file to ``fraction`` of its length, as an interrupted copy does: (kept, size)."""
    data = path.read_bytes()
    kept = int(len(data) * fraction)
    path.write_bytes(data[:kept])
    return kept, len(data)


def damage_chunk(path, name: str, index: int) -> None:
    """Overwrite the start of one stored chunk of a cube (its compression header) with junk."""
    with h5py.File(path, "r") as h5:
        info = h5[name].id.get_chunk_info(index)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        f.write(b"\xff" * 64)


def one_line(message: str, path) -> None:
    """The message is one line naming the file, saying it is damaged and what to do."""
    assert "\n" not in message
    assert message.startswith(f"{path}: damaged prepared-data file (")
    assert message.endswith(ADVICE)


def test_truncated(sector_copy):
    path = sector_copy / PREPARED
    kept, size = truncate(path)
    with pytest.raises(PreparedDataError) as info:
        PreparedCube(path)
    one_line(str(info.value), path)
    assert f"(truncated: {kept} of {size} bytes)" in str(info.value)
    assert isinstance(info.value, OSError)


def test_not_hdf5(sector_copy):
    path = sector_copy / PREPARED
    data = bytearray(path.read_bytes())
    data[:4096] = bytes(4096)  # the superblock zeroed
    path.write_bytes(bytes(data))
    with pytest.raises(PreparedDataError) as info:
        PreparedCube(path)
    one_line(str(info.value), path)
    assert "(not an HDF5 file)" in str(info.value)


def test_missing_and_incomplete(sector_copy):
    with pytest.raises(PreparedDataError, match=r"missing\.hdf5: prepared data not found"):
        PreparedCube(sector_copy / "missing.hdf5")
    path = sector_copy / PREPARED
    with h5py.File(path, "r+") as h5:
        h5.attrs["complete"] = False
    with pytest.raises(PreparedDataError, match="not a complete tessphot prepared-data file; re-"):
        PreparedCube(path)


@pytest.mark.parametrize("version", [1, 2])
def test_older_format_versions_are_told_to_rerun_prepare(sector_copy, version):
    path = sector_copy / PREPARED
    with h5py.File(path, "r+") as h5:
        h5.attrs["format_version"] = version
    with pytest.raises(PreparedDataError) as info:
        PreparedCube(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: ")
    assert f"format version {version}, this tessphot reads version 3" in str(info.value)
    assert "re-run 'tessphot prepare --overwrite --sector 1 --camera 1 --ccd 4'" in str(info.value)


def test_damaged_chunk_is_reported_when_read(sector_copy):
    """A corrupt chunk is found when it is read; the other chunks stay readable."""
    path = sector_copy / PREPARED
    damage_chunk(path, "images", 0)  # cadences 0-31, the first 16x16 pixels
    with PreparedCube(path) as cube:
        r0, c0 = cube.origin
        good = cube.stamp("images", r0 + 20, r0 + 30, c0 + 20, c0 + 30)
        assert np.isfinite(good).all()
        with pytest.raises(PreparedDataError) as info:
            cube.stamp("images", r0, r0 + 5, c0, c0 + 5)
    one_line(str(info.value), path)
    assert "(cannot read 'images' at cadences 0-47)" in str(info.value)


def test_todo_and_run_report_a_damaged_file(sector_copy, capsys):
    """todo leaves the file out with the one line (exit 1: no other file gives a task); run
    marks every task of the file ERROR with it."""
    path = sector_copy / PREPARED
    truncate(path)
    todo = sector_copy / "todo.sqlite"
    kept = sector_copy / "todo-kept.sqlite"
    shutil.copy2(todo, kept)
    todo.unlink()
    assert main(["todo", str(sector_copy), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2  # the file left out (a log line), then the stage's error
    assert err[0].endswith(ADVICE) and str(path) in err[0]
    assert err[1].startswith(f"tessphot todo: error: {path}: damaged prepared-data file")
    assert err[1].endswith(ADVICE)
    shutil.move(kept, todo)
    assert main(["run", str(sector_copy), "--all", "-q", "-j", "1"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    with sqlite3.connect(todo) as db:
        rows = db.execute(
            "SELECT todolist.status, diagnostics.errors FROM todolist "
            "JOIN diagnostics ON todolist.priority = diagnostics.priority"
        ).fetchall()
    assert rows
    for status, errors in rows:
        assert status == STATUS.ERROR
        assert errors.count("\n") == 0
        one_line(errors.removeprefix("ERROR: "), path)


def test_prepare_reports_a_damaged_output_and_rebuilds_it(tmp_path, builder, capsys):
    """An existing damaged output: prepare names it and leaves it out (exit 1 as nothing else
    was prepared; nothing deleted);
    with --overwrite it is rebuilt, equal to the original."""
    build, _ = builder
    config = SimulationConfig(size=24, cadences=6, stars=12, bright=0, seed=31, compress=False)
    prepared = build(tmp_path, config)
    original = tmp_path / "original.hdf5"
    shutil.copy2(prepared.hdf5, original)
    truncate(prepared.hdf5, 0.3)
    size = prepared.hdf5.stat().st_size
    assert main(["prepare", str(tmp_path), "-q", "-j", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    # The region's one line, the stage's count of what it left out, and its final error.
    assert len(err) == 3 and f"{prepared.hdf5}: damaged prepared-data file (truncated" in err[0]
    assert "1 failed" in err[1] and "nothing prepared" in err[2]
    assert "Traceback" not in "\n".join(err)
    assert prepared.hdf5.stat().st_size == size
    assert main(["prepare", str(tmp_path), "-q", "-j", "1", "--overwrite"]) == 0
    with h5py.File(prepared.hdf5, "r") as new, h5py.File(original, "r") as old:
        names = ("images", "images_err", "background_mesh", "pixel_flags", "sumimage", "motion")
        for name in names:
            np.testing.assert_array_equal(new[name][()], old[name][()])
