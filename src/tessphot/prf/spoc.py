"""The real SPOC PRF models, read from files laid out like the archive.

``<prf_dir>/Sectors1_2_3/camC_ccdD/*-prf-C-D-rowRRRR-colCCCC.fits`` and
``<prf_dir>/Sectors4+/...``: each a 117x117 image sampled 9x over 13x13 pixels at one of 25
CCD positions, interpolated bilinearly between those positions by :class:`PRFModel`.

A star's position is defined as the flux-weighted centroid of its PRF core, which is what a
WCS fitted to stellar centroids (as SPOC's is) refers to; the SPOC tables are re-centred
accordingly on load.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage

from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW
from tessphot.prf.cache import spoc_prf_folder
from tessphot.prf.models import OVERSAMPLE, TABLE_CENTRE, TABLE_SIZE, PRFModel

#: Radius inside which the PRF core centroid is measured [pixels].
CORE_RADIUS = 2.5

_PRF_NAME = re.compile(r"prf-(\d)-(\d)-row(\d{4})-col(\d{4})\.fits(\.gz)?$")


def _core_centroid(table: np.ndarray) -> tuple[float, float]:
    """Flux-weighted centroid offset (rows, cols) [pixels] of a PRF table's core."""
    y, x = np.mgrid[:TABLE_SIZE, :TABLE_SIZE]
    dy = (y - TABLE_CENTRE) / OVERSAMPLE
    dx = (x - TABLE_CENTRE) / OVERSAMPLE
    core = np.hypot(dy, dx) <= CORE_RADIUS
    w = np.where(core, table - np.median(table), 0.0)
    return float((w * dy).sum() / w.sum()), float((w * dx).sum() / w.sum())


def _recentre(table: np.ndarray) -> np.ndarray:
    """Shift a PRF table so that its core centroid falls at zero offset; unit sum."""
    for _ in range(3):
        cy, cx = _core_centroid(table)
        table = ndimage.shift(table, (-cy * OVERSAMPLE, -cx * OVERSAMPLE), order=3, mode="nearest")
        table = np.clip(table, 0.0, None)
    return table * (OVERSAMPLE**2 / table.sum())


class SpocPRF(PRFModel):
    """The real SPOC PRF models of one camera and CCD.

    Parameters
    ----------
    prf_dir : path
        Root folder laid out like the archive (``Sectors1_2_3/`` and ``Sectors4+/``).
    sector, camera, ccd : int
        Chooses the model set (sectors 1-3 versus 4 on) and the CCD.

    Raises
    ------
    FileNotFoundError
        When the folder for this sector, camera and CCD holds no PRF files.
    """

    def __init__(self, prf_dir: Path | str, sector: int, camera: int, ccd: int):
        folder = spoc_prf_folder(prf_dir, sector, camera, ccd)
        grid: dict[tuple[int, int], np.ndarray] = {}
        for path in sorted(folder.glob("*prf*.fits*")) if folder.is_dir() else []:
            match = _PRF_NAME.search(path.name)
            if not match or (int(match[1]), int(match[2])) != (camera, ccd):
                continue
            table = fits.getdata(path, 0).astype(np.float64)
            if table.shape != (TABLE_SIZE, TABLE_SIZE):
                raise ValueError(f"{path}: PRF image has shape {table.shape}, expected 117x117")
            row = int(match[3]) - FIRST_SCIENCE_CCD_ROW
            col = int(match[4]) - FIRST_SCIENCE_CCD_COLUMN
            grid[(row, col)] = _recentre(table)
        if not grid:
            raise FileNotFoundError(f"{folder}: no SPOC PRF files for camera {camera} CCD {ccd}")
        node_rows = sorted({r for r, _ in grid})
        node_cols = sorted({c for _, c in grid})
        missing = [(r, c) for r in node_rows for c in node_cols if (r, c) not in grid]
        if missing:
            raise FileNotFoundError(f"{folder}: PRF grid incomplete, missing {missing}")
        tables = np.stack([grid[(r, c)] for r in node_rows for c in node_cols])
        super().__init__(
            tables,
            node_rows,
            node_cols,
            name=f"SPOC PRF {folder.parent.name}/{folder.name}",
            short_name=f"SPOC {folder.parent.name} {folder.name}",
        )
        self.folder = folder
