"""Catalog source 1: a local file of TIC rows (CSV, ECSV, FITS or Parquet).

The file needs the TIC's column names (``ID, ra, dec, pmRA, pmDEC, Tmag, Teff`` and optionally
``disposition``, as MAST writes them; the TASOC names ``starid, decl, pm_ra, pm_decl`` work
too; case does not matter; other columns are ignored). Positions are J2000 at epoch 2000.0, as
in the TIC. The simulator writes such a file (``truth/tic_sectorSSS_cameraC_ccdD.csv``).

CSV and ECSV files are read whole; FITS (memory-mapped) and Parquet (pyarrow, optional) are
read in batches, so they may be larger than memory.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.footprint import Footprint
from tessphot.catalog.sources.base import (
    DEFAULT_KEEP_DISPOSITIONS,
    CatalogSource,
    StarBatch,
    cap_selection,
    clean_columns,
    resolve_columns,
)

log = logging.getLogger(__name__)

#: Rows handled at a time [rows].
BATCH_ROWS = 1_000_000
#: File name endings and the format they mean.
FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".ecsv": "ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def file_format(path: str | os.PathLike) -> str:
    """The format of a catalog file from its name.

    Raises
    ------
    CatalogError
        For an unknown ending.
    """
    name = Path(path).name.lower()
    for ending in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return FORMATS[ending]
    raise CatalogError(
        f"{path}: unknown catalog file type (use one of {', '.join(sorted(FORMATS))})"
    )


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                return [name.strip().strip('"') for name in line.rstrip("\r\n").split(",")]
    raise CatalogError(f"{path}: empty file")


def _read_astropy(path: Path, fmt: str) -> Iterator[tuple[dict, dict]]:
    from astropy.table import Table

    try:
        if fmt == "csv":
            header = _csv_header(path)
            names = resolve_columns(header, str(path))
            # astropy's fast reader does not decompress: hand it the text.
            gzipped = path.name.lower().endswith(".gz")
            table = Table.read(
                gzip.decompress(path.read_bytes()).decode() if gzipped else path,
                format="ascii.csv",
                include_names=list(names.values()),
                guess=False,
                fast_reader=True,
            )
        elif fmt == "ecsv":
            table = Table.read(path, format="ascii.ecsv")
            names = resolve_columns(table.colnames, str(path))
        else:
            table = Table.read(path, format="fits", memmap=True, character_as_bytes=False)
            names = resolve_columns(table.colnames, str(path))
    except CatalogError:
        raise
    except Exception as err:  # astropy raises many kinds for a malformed file
        raise CatalogError(f"{path}: cannot read as {fmt.upper()}: {err}") from None
    for start in range(0, max(len(table), 1), BATCH_ROWS):
        part = table[start : start + BATCH_ROWS]
        yield {name: part[name] for name in names.values()}, names


def _read_parquet(path: Path) -> Iterator[tuple[dict, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CatalogError(
            f"{path}: reading Parquet needs pyarrow (pip install 'tessphot[parquet]')"
        ) from None
    try:
        pfile = pq.ParquetFile(path)
        names = resolve_columns(pfile.schema_arrow.names, str(path))
        for batch in pfile.iter_batches(batch_size=BATCH_ROWS, columns=list(names.values())):
            yield (
                {
                    name: batch.column(name).to_numpy(zero_copy_only=False)
                    for name in names.values()
                },
                names,
            )
    except CatalogError:
        raise
    except Exception as err:
        raise CatalogError(f"{path}: cannot read as Parquet: {err}") from None


def read_tic_file(
    path: str | os.PathLike, keep_dispositions: Sequence[str] | None = DEFAULT_KEEP_DISPOSITIONS
) -> Iterator[StarBatch]:
    """Read a TIC-like file in batches of cleaned stars.

    Parameters
    ----------
    path : path-like
        CSV (optionally gzipped), ECSV, FITS or Parquet file with TIC column names.
    keep_dispositions : sequence of str or None
        TIC dispositions kept besides NULL (None: all rows, e.g. to load a database).

    Raises
    ------
    CatalogError
        For a missing, unreadable or malformed file.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    reader = _read_parquet(path) if fmt == "parquet" else _read_astropy(path, fmt)
    for columns, names in reader:
        yield clean_columns(columns, names, str(path), keep_dispositions)


class FileSource(CatalogSource):
    """Stars from one or more TIC-like files, read once for all CCDs.

    Parameters
    ----------
    paths : sequence of path-like
        The files.
    keep_dispositions : sequence of str
        TIC dispositions kept besides NULL.
    """

    name = "file"
    scan = True

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        keep_dispositions: Sequence[str] = DEFAULT_KEEP_DISPOSITIONS,
    ) -> None:
        self.paths = [Path(p).expanduser() for p in paths]
        if not self.paths:
            raise CatalogError("no catalog file given")
        for path in self.paths:
            file_format(path)
            if not path.is_file():
                raise CatalogError(f"{path}: catalog file not found")
        self.keep_dispositions = tuple(keep_dispositions)

    def describe(self) -> str:
        """The files, by absolute path."""
        return ", ".join(str(p.resolve()) for p in self.paths)

    def stream(
        self, footprints: Sequence[Footprint], margin_deg: float, faint_limit: float | None
    ) -> Iterator[tuple[int, StarBatch]]:
        """Yield the stars of each file near each footprint (see :meth:`CatalogSource.stream`)."""
        caps = [fp.bounding_cap(margin_deg) for fp in footprints]
        for path in self.paths:
            log.info("Reading %s", path)
            n_rows = 0
            for batch in read_tic_file(path, self.keep_dispositions):
                n_rows += len(batch)
                if faint_limit is not None:
                    batch = batch[batch.tmag <= faint_limit]
                for index, inside in cap_selection(batch.ra, batch.dec, caps):
                    if np.any(inside):
                        yield index, batch[inside]
            log.debug("%s: %d usable rows", path, n_rows)
