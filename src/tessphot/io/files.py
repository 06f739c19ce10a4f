"""Finding SPOC full-frame image files and parsing their names."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

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


def find_ffis(
    folder: str | os.PathLike[str],
    sector: int | None = None,
    camera: int | None = None,
    ccd: int | None = None,
) -> list[Path]:
    """Find SPOC calibrated FFIs anywhere below a folder.

    The folder is searched recursively, following symbolic links to folders (each real folder
    is visited once, so link loops are harmless). Plain and gzipped files are found. The
    listing is read afresh on every call.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to search.
    sector, camera, ccd : int, optional
        Keep only files of this sector / camera / CCD (from the file name).

    Returns
    -------
    list of pathlib.Path
        Matching files (``folder`` joined with the relative path), sorted by file name (then
        by full path, for identical names in different folders).

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    NotADirectoryError
        If ``folder`` is not a folder.
    """
    return find_named(folder, parse_ffi_name, "FFI", sector=sector, camera=camera, ccd=ccd)


def find_named(
    folder: str | os.PathLike[str],
    parse: Callable[[str], Any],
    what: str,
    **wanted: Any,
) -> list[Path]:
    """Files anywhere below a folder whose names ``parse`` understands, filtered by fields.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to search (links followed, see :func:`walk_files`).
    parse : callable
        File name -> an object with attributes, or None for other files.
    what : str
        What is searched for (in the error messages).
    **wanted
        Attribute values the parsed name must have; None accepts any value.

    Returns
    -------
    list of pathlib.Path
        Sorted by file name, then by full path.
    """
    wanted = {key: value for key, value in wanted.items() if value is not None}
    found = []
    for path in walk_files(folder, what):
        parsed = parse(path.name)
        if parsed is not None and all(getattr(parsed, k) == v for k, v in wanted.items()):
            found.append(path)
    return sorted(found, key=lambda p: (p.name, str(p)))


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
