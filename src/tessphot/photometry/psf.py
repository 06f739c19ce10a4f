"""PSF photometry: the fluxes *and the positions* of the target and its neighbours fitted.

Fitted with the PRF (nonlinear least squares), for stars whose catalogue position is poor or
that move. It shares linear PSF photometry's engine
(:class:`tessphot.photometry.linpsf_engine.LinPSFEngine`): its fit region and choice of
stars (the ``linpsf`` settings) and, with offsets over the whole data, its two passes:

1. **Stars and positions.** Every star is at its catalogue position moved by the jitter
   model, cadence by cadence. The target and its brightest fitted neighbours (those putting
   at least ``offset_light`` of the target's light on the region, at most
   ``max_offset_stars`` stars) get an *offset* from that position fitted over the whole
   data: a constant plus, with ``drift``, a drift linear in time (a poor catalogue
   position, an unknown proper motion). With ``positions = "cadence"`` the target also
   gets its own offset on every cadence on top (a star that moves in ways the jitter model
   does not describe). The other stars stay where the catalogue and the jitter model put
   them.
2. **Fit.** Fluxes are linear, positions are not: for given positions, the fluxes of the
   fitted stars and a local background (``linpsf.background``) of every cadence follow by
   weighted linear least squares, and the positions minimise the chi-square with the fluxes
   so profiled out (variable projection). Levenberg-Marquardt on the positions: the
   Gauss-Newton step comes from the Schur complement of the normal equations, the per-cadence
   fluxes eliminated, summed over the cadences; all cadences of a batch at once. The PRF
   images' derivatives are central differences over one sample of the PRF tables (1/9 px,
   over which the tables are interpolated linearly). The offsets over the whole data are
   fitted on at most ``fit_cadences`` good cadences; the per-cadence offsets
   cadence by cadence (each with its own damping), in batches.
3. **Guards.** An offset may not exceed ``max_offset`` at any time of the data. A fit
   over the whole data that runs into that bound or does not converge in
   ``max_iterations`` is abandoned: the catalogue positions are used (the fluxes are
   then linear PSF photometry's), a WARNING says why, and the task's status is WARNING.
   Cadences whose own offset fit fails the same way keep the offsets over the whole data
   (counted in ``PSF_NBAD``, with a WARNING).
4. **Output.** The flux is the target's fitted flux [e-/s, all its light]; its error the
   square root of the covariance's diagonal element, marginalised over the target's
   per-cadence offset where it is fitted. (The uncertainty of the offsets over the whole
   data, fitted on hundreds of cadences, is a tiny error common to all cadences, not
   noise: it is left out.) The centroid columns hold the target's fitted position, cadence by
   cadence. Background column, contamination (0) and crowding figure (``PSF_CONT``) as in
   linear PSF photometry, at the fitted positions and mean fitted fluxes. The headers give
   the target's fitted offset (``PSF_DROW``, ``PSF_DCOL`` at the time ``PSF_TREF``, with
   their errors ``PSF_EROW``, ``PSF_ECOL``) and drift (``PSF_VROW``, ``PSF_VCOL``), whether
   the fit converged (``PSF_CONV``) and in how many iterations (``PSF_NIT``).
5. **Goodness of fit.** Each cadence's chi-square of the flux fit at the fitted positions
   (per-cadence offsets included) against its degrees of freedom, summarised over the good
   cadences (``PRFCHI2``, :mod:`tessphot.photometry.goodness`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from tessphot.photometry.linpsf_engine import (
    LinPSFEngine,
    StarSelection,
    mean_fitted_fluxes,
    prf_crowding,
)
from tessphot.photometry.method import PhotometryMethod
from tessphot.photometry.psf_fluxes import FitTimes, fit_fluxes
from tessphot.photometry.psf_offsets import (
    BOUND_FRACTION,
    OffsetFit,
    _Scene,
    _weights,
    fit_offsets,
)
from tessphot.photometry.scene import mean_positions
from tessphot.tasks.status import STATUS

logger = logging.getLogger(__name__)


class PSFPhotometry(PhotometryMethod):
    """PSF photometry of one target: fluxes and positions fitted (see the module notes)."""

    method = "psf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine = LinPSFEngine(self.target, self.settings)
        #: PRF-weighted fraction of the neighbours' light under the target (``PSF_CONT``).
        self.crowding = math.nan
        self.n_fitted = 0
        #: The fit of the offsets over the whole data.
        self.offset_fit: OffsetFit | None = None
        #: Cadences whose own offset fit failed (``positions = "cadence"``).
        self.failed_cadences = 0

    @property
    def n_saturated(self) -> int:
        """Pixels of the fit region left out as saturated."""
        return self.engine.n_saturated

    def _offset_stars(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        idx: np.ndarray,
        cat_flux: np.ndarray,
        fitted: np.ndarray,
        box_origin: tuple[int, int],
        box_shape: tuple[int, int],
        pixels: np.ndarray,
    ) -> np.ndarray:
        """The stars whose offsets are fitted (indices into the selected stars, the target first).

        The fitted ones putting at least ``offset_light`` of the target's light
        on the region and at least ``offset_coverage`` of their own (their position is
        constrained), the brightest there first, at most ``max_offset_stars``.
        """
        s = self.settings
        stars = self.target.source.stars
        mean_rows, mean_cols = mean_positions(
            rows, cols, self.target.source.good, stars.row[idx], stars.col[idx]
        )
        images = self.engine.prf_at(mean_rows, mean_cols, idx, box_origin, box_shape, pixels)
        coverage = images.sum(axis=1)
        light = cat_flux * coverage
        chosen = [0]
        for j in np.argsort(-light, kind="stable"):
            if len(chosen) >= s.psf.max_offset_stars:
                break
            if (
                j != 0
                and fitted[j]
                and light[j] >= s.psf.offset_light * light[0]
                and coverage[j] >= s.psf.offset_coverage
            ):
                chosen.append(int(j))
        return np.asarray(chosen, dtype=int)

    def _fit_cadence_subset(self, known: np.ndarray) -> np.ndarray:
        """The good cadences with known positions the offsets are fitted on.

        At most ``fit_cadences``, evenly spread.
        """
        usable = np.flatnonzero(self.target.source.good & known)
        limit = max(int(self.settings.psf.fit_cadences), 1)
        if usable.size > limit:
            usable = usable[np.unique(np.linspace(0, usable.size - 1, limit).round().astype(int))]
        return usable

    @staticmethod
    def _read_pixels(
        blocks: Callable, pixels: np.ndarray, cadences: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images and errors of the region on some cadences, (len(cadences), n_pixels)."""
        images = np.empty((cadences.size, int(pixels.sum())))
        errors = np.empty_like(images)
        for t0, t1, cubes in blocks(("images", "images_err")):
            inside = np.flatnonzero((cadences >= t0) & (cadences < t1))
            if inside.size:
                local = cadences[inside] - t0
                images[inside] = cubes["images"].reshape(t1 - t0, -1)[local][:, pixels]
                errors[inside] = cubes["images_err"].reshape(t1 - t0, -1)[local][:, pixels]
        return images, errors

    def _fit_positions(
        self,
        scene: _Scene,
        blocks: Callable,
        known: np.ndarray,
        tau: np.ndarray,
        tau_range: tuple[float, float],
        idx: np.ndarray,
    ) -> tuple[_Scene, OffsetFit]:
        """Fit the offsets over the whole data, dropping what runs away.

        A neighbour whose offset runs into ``max_offset`` stays at its catalogue
        position and the fit is done again without it; a fit with neighbours that does not
        converge, or whose target runs into the bound, is done again for the target alone;
        when that fails too, the fit is abandoned (offsets 0, :attr:`OffsetFit.problem`
        says why).

        Returns
        -------
        scene : _Scene
            With the stars whose offsets were kept.
        fit : OffsetFit
        """
        s = self.settings
        bound = float(s.psf.max_offset)
        subset = self._fit_cadence_subset(known)
        if subset.size == 0:
            q = 1
            scene = replace(scene, n_offset=q)
            n_par = 2 * q * (2 if s.psf.drift else 1)
            empty = OffsetFit(
                np.zeros((q, 2)), np.zeros((q, 2)), np.zeros((n_par, n_par)), False, 0, np.zeros(q)
            )
            return scene, empty.abandoned("no good cadence with a known position to fit on")
        data, weight = _weights(*self._read_pixels(blocks, scene.pixels, subset))
        while True:
            fit = fit_offsets(
                scene,
                subset,
                data,
                weight,
                tau[subset],
                tau_range,
                drift=bool(s.psf.drift),
                bound=bound,
                tolerance=float(s.psf.tolerance),
                max_iterations=int(s.psf.max_iterations),
            )
            at_bound = fit.largest >= BOUND_FRACTION * bound
            if fit.converged and not at_bound.any():
                return scene, fit
            if scene.n_offset == 1:
                if not fit.converged:
                    problem = f"the position fit did not converge in {fit.iterations} iterations"
                else:
                    problem = (
                        f"the position fit ran into the bound psf_max_offset = {bound:g} px "
                        f"(an offset of {fit.largest[0]:.2f} px)"
                    )
                return scene, fit.abandoned(problem)
            if at_bound[1:].any():
                keep = np.flatnonzero(~at_bound | (np.arange(at_bound.size) == 0))
                starids = self.target.source.stars.starid[idx[scene.offset_stars[at_bound]]]
                logger.info(
                    "TIC %d: the offsets of neighbour(s) TIC %s ran into psf_max_offset; "
                    "they stay at their catalogue positions",
                    self.starid,
                    ", ".join(str(int(x)) for x in starids),
                )
            else:
                keep = np.array([0])
                logger.info(
                    "TIC %d: the position fit with neighbours failed; fitting the target's "
                    "offset alone",
                    self.starid,
                )
            offset_stars = scene.offset_stars[keep]
            rest = np.setdiff1d(scene.fit_order, offset_stars, assume_unique=True)
            order = np.concatenate([offset_stars, rest])
            scene = replace(scene, fit_order=order, n_offset=offset_stars.size)

    def _scene(self, sel: StarSelection) -> _Scene:
        """The fit's stars, those with fitted offsets first."""
        stars = self.target.source.stars
        offset_stars = self._offset_stars(
            sel.rows,
            sel.cols,
            sel.idx,
            sel.cat_flux,
            sel.fitted,
            sel.box_origin,
            sel.box_shape,
            sel.pixels,
        )
        others = np.flatnonzero(sel.fitted & ~np.isin(np.arange(sel.idx.size), offset_stars))
        halos = self.target.halos
        return _Scene(
            prf=self.target.prf,
            rows=sel.rows,
            cols=sel.cols,
            node_rows=stars.row[sel.idx],
            node_cols=stars.col[sel.idx],
            origin=sel.box_origin,
            shape=sel.box_shape,
            pixels=sel.pixels,
            cat_flux=sel.cat_flux,
            fit_order=np.concatenate([offset_stars, others]),
            fixed=np.flatnonzero(~sel.fitted),
            n_offset=offset_stars.size,
            background=bool(self.settings.linpsf.background),
            halo_shape=None if halos is None else halos.shape,
            halo=self.target.halo_shares(sel.idx),
        )

    def _times(self, sel: StarSelection) -> FitTimes:
        """The cadences with known positions and the time axis of the offsets."""
        time = self.target.source.time
        known = np.all(np.isfinite(sel.rows) & np.isfinite(sel.cols), axis=1) & np.isfinite(time)
        reference = self.target.source.good & known
        tref = float(np.mean(time[reference if reference.any() else known])) if known.any() else 0.0
        tau = np.where(known, time - tref, 0.0)
        tau_range = (float(tau[known].min()), float(tau[known].max())) if known.any() else (0, 0)
        return FitTimes(known, tref, tau, tau_range)

    def do_photometry(self) -> STATUS:
        """Fit the positions, then the fluxes of every cadence."""
        s = self.settings
        engine = self.engine
        sel = engine.select()
        times = self._times(sel)

        # -- the offsets over the whole data -----------------------------------------------
        scene, fit = self._fit_positions(
            self._scene(sel), sel.blocks, times.known, times.tau, times.tau_range, sel.idx
        )
        self.offset_fit = fit
        status = STATUS.OK
        if fit.problem:
            logger.warning(
                "TIC %d: %s; the fluxes are fitted at the catalogue positions",
                self.starid,
                fit.problem,
            )
            status = STATUS.WARNING

        # -- the fluxes of every cadence ------------------------------------------------------
        out = fit_fluxes(self.engine, sel, scene, fit, times)
        self.failed_cadences = int(out.failed.sum())
        if self.failed_cadences:
            logger.warning(
                "TIC %d: the per-cadence position fit failed on %d of %d cadences (no "
                "convergence or an offset beyond psf_max_offset = %g px); their fluxes are "
                "at the positions fitted over the whole data",
                self.starid,
                self.failed_cadences,
                int(times.known.sum()),
                s.psf.max_offset,
            )
            status = STATUS.WARNING
        self.final_mask = engine.region
        centroid = out.centroid
        self.set_lightcurve(
            out.flux, out.flux_err, out.flux_bkg, engine.quality(), centroid[:, 0], centroid[:, 1]
        )
        self.goodness = out.goodness.summary(self.target.source.good)

        # -- crowding and neighbours -------------------------------------------------------
        fit_rows, fit_cols = sel.rows.copy(), sel.cols.copy()
        all_row, all_col = fit.at(times.tau)
        fit_rows[:, scene.offset_stars] += all_row
        fit_cols[:, scene.offset_stars] += all_col
        fit_rows[:, 0], fit_cols[:, 0] = centroid[:, 0], centroid[:, 1]
        self.crowding = self._crowding(scene, fit_rows, fit_cols, out.fluxes)
        self.contamination = 0.0
        stars = self.target.source.stars
        self.skip_targets = engine.task_skip_targets(stars.starid[sel.idx[sel.close]])
        self.n_fitted = sel.n_fit
        self.method_keywords = self._header_cards(sel, scene.n_offset, fit, times.tref)
        return status

    def _header_cards(
        self, sel: StarSelection, q: int, fit: OffsetFit, tref: float
    ) -> dict[str, tuple[Any, str]]:
        """The header cards of the fit."""
        errors_rc = fit.errors() if fit.converged else np.full((q, 2), np.nan)
        return {
            **self.engine.header_cards(self.crowding, sel.fitted, sel.n_pix),
            "PSF_PRF": (self.target.prf.short_name, "PRF model"),
            "PSF_POS": (self.settings.psf.positions, "positions fitted: sector or cadence"),
            "PSF_NPOS": (q, "stars with fitted offsets"),
            "PSF_TREF": (tref, "[BTJD] reference time of the offsets"),
            "PSF_DROW": (float(fit.offsets[0, 0]), "[px] target row offset from catalogue"),
            "PSF_DCOL": (float(fit.offsets[0, 1]), "[px] target column offset"),
            "PSF_EROW": (float(errors_rc[0, 0]), "[px] error of PSF_DROW"),
            "PSF_ECOL": (float(errors_rc[0, 1]), "[px] error of PSF_DCOL"),
            "PSF_VROW": (float(fit.drifts[0, 0]), "[px/d] target row drift"),
            "PSF_VCOL": (float(fit.drifts[0, 1]), "[px/d] target column drift"),
            "PSF_CONV": (bool(fit.converged), "position fit converged"),
            "PSF_NIT": (int(fit.iterations), "position fit iterations"),
            "PSF_NBAD": (self.failed_cadences, "cadences whose position fit failed"),
        }

    def _crowding(
        self, scene: _Scene, rows: np.ndarray, cols: np.ndarray, fluxes: np.ndarray
    ) -> float:
        """``PSF_CONT``: the neighbours' mean light weighted by the target's PRF over the total.

        The total so weighted; fitted stars at their mean fitted flux and position.
        """
        good = self.target.source.good
        mean_flux = mean_fitted_fluxes(scene.cat_flux, scene.fit_order, fluxes, good)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_rows, mean_cols = mean_positions(rows, cols, good)
        if not np.all(np.isfinite(mean_rows) & np.isfinite(mean_cols)):
            return math.nan
        return prf_crowding(
            scene.prf,
            mean_rows,
            mean_cols,
            scene.node_rows,
            scene.node_cols,
            scene.origin,
            scene.shape,
            scene.pixels,
            mean_flux,
        )

    def aperture_image(self) -> np.ndarray:
        """``APERTURE`` bits: collected pixels, the fit region as photometric mask, CCD output."""
        return self.engine.aperture_image()
