"""Tests of FFI file-name parsing and discovery."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from astropy.io import fits

from tessphot.io import FFI_NAME_PATTERN, FFIName, find_ffis, parse_ffi_name

NAME = "tess2018206192942-s0001-1-4-0120-s_ffic.fits"


def _name(timestamp: str, sector: int, camera: int, ccd: int, suffix: str = ".fits") -> str:
    return f"tess{timestamp}-s{sector:04d}-{camera}-{ccd}-0120-s_ffic{suffix}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (NAME, FFIName("2018206192942", 1, 1, 4)),
        (NAME + ".gz", FFIName("2018206192942", 1, 1, 4)),
        ("tess2020240014914-s0029-3-2-0193-s_ffic.fits", FFIName("2020240014914", 29, 3, 2)),
        ("tess2023100000000-s0063-4-1-0265-a_ffic.fits", FFIName("2023100000000", 63, 4, 1)),
        ("tess2023100000000-s0063-4-1-0265-x_ffic.fits.gz", FFIName("2023100000000", 63, 4, 1)),
        (f"/some/folder/{NAME}", FFIName("2018206192942", 1, 1, 4)),
        (Path("rel") / NAME, FFIName("2018206192942", 1, 1, 4)),
    ],
)
def test_parse_valid(name, expected):
    parsed = parse_ffi_name(name)
    assert parsed == expected
    assert isinstance(parsed.sector, int)


@pytest.mark.parametrize(
    "name",
    [
        "tess2018206192942-s0001-1-4-0120-s_ffir.fits",  # raw, not calibrated
        "tess2018206192942-s0001-1-4-0120-q_ffic.fits",  # unknown origin letter
        "tess2018206192942-s001-1-4-0120-s_ffic.fits",  # 3-digit sector
        "tess2018206192942-s0001-1-4-0120-s_ffic.fits.bz2",
        "tess2018206192942-s0001-1-4-0120-s_ffic.fits.gz.tmp",
        "xtess2018206192942-s0001-1-4-0120-s_ffic.fits",
        "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits",
        "",
    ],
)
def test_parse_invalid(name):
    assert parse_ffi_name(name) is None


def test_pattern_is_compiled_regex():
    assert FFI_NAME_PATTERN.fullmatch(NAME)
    assert FFI_NAME_PATTERN.fullmatch(NAME + ".gz")


def _fits_bytes(gzipped: bool = False) -> bytes:
    """A minimal valid FITS file (what an FFI name is trusted after: starts like FITS, whole
    blocks), gzipped or not."""
    header = fits.PrimaryHDU().header.tostring().encode("ascii")
    return gzip.compress(header) if gzipped else header


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, Path]:
    """A folder tree with FFIs of two sectors, cameras and CCDs, plus distractors."""
    root = tmp_path / "ffis"
    files = {
        "a": root / _name("2018206192942", 1, 1, 4),
        "b": root / "orbit1" / _name("2018206222942", 1, 1, 4, ".fits.gz"),
        "c": root / "orbit1" / "cam2" / _name("2018206202942", 1, 2, 1),
        "d": root / "s0002" / "deep" / "deeper" / _name("2018235000000", 2, 1, 4),
        "e": root / "s0002" / _name("2018234000000", 2, 3, 3, ".fits.gz"),
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_fits_bytes(path.name.endswith(".gz")))
    # Distractors: other products, temporary files, a folder with an FFI-like name.
    (root / "notes.txt").write_text("x")
    (root / "orbit1" / "tess2018206192942-s0001-1-4-0120-s_ffir.fits").write_bytes(b"x")
    (root / "orbit1" / (files["a"].name + ".part")).write_bytes(b"x")
    (root / "s0002" / _name("2018234000001", 2, 3, 3)).mkdir()
    return files


def test_find_all_sorted_by_name(tree: dict[str, Path]):
    root = tree["a"].parent
    found = find_ffis(root)
    assert set(found) == set(tree.values())
    assert [p.name for p in found] == sorted(p.name for p in tree.values())
    assert all(p.is_relative_to(root) for p in found)


def test_find_accepts_str(tree: dict[str, Path]):
    assert find_ffis(str(tree["a"].parent)) == find_ffis(tree["a"].parent)


@pytest.mark.parametrize(
    ("filters", "keys"),
    [
        ({"sector": 1}, "abc"),
        ({"sector": 2}, "de"),
        ({"camera": 1}, "abd"),
        ({"ccd": 4}, "abd"),
        ({"sector": 1, "camera": 1, "ccd": 4}, "ab"),
        ({"sector": 2, "camera": 3, "ccd": 3}, "e"),
        ({"sector": 3}, ""),
    ],
)
def test_filters(tree: dict[str, Path], filters: dict[str, int], keys: str):
    found = find_ffis(tree["a"].parent, **filters)
    assert set(found) == {tree[key] for key in keys}


def test_follows_symlinked_folders_and_survives_loops(tree: dict[str, Path], tmp_path: Path):
    root = tree["a"].parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = elsewhere / _name("2018210000000", 1, 4, 2)
    outside.write_bytes(_fits_bytes())
    os.symlink(elsewhere, root / "linked")
    os.symlink(root, root / "s0002" / "loop")  # a loop back to the root
    os.symlink(tmp_path / "gone" / _name("2018210000001", 1, 4, 2), root / "broken")
    found = find_ffis(root)
    assert root / "linked" / outside.name in found
    assert len(found) == len(tree) + 1  # each file once, broken link skipped


def test_no_caching(tree: dict[str, Path]):
    root = tree["a"].parent
    before = find_ffis(root)
    new = root / "orbit1" / _name("2018207000000", 1, 1, 4)
    new.write_bytes(_fits_bytes())
    after = find_ffis(root)
    assert after == sorted([*before, new], key=lambda p: p.name)
    new.unlink()
    assert find_ffis(root) == before


def test_missing_folder(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_ffis(tmp_path / "nowhere")


def test_file_instead_of_folder(tmp_path: Path):
    path = tmp_path / NAME
    path.write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        find_ffis(path)


def test_empty_folder(tmp_path: Path):
    assert find_ffis(tmp_path) == []
