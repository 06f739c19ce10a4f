"""Linear PSF photometry: the target's and its neighbours' fluxes by weighted linear least squares.

Cadence by cadence (§5.13 of the notes, made to work); the engine, shared with PSF
photometry, is :class:`tessphot.photometry.linpsf_engine.LinPSFEngine`.

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
6. **Goodness of fit.** Each cadence's chi-square of the first pass (every parameter
   free) against its degrees of freedom, summarised over the good cadences
   (``PRFCHI2``, :mod:`tessphot.photometry.goodness`): about 1 where the PRF describes the
   target.
7. **Contamination.** The neighbours are fitted out of the flux, so the light curve's
   contamination (the diagnostics' ``contamination``, which downstream corrections
   subtract) is 0. How crowded the target is goes into ``PSF_CONT`` as the original
   defined it: the neighbours' mean light weighted by the target's PRF over the total so
   weighted (fitted neighbours at their mean fitted flux, fixed ones at their catalogue
   flux).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tessphot.photometry.linpsf_engine import (
    LinPSFEngine,
    RegionBlock,
    StarSelection,
    mean_fitted_fluxes,
    prf_crowding,
)
from tessphot.photometry.linpsf_solve import DESIGN_CADENCES, FirstPass, shift_images
from tessphot.photometry.method import SWITCH_REASON_LENGTH, PhotometryMethod
from tessphot.photometry.scene import mean_positions
from tessphot.prf import prf_images
from tessphot.prf.star_halo import images_with_halos
from tessphot.tasks.status import STATUS


class LinPSFPhotometry(PhotometryMethod):
    """Linear PSF photometry of one target (see the module notes)."""

    method = "linpsf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine = LinPSFEngine(self.target, self.settings)
        #: PRF-weighted fraction of the neighbours' light under the target (``PSF_CONT``).
        self.crowding = math.nan
        self.n_fitted = 0
        #: Whether the target's shifts were fitted (a saturated core left out: ``PSF_SHFT``).
        self.shifts_fitted = False

    @property
    def n_saturated(self) -> int:
        """Pixels of the fit region left out as saturated."""
        return self.engine.n_saturated

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

    def _design(
        self,
        sel: StarSelection,
        block: RegionBlock,
        use: np.ndarray,
        shifts: bool,
        halo: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The design matrices and the data (fixed stars subtracted) of some cadences.

        ``halo``: the stars' halo shares (:meth:`Target.halo_shares`; None: no halos).
        """
        s = self.settings
        stars = self.target.source.stars
        node_rows, node_cols = stars.row[sel.idx], stars.col[sel.idx]
        fitted = sel.fitted
        model = prf_images(
            self.target.prf,
            sel.rows[use],
            sel.cols[use],
            node_rows,
            node_cols,
            sel.box_origin,
            sel.box_shape,
            cadences=use,
        )[:, :, sel.pixels]
        if halo is not None:
            model = images_with_halos(
                model, halo, self.target.halos.shape, sel.rows[use], sel.cols[use],
                sel.box_origin, sel.box_shape, sel.pixels,
            )  # fmt: skip
        data = block.images[use - block.t0] - np.einsum(
            "nsp,s->np", model[:, ~fitted], sel.cat_flux[~fitted]
        )
        parts = [model[:, fitted][:, :1]]
        if shifts:
            derivatives = shift_images(
                self.target.prf,
                sel.rows[use, 0],
                sel.cols[use, 0],
                node_rows[0],
                node_cols[0],
                sel.box_origin,
                sel.box_shape,
                cadences=use,
            )
            parts.append(derivatives[:, :, sel.pixels])
        parts.append(model[:, fitted][:, 1:])
        if s.linpsf.background:
            parts.append(np.ones((use.size, 1, sel.n_pix)))
        return np.concatenate(parts, axis=1), data

    def _first_pass(self, sel: StarSelection, shifts: bool) -> FirstPass:
        """The first pass: every parameter on every cadence (coefficients and covariance).

        And what the second pass needs of the target's rows of the normal equations.
        """
        kt = 3 if shifts else 1
        n_par = sel.n_fit + int(self.settings.linpsf.background) + kt - 1
        first = FirstPass(self.target.source.time.size, n_par, kt)
        known = np.all(np.isfinite(sel.rows) & np.isfinite(sel.cols), axis=1)
        halo = self.target.halo_shares(sel.idx)
        for block in self.engine.region_blocks(sel.blocks, sel.pixels):
            for a in range(block.t0, block.t1, DESIGN_CADENCES):
                b = min(a + DESIGN_CADENCES, block.t1)
                use = np.flatnonzero(known[a:b]) + a
                if use.size == 0:
                    continue
                design, data = self._design(sel, block, use, shifts, halo)
                first.fit(use, design, data, block.errors[use - block.t0] ** 2)
        return first

    def do_photometry(self) -> STATUS:
        """Fit the target and its neighbours on every cadence."""
        engine = self.engine
        sel = engine.select()
        # A target whose saturated core is left out is fitted on its wings, whose light
        # depends steeply on its position: its shifts are fitted too (linearised).
        shifts = engine.n_saturated > 0 and self.settings.linpsf.fit_shifts
        kt = 3 if shifts else 1
        first = self._first_pass(sel, shifts)
        target, flux_err, offset = engine.second_pass(first)
        flux = target[:, 0]
        flux_bkg = engine.prepared_bkg + offset * sel.n_pix
        centroid_row, centroid_col = self.target.row_t, self.target.col_t
        if shifts:
            # The shift coefficients are the flux times the shift [e-/s px].
            with np.errstate(invalid="ignore", divide="ignore"):
                centroid_row = self.target.row_t + target[:, 1] / flux
                centroid_col = self.target.col_t + target[:, 2] / flux
        coefs = first.coefs
        fluxes = np.concatenate([coefs[:, :1], coefs[:, kt : kt + sel.n_fit - 1]], axis=1)
        self.final_mask = engine.region
        self.set_lightcurve(flux, flux_err, flux_bkg, engine.quality(), centroid_row, centroid_col)
        self.goodness = first.goodness.summary(self.target.source.good)

        # -- crowding and neighbours -------------------------------------------------------
        stars = self.target.source.stars
        good = self.target.source.good
        mean_flux = mean_fitted_fluxes(sel.cat_flux, sel.fitted, fluxes, good)
        mean_rows, mean_cols = mean_positions(sel.rows, sel.cols, good)
        self.crowding = prf_crowding(
            self.target.prf,
            mean_rows,
            mean_cols,
            stars.row[sel.idx],
            stars.col[sel.idx],
            sel.box_origin,
            sel.box_shape,
            sel.pixels,
            mean_flux,
        )
        self.contamination = 0.0
        self.skip_targets = engine.task_skip_targets(stars.starid[sel.idx[sel.close]])
        self.n_fitted = sel.n_fit
        self.shifts_fitted = bool(shifts)
        self.method_keywords = {
            **engine.header_cards(self.crowding, sel.fitted, sel.n_pix),
            "PSF_NFST": (engine.n_first_pass, "good cadences left at the first pass"),
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
        """``APERTURE`` bits: collected pixels, the fit region as photometric mask, CCD output."""
        return self.engine.aperture_image()
