"""An effective PRF measured from the data: the model's tables corrected on bright stars.

The PRF models are lab models: real PRFs differ by a few percent in width and shape, and
have wings the tables lack (issue 18). On the average image of a prepared region, the
bright, isolated, unsaturated catalogued stars (:func:`~tessphot.prf.effective_stars.
choose_stars`) are fitted with the model (flux, position, sky each). The correction of the
model's tables is then solved for with the stars' parameters, on the models' 9x
over-sampled grid and interpolated between the nodes exactly as the model is
(:mod:`tessphot.prf.effective_solve`), as a polynomial over the CCD (``degree``):

* the model **distorted** about the star by ``A = I + E`` (width, ellipticity, shear,
  rotation: four numbers per term, :mod:`tessphot.prf.effective_shape`), linearised on each
  pass and applied exactly after it;
* optionally (``prior_width`` > 0) a **free correction** on the last pass, cubic B-splines
  damped and smoothed towards zero (towards the distorted model), keeping the flux and the
  core's centroid.

Stars are fitted anew with the corrected PRF and the correction solved again
(``iterations``); stars whose misfit is far above the others' (blends, variables) are left
out of each pass, and a fraction of the chosen stars is left out of the fit altogether to
check it (``validation_fraction``): the effective PRF is accepted only if it fits them better
than the model (``accept_ratio``). The other catalogued stars' light is removed from every
box with the current PRF and their catalogue fluxes (positions moved by the fitted stars'
mean offset from the catalogue).

The result (:class:`EffectivePRFFit`) holds the effective PRF (an :class:`EffectivePRF` on the
model's nodes that span the region), the stars' fits with the model and with it (their
residuals before and after: :attr:`EffectivePRFFit.quality`) and the wings beyond the
footprint (:mod:`tessphot.prf.effective_wings`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.constants import SATURATED_RATE, flux_to_tmag
from tessphot.prf.analytic import AnalyticPRF
from tessphot.prf.effective_halo import (
    HaloFit,
    measure_region_halos,
    without_halos,
)
from tessphot.prf.effective_shape import N_SHAPE, distorted, shape_tables
from tessphot.prf.effective_solve import (
    CorrectionBasis,
    Regularisation,
    interpolation_matrix,
    node_tables,
    position_terms,
    solve_correction,
    solve_distortion,
    stamp_sums,
)
from tessphot.prf.effective_stars import (
    Choice,
    StarBoxes,
    StarFits,
    box_models,
    choose_stars,
    cleaned_boxes,
    fit_stars,
    pixel_weights,
    reaching_boxes,
    saturated_pixels,
    star_boxes,
    star_jacobian,
)
from tessphot.prf.effective_wings import Wings, fitted_wings
from tessphot.prf.models import HALF_WIDTH, PRFModel, edge_taper
from tessphot.prf.motion_blur import MotionBlur

log = logging.getLogger(__name__)

#: Reach of a star's light beyond the region it is catalogued for [px].
PRF_REACH = HALF_WIDTH + 1
#: The stars' halos are measured and taken out of the PRF's fit on this many last passes
#: (the PRF first converges without them: a halo measured against a PRF still far off
#: would take up its width's error), their shape fitted again on each: the PRF then holds
#: less of the bright stars' halos, and the halos' shape shows better. On a simulated
#: region (400^2 px, PRF 3 % wider and elliptical over the CCD, 2 % halos of core 2 px and
#: index 2.5 on the stars brighter than Tmag 9.5), 2 passes with the first pass's shape
#: gave a halo of core 6.3 px and index 5, and widths off by up to 0.8 % towards the
#: region's corners; 4 passes, each fitting the shape, core 3.2 px and index 3, widths
#: within 0.2 %, and the error of an aperture's motion correction from the PRF alone down
#: from 17 to 11 ppm (Tmag 7-9.5; 8 passes: the same).
HALO_PASSES = 4
#: Prefix of the effective PRF's short name (FITS headers).
SHORT_PREFIX = "ePRF "


class EffectivePRF(PRFModel):
    """A PRF model measured from the data: the tables of a model, corrected.

    Parameters
    ----------
    tables, node_rows, node_cols, name, short_name
        As :class:`PRFModel` (the tables already tapered and normalised).
    base_name : str
        The model it corrects.
    base_analytic : bool
        Whether that model is the analytic one.
    """

    def __init__(
        self,
        tables: np.ndarray,
        node_rows,
        node_cols,
        name: str,
        short_name: str,
        *,
        base_name: str,
        base_analytic: bool,
    ) -> None:
        super().__init__(tables, node_rows, node_cols, name, short_name, taper=False)
        self.base_name = base_name
        self.base_analytic = base_analytic


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else np.nan


@dataclass
class EffectivePRFFit:
    """The effective PRF of a region and how it was measured.

    Attributes
    ----------
    prf : EffectivePRF
        The effective PRF.
    base : PRFModel
        The model it corrects, on the same nodes.
    before, after : StarFits
        The chosen stars fitted with the model and with the effective PRF.
    used : ndarray of bool
        The stars the correction was fitted on (outliers left out) ...
    check : ndarray of bool
        ... and those left out of it to check it (``validation_fraction``; outliers left
        out).
    wings : Wings or None
        The wings beyond the tables' footprint.
    halos : HaloFit or None
        The chosen stars' halos relative to it (``measured`` indexes the chosen stars).
    chosen : ndarray of int or None
        Indices of the chosen stars (the order of ``before``, ``after``, ``used``) into the
        catalogued stars.
    seconds : float
        Time the fit took [s].
    accept_ratio : float
        The effective PRF is accepted when the stars left out of the fit have a median
        reduced chi-square at most this times the model's (:attr:`accepted`).
    """

    prf: EffectivePRF
    base: PRFModel
    before: StarFits
    after: StarFits
    used: np.ndarray
    check: np.ndarray
    wings: Wings | None
    seconds: float
    accept_ratio: float = 1.0
    halos: HaloFit | None = None
    chosen: np.ndarray | None = None

    @property
    def accepted(self) -> bool:
        """Whether it describes the stars left out of the fit better than the model.

        True without such stars (nothing to check it on).
        """
        q = self.quality
        if not q["n_check"]:
            return True
        return bool(q["chi2_effective_check"] <= self.accept_ratio * q["chi2_model_check"])

    @property
    def corrections(self) -> np.ndarray:
        """The effective tables minus the model's, (n_nodes, TABLE_SIZE, TABLE_SIZE)."""
        return self.prf.tables - self.base.tables

    @property
    def quality(self) -> dict[str, float]:
        """Medians over the stars of the relative rms residual and the reduced chi-square.

        ``rms_model``, ``rms_effective``: rms of (data - model) over a star's box relative to
        its flux; ``chi2_model``, ``chi2_effective``: chi-square per degree of freedom
        against the pixels' noise alone; over the ``n_stars`` stars fitted, and with
        ``_check`` over the ``n_check`` stars left out of the fit (NaN without them).
        """
        out: dict[str, float] = {
            "n_chosen": int(self.used.size),
            "n_stars": int(self.used.sum()),
            "n_check": int(self.check.sum()),
        }
        for suffix, which in (("", self.used), ("_check", self.check)):
            for name, fits in (("model", self.before), ("effective", self.after)):
                out[f"rms_{name}{suffix}"] = _median(fits.rms[which])
                out[f"chi2_{name}{suffix}"] = _median(fits.chi2[which])
        return out

    def summary(self) -> str:
        """One readable line: stars, residuals before and after, wings, time."""
        q = self.quality
        text = (
            f"Effective PRF from {q['n_stars']} stars (of {q['n_chosen']} chosen): median "
            f"residual rms {q['rms_model']:.2e} -> {q['rms_effective']:.2e} of the flux "
            f"(x{q['rms_effective'] / q['rms_model']:.2f}), chi2 {q['chi2_model']:.1f} -> "
            f"{q['chi2_effective']:.1f}"
        )
        if q["n_check"]:
            text += (
                f"; on {q['n_check']} stars left out of the fit x"
                f"{q['rms_effective_check'] / q['rms_model_check']:.2f}, chi2 "
                f"{q['chi2_model_check']:.1f} -> {q['chi2_effective_check']:.1f}"
            )
        if self.wings is not None and np.isfinite(self.wings.index):
            text += (
                f"; wings r^-{self.wings.index:.2f}, {self.wings.fraction:.2%} of the light "
                f"from {self.wings.radius_min:g} to {self.wings.radius_max:g} px "
                f"({self.wings.n_stars} stars)"
            )
        if self.halos is not None:
            text += "; " + self.halos.summary()
        text += f"; {self.seconds:.1f} s"
        if not self.accepted:
            text += (
                "; not used: it fits the stars left out no better than the model "
                "([prepare.effective_prf] accept_ratio)"
            )
        return text


