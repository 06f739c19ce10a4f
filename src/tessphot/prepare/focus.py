"""The effective PRF's change with time (focus): measured on the prepared cube and stored.

Once a prepared file is complete (its motion model fitted), the stars the effective PRF was
fitted on (the group ``effective_prf``'s ``stars`` marked ``used`` or ``check``; the
brightest ``focus_stars``) are read back through the cube's reader in blocks of frames
(:data:`FRAMES_PER_READ`, memory independent of the number of frames) and the width scale
``s(t)`` of the static effective PRF is fitted on every cadence, jointly over the stars, each
star with its own flux, position shift and sky (:mod:`tessphot.prf.focus_fit`); the stars
sit at their positions in the average image moved by the motion model. The cadences' scales
are smoothed within each orbit (``focus_smoothing``; never across a gap of more than
:data:`ORBIT_GAP` days) and the change is kept when its largest deviation from the mean
over the good cadences exceeds ``focus_significance`` times the smoothed curve's
uncertainty (from the cadences' point-to-point scatter); otherwise the stored scale is flat
(1 everywhere) and the PRF static.

Stored in the subgroup :data:`FOCUS_GROUP` of the effective PRF's group
(docs/hdf5-format.md); the reader gives it back as the scale of a
builds a :class:`~tessphot.prf.focus.FocusedPRF`
(:func:`tessphot.prepare.effective_prf.read_effective_prf`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from tessphot.catalog.make import catalog_path
from tessphot.config.prepare import EffectivePRFSettings
from tessphot.constants import tmag_to_flux
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.effective_prf import FOCUS_GROUP, GROUP
from tessphot.prepare.flags import BAD_QUALITY_BITS
from tessphot.prepare.stars import load_catalog
from tessphot.prf.effective import EffectivePRF
from tessphot.prf.focus import scaled_model
from tessphot.prf.focus_fit import (
    POSITION_STEP,
    SCALE_STEP,
    box_stamps,
    combine_stars,
    point_to_point,
    smooth_in_time,
    star_scale,
    time_segments,
)
from tessphot.prf.models import HALF_WIDTH

log = logging.getLogger(__name__)

#: Cadences further apart than this are in different orbits: smoothed apart [d].
ORBIT_GAP = 0.5
#: Frames read at once (a multiple of the stored blocks of frames is read whole).
FRAMES_PER_READ = 128
#: Hours in a day.
HOURS_PER_DAY = 24.0
#: Neighbours putting less light than this fraction of a star's flux are left out.
NEIGHBOUR_LIGHT = 1e-3


@dataclass
class FocusChange:
    """The width scale of the effective PRF cadence by cadence, as measured.

    Attributes
    ----------
    measured, error : ndarray, shape (n_cadences,)
        Each cadence's scale fitted on the stars and its uncertainty (NaN: not measured).
    smoothed : ndarray, shape (n_cadences,)
        The scale smoothed within each orbit (NaN where nothing was measured near).
    significant : bool
        Whether the change is significant (``significance >= threshold``).
    significance : float
        Largest deviation of the smoothed scale from its mean over the good cadences, over
        the smoothed scale's uncertainty there.
    amplitude : float
        That largest deviation (relative width).
    noise : float
        The robust point-to-point scatter of the cadences' scales.
    n_stars : int
        Stars measured on.
    seconds : float
        Time the measurement took [s].
    """

    measured: np.ndarray
    error: np.ndarray
    smoothed: np.ndarray
    significant: bool
    significance: float
    amplitude: float
    noise: float
    n_stars: int
    seconds: float

    @property
    def scale(self) -> np.ndarray:
        """The scale the photometry uses: the smoothed one if significant, else 1."""
        if not self.significant:
            return np.ones_like(self.smoothed)
        return np.where(np.isfinite(self.smoothed), self.smoothed, 1.0)

    def summary(self) -> str:
        """One readable line."""
        verdict = "used" if self.significant else "not significant: the PRF stays static"
        return (
            f"Focus: the effective PRF's width changes by up to {self.amplitude:.2%} "
            f"({self.significance:.1f} times its uncertainty; {verdict}), {self.n_stars} stars, "
            f"{self.noise:.1e} per cadence; {self.seconds:.1f} s"
        )


def focus_stars(cube: PreparedCube, n_max: int) -> tuple[np.ndarray, ...]:
    """The effective PRF's fitted stars (used or checked), brightest first.

    Their rows, columns, fluxes and halo shares (0 from files without them).
    """
    stars = cube.array(f"{GROUP}/stars")
    good = (stars["used"] | stars["check"]) & np.isfinite(stars["flux"]) & (stars["flux"] > 0)
    order = np.flatnonzero(good)[np.argsort(-stars["flux"][good], kind="stable")][:n_max]
    halo = stars["halo"][order] if "halo" in stars.dtype.names else np.zeros(order.size)
    return (
        np.asarray(stars["row"][order], float),
        np.asarray(stars["col"][order], float),
        np.asarray(stars["flux"][order], float),
        np.asarray(halo, float),
    )


def measure_focus_change(
    cube: PreparedCube,
    prf: EffectivePRF,
    settings: EffectivePRFSettings,
    *,
    catalogued: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> FocusChange | None:
    """Fit the effective PRF's width scale on every cadence of a prepared cube.

    Parameters
    ----------
    cube : PreparedCube
        A complete prepared file with an effective PRF.
    prf : EffectivePRF
        The static effective PRF.
    settings : EffectivePRFSettings
        ``focus_stars``, ``focus_smoothing``, ``focus_significance``, ``fit_half``,
        ``min_stars``.
    catalogued : (rows, cols, flux), optional
        The catalogued stars on and near the region [science px, e-/s]: the neighbours in
        each star's box, their light removed and their change with the scale fitted with
        the star's (moved by the stars' median offset from the catalogue).

    Returns
    -------
    FocusChange or None
        None with fewer than ``min_stars`` stars (logged).
    """
    start = time.perf_counter()
    rows, cols, flux, halo = focus_stars(cube, settings.focus_stars)
    halos = cube.star_halos()
    if halos is None:
        halo = np.zeros_like(halo)
    if rows.size < settings.min_stars:
        log.info("Focus not measured: %d star(s), %d needed", rows.size, settings.min_stars)
        return None
    times = cube.array("time").astype(float)
    good = ((cube.array("quality") & BAD_QUALITY_BITS) == 0) & np.isfinite(times)
    d_row, d_col = cube.motion().offsets(rows, cols, np.nan_to_num(times))
    # The average image's positions are the mean over the good frames.
    d_row -= d_row[good].mean(axis=0)
    d_col -= d_col[good].mean(axis=0)
    half = settings.fit_half
    centres = np.column_stack([np.rint(rows), np.rint(cols)]).astype(int)
    lo = np.array(cube.origin) + half
    hi = np.array(cube.origin) + np.array(cube.shape) - half - 1
    inside = np.all((centres >= lo) & (centres <= hi), axis=1)
    models = [scaled_model(prf, s) for s in (1.0, 1.0 + SCALE_STEP, 1.0 - SCALE_STEP)]
    boxes = [
        _StarBox(
            models,
            (rows[i], cols[i], flux[i]),
            centres[i],
            half,
            catalogued,
            halo=(halo[i], halos.shape) if halo[i] else None,
        )  # fmt: skip
        for i in range(rows.size)
    ]
    n = times.size
    # Two numbers per star and cadence (the pixels are read in blocks of frames).
    estimates = np.full((rows.size, n), np.nan)
    weights = np.zeros_like(estimates)
    for t0 in range(0, n, FRAMES_PER_READ):
        t1 = min(t0 + FRAMES_PER_READ, n)
        for i in np.flatnonzero(inside):
            box = boxes[i]
            estimates[i, t0:t1], weights[i, t0:t1] = box.scale(
                cube.block("images", t0, t1, box.box),
                cube.block("images_err", t0, t1, box.box),
                d_row[t0:t1, i],
                d_col[t0:t1, i],
            )
    value, err = combine_stars(estimates[:, good], weights[:, good])
    measured, error = np.full(n, np.nan), np.full(n, np.nan)
    measured[good], error[good] = 1.0 + value, err
    return focus_verdict(
        times,
        measured,
        error,
        good,
        settings,
        n_stars=int(inside.sum()),
        seconds=time.perf_counter() - start,
    )


class _StarBox:
    """One star's box: its PRF's shapes and its neighbours', and its fit on a block.

    Parameters
    ----------
    models : list of PRFModel
        The static PRF at the scales 1, ``1 + SCALE_STEP``, ``1 - SCALE_STEP``.
    star : (row, col, flux)
        The star in the average image [science px, e-/s].
    centre : ndarray of int, shape (2,)
        The box's centre pixel.
    half : int
        The box's half-width [px].
    catalogued : (rows, cols, flux) or None
        The catalogued stars (see :func:`measure_focus_change`).
    halo : (float, HaloShape), optional
        The star's halo share and the halo's shape: its light ``(1 - h) P + h K``, the
        halo's part not changing with the width.
    """

    def __init__(self, models, star, centre, half, catalogued, *, halo=None) -> None:
        self.row, self.col, self.flux = star
        self.halo = halo
        self.centre = (int(centre[0]), int(centre[1]))
        self.half = half
        self.box = (centre[0] - half, centre[0] + half + 1, centre[1] - half, centre[1] + half + 1)
        self.tables = [m.shape_tables([self.row], [self.col]) for m in models]
        self.neighbours: list[tuple[float, float, float, list[np.ndarray]]] = []
        if catalogued is not None:
            for r, c, f in zip(*_neighbours(star, catalogued, half), strict=True):
                self.neighbours.append((r, c, f, [m.shape_tables([r], [c]) for m in models]))

    def _images(self, tables, rows, cols) -> np.ndarray:
        return box_stamps(tables, rows, cols, self.centre, self.half)

    def scale(
        self, data: np.ndarray, sigma: np.ndarray, d_row: np.ndarray, d_col: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`star_scale` on a block of cadences (the image motion ``d_row, d_col``)."""
        h = POSITION_STEP
        r, c = self.row + d_row, self.col + d_col
        p0, plus, minus = self.tables
        along_s = (self._images(plus, r, c) - self._images(minus, r, c)) / (2 * SCALE_STEP)
        scale_light = self.flux * along_s
        light = np.zeros_like(scale_light)
        for nr, nc, nf, (q0, q_plus, q_minus) in self.neighbours:
            rn, cn = nr + d_row, nc + d_col
            light += nf * self._images(q0, rn, cn)
            scale_light += (
                nf
                * (self._images(q_plus, rn, cn) - self._images(q_minus, rn, cn))
                / (2 * SCALE_STEP)
            )
        own = self._images(p0, r, c)
        d_r = (self._images(p0, r + h, c) - self._images(p0, r - h, c)) / (2 * h)
        d_c = (self._images(p0, r, c + h) - self._images(p0, r, c - h)) / (2 * h)
        if self.halo is not None:  # the halo holds its share and does not change with s
            share, shape = self.halo
            size = 2 * self.half + 1
            origin = (self.centre[0] - self.half, self.centre[1] - self.half)
            halo = shape.pixel_images(np.ones((size, size), bool), origin, r, c)
            own = (1 - share) * own + share * halo.reshape(own.shape)
            scale_light = scale_light - share * self.flux * along_s
            d_r, d_c = (1 - share) * d_r, (1 - share) * d_c
        return star_scale(data - light, sigma, own, scale_light, d_r, d_c)


