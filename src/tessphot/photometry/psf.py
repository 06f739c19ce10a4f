"""PSF photometry: the fluxes *and the positions* of the target and its bright neighbours
fitted with the PRF (nonlinear least squares), for stars whose catalogue position is poor or
that move.

It extends linear PSF photometry (:mod:`tessphot.photometry.linpsf`), whose fit region and
choice of stars it shares (the ``linpsf_*`` settings):

1. **Stars and positions.** Every star is at its catalogue position moved by the jitter
   model, cadence by cadence. The target and its brightest fitted neighbours (those putting
   at least ``psf_offset_light`` of the target's light on the region, at most
   ``psf_max_offset_stars`` stars) get an *offset* from that position fitted over the whole
   data: a constant plus, with ``psf_drift``, a drift linear in time (a poor catalogue
   position, an unknown proper motion). With ``psf_positions = "cadence"`` the target also
   gets its own offset on every cadence on top (a star that moves in ways the jitter model
   does not describe). The other stars stay where the catalogue and the jitter model put
   them.
2. **Fit.** Fluxes are linear, positions are not: for given positions, the fluxes of the
   fitted stars and a local background (``linpsf_background``) of every cadence follow by
   weighted linear least squares, and the positions minimise the chi-square with the fluxes
   so profiled out (variable projection). Levenberg-Marquardt on the positions: the
   Gauss-Newton step comes from the Schur complement of the normal equations, the per-cadence
   fluxes eliminated, summed over the cadences; all cadences of a batch at once. The PRF
   images' derivatives are central differences over one sample of the PRF tables (1/9 px,
   over which the tables are interpolated linearly). The offsets over the whole data are
   fitted on at most ``psf_fit_cadences`` good cadences; the per-cadence offsets
   cadence by cadence (each with its own damping), in batches.
3. **Guards.** An offset may not exceed ``psf_max_offset`` at any time of the data. A fit
   over the whole data that runs into that bound or does not converge in
   ``psf_max_iterations`` is abandoned: the catalogue positions are used (the fluxes are
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
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tessphot.photometry.errors import PhotometryError
from tessphot.photometry.linpsf import (
    DESIGN_CADENCES,
    RCOND,
    FirstPass,
    LinPSFPhotometry,
    weighted_normal,
)
from tessphot.photometry.method import QUALITY_BACKGROUND_SHENANIGANS
from tessphot.photometry.scene import mean_positions
from tessphot.prepare.flags import PixelFlags
from tessphot.prf import OVERSAMPLE, PRFModel, prf_images
from tessphot.tasks.status import STATUS

logger = logging.getLogger(__name__)

#: What ``psf_positions`` may be.
POSITION_MODELS = ("sector", "cadence")
#: Step of the central differences of the PRF images [px]: one sample of the PRF tables, over
#: which they are interpolated linearly (a smaller step would see the kinks between samples).
DERIVATIVE_STEP = 1.0 / OVERSAMPLE
#: Levenberg-Marquardt damping at the start, ...
LM_LAMBDA_START = 1e-3
#: ... its factor down after an accepted step and up after a rejected one, ...
LM_LAMBDA_FACTOR = 10.0
#: ... and its largest value: a fit whose damping reaches it finds no step that lowers the
#: chi-square, it sits in its minimum (converged).
LM_LAMBDA_MAX = 1e8
#: A fit ending within this fraction of ``psf_max_offset`` has run into the bound.
BOUND_FRACTION = 0.95
#: Bisections of a star's step that would take it beyond the bound (it then stops within
#: 2**-20 of its step from the bound).
BOUND_BISECTIONS = 20
#: Images per star in :meth:`_Scene.derivatives`: the image and its four shifted copies.
DERIVATIVE_IMAGES = 5


# --------------------------------------------------------------------------------------------
# Least-squares pieces (batched over cadences)


def profile_fluxes(
    design: np.ndarray, data: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The linear parameters of a batch of weighted least-squares problems.

    Parameters
    ----------
    design : ndarray, shape (n, k, p)
        ``k`` model images over ``p`` pixels per problem.
    data : ndarray, shape (n, p)
        Data (finite where the weight is positive).
    weight : ndarray, shape (n, p)
        Inverse variance of each pixel (0: left out).

    Returns
    -------
    coef : ndarray, shape (n, k)
        Best-fit coefficients.
    inverse : ndarray, shape (n, k, k)
        Inverse of the normal matrix (the coefficients' covariance).
    resid : ndarray, shape (n, p)
        Data minus model.
    chi2 : ndarray, shape (n,)
        Weighted sum of the squared residuals.
    """
    normal, rhs, _ = weighted_normal(design, data, weight)
    inverse = np.linalg.pinv(normal, rcond=RCOND, hermitian=True)
    coef = np.einsum("nkl,nl->nk", inverse, rhs)
    resid = data - np.einsum("nkp,nk->np", design, coef)
    chi2 = np.einsum("np,np->n", weight, resid**2)
    return coef, inverse, resid, chi2


