"""The effective PRF's fit on synthetic images (no data files): tessphot.prf.effective*."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import tessphot.prf.effective as effective
from tessphot.config.prepare import EffectivePRFSettings
from tessphot.constants import SATURATED_RATE
from tessphot.evaluation.simulate.prf_field import shape_matrices
from tessphot.evaluation.simulate.prf_halo import HaloProfile, render_halos
from tessphot.prf import OVERSAMPLE, AnalyticPRF, PRFModel
from tessphot.prf.effective import (
    EffectivePRF,
    measure_effective_prf,
    spanning_nodes,
)
from tessphot.prf.effective_shape import SPLINE_ORDER, transformed_table
from tessphot.prf.effective_solve import (
    CorrectionBasis,
    Regularisation,
    interpolation_matrix,
    solve_correction,
    stamp_sums,
)
from tessphot.prf.effective_stars import (
    Choice,
    box_models,
    box_pixels,
    choose_stars,
    reaching_boxes,
    star_boxes,
)
from tessphot.prf.models import edge_taper

ORIGIN = (500, 700)
SHAPE = (170, 170)
#: Exposure of the synthetic average image [s] (its shot noise) and the sky's noise [e-/s].
EXPOSURE = 2.0e4
SKY_NOISE = 0.05
#: Outer radius of the synthetic halo [px].
HALO_RADIUS = 25.0


def changed(base: PRFModel, width: float, ellipticity: float, angle: float) -> PRFModel:
    """``base`` widened and stretched as the simulator does (one node)."""
    coefficients = ndimage.spline_filter(base.tables[0], order=SPLINE_ORDER, mode="grid-constant")
    matrix = shape_matrices(np.array([width]), np.array([ellipticity]), np.array([angle]))[0]
    table = transformed_table(coefficients, matrix)
    return PRFModel(table[None], [0.0], [0.0], "changed", "changed", taper=False)


def scene(
    truth: PRFModel,
    seed: int = 3,
    *,
    halo: float = 0.0,
    spacing: int = 19,
    shape: tuple[int, int] = SHAPE,
):
    """An average image of isolated stars on a grid, its noise and the catalogue."""
    rng = np.random.default_rng(seed)
    grid = np.arange(9, shape[0] - 9, spacing)
    rr, cc = np.meshgrid(grid, grid, indexing="ij")
    rows = ORIGIN[0] + rr.ravel() + rng.uniform(-0.5, 0.5, rr.size)
    cols = ORIGIN[1] + cc.ravel() + rng.uniform(-0.5, 0.5, rr.size)
    flux = 10 ** rng.uniform(4.0, 4.8, rows.size)
    image = truth.render(rows, cols, flux * (1 - halo), shape, ORIGIN)
    if halo:
        profile = HaloProfile(HALO_RADIUS, 2.5)
        image += render_halos(
            profile, profile.kernels(), rows, cols, flux * halo, shape, origin=ORIGIN
        )
    sigma = np.sqrt(np.clip(image, 0, None) / EXPOSURE + SKY_NOISE**2)
    image = image + sigma * rng.standard_normal(shape)
    return image, sigma, (rows, cols, flux)


def table_error(prf: PRFModel, truth: PRFModel) -> float:
    """rms difference of two one-node PRFs' tables."""
    return float(np.sqrt(np.mean((prf.tables[0] - truth.tables[0]) ** 2)))


@pytest.fixture(scope="module")
def base() -> PRFModel:
    return AnalyticPRF()


@pytest.fixture(scope="module")
def truth(base) -> PRFModel:
    return changed(base, 1.04, 0.04, 30.0)


@pytest.fixture(scope="module")
def measured(base, truth):
    image, sigma, stars = scene(truth)
    return measure_effective_prf(image, sigma, ORIGIN, stars, base, EffectivePRFSettings()), stars


def test_interpolation_matrix_renders_as_the_model(base, truth):
    """The linear map from tables to pixels reproduces PRFModel's stamps exactly."""
    rng = np.random.default_rng(0)
    rows = ORIGIN[0] + rng.uniform(10, 150, 30)
    cols = ORIGIN[1] + rng.uniform(10, 150, 30)
    for prf in (base, truth):
        boxes = star_boxes(np.zeros(SHAPE), np.ones(SHAPE), ORIGIN, rows, cols, 5)
        scale = np.broadcast_to((1 / stamp_sums(prf, rows, cols))[:, None, None], (30, 11, 11))
        matrix = interpolation_matrix(prf, boxes, rows, cols, scale)
        rendered = (matrix @ prf.tables.ravel()).reshape(30, 11, 11)
        np.testing.assert_allclose(rendered, box_models(prf, boxes, rows, cols), atol=1e-7)


def test_correction_basis_adjoint():
    basis = CorrectionBasis(3, edge_taper())
    rng = np.random.default_rng(1)
    c = rng.standard_normal((2, basis.size, basis.size))
    t = rng.standard_normal((2, *edge_taper().shape))
    assert np.isclose(np.sum(basis.tables(c) * t), np.sum(c * basis.adjoint(t)))
    with pytest.raises(ValueError, match="divide"):
        CorrectionBasis(2, edge_taper())


