"""The data at hand for a catalog: target pixel files and TESScut cutouts, and their footprints.

A catalog for just these files covers each file's pixels (through the file's own WCS, any
shape) grown by the buffer, instead of whole CCDs (:func:`tessphot.catalog.make.make_catalogs`
with ``data``). When no TIC is at hand at all, the primary headers of SPOC TPFs still give
their targets (:func:`header_stars`): ``TICID``, ``RA_OBJ``, ``DEC_OBJ`` (J2000), ``PMRA``,
``PMDEC``, ``TESSMAG``, ``TEFF``; the neighbours of those targets stay unknown.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

from tessphot.catalog.sources.base import StarBatch
from tessphot.io.errors import FileProblem
from tessphot.io.recognise import InputFile, Kind, recognise
from tessphot.io.tesscut import find_cutouts, read_cutout
from tessphot.io.tpf import TPFError, find_tpfs, read_tpf

log = logging.getLogger(__name__)

#: Kinds of data file.
TPF = "tpf"
TESSCUT = "tesscut"


@dataclass(frozen=True, eq=False)
class DataFile:
    """Where one TPF or cutout looks: enough to build its catalog.

    Attributes
    ----------
    path : pathlib.Path
    kind : str
        :data:`TPF` or :data:`TESSCUT`.
    sector, camera, ccd : int
    wcs : astropy.wcs.WCS
        WCS of the file's pixels (0-based).
    shape : (int, int)
        ``(rows, columns)`` of the pixels.
    header : astropy.io.fits.Header
        The primary header (of a TPF: as in the file, where ``RA_OBJ``/``DEC_OBJ`` are J2000
        positions; the PIXELS table's are at the sector's epoch).
    """

    path: Path
    kind: str
    sector: int
    camera: int
    ccd: int
    wcs: WCS
    shape: tuple[int, int]
    header: fits.Header

    @property
    def ccd_key(self) -> tuple[int, int, int]:
        """``(sector, camera, ccd)``."""
        return self.sector, self.camera, self.ccd


def find_data(folder: str | os.PathLike, sector: int | None = None) -> list[Path]:
    """TPFs and TESScut cutouts anywhere below a folder (optionally of one sector)."""
    return sorted(find_tpfs(folder, sector=sector)) + sorted(find_cutouts(folder, sector=sector))


def expand_paths(paths: Iterable[str | os.PathLike], sector: int | None = None) -> list[Path]:
    """Files as given, folders replaced by the TPFs and cutouts below them (:func:`find_data`)."""
    out: list[Path] = []
    for path in (Path(p).expanduser() for p in paths):
        out.extend(find_data(path, sector) if path.is_dir() else [path])
    return list(dict.fromkeys(out))


def read_data_file(path: str | os.PathLike) -> DataFile:
    """The sector, CCD, WCS and shape of a TPF or TESScut cutout.

    Raises
    ------
    tessphot.io.errors.FileProblem
        For a file that cannot be read (the message names it and the problem).
    """
    path = Path(path)
    found = recognise(path)
    if isinstance(found, InputFile) and found.kind is Kind.CUTOUT:
        cutout = read_cutout(path)
        sector, camera, ccd = cutout.name.sector, cutout.name.camera, cutout.name.ccd
        return DataFile(path, TESSCUT, sector, camera, ccd, cutout.wcs, cutout.shape, cutout.header)
    tpf = read_tpf(path, pixels=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            primary = fits.getheader(path, 0)
    except (OSError, ValueError) as err:  # read_tpf read it: only a file changing under us
        raise TPFError(path, f"primary header unreadable ({err})") from None
    return DataFile(path, TPF, tpf.sector, tpf.camera, tpf.ccd, tpf.wcs, tpf.shape, primary)


def read_data_files(
    paths: Sequence[str | os.PathLike], sector: int | None = None
) -> list[DataFile]:
    """:func:`read_data_file` for each file; unreadable ones are logged and left out."""
    found = []
    for path in paths:
        try:
            data = read_data_file(path)
        except FileProblem as err:
            log.error("Left out of the catalog: %s", err)
            continue
        if sector is not None and data.sector != sector:
            log.info("%s: sector %d, not %d: left out", data.path.name, data.sector, sector)
            continue
        found.append(data)
    return found


def _header_float(header: fits.Header, key: str) -> float:
    """A header value as a float (NaN when absent or not a number)."""
    value = header.get(key)
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def header_stars(files: Sequence[DataFile]) -> StarBatch:
    """The primary targets of SPOC TPFs from their headers (cutouts have none).

    Files whose header lacks ``TICID``, a position or ``TESSMAG`` are logged and left out;
    a target in several files is kept once.
    """
    rows: dict[int, tuple[float, ...]] = {}
    for data in files:
        if data.kind != TPF:
            continue
        header = data.header
        values = tuple(
            _header_float(header, k)
            for k in ("TICID", "RA_OBJ", "DEC_OBJ", "PMRA", "PMDEC", "TESSMAG", "TEFF")
        )
        if not all(math.isfinite(values[i]) for i in (0, 1, 2, 5)):
            log.warning("%s: no TICID, RA_OBJ, DEC_OBJ or TESSMAG in the header", data.path.name)
            continue
        rows.setdefault(int(values[0]), values)
    if not rows:
        return StarBatch.empty()
    table = np.array(list(rows.values()), dtype=float)
    return StarBatch(
        starid=table[:, 0].astype(np.int64),
        ra=np.mod(table[:, 1], 360.0),
        dec=table[:, 2],
        pm_ra=table[:, 3],
        pm_dec=table[:, 4],
        tmag=table[:, 5],
        teff=table[:, 6],
        disposition=np.full(len(rows), "", dtype="<U1"),
    )
