"""Cotrending basis vectors from a file: SPOC's published CBVs, or another run's.

A star on its own (a user's cutout or TPF) has no neighbours to make vectors from; SPOC
publishes the CBVs of every camera and CCD of a sector (``tess*-s0001-1-4-*_cbv.fits`` at
MAST). :func:`external_cbvs` reads the vectors of one camera and CCD from such a file
(SPOC's ``CBV.single-scale.C.D`` and ``CBV.spike.C.D`` extensions, or a tessphot CBV file)
and :func:`resample` puts them on the cadences of the light curves: the mean of the
vector's samples within each exposure (SPOC's 2-min vectors for 30-min data), or a linear
interpolation where the vectors' cadence is the coarser.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import numpy as np
from astropy.io import fits

from tessphot.correct.cbv import CBVSet
from tessphot.correct.cbv_file import read_cbvs
from tessphot.io.errors import FileProblem

#: Extension names of SPOC's CBVs of one camera and CCD.
SPOC_SINGLE = "CBV.single-scale.{camera}.{ccd}"
SPOC_SPIKE = "CBV.spike.{camera}.{ccd}"
#: Seconds per day.
DAY = 86400.0


def _vectors(hdu: fits.BinTableHDU) -> np.ndarray:
    names = [n for n in hdu.columns.names if n.startswith("VECTOR_")]
    names.sort(key=lambda n: int(n.split("_")[1]))
    data = hdu.data
    if not names:
        return np.empty((len(data), 0))
    return np.column_stack([np.asarray(data[n], dtype=float) for n in names])


def _spoc(hdus: fits.HDUList, camera: int, ccd: int, path) -> CBVSet:
    """The single-scale and spike vectors of a SPOC CBV file."""
    try:
        single = hdus[SPOC_SINGLE.format(camera=camera, ccd=ccd)]
    except KeyError:
        raise FileProblem(path, f"no SPOC CBVs of camera {camera} CCD {ccd}") from None
    spike_name = SPOC_SPIKE.format(camera=camera, ccd=ccd)
    spikes = _vectors(hdus[spike_name]) if spike_name in hdus else np.empty((len(single.data), 0))
    gap = np.asarray(single.data["GAP"], dtype=bool)
    vectors = _vectors(single)
    vectors[gap] = np.nan
    time = np.asarray(single.data["TIME"], dtype=float)
    step = float(np.nanmedian(np.diff(time))) * DAY if time.size > 1 else math.nan
    return CBVSet(
        cadenceno=np.asarray(single.data["CADENCENO"], dtype=np.int64),
        time=time,
        vectors=vectors,
        spikes=np.where(np.isfinite(spikes), spikes, 0.0),
        gap=gap,
        sector=int(hdus[0].header.get("SECTOR", 0)),
        camera=camera,
        ccd=ccd,
        cadence=step,
        cbv_area=0,
        n_stars=0,
        singular_values=np.empty(0),
        explained_variance=np.empty(0),
        threshold=math.nan,
        spike_singular_values=np.empty(0),
        settings={"source": f"SPOC {os.path.basename(str(path))}"},
    )


def external_cbvs(path: str | os.PathLike, camera: int, ccd: int, cbv_area: int) -> CBVSet:
    """The CBVs of a camera and CCD (and CBV area, for a tessphot file) from a file.

    Raises
    ------
    FileProblem
        When the file cannot be read or holds no vectors of that camera and CCD.
    """
    try:
        with fits.open(path) as hdus:
            if any(h.name.startswith("CBV.single-scale.") for h in hdus[1:]):
                return _spoc(hdus, camera, ccd, path)
        ours = [s for s in read_cbvs(path) if (s.camera, s.ccd) == (camera, ccd)]
    except FileNotFoundError:
        raise FileProblem(path, "no such file") from None
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise FileProblem(path, f"not a CBV file ({err})") from None
    same_area = [s for s in ours if s.cbv_area == cbv_area]
    if not ours:
        raise FileProblem(path, f"no CBVs of camera {camera} CCD {ccd}")
    return (same_area or ours)[0]


def resample(cbvs: CBVSet, time: np.ndarray, cadenceno: np.ndarray, cadence: float) -> CBVSet:
    """The vectors on other cadences (times [d], exposures of ``cadence`` seconds).

    Where the vectors' own cadence is finer, each new value is the mean of their samples
    within the exposure; otherwise they are interpolated linearly. Cadences the vectors do
    not cover are gaps (NaN). Spike vectors are kept only on the same cadence.
    """
    time = np.asarray(time, dtype=float)
    finer = cbvs.cadence < 0.5 * cadence
    vectors = np.full((time.size, cbvs.n_vectors), np.nan)
    known = np.all(np.isfinite(cbvs.vectors), axis=1) & np.isfinite(cbvs.time)
    t_known, v_known = cbvs.time[known], cbvs.vectors[known]
    if t_known.size and np.isfinite(time).any():
        half = 0.5 * cadence / DAY
        if finer:
            lo = np.searchsorted(t_known, time - half, side="left")
            hi = np.searchsorted(t_known, time + half, side="right")
            sums = np.vstack([np.zeros(cbvs.n_vectors), np.cumsum(v_known, axis=0)])
            count = hi - lo
            ok = count > 0
            vectors[ok] = (sums[hi[ok]] - sums[lo[ok]]) / count[ok, None]
        else:
            inside = (time >= t_known[0] - half) & (time <= t_known[-1] + half)
            for j in range(cbvs.n_vectors):
                vectors[inside, j] = np.interp(time[inside], t_known, v_known[:, j])
    same = np.array_equal(np.asarray(cadenceno), cbvs.cadenceno)
    spikes = cbvs.spikes if same else np.zeros((time.size, 0))
    return replace(
        cbvs,
        cadenceno=np.asarray(cadenceno, dtype=np.int64),
        time=time,
        vectors=vectors,
        spikes=spikes,
        gap=~np.all(np.isfinite(vectors), axis=1),
        cadence=float(cadence),
    )