def test_effective_prf_halves_the_residuals(measured, base, truth):
    fit, _ = measured
    q = fit.quality
    assert q["n_stars"] >= 30 and q["n_check"] >= 8
    # Residuals of the stars fitted, and of those left out of the fit, at least halved.
    assert q["rms_effective"] < 0.5 * q["rms_model"]
    assert q["rms_effective_check"] < 0.5 * q["rms_model_check"]
    assert q["chi2_effective_check"] < 0.1 * q["chi2_model_check"]
    # Closer to the PRF the stars were drawn with.
    assert table_error(fit.prf, truth) < 0.3 * table_error(base, truth)
    assert isinstance(fit.prf, EffectivePRF) and fit.prf.base_analytic and fit.accepted
    assert fit.prf.short_name.startswith("ePRF analytic")
    assert "Effective PRF from" in fit.summary()


def test_effective_prf_keeps_the_flux_and_position(measured):
    fit, (rows, cols, flux) = measured
    # Unit flux: every table sums to OVERSAMPLE**2.
    np.testing.assert_allclose(fit.prf.tables.sum(axis=(1, 2)), OVERSAMPLE**2)
    nearest = np.argmin(np.hypot(fit.after.rows[:, None] - rows, fit.after.cols[:, None] - cols), 1)
    ratio_model = np.median(fit.before.flux / flux[nearest])
    ratio = np.median(fit.after.flux / flux[nearest])
    assert abs(ratio - 1) < 2e-3 < abs(ratio_model - 1)
    assert np.median(np.abs(fit.after.rows - rows[nearest])) < 0.01
    assert np.median(np.abs(fit.after.cols - cols[nearest])) < 0.01


def test_no_difference_no_correction(measured, base):
    """Stars drawn with the model itself: the correction stays near zero."""
    image, sigma, stars = scene(base, seed=4)
    fit = measure_effective_prf(image, sigma, ORIGIN, stars, base, EffectivePRFSettings())
    real = measured[0].corrections
    assert np.sqrt(np.mean(fit.corrections**2)) < 0.05 * np.sqrt(np.mean(real**2))
    # The stars left out of the fit: fitted as well as by the model, but for the noise
    # the correction picked up from the stars it was fitted on (chi-square 1.16 -> 1.47).
    q = fit.quality
    assert q["chi2_model_check"] < 1.5
    assert q["chi2_effective_check"] < 1.4 * q["chi2_model_check"]
    assert not fit.accepted and "not used" in fit.summary()


def test_too_few_stars(base, truth):
    image, sigma, stars = scene(truth)
    settings = EffectivePRFSettings(min_stars=500)
    assert measure_effective_prf(image, sigma, ORIGIN, stars, base, settings) is None


def test_wings_measured(base):
    """A halo holding 2 % of the light: its profile beyond the footprint, as a power law."""
    settings = EffectivePRFSettings(wings_radius=HALO_RADIUS, wings_stars=16)
    wide = {"spacing": 60, "shape": (240, 240)}
    image, sigma, stars = scene(base, seed=5, halo=0.02, **wide)
    fit = measure_effective_prf(image, sigma, ORIGIN, stars, base, settings)
    wings = fit.wings
    assert wings is not None and wings.n_stars >= 10
    profile = HaloProfile(HALO_RADIUS, 2.5)
    k = np.arange(-int(HALO_RADIUS), int(HALO_RADIUS) + 1)
    total = profile.surface(np.hypot(k[:, None], k[None, :])).sum()
    expected = 0.02 * profile.surface(wings.radius) / total
    inner = wings.radius < 15
    np.testing.assert_allclose(wings.profile[inner], expected[inner], rtol=0.2)
    assert 2.0 < wings.index < 3.5
    true_fraction = (
        0.02
        * profile.surface(np.hypot(k[:, None], k[None, :]))[
            np.hypot(k[:, None], k[None, :]) >= wings.radius_min
        ].sum()
        / total
    )
    assert wings.fraction == pytest.approx(true_fraction, rel=0.3)
    # Without a halo: no wings.
    image, sigma, stars = scene(base, seed=6, **wide)
    fit = measure_effective_prf(image, sigma, ORIGIN, stars, base, settings)
    assert np.all(np.abs(fit.wings.profile) < 0.05 * expected)
    assert not fit.wings.fraction > 1e-4


