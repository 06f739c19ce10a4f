"""The PRF model a ``prf_dir`` setting names: SPOC files, the archive's, or analytic."""

from __future__ import annotations

from pathlib import Path

from tessphot.prf.analytic import AnalyticPRF
from tessphot.prf.cache import ANALYTIC, ARCHIVE
from tessphot.prf.download import archive_prf_dir
from tessphot.prf.models import PRFModel
from tessphot.prf.spoc import SpocPRF


def load_prf(
    prf_dir: Path | str | None,
    sector: int,
    camera: int,
    ccd: int,
    *,
    cache_dir: Path | str | None = None,
    url: str | None = None,
) -> PRFModel:
    """The PRF model named by a ``prf_dir`` setting.

    Parameters
    ----------
    prf_dir : path, ``"archive"``, ``"analytic"`` or None
        A folder of SPOC PRF models laid out like the archive; ``"archive"``: the SPOC
        models in the download cache, downloaded from MAST first when missing
        (:func:`tessphot.prf.download.archive_prf_dir`); None or ``"analytic"``: the
        analytic model.
    sector, camera, ccd : int
    cache_dir, url : optional
        The download cache and the archive's URL for ``"archive"`` (defaults:
        :class:`tessphot.prf.cache.PRFArchive`).
    """
    if prf_dir is None or str(prf_dir) == ANALYTIC:
        return AnalyticPRF()
    if str(prf_dir) == ARCHIVE:
        prf_dir = archive_prf_dir(sector, camera, ccd, cache_dir=cache_dir, url=url)
    return SpocPRF(prf_dir, sector, camera, ccd)
