"""The stars' halos: their shape (prf/star_halo.py) and measurement (prf/effective_halo.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.config.simulate import PRFDifferenceSettings
from tessphot.constants import flux_to_tmag, tmag_to_flux
from tessphot.evaluation.simulate.prf_differences import PRFField, TransformedPRF
from tessphot.photometry.scene import aperture_light
from tessphot.prepare.effective_prf import HALO_GROUP, read_star_halos, write_effective_prf
from tessphot.prf import AnalyticPRF
from tessphot.prf.effective import measure_effective_prf
from tessphot.prf.effective_halo import measure_halos
from tessphot.prf.effective_stars import fit_stars, star_boxes
from tessphot.prf.spoc import SpocPRF
from tessphot.prf.star_halo import HaloShape, StarHalos, images_with_halos, with_halos

SHAPE = HaloShape(core=2.0, index=2.5, radius=40.0)


def test_unit_halo_holds_the_light():
    image = SHAPE.image([50.3], [49.6], (0, 0), (101, 101))[0]
    # Sampled at the pixels' centres, normalised over the disc: within 0.5 % of unity.
    assert image.sum() == pytest.approx(1.0, rel=5e-3)
    assert image[50, 50] == pytest.approx(image.max())
    assert SHAPE.surface(40.5) == 0.0
    with pytest.raises(ValueError, match="positive"):
        HaloShape(core=0.0, index=2.5, radius=40.0)


def test_fractions_are_the_image_summed_on_the_mask():
    mask = np.zeros((9, 11), dtype=bool)
    mask[2:7, 3:9] = True
    rows = np.array([[104.2, 104.9], [105.5, np.nan]])
    cols = np.array([[205.1, 206.3], [204.4, 205.0]])
    out = SHAPE.fractions(mask, (100, 200), rows, cols)
    assert out.shape == rows.shape and np.isnan(out[1, 1])
    image = SHAPE.image([104.2], [205.1], (100, 200), mask.shape)[0]
    assert out[0, 0] == pytest.approx(image[mask].sum(), rel=1e-12)


def test_star_halos_measured_or_by_brightness():
    halos = StarHalos(SHAPE, np.array([7, 3]), np.array([0.02, -0.001]), np.array([9.0, 11.0]),
                      np.array([0.01, 0.0]))  # fmt: skip
    h = halos.of(np.array([3, 5, 7, 9]), np.array([8.0, 8.0, 12.0, 10.0]))
    np.testing.assert_allclose(h, [-0.001, 0.01, 0.02, 0.005])
    # Within the stars' scatter of zero: none.
    scattered = StarHalos(SHAPE, halos.starid, halos.fraction, halos.trend_tmag, halos.trend,
                          scatter=0.006)  # fmt: skip
    h = scattered.of(np.array([3, 5, 7, 9]), np.array([8.0, 8.0, 12.0, 10.0]))
    np.testing.assert_allclose(h, [0.0, 0.01, 0.02, 0.0])


def test_with_halos_mixes_the_light():
    mask = np.zeros((9, 9), dtype=bool)
    mask[3:6, 3:6] = True
    rows = np.array([[104.0, 101.0]])
    cols = np.array([[104.0, 101.0]])
    prf_fractions = np.array([[0.8, 0.05]])
    out = with_halos(prf_fractions, np.array([0.02, 0.0]), SHAPE, mask, (100, 100), rows, cols)
    halo = SHAPE.fractions(mask, (100, 100), rows[:, :1], cols[:, :1])[0, 0]
    assert out[0, 0] == pytest.approx(0.98 * 0.8 + 0.02 * halo)
    assert out[0, 1] == 0.05


def _grid_of_stars(rng, n=40, halo_above=10**4.8):
    """Isolated stars on a grid, the brightest with a 2 % halo, on a noisy image."""
    prf = AnalyticPRF()
    g = np.arange(n)
    rows = 15 + 25 * (g % 7) + rng.uniform(-0.5, 0.5, n)
    cols = 15 + 25 * (g // 7) + rng.uniform(-0.5, 0.5, n)
    flux = 10 ** rng.uniform(4, 5.5, n)
    share = np.where(flux > halo_above, 0.02, 0.0)
    shape = (200, 160)
    image = prf.render(rows, cols, flux * (1 - share), shape)
    image += np.einsum("n,nij->ij", flux * share, SHAPE.image(rows, cols, (0, 0), shape))
    sigma = np.sqrt(image + 100) / 30
    image = image + rng.normal(size=shape) * sigma
    return prf, image, sigma, (rows, cols, flux), share


def test_halos_measured_on_isolated_stars():
    prf, image, sigma, (rows, cols, flux), share = _grid_of_stars(np.random.default_rng(1))
    boxes = star_boxes(image, sigma, (0, 0), rows, cols, 6)
    fits = fit_stars(prf, boxes, rows, cols, flux, model_error=0.002)
    fit = measure_halos(
        prf, boxes, fits, flux_to_tmag(flux), radius=40.0, model_error=0.002, clip=4.0
    )
    assert (fit.shape.core, fit.shape.index) == (pytest.approx(2.0), 2.5)
    assert fit.chi2 < 0.2 * fit.chi2_without
    # Each star's share within 4 of its errors (about 2e-4 to 2e-3).
    assert np.all(np.abs(fit.fraction - share) < 4 * fit.error)
    # Pulled towards the trend by their errors: still each star's own.
    assert np.all(np.abs(fit.shrunk() - share) < 0.002)
    assert fit.at(np.array([6.0, 12.0])) == pytest.approx([0.02, 0.0], abs=1e-3)
    four = slice(0, 4)
    few = measure_halos(prf, boxes.subset(four), fits.subset(four), flux_to_tmag(flux[four]),
                        radius=40.0, model_error=0.002, clip=4.0)  # fmt: skip
    assert few is None


def test_halos_stored_with_the_effective_prf(tmp_path):
    prf, image, sigma, (rows, cols, flux), share = _grid_of_stars(np.random.default_rng(5))
    settings = EffectivePRFSettings(max_contamination=0.3, validation_fraction=0.0)
    fit = measure_effective_prf(image, sigma, (0, 0), (rows, cols, flux), prf, settings)
    assert fit.halos is not None and "halos on" in fit.summary()
    starid = np.arange(rows.size) + 1000
    with h5py.File(tmp_path / "file.hdf5", "w") as h5:
        assert read_star_halos(h5) is None
        write_effective_prf(h5, fit, settings, starid=starid)
        assert set(h5["effective_prf"][HALO_GROUP].attrs) >= {"core", "index", "radius"}
    with h5py.File(tmp_path / "file.hdf5", "r") as h5:
        halos = read_star_halos(h5)
    measured = fit.chosen[fit.halos.measured]
    np.testing.assert_array_equal(halos.starid, starid[measured])
    h = halos.of(starid[measured], flux_to_tmag(flux[measured]))
    assert np.all(np.abs(h - share[measured]) < 0.003)
    # The aperture's light with them: a bright star's fraction follows its halo.
    mask = np.zeros((11, 11), dtype=bool)
    mask[3:8, 3:8] = True
    star = int(np.argmax(flux))
    origin = (int(round(rows[star])) - 5, int(round(cols[star])) - 5)
    positions = np.array([[rows[star]], [rows[star] + 0.3]]), np.array([[cols[star]]] * 2)
    args = (mask, origin, starid[[star]], flux[[star]], *positions, rows[[star]], cols[[star]],
            np.ones(2, dtype=bool))  # fmt: skip
    plain = aperture_light(fit.prf, *args)
    with_halo = aperture_light(fit.prf, *args, halos=halos, tmag=flux_to_tmag(flux[[star]]))
    hs = halos.of(starid[[star]], flux_to_tmag(flux[[star]]))[0]
    halo = halos.shape.fractions(mask, origin, positions[0][:, 0], positions[1][:, 0])
    expected = (1 - hs) * plain.fractions[:, 0] + hs * halo
    assert hs == pytest.approx(0.02, abs=0.003)
    np.testing.assert_allclose(with_halo.fractions[:, 0], expected, rtol=1e-12)


def test_images_with_halos_mix_each_cadence():
    pixels = np.zeros((9, 9), dtype=bool)
    pixels[1:8, 2:8] = True
    rng = np.random.default_rng(3)
    rows = 104 + rng.normal(0, 0.3, (400, 2))
    cols = 104 + rng.normal(0, 0.3, (400, 2))
    images = rng.uniform(0, 0.1, (400, 2, int(pixels.sum())))
    out = images_with_halos(
        images, np.array([0.03, 0.0]), SHAPE, rows, cols, (100, 100), pixels.shape, pixels.ravel()
    )
    np.testing.assert_array_equal(out[:, 1], images[:, 1])
    exact = SHAPE.image(rows[:, 0], cols[:, 0], (100, 100), pixels.shape)[:, pixels]
    # Interpolated on a grid of 1/8 px: within 0.3 % of the halo's light.
    halo = SHAPE.pixel_images(pixels, (100, 100), rows[:, 0], cols[:, 0])
    assert np.abs(halo - exact).max() < 3e-3 * exact.max()
    np.testing.assert_allclose(out[:, 0], 0.97 * images[:, 0] + 0.03 * halo, rtol=1e-12)


def test_halos_and_prf_of_a_region_whose_prf_differs_from_the_model(prf_dir):
    """Stars rendered with the SPOC PRF changed as the simulator changes it over the CCD (width,
    ellipticity, angle), the brighter ones with a 2 % halo: the halo's shape is found, and
    the effective PRF follows the rendered one to its corners. (With the halos' shape kept
    from the first of 2 halo passes: index 2 for 2.5, a halo of 2.6 %, residuals x0.021 of
    the model's for x0.010, a corner's tables off by 4.3e-4 of the peak for 0.7e-4.)"""
    origin, n, seed = (800, 800), 300, 3
    base = SpocPRF(prf_dir, 1, 1, 4)
    field = PRFField.draw(PRFDifferenceSettings(enabled=True), seed=seed)
    region = (origin[0] - 20, origin[0] + n + 20, origin[1] - 20, origin[1] + n + 20)
    true = TransformedPRF(base, field, region).model(1.0)
    rng = np.random.default_rng(seed)
    g = np.arange(12, n - 20, 24)
    rows, cols = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    rows, cols = rows + origin[0], cols + origin[1]
    tmag = rng.uniform(7.0, 11.5, rows.size)
    flux = tmag_to_flux(tmag)
    share = np.where(tmag < 9.5, 0.02, 0.0)
    image = true.render(rows, cols, flux * (1 - share), (n, n), origin)
    image += np.einsum("n,nij->ij", flux * share, SHAPE.image(rows, cols, origin, (n, n)))
    sigma = np.sqrt(image + 150.0) / 60
    image += rng.normal(size=image.shape) * sigma
    settings = EffectivePRFSettings(validation_fraction=0.0)
    fit = measure_effective_prf(image, sigma, origin, (rows, cols, flux), base, settings)
    assert (fit.halos.shape.core, fit.halos.shape.index) == (pytest.approx(2.0), 2.5)
    bright = share[fit.chosen[fit.halos.measured]] > 0
    assert np.median(fit.halos.shrunk()[bright]) == pytest.approx(0.02, abs=0.005)
    assert fit.quality["rms_effective"] < 0.02 * fit.quality["rms_model"]
    corners = np.array([15.3, n - 14.7]) + origin[0], np.array([15.1, n - 14.9]) + origin[1]
    r, c = (a.ravel() for a in np.meshgrid(*corners))
    expected, _, _ = true.stamps(r, c)
    got, _, _ = fit.prf.stamps(r, c)
    error = np.std(got - expected, axis=(1, 2)) / expected.max(axis=(1, 2))
    assert error.max() < 1.5e-4
