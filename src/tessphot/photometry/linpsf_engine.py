"""The engine that linear PSF and PSF photometry share.

The fit region and its saturated pixels, the choice of stars, the cadence blocks of the
region, the second pass and the crowding figure (see :mod:`tessphot.photometry.linpsf`).
:class:`LinPSFEngine` serves both methods, which use it side by side.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from tessphot.config.photometry import PhotometrySettings
from tessphot.constants import SATURATED_RATE, tmag_to_flux
from tessphot.lightcurve import aperture_image
from tessphot.photometry.errors import PhotometryError
from tessphot.photometry.k2p2 import skip_targets
from tessphot.photometry.linpsf_solve import (
    HOURS_PER_DAY,
    MIN_FIXED_LIGHT,
    RCOND,
    SATURATED_FIT_RADIUS,
    FirstPass,
    smooth_local_linear,
)
from tessphot.photometry.method import QUALITY_BACKGROUND_SHENANIGANS
from tessphot.photometry.scene import mean_positions
from tessphot.photometry.stamps import bounding_box
from tessphot.photometry.target import Target
from tessphot.prepare.background import grow_bleeds
from tessphot.prepare.flags import PixelFlags
from tessphot.prf import PRFModel, prf_images

#: The cubes of a cadence block the fits read.
BLOCK_NAMES = ("images", "images_err", "backgrounds", "pixel_flags")


@dataclass
class StarSelection:
    """The fit's pixels and stars (:meth:`LinPSFEngine.select`)."""

    #: Origin of the box around the fit region (science coordinates).
    box_origin: tuple[int, int]
    #: Shape of that box.
    box_shape: tuple[int, int]
    #: The fit's pixels on the box (row-major).
    pixels: np.ndarray
    #: The cadence blocks of the box (:meth:`tessphot.photometry.target.Target.block_reader`).
    blocks: Callable
    #: Indices of the stars into the source's stars, the target first.
    idx: np.ndarray
    #: Their positions per cadence, (n_cadences, n_stars).
    rows: np.ndarray
    #: Their positions per cadence, (n_cadences, n_stars).
    cols: np.ndarray
    #: Their catalogue fluxes [e-/s].
    cat_flux: np.ndarray
    #: Which of them are fitted.
    fitted: np.ndarray
    #: Which were left out of the fit as indistinguishable from the target.
    close: np.ndarray

    @property
    def n_fit(self) -> int:
        """Number of fitted stars."""
        return int(self.fitted.sum())

    @property
    def n_pix(self) -> int:
        """Number of pixels in the fit."""
        return int(self.pixels.sum())


@dataclass
class RegionBlock:
    """The fit's pixels of one cadence block (:meth:`LinPSFEngine.region_blocks`)."""

    #: First cadence of the block.
    t0: int
    #: One past its last cadence.
    t1: int
    #: Images of the pixels, (t1 - t0, n_pixels) [e-/s].
    images: np.ndarray
    #: Their errors.
    errors: np.ndarray
    #: Their prepared backgrounds.
    backgrounds: np.ndarray