def spanning_nodes(prf: PRFModel, region: tuple[float, float, float, float]) -> PRFModel:
    """The model on the sub-grid of its nodes that spans a region (rendering unchanged there).

    Parameters
    ----------
    prf : PRFModel
    region : (row_min, row_max, col_min, col_max)
        Science positions [px].
    """

    def span(nodes: np.ndarray, lo: float, hi: float) -> np.ndarray:
        first = max(int(np.searchsorted(nodes, lo, side="right")) - 1, 0)
        last = min(int(np.searchsorted(nodes, hi, side="left")), nodes.size - 1)
        return np.arange(first, last + 1)

    ir = span(prf.node_rows, region[0], region[1])
    ic = span(prf.node_cols, region[2], region[3])
    index = (ir[:, None] * prf.node_cols.size + ic[None, :]).ravel()
    return PRFModel(
        prf.tables[index],
        prf.node_rows[ir],
        prf.node_cols[ic],
        name=prf.name,
        short_name=prf.short_name,
        taper=False,
    )


def effective_names(base: PRFModel, n_stars: int) -> tuple[str, str]:
    """Name and short name (FITS headers, 40 characters) of an effective PRF."""
    return (
        f"effective PRF ({n_stars} stars) correcting {base.name}",
        (SHORT_PREFIX + base.short_name)[:40],
    )


