"""The flux fit of PSF photometry: the fluxes of every cadence at the fitted positions.

With offsets over the whole data (``positions = "sector"``) linear PSF photometry's two passes
at the fitted positions; with ``positions = "cadence"`` each cadence's own fit
(:func:`tessphot.photometry.psf_cadences.fit_cadences`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.config.photometry import PhotometrySettings
from tessphot.photometry.goodness import FitChi2
from tessphot.photometry.linpsf_engine import LinPSFEngine, RegionBlock, StarSelection
from tessphot.photometry.linpsf_solve import FirstPass
from tessphot.photometry.psf_cadences import fit_cadences
from tessphot.photometry.psf_offsets import OffsetFit, _batches, _Scene, _weights


@dataclass
class Fluxes:
    """The per-cadence results of the flux fit (:func:`fit_fluxes`)."""

    flux: np.ndarray
    flux_err: np.ndarray
    flux_bkg: np.ndarray
    #: Fluxes of the fitted stars in the design's order, (n, n_fitted).
    fluxes: np.ndarray
    #: The target's fitted position, (n, 2).
    centroid: np.ndarray
    #: Cadences whose own offset fit failed.
    failed: np.ndarray
    #: Each cadence's chi-square and degrees of freedom (:mod:`tessphot.photometry.goodness`).
    goodness: FitChi2


@dataclass(frozen=True)
class FitTimes:
    """The cadences with known positions and the offsets' time axis."""

    known: np.ndarray
    #: Reference time of the offsets [BTJD].
    tref: float
    #: Time from the reference, 0 where the position is unknown [d].
    tau: np.ndarray
    tau_range: tuple[float, float]


def _fit_batch(
    settings: PhotometrySettings,
    scene: _Scene,
    fit: OffsetFit,
    first: FirstPass,
    use: np.ndarray,
    data: np.ndarray,
    weight: np.ndarray,
    tau: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The fluxes of a batch of cadences (their offsets too with ``positions = "cadence"``).

    Their chi-squares go into ``first.goodness``.

    Returns
    -------
    coef, variance, delta, base_row, base_col, failed
        The linear coefficients, the target flux's variance, the target's own offset
        per cadence, the offsets over the whole data and the cadences whose own offset
        fit failed (None without per-cadence offsets).
    """
    s = settings
    fixed, static = scene.static(use)
    data = data - fixed
    base_row, base_col = fit.at(tau[use])
    if s.psf.positions == "cadence":
        result = fit_cadences(
            scene,
            use,
            base_row,
            base_col,
            static,
            data,
            weight,
            bound=float(s.psf.max_offset),
            tolerance=float(s.psf.tolerance),
            max_iterations=int(s.psf.max_iterations),
        )
        first.goodness.record(use, result.chi2, result.dof)
        return result.coef, result.flux_var, result.delta, base_row, base_col, result.failed
    image = scene.images(use, scene.offset_stars, base_row, base_col)
    design = scene.design(image, static)
    with np.errstate(divide="ignore"):
        pixel_variance = np.where(weight > 0, 1.0 / weight, np.nan)
    coef, inverse = first.fit(use, design, data, pixel_variance)
    delta = np.zeros((use.size, 2))
    return coef, inverse[:, 0, 0], delta, base_row, base_col, None


def _fit_block(
    settings: PhotometrySettings,
    scene: _Scene,
    fit: OffsetFit,
    first: FirstPass,
    block: RegionBlock,
    times: FitTimes,
    out: Fluxes,
) -> None:
    """Fit the fluxes of the cadences of one block (into ``out``)."""
    t0 = block.t0
    n_fit = out.fluxes.shape[1]
    n_pix = int(scene.pixels.sum())
    use_all = np.flatnonzero(times.known[t0 : block.t1]) + t0
    for sl in _batches(use_all.size):
        use = use_all[sl]
        data, weight = _weights(block.images[use - t0], block.errors[use - t0])
        coef, variance, delta, base_row, base_col, failed = _fit_batch(
            settings, scene, fit, first, use, data, weight, times.tau
        )
        if failed is not None:
            out.failed[use] = failed
        empty = ~(weight > 0).any(axis=1)
        coef[empty] = np.nan
        out.fluxes[use] = coef[:, :n_fit]
        out.flux[use] = coef[:, 0]
        out.flux_err[use] = np.sqrt(np.clip(variance, 0.0, None))
        out.flux_err[use[empty]] = np.nan
        offset = coef[:, n_fit] if scene.background else 0.0
        out.flux_bkg[use] = np.nansum(block.backgrounds[use - t0], axis=1) + offset * n_pix
        out.centroid[use, 0] = scene.rows[use, 0] + base_row[:, 0] + delta[:, 0]
        out.centroid[use, 1] = scene.cols[use, 0] + base_col[:, 0] + delta[:, 1]


def fit_fluxes(
    engine: LinPSFEngine,
    sel: StarSelection,
    scene: _Scene,
    fit: OffsetFit,
    times: FitTimes,
) -> Fluxes:
    """The fluxes of every cadence at the fitted positions."""
    n = engine.target.source.time.size
    n_fit = sel.n_fit
    out = Fluxes(
        flux=np.full(n, np.nan),
        flux_err=np.full(n, np.nan),
        flux_bkg=np.full(n, np.nan),
        fluxes=np.full((n, n_fit), np.nan),
        centroid=np.full((n, 2), np.nan),
        failed=np.zeros(n, dtype=bool),
        goodness=FitChi2(n),
    )
    # Sector-level positions: linear PSF photometry's two passes (its first pass's
    # coefficients and the target's rows of its normal equations).
    first = FirstPass(n, n_fit + int(engine.settings.linpsf.background))
    for block in engine.region_blocks(sel.blocks, sel.pixels):
        _fit_block(engine.settings, scene, fit, first, block, times, out)
    out.goodness = first.goodness
    if engine.settings.psf.positions != "cadence":
        target, out.flux_err, offset = engine.second_pass(first)
        out.flux = target[:, 0]
        out.flux_bkg = engine.prepared_bkg + offset * sel.n_pix
    return out
