"""The truth of a simulated sector's targets, as the sector scoring needs it.

True fluxes, mean positions, the sky at each target per cadence and its mean over the good
cadences, the detector's noise and the simulation's PRF
(:mod:`tessphot.evaluation.scoring.sector`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from tessphot.constants import OUTPUT_WIDTH
from tessphot.prf import load_prf


@dataclass
class Truth:
    """What the scoring needs of a truth file, for the targets only."""

    starid: np.ndarray
    tmag: np.ndarray
    signals: np.ndarray
    ffiindex: np.ndarray
    tmid: np.ndarray
    good: np.ndarray
    #: (cadence, target) true flux [e-/s] and sky at the target [e-/s/px].
    flux: np.ndarray
    sky: np.ndarray
    #: Mean true position of each target [science-area px].
    row: np.ndarray
    col: np.ndarray
    #: (cadence, target) true position minus the mean [px].
    drow: np.ndarray
    dcol: np.ndarray
    #: Mean sky over the good cadences (binned by ``binning``) and its origin.
    sky_mean: np.ndarray
    binning: int
    origin: tuple[int, int]
    exposure_time: float
    num_coadded: float
    cadence: float
    read_noise: np.ndarray
    prf: object

    def sky_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Mean sky over the good cadences at science-area pixels [e-/s/px]."""
        by = np.clip((np.asarray(rows) - self.origin[0]) // self.binning, 0, None)
        bx = np.clip((np.asarray(cols) - self.origin[1]) // self.binning, 0, None)
        by = np.minimum(by, self.sky_mean.shape[0] - 1).astype(int)
        bx = np.minimum(bx, self.sky_mean.shape[1] - 1).astype(int)
        return self.sky_mean[by, bx]

    def read_noise_at(self, cols: np.ndarray) -> np.ndarray:
        """Read noise of the CCD output of science-area columns [e-]."""
        output = np.clip(np.asarray(cols) // OUTPUT_WIDTH, 0, self.read_noise.size - 1)
        return self.read_noise[output.astype(int)]


def _read_sky(h5: h5py.File, index: np.ndarray, rows, cols, good) -> tuple:
    """The true sky at the targets per cadence and its mean over the good cadences."""
    background = h5["background"]
    binning = int(background.attrs["binning"])
    origin = tuple(int(v) for v in background.attrs["origin"])
    by = np.clip((np.round(rows) - origin[0]) // binning, 0, background.shape[1] - 1).astype(int)
    bx = np.clip((np.round(cols) - origin[1]) // binning, 0, background.shape[2] - 1).astype(int)
    sky = np.empty((background.shape[0], index.size))
    total = np.zeros(background.shape[1:])
    for k in range(background.shape[0]):
        frame = background[k]
        sky[k] = frame[by, bx]
        if good[k]:
            total += frame
    return sky, total / max(int(good.sum()), 1), binning, origin


def read_truth(path: Path, starids: np.ndarray, prf_dir: str | None = None) -> Truth:
    """The truth of the given stars (those not in the truth are left out).

    Parameters
    ----------
    path : pathlib.Path
        The truth file.
    starids : numpy.ndarray
        TIC IDs of the targets.
    prf_dir : str or None
        Folder of the PRF models; None: the simulation's own (its settings).

    Returns
    -------
    Truth
    """
    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
        settings = json.loads(attrs["settings"])
        stars = h5["stars"][:]
        position = {int(s): i for i, s in enumerate(stars["starid"])}
        index = np.array(sorted(position[int(s)] for s in starids if int(s) in position), int)
        good = h5["time/quality"][:] == 0
        flux = h5["flux"][:, index] if index.size else np.empty((good.size, 0))
        all_rows = h5["row"][:, index].astype(float) if index.size else np.empty((good.size, 0))
        all_cols = h5["col"][:, index].astype(float) if index.size else np.empty((good.size, 0))
        rows, cols = all_rows.mean(axis=0), all_cols.mean(axis=0)
        sky, sky_mean, binning, origin = _read_sky(h5, index, rows, cols, good)
        prf = load_prf(
            prf_dir or settings.get("prf_dir"),
            int(attrs["sector"]),
            int(attrs["camera"]),
            int(attrs["ccd"]),
        )
        return Truth(
            starid=stars["starid"][index],
            tmag=stars["tmag"][index],
            signals=h5["signals"][:][index],
            ffiindex=h5["time/ffiindex"][:],
            tmid=h5["time/tmid"][:],
            good=good,
            flux=flux,
            sky=sky,
            row=rows,
            col=cols,
            drow=all_rows - rows,
            dcol=all_cols - cols,
            sky_mean=sky_mean,
            binning=binning,
            origin=origin,
            exposure_time=float(attrs["exposure_time"]),
            num_coadded=float(attrs["num_coadded"]),
            cadence=float(attrs["cadence"]),
            read_noise=np.asarray(attrs["read_noise"], dtype=float),
            prf=prf,
        )