def measure_effective_prf(
    image: np.ndarray,
    sigma: np.ndarray,
    origin: tuple[int, int],
    stars: tuple[np.ndarray, np.ndarray, np.ndarray],
    base: PRFModel,
    settings: EffectivePRFSettings,
    *,
    blur: Callable[[np.ndarray, np.ndarray], MotionBlur | None] | None = None,
) -> EffectivePRFFit | None:
    """The effective PRF of a region, measured on its average image.

    The average image holds the stars blurred by the pointing's motion over the frames
    averaged: given ``blur``, every model of it is blurred alike (:mod:`tessphot.prf.
    motion_blur`), so that the PRF measured is each frame's. (A free correction, off by
    default, is fitted unblurred: the blur of a small correction is of second order.)

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        The average image (background subtracted) [e-/s].
    sigma : ndarray, shape (ny, nx)
        Its uncertainty [e-/s].
    origin : (int, int)
        Science position of the image's pixel ``[0, 0]``.
    stars : (rows, cols, flux)
        The catalogued stars on and near the region [science px, e-/s].
    base : PRFModel
        The model to correct.
    settings : EffectivePRFSettings
    blur : callable, optional
        The motion blur at nodes ``(node_rows, node_cols)`` of the model (None: none).

    Returns
    -------
    EffectivePRFFit or None
        None when fewer than ``settings.min_stars`` stars qualify (logged).
    """
    start = time.perf_counter()
    rows, cols, flux = (np.asarray(a, dtype=float) for a in stars)
    shape = image.shape
    region = (
        origin[0] - PRF_REACH,
        origin[0] + shape[0] + PRF_REACH,
        origin[1] - PRF_REACH,
        origin[1] + shape[1] + PRF_REACH,
    )
    analytic = isinstance(base, AnalyticPRF)
    base = spanning_nodes(base, region)
    motion = blur(base.node_rows, base.node_cols) if blur is not None else None

    def seen(model: PRFModel) -> PRFModel:  # as the average image holds it
        return model if motion is None else motion.blurred(model)

    seen_base = seen(base)
    choice = Choice(
        half=settings.fit_half,
        min_snr=settings.min_snr,
        max_contamination=settings.max_contamination,
        saturated_level=settings.saturation_fraction * SATURATED_RATE,
        saturation_margin=settings.saturation_margin,
        max_stars=settings.max_stars,
    )
    scene = seen_base.render(rows, cols, flux, shape, origin)
    chosen = choose_stars(image, sigma, origin, seen_base, (rows, cols, flux), scene, choice)
    if chosen.size < settings.min_stars:
        log.info(
            "Effective PRF not measured: %d bright, isolated, unsaturated star(s), %d needed",
            chosen.size,
            settings.min_stars,
        )
        return None
    boxes = star_boxes(image, sigma, origin, rows[chosen], cols[chosen], settings.fit_half)
    first = fit_stars(
        seen_base,
        cleaned_boxes(boxes, scene, origin, seen_base, rows[chosen], cols[chosen], flux[chosen]),
        rows[chosen],
        cols[chosen],
        flux[chosen],
        model_error=settings.model_error,
    )
    # The other stars follow the fitted ones' mean offset from the catalogue.
    rows = rows + float(np.median(first.rows - rows[chosen]))
    cols = cols + float(np.median(first.cols - cols[chosen]))
    flux = flux.copy()
    basis = CorrectionBasis(settings.samples_per_pixel, edge_taper())
    terms = position_terms(base.node_rows, base.node_cols, settings.degree)
    split = terms.shape[1] * basis.size**2
    check = _left_out(chosen.size, settings.validation_fraction)
    prf, fits, keep, before = base, first, ~check, None
    # The distortion of every term so far; the model distorted by it is the next pass's
    # base, its free correction is solved afresh.
    distortion = np.zeros((terms.shape[1], N_SHAPE))
    shaped, solution = base, None
    near = reaching_boxes(rows, cols, boxes.rows, boxes.cols, boxes.half)  # their scene
    halos, tmag = None, flux_to_tmag(stars[2][chosen])
    for iteration in range(settings.iterations + 1):
        rows[chosen], cols[chosen], flux[chosen] = fits.rows, fits.cols, fits.flux
        seen_prf = seen(prf)
        scene = seen_prf.render(rows[near], cols[near], flux[near], shape, origin)
        cleaned = cleaned_boxes(boxes, scene, origin, seen_prf, fits.rows, fits.cols, fits.flux)
        if settings.halos and iteration >= settings.iterations - HALO_PASSES:
            halos = measure_region_halos(
                image, sigma, origin, seen_prf, (rows, cols, flux), fits, tmag, settings
            )
        bare = without_halos(seen_prf, cleaned, fits, halos, leave=check)
        fits = fit_stars(
            seen_prf, bare, fits.rows, fits.cols, fits.flux, model_error=settings.model_error
        )
        if before is None:
            before = fits
        if iteration == settings.iterations:
            break
        keep = ~check & (fits.misfit <= settings.clip * np.median(fits.misfit[~check]))
        shapes = shape_tables(shaped.tables, edge_taper())
        if motion is not None:  # blur is linear: the blurred model's derivatives
            shapes = motion.apply(shapes)
        # The distortion first; the free correction on the last pass, about it.
        last = iteration == settings.iterations - 1
        solution = _solve(
            seen(shaped), seen_prf, basis,
            without_halos(seen_prf, cleaned, fits, halos, leave=check).subset(keep),
            fits.subset(keep), settings, terms, shapes, solution, free=last,
        )  # fmt: skip
        free = node_tables(basis, terms, None, solution, split)
        distortion += solution[split:].reshape(distortion.shape)
        solution[split:] = 0.0
        shaped = PRFModel(
            distorted(base.tables, terms @ distortion),
            base.node_rows,
            base.node_cols,
            base.name,
            base.short_name,
            taper=False,
        )
        name, short = effective_names(base, int(keep.sum()))
        prf = EffectivePRF(
            shaped.tables + free,
            base.node_rows,
            base.node_cols,
            name,
            short,
            base_name=base.name,
            base_analytic=analytic,
        )
    # Outliers left out of the check as of the fit, by their misfit with the model.
    check &= before.misfit <= settings.clip * np.median(before.misfit[~check])
    saturated = saturated_pixels(image, choice)
    wings = fitted_wings(
        image, seen_prf, (rows, cols, flux), sigma, origin, fits.subset(keep | check),
        n_stars=settings.wings_stars, radius=settings.wings_radius, excluded=saturated,
    )  # fmt: skip
    return EffectivePRFFit(
        prf, base, before, fits, keep, check, wings, time.perf_counter() - start,
        accept_ratio=settings.accept_ratio, halos=halos, chosen=chosen,
    )  # fmt: skip