def test_choose_stars_leaves_out_saturated_and_crowded(base):
    rows = np.array([550.0, 550.0, 600.0, 600.0, 640.0])
    cols = np.array([750.0, 800.0, 750.0, 753.0, 820.0])
    flux = np.array([5e4, 5e4, 5e4, 3e4, 5e4])
    image = base.render(rows, cols, flux, SHAPE, ORIGIN)
    # A saturated bleed column reaching star 4's box from below.
    image[640 - ORIGIN[0] + 8 : 640 - ORIGIN[0] + 20, 820 - ORIGIN[1]] = SATURATED_RATE
    sigma = np.full(SHAPE, 0.1)
    choice = Choice(
        half=5,
        min_snr=100,
        max_contamination=0.1,
        saturated_level=0.5 * SATURATED_RATE,
        saturation_margin=3,
        max_stars=10,
    )
    model = base.render(rows, cols, flux, SHAPE, ORIGIN)
    chosen = choose_stars(image, sigma, ORIGIN, base, (rows, cols, flux), model, choice)
    # Stars 2 and 3 share a box; star 4 is near saturated pixels.
    assert sorted(chosen.tolist()) == [0, 1]
    # Off the image: not chosen.
    far = choose_stars(image, sigma, ORIGIN, base, (rows - 60, cols, flux), model, choice)
    assert 0 not in far.tolist()


def test_spanning_nodes_render_the_same():
    tables = np.stack([AnalyticPRF(fwhm=f).tables[0] for f in np.linspace(1.7, 2.3, 9)])
    prf = PRFModel(tables, [0, 1000, 2000], [0, 1000, 2000], "grid", "grid", taper=False)
    sub = spanning_nodes(prf, (1100.0, 1300.0, 10.0, 900.0))
    np.testing.assert_array_equal(sub.node_rows, [1000, 2000])
    np.testing.assert_array_equal(sub.node_cols, [0, 1000])
    rows, cols = np.array([1150.3, 1290.6]), np.array([20.2, 880.9])
    np.testing.assert_allclose(sub.stamps(rows, cols)[0], prf.stamps(rows, cols)[0], atol=1e-7)


def test_no_stars_on_the_image(base):
    """A small region without stars fit to measure on (a cutout): none, not an error."""
    image = np.zeros((12, 12))
    sigma = np.ones((12, 12))
    stars = (np.array([505.0]), np.array([705.0]), np.array([1e4]))
    settings = EffectivePRFSettings()
    assert measure_effective_prf(image, sigma, ORIGIN, stars, base, settings) is None
    none = (np.empty(0), np.empty(0), np.empty(0))
    assert measure_effective_prf(image, sigma, ORIGIN, none, base, settings) is None


def test_the_stars_reaching_the_boxes_make_the_scene_on_them(base):
    """The fit's scene is rendered from the stars that reach its boxes only: on the boxes it
    is every star's scene."""
    rng = np.random.default_rng(7)
    rows = rng.uniform(ORIGIN[0] - 8, ORIGIN[0] + SHAPE[0] + 8, 400)
    cols = rng.uniform(ORIGIN[1] - 8, ORIGIN[1] + SHAPE[1] + 8, 400)
    flux = rng.uniform(1e2, 1e4, 400)
    image = base.render(rows, cols, flux, SHAPE, ORIGIN)
    sigma = np.ones(SHAPE)
    fitted = np.arange(0, 400, 40)
    boxes = star_boxes(image, sigma, ORIGIN, rows[fitted], cols[fitted], 6)
    near = reaching_boxes(rows, cols, boxes.rows, boxes.cols, boxes.half)
    assert set(fitted) <= set(near.tolist()) and near.size < rows.size / 2
    part = base.render(rows[near], cols[near], flux[near], SHAPE, ORIGIN)
    on_boxes = box_pixels(part, ORIGIN, boxes.rows, boxes.cols, boxes.half)
    np.testing.assert_allclose(on_boxes, boxes.data, rtol=1e-12, atol=1e-9)
    empty = star_boxes(image, sigma, ORIGIN, np.empty(0), np.empty(0), 6)
    assert reaching_boxes(rows, cols, empty.rows, empty.cols, 6).size == 0


def test_the_distortion_solved_directly_as_by_lsqr(monkeypatch, base, truth):
    """Without a free correction the distortion is solved on its own few columns; LSQR
    through every table sample, with the free tables held at zero by a tight prior, finds
    the same PRF."""
    image, sigma, stars = scene(truth)
    settings = EffectivePRFSettings(iterations=2)
    direct = measure_effective_prf(image, sigma, ORIGIN, stars, base, settings)

    def by_lsqr(matrix, residual, terms, shapes, shape_prior, *, n_coef, stars=None):
        m = int(round(np.sqrt(n_coef / terms.shape[1])))
        basis = CorrectionBasis(settings.samples_per_pixel, edge_taper())
        assert basis.size == m
        regularisation = Regularisation(
            prior=1e-9 * float(base.tables.max()),
            smoothness=settings.smoothness,
            shape_prior=shape_prior,
        )
        return solve_correction(
            matrix, residual, basis, terms, regularisation, shapes=shapes, stars=stars
        )[0]

    monkeypatch.setattr(effective, "solve_distortion", by_lsqr)
    iterative = measure_effective_prf(image, sigma, ORIGIN, stars, base, settings)
    assert table_error(direct.prf, truth) < table_error(base, truth)
    np.testing.assert_allclose(direct.prf.tables, iterative.prf.tables, atol=1e-6)
