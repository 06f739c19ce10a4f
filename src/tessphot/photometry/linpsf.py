"""Linear PSF photometry: the fluxes of the target and its neighbours by weighted linear
least squares, cadence by cadence (§5.13 of the notes, made to work).

1. **Fit region.** The pixels of the stamp within ``linpsf_fit_radius`` of the target's
   mean position that hold data.
2. **Stars.** Every catalogued star whose PRF reaches the region. Its light on the region
   (catalogue flux times the PRF fraction on the region, at its mean position) decides its
   role: stars with at least ``linpsf_fit_light`` of the target's flux are *fitted* (at most
   ``linpsf_max_stars``, the brightest on the region, the target always); the others are
   *fixed*: their PRF images at their catalogue fluxes are subtracted. Neighbours closer to
   the target than ``linpsf_min_separation`` cannot be told apart from it: they are fixed
   too and listed as the task's ``skip_targets``.
3. **Model per cadence.** Each star's PRF image (:meth:`tessphot.prf.PRFModel.stamps`,
   pixel-integrated at its sub-pixel position) at its position in that cadence from the
   jitter model, the PRF shape of its reference position; plus a constant local background
   (``linpsf_background``) on top of the prepared background.
4. **Fit.** Weighted linear least squares with the pixels' per-cadence uncertainties
   (``images_err``) as weights, all cadences of a block at once (batched normal equations).
   The flux is the target's fitted flux [e-/s, all its light: the PRF is normalised];
   its error the square root of the covariance's diagonal element; the background column
   is the prepared background summed over the region plus the fitted constant times the
   number of pixels. The centroid columns hold the target's position from the jitter model
   (positions are not fitted here).
5. **Contamination.** The neighbours are fitted out of the flux, so the light curve's
   contamination (the diagnostics' ``contamination``, which downstream corrections
   subtract) is 0. How crowded the target is goes into ``PSF_CONT`` as the original
   defined it: the neighbours' mean light weighted by the target's PRF over the total so
   weighted (fitted neighbours at their mean fitted flux, fixed ones at their catalogue
   flux).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

from tessphot.constants import tmag_to_flux
from tessphot.lightcurve import aperture_image
from tessphot.photometry.base import (
    QUALITY_BACKGROUND_SHENANIGANS,
    BasePhotometry,
    PhotometryError,
    bounding_box,
)
from tessphot.photometry.scene import MIN_RELATIVE_LIGHT, mean_positions
from tessphot.prepare.flags import PixelFlags
from tessphot.prf import prf_images
from tessphot.tasks.status import STATUS

logger = logging.getLogger(__name__)

#: Cadences whose design matrices are built at once (bounds memory: cadences x stars x
#: pixels of the region).
DESIGN_CADENCES = 256
#: Relative singular values below this are dropped when the normal equations are inverted
#: (stars the data cannot separate get no flux instead of a huge one).
RCOND = 1e-10


def solve_fluxes(
    design: np.ndarray, data: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted linear least squares for a batch of independent problems.

    Parameters
    ----------
    design : ndarray, shape (n, k, p)
        ``k`` model images over ``p`` pixels per problem.
    data : ndarray, shape (n, p)
        Data; NaN pixels are left out.
    variance : ndarray, shape (n, p)
        Variance of each pixel; non-finite or non-positive: left out.

    Returns
    -------
    coefficients, errors : ndarray, shape (n, k)
        Best-fit coefficients and their standard errors (square root of the covariance's
        diagonal); NaN for problems without usable pixels.
    """
    ok = np.isfinite(data) & np.isfinite(variance) & (variance > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(ok, 1.0 / variance, 0.0)
    b = np.where(ok, data, 0.0)
    aw = design * weight[:, None, :]
    normal = aw @ design.transpose(0, 2, 1)
    rhs = np.einsum("nkp,np->nk", aw, b)
    cov = np.linalg.pinv(normal, rcond=RCOND, hermitian=True)
    coef = np.einsum("nkl,nl->nk", cov, rhs)
    err = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    empty = ~ok.any(axis=1)
    coef[empty] = np.nan
    err[empty] = np.nan
    return coef, err


class LinPSFPhotometry(BasePhotometry):
    """Linear PSF photometry of one target (see the module notes)."""

    method = "linpsf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.region: np.ndarray | None = None
        #: PRF-weighted fraction of the neighbours' light under the target (``PSF_CONT``).
        self.crowding = math.nan
        self.n_fitted = 0

    def _fit_region(self) -> np.ndarray:
        """Pixels of the stamp within the fit radius of the target that hold data."""
        h, w = self.stamp_shape
        row, col = self.target_stamp_position
        rr, cc = np.mgrid[0:h, 0:w]
        region = np.hypot(rr - row, cc - col) <= self.settings.linpsf_fit_radius
        region &= np.isfinite(self.sumimage)
        if not region.any():
            raise PhotometryError(f"TIC {self.starid}: no data within the fit radius")
        return region

    def _select_stars(
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
        idx = self.stars_reaching(box_origin, box_shape)
        stars = self.data.stars
        rows, cols = self.data.motion.positions(stars.row[idx], stars.col[idx], self.data.time)
        mean_rows, mean_cols = mean_positions(
            rows, cols, self.data.good, stars.row[idx], stars.col[idx]
        )
        flux = tmag_to_flux(stars.tmag[idx])
        images = prf_images(
            self.prf,
            mean_rows[None],
            mean_cols[None],
            stars.row[idx],
            stars.col[idx],
            box_origin,
            box_shape,
        )[0][:, pixels]
        light = flux * images.sum(axis=1)
        fitted = np.zeros(idx.size, dtype=bool)
        fitted[0] = True
        rejected = np.zeros(idx.size, dtype=bool)
        weight = np.where(np.isfinite(variance) & (variance > 0), 1.0 / variance, 0.0)
        extra = [np.ones(pixels.sum())] if s.linpsf_background else []

        def target_variance(members: np.ndarray) -> float:
            design = np.vstack([images[members], *extra])
            normal = (design * weight) @ design.T
            return float(np.linalg.pinv(normal, rcond=RCOND, hermitian=True)[0, 0])

        alone = target_variance(fitted)
        for j in np.argsort(-light, kind="stable"):
            if j == 0 or light[j] < s.linpsf_fit_light * flux[0]:
                continue
            if fitted.sum() >= s.linpsf_max_stars:
                break
            trial = fitted.copy()
            trial[j] = True
            if target_variance(trial) <= s.linpsf_max_inflation * alone:
                fitted = trial
            else:
                rejected[j] = True
        distance = np.hypot(mean_rows - mean_rows[0], mean_cols - mean_cols[0])
        inseparable = rejected & (distance < s.linpsf_min_separation)
        keep = fitted | (light >= MIN_RELATIVE_LIGHT * light[0])
        return (
            idx[keep],
            rows[:, keep],
            cols[:, keep],
            flux[keep],
            fitted[keep],
            inseparable[keep],
        )

    def _typical_variance(self, blocks, pixels: np.ndarray) -> np.ndarray:
        """Median variance of each pixel of the fit region over the good cadences."""
        good = self.data.good
        medians = []
        for t0, t1, cubes in blocks(("images_err",)):
            ok = good[t0:t1]
            if ok.any():
                errors = cubes["images_err"].reshape(t1 - t0, -1)[ok][:, pixels]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    medians.append(np.nanmedian(errors.astype(np.float64) ** 2, axis=0))
        if not medians:
            return np.ones(int(pixels.sum()))
        return np.mean(medians, axis=0)

    def do_photometry(self) -> STATUS:
        """Fit the target and its neighbours on every cadence."""
        s = self.settings
        region = self._fit_region()
        self.region = region
        box = bounding_box(region)
        br0, br1, bc0, bc1 = box
        box_origin = (self.stamp[0] + br0, self.stamp[2] + bc0)
        box_shape = (br1 - br0, bc1 - bc0)
        pixels = region[br0:br1, bc0:bc1].ravel()
        blocks = self.time_blocks(box)
        idx, rows, cols, cat_flux, fitted, close = self._select_stars(
            pixels, box_origin, box_shape, self._typical_variance(blocks, pixels)
        )
        stars = self.data.stars
        node_rows, node_cols = stars.row[idx], stars.col[idx]
        n = self.data.time.size
        n_fit = int(fitted.sum())
        n_pix = int(pixels.sum())
        known = np.all(np.isfinite(rows) & np.isfinite(cols), axis=1)
        flux = np.full(n, np.nan)
        flux_err = np.full(n, np.nan)
        flux_bkg = np.full(n, np.nan)
        fluxes = np.full((n, n_fit), np.nan)
        shenanigans = np.zeros(n, dtype=bool)
        names = ("images", "images_err", "backgrounds", "pixel_flags")
        for t0, t1, cubes in blocks(names):
            flags = cubes["pixel_flags"][:, self.region]
            shenanigans[t0:t1] = (flags & PixelFlags.BackgroundShenanigans).any(axis=1)
            images = cubes["images"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            errors = cubes["images_err"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            backgrounds = cubes["backgrounds"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            for a in range(t0, t1, DESIGN_CADENCES):
                b = min(a + DESIGN_CADENCES, t1)
                use = np.flatnonzero(known[a:b]) + a
                if use.size == 0:
                    continue
                model = prf_images(
                    self.prf, rows[use], cols[use], node_rows, node_cols, box_origin, box_shape
                )[:, :, pixels]
                data = images[use - t0] - np.einsum(
                    "nsp,s->np", model[:, ~fitted], cat_flux[~fitted]
                )
                design = model[:, fitted]
                if s.linpsf_background:
                    design = np.concatenate([design, np.ones((use.size, 1, n_pix))], axis=1)
                coef, err = solve_fluxes(design, data, errors[use - t0] ** 2)
                fluxes[use] = coef[:, :n_fit]
                flux[use] = coef[:, 0]
                flux_err[use] = err[:, 0]
                offset = coef[:, n_fit] if s.linpsf_background else 0.0
                flux_bkg[use] = np.nansum(backgrounds[use - t0], axis=1) + offset * n_pix
        self.final_mask = region
        quality = np.where(shenanigans, QUALITY_BACKGROUND_SHENANIGANS, 0).astype(np.int32)
        self.set_lightcurve(flux, flux_err, flux_bkg, quality, self.row_t, self.col_t)

        # -- crowding and neighbours -------------------------------------------------------
        mean_flux = cat_flux.copy()
        use = self.data.good & np.all(np.isfinite(fluxes), axis=1)
        if use.any():
            mean_flux[fitted] = fluxes[use].mean(axis=0)
        mean_rows, mean_cols = mean_positions(rows, cols, self.data.good)
        at_mean = prf_images(
            self.prf, mean_rows[None], mean_cols[None], node_rows, node_cols, box_origin, box_shape
        )[0][:, pixels]
        others = at_mean[1:].T @ mean_flux[1:]
        total = others + mean_flux[0] * at_mean[0]
        weighted = float(at_mean[0] @ total)
        self.crowding = float(at_mean[0] @ others) / weighted if weighted > 0 else math.nan
        self.contamination = 0.0
        self.skip_targets = [int(x) for x in stars.starid[idx[close]]]
        self.n_fitted = n_fit
        self.method_keywords = {
            "PSF_CONT": (self.crowding, "PRF-weighted light of neighbours"),
            "PSF_NFIT": (n_fit, "stars fitted"),
            "PSF_NFIX": (int((~fitted).sum()), "neighbours subtracted at catalogue flux"),
            "PSF_NPIX": (n_pix, "pixels in the fit"),
            "PSF_PRF": (self.prf.short_name, "PRF model"),
        }
        return STATUS.OK

    def aperture_image(self) -> np.ndarray:
        """``APERTURE`` bits: collected pixels, the fit region as photometric mask, CCD
        output."""
        return aperture_image(
            self.stamp_shape,
            self.stamp_origin,
            collected=np.isfinite(self.sumimage),
            photometric=self.region,
        )
