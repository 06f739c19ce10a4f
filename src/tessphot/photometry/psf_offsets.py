"""The position fit of PSF photometry.

The scene of stars and its derivatives, and the fit of the stars' offsets and drifts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tessphot.photometry.linpsf_solve import DESIGN_CADENCES, RCOND, weighted_normal
from tessphot.prf import OVERSAMPLE, PRFModel, prf_images
from tessphot.prf.star_halo import HaloShape, images_with_halos

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
#: A fit ending within this fraction of ``psf.max_offset`` has run into the bound.
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
    """The Gauss-Newton normal equations of nonlinear parameters, the linear ones eliminated.

    Their Schur complement, per problem.

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
    #: The stars' halos (:mod:`tessphot.prf.star_halo`): their shape and each star's share
    #: (None: none).
    halo_shape: HaloShape | None = None
    halo: np.ndarray | None = None

    def _with_halos(self, images, rows, cols, stars) -> np.ndarray:
        """PRF images (n_t, n_s, n_pixels) of ``stars`` at (rows, cols), halos mixed in."""
        if self.halo is None:
            return images
        return images_with_halos(
            images, self.halo[stars], self.halo_shape, rows, cols, self.origin, self.shape,
            self.pixels,
        )  # fmt: skip

    @property
    def offset_stars(self) -> np.ndarray:
        return self.fit_order[: self.n_offset]

    def images(
        self, t: np.ndarray, stars: np.ndarray, d_row: Any = 0.0, d_col: Any = 0.0
    ) -> np.ndarray:
        """PRF images (len(t), len(stars), n_pixels) of stars moved by (d_row, d_col) [px]."""
        rows = self.rows[np.ix_(t, stars)] + d_row
        cols = self.cols[np.ix_(t, stars)] + d_col
        images = prf_images(
            self.prf,
            rows,
            cols,
            self.node_rows[stars],
            self.node_cols[stars],
            self.origin,
            self.shape,
            cadences=t,
        )[:, :, self.pixels]
        return self._with_halos(images, rows, cols, stars)

    def derivatives(
        self, t: np.ndarray, stars: np.ndarray, d_row: np.ndarray, d_col: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PRF images of stars moved by (d_row, d_col) and their derivatives.

        The shifts are (len(t), len(stars)) [px]; the derivatives along rows and columns are
        central differences; each result is (len(t), len(stars), n_pixels).
        """
        h = DERIVATIVE_STEP
        rows = self.rows[np.ix_(t, stars)] + d_row
        cols = self.cols[np.ix_(t, stars)] + d_col
        all_rows = np.concatenate([rows, rows + h, rows - h, rows, rows], axis=1)
        all_cols = np.concatenate([cols, cols, cols, cols + h, cols - h], axis=1)
        images = prf_images(
            self.prf,
            all_rows,
            all_cols,
            np.tile(self.node_rows[stars], DERIVATIVE_IMAGES),
            np.tile(self.node_cols[stars], DERIVATIVE_IMAGES),
            self.origin,
            self.shape,
            cadences=t,
        )[:, :, self.pixels]
        images = self._with_halos(images, all_rows, all_cols, np.tile(stars, DERIVATIVE_IMAGES))
        image, up, down, right, left = np.split(images, DERIVATIVE_IMAGES, axis=1)
        return image, (up - down) / (2 * h), (right - left) / (2 * h)

    def static(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What does not move in the fits.

        The light of the fixed stars at their catalogue fluxes (len(t), n_pixels), and the
        images of the fitted stars without offsets (len(t), n_fitted - n_offset, n_pixels).
        """
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
    """Derivatives of the model with respect to the offset stars' offsets.

    And drifts, when ``tau`` is given: (n, 2 n_offset [x 2], n_pixels), ordered as
    :attr:`OffsetFit.parameters`.
    """
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
    """The offsets of the stars with fitted positions from their catalogue positions.

    From the catalogue positions plus the jitter model, over the whole data.
    """

    #: Offsets (n_offset, 2) [px] (row, column) at the reference time.
    offsets: np.ndarray
    #: Drifts (n_offset, 2) [px/d] (0 without ``psf.drift``).
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
        """Row and column offsets (len(tau), n_offset) at times ``tau`` from the reference [d]."""
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
    """Largest distance [px] of each star from its catalogue position over the data.

    The offsets are linear in time: the extremes are at the ends.
    """
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
    """Factors (n_stars,) shortening each star's part of a step so that it ends within the bound.

    By bisection: a star pushed outwards lands on it (and is seen to have run into
    it) while the others move on.
    """
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


def _split_parameters(theta: np.ndarray, q: int, drift: bool) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and drifts (q, 2) from the parameter vector (drifts 0 without ``drift``)."""
    offsets = theta[: 2 * q].reshape(q, 2)
    drifts = theta[2 * q :].reshape(q, 2) if drift else np.zeros((q, 2))
    return offsets, drifts


def _offset_normal(
    scene: _Scene, batches: list[tuple], offsets: np.ndarray, drifts: np.ndarray, drift: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    """Chi-square, Schur complement and gradient of the position fit at given offsets.

    Summed over the batches of cadences ``(t, data, weight, tau, static)``, the fluxes
    profiled out.
    """
    q = scene.n_offset
    n_par = 2 * q * (2 if drift else 1)
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
        return _split_parameters(theta, q, drift)

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return _offset_normal(scene, batches, *split(theta), drift)

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
