"""Linear PSF photometry: the fluxes of the target and its neighbours by weighted linear
least squares, cadence by cadence (§5.13 of the notes, made to work).

1. **Fit region.** The pixels of the stamp within ``fit_radius`` of the target's
   mean position that hold data.
2. **Stars.** Every catalogued star whose PRF reaches the region. Its light on the region
   (catalogue flux times the PRF fraction on the region, at its mean position) decides its
   role: stars with at least ``fit_light`` of the target's flux are *fitted* (at most
   ``max_stars``, the brightest on the region, the target always); the others are
   *fixed*: their PRF images at their catalogue fluxes are subtracted. Neighbours closer to
   the target than ``min_separation`` cannot be told apart from it: they are fixed
   too and listed as the task's ``skip_targets``.
3. **Model per cadence.** Each star's PRF image (:meth:`tessphot.prf.PRFModel.stamps`,
   pixel-integrated at its sub-pixel position) at its position in that cadence from the
   jitter model, the PRF shape of its reference position; plus a constant local background
   (``background``) on top of the prepared background.
4. **Fit, first pass.** Weighted linear least squares of all fitted stars and the
   background term with the pixels' per-cadence uncertainties (``images_err``) as weights,
   every cadence of a block at once (batched normal equations).
5. **Fit, second pass.** Each parameter fitted per cadence costs the target's flux
   precision (a neighbour a pixel or two away, a free background over ~50 pixels: 5-20 %
   in noise). The neighbours' fluxes and the background offset change slowly (a
   variable neighbour over hours, the background error of the prepared background over
   hours), so their first-pass values are smoothed in time (a local straight line over
   ``smooth_hours``, on the good cadences) and the target's flux is fitted alone on
   every cadence with them held at the smoothed values: its precision is that of a star
   without free neighbours, while the neighbours' slow variability is still removed.
   Where a straight line over the window does not describe a parameter (its residual
   chi-square is ``smooth_sigma`` standard deviations above its degrees of freedom:
   an eclipsing neighbour, a jump), the first pass's flux is kept. The
   flux error is the propagated one: the target's own variance with the others held, plus
   the smoothed parameters' errors through their coupling to the target.
   ``smooth_hours = 0`` keeps the first pass (everything free on every cadence).
   The flux is the target's fitted flux [e-/s, all its light: the PRF is normalised];
   the background column is the prepared background summed over the region plus the
   fitted constant times the number of pixels. The centroid columns hold the target's
   position from the jitter model (positions are not fitted here).
6. **Contamination.** The neighbours are fitted out of the flux, so the light curve's
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
from scipy import ndimage

from tessphot.constants import SATURATED_RATE, tmag_to_flux
from tessphot.lightcurve import aperture_image
from tessphot.photometry.errors import PhotometryError
from tessphot.photometry.k2p2 import skip_targets
from tessphot.photometry.linpsf_solve import (
    DESIGN_CADENCES,
    HOURS_PER_DAY,
    MIN_FIXED_LIGHT,
    RCOND,
    SATURATED_FIT_RADIUS,
    FirstPass,
    shift_images,
    smooth_local_linear,
)
from tessphot.photometry.method import (
    QUALITY_BACKGROUND_SHENANIGANS,
    SWITCH_REASON_LENGTH,
    PhotometryMethod,
)
from tessphot.photometry.scene import mean_positions
from tessphot.photometry.stamps import bounding_box
from tessphot.prepare.background import grow_bleeds
from tessphot.prepare.flags import PixelFlags
from tessphot.prf import prf_images
from tessphot.tasks.status import STATUS

logger = logging.getLogger(__name__)


class LinPSFPhotometry(PhotometryMethod):
    """Linear PSF photometry of one target (see the module notes)."""

    method = "linpsf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.region: np.ndarray | None = None
        #: PRF-weighted fraction of the neighbours' light under the target (``PSF_CONT``).
        self.crowding = math.nan
        self.n_fitted = 0
        #: Pixels of the fit region left out as saturated.
        self.n_saturated = 0
        #: Good cadences whose flux is the first pass's (a parameter changing fast).
        self.n_first_pass = 0
        #: Whether the target's shifts were fitted (a saturated core left out: ``PSF_SHFT``).
        self.shifts_fitted = False

    def fitted_positions(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Fit the target and give its positions per cadence when its shifts were fitted.

        For another method on the same target (the aperture's motion correction of a
        saturated star). None when the fit has no shifts.

        Raises
        ------
        tessphot.io.errors.TessphotError
            When the fit fails.
        """
        self.do_photometry()
        if not self.shifts_fitted:
            return None
        return self.columns.centroid_row, self.columns.centroid_column

    def _fit_region(self) -> np.ndarray:
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
        idx = self.target.stars_reaching(box_origin, box_shape)
        stars = self.target.source.stars
        rows, cols = self.target.source.motion.positions(
            stars.row[idx], stars.col[idx], self.target.source.time
        )
        mean_rows, mean_cols = mean_positions(
            rows, cols, self.target.source.good, stars.row[idx], stars.col[idx]
        )
        flux = tmag_to_flux(stars.tmag[idx])
        images = prf_images(
            self.target.prf,
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

    def _pixel_statistics(self, blocks, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median variance of each pixel of the fit region over the good cadences, and its
        brightest good cadence [e-/s].
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

    def _widen(self, saturated: np.ndarray) -> np.ndarray:
        """Saturated pixels widened by ``bleed_margin`` along their column and by one
        pixel across (:func:`tessphot.prepare.background.grow_bleeds`).
        """
        return grow_bleeds(saturated, self.settings.linpsf.bleed_margin)

    def _saturated(self, box: tuple[int, int, int, int], pixels: np.ndarray, peak) -> np.ndarray:
        """Pixels of the box (row-major, as ``pixels``) that saturate on some good cadence,
        widened (:meth:`_widen`).
        """
        br0, br1, bc0, bc1 = box
        full = np.zeros(pixels.size, dtype=bool)
        full[pixels] = peak >= self.settings.saturation_fraction * SATURATED_RATE
        return self._widen(full.reshape(br1 - br0, bc1 - bc0)).ravel()

    def _skip_targets(self, inseparable: np.ndarray) -> list[int]:
        """The task's skip targets: neighbours too close to be told from the target and,
        for a saturated target, the catalogued stars on its own saturated pixels and bleed
        columns (the saturated patches reaching its core; their own photometry would
        measure the target), anywhere on the stamp.
        """
        skip = {int(x) for x in inseparable}
        if self.n_saturated:
            with np.errstate(invalid="ignore"):
                full = self.target.sumimage >= self.settings.saturation_fraction * SATURATED_RATE
            patches, _ = ndimage.label(self._widen(full))
            h, w = self.target.stamp_shape
            row, col = self.target.stamp_position
            rr, cc = np.mgrid[0:h, 0:w]
            core = np.hypot(rr - row, cc - col) <= SATURATED_FIT_RADIUS
            own = np.isin(patches, np.unique(patches[core & (patches > 0)]))
            cat = self.target.catalog
            skip.update(skip_targets(own, cat["starid"], cat["row"], cat["column"], self.starid))
        skip.discard(self.starid)
        return sorted(skip)

    def _fit_pixels(self):
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
        region = self._fit_region()
        box = bounding_box(region)
        br0, br1, bc0, bc1 = box
        pixels = region[br0:br1, bc0:bc1].ravel()
        blocks = self.target.block_reader(box)
        typical, peak = self._pixel_statistics(blocks, pixels)
        saturated = self._saturated(box, pixels, peak)
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

    def _second_pass(self, first: FirstPass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The target's parameters with the other parameters at their smoothed first-pass
        values (see the module notes); the target's parameters, the flux error and the
        background offset. Without other parameters or smoothing (or where the smoothing
        has no value), the first pass's values.
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

    def do_photometry(self) -> STATUS:
        """Fit the target and its neighbours on every cadence."""
        s = self.settings
        box, pixels, blocks, typical = self._fit_pixels()
        br0, br1, bc0, bc1 = box
        box_origin = (self.target.stamp[0] + br0, self.target.stamp[2] + bc0)
        box_shape = (br1 - br0, bc1 - bc0)
        region = self.region
        idx, rows, cols, cat_flux, fitted, close = self._select_stars(
            pixels, box_origin, box_shape, typical
        )
        stars = self.target.source.stars
        node_rows, node_cols = stars.row[idx], stars.col[idx]
        n = self.target.source.time.size
        n_fit = int(fitted.sum())
        n_pix = int(pixels.sum())
        n_par = n_fit + int(s.linpsf.background)
        known = np.all(np.isfinite(rows) & np.isfinite(cols), axis=1)
        # A target whose saturated core is left out is fitted on its wings, whose light
        # depends steeply on its position: its shifts are fitted too (linearised).
        shifts = self.n_saturated > 0 and s.linpsf.fit_shifts
        kt = 3 if shifts else 1
        n_par = n_par + kt - 1
        # First pass: every parameter on every cadence (coefficients and covariance), and
        # what the second pass needs of the target's rows of the normal equations.
        first = FirstPass(n, n_par, kt)
        prepared_bkg = np.full(n, np.nan)
        shenanigans = np.zeros(n, dtype=bool)
        names = ("images", "images_err", "backgrounds", "pixel_flags")
        for t0, t1, cubes in blocks(names):
            flags = cubes["pixel_flags"][:, self.region]
            shenanigans[t0:t1] = (flags & PixelFlags.BackgroundShenanigans).any(axis=1)
            images = cubes["images"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            errors = cubes["images_err"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            backgrounds = cubes["backgrounds"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            prepared_bkg[t0:t1] = np.nansum(backgrounds, axis=1)
            for a in range(t0, t1, DESIGN_CADENCES):
                b = min(a + DESIGN_CADENCES, t1)
                use = np.flatnonzero(known[a:b]) + a
                if use.size == 0:
                    continue
                model = prf_images(
                    self.target.prf,
                    rows[use],
                    cols[use],
                    node_rows,
                    node_cols,
                    box_origin,
                    box_shape,
                )[:, :, pixels]
                data = images[use - t0] - np.einsum(
                    "nsp,s->np", model[:, ~fitted], cat_flux[~fitted]
                )
                parts = [model[:, fitted][:, :1]]
                if shifts:
                    derivatives = shift_images(
                        self.target.prf,
                        rows[use, 0],
                        cols[use, 0],
                        node_rows[0],
                        node_cols[0],
                        box_origin,
                        box_shape,
                    )
                    parts.append(derivatives[:, :, pixels])
                parts.append(model[:, fitted][:, 1:])
                if s.linpsf.background:
                    parts.append(np.ones((use.size, 1, n_pix)))
                design = np.concatenate(parts, axis=1)
                first.fit(use, design, data, errors[use - t0] ** 2)
        target, flux_err, offset = self._second_pass(first)
        flux = target[:, 0]
        flux_bkg = prepared_bkg + offset * n_pix
        centroid_row, centroid_col = self.target.row_t, self.target.col_t
        if shifts:
            # The shift coefficients are the flux times the shift [e-/s px].
            with np.errstate(invalid="ignore", divide="ignore"):
                centroid_row = self.target.row_t + target[:, 1] / flux
                centroid_col = self.target.col_t + target[:, 2] / flux
        coefs = first.coefs
        fluxes = np.concatenate([coefs[:, :1], coefs[:, kt : kt + n_fit - 1]], axis=1)
        self.final_mask = region
        quality = np.where(shenanigans, QUALITY_BACKGROUND_SHENANIGANS, 0).astype(np.int32)
        self.set_lightcurve(flux, flux_err, flux_bkg, quality, centroid_row, centroid_col)

        # -- crowding and neighbours -------------------------------------------------------
        mean_flux = cat_flux.copy()
        use = self.target.source.good & np.all(np.isfinite(fluxes), axis=1)
        if use.any():
            mean_flux[fitted] = fluxes[use].mean(axis=0)
        mean_rows, mean_cols = mean_positions(rows, cols, self.target.source.good)
        at_mean = prf_images(
            self.target.prf,
            mean_rows[None],
            mean_cols[None],
            node_rows,
            node_cols,
            box_origin,
            box_shape,
        )[0][:, pixels]
        others = at_mean[1:].T @ mean_flux[1:]
        total = others + mean_flux[0] * at_mean[0]
        weighted = float(at_mean[0] @ total)
        self.crowding = float(at_mean[0] @ others) / weighted if weighted > 0 else math.nan
        self.contamination = 0.0
        self.skip_targets = self._skip_targets(stars.starid[idx[close]])
        self.n_fitted = n_fit
        self.shifts_fitted = bool(shifts)
        self.method_keywords = {
            "PSF_CONT": (self.crowding, "PRF-weighted light of neighbours"),
            "PSF_NFIT": (n_fit, "stars fitted"),
            "PSF_NFIX": (int((~fitted).sum()), "neighbours subtracted at catalogue flux"),
            "PSF_NPIX": (n_pix, "pixels in the fit"),
            "PSF_NSAT": (self.n_saturated, "saturated pixels left out of the fit"),
            "PSF_NFST": (self.n_first_pass, "good cadences left at the first pass"),
            "PSF_SHFT": (bool(shifts), "target shifts fitted (saturated core left out)"),
            "PSF_PRF": (self.target.prf.short_name, "PRF model"),
        }
        if self.switch_reason:
            self.method_keywords["PSF_WHY"] = (
                self.switch_reason[:SWITCH_REASON_LENGTH],
                "automatic switch",
            )
        return STATUS.OK

    def aperture_image(self) -> np.ndarray:
        """``APERTURE`` bits: collected pixels, the fit region as photometric mask, CCD
        output.
        """
        return aperture_image(
            self.target.stamp_shape,
            self.target.stamp_origin,
            collected=np.isfinite(self.target.sumimage),
            photometric=self.region,
        )