def _neighbours(star, catalogued, half: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The catalogued stars whose light reaches a star's box, the star itself left out.

    Those putting at least :data:`NEIGHBOUR_LIGHT` of the star's flux into the box, moved by
    the star's own offset from its catalogue position (the nearest brightest entry).
    """
    row, col, flux = star
    rows, cols, fluxes = (np.asarray(a, dtype=float) for a in catalogued)
    distance = np.hypot(rows - row, cols - col)
    near = np.flatnonzero(distance < half + HALF_WIDTH + 1)
    if not near.size:
        return rows[near], cols[near], fluxes[near]
    # The star's own entry: within a pixel, the one closest in flux.
    own = near[distance[near] < 1.0]
    if own.size:
        own = own[np.argmin(np.abs(np.log(fluxes[own] / flux)))]
        d_r, d_c = row - rows[own], col - cols[own]
        near = near[near != own]
    else:
        d_r = d_c = 0.0
    keep = near[fluxes[near] >= NEIGHBOUR_LIGHT * flux]
    return rows[keep] + d_r, cols[keep] + d_c, fluxes[keep]


def focus_verdict(
    times: np.ndarray,
    measured: np.ndarray,
    error: np.ndarray,
    good: np.ndarray,
    settings: EffectivePRFSettings,
    *,
    n_stars: int,
    seconds: float,
) -> FocusChange:
    """Smooth the cadences' scales within each orbit and judge whether they change.

    Parameters
    ----------
    times : ndarray, shape (n,)
        The cadences' times [d].
    measured, error : ndarray, shape (n,)
        The cadences' scales and their uncertainties (NaN: not measured).
    good : ndarray of bool, shape (n,)
        The good cadences (only they are smoothed and judged).
    settings : EffectivePRFSettings
        ``focus_smoothing`` [h] and ``focus_significance``.
    n_stars : int
        Stars measured on.
    seconds : float
        Time the measurement took [s].
    """
    use = good & np.isfinite(measured)
    segments = time_segments(np.where(use, times, np.nan), ORBIT_GAP)
    noise = point_to_point(measured, segments)
    smoothed, leverage = smooth_in_time(
        times, measured, use, width=settings.focus_smoothing / HOURS_PER_DAY, gap=ORBIT_GAP
    )
    judged = use & np.isfinite(smoothed)
    significance = amplitude = 0.0
    if judged.any() and np.isfinite(noise) and noise > 0:
        deviation = smoothed - np.mean(smoothed[judged])
        worst = int(np.argmax(np.where(judged, np.abs(deviation), -1.0)))
        amplitude = float(abs(deviation[worst]))
        ratio = np.abs(deviation) / (noise * np.sqrt(leverage))
        significance = float(np.max(ratio[judged]))
    return FocusChange(
        measured,
        error,
        smoothed,
        significance >= settings.focus_significance,
        significance,
        amplitude,
        noise,
        n_stars,
        seconds,
    )


def build_focus_change(
    path: Path,
    settings: EffectivePRFSettings,
    *,
    catalogued: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> FocusChange | None:
    """Measure the focus change of a complete prepared file and store it (logged).

    Parameters
    ----------
    path : pathlib.Path
        The prepared file (complete, with an accepted effective PRF).
    settings : EffectivePRFSettings
    catalogued : (rows, cols, flux), optional
        The catalogued stars on and near the region (:func:`measure_focus_change`); None:
        those of the catalog file next to the prepared file, if any (:func:`catalog_stars`).

    Returns
    -------
    FocusChange or None
        None when not asked for (``focus`` false), without an effective PRF or with too few
        stars; nothing is stored then.
    """
    if not (settings.enabled and settings.focus):
        return None
    with PreparedCube(path) as cube:
        prf = cube.effective_prf()
        if prf is None:
            return None
        if catalogued is None:
            catalogued = catalog_stars(cube, path.parent)
        change = measure_focus_change(
            cube, getattr(prf, "static", prf), settings, catalogued=catalogued
        )
    if change is None:
        return None
    with h5py.File(path, "r+") as h5:
        write_focus_change(h5[GROUP], change)
    log.info("%s", change.summary())
    return change


def catalog_stars(
    cube: PreparedCube, folder: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The catalogued stars on and near a prepared region, at the reference frame's WCS.

    From the catalog file of its sector, camera and CCD in ``folder`` (None without one).
    """
    catalog = load_catalog(catalog_path(folder, cube.sector, cube.camera, cube.ccd))
    wcs = cube.reference_wcs
    if catalog is None or wcs is None:
        return None
    cols, rows = wcs.all_world2pix(catalog["ra"], catalog["decl"], 0, quiet=True)
    reach = HALF_WIDTH + 1
    near = (
        (rows > cube.origin[0] - reach)
        & (rows < cube.origin[0] + cube.shape[0] + reach)
        & (cols > cube.origin[1] - reach)
        & (cols < cube.origin[1] + cube.shape[1] + reach)
    )
    return rows[near], cols[near], tmag_to_flux(catalog["tmag"][near])


def write_focus_change(group: h5py.Group, change: FocusChange) -> None:
    """Store a measured focus change in the effective PRF's group (replacing one there)."""
    if FOCUS_GROUP in group:
        del group[FOCUS_GROUP]
    focus = group.create_group(FOCUS_GROUP)
    for name in ("scale", "measured", "error", "smoothed"):
        focus.create_dataset(name, data=getattr(change, name).astype(np.float64))
    focus.attrs.update(
        {
            "significant": change.significant,
            "significance": change.significance,
            "amplitude": change.amplitude,
            "noise": change.noise,
            "n_stars": change.n_stars,
            "seconds": change.seconds,
        }
    )
