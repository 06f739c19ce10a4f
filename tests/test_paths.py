"""Atomic, durable writes with the user's permissions (:mod:`tessphot.paths`)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tessphot import paths
from tessphot.paths import atomic_path, current_umask, default_file_mode, finish_file


@pytest.fixture
def set_umask():
    """Set the process umask for the test (restored afterwards)."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing(set_umask, monkeypatch):
    set_umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027  # still set after reading

    # Without /proc/self/status (not Linux): the portable fallback gives the same.
    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(paths, "open", no_proc, raising=False)
    assert current_umask() == 0o027
    assert current_umask() == 0o027
    assert default_file_mode() == 0o640


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_file_gets_plain_file_permissions(tmp_path, set_umask, umask, mode):
    set_umask(umask)
    path = tmp_path / "new" / "out.txt"
    with atomic_path(path) as tmp:
        tmp.write_text("content")
    assert path.read_text() == "content"
    assert _mode(path) == mode
    # Same as a plainly created file.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert _mode(plain) == mode
    # The folder created on the way follows the umask too.
    assert _mode(path.parent) == 0o777 & ~umask
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_finish_file_puts_an_existing_file_in_place(tmp_path, set_umask):
    set_umask(0o022)
    part = tmp_path / "data.hdf5.part"
    part.write_bytes(b"all frames")
    os.chmod(part, 0o600)
    out = tmp_path / "data.hdf5"
    assert finish_file(part, out) == out
    assert not part.exists()
    assert out.read_bytes() == b"all frames"
    assert _mode(out) == 0o644


def test_failed_block_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "todo.sqlite"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(path) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(tmp_path.iterdir()) == [path]
    # Also when the block fails before writing anything.
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path, suffix=".png"):
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert sorted(tmp_path.iterdir()) == [path]


def test_content_is_on_disk_before_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "lc.fits"
    path.write_text("old")
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
        calls.append(("fsync", kind, info.st_ino, info.st_size if kind == "file" else None))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", Path(src).stat().st_ino, Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_path(path) as tmp:
        tmp.write_text("new content")
        inode = tmp.stat().st_ino
    assert path.read_text() == "new content"
    assert calls[0] == ("fsync", "file", inode, len("new content"))
    assert calls[1] == ("replace", inode, path)
    if os.name == "posix":
        assert calls[2] == ("fsync", "folder", tmp_path.stat().st_ino, None)
    assert len(calls) == (3 if os.name == "posix" else 2)


def test_pipeline_outputs_follow_umask(small_sector, tmp_path, set_umask):
    """A light curve, the todo list and the run summary written by the pipeline are 0644
    under umask 022 (not the 0600 of a temporary file)."""
    from tessphot.runner.loop import SUMMARY_FILENAME, run_photometry
    from tessphot.todo import make_todo

    set_umask(0o022)
    folder = tmp_path / "input"
    folder.mkdir()
    for name in ("catalog", "prepared"):
        shutil.copy(small_sector[name], folder / Path(small_sector[name]).name)
    todo = make_todo(folder, [small_sector["sector"]], overwrite=True)
    assert _mode(todo) == 0o644
    output = tmp_path / "lightcurves"
    report = run_photometry(folder, output, constraints={"starid": [small_sector["A"][0]]})
    assert report.counts == {"OK": 1}
    lightcurves = sorted(output.rglob("*.fits*"))
    assert lightcurves
    for path in lightcurves:
        assert _mode(path) == 0o644
        for parent in path.relative_to(output).parents:
            assert _mode(output / parent) == 0o755
    assert _mode(output / SUMMARY_FILENAME) == 0o644
    assert _mode(folder / "todo.sqlite") == 0o644
