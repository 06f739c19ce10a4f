"""Where the PRF models are: the values of a ``prf_dir`` setting and the download cache.

A ``prf_dir`` is a folder of SPOC PRF models laid out like the archive
(``<prf_dir>/Sectors1_2_3/camC_ccdD/`` and ``<prf_dir>/Sectors4+/camC_ccdD/``),
:data:`ARCHIVE` (the SPOC models downloaded from MAST into the cache) or :data:`ANALYTIC`;
:func:`unprepared_prf_dir` is the default of data not prepared by tessphot.
:class:`PRFArchive` says where the models are downloaded from and kept: the settings
``[photometry] prf_url`` and ``prf_cache``, else ``$TESSPHOT_PRF_URL`` and
``$TESSPHOT_PRF_CACHE``, else :data:`PRF_URL` and ``~/.cache/tessphot/prf``.

This module loads neither numpy nor astropy, so the command line can use it at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessphot import env

#: Values of a ``prf_dir`` setting that name no folder: the analytic model, and the SPOC
#: models downloaded from the archive into the cache (:mod:`tessphot.prf.download`).
ANALYTIC = "analytic"
ARCHIVE = "archive"
#: First sector of the "Sectors4+" PRF models.
FIRST_SECTOR_OF_LATE_PRF = 4
#: The archive's folder of SPOC PRF models (MAST).
PRF_URL = "https://archive.stsci.edu/missions/tess/models/prf_fitsfiles/"
#: Environment variables: the download cache and the archive's URL (a mirror).
CACHE_ENV = env.PRF_CACHE
URL_ENV = env.PRF_URL


def prf_epoch(sector: int) -> str:
    """Name of the folder of the SPOC PRF models valid for a sector.

    Returns
    -------
    str
        ``"Sectors1_2_3"`` or ``"Sectors4+"``.
    """
    return "Sectors1_2_3" if sector < FIRST_SECTOR_OF_LATE_PRF else "Sectors4+"


def unprepared_prf_dir() -> str:
    """The ``prf_dir`` of data tessphot did not prepare (target pixel files).

    ``$TESSPHOT_PRF_DIR`` (a folder, ``"archive"`` or ``"analytic"``), as for ``prepare``,
    ``simulate`` and ``demo``; else :data:`ANALYTIC`.
    """
    return env.value(env.PRF_DIR) or ANALYTIC


def spoc_prf_folder(prf_dir: Path | str, sector: int, camera: int, ccd: int) -> Path:
    """Folder holding the SPOC PRF models valid for a sector, camera and CCD."""
    return Path(prf_dir) / prf_epoch(sector) / f"cam{camera}_ccd{ccd}"


@dataclass(frozen=True)
class PRFArchive:
    """Where the SPOC PRF models are downloaded from and kept.

    Attributes
    ----------
    url : str or None
        The archive's folder of PRF models; default ``$TESSPHOT_PRF_URL``, else
        :data:`PRF_URL`.
    cache_dir : str or None
        The download cache; default ``$TESSPHOT_PRF_CACHE``, else
        ``$XDG_CACHE_HOME/tessphot/prf`` (``~/.cache/tessphot/prf``).
    """

    url: str | None = None
    cache_dir: str | os.PathLike | None = None

    @classmethod
    def from_settings(cls, photometry: Mapping[str, Any] | None) -> PRFArchive:
        """From the ``[photometry]`` settings ``prf_url`` and ``prf_cache`` (empty: default)."""
        values = photometry or {}
        return cls(url=values.get("prf_url") or None, cache_dir=values.get("prf_cache") or None)

    def base_url(self) -> str:
        """The archive's folder URL (ending in ``/``)."""
        value = self.url or env.value(URL_ENV) or PRF_URL
        return value if value.endswith("/") else value + "/"

    def cache(self) -> Path:
        """The download cache folder (the ``prf_dir`` that ``"archive"`` stands for)."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return env.cache_folder("prf", CACHE_ENV)
