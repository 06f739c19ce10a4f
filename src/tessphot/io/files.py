"""Walking input folders and parsing the names of SPOC full-frame image files."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

#: File name of a SPOC calibrated FFI, e.g. ``tess2018206192942-s0001-1-4-0120-s_ffic.fits``
#: (optionally gzipped): timestamp, sector, camera, CCD, spacecraft configuration, origin.
FFI_NAME_PATTERN = re.compile(
    r"tess(?P<timestamp>\d+)-s(?P<sector>\d{4})-(?P<camera>\d)-(?P<ccd>\d)-\d{4}-[xsab]"
    r"_ffic\.fits(?:\.gz)?"
)


class FFIName(NamedTuple):
    """The parts of a SPOC FFI file name.

    Attributes
    ----------
    timestamp : str
        The timestamp digits after ``tess`` (``YYYYDDDHHMMSS``), kept as a string.
    sector : int
        TESS sector.
    camera : int
        Camera (1-4).
    ccd : int
        CCD (1-4).
    """

    timestamp: str
    sector: int
    camera: int
    ccd: int


def parse_ffi_name(name: str | os.PathLike[str]) -> FFIName | None:
    """Parse the file name of a SPOC calibrated FFI.

    Parameters
    ----------
    name : str or os.PathLike
        A file name or path; only its last component is parsed, and it must match
        `FFI_NAME_PATTERN` entirely.

    Returns
    -------
    FFIName or None
        The parsed name, or None when it is not an FFI file name.
    """
    match = FFI_NAME_PATTERN.fullmatch(os.path.basename(os.fspath(name)))
    if match is None:
        return None
    return FFIName(
        timestamp=match["timestamp"],
        sector=int(match["sector"]),
        camera=int(match["camera"]),
        ccd=int(match["ccd"]),
    )


def walk_files(folder: str | os.PathLike[str], what: str = "input") -> Iterator[Path]:
    """Every file anywhere below a folder, following links to folders.

    Each real folder is visited once, so link loops are harmless; broken links are left out.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to search.
    what : str
        What is searched for (in the error messages).

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    NotADirectoryError
        If ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{what} folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{what} folder {root} is not a folder")
    visited: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        stat = os.stat(dirpath)
        key = (stat.st_dev, stat.st_ino)
        if key in visited:
            dirnames.clear()  # already searched through another link: do not descend again
            continue
        visited.add(key)
        for filename in filenames:
            path = Path(dirpath, filename)
            if path.is_file():  # skips broken links and folders with file-like names
                yield path