def position_normal(
    design: np.ndarray,
    inverse: np.ndarray,
    jacobian: np.ndarray,
    weight: np.ndarray,
    resid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Gauss-Newton normal equations of nonlinear parameters with the linear ones
    eliminated (their Schur complement), per problem.

    Parameters
    ----------
    design, inverse
        The linear problems' model images (n, k, p) and inverse normal matrices (n, k, k)
        (:func:`profile_fluxes`).
    jacobian : ndarray, shape (n, g, p)
        Derivatives of the model images (at the fitted coefficients) with respect to ``g``
        nonlinear parameters.
    weight, resid : ndarray, shape (n, p)
        Inverse variances and residuals at the best-fit coefficients.

    Returns
    -------
    sensitivity : ndarray, shape (n, k, g)
        ``inverse @ B`` with ``B`` the linear-nonlinear block of the normal matrix: minus the
        change of the coefficients with the nonlinear parameters.
    schur : ndarray, shape (n, g, g)
        The normal matrix of the nonlinear parameters with the linear ones eliminated.
    gradient : ndarray, shape (n, g)
        ``jacobian`` times the weighted residuals (the right-hand side of the step).
    """
    jw = jacobian * weight[:, None, :]
    coupling = design @ jw.transpose(0, 2, 1)
    own = jacobian @ jw.transpose(0, 2, 1)
    sensitivity = inverse @ coupling
    schur = own - coupling.transpose(0, 2, 1) @ sensitivity
    gradient = np.einsum("ngp,np->ng", jw, resid)
    return sensitivity, schur, gradient


def damped_step(schur: np.ndarray, gradient: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Levenberg-Marquardt steps ``(S + lam diag S)^-1 g`` of a batch (n, g, g), (n, g), (n,)."""
    diagonal = np.diagonal(schur, axis1=-2, axis2=-1)
    damped = schur + lam[:, None, None] * (diagonal[:, :, None] * np.eye(schur.shape[-1]))
    return np.einsum("ngh,nh->ng", np.linalg.pinv(damped, rcond=RCOND), gradient)


def _weights(data: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data with unusable pixels zeroed, and inverse variances (0 where unusable)."""
    ok = np.isfinite(data) & np.isfinite(errors) & (errors > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(ok, 1.0 / errors**2, 0.0)
    return np.where(ok, data, 0.0), weight


def _batches(n: int) -> Iterator[slice]:
    """Slices of at most :data:`DESIGN_CADENCES` cadences."""
    for a in range(0, n, DESIGN_CADENCES):
        yield slice(a, min(a + DESIGN_CADENCES, n))


# --------------------------------------------------------------------------------------------
# The scene


@dataclass(frozen=True)
class _Scene:
    """The stars of one fit on the fit region: positions, roles and PRF images."""

    prf: PRFModel
    #: Positions per cadence from the catalogue and the jitter model, (n_cadences, n_stars).
    rows: np.ndarray
    cols: np.ndarray
    #: Catalogue positions (the PRF shape of each star).
    node_rows: np.ndarray
    node_cols: np.ndarray
    #: Science-area origin and shape of the box around the region, and the region on it.
    origin: tuple[int, int]
    shape: tuple[int, int]
    pixels: np.ndarray
    #: Catalogue fluxes [e-/s].
    cat_flux: np.ndarray
    #: The fitted stars in the order of the design: the stars with fitted offsets first (the
    #: target first), then the others.
    fit_order: np.ndarray
    #: Stars subtracted at their catalogue flux.
    fixed: np.ndarray
    #: Stars with fitted offsets (the first ``n_offset`` of ``fit_order``).
    n_offset: int
    #: A constant background is fitted on every cadence.
    background: bool

    @property
    def offset_stars(self) -> np.ndarray:
        return self.fit_order[: self.n_offset]

    def images(
        self, t: np.ndarray, stars: np.ndarray, d_row: Any = 0.0, d_col: Any = 0.0
    ) -> np.ndarray:
        """PRF images (len(t), len(stars), n_pixels) of stars moved by (d_row, d_col) [px]."""
        rows = self.rows[np.ix_(t, stars)] + d_row
        cols = self.cols[np.ix_(t, stars)] + d_col
        return prf_images(
            self.prf,
            rows,
            cols,
            self.node_rows[stars],
            self.node_cols[stars],
            self.origin,
            self.shape,
        )[:, :, self.pixels]

    def derivatives(
        self, t: np.ndarray, stars: np.ndarray, d_row: np.ndarray, d_col: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PRF images of stars moved by (d_row, d_col) (len(t), len(stars)) [px] and their
        derivatives along rows and columns (central differences), each (len(t),
        len(stars), n_pixels)."""
        h = DERIVATIVE_STEP
        rows = self.rows[np.ix_(t, stars)] + d_row
        cols = self.cols[np.ix_(t, stars)] + d_col
        images = prf_images(
            self.prf,
            np.concatenate([rows, rows + h, rows - h, rows, rows], axis=1),
            np.concatenate([cols, cols, cols, cols + h, cols - h], axis=1),
            np.tile(self.node_rows[stars], DERIVATIVE_IMAGES),
            np.tile(self.node_cols[stars], DERIVATIVE_IMAGES),
            self.origin,
            self.shape,
        )[:, :, self.pixels]
        image, up, down, right, left = np.split(images, DERIVATIVE_IMAGES, axis=1)
        return image, (up - down) / (2 * h), (right - left) / (2 * h)

    def static(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What does not move in the fits: the light of the fixed stars at their catalogue
        fluxes (len(t), n_pixels), and the images of the fitted stars without offsets
        (len(t), n_fitted - n_offset, n_pixels)."""
        n_pix = int(self.pixels.sum())
        fixed = np.zeros((t.size, n_pix))
        if self.fixed.size:
            fixed = np.einsum("nsp,s->np", self.images(t, self.fixed), self.cat_flux[self.fixed])
        return fixed, self.images(t, self.fit_order[self.n_offset :])

    def design(self, moving: np.ndarray, static: np.ndarray) -> np.ndarray:
        """The design of the linear fit: moving and static images, and the background."""
        parts = [moving, static]
        if self.background:
            parts.append(np.ones((moving.shape[0], 1, moving.shape[2])))
        return np.concatenate(parts, axis=1)


def _offset_jacobian(
    fluxes: np.ndarray, d_row: np.ndarray, d_col: np.ndarray, tau: np.ndarray | None
) -> np.ndarray:
    """Derivatives of the model with respect to the offsets (and drifts, when ``tau`` is
    given) of the offset stars: (n, 2 n_offset [x 2], n_pixels), ordered as
    :attr:`OffsetFit.parameters`."""
    n, q, p = d_row.shape
    jac = np.stack([d_row, d_col], axis=2) * fluxes[:, :, None, None]
    jac = jac.reshape(n, 2 * q, p)
    if tau is not None:
        jac = np.concatenate([jac, jac * tau[:, None, None]], axis=1)
    return jac


# --------------------------------------------------------------------------------------------
# The offsets over the whole data


@dataclass
class OffsetFit:
    """The offsets of the stars with fitted positions from their catalogue positions (plus
    the jitter model), over the whole data."""

    #: Offsets (n_offset, 2) [px] (row, column) at the reference time.
    offsets: np.ndarray
    #: Drifts (n_offset, 2) [px/d] (0 without ``psf_drift``).
    drifts: np.ndarray
    #: Covariance of :attr:`parameters`.
    covariance: np.ndarray
    #: The fit converged (a step below the tolerance, or no step lowers the chi-square).
    converged: bool
    #: Levenberg-Marquardt steps tried (each a pass over the cadences).
    iterations: int
    #: Largest distance of each star from its catalogue position over the data [px].
    largest: np.ndarray
    #: Why the fit was abandoned ("" when it was not; else the offsets are 0).
    problem: str = ""

    @property
    def parameters(self) -> np.ndarray:
        """Offsets (row, column per star), then drifts, as one vector."""
        return np.concatenate([self.offsets.ravel(), self.drifts.ravel()])

    def errors(self) -> np.ndarray:
        """Standard errors (n_offset, 2) of :attr:`offsets` [px]."""
        q = self.offsets.shape[0]
        diagonal = np.diagonal(self.covariance)[: 2 * q]
        return np.sqrt(np.clip(diagonal, 0.0, None)).reshape(q, 2)

    def at(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column offsets (len(tau), n_offset) at times ``tau`` from the reference
        [d]."""
        tau = np.asarray(tau, dtype=float)[:, None]
        return (
            self.offsets[None, :, 0] + tau * self.drifts[None, :, 0],
            self.offsets[None, :, 1] + tau * self.drifts[None, :, 1],
        )

    def abandoned(self, problem: str) -> OffsetFit:
        """The fit given up for a reason: offsets and drifts 0, not converged."""
        zero = np.zeros_like(self.offsets)
        covariance = np.full_like(self.covariance, np.nan)
        return OffsetFit(
            zero, zero.copy(), covariance, False, self.iterations, self.largest, problem
        )


def _largest_offsets(
    offsets: np.ndarray, drifts: np.ndarray, tau_range: tuple[float, float]
) -> np.ndarray:
    """Largest distance [px] of each star from its catalogue position over the data (the
    offsets are linear in time: the extremes are at the ends)."""
    ends = [np.hypot(*(offsets + tau * drifts).T) for tau in tau_range]
    return np.max(ends, axis=0)


def _within_bound(
    offsets: np.ndarray,
    drifts: np.ndarray,
    step_offsets: np.ndarray,
    step_drifts: np.ndarray,
    tau_range: tuple[float, float],
    bound: float,
) -> np.ndarray:
    """Factors (n_stars,) shortening each star's part of a step (by bisection) so that it
    ends within the bound: a star pushed outwards lands on it (and is seen to have run into
    it) while the others move on."""
    scale = np.ones(offsets.shape[0])
    inside = _largest_offsets(offsets + step_offsets, drifts + step_drifts, tau_range) <= bound
    if inside.all():
        return scale
    lo, hi = np.where(inside, 1.0, 0.0), np.ones_like(scale)
    for _ in range(BOUND_BISECTIONS):
        mid = 0.5 * (lo + hi)
        ends = _largest_offsets(
            offsets + mid[:, None] * step_offsets, drifts + mid[:, None] * step_drifts, tau_range
        )
        lo = np.where(~inside & (ends <= bound), mid, lo)
        hi = np.where(~inside & (ends > bound), mid, hi)
    return lo


def fit_offsets(
    scene: _Scene,
    t: np.ndarray,
    data: np.ndarray,
    weight: np.ndarray,
    tau: np.ndarray,
    tau_range: tuple[float, float],
    drift: bool,
    bound: float,
    tolerance: float,
    max_iterations: int,
) -> OffsetFit:
    """Fit the offsets (and drifts) of the scene's offset stars over some cadences.

    Parameters
    ----------
    scene : _Scene
    t : ndarray of int
        The cadences (indices into the scene's positions).
    data : ndarray, shape (len(t), n_pixels)
        Their pixels (finite where ``weight`` > 0).
    weight : ndarray, shape (len(t), n_pixels)
        Inverse variances.
    tau : ndarray, shape (len(t),)
        Their times from the reference time [d].
    tau_range : (float, float)
        Earliest and latest time of the data from the reference time [d] (the bound holds
        over it).
    drift : bool
        Fit drifts too.
    bound : float
        Largest offset of any star at any time [px]: steps beyond it are refused.
    tolerance : float
        Converged when the next step would move no star by more than this [px].
    max_iterations : int
        Most Levenberg-Marquardt steps tried.

    Returns
    -------
    OffsetFit
        The fit as it ended (whether it converged, how close each star came to the bound:
        the caller decides what to keep).
    """
    q = scene.n_offset
    n_par = 2 * q * (2 if drift else 1)
    span = max(abs(tau_range[0]), abs(tau_range[1]))
    batches = []
    for sl in _batches(t.size):
        fixed, static = scene.static(t[sl])
        batches.append((t[sl], data[sl] - fixed, weight[sl], tau[sl], static))

    def split(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offsets = theta[: 2 * q].reshape(q, 2)
        drifts = theta[2 * q :].reshape(q, 2) if drift else np.zeros((q, 2))
        return offsets, drifts

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        offsets, drifts = split(theta)
        chi2, schur, gradient = 0.0, np.zeros((n_par, n_par)), np.zeros(n_par)
        for tt, dd, ww, ta, static in batches:
            d_row = offsets[None, :, 0] + ta[:, None] * drifts[None, :, 0]
            d_col = offsets[None, :, 1] + ta[:, None] * drifts[None, :, 1]
            image, dr, dc = scene.derivatives(tt, scene.offset_stars, d_row, d_col)
            design = scene.design(image, static)
            coef, inverse, resid, c2 = profile_fluxes(design, dd, ww)
            jac = _offset_jacobian(coef[:, :q], dr, dc, ta if drift else None)
            _, s, g = position_normal(design, inverse, jac, ww, resid)
            chi2 += float(c2.sum())
            schur += s.sum(axis=0)
            gradient += g.sum(axis=0)
        return chi2, schur, gradient

    theta = np.zeros(n_par)
    chi2, schur, gradient = evaluate(theta)
    lam = LM_LAMBDA_START
    converged = False
    iterations = 0
    while True:
        step = damped_step(schur[None], gradient[None], np.array([lam]))[0]
        scale = _within_bound(*split(theta), *split(step), tau_range, bound)
        step = step * np.tile(np.repeat(scale, 2), 2 if drift else 1)
        moved = np.abs(step[: 2 * q])
        if drift:
            moved = moved + np.abs(step[2 * q :]) * span
        if np.max(moved, initial=0.0) < tolerance:  # the next step moves nothing
            converged = True
            break
        if iterations >= max_iterations:
            break
        iterations += 1
        trial = evaluate(theta + step)
        if trial[0] <= chi2:
            theta = theta + step
            chi2, schur, gradient = trial
            lam = max(lam / LM_LAMBDA_FACTOR, np.finfo(float).eps)
        else:
            lam *= LM_LAMBDA_FACTOR
            if lam > LM_LAMBDA_MAX:  # no step lowers the chi-square: at the minimum
                converged = True
                break
    offsets, drifts = split(theta)
    covariance = np.linalg.pinv(schur, rcond=RCOND, hermitian=True)
    largest = _largest_offsets(offsets, drifts, tau_range)
    return OffsetFit(offsets, drifts, covariance, converged, iterations, largest)


# --------------------------------------------------------------------------------------------
# The target's offset per cadence


@dataclass
class CadenceFit:
    """The fit of a batch of cadences at their fitted positions."""

    #: The linear coefficients (n, k): fluxes in design order, then the background.
    coef: np.ndarray
    #: Variance of the target's flux (n,) [(e-/s)^2].
    flux_var: np.ndarray
    #: The target's offset per cadence on top of the offsets over the whole data (n, 2) [px].
    delta: np.ndarray
    #: Cadences whose own offset fit failed (kept at the offsets over the whole data).
    failed: np.ndarray


def fit_cadences(
    scene: _Scene,
    t: np.ndarray,
    base_row: np.ndarray,
    base_col: np.ndarray,
    static: np.ndarray,
    data: np.ndarray,
    weight: np.ndarray,
    bound: float,
    tolerance: float,
    max_iterations: int,
) -> CadenceFit:
    """Fit the target's offset on every cadence of a batch (each its own problem).

    Parameters
    ----------
    scene : _Scene
    t : ndarray of int, shape (n,)
        The cadences.
    base_row, base_col : ndarray, shape (n, n_offset)
        The offsets over the whole data of the offset stars (the target first) [px].
    static : ndarray, shape (n, n_fitted - n_offset, n_pixels)
        Images of the fitted stars without offsets.
    data, weight : ndarray, shape (n, n_pixels)
        Pixels (the fixed stars subtracted) and their inverse variances.
    bound, tolerance, max_iterations
        As :func:`fit_offsets`; the bound holds for the target's total offset.

    Returns
    -------
    CadenceFit
    """
    n = t.size
    target = scene.offset_stars[:1]
    others = scene.images(t, scene.offset_stars[1:], base_row[:, 1:], base_col[:, 1:])
    fixed_parts = np.concatenate([others, static], axis=1)

    def evaluate(idx: np.ndarray, delta: np.ndarray) -> dict[str, np.ndarray]:
        image, dr, dc = scene.derivatives(
            t[idx],
            target,
            base_row[idx, :1] + delta[:, :1],
            base_col[idx, :1] + delta[:, 1:],
        )
        design = scene.design(image, fixed_parts[idx])
        coef, inverse, resid, chi2 = profile_fluxes(design, data[idx], weight[idx])
        jac = _offset_jacobian(coef[:, :1], dr, dc, None)
        sensitivity, schur, gradient = position_normal(design, inverse, jac, weight[idx], resid)
        return {
            "coef": coef,
            "inverse": inverse,
            "chi2": chi2,
            "sensitivity": sensitivity,
            "schur": schur,
            "gradient": gradient,
        }

    every = np.arange(n)
    delta = np.zeros((n, 2))
    state = evaluate(every, delta)
    lam = np.full(n, LM_LAMBDA_START)
    done = np.zeros(n, dtype=bool)
    for iteration in range(max_iterations + 1):
        active = np.flatnonzero(~done)
        step = damped_step(state["schur"][active], state["gradient"][active], lam[active])
        small = np.max(np.abs(step), axis=1, initial=0.0) < tolerance
        done[active[small]] = True  # their next step moves nothing
        active, step = active[~small], step[~small]
        if active.size == 0 or iteration == max_iterations:
            break
        trial = delta[active] + step
        total = np.hypot(base_row[active, 0] + trial[:, 0], base_col[active, 0] + trial[:, 1])
        new = evaluate(active, trial)
        better = (total <= bound) & (new["chi2"] <= state["chi2"][active])
        accepted = active[better]
        delta[accepted] = trial[better]
        for key, value in new.items():
            state[key][accepted] = value[better]
        lam[accepted] = np.maximum(lam[accepted] / LM_LAMBDA_FACTOR, np.finfo(float).eps)
        rejected = active[~better]
        lam[rejected] *= LM_LAMBDA_FACTOR
        done[rejected[lam[rejected] > LM_LAMBDA_MAX]] = True  # at the minimum
    total = np.hypot(base_row[:, 0] + delta[:, 0], base_col[:, 0] + delta[:, 1])
    failed = ~done | (total >= BOUND_FRACTION * bound)
    covariance = np.linalg.pinv(state["schur"], rcond=RCOND, hermitian=True)
    u = state["sensitivity"][:, 0]
    flux_var = state["inverse"][:, 0, 0] + np.einsum("ng,ngh,nh->n", u, covariance, u)
    if failed.any():
        idx = np.flatnonzero(failed)
        delta[idx] = 0.0
        back = evaluate(idx, delta[idx])
        state["coef"][idx] = back["coef"]
        flux_var[idx] = back["inverse"][:, 0, 0]
    return CadenceFit(state["coef"], flux_var, delta, failed)


# --------------------------------------------------------------------------------------------
# The method


class PSFPhotometry(LinPSFPhotometry):
    """PSF photometry of one target: fluxes and positions fitted (see the module notes)."""

    method = "psf"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The fit of the offsets over the whole data.
        self.offset_fit: OffsetFit | None = None
        #: Cadences whose own offset fit failed (``psf_positions = "cadence"``).
        self.failed_cadences = 0

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
        """The stars whose offsets are fitted (indices into the selected stars, the target
        first): the fitted ones putting at least ``psf_offset_light`` of the target's light
        on the region and at least ``psf_offset_coverage`` of their own (their position is
        constrained), the brightest there first, at most ``psf_max_offset_stars``."""
        s = self.settings
        stars = self.target.source.stars
        mean_rows, mean_cols = mean_positions(
            rows, cols, self.target.source.good, stars.row[idx], stars.col[idx]
        )
        images = prf_images(
            self.target.prf,
            mean_rows[None],
            mean_cols[None],
            stars.row[idx],
            stars.col[idx],
            box_origin,
            box_shape,
        )[0][:, pixels]
        coverage = images.sum(axis=1)
        light = cat_flux * coverage
        chosen = [0]
        for j in np.argsort(-light, kind="stable"):
            if len(chosen) >= s.psf_max_offset_stars:
                break
            if (
                j != 0
                and fitted[j]
                and light[j] >= s.psf_offset_light * light[0]
                and coverage[j] >= s.psf_offset_coverage
            ):
                chosen.append(int(j))
        return np.asarray(chosen, dtype=int)

    def _fit_cadence_subset(self, known: np.ndarray) -> np.ndarray:
        """The good cadences with known positions the offsets are fitted on (at most
        ``psf_fit_cadences``, evenly spread)."""
        usable = np.flatnonzero(self.target.source.good & known)
        limit = max(int(self.settings.psf_fit_cadences), 1)
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

        A neighbour whose offset runs into ``psf_max_offset`` stays at its catalogue
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
        bound = float(s.psf_max_offset)
        subset = self._fit_cadence_subset(known)
        if subset.size == 0:
            q = 1
            scene = replace(scene, n_offset=q)
            n_par = 2 * q * (2 if s.psf_drift else 1)
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
                drift=bool(s.psf_drift),
                bound=bound,
                tolerance=float(s.psf_tolerance),
                max_iterations=int(s.psf_max_iterations),
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

    def do_photometry(self) -> STATUS:
        """Fit the positions, then the fluxes of every cadence."""
        s = self.settings
        if s.psf_positions not in POSITION_MODELS:
            raise PhotometryError(
                f"TIC {self.starid}: invalid setting psf_positions = {s.psf_positions!r} "
                f"(one of {', '.join(POSITION_MODELS)})"
            )
        per_cadence = s.psf_positions == "cadence"
        box, pixels, blocks, typical = self._fit_pixels()
        region = self.region
        br0, br1, bc0, bc1 = box
        box_origin = (self.target.stamp[0] + br0, self.target.stamp[2] + bc0)
        box_shape = (br1 - br0, bc1 - bc0)
        idx, rows, cols, cat_flux, fitted, close = self._select_stars(
            pixels, box_origin, box_shape, typical
        )
        stars = self.target.source.stars
        offset_stars = self._offset_stars(
            rows, cols, idx, cat_flux, fitted, box_origin, box_shape, pixels
        )
        others = np.flatnonzero(fitted & ~np.isin(np.arange(idx.size), offset_stars))
        scene = _Scene(
            prf=self.target.prf,
            rows=rows,
            cols=cols,
            node_rows=stars.row[idx],
            node_cols=stars.col[idx],
            origin=box_origin,
            shape=box_shape,
            pixels=pixels,
            cat_flux=cat_flux,
            fit_order=np.concatenate([offset_stars, others]),
            fixed=np.flatnonzero(~fitted),
            n_offset=offset_stars.size,
            background=bool(s.linpsf_background),
        )
        time = self.target.source.time
        known = np.all(np.isfinite(rows) & np.isfinite(cols), axis=1) & np.isfinite(time)
        reference = self.target.source.good & known
        tref = float(np.mean(time[reference if reference.any() else known])) if known.any() else 0.0
        tau = np.where(known, time - tref, 0.0)
        tau_range = (float(tau[known].min()), float(tau[known].max())) if known.any() else (0, 0)

        # -- the offsets over the whole data -----------------------------------------------
        scene, fit = self._fit_positions(scene, blocks, known, tau, tau_range, idx)
        q = scene.n_offset
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
        n = time.size
        n_fit = int(fitted.sum())
        n_pix = int(pixels.sum())
        flux = np.full(n, np.nan)
        flux_err = np.full(n, np.nan)
        flux_bkg = np.full(n, np.nan)
        fluxes = np.full((n, n_fit), np.nan)
        centroid = np.full((n, 2), np.nan)
        failed = np.zeros(n, dtype=bool)
        shenanigans = np.zeros(n, dtype=bool)
        prepared_bkg = np.full(n, np.nan)
        # Sector-level positions: linear PSF photometry's two passes (its first pass's
        # coefficients and the target's rows of its normal equations).
        first = FirstPass(n, n_fit + int(s.linpsf_background))
        names = ("images", "images_err", "backgrounds", "pixel_flags")
        for t0, t1, cubes in blocks(names):
            flags = cubes["pixel_flags"][:, self.region]
            shenanigans[t0:t1] = (flags & PixelFlags.BackgroundShenanigans).any(axis=1)
            images = cubes["images"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            errors = cubes["images_err"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            backgrounds = cubes["backgrounds"].reshape(t1 - t0, -1)[:, pixels].astype(np.float64)
            prepared_bkg[t0:t1] = np.nansum(backgrounds, axis=1)
            use_all = np.flatnonzero(known[t0:t1]) + t0
            for sl in _batches(use_all.size):
                use = use_all[sl]
                data, weight = _weights(images[use - t0], errors[use - t0])
                fixed, static = scene.static(use)
                data = data - fixed
                base_row, base_col = fit.at(tau[use])
                if per_cadence:
                    result = fit_cadences(
                        scene,
                        use,
                        base_row,
                        base_col,
                        static,
                        data,
                        weight,
                        bound=float(s.psf_max_offset),
                        tolerance=float(s.psf_tolerance),
                        max_iterations=int(s.psf_max_iterations),
                    )
                    coef, variance, delta = result.coef, result.flux_var, result.delta
                    failed[use] = result.failed
                else:
                    image = scene.images(use, scene.offset_stars, base_row, base_col)
                    design = scene.design(image, static)
                    with np.errstate(divide="ignore"):
                        pixel_variance = np.where(weight > 0, 1.0 / weight, np.nan)
                    coef, inverse = first.fit(use, design, data, pixel_variance)
                    variance = inverse[:, 0, 0]
                    delta = np.zeros((use.size, 2))
                empty = ~(weight > 0).any(axis=1)
                coef[empty] = np.nan
                fluxes[use] = coef[:, :n_fit]
                flux[use] = coef[:, 0]
                flux_err[use] = np.sqrt(np.clip(variance, 0.0, None))
                flux_err[use[empty]] = np.nan
                offset = coef[:, n_fit] if s.linpsf_background else 0.0
                flux_bkg[use] = np.nansum(backgrounds[use - t0], axis=1) + offset * n_pix
                centroid[use, 0] = rows[use, 0] + base_row[:, 0] + delta[:, 0]
                centroid[use, 1] = cols[use, 0] + base_col[:, 0] + delta[:, 1]
        if not per_cadence:
            target, flux_err, offset = self._second_pass(first)
            flux = target[:, 0]
            flux_bkg = prepared_bkg + offset * n_pix
        self.failed_cadences = int(failed.sum())
        if self.failed_cadences:
            logger.warning(
                "TIC %d: the per-cadence position fit failed on %d of %d cadences (no "
                "convergence or an offset beyond psf_max_offset = %g px); their fluxes are "
                "at the positions fitted over the whole data",
                self.starid,
                self.failed_cadences,
                int(known.sum()),
                s.psf_max_offset,
            )
            status = STATUS.WARNING
        self.final_mask = region
        quality = np.where(shenanigans, QUALITY_BACKGROUND_SHENANIGANS, 0).astype(np.int32)
        self.set_lightcurve(flux, flux_err, flux_bkg, quality, centroid[:, 0], centroid[:, 1])

        # -- crowding and neighbours -------------------------------------------------------
        fit_rows, fit_cols = rows.copy(), cols.copy()
        all_row, all_col = fit.at(tau)
        fit_rows[:, scene.offset_stars] += all_row
        fit_cols[:, scene.offset_stars] += all_col
        fit_rows[:, 0], fit_cols[:, 0] = centroid[:, 0], centroid[:, 1]
        self.crowding = self._crowding(scene, fit_rows, fit_cols, fluxes)
        self.contamination = 0.0
        self.skip_targets = self._skip_targets(stars.starid[idx[close]])
        self.n_fitted = n_fit
        errors_rc = fit.errors() if fit.converged else np.full((q, 2), np.nan)
        self.method_keywords = {
            "PSF_CONT": (self.crowding, "PRF-weighted light of neighbours"),
            "PSF_NFIT": (n_fit, "stars fitted"),
            "PSF_NFIX": (int((~fitted).sum()), "neighbours subtracted at catalogue flux"),
            "PSF_NPIX": (n_pix, "pixels in the fit"),
            "PSF_NSAT": (self.n_saturated, "saturated pixels left out of the fit"),
            "PSF_PRF": (self.target.prf.short_name, "PRF model"),
            "PSF_POS": (s.psf_positions, "positions fitted: sector or cadence"),
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
        return status

    def _crowding(
        self, scene: _Scene, rows: np.ndarray, cols: np.ndarray, fluxes: np.ndarray
    ) -> float:
        """``PSF_CONT``: the neighbours' mean light weighted by the target's PRF over the
        total so weighted (fitted stars at their mean fitted flux and position)."""
        mean_flux = scene.cat_flux.copy()
        use = self.target.source.good & np.all(np.isfinite(fluxes), axis=1)
        if use.any():
            mean_flux[scene.fit_order] = fluxes[use].mean(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_rows, mean_cols = mean_positions(rows, cols, self.target.source.good)
        if not np.all(np.isfinite(mean_rows) & np.isfinite(mean_cols)):
            return math.nan
        at_mean = prf_images(
            self.target.prf,
            mean_rows[None],
            mean_cols[None],
            scene.node_rows,
            scene.node_cols,
            scene.origin,
            scene.shape,
        )[0][:, scene.pixels]
        others = at_mean[1:].T @ mean_flux[1:]
        total = others + mean_flux[0] * at_mean[0]
        weighted = float(at_mean[0] @ total)
        return float(at_mean[0] @ others) / weighted if weighted > 0 else math.nan
