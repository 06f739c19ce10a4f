"""The truth of a simulated sector's targets, as the sector scoring needs it.

True fluxes, mean positions, the sky at each target per cadence and its mean over the good
cadences, the detector's noise, the simulation's PRF and its systematics
(:mod:`tessphot.evaluation.scoring.sector`); a target's expected raw flux in an aperture
and its intrinsic signal (:meth:`Truth.expected_flux`, :meth:`Truth.intrinsic_signal`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from tessphot.constants import OUTPUT_WIDTH
from tessphot.evaluation.scoring.motion_light import SceneStars, read_scene_stars
from tessphot.evaluation.scoring.neighbour_light import NeighbourLight, read_neighbour_light
from tessphot.evaluation.scoring.optimal import (
    OptimalAperture,
    on_region,
    optimal_aperture,
    star_stamp,
)
from tessphot.evaluation.scoring.systematics import TargetSystematics
from tessphot.evaluation.simulate.truth import read_systematics
from tessphot.photometry.k2p2 import pixel_index
from tessphot.prf import load_prf


@dataclass
class ExpectedFlux:
    """What a target's raw flux in a fixed aperture should be, per cadence.

    Attributes
    ----------
    raw : numpy.ndarray
        ``target + additive`` [e-/s]: the raw flux of the target alone (no neighbours, the
        sky subtracted exactly), systematics included.
    target : numpy.ndarray
        The target's light in the aperture [e-/s] (its true flux, systematics included,
        times the PRF's fraction in the aperture at its true position).
    additive : numpy.ndarray
        The additive systematic's light in the aperture [e-/s] (zero without systematics).
    multiplicative : numpy.ndarray
        ``m(t)``: the target's flux was rendered times ``1 + m`` (zero without).
    intrinsic : numpy.ndarray
        The intrinsic relative signal without systematics (:meth:`Truth.intrinsic_signal`).
    """

    raw: np.ndarray
    target: np.ndarray
    additive: np.ndarray
    multiplicative: np.ndarray
    intrinsic: np.ndarray


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
    #: The simulated data's science-area rows and columns ``(r0, r1, c0, c1)`` (None:
    #: unknown); the optimal aperture is found among its pixels.
    region: tuple[int, int, int, int] | None = None
    #: Sector, camera and CCD of the simulated data (None: unknown).
    ccd: tuple[int, int, int] | None = None
    #: The simulated systematics of the targets (None: simulated without).
    systematics: TargetSystematics | None = None
    #: The variable stars around the targets (None: not read).
    neighbours: NeighbourLight | None = None
    #: Every star around the targets, for the light the motion moves (None: not read).
    scene: SceneStars | None = None

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

    def optimal_aperture(
        self, i: int, *, yielding: bool = False
    ) -> tuple[OptimalAperture, np.ndarray, np.ndarray] | None:
        """The S/N-optimal aperture of target ``i`` alone, among the data's pixels.

        From its true PRF at its mean true position, its mean true flux, the true sky
        averaged over the good cadences, the read noise of its CCD output and the exposure
        (:func:`~tessphot.evaluation.scoring.optimal.optimal_aperture`).

        Parameters
        ----------
        i : int
            The target's index.
        yielding : bool
            Leave out the pixels another target is centred on and outshines there
            (:meth:`yielded_pixels`): with them the aperture would cost that target its
            light curve, or this one its own (a star centred in another's aperture is
            SKIPPED).

        Returns
        -------
        tuple or None
            The aperture and the science-area rows and columns of its stamp's pixels (its
            pixels: ``rows[aperture.mask]``, ``cols[aperture.mask]``); None when the star
            has no light on the data.
        """
        mean_flux = self.mean_flux(i)
        if not mean_flux > 0:
            return None
        image, origin = star_stamp(self.prf, self.row[i], self.col[i], mean_flux)
        image, (r0, c0) = on_region(image, origin, self.region)
        if yielding:
            image = np.where(self.yielded_pixels(i, image, (r0, c0)), 0.0, image)
        if not image.sum() > 0:
            return None
        rows, cols = np.indices(image.shape)
        rows, cols = rows + r0, cols + c0
        best = optimal_aperture(
            image,
            self.sky_at(rows, cols),
            self.read_noise_at(cols),
            exposure_time=self.exposure_time,
            n_frames=self.num_coadded,
        )
        return best, rows, cols

    def mean_flux(self, i: int) -> float:
        """Target ``i``'s mean true flux over the good cadences [e-/s] (NaN: none)."""
        return float(np.mean(self.flux[self.good, i])) if self.good.any() else math.nan

    def yielded_pixels(self, i: int, image: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
        """The pixels of target ``i``'s ``image`` that another target is centred on and outshines.

        A star's pixel is the one the pipeline's skipping puts it on
        (:func:`~tessphot.photometry.k2p2.pixel_index`); its light there is its true PRF's at
        its mean true position times its mean true flux, against target ``i``'s in
        ``image`` (science-area ``origin``).
        """
        rows = pixel_index(self.row) - origin[0]
        cols = pixel_index(self.col) - origin[1]
        inside = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
        inside[i] = False
        taken = np.zeros(image.shape, dtype=bool)
        for j in np.flatnonzero(inside):
            flux = self.mean_flux(j)
            if not flux > 0:
                continue
            stamp, (s0, t0) = star_stamp(self.prf, self.row[j], self.col[j], flux)
            r, c = rows[j] + origin[0] - s0, cols[j] + origin[1] - t0
            if 0 <= r < stamp.shape[0] and 0 <= c < stamp.shape[1]:
                taken[rows[j], cols[j]] |= bool(stamp[r, c] > image[rows[j], cols[j]])
        return taken

    def multiplicative(self, i: int) -> np.ndarray:
        """``m(t)`` of target ``i`` on every cadence (zero without systematics)."""
        if self.systematics is None:
            return np.zeros(self.tmid.size)
        return self.systematics.multiplicative(i)

    def intrinsic_signal(self, i: int) -> np.ndarray:
        """The intrinsic relative signal of target ``i``, without the systematics.

        Returns
        -------
        numpy.ndarray
            ``F / mean(F) - 1`` on every cadence, with ``F = flux / (1 + m)`` the star's
            intrinsic flux and the mean over the good cadences (over all without any).
        """
        intrinsic = self.flux[:, i] / (1.0 + self.multiplicative(i))
        good = self.good if self.good.any() else np.ones(self.good.size, dtype=bool)
        return intrinsic / np.mean(intrinsic[good]) - 1.0

    def expected_flux(self, i: int, rows, cols) -> ExpectedFlux:
        """The expected raw flux of target ``i`` in a fixed aperture, systematics included.

        The target's true flux (as rendered) through the simulation's PRF at its true
        position of each cadence, summed over the aperture, plus the additive systematic's
        light in it. Exact for unsaturated stars; neighbours' light is not included.

        Parameters
        ----------
        i : int
            The target.
        rows, cols : array_like of int
            Science-area pixels of the aperture (e.g.
            :func:`~tessphot.evaluation.scoring.systematics.aperture_pixels` of a light curve).

        Returns
        -------
        ExpectedFlux
        """
        rows = np.asarray(rows, dtype=int)
        cols = np.asarray(cols, dtype=int)
        origin = (int(rows.min()), int(cols.min()))
        shape = (int(rows.max()) - origin[0] + 1, int(cols.max()) - origin[1] + 1)
        target = np.empty(self.tmid.size)
        for k in range(self.tmid.size):
            image = self.prf.render(
                [self.row[i] + self.drow[k, i]],
                [self.col[i] + self.dcol[k, i]],
                [self.flux[k, i]],
                shape,
                origin,
                node_rows=[self.row[i]],
                node_cols=[self.col[i]],
            )
            target[k] = image[rows - origin[0], cols - origin[1]].sum()
        if self.systematics is None:
            additive = np.zeros(self.tmid.size)
        else:
            additive = self.systematics.additive_flux(rows, cols)
        return ExpectedFlux(
            raw=target + additive,
            target=target,
            additive=additive,
            multiplicative=self.multiplicative(i),
            intrinsic=self.intrinsic_signal(i),
        )


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


def read_truth(
    path: Path,
    starids: np.ndarray,
    prf_dir: str | None = None,
    *,
    neighbours: bool = False,
    scene: bool = False,
) -> Truth:
    """The truth of the given stars (those not in the truth are left out).

    Parameters
    ----------
    path : pathlib.Path
        The truth file.
    starids : numpy.ndarray
        TIC IDs of the targets.
    prf_dir : str or None
        Folder of the PRF models; None: the simulation's own (its settings).
    neighbours : bool
        Also read the variable stars around the targets (:attr:`Truth.neighbours`).
    scene : bool
        Also read every star around the targets (:attr:`Truth.scene`).

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
            region=tuple(int(v) for v in attrs["region"]) if "region" in attrs else None,
            ccd=(int(attrs["sector"]), int(attrs["camera"]), int(attrs["ccd"])),
            systematics=TargetSystematics.select(read_systematics(h5), index),
            neighbours=read_neighbour_light(h5, good, index, prf) if neighbours else None,
            scene=read_scene_stars(h5, index, prf) if scene else None,
        )