class LinPSFEngine:
    """The fit region, the stars and the passes of linear PSF photometry on one target.

    Parameters
    ----------
    target : Target
        The star, its stamp and its pixel source.
    settings : PhotometrySettings
        The ``[photometry]`` settings.
    """

    def __init__(self, target: Target, settings: PhotometrySettings) -> None:
        self.target = target
        self.settings = settings
        #: The fit region on the stamp, without its saturated pixels.
        self.region: np.ndarray | None = None
        #: Pixels of the fit region left out as saturated.
        self.n_saturated = 0
        #: Good cadences whose flux is the first pass's (a parameter changing fast).
        self.n_first_pass = 0
        #: Cadences where the region has background shenanigans (:meth:`region_blocks`).
        self.shenanigans = np.zeros(0, dtype=bool)
        #: The prepared background summed over the region (:meth:`region_blocks`) [e-/s].
        self.prepared_bkg = np.zeros(0)

    @property
    def starid(self) -> int:
        """TIC number of the target."""
        return self.target.starid

    def fit_region(self) -> np.ndarray:
        """Pixels of the stamp within the fit radius of the target that hold data."""
        h, w = self.target.stamp_shape
        row, col = self.target.stamp_position
        rr, cc = np.mgrid[0:h, 0:w]
        radius = self.settings.linpsf.fit_radius
        if self.target.tmag <= self.settings.linpsf.saturated_tmag:
            radius = max(radius, SATURATED_FIT_RADIUS)
        region = np.hypot(rr - row, cc - col) <= radius
        region &= np.isfinite(self.target.sumimage)
        if not region.any():
            raise PhotometryError(f"TIC {self.starid}: no data within the fit radius")
        return region

    def prf_at(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        idx: np.ndarray,
        box_origin: tuple[int, int],
        box_shape: tuple[int, int],
        pixels: np.ndarray,
    ) -> np.ndarray:
        """PRF images (n_stars, n_pixels) of the stars ``idx``, each at one position."""
        stars = self.target.source.stars
        return prf_images(
            self.target.prf,
            rows[None],
            cols[None],
            stars.row[idx],
            stars.col[idx],
            box_origin,
            box_shape,
        )[0][:, pixels]

    def select_stars(
        self,
        pixels: np.ndarray,
        box_origin: tuple[int, int],
        box_shape: tuple[int, int],
        variance: np.ndarray,
    ):
        """The stars on the fit region and which of them are fitted (see the module notes).

        Parameters
        ----------
        pixels : ndarray of bool, shape (rows * columns,)
            The fit region on the box (row-major).
        box_origin, box_shape
            The box around the region (science coordinates).
        variance : ndarray, shape (n_pixels,)
            Typical variance of the region's pixels (the fit's weights).

        Returns
        -------
        idx : ndarray of int
            Indices into ``data.stars``, the target first.
        rows, cols : ndarray, shape (n_cadences, n_stars)
            Their positions per cadence.
        flux : ndarray
            Their catalogue fluxes [e-/s].
        fitted, inseparable : ndarray of bool
            Which are fitted; which were left out of the fit because they are
            indistinguishable from the target.
        """
        s = self.settings
        idx = self.target.stars_reaching(box_origin, box_shape)
        stars = self.target.source.stars
        rows, cols = self.target.source.motion.positions(
            stars.row[idx], stars.col[idx], self.target.source.time
        )
        mean_rows, mean_cols = mean_positions(
            rows, cols, self.target.source.good, stars.row[idx], stars.col[idx]
        )
        flux = tmag_to_flux(stars.tmag[idx])
        images = self.prf_at(mean_rows, mean_cols, idx, box_origin, box_shape, pixels)
        light = flux * images.sum(axis=1)
        fitted = np.zeros(idx.size, dtype=bool)
        fitted[0] = True
        rejected = np.zeros(idx.size, dtype=bool)
        weight = np.where(np.isfinite(variance) & (variance > 0), 1.0 / variance, 0.0)
        extra = [np.ones(pixels.sum())] if s.linpsf.background else []

        def target_variance(members: np.ndarray) -> float:
            design = np.vstack([images[members], *extra])
            normal = (design * weight) @ design.T
            return float(np.linalg.pinv(normal, rcond=RCOND, hermitian=True)[0, 0])

        alone = target_variance(fitted)
        for j in np.argsort(-light, kind="stable"):
            if j == 0 or light[j] < s.linpsf.fit_light * flux[0]:
                continue
            if fitted.sum() >= s.linpsf.max_stars:
                break
            trial = fitted.copy()
            trial[j] = True
            if target_variance(trial) <= s.linpsf.max_inflation * alone:
                fitted = trial
            else:
                rejected[j] = True
        distance = np.hypot(mean_rows - mean_rows[0], mean_cols - mean_cols[0])
        inseparable = rejected & (distance < s.linpsf.min_separation)
        keep = fitted | (light >= MIN_FIXED_LIGHT * light[0])
        return (
            idx[keep],
            rows[:, keep],
            cols[:, keep],
            flux[keep],
            fitted[keep],
            inseparable[keep],
        )

    def pixel_statistics(self, blocks, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median variance of each pixel of the region over the good cadences, and its peak.

        The peak is the pixel's brightest good cadence [e-/s].
        """
        good = self.target.source.good
        medians = []
        peak = np.full(int(pixels.sum()), -np.inf)
        for t0, t1, cubes in blocks(("images", "images_err")):
            ok = good[t0:t1]
            if ok.any():
                errors = cubes["images_err"].reshape(t1 - t0, -1)[ok][:, pixels]
                images = cubes["images"].reshape(t1 - t0, -1)[ok][:, pixels]
                peak = np.fmax(peak, np.nanmax(np.where(np.isnan(images), -np.inf, images), 0))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    medians.append(np.nanmedian(errors.astype(np.float64) ** 2, axis=0))
        if not medians:
            return np.ones(int(pixels.sum())), peak
        return np.mean(medians, axis=0), peak

    def widen(self, saturated: np.ndarray) -> np.ndarray:
        """Saturated pixels widened by ``bleed_margin`` along their column, one pixel across.

        See :func:`tessphot.prepare.background.grow_bleeds`.
        """
        return grow_bleeds(saturated, self.settings.linpsf.bleed_margin)

    def saturated(self, box: tuple[int, int, int, int], pixels: np.ndarray, peak) -> np.ndarray:
        """Pixels of the box (row-major, as ``pixels``) that saturate on some good cadence.

        Widened (:meth:`widen`).
        """
        br0, br1, bc0, bc1 = box
        full = np.zeros(pixels.size, dtype=bool)
        full[pixels] = peak >= self.settings.saturation_fraction * SATURATED_RATE
        return self.widen(full.reshape(br1 - br0, bc1 - bc0)).ravel()

    def task_skip_targets(self, inseparable: np.ndarray) -> list[int]:
        """The task's skip targets.

        Neighbours too close to be told from the target and, for a saturated target, the
        catalogued stars on its own saturated pixels and bleed columns (the saturated
        patches reaching its core; their own photometry would measure the target),
        anywhere on the stamp.
        """
        skip = {int(x) for x in inseparable}
        if self.n_saturated:
            with np.errstate(invalid="ignore"):
                full = self.target.sumimage >= self.settings.saturation_fraction * SATURATED_RATE
            patches, _ = ndimage.label(self.widen(full))
            h, w = self.target.stamp_shape
            row, col = self.target.stamp_position
            rr, cc = np.mgrid[0:h, 0:w]
            core = np.hypot(rr - row, cc - col) <= SATURATED_FIT_RADIUS
            own = np.isin(patches, np.unique(patches[core & (patches > 0)]))
            cat = self.target.catalog
            skip.update(skip_targets(own, cat["starid"], cat["row"], cat["column"], self.starid))
        skip.discard(self.starid)
        return sorted(skip)

    def fit_pixels(self):
        """The fit region without its saturated pixels (sets :attr:`region`).

        Returns
        -------
        box : (int, int, int, int)
            The region's bounding box on the stamp.
        pixels : ndarray of bool
            The fit's pixels on the box (row-major).
        blocks
            The cadence blocks of the box (:meth:`tessphot.photometry.target.Target.block_reader`).
        typical : ndarray
            Typical variance of each of the fit's pixels.
        """
        region = self.fit_region()
        box = bounding_box(region)
        br0, br1, bc0, bc1 = box
        pixels = region[br0:br1, bc0:bc1].ravel()
        blocks = self.target.block_reader(box)
        typical, peak = self.pixel_statistics(blocks, pixels)
        saturated = self.saturated(box, pixels, peak)
        self.n_saturated = int((saturated & pixels).sum())
        if self.n_saturated:
            typical = typical[~saturated[pixels]]
            pixels = pixels & ~saturated
            if not pixels.any():
                raise PhotometryError(
                    f"TIC {self.starid}: every pixel of the fit region is saturated"
                )
            region = np.zeros_like(region)
            region[br0:br1, bc0:bc1] = pixels.reshape(br1 - br0, bc1 - bc0)
        self.region = region
        return box, pixels, blocks, typical

    def second_pass(self, first: FirstPass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The second pass: the target's parameters, the others at their smoothed values.

        See the module notes of :mod:`tessphot.photometry.linpsf`. Returns the target's
        parameters, the flux error and the background offset. Without other parameters or
        smoothing (or where the smoothing has no value), the first pass's values.
        """
        s = self.settings
        kt, coefs, covs = first.kt, first.coefs, first.covs
        target_normal, target_cross = first.target_normal, first.target_cross
        target = coefs[:, :kt].copy()
        flux_err = np.sqrt(np.clip(covs[:, 0, 0], 0.0, None))
        offset = coefs[:, -1] if s.linpsf.background else np.zeros(target.shape[0])
        if s.linpsf.smooth_hours <= 0 or coefs.shape[1] == kt:
            return target, flux_err, offset
        others, others_cov = coefs[:, kt:], covs[:, kt:, kt:]
        use = self.target.source.good & np.all(np.isfinite(others), axis=1)
        use &= np.all(np.isfinite(others_cov.reshape(others.shape[0], -1)), axis=1)
        half = s.linpsf.smooth_hours / HOURS_PER_DAY / 2
        smooth, smooth_cov, excess = smooth_local_linear(
            self.target.source.time, others, others_cov, use, half
        )
        # Where a neighbour or the background changes faster than a straight line over the
        # window follows (an eclipse, a jump), the first pass stands.
        fast = np.any(excess > s.linpsf.smooth_sigma, axis=1)
        finite = np.all(np.isfinite(target_normal.reshape(target.shape[0], -1)), axis=1)
        inverse = np.full_like(target_normal, np.nan)
        inverse[finite] = np.linalg.pinv(target_normal[finite], rcond=RCOND, hermitian=True)
        with np.errstate(invalid="ignore"):
            second = np.einsum(
                "nkl,nl->nk",
                inverse,
                first.target_rhs - np.einsum("nkm,nm->nk", target_cross, smooth),
            )
            gain = np.einsum("nl,nlm->nm", inverse[:, 0], target_cross)
            variance = inverse[:, 0, 0] + np.einsum("nk,nkl,nl->n", gain, smooth_cov, gain)
        done = np.all(np.isfinite(second), axis=1) & np.isfinite(variance) & ~fast
        self.n_first_pass = int(np.sum(fast & self.target.source.good))
        target[done] = second[done]
        flux_err[done] = np.sqrt(np.clip(variance[done], 0.0, None))
        if s.linpsf.background:
            offset = np.where(done, smooth[:, -1], offset)
        return target, flux_err, offset

    def select(self) -> StarSelection:
        """The fit's pixels (:meth:`fit_pixels`) and stars (:meth:`select_stars`)."""
        box, pixels, blocks, typical = self.fit_pixels()
        br0, br1, bc0, bc1 = box
        box_origin = (self.target.stamp[0] + br0, self.target.stamp[2] + bc0)
        box_shape = (br1 - br0, bc1 - bc0)
        idx, rows, cols, cat_flux, fitted, close = self.select_stars(
            pixels, box_origin, box_shape, typical
        )
        return StarSelection(
            box_origin, box_shape, pixels, blocks, idx, rows, cols, cat_flux, fitted, close
        )

    def region_blocks(self, blocks: Callable, pixels: np.ndarray) -> Iterator[RegionBlock]:
        """The fit's pixels block by block (as float64).

        Fills :attr:`shenanigans` and :attr:`prepared_bkg` on the way.
        """
        n = self.target.source.time.size
        self.shenanigans = np.zeros(n, dtype=bool)
        self.prepared_bkg = np.full(n, np.nan)
        for t0, t1, cubes in blocks(BLOCK_NAMES):
            flags = cubes["pixel_flags"][:, self.region]
            self.shenanigans[t0:t1] = (flags & PixelFlags.BackgroundShenanigans).any(axis=1)
            images = cubes["images"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            errors = cubes["images_err"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            backgrounds = cubes["backgrounds"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            self.prepared_bkg[t0:t1] = np.nansum(backgrounds, axis=1)
            yield RegionBlock(t0, t1, images, errors, backgrounds)

    def quality(self) -> np.ndarray:
        """The light curve's quality flags (background shenanigans on the region)."""
        return np.where(self.shenanigans, QUALITY_BACKGROUND_SHENANIGANS, 0).astype(np.int32)

    def header_cards(
        self, crowding: float, fitted: np.ndarray, n_pix: int
    ) -> dict[str, tuple[Any, str]]:
        """The header cards both methods write first."""
        return {
            "PSF_CONT": (crowding, "PRF-weighted light of neighbours"),
            "PSF_NFIT": (int(fitted.sum()), "stars fitted"),
            "PSF_NFIX": (int((~fitted).sum()), "neighbours subtracted at catalogue flux"),
            "PSF_NPIX": (n_pix, "pixels in the fit"),
            "PSF_NSAT": (self.n_saturated, "saturated pixels left out of the fit"),
        }

    def aperture_image(self) -> np.ndarray:
        """``APERTURE`` bits: collected pixels, the fit region as photometric mask, CCD output."""
        return aperture_image(
            self.target.stamp_shape,
            self.target.stamp_origin,
            collected=np.isfinite(self.target.sumimage),
            photometric=self.region,
        )


def mean_fitted_fluxes(
    cat_flux: np.ndarray, fitted: np.ndarray, fluxes: np.ndarray, good: np.ndarray
) -> np.ndarray:
    """The stars' fluxes: the fitted ones' mean over the good cadences, the others' catalogue flux.

    ``fitted`` is a mask or indices, in the order of the columns of ``fluxes``.
    """
    mean_flux = cat_flux.copy()
    use = good & np.all(np.isfinite(fluxes), axis=1)
    if use.any():
        mean_flux[fitted] = fluxes[use].mean(axis=0)
    return mean_flux


def prf_crowding(
    prf: PRFModel,
    mean_rows: np.ndarray,
    mean_cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    origin: tuple[int, int],
    shape: tuple[int, int],
    pixels: np.ndarray,
    mean_flux: np.ndarray,
) -> float:
    """``PSF_CONT``: the neighbours' light weighted by the target's PRF over the total so weighted.

    Every star at its mean position and ``mean_flux`` (the target first).
    """
    at_mean = prf_images(
        prf, mean_rows[None], mean_cols[None], node_rows, node_cols, origin, shape
    )[0][:, pixels]
    others = at_mean[1:].T @ mean_flux[1:]
    total = others + mean_flux[0] * at_mean[0]
    weighted = float(at_mean[0] @ total)
    return float(at_mean[0] @ others) / weighted if weighted > 0 else math.nan