def _left_out(n: int, fraction: float) -> np.ndarray:
    """Every ``1 / fraction``-th of ``n`` stars (not the first), to check the fit with."""
    out = np.zeros(n, dtype=bool)
    if fraction > 0:
        step = max(int(round(1 / fraction)), 2)
        out[step - 1 :: step] = True
    return out


def _solve(
    base: PRFModel,
    prf: PRFModel,
    basis: CorrectionBasis,
    boxes: StarBoxes,
    fits: StarFits,
    settings: EffectivePRFSettings,
    terms: np.ndarray,
    shapes: np.ndarray,
    start: np.ndarray | None,
    *,
    free: bool,
) -> np.ndarray:
    """The correction (:func:`solve_correction`'s solution) that best fits the stars."""
    # Rendering divides by the stamp's sum, the current tables': the model's samples
    # weigh S_model / S_current of a normalised model stamp.
    now = stamp_sums(prf, fits.rows, fits.cols)
    ratio = stamp_sums(base, fits.rows, fits.cols) / now
    model = box_models(base, boxes, fits.rows, fits.cols) * ratio[:, None, None]
    expected = fits.flux[:, None, None] * model
    current = fits.flux[:, None, None] * box_models(prf, boxes, fits.rows, fits.cols)
    weight = pixel_weights(boxes, current, settings.model_error)
    residual = np.nan_to_num(boxes.data) - expected - fits.sky[:, None, None]
    scale = (fits.flux / now)[:, None, None] * weight
    matrix = interpolation_matrix(base, boxes, fits.rows, fits.cols, scale)
    stars = star_jacobian(prf, boxes, fits, weight)
    if not (free and settings.prior_width > 0):  # the free tables held at the model
        split = terms.shape[1] * basis.size**2
        return solve_distortion(
            matrix, (residual * weight).ravel(), terms, shapes, settings.shape_prior,
            n_coef=split, stars=stars,
        )  # fmt: skip
    solution, _, _ = solve_correction(
        matrix,
        (residual * weight).ravel(),
        basis,
        terms,
        Regularisation(
            prior=settings.prior_width * float(base.tables.max()),
            smoothness=settings.smoothness,
            shape_prior=settings.shape_prior,
        ),
        shapes=shapes,
        stars=stars,
        start=start,
    )
    return solution
