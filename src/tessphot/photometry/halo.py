"""Halo photometry of very bright, saturated stars (§5.14 of the notes; Pope et al. 2019).

A saturated star's core and bleed columns do not respond linearly to its flux, and for the
brightest stars they run off the stamp or the CCD, so no aperture holds all the light. The
unsaturated *halo* around the core still follows the star's flux: a weighted sum of the halo
pixels, with the weights chosen to make the light curve as smooth as possible, recovers the
star's relative variations while averaging out the pointing jitter that moves light between
the pixels. Written with numpy and scipy (no ``halophot``).

1. **Stamp.** A square of side ``2 * halo_radius + 1`` around the target (clipped to the
   data; a target pixel file keeps its pixels).
2. **Halo pixels.** The pixels within ``radius`` of the target that hold data on every
   good cadence, minus

   * the saturated ones: a pixel whose brightest good cadence reaches
     ``saturation_fraction`` of the brightest pixel near the target (a saturated
     core is flat at the full well), widened by ``bleed_margin`` pixels along the
     column (the partly filled tips of the bleed columns) and one pixel across;
   * the pixels without much light: mean below ``min_snr`` times the pixel's typical
     uncertainty (sky pixels add noise and, with many pixels and few cadences, let the
     optimiser smooth away the star's own variations);
   * the pixels of other stars: where the catalogued neighbours' light (from the PRF) is
     more than ``max_neighbour_light`` of the pixel's mean.

3. **Segments.** The cadences are split at gaps longer than ``split_gap`` (the orbit
   gap); each segment gets its own weights (one ``WEIGHTMAP`` row each).
4. **Weights.** ``f_t = sum_p w_p F_tp`` over the halo pixels' background-subtracted fluxes
   ``F`` on the segment's good cadences, normalised by its mean. The weights ``w >= 0``
   minimise the smooth total variation ``sum_t sqrt((g_t - g_{t-1})^2 + eps^2)`` of the
   normalised light curve ``g = f / mean(f)`` (``eps = halo_tv_epsilon``), starting from
   uniform weights, by L-BFGS-B with the analytic gradient (at most ``max_iterations``
   iterations); they are then normalised to sum to one. The objective does not depend on
   the scale of ``w``.
5. **Flux and its level.** The weighted sum is a fixed but unknown fraction of the star's
   light, so its level means nothing by itself: each segment is scaled so that its median
   over the good cadences equals the star's catalogue flux (``tmag_to_flux(Tmag)``, as the
   original did with ``mag2flux``). The light curve's relative variations are measured;
   its absolute level is the catalogue's. Errors ``sqrt(sum_p w_p^2 sigma_tp^2)`` and the
   background ``sum_p w_p B_tp`` are scaled by the same factor.
6. **Centroid** is the target's position from the jitter model (not measured). The
   contamination is the neighbours' PRF light in the weighted pixels over all light in
   them (the halo's own light estimated as the mean image minus the neighbours); the
   catalogued stars centred on the halo pixels are the task's ``skip_targets``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy import optimize

from tessphot.constants import tmag_to_flux
from tessphot.lightcurve import TableExtension, aperture_image
from tessphot.photometry.errors import PhotometryError
from tessphot.photometry.method import (
    QUALITY_BACKGROUND_SHENANIGANS,
    SWITCH_REASON_LENGTH,
    PhotometryMethod,
)
from tessphot.photometry.weightmap import WeightMap
from tessphot.prepare.background import grow_bleeds
from tessphot.prepare.flags import PixelFlags
from tessphot.prf import prf_images
from tessphot.tasks.status import STATUS

logger = logging.getLogger(__name__)

#: Version of this halo photometry (the ``HALO_VER`` header keyword).
HALO_VERSION = "tessphot-tv-1"
#: The objective (``HALO_OBJ``): smooth total variation.
HALO_OBJECTIVE = "tv"
#: Fewest good cadences a segment needs for its weights to be optimised.
MIN_SEGMENT_CADENCES = 3


def total_variation(
    weights: np.ndarray, fluxes: np.ndarray, epsilon: float
) -> tuple[float, np.ndarray]:
    """Smooth total variation of a normalised weighted light curve, and its gradient.

    Parameters
    ----------
    weights : ndarray, shape (n_pixels,)
        Pixel weights (any positive scale: the objective does not depend on it).
    fluxes : ndarray, shape (n_cadences, n_pixels)
        Pixel fluxes [e-/s].
    epsilon : float
        Smoothing of ``|x|`` into ``sqrt(x^2 + epsilon^2)`` [relative flux].

    Returns
    -------
    value : float
        ``sum_t sqrt((g_t - g_{t-1})^2 + epsilon^2)`` with ``g = f / mean(f)``, ``f =
        fluxes @ weights``.
    gradient : ndarray, shape (n_pixels,)
        Its derivative with respect to the weights.
    """
    f = fluxes @ weights
    mean = float(f.mean())
    if not math.isfinite(mean) or mean <= 0:
        return math.inf, np.zeros_like(weights)
    g = f / mean
    d = np.diff(g)
    root = np.sqrt(d * d + epsilon * epsilon)
    slope = d / root
    dg = np.zeros_like(g)
    dg[1:] += slope
    dg[:-1] -= slope
    df = (dg - float(dg @ g) / g.size) / mean
    return float(root.sum()), fluxes.T @ df


def tv_weights(
    fluxes: np.ndarray, epsilon: float, max_iterations: int
) -> tuple[np.ndarray, optimize.OptimizeResult]:
    """Non-negative pixel weights, summing to one, minimising :func:`total_variation`.

    Parameters
    ----------
    fluxes : ndarray, shape (n_cadences, n_pixels)
        Pixel fluxes of the good cadences of a segment (finite) [e-/s].
    epsilon : float
        Smoothing of the total variation [relative flux].
    max_iterations : int
        Most L-BFGS-B iterations.

    Returns
    -------
    weights : ndarray, shape (n_pixels,)
    result : scipy.optimize.OptimizeResult
        The optimiser's report.
    """
    n_pix = fluxes.shape[1]
    start = np.full(n_pix, 1.0 / n_pix)
    # Scale the fluxes so that the weights are of order one for the optimiser.
    scale = float(np.mean(fluxes @ start))
    if not math.isfinite(scale) or scale <= 0:
        raise PhotometryError("the halo pixels hold no light")
    result = optimize.minimize(
        total_variation,
        start * n_pix,
        args=(fluxes / scale, epsilon),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * n_pix,
        options={"maxiter": int(max_iterations)},
    )
    weights = np.clip(result.x, 0.0, None)
    total = weights.sum()
    if not total > 0:
        raise PhotometryError("the halo weights vanished")
    return weights / total, result


def segments(time: np.ndarray, max_gap: float) -> list[tuple[int, int]]:
    """Ranges of cadences (half-open) between gaps in time longer than ``max_gap`` [d].

    Cadences without a time stay in the segment around them.
    """
    known = np.flatnonzero(np.isfinite(time))
    if known.size == 0:
        return [(0, time.size)]
    cuts = known[1:][np.diff(time[known]) > max_gap]
    edges = [0, *cuts.tolist(), time.size]
    return list(zip(edges[:-1], edges[1:], strict=True))


class HaloPhotometry(PhotometryMethod):
    """Halo photometry of one saturated target (see the module notes)."""

    method = "halo"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.target.source.full_stamp:
            side = 2 * int(math.ceil(self.settings.halo.radius)) + 1
            self.target.set_stamp(self.target.centred_stamp(side, side))
        self.halo: np.ndarray | None = None
        #: The pixel weights (the ``WEIGHTMAP`` extension).
        self.weightmap: WeightMap | None = None

    def extensions(self) -> tuple[TableExtension, ...]:
        """The ``WEIGHTMAP`` extension of the pixel weights."""
        return () if self.weightmap is None else (self.weightmap.extension(),)

    # -- pixels ------------------------------------------------------------------------------
    def _neighbour_light(self) -> np.ndarray:
        """Mean light of the catalogued stars other than the target on the stamp [e-/s]."""
        h, w = self.target.stamp_shape
        r0, c0 = self.target.stamp_origin
        idx = self.target.stars_reaching((r0, c0), (h, w))[1:]
        if idx.size == 0:
            return np.zeros((h, w))
        stars = self.target.source.stars
        d_row, d_col = (
            self.target.row_mean - self.target.row_ref,
            self.target.col_mean - self.target.col_ref,
        )
        rows, cols = stars.row[idx], stars.col[idx]
        images = prf_images(
            self.target.prf,
            (rows + d_row)[None],
            (cols + d_col)[None],
            rows,
            cols,
            (r0, c0),
            (h, w),
        )[0]
        return (tmag_to_flux(stars.tmag[idx]) @ images).reshape(h, w)

    def _halo_pixels(
        self, peak: np.ndarray, noise: np.ndarray, neighbours: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The halo pixels and the saturated ones, widened (see the module notes, step 2).

        Parameters
        ----------
        peak : ndarray, shape (rows, columns)
            Brightest good cadence of each pixel (NaN: a good cadence without data).
        noise : ndarray, shape (rows, columns)
            Typical uncertainty of each pixel [e-/s].
        neighbours : ndarray, shape (rows, columns)
            The neighbours' mean light [e-/s].

        Returns
        -------
        halo, saturated : ndarray of bool, shape (rows, columns)
        """
        s = self.settings
        h, w = self.target.stamp_shape
        row, col = self.target.stamp_position
        rr, cc = np.mgrid[0:h, 0:w]
        near = np.hypot(rr - row, cc - col) <= s.halo.radius
        usable = near & np.isfinite(peak)
        if not usable.any():
            raise PhotometryError(f"TIC {self.starid}: no data around the target")
        level = float(np.max(peak[usable]))
        saturated = usable & (peak >= s.halo.saturation_fraction * level)
        saturated = grow_bleeds(saturated, s.halo.bleed_margin)
        with np.errstate(divide="ignore", invalid="ignore"):
            crowded = neighbours > s.halo.max_neighbour_light * np.abs(self.target.sumimage)
        with np.errstate(divide="ignore", invalid="ignore"):
            faint = ~(self.target.sumimage >= s.halo.min_snr * noise)
        halo = usable & ~saturated & ~crowded & ~faint
        if not halo.any():
            raise PhotometryError(f"TIC {self.starid}: no unsaturated halo pixel around the target")
        return halo, saturated

    def _pixel_statistics(self, blocks) -> tuple[np.ndarray, np.ndarray]:
        """Brightest good cadence of each pixel of the stamp, and its typical uncertainty [e-/s].

        The brightest is NaN where a good cadence has no data; the uncertainty is the mean
        over the blocks of the median over their good cadences.
        """
        good = self.target.source.good
        peak = np.full(self.target.stamp_shape, -np.inf)
        noise = []
        for t0, t1, cubes in blocks(("images", "images_err")):
            ok = good[t0:t1]
            if ok.any():
                frames = cubes["images"][ok].astype(np.float64)
                peak = np.fmax(peak, np.max(frames, axis=0))
                peak[np.isnan(frames).any(axis=0)] = np.nan
                noise.append(np.median(cubes["images_err"][ok].astype(np.float64), axis=0))
        if not noise:
            raise PhotometryError(f"TIC {self.starid}: no good cadence")
        return np.where(np.isneginf(peak), np.nan, peak), np.mean(noise, axis=0)

    # -- the method ----------------------------------------------------------------------
    def do_photometry(self) -> STATUS:
        """Choose the halo pixels and their weights, and extract the light curve."""
        s = self.settings
        h, w = self.target.stamp_shape
        blocks = self.target.block_reader((0, h, 0, w))
        neighbours = self._neighbour_light()
        halo, saturated = self._halo_pixels(*self._pixel_statistics(blocks), neighbours)
        self.halo = halo
        n = self.target.source.time.size
        good = self.target.source.good
        pixels = halo.ravel()
        fluxes = np.full((n, int(pixels.sum())), np.nan)
        variances = np.full_like(fluxes, np.nan)
        backgrounds = np.full_like(fluxes, np.nan)
        shenanigans = np.zeros(n, dtype=bool)
        for t0, t1, cubes in blocks(("images", "images_err", "backgrounds", "pixel_flags")):
            shenanigans[t0:t1] = (
                cubes["pixel_flags"][:, halo] & PixelFlags.BackgroundShenanigans
            ).any(axis=1)
            fluxes[t0:t1] = cubes["images"].reshape(t1 - t0, -1)[:, pixels]
            variances[t0:t1] = cubes["images_err"].reshape(t1 - t0, -1)[:, pixels] ** 2
            backgrounds[t0:t1] = cubes["backgrounds"].reshape(t1 - t0, -1)[:, pixels]

        catalogue_flux = float(tmag_to_flux(self.target.tmag))
        flux = np.full(n, np.nan)
        flux_err = np.full(n, np.nan)
        flux_bkg = np.full(n, np.nan)
        maps, first, last, iterations = [], [], [], 0
        weights_mean = np.zeros(halo.sum())
        cadenceno = self.target.source.cadenceno
        for a, b in segments(self.target.source.time, s.halo.split_gap):
            use = np.flatnonzero(good[a:b]) + a
            if use.size < MIN_SEGMENT_CADENCES:
                logger.info(
                    "TIC %d: cadences %d-%d: too few good cadences for halo weights",
                    self.starid,
                    cadenceno[a],
                    cadenceno[b - 1],
                )
                continue
            weights, result = tv_weights(fluxes[use], s.halo.tv_epsilon, s.halo.max_iterations)
            iterations = max(iterations, int(result.nit))
            if not result.success:
                logger.warning(
                    "TIC %d: halo weights of cadences %d-%d did not converge: %s",
                    self.starid,
                    cadenceno[a],
                    cadenceno[b - 1],
                    result.message,
                )
            raw = fluxes[a:b] @ weights
            factor = catalogue_flux / float(np.nanmedian(raw[use - a]))
            flux[a:b] = factor * raw
            flux_err[a:b] = factor * np.sqrt(variances[a:b] @ (weights * weights))
            flux_bkg[a:b] = factor * (backgrounds[a:b] @ weights)
            image = np.zeros(h * w)
            image[pixels] = weights
            maps.append(image.reshape(h, w))
            first.append(int(cadenceno[a]))
            last.append(int(cadenceno[b - 1]))
            weights_mean += weights * use.size
        if not maps:
            raise PhotometryError(f"TIC {self.starid}: no segment with enough good cadences")
        weights_mean /= weights_mean.sum()
        self.weightmap = WeightMap(
            cadenceno1=first,
            cadenceno2=last,
            sat_pixels=[int(saturated.sum())] * len(maps),
            weights=np.asarray(maps),
        )
        self.final_mask = halo
        quality = np.where(shenanigans, QUALITY_BACKGROUND_SHENANIGANS, 0).astype(np.int32)
        self.set_lightcurve(
            flux,
            flux_err,
            flux_bkg,
            quality,
            self.target.row_t,
            self.target.col_t,
            cadenceno=cadenceno,
        )
        others = neighbours[halo]
        total = np.clip(self.target.sumimage[halo], others, None)
        weighted = float(weights_mean @ total)
        self.contamination = float(weights_mean @ others) / weighted if weighted > 0 else math.nan
        cat = self.target.catalog
        inside = [
            int(sid)
            for sid, r, c in zip(cat["starid"], cat["row"], cat["column"], strict=True)
            if sid != self.starid
            and 0 <= round(r) < h
            and 0 <= round(c) < w
            and halo[int(round(r)), int(round(c))]
        ]
        self.skip_targets = inside
        self.method_keywords = {
            "HALO_VER": (HALO_VERSION, "halo photometry version"),
            "HALO_OBJ": (HALO_OBJECTIVE, "halo objective: total variation"),
            "HALO_THR": (s.halo.saturation_fraction, "saturated above this fraction of peak"),
            "HALO_MXI": (s.halo.max_iterations, "most optimiser iterations"),
            "HALO_SCL": (catalogue_flux, "[e-/s] segments scaled to this median"),
            "HALO_MFL": (s.halo.max_neighbour_light, "max neighbour light per pixel"),
            "HALO_NPX": (int(halo.sum()), "halo pixels"),
            "HALO_NIT": (iterations, "optimiser iterations (most of segments)"),
        }
        if self.switch_reason:
            self.method_keywords["HALO_WHY"] = (
                self.switch_reason[:SWITCH_REASON_LENGTH],
                "automatic switch",
            )
        return STATUS.OK

    def aperture_image(self) -> np.ndarray:
        """``APERTURE`` bits: collected pixels, and the halo pixels as the photometric mask."""
        return aperture_image(
            self.target.stamp_shape,
            self.target.stamp_origin,
            collected=np.isfinite(self.target.sumimage),
            photometric=self.halo,
        )
