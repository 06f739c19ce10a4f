"""The per-cadence fit of PSF photometry: each cadence's fluxes and offsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.photometry.linpsf_solve import RCOND
from tessphot.photometry.psf_offsets import (
    BOUND_FRACTION,
    LM_LAMBDA_FACTOR,
    LM_LAMBDA_MAX,
    LM_LAMBDA_START,
    _offset_jacobian,
    _Scene,
    damped_step,
    position_normal,
    profile_fluxes,
)


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
    #: Chi-square of each cadence's fit (n,) ...
    chi2: np.ndarray
    #: ... and its degrees of freedom: pixels used minus fluxes, background and offset.
    dof: np.ndarray


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
    chi2 = state["chi2"].copy()
    # The fluxes and background, and the target's own offset where it was kept.
    dof = (weight > 0).sum(axis=1) - state["coef"].shape[1] - np.where(failed, 0, 2)
    if failed.any():
        idx = np.flatnonzero(failed)
        delta[idx] = 0.0
        back = evaluate(idx, delta[idx])
        state["coef"][idx] = back["coef"]
        flux_var[idx] = back["inverse"][:, 0, 0]
        chi2[idx] = back["chi2"]
    return CadenceFit(state["coef"], flux_var, delta, failed, chi2, dof)


# --------------------------------------------------------------------------------------------
# The method
